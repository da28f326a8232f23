#!/usr/bin/env python3
"""bench/run.py: ferry's benchmark, one command.

    python3 bench/run.py            # full run (< 15 min on 2 cores)
    python3 bench/run.py --quick    # smoke test (< 2 min)
    python3 bench/run.py --profile  # perf record of one ferry copy -> bench/results/profile.txt
    python3 bench/run.py --report-only   # re-render latest.md from latest.json

Binaries come from $FERRY_BUILD (default <repo>/build). Every case runs on fresh mock Kafka
clusters (source and destination, 3 brokers each, tests/fixtures/mockcluster); one ZooKeeper
serves the whole run (each case uses its own group.id, hence its own znodes).

What is measured (docs/PERFORMANCE.md explains the methods and the limits):
  1. baselines per case: librdkafka consume-only (`kafkatool drain`), librdkafka produce-only
     (`kafkatool produce-bench`), a `kcat -C | kcat -P` pipe with the tuned consumer, and the
     minimal faithful copier `kafkatool copy` (one consumer, one idempotent producer, ferry's
     client settings: what librdkafka itself reaches for the copy ferry makes);
  2. ferry with 1 and 3 workers, 8 and 64 partitions, 100 B and 1 KiB values: the clock starts
     right before POST /connectors (records pre-produced) and stops when the sum of the
     destination's high watermarks reaches N (`kafkatool watch`, 10 ms polls); peak RSS (VmHWM),
     threads per worker (the most seen in /proc/PID/status while it copies), CPU s per million
     records, each against the minimal copier, and end-to-end latency p50/p99 at a fixed rate;
  3. cost growth (1x, 4x, 16x partitions and records, 1 worker);
  4. failover: kill -9 of a worker, 5 times, until its partitions are owned again;
  5. REST: wrk on GET /connectors, and forwarded POST/DELETE latency on a follower;
  6. the assignor's benchmark line from tests/unit/assign_test.

The results go to stdout (Markdown), bench/results/latest.md and bench/results/latest.json.

Allocator: with FERRY_JEMALLOC (the default build) ferry-worker and kafkatool are both linked
with jemalloc, so ferry and the minimal copier (and the drain and produce-bench baselines) use
the same malloc; kcat and the mock clusters use glibc's. The report names the allocator each
side ran with. `--cases 1w-8p-100b,...` limits the copy part to those cases (for A/B runs).
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
os.environ.setdefault("FERRY_SRC", REPO)
import ferrytest as ft  # noqa: E402

RESULTS = os.path.join(HERE, "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The mock keeps only the last 5 MiB (or 100k batches) of a partition: records per partition
# that stay under it (~150 B and ~1075 B per record on the wire, key and headers included).
PER_PARTITION_CAP = {100: 30000, 1024: 4500}
LATENCY_RATE = 20000             # records/s during the latency run
LATENCY_SECONDS = 5
SESSION_TIMEOUT_MS = 6000        # zookeeper.session.timeout.ms (ferry's default) in the failover run
# what the bench workers' source consumers get (ferrytest.worker_properties); the copier too
WORKER_FETCH_WAIT_MS = ft.worker_properties("", "", "", 0, "")["consumer.fetch.wait.max.ms"]


def log(msg):
    ft.log(msg)


# ------------------------------------------------------------------ process accounting

def proc_cpu_s(pid):
    """utime + stime of a process in seconds (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_threads(pid):
    return proc_status_kb(pid, "Threads")   # "Threads:  N" has no unit but parses the same


class ThreadSampler:
    """The most threads each process had ("Threads:" of /proc/PID/status), sampled every
    `interval` s by a background thread between __enter__ and __exit__."""

    def __init__(self, pids, interval=0.05):
        self.pids, self.interval = list(pids), interval
        self.most = {pid: 0 for pid in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        for pid in self.pids:
            n = proc_threads(pid)
            if n and n > self.most[pid]:
                self.most[pid] = n

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        return False

    def maxima(self):
        return [self.most[pid] or None for pid in self.pids]


def proc_allocator(pid):
    """"jemalloc" if the process has libjemalloc mapped (linked or LD_PRELOADed), else "libc"."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "jemalloc" if "libjemalloc" in f.read() else "libc"
    except OSError:
        return None


def cpu_of(workers):
    return sum(proc_cpu_s(w.pid) or 0.0 for w in workers)


def machine_ticks():
    """(busy, total) jiffies of all cores from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def busy_pct(t0, t1):
    return 100.0 * (t1[0] - t0[0]) / max(t1[1] - t0[1], 1)


def children_cpu_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def kafkatool(*args, timeout=600):
    rc, out = ft.kafkatool(*args, timeout=timeout)
    return rc, out


def kafkatool_json(*args, timeout=600):
    rc, out = kafkatool(*args, timeout=timeout)
    line = [l for l in out.splitlines() if l.startswith("{")]
    if rc != 0 or not line:
        raise RuntimeError(f"kafkatool {' '.join(map(str, args[:1]))} failed (rc={rc}): {out.strip()}")
    return json.loads(line[-1])


def hwm_total(bs, topic):
    """Sum of the high watermarks (records ever appended, whatever retention dropped since)."""
    c = ft.count(bs, topic)
    return sum(p["high"] for p in c["per_partition"]) if c else 0


# ------------------------------------------------------------------ baselines

def baseline_drain(src_bs, topic, n):
    """(records/s, CPU s per million records) of a tuned librdkafka consumer reading n records."""
    r = kafkatool_json("drain", "-b", src_bs, "-t", topic, "-n", n)
    return r["records_per_s"], r["cpu_s"] / n * 1e6


def baseline_produce(dst_bs, topic, n, size, parts):
    return kafkatool_json("produce-bench", "-b", dst_bs, "-t", topic, "-n", n, "--size", size,
                          "--partitions", parts)["records_per_s"]


def baseline_pipe(src_bs, topic, dst_bs, dst_topic, n):
    """kcat -C (tuned as in environment.md) | kcat -P; wall time until both have exited."""
    cons = ["kcat", "-C", "-b", src_bs, "-t", topic, "-o", "beginning", "-c", str(n), "-q",
            "-X", "queued.min.messages=10000000", "-X", "fetch.wait.max.ms=10"]
    prod = ["kcat", "-P", "-b", dst_bs, "-t", dst_topic]
    cpu0 = children_cpu_s()
    t0 = time.monotonic()
    c = subprocess.Popen(cons, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    p = subprocess.Popen(prod, stdin=c.stdout)
    c.stdout.close()
    p.wait(timeout=300)
    c.wait(timeout=30)
    secs = time.monotonic() - t0
    cpu = children_cpu_s() - cpu0
    got = hwm_total(dst_bs, dst_topic)
    if got != n:
        raise RuntimeError(f"kcat pipe delivered {got} of {n} records")
    return n / secs, cpu / n * 1e6


def baseline_copy(src_bs, topic, dst_bs, dst_topic, n):
    """The minimal faithful copier (`kafkatool copy`, ferry's client settings) copying the n
    records; the consumer gets the bench workers' consumer.fetch.wait.max.ms (ferrytest's
    worker_properties) so that both fetch alike. Checked by the destination's high
    watermarks."""
    r = kafkatool_json("copy", "-s", src_bs, "-t", topic, "-d", dst_bs, "-T", dst_topic, "-n", n,
                       "-X", f"consumer.fetch.wait.max.ms={WORKER_FETCH_WAIT_MS}")
    got = hwm_total(dst_bs, dst_topic)
    if got != n:
        raise RuntimeError(f"kafkatool copy delivered {got} of {n} records")
    return r


# ------------------------------------------------------------------ ferry runs

def connector_body(src_bs, name, topic, target, tasks, overrides=None):
    return ft.seed_connector(src_bs, name=name, topic=topic, rename=target,
                             **{"tasks.max": str(tasks), **(overrides or {})})


def post_connector(url, body, tries=50):
    """POSTs a connector; returns time.time() right before the successful request."""
    for _ in range(tries):
        t0 = time.time()
        status, _, raw, _ = ft.http("POST", url + "/connectors", body)
        if status == 201:
            return t0
        if status != 409:
            raise RuntimeError(f"POST /connectors -> {status}: {raw[:300]!r}")
        time.sleep(0.2)
    raise RuntimeError("POST /connectors kept answering 409")


def count_log(workers, pattern):
    rx = re.compile(pattern)
    n = 0
    for w in workers:
        try:
            with open(w.logpath, errors="replace") as f:
                n += sum(1 for line in f if rx.search(line))
        except OSError:
            pass
    return n


def delete_connector(workers, name, tasks):
    url = workers[0].url
    for _ in range(50):
        status, _, _, _ = ft.http("DELETE", f"{url}/connectors/{name}")
        if status in (204, 404):
            break
        time.sleep(0.2)
    ft.wait_until(lambda: count_log(workers, rf"task {re.escape(name)}-\d+ stopped") >= tasks,
                  30, interval=0.1, what=f"the tasks of {name} to stop")


def ferry_copy(src, dst, workers, name, topic, target, n, tasks, overrides=None):
    """One timed copy of n pre-produced records. Returns a dict of measurements."""
    watch = subprocess.Popen([ft.binary("kafkatool"), "watch", "-b", dst.bootstrap, "-t", target,
                              "-n", str(n), "--interval-ms", "10", "--timeout-ms", "600000"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    ready = watch.stdout.readline()
    if not ready.startswith("ready"):
        watch.kill()
        raise RuntimeError(f"kafkatool watch did not start: {ready!r}")
    mocks = [src.pid, dst.pid]
    cpu0, mcpu0, tick0 = cpu_of(workers), sum(proc_cpu_s(p) or 0 for p in mocks), machine_ticks()
    with ThreadSampler([w.pid for w in workers]) as threads:
        t0 = post_connector(workers[0].url, connector_body(src.bootstrap, name, topic, target,
                                                           tasks, overrides))
        out, _ = watch.communicate(timeout=900)
        cpu1, mcpu1, tick1 = cpu_of(workers), sum(proc_cpu_s(p) or 0 for p in mocks), \
            machine_ticks()
    res = json.loads(out.strip().splitlines()[-1])
    if watch.returncode != 0 or res["done_wall_ms"] < 0:
        raise RuntimeError(f"{name}: the destination never held {n} records: {res}")
    secs = res["done_wall_ms"] / 1000.0 - t0
    first = res["first_wall_ms"] / 1000.0 - t0
    every = res["all_partitions_wall_ms"] / 1000.0 - t0 if res["all_partitions_wall_ms"] > 0 \
        else None
    return {"seconds": secs, "records_per_s": n / secs, "first_record_s": first,
            "all_partitions_s": every,
            "copy_records_per_s": n / max(secs - first, 1e-3), "cpu_s": cpu1 - cpu0,
            "mock_cpu_s": mcpu1 - mcpu0, "machine_busy_pct": busy_pct(tick0, tick1),
            "threads_max": threads.maxima()}


def start_workers(tmp, zk, dst, group, count, extra=None):
    ws = [ft.Worker(tmp, i, zk.connect, dst.bootstrap, group=group, extra=extra or {})
          for i in range(count)]
    for w in ws:
        w.wait_ready(timeout=60)
    return ws


def stop_all(workers, mocks):
    ft.stop_processes([p for w in workers for p in w.procs])
    ft.stop_processes([m.proc for m in mocks])


def run_case(tmp_root, zk, workers_n, parts, size, n, repeats, do_latency=True):
    tag = case_name(workers_n, parts, size)
    tmp = os.path.join(tmp_root, tag)
    os.makedirs(tmp)
    tasks = parts
    log(f"case {tag}: N={n:,}, tasks.max={tasks}, {repeats} repeat(s)")
    src = ft.MockKafka(tmp, "src", {"bench": parts})
    dst_topics = dict(ft.STORAGE_TOPICS)
    for r in range(repeats):
        dst_topics.update({f"bench.r{r}": parts, f"pipe{r}": parts, f"wr{r}": parts,
                           f"copy{r}": parts, f"rec{r}": parts})
    dst = ft.MockKafka(tmp, "dst", dst_topics)
    workers = []
    try:
        ft.produce(src.bootstrap, "bench", n, size=size, partitions=parts)
        drain, drain_cpu, prod, pipe, pipe_cpu, copier = [], [], [], [], [], []
        for r in range(repeats):
            rate, cpu = baseline_drain(src.bootstrap, "bench", n)
            drain.append(rate)
            drain_cpu.append(cpu)
            prod.append(baseline_produce(dst.bootstrap, f"wr{r}", n, size, parts))
            rate, cpu = baseline_pipe(src.bootstrap, "bench", dst.bootstrap, f"pipe{r}", n)
            pipe.append(rate)
            pipe_cpu.append(cpu)
            copier.append(baseline_copy(src.bootstrap, "bench", dst.bootstrap, f"copy{r}", n))
        log(f"case {tag}: consume-only {median(drain):,.0f}/s, produce-only {median(prod):,.0f}/s, "
            f"kcat pipe {median(pipe):,.0f}/s, minimal copier "
            f"{median([c['records_per_s'] for c in copier]):,.0f}/s")

        workers = start_workers(tmp, zk, dst, f"bench-{tag}", workers_n)
        runs = []
        for r in range(repeats):
            name = f"bench-r{r}"
            run = ferry_copy(src, dst, workers, name, "bench", f"bench.r{r}", n, tasks)
            runs.append(run)
            log(f"case {tag} run {r}: {run['seconds']:.2f} s, {run['records_per_s']:,.0f} records/s "
                f"(first record after {run['first_record_s']:.2f} s)")
            if r < repeats - 1:
                delete_connector(workers, name, tasks)
        batch_hwm_kb = [proc_status_kb(w.pid, "VmHWM") for w in workers]   # the batch path's copies
        hwm_kb = batch_hwm_kb
        threads = [proc_threads(w.pid) for w in workers]
        allocator = proc_allocator(workers[0].pid)
        # the record path (copy.mode=record), same records, after the batch runs
        delete_connector(workers, f"bench-r{repeats - 1}", tasks)
        rec_runs = []
        for r in range(repeats):
            name = f"bench-rec{r}"
            run = ferry_copy(src, dst, workers, name, "bench", f"rec{r}", n, tasks,
                             {"copy.mode": "record"})
            rec_runs.append(run)
            log(f"case {tag} record path run {r}: {run['seconds']:.2f} s, {run['records_per_s']:,.0f} records/s")
            delete_connector(workers, name, tasks)
        rec_hwm_kb = [proc_status_kb(w.pid, "VmHWM") for w in workers]
        # the latency run and the idle cost on the batch path again
        last = f"bench-r{repeats - 1}"
        post_connector(workers[0].url, connector_body(src.bootstrap, last, "bench", f"bench.r{repeats - 1}",
                                                      tasks))
        ft.wait_until(lambda: count_log(workers, rf"task {re.escape(last)}-\d+ copying") >= 2 * tasks, 60,
                      interval=0.1, what=f"the tasks of {last} to run again")
        # idle cost: the connector of the last run stays up with nothing to copy
        c0, t0 = cpu_of(workers), time.monotonic()
        time.sleep(2.0)
        idle_cpu_pct = 100.0 * (cpu_of(workers) - c0) / (time.monotonic() - t0)
        latency = None
        if do_latency:
            latency = kafkatool_json("latency", "-s", src.bootstrap, "-t", "bench", "-d",
                                     dst.bootstrap, "-T", f"bench.r{repeats - 1}", "-n",
                                     LATENCY_RATE * LATENCY_SECONDS, "--rate", LATENCY_RATE,
                                     "--size", size, "--timeout-ms", 60000)
            log(f"case {tag}: latency p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
            hwm_kb = [proc_status_kb(w.pid, "VmHWM") for w in workers]
        rate = median([x["records_per_s"] for x in runs])
        cpu_m = median([x["cpu_s"] / n * 1e6 for x in runs])
        copier_rate = median([c["records_per_s"] for c in copier])
        copier_cpu_m = median([c["cpu_s_per_million"] for c in copier])
        rec_rate = median([x["records_per_s"] for x in rec_runs])
        rec_cpu_m = median([x["cpu_s"] / n * 1e6 for x in rec_runs])
        return {
            "record_path_runs": rec_runs,
            "record_path_per_s": rec_rate,
            "record_path_cpu_s_per_million": rec_cpu_m,
            "record_path_peak_rss_mib": [round(k / 1024, 1) if k else None for k in rec_hwm_kb],
            "batch_path_peak_rss_mib": [round(k / 1024, 1) if k else None for k in batch_hwm_kb],
            "record_path_ratio_copier": rec_rate / copier_rate,
            "record_path_ratio_consume_only": rec_rate / median(drain),
            "case": tag, "workers": workers_n, "partitions": parts, "size": size, "records": n,
            "tasks_max": tasks, "repeats": repeats,
            "consume_only_per_s": median(drain), "consume_only_cpu_s_per_million": median(drain_cpu),
            "produce_only_per_s": median(prod),
            "kcat_pipe_per_s": median(pipe), "kcat_pipe_cpu_s_per_million": median(pipe_cpu),
            "consume_only_runs": drain, "produce_only_runs": prod, "kcat_pipe_runs": pipe,
            "runs": runs,
            "records_per_s": rate, "mb_per_s": rate * size / 1e6,
            "seconds": median([x["seconds"] for x in runs]),
            "first_record_s": median([x["first_record_s"] for x in runs]),
            "all_partitions_s": median([x["all_partitions_s"] for x in runs]),
            "copy_records_per_s": median([x["copy_records_per_s"] for x in runs]),
            "ratio_consume_only": rate / median(drain),
            "ratio_kcat_pipe": rate / median(pipe),
            "peak_rss_mib": [round(k / 1024, 1) if k else None for k in hwm_kb],
            "threads": threads,
            "threads_max": [max(filter(None, col), default=None)
                            for col in zip(*[x["threads_max"] for x in runs])],
            "cpu_s_per_million": cpu_m,
            "copier_runs": copier,
            "copier_per_s": copier_rate,
            "copier_copy_records_per_s": median([c["copy_records_per_s"] for c in copier]),
            "copier_cpu_s_per_million": copier_cpu_m,
            "copier_peak_rss_mib": round(median([c["peak_rss_kb"] for c in copier]) / 1024, 1),
            "copier_threads": max(c["threads"] for c in copier),
            "ratio_copier": rate / copier_rate,
            "cpu_ratio_copier": cpu_m / copier_cpu_m if copier_cpu_m else None,
            "allocator": {"ferry": allocator, "copier": copier[0].get("allocator")},
            "mock_cpu_s_per_million": median([x["mock_cpu_s"] / n * 1e6 for x in runs]),
            "machine_busy_pct": median([x["machine_busy_pct"] for x in runs]),
            "idle_cpu_pct": idle_cpu_pct,
            "latency": latency,
        }
    finally:
        stop_all(workers, [src, dst])


DELIVERY_VARIANTS = [
    # (label, worker properties, connector overrides)
    ("record path, at least once (source.offset.header.enable=false)", {},
     {"copy.mode": "record", "source.offset.header.enable": "false"}),
    ("record path: source-offset header, resume from the destination", {}, {"copy.mode": "record"}),
    ("default: batches forwarded, resume by finding the destination's last batch", {}, {}),
    ("transactions, transaction.boundary=interval (1 s)", {"exactly.once.source.support": "enabled"},
     {"transaction.boundary": "interval", "transaction.boundary.interval.ms": "1000"}),
    ("transactions, transaction.boundary=poll (every batch)",
     {"exactly.once.source.support": "enabled"}, {}),
]


def run_delivery(tmp_root, zk, n, parts=64, size=100, repeats=1, tasks=8):
    """What each delivery guarantee costs: the same copy (1 worker) per variant, every variant
    on the same source data and its own destination topic, alternating the variants."""
    tmp = os.path.join(tmp_root, "delivery")
    os.makedirs(tmp)
    src = ft.MockKafka(tmp, "src", {"bench": parts})
    dst_topics = dict(ft.STORAGE_TOPICS)
    for v in range(len(DELIVERY_VARIANTS)):
        for r in range(repeats):
            dst_topics[f"d{v}.r{r}"] = parts
    dst = ft.MockKafka(tmp, "dst", dst_topics)
    out = []
    try:
        ft.produce(src.bootstrap, "bench", n, size=size, partitions=parts)
        drain = median([baseline_drain(src.bootstrap, "bench", n)[0] for _ in range(repeats)])
        rates = {v: [] for v in range(len(DELIVERY_VARIANTS))}
        for r in range(repeats):
            for v, (label, wprops, overrides) in enumerate(DELIVERY_VARIANTS):
                workers = start_workers(os.path.join(tmp, f"v{v}r{r}"), zk, dst, f"bench-d{v}-{r}", 1,
                                        extra=wprops)
                try:
                    # a name per run: a connector's stored offsets outlive its deletion
                    run = ferry_copy(src, dst, workers, f"d{v}r{r}", "bench", f"d{v}.r{r}", n, tasks,
                                     overrides)
                    delete_connector(workers, f"d{v}r{r}", tasks)   # the next variant's worker
                finally:                                        # reads the same config topic
                    ft.stop_processes([p for w in workers for p in w.procs])
                rates[v].append(run)
                log(f"delivery {label}: {run['records_per_s']:,.0f} records/s, "
                    f"{run['copy_records_per_s']:,.0f}/s after the first record "
                    f"({run['first_record_s']:.2f} s)")
        base = median([x["copy_records_per_s"] for x in rates[0]])
        for v, (label, wprops, overrides) in enumerate(DELIVERY_VARIANTS):
            copy = median([x["copy_records_per_s"] for x in rates[v]])
            out.append({"variant": label, "copy_records_per_s": copy,
                        "records_per_s": median([x["records_per_s"] for x in rates[v]]),
                        "first_record_s": median([x["first_record_s"] for x in rates[v]]),
                        "cpu_s_per_million": median([x["cpu_s"] / n * 1e6 for x in rates[v]]),
                        "vs_at_least_once": copy / base, "ratio_consume_only": copy / drain,
                        "worker": wprops, "connector": overrides})
        return {"records": n, "partitions": parts, "tasks": tasks, "size": size, "repeats": repeats,
                "consume_only_per_s": drain, "variants": out}
    finally:
        stop_all([], [src, dst])


def run_growth(tmp_root, zk, steps):
    """The same copy (1 worker, 100 B, tasks.max = partitions) at growing scale."""
    out = []
    for parts, n in steps:
        tag = f"growth-{parts}p"
        tmp = os.path.join(tmp_root, tag)
        os.makedirs(tmp)
        src = ft.MockKafka(tmp, "src", {"bench": parts})
        dst = ft.MockKafka(tmp, "dst", {**ft.STORAGE_TOPICS, "bench.replica": parts})
        workers = []
        try:
            ft.produce(src.bootstrap, "bench", n, size=100, partitions=parts)
            drain, _ = baseline_drain(src.bootstrap, "bench", n)
            workers = start_workers(tmp, zk, dst, f"bench-{tag}", 1)
            run = ferry_copy(src, dst, workers, "growth", "bench", "bench.replica", n, parts)
            rss = proc_status_kb(workers[0].pid, "VmHWM")
            out.append({"partitions": parts, "records": n, "tasks_max": parts,
                        "seconds": run["seconds"], "records_per_s": run["records_per_s"],
                        "first_record_s": run["first_record_s"],
                        "consume_only_per_s": drain,
                        "peak_rss_mib": round(rss / 1024, 1) if rss else None,
                        "threads": proc_threads(workers[0].pid),
                        "threads_max": run["threads_max"][0],
                        "cpu_s_per_million": run["cpu_s"] / n * 1e6})
            log(f"growth {parts} partitions, {n:,} records: {run['seconds']:.2f} s, "
                f"RSS {out[-1]['peak_rss_mib']} MiB")
        finally:
            stop_all(workers, [src, dst])
    return out


# ------------------------------------------------------------------ failover

OWN_RX = re.compile(r"ownership (acquire|release) task=(\S+) partition=(\S+) worker=(\S+) at=(\d+)")


def ownership_events(w, current_only=False):
    """(kind, task, partition, worker, at_ms) from a worker's log; with current_only, only the
    lines of its latest process (after the last "starting worker" marker)."""
    try:
        with open(w.logpath, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    if current_only:
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("==== ferrytest: starting worker"):
                lines = lines[i:]
                break
    evs = []
    for line in lines:
        m = OWN_RX.search(line)
        if m:
            evs.append((m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))))
    return evs


def held_partitions(w):
    held = set()
    for kind, _, part, _, _ in ownership_events(w, current_only=True):
        (held.add if kind == "acquire" else held.discard)(part)
    return held


def leader_index(workers):
    """Index of the worker whose log most recently says it became the leader."""
    best, best_pos = None, -1
    for i, w in enumerate(workers):
        if not w.alive():
            continue
        try:
            with open(w.logpath, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        cut = text.rfind("==== ferrytest: starting worker")
        pos = text.rfind("is now the leader", max(cut, 0))
        if pos >= 0:
            # compare by the timestamp at the start of that line if present, else position
            line_start = text.rfind("\n", 0, pos) + 1
            stamp = text[line_start:line_start + 40]
            key = (stamp, pos)
            if best is None or key > best_pos:
                best, best_pos = i, key
    return best


def run_failover(tmp_root, zk, kills, rest_requests, wrk_seconds):
    tag = "failover"
    tmp = os.path.join(tmp_root, tag)
    os.makedirs(tmp)
    parts, tasks = 24, 6
    src = ft.MockKafka(tmp, "src", {"fo": parts})
    dst = ft.MockKafka(tmp, "dst", {**ft.STORAGE_TOPICS, "fo.replica": parts})
    extra = {"zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS}
    workers, producer = [], None
    result = {"session_timeout_ms": SESSION_TIMEOUT_MS, "partitions": parts, "tasks_max": tasks,
              "kills": []}
    try:
        workers = start_workers(tmp, zk, dst, f"bench-{tag}", 3, extra)
        rate = 5000
        producer = subprocess.Popen(
            [ft.binary("kafkatool"), "produce", "-b", src.bootstrap, "-t", "fo", "-n",
             str(rate * 600), "--rate", str(rate), "--partitions", str(parts)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        post_connector(workers[0].url, connector_body(src.bootstrap, "fo", "fo", "fo.replica", tasks))

        def settled():
            held = [held_partitions(w) for w in workers]
            return all(w.alive() for w in workers) and sum(len(h) for h in held) == parts and \
                all(held)
        for k in range(kills):
            ft.wait_until(settled, 60, interval=0.2, what="every worker to own partitions")
            time.sleep(1.0)
            leader = leader_index(workers)
            # even kills hit the leader (election + assignment), odd kills a follower
            if k % 2 == 0 and leader is not None:
                victim_i = leader
            else:
                victim_i = next(i for i in range(len(workers)) if i != leader and
                                i != (result["kills"][-1]["victim"] if result["kills"] else -1))
            victim = workers[victim_i]
            lost = held_partitions(victim)
            kill_ms = time.time() * 1000.0
            victim.kill9()
            others = [w for w in workers if w is not victim]

            def recovered():
                got = {}
                for w in others:
                    for kind, _, part, _, at in ownership_events(w, current_only=True):
                        if kind == "acquire" and part in lost and at >= kill_ms:
                            got[part] = min(got.get(part, at), at)
                return got if len(got) == len(lost) else None
            got = ft.wait_until(recovered, 60, interval=0.05, what="the dead worker's partitions")
            rec_ms = max(got.values()) - kill_ms
            result["kills"].append({"victim": victim_i, "was_leader": victim_i == leader,
                                    "partitions": len(lost), "recovery_ms": round(rec_ms)})
            log(f"failover {k}: worker {victim_i}{' (leader)' if victim_i == leader else ''} "
                f"held {len(lost)} partitions, all owned again after {rec_ms:.0f} ms")
            victim.start()
            victim.wait_ready(timeout=60)
        rec = [x["recovery_ms"] for x in result["kills"]]
        result["p50_ms"] = median(rec)
        result["max_ms"] = max(rec)
        result["target_ms"] = SESSION_TIMEOUT_MS + 1000
        # the copy kept every record: stop producing, let it catch up, compare
        producer.terminate()
        producer.wait()
        produced = hwm_total(src.bootstrap, "fo")
        t_stop = time.monotonic()
        ft.wait_until(lambda: hwm_total(dst.bootstrap, "fo.replica") >= produced, 120, interval=0.5,
                      what="the failover copy to catch up")
        # duplicates make the destination's count reach the source's early: compare until
        # nothing is missing (or 60 s have passed, which would be a real loss)
        while True:
            cmp = ft.compare(src.bootstrap, "fo", dst.bootstrap, "fo.replica")
            if cmp["missing"] == 0 or time.monotonic() - t_stop > 60:
                break
            time.sleep(2)
        result["verify"] = {k: cmp[k] for k in ("source", "dest", "missing", "duplicates",
                                                "reordered", "mismatched")}
        result["verify"]["seconds_after_producer_stopped"] = round(time.monotonic() - t_stop, 1)
        ft.wait_until(settled, 60, interval=0.2, what="the group to settle before the REST run")
        time.sleep(1.0)
        result["rest"] = run_rest(src, workers, rest_requests, wrk_seconds)
    finally:
        if producer and producer.poll() is None:
            producer.kill()
            producer.wait()
        stop_all(workers, [src, dst])
    return result


# ------------------------------------------------------------------ REST

def ensure_wrk():
    if shutil.which("wrk"):
        return True
    log("wrk is missing: apt-get install -y wrk")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"],
                ["apt-get", "install", "-y", "wrk"]):
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if shutil.which("wrk"):
            return True
    return False


def run_rest(src, workers, requests, wrk_seconds):
    out = {}
    leader = leader_index(workers)
    follower = workers[(leader + 1) % len(workers)] if leader is not None else workers[1]
    if ensure_wrk():
        r = subprocess.run(["wrk", "-t2", "-c16", f"-d{wrk_seconds}s", "--latency",
                            follower.url + "/connectors"], capture_output=True, text=True)
        m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
        p99 = re.search(r"^\s+99%\s+(\S+)", r.stdout, re.M)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
        out["get_connectors_rps"] = float(m.group(1)) if m else None
        out["get_connectors_p99"] = p99.group(1) if p99 else None
        out["get_connectors_non2xx"] = int(non2xx.group(1)) if non2xx else 0
        out["wrk"] = "wrk -t2 -c16 -d%ds --latency GET /connectors" % wrk_seconds
    else:
        out["get_connectors_rps"] = None
    posts, deletes, conflicts = [], [], {"POST": 0, "DELETE": 0}
    streak = {"longest_s": 0.0, "at": None, "body": None}

    def timed(method, url, body, ok):
        """ms of the successful attempt; a 409 (rebalance underway, no leader known) is
        retried every 100 ms for up to 60 s, as Kafka Connect clients do, and counted; the
        longest run of 409s is reported."""
        first_409 = None
        while True:
            t0 = time.perf_counter()
            st, _, raw, _ = ft.http(method, url, body)
            ms = (time.perf_counter() - t0) * 1000
            if st == ok:
                if first_409 is not None:
                    took = time.monotonic() - first_409
                    if took > streak["longest_s"]:
                        streak.update(longest_s=round(took, 2))
                return ms
            if st != 409:
                raise RuntimeError(f"{method} {url} -> {st}: {raw[:200]!r}")
            conflicts[method] += 1
            if first_409 is None:
                first_409 = time.monotonic()
                streak.update(at=time.strftime("%H:%M:%S"), body=raw[:160].decode(errors="replace"))
            if time.monotonic() - first_409 > 60:
                raise RuntimeError(f"{method} {url} answered 409 for 60 s: {raw[:200]!r}")
            time.sleep(0.1)
    for i in range(requests):
        body = ft.seed_connector(src.bootstrap, name=f"rest-{i}", topic="no-such-topic-rest",
                                 rename="rest.replica")
        posts.append(timed("POST", follower.url + "/connectors", body, 201))
        deletes.append(timed("DELETE", f"{follower.url}/connectors/rest-{i}", None, 204))

    # the same on the leader itself (no forwarding), to split the forwarding cost out
    lposts, ldeletes = [], []
    leader_w = workers[leader] if leader is not None else workers[0]
    for i in range(max(requests // 4, 10)):
        body = ft.seed_connector(src.bootstrap, name=f"rest-l{i}", topic="no-such-topic-rest",
                                 rename="rest.replica")
        lposts.append(timed("POST", leader_w.url + "/connectors", body, 201))
        ldeletes.append(timed("DELETE", f"{leader_w.url}/connectors/rest-l{i}", None, 204))

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]
    out.update({"leader_requests": len(lposts), "leader_post_p50_ms": pct(lposts, 0.5),
                "leader_post_p99_ms": pct(lposts, 0.99), "leader_delete_p50_ms": pct(ldeletes, 0.5)})
    out.update({"forwarded_requests": requests, "answered_409": conflicts,
                "longest_409_streak": streak,
                "post_p50_ms": pct(posts, 0.5), "post_p99_ms": pct(posts, 0.99),
                "delete_p50_ms": pct(deletes, 0.5), "delete_p99_ms": pct(deletes, 0.99)})
    log(f"REST: GET /connectors {out.get('get_connectors_rps')} req/s; forwarded POST p50 "
        f"{out['post_p50_ms']:.1f} ms p99 {out['post_p99_ms']:.1f} ms")
    return out


# ------------------------------------------------------------------ assignor

def run_assign_bench():
    r = subprocess.run([ft.binary("assign_test")], capture_output=True, text=True, timeout=300)
    line = next((l.strip() for l in r.stdout.splitlines() if "assign_bench 1000" in l), None)
    if not line:
        return {"line": None, "rc": r.returncode}
    nums = re.findall(r"([\d.]+) ms \((\d+) (?:moved|added)", line)
    leave = re.search(r"leave ([\d.]+) ms \((\d+) added, (\d+) revoked\)", line)
    res = {"line": re.sub(r"\s*passed$", "", line).strip(), "rc": r.returncode}
    if len(nums) >= 2 and leave:
        res.update({"join_revoke_ms": float(nums[0][0]), "join_moved": int(nums[0][1]),
                    "join_add_ms": float(nums[1][0]), "join_added": int(nums[1][1]),
                    "leave_ms": float(leave.group(1)), "leave_added": int(leave.group(2)),
                    "leave_revoked": int(leave.group(3))})
    return res


# ------------------------------------------------------------------ machine and report

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    rdk = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True, text=True)
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "librdkafka": rdk.stdout.strip() or "?",
            "loadavg_start": os.getloadavg()}


def fmt_rate(x):
    if x is None:
        return "–"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def fmt(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def size_label(size):
    return "1 KiB" if size == 1024 else f"{size} B"


def fmt_list(xs, nd=0):
    return "–" if not xs else ", ".join(fmt(x, nd) for x in xs)


def report_cases(L, cases):
    """The copy tables: ferry per case, the baselines, and ferry against the minimal copier.
    Results written before the copier existed lack its fields: they show as –."""
    L.append("## Copy throughput\n")
    L.append("| workers | partitions | value | N | ferry records/s | MB/s | × minimal copier | "
             "× consume-only | × kcat pipe | first record / every partition | peak RSS/worker (whole case) | "
             "threads/worker | CPU s per M | idle CPU | latency p50 / p99 |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        lat = c.get("latency")
        lat_s = f"{lat['p50_ms']:.0f} / {lat['p99_ms']:.0f} ms" if lat else "–"
        L.append(f"| {c['workers']} | {c['partitions']} | {size_label(c['size'])} | "
                 f"{c['records']:,} | {fmt_rate(c['records_per_s'])} | {c['mb_per_s']:.0f} | "
                 f"{fmt(c.get('ratio_copier'), 2)} | {c['ratio_consume_only']:.2f} | "
                 f"{c['ratio_kcat_pipe']:.2f} | {c['first_record_s']:.2f} / "
                 f"{fmt(c.get('all_partitions_s'), 2)} s | {fmt_list(c['peak_rss_mib'])} MiB | "
                 f"{fmt_list(c.get('threads_max'))} | {c['cpu_s_per_million']:.1f} | "
                 f"{c['idle_cpu_pct']:.0f}% | {lat_s} |")
    L.append("")
    L.append("Baselines measured in the same case (same mock clusters, same records):\n")
    L.append("| workers | partitions | value | consume-only (kafkatool drain) | produce-only "
             "(kafkatool produce-bench) | kcat -C \\| kcat -P | minimal copier (kafkatool copy) | "
             "ferry after its first record | CPU s per M: kcat pipe / copier / ferry / both mocks | "
             "machine busy during ferry |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        L.append(f"| {c['workers']} | {c['partitions']} | {size_label(c['size'])} | "
                 f"{fmt_rate(c['consume_only_per_s'])} | {fmt_rate(c['produce_only_per_s'])} | "
                 f"{fmt_rate(c['kcat_pipe_per_s'])} | {fmt_rate(c.get('copier_per_s'))} | "
                 f"{fmt_rate(c['copy_records_per_s'])} | "
                 f"{fmt(c.get('kcat_pipe_cpu_s_per_million'))} / "
                 f"{fmt(c.get('copier_cpu_s_per_million'))} / {fmt(c['cpu_s_per_million'])} / "
                 f"{fmt(c.get('mock_cpu_s_per_million'))} | {fmt(c.get('machine_busy_pct'), 0)}% |")
    L.append("")
    if not any(c.get("copier_per_s") for c in cases):
        return
    L.append("ferry against the minimal copier (`kafkatool copy`: one consumer, one idempotent "
             "producer, ferry's client settings, same records; its clock runs from client "
             "creation to the N-th acknowledgement, ferry's from POST /connectors to N in the "
             "destination):\n")
    L.append("| workers | partitions | value | copier records/s | ferry × copier | after the "
             "first record: copier / ferry | CPU s per M: copier / ferry | ferry CPU ÷ copier CPU | "
             "peak RSS: copier / ferry per worker | threads: copier / ferry per worker | "
             "allocator: copier / ferry |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        if not c.get("copier_per_s"):
            continue
        alloc = c.get("allocator") or {}
        L.append(f"| {c['workers']} | {c['partitions']} | {size_label(c['size'])} | "
                 f"{fmt_rate(c['copier_per_s'])} | {fmt(c.get('ratio_copier'), 2)} | "
                 f"{fmt_rate(c.get('copier_copy_records_per_s'))} / "
                 f"{fmt_rate(c['copy_records_per_s'])} | "
                 f"{fmt(c.get('copier_cpu_s_per_million'))} / {fmt(c['cpu_s_per_million'])} | "
                 f"{fmt(c.get('cpu_ratio_copier'), 2)} | {fmt(c.get('copier_peak_rss_mib'), 0)} / "
                 f"{fmt_list(c['peak_rss_mib'])} MiB | {c.get('copier_threads') or '–'} / "
                 f"{fmt_list(c.get('threads_max'))} | {alloc.get('copier') or '–'} / "
                 f"{alloc.get('ferry') or '–'} |")
    L.append("")
    if not any(c.get("record_path_per_s") for c in cases):
        return
    L.append("The two copy paths of the same records (docs/ARCHITECTURE.md, \"Two copy paths\"): "
             "ferry's default (`copy.mode=auto`: record batches forwarded as they are) and "
             "`copy.mode=record` (record by record through librdkafka), against the minimal "
             "record-level copier and consume-only of the same case:\n")
    L.append("| workers | partitions | value | batch path records/s | × copier | × consume-only | "
             "CPU s per M | record path records/s | × copier | × consume-only | CPU s per M | "
             "peak RSS/worker: after the batch runs / after the record runs too |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        if not c.get("record_path_per_s"):
            continue
        L.append(f"| {c['workers']} | {c['partitions']} | {size_label(c['size'])} | "
                 f"{fmt_rate(c['records_per_s'])} | {fmt(c.get('ratio_copier'), 2)} | "
                 f"{c['ratio_consume_only']:.2f} | {c['cpu_s_per_million']:.2f} | "
                 f"{fmt_rate(c['record_path_per_s'])} | {fmt(c.get('record_path_ratio_copier'), 2)} | "
                 f"{fmt(c.get('record_path_ratio_consume_only'), 2)} | "
                 f"{fmt(c.get('record_path_cpu_s_per_million'), 2)} | "
                 f"{fmt_list(c.get('batch_path_peak_rss_mib') or c['peak_rss_mib'])} / "
                 f"{fmt_list(c.get('record_path_peak_rss_mib'))} MiB |")
    L.append("")


def report(res):
    L = []
    m = res["machine"]
    L.append(f"# ferry benchmark ({'quick' if res['quick'] else 'full'} run)\n")
    L.append(f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['mem_gib']} GiB, Linux "
             f"{m['kernel']}, librdkafka {m['librdkafka']}. Load average at start "
             f"{m['loadavg_start'][0]:.2f}, at end {res['loadavg_end'][0]:.2f}. Command: "
             f"`{res['command']}`; {res['wall_s']:.0f} s in all. Medians of {res['repeats']} "
             f"run(s) per case; every case on fresh mock clusters (3 brokers each).\n")
    if res["cases"]:
        report_cases(L, res["cases"])
    if res.get("growth"):
        L.append("## Cost growth (1 worker, 100 B, tasks.max = partitions)\n")
        most = any(g.get("threads_max") for g in res["growth"])
        L.append("| partitions | records | seconds | records/s | consume-only | peak RSS | threads"
                 f"{' (most during the copy)' if most else ''} | CPU s per M |")
        L.append("|---|---|---|---|---|---|---|---|")
        for g in res["growth"]:
            L.append(f"| {g['partitions']} | {g['records']:,} | {g['seconds']:.2f} | "
                     f"{fmt_rate(g['records_per_s'])} | {fmt_rate(g['consume_only_per_s'])} | "
                     f"{fmt(g['peak_rss_mib'], 0)} MiB | {g.get('threads_max') or g['threads']} | "
                     f"{g['cpu_s_per_million']:.1f} |")
        L.append("")
    fo = res.get("failover")
    if fo:
        L.append(f"## Failover (3 workers, {fo['partitions']} partitions, tasks.max="
                 f"{fo['tasks_max']}, zookeeper.session.timeout.ms={fo['session_timeout_ms']})\n")
        L.append("kill -9 → every partition of the dead worker owned again (`ownership acquire` "
                 "log lines of the survivors):\n")
        L.append("| kill | victim | leader? | partitions | recovery |")
        L.append("|---|---|---|---|---|")
        for i, k in enumerate(fo["kills"]):
            L.append(f"| {i + 1} | worker {k['victim']} | {'yes' if k['was_leader'] else 'no'} | "
                     f"{k['partitions']} | {k['recovery_ms'] / 1000:.2f} s |")
        verdict = "met" if fo["max_ms"] <= fo["target_ms"] else "NOT met"
        L.append(f"\np50 {fo['p50_ms'] / 1000:.2f} s, max {fo['max_ms'] / 1000:.2f} s; target ≤ "
                 f"{fo['target_ms'] / 1000:.1f} s (session timeout + 1 s): **{verdict}**. "
                 f"Copy verified afterwards: {json.dumps(fo.get('verify'))}.\n")
        rest = fo.get("rest")
        if rest:
            L.append("## REST\n")
            L.append(f"- `GET /connectors` on a follower ({rest.get('wrk', 'wrk unavailable')}): "
                     f"**{fmt(rest.get('get_connectors_rps'), 0)} requests/s**, p99 "
                     f"{rest.get('get_connectors_p99')}, non-2xx {rest.get('get_connectors_non2xx')}.")
            L.append(f"- Forwarded writes on a follower, {rest['forwarded_requests']} sequential "
                     f"create+delete pairs: POST /connectors p50 {rest['post_p50_ms']:.1f} ms, "
                     f"**p99 {rest['post_p99_ms']:.1f} ms**; DELETE p50 {rest['delete_p50_ms']:.1f} ms, "
                     f"p99 {rest['delete_p99_ms']:.1f} ms; 409 answers (rebalance underway, "
                     f"retried every 100 ms, not in the latencies): {rest.get('answered_409')}"
                     + (f", longest run of 409s {rest['longest_409_streak']['longest_s']} s"
                        if rest.get("longest_409_streak", {}).get("at") else "") + ".")
            L.append(f"- The same on the leader (not forwarded), {rest['leader_requests']} pairs: "
                     f"POST p50 {rest['leader_post_p50_ms']:.1f} ms, p99 "
                     f"{rest['leader_post_p99_ms']:.1f} ms; DELETE p50 "
                     f"{rest['leader_delete_p50_ms']:.1f} ms.\n")
    d = res.get("delivery")
    if d:
        L.append("## What each delivery guarantee costs\n")
        L.append(f"1 worker, {d['partitions']} partitions, {d.get('tasks', d['partitions'])} tasks, "
                 f"{size_label(d['size'])} values, {d['records']:,} records, median of "
                 f"{d['repeats']} run(s) each, variants alternating; consume-only ceiling "
                 f"{fmt_rate(d['consume_only_per_s'])} records/s. Copy rate = records after the "
                 f"first one / time since the first one (start-up excluded; it includes reading "
                 f"the destination's end). On the mock, commits cost less than on real brokers "
                 f"(it writes no transaction markers).\n")
        L.append("| delivery | copy records/s | × at least once | × consume-only | first record | "
                 "CPU s per M |")
        L.append("|---|---|---|---|---|---|")
        for v in d["variants"]:
            L.append(f"| {v['variant']} | {fmt_rate(v.get('copy_records_per_s', v['records_per_s']))} | "
                     f"{v['vs_at_least_once']:.2f} | {v['ratio_consume_only']:.2f} | "
                     f"{fmt(v.get('first_record_s'), 2)} s | {fmt(v.get('cpu_s_per_million'), 1)} |")
        L.append("")
    if res.get("errors"):
        L.append("## Errors\n")
        L.extend(f"- {e}" for e in res["errors"])
        L.append("")
    a = res.get("assign")
    if a and a.get("line"):
        L.append("## Assignment (tests/unit/assign_test, 1000 items × 10 workers)\n")
        L.append(f"`{a['line']}`\n")
    return "\n".join(L)


# ------------------------------------------------------------------ profile

PROFILE_FRAMES = [
    # (label, substring of a frame) for the inclusive table of the profile
    ("task threads (task_main)", "task_main"),
    ("  copy_one (consumed record -> producev)", "copy_one"),
    ("    rd_kafka_message_headers (parse the source headers)", "rd_kafka_message_headers"),
    ("    rd_kafka_headers_copy (copy them for the producer)", "rd_kafka_headers_copy"),
    ("    rd_kafka_producev", "rd_kafka_producev"),
    ("  rd_kafka_poll on the producer (delivery reports)", "rd_kafka_poll"),
    ("    dr_cb", "dr_cb"),
    ("  rd_kafka_consume_batch_queue / consumer_poll", "rd_kafka_consume"),
    ("  flush_offsets", "flush_offsets"),
    ("malloc/calloc/realloc (all threads)", "alloc"),
    ("free (all threads)", "free"),
    ("  malloc_consolidate", "malloc_consolidate"),
    ("  sysmalloc/grow_heap (arena growth, page faults)", "sysmalloc"),
    ("pthread_mutex_lock/unlock", "pthread_mutex_"),
    ("poll() syscall (broker threads waiting for I/O)", "__poll"),
    ("sendmsg/recvmsg", "msg"),
    ("clock_gettime", "clock_gettime"),
]


def profile_breakdown(data):
    """Thread split and inclusive percentages of PROFILE_FRAMES from `perf script`."""
    r = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"], capture_output=True,
                       text=True)
    samples, cur = [], None
    for line in r.stdout.splitlines():
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
        elif not line[0].isspace():
            cur = (line.split()[0], [])
        elif cur:
            parts = line.split(None, 1)
            cur[1].append(parts[1].strip() if len(parts) > 1 else "?")
    if cur:
        samples.append(cur)
    n = max(len(samples), 1)
    comm = {}
    for c, _ in samples:
        key = "rdk:broker*" if c.startswith("rdk:broker") else c
        comm[key] = comm.get(key, 0) + 1
    out = [f"{len(samples)} samples; by thread: " +
           ", ".join(f"{k} {100 * v / n:.1f}%" for k, v in sorted(comm.items(), key=lambda x: -x[1]))]
    out.append("inclusive share of all samples (a frame anywhere in the stack):")
    for label, frag in PROFILE_FRAMES:
        if frag == "alloc":
            hit = sum(1 for _, st in samples if any(re.search(r"(^|_)(malloc|calloc|realloc)\b", f)
                                                   for f in st))
        elif frag == "free":
            hit = sum(1 for _, st in samples if any(re.search(r"(^|_)c?free\b", f)
                                                   for f in st))
        else:
            hit = sum(1 for _, st in samples if any(frag in f for f in st))
        out.append(f"  {label:58s} {100 * hit / n:5.1f}%")
    return "\n".join(out)


def run_profile(tmp_root, zk, parts=64, size=100, n=1000000):
    """perf record of the worker during one 1-worker copy; the report goes to profile.txt.
    FERRY_PERF_CALLGRAPH=fp|dwarf (default dwarf: librdkafka and libc have no frame pointers,
    so only DWARF unwinding attributes their time to ferry's call sites)."""
    tmp = os.path.join(tmp_root, "profile")
    os.makedirs(tmp)
    src = ft.MockKafka(tmp, "src", {"bench": parts})
    dst = ft.MockKafka(tmp, "dst", {**ft.STORAGE_TOPICS, "bench.replica": parts})
    workers = []
    data = os.environ.get("FERRY_PERF_DATA", "/tmp/ferry-bench-perf.data")
    cg = os.environ.get("FERRY_PERF_CALLGRAPH", "dwarf")
    freq = "999" if cg == "fp" else "499"
    try:
        ft.produce(src.bootstrap, "bench", n, size=size, partitions=parts)
        workers = start_workers(tmp, zk, dst, "bench-profile", 1)
        perf = subprocess.Popen(["perf", "record", "--call-graph", cg, "-F", freq, "-o", data, "-p",
                                 str(workers[0].pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        run = ferry_copy(src, dst, workers, "profile", "bench", "bench.replica", n, parts)
        perf.send_signal(2)
        perf.wait(timeout=120)
    finally:
        stop_all(workers, [src, dst])
    outputs = []
    for args in (["--no-children", "--sort", "dso"], ["--no-children", "--sort", "dso,sym"]):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                            "--percent-limit", "0.7"] + args, capture_output=True, text=True)
        outputs.append(f"$ perf report {' '.join(args)}   (self time)\n" +
                       "\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#")))
    outputs.append(profile_breakdown(data))
    text = (f"perf record --call-graph {cg} -F {freq} of ferry-worker (1 worker, {parts} partitions, "
            f"tasks.max={parts}, {n:,} x {size} B): copy took {run['seconds']:.2f} s "
            f"({run['records_per_s']:,.0f} records/s), machine busy {run['machine_busy_pct']:.0f}%, "
            f"load average {os.getloadavg()[0]:.1f}\n\n" + "\n\n".join(outputs) + "\n")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "profile.txt"), "w") as f:
        f.write(text)
    print(text)


# ------------------------------------------------------------------ main

# the copy cases (workers, partitions, value size) of a quick and of a full run
COPY_GRID_QUICK = [(1, 8, 100), (3, 8, 100)]
COPY_GRID = [(w, p, s) for s in (100, 1024) for p in (8, 64) for w in (1, 3)]


def case_name(workers, parts, size):
    """A copy case's name in the log, the JSON and --cases: 1w-8p-100b."""
    return f"{workers}w-{parts}p-{size}b"


def records_for(parts, size, want):
    return min(want, parts * PER_PARTITION_CAP[size])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 100k records, fewer cases")
    ap.add_argument("--profile", action="store_true",
                    help="only profile one ferry copy with perf (bench/results/profile.txt)")
    ap.add_argument("--only", default="", help="comma list of parts to run: "
                    "copy,growth,failover,assign,delivery (default all)")
    ap.add_argument("--cases", default="", help="comma list of copy cases to run, named "
                    "WORKERSw-PARTITIONSp-BYTESb as in the log, e.g. 1w-8p-100b (default all)")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render bench/results/latest.md from latest.json (no measurements)")
    args = ap.parse_args()
    if args.report_only:
        with open(os.path.join(RESULTS, "latest.json")) as f:
            md = report(json.load(f))
        with open(os.path.join(RESULTS, "latest.md"), "w") as f:
            f.write(md + "\n")
        print(md)
        return 0
    unknown = set(filter(None, args.cases.split(","))) - \
        {case_name(w, p, z) for w, p, z in COPY_GRID_QUICK + COPY_GRID}
    if unknown:
        sys.exit(f"--cases: no copy case {', '.join(sorted(unknown))} (names like 1w-8p-100b)")
    for b in ("ferry-worker", "mockcluster", "kafkatool", "assign_test"):
        ft.binary(b)
    if not shutil.which("kcat"):
        sys.exit("kcat is missing (apt-get install -y kcat)")
    started = time.monotonic()
    tmp_root = tempfile.mkdtemp(prefix="ferry-bench-")
    log(f"bench temp dir {tmp_root}")
    zk = ft.ZooKeeper(tmp_root)
    only = set(filter(None, args.only.split(","))) or {"copy", "growth", "failover", "assign",
                                                       "delivery"}
    failed = True   # until the report is written; keeps the temp dir (logs) after a crash
    try:
        if args.profile:
            run_profile(tmp_root, zk)
            failed = False
            return 0
        res = {"quick": args.quick, "machine": machine(),
               "command": "python3 bench/run.py" + (" --quick" if args.quick else "")
                          + (f" --only {args.only}" if args.only else "")
                          + (f" --cases {args.cases}" if args.cases else ""),
               "latency_method": f"{LATENCY_RATE} records/s for {LATENCY_SECONDS} s; arrival at a "
                                 "consumer tailing the destination minus the send time in the value",
               "cases": [], "growth": [], "failover": None, "assign": None, "delivery": None}
        if args.quick:
            want, repeats = 100000, 1
            grid = COPY_GRID_QUICK
            growth = [(8, 12500), (32, 50000)]
            kills, rest_n, wrk_s = 2, 50, 2
        else:
            want, repeats = 1000000, 3
            grid = COPY_GRID
            growth = [(8, 125000), (32, 500000), (128, 2000000)]
            kills, rest_n, wrk_s = 5, 200, 5
        if args.cases:
            grid = [(w, p, z) for w, p, z in grid if case_name(w, p, z) in args.cases.split(",")]
        res["repeats"] = repeats
        res["errors"] = []

        def guarded(what, fn):
            """A failing part is reported and the run goes on with the next one."""
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - reported, and the exit code says so
                log(f"{what} FAILED: {e!r}")
                res["errors"].append(f"{what}: {e!r}")
                return None
        if "copy" in only:
            for w, p, s in grid:
                c = guarded(f"case {case_name(w, p, s)}", lambda: run_case(
                    tmp_root, zk, w, p, s, records_for(p, s, want), repeats))
                if c:
                    res["cases"].append(c)
        if "growth" in only:
            res["growth"] = guarded("growth", lambda: run_growth(tmp_root, zk, growth)) or []
        if "failover" in only:
            res["failover"] = guarded("failover", lambda: run_failover(tmp_root, zk, kills, rest_n,
                                                                      wrk_s))
        if "assign" in only:
            res["assign"] = guarded("assign", run_assign_bench)
        if "delivery" in only:
            res["delivery"] = guarded("delivery", lambda: run_delivery(
                tmp_root, zk, records_for(64, 100, want), repeats=1 if args.quick else 3))
        res["wall_s"] = time.monotonic() - started
        res["loadavg_end"] = os.getloadavg()
        md = report(res)
        os.makedirs(RESULTS, exist_ok=True)
        # a partial or quick run does not overwrite the full run's results
        tag = "latest" + ("-quick" if args.quick else "") + \
            ("-" + args.only.replace(",", "-") if args.only else "") + \
            ("-" + args.cases.replace(",", "-") if args.cases else "")
        with open(os.path.join(RESULTS, f"{tag}.md"), "w") as f:
            f.write(md + "\n")
        with open(os.path.join(RESULTS, f"{tag}.json"), "w") as f:
            json.dump(res, f, indent=1)
        log(f"results in bench/results/{tag}.md and .json")
        print(md)
        failed = bool(res["errors"])
        return 1 if failed else 0
    finally:
        zk.stop()
        if os.environ.get("FERRY_KEEP") != "1" and not failed:
            shutil.rmtree(tmp_root, ignore_errors=True)
        else:
            log(f"kept {tmp_root} (worker logs of every case)")


if __name__ == "__main__":
    sys.exit(main())
