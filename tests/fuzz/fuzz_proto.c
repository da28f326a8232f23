/* fuzz_proto: libFuzzer harness for the msgpack znode decoders (proto/proto.c).
 *
 * The input is a znode's content, as any process with ZooKeeper access could write it. It goes
 * through proto_peek_type() and all four decoders (member, leader, assignment, ack); each
 * must accept or reject it without crashing, leaking or reading past the end. Whatever a
 * decoder accepts must re-encode (the encoder takes everything the decoder lets through), and
 * the encoding must be stable: decode(encode(m)) encodes to the same bytes. A violation aborts.
 *
 *   run: build-fuzz/fuzz_proto -max_total_time=300 <copy of tests/fuzz/corpus/proto> */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* One message type: its struct size and functions, through void pointers. */
typedef struct codec {
    const char *name;
    size_t size;
    ferr_code_t (*encode)(const void *m, char **buf, size_t *len);
    ferr_code_t (*decode)(const char *buf, size_t len, void *out, ferr_t *err);
    void (*dispose)(void *m);
} codec_t;

#define CODEC(T, name)                                                                             \
    {#name, sizeof(T), (ferr_code_t(*)(const void *, char **, size_t *))proto_##name##_encode,     \
     (ferr_code_t(*)(const char *, size_t, void *, ferr_t *))proto_##name##_decode,               \
     (void (*)(void *))proto_##name##_dispose}

static const codec_t codecs[] = {
    CODEC(proto_member_t, member),
    CODEC(proto_leader_t, leader),
    CODEC(proto_assignment_t, assignment),
    CODEC(proto_ack_t, ack),
};

static void fail(const codec_t *c, const char *what)
{
    fprintf(stderr, "fuzz_proto: %s: %s\n", c->name, what);
    abort();
}

/* Encodes the decoded @p m, decodes that, encodes again: both encodings must be identical. */
static void check_reencode(const codec_t *c, const void *m)
{
    char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    ferr_t err = {0};
    void *m2 = calloc(1, c->size);
    if (c->encode(m, &b1, &l1) != FERR_OK)
        fail(c, "a decoded message does not encode");
    if (c->decode(b1, l1, m2, &err) != FERR_OK)
        fail(c, err.msg);
    if (c->encode(m2, &b2, &l2) != FERR_OK || l1 != l2 || memcmp(b1, b2, l1))
        fail(c, "encoding is not stable");
    c->dispose(m2);
    free(m2);
    free(b1);
    free(b2);
}

/* A failed decode and a dispose leave the struct zeroed, and a zeroed struct disposes. */
static void check_zeroed(const codec_t *c, void *m)
{
    for (size_t i = 0; i < c->size; i++)
        if (((const unsigned char *)m)[i])
            fail(c, "struct not zeroed");
    c->dispose(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int type;
    ferr_t err = {0};
    proto_peek_type((const char *)data, size, &type, &err);
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        const codec_t *c = &codecs[i];
        void *m = malloc(c->size);
        memset(m, 0xa5, c->size); /* the decoder must overwrite, never read, its output */
        ferr_code_t rc = c->decode((const char *)data, size, m, &err);
        if (rc == FERR_OK) {
            check_reencode(c, m);
            c->dispose(m);
        } else if (rc != FERR_INVALID && rc != FERR_UNSUPPORTED) {
            fail(c, "unexpected error code");
        }
        check_zeroed(c, m);
        free(m);
    }
    return 0;
}
