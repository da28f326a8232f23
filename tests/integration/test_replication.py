"""test_replication: the EMRReplicatorSourceConnector end to end, with real processes.

One ZooKeeper, a source and a destination mock Kafka cluster and one ferry-worker are shared by
the whole class (ClusterTestCase); every test uses its own source topics, creates its own
connector and deletes it at the end, so each test also runs alone:

    FERRY_BUILD=/tmp/build-repl python3 tests/integration/test_replication.py \
        ReplicationTest.test_h_kill9_mid_copy

Covered: the seed scenario (100,000 records, exact copy), renaming by format and by literal,
several topics at once, topic.regex with a blacklist, headers and timestamps field by field,
partition counts (kept, and a too-small destination failing the task), a topic appearing while
the connector runs, kill -9 mid-copy, memory while copying, a source broker outage, and a
graceful SIGTERM mid-copy (clean exit, no duplicates after the restart).

Mock-cluster limits that shape the data (see /work/shared/research/environment.md): a partition
keeps only its last 5 MiB / 100k batches, so big topics get many partitions; there is no
CreateTopics, so every destination topic is pre-created with the source's partition count (or
deliberately another one); and partitions cannot be added to an existing topic, so "new
partitions" can only be tested as a new topic.
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ClusterTestCase, build_dir, compare, consume, count, http, log,  # noqa: E402
                       produce, seed_connector, wait_records, wait_until)

SRC_TOPICS = {
    "connect": 8,                                   # a: seed scenario
    "fmt.t": 4, "lit.t": 2,                         # b: renaming
    "a": 2, "b": 4, "c": 8,                         # c: several topics
    "orders.eu": 4, "orders.us": 2, "orders.secret": 2, "ordersx": 2,   # d: regex + blacklist
    "hdr": 3,                                       # e: headers and timestamps
    "hdr2": 2,                                      # e: ... without the source-offset header
    "narrow": 8,                                    # f: destination with fewer partitions
    "events.a": 4,                                  # g: new topic while running
    "crash": 16,                                    # h: kill -9
    "crash2": 16,                                   # h2: kill -9, no offset header
    "crash3": 16,                                   # h3: kill -9, batches forwarded
    "mem": 16,                                      # i: memory
    "outage": 8,                                    # j: source broker outage
    "graceful": 8,                                  # k: SIGTERM mid-copy
}
DST_TOPICS = {
    "connect.replica": 8,
    "mirror.fmt.t": 4, "literal.target": 2,
    "a.replica": 2, "b.replica": 4, "c.replica": 8,
    "orders.eu.replica": 4, "orders.us.replica": 2, "orders.secret.replica": 2,
    "hdr.replica": 3,
    "hdr2.replica": 2,
    "narrow.replica": 2,                            # fewer than the source's 8, on purpose
    "events.a.replica": 4,
    "crash.replica": 16,
    "crash2.replica": 16,
    "crash3.replica": 16,
    "mem.replica": 16,
    "outage.replica": 8,
    "graceful.replica": 8,
}

RSS_LIMIT_KB = 512 * 1024


def proc_status_kb(pid, field):
    """A `VmXXX:` line of /proc/<pid>/status in kB (None if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None



def split_offset_header(headers):
    """(the other headers, the source offset) of a copied record's headers: ferry appends
    __ferry.offset, an 8-byte big-endian source offset (kafkatool shows bytes >= 0x80 that
    are not UTF-8 as the code points of the same value)."""
    others = [h for h in headers if h[0] != "__ferry.offset"]
    mine = [h for h in headers if h[0] == "__ferry.offset"]
    if len(mine) != 1:
        return others, None
    raw = bytes(ord(c) for c in mine[0][1])
    return others, int.from_bytes(raw, "big") if len(raw) == 8 else None

class CopyTestCase(ClusterTestCase):
    """One worker and the topics above; helpers only (the tests are in the subclasses)."""
    cluster_args = dict(workers=1, src_topics=SRC_TOPICS, dst_topics=DST_TOPICS)

    # ------------------------------------------------------------------ helpers

    @property
    def src(self):
        return self.cluster.src.bootstrap

    @property
    def dst(self):
        return self.cluster.dst.bootstrap

    @property
    def url(self):
        return self.cluster.url

    @property
    def worker(self):
        return self.cluster.workers[0]

    def request(self, method, path, body=None, timeout=30):
        """One REST call, retried while the worker answers 409 (it is (re)joining its group
        after a restart; Kafka Connect answers the same during a rebalance)."""
        def attempt():
            reply = http(method, self.url + path, body)
            return reply if reply[0] != 409 else None
        return wait_until(attempt, timeout, interval=0.2, what=f"{method} {path} to stop answering 409")

    def create(self, name, topic="connect", rename="connect.replica", **overrides):
        """POSTs a connector built from the seed request; deleted when the test ends."""
        req = seed_connector(self.src, name=name, topic=topic, rename=rename, **overrides)
        st, body, raw, _ = self.request("POST", "/connectors", req)
        self.assertEqual(st, 201, f"create {name}: {raw!r}")
        self.assertEqual(body["name"], name)
        self.addCleanup(self.delete, name)
        return body

    def delete(self, name):
        if not self.worker.alive():
            return
        st, _, raw, _ = self.request("DELETE", f"/connectors/{name}")
        if st not in (204, 404):
            log(f"delete {name}: {st} {raw!r}")

    def status(self, name):
        st, body, raw, _ = http("GET", f"{self.url}/connectors/{name}/status")
        return body if st == 200 else None

    def task_configs(self, name):
        st, body, raw, _ = http("GET", f"{self.url}/connectors/{name}/tasks")
        self.assertEqual(st, 200, raw)
        return {t["id"]["task"]: t["config"] for t in body}

    def wait_tasks(self, name, state="RUNNING", n=None, timeout=30):
        """Waits until the connector has tasks (n of them, if given) all in `state`."""
        def ok():
            s = self.status(name)
            if not s or not s.get("tasks"):
                return None
            if n is not None and len(s["tasks"]) != n:
                return None
            return s if all(t["state"] == state for t in s["tasks"]) else None
        return wait_until(ok, timeout, interval=0.2,
                          what=f"connector {name}: tasks {state}" + (f" (n={n})" if n else ""))

    def wait_total(self, topic, total, timeout=120):
        """Waits until the destination topic holds at least `total` records."""
        self.assertTrue(wait_records(self.dst, topic, total, timeout_ms=timeout * 1000),
                        f"{topic} did not reach {total} records within {timeout} s "
                        f"(has {(count(self.dst, topic) or {}).get('total')})")

    def assert_exact(self, src_topic, dst_topic, n):
        r = compare(self.src, src_topic, self.dst, dst_topic, exact=True)
        self.assertEqual((r["source"], r["dest"]), (n, n), r)
        self.assertEqual((r["missing"], r["duplicates"], r["reordered"], r["mismatched"]),
                         (0, 0, 0, 0), r)
        self.assertEqual(r["partitions_dst"], r["partitions_src"], r)
        self.assertEqual(r["rc"], 0, r)
        return r

    def task_metric(self, family, connector):
        """The sum over the connector's tasks of a task family in GET /metrics (0 if none)."""
        st, _, raw, _ = http("GET", self.url + "/metrics")
        self.assertEqual(st, 200, raw)
        total = 0.0
        for line in raw.decode().splitlines():
            if line.startswith(family + "{") and f'connector="{connector}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_lines(self, needle):
        with open(self.worker.logpath, errors="replace") as f:
            return [line for line in f if needle in line]

    def stored_offsets(self, name):
        """Sum of the next offsets the connector has stored in the offset topic."""
        st, body, raw, _ = http("GET", f"{self.url}/connectors/{name}/offsets")
        self.assertEqual(st, 200, raw)
        return sum(o["offset"]["offset"] for o in body["offsets"])

    def produce_in_background(self, topic, n, rate):
        """Produces n records at `rate` per second in a thread; returns a join() function that
        re-raises a failure."""
        errors = []

        def run():
            try:
                produce(self.src, topic, n, size=100, rate=rate, timeout_ms=120000)
            except BaseException as e:       # noqa: BLE001 - reported by join()
                errors.append(e)
        th = threading.Thread(target=run, daemon=True)
        th.start()

        def join():
            th.join(120)
            self.assertFalse(th.is_alive(), f"producing to {topic} did not finish")
            if errors:
                raise errors[0]
        return join

    def kill9_mid_copy(self, topic, header, **overrides):
        n, rate = 200_000, 40_000
        self.create(topic, topic=topic, rename=f"{topic}.replica",
                    **{"tasks.max": "2", "source.offset.header.enable": str(header).lower(), **overrides})
        self.wait_tasks(topic, n=2)
        # The copy keeps up with any producer here, so the source is fed at a fixed rate (5 s
        # in all): the kill then lands mid-copy and after some offsets were flushed.
        join = self.produce_in_background(topic, n, rate)
        seen = []

        def in_window():
            c = count(self.dst, f"{topic}.replica")
            total = c["total"] if c else 0
            seen.append(total)
            if total > 0.8 * n:
                raise AssertionError(f"copy passed 80% before the kill could happen: {seen}")
            if total < 0.2 * n:
                return None
            stored = self.stored_offsets(topic)
            return (total, stored) if stored >= 0.1 * n else None
        _, stored = wait_until(in_window, 60, interval=0.05,
                               what=f"{topic}.replica to hold 20% with offsets stored")
        self.worker.kill9()
        at_kill = count(self.dst, f"{topic}.replica")["total"]
        log(f"killed at {at_kill} of {n} records, {stored} offsets stored before the kill")
        self.assertLessEqual(at_kill, 0.8 * n)
        self.assertGreaterEqual(at_kill, 0.2 * n)
        self.worker.restart()
        join()
        self.wait_total(f"{topic}.replica", n, timeout=120)
        time.sleep(1.5)          # let anything re-sent after the restart land before comparing
        r = compare(self.src, topic, self.dst, f"{topic}.replica")
        print(f"\n  kill -9 at {at_kill}/{n} ({stored} stored, offset header "
              f"{'on' if header else 'off'}): duplicates after restart = {r['duplicates']} "
              f"(offset.flush.interval.ms=1000, {rate} rec/s)", file=sys.stderr, flush=True)
        self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0), r)
        self.assertEqual(r["source"], n)
        self.assertEqual(r["dest"], n + r["duplicates"])
        self.assertEqual(r["partitions_dst"], 16)
        self.wait_tasks(topic, n=2)
        return r, at_kill, stored



class ReplicationTest(CopyTestCase):

    # ------------------------------------------------------------------ 1. seed scenario

    def test_a_seed_scenario(self):
        n = 100_000
        produce(self.src, "connect", n, size=100)
        t0 = time.monotonic()
        st, body, raw, _ = self.request("POST", "/connectors", seed_connector(self.src))  # verbatim
        self.assertEqual(st, 201, raw)
        self.addCleanup(self.delete, "connect-test")
        self.assertEqual(body["name"], "connect-test")
        self.assertEqual(body["config"]["topic.whitelist"], "connect")
        self.wait_total("connect.replica", n, timeout=120)
        secs = time.monotonic() - t0
        print(f"\n  seed: copied {n} records (100 B, headers) in {secs:.2f} s = {n / secs:,.0f} rec/s "
              f"(from the POST, ASan build if FERRY_SANITIZE)", file=sys.stderr, flush=True)
        c = count(self.dst, "connect.replica")
        self.assertEqual(c["partitions"], 8)
        self.assertEqual([p["high"] - p["low"] for p in c["per_partition"]], [n // 8] * 8)
        r = self.assert_exact("connect", "connect.replica", n)
        self.assertEqual(r["partitions_src"], 8)
        s = self.wait_tasks("connect-test", n=1)
        self.assertEqual(s["connector"]["state"], "RUNNING")

    # ------------------------------------------------------------------ 2. renaming

    def test_b_rename_by_format_and_literal(self):
        produce(self.src, "fmt.t", 2000)
        produce(self.src, "lit.t", 1000)
        self.create("fmt", topic="fmt.t", rename="mirror.${topic}")
        self.create("lit", topic="lit.t", rename="literal.target")
        self.wait_total("mirror.fmt.t", 2000, timeout=60)
        self.wait_total("literal.target", 1000, timeout=60)
        self.assert_exact("fmt.t", "mirror.fmt.t", 2000)
        self.assert_exact("lit.t", "literal.target", 1000)
        # no copy under the default name, and nothing under the unsubstituted format
        self.assertIsNone(count(self.dst, "fmt.t.replica"))
        self.assertIsNone(count(self.dst, "lit.t.replica"))
        self.assertIsNone(count(self.dst, "mirror.${topic}"))
        # the tasks carry the rename format, and /topics names the targets
        self.assertEqual(self.task_configs("fmt")[0]["topic.rename.format"], "mirror.${topic}")
        st, body, raw, _ = http("GET", f"{self.url}/connectors/fmt/topics")
        self.assertEqual(st, 200, raw)
        self.assertEqual(body, {"fmt": {"topics": ["mirror.fmt.t"]}})
        # a literal name with two topics is refused up front (400, nothing created)
        req = seed_connector(self.src, name="lit2", **{"topic.whitelist": "fmt.t,lit.t",
                                                      "topic.rename.format": "one.target"})
        st, body, raw, _ = http("POST", self.url + "/connectors", req)
        self.assertEqual(st, 400, raw)
        self.assertIn("topic.rename.format", body["message"])
        self.assertEqual(http("GET", f"{self.url}/connectors/lit2")[0], 404)

    # ------------------------------------------------------------------ 3. several topics

    def test_c_whitelist_several_topics(self):
        sizes = {"a": 2000, "b": 4000, "c": 8000}
        for t, n in sizes.items():
            produce(self.src, t, n)
        self.create("multi", topic="a, b ,c", rename="${topic}.replica", **{"tasks.max": "3"})
        for t, n in sizes.items():
            self.wait_total(f"{t}.replica", n, timeout=60)
        for t, n in sizes.items():
            r = self.assert_exact(t, f"{t}.replica", n)
            self.assertEqual(r["partitions_src"], SRC_TOPICS[t])
        # 14 partitions over 3 tasks: balanced, each partition exactly once
        tc = self.task_configs("multi")
        self.assertEqual(len(tc), 3)
        parts = [p for cfg in tc.values() for p in cfg["task.partitions"].split(",")]
        self.assertEqual(sorted(parts), sorted(f"{t}:{p}" for t in sizes for p in range(SRC_TOPICS[t])))
        sizes_ = sorted(len(cfg["task.partitions"].split(",")) for cfg in tc.values())
        self.assertLessEqual(sizes_[-1] - sizes_[0], 1, tc)
        self.wait_tasks("multi", n=3)

    # ------------------------------------------------------------------ 4. regex + blacklist

    def test_d_regex_with_blacklist(self):
        data = {"orders.eu": 4000, "orders.us": 2000, "orders.secret": 2000, "ordersx": 500}
        for t, n in data.items():
            produce(self.src, t, n)
        self.create("regex", topic=None, rename="${topic}.replica",
                    **{"topic.whitelist": None, "topic.regex": "orders\\..*",
                       "topic.blacklist": "orders.secret", "tasks.max": "2"})
        self.wait_total("orders.eu.replica", 4000, timeout=60)
        self.wait_total("orders.us.replica", 2000, timeout=60)
        self.assert_exact("orders.eu", "orders.eu.replica", 4000)
        self.assert_exact("orders.us", "orders.us.replica", 2000)
        # only the two selected topics are in the task configs
        tc = self.task_configs("regex")
        topics = {p.rsplit(":", 1)[0] for cfg in tc.values() for p in cfg["task.partitions"].split(",")}
        self.assertEqual(topics, {"orders.eu", "orders.us"})
        # give a wrong copy of the blacklisted topic time to show up, then check it did not
        time.sleep(2)
        c = count(self.dst, "orders.secret.replica")
        self.assertEqual(c["total"], 0, c)
        self.assertIsNone(count(self.dst, "ordersx.replica"))   # regex is a whole-name match

    # ------------------------------------------------------------------ 5. headers, timestamps

    def test_e_headers_and_timestamps(self):
        produce(self.src, "hdr", 3000)                                  # with headers
        produce(self.src, "hdr", 300, start=3000, headers=False)        # without
        # the source-offset header is the record path's (a forwarded batch cannot take one)
        self.create("hdr", topic="hdr", rename="hdr.replica", **{"copy.mode": "record"})
        self.wait_total("hdr.replica", 3300, timeout=60)
        self.assert_exact("hdr", "hdr.replica", 3300)
        for part, off in ((0, 0), (1, 57), (2, 999), (0, 1000), (1, 1050)):
            want = consume(self.src, "hdr", 3, partition=part, offset=off)
            got = consume(self.dst, "hdr.replica", 3, partition=part, offset=off)
            self.assertEqual(len(want), 3)
            self.assertEqual(len(got), 3, f"partition {part} offset {off}")
            for w, g in zip(want, got):
                # the copy carries the source's headers, then ferry's source-offset header
                headers, src_offset = split_offset_header(g["headers"])
                g = {**g, "headers": headers}
                for field in ("partition", "offset", "key", "value", "headers", "timestamp"):
                    self.assertEqual(g[field], w[field], f"{field} of hdr[{part}]@{w['offset']}")
                self.assertEqual(src_offset, w["offset"])
        # spot values: record i is in partition i % 3, with headers seq=i and src=kafkatool
        r = consume(self.dst, "hdr.replica", 1, partition=2, offset=10)[0]
        self.assertEqual(r["key"], "k32")
        self.assertEqual(split_offset_header(r["headers"]), ([["seq", "32"], ["src", "kafkatool"]], 10))
        self.assertEqual(r["timestamp"], 1700000000000 + 32)
        r = consume(self.dst, "hdr.replica", 1, partition=0, offset=1000)[0]
        self.assertEqual((r["key"], split_offset_header(r["headers"]), r["timestamp"]),
                         ("k3000", ([], 1000), 1700000003000))
        # with the header switched off, the headers are exactly the source's
        produce(self.src, "hdr2", 300)
        self.create("hdr-plain", topic="hdr2", rename="hdr2.replica",
                    **{"source.offset.header.enable": "false"})
        self.wait_total("hdr2.replica", 300, timeout=60)
        for w, g in zip(consume(self.src, "hdr2", 5, partition=1), consume(self.dst, "hdr2.replica", 5, partition=1)):
            self.assertEqual(g["headers"], w["headers"])

    # ------------------------------------------------------------------ 6. partition counts

    def test_f_destination_with_fewer_partitions_fails(self):
        produce(self.src, "narrow", 800)
        self.create("narrow", topic="narrow", rename="narrow.replica")
        s = self.wait_tasks("narrow", state="FAILED", n=1, timeout=60)
        trace = s["tasks"][0].get("trace", "")
        log(f"narrow task trace: {trace}")
        for needle in ("narrow.replica", "narrow ", "2", "8"):
            self.assertIn(needle, trace)
        self.assertRegex(trace, r"narrow\.replica\D+2\D")
        self.assertRegex(trace, r"narrow\D+8")
        time.sleep(1)
        c = count(self.dst, "narrow.replica")
        self.assertEqual((c["partitions"], c["total"]), (2, 0), c)
        self.assertEqual(self.status("narrow")["tasks"][0]["state"], "FAILED")
        # A failed task (its thread is gone) restarts on request, and fails again for the
        # same reason: a second failure line in the log, FAILED again, nothing copied.
        logpath = self.cluster.workers[0].logpath
        fails = lambda: open(logpath, errors="replace").read().count("task narrow-0 failed")
        before = fails()
        st, _, raw, _ = http("POST", f"{self.url}/connectors/narrow/tasks/0/restart")
        self.assertEqual(st, 204, raw)
        wait_until(lambda: fails() > before, 30, what="restarted task narrow-0 failing again")
        self.wait_tasks("narrow", state="FAILED", n=1, timeout=30)
        self.assertEqual(count(self.dst, "narrow.replica")["total"], 0)

    # ------------------------------------------------------------------ 7. new topic

    def test_g_new_topic_picked_up_while_running(self):
        produce(self.src, "events.a", 2000)
        self.create("events", topic=None, rename="${topic}.replica",
                    **{"topic.whitelist": None, "topic.regex": "events\\..*",
                       "topic.poll.interval.ms": "500", "tasks.max": "2"})
        self.wait_total("events.a.replica", 2000, timeout=60)
        before = self.task_configs("events")
        self.assertEqual(len(before), 2)
        st_before = self.wait_tasks("events", n=2)
        started = {i: len(self.log_lines(f"task events-{i} copying")) for i in (0, 1)}
        self.assertEqual(started, {0: 1, 1: 1}, "each task started once")

        # The mock cannot add partitions to an existing topic (no CreatePartitions), so a new
        # topic stands in for new partitions. Destination first: the mock has no CreateTopics.
        self.cluster.dst.create_topic("events.b.replica", 1)
        self.cluster.src.create_topic("events.b", 1)
        produce(self.src, "events.b", 500)
        self.wait_total("events.b.replica", 500, timeout=30)
        produce(self.src, "events.a", 1000, start=2000)
        self.wait_total("events.a.replica", 3000, timeout=30)
        self.assert_exact("events.a", "events.a.replica", 3000)
        self.assert_exact("events.b", "events.b.replica", 500)

        after = self.task_configs("events")
        self.assertEqual(len(after), 2)
        unchanged = [i for i in (0, 1) if after[i]["task.partitions"] == before[i]["task.partitions"]]
        changed = [i for i in (0, 1) if i not in unchanged]
        self.assertEqual(len(unchanged), 1, f"before {before} after {after}")
        i, j = unchanged[0], changed[0]
        self.assertEqual(after[j]["task.partitions"], before[j]["task.partitions"] + ",events.b:0")
        # the unaffected task was not restarted: same worker, still RUNNING, started once
        st_after = self.wait_tasks("events", n=2)
        self.assertEqual(st_after["tasks"][i]["worker_id"], st_before["tasks"][i]["worker_id"])
        self.assertEqual(len(self.log_lines(f"task events-{i} copying")), 1,
                         f"task {i} (unchanged config) was restarted")
        self.assertEqual(len(self.log_lines(f"task events-{i} stopped")), 0)
        self.assertEqual(len(self.log_lines(f"task events-{j} copying")), 2)

    # ------------------------------------------------------------------ 8. kill -9


    def test_h_kill9_mid_copy(self):
        """Exactly once through kill -9: the restarted task resumes after the last source
        offset found at the end of each destination partition, not at the stored offsets."""
        r, at_kill, stored = self.kill9_mid_copy("crash", header=True, **{"copy.mode": "record"})
        self.assertEqual(r["duplicates"], 0, r)
        resumed = [line for line in open(self.worker.logpath, errors="replace")
                   if "crash-" in line and "resumes at" in line]
        self.assertTrue(resumed, "no partition resumed from the destination after the kill")
        self.assertEqual(self.task_metric("ferry_task_batch_records_total", "crash"), 0)

    def test_h3_kill9_mid_copy_forwarding_batches(self):
        """The same through batch passthrough: the copies carry no header, and the restarted
        task finds each destination partition's last batch in the source."""
        r, at_kill, stored = self.kill9_mid_copy("crash3", header=True, **{"copy.mode": "batch"})
        self.assertEqual(r["duplicates"], 0, r)
        resumed = [line for line in open(self.worker.logpath, errors="replace")
                   if "crash3-" in line and "resumes at" in line]
        self.assertTrue(resumed, "no partition resumed from the destination after the kill")
        self.assertGreater(self.task_metric("ferry_task_batch_records_total", "crash3"), 0)
        self.assertEqual(self.task_metric("ferry_task_batch_fallbacks_total", "crash3"), 0)

    def test_h2_kill9_mid_copy_without_offset_header(self):
        """With source.offset.header.enable=false: at least once, and only what was copied
        after the last stored offsets is copied again."""
        r, at_kill, stored = self.kill9_mid_copy("crash2", header=False, **{"copy.mode": "record"})
        self.assertLessEqual(r["duplicates"], at_kill - stored, r)

    # ------------------------------------------------------------------ 9. memory

    @staticmethod
    def asan_build():
        with open(os.path.join(build_dir(), "ferry-worker"), "rb") as f:
            return b"__asan_init" in f.read()

    def test_i_bounded_memory(self):
        n = 300_000
        produce(self.src, "mem", n, size=100)
        if self.asan_build():
            # ASan keeps up to 256 MB of freed blocks in quarantine, which is ASan's memory,
            # not ferry's: measure with a small quarantine, then restore the worker as it was.
            saved = os.environ.get("ASAN_OPTIONS")
            os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else "") + "quarantine_size_mb=16"
            self.worker.restart()

            def restore():
                if saved is None:
                    os.environ.pop("ASAN_OPTIONS", None)
                else:
                    os.environ["ASAN_OPTIONS"] = saved
                self.worker.restart()
            self.addCleanup(restore)
        pid = self.worker.pid
        base = proc_status_kb(pid, "VmRSS")
        self.create("mem", topic="mem", rename="mem.replica", **{"tasks.max": "2"})
        samples = []

        def done():
            rss = proc_status_kb(pid, "VmRSS")
            if rss:
                samples.append(rss)
            c = count(self.dst, "mem.replica")
            return c and c["total"] >= n
        t0 = time.monotonic()
        wait_until(done, 180, interval=0.2, what="mem.replica to hold all records")
        secs = time.monotonic() - t0
        hwm = proc_status_kb(pid, "VmHWM")
        peak = max(samples)
        print(f"\n  memory: {n} records in {secs:.1f} s; RSS before {base / 1024:.0f} MB, sampled "
              f"peak {peak / 1024:.0f} MB over {len(samples)} samples, VmHWM {hwm / 1024:.0f} MB "
              f"(sanity bound {RSS_LIMIT_KB // 1024} MB{', ASan quarantine 16 MB' if self.asan_build() else ''})",
              file=sys.stderr, flush=True)
        self.assertGreaterEqual(len(samples), 3)
        self.assertLess(peak, RSS_LIMIT_KB)
        self.assertLess(hwm, RSS_LIMIT_KB)
        r = compare(self.src, "mem", self.dst, "mem.replica", exact=True)
        self.assertEqual(r["rc"], 0, r)

    # ------------------------------------------------------------------ 10. broker outage

    def test_j_source_broker_outage(self):
        n = 80_000
        produce(self.src, "outage", n, size=100)
        self.create("outage", topic="outage", rename="outage.replica")
        wait_until(lambda: (count(self.dst, "outage.replica") or {}).get("total", 0) >= 1,
                   60, interval=0.02, what="the copy to start")
        self.cluster.src.broker_down(1)
        down_at = count(self.dst, "outage.replica")["total"]
        log(f"source broker 1 down at {down_at} of {n}")
        try:
            time.sleep(3)
        finally:
            self.cluster.src.broker_up(1)
        log("source broker 1 up")
        self.wait_total("outage.replica", n, timeout=120)
        r = compare(self.src, "outage", self.dst, "outage.replica")
        self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0), r)
        print(f"\n  source outage: copy {down_at}/{n} when broker 1 went down; "
              f"duplicates {r['duplicates']}", file=sys.stderr, flush=True)
        s = self.wait_tasks("outage", n=1, timeout=30)
        self.assertEqual(s["connector"]["state"], "RUNNING")
        self.assertNotIn("trace", s["tasks"][0])

    # ------------------------------------------------------------------ 11. SIGTERM mid-copy

    def test_k_sigterm_mid_copy_is_clean(self):
        """A graceful stop finishes in-flight batches and stores their offsets: the worker exits
        0, and after the restart the copy resumes exactly where it stopped (no duplicates)."""
        n = 100_000
        self.create("graceful", topic="graceful", rename="graceful.replica")
        self.wait_tasks("graceful", n=1)
        join = self.produce_in_background("graceful", n, 40_000)
        wait_until(lambda: (count(self.dst, "graceful.replica") or {}).get("total", 0) >= 0.3 * n,
                   60, interval=0.05, what="graceful.replica to hold 30%")
        log_at = os.path.getsize(self.worker.logpath)
        rc = self.worker.term()
        at_stop = count(self.dst, "graceful.replica")["total"]
        log(f"SIGTERM at {at_stop} of {n}: exit code {rc}")
        with open(self.worker.logpath, errors="replace") as f:
            f.seek(log_at)
            asserts = [line for line in f if "Assertion" in line or "Sanitizer" in line]
        self.worker.restart()
        join()
        self.wait_total("graceful.replica", n, timeout=120)
        time.sleep(1.5)
        r = compare(self.src, "graceful", self.dst, "graceful.replica", exact=True)
        print(f"\n  SIGTERM at {at_stop}/{n}: exit code {rc}, duplicates after restart "
              f"{r['duplicates']}", file=sys.stderr, flush=True)
        self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0), r)
        self.assertEqual(r["duplicates"], 0, r)
        self.assertEqual(asserts, [], "the worker failed an assertion while stopping")
        self.assertEqual(rc, 0, "ferry-worker should exit 0 on SIGTERM")
        self.wait_tasks("graceful", n=1)


    def test_l_exactly_once_required_needs_the_worker_setting(self):
        self.create("eos-required", topic="connect", rename="connect.replica",
                    **{"exactly.once.support": "required", "tasks.max": "1"})
        s = self.wait_tasks("eos-required", state="FAILED", n=1)
        self.assertIn("exactly.once.source.support=enabled", s["tasks"][0].get("trace", ""))


class TransactionalTest(CopyTestCase):
    """exactly.once.source.support=enabled (KIP-618): one transactional producer per task,
    records and offsets committed together. The mock ignores read_committed, so what is
    checked here is the copy itself and that transactions ran, not their isolation."""
    cluster_args = dict(CopyTestCase.cluster_args,
                        worker_extra={"exactly.once.source.support": "enabled"})

    def test_a_poll_boundary(self):
        produce(self.src, "hdr", 3000)
        self.create("eos-poll", topic="hdr", rename="hdr.replica")
        self.wait_total("hdr.replica", 3000, timeout=60)
        self.assert_exact("hdr", "hdr.replica", 3000)
        self.assertTrue(self.log_lines("transactional.id=ferry-it-eos-poll-0"),
                        "the task did not start transactions")
        wait_until(lambda: self.stored_offsets("eos-poll") == 3000, 30,
                   what="offsets committed with the records")

    def test_b_kill9_mid_copy_interval_boundary(self):
        r, _, _ = self.kill9_mid_copy("crash", header=True, **{
            "transaction.boundary": "interval", "transaction.boundary.interval.ms": "500"})
        self.assertEqual(r["duplicates"], 0, r)
        self.assertTrue(self.log_lines("transactional.id=ferry-it-crash-1"))

if __name__ == "__main__":
    unittest.main(verbosity=2)
