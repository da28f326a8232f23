/* wconf_test: the worker configuration: Kafka Connect's defaults, the exact error texts a
 * user sees (ferry-worker prints them and exits 2), listeners parsing, the zookeeper.connect
 * chroot split, client passthrough and secret masking. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/wconf.h"

static const char *const required[][2] = {
    {"bootstrap.servers", "localhost:9092"},
    {"group.id", "connect-cluster"},
    {"config.storage.topic", "connect-configs"},
    {"offset.storage.topic", "connect-offsets"},
    {"status.storage.topic", "connect-status"},
    {"key.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"},
    {"value.converter", "org.apache.kafka.connect.json.JsonConverter"},
    {"zookeeper.connect", "localhost:2181"},
};
#define N_REQUIRED (sizeof required / sizeof required[0])

/* The smallest valid worker file, plus one override (key may be NULL). */
static props_t *base_with(const char *key, const char *value)
{
    props_t *p = props_new();
    for (size_t i = 0; i < N_REQUIRED; i++)
        props_set(p, required[i][0], required[i][1]);
    if (key)
        props_set(p, key, value);
    return p;
}

static wconf_t *new_ok(props_t *p)
{
    ferr_t err = {0};
    wconf_t *c = wconf_new(p, &err);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (!c)
        fprintf(stderr, "unexpected wconf error: %s\n", err.msg);
    props_destroy(p);
    return c;
}

static void expect_error_p(props_t *p, const char *msg)
{
    ferr_t err = {0};
    wconf_t *c = wconf_new(p, &err);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(err.code, FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, msg);
    if (strcmp(err.msg, msg) != 0)
        fprintf(stderr, "\n  want: %s\n  got:  %s\n", msg, err.msg);
    wconf_destroy(c);
    props_destroy(p);
}

/* Base config with key=value must fail with exactly msg. */
static void expect_error(const char *key, const char *value, const char *msg)
{
    expect_error_p(base_with(key, value), msg);
}

static void test_defaults(void)
{
    wconf_t *c = new_ok(base_with(NULL, NULL));
    if (!c)
        return;
    char host[256] = "";
    CU_ASSERT_EQUAL(gethostname(host, sizeof host - 1), 0);
    CU_ASSERT_STRING_EQUAL(c->bootstrap_servers, "localhost:9092");
    CU_ASSERT_STRING_EQUAL(c->group_id, "connect-cluster");
    CU_ASSERT_STRING_EQUAL(c->config_topic, "connect-configs");
    CU_ASSERT_STRING_EQUAL(c->offset_topic, "connect-offsets");
    CU_ASSERT_STRING_EQUAL(c->status_topic, "connect-status");
    CU_ASSERT_EQUAL(c->config_rf, 3);
    CU_ASSERT_EQUAL(c->offset_rf, 3);
    CU_ASSERT_EQUAL(c->status_rf, 3);
    CU_ASSERT_EQUAL(c->offset_partitions, 25);
    CU_ASSERT_EQUAL(c->status_partitions, 5);
    CU_ASSERT_STRING_EQUAL(c->listener_scheme, "http");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "");
    CU_ASSERT_EQUAL(c->listener_port, 8083);
    CU_ASSERT_STRING_EQUAL(c->advertised_host, host);
    CU_ASSERT_EQUAL(c->advertised_port, 8083);
    CU_ASSERT_STRING_EQUAL(c->advertised_scheme, "http");
    CU_ASSERT_EQUAL(c->offset_flush_interval_ms, 60000);
    CU_ASSERT_EQUAL(c->offset_flush_timeout_ms, 5000);
    CU_ASSERT_EQUAL(c->task_shutdown_timeout_ms, 5000);
    CU_ASSERT_EQUAL(c->scheduled_rebalance_max_delay_ms, 0);
    CU_ASSERT_EQUAL(c->session_timeout_ms, 6000);
    CU_ASSERT_EQUAL(c->memory_budget_bytes, 32 * 1024 * 1024);
    CU_ASSERT_STRING_EQUAL(c->key_converter, "org.apache.kafka.connect.converters.ByteArrayConverter");
    CU_ASSERT_STRING_EQUAL(c->value_converter, "org.apache.kafka.connect.json.JsonConverter");
    CU_ASSERT_STRING_EQUAL(c->header_converter,
                           "org.apache.kafka.connect.storage.SimpleHeaderConverter");
    CU_ASSERT_STRING_EQUAL(c->zookeeper_connect, "localhost:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "localhost:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "");
    CU_ASSERT_EQUAL(props_count(c->producer), 0);
    CU_ASSERT_EQUAL(props_count(c->consumer), 0);
    CU_ASSERT_EQUAL(props_count(c->admin), 0);
    CU_ASSERT_EQUAL(props_count(c->common), 0);
    CU_ASSERT_EQUAL(props_count(c->all), N_REQUIRED);

    char buf[WCONF_URL_MAX], want[WCONF_URL_MAX + 16];
    snprintf(want, sizeof want, "%s:8083", host);
    CU_ASSERT_STRING_EQUAL(wconf_worker_id(c, buf, sizeof buf), want);
    snprintf(want, sizeof want, "http://%s:8083", host);
    CU_ASSERT_STRING_EQUAL(wconf_rest_url(c, buf, sizeof buf), want);
    wconf_destroy(c);
    wconf_destroy(NULL);
}

static void test_explicit_values(void)
{
    props_t *p = base_with(NULL, NULL);
    const char *kv[][2] = {
        {"bootstrap.servers", " b1:9092,b2:9092 "},
        {"config.storage.replication.factor", "1"},
        {"offset.storage.replication.factor", "-1"},
        {"status.storage.replication.factor", "+2"},
        {"offset.storage.partitions", "-1"},
        {"status.storage.partitions", " 7\t"},
        {"offset.flush.interval.ms", "10000"},
        {"offset.flush.timeout.ms", "0"},
        {"task.shutdown.graceful.timeout.ms", "9223372036854775807"},
        {"scheduled.rebalance.max.delay.ms", "300000"},
        {"zookeeper.session.timeout.ms", "1000"},
        {"ferry.memory.budget.bytes", "0"},
        {"header.converter", "org.apache.kafka.connect.storage.StringConverter"},
        {"key.converter", "  org.apache.kafka.connect.storage.StringConverter  "},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        props_set(p, kv[i][0], kv[i][1]);
    wconf_t *c = new_ok(p);
    if (!c)
        return;
    CU_ASSERT_STRING_EQUAL(c->bootstrap_servers, "b1:9092,b2:9092");
    CU_ASSERT_EQUAL(c->config_rf, 1);
    CU_ASSERT_EQUAL(c->offset_rf, -1);
    CU_ASSERT_EQUAL(c->status_rf, 2);
    CU_ASSERT_EQUAL(c->offset_partitions, -1);
    CU_ASSERT_EQUAL(c->status_partitions, 7);
    CU_ASSERT_EQUAL(c->offset_flush_interval_ms, 10000);
    CU_ASSERT_EQUAL(c->offset_flush_timeout_ms, 0);
    CU_ASSERT_EQUAL(c->task_shutdown_timeout_ms, INT64_MAX);
    CU_ASSERT_EQUAL(c->scheduled_rebalance_max_delay_ms, 300000);
    CU_ASSERT_EQUAL(c->session_timeout_ms, 1000);
    CU_ASSERT_EQUAL(c->memory_budget_bytes, 0);
    CU_ASSERT_STRING_EQUAL(c->header_converter, "org.apache.kafka.connect.storage.StringConverter");
    CU_ASSERT_STRING_EQUAL(c->key_converter, "org.apache.kafka.connect.storage.StringConverter");
    /* all keeps values as given, untrimmed */
    CU_ASSERT_STRING_EQUAL(props_get(c->all, "bootstrap.servers"), " b1:9092,b2:9092 ");
    wconf_destroy(c);
}

static void test_missing_required(void)
{
    for (size_t skip = 0; skip < N_REQUIRED; skip++) {
        props_t *p = props_new();
        for (size_t i = 0; i < N_REQUIRED; i++)
            if (i != skip)
                props_set(p, required[i][0], required[i][1]);
        char msg[256];
        snprintf(msg, sizeof msg, "Missing required configuration \"%s\" which has no default value.",
                 required[skip][0]);
        expect_error_p(p, msg);
    }
    /* Present but empty (after trimming) is not accepted either. */
    expect_error("group.id", "", "Invalid value  for configuration group.id: String must be non-empty");
    expect_error("zookeeper.connect", " ",
                 "Invalid value   for configuration zookeeper.connect: String must be non-empty");
    expect_error("bootstrap.servers", "", "Invalid value  for configuration bootstrap.servers: String must be non-empty");
    /* err may be NULL */
    props_t *p = props_new();
    CU_ASSERT_PTR_NULL(wconf_new(p, NULL));
    props_destroy(p);
}

static void test_exactly_once_source_support(void)
{
    expect_error("exactly.once.source.support", "sometimes",
                 "Invalid value sometimes for configuration exactly.once.source.support: String must be "
                 "one of (case insensitive): DISABLED, ENABLED, PREPARING");
    wconf_t *c = new_ok(base_with("exactly.once.source.support", "Enabled"));
    CU_ASSERT_TRUE(c && c->eos_source == 1);
    wconf_destroy(c);
    c = new_ok(base_with("exactly.once.source.support", "preparing"));
    CU_ASSERT_TRUE(c && c->eos_source == 0);
    wconf_destroy(c);
    c = new_ok(base_with(NULL, NULL));
    CU_ASSERT_TRUE(c && c->eos_source == 0);
    wconf_destroy(c);
}

static void test_invalid_numbers(void)
{
    expect_error("offset.flush.interval.ms", "abc",
                 "Invalid value abc for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "",
                 "Invalid value  for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "12abc",
                 "Invalid value 12abc for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "1.0",
                 "Invalid value 1.0 for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "1e3",
                 "Invalid value 1e3 for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "0x10",
                 "Invalid value 0x10 for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "- 1",
                 "Invalid value - 1 for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "-",
                 "Invalid value - for configuration offset.flush.interval.ms: Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "9223372036854775808",
                 "Invalid value 9223372036854775808 for configuration offset.flush.interval.ms: "
                 "Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "99999999999999999999999",
                 "Invalid value 99999999999999999999999 for configuration offset.flush.interval.ms: "
                 "Not a number of type LONG");
    expect_error("offset.flush.interval.ms", "0",
                 "Invalid value 0 for configuration offset.flush.interval.ms: Value must be at least 1");
    expect_error("offset.flush.interval.ms", "-9223372036854775808",
                 "Invalid value -9223372036854775808 for configuration offset.flush.interval.ms: "
                 "Value must be at least 1");
    expect_error("offset.flush.timeout.ms", "-1",
                 "Invalid value -1 for configuration offset.flush.timeout.ms: Value must be at least 0");
    expect_error("task.shutdown.graceful.timeout.ms", "5s",
                 "Invalid value 5s for configuration task.shutdown.graceful.timeout.ms: Not a number of type LONG");
    expect_error("scheduled.rebalance.max.delay.ms", "2147483648",
                 "Invalid value 2147483648 for configuration scheduled.rebalance.max.delay.ms: "
                 "Not a number of type INT");
    expect_error("scheduled.rebalance.max.delay.ms", "-1",
                 "Invalid value -1 for configuration scheduled.rebalance.max.delay.ms: Value must be at least 0");
    expect_error("ferry.memory.budget.bytes", "-1",
                 "Invalid value -1 for configuration ferry.memory.budget.bytes: Value must be at least 0");
    expect_error("ferry.memory.budget.bytes", "32MiB",
                 "Invalid value 32MiB for configuration ferry.memory.budget.bytes: Not a number of type LONG");
    expect_error("zookeeper.session.timeout.ms", "999",
                 "Invalid value 999 for configuration zookeeper.session.timeout.ms: Value must be at least 1000");
    expect_error("offset.storage.partitions", "2147483648",
                 "Invalid value 2147483648 for configuration offset.storage.partitions: Not a number of type INT");
    expect_error("offset.storage.partitions", "0",
                 "Invalid value 0 for configuration offset.storage.partitions: Number of partitions "
                 "must be positive, or -1 to use the broker's default");
    expect_error("status.storage.partitions", "-2",
                 "Invalid value -2 for configuration status.storage.partitions: Number of partitions "
                 "must be positive, or -1 to use the broker's default");
    expect_error("config.storage.replication.factor", "32768",
                 "Invalid value 32768 for configuration config.storage.replication.factor: "
                 "Not a number of type SHORT");
    expect_error("config.storage.replication.factor", "0",
                 "Invalid value 0 for configuration config.storage.replication.factor: Replication "
                 "factor must be positive and not larger than the number of brokers in the Kafka "
                 "cluster, or -1 to use the broker's default");
    expect_error("offset.storage.replication.factor", "-2",
                 "Invalid value -2 for configuration offset.storage.replication.factor: Replication "
                 "factor must be positive and not larger than the number of brokers in the Kafka "
                 "cluster, or -1 to use the broker's default");
    expect_error("status.storage.replication.factor", "three",
                 "Invalid value three for configuration status.storage.replication.factor: "
                 "Not a number of type SHORT");
    expect_error("rest.advertised.port", "0",
                 "Invalid value 0 for configuration rest.advertised.port: Value must be at least 1");
    expect_error("rest.advertised.port", "65536",
                 "Invalid value 65536 for configuration rest.advertised.port: Value must be no more than 65535");
}

/* An https listener needs zookeeper.set.acl (test_zk_acl_required): these tests are about the
 * listener, so they opt out explicitly. */
static wconf_t *with_listeners(const char *value)
{
    props_t *p = base_with("listeners", value);
    if (strstr(value, "https"))
        props_set(p, "zookeeper.set.acl", "false");
    return new_ok(p);
}

static void test_listeners(void)
{
    char buf[WCONF_URL_MAX];
    wconf_t *c = with_listeners("http://:8083");
    CU_ASSERT_STRING_EQUAL(c->listener_scheme, "http");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "");
    CU_ASSERT_EQUAL(c->listener_port, 8083);
    wconf_destroy(c);

    c = with_listeners("https://worker1.example.com:8443");
    CU_ASSERT_STRING_EQUAL(c->listener_scheme, "https");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "worker1.example.com");
    CU_ASSERT_EQUAL(c->listener_port, 8443);
    CU_ASSERT_STRING_EQUAL(c->advertised_host, "worker1.example.com");
    CU_ASSERT_EQUAL(c->advertised_port, 8443);
    CU_ASSERT_STRING_EQUAL(c->advertised_scheme, "https");
    CU_ASSERT_STRING_EQUAL(wconf_worker_id(c, buf, sizeof buf), "worker1.example.com:8443");
    CU_ASSERT_STRING_EQUAL(wconf_rest_url(c, buf, sizeof buf), "https://worker1.example.com:8443");
    /* Too small a buffer: NULL, not a truncated id. */
    CU_ASSERT_PTR_NULL(wconf_worker_id(c, buf, 10));
    CU_ASSERT_PTR_NULL(wconf_rest_url(c, buf, strlen("https://worker1.example.com:8443")));
    CU_ASSERT_PTR_NOT_NULL(wconf_rest_url(c, buf, strlen("https://worker1.example.com:8443") + 1));
    wconf_destroy(c);

    c = with_listeners("http://[::1]:8083");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "::1");
    CU_ASSERT_STRING_EQUAL(c->advertised_host, "::1");
    CU_ASSERT_STRING_EQUAL(wconf_worker_id(c, buf, sizeof buf), "[::1]:8083");
    CU_ASSERT_STRING_EQUAL(wconf_rest_url(c, buf, sizeof buf), "http://[::1]:8083");
    wconf_destroy(c);

    c = with_listeners("HTTP://127.0.0.1:0");
    CU_ASSERT_STRING_EQUAL(c->listener_scheme, "http");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "127.0.0.1");
    CU_ASSERT_EQUAL(c->listener_port, 0);
    wconf_destroy(c);

    /* Wildcard hosts advertise the machine's name. */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *wild[] = {"http://0.0.0.0:9000", "http://[::]:9000", "http://:9000"};
    for (size_t i = 0; i < 3; i++) {
        c = with_listeners(wild[i]);
        CU_ASSERT_STRING_EQUAL(c->advertised_host, host);
        CU_ASSERT_EQUAL(c->advertised_port, 9000);
        wconf_destroy(c);
    }

    /* Only the first entry is used; the list is split like Kafka's LIST type. */
    c = with_listeners("  http://a:1 , https://b:2,http://c:3 ");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "a");
    CU_ASSERT_EQUAL(c->listener_port, 1);
    wconf_destroy(c);

    /* Later entries must still be valid. */
    expect_error("listeners", "http://a:1,ftp://b:2",
                 "Invalid value http://a:1,ftp://b:2 for configuration listeners: Listener protocol "
                 "must be either \"http\" or \"https\".");
    expect_error("listeners", "ftp://h:1",
                 "Invalid value ftp://h:1 for configuration listeners: Listener protocol must be "
                 "either \"http\" or \"https\".");
    const char *bad_format[] = {"http://h", "h:8083", "http://h:abc", "http://h:", "http://h:80x",
                                "http://[::1:8083", "http://[::1]8083", "http://h:8083/path",
                                "http://h h:80", "http://h:-1"};
    for (size_t i = 0; i < sizeof bad_format / sizeof bad_format[0]; i++) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Invalid value %s for configuration listeners: Listener doesn't have the right "
                 "format (protocol://hostname:port).",
                 bad_format[i]);
        expect_error("listeners", bad_format[i], msg);
    }
    expect_error("listeners", "http://h:65536",
                 "Invalid value http://h:65536 for configuration listeners: Listener port must be "
                 "between 0 and 65535.");
    expect_error("listeners", "",
                 "Invalid value  for configuration listeners: Invalid value for listeners, at least "
                 "one URL is expected, ex: http://localhost:8080,https://localhost:8443.");
    expect_error("listeners", "http://a:1,,http://b:2",
                 "Invalid value http://a:1,,http://b:2 for configuration listeners: Empty URL found "
                 "when parsing listeners list.");
}

static void test_rest_fallback_and_advertised(void)
{
    /* Deprecated rest.host.name / rest.port, used only without listeners. */
    props_t *p = base_with("rest.host.name", "oldhost");
    props_set(p, "rest.port", "9001");
    wconf_t *c = new_ok(p);
    CU_ASSERT_STRING_EQUAL(c->listener_scheme, "http");
    CU_ASSERT_STRING_EQUAL(c->listener_host, "oldhost");
    CU_ASSERT_EQUAL(c->listener_port, 9001);
    wconf_destroy(c);

    c = new_ok(base_with("rest.port", "9002"));
    CU_ASSERT_STRING_EQUAL(c->listener_host, "");
    CU_ASSERT_EQUAL(c->listener_port, 9002);
    wconf_destroy(c);

    p = base_with("rest.port", "9002");
    props_set(p, "listeners", "http://new:9003");
    c = new_ok(p);
    CU_ASSERT_STRING_EQUAL(c->listener_host, "new");
    CU_ASSERT_EQUAL(c->listener_port, 9003);
    wconf_destroy(c);

    expect_error("rest.port", "x", "Invalid value x for configuration rest.port: Not a number of type INT");

    /* rest.advertised.* override the listener. */
    p = base_with("listeners", "http://0.0.0.0:8083");
    props_set(p, "rest.advertised.host.name", " adv.example.com ");
    props_set(p, "rest.advertised.port", "18083");
    props_set(p, "rest.advertised.listener", "HTTPS");
    props_set(p, "zookeeper.set.acl", "false");
    c = new_ok(p);
    char buf[WCONF_URL_MAX];
    CU_ASSERT_STRING_EQUAL(c->advertised_host, "adv.example.com");
    CU_ASSERT_EQUAL(c->advertised_port, 18083);
    CU_ASSERT_STRING_EQUAL(c->advertised_scheme, "https");
    CU_ASSERT_STRING_EQUAL(wconf_worker_id(c, buf, sizeof buf), "adv.example.com:18083");
    CU_ASSERT_STRING_EQUAL(wconf_rest_url(c, buf, sizeof buf), "https://adv.example.com:18083");
    wconf_destroy(c);

    /* Host names are bounded, so WCONF_URL_MAX always fits the id and the URL. */
    char host[300];
    memset(host, 'h', 256);
    host[256] = '\0';
    ferr_t err;
    const char *keys[] = {"rest.advertised.host.name", "rest.host.name"};
    for (size_t i = 0; i < 2; i++) {
        p = base_with(keys[i], host);
        CU_ASSERT_PTR_NULL(wconf_new(p, &err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Host name must be at most 255 characters"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, keys[i]));
        props_destroy(p);
    }
    char url[400];
    snprintf(url, sizeof url, "https://%s:8083", host);
    p = base_with("listeners", url);
    CU_ASSERT_PTR_NULL(wconf_new(p, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "for configuration listeners: Host name must be at most 255"));
    props_destroy(p);
    host[255] = '\0';
    p = base_with("rest.advertised.host.name", host);
    props_set(p, "rest.advertised.port", "65535");
    props_set(p, "listeners", "https://[::1]:1");
    props_set(p, "zookeeper.set.acl", "false");
    c = new_ok(p);
    CU_ASSERT_PTR_NOT_NULL(wconf_worker_id(c, buf, sizeof buf));
    CU_ASSERT_PTR_NOT_NULL(wconf_rest_url(c, buf, sizeof buf));
    CU_ASSERT_EQUAL(strlen(buf), strlen("https://") + 255 + strlen(":65535"));
    wconf_destroy(c);

    expect_error("rest.advertised.listener", "ftp",
                 "Invalid value ftp for configuration rest.advertised.listener: Value must be either "
                 "\"http\" or \"https\"");
}

static void test_zookeeper_connect(void)
{
    wconf_t *c = new_ok(base_with("zookeeper.connect", "zk1:2181,zk2:2181,zk3:2181/ferry/prod"));
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "zk1:2181,zk2:2181,zk3:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "/ferry/prod");
    CU_ASSERT_STRING_EQUAL(c->zookeeper_connect, "zk1:2181,zk2:2181,zk3:2181/ferry/prod");
    wconf_destroy(c);

    c = new_ok(base_with("zookeeper.connect", " zk1:2181/ferry "));
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "zk1:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "/ferry");
    wconf_destroy(c);

    c = new_ok(base_with("zookeeper.connect", "zk1:2181/"));
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "zk1:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "");
    wconf_destroy(c);

    /* ZooKeeper's default port for a host without one (the C client needs every port) */
    c = new_ok(base_with("zookeeper.connect", "zk1"));
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "zk1:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "");
    wconf_destroy(c);
    c = new_ok(base_with("zookeeper.connect", "zk1,zk2:2182,[::1],[fe80::1]:2183,10.0.0.1/a/b"));
    CU_ASSERT_STRING_EQUAL(c->zk_hosts, "zk1:2181,zk2:2182,[::1]:2181,[fe80::1]:2183,10.0.0.1:2181");
    CU_ASSERT_STRING_EQUAL(c->zk_root, "/a/b");
    CU_ASSERT_STRING_EQUAL(c->zookeeper_connect, "zk1,zk2:2182,[::1],[fe80::1]:2183,10.0.0.1/a/b");
    wconf_destroy(c);

    /* the chroot follows the last host: ZooKeeper would take "/ferry,zk2:2181" for the path */
    expect_error("zookeeper.connect", "zk1:2181/ferry,zk2:2181",
                 "Invalid value zk1:2181/ferry,zk2:2181 for configuration zookeeper.connect: The chroot must "
                 "come after the last host (host1:2181,host2:2181/chroot): a ',' follows the first '/'");
    expect_error("zookeeper.connect", "zk1:2181,zk2:2181/a\001b",
                 "Invalid value zk1:2181,zk2:2181/a\001b for configuration zookeeper.connect: Invalid chroot path "
                 "(a control or reserved character)");
    const char *bad_port[] = {"zk1:", "zk1:0", "zk1:65536", "zk1:21x", "zk1:2181,zk2:-1"};
    for (size_t i = 0; i < 5; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "Invalid value %s for configuration zookeeper.connect: A ZooKeeper port must be "
                 "a number from 1 to 65535 (host:port)", bad_port[i]);
        expect_error("zookeeper.connect", bad_port[i], msg);
    }
    expect_error("zookeeper.connect", ":2181", "Invalid value :2181 for configuration zookeeper.connect: A ZooKeeper "
                 "host needs a name before its port");
    expect_error("zookeeper.connect", "[::1", "Invalid value [::1 for configuration zookeeper.connect: An IPv6 "
                 "ZooKeeper host must be written [address] or [address]:port");
    expect_error("zookeeper.connect", "[::1]2181", "Invalid value [::1]2181 for configuration zookeeper.connect: An "
                 "IPv6 ZooKeeper host must be written [address] or [address]:port");

    const char *bad_root[] = {"zk:2181/a/", "zk:2181//a", "zk:2181/a/../b", "zk:2181/."};
    for (size_t i = 0; i < 4; i++) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Invalid value %s for configuration zookeeper.connect: Invalid chroot path (empty, "
                 "\".\" or \"..\" component, or trailing '/')",
                 bad_root[i]);
        expect_error("zookeeper.connect", bad_root[i], msg);
    }
    expect_error("zookeeper.connect", "/chroot",
                 "Invalid value /chroot for configuration zookeeper.connect: No ZooKeeper host given "
                 "(expected host:port[,host:port][/chroot])");
    expect_error("zookeeper.connect", "a:1,,b:2",
                 "Invalid value a:1,,b:2 for configuration zookeeper.connect: Empty host found in "
                 "the ZooKeeper host list");
    expect_error("zookeeper.connect", "a:1, b:2",
                 "Invalid value a:1, b:2 for configuration zookeeper.connect: The ZooKeeper host "
                 "list must not contain whitespace");
}

static void test_converters_and_topics(void)
{
    const char *ok[] = {"org.apache.kafka.connect.converters.ByteArrayConverter",
                        "org.apache.kafka.connect.json.JsonConverter",
                        "org.apache.kafka.connect.storage.StringConverter"};
    for (size_t i = 0; i < 3; i++) {
        wconf_t *c = new_ok(base_with("value.converter", ok[i]));
        CU_ASSERT_STRING_EQUAL(c->value_converter, ok[i]);
        wconf_destroy(c);
    }
    expect_error("key.converter", "io.confluent.connect.avro.AvroConverter",
                 "Invalid value io.confluent.connect.avro.AvroConverter for configuration "
                 "key.converter: Class io.confluent.connect.avro.AvroConverter could not be found. "
                 "ferry supports org.apache.kafka.connect.converters.ByteArrayConverter, "
                 "org.apache.kafka.connect.json.JsonConverter and "
                 "org.apache.kafka.connect.storage.StringConverter");
    /* SimpleHeaderConverter is a header converter only. */
    ferr_t err;
    props_t *p = base_with("value.converter", "org.apache.kafka.connect.storage.SimpleHeaderConverter");
    CU_ASSERT_PTR_NULL(wconf_new(p, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "for configuration value.converter: Class "));
    props_destroy(p);
    p = base_with("header.converter", "com.example.Headers");
    CU_ASSERT_PTR_NULL(wconf_new(p, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Invalid value com.example.Headers for configuration "
                                           "header.converter: Class com.example.Headers could not be found."));
    props_destroy(p);

    expect_error("config.storage.topic", "connect configs",
                 "Invalid value connect configs for configuration config.storage.topic: Topic name "
                 "\"connect configs\" is illegal, it contains a character other than ASCII "
                 "alphanumerics, '.', '_' and '-'");
    expect_error("status.storage.topic", "..",
                 "Invalid value .. for configuration status.storage.topic: Topic name cannot be \".\" or \"..\"");
    char longname[300];
    memset(longname, 'a', 250);
    longname[250] = '\0';
    p = base_with("offset.storage.topic", longname);
    CU_ASSERT_PTR_NULL(wconf_new(p, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "can't be longer than 249 characters"));
    props_destroy(p);
    expect_error("offset.storage.topic", "connect-configs",
                 "Invalid value connect-configs for configuration offset.storage.topic: Must not be "
                 "the same topic as config.storage.topic");
    expect_error("status.storage.topic", "connect-offsets",
                 "Invalid value connect-offsets for configuration status.storage.topic: Must not be "
                 "the same topic as offset.storage.topic");
}

/* A file with @p len bytes of @p data under a fresh directory; returns its malloc'd path. */
static char *write_file(const char *name, const void *data, size_t len)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/wconf_testXXXXXX");
        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    }
    char *path = NULL;
    CU_ASSERT_FATAL(asprintf(&path, "%s/%s", dir, name) > 0);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

#define PEM_TEXT "Bag Attributes\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
static const unsigned char P12_BYTES[] = {0x30, 0x82, 0x0a, 0x01, 0x02, 0x01, 0x03};
static const unsigned char JKS_BYTES[] = {0xfe, 0xed, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x02};

static void test_passthrough(void)
{
    char *ts = write_file("ca.pem", PEM_TEXT, strlen(PEM_TEXT));
    props_t *p = base_with(NULL, NULL);
    const char *kv[][2] = {
        {"producer.acks", "all"},
        {"producer.compression.type", "lz4"},
        {"consumer.max.poll.records", "500"},
        {"admin.request.timeout.ms", "30000"},
        {"admin.listeners", "http://:8084"},
        {"admin.listeners.https.ssl.keystore.location", "/ks"},
        {"security.protocol", "SASL_SSL"},
        {"ssl.truststore.location", ts},
        {"sasl.mechanism", "PLAIN"},
        {"sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=u password=p;"},
        {"client.id", "w1"},
        {"producer.", "x"},
        {"plugin.path", "/usr/share/java"},
        {"some.unknown.key", "1"},
        {"key.converter.schemas.enable", "false"},
    };
    size_t n = sizeof kv / sizeof kv[0];
    for (size_t i = 0; i < n; i++)
        props_set(p, kv[i][0], kv[i][1]);
    wconf_t *c = new_ok(p);
    if (!c)
        return;
    CU_ASSERT_EQUAL(props_count(c->producer), 2);
    CU_ASSERT_STRING_EQUAL(props_key(c->producer, 0), "acks");
    CU_ASSERT_STRING_EQUAL(props_value(c->producer, 0), "all");
    CU_ASSERT_STRING_EQUAL(props_get(c->producer, "compression.type"), "lz4");
    CU_ASSERT_EQUAL(props_count(c->consumer), 1);
    CU_ASSERT_STRING_EQUAL(props_get(c->consumer, "max.poll.records"), "500");
    CU_ASSERT_EQUAL(props_count(c->admin), 1);
    CU_ASSERT_STRING_EQUAL(props_get(c->admin, "request.timeout.ms"), "30000");
    CU_ASSERT_PTR_NULL(props_get(c->admin, "listeners"));
    /* Java's keys, as librdkafka reads them */
    CU_ASSERT_EQUAL(props_count(c->common), 6);
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "security.protocol"), "SASL_SSL");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.ca.location"), ts);
    CU_ASSERT_PTR_NULL(props_get(c->common, "ssl.truststore.location"));
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "sasl.mechanism"), "PLAIN");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "sasl.username"), "u");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "sasl.password"), "p");
    CU_ASSERT_PTR_NULL(props_get(c->common, "sasl.jaas.config"));
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "client.id"), "w1");
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "ssl.ca.location"), "ssl.truststore.location");
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "sasl.password"), "sasl.jaas.config");
    CU_ASSERT_PTR_NULL(props_get(c->common, "group.id"));
    CU_ASSERT_PTR_NULL(props_get(c->common, "plugin.path"));
    CU_ASSERT_EQUAL(props_count(c->all), N_REQUIRED + n);
    CU_ASSERT_STRING_EQUAL(props_get(c->all, "some.unknown.key"), "1");
    CU_ASSERT_PTR_NOT_NULL(props_get(c->all, "sasl.jaas.config"));
    wconf_destroy(c);
    free(ts);
}

/* wconf_new() of the base config plus the NULL-terminated key, value pairs in @p kv. */
static wconf_t *with(const char *const *kv, ferr_t *err)
{
    props_t *p = base_with(NULL, NULL);
    for (size_t i = 0; kv[i]; i += 2)
        props_set(p, kv[i], kv[i + 1]);
    wconf_t *c = wconf_new(p, err);
    props_destroy(p);
    return c;
}

static void expect_with_error(const char *const *kv, const char *part)
{
    ferr_t err = {0};
    wconf_t *c = with(kv, &err);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(err.code, FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, part));
    if (!strstr(err.msg, part))
        fprintf(stderr, "\n  want part: %s\n  got: %s\n", part, err.msg);
    wconf_destroy(c);
}

/* Keystores and truststores (jclient.h): by content, by type, inherited types, conversions. */
static void test_java_stores(void)
{
    char *pem = write_file("store.pem", PEM_TEXT, strlen(PEM_TEXT));
    char *p12 = write_file("store.p12", P12_BYTES, sizeof P12_BYTES);
    char *jks = write_file("store.jks", JKS_BYTES, sizeof JKS_BYTES);
    char *junk = write_file("junk.bin", "hello", 5);
    ferr_t err = {0};

    const char *stores[] = {"ssl.keystore.location", p12, "ssl.keystore.password", "kpw", "ssl.key.password", "k2",
                            "producer.ssl.keystore.location", pem, "producer.ssl.keystore.password", "unused",
                            "consumer.ssl.keystore.location", jks, "consumer.ssl.keystore.type", "PKCS12",
                            "admin.ssl.truststore.location", pem, "admin.ssl.truststore.password", "tpw",
                            "ssl.endpoint.identification.algorithm", "", "ssl.truststore.certificates", "CA-PEM",
                            "ssl.keystore.certificate.chain", "CHAIN", "ssl.keystore.key", "KEY", NULL};
    /* the JKS file with type PKCS12: Java's PKCS12 type reads JKS, librdkafka does not */
    expect_with_error(stores, "consumer.ssl.keystore.location: a JKS keystore, which librdkafka cannot read; "
                              "convert it with `keytool -importkeystore -srckeystore ");
    stores[11] = p12;
    wconf_t *c = with(stores, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.keystore.location"), p12); /* PKCS12 as is */
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.keystore.password"), "kpw");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.key.password"), "k2");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.endpoint.identification.algorithm"), "none");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.ca.pem"), "CA-PEM");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.certificate.pem"), "CHAIN");
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "ssl.key.pem"), "KEY");
    CU_ASSERT_PTR_NULL(props_get(c->common, "ssl.keystore.key"));
    CU_ASSERT_STRING_EQUAL(props_get(c->producer, "ssl.certificate.location"), pem); /* PEM keystore */
    CU_ASSERT_STRING_EQUAL(props_get(c->producer, "ssl.key.location"), pem);
    CU_ASSERT_PTR_NULL(props_get(c->producer, "ssl.keystore.location"));
    CU_ASSERT_PTR_NULL(props_get(c->producer, "ssl.keystore.password"));
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "producer.ssl.keystore.password"), "");
    CU_ASSERT_STRING_EQUAL(props_get(c->consumer, "ssl.keystore.location"), p12);
    CU_ASSERT_STRING_EQUAL(props_get(c->admin, "ssl.ca.location"), pem);
    CU_ASSERT_PTR_NULL(props_get(c->admin, "ssl.truststore.password"));
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "admin.ssl.ca.location"), "admin.ssl.truststore.location");
    wconf_destroy(c);

    char msg[512];
    const char *jks_ts[] = {"ssl.truststore.location", jks, NULL};
    snprintf(msg, sizeof msg, "Invalid value %s for configuration ssl.truststore.location: a JKS truststore, which "
             "librdkafka cannot read; export its certificates with `keytool -list -rfc -keystore %s > ", jks, jks);
    expect_with_error(jks_ts, msg);
    const char *p12_ts[] = {"producer.ssl.truststore.location", p12, NULL};
    expect_with_error(p12_ts, "producer.ssl.truststore.location: a PKCS12 truststore, which librdkafka cannot read "
                              "(it takes CA certificates as PEM); export them with `openssl pkcs12 -in ");
    const char *jks_type[] = {"ssl.keystore.type", "JKS", "ssl.keystore.location", pem, NULL};
    expect_with_error(jks_type, "ssl.keystore.type is JKS, but the file holds a PEM store");
    /* a top-level type applies to a layer's store */
    const char *inherit[] = {"ssl.truststore.type", "PEM", "producer.ssl.truststore.location", p12, NULL};
    expect_with_error(inherit, "producer.ssl.truststore.location: ssl.truststore.type is PEM, but the file holds a "
                               "PKCS12 store");
    const char *bad_type[] = {"ssl.keystore.type", "BKS", "ssl.keystore.location", pem, NULL};
    expect_with_error(bad_type, "Invalid value BKS for configuration ssl.keystore.type: ferry's Kafka clients read "
                                "PKCS12 and PEM stores");
    const char *unknown[] = {"ssl.truststore.location", junk, NULL};
    expect_with_error(unknown, "the file is neither a PEM, a PKCS12 nor a JKS store");
    const char *missing[] = {"consumer.ssl.truststore.location", "/nonexistent/ca.pem", NULL};
    expect_with_error(missing, "Invalid value /nonexistent/ca.pem for configuration consumer.ssl.truststore.location: "
                               "cannot read the file: No such file or directory");
    free(pem);
    free(p12);
    free(jks);
    free(junk);
}

#define PLAIN_JAAS "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"Zq8pw\";"

/* sasl.jaas.config in each layer, against each client's sasl.mechanism and security.protocol. */
static void test_java_sasl(void)
{
    ferr_t err = {0};
    /* the mechanism may come from the layer, the JAAS config from the top */
    const char *ok[] = {"security.protocol", "SASL_SSL", "sasl.jaas.config", PLAIN_JAAS, "sasl.mechanism", "PLAIN",
                        "producer.sasl.mechanism", "SCRAM-SHA-256", "consumer.sasl.jaas.config",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                        "unsecuredLoginStringClaim_sub=\"svc\";",
                        "consumer.sasl.mechanism", "OAUTHBEARER", NULL};
    wconf_t *c = with(ok, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(props_get(c->common, "sasl.username"), "u");
    CU_ASSERT_STRING_EQUAL(props_get(c->consumer, "sasl.oauthbearer.config"), "principal=svc");
    CU_ASSERT_STRING_EQUAL(props_get(c->consumer, "enable.sasl.oauthbearer.unsecure.jwt"), "true");
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "consumer.sasl.oauthbearer.config"), "consumer.sasl.jaas.config");
    wconf_destroy(c);

    /* Kafka's default mechanism is GSSAPI */
    const char *no_mech[] = {"security.protocol", "SASL_PLAINTEXT", "sasl.jaas.config", PLAIN_JAAS, NULL};
    expect_with_error(no_mech, "Invalid value [hidden] for configuration sasl.jaas.config: sasl.mechanism is GSSAPI "
                               "(Kafka's default when it is not set), which PlainLoginModule cannot serve");
    /* a layer's mechanism that does not fit the top-level JAAS config names the layer */
    const char *layer_mech[] = {"security.protocol", "SASL_SSL", "sasl.jaas.config", PLAIN_JAAS, "sasl.mechanism",
                                "PLAIN", "admin.sasl.mechanism", "OAUTHBEARER", NULL};
    expect_with_error(layer_mech, "(for the clients configured by admin.*)");
    /* the source consumers get consumer.* only: its mechanism alone must fit */
    const char *src[] = {"consumer.security.protocol", "SASL_SSL", "consumer.sasl.jaas.config", PLAIN_JAAS,
                         "sasl.mechanism", "PLAIN", NULL};
    expect_with_error(src, "Invalid value [hidden] for configuration consumer.sasl.jaas.config: sasl.mechanism is GSSAPI");
    /* parse errors and refused modules name the key, never the value */
    const char *bad[] = {"security.protocol", "SASL_SSL", "sasl.mechanism", "PLAIN", "producer.sasl.jaas.config",
                         "org.apache.kafka.common.security.plain.PlainLoginModule required password=Zq8 pw;", NULL};
    expect_with_error(bad, "Invalid value [hidden] for configuration producer.sasl.jaas.config: Value not specified");
    c = with(bad, &err);
    CU_ASSERT_PTR_NULL(strstr(err.msg, "Zq8"));
    wconf_destroy(c);
    /* without SASL, Kafka never reads it: dropped, and said so */
    const char *plaintext[] = {"sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required;", NULL};
    c = with(plaintext, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NULL(props_get(c->common, "sasl.jaas.config"));
    CU_ASSERT_STRING_EQUAL(props_get(c->notes, "sasl.jaas.config"), "");
    wconf_destroy(c);
}

/* Typos, placeholders and ferry.log.level. */
static void test_mistakes(void)
{
    expect_error("bootstrap.server", "b:9092",
                 "The configuration 'bootstrap.server' isn't a known config; did you mean 'bootstrap.servers'?");
    expect_error("zookeeper.conect", "zk:2181",
                 "The configuration 'zookeeper.conect' isn't a known config; did you mean 'zookeeper.connect'?");
    expect_error("offset.flush.intervall.ms", "1000", "The configuration 'offset.flush.intervall.ms' isn't a known "
                 "config; did you mean 'offset.flush.interval.ms'?");
    expect_error("secuirty.protocol", "SSL",
                 "The configuration 'secuirty.protocol' isn't a known config; did you mean 'security.protocol'?");
    expect_error("prodcer.acks", "all",
                 "The configuration 'prodcer.acks' isn't a known config; did you mean 'producer.acks'?");
    expect_error("ferry.max.conectors", "5",
                 "The configuration 'ferry.max.conectors' isn't a known config; did you mean 'ferry.max.connectors'?");
    /* unknown keys far from every known one are only logged (log summary) */
    wconf_t *c = new_ok(base_with("confluent.license", "x"));
    wconf_destroy(c);
    c = new_ok(base_with("offset.storage.file.filename", "/tmp/x"));
    wconf_destroy(c);

    expect_error("ssl.key.password", "${file:/etc/ferry/secrets.properties:key}",
                 "Invalid value [hidden] for configuration ssl.key.password: ${...} is a config provider "
                 "placeholder, and ferry does not support config providers (config.providers): write the value "
                 "itself into the file");
    expect_error("rest.advertised.host.name", "${env:HOSTNAME}",
                 "Invalid value ${env:HOSTNAME} for configuration rest.advertised.host.name: ${...} is a config "
                 "provider placeholder, and ferry does not support config providers (config.providers): write the "
                 "value itself into the file");
    c = new_ok(base_with("plugin.path", "/opt/${not closed"));
    wconf_destroy(c);

    c = new_ok(base_with("ferry.log.level", " debug "));
    CU_ASSERT_EQUAL(c->log_levels[FLOG_M__COUNT], FLOG_DEBUG);
    CU_ASSERT_EQUAL(c->log_levels[FLOG_M_REST], -1);
    wconf_destroy(c);
    props_t *p = base_with("ferry.log.level.ferry.rest", "TRACE");
    props_set(p, "ferry.log.level.ferry.kafka", "WARN");
    c = new_ok(p);
    CU_ASSERT_EQUAL(c->log_levels[FLOG_M_REST], FLOG_TRACE);
    CU_ASSERT_EQUAL(c->log_levels[FLOG_M_KAFKA], FLOG_WARN);
    CU_ASSERT_EQUAL(c->log_levels[FLOG_M__COUNT], -1);
    wconf_destroy(c);
    expect_error("ferry.log.level", "LOUD",
                 "Invalid value LOUD for configuration ferry.log.level: String must be one of: ERROR, WARN, INFO, "
                 "DEBUG, TRACE");
    expect_error("ferry.log.level.ferry.rst", "INFO",
                 "Invalid configuration ferry.log.level.ferry.rst: ferry has no logger ferry.rst (did you mean "
                 "ferry.rest?); its loggers are ferry.worker, ferry.rest, ferry.store, ferry.connector, ferry.task, "
                 "ferry.coordinator, ferry.proto, ferry.kafka, root");
}

static void test_secrets(void)
{
    const char *secret[] = {"ssl.key.password", "ssl.keystore.password", "ssl.truststore.password",
                            "sasl.jaas.config", "producer.sasl.jaas.config",
                            "consumer.ssl.key.password", "sasl.oauthbearer.client.secret",
                            "basic.auth.user.info", "listeners.https.ssl.keystore.password",
                            "ssl.keystore.key", "ssl.key.pem", "ferry.api.secret.token",
                            "SASL.JAAS.CONFIG", "sasl.password", "admin.ssl.key.password"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        CU_ASSERT_EQUAL(wconf_is_secret(secret[i]), 1);
        if (!wconf_is_secret(secret[i]))
            fprintf(stderr, "\n  not secret: %s\n", secret[i]);
    }
    const char *plain[] = {"group.id", "ssl.truststore.location", "ssl.keystore.location",
                           "sasl.mechanism", "security.protocol", "bootstrap.servers",
                           "sasl.username", "key.converter", "ssl.key.location", ""};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        CU_ASSERT_EQUAL(wconf_is_secret(plain[i]), 0);
        if (wconf_is_secret(plain[i]))
            fprintf(stderr, "\n  secret: %s\n", plain[i]);
    }
}

/* Runs wconf_log_summary with stderr captured; returns the malloc'd output. */
static char *capture_summary(const wconf_t *c)
{
    char path[] = "/tmp/wconf_testXXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    wconf_log_summary(c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    CU_ASSERT_EQUAL(pread(fd, out, (size_t)len, 0), (ssize_t)len);
    close(fd);
    unlink(path);
    return out;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
        n++;
    return n;
}

static void test_log_summary(void)
{
    props_t *p = base_with("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required "
                                               "username=u password=\"Zq8s3cr3t\";");
    props_set(p, "security.protocol", "SASL_SSL");
    props_set(p, "sasl.mechanism", "PLAIN");
    props_set(p, "producer.ssl.key.password", "Zq8keypw");
    props_set(p, "producer.max.request.size", "1000");
    props_set(p, "some.unknown.key", "1");
    props_set(p, "plugin.path", "/opt/plugins");
    props_set(p, "ferry.extension", "x");
    props_set(p, "listeners", "http://:8083,https://:8443");
    props_set(p, "offset.flush.interval.ms", "10000");
    wconf_t *c = new_ok(p);
    if (!c)
        return;
    char *out = capture_summary(c);
    CU_ASSERT_PTR_NULL(strstr(out, "Zq8s3cr3t"));
    CU_ASSERT_PTR_NULL(strstr(out, "Zq8keypw"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sasl.jaas.config = [hidden]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "INFO  [worker] \tsasl.jaas.config = [hidden]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "producer.ssl.key.password = [hidden]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "group.id = connect-cluster"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "offset.flush.interval.ms = 10000"));
    /* defaults are shown too */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "offset.storage.partitions = 25"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bootstrap.servers = localhost:9092"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "listeners = http://:8083"));
    /* unknown keys are WARNs in Kafka's words; keys ferry uses (security.protocol) are not among them */
    CU_ASSERT_EQUAL(count_of(out, "WARN  [worker] The configuration 'some.unknown.key' was supplied but isn't a "
                                  "known config."), 1);
    CU_ASSERT_EQUAL(count_of(out, "WARN  [worker] The configuration 'ferry.extension' was supplied but isn't a "
                                  "known config."), 1);
    CU_ASSERT_EQUAL(count_of(out, "isn't a known config"), 2);
    CU_ASSERT_EQUAL(count_of(out, "WARN  [worker] The configuration 'producer.max.request.size' was supplied but "
                                  "librdkafka has no such property"), 1);
    CU_ASSERT_EQUAL(count_of(out, "librdkafka has no such property"), 1);
    if (count_of(out, "librdkafka has no such property") != 1)
        fprintf(stderr, "%s", out);
    CU_ASSERT_PTR_NULL(strstr(out, "ignoring unknown"));
    CU_ASSERT_EQUAL(count_of(out, "WARN  [worker] ignoring listener https://:8443"), 1);
    /* key order: bootstrap.servers before group.id before zookeeper.connect */
    const char *b = strstr(out, "bootstrap.servers ="), *g = strstr(out, "group.id ="),
               *z = strstr(out, "zookeeper.connect =");
    CU_ASSERT(b && g && z && b < g && g < z);
    free(out);
    wconf_destroy(c);
}

/* Runs wconf_describe into memory; returns the malloc'd text. */
static char *capture_describe(const wconf_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_FATAL(f != NULL);
    wconf_describe(c, f);
    fclose(f);
    /* a copy: gcc -O3 otherwise takes pointers into the result for pointers to &buf
     * (-Wdangling-pointer false positive) */
    char *out = strdup(buf);
    free(buf);
    return out;
}

/* The text after the first line that starts with @p title, up to the next blank line. */
static char *section(const char *out, const char *title)
{
    const char *s = strstr(out, title);
    if (!s)
        return strdup("");
    const char *end = strstr(s, "\n\n");
    return strndup(s, end ? (size_t)(end - s) : strlen(s));
}

static void test_describe(void)
{
    props_t *p = base_with("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required "
                                               "username=alice password=\"Zq8s3cr3t\";");
    props_set(p, "security.protocol", "SASL_SSL");
    props_set(p, "sasl.mechanism", "PLAIN");
    props_set(p, "ferry.log.level.ferry.task", "DEBUG");
    props_set(p, "producer.ssl.key.password", "Zq8keypw");
    props_set(p, "producer.max.request.size", "1000");
    props_set(p, "producer.compression.type", "lz4");
    props_set(p, "consumer.max.poll.records", "500");
    props_set(p, "admin.listeners", "http://:8084");
    props_set(p, "some.unknown.password", "Zq8unknown");
    props_set(p, "plugin.path", "/opt/plugins");
    props_set(p, "listeners", "http://10.0.0.5:8083,https://:8443");
    props_set(p, "zookeeper.connect", "zk1:2181,zk2:2181/prod");
    props_set(p, "offset.storage.partitions", "-1");
    props_set(p, "status.storage.replication.factor", "1");
    wconf_t *c = new_ok(p);
    if (!c)
        return;
    char *out = capture_describe(c);
    CU_ASSERT_PTR_NULL(strstr(out, "Zq8"));
    char *dst = section(out, "Destination cluster");
    CU_ASSERT_PTR_NOT_NULL(strstr(dst, "bootstrap.servers                  localhost:9092"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dst, "security.protocol                  SASL_SSL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dst, "sasl.username                      alice (from sasl.jaas.config)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dst, "sasl.password                      [hidden] (from sasl.jaas.config)\n"));
    char *st = section(out, "Group and storage topics");
    CU_ASSERT_PTR_NOT_NULL(strstr(st, "connect-configs (1 partition, replication factor 3)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st, "connect-offsets (the broker's default number of partitions, "
                                      "replication factor 3)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st, "connect-status (5 partitions, replication factor 1)"));
    char *rest = section(out, "REST API");
    CU_ASSERT_PTR_NOT_NULL(strstr(rest, "http://10.0.0.5:8083 (10.0.0.5, port 8083)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rest, "not served                         https://:8443"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rest, "http://10.0.0.5:8083 (other workers forward requests "
                                        "there; rest.advertised.host.name not set: the "
                                        "listener's host)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rest, "worker id                          10.0.0.5:8083"));
    char *zk = section(out, "ZooKeeper");
    CU_ASSERT_PTR_NOT_NULL(strstr(zk, "hosts                              zk1:2181,zk2:2181\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(zk, "chroot                             /prod\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(zk, "group path                         /prod/ferry/connect-cluster"));
    char *logs = section(out, "Logging");
    CU_ASSERT_PTR_NOT_NULL(strstr(logs, "ferry.log.level                    INFO\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logs, "ferry.log.level.ferry.task         DEBUG"));
    free(logs);
    char *prod = section(out, "Passed to the producers");
    CU_ASSERT_PTR_NOT_NULL(strstr(prod, "compression.type                   lz4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(prod, "max.request.size                   1000 (not a librdkafka property: no effect)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(prod, "ssl.key.password                   [hidden]"));
    char *cons = section(out, "Passed to the consumers");
    CU_ASSERT_PTR_NOT_NULL(strstr(cons, "max.poll.records                   500"));
    char *adm = section(out, "Passed to the admin clients");
    CU_ASSERT_PTR_NOT_NULL(strstr(adm, "(none)"));
    char *noeffect = section(out, "Accepted without effect");
    CU_ASSERT_PTR_NOT_NULL(strstr(noeffect, "plugin.path                        /opt/plugins"));
    CU_ASSERT_PTR_NOT_NULL(strstr(noeffect, "admin.listeners                    http://:8084"));
    CU_ASSERT_PTR_NULL(strstr(noeffect, "group.id"));
    CU_ASSERT_PTR_NULL(strstr(noeffect, "producer."));
    char *unknown = section(out, "Ignored (unknown keys)");
    CU_ASSERT_PTR_NOT_NULL(strstr(unknown, "some.unknown.password              [hidden]"));
    CU_ASSERT_PTR_NULL(strstr(unknown, "plugin.path"));
    char *all[] = {dst, st, rest, zk, prod, cons, adm, noeffect, unknown};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(out);
    wconf_destroy(c);

    /* The deprecated rest.host.name/rest.port are used, not listed as without effect. */
    p = base_with("rest.port", "8090");
    props_set(p, "rest.advertised.host.name", "node1.example.com");
    c = new_ok(p);
    out = capture_describe(c);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "http://:8090 (all interfaces, port 8090) from the deprecated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "http://node1.example.com:8090 (other workers forward "
                                       "requests there)\n"));
    noeffect = section(out, "Accepted without effect");
    CU_ASSERT_STRING_EQUAL(noeffect, "Accepted without effect in ferry\n  (none)");
    free(noeffect);
    free(out);
    wconf_destroy(c);
}

/* connector.client.config.override.policy (+ KIP-1188's allow-list), inter.worker.* and limits. */
static void test_security_keys(void)
{
    wconf_t *c = new_ok(base_with(NULL, NULL));
    CU_ASSERT_EQUAL(c->client_policy.kind, CPOLICY_ALL);
    CU_ASSERT_TRUE(c->isig_enabled);
    CU_ASSERT_STRING_EQUAL(c->isig_algorithm, "HmacSHA256");
    CU_ASSERT_STRING_EQUAL(c->isig_key_algorithm, "HmacSHA256");
    CU_ASSERT_EQUAL(c->isig_key_bits, 256);
    CU_ASSERT_EQUAL(c->isig_key_ttl_ms, 3600000);
    CU_ASSERT_STRING_EQUAL(c->isig_verify[0], "HmacSHA256");
    CU_ASSERT_PTR_NULL(c->isig_verify[1]);
    CU_ASSERT_EQUAL(c->max_connectors, 1000);
    CU_ASSERT_EQUAL(c->max_tasks_per_worker, 256);
    wconf_destroy(c);

    props_t *p = base_with("connector.client.config.override.policy", "Allowlist");
    props_set(p, "connector.client.config.override.allowlist", " linger.ms , batch.size,,");
    c = new_ok(p);
    CU_ASSERT_EQUAL(c->client_policy.kind, CPOLICY_ALLOWLIST);
    CU_ASSERT_STRING_EQUAL(c->client_policy.allow[0], "linger.ms");
    CU_ASSERT_STRING_EQUAL(c->client_policy.allow[1], "batch.size");
    CU_ASSERT_PTR_NULL(c->client_policy.allow[2]);
    wconf_destroy(c);
    c = new_ok(base_with("connector.client.config.override.policy",
                         "org.apache.kafka.connect.connector.policy.NoneConnectorClientConfigOverridePolicy"));
    CU_ASSERT_EQUAL(c->client_policy.kind, CPOLICY_NONE);
    wconf_destroy(c);
    expect_error("connector.client.config.override.policy", "Everything",
                 "Invalid value Everything for configuration connector.client.config.override.policy: Class could "
                 "not be found: ferry's policies are None, Principal, All and Allowlist (KIP-1188)");

    p = base_with("inter.worker.signature.algorithm", "HmacSHA512");
    props_set(p, "inter.worker.verification.algorithms", "HmacSHA256,HmacSHA512");
    props_set(p, "inter.worker.key.size", "512");
    c = new_ok(p);
    CU_ASSERT_STRING_EQUAL(c->isig_algorithm, "HmacSHA512");
    CU_ASSERT_EQUAL(c->isig_key_bits, 512);
    wconf_destroy(c);
    expect_error("inter.worker.signature.algorithm", "HmacSHA512",
                 "Invalid value HmacSHA512 for configuration inter.worker.signature.algorithm: Signature algorithm "
                 "must be present in inter.worker.verification.algorithms list");
    expect_error("inter.worker.verification.algorithms", " , ",
                 "Invalid value  ,  for configuration inter.worker.verification.algorithms: At least one signature "
                 "verification algorithm must be provided");
    expect_error("inter.worker.key.generation.algorithm", "DES",
                 "Invalid value DES for configuration inter.worker.key.generation.algorithm: the algorithm is not "
                 "supported by this worker; the supported algorithms are: HmacSHA1, HmacSHA224, HmacSHA256, "
                 "HmacSHA384, HmacSHA512");
    expect_error("inter.worker.key.size", "100",
                 "Invalid value 100 for configuration inter.worker.key.size: Key size must be a multiple of 8 bits");
    expect_error("inter.worker.key.ttl.ms", "-1",
                 "Invalid value -1 for configuration inter.worker.key.ttl.ms: Value must be at least 0");
    expect_error("connect.protocol", "fancy",
                 "Invalid value fancy for configuration connect.protocol: String must be one of (case "
                 "insensitive): EAGER, COMPATIBLE, SESSIONED");
    c = new_ok(base_with("connect.protocol", "compatible"));
    CU_ASSERT_FALSE(c->isig_enabled);
    wconf_destroy(c);
    expect_error("ferry.max.connectors", "0",
                 "Invalid value 0 for configuration ferry.max.connectors: Value must be at least 1");
    expect_error("ferry.max.tasks.per.worker", "x",
                 "Invalid value x for configuration ferry.max.tasks.per.worker: Not a number of type INT");
}

/* Basic auth or HTTPS without ZooKeeper ACLs: refused unless turned off explicitly; on by
 * default once the credentials are there. */
static void test_zk_acl_required(void)
{
    static const char basic[] = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension";
    props_t *p = base_with("rest.extension.classes", basic);
    ferr_t err = {0};
    wconf_t *c = wconf_new(p, &err);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Missing configuration zookeeper.set.acl: with basic authentication on"));
    props_destroy(p);
    p = base_with("listeners", "https://:8443");
    CU_ASSERT_PTR_NULL(wconf_new(p, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "with HTTPS on"));
    props_set(p, "zookeeper.set.acl", "false");
    c = new_ok(p);
    CU_ASSERT_FALSE(c->zk_set_acl);
    wconf_destroy(c);
    p = base_with("rest.extension.classes", basic);
    props_set(p, "zookeeper.digest.username", "ferry");
    props_set(p, "zookeeper.digest.password", "pw");
    c = new_ok(p);
    CU_ASSERT_TRUE(c->zk_set_acl);
    wconf_destroy(c);
    c = new_ok(base_with(NULL, NULL)); /* plain http, no auth: nothing required */
    CU_ASSERT_FALSE(c->zk_set_acl);
    wconf_destroy(c);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"security keys (override policy, inter.worker.*, limits)", test_security_keys},
        {"ZooKeeper ACLs required with basic auth or HTTPS", test_zk_acl_required},
        {"defaults", test_defaults},
        {"explicit values", test_explicit_values},
        {"missing required", test_missing_required},
        {"invalid numbers", test_invalid_numbers},
        {"exactly.once.source.support", test_exactly_once_source_support},
        {"listeners", test_listeners},
        {"rest fallback and advertised", test_rest_fallback_and_advertised},
        {"zookeeper.connect", test_zookeeper_connect},
        {"converters and topics", test_converters_and_topics},
        {"passthrough", test_passthrough},
        {"Java keystores and truststores", test_java_stores},
        {"sasl.jaas.config per client", test_java_sasl},
        {"typos, placeholders, ferry.log.level", test_mistakes},
        {"secrets", test_secrets},
        {"log summary", test_log_summary},
        {"describe (--check)", test_describe},
    };
    return cu_add_tests("wconf", tests, sizeof tests / sizeof tests[0]);
}
