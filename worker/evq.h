/* evq: helpers for the multithread queues that carry events from ferry's threads to the
 * h2o loop. h2o refuses to unregister a receiver that still holds messages, so a module
 * that stops its threads drains the loop (delivering what they posted) before it
 * unregisters. */
#ifndef FERRY_EVQ_H
#define FERRY_EVQ_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** Runs the loop without blocking until pending events are delivered.
 *  @remark thread: the loop's own thread only. */
void evq_drain(h2o_loop_t *loop);

#endif
