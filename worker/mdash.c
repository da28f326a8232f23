/* mdash: state metrics and the names dashboards already query. See mdash.h; the mapping is in
 * docs/METRICS.md ("Names existing dashboards use").
 *
 * The names are what the JMX exporter makes of an MBean under Strimzi's rules: domain, type
 * and attribute joined with '_', every other character turned into '_', lowercased; string
 * attributes (status, connector-class, leader-name) become a label on a sample of value 1.
 * Label values are written as they are: the exporter keeps the quotes JMX puts around a
 * connector name with characters outside [-\w.% \t], ferry does not. */
#include "worker/mdash.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/repl.h"

/* ---- the view ------------------------------------------------------------------------- */

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? 2 * *cap : 8;
    p = realloc(p, *cap * size);
    if (!p)
        abort();
    return p;
}

void mdash_view_init(mdash_view_t *v)
{
    *v = (mdash_view_t){.rebalanced_ms = -1};
}

void mdash_view_dispose(mdash_view_t *v)
{
    for (size_t i = 0; i < v->ntasks; i++)
        free(v->tasks[i].parts);
    free(v->tasks);
    free(v->conns);
    *v = (mdash_view_t){0};
}

void mdash_view_conn(mdash_view_t *v, const char *name, const char *state, int revoked)
{
    v->conns = grow(v->conns, &v->_capconns, v->nconns, sizeof *v->conns);
    v->conns[v->nconns++] = (mdash_conn_t){name, state, revoked};
}

mdash_task_t *mdash_view_task(mdash_view_t *v, const char *connector, int id, const char *state,
                              int revoked, uint64_t instance)
{
    v->tasks = grow(v->tasks, &v->_captasks, v->ntasks, sizeof *v->tasks);
    mdash_task_t *mt = &v->tasks[v->ntasks++];
    *mt = (mdash_task_t){.connector = connector, .id = id, .state = state, .revoked = revoked,
                         .instance = instance};
    return mt;
}

void mdash_task_part(mdash_task_t *mt, const rtask_part_stats_t *ps)
{
    mt->parts = grow(mt->parts, &mt->_cap, mt->nparts, sizeof *mt->parts);
    mt->parts[mt->nparts++] = *ps;
}

static void add_part(void *arg, const rtask_part_stats_t *ps)
{
    mdash_task_part(arg, ps);
}

void mdash_task_read(mdash_task_t *mt, const rtask_t *rt)
{
    rtask_get_stats(rt, &mt->st);
    mt->has_stats = 1;
    rtask_foreach_partition(rt, add_part, mt);
}

/* ---- rates ------------------------------------------------------------------------------ */

/* Two counters of one series (a task's polled and written records, a partition's records and
 * bytes) at one time. */
typedef struct ckpt {
    int64_t t;
    uint64_t v[2];
} ckpt_t;

/* A series' checkpoints, c[n - 1] the newest. Keyed by the task run and the partition's
 * index in it (-1: the task itself). */
typedef struct rent {
    uint64_t inst;
    int64_t idx;
    ckpt_t c[2];
    int n;
} rent_t;

struct mdash {
    rent_t *v; /* sorted by key */
    size_t n;
};

mdash_t *mdash_new(void)
{
    mdash_t *md = calloc(1, sizeof *md);
    if (!md)
        abort();
    return md;
}

void mdash_destroy(mdash_t *md)
{
    if (!md)
        return;
    free(md->v);
    free(md);
}

static int rent_cmp(const void *a, const void *b)
{
    const rent_t *x = a, *y = b;
    if (x->inst != y->inst)
        return x->inst < y->inst ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The per-second rates of the two counters @p cur at @p now, from the checkpoints of @p old
 * (NULL: a new series); @p e gets the checkpoints to keep. @returns 1 if @p rate is known. */
static int rate_step(const rent_t *old, rent_t *e, int64_t now, const uint64_t cur[2], double rate[2])
{
    e->n = 0;
    if (old) {
        e->c[0] = old->c[0];
        e->c[1] = old->c[1];
        e->n = old->n;
    }
    int known = 0;
    if (e->n) {
        const ckpt_t *newest = &e->c[e->n - 1];
        const ckpt_t *base = now - newest->t >= MDASH_RATE_MS ? newest : &e->c[0];
        if (cur[0] < base->v[0] || cur[1] < base->v[1]) {
            e->n = 0; /* went back: not the same counters */
        } else if (now - base->t >= MDASH_RATE_MIN_MS) {
            for (int i = 0; i < 2; i++)
                rate[i] = (double)(cur[i] - base->v[i]) * 1000.0 / (double)(now - base->t);
            known = 1;
        }
    }
    if (!e->n || now - e->c[e->n - 1].t >= MDASH_RATE_MS) {
        if (e->n == 2) {
            e->c[0] = e->c[1];
            e->n = 1;
        }
        e->c[e->n++] = (ckpt_t){now, {cur[0], cur[1]}};
    }
    return known;
}

/* What mdash_write derives before it writes: per task, then per partition of each. */
typedef struct derived {
    int known;
    double rate[2];
} derived_t;

/* Rates of every task and partition of @p v, in view order (tasks first, then each task's
 * partitions); the checkpoints move on. */
static derived_t *derive(mdash_t *md, const mdash_view_t *v, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ntasks; i++)
        n += v->tasks[i].has_stats ? 1 + v->tasks[i].nparts : 0;
    derived_t *d = calloc(n ? n : 1, sizeof *d);
    rent_t *next = calloc(n ? n : 1, sizeof *next);
    if (!d || !next)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < v->ntasks; i++) {
        const mdash_task_t *mt = &v->tasks[i];
        if (!mt->has_stats)
            continue;
        for (int64_t j = -1; j < (int64_t)mt->nparts; j++, k++) {
            rent_t key = {.inst = mt->instance, .idx = j};
            const rent_t *old = md->n ? bsearch(&key, md->v, md->n, sizeof *md->v, rent_cmp) : NULL;
            uint64_t cur[2];
            if (j < 0) {
                cur[0] = mt->st.polled;
                cur[1] = mt->st.records;
            } else {
                cur[0] = mt->parts[j].records;
                cur[1] = mt->parts[j].bytes;
            }
            next[k] = key;
            d[k].known = rate_step(old, &next[k], v->now_ms, cur, d[k].rate);
        }
    }
    qsort(next, n, sizeof *next, rent_cmp);
    free(md->v);
    md->v = next;
    md->n = n;
    *count = n;
    return d;
}

/* ---- writing ------------------------------------------------------------------------------ */

static const char *const conn_states[] = {"UNASSIGNED", "RUNNING", "PAUSED", "STOPPED", "FAILED", "RESTARTING"};
static const char *const task_states[] = {"UNASSIGNED", "RUNNING", "PAUSED", "FAILED", "RESTARTING"};
#define NCONN_STATES (sizeof conn_states / sizeof conn_states[0])
#define NTASK_STATES (sizeof task_states / sizeof task_states[0])

static const char *state_of(const char *s)
{
    return s && *s ? s : "UNASSIGNED";
}

/* Kafka Connect's status attribute: the state in lower case. */
static const char *lower(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    buf[i] = '\0';
    return buf;
}

/* 0/1 per state of @p states, and a 1 for a current state outside them. */
static void state_samples(metrics_t *m, const char *name, const char **labels, size_t at,
                          const char *const *states, size_t nstates, const char *cur)
{
    int seen = 0;
    for (size_t s = 0; s < nstates; s++) {
        labels[at] = "state";
        labels[at + 1] = states[s];
        metrics_sample(m, name, labels, !strcmp(states[s], cur));
        seen |= !strcmp(states[s], cur);
    }
    if (!seen) {
        labels[at + 1] = cur;
        metrics_sample(m, name, labels, 1);
    }
}

static void write_states(const mdash_view_t *v, metrics_t *m)
{
    metrics_family(m, "ferry_connector_state", "gauge",
                   "1 for the state of a connector this worker runs (as its status shows), 0 for the others.");
    for (size_t i = 0; i < v->nconns; i++) {
        const char *labels[] = {"connector", v->conns[i].name, NULL, NULL, NULL};
        state_samples(m, "ferry_connector_state", labels, 2, conn_states, NCONN_STATES,
                      state_of(v->conns[i].state));
    }
    metrics_family(m, "ferry_task_state", "gauge",
                   "1 for the state of a task this worker runs (as its status shows), 0 for the others.");
    for (size_t i = 0; i < v->ntasks; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", v->tasks[i].id);
        const char *labels[] = {"connector", v->tasks[i].connector, "task", id, NULL, NULL, NULL};
        state_samples(m, "ferry_task_state", labels, 4, task_states, NTASK_STATES, state_of(v->tasks[i].state));
    }
}

/* kafka.connect:type=connector-metrics,connector=* (string attributes: one sample of 1). */
static void write_connector_mbeans(const mdash_view_t *v, metrics_t *m)
{
    static const struct { const char *name, *label, *help; } fams[] = {
        {"kafka_connect_connector_status", "status", "Kafka Connect JMX metric type connector: status"},
        {"kafka_connect_connector_connector_class", "connector_class",
         "Kafka Connect JMX metric type connector: connector-class"},
        {"kafka_connect_connector_connector_type", "connector_type",
         "Kafka Connect JMX metric type connector: connector-type"},
        {"kafka_connect_connector_connector_version", "connector_version",
         "Kafka Connect JMX metric type connector: connector-version"},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        metrics_family(m, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < v->nconns; i++) {
            char st[32];
            const char *val = f == 0 ? lower(state_of(v->conns[i].state), st, sizeof st)
                              : f == 1 ? REPL_CLASS
                              : f == 2 ? "source"
                                       : REPL_VERSION;
            const char *labels[] = {"connector", v->conns[i].name, fams[f].label, val, NULL};
            metrics_sample(m, fams[f].name, labels, 1);
        }
    }
}

/* kafka.connect:type=connector-task-metrics, source-task-metrics and task-error-metrics. */
static void write_task_mbeans(const mdash_view_t *v, const derived_t *d, metrics_t *m)
{
    metrics_family(m, "kafka_connect_connector_task_status", "gauge", "Kafka Connect JMX Connector task status");
    for (size_t i = 0; i < v->ntasks; i++) {
        char id[16], st[32];
        snprintf(id, sizeof id, "%d", v->tasks[i].id);
        const char *labels[] = {"connector", v->tasks[i].connector, "task", id, "status",
                                lower(state_of(v->tasks[i].state), st, sizeof st), NULL};
        metrics_sample(m, "kafka_connect_connector_task_status", labels, 1);
    }
    static const struct { const char *name, *type, *help; } fams[] = {
        {"kafka_connect_source_task_source_record_poll_total", "counter",
         "Kafka Connect JMX metric type source-task: records taken from the source to copy"},
        {"kafka_connect_source_task_source_record_poll_rate", "gauge",
         "Kafka Connect JMX metric type source-task: records taken per second (last 30-60 s)"},
        {"kafka_connect_source_task_source_record_write_total", "counter",
         "Kafka Connect JMX metric type source-task: records acknowledged by the destination"},
        {"kafka_connect_source_task_source_record_write_rate", "gauge",
         "Kafka Connect JMX metric type source-task: records acknowledged per second (last 30-60 s)"},
        {"kafka_connect_source_task_source_record_active_count", "gauge",
         "Kafka Connect JMX metric type source-task: records taken and not yet acknowledged"},
        {"kafka_connect_task_error_total_record_failures", "gauge",
         "Kafka Connect JMX metric type task-error: source read errors and failed deliveries"},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        metrics_family(m, fams[f].name, fams[f].type, fams[f].help);
        size_t k = 0;
        for (size_t i = 0; i < v->ntasks; i++) {
            const mdash_task_t *mt = &v->tasks[i];
            if (!mt->has_stats)
                continue;
            const derived_t *dt = &d[k];
            k += 1 + mt->nparts;
            char id[16];
            snprintf(id, sizeof id, "%d", mt->id);
            const char *labels[] = {"connector", mt->connector, "task", id, NULL};
            double val;
            switch (f) {
            case 0: val = (double)mt->st.polled; break;
            case 1: val = dt->rate[0]; break;
            case 2: val = (double)mt->st.records; break;
            case 3: val = dt->rate[1]; break;
            case 4: val = (double)mt->st.active; break;
            default: val = (double)mt->st.errors; break;
            }
            if ((f == 1 || f == 3) && !dt->known)
                continue;
            metrics_sample(m, fams[f].name, labels, val);
        }
    }
}

/* kafka.connect:type=connect-worker-metrics and its per-connector task counts. */
static void write_worker_mbeans(const mdash_view_t *v, metrics_t *m)
{
    metrics_family(m, "kafka_connect_worker_connector_count", "gauge", "Kafka Connect JMX metric worker: connector-count");
    metrics_sample(m, "kafka_connect_worker_connector_count", NULL, (double)v->nconns);
    metrics_family(m, "kafka_connect_worker_task_count", "gauge", "Kafka Connect JMX metric worker: task-count");
    metrics_sample(m, "kafka_connect_worker_task_count", NULL, (double)v->ntasks);
    /* connector-<state>-task-count: Kafka Connect's ConnectorStatusMetricsGroup order */
    static const struct { const char *name, *state; } fams[] = {
        {"kafka_connect_worker_connector_total_task_count", NULL},
        {"kafka_connect_worker_connector_running_task_count", "RUNNING"},
        {"kafka_connect_worker_connector_paused_task_count", "PAUSED"},
        {"kafka_connect_worker_connector_failed_task_count", "FAILED"},
        {"kafka_connect_worker_connector_unassigned_task_count", "UNASSIGNED"},
        {"kafka_connect_worker_connector_destroyed_task_count", "DESTROYED"},
        {"kafka_connect_worker_connector_restarting_task_count", "RESTARTING"},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        metrics_family(m, fams[f].name, "gauge", "Kafka Connect JMX metric worker: tasks of the connector on this worker");
        for (size_t i = 0; i < v->ntasks; i++) {
            const char *conn = v->tasks[i].connector;
            size_t first = 0;
            while (strcmp(v->tasks[first].connector, conn))
                first++;
            if (first != i)
                continue; /* one sample per connector */
            int n = 0;
            for (size_t j = i; j < v->ntasks; j++)
                n += !strcmp(v->tasks[j].connector, conn) &&
                     (!fams[f].state || !strcmp(state_of(v->tasks[j].state), fams[f].state));
            const char *labels[] = {"connector", conn, NULL};
            metrics_sample(m, fams[f].name, labels, n);
        }
    }
}

/* kafka.connect:type=connect-worker-rebalance-metrics and connect-coordinator-metrics. */
static void write_rebalance_mbeans(const mdash_view_t *v, metrics_t *m)
{
    int rebalancing = 0;
    for (size_t i = 0; i < v->nconns; i++)
        rebalancing |= v->conns[i].revoked;
    for (size_t i = 0; i < v->ntasks; i++)
        rebalancing |= v->tasks[i].revoked;
    metrics_family(m, "kafka_connect_worker_rebalance_leader_name", "untyped",
                   "Kafka Connect JMX metric type worker rebalance: leader-name (the leader's REST URL)");
    if (v->leader_url) {
        const char *labels[] = {"leader_name", v->leader_url, NULL};
        metrics_sample(m, "kafka_connect_worker_rebalance_leader_name", labels, 1);
    }
    metrics_family(m, "kafka_connect_worker_rebalance_epoch", "gauge",
                   "Kafka Connect JMX metric rebalance information: the group generation");
    metrics_sample(m, "kafka_connect_worker_rebalance_epoch", NULL, (double)v->generation);
    metrics_family(m, "kafka_connect_worker_rebalance_completed_rebalances_total", "counter",
                   "Kafka Connect JMX metric rebalance information: assignments this worker applied");
    metrics_sample(m, "kafka_connect_worker_rebalance_completed_rebalances_total", NULL, (double)v->rebalances);
    metrics_family(m, "kafka_connect_worker_rebalance_rebalancing", "gauge",
                   "Kafka Connect JMX metric rebalance information: 1 while this worker still stops what an "
                   "assignment took from it");
    metrics_sample(m, "kafka_connect_worker_rebalance_rebalancing", NULL, rebalancing);
    metrics_family(m, "kafka_connect_worker_rebalance_time_since_last_rebalance_ms", "gauge",
                   "Kafka Connect JMX metric rebalance information: ms since this worker applied an assignment");
    metrics_sample(m, "kafka_connect_worker_rebalance_time_since_last_rebalance_ms", NULL,
                   v->rebalanced_ms < 0 ? INFINITY : (double)(v->now_ms - v->rebalanced_ms));
    metrics_family(m, "kafka_connect_coordinator_assigned_connectors", "gauge",
                   "Kafka Connect JMX metric assignment information: connectors in this worker's assignment");
    metrics_sample(m, "kafka_connect_coordinator_assigned_connectors", NULL, v->assigned_connectors);
    metrics_family(m, "kafka_connect_coordinator_assigned_tasks", "gauge",
                   "Kafka Connect JMX metric assignment information: tasks in this worker's assignment");
    metrics_sample(m, "kafka_connect_coordinator_assigned_tasks", NULL, v->assigned_tasks);
}

/* kafka.connect.mirror:type=MirrorSourceConnector,source=*,target=*,topic=*,partition=*. */
enum { MM_COUNT, MM_RATE, MM_BYTES, MM_BYTE_RATE, MM_LAT, MM_LAT_MIN, MM_LAT_MAX, MM_LAT_AVG, MM_AGE,
       MM_AGE_MIN, MM_AGE_MAX, MM_AGE_AVG, MM__N };

/* The value of family @p f for one partition; @returns 0 if it has none (yet). */
static int mm_value(int f, const rtask_part_stats_t *ps, const derived_t *dp, int64_t wall, double *out)
{
    double lo = 0, hi = 0, avg = 0;
    switch (f) {
    case MM_COUNT: *out = (double)ps->records; return 1;
    case MM_BYTES: *out = (double)ps->bytes; return 1;
    case MM_RATE: *out = dp->rate[0]; return dp->known;
    case MM_BYTE_RATE: *out = dp->rate[1]; return dp->known;
    case MM_LAT: *out = (double)ps->latency_ms; return ps->latency_ms >= 0;
    case MM_AGE: *out = (double)ps->age_ms; return ps->age_ms >= 0;
    }
    const mwin_t *w = f <= MM_LAT_AVG ? &ps->latency_win : &ps->age_win;
    if ((f <= MM_LAT_AVG ? ps->latency_ms : ps->age_ms) < 0)
        return 0; /* never recorded: no series (Kafka's are there, and 0 or NaN) */
    if (!mwin_read(w, wall, &lo, &hi, &avg)) {
        *out = NAN; /* nothing in the window: Kafka's Min, Max and Avg read NaN */
        return 1;
    }
    int k = (f - MM_LAT_MIN) % 4; /* 0 min, 1 max, 2 avg (MM_AGE_MIN - MM_LAT_MIN == 4) */
    *out = k == 0 ? lo : k == 1 ? hi : avg;
    return 1;
}

static void write_mirror_mbeans(const mdash_view_t *v, const derived_t *d, metrics_t *m)
{
    static const struct { const char *name, *help; } fams[MM__N] = {
        {"kafka_connect_mirror_mirrorsourceconnector_record_count", "Records copied and acknowledged."},
        {"kafka_connect_mirror_mirrorsourceconnector_record_rate", "Records acknowledged per second (last 30-60 s)."},
        {"kafka_connect_mirror_mirrorsourceconnector_byte_count", "Key and value bytes copied and acknowledged."},
        {"kafka_connect_mirror_mirrorsourceconnector_byte_rate", "Bytes acknowledged per second (last 30-60 s)."},
        {"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms",
         "Source timestamp until the destination acknowledged the copy, of the last record (ms)."},
        {"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_min", "Its minimum over 30-60 s."},
        {"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_max", "Its maximum over 30-60 s."},
        {"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_avg", "Its mean over 30-60 s."},
        {"kafka_connect_mirror_mirrorsourceconnector_record_age_ms",
         "Source timestamp until the record was taken to copy, of the last record (ms)."},
        {"kafka_connect_mirror_mirrorsourceconnector_record_age_ms_min", "Its minimum over 30-60 s."},
        {"kafka_connect_mirror_mirrorsourceconnector_record_age_ms_max", "Its maximum over 30-60 s."},
        {"kafka_connect_mirror_mirrorsourceconnector_record_age_ms_avg", "Its mean over 30-60 s."},
    };
    for (int f = 0; f < MM__N; f++) {
        metrics_family(m, fams[f].name, "gauge", fams[f].help);
        size_t k = 0;
        for (size_t i = 0; i < v->ntasks; i++) {
            const mdash_task_t *mt = &v->tasks[i];
            if (!mt->has_stats)
                continue;
            k++; /* the task's own entry */
            for (size_t j = 0; j < mt->nparts; j++, k++) {
                const rtask_part_stats_t *ps = &mt->parts[j];
                double val;
                if (!mm_value(f, ps, &d[k], v->wall_ms, &val))
                    continue;
                char part[16];
                snprintf(part, sizeof part, "%d", ps->partition);
                const char *labels[] = {"source", mt->st.src_alias, "target", mt->st.dst_alias, "topic",
                                        ps->target, "partition", part, "connector", mt->connector, NULL};
                metrics_sample(m, fams[f].name, labels, val);
            }
        }
    }
}

void mdash_write(mdash_t *md, const mdash_view_t *v, metrics_t *m)
{
    size_t n;
    derived_t *d = derive(md, v, &n);
    write_states(v, m);
    write_connector_mbeans(v, m);
    write_task_mbeans(v, d, m);
    write_worker_mbeans(v, m);
    write_rebalance_mbeans(v, m);
    write_mirror_mbeans(v, d, m);
    free(d);
}
