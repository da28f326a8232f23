/* mdash: the metrics that existing dashboards query, beside ferry's own names.
 *
 *  - ferry_connector_state and ferry_task_state: 0/1 per state, 1 for the current one;
 *  - the names Strimzi's Prometheus JMX exporter rules give Kafka Connect's MBeans
 *    (examples/metrics/kafka-connect-metrics.yaml: kafka_connect_connector_status,
 *    kafka_connect_connector_task_status, kafka_connect_source_task_*, kafka_connect_worker_*,
 *    kafka_connect_worker_rebalance_*, kafka_connect_coordinator_*) and MirrorMaker 2's
 *    MirrorSourceConnector MBeans (kafka-mirror-maker-2-metrics.yaml:
 *    kafka_connect_mirror_mirrorsourceconnector_*), computed from ferry's own counters.
 *
 * docs/METRICS.md has the mapping, name by name. Like Kafka Connect, a worker reports the
 * connectors and tasks it runs, so summing over the workers counts each once.
 *
 * The herder fills an mdash_view_t on each GET /metrics (what this worker runs, with copies of
 * its tasks' counters); mdash_write turns it into families. Rates need the past: mdash_t keeps,
 * per task and per partition, up to two checkpoints of the counters, taken at scrapes at
 * least MDASH_RATE_MS apart; a rate is the increase since the newest checkpoint that is at
 * least that old (else since the oldest), over the time between, so it covers the last 30 to
 * 60 s as Kafka's Rate does when scraped more often than every 30 s, and the time since the
 * previous scrape when scraped less often. A series has no rate at its first scrape.
 * Everything else is a pure function of the view.
 *
 * Threads: the loop thread (the one that serves /metrics); the view's strings are borrowed
 * from the herder for the call. */
#ifndef FERRY_MDASH_H
#define FERRY_MDASH_H

#include <stddef.h>
#include <stdint.h>

#include "worker/metrics.h"
#include "worker/rtask.h"

/** The shortest time a rate is measured over (ms), and the checkpoint spacing (ms). */
#define MDASH_RATE_MIN_MS 1000
#define MDASH_RATE_MS 30000

typedef struct mdash_conn {
    const char *name;
    const char *state; /* as in the status topic ("RUNNING", ...); NULL: none yet (UNASSIGNED) */
    int revoked;       /* still stopping, taken away by the assignment */
} mdash_conn_t;

typedef struct mdash_task {
    const char *connector;
    int id;
    const char *state; /* as for connectors */
    int revoked;
    uint64_t instance; /* this run of the task: its counters start at 0 */
    int has_stats;     /* 0: not started here yet (no counters) */
    rtask_stats_t st;
    rtask_part_stats_t *parts; /* owned by the view */
    size_t nparts, _cap;
} mdash_task_t;

typedef struct mdash_view {
    int64_t now_ms;          /* monotonic: rates, time since the last rebalance */
    int64_t wall_ms;         /* wall clock: the latency and age windows (rtask.h) */
    int64_t generation;
    uint64_t rebalances;     /* assignments applied */
    int64_t rebalanced_ms;   /* monotonic time of the last one, -1: none yet */
    const char *leader_url;  /* NULL: no leader known */
    int assigned_connectors, assigned_tasks; /* in this worker's assignment */
    mdash_conn_t *conns;
    size_t nconns, _capconns;
    mdash_task_t *tasks;
    size_t ntasks, _captasks;
} mdash_view_t;

typedef struct mdash mdash_t;

void mdash_view_init(mdash_view_t *v);
void mdash_view_dispose(mdash_view_t *v);
/** Adds a connector instance this worker runs; @p name and @p state are borrowed. */
void mdash_view_conn(mdash_view_t *v, const char *name, const char *state, int revoked);
/** Adds a task this worker runs (@p connector, @p state borrowed); the result is valid until
 *  the next call. Fill its counters with mdash_task_read, or (tests) st and mdash_task_part. */
mdash_task_t *mdash_view_task(mdash_view_t *v, const char *connector, int id, const char *state,
                              int revoked, uint64_t instance);
/** Copies a running task's counters and partitions (rtask_get_stats, rtask_foreach_partition). */
void mdash_task_read(mdash_task_t *mt, const rtask_t *rt);
/** Appends a copy of one partition's counters (its strings stay borrowed). */
void mdash_task_part(mdash_task_t *mt, const rtask_part_stats_t *ps);

mdash_t *mdash_new(void);
/** Accepts NULL. */
void mdash_destroy(mdash_t *md);
/** Writes the families of @p v to @p m, and moves the rate checkpoints on (series that are
 *  not in @p v are forgotten). */
void mdash_write(mdash_t *md, const mdash_view_t *v, metrics_t *m);

#endif
