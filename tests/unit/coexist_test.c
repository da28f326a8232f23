/* coexist_test: the start-up decision next to a Kafka Connect cluster, from made-up answers of
 * the destination's group coordinator (librdkafka's mock cluster cannot list groups). */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <stdio.h>
#include <string.h>

#include "worker/coexist.h"

static coexist_verdict_t decide(coexist_answer_t a, char *msg)
{
    return coexist_decide("connect-cluster", "b1:9092", &a, msg, 1024);
}

static void test_active_connect_group_refuses(void)
{
    char msg[1024];
    const char *states[] = {"Stable", "PreparingRebalance", "CompletingRebalance"};
    for (int i = 0; i < 3; i++) {
        coexist_answer_t a = {.answered = 1, .found = 1, .protocol_type = "connect", .state = states[i], .members = 3};
        CU_ASSERT_EQUAL(decide(a, msg), COEXIST_REFUSE);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Kafka Connect workers of group 'connect-cluster' are running against "
                                           "bootstrap.servers=b1:9092"));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, states[i]));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "3 members"));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Moving from Kafka Connect"));
    }
    /* members decide even when the state is unusual */
    coexist_answer_t a = {.answered = 1, .found = 1, .protocol_type = "connect", .state = "Unknown", .members = 1};
    CU_ASSERT_EQUAL(decide(a, msg), COEXIST_REFUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "1 member)"));
}

static void test_empty_or_dead_group_starts(void)
{
    char msg[1024];
    coexist_answer_t empty = {.answered = 1, .found = 1, .protocol_type = "connect", .state = "Empty"};
    CU_ASSERT_EQUAL(decide(empty, msg), COEXIST_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "has no members (state Empty): taking over"));
    coexist_answer_t dead = {.answered = 1, .found = 1, .protocol_type = "", .state = "Dead"};
    CU_ASSERT_EQUAL(decide(dead, msg), COEXIST_OK);
    CU_ASSERT_STRING_EQUAL(msg, "");
    coexist_answer_t none = {.answered = 1};
    CU_ASSERT_EQUAL(decide(none, msg), COEXIST_OK);
    CU_ASSERT_STRING_EQUAL(msg, "");
}

static void test_consumer_group_warns(void)
{
    char msg[1024];
    coexist_answer_t a = {.answered = 1, .found = 1, .protocol_type = "consumer", .state = "Stable", .members = 2};
    CU_ASSERT_EQUAL(decide(a, msg), COEXIST_WARN);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "group named 'connect-cluster' (protocol type consumer, state Stable, 2 "
                                       "members) that is not a Kafka Connect group"));
    coexist_answer_t simple = {.answered = 1, .found = 1, .protocol_type = "", .state = "Empty"};
    CU_ASSERT_EQUAL(decide(simple, msg), COEXIST_WARN);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "protocol type none: a simple consumer group"));
}

static void test_no_answer_warns(void)
{
    char msg[1024];
    coexist_answer_t a = {.answered = 0, .error = "Local: Required feature not supported by broker"};
    CU_ASSERT_EQUAL(decide(a, msg), COEXIST_WARN);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "could not check the destination cluster (bootstrap.servers=b1:9092) for "
                                       "Kafka Connect workers of group 'connect-cluster' (Local: Required feature "
                                       "not supported by broker)"));
    coexist_answer_t b = {0};
    CU_ASSERT_EQUAL(decide(b, msg), COEXIST_WARN);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "(no answer)"));
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"active Kafka Connect group: refuse", test_active_connect_group_refuses},
        {"empty, dead or no group: start", test_empty_or_dead_group_starts},
        {"a consumer group with that name: WARN", test_consumer_group_warns},
        {"no answer: WARN and start", test_no_answer_warns},
    };
    return cu_add_tests("coexist", tests, sizeof tests / sizeof tests[0]);
}
