"""GET /ui, the live cluster page, as a browser shows it: headless Chromium (Debian's
`chromium`) loads the page from worker 0 of a two-worker cluster and the test reads the DOM
after the page's scripts ran. Checked: both workers listed with exactly one leader (the one
whose GET / says so), the connector RUNNING, each task with its worker, every source
partition with lag 0 and records copied equal to the destination's count, records/s above 0
while records arrive; then worker 1 is killed with SIGKILL and the open page must mark it
unreachable while it keeps showing, and updating, the rest.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on fds 3 and 4), so one page stays open across the kill and
no WebSocket client is needed; stdlib only.

With FERRY_UI_SCREENSHOT=path the page is also saved as a 1280x900 PNG while records are
being copied (docs/ui.png was made so).
"""
import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from html.parser import HTMLParser

from ferrytest import (ClusterTestCase, count, http, log, produce, seed_connector, wait_records,
                       wait_until)

N = 20000         # records copied before the page is opened
MORE = 8000       # records produced, at RATE per second, while the page is open
RATE = 1000
CONN = "connect-test"


def high_fd(fd):
    """A copy of fd numbered 10 or above (the original is closed)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium with one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, width=1280, height=900):
        chromium = shutil.which("chromium")
        if not chromium:
            raise AssertionError("chromium not found: scripts/deps.sh installs it (Debian package chromium)")
        self.dir = tempfile.mkdtemp(prefix="ferry-ui-chromium-")
        to_chrome, self._w = os.pipe()
        self._r, from_chrome = os.pipe()
        to_chrome, from_chrome = (high_fd(to_chrome), high_fd(from_chrome))  # "3<&N N<&-" needs N > 4
        argv = ["bash", "-c", f'exec "$@" 3<&{to_chrome} {to_chrome}<&- 4>&{from_chrome} {from_chrome}>&-',
                "bash", chromium, "--headless=new", "--no-sandbox",
                "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                f"--user-data-dir={self.dir}", f"--window-size={width},{height}", "about:blank"]
        self._errlog = open(os.path.join(self.dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(argv, pass_fds=(to_chrome, from_chrome), stdin=subprocess.DEVNULL,
                                     stdout=self._errlog, stderr=subprocess.STDOUT)
        os.close(to_chrome)
        os.close(from_chrome)
        self._q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self._id = 0
        self.session = None
        self.exceptions = []  # uncaught exceptions in the page's scripts
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _reader(self):
        buf = b""
        while True:
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                self._q.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._q.put(json.loads(msg))

    def call(self, method, timeout=30, **params):
        """Sends one command (to the page once attached) and returns its result. Events are
        skipped, except the page's uncaught exceptions, which go to self.exceptions."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"chromium did not answer {method} within {timeout} s")
            if m is None:
                raise AssertionError(f"chromium exited during {method}: {self.log_tail()}")
            if m.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(m["params"]["exceptionDetails"])
            if m.get("id") == self._id:
                if "error" in m:
                    raise AssertionError(f"chromium: {method}: {m['error']}")
                return m["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        wait_until(lambda: self.eval("document.readyState") == "complete", 30, interval=0.2,
                   what=f"{url} to load")

    def html(self):
        return self.eval("document.documentElement.outerHTML")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        log(f"screenshot saved to {path}")

    def log_tail(self):
        with open(os.path.join(self.dir, "chromium.log"), "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def close(self):
        try:
            if self.proc.poll() is None:
                self.session = None
                self.call("Browser.close", timeout=5)
            self.proc.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._errlog.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Page(HTMLParser):
    """What the page shows: `tables[id]` is a list of body rows, each {"data": the row's
    data-* attributes, "class": its class, "cells": {first class word but 'num': text}};
    `summary` is the text of #summary, `polls` the body's data-polls."""

    def __init__(self, html):
        super().__init__()
        self.tables, self.summary, self.polls = {}, "", 0
        self._table = self._row = self._cell = None
        self._in_summary = self._in_body = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.polls = int(a.get("data-polls", 0))
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = {"data": {k[5:]: v for k, v in a.items() if k.startswith("data-")},
                         "class": a.get("class") or "", "cells": {}}
        elif tag in ("td", "th") and self._row is not None:
            words = [w for w in (a.get("class") or "").split() if w != "num"]
            self._cell = words[0] if words else f"col{len(self._row['cells'])}"
            self._row["cells"][self._cell] = ""
        elif a.get("id") == "summary":
            self._in_summary = True

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "p":
            self._in_summary = False

    def handle_data(self, data):
        if self._cell is not None:
            self._row["cells"][self._cell] += data
        elif self._in_summary:
            self.summary += data

    def rows(self, table):
        return [r for r in self.tables.get(table, []) if "empty" not in r["class"].split()]


def number(text):
    """A number as the page prints it ("20,000"), None for "–"."""
    text = text.replace(",", "").strip()
    return None if text in ("", "–") else float(text)


class UiTest(ClusterTestCase):
    cluster_args = dict(workers=2, src_topics={"connect": 4}, dst_topics={"connect.replica": 4})

    def page(self, browser):
        return Page(browser.html())

    def root(self, w):
        st, body, raw, _ = http("GET", w.url + "/")
        self.assertEqual(st, 200, raw)
        return body

    def test_page_and_headers(self):
        c = self.cluster
        st, _, raw, hdrs = http("GET", c.url + "/ui")
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
        html = raw.decode()
        self.assertTrue(html.startswith("<!doctype html>"))
        for tid in ("workers", "connectors", "tasks", "partitions"):
            self.assertIn(f'<table id="{tid}">', html)
        self.assertNotRegex(html, r"\b(src|href)\s*=", "the page loads nothing from elsewhere")
        self.assertEqual(http("GET", c.url + "/ui/")[0], 200)
        self.assertEqual(http("POST", c.url + "/ui", raw="")[0], 405)
        # CORS: the page reads GET / and GET /metrics of other workers, and nothing else
        for path in ("/", "/metrics"):
            self.assertEqual(http("GET", c.url + path)[3].get("access-control-allow-origin"), "*", path)
        for path in ("/connectors", "/health", "/ui", "/connectors/none/status"):
            self.assertIsNone(http("GET", c.url + path)[3].get("access-control-allow-origin"), path)

    def test_live_page(self):
        c = self.cluster
        produce(c.src.bootstrap, "connect", N)
        st, _, raw, _ = http("POST", c.url + "/connectors", seed_connector(c.src.bootstrap, **{"tasks.max": "2"}))
        self.assertEqual(st, 201, raw)
        self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", N))
        ids = {w.idx: self.root(w)["worker_id"] for w in c.workers}
        leaders = [ids[w.idx] for w in c.workers if self.root(w)["leader"]]
        self.assertEqual(len(leaders), 1)

        def per_partition():
            return {p["partition"]: p["high"] - p["low"]
                    for p in count(c.dst.bootstrap, "connect.replica")["per_partition"]}

        browser = Browser()
        try:
            browser.open(c.workers[0].url + "/ui")

            # 1. after the copy: workers, leader, connector, tasks, partitions
            want = per_partition()
            self.assertEqual(sum(want.values()), N)
            page = wait_until(lambda: self.copied(browser, ids, want), 30, interval=0.5,
                              what=f"the page to show the copy done ({want} per partition)")
            workers = {r["data"]["worker"]: r for r in page.rows("workers")}
            self.assertEqual(sorted(workers), sorted(ids.values()))
            shown_leaders = [w for w, r in workers.items() if r["data"]["role"] == "leader"]
            self.assertEqual(shown_leaders, leaders, "exactly one leader: the one whose GET / says so")
            self.assertIn("Leader: " + leaders[0], page.summary)
            status = http("GET", c.url + f"/connectors/{CONN}/status")[1]
            tasks = {int(r["data"]["task"]): r["data"]["worker"] for r in page.rows("tasks")}
            self.assertEqual(tasks, {t["id"]: t["worker_id"] for t in status["tasks"]})
            self.assertEqual(sorted(tasks.values()), sorted(ids.values()), "one task per worker")
            log(f"page after the copy: leader {leaders[0]}, tasks {tasks}")

            # 2. records arriving: records/s above 0 somewhere, then everything copied again
            producer = threading.Thread(target=produce, args=(c.src.bootstrap, "connect", MORE),
                                        kwargs=dict(start=N, rate=RATE))
            producer.start()
            try:
                wait_until(lambda: (number(self.connector_row(self.page(browser))["cells"]["rate"])
                                    or 0) > 0, 30, interval=0.5, what="records/s above 0")
                if os.environ.get("FERRY_UI_SCREENSHOT"):
                    time.sleep(2.5)  # one more update, so that every rate is shown
                    browser.screenshot(os.environ["FERRY_UI_SCREENSHOT"])
            finally:
                producer.join()
            self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", N + MORE))
            want = per_partition()
            wait_until(lambda: self.copied(browser, ids, want), 30, interval=0.5,
                       what=f"the page to show {N + MORE} copied ({want})")

            # 3. worker 1 dies: marked unreachable at once, the rest still shown
            victim, served = c.workers[1], c.workers[0]
            victim.kill9()
            t0 = time.monotonic()

            def victim_down():
                p = self.page(browser)
                rows = {r["data"]["worker"]: r for r in p.rows("workers")}
                return p if rows[ids[1]]["data"]["status"] == "unreachable" else None
            page = wait_until(victim_down, 10, interval=0.25, what="worker 1 shown unreachable")
            log(f"worker 1 shown unreachable {time.monotonic() - t0:.1f} s after the kill")
            rows = {r["data"]["worker"]: r for r in page.rows("workers")}
            self.assertEqual(sorted(rows), sorted(ids.values()), "the dead worker stays listed")
            self.assertNotEqual(rows[ids[1]]["data"]["role"], "leader")
            self.assertEqual(rows[ids[0]]["data"]["status"], "up")
            self.assertIn("1 unreachable", page.summary)
            self.assertEqual(self.connector_row(page)["data"]["state"], "RUNNING")
            self.assertEqual(len(page.rows("tasks")), 2)
            self.assertTrue(page.rows("partitions"), "worker 0's partitions are still shown")
            self.assertTrue(all(r["data"]["worker"] == ids[0] for r in page.rows("partitions")))

            # ... and keeps updating: worker 0 leads, runs both tasks and reports all 4 partitions
            def failed_over():
                p = self.page(browser)
                rows = {r["data"]["worker"]: r for r in p.rows("workers")}
                tasks = {r["data"]["worker"] for r in p.rows("tasks")
                         if r["data"]["state"] == "RUNNING"}
                parts = {int(r["data"]["partition"]) for r in p.rows("partitions")
                         if r["data"]["worker"] == ids[0]}
                ok = (rows[ids[0]]["data"]["role"] == "leader" and tasks == {ids[0]} and
                      len(p.rows("tasks")) == 2 and parts == set(want) and
                      rows[ids[1]]["data"]["status"] == "unreachable")
                return p if ok else None
            wait_until(failed_over, 60, interval=0.5,
                       what="the page to show worker 0 leading and running both tasks")
            self.assertEqual(browser.exceptions, [], "uncaught exceptions in the page")
            log("page after the kill: worker 1 unreachable, worker 0 leads and runs both tasks")
        finally:
            browser.close()

    def connector_row(self, page):
        rows = [r for r in page.rows("connectors") if r["data"]["connector"] == CONN]
        self.assertEqual(len(rows), 1, page.tables.get("connectors"))
        return rows[0]

    def copied(self, browser, ids, want):
        """The page if it shows both workers up, the connector and both tasks RUNNING, and each
        source partition once, with lag 0 and `want[partition]` records copied; else None."""
        p = self.page(browser)
        workers = {r["data"]["worker"]: r["data"]["status"] for r in p.rows("workers")}
        conns = {r["data"]["connector"]: r["data"]["state"] for r in p.rows("connectors")}
        tasks = [r["data"]["state"] for r in p.rows("tasks")]
        parts = {}
        for r in p.rows("partitions"):
            self.assertEqual((r["data"]["connector"], r["data"]["topic"]), (CONN, "connect"))
            parts.setdefault(int(r["data"]["partition"]), []).append(
                (number(r["cells"]["records"]), number(r["cells"]["lag"])))
        ok = (workers == {i: "up" for i in ids.values()} and conns == {CONN: "RUNNING"} and
              tasks == ["RUNNING", "RUNNING"] and
              parts == {q: [(float(n), 0.0)] for q, n in want.items()})
        return p if ok else None


if __name__ == "__main__":
    unittest.main(verbosity=2)
