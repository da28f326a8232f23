"""test_hostile_rest: hostile and malformed REST input against a leader and a follower.

A two-worker group (so one leads and one forwards writes to it). Every request is written by
hand on a raw socket, because http.client refuses much of what is sent here (raw bytes and
spaces in paths, bad framing, wrong Content-Length). The corpus (~790 requests, built
deterministically) covers: truncated and mutated JSON, nesting 100,000 deep, huge numbers and
strings, invalid UTF-8 (in bodies, paths and queries), bodies over the limit, missing or wrong
Content-Type, unknown methods and paths, connector names with slashes, dots, unicode, empty,
very long, wrong JSON types for config values, and topic.regex values that glibc's regcomp()
would expand without bound.

  a. each worker gets the corpus twice; every answer is a 4xx whose body is Kafka Connect's
     {"error_code": <the status>, "message": <string>} -- except the framing errors h2o
     answers itself before ferry sees a request (H2O_ANSWERS below, docs/TESTING.md); the
     follower answers every request as the leader does; nothing is created; VmRSS growth
     over the second round stays under RSS_GROWTH_KB
  b. slow partial requests (half a request, then silence; a byte per second) do not block
     other clients and are closed by h2o's 10 s request timeout
  c. 200 concurrent connections, half idle and half sending bad requests: all answered,
     and a new client is answered meanwhile
  z. afterwards both workers are alive, /health is 200, a connector can be created through
     the follower, read on both and deleted; SIGTERM then exits 0 with no sanitizer report

    FERRY_BUILD=/tmp/build-asan python3 tests/integration/test_hostile_rest.py -v
"""
import json
import os
import random
import socket
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ClusterTestCase, build_dir, http, seed_connector,  # noqa: E402
                       src_dir, wait_until)

os.environ.setdefault("LSAN_OPTIONS",
                      "suppressions=" + os.path.join(src_dir(), "tests", "lsan.supp"))

RSS_GROWTH_KB = 8 * 1024
MAX_BODY = 1024 * 1024            # REST_MAX_BODY in rest/rest.h
H2O_MAX_ENTITY = 8 * 1024 * 1024  # config.max_request_entity_size in worker/main.c
H2O_REQ_TIMEOUT = 10              # h2o's http1 request timeout (H2O_DEFAULT_HTTP1_REQ_TIMEOUT), s
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# Answers that h2o (libh2o 2.2.5, lib/http1.c) gives itself, before any handler runs, with a
# text/plain body: the request never reaches rest.c, so it cannot be answered in JSON there.
# Kafka Connect's Jetty answers the same framing errors with its own non-JSON pages.
H2O_ANSWERS = {
    "bad-request": (400, b"Bad Request"),          # unparsable request head, > 100 headers,
                                                   # or a head over 408 KiB (written raw)
    "content-length": (400, b"broken content-length header"),
    "transfer-encoding": (400, b"unknown transfer-encoding"),
    "chunked": (400, b"broken chunked-encoding"),
    "too-large": (413, b"request entity is too large"),   # Content-Length > 8 MiB
    "expect": (417, b"unknown expectation"),       # Expect: other than 100-continue
}


# ------------------------------------------------------------------ raw HTTP

def _b(s):
    return s.encode() if isinstance(s, str) else s


def request(method, path, body=None, ctype="application/json", headers=(), length=None):
    """One HTTP/1.1 request as bytes. `path` and `body` may be str or bytes and are sent as
    they are; Connection: close is always added, Content-Length when there is a body."""
    lines = [_b(method) + b" " + _b(path) + b" HTTP/1.1", b"Host: 127.0.0.1"]
    if ctype is not None and body is not None:
        lines.append(b"Content-Type: " + _b(ctype))
    if length is not None or body is not None:
        n = len(_b(body)) if length is None else length
        lines.append(b"Content-Length: " + str(n).encode())
    lines += [_b(h) for h in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (_b(body) if body is not None else b"")


def read_all(sock, timeout):
    """Reads until EOF; returns the bytes (raises socket.timeout when `timeout` s pass)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        d = sock.recv(65536)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


def parse_response(data):
    """(status, lower-cased headers, body) of the last response in `data` (skips 100 Continue)."""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete response: {data[:300]!r}")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        if status != 100:
            break
        data = rest
    if "content-length" not in hdrs:
        raise AssertionError(f"answer without Content-Length: {data[:300]!r}")
    return status, hdrs, rest[:int(hdrs["content-length"])]


def exchange(port, data, timeout=30):
    """Sends `data` on a new connection and returns (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server may answer and close before it has read everything
        return parse_response(read_all(s, timeout))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# ------------------------------------------------------------------ the corpus

def enc(name):
    return urllib.parse.quote(name, safe="")


def bad_config(name="hostile", **extra):
    """A create body the connector refuses twice (tasks.max=0, offset.start=never), so that a
    one-byte mutation which stays well-formed still gets a 400 and never creates anything."""
    cfg = seed_connector("127.0.0.1:1", name=name, **{"tasks.max": "0", "offset.start": "never"})
    cfg["config"].update(extra)
    return cfg


def build_corpus():
    """[(label, request bytes, expected)]: expected is a status, a tuple of statuses, or a
    key of H2O_ANSWERS."""
    rnd = random.Random(7)
    cases = []

    def add(label, data, expected=400):
        cases.append((label, data, expected))

    def post(body, **kw):
        return request("POST", "/connectors", body, **kw)

    good = json.dumps(bad_config())

    # 1. truncated JSON: every strict prefix of an object is malformed
    for cut in range(1, len(good), 3):
        add(f"truncated at {cut}", post(good[:cut]))
    # 2. mutated JSON: one byte replaced (4xx either way: malformed, or refused by validation)
    for i in range(100):
        pos = rnd.randrange(len(good))
        ch = rnd.choice([b"\x00", b"\xff", b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\n"])
        body = good.encode()[:pos] + ch + good.encode()[pos + 1:]
        add(f"mutation {i}: byte {pos} -> {ch!r}", post(body), (400, 404, 409))
    # 3. not JSON at all
    for body in ("", " ", "null", "nul", "{", "}", "[", "]", "{]", "[}", '{"a"}', '{"a":}',
                 '{"a":1,}', "[1,]", "'single'", '{"name":"x"', "\ufeff{}", "{} {}", "{}garbage",
                 "NaN", "Infinity", "-", "0x10", "01", "+1", "/* c */ {}", "\x00", "\x00{}"):
        add(f"not JSON {body[:12]!r}", post(body))
    # 4. deep nesting (jansson stops at 2048 levels)
    for label, body in (("[ x100000", "[" * 100000), ("{\"a\": x50000", '{"a":' * 50000),
                        ("[] x2049 deep", "[" * 2049 + "]" * 2049),
                        ("[] x2000 deep", "[" * 2000 + "]" * 2000),
                        ("config value 3000 deep",
                         '{"name":"x","config":{"k":' + "[" * 3000 + "]" * 3000 + "}}"),
                        ("config value 100 deep",
                         '{"name":"x","config":{"k":' + "[" * 100 + "]" * 100 + "}}"),
                        ("name 100000 deep", '{"name":' + "{" * 100000)):
        add(f"nesting {label}", post(body))
    # 5. huge and odd numbers
    for num in ("1e999", "-1e999", "1e-999", "9" * 400, "-" + "9" * 400, str(2 ** 63),
                str(2 ** 64), str(-2 ** 63 - 1), "0.1", "-0", "1E400", "4.9e-324",
                "1" + "0" * 5000):
        add(f"number {num[:20]} as tasks.max",
            post('{"name":"hostile","config":{"connector.class":"EMRReplicatorSource",'
                 '"tasks.max":' + num + "}}"))
        add(f"number {num[:20]} as name", post('{"name":' + num + ',"config":{}}'))
    # 6. huge strings and many keys
    add("name 250 chars", post(json.dumps(bad_config("n" * 250))))
    add("name 100k chars", post(json.dumps(bad_config("n" * 100000))))
    add("value 900 KB", post(json.dumps(bad_config(pad="v" * 900000))))
    add("key 500 KB", post(json.dumps(bad_config(**{"k" * 500000: "v"}))))
    add("20000 keys", post(json.dumps(bad_config(**{f"k{i}": "v" for i in range(20000)}))))
    add("20000 values in an array",
        post('{"name":"x","config":{"k":[' + ",".join(["1"] * 20000) + "]}}"))
    add("escapes 100k", post('{"name":"' + "\\u00e9" * 100000 + '","config":{}}'))
    for key in ("p", "pa"):   # the error message quotes the config, cut at 2047 bytes:
        add(f"no connector.class, 2000 x 'é' in {key!r}",   # one of these cuts an 'é' in two
            post(json.dumps({"name": "x", "config": {key: "é" * 2000}}, ensure_ascii=False)))
    for rx in ("a" + "+" * 40, "(a?){30000}", "(" * 100000 + ")" * 100000):  # glibc's regcomp
        add(f"topic.regex {rx[:12]}...", post(json.dumps(bad_config(**{"topic.regex": rx}))))
    add("body just over the limit",
        post(json.dumps(bad_config(pad="p" * MAX_BODY))), 413)
    add("body 4 MiB", post(b" " * (4 * MAX_BODY) + b"{}"), 413)
    # 7. invalid UTF-8 and NUL, in bodies
    for label, raw in (("0xff", b"\xff"), ("0xc0 0xaf overlong", b"\xc0\xaf"),
                       ("0xe0 0x80 0x80 overlong", b"\xe0\x80\x80"),
                       ("surrogate 0xed 0xa0 0x80", b"\xed\xa0\x80"),
                       ("above U+10FFFF", b"\xf4\x90\x80\x80"), ("lone continuation", b"\x80"),
                       ("truncated sequence", b"\xe2\x98"),
                       ("0xfe 0xfe 0xff 0xff", b"\xfe\xfe\xff\xff"),
                       ("escaped lone surrogate", b"\\ud800"),
                       ("escaped low surrogate", b"\\udc00"),
                       ("escaped NUL", b"\\u0000"), ("raw NUL", b"\x00"),
                       ("raw control char", b"\x01"), ("raw newline", b"\n")):
        add(f"UTF-8 {label} in name", post(b'{"name":"a' + raw + b'b","config":{}}'))
        add(f"UTF-8 {label} in value",
            post(b'{"name":"x","config":{"connector.class":"' + raw + b'"}}'))
        add(f"UTF-8 {label} in key", post(b'{"name":"x","config":{"k' + raw + b'":"v"}}'))
    # 8. Content-Type
    body = json.dumps(bad_config())
    for ct, st in ((None, 415), ("text/plain", 415), ("application/jsonx", 415),
                   ("application/x-www-form-urlencoded", 415), ("", 415), ("json", 415),
                   ("application/jso", 415), ("*/*", 415), ("application/json\x7f", "bad-request"),
                   ("application/json; charset=utf-8", 400), ("APPLICATION/JSON", 400),
                   ("application/json;", 400), ("application/json ; x=y", 400)):
        add(f"Content-Type {ct!r}", post(body, ctype=ct), st)
    add("two Content-Types",
        post(body, ctype="text/plain", headers=["Content-Type: application/json"]), (400, 415))
    for path, method in (("/connectors/x/config", "PUT"), ("/connectors/x/config", "PATCH"),
                         ("/connector-plugins/EMRReplicatorSourceConnector/config/validate", "PUT"),
                         ("/admin/loggers/root", "PUT"), ("/connectors/x/offsets", "PATCH"),
                         ("/connectors/x/tasks", "POST")):
        add(f"{method} {path} without Content-Type", request(method, path, "{}", ctype=None), 415)
        add(f"{method} {path} malformed", request(method, path, "{"), 400)
        add(f"{method} {path} nested", request(method, path, "[" * 50000), 400)
        add(f"{method} {path} over the limit",
            request(method, path, "[" + " " * MAX_BODY + "]"), 413)
    # 9. unknown methods and paths
    paths = ["/", "/connectors", "/connectors/x", "/connectors/x/status", "/connector-plugins",
             "/admin/loggers", "/health", "/nosuch"]
    for m in ("FOO", "PROPFIND", "TRACE", "OPTIONS", "MKCOL", "M-SEARCH", "PATCH", "DELETE", "PUT",
              "get", "Post", "X" * 200):
        for p in paths:
            if (m, p) in (("DELETE", "/connectors/x"), ("PUT", "/admin/loggers")):
                continue    # real endpoints; answered below with bodies
            add(f"{m[:10]} {p}", request(m, p), (404, 405))
    for p in ("/nosuch", "/connectors/x/nosuch", "/connectors/x/tasks/abc/status",
              "/connectors/x/tasks/-1/status", "/connectors/x/tasks/99999999999/status",
              "/connectors/x/tasks/0/nosuch", "/connectors/x/tasks/0/status/more",
              "/a/b/c/d/e/f/g/h/i/j", "/connectors/x/topics/reset/more", "/%", "/%zz", "/%f",
              "/%FF", "/%00", "/connectors/%", "/connectors/%FF", "/connectors/%C0%AF",
              "/connectors/%ED%A0%80", "/connectors/%00", "/connectors/a%00b",
              "/connectors/%FF/status",
              "/connectors/%FF/topics/reset", "/connectors/%FF/tasks/0/status",
              "/admin/loggers/%FF", "/admin/loggers/a/b", "/connector-plugins/%FF/config",
              "/connector-plugins/x/config/validate/more", "///connectors//x//status",
              "/connectors/../connectors", "/connectors/./x", "/connectors/..%2f..%2fetc",
              "/" + "a/" * 5000, "/connectors/" + "x" * 100000, "/connectors/" + "%41" * 20000):
        add(f"GET {p[:40]}", request("GET", p), (404, 405))
    for p in (b"/connectors/\xff", b"/connectors/\xc3", b"/connectors/a\xe2\x98",
              b"/connectors/\xed\xa0\x80/status", b"/connectors/a\\b", b"/connectors/a\"b",
              b"/connectors/a{b}", b"/connectors/a<b>", b"/connectors/x/../y",
              b"/connectors/../.."):
        add(f"GET raw path {p!r}", request("GET", p), (404, 405))
        add(f"DELETE raw path {p!r}", request("DELETE", p), (404, 405))
        add(f"PUT raw path {p!r}/config",
            request("PUT", p + b"/config", json.dumps(bad_config()["config"])), (400, 404, 405))
    for q in ("forward=maybe", "%FF=1", "x=%FF", "%FF", "=", "&&&", "a=%zz", "%=%", "expand=%FF",
              "forward=%FF", "x=" + "%FF" * 1000, "&".join(f"k{i}=v" for i in range(3000))):
        add(f"GET /connectors/x?{q[:20]}", request("GET", "/connectors/x?" + q), 404)
        add(f"POST /connectors/x/restart?{q[:20]}", request("POST", "/connectors/x/restart?" + q),
            (400, 404))
    for q in ("includeTasks=%FF", "onlyFailed=%C0", "includeTasks=maybe", "includeTasks="):
        add(f"restart ?{q}", request("POST", "/connectors/x/restart?" + q), 400)
    add("plugins ?connectorsOnly=%FF", request("GET", "/connector-plugins?connectorsOnly=%FF"), 400)
    # 10. connector names
    names = ["a/b", "../x", "..", ".", "x.y.z", "/", "//", "\u2603", "\U0001F600", "\u202e", "",
             " ", "\t", "x\ny", "\x7f", "\x01", "n" * 250, "n" * 5000, "é" * 125, "%2F", "a?b",
             "a#b",
             "a b", "a+b", "\ufffd", "x\u0000y"]
    for n in names:
        add(f"create name {n[:15]!r}", post(json.dumps(bad_config(n))))
        if not n:
            continue    # "/connectors/" is the list
        add(f"GET name {n[:15]!r}", request("GET", "/connectors/" + enc(n)), (404, 405))
        add(f"PUT config name {n[:15]!r}",
            request("PUT", "/connectors/" + enc(n) + "/config",
                    json.dumps(bad_config(n)["config"])), (400, 404, 405))
        add(f"DELETE name {n[:15]!r}", request("DELETE", "/connectors/" + enc(n)), (404, 405))
    # 11. wrong JSON types
    for label, val in (("number", 5), ("float", 1.5), ("array", [1]), ("object", {"a": 1}),
                       ("null", None), ("true", True)):
        v = json.dumps(val)
        add(f"name is {label}", post('{"name":' + v + ',"config":{"connector.class":"x"}}'),
            400)
        add(f"config is {label}", post('{"name":"x","config":' + v + "}"))
        add(f"initial_state is {label}",
            post('{"name":"x","config":{"connector.class":"x"},"initial_state":' + v + "}"))
        add(f"body is {label}", post(v))
        if label in ("array", "object", "null"):
            add(f"config value is {label}",
                post('{"name":"x","config":{"tasks.max":' + v + "}}"))
            add(f"PUT config value is {label}",
                request("PUT", "/connectors/x/config", '{"tasks.max":' + v + "}"))
            add(f"validate value is {label}",
                request("PUT", "/connector-plugins/EMRReplicatorSourceConnector/config/validate",
                        '{"connector.class":"EMRReplicatorSourceConnector","tasks.max":' + v + "}"))
        add(f"logger level is {label}",
            request("PUT", "/admin/loggers/root", '{"level":' + v + "}"), (400, 404))
        add(f"task configs are {label}", request("POST", "/connectors/x/tasks", v), (400, 404))
        add(f"offsets are {label}",
            request("PATCH", "/connectors/x/offsets", '{"offsets":' + v + "}"), (400, 404))
    add("PATCH config of an unknown connector",
        request("PATCH", "/connectors/x/config", '{"a":null}'), 404)
    add("validate without class", request("PUT", "/connector-plugins/x/config/validate", "{}"), 400)
    add("validate unknown plugin",
        request("PUT", "/connector-plugins/x/config/validate", '{"connector.class":"x"}'), 404)
    add("bad log level", request("PUT", "/admin/loggers/root", '{"level":"LOUD"}'), 404)
    # 12. framing: h2o answers these itself (plain text, see H2O_ANSWERS)
    add("garbage line", b"GARBAGE\r\n\r\n", "bad-request")
    add("no HTTP version", b"GET /\r\n\r\n", "bad-request")
    add("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "bad-request")
    add("control char in path", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", "bad-request")
    add("101 headers", request("GET", "/", headers=[f"X-H{i}: v" for i in range(101)]),
        "bad-request")
    add("head over 408 KiB", request("GET", "/", headers=["X-Big: " + "b" * 420000]), "bad-request")
    add("header without colon", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", "bad-request")
    add("Content-Length abc", request("POST", "/connectors", None, length="abc"), "content-length")
    add("Content-Length -1", request("POST", "/connectors", None, length="-1"), "content-length")
    add("Content-Length 2^64", request("POST", "/connectors", None, length=str(2 ** 64)),
        "content-length")
    add("Content-Length over 8 MiB",
        request("POST", "/connectors", None, length=str(H2O_MAX_ENTITY + 1)), "too-large")
    add("Transfer-Encoding gzip", request("POST", "/connectors", None,
                                          headers=["Transfer-Encoding: gzip"]), "transfer-encoding")
    chunked = request("POST", "/connectors", None, headers=["Transfer-Encoding: chunked"])
    add("broken chunk size", chunked + b"zz\r\n{}\r\n0\r\n\r\n", "chunked")
    add("Expect: 200-ok", request("POST", "/connectors", "{}", headers=["Expect: 200-ok"]),
        "expect")
    # well-framed but unusual, answered by ferry
    add("chunked malformed JSON", request("POST", "/connectors", None, ctype=None,
                                          headers=["Content-Type: application/json",
                                                   "Transfer-Encoding: chunked"])
        + b"3\r\n{\"a\r\n0\r\n\r\n", 400)
    add("Expect: 100-continue",
        request("POST", "/connectors", "{", headers=["Expect: 100-continue"]), 400)
    add("HTTP/1.0 without Host", b"POST /connectors HTTP/1.0\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1\r\n\r\n{", 400)
    add("absolute-form target", request("GET", "http://127.0.0.1/nosuch"), 404)
    add("asterisk target", request("OPTIONS", "*"), (404, 405))
    add("GET with a body", request("GET", "/nosuch", "{" * 1000), 404)
    add("Content-Length larger than body", request("POST", "/connectors", "{}", length=1), 400)
    return cases


# ------------------------------------------------------------------ the test

class HostileRestTest(ClusterTestCase):
    cluster_args = dict(workers=2, src_topics={"connect": 2}, dst_topics={"connect.replica": 2})

    @classmethod
    def setUpClass(cls):
        # The RSS check measures ferry, not the allocators' caches: ASan keeps up to 256 MB of
        # freed blocks in quarantine (a small one still catches reuse after free), and glibc
        # raises its mmap threshold after the first large free, after which freed multi-MB
        # request buffers stay in the heap. Both are pinned for these workers.
        cls.saved_env = {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "GLIBC_TUNABLES")}
        os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [cls.saved_env["ASAN_OPTIONS"],
                                                            "quarantine_size_mb=4"]))
        os.environ["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=262144"
        super().setUpClass()
        for w in cls.cluster.workers:
            wait_until(lambda: http("GET", w.url + "/")[1].get("leader_url"), 30,
                       what=f"worker {w.idx} to know the leader")
        roles = {http("GET", w.url + "/")[1]["leader"]: w for w in cls.cluster.workers}
        cls.leader, cls.follower = roles[True], roles[False]
        # writes through the follower answer 409 until it knows the leader; wait for the first
        # write that reaches the leader's validation
        probe = json.dumps(bad_config("probe"))
        for w in (cls.leader, cls.follower):
            wait_until(lambda: exchange(w.port, request("POST", "/connectors", probe))[0] == 400,
                       30, what=f"worker {w.idx} to accept writes")
        cls.corpus = build_corpus()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for k, v in cls.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def assert_answer(self, label, answer, expected):
        status, hdrs, body = answer
        what = f"{label}: {status} {body[:300]!r}"
        if isinstance(expected, str):
            self.assertEqual((status, body), H2O_ANSWERS[expected], what)
            self.assertTrue(hdrs.get("content-type", "").startswith("text/plain"), what)
            return
        self.assertIn(status, expected if isinstance(expected, tuple) else (expected,), what)
        self.assertTrue(400 <= status < 500, what)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), what)
        js = json.loads(body)
        self.assertEqual(set(js), {"error_code", "message"}, what)
        self.assertEqual(js["error_code"], status, what)
        self.assertIsInstance(js["message"], str, what)

    def run_corpus(self, w):
        """Sends the whole corpus to worker `w`; returns the statuses, in corpus order.
        Fails listing every wrong answer; stops at the first request that gets no answer."""
        statuses, wrong = [], []
        for label, data, expected in self.corpus:
            try:
                answer = exchange(w.port, data)
            except (OSError, AssertionError) as e:
                time.sleep(1)   # a crashing worker may not have exited yet
                alive = "alive" if w.alive() else f"DEAD:\n{w.log_tail(30)}"
                raise AssertionError(f"worker {w.idx}, {label}: {e!r} (worker {alive})")
            try:
                self.assert_answer(f"worker {w.idx}, {label}", answer, expected)
            except AssertionError as e:
                wrong.append(str(e))
            statuses.append(answer[0])
        self.assertEqual(wrong, [], f"{len(wrong)} wrong answers:\n" + "\n".join(wrong[:30]))
        return statuses

    def connectors(self, w):
        st, js, raw, _ = http("GET", w.url + "/connectors")
        self.assertEqual(st, 200, raw)
        return sorted(js)

    def test_a_corpus_twice(self):
        self.assertGreaterEqual(len(self.corpus), 500)
        workers = (self.leader, self.follower)
        t0 = time.monotonic()
        statuses = {}
        for w in workers:
            statuses[w] = self.run_corpus(w)
            seen = {}
            for st in statuses[w]:
                seen[st] = seen.get(st, 0) + 1
            print(f"\n  round 1, worker {w.idx} ({'leader' if w is self.leader else 'follower'}): "
                  f"{len(self.corpus)} requests, statuses {dict(sorted(seen.items()))}",
                  file=sys.stderr)
        # the follower answers as the leader does (it forwards writes there unchanged)
        differ = [f"{label}: leader {a}, follower {b}" for (label, _, _), a, b
                  in zip(self.corpus, statuses[self.leader], statuses[self.follower]) if a != b]
        self.assertEqual(differ, [], "leader and follower answer differently")
        before = {w.idx: rss_kb(w.pid) for w in workers}
        for w in workers:
            self.run_corpus(w)
        after = {w.idx: rss_kb(w.pid) for w in workers}
        secs = time.monotonic() - t0
        asan = "ASan build, quarantine 4 MB" if self.asan_build() else "release build"
        for w in workers:
            grow = after[w.idx] - before[w.idx]
            print(f"  worker {w.idx}: VmRSS {before[w.idx]} kB before round 2, {after[w.idx]} kB "
                  f"after ({grow:+d} kB; bound {RSS_GROWTH_KB} kB; {asan})", file=sys.stderr)
            self.assertLess(grow, RSS_GROWTH_KB, f"worker {w.idx} grew by {grow} kB")
        print(f"  {4 * len(self.corpus)} requests in {secs:.1f} s", file=sys.stderr)
        for w in workers:
            self.assertEqual(self.connectors(w), [])

    @staticmethod
    def asan_build():
        with open(os.path.join(build_dir(), "ferry-worker"), "rb") as f:
            return b"__asan_init" in f.read()

    def test_b_slow_requests(self):
        """Half a request, then silence, must neither block others nor be held forever."""
        partial = [
            b"GET / HTTP/1.1\r\nHost: x\r\n",                        # head never ends
            b"POST /connectors HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"na",                     # body never ends
            b"POST /connectors HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"na",
            b"G",
        ]
        for w in (self.leader, self.follower):
            socks = []
            for i in range(40):
                s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
                s.sendall(partial[i % len(partial)])
                socks.append(s)
            drip = socket.create_connection(("127.0.0.1", w.port), timeout=5)
            t0 = time.monotonic()
            # others are served at once while those stall
            for _ in range(5):
                t = time.monotonic()
                self.assertEqual(http("GET", w.url + "/health", timeout=5)[0], 200)
                self.assertLess(time.monotonic() - t, 2.0, "a stalled client blocked the loop")
            # a client that sends one byte a second is cut off too (the timeout is per request)
            closed = {}
            deadline = t0 + H2O_REQ_TIMEOUT + 8
            dripped = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"y" * 100
            i = 0
            while time.monotonic() < deadline and len(closed) < len(socks) + 1:
                try:
                    if "drip" not in closed:
                        drip.sendall(dripped[i:i + 1])
                        i += 1
                except OSError:
                    closed["drip"] = time.monotonic() - t0
                for j, s in enumerate(socks + [drip]):
                    key = j if j < len(socks) else "drip"
                    if key in closed:
                        continue
                    s.setblocking(False)
                    try:
                        if s.recv(4096) == b"":
                            closed[key] = time.monotonic() - t0
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed[key] = time.monotonic() - t0
                time.sleep(1.0)
            for s in socks + [drip]:
                s.close()
            print(f"\n  worker {w.idx}: {len(closed)} of {len(socks) + 1} stalled connections "
                  f"closed by the server, after {min(closed.values(), default=0):.1f}-"
                  f"{max(closed.values(), default=0):.1f} s (h2o request timeout "
                  f"{H2O_REQ_TIMEOUT} s)", file=sys.stderr)
            self.assertEqual(len(closed), len(socks) + 1, f"worker {w.idx} kept stalled "
                             f"connections open past {deadline - t0:.0f} s")
            self.assertTrue(w.alive())

    def test_c_many_connections(self):
        """200 sockets at once: 100 idle, 100 sending bad requests concurrently."""
        small = [c for c in self.corpus if not isinstance(c[2], str) and len(c[1]) < 4096]
        bad = small[::len(small) // 100][:100]
        for w in (self.leader, self.follower):
            idle = [socket.create_connection(("127.0.0.1", w.port), timeout=10) for _ in range(100)]
            answers, errors = {}, []

            def one(i, label, data, expected):
                try:
                    answers[i] = (label, exchange(w.port, data), expected)
                except Exception as e:   # noqa: BLE001 (reported below)
                    errors.append(f"{label}: {e!r}")
            threads = [threading.Thread(target=one, args=(i,) + c) for i, c in enumerate(bad)]
            for t in threads:
                t.start()
            t = time.monotonic()
            self.assertEqual(http("GET", w.url + "/health", timeout=10)[0], 200)
            health_s = time.monotonic() - t
            for t in threads:
                t.join(60)
            for s in idle:
                s.close()
            self.assertEqual(errors, [])
            for label, answer, expected in answers.values():
                self.assert_answer(label, answer, expected)
            print(f"\n  worker {w.idx}: 100 idle + {len(answers)} concurrent bad requests "
                  f"answered; /health meanwhile in {health_s * 1000:.0f} ms", file=sys.stderr)
            self.assertEqual(len(answers), len(bad))

    def test_z_still_works(self):
        """Both workers survived: alive, healthy, and a normal create/read/delete works."""
        src = self.cluster.src.bootstrap
        for w in (self.leader, self.follower):
            self.assertTrue(w.alive(), w.log_tail(30))
            self.assertEqual(http("GET", w.url + "/health")[0], 200)
        body = seed_connector(src, name="after-the-storm")
        st, js, raw, _ = http("POST", self.follower.url + "/connectors", body)
        self.assertEqual(st, 201, raw)
        for w in (self.leader, self.follower):
            wait_until(lambda: http("GET", w.url + "/connectors/after-the-storm")[0] == 200, 30,
                       what=f"worker {w.idx} to see the connector")
            st, js, raw, _ = http("GET", w.url + "/connectors/after-the-storm/config")
            self.assertEqual((st, js["topic.whitelist"]), (200, "connect"), raw)
        st, _, raw, _ = http("DELETE", self.follower.url + "/connectors/after-the-storm")
        self.assertEqual(st, 204, raw)
        for w in (self.leader, self.follower):
            wait_until(lambda: self.connectors(w) == [], 30, what=f"worker {w.idx} to drop it")
        for w in (self.follower, self.leader):
            self.assertEqual(w.term(), 0, w.log_tail(20))
            with open(w.logpath, errors="replace") as f:
                text = f.read()
            for mark in SANITIZER_MARKS:
                self.assertNotIn(mark, text, w.log_tail(40))


if __name__ == "__main__":
    unittest.main(verbosity=2)
