"""test_security: security round 2. Every finding of the review is reproduced here with a
harmless payload, against workers started for the purpose, and asserted refused or survived.

  ConnectorConfigs (1 worker)
    a. connector configs cannot make librdkafka run a command (sasl.kerberos.kinit.cmd that
       would write a marker file), load a library (a test .so whose constructor writes a
       marker), read files (ssl.ca.location) or fetch URLs (token endpoint): validate, create
       and update answer 400 naming the key, under each of the four client prefixes, and a
       running connector keeps its config; no marker appears
    b. the same keys in a config and a task config written straight to the config topic (as
       an older version could have stored them): connector and task FAILED with the reason,
       no marker
    c. a stored config without connector.class: FAILED with a trace
    d. POST /connectors/{name}/tasks: unsigned 400, a wrong signature 403, and signed with the
       session key (read from the config topic as a worker reads it) but forged (2 tasks for
       tasks.max=1, partition 2147483647, a topic the connector does not select) 400
    e. forged task records written to the config topic (partition 2147483647, a rename onto
       the config topic, an unselected topic): the tasks are FAILED with a trace, the worker
       keeps serving and survives a restart
    f. garbage offset records written while the worker is down: the last valid offsets stay
       (a WARN names each), nothing is copied twice
    g. SIGSTOP/SIGCONT (epoll_wait's EINTR) does not stop the worker; SIGTERM still exits 0
  OverridePolicy: Kafka Connect's Principal policy with its messages, at validate and create
  Limits: ferry.max.connectors (400) and ferry.max.tasks.per.worker (the extra task FAILED)
  LeaderZnode (2 workers): a rewritten leader znode (the right member with another URL, or a
       member that does not lead) makes no follower forward there; the leader restores it
  DescriptorLimit: a worker at RLIMIT_NOFILE=256 flooded with connections answers 503, does not
       spin, and serves REST again once the flood is gone

    FERRY_BUILD=/tmp/build python3 tests/integration/test_security.py -v
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (Cluster, ClusterTestCase, Worker, _spawn, binary, consume, count, http,  # noqa: E402
                       log, produce, put_raw, seed_connector, wait_records, wait_until)

PREFIXES = ("src.kafka.", "src.consumer.", "dest.kafka.", "producer.override.")
UNREACHABLE = "127.0.0.1:1"   # a source nobody answers on: a connector that never makes task configs


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_marker_lib(d):
    """A shared library whose constructor creates d/loaded: proof of loading, harmless."""
    marker = os.path.join(d, "loaded")
    src = os.path.join(d, "marker.c")
    with open(src, "w") as f:
        f.write('#include <stdio.h>\n__attribute__((constructor)) static void m(void)'
                f' {{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n')
    so = os.path.join(d, "marker.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", so, src], check=True)
    return so, marker


def status(w, name):
    st, body, _, _ = http("GET", f"{w.url}/connectors/{name}/status")
    return body if st == 200 else None


def wait_failed(w, name, task=None, contains="", timeout=30):
    """The connector's (task=None) or a task's status once it is FAILED; its trace must contain
    `contains`."""
    def failed():
        s = status(w, name)
        if not s:
            return None
        ent = s["connector"] if task is None else next((t for t in s["tasks"] if t["id"] == task), None)
        return ent if ent and ent["state"] == "FAILED" else None
    ent = wait_until(failed, timeout, what=f"{name} {'task ' + str(task) if task is not None else ''} FAILED")
    assert contains in ent.get("trace", ""), f"trace of {name}: {ent.get('trace')!r} lacks {contains!r}"
    return ent


def session_key(bs, topic="connect-configs"):
    """The group's session key, read from the config topic as a worker reads it."""
    n = count(bs, topic)["total"]
    recs = consume(bs, topic, n, partition=0, offset="beginning")
    keys = [json.loads(r["value"]) for r in recs if r["key"] == "session-key" and r["value"]]
    assert keys, "no session key in the config topic"
    return base64.b64decode(keys[-1]["key"])


def signed_post(url, body_obj, key, alg="HmacSHA256"):
    body = json.dumps(body_obj).encode()
    sig = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode() if key else "AAAA"
    return http("POST", url, raw=body, headers={"Content-Type": "application/json",
                                                "X-Connect-Authorization": sig,
                                                "X-Connect-Request-Signature-Algorithm": alg})


def config_record(name, config):
    return (f"connector-{name}", json.dumps({"properties": {"name": name, **config}}))


def task_records(name, tasks):
    recs = [(f"task-{name}-{i}", json.dumps({"properties": t})) for i, t in enumerate(tasks)]
    return recs + [(f"commit-{name}", json.dumps({"tasks": len(tasks)}))]


class ConnectorConfigs(ClusterTestCase):
    cluster_args = dict(workers=1, src_topics={"connect": 8, "offs": 8},
                        dst_topics={"connect.replica": 8, "offs.replica": 8})

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lib, cls.marker = make_marker_lib(cls.cluster.tmpdir)
        cls.kinit_marker = os.path.join(cls.cluster.tmpdir, "kinit-ran")

    def dangerous(self, prefix):
        """(key, config fragment) pairs, each a finding of the review."""
        return [
            (prefix + "sasl.kerberos.kinit.cmd", {prefix + "security.protocol": "SASL_PLAINTEXT",
                                                  prefix + "sasl.mechanisms": "GSSAPI",
                                                  prefix + "sasl.kerberos.kinit.cmd": f"touch {self.kinit_marker}"}),
            (prefix + "plugin.library.paths", {prefix + "plugin.library.paths": self.lib}),
            (prefix + "ssl.engine.location", {prefix + "ssl.engine.location": self.lib}),
            (prefix + "ssl.ca.location", {prefix + "ssl.ca.location": "/etc/hostname"}),
            (prefix + "sasl.oauthbearer.token.endpoint.url",
             {prefix + "sasl.oauthbearer.token.endpoint.url": "http://127.0.0.1:1/token"}),
        ]

    def assert_no_marker(self):
        self.assertFalse(os.path.exists(self.marker), "a library named in a connector config was loaded")
        self.assertFalse(os.path.exists(self.kinit_marker), "a command from a connector config ran")

    def test_a_client_properties_refused(self):
        w = self.cluster.workers[0]
        victim = seed_connector(UNREACHABLE, name="victim")
        st, _, raw, _ = http("POST", w.url + "/connectors", victim)
        self.assertEqual(st, 201, raw)
        for prefix in PREFIXES:
            for key, frag in self.dangerous(prefix):
                cfg = seed_connector(UNREACHABLE, name="evil")["config"]
                cfg.update(frag)
                st, body, raw, _ = http("PUT", w.url + "/connector-plugins/EMRReplicatorSourceConnector/config/validate",
                                        {**cfg, "name": "evil"})
                self.assertEqual(st, 200, raw)
                errs = [e for c in body["configs"] if c["value"]["name"] == key for e in c["value"]["errors"]]
                self.assertGreater(body["error_count"], 0, key)
                self.assertTrue(errs, f"validate lists no error for {key}: {raw[:500]}")
                st, body, raw, _ = http("POST", w.url + "/connectors", {"name": "evil", "config": cfg})
                self.assertEqual(st, 400, f"{key}: {raw[:300]}")
                self.assertIn(key, body["message"])
                self.assertEqual(http("GET", w.url + "/connectors/evil")[0], 404)
                st, body, raw, _ = http("PUT", w.url + "/connectors/victim/config",
                                        {**victim["config"], **frag})
                self.assertEqual(st, 400, f"update with {key}: {raw[:300]}")
                self.assertIn(key, body["message"])
        st, cfg, _, _ = http("GET", w.url + "/connectors/victim/config")
        self.assertEqual(cfg, {**victim["config"], "name": "victim"})
        self.assert_no_marker()

    def test_b_stored_dangerous_config_fails(self):
        c, w = self.cluster, self.cluster.workers[0]
        cfg = seed_connector(UNREACHABLE, name="stored")["config"]
        cfg.update({"src.kafka.plugin.library.paths": self.lib,
                    "src.kafka.sasl.kerberos.kinit.cmd": f"touch {self.kinit_marker}",
                    "src.kafka.security.protocol": "SASL_PLAINTEXT", "src.kafka.sasl.mechanisms": "GSSAPI"})
        task = {**cfg, "name": "stored", "task.class": "EMRReplicatorSourceTask", "task.partitions": "connect:0"}
        put_raw(c.dst.bootstrap, "connect-configs", [config_record("stored", cfg)] + task_records("stored", [task]))
        wait_failed(w, "stored", contains="src.kafka.plugin.library.paths")
        wait_failed(w, "stored", task=0, contains="src.kafka.sasl.kerberos.kinit.cmd")
        self.assert_no_marker()
        self.assertEqual(http("DELETE", w.url + "/connectors/stored")[0], 204)

    def test_c_stored_config_without_class_fails(self):
        c, w = self.cluster, self.cluster.workers[0]
        cfg = seed_connector(UNREACHABLE, name="noclass", **{"connector.class": None})["config"]
        put_raw(c.dst.bootstrap, "connect-configs", [config_record("noclass", cfg)])
        wait_failed(w, "noclass", contains='Missing required configuration "connector.class"')
        self.assertEqual(http("GET", w.url + "/health")[0], 200)

    def test_d_task_config_endpoint(self):
        c, w = self.cluster, self.cluster.workers[0]
        cfg = seed_connector(UNREACHABLE, name="sig")["config"]
        self.assertEqual(http("POST", w.url + "/connectors", {"name": "sig", "config": cfg})[0], 201)
        full = {**cfg, "name": "sig"}
        good = [{**full, "task.class": "EMRReplicatorSourceTask", "task.partitions": "connect:0"}]
        url = w.url + "/connectors/sig/tasks?forward=true"
        st, body, raw, _ = http("POST", url, good)
        self.assertEqual(st, 400, raw)
        self.assertEqual(body["message"], "Internal request missing required signature")
        st, body, raw, _ = signed_post(url, good, b"not the key")
        self.assertEqual(st, 403, raw)
        self.assertEqual(body["message"], "Internal request contained invalid signature.")
        key = session_key(c.dst.bootstrap)
        forged = {
            "two tasks for tasks.max=1": good + [dict(good[0], **{"task.partitions": "connect:1"})],
            "partition 2147483647": [dict(good[0], **{"task.partitions": "connect:2147483647"})],
            "unselected topic": [dict(good[0], **{"task.partitions": "secret:0"})],
            "other config": [dict(good[0], **{"topic.rename.format": "connect-configs"})],
        }
        for what, body_obj in forged.items():
            st, body, raw, _ = signed_post(url, body_obj, key)
            self.assertEqual(st, 400, f"{what}: {raw[:300]}")
            self.assertIn("Invalid task configs", body["message"], what)
        st, _, raw, _ = signed_post(url, good, key)   # what a worker would send: accepted
        self.assertEqual(st, 204, raw)
        wait_until(lambda: len(http("GET", w.url + "/connectors/sig/tasks")[1] or []) == 1, 30,
                   what="the signed task config stored")

    def test_e_forged_task_records_survived(self):
        c, w = self.cluster, self.cluster.workers[0]
        cfg = seed_connector(UNREACHABLE, name="forged", **{"tasks.max": "3"})["config"]
        base = {**cfg, "name": "forged", "task.class": "EMRReplicatorSourceTask"}
        tasks = [dict(base, **{"task.partitions": "connect:2147483647"}),
                 dict(base, **{"task.partitions": "connect:0", "topic.rename.format": "connect-configs"}),
                 dict(base, **{"task.partitions": "secret:0"})]
        put_raw(c.dst.bootstrap, "connect-configs", [config_record("forged", cfg)] + task_records("forged", tasks))
        for attempt in range(2):
            wait_failed(w, "forged", task=0, contains="task.partitions")
            wait_failed(w, "forged", task=1, contains="config.storage.topic")
            wait_failed(w, "forged", task=2, contains="not selected")
            self.assertEqual(http("GET", w.url + "/health")[0], 200)
            if attempt == 0:
                self.assertEqual(w.term(), 0)   # the records stay in the config topic
                w.start()
                w.wait_ready()
        self.assertTrue(w.alive())

    def test_f_garbage_offsets_keep_last_valid(self):
        c, w = self.cluster, self.cluster.workers[0]
        body = seed_connector(c.src.bootstrap, name="offs", topic="offs", rename="offs.replica")
        produce(c.src.bootstrap, "offs", 400)
        self.assertEqual(http("POST", w.url + "/connectors", body)[0], 201)
        self.assertTrue(wait_records(c.dst.bootstrap, "offs.replica", 400))

        def stored_total():
            st, b, _, _ = http("GET", w.url + "/connectors/offs/offsets")
            return sum(e["offset"]["offset"] for e in b["offsets"]) if st == 200 else -1
        wait_until(lambda: stored_total() == 400, 30, what="offsets of 400 records stored")
        self.assertEqual(w.term(), 0)
        garbage = ['{"offset":"abc"}', '{"offset":-5}', '{"offset":null}', '[1,2]']
        put_raw(c.dst.bootstrap, "connect-offsets",
                [(json.dumps(["offs", {"topic": "offs", "partition": p}], separators=(",", ":")), garbage[p % 4])
                 for p in range(8)])
        w.start()
        w.wait_ready()
        produce(c.src.bootstrap, "offs", 100, start=400)
        wait_until(lambda: stored_total() == 500, 60, what="offsets of 500 records stored")
        self.assertEqual(count(c.dst.bootstrap, "offs.replica")["total"], 500, "records copied twice")
        with open(w.logpath, errors="replace") as f:
            warns = [ln for ln in f if "ignoring an invalid stored offset" in ln and "connector offs" in ln]
        self.assertEqual(len(warns), 8, warns)
        self.assertTrue(all("offs[" in ln and "keeping offset" in ln for ln in warns), warns)

    def test_g_stop_and_continue(self):
        w = self.cluster.workers[0]
        for _ in range(3):
            os.kill(w.pid, signal.SIGSTOP)
            os.kill(w.pid, signal.SIGCONT)
            self.assertEqual(http("GET", w.url + "/health")[0], 200)
        self.assertTrue(w.alive(), "the worker ended after SIGSTOP/SIGCONT")
        self.assertEqual(w.term(), 0)


class OverridePolicy(ClusterTestCase):
    cluster_args = dict(workers=1, worker_extra={"connector.client.config.override.policy": "Principal"})

    def test_principal(self):
        w = self.cluster.workers[0]
        cfg = seed_connector(UNREACHABLE, name="p")["config"]
        cfg.update({"producer.override.linger.ms": "20", "src.kafka.sasl.username": "alice",
                    "src.kafka.sasl.password": "pw", "src.kafka.security.protocol": "SASL_PLAINTEXT",
                    "src.kafka.sasl.mechanisms": "PLAIN"})
        st, body, raw, _ = http("PUT", w.url + "/connector-plugins/EMRReplicatorSourceConnector/config/validate",
                                {**cfg, "name": "p"})
        self.assertEqual(st, 200, raw)
        by_key = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"]}
        self.assertEqual(by_key["producer.override.linger.ms"],
                         ["The 'Principal' policy does not allow 'linger.ms' to be overridden in the connector "
                          "configuration."])
        for k in ("src.kafka.sasl.username", "src.kafka.sasl.password", "src.kafka.security.protocol"):
            self.assertEqual(by_key[k], [], k)
        pw = next(c for c in body["configs"] if c["value"]["name"] == "src.kafka.sasl.password")
        self.assertEqual(pw["value"]["value"], "[hidden]")
        self.assertEqual(body["error_count"], 1)
        st, body, raw, _ = http("POST", w.url + "/connectors", {"name": "p", "config": cfg})
        self.assertEqual(st, 400, raw)
        self.assertIn("The 'Principal' policy does not allow 'linger.ms'", body["message"])
        del cfg["producer.override.linger.ms"]
        self.assertEqual(http("POST", w.url + "/connectors", {"name": "p", "config": cfg})[0], 201)


class Limits(ClusterTestCase):
    cluster_args = dict(workers=1, worker_extra={"ferry.max.connectors": "2", "ferry.max.tasks.per.worker": "2"})

    def test_limits(self):
        c, w = self.cluster, self.cluster.workers[0]
        produce(c.src.bootstrap, "connect", 100)
        st, _, raw, _ = http("POST", w.url + "/connectors", seed_connector(c.src.bootstrap, **{"tasks.max": "3"}))
        self.assertEqual(st, 201, raw)
        self.assertEqual(http("POST", w.url + "/connectors", seed_connector(UNREACHABLE, name="two"))[0], 201)
        st, body, raw, _ = http("POST", w.url + "/connectors", seed_connector(UNREACHABLE, name="three"))
        self.assertEqual(st, 400, raw)
        self.assertIn("ferry.max.connectors", body["message"])

        def tasks_settled():
            s = status(w, "connect-test")
            states = sorted(t["state"] for t in s["tasks"]) if s else []
            return s if states == ["FAILED", "RUNNING", "RUNNING"] else None
        s = wait_until(tasks_settled, 30, what="2 tasks running, the third refused")
        failed = next(t for t in s["tasks"] if t["state"] == "FAILED")
        self.assertIn("ferry.max.tasks.per.worker", failed["trace"])


def msgpack_leader(member, rest_url, generation):
    """proto.c's leader znode (msgpack map: magic, v, type, member, rest_url, generation)."""
    def s(x):
        b = x.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
    return (bytes([0x86]) + s("magic") + s("FRY1") + s("v") + b"\x01" + s("type") + b"\x02" + s("member") +
            s(member) + s("rest_url") + s(rest_url) + s("generation") + bytes([generation]))


class LeaderZnode(ClusterTestCase):
    cluster_args = dict(workers=2)

    def zktool(self, *args):
        r = subprocess.run([binary("zktool"), self.cluster.zk.connect, *args], capture_output=True, text=True,
                           timeout=30)
        return r.returncode, r.stdout

    def test_rewritten_leader_znode(self):
        c = self.cluster
        roles = {w.idx: http("GET", w.url + "/")[1]["leader"] for w in c.workers}
        leader = next(w for w in c.workers if roles[w.idx])
        follower = next(w for w in c.workers if not roles[w.idx])
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        srv.settimeout(0.2)
        hits = []
        stop = threading.Event()

        def attacker():
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                    hits.append(conn.recv(4096))
                    conn.close()
                except OSError:
                    pass
        t = threading.Thread(target=attacker, daemon=True)
        t.start()
        evil = f"http://127.0.0.1:{srv.getsockname()[1]}"
        rc, out = self.zktool("ls", "/ferry/ferry-it/members")
        self.assertEqual(rc, 0, out)
        lowest = out.split()[0]
        try:
            for i, member in enumerate((lowest, "m-9999999999")):
                rc, out = self.zktool("set", "/ferry/ferry-it/leader", msgpack_leader(member, evil, 99).hex(), "--hex")
                self.assertEqual(rc, 0, out)
                name = f"through-follower-{i}"

                def created():
                    st, _, _, _ = http("POST", follower.url + "/connectors", seed_connector(UNREACHABLE, name=name))
                    return st == 201
                wait_until(created, 30, what=f"{name} created through the follower")
        finally:
            stop.set()
            t.join()
            srv.close()
        self.assertEqual(hits, [], "a follower forwarded a request to the URL of a rewritten leader znode")
        with open(leader.logpath, errors="replace") as f:
            self.assertIn("publishing this leader again", f.read())


class DescriptorLimit(unittest.TestCase):
    def test_flood(self):
        with Cluster(workers=0) as c:
            w = Worker(c.tmpdir, 0, c.zk.connect, c.dst.bootstrap, group=c.group, start=False)
            c.workers.append(w)
            with open(w.logpath, "ab") as logf:
                w.proc = _spawn(["bash", "-c", 'ulimit -n 256 && exec "$0" "$1"', binary("ferry-worker"), w.props_path],
                                cwd=w.dir, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
            w.procs.append(w.proc)
            w.wait_ready()
            socks = []
            try:
                for _ in range(320):
                    s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
                    socks.append(s)
                refused = 0
                for s in socks:
                    s.settimeout(0.05)
                    try:
                        data = s.recv(4096)
                    except socket.timeout:
                        continue
                    if data.startswith(b"HTTP/1.1 503") and b'"error_code":503' in data:
                        refused += 1
                self.assertGreater(refused, 0, "no connection was answered 503")
                before = cpu_s(w.pid)
                time.sleep(2.0)   # a window to measure CPU in, with the flood still open
                spent = cpu_s(w.pid) - before
                self.assertLess(spent, 0.5, f"the worker used {spent:.2f} CPU s in 2 s: it spins")
            finally:
                for s in socks:
                    s.close()
            wait_until(lambda: http("GET", w.url + "/health", timeout=5)[0] == 200, 30,
                       what="REST answering after the flood")
            with open(w.logpath, errors="replace") as f:
                logtext = f.read()
            self.assertIn("refusing REST connections (503)", logtext)
            self.assertLessEqual(logtext.count("refusing REST connections (503)"), 2, "logged more than once")
            self.assertEqual(w.term(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
