/* Unit tests for proto: round trips for every message, and decoders fed hostile bytes (bad
 * headers, wrong types, every truncation, huge counts, random and mutated buffers). Run under
 * ASan+UBSan: "no crash, no leak" is most of what these assert. */
#include "proto/proto.h"

#include <CUnit/Basic.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* ---- fixtures ---- */

static proto_member_t member_fixture(void)
{
    return (proto_member_t){"10.0.0.5:8083", "http://10.0.0.5:8083/", "0.1.0", 1, 1729800000123LL};
}

static proto_leader_t leader_fixture(void)
{
    return (proto_leader_t){"member-0000000007", "http://10.0.0.5:8083/", 42};
}

/* @p nitems items spread over connectors, in an order with repeated connector runs. */
static void items_fixture(assign_list_t *l, size_t nitems)
{
    char name[32];
    for (size_t i = 0; i < nitems; i++) {
        snprintf(name, sizeof name, "connector-%zu", (i / 7) % 50);
        assign_list_add(l, name, (int)(i % 7) - 1);
    }
}

static void assignment_fixture(proto_assignment_t *a, size_t nentries, size_t nitems)
{
    memset(a, 0, sizeof *a);
    a->generation = 9;
    a->leader = strdup("member-1");
    a->leader_url = strdup("http://leader:8083");
    a->config_offset = 123456789012LL;
    a->delay_ms = 0;
    a->n = nentries;
    a->entries = calloc(nentries ? nentries : 1, sizeof *a->entries);
    for (size_t i = 0; i < nentries; i++) {
        char buf[64];
        proto_assignment_entry_t *e = &a->entries[i];
        snprintf(buf, sizeof buf, "member-%zu", i);
        e->member = strdup(buf);
        snprintf(buf, sizeof buf, "host%zu:8083", i);
        e->worker_id = strdup(buf);
        snprintf(buf, sizeof buf, "http://host%zu:8083", i);
        e->rest_url = strdup(buf);
        items_fixture(&e->assigned, i == 0 ? nitems : i);
        if (i % 2)
            assign_list_add(&e->revoked, "gone", 3);
    }
}

/* ---- hand-built messages ---- */

typedef struct mb {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mb_t;

static void mb_str(mb_t *m, const char *s) { msgpack_pack_str_with_body(&m->pk, s, strlen(s)); }

/* Starts a map of @p nkeys (including the 3 header keys). */
static void mb_begin(mb_t *m, size_t nkeys, const char *magic, int v, int type)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m->pk, nkeys);
    mb_str(m, "magic");
    mb_str(m, magic);
    mb_str(m, "v");
    msgpack_pack_int(&m->pk, v);
    mb_str(m, "type");
    msgpack_pack_int(&m->pk, type);
}

static void mb_raw(mb_t *m, const void *bytes, size_t n) { msgpack_sbuffer_write(&m->sb, bytes, n); }

static void mb_end(mb_t *m) { msgpack_sbuffer_destroy(&m->sb); }

/* A leader message with the member field's value written by @p value. */
static ferr_code_t leader_with(void (*value)(mb_t *), ferr_t *err)
{
    mb_t m;
    mb_begin(&m, 6, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "member");
    value(&m);
    mb_str(&m, "rest_url");
    mb_str(&m, "http://x");
    mb_str(&m, "generation");
    msgpack_pack_int64(&m.pk, 3);
    proto_leader_t l;
    ferr_code_t rc = proto_leader_decode(m.sb.data, m.sb.size, &l, err);
    if (rc == FERR_OK)
        proto_leader_dispose(&l);
    mb_end(&m);
    return rc;
}

/* An ack message whose "holding" value is written by @p value. */
static ferr_code_t ack_with(void (*value)(mb_t *), ferr_t *err)
{
    mb_t m;
    mb_begin(&m, 6, PROTO_MAGIC, 1, PROTO_MSG_ACK);
    mb_str(&m, "member");
    mb_str(&m, "m1");
    mb_str(&m, "generation");
    msgpack_pack_int64(&m.pk, 3);
    mb_str(&m, "holding");
    value(&m);
    proto_ack_t a;
    ferr_code_t rc = proto_ack_decode(m.sb.data, m.sb.size, &a, err);
    if (rc == FERR_OK)
        proto_ack_dispose(&a);
    mb_end(&m);
    return rc;
}

/* Decodes @p buf with every decoder; none may crash or leak. @returns how many accepted it. */
static int decode_all(const char *buf, size_t len)
{
    int ok = 0, type;
    proto_member_t m;
    proto_leader_t l;
    proto_assignment_t a;
    proto_ack_t k;
    ferr_t err;
    if (proto_member_decode(buf, len, &m, &err) == FERR_OK)
        ok++, proto_member_dispose(&m);
    else
        CU_ASSERT(m.worker_id == NULL && err.msg[0]);
    if (proto_leader_decode(buf, len, &l, NULL) == FERR_OK)
        ok++, proto_leader_dispose(&l);
    if (proto_assignment_decode(buf, len, &a, &err) == FERR_OK)
        ok++, proto_assignment_dispose(&a);
    else
        CU_ASSERT(a.entries == NULL && a.n == 0);
    if (proto_ack_decode(buf, len, &k, &err) == FERR_OK)
        ok++, proto_ack_dispose(&k);
    else
        CU_ASSERT(k.holding.items == NULL);
    proto_peek_type(buf, len, &type, NULL);
    return ok;
}

/* ---- round trips ---- */

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(proto_msg_name(PROTO_MSG_MEMBER), "member");
    CU_ASSERT_STRING_EQUAL(proto_msg_name(PROTO_MSG_LEADER), "leader");
    CU_ASSERT_STRING_EQUAL(proto_msg_name(PROTO_MSG_ASSIGNMENT), "assignment");
    CU_ASSERT_STRING_EQUAL(proto_msg_name(PROTO_MSG_ACK), "ack");
    CU_ASSERT_STRING_EQUAL(proto_msg_name(0), "unknown");
    CU_ASSERT_STRING_EQUAL(proto_msg_name(99), "unknown");
}

static void test_member_roundtrip(void)
{
    proto_member_t in = member_fixture(), out;
    char *buf;
    size_t len;
    ferr_t err;
    int type = 0;
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL(proto_peek_type(buf, len, &type, &err), FERR_OK);
    CU_ASSERT_EQUAL(type, PROTO_MSG_MEMBER);
    CU_ASSERT_EQUAL_FATAL(proto_member_decode(buf, len, &out, &err), FERR_OK);
    CU_ASSERT_STRING_EQUAL(out.worker_id, in.worker_id);
    CU_ASSERT_STRING_EQUAL(out.rest_url, in.rest_url);
    CU_ASSERT_STRING_EQUAL(out.version, in.version);
    CU_ASSERT_EQUAL(out.protocol, 1);
    CU_ASSERT_EQUAL(out.started_ms, 1729800000123LL);
    proto_member_dispose(&out);
    CU_ASSERT_PTR_NULL(out.worker_id);
    proto_member_dispose(&out); /* a zeroed struct is fine */
    free(buf);

    proto_member_t edge = {"", "", "", -7, INT64_MIN}; /* empty strings, negative numbers */
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&edge, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_member_decode(buf, len, &out, &err), FERR_OK);
    CU_ASSERT_STRING_EQUAL(out.worker_id, "");
    CU_ASSERT_EQUAL(out.protocol, -7);
    CU_ASSERT_EQUAL(out.started_ms, INT64_MIN);
    proto_member_dispose(&out);
    free(buf);
}

static void test_leader_roundtrip(void)
{
    proto_leader_t in = leader_fixture(), out;
    char *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(proto_leader_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_leader_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT_STRING_EQUAL(out.member, in.member);
    CU_ASSERT_STRING_EQUAL(out.rest_url, in.rest_url);
    CU_ASSERT_EQUAL(out.generation, 42);
    proto_leader_dispose(&out);
    free(buf);

    in.generation = INT64_MAX;
    CU_ASSERT_EQUAL_FATAL(proto_leader_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_leader_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT_EQUAL(out.generation, INT64_MAX);
    proto_leader_dispose(&out);
    free(buf);
}

static void check_assignment_roundtrip(size_t nentries, size_t nitems)
{
    proto_assignment_t in, out;
    assignment_fixture(&in, nentries, nitems);
    char *buf;
    size_t len;
    ferr_t err;
    CU_ASSERT_EQUAL_FATAL(proto_assignment_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_assignment_decode(buf, len, &out, &err), FERR_OK);
    CU_ASSERT_EQUAL(out.generation, in.generation);
    CU_ASSERT_STRING_EQUAL(out.leader, in.leader);
    CU_ASSERT_STRING_EQUAL(out.leader_url, in.leader_url);
    CU_ASSERT_EQUAL(out.config_offset, in.config_offset);
    CU_ASSERT_EQUAL(out.delay_ms, in.delay_ms);
    CU_ASSERT_EQUAL_FATAL(out.n, in.n);
    for (size_t i = 0; i < in.n; i++) {
        CU_ASSERT_STRING_EQUAL(out.entries[i].member, in.entries[i].member);
        CU_ASSERT_STRING_EQUAL(out.entries[i].worker_id, in.entries[i].worker_id);
        CU_ASSERT_STRING_EQUAL(out.entries[i].rest_url, in.entries[i].rest_url);
        CU_ASSERT(assign_list_equal(&out.entries[i].assigned, &in.entries[i].assigned));
        CU_ASSERT(assign_list_equal(&out.entries[i].revoked, &in.entries[i].revoked));
    }
    proto_assignment_dispose(&out);
    proto_assignment_dispose(&in);
    free(buf);
}

static void test_assignment_roundtrip(void)
{
    check_assignment_roundtrip(0, 0);    /* no entries */
    check_assignment_roundtrip(1, 0);    /* an entry with empty lists */
    check_assignment_roundtrip(3, 5);
    check_assignment_roundtrip(4, 1000); /* 1000 items on one member */

    proto_assignment_t in;
    assignment_fixture(&in, 2, 10);
    in.delay_ms = 300000;
    in.generation = -1;
    char *buf;
    size_t len;
    proto_assignment_t out;
    CU_ASSERT_EQUAL_FATAL(proto_assignment_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_assignment_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT_EQUAL(out.delay_ms, 300000);
    CU_ASSERT_EQUAL(out.generation, -1);
    proto_assignment_dispose(&out);
    proto_assignment_dispose(&in);
    free(buf);
}

static void test_ack_roundtrip(void)
{
    proto_ack_t in = {"member-3", 17, {0}}, out;
    char *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(proto_ack_encode(&in, &buf, &len), FERR_OK); /* empty holding */
    CU_ASSERT_EQUAL_FATAL(proto_ack_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT_EQUAL(out.holding.n, 0);
    CU_ASSERT_EQUAL(out.generation, 17);
    proto_ack_dispose(&out);
    free(buf);

    assign_list_add(&in.holding, "a", -1);
    assign_list_add(&in.holding, "a", 2147483647);
    assign_list_add(&in.holding, "b", 0);
    assign_list_add(&in.holding, "a", 1); /* a second run of "a" stays a separate group */
    CU_ASSERT_EQUAL_FATAL(proto_ack_encode(&in, &buf, &len), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_ack_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT(assign_list_equal(&in.holding, &out.holding));
    CU_ASSERT_STRING_EQUAL(out.member, "member-3");
    proto_ack_dispose(&out);
    assign_list_dispose(&in.holding);
    free(buf);
}

static void test_encode_rejects(void)
{
    char *buf = (char *)1;
    size_t len;
    proto_member_t m = member_fixture();
    m.rest_url = NULL;
    CU_ASSERT_EQUAL(proto_member_encode(&m, &buf, &len), FERR_INVALID);
    CU_ASSERT_PTR_NULL(buf);
    proto_ack_t a = {"m", 1, {0}};
    assign_list_add(&a.holding, "c", -2);
    CU_ASSERT_EQUAL(proto_ack_encode(&a, &buf, &len), FERR_INVALID);
    assign_list_dispose(&a.holding);
    char *big = malloc(PROTO_MAX_STR + 2);
    memset(big, 'x', PROTO_MAX_STR + 1);
    big[PROTO_MAX_STR + 1] = '\0';
    m = member_fixture();
    m.version = big;
    CU_ASSERT_EQUAL(proto_member_encode(&m, &buf, &len), FERR_TOO_LARGE);
    big[PROTO_MAX_STR] = '\0'; /* exactly at the limit is fine */
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&m, &buf, &len), FERR_OK);
    proto_member_t out;
    CU_ASSERT_EQUAL(proto_member_decode(buf, len, &out, NULL), FERR_OK);
    CU_ASSERT_EQUAL(strlen(out.version), PROTO_MAX_STR);
    proto_member_dispose(&out);
    free(buf);
    free(big);
}

/* ---- rejections ---- */

static void test_reject_header(void)
{
    proto_member_t in = member_fixture(), out;
    char *buf;
    size_t len;
    ferr_t err;
    int type;
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&in, &buf, &len), FERR_OK);

    char *bad = malloc(len);
    memcpy(bad, buf, len);
    char *magic = memmem(bad, len, "FRY1", 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(magic);
    magic[3] = '2';
    CU_ASSERT_EQUAL(proto_member_decode(bad, len, &out, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad magic"));
    CU_ASSERT_PTR_NULL(out.worker_id);
    CU_ASSERT_EQUAL(proto_peek_type(bad, len, &type, &err), FERR_INVALID);
    free(bad);

    /* decoded as the wrong message type */
    proto_ack_t ack;
    CU_ASSERT_EQUAL(proto_ack_decode(buf, len, &ack, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "wrong type"));

    /* trailing bytes */
    bad = malloc(len + 1);
    memcpy(bad, buf, len);
    bad[len] = 0;
    CU_ASSERT_EQUAL(proto_member_decode(bad, len + 1, &out, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "trailing"));
    free(bad);
    free(buf);

    mb_t m; /* version 2: unsupported, whatever follows */
    mb_begin(&m, 3, PROTO_MAGIC, 2, PROTO_MSG_MEMBER);
    CU_ASSERT_EQUAL(proto_member_decode(m.sb.data, m.sb.size, &out, &err), FERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "version 2"));
    CU_ASSERT_EQUAL(proto_peek_type(m.sb.data, m.sb.size, &type, NULL), FERR_UNSUPPORTED);
    mb_end(&m);

    mb_begin(&m, 3, PROTO_MAGIC, 0, PROTO_MSG_MEMBER); /* version 0 */
    CU_ASSERT_EQUAL(proto_member_decode(m.sb.data, m.sb.size, &out, &err), FERR_UNSUPPORTED);
    mb_end(&m);

    mb_begin(&m, 3, PROTO_MAGIC, 1, 77); /* an unknown type peeks fine but decodes as nothing */
    CU_ASSERT_EQUAL(proto_peek_type(m.sb.data, m.sb.size, &type, NULL), FERR_OK);
    CU_ASSERT_EQUAL(type, 77);
    CU_ASSERT_EQUAL(decode_all(m.sb.data, m.sb.size), 0);
    mb_end(&m);

    /* header keys out of order */
    msgpack_sbuffer_init(&m.sb);
    msgpack_packer_init(&m.pk, &m.sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m.pk, 3);
    mb_str(&m, "v");
    msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "magic");
    mb_str(&m, PROTO_MAGIC);
    mb_str(&m, "type");
    msgpack_pack_int(&m.pk, 1);
    CU_ASSERT_EQUAL(proto_peek_type(m.sb.data, m.sb.size, &type, &err), FERR_INVALID);
    mb_end(&m);

    /* not a map at all, empty input, NULL input */
    CU_ASSERT_EQUAL(proto_peek_type("\x93\x01\x02\x03", 4, &type, NULL), FERR_INVALID);
    CU_ASSERT_EQUAL(proto_member_decode("", 0, &out, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(proto_member_decode(NULL, 0, &out, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(proto_member_decode("\x80", 1, &out, &err), FERR_INVALID); /* {} */
}

static void v_int(mb_t *m) { msgpack_pack_int(&m->pk, 5); }
static void v_nil(mb_t *m) { msgpack_pack_nil(&m->pk); }
static void v_bin(mb_t *m) { msgpack_pack_bin_with_body(&m->pk, "abc", 3); }
static void v_nul(mb_t *m) { msgpack_pack_str_with_body(&m->pk, "a\0b", 3); }
static void v_long(mb_t *m)
{
    static char s[PROTO_MAX_STR + 1];
    memset(s, 'y', sizeof s);
    msgpack_pack_str_with_body(&m->pk, s, sizeof s);
}
static void v_str32_huge(mb_t *m) { mb_raw(m, "\xdb\xff\xff\xff\xff", 5); }
static void v_str32_short(mb_t *m) { mb_raw(m, "\xdb\x00\x00\x00\x10xy", 7); }

static void h_map(mb_t *m) { msgpack_pack_map(&m->pk, 0); }
static void h_str(mb_t *m) { mb_str(m, "a"); }
static void h_array32_huge(mb_t *m) { mb_raw(m, "\xdd\xff\xff\xff\xff", 5); }
static void h_array32_over_cap(mb_t *m) { mb_raw(m, "\xdd\x00\x0f\x42\x41", 5); } /* 1000001 */
static void h_array16_lies(mb_t *m) { mb_raw(m, "\xdc\xff\xff\x90", 4); }
static void h_group_short(mb_t *m) { mb_raw(m, "\x91\x91\xa1" "a", 4); } /* [["a"]] */
static void h_task_str(mb_t *m) { mb_raw(m, "\x91\x92\xa1" "a\x91\xa1" "0", 7); }
static void h_task_neg2(mb_t *m) { mb_raw(m, "\x91\x92\xa1" "a\x91\xfe", 6); }
static void h_task_big(mb_t *m) { mb_raw(m, "\x91\x92\xa1" "a\x91\xce\x80\x00\x00\x00", 10); }
static void h_task_u64(mb_t *m) { mb_raw(m, "\x91\x92\xa1" "a\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 14); }
static void h_tasks_huge(mb_t *m) { mb_raw(m, "\x91\x92\xa1" "a\xdd\xff\xff\xff\xff", 9); }
static void h_ok_extra(mb_t *m) { mb_raw(m, "\x91\x93\xa1" "a\x92\xff\x07\xc3", 8); } /* extra element skipped */

static void test_reject_field_types(void)
{
    ferr_t err;
    CU_ASSERT_EQUAL(leader_with(v_int, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "member: expected string, got integer"));
    CU_ASSERT_EQUAL(leader_with(v_nil, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(leader_with(v_bin, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(leader_with(v_nul, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL"));
    CU_ASSERT_EQUAL(leader_with(v_long, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "too long"));
    CU_ASSERT_EQUAL(leader_with(v_str32_huge, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(leader_with(v_str32_short, &err), FERR_INVALID); /* eats the next keys */

    CU_ASSERT_EQUAL(ack_with(h_map, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_str, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_array32_huge, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_array32_over_cap, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "too many"));
    CU_ASSERT_EQUAL(ack_with(h_array16_lies, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_group_short, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_task_str, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_task_neg2, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "holding: integer out of range"));
    CU_ASSERT_EQUAL(ack_with(h_task_big, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_task_u64, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_tasks_huge, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ack_with(h_ok_extra, &err), FERR_OK);

    /* an int field out of int range, a generation that is a string */
    mb_t m;
    proto_member_t mem;
    mb_begin(&m, 8, PROTO_MAGIC, 1, PROTO_MSG_MEMBER);
    mb_str(&m, "worker_id"), mb_str(&m, "w");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "version"), mb_str(&m, "v");
    mb_str(&m, "protocol"), msgpack_pack_int64(&m.pk, 1LL << 40);
    mb_str(&m, "started_ms"), msgpack_pack_int64(&m.pk, 0);
    CU_ASSERT_EQUAL(proto_member_decode(m.sb.data, m.sb.size, &mem, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "protocol"));
    CU_ASSERT_PTR_NULL(mem.worker_id); /* partial results were freed */
    mb_end(&m);

    proto_leader_t l;
    mb_begin(&m, 6, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "generation"), mb_str(&m, "12");
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    mb_end(&m);
}

static void test_reject_structure(void)
{
    ferr_t err;
    mb_t m;
    proto_leader_t l;

    /* missing field */
    mb_begin(&m, 5, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing field \"generation\""));
    mb_end(&m);

    /* duplicate field, and a repeated header key */
    mb_begin(&m, 7, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "member"), mb_str(&m, "n");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate"));
    mb_end(&m);
    mb_begin(&m, 7, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "type"), msgpack_pack_int(&m.pk, PROTO_MSG_ACK);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    mb_end(&m);

    /* non-string key */
    mb_begin(&m, 7, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    msgpack_pack_int(&m.pk, 1), mb_str(&m, "x");
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    mb_end(&m);

    /* a huge declared top-level map and a huge entries array */
    CU_ASSERT_EQUAL(decode_all("\xdf\xff\xff\xff\xff\xa5magic", 11), 0);
    mb_begin(&m, 9, PROTO_MAGIC, 1, PROTO_MSG_ASSIGNMENT);
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "leader"), mb_str(&m, "l");
    mb_str(&m, "leader_url"), mb_str(&m, "u");
    mb_str(&m, "config_offset"), msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "delay_ms"), msgpack_pack_int(&m.pk, 0);
    mb_str(&m, "entries"), mb_raw(&m, "\xdd\x7f\xff\xff\xff\x80", 6);
    proto_assignment_t a;
    CU_ASSERT_EQUAL(proto_assignment_decode(m.sb.data, m.sb.size, &a, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(a.n, 0);
    mb_end(&m);

    /* an entry that is not a map, and one missing its lists: the path is in the message */
    mb_begin(&m, 9, PROTO_MAGIC, 1, PROTO_MSG_ASSIGNMENT);
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "leader"), mb_str(&m, "l");
    mb_str(&m, "leader_url"), mb_str(&m, "u");
    mb_str(&m, "config_offset"), msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "delay_ms"), msgpack_pack_int(&m.pk, 0);
    mb_str(&m, "entries"), msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 5);
    mb_str(&m, "member"), mb_str(&m, "m0");
    mb_str(&m, "worker_id"), mb_str(&m, "w0");
    mb_str(&m, "rest_url"), mb_str(&m, "u0");
    mb_str(&m, "assigned"), msgpack_pack_array(&m.pk, 0);
    mb_str(&m, "revoked"), msgpack_pack_array(&m.pk, 0);
    msgpack_pack_map(&m.pk, 1);
    mb_str(&m, "member"), mb_str(&m, "m1");
    CU_ASSERT_EQUAL(proto_assignment_decode(m.sb.data, m.sb.size, &a, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "entries[1]: missing field \"worker_id\""));
    CU_ASSERT_PTR_NULL(a.entries);
    mb_end(&m);

    /* deep nesting inside an unknown field is bounded, not a stack overflow */
    mb_begin(&m, 7, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "future");
    for (int i = 0; i < 100000; i++)
        msgpack_pack_array(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nesting"));
    mb_end(&m);

    /* 0xc1 is never valid */
    mb_begin(&m, 4, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "future"), mb_raw(&m, "\xc1", 1);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_INVALID);
    mb_end(&m);
}

/* Unknown keys of every msgpack type are skipped: a newer writer may add fields. */
static void test_forward_compat(void)
{
    mb_t m;
    proto_leader_t l;
    ferr_t err;
    mb_begin(&m, 16, PROTO_MAGIC, 1, PROTO_MSG_LEADER);
    mb_str(&m, "f_nil"), msgpack_pack_nil(&m.pk);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "f_map"), msgpack_pack_map(&m.pk, 1), mb_str(&m, "k"), msgpack_pack_array(&m.pk, 2),
        msgpack_pack_true(&m.pk), msgpack_pack_double(&m.pk, 1.5);
    mb_str(&m, "f_bin"), msgpack_pack_bin_with_body(&m.pk, "\0\1\2", 3);
    mb_str(&m, "f_ext"), msgpack_pack_ext_with_body(&m.pk, "abcdefgh", 8, 5); /* fixext 8 */
    mb_str(&m, "f_ext3"), msgpack_pack_ext_with_body(&m.pk, "abc", 3, 5);     /* ext 8 */
    mb_str(&m, "f_float"), msgpack_pack_float(&m.pk, 2.5f);
    mb_str(&m, "f_int"), msgpack_pack_int64(&m.pk, -5000000000LL);
    mb_str(&m, "f_str_nul"), msgpack_pack_str_with_body(&m.pk, "a\0b", 3); /* not ours to check */
    mb_str(&m, "rest_url"), mb_str(&m, "u");
    mb_str(&m, "f_u64"), msgpack_pack_uint64(&m.pk, UINT64_MAX);
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 5);
    mb_str(&m, "f_false"), msgpack_pack_false(&m.pk);
    CU_ASSERT_EQUAL(proto_leader_decode(m.sb.data, m.sb.size, &l, &err), FERR_OK);
    CU_ASSERT_STRING_EQUAL(l.member, "m");
    CU_ASSERT_EQUAL(l.generation, 5);
    proto_leader_dispose(&l);
    mb_end(&m);
}

/* A message that would allocate more than PROTO_MAX_DECODED: one long name, many tasks. */
static void test_reject_amplification(void)
{
    static char name[PROTO_MAX_STR];
    memset(name, 'n', sizeof name);
    mb_t m;
    ferr_t err;
    mb_begin(&m, 6, PROTO_MAGIC, 1, PROTO_MSG_ACK);
    mb_str(&m, "member"), mb_str(&m, "m");
    mb_str(&m, "generation"), msgpack_pack_int(&m.pk, 1);
    mb_str(&m, "holding"), msgpack_pack_array(&m.pk, 1), msgpack_pack_array(&m.pk, 2);
    msgpack_pack_str_with_body(&m.pk, name, sizeof name);
    msgpack_pack_array(&m.pk, 100000); /* 100000 x 64 KiB = 6.5 GB if copied naively */
    for (int i = 0; i < 100000; i++)
        msgpack_pack_int(&m.pk, 0);
    proto_ack_t a;
    CU_ASSERT_EQUAL(proto_ack_decode(m.sb.data, m.sb.size, &a, &err), FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "too much data"));
    CU_ASSERT_PTR_NULL(a.holding.items);
    mb_end(&m);
}

/* Every proper prefix of a valid encoding is rejected, without crashing or leaking. */
static void check_prefixes(const char *buf, size_t len)
{
    size_t accepted = 0;
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1); /* exact size, so ASan sees any overread */
        memcpy(copy, buf, n);
        accepted += decode_all(copy, n);
        free(copy);
    }
    CU_ASSERT_EQUAL(accepted, 0);
    CU_ASSERT_EQUAL(decode_all(buf, len), 1);
}

static void test_truncations(void)
{
    char *buf;
    size_t len;
    proto_member_t mem = member_fixture();
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&mem, &buf, &len), FERR_OK);
    check_prefixes(buf, len);
    free(buf);
    proto_leader_t l = leader_fixture();
    CU_ASSERT_EQUAL_FATAL(proto_leader_encode(&l, &buf, &len), FERR_OK);
    check_prefixes(buf, len);
    free(buf);
    proto_assignment_t a;
    assignment_fixture(&a, 3, 40);
    CU_ASSERT_EQUAL_FATAL(proto_assignment_encode(&a, &buf, &len), FERR_OK);
    check_prefixes(buf, len);
    free(buf);
    proto_assignment_dispose(&a);
    proto_ack_t k = {"m", 2, {0}};
    items_fixture(&k.holding, 30);
    CU_ASSERT_EQUAL_FATAL(proto_ack_encode(&k, &buf, &len), FERR_OK);
    check_prefixes(buf, len);
    free(buf);
    assign_list_dispose(&k.holding);
}

static void test_random_bytes(void)
{
    rng_state = 1234;
    char tmp[512];
    int accepted = 0;
    for (int i = 0; i < 4000; i++) {
        size_t n = rng() % sizeof tmp;
        for (size_t j = 0; j < n; j++)
            tmp[j] = (char)rng();
        if (i % 2 && n > 24) { /* half start with a valid header, to get past it */
            static const char hdr[] = "\x86\xa5magic\xa4" "FRY1\xa1v\x01\xa4type";
            memcpy(tmp, hdr, sizeof hdr - 1);
            tmp[sizeof hdr - 1] = (char)(1 + rng() % 4);
        }
        char *copy = malloc(n ? n : 1);
        memcpy(copy, tmp, n);
        accepted += decode_all(copy, n);
        free(copy);
    }
    CU_ASSERT(accepted >= 0);
}

/* Valid encodings with a few bytes changed: reaches much deeper than random bytes. */
static void test_mutations(void)
{
    rng_state = 99;
    char *enc[4];
    size_t len[4];
    proto_member_t mem = member_fixture();
    proto_leader_t l = leader_fixture();
    proto_assignment_t a;
    assignment_fixture(&a, 3, 20);
    proto_ack_t k = {"m", 2, {0}};
    items_fixture(&k.holding, 20);
    CU_ASSERT_EQUAL_FATAL(proto_member_encode(&mem, &enc[0], &len[0]), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_leader_encode(&l, &enc[1], &len[1]), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_assignment_encode(&a, &enc[2], &len[2]), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(proto_ack_encode(&k, &enc[3], &len[3]), FERR_OK);
    int accepted = 0;
    for (int i = 0; i < 4000; i++) {
        int which = rng() % 4;
        char *copy = malloc(len[which]);
        memcpy(copy, enc[which], len[which]);
        for (int f = 1 + rng() % 3; f > 0; f--) {
            size_t at = rng() % len[which];
            static const unsigned char interesting[] = {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcf, 0xd3, 0xdb,
                                                        0xdd, 0xdf, 0xff, 0x90, 0xa0};
            copy[at] = rng() % 2 ? (char)rng() : (char)interesting[rng() % sizeof interesting];
        }
        accepted += decode_all(copy, len[which]);
        free(copy);
    }
    printf("\n    mutations: %d of 4000 still decoded ", accepted);
    for (int i = 0; i < 4; i++)
        free(enc[i]);
    proto_assignment_dispose(&a);
    assign_list_dispose(&k.holding);
}

int cu_register(void)
{
    CU_pSuite s = CU_add_suite("proto", NULL, NULL);
    if (!s)
        return -1;
    if (!CU_add_test(s, "message names", test_names) ||
        !CU_add_test(s, "member round trip", test_member_roundtrip) ||
        !CU_add_test(s, "leader round trip", test_leader_roundtrip) ||
        !CU_add_test(s, "assignment round trip (0..1000 items)", test_assignment_roundtrip) ||
        !CU_add_test(s, "ack round trip", test_ack_roundtrip) ||
        !CU_add_test(s, "encoder refuses bad input", test_encode_rejects) ||
        !CU_add_test(s, "reject: magic, version, type, trailing", test_reject_header) ||
        !CU_add_test(s, "reject: wrong field types, huge counts", test_reject_field_types) ||
        !CU_add_test(s, "reject: missing, duplicate, nesting", test_reject_structure) ||
        !CU_add_test(s, "unknown keys skipped", test_forward_compat) ||
        !CU_add_test(s, "reject: decode amplification", test_reject_amplification) ||
        !CU_add_test(s, "every truncation rejected", test_truncations) ||
        !CU_add_test(s, "4000 random buffers", test_random_bytes) ||
        !CU_add_test(s, "4000 mutated encodings", test_mutations))
        return -1;
    return 0;
}
