"""The README's main job (deploy/demo.py, what scripts/demo.sh runs after installing and
building): a local cluster, the seed connector created over REST, 100,000 records migrated
with a progress line (count, rate, ETA), verified record by record, a summary."""
import os
import re
import subprocess
import sys
import unittest

from ferrytest import log, src_dir


class MainJobTest(unittest.TestCase):
    def test_main_job(self):
        r = subprocess.run([sys.executable, os.path.join(src_dir(), "deploy", "demo.py")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=600)
        out = r.stdout
        print(out, file=sys.stderr)
        self.assertEqual(r.returncode, 0, f"{out}\n{r.stderr[-3000:]}")
        self.assertIn("POST /connectors -> 201", out)
        self.assertIn("verification: OK, every record matches", out)
        self.assertRegex(out, r"records\s+100,000 copied, 0 missing, 0 duplicates, 0 reordered, "
                              r"0 mismatched")
        # the progress line: a bar, records so far of the total, a rate and an ETA, redrawn
        updates = re.findall(r"\[[#-]{30}\]\s+([\d,]+) / 100,000 records\s+([\d,]+) rec/s\s+ETA\s+"
                             r"[\d.]+s", r.stderr)
        self.assertTrue(updates, f"no progress line in: {r.stderr[-2000:]!r}")
        self.assertEqual(updates[-1][0], "100,000")
        secs = float(re.search(r"seconds\s+([\d.]+)", out).group(1))
        log(f"main job: {secs:.2f} s from POST to the last record, {len(updates)} progress updates")


if __name__ == "__main__":
    unittest.main(verbosity=2)
