/* proto: ferry's msgpack wire formats. See proto.h for the format and the limits.
 *
 * Table-driven: each message is a proto_desc_t listing its fields (key, kind, offset), and one
 * generic encoder, decoder and disposer walk the table. Adding a field is one table line.
 *
 * Encoding uses msgpack-c's packer. Decoding does NOT use msgpack-c's unpacker: it allocates
 * the declared element count of every array up front (a 5-byte input can ask for ~100 GB), so
 * untrusted bytes go through the small bounds-checked reader below instead. The reader never
 * looks past `end`, refuses counts that the remaining bytes cannot hold before looping over
 * them, bounds nesting when skipping unknown values, and charges every string it allocates to
 * a per-decode budget, so memory stays proportional to what a message legitimately needs. */
#include "proto/proto.h"

#include <limits.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_MAX_DEPTH 32 /* nesting allowed inside values that are skipped */

/* ---- message tables ---- */

typedef enum proto_kind {
    PROTO_F_STR,     /* char * */
    PROTO_F_INT,     /* int */
    PROTO_F_I64,     /* int64_t */
    PROTO_F_ITEMS,   /* assign_list_t */
    PROTO_F_ENTRIES, /* proto_assignment_entry_t * at off, size_t count at off_n */
} proto_kind_t;

typedef struct proto_field {
    const char *key;
    proto_kind_t kind;
    size_t off, off_n;
} proto_field_t;

typedef struct proto_desc {
    int type; /* 0: a nested map without the header */
    const char *name;
    const proto_field_t *fields;
    size_t nfields;
    size_t size;
} proto_desc_t;

#define F(T, key, kind, field) {key, kind, offsetof(T, field), 0}

static const proto_field_t proto_member_fields[] = {
    F(proto_member_t, "worker_id", PROTO_F_STR, worker_id),
    F(proto_member_t, "rest_url", PROTO_F_STR, rest_url),
    F(proto_member_t, "version", PROTO_F_STR, version),
    F(proto_member_t, "protocol", PROTO_F_INT, protocol),
    F(proto_member_t, "started_ms", PROTO_F_I64, started_ms),
};

static const proto_field_t proto_leader_fields[] = {
    F(proto_leader_t, "member", PROTO_F_STR, member),
    F(proto_leader_t, "rest_url", PROTO_F_STR, rest_url),
    F(proto_leader_t, "generation", PROTO_F_I64, generation),
};

static const proto_field_t proto_entry_fields[] = {
    F(proto_assignment_entry_t, "member", PROTO_F_STR, member),
    F(proto_assignment_entry_t, "worker_id", PROTO_F_STR, worker_id),
    F(proto_assignment_entry_t, "rest_url", PROTO_F_STR, rest_url),
    F(proto_assignment_entry_t, "assigned", PROTO_F_ITEMS, assigned),
    F(proto_assignment_entry_t, "revoked", PROTO_F_ITEMS, revoked),
};

static const proto_field_t proto_assignment_fields[] = {
    F(proto_assignment_t, "generation", PROTO_F_I64, generation),
    F(proto_assignment_t, "leader", PROTO_F_STR, leader),
    F(proto_assignment_t, "leader_url", PROTO_F_STR, leader_url),
    F(proto_assignment_t, "config_offset", PROTO_F_I64, config_offset),
    F(proto_assignment_t, "delay_ms", PROTO_F_I64, delay_ms),
    {"entries", PROTO_F_ENTRIES, offsetof(proto_assignment_t, entries), offsetof(proto_assignment_t, n)},
};

static const proto_field_t proto_ack_fields[] = {
    F(proto_ack_t, "member", PROTO_F_STR, member),
    F(proto_ack_t, "generation", PROTO_F_I64, generation),
    F(proto_ack_t, "holding", PROTO_F_ITEMS, holding),
};

#undef F
#define PROTO_DESC(type, name, fields, T) {type, name, fields, sizeof fields / sizeof fields[0], sizeof(T)}

static const proto_desc_t proto_member_desc =
    PROTO_DESC(PROTO_MSG_MEMBER, "member", proto_member_fields, proto_member_t);
static const proto_desc_t proto_leader_desc =
    PROTO_DESC(PROTO_MSG_LEADER, "leader", proto_leader_fields, proto_leader_t);
static const proto_desc_t proto_assignment_desc =
    PROTO_DESC(PROTO_MSG_ASSIGNMENT, "assignment", proto_assignment_fields, proto_assignment_t);
static const proto_desc_t proto_entry_desc =
    PROTO_DESC(0, "entry", proto_entry_fields, proto_assignment_entry_t);
static const proto_desc_t proto_ack_desc = PROTO_DESC(PROTO_MSG_ACK, "ack", proto_ack_fields, proto_ack_t);

const char *proto_msg_name(int type)
{
    switch (type) {
    case PROTO_MSG_MEMBER: return "member";
    case PROTO_MSG_LEADER: return "leader";
    case PROTO_MSG_ASSIGNMENT: return "assignment";
    case PROTO_MSG_ACK: return "ack";
    default: return "unknown";
    }
}

#define PROTO_AT(m, off, T) ((T *)((char *)(m) + (off)))
#define PROTO_CAT(m, off, T) ((const T *)((const char *)(m) + (off)))

/* ---- dispose ---- */

static void proto_dispose_fields(const proto_desc_t *d, void *m)
{
    for (size_t i = 0; i < d->nfields; i++) {
        const proto_field_t *f = &d->fields[i];
        switch (f->kind) {
        case PROTO_F_STR: free(*PROTO_AT(m, f->off, char *)); break;
        case PROTO_F_ITEMS: assign_list_dispose(PROTO_AT(m, f->off, assign_list_t)); break;
        case PROTO_F_ENTRIES: {
            proto_assignment_entry_t *e = *PROTO_AT(m, f->off, proto_assignment_entry_t *);
            size_t n = *PROTO_AT(m, f->off_n, size_t);
            for (size_t k = 0; e && k < n; k++)
                proto_dispose_fields(&proto_entry_desc, &e[k]);
            free(e);
            break;
        }
        case PROTO_F_INT:
        case PROTO_F_I64: break;
        }
    }
    memset(m, 0, d->size);
}

void proto_member_dispose(proto_member_t *m) { proto_dispose_fields(&proto_member_desc, m); }
void proto_leader_dispose(proto_leader_t *m) { proto_dispose_fields(&proto_leader_desc, m); }
void proto_assignment_dispose(proto_assignment_t *m) { proto_dispose_fields(&proto_assignment_desc, m); }
void proto_ack_dispose(proto_ack_t *m) { proto_dispose_fields(&proto_ack_desc, m); }

/* ---- encode ---- */

typedef struct proto_wr {
    msgpack_packer pk;
    int failed;    /* msgpack-c reported an error (out of memory) */
    size_t budget; /* mirrors the decoder's, so we never write what it would refuse */
} proto_wr_t;

static void proto_wr_str(proto_wr_t *w, const char *s, size_t len)
{
    w->failed |= msgpack_pack_str_with_body(&w->pk, s, len) != 0;
}

/* Charges @p n string bytes to the budget; @returns nonzero if over. */
static int proto_wr_charge(proto_wr_t *w, size_t n)
{
    if (n > w->budget)
        return 1;
    w->budget -= n;
    return 0;
}

static ferr_code_t proto_enc_items(proto_wr_t *w, const assign_list_t *l)
{
    if (l->n > PROTO_MAX_LIST)
        return FERR_TOO_LARGE;
    size_t ngroups = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!l->items[i].connector || l->items[i].task < ASSIGN_CONNECTOR_TASK)
            return FERR_INVALID;
        size_t len = strlen(l->items[i].connector);
        if (len > PROTO_MAX_STR)
            return FERR_TOO_LARGE;
        if (proto_wr_charge(w, len + 1))
            return FERR_TOO_LARGE;
        ngroups += i == 0 || strcmp(l->items[i - 1].connector, l->items[i].connector) != 0;
    }
    w->failed |= msgpack_pack_array(&w->pk, ngroups) != 0;
    for (size_t s = 0, e; s < l->n; s = e) {
        for (e = s + 1; e < l->n && strcmp(l->items[s].connector, l->items[e].connector) == 0; e++)
            ;
        w->failed |= msgpack_pack_array(&w->pk, 2) != 0;
        proto_wr_str(w, l->items[s].connector, strlen(l->items[s].connector));
        w->failed |= msgpack_pack_array(&w->pk, e - s) != 0;
        for (size_t i = s; i < e; i++)
            w->failed |= msgpack_pack_int(&w->pk, l->items[i].task) != 0;
    }
    return FERR_OK;
}

static ferr_code_t proto_enc_fields(proto_wr_t *w, const proto_desc_t *d, const void *m)
{
    for (size_t i = 0; i < d->nfields; i++) {
        const proto_field_t *f = &d->fields[i];
        ferr_code_t rc = FERR_OK;
        proto_wr_str(w, f->key, strlen(f->key));
        switch (f->kind) {
        case PROTO_F_STR: {
            const char *s = *PROTO_CAT(m, f->off, char *);
            if (!s)
                return FERR_INVALID;
            size_t len = strlen(s);
            if (len > PROTO_MAX_STR || proto_wr_charge(w, len + 1))
                return FERR_TOO_LARGE;
            proto_wr_str(w, s, len);
            break;
        }
        case PROTO_F_INT: w->failed |= msgpack_pack_int(&w->pk, *PROTO_CAT(m, f->off, int)) != 0; break;
        case PROTO_F_I64: w->failed |= msgpack_pack_int64(&w->pk, *PROTO_CAT(m, f->off, int64_t)) != 0; break;
        case PROTO_F_ITEMS: rc = proto_enc_items(w, PROTO_CAT(m, f->off, assign_list_t)); break;
        case PROTO_F_ENTRIES: {
            const proto_assignment_entry_t *e = *PROTO_CAT(m, f->off, proto_assignment_entry_t *);
            size_t n = *PROTO_CAT(m, f->off_n, size_t);
            if (n > PROTO_MAX_LIST)
                return FERR_TOO_LARGE;
            if (n && !e)
                return FERR_INVALID;
            w->failed |= msgpack_pack_array(&w->pk, n) != 0;
            for (size_t k = 0; k < n && rc == FERR_OK; k++) {
                w->failed |= msgpack_pack_map(&w->pk, proto_entry_desc.nfields) != 0;
                rc = proto_enc_fields(w, &proto_entry_desc, &e[k]);
            }
            break;
        }
        }
        if (rc != FERR_OK)
            return rc;
    }
    return FERR_OK;
}

static ferr_code_t proto_encode(const proto_desc_t *d, const void *m, char **buf, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_wr_t w = {.budget = PROTO_MAX_DECODED};
    msgpack_packer_init(&w.pk, &sb, msgpack_sbuffer_write);
    w.failed |= msgpack_pack_map(&w.pk, 3 + d->nfields) != 0;
    proto_wr_str(&w, "magic", 5);
    proto_wr_str(&w, PROTO_MAGIC, strlen(PROTO_MAGIC));
    proto_wr_str(&w, "v", 1);
    w.failed |= msgpack_pack_int(&w.pk, PROTO_VERSION) != 0;
    proto_wr_str(&w, "type", 4);
    w.failed |= msgpack_pack_int(&w.pk, d->type) != 0;
    ferr_code_t rc = proto_enc_fields(&w, d, m);
    if (rc == FERR_OK && w.failed)
        rc = FERR_INTERNAL;
    if (rc != FERR_OK) {
        msgpack_sbuffer_destroy(&sb);
        *buf = NULL;
        *len = 0;
        return rc;
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return FERR_OK;
}

ferr_code_t proto_member_encode(const proto_member_t *m, char **buf, size_t *len)
{
    return proto_encode(&proto_member_desc, m, buf, len);
}

ferr_code_t proto_leader_encode(const proto_leader_t *m, char **buf, size_t *len)
{
    return proto_encode(&proto_leader_desc, m, buf, len);
}

ferr_code_t proto_assignment_encode(const proto_assignment_t *m, char **buf, size_t *len)
{
    return proto_encode(&proto_assignment_desc, m, buf, len);
}

ferr_code_t proto_ack_encode(const proto_ack_t *m, char **buf, size_t *len)
{
    return proto_encode(&proto_ack_desc, m, buf, len);
}

/* ---- the bounds-checked reader ---- */

typedef struct proto_rd {
    const uint8_t *start, *p, *end;
    size_t budget; /* string bytes this decode may still allocate */
    ferr_t err;
} proto_rd_t;

static size_t proto_rd_left(const proto_rd_t *r) { return (size_t)(r->end - r->p); }

static ferr_code_t proto_rd_fail(proto_rd_t *r, const char *what)
{
    return ferr_set(&r->err, FERR_INVALID, "%s at offset %zu", what, (size_t)(r->p - r->start));
}

static ferr_code_t proto_rd_truncated(proto_rd_t *r)
{
    return ferr_set(&r->err, FERR_INVALID, "truncated input at offset %zu of %zu", (size_t)(r->p - r->start),
                    (size_t)(r->end - r->start));
}

static const char *proto_type_name(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return "integer";
    if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)
        return "map";
    if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd)
        return "array";
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))
        return "string";
    switch (b) {
    case 0xc0: return "nil";
    case 0xc2:
    case 0xc3: return "boolean";
    case 0xc4:
    case 0xc5:
    case 0xc6: return "binary";
    case 0xca:
    case 0xcb: return "float";
    case 0xc1: return "invalid byte 0xc1";
    default: return "extension";
    }
}

static ferr_code_t proto_rd_expected(proto_rd_t *r, const char *want)
{
    char msg[64];
    snprintf(msg, sizeof msg, "expected %s, got %s", want, proto_type_name(*r->p));
    return proto_rd_fail(r, msg);
}

/* Reads an @p n byte big-endian unsigned integer. */
static ferr_code_t proto_rd_be(proto_rd_t *r, size_t n, uint64_t *v)
{
    if (proto_rd_left(r) < n)
        return proto_rd_truncated(r);
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | r->p[i];
    r->p += n;
    return FERR_OK;
}

/* Reads a container header (map if @p map, else array); checks the count against the limit
 * and against the bytes left (each element takes at least one byte, each map pair two). */
static ferr_code_t proto_rd_container(proto_rd_t *r, int map, uint32_t *n)
{
    if (proto_rd_left(r) < 1)
        return proto_rd_truncated(r);
    uint8_t b = *r->p;
    uint64_t v = 0;
    ferr_code_t rc = FERR_OK;
    if (map && b >= 0x80 && b <= 0x8f)
        v = b & 0x0f, r->p++;
    else if (!map && b >= 0x90 && b <= 0x9f)
        v = b & 0x0f, r->p++;
    else if (b == (map ? 0xde : 0xdc))
        r->p++, rc = proto_rd_be(r, 2, &v);
    else if (b == (map ? 0xdf : 0xdd))
        r->p++, rc = proto_rd_be(r, 4, &v);
    else
        return proto_rd_expected(r, map ? "map" : "array");
    if (rc != FERR_OK)
        return rc;
    if (v > PROTO_MAX_LIST)
        return proto_rd_fail(r, map ? "map has too many entries" : "array has too many entries");
    if (v * (map ? 2 : 1) > proto_rd_left(r))
        return proto_rd_truncated(r);
    *n = (uint32_t)v;
    return FERR_OK;
}

/* Reads a string header; *len bytes follow and are known to be in the input. */
static ferr_code_t proto_rd_str_hdr(proto_rd_t *r, size_t *len)
{
    if (proto_rd_left(r) < 1)
        return proto_rd_truncated(r);
    uint8_t b = *r->p;
    uint64_t v = 0;
    ferr_code_t rc = FERR_OK;
    if (b >= 0xa0 && b <= 0xbf)
        v = b & 0x1f, r->p++;
    else if (b >= 0xd9 && b <= 0xdb)
        r->p++, rc = proto_rd_be(r, (size_t)1 << (b - 0xd9), &v);
    else
        return proto_rd_expected(r, "string");
    if (rc != FERR_OK)
        return rc;
    if (v > proto_rd_left(r))
        return proto_rd_truncated(r);
    *len = v;
    return FERR_OK;
}

/* Reads a string without copying it: *s points into the input, not NUL-terminated. */
static ferr_code_t proto_rd_str(proto_rd_t *r, const char **s, size_t *len)
{
    ferr_code_t rc = proto_rd_str_hdr(r, len);
    if (rc != FERR_OK)
        return rc;
    if (*len > PROTO_MAX_STR)
        return proto_rd_fail(r, "string too long");
    if (memchr(r->p, 0, *len))
        return proto_rd_fail(r, "string contains a NUL byte");
    *s = (const char *)r->p;
    r->p += *len;
    return FERR_OK;
}

static ferr_code_t proto_rd_int(proto_rd_t *r, int64_t *out)
{
    if (proto_rd_left(r) < 1)
        return proto_rd_truncated(r);
    uint8_t b = *r->p;
    uint64_t v = 0;
    ferr_code_t rc;
    if (b <= 0x7f) {
        r->p++;
        *out = b;
        return FERR_OK;
    }
    if (b >= 0xe0) {
        r->p++;
        *out = (int8_t)b;
        return FERR_OK;
    }
    if (b >= 0xcc && b <= 0xcf) { /* uint 8/16/32/64 */
        r->p++;
        if ((rc = proto_rd_be(r, (size_t)1 << (b - 0xcc), &v)) != FERR_OK)
            return rc;
        if (v > INT64_MAX)
            return proto_rd_fail(r, "integer out of range");
        *out = (int64_t)v;
        return FERR_OK;
    }
    if (b >= 0xd0 && b <= 0xd3) { /* int 8/16/32/64, sign-extended */
        size_t n = (size_t)1 << (b - 0xd0);
        r->p++;
        if ((rc = proto_rd_be(r, n, &v)) != FERR_OK)
            return rc;
        if (n < 8 && (v >> (8 * n - 1)) & 1)
            v |= ~(uint64_t)0 << (8 * n);
        memcpy(out, &v, sizeof *out); /* two's complement, no signed overflow */
        return FERR_OK;
    }
    return proto_rd_expected(r, "integer");
}

static ferr_code_t proto_rd_int_range(proto_rd_t *r, int64_t lo, int64_t hi, int64_t *out)
{
    const uint8_t *at = r->p;
    ferr_code_t rc = proto_rd_int(r, out);
    if (rc == FERR_OK && (*out < lo || *out > hi)) {
        r->p = at;
        return proto_rd_fail(r, "integer out of range");
    }
    return rc;
}

/* Skips one value of any type (an unknown field's value). */
static ferr_code_t proto_rd_skip(proto_rd_t *r, int depth)
{
    if (depth > PROTO_MAX_DEPTH)
        return proto_rd_fail(r, "nesting too deep");
    if (proto_rd_left(r) < 1)
        return proto_rd_truncated(r);
    uint8_t b = *r->p;
    uint64_t v = 0;
    ferr_code_t rc;
    size_t skip = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        skip = 1;
    } else if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
        if ((rc = proto_rd_str_hdr(r, &skip)) == FERR_OK) /* unknown data: no content checks */
            r->p += skip;
        return rc;
    } else if ((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf)) {
        int map = (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
        uint32_t n = 0;
        if ((rc = proto_rd_container(r, map, &n)) != FERR_OK)
            return rc;
        for (uint64_t i = 0; i < (uint64_t)n * (map ? 2 : 1); i++)
            if ((rc = proto_rd_skip(r, depth + 1)) != FERR_OK)
                return rc;
        return FERR_OK;
    } else if (b >= 0xc4 && b <= 0xc9) { /* bin 8/16/32, ext 8/16/32 (+1 type byte) */
        int ext = b >= 0xc7;
        r->p++;
        if ((rc = proto_rd_be(r, (size_t)1 << ((b - 0xc4) % 3), &v)) != FERR_OK)
            return rc;
        if (v + ext > proto_rd_left(r))
            return proto_rd_truncated(r);
        r->p += v + ext;
        return FERR_OK;
    } else if (b == 0xca || b == 0xcb) {
        skip = b == 0xca ? 5 : 9;
    } else if (b >= 0xcc && b <= 0xd3) {
        skip = 1 + ((size_t)1 << ((b - 0xcc) % 4));
    } else if (b >= 0xd4 && b <= 0xd8) { /* fixext 1..16 */
        skip = 2 + ((size_t)1 << (b - 0xd4));
    } else {
        return proto_rd_fail(r, "invalid msgpack byte");
    }
    if (skip > proto_rd_left(r))
        return proto_rd_truncated(r);
    r->p += skip;
    return FERR_OK;
}

/* Copies a wire string into a new NUL-terminated allocation charged to the budget. */
static ferr_code_t proto_rd_dup(proto_rd_t *r, char **out)
{
    const char *s = NULL;
    size_t len = 0;
    ferr_code_t rc = proto_rd_str(r, &s, &len);
    if (rc != FERR_OK)
        return rc;
    if (len + 1 > r->budget)
        return proto_rd_fail(r, "message decodes to too much data");
    r->budget -= len + 1;
    char *c = malloc(len + 1);
    if (!c)
        return ferr_set(&r->err, FERR_INTERNAL, "out of memory");
    memcpy(c, s, len);
    c[len] = '\0';
    *out = c;
    return FERR_OK;
}

/* [[connector, [task, ...]], ...]; extra elements in a group are skipped. */
static ferr_code_t proto_rd_items(proto_rd_t *r, assign_list_t *l)
{
    uint32_t ng = 0, k = 0, nt = 0;
    ferr_code_t rc = proto_rd_container(r, 0, &ng);
    for (uint32_t g = 0; rc == FERR_OK && g < ng; g++) {
        if ((rc = proto_rd_container(r, 0, &k)) != FERR_OK)
            break;
        if (k < 2) {
            rc = proto_rd_fail(r, "item group is not [connector, tasks]");
            break;
        }
        char *name = NULL;
        if ((rc = proto_rd_dup(r, &name)) == FERR_OK)
            rc = proto_rd_container(r, 0, &nt);
        size_t cost = name ? strlen(name) + 1 : 0;
        for (uint32_t t = 0; rc == FERR_OK && t < nt; t++) {
            int64_t task;
            if ((rc = proto_rd_int_range(r, ASSIGN_CONNECTOR_TASK, INT_MAX, &task)) != FERR_OK)
                break;
            if (l->n >= PROTO_MAX_LIST)
                rc = proto_rd_fail(r, "item list too long");
            else if (t > 0 && cost > r->budget) /* the first copy was charged by proto_rd_dup */
                rc = proto_rd_fail(r, "message decodes to too much data");
            else {
                r->budget -= t > 0 ? cost : 0;
                assign_list_add(l, name, (int)task);
            }
        }
        free(name);
        for (uint32_t x = 2; rc == FERR_OK && x < k; x++)
            rc = proto_rd_skip(r, 1);
    }
    return rc;
}

static ferr_code_t proto_rd_fields(proto_rd_t *r, const proto_desc_t *d, uint32_t npairs, void *m);

static ferr_code_t proto_rd_entries(proto_rd_t *r, proto_assignment_entry_t **ep, size_t *np)
{
    uint32_t n = 0;
    ferr_code_t rc = proto_rd_container(r, 0, &n);
    size_t cap = 0;
    for (uint32_t k = 0; rc == FERR_OK && k < n; k++) {
        if (*np == cap) { /* grow as entries arrive: a declared count alone allocates nothing */
            cap = cap ? 2 * cap : 4;
            proto_assignment_entry_t *e = realloc(*ep, cap * sizeof *e);
            if (!e)
                return ferr_set(&r->err, FERR_INTERNAL, "out of memory");
            *ep = e;
        }
        proto_assignment_entry_t *e = &(*ep)[(*np)++];
        memset(e, 0, sizeof *e);
        uint32_t npairs = 0;
        if ((rc = proto_rd_container(r, 1, &npairs)) == FERR_OK)
            rc = proto_rd_fields(r, &proto_entry_desc, npairs, e);
        if (rc != FERR_OK) {
            char inner[sizeof r->err.msg];
            memcpy(inner, r->err.msg, sizeof inner);
            ferr_set(&r->err, rc, "[%u]: %s", k, inner);
        }
    }
    return rc;
}

static ferr_code_t proto_rd_field(proto_rd_t *r, const proto_field_t *f, void *m)
{
    int64_t v = 0;
    ferr_code_t rc;
    switch (f->kind) {
    case PROTO_F_STR: return proto_rd_dup(r, PROTO_AT(m, f->off, char *));
    case PROTO_F_INT:
        if ((rc = proto_rd_int_range(r, INT_MIN, INT_MAX, &v)) == FERR_OK)
            *PROTO_AT(m, f->off, int) = (int)v;
        return rc;
    case PROTO_F_I64: return proto_rd_int(r, PROTO_AT(m, f->off, int64_t));
    case PROTO_F_ITEMS: return proto_rd_items(r, PROTO_AT(m, f->off, assign_list_t));
    case PROTO_F_ENTRIES:
        return proto_rd_entries(r, PROTO_AT(m, f->off, proto_assignment_entry_t *), PROTO_AT(m, f->off_n, size_t));
    }
    return proto_rd_fail(r, "bad field table");
}

static int proto_key_is(const char *s, size_t len, const char *key)
{
    return strlen(key) == len && memcmp(s, key, len) == 0;
}

/* Reads @p npairs key/value pairs into @p m using @p d's table. */
static ferr_code_t proto_rd_fields(proto_rd_t *r, const proto_desc_t *d, uint32_t npairs, void *m)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < npairs; i++) {
        const char *key = NULL;
        size_t klen = 0;
        ferr_code_t rc = proto_rd_str(r, &key, &klen);
        if (rc != FERR_OK)
            return rc;
        size_t f = 0;
        while (f < d->nfields && !proto_key_is(key, klen, d->fields[f].key))
            f++;
        if (f == d->nfields) {
            if (d->type && (proto_key_is(key, klen, "magic") || proto_key_is(key, klen, "v") ||
                            proto_key_is(key, klen, "type")))
                return proto_rd_fail(r, "duplicate header key");
            if ((rc = proto_rd_skip(r, 1)) != FERR_OK) /* unknown: a newer writer's field */
                return rc;
            continue;
        }
        if (seen & (1u << f))
            return ferr_set(&r->err, FERR_INVALID, "%s: duplicate key", d->fields[f].key);
        seen |= 1u << f;
        if ((rc = proto_rd_field(r, &d->fields[f], m)) != FERR_OK) {
            char inner[sizeof r->err.msg];
            memcpy(inner, r->err.msg, sizeof inner);
            return ferr_set(&r->err, rc, "%s%s%s", d->fields[f].key, inner[0] == '[' ? "" : ": ", inner);
        }
    }
    for (size_t f = 0; f < d->nfields; f++)
        if (!(seen & (1u << f)))
            return ferr_set(&r->err, FERR_INVALID, "missing field \"%s\"", d->fields[f].key);
    return FERR_OK;
}

/* Reads the map header and the {magic, v, type} keys; *npairs is what is left of the map. */
static ferr_code_t proto_rd_header(proto_rd_t *r, uint32_t *npairs, int *type)
{
    static const char *const keys[3] = {"magic", "v", "type"};
    uint32_t n = 0;
    ferr_code_t rc = proto_rd_container(r, 1, &n);
    if (rc != FERR_OK)
        return rc;
    if (n < 3)
        return proto_rd_fail(r, "not a ferry message (fewer than 3 keys)");
    for (int i = 0; i < 3; i++) {
        const char *s = NULL;
        size_t len = 0;
        int64_t v = 0;
        if ((rc = proto_rd_str(r, &s, &len)) != FERR_OK)
            return rc;
        if (!proto_key_is(s, len, keys[i]))
            return ferr_set(&r->err, FERR_INVALID, "not a ferry message (key %d is not \"%s\")", i + 1, keys[i]);
        if (i == 0) {
            if ((rc = proto_rd_str(r, &s, &len)) != FERR_OK)
                return rc;
            if (!proto_key_is(s, len, PROTO_MAGIC))
                return proto_rd_fail(r, "bad magic");
            continue;
        }
        if ((rc = proto_rd_int_range(r, INT_MIN, INT_MAX, &v)) != FERR_OK)
            return rc;
        if (i == 1 && v != PROTO_VERSION)
            return ferr_set(&r->err, FERR_UNSUPPORTED, "unsupported version %lld (this build speaks %d)",
                            (long long)v, PROTO_VERSION);
        if (i == 2)
            *type = (int)v;
    }
    *npairs = n - 3;
    return FERR_OK;
}

static void proto_rd_init(proto_rd_t *r, const char *buf, size_t len)
{
    static const uint8_t empty[1];
    r->start = r->p = buf ? (const uint8_t *)buf : empty;
    r->end = r->start + (buf ? len : 0);
    r->budget = PROTO_MAX_DECODED;
    ferr_clear(&r->err);
}

static void proto_rd_report(const proto_rd_t *r, ferr_code_t rc, const char *what, ferr_t *err)
{
    if (err)
        ferr_set(err, rc, "%s message: %s", what, r->err.msg);
}

ferr_code_t proto_peek_type(const char *buf, size_t len, int *type, ferr_t *err)
{
    proto_rd_t r;
    uint32_t npairs = 0;
    proto_rd_init(&r, buf, len);
    ferr_code_t rc = proto_rd_header(&r, &npairs, type);
    if (rc != FERR_OK)
        proto_rd_report(&r, rc, "ferry", err);
    return rc;
}

static ferr_code_t proto_decode(const proto_desc_t *d, const char *buf, size_t len, void *out, ferr_t *err)
{
    proto_rd_t r;
    uint32_t npairs = 0;
    int type = 0;
    memset(out, 0, d->size);
    proto_rd_init(&r, buf, len);
    ferr_code_t rc = proto_rd_header(&r, &npairs, &type);
    if (rc == FERR_OK && type != d->type)
        rc = ferr_set(&r.err, FERR_INVALID, "wrong type %d (%s)", type, proto_msg_name(type));
    if (rc == FERR_OK)
        rc = proto_rd_fields(&r, d, npairs, out);
    if (rc == FERR_OK && r.p != r.end)
        rc = proto_rd_fail(&r, "trailing bytes");
    if (rc != FERR_OK) {
        proto_dispose_fields(d, out);
        proto_rd_report(&r, rc, d->name, err);
    }
    return rc;
}

ferr_code_t proto_member_decode(const char *buf, size_t len, proto_member_t *out, ferr_t *err)
{
    return proto_decode(&proto_member_desc, buf, len, out, err);
}

ferr_code_t proto_leader_decode(const char *buf, size_t len, proto_leader_t *out, ferr_t *err)
{
    return proto_decode(&proto_leader_desc, buf, len, out, err);
}

ferr_code_t proto_assignment_decode(const char *buf, size_t len, proto_assignment_t *out, ferr_t *err)
{
    return proto_decode(&proto_assignment_desc, buf, len, out, err);
}

ferr_code_t proto_ack_decode(const char *buf, size_t len, proto_ack_t *out, ferr_t *err)
{
    return proto_decode(&proto_ack_desc, buf, len, out, err);
}
