/* rtask_txn: transactions (exactly.once.source.support=enabled, KIP-618; rtask_int.h).
 *
 * A transactional task has its own producer (a transactional.id per task), its own source
 * consumer and a copy thread of its own, because committing blocks. Records and the offset
 * records that cover them go in one transaction, committed after every batch
 * (transaction.boundary=poll) or every transaction.boundary.interval.ms. An aborted
 * transaction rewinds the task to the last committed positions. */
#include "worker/rtask_int.h"

#include "worker/flog.h"

/* Fences every older producer of this task and aborts its open transaction (transactional
 * mode only). Must precede reading the destination's end, which an open transaction hides. */
int rtask_txn_init(rtask_t *t)
{
    if (!t->txn)
        return 0;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(t->prod, 30000);
        if (!e) {
            FLOG(INFO, TASK, "task %s-%d: transactions started (transactional.id=%s-%s-%d), older "
                 "producers of this task fenced", t->connector, t->task, t->wc->group_id, t->connector, t->task);
            return 0;
        }
        int retry = rd_kafka_error_is_retriable(e) && !atomic_load(&t->stop);
        if (!retry)
            rtask_fail(t, "cannot start transactions on the destination: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (!retry)
            return -1;
    }
}


void rtask_txn_begin(rtask_t *t)
{
    if (!t->txn || t->txn_open)
        return;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(t->prod);
    if (e) {
        rtask_fail(t, "cannot begin a transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    t->txn_open = 1;
}

/* After an aborted transaction nothing it wrote counts: go back to the last committed
 * positions and consume from there again. */
static void abort_and_rewind(rtask_t *t, const char *why)
{
    FLOG(WARN, TASK, "task %s-%d: transaction aborted (%s); copying again from the last commit",
         t->connector, t->task, why);
    t->aborting = 1;
    rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prod, (int)t->wc->task_shutdown_timeout_ms);
    rd_kafka_poll(t->prod, 0);
    rtask_drain_reports(t); /* the purged records' reports count as dropped while aborting is set */
    t->aborting = 0;
    t->txn_open = 0;
    if (e) {
        rtask_fail(t, "cannot abort the transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        tp->acked = tp->written = tp->expect = tp->committed;
        tp->map = tp->map_committed;
        rd_kafka_topic_partition_list_add(l, t->topics[tp->topic].name, tp->partition)->offset = tp->committed;
    }
    /* records taken from the consumer but not produced yet belong to the aborted stretch; the
     * seek's version barrier drops what is still queued (the task has its own consumer) */
    copier_discard_parked(t->ct);
    rd_kafka_error_t *se = rd_kafka_seek_partitions(scons_handle(t->sc), l, 10000);
    rd_kafka_topic_partition_list_destroy(l);
    if (se) {
        rtask_fail(t, "cannot rewind the source consumer: %s", rd_kafka_error_string(se));
        rd_kafka_error_destroy(se);
    }
}

/* Commits the open transaction with the offsets of everything it holds: waits for the
 * records' delivery reports (so acked covers them), adds the offset records, commits. A
 * retriable failure keeps the transaction open for the next attempt; an abortable one aborts
 * and rewinds; anything else (a newer owner fenced this producer) fails the task. */
void rtask_txn_commit(rtask_t *t)
{
    if (!t->txn_open)
        return;
    rd_kafka_resp_err_t fe = rd_kafka_flush(t->prod, (int)t->wc->offset_flush_timeout_ms);
    rtask_drain_reports(t);
    if (fe != RD_KAFKA_RESP_ERR_NO_ERROR)
        return; /* the destination is slow or away: try again at the next boundary */
    if (t->failed)
        return;
    rtask_flush_offsets(t);
    rd_kafka_error_t *e = rd_kafka_commit_transaction(t->prod, (int)t->wc->offset_flush_timeout_ms);
    if (!e) {
        t->txn_open = 0;
        for (int i = 0; i < t->nparts; i++) {
            t->parts[i].committed = t->parts[i].acked >= 0 ? t->parts[i].acked : t->parts[i].committed;
            t->parts[i].map_committed = t->parts[i].map;
        }
        atomic_fetch_add(&t->flushed, 1);
        return;
    }
    if (rd_kafka_error_txn_requires_abort(e))
        abort_and_rewind(t, rd_kafka_error_string(e));
    else if (!rd_kafka_error_is_retriable(e))
        rtask_fail(t, "committing a transaction failed: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
}

