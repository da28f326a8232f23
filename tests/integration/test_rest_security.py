"""test_rest_security: the REST API over TLS and with HTTP basic authentication (rest/sec.c).

A CA and a server certificate for 127.0.0.1 are made with the openssl CLI in the cluster's
temp dir; the workers serve `listeners=https://127.0.0.1:PORT` with a PEM keystore
(listeners.https.ssl.*) and trust the CA for forwarding to the leader.

  1. TLS: GET / over HTTPS (the leader URL is https), plain HTTP to the TLS port gets no
     HTTP answer, a client that does not trust the CA is refused, and a connector created
     through the follower is forwarded to the leader over HTTPS and runs
  2. TLS + basic auth (BasicAuthSecurityRestExtension, credentials file): no credentials and
     a wrong password get 401 with Kafka Connect's JSON body and a WWW-Authenticate
     challenge, the right ones 200; connectors created through the follower (the client's
     Authorization header forwarded) get their tasks running, including a connector whose
     instance runs on the follower (its task configs go to the leader with the internal
     credential)
  3. start-up errors: a missing keystore file, a JKS keystore, a missing credentials file
     exit with code 2 and a one-line message naming the key

    FERRY_BUILD=/tmp/build-sec python3 tests/integration/test_rest_security.py -v
"""
import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (Cluster, Worker, binary, log, seed_connector, src_dir,  # noqa: E402
                       wait_until, write_properties)

os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(src_dir(), "tests", "lsan.supp"))

BASIC_AUTH = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """ca.pem, and keystore.pem (server certificate for 127.0.0.1, the CA, the key) in d."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=ferry test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    with open(os.path.join(d, "keystore.pem"), "w") as out:
        for name in ("server.pem", "ca.pem", "server.key"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return os.path.join(d, "ca.pem"), os.path.join(d, "keystore.pem")


def request(method, url, body=None, headers=None, ctx=None, timeout=30):
    """One HTTP(S) request: (status, parsed JSON or None, raw bytes, headers)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed, raw, resp.headers
    finally:
        conn.close()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class SecureCluster:
    """A Cluster with no harness-made workers, plus n workers on https listeners (started
    here, because the harness's workers listen on http and probe /health without credentials)."""

    def __init__(self, n, auth=False, extra=None):
        self.n, self.auth, self.extra = n, auth, dict(extra or {})
        self.cluster = Cluster(workers=0)

    def __enter__(self):
        c = self.cluster.__enter__()
        try:
            self.ca, self.keystore = make_certs(c.tmpdir)
            self.ctx = ssl.create_default_context(cafile=self.ca)
            self.headers = {}
            extra = {
                # with HTTPS on, ZooKeeper ACLs are on by default once credentials are given
                "zookeeper.digest.username": "ferry", "zookeeper.digest.password": "zk-s3cret",
                "listeners.https.ssl.keystore.type": "PEM",
                "listeners.https.ssl.keystore.location": self.keystore,
                "listeners.https.ssl.truststore.type": "PEM",
                "listeners.https.ssl.truststore.location": self.ca,
            }
            if self.auth:
                cred = os.path.join(c.tmpdir, "credentials.properties")
                with open(cred, "w") as f:
                    f.write("# JAAS PropertyFileLoginModule format\nconnect: s3cret-internal\n"
                            "alice: wonder:land\n")
                extra.update({"rest.extension.classes": BASIC_AUTH,
                              "rest.basic.auth.credentials.file": cred})
                self.headers = basic("alice", "wonder:land")
            extra.update(self.extra)
            for i in range(self.n):
                w = Worker(c.tmpdir, i, c.zk.connect, c.dst.bootstrap, group=c.group, extra=extra,
                           start=False)
                w.props["listeners"] = f"https://127.0.0.1:{w.port}"
                write_properties(w.props_path, w.props, f"written by test_rest_security, worker {i}")
                w.url = f"https://127.0.0.1:{w.port}"
                c.workers.append(w)
                w.start()
            for w in c.workers:
                self.wait_ready(w)
        except BaseException:
            c.close(failed=True)
            raise
        return self

    def __exit__(self, *exc):
        return self.cluster.__exit__(*exc)

    def get(self, w, path, **kw):
        return request("GET", w.url + path, ctx=self.ctx, headers=kw.pop("headers", self.headers), **kw)

    def post(self, w, path, body, **kw):
        return request("POST", w.url + path, body, ctx=self.ctx,
                       headers=kw.pop("headers", self.headers), **kw)

    def wait_ready(self, w, timeout=30):
        def ready():
            if not w.alive():
                raise AssertionError(f"worker {w.idx} exited: {w.log_tail()}")
            try:
                return self.get(w, "/health", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(ready, timeout, what=f"worker {w.idx} ready over https")

    def leader_and_follower(self):
        def roles():
            out = {}
            for w in self.cluster.workers:
                st, js, _, _ = self.get(w, "/")
                if st != 200 or js.get("leader_url") is None:
                    return None
                out[w.idx] = js
            return out if sum(1 for js in out.values() if js["leader"]) == 1 else None
        r = wait_until(roles, 30, what="one leader among the workers")
        ws = self.cluster.workers
        leader = next(w for w in ws if r[w.idx]["leader"])
        follower = next(w for w in ws if not r[w.idx]["leader"])
        return leader, follower, r

    def create(self, via, name, tasks=2, headers=None):
        body = seed_connector(self.cluster.src.bootstrap, name=name, **{"tasks.max": str(tasks)})
        h = self.headers if headers is None else headers

        def attempt():
            st, js, raw, _ = request("POST", via.url + "/connectors", body, ctx=self.ctx, headers=h)
            return (st, js, raw) if st != 409 else None
        return wait_until(attempt, 30, interval=0.3, what=f"POST /connectors {name} to stop answering 409")

    def wait_tasks_running(self, w, name, ntasks, timeout=60):
        def ok():
            st, js, _, _ = self.get(w, f"/connectors/{name}/status")
            if st != 200 or len(js.get("tasks", [])) != ntasks:
                return None
            states = [js["connector"]["state"]] + [t["state"] for t in js["tasks"]]
            return js if all(s == "RUNNING" for s in states) else None
        return wait_until(ok, timeout, interval=0.3, what=f"{name}: connector and {ntasks} tasks RUNNING")

    def assert_clean_stop(self, test):
        for w in self.cluster.workers:
            test.assertEqual(w.term(), 0, f"worker {w.idx} exit code")
            with open(w.logpath, errors="replace") as f:
                text = f.read()
            for mark in SANITIZER_MARKS:
                test.assertNotIn(mark, text, f"worker {w.idx}: sanitizer report")
            test.assertNotIn("s3cret-internal", text, f"worker {w.idx} logged a password")
            test.assertNotIn("wonder:land", text, f"worker {w.idx} logged a password")


class RestSecurityTest(unittest.TestCase):
    maxDiff = None

    def test_1_https(self):
        with SecureCluster(2) as sc:
            leader, follower, roles = sc.leader_and_follower()
            self.assertEqual(roles[follower.idx]["leader_url"], leader.url, roles)
            st, js, raw, _ = sc.get(follower, "/")
            self.assertEqual(st, 200, raw)
            # plain HTTP to the TLS port: no HTTP answer
            with self.assertRaises((OSError, http.client.HTTPException)):
                st, _, raw, _ = request("GET", f"http://127.0.0.1:{leader.port}/", timeout=5)
                log(f"plain HTTP to the TLS port answered {st} {raw!r}")
            # a client that does not trust the CA is refused
            with self.assertRaises(ssl.SSLError):
                request("GET", leader.url + "/", ctx=ssl.create_default_context())
            # a write through the follower reaches the leader over https
            st, js, raw = sc.create(follower, "tls-conn", tasks=2)
            self.assertEqual(st, 201, raw)
            self.assertEqual(js["name"], "tls-conn")
            st, js, raw, _ = sc.get(leader, "/connectors")
            self.assertIn("tls-conn", js, raw)
            sc.wait_tasks_running(follower, "tls-conn", 2)
            sc.assert_clean_stop(self)

    def test_2_basic_auth(self):
        with SecureCluster(2, auth=True) as sc:
            leader, follower, _ = sc.leader_and_follower()
            for w in (leader, follower):
                st, js, raw, hdrs = sc.get(w, "/connectors", headers={})
                self.assertEqual(st, 401, raw)
                self.assertEqual(js["error_code"], 401, raw)
                self.assertIsInstance(js["message"], str)
                self.assertEqual(hdrs["WWW-Authenticate"], 'Basic realm="KafkaConnect"')
                self.assertTrue(hdrs["Content-Type"].startswith("application/json"))
                st, js, raw, hdrs = sc.get(w, "/connectors", headers=basic("alice", "wrong"))
                self.assertEqual((st, js["error_code"]), (401, 401), raw)
                self.assertIn("WWW-Authenticate", hdrs)
                st, _, raw, _ = sc.get(w, "/connectors", headers=basic("nobody", "wonder:land"))
                self.assertEqual(st, 401, raw)
                st, _, raw, _ = sc.get(w, "/connectors", headers={"Authorization": "Basic !!!"})
                self.assertEqual(st, 401, raw)
                st, js, raw, _ = sc.get(w, "/connectors")
                self.assertEqual(st, 200, raw)
                st, _, raw, _ = sc.get(w, "/connectors", headers=basic("connect", "s3cret-internal"))
                self.assertEqual(st, 200, raw)
            # an unauthenticated write through the follower is refused there
            body = seed_connector(sc.cluster.src.bootstrap, name="nope")
            st, js, raw, _ = request("POST", follower.url + "/connectors", body, ctx=sc.ctx)
            self.assertEqual(st, 401, raw)
            # writes through the follower, forwarded with the client's header; with three
            # connectors on two workers, at least one instance runs on the follower, and its
            # task configs reach the leader with the internal credential
            names = ["auth-a", "auth-b", "auth-c"]
            for n in names:
                st, js, raw = sc.create(follower, n, tasks=2)
                self.assertEqual(st, 201, raw)
            placed = {}
            for n in names:
                js = sc.wait_tasks_running(follower, n, 2)
                placed[n] = js["connector"]["worker_id"]
            log(f"connector instances: {placed}")
            self.assertIn(f"127.0.0.1:{follower.port}", placed.values(),
                          "no connector instance ran on the follower, so its task configs were not sent")
            with open(follower.logpath, errors="replace") as f:
                self.assertNotIn("sending task configs", f.read())
            sc.assert_clean_stop(self)

    def test_3_startup_errors(self):
        d = tempfile.mkdtemp(prefix="ferry-sec-")
        ca, keystore = make_certs(d)
        base = {"bootstrap.servers": "127.0.0.1:1", "group.id": "g", "config.storage.topic": "c",
                "offset.storage.topic": "o", "status.storage.topic": "s",
                "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
                "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
                "zookeeper.connect": "127.0.0.1:1", "listeners": "https://127.0.0.1:0",
                "zookeeper.set.acl": "false"}
        cases = [
            ({"zookeeper.set.acl": None}, "zookeeper.set.acl"),
            ({"listeners": "http://127.0.0.1:0", "rest.extension.classes": BASIC_AUTH,
              "zookeeper.set.acl": None}, "zookeeper.set.acl"),
            ({"listeners.https.ssl.keystore.type": "PEM",
              "listeners.https.ssl.keystore.location": os.path.join(d, "missing.pem")},
             "listeners.https.ssl.keystore.location"),
            ({"ssl.keystore.type": "JKS", "ssl.keystore.location": keystore}, "ssl.keystore.type"),
            ({"listeners.https.ssl.keystore.location": ca}, "listeners.https.ssl.keystore.location"),
            ({}, "ssl.keystore.location"),
            ({"listeners": "http://127.0.0.1:0", "rest.extension.classes": BASIC_AUTH},
             "rest.basic.auth.credentials.file"),
            ({"listeners": "http://127.0.0.1:0", "rest.extension.classes": BASIC_AUTH,
              "rest.basic.auth.credentials.file": os.path.join(d, "none")},
             "rest.basic.auth.credentials.file"),
        ]
        for extra, key in cases:
            props = {k: v for k, v in {**base, **extra}.items() if v is not None}
            path = os.path.join(d, "w.properties")
            write_properties(path, props, "startup error case")
            for argv in ([binary("ferry-worker"), path], [binary("ferry-worker"), "--check", path]):
                p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
                self.assertEqual(p.returncode, 2, f"{extra}: {p.stderr}")
                self.assertEqual(len(lines), 1, f"{extra}: {p.stderr}")
                self.assertIn(key, lines[0], f"{extra}: {p.stderr}")
                log(f"{key}: {lines[0]}")
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
