"""grouptest: helpers shared by the suites that run a group of workers around one connector
(test_distributed, test_rolling_restart): log lines by time, where items run, waiting for a
balanced RUNNING group, the leader, a producer in the background, sanitizer reports."""
import datetime
import re
import sys
import threading

from ferrytest import http, produce, wait_until

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def report(msg):
    """A measurement line for the test output."""
    print(f"\n  {msg}", file=sys.stderr, flush=True)


def log_ms(line):
    """Wall-clock ms of a worker log line ("2026-11-25T10:05:19.417Z INFO ...")."""
    ts = datetime.datetime.strptime(line[:24], "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(ts.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def log_lines(w, needle, since_ms=None):
    """(ms, line) of every line of w's log (all its incarnations) containing needle, logged at
    or after since_ms."""
    out = []
    with open(w.logpath, errors="replace") as f:
        for line in f:
            if needle in line and re.match(r"\d{4}-\d\d-\d\dT", line):
                ms = log_ms(line)
                if since_ms is None or ms >= since_ms:
                    out.append((ms, line.rstrip("\n")))
    return out


def wid(w):
    """The worker id a worker started by ferrytest reports (its advertised host:port)."""
    return f"127.0.0.1:{w.port}"


class GroupTestMixin:
    """For unittest.TestCase subclasses; CONN names the connector they watch."""
    CONN = "connect-test"

    def status(self, w):
        st, body, _, _ = http("GET", f"{w.url}/connectors/{self.CONN}/status", timeout=5)
        return body if st == 200 else None

    @staticmethod
    def placement(s):
        """{item: worker_id} of a status body; item -1 is the connector instance."""
        p = {-1: s["connector"]["worker_id"]}
        for t in s["tasks"]:
            p[t["id"]] = t["worker_id"]
        return p

    def wait_running(self, w, ntasks, workers, timeout=30, what=""):
        """Waits until w's status shows the connector and ntasks tasks RUNNING, all on `workers`
        (each of them with some item), with item counts differing by at most one. Returns the
        status."""
        ids = {wid(x) for x in workers}

        def ok():
            s = self.status(w)
            if not s or len(s.get("tasks", [])) != ntasks:
                return None
            states = [s["connector"]["state"]] + [t["state"] for t in s["tasks"]]
            if any(st != "RUNNING" for st in states):
                return None
            p = self.placement(s)
            if not set(p.values()) <= ids:
                return None
            counts = [list(p.values()).count(i) for i in ids]
            return s if min(counts) >= 1 and max(counts) - min(counts) <= 1 else None
        return wait_until(ok, timeout, interval=0.1,
                          what=f"{ntasks} tasks RUNNING and balanced over workers "
                               f"{sorted(x.idx for x in workers)} (seen by worker {w.idx}) {what}")

    def leader(self, c):
        """The live worker that most recently logged "is now the leader"."""
        best = None
        for w in c.workers:
            if not w.alive():
                continue
            lines = log_lines(w, "is now the leader")
            if lines and (best is None or lines[-1][0] > best[0]):
                best = (lines[-1][0], w)
        self.assertIsNotNone(best, "no live worker logged 'is now the leader'")
        return best[1]

    def produce_in_background(self, c, n, rate):
        """Produces n records to `connect` at `rate`/s in a thread. Returns join(), which waits
        and re-raises a failure; join.thread is the thread."""
        errors = []

        def run():
            try:
                produce(c.src.bootstrap, "connect", n, size=100, rate=rate, timeout_ms=120000)
            except BaseException as e:     # noqa: BLE001 - re-raised by join()
                errors.append(e)
        th = threading.Thread(target=run, daemon=True)
        th.start()

        def join():
            th.join(120)
            self.assertFalse(th.is_alive(), "the background producer did not finish")
            if errors:
                raise errors[0]
        join.thread = th
        return join

    def check_sanitizers(self, c):
        for w in c.workers:
            with open(w.logpath, errors="replace") as f:
                bad = [line.rstrip() for line in f if any(m in line for m in SANITIZER_MARKS)]
            self.assertEqual(bad, [], f"worker {w.idx} reported sanitizer errors:\n{w.log_tail(80)}")
