/* proto: ferry's internal wire formats (znode contents), in msgpack.
 *
 * Why: workers of different builds read each other's znodes, and any process that can write to
 * ZooKeeper can put bytes there, so every message is versioned and every decoder treats its
 * input as hostile. Every message is one msgpack map whose first three keys are
 *     "magic": "FRY1", "v": 1, "type": PROTO_MSG_*
 * followed by the message's fields (all required in v1). Decoders reject bad magic, other
 * versions, the wrong type, wrong field types, duplicate keys, truncated input, trailing bytes,
 * strings over PROTO_MAX_STR or containing NUL, lists over PROTO_MAX_LIST entries, and
 * anything that would decode to more than PROTO_MAX_DECODED bytes of strings. Unknown keys
 * are skipped, so a newer writer may add fields without a version bump.
 *
 * Item lists (assign_list_t) go on the wire grouped like Kafka's ConnectProtocol:
 *     [[connector, [task, ...]], ...]      task -1 = the connector instance
 *
 * Decoders are pure functions of (bytes, length): no globals, no I/O, no reads past @p len,
 * so they can be handed to a libFuzzer harness as they are. Encoding uses msgpack-c. */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "coordinator/assign.h"
#include "worker/ferr.h"

#define PROTO_MAGIC "FRY1"
#define PROTO_VERSION 1
#define PROTO_MAX_STR (64 * 1024)                /* bytes in one string */
#define PROTO_MAX_LIST 1000000                   /* entries in one list, and items in one item list */
#define PROTO_MAX_DECODED ((size_t)64 << 20)     /* bytes of strings one decode may allocate */

/** Message types; the values are on the wire and never change. */
typedef enum proto_msg {
    PROTO_MSG_MEMBER = 1,     /* content of a member znode */
    PROTO_MSG_LEADER = 2,     /* content of the leader znode */
    PROTO_MSG_ASSIGNMENT = 3, /* the leader's assignment for one generation */
    PROTO_MSG_ACK = 4,        /* a worker's acknowledgement of an assignment */
} proto_msg_t;

/** @returns "member", "leader", "assignment", "ack", or "unknown". */
const char *proto_msg_name(int type);

/** Content of a member znode. Strings owned (malloc); required, non-NULL when encoding. */
typedef struct proto_member {
    char *worker_id; /* "host:port", as shown in status */
    char *rest_url;  /* advertised REST URL */
    char *version;   /* ferry version string */
    int protocol;    /* highest assignment protocol this worker speaks */
    int64_t started_ms;
} proto_member_t;

/** Content of the leader znode. */
typedef struct proto_leader {
    char *member;   /* the leader's member id (its znode name) */
    char *rest_url; /* where followers forward leader-only requests */
    int64_t generation;
} proto_leader_t;

/** One member's part of an assignment. */
typedef struct proto_assignment_entry {
    char *member;
    char *worker_id;
    char *rest_url;
    assign_list_t assigned; /* everything it should run after this round */
    assign_list_t revoked;  /* what it must stop now */
} proto_assignment_entry_t;

/** The leader's assignment for one generation. */
typedef struct proto_assignment {
    int64_t generation;
    char *leader;
    char *leader_url;
    int64_t config_offset; /* members must have read the config log this far */
    int64_t delay_ms;      /* >0: rebalance again after this long */
    proto_assignment_entry_t *entries; /* owned array of n */
    size_t n;
} proto_assignment_t;

/** A worker's acknowledgement: what it now runs, for the given generation. */
typedef struct proto_ack {
    char *member;
    int64_t generation;
    assign_list_t holding;
} proto_ack_t;

/**
 * @brief Reads only the {magic, v, type} header.
 * @param type  out: the message type (any integer value; check it against PROTO_MSG_*).
 * @returns FERR_OK; FERR_UNSUPPORTED for another version; FERR_INVALID otherwise (@p err filled).
 * @remark Does not validate the rest of the message.
 */
ferr_code_t proto_peek_type(const char *buf, size_t len, int *type, ferr_t *err);

/*
 * Encoders: write @p m into a new malloc'd buffer (*buf, caller frees with free(), *len bytes).
 *   @returns FERR_OK, FERR_INVALID if a string field is NULL or a list entry is malformed,
 *   FERR_TOO_LARGE if a string or list is over the limits above (the decoder would refuse it),
 *   FERR_INTERNAL if msgpack-c fails. On error *buf is NULL.
 * Decoders: parse exactly @p len bytes into @p out (overwritten, never read).
 *   @returns FERR_OK, FERR_UNSUPPORTED for another version, FERR_INVALID for anything else
 *   wrong, with @p err (may be NULL) saying what and where. On error @p out is zeroed and owns
 *   nothing. On success release it with the matching dispose.
 * Dispose: frees everything @p m owns and zeroes it; a zeroed struct is fine.
 * thread: all are reentrant.
 */
ferr_code_t proto_member_encode(const proto_member_t *m, char **buf, size_t *len);
ferr_code_t proto_member_decode(const char *buf, size_t len, proto_member_t *out, ferr_t *err);
void proto_member_dispose(proto_member_t *m);

ferr_code_t proto_leader_encode(const proto_leader_t *m, char **buf, size_t *len);
ferr_code_t proto_leader_decode(const char *buf, size_t len, proto_leader_t *out, ferr_t *err);
void proto_leader_dispose(proto_leader_t *m);

ferr_code_t proto_assignment_encode(const proto_assignment_t *m, char **buf, size_t *len);
ferr_code_t proto_assignment_decode(const char *buf, size_t len, proto_assignment_t *out, ferr_t *err);
void proto_assignment_dispose(proto_assignment_t *m);

ferr_code_t proto_ack_encode(const proto_ack_t *m, char **buf, size_t *len);
ferr_code_t proto_ack_decode(const char *buf, size_t len, proto_ack_t *out, ferr_t *err);
void proto_ack_dispose(proto_ack_t *m);

#endif
