/* fuzz_kwire: libFuzzer harness for kwire (proto/kwire.c) and ksasl's parsers (proto/ksasl.c).
 *
 * Everything a broker, or anyone between us and it, can send: the input is
 *     selector byte | version byte | body
 *   selector = an API key          the response decoder of that API
 *   selector = 64 + an API key     the request decoder (what a fake broker reads)
 *   selector = 100                 a records blob: batch iterator, CRC, rewrite, record walker
 *   selector = 101                 frame size and the request/response headers
 *   selector = 102                 SCRAM: server-first, newline, server-final
 *   anything else                  every response decoder and the batch iterator on the body
 * A version outside kwire's range is folded into it. Invariants (a violation aborts): a failed
 * decode leaves its struct zeroed; whatever decodes re-encodes, and the re-encoding is stable
 * (decode(encode(m)) encodes to the same bytes); the iterator's items tile the blob exactly; a
 * batch rewrite succeeds exactly for whole magic-2 data batches with a good CRC, and its output
 * has a good CRC and the requested fields.
 *
 *   run: build-fuzz/fuzz_kwire -max_total_time=300 <copy of tests/fuzz/corpus/kwire>
 * The seed corpus holds real responses of librdkafka's 2.0.2 mock, written by
 * `KWIRE_CAPTURE=dir build/kwire_mock_test`. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ksasl.h"
#include "proto/kwire.h"
#include "tests/unit/kwire_codecs.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_kwire: %s: %s\n", what, detail);
    abort();
}

static int16_t fold_version(int16_t api, uint8_t v)
{
    int16_t lo, hi;
    kwire_api_range(api, &lo, &hi);
    return v >= lo && v <= hi ? v : (int16_t)(lo + v % (hi - lo + 1));
}

/* Decode; if that works, encode, decode and encode again: the two encodings must match. */
static void check_codec(const kwc_t *c, bool resp, int16_t v, const uint8_t *body, size_t len)
{
    kwire_wr_t w1, w2;
    ferr_t err;
    ferr_code_t wrc;
    kwire_wr_init(&w1);
    kwire_wr_init(&w2);
    ferr_code_t rc = kwc_decode_reencode(c, resp, body, len, v, &w1, &wrc, &err);
    if (rc != FERR_OK && rc != FERR_INVALID)
        fail(c->name, rc == FERR_INTERNAL ? "a failed decode left the struct dirty" : "unexpected error code");
    if (rc == FERR_OK && wrc != FERR_OK)
        fail(c->name, err.msg);
    if (rc == FERR_OK) {
        size_t hdr = KWIRE_RESP_HDR_LEN;
        int16_t key, ver;
        int32_t corr;
        if (!resp && kwire_req_hdr_read(w1.buf + 4, w1.len - 4, &key, &ver, &corr, &hdr, &err) != FERR_OK)
            fail(c->name, "the request header does not read back");
        if (kwc_decode_reencode(c, resp, w1.buf + 4 + hdr, w1.len - 4 - hdr, v, &w2, &wrc, &err) != FERR_OK ||
            wrc != FERR_OK)
            fail(c->name, err.msg);
        if (w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len))
            fail(c->name, "encoding is not stable");
    }
    kwire_wr_dispose(&w1);
    kwire_wr_dispose(&w2);
}

static void check_records(const kwire_batch_t *b)
{
    kwire_record_iter_t ri;
    kwire_record_t rec;
    ferr_t err;
    if (kwire_record_iter_init(&ri, b, &err) != FERR_OK)
        return;
    int n = 0;
    kwire_next_t nx;
    while ((nx = kwire_record_next(&ri, &rec, &err)) == KWIRE_ITEM) {
        if (rec.offset_in_batch + rec.len > b->len || n++ >= b->record_count)
            fail("records", "a record outside its batch, or more records than recordCount");
        kwire_header_iter_t hi;
        kwire_header_t h;
        int nh = 0;
        kwire_header_iter_init(&hi, &rec);
        while (kwire_header_next(&hi, &h, &err) == KWIRE_ITEM)
            nh++;
        if (nh != rec.header_count)
            fail("records", "a walked record's headers do not read back");
    }
    if (nx == KWIRE_END && n != b->record_count)
        fail("records", "END before recordCount records");
}

static void check_rewrite(const kwire_batch_t *b)
{
    ferr_t err;
    uint8_t *copy = malloc(b->len);
    bool ok = kwire_batch_rewrite(copy, b->data, b->len, 5, 77, 3, 9, -1, &err) == FERR_OK;
    bool want = b->magic == 2 && !b->is_control && kwire_batch_crc_ok(b);
    if (ok != want)
        fail("rewrite", ok ? "accepted a batch it must refuse" : err.msg);
    if (ok) {
        kwire_batch_iter_t it;
        kwire_batch_t r;
        kwire_batch_iter_init(&it, copy, b->len);
        if (kwire_batch_next(&it, &r, &err) != KWIRE_ITEM || r.len != b->len || !kwire_batch_crc_ok(&r) ||
            r.base_offset != 5 || r.producer_id != 77 || r.producer_epoch != 3 || r.base_sequence != 9 ||
            r.partition_leader_epoch != -1 || r.is_transactional || r.record_count != b->record_count ||
            memcmp(copy + KWIRE_BATCH_HDR_LEN, b->data + KWIRE_BATCH_HDR_LEN, b->len - KWIRE_BATCH_HDR_LEN))
            fail("rewrite", "the copy is not the batch with the new fields");
    }
    free(copy);
}

static void check_blob(const uint8_t *p, size_t n, bool deep)
{
    kwire_batch_iter_t it;
    kwire_batch_t b;
    ferr_t err;
    kwire_next_t nx;
    size_t covered = 0;
    kwire_batch_iter_init(&it, p, n);
    while ((nx = kwire_batch_next(&it, &b, &err)) == KWIRE_ITEM) {
        if (b.data != p + covered || b.len < KWIRE_LOG_OVERHEAD)
            fail("batches", "items do not tile the blob");
        covered += b.len;
        kwire_batch_is_contiguous(&b);
        if (deep) {
            check_rewrite(&b);
            check_records(&b);
        }
    }
    if (nx == KWIRE_END && covered != n)
        fail("batches", "END before the end of the blob");
    if (nx == KWIRE_PARTIAL && (it.pos != covered || (it.need && it.need <= n - covered)))
        fail("batches", "PARTIAL with a batch that fits");
}

static void check_frame(const uint8_t *p, size_t n)
{
    size_t flen, hl;
    int16_t key, ver;
    int32_t corr;
    ferr_t err;
    if (kwire_frame_len(p, n, 1 << 20, &flen, &err) == FERR_OK && n >= 4 && (flen < 8 || flen > 4 + (1 << 20)))
        fail("frame", "frame length out of bounds");
    if (kwire_req_hdr_read(p, n, &key, &ver, &corr, &hl, &err) == FERR_OK && hl > n)
        fail("frame", "request header longer than the input");
    kwire_resp_hdr_read(p, n, &corr, &err);
}

static void check_scram(const uint8_t *p, size_t n)
{
    const uint8_t *nl = memchr(p, '\n', n);
    size_t first = nl ? (size_t)(nl - p) : n;
    ferr_t err;
    const char *out;
    size_t out_len;
    ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO", &err);
    if (ksasl_scram_client_final(s, p, first, &out, &out_len, &err) == FERR_OK && nl)
        ksasl_scram_verify(s, nl + 1, n - first - 1, &err);
    ksasl_scram_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t sel = data[0], vb = data[1];
    const uint8_t *body = data + 2;
    size_t n = size - 2;
    for (size_t i = 0; i < KWC_N; i++) {
        const kwc_t *c = &kwc_all[i];
        if (sel == c->api) {
            check_codec(c, true, fold_version(c->api, vb), body, n);
            return 0;
        }
        if (sel == 64 + c->api && c->req_decode) {
            check_codec(c, false, fold_version(c->api, vb), body, n);
            return 0;
        }
    }
    switch (sel) {
    case 100: check_blob(body, n, true); break;
    case 101: check_frame(body, n); break;
    case 102: check_scram(body, n); break;
    default:
        for (size_t i = 0; i < KWC_N; i++)
            check_codec(&kwc_all[i], true, fold_version(kwc_all[i].api, vb), body, n);
        check_blob(body, n, false);
    }
    return 0;
}
