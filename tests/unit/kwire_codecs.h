/* kwire_codecs: every kwire message type behind one table of void-pointer functions, for the
 * unit test and the fuzzer, which treat all messages alike. The wrappers keep each call well
 * typed (no calls through a cast function pointer). ApiVersions has no request fields, so its
 * request decoder is NULL. */
#ifndef FERRY_TESTS_KWIRE_CODECS_H
#define FERRY_TESTS_KWIRE_CODECS_H

#include "proto/kwire.h"

typedef struct kwc {
    const char *name;
    int16_t api;
    size_t req_size, resp_size;
    ferr_code_t (*req_write)(kwire_wr_t *, const kwire_req_hdr_t *, const void *, ferr_t *);
    ferr_code_t (*req_decode)(const void *, size_t, int16_t, void *, kwire_req_arena_t *, ferr_t *);
    ferr_code_t (*resp_write)(kwire_wr_t *, int32_t, int16_t, const void *, ferr_t *);
    ferr_code_t (*resp_decode)(const void *, size_t, int16_t, void *, ferr_t *);
    void (*resp_dispose)(void *);
} kwc_t;

#define KWC_WRAP(x)                                                                                  \
    static inline ferr_code_t kwc_##x##_rqw(kwire_wr_t *w, const kwire_req_hdr_t *h, const void *m,  \
                                            ferr_t *e)                                               \
    {                                                                                                \
        return kwire_##x##_req_write(w, h, m, e);                                                    \
    }                                                                                                \
    static inline ferr_code_t kwc_##x##_rqd(const void *b, size_t n, int16_t v, void *o,             \
                                            kwire_req_arena_t *a, ferr_t *e)                         \
    {                                                                                                \
        return kwire_##x##_req_decode(b, n, v, o, a, e);                                             \
    }                                                                                                \
    static inline ferr_code_t kwc_##x##_rsw(kwire_wr_t *w, int32_t c, int16_t v, const void *m,      \
                                            ferr_t *e)                                               \
    {                                                                                                \
        return kwire_##x##_resp_write(w, c, v, m, e);                                                \
    }                                                                                                \
    static inline ferr_code_t kwc_##x##_rsd(const void *b, size_t n, int16_t v, void *o, ferr_t *e)  \
    {                                                                                                \
        return kwire_##x##_resp_decode(b, n, v, o, e);                                               \
    }                                                                                                \
    static inline void kwc_##x##_rsx(void *m) { kwire_##x##_resp_dispose(m); }
#define KWC(x, api)                                                                                  \
    {#x, api, sizeof(kwire_##x##_req_t), sizeof(kwire_##x##_resp_t), kwc_##x##_rqw, kwc_##x##_rqd,   \
     kwc_##x##_rsw, kwc_##x##_rsd, kwc_##x##_rsx}

KWC_WRAP(metadata)
KWC_WRAP(fetch)
KWC_WRAP(produce)
KWC_WRAP(initpid)
KWC_WRAP(listoffsets)
KWC_WRAP(saslhandshake)
KWC_WRAP(saslauth)

static inline ferr_code_t kwc_av_rqw(kwire_wr_t *w, const kwire_req_hdr_t *h, const void *m, ferr_t *e)
{
    (void)m;
    return kwire_apiversions_req_write(w, h, e);
}
static inline ferr_code_t kwc_av_rsw(kwire_wr_t *w, int32_t c, int16_t v, const void *m, ferr_t *e)
{
    return kwire_apiversions_resp_write(w, c, v, m, e);
}
static inline ferr_code_t kwc_av_rsd(const void *b, size_t n, int16_t v, void *o, ferr_t *e)
{
    return kwire_apiversions_resp_decode(b, n, v, o, e);
}
static inline void kwc_av_rsx(void *m) { kwire_apiversions_resp_dispose(m); }

/* In this order; kwire_test.c's fixtures follow it. */
static const kwc_t kwc_all[] = {
    {"apiversions", KWIRE_API_API_VERSIONS, 0, sizeof(kwire_apiversions_resp_t), kwc_av_rqw, NULL, kwc_av_rsw,
     kwc_av_rsd, kwc_av_rsx},
    KWC(metadata, KWIRE_API_METADATA),
    KWC(fetch, KWIRE_API_FETCH),
    KWC(produce, KWIRE_API_PRODUCE),
    KWC(initpid, KWIRE_API_INIT_PRODUCER_ID),
    KWC(listoffsets, KWIRE_API_LIST_OFFSETS),
    KWC(saslhandshake, KWIRE_API_SASL_HANDSHAKE),
    KWC(saslauth, KWIRE_API_SASL_AUTHENTICATE),
};
#define KWC_N (sizeof kwc_all / sizeof kwc_all[0])

/* Decodes @p body as a request (@p resp false) or response of @p c at @p v and, on success and
 * if @p out is not NULL, encodes the result again into @p out (request header: correlation id 7,
 * client id "kwire"). The decoded struct starts as 0xa5 bytes: a decoder must overwrite it.
 * @returns the decoder's code; *@p reencoded the encoder's (FERR_OK if not asked). */
static inline ferr_code_t kwc_decode_reencode(const kwc_t *c, bool resp, const uint8_t *body, size_t len, int16_t v,
                                              kwire_wr_t *out, ferr_code_t *reencoded, ferr_t *err)
{
    size_t size = resp ? c->resp_size : c->req_size;
    void *m = malloc(size ? size : 1);
    kwire_req_arena_t arena = {0};
    memset(m, 0xa5, size);
    ferr_code_t rc = resp ? c->resp_decode(body, len, v, m, err) : c->req_decode(body, len, v, m, &arena, err);
    *reencoded = FERR_OK;
    if (rc == FERR_OK && out) {
        kwire_req_hdr_t h = {v, 7, "kwire"};
        *reencoded = resp ? c->resp_write(out, 7, v, m, err) : c->req_write(out, &h, m, err);
    }
    if (rc != FERR_OK)
        for (size_t i = 0; i < size; i++)
            if (((const uint8_t *)m)[i])
                rc = FERR_INTERNAL; /* a failed decode must leave the struct zeroed */
    if (resp)
        c->resp_dispose(m);
    else
        kwire_req_arena_dispose(&arena);
    free(m);
    return rc;
}

#endif
