/* Unit tests for worker/scons: the shared source consumers, against librdkafka's mock cluster
 * in-process. Tasks with the same settings share a consumer, unless they read a partition in
 * common (two connectors copying one topic) or ask for one of their own; the last put
 * destroys it. Partitions added with start offsets reach the queue they were forwarded to,
 * every record once and in order per partition, two queues apart; removed partitions stop
 * delivering; pausing stops delivery and the paused partition's high watermark is still
 * read; a budget divides into per-queue prefetch bounds. */
#include "worker/scons.h"

#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/cu.h"
#include "worker/kutil.h"
#include "worker/props.h"

#define PARTS 4
#define PER_PART 250

static rd_kafka_t *owner;
static rd_kafka_mock_cluster_t *mc;
static char bootstraps[256];
static wconf_t *wc;

static wconf_t *worker_conf(void)
{
    static const char *const kv[][2] = {
        {"group.id", "g"}, {"config.storage.topic", "c"}, {"offset.storage.topic", "o"},
        {"status.storage.topic", "s"}, {"zookeeper.connect", "localhost:2181"},
        {"key.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"},
        {"value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"},
        {"consumer.fetch.wait.max.ms", "10"}, {"bootstrap.servers", "localhost:9092"},
    };
    props_t *p = props_new();
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        props_set(p, kv[i][0], kv[i][1]);
    ferr_t err = {0};
    wconf_t *c = wconf_new(p, &err);
    if (!c)
        fprintf(stderr, "worker config: %s\n", err.msg);
    props_destroy(p);
    return c;
}

static int setup(void)
{
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", e, sizeof e);
    owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    mc = rd_kafka_mock_cluster_new(owner, 3);
    snprintf(bootstraps, sizeof bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    rd_kafka_mock_topic_create(mc, "t", PARTS, 1);
    rd_kafka_conf_t *pc = kutil_conf_new(bootstraps);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    for (int part = 0; part < PARTS; part++)
        for (int i = 0; i < PER_PART; i++) {
            char v[32];
            int n = snprintf(v, sizeof v, "%d-%d", part, i);
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_VALUE(v, (size_t)n),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        }
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    wc = worker_conf();
    return wc ? 0 : -1;
}

static int teardown(void)
{
    wconf_destroy(wc);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
    return 0;
}

static json_t *config(const char *extra_key, const char *extra_value)
{
    json_t *c = json_pack("{s:s}", "src.kafka.bootstrap.servers", bootstraps);
    if (extra_key)
        json_object_set_new(c, extra_key, json_string(extra_value));
    return c;
}

static void test_sharing(void)
{
    scons_reg_t *reg = scons_reg_new(wc, 2);
    json_t *cfg = config(NULL, NULL), *other = config("src.consumer.fetch.min.bytes", "2");
    json_t *p01 = json_pack("[[s,i],[s,i]]", "t", 0, "t", 1), *p2 = json_pack("[[s,i]]", "t", 2),
           *p1 = json_pack("[[s,i]]", "t", 1);
    ferr_t err = {0};
    scons_t *a = scons_get(reg, cfg, p01, NULL, &err);
    scons_t *b = scons_get(reg, cfg, p2, NULL, &err);
    scons_t *c = scons_get(reg, cfg, p1, NULL, &err);         /* t:1 is a's already */
    scons_t *d = scons_get(reg, other, p2, NULL, &err);       /* other settings */
    scons_t *e = scons_get(reg, cfg, NULL, "task-7", &err);   /* one of its own */
    scons_t *f = scons_get(reg, cfg, NULL, NULL, &err);       /* a connector instance */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_EQUAL(a, b);
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_PTR_NOT_EQUAL(c, a);
    CU_ASSERT_PTR_NOT_EQUAL(d, a);
    CU_ASSERT_PTR_NOT_EQUAL(e, a);
    CU_ASSERT_PTR_EQUAL(f, a);
    scons_put(a, p01); /* a's t:1 is free again: a task reading it gets a */
    scons_t *g = scons_get(reg, cfg, p1, NULL, &err);
    CU_ASSERT_PTR_EQUAL(g, b);
    /* invalid settings are refused with the reason */
    json_t *bad = config("src.consumer.plugin.library.paths", "/tmp/x.so");
    CU_ASSERT_PTR_NULL(scons_get(reg, bad, p2, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "plugin.library.paths"));
    scons_put(g, p1);
    scons_put(b, p2);
    scons_put(c, p1);
    scons_put(d, p2);
    scons_put(e, NULL);
    scons_put(f, NULL);
    scons_reg_destroy(reg);
    json_decref(bad);
    json_decref(p01);
    json_decref(p2);
    json_decref(p1);
    json_decref(other);
    json_decref(cfg);
}

/* Takes records from @p q until @p want arrived or 10 s passed; counts per partition and
 * checks their order. @returns the number taken. */
static int take(rd_kafka_queue_t *q, int want, int64_t next[PARTS])
{
    int got = 0;
    int64_t deadline = kutil_now_ms() + 10000;
    while (got < want && kutil_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        if (!m)
            continue;
        if (!m->err) {
            CU_ASSERT_EQUAL(m->offset, next[m->partition]);
            next[m->partition] = m->offset + 1;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    return got;
}

static void test_forwarding(void)
{
    scons_reg_t *reg = scons_reg_new(wc, 2);
    json_t *cfg = config(NULL, NULL), *all = json_pack("[[s,i],[s,i],[s,i],[s,i]]", "t", 0, "t", 1, "t", 2, "t", 3);
    ferr_t err = {0};
    scons_t *s = scons_get(reg, cfg, all, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    rd_kafka_queue_t *q1 = scons_queue_new(s), *q2 = scons_queue_new(s);
    rd_kafka_topic_partition_list_t *l1 = rd_kafka_topic_partition_list_new(2), *l2 = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l1, "t", 0)->offset = 0;
    rd_kafka_topic_partition_list_add(l1, "t", 1)->offset = 100; /* a start offset is honoured */
    rd_kafka_topic_partition_list_add(l2, "t", 2)->offset = 0;
    rd_kafka_topic_partition_list_add(l2, "t", 3)->offset = 0;
    CU_ASSERT_EQUAL(scons_add(s, l1, q1, &err), 0);
    CU_ASSERT_EQUAL(scons_add(s, l2, q2, &err), 0);
    int64_t next1[PARTS] = {0, 100, -1, -1}, next2[PARTS] = {-1, -1, 0, 0};
    CU_ASSERT_EQUAL(take(q1, PER_PART + PER_PART - 100, next1), 2 * PER_PART - 100);
    CU_ASSERT_EQUAL(take(q2, 2 * PER_PART, next2), 2 * PER_PART);
    CU_ASSERT_EQUAL(next1[0], PER_PART);
    CU_ASSERT_EQUAL(next1[1], PER_PART);
    /* a partition added twice (by mistake) is refused, not assigned twice */
    CU_ASSERT_EQUAL(scons_add(s, l2, q1, &err), -1);
    /* paused: nothing more is delivered, and the high watermark is still read */
    scons_pause(s, l2, 1);
    int64_t hwm = -1;
    for (int64_t deadline = kutil_now_ms() + 5000; hwm != PER_PART && kutil_now_ms() < deadline;) {
        hwm = scons_hwm(s, "t", 2);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(hwm, PER_PART);
    scons_pause(s, l2, 0);
    /* removed: the queue gets nothing more of those partitions */
    scons_remove(s, l1);
    scons_remove(s, l2);
    rd_kafka_message_t *m = rd_kafka_consume_queue(q1, 300);
    CU_ASSERT_PTR_NULL(m);
    if (m)
        rd_kafka_message_destroy(m);
    CU_ASSERT_TRUE(scons_queue_kbytes(s) > 0);
    rd_kafka_topic_partition_list_destroy(l1);
    rd_kafka_topic_partition_list_destroy(l2);
    rd_kafka_queue_destroy(q1);
    rd_kafka_queue_destroy(q2);
    scons_put(s, all);
    scons_reg_destroy(reg);
    json_decref(all);
    json_decref(cfg);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"who shares a consumer", test_sharing},
        {"partitions forwarded, paused, removed", test_forwarding},
    };
    CU_pSuite s = CU_add_suite("scons", setup, teardown);
    for (size_t i = 0; s && i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return -1;
    return s ? 0 : -1;
}
