/* tpool: a small pool of job threads. See tpool.h. */
#include "worker/tpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define IDLE_EXIT_S 5

typedef struct job {
    struct job *next;
    void (*fn)(void *);
    void *arg;
} job_t;

struct tpool {
    pthread_mutex_t lock;
    pthread_cond_t cond, done;
    job_t *head, *tail;
    int max, threads, idle, stop;
};

static void *worker(void *arg)
{
    tpool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += IDLE_EXIT_S;
            p->idle++;
            int rc = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            p->idle--;
            if (rc && !p->head)
                goto out;
        }
        if (!p->head)
            break;
        job_t *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
out:
    p->threads--;
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

tpool_t *tpool_new(int max_threads)
{
    tpool_t *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->max = max_threads < 1 ? 1 : max_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_cond_init(&p->done, &ca);
    pthread_condattr_destroy(&ca);
    return p;
}

void tpool_submit(tpool_t *p, void (*fn)(void *), void *arg)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    if (!p->idle && p->threads < p->max) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, p) == 0)
            p->threads++;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void tpool_destroy(tpool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    while (p->head && !p->threads) { /* queued jobs with no thread left: run them here */
        job_t *j = p->head;
        p->head = j->next;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
    p->tail = p->head ? p->tail : NULL;
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    while (p->threads > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->cond);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
