"""test_distributed: several ferry-workers in one group, coordinated through ZooKeeper.

Each test starts its own cluster (ZooKeeper, source and destination mock Kafka, workers with
zookeeper.session.timeout.ms=6000, i.e. fencing after 1.5 s disconnected) and copies the
`connect` topic while it disturbs the group:

  1. create through a follower (forwarded to the leader); every worker agrees; tasks spread
  2. kill -9 of the leader mid-copy: a new leader within session timeout + 2 s, REST writes
     through both survivors, the dead leader's tasks resume on the survivors, nothing lost
  3. kill -9 of a follower mid-copy: the leader stays, its tasks resume elsewhere, nothing lost
  4. a third worker joins: balanced with the fewest moves; tasks that stay are not restarted
  5. a 3-node ZooKeeper ensemble loses each node in turn: no task restarts, no fencing, an
     exact copy
  6. the leader's ZooKeeper traffic is cut (ZkProxy): it fences before anyone else takes its
     partitions (no overlap of ownership intervals), answers writes 409, rejoins after heal(),
     nothing lost; (a) connections closed, (b) silently blackholed, the tight case of the
     fencing argument, (c) healed within the session: it takes its own work up again
     Fencing stops tasks, it does not fail them: no ERROR line, no FAILED status.
  7. SIGTERM of the leader mid-copy: it exits 0 in time, its tasks move without overlap, and
     the copy is exact (no duplicates)
  8. a follower with a slower ZooKeeper link than the new leader's still learns who leads
     after a leader change (writes through it stop answering 409)

Ownership intervals come from the workers' `ownership acquire|release ... at=<wall ms>` log
lines (ferrytest.ownership_intervals / assert_no_overlap). Failover times are printed. At the
end of each test every live worker is stopped with SIGTERM: exit code 0, no sanitizer report,
no ERROR line.

    FERRY_BUILD=/tmp/build-dist python3 tests/integration/test_distributed.py -v
    FERRY_BUILD=... python3 tests/integration/test_distributed.py DistributedTest.test_2_leader_kill
"""
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (Cluster, ZkProxy, assert_no_overlap, compare, count, http,  # noqa: E402
                       log, ownership_events, ownership_intervals, produce, seed_connector,
                       src_dir, wait_records, wait_until, wall_ms)
from grouptest import GroupTestMixin, log_lines, report, wid  # noqa: E402

# Leak reports of a gracefully stopped worker are checked with the project's suppressions.
os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(src_dir(), "tests", "lsan.supp"))

SESSION_MS = 6000
FENCE_MS = SESSION_MS // 3 - 500
GRACEFUL_MS = 5000
CONN = "connect-test"
PARTS = 12
TOPICS = dict(src_topics={"connect": PARTS}, dst_topics={"connect.replica": PARTS})
FENCE_WARN = "stopping all tasks"


class DistributedTest(GroupTestMixin, unittest.TestCase):
    maxDiff = None

    # ------------------------------------------------------------------ helpers

    def request(self, w, method, path, body=None, timeout=20):
        """One REST call to worker w, retried while it answers 409 (rebalance, no leader)."""
        last = []

        def attempt():
            reply = http(method, w.url + path, body)
            last[:] = [reply[2]]
            return reply if reply[0] != 409 else None
        try:
            return wait_until(attempt, timeout, interval=0.2,
                              what=f"{method} {path} on worker {w.idx} to stop answering 409")
        except AssertionError as e:
            raise AssertionError(f"{e}; last answer: {last[0] if last else None!r}") from None

    def create(self, c, via, tasks, **overrides):
        st, body, raw, _ = http("POST", via.url + "/connectors",
                                seed_connector(c.src.bootstrap, **{"tasks.max": str(tasks)},
                                               **overrides))
        self.assertEqual(st, 201, f"POST /connectors through worker {via.idx}: {st} {raw!r}")
        self.assertEqual(body["name"], CONN)
        return body

    def states(self, w):
        """[connector state, task states...] as worker w reports them ([] if it cannot)."""
        s = self.status(w)
        if not s:
            return []
        return [s["connector"]["state"]] + [t["state"] for t in s.get("tasks", [])]

    def wait_copied(self, c, fraction, n, timeout=60):
        want = int(fraction * n)
        wait_until(lambda: (count(c.dst.bootstrap, "connect.replica") or {}).get("total", 0) >= want,
                   timeout, interval=0.05, what=f"connect.replica to hold {want} records")
        return count(c.dst.bootstrap, "connect.replica")["total"]

    def finish_copy(self, c, join, n, exact):
        """Joins the producer, waits for the whole copy and compares. exact=True also demands
        no duplicates."""
        join()
        self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", n, timeout_ms=120000),
                        f"connect.replica did not reach {n} records "
                        f"(has {(count(c.dst.bootstrap, 'connect.replica') or {}).get('total')})")
        time.sleep(1.5)   # anything re-sent late lands before the comparison
        r = compare(c.src.bootstrap, "connect", c.dst.bootstrap, "connect.replica", exact=exact)
        self.assertEqual(r["source"], n, r)
        self.assertEqual((r["missing"], r["reordered"], r["mismatched"]), (0, 0, 0), r)
        if exact:
            self.assertEqual(r["duplicates"], 0, r)
        self.assertEqual(r["dest"], n + r["duplicates"], r)
        return r

    def partitions_of(self, w, since_ms=None):
        """Partitions whose latest ownership event on w (since since_ms) is an acquire."""
        held = {}
        for ev in ownership_events(w):
            if since_ms is None or ev["at"] >= since_ms:
                held[(ev["task"], ev["partition"])] = ev["kind"] == "acquire"
        return sorted({p for (t, p), h in held.items() if h})

    def takeover_ms(self, survivors, partitions, since_ms, timeout=30):
        """Waits until every partition has been acquired on a survivor at or after since_ms;
        returns {partition: ms after since_ms}."""
        def done():
            first = {}
            for w in survivors:
                for ev in ownership_events(w):
                    if ev["kind"] == "acquire" and ev["at"] >= since_ms and ev["partition"] in partitions:
                        first[ev["partition"]] = min(first.get(ev["partition"], ev["at"]), ev["at"])
            return first if set(first) == set(partitions) else None
        first = wait_until(done, timeout, interval=0.2,
                           what=f"partitions {partitions} to be acquired by the survivors")
        return {p: at - since_ms for p, at in first.items()}

    def sample_failed(self, w):
        """Polls w's connector status in a thread and collects every FAILED task it shows.
        Returns stop(), which ends the sampling and returns [(ms, task, worker_id, trace)]."""
        seen, done = [], threading.Event()

        def run():
            while not done.is_set():
                try:
                    s = self.status(w)
                except OSError:
                    s = None
                for t in (s or {}).get("tasks", []):
                    if t["state"] == "FAILED":
                        seen.append((wall_ms(), t["id"], t["worker_id"], t.get("trace", "")[:120]))
                done.wait(0.1)
        th = threading.Thread(target=run, daemon=True)
        th.start()

        def stop():
            done.set()
            th.join(10)
            return seen
        return stop

    @staticmethod
    def error_lines(c):
        """{worker index: its ERROR log lines} for the workers that logged any."""
        errors = {w.idx: [line for _, line in log_lines(w, " ERROR [")] for w in c.workers}
        return {k: v for k, v in errors.items() if v}

    def stop_all(self, c, allow_errors=False):
        """SIGTERM every live worker (in parallel), expect exit code 0, check sanitizer reports
        and (unless allow_errors) that no worker logged an ERROR line."""
        live = [w for w in c.workers if w.alive()]
        rcs = {}
        threads = [threading.Thread(target=lambda w=w: rcs.__setitem__(w.idx, w.term())) for w in live]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.check_sanitizers(c)
        self.assertEqual(rcs, {w.idx: 0 for w in live}, "exit codes after SIGTERM")
        if not allow_errors:
            self.assertEqual(self.error_lines(c), {}, "ERROR lines in worker logs")

    # ------------------------------------------------------------------ 1. create via a follower

    def test_1_create_through_follower(self):
        with Cluster(workers=3, **TOPICS) as c:
            leader = self.leader(c)
            follower = next(w for w in c.workers if w is not leader)
            log(f"leader is worker {leader.idx}; creating through follower {follower.idx}")
            created = self.create(c, follower, 6)
            for w in c.workers:
                wait_until(lambda w=w: http("GET", w.url + "/connectors")[1] == [CONN], 10,
                           what=f"worker {w.idx} to list {CONN}")
                st, info, raw, _ = http("GET", f"{w.url}/connectors/{CONN}")
                self.assertEqual(st, 200, raw)
                self.assertEqual(info["config"], created["config"], f"config seen by worker {w.idx}")
            statuses = [self.wait_running(w, 6, c.workers) for w in c.workers]
            # every worker reports the same placement
            placements = [self.placement(s) for s in statuses]

            def same_placement():
                seen = [self.status(w) for w in c.workers]
                return all(seen) and len({tuple(sorted(self.placement(s).items())) for s in seen}) == 1
            wait_until(same_placement, 10,
                       what=f"all workers to report the same placement (first seen {placements})")
            p = self.placement(self.status(leader))
            tasks_per = {wid(w): sum(1 for k, v in p.items() if k >= 0 and v == wid(w))
                         for w in c.workers}
            report(f"create via follower: placement {p}; tasks per worker {tasks_per}")
            self.assertTrue(all(n >= 1 for n in tasks_per.values()), tasks_per)
            self.assertLessEqual(max(tasks_per.values()) - min(tasks_per.values()), 1, tasks_per)
            produce(c.src.bootstrap, "connect", 12000)
            self.assertTrue(wait_records(c.dst.bootstrap, "connect.replica", 12000))
            r = compare(c.src.bootstrap, "connect", c.dst.bootstrap, "connect.replica", exact=True)
            self.assertEqual(r["rc"], 0, r)
            assert_no_overlap(ownership_intervals(c.workers))
            self.stop_all(c)

    # ------------------------------------------------------------------ 2/3. kill -9

    def kill_scenario(self, kill_leader):
        n, rate = 160_000, 20_000
        with Cluster(workers=3, **TOPICS) as c:
            self.create(c, c.workers[0], 6)
            before = self.wait_running(c.workers[0], 6, c.workers)
            leader = self.leader(c)
            victim = leader if kill_leader else next(w for w in reversed(c.workers) if w is not leader)
            survivors = [w for w in c.workers if w is not victim]
            victim_items = sorted(k for k, v in self.placement(before).items() if v == wid(victim))
            join = self.produce_in_background(c, n, rate)
            at_kill = self.wait_copied(c, 0.2, n)
            victim_parts = self.partitions_of(victim)
            victim.kill9()
            kill_ms = wall_ms()
            log(f"killed {'leader' if kill_leader else 'follower'} worker {victim.idx} at "
                f"{at_kill}/{n} records; it held items {victim_items}, partitions {victim_parts}")
            self.assertTrue(victim_parts, "the killed worker owned no partition")

            # leadership
            if kill_leader:
                def new_leader():
                    for w in survivors:
                        lines = log_lines(w, "is now the leader", since_ms=kill_ms)
                        if lines:
                            return w, lines[0][0] - kill_ms
                    return None
                nl, elect_ms = wait_until(new_leader, SESSION_MS / 1000 + 2, interval=0.05,
                                          what="a survivor to log 'is now the leader'")
                log(f"worker {nl.idx} is the new leader {elect_ms} ms after the kill")
                self.assertLessEqual(elect_ms, SESSION_MS + 2000)
            else:
                nl, elect_ms = leader, None

            # the victim's partitions are consumed again by the survivors
            took = self.takeover_ms(survivors, victim_parts, kill_ms)
            s = self.wait_running(survivors[0], 6, survivors,
                                  what="after the kill")
            p = self.placement(s)
            for item in victim_items:
                self.assertIn(p[item], {wid(w) for w in survivors}, f"item {item}: {p}")
            for w in survivors:      # both survivors agree
                self.wait_running(w, 6, survivors)

            # REST writes through both survivors (the follower forwards to the new leader)
            for w in survivors:
                for action, state in (("pause", "PAUSED"), ("resume", "RUNNING")):
                    st, _, raw, _ = self.request(w, "PUT", f"/connectors/{CONN}/{action}")
                    self.assertEqual(st, 202, f"PUT {action} through worker {w.idx} "
                                              f"({'leader' if w is nl else 'follower'}): {raw!r}")
                    wait_until(lambda w=w, state=state: self.states(w) == [state] * 7, 20, interval=0.1,
                        what=f"connector {state} after {action} through worker {w.idx}")
            if not kill_leader:
                self.assertEqual(self.leader(c), leader, "killing a follower changed the leader")
                for w in survivors:
                    self.assertEqual(log_lines(w, "is now the leader", since_ms=kill_ms), [],
                                     f"worker {w.idx} took leadership after a follower died")

            r = self.finish_copy(c, join, n, exact=False)
            assert_no_overlap(ownership_intervals(c.workers, {victim.idx: kill_ms}))
            what = "leader" if kill_leader else "follower"
            report(f"kill -9 of the {what} at {at_kill}/{n}: "
                   + (f"new leader after {elect_ms} ms; " if kill_leader else "")
                   + f"its {len(victim_parts)} partitions consumed again after "
                   f"{min(took.values())}..{max(took.values())} ms (all by {max(took.values())} ms); "
                   f"duplicates {r['duplicates']}")
            self.stop_all(c)

    def test_2_leader_kill(self):
        self.kill_scenario(kill_leader=True)

    def test_3_follower_kill(self):
        self.kill_scenario(kill_leader=False)

    # ------------------------------------------------------------------ 4. join

    @staticmethod
    def min_moves(counts, nworkers):
        """Fewest items to move so that the counts (a new worker has 0) become balanced."""
        total = sum(counts)
        f, r = divmod(total, nworkers)
        counts = sorted(counts + [0] * (nworkers - len(counts)), reverse=True)
        # give the r ceilings to the most loaded workers: that minimizes what must leave
        targets = [f + 1] * r + [f] * (nworkers - r)
        return sum(max(0, c - t) for c, t in zip(counts, targets))

    def test_4_join_moves_minimum(self):
        n, rate, ntasks = 100_000, 10_000, 8
        with Cluster(workers=2, src_topics={"connect": 16}, dst_topics={"connect.replica": 16}) as c:
            self.create(c, c.workers[1], ntasks)
            before = self.placement(self.wait_running(c.workers[0], ntasks, c.workers))
            join = self.produce_in_background(c, n, rate)
            self.wait_copied(c, 0.1, n)
            counts = [list(before.values()).count(wid(w)) for w in c.workers]
            join_ms = wall_ms()
            w2 = c.add_worker()
            log(f"worker 2 joined; before: {before} ({counts})")
            after = self.placement(self.wait_running(c.workers[0], ntasks, c.workers,
                                                     what="after the join"))
            time.sleep(3)     # nothing else moves once balanced
            settled = self.placement(self.wait_running(c.workers[0], ntasks, c.workers))
            self.assertEqual(settled, after, "items kept moving after the group was balanced")
            moved = sorted(k for k in before if before[k] != after[k])
            need = self.min_moves(counts, 3)
            report(f"join: {counts} -> {[list(after.values()).count(wid(w)) for w in c.workers]} "
                   f"items; moved {moved} ({len(moved)}, minimum {need})")
            self.assertEqual(len(moved), need, f"before {before}, after {after}")
            self.assertTrue(all(after[k] == wid(w2) for k in moved), f"moves not to the new worker: "
                                                                      f"before {before}, after {after}")
            # only moved tasks restarted
            events = [ev for w in c.workers for ev in ownership_events(w) if ev["at"] >= join_ms]
            restarted = sorted({int(ev["task"].rsplit("-", 1)[1]) for ev in events})
            moved_tasks = [k for k in moved if k >= 0]
            self.assertEqual(restarted, moved_tasks,
                             f"tasks with ownership events after the join: {restarted}; moved: "
                             f"{moved_tasks}; events: {events}")
            for k in moved_tasks:
                kinds = [(ev["kind"], ev["idx"]) for ev in events if ev["task"] == f"{CONN}-{k}"]
                old = next(w.idx for w in c.workers if wid(w) == before[k])
                self.assertIn(("release", old), kinds, f"task {k}: {kinds}")
                self.assertIn(("acquire", w2.idx), kinds, f"task {k}: {kinds}")
            # one join = one generation revoking what must move, then one per batch of
            # acknowledged revocations handing it over: at most 1 + moved. A revocation awaiting
            # its ack must not be rewritten as a new generation each time another ack arrives.
            gens = sorted({int(m.group(1)) for w in c.workers
                           for _, line in log_lines(w, "worker(s),", since_ms=join_ms)
                           for m in [re.search(r"generation (\d+): ", line)] if m})
            self.assertGreaterEqual(len(gens), 2, f"generations written for one join: {gens}")
            self.assertLessEqual(len(gens), 1 + len(moved), f"generations for one join: {gens}")
            self.finish_copy(c, join, n, exact=False)
            assert_no_overlap(ownership_intervals(c.workers))
            self.stop_all(c)

    # ------------------------------------------------------------------ 5. ZooKeeper ensemble

    def test_5_zookeeper_node_loss(self):
        """Each ZooKeeper node in turn is stopped for 3 s. A worker connected to it reconnects to
        another node; the workers must not fence as long as the ensemble keeps serving (or is
        back within fence delay - 500 ms): no task restarts, an exact copy. Stopping the
        ensemble's leader makes the other two elect a new one; if that election outlasts the
        fencing delay (it can on a loaded machine), fencing is the designed answer, and then
        only no overlap and no loss are required."""
        n, rate = 160_000, 10_000
        with Cluster(workers=3, zk_nodes=3, **TOPICS) as c:
            self.create(c, c.workers[0], 6)
            self.wait_running(c.workers[0], 6, c.workers)
            acquires = lambda: [ev for w in c.workers for ev in ownership_events(w)  # noqa: E731
                                if ev["kind"] == "acquire"]
            fences = lambda: [(w.idx, line) for w in c.workers  # noqa: E731
                              for _, line in log_lines(w, FENCE_WARN)]
            wait_until(lambda: len(acquires()) == PARTS, 10, what=f"{PARTS} initial acquires")
            join = self.produce_in_background(c, n, rate)
            self.wait_copied(c, 0.05, n)
            modes, gaps, excused = {}, {}, []
            for i in range(3):
                modes[i] = c.zk.mode(i)
                others = [j for j in range(3) if j != i]
                before = len(fences())
                t0 = time.monotonic()
                c.zk.stop_node(i)
                wait_until(lambda: all(c.zk.mode(j) in ("leader", "follower") for j in others), 30,
                           interval=0.02, what="the other two ZooKeeper nodes to serve")
                gaps[i] = int((time.monotonic() - t0) * 1000)   # stop to both others serving
                time.sleep(3)         # longer than the fencing delay (1.5 s)
                c.zk.start_node(i)
                wait_until(lambda: all(c.zk.mode(j) in ("leader", "follower") for j in range(3)),
                           30, what="the ensemble to serve on all three nodes")
                new = fences()[before:]
                if gaps[i] >= FENCE_MS - 500:
                    excused += new
                else:
                    self.assertEqual(new, [], f"fencing after ZooKeeper node {i} ({modes[i]}) "
                                              f"stopped; the others served {gaps[i]} ms later")
            r = self.finish_copy(c, join, n, exact=not excused)
            assert_no_overlap(ownership_intervals(c.workers))
            if not excused:
                self.assertEqual(sorted(ev["partition"] for ev in acquires()),
                                 sorted(f"connect:{p}" for p in range(PARTS)),
                                 f"tasks restarted while ZooKeeper nodes stopped: {acquires()}")
            # Every worker was connected to some node, and every node was stopped once, so every
            # worker lost its connection at least once (the ZooKeeper client logs each loss).
            losses = {}
            for w in c.workers:
                with open(w.logpath, errors="replace") as f:
                    losses[w.idx] = sum(1 for line in f if "ZOO_ERROR" in line
                                        and "failed while receiving a server response" in line)
            self.assertTrue(all(losses.values()), f"connection losses per worker: {losses}")
            report(f"ZooKeeper nodes stopped in turn ({modes}); ms until the other two served: "
                   f"{gaps}; connection losses per worker {losses}; "
                   + (f"{len(excused)} worker(s) fenced during a ZooKeeper election longer than the "
                      f"fencing delay; " if excused else "no fencing, no restart; ")
                   + f"duplicates {r['duplicates']}")
            self.stop_all(c)

    # ------------------------------------------------------------------ 6. fencing

    def fencing_scenario(self, blackhole):
        n, rate = 160_000, 20_000
        with Cluster(workers=0, **TOPICS) as c:
            proxy = ZkProxy(c.zk.ports[0])
            self.addCleanup(proxy.close)
            cut = c.add_worker(extra={"zookeeper.connect": proxy.connect})   # first: the leader
            c.add_worker()
            c.add_worker()
            survivors = c.workers[1:]
            self.create(c, c.workers[1], 6)
            self.wait_running(c.workers[1], 6, c.workers)
            self.assertIs(self.leader(c), cut)
            join = self.produce_in_background(c, n, rate)
            at_cut = self.wait_copied(c, 0.2, n)
            cut_parts = self.partitions_of(cut)
            sampler = self.sample_failed(survivors[0])
            cut_ms = wall_ms()
            proxy.cut(blackhole=blackhole)
            log(f"cut worker {cut.idx} (the leader) from ZooKeeper at {at_cut}/{n}; "
                f"it held {cut_parts}")
            # the cut worker fences itself
            limit = (2 * SESSION_MS / 3 if blackhole else 0) + FENCE_MS + 3000
            fence_line = wait_until(lambda: log_lines(cut, "disconnected from ZooKeeper: stopping all tasks",
                                                      since_ms=cut_ms), limit / 1000, interval=0.05,
                                    what="the cut worker to log the fencing WARN")[0]
            fenced_ms = fence_line[0] - cut_ms
            # a worker that cannot reach ZooKeeper knows no leader: REST writes answer 409
            st, _, raw, _ = http("POST", f"{cut.url}/connectors/{CONN}/restart")
            self.assertEqual(st, 409, f"a write on the fenced worker: {st} {raw!r}")
            # the survivors take over, and not before the cut worker released
            took = self.takeover_ms(survivors, cut_parts, cut_ms)
            releases = {ev["partition"]: ev["at"] for ev in ownership_events(cut)
                        if ev["kind"] == "release" and ev["at"] >= cut_ms}
            self.assertEqual(sorted(releases), cut_parts, "the fenced worker did not release all")
            margin = min(cut_ms + took[p] - releases[p] for p in cut_parts)
            assert_no_overlap(ownership_intervals(c.workers))
            s = self.wait_running(survivors[0], 6, survivors, what="after the cut")
            failed_seen = sampler()
            nl = self.leader(c)
            self.assertIn(nl, survivors)
            # heal: the cut worker comes back and gets work again
            heal_ms = wall_ms()
            proxy.heal()
            s = self.wait_running(survivors[0], 6, c.workers, timeout=40, what="after the heal")
            self.assertIn(wid(cut), self.placement(s).values())
            if any(v == wid(cut) for k, v in self.placement(s).items() if k >= 0):
                wait_until(lambda: [ev for ev in ownership_events(cut)
                                    if ev["kind"] == "acquire" and ev["at"] >= heal_ms], 20,
                           what="the healed worker to acquire partitions again")
            rejoin = log_lines(cut, "joined group", since_ms=heal_ms)
            r = self.finish_copy(c, join, n, exact=False)
            assert_no_overlap(ownership_intervals(c.workers))
            errors = self.error_lines(c)
            report(f"ZooKeeper cut ({'blackhole' if blackhole else 'connections closed'}) of the "
                   f"leader at {at_cut}/{n}: fenced after {fenced_ms} ms; its {len(cut_parts)} "
                   f"partitions consumed again by survivors after {min(took.values())}.."
                   f"{max(took.values())} ms; smallest release->acquire margin {margin} ms; "
                   f"rejoined as {rejoin[-1][1].split()[-1] if rejoin else 'the same member'}; "
                   f"duplicates {r['duplicates']}")
            self.stop_all(c, allow_errors=True)
            # Fencing stops tasks, it does not fail them: no ERROR line, no FAILED status (Kafka
            # Connect reports a stopped task UNASSIGNED, never FAILED).
            self.assertEqual({"ERROR lines by worker": errors, "FAILED in GET status": failed_seen[:4]},
                             {"ERROR lines by worker": {}, "FAILED in GET status": []},
                             f"errors logged or fenced tasks reported FAILED "
                             f"({len(failed_seen)} status samples showed FAILED)")

    def test_6a_fencing_on_session_loss(self):
        self.fencing_scenario(blackhole=False)

    def test_6b_fencing_on_silent_session_loss(self):
        self.fencing_scenario(blackhole=True)

    def test_6c_fenced_worker_keeps_its_session(self):
        """A cut shorter than the session: the worker fences (1.5 s) but its session survives,
        so after heal() it takes its own assignment up again and nobody else ever runs it."""
        n, rate = 160_000, 20_000
        with Cluster(workers=0, **TOPICS) as c:
            proxy = ZkProxy(c.zk.ports[0])
            self.addCleanup(proxy.close)
            cut = c.add_worker(extra={"zookeeper.connect": proxy.connect})   # first: the leader
            c.add_worker()
            c.add_worker()
            survivors = c.workers[1:]
            self.create(c, c.workers[1], 6)
            before = self.placement(self.wait_running(c.workers[1], 6, c.workers))
            join = self.produce_in_background(c, n, rate)
            at_cut = self.wait_copied(c, 0.2, n)
            cut_parts = self.partitions_of(cut)
            sampler = self.sample_failed(c.workers[1])
            cut_ms = wall_ms()
            proxy.cut()
            fence_line = wait_until(lambda: log_lines(cut, "disconnected from ZooKeeper: stopping all tasks",
                                                      since_ms=cut_ms), FENCE_MS / 1000 + 3, interval=0.05,
                                    what="the cut worker to log the fencing WARN")[0]
            # heal at once (~1.5 s after the cut, well within the 6 s session): how long the
            # fenced tasks take to stop must not decide whether the session survives
            heal_ms = wall_ms()
            proxy.heal()
            log(f"healed {heal_ms - cut_ms} ms after the cut ({fence_line[0] - cut_ms} ms to fence)")
            wait_until(lambda: len([ev for ev in ownership_events(cut) if ev["kind"] == "release"
                                    and ev["at"] >= cut_ms]) == len(cut_parts), 15, interval=0.05,
                       what="the fenced worker to release its partitions")
            back = self.takeover_ms([cut], cut_parts, heal_ms, timeout=20)
            after = self.placement(self.wait_running(c.workers[1], 6, c.workers, what="after the heal"))
            failed_seen = sampler()
            self.assertEqual(log_lines(cut, "session expired", since_ms=cut_ms), [],
                             "the session expired although the cut was short")
            self.assertEqual(log_lines(cut, "joined group", since_ms=cut_ms), [],
                             "the worker joined as a new member although its session survived")
            stolen = [ev for w in survivors for ev in ownership_events(w)
                      if ev["kind"] == "acquire" and ev["at"] >= cut_ms]
            self.assertEqual(stolen, [], "survivors acquired partitions while the session lived")
            self.assertEqual(after, before, "the placement changed although no member left")
            r = self.finish_copy(c, join, n, exact=False)
            assert_no_overlap(ownership_intervals(c.workers))
            report(f"short ZooKeeper cut of the leader at {at_cut}/{n}: fenced after "
                   f"{fence_line[0] - cut_ms} ms, healed after {heal_ms - cut_ms} ms, same session; "
                   f"its {len(cut_parts)} partitions consumed again {min(back.values())}.."
                   f"{max(back.values())} ms after the heal; duplicates {r['duplicates']}")
            errors = self.error_lines(c)
            self.stop_all(c, allow_errors=True)
            self.assertEqual({"ERROR lines by worker": errors, "FAILED in GET status": failed_seen[:4]},
                             {"ERROR lines by worker": {}, "FAILED in GET status": []},
                             f"errors logged or fenced tasks reported FAILED "
                             f"({len(failed_seen)} status samples showed FAILED)")

    # ------------------------------------------------------------------ 7. graceful stop

    def test_7_graceful_stop(self):
        n, rate = 160_000, 20_000
        with Cluster(workers=3, **TOPICS) as c:
            self.create(c, c.workers[0], 6)
            self.wait_running(c.workers[0], 6, c.workers)
            victim = self.leader(c)
            survivors = [w for w in c.workers if w is not victim]
            join = self.produce_in_background(c, n, rate)
            at_stop = self.wait_copied(c, 0.3, n)
            parts = self.partitions_of(victim)
            t0 = time.monotonic()
            stop_ms = wall_ms()
            rc = victim.term(timeout=GRACEFUL_MS / 1000 + 10)
            secs = time.monotonic() - t0
            log(f"worker {victim.idx} (the leader) stopped gracefully at {at_stop}/{n} in {secs:.2f} s")
            took = self.takeover_ms(survivors, parts, stop_ms)
            self.wait_running(survivors[0], 6, survivors, what="after the graceful stop")
            r = self.finish_copy(c, join, n, exact=False)
            assert_no_overlap(ownership_intervals(c.workers))
            report(f"SIGTERM of the leader at {at_stop}/{n}: exit code {rc} after {secs:.2f} s; its "
                   f"{len(parts)} partitions consumed again after {min(took.values())}.."
                   f"{max(took.values())} ms; duplicates {r['duplicates']}")
            self.assertEqual(rc, 0)
            self.assertLessEqual(secs, GRACEFUL_MS / 1000 + 3)
            self.assertEqual(r["duplicates"], 0, f"a graceful stop copied records twice: {r}")
            self.stop_all(c)


    # ------------------------------------------------------------------ 8. leader seen late

    def test_8_slow_followers_learn_the_new_leader(self):
        """Followers whose ZooKeeper links are slower than the new leader's must still learn the
        new leader. The latencies (ZkProxy delay_ms, each way) put the new leader's create of the
        `leader` znode between a follower's getData (NONODE) and its exists() watch: that
        follower has to notice the node exists by then, or it knows no leader until the next
        leader change (and every write through it answers 409). The successor creates the
        znode 4 or 8 one-way delays after the old one vanished (depending on whether it sees
        the member and leader deletions in one round), a follower reads it at 2 and watches it
        at 4 of its own delays: 1.5x and 3x the successor's delay cover both cases."""
        with Cluster(workers=0, **TOPICS) as c:
            delays = (100, 150, 300)
            proxies = [ZkProxy(c.zk.ports[0], delay_ms=d) for d in delays]
            for p in proxies:
                self.addCleanup(p.close)
            old = c.add_worker()                                         # m-0: the leader
            succ, *followers = [c.add_worker(extra={"zookeeper.connect": p.connect})
                                for p in proxies]                        # m-1: its successor
            self.assertIs(self.leader(c), old)
            old.kill9()
            kill_ms = wall_ms()
            wait_until(lambda: log_lines(succ, "is now the leader", since_ms=kill_ms),
                       SESSION_MS / 1000 + 4, interval=0.05, what="the successor to lead")
            elected = wall_ms()
            took, seen = {}, {f.idx: [] for f in followers}
            deadline = time.monotonic() + 10
            while len(took) < len(followers) and time.monotonic() < deadline:
                for f in followers:
                    if f.idx in took:
                        continue
                    reply = http("PUT", f"{f.url}/connectors/probe-{f.idx}/config",
                                 seed_connector(c.src.bootstrap, **{"tasks.max": "1"})["config"])
                    seen[f.idx].append((reply[0], reply[2][:100]))
                    if reply[0] not in (409, 500):
                        self.assertEqual(reply[0], 201, reply[2])
                        took[f.idx] = wall_ms() - elected
                time.sleep(0.2)
            stuck = {f.idx: f"{d} ms link: answers {seen[f.idx][:1]} ... {seen[f.idx][-1:]}"
                     for f, d in zip(followers, delays[1:]) if f.idx not in took}
            report(f"slow followers after a leader change: writes reached the new leader "
                   f"{took} ms after the election; stuck: {sorted(stuck)}")
            self.assertEqual(stuck, {}, f"followers still knowing no leader 10 s after worker "
                                        f"{succ.idx} was elected")
            self.stop_all(c)


if __name__ == "__main__":
    unittest.main(verbosity=2)
