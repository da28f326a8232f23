"""ferrytest: the integration-test harness for ferry (stdlib only).

The integration tests run real processes on 127.0.0.1: ZooKeeper (the Debian jar, started
directly because its wrapper scripts insist on /etc and /var), two mock Kafka clusters
(tests/fixtures/mockcluster, librdkafka's mock broker), and ferry-worker daemons. This module
starts and stops them, talks HTTP to the workers' REST API, and drives tests/fixtures/kafkatool
to produce deterministic records and verify copies.

Binaries come from $FERRY_BUILD (set by ctest; default <repo>/build). Every process started
here is tracked by pid and stopped at the end (SIGTERM, then SIGKILL after 5 s), and an atexit
hook kills leftovers if a test crashes. Set FERRY_KEEP=1 to keep the temp dir of a passing run.

Typical use:

    with Cluster(workers=2, src_topics={"connect": 8}) as c:
        produce(c.src.bootstrap, "connect", 10000)
        status, body, _, _ = http("POST", c.url + "/connectors", seed_connector(c.src.bootstrap))
        wait_records(c.dst.bootstrap, "connect.replica", 10000)
        assert compare(c.src.bootstrap, "connect", c.dst.bootstrap, "connect.replica")["rc"] == 0
"""
import atexit
import json
import os
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.client import HTTPConnection

_T0 = time.monotonic()
_ALL_PROCS = []          # every Popen started by this module, for the atexit safety net
_USED_PORTS = set()      # ports handed out by free_port(), never handed out twice

STORAGE_TOPICS = {"connect-configs": 1, "connect-offsets": 25, "connect-status": 5}
BYTES_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"


# ------------------------------------------------------------------ basics

def log(msg):
    """One progress line on stderr, with the time since the harness was imported."""
    print(f"[ferrytest +{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def src_dir():
    """The source tree: $FERRY_SRC, default the repository holding this file."""
    return os.environ.get("FERRY_SRC") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    """The build tree with ferry-worker, mockcluster, kafkatool: $FERRY_BUILD or <repo>/build."""
    return os.environ.get("FERRY_BUILD") or os.path.join(src_dir(), "build")


def binary(name):
    path = os.path.join(build_dir(), name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} not found or not executable "
                                f"(build it, or set FERRY_BUILD to the build directory)")
    return path


def free_port():
    """A TCP port on 127.0.0.1 that was free just now and not handed out before."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _USED_PORTS:
            _USED_PORTS.add(port)
            return port
    raise RuntimeError("no free port found")


def wait_until(fn, timeout, interval=0.1, what="condition"):
    """Calls fn() until it returns something truthy, and returns that. OSErrors (connection
    refused and the like) count as "not yet". Raises AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except OSError as e:
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(interval)


def tail(path, lines=60):
    """The last `lines` lines of a text file ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    _ALL_PROCS.append(p)
    return p


def stop_processes(procs, grace=None):
    """SIGTERM every live process, wait up to `grace` s for all of them (5 s; 120 s when
    FERRY_WRAP runs the workers under a slow tool such as valgrind), then SIGKILL the rest."""
    if grace is None:
        grace = 120.0 if os.environ.get("FERRY_WRAP") else 5.0
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} ignored SIGTERM for {grace} s, sending SIGKILL")
            p.kill()
            p.wait()


@atexit.register
def _kill_leftovers():
    for p in _ALL_PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


# ------------------------------------------------------------------ HTTP

def http(method, url, body=None, headers=None, raw=None, timeout=30):
    """One HTTP request. `body` (a Python object) is sent as JSON with Content-Type
    application/json; `raw` (bytes or str) is sent as-is with only the headers given.
    Returns (status, parsed JSON or None, raw body bytes, response headers). Never raises for
    4xx/5xx; connection errors raise OSError."""
    u = urllib.parse.urlsplit(url)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
    elif raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    conn = HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        return resp.status, parsed, payload, resp.headers
    finally:
        conn.close()


# ------------------------------------------------------------------ ZooKeeper

ZK_JAR_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"


def zk_node_config(node_dir, client_host, client_port, myid, peer_ports=()):
    """zoo.cfg text for one ZooKeeper node with its data in node_dir/data (a myid file is
    written there for an ensemble). peer_ports: [(quorum, election)] per node on 127.0.0.1,
    empty for a standalone server. Short ticks so that sessions expire in seconds."""
    data = os.path.join(node_dir, "data")
    os.makedirs(data, exist_ok=True)
    lines = ["tickTime=500", "initLimit=10", "syncLimit=5", f"dataDir={data}",
             f"clientPortAddress={client_host}", f"clientPort={client_port}",
             "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr,stat,mntr",
             "minSessionTimeout=1000", "maxSessionTimeout=60000"]
    if peer_ports:
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{myid}\n")
        for j, (quorum, election) in enumerate(peer_ports):
            lines.append(f"server.{j + 1}=127.0.0.1:{quorum}:{election}")
    return "\n".join(lines) + "\n"


def zk_argv(cfg_path):
    """The command running the Debian ZooKeeper jar on cfg_path, directly (the wrapper scripts
    insist on /etc and /var)."""
    return ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", ZK_JAR_CP,
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg_path]


def srvr(host, port, timeout=1.0):
    """The reply to ZooKeeper's `srvr` four-letter command ("" if nothing answers)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"srvr")
            chunks = []
            while True:
                b = s.recv(4096)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


def zk_mode(host, port):
    """'standalone', 'leader' or 'follower' when the node serves requests, else None."""
    for line in srvr(host, port).splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


class ZooKeeper:
    """Real ZooKeeper 3.8 (Debian jar) on 127.0.0.1, standalone (nodes=1) or an ensemble.
    Node indexes are 0-based (node i has myid i+1). Starts in the constructor and returns once
    every node answers `srvr` with a Mode: line."""

    def __init__(self, tmpdir, nodes=1, timeout=60):
        self.dir = os.path.join(tmpdir, "zk")
        self.nodes = nodes
        self.ports = [free_port() for _ in range(nodes)]
        self.peer_ports = [(free_port(), free_port()) for _ in range(nodes)] if nodes > 1 else []
        self.procs = [None] * nodes
        self.connect = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        for i in range(nodes):
            self._write_config(i)
        for i in range(nodes):
            self._launch(i)
        for i in range(nodes):
            self.wait_serving(i, timeout)
        log(f"zookeeper ({nodes} node{'s' if nodes > 1 else ''}) serving at {self.connect}")

    def _node_dir(self, i):
        return os.path.join(self.dir, f"node{i}")

    def _write_config(self, i):
        os.makedirs(self._node_dir(i), exist_ok=True)
        with open(os.path.join(self._node_dir(i), "zoo.cfg"), "w") as f:
            f.write(zk_node_config(self._node_dir(i), "127.0.0.1", self.ports[i], i + 1,
                                   self.peer_ports))

    def _launch(self, i):
        cfg = os.path.join(self._node_dir(i), "zoo.cfg")
        logf = open(os.path.join(self._node_dir(i), "zk.log"), "ab")
        self.procs[i] = _spawn(zk_argv(cfg), stdin=subprocess.DEVNULL, stdout=logf,
                               stderr=subprocess.STDOUT)
        logf.close()

    def srvr(self, i, timeout=1.0):
        """The reply to the `srvr` four-letter command on node i ("" if it does not answer)."""
        return srvr("127.0.0.1", self.ports[i], timeout)

    def mode(self, i):
        """'standalone', 'leader' or 'follower' when node i serves requests, else None."""
        return zk_mode("127.0.0.1", self.ports[i])

    def wait_serving(self, i, timeout=60):
        def serving():
            if self.procs[i].poll() is not None:
                raise AssertionError(f"zookeeper node {i} exited with {self.procs[i].returncode}"
                                     f":\n{tail(os.path.join(self._node_dir(i), 'zk.log'))}")
            return self.mode(i)
        return wait_until(serving, timeout, what=f"zookeeper node {i} to serve (srvr Mode:)")

    def stop_node(self, i):
        stop_processes([self.procs[i]])
        log(f"zookeeper node {i} stopped")

    def start_node(self, i, wait=True):
        if self.procs[i] is not None and self.procs[i].poll() is None:
            raise AssertionError(f"zookeeper node {i} is already running")
        self._launch(i)
        if wait:
            self.wait_serving(i)
        log(f"zookeeper node {i} started")

    def pids(self):
        return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def stop(self):
        stop_processes([p for p in self.procs if p is not None])


# ------------------------------------------------------------------ mock Kafka

class MockKafka:
    """A mock Kafka cluster (tests/fixtures/mockcluster). Topics must be created up front or
    with create_topic(): the mock has no CreateTopics API, and topics it auto-creates get 4
    partitions. Broker ids are 1..brokers."""

    def __init__(self, tmpdir, name, topics=None, brokers=3, timeout=20):
        topics = {"t": 8} if topics is None else topics
        self.name = name
        self.logpath = os.path.join(tmpdir, f"{name}.log")
        argv = [binary("mockcluster"), "--brokers", str(brokers)]
        argv += [f"{t}:{p}" for t, p in topics.items()]
        logf = open(self.logpath, "ab")
        self.proc = _spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf)
        logf.close()
        self._lines = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self._lock = threading.Lock()
        self.bootstrap = self._next_line(timeout, "the bootstrap line")
        log(f"mock kafka '{name}' at {self.bootstrap} with topics {topics}")

    def _reader(self):
        for line in self.proc.stdout:
            self._lines.put(line.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, timeout, what):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"mock kafka '{self.name}': no {what} within {timeout} s")
        if line is None:
            raise AssertionError(f"mock kafka '{self.name}' exited (rc={self.proc.poll()}) "
                                 f"before {what}:\n{tail(self.logpath)}")
        return line

    @property
    def pid(self):
        return self.proc.pid

    def command(self, line, timeout=10):
        """Sends one control line and returns the reply line."""
        with self._lock:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            return self._next_line(timeout, f"reply to '{line}'")

    def _ok(self, line):
        reply = self.command(line)
        if reply != "ok":
            raise AssertionError(f"mock kafka '{self.name}': '{line}' -> '{reply}'")

    def create_topic(self, name, parts):
        self._ok(f"create {name} {parts}")

    def broker_down(self, broker_id):
        self._ok(f"down {broker_id}")

    def broker_up(self, broker_id):
        self._ok(f"up {broker_id}")

    def stop(self):
        stop_processes([self.proc])


# ------------------------------------------------------------------ ferry-worker

def worker_properties(dst_bootstrap, zk_connect, host, port, group):
    """The connect-distributed.properties keys of a test worker listening on host:port (the
    storage topics are the ones STORAGE_TOPICS pre-creates on the destination mock)."""
    return {
        "bootstrap.servers": dst_bootstrap,
        "group.id": group,
        "config.storage.topic": "connect-configs",
        "offset.storage.topic": "connect-offsets",
        "status.storage.topic": "connect-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": str(STORAGE_TOPICS["connect-offsets"]),
        "status.storage.partitions": str(STORAGE_TOPICS["connect-status"]),
        "listeners": f"http://{host}:{port}",
        "rest.advertised.host.name": host,
        "rest.advertised.port": str(port),
        "offset.flush.interval.ms": "1000",
        "key.converter": BYTES_CONVERTER,
        "value.converter": BYTES_CONVERTER,
        "zookeeper.connect": zk_connect,
        "consumer.fetch.wait.max.ms": "10",
    }


def write_properties(path, props, comment):
    with open(path, "w") as f:
        f.write(f"# {comment}\n")
        for k, v in props.items():
            f.write(f"{k}={v}\n")


class Worker:
    """One ferry-worker process with its own properties file and REST port. The constructor
    writes the config and starts the process; call wait_ready() before using the REST API."""

    def __init__(self, tmpdir, idx, zk_connect, dst_bootstrap, group="ferry-it", extra=None,
                 start=True, env=None):
        self.idx = idx
        self.env = env        # extra environment variables, or a callable(worker) returning them
        self.dir = os.path.join(tmpdir, f"worker{idx}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(tmpdir, f"worker{idx}.log")
        self.props_path = os.path.join(self.dir, "connect-distributed.properties")
        self.props = worker_properties(dst_bootstrap, zk_connect, "127.0.0.1", self.port, group)
        self.props.update({k: str(v) for k, v in (extra or {}).items()})
        write_properties(self.props_path, self.props, f"written by ferrytest for worker {idx}")
        self.proc = None
        self.procs = []   # every process this worker object started (restarts included)
        if start:
            self.start()

    def start(self):
        if self.alive():
            raise AssertionError(f"worker {self.idx} is already running (pid {self.pid})")
        with open(self.logpath, "ab") as logf:
            logf.write(f"==== ferrytest: starting worker {self.idx} ====\n".encode())
            logf.flush()
            # FERRY_WRAP runs the worker under a tool, e.g. "valgrind --error-exitcode=99 ..."
            wrap = shlex.split(os.environ.get("FERRY_WRAP", ""))
            extra_env = self.env(self) if callable(self.env) else (self.env or {})
            self.proc = _spawn(wrap + [binary("ferry-worker"), self.props_path], cwd=self.dir,
                               stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                               env={**os.environ, **extra_env} if extra_env else None)
        self.procs.append(self.proc)
        log(f"worker {self.idx} started, pid {self.proc.pid}, {self.url}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=60):
        return tail(self.logpath, lines)

    def wait_ready(self, timeout=None):
        """Waits until GET /health answers 200 (storage read, group joined, leader known);
        fails at once if the process exits."""
        if timeout is None:
            timeout = 120 if os.environ.get("FERRY_WRAP") else 30

        def ready():
            if not self.alive():
                rc = self.proc.returncode if self.proc else None
                raise AssertionError(f"worker {self.idx} exited (rc={rc}) before it was ready:\n"
                                     f"{self.log_tail()}")
            return http("GET", self.url + "/health", timeout=2)[0] == 200
        wait_until(ready, timeout, what=f"worker {self.idx} REST at {self.url}")
        log(f"worker {self.idx} ready")

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
            log(f"worker {self.idx} killed with SIGKILL (pid {self.proc.pid})")

    def term(self, timeout=None):
        """SIGTERM and wait; returns the exit code. Fails (after a SIGKILL) if the worker does
        not exit within `timeout` s (30; 120 under FERRY_WRAP)."""
        if timeout is None:
            timeout = 120 if os.environ.get("FERRY_WRAP") else 30
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker {self.idx} did not exit within {timeout} s of SIGTERM")
        log(f"worker {self.idx} exited after SIGTERM with rc={rc}")
        return rc

    def restart(self, wait=True):
        if self.alive():
            self.term()
        self.start()
        if wait:
            self.wait_ready()


# ------------------------------------------------------------------ a whole test cluster

class Cluster:
    """Temp dir + ZooKeeper + source and destination mock Kafka + N workers, as a context
    manager. The destination mock also gets the Connect storage topics. On exit every process
    is stopped; the temp dir is removed unless the body raised or FERRY_KEEP=1, and on failure
    the tail of each worker log goes to stderr."""

    def __init__(self, workers=1, src_topics=None, dst_topics=None, zk_nodes=1, brokers=3,
                 worker_extra=None, group="ferry-it"):
        self.n_workers = workers
        self.src_topics = {"connect": 8} if src_topics is None else dict(src_topics)
        self.dst_topics = {"connect.replica": 8} if dst_topics is None else dict(dst_topics)
        self.zk_nodes = zk_nodes
        self.brokers = brokers
        self.worker_extra = worker_extra or {}
        self.group = group
        self.tmpdir = None
        self.zk = self.src = self.dst = None
        self.workers = []
        self._closed = False

    def __enter__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ferry-it-")
        log(f"cluster temp dir {self.tmpdir}")
        try:
            self.zk = ZooKeeper(self.tmpdir, nodes=self.zk_nodes)
            self.src = MockKafka(self.tmpdir, "src", self.src_topics, self.brokers)
            self.dst = MockKafka(self.tmpdir, "dst", {**STORAGE_TOPICS, **self.dst_topics},
                                 self.brokers)
            for _ in range(self.n_workers):
                self.add_worker(wait=False)
            for w in self.workers:
                w.wait_ready()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

    @property
    def url(self):
        """REST URL of worker 0."""
        return self.workers[0].url

    def add_worker(self, wait=True, extra=None, env=None):
        w = Worker(self.tmpdir, len(self.workers), self.zk.connect, self.dst.bootstrap,
                   group=self.group, extra={**self.worker_extra, **(extra or {})}, env=env)
        self.workers.append(w)
        if wait:
            w.wait_ready()
        return w

    def processes(self):
        procs = [p for w in self.workers for p in w.procs]
        procs += [m.proc for m in (self.src, self.dst) if m]
        procs += [p for p in (self.zk.procs if self.zk else []) if p]
        return procs

    def close(self, failed=False):
        """Stops everything (workers first, so they can leave while Kafka and ZooKeeper are up)."""
        if self._closed:
            return
        self._closed = True
        if failed:
            for w in self.workers:
                print(f"---- last 60 lines of {w.logpath} ----\n{w.log_tail(60)}\n---- end ----",
                      file=sys.stderr, flush=True)
        stop_processes([p for w in self.workers for p in w.procs])
        stop_processes([p for p in self.processes()])
        if failed or os.environ.get("FERRY_KEEP") == "1":
            log(f"kept temp dir {self.tmpdir}")
        elif self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class ClusterTestCase(unittest.TestCase):
    """Base class for tests sharing one Cluster per class: set `cluster_args` (kwargs for
    Cluster); the cluster is `self.cluster`. The temp dir is kept if any test of the class
    failed."""
    cluster_args = {}
    cluster = None
    _failed = False

    @classmethod
    def setUpClass(cls):
        cls._failed = False
        cls.cluster = Cluster(**cls.cluster_args).__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            cls.cluster.close(failed=cls._failed)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        result = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            type(self)._failed = True
        return result


# ------------------------------------------------------------------ kafkatool wrappers

def kafkatool(*args, timeout=600):
    """Runs kafkatool; returns (exit code, stdout text). Its stderr goes to ours."""
    argv = [binary("kafkatool")] + [str(a) for a in args]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def produce(bs, topic, n, size=None, partitions=None, start=None, headers=True, rate=None,
            timeout_ms=None, txn_size=None, xconf=()):
    """Produces records start..start+n-1 (see kafkatool); raises AssertionError on failure.
    txn_size: in committed transactions of that many records; xconf: librdkafka properties
    ("compression.codec=lz4", ...)."""
    args = ["produce", "-b", bs, "-t", topic, "-n", n]
    for flag, val in (("--size", size), ("--partitions", partitions), ("--start", start),
                      ("--rate", rate), ("--timeout-ms", timeout_ms), ("--txn-size", txn_size)):
        if val is not None:
            args += [flag, val]
    for kv in xconf:
        args += ["-X", kv]
    if not headers:
        args.append("--no-headers")
    rc, out = kafkatool(*args)
    if rc != 0:
        raise AssertionError(f"kafkatool produce {n} to {topic} failed (rc={rc}): {out.strip()}")
    log(f"produced {n} records to {topic}")
    return n


def compare(src_bs, src_topic, dst_bs, dst_topic, exact=False, timeout_ms=None):
    """kafkatool compare; returns its JSON report as a dict plus "rc" (its exit code: 0 when
    nothing is missing, mismatched or reordered, and with exact=True no duplicates)."""
    args = ["compare", "-s", src_bs, "-t", src_topic, "-d", dst_bs, "-T", dst_topic]
    if exact:
        args.append("--exact")
    if timeout_ms is not None:
        args += ["--timeout-ms", timeout_ms]
    rc, out = kafkatool(*args)
    try:
        report = json.loads(out)
    except ValueError:
        raise AssertionError(f"kafkatool compare failed (rc={rc}), output: {out!r}")
    report["rc"] = rc
    brief = {k: v for k, v in report.items() if k != "per_partition"}
    log(f"compare {src_topic} -> {dst_topic}: {json.dumps(brief)}")
    return report


def count(bs, topic):
    """{"partitions", "total", "per_partition"} of a topic, or None if it does not exist."""
    rc, out = kafkatool("count", "-b", bs, "-t", topic)
    return json.loads(out) if rc == 0 else None


def consume(bs, topic, n, partition=None, offset=None, timeout_ms=None):
    """Up to n records as dicts {partition, offset, key, value, headers, timestamp}."""
    args = ["consume", "-b", bs, "-t", topic, "-c", n]
    if partition is not None:
        args += ["-p", partition]
    if offset is not None:
        args += ["-o", offset]
    if timeout_ms is not None:
        args += ["--timeout-ms", timeout_ms]
    _, out = kafkatool(*args)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def put_raw(bs, topic, records):
    """Writes (key, value) text records to a topic with kcat, as any other Kafka client could
    (values single-line; keys partitioned by murmur2, as ferry's and Kafka's Java clients do,
    so a record lands in the partition ferry's own record of that key is in)."""
    data = "".join(f"{k}\t{v}\n" for k, v in records).encode()
    r = subprocess.run(["kcat", "-P", "-b", bs, "-t", topic, "-K", "\t", "-X", "partitioner=murmur2_random"],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"kcat -P to {topic} failed: {r.stderr.decode(errors='replace')}")
    log(f"wrote {len(records)} raw record(s) to {topic}")


def wait_records(bs, topic, total, timeout_ms=60000):
    """True once the topic holds at least `total` records (sum of high - low watermarks)."""
    rc, _ = kafkatool("wait", "-b", bs, "-t", topic, "-n", total, "--timeout-ms", timeout_ms)
    return rc == 0


# ------------------------------------------------------------------ connector configs

def seed_connector(src_bootstrap, name="connect-test", topic="connect", rename="connect.replica",
                   **overrides):
    """The reference connector-creation request. Pass dotted keys with
    **{"key.name": value}; a value of None removes the key."""
    config = {
        "connector.class": "EMRReplicatorSourceConnector",
        "key.converter": BYTES_CONVERTER,
        "value.converter": BYTES_CONVERTER,
        "src.kafka.bootstrap.servers": src_bootstrap,
        "src.zookeeper.connect": "127.0.0.1:2181",
        "dest.zookeeper.connect": "127.0.0.1:2181",
        "topic.whitelist": topic,
        "topic.rename.format": rename,
        "src.kafka.max.poll.records": "300",
    }
    for k, v in overrides.items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    return {"name": name, "config": config}


# ------------------------------------------------------------------ distributed-mode helpers

class ZkProxy:
    """A TCP proxy 127.0.0.1:port <-> 127.0.0.1:target_port, run by daemon threads, so that one
    worker's ZooKeeper traffic can be cut: give that worker
    extra={"zookeeper.connect": proxy.connect}.

    cut()  closes every live connection (the client sees the disconnection at once); with
           blackhole=True the live connections stay open but from then on every byte either
           side sends is dropped (the client notices only by its own timeout). Until heal(),
           new connections are accepted and held silently (blackholed).
    heal() closes the blackholed connections (the client reconnects at once) and forwards
           new connections again.
    close() stops the proxy and closes everything.
    delay_ms: every chunk is forwarded that long after it arrived, in both directions (order
    kept), i.e. a slow network between this worker and ZooKeeper."""

    def __init__(self, target_port, listen_port=None, delay_ms=0):
        self.target_port = target_port
        self.delay = delay_ms / 1000.0
        self.port = listen_port or free_port()
        self.connect = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._conns = []          # [client_sock, server_sock or None, {"blackhole": bool}]
        self.accepted = 0
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", self.port))
        self._srv.listen(64)
        self._srv.settimeout(0.2)
        threading.Thread(target=self._accept_loop, daemon=True,
                         name=f"zkproxy-{self.port}").start()
        log(f"zk proxy 127.0.0.1:{self.port} -> 127.0.0.1:{target_port}"
            + (f" (delay {delay_ms} ms each way)" if delay_ms else ""))

    @staticmethod
    def _close_sock(s):
        if s is None:
            return
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self._closed:
            try:
                cs, _ = self._srv.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            cs.settimeout(None)
            with self._lock:
                self.accepted += 1
                if self._closed:
                    self._close_sock(cs)
                    break
                if self._cut:
                    entry = [cs, None, {"blackhole": True}]
                    self._conns.append(entry)
                    threading.Thread(target=self._pump, args=(entry, cs, None), daemon=True).start()
                    continue
            try:
                ss = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                ss.settimeout(None)
            except OSError:
                self._close_sock(cs)
                continue
            with self._lock:
                entry = [cs, ss, {"blackhole": self._cut}]
                self._conns.append(entry)
            threading.Thread(target=self._pump, args=(entry, cs, ss), daemon=True).start()
            threading.Thread(target=self._pump, args=(entry, ss, cs), daemon=True).start()

    def _pump(self, entry, src, dst):
        later = None
        if self.delay > 0 and dst is not None:
            later = queue.Queue()
            threading.Thread(target=self._send_later, args=(later, dst), daemon=True).start()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if entry[2]["blackhole"] or dst is None:
                    continue
                if later is not None:
                    later.put((time.monotonic() + self.delay, data))
                else:
                    dst.sendall(data)
        except OSError:
            pass
        if later is not None:
            later.put(None)
        with self._lock:
            if entry in self._conns:
                self._conns.remove(entry)
        self._close_sock(entry[0])
        self._close_sock(entry[1])

    @staticmethod
    def _send_later(later, dst):
        while True:
            item = later.get()
            if item is None:
                return
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                dst.sendall(data)
            except OSError:
                return

    def _drop_all(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for cs, ss, _ in conns:
            self._close_sock(cs)
            self._close_sock(ss)
        return len(conns)

    def cut(self, blackhole=False):
        with self._lock:
            self._cut = True
            if blackhole:
                for entry in self._conns:
                    entry[2]["blackhole"] = True
                n = len(self._conns)
        if not blackhole:
            n = self._drop_all()
        log(f"zk proxy {self.port}: cut ({'blackholed' if blackhole else 'closed'} {n} "
            f"connection(s); new ones are held silently)")

    def heal(self):
        with self._lock:
            self._cut = False
        n = self._drop_all()
        log(f"zk proxy {self.port}: healed (closed {n} held connection(s))")

    def close(self):
        self._closed = True
        try:
            self._srv.close()
        except OSError:
            pass
        self._drop_all()


def wall_ms():
    """Wall-clock time in ms, the clock of the workers' `at=` ownership fields."""
    return int(time.time() * 1000)


def fmt_ms(ms):
    """A wall-clock ms value as HH:MM:SS.mmm UTC (for messages)."""
    if ms is None:
        return "now"
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000)) + f".{int(ms) % 1000:03d}"


OWNERSHIP_RE = None  # compiled lazily by ownership_events()


def ownership_events(worker):
    """Every `ownership acquire|release` line of a worker's log (all its incarnations), as dicts
    {kind, task, partition, worker_id, at, idx, incarnation}, in log order."""
    import re
    global OWNERSHIP_RE
    if OWNERSHIP_RE is None:
        OWNERSHIP_RE = re.compile(r"ownership (acquire|release) task=(\S+) partition=(\S+) "
                                  r"worker=(\S+) at=(\d+)")
    events = []
    incarnation = 0
    try:
        with open(worker.logpath, errors="replace") as f:
            for line in f:
                if line.startswith("==== ") and " starting worker " in line:
                    incarnation += 1
                    continue
                m = OWNERSHIP_RE.search(line)
                if m:
                    events.append({"kind": m.group(1), "task": m.group(2), "partition": m.group(3),
                                   "worker_id": m.group(4), "at": int(m.group(5)),
                                   "idx": worker.idx, "incarnation": incarnation})
    except OSError:
        pass
    return events


def ownership_intervals(workers, kill_times=None):
    """Who wrote which partition when, from the workers' ownership log lines.

    Returns a list of dicts {partition, task, worker (e.g. "worker1 (127.0.0.1:4242)"), idx,
    start, end, how}: start is an acquire's `at=`, end the matching release's `at=` (how=
    "release"), or, for an acquire never released, the first time in kill_times[idx] at or after
    the acquire (how="kill": a kill -9 logs no release; record the kill time with wall_ms() right
    after the kill), or None (how="open": still owned, or the worker died unrecorded).
    kill_times maps a worker index to a wall-clock ms or a list of them."""
    kill_times = kill_times or {}
    out = []
    for w in workers:
        kills = kill_times.get(w.idx, [])
        kills = sorted(kills if isinstance(kills, (list, tuple)) else [kills])
        open_ = {}
        for ev in ownership_events(w):
            key = (ev["incarnation"], ev["task"], ev["partition"])
            if ev["kind"] == "acquire":
                if key in open_:     # acquired again without a release: close the first one here
                    iv = open_.pop(key)
                    iv["end"], iv["how"] = ev["at"], "re-acquire"
                iv = {"partition": ev["partition"], "task": ev["task"], "idx": w.idx,
                      "worker": f"worker{w.idx} ({ev['worker_id']})", "start": ev["at"],
                      "end": None, "how": "open", "incarnation": ev["incarnation"]}
                open_[key] = iv
                out.append(iv)
            elif key in open_:
                iv = open_.pop(key)
                iv["end"], iv["how"] = ev["at"], "release"
        for iv in open_.values():
            later = [k for k in kills if k >= iv["start"]]
            if later:
                iv["end"], iv["how"] = later[0], "kill"
    out.sort(key=lambda iv: (iv["partition"], iv["start"]))
    return out


def find_overlaps(intervals):
    """Pairs of intervals of the same partition held by different owners at the same time."""
    by_part = {}
    for iv in intervals:
        by_part.setdefault(iv["partition"], []).append(iv)
    bad = []
    inf = float("inf")
    for part, ivs in sorted(by_part.items()):
        ivs = sorted(ivs, key=lambda iv: iv["start"])
        for i, a in enumerate(ivs):
            a_end = inf if a["end"] is None else a["end"]
            for b in ivs[i + 1:]:
                if b["start"] >= a_end:
                    break
                if (a["idx"], a["incarnation"], a["task"]) == (b["idx"], b["incarnation"], b["task"]):
                    continue
                b_end = inf if b["end"] is None else b["end"]
                bad.append((part, a, b, min(a_end, b_end) - b["start"]))
    return bad


_HOW = {"release": "released", "kill": "killed", "open": "never released",
        "re-acquire": "acquired again without a release"}


def assert_no_overlap(intervals):
    """Fails if two owners (tasks on workers) held the same partition at the same time, naming
    the partition, both owners and the times."""
    bad = find_overlaps(intervals)
    if not bad:
        return
    lines = []
    for part, a, b, ms in bad:
        overlap = "until now" if ms == float("inf") else f"{ms:.0f} ms"
        lines.append(
            f"partition {part}: task {a['task']} on {a['worker']} owned it from "
            f"{fmt_ms(a['start'])} to {fmt_ms(a['end'])} ({_HOW[a['how']]}), but task {b['task']} "
            f"on {b['worker']} acquired it at {fmt_ms(b['start'])} (held to {fmt_ms(b['end'])}, "
            f"{_HOW[b['how']]}): overlap {overlap}")
    raise AssertionError(f"{len(bad)} ownership overlap(s):\n  " + "\n  ".join(lines))
