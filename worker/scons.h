/* scons: the worker's shared source consumers.
 *
 * Why: one librdkafka consumer per task cost a set of broker threads and connections per
 * task (~800 threads for 64 tasks) and many small fetches. Instead every task whose
 * connector reads the same source cluster with the same consumer settings uses one consumer:
 * its partitions are added to that consumer's assignment (incremental_assign) and each
 * partition's queue is forwarded to the queue of the copy thread that owns the task
 * (copier.h), so a partition's records reach exactly one thread, in order, and its state
 * needs no lock. librdkafka's fetch bounds (queued.max.messages.kbytes, queued.min.messages)
 * then apply to each copy thread's queue as a whole: they are one worker-wide share of the
 * memory budget (mbudget.h), fixed when the consumer is created.
 *
 * librdkafka 2.0.2 stops fetching a partition whose queue is over those bounds and looks at
 * it again only at its broker thread's periodic wake-up, about a second later. A copy thread
 * that drained a full queue therefore asks for a wake-up (scons_wake): the consumer's own
 * thread sends a ListOffsets to one partition of each leader, which wakes those broker
 * threads at once (measured in docs/PERFORMANCE.md). The same thread drains the consumer's
 * own queue (errors not tied to a forwarded partition) and logs them.
 *
 * Threads: scons_get/scons_put on the h2o loop thread (the herder); scons_add, scons_remove,
 * scons_wake and scons_handle from any thread (librdkafka's assignment calls are
 * thread-safe; the partition table is under a mutex). */
#ifndef FERRY_SCONS_H
#define FERRY_SCONS_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

typedef struct scons scons_t;
typedef struct scons_reg scons_reg_t;

/** The registry of a worker's shared consumers. @p queues: how many copy-thread queues each
 *  consumer feeds at most (the copy threads), to divide the memory budget's consumer half. */
scons_reg_t *scons_reg_new(const wconf_t *wc, int queues);
/** Frees the registry; every consumer must have been put back. Accepts NULL. */
void scons_reg_destroy(scons_reg_t *reg);

/** A shared consumer for a task: one whose settings are @p config's (its src.kafka.* and
 *  src.consumer.* keys; the worker's consumer.* apply to all) and that does not read any of the
 *  task's partitions (@p parts: array of [topic, partition]) for another task already (two
 *  connectors may copy the same topic; a consumer assigns a partition once), created when
 *  there is none; one more reference, with those partitions reserved for the task.
 *  @p private_key non-NULL: a consumer of its own, not shared (a transactional task's).
 *  NULL with @p err filled if the settings are invalid. Loop thread. */
scons_t *scons_get(scons_reg_t *reg, const json_t *config, const json_t *parts, const char *private_key,
                   ferr_t *err);
/** Drops a reference and the reservation of @p parts; the last reference destroys the
 *  consumer. Accepts NULL. Loop thread. */
void scons_put(scons_t *s, const json_t *parts);

/** The librdkafka consumer (metadata and watermark queries, pause/resume, seek). */
rd_kafka_t *scons_handle(const scons_t *s);
/** A queue of this consumer for a copy thread (rd_kafka_queue_new on its handle). */
rd_kafka_queue_t *scons_queue_new(scons_t *s);

/** Adds partitions (with their start offsets in ->offset) to the assignment, each forwarded to
 *  @p dest. @returns 0, or -1 with @p err filled. */
int scons_add(scons_t *s, const rd_kafka_topic_partition_list_t *parts, rd_kafka_queue_t *dest, ferr_t *err);
/** Removes partitions from the assignment; records still queued for them are dropped by
 *  librdkafka (version barrier). */
void scons_remove(scons_t *s, const rd_kafka_topic_partition_list_t *parts);
/** Pauses or resumes partitions (rd_kafka_pause/resume_partitions). While paused nothing is
 *  fetched, so the consumer's thread reads their high watermarks itself every second (for the
 *  lag metric: scons_hwm). */
void scons_pause(scons_t *s, const rd_kafka_topic_partition_list_t *parts, int paused);
/** The high watermark of a partition as last seen: from fetches (librdkafka's cache), or, while
 *  it is paused, from the consumer's own query. -1 if unknown. */
int64_t scons_hwm(scons_t *s, const char *topic, int32_t partition);
/** Asks the consumer's thread to wake the fetchers (see the top of this file); cheap, any
 *  thread, coalesced. */
void scons_wake(scons_t *s);
/** The consumer's share of queued.max.messages.kbytes per copy-thread queue. */
long long scons_queue_kbytes(const scons_t *s);

#endif
