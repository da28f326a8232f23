/* tpool: a few threads for blocking jobs that must not run on the loop or a copy thread.
 *
 * Why: a task's setup (reading metadata, creating its own producer, reading the end of its
 * destination partitions) makes blocking calls that take tens of milliseconds to seconds.
 * They ran on the task's own thread; with copy threads shared by many tasks (copier.h) they
 * run here instead, at most `max` at a time, so starting 64 tasks does not start 64 threads.
 * Threads are created when jobs wait and end after a few idle seconds.
 *
 * Threads: tpool_submit from any thread; jobs run on the pool's threads. */
#ifndef FERRY_TPOOL_H
#define FERRY_TPOOL_H

typedef struct tpool tpool_t;

tpool_t *tpool_new(int max_threads);
/** Queues fn(arg). */
void tpool_submit(tpool_t *p, void (*fn)(void *arg), void *arg);
/** Runs the jobs still queued, joins every thread and frees. Accepts NULL. */
void tpool_destroy(tpool_t *p);

#endif
