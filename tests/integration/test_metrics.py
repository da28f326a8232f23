"""GET /metrics on every worker: Prometheus text that parses, and numbers that match what
actually happened (records per partition as counted on the destination, lag as the backlog a
paused connector leaves, one leader, REST counts, the latency histogram's shape); connector and
task state (0/1 per state, as the REST status shows, after a pause too) and the names Strimzi's
JMX exporter rules give Kafka Connect's and MirrorMaker 2's metrics (docs/METRICS.md, "Names
existing dashboards use"), each consistent with ferry's own."""
import re
import time
import unittest

from ferrytest import (ClusterTestCase, count, http, log, produce, seed_connector, wait_records,
                       wait_until)

N = 20000
N_DASH = 6000
MM = "kafka_connect_mirror_mirrorsourceconnector_"
TS_BASE = 1700000000000  # kafkatool's: produced record i has source timestamp TS_BASE + i (ms)
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
    cluster_args = dict(workers=2, src_topics={"connect": 4, "dash": 2},
                        dst_topics={"connect.replica": 4, "dash.replica": 2})

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

    def timed_metrics(self):
        """[(worker, time of the scrape (monotonic, the request's midpoint), samples)]."""
        out = []
        for w in self.cluster.workers:
            t0 = time.monotonic()
            _, samples = self.metrics(w)
            out.append((w, (t0 + time.monotonic()) / 2, samples))
        return out

    def test_c_state_and_dashboard_names(self):
        c = self.cluster
        produce(c.src.bootstrap, "dash", N_DASH)
        created_ms = time.time() * 1000
        st, _, raw, _ = http("POST", c.url + "/connectors", seed_connector(
            c.src.bootstrap, name="dash", topic="dash", rename="dash.replica",
            **{"tasks.max": "2", "copy.mode": "record", "src.cluster.alias": "east",
               "dest.cluster.alias": "west"}))
        self.assertEqual(st, 201, raw)

        # The first scrape that shows a task takes its rate checkpoint (no one else scrapes
        # these workers): remember what it showed, to check the rates against later.
        first = {}

        def both_tasks_seen():
            for w, t, samples in self.timed_metrics():
                for labels, v in values(samples, "kafka_connect_source_task_source_record_poll_total",
                                        connector="dash"):
                    first.setdefault(labels["task"], (w.idx, t, v, values(
                        samples, "kafka_connect_source_task_source_record_write_total",
                        connector="dash", task=labels["task"])[0][1]))
            return len(first) == 2
        wait_until(both_tasks_seen, 30, interval=0.05, what="both tasks of dash in /metrics")
        self.assertTrue(wait_records(c.dst.bootstrap, "dash.replica", N_DASH))

        # write_total is what was acknowledged: the partitions' records, N_DASH in all; every
        # record taken was acknowledged, so poll_total is the same and nothing is active
        def settled():
            s = self.all_samples()
            w = values(s, "kafka_connect_source_task_source_record_write_total", connector="dash")
            p = values(s, "kafka_connect_source_task_source_record_poll_total", connector="dash")
            a = values(s, "kafka_connect_source_task_source_record_active_count", connector="dash")
            recs = values(s, "ferry_partition_records_total", connector="dash")
            return (sum(v for _, v in w) == N_DASH == sum(v for _, v in p) ==
                    sum(v for _, v in recs) and len(w) == 2 and all(v == 0 for _, v in a)) and s
        samples = wait_until(settled, 30, what=f"write_total = poll_total = {N_DASH}, nothing active")
        for labels, v in values(samples, "kafka_connect_source_task_source_record_write_total"):
            per_task = sum(pv for _, pv in values(samples, "ferry_partition_records_total",
                                                   connector=labels["connector"], task=labels["task"],
                                                   worker=labels["worker"]))
            self.assertEqual(v, per_task, labels)  # every task, forwarded batches included
        for labels, v in values(samples, "kafka_connect_task_error_total_record_failures"):
            self.assertEqual(v, values(samples, "ferry_task_errors_total", connector=labels["connector"],
                                       task=labels["task"], worker=labels["worker"])[0][1])

        # MirrorMaker 2's per-partition names: labels source/target (the aliases), topic (the
        # destination's), partition; counts equal ferry's own. Ages and latencies are now minus
        # a source timestamp TS_BASE + i, taken after the connector was created and before now.
        low, high = created_ms - TS_BASE - N_DASH, time.time() * 1000 - TS_BASE
        for p in ("0", "1"):
            recs = values(samples, "ferry_partition_records_total", connector="dash", partition=p)
            byts = values(samples, "ferry_partition_bytes_total", connector="dash", partition=p)
            self.assertEqual(len(recs), 1, recs)
            mm = dict(source="east", target="west", topic="dash.replica", partition=p, connector="dash")
            self.assertEqual(values(samples, MM + "record_count", **mm)[0][1], recs[0][1])
            self.assertEqual(values(samples, MM + "byte_count", **mm)[0][1], byts[0][1])
            self.assertGreater(recs[0][1], 0)
            for what in ("replication_latency_ms", "record_age_ms"):
                last = values(samples, MM + what, **mm)[0][1]
                lo, hi, avg = (values(samples, MM + what + sfx, **mm)[0][1] for sfx in ("_min", "_max", "_avg"))
                # copied seconds ago: inside the 30-60 s window, so no NaN
                self.assertTrue(low <= lo <= avg <= hi <= high, (what, low, lo, avg, hi, high))
                self.assertTrue(lo <= last <= hi, (what, lo, last, hi))
            # the age when taken is at most the latency when acknowledged, record by record
            self.assertLessEqual(values(samples, MM + "record_age_ms_min", **mm)[0][1],
                                 values(samples, MM + "replication_latency_ms_max", **mm)[0][1])

        # rates: the increase since the first scrape over the time since (under 30 s it is
        # the only checkpoint), checked against what that scrape and this one showed
        t_first = max(t for _, t, _, _ in first.values())
        wait_until(lambda: time.monotonic() - t_first >= 5, 10, what="5 s after the first scrape")
        checked = skipped = 0
        for w, t, samples in self.timed_metrics():
            for labels, rate in values(samples, "kafka_connect_source_task_source_record_write_rate",
                                       connector="dash"):
                widx, t0, p0, w0 = first[labels["task"]]
                if widx != w.idx:
                    continue
                if t - t0 >= 30:  # a second checkpoint may have been taken: not this formula
                    log(f"rate of task {labels['task']} not checked: {t - t0:.0f} s since its first scrape")
                    skipped += 1
                    continue
                total = values(samples, "kafka_connect_source_task_source_record_write_total",
                               connector="dash", task=labels["task"])[0][1]
                polled = values(samples, "kafka_connect_source_task_source_record_poll_total",
                                connector="dash", task=labels["task"])[0][1]
                prate = values(samples, "kafka_connect_source_task_source_record_poll_rate",
                               connector="dash", task=labels["task"])[0][1]
                for got, want in ((rate, (total - w0) / (t - t0)), (prate, (polled - p0) / (t - t0))):
                    self.assertAlmostEqual(got, want, delta=0.1 * want + 1, msg=labels)
                log(f"task {labels['task']}: write rate {rate:.1f}/s, poll rate {prate:.1f}/s; "
                    f"{total - w0:.0f} written in the {t - t0:.1f} s since its first scrape")
                checked += 1
            for labels, rate in values(samples, MM + "record_rate", connector="dash"):
                self.assertTrue(0 <= rate <= N_DASH, labels)
            for labels, rate in values(samples, MM + "byte_rate", connector="dash"):
                self.assertGreaterEqual(rate, 0, labels)
        self.assertEqual(checked + skipped, 2, "a write rate per task, on the worker that runs it")
        log(f"write and poll rates checked for {checked} task(s)")

        def states(s):
            """{(connector, task or None): state} from ferry_*_state (exactly one 1 each), and
            the same from Kafka Connect's status names, lower-cased back."""
            ferry, kc = {}, {}
            for name, key in (("ferry_connector_state", lambda lb: (lb["connector"], None)),
                              ("ferry_task_state", lambda lb: (lb["connector"], int(lb["task"])))):
                ones = {}
                for labels, v in values(s, name, connector="dash"):
                    self.assertIn(v, (0.0, 1.0))
                    if v == 1:
                        self.assertNotIn(key(labels), ones, f"two states of {key(labels)}")
                        ones[key(labels)] = labels["state"]
                ferry.update(ones)
            for labels, v in values(s, "kafka_connect_connector_status", connector="dash"):
                self.assertEqual(v, 1)
                kc[("dash", None)] = labels["status"].upper()
            for labels, v in values(s, "kafka_connect_connector_task_status", connector="dash"):
                self.assertEqual(v, 1)
                kc[("dash", int(labels["task"]))] = labels["status"].upper()
            return ferry, kc

        def rest_states():
            body = http("GET", c.url + "/connectors/dash/status")[1]
            out = {("dash", None): body["connector"]["state"]}
            out.update({("dash", t["id"]): t["state"] for t in body["tasks"]})
            return out

        def states_are(want):
            s = self.all_samples()
            ferry, kc = states(s)
            rest = rest_states()
            ok = ferry == kc == rest and len(ferry) == 3 and set(ferry.values()) == {want}
            return ok and s
        samples = wait_until(lambda: states_are("RUNNING"), 20, what="dash and its tasks RUNNING in /metrics")
        # each is reported once, by the worker that runs it; per state: 1 for the current one
        self.assertEqual(len(values(samples, "ferry_connector_state", connector="dash")), 6)
        self.assertEqual(len(values(samples, "ferry_task_state", connector="dash")), 2 * 5)
        self.assertEqual(values(samples, "kafka_connect_connector_connector_type", connector="dash")[0][0]
                         ["connector_type"], "source")
        self.assertEqual(values(samples, "kafka_connect_connector_connector_class", connector="dash")[0][0]
                         ["connector_class"], "EMRReplicatorSourceConnector")
        self.assertEqual(sum(v for _, v in values(samples, "kafka_connect_worker_connector_running_task_count",
                                                  connector="dash")), 2)

        st, _, raw, _ = http("PUT", c.url + "/connectors/dash/pause")
        self.assertEqual(st, 202, raw)
        samples = wait_until(lambda: states_are("PAUSED"), 20, what="dash and its tasks PAUSED in /metrics")
        self.assertEqual(sum(v for _, v in values(samples, "ferry_task_state", connector="dash",
                                                  state="RUNNING")), 0)
        self.assertEqual(sum(v for _, v in values(samples, "kafka_connect_worker_connector_paused_task_count",
                                                  connector="dash")), 2)
        self.assertEqual(sum(v for _, v in values(samples, "kafka_connect_worker_connector_running_task_count",
                                                  connector="dash")), 0)
        self.assertEqual(http("PUT", c.url + "/connectors/dash/resume")[0], 202)
        wait_until(lambda: states_are("RUNNING"), 20, what="dash and its tasks RUNNING again")

        # worker figures: the counts agree with ferry's own, one leader URL for all, Strimzi's
        # types
        leader = [w for w in c.workers if values(self.metrics(w)[1], "ferry_worker_leader")[0][1] == 1]
        self.assertEqual(len(leader), 1)

        def worker_figures_agree():
            for w, _, s in self.timed_metrics():
                one = lambda name: values(s, name)[0][1]  # noqa: E731
                if not (one("kafka_connect_worker_task_count") == one("ferry_worker_assigned_tasks") ==
                        one("kafka_connect_coordinator_assigned_tasks") and
                        one("kafka_connect_worker_connector_count") == one("ferry_worker_assigned_connectors") ==
                        one("kafka_connect_coordinator_assigned_connectors") and
                        one("kafka_connect_worker_rebalance_epoch") == one("ferry_worker_generation") and
                        one("kafka_connect_worker_rebalance_completed_rebalances_total") ==
                        one("ferry_worker_rebalances_total") and
                        one("kafka_connect_worker_rebalance_rebalancing") == 0):
                    return False
                self.assertTrue(0 <= one("kafka_connect_worker_rebalance_time_since_last_rebalance_ms") < 3600e3)
                names = values(s, "kafka_connect_worker_rebalance_leader_name")
                self.assertEqual([lb["leader_name"].rstrip("/") for lb, _ in names], [leader[0].url])
            return True
        wait_until(worker_figures_agree, 20, what="the Kafka Connect worker figures to match ferry's")
        fams, _ = self.metrics(c.workers[0])
        for name, kind in (("ferry_connector_state", "gauge"), ("ferry_task_state", "gauge"),
                           ("kafka_connect_source_task_source_record_poll_total", "counter"),
                           ("kafka_connect_source_task_source_record_write_rate", "gauge"),
                           ("kafka_connect_worker_rebalance_completed_rebalances_total", "counter"),
                           ("kafka_connect_worker_rebalance_leader_name", "untyped"),
                           (MM + "replication_latency_ms", "gauge"), (MM + "byte_rate", "gauge")):
            self.assertEqual(fams.get(name), kind, name)
        log("state and dashboard names ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
