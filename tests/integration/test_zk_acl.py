"""ZooKeeper digest authentication and ACLs on ferry's znodes (zookeeper.set.acl with
zookeeper.digest.username/.password): the group works as usual, anyone else is refused, and
the password never appears in a worker's log.

The outsider is tests/fixtures/zktool (the ZooKeeper C client), with no, wrong or right
credentials."""
import subprocess
import unittest

from ferrytest import (ClusterTestCase, binary, http, produce, seed_connector, wait_records,
                       worker_properties)

USER, PASSWORD = "ferry", "Zq8-acl-s3cret"
EXTRA = {"zookeeper.set.acl": "true", "zookeeper.digest.username": USER,
         "zookeeper.digest.password": PASSWORD}


def zktool(zk, *args):
    r = subprocess.run([binary("zktool"), zk] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


class ZkAclTest(ClusterTestCase):
    cluster_args = dict(workers=2, worker_extra=EXTRA)

    def test_a_group_works_and_outsiders_are_refused(self):
        c = self.cluster
        produce(c.src.bootstrap, "connect", 5000)
        st, _, raw, _ = http("POST", c.workers[1].url + "/connectors",
                             seed_connector(c.src.bootstrap, **{"tasks.max": "2"}))
        self.assertEqual(st, 201, raw)
        self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", 5000))

        zk = c.zk.connect
        group = "/ferry/ferry-it"
        for node in (group, group + "/leader", group + "/members", group + "/assignment"):
            self.assertEqual(zktool(zk, "get", node), (1, "ZNOAUTH"), f"{node} without credentials")
            self.assertEqual(zktool(zk, "get", node, "--digest", f"{USER}:wrong"), (1, "ZNOAUTH"), node)
            rc, out = zktool(zk, "get", node, "--digest", f"{USER}:{PASSWORD}")
            self.assertEqual(rc, 0, f"{node} with the group's credentials: {out}")
            self.assertEqual(zktool(zk, "set", node, "x"), (1, "ZNOAUTH"), f"writing {node}")
            rc, acl = zktool(zk, "getacl", node, "--digest", f"{USER}:{PASSWORD}")
            self.assertEqual(rc, 0, acl)
            self.assertEqual(acl.splitlines(), [f"digest:{USER}:{acl.split(':')[2]}:31"],
                             f"{node}: only the digest identity, all permissions")

    def test_b_password_never_logged(self):
        for w in self.cluster.workers:
            with open(w.logpath, errors="replace") as f:
                log = f.read()
            self.assertIn("zookeeper.digest.username", log)       # the config dump ran
            self.assertNotIn(PASSWORD, log)

    def test_c_invalid_settings_refused(self):
        base = worker_properties("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1", 1, "g")
        for extra, key in (({"zookeeper.set.acl": "true"}, "zookeeper.set.acl"),
                           ({"zookeeper.digest.username": USER}, "zookeeper.digest.password"),
                           ({"zookeeper.set.acl": "maybe"}, "zookeeper.set.acl")):
            props = {**base, **extra}
            text = "".join(f"{k}={v}\n" for k, v in props.items())
            r = subprocess.run([binary("ferry-worker"), "/dev/stdin"], input=text, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(r.returncode, 2, f"{extra}: {r.stdout}{r.stderr}")
            self.assertIn(key, r.stderr, extra)


if __name__ == "__main__":
    unittest.main(verbosity=2)
