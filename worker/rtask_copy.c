/* rtask_copy: what a copy thread does for a task (rtask_int.h, copier.h).
 *
 *   shared consumer ──forwarded partition queues──▶ copy thread ──producev (F_COPY)──▶ producer
 *                                                       ▲                               │
 *        offsets written (flush interval, idle) ◀───────┤    delivery reports (poller):│
 *                                                       └──── dq inbox, per task ◀─────┘
 *
 * Key and value are copied into the producer, and the consumed record is destroyed at once,
 * so it no longer pins its fetch buffer until its delivery report (measured: as fast as
 * passing pointers, 35-60% less memory). A record's report finds its partition through the
 * produced message's opaque, and its source offset is the oldest one that partition
 * produced and has not had a report for (ofifo: in-order reports of an idempotent producer).
 *
 * A stop is a few phases rather than a blocking wait, so that one stopping task never holds up
 * the others on its copy thread: unassign, wait for the reports of what was produced (within
 * task.shutdown.graceful.timeout.ms for a producer of its own; the shared producer cannot drop
 * one task's records, so there it waits until they are written, as before), store the last
 * offsets, wait for those, release. */
#include "worker/rtask_int.h"

#include <stdlib.h>
#include <string.h>

#include "worker/bpass.h"
#include "worker/flog.h"
#include "worker/kutil.h"

#define PROVENANCE_HEADER "__ferry.provenance"
#define IDLE_FLUSH_MS 500
#define HWM_MS 1000

/* Offset records carry their task, tagged in the lowest bit, as their opaque; copied records
 * carry their partition's tpart_t. */
#define OFFSET_OPAQUE(t) ((void *)((uintptr_t)(t) | 1))

/* ---- in-flight source offsets of a partition -------------------------------------------- */

static void ofifo_push(ofifo_t *f, int64_t offset, int64_t timestamp)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        ofent_t *nv = malloc(cap * sizeof *nv);
        if (!nv)
            abort();
        for (size_t i = 0; i < f->n; i++)
            nv[i] = f->v[(f->head + i) % f->cap];
        free(f->v);
        f->v = nv;
        f->head = 0;
        f->cap = cap;
    }
    f->v[(f->head + f->n++) % f->cap] = (ofent_t){offset, timestamp};
}

/* The oldest entry; offset -1 if there is none. */
static ofent_t ofifo_pop(ofifo_t *f)
{
    if (!f->n)
        return (ofent_t){-1, -1};
    ofent_t v = f->v[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return v;
}

/* ---- delivery reports -------------------------------------------------------------------- */

static rtask_t *task_of(const rd_kafka_message_t *m)
{
    uintptr_t o = (uintptr_t)m->_private;
    return o & 1 ? (rtask_t *)(o & ~(uintptr_t)1) : ((tpart_t *)o)->task;
}

/* Queues the reports m[0..n-1], all of task @p t, under one lock, and wakes its copy thread
 * once if its inbox was empty. */
static void queue_reports(rtask_t *t, const rd_kafka_message_t *const *m, size_t n)
{
    pthread_mutex_lock(&t->dq_lock);
    if (t->dq.n + n > t->dq.cap) {
        t->dq.cap = (t->dq.n + n) * 2 > 1024 ? (t->dq.n + n) * 2 : 1024;
        t->dq.v = realloc(t->dq.v, t->dq.cap * sizeof *t->dq.v);
        if (!t->dq.v)
            abort();
    }
    int first = t->dq.n == 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t o = (uintptr_t)m[i]->_private;
        tpart_t *tp = o & 1 ? NULL : (tpart_t *)o;
        dres_t *r = &t->dq.v[t->dq.n++];
        *r = (dres_t){.tp = tp, .dst_offset = m[i]->offset, .err = m[i]->err};
        if (tp)
            r->bytes = m[i]->len + m[i]->key_len;
    }
    atomic_fetch_sub(&t->inflight, (int)n);
    copier_thread_t *ct = t->ct;
    pthread_mutex_unlock(&t->dq_lock);
    if (first && ct)
        copier_wake(ct);
}

void rtask_batch_report(rtask_t *t, const dres_t *r, int settles)
{
    pthread_mutex_lock(&t->dq_lock);
    if (t->dq.n == t->dq.cap) {
        t->dq.cap = t->dq.cap ? 2 * t->dq.cap : 1024;
        t->dq.v = realloc(t->dq.v, t->dq.cap * sizeof *t->dq.v);
        if (!t->dq.v)
            abort();
    }
    int first = t->dq.n == 0;
    t->dq.v[t->dq.n++] = *r;
    if (settles)
        atomic_fetch_sub(&t->inflight, 1);
    copier_thread_t *ct = t->ct;
    pthread_mutex_unlock(&t->dq_lock);
    if (first && ct)
        copier_wake(ct);
}

void rtask_delivery_batch(rd_kafka_message_t **m, size_t n)
{
    /* a batch is one partition's records, or a few: runs of the same task go in at once */
    for (size_t i = 0; i < n;) {
        rtask_t *t = task_of(m[i]);
        size_t j = i + 1;
        while (j < n && task_of(m[j]) == t)
            j++;
        queue_reports(t, (const rd_kafka_message_t *const *)m + i, j - i);
        i = j;
    }
}

void rtask_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    queue_reports(task_of(m), &m, 1);
}

/* Replication latency of one acknowledged copy: now (read once per drain) minus the source
 * record's timestamp. */
/* @p n records of @p tp whose source timestamp is @p ts (a forwarded batch: its newest
 * record's, so the lowest latency of its records) were acknowledged now: the task's histogram,
 * and the partition's figures for its latency window (put there at the end of the drain). */
static void count_latency(rtask_t *t, tpart_t *tp, int64_t now_wall, int64_t ts, uint64_t n)
{
    if (ts <= 0 || !n)
        return;
    int64_t ms = now_wall - ts;
    if (ms < 0)
        ms = 0;
    size_t b = 0;
    while (b < RTASK_LATENCY_BUCKETS && (double)ms / 1000.0 > rtask_latency_bounds[b])
        b++;
    atomic_fetch_add_explicit(&t->latency[b], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->latency_sum_ms, n * (uint64_t)ms, memory_order_relaxed);
    if (!tp->lat_n || ms < tp->lat_min)
        tp->lat_min = ms;
    if (!tp->lat_n || ms > tp->lat_max)
        tp->lat_max = ms;
    tp->lat_last = ms;
    tp->lat_sum += (double)ms * (double)n;
    tp->lat_n += n;
}

/* Ages of the records produced since the last service: now (read once, then) minus their
 * source timestamps, into their partitions' age windows. */
static void count_ages(rtask_t *t, int64_t now_wall)
{
    pthread_mutex_lock(&t->st_lock);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        if (!tp->age_n)
            continue;
        double sum = (double)(now_wall - tp->age_ts0) * (double)tp->age_n - tp->age_dsum;
        mwin_add(&tp->st_age_win, now_wall, (double)(now_wall - tp->age_ts_max),
                 (double)(now_wall - tp->age_ts_min), sum, tp->age_n);
        tp->st_age_ms = now_wall - tp->age_ts_last;
        tp->age_n = 0;
        tp->age_dsum = 0;
    }
    pthread_mutex_unlock(&t->st_lock);
}

/* Counters of one drain, added to the shared atomics once per drain (and per partition). */
typedef struct tally {
    uint64_t records, bytes;
    int64_t now_wall;
} tally_t;

static void to_record_path(rtask_t *t, tpart_t *tp, int64_t from);

/* A report of the batch passthrough engine (bpass.h). */
static void apply_batch_report(rtask_t *t, const dres_t *r, tally_t *sum)
{
    tpart_t *tp = r->tp;
    switch (r->kind) {
    case BPASS_ACK:
        if (r->src_last + 1 > tp->acked)
            tp->acked = r->src_last + 1;
        if (r->dst_offset >= 0) { /* one batch: source and destination offsets advance together */
            if (omap_record_run(&tp->map, r->src, r->dst_offset, r->src_last - r->src + 1))
                t->map_new = 1;
        }
        sum->records += (uint64_t)r->records;
        sum->bytes += r->bytes;
        tp->tally_records += (uint64_t)r->records;
        tp->tally_bytes += r->bytes;
        atomic_fetch_add_explicit(&t->batch_records, (uint64_t)r->records, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->batches, 1, memory_order_relaxed);
        t->polled += (uint64_t)r->records; /* taken and acknowledged at once, as far as we know */
        t->settled += (uint64_t)r->records;
        count_latency(t, tp, sum->now_wall, r->timestamp, (uint64_t)r->records);
        break;
    case BPASS_SKIP: /* control batches, aborted transactions: nothing to copy there */
        if (r->src_last + 1 > tp->acked)
            tp->acked = r->src_last + 1;
        atomic_store_explicit(&tp->st_next, tp->acked, memory_order_relaxed);
        break;
    case BPASS_DROP:
        t->purged += 1;
        break;
    case BPASS_FAILED:
        rtask_fail(t, "%s", r->msg ? r->msg : "the destination refused a batch");
        break;
    case BPASS_FALLBACK:
        t->bp_live--;
        atomic_fetch_add_explicit(&t->fallbacks, 1, memory_order_relaxed);
        if (t->phase == RT_COPYING && !atomic_load(&t->stop) && !t->failed)
            to_record_path(t, tp, r->src);
        break;
    case BPASS_RELEASED:
        t->bp_live--;
        break;
    }
    free(r->msg);
}

static void apply_report(rtask_t *t, const dres_t *r, tally_t *sum)
{
    if (r->kind) {
        apply_batch_report(t, r, sum);
        return;
    }
    tpart_t *tp = r->tp;
    if (!tp) { /* an offset record */
        if (r->err)
            FLOG(WARN, TASK, "task %s-%d: storing offsets failed: %s", t->connector, t->task,
                 rd_kafka_err2str(r->err));
        else
            atomic_fetch_add(&t->flushed, 1);
        return;
    }
    ofent_t sent = ofifo_pop(&tp->inflight);
    int64_t src = sent.offset;
    t->settled++;
    if ((r->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || r->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
         r->err == RD_KAFKA_RESP_ERR__DESTROY) &&
        (atomic_load(&t->stop) || t->aborting)) {
        /* dropped on purpose by a stop, a fence or an aborted transaction: copied again by the
         * next owner, or by this task after it rewinds */
        t->purged++;
    } else if (r->err) {
        rtask_fail(t, "delivery to %s[%d] failed: %s", t->topics[tp->topic].target, tp->partition,
                   rd_kafka_err2str(r->err));
    } else if (!t->failed && src >= 0) {
        if (src + 1 > tp->acked)
            tp->acked = src + 1;
        if (omap_record(&tp->map, src, r->dst_offset))
            t->map_new = 1;
        sum->records++;
        sum->bytes += r->bytes;
        tp->tally_records++;
        tp->tally_bytes += r->bytes;
        count_latency(t, tp, sum->now_wall, sent.timestamp, 1);
    }
}

void rtask_drain_reports(rtask_t *t)
{
    pthread_mutex_lock(&t->dq_lock);
    dqueue_t got = t->dq;
    t->dq = t->dq_spare;
    t->dq.n = 0;
    pthread_mutex_unlock(&t->dq_lock);
    if (!got.n) {
        t->dq_spare = got;
        return;
    }
    tally_t sum = {.now_wall = kutil_wall_ms()};
    for (size_t i = 0; i < got.n; i++)
        apply_report(t, &got.v[i], &sum);
    got.n = 0;
    t->dq_spare = got;
    atomic_fetch_add(&t->records, sum.records);
    atomic_fetch_add(&t->bytes, sum.bytes);
    atomic_store_explicit(&t->st_polled, t->polled, memory_order_relaxed);
    atomic_store_explicit(&t->st_settled, t->settled, memory_order_relaxed);
    if (sum.records)
        pthread_mutex_lock(&t->st_lock);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        if (!tp->tally_records)
            continue;
        atomic_fetch_add_explicit(&tp->st_records, tp->tally_records, memory_order_relaxed);
        atomic_fetch_add_explicit(&tp->st_bytes, tp->tally_bytes, memory_order_relaxed);
        atomic_store_explicit(&tp->st_next, tp->acked, memory_order_relaxed);
        tp->tally_records = tp->tally_bytes = 0;
        if (tp->lat_n) {
            mwin_add(&tp->st_lat_win, sum.now_wall, (double)tp->lat_min, (double)tp->lat_max, tp->lat_sum,
                     tp->lat_n);
            tp->st_lat_ms = tp->lat_last;
            tp->lat_n = 0;
            tp->lat_sum = 0;
        }
    }
    if (sum.records)
        pthread_mutex_unlock(&t->st_lock);
}

/* ---- offsets --------------------------------------------------------------------------- */

void rtask_flush_offsets(rtask_t *t)
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

/* ---- records ------------------------------------------------------------------------------ */

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

/* The headers of the copy: the source record's (moved, not copied) plus ferry's. Built once
 * per record: a record the producer had no room for keeps them for its next attempt. */
static rd_kafka_headers_t *copy_headers(rtask_t *t, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_detach_headers(m, &h))
        h = NULL;
    if (t->provenance) {
        if (!h)
            h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, PROVENANCE_HEADER, -1, t->src_alias, -1);
    }
    if (t->pos_header) {
        unsigned char be[8];
        for (int i = 0; i < 8; i++)
            be[i] = (unsigned char)((uint64_t)m->offset >> (56 - 8 * i));
        if (!h)
            h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, t->pos_header_name, -1, be, sizeof be);
    }
    return h;
}

typedef struct pending {
    rd_kafka_message_t *m;
    rd_kafka_headers_t *h;
    rtask_t *t;
} pending_t;

/* The one record per copy thread waiting for producer room, with its built headers (a copy
 * thread offers the records it parked in order, and stops at the first refused one). */
static __thread pending_t pending;

static void pending_clear(rd_kafka_message_t *m, rtask_t *t)
{
    if ((m && pending.m == m) || (t && pending.t == t)) {
        if (pending.h)
            rd_kafka_headers_destroy(pending.h);
        pending = (pending_t){0};
    }
}

int rtask_copy_record(void *owner, rd_kafka_message_t *m)
{
    tpart_t *tp = owner;
    rtask_t *t = tp->task;
    if (t->phase != RT_COPYING || t->failed || atomic_load(&t->stop)) {
        pending_clear(m, NULL); /* stopping: not produced, not acknowledged: the next owner copies it */
        rd_kafka_message_destroy(m);
        return 0;
    }
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            atomic_fetch_add(&t->errors, 1);
            FLOG(WARN, TASK, "task %s-%d: source: %s", t->connector, t->task, rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return 0;
    }
    if (pending.m != m) {
        if (tp->expect >= 0 && m->offset > tp->expect)
            FLOG(WARN, TASK, "task %s-%d: %s[%d] offsets %lld..%lld were not available on the source "
                 "(deleted by retention or compaction) and were not copied", t->connector, t->task,
                 t->topics[tp->topic].name, tp->partition, (long long)tp->expect, (long long)m->offset - 1);
        tp->expect = m->offset + 1;
        if (from_destination(t, m)) {
            rd_kafka_message_destroy(m);
            return 0;
        }
    }
    if (t->txn && !t->txn_open) {
        rtask_txn_begin(t); /* the records of a batch and their offsets go in one transaction */
        if (!t->txn_open) {
            pending_clear(m, NULL);
            rd_kafka_message_destroy(m);
            return 0;
        }
    }
    rd_kafka_headers_t *h = pending.m == m ? pending.h : copy_headers(t, m);
    pending = (pending_t){0};
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FENCED;
    pthread_mutex_lock(&t->gate); /* see rtask_fence */
    if (!atomic_load(&t->fenced)) {
        atomic_fetch_add(&t->inflight, 1);
        e = rd_kafka_producev(t->prod, RD_KAFKA_V_RKT(t->topics[tp->topic].rkt), RD_KAFKA_V_PARTITION(m->partition),
                              RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(tp), RD_KAFKA_V_END);
        if (e)
            atomic_fetch_sub(&t->inflight, 1);
    }
    pthread_mutex_unlock(&t->gate);
    if (!e) {
        ofifo_push(&tp->inflight, m->offset, ts); /* the producer owns the headers now */
        rd_kafka_message_destroy(m);
        t->polled++;
        if (ts > 0) { /* its age is taken at the next service (count_ages) */
            if (!tp->age_n)
                tp->age_ts0 = tp->age_ts_min = tp->age_ts_max = ts;
            else if (ts < tp->age_ts_min)
                tp->age_ts_min = ts;
            else if (ts > tp->age_ts_max)
                tp->age_ts_max = ts;
            tp->age_ts_last = ts;
            tp->age_dsum += (double)(ts - tp->age_ts0);
            tp->age_n++;
        }
        t->copied = 1; /* rtask_copy_service notes the time: no clock read per record */
        t->txn_dirty = 1;
        return 0;
    }
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* back-pressure: the record waits (with its headers) until the destination takes more;
         * with the shared producer the queue may be full of other tasks' records */
        pending = (pending_t){m, h, t};
        return 1;
    }
    if (e != RD_KAFKA_RESP_ERR__FENCED)
        rtask_fail(t, "producing to %s[%d] failed: %s", t->topics[tp->topic].target, m->partition,
                   rd_kafka_err2str(e));
    if (h)
        rd_kafka_headers_destroy(h);
    rd_kafka_message_destroy(m);
    return 0;
}

/* ---- on the copy thread ------------------------------------------------------------------ */

void rtask_copy_forget(rd_kafka_message_t *m)
{
    pending_clear(m, NULL);
}

scons_t *rtask_copy_scons(const rtask_t *t)
{
    return t->sc;
}

int rtask_copy_npartitions(const rtask_t *t)
{
    return t->nparts;
}

void rtask_copy_begin(rtask_t *t, copier_thread_t *ct, int64_t now)
{
    pthread_mutex_lock(&t->dq_lock);
    t->ct = ct;
    t->phase = RT_COPYING;
    pthread_mutex_unlock(&t->dq_lock);
    if (!t->wp) { /* our own producer's reports are served by this thread (rtask_copy_service) */
        t->prod_q = rd_kafka_queue_get_main(t->prod);
        rd_kafka_queue_io_event_enable(t->prod_q, copier_event_fd(ct), &copier_event_payload,
                                       sizeof copier_event_payload);
    }
    if (atomic_load(&t->stop))
        return; /* rtask_copy_service stops it without assigning anything */
    /* with an engine, every partition is forwarded (it hands back what it cannot forward);
     * without, they are all on the record path */
    t->rec = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        int64_t from = t->assigned->elems[i].offset;
        if (t->bp && from >= 0) {
            tp->batch = 1;
            atomic_store_explicit(&tp->st_batch, 1, memory_order_relaxed);
            t->bp_live++;
            bpass_add(t->bp, tp, from);
            if (atomic_load(&t->paused))
                bpass_pause(t->bp, tp, 1);
        } else {
            rd_kafka_topic_partition_list_add(t->rec, t->topics[tp->topic].name, tp->partition)->offset = from;
        }
    }
    ferr_t err = {0};
    if (t->rec->cnt && scons_add(t->sc, t->rec, copier_queue(ct, t->sc), &err)) {
        rtask_fail(t, "%s", err.msg);
        return;
    }
    for (int i = 0; i < t->nparts; i++)
        if (!t->parts[i].batch)
            copier_map_add(ct, t->topics[t->parts[i].topic].name, t->parts[i].partition, &t->parts[i]);
    if (atomic_load(&t->paused)) {
        if (t->rec->cnt)
            scons_pause(t->sc, t->rec, 1);
        t->was_paused = 1;
    }
    t->owning = 1;
    rtask_log_ownership(t, "acquire");
    if (!t->txn)
        rtask_flush_offsets(t); /* where a new partition starts, stored at once */
    int64_t interval = t->txn && !t->txn_per_poll ? t->txn_interval_ms : t->wc->offset_flush_interval_ms;
    t->next_flush = now + interval;
    t->next_hwm = now;
    FLOG(INFO, TASK, "task %s-%d copying %d partition(s) (%d forwarding record batches as they are)", t->connector,
         t->task, t->nparts, t->bp_live);
    rtask_post(t, RTASK_EV_RUNNING, NULL);
}

/* A partition the engine handed back: copied record by record from @p from on. */
static void to_record_path(rtask_t *t, tpart_t *tp, int64_t from)
{
    tp->batch = 0;
    atomic_store_explicit(&tp->st_batch, 0, memory_order_relaxed);
    tp->expect = from;
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, t->topics[tp->topic].name, tp->partition)->offset = from;
    ferr_t err = {0};
    if (scons_add(t->sc, one, copier_queue(t->ct, t->sc), &err)) {
        rtask_fail(t, "%s", err.msg);
    } else {
        rd_kafka_topic_partition_list_add(t->rec, t->topics[tp->topic].name, tp->partition)->offset = from;
        copier_map_add(t->ct, t->topics[tp->topic].name, tp->partition, tp);
        if (t->was_paused)
            scons_pause(t->sc, one, 1);
    }
    rd_kafka_topic_partition_list_destroy(one);
}

/* The source high watermarks, for the lag metric: as the shared consumer's fetches last saw
 * them, or, while paused, as its own thread queried them (scons_hwm; no blocking call here). */
static void refresh_watermarks(rtask_t *t)
{
    for (int i = 0; i < t->nparts; i++) {
        if (t->parts[i].batch)
            continue; /* the engine updates it from its fetches */
        int64_t hi = scons_hwm(t->sc, t->topics[t->parts[i].topic].name, t->parts[i].partition);
        if (hi >= 0)
            atomic_store_explicit(&t->parts[i].st_hwm, hi, memory_order_relaxed);
    }
}

static void lower(int64_t *next, int64_t at)
{
    if (at < *next)
        *next = at;
}

/* Copying: pause changes, transactions, and the offset flushes. */
static void serve_copying(rtask_t *t, int64_t now, int64_t *next)
{
    if (t->copied) {
        t->last_record = now;
        t->copied = 0;
        count_ages(t, kutil_wall_ms());
        atomic_store_explicit(&t->st_polled, t->polled, memory_order_relaxed);
    }
    int paused = atomic_load(&t->paused);
    if (paused != t->was_paused) {
        if (t->rec->cnt)
            scons_pause(t->sc, t->rec, paused);
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].batch)
                bpass_pause(t->bp, &t->parts[i], paused);
        t->was_paused = paused;
    }
    if (t->txn) {
        if (t->txn_dirty && t->txn_per_poll) /* a batch went into the open transaction */
            rtask_txn_commit(t);
        t->txn_dirty = 0;
    }
    if (now >= t->next_hwm) {
        refresh_watermarks(t);
        t->next_hwm = now + HWM_MS;
    }
    lower(next, t->next_hwm);
    /* Idle: store the position (and offset map) of what was copied once everything is
     * acknowledged, instead of waiting for the interval: a consumer cut-over waits for it. */
    int idle = 0;
    if (t->last_record > 0 && !t->txn && atomic_load(&t->inflight) == 0) {
        if (now - t->last_record >= IDLE_FLUSH_MS) {
            idle = 1;
            t->last_record = 0;
        } else {
            lower(next, t->last_record + IDLE_FLUSH_MS);
        }
    }
    /* A new segment is stored at once: a successor extends the stored map over what it finds
     * at the destination only from a known segment (rtask_tail.c). */
    if (t->map_new && !t->txn) {
        idle = 1;
        t->map_new = 0;
    }
    if (now >= t->next_flush || idle) {
        if (t->txn)
            rtask_txn_commit(t); /* offsets are written inside transactions only */
        else
            rtask_flush_offsets(t);
        t->next_flush = now + (t->txn && !t->txn_per_poll ? t->txn_interval_ms : t->wc->offset_flush_interval_ms);
    }
    lower(next, t->next_flush);
}

/* The first step of every stop: no more records for this task. */
static void begin_stop(rtask_t *t, int64_t now)
{
    if (t->failed)
        rtask_post(t, RTASK_EV_FAILED, t->trace);
    if (t->owning) {
        if (t->rec->cnt)
            scons_remove(t->sc, t->rec);
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].batch)
                bpass_remove(t->bp, &t->parts[i], atomic_load(&t->fenced));
            else
                copier_map_del(t->ct, t->topics[t->parts[i].topic].name, t->parts[i].partition);
    }
    if (atomic_load(&t->fenced) && !t->wp)
        rd_kafka_purge(t->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    t->phase = RT_DRAINING;
    t->stop_deadline = now + t->wc->task_shutdown_timeout_ms;
}

/* The producer cannot take what is left: drop it (the next owner copies it again). A shared
 * producer is purged only when the whole worker shuts down (or is fenced, by the herder). */
static int drop_unsent(rtask_t *t)
{
    int closing = atomic_load(&t->fenced) || (t->wp && wprod_closing(t->wp));
    if (t->bp_live && closing) /* the engine drops its batches of ours (sent ones too) */
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].batch)
                bpass_remove(t->bp, &t->parts[i], 1);
    if (!t->wp) {
        rd_kafka_purge(t->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        return 1;
    }
    if (wprod_closing(t->wp)) {
        FLOG(WARN, TASK, "task %s-%d: %d record(s) still unacknowledged at shutdown; dropping every unsent "
             "record of the worker", t->connector, t->task, atomic_load(&t->inflight));
        wprod_purge(t->wp);
        return 1;
    }
    if (!t->warned_slow++ && !atomic_load(&t->fenced))
        FLOG(WARN, TASK, "task %s-%d: %d record(s) still unacknowledged after the graceful timeout; waiting for "
             "them before releasing the partitions", t->connector, t->task, atomic_load(&t->inflight));
    return 0;
}

/* The last step: nothing of this task is left in any producer. */
static int finish(rtask_t *t)
{
    rtask_release_topics(t);
    if (t->prod_q) {
        rd_kafka_queue_io_event_enable(t->prod_q, -1, NULL, 0);
        rd_kafka_queue_destroy(t->prod_q);
    }
    if (!t->wp) {
        rd_kafka_destroy(t->prod);
        rtask_drain_reports(t); /* reports the destruction served, if any */
    }
    pending_clear(NULL, t); /* a record of ours still parked by the copy thread has no owner now */
    if (t->purged)
        FLOG(INFO, TASK, "task %s-%d dropped %llu unsent record(s); their offsets were not stored, so the next "
             "owner copies them", t->connector, t->task, (unsigned long long)t->purged);
    if (t->owning)
        rtask_log_ownership(t, "release"); /* nothing more of this task can be written */
    rtask_exited(t);
    return 1;
}

int rtask_copy_service(rtask_t *t, int64_t now, int64_t *next)
{
    if (t->prod_q)
        rd_kafka_poll(t->prod, 0); /* our own producer's reports land in our inbox */
    rtask_drain_reports(t);
    int fenced = atomic_load(&t->fenced);
    if (t->phase == RT_COPYING) {
        if (!atomic_load(&t->stop) && !t->failed) {
            serve_copying(t, now, next);
            return 0;
        }
        begin_stop(t, now);
    }
    lower(next, now + 10); /* stopping: look again soon */
    if (t->phase == RT_DRAINING) {
        if (!fenced && !t->failed && t->txn && t->txn_open) {
            rtask_txn_commit(t); /* what the open transaction holds, with its offsets */
            if (t->txn_open) {
                rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prod, (int)t->wc->task_shutdown_timeout_ms);
                if (e)
                    rd_kafka_error_destroy(e);
            }
        }
        if (atomic_load(&t->inflight) > 0 || t->bp_live > 0) {
            if (now >= t->stop_deadline && drop_unsent(t))
                t->stop_deadline = INT64_MAX; /* the purge reports follow */
            else if (now >= t->stop_deadline)
                t->stop_deadline = now + 1000;
            return 0;
        }
        rtask_drain_reports(t);
        if (!fenced && !t->txn)
            rtask_flush_offsets(t); /* what was acknowledged, late ones included */
        t->phase = RT_STORING;
        t->store_deadline = now + t->wc->offset_flush_timeout_ms;
    }
    if (t->phase == RT_STORING) {
        if (atomic_load(&t->inflight) > 0) {
            if (now >= t->store_deadline && drop_unsent(t))
                t->store_deadline = INT64_MAX;
            else if (now >= t->store_deadline)
                t->store_deadline = now + 1000;
            return 0;
        }
        rtask_drain_reports(t);
        return finish(t);
    }
    return 0;
}
