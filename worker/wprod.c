/* wprod: the worker's shared destination producer. See wprod.h. */
#include "worker/wprod.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/mbudget.h"

struct wprod {
    rd_kafka_t *rk;
    wprod_dr_fn *dr;
    pthread_t poller;
    atomic_int stop, closing;
    atomic_uint_fast64_t retries;
    int users; /* loop thread */
};

/* librdkafka's statistics (poller thread): retried produce requests, summed over brokers. */
static void on_stats(wprod_t *wp, const char *json, size_t len)
{
    uint64_t retries;
    if (kutil_stats_retries(json, len, &retries) == 0)
        atomic_store(&wp->retries, retries);
}

/* The producer's events: delivery reports in batches (one lock per task and batch instead of
 * one per record), statistics, errors (librdkafka logs the others). */
static void *poller_main(void *arg)
{
    wprod_t *wp = arg;
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(wp->rk);
    size_t cap = 1024;
    rd_kafka_message_t **msgs = malloc(cap * sizeof *msgs);
    if (!msgs)
        abort();
    while (!atomic_load(&wp->stop)) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_DR: {
            size_t n;
            while ((n = rd_kafka_event_message_array(ev, (const rd_kafka_message_t **)msgs, cap)) > 0)
                wp->dr(msgs, n);
            break;
        }
        case RD_KAFKA_EVENT_STATS:
            on_stats(wp, rd_kafka_event_stats(ev), strlen(rd_kafka_event_stats(ev)));
            break;
        case RD_KAFKA_EVENT_ERROR:
            if (rd_kafka_event_error_is_fatal(ev))
                FLOG(ERROR, KAFKA, "shared destination producer: %s", rd_kafka_event_error_string(ev));
            else
                FLOG(WARN, KAFKA, "shared destination producer: %s", rd_kafka_event_error_string(ev));
            break;
        default:
            break;
        }
        rd_kafka_event_destroy(ev);
    }
    free(msgs);
    rd_kafka_queue_destroy(q);
    return NULL;
}

/* The worker-wide share of ferry.memory.budget.bytes; the producer.* keys the user set win. */
static void apply_budget(const wconf_t *wc, rd_kafka_conf_t *pc)
{
    char v[64];
    size_t n = sizeof v;
    int64_t msg_max = rd_kafka_conf_get(pc, "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK ? atoll(v) : 0;
    const char *kb = props_get(wc->producer, "queue.buffering.max.kbytes"),
               *msgs = props_get(wc->producer, "queue.buffering.max.messages");
    mbudget_limits_t user = {.producer_kbytes = kb ? atoll(kb) : 0, .producer_messages = msgs ? atoll(msgs) : 0},
                     lim;
    mbudget_worker_producer_limits(wc->memory_budget_bytes, msg_max, &user, &lim);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_kbytes);
    kutil_conf_set(pc, "queue.buffering.max.kbytes", v, NULL, NULL);
    snprintf(v, sizeof v, "%lld", (long long)lim.producer_messages);
    kutil_conf_set(pc, "queue.buffering.max.messages", v, NULL, NULL);
    FLOG(INFO, WORKER, "shared destination producer: queue.buffering.max.kbytes=%lld "
         "queue.buffering.max.messages=%lld", (long long)lim.producer_kbytes, (long long)lim.producer_messages);
}

wprod_t *wprod_new(const wconf_t *wc, wprod_dr_fn *dr, ferr_t *err)
{
    wprod_t *wp = calloc(1, sizeof *wp);
    char e[512];
    /* the same settings as a task's own producer (rtask.c, make_clients) */
    rd_kafka_conf_t *pc = kutil_copy_producer_conf(wc->bootstrap_servers, "ferry-producer");
    if (kutil_conf_apply(pc, wc->common, "", err) || kutil_conf_apply(pc, wc->producer, "producer.", err)) {
        rd_kafka_conf_destroy(pc);
        free(wp);
        return NULL;
    }
    kutil_conf_set(pc, "bootstrap.servers", wc->bootstrap_servers, NULL, NULL);
    wp->dr = dr;
    kutil_conf_set(pc, "statistics.interval.ms", "5000", NULL, NULL);
    rd_kafka_conf_set_events(pc, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_STATS | RD_KAFKA_EVENT_ERROR);
    rd_kafka_conf_set_opaque(pc, wp);
    apply_budget(wc, pc);
    if (!(wp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e))) {
        ferr_set(err, FERR_KAFKA, "cannot create the shared destination producer: %s", e);
        free(wp);
        return NULL;
    }
    pthread_create(&wp->poller, NULL, poller_main, wp);
    return wp;
}

void wprod_keep(wprod_t *wp)
{
    wp->users++;
}

int wprod_release(wprod_t *wp)
{
    return --wp->users;
}

rd_kafka_t *wprod_handle(const wprod_t *wp)
{
    return wp->rk;
}

void wprod_purge(wprod_t *wp)
{
    rd_kafka_purge(wp->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

void wprod_set_closing(wprod_t *wp)
{
    atomic_store(&wp->closing, 1);
}

int wprod_closing(const wprod_t *wp)
{
    return atomic_load(&((wprod_t *)wp)->closing);
}

int wprod_failed(const wprod_t *wp)
{
    return rd_kafka_fatal_error(wp->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

uint64_t wprod_retries(const wprod_t *wp)
{
    return atomic_load(&((wprod_t *)wp)->retries);
}

void wprod_destroy(wprod_t *wp)
{
    if (!wp)
        return;
    atomic_store(&wp->stop, 1);
    pthread_join(wp->poller, NULL);
    if (rd_kafka_outq_len(wp->rk) > 0)
        FLOG(WARN, WORKER, "shared destination producer: %d message(s) left at shutdown",
             rd_kafka_outq_len(wp->rk));
    rd_kafka_destroy(wp->rk);
    free(wp);
}
