"""test_batch: batch passthrough (worker/bpass.c) end to end, with real processes.

The copy forwards each source record batch as it is; these tests prove, against the mock
clusters, that the records arrive exactly (partition, order, key, value, headers, timestamp),
that the batch path is the one that copied them (the task metrics), and that what cannot be
forwarded goes to the record path from the right offset:

  a. compressed batches with and without headers: exact, no header added, nothing decoded
  b. a stored offset inside a batch (set over REST): that partition goes record by record from
     exactly there, the others stay forwarded
  c. a transactional source: its batches forwarded as ferry's own (markers and aborted
     transactions: tests/unit/bpass_test.c, the mock writes no markers)
  d. copy.mode: record copies record by record; batch with per-record changes is refused; auto
     with provenance headers goes record by record
  e. pause and resume while forwarding: exact

Kill -9 with the batch path is test_replication's test_h3; the drills run with it on (auto).
The mock cluster checks neither CRCs nor producer sequences on produce (test_kafkajs reads the
copies with an independent client that does).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import consume, count, http, produce, wait_until  # noqa: E402
from test_replication import CopyTestCase  # noqa: E402

SRC_TOPICS = {"zipped": 4, "mid": 2, "txn": 2, "rec": 2, "prov": 2, "pause": 4}
DST_TOPICS = {f"{t}.replica": n for t, n in SRC_TOPICS.items()}


class BatchTest(CopyTestCase):
    cluster_args = dict(workers=1, src_topics=SRC_TOPICS, dst_topics=DST_TOPICS)

    def metric(self, family, name):
        return self.task_metric(family, name)

    def forwarded(self, connector, topic):
        """{partition: ferry_partition_forwarded} of the connector's partitions of topic."""
        st, _, raw, _ = http("GET", self.url + "/metrics")
        self.assertEqual(st, 200, raw)
        out = {}
        for line in raw.decode().splitlines():
            if line.startswith("ferry_partition_forwarded{") and f'connector="{connector}"' in line \
                    and f'topic="{topic}"' in line:
                part = int(line.split('partition="', 1)[1].split('"', 1)[0])
                out[part] = float(line.rsplit(" ", 1)[1])
        return out

    def test_a_compressed_batches_forwarded_exactly(self):
        produce(self.src, "zipped", 20_000, xconf=("compression.codec=lz4",))
        produce(self.src, "zipped", 300, start=20_000, headers=False, xconf=("compression.codec=zstd",))
        self.create("zipped", topic="zipped", rename="zipped.replica")      # copy.mode=auto
        self.wait_total("zipped.replica", 20_300, timeout=60)
        self.assert_exact("zipped", "zipped.replica", 20_300)
        # the batch path copied every record: none went record by record
        wait_until(lambda: self.metric("ferry_task_batch_records_total", "zipped") == 20_300, 10,
                   what="every record counted as forwarded")
        self.assertGreater(self.metric("ferry_task_batches_total", "zipped"), 0)
        self.assertEqual(self.metric("ferry_task_batch_fallbacks_total", "zipped"), 0)
        self.assertEqual(self.forwarded("zipped", "zipped"), {p: 1.0 for p in range(4)})
        # the same offsets on both sides, and the headers exactly the source's (no offset header)
        for part, off in ((0, 0), (1, 2500), (3, 5000)):
            want = consume(self.src, "zipped", 3, partition=part, offset=off)
            got = consume(self.dst, "zipped.replica", 3, partition=part, offset=off)
            self.assertEqual(len(want), 3)
            self.assertEqual(got, want)
        self.assertTrue(self.log_lines("zipped-0 copying 4 partition(s) (4 forwarding record batches"))

    def test_b_offset_inside_a_batch_goes_record_by_record(self):
        n = 4000
        produce(self.src, "mid", n)   # batches of up to 10,000 records: offset 7 is inside one
        self.create("mid", topic="mid", rename="mid.replica", **{"copy.mode": "batch"})
        self.wait_total("mid.replica", n, timeout=60)
        per = [p["high"] - p["low"] for p in count(self.src, "mid")["per_partition"]]
        wait_until(lambda: self.stored_offsets("mid") == n, 30, what="offsets stored")
        st, _, raw, _ = self.request("PUT", "/connectors/mid/stop")
        self.assertEqual(st, 204, raw)
        self.wait_tasks_gone("mid")
        patch = {"offsets": [{"partition": {"topic": "mid", "partition": 0}, "offset": {"offset": 7}}]}
        st, _, raw, _ = self.request("PATCH", "/connectors/mid/offsets", patch)
        self.assertEqual(st, 200, raw)
        st, _, raw, _ = self.request("PUT", "/connectors/mid/resume")
        self.assertEqual(st, 202, raw)
        again = per[0] - 7
        self.wait_total("mid.replica", n + again, timeout=60)
        self.assertTrue(self.log_lines("mid[0] copied record by record from offset 7 on: the first batch "
                                       "starts before the wanted offset"))
        self.assertEqual(self.metric("ferry_task_batch_fallbacks_total", "mid"), 1)
        self.assertEqual(self.forwarded("mid", "mid"), {0: 0.0, 1: 1.0})
        # the re-copy starts at the source's offset 7 of partition 0: record 14 (records
        # alternate between the two partitions), record by record (with the offset header)
        first = consume(self.dst, "mid.replica", 1, partition=0, offset=per[0])[0]
        self.assertEqual(first["key"], "k14")
        self.assertIn("__ferry.offset", [h[0] for h in first["headers"]])
        # partition 1 stayed forwarded, and nothing more arrives than the re-copy
        wait_until(lambda: self.stored_offsets("mid") == n, 30, what="offsets stored again")
        c = count(self.dst, "mid.replica")
        self.assertEqual([p["high"] for p in c["per_partition"]], [per[0] + again, per[1]], c)

    def wait_tasks_gone(self, name):
        wait_until(lambda: (lambda s: s if s and s["connector"]["state"] == "STOPPED" and not s["tasks"]
                            else None)(self.status(name)), 30, what=f"{name} STOPPED without tasks")

    def test_c_transactional_source(self):
        """Batches written in transactions are forwarded as batches of ferry's idempotent
        producer (the transactional bit cleared: they belong to no transaction of ferry's). The
        mock writes no transaction markers, so the markers and aborted transactions are tested
        in tests/unit/bpass_test.c."""
        n = 6000
        produce(self.src, "txn", n, txn_size=500)
        self.create("txn", topic="txn", rename="txn.replica")
        self.wait_total("txn.replica", n, timeout=60)
        wait_until(lambda: self.metric("ferry_task_batch_records_total", "txn") == n, 10,
                   what="every record forwarded")
        self.assertEqual(self.metric("ferry_task_batch_fallbacks_total", "txn"), 0)
        self.compare_in_order("txn", "txn.replica")
        self.assert_exact("txn", "txn.replica", n)

    def compare_in_order(self, src_topic, dst_topic):
        from ferrytest import compare
        r = compare(self.src, src_topic, self.dst, dst_topic)
        self.assertEqual((r["missing"], r["duplicates"], r["reordered"], r["mismatched"], r["rc"]),
                         (0, 0, 0, 0, 0), r)
        return r

    def test_d_copy_modes(self):
        produce(self.src, "rec", 3000)
        self.create("rec", topic="rec", rename="rec.replica", **{"copy.mode": "record"})
        self.wait_total("rec.replica", 3000, timeout=60)
        self.assert_exact("rec", "rec.replica", 3000)
        self.assertEqual(self.metric("ferry_task_batch_records_total", "rec"), 0)
        self.assertEqual(self.forwarded("rec", "rec"), {0: 0.0, 1: 0.0})
        first = consume(self.dst, "rec.replica", 1, partition=0, offset=0)[0]
        self.assertIn("__ferry.offset", [h[0] for h in first["headers"]])
        # refused at the door
        for extra, needle in (({"copy.mode": "fast"}, "Invalid value fast for configuration copy.mode"),
                              ({"copy.mode": "batch", "provenance.header.enable": "true"},
                               "Invalid value batch for configuration copy.mode")):
            st, js, raw, _ = self.request("POST", "/connectors", {"name": "bad", "config": {
                **self.seed("bad", "rec"), **extra}})
            self.assertEqual(st, 400, raw)
            self.assertIn(needle, js["message"])
        # auto with a per-record change: record by record
        produce(self.src, "prov", 1000)
        self.create("prov", topic="prov", rename="prov.replica", **{"provenance.header.enable": "true"})
        self.wait_total("prov.replica", 1000, timeout=60)
        self.assertEqual(self.metric("ferry_task_batch_records_total", "prov"), 0)
        first = consume(self.dst, "prov.replica", 1, partition=0, offset=0)[0]
        self.assertIn("__ferry.provenance", [h[0] for h in first["headers"]])

    def seed(self, name, topic):
        from ferrytest import seed_connector
        return seed_connector(self.src, name=name, topic=topic, rename=f"{topic}.replica")["config"]

    def test_e_pause_and_resume(self):
        produce(self.src, "pause", 8000)
        self.create("pause", topic="pause", rename="pause.replica")
        self.wait_total("pause.replica", 8000, timeout=60)
        self.assertEqual(self.request("PUT", "/connectors/pause/pause")[0], 202)
        self.wait_tasks("pause", state="PAUSED")
        produce(self.src, "pause", 8000, start=8000)
        self.assertEqual(self.request("PUT", "/connectors/pause/resume")[0], 202)
        self.wait_tasks("pause", state="RUNNING")
        self.wait_total("pause.replica", 16_000, timeout=60)
        self.assert_exact("pause", "pause.replica", 16_000)
        self.assertEqual(self.metric("ferry_task_batch_fallbacks_total", "pause"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
