/* rtask: one EMRReplicatorSourceTask — copies a set of source topic-partitions to the
 * destination cluster and stores source offsets in the offset storage topic.
 *
 * Threads: a task owns no thread and no consumer. Its setup (metadata, its own producer if
 * any, the destination-tail read) runs as a job on the worker's setup pool (tpool.h); then
 * its partitions are added to the worker's shared source consumer (scons.h) and it lives on
 * one of the worker's copy threads (copier.h), which copies its records and alone touches its
 * partition state. Its destination producer is the worker's shared one (wprod.h, polled by
 * its own thread), or its own when it is transactional or sets producer.override.* /
 * dest.kafka.* keys (polled by the copy thread). Either way delivery reports
 * (rtask_delivery_cb) only queue a compact result for the copy thread, which applies them.
 * The owner (the herder, on the h2o loop thread) talks to it only through atomic flags
 * (pause, stop, fence) and receives rtask_ev_t messages through a multithread receiver.
 *
 * Offsets: a source offset is written only after the destination acknowledged every
 * record before it (idempotent producer, per-partition in-order delivery reports), so a
 * restart never skips a record; duplicates after a crash are bounded by the flush interval. */
#ifndef FERRY_RTASK_H
#define FERRY_RTASK_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>
#include <jansson.h>
#include <stdint.h>

#include "worker/mwin.h"
#include "worker/omap.h"
#include "worker/wconf.h"
#include "worker/wprod.h"

typedef enum {
    RTASK_EV_RUNNING = 1, /* started copying */
    RTASK_EV_FAILED,      /* stopped copying because of an error; trace says why */
    RTASK_EV_EXITED,      /* the thread finished (after a stop or a failure); join it now */
} rtask_ev_type_t;

typedef struct rtask_ev {
    h2o_multithread_message_t super;
    rtask_ev_type_t type;
    char *connector;
    int task;
    uint64_t instance;
    char *trace;
} rtask_ev_t;

void rtask_ev_free(rtask_ev_t *ev);

typedef struct rtask_params {
    const char *connector;
    int task;
    const json_t *config;  /* the task config (connector config + task.partitions); copied */
    const json_t *offsets; /* object "topic:partition" -> {"offset": next offset to copy,
                              "altered": set over REST}; copied; may be NULL */
    const wconf_t *wc;     /* borrowed; must outlive the task */
    int worker_tasks;      /* tasks the worker runs in the assignment this one starts in: the
                              task's share of ferry.memory.budget.bytes is budget / this */
    uint64_t instance;
    int paused;
    h2o_multithread_receiver_t *recv;
    wprod_t *wprod;        /* the worker's shared producer (must outlive the task), or NULL:
                              the task creates its own (transactional mode, producer overrides) */
    struct scons *scons;   /* its source consumer (shared, or its own for a transactional task);
                              must outlive the task */
    struct copier *copier; /* the worker's copy threads */
    struct bpass *bpass;   /* the batch passthrough engine for its connections, or NULL: record
                              by record only (must outlive the task) */
    struct tpool *setup_pool; /* where the setup job runs */
} rtask_params_t;

/** Upper bounds (seconds) of the replication-latency histogram: time from a record's source
 *  timestamp until the destination acknowledged its copy. */
#define RTASK_LATENCY_BUCKETS 14
extern const double rtask_latency_bounds[RTASK_LATENCY_BUCKETS];

/** Counters of a task, readable from any thread while it runs (atomics underneath). */
typedef struct rtask_stats {
    uint64_t records, bytes, offsets_flushed, errors, retries;
    uint64_t batch_records, batches, fallbacks; /* of records: forwarded in batches as they are */
    uint64_t latency[RTASK_LATENCY_BUCKETS + 1]; /* per bucket; the last: above every bound */
    double latency_sum_s;
    uint64_t polled; /* records taken to copy: handed to the producer (a forwarded batch's
                        records once acknowledged: the engine reports nothing earlier) */
    uint64_t active; /* of those, not yet acknowledged or dropped */
    const char *src_alias, *dst_alias; /* src.cluster.alias, dest.cluster.alias; valid while
                                          the task lives */
} rtask_stats_t;

typedef struct rtask_part_stats {
    const char *topic;      /* source topic; valid while the task lives */
    const char *target;     /* its destination topic; the same */
    int32_t partition;
    uint64_t records, bytes;
    int64_t next_offset;    /* next source offset to copy (-1 before the first) */
    int64_t high_watermark; /* source high watermark as last seen by the consumer, -1 unknown */
    int forwarded;          /* 1: its batches are forwarded as they are; 0: record by record */
    /* Wall-clock ms, for MirrorMaker 2's names (mdash.h). Latency: source timestamp until the
     * destination acknowledged the copy (a forwarded batch: its newest timestamp). Age: source
     * timestamp until the record was handed to the producer (record path only). */
    int64_t latency_ms, age_ms; /* of the last record; -1: none yet */
    mwin_t latency_win, age_win; /* over the last 30 to 60 s (mwin.h) */
} rtask_part_stats_t;

typedef struct rtask rtask_t;

/** Queues the task's setup; it then runs on a copy thread. */
rtask_t *rtask_new(const rtask_params_t *p);
void rtask_set_paused(rtask_t *t, int paused);
/** Asks the thread to stop gracefully (flush, store offsets); an EXITED event follows. */
void rtask_stop(rtask_t *t);
/** Stops at once: unsent records are dropped and no offsets are written (the worker lost its
 *  claim on the partitions). An EXITED event follows. When it returns the task appends no
 *  further record or offset record to any producer. Worker-wide: the caller fences every task
 *  that shares a producer, then purges that producer (wprod_purge), which drops their unsent
 *  records; purged reports never advance offsets. A task with its own producer purges it. */
void rtask_fence(rtask_t *t);
/** Delivery report callback of every producer tasks use, the shared one included (any thread):
 *  routes the report to its task (a copied record's opaque is its partition's state, which
 *  knows its task; an offset record's is the tagged task), queues it there and wakes the
 *  task's copy thread. */
void rtask_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/** The same for a batch of reports (RD_KAFKA_EVENT_DR, the shared producer's poller): one lock
 *  and at most one wake-up per task and batch. */
void rtask_delivery_batch(rd_kafka_message_t **m, size_t n);
/** Frees; call after EXITED (or it waits for it). Accepts NULL. */
void rtask_destroy(rtask_t *t);
void rtask_get_stats(const rtask_t *t, rtask_stats_t *out);
/** Per-partition counters; calls @p fn for each partition once the task has set them up
 *  (none before). Any thread. */
void rtask_foreach_partition(const rtask_t *t, void (*fn)(void *arg, const rtask_part_stats_t *ps),
                             void *arg);
uint64_t rtask_instance(const rtask_t *t);

/** Key and value of an offset record, as Kafka Connect's OffsetStorageWriter writes them:
 *  ["<connector>",{"topic":"t","partition":p}] -> {"offset":next}. malloc'd. An offset set
 *  over REST (@p altered) also carries "ferry.altered":true: a task then starts exactly there
 *  instead of after the last record at the destination (GET .../offsets does not show it).
 *  @p map (may be NULL) is the partition's offset map (omap.h), kept in the same value. */
char *rtask_offset_key(const char *connector, const char *topic, int partition);
char *rtask_offset_value(int64_t next, int altered, const omap_t *map);
#define RTASK_ALTERED_KEY "ferry.altered"

#endif
