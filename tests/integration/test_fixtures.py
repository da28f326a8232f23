"""test_fixtures: proves the test fixtures themselves work, and that the checker can fail.

Every other integration test trusts mockcluster, kafkatool compare and the ZooKeeper launcher;
if those were wrong (say, compare always said "equal"), the replication tests would prove
nothing. So this file runs them without any ferry-worker: ZooKeeper standalone and as a 3-node
ensemble, both mock clusters, the record generator, and compare on copies that are exact,
short, duplicated, reordered or different. Runs in well under a minute.
"""
import json
import os
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ClusterTestCase, ZooKeeper, compare, consume, count, http,  # noqa: E402
                       kafkatool, log, produce, seed_connector, wait_records, wait_until)

N = 20000


class FixtureTest(ClusterTestCase):
    cluster_args = dict(workers=0,
                        src_topics={"src": 8, "short": 8, "once": 4, "twice": 4, "reorder": 4,
                                    "mixed": 8},
                        dst_topics={"same": 4, "other": 4, "copied": 8})
    _produced = set()

    def src_topic(self, topic="src", n=N):
        """A source topic holding records 0..n-1, produced once for the whole class, so that
        each test also runs alone (python3 test_fixtures.py FixtureTest.test_g_...)."""
        if topic not in self._produced:
            produce(self.cluster.src.bootstrap, topic, n)
            self._produced.add(topic)
        return topic

    def test_a_zookeeper_standalone(self):
        zk = self.cluster.zk
        self.assertEqual(zk.mode(0), "standalone")
        self.assertIn("Mode: standalone", zk.srvr(0))
        self.assertRegex(zk.connect, r"^127\.0\.0\.1:\d+$")

    def test_b_produce_and_count(self):
        c = count(self.cluster.src.bootstrap, self.src_topic())
        self.assertEqual(c["partitions"], 8)
        self.assertEqual(c["total"], N)
        self.assertEqual([p["high"] - p["low"] for p in c["per_partition"]], [N // 8] * 8)

    def test_c_compare_with_itself(self):
        bs = self.cluster.src.bootstrap
        r = compare(bs, self.src_topic(), bs, "src", exact=True)
        self.assertEqual(r, {"source": N, "dest": N, "missing": 0, "duplicates": 0,
                             "reordered": 0, "mismatched": 0, "partitions_src": 8,
                             "partitions_dst": 8, "rc": 0,
                             "per_partition": [[p, N // 8, N // 8, 0, 0, 0, 0] for p in range(8)]})

    def test_d_missing_records_fail(self):
        bs = self.cluster.src.bootstrap
        produce(bs, "short", N - 1000, start=0)
        r = compare(bs, self.src_topic(), bs, "short")
        self.assertEqual((r["source"], r["dest"], r["missing"]), (N, N - 1000, 1000))
        self.assertEqual((r["duplicates"], r["reordered"], r["mismatched"]), (0, 0, 0))
        self.assertEqual(r["rc"], 1)

    def test_e_duplicates_fail_only_with_exact(self):
        bs = self.cluster.src.bootstrap
        produce(bs, "twice", 1000)
        produce(bs, "twice", 1000)
        r = compare(bs, self.src_topic("once", 1000), bs, "twice", exact=True)
        self.assertEqual((r["missing"], r["duplicates"], r["reordered"]), (0, 1000, 0))
        self.assertEqual(r["rc"], 1)
        self.assertEqual(compare(bs, "once", bs, "twice")["rc"], 0)  # at-least-once is fine

    def test_f_zookeeper_ensemble_survives_a_node(self):
        ens = ZooKeeper(os.path.join(self.cluster.tmpdir, "ensemble"), nodes=3)
        try:
            modes = [ens.mode(i) for i in range(3)]
            self.assertEqual(sorted(modes), ["follower", "follower", "leader"])
            self.assertEqual(len(ens.connect.split(",")), 3)
            leader = modes.index("leader")
            ens.stop_node(leader)          # the hardest case: the survivors must re-elect
            rest = [i for i in range(3) if i != leader]
            wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in rest), 30,
                       what="the two remaining zookeeper nodes to serve")
            self.assertEqual(sorted(ens.mode(i) for i in rest), ["follower", "leader"])
            ens.start_node(leader)         # and the stopped node rejoins
            self.assertIn(ens.mode(leader), ("leader", "follower"))
        finally:
            ens.stop()

    def test_g_reordered_records_fail(self):
        bs = self.cluster.src.bootstrap
        produce(bs, "reorder", 500, start=500)
        produce(bs, "reorder", 500, start=0)
        r = compare(bs, self.src_topic("once", 1000), bs, "reorder")
        self.assertEqual((r["missing"], r["duplicates"], r["reordered"]), (0, 0, 500))
        self.assertEqual(r["rc"], 1)
        # per partition [p, source, dest, missing, duplicates, reordered, mismatched] adds up
        self.assertEqual(sum(row[5] for row in r["per_partition"]), 500, r["per_partition"])
        self.assertEqual(sum(row[1] for row in r["per_partition"]), 1000)

    def test_h_cross_cluster_match_and_mismatch(self):
        src, dst = self.cluster.src.bootstrap, self.cluster.dst.bootstrap
        self.src_topic("once", 1000)
        produce(dst, "same", 1000)                   # same generator, same content
        self.assertEqual(compare(src, "once", dst, "same", exact=True)["rc"], 0)
        produce(dst, "other", 1000, size=50)         # same keys, different values
        r = compare(src, "once", dst, "other")
        self.assertEqual((r["missing"], r["mismatched"], r["rc"]), (1000, 1000, 1))
        produce(dst, "other", 10, headers=False, start=2000)
        self.assertEqual(compare(src, "once", dst, "other")["mismatched"], 1010)

    def test_i_consume_shows_exact_record(self):
        recs = consume(self.cluster.src.bootstrap, self.src_topic(), 2, partition=1, offset=0)
        self.assertEqual(len(recs), 2)
        r = recs[0]
        self.assertEqual((r["partition"], r["offset"], r["key"]), (1, 0, "k1"))
        self.assertEqual(len(r["value"]), 100)
        self.assertTrue(r["value"].startswith("v1:"))
        self.assertEqual(r["headers"], [["seq", "1"], ["src", "kafkatool"]])
        self.assertEqual(r["timestamp"], 1700000000001)
        self.assertEqual(recs[1]["key"], "k9")      # partition = i % 8

    def test_j_count_does_not_create_topics(self):
        bs = self.cluster.src.bootstrap
        self.assertIsNone(count(bs, "nosuch"))
        self.assertIsNone(count(bs, "nosuch"))      # a Metadata request would have made it
        self.assertFalse(wait_records(bs, "nosuch", 1, timeout_ms=300))

    def test_k_mock_control_protocol(self):
        m = self.cluster.dst
        m.create_topic("made", 3)
        self.assertEqual(count(m.bootstrap, "made")["partitions"], 3)
        with self.assertRaises(AssertionError):
            m.create_topic("made", 3)
        self.assertEqual(m.command("ping"), "ok")
        m.broker_down(2)
        m.broker_up(2)
        produce(m.bootstrap, "made", 300)
        self.assertTrue(wait_records(m.bootstrap, "made", 300, timeout_ms=5000))
        for t, p in {"connect-configs": 1, "connect-offsets": 25, "connect-status": 5}.items():
            self.assertEqual(count(m.bootstrap, t)["partitions"], p)

    def test_l_http_helper(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                out = json.dumps({"ct": self.headers.get("Content-Type"),
                                  "body": body.decode()}).encode()
                self.send_response(409 if self.path == "/conflict" else 201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{srv.server_address[1]}"
            st, js, raw, hdrs = http("POST", url + "/x", seed_connector("b:1"))
            self.assertEqual((st, js["ct"]), (201, "application/json"))
            self.assertEqual(json.loads(js["body"])["config"]["src.kafka.bootstrap.servers"],
                             "b:1")
            st, js, raw, hdrs = http("POST", url + "/conflict", raw=b"{not json")
            self.assertEqual((st, js["ct"], js["body"]), (409, None, "{not json"))
            self.assertEqual(hdrs["content-type"], "application/json")
        finally:
            srv.shutdown()
            srv.server_close()
        cfg = seed_connector("b:1", **{"topic.whitelist": None, "tasks.max": "4"})["config"]
        self.assertNotIn("topic.whitelist", cfg)
        self.assertEqual(cfg["tasks.max"], "4")
        log("http helper ok")

    def test_m_copy_is_faithful(self):
        """kafkatool copy (bench/run.py's minimal copier) keeps partition, order, key, value,
        headers and timestamp, and refuses a destination with fewer partitions."""
        src, dst = self.cluster.src.bootstrap, self.cluster.dst.bootstrap
        produce(src, "mixed", 1000)
        produce(src, "mixed", 500, start=1000, headers=False)
        rc, out = kafkatool("copy", "-s", src, "-t", "mixed", "-d", dst, "-T", "copied", "-n", 1500,
                            "-X", "consumer.fetch.wait.max.ms=10")
        self.assertEqual(rc, 0, out)
        r = json.loads(out)
        self.assertEqual((r["records"], r["partitions"]), (1500, 8))
        self.assertGreater(r["threads"], 1)
        self.assertIn(r["allocator"], ("jemalloc", "libc"))
        self.assertEqual(compare(src, "mixed", dst, "copied", exact=True)["rc"], 0)
        rc, out = kafkatool("copy", "-s", src, "-t", "mixed", "-d", dst, "-T", "same", "-n", 1)
        self.assertEqual(rc, 1, out)   # "same" has 4 partitions, "mixed" 8


if __name__ == "__main__":
    unittest.main(verbosity=2)
