/* Unit tests for worker/cstate: applying config-topic records as Kafka Connect does. */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "worker/cstate.h"

static int64_t off;

static cstate_event_t put(cstate_t *cs, const char *key, const char *json)
{
    json_t *v = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
    int64_t o = off++;
    cstate_event_t ev = cstate_apply(cs, key, v, o, 1000 + o, NULL);
    json_decref(v);
    return ev;
}

static void test_create_update_delete(void)
{
    cstate_t *cs = cstate_new();
    CU_ASSERT_EQUAL(put(cs, "connector-a", "{\"properties\":{\"x\":\"1\",\"n\":2}}"), CSTATE_EV_CONNECTOR);
    cstate_conn_t *c = cstate_get(cs, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c->config, "x")), "1");
    CU_ASSERT_PTR_NULL(json_object_get(c->config, "n")); /* non-string values are dropped */
    CU_ASSERT_EQUAL(c->target, CSTATE_TARGET_STARTED);
    put(cs, "connector-a", "{\"properties\":{\"x\":\"2\"}}");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(cstate_get(cs, "a")->config, "x")), "2");
    CU_ASSERT_EQUAL(cstate_count(cs), 1);
    CU_ASSERT_EQUAL(put(cs, "connector-a", NULL), CSTATE_EV_CONNECTOR);
    CU_ASSERT_PTR_NULL(cstate_get(cs, "a"));
    CU_ASSERT_EQUAL(cstate_count(cs), 0);
    CU_ASSERT_EQUAL(cstate_offset(cs), off);
    cstate_destroy(cs);
}

static void test_target_before_connector(void)
{
    cstate_t *cs = cstate_new();
    /* create with initial_state writes the target state first */
    CU_ASSERT_EQUAL(put(cs, "target-state-b", "{\"state\":\"PAUSED\",\"state.v2\":\"STOPPED\"}"), CSTATE_EV_TARGET);
    CU_ASSERT_PTR_NULL(cstate_get(cs, "b"));
    CU_ASSERT_EQUAL(cstate_count(cs), 0);
    put(cs, "connector-b", "{\"properties\":{}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cstate_get(cs, "b"));
    CU_ASSERT_EQUAL(cstate_get(cs, "b")->target, CSTATE_TARGET_STOPPED); /* state.v2 wins */
    put(cs, "target-state-b", "{\"state\":\"PAUSED\"}");
    CU_ASSERT_EQUAL(cstate_get(cs, "b")->target, CSTATE_TARGET_PAUSED);
    CU_ASSERT_EQUAL(put(cs, "target-state-b", "{\"state\":\"BOGUS\"}"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(cstate_get(cs, "b")->target, CSTATE_TARGET_PAUSED);
    cstate_destroy(cs);
}

static void test_task_commit(void)
{
    cstate_t *cs = cstate_new();
    put(cs, "connector-my-conn", "{\"properties\":{\"k\":\"v\"}}");
    /* names with dashes: the task id is after the last dash */
    CU_ASSERT_EQUAL(put(cs, "task-my-conn-0", "{\"properties\":{\"t\":\"0\"}}"), CSTATE_EV_NONE);
    put(cs, "task-my-conn-1", "{\"properties\":{\"t\":\"1\"}}");
    CU_ASSERT_EQUAL(json_array_size(cstate_get(cs, "my-conn")->tasks), 0); /* not yet committed */
    CU_ASSERT_EQUAL(put(cs, "commit-my-conn", "{\"tasks\":2}"), CSTATE_EV_TASKS);
    json_t *tasks = cstate_get(cs, "my-conn")->tasks;
    CU_ASSERT_EQUAL_FATAL(json_array_size(tasks), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(tasks, 1), "t")), "1");
    /* a commit naming a task that was never written: inconsistent, current tasks kept */
    put(cs, "task-my-conn-0", "{\"properties\":{\"t\":\"new\"}}");
    put(cs, "commit-my-conn", "{\"tasks\":3}");
    CU_ASSERT_TRUE(cstate_get(cs, "my-conn")->inconsistent);
    CU_ASSERT_EQUAL(json_array_size(cstate_get(cs, "my-conn")->tasks), 2);
    /* stop: an empty commit */
    put(cs, "commit-my-conn", "{\"tasks\":0}");
    CU_ASSERT_FALSE(cstate_get(cs, "my-conn")->inconsistent);
    CU_ASSERT_EQUAL(json_array_size(cstate_get(cs, "my-conn")->tasks), 0);
    cstate_destroy(cs);
}

static void test_events_and_garbage(void)
{
    cstate_t *cs = cstate_new();
    const char *name = NULL;
    json_t *v = json_loads("{\"include-tasks\":true,\"only-failed\":false}", 0, NULL);
    CU_ASSERT_EQUAL(cstate_apply(cs, "restart-connector-z", v, off++, 0, &name), CSTATE_EV_RESTART);
    CU_ASSERT_STRING_EQUAL(name, "z");
    json_decref(v);
    v = json_loads("{\"level\":\"DEBUG\"}", 0, NULL);
    CU_ASSERT_EQUAL(cstate_apply(cs, "logger-cluster-ferry.task", v, off++, 0, &name), CSTATE_EV_LOGGER);
    CU_ASSERT_STRING_EQUAL(name, "ferry.task");
    json_decref(v);
    CU_ASSERT_EQUAL(put(cs, "session-key", "{\"key\":\"x\"}"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(put(cs, "connector-", "{\"properties\":{}}"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(put(cs, "connector-bad", "[1,2]"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(put(cs, "task-x-notanumber", "{\"properties\":{}}"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(put(cs, "commit-x", "{\"tasks\":-1}"), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(cstate_apply(cs, NULL, NULL, off++, 0, NULL), CSTATE_EV_IGNORED);
    CU_ASSERT_EQUAL(cstate_count(cs), 0);
    cstate_destroy(cs);
}

static void test_order_and_keys(void)
{
    cstate_t *cs = cstate_new();
    put(cs, "connector-c", "{\"properties\":{}}");
    put(cs, "connector-a", "{\"properties\":{}}");
    put(cs, "target-state-ghost", "{\"state\":\"PAUSED\"}");
    put(cs, "connector-b", "{\"properties\":{}}");
    CU_ASSERT_EQUAL_FATAL(cstate_count(cs), 3);
    CU_ASSERT_STRING_EQUAL(cstate_at(cs, 0)->name, "a");
    CU_ASSERT_STRING_EQUAL(cstate_at(cs, 1)->name, "b");
    CU_ASSERT_STRING_EQUAL(cstate_at(cs, 2)->name, "c");
    CU_ASSERT_PTR_NULL(cstate_at(cs, 3));
    char *k = cstate_key_task("a-b", 7);
    CU_ASSERT_STRING_EQUAL(k, "task-a-b-7");
    free(k);
    json_t *t = cstate_target_record(CSTATE_TARGET_STOPPED);
    char *s = json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CU_ASSERT_STRING_EQUAL(s, "{\"state\":\"PAUSED\",\"state.v2\":\"STOPPED\"}");
    free(s);
    json_decref(t);
    cstate_destroy(cs);
}

int cu_register(void)
{
    CU_pSuite s = CU_add_suite("cstate", NULL, NULL);
    if (!s || !CU_add_test(s, "create, update, delete", test_create_update_delete) ||
        !CU_add_test(s, "target state before connector", test_target_before_connector) ||
        !CU_add_test(s, "task configs and commits", test_task_commit) ||
        !CU_add_test(s, "events and malformed records", test_events_and_garbage) ||
        !CU_add_test(s, "order and record keys", test_order_and_keys))
        return -1;
    return 0;
}
