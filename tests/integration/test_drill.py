"""The operator tools of deploy/: the local cluster launcher (deploy/ferry-cluster) and the
failover drill (deploy/drill), run as an operator would run them, as separate processes.

- the launcher starts a cluster with one network namespace per worker, shows its status,
  carries out each fault (kill, partition from ZooKeeper, link down, broker outage) and stops
  every process it started, by pid, removing the namespaces;
- a short drill: 200,000 records while killing 3 workers (one of them the leader) and
  partitioning one node from ZooKeeper, with 0 records lost, 0 reordered and 0 duplicated
  (tasks resume after the last source offset found at the destination);
- the drill's verdict logic fails on loss, reordering, mismatches and overlaps.
"""
import importlib.machinery
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
import unittest

from ferrytest import (build_dir, compare, free_port, http, log, produce, seed_connector, src_dir,
                       wait_until)

DEPLOY = os.path.join(src_dir(), "deploy")
SESSION_S = 6


def run(argv, timeout=600):
    """Runs a deploy/ tool; returns (exit code, stdout, stderr)."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, text=True)
    log(f"{' '.join(os.path.basename(x) if i == 0 else x for i, x in enumerate(argv))} -> "
        f"rc {r.returncode}")
    return r.returncode, r.stdout, r.stderr


def cluster_cli(*args):
    return run([os.path.join(DEPLOY, "ferry-cluster")] + [str(a) for a in args])


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def netns_list():
    return subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout


def load_drill():
    loader = importlib.machinery.SourceFileLoader("drill", os.path.join(DEPLOY, "drill"))
    mod = types.ModuleType(loader.name)
    mod.__file__ = loader.path
    loader.exec_module(mod)
    return mod


class LauncherTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "these tests need root for network namespaces")
        self.dir = tempfile.mkdtemp(prefix="ferry-launcher-")
        self.addCleanup(lambda: cluster_cli("stop", "--dir", self.dir))

    def status(self):
        rc, out, err = cluster_cli("status", "--dir", self.dir, "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def worker_log(self, i):
        with open(os.path.join(self.dir, f"worker{i}.log"), errors="replace") as f:
            return f.read()

    def test_a_launcher_nodes_faults_and_stop(self):
        rc, out, err = cluster_cli("start", "--dir", self.dir, "--workers", 3, "--netns",
                                   "--topic", "connect:8")
        self.assertEqual(rc, 0, err + out)
        st = self.status()
        self.assertTrue(all(p["alive"] for p in st["processes"]), st["processes"])
        urls = [w["url"] for w in st["workers"]]
        self.assertEqual(len({re.match(r"http://(10\.77\.\d+\.\d+):8083$", u).group(1)
                              for u in urls}), 3, urls)          # three nodes, three addresses
        self.assertEqual(sum(1 for w in st["workers"] if w["leader"]), 1, st["workers"])
        for w in st["workers"]:
            self.assertIn(w["node"], netns_list())
        with open(os.path.join(self.dir, "cluster.json")) as f:
            state = json.load(f)

        # a copy through the nodes: Kafka traffic crosses the relays and veth links
        produce(st["src"], "connect", 20000)
        reply = http("POST", urls[1] + "/connectors",
                     seed_connector(st["src"], **{"tasks.max": "3"}))
        self.assertEqual(reply[0], 201, reply[2])
        wait_until(lambda: compare(st["src"], "connect", st["dst"], "connect.replica")["missing"] == 0,
                   60, interval=1, what="the copy through the nodes")

        # kill -9 and restart by index
        rc, _, err = cluster_cli("kill", 2, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        self.assertFalse(self.status()["workers"][2]["alive"])
        rc, _, err = cluster_cli("start-worker", 2, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.status()["workers"][2]["alive"])

        # a ZooKeeper partition of node 0: it loses its session and fences; healed, it rejoins
        before = self.worker_log(0).count("stopping all tasks so no other worker")
        rc, _, err = cluster_cli("partition", 0, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        wait_until(lambda: self.worker_log(0).count("stopping all tasks so no other worker") > before, SESSION_S + 10,
                   what="worker 0 to fence itself while cut from ZooKeeper")
        self.assertEqual(http("GET", urls[0] + "/health", timeout=5)[0] in (200, 503), True,
                         "REST of a node cut only from ZooKeeper must still answer")
        rc, _, err = cluster_cli("heal", 0, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        wait_until(lambda: http("GET", urls[0] + "/health", timeout=2)[0] == 200, 30,
                   what="worker 0 to rejoin after the heal")

        # link down: the node is unreachable (REST times out); link up: reachable again
        rc, _, err = cluster_cli("link-down", 1, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        with self.assertRaises(OSError):
            http("GET", urls[1] + "/", timeout=2)
        rc, _, err = cluster_cli("link-up", 1, "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        wait_until(lambda: http("GET", urls[1] + "/health", timeout=2)[0] == 200, 30,
                   what="worker 1 back after link-up")

        # broker outage through the mock's control fifo; a bad broker id is refused
        for cmd in ("broker-down", "broker-up"):
            rc, _, err = cluster_cli(cmd, "src", 1, "--dir", self.dir)
            self.assertEqual(rc, 0, err)
        rc, _, err = cluster_cli("broker-down", "src", 9, "--dir", self.dir)
        self.assertEqual(rc, 2)
        self.assertIn("mock src", err)

        # stop: every pid it recorded is gone, the namespaces and the bridge too
        rc, _, err = cluster_cli("stop", "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.dir, "cluster.json")) as f:
            pids = [p["pid"] for p in json.load(f)["procs"].values()]
        self.assertGreaterEqual(len(pids), 3 + 3 + 2 + 1)   # workers, node relays, mocks, zk
        self.assertEqual([p for p in pids if pid_alive(p)], [])
        self.assertEqual([w["node"] for w in st["workers"] if w["node"] in netns_list()], [])
        self.assertFalse(os.path.exists(f"/sys/class/net/{state['bridge']}"))

    def test_b_bad_usage(self):
        rc, _, err = cluster_cli("status", "--dir", os.path.join(self.dir, "nothing-here"))
        self.assertEqual(rc, 2)
        self.assertIn("no local cluster", err)
        rc, _, err = run([os.path.join(DEPLOY, "drill"), "--partition"])
        self.assertEqual(rc, 2)
        self.assertIn("--partition needs --netns", err)


    def test_c_install_and_run_the_default_config(self):
        """deploy/install.sh lays out the service files; the installed binary runs the installed
        default config once the addresses point at a cluster, and stops cleanly on SIGTERM
        (what systemctl stop sends)."""
        root = os.path.join(self.dir, "root")
        rc, out, err = run([os.path.join(DEPLOY, "install.sh"), build_dir(), "--root", root])
        self.assertEqual(rc, 0, err)
        for f in ("usr/bin/ferry-worker", "etc/ferry/connect-distributed.properties",
                  "etc/systemd/system/ferry.service"):
            self.assertTrue(os.path.isfile(os.path.join(root, f)), f)
        with open(os.path.join(root, "etc/systemd/system/ferry.service")) as f:
            self.assertIn("ExecStart=/usr/bin/ferry-worker /etc/ferry/connect-distributed.properties",
                          f.read())
        rc, out, err = run([os.path.join(DEPLOY, "install.sh"), build_dir(), "--root", root])
        self.assertIn("keeping the existing", out)          # a second install keeps the config

        rc, out, err = cluster_cli("start", "--dir", self.dir, "--workers", 0)
        self.assertEqual(rc, 0, err)
        st = self.status()
        port = free_port()
        cfg = os.path.join(self.dir, "etc-ferry.properties")
        with open(os.path.join(root, "etc/ferry/connect-distributed.properties")) as f:
            text = f.read()
        for key, value in (("bootstrap.servers", st["dst"]), ("zookeeper.connect", st["zookeeper"]),
                           ("listeners", f"http://127.0.0.1:{port}")):
            text, n = re.subn(rf"(?m)^{re.escape(key)}=.*$", f"{key}={value}", text)
            self.assertEqual(n, 1, key)
        with open(cfg, "w") as f:
            f.write(text)
        with open(os.path.join(self.dir, "installed.log"), "wb") as logf:
            p = subprocess.Popen([os.path.join(root, "usr/bin/ferry-worker"), cfg],
                                 stdout=logf, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200,
                       30, what="the installed worker to be ready")
        finally:
            p.terminate()
            rc = p.wait(timeout=20)
        self.assertEqual(rc, 0)

class DrillTest(unittest.TestCase):
    def test_a_short_drill(self):
        """200,000 records, 3 kills (one of the leader), one node partitioned from ZooKeeper:
        every record exactly once."""
        with tempfile.TemporaryDirectory(prefix="ferry-drill-report-") as d:
            report = os.path.join(d, "report.json")
            t0 = time.monotonic()
            rc, out, err = run([os.path.join(DEPLOY, "drill"), "--records", "200000",
                                "--kills", "3", "--kill-leader", "--partition", "--netns",
                                "--every", "6", "--no-duplicates", "--json", report], timeout=900)
            print(out, file=sys.stderr)
            self.assertEqual(rc, 0, f"drill failed:\n{out}\n{err}")
            with open(report) as f:
                r = json.load(f)
        log(f"short drill: {time.monotonic() - t0:.0f} s, lost {r['lost']}, reordered "
            f"{r['order_violations']}, duplicates {r['duplicates']}, failover {r['failover_s']}, "
            f"rebalances {r['rebalances']}")
        self.assertEqual((r["source"], r["lost"], r["order_violations"], r["mismatched"],
                          r["ownership_overlaps"], r["duplicates"]), (200000, 0, 0, 0, 0, 0), r)
        whats = [f["what"] for f in r["faults"]]
        self.assertEqual(sum(w.startswith("kill -9") for w in whats), 3, whats)
        self.assertEqual(sum("(the leader)" in w for w in whats), 1, whats)
        self.assertEqual(sum(w.startswith("partition") for w in whats), 1, whats)
        self.assertEqual(r["failover_s"]["kills"], 3, r["failover_s"])
        self.assertGreater(r["rebalances"], 0)
        self.assertIn("RESULT: PASS", out)

    def test_b_verdict(self):
        """The drill's exit code: 1 on loss, reordering, mismatches, overlaps, and on
        duplicates only with --no-duplicates."""
        drill = load_drill()

        class NoTarget:
            urls = []
            kill_times = {}

            def logs(self):
                return []

            def alive(self, i):
                return False

        base = {"source": 10, "dest": 10, "missing": 0, "duplicates": 0, "reordered": 0,
                "mismatched": 0, "per_partition": [[0, 10, 10, 0, 0, 0, 0]]}
        for change, no_dups, verdict in (({}, False, 0), ({"missing": 1}, False, 1),
                                         ({"reordered": 2}, False, 1), ({"mismatched": 1}, False, 1),
                                         ({"duplicates": 3}, False, 0), ({"duplicates": 3}, True, 1)):
            a = drill.parse_args(["--records", "10"] + (["--no-duplicates"] if no_dups else []))
            d = drill.Drill(a, NoTarget())
            d.t0 = time.monotonic()
            d.finish({**base, **change}, None)
            self.assertEqual(d.verdict, verdict, f"{change} no_duplicates={no_dups}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
