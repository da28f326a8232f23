/* mbudget: the worker-wide memory budget of the copy path (ferry.memory.budget.bytes).
 *
 * Tasks read through the worker's shared source consumers (scons.h) and most write through
 * its shared destination producer (wprod.h); some have a producer (and a transactional task a
 * consumer) of their own. librdkafka bounds their buffers per client: the consumer's prefetch
 * (queued.max.messages.kbytes, which applies to each copy thread's queue the partitions are
 * forwarded to) and the producer's queue of records not yet acknowledged
 * (queue.buffering.max.kbytes and .messages). Without a worker-wide bound a worker's memory
 * grows with the number of tasks it runs; this module divides one budget among the clients.
 * Pure functions, no state. */
#ifndef FERRY_MBUDGET_H
#define FERRY_MBUDGET_H

#include <stdint.h>

/** Default of ferry.memory.budget.bytes (chosen by measurement, docs/PERFORMANCE.md). */
#define MBUDGET_DEFAULT_BYTES (32LL * 1024 * 1024)

/** Smallest queued.max.messages.kbytes and queue.buffering.max.kbytes a task gets, however
 *  many tasks share the budget: below about one fetch (1 MiB) the consumer mostly waits. */
#define MBUDGET_FLOOR_KBYTES 1024

/** The per-task client limits that the budget decides. 0 in an input means "not set". */
typedef struct mbudget_limits {
    int64_t consumer_kbytes;   /* consumer queued.max.messages.kbytes */
    int64_t producer_kbytes;   /* producer queue.buffering.max.kbytes */
    int64_t producer_messages; /* producer queue.buffering.max.messages */
} mbudget_limits_t;

/**
 * @brief The limits of one task of a worker that runs @p ntasks tasks.
 *
 * Each task's share is budget / ntasks: half for the consumer's prefetch, half for the
 * producer's queue (bytes, and records at one per MBUDGET_RECORD_COST bytes, since a small
 * record costs far more than its payload: librdkafka's message, its headers and the
 * consumed message it references). Each byte limit is at least MBUDGET_FLOOR_KBYTES, and the
 * producer's also holds one record of @p message_max_bytes (otherwise such a record would
 * never fit its queue). With @p budget_bytes 0 (no budget) ferry's former fixed per-task
 * defaults apply: 16 MiB prefetch, 32 MiB / 200,000 records in the producer.
 *
 * @param ntasks            tasks the worker runs; < 1 counts as 1.
 * @param message_max_bytes the producer's message.max.bytes; <= 0 means librdkafka's default.
 * @param user              the limits the user set explicitly (0 = not set); they win over
 *                          the derived ones. May be NULL.
 * @param out               filled; every field > 0.
 */
void mbudget_task_limits(int64_t budget_bytes, int ntasks, int64_t message_max_bytes,
                         const mbudget_limits_t *user, mbudget_limits_t *out);

/**
 * @brief The queue limits of the worker's shared destination producer (wprod.h).
 *
 * One worker-wide share instead of one per task: the producer half of the budget as if the
 * worker ran one task (budget / 2, at least MBUDGET_FLOOR_KBYTES and one record of
 * @p message_max_bytes); with @p budget_bytes 0 the former fixed producer defaults. The
 * tasks' consumers keep their per-task half (mbudget_task_limits). Only the producer fields
 * of @p out are meaningful.
 */
void mbudget_worker_producer_limits(int64_t budget_bytes, int64_t message_max_bytes,
                                    const mbudget_limits_t *user, mbudget_limits_t *out);

/**
 * @brief The prefetch bound of a shared source consumer (scons.h) per copy-thread queue.
 *
 * librdkafka's queued.max.messages.kbytes applies to the queue a partition's queue is
 * forwarded to, so a shared consumer feeding @p queues copy threads holds up to @p queues
 * times this: the consumer half of the budget divided among them (at least
 * MBUDGET_FLOOR_KBYTES each); with @p budget_bytes 0 the former fixed 16 MiB. Only
 * consumer_kbytes of @p out is meaningful.
 */
void mbudget_consumer_limits(int64_t budget_bytes, int queues, mbudget_limits_t *out);

/**
 * @brief The bytes a batch passthrough engine (bpass.h) may hold: fetched batches not yet
 *        acknowledged plus the room its Fetch requests in flight ask for.
 *
 * Its partitions use neither the shared consumer's prefetch nor the shared producer's queue,
 * so it takes the consumer half of the budget (budget / 2, at least 4 MiB: a few fetches);
 * with @p budget_bytes 0, 64 MiB.
 */
int64_t mbudget_batch_bytes(int64_t budget_bytes);

/** Bytes of producer budget per queued record (see mbudget_task_limits()). */
#define MBUDGET_RECORD_COST 1024

#endif
