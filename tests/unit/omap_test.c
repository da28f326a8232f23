/* omap: segments as records are copied, translation of consumer positions (exact, gaps from
 * retention or markers, the copy's end, ahead of the copy, re-copies, dropped segments), and
 * the JSON form kept in offset values. */
#include <CUnit/CUnit.h>
#include <jansson.h>

#include "tests/unit/cu.h"
#include "worker/omap.h"

static void copy_range(omap_t *m, int64_t src, int64_t dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        omap_record(m, src + i, dst + i);
}

static void expect(const omap_t *m, int64_t copied, int64_t c, omap_kind_t kind, int64_t dst, int64_t skipped)
{
    omap_tr_t r = omap_translate(m, copied, c);
    CU_ASSERT_EQUAL(r.kind, kind);
    if (kind != OMAP_EMPTY && kind != OMAP_BELOW)
        CU_ASSERT_EQUAL(r.dst, dst);
    CU_ASSERT_EQUAL(r.skipped, skipped);
}

static void test_segments(void)
{
    omap_t m = {0};
    CU_ASSERT_EQUAL(omap_end(&m), -1);
    expect(&m, -1, 5, OMAP_EMPTY, -1, 0);
    /* retention removed 0..99 before the copy; the destination already held 250 records */
    CU_ASSERT_EQUAL(omap_record(&m, 100, 250), 1);
    copy_range(&m, 101, 251, 99);
    CU_ASSERT_EQUAL(m.n, 1);
    CU_ASSERT_EQUAL(m.seg[0].n, 100);
    /* a transaction marker at source 200: the next record is 201 */
    CU_ASSERT_EQUAL(omap_record(&m, 201, 350), 1);
    copy_range(&m, 202, 351, 49);
    CU_ASSERT_EQUAL(m.n, 2);
    CU_ASSERT_EQUAL(omap_end(&m), 400);
    CU_ASSERT_EQUAL(omap_record(&m, 220, 369), 0); /* known already: nothing changes */
    CU_ASSERT_EQUAL(m.n, 2);

    expect(&m, 250, 150, OMAP_EXACT, 300, 0);
    expect(&m, 250, 40, OMAP_GAP, 250, 60);   /* 40..99 were deleted before the copy */
    expect(&m, 250, 200, OMAP_GAP, 350, 1);   /* the marker */
    expect(&m, 251, 251, OMAP_END, 400, 0);   /* read everything that was copied */
    expect(&m, 251, 260, OMAP_AHEAD, 400, 0); /* past the copy */

    /* a re-copy of 230.. after a crash without the header: the newest copy wins */
    copy_range(&m, 230, 400, 30);
    CU_ASSERT_EQUAL(m.n, 3);
    expect(&m, 260, 235, OMAP_EXACT, 405, 0);
    expect(&m, 260, 210, OMAP_EXACT, 359, 0);
}

/* forwarded batches: one run per batch, the same map as record by record */
static void test_runs(void)
{
    omap_t a = {0}, b = {0};
    CU_ASSERT_EQUAL(omap_record_run(&a, 100, 0, 0), 0); /* nothing */
    CU_ASSERT_EQUAL(a.n, 0);
    CU_ASSERT_EQUAL(omap_record_run(&a, 100, 0, 50), 1);
    CU_ASSERT_EQUAL(omap_record_run(&a, 150, 50, 25), 0); /* the next batch continues it */
    CU_ASSERT_EQUAL(omap_record_run(&a, 176, 75, 10), 1); /* a marker at 175 */
    copy_range(&b, 100, 0, 75);
    copy_range(&b, 176, 75, 10);
    CU_ASSERT_EQUAL(a.n, b.n);
    for (int i = 0; i < a.n && i < b.n; i++)
        CU_ASSERT(a.seg[i].src == b.seg[i].src && a.seg[i].dst == b.seg[i].dst && a.seg[i].n == b.seg[i].n);
    expect(&a, 186, 160, OMAP_EXACT, 60, 0);
    expect(&a, 186, 175, OMAP_GAP, 75, 1);
    expect(&a, 186, 186, OMAP_END, 85, 0);
    /* a batch written again (a retry answered DUPLICATE later, or a re-copy): known */
    CU_ASSERT_EQUAL(omap_record_run(&a, 176, 75, 10), 0);
    CU_ASSERT_EQUAL(a.n, 2);
    /* one that overlaps the end of the last run extends it */
    CU_ASSERT_EQUAL(omap_record_run(&a, 180, 79, 20), 0);
    CU_ASSERT_EQUAL(omap_end(&a), 99);
}

static void test_dropped_and_json(void)
{
    omap_t m = {0};
    for (int i = 0; i < OMAP_MAX_SEGS + 3; i++)
        copy_range(&m, i * 10, i * 9, 5); /* every segment moves the difference */
    CU_ASSERT_EQUAL(m.n, OMAP_MAX_SEGS);
    CU_ASSERT_EQUAL(m.floor, 25);        /* segments 0,1,2 dropped: 0..24 unknown now */
    expect(&m, -1, 22, OMAP_BELOW, -1, 0);
    expect(&m, -1, 31, OMAP_EXACT, 28, 0);

    json_t *v = json_pack("{s:i}", "offset", 7);
    omap_to_json(&m, v);
    omap_t back;
    CU_ASSERT_EQUAL(omap_from_json(&back, v), 0);
    CU_ASSERT_EQUAL(back.n, m.n);
    CU_ASSERT_EQUAL(back.floor, 25);
    CU_ASSERT_EQUAL(back.seg[5].src, m.seg[5].src);
    CU_ASSERT_EQUAL(back.seg[5].dst, m.seg[5].dst);
    json_decref(v);

    /* malformed maps are refused whole */
    const char *bad[] = {"{\"ferry.map\":5}", "{\"ferry.map\":[[1,2]]}", "{\"ferry.map\":[[1,2,0]]}",
                         "{\"ferry.map\":[[1,-2,3]]}", "{\"ferry.map\":[[1,10,3],[5,11,1]]}",
                         "{\"ferry.map\":[],\"ferry.map.floor\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        CU_ASSERT_EQUAL(omap_from_json(&back, b), -1);
        CU_ASSERT_EQUAL(back.n, 0);
        json_decref(b);
    }
    json_t *none = json_loads("{\"offset\":3}", 0, NULL);
    CU_ASSERT_EQUAL(omap_from_json(&back, none), 0);
    CU_ASSERT_EQUAL(back.n, 0);
    json_decref(none);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"segments and translation: gaps, end, ahead, re-copies", test_segments},
        {"runs of forwarded batches", test_runs},
        {"dropped segments, JSON round trip, malformed maps", test_dropped_and_json},
    };
    return cu_add_tests("omap", tests, sizeof tests / sizeof tests[0]);
}
