"""test_rest_api: every Kafka Connect REST endpoint of ferry-worker, driven over HTTP.

One worker, one shared cluster for the class. Each test checks status codes AND bodies against
Kafka Connect's behaviour (/work/shared/research/kafka-connect-rest.md). Connectors copy three
source topics so that tests do not disturb each other: "connect" (the seed connector only),
"aux" (lifecycle and config tests; nothing asserts on its copy), "offs" (the offsets test
only, which counts what reaches the destination) and "safe" (the config-safety test, which
counts too).

Run: FERRY_BUILD=<build> python3 tests/integration/test_rest_api.py [RestApiTest.test_x]
"""
import json
import os
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (BYTES_CONVERTER, ClusterTestCase, count, http,  # noqa: E402
                       produce, seed_connector, wait_records, wait_until)

NOT_FOUND = "HTTP 404 Not Found"
NOT_STOPPED = ("Connectors must be in the STOPPED state before their offsets can be modified. "
               "This can be done for the specified connector by issuing a 'PUT' request to the "
               "'/connectors/{}/stop' endpoint")


def wait_for_leadership(url, timeout=30):
    """The harness waits for GET / only. Writes answer 409 until the worker has read the
    storage topics and leads the group, so wait for /health and for a write that reaches the
    herder (an invalid create: 400 once it does, 409 before; nothing is stored either way)."""
    wait_until(lambda: http("GET", url + "/health")[0] == 200, timeout, what="GET /health 200")
    probe = {"name": "probe", "config": {"connector.class": "EMRReplicatorSourceConnector",
                                         "tasks.max": "0"}}
    wait_until(lambda: http("POST", url + "/connectors", probe)[0] == 400, timeout,
               what="the worker to accept writes (leader known)")


def enc(name):
    """A connector name as one path segment."""
    return urllib.parse.quote(name, safe="")


class RestApiTest(ClusterTestCase):
    cluster_args = dict(workers=1, src_topics={"connect": 8, "aux": 2, "offs": 4, "safe": 2},
                        dst_topics={"connect.replica": 8, "aux.replica": 2, "offs.replica": 4,
                                    "safe.replica": 2})

    @classmethod
    def setUpClass(cls):
        # libh2o 2.2 (evloop) never frees a queue in h2o_multithread_destroy_queue (newer h2o
        # does): a third-party leak that would hide ferry's own in test_z_clean_shutdown.
        fd, cls.lsan_supp = tempfile.mkstemp(prefix="ferry-lsan-", suffix=".supp")
        with os.fdopen(fd, "w") as f:
            f.write("leak:h2o_multithread_create_queue\n")
        cls.saved_lsan = os.environ.get("LSAN_OPTIONS")
        os.environ["LSAN_OPTIONS"] = ":".join(filter(None, [
            cls.saved_lsan, f"suppressions={cls.lsan_supp}", "print_suppressions=0"]))
        super().setUpClass()
        wait_for_leadership(cls.cluster.url)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.unlink(cls.lsan_supp)
        if cls.saved_lsan is None:
            os.environ.pop("LSAN_OPTIONS", None)
        else:
            os.environ["LSAN_OPTIONS"] = cls.saved_lsan

    # ---------------------------------------------------------------- helpers

    def req(self, method, path, body=None, **kw):
        return http(method, self.cluster.url + path, body, **kw)

    @property
    def worker_id(self):
        return f"127.0.0.1:{self.cluster.workers[0].port}"

    def config(self, name, topic="aux", **overrides):
        """seed_connector's request for `name`, copying `topic` to `topic`.replica."""
        return seed_connector(self.cluster.src.bootstrap, name=name, topic=topic,
                              rename=f"{topic}.replica", **overrides)

    def create(self, name, topic="aux", **overrides):
        st, js, raw, _ = self.req("POST", "/connectors", self.config(name, topic, **overrides))
        self.assertEqual(st, 201, raw)
        return js

    def status(self, name):
        st, js, raw, _ = self.req("GET", f"/connectors/{enc(name)}/status")
        return js if st == 200 else None

    def wait_state(self, name, conn_state, task_state=None, ntasks=None, timeout=30):
        """Waits until the connector shows conn_state and, if ntasks is given, exactly ntasks
        tasks, all in task_state (default: conn_state). Returns the status body."""
        task_state = task_state or conn_state

        def ok():
            s = self.status(name)
            if not s or s["connector"]["state"] != conn_state:
                return None
            if ntasks is not None and (len(s["tasks"]) != ntasks or
                                       any(t["state"] != task_state for t in s["tasks"])):
                return None
            return s
        return wait_until(ok, timeout, what=f"{name} to be {conn_state} with {ntasks} task(s) "
                                            f"{task_state} (last: {self.status(name)})")

    def wait_tasks(self, name, n, timeout=30):
        def ok():
            st, js, _, _ = self.req("GET", f"/connectors/{enc(name)}")
            return js if st == 200 and len(js["tasks"]) == n else None
        return wait_until(ok, timeout, what=f"{name} to have {n} task(s)")

    def assertError(self, resp, status, message=None, contains=None):
        """An error answer: the status, and the {"error_code","message"} body with
        error_code == status."""
        st, js, raw, hdrs = resp
        self.assertEqual(st, status, raw)
        self.assertTrue((hdrs.get("content-type") or "").startswith("application/json"), hdrs)
        self.assertIsInstance(js, dict, raw)
        self.assertEqual(set(js), {"error_code", "message"}, raw)
        self.assertEqual(js["error_code"], status, raw)
        self.assertIsInstance(js["message"], str, raw)
        if message is not None:
            self.assertEqual(js["message"], message)
        if contains is not None:
            self.assertIn(contains, js["message"])
        return js["message"]

    def names(self):
        st, js, raw, _ = self.req("GET", "/connectors")
        self.assertEqual(st, 200, raw)
        return sorted(js)

    # ---------------------------------------------------------------- root, health

    def test_a_root_and_health(self):
        st, js, raw, hdrs = self.req("GET", "/")
        self.assertEqual(st, 200, raw)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        for k in ("version", "commit", "kafka_cluster_id"):
            self.assertIsInstance(js.get(k), str, f"{k} in {js}")
            self.assertTrue(js[k], f"GET / has an empty {k}: {js}")
        # ferry's additions: this worker's id, and the leader it follows (a lone worker leads)
        me = self.cluster.workers[0]
        self.assertEqual((js["worker_id"], js["leader"], js["leader_url"]),
                         (f"127.0.0.1:{me.port}", True, me.url), js)
        # the generation counts assignments: it is 0 until the lone leader has written its first
        gen = wait_until(lambda: self.req("GET", "/")[1]["generation"], 10,
                         what="GET / to show the first generation")
        self.assertGreaterEqual(gen, 1)
        st, js, raw, _ = self.req("GET", "/health")
        self.assertEqual(st, 200, raw)
        self.assertEqual(js, {"status": "healthy", "message":
                              "Worker has completed startup and is ready to handle requests."})

    # ---------------------------------------------------------------- create, read

    def test_b_create_seed_connector(self):
        seed = seed_connector(self.cluster.src.bootstrap)
        st, js, raw, hdrs = self.req("POST", "/connectors", seed)
        self.assertEqual(st, 201, raw)
        self.assertEqual(urllib.parse.urlsplit(hdrs["location"]).path, "/connectors/connect-test")
        self.assertEqual(js["name"], "connect-test")
        self.assertEqual(js["config"], {**seed["config"], "name": "connect-test"})
        self.assertEqual(js["type"], "source")
        self.assertIsInstance(js["tasks"], list)
        self.assertIn("connect-test", self.names())
        # tasks appear once the connector has looked at the source topics: 8 partitions, 1 task
        info = self.wait_tasks("connect-test", 1)
        self.assertEqual(info, {"name": "connect-test", "config": js["config"],
                                "tasks": [{"connector": "connect-test", "task": 0}],
                                "type": "source"})
        st, cfg, raw, _ = self.req("GET", "/connectors/connect-test/config")
        self.assertEqual((st, cfg), (200, js["config"]), raw)
        s = self.wait_state("connect-test", "RUNNING", ntasks=1)
        self.assertEqual(s, {"name": "connect-test",
                             "connector": {"state": "RUNNING", "worker_id": self.worker_id},
                             "tasks": [{"id": 0, "state": "RUNNING", "worker_id": self.worker_id}],
                             "type": "source"})
        # topics: the destination topic the task writes
        st, js, raw, _ = self.req("GET", "/connectors/connect-test/topics")
        self.assertEqual((st, js), (200, {"connect-test": {"topics": ["connect.replica"]}}), raw)
        st, js, raw, _ = self.req("PUT", "/connectors/connect-test/topics/reset")
        self.assertEqual((st, raw), (202, b""))

    def test_c_list_and_expand(self):
        for n in ("exp-a", "exp-b"):
            self.create(n)
        for n in ("exp-a", "exp-b"):
            self.wait_state(n, "RUNNING", ntasks=1)
        names = self.names()
        self.assertTrue({"exp-a", "exp-b"} <= set(names), names)
        queries = {"expand=status": {"status"}, "expand=info": {"info"},
                   "expand=status&expand=info": {"status", "info"},
                   "expand=info&expand=status": {"status", "info"},
                   "expand=bogus&expand=info": {"info"}}
        for q, keys in queries.items():
            st, js, raw, _ = self.req("GET", "/connectors?" + q)
            self.assertEqual(st, 200, raw)
            self.assertIsInstance(js, dict, q)
            self.assertEqual(sorted(js), names, q)
            for n in ("exp-a", "exp-b"):
                self.assertEqual(set(js[n]), keys, q)
                if "status" in keys:
                    self.assertEqual(js[n]["status"], self.status(n), q)
                if "info" in keys:
                    st2, info, _, _ = self.req("GET", f"/connectors/{n}")
                    self.assertEqual(js[n]["info"], info, q)
                    self.assertEqual(info["tasks"], [{"connector": n, "task": 0}])
        st, js, raw, _ = self.req("GET", "/connectors?expand=bogus")
        self.assertEqual((st, sorted(js)), (200, names), raw)   # unknown values are ignored
        st, js, raw, _ = self.req("GET", "/connectors?expand=")
        self.assertEqual((st, sorted(js)), (200, names), raw)

    def test_d_tasks_endpoints(self):
        self.create("tasks", **{"tasks.max": "2"})
        self.wait_state("tasks", "RUNNING", ntasks=2)
        st, tasks, raw, _ = self.req("GET", "/connectors/tasks/tasks")
        self.assertEqual(st, 200, raw)
        self.assertEqual([t["id"] for t in tasks], [{"connector": "tasks", "task": 0},
                                                    {"connector": "tasks", "task": 1}])
        parts = []
        for t in tasks:
            self.assertEqual(t["config"]["task.class"], "EMRReplicatorSourceTask")
            self.assertEqual(t["config"]["topic.whitelist"], "aux")
            parts += t["config"]["task.partitions"].split(",")
        self.assertEqual(sorted(parts), ["aux:0", "aux:1"])
        st, tc, raw, _ = self.req("GET", "/connectors/tasks/tasks-config")
        self.assertEqual((st, tc), (200, {"tasks-0": tasks[0]["config"],
                                          "tasks-1": tasks[1]["config"]}), raw)
        for i in (0, 1):
            st, js, raw, _ = self.req("GET", f"/connectors/tasks/tasks/{i}/status")
            self.assertEqual((st, js), (200, {"id": i, "state": "RUNNING",
                                              "worker_id": self.worker_id}), raw)
        self.assertError(self.req("GET", "/connectors/tasks/tasks/2/status"), 404,
                         "No status found for task tasks-2")
        self.assertError(self.req("GET", "/connectors/tasks/tasks/abc/status"), 404, NOT_FOUND)
        self.assertError(self.req("POST", "/connectors/tasks/tasks/7/restart"), 404,
                         "Unknown task: tasks-7")

    # ---------------------------------------------------------------- config

    def test_e_put_patch_config(self):
        cfg = self.config("cfg")["config"]
        st, js, raw, hdrs = self.req("PUT", "/connectors/cfg/config", cfg)
        self.assertEqual(st, 201, raw)
        self.assertEqual(urllib.parse.urlsplit(hdrs["location"]).path, "/connectors/cfg")
        self.assertEqual(js["name"], "cfg")
        self.assertEqual(js["config"], {**cfg, "name": "cfg"})
        self.assertEqual(js["type"], "source")
        self.wait_tasks("cfg", 1)
        # update: 200, no Location; the connector keeps its tasks
        cfg2 = {**cfg, "topic.poll.interval.ms": "1000", "src.cluster.alias": "east"}
        st, js, raw, hdrs = self.req("PUT", "/connectors/cfg/config", cfg2)
        self.assertEqual(st, 200, raw)
        self.assertIsNone(hdrs.get("location"))
        self.assertEqual(js["config"], {**cfg2, "name": "cfg"})
        st, got, raw, _ = self.req("GET", "/connectors/cfg/config")
        self.assertEqual((st, got), (200, {**cfg2, "name": "cfg"}), raw)
        # PATCH merges; null removes a key
        st, js, raw, _ = self.req("PATCH", "/connectors/cfg/config",
                                  {"src.cluster.alias": None, "topic.poll.interval.ms": "2000"})
        self.assertEqual(st, 200, raw)
        want = {**cfg, "topic.poll.interval.ms": "2000", "name": "cfg"}
        self.assertEqual(js["name"], "cfg")
        self.assertEqual(js["config"], want)
        self.assertNotIn("src.cluster.alias", js["config"])
        st, got, raw, _ = self.req("GET", "/connectors/cfg/config")
        self.assertEqual((st, got), (200, want), raw)
        self.wait_state("cfg", "RUNNING", ntasks=1)
        # task configs follow the connector config
        wait_until(lambda: self.req("GET", "/connectors/cfg/tasks")[1][0]["config"]
                   .get("topic.poll.interval.ms") == "2000", 20, what="task config update")
        # more tasks: aux has 2 partitions
        st, js, raw, _ = self.req("PATCH", "/connectors/cfg/config", {"tasks.max": 2})
        self.assertEqual((st, js["config"]["tasks.max"]), (200, "2"), raw)
        want["tasks.max"] = "2"
        self.wait_tasks("cfg", 2)
        self.wait_state("cfg", "RUNNING", ntasks=2)
        # PATCH never creates; an invalid PATCH stores nothing
        self.assertError(self.req("PATCH", "/connectors/nope/config", {"tasks.max": "2"}), 404,
                         "Connector nope not found")
        self.assertError(self.req("PATCH", "/connectors/cfg/config", {"tasks.max": "0"}), 400,
                         contains="Connector configuration is invalid and contains the "
                                  "following 1 error(s)")
        self.assertEqual(self.req("GET", "/connectors/cfg/config")[1], want)
        self.assertNotIn("nope", self.names())

    # ---------------------------------------------------------------- lifecycle

    def test_f_restart(self):
        self.create("rst", **{"tasks.max": "2"})
        self.wait_state("rst", "RUNNING", ntasks=2)
        st, js, raw, _ = self.req("POST", "/connectors/rst/restart")
        self.assertEqual((st, raw), (204, b""))
        self.wait_state("rst", "RUNNING", ntasks=2)

        st, js, raw, _ = self.req("POST", "/connectors/rst/restart?includeTasks=true")
        self.assertEqual(st, 202, raw)
        w = self.worker_id
        self.assertEqual(js, {"name": "rst", "connector": {"state": "RESTARTING", "worker_id": w},
                              "tasks": [{"id": 0, "state": "RESTARTING", "worker_id": w},
                                        {"id": 1, "state": "RESTARTING", "worker_id": w}],
                              "type": "source"})
        self.wait_state("rst", "RUNNING", ntasks=2)

        st, js, raw, _ = self.req("POST",
                                  "/connectors/rst/restart?includeTasks=true&onlyFailed=true")
        self.assertEqual(st, 202, raw)
        self.assertEqual(js, {"name": "rst", "connector": {"state": "RUNNING", "worker_id": w},
                              "tasks": [{"id": 0, "state": "RUNNING", "worker_id": w},
                                        {"id": 1, "state": "RUNNING", "worker_id": w}],
                              "type": "source"})
        # onlyFailed alone: nothing is FAILED, so nothing restarts
        st, js, raw, _ = self.req("POST", "/connectors/rst/restart?onlyFailed=TRUE")
        self.assertEqual((st, js["connector"]["state"]), (202, "RUNNING"), raw)
        self.wait_state("rst", "RUNNING", ntasks=2)

        st, js, raw, _ = self.req("POST", "/connectors/rst/tasks/0/restart")
        self.assertEqual((st, raw), (204, b""))
        self.wait_state("rst", "RUNNING", ntasks=2)
        st, js, raw, _ = self.req("GET", "/connectors/rst/tasks/0/status")
        self.assertEqual((st, js), (200, {"id": 0, "state": "RUNNING", "worker_id": w}), raw)

    def test_g_pause_resume_stop(self):
        self.create("life", **{"tasks.max": "2"})
        self.wait_state("life", "RUNNING", ntasks=2)
        st, js, raw, _ = self.req("PUT", "/connectors/life/pause")
        self.assertEqual((st, raw), (202, b""))
        s = self.wait_state("life", "PAUSED", ntasks=2)
        self.assertEqual([t["worker_id"] for t in s["tasks"]], [self.worker_id] * 2)
        st, js, raw, _ = self.req("PUT", "/connectors/life/pause")   # idempotent
        self.assertEqual(st, 202, raw)
        st, js, raw, _ = self.req("PUT", "/connectors/life/resume")
        self.assertEqual((st, raw), (202, b""))
        self.wait_state("life", "RUNNING", ntasks=2)

        st, js, raw, _ = self.req("PUT", "/connectors/life/stop")
        self.assertEqual((st, raw), (204, b""))
        s = self.wait_state("life", "STOPPED", ntasks=0)
        self.assertEqual(s, {"name": "life", "connector": {"state": "STOPPED",
                                                           "worker_id": self.worker_id},
                             "tasks": [], "type": "source"})
        st, js, raw, _ = self.req("GET", "/connectors/life")
        self.assertEqual((st, js["tasks"]), (200, []), raw)
        st, js, raw, _ = self.req("GET", "/connectors/life/tasks")
        self.assertEqual((st, js), (200, []), raw)
        # resume brings back a STOPPED connector, with regenerated tasks
        st, js, raw, _ = self.req("PUT", "/connectors/life/resume")
        self.assertEqual(st, 202, raw)
        self.wait_state("life", "RUNNING", ntasks=2)
        self.wait_tasks("life", 2)

    def test_h_delete_and_recreate(self):
        self.create("gone")
        self.wait_state("gone", "RUNNING", ntasks=1)
        st, js, raw, _ = self.req("DELETE", "/connectors/gone")
        self.assertEqual((st, raw), (204, b""))
        self.assertError(self.req("GET", "/connectors/gone"), 404, "Connector gone not found")
        self.assertNotIn("gone", self.names())
        self.assertError(self.req("DELETE", "/connectors/gone"), 404, "Connector gone not found")
        wait_until(lambda: self.req("GET", "/connectors/gone/status")[0] == 404, 20,
                   what="the deleted connector's status to go away")
        self.create("gone")
        self.wait_state("gone", "RUNNING", ntasks=1)
        self.wait_tasks("gone", 1)

    # ---------------------------------------------------------------- offsets

    def test_i_offsets(self):
        src, dst = self.cluster.src.bootstrap, self.cluster.dst.bootstrap
        n = 2000
        produce(src, "offs", n)
        per = [p["high"] - p["low"] for p in count(src, "offs")["per_partition"]]
        self.assertEqual(sum(per), n)
        self.create("offs", topic="offs", **{"tasks.max": "2"})
        self.assertTrue(wait_records(dst, "offs.replica", n, timeout_ms=60000))
        want = sorted([{"partition": {"topic": "offs", "partition": p}, "offset": {"offset": c}}
                       for p, c in enumerate(per)], key=lambda e: e["partition"]["partition"])

        def offsets():
            st, js, raw, _ = self.req("GET", "/connectors/offs/offsets")
            self.assertEqual(st, 200, raw)
            self.assertEqual(set(js), {"offsets"})
            return sorted(js["offsets"], key=lambda e: e["partition"]["partition"])
        wait_until(lambda: offsets() == want, 30, what=f"offsets {want} (last: {offsets()})")

        # while running: 400 for PATCH and DELETE
        patch = {"offsets": [{"partition": {"topic": "offs", "partition": 0},
                              "offset": {"offset": 0}}]}
        self.assertError(self.req("PATCH", "/connectors/offs/offsets", patch), 400,
                         NOT_STOPPED.format("offs"))
        self.assertError(self.req("DELETE", "/connectors/offs/offsets"), 400,
                         NOT_STOPPED.format("offs"))
        st, js, raw, _ = self.req("PUT", "/connectors/offs/stop")
        self.assertEqual(st, 204, raw)
        self.wait_state("offs", "STOPPED", ntasks=0)
        before = count(dst, "offs.replica")["total"]
        self.assertEqual(before, n)
        # an empty or malformed PATCH is a 400
        self.assertError(self.req("PATCH", "/connectors/offs/offsets", {"offsets": []}), 400)
        self.assertError(self.req("PATCH", "/connectors/offs/offsets", {}), 400)

        st, js, raw, _ = self.req("PATCH", "/connectors/offs/offsets", patch)
        self.assertEqual((st, js), (200, {"message": "The offsets for this connector have been "
                                                     "altered successfully"}), raw)
        want0 = [dict(e) for e in want]
        want0[0] = {"partition": {"topic": "offs", "partition": 0}, "offset": {"offset": 0}}
        wait_until(lambda: offsets() == want0, 10, what=f"altered offsets (last: {offsets()})")

        # resume: partition 0 is copied again from offset 0, the others continue where they were
        st, js, raw, _ = self.req("PUT", "/connectors/offs/resume")
        self.assertEqual(st, 202, raw)
        self.wait_state("offs", "RUNNING", ntasks=2)
        grown = before + per[0]
        wait_until(lambda: count(dst, "offs.replica")["total"] >= grown, 60,
                   what=f"offs.replica to grow by {per[0]} records")
        wait_until(lambda: offsets() == want, 30, what=f"offsets back at {want}")
        time.sleep(2)
        c = count(dst, "offs.replica")
        self.assertEqual(c["total"], grown, c)
        self.assertEqual(c["per_partition"][0]["high"] - c["per_partition"][0]["low"], 2 * per[0])

        # reset: DELETE while stopped, then everything is copied again from the beginning
        self.assertEqual(self.req("PUT", "/connectors/offs/stop")[0], 204)
        self.wait_state("offs", "STOPPED", ntasks=0)
        st, js, raw, _ = self.req("DELETE", "/connectors/offs/offsets")
        self.assertEqual((st, js), (200, {"message": "The offsets for this connector have been "
                                                     "reset successfully"}), raw)
        wait_until(lambda: offsets() == [], 10, what=f"no offsets (last: {offsets()})")
        self.assertEqual(self.req("PUT", "/connectors/offs/resume")[0], 202)
        wait_until(lambda: count(dst, "offs.replica")["total"] >= grown + n, 60,
                   what="a full second copy after the reset")
        wait_until(lambda: offsets() == want, 30, what=f"offsets back at {want}")
        time.sleep(2)
        self.assertEqual(count(dst, "offs.replica")["total"], grown + n)

    # ---------------------------------------------------------------- plugins

    def test_j_plugins(self):
        st, js, raw, _ = self.req("GET", "/connector-plugins")
        self.assertEqual(st, 200, raw)
        self.assertIsInstance(js, list)
        mine = [p for p in js if p["class"].split(".")[-1] == "EMRReplicatorSourceConnector"]
        self.assertEqual(len(mine), 1, js)
        self.assertEqual(mine[0]["type"], "source")
        self.assertTrue(all(p["type"] in ("source", "sink") for p in js), js)
        st, alljs, raw, _ = self.req("GET", "/connector-plugins?connectorsOnly=false")
        self.assertEqual(st, 200, raw)
        self.assertTrue(all(p in alljs for p in js))
        self.assertIn(BYTES_CONVERTER, [p["class"] for p in alljs if p["type"] == "converter"])
        st, js2, raw, _ = self.req("GET", "/connector-plugins?connectorsOnly=true")
        self.assertEqual((st, js2), (200, js), raw)
        self.assertError(self.req("GET", "/connector-plugins?connectorsOnly=maybe"), 400)

        for plugin in ("EMRReplicatorSourceConnector", "EMRReplicatorSource"):
            st, defs, raw, _ = self.req("GET", f"/connector-plugins/{plugin}/config")
            self.assertEqual(st, 200, raw)
            tm = [d for d in defs if d["name"] == "tasks.max"]
            self.assertEqual(len(tm), 1, defs)
            self.assertEqual((tm[0]["type"], tm[0]["default_value"]), ("INT", "1"))
            for k in ("required", "importance", "documentation", "group", "order", "width",
                      "display_name", "dependents"):
                self.assertIn(k, tm[0])
        self.assertError(self.req("GET", "/connector-plugins/Nope/config"), 404,
                         "Unknown plugin Nope.")

        url = "/connector-plugins/EMRReplicatorSourceConnector/config/validate"
        good = {**self.config("v")["config"], "name": "v"}
        st, js, raw, _ = self.req("PUT", url, good)
        self.assertEqual(st, 200, raw)
        self.assertEqual(js["name"].split(".")[-1], "EMRReplicatorSourceConnector")
        self.assertEqual(js["error_count"], 0)
        self.assertIsInstance(js["groups"], list)
        by = {c["definition"]["name"]: c for c in js["configs"]}
        self.assertEqual(by["topic.whitelist"]["value"]["value"], "aux")
        self.assertTrue(all(c["value"]["errors"] == [] for c in js["configs"]))

        bad = {**good, "tasks.max": "x"}
        del bad["src.kafka.bootstrap.servers"]
        st, js, raw, _ = self.req("PUT", url, bad)
        self.assertEqual(st, 200, raw)
        self.assertEqual(js["error_count"], 2, raw)
        by = {c["value"]["name"]: c["value"] for c in js["configs"]}
        self.assertEqual(by["tasks.max"]["errors"],
                         ["Invalid value x for configuration tasks.max: Not a number of type INT"])
        self.assertEqual(len(by["src.kafka.bootstrap.servers"]["errors"]), 1)
        self.assertIn("src.kafka.bootstrap.servers", by["src.kafka.bootstrap.servers"]["errors"][0])
        self.assertEqual(sum(len(v["errors"]) for v in by.values()), 2)

        nocls = dict(good)
        del nocls["connector.class"]
        self.assertError(self.req("PUT", url, nocls), 400, contains="contains no connector type")
        self.assertError(self.req("PUT", url, {**good, "connector.class": "FileStreamSource"}), 400)
        self.assertEqual(self.req("PUT", "/connector-plugins/EMRReplicatorSource/config/validate",
                                  good)[1]["error_count"], 0)

    # ---------------------------------------------------------------- loggers

    def test_k_loggers(self):
        st, js, raw, _ = self.req("GET", "/admin/loggers")
        self.assertEqual(st, 200, raw)
        self.assertIn("root", js)
        self.assertEqual(set(js["root"]), {"level", "last_modified"})
        st, root, raw, _ = self.req("GET", "/admin/loggers/root")
        self.assertEqual((st, root), (200, js["root"]), raw)

        t0 = int(time.time() * 1000)
        st, js, raw, _ = self.req("PUT", "/admin/loggers/ferry.task", {"level": "DEBUG"})
        self.assertEqual(st, 200, raw)
        self.assertIsInstance(js, list)
        self.assertIn("ferry.task", js)
        st, js, raw, _ = self.req("GET", "/admin/loggers/ferry.task")
        self.assertEqual(st, 200, raw)
        self.assertEqual(js["level"], "DEBUG")
        self.assertIsInstance(js["last_modified"], int)
        self.assertGreaterEqual(js["last_modified"], t0 - 1000)
        st, js, raw, _ = self.req("GET", "/admin/loggers")
        self.assertEqual(js["ferry.task"]["level"], "DEBUG")
        self.assertEqual(self.req("PUT", "/admin/loggers/ferry.task", {"level": "INFO"})[0], 200)

        self.assertError(self.req("PUT", "/admin/loggers/ferry.task", {"level": "LOUD"}), 404,
                         "invalid log level 'LOUD'.")
        self.assertError(self.req("PUT", "/admin/loggers/ferry.task", {}), 400,
                         "Desired 'level' parameter was not specified in request.")
        self.assertError(self.req("GET", "/admin/loggers/no.such.logger"), 404,
                         "Logger no.such.logger not found.")

        st, js, raw, _ = self.req("PUT", "/admin/loggers/ferry.store?scope=cluster",
                                  {"level": "WARN"})
        self.assertEqual((st, raw), (204, b""))
        wait_until(lambda: self.req("GET", "/admin/loggers/ferry.store")[1]["level"] == "WARN",
                   10, what="the cluster-scope level to apply")
        self.assertError(self.req("PUT", "/admin/loggers/ferry.store?scope=cluster",
                                  {"level": "LOUD"}), 404, "invalid log level 'LOUD'.")
        st, js, raw, _ = self.req("PUT", "/admin/loggers/ferry.store?scope=cluster",
                                  {"level": "INFO"})
        self.assertEqual(st, 204, raw)

    # ---------------------------------------------------------------- bad input

    def test_l_bad_input(self):
        self.create("dup")
        before = self.names()
        good = self.config("bad")

        def bad(method, path, status, message=None, contains=None, **kw):
            self.assertError(self.req(method, path, **kw), status, message, contains)
            self.assertEqual(self.names(), before, f"{method} {path} changed the connectors")
            self.assertEqual(self.req("GET", "/")[0], 200)

        json_ct = {"Content-Type": "application/json"}
        bad("POST", "/connectors", 400, raw=b'{"name": "bad", "config": {', headers=json_ct)
        bad("POST", "/connectors", 400, raw=b"", headers=json_ct)
        bad("POST", "/connectors", 400, body=[good])
        bad("POST", "/connectors", 400, body="bad")
        bad("POST", "/connectors", 415, raw=json.dumps(good),
            headers={"Content-Type": "text/plain"})
        bad("POST", "/connectors", 415, raw=json.dumps(good))
        huge = {"name": "bad", "config": {**good["config"], "pad": "x" * (1024 * 1024 + 10)}}
        bad("POST", "/connectors", 413, body=huge)
        bad("POST", "/connectors", 400, body={"name": "bad"})
        bad("POST", "/connectors", 400, body={"name": "", "config": good["config"]})
        bad("POST", "/connectors", 400, body={"name": "   ", "config": good["config"]})
        bad("POST", "/connectors", 400, body={"config": good["config"]})
        bad("POST", "/connectors", 400,
            "Connector name configuration (other) doesn't match connector name in the URL (bad)",
            body={"name": "bad", "config": {**good["config"], "name": "other"}})
        bad("PUT", "/connectors/bad/config", 400,
            "Connector name configuration (other) doesn't match connector name in the URL (bad)",
            body={**good["config"], "name": "other"})
        bad("PUT", "/connectors/bad/config", 400, body=good)   # the wrapper instead of a flat map
        bad("POST", "/connectors", 409, "Connector dup already exists", body=self.config("dup"))
        invalid = "Connector configuration is invalid and contains the following 1 error(s)"
        bad("POST", "/connectors", 400, contains=invalid,
            body=self.config("bad", **{"tasks.max": "0"}))
        bad("POST", "/connectors", 400, contains=invalid,
            body=self.config("bad", **{"topic.whitelist": None,
                                       "topic.rename.format": "${topic}.r"}))
        bad("POST", "/connectors", 400, contains=invalid,
            body=self.config("bad", **{"key.converter":
                                       "org.apache.kafka.connect.json.JsonConverter"}))
        bad("PUT", "/connectors/bad/config", 400, contains=invalid,
            body=self.config("bad", **{"tasks.max": "0"})["config"])
        bad("POST", "/connectors", 400, contains="no connector type",
            body=self.config("bad", **{"connector.class": None}))
        bad("POST", "/connectors", 400, contains="com.example.NoSuchConnector",
            body=self.config("bad", **{"connector.class": "com.example.NoSuchConnector"}))
        bad("POST", "/connectors", 400, body={**good, "initial_state": "SLEEPING"})
        bad("POST", "/connectors/dup/restart?includeTasks=maybe", 400)
        bad("POST", "/connectors/dup/restart?onlyFailed=", 400)

        # unknown connector, endpoint by endpoint
        cnf, unk = "Connector nope not found", "Unknown connector nope"
        patch = {"offsets": [{"partition": {"topic": "aux", "partition": 0},
                              "offset": {"offset": 0}}]}
        for method, path, message, body in (
                ("GET", "", cnf, None), ("DELETE", "", cnf, None),
                ("GET", "/config", cnf, None), ("PATCH", "/config", cnf, {"tasks.max": "1"}),
                ("GET", "/status", "No status found for connector nope", None),
                ("GET", "/tasks", cnf, None), ("GET", "/tasks-config", cnf, None),
                ("GET", "/tasks/0/status", "No status found for task nope-0", None),
                ("POST", "/restart", "Unknown connector: nope", None),
                ("POST", "/restart?includeTasks=true", "Unknown connector: nope", None),
                ("POST", "/tasks/0/restart", "Unknown connector: nope", None),
                ("PUT", "/pause", unk, None), ("PUT", "/resume", unk, None),
                ("PUT", "/stop", cnf, None),
                ("GET", "/offsets", cnf, None), ("PATCH", "/offsets", cnf, patch),
                ("DELETE", "/offsets", cnf, None)):
            bad(method, "/connectors/nope" + path, 404, message, body=body)
        # topics of an unknown connector: an empty list, as in Kafka Connect
        st, js, raw, _ = self.req("GET", "/connectors/nope/topics")
        self.assertEqual((st, js), (200, {"nope": {"topics": []}}), raw)

        # routing
        bad("GET", "/nosuch", 404, NOT_FOUND)
        bad("GET", "/connectors/dup/nosuch", 404, NOT_FOUND)
        bad("GET", "/connectors/dup/tasks/0/nosuch", 404, NOT_FOUND)
        bad("DELETE", "/connectors", 405)
        bad("PUT", "/connectors/dup/status", 405)
        bad("GET", "/connectors/dup/restart", 405)
        bad("POST", "/connectors/dup/pause", 405)
        bad("POST", "/health", 405)
        bad("DELETE", "/connector-plugins", 405)
        self.assertEqual(self.req("GET", "/")[0], 200)

    def test_m_special_names(self):
        for name in ("with space", "dotted.name.v2", "ünï-cödé ☃", "a/b"):
            body = self.config(name)
            st, js, raw, hdrs = self.req("POST", "/connectors", body)
            self.assertEqual(st, 201, raw)
            self.assertEqual((js["name"], js["config"]["name"]), (name, name))
            # Location is a URI: percent-encoded (Kafka Connect: UriBuilder.path(name))
            loc = urllib.parse.urlsplit(hdrs["location"].encode("latin-1").decode("utf-8")).path
            self.assertEqual(urllib.parse.unquote(loc), "/connectors/" + name)
            if "/" not in name:
                self.assertEqual(loc, "/connectors/" + enc(name))
            self.assertIn(name, self.names())
            st, js, raw, _ = self.req("GET", f"/connectors/{enc(name)}")
            self.assertEqual((st, js["name"]), (200, name), raw)
            st, js, raw, _ = self.req("GET", f"/connectors/{enc(name)}/config")
            self.assertEqual((st, js["name"]), (200, name), raw)
            self.wait_state(name, "RUNNING", ntasks=1)
            self.assertEqual(self.req("DELETE", f"/connectors/{enc(name)}")[0], 204)
            self.assertNotIn(name, self.names())
            self.assertError(self.req("GET", f"/connectors/{enc(name)}"), 404,
                             f"Connector {name} not found")
        # names Kafka Connect refuses
        self.assertError(self.req("POST", "/connectors", self.config("ctl\x01char")), 400)
        self.assertEqual(self.req("GET", "/")[0], 200)

    def test_n_initial_state(self):
        body = {**self.config("init-stopped"), "initial_state": "stopped"}   # any case
        st, js, raw, _ = self.req("POST", "/connectors", body)
        self.assertEqual((st, js["tasks"]), (201, []), raw)
        s = self.wait_state("init-stopped", "STOPPED", ntasks=0)
        self.assertEqual(s["connector"]["worker_id"], self.worker_id)
        time.sleep(1)    # a stopped connector generates no tasks
        self.assertEqual(self.req("GET", "/connectors/init-stopped")[1]["tasks"], [])
        patch = {"offsets": [{"partition": {"topic": "aux", "partition": 1},
                              "offset": {"offset": 0}}]}
        st, js, raw, _ = self.req("PATCH", "/connectors/init-stopped/offsets", patch)
        self.assertEqual(st, 200, raw)
        body = {**self.config("init-running"), "initial_state": "RUNNING"}
        self.assertEqual(self.req("POST", "/connectors", body)[0], 201)
        self.wait_state("init-running", "RUNNING", ntasks=1)

    def test_o_config_safety(self):
        """Configs that would break the worker or the connector are refused by validation, with
        the key and the reason, by POST, PUT .../config and PUT .../config/validate alike; a
        running connector given such a config keeps running with its old one."""
        invalid = "Connector configuration is invalid and contains the following 1 error(s)"
        before = self.names()
        wprops = self.cluster.workers[0].props
        plugin = "/connector-plugins/EMRReplicatorSourceConnector/config/validate"

        def refused(reason, **overrides):
            """POST and validate both name topic.rename.format, or the key of `overrides`."""
            body = self.config("unsafe", **overrides)
            msg = self.assertError(self.req("POST", "/connectors", body), 400, contains=invalid)
            self.assertIn(reason, msg)
            st, js, raw, _ = self.req("PUT", plugin, {**body["config"], "name": "unsafe"})
            self.assertEqual((st, js["error_count"]), (200, 1), raw)
            errs = {c["value"]["name"]: c["value"]["errors"] for c in js["configs"]
                    if c["value"]["errors"]}
            self.assertEqual(len(errs), 1, errs)
            key, [err] = next(iter(errs.items()))
            self.assertIn(f"for configuration {key}", msg)
            self.assertIn(err, msg)
            self.assertIn(reason, err)
            return key

        # a source topic renamed onto the worker's own storage topics, or Kafka's
        for key in ("offset.storage.topic", "config.storage.topic", "status.storage.topic"):
            self.assertEqual(refused(f"the worker's {key} {wprops[key]}",
                                     **{"topic.rename.format": wprops[key]}),
                             "topic.rename.format")
        refused("onto the worker's config.storage.topic connect-configs",
                **{"topic.whitelist": "aux,configs", "topic.rename.format": "connect-${topic}"})
        refused("source topic offsets would be copied onto the worker's offset.storage.topic",
                **{"topic.whitelist": None, "topic.regex": "off[a-z]*",
                   "topic.rename.format": "connect-${topic}"})
        refused("Kafka's internal topic __consumer_offsets",
                **{"topic.rename.format": "__consumer_offsets"})
        # the worker's own cluster as the source, with topics copied onto themselves
        own = {"src.kafka.bootstrap.servers": wprops["bootstrap.servers"]}
        refused("copied onto itself, endlessly", **own, **{"topic.rename.format": "${topic}"})
        refused("copied onto itself, endlessly", **own, **{"topic.rename.format": "aux"})
        # several sources merged into one literal target
        refused("only valid when topic.whitelist names exactly one topic",
                **{"topic.whitelist": "aux,offs"})
        refused("only valid when topic.whitelist names exactly one topic",
                **{"topic.regex": "a.*"})
        # numbers out of range
        for key, value, reason in (("tasks.max", "0", "at least 1"),
                                   ("tasks.max", "-1", "at least 1"),
                                   ("topic.poll.interval.ms", "-5", "at least 100"),
                                   ("src.kafka.max.poll.records", "0", "between 1 and 1000000"),
                                   ("transaction.boundary.interval.ms", "-1", "at least 1"),
                                   ("dest.topic.replication.factor", "-1", "between 0 and 32767")):
            self.assertEqual(refused(reason, **{key: value}), key)
        # the same config from another cluster, or renamed elsewhere, is fine
        st, js, raw, _ = self.req("PUT", plugin, {**self.config("unsafe", **{
            "topic.whitelist": "aux,configs", "topic.rename.format": "mirror-${topic}"})["config"],
            "name": "unsafe"})
        self.assertEqual((st, js["error_count"]), (200, 0), raw)
        self.assertEqual(self.names(), before)

        # a running connector: every bad config is refused, and it copies on with the old one
        src, dst = self.cluster.src.bootstrap, self.cluster.dst.bootstrap
        self.create("safe", topic="safe", **{"tasks.max": "2"})
        self.wait_state("safe", "RUNNING", ntasks=2)
        produce(src, "safe", 1000)
        self.assertTrue(wait_records(dst, "safe.replica", 1000, timeout_ms=60000))
        st, good, raw, _ = self.req("GET", "/connectors/safe/config")
        self.assertEqual(st, 200, raw)
        for change in ({"topic.rename.format": wprops["offset.storage.topic"]},
                       {"topic.rename.format": "${topic}", **own},
                       {"tasks.max": "0"}, {"src.kafka.max.poll.records": "0"},
                       {"topic.whitelist": "safe,aux"}):
            self.assertError(self.req("PUT", "/connectors/safe/config", {**good, **change}), 400,
                             contains=invalid)
            self.assertError(self.req("PATCH", "/connectors/safe/config", change), 400,
                             contains=invalid)
        self.assertEqual(self.req("GET", "/connectors/safe/config")[1], good)
        s = self.wait_state("safe", "RUNNING", ntasks=2)
        self.assertTrue(all(t["state"] == "RUNNING" for t in s["tasks"]), s)
        produce(src, "safe", 1000)
        self.assertTrue(wait_records(dst, "safe.replica", 2000, timeout_ms=60000))
        self.assertEqual(count(dst, "safe.replica")["total"], 2000)
        self.assertEqual(self.status("safe")["connector"]["state"], "RUNNING")
        self.assertEqual(self.req("DELETE", "/connectors/safe")[0], 204)

    def test_z_clean_shutdown(self):
        """Last: SIGTERM ends the worker with exit code 0 and no sanitizer report."""
        w = self.cluster.workers[0]
        self.assertEqual(w.term(), 0, w.log_tail(20))
        with open(w.logpath, errors="replace") as f:
            log_text = f.read()
        for bad in ("Sanitizer", "Assertion", "runtime error"):
            self.assertNotIn(bad, log_text, w.log_tail(20))


if __name__ == "__main__":
    unittest.main(verbosity=2)
