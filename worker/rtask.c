/* rtask: the replicator task's life cycle and setup. See rtask.h and rtask_int.h.
 *
 *   rtask_new ─▶ setup job (setup pool): partitions, own producer, destination check,
 *                transactions, destination-tail resume, start offsets
 *             ─▶ copier_add ─▶ copy thread: rtask_copy_begin (assign on the shared
 *                consumer), then rtask_copy_record / rtask_copy_service until it exits
 *
 * A task that is told to stop (or fails) during setup exits from the setup job itself. */
#include "worker/rtask_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/mbudget.h"
#include "worker/repl.h"

const double rtask_latency_bounds[RTASK_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                              1, 2.5, 5, 10, 60, 600, 3600};

void rtask_ev_free(rtask_ev_t *ev)
{
    free(ev->connector);
    free(ev->trace);
    free(ev);
}

void rtask_post(rtask_t *t, rtask_ev_type_t type, const char *trace)
{
    rtask_ev_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        abort();
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

const char *rtask_cfg(const rtask_t *t, const char *key, const char *def)
{
    const char *v = json_string_value(json_object_get(t->config, key));
    return v ? v : def;
}

void rtask_fail(rtask_t *t, const char *fmt, ...)
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

/* One line per partition when this task starts or stops writing it, with wall-clock
 * milliseconds: tests merge these lines from every worker to prove no two owners overlap. */
void rtask_log_ownership(const rtask_t *t, const char *what)
{
    int64_t now = kutil_wall_ms();
    for (int i = 0; i < t->nparts; i++)
        FLOG(INFO, TASK, "ownership %s task=%s-%d partition=%s:%d worker=%s at=%lld", what, t->connector,
             t->task, t->topics[t->parts[i].topic].name, t->parts[i].partition, t->worker_id,
             (long long)now);
}

/* ---- setup ----------------------------------------------------------------------------- */

static int build_partitions(rtask_t *t)
{
    json_t *list = repl_parse_partitions(rtask_cfg(t, REPL_TASK_PARTITIONS, ""));
    if (!list) {
        rtask_fail(t, "malformed task config: %s", REPL_TASK_PARTITIONS);
        return -1;
    }
    const char *fmt = rtask_cfg(t, "topic.rename.format", "${topic}.replica");
    t->nparts = (int)json_array_size(list);
    t->parts = calloc(t->nparts ? t->nparts : 1, sizeof(tpart_t));
    t->topics = calloc(t->nparts ? t->nparts : 1, sizeof(ttopic_t));
    if (!t->parts || !t->topics)
        abort();
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
            t->ntopics++;
        }
        tpart_t *tp = &t->parts[i];
        tp->task = t;
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
        atomic_store(&tp->st_next, tp->start);
        atomic_store(&tp->st_hwm, -1);
        mwin_init(&tp->st_lat_win);
        mwin_init(&tp->st_age_win);
        tp->st_lat_ms = tp->st_age_ms = -1;
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

/* A task's own producer gets a per-task share of the budget's producer half (mbudget.h); the
 * settings the user gave explicitly are kept. */
static void apply_budget(rtask_t *t, rd_kafka_conf_t *pc)
{
    static const char *const prod_layers[] = {"dest.kafka.", "producer.override.", NULL};
    const wconf_t *wc = t->wc;
    char v[64];
    size_t n = sizeof v;
    int64_t msg_max = rd_kafka_conf_get(pc, "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK ? atoll(v) : 0;
    const char *kb = user_value(t, wc->producer, prod_layers, "queue.buffering.max.kbytes"),
               *msgs = user_value(t, wc->producer, prod_layers, "queue.buffering.max.messages");
    mbudget_limits_t user = {.producer_kbytes = kb ? atoll(kb) : 0, .producer_messages = msgs ? atoll(msgs) : 0},
                     lim;
    mbudget_task_limits(wc->memory_budget_bytes, t->worker_tasks, msg_max, &user, &lim);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_kbytes);
    kutil_conf_set(pc, "queue.buffering.max.kbytes", v, NULL, NULL);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_messages);
    kutil_conf_set(pc, "queue.buffering.max.messages", v, NULL, NULL);
}

/* librdkafka's statistics of our own producer: retried requests, summed over brokers. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    rtask_t *t = opaque;
    uint64_t retries;
    if (kutil_stats_retries(json, len, &retries) == 0)
        atomic_store(&t->retries, retries);
    return 0;
}

/* The destination producer: the worker's shared one, or one of our own (transactional, or
 * producer keys of the connector's own). */
static int make_producer(rtask_t *t)
{
    const wconf_t *wc = t->wc;
    if (t->wp) {
        t->prod = wprod_handle(t->wp);
    } else {
        ferr_t err = {0};
        char e[512], cid[300];
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
            rtask_fail(t, "%s", err.msg);
            return -1;
        }
        kutil_conf_set(pc, "bootstrap.servers", wc->bootstrap_servers, NULL, NULL);
        rd_kafka_conf_set_dr_msg_cb(pc, rtask_delivery_cb);
        if (!kutil_conf_set(pc, "statistics.interval.ms", "5000", NULL, NULL))
            rd_kafka_conf_set_stats_cb(pc, stats_cb);
        rd_kafka_conf_set_opaque(pc, t);
        apply_budget(t, pc);
        if (!(t->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e))) {
            rtask_fail(t, "cannot create the destination producer: %s", e);
            return -1;
        }
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
    rd_kafka_t *src = scons_handle(t->sc);
    for (int i = 0; i < t->ntopics && !atomic_load(&t->stop); i++) {
        ttopic_t *tt = &t->topics[i];
        int maxpart = -1;
        for (int p = 0; p < t->nparts; p++)
            if (t->parts[p].topic == i && t->parts[p].partition > maxpart)
                maxpart = t->parts[p].partition;
        tt->nparts = kutil_partition_count(src, tt->name, 10000, &err);
        if (tt->nparts < 0) {
            rtask_fail(t, "%s", err.msg);
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
            rtask_fail(t, "destination topic %s does not exist and could not be created", tt->target);
            return -1;
        }
        if (have < maxpart + 1 || have < tt->nparts) {
            rtask_fail(t, "destination topic %s has %d partitions but source topic %s has %d; ferry keeps "
                       "partition numbers, so the destination needs at least as many",
                       tt->target, have, tt->name, tt->nparts);
            return -1;
        }
    }
    return 0;
}

/* Where each partition starts: its stored (or resumed) offset, else earliest or latest,
 * resolved here (a logical offset makes librdkafka 2.0.2 query it later, often after a 500 ms
 * "no current leader" timer). The list is what the copy thread assigns. */
static void start_offsets(rtask_t *t)
{
    int latest = !strcmp(rtask_cfg(t, "offset.start", "earliest"), "latest");
    rd_kafka_t *src = scons_handle(t->sc);
    t->assigned = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        int64_t off = tp->start;
        if (off < 0) {
            int64_t lo, hi;
            const char *topic = t->topics[tp->topic].name;
            if (rd_kafka_query_watermark_offsets(src, topic, tp->partition, &lo, &hi, 5000) == 0)
                off = latest ? hi : lo;
            else
                off = latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_topic_partition_list_add(t->assigned, t->topics[tp->topic].name, tp->partition)->offset = off;
        tp->committed = off;
        if (off >= 0)
            atomic_store_explicit(&tp->st_next, off, memory_order_relaxed);
        if ((tp->start < 0 || tp->altered) && off >= 0) {
            tp->acked = tp->expect = off;
            tp->written = -1; /* stored when copying starts (or with the first transaction) */
        }
    }
}

void rtask_release_topics(rtask_t *t)
{
    for (int i = 0; i < t->ntopics; i++)
        if (t->topics[i].rkt)
            rd_kafka_topic_destroy(t->topics[i].rkt);
    if (t->offset_rkt)
        rd_kafka_topic_destroy(t->offset_rkt);
}

/* Frees what the setup made, when the task ends before reaching a copy thread. */
static void release_clients(rtask_t *t)
{
    rtask_release_topics(t);
    if (t->prod && !t->wp)
        rd_kafka_destroy(t->prod);
    t->prod = NULL;
}

/* Ends a task from its setup job (stopped or failed before it started copying). */
static void exit_from_setup(rtask_t *t)
{
    if (t->failed)
        rtask_post(t, RTASK_EV_FAILED, t->trace);
    release_clients(t);
    rtask_exited(t);
}

void rtask_exited(rtask_t *t)
{
    FLOG(INFO, TASK, "task %s-%d stopped", t->connector, t->task);
    pthread_mutex_lock(&t->dq_lock);
    t->phase = RT_DONE;
    rtask_post(t, RTASK_EV_EXITED, NULL);
    atomic_store(&t->exited, 1);
    pthread_cond_broadcast(&t->exit_cond);
    pthread_mutex_unlock(&t->dq_lock);
}

/* A setup slower than this says where its time went (a failover waits for it). */
#define SETUP_SLOW_MS 5000

static void setup_job(void *arg)
{
    rtask_t *t = arg;
    int64_t at[4];
    at[0] = kutil_now_ms();
    if (!t->txn && !strcmp(rtask_cfg(t, "exactly.once.support", "requested"), "required"))
        rtask_fail(t, "exactly.once.support=required, but this worker does not have "
                      "exactly.once.source.support=enabled");
    int bad = t->failed || atomic_load(&t->stop) || build_partitions(t) || make_producer(t) || rtask_txn_init(t);
    at[1] = kutil_now_ms();
    bad = bad || check_destination(t);
    at[2] = kutil_now_ms();
    bad = bad || rtask_resume_from_destination(t) || atomic_load(&t->stop);
    at[3] = kutil_now_ms();
    if (at[3] - t->queued_at > SETUP_SLOW_MS)
        FLOG(INFO, TASK, "task %s-%d: setup took %.1f s: %.1f s waiting for a setup thread, %.1f s partitions and "
             "clients, %.1f s checking the destination, %.1f s reading the destination's ends", t->connector,
             t->task, (double)(at[3] - t->queued_at) / 1e3, (double)(at[0] - t->queued_at) / 1e3,
             (double)(at[1] - at[0]) / 1e3, (double)(at[2] - at[1]) / 1e3, (double)(at[3] - at[2]) / 1e3);
    if (bad) {
        exit_from_setup(t);
        return;
    }
    start_offsets(t);
    copier_add(t->copier, t, t->nparts, t->txn);
}

/* ---- the public side (the herder, on the loop thread) ------------------------------------ */

rtask_t *rtask_new(const rtask_params_t *p)
{
    rtask_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->connector = strdup(p->connector);
    t->task = p->task;
    t->instance = p->instance;
    t->config = json_deep_copy(p->config);
    t->queued_at = kutil_now_ms();
    t->offsets = p->offsets ? json_deep_copy(p->offsets) : json_object();
    t->wc = p->wc;
    t->worker_tasks = p->worker_tasks;
    t->recv = p->recv;
    t->wp = p->wprod;
    t->sc = p->scons;
    t->bp = p->bpass;
    t->copier = p->copier;
    t->setup_pool = p->setup_pool;
    pthread_mutex_init(&t->dq_lock, NULL);
    pthread_cond_init(&t->exit_cond, NULL);
    pthread_mutex_init(&t->gate, NULL);
    pthread_mutex_init(&t->st_lock, NULL);
    wconf_worker_id(p->wc, t->worker_id, sizeof t->worker_id);
    atomic_store(&t->paused, p->paused);
    t->provenance = !strcasecmp(rtask_cfg(t, "provenance.header.enable", "false"), "true");
    t->src_alias = rtask_cfg(t, "src.cluster.alias", "source");
    t->dst_alias = rtask_cfg(t, "dest.cluster.alias", "destination");
    t->pos_header = strcasecmp(rtask_cfg(t, "source.offset.header.enable", "true"), "false") != 0;
    t->pos_header_name = rtask_cfg(t, "source.offset.header.name", REPL_OFFSET_HEADER);
    t->txn = p->wc->eos_source;
    t->txn_per_poll = strcmp(rtask_cfg(t, "transaction.boundary", "poll"), "interval") != 0;
    t->txn_interval_ms = atoll(rtask_cfg(t, "transaction.boundary.interval.ms", "0"));
    if (t->txn_interval_ms < 1)
        t->txn_interval_ms = p->wc->offset_flush_interval_ms;
    t->max_poll = atoi(rtask_cfg(t, "src.kafka.max.poll.records", "500"));
    if (t->max_poll < 1)
        t->max_poll = 500;
    tpool_submit(t->setup_pool, setup_job, t);
    return t;
}

/* Wakes the task's copy thread, if it has one yet (a task in setup sees the flags itself). */
static void wake(rtask_t *t)
{
    pthread_mutex_lock(&t->dq_lock);
    copier_thread_t *ct = t->ct;
    if (ct && t->phase != RT_DONE)
        copier_wake(ct);
    pthread_mutex_unlock(&t->dq_lock);
}

void rtask_set_paused(rtask_t *t, int paused)
{
    if (atomic_exchange(&t->paused, paused) != paused)
        wake(t);
}

void rtask_stop(rtask_t *t)
{
    if (!atomic_exchange(&t->stop, 1))
        wake(t);
}

void rtask_fence(rtask_t *t)
{
    pthread_mutex_lock(&t->gate); /* waits for a produce call under way */
    atomic_store(&t->fenced, 1);
    atomic_store(&t->stop, 1);
    pthread_mutex_unlock(&t->gate);
    wake(t);
}

void rtask_destroy(rtask_t *t)
{
    if (!t)
        return;
    rtask_stop(t);
    pthread_mutex_lock(&t->dq_lock);
    while (!atomic_load(&t->exited))
        pthread_cond_wait(&t->exit_cond, &t->dq_lock);
    pthread_mutex_unlock(&t->dq_lock);
    for (int i = 0; i < t->ntopics; i++) {
        free(t->topics[i].name);
        free(t->topics[i].target);
    }
    for (int i = 0; i < t->nparts; i++)
        free(t->parts[i].inflight.v);
    free(t->topics);
    free(t->parts);
    free(t->dq.v);
    free(t->dq_spare.v);
    if (t->assigned)
        rd_kafka_topic_partition_list_destroy(t->assigned);
    if (t->rec)
        rd_kafka_topic_partition_list_destroy(t->rec);
    pthread_mutex_destroy(&t->dq_lock);
    pthread_cond_destroy(&t->exit_cond);
    pthread_mutex_destroy(&t->gate);
    pthread_mutex_destroy(&t->st_lock);
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
    out->batch_records = atomic_load(&w->batch_records);
    out->batches = atomic_load(&w->batches);
    out->fallbacks = atomic_load(&w->fallbacks);
    for (int i = 0; i <= RTASK_LATENCY_BUCKETS; i++)
        out->latency[i] = atomic_load_explicit(&w->latency[i], memory_order_relaxed);
    out->latency_sum_s = (double)atomic_load(&w->latency_sum_ms) / 1000.0;
    uint64_t settled = atomic_load_explicit(&w->st_settled, memory_order_relaxed);
    out->polled = atomic_load_explicit(&w->st_polled, memory_order_relaxed);
    out->active = out->polled > settled ? out->polled - settled : 0;
    out->src_alias = w->src_alias;
    out->dst_alias = w->dst_alias;
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
            .target = w->topics[tp->topic].target,
            .partition = tp->partition,
            .records = atomic_load_explicit(&tp->st_records, memory_order_relaxed),
            .bytes = atomic_load_explicit(&tp->st_bytes, memory_order_relaxed),
            .next_offset = atomic_load_explicit(&tp->st_next, memory_order_relaxed),
            .high_watermark = atomic_load_explicit(&tp->st_hwm, memory_order_relaxed),
            .forwarded = atomic_load_explicit(&tp->st_batch, memory_order_relaxed),
        };
        pthread_mutex_lock(&w->st_lock);
        ps.latency_ms = tp->st_lat_ms;
        ps.age_ms = tp->st_age_ms;
        ps.latency_win = tp->st_lat_win;
        ps.age_win = tp->st_age_win;
        pthread_mutex_unlock(&w->st_lock);
        fn(arg, &ps);
    }
}

uint64_t rtask_instance(const rtask_t *t)
{
    return t->instance;
}
