/* bpass: batch passthrough — copying record batches without decoding them.
 *
 * Why: a replicator that keeps partitions one to one does not need to look inside a batch.
 * Record by record, every record of every fetched batch is decoded into a message, encoded
 * again and compressed again (librdkafka's path, rtask_copy.c). Here a source RecordBatch
 * (magic v2) is fetched with ferry's own client (kconn.h, kwire.h) and produced to the same
 * destination partition as it is, with only the producer-owned fields rewritten (base
 * offset, producer id and epoch, base sequence, partition leader epoch) and the CRC32C
 * recomputed: keys, values, headers, timestamps and compression stay byte for byte.
 *
 * One engine per worker and per (source, destination) connection settings, with one thread
 * that multiplexes its connections (one per source leader it fetches from, one per
 * destination leader it produces to) with poll(). Per partition: one Fetch in flight per
 * source broker for all its partitions, a bounded queue of fetched batches, at most one
 * Produce in flight per partition (a batch a partition, many partitions per request: what a
 * broker takes from an idempotent producer), sequence numbers per partition under one
 * producer id (InitProducerId), retries that resend identical bytes.
 *
 * What cannot be forwarded as it is goes back to the record path, for that partition, from
 * the offset where forwarding stopped (the owner gets a BPASS_FALLBACK report): a first batch
 * that starts before the wanted offset, offset gaps (compacted batches), LogAppendTime,
 * magic < 2, a corrupt batch (CRC), a batch the destination refuses as too large, a broker
 * answer the engine does not understand. Control batches are skipped; with
 * isolation.level=read_committed the batches of aborted transactions are dropped using the
 * Fetch response's aborted-transaction list.
 *
 * Fencing: the engine takes the task's produce gate (rtask_fence) around every Produce that
 * carries the task's batches, so once rtask_fence returns nothing more of the task is sent.
 *
 * Threads: bpass_new/bpass_destroy on the loop thread (the herder), bpass_add/bpass_remove
 * from a copy thread, everything else on the engine's own thread. Reports go to the task's
 * inbox (rtask_int.h) and wake its copy thread. */
#ifndef FERRY_BPASS_H
#define FERRY_BPASS_H

#include <jansson.h>
#include <stdint.h>

#include "worker/ferr.h"
#include "worker/kconn.h"
#include "worker/wconf.h"

typedef struct bpass bpass_t;
struct rtask;
struct tpart;

/** What a report to a task says (rtask_int.h's dres_t carries it). */
typedef enum {
    BPASS_ACK = 1,  /* a batch is written: source offsets src..src_last, destination dst.. */
    BPASS_DROP,     /* a batch not written (the partition was removed or fenced): not acknowledged */
    BPASS_FAILED,   /* the destination refused it for good: the task fails with the message */
    BPASS_FALLBACK, /* forwarding stopped at src: copy the partition record by record from there */
    BPASS_SKIP,     /* source offsets src..src_last hold no data to copy (control batches, aborted
                       transactions): nothing written, but the position moves past them */
    BPASS_RELEASED, /* after bpass_remove: the engine holds nothing of the partition any more and
                       reports nothing more about it (the task may go) */
} bpass_report_t;

typedef struct bpass_reg bpass_reg_t;

/** The registry of a worker's engines. */
bpass_reg_t *bpass_reg_new(const wconf_t *wc);
/** Frees it; every engine must have been put back. Accepts NULL. */
void bpass_reg_destroy(bpass_reg_t *reg);

/** The engine for connectors with these settings, created on first use (one more reference;
 *  bpass_put). @p config: the connector's src.kafka.*, src.consumer.*, dest.kafka.* and
 *  producer.override.* keys, with the worker's layers, decide the connections. NULL with
 *  @p err filled (FERR_UNSUPPORTED: a setting kconn cannot serve, e.g. GSSAPI) when the batch
 *  path cannot serve them: the caller then uses the record path. Loop thread. */
bpass_t *bpass_get(bpass_reg_t *reg, const json_t *config, ferr_t *err);
/** Drops a reference; the last one stops the thread and closes the connections. Loop thread. */
void bpass_put(bpass_t *bp);

/** Starts forwarding @p tp (its task's topic and partition) from source offset @p from. */
void bpass_add(bpass_t *bp, struct tpart *tp, int64_t from);
/** Stops forwarding @p tp: queued batches are dropped (BPASS_DROP); the one in flight is still
 *  reported (and retried until written, as the shared producer does), unless @p abandon (a
 *  fence, a shutdown past its graceful timeout): then it is reported dropped at once, and its
 *  answer, if any comes, is ignored. BPASS_RELEASED follows either way (a partition handed
 *  back with BPASS_FALLBACK is released with that report). */
void bpass_remove(bpass_t *bp, struct tpart *tp, int abandon);

/** Stops (@p paused) or resumes fetching @p tp; what is fetched is still written. */
void bpass_pause(bpass_t *bp, struct tpart *tp, int paused);

/** Batches and records forwarded, and batches sent back to the record path (for metrics). */
typedef struct bpass_stats {
    uint64_t batches, records, bytes, fallbacks, skipped;
} bpass_stats_t;
void bpass_get_stats(const bpass_t *bp, bpass_stats_t *out);

/* ---- what becomes of one fetched batch (pure) ---- */

typedef enum {
    BPASS_FORWARD = 1, /* forward it as it is */
    BPASS_BEFORE,      /* wholly before the wanted offset (a Fetch starts at its batch): ignore */
    BPASS_SKIPPED,     /* no data to copy (a transaction marker, an aborted transaction's batch):
                          move past it */
    BPASS_HANDBACK,    /* cannot be forwarded exactly: the record path takes the partition */
} bpass_verdict_t;

typedef struct bpass_aborted {
    int64_t producer_id, first_offset;
} bpass_aborted_t;

/** read_committed state of one partition: the aborted transactions Fetch responses listed and
 *  not yet reached, and the producers inside one now. Zero-initialised is empty. */
typedef struct bpass_txn {
    bpass_aborted_t *pending;
    int n, cap;
    int64_t *open;
    int nopen;
} bpass_txn_t;

/** Notes an aborted transaction of a Fetch response (listed again by every overlapping Fetch:
 *  kept once). */
void bpass_txn_note(bpass_txn_t *x, int64_t producer_id, int64_t first_offset);
void bpass_txn_dispose(bpass_txn_t *x);

/**
 * @brief What to do with batch @p b of a partition whose next wanted offset is @p want.
 * @param txn  the partition's read_committed state (batches judged in order update it), or
 *             NULL for read_uncommitted (aborted data is copied, markers skipped).
 * @param at   BPASS_HANDBACK: the offset the record path starts at.
 * @param why  BPASS_HANDBACK: why, for the log.
 * Order of the checks: old magic, before the wanted offset, starting before it, transaction
 * state, markers, then CRC, offset gaps and LogAppendTime (the batch's own offset).
 */
bpass_verdict_t bpass_judge(const kwire_batch_t *b, int64_t want, bpass_txn_t *txn, int64_t *at, const char **why);

/* ---- the destination-tail resume of a forwarded partition (pure parts, and the reads) ---- */

/** 1 if source batch @p src and destination batch @p dst hold the same records: same length,
 *  record count, last offset delta, timestamps, compression and record bytes (everything a
 *  forward keeps). */
int bpass_same_records(const kwire_batch_t *src, const kwire_batch_t *dst);

/**
 * @brief Where a forwarded partition resumes: reads the last batch of the destination
 *        partition and looks for the source batch it is a copy of, from source offset
 *        @p stored on (every copy of a batch is one destination batch with the same record
 *        bytes). Blocking (the task's setup job).
 * @param header_name the source-offset header of record-by-record copies (the destination's
 *                    last batch may come from the record path): checked first, if uncompressed.
 * @param mapped_end  the destination offset right after the last copy the stored offset map
 *                    knows (omap_end), -1 unknown: the destination holds hwm - mapped_end
 *                    records copied after the stored offset, which bounds the source scan (and
 *                    none means none to look for: a graceful hand-over).
 * @param found_src   out: the last source offset of the matching batch, -1 if none matched
 *                    (then the stored offset stands).
 * @param found_dst   out: the destination offset of its last record.
 * @returns FERR_OK (matched or not), or an error reading either side.
 */
ferr_code_t bpass_find_tail(bpass_t *bp, const char *src_topic, const char *dst_topic, int32_t partition,
                            int64_t stored, const char *header_name, int64_t mapped_end, int64_t *found_src,
                            int64_t *found_dst, ferr_t *err);

#endif
