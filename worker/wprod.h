/* wprod: the worker's shared destination producer.
 *
 * One idempotent librdkafka producer per worker, shared by every task that needs no producer
 * of its own (not transactional, no producer.override.* / dest.kafka.* keys): one set of
 * broker threads and connections instead of one per task, and ProduceRequests that carry the
 * batches of many partitions. librdkafka producers are thread-safe: task threads call
 * rd_kafka_producev on wprod_handle() directly.
 *
 * Threads: created and destroyed by the herder (h2o loop thread). It owns one poller thread
 * that serves the producer's events, so delivery reports run there, not on the copy threads;
 * the function given to wprod_new must route each report to its task without touching task
 * state (rtask_delivery_batch queues them for the task's copy thread). wprod_purge may be
 * called from any thread.
 *
 * Memory: its queue (queue.buffering.max.*) is one worker-wide share of
 * ferry.memory.budget.bytes (mbudget_worker_producer_limits), fixed at creation. */
#ifndef FERRY_WPROD_H
#define FERRY_WPROD_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

typedef struct wprod wprod_t;

typedef void wprod_dr_fn(rd_kafka_message_t **msgs, size_t n);

/** Creates the producer from the worker config (@p wc: bootstrap, common and producer.* keys;
 *  borrowed, must outlive it) and starts its poller thread, which hands @p dr the delivery
 *  reports in batches (librdkafka's RD_KAFKA_EVENT_DR: a batch of one partition's records,
 *  or a few). NULL and @p err filled on failure. */
wprod_t *wprod_new(const wconf_t *wc, wprod_dr_fn *dr, ferr_t *err);
/** The librdkafka handle, for rd_kafka_producev and topic handles. Valid until wprod_destroy. */
rd_kafka_t *wprod_handle(const wprod_t *wp);
/** Drops everything queued or in flight (RD_KAFKA_PURGE_F_QUEUE | _INFLIGHT), for every task:
 *  only for worker-wide events (fencing, shutdown). Their reports carry the purge errors. */
void wprod_purge(wprod_t *wp);
/** Marks the worker as shutting down: a task that cannot finish its stop within its graceful
 *  timeout may then purge the producer (every task is stopping anyway). */
void wprod_set_closing(wprod_t *wp);
int wprod_closing(const wprod_t *wp);
/** 1 once the producer has raised a fatal error (an idempotence failure): it can append
 *  nothing more, so the herder gives new tasks a new one and drops this one when its last task
 *  is gone. */
int wprod_failed(const wprod_t *wp);
/** Produce requests the producer retried (librdkafka statistics, every 5 s). */
uint64_t wprod_retries(const wprod_t *wp);
/** One user more (a task producing through it, a connector instance creating topics with it);
 *  loop thread. */
void wprod_keep(wprod_t *wp);
/** One user fewer; @returns how many are left. Loop thread. */
int wprod_release(wprod_t *wp);
/** Stops the poller and frees. Call after every task that used it has exited (none of their
 *  records is left). Accepts NULL. */
void wprod_destroy(wprod_t *wp);

#endif
