"""Drop-in on a real node (issue 18), with real processes:

- `--check` and start-up agree: for a table of broken worker files both exit 2 with the same
  one-line message (Java JAAS and keystores, an invalid client setting, typos, a missing
  bootstrap.servers, a chroot in the middle, a config-provider placeholder, a log level);
- `--check --as USER` reads the named files as that user, and knows what the unit hides;
- sasl.jaas.config in every layer is translated (shown by --check, secrets hidden) and does not
  stop a worker; in a connector config it is applied (the task copies) or refused with a reason;
- misspelt connector keys and Kafka Connect keys ferry does not support are refused over REST;
- journald: with JOURNAL_STREAM naming stderr every line carries a syslog priority, and
  ferry.log.level sets the start-up levels;
- Type=notify: READY=1 once /health is 200, WATCHDOG=1 periodically, STOPPING=1 on SIGTERM,
  read from a NOTIFY_SOCKET this test binds (systemd does not run here);
- the coexistence check warns against the mock cluster, which cannot list groups;
- deploy/ferry.service is rated <= 2.5 by `systemd-analyze security`; install.sh --no-start
  neither enables nor starts; --version and GET / name the emulated Kafka Connect REST version.
Every wait is for a condition (a log line, a status, a datagram), never a fixed time.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from ferrytest import (BYTES_CONVERTER, Cluster, binary, build_dir, http, log, produce,
                       seed_connector, src_dir, wait_records, wait_until, write_properties)

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTH = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
SECRET = "Sx9-do-not-show"
REST_VERSION = "3.9.0"

BASE = {
    "bootstrap.servers": "127.0.0.1:1",
    "group.id": "connect-cluster",
    "config.storage.topic": "connect-configs",
    "offset.storage.topic": "connect-offsets",
    "status.storage.topic": "connect-status",
    "key.converter": BYTES_CONVERTER,
    "value.converter": BYTES_CONVERTER,
    "zookeeper.connect": "127.0.0.1:1",
    "listeners": "http://127.0.0.1:0",
}


def run(argv, timeout=60, env=None):
    r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def jaas(module, **opts):
    return f"{module} required " + " ".join(f'{k}="{v}"' for k, v in opts.items()) + ";"


class CheckAgreesWithStartup(unittest.TestCase):
    """No cluster: every case is refused before the worker contacts anything."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ferry-dropin-")
        cls.pem = os.path.join(cls.dir, "ca.pem")
        with open(cls.pem, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        cls.jks = os.path.join(cls.dir, "truststore.jks")
        cls.p12 = os.path.join(cls.dir, "truststore.p12")
        if shutil.which("keytool"):
            for path, kind in ((cls.jks, "JKS"), (cls.p12, "PKCS12")):
                rc, out, err = run(["keytool", "-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize",
                                    "2048", "-dname", "CN=ferry-test", "-validity", "2", "-keystore", path,
                                    "-storetype", kind, "-storepass", "changeit", "-keypass", "changeit"],
                                   timeout=120)
                assert rc == 0, err
        else:       # the stores' first bytes are what ferry reads
            with open(cls.jks, "wb") as f:
                f.write(bytes.fromhex("feedfeed00000002"))
            with open(cls.p12, "wb") as f:
                f.write(bytes.fromhex("30820a0102010330"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def write(self, props, name="w.properties"):
        path = os.path.join(self.dir, name)
        write_properties(path, {k: v for k, v in props.items() if v is not None}, "test_dropin")
        return path

    def test_broken_configs_same_message_exit_2(self):
        sasl = {"security.protocol": "SASL_SSL"}
        cases = [
            ("JAAS without sasl.mechanism (GSSAPI by default)",
             {**sasl, "sasl.jaas.config": jaas(PLAIN, username="u", password=SECRET)},
             "Invalid value [hidden] for configuration sasl.jaas.config: sasl.mechanism is GSSAPI"),
            ("Kerberos", {**sasl, "sasl.mechanism": "GSSAPI", "sasl.jaas.config":
                          f'com.sun.security.auth.module.Krb5LoginModule required keyTab="/k" principal="{SECRET}";'},
             "sasl.kerberos.keytab"),
            ("JAAS that does not parse", {"consumer.security.protocol": "SASL_SSL", "consumer.sasl.mechanism": "PLAIN",
                                          "consumer.sasl.jaas.config": f"{PLAIN} required password={SECRET} x;"},
             "Invalid value [hidden] for configuration consumer.sasl.jaas.config: Value not specified"),
            ("JKS truststore", {"ssl.truststore.location": self.jks},
             f"Invalid value {self.jks} for configuration ssl.truststore.location: a JKS truststore, which "
             f"librdkafka cannot read; export its certificates with `keytool -list -rfc -keystore {self.jks}"),
            ("JKS keystore", {"producer.ssl.keystore.location": self.jks, "producer.ssl.keystore.password": SECRET},
             "producer.ssl.keystore.location: a JKS keystore, which librdkafka cannot read; convert it with "
             "`keytool -importkeystore"),
            ("PKCS12 truststore", {"ssl.truststore.type": "PKCS12", "ssl.truststore.location": self.p12},
             "a PKCS12 truststore, which librdkafka cannot read"),
            ("invalid client setting", {"producer.compression.type": "zstdd"},
             'Invalid client setting producer.compression.type: Invalid value "zstdd"'),
            ("typo of a worker key", {"bootstrap.server": "b:9092"},
             "The configuration 'bootstrap.server' isn't a known config; did you mean 'bootstrap.servers'?"),
            ("typo of zookeeper.connect", {"zookeeper.conect": "zk:2181"}, "did you mean 'zookeeper.connect'?"),
            ("missing bootstrap.servers", {"bootstrap.servers": None},
             'Missing required configuration "bootstrap.servers" which has no default value.'),
            ("chroot in the middle", {"zookeeper.connect": "zk1:2181/ferry,zk2:2181"},
             "The chroot must come after the last host"),
            ("config provider placeholder", {"ssl.key.password": "${file:/etc/ferry/s.properties:key}"},
             "Invalid value [hidden] for configuration ssl.key.password: ${...} is a config provider placeholder"),
            ("log level", {"ferry.log.level.ferry.rst": "DEBUG"},
             "ferry has no logger ferry.rst (did you mean ferry.rest?)"),
            ("unreadable file", {"ssl.ca.location": os.path.join(self.dir, "missing.pem")},
             "for configuration ssl.ca.location: cannot read the file: No such file or directory"),
        ]
        for name, extra, part in cases:
            with self.subTest(name):
                path = self.write({**BASE, **extra})
                rc_c, out_c, err_c = run([binary("ferry-worker"), "--check", path])
                rc_d, out_d, err_d = run([binary("ferry-worker"), path])
                log(f"{name}: {err_c.strip()}")
                self.assertEqual((rc_c, out_c), (2, ""), err_c)
                self.assertEqual(rc_d, 2, err_d)
                self.assertEqual(err_c.count("\n"), 1, err_c)
                self.assertEqual(err_d, err_c)                  # the same line, word for word
                self.assertIn(part, err_c)
                self.assertTrue(err_c.startswith("ferry-worker: "), err_c)
                self.assertNotIn(SECRET, err_c + err_d)

    def test_valid_java_client_keys_are_shown_translated(self):
        path = self.write({**BASE,
                           "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                           "sasl.jaas.config": jaas(PLAIN, username="alice", password=SECRET),
                           "ssl.truststore.location": self.pem, "ssl.truststore.password": SECRET,
                           "ssl.endpoint.identification.algorithm": "",
                           "producer.sasl.mechanism": "SCRAM-SHA-512",
                           "producer.sasl.jaas.config": jaas(SCRAM, username="bob", password=SECRET),
                           "consumer.security.protocol": "SASL_SSL", "consumer.sasl.mechanism": "OAUTHBEARER",
                           "consumer.sasl.jaas.config": jaas(OAUTH, unsecuredLoginStringClaim_sub="svc",
                                                             unsecuredLoginListClaim_scope=",read,write"),
                           "admin.ssl.keystore.location": self.p12, "admin.ssl.keystore.password": SECRET})
        rc, out, err = run([binary("ferry-worker"), "--check", path])
        self.assertEqual((rc, err), (0, ""), out)
        self.assertNotIn(SECRET, out)
        for text in (
                "  sasl.username                      alice (from sasl.jaas.config)\n",
                "  sasl.password                      [hidden] (from sasl.jaas.config)\n",
                f"  ssl.ca.location                    {self.pem} (from ssl.truststore.location)\n",
                "  ssl.endpoint.identification.algorithm none (from ssl.endpoint.identification.algorithm)\n",
                "  sasl.username                      bob (from producer.sasl.jaas.config)\n",
                "  sasl.oauthbearer.config            [hidden] (from consumer.sasl.jaas.config)\n",
                "  enable.sasl.oauthbearer.unsecure.jwt true (from consumer.sasl.jaas.config)\n",
                f"  ssl.keystore.location              {self.p12}\n",
                "  ssl.truststore.password            [hidden] (librdkafka reads CA certificates from PEM"):
            self.assertIn(text, out)

    def test_check_as_user(self):
        if os.geteuid() != 0:
            self.skipTest("--check --as needs root")
        # a directory outside /tmp and /var/tmp (the unit's PrivateTmp hides both; the build
        # directory itself may be under /tmp, as in a fresh clone made with mktemp -d) that the
        # user can enter
        d = tempfile.mkdtemp(prefix="ferry-as-", dir="/var/lib")
        os.chmod(d, 0o755)
        try:
            ca = os.path.join(d, "ca.pem")
            shutil.copy(self.pem, ca)
            os.chmod(ca, 0o644)
            path = os.path.join(d, "w.properties")
            write_properties(path, {**BASE, "ssl.ca.location": ca}, "test_dropin --as")
            os.chmod(path, 0o644)
            rc, out, err = run([binary("ferry-worker"), "--check", "--as", "nobody", path])
            self.assertEqual((rc, err), (0, ""), out)
            self.assertIn("Files, read as nobody (uid 65534", out)
            self.assertIn(f"  ssl.ca.location                    {ca} (readable)", out)
            self.assertIn(f"  CONFIG                             {path} (readable)", out)
            os.chmod(ca, 0o600)                     # root only now
            rc, out, err = run([binary("ferry-worker"), "--check", "--as", "nobody", path])
            self.assertEqual(rc, 2, out)
            self.assertEqual(err, f"ferry-worker: Invalid value {ca} for configuration ssl.ca.location: nobody "
                                  f"cannot read it: Permission denied\n")
            # and root still can: without --as the file is valid
            self.assertEqual(run([binary("ferry-worker"), "--check", path])[0], 0)
            # a file under /tmp is hidden from the service by PrivateTmp=true
            write_properties(path, {**BASE, "ssl.ca.location": self.pem}, "test_dropin --as")
            rc, out, err = run([binary("ferry-worker"), "--check", "--as", "nobody", path])
            self.assertEqual(rc, 2, out)
            self.assertIn("PrivateTmp=true", err)
            rc, _, err = run([binary("ferry-worker"), "--check", "--as", "no-such-user-x", path])
            self.assertEqual((rc, err), (2, "ferry-worker: --as no-such-user-x: no such user\n"))
            rc, _, err = run([binary("ferry-worker"), "--as", "nobody", path])
            self.assertEqual(rc, 2, err)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_journal_prefix_on_a_startup_error(self):
        path = self.write({**BASE, "bootstrap.server": "x"})
        errpath = os.path.join(self.dir, "stderr")
        with open(errpath, "w") as errf:
            st = os.fstat(errf.fileno())
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            rc = subprocess.run([binary("ferry-worker"), path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=errf, env=env, timeout=60).returncode
        with open(errpath) as f:
            text = f.read()
        self.assertEqual(rc, 2)
        self.assertTrue(text.startswith("<3>ferry-worker: The configuration 'bootstrap.server'"), text)

    def test_version(self):
        rc, out, _ = run([binary("ferry-worker"), "--version"])
        self.assertEqual(rc, 0)
        first, second = out.splitlines()[:2]
        self.assertRegex(first, r"^ferry-worker \d+\.\d+\.\d+")
        self.assertTrue(second.startswith(f"Kafka Connect REST API {REST_VERSION} "), second)


class Service(unittest.TestCase):
    """The unit file and install.sh, without a running systemd."""

    def test_systemd_analyze_security(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        unit = os.path.join(src_dir(), "deploy", "ferry.service")
        rc, out, err = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit])
        m = re.search(r"Overall exposure level for ferry\.service: ([0-9.]+)", out + err)
        self.assertTrue(m, out + err)
        log(f"systemd-analyze security: {m.group(1)}")
        self.assertLessEqual(float(m.group(1)), 2.5, out)
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "RestartPreventExitStatus=2",
                     "LimitNOFILE=65536", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service"):
            self.assertIn(line, text)

    def test_install_no_start_neither_enables_nor_starts(self):
        if not shutil.which("systemctl"):
            self.skipTest("systemctl is not installed")
        d = tempfile.mkdtemp(prefix="ferry-install-")
        try:
            link = "etc/systemd/system/multi-user.target.wants/ferry.service"
            install = os.path.join(src_dir(), "deploy", "install.sh")
            rc, out, err = run([install, build_dir(), "--root", os.path.join(d, "a")])
            self.assertEqual(rc, 0, err)
            self.assertTrue(os.path.islink(os.path.join(d, "a", link)), out)     # enabled offline
            rc, out, err = run([install, build_dir(), "--root", os.path.join(d, "b"), "--no-start"])
            self.assertEqual(rc, 0, err)
            self.assertTrue(os.path.isfile(os.path.join(d, "b", "usr/bin/ferry-worker")))
            self.assertTrue(os.path.isfile(os.path.join(d, "b", "etc/systemd/system/ferry.service")))
            self.assertFalse(os.path.lexists(os.path.join(d, "b", link)), out)   # not enabled
        finally:
            shutil.rmtree(d, ignore_errors=True)


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET; collects messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []          # (monotonic time, text)
        self._stop = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def has(self, field):
        return [t for t, m in self.messages if field in m.split("\n")]

    def close(self):
        self._stop = True
        self.sock.close()


class WithCluster(unittest.TestCase):
    """ZooKeeper and mock Kafka clusters, workers started by each test."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(workers=0, src_topics={"connect": 4}, dst_topics={"connect.replica": 4}).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.c.close(failed=False)

    def log_text(self, w):
        with open(w.logpath, errors="replace") as f:
            return f.read()

    def test_a_journald_prefixes_log_levels_and_the_coexistence_warning(self):
        def journal_env(w):
            st = os.stat(w.logpath)
            return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        w = self.c.add_worker(env=journal_env, extra={"ferry.log.level.ferry.store": "DEBUG",
                                                     "no.such.key": "1"})
        try:
            st, js, _, _ = http("GET", w.url + "/admin/loggers/ferry.store")
            self.assertEqual((st, js["level"]), (200, "DEBUG"))
            st, js, _, _ = http("GET", w.url + "/")
            self.assertEqual((st, js["version"]), (200, REST_VERSION))
            lines = self.log_text(w).split("==== ferrytest: starting worker", 1)[1].splitlines()[1:]
            lines = [ln for ln in lines if ln.strip()]
            bad = [ln for ln in lines if not re.match(r"^<[3-7]>(ERROR|WARN |INFO |DEBUG|TRACE) \[", ln)]
            self.assertEqual(bad, [], "lines without a syslog priority")
            text = "\n".join(lines)
            self.assertIn("<6>INFO  [worker] worker config values:", text)
            self.assertIn("<7>DEBUG [store] ", text)
            self.assertIn("<4>WARN  [worker] The configuration 'no.such.key' was supplied but isn't a known config.",
                          text)
            # the mock cannot list groups: a clear WARN, and the worker started anyway
            self.assertRegex(text, r"<4>WARN  \[worker\] could not check the destination cluster \(bootstrap.servers="
                                   r"\S+\) for Kafka Connect workers of group 'ferry-it' \(.+\); make sure none runs")
        finally:
            w.term()

    def test_b_sd_notify_ready_watchdog_stopping(self):
        path = os.path.join(self.c.tmpdir, "notify.sock")
        ns = NotifySocket(path)
        try:
            w = self.c.add_worker(wait=False, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
            polls = []              # (start, /health status) while waiting for READY=1

            def ready():
                if not w.alive():
                    raise AssertionError(f"worker exited:\n{w.log_tail()}")
                t0 = time.monotonic()
                try:
                    polls.append((t0, http("GET", w.url + "/health", timeout=2)[0]))
                except OSError:
                    polls.append((t0, None))
                return ns.has("READY=1")
            wait_until(ready, 60, interval=0.02, what="READY=1 on the notify socket")
            first = ns.has("READY=1")[0]
            for _ in range(5):
                polls.append((time.monotonic(), http("GET", w.url + "/health")[0]))
            # READY=1 never comes before /health answers 200: no poll started after it saw anything else
            self.assertEqual([p for p in polls if p[0] > first and p[1] != 200], [])
            self.assertTrue(any(code != 200 for _, code in polls), "the worker was never seen starting")
            self.assertEqual(http("GET", w.url + "/health")[0], 200)
            self.assertTrue(ns.has("STATUS=starting: reading the storage topics and joining the group"))
            # watchdog pings every 200 ms (half of WATCHDOG_USEC): a few more arrive
            wait_until(lambda: len([t for t in ns.has("WATCHDOG=1") if t > first]) >= 3, 30,
                       what="three WATCHDOG=1 after READY=1")
            self.assertEqual(len(ns.has("READY=1")), 1)
            self.assertEqual(w.term(), 0)
            wait_until(lambda: ns.has("STOPPING=1"), 10, what="STOPPING=1")
            log(f"notify: {len(ns.messages)} messages; /health polled {len(polls)} times")
        finally:
            ns.close()

    def test_c_jaas_in_a_layer_does_not_stop_the_worker(self):
        # the admin clients (only the coexistence check at start) use SASL the mock cannot speak:
        # the worker must get past its checks and serve, and show no secret
        w = self.c.add_worker(extra={"admin.security.protocol": "SASL_PLAINTEXT",
                                     "admin.sasl.mechanism": "SCRAM-SHA-256",
                                     "admin.sasl.jaas.config": jaas(SCRAM, username="svc", password=SECRET),
                                     "sasl.jaas.config": jaas(PLAIN, username="u", password=SECRET)})
        try:
            text = self.log_text(w)
            self.assertNotIn(SECRET, text)
            self.assertIn("admin.sasl.jaas.config = [hidden]", text)
            self.assertIn("sasl.jaas.config is not used: security.protocol is not SASL_PLAINTEXT or SASL_SSL", text)
        finally:
            w.term()

    def test_d_connector_configs(self):
        w = self.c.add_worker()
        try:
            # sasl.jaas.config in a connector config is applied as librdkafka's keys: the copy runs
            # (before, librdkafka refused the key and the task failed)
            body = seed_connector(self.c.src.bootstrap, name="jaas",
                                  **{"src.kafka.sasl.jaas.config": jaas(PLAIN, username="u", password=SECRET)})
            st, js, raw, _ = http("POST", w.url + "/connectors", body)
            self.assertEqual(st, 201, raw)     # (the config comes back as given, as Kafka Connect answers)
            produce(self.c.src.bootstrap, "connect", 2000)
            self.assertTrue(wait_records(self.c.dst.bootstrap, "connect.replica", 2000))

            def running():
                s = http("GET", w.url + "/connectors/jaas/status")[1]
                return s and s["tasks"] and all(t["state"] == "RUNNING" for t in s["tasks"])
            wait_until(running, 30, what="the jaas connector's tasks RUNNING")

            refusals = [
                ({"src.kafka.sasl.jaas.config": f"com.sun.security.auth.module.Krb5LoginModule required "
                                                f"principal=\"{SECRET}\";"},
                 "Invalid value [hidden] for configuration src.kafka.sasl.jaas.config: Krb5LoginModule (Kerberos)"),
                ({"topic.blacklst": "secret.*"}, "Unknown configuration topic.blacklst: did you mean topic.blacklist?"),
                ({"transforms": "route", "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter"},
                 "does not run Single Message Transforms"),
                ({"topic.creation.default.replication.factor": "3"}, "does not support topic.creation.*"),
                ({"errors.tolerance": "all"}, "ferry does not support skipping records"),
            ]
            for extra, part in refusals:
                with self.subTest(part):
                    st, js, raw, _ = http("POST", w.url + "/connectors",
                                          seed_connector(self.c.src.bootstrap, name="bad", **extra))
                    self.assertEqual(st, 400, raw)
                    self.assertIn(part, js["message"])
                    self.assertNotIn(SECRET, raw.decode())
                    st, js, raw, _ = http("PUT", w.url + "/connector-plugins/EMRReplicatorSourceConnector/config/"
                                          "validate", {**seed_connector(self.c.src.bootstrap, name="bad",
                                                                        **extra)["config"], "name": "bad"})
                    self.assertEqual(st, 200, raw)
                    self.assertGreaterEqual(js["error_count"], 1)
                    self.assertIn(part, raw.decode())
            self.assertEqual(http("GET", w.url + "/connectors/bad")[0], 404)
        finally:
            http("DELETE", w.url + "/connectors/jaas")
            w.term()


if __name__ == "__main__":
    unittest.main(verbosity=2)
