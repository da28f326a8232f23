/* kwire: ferry's Kafka wire codec. See kwire.h for the versions, the framing and ownership.
 *
 * Table-driven, like proto.c: every message is a kw_desc_t listing its fields in wire order,
 * each with the versions that carry it and where it lives in the C struct (or that it is a
 * constant ferry always sends). One generic encoder and one generic decoder walk the tables, so
 * a request and its response are a few table lines, both directions exist for every message
 * (fake brokers and round-trip tests use the other one), and a version difference is a number
 * in a table, not an if. The field macros check at compile time that each struct member has
 * the size its wire type needs.
 *
 * Decoding goes through kwire_rd_t, whose every read is bounds-checked and whose first failure
 * is sticky; an array count is refused unless the remaining bytes could hold that many
 * elements of the element's minimum wire size, so a 4-byte count cannot make us allocate more
 * than a small multiple of the input. Decoded arrays and strings come from one arena per
 * message, freed at once by _dispose.
 *
 * CRC32C comes from Intel ISA-L (crc32_iscsi(), libisal), which uses the CPU's crc32
 * instruction where there is one. Its convention: crc32_iscsi(buf, len, 0xffffffff) is the
 * CRC32C register after buf, not inverted; the standard CRC32C is its complement. */
#include "proto/kwire.h"

#include <isa-l/crc.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- big-endian helpers ---- */

static uint16_t kw_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t kw_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t kw_be64(const uint8_t *p) { return (uint64_t)kw_be32(p) << 32 | kw_be32(p + 4); }

static void kw_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void kw_put32(uint8_t *p, uint32_t v)
{
    kw_put16(p, (uint16_t)(v >> 16));
    kw_put16(p + 2, (uint16_t)v);
}

static void kw_put64(uint8_t *p, uint64_t v)
{
    kw_put32(p, (uint32_t)(v >> 32));
    kw_put32(p + 4, (uint32_t)v);
}

/* ---- names ---- */

int16_t kwire_pick_version(int16_t ours_min, int16_t ours_max, int16_t broker_min, int16_t broker_max)
{
    int16_t hi = ours_max < broker_max ? ours_max : broker_max;
    int16_t lo = ours_min > broker_min ? ours_min : broker_min;
    return hi >= lo && hi >= 0 ? hi : -1;
}

const char *kwire_error_name(int16_t code)
{
    switch (code) {
    case -1: return "UNKNOWN_SERVER_ERROR";
    case 0: return "NONE";
    case 1: return "OFFSET_OUT_OF_RANGE";
    case 2: return "CORRUPT_MESSAGE";
    case 3: return "UNKNOWN_TOPIC_OR_PARTITION";
    case 4: return "INVALID_FETCH_SIZE";
    case 5: return "LEADER_NOT_AVAILABLE";
    case 6: return "NOT_LEADER_OR_FOLLOWER";
    case 7: return "REQUEST_TIMED_OUT";
    case 8: return "BROKER_NOT_AVAILABLE";
    case 9: return "REPLICA_NOT_AVAILABLE";
    case 10: return "MESSAGE_TOO_LARGE";
    case 13: return "NETWORK_EXCEPTION";
    case 17: return "INVALID_TOPIC_EXCEPTION";
    case 18: return "RECORD_LIST_TOO_LARGE";
    case 19: return "NOT_ENOUGH_REPLICAS";
    case 20: return "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    case 21: return "INVALID_REQUIRED_ACKS";
    case 29: return "TOPIC_AUTHORIZATION_FAILED";
    case 31: return "CLUSTER_AUTHORIZATION_FAILED";
    case 33: return "UNSUPPORTED_SASL_MECHANISM";
    case 34: return "ILLEGAL_SASL_STATE";
    case 35: return "UNSUPPORTED_VERSION";
    case 42: return "INVALID_REQUEST";
    case 43: return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    case 45: return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case 46: return "DUPLICATE_SEQUENCE_NUMBER";
    case 47: return "INVALID_PRODUCER_EPOCH";
    case 58: return "SASL_AUTHENTICATION_FAILED";
    case 59: return "UNKNOWN_PRODUCER_ID";
    case 74: return "FENCED_LEADER_EPOCH";
    case 75: return "UNKNOWN_LEADER_EPOCH";
    case 76: return "UNSUPPORTED_COMPRESSION_TYPE";
    case 87: return "INVALID_RECORD";
    case 90: return "PRODUCER_FENCED";
    default: return "UNKNOWN_CODE";
    }
}

/* ---- reader ---- */

void kwire_rd_init(kwire_rd_t *r, const void *buf, size_t len)
{
    static const uint8_t empty[1];
    r->buf = buf ? buf : empty;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->fail = NULL;
    r->field = NULL;
    r->fail_pos = 0;
}

void kwire_rd_fail(kwire_rd_t *r, const char *field, const char *what)
{
    if (r->fail)
        return;
    r->fail = what;
    r->field = field;
    r->fail_pos = r->pos;
}

ferr_code_t kwire_rd_error(const kwire_rd_t *r, const char *ctx, ferr_t *err)
{
    if (!r->fail)
        return FERR_OK;
    return ferr_set(err, FERR_INVALID, "%s: %s: %s at offset %zu of %zu", ctx, r->field ? r->field : "?", r->fail,
                    r->fail_pos, r->len);
}

const uint8_t *kwire_rd_raw(kwire_rd_t *r, const char *field, size_t n)
{
    if (r->fail)
        return NULL;
    if (n > r->len - r->pos) {
        kwire_rd_fail(r, field, "truncated");
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

int8_t kwire_rd_i8(kwire_rd_t *r, const char *field)
{
    const uint8_t *p = kwire_rd_raw(r, field, 1);
    return p ? (int8_t)*p : 0;
}

int16_t kwire_rd_i16(kwire_rd_t *r, const char *field)
{
    const uint8_t *p = kwire_rd_raw(r, field, 2);
    return p ? (int16_t)kw_be16(p) : 0;
}

int32_t kwire_rd_i32(kwire_rd_t *r, const char *field)
{
    const uint8_t *p = kwire_rd_raw(r, field, 4);
    return p ? (int32_t)kw_be32(p) : 0;
}

int64_t kwire_rd_i64(kwire_rd_t *r, const char *field)
{
    const uint8_t *p = kwire_rd_raw(r, field, 8);
    return p ? (int64_t)kw_be64(p) : 0;
}

/* An unsigned varint of at most @p bits bits (32 or 64): 7 bits a byte, low groups first. */
static uint64_t kw_rd_uv(kwire_rd_t *r, const char *field, unsigned bits)
{
    size_t start = r->pos;
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        const uint8_t *p = kwire_rd_raw(r, field, 1);
        if (!p)
            return 0;
        uint64_t b = *p & 0x7f;
        if (shift >= bits || (shift > 0 && bits - shift < 7 && b >> (bits - shift))) {
            r->pos = start;
            kwire_rd_fail(r, field, "varint overflows");
            return 0;
        }
        v |= b << shift;
        if (!(*p & 0x80))
            return v;
    }
}

uint32_t kwire_rd_uvarint(kwire_rd_t *r, const char *field) { return (uint32_t)kw_rd_uv(r, field, 32); }
uint64_t kwire_rd_uvarlong(kwire_rd_t *r, const char *field) { return kw_rd_uv(r, field, 64); }

int32_t kwire_rd_varint(kwire_rd_t *r, const char *field)
{
    uint32_t u = kwire_rd_uvarint(r, field);
    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

int64_t kwire_rd_varlong(kwire_rd_t *r, const char *field)
{
    uint64_t u = kwire_rd_uvarlong(r, field);
    return (int64_t)((u >> 1) ^ (0u - (u & 1)));
}

/* A length of -1 (null, if @p nullable) or >= 0, followed by that many bytes. */
static int32_t kw_rd_sized(kwire_rd_t *r, const char *field, int32_t n, bool nullable, const uint8_t **p)
{
    *p = NULL;
    if (!kwire_rd_ok(r))
        return -1;
    if (n == -1 && nullable)
        return -1;
    if (n < 0) {
        kwire_rd_fail(r, field, n == -1 ? "null where the version does not allow it" : "negative length");
        return -1;
    }
    *p = kwire_rd_raw(r, field, (size_t)n);
    return *p ? n : -1;
}

int32_t kwire_rd_str(kwire_rd_t *r, const char *field, bool nullable, const char **s)
{
    const uint8_t *p;
    int32_t n = kw_rd_sized(r, field, kwire_rd_i16(r, field), nullable, &p);
    *s = (const char *)p;
    return n;
}

int32_t kwire_rd_bytes(kwire_rd_t *r, const char *field, bool nullable, const uint8_t **p)
{
    return kw_rd_sized(r, field, kwire_rd_i32(r, field), nullable, p);
}

int32_t kwire_rd_count(kwire_rd_t *r, const char *field, bool nullable, size_t min_elem)
{
    int32_t n = kwire_rd_i32(r, field);
    if (!kwire_rd_ok(r) || (n == -1 && nullable))
        return -1;
    if (n < 0)
        kwire_rd_fail(r, field, n == -1 ? "null array where the version does not allow it" : "negative count");
    else if (n > KWIRE_MAX_ARRAY)
        kwire_rd_fail(r, field, "array count above the limit");
    else if ((size_t)n > kwire_rd_left(r) / (min_elem ? min_elem : 1))
        kwire_rd_fail(r, field, "array count larger than the remaining bytes can hold");
    return kwire_rd_ok(r) ? n : -1;
}

/* ---- writer ---- */

void kwire_wr_init(kwire_wr_t *w) { memset(w, 0, sizeof *w); }

void kwire_wr_dispose(kwire_wr_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void kwire_wr_reset(kwire_wr_t *w)
{
    w->len = 0;
    w->failed = false;
}

uint8_t *kwire_wr_alloc(kwire_wr_t *w, size_t n)
{
    if (w->failed)
        return NULL;
    if (n > (size_t)INT32_MAX - w->len) {
        w->failed = true;
        return NULL;
    }
    if (!w->buf || w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->failed = true;
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void kwire_wr_raw(kwire_wr_t *w, const void *p, size_t n)
{
    uint8_t *d = kwire_wr_alloc(w, n);
    if (d && n)
        memcpy(d, p, n);
}

void kwire_wr_i8(kwire_wr_t *w, int8_t v)
{
    uint8_t *d = kwire_wr_alloc(w, 1);
    if (d)
        *d = (uint8_t)v;
}

void kwire_wr_i16(kwire_wr_t *w, int16_t v)
{
    uint8_t *d = kwire_wr_alloc(w, 2);
    if (d)
        kw_put16(d, (uint16_t)v);
}

void kwire_wr_i32(kwire_wr_t *w, int32_t v)
{
    uint8_t *d = kwire_wr_alloc(w, 4);
    if (d)
        kw_put32(d, (uint32_t)v);
}

void kwire_wr_i64(kwire_wr_t *w, int64_t v)
{
    uint8_t *d = kwire_wr_alloc(w, 8);
    if (d)
        kw_put64(d, (uint64_t)v);
}

void kwire_wr_uvarlong(kwire_wr_t *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        b[n] |= v ? 0x80 : 0;
        n++;
    } while (v);
    kwire_wr_raw(w, b, n);
}

void kwire_wr_uvarint(kwire_wr_t *w, uint32_t v) { kwire_wr_uvarlong(w, v); }
void kwire_wr_varint(kwire_wr_t *w, int32_t v) { kwire_wr_uvarlong(w, ((uint32_t)v << 1) ^ (v < 0 ? UINT32_MAX : 0)); }
void kwire_wr_varlong(kwire_wr_t *w, int64_t v) { kwire_wr_uvarlong(w, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0)); }

void kwire_wr_str(kwire_wr_t *w, const char *s, size_t n)
{
    if (n > INT16_MAX) {
        w->failed = true;
        return;
    }
    kwire_wr_i16(w, s ? (int16_t)n : -1);
    if (s)
        kwire_wr_raw(w, s, n);
}

void kwire_wr_bytes(kwire_wr_t *w, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        w->failed = true;
        return;
    }
    kwire_wr_i32(w, p ? (int32_t)n : -1);
    if (p)
        kwire_wr_raw(w, p, n);
}

size_t kwire_wr_mark(kwire_wr_t *w)
{
    size_t at = w->len;
    kwire_wr_i32(w, 0);
    return at;
}

void kwire_wr_patch_i32(kwire_wr_t *w, size_t at, int32_t v)
{
    if (!w->failed && at + 4 <= w->len)
        kw_put32(w->buf + at, (uint32_t)v);
}

void kwire_wr_patch_len(kwire_wr_t *w, size_t at)
{
    if (!w->failed && at + 4 <= w->len)
        kwire_wr_patch_i32(w, at, (int32_t)(w->len - at - 4));
}

/* ---- framing ---- */

ferr_code_t kwire_frame_len(const void *buf, size_t n, size_t max_size, size_t *frame_len, ferr_t *err)
{
    *frame_len = 0;
    if (n < 4)
        return FERR_OK;
    int32_t size = (int32_t)kw_be32(buf);
    if (size < 4)
        return ferr_set(err, FERR_INVALID, "frame size %d is below the 4 bytes of a header", size);
    if ((size_t)size > max_size)
        return ferr_set(err, FERR_TOO_LARGE, "frame size %d is above the limit of %zu", size, max_size);
    *frame_len = 4 + (size_t)size;
    return FERR_OK;
}

ferr_code_t kwire_resp_hdr_read(const void *buf, size_t len, int32_t *correlation_id, ferr_t *err)
{
    kwire_rd_t r;
    kwire_rd_init(&r, buf, len);
    *correlation_id = kwire_rd_i32(&r, "correlation_id");
    return kwire_rd_error(&r, "response header", err);
}

ferr_code_t kwire_req_hdr_read(const void *buf, size_t len, int16_t *api_key, int16_t *version,
                               int32_t *correlation_id, size_t *hdr_len, ferr_t *err)
{
    kwire_rd_t r;
    const char *client_id;
    kwire_rd_init(&r, buf, len);
    *api_key = kwire_rd_i16(&r, "api_key");
    *version = kwire_rd_i16(&r, "api_version");
    *correlation_id = kwire_rd_i32(&r, "correlation_id");
    kwire_rd_str(&r, "client_id", true, &client_id);
    *hdr_len = r.pos;
    return kwire_rd_error(&r, "request header", err);
}

/* ---- arena: every array and string of one decoded message ---- */

typedef struct kw_chunk {
    struct kw_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} kw_chunk_t;

#define KW_ALIGN (alignof(max_align_t))

static void *kw_arena_alloc(void **arena, size_t n)
{
    kw_chunk_t *c = *arena;
    n = (n + KW_ALIGN - 1) / KW_ALIGN * KW_ALIGN;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? 2 * c->cap : 1024;
        if (cap < n)
            cap = n;
        kw_chunk_t *nc = calloc(1, sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->next = c;
        *arena = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static void kw_arena_free(void **arena)
{
    for (kw_chunk_t *c = *arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    *arena = NULL;
}

void kwire_req_arena_dispose(kwire_req_arena_t *arena) { kw_arena_free(&arena->_arena); }

/* ---- message tables ---- */

typedef enum kw_kind {
    KW_I8, /* the integer kinds come first: kw_is_int() */
    KW_I16,
    KW_I32,
    KW_I64,
    KW_BOOL,
    KW_STR,    /* const char *; def KW_EMPTY_IF_NULL: NULL is written as "" */
    KW_NSTR,   /* const char *, NULL = null */
    KW_BYTES,  /* const uint8_t * at off, size_t length at off_n */
    KW_NBYTES, /* the same, NULL = null */
    KW_ARRAY,  /* element pointer at off, int32_t count at off_n */
    KW_NARRAY, /* the same, count -1 = null */
} kw_kind_t;

#define KW_NONE 0xffff /* no struct member: written as def, skipped when decoding */
#define KW_ANY 127     /* "and every later version" */
#define KW_EMPTY_IF_NULL 1

typedef struct kw_desc kw_desc_t;

typedef struct kw_field {
    const char *name;
    uint8_t kind;
    int8_t vmin, vmax; /* the versions that carry the field */
    uint16_t off, off_n;
    int64_t def; /* decoded when the version lacks it; written for a constant */
    const kw_desc_t *sub;
} kw_field_t;

struct kw_desc {
    const kw_field_t *fields;
    uint8_t n;
    uint16_t size; /* of the C struct */
};

/* The offset of T.m, and a compile error unless T.m is @p sz bytes. */
#define KW_OFF(T, m, sz) ((uint16_t)(offsetof(T, m) + 0 * sizeof(char[sizeof(((T *)0)->m) == (sz) ? 1 : -1])))
#define KW_INT(kind, sz, T, m, lo, hi, d) {#m, kind, lo, hi, KW_OFF(T, m, sz), KW_NONE, d, NULL}
#define I8(T, m, lo, hi, d) KW_INT(KW_I8, 1, T, m, lo, hi, d)
#define I16(T, m, lo, hi, d) KW_INT(KW_I16, 2, T, m, lo, hi, d)
#define I32(T, m, lo, hi, d) KW_INT(KW_I32, 4, T, m, lo, hi, d)
#define I64(T, m, lo, hi, d) KW_INT(KW_I64, 8, T, m, lo, hi, d)
#define BOOL(T, m, lo, hi) KW_INT(KW_BOOL, sizeof(bool), T, m, lo, hi, 0)
#define STR(T, m, lo, hi) KW_INT(KW_STR, sizeof(char *), T, m, lo, hi, 0)
#define NSTR(T, m, lo, hi) KW_INT(KW_NSTR, sizeof(char *), T, m, lo, hi, 0)
#define BYTES(kind, T, m, lo, hi) {#m, kind, lo, hi, KW_OFF(T, m, sizeof(void *)), KW_OFF(T, m##_len, sizeof(size_t)), 0, NULL}
#define ARRAY(kind, T, m, lo, hi, sub) {#m, kind, lo, hi, KW_OFF(T, m, sizeof(void *)), KW_OFF(T, n_##m, 4), 0, &sub}
#define CONST(kind, name, lo, hi, d, sub) {name, kind, lo, hi, KW_NONE, KW_NONE, d, sub}
#define DESC(T, fields) {fields, sizeof fields / sizeof fields[0], sizeof(T)}

static const kw_field_t kw_i32_elem_f[] = {CONST(KW_I32, "id", 0, KW_ANY, 0, NULL)};
static const kw_desc_t kw_i32_elem = {kw_i32_elem_f, 1, 0}; /* an []int32 that is skipped */
static const kw_desc_t kw_empty = {NULL, 0, 0};

/* ApiVersions */
static const kw_field_t kw_av_key_f[] = {
    I16(kwire_api_version_t, api_key, 0, KW_ANY, 0),
    I16(kwire_api_version_t, min_version, 0, KW_ANY, 0),
    I16(kwire_api_version_t, max_version, 0, KW_ANY, 0),
};
static const kw_desc_t kw_av_key = DESC(kwire_api_version_t, kw_av_key_f);
static const kw_field_t kw_av_resp_f[] = {
    I16(kwire_apiversions_resp_t, error_code, 0, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_apiversions_resp_t, api_keys, 0, KW_ANY, kw_av_key),
    I32(kwire_apiversions_resp_t, throttle_time_ms, 1, KW_ANY, 0),
};
static const kw_desc_t kw_av_resp = DESC(kwire_apiversions_resp_t, kw_av_resp_f);

/* Metadata */
static const kw_field_t kw_md_req_topic_f[] = {STR(kwire_metadata_req_topic_t, name, 0, KW_ANY)};
static const kw_desc_t kw_md_req_topic = DESC(kwire_metadata_req_topic_t, kw_md_req_topic_f);
static const kw_field_t kw_md_req_f[] = {
    ARRAY(KW_NARRAY, kwire_metadata_req_t, topics, 1, KW_ANY, kw_md_req_topic),
    BOOL(kwire_metadata_req_t, allow_auto_topic_creation, 4, KW_ANY),
    CONST(KW_BOOL, "include_cluster_authorized_operations", 8, 10, 0, NULL),
    CONST(KW_BOOL, "include_topic_authorized_operations", 8, KW_ANY, 0, NULL),
};
static const kw_desc_t kw_md_req = DESC(kwire_metadata_req_t, kw_md_req_f);
static const kw_field_t kw_md_broker_f[] = {
    I32(kwire_metadata_broker_t, node_id, 0, KW_ANY, 0),
    STR(kwire_metadata_broker_t, host, 0, KW_ANY),
    I32(kwire_metadata_broker_t, port, 0, KW_ANY, 0),
    NSTR(kwire_metadata_broker_t, rack, 1, KW_ANY),
};
static const kw_desc_t kw_md_broker = DESC(kwire_metadata_broker_t, kw_md_broker_f);
static const kw_field_t kw_md_part_f[] = {
    I16(kwire_metadata_partition_t, error_code, 0, KW_ANY, 0),
    I32(kwire_metadata_partition_t, partition, 0, KW_ANY, 0),
    I32(kwire_metadata_partition_t, leader, 0, KW_ANY, -1),
    I32(kwire_metadata_partition_t, leader_epoch, 7, KW_ANY, -1),
    CONST(KW_ARRAY, "replica_nodes", 0, KW_ANY, 0, &kw_i32_elem),
    CONST(KW_ARRAY, "isr_nodes", 0, KW_ANY, 0, &kw_i32_elem),
    CONST(KW_ARRAY, "offline_replicas", 5, KW_ANY, 0, &kw_i32_elem),
};
static const kw_desc_t kw_md_part = DESC(kwire_metadata_partition_t, kw_md_part_f);
static const kw_field_t kw_md_topic_f[] = {
    I16(kwire_metadata_topic_t, error_code, 0, KW_ANY, 0),
    STR(kwire_metadata_topic_t, name, 0, KW_ANY),
    BOOL(kwire_metadata_topic_t, is_internal, 1, KW_ANY),
    ARRAY(KW_ARRAY, kwire_metadata_topic_t, partitions, 0, KW_ANY, kw_md_part),
    CONST(KW_I32, "topic_authorized_operations", 8, KW_ANY, INT32_MIN, NULL),
};
static const kw_desc_t kw_md_topic = DESC(kwire_metadata_topic_t, kw_md_topic_f);
static const kw_field_t kw_md_resp_f[] = {
    I32(kwire_metadata_resp_t, throttle_time_ms, 3, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_metadata_resp_t, brokers, 0, KW_ANY, kw_md_broker),
    NSTR(kwire_metadata_resp_t, cluster_id, 2, KW_ANY),
    I32(kwire_metadata_resp_t, controller_id, 1, KW_ANY, -1),
    ARRAY(KW_ARRAY, kwire_metadata_resp_t, topics, 0, KW_ANY, kw_md_topic),
    CONST(KW_I32, "cluster_authorized_operations", 8, 10, INT32_MIN, NULL),
};
static const kw_desc_t kw_md_resp = DESC(kwire_metadata_resp_t, kw_md_resp_f);

/* Fetch */
static const kw_field_t kw_fe_req_part_f[] = {
    I32(kwire_fetch_req_partition_t, partition, 0, KW_ANY, 0),
    I32(kwire_fetch_req_partition_t, current_leader_epoch, 9, KW_ANY, -1),
    I64(kwire_fetch_req_partition_t, fetch_offset, 0, KW_ANY, 0),
    I64(kwire_fetch_req_partition_t, log_start_offset, 5, KW_ANY, -1),
    I32(kwire_fetch_req_partition_t, partition_max_bytes, 0, KW_ANY, 0),
};
static const kw_desc_t kw_fe_req_part = DESC(kwire_fetch_req_partition_t, kw_fe_req_part_f);
static const kw_field_t kw_fe_req_topic_f[] = {
    STR(kwire_fetch_req_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_fetch_req_topic_t, partitions, 0, KW_ANY, kw_fe_req_part),
};
static const kw_desc_t kw_fe_req_topic = DESC(kwire_fetch_req_topic_t, kw_fe_req_topic_f);
static const kw_field_t kw_fe_forgotten_f[] = {
    CONST(KW_STR, "topic", 0, KW_ANY, 0, NULL),
    CONST(KW_ARRAY, "partitions", 0, KW_ANY, 0, &kw_i32_elem),
};
static const kw_desc_t kw_fe_forgotten = {kw_fe_forgotten_f, 2, 0};
static const kw_field_t kw_fe_req_f[] = {
    CONST(KW_I32, "replica_id", 0, KW_ANY, -1, NULL),
    I32(kwire_fetch_req_t, max_wait_ms, 0, KW_ANY, 0),
    I32(kwire_fetch_req_t, min_bytes, 0, KW_ANY, 0),
    I32(kwire_fetch_req_t, max_bytes, 3, KW_ANY, INT32_MAX),
    I8(kwire_fetch_req_t, isolation_level, 4, KW_ANY, 0),
    CONST(KW_I32, "session_id", 7, KW_ANY, 0, NULL),
    CONST(KW_I32, "session_epoch", 7, KW_ANY, -1, NULL),
    ARRAY(KW_ARRAY, kwire_fetch_req_t, topics, 0, KW_ANY, kw_fe_req_topic),
    CONST(KW_ARRAY, "forgotten_topics_data", 7, KW_ANY, 0, &kw_fe_forgotten),
    {"rack_id", KW_STR, 11, KW_ANY, KW_OFF(kwire_fetch_req_t, rack_id, sizeof(char *)), KW_NONE, KW_EMPTY_IF_NULL,
     NULL},
};
static const kw_desc_t kw_fe_req = DESC(kwire_fetch_req_t, kw_fe_req_f);
static const kw_field_t kw_fe_aborted_f[] = {
    I64(kwire_aborted_txn_t, producer_id, 0, KW_ANY, 0),
    I64(kwire_aborted_txn_t, first_offset, 0, KW_ANY, 0),
};
static const kw_desc_t kw_fe_aborted = DESC(kwire_aborted_txn_t, kw_fe_aborted_f);
static const kw_field_t kw_fe_part_f[] = {
    I32(kwire_fetch_partition_t, partition, 0, KW_ANY, 0),
    I16(kwire_fetch_partition_t, error_code, 0, KW_ANY, 0),
    I64(kwire_fetch_partition_t, high_watermark, 0, KW_ANY, -1),
    I64(kwire_fetch_partition_t, last_stable_offset, 4, KW_ANY, -1),
    I64(kwire_fetch_partition_t, log_start_offset, 5, KW_ANY, -1),
    ARRAY(KW_NARRAY, kwire_fetch_partition_t, aborted_transactions, 4, KW_ANY, kw_fe_aborted),
    I32(kwire_fetch_partition_t, preferred_read_replica, 11, KW_ANY, -1),
    BYTES(KW_NBYTES, kwire_fetch_partition_t, records, 0, KW_ANY),
};
static const kw_desc_t kw_fe_part = DESC(kwire_fetch_partition_t, kw_fe_part_f);
static const kw_field_t kw_fe_topic_f[] = {
    STR(kwire_fetch_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_fetch_topic_t, partitions, 0, KW_ANY, kw_fe_part),
};
static const kw_desc_t kw_fe_topic = DESC(kwire_fetch_topic_t, kw_fe_topic_f);
static const kw_field_t kw_fe_resp_f[] = {
    I32(kwire_fetch_resp_t, throttle_time_ms, 1, KW_ANY, 0),
    I16(kwire_fetch_resp_t, error_code, 7, KW_ANY, 0),
    I32(kwire_fetch_resp_t, session_id, 7, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_fetch_resp_t, topics, 0, KW_ANY, kw_fe_topic),
};
static const kw_desc_t kw_fe_resp = DESC(kwire_fetch_resp_t, kw_fe_resp_f);

/* Produce */
static const kw_field_t kw_pr_req_part_f[] = {
    I32(kwire_produce_req_partition_t, partition, 0, KW_ANY, 0),
    BYTES(KW_NBYTES, kwire_produce_req_partition_t, records, 0, KW_ANY),
};
static const kw_desc_t kw_pr_req_part = DESC(kwire_produce_req_partition_t, kw_pr_req_part_f);
static const kw_field_t kw_pr_req_topic_f[] = {
    STR(kwire_produce_req_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_produce_req_topic_t, partitions, 0, KW_ANY, kw_pr_req_part),
};
static const kw_desc_t kw_pr_req_topic = DESC(kwire_produce_req_topic_t, kw_pr_req_topic_f);
static const kw_field_t kw_pr_req_f[] = {
    CONST(KW_NSTR, "transactional_id", 3, KW_ANY, -1, NULL),
    I16(kwire_produce_req_t, acks, 0, KW_ANY, 0),
    I32(kwire_produce_req_t, timeout_ms, 0, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_produce_req_t, topics, 0, KW_ANY, kw_pr_req_topic),
};
static const kw_desc_t kw_pr_req = DESC(kwire_produce_req_t, kw_pr_req_f);
static const kw_field_t kw_pr_recerr_f[] = {
    I32(kwire_record_error_t, batch_index, 0, KW_ANY, 0),
    NSTR(kwire_record_error_t, message, 0, KW_ANY),
};
static const kw_desc_t kw_pr_recerr = DESC(kwire_record_error_t, kw_pr_recerr_f);
static const kw_field_t kw_pr_part_f[] = {
    I32(kwire_produce_partition_t, partition, 0, KW_ANY, 0),
    I16(kwire_produce_partition_t, error_code, 0, KW_ANY, 0),
    I64(kwire_produce_partition_t, base_offset, 0, KW_ANY, -1),
    I64(kwire_produce_partition_t, log_append_time_ms, 2, KW_ANY, -1),
    I64(kwire_produce_partition_t, log_start_offset, 5, KW_ANY, -1),
    ARRAY(KW_ARRAY, kwire_produce_partition_t, record_errors, 8, KW_ANY, kw_pr_recerr),
    NSTR(kwire_produce_partition_t, error_message, 8, KW_ANY),
};
static const kw_desc_t kw_pr_part = DESC(kwire_produce_partition_t, kw_pr_part_f);
static const kw_field_t kw_pr_topic_f[] = {
    STR(kwire_produce_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_produce_topic_t, partitions, 0, KW_ANY, kw_pr_part),
};
static const kw_desc_t kw_pr_topic = DESC(kwire_produce_topic_t, kw_pr_topic_f);
static const kw_field_t kw_pr_resp_f[] = {
    ARRAY(KW_ARRAY, kwire_produce_resp_t, topics, 0, KW_ANY, kw_pr_topic),
    I32(kwire_produce_resp_t, throttle_time_ms, 1, KW_ANY, 0),
};
static const kw_desc_t kw_pr_resp = DESC(kwire_produce_resp_t, kw_pr_resp_f);

/* InitProducerId */
static const kw_field_t kw_ip_req_f[] = {
    CONST(KW_NSTR, "transactional_id", 0, KW_ANY, -1, NULL),
    I32(kwire_initpid_req_t, transaction_timeout_ms, 0, KW_ANY, 0),
};
static const kw_desc_t kw_ip_req = DESC(kwire_initpid_req_t, kw_ip_req_f);
static const kw_field_t kw_ip_resp_f[] = {
    I32(kwire_initpid_resp_t, throttle_time_ms, 0, KW_ANY, 0),
    I16(kwire_initpid_resp_t, error_code, 0, KW_ANY, 0),
    I64(kwire_initpid_resp_t, producer_id, 0, KW_ANY, -1),
    I16(kwire_initpid_resp_t, producer_epoch, 0, KW_ANY, -1),
};
static const kw_desc_t kw_ip_resp = DESC(kwire_initpid_resp_t, kw_ip_resp_f);

/* ListOffsets */
static const kw_field_t kw_lo_req_part_f[] = {
    I32(kwire_listoffsets_req_partition_t, partition, 0, KW_ANY, 0),
    I32(kwire_listoffsets_req_partition_t, current_leader_epoch, 4, KW_ANY, -1),
    I64(kwire_listoffsets_req_partition_t, timestamp, 0, KW_ANY, 0),
};
static const kw_desc_t kw_lo_req_part = DESC(kwire_listoffsets_req_partition_t, kw_lo_req_part_f);
static const kw_field_t kw_lo_req_topic_f[] = {
    STR(kwire_listoffsets_req_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_listoffsets_req_topic_t, partitions, 0, KW_ANY, kw_lo_req_part),
};
static const kw_desc_t kw_lo_req_topic = DESC(kwire_listoffsets_req_topic_t, kw_lo_req_topic_f);
static const kw_field_t kw_lo_req_f[] = {
    CONST(KW_I32, "replica_id", 0, KW_ANY, -1, NULL),
    I8(kwire_listoffsets_req_t, isolation_level, 2, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_listoffsets_req_t, topics, 0, KW_ANY, kw_lo_req_topic),
};
static const kw_desc_t kw_lo_req = DESC(kwire_listoffsets_req_t, kw_lo_req_f);
static const kw_field_t kw_lo_part_f[] = {
    I32(kwire_listoffsets_partition_t, partition, 0, KW_ANY, 0),
    I16(kwire_listoffsets_partition_t, error_code, 0, KW_ANY, 0),
    I64(kwire_listoffsets_partition_t, timestamp, 1, KW_ANY, -1),
    I64(kwire_listoffsets_partition_t, offset, 1, KW_ANY, -1),
    I32(kwire_listoffsets_partition_t, leader_epoch, 4, KW_ANY, -1),
};
static const kw_desc_t kw_lo_part = DESC(kwire_listoffsets_partition_t, kw_lo_part_f);
static const kw_field_t kw_lo_topic_f[] = {
    STR(kwire_listoffsets_topic_t, topic, 0, KW_ANY),
    ARRAY(KW_ARRAY, kwire_listoffsets_topic_t, partitions, 0, KW_ANY, kw_lo_part),
};
static const kw_desc_t kw_lo_topic = DESC(kwire_listoffsets_topic_t, kw_lo_topic_f);
static const kw_field_t kw_lo_resp_f[] = {
    I32(kwire_listoffsets_resp_t, throttle_time_ms, 2, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_listoffsets_resp_t, topics, 0, KW_ANY, kw_lo_topic),
};
static const kw_desc_t kw_lo_resp = DESC(kwire_listoffsets_resp_t, kw_lo_resp_f);

/* SaslHandshake, SaslAuthenticate */
static const kw_field_t kw_sh_req_f[] = {STR(kwire_saslhandshake_req_t, mechanism, 0, KW_ANY)};
static const kw_desc_t kw_sh_req = DESC(kwire_saslhandshake_req_t, kw_sh_req_f);
static const kw_field_t kw_sh_mech_f[] = {STR(kwire_sasl_mechanism_t, name, 0, KW_ANY)};
static const kw_desc_t kw_sh_mech = DESC(kwire_sasl_mechanism_t, kw_sh_mech_f);
static const kw_field_t kw_sh_resp_f[] = {
    I16(kwire_saslhandshake_resp_t, error_code, 0, KW_ANY, 0),
    ARRAY(KW_ARRAY, kwire_saslhandshake_resp_t, mechanisms, 0, KW_ANY, kw_sh_mech),
};
static const kw_desc_t kw_sh_resp = DESC(kwire_saslhandshake_resp_t, kw_sh_resp_f);
static const kw_field_t kw_sa_req_f[] = {BYTES(KW_BYTES, kwire_saslauth_req_t, auth_bytes, 0, KW_ANY)};
static const kw_desc_t kw_sa_req = DESC(kwire_saslauth_req_t, kw_sa_req_f);
static const kw_field_t kw_sa_resp_f[] = {
    I16(kwire_saslauth_resp_t, error_code, 0, KW_ANY, 0),
    NSTR(kwire_saslauth_resp_t, error_message, 0, KW_ANY),
    BYTES(KW_BYTES, kwire_saslauth_resp_t, auth_bytes, 0, KW_ANY),
    I64(kwire_saslauth_resp_t, session_lifetime_ms, 1, KW_ANY, 0),
};
static const kw_desc_t kw_sa_resp = DESC(kwire_saslauth_resp_t, kw_sa_resp_f);

typedef struct kw_api {
    int16_t key;
    const char *name;
    int16_t vmin, vmax;
    int16_t vprefer; /* the highest version kwire_negotiate() picks */
    const kw_desc_t *req, *resp;
} kw_api_t;

static const kw_api_t kw_apis[] = {
    {KWIRE_API_PRODUCE, "Produce", 3, 8, 8, &kw_pr_req, &kw_pr_resp},
    {KWIRE_API_FETCH, "Fetch", 4, 11, 11, &kw_fe_req, &kw_fe_resp},
    {KWIRE_API_LIST_OFFSETS, "ListOffsets", 1, 5, KWIRE_LISTOFFSETS_SAFE_MAX, &kw_lo_req, &kw_lo_resp},
    {KWIRE_API_METADATA, "Metadata", 1, 8, 8, &kw_md_req, &kw_md_resp},
    {KWIRE_API_SASL_HANDSHAKE, "SaslHandshake", 1, 1, 1, &kw_sh_req, &kw_sh_resp},
    {KWIRE_API_API_VERSIONS, "ApiVersions", 0, 2, 2, &kw_empty, &kw_av_resp},
    {KWIRE_API_INIT_PRODUCER_ID, "InitProducerId", 0, 1, 1, &kw_ip_req, &kw_ip_resp},
    {KWIRE_API_SASL_AUTHENTICATE, "SaslAuthenticate", 0, 1, 1, &kw_sa_req, &kw_sa_resp},
};

static const kw_api_t *kw_api_find(int16_t key)
{
    for (size_t i = 0; i < sizeof kw_apis / sizeof kw_apis[0]; i++)
        if (kw_apis[i].key == key)
            return &kw_apis[i];
    return NULL;
}

const char *kwire_api_name(int16_t api_key)
{
    const kw_api_t *a = kw_api_find(api_key);
    return a ? a->name : "unknown";
}

bool kwire_api_range(int16_t api_key, int16_t *min, int16_t *max)
{
    const kw_api_t *a = kw_api_find(api_key);
    if (!a)
        return false;
    *min = a->vmin;
    *max = a->vmax;
    return true;
}

/* ---- the generic codec ---- */

#define KW_DEPTH 6

/* Where in a message we are: "topics[1].partitions[0].", for error messages. */
typedef struct kw_path {
    const char *name[KW_DEPTH];
    int32_t idx[KW_DEPTH];
    int depth;
    char str[160];
    bool done;
} kw_path_t;

static void kw_path_capture(kw_path_t *p)
{
    if (p->done)
        return;
    size_t n = 0;
    p->str[0] = '\0';
    for (int i = 0; i < p->depth && n < sizeof p->str; i++) {
        int k = snprintf(p->str + n, sizeof p->str - n, "%s[%d].", p->name[i], p->idx[i]);
        n += k > 0 ? (size_t)k : 0;
    }
    p->done = true;
}

static bool kw_in(const kw_field_t *f, int16_t ver) { return ver >= f->vmin && ver <= f->vmax; }

static size_t kw_min_size(const kw_desc_t *d, int16_t ver)
{
    static const uint8_t size[] = {[KW_I8] = 1, [KW_I16] = 2, [KW_I32] = 4, [KW_I64] = 8, [KW_BOOL] = 1,
                                   [KW_STR] = 2, [KW_NSTR] = 2, [KW_BYTES] = 4, [KW_NBYTES] = 4,
                                   [KW_ARRAY] = 4, [KW_NARRAY] = 4};
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += kw_in(&d->fields[i], ver) ? size[d->fields[i].kind] : 0;
    return n ? n : 1;
}

typedef struct kw_dec {
    kwire_rd_t r;
    void **arena;
    int16_t ver;
    kw_path_t path;
} kw_dec_t;

static void kw_dec_struct(kw_dec_t *d, const kw_desc_t *desc, char *out);

/* The integer kinds (KW_I8..KW_BOOL): read, store, load and write one by its width. */
static bool kw_is_int(uint8_t kind) { return kind <= KW_BOOL; }

static int64_t kw_rd_int(kwire_rd_t *r, const kw_field_t *f)
{
    switch (f->kind) {
    case KW_I8:
    case KW_BOOL: return kwire_rd_i8(r, f->name);
    case KW_I16: return kwire_rd_i16(r, f->name);
    case KW_I32: return kwire_rd_i32(r, f->name);
    default: return kwire_rd_i64(r, f->name);
    }
}

static void kw_store_int(uint8_t kind, char *at, int64_t v)
{
    switch (kind) {
    case KW_I8: *(int8_t *)at = (int8_t)v; break;
    case KW_BOOL: *(bool *)at = v != 0; break;
    case KW_I16: *(int16_t *)at = (int16_t)v; break;
    case KW_I32: *(int32_t *)at = (int32_t)v; break;
    default: *(int64_t *)at = v; break;
    }
}

static int64_t kw_load_int(uint8_t kind, const char *at)
{
    switch (kind) {
    case KW_I8: return *(const int8_t *)at;
    case KW_BOOL: return *(const bool *)at;
    case KW_I16: return *(const int16_t *)at;
    case KW_I32: return *(const int32_t *)at;
    default: return *(const int64_t *)at;
    }
}

static void kw_wr_int(kwire_wr_t *w, uint8_t kind, int64_t v)
{
    switch (kind) {
    case KW_I8: kwire_wr_i8(w, (int8_t)v); break;
    case KW_BOOL: kwire_wr_i8(w, v != 0); break;
    case KW_I16: kwire_wr_i16(w, (int16_t)v); break;
    case KW_I32: kwire_wr_i32(w, (int32_t)v); break;
    default: kwire_wr_i64(w, v); break;
    }
}

static void kw_dec_array(kw_dec_t *d, const kw_field_t *f, char *at, char *out)
{
    int32_t n = kwire_rd_count(&d->r, f->name, f->kind == KW_NARRAY, kw_min_size(f->sub, d->ver));
    if (!kwire_rd_ok(&d->r))
        return;
    char *elems = NULL;
    if (at && n > 0 && !(elems = kw_arena_alloc(d->arena, (size_t)n * f->sub->size))) {
        kwire_rd_fail(&d->r, f->name, "out of memory");
        return;
    }
    if (at) {
        memcpy(at, &elems, sizeof elems); /* the member is a typed element pointer */
        *(int32_t *)(out + f->off_n) = n;
    }
    if (d->path.depth == KW_DEPTH) {
        kwire_rd_fail(&d->r, f->name, "nested too deep");
        return;
    }
    d->path.name[d->path.depth] = f->name;
    d->path.depth++;
    for (int32_t k = 0; k < n && kwire_rd_ok(&d->r); k++) {
        d->path.idx[d->path.depth - 1] = k;
        kw_dec_struct(d, f->sub, elems ? elems + (size_t)k * f->sub->size : NULL);
    }
    d->path.depth--;
}

static void kw_dec_field(kw_dec_t *d, const kw_field_t *f, char *out)
{
    kwire_rd_t *r = &d->r;
    char *at = out && f->off != KW_NONE ? out + f->off : NULL;
    if (kw_is_int(f->kind)) {
        int64_t v = kw_rd_int(r, f);
        if (at)
            kw_store_int(f->kind, at, v);
        return;
    }
    switch (f->kind) {
    case KW_STR:
    case KW_NSTR: {
        const char *s;
        int32_t n = kwire_rd_str(r, f->name, f->kind == KW_NSTR, &s);
        if (n > 0 && memchr(s, 0, (size_t)n))
            kwire_rd_fail(r, f->name, "string contains a NUL byte");
        if (!kwire_rd_ok(r) || !at || n < 0)
            break;
        char *c = kw_arena_alloc(d->arena, (size_t)n + 1);
        if (!c) {
            kwire_rd_fail(r, f->name, "out of memory");
            break;
        }
        memcpy(c, s, (size_t)n);
        *(char **)at = c;
        break;
    }
    case KW_BYTES:
    case KW_NBYTES: {
        const uint8_t *p;
        int32_t n = kwire_rd_bytes(r, f->name, f->kind == KW_NBYTES, &p);
        if (at && kwire_rd_ok(r)) {
            *(const uint8_t **)at = p;
            *(size_t *)(out + f->off_n) = n < 0 ? 0 : (size_t)n;
        }
        break;
    }
    case KW_ARRAY:
    case KW_NARRAY: kw_dec_array(d, f, at, out); break;
    }
}

static void kw_dec_struct(kw_dec_t *d, const kw_desc_t *desc, char *out)
{
    for (size_t i = 0; i < desc->n && kwire_rd_ok(&d->r); i++) {
        const kw_field_t *f = &desc->fields[i];
        if (kw_in(f, d->ver))
            kw_dec_field(d, f, out);
        else if (out && f->off != KW_NONE && kw_is_int(f->kind))
            kw_store_int(f->kind, out + f->off, f->def); /* pointers and counts stay zero */
        if (!kwire_rd_ok(&d->r))
            kw_path_capture(&d->path);
    }
}

static ferr_code_t kw_unsupported(const kw_api_t *a, int16_t ver, ferr_t *err)
{
    return ferr_set(err, FERR_UNSUPPORTED, "%s v%d is not supported (kwire speaks v%d-%d)", a->name, ver, a->vmin,
                    a->vmax);
}

static ferr_code_t kw_decode(const kw_api_t *a, bool resp, const void *body, size_t len, int16_t ver, void *out,
                             void **arena, ferr_t *err)
{
    const kw_desc_t *desc = resp ? a->resp : a->req;
    memset(out, 0, desc->size);
    *arena = NULL;
    if (ver < a->vmin || ver > a->vmax)
        return kw_unsupported(a, ver, err);
    kw_dec_t d = {.arena = arena, .ver = ver};
    kwire_rd_init(&d.r, body, len);
    kw_dec_struct(&d, desc, out);
    if (kwire_rd_ok(&d.r) && kwire_rd_left(&d.r))
        kwire_rd_fail(&d.r, "(end)", "trailing bytes");
    if (kwire_rd_ok(&d.r))
        return FERR_OK;
    kw_path_capture(&d.path);
    kw_arena_free(arena);
    memset(out, 0, desc->size);
    return ferr_set(err, FERR_INVALID, "%s v%d %s: %s%s: %s at offset %zu of %zu", a->name, ver,
                    resp ? "response" : "request", d.path.str, d.r.field, d.r.fail, d.r.fail_pos, d.r.len);
}

typedef struct kw_enc {
    kwire_wr_t *w;
    int16_t ver;
    const char *fail;
    const char *field;
    kw_path_t path;
} kw_enc_t;

static void kw_enc_struct(kw_enc_t *e, const kw_desc_t *desc, const char *in);

static void kw_enc_fail(kw_enc_t *e, const kw_field_t *f, const char *what)
{
    if (e->fail)
        return;
    e->fail = what;
    e->field = f->name;
    kw_path_capture(&e->path);
}

static void kw_enc_array(kw_enc_t *e, const kw_field_t *f, const char *at, const char *in)
{
    const char *elems = NULL;
    int32_t n = at ? *(const int32_t *)(in + f->off_n) : (int32_t)f->def;
    if (at)
        memcpy(&elems, at, sizeof elems);
    const char *bad = NULL;
    if (n < 0 && !(n == -1 && f->kind == KW_NARRAY))
        bad = n == -1 ? "null array where the version does not allow it" : "negative count";
    else if (n > 0 && !elems)
        bad = "NULL elements with a positive count";
    else if (e->path.depth == KW_DEPTH)
        bad = "nested too deep";
    if (bad) {
        kw_enc_fail(e, f, bad);
        return;
    }
    kwire_wr_i32(e->w, n);
    e->path.name[e->path.depth] = f->name;
    e->path.depth++;
    for (int32_t k = 0; k < n && !e->fail; k++) {
        e->path.idx[e->path.depth - 1] = k;
        kw_enc_struct(e, f->sub, elems + (size_t)k * f->sub->size);
    }
    e->path.depth--;
}

static void kw_enc_field(kw_enc_t *e, const kw_field_t *f, const char *in)
{
    const char *at = in && f->off != KW_NONE ? in + f->off : NULL;
    if (kw_is_int(f->kind)) {
        kw_wr_int(e->w, f->kind, at ? kw_load_int(f->kind, at) : f->def);
        return;
    }
    switch (f->kind) {
    case KW_STR:
    case KW_NSTR: {
        const char *s = at ? *(const char *const *)at : (f->def < 0 ? NULL : "");
        if (!s && f->kind == KW_STR && f->def == KW_EMPTY_IF_NULL)
            s = "";
        size_t n = s ? strlen(s) : 0;
        if (!s && f->kind == KW_STR)
            kw_enc_fail(e, f, "NULL where the version needs a string");
        else if (n > INT16_MAX)
            kw_enc_fail(e, f, "string longer than 32767 bytes");
        else
            kwire_wr_str(e->w, s, n);
        break;
    }
    case KW_BYTES:
    case KW_NBYTES: {
        const uint8_t *p = at ? *(const uint8_t *const *)at : NULL;
        size_t n = at ? *(const size_t *)(in + f->off_n) : 0;
        if (!p && f->kind == KW_BYTES)
            kw_enc_fail(e, f, "NULL where the version needs bytes");
        else if (n > INT32_MAX)
            kw_enc_fail(e, f, "more than INT32_MAX bytes");
        else
            kwire_wr_bytes(e->w, p, p ? n : 0);
        break;
    }
    case KW_ARRAY:
    case KW_NARRAY: kw_enc_array(e, f, at, in); break;
    }
}

static void kw_enc_struct(kw_enc_t *e, const kw_desc_t *desc, const char *in)
{
    for (size_t i = 0; i < desc->n && !e->fail; i++)
        if (kw_in(&desc->fields[i], e->ver))
            kw_enc_field(e, &desc->fields[i], in);
}

/* Appends one frame: the size, then either a request header v1 (@p h) or a response header v0
 * (@p correlation_id), then the body; on error the writer is left as it was. */
static ferr_code_t kw_encode(kwire_wr_t *w, const kw_api_t *a, const kwire_req_hdr_t *h, int32_t correlation_id,
                             int16_t ver, const void *m, ferr_t *err)
{
    if (ver < a->vmin || ver > a->vmax)
        return kw_unsupported(a, ver, err);
    size_t start = w->len;
    bool was_failed = w->failed;
    kw_enc_t e = {.w = w, .ver = ver};
    size_t mark = kwire_wr_mark(w);
    if (h) {
        size_t cid = h->client_id ? strlen(h->client_id) : 0;
        kwire_wr_i16(w, a->key);
        kwire_wr_i16(w, ver);
        kwire_wr_i32(w, h->correlation_id);
        if (cid > INT16_MAX)
            e.fail = "string longer than 32767 bytes", e.field = "client_id";
        kwire_wr_str(w, h->client_id, cid);
    } else {
        kwire_wr_i32(w, correlation_id);
    }
    if (!e.fail)
        kw_enc_struct(&e, h ? a->req : a->resp, m);
    kwire_wr_patch_len(w, mark);
    if (!e.fail && !w->failed)
        return FERR_OK;
    ferr_code_t rc = e.fail ? FERR_INVALID : FERR_TOO_LARGE;
    w->len = start;
    w->failed = was_failed;
    if (e.fail)
        return ferr_set(err, rc, "%s v%d %s: %s%s: %s", a->name, ver, h ? "request" : "response", e.path.str,
                        e.field, e.fail);
    return ferr_set(err, rc, "%s v%d %s: the frame would pass INT32_MAX bytes or memory ran out", a->name, ver,
                    h ? "request" : "response");
}

#define KW_FUNCS(x, key)                                                                                     \
    ferr_code_t kwire_##x##_req_write(kwire_wr_t *w, const kwire_req_hdr_t *h, const kwire_##x##_req_t *m,    \
                                      ferr_t *err)                                                           \
    {                                                                                                        \
        return kw_encode(w, kw_api_find(key), h, 0, h->version, m, err);                                     \
    }                                                                                                        \
    ferr_code_t kwire_##x##_req_decode(const void *body, size_t len, int16_t version, kwire_##x##_req_t *out, \
                                       kwire_req_arena_t *arena, ferr_t *err)                                \
    {                                                                                                        \
        return kw_decode(kw_api_find(key), false, body, len, version, out, &arena->_arena, err);             \
    }                                                                                                        \
    ferr_code_t kwire_##x##_resp_write(kwire_wr_t *w, int32_t correlation_id, int16_t version,               \
                                       const kwire_##x##_resp_t *m, ferr_t *err)                             \
    {                                                                                                        \
        return kw_encode(w, kw_api_find(key), NULL, correlation_id, version, m, err);                        \
    }                                                                                                        \
    ferr_code_t kwire_##x##_resp_decode(const void *body, size_t len, int16_t version,                       \
                                        kwire_##x##_resp_t *out, ferr_t *err)                                \
    {                                                                                                        \
        return kw_decode(kw_api_find(key), true, body, len, version, out, &out->_arena, err);                \
    }                                                                                                        \
    void kwire_##x##_resp_dispose(kwire_##x##_resp_t *m)                                                     \
    {                                                                                                        \
        kw_arena_free(&m->_arena);                                                                           \
        memset(m, 0, sizeof *m);                                                                             \
    }

KW_FUNCS(metadata, KWIRE_API_METADATA)
KW_FUNCS(fetch, KWIRE_API_FETCH)
KW_FUNCS(produce, KWIRE_API_PRODUCE)
KW_FUNCS(initpid, KWIRE_API_INIT_PRODUCER_ID)
KW_FUNCS(listoffsets, KWIRE_API_LIST_OFFSETS)
KW_FUNCS(saslhandshake, KWIRE_API_SASL_HANDSHAKE)
KW_FUNCS(saslauth, KWIRE_API_SASL_AUTHENTICATE)

/* ---- ApiVersions ---- */

#define KW_UNSUPPORTED_VERSION 35

ferr_code_t kwire_apiversions_req_write(kwire_wr_t *w, const kwire_req_hdr_t *h, ferr_t *err)
{
    return kw_encode(w, kw_api_find(KWIRE_API_API_VERSIONS), h, 0, h->version, NULL, err);
}

ferr_code_t kwire_apiversions_resp_write(kwire_wr_t *w, int32_t correlation_id, int16_t version,
                                         const kwire_apiversions_resp_t *m, ferr_t *err)
{
    return kw_encode(w, kw_api_find(KWIRE_API_API_VERSIONS), NULL, correlation_id, version, m, err);
}

ferr_code_t kwire_apiversions_resp_decode(const void *body, size_t len, int16_t version,
                                          kwire_apiversions_resp_t *out, ferr_t *err)
{
    const kw_api_t *a = kw_api_find(KWIRE_API_API_VERSIONS);
    ferr_code_t rc = kw_decode(a, true, body, len, version, out, &out->_arena, err);
    if (rc == FERR_INVALID && version > 0 && len >= 2 && (int16_t)kw_be16(body) == KW_UNSUPPORTED_VERSION)
        rc = kw_decode(a, true, body, len, 0, out, &out->_arena, err); /* the broker's v0 fallback */
    return rc;
}

void kwire_apiversions_resp_dispose(kwire_apiversions_resp_t *m)
{
    kw_arena_free(&m->_arena);
    memset(m, 0, sizeof *m);
}

bool kwire_apiversions_find(const kwire_apiversions_resp_t *av, int16_t api_key, int16_t *min, int16_t *max)
{
    for (int32_t i = 0; i < av->n_api_keys; i++) {
        if (av->api_keys[i].api_key == api_key) {
            *min = av->api_keys[i].min_version;
            *max = av->api_keys[i].max_version;
            return true;
        }
    }
    return false;
}

int16_t kwire_negotiate(const kwire_apiversions_resp_t *av, int16_t api_key)
{
    const kw_api_t *a = kw_api_find(api_key);
    int16_t bmin, bmax;
    if (!a || !kwire_apiversions_find(av, api_key, &bmin, &bmax))
        return -1;
    return kwire_pick_version(a->vmin, a->vprefer, bmin, bmax);
}

/* ---- RecordBatch v2 ---- */

/* Header offsets (magic v2). */
enum {
    KW_B_BASE_OFFSET = 0,
    KW_B_LENGTH = 8,
    KW_B_LEADER_EPOCH = 12,
    KW_B_MAGIC = 16,
    KW_B_CRC = 17,
    KW_B_ATTRIBUTES = 21,
    KW_B_LAST_OFFSET_DELTA = 23,
    KW_B_BASE_TIMESTAMP = 27,
    KW_B_MAX_TIMESTAMP = 35,
    KW_B_PRODUCER_ID = 43,
    KW_B_PRODUCER_EPOCH = 51,
    KW_B_BASE_SEQUENCE = 53,
    KW_B_RECORD_COUNT = 57,
};

#define KW_LEGACY_MIN_SIZE 14 /* a magic-0 message: crc, magic, attributes, key and value lengths */
#define KW_V2_MIN_LENGTH (KWIRE_BATCH_HDR_LEN - KWIRE_LOG_OVERHEAD)

void kwire_batch_iter_init(kwire_batch_iter_t *it, const void *blob, size_t len)
{
    static const uint8_t empty[1];
    it->buf = blob ? blob : empty;
    it->len = blob ? len : 0;
    it->pos = 0;
    it->need = 0;
    it->bad = false;
}

static kwire_next_t kw_batch_bad(kwire_batch_iter_t *it, ferr_t *err, const char *what, long long v)
{
    it->bad = true;
    ferr_set(err, FERR_INVALID, "record batch at offset %zu of %zu: %s (%lld)", it->pos, it->len, what, v);
    return KWIRE_BAD;
}

/* Fills the fields a magic-0/1 message shares with a batch; the rest are -1. */
static void kw_batch_legacy(kwire_batch_t *b, const uint8_t *p)
{
    b->crc = kw_be32(p + 12);
    b->attributes = p[17];
    b->compression = p[17] & KWIRE_ATTR_COMPRESSION;
    b->timestamp_type = b->magic == 1 ? (p[17] & KWIRE_ATTR_LOG_APPEND_TIME) != 0 : -1;
    b->partition_leader_epoch = b->last_offset_delta = b->base_sequence = b->record_count = -1;
    b->base_timestamp = b->max_timestamp = b->producer_id = -1;
    b->producer_epoch = -1;
}

kwire_next_t kwire_batch_next(kwire_batch_iter_t *it, kwire_batch_t *b, ferr_t *err)
{
    memset(b, 0, sizeof *b);
    if (it->bad) {
        ferr_set(err, FERR_INVALID, "record batch iterator already failed");
        return KWIRE_BAD;
    }
    size_t left = it->len - it->pos;
    const uint8_t *p = it->buf + it->pos;
    it->need = 0;
    if (left == 0)
        return KWIRE_END;
    if (left < KWIRE_LOG_OVERHEAD)
        return KWIRE_PARTIAL;
    int32_t length = (int32_t)kw_be32(p + KW_B_LENGTH);
    if (length < KW_LEGACY_MIN_SIZE)
        return kw_batch_bad(it, err, "batch length below the minimum", length);
    size_t total = KWIRE_LOG_OVERHEAD + (size_t)length;
    if (left > KW_B_MAGIC && p[KW_B_MAGIC] > 2)
        return kw_batch_bad(it, err, "unknown magic", p[KW_B_MAGIC]);
    if (left > KW_B_MAGIC && p[KW_B_MAGIC] == 2 && length < KW_V2_MIN_LENGTH)
        return kw_batch_bad(it, err, "batch length below the v2 header", length);
    if (total > left) {
        it->need = total;
        return KWIRE_PARTIAL;
    }
    b->base_offset = (int64_t)kw_be64(p);
    b->batch_length = length;
    b->magic = (int8_t)p[KW_B_MAGIC];
    b->data = p;
    b->len = total;
    if (b->magic < 2) {
        kw_batch_legacy(b, p);
    } else {
        b->partition_leader_epoch = (int32_t)kw_be32(p + KW_B_LEADER_EPOCH);
        b->crc = kw_be32(p + KW_B_CRC);
        b->attributes = (int16_t)kw_be16(p + KW_B_ATTRIBUTES);
        b->compression = b->attributes & KWIRE_ATTR_COMPRESSION;
        b->timestamp_type = (b->attributes & KWIRE_ATTR_LOG_APPEND_TIME) != 0;
        b->is_transactional = (b->attributes & KWIRE_ATTR_TRANSACTIONAL) != 0;
        b->is_control = (b->attributes & KWIRE_ATTR_CONTROL) != 0;
        b->last_offset_delta = (int32_t)kw_be32(p + KW_B_LAST_OFFSET_DELTA);
        b->base_timestamp = (int64_t)kw_be64(p + KW_B_BASE_TIMESTAMP);
        b->max_timestamp = (int64_t)kw_be64(p + KW_B_MAX_TIMESTAMP);
        b->producer_id = (int64_t)kw_be64(p + KW_B_PRODUCER_ID);
        b->producer_epoch = (int16_t)kw_be16(p + KW_B_PRODUCER_EPOCH);
        b->base_sequence = (int32_t)kw_be32(p + KW_B_BASE_SEQUENCE);
        b->record_count = (int32_t)kw_be32(p + KW_B_RECORD_COUNT);
        if (b->record_count < 0)
            return kw_batch_bad(it, err, "negative record count", b->record_count);
    }
    it->pos += total;
    return KWIRE_ITEM;
}

uint32_t kwire_crc32c(uint32_t crc, const void *p, size_t n)
{
    /* crc32_iscsi() takes an int length and a non-const pointer that it only reads. */
    const unsigned char *q = p;
    unsigned int st = ~crc;
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        st = crc32_iscsi((unsigned char *)q, chunk, st);
        q += chunk;
        n -= (size_t)chunk;
    }
    return ~st;
}

bool kwire_batch_crc_ok(const kwire_batch_t *b)
{
    return b->magic == 2 && b->len >= KWIRE_BATCH_HDR_LEN &&
           kwire_crc32c(0, b->data + KW_B_ATTRIBUTES, b->len - KW_B_ATTRIBUTES) == b->crc;
}

bool kwire_batch_is_contiguous(const kwire_batch_t *b)
{
    return b->magic == 2 && b->record_count >= 1 && (int64_t)b->record_count == (int64_t)b->last_offset_delta + 1;
}

ferr_code_t kwire_batch_rewrite(void *dst, const void *src, size_t len, int64_t base_offset, int64_t producer_id,
                                int16_t producer_epoch, int32_t base_sequence, int32_t partition_leader_epoch,
                                ferr_t *err)
{
    kwire_batch_iter_t it;
    kwire_batch_t b;
    kwire_batch_iter_init(&it, src, len);
    kwire_next_t nx = kwire_batch_next(&it, &b, err);
    if (nx == KWIRE_BAD)
        return FERR_INVALID;
    if (nx != KWIRE_ITEM || b.len != len)
        return ferr_set(err, FERR_INVALID, "rewrite: %zu bytes are not exactly one whole batch", len);
    if (b.magic != 2)
        return ferr_set(err, FERR_INVALID, "rewrite: magic %d, only magic 2 batches can be rewritten", b.magic);
    if (b.is_control)
        return ferr_set(err, FERR_INVALID, "rewrite: a control batch (transaction marker) is not data");
    if (!kwire_batch_crc_ok(&b))
        return ferr_set(err, FERR_INVALID, "rewrite: CRC mismatch (stored %08x): the source batch is corrupt", b.crc);
    uint8_t *d = dst;
    if (d != (const uint8_t *)src)
        memcpy(d, src, len);
    kw_put64(d + KW_B_BASE_OFFSET, (uint64_t)base_offset);
    kw_put32(d + KW_B_LEADER_EPOCH, (uint32_t)partition_leader_epoch);
    kw_put16(d + KW_B_ATTRIBUTES, (uint16_t)(b.attributes & ~KWIRE_ATTR_TRANSACTIONAL));
    kw_put64(d + KW_B_PRODUCER_ID, (uint64_t)producer_id);
    kw_put16(d + KW_B_PRODUCER_EPOCH, (uint16_t)producer_epoch);
    kw_put32(d + KW_B_BASE_SEQUENCE, (uint32_t)base_sequence);
    kw_put32(d + KW_B_CRC, kwire_crc32c(0, d + KW_B_ATTRIBUTES, len - KW_B_ATTRIBUTES));
    return FERR_OK;
}

/* ---- records ---- */

/* A varint length (-1 = null if @p nullable) and that many bytes. */
static void kw_rd_varbytes(kwire_rd_t *r, const char *field, bool nullable, const uint8_t **p, int32_t *n)
{
    *n = kwire_rd_varint(r, field);
    *n = kw_rd_sized(r, field, *n, nullable, p);
}

static void kw_rd_header(kwire_rd_t *r, kwire_header_t *h)
{
    kw_rd_varbytes(r, "header key", false, &h->key, &h->key_len);
    kw_rd_varbytes(r, "header value", true, &h->value, &h->value_len);
}

ferr_code_t kwire_record_iter_init(kwire_record_iter_t *it, const kwire_batch_t *b, ferr_t *err)
{
    memset(it, 0, sizeof *it);
    if (b->magic != 2 || b->compression != 0 || b->len < KWIRE_BATCH_HDR_LEN) {
        it->bad = true;
        return ferr_set(err, FERR_UNSUPPORTED, "records: only uncompressed magic 2 batches are walked (magic %d, "
                        "compression %d)", b->magic, b->compression);
    }
    kwire_rd_init(&it->r, b->data + KWIRE_BATCH_HDR_LEN, b->len - KWIRE_BATCH_HDR_LEN);
    it->left = b->record_count;
    return FERR_OK;
}

static kwire_next_t kw_record_bad(kwire_record_iter_t *it, const kwire_rd_t *r, ferr_t *err)
{
    char ctx[48];
    snprintf(ctx, sizeof ctx, "record %d", it->index);
    kwire_rd_error(r, ctx, err);
    it->bad = true;
    return KWIRE_BAD;
}

/* Reads one record's fields from @p r (exactly the record's bytes). */
static void kw_rd_record(kwire_rd_t *r, kwire_record_t *rec)
{
    rec->attributes = kwire_rd_i8(r, "attributes");
    rec->timestamp_delta = kwire_rd_varlong(r, "timestamp delta");
    rec->offset_delta = kwire_rd_varint(r, "offset delta");
    kw_rd_varbytes(r, "key", true, &rec->key, &rec->key_len);
    kw_rd_varbytes(r, "value", true, &rec->value, &rec->value_len);
    rec->header_count = kwire_rd_varint(r, "header count");
    if (rec->header_count < 0)
        kwire_rd_fail(r, "header count", "negative count");
    size_t hstart = r->pos;
    for (int32_t i = 0; i < rec->header_count && kwire_rd_ok(r); i++) {
        kwire_header_t h;
        kw_rd_header(r, &h);
    }
    rec->headers = r->buf + hstart;
    rec->headers_len = r->pos - hstart;
    if (kwire_rd_ok(r) && kwire_rd_left(r))
        kwire_rd_fail(r, "length", "record length does not match its fields");
}

kwire_next_t kwire_record_next(kwire_record_iter_t *it, kwire_record_t *rec, ferr_t *err)
{
    memset(rec, 0, sizeof *rec);
    if (it->bad) {
        ferr_set(err, FERR_INVALID, "record iterator already failed");
        return KWIRE_BAD;
    }
    if (it->left == 0) {
        if (kwire_rd_left(&it->r) == 0)
            return KWIRE_END;
        kwire_rd_fail(&it->r, "records", "bytes left after recordCount records");
        return kw_record_bad(it, &it->r, err);
    }
    size_t start = it->r.pos;
    int32_t len = kwire_rd_varint(&it->r, "length");
    if (kwire_rd_ok(&it->r) && len < 0)
        kwire_rd_fail(&it->r, "length", "negative record length");
    const uint8_t *body = kwire_rd_ok(&it->r) ? kwire_rd_raw(&it->r, "length", (size_t)len) : NULL;
    if (!body)
        return kw_record_bad(it, &it->r, err);
    kwire_rd_t r;
    kwire_rd_init(&r, body, (size_t)len);
    kw_rd_record(&r, rec);
    if (!kwire_rd_ok(&r))
        return kw_record_bad(it, &r, err);
    rec->offset_in_batch = KWIRE_BATCH_HDR_LEN + start;
    rec->len = it->r.pos - start;
    it->left--;
    it->index++;
    return KWIRE_ITEM;
}

void kwire_header_iter_init(kwire_header_iter_t *it, const kwire_record_t *rec)
{
    kwire_rd_init(&it->r, rec->headers, rec->headers_len);
    it->left = rec->header_count;
}

kwire_next_t kwire_header_next(kwire_header_iter_t *it, kwire_header_t *h, ferr_t *err)
{
    memset(h, 0, sizeof *h);
    if (kwire_rd_ok(&it->r) && it->left <= 0)
        return KWIRE_END;
    kw_rd_header(&it->r, h);
    if (!kwire_rd_ok(&it->r)) {
        kwire_rd_error(&it->r, "header", err);
        return KWIRE_BAD;
    }
    it->left--;
    return KWIRE_ITEM;
}
