/* Unit tests for worker/repl: the pure functions of the EMRReplicatorSourceConnector —
 * class-name matching, topic renaming, topic selection, the split of source partitions into
 * tasks (balance, completeness, stability across changes, a fixed-seed random property check
 * and a 1000-partition case), config validation (error counts and the ConfigInfos shape) and
 * the task.partitions parser. */
#include "worker/repl.h"

#include <CUnit/Basic.h>

#include "tests/unit/cu.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ----------------------------------------------------------------------- */

#define BYTE_ARRAY "org.apache.kafka.connect.converters.ByteArrayConverter"

/* The seed connector config (tests/integration/ferrytest.py seed_connector()), plus its name. */
static json_t *seed_config(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", "connect-test",
                     "connector.class", "EMRReplicatorSourceConnector", "key.converter", BYTE_ARRAY,
                     "value.converter", BYTE_ARRAY, "src.kafka.bootstrap.servers", "127.0.0.1:9092",
                     "src.zookeeper.connect", "127.0.0.1:2181", "dest.zookeeper.connect",
                     "127.0.0.1:2181", "topic.whitelist", "connect", "topic.rename.format",
                     "connect.replica", "src.kafka.max.poll.records", "300");
}

static void set(json_t *cfg, const char *k, const char *v)
{
    if (v)
        json_object_set_new(cfg, k, json_string(v));
    else
        json_object_del(cfg, k);
}

/* Errors of one key in a ConfigInfos document (NULL if the key is not listed). */
static json_t *errors_of(json_t *infos, const char *key)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(infos, "configs"), i, c) {
        if (!strcmp(json_string_value(json_object_get(json_object_get(c, "definition"), "name")) ?: "",
                    key))
            return json_object_get(json_object_get(c, "value"), "errors");
    }
    return NULL;
}

/* Validates and checks: the return value, error_count and the number of errors listed in the
 * configs all equal `want`; if `key` is given, that key carries exactly `want` errors. */
static void expect_errors_wc(json_t *cfg, const wconf_t *wc, int want, const char *key)
{
    json_t *infos = NULL;
    char *msgs = NULL;
    int n = repl_validate(cfg, wc, &infos, &msgs);
    CU_ASSERT_EQUAL(n, want);
    CU_ASSERT_PTR_NOT_NULL_FATAL(infos);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(infos, "error_count")), want);
    int listed = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(infos, "configs"), i, c)
        listed += (int)json_array_size(json_object_get(json_object_get(c, "value"), "errors"));
    CU_ASSERT_EQUAL(listed, want);
    if (key) {
        json_t *errs = errors_of(infos, key);
        CU_ASSERT_PTR_NOT_NULL(errs);
        CU_ASSERT_EQUAL(json_array_size(errs), (size_t)want);
        CU_ASSERT_PTR_NOT_NULL(msgs);
        /* the 400 message lists the same errors as the ConfigInfos document */
        size_t j;
        json_t *e;
        json_array_foreach(errs, j, e) CU_ASSERT_PTR_NOT_NULL(strstr(msgs ?: "", json_string_value(e) ?: "?"));
    }
    if (n != want) {
        fprintf(stderr, "\n  expected %d error(s), got %d:\n%s", want, n, msgs ? msgs : "");
    }
    /* one message line per error */
    int lines = 0;
    for (const char *p = msgs; p && *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, want);
    free(msgs);
    json_decref(infos);
}

static void expect_errors(json_t *cfg, int want, const char *key)
{
    expect_errors_wc(cfg, NULL, want, key);
}

/* Number of comma-separated entries in a task.partitions string ("" has none). */
static size_t nparts_of(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* Checks the invariants of a split of `topics`: at most tasks_max tasks (exactly
 * min(total, tasks_max)), sizes differ by at most one, every partition exactly once, every
 * string parses. Returns the total. */
static size_t check_split(const json_t *topics, const json_t *split, int tasks_max)
{
    size_t total = 0;
    const char *t;
    json_t *n;
    json_object_foreach((json_t *)topics, t, n) total += (size_t)json_integer_value(n);
    size_t want_tasks = total < (size_t)tasks_max ? total : (size_t)tasks_max;
    CU_ASSERT_TRUE_FATAL(json_is_array(split));
    CU_ASSERT_EQUAL(json_array_size(split), want_tasks);
    CU_ASSERT(json_array_size(split) <= (size_t)tasks_max);
    json_t *seen = json_object();
    size_t min = SIZE_MAX, max = 0, sum = 0, dups = 0, unknown = 0, i;
    json_t *s;
    json_array_foreach(split, i, s) {
        CU_ASSERT_TRUE(json_is_string(s));
        json_t *parts = repl_parse_partitions(json_string_value(s));
        CU_ASSERT_PTR_NOT_NULL_FATAL(parts);
        size_t k = json_array_size(parts);
        CU_ASSERT_EQUAL(k, nparts_of(json_string_value(s)));
        min = k < min ? k : min;
        max = k > max ? k : max;
        sum += k;
        size_t j;
        json_t *pv;
        json_array_foreach(parts, j, pv) {
            const char *topic = json_string_value(json_array_get(pv, 0));
            json_int_t p = json_integer_value(json_array_get(pv, 1));
            json_t *cnt = json_object_get(topics, topic);
            if (!cnt || p >= json_integer_value(cnt))
                unknown++;
            char key[512];
            snprintf(key, sizeof key, "%s:%lld", topic, (long long)p);
            if (json_object_get(seen, key))
                dups++;
            json_object_set_new(seen, key, json_true());
        }
        json_decref(parts);
    }
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(unknown, 0);
    CU_ASSERT_EQUAL(sum, total);
    CU_ASSERT_EQUAL(json_object_size(seen), total);
    if (want_tasks)
        CU_ASSERT(max - min <= 1);
    json_decref(seen);
    return total;
}

static json_t *prev_of(const json_t *split)
{
    json_t *cfg = seed_config();
    json_t *tc = repl_task_configs(cfg, split);
    json_decref(cfg);
    return tc;
}

/* 1 if every entry of `old` (comma list) is in `now` at the same position (prefix). */
static int is_prefix_list(const char *old, const char *now)
{
    size_t l = strlen(old);
    if (!l)
        return 1;
    return !strncmp(old, now, l) && (now[l] == '\0' || now[l] == ',');
}

/* ---- repl_class_matches ------------------------------------------------------------- */

static void test_class_matches(void)
{
    CU_ASSERT_TRUE(repl_class_matches("EMRReplicatorSourceConnector"));
    CU_ASSERT_TRUE(repl_class_matches("EMRReplicatorSource"));
    CU_ASSERT_TRUE(repl_class_matches("com.amazonaws.emr.replicator.EMRReplicatorSourceConnector"));
    CU_ASSERT_TRUE(repl_class_matches("x.EMRReplicatorSourceConnector"));
    CU_ASSERT_TRUE(repl_class_matches("a.b.c.EMRReplicatorSource"));

    CU_ASSERT_FALSE(repl_class_matches(NULL));
    CU_ASSERT_FALSE(repl_class_matches(""));
    CU_ASSERT_FALSE(repl_class_matches("..EMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches(".EMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("com..EMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicatorSourceConnector."));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicatorSource."));
    CU_ASSERT_FALSE(repl_class_matches("com.x.EMRReplicatorSourceConnector."));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicator"));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicatorSourceConnectorX"));
    CU_ASSERT_FALSE(repl_class_matches("XEMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("emrreplicatorsourceconnector"));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicatorSourceTask"));
    CU_ASSERT_FALSE(repl_class_matches("org.apache.kafka.connect.file.FileStreamSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("org.apache.kafka.connect.mirror.MirrorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("EMRReplicatorSourceConnector.Foo"));
}

/* An empty package segment inside the prefix ("a..b.X") is as malformed as a leading "..X". */
static void test_class_matches_empty_segment(void)
{
    CU_ASSERT_FALSE(repl_class_matches("com..amazonaws.EMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches("..com.EMRReplicatorSourceConnector"));
    CU_ASSERT_FALSE(repl_class_matches(".com.EMRReplicatorSource"));
}

/* ---- repl_rename -------------------------------------------------------------------- */

static void check_rename(const char *fmt, const char *topic, const char *want)
{
    char *got = repl_rename(fmt, topic);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void test_rename(void)
{
    check_rename("${topic}.replica", "connect", "connect.replica");
    check_rename("mirror.${topic}", "orders.eu", "mirror.orders.eu");
    check_rename("${topic}", "t", "t");
    check_rename("${topic}-${topic}", "ab", "ab-ab");
    check_rename("x${topic}y${topic}z", "T", "xTyTz");
    check_rename("connect.replica", "connect", "connect.replica"); /* literal */
    check_rename("${topic", "t", "${topic");                      /* not a placeholder */
    check_rename("$topic", "t", "$topic");
    check_rename("${TOPIC}", "t", "${TOPIC}");
    check_rename("${topic}", "", "");
    /* a long topic, several times: no truncation */
    char longt[300], want[1000];
    memset(longt, 'q', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    snprintf(want, sizeof want, "%s/%s/%s", longt, longt, longt);
    check_rename("${topic}/${topic}/${topic}", longt, want);
    /* a topic containing the placeholder text is substituted once, not recursively */
    check_rename("${topic}.r", "${topic}", "${topic}.r");
}

/* ---- repl_select -------------------------------------------------------------------- */

static repl_select_t *sel(const char *white, const char *regex, const char *black)
{
    json_t *cfg = seed_config();
    set(cfg, "topic.whitelist", white);
    set(cfg, "topic.regex", regex);
    set(cfg, "topic.blacklist", black);
    ferr_t err = {0};
    repl_select_t *s = repl_select_new(cfg, &err);
    json_decref(cfg);
    return s;
}

static void test_select_whitelist(void)
{
    repl_select_t *s = sel(" a , b,c ,, d", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "a"));
    CU_ASSERT_TRUE(repl_select_match(s, "b"));
    CU_ASSERT_TRUE(repl_select_match(s, "c"));
    CU_ASSERT_TRUE(repl_select_match(s, "d"));
    CU_ASSERT_FALSE(repl_select_match(s, " a "));
    CU_ASSERT_FALSE(repl_select_match(s, "ab"));
    CU_ASSERT_FALSE(repl_select_match(s, "e"));
    CU_ASSERT_FALSE(repl_select_match(s, ""));
    repl_select_destroy(s);
    /* whitelist entries are names, not patterns */
    s = sel("orders.*", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "orders.*"));
    CU_ASSERT_FALSE(repl_select_match(s, "orders.x"));
    repl_select_destroy(s);
    repl_select_destroy(NULL);
}

static void test_select_regex(void)
{
    repl_select_t *s = sel(NULL, "orders\\..*", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "orders.eu"));
    CU_ASSERT_TRUE(repl_select_match(s, "orders."));
    CU_ASSERT_FALSE(repl_select_match(s, "orders"));
    CU_ASSERT_FALSE(repl_select_match(s, "ordersXeu"));
    CU_ASSERT_FALSE(repl_select_match(s, "old.orders.eu")); /* whole name, not a substring */
    CU_ASSERT_FALSE(repl_select_match(s, "xorders.eu"));
    repl_select_destroy(s);
    /* alternation is anchored as a whole: ^(a|b)$, not ^a|b$ */
    s = sel(NULL, "a|b", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "a"));
    CU_ASSERT_TRUE(repl_select_match(s, "b"));
    CU_ASSERT_FALSE(repl_select_match(s, "ab"));
    CU_ASSERT_FALSE(repl_select_match(s, "ba"));
    CU_ASSERT_FALSE(repl_select_match(s, "xb"));
    CU_ASSERT_FALSE(repl_select_match(s, "ax"));
    repl_select_destroy(s);
    /* whitelist and regex together: union */
    s = sel("x", "t[0-9]+", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "x"));
    CU_ASSERT_TRUE(repl_select_match(s, "t12"));
    CU_ASSERT_FALSE(repl_select_match(s, "t"));
    CU_ASSERT_FALSE(repl_select_match(s, "y"));
    repl_select_destroy(s);
    /* an invalid regex: NULL and an error */
    json_t *cfg = seed_config();
    set(cfg, "topic.regex", "orders\\.(");
    ferr_t err = {0};
    CU_ASSERT_PTR_NULL(repl_select_new(cfg, &err));
    CU_ASSERT_NOT_EQUAL(err.code, FERR_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "orders\\.("));
    json_decref(cfg);
}

static void test_select_blacklist_and_internal(void)
{
    repl_select_t *s = sel("a,b,c", NULL, "b, c");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "a"));
    CU_ASSERT_FALSE(repl_select_match(s, "b"));
    CU_ASSERT_FALSE(repl_select_match(s, "c"));
    repl_select_destroy(s);
    s = sel(NULL, "orders\\..*", "orders.secret");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(repl_select_match(s, "orders.eu"));
    CU_ASSERT_FALSE(repl_select_match(s, "orders.secret"));
    CU_ASSERT_TRUE(repl_select_match(s, "orders.secret2")); /* blacklist is exact names */
    repl_select_destroy(s);
    /* internal topics are never copied, even when named or matched */
    s = sel("_schemas,__consumer_offsets,ok", ".*", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_FALSE(repl_select_match(s, "_schemas"));
    CU_ASSERT_FALSE(repl_select_match(s, "__consumer_offsets"));
    CU_ASSERT_FALSE(repl_select_match(s, "__transaction_state"));
    CU_ASSERT_FALSE(repl_select_match(s, "_x"));
    CU_ASSERT_TRUE(repl_select_match(s, "ok"));
    CU_ASSERT_TRUE(repl_select_match(s, "anything"));
    CU_ASSERT_TRUE(repl_select_match(s, "a_b"));
    repl_select_destroy(s);
}

/* ---- repl_split --------------------------------------------------------------------- */

static void test_split_basic(void)
{
    json_t *topics = json_pack("{s:i,s:i,s:i}", "a", 2, "b", 4, "c", 8);
    for (int tm = 1; tm <= 20; tm++) {
        json_t *split = repl_split(topics, NULL, tm);
        CU_ASSERT_EQUAL(check_split(topics, split, tm), 14);
        json_decref(split);
    }
    /* one task holds everything */
    json_t *one = repl_split(topics, NULL, 1);
    CU_ASSERT_EQUAL(json_array_size(one), 1);
    CU_ASSERT_EQUAL(nparts_of(json_string_value(json_array_get(one, 0))), 14);
    json_decref(one);
    /* more tasks than partitions: one partition per task */
    json_t *many = repl_split(topics, NULL, 100);
    CU_ASSERT_EQUAL(json_array_size(many), 14);
    size_t i;
    json_t *s;
    json_array_foreach(many, i, s) CU_ASSERT_EQUAL(nparts_of(json_string_value(s)), 1);
    json_decref(many);
    json_decref(topics);
}

static void test_split_zero(void)
{
    json_t *empty = json_object();
    json_t *split = repl_split(empty, NULL, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(split);
    CU_ASSERT_EQUAL(json_array_size(split), 0);
    json_decref(split);
    /* a topic with zero partitions contributes nothing */
    json_t *zero = json_pack("{s:i}", "z", 0);
    split = repl_split(zero, NULL, 4);
    CU_ASSERT_EQUAL(json_array_size(split), 0);
    json_decref(split);
    /* and everything disappearing from a previous split yields zero tasks too */
    json_t *topics = json_pack("{s:i}", "a", 6);
    json_t *s1 = repl_split(topics, NULL, 3);
    json_t *prev = prev_of(s1);
    split = repl_split(empty, prev, 3);
    CU_ASSERT_EQUAL(json_array_size(split), 0);
    json_decref(split);
    json_decref(prev);
    json_decref(s1);
    json_decref(topics);
    json_decref(zero);
    json_decref(empty);
}

/* The same input gives the same split (every worker computes the same task configs). */
static void test_split_deterministic(void)
{
    json_t *topics = json_pack("{s:i,s:i,s:i}", "x", 5, "y", 3, "z", 7);
    json_t *a = repl_split(topics, NULL, 4), *b = repl_split(topics, NULL, 4);
    CU_ASSERT_TRUE(json_equal(a, b));
    /* and splitting again with itself as the previous split changes nothing */
    json_t *prev = prev_of(a);
    json_t *c = repl_split(topics, prev, 4);
    CU_ASSERT_TRUE(json_equal(a, c));
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(prev);
    json_decref(topics);
}

/* Adding a topic changes only the tasks that receive its partitions; the others keep their
 * partition strings byte for byte, and the receivers keep theirs as a prefix. */
static void check_add_stable(json_t *topics, int tasks_max, const char *newtopic, int newparts)
{
    json_t *s1 = repl_split(topics, NULL, tasks_max);
    check_split(topics, s1, tasks_max);
    json_t *prev = prev_of(s1);
    json_t *topics2 = json_deep_copy(topics);
    json_object_set_new(topics2, newtopic, json_integer(newparts));
    json_t *s2 = repl_split(topics2, prev, tasks_max);
    check_split(topics2, s2, tasks_max);
    size_t n1 = json_array_size(s1), n2 = json_array_size(s2);
    CU_ASSERT(n2 >= n1);
    size_t changed = 0, i;
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s:", newtopic);
    for (i = 0; i < n1 && i < n2; i++) {
        const char *o = json_string_value(json_array_get(s1, i));
        const char *n = json_string_value(json_array_get(s2, i));
        if (!strcmp(o, n))
            continue;
        changed++;
        /* a changed task kept what it had and received only partitions of the new topic */
        CU_ASSERT_TRUE(is_prefix_list(o, n));
        json_t *parts = repl_parse_partitions(n);
        size_t j;
        json_t *pv;
        json_array_foreach(parts, j, pv) {
            if (j < nparts_of(o))
                continue;
            CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(pv, 0)), newtopic);
        }
        json_decref(parts);
    }
    /* at most one changed task per new partition */
    CU_ASSERT(changed <= (size_t)newparts);
    if (n1 == (size_t)tasks_max && (size_t)newparts < n1)
        CU_ASSERT(changed < n1); /* some task must be untouched */
    json_decref(s1);
    json_decref(s2);
    json_decref(prev);
    json_decref(topics2);
}

static void test_split_stable_add_topic(void)
{
    json_t *t1 = json_pack("{s:i}", "connect", 8);
    check_add_stable(t1, 2, "orders.new", 1);
    check_add_stable(t1, 3, "orders.new", 1);
    check_add_stable(t1, 3, "orders.new", 2);
    check_add_stable(t1, 4, "orders.new", 4);
    check_add_stable(t1, 8, "orders.new", 3);
    check_add_stable(t1, 16, "orders.new", 3); /* more tasks allowed than partitions */
    json_t *t2 = json_pack("{s:i,s:i,s:i}", "a", 2, "b", 4, "c", 8);
    for (int tm = 1; tm <= 15; tm++)
        for (int np = 1; np <= 9; np++)
            check_add_stable(t2, tm, "d", np);
    json_decref(t1);
    json_decref(t2);
}

/* The concrete case the integration test relies on: one topic, tasks.max=2, a second topic
 * with one partition appears: task 0 keeps its string exactly. */
static void test_split_stable_concrete(void)
{
    json_t *t1 = json_pack("{s:i}", "orders.a", 4);
    json_t *s1 = repl_split(t1, NULL, 2);
    CU_ASSERT_EQUAL(json_array_size(s1), 2);
    json_t *prev = prev_of(s1);
    json_t *t2 = json_pack("{s:i,s:i}", "orders.a", 4, "orders.b", 1);
    json_t *s2 = repl_split(t2, prev, 2);
    CU_ASSERT_EQUAL(json_array_size(s2), 2);
    int same0 = !strcmp(json_string_value(json_array_get(s1, 0)), json_string_value(json_array_get(s2, 0)));
    int same1 = !strcmp(json_string_value(json_array_get(s1, 1)), json_string_value(json_array_get(s2, 1)));
    CU_ASSERT_EQUAL(same0 + same1, 1); /* exactly one task receives orders.b:0 */
    json_decref(s1);
    json_decref(s2);
    json_decref(prev);
    json_decref(t1);
    json_decref(t2);
}

/* Lowering tasks.max: fewer tasks, still balanced and complete; surviving tasks keep what
 * they had (as a prefix); raising it: the old tasks only lose partitions. */
static void test_split_tasks_max_change(void)
{
    json_t *topics = json_pack("{s:i,s:i}", "a", 8, "b", 5);
    json_t *s4 = repl_split(topics, NULL, 4);
    check_split(topics, s4, 4);
    json_t *prev = prev_of(s4);
    json_t *s2 = repl_split(topics, prev, 2);
    check_split(topics, s2, 2);
    for (size_t i = 0; i < 2; i++)
        CU_ASSERT_TRUE(is_prefix_list(json_string_value(json_array_get(s4, i)),
                                      json_string_value(json_array_get(s2, i))));
    json_t *prev2 = prev_of(s2);
    json_t *s1 = repl_split(topics, prev2, 1);
    check_split(topics, s1, 1);
    json_t *s6 = repl_split(topics, prev2, 6);
    check_split(topics, s6, 6);
    /* going up: each old task keeps a subset of its partitions, nothing moves between them */
    for (size_t i = 0; i < 2; i++) {
        json_t *old = repl_parse_partitions(json_string_value(json_array_get(s2, i)));
        json_t *now = repl_parse_partitions(json_string_value(json_array_get(s6, i)));
        size_t j, k;
        json_t *pv, *ov;
        json_array_foreach(now, j, pv) {
            int found = 0;
            json_array_foreach(old, k, ov) found |= json_equal(pv, ov);
            CU_ASSERT_TRUE(found);
        }
        json_decref(old);
        json_decref(now);
    }
    json_decref(s1);
    json_decref(s6);
    json_decref(prev2);
    json_decref(s2);
    json_decref(prev);
    json_decref(s4);
    json_decref(topics);
}

/* Partitions of a removed topic disappear; the remaining ones stay put where balance allows. */
static void test_split_remove_topic(void)
{
    json_t *topics = json_pack("{s:i,s:i}", "a", 6, "b", 6);
    json_t *s1 = repl_split(topics, NULL, 3);
    json_t *prev = prev_of(s1);
    json_object_del(topics, "b");
    json_t *s2 = repl_split(topics, prev, 3);
    check_split(topics, s2, 3);
    json_decref(s1);
    json_decref(s2);
    json_decref(prev);
    json_decref(topics);
}

/* A previous config naming a partition twice, an unknown topic or a malformed list: the
 * split is still complete and duplicate-free. */
static void test_split_bad_prev(void)
{
    json_t *topics = json_pack("{s:i}", "a", 4);
    json_t *prev = json_pack("[{s:s},{s:s},{s:s},{}]", REPL_TASK_PARTITIONS, "a:0,a:1,a:0,gone:3",
                             REPL_TASK_PARTITIONS, "a:1,a:9", REPL_TASK_PARTITIONS, "garbage");
    json_t *s = repl_split(topics, prev, 4);
    check_split(topics, s, 4);
    json_decref(s);
    json_decref(prev);
    json_decref(topics);
}

static uint64_t rng_state = 42;
static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Fixed-seed random walk: topics come and go and grow, tasks.max changes; every split keeps
 * the invariants, and with an unchanged tasks.max and only additions, no partition moves. */
static void test_split_random(void)
{
    json_t *topics = json_object();
    json_t *prev = NULL, *last = NULL;
    int tm = 3;
    for (int round = 0; round < 400; round++) {
        int op = (int)(rng() % 10);
        char name[32];
        snprintf(name, sizeof name, "t%u", rng() % 12);
        int only_add = 0;
        if (op < 4) {
            if (!json_object_get(topics, name)) {
                json_object_set_new(topics, name, json_integer(1 + rng() % 9));
                only_add = 1;
            }
        } else if (op < 6) {
            json_t *n = json_object_get(topics, name);
            if (n) {
                json_object_set_new(topics, name, json_integer(json_integer_value(n) + 1 + rng() % 3));
                only_add = 1;
            }
        } else if (op < 8) {
            json_object_del(topics, name);
        } else {
            tm = 1 + (int)(rng() % 8);
        }
        json_t *s = repl_split(topics, prev, tm);
        check_split(topics, s, tm);
        if (only_add && last && op < 6 && json_array_size(last) == (size_t)tm) {
            /* nothing moved: every old task string is a prefix of the new one */
            for (size_t i = 0; i < json_array_size(last); i++)
                CU_ASSERT_TRUE(is_prefix_list(json_string_value(json_array_get(last, i)),
                                              json_string_value(json_array_get(s, i))));
        }
        json_decref(prev);
        prev = prev_of(s);
        json_decref(last);
        last = s;
    }
    json_decref(prev);
    json_decref(last);
    json_decref(topics);
}

static void test_split_1000(void)
{
    json_t *topics = json_object();
    char name[32];
    for (int t = 0; t < 10; t++) {
        snprintf(name, sizeof name, "big.%d", t);
        json_object_set_new(topics, name, json_integer(100));
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    json_t *s = repl_split(topics, NULL, 7);
    CU_ASSERT_EQUAL(check_split(topics, s, 7), 1000);
    for (size_t i = 0; i < json_array_size(s); i++) {
        size_t k = nparts_of(json_string_value(json_array_get(s, i)));
        CU_ASSERT(k == 142 || k == 143);
    }
    json_t *prev = prev_of(s);
    json_object_set_new(topics, "big.new", json_integer(3));
    json_t *s2 = repl_split(topics, prev, 7);
    CU_ASSERT_EQUAL(check_split(topics, s2, 7), 1003);
    size_t same = 0;
    for (size_t i = 0; i < 7; i++)
        same += !strcmp(json_string_value(json_array_get(s, i)), json_string_value(json_array_get(s2, i)));
    CU_ASSERT(same >= 4);
    json_t *s3 = repl_split(topics, prev, 1000);
    CU_ASSERT_EQUAL(check_split(topics, s3, 1000), 1003);
    CU_ASSERT_EQUAL(json_array_size(s3), 1000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    fprintf(stderr, "\n  [split 1000 partitions x3: %.1f ms] ", ms);
    CU_ASSERT(ms < 10000);
    json_decref(s);
    json_decref(s2);
    json_decref(s3);
    json_decref(prev);
    json_decref(topics);
}

/* ---- repl_task_configs ------------------------------------------------------------- */

static void test_task_configs(void)
{
    json_t *cfg = seed_config();
    json_t *split = json_pack("[s,s]", "connect:0,connect:2", "connect:1");
    json_t *tcs = repl_task_configs(cfg, split);
    CU_ASSERT_EQUAL(json_array_size(tcs), 2);
    json_t *t0 = json_array_get(tcs, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(t0, REPL_TASK_PARTITIONS)), "connect:0,connect:2");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(t0, "task.class")), REPL_TASK_CLASS);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(t0, "topic.rename.format")), "connect.replica");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(tcs, 1), REPL_TASK_PARTITIONS)),
                           "connect:1");
    CU_ASSERT_PTR_NULL(json_object_get(cfg, REPL_TASK_PARTITIONS)); /* input untouched */
    json_decref(tcs);
    json_decref(split);
    json_decref(cfg);
}

/* ---- repl_validate ------------------------------------------------------------------ */

static void test_validate_seed_ok(void)
{
    json_t *cfg = seed_config();
    expect_errors(cfg, 0, NULL);
    CU_ASSERT_EQUAL(repl_validate(cfg, NULL, NULL, NULL), 0);
    set(cfg, "tasks.max", "4");
    set(cfg, "connector.class", "com.amazonaws.emr.replicator.EMRReplicatorSourceConnector");
    expect_errors(cfg, 0, NULL);
    set(cfg, "topic.whitelist", NULL);
    set(cfg, "topic.regex", "orders\\..*");
    set(cfg, "topic.blacklist", "orders.secret");
    set(cfg, "topic.rename.format", "mirror.${topic}");
    set(cfg, "topic.poll.interval.ms", "500");
    expect_errors(cfg, 0, NULL);
    json_decref(cfg);
}

static void test_validate_tasks_max(void)
{
    json_t *cfg = seed_config();
    set(cfg, "tasks.max", "0");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "-3");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "x");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "1.5");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "99999999999");
    expect_errors(cfg, 1, "tasks.max");
    set(cfg, "tasks.max", "1");
    expect_errors(cfg, 0, NULL);
    json_object_set_new(cfg, "tasks.max", json_integer(2)); /* not a string */
    expect_errors(cfg, 1, "tasks.max");
    json_decref(cfg);
}

static void test_validate_missing_source(void)
{
    json_t *cfg = seed_config();
    set(cfg, "src.kafka.bootstrap.servers", NULL);
    expect_errors(cfg, 1, "src.kafka.bootstrap.servers");
    set(cfg, "src.kafka.bootstrap.servers", "");
    expect_errors(cfg, 1, "src.kafka.bootstrap.servers");
    set(cfg, "src.kafka.bootstrap.servers", " , ");
    expect_errors(cfg, 1, "src.kafka.bootstrap.servers");
    json_decref(cfg);
}

static void test_validate_no_topics(void)
{
    json_t *cfg = seed_config();
    set(cfg, "topic.rename.format", "${topic}.replica");
    set(cfg, "topic.whitelist", NULL);
    expect_errors(cfg, 1, "topic.whitelist");
    set(cfg, "topic.whitelist", " , ");
    expect_errors(cfg, 1, "topic.whitelist");
    set(cfg, "topic.regex", "");
    expect_errors(cfg, 1, "topic.whitelist");
    set(cfg, "topic.regex", "x.*");
    expect_errors(cfg, 0, NULL);
    json_decref(cfg);
}

static void test_validate_bad_regex(void)
{
    json_t *cfg = seed_config();
    set(cfg, "topic.whitelist", NULL);
    set(cfg, "topic.rename.format", "${topic}.replica");
    set(cfg, "topic.regex", "orders\\.(");
    expect_errors(cfg, 1, "topic.regex");
    set(cfg, "topic.regex", "[a-");
    expect_errors(cfg, 1, "topic.regex");
    json_decref(cfg);
}

/* glibc's regcomp() is not safe on hostile patterns. fuzz_config found a POST whose 60-byte
 * topic.regex (40 '+' in a row) made it allocate without bound, then one with 89 '?' between
 * '+'s that took minutes; "(d*)*" 33 times in a row takes hours, "((a?)?){325}" 4 GB. Such
 * patterns are refused as too complex before they are compiled, by validation and by
 * repl_select_new(); patterns for topic names are not. */
static void test_validate_regex_too_complex(void)
{
    static const char *huge[] = {
        /* the findings */
        ",,,,,,,,,,,,,,,,,XXXXXXXXX,,,,,,ates+++++++++++++++++++++++++++++++++++++++t",
        ("l,vsourc++++++?s+\\\\\\\\\\+++++;++??????????????????????????????????????????"
         "???????????????????????????????????????????????++++++++~+++++++t"),
        /* too many nodes once expanded */
        "a++++++++++++++++++++++++", "(a?){10000}", "a{1,32767}", "((a{100}){100}){100}",
        "(((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)",
        "x)y++++++++++++++++++++++++", /* a stray ')' closes "^(" early: still counted */
        /* loops over something that can match the empty string */
        "(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*(d*)*",
        "d**{33}", "((d?)*){33}", "(a|b*)+", "(a|)+x", "(^)*", "(\\1)*", "x(){2,}",
        /* options over something that can match the empty string */
        "((a?)?){325}", "(a?)?", "(a*b?){0,3}", "((a?){1,2}){100}",
    };
    json_t *cfg = seed_config();
    set(cfg, "topic.whitelist", NULL);
    set(cfg, "topic.rename.format", "${topic}.replica");
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        set(cfg, "topic.regex", huge[i]);
        char *msgs = NULL;
        CU_ASSERT_EQUAL(repl_validate(cfg, NULL, NULL, &msgs), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(msgs ? msgs : "", "too complex"));
        free(msgs);
        ferr_t err = {0};
        CU_ASSERT_PTR_NULL(repl_select_new(cfg, &err));
    }
    /* "(" nested 100,000 deep: refused without deep recursion, here or in glibc */
    char *deep = malloc(200001);
    memset(deep, '(', 100000);
    memset(deep + 100000, ')', 100000);
    deep[200000] = '\0';
    set(cfg, "topic.regex", deep);
    expect_errors(cfg, 1, "topic.regex");
    free(deep);
    /* realistic patterns stay well inside the bound */
    static const char *fine[] = {"orders\\..*", "[a-z0-9._-]{1,249}", "(eu|us|ap)-(orders|payments)[0-9]{0,3}",
                                 "t[0-9]+", "a{2,}b{,3}", "[]a]+|[^]]x", "([a-z]+\\.)*events",
                                 "(foo|bar)*-(x?y)+", "(a*b){0,5}", "(a?){400}", "orders(-v[0-9]+)?"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        set(cfg, "topic.regex", fine[i]);
        expect_errors(cfg, 0, NULL);
    }
    json_decref(cfg);
}

static void test_validate_rename(void)
{
    json_t *cfg = seed_config();
    /* literal name with two topics */
    set(cfg, "topic.whitelist", "a,b");
    expect_errors(cfg, 1, "topic.rename.format");
    /* literal with one topic plus a regex: could match many */
    set(cfg, "topic.whitelist", "a");
    set(cfg, "topic.regex", "b.*");
    expect_errors(cfg, 1, "topic.rename.format");
    set(cfg, "topic.regex", NULL);
    expect_errors(cfg, 0, NULL);
    /* ${topic} with many topics is fine */
    set(cfg, "topic.whitelist", "a,b,c");
    set(cfg, "topic.rename.format", "mirror.${topic}");
    expect_errors(cfg, 0, NULL);
    /* empty */
    set(cfg, "topic.rename.format", "");
    expect_errors(cfg, 1, "topic.rename.format");
    json_decref(cfg);
}

/* A worker as repl_validate() sees it: its cluster and its storage topics. */
static wconf_t test_worker(void)
{
    return (wconf_t){.bootstrap_servers = "127.0.0.1:9092, dst-2:9093", .config_topic = "connect-configs",
                     .offset_topic = "connect-offsets", .status_topic = "connect-status"};
}

/* topic.rename.format may not rename a selected topic onto one the worker writes itself. */
static void test_validate_rename_onto_internal(void)
{
    wconf_t wc = test_worker();
    json_t *cfg = seed_config();
    set(cfg, "src.kafka.bootstrap.servers", "src-1:9092");
    expect_errors_wc(cfg, &wc, 0, NULL);
    /* a literal name: the one whitelisted topic goes there */
    const char *internal[] = {"connect-configs", "connect-offsets", "connect-status", "__consumer_offsets",
                              "__transaction_state"};
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++) {
        set(cfg, "topic.rename.format", internal[i]);
        expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
        expect_errors(cfg, 0, NULL); /* without a worker: not checked */
    }
    /* ${topic}: refused when the source that would land there is selected */
    set(cfg, "topic.whitelist", "connect,offsets");
    set(cfg, "topic.rename.format", "connect-${topic}");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "topic.whitelist", "connect,configs2");
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "topic.whitelist", "configs");
    set(cfg, "topic.rename.format", "${topic}");
    expect_errors_wc(cfg, &wc, 0, NULL); /* "configs" is not "connect-configs" */
    set(cfg, "topic.whitelist", "status");
    set(cfg, "topic.rename.format", "connect-${topic}");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "topic.blacklist", "status");
    set(cfg, "topic.regex", "x");
    expect_errors_wc(cfg, &wc, 0, NULL); /* blacklisted: never selected */
    set(cfg, "topic.blacklist", NULL);
    /* a regex: refused if it matches the source that would land there */
    set(cfg, "topic.whitelist", NULL);
    set(cfg, "topic.regex", "[a-z]+");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "topic.regex", "orders.*");
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "topic.regex", ".*");
    set(cfg, "topic.rename.format", "${topic}-${topic}"); /* "connect-connect" is none of them */
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "topic.rename.format", "${topic}-status"); /* "connect" + "-status" */
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "topic.rename.format", "${topic}.replica");
    expect_errors_wc(cfg, &wc, 0, NULL);
    /* Kafka's internal topics: only a literal name reaches them ("_${topic}" would need the
     * source "_consumer_offsets", and topics starting with '_' are never selected) */
    set(cfg, "topic.rename.format", "_${topic}");
    expect_errors_wc(cfg, &wc, 0, NULL);
    json_decref(cfg);
}

/* On the worker's own cluster a topic may not be copied onto itself. */
static void test_validate_copy_onto_itself(void)
{
    wconf_t wc = test_worker();
    json_t *cfg = seed_config();
    set(cfg, "src.kafka.bootstrap.servers", "src-1:9092");
    set(cfg, "topic.rename.format", "${topic}");
    expect_errors_wc(cfg, &wc, 0, NULL); /* another cluster: a plain mirror */
    set(cfg, "src.kafka.bootstrap.servers", "dst-2:9093");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "src.kafka.bootstrap.servers", "src-1:9092,DST-2:9093"); /* one broker in common */
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    set(cfg, "topic.rename.format", "connect");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format"); /* literal: whitelist "connect" */
    set(cfg, "topic.rename.format", "connect.replica");
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "topic.rename.format", "${topic}.replica");
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "topic.whitelist", NULL);
    set(cfg, "topic.regex", ".*");
    set(cfg, "topic.rename.format", "${topic}");
    expect_errors_wc(cfg, &wc, 1, "topic.rename.format");
    json_decref(cfg);
}

static void test_validate_converters_and_class(void)
{
    json_t *cfg = seed_config();
    set(cfg, "value.converter", "org.apache.kafka.connect.json.JsonConverter");
    expect_errors(cfg, 1, "value.converter");
    set(cfg, "key.converter", "org.apache.kafka.connect.storage.StringConverter");
    set(cfg, "value.converter", NULL); /* default: none given is fine */
    expect_errors(cfg, 1, "key.converter");
    set(cfg, "key.converter", "ByteArrayConverter");
    expect_errors(cfg, 0, NULL);
    set(cfg, "connector.class", "org.apache.kafka.connect.file.FileStreamSourceConnector");
    expect_errors(cfg, 1, "connector.class");
    set(cfg, "connector.class", NULL);
    expect_errors(cfg, 1, "connector.class");
    json_decref(cfg);
}

static void test_validate_other_values(void)
{
    json_t *cfg = seed_config();
    set(cfg, "topic.poll.interval.ms", "abc");
    expect_errors(cfg, 1, "topic.poll.interval.ms");
    set(cfg, "topic.poll.interval.ms", "5");
    expect_errors(cfg, 1, "topic.poll.interval.ms");
    set(cfg, "topic.poll.interval.ms", "500");
    set(cfg, "offset.start", "middle");
    expect_errors(cfg, 1, "offset.start");
    set(cfg, "offset.start", "latest");
    set(cfg, "provenance.header.enable", "maybe");
    expect_errors(cfg, 1, "provenance.header.enable");
    set(cfg, "provenance.header.enable", "TRUE");
    set(cfg, "source.offset.header.enable", "yes");
    expect_errors(cfg, 1, "source.offset.header.enable");
    set(cfg, "source.offset.header.enable", "false");
    set(cfg, "source.offset.header.name", "");
    expect_errors(cfg, 1, "source.offset.header.name");
    set(cfg, "source.offset.header.name", "src.pos");
    set(cfg, "exactly.once.support", "always");
    expect_errors(cfg, 1, "exactly.once.support");
    set(cfg, "exactly.once.support", "required");
    set(cfg, "transaction.boundary", "connector");
    expect_errors(cfg, 1, "transaction.boundary");
    set(cfg, "transaction.boundary", "interval");
    set(cfg, "transaction.boundary.interval.ms", "0");
    expect_errors(cfg, 1, "transaction.boundary.interval.ms");
    set(cfg, "transaction.boundary.interval.ms", "250");
    expect_errors(cfg, 0, NULL);
    set(cfg, "src.kafka.max.poll.records", "0");
    expect_errors(cfg, 1, "src.kafka.max.poll.records");
    set(cfg, "src.kafka.max.poll.records", "300");
    set(cfg, "name", "");
    expect_errors(cfg, 1, "name");
    set(cfg, "name", NULL);
    expect_errors(cfg, 1, "name");
    json_decref(cfg);
}

/* Several problems at once are all reported. */
/* The first error message of @p key after validating @p cfg (malloc'd, "" if none). */
static char *first_error(json_t *cfg, const wconf_t *wc, const char *key)
{
    json_t *infos = NULL;
    repl_validate(cfg, wc, &infos, NULL);
    json_t *errs = errors_of(infos, key);
    char *e = strdup(json_string_value(json_array_get(errs, 0)) ?: "");
    json_decref(infos);
    return e;
}

static void expect_first_error(json_t *cfg, const char *key, const char *want)
{
    char *e = first_error(cfg, NULL, key);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, want));
    if (!strstr(e, want))
        fprintf(stderr, "\n  %s: want %s\n  got: %s\n", key, want, e);
    free(e);
}

/* A key close to one of the connector's is an error naming it: a misspelt blacklist would
 * otherwise copy the topics it was meant to leave out. */
static void test_validate_typos(void)
{
    static const char *const typos[][2] = {
        {"topic.blacklst", "topic.blacklist"},
        {"topic.whitelsit", "topic.whitelist"},
        {"topic.rename.formt", "topic.rename.format"},
        {"source.offset.header.enabled", "source.offset.header.enable"},
        {"task.max", "tasks.max"},
        {"src.kafka.max.poll.recods", "src.kafka.max.poll.records"},
        {"transform", "transforms"},
    };
    for (size_t i = 0; i < sizeof typos / sizeof typos[0]; i++) {
        json_t *cfg = seed_config();
        set(cfg, typos[i][0], "x");
        expect_errors(cfg, 1, typos[i][0]);
        char want[256];
        snprintf(want, sizeof want, "Unknown configuration %s: did you mean %s?", typos[i][0], typos[i][1]);
        expect_first_error(cfg, typos[i][0], want);
        json_decref(cfg);
    }
    /* keys far from every known one, Java-only client keys and converter settings are left alone */
    json_t *cfg = seed_config();
    set(cfg, "topic.config.sync", "true");
    set(cfg, "src.consumer.max.poll.records", "10");
    set(cfg, "value.converter.schemas.enable", "false");
    set(cfg, "src.kafka.fetch.wait.max.ms", "10");
    expect_errors(cfg, 0, NULL);
    json_decref(cfg);
}

/* Kafka Connect's keys for every connector: honoured (with their validation), or refused saying
 * ferry does not support them. */
static void test_validate_framework_keys(void)
{
    static const char *const ok[][2] = {
        {"transforms", ""}, {"predicates", " "}, {"errors.tolerance", "NONE"}, {"errors.retry.timeout", "-1"},
        {"errors.retry.delay.max.ms", "1000"}, {"errors.log.enable", "true"}, {"errors.log.include.messages", "true"},
        {"tasks.max.enforce", "false"}, {"config.action.reload", "none"}, {"offsets.storage.topic", ""},
        {"exactly.once.support", "required"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *cfg = seed_config();
        set(cfg, ok[i][0], ok[i][1]);
        expect_errors(cfg, 0, NULL);
        json_decref(cfg);
    }
    static const char *const refused[][3] = {
        {"transforms", "route", "does not run Single Message Transforms"},
        {"transforms.route.type", "org.apache.kafka.connect.transforms.RegexRouter", "does not run Single Message"},
        {"predicates", "isFoo", "does not run Single Message Transforms or their predicates"},
        {"predicates.isFoo.type", "x", "predicates"},
        {"topic.creation.default.replication.factor", "3", "does not support topic.creation.*"},
        {"topic.creation.groups", "g", "dest.topic.replication.factor"},
        {"offsets.storage.topic", "my-offsets", "a connector's own offsets topic (KIP-618) is not supported"},
        {"consumer.override.max.poll.records", "5", "its source clients take src.kafka.* and src.consumer.*"},
        {"admin.override.request.timeout.ms", "5", "does not use it"},
        {"errors.tolerance", "all", "ferry does not support skipping records (errors.tolerance=all)"},
        {"errors.tolerance", "some", "String must be one of (case insensitive): NONE, ALL"},
        {"errors.retry.timeout", "-2", "Value must be at least -1"},
        {"errors.retry.delay.max.ms", "0", "Value must be at least 1"},
        {"errors.log.enable", "yes", "Expected value to be either true or false"},
        {"tasks.max.enforce", "maybe", "Expected value to be either true or false"},
        {"config.action.reload", "reload", "NONE, RESTART"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        json_t *cfg = seed_config();
        set(cfg, refused[i][0], refused[i][1]);
        expect_errors(cfg, 1, refused[i][0]);
        expect_first_error(cfg, refused[i][0], refused[i][2]);
        json_decref(cfg);
    }
    /* the worker's own offset topic is where the offsets go anyway */
    wconf_t wc = {.bootstrap_servers = "b:9092", .config_topic = "connect-configs", .offset_topic = "connect-offsets",
                  .status_topic = "connect-status"};
    json_t *cfg = seed_config();
    set(cfg, "offsets.storage.topic", "connect-offsets");
    expect_errors_wc(cfg, &wc, 0, NULL);
    set(cfg, "offsets.storage.topic", "other");
    char *e = first_error(cfg, &wc, "offsets.storage.topic");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "in the worker's offset.storage.topic connect-offsets;"));
    free(e);
    json_decref(cfg);
}

static void test_validate_many_errors(void)
{
    json_t *cfg = seed_config();
    set(cfg, "tasks.max", "x");
    set(cfg, "src.kafka.bootstrap.servers", NULL);
    set(cfg, "value.converter", "org.apache.kafka.connect.json.JsonConverter");
    set(cfg, "topic.regex", "(");
    json_t *infos = NULL;
    int n = repl_validate(cfg, NULL, &infos, NULL);
    CU_ASSERT_EQUAL(n, 5); /* + literal rename with a regex */
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(infos, "error_count")), n);
    CU_ASSERT_EQUAL(json_array_size(errors_of(infos, "tasks.max")), 1);
    CU_ASSERT_EQUAL(json_array_size(errors_of(infos, "src.kafka.bootstrap.servers")), 1);
    CU_ASSERT_EQUAL(json_array_size(errors_of(infos, "value.converter")), 1);
    CU_ASSERT_EQUAL(json_array_size(errors_of(infos, "topic.regex")), 1);
    CU_ASSERT_EQUAL(json_array_size(errors_of(infos, "topic.rename.format")), 1);
    json_decref(infos);
    json_decref(cfg);
}

/* Kafka Connect's ConfigInfos document. */
static void test_validate_shape(void)
{
    json_t *cfg = seed_config();
    set(cfg, "tasks.max", "0");
    json_t *infos = NULL;
    repl_validate(cfg, NULL, &infos, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(infos);
    CU_ASSERT_TRUE(json_is_object(infos));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(infos, "name")) ?: "", REPL_CLASS);
    CU_ASSERT_TRUE(json_is_integer(json_object_get(infos, "error_count")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(infos, "error_count")), 1);
    json_t *groups = json_object_get(infos, "groups");
    CU_ASSERT_TRUE(json_is_array(groups));
    CU_ASSERT(json_array_size(groups) >= 1);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) CU_ASSERT_TRUE(json_is_string(g));
    json_t *configs = json_object_get(infos, "configs");
    CU_ASSERT_TRUE_FATAL(json_is_array(configs));
    json_t *defs = repl_config_defs();
    CU_ASSERT_EQUAL(json_array_size(configs), json_array_size(defs));
    json_decref(defs);
    int saw_tasks_max = 0, saw_whitelist = 0;
    json_t *c;
    json_array_foreach(configs, i, c) {
        json_t *d = json_object_get(c, "definition"), *v = json_object_get(c, "value");
        CU_ASSERT_TRUE(json_is_object(d));
        CU_ASSERT_TRUE(json_is_object(v));
        const char *dn = json_string_value(json_object_get(d, "name"));
        const char *vn = json_string_value(json_object_get(v, "name"));
        CU_ASSERT_PTR_NOT_NULL(dn);
        CU_ASSERT_PTR_NOT_NULL(vn);
        if (dn && vn)
            CU_ASSERT_STRING_EQUAL(dn, vn);
        CU_ASSERT_TRUE(json_is_string(json_object_get(d, "type")));
        CU_ASSERT_TRUE(json_is_boolean(json_object_get(d, "required")));
        CU_ASSERT_TRUE(json_is_string(json_object_get(d, "importance")));
        CU_ASSERT_TRUE(json_is_string(json_object_get(d, "documentation")));
        CU_ASSERT_TRUE(json_is_string(json_object_get(d, "group")));
        CU_ASSERT_TRUE(json_is_integer(json_object_get(d, "order")));
        CU_ASSERT_TRUE(json_is_array(json_object_get(d, "dependents")));
        CU_ASSERT_TRUE(json_is_array(json_object_get(v, "errors")));
        CU_ASSERT_TRUE(json_is_array(json_object_get(v, "recommended_values")));
        CU_ASSERT_TRUE(json_is_boolean(json_object_get(v, "visible")));
        json_t *val = json_object_get(v, "value");
        CU_ASSERT_TRUE(val == NULL || json_is_string(val) || json_is_null(val));
        /* every definition's group is one of the listed groups */
        const char *grp = json_string_value(json_object_get(d, "group"));
        int found = 0;
        size_t j;
        json_array_foreach(groups, j, g) found |= grp && !strcmp(grp, json_string_value(g));
        CU_ASSERT_TRUE(found);
        if (dn && !strcmp(dn, "tasks.max")) {
            saw_tasks_max = 1;
            CU_ASSERT_STRING_EQUAL(json_string_value(val) ?: "", "0");
            CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "errors")), 1);
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(d, "type")), "INT");
        }
        if (dn && !strcmp(dn, "topic.whitelist")) {
            saw_whitelist = 1;
            CU_ASSERT_STRING_EQUAL(json_string_value(val) ?: "", "connect");
            CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "errors")), 0);
        }
    }
    CU_ASSERT_TRUE(saw_tasks_max);
    CU_ASSERT_TRUE(saw_whitelist);
    /* the document serializes */
    char *s = json_dumps(infos, JSON_COMPACT);
    CU_ASSERT_PTR_NOT_NULL(s);
    free(s);
    json_decref(infos);
    json_decref(cfg);
}

/* ---- repl_parse_partitions ---------------------------------------------------------- */

/* Task configs from the config topic or POST .../tasks (repl_check_task, repl_check_task_configs). */
static void test_check_task_configs(void)
{
    char why[1024];
    json_t *cfg = seed_config();
    json_t *split = json_pack("[s,s]", "connect:0,connect:2", "connect:1");
    json_t *tasks = repl_task_configs(cfg, split);
    set(cfg, "tasks.max", "2");
    json_decref(tasks);
    tasks = repl_task_configs(cfg, split);
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, tasks, NULL, why, sizeof why), 0);
    CU_ASSERT_EQUAL(repl_check_task(json_array_get(tasks, 0), NULL, why, sizeof why), 0);
    /* more tasks than tasks.max */
    set(cfg, "tasks.max", "1");
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, tasks, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tasks.max=1"));
    set(cfg, "tasks.max", "2");
    /* a key that differs from the connector's config */
    json_t *t0 = json_array_get(tasks, 0);
    json_object_set_new(t0, "topic.rename.format", json_string("connect-configs"));
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, tasks, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "topic.rename.format differs"));
    json_object_set_new(t0, "topic.rename.format", json_string("connect.replica"));
    /* an unselected topic, a partition twice, a number out of range, a bad class */
    json_object_set_new(t0, "task.partitions", json_string("secret:0"));
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not selected"));
    json_object_set_new(t0, "task.partitions", json_string("connect:1"));
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, tasks, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "given to two tasks"));
    json_object_set_new(t0, "task.partitions", json_string("connect:0,connect:0"));
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "listed twice"));
    json_object_set_new(t0, "task.partitions", json_string("connect:2147483647"));
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "malformed"));
    json_object_set_new(t0, "task.partitions", json_string("connect:0"));
    json_object_set_new(t0, "task.class", json_string("Other"));
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), -1);
    json_object_set_new(t0, "task.class", json_string(REPL_TASK_CLASS));
    /* a dangerous client key in the stored task config */
    json_object_set_new(t0, "src.kafka.plugin.library.paths", json_string("/tmp/x.so"));
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "src.kafka.plugin.library.paths"));
    json_object_del(t0, "src.kafka.plugin.library.paths");
    CU_ASSERT_EQUAL(repl_check_task(t0, NULL, why, sizeof why), 0);
    json_t *not_objects = json_pack("[i]", 1), *not_array = json_object();
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, not_objects, NULL, why, sizeof why), -1);
    CU_ASSERT_EQUAL(repl_check_task_configs(cfg, not_array, NULL, why, sizeof why), -1);
    json_decref(not_objects);
    json_decref(not_array);
    json_decref(tasks);
    json_decref(split);
    json_decref(cfg);
}

static void test_parse_partitions_valid(void)
{
    json_t *a = repl_parse_partitions("connect:0,connect:7,orders.eu:12");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(json_array_size(a), 3);
    json_t *want = json_pack("[[s,i],[s,i],[s,i]]", "connect", 0, "connect", 7, "orders.eu", 12);
    CU_ASSERT_TRUE(json_equal(a, want));
    json_decref(want);
    json_decref(a);

    a = repl_parse_partitions("");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(json_array_size(a), 0);
    json_decref(a);

    a = repl_parse_partitions(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(json_array_size(a), 0);
    json_decref(a);

    a = repl_parse_partitions("t:999999");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(json_array_get(a, 0), 1)), REPL_MAX_PARTITION - 1);
    json_decref(a);
    /* a partition number no topic has (a forged task config) is malformed: it once sized an
     * array and crashed the worker (t:2147483647) */
    CU_ASSERT_PTR_NULL(repl_parse_partitions("t:1000000"));
    CU_ASSERT_PTR_NULL(repl_parse_partitions("t:2147483647"));

    /* the partition is after the LAST colon */
    a = repl_parse_partitions("odd:name:3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_array_get(a, 0), 0)), "odd:name");
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(json_array_get(a, 0), 1)), 3);
    json_decref(a);

    /* round trip with repl_split */
    json_t *topics = json_pack("{s:i,s:i}", "x", 3, "y.z", 2);
    json_t *split = repl_split(topics, NULL, 1);
    a = repl_parse_partitions(json_string_value(json_array_get(split, 0)));
    CU_ASSERT_EQUAL(json_array_size(a), 5);
    json_decref(a);
    json_decref(split);
    json_decref(topics);
}

static void test_parse_partitions_malformed(void)
{
    const char *bad[] = {"t",      "t:",      ":0",     "t:x",   "t:-1",  "t:1x",
                         "t:0,u",  "t:0,:1",  "t:0,u:", "t:2147483648",
                         "t:99999999999999999999", "t:0x10", "t:1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = repl_parse_partitions(bad[i]);
        if (a)
            fprintf(stderr, "\n  accepted malformed \"%s\"", bad[i]);
        CU_ASSERT_PTR_NULL(a);
        json_decref(a);
    }
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"check task configs", test_check_task_configs},
        {"class matches", test_class_matches},
        {"class matches: empty package segment", test_class_matches_empty_segment},
        {"rename", test_rename},
        {"select whitelist", test_select_whitelist},
        {"select regex", test_select_regex},
        {"select blacklist and internal", test_select_blacklist_and_internal},
        {"split basic", test_split_basic},
        {"split zero partitions", test_split_zero},
        {"split deterministic", test_split_deterministic},
        {"split stable when a topic is added", test_split_stable_add_topic},
        {"split stable concrete", test_split_stable_concrete},
        {"split tasks.max change", test_split_tasks_max_change},
        {"split topic removed", test_split_remove_topic},
        {"split bad previous configs", test_split_bad_prev},
        {"split random walk", test_split_random},
        {"split 1000 partitions", test_split_1000},
        {"task configs", test_task_configs},
        {"validate seed ok", test_validate_seed_ok},
        {"validate tasks.max", test_validate_tasks_max},
        {"validate missing source", test_validate_missing_source},
        {"validate no topics", test_validate_no_topics},
        {"validate bad regex", test_validate_bad_regex},
        {"validate regex too complex to compile", test_validate_regex_too_complex},
        {"validate rename", test_validate_rename},
        {"validate rename onto the worker's internal topics", test_validate_rename_onto_internal},
        {"validate copy onto itself", test_validate_copy_onto_itself},
        {"validate converters and class", test_validate_converters_and_class},
        {"validate other values", test_validate_other_values},
        {"validate many errors", test_validate_many_errors},
        {"validate typos", test_validate_typos},
        {"validate Kafka Connect's keys for every connector", test_validate_framework_keys},
        {"validate ConfigInfos shape", test_validate_shape},
        {"parse partitions valid", test_parse_partitions_valid},
        {"parse partitions malformed", test_parse_partitions_malformed},
    };
    return cu_add_tests("repl", tests, sizeof tests / sizeof tests[0]);
}
