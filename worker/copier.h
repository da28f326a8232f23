/* copier: the threads that copy records, shared by all the tasks of a worker.
 *
 * Why: a thread (and a consumer, and its broker threads) per task made a worker with 64 tasks
 * run ~800 threads, with 12% of the CPU in context switches. Here a fixed pool of copy
 * threads (ferry.copy.threads, default one per core) runs every task: each task lives on one
 * copy thread, which receives its partitions' records (their queues are forwarded to the
 * thread's queue, scons.h), produces them, applies their delivery reports and stores their
 * offsets. A partition is touched by that one thread only, so its state needs no lock.
 * A transactional task gets a copy thread of its own: committing a transaction blocks, and
 * must not hold up other tasks.
 *
 * A copy thread sleeps on an eventfd that its source queues, its tasks' delivery-report
 * inboxes, the producers it polls and control calls all write to; it wakes, serves everything
 * without blocking, and sleeps until the next deadline a task asked for.
 *
 * Threads: copier_new/copier_add/copier_destroy on the h2o loop thread; copier_wake from any
 * thread; copier_queue, copier_map_* only on the copy thread itself (from rtask's step
 * functions). */
#ifndef FERRY_COPIER_H
#define FERRY_COPIER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct copier copier_t;
typedef struct copier_thread copier_thread_t;
struct rtask;
struct scons;

/** Starts @p threads shared copy threads (< 1: one per online core). */
copier_t *copier_new(int threads);
/** Stops and joins every thread; every task must have finished. Accepts NULL. */
void copier_destroy(copier_t *c);
int copier_threads(const copier_t *c);

/** Hands a task whose setup is done to the shared thread with the fewest partitions, or to a
 *  new thread of its own (@p dedicated). The thread calls rtask_copy_begin() on it next. Any
 *  thread. */
void copier_add(copier_t *c, struct rtask *t, int npartitions, int dedicated);
/** Makes the thread serve its tasks now. Any thread; cheap, coalesced. */
void copier_wake(copier_thread_t *ct);
/** The eventfd a librdkafka queue served by this thread signals (rd_kafka_queue_io_event_enable,
 *  with an 8-byte payload: copier_event_payload). */
int copier_event_fd(const copier_thread_t *ct);
extern const uint64_t copier_event_payload;

/** Drops the records this thread took from its queues but could not produce yet (a
 *  transactional task rewinding after an abort; its thread serves it alone). Copy thread only. */
void copier_discard_parked(copier_thread_t *ct);
/** This thread's queue for records of shared consumer @p sc (created on first use). Copy
 *  thread only. */
rd_kafka_queue_t *copier_queue(copier_thread_t *ct, struct scons *sc);
/** Routes the records of @p topic[@p partition] to @p owner (rtask_copy_record). Copy thread only. */
void copier_map_add(copier_thread_t *ct, const char *topic, int32_t partition, void *owner);
void copier_map_del(copier_thread_t *ct, const char *topic, int32_t partition);

#endif
