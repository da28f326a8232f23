/* rtask_int.h: the insides of a replicator task, shared by its files:
 *
 *   rtask.c        life cycle (new, stop, fence, destroy), the setup job (on the setup pool),
 *                  stats, offset record format
 *   rtask_copy.c   what a copy thread does for the task: take records, produce them, apply
 *                  delivery reports, store offsets, pause, stop (copier.h calls these)
 *   rtask_tail.c   the destination-tail resume (where a partition continues after a crash)
 *   rtask_txn.c    transactions (exactly.once.source.support=enabled)
 *
 * Who touches what: the setup job owns the task until it hands it to a copy thread
 * (copier_add); from then on that copy thread alone touches partition state (tpart_t), the
 * produce path and the task's phase. The herder (h2o loop thread) only flips the atomic
 * flags (stop, paused, fenced) and reads the atomic counters. Delivery reports cross from the
 * producer's poller thread through the dq inbox (dq_lock). */
#ifndef FERRY_RTASK_INT_H
#define FERRY_RTASK_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "worker/copier.h"
#include "worker/omap.h"
#include "worker/rtask.h"
#include "worker/scons.h"
#include "worker/tpool.h"

typedef struct rtask rtask_t;

/* The source offsets (and source timestamps) of a partition's records that are produced and
 * not yet reported, in produce order: an idempotent producer reports a partition's records in
 * that order, so each report is the oldest one here. The timestamp is kept because a report's
 * is the broker's append time when the destination topic uses LogAppendTime. */
typedef struct ofent {
    int64_t offset, timestamp;
} ofent_t;

typedef struct ofifo {
    ofent_t *v;
    size_t head, n, cap; /* ring */
} ofifo_t;

typedef struct tpart {
    rtask_t *task;
    int topic; /* index into topics */
    int32_t partition;
    int64_t start;   /* stored next offset, -1 = none */
    int64_t acked;   /* next offset whose predecessors are all acknowledged; -1 = nothing yet */
    int64_t written; /* last value written to the offset topic */
    int64_t expect;  /* next offset we expect to consume, to report gaps */
    int64_t committed; /* transactional mode: next offset as of the last committed transaction */
    int64_t dest_last; /* highest source offset found at the destination's end, -1 = none */
    int64_t dest_last_at; /* the destination offset of that record */
    omap_t map;           /* source -> destination offsets of what was copied (omap.h) */
    omap_t map_committed; /* transactional mode: the map as of the last committed transaction */
    int altered;       /* the stored offset was set over REST: start exactly there */
    int batch;         /* forwarded by the batch passthrough engine (bpass.h), not the record path */
    ofifo_t inflight;  /* copy thread: source offsets produced, not reported */
    uint64_t tally_records, tally_bytes; /* copy thread: this drain's counts, not yet in st_* */
    /* copy thread: the latencies of this drain's acknowledged copies, and the source
     * timestamps of the records produced since the last service (their ages are taken then,
     * with one clock read), before they go into the windows below */
    uint64_t lat_n, age_n;
    int64_t lat_min, lat_max, lat_last, age_ts0, age_ts_min, age_ts_max, age_ts_last;
    double lat_sum, age_dsum; /* age_dsum: sum of (timestamp - age_ts0) */
    /* for rtask_foreach_partition (other threads read them) */
    atomic_uint_fast64_t st_records, st_bytes;
    atomic_int_fast64_t st_next, st_hwm;
    atomic_int st_batch; /* batch, for other threads */
    mwin_t st_lat_win, st_age_win; /* under the task's st_lock, as the next two */
    int64_t st_lat_ms, st_age_ms;
} tpart_t;

/* One delivery report, queued by rtask_delivery_cb (a record), or by the batch passthrough
 * engine (kind != 0: bpass_report_t), for the copy thread. */
typedef struct dres {
    tpart_t *tp;       /* NULL for an offset record */
    int64_t dst_offset;
    int64_t timestamp; /* a batch's max timestamp (a record's is in its in-flight entry) */
    size_t bytes;      /* key + value (a batch: its size) */
    rd_kafka_resp_err_t err;
    int kind;          /* 0: a record's delivery report; else a bpass_report_t */
    int32_t records;   /* a batch's records */
    int64_t src, src_last; /* a batch's source offsets */
    char *msg;         /* BPASS_FAILED: why (malloc'd, freed when applied) */
} dres_t;

typedef struct dqueue {
    dres_t *v;
    size_t n, cap;
} dqueue_t;

typedef struct ttopic {
    char *name, *target;
    rd_kafka_topic_t *rkt; /* producer topic handle for the target */
    int nparts;            /* source partition count (from metadata) */
} ttopic_t;

/* Where a task is, on its copy thread. */
typedef enum {
    RT_SETUP = 0,  /* the setup job runs (not on a copy thread yet) */
    RT_COPYING,    /* on its copy thread */
    RT_DRAINING,   /* stopping: waiting for the reports of what it produced */
    RT_STORING,    /* stopping: waiting for the reports of its last offset records */
    RT_DONE,       /* EXITED posted; the copy thread lets go of it */
} rt_phase_t;

struct rtask {
    char *connector;
    int task;
    uint64_t instance;
    json_t *config, *offsets;
    const wconf_t *wc;
    int worker_tasks;
    h2o_multithread_receiver_t *recv;
    copier_t *copier;
    tpool_t *setup_pool;
    scons_t *sc;             /* the (shared) source consumer, borrowed: the herder holds the reference */
    struct bpass *bp;        /* the batch passthrough engine, borrowed; NULL: record path only */
    atomic_int stop, paused, fenced;
    atomic_uint_fast64_t records, bytes, flushed, errors, retries;
    atomic_uint_fast64_t batch_records, batches, fallbacks; /* forwarded undecoded (bpass.h) */
    atomic_uint_fast64_t latency[RTASK_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t latency_sum_ms;
    uint64_t polled, settled; /* copy thread: records produced; their reports applied */
    atomic_uint_fast64_t st_polled, st_settled; /* the same, for other threads */
    pthread_mutex_t st_lock;  /* the partitions' latency and age windows */
    atomic_int parts_ready; /* parts and topics are set up and stay until rtask_destroy */
    atomic_int exited;      /* EXITED posted: rtask_destroy may free it (exit_cond, dq_lock) */
    pthread_cond_t exit_cond;
    /* delivery reports from the producer's poller (or this task's own producer) */
    pthread_mutex_t dq_lock;
    dqueue_t dq;            /* under dq_lock */
    atomic_int inflight;    /* records and offset records produced and not reported yet */
    /* Held around each produce call and by rtask_fence: once rtask_fence returns, this task
     * appends nothing more to a (shared) producer. */
    pthread_mutex_t gate;
    wprod_t *wp;            /* the worker's shared producer, or NULL: the task has its own */
    copier_thread_t *ct;    /* its copy thread, once handed over (written before copier_add) */
    /* copy thread (setup job before) */
    rt_phase_t phase;
    dqueue_t dq_spare;
    rd_kafka_t *prod;       /* our own producer, or wprod_handle(wp) */
    rd_kafka_queue_t *prod_q; /* our own producer's main queue, signalling the copy thread */
    rd_kafka_topic_t *offset_rkt;
    ttopic_t *topics;
    int ntopics;
    tpart_t *parts;
    int nparts;
    rd_kafka_topic_partition_list_t *assigned; /* every partition, with its start offset */
    rd_kafka_topic_partition_list_t *rec;      /* the ones on the record path (assigned on sc) */
    int bp_live;            /* partitions the engine holds (added, not yet released) */
    uint64_t st_fallbacks;
    int failed;
    int64_t queued_at; /* rtask_new: when its setup was queued */
    int map_new; /* an offset map gained a segment: store it now */
    int copied;  /* records were produced since the last service: last_record = now */
    char trace[1024];
    int provenance;
    const char *src_alias, *dst_alias;
    int max_poll;
    int owning;
    int was_paused;
    uint64_t purged;
    char worker_id[300];
    int64_t next_flush, next_hwm, last_record, stop_deadline, store_deadline;
    int warned_slow;
    /* delivery: source-offset header and transactions (rtask_tail.c, rtask_txn.c) */
    int pos_header;
    const char *pos_header_name;
    int txn, txn_per_poll, txn_open, txn_dirty, aborting;
    int64_t txn_interval_ms;
};

/* rtask.c */
void rtask_fail(rtask_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rtask_post(rtask_t *t, rtask_ev_type_t type, const char *trace);
const char *rtask_cfg(const rtask_t *t, const char *key, const char *def);
void rtask_log_ownership(const rtask_t *t, const char *what);

/* rtask_copy.c (the copy thread: copier.c calls these) */
void rtask_copy_begin(rtask_t *t, copier_thread_t *ct, int64_t now);
/** Produces one consumed record of the partition @p owner (a tpart_t). @returns 1 if the
 *  producer had no room (the record stays the caller's), else 0 (taken). */
int rtask_copy_record(void *owner, rd_kafka_message_t *m);
/** Everything else a task does on its copy thread. @returns 1 once the task has exited (the
 *  copy thread lets go of it). Lowers *next to the task's next deadline. */
int rtask_copy_service(rtask_t *t, int64_t now, int64_t *next);
/** Forgets what was prepared for a parked record the copy thread is about to drop. */
void rtask_copy_forget(rd_kafka_message_t *m);
scons_t *rtask_copy_scons(const rtask_t *t);
int rtask_copy_npartitions(const rtask_t *t);
/** Queues a report of the batch passthrough engine (its thread) and wakes the copy thread;
 *  @p settles: it ends one batch counted in inflight. @p r->msg is taken. */
void rtask_batch_report(rtask_t *t, const dres_t *r, int settles);
/** The task's end: logged, RT_DONE, the EXITED event, rtask_destroy may go on. */
void rtask_exited(rtask_t *t);
/** Destroys the task's topic handles (the record path's and the offset topic's). */
void rtask_release_topics(rtask_t *t);
/** Applies every queued delivery report (copy thread). */
void rtask_drain_reports(rtask_t *t);
/** Queues an offset record for each partition whose acknowledged offset moved. */
void rtask_flush_offsets(rtask_t *t);

/* rtask_tail.c (setup job) */
int rtask_resume_from_destination(rtask_t *t);

/* rtask_txn.c (copy thread; transactional tasks have one of their own) */
int rtask_txn_init(rtask_t *t);
void rtask_txn_begin(rtask_t *t);
void rtask_txn_commit(rtask_t *t);

#endif
