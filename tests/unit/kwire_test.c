/* Unit tests for kwire (proto/kwire.c): the reader and writer primitives, framing, every
 * message in both directions at every version (round trip, every truncation refused, trailing
 * bytes refused), hostile counts and lengths, version negotiation, and record batches: the
 * iterator (partial trailing batch, legacy magic), CRC32C, rewrite and the record walker. Run
 * under ASan+UBSan: "no crash, no leak" is much of what these assert. The end-to-end test
 * against librdkafka's mock cluster is kwire_mock_test.c. */
#include "proto/kwire.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/cu.h"
#include "tests/unit/kbatch.h"
#include "tests/unit/kwire_codecs.h"

static uint64_t rng_state = 42;

static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* ---- primitives ---- */

static void test_crc32c(void)
{
    CU_ASSERT_EQUAL(kwire_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(kwire_crc32c(kwire_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    CU_ASSERT_EQUAL(kwire_crc32c(0, "", 0), 0);
    uint8_t zeros[32] = {0};
    CU_ASSERT_EQUAL(kwire_crc32c(0, zeros, sizeof zeros), 0x8A9136AAu); /* RFC 3720 B.4 */
}

static void test_reader(void)
{
    static const uint8_t buf[] = {0x81, 0xff, 0xfe, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 'a', 'b', 'c', 0xff, 0xff};
    kwire_rd_t r;
    kwire_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(kwire_rd_i8(&r, "a"), (int8_t)0x81);
    CU_ASSERT_EQUAL(kwire_rd_i16(&r, "b"), (int16_t)0xfffe);
    CU_ASSERT_EQUAL(kwire_rd_i16(&r, "c"), 0);
    CU_ASSERT_EQUAL(kwire_rd_i8(&r, "d"), 1);
    CU_ASSERT_EQUAL(kwire_rd_i64(&r, "e"), 2);
    const char *s;
    CU_ASSERT_EQUAL(kwire_rd_str(&r, "s", false, &s), 3);
    CU_ASSERT_NSTRING_EQUAL(s, "abc", 3);
    CU_ASSERT_EQUAL(kwire_rd_str(&r, "null", true, &s), -1);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT(kwire_rd_ok(&r));
    CU_ASSERT_EQUAL(kwire_rd_left(&r), 0);
    /* sticky: a failed read returns 0 and every later read fails too */
    CU_ASSERT_EQUAL(kwire_rd_i32(&r, "past end"), 0);
    CU_ASSERT_FALSE(kwire_rd_ok(&r));
    ferr_t err;
    CU_ASSERT_EQUAL(kwire_rd_error(&r, "ctx", &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "past end: truncated at offset 21 of 21"));
    kwire_rd_init(&r, buf + 19, 2);
    CU_ASSERT_EQUAL(kwire_rd_str(&r, "nonnull", false, &s), -1); /* -1 where null is not allowed */
    CU_ASSERT_FALSE(kwire_rd_ok(&r));
    static const uint8_t neg[] = {0xff, 0xfe};
    kwire_rd_init(&r, neg, 2);
    kwire_rd_str(&r, "neg", true, &s);
    CU_ASSERT_STRING_EQUAL(r.fail, "negative length");
    kwire_rd_init(&r, NULL, 5); /* NULL is an empty buffer */
    CU_ASSERT_EQUAL(kwire_rd_left(&r), 0);
}

static void test_varints(void)
{
    static const struct {
        int64_t v;
        uint8_t bytes[10];
        size_t n;
    } cases[] = {{0, {0x00}, 1}, {-1, {0x01}, 1}, {1, {0x02}, 1}, {-64, {0x7f}, 1}, {64, {0x80, 0x01}, 2},
                 {300, {0xd8, 0x04}, 2}, {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
                 {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kwire_wr_t w;
        kwire_wr_init(&w);
        kwire_wr_varint(&w, (int32_t)cases[i].v);
        CU_ASSERT_EQUAL(w.len, cases[i].n);
        CU_ASSERT(memcmp(w.buf, cases[i].bytes, cases[i].n) == 0);
        kwire_rd_t r;
        kwire_rd_init(&r, w.buf, w.len);
        CU_ASSERT_EQUAL(kwire_rd_varint(&r, "v"), cases[i].v);
        CU_ASSERT(kwire_rd_ok(&r) && kwire_rd_left(&r) == 0);
        kwire_wr_reset(&w);
        kwire_wr_varlong(&w, cases[i].v);
        kwire_rd_init(&r, w.buf, w.len);
        CU_ASSERT_EQUAL(kwire_rd_varlong(&r, "v"), cases[i].v);
        kwire_wr_dispose(&w);
    }
    int64_t big[] = {INT64_MAX, INT64_MIN, 1LL << 40, -(1LL << 50)};
    for (size_t i = 0; i < 4; i++) {
        kwire_wr_t w;
        kwire_wr_init(&w);
        kwire_wr_varlong(&w, big[i]);
        kwire_rd_t r;
        kwire_rd_init(&r, w.buf, w.len);
        CU_ASSERT_EQUAL(kwire_rd_varlong(&r, "v"), big[i]);
        CU_ASSERT(kwire_rd_ok(&r));
        kwire_wr_dispose(&w);
    }
    static const uint8_t over32[] = {0xff, 0xff, 0xff, 0xff, 0x1f}; /* 33 bits */
    static const uint8_t long32[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t over64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t trunc[] = {0x80, 0x80};
    kwire_rd_t r;
    kwire_rd_init(&r, over32, sizeof over32);
    kwire_rd_uvarint(&r, "v");
    CU_ASSERT_STRING_EQUAL(r.fail, "varint overflows");
    CU_ASSERT_EQUAL(r.fail_pos, 0);
    kwire_rd_init(&r, long32, sizeof long32);
    kwire_rd_uvarint(&r, "v");
    CU_ASSERT_FALSE(kwire_rd_ok(&r));
    kwire_rd_init(&r, over64, sizeof over64);
    kwire_rd_uvarlong(&r, "v");
    CU_ASSERT_FALSE(kwire_rd_ok(&r));
    kwire_rd_init(&r, trunc, sizeof trunc);
    kwire_rd_varint(&r, "v");
    CU_ASSERT_STRING_EQUAL(r.fail, "truncated");
}

static void test_counts(void)
{
    uint8_t buf[64] = {0};
    kwire_rd_t r;
    buf[3] = 10; /* count 10, 60 bytes left */
    kwire_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(kwire_rd_count(&r, "a", false, 6), 10);
    kwire_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(kwire_rd_count(&r, "a", false, 7), -1); /* 70 bytes needed */
    CU_ASSERT_STRING_EQUAL(r.fail, "array count larger than the remaining bytes can hold");
    memset(buf, 0xff, 4);
    kwire_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(kwire_rd_count(&r, "a", true, 1), -1);
    CU_ASSERT(kwire_rd_ok(&r));
    kwire_rd_init(&r, buf, sizeof buf);
    kwire_rd_count(&r, "a", false, 1);
    CU_ASSERT_FALSE(kwire_rd_ok(&r));
    buf[0] = 0x80; /* INT32_MIN */
    kwire_rd_init(&r, buf, sizeof buf);
    kwire_rd_count(&r, "a", true, 1);
    CU_ASSERT_STRING_EQUAL(r.fail, "negative count");
    buf[0] = 0x00, buf[1] = 0x20, buf[2] = 0x00, buf[3] = 0x01; /* above KWIRE_MAX_ARRAY */
    kwire_rd_init(&r, buf, sizeof buf);
    kwire_rd_count(&r, "a", false, 0);
    CU_ASSERT_STRING_EQUAL(r.fail, "array count above the limit");
}

static void test_writer(void)
{
    kwire_wr_t w;
    kwire_wr_init(&w);
    size_t mark = kwire_wr_mark(&w);
    kwire_wr_i8(&w, -2);
    kwire_wr_i16(&w, -3);
    kwire_wr_i32(&w, 0x01020304);
    kwire_wr_i64(&w, -5);
    kwire_wr_str(&w, "xy", 2);
    kwire_wr_str(&w, NULL, 0);
    kwire_wr_bytes(&w, "\0\1", 2);
    kwire_wr_bytes(&w, NULL, 0);
    kwire_wr_patch_len(&w, mark);
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 4 + 1 + 2 + 4 + 8 + 4 + 2 + 6 + 4);
    kwire_rd_t r;
    const uint8_t *p;
    const char *s;
    kwire_rd_init(&r, w.buf, w.len);
    CU_ASSERT_EQUAL(kwire_rd_i32(&r, "len"), (int32_t)w.len - 4);
    CU_ASSERT_EQUAL(kwire_rd_i8(&r, "i8"), -2);
    CU_ASSERT_EQUAL(kwire_rd_i16(&r, "i16"), -3);
    CU_ASSERT_EQUAL(kwire_rd_i32(&r, "i32"), 0x01020304);
    CU_ASSERT_EQUAL(kwire_rd_i64(&r, "i64"), -5);
    CU_ASSERT_EQUAL(kwire_rd_str(&r, "s", false, &s), 2);
    CU_ASSERT_EQUAL(kwire_rd_str(&r, "ns", true, &s), -1);
    CU_ASSERT_EQUAL(kwire_rd_bytes(&r, "b", false, &p), 2);
    CU_ASSERT(p[0] == 0 && p[1] == 1);
    CU_ASSERT_EQUAL(kwire_rd_bytes(&r, "nb", true, &p), -1);
    CU_ASSERT(kwire_rd_ok(&r) && kwire_rd_left(&r) == 0);
    static char big[40000];
    memset(big, 'a', sizeof big);
    kwire_wr_str(&w, big, sizeof big); /* over INT16_MAX */
    CU_ASSERT(w.failed);
    CU_ASSERT_PTR_NULL(kwire_wr_alloc(&w, 1));
    kwire_wr_reset(&w);
    CU_ASSERT(!w.failed && w.len == 0);
    CU_ASSERT_PTR_NOT_NULL(kwire_wr_alloc(&w, 0));
    CU_ASSERT_PTR_NULL(kwire_wr_alloc(&w, (size_t)INT32_MAX + 1)); /* a frame's limit */
    kwire_wr_dispose(&w);
}

static void test_frame_and_headers(void)
{
    size_t n;
    ferr_t err;
    static const uint8_t ok[] = {0, 0, 0, 8}, small[] = {0, 0, 0, 3}, negative[] = {0xff, 0xff, 0xff, 0xf0},
                         huge[] = {0x7f, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(kwire_frame_len(ok, 3, 100, &n, &err), FERR_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(kwire_frame_len(ok, 4, 100, &n, &err), FERR_OK);
    CU_ASSERT_EQUAL(n, 12);
    CU_ASSERT_EQUAL(kwire_frame_len(small, 4, 100, &n, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(kwire_frame_len(negative, 4, 100, &n, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(kwire_frame_len(huge, 4, 1 << 20, &n, &err), FERR_TOO_LARGE);
    CU_ASSERT_EQUAL(kwire_frame_len(ok, 4, 7, &n, &err), FERR_TOO_LARGE);

    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_req_hdr_t h = {2, 77, "ferry"};
    CU_ASSERT_EQUAL(kwire_apiversions_req_write(&w, &h, &err), FERR_OK);
    static const uint8_t want[] = {0, 0, 0, 15, 0, 18, 0, 2, 0, 0, 0, 77, 0, 5, 'f', 'e', 'r', 'r', 'y'};
    CU_ASSERT_EQUAL(w.len, sizeof want);
    CU_ASSERT(memcmp(w.buf, want, sizeof want) == 0);
    int16_t key, ver;
    int32_t corr;
    size_t hl;
    CU_ASSERT_EQUAL(kwire_req_hdr_read(w.buf + 4, w.len - 4, &key, &ver, &corr, &hl, &err), FERR_OK);
    CU_ASSERT(key == KWIRE_API_API_VERSIONS && ver == 2 && corr == 77 && hl == 15);
    CU_ASSERT_EQUAL(kwire_resp_hdr_read(w.buf + 4, 3, &corr, &err), FERR_INVALID);
    h.client_id = NULL;
    kwire_wr_reset(&w);
    CU_ASSERT_EQUAL(kwire_apiversions_req_write(&w, &h, &err), FERR_OK);
    CU_ASSERT_EQUAL(w.len, 14); /* null client id: length -1 */
    h.version = 3;
    CU_ASSERT_EQUAL(kwire_apiversions_req_write(&w, &h, &err), FERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(w.len, 14);
    kwire_wr_dispose(&w);
}

/* ---- every message, both directions ---- */

static const kwire_metadata_req_topic_t md_req_topics[] = {{"alpha"}, {"beta"}};
static const kwire_metadata_req_t md_req = {md_req_topics, 2, true};
static kwire_metadata_broker_t md_brokers[] = {{1, "host-a", 9092, "rack-1"}, {2, "host-b", 9093, NULL}};
static kwire_metadata_partition_t md_parts[] = {{0, 0, 1, 5}, {6, 1, -1, 7}};
static kwire_metadata_topic_t md_topics[] = {{0, "alpha", false, md_parts, 2}, {3, "gone", true, NULL, 0}};
static const kwire_metadata_resp_t md_resp = {11, md_brokers, 2, "cluster-x", 2, md_topics, 2, NULL};

static const kwire_fetch_req_partition_t fe_req_parts[] = {{0, 4, 100, 3, 1 << 20}, {5, -1, 0, -1, 1024}};
static const kwire_fetch_req_topic_t fe_req_topics[] = {{"src", fe_req_parts, 2}};
static const kwire_fetch_req_t fe_req = {500, 1, 1 << 24, 1, fe_req_topics, 1, "rack-2"};
static const uint8_t blob[] = {1, 2, 3, 4, 5, 6, 7};
static kwire_aborted_txn_t fe_aborted[] = {{1000, 17}, {1001, 19}};
static kwire_fetch_partition_t fe_parts[] = {{0, 0, 120, 110, 3, fe_aborted, 2, 2, blob, sizeof blob},
                                             {5, 1, -1, -1, -1, NULL, -1, -1, NULL, 0}};
static kwire_fetch_topic_t fe_topics[] = {{"src", fe_parts, 2}};
static const kwire_fetch_resp_t fe_resp = {3, 0, 0, fe_topics, 1, NULL};

static const kwire_produce_req_partition_t pr_req_parts[] = {{3, blob, sizeof blob}, {4, blob, 0}};
static const kwire_produce_req_topic_t pr_req_topics[] = {{"dst", pr_req_parts, 2}};
static const kwire_produce_req_t pr_req = {-1, 30000, pr_req_topics, 1};
static kwire_record_error_t pr_recerr[] = {{2, "bad record"}, {3, NULL}};
static kwire_produce_partition_t pr_parts[] = {{3, 0, 4000, -1, 12, NULL, 0, NULL},
                                               {4, 87, -1, -1, -1, pr_recerr, 2, "invalid"}};
static kwire_produce_topic_t pr_topics[] = {{"dst", pr_parts, 2}};
static const kwire_produce_resp_t pr_resp = {pr_topics, 1, 5, NULL};

static const kwire_initpid_req_t ip_req = {60000};
static const kwire_initpid_resp_t ip_resp = {0, 0, 4711, 3, NULL};

static const kwire_listoffsets_req_partition_t lo_req_parts[] = {{0, 2, KWIRE_OFFSET_EARLIEST},
                                                                 {1, -1, KWIRE_OFFSET_LATEST}};
static const kwire_listoffsets_req_topic_t lo_req_topics[] = {{"src", lo_req_parts, 2}};
static const kwire_listoffsets_req_t lo_req = {1, lo_req_topics, 1};
static kwire_listoffsets_partition_t lo_parts[] = {{0, 0, -1, 17, 4}, {1, 6, -1, -1, -1}};
static kwire_listoffsets_topic_t lo_topics[] = {{"src", lo_parts, 2}};
static const kwire_listoffsets_resp_t lo_resp = {9, lo_topics, 1, NULL};

static const kwire_saslhandshake_req_t sh_req = {"SCRAM-SHA-512"};
static kwire_sasl_mechanism_t sh_mechs[] = {{"PLAIN"}, {"SCRAM-SHA-256"}};
static const kwire_saslhandshake_resp_t sh_resp = {0, sh_mechs, 2, NULL};
static const kwire_saslauth_req_t sa_req = {(const uint8_t *)"n,,n=u,r=abc", 12};
static const kwire_saslauth_resp_t sa_resp = {58, "bad password", (const uint8_t *)"", 0, 3600000, NULL};

static kwire_api_version_t av_keys[] = {{0, 0, 7}, {1, 0, 11}, {3, 0, 2}};
static const kwire_apiversions_resp_t av_resp = {0, av_keys, 3, 0, NULL};

/* The fixtures, in kwc_all's order. */
static const void *const fix_req[] = {NULL, &md_req, &fe_req, &pr_req, &ip_req, &lo_req, &sh_req, &sa_req};
static const void *const fix_resp[] = {&av_resp, &md_resp, &fe_resp, &pr_resp, &ip_resp, &lo_resp, &sh_resp, &sa_resp};
#define FIX(c, resp) ((resp) ? fix_resp : fix_req)[(c) - kwc_all]

/* kwc_decode_reencode(), asserting that whatever decodes also encodes. */
static ferr_code_t decode_reencode(const kwc_t *c, bool resp, const uint8_t *body, size_t len, int16_t v,
                                   kwire_wr_t *out, ferr_t *err)
{
    ferr_code_t wrc, rc = kwc_decode_reencode(c, resp, body, len, v, out, &wrc, err);
    CU_ASSERT_EQUAL(wrc, FERR_OK);
    CU_ASSERT(rc == FERR_OK || rc == FERR_INVALID || rc == FERR_UNSUPPORTED);
    return rc;
}

/* Writes the fixture of @p c at @p v (a complete frame) into @p w. */
static size_t write_fixture(const kwc_t *c, bool resp, int16_t v, kwire_wr_t *w)
{
    ferr_t err;
    kwire_req_hdr_t h = {v, 7, "kwire"};
    ferr_code_t rc = resp ? c->resp_write(w, 7, v, FIX(c, true), &err) : c->req_write(w, &h, FIX(c, false), &err);
    CU_ASSERT_EQUAL_FATAL(rc, FERR_OK);
    size_t hdr = KWIRE_RESP_HDR_LEN;
    if (!resp) {
        int16_t key, ver;
        int32_t corr;
        CU_ASSERT_EQUAL(kwire_req_hdr_read(w->buf + 4, w->len - 4, &key, &ver, &corr, &hdr, &err), FERR_OK);
        CU_ASSERT(key == c->api && ver == v && corr == 7);
    }
    size_t flen;
    CU_ASSERT_EQUAL(kwire_frame_len(w->buf, w->len, 1 << 20, &flen, &err), FERR_OK);
    CU_ASSERT_EQUAL(flen, w->len);
    return 4 + hdr;
}

static void roundtrip_one(const kwc_t *c, bool resp, int16_t v)
{
    kwire_wr_t w, w2;
    ferr_t err;
    kwire_wr_init(&w);
    kwire_wr_init(&w2);
    size_t body = write_fixture(c, resp, v, &w);
    if (!resp && !c->req_decode) { /* ApiVersions: no request fields */
        CU_ASSERT_EQUAL(w.len, body);
        goto out;
    }
    CU_ASSERT_EQUAL(decode_reencode(c, resp, w.buf + body, w.len - body, v, &w2, &err), FERR_OK);
    if (w.len != w2.len || memcmp(w.buf, w2.buf, w.len))
        fprintf(stderr, "\n%s v%d %s: re-encoding differs\n", c->name, v, resp ? "response" : "request");
    CU_ASSERT(w.len == w2.len && memcmp(w.buf, w2.buf, w.len) == 0);
    for (size_t cut = 0; cut < w.len - body; cut++) {
        ferr_code_t rc = decode_reencode(c, resp, w.buf + body, cut, v, NULL, &err);
        CU_ASSERT_EQUAL(rc, FERR_INVALID);
    }
    kwire_wr_i8(&w, 0);
    CU_ASSERT_EQUAL(decode_reencode(c, resp, w.buf + body, w.len - body, v, NULL, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "trailing bytes"));
out:
    kwire_wr_dispose(&w);
    kwire_wr_dispose(&w2);
}

static void test_roundtrip_all(void)
{
    for (size_t i = 0; i < KWC_N; i++) {
        int16_t lo, hi;
        CU_ASSERT_FATAL(kwire_api_range(kwc_all[i].api, &lo, &hi));
        for (int16_t v = lo; v <= hi; v++) {
            roundtrip_one(&kwc_all[i], false, v);
            roundtrip_one(&kwc_all[i], true, v);
        }
        kwire_wr_t w;
        ferr_t err;
        kwire_req_hdr_t h = {(int16_t)(hi + 1), 1, NULL};
        kwire_wr_init(&w);
        CU_ASSERT_EQUAL(kwc_all[i].req_write(&w, &h, fix_req[i], &err), FERR_UNSUPPORTED);
        CU_ASSERT_EQUAL(kwc_all[i].resp_write(&w, 1, (int16_t)(lo - 1), fix_resp[i], &err), FERR_UNSUPPORTED);
        CU_ASSERT_EQUAL(w.len, 0);
        CU_ASSERT_EQUAL(decode_reencode(&kwc_all[i], true, (const uint8_t *)"", 0, (int16_t)(hi + 1), NULL, &err),
                        FERR_UNSUPPORTED);
        kwire_wr_dispose(&w);
    }
}

/* Encodes @p c's response fixture at @p v and decodes it into @p out (caller disposes). */
static void resp_at(const kwc_t *c, int16_t v, void *out)
{
    kwire_wr_t w;
    ferr_t err;
    kwire_wr_init(&w);
    size_t body = write_fixture(c, true, v, &w);
    /* the decoded struct points into w.buf for blobs: keep a copy alive for the caller */
    static uint8_t keep[4096];
    CU_ASSERT_FATAL(w.len - body <= sizeof keep);
    memcpy(keep, w.buf + body, w.len - body);
    CU_ASSERT_EQUAL(c->resp_decode(keep, w.len - body, v, out, &err), FERR_OK);
    kwire_wr_dispose(&w);
}

static void test_version_fields(void)
{
    kwire_metadata_resp_t md;
    resp_at(&kwc_all[1], 1, &md);
    CU_ASSERT_EQUAL(md.throttle_time_ms, 0); /* v3+ */
    CU_ASSERT_PTR_NULL(md.cluster_id);       /* v2+ */
    CU_ASSERT_EQUAL(md.topics[0].partitions[0].leader_epoch, -1);
    CU_ASSERT_STRING_EQUAL(md.brokers[0].rack, "rack-1");
    CU_ASSERT_STRING_EQUAL(md.topics[1].name, "gone");
    CU_ASSERT_EQUAL(md.topics[1].error_code, 3);
    kwire_metadata_resp_dispose(&md);
    resp_at(&kwc_all[1], 8, &md);
    CU_ASSERT_EQUAL(md.throttle_time_ms, 11);
    CU_ASSERT_STRING_EQUAL(md.cluster_id, "cluster-x");
    CU_ASSERT_EQUAL(md.topics[0].partitions[1].leader_epoch, 7);
    CU_ASSERT_EQUAL(md.topics[0].partitions[1].leader, -1);
    kwire_metadata_resp_dispose(&md);
    CU_ASSERT_PTR_NULL(md.topics);

    kwire_fetch_resp_t fe;
    resp_at(&kwc_all[2], 4, &fe);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].log_start_offset, -1); /* v5+ */
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].preferred_read_replica, -1);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].n_aborted_transactions, 2);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].aborted_transactions[1].first_offset, 19);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].records_len, sizeof blob);
    CU_ASSERT(memcmp(fe.topics[0].partitions[0].records, blob, sizeof blob) == 0);
    CU_ASSERT_PTR_NULL(fe.topics[0].partitions[1].records); /* null records */
    CU_ASSERT_EQUAL(fe.topics[0].partitions[1].n_aborted_transactions, -1);
    kwire_fetch_resp_dispose(&fe);
    resp_at(&kwc_all[2], 11, &fe);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].log_start_offset, 3);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].preferred_read_replica, 2);
    kwire_fetch_resp_dispose(&fe);

    kwire_produce_resp_t pr;
    resp_at(&kwc_all[3], 7, &pr);
    CU_ASSERT_EQUAL(pr.topics[0].partitions[1].n_record_errors, 0); /* v8 */
    CU_ASSERT_PTR_NULL(pr.topics[0].partitions[1].error_message);
    CU_ASSERT_EQUAL(pr.topics[0].partitions[0].log_start_offset, 12);
    CU_ASSERT_EQUAL(pr.throttle_time_ms, 5);
    kwire_produce_resp_dispose(&pr);
    resp_at(&kwc_all[3], 8, &pr);
    CU_ASSERT_EQUAL(pr.topics[0].partitions[1].n_record_errors, 2);
    CU_ASSERT_STRING_EQUAL(pr.topics[0].partitions[1].record_errors[0].message, "bad record");
    CU_ASSERT_PTR_NULL(pr.topics[0].partitions[1].record_errors[1].message);
    CU_ASSERT_STRING_EQUAL(pr.topics[0].partitions[1].error_message, "invalid");
    kwire_produce_resp_dispose(&pr);
    resp_at(&kwc_all[3], 3, &pr);
    CU_ASSERT_EQUAL(pr.topics[0].partitions[0].log_start_offset, -1);
    kwire_produce_resp_dispose(&pr);

    kwire_saslauth_resp_t sa;
    resp_at(&kwc_all[7], 0, &sa);
    CU_ASSERT_EQUAL(sa.session_lifetime_ms, 0);
    CU_ASSERT_STRING_EQUAL(sa.error_message, "bad password");
    CU_ASSERT_PTR_NOT_NULL(sa.auth_bytes); /* empty, not null */
    kwire_saslauth_resp_dispose(&sa);
}

static void test_request_versions(void)
{
    /* Metadata v1 with a null topic list (all topics) and v4 with auto-creation off */
    kwire_wr_t w;
    ferr_t err;
    kwire_wr_init(&w);
    kwire_metadata_req_t all = {NULL, -1, false};
    kwire_req_hdr_t h = {1, 9, "c"};
    CU_ASSERT_EQUAL(kwire_metadata_req_write(&w, &h, &all, &err), FERR_OK);
    static const uint8_t v1[] = {0, 0, 0, 15, 0, 3, 0, 1, 0, 0, 0, 9, 0, 1, 'c', 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT(w.len == sizeof v1 && memcmp(w.buf, v1, sizeof v1) == 0);
    kwire_wr_reset(&w);
    h.version = 8;
    CU_ASSERT_EQUAL(kwire_metadata_req_write(&w, &h, &all, &err), FERR_OK);
    CU_ASSERT_EQUAL(w.len, sizeof v1 + 3); /* + allow_auto_topic_creation + 2 authorized-operation flags */
    CU_ASSERT_EQUAL(w.buf[w.len - 3], 0);
    kwire_wr_reset(&w);
    /* Fetch v11: rack_id NULL goes out as "" */
    kwire_fetch_req_t f = fe_req;
    f.rack_id = NULL;
    h.version = 11;
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&w, &h, &f, &err), FERR_OK);
    CU_ASSERT(w.buf[w.len - 2] == 0 && w.buf[w.len - 1] == 0);
    kwire_wr_reset(&w);
    /* Produce v3: replica-free, null transactional id first */
    h.version = 3;
    CU_ASSERT_EQUAL(kwire_produce_req_write(&w, &h, &pr_req, &err), FERR_OK);
    CU_ASSERT(w.buf[4 + 11] == 0xff && w.buf[4 + 12] == 0xff);
    kwire_wr_dispose(&w);
}

static void test_encoder_refusals(void)
{
    kwire_wr_t w;
    ferr_t err;
    kwire_wr_init(&w);
    kwire_wr_i32(&w, 1234); /* something before: a failed write must leave it */
    kwire_req_hdr_t h = {7, 1, "c"};
    kwire_fetch_req_topic_t t = {NULL, fe_req_parts, 2};
    kwire_fetch_req_t f = fe_req;
    f.topics = &t;
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&w, &h, &f, &err), FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "Fetch v7 request: topics[0].topic: NULL where the version needs a string");
    t.topic = "x";
    t.partitions = NULL;
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&w, &h, &f, &err), FERR_INVALID);
    t.n_partitions = -1;
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&w, &h, &f, &err), FERR_INVALID); /* not nullable */
    t.n_partitions = 0;
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&w, &h, &f, &err), FERR_OK);
    w.len = 4;
    kwire_metadata_req_t md = {NULL, -2, true};
    CU_ASSERT_EQUAL(kwire_metadata_req_write(&w, &h, &md, &err), FERR_INVALID);
    static char big[40000];
    memset(big, 'x', sizeof big - 1);
    kwire_saslhandshake_req_t sh = {big};
    h.version = 1;
    CU_ASSERT_EQUAL(kwire_saslhandshake_req_write(&w, &h, &sh, &err), FERR_INVALID);
    h.client_id = big;
    sh.mechanism = "PLAIN";
    CU_ASSERT_EQUAL(kwire_saslhandshake_req_write(&w, &h, &sh, &err), FERR_INVALID);
    kwire_saslauth_req_t sa = {NULL, 0};
    h.client_id = NULL;
    CU_ASSERT_EQUAL(kwire_saslauth_req_write(&w, &h, &sa, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(w.len, 4);
    kwire_rd_t r;
    kwire_rd_init(&r, w.buf, w.len);
    CU_ASSERT_EQUAL(kwire_rd_i32(&r, "x"), 1234);
    kwire_wr_dispose(&w);
}

/* A Fetch v4 response body with one partition, its records length and bytes from @p tail. */
static size_t fetch_body(uint8_t *buf, int32_t ntopics, int32_t nparts, const char *name, int16_t namelen,
                         int32_t nrec)
{
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_wr_i32(&w, 0);
    kwire_wr_i32(&w, ntopics);
    kwire_wr_i16(&w, namelen);
    kwire_wr_raw(&w, name, namelen > 0 ? (size_t)namelen : 0);
    kwire_wr_i32(&w, nparts);
    kwire_wr_i32(&w, 0);  /* partition */
    kwire_wr_i16(&w, 0);  /* error */
    kwire_wr_i64(&w, 5);  /* hwm */
    kwire_wr_i64(&w, 5);  /* lso */
    kwire_wr_i32(&w, -1); /* aborted: null */
    kwire_wr_i32(&w, nrec);
    kwire_wr_raw(&w, "abcd", 4);
    size_t n = w.len;
    memcpy(buf, w.buf, n);
    kwire_wr_dispose(&w);
    return n;
}

static void test_hostile_responses(void)
{
    uint8_t buf[256];
    kwire_fetch_resp_t fe;
    ferr_t err;
    size_t n = fetch_body(buf, 1, 1, "t", 1, 4);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_OK);
    CU_ASSERT_EQUAL(fe.topics[0].partitions[0].records_len, 4);
    CU_ASSERT_PTR_EQUAL(fe.topics[0].partitions[0].records, buf + n - 4); /* a slice, not a copy */
    kwire_fetch_resp_dispose(&fe);
    n = fetch_body(buf, INT32_MAX, 1, "t", 1, 4);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "topics: array count above the limit"));
    n = fetch_body(buf, 1, 100, "t", 1, 4); /* 100 partitions of >= 38 bytes cannot fit */
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "topics[0].partitions: array count larger than"));
    n = fetch_body(buf, 1, 1, "t", -2, 4);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "topics[0].topic: negative length"));
    n = fetch_body(buf, 1, 1, "t", -1, 4);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    n = fetch_body(buf, 1, 1, "a\0b", 3, 4);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL"));
    n = fetch_body(buf, 1, 1, "t", 1, -5);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "topics[0].partitions[0].records: negative length"));
    n = fetch_body(buf, 1, 1, "t", 1, 5);
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "records: truncated"));
    n = fetch_body(buf, 1, 1, "t", 1, -1); /* null records, then 4 trailing bytes */
    CU_ASSERT_EQUAL(kwire_fetch_resp_decode(buf, n, 4, &fe, &err), FERR_INVALID);
    CU_ASSERT_PTR_NULL(fe.topics); /* zeroed on error */
}

static void test_random_bytes(void)
{
    uint8_t buf[512];
    ferr_t err;
    for (int i = 0; i < 3000; i++) {
        size_t n = rng() % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(rng() % 4 ? rng() % 3 : rng()); /* small numbers make long walks */
        const kwc_t *c = &kwc_all[rng() % KWC_N];
        int16_t lo, hi;
        kwire_api_range(c->api, &lo, &hi);
        int16_t v = (int16_t)(lo + (int16_t)(rng() % (uint32_t)(hi - lo + 1)));
        decode_reencode(c, true, buf, n, v, NULL, &err);
        if (c->req_decode)
            decode_reencode(c, false, buf, n, v, NULL, &err);
    }
}

static void test_negotiation(void)
{
    CU_ASSERT_EQUAL(kwire_pick_version(4, 11, 0, 11), 11);
    CU_ASSERT_EQUAL(kwire_pick_version(1, 8, 0, 2), 2);
    CU_ASSERT_EQUAL(kwire_pick_version(1, 8, 4, 13), 8);
    CU_ASSERT_EQUAL(kwire_pick_version(4, 11, 0, 3), -1);
    CU_ASSERT_EQUAL(kwire_pick_version(0, 2, -1, -1), -1);
    kwire_api_version_t mock[] = {{0, 0, 7}, {1, 0, 11}, {2, 0, 5}, {3, 0, 2}, {18, 0, 2}, {22, 0, 4}};
    kwire_apiversions_resp_t av = {0, mock, 6, 0, NULL};
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_PRODUCE), 7);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_FETCH), 11);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_LIST_OFFSETS), KWIRE_LISTOFFSETS_SAFE_MAX);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_METADATA), 2);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_INIT_PRODUCER_ID), 1);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_SASL_HANDSHAKE), -1);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, 99), -1);
    kwire_api_version_t k4[] = {{0, 0, 12}, {1, 4, 17}, {2, 1, 10}, {3, 0, 13}, {17, 1, 1}};
    av.api_keys = k4;
    av.n_api_keys = 5;
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_PRODUCE), 8);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_FETCH), 11);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_METADATA), 8);
    CU_ASSERT_EQUAL(kwire_negotiate(&av, KWIRE_API_SASL_HANDSHAKE), 1);
    CU_ASSERT_STRING_EQUAL(kwire_api_name(KWIRE_API_FETCH), "Fetch");
    CU_ASSERT_STRING_EQUAL(kwire_api_name(1000), "unknown");
    CU_ASSERT_STRING_EQUAL(kwire_error_name(6), "NOT_LEADER_OR_FOLLOWER");
    CU_ASSERT_STRING_EQUAL(kwire_error_name(-2), "UNKNOWN_CODE");

    /* a broker that does not speak the requested ApiVersions version answers in v0 */
    kwire_wr_t w;
    ferr_t err;
    kwire_wr_init(&w);
    kwire_apiversions_resp_t v0 = {35, mock, 6, 0, NULL}, out;
    CU_ASSERT_EQUAL(kwire_apiversions_resp_write(&w, 1, 0, &v0, &err), FERR_OK);
    CU_ASSERT_EQUAL(kwire_apiversions_resp_decode(w.buf + 8, w.len - 8, 2, &out, &err), FERR_OK);
    CU_ASSERT_EQUAL(out.error_code, 35);
    CU_ASSERT_EQUAL(out.n_api_keys, 6);
    kwire_apiversions_resp_dispose(&out);
    v0.error_code = 0; /* without the error code a v0 body is not a v2 response */
    kwire_wr_reset(&w);
    kwire_apiversions_resp_write(&w, 1, 0, &v0, &err);
    CU_ASSERT_EQUAL(kwire_apiversions_resp_decode(w.buf + 8, w.len - 8, 2, &out, &err), FERR_INVALID);
    kwire_wr_dispose(&w);
}

/* ---- record batches ---- */

static const rec_spec_t recs3[] = {{"k0", "value-0", 0}, {NULL, "v1", 2}, {"k2", NULL, 3}};

/* A magic-0 or magic-1 message (as in old message sets) with an empty key and value. */
static void build_legacy(kwire_wr_t *w, int64_t offset, int magic)
{
    kwire_wr_i64(w, offset);
    kwire_wr_i32(w, magic ? 22 : 14);
    kwire_wr_i32(w, 0x12345678); /* crc (not checked) */
    kwire_wr_i8(w, (int8_t)magic);
    kwire_wr_i8(w, 0);
    if (magic)
        kwire_wr_i64(w, 1700000000000LL);
    kwire_wr_i32(w, -1);
    kwire_wr_i32(w, -1);
}

static void test_batch_iter(void)
{
    kwire_wr_t w;
    kwire_wr_init(&w);
    build_batch(&w, 100, recs3, 3, 0);
    size_t first = w.len;
    build_batch(&w, 103, recs3, 2, 0);
    size_t second = w.len;
    build_legacy(&w, 105, 1);
    build_legacy(&w, 106, 0);
    kwire_batch_iter_t it;
    kwire_batch_t b;
    ferr_t err;
    kwire_batch_iter_init(&it, w.buf, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_ITEM);
    CU_ASSERT(b.base_offset == 100 && b.magic == 2 && b.record_count == 3 && b.last_offset_delta == 2);
    CU_ASSERT(b.partition_leader_epoch == 3 && b.producer_id == 99 && b.producer_epoch == 1 && b.base_sequence == 10);
    CU_ASSERT(b.base_timestamp == 1700000000000LL && b.max_timestamp == 1700000000002LL);
    CU_ASSERT(b.data == w.buf && b.len == first && b.batch_length == (int32_t)first - 12);
    CU_ASSERT(kwire_batch_crc_ok(&b));
    CU_ASSERT(kwire_batch_is_contiguous(&b));
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_ITEM);
    CU_ASSERT(b.base_offset == 103 && b.len == second - first);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_ITEM);
    CU_ASSERT(b.magic == 1 && b.base_offset == 105 && b.crc == 0x12345678 && b.record_count == -1);
    CU_ASSERT_FALSE(kwire_batch_crc_ok(&b));
    CU_ASSERT_FALSE(kwire_batch_is_contiguous(&b));
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_ITEM);
    CU_ASSERT(b.magic == 0 && b.base_offset == 106 && b.len == 26);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_END);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_END);

    /* every truncation: whole batches first, then PARTIAL, never BAD */
    for (size_t cut = 0; cut < second; cut++) {
        int items = 0;
        kwire_next_t nx;
        kwire_batch_iter_init(&it, w.buf, cut);
        while ((nx = kwire_batch_next(&it, &b, &err)) == KWIRE_ITEM)
            items++;
        CU_ASSERT_EQUAL(items, cut >= first ? 1 : 0);
        CU_ASSERT_EQUAL(nx, cut == 0 || cut == first ? KWIRE_END : KWIRE_PARTIAL);
        CU_ASSERT_EQUAL(it.pos, cut >= first ? first : 0);
        if (nx == KWIRE_PARTIAL)
            CU_ASSERT_EQUAL(it.need, cut - it.pos < 12 ? 0 : (cut >= first ? second - first : first));
    }
    kwire_wr_dispose(&w);
}

static void test_batch_malformed(void)
{
    kwire_wr_t w;
    kwire_batch_iter_t it;
    kwire_batch_t b;
    ferr_t err;
    kwire_wr_init(&w);
    build_batch(&w, 0, recs3, 3, 0);
    uint8_t *p = w.buf;
    p[16] = 3; /* unknown magic */
    kwire_batch_iter_init(&it, p, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown magic (3)"));
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD); /* sticky */
    kwire_batch_iter_init(&it, p, 20); /* known to be bad even when truncated */
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD);
    p[16] = 2;
    p[8] = p[9] = p[10] = 0, p[11] = 40; /* below the v2 header */
    kwire_batch_iter_init(&it, p, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD);
    p[8] = 0xff; /* negative length */
    kwire_batch_iter_init(&it, p, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD);
    kwire_wr_reset(&w);
    build_batch(&w, 0, recs3, 3, 0);
    p = w.buf;
    p[57] = 0x80; /* negative record count */
    kwire_batch_iter_init(&it, p, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_BAD);
    kwire_batch_iter_init(&it, NULL, 10);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_END);
    kwire_wr_dispose(&w);
}

static void test_batch_rewrite(void)
{
    kwire_wr_t w;
    kwire_batch_iter_t it;
    kwire_batch_t b, b2;
    ferr_t err;
    kwire_wr_init(&w);
    build_batch(&w, 500, recs3, 3, 3 | KWIRE_ATTR_TRANSACTIONAL); /* lz4 flag: not decoded here */
    uint8_t *copy = malloc(w.len);
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, w.buf, w.len, 0, 4711, 2, 30, -1, &err), FERR_OK);
    kwire_batch_iter_init(&it, copy, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b, &err), KWIRE_ITEM);
    CU_ASSERT(b.base_offset == 0 && b.producer_id == 4711 && b.producer_epoch == 2 && b.base_sequence == 30);
    CU_ASSERT(b.partition_leader_epoch == -1 && !b.is_transactional && b.compression == 3);
    CU_ASSERT(kwire_batch_crc_ok(&b));
    CU_ASSERT(memcmp(copy + KWIRE_BATCH_HDR_LEN, w.buf + KWIRE_BATCH_HDR_LEN, w.len - KWIRE_BATCH_HDR_LEN) == 0);
    CU_ASSERT(memcmp(copy + 23, w.buf + 23, 20) == 0); /* lastOffsetDelta, timestamps */
    CU_ASSERT(memcmp(copy + 57, w.buf + 57, 4) == 0);  /* recordCount */
    /* in place, back to non-idempotent */
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, copy, w.len, 7, -1, -1, -1, 0, &err), FERR_OK);
    kwire_batch_iter_init(&it, copy, w.len);
    CU_ASSERT_EQUAL(kwire_batch_next(&it, &b2, &err), KWIRE_ITEM);
    CU_ASSERT(b2.base_offset == 7 && b2.producer_id == -1 && b2.producer_epoch == -1 && b2.base_sequence == -1);
    CU_ASSERT(kwire_batch_crc_ok(&b2));
    /* refusals: corrupt source, wrong length, control batch, legacy */
    copy[70] ^= 1;
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, copy, w.len, 0, -1, -1, -1, -1, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "CRC mismatch"));
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, w.buf, w.len - 1, 0, -1, -1, -1, -1, &err), FERR_INVALID);
    kwire_wr_i8(&w, 0);
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, w.buf, w.len, 0, -1, -1, -1, -1, &err), FERR_INVALID);
    kwire_wr_reset(&w);
    build_batch(&w, 0, recs3, 1, KWIRE_ATTR_CONTROL | KWIRE_ATTR_TRANSACTIONAL);
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, w.buf, w.len, 0, -1, -1, -1, -1, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "control batch"));
    kwire_wr_reset(&w);
    build_legacy(&w, 1, 1);
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, w.buf, w.len, 0, -1, -1, -1, -1, &err), FERR_INVALID);
    /* a batch with offset gaps (compacted) is not contiguous */
    kwire_wr_reset(&w);
    build_batch(&w, 0, recs3, 3, 0);
    w.buf[26] = 5; /* lastOffsetDelta 5 with 3 records */
    kwire_batch_iter_init(&it, w.buf, w.len);
    kwire_batch_next(&it, &b, &err);
    CU_ASSERT_FALSE(kwire_batch_is_contiguous(&b));
    CU_ASSERT_FALSE(kwire_batch_crc_ok(&b)); /* lastOffsetDelta is covered by the CRC */
    free(copy);
    kwire_wr_dispose(&w);
}

static void test_records(void)
{
    kwire_wr_t w;
    kwire_batch_iter_t it;
    kwire_batch_t b;
    kwire_record_iter_t ri;
    kwire_record_t rec;
    ferr_t err;
    kwire_wr_init(&w);
    build_batch(&w, 0, recs3, 3, 0);
    kwire_batch_iter_init(&it, w.buf, w.len);
    kwire_batch_next(&it, &b, &err);
    CU_ASSERT_EQUAL_FATAL(kwire_record_iter_init(&ri, &b, &err), FERR_OK);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(kwire_record_next(&ri, &rec, &err), KWIRE_ITEM);
        CU_ASSERT(rec.offset_delta == i && rec.timestamp_delta == i);
        if (recs3[i].key) {
            CU_ASSERT(rec.key_len == (int32_t)strlen(recs3[i].key) && !memcmp(rec.key, recs3[i].key, 2));
        } else {
            CU_ASSERT(rec.key == NULL && rec.key_len == -1);
        }
        CU_ASSERT_EQUAL(rec.value_len, recs3[i].value ? (int32_t)strlen(recs3[i].value) : -1);
        CU_ASSERT_EQUAL(rec.header_count, recs3[i].nheaders);
        kwire_header_iter_t hi;
        kwire_header_t h;
        int nh = 0;
        kwire_header_iter_init(&hi, &rec);
        while (kwire_header_next(&hi, &h, &err) == KWIRE_ITEM) {
            CU_ASSERT(h.key_len == 2 && h.key[0] == 'h' && h.key[1] == '0' + nh);
            CU_ASSERT_EQUAL(h.value_len, nh == 1 ? -1 : 1);
            nh++;
        }
        CU_ASSERT_EQUAL(nh, recs3[i].nheaders);
        CU_ASSERT(rec.offset_in_batch >= KWIRE_BATCH_HDR_LEN && rec.offset_in_batch + rec.len <= b.len);
    }
    CU_ASSERT_EQUAL(kwire_record_next(&ri, &rec, &err), KWIRE_END);

    /* every truncation of the records section is refused (the count says 3) */
    for (size_t cut = KWIRE_BATCH_HDR_LEN; cut < w.len; cut++) {
        kwire_batch_t t = b;
        t.len = cut;
        kwire_next_t nx;
        kwire_record_iter_init(&ri, &t, &err);
        while ((nx = kwire_record_next(&ri, &rec, &err)) == KWIRE_ITEM)
            ;
        CU_ASSERT_EQUAL(nx, KWIRE_BAD);
    }
    /* a count that disagrees with the bytes, both ways */
    kwire_batch_t t = b;
    t.record_count = 2;
    kwire_record_iter_init(&ri, &t, &err);
    while (kwire_record_next(&ri, &rec, &err) == KWIRE_ITEM)
        ;
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bytes left after recordCount records"));
    t.record_count = 4;
    kwire_record_iter_init(&ri, &t, &err);
    while (kwire_record_next(&ri, &rec, &err) == KWIRE_ITEM)
        ;
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "record 3"));
    /* a record length one longer than its fields */
    w.buf[KWIRE_BATCH_HDR_LEN] += 2; /* zigzag: +1 */
    kwire_batch_iter_init(&it, w.buf, w.len);
    kwire_batch_next(&it, &b, &err);
    kwire_record_iter_init(&ri, &b, &err);
    CU_ASSERT_EQUAL(kwire_record_next(&ri, &rec, &err), KWIRE_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "record length does not match its fields"));
    CU_ASSERT_EQUAL(kwire_record_next(&ri, &rec, &err), KWIRE_BAD);
    b.compression = 1;
    CU_ASSERT_EQUAL(kwire_record_iter_init(&ri, &b, &err), FERR_UNSUPPORTED);
    kwire_wr_dispose(&w);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"CRC32C check values", test_crc32c},
        {"reader: integers, strings, sticky errors", test_reader},
        {"varints: zigzag, limits, overflow", test_varints},
        {"array counts: limits and remaining bytes", test_counts},
        {"writer: primitives, patching, limits", test_writer},
        {"frame sizes and headers", test_frame_and_headers},
        {"every message both ways at every version: round trip, truncations", test_roundtrip_all},
        {"fields absent in a version decode as defaults", test_version_fields},
        {"requests: null topic list, empty rack, null transactional id", test_request_versions},
        {"encoder refuses what the version cannot carry; nothing appended", test_encoder_refusals},
        {"hostile responses: counts, negative lengths, NUL, trailing", test_hostile_responses},
        {"3000 random buffers through every decoder", test_random_bytes},
        {"version negotiation (mock and Kafka 4.x ranges), v0 fallback", test_negotiation},
        {"batch iterator: v2, legacy, every truncation is PARTIAL", test_batch_iter},
        {"batch iterator refuses malformed headers", test_batch_malformed},
        {"batch rewrite: fields, CRC, in place, refusals", test_batch_rewrite},
        {"record walker: fields, headers, truncations, counts", test_records},
    };
    return cu_add_tests("kwire", tests, sizeof tests / sizeof tests[0]);
}
