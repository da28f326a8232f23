/* rtask: the replicator task thread. See rtask.h.
 *
 *   source consumer ──batch──▶ producev(no copy: the consumer message is the opaque)
 *        ▲                             │  (the worker's shared producer, or our own)
 *        │                             ▼
 *        │                  delivery report (poller thread): queued for this task
 *        │                             │
 *        └── offsets written ◀── drain (task thread: advances acked[p], the offset map,
 *            every flush interval     destroys the consumer message)
 *
 * Memory is bounded on both sides: the consumer prefetch by queued.max.messages.kbytes,
 * the producer by queue.buffering.max.*; when the producer queue is full the thread
 * serves delivery reports instead of consuming, so a slow destination slows the copy. */
#include "worker/rtask.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/mbudget.h"
#include "worker/omap.h"
#include "worker/repl.h"
#include "worker/wprod.h"

#define PROVENANCE_HEADER "__ferry.provenance"

typedef struct tpart {
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
    /* for rtask_foreach_partition (other threads read them) */
    atomic_uint_fast64_t st_records, st_bytes;
    atomic_int_fast64_t st_next, st_hwm;
} tpart_t;

/* One delivery report, queued by rtask_delivery_cb for the task thread (see drain()). */
typedef struct dres {
    rd_kafka_message_t *src; /* the consumed record; NULL for an offset record */
    int64_t dst_offset;
    rd_kafka_resp_err_t err;
} dres_t;

typedef struct dqueue {
    dres_t *v;
    size_t n, cap;
} dqueue_t;

typedef struct ttopic {
    char *name, *target;
    rd_kafka_topic_t *rkt; /* producer topic handle for the target */
    int nparts;            /* source partition count (from metadata) */
    int *index;            /* partition -> tpart index or -1, size maxpart+1 */
    int maxpart;
} ttopic_t;

struct rtask {
    char *connector;
    int task;
    uint64_t instance;
    json_t *config, *offsets;
    const wconf_t *wc;
    int worker_tasks; /* tasks of this worker when this one started: its memory budget share */
    h2o_multithread_receiver_t *recv;
    pthread_t thread;
    atomic_int stop, paused, fenced;
    atomic_uint_fast64_t records, bytes, flushed, errors, retries;
    atomic_uint_fast64_t latency[RTASK_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t latency_sum_ms;
    atomic_int parts_ready; /* parts and topics are set up and stay until rtask_destroy */
    /* Delivery reports cross from whichever thread polls the producer (the shared producer's
     * poller, or this task's thread for its own producer) through this queue; the task thread
     * applies them (drain). inflight: records and offset records produced and not reported
     * yet (incremented by the task thread before producing, decremented when queued). */
    pthread_mutex_t dq_lock;
    pthread_cond_t dq_cond;
    dqueue_t dq;    /* under dq_lock */
    int dq_waiting; /* under dq_lock: the task thread waits on dq_cond */
    atomic_int inflight;
    /* Held by the task thread around each produce call and by rtask_fence: once rtask_fence
     * returns, this task appends nothing more to a (shared) producer. */
    pthread_mutex_t gate;
    wprod_t *wp; /* the worker's shared producer, or NULL: the task has its own */
    /* thread-owned */
    dqueue_t dq_spare;
    rd_kafka_t *cons, *prod; /* prod: our own, or wprod_handle(wp) */
    rd_kafka_topic_t *offset_rkt;
    ttopic_t *topics;
    int ntopics;
    tpart_t *parts;
    int nparts;
    int failed;
    int map_new; /* an offset map gained a segment: store it now (see copy_loop) */
    char trace[1024];
    int provenance;
    const char *src_alias, *dst_alias;
    int max_poll;
    int owning;
    uint64_t purged;
    char worker_id[300];
    /* delivery: source-offset header and transactions (see resume_from_destination, txn_commit) */
    int pos_header;
    const char *pos_header_name;
    int txn, txn_per_poll, txn_open, aborting;
    int64_t txn_interval_ms;
};

const double rtask_latency_bounds[RTASK_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                              1, 2.5, 5, 10, 60, 600, 3600};

void rtask_ev_free(rtask_ev_t *ev)
{
    free(ev->connector);
    free(ev->trace);
    free(ev);
}

static void post(rtask_t *t, rtask_ev_type_t type, const char *trace)
{
    rtask_ev_t *ev = calloc(1, sizeof *ev);
    ev->type = type;
    ev->connector = strdup(t->connector);
    ev->task = t->task;
    ev->instance = t->instance;
    ev->trace = trace ? strdup(trace) : NULL;
    h2o_multithread_send_message(t->recv, &ev->super);
}

char *rtask_offset_key(const char *connector, const char *topic, int partition)
{
    json_t *k = json_pack("[s,{s:s,s:i}]", connector, "topic", topic, "partition", partition);
    char *s = json_dumps(k, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(k);
    return s;
}

char *rtask_offset_value(int64_t next, int altered, const omap_t *map)
{
    json_t *v = json_pack("{s:I}", "offset", (json_int_t)next);
    if (altered)
        json_object_set_new(v, RTASK_ALTERED_KEY, json_true());
    if (map && map->n > 0)
        omap_to_json(map, v);
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    return s;
}

static const char *cfg(const rtask_t *t, const char *key, const char *def)
{
    const char *v = json_string_value(json_object_get(t->config, key));
    return v ? v : def;
}

static void fail(rtask_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(rtask_t *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->trace, sizeof t->trace, fmt, ap);
    va_end(ap);
    t->failed = 1;
    atomic_fetch_add(&t->errors, 1);
    FLOG(ERROR, TASK, "task %s-%d failed: %s", t->connector, t->task, t->trace);
}

/* ---- delivery reports (task thread) ------------------------------------------------- */

static tpart_t *find_part(rtask_t *t, const char *topic, int32_t partition)
{
    for (int i = 0; i < t->ntopics; i++) {
        ttopic_t *tt = &t->topics[i];
        if (strcmp(tt->name, topic) == 0)
            return partition >= 0 && partition <= tt->maxpart && tt->index[partition] >= 0
                       ? &t->parts[tt->index[partition]]
                       : NULL;
    }
    return NULL;
}

/* Replication latency of one acknowledged copy: now minus the source record's timestamp. */
static void count_latency(rtask_t *t, const rd_kafka_message_t *src)
{
    int64_t ts = rd_kafka_message_timestamp(src, NULL);
    if (ts <= 0)
        return;
    int64_t ms = kutil_wall_ms() - ts;
    if (ms < 0)
        ms = 0;
    size_t b = 0;
    while (b < RTASK_LATENCY_BUCKETS && (double)ms / 1000.0 > rtask_latency_bounds[b])
        b++;
    atomic_fetch_add_explicit(&t->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->latency_sum_ms, (uint64_t)ms, memory_order_relaxed);
}

/* librdkafka's statistics (every statistics.interval.ms, on the task thread): the producer's
 * retried requests, summed over brokers. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    rtask_t *t = opaque;
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *brokers = json_object_get(j, "brokers"), *b;
    const char *name;
    uint64_t retries = 0;
    json_object_foreach(brokers, name, b) retries += (uint64_t)json_integer_value(json_object_get(b, "txretries"));
    if (j)
        atomic_store(&t->retries, retries);
    json_decref(j);
    return 0;
}

/* Offset records carry their task, tagged in the lowest bit, as their opaque; copied
 * records carry the consumed message, whose topic handle (the task's consumer's) has the task
 * as its opaque (make_clients). */
#define OFFSET_OPAQUE(t) ((void *)((uintptr_t)(t) | 1))

void rtask_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    uintptr_t o = (uintptr_t)m->_private;
    rd_kafka_message_t *src = o & 1 ? NULL : m->_private;
    rtask_t *t = src ? rd_kafka_topic_opaque(src->rkt) : (rtask_t *)(o & ~(uintptr_t)1);
    pthread_mutex_lock(&t->dq_lock);
    if (t->dq.n == t->dq.cap) {
        t->dq.cap = t->dq.cap ? 2 * t->dq.cap : 1024;
        t->dq.v = realloc(t->dq.v, t->dq.cap * sizeof *t->dq.v);
    }
    t->dq.v[t->dq.n++] = (dres_t){.src = src, .dst_offset = m->offset, .err = m->err};
    atomic_fetch_sub(&t->inflight, 1);
    if (t->dq_waiting)
        pthread_cond_signal(&t->dq_cond);
    pthread_mutex_unlock(&t->dq_lock);
}

/* Applies one delivery report (task thread): advances the acknowledged offset and the offset
 * map, counts, and frees the consumed record. */
static void apply_report(rtask_t *t, const dres_t *r)
{
    rd_kafka_message_t *src = r->src;
    if (!src) { /* an offset record */
        if (r->err)
            FLOG(WARN, TASK, "task %s-%d: storing offsets failed: %s", t->connector, t->task,
                 rd_kafka_err2str(r->err));
        else
            atomic_fetch_add(&t->flushed, 1);
        return;
    }
    tpart_t *tp = find_part(t, rd_kafka_topic_name(src->rkt), src->partition);
    if ((r->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || r->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
         r->err == RD_KAFKA_RESP_ERR__DESTROY) &&
        (atomic_load(&t->stop) || t->aborting)) {
        /* dropped on purpose by a stop, a fence or an aborted transaction: copied again by
         * the next owner, or by this task after it rewinds */
        t->purged++;
    } else if (r->err) {
        fail(t, "delivery to %s[%d] failed: %s", tp ? t->topics[tp->topic].target : "?", src->partition,
             rd_kafka_err2str(r->err));
    } else if (!t->failed) {
        if (tp && src->offset + 1 > tp->acked)
            tp->acked = src->offset + 1;
        if (tp && omap_record(&tp->map, src->offset, r->dst_offset))
            t->map_new = 1;
        atomic_fetch_add(&t->records, 1);
        atomic_fetch_add(&t->bytes, src->len + src->key_len);
        if (tp) {
            atomic_fetch_add_explicit(&tp->st_records, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&tp->st_bytes, src->len + src->key_len, memory_order_relaxed);
            atomic_store_explicit(&tp->st_next, tp->acked, memory_order_relaxed);
        }
        count_latency(t, src);
    }
    rd_kafka_message_destroy(src);
}

/* Applies every queued report, in the order they were reported (per partition: produce order). */
static void drain(rtask_t *t)
{
    pthread_mutex_lock(&t->dq_lock);
    dqueue_t got = t->dq;
    t->dq = t->dq_spare;
    t->dq.n = 0;
    pthread_mutex_unlock(&t->dq_lock);
    for (size_t i = 0; i < got.n; i++)
        apply_report(t, &got.v[i]);
    got.n = 0;
    t->dq_spare = got;
}

/* Serves delivery reports for up to @p ms: polls our own producer, or waits for the shared
 * producer's poller to queue some. */
static void serve(rtask_t *t, int ms)
{
    if (!t->wp) {
        rd_kafka_poll(t->prod, ms);
    } else if (ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&t->dq_lock);
        if (t->dq.n == 0) {
            t->dq_waiting = 1;
            pthread_cond_timedwait(&t->dq_cond, &t->dq_lock, &ts);
            t->dq_waiting = 0;
        }
        pthread_mutex_unlock(&t->dq_lock);
    }
    drain(t);
}

/* Serves reports until none of this task's records is outstanding, for at most @p ms.
 * @returns 1 if none is. */
static int wait_inflight(rtask_t *t, int64_t ms)
{
    int64_t deadline = kutil_now_ms() + ms;
    for (;;) {
        drain(t);
        if (atomic_load(&t->inflight) == 0) {
            drain(t);
            return 1;
        }
        int64_t left = deadline - kutil_now_ms();
        if (left <= 0)
            return 0;
        serve(t, left < 100 ? (int)left : 100);
    }
}

/* ---- setup -------------------------------------------------------------------------- */

static int build_partitions(rtask_t *t)
{
    json_t *list = repl_parse_partitions(cfg(t, REPL_TASK_PARTITIONS, ""));
    if (!list) {
        fail(t, "malformed task config: %s", REPL_TASK_PARTITIONS);
        return -1;
    }
    const char *fmt = cfg(t, "topic.rename.format", "${topic}.replica");
    t->nparts = (int)json_array_size(list);
    t->parts = calloc(t->nparts ? t->nparts : 1, sizeof(tpart_t));
    t->topics = calloc(t->nparts ? t->nparts : 1, sizeof(ttopic_t));
    size_t i;
    json_t *pv;
    json_array_foreach(list, i, pv) {
        const char *name = json_string_value(json_array_get(pv, 0));
        int32_t p = (int32_t)json_integer_value(json_array_get(pv, 1));
        int ti;
        for (ti = 0; ti < t->ntopics && strcmp(t->topics[ti].name, name); ti++)
            ;
        if (ti == t->ntopics) {
            t->topics[ti].name = strdup(name);
            t->topics[ti].target = repl_rename(fmt, name);
            t->topics[ti].maxpart = -1;
            t->ntopics++;
        }
        if (p > t->topics[ti].maxpart)
            t->topics[ti].maxpart = p;
        tpart_t *tp = &t->parts[i];
        tp->topic = ti;
        tp->partition = p;
        char key[512];
        snprintf(key, sizeof key, "%s:%d", name, p);
        json_t *o = json_object_get(t->offsets, key);
        json_t *off = json_object_get(o, "offset");
        tp->start = json_is_integer(off) ? json_integer_value(off) : -1;
        tp->altered = json_is_true(json_object_get(o, "altered"));
        if (omap_from_json(&tp->map, o))
            FLOG(WARN, TASK, "task %s-%d: the stored offset map of %s is malformed; starting a new one",
                 t->connector, t->task, key);
        tp->map_committed = tp->map;
        tp->acked = tp->written = tp->start;
        tp->expect = tp->start;
    }
    for (int ti = 0; ti < t->ntopics; ti++) {
        ttopic_t *tt = &t->topics[ti];
        tt->index = malloc((tt->maxpart + 1) * sizeof(int));
        for (int p = 0; p <= tt->maxpart; p++)
            tt->index[p] = -1;
    }
    for (int i2 = 0; i2 < t->nparts; i2++) {
        t->topics[t->parts[i2].topic].index[t->parts[i2].partition] = i2;
        atomic_store(&t->parts[i2].st_next, t->parts[i2].start);
        atomic_store(&t->parts[i2].st_hwm, -1);
    }
    json_decref(list);
    atomic_store_explicit(&t->parts_ready, 1, memory_order_release);
    return 0;
}

/* The value of a client key as the user set it in the last of @p layers that has it (the
 * worker-level props, then the connector config prefixes in order), or NULL. */
static const char *user_value(const rtask_t *t, const props_t *worker, const char *const *prefixes,
                              const char *key)
{
    const char *v = props_get(worker, key);
    for (; *prefixes; prefixes++) {
        char k[256];
        snprintf(k, sizeof k, "%s%s", *prefixes, key);
        const char *cv = json_string_value(json_object_get(t->config, k));
        if (cv)
            v = cv;
    }
    return v;
}

static int64_t user_num(const rtask_t *t, const props_t *worker, const char *const *prefixes,
                        const char *key)
{
    const char *v = user_value(t, worker, prefixes, key);
    return v ? atoll(v) : 0;
}

/* The per-task share of ferry.memory.budget.bytes (mbudget.h) as client settings. Called after
 * every user layer has been applied, so the settings the user gave explicitly are kept. */
static void apply_budget(rtask_t *t, rd_kafka_conf_t *pc, rd_kafka_conf_t *cc)
{
    static const char *const prod_layers[] = {"dest.kafka.", "producer.override.", NULL};
    static const char *const cons_layers[] = {"src.kafka.", "src.consumer.", NULL};
    const wconf_t *wc = t->wc;
    char v[64];
    size_t n = sizeof v;
    int64_t msg_max = rd_kafka_conf_get(pc, "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK ? atoll(v) : 0;
    mbudget_limits_t user = {
        .consumer_kbytes = user_num(t, wc->consumer, cons_layers, "queued.max.messages.kbytes"),
        .producer_kbytes = user_num(t, wc->producer, prod_layers, "queue.buffering.max.kbytes"),
        .producer_messages = user_num(t, wc->producer, prod_layers, "queue.buffering.max.messages"),
    }, lim;
    mbudget_task_limits(wc->memory_budget_bytes, t->worker_tasks, msg_max, &user, &lim);
    snprintf(v, sizeof v, "%lld", (long long)lim.consumer_kbytes);
    kutil_conf_set(cc, "queued.max.messages.kbytes", v, NULL, NULL);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_kbytes);
    kutil_conf_set(pc, "queue.buffering.max.kbytes", v, NULL, NULL);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_messages);
    kutil_conf_set(pc, "queue.buffering.max.messages", v, NULL, NULL);
    if (t->wp) /* the shared producer has one worker-wide share (wprod.c) */
        FLOG(DEBUG, TASK, "task %s-%d: memory share of %d task(s): queued.max.messages.kbytes=%lld",
             t->connector, t->task, t->worker_tasks, (long long)lim.consumer_kbytes);
    else
        FLOG(DEBUG, TASK, "task %s-%d: memory share of %d task(s): queued.max.messages.kbytes=%lld "
             "queue.buffering.max.kbytes=%lld queue.buffering.max.messages=%lld", t->connector, t->task,
             t->worker_tasks, (long long)lim.consumer_kbytes, (long long)lim.producer_kbytes,
             (long long)lim.producer_messages);
}

/* The source consumer, and the destination producer unless the task shares the worker's
 * (then its conf is built only to check the keys and derive the budget, and dropped). */
static int make_clients(rtask_t *t)
{
    const wconf_t *wc = t->wc;
    ferr_t err = {0};
    char e[512];
    char cid[300];
    snprintf(cid, sizeof cid, "ferry-%s-%d", t->connector, t->task);
    rd_kafka_conf_t *pc = kutil_copy_producer_conf(wc->bootstrap_servers, cid);
    if (t->txn) {
        /* Kafka Connect's transactional id for a source task (KIP-618): a new owner's
         * init_transactions() bumps the epoch and fences every older producer of this task. */
        char txid[600];
        snprintf(txid, sizeof txid, "%s-%s-%d", wc->group_id, t->connector, t->task);
        kutil_conf_set(pc, "transactional.id", txid, NULL, NULL);
    }
    if (kutil_conf_apply(pc, wc->common, "", &err) || kutil_conf_apply(pc, wc->producer, "producer.", &err) ||
        kutil_conf_apply_prefixed(pc, t->config, "dest.kafka.", &err) ||
        kutil_conf_apply_prefixed(pc, t->config, "producer.override.", &err)) {
        rd_kafka_conf_destroy(pc);
        fail(t, "%s", err.msg);
        return -1;
    }
    kutil_conf_set(pc, "bootstrap.servers", wc->bootstrap_servers, NULL, NULL);
    rd_kafka_conf_set_dr_msg_cb(pc, rtask_delivery_cb);
    if (!kutil_conf_set(pc, "statistics.interval.ms", "5000", NULL, NULL))
        rd_kafka_conf_set_stats_cb(pc, stats_cb);
    rd_kafka_conf_set_opaque(pc, t);
    const char *src = cfg(t, "src.kafka.bootstrap.servers", "");
    rd_kafka_conf_t *cc = kutil_conf_new(src);
    kutil_conf_set(cc, "client.id", cid, NULL, NULL);
    kutil_conf_set(cc, "group.id", cid, NULL, NULL); /* required by assign(); never committed */
    kutil_conf_set(cc, "enable.auto.commit", "false", NULL, NULL);
    kutil_conf_set(cc, "enable.auto.offset.store", "false", NULL, NULL);
    kutil_conf_set(cc, "auto.offset.reset", "earliest", NULL, NULL);
    kutil_conf_set(cc, "fetch.wait.max.ms", "100", NULL, NULL);
    kutil_conf_set(cc, "queued.min.messages", "1000000", NULL, NULL);
    if (kutil_conf_apply(cc, wc->consumer, "consumer.", &err) ||
        kutil_conf_apply_prefixed(cc, t->config, "src.kafka.", &err) ||
        kutil_conf_apply_prefixed(cc, t->config, "src.consumer.", &err)) {
        rd_kafka_conf_destroy(cc);
        rd_kafka_conf_destroy(pc);
        fail(t, "%s", err.msg);
        return -1;
    }
    /* the delivery reports find the task through the consumed record's topic handle: every
     * topic of our consumer gets the task as its opaque */
    rd_kafka_topic_conf_t *tc = rd_kafka_conf_get_default_topic_conf(cc);
    if (!tc) {
        tc = rd_kafka_topic_conf_new();
        rd_kafka_conf_set_default_topic_conf(cc, tc);
        tc = rd_kafka_conf_get_default_topic_conf(cc);
    }
    rd_kafka_topic_conf_set_opaque(tc, t);
    apply_budget(t, pc, cc);
    if (t->wp) {
        rd_kafka_conf_destroy(pc);
        t->prod = wprod_handle(t->wp);
    } else if (!(t->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e))) {
        rd_kafka_conf_destroy(cc);
        fail(t, "cannot create the destination producer: %s", e);
        return -1;
    }
    kutil_conf_set(cc, "bootstrap.servers", src, NULL, NULL);
    if (!(t->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e))) {
        fail(t, "cannot create the source consumer: %s", e);
        return -1;
    }
    t->offset_rkt = rd_kafka_topic_new(t->prod, wc->offset_topic, NULL);
    for (int i = 0; i < t->ntopics; i++)
        t->topics[i].rkt = rd_kafka_topic_new(t->prod, t->topics[i].target, NULL);
    return 0;
}

/* The destination must have at least the source's partitions: partition p goes to partition p. */
static int check_destination(rtask_t *t)
{
    ferr_t err = {0};
    for (int i = 0; i < t->ntopics && !atomic_load(&t->stop); i++) {
        ttopic_t *tt = &t->topics[i];
        tt->nparts = kutil_partition_count(t->cons, tt->name, 10000, &err);
        if (tt->nparts < 0) {
            fail(t, "%s", err.msg);
            return -1;
        }
        int have = 0;
        for (int tries = 0; tries < 100 && !atomic_load(&t->stop); tries++) {
            have = kutil_partition_count(t->prod, tt->target, 10000, &err);
            if (have > 0)
                break;
            if (tries == 20) { /* not created by the connector: let the broker auto-create it */
                const struct rd_kafka_metadata *md;
                if (!rd_kafka_metadata(t->prod, 0, tt->rkt, &md, 5000))
                    rd_kafka_metadata_destroy(md);
            }
            usleep(100 * 1000);
        }
        if (have <= 0) {
            fail(t, "destination topic %s does not exist and could not be created", tt->target);
            return -1;
        }
        if (have < tt->maxpart + 1 || have < tt->nparts) {
            fail(t, "destination topic %s has %d partitions but source topic %s has %d; ferry keeps "
                    "partition numbers, so the destination needs at least as many",
                 tt->target, have, tt->name, tt->nparts);
            return -1;
        }
    }
    return 0;
}

/* Fences every older producer of this task and aborts its open transaction (transactional
 * mode only). Must precede reading the destination's end, which an open transaction hides. */
static int init_transactions(rtask_t *t)
{
    if (!t->txn)
        return 0;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(t->prod, 30000);
        if (!e) {
            FLOG(INFO, TASK, "task %s-%d: transactions started (transactional.id=%s-%s-%d), older "
                 "producers of this task fenced", t->connector, t->task, t->wc->group_id, t->connector, t->task);
            return 0;
        }
        int retry = rd_kafka_error_is_retriable(e) && !atomic_load(&t->stop);
        if (!retry)
            fail(t, "cannot start transactions on the destination: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (!retry)
            return -1;
    }
}

static tpart_t *find_target_part(rtask_t *t, const char *target, int32_t partition)
{
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition && !strcmp(t->topics[t->parts[i].topic].target, target))
            return &t->parts[i];
    return NULL;
}

static int64_t header_offset(const rtask_t *t, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) ||
        rd_kafka_header_get_last(h, t->pos_header_name, &v, &len) || len != 8)
        return -1;
    uint64_t off = 0;
    for (int i = 0; i < 8; i++)
        off = off << 8 | ((const unsigned char *)v)[i];
    return (int64_t)off;
}

/* Reads the end of every destination partition of this task and records, in dest_last, the
 * highest source offset its records carry in the source-offset header. It reads a window
 * before the high watermark, growing it (x8) while it holds no such header, so aborted
 * transactions or markers at the end do not hide the last copied record. */
static int read_destination_ends(rtask_t *t)
{
    const wconf_t *wc = t->wc;
    ferr_t err = {0};
    char e[512], gid[300];
    rd_kafka_conf_t *c = kutil_conf_new(wc->bootstrap_servers);
    snprintf(gid, sizeof gid, "ferry-%s-%d-end", t->connector, t->task);
    kutil_conf_set(c, "group.id", gid, NULL, NULL);
    kutil_conf_set(c, "client.id", gid, NULL, NULL);
    kutil_conf_set(c, "enable.auto.commit", "false", NULL, NULL);
    kutil_conf_set(c, "enable.partition.eof", "true", NULL, NULL);
    kutil_conf_set(c, "fetch.wait.max.ms", "10", NULL, NULL);
    if (kutil_conf_apply(c, wc->common, "", &err) || kutil_conf_apply(c, wc->consumer, "consumer.", &err)) {
        rd_kafka_conf_destroy(c);
        fail(t, "%s", err.msg);
        return -1;
    }
    kutil_conf_set(c, "bootstrap.servers", wc->bootstrap_servers, NULL, NULL);
    kutil_conf_set(c, "isolation.level", "read_committed", NULL, NULL);
    rd_kafka_t *dc = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!dc) {
        fail(t, "cannot create a consumer for the destination: %s", e);
        return -1;
    }
    int64_t *lo = calloc(t->nparts, sizeof *lo), *hi = calloc(t->nparts, sizeof *hi),
            *window = calloc(t->nparts, sizeof *window);
    int *done = calloc(t->nparts, sizeof *done), left = 0;
    for (int i = 0; i < t->nparts && !atomic_load(&t->stop); i++) {
        tpart_t *tp = &t->parts[i];
        tp->dest_last = -1;
        window[i] = 64;
        for (int warned = 0; !atomic_load(&t->stop);) {
            rd_kafka_resp_err_t q = rd_kafka_query_watermark_offsets(
                dc, t->topics[tp->topic].target, tp->partition, &lo[i], &hi[i], 10000);
            if (!q)
                break;
            if (!warned++)
                FLOG(WARN, TASK, "task %s-%d: cannot read the end of %s[%d] yet (%s); retrying",
                     t->connector, t->task, t->topics[tp->topic].target, tp->partition, rd_kafka_err2str(q));
            usleep(500 * 1000);
        }
        done[i] = hi[i] <= lo[i];
        left += !done[i];
    }
    while (left > 0 && !atomic_load(&t->stop)) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
        int *eof = calloc(t->nparts, sizeof *eof), waiting = 0;
        for (int i = 0; i < t->nparts; i++)
            if (!done[i]) {
                int64_t from = hi[i] - window[i] > lo[i] ? hi[i] - window[i] : lo[i];
                rd_kafka_topic_partition_list_add(l, t->topics[t->parts[i].topic].target,
                                                  t->parts[i].partition)->offset = from;
                waiting++;
            }
        rd_kafka_assign(dc, l);
        rd_kafka_topic_partition_list_destroy(l);
        int64_t deadline = kutil_now_ms() + 15000;
        while (waiting > 0 && !atomic_load(&t->stop) && kutil_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(dc, 100);
            if (!m)
                continue;
            tpart_t *tp = m->rkt ? find_target_part(t, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
            int i = tp ? (int)(tp - t->parts) : -1;
            if (i >= 0 && !done[i] && !eof[i]) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->offset >= hi[i]) {
                    eof[i] = 1;
                    waiting--;
                } else if (!m->err) {
                    int64_t o = header_offset(t, m);
                    if (o > tp->dest_last) {
                        tp->dest_last = o;
                        tp->dest_last_at = m->offset;
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        for (int i = 0; i < t->nparts; i++) {
            if (done[i] || !eof[i])
                continue; /* not read to its end in time: read it again */
            if (t->parts[i].dest_last >= 0 || hi[i] - window[i] <= lo[i]) {
                done[i] = 1;
                left--;
            } else {
                window[i] *= 8;
            }
        }
        free(eof);
        rd_kafka_assign(dc, NULL);
    }
    rd_kafka_consumer_close(dc);
    rd_kafka_destroy(dc);
    free(lo);
    free(hi);
    free(window);
    free(done);
    return atomic_load(&t->stop) ? -1 : 0;
}

/* Where each partition resumes: right after the last source offset already at the
 * destination when the header says so, whatever the offset topic says (a crashed owner may
 * have copied past its last stored offset); the stored offset otherwise. Only a task that
 * stored the offset itself is followed this way: a partition without one (a new connector,
 * offsets reset over REST) or with one set over REST starts exactly where it was told, and
 * assign() stores that start at once, so a crash from then on resumes from the destination. */
static int resume_from_destination(rtask_t *t)
{
    if (!t->pos_header || read_destination_ends(t))
        return t->pos_header ? -1 : 0;
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        if (tp->dest_last < 0 || tp->dest_last + 1 == tp->start || tp->start < 0 || tp->altered)
            continue;
        FLOG(INFO, TASK, "task %s-%d: %s[%d] resumes at %lld, after the last record at the "
             "destination (stored offset: %lld)", t->connector, t->task, t->topics[tp->topic].name,
             tp->partition, (long long)tp->dest_last + 1, (long long)tp->start);
        tp->start = tp->acked = tp->expect = tp->dest_last + 1;
        /* The map ends at the stored offset; the records copied after it are contiguous with
         * it when the last one sits at the same distance (both logs advance by one per record
         * in between), and otherwise at least the last one is known. */
        omap_seg_t *last = tp->map.n ? &tp->map.seg[tp->map.n - 1] : NULL;
        if (last && tp->dest_last_at - tp->dest_last == last->dst - last->src && tp->dest_last >= last->src)
            last->n = tp->dest_last - last->src + 1;
        else
            omap_record(&tp->map, tp->dest_last, tp->dest_last_at);
        tp->map_committed = tp->map;
    }
    return 0;
}

/* One line per partition when this task starts or stops writing it, with wall-clock
 * milliseconds: tests merge these lines from every worker to prove no two owners overlap. */
static void log_ownership(const rtask_t *t, const char *what)
{
    int64_t now = kutil_wall_ms();
    for (int i = 0; i < t->nparts; i++)
        FLOG(INFO, TASK, "ownership %s task=%s-%d partition=%s:%d worker=%s at=%lld", what, t->connector,
             t->task, t->topics[t->parts[i].topic].name, t->parts[i].partition, t->worker_id,
             (long long)now);
}

static void flush_offsets(rtask_t *t)
{
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        if (tp->acked < 0 || tp->acked == tp->written)
            continue;
        char *k = rtask_offset_key(t->connector, t->topics[tp->topic].name, tp->partition);
        char *v = rtask_offset_value(tp->acked, 0, &tp->map);
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FENCED;
        pthread_mutex_lock(&t->gate);
        if (!atomic_load(&t->fenced)) {
            atomic_fetch_add(&t->inflight, 1);
            e = rd_kafka_producev(t->prod, RD_KAFKA_V_RKT(t->offset_rkt), RD_KAFKA_V_KEY(k, strlen(k)),
                                  RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(OFFSET_OPAQUE(t)), RD_KAFKA_V_END);
            if (e)
                atomic_fetch_sub(&t->inflight, 1);
        }
        pthread_mutex_unlock(&t->gate);
        if (!e)
            tp->written = tp->acked;
        FLOG(DEBUG, TASK, "task %s-%d: offset %s -> %s (%s)", t->connector, t->task, k, v,
             e ? rd_kafka_err2str(e) : "queued");
        free(k);
        free(v);
    }
}

static int assign(rtask_t *t)
{
    int latest = !strcmp(cfg(t, "offset.start", "earliest"), "latest");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        int64_t off = tp->start;
        if (off < 0) {
            /* Resolve earliest/latest here: a logical offset makes librdkafka 2.0.2 query it
             * later, often after a 500 ms "no current leader" timer. */
            int64_t lo, hi;
            const char *topic = t->topics[tp->topic].name;
            if (rd_kafka_query_watermark_offsets(t->cons, topic, tp->partition, &lo, &hi, 5000) == 0)
                off = latest ? hi : lo;
            else
                off = latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_topic_partition_list_add(l, t->topics[tp->topic].name, tp->partition)->offset = off;
        tp->committed = off;
        if (off >= 0)
            atomic_store_explicit(&tp->st_next, off, memory_order_relaxed);
        if ((tp->start < 0 || tp->altered) && off >= 0) {
            tp->acked = tp->expect = off;
            tp->written = -1; /* stored below (or with the first transaction) */
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(t->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        fail(t, "cannot assign source partitions: %s", rd_kafka_err2str(e));
        return -1;
    }
    t->owning = 1;
    log_ownership(t, "acquire");
    if (!t->txn)
        flush_offsets(t);
    return 0;
}

/* ---- copy loop ---------------------------------------------------------------------- */


static int from_destination(const rtask_t *t, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;
    if (!t->provenance || rd_kafka_message_headers(m, &h) ||
        rd_kafka_header_get_last(h, PROVENANCE_HEADER, &v, &len))
        return 0;
    return len == strlen(t->dst_alias) && memcmp(v, t->dst_alias, len) == 0;
}

/* Produces one consumed record; takes ownership of @p m. */
static void copy_one(rtask_t *t, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            atomic_fetch_add(&t->errors, 1);
            FLOG(WARN, TASK, "task %s-%d: source: %s", t->connector, t->task,
                 rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return;
    }
    tpart_t *tp = find_part(t, rd_kafka_topic_name(m->rkt), m->partition);
    if (!tp || t->failed) {
        rd_kafka_message_destroy(m);
        return;
    }
    if (tp->expect >= 0 && m->offset > tp->expect)
        FLOG(WARN, TASK, "task %s-%d: %s[%d] offsets %lld..%lld were not available on the source "
             "(deleted by retention or compaction) and were not copied", t->connector, t->task,
             t->topics[tp->topic].name, tp->partition, (long long)tp->expect, (long long)m->offset - 1);
    tp->expect = m->offset + 1;
    if (from_destination(t, m)) {
        rd_kafka_message_destroy(m);
        return;
    }
    /* The headers move to the produced record (no copy); the producer owns them on success. */
    rd_kafka_headers_t *copy = NULL;
    if (rd_kafka_message_detach_headers(m, &copy))
        copy = NULL;
    if (t->provenance) {
        if (!copy)
            copy = rd_kafka_headers_new(1);
        rd_kafka_header_add(copy, PROVENANCE_HEADER, -1, t->src_alias, -1);
    }
    if (t->pos_header) {
        unsigned char be[8];
        for (int i = 0; i < 8; i++)
            be[i] = (unsigned char)((uint64_t)m->offset >> (56 - 8 * i));
        if (!copy)
            copy = rd_kafka_headers_new(1);
        rd_kafka_header_add(copy, t->pos_header_name, -1, be, sizeof be);
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    for (;;) {
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FENCED;
        pthread_mutex_lock(&t->gate); /* see rtask_fence */
        if (!atomic_load(&t->fenced)) {
            atomic_fetch_add(&t->inflight, 1);
            e = rd_kafka_producev(t->prod, RD_KAFKA_V_RKT(t->topics[tp->topic].rkt),
                                  RD_KAFKA_V_PARTITION(m->partition), RD_KAFKA_V_KEY(m->key, m->key_len),
                                  RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0),
                                  RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
            if (e)
                atomic_fetch_sub(&t->inflight, 1);
        }
        pthread_mutex_unlock(&t->gate);
        if (!e)
            return; /* the producer owns the headers; the delivery report frees m */
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !atomic_load(&t->stop)) {
            /* back-pressure: wait for the destination. With the shared producer the queue may
             * be full of other tasks' records; their reports free it up all the same. */
            serve(t, 10);
            continue;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL && e != RD_KAFKA_RESP_ERR__FENCED)
            fail(t, "producing to %s[%d] failed: %s", t->topics[tp->topic].target, m->partition,
                 rd_kafka_err2str(e));
        if (copy)
            rd_kafka_headers_destroy(copy);
        rd_kafka_message_destroy(m);
        return;
    }
}

static void set_paused(rtask_t *t, int paused)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++)
        rd_kafka_topic_partition_list_add(l, t->topics[t->parts[i].topic].name, t->parts[i].partition);
    if (paused)
        rd_kafka_pause_partitions(t->cons, l);
    else
        rd_kafka_resume_partitions(t->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- transactions (exactly.once.source.support=enabled) ------------------------------ */

static void txn_begin(rtask_t *t)
{
    if (!t->txn || t->txn_open)
        return;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(t->prod);
    if (e) {
        fail(t, "cannot begin a transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    t->txn_open = 1;
}

/* After an aborted transaction nothing it wrote counts: go back to the last committed
 * positions and consume from there again. */
static void txn_abort_and_rewind(rtask_t *t, const char *why)
{
    FLOG(WARN, TASK, "task %s-%d: transaction aborted (%s); copying again from the last commit",
         t->connector, t->task, why);
    t->aborting = 1;
    rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prod, (int)t->wc->task_shutdown_timeout_ms);
    rd_kafka_poll(t->prod, 0);
    drain(t); /* the purged records' reports count as dropped while aborting is set */
    t->aborting = 0;
    t->txn_open = 0;
    if (e) {
        fail(t, "cannot abort the transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        tp->acked = tp->written = tp->expect = tp->committed;
        tp->map = tp->map_committed;
        rd_kafka_topic_partition_list_add(l, t->topics[tp->topic].name, tp->partition)->offset = tp->committed;
    }
    rd_kafka_resp_err_t ae = rd_kafka_assign(t->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (ae)
        fail(t, "cannot rewind the source consumer: %s", rd_kafka_err2str(ae));
}

/* Commits the open transaction with the offsets of everything it holds: waits for the
 * records' delivery reports (so acked covers them), adds the offset records, commits. A
 * retriable failure keeps the transaction open for the next attempt; an abortable one aborts
 * and rewinds; anything else (a newer owner fenced this producer) fails the task. */
static void txn_commit(rtask_t *t)
{
    if (!t->txn_open)
        return;
    rd_kafka_resp_err_t fe = rd_kafka_flush(t->prod, (int)t->wc->offset_flush_timeout_ms);
    drain(t);
    if (fe != RD_KAFKA_RESP_ERR_NO_ERROR)
        return; /* the destination is slow or away: try again at the next boundary */
    if (t->failed)
        return;
    flush_offsets(t);
    rd_kafka_error_t *e = rd_kafka_commit_transaction(t->prod, (int)t->wc->offset_flush_timeout_ms);
    if (!e) {
        t->txn_open = 0;
        for (int i = 0; i < t->nparts; i++) {
            t->parts[i].committed = t->parts[i].acked >= 0 ? t->parts[i].acked : t->parts[i].committed;
            t->parts[i].map_committed = t->parts[i].map;
        }
        atomic_fetch_add(&t->flushed, 1);
        return;
    }
    if (rd_kafka_error_txn_requires_abort(e))
        txn_abort_and_rewind(t, rd_kafka_error_string(e));
    else if (!rd_kafka_error_is_retriable(e))
        fail(t, "committing a transaction failed: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
}

/* The source high watermarks, for the lag metric: while copying, what the consumer's fetches
 * last saw (a local lookup); while paused nothing is fetched, so they are asked for. */
static void refresh_watermarks(rtask_t *t, int paused)
{
    for (int i = 0; i < t->nparts; i++) {
        int64_t lo, hi;
        const char *topic = t->topics[t->parts[i].topic].name;
        rd_kafka_resp_err_t e = paused
                                    ? rd_kafka_query_watermark_offsets(t->cons, topic, t->parts[i].partition, &lo, &hi, 1000)
                                    : rd_kafka_get_watermark_offsets(t->cons, topic, t->parts[i].partition, &lo, &hi);
        if (!e && hi >= 0)
            atomic_store_explicit(&t->parts[i].st_hwm, hi, memory_order_relaxed);
    }
}

#define IDLE_FLUSH_MS 500

static void copy_loop(rtask_t *t)
{
    int64_t interval = t->txn && !t->txn_per_poll ? t->txn_interval_ms : t->wc->offset_flush_interval_ms;
    int64_t next_flush = kutil_now_ms() + interval, next_hwm = 0, last_record = 0;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(t->cons);
    rd_kafka_message_t **batch = malloc(sizeof(*batch) * t->max_poll);
    int was_paused = 0;
    while (!atomic_load(&t->stop) && !t->failed) {
        int paused = atomic_load(&t->paused);
        if (paused != was_paused) {
            set_paused(t, paused);
            was_paused = paused;
        }
        if (paused) {
            serve(t, 100);
        } else {
            ssize_t n = 0;
            rd_kafka_message_t *first = rd_kafka_consumer_poll(t->cons, 100);
            if (first) {
                batch[0] = first;
                n = 1;
                if (t->max_poll > 1) {
                    ssize_t more = rd_kafka_consume_batch_queue(q, 0, batch + 1, t->max_poll - 1);
                    if (more > 0)
                        n += more;
                }
            }
            if (n > 0) {
                txn_begin(t);
                last_record = kutil_now_ms();
            }
            for (ssize_t i = 0; i < n; i++)
                copy_one(t, batch[i]);
            serve(t, 0);
            if (n > 0 && t->txn_per_poll)
                txn_commit(t);
        }
        int64_t now = kutil_now_ms();
        if (now >= next_hwm) {
            refresh_watermarks(t, was_paused);
            next_hwm = now + (was_paused ? 5000 : 1000);
        }
        /* Idle: store the position (and offset map) of what was copied once everything is
         * acknowledged, instead of waiting for the interval — a consumer cut-over waits for it. */
        int idle = last_record > 0 && now - last_record >= IDLE_FLUSH_MS && !t->txn &&
                   atomic_load(&t->inflight) == 0;
        if (idle) {
            drain(t); /* every report is queued: apply them all before storing */
            last_record = 0;
        }
        /* A new segment is stored at once: a successor extends the stored map over what it
         * finds at the destination only from a known segment (resume_from_destination). */
        if (t->map_new && !t->txn) {
            idle = 1;
            t->map_new = 0;
        }
        if (now >= next_flush || idle) {
            if (t->txn)
                txn_commit(t); /* offsets are written inside transactions only */
            else
                flush_offsets(t);
            next_flush = now + interval;
        }
    }
    free(batch);
    rd_kafka_queue_destroy(q);
}

/* Shared producer: waits until no record or offset record of this task is outstanding. The
 * task must not go before that: the next owner of its partitions reads the destination's end
 * only once this task can no longer append there, and the consumed records the reports free
 * belong to our consumer. The shared producer cannot drop one task's records, so past the
 * graceful timeouts this keeps waiting (a destination outage during a rebalance delays the
 * handover until the records are written); a fence or the worker's shutdown purges the
 * producer, which ends the wait at once. */
static void settle_shared(rtask_t *t)
{
    int warned = 0, purged = 0;
    while (!wait_inflight(t, 1000)) {
        if (wprod_closing(t->wp) && !purged) {
            FLOG(WARN, TASK, "task %s-%d: %d record(s) still unacknowledged at shutdown; dropping "
                 "every unsent record of the worker", t->connector, t->task, atomic_load(&t->inflight));
            wprod_purge(t->wp);
            purged = 1;
        } else if (!warned++ && !atomic_load(&t->fenced)) {
            FLOG(WARN, TASK, "task %s-%d: %d record(s) still unacknowledged after the graceful timeout; "
                 "waiting for them before releasing the partitions", t->connector, t->task,
                 atomic_load(&t->inflight));
        }
    }
    if (warned && !purged && !atomic_load(&t->fenced) && !t->failed) {
        flush_offsets(t); /* what was acknowledged late */
        while (!wait_inflight(t, 1000))
            if (wprod_closing(t->wp) && !purged) {
                wprod_purge(t->wp);
                purged = 1;
            }
    }
}

static void shutdown_clients(rtask_t *t)
{
    if (t->cons) {
        rd_kafka_assign(t->cons, NULL);
        rd_kafka_consumer_close(t->cons);
    }
    if (t->prod) {
        /* Finish in-flight batches, then store the offsets they acknowledged; a fenced task
         * drops what it has not sent instead (for the shared producer herder_fence purged it,
         * after rtask_fence closed the gate of every task). */
        if (t->wp) {
            if (!atomic_load(&t->fenced)) {
                wait_inflight(t, t->wc->task_shutdown_timeout_ms);
                flush_offsets(t);
                wait_inflight(t, t->wc->offset_flush_timeout_ms);
            }
            settle_shared(t);
        } else {
            if (!atomic_load(&t->fenced) && t->txn) {
                txn_commit(t);
            } else if (!atomic_load(&t->fenced)) {
                rd_kafka_flush(t->prod, (int)t->wc->task_shutdown_timeout_ms);
                drain(t);
                flush_offsets(t);
                rd_kafka_flush(t->prod, (int)t->wc->offset_flush_timeout_ms);
            }
            rd_kafka_purge(t->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(t->prod, 0);
            drain(t);
        }
        for (int i = 0; i < t->ntopics; i++)
            if (t->topics[i].rkt)
                rd_kafka_topic_destroy(t->topics[i].rkt);
        if (t->offset_rkt)
            rd_kafka_topic_destroy(t->offset_rkt);
        if (!t->wp) {
            rd_kafka_destroy(t->prod);
            drain(t); /* reports the destruction served, if any */
        }
        if (t->purged)
            FLOG(INFO, TASK, "task %s-%d dropped %llu unsent record(s); their offsets were not stored, "
                 "so the next owner copies them", t->connector, t->task, (unsigned long long)t->purged);
    }
    if (t->cons)
        rd_kafka_destroy(t->cons);
    if (t->owning)
        log_ownership(t, "release"); /* nothing more of this task can be written */
}

static void *task_main(void *arg)
{
    rtask_t *t = arg;
    if (!t->txn && !strcmp(cfg(t, "exactly.once.support", "requested"), "required"))
        fail(t, "exactly.once.support=required, but this worker does not have "
                "exactly.once.source.support=enabled");
    if (!t->failed && build_partitions(t) == 0 && make_clients(t) == 0 && init_transactions(t) == 0 &&
        check_destination(t) == 0 && resume_from_destination(t) == 0 && assign(t) == 0 &&
        !atomic_load(&t->stop)) {
        FLOG(INFO, TASK, "task %s-%d copying %d partition(s)", t->connector, t->task, t->nparts);
        post(t, RTASK_EV_RUNNING, NULL);
        copy_loop(t);
    }
    if (t->failed)
        post(t, RTASK_EV_FAILED, t->trace);
    shutdown_clients(t);
    FLOG(INFO, TASK, "task %s-%d stopped", t->connector, t->task);
    post(t, RTASK_EV_EXITED, NULL);
    return NULL;
}

rtask_t *rtask_new(const rtask_params_t *p)
{
    rtask_t *t = calloc(1, sizeof *t);
    t->connector = strdup(p->connector);
    t->task = p->task;
    t->instance = p->instance;
    t->config = json_deep_copy(p->config);
    t->offsets = p->offsets ? json_deep_copy(p->offsets) : json_object();
    t->wc = p->wc;
    t->worker_tasks = p->worker_tasks;
    t->recv = p->recv;
    t->wp = p->wprod;
    pthread_mutex_init(&t->dq_lock, NULL);
    pthread_cond_init(&t->dq_cond, NULL);
    pthread_mutex_init(&t->gate, NULL);
    wconf_worker_id(p->wc, t->worker_id, sizeof t->worker_id);
    atomic_store(&t->paused, p->paused);
    t->provenance = !strcasecmp(cfg(t, "provenance.header.enable", "false"), "true");
    t->src_alias = cfg(t, "src.cluster.alias", "source");
    t->dst_alias = cfg(t, "dest.cluster.alias", "destination");
    t->pos_header = strcasecmp(cfg(t, "source.offset.header.enable", "true"), "false") != 0;
    t->pos_header_name = cfg(t, "source.offset.header.name", REPL_OFFSET_HEADER);
    t->txn = p->wc->eos_source;
    t->txn_per_poll = strcmp(cfg(t, "transaction.boundary", "poll"), "interval") != 0;
    t->txn_interval_ms = atoll(cfg(t, "transaction.boundary.interval.ms", "0"));
    if (t->txn_interval_ms < 1)
        t->txn_interval_ms = p->wc->offset_flush_interval_ms;
    t->max_poll = atoi(cfg(t, "src.kafka.max.poll.records", "500"));
    if (t->max_poll < 1)
        t->max_poll = 500;
    pthread_create(&t->thread, NULL, task_main, t);
    return t;
}

void rtask_set_paused(rtask_t *t, int paused)
{
    atomic_store(&t->paused, paused);
}

void rtask_stop(rtask_t *t)
{
    atomic_store(&t->stop, 1);
}

void rtask_fence(rtask_t *t)
{
    pthread_mutex_lock(&t->gate); /* waits for a produce call under way */
    atomic_store(&t->fenced, 1);
    atomic_store(&t->stop, 1);
    pthread_mutex_unlock(&t->gate);
}

void rtask_destroy(rtask_t *t)
{
    if (!t)
        return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    for (int i = 0; i < t->ntopics; i++) {
        free(t->topics[i].name);
        free(t->topics[i].target);
        free(t->topics[i].index);
    }
    free(t->topics);
    free(t->parts);
    free(t->dq.v);
    free(t->dq_spare.v);
    pthread_mutex_destroy(&t->dq_lock);
    pthread_cond_destroy(&t->dq_cond);
    pthread_mutex_destroy(&t->gate);
    json_decref(t->config);
    json_decref(t->offsets);
    free(t->connector);
    free(t);
}

void rtask_get_stats(const rtask_t *t, rtask_stats_t *out)
{
    rtask_t *w = (rtask_t *)t; /* atomics only */
    out->records = atomic_load(&w->records);
    out->bytes = atomic_load(&w->bytes);
    out->offsets_flushed = atomic_load(&w->flushed);
    out->errors = atomic_load(&w->errors);
    out->retries = atomic_load(&w->retries);
    for (int i = 0; i <= RTASK_LATENCY_BUCKETS; i++)
        out->latency[i] = atomic_load_explicit(&w->latency[i], memory_order_relaxed);
    out->latency_sum_s = (double)atomic_load(&w->latency_sum_ms) / 1000.0;
}

void rtask_foreach_partition(const rtask_t *t, void (*fn)(void *arg, const rtask_part_stats_t *ps),
                             void *arg)
{
    rtask_t *w = (rtask_t *)t; /* atomics, and parts/topics that stay put once ready */
    if (!atomic_load_explicit(&w->parts_ready, memory_order_acquire))
        return;
    for (int i = 0; i < w->nparts; i++) {
        tpart_t *tp = &w->parts[i];
        rtask_part_stats_t ps = {
            .topic = w->topics[tp->topic].name,
            .partition = tp->partition,
            .records = atomic_load_explicit(&tp->st_records, memory_order_relaxed),
            .bytes = atomic_load_explicit(&tp->st_bytes, memory_order_relaxed),
            .next_offset = atomic_load_explicit(&tp->st_next, memory_order_relaxed),
            .high_watermark = atomic_load_explicit(&tp->st_hwm, memory_order_relaxed),
        };
        fn(arg, &ps);
    }
}

uint64_t rtask_instance(const rtask_t *t)
{
    return t->instance;
}
