/* store: ferry's view of the three Kafka Connect storage topics (config, offset, status),
 * as Kafka Connect's KafkaBasedLog: every record of every partition is read from the
 * beginning and handed to the owner in order; writes are produced and acknowledged;
 * "sync" reads to the end (the high watermarks measured when asked) so the owner knows
 * it has seen everything written before.
 *
 * Threads: one store thread owns the consumer and the producer. The owner (the h2o loop
 * thread) sends it operations through a mutex-protected list and receives events through
 * an h2o multithread queue, so records, write results and sync barriers reach the loop
 * in the order the store thread saw them: a SYNC event comes after every record it covers.
 *
 *   loop thread ──ops──▶ [store thread: consumer_poll, producer poll] ──events──▶ loop thread */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>
#include <stdint.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

typedef enum { STORE_CONFIG = 0, STORE_OFFSET, STORE_STATUS, STORE__TOPICS } store_topic_t;

typedef enum {
    STORE_EV_RECORD = 1, /* a record read from a topic */
    STORE_EV_DONE,       /* a write (and its sync, if asked) or a sync finished; see err */
} store_ev_type_t;

typedef struct store_ev {
    h2o_multithread_message_t super;
    store_ev_type_t type;
    store_topic_t topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    char *key;   /* NUL-terminated copy (keys are text in all three topics) */
    char *value; /* NUL-terminated copy, NULL for a tombstone */
    size_t value_len;
    uint64_t token;
    ferr_code_t err;
    char errmsg[256];
} store_ev_t;

/** Called on the loop thread for each event; the event is freed after it returns. */
typedef void (*store_cb_t)(void *arg, store_ev_t *ev);

typedef struct store_rec {
    const char *key;
    const char *value; /* NULL = tombstone */
} store_rec_t;

typedef struct store store_t;

/** Connects, creates missing storage topics (or says clearly why it could not), checks that the
 *  config topic has one partition, and starts the store thread reading all three topics from the
 *  beginning. @p cb runs on @p loop's thread. @returns NULL with @p err filled on failure. */
store_t *store_new(const wconf_t *wc, h2o_loop_t *loop, store_cb_t cb, void *arg, ferr_t *err);

/** Produces @p n records in order to topic @p t (copied; the caller keeps its strings). When all are
 *  acknowledged, and if @p sync also once the topic has been read up to them, a DONE event with
 *  @p token is delivered (err set if any write failed). */
void store_write(store_t *st, store_topic_t t, const store_rec_t *recs, size_t n, int sync,
                 uint64_t token);

/** Reads topic @p t to its current end, then delivers DONE with @p token. */
void store_sync(store_t *st, store_topic_t t, uint64_t token);

/** The destination cluster's id as the brokers report it ("" if they did not). */
const char *store_cluster_id(const store_t *st);

/** Number of partitions of topic @p t (known after store_new). */
int store_partitions(const store_t *st, store_topic_t t);
const char *store_topic_name(const store_t *st, store_topic_t t);

/** Stops the thread (pending writes are flushed for up to @p timeout_ms) and frees everything. */
void store_destroy(store_t *st, int timeout_ms);

#endif
