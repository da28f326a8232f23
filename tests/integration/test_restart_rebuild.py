"""test_restart_rebuild: a worker killed with SIGKILL rebuilds everything from the storage topics.

1. Connectors in every target state (RUNNING; PAUSED via pause; STOPPED via stop; created
   with "initial_state":"PAUSED") look exactly the same over REST after kill -9 and restart,
   and behave accordingly: only the running one copies.
2. kill -9 in the middle of a copy of 200,000 records: after the restart the copy completes
   with nothing missing or reordered (duplicates allowed, bounded by what one offset-flush
   interval can copy).

Fixture limit: a mock Kafka partition keeps about 5 MB (librdkafka's mock drops its oldest
message sets beyond that), i.e. ~37,000 of these records uncompressed. The copy has 25,000 per
partition, so a partition copied twice would lose its first records, and compare() would see
the rest as reordered. So the copy is lz4-compressed (the records compress well), the flush
interval is short, and the test checks that every destination partition still starts at 0.

Run: FERRY_BUILD=<build> python3 tests/integration/test_restart_rebuild.py
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ClusterTestCase, compare, count, http, log, produce,  # noqa: E402
                       seed_connector, wait_records, wait_until)

TOPICS = ("t_run", "t_paused", "t_stopped", "t_born")
BULK_N = 200_000
FLUSH_MS = 250   # short, so that the kill lands after some flushes and duplicates stay few


def wait_for_leadership(url, timeout=60):
    """GET / answers before the worker has read its storage topics and joined the group; wait
    for /health and for a write that reaches the herder (an invalid create: 400, nothing
    stored)."""
    wait_until(lambda: http("GET", url + "/health")[0] == 200, timeout, what="GET /health 200")
    probe = {"name": "probe", "config": {"connector.class": "EMRReplicatorSourceConnector",
                                         "tasks.max": "0"}}
    wait_until(lambda: http("POST", url + "/connectors", probe)[0] == 400, timeout,
               what="the worker to accept writes (leader known)")


class RestartRebuildTest(ClusterTestCase):
    cluster_args = dict(workers=1,
                        src_topics={**{t: 2 for t in TOPICS}, "bulk": 8},
                        dst_topics={**{t + ".replica": 2 for t in TOPICS}, "bulk.replica": 8},
                        worker_extra={"offset.flush.interval.ms": FLUSH_MS})

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        wait_for_leadership(cls.cluster.url)

    @property
    def worker(self):
        return self.cluster.workers[0]

    def req(self, method, path, body=None):
        return http(method, self.cluster.url + path, body)

    def config(self, name, topic, **overrides):
        return seed_connector(self.cluster.src.bootstrap, name=name, topic=topic,
                              rename=f"{topic}.replica", **overrides)

    def create(self, body):
        st, js, raw, _ = self.req("POST", "/connectors", body)
        self.assertEqual(st, 201, raw)
        return js

    def status(self, name):
        st, js, _, _ = self.req("GET", f"/connectors/{name}/status")
        return js if st == 200 else None

    def wait_state(self, name, state, ntasks, timeout=30):
        def ok():
            s = self.status(name)
            return s and s["connector"]["state"] == state and len(s["tasks"]) == ntasks and \
                all(t["state"] == state for t in s["tasks"]) and s
        return wait_until(ok, timeout, what=f"{name} {state} with {ntasks} task(s) "
                                            f"(last: {self.status(name)})")

    def restart_worker(self):
        self.worker.kill9()
        self.worker.restart()
        wait_for_leadership(self.cluster.url)

    def dst_total(self, topic):
        return count(self.cluster.dst.bootstrap, topic)["total"]

    # ------------------------------------------------------------------------------------

    def test_a_target_states_survive_kill9(self):
        self.create(self.config("run", "t_run", **{"tasks.max": "2"}))
        self.create(self.config("paused", "t_paused", **{"src.cluster.alias": "east",
                                                         "topic.poll.interval.ms": "1000"}))
        self.create(self.config("stopped", "t_stopped", **{"tasks.max": "3",
                                                           "offset.start": "earliest"}))
        born = self.config("born", "t_born", **{"src.kafka.max.poll.records": "100"})
        born["initial_state"] = "PAUSED"
        self.create(born)
        self.wait_state("run", "RUNNING", 2)
        self.wait_state("paused", "RUNNING", 1)
        self.wait_state("stopped", "RUNNING", 2)    # 2 partitions: 2 tasks despite tasks.max 3
        self.assertEqual(self.req("PUT", "/connectors/paused/pause")[0], 202)
        self.assertEqual(self.req("PUT", "/connectors/stopped/stop")[0], 204)
        self.wait_state("paused", "PAUSED", 1)
        self.wait_state("stopped", "STOPPED", 0)
        wait_until(lambda: (self.status("born") or {}).get("connector", {}).get("state")
                   == "PAUSED", 30, what=f"born PAUSED (last: {self.status('born')})")
        time.sleep(1)    # let a paused connector generate (or not) its task configs
        st, info, raw, _ = self.req("GET", "/connectors?expand=info")
        self.assertEqual(st, 200, raw)
        st, status, raw, _ = self.req("GET", "/connectors?expand=status")
        self.assertEqual(st, 200, raw)
        self.assertEqual(sorted(info), ["born", "paused", "run", "stopped"])
        self.assertEqual(info["stopped"]["info"]["tasks"], [])
        self.assertEqual(status["born"]["status"]["connector"]["state"], "PAUSED")
        self.assertTrue(all(t["state"] == "PAUSED" for t in status["born"]["status"]["tasks"]))
        log(f"before the kill: {status}")

        self.restart_worker()
        st, info2, raw, _ = self.req("GET", "/connectors?expand=info")
        self.assertEqual((st, info2), (200, info), raw)
        for n in info:   # single-connector reads agree
            self.assertEqual(self.req("GET", f"/connectors/{n}")[1], info[n]["info"])
            self.assertEqual(self.req("GET", f"/connectors/{n}/config")[1],
                             info[n]["info"]["config"])
        wait_until(lambda: self.req("GET", "/connectors?expand=status")[1] == status, 30,
                   what=f"the statuses of before the kill (last: "
                        f"{self.req('GET', '/connectors?expand=status')[1]})")
        # and the worker acts on them: only "run" copies
        for t in TOPICS:
            produce(self.cluster.src.bootstrap, t, 100)
        self.assertTrue(wait_records(self.cluster.dst.bootstrap, "t_run.replica", 100, 30000))
        time.sleep(3)
        self.assertEqual(self.dst_total("t_run.replica"), 100)
        for t in ("t_paused", "t_stopped", "t_born"):
            self.assertEqual(self.dst_total(t + ".replica"), 0, f"{t} was copied")
        # everything resumes from the rebuilt state
        for n in ("paused", "stopped", "born"):
            self.assertEqual(self.req("PUT", f"/connectors/{n}/resume")[0], 202)
        for t in ("t_paused", "t_stopped", "t_born"):
            self.assertTrue(wait_records(self.cluster.dst.bootstrap, t + ".replica", 100, 30000),
                            f"{t} not copied after resume")
        self.wait_state("paused", "RUNNING", 1)
        self.wait_state("stopped", "RUNNING", 2)
        self.wait_state("born", "RUNNING", 1)
        st, info3, _, _ = self.req("GET", "/connectors?expand=info")
        self.assertEqual(info3["paused"], info["paused"])

    def test_b_kill9_mid_copy(self):
        src, dst = self.cluster.src.bootstrap, self.cluster.dst.bootstrap
        produce(src, "bulk", BULK_N, size=100, partitions=8)
        self.assertEqual(count(src, "bulk")["total"], BULK_N)
        t0 = time.monotonic()
        # lz4: see the fixture limit in the module docstring
        self.create(self.config("bulk", "bulk", **{"tasks.max": "4",
                                                   "producer.override.compression.type": "lz4"}))

        def offsets_flushed():
            st, js, _, _ = self.req("GET", "/connectors/bulk/offsets")
            return st == 200 and sum(e["offset"]["offset"] for e in js["offsets"])
        samples = []     # (time, records in the destination): the copy rate before the kill

        def progressed():
            samples.append((time.monotonic(), self.dst_total("bulk.replica")))
            return offsets_flushed()
        wait_until(progressed, 120, interval=0.01,
                   what="the copy to start and its first offsets to be flushed")
        self.worker.kill9()
        at_kill = self.dst_total("bulk.replica")
        samples.append((time.monotonic(), at_kill))
        log(f"killed after {time.monotonic() - t0:.1f} s with {at_kill} of {BULK_N} copied")
        self.assertGreater(at_kill, 0)
        self.assertLess(at_kill, BULK_N, "the copy finished before the kill; nothing was tested")
        # the most records copied within any two flush intervals
        window = 2 * FLUSH_MS / 1000
        burst = max(n - max([m for t2, m in samples if t2 <= t - window] or [0])
                    for t, n in samples)

        self.worker.restart()
        wait_for_leadership(self.cluster.url)
        self.assertTrue(wait_records(dst, "bulk.replica", BULK_N, 120000),
                        f"copy incomplete after the restart: {self.dst_total('bulk.replica')}")
        wait_until(lambda: offsets_flushed() == BULK_N, 30,
                   what="the offsets to reach the end of every partition")
        lows = [p["low"] for p in count(dst, "bulk.replica")["per_partition"]]
        self.assertEqual(lows, [0] * 8, "the mock dropped old records (too many duplicates for "
                                        "its ~5 MB partitions); compare would be meaningless")
        r = compare(src, "bulk", dst, "bulk.replica")
        print(f"kill -9 mid-copy: {r['duplicates']} duplicate(s); {at_kill} copied at the kill; "
              f"at most {burst} copied within {window:.2f} s", file=sys.stderr)
        self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0), r)
        self.assertEqual(r["source"], BULK_N)
        self.assertEqual(r["rc"], 0, r)
        # at-least-once: what was copied after the last offset flush that reached the offsets
        # topic is copied again, i.e. at most two flush intervals' worth (+ one batch of slack).
        self.assertLessEqual(r["duplicates"], burst + 5000,
                             f"more duplicates than two flush intervals can explain: {r}")
        self.assertEqual(r["dest"], BULK_N + r["duplicates"])

if __name__ == "__main__":
    unittest.main(verbosity=2)
