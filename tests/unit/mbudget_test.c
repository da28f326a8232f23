/* mbudget_test: how the worker's memory budget becomes per-task client limits: the share,
 * the floors, message.max.bytes, the budget-less defaults, and explicit settings winning. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include "worker/mbudget.h"

#define MIB (1024LL * 1024)

static void test_share(void)
{
    mbudget_limits_t l;
    mbudget_task_limits(32 * MIB, 8, 0, NULL, &l); /* 4 MiB per task, half each side */
    CU_ASSERT_EQUAL(l.consumer_kbytes, 2048);
    CU_ASSERT_EQUAL(l.producer_kbytes, 2048);
    CU_ASSERT_EQUAL(l.producer_messages, 2048 * 1024 / MBUDGET_RECORD_COST);
    mbudget_task_limits(32 * MIB, 1, 0, NULL, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 16384);
    CU_ASSERT_EQUAL(l.producer_kbytes, 16384);
    /* the whole worker stays within the budget while the floors do not bind */
    for (int n = 1; n <= 16; n++) {
        mbudget_task_limits(32 * MIB, n, 0, NULL, &l);
        CU_ASSERT((l.consumer_kbytes + l.producer_kbytes) * 1024 * n <= 32 * MIB);
    }
}

static void test_floors(void)
{
    mbudget_limits_t l;
    mbudget_task_limits(32 * MIB, 64, 0, NULL, &l); /* 256 KiB per side: below the floor */
    CU_ASSERT_EQUAL(l.consumer_kbytes, MBUDGET_FLOOR_KBYTES);
    CU_ASSERT_EQUAL(l.producer_kbytes, MBUDGET_FLOOR_KBYTES);
    CU_ASSERT_EQUAL(l.producer_messages, MBUDGET_FLOOR_KBYTES * 1024 / MBUDGET_RECORD_COST);
    mbudget_task_limits(1, 0, 0, NULL, &l); /* a tiny budget, no tasks counted */
    CU_ASSERT_EQUAL(l.consumer_kbytes, MBUDGET_FLOOR_KBYTES);
    CU_ASSERT_EQUAL(l.producer_kbytes, MBUDGET_FLOOR_KBYTES);
    CU_ASSERT(l.producer_messages > 0);
}

static void test_message_max_bytes(void)
{
    mbudget_limits_t l;
    /* a 10 MB record must fit the producer's queue, or it would wait forever */
    mbudget_task_limits(32 * MIB, 64, 10000000, NULL, &l);
    CU_ASSERT(l.producer_kbytes * 1024 > 10000000);
    CU_ASSERT_EQUAL(l.consumer_kbytes, MBUDGET_FLOOR_KBYTES);
    /* librdkafka's default (1,000,000) fits the floor */
    mbudget_task_limits(32 * MIB, 64, 1000000, NULL, &l);
    CU_ASSERT_EQUAL(l.producer_kbytes, MBUDGET_FLOOR_KBYTES);
}

static void test_no_budget(void)
{
    mbudget_limits_t l;
    mbudget_task_limits(0, 64, 0, NULL, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 16384);
    CU_ASSERT_EQUAL(l.producer_kbytes, 32768);
    CU_ASSERT_EQUAL(l.producer_messages, 200000);
}

static void test_user_wins(void)
{
    mbudget_limits_t l, user = {.consumer_kbytes = 65536};
    mbudget_task_limits(32 * MIB, 64, 0, &user, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 65536);
    CU_ASSERT_EQUAL(l.producer_kbytes, MBUDGET_FLOOR_KBYTES); /* the others are still derived */
    user = (mbudget_limits_t){.producer_kbytes = 100, .producer_messages = 7};
    mbudget_task_limits(32 * MIB, 8, 10000000, &user, &l); /* even below message.max.bytes */
    CU_ASSERT_EQUAL(l.producer_kbytes, 100);
    CU_ASSERT_EQUAL(l.producer_messages, 7);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 2048);
    mbudget_task_limits(0, 8, 0, &user, &l); /* and without a budget */
    CU_ASSERT_EQUAL(l.producer_kbytes, 100);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 16384);
}

/* A shared consumer's prefetch bound per copy-thread queue: the consumer half divided among the
 * queues, with the floor, and the fixed 16 MiB without a budget. */
static void test_consumer_limits(void)
{
    mbudget_limits_t l;
    mbudget_consumer_limits(32LL << 20, 2, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 8192);
    mbudget_consumer_limits(32LL << 20, 0, &l); /* no queue yet counts as one */
    CU_ASSERT_EQUAL(l.consumer_kbytes, 16384);
    mbudget_consumer_limits(4LL << 20, 8, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, MBUDGET_FLOOR_KBYTES);
    mbudget_consumer_limits(0, 4, &l);
    CU_ASSERT_EQUAL(l.consumer_kbytes, 16384);
}

static void test_batch_bytes(void)
{
    CU_ASSERT_EQUAL(mbudget_batch_bytes(32LL << 20), 16LL << 20);
    CU_ASSERT_EQUAL(mbudget_batch_bytes(2LL << 20), 4LL << 20); /* floor: a few fetches */
    CU_ASSERT_EQUAL(mbudget_batch_bytes(0), 64LL << 20);       /* no budget */
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"shared consumer per copy-thread queue", test_consumer_limits},
        {"batch passthrough engine", test_batch_bytes},
        {"share of the budget", test_share},
        {"floors", test_floors},
        {"message.max.bytes fits", test_message_max_bytes},
        {"no budget: fixed per-task limits", test_no_budget},
        {"explicit settings win", test_user_wins},
    };
    return cu_add_tests("mbudget", tests, sizeof tests / sizeof tests[0]);
}
