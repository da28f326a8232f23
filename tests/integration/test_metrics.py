"""GET /metrics on every worker: Prometheus text that parses, and numbers that match what
actually happened (records per partition as counted on the destination, lag as the backlog a
paused connector leaves, one leader, REST counts, the latency histogram's shape)."""
import re
import time
import unittest

from ferrytest import (ClusterTestCase, count, http, log, produce, seed_connector, wait_records,
                       wait_until)

N = 20000
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """{(name, frozenset(labels.items())): value}, checking the exposition format: every
    sample belongs to a family announced by HELP and TYPE lines before it."""
    families, samples, current = {}, {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == current, f"TYPE for {name} after HELP for {current}"
            families[name] = kind
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels = m.group(1), {}
        base = re.sub(r"_(bucket|sum|count)$", "", name) if families.get(current) == "histogram" \
            else name
        assert base == current, f"sample {name} outside its family ({current})"
        if m.group(3):
            pos = 0
            for lm in LABEL_RE.finditer(m.group(3)):
                assert lm.start() == pos, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            assert pos == len(m.group(3)), f"bad labels in {line!r}"
        samples[(name, frozenset(labels.items()))] = float(m.group(4))
    return families, samples


def values(samples, name, **match):
    return [(dict(k[1]), v) for k, v in samples.items()
            if k[0] == name and all(dict(k[1]).get(a) == b for a, b in match.items())]


class MetricsTest(ClusterTestCase):
    cluster_args = dict(workers=2, src_topics={"connect": 4}, dst_topics={"connect.replica": 4})

    def metrics(self, w):
        st, _, raw, hdrs = http("GET", w.url + "/metrics")
        self.assertEqual(st, 200, raw)
        self.assertEqual(hdrs["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return parse(raw.decode())

    def all_samples(self):
        """Samples of every worker, with a "worker" label added (worker-level series have no
        labels of their own, so they would collide)."""
        out = {}
        for w in self.cluster.workers:
            for (name, labels), v in self.metrics(w)[1].items():
                out[(name, labels | {("worker", str(w.idx))})] = v
        return out

    def sum_of(self, name):
        return sum(v for k, v in self.all_samples().items() if k[0] == name)

    def test_a_metrics(self):
        c = self.cluster
        produce(c.src.bootstrap, "connect", N)
        st, _, raw, _ = http("POST", c.url + "/connectors",
                             seed_connector(c.src.bootstrap, **{"tasks.max": "2"}))
        self.assertEqual(st, 201, raw)
        self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", N))

        # records per partition, summed over both workers, match the destination's counts
        per = {p["partition"]: p["high"] - p["low"]
               for p in count(c.dst.bootstrap, "connect.replica")["per_partition"]}

        def copied():
            got = {}
            for labels, v in values(self.all_samples(), "ferry_partition_records_total",
                                    connector="connect-test", topic="connect"):
                got[int(labels["partition"])] = got.get(int(labels["partition"]), 0) + v
            return got if got == per else None
        wait_until(copied, 15, what=f"ferry_partition_records_total to match {per}")
        wait_until(lambda: sorted(v for _, v in values(self.all_samples(),
                                                       "ferry_partition_lag_records")) == [0.0] * 4,
                   10, what="lag 0 on all 4 partitions (watermarks are refreshed every second)")
        samples = self.all_samples()
        self.assertEqual(sorted(v for _, v in values(samples, "ferry_partition_next_offset")),
                         sorted(float(x) for x in per.values()))
        self.assertGreater(sum(v for _, v in values(samples, "ferry_partition_bytes_total")), N * 100)

        # one leader; both workers report the same generation and run one task each
        fams, _ = self.metrics(c.workers[0])
        for name, kind in (("ferry_partition_records_total", "counter"),
                           ("ferry_partition_lag_records", "gauge"),
                           ("ferry_task_replication_latency_seconds", "histogram"),
                           ("ferry_rest_requests_total", "counter"),
                           ("process_resident_memory_bytes", "gauge")):
            self.assertEqual(fams.get(name), kind, name)
        leaders = [values(self.metrics(w)[1], "ferry_worker_leader")[0][1] for w in c.workers]
        self.assertEqual(sorted(leaders), [0.0, 1.0])
        self.assertEqual(self.sum_of("ferry_worker_assigned_tasks"), 2)
        self.assertGreater(self.sum_of("ferry_task_offset_flushes_total"), 0)
        for w in c.workers:
            rss = values(self.metrics(w)[1], "process_resident_memory_bytes")[0][1]
            self.assertGreater(rss, 1 << 20)

        # the latency histogram: cumulative buckets ending in +Inf == count == records copied
        for labels, total in values(samples, "ferry_task_replication_latency_seconds_count"):
            buckets = sorted(((float(lb["le"]), v) for lb, v in
                              values(samples, "ferry_task_replication_latency_seconds_bucket",
                                     connector=labels["connector"], task=labels["task"])))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets must be cumulative")
            self.assertEqual(buckets[-1], (float("inf"), total))
            self.assertEqual(total, sum(per[p] for p in per) / 2, labels)  # 2 partitions per task

        # lag: pause, produce 1000 more, the backlog shows up; resume, it drains
        st, _, raw, _ = http("PUT", c.url + "/connectors/connect-test/pause")
        self.assertEqual(st, 202, raw)
        time.sleep(1.5)
        produce(c.src.bootstrap, "connect", 1000, start=N)
        wait_until(lambda: self.sum_of("ferry_partition_lag_records") == 1000, 20, interval=0.5,
                   what="ferry_partition_lag_records to show the 1000 records behind")
        self.assertEqual(http("PUT", c.url + "/connectors/connect-test/resume")[0], 202)
        wait_until(lambda: self.sum_of("ferry_partition_lag_records") == 0 and
                   self.sum_of("ferry_partition_records_total") == N + 1000, 30, interval=0.5,
                   what="the backlog to drain")

        # REST requests are counted by route with the name replaced, and status
        w = c.workers[1]
        before = values(self.metrics(w)[1], "ferry_rest_requests_total",
                        route="/connectors/{name}/status", code="404")
        for _ in range(3):
            self.assertEqual(http("GET", w.url + "/connectors/no-such/status")[0], 404)
        after = values(self.metrics(w)[1], "ferry_rest_requests_total",
                       route="/connectors/{name}/status", code="404")
        self.assertEqual(after[0][1] - (before[0][1] if before else 0), 3)
        log("metrics ok")

    def test_b_logs_and_cluster_scope_loggers(self):
        """Log lines carry time, level, [module] and key=value context; a logger level set with
        scope=cluster through one worker reaches every worker (Kafka Connect's KIP-976)."""
        w0, w1 = self.cluster.workers
        lines = []
        for w in (w0, w1):
            with open(w.logpath, errors="replace") as f:
                lines += f.read().splitlines()
        rx = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO|WARN|ERROR) +"
                        r"\[[a-z]+\] ")
        ferry_lines = [line for line in lines if rx.match(line)]
        self.assertGreater(len(ferry_lines), 10)
        self.assertTrue(any(re.search(r"ownership acquire task=\S+ partition=\S+:\d+ worker=\S+ "
                                      r"at=\d+$", line) for line in ferry_lines),
                        "no ownership line with key=value context")
        # set through one worker, then back through the other: both reach every worker
        for via, level in ((w1, "DEBUG"), (w0, "INFO")):
            st, _, raw, _ = http("PUT", via.url + "/admin/loggers/ferry.coordinator?scope=cluster",
                                 {"level": level})
            self.assertEqual(st, 204, raw)
            for w in (w0, w1):
                wait_until(lambda w=w: (http("GET", w.url + "/admin/loggers/ferry.coordinator")[1]
                                        or {}).get("level") == level, 15,
                           what=f"worker {w.idx} to apply level {level} set through worker {via.idx}")

if __name__ == "__main__":
    unittest.main(verbosity=2)
