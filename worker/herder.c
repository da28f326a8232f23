/* herder: control core on the h2o loop thread. See herder.h.
 *
 * The one rule: herder_reconcile() makes what runs equal to (config snapshot ∩ assignment).
 * Every event that may change either side — a config record, a new assignment, a task
 * that exited, an offsets read-back finishing — ends by calling it. It is idempotent.
 *
 *   store records ─▶ cstate / statuses / offsets ─┐
 *   coordinator   ─▶ assignment ──────────────────┼─▶ reconcile ─▶ start/stop repl_conn, rtask
 *   task/connector events ────────────────────────┘                 └▶ status records
 *
 * Tasks start only after the offset topic has been read to its end (a sync barrier) by a
 * sync requested after the assignment that gave them to this worker, so a task that moves
 * between workers resumes from the last offsets its previous owner stored (before it
 * acknowledged the revocation, hence before that assignment). Operations from REST wait
 * on store tokens: write, read back, then answer. */
#include "worker/herder.h"
#include "worker/metrics.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/bpass.h"
#include "worker/copier.h"
#include "worker/cstate.h"
#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/gsync.h"
#include "worker/isig.h"
#include "worker/kutil.h"
#include "worker/mdash.h"
#include "worker/repl.h"
#include "worker/rtask.h"
#include "worker/scons.h"
#include "worker/store.h"
#include "worker/tpool.h"
#include "worker/wprod.h"

typedef enum { HT_STARTING = 0, HT_RUNNING, HT_FAILED, HT_STOPPING } ht_state_t;

typedef struct hconn {
    struct hconn *next;
    char *name;
    json_t *config; /* config it was started with */
    repl_conn_t *rc;
    scons_t *sc;  /* the shared consumer whose handle it reads source metadata with, or NULL */
    wprod_t *wp;  /* the shared producer it creates topics with, or NULL */
    uint64_t instance;
    int failed;
} hconn_t;

typedef struct htask {
    struct htask *next;
    char *name;
    int id;
    json_t *config;
    rtask_t *rt;
    wprod_t *wp; /* the shared producer it uses, or NULL */
    scons_t *sc; /* its source consumer (a reference), or NULL */
    bpass_t *bp; /* its batch passthrough engine (a reference), or NULL: record by record */
    uint64_t instance;
    ht_state_t state;
    int exited; /* its thread has finished (stopped, or failed and kept to show FAILED) */
    int over_limit; /* refused at start: the worker ran ferry.max.tasks.per.worker tasks */
} htask_t;

typedef enum {
    OP_REPLY = 1,  /* answer a REST request when the write is read back */
    OP_INTERNAL,   /* status or task-config writes: log failures only */
    OP_OFFSETS_SYNC,
    OP_STARTUP_SYNC,
    OP_SESSION_KEY, /* a new session key written by the leader */
} op_kind_t;

typedef struct hop {
    struct hop *next;
    uint64_t token;
    op_kind_t kind;
    herder_cb cb;
    void *arg;
    herder_result_t res; /* prepared success result (status, location); body built at the end */
    char *name;
    int build_info; /* body = ConnectorInfo of name */
    uint64_t epoch; /* offsets_epoch when the op was made (for syncs) */
} hop_t;

struct herder {
    const wconf_t *wc;
    h2o_loop_t *loop;
    store_t *store;
    wprod_t *wprod; /* the destination producer shared by tasks; created with the first one */
    wprod_t **wprod_old; /* failed shared producers some task still uses (see task_wprod) */
    int nwprod_old;
    copier_t *copier;      /* the copy threads every task runs on */
    tpool_t *setup_pool;   /* where tasks' setups run */
    scons_reg_t *scons;    /* the shared source consumers */
    bpass_reg_t *bpass;    /* the batch passthrough engines */
    cstate_t *cs;
    json_t *statuses; /* status-topic key -> value */
    json_t *offsets;  /* canonical offset key -> {"connector","partition","offset"} */
    json_t *written;  /* status key -> last value this worker wrote (to skip repeats) */
    char worker_id[300];
    char *leader_url;
    int leader, solo;
    int64_t generation;
    uint64_t rebalances; /* assignments applied (each a new generation for this worker) */
    int64_t rebalanced_ms; /* monotonic time of the last one, -1: none yet */
    mdash_t *md;         /* rate checkpoints of the dashboard metrics (mdash.h) */
    int ready, startup_left;
    int key_writing; /* the leader is writing a new session key (OP_SESSION_KEY) */
    int closing; /* herder_destroy runs: deliveries are drained, nothing new starts */
    json_t *assigned; /* set of "task-id\tname" strings; NULL in solo mode */
    json_t *directory; /* worker id -> REST URL of the members of the current generation */
    hconn_t *conns;
    htask_t *tasks;
    hop_t *ops;
    uint64_t next_token, next_instance;
    int offsets_fresh, offsets_syncing;
    /* Bumped by an assignment that gives this worker a task: the previous holder stored its
     * last offsets before it acknowledged, so only a sync requested after this has them. */
    uint64_t offsets_epoch;
    h2o_multithread_queue_t *queue;
    gsync_t *gsync;               /* consumer-group translation thread */
    h2o_timeout_t gsync_timeout;  /* 1 s tick of the periodic translation (leader only) */
    h2o_timeout_entry_t gsync_tick;
    json_t *gsync_last;           /* connector -> monotonic ms of its last periodic translation */
    h2o_multithread_receiver_t conn_recv, task_recv;
    void (*on_change)(void *);
    void *on_change_arg;
    void (*task_configs_fn)(void *, const char *, const char *, const json_t *);
    void *task_configs_arg;
};

static void reconcile(herder_t *h);
static void conn_stop(herder_t *h, hconn_t *c);
static void on_gsync_tick(h2o_timeout_entry_t *entry);
static void rotate_session_key(herder_t *h);
static int leader_check(herder_t *h, herder_cb cb, void *arg);

/* ---- small helpers ------------------------------------------------------------------ */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static void finish(herder_cb cb, void *arg, herder_result_t *res)
{
    if (cb)
        cb(arg, res);
    json_decref(res->body);
    free(res->location);
}

static void reply_err(herder_cb cb, void *arg, ferr_code_t code, const char *f, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_err(herder_cb cb, void *arg, ferr_code_t code, const char *f, ...)
{
    herder_result_t res = {0};
    va_list ap;
    va_start(ap, f);
    res.err.code = code;
    vsnprintf(res.err.msg, sizeof res.err.msg, f, ap);
    va_end(ap);
    finish(cb, arg, &res);
}

static char *item_key(const char *name, int task)
{
    return fmt("%d\t%s", task, name);
}

static int owned(const herder_t *h, const char *name, int task)
{
    if (h->solo)
        return 1;
    char *k = item_key(name, task);
    int r = json_object_get(h->assigned, k) != NULL;
    free(k);
    return r;
}

static void notify_change(herder_t *h)
{
    if (h->on_change && !h->closing)
        h->on_change(h->on_change_arg);
}

static json_t *parse_json(const char *s)
{
    return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

/* Asks a task to stop; a task whose thread already ended (failed) is swept by reconcile. */
static void task_stop(htask_t *t)
{
    if (t->state == HT_STOPPING)
        return;
    t->state = HT_STOPPING;
    if (t->rt)
        rtask_stop(t->rt);
}

/* ---- store plumbing ----------------------------------------------------------------- */

static hop_t *op_new(herder_t *h, op_kind_t kind, herder_cb cb, void *arg)
{
    hop_t *op = calloc(1, sizeof *op);
    op->token = ++h->next_token;
    op->kind = kind;
    op->cb = cb;
    op->arg = arg;
    op->epoch = h->offsets_epoch;
    op->next = h->ops;
    h->ops = op;
    return op;
}

static hop_t *op_take(herder_t *h, uint64_t token)
{
    for (hop_t **pp = &h->ops; *pp; pp = &(*pp)->next)
        if ((*pp)->token == token) {
            hop_t *op = *pp;
            *pp = op->next;
            return op;
        }
    return NULL;
}

static void write_records(herder_t *h, store_topic_t t, const store_rec_t *recs, size_t n,
                          hop_t *op)
{
    store_write(h->store, t, recs, n, op->kind == OP_REPLY, op->token);
}

static void write_status(herder_t *h, const char *key, const char *state, const char *trace)
{
    json_t *v = json_pack("{s:s,s:s?,s:s,s:I}", "state", state, "trace", trace, "worker_id",
                          h->worker_id, "generation", (json_int_t)h->generation);
    json_t *prev = json_object_get(h->written, key);
    if (prev && json_equal(prev, v)) {
        json_decref(v);
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    store_rec_t rec = {key, s};
    write_records(h, STORE_STATUS, &rec, 1, op_new(h, OP_INTERNAL, NULL, NULL));
    json_object_set_new(h->written, key, v);
    free(s);
}

static void conn_status(herder_t *h, const char *name, const char *state, const char *trace)
{
    char *k = fmt("status-connector-%s", name);
    write_status(h, k, state, trace);
    free(k);
}

static void task_status(herder_t *h, const char *name, int id, const char *state, const char *trace)
{
    char *k = fmt("status-task-%s-%d", name, id);
    write_status(h, k, state, trace);
    free(k);
}

/* Offsets: keys are parsed and rebuilt canonically so a record written by any writer matches.
 * A value that is not {"offset": <integer >= 0>, ...} (written by hand, or by something else)
 * is not applied: the partition keeps its last valid offset instead of starting over from the
 * beginning. A tombstone (no value) is a reset, as Kafka Connect's. */
static void apply_offset(herder_t *h, const char *key, const char *value)
{
    json_t *k = parse_json(key);
    const char *conn = json_string_value(json_array_get(k, 0));
    json_t *part = json_array_get(k, 1);
    const char *topic = json_string_value(json_object_get(part, "topic"));
    json_t *p = json_object_get(part, "partition");
    if (conn && topic && json_is_integer(p) && json_integer_value(p) >= 0 &&
        json_integer_value(p) < REPL_MAX_PARTITION) {
        char *ck = rtask_offset_key(conn, topic, (int)json_integer_value(p));
        json_t *v = parse_json(value);
        json_t *off = json_object_get(v, "offset");
        if (!value) {
            json_object_del(h->offsets, ck);
        } else if (json_is_object(v) && json_is_integer(off) && json_integer_value(off) >= 0) {
            json_object_set_new(h->offsets, ck,
                                json_pack("{s:s,s:O,s:O}", "connector", conn, "partition", part, "offset", v));
        } else {
            json_t *prev = json_object_get(json_object_get(json_object_get(h->offsets, ck), "offset"), "offset");
            char kept[64] = "no offset (the partition starts where offset.start says)";
            if (prev)
                snprintf(kept, sizeof kept, "offset %lld", (long long)json_integer_value(prev));
            FLOG(WARN, WORKER, "connector %s: ignoring an invalid stored offset for %s[%lld] (%.200s); keeping %s",
                 conn, topic, (long long)json_integer_value(p), value, kept);
        }
        json_decref(v);
        free(ck);
    }
    json_decref(k);
}

static void apply_config(herder_t *h, store_ev_t *ev)
{
    json_t *v = parse_json(ev->value);
    const char *name = NULL;
    cstate_event_t what = cstate_apply(h->cs, ev->key, v, ev->offset, ev->timestamp, &name);
    if (what == CSTATE_EV_LOGGER && name) {
        const char *lvl = json_string_value(json_object_get(v, "level"));
        json_t *out = NULL;
        if (lvl && herder_set_logger(name, lvl, &out, NULL) == FERR_OK)
            FLOG(INFO, WORKER, "cluster-wide logger %s set to %s", name, lvl);
        json_decref(out);
    } else if (what == CSTATE_EV_SESSION_KEY && h->ready) {
        /* task configs a connector instance here could not send without a key (or sent with the
         * previous one) go again now rather than at its next report */
        for (hconn_t *c = h->conns; c; c = c->next)
            if (c->rc)
                repl_conn_refresh(c->rc);
    } else if (what == CSTATE_EV_RESTART && name && h->ready) {
        int tasks = json_is_true(json_object_get(v, "include-tasks"));
        int failed = json_is_true(json_object_get(v, "only-failed"));
        for (hconn_t *c = h->conns; c; c = c->next)
            if (!strcmp(c->name, name) && (!failed || c->failed)) {
                conn_stop(h, c); /* reconcile starts it again */
                json_decref(c->config);
                c->config = NULL;
                conn_status(h, name, "RESTARTING", NULL);
            }
        for (htask_t *t = h->tasks; t && tasks; t = t->next)
            if (!strcmp(t->name, name) && (!failed || t->state == HT_FAILED) && t->state != HT_STOPPING) {
                task_stop(t);
                task_status(h, name, t->id, "RESTARTING", NULL);
            }
    }
    json_decref(v);
}

static void on_store(void *arg, store_ev_t *ev)
{
    herder_t *h = arg;
    if (ev->type == STORE_EV_RECORD) {
        if (ev->topic == STORE_CONFIG)
            apply_config(h, ev);
        else if (ev->topic == STORE_STATUS) {
            json_t *v = parse_json(ev->value);
            if (v)
                json_object_set_new(h->statuses, ev->key, v);
            else
                json_object_del(h->statuses, ev->key);
        } else
            apply_offset(h, ev->key, ev->value);
        if (ev->topic == STORE_CONFIG && h->ready)
            reconcile(h);
        return;
    }
    hop_t *op = op_take(h, ev->token);
    if (!op)
        return;
    switch (op->kind) {
    case OP_STARTUP_SYNC:
        if (ev->err)
            FLOG(ERROR, WORKER, "reading storage topics at start-up: %s", ev->errmsg);
        if (--h->startup_left == 0) {
            h->ready = 1;
            h->offsets_fresh = op->epoch == h->offsets_epoch;
            FLOG(INFO, WORKER, "read %zu connector(s) from %s; worker %s is ready",
                 cstate_count(h->cs), h->wc->config_topic, h->worker_id);
            rotate_session_key(h);
            reconcile(h);
            notify_change(h);
        }
        break;
    case OP_OFFSETS_SYNC:
        FLOG(DEBUG, WORKER, "offsets read to the end: %zu stored offset(s) known", json_object_size(h->offsets));
        h->offsets_syncing = 0;
        h->offsets_fresh = !ev->err && op->epoch == h->offsets_epoch; /* else read again */
        reconcile(h);
        break;
    case OP_INTERNAL:
        if (ev->err)
            FLOG(WARN, WORKER, "storage write failed: %s", ev->errmsg);
        break;
    case OP_SESSION_KEY:
        h->key_writing = 0; /* read back (or failed: the next tick tries again) */
        if (ev->err)
            FLOG(WARN, WORKER, "writing a new session key failed: %s", ev->errmsg);
        break;
    case OP_REPLY:
        if (ev->err) {
            op->res.err.code = FERR_KAFKA;
            snprintf(op->res.err.msg, sizeof op->res.err.msg, "%s", ev->errmsg);
        } else if (op->build_info) {
            ferr_t e;
            herder_info(h, op->name, &op->res.body, &e);
        }
        finish(op->cb, op->arg, &op->res);
        break;
    }
    free(op->name);
    free(op);
}

/* ---- running connectors and tasks --------------------------------------------------- */

static hconn_t *find_conn(herder_t *h, const char *name)
{
    for (hconn_t *c = h->conns; c; c = c->next)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static wprod_t *wprod_get(herder_t *h, const json_t *config, int admin);
static void wprod_put(herder_t *h, wprod_t *wp);

/* Stops the connector instance and lets go of the shared clients it used. */
static void conn_stop(herder_t *h, hconn_t *c)
{
    repl_conn_destroy(c->rc);
    c->rc = NULL;
    scons_put(c->sc, NULL);
    c->sc = NULL;
    wprod_put(h, c->wp);
    c->wp = NULL;
}

static void conn_remove(herder_t *h, hconn_t *c)
{
    for (hconn_t **pp = &h->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    conn_stop(h, c);
    json_decref(c->config);
    free(c->name);
    free(c);
}

/* A stored config is checked again before it runs: it may come from a record written to the
 * config topic directly, or from an older version with fewer checks (cpolicy.h). An invalid
 * one fails the connector with the reasons as its trace, and nothing of it starts. */
static int conn_config_ok(herder_t *h, hconn_t *c, cstate_conn_t *cc)
{
    char *msgs = NULL;
    int nerr = cc->config ? repl_validate(cc->config, h->wc, NULL, &msgs) : 1;
    if (nerr) {
        char *trace = fmt("The connector's stored configuration is invalid and was not started (%d error(s)):\n%s",
                          nerr, msgs ? msgs : "no configuration\n");
        FLOG(ERROR, WORKER, "connector %s: %s", c->name, trace);
        conn_status(h, c->name, "FAILED", trace);
        free(trace);
    }
    free(msgs);
    return nerr == 0;
}

static void conn_start(herder_t *h, hconn_t *c, cstate_conn_t *cc)
{
    json_decref(c->config);
    c->config = json_incref(cc->config);
    c->instance = ++h->next_instance;
    c->failed = 0;
    if (!conn_config_ok(h, c, cc)) {
        c->failed = 1; /* stays so until the config changes or a restart */
        return;
    }
    /* the source metadata from the shared consumer of that cluster, topic creation through the
     * shared producer: no clients (and broker threads) of its own (a failure here leaves the
     * instance to make its own, which reports the error) */
    ferr_t err = {0};
    c->sc = scons_get(h->scons, cc->config, NULL, NULL, &err);
    c->wp = wprod_get(h, cc->config, 1);
    c->rc = repl_conn_new(c->name, cc->config, h->wc, c->instance, &h->conn_recv,
                          c->sc ? scons_handle(c->sc) : NULL, c->wp ? wprod_handle(c->wp) : NULL);
    conn_status(h, c->name, cc->target == CSTATE_TARGET_PAUSED ? "PAUSED" : "RUNNING", NULL);
    FLOG(INFO, WORKER, "connector %s started", c->name);
}

static void reconcile_connectors(herder_t *h)
{
    for (hconn_t *c = h->conns, *next; c; c = next) {
        next = c->next;
        cstate_conn_t *cc = cstate_get(h->cs, c->name);
        if (!cc || !owned(h, c->name, -1) || cc->target == CSTATE_TARGET_STOPPED) {
            if (cc && cc->target == CSTATE_TARGET_STOPPED && owned(h, c->name, -1))
                conn_status(h, c->name, "STOPPED", NULL);
            FLOG(INFO, WORKER, "connector %s stopped", c->name);
            conn_remove(h, c);
        } else if ((!c->rc && !c->failed) || !c->config || !json_equal(c->config, cc->config)) {
            conn_stop(h, c);
            conn_start(h, c, cc);
        } else if (!c->failed) {
            conn_status(h, c->name, cc->target == CSTATE_TARGET_PAUSED ? "PAUSED" : "RUNNING", NULL);
        }
    }
    for (size_t i = 0; i < cstate_count(h->cs); i++) {
        cstate_conn_t *cc = cstate_at(h->cs, i);
        if (!owned(h, cc->name, -1) || find_conn(h, cc->name))
            continue;
        if (cc->target == CSTATE_TARGET_STOPPED) {
            conn_status(h, cc->name, "STOPPED", NULL);
            continue;
        }
        hconn_t *c = calloc(1, sizeof *c);
        c->name = strdup(cc->name);
        c->next = h->conns;
        h->conns = c;
        conn_start(h, c, cc);
    }
}

static htask_t *find_task(herder_t *h, const char *name, int id)
{
    for (htask_t *t = h->tasks; t; t = t->next)
        if (t->id == id && !strcmp(t->name, name))
            return t;
    return NULL;
}

/* Start offsets for a task: "topic:partition" -> next offset, from the offsets snapshot. */
static json_t *task_offsets(herder_t *h, const char *name)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(h->offsets, k, v) {
        if (strcmp(json_string_value(json_object_get(v, "connector")), name))
            continue;
        json_t *part = json_object_get(v, "partition");
        json_t *value = json_object_get(v, "offset");
        json_t *off = json_object_get(value, "offset");
        if (!json_is_integer(off))
            continue;
        char *pk = fmt("%s:%lld", json_string_value(json_object_get(part, "topic")),
                       (long long)json_integer_value(json_object_get(part, "partition")));
        json_t *o = json_pack("{s:O,s:b}", "offset", off, "altered",
                              json_is_true(json_object_get(value, RTASK_ALTERED_KEY)));
        omap_t map;
        if (!omap_from_json(&map, value) && map.n > 0)
            omap_to_json(&map, o);
        json_object_set_new(out, pk, o);
        free(pk);
    }
    return out;
}

/* Tasks assigned to this worker (running or to start), which share its memory budget. */
static int assigned_tasks(herder_t *h)
{
    int n = 0;
    for (size_t i = 0; i < cstate_count(h->cs); i++) {
        cstate_conn_t *cc = cstate_at(h->cs, i);
        if (cc->target == CSTATE_TARGET_STOPPED)
            continue;
        for (int id = 0; id < (int)json_array_size(cc->tasks); id++)
            n += owned(h, cc->name, id);
    }
    return n;
}

/* A task's share of ferry.memory.budget.bytes is fixed when it starts: budget / the tasks
 * assigned to this worker at that moment. Tasks started in one assignment all get the same
 * share and together stay within the budget. When a later rebalance adds tasks, the running
 * ones keep their larger share (restarting them to shrink it would cost a pause and
 * duplicates), so until they restart the worker may exceed the budget by up to that
 * difference; when tasks leave, the remaining ones keep their smaller share. */
/* The worker's shared destination producer for a user with this config, or NULL: a task
 * keeps its own when it is transactional (a transactional.id per task) or sets producer keys
 * of its own (producer.override.*, dest.kafka.*); a connector instance (@p admin) uses it to
 * create topics unless the worker sets admin.* keys or the connector dest.kafka.* keys.
 * Created with its first user; one more reference (wprod_put). If the current one raised a
 * fatal error, users from now on get a new one, and the failed one goes with its last user.
 * If it cannot be created the user makes its own client, which reports the same error. */
static wprod_t *wprod_get(herder_t *h, const json_t *config, int admin)
{
    if (admin ? props_count(h->wc->admin) > 0 : h->wc->eos_source)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) if ((!admin && !strncmp(k, "producer.override.", 18)) ||
                                                    !strncmp(k, "dest.kafka.", 11)) return NULL;
    if (h->wprod && wprod_failed(h->wprod)) {
        char reason[512];
        rd_kafka_fatal_error(wprod_handle(h->wprod), reason, sizeof reason);
        FLOG(WARN, WORKER, "the shared destination producer failed (%s); tasks started from now on "
             "use a new one", reason);
        h->wprod_old = realloc(h->wprod_old, (h->nwprod_old + 1) * sizeof *h->wprod_old);
        h->wprod_old[h->nwprod_old++] = h->wprod;
        h->wprod = NULL;
    }
    if (!h->wprod) {
        ferr_t err = {0};
        if (!(h->wprod = wprod_new(h->wc, rtask_delivery_batch, &err)))
            FLOG(ERROR, WORKER, "%s", err.msg);
    }
    if (h->wprod)
        wprod_keep(h->wprod);
    return h->wprod;
}

/* A user is done with @p wp (may be NULL); a failed one goes with its last user. */
static void wprod_put(herder_t *h, wprod_t *wp)
{
    if (!wp || wprod_release(wp) > 0 || wp == h->wprod)
        return;
    for (int i = 0; i < h->nwprod_old; i++)
        if (h->wprod_old[i] == wp) {
            wprod_destroy(wp);
            h->wprod_old[i] = h->wprod_old[--h->nwprod_old];
            break;
        }
}

/* Tasks of this worker that have a thread (running, starting or stopping). */
static int running_tasks(const herder_t *h)
{
    int n = 0;
    for (const htask_t *t = h->tasks; t; t = t->next)
        n += t->rt != NULL;
    return n;
}

/* A task that cannot start: FAILED with @p why as its trace, no thread; it stays so until
 * its config changes, it is restarted or reassigned (or, over the limit, a slot frees). */
static void task_refuse(herder_t *h, htask_t *t, const char *why)
{
    t->state = HT_FAILED;
    t->exited = 1;
    FLOG(ERROR, WORKER, "task %s-%d not started: %s", t->name, t->id, why);
    task_status(h, t->name, t->id, "FAILED", why);
}

/* copy.mode: the batch passthrough engine for the task's connections, or the record path.
 * auto takes the engine where it can serve the task and says once why it cannot; batch makes
 * that a failure. @returns 0, or -1 with @p why filled (copy.mode=batch not possible). */
static int task_engine(herder_t *h, htask_t *t, char *why, size_t len)
{
    const char *mode = json_string_value(json_object_get(t->config, "copy.mode"));
    mode = mode ? mode : "auto";
    t->bp = NULL;
    if (!strcmp(mode, "record"))
        return 0;
    const char *prov = json_string_value(json_object_get(t->config, "provenance.header.enable"));
    ferr_t err = {0};
    if (h->wc->eos_source)
        snprintf(err.msg, sizeof err.msg, "exactly.once.source.support=enabled writes in transactions, which the "
                 "batch path does not");
    else if (prov && !strcasecmp(prov, "true"))
        snprintf(err.msg, sizeof err.msg, "provenance.header.enable adds a header to every record");
    else
        t->bp = bpass_get(h->bpass, t->config, &err);
    if (t->bp)
        return 0;
    if (!strcmp(mode, "batch")) {
        snprintf(why, len, "copy.mode=batch, but record batches cannot be forwarded: %s", err.msg);
        return -1;
    }
    FLOG(INFO, WORKER, "task %s-%d copies record by record: %s", t->name, t->id, err.msg);
    return 0;
}

static void task_start(herder_t *h, htask_t *t, cstate_conn_t *cc, int worker_tasks)
{
    char why[1536];
    t->instance = ++h->next_instance;
    if (repl_check_task(t->config, h->wc, why, sizeof why)) {
        char *trace = fmt("The task's stored configuration is invalid: %s", why);
        task_refuse(h, t, trace);
        free(trace);
        return;
    }
    if (running_tasks(h) >= h->wc->max_tasks_per_worker) {
        snprintf(why, sizeof why, "This worker already runs %d tasks, the most ferry.max.tasks.per.worker "
                 "allows; add workers or lower the connectors' tasks.max", h->wc->max_tasks_per_worker);
        t->over_limit = 1;
        task_refuse(h, t, why);
        return;
    }
    /* a transactional task reads with a consumer of its own: it rewinds after an abort */
    char private_key[64];
    snprintf(private_key, sizeof private_key, "%" PRIu64, t->instance);
    ferr_t err = {0};
    json_t *parts = repl_parse_partitions(json_string_value(json_object_get(t->config, REPL_TASK_PARTITIONS)));
    t->sc = scons_get(h->scons, t->config, parts, h->wc->eos_source ? private_key : NULL, &err);
    json_decref(parts);
    if (!t->sc) {
        task_refuse(h, t, err.msg);
        return;
    }
    if (task_engine(h, t, why, sizeof why)) {
        task_refuse(h, t, why);
        return;
    }
    json_t *offs = task_offsets(h, t->name);
    t->state = HT_STARTING;
    rtask_params_t p = {.connector = t->name,
                        .task = t->id,
                        .config = t->config,
                        .offsets = offs,
                        .wc = h->wc,
                        .worker_tasks = worker_tasks,
                        .instance = t->instance,
                        .paused = cc->target == CSTATE_TARGET_PAUSED,
                        .recv = &h->task_recv,
                        .wprod = t->wp = wprod_get(h, t->config, 0),
                        .scons = t->sc,
                        .copier = h->copier,
                        .bpass = t->bp,
                        .setup_pool = h->setup_pool};
    t->rt = rtask_new(&p);
    json_decref(offs);
}

static void task_remove(herder_t *h, htask_t *t)
{
    for (htask_t **pp = &h->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    rtask_destroy(t->rt);
    if (t->sc) { /* after the task: it used the consumer until it exited */
        json_t *parts = repl_parse_partitions(json_string_value(json_object_get(t->config, REPL_TASK_PARTITIONS)));
        scons_put(t->sc, parts);
        json_decref(parts);
    }
    wprod_put(h, t->wp);
    bpass_put(t->bp);
    json_decref(t->config);
    free(t->name);
    free(t);
}

/* Frees tasks that were asked to stop and whose thread has finished. */
static void sweep_tasks(herder_t *h)
{
    for (htask_t *t = h->tasks, *next; t; t = next) {
        next = t->next;
        if (t->exited && t->state == HT_STOPPING)
            task_remove(h, t);
    }
}

static void reconcile_tasks(herder_t *h)
{
    int want_start = 0;
    for (htask_t *t = h->tasks; t; t = t->next) {
        if (t->state == HT_STOPPING)
            continue;
        cstate_conn_t *cc = cstate_get(h->cs, t->name);
        json_t *cfg = cc ? json_array_get(cc->tasks, t->id) : NULL;
        if (!cfg || !owned(h, t->name, t->id) || cc->target == CSTATE_TARGET_STOPPED ||
            !json_equal(cfg, t->config) ||
            (t->over_limit && running_tasks(h) < h->wc->max_tasks_per_worker)) {
            task_stop(t); /* started again below once gone, if still ours */
        } else if (t->rt) {
            rtask_set_paused(t->rt, cc->target == CSTATE_TARGET_PAUSED);
            if (t->state == HT_RUNNING)
                task_status(h, t->name, t->id, cc->target == CSTATE_TARGET_PAUSED ? "PAUSED" : "RUNNING", NULL);
        }
    }
    sweep_tasks(h); /* failed tasks just told to stop have no thread left to wait for */
    int worker_tasks = assigned_tasks(h);
    for (size_t i = 0; i < cstate_count(h->cs); i++) {
        cstate_conn_t *cc = cstate_at(h->cs, i);
        if (cc->target == CSTATE_TARGET_STOPPED)
            continue;
        for (int id = 0; id < (int)json_array_size(cc->tasks); id++) {
            if (!owned(h, cc->name, id) || find_task(h, cc->name, id))
                continue;
            if (!h->offsets_fresh) {
                want_start = 1;
                continue;
            }
            htask_t *t = calloc(1, sizeof *t);
            t->name = strdup(cc->name);
            t->id = id;
            t->config = json_incref(json_array_get(cc->tasks, id));
            t->next = h->tasks;
            h->tasks = t;
            task_start(h, t, cc, worker_tasks);
        }
    }
    if (want_start && !h->offsets_syncing) {
        h->offsets_syncing = 1;
        store_sync(h->store, STORE_OFFSET, op_new(h, OP_OFFSETS_SYNC, NULL, NULL)->token);
    } else if (!want_start) {
        h->offsets_fresh = 0; /* the next start reads the offsets topic to its end again */
    }
}

static void reconcile(herder_t *h)
{
    if (!h->ready || h->closing)
        return;
    sweep_tasks(h);
    reconcile_connectors(h);
    reconcile_tasks(h);
    notify_change(h);
}

/* Task configs from a connector instance: written by the leader, forwarded otherwise. */
static void submit_task_configs(herder_t *h, const char *name, json_t *configs)
{
    if (h->leader) {
        herder_put_task_configs(h, name, configs, NULL, NULL);
        return;
    }
    /* A follower's connector instance sends them to the leader, as Kafka Connect does; a
     * failure is retried when the instance reports again (every topic.poll.interval.ms). */
    if (h->task_configs_fn && h->leader_url)
        h->task_configs_fn(h->task_configs_arg, h->leader_url, name, configs);
    else
        FLOG(DEBUG, WORKER, "connector %s: task configs changed but no leader is known yet", name);
}

static void on_conn_events(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    herder_t *h = H2O_STRUCT_FROM_MEMBER(herder_t, conn_recv, recv);
    while (!h2o_linklist_is_empty(messages)) {
        repl_conn_ev_t *ev = H2O_STRUCT_FROM_MEMBER(repl_conn_ev_t, super.link, messages->next);
        h2o_linklist_unlink(&ev->super.link);
        hconn_t *c = find_conn(h, ev->connector);
        cstate_conn_t *cc = cstate_get(h->cs, ev->connector);
        if (c && cc && c->instance == ev->instance) {
            if (ev->error) {
                c->failed = 1;
                conn_status(h, c->name, "FAILED", ev->error);
            } else if (cc->target != CSTATE_TARGET_STOPPED) {
                int tasks_max = atoi(json_string_value(json_object_get(cc->config, "tasks.max")) ?: "1");
                json_t *split = repl_split(ev->topics, cc->tasks, tasks_max < 1 ? 1 : tasks_max);
                json_t *configs = repl_task_configs(cc->config, split);
                if (cc->inconsistent || !json_equal(configs, cc->tasks))
                    submit_task_configs(h, c->name, configs);
                json_decref(configs);
                json_decref(split);
            }
        }
        repl_conn_ev_free(ev);
    }
}

static void on_task_events(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    herder_t *h = H2O_STRUCT_FROM_MEMBER(herder_t, task_recv, recv);
    int changed = 0;
    while (!h2o_linklist_is_empty(messages)) {
        rtask_ev_t *ev = H2O_STRUCT_FROM_MEMBER(rtask_ev_t, super.link, messages->next);
        h2o_linklist_unlink(&ev->super.link);
        htask_t *t = find_task(h, ev->connector, ev->task);
        if (t && t->instance == ev->instance) {
            cstate_conn_t *cc = cstate_get(h->cs, t->name);
            switch (ev->type) {
            case RTASK_EV_RUNNING:
                if (t->state == HT_STARTING)
                    t->state = HT_RUNNING;
                if (cc && t->state == HT_RUNNING)
                    task_status(h, t->name, t->id, cc->target == CSTATE_TARGET_PAUSED ? "PAUSED" : "RUNNING", NULL);
                break;
            case RTASK_EV_FAILED:
                if (t->state != HT_STOPPING)
                    t->state = HT_FAILED;
                task_status(h, t->name, t->id, "FAILED", ev->trace);
                break;
            case RTASK_EV_EXITED:
                /* A failed task stays (FAILED) until restarted or reassigned; reconcile
                 * sweeps stopped ones and starts again what is still ours. */
                t->exited = 1;
                changed = 1;
                break;
            }
        }
        rtask_ev_free(ev);
    }
    if (changed) {
        reconcile(h);
        notify_change(h);
    }
}

/* ---- consumer-group translation (gsync) ---------------------------------------------- */

/* The index of @p topic[@p partition] in @p *parts (grown as needed), added if new; @p seen
 * maps "topic\tpartition" to indexes. */
typedef struct part_set {
    gsync_part_t *parts;
    int n, cap;
    json_t *seen;
    const char *fmt;
} part_set_t;

static gsync_part_t *part_add(part_set_t *ps, const char *topic, int32_t partition)
{
    char *key = fmt("%s\t%d", topic, (int)partition);
    json_t *idx = json_object_get(ps->seen, key);
    if (!idx) {
        if (ps->n == ps->cap)
            ps->parts = realloc(ps->parts, (ps->cap = ps->cap ? ps->cap * 2 : 16) * sizeof *ps->parts);
        gsync_part_t *gp = &ps->parts[ps->n];
        memset(gp, 0, sizeof *gp);
        gp->topic = strdup(topic);
        gp->target = repl_rename(ps->fmt, topic);
        gp->partition = partition;
        gp->copied = -1;
        json_object_set_new(ps->seen, key, idx = json_integer(ps->n++));
    }
    free(key);
    return &ps->parts[json_integer_value(idx)];
}

/* Every partition of a connector that its task configs name or that has a stored offset, with
 * the stored copy position and offset map: what gsync needs, copied out of the snapshots. */
static gsync_part_t *group_parts(herder_t *h, cstate_conn_t *cc, int *n_out)
{
    const char *rename = json_string_value(json_object_get(cc->config, "topic.rename.format"));
    part_set_t ps = {.seen = json_object(), .fmt = rename ? rename : "${topic}.replica"};
    size_t i, k;
    json_t *tc, *e;
    json_array_foreach(cc->tasks, i, tc) {
        json_t *list = repl_parse_partitions(json_string_value(json_object_get(tc, REPL_TASK_PARTITIONS)));
        json_array_foreach(list, k, e) {
            const char *topic = json_string_value(json_array_get(e, 0));
            if (topic)
                part_add(&ps, topic, (int32_t)json_integer_value(json_array_get(e, 1)));
        }
        json_decref(list);
    }
    const char *key;
    json_t *v;
    json_object_foreach(h->offsets, key, v) {
        if (strcmp(json_string_value(json_object_get(v, "connector")), cc->name))
            continue;
        json_t *part = json_object_get(v, "partition"), *value = json_object_get(v, "offset");
        const char *topic = json_string_value(json_object_get(part, "topic"));
        if (!topic)
            continue;
        gsync_part_t *gp = part_add(&ps, topic, (int32_t)json_integer_value(json_object_get(part, "partition")));
        json_t *off = json_object_get(value, "offset");
        gp->copied = json_is_integer(off) ? json_integer_value(off) : -1;
        if (omap_from_json(&gp->map, value))
            FLOG(WARN, WORKER, "connector %s: the offset map stored for %s is malformed", cc->name, key);
    }
    json_decref(ps.seen);
    *n_out = ps.n;
    return ps.parts ? ps.parts : calloc(1, sizeof *ps.parts);
}

typedef struct gjob_req {
    herder_cb cb;
    void *arg;
} gjob_req_t;

static void on_group_done(void *arg, json_t *report, const ferr_t *err)
{
    gjob_req_t *gr = arg;
    herder_result_t res = {0};
    if (report) {
        res.status = 200;
        res.body = report;
    } else {
        res.err = *err;
    }
    finish(gr->cb, gr->arg, &res);
    free(gr);
}

void herder_group(herder_t *h, const char *name, const char *group, int commit, herder_cb cb, void *arg)
{
    if (commit && !leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc || !cc->config)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Connector %s not found", name);
    if (!gsync_group_name_ok(group))
        return reply_err(cb, arg, FERR_INVALID, "Invalid consumer group name");
    int n;
    gsync_part_t *parts = group_parts(h, cc, &n);
    gjob_req_t *gr = malloc(sizeof *gr);
    gr->cb = cb;
    gr->arg = arg;
    gsync_submit(h->gsync, name, group, cc->config, parts, n, commit, on_group_done, gr);
}

ferr_code_t herder_groups(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc || !cc->config)
        return ferr_set(err, FERR_NOT_FOUND, "Connector %s not found", name);
    json_t *groups = repl_groups(cc->config);
    json_int_t interval = repl_group_interval_ms(cc->config);
    const char *rx = json_string_value(json_object_get(cc->config, "groups.regex"));
    *out = json_pack("{s:o,s:s,s:I}", "groups", groups, "regex", rx ? rx : "", "interval_ms", interval);
    return FERR_OK;
}

/* The leader distributes a session key for signed internal requests (KIP-507) when there is
 * none, when it expired (inter.worker.key.ttl.ms after its creation), or when the worker config
 * asks for another algorithm or size: a random key written to the config topic, which every
 * worker reads. Kafka Connect's rule and record. */
static void rotate_session_key(herder_t *h)
{
    const wconf_t *wc = h->wc;
    if (!wc->isig_enabled || !h->leader || !h->ready || h->closing || h->key_writing)
        return;
    const cstate_session_key_t *sk = cstate_session_key(h->cs);
    size_t bytes = (size_t)wc->isig_key_bits / 8;
    int64_t now = kutil_wall_ms();
    const char *why = !sk->len                                        ? "none distributed yet"
                      : sk->created_ms + wc->isig_key_ttl_ms <= now   ? "the last one expired"
                      : strcmp(sk->algorithm, wc->isig_key_algorithm) ? "another algorithm is configured"
                      : sk->len != bytes                              ? "another key size is configured"
                                                                      : NULL;
    if (!why)
        return;
    unsigned char key[ISIG_KEY_MAX];
    if (isig_new_key(key, bytes)) {
        FLOG(ERROR, WORKER, "cannot generate a session key: no random bytes");
        return;
    }
    json_t *v = cstate_session_key_record(key, bytes, wc->isig_key_algorithm, now);
    char *val = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    store_rec_t rec = {CSTATE_SESSION_KEY, val};
    FLOG(DEBUG, WORKER, "distributing a new session key (%s)", why);
    h->key_writing = 1;
    write_records(h, STORE_CONFIG, &rec, 1, op_new(h, OP_SESSION_KEY, NULL, NULL));
    OPENSSL_cleanse(key, sizeof key);
    free(val);
    json_decref(v);
}

int herder_session_key(const herder_t *h, const unsigned char **key, size_t *len)
{
    const cstate_session_key_t *sk = cstate_session_key(h->cs);
    if (!sk->len)
        return -1;
    *key = sk->key;
    *len = sk->len;
    return 0;
}

/* Every second: the session key, then the leader translates the groups a connector names every
 * sync.group.offsets.interval.ms, one round at a time (nothing new is queued while a job runs). */
static void on_gsync_tick(h2o_timeout_entry_t *entry)
{
    herder_t *h = H2O_STRUCT_FROM_MEMBER(herder_t, gsync_tick, entry);
    h2o_timeout_link(h->loop, &h->gsync_timeout, &h->gsync_tick);
    rotate_session_key(h);
    if (!h->leader || !h->ready || h->closing || gsync_pending(h->gsync) > 0)
        return;
    int64_t now = kutil_now_ms();
    for (size_t ci = 0; ci < cstate_count(h->cs); ci++) {
        cstate_conn_t *cc = cstate_at(h->cs, ci);
        if (!cc->config || cc->target != CSTATE_TARGET_STARTED)
            continue;
        json_t *groups = repl_groups(cc->config);
        json_int_t interval = repl_group_interval_ms(cc->config);
        json_t *last = json_object_get(h->gsync_last, cc->name);
        const char *rx = json_string_value(json_object_get(cc->config, "groups.regex"));
        if ((json_array_size(groups) == 0 && !(rx && *rx)) || interval <= 0 ||
            (last && now - json_integer_value(last) < interval)) {
            json_decref(groups);
            continue;
        }
        json_object_set_new(h->gsync_last, cc->name, json_integer(now));
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g) {
            int n;
            gsync_part_t *parts = group_parts(h, cc, &n);
            gsync_submit(h->gsync, cc->name, json_string_value(g), cc->config, parts, n, 1, NULL, NULL);
        }
        if (rx && *rx) {
            int n;
            gsync_part_t *parts = group_parts(h, cc, &n);
            gsync_submit_regex(h->gsync, cc->name, rx, cc->config, parts, n, 1, NULL, NULL);
        }
        json_decref(groups);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------ */

herder_t *herder_new(const wconf_t *wc, h2o_loop_t *loop, ferr_t *err)
{
    herder_t *h = calloc(1, sizeof *h);
    h->wc = wc;
    h->loop = loop;
    h->cs = cstate_new();
    h->statuses = json_object();
    h->offsets = json_object();
    h->written = json_object();
    h->directory = json_object();
    h->solo = 1;
    h->leader = 1;
    h->rebalanced_ms = -1;
    h->md = mdash_new();
    wconf_worker_id(wc, h->worker_id, sizeof h->worker_id);
    char url[512];
    h->leader_url = strdup(wconf_rest_url(wc, url, sizeof url));
    h->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(h->queue, &h->conn_recv, on_conn_events);
    h2o_multithread_register_receiver(h->queue, &h->task_recv, on_task_events);
    h->copier = copier_new(wc->copy_threads);
    h->setup_pool = tpool_new(4);
    h->scons = scons_reg_new(wc, copier_threads(h->copier));
    h->bpass = bpass_reg_new(wc);
    h->gsync = gsync_new(wc, h->queue);
    h->gsync_last = json_object();
    h2o_timeout_init(loop, &h->gsync_timeout, 1000);
    h->gsync_tick.cb = on_gsync_tick;
    h2o_timeout_link(loop, &h->gsync_timeout, &h->gsync_tick);
    h->store = store_new(wc, loop, on_store, h, err);
    if (!h->store) {
        herder_destroy(h);
        return NULL;
    }
    h->startup_left = STORE__TOPICS;
    for (int t = 0; t < STORE__TOPICS; t++)
        store_sync(h->store, t, op_new(h, OP_STARTUP_SYNC, NULL, NULL)->token);
    return h;
}

void herder_destroy(herder_t *h)
{
    if (!h)
        return;
    h->closing = 1;
    while (h->conns)
        conn_remove(h, h->conns);
    if (h->wprod)
        wprod_set_closing(h->wprod); /* past their graceful timeout, stopping tasks may purge it */
    for (int i = 0; i < h->nwprod_old; i++)
        wprod_set_closing(h->wprod_old[i]);
    for (htask_t *t = h->tasks; t; t = t->next)
        if (t->rt)
            rtask_stop(t->rt);
    while (h->tasks)
        task_remove(h, h->tasks); /* joins: each flushes and stores its offsets */
    wprod_destroy(h->wprod); /* the failed ones went with their last task */
    free(h->wprod_old);
    copier_destroy(h->copier);
    tpool_destroy(h->setup_pool);
    scons_reg_destroy(h->scons);
    bpass_reg_destroy(h->bpass);
    store_destroy(h->store, 5000);
    if (h->gsync) {
        h2o_timeout_unlink(&h->gsync_tick);
        h2o_timeout_dispose(h->loop, &h->gsync_timeout);
        gsync_destroy(h->gsync, h->loop);
    }
    json_decref(h->gsync_last);
    for (hop_t *op = h->ops, *next; op; op = next) {
        next = op->next;
        if (op->kind == OP_REPLY)
            reply_err(op->cb, op->arg, FERR_UNAVAILABLE, "Worker is shutting down");
        free(op->name);
        free(op);
    }
    if (h->queue) {
        evq_drain(h->loop); /* deliver what the stopped threads posted */
        h2o_multithread_unregister_receiver(h->queue, &h->conn_recv);
        h2o_multithread_unregister_receiver(h->queue, &h->task_recv);
        h2o_multithread_destroy_queue(h->queue);
    }
    cstate_destroy(h->cs);
    json_decref(h->statuses);
    json_decref(h->offsets);
    json_decref(h->written);
    json_decref(h->assigned);
    json_decref(h->directory);
    free(h->leader_url);
    mdash_destroy(h->md);
    free(h);
}

int herder_ready(const herder_t *h)
{
    return h->ready;
}

int herder_is_leader(const herder_t *h)
{
    return h->leader;
}

const char *herder_leader_url(const herder_t *h)
{
    return h->leader_url;
}

const char *herder_worker_id(const herder_t *h)
{
    return h->worker_id;
}

int64_t herder_generation(const herder_t *h)
{
    return h->generation;
}

int64_t herder_config_offset(const herder_t *h)
{
    return cstate_offset(h->cs);
}

const char *herder_kafka_cluster_id(herder_t *h)
{
    return store_cluster_id(h->store);
}

void herder_set_leader(herder_t *h, int is_leader, const char *url, int64_t generation)
{
    h->leader = is_leader;
    free(h->leader_url);
    h->leader_url = url ? strdup(url) : NULL;
    if (generation > h->generation)
        h->generation = generation;
    rotate_session_key(h);
}

void herder_set_assignment(herder_t *h, int64_t generation, const assign_list_t *assigned)
{
    h->solo = 0;
    json_t *before = h->assigned;
    h->assigned = json_object();
    for (size_t i = 0; i < assigned->n; i++) {
        char *k = item_key(assigned->items[i].connector, assigned->items[i].task);
        if (assigned->items[i].task >= 0 && !json_object_get(before, k))
            h->offsets_epoch++; /* a new task: offsets read back before now may be stale */
        json_object_set_new(h->assigned, k, json_true());
        free(k);
    }
    json_decref(before);
    if (generation > h->generation)
        h->generation = generation;
    h->rebalances++;
    h->rebalanced_ms = kutil_now_ms();
    reconcile(h);
    notify_change(h);
}

void herder_set_directory(herder_t *h, const char *const *pairs)
{
    json_object_clear(h->directory);
    for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2)
        json_object_set_new(h->directory, pairs[i], json_string(pairs[i + 1]));
}

const char *herder_member_url(const herder_t *h, const char *worker_id)
{
    return worker_id ? json_string_value(json_object_get(h->directory, worker_id)) : NULL;
}

void herder_holding(const herder_t *h, assign_list_t *out)
{
    for (hconn_t *c = h->conns; c; c = c->next)
        assign_list_add(out, c->name, -1);
    for (htask_t *t = h->tasks; t; t = t->next)
        assign_list_add(out, t->name, t->id);
    assign_list_sort(out);
}

void herder_configured(const herder_t *h, assign_list_t *out)
{
    for (size_t i = 0; i < cstate_count(h->cs); i++) {
        cstate_conn_t *cc = cstate_at(h->cs, i);
        /* A stopped connector keeps its instance assigned (its owner reports STOPPED); it has no
         * tasks, since stopping empties its task configs. */
        assign_list_add(out, cc->name, -1);
        if (cc->target == CSTATE_TARGET_STOPPED)
            continue;
        for (int id = 0; id < (int)json_array_size(cc->tasks); id++)
            assign_list_add(out, cc->name, id);
    }
    assign_list_sort(out);
}

void herder_on_task_configs(herder_t *h, void (*fn)(void *, const char *, const char *, const json_t *),
                            void *arg)
{
    h->task_configs_fn = fn;
    h->task_configs_arg = arg;
}

void herder_fence(herder_t *h)
{
    json_decref(h->assigned);
    h->assigned = json_object();
    h->solo = 0;
    h->leader = 0;
    while (h->conns)
        conn_remove(h, h->conns);
    for (htask_t *t = h->tasks; t; t = t->next) {
        t->state = HT_STOPPING;
        if (t->rt)
            rtask_fence(t->rt);
    }
    /* Every task sharing the producer is fenced (none appends any more): drop what they left
     * in it. Tasks started later are unaffected; nothing else uses it. */
    if (h->wprod)
        wprod_purge(h->wprod);
    for (int i = 0; i < h->nwprod_old; i++)
        wprod_purge(h->wprod_old[i]);
    sweep_tasks(h);
    notify_change(h);
}

void herder_on_change(herder_t *h, void (*cb)(void *arg), void *arg)
{
    h->on_change = cb;
    h->on_change_arg = arg;
}

/* ---- reads ---------------------------------------------------------------------------- */

static ferr_code_t not_found(ferr_t *err, const char *name)
{
    return ferr_set(err, FERR_NOT_FOUND, "Connector %s not found", name);
}

static json_t *info_json(const cstate_conn_t *cc)
{
    json_t *tasks = json_array();
    for (size_t i = 0; i < json_array_size(cc->tasks); i++)
        json_array_append_new(tasks, json_pack("{s:s,s:i}", "connector", cc->name, "task", (int)i));
    return json_pack("{s:s,s:O,s:o,s:s}", "name", cc->name, "config", cc->config, "tasks", tasks,
                     "type", "source");
}

ferr_code_t herder_info(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return not_found(err, name);
    *out = info_json(cc);
    return FERR_OK;
}

ferr_code_t herder_config(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return not_found(err, name);
    *out = json_incref(cc->config);
    return FERR_OK;
}

/* Kafka Connect's state entity: trace left out when empty. */
static json_t *state_json(const json_t *rec, int id)
{
    json_t *o = json_object();
    if (id >= 0)
        json_object_set_new(o, "id", json_integer(id));
    json_object_set(o, "state", json_object_get(rec, "state"));
    const char *trace = json_string_value(json_object_get(rec, "trace"));
    json_object_set(o, "worker_id", json_object_get(rec, "worker_id"));
    if (trace && *trace)
        json_object_set_new(o, "trace", json_string(trace));
    return o;
}

ferr_code_t herder_status(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    char *k = fmt("status-connector-%s", name);
    json_t *rec = json_object_get(h->statuses, k);
    free(k);
    if (!cc || !rec)
        return ferr_set(err, FERR_NOT_FOUND, "No status found for connector %s", name);
    json_t *tasks = json_array();
    for (int i = 0; i < (int)json_array_size(cc->tasks); i++) {
        char *tk = fmt("status-task-%s-%d", name, i);
        json_t *tr = json_object_get(h->statuses, tk);
        free(tk);
        if (tr)
            json_array_append_new(tasks, state_json(tr, i));
    }
    *out = json_pack("{s:s,s:o,s:o,s:s}", "name", name, "connector", state_json(rec, -1), "tasks",
                     tasks, "type", "source");
    return FERR_OK;
}

ferr_code_t herder_task_status(herder_t *h, const char *name, int task, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    char *k = fmt("status-task-%s-%d", name, task);
    json_t *rec = json_object_get(h->statuses, k);
    free(k);
    if (!cc || !rec || task >= (int)json_array_size(cc->tasks))
        return ferr_set(err, FERR_NOT_FOUND, "No status found for task %s-%d", name, task);
    *out = state_json(rec, task);
    return FERR_OK;
}

ferr_code_t herder_tasks(herder_t *h, const char *name, int as_map, json_t **out, ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return not_found(err, name);
    json_t *r = as_map ? json_object() : json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(cc->tasks, i, tc) {
        if (as_map) {
            char *k = fmt("%s-%zu", name, i);
            json_object_set(r, k, tc);
            free(k);
        } else {
            json_array_append_new(r, json_pack("{s:{s:s,s:i},s:O}", "id", "connector", name, "task",
                                               (int)i, "config", tc));
        }
    }
    *out = r;
    return FERR_OK;
}

ferr_code_t herder_topics(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    json_t *set = json_object();
    cstate_conn_t *cc = cstate_get(h->cs, name);
    size_t i;
    json_t *tc;
    if (cc)
        json_array_foreach(cc->tasks, i, tc) {
            json_t *parts = repl_parse_partitions(json_string_value(json_object_get(tc, REPL_TASK_PARTITIONS)));
            const char *fmt_ = json_string_value(json_object_get(tc, "topic.rename.format"));
            size_t j;
            json_t *pv;
            json_array_foreach(parts, j, pv) {
                char *target = repl_rename(fmt_ ? fmt_ : "${topic}.replica", json_string_value(json_array_get(pv, 0)));
                json_object_set_new(set, target, json_true());
                free(target);
            }
            json_decref(parts);
        }
    json_t *topics = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(topics, json_string(k));
    json_decref(set);
    *out = json_pack("{s:{s:o}}", name, "topics", topics);
    (void)err;
    return FERR_OK;
}

ferr_code_t herder_offsets(herder_t *h, const char *name, json_t **out, ferr_t *err)
{
    if (!cstate_get(h->cs, name))
        return not_found(err, name);
    json_t *list = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(h->offsets, k, v) {
        if (strcmp(json_string_value(json_object_get(v, "connector")), name))
            continue;
        json_t *value = json_deep_copy(json_object_get(v, "offset"));
        /* ferry's own marks, not the connector's offset */
        json_object_del(value, RTASK_ALTERED_KEY);
        json_object_del(value, OMAP_JSON_KEY);
        json_object_del(value, OMAP_FLOOR_KEY);
        json_array_append_new(list, json_pack("{s:O,s:o}", "partition", json_object_get(v, "partition"),
                                              "offset", value));
    }
    *out = json_pack("{s:o}", "offsets", list);
    return FERR_OK;
}

json_t *herder_list(herder_t *h, int expand_status, int expand_info)
{
    size_t n = cstate_count(h->cs);
    if (!expand_status && !expand_info) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(cstate_at(h->cs, i)->name));
        return a;
    }
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        cstate_conn_t *cc = cstate_at(h->cs, i);
        json_t *e = json_object();
        json_t *st;
        ferr_t err;
        if (expand_status && herder_status(h, cc->name, &st, &err) == FERR_OK)
            json_object_set_new(e, "status", st);
        if (expand_info)
            json_object_set_new(e, "info", info_json(cc));
        json_object_set_new(o, cc->name, e);
    }
    return o;
}

json_t *herder_plugins(int connectors_only)
{
    json_t *a = json_pack("[{s:s,s:s,s:s}]", "class", REPL_CLASS, "type", "source", "version", REPL_VERSION);
    if (!connectors_only) {
        static const char *conv[] = {"org.apache.kafka.connect.converters.ByteArrayConverter"};
        for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++)
            json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "class", conv[i], "type", "converter",
                                               "version", REPL_VERSION));
    }
    return a;
}

ferr_code_t herder_plugin_config(const char *plugin, json_t **out, ferr_t *err)
{
    if (!repl_class_matches(plugin))
        return ferr_set(err, FERR_NOT_FOUND, "Unknown plugin %s.", plugin);
    *out = repl_config_defs();
    return FERR_OK;
}

ferr_code_t herder_validate(const herder_t *h, const char *plugin, const json_t *config, json_t **out,
                            ferr_t *err)
{
    const char *cls = json_string_value(json_object_get(config, "connector.class"));
    if (!cls) {
        char *s = json_dumps(config, JSON_COMPACT);
        ferr_set(err, FERR_INVALID, "Connector config %s contains no connector type", s);
        free(s);
        return FERR_INVALID;
    }
    if (!repl_class_matches(plugin))
        return ferr_set(err, FERR_NOT_FOUND, "Unknown plugin %s.", plugin);
    if (!repl_class_matches(cls))
        return ferr_set(err, FERR_INVALID, "Included connector type %s does not match request type %s",
                        cls, plugin);
    repl_validate(config, h ? h->wc : NULL, out, NULL);
    return FERR_OK;
}

/* ---- loggers -------------------------------------------------------------------------- */

static json_t *logger_json(int mod)
{
    int64_t lm;
    flog_is_explicit(mod, &lm);
    return json_pack("{s:s,s:o}", "level", flog_level_name(flog_get_level(mod)), "last_modified",
                     lm >= 0 ? json_integer(lm) : json_null());
}

json_t *herder_loggers(void)
{
    json_t *o = json_object();
    for (int m = 0; m < FLOG_M__COUNT; m++)
        if (flog_is_explicit(m, NULL))
            json_object_set_new(o, flog_module_logger(m), logger_json(m));
    json_object_set_new(o, "root", logger_json(FLOG_M__COUNT));
    return o;
}

ferr_code_t herder_logger(const char *name, json_t **out, ferr_t *err)
{
    int m = flog_module_find(name);
    if (m < 0)
        return ferr_set(err, FERR_NOT_FOUND, "Logger %s not found.", name);
    *out = logger_json(m);
    return FERR_OK;
}

ferr_code_t herder_set_logger(const char *name, const char *level, json_t **out, ferr_t *err)
{
    int l = flog_level_parse(level);
    if (l < 0)
        return ferr_set(err, FERR_NOT_FOUND, "invalid log level '%s'.", level);
    json_t *names = json_array();
    int64_t now = kutil_wall_ms();
    size_t nl = strlen(name);
    int root = !strcmp(name, "root");
    for (int m = 0; m <= FLOG_M__COUNT; m++) {
        const char *lg = flog_module_logger(m);
        if (root || !strcmp(lg, name) || (!strncmp(lg, name, nl) && lg[nl] == '.')) {
            flog_set_level(m, l, now);
            json_array_append_new(names, json_string(lg));
        }
    }
    *out = names;
    return FERR_OK;
}

/* ---- writes --------------------------------------------------------------------------- */

static int leader_check(herder_t *h, herder_cb cb, void *arg)
{
    if (h->leader && h->ready)
        return 1;
    reply_err(cb, arg, FERR_CONFLICT,
              h->ready ? "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
                       : "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.");
    return 0;
}

static int parse_initial(const char *s, cstate_target_t *t)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "RUNNING"))
        *t = CSTATE_TARGET_STARTED;
    else if (!strcasecmp(s, "PAUSED"))
        *t = CSTATE_TARGET_PAUSED;
    else if (!strcasecmp(s, "STOPPED"))
        *t = CSTATE_TARGET_STOPPED;
    else
        return -2;
    return 0;
}

static hop_t *reply_op(herder_t *h, herder_cb cb, void *arg, int status, const char *name, int info)
{
    hop_t *op = op_new(h, OP_REPLY, cb, arg);
    op->res.status = status;
    op->name = name ? strdup(name) : NULL;
    op->build_info = info;
    return op;
}

void herder_put_connector(herder_t *h, const char *name, const json_t *config, herder_put_t mode,
                          const char *initial_state, herder_cb cb, void *arg)
{
    if (!leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (mode == HERDER_PUT_CREATE && cc)
        return reply_err(cb, arg, FERR_CONFLICT, "Connector %s already exists", name);
    if (!cc && (int)cstate_count(h->cs) >= h->wc->max_connectors)
        return reply_err(cb, arg, FERR_INVALID,
                         "Cannot create connector %s: this group already has %zu connectors, the most "
                         "ferry.max.connectors allows", name, cstate_count(h->cs));
    if (mode == HERDER_PUT_PATCH && !cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Connector %s not found", name);
    cstate_target_t target = CSTATE_TARGET_STARTED;
    int pi = parse_initial(initial_state, &target);
    if (pi == -2)
        return reply_err(cb, arg, FERR_INVALID, "Invalid initial state %s: must be one of RUNNING, PAUSED or STOPPED",
                         initial_state);
    json_t *merged = mode == HERDER_PUT_PATCH ? json_deep_copy(cc->config) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) {
        if (json_is_null(v) && mode == HERDER_PUT_PATCH)
            json_object_del(merged, k);
        else
            json_object_set(merged, k, v);
    }
    if (!json_object_get(merged, "name"))
        json_object_set_new(merged, "name", json_string(name));
    if (!json_object_get(merged, "connector.class")) {
        char *s = json_dumps(merged, JSON_COMPACT | JSON_PRESERVE_ORDER);
        reply_err(cb, arg, FERR_INVALID, "Connector config %s contains no connector type", s);
        free(s);
        json_decref(merged);
        return;
    }
    char *msgs = NULL;
    int nerr = repl_validate(merged, h->wc, NULL, &msgs);
    if (nerr) {
        reply_err(cb, arg, FERR_INVALID,
                  "Connector configuration is invalid and contains the following %d error(s):\n%s"
                  "You can also find the above list of errors at the endpoint "
                  "`/connector-plugins/{connectorType}/config/validate`",
                  nerr, msgs);
        free(msgs);
        json_decref(merged);
        return;
    }
    free(msgs);
    json_t *rec = json_pack("{s:O}", "properties", merged);
    char *val = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *ck = cstate_key_connector(name), *tk = cstate_key_target(name);
    json_t *trec = cstate_target_record(target);
    char *tval = json_dumps(trec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    store_rec_t recs[2];
    size_t n = 0;
    if (!cc && pi == 0)
        recs[n++] = (store_rec_t){tk, tval};
    recs[n++] = (store_rec_t){ck, val};
    int created = !cc;
    hop_t *op = reply_op(h, cb, arg, created ? 201 : 200, name, 1);
    if (created)
        op->res.location = fmt("/connectors/%s", name);
    write_records(h, STORE_CONFIG, recs, n, op);
    free(val);
    free(tval);
    free(ck);
    free(tk);
    json_decref(trec);
    json_decref(rec);
    json_decref(merged);
}

void herder_delete_connector(herder_t *h, const char *name, herder_cb cb, void *arg)
{
    if (!leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Connector %s not found", name);
    int ntasks = (int)json_array_size(cc->tasks);
    char *ck = cstate_key_connector(name), *tk = cstate_key_target(name);
    store_rec_t recs[2] = {{ck, NULL}, {tk, NULL}};
    write_records(h, STORE_CONFIG, recs, 2, reply_op(h, cb, arg, 204, NULL, 0));
    /* Statuses of a deleted connector become tombstones (Kafka Connect's DESTROYED). */
    store_rec_t *srecs = calloc(ntasks + 1, sizeof *srecs);
    char **keys = calloc(ntasks + 1, sizeof(char *));
    keys[0] = fmt("status-connector-%s", name);
    for (int i = 0; i < ntasks; i++)
        keys[i + 1] = fmt("status-task-%s-%d", name, i);
    for (int i = 0; i <= ntasks; i++) {
        srecs[i] = (store_rec_t){keys[i], NULL};
        json_object_del(h->written, keys[i]);
    }
    write_records(h, STORE_STATUS, srecs, ntasks + 1, op_new(h, OP_INTERNAL, NULL, NULL));
    for (int i = 0; i <= ntasks; i++)
        free(keys[i]);
    free(keys);
    free(srecs);
    free(ck);
    free(tk);
}

void herder_set_target(herder_t *h, const char *name, const char *target, herder_cb cb, void *arg)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    int stop = !strcmp(target, "STOPPED");
    if (stop && !leader_check(h, cb, arg))
        return;
    if (!cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, stop ? "Connector %s not found" : "Unknown connector %s", name);
    cstate_target_t t = !strcmp(target, "PAUSED") ? CSTATE_TARGET_PAUSED
                        : stop                    ? CSTATE_TARGET_STOPPED
                                                  : CSTATE_TARGET_STARTED;
    char *tk = cstate_key_target(name), *ck = cstate_key_commit(name);
    json_t *trec = cstate_target_record(t);
    char *tval = json_dumps(trec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    store_rec_t recs[2];
    size_t n = 0;
    if (stop) /* Kafka Connect empties the task configs of a stopped connector */
        recs[n++] = (store_rec_t){ck, "{\"tasks\":0}"};
    recs[n++] = (store_rec_t){tk, tval};
    write_records(h, STORE_CONFIG, recs, n, reply_op(h, cb, arg, stop ? 204 : 202, NULL, 0));
    free(tk);
    free(ck);
    free(tval);
    json_decref(trec);
}

static json_t *status_or_unassigned(herder_t *h, const char *key, int id)
{
    json_t *rec = json_object_get(h->statuses, key);
    if (rec)
        return state_json(rec, id);
    json_t *o = json_pack("{s:s,s:s}", "state", "UNASSIGNED", "worker_id", h->worker_id);
    if (id >= 0)
        json_object_set_new(o, "id", json_integer(id));
    return o;
}

void herder_restart_connector(herder_t *h, const char *name, int include_tasks, int only_failed,
                              herder_cb cb, void *arg)
{
    if (!leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Unknown connector: %s", name);
    int plain = !include_tasks && !only_failed;
    json_t *body = NULL;
    if (!plain) {
        /* The 202 body: what will restart shows RESTARTING, the rest its current state. */
        char *k = fmt("status-connector-%s", name);
        json_t *cs = status_or_unassigned(h, k, -1);
        free(k);
        if (!only_failed || !strcmp(json_string_value(json_object_get(cs, "state")), "FAILED"))
            json_object_set_new(cs, "state", json_string("RESTARTING"));
        json_t *tasks = json_array();
        for (int i = 0; i < (int)json_array_size(cc->tasks); i++) {
            char *tk = fmt("status-task-%s-%d", name, i);
            json_t *ts = status_or_unassigned(h, tk, i);
            free(tk);
            if (include_tasks &&
                (!only_failed || !strcmp(json_string_value(json_object_get(ts, "state")), "FAILED")))
                json_object_set_new(ts, "state", json_string("RESTARTING"));
            json_array_append_new(tasks, ts);
        }
        body = json_pack("{s:s,s:o,s:o,s:s}", "name", name, "connector", cs, "tasks", tasks, "type", "source");
    }
    char *rk = cstate_key_restart(name);
    char *val = fmt("{\"include-tasks\":%s,\"only-failed\":%s}", include_tasks ? "true" : "false",
                    only_failed ? "true" : "false");
    store_rec_t rec = {rk, val};
    hop_t *op = reply_op(h, cb, arg, plain ? 204 : 202, NULL, 0);
    op->res.body = body;
    write_records(h, STORE_CONFIG, &rec, 1, op);
    free(rk);
    free(val);
}

ferr_code_t herder_restart_task(herder_t *h, const char *name, int task, char **owner_url,
                                ferr_t *err)
{
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return ferr_set(err, FERR_NOT_FOUND, "Unknown connector: %s", name);
    if (task < 0 || task >= (int)json_array_size(cc->tasks))
        return ferr_set(err, FERR_NOT_FOUND, "Unknown task: %s-%d", name, task);
    htask_t *t = find_task(h, name, task);
    if (!t) {
        char *k = fmt("status-task-%s-%d", name, task);
        const char *wid = json_string_value(json_object_get(json_object_get(h->statuses, k), "worker_id"));
        free(k);
        /* the owner's URL comes from the group's membership, never from the status record,
         * which anyone who can write the status topic could point elsewhere */
        const char *url = wid && strcmp(wid, h->worker_id) ? herder_member_url(h, wid) : NULL;
        if (owner_url && url)
            *owner_url = strdup(url);
        return ferr_set(err, FERR_CONFLICT,
                        "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
    }
    if (t->state != HT_STOPPING) {
        task_stop(t);
        task_status(h, name, task, "RESTARTING", NULL);
        reconcile(h); /* a failed task's thread is gone already: start it again now */
    }
    return FERR_OK;
}

/* Validates one PATCH entry: {"partition":{"topic":s,"partition":i},"offset":{"offset":i}|null}. */
static int offset_entry_ok(const json_t *e, char *why, size_t len)
{
    json_t *part = json_object_get(e, "partition");
    json_t *off = json_object_get(e, "offset");
    if (!json_is_object(part) || !json_is_string(json_object_get(part, "topic")) ||
        !json_is_integer(json_object_get(part, "partition")) ||
        json_integer_value(json_object_get(part, "partition")) < 0) {
        snprintf(why, len, "each partition must be {\"topic\":<string>,\"partition\":<int >= 0>}");
        return 0;
    }
    if (off && !json_is_null(off) &&
        (!json_is_integer(json_object_get(off, "offset")) || json_integer_value(json_object_get(off, "offset")) < 0)) {
        snprintf(why, len, "each offset must be null or {\"offset\":<int >= 0>}");
        return 0;
    }
    return 1;
}

void herder_alter_offsets(herder_t *h, const char *name, const json_t *body, int reset,
                          herder_cb cb, void *arg)
{
    if (!leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Connector %s not found", name);
    if (cc->target != CSTATE_TARGET_STOPPED || json_array_size(cc->tasks) > 0)
        return reply_err(cb, arg, FERR_INVALID,
                         "Connectors must be in the STOPPED state before their offsets can be modified. "
                         "This can be done for the specified connector by issuing a 'PUT' request to the "
                         "'/connectors/%s/stop' endpoint", name);
    json_t *entries = json_array();
    if (reset) {
        const char *k;
        json_t *v;
        json_object_foreach(h->offsets, k, v) if (!strcmp(json_string_value(json_object_get(v, "connector")), name))
            json_array_append_new(entries, json_pack("{s:O,s:n}", "partition", json_object_get(v, "partition"), "offset"));
    } else {
        json_t *list = json_object_get(body, "offsets");
        if (!json_is_array(list) || json_array_size(list) == 0) {
            json_decref(entries);
            return reply_err(cb, arg, FERR_INVALID, "Partitions / offsets need to be provided in order to modify offsets");
        }
        size_t i;
        json_t *e;
        char why[200];
        json_array_foreach(list, i, e) {
            if (!offset_entry_ok(e, why, sizeof why)) {
                json_decref(entries);
                return reply_err(cb, arg, FERR_INVALID, "Invalid offsets: %s", why);
            }
            json_array_append(entries, e);
        }
    }
    size_t n = json_array_size(entries);
    store_rec_t *recs = calloc(n ? n : 1, sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i), *part = json_object_get(e, "partition");
        json_t *off = json_object_get(e, "offset");
        recs[i].key = rtask_offset_key(name, json_string_value(json_object_get(part, "topic")),
                                       (int)json_integer_value(json_object_get(part, "partition")));
        /* the offset map stays: what was copied before is still where it was */
        json_t *stored = json_object_get(json_object_get(h->offsets, recs[i].key), "offset");
        omap_t map;
        if (omap_from_json(&map, stored))
            map.n = 0;
        recs[i].value = off && !json_is_null(off)
                            ? rtask_offset_value(json_integer_value(json_object_get(off, "offset")), 1, &map)
                            : NULL;
    }
    hop_t *op = reply_op(h, cb, arg, 200, NULL, 0);
    op->res.body = json_pack("{s:s}", "message", reset ? "The offsets for this connector have been reset successfully"
                                                       : "The offsets for this connector have been altered successfully");
    write_records(h, STORE_OFFSET, recs, n, op);
    for (size_t i = 0; i < n; i++) {
        free((char *)recs[i].key);
        free((char *)recs[i].value);
    }
    free(recs);
    json_decref(entries);
}

void herder_put_task_configs(herder_t *h, const char *name, const json_t *configs, herder_cb cb,
                             void *arg)
{
    if (!leader_check(h, cb, arg))
        return;
    cstate_conn_t *cc = cstate_get(h->cs, name);
    if (!cc)
        return reply_err(cb, arg, FERR_NOT_FOUND, "Connector %s not found", name);
    size_t n = json_array_size(configs);
    if (cc->target == CSTATE_TARGET_STOPPED && n > 0)
        return reply_err(cb, arg, FERR_INVALID, "Cannot submit non-empty set of task configs for stopped connector %s", name);
    /* What a follower's connector instance would generate: anything else is refused, so that
     * nothing stored can copy a topic the connector does not select, or start more tasks. */
    char why[2048];
    if (repl_check_task_configs(cc->config, configs, h->wc, why, sizeof why)) {
        FLOG(WARN, WORKER, "connector %s: refusing submitted task configs: %s", name, why);
        return reply_err(cb, arg, FERR_INVALID, "Invalid task configs for connector %s: %s", name, why);
    }
    store_rec_t *recs = calloc(n + 1, sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_pack("{s:O}", "properties", json_array_get(configs, i));
        recs[i].key = cstate_key_task(name, (int)i);
        recs[i].value = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(rec);
    }
    recs[n].key = cstate_key_commit(name);
    recs[n].value = fmt("{\"tasks\":%zu}", n);
    hop_t *op = cb ? reply_op(h, cb, arg, 204, NULL, 0) : op_new(h, OP_INTERNAL, NULL, NULL);
    write_records(h, STORE_CONFIG, recs, n + 1, op);
    FLOG(INFO, WORKER, "connector %s: wrote %zu task config(s)", name, n);
    for (size_t i = 0; i <= n; i++) {
        free((char *)recs[i].key);
        free((char *)recs[i].value);
    }
    free(recs);
}

void herder_set_logger_cluster(herder_t *h, const char *name, const char *level, herder_cb cb,
                               void *arg)
{
    if (flog_level_parse(level) < 0)
        return reply_err(cb, arg, FERR_NOT_FOUND, "invalid log level '%s'.", level);
    if (!leader_check(h, cb, arg))
        return;
    char *k = fmt("logger-cluster-%s", name);
    json_t *v = json_pack("{s:s}", "level", level);
    char *s = json_dumps(v, JSON_COMPACT);
    store_rec_t rec = {k, s};
    write_records(h, STORE_CONFIG, &rec, 1, reply_op(h, cb, arg, 204, NULL, 0));
    free(k);
    free(s);
    json_decref(v);
}

/* ---- metrics (GET /metrics) ------------------------------------------------------------ */

typedef struct {
    metrics_t *m;
    const char *family, *connector, *task;
    int which; /* 0 records, 1 bytes, 2 lag, 3 next offset, 4 forwarded */
} part_emit_t;

static void emit_part(void *arg, const rtask_part_stats_t *ps)
{
    part_emit_t *pe = arg;
    char part[16];
    snprintf(part, sizeof part, "%d", ps->partition);
    const char *labels[] = {"connector", pe->connector, "task", pe->task, "topic", ps->topic,
                            "partition", part, NULL};
    double v;
    switch (pe->which) {
    case 0: v = (double)ps->records; break;
    case 1: v = (double)ps->bytes; break;
    case 2:
        if (ps->high_watermark < 0 || ps->next_offset < 0)
            return; /* not known yet */
        v = (double)(ps->high_watermark > ps->next_offset ? ps->high_watermark - ps->next_offset : 0);
        break;
    case 3: v = (double)ps->next_offset; break;
    default: v = ps->forwarded; break;
    }
    metrics_sample(pe->m, pe->family, labels, v);
}

static const char *status_state(herder_t *h, const char *key)
{
    return json_string_value(json_object_get(json_object_get(h->statuses, key), "state"));
}

/* State metrics and the names dashboards already use (mdash.h), for what runs here; a state is
 * what GET /connectors/{name}/status shows (none: UNASSIGNED). */
static void dash_metrics(herder_t *h, metrics_t *m)
{
    mdash_view_t v;
    mdash_view_init(&v);
    v.now_ms = kutil_now_ms();
    v.wall_ms = kutil_wall_ms();
    v.generation = h->generation;
    v.rebalances = h->rebalances;
    v.rebalanced_ms = h->rebalanced_ms;
    v.leader_url = h->leader_url;
    for (hconn_t *c = h->conns; c; c = c->next) {
        char *k = fmt("status-connector-%s", c->name);
        mdash_view_conn(&v, c->name, status_state(h, k), !owned(h, c->name, -1));
        free(k);
        v.assigned_connectors += h->solo;
    }
    for (htask_t *t = h->tasks; t; t = t->next) {
        char *k = fmt("status-task-%s-%d", t->name, t->id);
        mdash_task_t *mt = mdash_view_task(&v, t->name, t->id, status_state(h, k), !owned(h, t->name, t->id),
                                           t->instance);
        free(k);
        if (t->rt)
            mdash_task_read(mt, t->rt);
        v.assigned_tasks += h->solo;
    }
    const char *key;
    json_t *val;
    json_object_foreach(h->assigned, key, val) /* item_key: the task, then the name; -1: the connector */
        *(atoi(key) < 0 ? &v.assigned_connectors : &v.assigned_tasks) += 1;
    mdash_write(h->md, &v, m);
    mdash_view_dispose(&v);
}

void herder_metrics(herder_t *h, metrics_t *m)
{
    static const struct { const char *name, *type, *help; } part_families[] = {
        {"ferry_partition_records_total", "counter", "Records copied and acknowledged by the destination."},
        {"ferry_partition_bytes_total", "counter", "Key and value bytes copied and acknowledged."},
        {"ferry_partition_lag_records", "gauge",
         "Source high watermark minus the next offset to copy (as last seen by the task's consumer)."},
        {"ferry_partition_next_offset", "gauge", "Next source offset to copy."},
        {"ferry_partition_forwarded", "gauge",
         "1 while the partition's source record batches are forwarded as they are, 0 record by record."},
    };
    for (int f = 0; f < 5; f++) {
        metrics_family(m, part_families[f].name, part_families[f].type, part_families[f].help);
        for (htask_t *t = h->tasks; t; t = t->next) {
            if (!t->rt)
                continue;
            char id[16];
            snprintf(id, sizeof id, "%d", t->id);
            part_emit_t pe = {m, part_families[f].name, t->name, id, f};
            rtask_foreach_partition(t->rt, emit_part, &pe);
        }
    }
    static const struct { const char *name, *help; } task_counters[] = {
        {"ferry_task_errors_total", "Source read errors and failed deliveries of the task."},
        {"ferry_task_send_retries_total", "Produce requests the destination producer retried."},
        {"ferry_task_offset_flushes_total", "Offset records (or transactions) the task stored."},
        {"ferry_task_batch_records_total",
         "Records copied in source record batches forwarded as they are (batch passthrough)."},
        {"ferry_task_batches_total", "Source record batches forwarded as they are."},
        {"ferry_task_batch_fallbacks_total",
         "Partitions the batch passthrough engine handed to the record-by-record path."},
    };
    enum { NCOUNTERS = sizeof task_counters / sizeof task_counters[0] };
    for (int f = 0; f <= NCOUNTERS; f++) {
        if (f < NCOUNTERS)
            metrics_family(m, task_counters[f].name, "counter", task_counters[f].help);
        else
            metrics_family(m, "ferry_task_replication_latency_seconds", "histogram",
                           "Time from a record's source timestamp until the destination acknowledged "
                           "its copy.");
        for (htask_t *t = h->tasks; t; t = t->next) {
            if (!t->rt)
                continue;
            rtask_stats_t st;
            rtask_get_stats(t->rt, &st);
            char id[16];
            snprintf(id, sizeof id, "%d", t->id);
            const char *labels[] = {"connector", t->name, "task", id, NULL};
            const uint64_t v[NCOUNTERS] = {st.errors, st.retries, st.offsets_flushed, st.batch_records, st.batches,
                                           st.fallbacks};
            if (f == NCOUNTERS)
                metrics_histogram(m, "ferry_task_replication_latency_seconds", labels, rtask_latency_bounds,
                                  st.latency, RTASK_LATENCY_BUCKETS, st.latency_sum_s);
            else
                metrics_sample(m, task_counters[f].name, labels, (double)v[f]);
        }
    }
    int tasks = 0, conns = 0;
    for (htask_t *t = h->tasks; t; t = t->next)
        tasks += t->state == HT_RUNNING;
    for (hconn_t *c = h->conns; c; c = c->next)
        conns++;
    metrics_family(m, "ferry_worker_send_retries_total", "counter",
                   "Produce requests the worker's shared destination producer retried.");
    metrics_sample(m, "ferry_worker_send_retries_total", NULL, h->wprod ? (double)wprod_retries(h->wprod) : 0);
    metrics_family(m, "ferry_worker_leader", "gauge", "1 if this worker leads its group.");
    metrics_sample(m, "ferry_worker_leader", NULL, herder_is_leader(h));
    metrics_family(m, "ferry_worker_generation", "gauge", "Highest group generation this worker has seen.");
    metrics_sample(m, "ferry_worker_generation", NULL, (double)h->generation);
    metrics_family(m, "ferry_worker_rebalances_total", "counter", "Assignments this worker applied.");
    metrics_sample(m, "ferry_worker_rebalances_total", NULL, (double)h->rebalances);
    metrics_family(m, "ferry_worker_assigned_tasks", "gauge", "Tasks running on this worker.");
    metrics_sample(m, "ferry_worker_assigned_tasks", NULL, tasks);
    metrics_family(m, "ferry_worker_assigned_connectors", "gauge", "Connector instances on this worker.");
    metrics_sample(m, "ferry_worker_assigned_connectors", NULL, conns);
    dash_metrics(h, m);
}
