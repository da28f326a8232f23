"""test_rolling_restart: every worker of a group restarted in turn while a copy runs.

Three workers (zookeeper.session.timeout.ms=6000) copy the 8-partition `connect` topic with
6 tasks while a producer writes 200,000 records into the source at 10,000/s. Every 20,000
copied records the next worker is restarted, the leader of the moment first (leadership passes
to the oldest remaining member, so in that order every restart is a restart of the leader):
SIGTERM, exit code 0, the other two run all 6 tasks, start again, GET /health answers, and all
6 tasks are RUNNING again, balanced over the three workers (GET /connectors/NAME/status on
every worker) before the next one. The copy must still be running when the last restart ends.

A stopping worker stops its tasks while still a member (flush, offsets stored, then it
leaves), and a task revoked by the rebalance that follows a join does the same before its
worker acknowledges; the new owner reads the offset topic to its end after its assignment. So
nothing may be copied twice: kafkatool compare --exact must find nothing missing, reordered,
mismatched or duplicated, and no two tasks may have owned the same partition at once (the
workers' `ownership acquire|release` log lines). A failure lists where the destination
repeats itself.

  1. the connector's defaults (a new owner also resumes after the last source offset found
     at the destination's end, source.offset.header.enable=true)
  2. source.offset.header.enable=false: the hand-over through the offset topic alone must be
     exact. (It was not: a worker that joined read the offset topic to its end at start-up,
     was then given a task whose previous owner stored its last offsets after that read, and
     started the task from the owner's previous periodic flush, copying up to one
     offset.flush.interval.ms of records again.)

The report line gives, per restart, the records copied when it began, the seconds until the
worker exited, until its tasks ran on the others, and until the group was balanced again.

    FERRY_BUILD=/tmp/build-rr python3 tests/integration/test_rolling_restart.py -v
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (Cluster, assert_no_overlap, compare, consume, count, http,  # noqa: E402
                       log, ownership_intervals, seed_connector, src_dir, wait_records,
                       wait_until)
from grouptest import GroupTestMixin, log_lines, report  # noqa: E402

# Leak reports of a gracefully stopped worker are checked with the project's suppressions.
os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(src_dir(), "tests", "lsan.supp"))

GRACEFUL_MS = 5000
CONN = "connect-test"
PARTS = 8
TASKS = 6
N, RATE = 200_000, 10_000         # 20 s of production, beyond the whole restart sequence
GAP = N // 10                     # records copied before each restart
TOPICS = dict(src_topics={"connect": PARTS}, dst_topics={"connect.replica": PARTS})


class RollingRestartTest(GroupTestMixin, unittest.TestCase):
    maxDiff = None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def copied(c):
        return (count(c.dst.bootstrap, "connect.replica") or {}).get("total", 0)

    @staticmethod
    def duplicate_runs(c, total):
        """Where the copy repeats itself: per destination partition, each run of records whose
        source record number (the "v<i>:" value prefix) was copied before, as
        "partition p: n record(s) v<first>..v<last> again from offset o"."""
        parts = {}
        for m in consume(c.dst.bootstrap, "connect.replica", total, timeout_ms=60000):
            parts.setdefault(m["partition"], []).append(m)
        runs = []
        for p, ms in sorted(parts.items()):
            seen, run = set(), None
            for m in sorted(ms, key=lambda m: m["offset"]):
                i = int(str(m["value"]).split(":", 1)[0].lstrip("v"))
                if i in seen:
                    run = run or {"p": p, "first": m, "i0": i, "n": 0}
                    run["i1"], run["n"] = i, run["n"] + 1
                else:
                    if run:
                        runs.append(run)
                    run = None
                seen.add(i)
            if run:
                runs.append(run)
        return [f"partition {r['p']}: {r['n']} record(s) v{r['i0']}..v{r['i1']} again from offset "
                f"{r['first']['offset']}" for r in runs]

    @staticmethod
    def order_breaks(c, total):
        """Where the copy goes backwards: per destination partition, each offset whose source
        record number is below the one before it, with both records' numbers and whether each
        was forwarded in a batch (no __ferry.offset header) or copied record by record."""
        parts = {}
        for m in consume(c.dst.bootstrap, "connect.replica", total, timeout_ms=60000):
            parts.setdefault(m["partition"], []).append(m)
        out = []

        def how(m):
            return "record" if any(h[0] == "__ferry.offset" for h in m["headers"]) else "batch"
        for p, ms in sorted(parts.items()):
            ms.sort(key=lambda m: m["offset"])
            prev = None
            for m in ms:
                i = int(str(m["value"]).split(":", 1)[0].lstrip("v"))
                if prev and i < prev[0]:
                    out.append(f"partition {p} offset {m['offset']}: v{i} ({how(m)}) after v{prev[0]} "
                               f"({how(prev[1])})")
                prev = (i, m)
        return out[:20]

    # ------------------------------------------------------------------ the test

    def restart(self, c, w):
        """One step of the rolling restart; returns what it measured."""
        others = [x for x in c.workers if x is not w]
        want = self.copied(c) + GAP
        wait_until(lambda: self.copied(c) >= want, 60, interval=0.1,
                   what=f"connect.replica to hold {want} records")
        was_leader = self.leader(c) is w
        at = self.copied(c)
        t0 = time.monotonic()
        rc = w.term(timeout=GRACEFUL_MS / 1000 + 10)
        t_stop = time.monotonic() - t0
        self.wait_running(others[0], TASKS, others, what=f"after worker {w.idx} stopped")
        t_moved = time.monotonic() - t0
        w.start()
        w.wait_ready()
        t_ready = time.monotonic() - t0
        for x in c.workers:
            self.wait_running(x, TASKS, c.workers, what=f"after worker {w.idx} restarted")
        t_back = time.monotonic() - t0
        log(f"worker {w.idx}{' (leader)' if was_leader else ''} restarted at {at}/{N}: exit code "
            f"{rc} after {t_stop:.2f} s, tasks on the others at {t_moved:.2f} s, ready at "
            f"{t_ready:.2f} s, rebalanced at {t_back:.2f} s")
        return {"idx": w.idx, "leader": was_leader, "at": at, "rc": rc, "stop": t_stop,
                "moved": t_moved, "ready": t_ready, "back": t_back}

    def rolling_restart(self, what, **overrides):
        with Cluster(workers=3, **TOPICS) as c:
            st, _, raw, _ = http("POST", c.workers[0].url + "/connectors",
                                 seed_connector(c.src.bootstrap, **{"tasks.max": str(TASKS)},
                                                **overrides))
            self.assertEqual(st, 201, f"POST /connectors: {st} {raw!r}")
            self.wait_running(c.workers[0], TASKS, c.workers)
            join = self.produce_in_background(c, N, RATE)
            producer = join.thread
            steps, todo = [], list(c.workers)
            while todo:       # the leader of the moment first, while it has not been restarted
                lead = self.leader(c)
                w = lead if lead in todo else todo[0]
                todo.remove(w)
                steps.append(self.restart(c, w))
            at_end = self.copied(c)
            still_producing = producer.is_alive()

            join()
            self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", N, timeout_ms=120000),
                            f"connect.replica did not reach {N} records (has {self.copied(c)})")
            time.sleep(1.5)   # anything re-sent late lands before the comparison
            r = compare(c.src.bootstrap, "connect", c.dst.bootstrap, "connect.replica", exact=True)
            assert_no_overlap(ownership_intervals(c.workers))
            restarts = "; ".join(
                f"worker {s['idx']}{' (leader)' if s['leader'] else ''} at {s['at']}: exit {s['rc']} "
                f"in {s['stop']:.2f} s, tasks moved {s['moved']:.2f} s, back and balanced "
                f"{s['back']:.2f} s" for s in steps)
            report(f"rolling restart of 3 workers during a copy of {N} ({what}): {restarts}; "
                   f"{at_end}/{N} copied after the last restart; missing {r['missing']}, "
                   f"reordered {r['reordered']}, duplicates {r['duplicates']}")
            self.assertTrue(still_producing and at_end < N,
                            f"the copy ended before the last restart did ({at_end}/{N} copied)")
            self.assertEqual([s["rc"] for s in steps], [0, 0, 0], f"exit codes after SIGTERM: {steps}")
            self.assertTrue(steps[0]["leader"], f"the first worker restarted was not the leader: {steps}")
            self.assertEqual(r["source"], N, r)
            if r["reordered"]:
                self.fail(f"a rolling restart reordered records: {r}\n  "
                          + "\n  ".join(self.order_breaks(c, r["dest"])))
            self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0),
                             f"a rolling restart lost records: {r}")
            if r["duplicates"]:
                self.fail(f"a rolling restart copied {r['duplicates']} record(s) twice:\n  "
                          + "\n  ".join(self.duplicate_runs(c, r["dest"])))
            self.assertEqual(r["dest"], N, r)
            self.assertEqual(r["rc"], 0, r)

            rcs = {}
            threads = [threading.Thread(target=lambda w=w: rcs.__setitem__(w.idx, w.term()))
                       for w in c.workers]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.check_sanitizers(c)
            self.assertEqual(rcs, {w.idx: 0 for w in c.workers}, "exit codes at the end")
            errors = {w.idx: [line for _, line in log_lines(w, " ERROR [")] for w in c.workers}
            self.assertEqual({k: v for k, v in errors.items() if v}, {}, "ERROR lines in worker logs")

    def test_1_rolling_restart(self):
        self.rolling_restart("connector defaults")

    def test_2_rolling_restart_stored_offsets_only(self):
        self.rolling_restart("source.offset.header.enable=false",
                             **{"source.offset.header.enable": "false"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
