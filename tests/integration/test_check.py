"""`ferry-worker --check CONFIG`, run as an operator would: a valid file prints the effective
settings grouped by what the worker does with them and exits 0; an invalid one exits 2 with
the same one-line message the daemon gives; secrets never appear; and nothing is contacted
(a listener standing in for Kafka and ZooKeeper sees no connection, the REST port stays free).
The grouping and wording are unit-tested in tests/unit/wconf_test.c ("describe").
"""
import os
import socket
import subprocess
import tempfile
import time
import unittest

from ferrytest import BYTES_CONVERTER, binary, free_port, log, src_dir

VALID = {
    "bootstrap.servers": "dest-broker:9092",
    "group.id": "connect-cluster",
    "config.storage.topic": "connect-configs",
    "offset.storage.topic": "connect-offsets",
    "status.storage.topic": "connect-status",
    "key.converter": BYTES_CONVERTER,
    "value.converter": BYTES_CONVERTER,
    "zookeeper.connect": "zk1:2181,zk2:2181/prod",
}


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ferry-check-")

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, props, extra_lines=()):
        """Writes props to a file and runs --check on it; returns (rc, stdout, stderr)."""
        path = os.path.join(self.tmp.name, "worker.properties")
        with open(path, "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")
            for line in extra_lines:
                f.write(line + "\n")
        t0 = time.monotonic()
        r = subprocess.run([binary("ferry-worker"), "--check", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        log(f"--check -> rc {r.returncode} in {time.monotonic() - t0:.2f} s")
        return r.returncode, r.stdout, r.stderr

    def test_valid_file_prints_the_plan_and_contacts_nothing(self):
        with socket.socket() as trap:
            trap.bind(("127.0.0.1", 0))
            trap.listen(16)
            trap.setblocking(False)
            addr = f"127.0.0.1:{trap.getsockname()[1]}"
            rest_port = free_port()
            rc, out, err = self.check(dict(VALID, **{
                "bootstrap.servers": addr, "zookeeper.connect": addr + "/prod",
                "listeners": f"http://127.0.0.1:{rest_port}",
                "rest.advertised.host.name": "node1.example.com",
                "offset.storage.partitions": "50", "status.storage.replication.factor": "2",
                "producer.compression.type": "lz4", "consumer.max.poll.records": "500",
                "admin.request.timeout.ms": "30000", "plugin.path": "/opt/connectors",
                "no.such.key": "1"}))
            with self.assertRaises(BlockingIOError):
                trap.accept()                 # nobody knocked at "Kafka" or "ZooKeeper"
        self.assertEqual((rc, err), (0, ""), out)
        with socket.socket() as s:            # and the REST port was never bound
            s.bind(("127.0.0.1", rest_port))
        for text in (
                "worker.properties: valid (checked without contacting Kafka or ZooKeeper)",
                f"bootstrap.servers                  {addr}\n",
                "connect-configs (1 partition, replication factor 3)",
                "connect-offsets (50 partitions, replication factor 3)",
                "connect-status (5 partitions, replication factor 2)",
                f"http://127.0.0.1:{rest_port} (127.0.0.1, port {rest_port})",
                f"advertised URL                     http://node1.example.com:{rest_port} ",
                f"worker id                          node1.example.com:{rest_port}\n",
                f"hosts                              {addr}\n",
                "chroot                             /prod\n",
                "group path                         /prod/ferry/connect-cluster\n",
                "compression.type                   lz4\n",
                "max.poll.records                   500 (not a librdkafka property: no effect)\n",
                "request.timeout.ms                 30000\n",
                "plugin.path                        /opt/connectors\n",
                "no.such.key                        1\n"):
            self.assertIn(text, out)
        sections = [line for line in out.splitlines() if line and not line.startswith(" ")]
        self.assertEqual([s.split(" (")[0] for s in sections[1:]], [
            "Destination cluster", "Group and storage topics", "REST API", "ZooKeeper",
            "Tasks and offsets", "Security", "Logging", "Passed to the producers", "Passed to the consumers",
            "Passed to the admin clients", "Accepted without effect in ferry",
            "Ignored"])

    def test_secrets_are_masked(self):
        secrets = {"sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                                       'username="alice" password="Sx9-jaas";',
                   "ssl.key.password": "Sx9-key", "producer.sasl.password": "Sx9-producer",
                   "consumer.ssl.keystore.password": "Sx9-consumer",
                   "some.unknown.secret": "Sx9-unknown"}
        rc, out, err = self.check(dict(VALID, **secrets, **{"security.protocol": "SASL_SSL",
                                                            "sasl.mechanism": "PLAIN"}))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("Sx9", out + err)
        self.assertEqual(out.count("[hidden]"), len(secrets), out)

    def test_invalid_files_exit_2_naming_the_key(self):
        missing = dict(VALID)
        del missing["group.id"]
        cases = [
            (missing, 'ferry-worker: Missing required configuration "group.id" which has no '
                      'default value.\n'),
            (dict(VALID, **{"offset.flush.interval.ms": "soon"}),
             "ferry-worker: Invalid value soon for configuration offset.flush.interval.ms: Not a "
             "number of type LONG\n"),
            (dict(VALID, **{"listeners": "ftp://:21"}),
             'ferry-worker: Invalid value ftp://:21 for configuration listeners: Listener '
             'protocol must be either "http" or "https".\n'),
            (dict(VALID, **{"zookeeper.connect": "zk1:2181/ferry/"}),
             "ferry-worker: Invalid value zk1:2181/ferry/ for configuration zookeeper.connect: "
             "Invalid chroot path (empty, \".\" or \"..\" component, or trailing '/')\n"),
        ]
        for props, message in cases:
            rc, out, err = self.check(props)
            self.assertEqual((rc, out, err), (2, "", message))

    def test_unreadable_file_and_usage(self):
        r = subprocess.run([binary("ferry-worker"), "--check", "/nonexistent/worker.properties"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("/nonexistent/worker.properties", r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1)
        r = subprocess.run([binary("ferry-worker"), "--check"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("Usage: ferry-worker", r.stderr)
        r = subprocess.run([binary("ferry-worker"), "--help"], stdout=subprocess.PIPE, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check", r.stdout)
        # the security keys are named in --help and in the man page
        with open(os.path.join(src_dir(), "docs", "ferry-worker.1")) as f:
            man = f.read().replace("\\&", "")
        for key in ("listeners.https.ssl.", "rest.extension.classes",
                    "rest.basic.auth.credentials.file", "rest.basic.auth.internal.user",
                    "zookeeper.set.acl", "zookeeper.digest.username", "zookeeper.digest.password"):
            self.assertIn(key, r.stdout)
            self.assertIn(key, man)
        for key in ("ssl.keystore.location", "ssl.truststore.location", "ssl.key.password",
                    "ssl.client.auth", "ssl.keystore.certificate.chain", "ssl.keystore.key",
                    "ssl.truststore.certificates", "ssl.endpoint.identification.algorithm"):
            self.assertIn(key, man)


if __name__ == "__main__":
    unittest.main(verbosity=2)
