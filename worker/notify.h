/* notify: tells systemd about the worker (Type=notify): READY=1 once the worker would answer
 * GET /health with 200 (storage topics read, group joined, a leader known), so `systemctl start`
 * returns when the worker serves, and units ordered after ferry.service start then; WATCHDOG=1
 * pings from the loop thread, so a loop that stops turning gets the worker killed and
 * restarted (WatchdogSec= in the unit); STATUS= lines for `systemctl status`; STOPPING=1 when a
 * stop begins. Outside systemd ($NOTIFY_SOCKET unset) it does nothing.
 *
 * Thread: the h2o loop's, which it pings from (a timer on that loop). */
#ifndef FERRY_NOTIFY_H
#define FERRY_NOTIFY_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct notify notify_t;

/** Whether the worker is ready now (called on the loop thread). */
typedef int (*notify_ready_fn)(void *arg);

/** Starts the timer on @p loop; READY=1 is sent the first time @p ready says so.
 *  @returns the notifier (never NULL). */
notify_t *notify_new(h2o_loop_t *loop, notify_ready_fn ready, void *arg);

/** Sends STOPPING=1 (once). */
void notify_stopping(notify_t *n);

/** Stops the timer and frees @p n. Accepts NULL. */
void notify_destroy(notify_t *n);

#endif
