/* scons: shared source consumers. See scons.h. */
#include "worker/scons.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/mbudget.h"

#define LEADERS_REFRESH_MS 10000 /* how often the map of partition leaders is read again */

/* One partition of the assignment: its own queue, forwarded to a copy thread's. */
typedef struct spart {
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *q;
    int paused;
    int64_t hwm; /* while paused: the last queried high watermark, -1 before the first */
} spart_t;

struct scons {
    scons_reg_t *reg;
    char *key;
    int refs;              /* loop thread only */
    json_t *reserved;      /* loop thread only: "topic\tpartition" of the partitions its tasks read */
    rd_kafka_t *rk;
    long long queue_kbytes;
    int n;                 /* consumer number, for client ids and logs */
    pthread_mutex_t lock;  /* parts, wake, stop */
    pthread_cond_t cond;
    spart_t *parts;
    size_t nparts, cap;
    int assigned_changed;
    int wake, stop;
    pthread_t thread;
    struct scons *next;    /* in the registry (loop thread) */
};

struct scons_reg {
    const wconf_t *wc;
    int queues;
    int next_n;
    scons_t *list;
};

scons_reg_t *scons_reg_new(const wconf_t *wc, int queues)
{
    scons_reg_t *reg = calloc(1, sizeof *reg);
    if (!reg)
        abort();
    reg->wc = wc;
    reg->queues = queues < 1 ? 1 : queues;
    return reg;
}

void scons_reg_destroy(scons_reg_t *reg)
{
    if (!reg)
        return;
    if (reg->list)
        FLOG(ERROR, WORKER, "shared consumer %s still in use at shutdown", reg->list->key);
    free(reg);
}

/* The client settings of a connector's source consumer, as one canonical string: the
 * connector's src.kafka.* then src.consumer.* keys (the later wins), sorted. Tasks whose
 * connectors give the same string share a consumer. */
static char *settings_key(const json_t *config)
{
    json_t *eff = json_object();
    static const char *const layers[] = {"src.kafka.", "src.consumer."};
    for (int l = 0; l < 2; l++) {
        size_t pl = strlen(layers[l]);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)config, k, v) if (!strncmp(k, layers[l], pl) && k[pl] && json_is_string(v) &&
                                                        strcmp(k, "src.kafka.max.poll.records"))
            json_object_set(eff, k + pl, v);
    }
    char *s = json_dumps(eff, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(eff);
    return s;
}

/* ---- the consumer's own thread: fetch wake-ups and its queue ------------------------- */

typedef struct leader {
    int32_t broker;
    char *topic;
    int32_t partition;
} leader_t;

static void leaders_free(leader_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i].topic);
    free(l);
}

/* One assigned partition per leader broker, from the metadata of the topics in use. */
static leader_t *read_leaders(scons_t *s, size_t *n_out)
{
    *n_out = 0;
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(s->rk, 0, NULL, &md, 5000))
        return NULL;
    leader_t *out = NULL;
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nparts; i++) {
        const spart_t *p = &s->parts[i];
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, p->topic))
                continue;
            for (int k = 0; k < md->topics[t].partition_cnt; k++) {
                const struct rd_kafka_metadata_partition *mp = &md->topics[t].partitions[k];
                if (mp->id != p->partition || mp->leader < 0)
                    continue;
                size_t j;
                for (j = 0; j < n && out[j].broker != mp->leader; j++)
                    ;
                if (j == n) {
                    out = realloc(out, (n + 1) * sizeof *out);
                    out[n++] = (leader_t){mp->leader, strdup(p->topic), p->partition};
                }
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    rd_kafka_metadata_destroy(md);
    *n_out = n;
    return out;
}

/* Errors and events on the consumer's own queue (not tied to a forwarded partition). */
static void drain_own_queue(scons_t *s)
{
    rd_kafka_message_t *m;
    while ((m = rd_kafka_consumer_poll(s->rk, 0))) {
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            FLOG(WARN, TASK, "source consumer %d: %s", s->n, rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
}

/* The high watermarks of paused partitions (nothing fetches them), for the lag metric. */
static void query_paused_hwms(scons_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = 0;
    char **topics = NULL;
    int32_t *ps = NULL;
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].paused) {
            topics = realloc(topics, (n + 1) * sizeof *topics);
            ps = realloc(ps, (n + 1) * sizeof *ps);
            topics[n] = strdup(s->parts[i].topic);
            ps[n++] = s->parts[i].partition;
        }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(s->rk, topics[i], ps[i], &lo, &hi, 1000) == 0) {
            pthread_mutex_lock(&s->lock);
            for (size_t j = 0; j < s->nparts; j++)
                if (s->parts[j].partition == ps[i] && !strcmp(s->parts[j].topic, topics[i]))
                    s->parts[j].hwm = hi;
            pthread_mutex_unlock(&s->lock);
        }
        free(topics[i]);
    }
    free(topics);
    free(ps);
}

static void *scons_main(void *arg)
{
    scons_t *s = arg;
    leader_t *leaders = NULL;
    size_t nleaders = 0;
    int64_t leaders_at = 0, next_hwm = 0;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        int wake = s->wake, changed = s->assigned_changed;
        s->wake = s->assigned_changed = 0;
        pthread_mutex_unlock(&s->lock);
        drain_own_queue(s);
        int64_t now = kutil_now_ms();
        if (wake && (changed || !leaders || now - leaders_at >= LEADERS_REFRESH_MS)) {
            leaders_free(leaders, nleaders);
            leaders = read_leaders(s, &nleaders);
            leaders_at = now;
        }
        /* A ListOffsets to each leader: served by that broker thread, which then decides again
         * which of its partitions to fetch. */
        for (size_t i = 0; wake && i < nleaders; i++) {
            int64_t lo, hi;
            rd_kafka_query_watermark_offsets(s->rk, leaders[i].topic, leaders[i].partition, &lo, &hi, 1000);
        }
        if (now >= next_hwm) {
            query_paused_hwms(s);
            next_hwm = now + 1000;
        }
        pthread_mutex_lock(&s->lock);
        if (s->stop || s->wake)
            continue;
        kutil_cond_wait_ms(&s->cond, &s->lock, 200); /* the own queue is drained at least this often */
    }
    pthread_mutex_unlock(&s->lock);
    leaders_free(leaders, nleaders);
    return NULL;
}

/* ---- creation ---------------------------------------------------------------------------- */

static rd_kafka_t *make_consumer(scons_reg_t *reg, const json_t *config, int n, long long *queue_kbytes,
                                 ferr_t *err)
{
    const wconf_t *wc = reg->wc;
    char e[512], cid[64];
    const char *src = json_string_value(json_object_get(config, "src.kafka.bootstrap.servers"));
    snprintf(cid, sizeof cid, "ferry-source-%d", n);
    rd_kafka_conf_t *cc = kutil_conf_new(src ? src : "");
    kutil_conf_set(cc, "client.id", cid, NULL, NULL);
    kutil_conf_set(cc, "group.id", cid, NULL, NULL); /* required by assign(); never committed */
    kutil_conf_set(cc, "enable.auto.commit", "false", NULL, NULL);
    kutil_conf_set(cc, "enable.auto.offset.store", "false", NULL, NULL);
    kutil_conf_set(cc, "auto.offset.reset", "earliest", NULL, NULL);
    kutil_conf_set(cc, "fetch.wait.max.ms", "100", NULL, NULL);
    kutil_conf_set(cc, "queued.min.messages", "1000000", NULL, NULL);
    if (kutil_conf_apply(cc, wc->consumer, "consumer.", err) ||
        kutil_conf_apply_prefixed(cc, config, "src.kafka.", err) ||
        kutil_conf_apply_prefixed(cc, config, "src.consumer.", err)) {
        rd_kafka_conf_destroy(cc);
        return NULL;
    }
    /* the budget's consumer half, per copy-thread queue, unless the user set it */
    char v[64];
    size_t vn = sizeof v;
    int user_set = props_get(wc->consumer, "queued.max.messages.kbytes") ||
                   json_object_get(config, "src.kafka.queued.max.messages.kbytes") ||
                   json_object_get(config, "src.consumer.queued.max.messages.kbytes");
    mbudget_limits_t lim;
    mbudget_consumer_limits(wc->memory_budget_bytes, reg->queues, &lim);
    if (!user_set) {
        snprintf(v, sizeof v, "%lld", (long long)lim.consumer_kbytes);
        kutil_conf_set(cc, "queued.max.messages.kbytes", v, NULL, NULL);
    }
    *queue_kbytes = rd_kafka_conf_get(cc, "queued.max.messages.kbytes", v, &vn) == RD_KAFKA_CONF_OK ? atoll(v) : 0;
    kutil_conf_set(cc, "bootstrap.servers", src ? src : "", NULL, NULL);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!rk)
        ferr_set(err, FERR_KAFKA, "cannot create the source consumer: %s", e);
    return rk;
}

static char *part_key(const json_t *p)
{
    char *k;
    if (asprintf(&k, "%s\t%lld", json_string_value(json_array_get(p, 0)),
                 (long long)json_integer_value(json_array_get(p, 1))) < 0)
        abort();
    return k;
}

/* Adds (@p on) or removes the reservation of @p parts; with @p check, only tells whether none
 * is reserved yet. */
static int reserve(scons_t *s, const json_t *parts, int on, int check)
{
    size_t i;
    json_t *p;
    int free_ = 1;
    json_array_foreach(parts, i, p) {
        char *k = part_key(p);
        if (check)
            free_ &= !json_object_get(s->reserved, k);
        else if (on)
            json_object_set_new(s->reserved, k, json_true());
        else
            json_object_del(s->reserved, k);
        free(k);
    }
    return free_;
}

scons_t *scons_get(scons_reg_t *reg, const json_t *config, const json_t *parts, const char *private_key,
                   ferr_t *err)
{
    char *key = settings_key(config);
    if (private_key) {
        char *pk;
        if (asprintf(&pk, "%s\t%s", key, private_key) < 0)
            abort();
        free(key);
        key = pk;
    }
    for (scons_t *s = reg->list; s && !private_key; s = s->next)
        if (!strcmp(s->key, key) && reserve(s, parts, 0, 1)) {
            free(key);
            s->refs++;
            reserve(s, parts, 1, 0);
            return s;
        }
    scons_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->reg = reg;
    s->key = key;
    s->refs = 1;
    s->n = ++reg->next_n;
    if (!(s->rk = make_consumer(reg, config, s->n, &s->queue_kbytes, err))) {
        free(s->key);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    kutil_cond_init(&s->cond);
    pthread_create(&s->thread, NULL, scons_main, s);
    s->reserved = json_object();
    reserve(s, parts, 1, 0);
    scons_t **tail = &reg->list; /* at the end: the oldest consumer that fits is taken first */
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    FLOG(INFO, WORKER, "source consumer %d created (%s, queued.max.messages.kbytes=%lld per copy thread)", s->n,
         json_string_value(json_object_get(config, "src.kafka.bootstrap.servers")), s->queue_kbytes);
    return s;
}

void scons_put(scons_t *s, const json_t *parts)
{
    if (!s)
        return;
    reserve(s, parts, 0, 0);
    if (--s->refs > 0)
        return;
    json_decref(s->reserved);
    for (scons_t **pp = &s->reg->list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    if (s->nparts)
        FLOG(WARN, WORKER, "source consumer %d destroyed with %zu partition(s) assigned", s->n, s->nparts);
    for (size_t i = 0; i < s->nparts; i++) {
        rd_kafka_queue_forward(s->parts[i].q, NULL);
        rd_kafka_queue_destroy(s->parts[i].q);
        free(s->parts[i].topic);
    }
    free(s->parts);
    rd_kafka_assign(s->rk, NULL);
    rd_kafka_consumer_close(s->rk);
    rd_kafka_destroy(s->rk);
    FLOG(INFO, WORKER, "source consumer %d destroyed", s->n);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->key);
    free(s);
}

rd_kafka_t *scons_handle(const scons_t *s)
{
    return s->rk;
}

rd_kafka_queue_t *scons_queue_new(scons_t *s)
{
    return rd_kafka_queue_new(s->rk);
}

long long scons_queue_kbytes(const scons_t *s)
{
    return s->queue_kbytes;
}

/* ---- assignment --------------------------------------------------------------------------- */

int scons_add(scons_t *s, const rd_kafka_topic_partition_list_t *parts, rd_kafka_queue_t *dest, ferr_t *err)
{
    /* Forward first: a partition's queue exists before it is assigned (librdkafka creates the
     * partition on demand), so no fetched record can land in the consumer's own queue. */
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_partition(s->rk, parts->elems[i].topic, parts->elems[i].partition);
        if (!q)
            continue;
        rd_kafka_queue_forward(q, dest);
        if (s->nparts == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->parts = realloc(s->parts, s->cap * sizeof *s->parts);
            if (!s->parts)
                abort();
        }
        s->parts[s->nparts++] = (spart_t){strdup(parts->elems[i].topic), parts->elems[i].partition, q, 0, -1};
    }
    s->assigned_changed = 1;
    pthread_mutex_unlock(&s->lock);
    rd_kafka_error_t *e = rd_kafka_incremental_assign(s->rk, parts);
    if (!e)
        return 0;
    ferr_set(err, FERR_KAFKA, "cannot assign source partitions: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    scons_remove(s, parts);
    return -1;
}

void scons_remove(scons_t *s, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, parts);
    if (e) {
        FLOG(WARN, TASK, "source consumer %d: unassigning partitions: %s", s->n, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < parts->cnt; i++)
        for (size_t j = 0; j < s->nparts; j++) {
            spart_t *p = &s->parts[j];
            if (p->partition != parts->elems[i].partition || strcmp(p->topic, parts->elems[i].topic))
                continue;
            rd_kafka_queue_forward(p->q, NULL);
            rd_kafka_queue_destroy(p->q);
            free(p->topic);
            s->parts[j] = s->parts[--s->nparts];
            break;
        }
    s->assigned_changed = 1;
    pthread_mutex_unlock(&s->lock);
}

void scons_wake(scons_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (!s->wake) {
        s->wake = 1;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

static spart_t *find_part(scons_t *s, const char *topic, int32_t partition)
{
    for (size_t j = 0; j < s->nparts; j++)
        if (s->parts[j].partition == partition && !strcmp(s->parts[j].topic, topic))
            return &s->parts[j];
    return NULL;
}

void scons_pause(scons_t *s, const rd_kafka_topic_partition_list_t *parts, int paused)
{
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < parts->cnt; i++) {
        spart_t *p = find_part(s, parts->elems[i].topic, parts->elems[i].partition);
        if (p)
            p->paused = paused;
    }
    pthread_mutex_unlock(&s->lock);
    if (paused)
        rd_kafka_pause_partitions(s->rk, (rd_kafka_topic_partition_list_t *)parts);
    else
        rd_kafka_resume_partitions(s->rk, (rd_kafka_topic_partition_list_t *)parts);
}

int64_t scons_hwm(scons_t *s, const char *topic, int32_t partition)
{
    int64_t hwm = -1;
    pthread_mutex_lock(&s->lock);
    spart_t *p = find_part(s, topic, partition);
    int paused = p && p->paused;
    if (paused)
        hwm = p->hwm;
    pthread_mutex_unlock(&s->lock);
    if (!paused) {
        int64_t lo, hi;
        if (!rd_kafka_get_watermark_offsets(s->rk, topic, partition, &lo, &hi))
            hwm = hi;
    }
    return hwm;
}
