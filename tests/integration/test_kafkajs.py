"""test_kafkajs: an independent Kafka client reads what batch passthrough wrote (issue 15).

ferry's batch path (worker/bpass.c, copy.mode=batch) forwards source record batches as they
are, rewriting base offset, partition leader epoch, producer id and epoch, base sequence and
the CRC. librdkafka's mock cluster checks neither CRCs nor sequence numbers on produce, and
kafkatool reads through librdkafka, ferry's own client library. So here
tests/integration/kjs/verify.js reads source and destination with KafkaJS (vendored, with its
own Fetch and batch decoding), walks each batch's raw bytes again and checks every CRC32C, the
sequence numbers a broker would enforce, every record (key, value, headers in order,
timestamp) against its source and, with --batches, every destination batch against its source
batch in all bytes but the rewritten fields.

Copied here: kafkatool records with and without headers (uncompressed), gzip-compressed by
librdkafka, and in committed transactions, and KafkaJS's own records (null and empty keys and
values, binary bytes, repeated and non-ASCII header names; uncompressed and gzip); also one
topic through the record path. And the oracle failing: destinations with other records, and
batches whose CRC KafkaJS's encoder was made to get wrong (the mock stores them as they are).

    FERRY_BUILD=build python3 tests/integration/test_kafkajs.py
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ClusterTestCase, count, http, log, produce, seed_connector,  # noqa: E402
                       wait_records, wait_until)

VERIFY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kjs", "verify.js")

SRC_TOPICS = {"kjs.plain": 3, "kjs.gz": 3, "kjs.txn": 2, "kjs.odd": 2, "kjs.rec": 2,
              "kjs.diff": 3, "kjs.twin": 2}
DST_TOPICS = {"kjs.plain.replica": 3, "kjs.gz.replica": 3, "kjs.txn.replica": 2,
              "kjs.odd.replica": 2, "kjs.rec.replica": 2, "kjs.diff.noheaders": 3,
              "kjs.diff.shifted": 3, "kjs.diff.short": 3, "kjs.twin.badcrc": 2}


def verify(*args, timeout_s=60):
    """Runs verify.js; returns (exit code, its JSON line as a dict)."""
    node = shutil.which("node")
    if not node:
        raise AssertionError("node not found (scripts/deps.sh installs the nodejs package)")
    argv = [node, VERIFY] + [str(a) for a in args]
    if args[0] != "selftest":
        argv += ["--timeout-ms", str((timeout_s - 5) * 1000)]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout_s)
    out = r.stdout.decode("utf-8", "replace").strip()
    try:
        report = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"verify.js {args[0]} (rc={r.returncode}) printed no JSON line: "
                             f"{out!r} {r.stderr.decode('utf-8', 'replace')!r}")
    brief = {k: v for k, v in report.items() if k != "errors"}
    log(f"verify.js {args[0]}: rc={r.returncode} {json.dumps(brief)}")
    for e in report.get("errors") or []:
        log(f"  {e}")
    return r.returncode, report


def kjs_produce(bs, topic, n, start=0, partitions=2, gzip=False, corrupt_crc=False):
    """verify.js produce: KafkaJS's records (see verify.js), n of them from number `start`."""
    flags = ["--gzip"] * gzip + ["--corrupt-crc"] * corrupt_crc
    rc, r = verify("produce", "--bootstrap", bs, "--topic", topic, "--count", n, "--start", start,
                   "--partitions", partitions, *flags)
    if rc != 0:
        raise AssertionError(f"verify.js produce to {topic}: {r}")


class KafkaJsTest(ClusterTestCase):
    cluster_args = dict(workers=1, src_topics=SRC_TOPICS, dst_topics=DST_TOPICS)

    @property
    def src(self):
        return self.cluster.src.bootstrap

    @property
    def dst(self):
        return self.cluster.dst.bootstrap

    def create(self, name, topic, rename, **overrides):
        """POSTs a connector built from the seed request (retried while the worker answers 409)."""
        req = seed_connector(self.src, name=name, topic=topic, rename=rename, **overrides)

        def attempt():
            reply = http("POST", self.cluster.url + "/connectors", req)
            return reply if reply[0] != 409 else None
        st, _, raw, _ = wait_until(attempt, 30, interval=0.2, what=f"create {name}")
        self.assertEqual(st, 201, f"create {name}: {raw!r}")

    def task_metric(self, family, connector):
        """The sum over the connector's tasks of a task counter in GET /metrics."""
        st, _, raw, _ = http("GET", self.cluster.url + "/metrics")
        self.assertEqual(st, 200, raw)
        return sum(float(line.rsplit(" ", 1)[1]) for line in raw.decode().splitlines()
                   if line.startswith(family + "{") and f'connector="{connector}"' in line)

    def copy(self, name, topic, n, **overrides):
        """Copies `topic` to `<topic>.replica` and waits until it holds n records."""
        rename = f"{topic}.replica"
        self.create(name, topic, rename, **overrides)
        self.assertTrue(wait_records(self.dst, rename, n, timeout_ms=30000),
                        f"{rename}: {(count(self.dst, rename) or {}).get('total')} of {n} records")
        return rename

    def assert_forwarded(self, name, dst_topic, n):
        """Every record went through batch passthrough, and no more arrived than were sent."""
        family = "ferry_task_batch_records_total"
        wait_until(lambda: self.task_metric(family, name) >= n, 15,
                   what=f"{family}{{connector={name}}} to reach {n}")
        self.assertEqual(self.task_metric(family, name), n)
        self.assertEqual(self.task_metric("ferry_task_batch_fallbacks_total", name), 0)
        self.assertEqual(count(self.dst, dst_topic)["total"], n)

    def assert_verified(self, src_topic, dst_topic, n, *flags):
        rc, r = verify("compare", "--src", self.src, "--src-topic", src_topic,
                       "--dst", self.dst, "--dst-topic", dst_topic, *flags)
        self.assertEqual(rc, 0, r)
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["src"]["records"], r["dst"]["records"], r["compared"]), (n, n, n), r)
        self.assertEqual((r["dst"]["bad_crc"], r["src"]["bad_crc"], r["dst"]["sequence_errors"]),
                         (0, 0, 0), r)
        self.assertGreater(r["dst"]["batches"], 0, r)
        return r

    # ------------------------------------------------------------------ the oracle itself

    def test_a_selftest(self):
        """CRC32C("123456789") = 0xE3069283, KafkaJS's own CRC agrees, every flipped byte of a
        KafkaJS-encoded batch is caught, the record comparison tells null from empty."""
        rc, r = verify("selftest")
        self.assertEqual((rc, r["ok"], r["failed"]), (0, True, []), r)

    # ------------------------------------------------------------------ batch passthrough

    def test_b_uncompressed_with_headers(self):
        """kafkatool's records, with headers and without, in librdkafka's idempotent batches."""
        produce(self.src, "kjs.plain", 3000)
        produce(self.src, "kjs.plain", 300, start=3000, headers=False)
        dst = self.copy("kjs-plain", "kjs.plain", 3300, **{"copy.mode": "batch"})
        self.assert_forwarded("kjs-plain", dst, 3300)
        r = self.assert_verified("kjs.plain", dst, 3300, "--batches")
        self.assertEqual(set(r["dst"]["codecs"]), {"none"}, r)

    def test_c_gzip(self):
        """The same, compressed by librdkafka: the gzip bytes are forwarded as they are."""
        produce(self.src, "kjs.gz", 3000, xconf=("compression.codec=gzip",))
        dst = self.copy("kjs-gz", "kjs.gz", 3000, **{"copy.mode": "batch"})
        self.assert_forwarded("kjs-gz", dst, 3000)
        r = self.assert_verified("kjs.gz", dst, 3000, "--batches")
        self.assertEqual(set(r["dst"]["codecs"]), {"gzip"}, r)

    def test_c_transactional_source(self):
        """Records of committed transactions: the copies are ferry's idempotent batches, without
        the transactional bit, and otherwise as in the source (the mock writes no markers)."""
        produce(self.src, "kjs.txn", 1000, txn_size=100, timeout_ms=30000)
        dst = self.copy("kjs-txn", "kjs.txn", 1000, **{"copy.mode": "batch"})
        self.assert_forwarded("kjs-txn", dst, 1000)
        r = self.assert_verified("kjs.txn", dst, 1000, "--batches")
        self.assertEqual(r["src"]["transactional_batches"], r["src"]["batches"], r)
        self.assertEqual(r["dst"]["transactional_batches"], 0, r)

    def test_d_kafkajs_records(self):
        """Null and empty keys and values, binary bytes, repeated and non-ASCII header names,
        written by KafkaJS's producer (its own batch encoder and gzip), forwarded as they are."""
        kjs_produce(self.src, "kjs.odd", 400)
        kjs_produce(self.src, "kjs.odd", 400, start=400, gzip=True)
        dst = self.copy("kjs-odd", "kjs.odd", 800, **{"copy.mode": "batch"})
        self.assert_forwarded("kjs-odd", dst, 800)
        r = self.assert_verified("kjs.odd", dst, 800, "--batches")
        self.assertEqual(set(r["dst"]["codecs"]), {"none", "gzip"}, r)

    def test_e_record_path_same_records_other_batches(self):
        """The record path re-encodes records (librdkafka's producer): the records are the
        same, the batches are not, and --batches says so."""
        kjs_produce(self.src, "kjs.rec", 400)
        kjs_produce(self.src, "kjs.rec", 400, start=400, gzip=True)
        dst = self.copy("kjs-rec", "kjs.rec", 800,
                        **{"copy.mode": "record", "source.offset.header.enable": "false"})
        wait_until(lambda: count(self.dst, dst)["total"] == 800, 15, what=f"{dst}: 800 records")
        self.assertEqual(self.task_metric("ferry_task_batch_records_total", "kjs-rec"), 0)
        self.assert_verified("kjs.rec", dst, 800)
        rc, r = verify("compare", "--src", self.src, "--src-topic", "kjs.rec",
                       "--dst", self.dst, "--dst-topic", dst, "--batches")
        self.assertEqual((rc, r["mismatched"]), (1, 0), r)
        self.assertGreater(r["batch_mismatches"], 0, r)

    # ------------------------------------------------------------------ the oracle failing

    def test_f_other_records_fail(self):
        """Destinations that differ from the source (written here with kafkatool, not by ferry)
        fail: every record without its headers, each partition one record ahead, one record
        missing."""
        produce(self.src, "kjs.diff", 300)
        produce(self.dst, "kjs.diff.noheaders", 300, headers=False)
        produce(self.dst, "kjs.diff.shifted", 300, start=3)
        produce(self.dst, "kjs.diff.short", 299)
        cases = (("kjs.diff.noheaders", (300, 0, 0), "headers [seq="),
                 ("kjs.diff.shifted", (300, 0, 0), "key 6b30 vs 6b33"),     # k0 vs k3
                 ("kjs.diff.short", (0, 1, 0), "partition 2: 100 source records, 99 destination"))
        for topic, diff, needle in cases:
            rc, r = verify("compare", "--src", self.src, "--src-topic", "kjs.diff",
                           "--dst", self.dst, "--dst-topic", topic)
            self.assertEqual((rc, r["ok"]), (1, False), f"{topic}: {r}")
            self.assertEqual((r["mismatched"], r["missing"], r["extra"]), diff, f"{topic}: {r}")
            self.assertIn(needle, " ".join(r["errors"]), f"{topic}: {r}")
            self.assertEqual((r["src"]["bad_crc"], r["dst"]["bad_crc"]), (0, 0), r)

    def test_g_bad_crc_fails(self):
        """Batches with a wrong CRC (KafkaJS's encoder made to store CRC32C ^ 1; the mock
        stores them as they are) are caught through a real Fetch, the records being equal."""
        kjs_produce(self.src, "kjs.twin", 200, gzip=True)
        kjs_produce(self.dst, "kjs.twin.badcrc", 200, gzip=True, corrupt_crc=True)
        rc, r = verify("compare", "--src", self.src, "--src-topic", "kjs.twin",
                       "--dst", self.dst, "--dst-topic", "kjs.twin.badcrc", "--batches")
        self.assertEqual((rc, r["ok"], r["mismatched"], r["batch_mismatches"]), (1, False, 0, 0), r)
        self.assertGreater(r["dst"]["batches"], 0, r)
        self.assertEqual((r["src"]["bad_crc"], r["dst"]["bad_crc"]), (0, r["dst"]["batches"]), r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
