/* copier: the copy threads. See copier.h.
 *
 * One loop per thread: read the eventfd, take newly handed tasks, retry the records the
 * producer had no room for (in order), drain every source queue without blocking (records
 * go to their partition's owner through a small hash map), let every task serve its delivery
 * reports, flushes and stops, then sleep until woken or until the earliest deadline. */
#include "worker/copier.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/rtask_int.h"
#include "worker/scons.h"

#define BATCH 1024          /* records taken from a queue at once */
#define BLOCKED_RETRY_MS 5  /* how soon records the producer refused are offered again */
#define IDLE_MS 1000        /* the longest sleep */

const uint64_t copier_event_payload = 1;

typedef struct qent {
    struct scons *sc;
    rd_kafka_queue_t *q;
    size_t bytes_since_wake; /* taken from this queue since it last asked for a fetch wake-up */
} qent_t;

typedef struct mapent {
    char *topic; /* NULL: free slot; (char *)1: deleted */
    int32_t partition;
    void *owner;
} mapent_t;

#define MAP_DELETED ((char *)1)

struct copier_thread {
    copier_t *c;
    pthread_t thread;
    int efd;
    int dedicated;
    atomic_int partitions; /* load, for placing new tasks */
    atomic_int finished;   /* a dedicated thread whose task is done: join it */
    pthread_mutex_t lock;  /* inbox, stop */
    rtask_t **inbox;
    size_t ninbox, capinbox;
    int stop;
    /* thread-owned */
    rtask_t **tasks;
    size_t ntasks, captasks;
    qent_t *queues;
    size_t nqueues;
    mapent_t *map;
    size_t mapcap, mapused; /* slots, and slots not NULL (live or deleted) */
    rd_kafka_message_t **parked;
    size_t nparked, parked_at, capparked;
    copier_thread_t *next;
};

struct copier {
    pthread_mutex_t lock; /* threads list */
    copier_thread_t *threads;
    int nshared;
};

/* ---- the partition map (open addressing, FNV-1a of topic and partition) ----------------- */

static uint64_t hash_of(const char *topic, int32_t partition)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)topic; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (h ^ (uint32_t)partition) * 1099511628211ULL;
}

static mapent_t *map_find(copier_thread_t *ct, const char *topic, int32_t partition, int for_insert)
{
    if (!ct->mapcap)
        return NULL;
    size_t mask = ct->mapcap - 1, i = hash_of(topic, partition) & mask;
    mapent_t *tomb = NULL;
    for (size_t probes = 0; probes < ct->mapcap; probes++, i = (i + 1) & mask) {
        mapent_t *e = &ct->map[i];
        if (!e->topic)
            return for_insert ? (tomb ? tomb : e) : NULL;
        if (e->topic == MAP_DELETED) {
            if (!tomb)
                tomb = e;
        } else if (e->partition == partition && !strcmp(e->topic, topic)) {
            return e;
        }
    }
    return for_insert ? tomb : NULL;
}

static void map_grow(copier_thread_t *ct)
{
    mapent_t *old = ct->map;
    size_t oldcap = ct->mapcap;
    ct->mapcap = oldcap ? oldcap * 2 : 256;
    ct->map = calloc(ct->mapcap, sizeof *ct->map);
    if (!ct->map)
        abort();
    ct->mapused = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].topic && old[i].topic != MAP_DELETED) {
            *map_find(ct, old[i].topic, old[i].partition, 1) = old[i];
            ct->mapused++;
        }
    free(old);
}

void copier_map_add(copier_thread_t *ct, const char *topic, int32_t partition, void *owner)
{
    if ((ct->mapused + 1) * 2 > ct->mapcap)
        map_grow(ct);
    mapent_t *e = map_find(ct, topic, partition, 1);
    if (e->topic && e->topic != MAP_DELETED) {
        e->owner = owner;
        return;
    }
    if (!e->topic)
        ct->mapused++;
    *e = (mapent_t){strdup(topic), partition, owner};
}

void copier_map_del(copier_thread_t *ct, const char *topic, int32_t partition)
{
    mapent_t *e = map_find(ct, topic, partition, 0);
    if (!e)
        return;
    free(e->topic);
    e->topic = MAP_DELETED;
    e->owner = NULL;
}

/* ---- queues --------------------------------------------------------------------------- */

rd_kafka_queue_t *copier_queue(copier_thread_t *ct, struct scons *sc)
{
    for (size_t i = 0; i < ct->nqueues; i++)
        if (ct->queues[i].sc == sc)
            return ct->queues[i].q;
    ct->queues = realloc(ct->queues, (ct->nqueues + 1) * sizeof *ct->queues);
    if (!ct->queues)
        abort();
    rd_kafka_queue_t *q = scons_queue_new(sc);
    rd_kafka_queue_io_event_enable(q, ct->efd, &copier_event_payload, sizeof copier_event_payload);
    ct->queues[ct->nqueues++] = (qent_t){sc, q, 0};
    return q;
}

/* Queues of consumers no task of this thread uses any more are dropped (a consumer is
 * destroyed only after its last task, so none of them may outlive it). */
static void drop_unused_queues(copier_thread_t *ct)
{
    for (size_t i = 0; i < ct->nqueues; i++) {
        int used = 0;
        for (size_t t = 0; t < ct->ntasks && !used; t++)
            used = rtask_copy_scons(ct->tasks[t]) == ct->queues[i].sc;
        if (used)
            continue;
        rd_kafka_queue_io_event_enable(ct->queues[i].q, -1, NULL, 0);
        rd_kafka_message_t *m;
        while ((m = rd_kafka_consume_queue(ct->queues[i].q, 0)))
            rd_kafka_message_destroy(m);
        rd_kafka_queue_destroy(ct->queues[i].q);
        ct->queues[i--] = ct->queues[--ct->nqueues];
    }
}

/* ---- the loop --------------------------------------------------------------------------- */

static void *owner_of(copier_thread_t *ct, const rd_kafka_message_t *m)
{
    if (!m->rkt)
        return NULL;
    mapent_t *e = map_find(ct, rd_kafka_topic_name(m->rkt), m->partition, 0);
    return e ? e->owner : NULL;
}

/* Offers one record to its owner. @returns 1 if the producer had no room (the record stays
 * the caller's), else 0 (taken, or dropped: no owner). */
static int route(copier_thread_t *ct, rd_kafka_message_t *m)
{
    void *owner = owner_of(ct, m);
    if (!owner) {
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            FLOG(WARN, TASK, "source: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return 0;
    }
    return rtask_copy_record(owner, m);
}

static void park(copier_thread_t *ct, rd_kafka_message_t **msgs, size_t n)
{
    if (ct->nparked + n > ct->capparked) {
        ct->capparked = (ct->nparked + n) * 2;
        ct->parked = realloc(ct->parked, ct->capparked * sizeof *ct->parked);
        if (!ct->parked)
            abort();
    }
    memcpy(ct->parked + ct->nparked, msgs, n * sizeof *msgs);
    ct->nparked += n;
}

void copier_discard_parked(copier_thread_t *ct)
{
    for (size_t i = ct->parked_at; i < ct->nparked; i++) {
        rtask_copy_forget(ct->parked[i]);
        rd_kafka_message_destroy(ct->parked[i]);
    }
    ct->nparked = ct->parked_at = 0;
}

/* Records refused earlier, offered again in their order. @returns 1 while some are left. */
static int deliver_parked(copier_thread_t *ct)
{
    while (ct->parked_at < ct->nparked) {
        if (route(ct, ct->parked[ct->parked_at]))
            return 1;
        ct->parked_at++;
    }
    ct->nparked = ct->parked_at = 0;
    return 0;
}

/* Drains the source queues while the producer takes records. @returns 1 if it stopped
 * because the producer had no room. */
static int drain_queues(copier_thread_t *ct, rd_kafka_message_t **batch)
{
    for (size_t qi = 0; qi < ct->nqueues; qi++) {
        qent_t *qe = &ct->queues[qi];
        for (;;) {
            ssize_t n = rd_kafka_consume_batch_queue(qe->q, 0, batch, BATCH);
            if (n <= 0)
                break;
            for (ssize_t i = 0; i < n; i++) {
                qe->bytes_since_wake += batch[i]->len + batch[i]->key_len + 64;
                if (route(ct, batch[i])) {
                    park(ct, batch + i, (size_t)(n - i));
                    return 1;
                }
            }
            if (n < BATCH || ct->dedicated) /* a dedicated (transactional) task: one batch per pass */
                break;
        }
        /* The queue is empty now: if a good part of the fetch bound went through it, the
         * fetchers may have stopped at that bound; have them look again (scons.h). */
        if (qe->bytes_since_wake * 2 >= (size_t)scons_queue_kbytes(qe->sc) * 1024) {
            scons_wake(qe->sc);
            qe->bytes_since_wake = 0;
        }
    }
    return 0;
}

static void take_inbox(copier_thread_t *ct, int64_t now)
{
    pthread_mutex_lock(&ct->lock);
    rtask_t **in = ct->inbox;
    size_t n = ct->ninbox;
    ct->inbox = NULL;
    ct->ninbox = ct->capinbox = 0;
    pthread_mutex_unlock(&ct->lock);
    for (size_t i = 0; i < n; i++) {
        if (ct->ntasks == ct->captasks) {
            ct->captasks = ct->captasks ? 2 * ct->captasks : 8;
            ct->tasks = realloc(ct->tasks, ct->captasks * sizeof *ct->tasks);
            if (!ct->tasks)
                abort();
        }
        ct->tasks[ct->ntasks++] = in[i];
        rtask_copy_begin(in[i], ct, now);
    }
    free(in);
}

static void *ct_main(void *arg)
{
    copier_thread_t *ct = arg;
    rd_kafka_message_t **batch = malloc(BATCH * sizeof *batch);
    if (!batch)
        abort();
    for (;;) {
        uint64_t v;
        ssize_t r = read(ct->efd, &v, sizeof v);
        (void)r;
        int64_t now = kutil_now_ms();
        take_inbox(ct, now);
        int blocked = deliver_parked(ct) || drain_queues(ct, batch);
        int64_t next = now + (blocked ? BLOCKED_RETRY_MS : IDLE_MS);
        size_t before = ct->ntasks;
        for (size_t i = 0; i < ct->ntasks; i++) {
            int nparts = rtask_copy_npartitions(ct->tasks[i]);
            if (rtask_copy_service(ct->tasks[i], now, &next)) { /* finished: never touched again */
                atomic_fetch_sub(&ct->partitions, nparts);
                ct->tasks[i--] = ct->tasks[--ct->ntasks];
            }
        }
        if (ct->ntasks != before)
            drop_unused_queues(ct);
        pthread_mutex_lock(&ct->lock);
        int stop = ct->stop && !ct->ninbox && !ct->ntasks;
        pthread_mutex_unlock(&ct->lock);
        if (stop || (ct->dedicated && before && !ct->ntasks))
            break;
        int64_t wait = next - kutil_now_ms();
        struct pollfd pfd = {.fd = ct->efd, .events = POLLIN};
        if (wait > 0)
            poll(&pfd, 1, wait > IDLE_MS ? IDLE_MS : (int)wait);
    }
    for (size_t i = ct->parked_at; i < ct->nparked; i++)
        rd_kafka_message_destroy(ct->parked[i]);
    free(ct->parked);
    free(batch);
    atomic_store(&ct->finished, 1);
    return NULL;
}

/* ---- the pool --------------------------------------------------------------------------- */

static copier_thread_t *thread_new(copier_t *c, int dedicated)
{
    copier_thread_t *ct = calloc(1, sizeof *ct);
    if (!ct)
        abort();
    ct->c = c;
    ct->dedicated = dedicated;
    ct->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ct->efd < 0)
        abort();
    pthread_mutex_init(&ct->lock, NULL);
    pthread_create(&ct->thread, NULL, ct_main, ct);
    ct->next = c->threads;
    c->threads = ct;
    return ct;
}

static void thread_free(copier_thread_t *ct)
{
    pthread_join(ct->thread, NULL);
    for (size_t i = 0; i < ct->nqueues; i++) {
        rd_kafka_queue_io_event_enable(ct->queues[i].q, -1, NULL, 0);
        rd_kafka_queue_destroy(ct->queues[i].q);
    }
    for (size_t i = 0; i < ct->mapcap; i++)
        if (ct->map[i].topic && ct->map[i].topic != MAP_DELETED)
            free(ct->map[i].topic);
    free(ct->map);
    free(ct->queues);
    free(ct->tasks);
    free(ct->inbox);
    close(ct->efd);
    pthread_mutex_destroy(&ct->lock);
    free(ct);
}

/* Joins the dedicated threads whose task is done (caller holds c->lock). */
static void reap(copier_t *c)
{
    for (copier_thread_t **pp = &c->threads; *pp;) {
        copier_thread_t *ct = *pp;
        if (ct->dedicated && atomic_load(&ct->finished)) {
            *pp = ct->next;
            thread_free(ct);
        } else {
            pp = &ct->next;
        }
    }
}

copier_t *copier_new(int threads)
{
    copier_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    if (threads < 1) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->nshared = threads;
    for (int i = 0; i < threads; i++)
        thread_new(c, 0);
    FLOG(INFO, WORKER, "%d copy thread(s)", threads);
    return c;
}

int copier_threads(const copier_t *c)
{
    return c->nshared;
}

void copier_wake(copier_thread_t *ct)
{
    uint64_t one = 1;
    ssize_t w = write(ct->efd, &one, sizeof one);
    (void)w;
}

int copier_event_fd(const copier_thread_t *ct)
{
    return ct->efd;
}

void copier_add(copier_t *c, rtask_t *t, int npartitions, int dedicated)
{
    pthread_mutex_lock(&c->lock);
    reap(c);
    copier_thread_t *best = NULL;
    if (dedicated) {
        best = thread_new(c, 1);
    } else {
        for (copier_thread_t *ct = c->threads; ct; ct = ct->next)
            if (!ct->dedicated && (!best || atomic_load(&ct->partitions) < atomic_load(&best->partitions)))
                best = ct;
    }
    atomic_fetch_add(&best->partitions, npartitions);
    pthread_mutex_lock(&best->lock);
    if (best->ninbox == best->capinbox) {
        best->capinbox = best->capinbox ? 2 * best->capinbox : 8;
        best->inbox = realloc(best->inbox, best->capinbox * sizeof *best->inbox);
        if (!best->inbox)
            abort();
    }
    best->inbox[best->ninbox++] = t;
    pthread_mutex_unlock(&best->lock);
    pthread_mutex_unlock(&c->lock);
    copier_wake(best);
}

void copier_destroy(copier_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    for (copier_thread_t *ct = c->threads; ct; ct = ct->next) {
        pthread_mutex_lock(&ct->lock);
        ct->stop = 1;
        pthread_mutex_unlock(&ct->lock);
        copier_wake(ct);
    }
    while (c->threads) {
        copier_thread_t *ct = c->threads;
        c->threads = ct->next;
        thread_free(ct);
    }
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
