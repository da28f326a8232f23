/* mdash_test: the state metrics and the dashboard names written from a view: one 0/1 sample
 * per state, Kafka Connect's lower-case status labels, the task counters and their rates
 * (none at the first scrape, then the increase over 30-60 s, a new task run starting over),
 * the per-connector task counts, the rebalance figures, and MirrorMaker 2's per-partition
 * names with their labels, last values and windows. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/cu.h"

#include "worker/mdash.h"
#include "worker/repl.h"

/* The text mdash_write makes of @p v (malloc'd), with a newline in front so that every line
 * is "\n...\n". */
static char *render(mdash_t *md, const mdash_view_t *v)
{
    metrics_t *m = metrics_new();
    mdash_write(md, v, m);
    size_t len;
    char *body = metrics_finish(m, &len);
    char *out = malloc(len + 2);
    out[0] = '\n';
    memcpy(out + 1, body, len + 1);
    free(body);
    return out;
}

static int has(const char *text, const char *line)
{
    char want[1024];
    snprintf(want, sizeof want, "\n%s\n", line);
    int ok = strstr(text, want) != NULL;
    if (!ok)
        fprintf(stderr, "\nmissing: %s\n", line);
    return ok;
}

/* The value of the sample whose line starts with @p prefix ("name{labels}"), NAN if none. */
static double value_of(const char *text, const char *prefix)
{
    char want[1024];
    snprintf(want, sizeof want, "\n%s ", prefix);
    const char *p = strstr(text, want);
    return p ? strtod(p + strlen(want), NULL) : NAN;
}

static int count_lines(const char *text, const char *prefix)
{
    char want[1024];
    snprintf(want, sizeof want, "\n%s", prefix);
    int n = 0;
    for (const char *p = text; (p = strstr(p, want)); p++)
        n++;
    return n;
}

static void test_states(void)
{
    mdash_t *md = mdash_new();
    mdash_view_t v;
    mdash_view_init(&v);
    mdash_view_conn(&v, "c1", "RUNNING", 0);
    mdash_view_conn(&v, "c2", NULL, 0);
    mdash_view_task(&v, "c1", 0, "PAUSED", 0, 1);
    mdash_view_task(&v, "c1", 1, "FAILED", 0, 2);
    mdash_view_task(&v, "c2", 0, NULL, 0, 3);
    char *t = render(md, &v);
    CU_ASSERT(has(t, "# TYPE ferry_connector_state gauge"));
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c1\",state=\"RUNNING\"} 1"));
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c1\",state=\"PAUSED\"} 0"));
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c1\",state=\"UNASSIGNED\"} 0"));
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c2\",state=\"UNASSIGNED\"} 1"));
    CU_ASSERT_EQUAL(count_lines(t, "ferry_connector_state{connector=\"c1\""), 6);
    CU_ASSERT(has(t, "ferry_task_state{connector=\"c1\",task=\"0\",state=\"PAUSED\"} 1"));
    CU_ASSERT(has(t, "ferry_task_state{connector=\"c1\",task=\"0\",state=\"RUNNING\"} 0"));
    CU_ASSERT(has(t, "ferry_task_state{connector=\"c1\",task=\"1\",state=\"FAILED\"} 1"));
    CU_ASSERT(has(t, "ferry_task_state{connector=\"c2\",task=\"0\",state=\"UNASSIGNED\"} 1"));
    CU_ASSERT_EQUAL(count_lines(t, "ferry_task_state{connector=\"c1\",task=\"0\""), 5);
    /* Strimzi's names: only the current state, lower case, as the JMX exporter gives it */
    CU_ASSERT(has(t, "kafka_connect_connector_status{connector=\"c1\",status=\"running\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_connector_status{connector=\"c2\",status=\"unassigned\"} 1"));
    CU_ASSERT_EQUAL(count_lines(t, "kafka_connect_connector_status{"), 2);
    CU_ASSERT(has(t, "kafka_connect_connector_connector_class{connector=\"c1\",connector_class=\"" REPL_CLASS "\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_connector_connector_type{connector=\"c1\",connector_type=\"source\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_connector_connector_version{connector=\"c1\",connector_version=\"" REPL_VERSION
                     "\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_connector_task_status{connector=\"c1\",task=\"0\",status=\"paused\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_connector_task_status{connector=\"c1\",task=\"1\",status=\"failed\"} 1"));
    CU_ASSERT_EQUAL(count_lines(t, "kafka_connect_connector_task_status{"), 3);
    /* a state outside the list still gets its 1 */
    free(t);
    mdash_view_dispose(&v);
    mdash_view_init(&v);
    mdash_view_conn(&v, "c3", "DEGRADED", 0);
    t = render(md, &v);
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c3\",state=\"DEGRADED\"} 1"));
    CU_ASSERT(has(t, "ferry_connector_state{connector=\"c3\",state=\"RUNNING\"} 0"));
    free(t);
    mdash_view_dispose(&v);
    mdash_destroy(md);
}

static void test_worker(void)
{
    mdash_t *md = mdash_new();
    mdash_view_t v;
    mdash_view_init(&v);
    v.now_ms = 100000;
    v.generation = 7;
    v.rebalances = 3;
    v.assigned_connectors = 1;
    v.assigned_tasks = 2;
    mdash_view_conn(&v, "a", "RUNNING", 0);
    mdash_view_task(&v, "a", 0, "RUNNING", 0, 1);
    mdash_view_task(&v, "a", 1, "PAUSED", 0, 2);
    mdash_view_task(&v, "b", 0, "RUNNING", 0, 3);
    char *t = render(md, &v);
    CU_ASSERT(has(t, "kafka_connect_worker_connector_count 1"));
    CU_ASSERT(has(t, "kafka_connect_worker_task_count 3"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_total_task_count{connector=\"a\"} 2"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_running_task_count{connector=\"a\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_paused_task_count{connector=\"a\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_failed_task_count{connector=\"a\"} 0"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_unassigned_task_count{connector=\"a\"} 0"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_destroyed_task_count{connector=\"a\"} 0"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_restarting_task_count{connector=\"a\"} 0"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_total_task_count{connector=\"b\"} 1"));
    CU_ASSERT_EQUAL(count_lines(t, "kafka_connect_worker_connector_total_task_count{"), 2);
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_epoch 7"));
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_completed_rebalances_total 3"));
    CU_ASSERT(has(t, "# TYPE kafka_connect_worker_rebalance_completed_rebalances_total counter"));
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_rebalancing 0"));
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_time_since_last_rebalance_ms +Inf")); /* none yet */
    CU_ASSERT_EQUAL(count_lines(t, "kafka_connect_worker_rebalance_leader_name{"), 0); /* no leader known */
    CU_ASSERT(has(t, "kafka_connect_coordinator_assigned_connectors 1"));
    CU_ASSERT(has(t, "kafka_connect_coordinator_assigned_tasks 2"));
    free(t);
    mdash_view_dispose(&v);

    /* a revoked task still stopping: rebalancing; a leader; 2.5 s after the last assignment */
    mdash_view_init(&v);
    v.now_ms = 100000;
    v.rebalanced_ms = 97500;
    v.leader_url = "http://w1:8083/";
    mdash_view_task(&v, "a", 0, "RUNNING", 1, 1);
    t = render(md, &v);
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_rebalancing 1"));
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_time_since_last_rebalance_ms 2500"));
    CU_ASSERT(has(t, "kafka_connect_worker_rebalance_leader_name{leader_name=\"http://w1:8083/\"} 1"));
    CU_ASSERT(has(t, "kafka_connect_worker_connector_count 0"));
    free(t);
    mdash_view_dispose(&v);
    mdash_destroy(md);
}

/* One scrape of a task (run @p inst) that took @p polled records, of which @p written are
 * acknowledged, at monotonic time @p now. */
static char *scrape_task(mdash_t *md, uint64_t inst, int64_t now, uint64_t polled, uint64_t written)
{
    mdash_view_t v;
    mdash_view_init(&v);
    v.now_ms = now;
    mdash_task_t *mt = mdash_view_task(&v, "c", 0, "RUNNING", 0, inst);
    mt->has_stats = 1;
    mt->st.polled = polled;
    mt->st.records = written;
    mt->st.active = polled - written;
    mt->st.errors = 2;
    mt->st.src_alias = "src";
    mt->st.dst_alias = "dst";
    char *t = render(md, &v);
    mdash_view_dispose(&v);
    return t;
}

#define POLL_RATE "kafka_connect_source_task_source_record_poll_rate{connector=\"c\",task=\"0\"}"
#define WRITE_RATE "kafka_connect_source_task_source_record_write_rate{connector=\"c\",task=\"0\"}"

static void test_task_rates(void)
{
    mdash_t *md = mdash_new();
    char *t = scrape_task(md, 5, 1000000, 100, 90);
    CU_ASSERT(has(t, "kafka_connect_source_task_source_record_poll_total{connector=\"c\",task=\"0\"} 100"));
    CU_ASSERT(has(t, "# TYPE kafka_connect_source_task_source_record_poll_total counter"));
    CU_ASSERT(has(t, "kafka_connect_source_task_source_record_write_total{connector=\"c\",task=\"0\"} 90"));
    CU_ASSERT(has(t, "kafka_connect_source_task_source_record_active_count{connector=\"c\",task=\"0\"} 10"));
    CU_ASSERT(has(t, "kafka_connect_task_error_total_record_failures{connector=\"c\",task=\"0\"} 2"));
    CU_ASSERT_EQUAL(count_lines(t, POLL_RATE), 0); /* the first scrape: no rate */
    CU_ASSERT(has(t, "# TYPE kafka_connect_source_task_source_record_poll_rate gauge"));
    free(t);
    t = scrape_task(md, 5, 1000500, 200, 100); /* 0.5 s later: too short to say */
    CU_ASSERT_EQUAL(count_lines(t, POLL_RATE), 0);
    free(t);
    t = scrape_task(md, 5, 1010000, 1100, 1090); /* 10 s: 1000 more of each */
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 100, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, WRITE_RATE), 100, 1e-9);
    free(t);
    t = scrape_task(md, 5, 1030000, 4100, 4090); /* 30 s after the first: since it; a new checkpoint */
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 4000.0 / 30, 1e-9);
    free(t);
    t = scrape_task(md, 5, 1050000, 4100, 4090); /* idle 20 s: still since the first checkpoint */
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 4000.0 / 50, 1e-9);
    free(t);
    t = scrape_task(md, 5, 1060000, 4100, 4090); /* the 1030000 one is 30 s old: since it, 0 */
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 0, 1e-9);
    free(t);
    t = scrape_task(md, 5, 1065000, 4600, 4590); /* 500 in 35 s since 1030000 */
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 500.0 / 35, 1e-9);
    free(t);
    /* a new run of the task (restarted: counters from 0) starts over */
    t = scrape_task(md, 6, 1066000, 10, 10);
    CU_ASSERT_EQUAL(count_lines(t, POLL_RATE), 0);
    free(t);
    t = scrape_task(md, 6, 1068000, 30, 20);
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, POLL_RATE), 10, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(value_of(t, WRITE_RATE), 5, 1e-9);
    free(t);
    mdash_destroy(md);
}

static void test_mirror(void)
{
    mdash_t *md = mdash_new();
    const int64_t wall = 1700000000000;
    for (int round = 0; round < 2; round++) {
        mdash_view_t v;
        mdash_view_init(&v);
        v.now_ms = 500000 + round * 20000;
        v.wall_ms = wall + round * 60000; /* the clocks are independent */
        mdash_task_t *mt = mdash_view_task(&v, "rep", 1, "RUNNING", 0, 9);
        mt->has_stats = 1;
        mt->st.src_alias = "east";
        mt->st.dst_alias = "west";
        rtask_part_stats_t ps = {.topic = "orders", .target = "east.orders", .partition = 3,
                                 .records = 1000 + (uint64_t)round * 2000, .bytes = 50000 + (uint64_t)round * 100000,
                                 .latency_ms = 120, .age_ms = -1};
        mwin_init(&ps.latency_win);
        mwin_init(&ps.age_win);
        mwin_add(&ps.latency_win, wall - 1000, 100, 140, 480, 4); /* 4 records: 100..140, mean 120 */
        mdash_task_part(mt, &ps);
        char *t = render(md, &v);
#define MM "kafka_connect_mirror_mirrorsourceconnector_"
#define L "{source=\"east\",target=\"west\",topic=\"east.orders\",partition=\"3\",connector=\"rep\"}"
        CU_ASSERT(has(t, round ? MM "record_count" L " 3000" : MM "record_count" L " 1000"));
        CU_ASSERT(has(t, round ? MM "byte_count" L " 150000" : MM "byte_count" L " 50000"));
        CU_ASSERT(has(t, MM "replication_latency_ms" L " 120"));
        CU_ASSERT_EQUAL(count_lines(t, MM "record_age_ms"), 0); /* never measured: no series */
        CU_ASSERT(has(t, "# TYPE " MM "record_age_ms gauge"));
        if (!round) {
            CU_ASSERT_EQUAL(count_lines(t, MM "record_rate{"), 0);
            CU_ASSERT(has(t, MM "replication_latency_ms_min" L " 100"));
            CU_ASSERT(has(t, MM "replication_latency_ms_max" L " 140"));
            CU_ASSERT(has(t, MM "replication_latency_ms_avg" L " 120"));
        } else {
            CU_ASSERT(has(t, MM "record_rate" L " 100"));  /* 2000 records in 20 s */
            CU_ASSERT(has(t, MM "byte_rate" L " 5000")); /* 100000 bytes in 20 s */
            /* the window's values are 61 s old now: Kafka's Min/Max/Avg read NaN */
            CU_ASSERT(has(t, MM "replication_latency_ms_min" L " NaN"));
            CU_ASSERT(has(t, MM "replication_latency_ms_avg" L " NaN"));
        }
        free(t);
        mdash_view_dispose(&v);
    }
    mdash_destroy(md);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"states", test_states},
        {"worker", test_worker},
        {"task_rates", test_task_rates},
        {"mirror", test_mirror},
    };
    return cu_add_tests("mdash", tests, sizeof tests / sizeof tests[0]);
}
