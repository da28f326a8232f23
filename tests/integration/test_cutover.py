"""Consumer cut-over: a consumer group that read part of a topic on the source continues on
the destination copy exactly where it stopped, by content, on every partition.

Each test runs the procedure of docs/OPERATIONS.md ("Consumer cut-over") through REST:
stop producers, wait for lag 0 (GET /connectors/{name}/groups/{group}), translate
(POST .../translate), switch the consumers. The "applications" are kafkatool group, which
reads with a group's committed offsets and commits like a consumer of that group would.

- test_cutover_after_kill: 3 workers, a worker killed with -9 in the middle of the copy, a
  topic created while running (picked up by topic.regex), a partition the group never
  committed, and the rules: never backwards, never a group active on the destination.
- test_truncated_source: source records deleted by retention before the copy started: a
  group that stopped before them is reported (how many offsets were never copied), one that
  stopped after continues exactly; the periodic translation commits without a POST.
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (Cluster, count, consume, http, kafkatool, log, produce,  # noqa: E402
                       seed_connector, wait_until)


def group_read(bs, topic, group, count_=0, partition=None):
    """kafkatool group: {partition: line} (committed, first, read, now)."""
    args = ["group", "-b", bs, "-t", topic, "-X", f"group.id={group}", "-c", count_]
    if partition is not None:
        args += ["-p", partition]
    rc, out = kafkatool(*args)
    if rc != 0:
        raise AssertionError(f"kafkatool group {group} on {topic} failed (rc={rc}): {out}")
    return {d["partition"]: d for d in map(json.loads, out.splitlines())}


def content(rec):
    """What a record is for the application: key, value and headers other than ferry's own."""
    return (rec["key"], rec["value"], [h for h in rec["headers"] if not h[0].startswith("__ferry.")])


class CutoverTest(unittest.TestCase):
    def req(self, method, url, body=None):
        st, js, raw, _ = http(method, url, body)
        return st, js if js is not None else raw

    def report(self, url, name, group):
        st, js = self.req("GET", f"{url}/connectors/{name}/groups/{group}")
        self.assertEqual(st, 200, js)
        return {(p["topic"], p["partition"]): p for p in js["partitions"]}

    def wait_lag0(self, url, name, group, parts, timeout=60):
        """Step 2 of the procedure: every partition copied to the source's end."""
        def done():
            r = self.report(url, name, group)
            return r if all(k in r and r[k]["copy_lag"] == 0 for k in parts) else None
        return wait_until(done, timeout, interval=0.3, what=f"copy lag 0 on {sorted(parts)}")

    def translate(self, url, name, group):
        st, js = self.req("POST", f"{url}/connectors/{name}/groups/{group}/translate")
        self.assertEqual(st, 200, js)
        log(f"translate {group}: " + json.dumps(js["partitions"]))
        return {(p["topic"], p["partition"]): p for p in js["partitions"]}

    def assert_continues(self, c, topic, group, src_committed):
        """Step 4: a consumer of the group on the destination reads, as its first record, the
        source record at the group's source position — on every partition that had one."""
        target = f"{topic}.replica"
        dst = group_read(c.dst.bootstrap, target, group, 1)
        for p, pos in src_committed.items():
            if pos is None:
                continue
            want = consume(c.src.bootstrap, topic, 1, partition=p, offset=pos)
            self.assertEqual(len(want), 1, f"no source record at {topic}[{p}]@{pos}")
            self.assertIsNotNone(dst[p]["first"], f"{target}[{p}]: nothing after the translated offset")
            self.assertEqual(content(dst[p]["first"]), content(want[0]),
                             f"{target}[{p}] continued at {dst[p]['committed']}, not at the copy of "
                             f"{topic}[{p}]@{pos}")
        return dst

    def test_cutover_after_kill(self):
        parts = 4
        with Cluster(workers=3, src_topics={"orders": parts},
                     dst_topics={"orders.replica": parts, "orders-late.replica": 2},
                     worker_extra={"offset.flush.interval.ms": "2000"}) as c:
            url = c.url
            produce(c.src.bootstrap, "orders", 40_000, partitions=parts)
            # the destination topic already holds data, so copies land at other offsets
            produce(c.dst.bootstrap, "orders.replica", 1_000, partitions=parts, start=900_000)
            # the application read part of each partition on the source and committed;
            # partition 2 it never read
            reads = {0: 1000, 1: 2500, 3: 9999}
            for p, k in reads.items():
                group_read(c.src.bootstrap, "orders", "app", k, partition=p)
            cfg = seed_connector(c.src.bootstrap, name="mig", topic="", rename="${topic}.replica",
                                 **{"topic.whitelist": None, "topic.regex": "orders.*", "tasks.max": "3",
                                    "topic.poll.interval.ms": "500", "groups": "app",
                                    "sync.group.offsets.interval.ms": "0"})
            st, js = self.req("POST", f"{url}/connectors", cfg)
            self.assertEqual(st, 201, js)
            st, js = self.req("GET", f"{url}/connectors/mig/groups")
            self.assertEqual((st, js), (200, {"groups": ["app"], "regex": "", "interval_ms": 0}))
            # a worker dies in the middle of the copy, and new data keeps coming
            wait_until(lambda: (count(c.dst.bootstrap, "orders.replica") or {}).get("total", 0) >= 10_000,
                       60, what="10,000 records copied")
            victim = next(w for w in c.workers[1:])
            victim.kill9()
            log(f"killed worker {victim.idx}")
            produce(c.src.bootstrap, "orders", 20_000, partitions=parts, start=40_000)
            # a topic created while running: picked up, and translated like the others
            c.src.create_topic("orders-late", 2)
            produce(c.src.bootstrap, "orders-late", 2_000, partitions=2, start=100_000)
            group_read(c.src.bootstrap, "orders-late", "app", 300)
            # the application reads on a little, then stops (step 1: producers are stopped)
            group_read(c.src.bootstrap, "orders", "app", 500, partition=0)
            src = {p: d["committed"] for p, d in group_read(c.src.bootstrap, "orders", "app").items()}
            late = {p: d["committed"] for p, d in group_read(c.src.bootstrap, "orders-late", "app").items()}
            log(f"group app on the source: orders {src}, orders-late {late}")
            self.assertEqual(src, {0: 1500, 1: 2500, 2: None, 3: 9999})
            keys = [("orders", p) for p in range(parts)] + [("orders-late", p) for p in range(2)]
            rep = self.wait_lag0(url, "mig", "app", keys)
            self.assertEqual(rep[("orders", 2)]["state"], "no-commit", rep[("orders", 2)])
            self.assertEqual(rep[("orders", 0)]["lag"], 15_000 - 1500, rep[("orders", 0)])
            self.assertIsNone(rep[("orders", 0)]["destination_committed"])
            tr = self.translate(url, "mig", "app")
            for k in keys:
                if k == ("orders", 2):
                    self.assertEqual((tr[k]["committed"], tr[k]["destination_offset"]), (False, None), tr[k])
                else:
                    self.assertTrue(tr[k]["committed"], tr[k])
                    self.assertIn(tr[k]["state"], ("exact", "end"), tr[k])
            # step 4: the consumers switch to the destination and continue exactly
            dst = self.assert_continues(c, "orders", "app", src)
            self.assertIsNone(dst[2]["committed"], "partition 2 was given an offset")
            self.assert_continues(c, "orders-late", "app", late)
            # never backwards: the application has moved on (it read one record per partition);
            # a second translation leaves it where it is
            before = {p: d["committed"] for p, d in group_read(c.dst.bootstrap, "orders.replica", "app").items()}
            tr2 = self.translate(url, "mig", "app")
            after = {p: d["committed"] for p, d in group_read(c.dst.bootstrap, "orders.replica", "app").items()}
            self.assertEqual(after, before)
            self.assertFalse(any(tr2[("orders", p)]["committed"] for p in range(parts)), tr2)
            self.assertIn("not moved back", tr2[("orders", 0)]["note"])
            # a translation through a follower is forwarded to the leader
            st, js = self.req("POST", f"{c.workers[2].url}/connectors/mig/groups/app/translate")
            self.assertEqual(st, 200, js)
            # never a group active on the destination: "busy" has a member there (kcat in a
            # balanced consumer group); its translation is refused by the broker and reported
            group_read(c.src.bootstrap, "orders", "busy", 10, partition=0)
            kc = subprocess.Popen(["kcat", "-b", c.dst.bootstrap, "-G", "busy", "orders.replica",
                                   "-X", "enable.auto.commit=false", "-q", "-o", "end"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(4)   # joined and assigned
                tr3 = self.translate(url, "mig", "busy")
                self.assertFalse(tr3[("orders", 0)]["committed"], tr3[("orders", 0)])
                self.assertIn("active on the destination", tr3[("orders", 0)]["note"])
            finally:
                kc.kill()
                kc.wait()
            # bad requests
            st, js = self.req("GET", f"{url}/connectors/nope/groups/app")
            self.assertEqual(st, 404, js)
            st, js = self.req("DELETE", f"{url}/connectors/mig/groups/app/translate")
            self.assertEqual(st, 405, js)
            st, js = self.req("POST", f"{url}/connectors", seed_connector(
                c.src.bootstrap, name="bad", **{"sync.group.offsets.interval.ms": "5"}))
            self.assertEqual(st, 400, js)
            self.assertIn("sync.group.offsets.interval.ms", js["message"])
            for key, value in (("groups.regex", "(a*)*"), ("groups.regex", "[x"), ("groups", "ok,bad\u0001")):
                st, js = self.req("POST", f"{url}/connectors", seed_connector(c.src.bootstrap, name="bad",
                                                                              **{key: value}))
                self.assertEqual(st, 400, js)
                self.assertIn(f"configuration {key}", js["message"])

    def test_truncated_source(self):
        with Cluster(workers=1, src_topics={"trunc": 1}, dst_topics={"trunc.replica": 1}) as c:
            url = c.url
            produce(c.src.bootstrap, "trunc", 500, size=1024)
            group_read(c.src.bootstrap, "trunc", "early", 100)     # stops at 100
            # retention: the mock keeps the last 5 MiB of a partition, so 7 MiB more push the
            # start of the log past offset 100 before anything is copied
            produce(c.src.bootstrap, "trunc", 7_000, size=1024, start=500)
            low = count(c.src.bootstrap, "trunc")
            start = low["per_partition"][0]["low"]
            log(f"source trunc after retention: {low}")
            self.assertGreater(start, 100, "the mock did not delete the start of the log")
            # the later group stops 200 records before the end: the destination, which the mock
            # also cuts to its last 5 MiB (the copies carry one more header), still holds it
            high = low["per_partition"][0]["high"]
            late_at = high - 200
            group_read(c.src.bootstrap, "trunc", "late", late_at - start)   # from the log start
            cfg = seed_connector(c.src.bootstrap, name="tr", topic="trunc", rename="${topic}.replica",
                                 **{"groups": "early, late", "sync.group.offsets.interval.ms": "1000",
                                    "groups.regex": "la.*"})
            st, js = self.req("POST", f"{url}/connectors", cfg)
            self.assertEqual(st, 201, js)
            self.wait_lag0(url, "tr", "late", [("trunc", 0)])
            # the periodic translation commits both groups without a POST
            dst = wait_until(lambda: (lambda d: d if d[0]["committed"] is not None else None)(
                group_read(c.dst.bootstrap, "trunc.replica", "late")), 30, interval=0.5,
                what="the periodic translation of group late")
            self.assertEqual(dst[0]["committed"], late_at - start)
            rep = self.report(url, "tr", "early")[("trunc", 0)]
            self.assertEqual((rep["state"], rep["skipped"], rep["destination_offset"]),
                             ("gap", start - 100, 0), rep)
            with open(c.workers[0].logpath) as f:
                text = f.read()
            self.assertIn("were never copied", text, "the gap was not logged")
            # groups.regex needs ListGroups, which the mock cluster does not answer: said, and
            # the groups named explicitly are translated all the same
            self.assertIn("cannot list the source's consumer groups", text)
            self.assert_continues(c, "trunc", "late", {0: late_at})
            # the early group continues at the copy of the first record the source still had,
            # unless the mock's own retention has since removed that copy from the destination
            dst_low = count(c.dst.bootstrap, "trunc.replica")["per_partition"][0]["low"]
            log(f"destination trunc.replica starts at {dst_low}")
            if dst_low == 0:
                early = group_read(c.dst.bootstrap, "trunc.replica", "early", 1)
                want = consume(c.src.bootstrap, "trunc", 1, partition=0, offset=start)
                self.assertEqual(content(early[0]["first"]), content(want[0]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
