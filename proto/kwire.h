/* kwire: ferry's own Kafka wire codec, for copying record batches undecoded.
 *
 * Why: librdkafka 2.0.2 has no public API that hands over or accepts whole RecordBatches, so a
 * record-level copy pays for decoding and re-encoding every record. Batch passthrough fetches
 * magic-v2 batches and produces them again with only the producer-owned header fields changed.
 * ferry speaks the protocol itself for that (Fetch, Produce and what they need); everything
 * else stays on librdkafka. This module is the protocol: pure functions of bytes, no I/O, no
 * clock, no globals, every read bounds-checked, so it can go to a fuzzer as it is.
 *
 * Only non-flexible versions (no tagged fields, no compact encodings). Supported ranges:
 *
 *   API (key)             ferry  2.0.2 mock  Kafka 4.x from  why ferry's range
 *   ApiVersions (18)      0-2    0-2         0               v3+ is flexible
 *   Metadata (3)          1-8    0-2         4               v1: null = all topics; v9+ flexible
 *   Fetch (1)             4-11   0-11        4               v4: first for magic v2; v12+ flexible
 *   Produce (0)           3-8    0-7         3               v3: first for magic v2; v9+ flexible
 *   ListOffsets (2)       1-5    0-5         1               v1: one offset; v6+ flexible
 *   InitProducerId (22)   0-1    0-4         0               v2+ is flexible
 *   SaslHandshake (17)    1      -           1               v0 (raw SASL tokens) is gone in 4.0
 *   SaslAuthenticate (36) 0-1    -           0               v2 is flexible
 *
 * KIP-896 (Kafka 4.0) removed the versions that clients older than Kafka 2.1 used; Kafka
 * 3.7-3.9's message definitions mark them ("deprecatedVersions"): Metadata v0-3, Fetch v0-3,
 * ListOffsets v0, SaslHandshake v0. Produce v0-6 were marked too, but v3-6 were kept
 * (KAFKA-18334: librdkafka needs v3) and v0-2 are advertised but refused (KAFKA-18659). So one
 * range must reach both ends: the mock tops out at Metadata v2 and Produce v7, Kafka 4.x
 * starts at Metadata v4. kwire_negotiate() picks the highest common version.
 *
 * What the 2.0.2 mock gets wrong (rdkafka_mock_handlers.c), and what follows:
 *   - ListOffsets v4+ responses carry LeaderEpoch as an int64, not an int32: the strict decoder
 *     refuses them (trailing bytes). Pick ListOffsets v1-3 for the mock (KWIRE_LISTOFFSETS_SAFE_MAX).
 *   - Produce v5 responses omit LogStartOffset (it writes it from v6): refused as truncated.
 *     kwire_negotiate() picks v7 against the mock, which is correct.
 *   - Produce takes the record count from the first batch and stores the whole blob as one
 *     entry: send exactly one batch per partition per Produce request.
 *   - Fetch returns at most one stored blob per partition per response.
 *
 * Framing: every message is a 4-byte big-endian size followed by that many bytes. A request is
 * size, header v1 (api_key, api_version, correlation_id, client_id), body; a response is size,
 * header v0 (correlation_id), body. Writers append complete frames; decoders take the body.
 *
 * Decoded messages: arrays and strings are allocated in one arena owned by the message and
 * freed by its _dispose; strings are copied (NUL-terminated; a string containing NUL is
 * refused). Record blobs (Fetch records, Produce records, SASL auth bytes) are NOT copied:
 * they point into the input buffer, which must outlive the decoded message. Memory is
 * proportional to the input (an array count the remaining bytes cannot hold is refused before
 * anything is allocated). Decoders refuse trailing bytes.
 *
 * thread: every function is reentrant; a reader, writer or iterator belongs to one thread. */
#ifndef FERRY_KWIRE_H
#define FERRY_KWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/ferr.h"

/* ---- API keys and versions ---- */

enum {
    KWIRE_API_PRODUCE = 0,
    KWIRE_API_FETCH = 1,
    KWIRE_API_LIST_OFFSETS = 2,
    KWIRE_API_METADATA = 3,
    KWIRE_API_SASL_HANDSHAKE = 17,
    KWIRE_API_API_VERSIONS = 18,
    KWIRE_API_INIT_PRODUCER_ID = 22,
    KWIRE_API_SASL_AUTHENTICATE = 36,
};

/* ListOffsets v4+ is misencoded by the 2.0.2 mock (see above); v1-3 work everywhere. */
#define KWIRE_LISTOFFSETS_SAFE_MAX 3

#define KWIRE_MAX_ARRAY (1 << 20) /* elements in one decoded array */

/** @returns "Fetch", "Produce", ... or "unknown". */
const char *kwire_api_name(int16_t api_key);

/** ferry's supported version range of @p api_key. @returns false if kwire does not speak it. */
bool kwire_api_range(int16_t api_key, int16_t *min, int16_t *max);

/** @returns the highest version in both ranges, or -1 if they do not overlap. */
int16_t kwire_pick_version(int16_t ours_min, int16_t ours_max, int16_t broker_min, int16_t broker_max);

/** @returns the name of a Kafka error code ("NOT_LEADER_OR_FOLLOWER"), or "UNKNOWN_CODE". */
const char *kwire_error_name(int16_t code);

/* ---- reader: a bounds-checked cursor over a buffer, with a sticky error ---- */

/** After the first failure every read returns 0 (or NULL) and does not move. */
typedef struct kwire_rd {
    const uint8_t *buf;
    size_t len, pos;
    const char *fail;  /* NULL, or what went wrong (a static string) */
    const char *field; /* the field that was being read then */
    size_t fail_pos;
} kwire_rd_t;

void kwire_rd_init(kwire_rd_t *r, const void *buf, size_t len);
static inline bool kwire_rd_ok(const kwire_rd_t *r) { return r->fail == NULL; }
static inline size_t kwire_rd_left(const kwire_rd_t *r) { return r->len - r->pos; }
/** Marks @p r failed (the first failure wins). @p what and @p field must be static strings. */
void kwire_rd_fail(kwire_rd_t *r, const char *field, const char *what);
/** Fills @p err with "@p ctx: FIELD: WHAT at offset N of M". @returns FERR_INVALID (FERR_OK if ok). */
ferr_code_t kwire_rd_error(const kwire_rd_t *r, const char *ctx, ferr_t *err);

int8_t kwire_rd_i8(kwire_rd_t *r, const char *field);
int16_t kwire_rd_i16(kwire_rd_t *r, const char *field);
int32_t kwire_rd_i32(kwire_rd_t *r, const char *field);
int64_t kwire_rd_i64(kwire_rd_t *r, const char *field);
uint32_t kwire_rd_uvarint(kwire_rd_t *r, const char *field); /* at most 5 bytes, no overflow */
uint64_t kwire_rd_uvarlong(kwire_rd_t *r, const char *field); /* at most 10 bytes, no overflow */
int32_t kwire_rd_varint(kwire_rd_t *r, const char *field);    /* zigzag */
int64_t kwire_rd_varlong(kwire_rd_t *r, const char *field);   /* zigzag */
/** @returns @p n bytes in place (NULL on failure), and moves past them. */
const uint8_t *kwire_rd_raw(kwire_rd_t *r, const char *field, size_t n);
/** A (nullable) string: int16 length, -1 = null. *s points into the buffer, not terminated.
 *  @returns the length, or -1 for null (only if @p nullable; otherwise that is a failure). */
int32_t kwire_rd_str(kwire_rd_t *r, const char *field, bool nullable, const char **s);
/** (Nullable) bytes: int32 length, -1 = null. @returns the length, or -1 for null. */
int32_t kwire_rd_bytes(kwire_rd_t *r, const char *field, bool nullable, const uint8_t **p);
/** An int32 array count. Refuses counts above KWIRE_MAX_ARRAY and counts whose elements (at
 *  least @p min_elem bytes each) cannot fit in what is left. @returns the count, -1 for null. */
int32_t kwire_rd_count(kwire_rd_t *r, const char *field, bool nullable, size_t min_elem);

/* ---- writer: a growable buffer ---- */

/** Refuses to grow past INT32_MAX bytes (a frame's limit); after a failure it writes nothing. */
typedef struct kwire_wr {
    uint8_t *buf;
    size_t len, cap;
    bool failed; /* out of memory or too large */
} kwire_wr_t;

void kwire_wr_init(kwire_wr_t *w);
void kwire_wr_dispose(kwire_wr_t *w);
/** Empties @p w (keeps its memory) and clears a failure. */
void kwire_wr_reset(kwire_wr_t *w);
/** Appends @p n bytes and @returns where they are (valid until the next write), NULL if failed. */
uint8_t *kwire_wr_alloc(kwire_wr_t *w, size_t n);
void kwire_wr_raw(kwire_wr_t *w, const void *p, size_t n);
void kwire_wr_i8(kwire_wr_t *w, int8_t v);
void kwire_wr_i16(kwire_wr_t *w, int16_t v);
void kwire_wr_i32(kwire_wr_t *w, int32_t v);
void kwire_wr_i64(kwire_wr_t *w, int64_t v);
void kwire_wr_uvarint(kwire_wr_t *w, uint32_t v);
void kwire_wr_uvarlong(kwire_wr_t *w, uint64_t v);
void kwire_wr_varint(kwire_wr_t *w, int32_t v);
void kwire_wr_varlong(kwire_wr_t *w, int64_t v);
/** A string of @p n bytes; @p s NULL writes the null string. Fails (sets failed) above INT16_MAX. */
void kwire_wr_str(kwire_wr_t *w, const char *s, size_t n);
/** Bytes; @p p NULL writes null bytes. */
void kwire_wr_bytes(kwire_wr_t *w, const void *p, size_t n);
/** Writes an int32 placeholder and @returns its position, for kwire_wr_patch_len(). */
size_t kwire_wr_mark(kwire_wr_t *w);
void kwire_wr_patch_i32(kwire_wr_t *w, size_t at, int32_t v);
/** Writes into the placeholder at @p at the number of bytes written after it. */
void kwire_wr_patch_len(kwire_wr_t *w, size_t at);

/* ---- framing and headers ---- */

#define KWIRE_RESP_HDR_LEN 4 /* response header v0: correlation_id */

/**
 * @brief How long the frame starting at @p buf is, once its 4-byte size prefix is there.
 * @param n         bytes available at @p buf (may be fewer than the frame).
 * @param max_size  the largest size (after the prefix) the caller accepts.
 * @param frame_len out: 0 if @p n < 4 (not known yet), else 4 + size; the frame is complete
 *                  when @p n >= *frame_len.
 * @returns FERR_OK; FERR_TOO_LARGE above @p max_size; FERR_INVALID for a size below 4 or
 *          negative. Then the connection cannot be resynchronised.
 */
ferr_code_t kwire_frame_len(const void *buf, size_t n, size_t max_size, size_t *frame_len, ferr_t *err);

/** Request header v1 as ferry writes it. */
typedef struct kwire_req_hdr {
    int16_t version;
    int32_t correlation_id;
    const char *client_id; /* NULL = null */
} kwire_req_hdr_t;

/** Reads the correlation id of a response (@p buf: the frame after its size prefix). */
ferr_code_t kwire_resp_hdr_read(const void *buf, size_t len, int32_t *correlation_id, ferr_t *err);

/** Reads a request header v1 (for fake brokers in tests): @p hdr_len is where the body starts;
 *  the client id is skipped. */
ferr_code_t kwire_req_hdr_read(const void *buf, size_t len, int16_t *api_key, int16_t *version,
                               int32_t *correlation_id, size_t *hdr_len, ferr_t *err);

/* ---- messages ----
 *
 * For each API X below:
 *   ferr_code_t kwire_X_req_write(kwire_wr_t *w, const kwire_req_hdr_t *h, const kwire_X_req_t *m, ferr_t *err);
 *       appends a complete request frame. FERR_UNSUPPORTED for a version outside kwire's range,
 *       FERR_INVALID for a value the version cannot carry (NULL where null is not allowed, a
 *       string over 32767 bytes, more than INT32_MAX elements), FERR_TOO_LARGE if the frame
 *       would pass INT32_MAX or memory ran out. On error nothing is appended.
 *   ferr_code_t kwire_X_resp_decode(const void *body, size_t len, int16_t version, kwire_X_resp_t *out, ferr_t *err);
 *       decodes a response body (after the response header); @p out is overwritten, never read.
 *       FERR_INVALID with @p err naming the field, FERR_UNSUPPORTED for a version outside the
 *       range. On error @p out is zeroed and owns nothing; on success release it with _dispose.
 *   The other direction, for fake brokers and round-trip tests: kwire_X_resp_write (appends
 *   size, correlation_id, body) and kwire_X_req_decode (a request body) with kwire_X_req_dispose.
 *   Fields that ferry always sends as constants (replica_id -1, null transactional id, no fetch
 *   sessions, no authorized operations) are written by the encoder and skipped by the decoder.
 *   A field the version does not have is not written, and is decoded as its default (-1 for
 *   epochs, offsets, replicas; 0 for throttle times).
 */

/* ApiVersions v0-2: the request has no fields. */
typedef struct kwire_api_version {
    int16_t api_key, min_version, max_version;
} kwire_api_version_t;

typedef struct kwire_apiversions_resp {
    int16_t error_code;
    kwire_api_version_t *api_keys;
    int32_t n_api_keys;
    int32_t throttle_time_ms; /* v1+ */
    void *_arena;
} kwire_apiversions_resp_t;

/** @returns false if the broker did not list @p api_key. */
bool kwire_apiversions_find(const kwire_apiversions_resp_t *av, int16_t api_key, int16_t *min, int16_t *max);
/** @returns the version to use for @p api_key with this broker: the highest in both kwire's
 *  and the broker's range, or -1 if there is none. For ListOffsets it goes no higher than
 *  KWIRE_LISTOFFSETS_SAFE_MAX (v4-5 only add leader-epoch fencing, and the mock misencodes
 *  them); ask for v4-5 explicitly with kwire_pick_version(). */
int16_t kwire_negotiate(const kwire_apiversions_resp_t *av, int16_t api_key);

/* Metadata v1-8. */
typedef struct kwire_metadata_req_topic {
    const char *name;
} kwire_metadata_req_topic_t;

typedef struct kwire_metadata_req {
    const kwire_metadata_req_topic_t *topics;
    int32_t n_topics; /* -1 = all topics */
    bool allow_auto_topic_creation; /* v4+ (earlier versions always allow it) */
} kwire_metadata_req_t;

typedef struct kwire_metadata_broker {
    int32_t node_id;
    const char *host;
    int32_t port;
    const char *rack; /* NULL = none */
} kwire_metadata_broker_t;

typedef struct kwire_metadata_partition {
    int16_t error_code;
    int32_t partition;
    int32_t leader;       /* -1 = none */
    int32_t leader_epoch; /* v7+, else -1 */
} kwire_metadata_partition_t;

typedef struct kwire_metadata_topic {
    int16_t error_code;
    const char *name;
    bool is_internal;
    kwire_metadata_partition_t *partitions;
    int32_t n_partitions;
} kwire_metadata_topic_t;

typedef struct kwire_metadata_resp {
    int32_t throttle_time_ms; /* v3+ */
    kwire_metadata_broker_t *brokers;
    int32_t n_brokers;
    const char *cluster_id; /* v2+, NULL = none */
    int32_t controller_id;
    kwire_metadata_topic_t *topics;
    int32_t n_topics;
    void *_arena;
} kwire_metadata_resp_t;

/* Fetch v4-11, without fetch sessions (session id 0, epoch -1: full fetches). */
typedef struct kwire_fetch_req_partition {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+; -1 = unknown */
    int64_t fetch_offset;
    int64_t log_start_offset; /* v5+; -1 from consumers */
    int32_t partition_max_bytes;
} kwire_fetch_req_partition_t;

typedef struct kwire_fetch_req_topic {
    const char *topic;
    const kwire_fetch_req_partition_t *partitions;
    int32_t n_partitions;
} kwire_fetch_req_topic_t;

typedef struct kwire_fetch_req {
    int32_t max_wait_ms, min_bytes, max_bytes;
    int8_t isolation_level; /* 0 read_uncommitted, 1 read_committed */
    const kwire_fetch_req_topic_t *topics;
    int32_t n_topics;
    const char *rack_id; /* v11; NULL = "" */
} kwire_fetch_req_t;

typedef struct kwire_aborted_txn {
    int64_t producer_id, first_offset;
} kwire_aborted_txn_t;

typedef struct kwire_fetch_partition {
    int32_t partition;
    int16_t error_code;
    int64_t high_watermark, last_stable_offset, log_start_offset; /* log start: v5+, else -1 */
    kwire_aborted_txn_t *aborted_transactions;
    int32_t n_aborted_transactions; /* -1 = null */
    int32_t preferred_read_replica; /* v11, else -1 */
    const uint8_t *records;         /* into the response buffer; NULL = null */
    size_t records_len;             /* may end in a partial batch: see kwire_batch_next() */
} kwire_fetch_partition_t;

typedef struct kwire_fetch_topic {
    const char *topic;
    kwire_fetch_partition_t *partitions;
    int32_t n_partitions;
} kwire_fetch_topic_t;

typedef struct kwire_fetch_resp {
    int32_t throttle_time_ms;
    int16_t error_code; /* v7+ */
    int32_t session_id; /* v7+ */
    kwire_fetch_topic_t *topics;
    int32_t n_topics;
    void *_arena;
} kwire_fetch_resp_t;

/* Produce v3-8, non-transactional (null transactional id). acks=0 gets no response at all. */
typedef struct kwire_produce_req_partition {
    int32_t partition;
    const uint8_t *records; /* one or more complete batches; NULL = null */
    size_t records_len;
} kwire_produce_req_partition_t;

typedef struct kwire_produce_req_topic {
    const char *topic;
    const kwire_produce_req_partition_t *partitions;
    int32_t n_partitions;
} kwire_produce_req_topic_t;

typedef struct kwire_produce_req {
    int16_t acks; /* -1 all, 1 leader, 0 none */
    int32_t timeout_ms;
    const kwire_produce_req_topic_t *topics;
    int32_t n_topics;
} kwire_produce_req_t;

typedef struct kwire_record_error {
    int32_t batch_index;
    const char *message; /* NULL = none */
} kwire_record_error_t;

typedef struct kwire_produce_partition {
    int32_t partition;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time_ms; /* -1 unless the topic uses LogAppendTime */
    int64_t log_start_offset;   /* v5+, else -1 */
    kwire_record_error_t *record_errors; /* v8 */
    int32_t n_record_errors;
    const char *error_message; /* v8, NULL = none */
} kwire_produce_partition_t;

typedef struct kwire_produce_topic {
    const char *topic;
    kwire_produce_partition_t *partitions;
    int32_t n_partitions;
} kwire_produce_topic_t;

typedef struct kwire_produce_resp {
    kwire_produce_topic_t *topics;
    int32_t n_topics;
    int32_t throttle_time_ms;
    void *_arena;
} kwire_produce_resp_t;

/* InitProducerId v0-1, for an idempotent producer (null transactional id). */
typedef struct kwire_initpid_req {
    int32_t transaction_timeout_ms;
} kwire_initpid_req_t;

typedef struct kwire_initpid_resp {
    int32_t throttle_time_ms;
    int16_t error_code;
    int64_t producer_id;
    int16_t producer_epoch;
    void *_arena;
} kwire_initpid_resp_t;

/* ListOffsets v1-5. timestamp -2 = log start, -1 = end (the next offset to be written). */
#define KWIRE_OFFSET_EARLIEST (-2)
#define KWIRE_OFFSET_LATEST (-1)

typedef struct kwire_listoffsets_req_partition {
    int32_t partition;
    int32_t current_leader_epoch; /* v4+; -1 = unknown */
    int64_t timestamp;
} kwire_listoffsets_req_partition_t;

typedef struct kwire_listoffsets_req_topic {
    const char *topic;
    const kwire_listoffsets_req_partition_t *partitions;
    int32_t n_partitions;
} kwire_listoffsets_req_topic_t;

typedef struct kwire_listoffsets_req {
    int8_t isolation_level; /* v2+ */
    const kwire_listoffsets_req_topic_t *topics;
    int32_t n_topics;
} kwire_listoffsets_req_t;

typedef struct kwire_listoffsets_partition {
    int32_t partition;
    int16_t error_code;
    int64_t timestamp, offset;
    int32_t leader_epoch; /* v4+, else -1 */
} kwire_listoffsets_partition_t;

typedef struct kwire_listoffsets_topic {
    const char *topic;
    kwire_listoffsets_partition_t *partitions;
    int32_t n_partitions;
} kwire_listoffsets_topic_t;

typedef struct kwire_listoffsets_resp {
    int32_t throttle_time_ms; /* v2+ */
    kwire_listoffsets_topic_t *topics;
    int32_t n_topics;
    void *_arena;
} kwire_listoffsets_resp_t;

/* SaslHandshake v1 (then the SASL exchange goes through SaslAuthenticate). */
typedef struct kwire_saslhandshake_req {
    const char *mechanism; /* "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" */
} kwire_saslhandshake_req_t;

typedef struct kwire_sasl_mechanism {
    const char *name;
} kwire_sasl_mechanism_t;

typedef struct kwire_saslhandshake_resp {
    int16_t error_code;
    kwire_sasl_mechanism_t *mechanisms; /* what the broker enables */
    int32_t n_mechanisms;
    void *_arena;
} kwire_saslhandshake_resp_t;

/* SaslAuthenticate v0-1. */
typedef struct kwire_saslauth_req {
    const uint8_t *auth_bytes;
    size_t auth_bytes_len;
} kwire_saslauth_req_t;

typedef struct kwire_saslauth_resp {
    int16_t error_code;
    const char *error_message; /* NULL = none */
    const uint8_t *auth_bytes; /* into the response buffer */
    size_t auth_bytes_len;
    int64_t session_lifetime_ms; /* v1+, else 0 */
    void *_arena;
} kwire_saslauth_resp_t;

/* Decoded requests own an arena too (the request structs above are the caller's otherwise). */
typedef struct kwire_req_arena {
    void *_arena;
} kwire_req_arena_t;

#define KWIRE_DECLARE(x)                                                                           \
    ferr_code_t kwire_##x##_req_write(kwire_wr_t *w, const kwire_req_hdr_t *h, const kwire_##x##_req_t *m,   \
                                      ferr_t *err);                                                \
    ferr_code_t kwire_##x##_req_decode(const void *body, size_t len, int16_t version, kwire_##x##_req_t *out, \
                                       kwire_req_arena_t *arena, ferr_t *err);                     \
    ferr_code_t kwire_##x##_resp_write(kwire_wr_t *w, int32_t correlation_id, int16_t version,    \
                                       const kwire_##x##_resp_t *m, ferr_t *err);                 \
    ferr_code_t kwire_##x##_resp_decode(const void *body, size_t len, int16_t version,            \
                                        kwire_##x##_resp_t *out, ferr_t *err);                    \
    void kwire_##x##_resp_dispose(kwire_##x##_resp_t *m);

KWIRE_DECLARE(metadata)
KWIRE_DECLARE(fetch)
KWIRE_DECLARE(produce)
KWIRE_DECLARE(initpid)
KWIRE_DECLARE(listoffsets)
KWIRE_DECLARE(saslhandshake)
KWIRE_DECLARE(saslauth)
#undef KWIRE_DECLARE

/** Frees what a decoded request owns (kwire_X_req_decode's @p arena) and zeroes it. */
void kwire_req_arena_dispose(kwire_req_arena_t *arena);

/* ApiVersions has no request fields, so its functions take none. A broker that does not
 * support the requested ApiVersions version answers in v0 with UNSUPPORTED_VERSION (35) and
 * its own range: the decoder accepts that v0 body for any requested version. */
ferr_code_t kwire_apiversions_req_write(kwire_wr_t *w, const kwire_req_hdr_t *h, ferr_t *err);
ferr_code_t kwire_apiversions_resp_write(kwire_wr_t *w, int32_t correlation_id, int16_t version,
                                         const kwire_apiversions_resp_t *m, ferr_t *err);
ferr_code_t kwire_apiversions_resp_decode(const void *body, size_t len, int16_t version,
                                          kwire_apiversions_resp_t *out, ferr_t *err);
void kwire_apiversions_resp_dispose(kwire_apiversions_resp_t *m);

/* ---- RecordBatch v2 ----
 *
 * A records blob (Fetch's records, Produce's records) is a sequence of batches:
 *   baseOffset int64 | batchLength int32 (bytes after this field) | partitionLeaderEpoch int32 |
 *   magic int8 (2) | crc uint32 (CRC32C of attributes..end) | attributes int16 |
 *   lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
 *   producerEpoch int16 | baseSequence int32 | recordCount int32 | records...
 * Magic 0/1 message sets have baseOffset and a size in the same place and the magic byte at the
 * same offset, so the iterator can step over them and report their magic. */

#define KWIRE_BATCH_HDR_LEN 61 /* magic v2 header, up to the first record */
#define KWIRE_LOG_OVERHEAD 12  /* baseOffset + batchLength */

#define KWIRE_ATTR_COMPRESSION 0x07 /* 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd */
#define KWIRE_ATTR_LOG_APPEND_TIME 0x08
#define KWIRE_ATTR_TRANSACTIONAL 0x10
#define KWIRE_ATTR_CONTROL 0x20

typedef struct kwire_batch {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int compression;    /* attributes & KWIRE_ATTR_COMPRESSION */
    int timestamp_type; /* 0 CreateTime, 1 LogAppendTime */
    bool is_transactional, is_control;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
    const uint8_t *data; /* the whole batch, KWIRE_LOG_OVERHEAD + batch_length bytes */
    size_t len;
} kwire_batch_t;

/** What an iterator step found. */
typedef enum kwire_next {
    KWIRE_BAD = -1,    /* malformed: @p err says why; the iterator stays bad */
    KWIRE_END = 0,     /* nothing left */
    KWIRE_ITEM = 1,    /* one item filled in */
    KWIRE_PARTIAL = 2, /* the rest is a truncated batch (normal at the end of a Fetch) */
} kwire_next_t;

typedef struct kwire_batch_iter {
    const uint8_t *buf;
    size_t len, pos; /* pos: where the next (or the partial) batch starts */
    size_t need;     /* after KWIRE_PARTIAL: the bytes that batch needs (0: not known yet) */
    bool bad;
} kwire_batch_iter_t;

void kwire_batch_iter_init(kwire_batch_iter_t *it, const void *blob, size_t len);

/**
 * @brief The next batch of the blob.
 * @returns KWIRE_ITEM with @p b filled (magic 2: every header field; magic 0/1: base_offset,
 *          batch_length, magic, crc, attributes, data and len, the rest -1: decode those
 *          record by record); KWIRE_END; KWIRE_PARTIAL if what is left is shorter than the
 *          batch it starts (it->need says how long that batch is); KWIRE_BAD for a size below
 *          the minimum, an unknown magic or a negative record count.
 * @remark Does not check the CRC (kwire_batch_crc_ok()).
 */
kwire_next_t kwire_batch_next(kwire_batch_iter_t *it, kwire_batch_t *b, ferr_t *err);

/** CRC32C (Castagnoli), chainable: crc = kwire_crc32c(crc, p, n) starting from 0. */
uint32_t kwire_crc32c(uint32_t crc, const void *p, size_t n);

/** @returns true if @p b is magic 2 and its CRC matches its attributes..end. */
bool kwire_batch_crc_ok(const kwire_batch_t *b);

/** @returns true if the batch's offsets have no gaps: recordCount >= 1 and recordCount ==
 *  lastOffsetDelta + 1. A compacted batch with gaps cannot be produced as it is (a broker
 *  refuses it); copy it record by record. */
bool kwire_batch_is_contiguous(const kwire_batch_t *b);

/**
 * @brief Writes a copy of the magic-v2 batch @p src (exactly @p len bytes, one whole batch) to
 *        @p dst with the producer-owned fields replaced and the CRC32C recomputed.
 *
 * Keys, values, headers, timestamps and compression stay byte for byte. The transactional
 * attribute is cleared: the copy belongs to ferry's producer, not to the source's transaction
 * (drop aborted data before, with the Fetch response's aborted transactions or read_committed).
 * @p dst may be @p src (in place); otherwise the two must not overlap.
 * @param producer_id  -1 (with epoch -1 and sequence -1) for a non-idempotent producer.
 * @returns FERR_OK; FERR_INVALID if @p src is not one whole magic-v2 batch, is a control batch,
 *          or its CRC does not match (a corrupt batch is never given a fresh CRC).
 */
ferr_code_t kwire_batch_rewrite(void *dst, const void *src, size_t len, int64_t base_offset, int64_t producer_id,
                                int16_t producer_epoch, int32_t base_sequence, int32_t partition_leader_epoch,
                                ferr_t *err);

/* ---- records of an uncompressed magic-v2 batch ----
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint | key | valueLength varint | value | headerCount varint |
 *   per header: keyLength varint | key | valueLength varint | value
 * For tests and for locating a record; compressed batches are never decoded by ferry. */

typedef struct kwire_record {
    int8_t attributes;
    int64_t timestamp_delta; /* timestamp = batch base_timestamp + this */
    int32_t offset_delta;    /* offset = batch base_offset + this */
    const uint8_t *key;      /* NULL with key_len -1: null key */
    int32_t key_len;
    const uint8_t *value; /* NULL with value_len -1: null value (a tombstone) */
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* the headers as on the wire: read them with kwire_header_next() */
    size_t headers_len;
    size_t offset_in_batch; /* where the record (from its length varint) starts in the batch */
    size_t len;             /* and how long it is */
} kwire_record_t;

typedef struct kwire_record_iter {
    kwire_rd_t r;
    int32_t left, index;
    bool bad;
} kwire_record_iter_t;

/** @returns FERR_OK, or FERR_UNSUPPORTED if @p b is not an uncompressed magic-v2 batch. */
ferr_code_t kwire_record_iter_init(kwire_record_iter_t *it, const kwire_batch_t *b, ferr_t *err);

/** @returns KWIRE_ITEM, KWIRE_END after recordCount records (with no bytes left over), or
 *  KWIRE_BAD for anything malformed (a length that does not match the fields, negative
 *  lengths below -1, a null header key, fewer or more records than recordCount). */
kwire_next_t kwire_record_next(kwire_record_iter_t *it, kwire_record_t *rec, ferr_t *err);

typedef struct kwire_header {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value; /* NULL with value_len -1: null value */
    int32_t value_len;
} kwire_header_t;

typedef struct kwire_header_iter {
    kwire_rd_t r;
    int32_t left;
} kwire_header_iter_t;

void kwire_header_iter_init(kwire_header_iter_t *it, const kwire_record_t *rec);
/** @returns KWIRE_ITEM, KWIRE_END, or KWIRE_BAD (only for a record not from kwire_record_next). */
kwire_next_t kwire_header_next(kwire_header_iter_t *it, kwire_header_t *h, ferr_t *err);

#endif
