/* mwin_test: the window behaves as Kafka's SampledStat with two 30 s samples: values stay in
 * it 30 to 60 s, min/max/mean combine both samples, a batch counts as its values, and an
 * empty or expired window reads nothing. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"

#include "worker/mwin.h"

static void test_empty(void)
{
    mwin_t w;
    mwin_init(&w);
    double lo = -1, hi = -1, avg = -1;
    CU_ASSERT_EQUAL(mwin_read(&w, 0, &lo, &hi, &avg), 0);
    CU_ASSERT_EQUAL(mwin_read(&w, 1700000000000, &lo, &hi, &avg), 0);
    CU_ASSERT_EQUAL(lo, -1); /* left alone */
    mwin_add(&w, 1000, 5, 5, 5, 0); /* no values: nothing */
    CU_ASSERT_EQUAL(mwin_read(&w, 1000, &lo, &hi, &avg), 0);
}

static void test_one_sample(void)
{
    mwin_t w;
    mwin_init(&w);
    const int64_t t0 = 1700000000000;
    mwin_add(&w, t0, 10, 10, 10, 1);
    mwin_add(&w, t0 + 100, 30, 30, 30, 1);
    mwin_add(&w, t0 + 200, 2, 8, 20, 4); /* a batch: 4 values, 2..8, sum 20 */
    double lo, hi, avg;
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 300, &lo, &hi, &avg), 6);
    CU_ASSERT_EQUAL(lo, 2);
    CU_ASSERT_EQUAL(hi, 30);
    CU_ASSERT_DOUBLE_EQUAL(avg, 60.0 / 6, 1e-9);
}

static void test_sliding(void)
{
    mwin_t w;
    mwin_init(&w);
    const int64_t t0 = 5000;
    double lo, hi, avg;
    mwin_add(&w, t0, 100, 100, 100, 1);              /* sample A from t0 */
    mwin_add(&w, t0 + 29999, 50, 50, 50, 1);         /* still A */
    mwin_add(&w, t0 + 30000, 7, 7, 7, 1);            /* A is complete: sample B from t0+30 s */
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 30000, &lo, &hi, &avg), 3);
    CU_ASSERT_EQUAL(lo, 7);
    CU_ASSERT_EQUAL(hi, 100);
    /* A expires 60 s after it started: only B's value is left */
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 59999, &lo, &hi, &avg), 3);
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 60000, &lo, &hi, &avg), 1);
    CU_ASSERT_EQUAL(lo, 7);
    CU_ASSERT_EQUAL(hi, 7);
    CU_ASSERT_DOUBLE_EQUAL(avg, 7, 1e-9);
    /* B complete: the next value replaces A (reset), so A's old values never come back */
    mwin_add(&w, t0 + 61000, 1, 1, 1, 1);
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 61000, &lo, &hi, &avg), 2);
    CU_ASSERT_EQUAL(lo, 1);
    CU_ASSERT_EQUAL(hi, 7);
    CU_ASSERT_DOUBLE_EQUAL(avg, 4, 1e-9);
    /* idle for more than the whole window: nothing to read */
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 200000, &lo, &hi, &avg), 0);
    /* and the next value starts afresh */
    mwin_add(&w, t0 + 200000, 42, 42, 42, 1);
    CU_ASSERT_EQUAL(mwin_read(&w, t0 + 200001, &lo, &hi, &avg), 1);
    CU_ASSERT_EQUAL(lo, 42);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"empty", test_empty},
        {"one_sample", test_one_sample},
        {"sliding", test_sliding},
    };
    return cu_add_tests("mwin", tests, sizeof tests / sizeof tests[0]);
}
