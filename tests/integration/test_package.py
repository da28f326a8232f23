"""The Debian package (cmake/Packaging.cmake): built with `cpack -G DEB` from $FERRY_BUILD,
inspected with dpkg-deb, installed into a throwaway root, run from there against a live
local cluster, upgraded over itself, removed and purged.

How it installs without touching this machine: `dpkg --root=ROOT --force-script-chrootless`.
dpkg unpacks into ROOT, keeps its database in ROOT/var/lib/dpkg, and runs the package's own
postinst/prerm/postrm from this system (not chrooted: ROOT has no shell) with DPKG_ROOT=ROOT,
which the scripts honour: `useradd --prefix ROOT`, every path under $DPKG_ROOT, no
systemctl. This is dpkg's mechanism for installing into another root (mmdebstrap uses it),
so the scripts tested are the ones a node runs. What differs from a real node:

- ROOT's dpkg database knows none of the libraries, so dpkg runs with --force-depends.
  Instead, every Depends relation is checked (read-only) against this machine's dpkg
  database, whose libraries the installed binary loads when the test runs it.
- ROOT/etc/passwd, group, shadow and gshadow start with root only.
- systemd is not involved: under DPKG_ROOT the scripts leave it alone, so the
  daemon-reload/try-restart/stop branches only run on real nodes.
- dpkg --root chowns files and useradd writes ROOT/etc/shadow, which needs root. Without
  root the package is unpacked with `dpkg-deb -x` instead and the maintainer-script checks
  are skipped (the test says so).

The test also asserts that this machine has no /etc/ferry, ferry.service or `ferry` user
afterwards unless it had them before.
"""
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from ferrytest import build_dir, free_port, http, log, src_dir, tail, wait_until

sys.path.insert(0, os.path.join(src_dir(), "deploy"))
from ferrycluster import LocalCluster  # noqa: E402

CONF = "etc/ferry/connect-distributed.properties"
UNIT = "lib/systemd/system/ferry.service"
MAN = "usr/share/man/man1/ferry-worker.1.gz"
# path in the package -> mode dpkg-deb -c must show
EXPECTED_FILES = {
    "usr/bin/ferry-worker": "-rwxr-xr-x",
    CONF: "-rw-r-----",
    UNIT: "-rw-r--r--",
    MAN: "-rw-r--r--",
    "usr/share/doc/ferry/README.md": "-rw-r--r--",
    "usr/share/doc/ferry/docs/OPERATIONS.md": "-rw-r--r--",
    "usr/share/doc/ferry/docs/ui.png": "-rw-r--r--",          # shown by OPERATIONS.md
    "usr/share/doc/ferry/copyright": "-rw-r--r--",            # Debian's copyright file
    "usr/share/doc/ferry/LICENSE": "-rw-r--r--",
    "usr/share/doc/ferry/CHANGELOG.md": "-rw-r--r--",
}
# libraries ferry-worker links (dpkg-shlibdeps must find each)
EXPECTED_DEPENDS = ("libc6", "librdkafka1", "libzookeeper-mt2", "libjansson4", "libcurl4",
                    "libh2o-evloop")


def linked_jemalloc():
    """("libjemalloc2",) when the built ferry-worker links jemalloc (FERRY_JEMALLOC), else ()."""
    _, dyn, _ = run(["readelf", "-d", os.path.join(build_dir(), "ferry-worker")])
    return ("libjemalloc2",) if "libjemalloc.so" in dyn else ()


def run(argv, timeout=300, check=True, env=None):
    """Runs a command; returns (exit code, stdout, stderr). check: fail the test on rc != 0."""
    r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} failed with {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r.returncode, r.stdout, r.stderr


def host_state():
    """What the package would create on this machine if it leaked out of its root."""
    user = subprocess.run(["getent", "passwd", "ferry"], stdout=subprocess.DEVNULL).returncode == 0
    paths = ("/etc/ferry", "/lib/systemd/system/ferry.service", "/usr/bin/ferry-worker")
    return dict({p: os.path.exists(p) for p in paths}, **{"user ferry": user})


def account(root, db, name):
    """The fields of `name` in ROOT/etc/<db> (passwd or group), or None."""
    with open(os.path.join(root, "etc", db)) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return fields
    return None


def seed_root(root):
    """An empty dpkg database and root-only account files: what dpkg --root and useradd
    --prefix need to find."""
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    for name, text, mode in (("passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
                             ("group", "root:x:0:\n", 0o644),
                             ("shadow", "root:*:19000:0:99999:7:::\n", 0o640),
                             ("gshadow", "root:*::\n", 0o640)):
        path = os.path.join(root, "etc", name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)


def dpkg(root, *args):
    """dpkg acting on ROOT only: its database, its log, maintainer scripts with DPKG_ROOT."""
    return run(["dpkg", f"--root={root}", f"--log={root}/var/log/dpkg.log",
                "--force-script-chrootless", "--force-depends", *args])


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ferry-package-")
        cls.host_before = host_state()
        cpack_config = os.path.join(build_dir(), "CPackConfig.cmake")
        if not os.path.isfile(cpack_config):
            raise AssertionError(f"{cpack_config} not found: configure the build with cmake first")
        out = os.path.join(cls.dir, "out")
        log(f"cpack -G DEB from {build_dir()}")
        run(["cpack", "--config", cpack_config, "-G", "DEB", "-B", out], timeout=600)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(out, debs[0])
        log(f"built {debs[0]}: {os.path.getsize(cls.deb)} bytes")

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("FERRY_KEEP"):
            log(f"kept {cls.dir}")
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def field(self, name):
        _, out, _ = run(["dpkg-deb", "-f", self.deb, name])
        return out.strip()

    def test_a_contents(self):
        """Files and modes, the conffile, the control fields, Depends satisfied by this
        machine, the maintainer scripts, and the files' contents against the source tree."""
        _, listing, _ = run(["dpkg-deb", "-c", self.deb])
        files = {}
        for line in listing.splitlines():
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            path = path.removeprefix("./").split(" -> ")[0]
            files[path] = mode
            self.assertEqual(owner, "root/root", line)
            self.assertRegex(path, r"^(etc|lib|usr)(/|$)", line)
            self.assertNotIn("usr/local", path)
        for path, mode in EXPECTED_FILES.items():
            self.assertEqual(files.get(path), mode, f"{path} in\n{listing}")

        _, conffiles, _ = run(["dpkg-deb", "-I", self.deb, "conffiles"])
        self.assertEqual(conffiles.split(), ["/" + CONF])
        _, version, _ = run([os.path.join(build_dir(), "ferry-worker"), "--version"])
        self.assertEqual(self.field("Package"), "ferry")
        self.assertEqual(self.field("Version"), version.split()[1])   # "ferry-worker 0.1.0 ..."
        _, arch, _ = run(["dpkg", "--print-architecture"])
        self.assertEqual(self.field("Architecture"), arch.strip())
        self.assertTrue(self.field("Maintainer"))
        self.check_depends(self.field("Depends"))

        ctrl = os.path.join(self.dir, "control")
        run(["dpkg-deb", "-e", self.deb, ctrl])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctrl, script)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o755, script)
            run(["sh", "-n", path])

        x = os.path.join(self.dir, "extracted")
        run(["dpkg-deb", "-x", self.deb, x])
        for packaged, source in ((CONF, "deploy/connect-distributed.properties"),
                                 (UNIT, "deploy/ferry.service"),
                                 ("usr/share/doc/ferry/docs/OPERATIONS.md", "docs/OPERATIONS.md"),
                                 ("usr/share/doc/ferry/docs/ui.png", "docs/ui.png"),
                                 ("usr/share/doc/ferry/copyright", "deploy/debian/copyright")):
            with open(os.path.join(x, packaged), "rb") as a, \
                    open(os.path.join(src_dir(), source), "rb") as b:
                self.assertEqual(a.read(), b.read(), packaged)
        with gzip.open(os.path.join(x, MAN)) as a, \
                open(os.path.join(src_dir(), "docs/ferry-worker.1"), "rb") as b:
            self.assertEqual(a.read(), b.read(), MAN)

    def check_depends(self, depends):
        """Every relation names a package installed here in a version that satisfies it."""
        log(f"Depends: {depends}")
        names = []
        for relation in depends.split(","):
            alternatives = [a.strip() for a in relation.split("|")]
            ok = []
            for alt in alternatives:
                m = re.fullmatch(r"([a-z0-9][a-z0-9.+-]*)(?::\S+)?(?:\s*\((\S+)\s+([^)\s]+)\))?",
                                 alt)
                self.assertTrue(m, f"cannot parse {alt!r} in {depends}")
                name, op, want = m.groups()
                names.append(name)
                rc, have, _ = run(["dpkg-query", "-W", "-f=${Version}", name], check=False)
                if rc != 0 or not have:
                    continue
                if op is None or run(["dpkg", "--compare-versions", have, op, want],
                                     check=False)[0] == 0:
                    ok.append(alt)
            self.assertTrue(ok, f"no installed package satisfies {relation.strip()!r}")
        for lib in EXPECTED_DEPENDS + linked_jemalloc():
            self.assertTrue(any(n.startswith(lib) for n in names), f"{lib} not in {depends}")

    def test_b_install_run_upgrade_purge(self):
        """Install into a temp root (postinst creates the ferry user and lets it read the
        config), run the installed binary on the installed config pointed at a live cluster
        until GET /health is 200, render the installed man page, stop with SIGTERM (exit 0),
        reinstall over a locally edited config (kept), remove (config kept) and purge."""
        root = os.path.join(self.dir, "root")
        seed_root(root)
        as_root = os.geteuid() == 0
        if as_root:
            log(f"dpkg --root={root} --install {os.path.basename(self.deb)}")
            _, out, _ = dpkg(root, "--install", self.deb)
            self.assertIn("ferry-worker --check", out)       # the postinst's hint
            self.check_postinst(root)
        else:
            log("not root: unpacking with dpkg-deb -x; maintainer scripts NOT tested")
            run(["dpkg-deb", "-x", self.deb, root])
        binary = os.path.join(root, "usr/bin/ferry-worker")

        self.run_installed(root, binary)
        self.check_man(os.path.join(root, MAN))

        if as_root:
            conf = os.path.join(root, CONF)
            with open(conf, "a") as f:
                f.write("# edited on this node\n")
            os.chmod(conf, 0o600)
            log("installing again over the edited config, then remove and purge")
            _, out, _ = dpkg(root, "--install", self.deb)    # same version: an upgrade for postinst
            self.assertNotIn("ferry-worker --check", out)    # the first-install hint only
            with open(conf) as f:
                self.assertTrue(f.read().endswith("# edited on this node\n"))
            self.assertEqual(os.stat(conf).st_mode & 0o777, 0o600)   # the operator's mode kept

            dpkg(root, "--remove", "ferry")
            self.assertFalse(os.path.exists(binary))
            self.assertTrue(os.path.isfile(conf))            # conffiles survive remove
            dpkg(root, "--purge", "ferry")
            self.assertFalse(os.path.exists(os.path.join(root, "etc/ferry")))
            self.assertIsNotNone(account(root, "passwd", "ferry"))   # system users are kept
            rc, _, _ = run(["dpkg", f"--root={root}", "--status", "ferry"], check=False)
            self.assertNotEqual(rc, 0)
        self.assertEqual(host_state(), self.host_before, "the package leaked onto this machine")

    def check_postinst(self, root):
        _, status, _ = run(["dpkg", f"--root={root}", "--status", "ferry"])
        self.assertIn("Status: install ok installed", status)
        user = account(root, "passwd", "ferry")
        group = account(root, "group", "ferry")
        self.assertIsNotNone(user, "postinst did not create the ferry user")
        self.assertIsNotNone(group)
        self.assertLess(int(user[2]), 1000, f"not a system user: {user}")
        self.assertEqual(user[3], group[2])
        self.assertEqual(user[6], "/usr/sbin/nologin")
        st = os.stat(os.path.join(root, CONF))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, int(group[2]), 0o640))
        with open(os.path.join(root, UNIT)) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/ferry-worker /etc/ferry/connect-distributed.properties",
                      unit)
        self.assertIn("User=ferry", unit)

    def run_installed(self, root, binary):
        """The installed config with only the addresses changed, checked with --check, then
        served until /health is 200; SIGTERM must give exit code 0."""
        cluster = LocalCluster.create(os.path.join(self.dir, "cluster"), workers=0).start()
        try:
            port = free_port()
            with open(os.path.join(root, CONF)) as f:
                text = f.read()
            for key, value in (("bootstrap.servers", cluster.dst_bootstrap),
                               ("zookeeper.connect", cluster.zk_connect),
                               ("listeners", f"http://127.0.0.1:{port}")):
                text, n = re.subn(rf"(?m)^{re.escape(key)}=.*$", f"{key}={value}", text)
                self.assertEqual(n, 1, key)
            cfg = os.path.join(self.dir, "node.properties")
            with open(cfg, "w") as f:
                f.write(text)

            _, out, _ = run([binary, "--check", cfg])
            self.assertIn(f"bootstrap.servers                  {cluster.dst_bootstrap}", out)
            self.assertIn(f"http://127.0.0.1:{port}", out)

            logpath = os.path.join(self.dir, "installed-worker.log")
            with open(logpath, "wb") as logf:
                p = subprocess.Popen([binary, cfg], stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT)
            try:
                def healthy():
                    if p.poll() is not None:
                        raise AssertionError(f"installed worker exited with {p.returncode}:\n"
                                             f"{tail(logpath)}")
                    return http("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200
                wait_until(healthy, 60, what="the installed worker's GET /health to be 200")
                status, body, _, _ = http("GET", f"http://127.0.0.1:{port}/")
                self.assertEqual(status, 200)
                self.assertEqual(body.get("worker_id"), f"127.0.0.1:{port}", body)
            finally:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                try:
                    rc = p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    raise AssertionError(f"no exit 30 s after SIGTERM:\n{tail(logpath)}")
            self.assertEqual(rc, 0, tail(logpath))
            log("installed worker served /health and stopped on SIGTERM with exit code 0")
        finally:
            cluster.stop()

    def check_man(self, path):
        """The installed page renders without groff warnings (man -l), else through groff,
        else it is at least valid gzip."""
        with gzip.open(path) as f:
            source = f.read()
        env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LANG="C.UTF-8")
        if shutil.which("man"):
            _, out, err = run(["man", "--warnings", "-l", path], env=env)
        elif shutil.which("groff"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=source,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(r.returncode, 0)
            out, err = r.stdout.decode(), r.stderr.decode()
        else:
            log("neither man nor groff here: checked only that the man page is valid gzip")
            return
        self.assertEqual(err, "", "warnings while rendering the man page")
        out = re.sub(".\b", "", out)      # overstrike bold, if any
        for text in ("ferry-worker", "SYNOPSIS", "--check", "EXIT STATUS", "SIGTERM"):
            self.assertIn(text, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
