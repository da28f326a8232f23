#!/usr/bin/env python3
"""ferrycluster: start, stop, inspect and disturb a local ferry cluster (library + CLI).

A local cluster is one directory holding everything: a real ZooKeeper (standalone or a 3-node
ensemble), a source and a destination mock Kafka cluster (tests/fixtures/mockcluster), N
ferry-worker daemons, their configs, logs and data, and cluster.json, which records every
process started (pid and command) so that `stop` stops exactly those, by pid, from any shell.

With --netns each worker runs on its own "node": a Linux network namespace with its own
address on a bridge (10.77.N.0/24). Node i listens for REST on 10.77.N.(10+i):8083 as a real
node would; ZooKeeper listens on 10.77.N.2 and the Kafka mocks are reached through relays over
the node's veth link (tests/fixtures/relay: the mocks only bind 127.0.0.1). So a node can be
lost for real (`link-down`: its veth goes down) or cut from ZooKeeper alone (`partition`: a
blackhole route to 10.77.N.2 inside the node). Only loopback and these namespaces are used.

    deploy/ferry-cluster start  --dir D [--workers 3] [--zk-nodes 1|3] [--netns] [--topic connect:8]
    deploy/ferry-cluster status --dir D [--json]
    deploy/ferry-cluster stop   --dir D
    deploy/ferry-cluster kill|start-worker|term WORKER --dir D
    deploy/ferry-cluster partition|heal|link-down|link-up WORKER --dir D      (--netns clusters)
    deploy/ferry-cluster zk-stop|zk-start NODE --dir D
    deploy/ferry-cluster broker-down|broker-up src|dst BROKER_ID --dir D
    deploy/ferry-cluster env --dir D      (shell exports: FERRY_SRC, FERRY_DST, FERRY_REST, ...)

Binaries come from $FERRY_BUILD (default <repo>/build). Needs root for --netns.
"""
import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import ferrytest as ft  # noqa: E402

STATE_FILE = "cluster.json"
REST_PORT_NETNS = 8083


class ClusterError(Exception):
    """A request the cluster cannot carry out (bad worker index, no --netns, ...)."""


def run_ip(*args, ns=None, check=True):
    """Runs `ip [-n ns] args...`; raises ClusterError with ip's message on failure."""
    argv = ["ip"] + (["-n", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed: {r.stderr.strip()}")
    return r


# ------------------------------------------------------------------ processes by pid

def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class Proc:
    """A process this cluster started: pid plus a string its command line contains, so a pid
    reused by some other program is never signalled. While the starting Python process lives it
    also keeps the Popen object (to reap the child)."""

    def __init__(self, pid, match, popen=None):
        self.pid, self.match, self.popen = pid, match, popen

    def to_json(self):
        return {"pid": self.pid, "match": self.match}

    @classmethod
    def from_json(cls, d):
        return cls(d["pid"], d["match"]) if d else None

    def alive(self):
        if self.popen is not None:
            return self.popen.poll() is None
        st = _proc_state(self.pid)
        return st is not None and st != "Z" and self.match in _proc_cmdline(self.pid)

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """True once the process has exited (reaping it when it is our child)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen is not None:
                try:
                    self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
                    return True
                except subprocess.TimeoutExpired:
                    return False
            if not self.alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def returncode(self):
        return self.popen.returncode if self.popen is not None else None


def stop_procs(procs, grace=10.0, sig=signal.SIGTERM):
    """Signals every live process, waits up to `grace` s for all, SIGKILLs the rest."""
    live = [p for p in procs if p is not None and p.alive()]
    for p in live:
        p.signal(sig)
    deadline = time.monotonic() + grace
    for p in live:
        if not p.wait(max(0.0, deadline - time.monotonic())):
            p.signal(signal.SIGKILL)
            p.wait(5)


def spawn(argv, logpath, match, stdin=subprocess.DEVNULL, cwd=None, ns=None, marker=None):
    """Starts a detached process (own session, so it outlives this one) logging to logpath."""
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    with open(logpath, "ab") as logf:
        if marker:
            logf.write(f"==== {marker} ====\n".encode())
            logf.flush()
        p = subprocess.Popen(argv, stdin=stdin, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd,
                             start_new_session=True)
    return Proc(p.pid, match, p)


# ------------------------------------------------------------------ the cluster

class LocalCluster:
    """A local ferry cluster rooted at `dir`. Create with LocalCluster.create(...).start(), or
    LocalCluster.load(dir) for one started earlier (by this or another process)."""

    def __init__(self, dir, state):
        self.dir = os.path.abspath(dir)
        self.s = state
        self.procs = {}   # name -> Proc ("zk0", "src", "dst", "relay-host", "relay-w1", "w0", ...)
        for name, d in state.get("procs", {}).items():
            self.procs[name] = Proc.from_json(d)

    # ---- creation and persistence

    @classmethod
    def create(cls, dir, workers=3, zk_nodes=1, netns=False, brokers=3, topics=None,
               group="ferry-local", worker_props=None):
        dir = os.path.abspath(dir)
        if os.path.exists(os.path.join(dir, STATE_FILE)):
            old = cls.load(dir)
            if old.running():
                raise ClusterError(f"a cluster is already running in {dir} (stop it first)")
        if netns and os.geteuid() != 0:
            raise ClusterError("--netns needs root (ip netns, veth, bridge)")
        topics = {"connect": 8} if topics is None else dict(topics)
        state = {"workers": workers, "zk_nodes": zk_nodes, "netns": netns, "brokers": brokers,
                 "topics": topics, "group": group, "worker_props": dict(worker_props or {}),
                 "build": ft.build_dir(), "procs": {}}
        os.makedirs(dir, exist_ok=True)
        return cls(dir, state)

    @classmethod
    def load(cls, dir):
        path = os.path.join(os.path.abspath(dir), STATE_FILE)
        try:
            with open(path) as f:
                state = json.load(f)
        except OSError:
            raise ClusterError(f"no local cluster in {dir} ({path} not found)")
        os.environ.setdefault("FERRY_BUILD", state["build"])
        return cls(dir, state)

    def save(self):
        self.s["procs"] = {n: p.to_json() for n, p in self.procs.items() if p is not None}
        tmp = os.path.join(self.dir, STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.s, f, indent=2)
        os.replace(tmp, os.path.join(self.dir, STATE_FILE))

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def running(self):
        return any(p.alive() for p in self.procs.values() if p is not None)

    # ---- addresses

    @property
    def netns(self):
        return self.s["netns"]

    def ns(self, i):
        return f"ferry{self.s['net']}w{i}" if self.netns else None

    def veth(self, i):
        return f"fv{self.s['net']}w{i}"

    def node_addr(self, i):
        return f"10.77.{self.s['net']}.{10 + i}" if self.netns else "127.0.0.1"

    def worker_url(self, i):
        return self.s["worker_urls"][i]

    @property
    def urls(self):
        return list(self.s["worker_urls"])

    @property
    def src_bootstrap(self):
        return self.s["src_bootstrap"]

    @property
    def dst_bootstrap(self):
        return self.s["dst_bootstrap"]

    @property
    def zk_connect(self):
        return self.s["zk_connect"]

    def _check_worker(self, i):
        if not 0 <= i < self.s["workers"]:
            raise ClusterError(f"no worker {i} (this cluster has workers 0..{self.s['workers'] - 1})")

    # ---- start

    def start(self, ready_timeout=60):
        """Starts everything and waits until every worker answers GET /health with 200."""
        try:
            if self.netns:
                self._net_up()
            self._start_zk()
            self._start_mocks()
            if self.netns:
                self._start_relays()
            self.s["worker_urls"] = []
            for i in range(self.s["workers"]):
                self._write_worker_config(i)
            self.save()
            for i in range(self.s["workers"]):
                self.start_worker(i, wait=False)
            for i in range(self.s["workers"]):
                self.wait_worker(i, ready_timeout)
        except BaseException:
            self.save()
            self.stop()
            raise
        self.save()
        return self

    def _net_up(self):
        """A bridge with the host-side addresses (.1 Kafka relays, .2 ZooKeeper) and one
        namespace per worker, linked to the bridge by a veth pair."""
        for n in range(10, 250):
            if not os.path.exists(f"/sys/class/net/fbr{n}"):
                break
        else:
            raise ClusterError("no free bridge name fbr10..fbr249")
        self.s["net"] = n
        self.s["bridge"] = br = f"fbr{n}"
        self.save()
        run_ip("link", "add", br, "type", "bridge")
        run_ip("addr", "add", f"10.77.{n}.1/24", "dev", br)
        run_ip("addr", "add", f"10.77.{n}.2/24", "dev", br)
        run_ip("link", "set", br, "up")
        for i in range(self.s["workers"]):
            ns = self.ns(i)
            run_ip("netns", "add", ns)
            run_ip("link", "add", self.veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns)
            run_ip("link", "set", self.veth(i), "master", br, "up")
            run_ip("addr", "add", f"{self.node_addr(i)}/24", "dev", "eth0", ns=ns)
            run_ip("link", "set", "lo", "up", ns=ns)
            run_ip("link", "set", "eth0", "up", ns=ns)

    def _net_down(self):
        if "net" not in self.s:
            return
        for i in range(self.s["workers"]):
            run_ip("netns", "del", self.ns(i), check=False)
        run_ip("link", "del", self.s["bridge"], check=False)

    def _zk_host(self):
        return f"10.77.{self.s['net']}.2" if self.netns else "127.0.0.1"

    def _start_zk(self):
        n = self.s["zk_nodes"]
        ports = [ft.free_port() for _ in range(n)]
        peers = [(ft.free_port(), ft.free_port()) for _ in range(n)] if n > 1 else []
        self.s["zk_ports"] = ports
        self.s["zk_peers"] = peers
        self.s["zk_connect"] = ",".join(f"{self._zk_host()}:{p}" for p in ports)
        for i in range(n):
            d = self.path("zk", f"node{i}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "zoo.cfg"), "w") as f:
                f.write(ft.zk_node_config(d, self._zk_host(), ports[i], i + 1, peers))
        for i in range(n):
            self.zk_start(i, wait=False)
        for i in range(n):
            self.wait_zk(i)

    def zk_start(self, i, wait=True):
        if not 0 <= i < self.s["zk_nodes"]:
            raise ClusterError(f"no ZooKeeper node {i} (nodes 0..{self.s['zk_nodes'] - 1})")
        p = self.procs.get(f"zk{i}")
        if p is not None and p.alive():
            raise ClusterError(f"ZooKeeper node {i} is already running (pid {p.pid})")
        cfg = self.path("zk", f"node{i}", "zoo.cfg")
        self.procs[f"zk{i}"] = spawn(ft.zk_argv(cfg), self.path("zk", f"node{i}", "zk.log"), cfg)
        self.save()
        if wait:
            self.wait_zk(i)

    def wait_zk(self, i, timeout=60):
        def serving():
            if not self.procs[f"zk{i}"].alive():
                raise ClusterError(f"ZooKeeper node {i} exited:\n"
                                   f"{ft.tail(self.path('zk', f'node{i}', 'zk.log'))}")
            return ft.zk_mode(self._zk_host(), self.s["zk_ports"][i])
        ft.wait_until(serving, timeout, what=f"ZooKeeper node {i} to serve")

    def zk_stop(self, i):
        p = self.procs.get(f"zk{i}")
        if p is None or not p.alive():
            raise ClusterError(f"ZooKeeper node {i} is not running")
        stop_procs([p])

    def _start_mocks(self):
        topics = self.s["topics"]
        dst_topics = {**ft.STORAGE_TOPICS}
        for t, parts in topics.items():
            dst_topics[self.rename(t)] = parts
        for name, tp in (("src", topics), ("dst", dst_topics)):
            ctl = self.path(f"{name}.ctl")
            if os.path.exists(ctl):
                os.unlink(ctl)
            os.mkfifo(ctl)
            # The mock reads control lines from the fifo; holding it open for writing too means
            # it never sees EOF, whoever writes to it later.
            fd = os.open(ctl, os.O_RDWR)
            out = self.path(f"{name}.out")
            open(out, "w").close()
            argv = [ft.binary("mockcluster"), "--brokers", str(self.s["brokers"])]
            argv += [f"{t}:{p}" for t, p in tp.items()]
            with open(out, "ab") as outf, open(self.path(f"{name}.log"), "ab") as logf:
                p = subprocess.Popen(argv, stdin=fd, stdout=outf, stderr=logf,
                                     start_new_session=True)
            os.close(fd)
            self.procs[name] = Proc(p.pid, "mockcluster", p)
            self.s[f"{name}_bootstrap"] = ft.wait_until(
                lambda: self._first_line(out, name), 20, what=f"the {name} mock's bootstrap line")
        self.save()

    @staticmethod
    def rename(topic):
        return f"{topic}.replica"

    def _first_line(self, out, name):
        if not self.procs[name].alive():
            raise ClusterError(f"mock {name} exited:\n{ft.tail(self.path(name + '.log'))}")
        with open(out) as f:
            line = f.readline()
        return line.strip() if line.endswith("\n") else None

    def mock_command(self, name, line, timeout=10):
        """Sends one control line to mock `name` (src|dst) and returns its reply line."""
        if name not in ("src", "dst"):
            raise ClusterError(f"no mock cluster '{name}' (src or dst)")
        out = self.path(f"{name}.out")
        with open(self.path(f"{name}.ctl.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = os.path.getsize(out)
            fd = os.open(self.path(f"{name}.ctl"), os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, line.encode() + b"\n")
            finally:
                os.close(fd)

            def reply():
                with open(out) as f:
                    f.seek(before)
                    data = f.read()
                return data.split("\n", 1)[0] if "\n" in data else None
            return ft.wait_until(reply, timeout, interval=0.02, what=f"mock {name}: reply to {line}")

    def broker(self, name, broker_id, up):
        reply = self.mock_command(name, f"{'up' if up else 'down'} {broker_id}")
        if reply != "ok":
            raise ClusterError(f"mock {name}: {reply}")

    def broker_ports(self):
        ports = []
        for bs in (self.src_bootstrap, self.dst_bootstrap):
            ports += [int(hp.rsplit(":", 1)[1]) for hp in bs.split(",")]
        return ports

    def _start_relays(self):
        n = self.s["net"]
        ports = self.broker_ports()
        host = [f"10.77.{n}.1:{p}=127.0.0.1:{p}" for p in ports]
        self.procs["relay-host"] = self._relay(host, self.path("relay-host.log"), None)
        for i in range(self.s["workers"]):
            node = [f"127.0.0.1:{p}=10.77.{n}.1:{p}" for p in ports]
            self.procs[f"relay-w{i}"] = self._relay(node, self.path(f"relay-w{i}.log"), self.ns(i))
        self.save()

    def _relay(self, routes, logpath, ns):
        p = spawn([ft.binary("relay")] + routes, logpath, "relay", ns=ns)

        def ready():
            if not p.alive():
                raise ClusterError(f"relay exited:\n{ft.tail(logpath)}")
            return "ready" in ft.tail(logpath, 5)
        ft.wait_until(ready, 10, what=f"relay {logpath}")
        return p

    # ---- workers

    def _write_worker_config(self, i):
        host = self.node_addr(i)
        port = REST_PORT_NETNS if self.netns else ft.free_port()
        d = self.path(f"worker{i}")
        os.makedirs(d, exist_ok=True)
        props = ft.worker_properties(self.dst_bootstrap, self.zk_connect, host, port, self.s["group"])
        props.update({k: str(v) for k, v in self.s["worker_props"].items()})
        ft.write_properties(os.path.join(d, "connect-distributed.properties"), props,
                            f"written by deploy/ferry-cluster for worker {i}")
        self.s["worker_urls"].append(f"http://{host}:{port}")

    def worker_log(self, i):
        return self.path(f"worker{i}.log")

    def worker_proc(self, i):
        return self.procs.get(f"w{i}")

    def worker_alive(self, i):
        p = self.worker_proc(i)
        return p is not None and p.alive()

    def start_worker(self, i, wait=True, timeout=60):
        self._check_worker(i)
        if self.worker_alive(i):
            raise ClusterError(f"worker {i} is already running (pid {self.worker_proc(i).pid})")
        d = self.path(f"worker{i}")
        props = os.path.join(d, "connect-distributed.properties")
        self.procs[f"w{i}"] = spawn([ft.binary("ferry-worker"), props], self.worker_log(i), props,
                                    cwd=d, ns=self.ns(i),
                                    marker=f"ferry-cluster: starting worker {i} at {ft.wall_ms()}")
        self.save()
        if wait:
            self.wait_worker(i, timeout)

    def wait_worker(self, i, timeout=60):
        def ready():
            if not self.worker_alive(i):
                raise ClusterError(f"worker {i} exited before it was ready:\n"
                                   f"{ft.tail(self.worker_log(i))}")
            return ft.http("GET", self.worker_url(i) + "/health", timeout=2)[0] == 200
        ft.wait_until(ready, timeout, what=f"worker {i} at {self.worker_url(i)} to be ready")

    def kill_worker(self, i, sig=signal.SIGKILL, timeout=60):
        """Signals worker i and waits until it exits; returns its exit code when known."""
        self._check_worker(i)
        p = self.worker_proc(i)
        if p is None or not p.alive():
            raise ClusterError(f"worker {i} is not running")
        p.signal(sig)
        if not p.wait(timeout):
            p.signal(signal.SIGKILL)
            p.wait(5)
            raise ClusterError(f"worker {i} did not exit within {timeout} s of signal {sig}")
        return p.returncode()

    def root(self, i):
        """GET / of worker i (its id, whether it leads, the leader's URL, the generation)."""
        st, js, _, _ = ft.http("GET", self.worker_url(i) + "/", timeout=3)
        return js if st == 200 else None

    def leader(self):
        """Index of the live worker that says it leads, or None."""
        for i in range(self.s["workers"]):
            if self.worker_alive(i):
                try:
                    r = self.root(i)
                except OSError:
                    continue
                if r and r.get("leader"):
                    return i
        return None

    # ---- network faults (--netns only)

    def _need_netns(self, what):
        if not self.netns:
            raise ClusterError(f"{what} needs a cluster started with --netns")

    def partition(self, i, cut=True):
        """Silently drops the traffic of worker i's node to ZooKeeper, or heals it. The node's
        neighbour entry for ZooKeeper's address points at a MAC nobody has, so packets vanish
        on the bridge as on a broken network: connects hang and live sessions hear nothing
        (a blackhole route would fail sends locally at once, which real partitions do not do).
        Kafka and REST traffic of the node are untouched."""
        self._need_netns("partition")
        self._check_worker(i)
        if cut:
            run_ip("neigh", "replace", self._zk_host(), "lladdr", "02:00:00:00:00:99", "dev", "eth0",
                   "nud", "permanent", ns=self.ns(i))
        else:
            run_ip("neigh", "del", self._zk_host(), "dev", "eth0", ns=self.ns(i))

    def link(self, i, up):
        """Takes worker i's node off the network (its veth link down), or back."""
        self._need_netns("link-down/link-up")
        self._check_worker(i)
        run_ip("link", "set", self.veth(i), "up" if up else "down")

    # ---- stop and status

    def stop(self, grace=None):
        """Stops the workers first (gracefully, so they leave the group), then the relays,
        the mocks and ZooKeeper, by pid; removes the namespaces."""
        if grace is None:
            grace = float(self.s["worker_props"].get("task.shutdown.graceful.timeout.ms", 5000)) / 1000 + 10
        workers = [p for n, p in self.procs.items() if n.startswith("w")]
        stop_procs(workers, grace)
        stop_procs([p for n, p in self.procs.items() if not n.startswith("w")], 10)
        self._net_down()
        self.save()

    def status(self):
        """A dict describing every process and, for live workers, what their REST API says."""
        out = {"dir": self.dir, "netns": self.netns, "zookeeper": self.zk_connect,
               "src": self.s.get("src_bootstrap"), "dst": self.s.get("dst_bootstrap"),
               "processes": [], "workers": []}
        for name, p in sorted(self.procs.items()):
            out["processes"].append({"name": name, "pid": p.pid, "alive": p.alive()})
        for i in range(self.s["workers"]):
            w = {"worker": i, "url": self.worker_url(i), "alive": self.worker_alive(i),
                 "node": self.ns(i)}
            if w["alive"]:
                try:
                    r = self.root(i) or {}
                    w.update({"leader": r.get("leader"), "generation": r.get("generation")})
                    st, js, _, _ = ft.http("GET", self.worker_url(i) + "/connectors?expand=status",
                                           timeout=3)
                    if st == 200:
                        w["connectors"] = {
                            n: {"state": v["status"]["connector"]["state"],
                                "tasks": sorted({t["state"] for t in v["status"]["tasks"]})}
                            for n, v in js.items()}
                except OSError as e:
                    w["error"] = str(e)
            out["workers"].append(w)
        return out


# ------------------------------------------------------------------ CLI

def _topics(specs):
    out = {}
    for spec in specs or ["connect:8"]:
        name, _, parts = spec.rpartition(":")
        if not name or not parts.isdigit() or int(parts) < 1:
            raise ClusterError(f"--topic must be NAME:PARTITIONS, got {spec!r}")
        out[name] = int(parts)
    return out


def print_status(st):
    print(f"cluster {st['dir']}{' (network namespaces)' if st['netns'] else ''}")
    print(f"  zookeeper {st['zookeeper']}\n  source    {st['src']}\n  dest      {st['dst']}")
    for w in st["workers"]:
        if not w["alive"]:
            print(f"  worker {w['worker']}  {w['url']:28} DOWN")
            continue
        role = "leader" if w.get("leader") else "follower"
        conns = ", ".join(f"{n}={c['state']}/{'+'.join(c['tasks']) or 'no tasks'}"
                          for n, c in (w.get("connectors") or {}).items()) or "no connectors"
        print(f"  worker {w['worker']}  {w['url']:28} {role:8} gen {w.get('generation')}  {conns}"
              + (f"  ({w['error']})" if w.get("error") else ""))
    down = [p["name"] for p in st["processes"] if not p["alive"]]
    print(f"  processes: {len(st['processes']) - len(down)} running"
          + (f", stopped: {' '.join(down)}" if down else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ferry-cluster", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["start", "stop", "status", "env", "kill", "term",
                                        "start-worker", "partition", "heal", "link-down",
                                        "link-up", "zk-stop", "zk-start", "broker-down",
                                        "broker-up"])
    ap.add_argument("args", nargs="*", help="WORKER, NODE, or src|dst BROKER_ID")
    ap.add_argument("--dir", required=True, help="the cluster's directory (configs, logs, data)")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--zk-nodes", type=int, default=1, choices=[1, 3])
    ap.add_argument("--netns", action="store_true", help="one network namespace per worker")
    ap.add_argument("--brokers", type=int, default=3, help="brokers per mock Kafka cluster")
    ap.add_argument("--topic", action="append", help="source topic NAME:PARTITIONS (repeatable; "
                    "NAME.replica is pre-created on the destination); default connect:8")
    ap.add_argument("--worker-prop", action="append", default=[], metavar="KEY=VALUE",
                    help="extra worker property (repeatable)")
    ap.add_argument("--json", action="store_true", help="status as JSON")
    a = ap.parse_args(argv)

    def arg_int(k, what):
        try:
            return int(a.args[k])
        except (IndexError, ValueError):
            raise ClusterError(f"{a.command} needs {what}")

    try:
        if a.command == "start":
            props = dict(kv.split("=", 1) for kv in a.worker_prop if "=" in kv)
            c = LocalCluster.create(a.dir, a.workers, a.zk_nodes, a.netns, a.brokers,
                                    _topics(a.topic), worker_props=props).start()
            print_status(c.status())
            return 0
        c = LocalCluster.load(a.dir)
        if a.command == "stop":
            c.stop()
            print(f"stopped every process of {c.dir}")
        elif a.command == "status":
            st = c.status()
            print(json.dumps(st, indent=2) if a.json else "", end="\n" if a.json else "")
            if not a.json:
                print_status(st)
        elif a.command == "env":
            print(f"export FERRY_SRC={c.src_bootstrap}\nexport FERRY_DST={c.dst_bootstrap}\n"
                  f"export FERRY_ZK={c.zk_connect}\nexport FERRY_REST={c.worker_url(0)}")
        elif a.command in ("kill", "term"):
            sig = signal.SIGKILL if a.command == "kill" else signal.SIGTERM
            c.kill_worker(arg_int(0, "a worker index"), sig)
        elif a.command == "start-worker":
            c.start_worker(arg_int(0, "a worker index"))
        elif a.command in ("partition", "heal"):
            c.partition(arg_int(0, "a worker index"), cut=a.command == "partition")
        elif a.command in ("link-down", "link-up"):
            c.link(arg_int(0, "a worker index"), up=a.command == "link-up")
        elif a.command == "zk-stop":
            c.zk_stop(arg_int(0, "a ZooKeeper node index"))
        elif a.command == "zk-start":
            c.zk_start(arg_int(0, "a ZooKeeper node index"))
        elif a.command in ("broker-down", "broker-up"):
            if not a.args or a.args[0] not in ("src", "dst"):
                raise ClusterError(f"{a.command} needs src|dst and a broker id")
            c.broker(a.args[0], arg_int(1, "a broker id"), up=a.command == "broker-up")
        c.save()
        return 0
    except (ClusterError, AssertionError, FileNotFoundError) as e:
        print(f"ferry-cluster: {e}", file=sys.stderr)
        return 1 if not isinstance(e, ClusterError) else 2


if __name__ == "__main__":
    sys.exit(main())
