/* kbatch: magic-v2 record batches built as a producer builds them, for the unit tests of the
 * code that reads them (kwire_test, bpass_test). */
#ifndef FERRY_TESTS_KBATCH_H
#define FERRY_TESTS_KBATCH_H

#include <stdio.h>
#include <string.h>

#include "proto/kwire.h"

typedef struct rec_spec {
    const char *key;   /* NULL = null key */
    const char *value; /* NULL = null value */
    int nheaders;
} rec_spec_t;

/* Appends a magic-v2 batch of @p n records of producer @p pid to @p w as a producer would, with
 * a correct CRC. */
static inline void build_batch_of(kwire_wr_t *w, int64_t base_offset, const rec_spec_t *recs, int n, int16_t attrs,
                                  int64_t pid)
{
    kwire_wr_i64(w, base_offset);
    size_t len_at = kwire_wr_mark(w);
    kwire_wr_i32(w, 3); /* partitionLeaderEpoch */
    kwire_wr_i8(w, 2);
    size_t crc_at = kwire_wr_mark(w);
    kwire_wr_i16(w, attrs);
    kwire_wr_i32(w, n - 1);
    kwire_wr_i64(w, 1700000000000LL);
    kwire_wr_i64(w, 1700000000000LL + n - 1);
    kwire_wr_i64(w, pid); /* producerId */
    kwire_wr_i16(w, 1);
    kwire_wr_i32(w, 10);
    kwire_wr_i32(w, n);
    for (int i = 0; i < n; i++) {
        kwire_wr_t r;
        kwire_wr_init(&r);
        kwire_wr_i8(&r, 0);
        kwire_wr_varlong(&r, i);
        kwire_wr_varint(&r, i);
        const char *kv[2] = {recs[i].key, recs[i].value};
        for (int k = 0; k < 2; k++) {
            kwire_wr_varint(&r, kv[k] ? (int32_t)strlen(kv[k]) : -1);
            if (kv[k])
                kwire_wr_raw(&r, kv[k], strlen(kv[k]));
        }
        kwire_wr_varint(&r, recs[i].nheaders);
        for (int h = 0; h < recs[i].nheaders; h++) {
            char hk[16];
            int hl = snprintf(hk, sizeof hk, "h%d", h);
            kwire_wr_varint(&r, hl);
            kwire_wr_raw(&r, hk, (size_t)hl);
            kwire_wr_varint(&r, h == 1 ? -1 : 1); /* header 1 has a null value */
            if (h != 1)
                kwire_wr_raw(&r, "v", 1);
        }
        kwire_wr_varint(w, (int32_t)r.len);
        kwire_wr_raw(w, r.buf, r.len);
        kwire_wr_dispose(&r);
    }
    kwire_wr_patch_len(w, len_at);
    kwire_wr_patch_i32(w, crc_at, (int32_t)kwire_crc32c(0, w->buf + crc_at + 4, w->len - crc_at - 4));
}

static inline void build_batch(kwire_wr_t *w, int64_t base_offset, const rec_spec_t *recs, int n, int16_t attrs)
{
    build_batch_of(w, base_offset, recs, n, attrs, 99);
}

#endif
