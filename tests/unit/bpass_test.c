/* bpass: the pure parts of batch passthrough. What becomes of each fetched batch (forward,
 * ignore, skip, hand back to the record path, and from which offset): the wanted offset inside
 * or before a batch, old message formats, offset gaps, LogAppendTime, a corrupt CRC, and
 * transactions the way Kafka's read_committed consumer reads them — markers skipped, the
 * batches of aborted transactions dropped from their first offset to their producer's marker,
 * committed ones and other producers' kept, aborted lists repeated by overlapping fetches.
 * The mock cluster writes no transaction markers, so this is where that logic is tested.
 * And bpass_same_records, which the destination-tail resume matches batches with. */
#include "worker/bpass.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/cu.h"
#include "tests/unit/kbatch.h"

static const rec_spec_t recs[] = {{"k0", "v0", 0}, {"k1", "v1", 1}, {"k2", "v2", 0}, {"k3", "v3", 2}};

/* One batch in @p w (reset first), iterated into @p b (which points into @p w). */
static void one(kwire_wr_t *w, kwire_batch_t *b, int64_t base, int n, int16_t attrs, int64_t pid)
{
    kwire_wr_reset(w);
    build_batch_of(w, base, recs, n, attrs, pid);
    kwire_batch_iter_t it;
    ferr_t err = {0};
    kwire_batch_iter_init(&it, w->buf, w->len);
    CU_ASSERT_EQUAL_FATAL(kwire_batch_next(&it, b, &err), KWIRE_ITEM);
}

static bpass_verdict_t judge(const kwire_batch_t *b, int64_t want, bpass_txn_t *txn, int64_t *at, const char **why)
{
    return bpass_judge(b, want, txn, at, why);
}

static void test_offsets_and_formats(void)
{
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_batch_t b;
    int64_t at;
    const char *why;
    one(&w, &b, 100, 4, 0, -1); /* offsets 100..103 */
    CU_ASSERT_EQUAL(judge(&b, 100, NULL, &at, &why), BPASS_FORWARD);
    CU_ASSERT_PTR_NULL(why);
    CU_ASSERT_EQUAL(judge(&b, 104, NULL, &at, &why), BPASS_BEFORE); /* a Fetch at 104 may start here */
    CU_ASSERT_EQUAL(judge(&b, 102, NULL, &at, &why), BPASS_HANDBACK);
    CU_ASSERT_EQUAL(at, 102); /* from the wanted offset, not the batch's */
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "starts before the wanted offset"));
    CU_ASSERT_EQUAL(judge(&b, 90, NULL, &at, &why), BPASS_FORWARD); /* retention: later is fine */

    /* LogAppendTime (attribute bit 3): the destination would stamp its own time */
    one(&w, &b, 100, 4, 0x08, -1);
    CU_ASSERT_EQUAL(judge(&b, 100, NULL, &at, &why), BPASS_HANDBACK);
    CU_ASSERT_EQUAL(at, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "LogAppendTime"));

    /* a corrupt batch: never forwarded, handed back at its first offset */
    one(&w, &b, 100, 4, 0, -1);
    w.buf[w.len - 1] ^= 0x01;
    CU_ASSERT_EQUAL(judge(&b, 100, NULL, &at, &why), BPASS_HANDBACK);
    CU_ASSERT_EQUAL(at, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "CRC"));

    /* offset gaps (compaction): the record count no longer matches the offset range */
    one(&w, &b, 100, 4, 0, -1);
    b.last_offset_delta = 9;
    CU_ASSERT_EQUAL(judge(&b, 100, NULL, &at, &why), BPASS_HANDBACK);
    CU_ASSERT(strstr(why, "offset gaps") || strstr(why, "CRC")); /* the delta is inside the CRC too */

    /* an old message format */
    one(&w, &b, 100, 4, 0, -1);
    b.magic = 1;
    CU_ASSERT_EQUAL(judge(&b, 100, NULL, &at, &why), BPASS_HANDBACK);
    CU_ASSERT_EQUAL(at, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "magic"));
    kwire_wr_dispose(&w);
}

#define TXN KWIRE_ATTR_TRANSACTIONAL
#define MARKER (KWIRE_ATTR_TRANSACTIONAL | KWIRE_ATTR_CONTROL)

static void test_transactions(void)
{
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_batch_t b;
    int64_t at;
    const char *why;
    /* read_uncommitted: a marker is skipped, a transaction's data forwarded */
    one(&w, &b, 10, 1, MARKER, 7);
    CU_ASSERT_EQUAL(judge(&b, 10, NULL, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 11, 4, TXN, 7);
    CU_ASSERT_EQUAL(judge(&b, 11, NULL, &at, &why), BPASS_FORWARD);

    /* read_committed: producer 7 aborted a transaction starting at 20; producer 8 committed
     * one in between; the Fetch that lists the abort is followed by another listing it again */
    bpass_txn_t x = {0};
    bpass_txn_note(&x, 7, 20);
    bpass_txn_note(&x, 7, 20);
    CU_ASSERT_EQUAL(x.n, 1);
    one(&w, &b, 16, 4, TXN, 7); /* 16..19: an earlier, committed transaction of 7 */
    CU_ASSERT_EQUAL(judge(&b, 16, &x, &at, &why), BPASS_FORWARD);
    one(&w, &b, 20, 4, TXN, 7); /* 20..23: aborted */
    CU_ASSERT_EQUAL(judge(&b, 20, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 24, 2, TXN, 8); /* 24..25: producer 8, committed */
    CU_ASSERT_EQUAL(judge(&b, 24, &x, &at, &why), BPASS_FORWARD);
    one(&w, &b, 26, 2, 0, 9); /* 26..27: not transactional */
    CU_ASSERT_EQUAL(judge(&b, 26, &x, &at, &why), BPASS_FORWARD);
    bpass_txn_note(&x, 7, 20); /* listed again by the next Fetch: already open, not reopened */
    one(&w, &b, 28, 3, TXN, 7); /* 28..30: still inside 7's aborted transaction */
    CU_ASSERT_EQUAL(judge(&b, 28, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 31, 1, MARKER, 8); /* 8's commit marker: skipped, 7 stays aborted */
    CU_ASSERT_EQUAL(judge(&b, 31, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 32, 1, TXN, 7);
    CU_ASSERT_EQUAL(judge(&b, 32, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 33, 1, MARKER, 7); /* 7's abort marker ends it */
    CU_ASSERT_EQUAL(judge(&b, 33, &x, &at, &why), BPASS_SKIPPED);
    CU_ASSERT_EQUAL(x.nopen, 0);
    one(&w, &b, 34, 4, TXN, 7); /* 7's next transaction, not aborted */
    CU_ASSERT_EQUAL(judge(&b, 34, &x, &at, &why), BPASS_FORWARD);
    /* the same batches read_uncommitted: nothing of the aborted one is dropped */
    one(&w, &b, 20, 4, TXN, 7);
    CU_ASSERT_EQUAL(judge(&b, 20, NULL, &at, &why), BPASS_FORWARD);
    /* two producers aborted at once */
    bpass_txn_note(&x, 7, 40);
    bpass_txn_note(&x, 8, 41);
    one(&w, &b, 40, 1, TXN, 7);
    CU_ASSERT_EQUAL(judge(&b, 40, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 41, 1, TXN, 8);
    CU_ASSERT_EQUAL(judge(&b, 41, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 42, 1, MARKER, 7);
    CU_ASSERT_EQUAL(judge(&b, 42, &x, &at, &why), BPASS_SKIPPED);
    one(&w, &b, 43, 1, TXN, 8);
    CU_ASSERT_EQUAL(judge(&b, 43, &x, &at, &why), BPASS_SKIPPED); /* 8 still open */
    one(&w, &b, 44, 1, TXN, 7);
    CU_ASSERT_EQUAL(judge(&b, 44, &x, &at, &why), BPASS_FORWARD); /* 7 closed */
    bpass_txn_dispose(&x);
    kwire_wr_dispose(&w);
}

static void test_same_records(void)
{
    kwire_wr_t a, c;
    kwire_wr_init(&a);
    kwire_wr_init(&c);
    kwire_batch_t ba, bc;
    one(&a, &ba, 100, 4, 0, -1);
    one(&c, &bc, 0, 4, 0, 12345); /* another offset and producer: what a forward rewrites */
    CU_ASSERT_TRUE(bpass_same_records(&ba, &bc));
    one(&c, &bc, 0, 3, 0, 12345);
    CU_ASSERT_FALSE(bpass_same_records(&ba, &bc));
    one(&c, &bc, 0, 4, 0, 12345);
    c.buf[c.len - 1] ^= 0x20; /* one record byte differs */
    CU_ASSERT_FALSE(bpass_same_records(&ba, &bc));
    kwire_wr_dispose(&a);
    kwire_wr_dispose(&c);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"offsets, formats, corrupt batches", test_offsets_and_formats},
        {"transactions: markers, aborted, committed", test_transactions},
        {"same records (the tail match)", test_same_records},
    };
    return cu_add_tests("bpass", tests, sizeof tests / sizeof tests[0]);
}
