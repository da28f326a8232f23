/* notify: sd_notify from the loop thread. See notify.h.
 *
 * One timer, every TICK_MS: it sends READY=1 the first time the readiness callback says yes
 * (and a STATUS line whenever readiness changes), and WATCHDOG=1 every half watchdog period,
 * as sd_watchdog_enabled(3) recommends. Pinging from the loop thread means a loop blocked for
 * a whole period is what the watchdog catches. */
#include "worker/notify.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "worker/flog.h"
#include "worker/kutil.h"

#define TICK_MS 250

struct notify {
    h2o_loop_t *loop;
    h2o_timeout_t timeout;
    h2o_timeout_entry_t tick;
    notify_ready_fn ready;
    void *arg;
    int active;          /* $NOTIFY_SOCKET was set */
    int was_ready;       /* what the last tick saw */
    int sent_ready;      /* READY=1 went out */
    int stopping;
    int64_t watchdog_ms; /* ping interval, 0 = no watchdog */
    int64_t last_ping_ms;
};

static void on_tick(h2o_timeout_entry_t *entry)
{
    notify_t *n = H2O_STRUCT_FROM_MEMBER(notify_t, tick, entry);
    h2o_timeout_link(n->loop, &n->timeout, &n->tick);
    int ready = n->ready(n->arg) != 0;
    if (!n->stopping && ready != n->was_ready) {
        if (ready && !n->sent_ready) {
            sd_notify(0, "READY=1\nSTATUS=serving: storage topics read, group joined, leader known");
            n->sent_ready = 1;
            FLOG(INFO, WORKER, "told systemd the worker is ready");
        } else {
            sd_notify(0, ready ? "STATUS=serving: storage topics read, group joined, leader known"
                               : "STATUS=not ready: no leader known (GET /health answers 503)");
        }
        n->was_ready = ready;
    }
    int64_t now = kutil_now_ms();
    if (n->watchdog_ms && now - n->last_ping_ms >= n->watchdog_ms) {
        sd_notify(0, "WATCHDOG=1");
        n->last_ping_ms = now;
    }
}

notify_t *notify_new(h2o_loop_t *loop, notify_ready_fn ready, void *arg)
{
    notify_t *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->loop = loop;
    n->ready = ready;
    n->arg = arg;
    n->active = getenv("NOTIFY_SOCKET") != NULL;
    if (!n->active)
        return n;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        n->watchdog_ms = (int64_t)(usec / 2000);
        if (n->watchdog_ms < 1)
            n->watchdog_ms = 1;
        FLOG(INFO, WORKER, "systemd watchdog on: pinging every %lld ms", (long long)n->watchdog_ms);
    }
    sd_notify(0, "STATUS=starting: reading the storage topics and joining the group");
    h2o_timeout_init(loop, &n->timeout, n->watchdog_ms && n->watchdog_ms < TICK_MS ? (uint64_t)n->watchdog_ms : TICK_MS);
    n->tick.cb = on_tick;
    h2o_timeout_link(loop, &n->timeout, &n->tick);
    return n;
}

void notify_stopping(notify_t *n)
{
    if (!n || !n->active || n->stopping)
        return;
    n->stopping = 1;
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing in-flight batches and storing offsets");
}

void notify_destroy(notify_t *n)
{
    if (!n)
        return;
    if (n->active) {
        h2o_timeout_unlink(&n->tick);
        h2o_timeout_dispose(n->loop, &n->timeout);
    }
    free(n);
}
