/* store: storage-topic reader/writer thread. See store.h.
 *
 * Positions: for every partition of every storage topic the thread tracks `pos`, the
 * offset of the next record it will hand over (updated from records and partition-EOF
 * events). A sync captures the high watermarks at the time it starts; it completes when
 * pos >= watermark for every partition, and since events are posted in order, the loop
 * has applied every covered record before it sees the DONE. */
#include "worker/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/wclient.h"

typedef enum { OP_WRITE = 1, OP_SYNC } op_type_t;

typedef struct op {
    struct op *next;
    op_type_t type;
    store_topic_t topic;
    int sync;
    uint64_t token;
    size_t n;
    char **keys, **values;
    /* store-thread state */
    size_t acked, expect; /* delivery reports seen / awaited */
    ferr_code_t err;
    char errmsg[256];
    int64_t *targets; /* per partition, for syncs */
} op_t;

struct store {
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    store_cb_t cb;
    void *cb_arg;
    char *topics[STORE__TOPICS];
    int parts[STORE__TOPICS];
    int64_t *pos[STORE__TOPICS];
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *ptopics[STORE__TOPICS];
    pthread_t thread;
    pthread_mutex_t lock;
    op_t *ops_head, **ops_tail; /* guarded by lock */
    atomic_int running;
    atomic_int closing; /* set by store_destroy: events are dropped, not posted */
    char *cluster_id;   /* read once at start, immutable after */
    op_t *syncs;   /* store thread: waiting syncs */
    op_t *writes;  /* store thread: writes in flight (singly linked, any order) */
};

/* ---- loop thread side ---------------------------------------------------------------- */

static void on_messages(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    store_t *st = H2O_STRUCT_FROM_MEMBER(store_t, receiver, recv);
    while (!h2o_linklist_is_empty(messages)) {
        store_ev_t *ev = H2O_STRUCT_FROM_MEMBER(store_ev_t, super.link, messages->next);
        h2o_linklist_unlink(&ev->super.link);
        st->cb(st->cb_arg, ev);
        free(ev->key);
        free(ev->value);
        free(ev);
    }
}

static void push_op(store_t *st, op_t *op)
{
    pthread_mutex_lock(&st->lock);
    *st->ops_tail = op;
    st->ops_tail = &op->next;
    pthread_mutex_unlock(&st->lock);
}

void store_write(store_t *st, store_topic_t t, const store_rec_t *recs, size_t n, int sync,
                 uint64_t token)
{
    op_t *op = calloc(1, sizeof *op);
    op->type = OP_WRITE;
    op->topic = t;
    op->sync = sync;
    op->token = token;
    op->n = n;
    op->keys = calloc(n ? n : 1, sizeof(char *));
    op->values = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        op->keys[i] = strdup(recs[i].key);
        op->values[i] = recs[i].value ? strdup(recs[i].value) : NULL;
    }
    push_op(st, op);
}

void store_sync(store_t *st, store_topic_t t, uint64_t token)
{
    op_t *op = calloc(1, sizeof *op);
    op->type = OP_SYNC;
    op->topic = t;
    op->token = token;
    push_op(st, op);
}

const char *store_cluster_id(const store_t *st)
{
    return st->cluster_id ? st->cluster_id : "";
}

int store_partitions(const store_t *st, store_topic_t t)
{
    return st->parts[t];
}

const char *store_topic_name(const store_t *st, store_topic_t t)
{
    return st->topics[t];
}

/* ---- store thread side --------------------------------------------------------------- */

static void op_free(op_t *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free(op->keys[i]);
        free(op->values[i]);
    }
    free(op->keys);
    free(op->values);
    free(op->targets);
    free(op);
}

static void post(store_t *st, store_ev_t *ev)
{
    if (atomic_load(&st->closing)) { /* the loop no longer listens */
        free(ev->key);
        free(ev->value);
        free(ev);
        return;
    }
    h2o_multithread_send_message(&st->receiver, &ev->super);
}

static void post_done(store_t *st, op_t *op)
{
    store_ev_t *ev = calloc(1, sizeof *ev);
    ev->type = STORE_EV_DONE;
    ev->topic = op->topic;
    ev->token = op->token;
    ev->err = op->err;
    memcpy(ev->errmsg, op->errmsg, sizeof ev->errmsg);
    post(st, ev);
    op_free(op);
}

/* Captures the high watermarks of the op's topic; the op then waits on st->syncs. */
static void start_sync(store_t *st, op_t *op)
{
    store_topic_t t = op->topic;
    op->targets = calloc(st->parts[t], sizeof(int64_t));
    for (int p = 0; p < st->parts[t]; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(st->consumer, st->topics[t], p, &lo, &hi, 10000);
        if (e) {
            op->err = FERR_KAFKA;
            snprintf(op->errmsg, sizeof op->errmsg, "reading %s[%d] to the end failed: %s",
                     st->topics[t], p, rd_kafka_err2str(e));
            post_done(st, op);
            return;
        }
        op->targets[p] = hi;
        FLOG(DEBUG, STORE, "sync %llu: %s[%d] high watermark %lld, read up to %lld",
             (unsigned long long)op->token, st->topics[t], p, (long long)hi, (long long)st->pos[t][p]);
    }
    op->next = st->syncs;
    st->syncs = op;
}

static void check_syncs(store_t *st)
{
    op_t **pp = &st->syncs;
    while (*pp) {
        op_t *op = *pp;
        int ready = 1;
        for (int p = 0; p < st->parts[op->topic] && ready; p++)
            ready = st->pos[op->topic][p] >= op->targets[p];
        if (ready) {
            FLOG(DEBUG, STORE, "sync %llu of %s done", (unsigned long long)op->token, st->topics[op->topic]);
            *pp = op->next;
            post_done(st, op);
        } else {
            pp = &op->next;
        }
    }
}

static void write_finished(store_t *st, op_t *op)
{
    op_t **pp = &st->writes;
    while (*pp && *pp != op)
        pp = &(*pp)->next;
    if (*pp)
        *pp = op->next;
    if (op->sync && !op->err)
        start_sync(st, op);
    else
        post_done(st, op);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    store_t *st = opaque;
    op_t *op = m->_private;
    if (m->err && !op->err) {
        op->err = FERR_KAFKA;
        snprintf(op->errmsg, sizeof op->errmsg, "writing to %s failed: %s",
                 st->topics[op->topic], rd_kafka_err2str(m->err));
    }
    if (++op->acked == op->expect)
        write_finished(st, op);
}

static void start_write(store_t *st, op_t *op)
{
    op->next = st->writes;
    st->writes = op;
    op->expect = op->n;
    if (op->n == 0) {
        write_finished(st, op);
        return;
    }
    for (size_t i = 0; i < op->n; i++) {
        const char *v = op->values[i];
        rd_kafka_resp_err_t e;
        for (;;) {
            e = rd_kafka_producev(st->producer, RD_KAFKA_V_RKT(st->ptopics[op->topic]),
                                  RD_KAFKA_V_KEY(op->keys[i], strlen(op->keys[i])),
                                  RD_KAFKA_V_VALUE((void *)v, v ? strlen(v) : 0),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(st->producer, 10);
        }
        if (e) {
            /* Only the i records already handed over will report; finish when they have. */
            if (!op->err) {
                op->err = FERR_KAFKA;
                snprintf(op->errmsg, sizeof op->errmsg, "writing to %s failed: %s",
                         st->topics[op->topic], rd_kafka_err2str(e));
            }
            op->expect = i;
            if (op->acked == i)
                write_finished(st, op);
            return;
        }
    }
}

static void take_ops(store_t *st)
{
    pthread_mutex_lock(&st->lock);
    op_t *op = st->ops_head;
    st->ops_head = NULL;
    st->ops_tail = &st->ops_head;
    pthread_mutex_unlock(&st->lock);
    while (op) {
        op_t *next = op->next;
        op->next = NULL;
        if (op->type == OP_WRITE)
            start_write(st, op);
        else
            start_sync(st, op);
        op = next;
    }
}

static int topic_index(store_t *st, const char *name)
{
    for (int t = 0; t < STORE__TOPICS; t++)
        if (strcmp(st->topics[t], name) == 0)
            return t;
    return -1;
}

static void handle_message(store_t *st, rd_kafka_message_t *m)
{
    int t = m->rkt ? topic_index(st, rd_kafka_topic_name(m->rkt)) : -1;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (t >= 0 && m->partition < st->parts[t] && m->offset > st->pos[t][m->partition])
            st->pos[t][m->partition] = m->offset;
        return;
    }
    if (m->err) {
        FLOG(WARN, STORE, "reading storage topics: %s", rd_kafka_message_errstr(m));
        return;
    }
    if (t < 0 || m->partition >= st->parts[t])
        return;
    st->pos[t][m->partition] = m->offset + 1;
    store_ev_t *ev = calloc(1, sizeof *ev);
    ev->type = STORE_EV_RECORD;
    ev->topic = t;
    ev->partition = m->partition;
    ev->offset = m->offset;
    ev->timestamp = rd_kafka_message_timestamp(m, NULL);
    ev->key = m->key ? strndup(m->key, m->key_len) : strdup("");
    if (m->payload) {
        ev->value = malloc(m->len + 1);
        memcpy(ev->value, m->payload, m->len);
        ev->value[m->len] = '\0';
        ev->value_len = m->len;
    }
    post(st, ev);
}

static void *store_main(void *arg)
{
    store_t *st = arg;
    while (atomic_load(&st->running)) {
        take_ops(st);
        rd_kafka_poll(st->producer, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->consumer, 10);
        while (m) {
            handle_message(st, m);
            rd_kafka_message_destroy(m);
            m = rd_kafka_consumer_poll(st->consumer, 0);
            if (m && !m->err)
                continue;
            if (m) {
                handle_message(st, m);
                rd_kafka_message_destroy(m);
                m = NULL;
            }
        }
        check_syncs(st);
    }
    return NULL;
}

/* ---- setup --------------------------------------------------------------------------- */

/* The storage producer and reader, from the confs start-up has already checked (wclient.h). */
static ferr_code_t make_clients(store_t *st, const wconf_t *wc, ferr_t *err)
{
    char e[512];
    rd_kafka_conf_t *pc = wclient_conf(wc, WCLIENT_STORE_PRODUCER, err);
    if (!pc)
        return err->code;
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_conf_set_opaque(pc, st);
    st->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!st->producer)
        return ferr_set(err, FERR_KAFKA, "cannot create the storage producer: %s", e);

    rd_kafka_conf_t *cc = wclient_conf(wc, WCLIENT_STORE_READER, err);
    if (!cc)
        return err->code;
    st->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!st->consumer)
        return ferr_set(err, FERR_KAFKA, "cannot create the storage reader: %s", e);
    for (int t = 0; t < STORE__TOPICS; t++)
        st->ptopics[t] = rd_kafka_topic_new(st->producer, st->topics[t], NULL);
    return FERR_OK;
}

static const char *topic_key(store_topic_t t)
{
    static const char *k[] = {"config.storage.topic", "offset.storage.topic",
                              "status.storage.topic"};
    return k[t];
}

/* Makes sure a storage topic exists: admin CreateTopics first; if the cluster refuses, say so and
 * fall back to broker auto-creation (a metadata request for that topic by a producer). */
static ferr_code_t ensure_topic(store_t *st, store_topic_t t, int parts, int rf, ferr_t *err)
{
    static const char *const compact[] = {"cleanup.policy", "compact", NULL};
    int n = kutil_partition_count(st->consumer, st->topics[t], 10000, err);
    if (n < 0)
        return err->code;
    if (n == 0) {
        ferr_t cerr = {0};
        if (kutil_create_topic(st->producer, st->topics[t], parts, rf, compact, 10000, &cerr)) {
            FLOG(WARN, STORE,
                 "could not create %s '%s' (%s); relying on broker auto-creation, which may not "
                 "give it the intended partition count or compaction",
                 topic_key(t), st->topics[t], cerr.msg);
            const struct rd_kafka_metadata *md;
            if (!rd_kafka_metadata(st->producer, 0, st->ptopics[t], &md, 5000))
                rd_kafka_metadata_destroy(md);
        } else {
            FLOG(INFO, STORE, "created %s '%s' with %d partition(s)", topic_key(t),
                 st->topics[t], parts);
        }
        for (int i = 0; i < 50 && n <= 0; i++) {
            n = kutil_partition_count(st->consumer, st->topics[t], 10000, err);
            if (n <= 0)
                usleep(100 * 1000);
        }
        if (n <= 0)
            return ferr_set(err, FERR_KAFKA, "storage topic '%s' (%s) does not exist and could not be created",
                            st->topics[t], topic_key(t));
    }
    if (t == STORE_CONFIG && n != 1)
        return ferr_set(err, FERR_INVALID,
                        "Topic '%s' supplied via the 'config.storage.topic' property is required "
                        "to have a single partition in order to guarantee consistency of connector "
                        "configurations, but found %d partitions.",
                        st->topics[t], n);
    st->parts[t] = n;
    return FERR_OK;
}

static ferr_code_t assign_all(store_t *st, ferr_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(32);
    for (int t = 0; t < STORE__TOPICS; t++) {
        st->pos[t] = calloc(st->parts[t], sizeof(int64_t));
        for (int p = 0; p < st->parts[t]; p++)
            rd_kafka_topic_partition_list_add(l, st->topics[t], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(st->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return ferr_set(err, FERR_KAFKA, "cannot assign storage partitions: %s", rd_kafka_err2str(e));
    return FERR_OK;
}

store_t *store_new(const wconf_t *wc, h2o_loop_t *loop, store_cb_t cb, void *arg, ferr_t *err)
{
    store_t *st = calloc(1, sizeof *st);
    st->cb = cb;
    st->cb_arg = arg;
    st->topics[STORE_CONFIG] = strdup(wc->config_topic);
    st->topics[STORE_OFFSET] = strdup(wc->offset_topic);
    st->topics[STORE_STATUS] = strdup(wc->status_topic);
    st->ops_tail = &st->ops_head;
    pthread_mutex_init(&st->lock, NULL);
    ferr_code_t rc = make_clients(st, wc, err);
    if (rc == FERR_INVALID) { /* a client setting, named in the message */
        store_destroy(st, 0);
        return NULL;
    }
    if (rc || ensure_topic(st, STORE_CONFIG, 1, wc->config_rf, err) ||
        ensure_topic(st, STORE_OFFSET, wc->offset_partitions, wc->offset_rf, err) ||
        ensure_topic(st, STORE_STATUS, wc->status_partitions, wc->status_rf, err) ||
        assign_all(st, err)) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        ferr_set(err, err->code, "cannot use the storage topics on bootstrap.servers=%s: %s",
                 wc->bootstrap_servers, why);
        store_destroy(st, 0);
        return NULL;
    }
    st->cluster_id = rd_kafka_clusterid(st->producer, 5000);
    st->loop = loop;
    st->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(st->queue, &st->receiver, on_messages);
    atomic_store(&st->running, 1);
    pthread_create(&st->thread, NULL, store_main, st);
    return st;
}

void store_destroy(store_t *st, int timeout_ms)
{
    if (!st)
        return;
    if (atomic_exchange(&st->running, 0))
        pthread_join(st->thread, NULL);
    atomic_store(&st->closing, 1);
    if (st->producer) {
        rd_kafka_flush(st->producer, timeout_ms);
        for (int t = 0; t < STORE__TOPICS; t++)
            if (st->ptopics[t])
                rd_kafka_topic_destroy(st->ptopics[t]);
        rd_kafka_purge(st->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(st->producer, 0);
        rd_kafka_destroy(st->producer);
    }
    if (st->consumer) {
        rd_kafka_consumer_close(st->consumer);
        rd_kafka_destroy(st->consumer);
    }
    /* Ops never started or still waiting: free them without events (the loop is going away). */
    for (op_t *lists[] = {st->ops_head, st->syncs, st->writes}, **l = lists; l < lists + 3; l++)
        for (op_t *op = *l, *next; op; op = next) {
            next = op->next;
            op_free(op);
        }
    if (st->queue) {
        evq_drain(st->loop); /* deliver what the thread posted before it stopped */
        h2o_multithread_unregister_receiver(st->queue, &st->receiver);
        h2o_multithread_destroy_queue(st->queue);
    }
    for (int t = 0; t < STORE__TOPICS; t++) {
        free(st->topics[t]);
        free(st->pos[t]);
    }
    pthread_mutex_destroy(&st->lock);
    if (st->cluster_id)
        rd_kafka_mem_free(NULL, st->cluster_id);
    free(st);
}
