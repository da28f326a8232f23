/* gsync: translate and commit consumer-group offsets from the source to the destination (see
 * gsync.h for the rules). */
#include "worker/gsync.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/repl.h"

#define GSYNC_TIMEOUT_MS 10000
#define PROBE_MS 3000

typedef struct gjob {
    h2o_multithread_message_t super;
    struct gjob *next;
    char *connector, *group;
    char *regex; /* set: translate every source group whose name matches (group unused) */
    json_t *config;
    gsync_part_t *parts;
    int nparts, commit;
    gsync_cb cb;
    void *arg;
    json_t *report; /* result: report, or err */
    ferr_t err;
} gjob_t;

struct gsync {
    const wconf_t *wc;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t recv;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gjob_t *head, *tail; /* queued, under lock */
    int stop;            /* under lock */
    atomic_int pending;
};

int gsync_group_name_ok(const char *group)
{
    size_t n = group ? strlen(group) : 0;
    if (n == 0 || n > 249)
        return 0;
    for (const unsigned char *p = (const unsigned char *)group; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static void job_free(gjob_t *j)
{
    for (int i = 0; i < j->nparts; i++) {
        free(j->parts[i].topic);
        free(j->parts[i].target);
    }
    free(j->parts);
    free(j->connector);
    free(j->group);
    free(j->regex);
    json_decref(j->config);
    json_decref(j->report);
    free(j);
}

/* ---- Kafka side (gsync thread) ------------------------------------------------------- */

/* A consumer that only fetches and commits offsets for @p group: it never subscribes, so it
 * never joins the group, and never commits on its own. */
static rd_kafka_t *group_client(const gsync_t *g, const gjob_t *j, int source, ferr_t *err)
{
    const wconf_t *wc = g->wc;
    const char *bs = source ? json_string_value(json_object_get(j->config, "src.kafka.bootstrap.servers"))
                            : wc->bootstrap_servers;
    char e[512], cid[300];
    rd_kafka_conf_t *c = kutil_conf_new(bs ? bs : "");
    snprintf(cid, sizeof cid, "ferry-gsync-%s", j->connector);
    kutil_conf_set(c, "client.id", cid, NULL, NULL);
    kutil_conf_set(c, "enable.auto.commit", "false", NULL, NULL);
    kutil_conf_set(c, "enable.auto.offset.store", "false", NULL, NULL);
    kutil_conf_set(c, "enable.partition.eof", "true", NULL, NULL);
    kutil_conf_set(c, "fetch.wait.max.ms", "10", NULL, NULL);
    if (source ? kutil_conf_apply(c, wc->consumer, "consumer.", err) ||
                     kutil_conf_apply_prefixed(c, j->config, "src.kafka.", err) ||
                     kutil_conf_apply_prefixed(c, j->config, "src.consumer.", err)
               : kutil_conf_apply(c, wc->common, "", err) || kutil_conf_apply(c, wc->consumer, "consumer.", err) ||
                     kutil_conf_apply_prefixed(c, j->config, "dest.kafka.", err)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    kutil_conf_set(c, "bootstrap.servers", bs ? bs : "", NULL, NULL);
    kutil_conf_set(c, "group.id", j->group, NULL, NULL);
    kutil_conf_set(c, "enable.auto.commit", "false", NULL, NULL);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!rk)
        ferr_set(err, FERR_KAFKA, "cannot create a %s consumer: %s", source ? "source" : "destination", e);
    return rk;
}

/* For partitions whose group position is past the stored copy position (AHEAD): if the source
 * holds no record between the two, the group has read everything that was copied, and its
 * position translates to the end of the copy. Reads at most one record per such partition. */
static void probe_ahead(rd_kafka_t *src, gsync_part_t *parts, int n, const int64_t *pos, omap_tr_t *tr)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n ? n : 1);
    int *probed = calloc(n ? n : 1, sizeof *probed), want = 0;
    for (int i = 0; i < n; i++)
        if (tr[i].kind == OMAP_AHEAD && parts[i].copied >= 0) {
            rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].partition)->offset = parts[i].copied;
            want++;
        }
    if (want > 0 && !rd_kafka_assign(src, l)) {
        int64_t deadline = kutil_now_ms() + PROBE_MS;
        while (want > 0 && kutil_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(src, 100);
            if (!m)
                continue;
            for (int i = 0; m->rkt && i < n; i++) {
                if (tr[i].kind != OMAP_AHEAD || probed[i] || parts[i].partition != m->partition ||
                    strcmp(parts[i].topic, rd_kafka_topic_name(m->rkt)))
                    continue;
                if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    break;
                /* the first record at or after the copy position, or the partition's end */
                probed[i] = 1;
                want--;
                if (m->offset >= pos[i]) {
                    tr[i].kind = OMAP_END;
                    tr[i].dst = omap_end(&parts[i].map);
                }
                break;
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(src, NULL);
    }
    free(probed);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Translations that say exactly where the group continues: the only ones committed. */
static int certain(omap_kind_t k)
{
    return k == OMAP_EXACT || k == OMAP_GAP || k == OMAP_END;
}

static const char *refusal(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
        return "the group is active on the destination: not touched";
    default:
        return rd_kafka_err2str(e);
    }
}

static void run_job(gsync_t *g, gjob_t *j)
{
    ferr_t *err = &j->err;
    rd_kafka_t *src = group_client(g, j, 1, err), *dst = src ? group_client(g, j, 0, err) : NULL;
    int n = j->nparts;
    rd_kafka_topic_partition_list_t *sl = rd_kafka_topic_partition_list_new(n ? n : 1),
                                    *dl = rd_kafka_topic_partition_list_new(n ? n : 1);
    int64_t *pos = calloc(n ? n : 1, sizeof *pos), *hi = calloc(n ? n : 1, sizeof *hi),
            *cur = calloc(n ? n : 1, sizeof *cur);
    omap_tr_t *tr = calloc(n ? n : 1, sizeof *tr);
    if (!dst)
        goto out;
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(sl, j->parts[i].topic, j->parts[i].partition);
        rd_kafka_topic_partition_list_add(dl, j->parts[i].target, j->parts[i].partition);
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(src, sl, GSYNC_TIMEOUT_MS);
    if (e) {
        ferr_set(err, FERR_KAFKA, "cannot read group %s's offsets on the source: %s", j->group, rd_kafka_err2str(e));
        goto out;
    }
    if ((e = rd_kafka_committed(dst, dl, GSYNC_TIMEOUT_MS))) {
        ferr_set(err, FERR_KAFKA, "cannot read group %s's offsets on the destination: %s", j->group,
                 rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        gsync_part_t *p = &j->parts[i];
        pos[i] = sl->elems[i].err ? -1 : sl->elems[i].offset;
        cur[i] = dl->elems[i].err ? -1 : dl->elems[i].offset;
        int64_t lo;
        if (rd_kafka_query_watermark_offsets(src, p->topic, p->partition, &lo, &hi[i], GSYNC_TIMEOUT_MS))
            hi[i] = -1;
        tr[i] = pos[i] >= 0 ? omap_translate(&p->map, p->copied, pos[i]) : (omap_tr_t){0, -1, 0};
    }
    probe_ahead(src, j->parts, n, pos, tr);

    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_new(n ? n : 1);
    int *in_cl = calloc(n ? n : 1, sizeof *in_cl);
    for (int i = 0; i < n; i++) {
        if (j->commit && certain(tr[i].kind) && tr[i].dst >= 0 && tr[i].dst > cur[i]) {
            rd_kafka_topic_partition_list_add(cl, j->parts[i].target, j->parts[i].partition)->offset = tr[i].dst;
            in_cl[i] = cl->cnt;
        }
    }
    rd_kafka_resp_err_t ce = cl->cnt ? rd_kafka_commit(dst, cl, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;

    json_t *list = json_array();
    int committed = 0;
    for (int i = 0; i < n; i++) {
        gsync_part_t *p = &j->parts[i];
        const char *state = pos[i] < 0 ? "no-commit" : omap_kind_name(tr[i].kind);
        json_t *o = json_pack("{s:s,s:i,s:s,s:s}", "topic", p->topic, "partition", p->partition, "target",
                              p->target, "state", state);
        json_object_set_new(o, "source_offset", pos[i] >= 0 ? json_integer(pos[i]) : json_null());
        json_object_set_new(o, "source_end", hi[i] >= 0 ? json_integer(hi[i]) : json_null());
        json_object_set_new(o, "lag", hi[i] >= 0 && pos[i] >= 0 ? json_integer(hi[i] > pos[i] ? hi[i] - pos[i] : 0)
                                                                : json_null());
        json_object_set_new(o, "copied", p->copied >= 0 ? json_integer(p->copied) : json_null());
        json_object_set_new(o, "copy_lag", hi[i] >= 0 && p->copied >= 0
                                               ? json_integer(hi[i] > p->copied ? hi[i] - p->copied : 0)
                                               : json_null());
        json_object_set_new(o, "destination_offset", pos[i] >= 0 && certain(tr[i].kind) ? json_integer(tr[i].dst) : json_null());
        json_object_set_new(o, "destination_committed", cur[i] >= 0 ? json_integer(cur[i]) : json_null());
        if (tr[i].kind == OMAP_GAP)
            json_object_set_new(o, "skipped", json_integer(tr[i].skipped));
        const char *note = NULL;
        int done = 0;
        if (pos[i] < 0)
            note = "the group has no committed offset for this partition on the source";
        else if (tr[i].kind == OMAP_AHEAD)
            note = "records before the group's position are not copied yet (or their position is not stored yet)";
        else if (tr[i].kind == OMAP_EMPTY)
            note = "nothing copied yet";
        else if (tr[i].kind == OMAP_BELOW)
            note = "the offset map no longer reaches back to the group's position";
        else if (cur[i] >= tr[i].dst)
            note = cur[i] == tr[i].dst ? "already there" : "the group is further on the destination: not moved back";
        else if (!j->commit)
            note = "not committed (report only)";
        else if (ce)
            note = refusal(ce);
        else if (in_cl[i] && cl->elems[in_cl[i] - 1].err)
            note = refusal(cl->elems[in_cl[i] - 1].err);
        else
            done = 1;
        if (tr[i].kind == OMAP_GAP && tr[i].skipped > 0)
            FLOG(WARN, WORKER, "group %s: %s[%d] offsets %lld..%lld were never copied (deleted on the source "
                 "before the copy reached them, compaction or transaction markers); it continues at %s[%d] "
                 "offset %lld", j->group, p->topic, p->partition, (long long)pos[i],
                 (long long)(pos[i] + tr[i].skipped - 1), p->target, p->partition, (long long)tr[i].dst);
        json_object_set_new(o, "committed", json_boolean(done));
        if (note)
            json_object_set_new(o, "note", json_string(note));
        committed += done;
        json_array_append_new(list, o);
    }
    j->report = json_pack("{s:s,s:s,s:o,s:i}", "connector", j->connector, "group", j->group, "partitions", list,
                          "committed", committed);
    if (j->commit)
        FLOG(INFO, WORKER, "group %s: %d of %d partition(s) of connector %s committed on the destination",
             j->group, committed, n, j->connector);
    free(in_cl);
    rd_kafka_topic_partition_list_destroy(cl);
out:
    free(pos);
    free(hi);
    free(cur);
    free(tr);
    rd_kafka_topic_partition_list_destroy(sl);
    rd_kafka_topic_partition_list_destroy(dl);
    if (src) {
        rd_kafka_consumer_close(src);
        rd_kafka_destroy(src);
    }
    if (dst) {
        rd_kafka_consumer_close(dst);
        rd_kafka_destroy(dst);
    }
}

/* The source's consumer groups (ListGroups); NULL with @p err set when the cluster cannot list
 * them (the mock cluster, or a missing Describe ACL). */
static json_t *list_groups(gsync_t *g, gjob_t *j, ferr_t *err)
{
    rd_kafka_t *rk = group_client(g, j, 1, err);
    if (!rk)
        return NULL;
    char es[256];
    json_t *names = NULL;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_AdminOptions_set_request_timeout(opt, GSYNC_TIMEOUT_MS, es, sizeof es);
    rd_kafka_ListConsumerGroups(rk, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, GSYNC_TIMEOUT_MS + 1000);
    const rd_kafka_ListConsumerGroups_result_t *res = ev ? rd_kafka_event_ListConsumerGroups_result(ev) : NULL;
    size_t nerr = 0, n = 0;
    const rd_kafka_error_t **errs = res ? rd_kafka_ListConsumerGroups_result_errors(res, &nerr) : NULL;
    if (!ev || rd_kafka_event_error(ev) || !res || nerr > 0) {
        ferr_set(err, FERR_KAFKA, "cannot list the source's consumer groups: %s; name them in groups instead",
                 !ev ? "timed out" : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                 : nerr ? rd_kafka_error_string(errs[0]) : "no result");
    } else {
        const rd_kafka_ConsumerGroupListing_t **gl = rd_kafka_ListConsumerGroups_result_valid(res, &n);
        names = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(names, json_string(rd_kafka_ConsumerGroupListing_group_id(gl[i])));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return names;
}

/* groups.regex: one translation per matching source group, reported together. */
static void run_regex_job(gsync_t *g, gjob_t *j)
{
    regex_t re;
    if (repl_regex_compile(&re, j->regex)) {
        ferr_set(&j->err, FERR_INVALID, "groups.regex %s does not compile", j->regex);
        return;
    }
    j->group = strdup("ferry-gsync-list");
    json_t *names = list_groups(g, j, &j->err), *reports = json_array();
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name) {
        const char *gn = json_string_value(name);
        if (regexec(&re, gn, 0, NULL, 0) || !gsync_group_name_ok(gn))
            continue;
        gjob_t sub = *j;
        sub.group = (char *)gn;
        sub.report = NULL;
        memset(&sub.err, 0, sizeof sub.err);
        run_job(g, &sub);
        json_array_append_new(reports, sub.report ? sub.report
                                                  : json_pack("{s:s,s:s}", "group", gn, "error", sub.err.msg));
    }
    if (!j->err.code)
        j->report = json_pack("{s:s,s:s,s:o}", "connector", j->connector, "regex", j->regex, "groups", reports);
    else
        json_decref(reports);
    json_decref(names);
    regfree(&re);
}

static void *gsync_main(void *arg)
{
    gsync_t *g = arg;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stop)
            pthread_cond_wait(&g->cond, &g->lock);
        gjob_t *j = g->head;
        if (!j)
            break;
        g->head = j->next;
        if (!g->head)
            g->tail = NULL;
        int stop = g->stop;
        pthread_mutex_unlock(&g->lock);
        if (stop)
            ferr_set(&j->err, FERR_UNAVAILABLE, "Worker is shutting down");
        else if (j->regex)
            run_regex_job(g, j);
        else
            run_job(g, j);
        if (j->err.code && !j->cb)
            FLOG(WARN, WORKER, "connector %s: consumer-group translation: %s", j->connector, j->err.msg);
        h2o_multithread_send_message(&g->recv, &j->super);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* ---- loop side ----------------------------------------------------------------------- */

static void on_done(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    gsync_t *g = H2O_STRUCT_FROM_MEMBER(gsync_t, recv, recv);
    while (!h2o_linklist_is_empty(messages)) {
        gjob_t *j = H2O_STRUCT_FROM_MEMBER(gjob_t, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        atomic_fetch_sub(&g->pending, 1);
        json_t *report = j->report;
        j->report = NULL;
        if (j->cb)
            j->cb(j->arg, j->err.code ? NULL : report, &j->err);
        if (j->err.code || !j->cb)
            json_decref(report);
        job_free(j);
    }
}

gsync_t *gsync_new(const wconf_t *wc, h2o_multithread_queue_t *queue)
{
    gsync_t *g = calloc(1, sizeof *g);
    g->wc = wc;
    g->queue = queue;
    pthread_mutex_init(&g->lock, NULL);
    kutil_cond_init(&g->cond);
    h2o_multithread_register_receiver(queue, &g->recv, on_done);
    pthread_create(&g->thread, NULL, gsync_main, g);
    return g;
}

void gsync_destroy(gsync_t *g, h2o_loop_t *loop)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    evq_drain(loop); /* deliver the answers the thread posted: h2o refuses to unregister before */
    h2o_multithread_unregister_receiver(g->queue, &g->recv);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}

static void submit(gsync_t *g, const char *connector, const char *group, const char *regex,
                   const json_t *config, gsync_part_t *parts, int nparts, int commit, gsync_cb cb, void *arg)
{
    gjob_t *j = calloc(1, sizeof *j);
    j->connector = strdup(connector);
    j->group = group ? strdup(group) : NULL;
    j->regex = regex ? strdup(regex) : NULL;
    j->config = json_deep_copy(config);
    j->parts = parts;
    j->nparts = nparts;
    j->commit = commit;
    j->cb = cb;
    j->arg = arg;
    atomic_fetch_add(&g->pending, 1);
    pthread_mutex_lock(&g->lock);
    if (g->tail)
        g->tail->next = j;
    else
        g->head = j;
    g->tail = j;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

void gsync_submit(gsync_t *g, const char *connector, const char *group, const json_t *config,
                  gsync_part_t *parts, int nparts, int commit, gsync_cb cb, void *arg)
{
    submit(g, connector, group, NULL, config, parts, nparts, commit, cb, arg);
}

void gsync_submit_regex(gsync_t *g, const char *connector, const char *regex, const json_t *config,
                        gsync_part_t *parts, int nparts, int commit, gsync_cb cb, void *arg)
{
    submit(g, connector, NULL, regex, config, parts, nparts, commit, cb, arg);
}

int gsync_pending(const gsync_t *g)
{
    return atomic_load(&g->pending);
}
