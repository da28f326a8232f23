/* rtask_tail: where a partition continues when a task takes it over (rtask_int.h).
 * (For partitions the batch passthrough engine forwards, see batch_tails below.)
 *
 * Every copy carries its source offset in a header (source.offset.header.name, 8 bytes
 * big-endian). A task reads the end of each of its destination partitions and resumes right
 * after the last source offset found there, whatever the offset topic says: a crashed owner
 * may have copied past its last stored offset, and this is why a kill -9 copies nothing
 * twice. Runs in the setup job, before the partitions are assigned. */
#include "worker/rtask_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/bpass.h"
#include "worker/flog.h"
#include "worker/kutil.h"

static tpart_t *find_target_part(rtask_t *t, const char *target, int32_t partition)
{
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition && !strcmp(t->topics[t->parts[i].topic].target, target))
            return &t->parts[i];
    return NULL;
}

static int64_t header_offset(const rtask_t *t, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) ||
        rd_kafka_header_get_last(h, t->pos_header_name, &v, &len) || len != 8)
        return -1;
    uint64_t off = 0;
    for (int i = 0; i < 8; i++)
        off = off << 8 | ((const unsigned char *)v)[i];
    return (int64_t)off;
}

/* Reads the end of every destination partition of this task and records, in dest_last, the
 * highest source offset its records carry in the source-offset header. It reads a window
 * before the high watermark, growing it (x8) while it holds no such header, so aborted
 * transactions or markers at the end do not hide the last copied record. */
/* Only a partition whose stored offset this task's predecessor wrote is resumed from the
 * destination; one without a stored offset, or with one set over REST, starts exactly there. */
static int needs_tail(const tpart_t *tp)
{
    return tp->start >= 0 && !tp->altered;
}

static int read_destination_ends(rtask_t *t)
{
    const wconf_t *wc = t->wc;
    ferr_t err = {0};
    char e[512], gid[300];
    rd_kafka_conf_t *c = kutil_conf_new(wc->bootstrap_servers);
    snprintf(gid, sizeof gid, "ferry-%s-%d-end", t->connector, t->task);
    kutil_conf_set(c, "group.id", gid, NULL, NULL);
    kutil_conf_set(c, "client.id", gid, NULL, NULL);
    kutil_conf_set(c, "enable.auto.commit", "false", NULL, NULL);
    kutil_conf_set(c, "enable.partition.eof", "true", NULL, NULL);
    kutil_conf_set(c, "fetch.wait.max.ms", "10", NULL, NULL);
    if (kutil_conf_apply(c, wc->common, "", &err) || kutil_conf_apply(c, wc->consumer, "consumer.", &err)) {
        rd_kafka_conf_destroy(c);
        rtask_fail(t, "%s", err.msg);
        return -1;
    }
    kutil_conf_set(c, "bootstrap.servers", wc->bootstrap_servers, NULL, NULL);
    kutil_conf_set(c, "isolation.level", "read_committed", NULL, NULL);
    rd_kafka_t *dc = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!dc) {
        rtask_fail(t, "cannot create a consumer for the destination: %s", e);
        return -1;
    }
    int64_t *lo = calloc(t->nparts, sizeof *lo), *hi = calloc(t->nparts, sizeof *hi),
            *window = calloc(t->nparts, sizeof *window);
    int *done = calloc(t->nparts, sizeof *done), left = 0;
    for (int i = 0; i < t->nparts && !atomic_load(&t->stop); i++) {
        tpart_t *tp = &t->parts[i];
        tp->dest_last = -1;
        window[i] = 64;
        if (!needs_tail(tp)) {
            done[i] = 1;
            continue;
        }
        for (int warned = 0; !atomic_load(&t->stop);) {
            rd_kafka_resp_err_t q = rd_kafka_query_watermark_offsets(
                dc, t->topics[tp->topic].target, tp->partition, &lo[i], &hi[i], 10000);
            if (!q)
                break;
            if (!warned++)
                FLOG(WARN, TASK, "task %s-%d: cannot read the end of %s[%d] yet (%s); retrying",
                     t->connector, t->task, t->topics[tp->topic].target, tp->partition, rd_kafka_err2str(q));
            usleep(500 * 1000);
        }
        done[i] = hi[i] <= lo[i];
        left += !done[i];
    }
    while (left > 0 && !atomic_load(&t->stop)) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
        int *eof = calloc(t->nparts, sizeof *eof), waiting = 0;
        for (int i = 0; i < t->nparts; i++)
            if (!done[i]) {
                int64_t from = hi[i] - window[i] > lo[i] ? hi[i] - window[i] : lo[i];
                rd_kafka_topic_partition_list_add(l, t->topics[t->parts[i].topic].target,
                                                  t->parts[i].partition)->offset = from;
                waiting++;
            }
        rd_kafka_assign(dc, l);
        rd_kafka_topic_partition_list_destroy(l);
        int64_t deadline = kutil_now_ms() + 15000;
        while (waiting > 0 && !atomic_load(&t->stop) && kutil_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(dc, 100);
            if (!m)
                continue;
            tpart_t *tp = m->rkt ? find_target_part(t, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
            int i = tp ? (int)(tp - t->parts) : -1;
            if (i >= 0 && !done[i] && !eof[i]) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->offset >= hi[i]) {
                    eof[i] = 1;
                    waiting--;
                } else if (!m->err) {
                    int64_t o = header_offset(t, m);
                    if (o > tp->dest_last) {
                        tp->dest_last = o;
                        tp->dest_last_at = m->offset;
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        for (int i = 0; i < t->nparts; i++) {
            if (done[i] || !eof[i])
                continue; /* not read to its end in time: read it again */
            if (t->parts[i].dest_last >= 0 || hi[i] - window[i] <= lo[i]) {
                done[i] = 1;
                left--;
            } else {
                window[i] *= 8;
            }
        }
        free(eof);
        rd_kafka_assign(dc, NULL);
    }
    rd_kafka_consumer_close(dc);
    rd_kafka_destroy(dc);
    free(lo);
    free(hi);
    free(window);
    free(done);
    return atomic_load(&t->stop) ? -1 : 0;
}

/* Where each partition resumes: right after the last source offset already at the
 * destination when the header says so, whatever the offset topic says (a crashed owner may
 * have copied past its last stored offset); the stored offset otherwise. Only a task that
 * stored the offset itself is followed this way: a partition without one (a new connector,
 * offsets reset over REST) or with one set over REST starts exactly where it was told, and
 * assign() stores that start at once, so a crash from then on resumes from the destination. */
/* With the batch passthrough engine the copies carry no header (a forwarded batch cannot be
 * changed): the destination's last batch is looked for in the source instead, from the stored
 * offset on (bpass_find_tail; a record-by-record copy's header is read first). Retried while
 * either cluster cannot be read, as the record path does. */
static int batch_tails(rtask_t *t)
{
    for (int i = 0; i < t->nparts && !atomic_load(&t->stop); i++) {
        tpart_t *tp = &t->parts[i];
        if (!needs_tail(tp))
            continue;
        for (int warned = 0; !atomic_load(&t->stop);) {
            ferr_t err = {0};
            if (!bpass_find_tail(t->bp, t->topics[tp->topic].name, t->topics[tp->topic].target, tp->partition,
                                 tp->start, t->pos_header ? t->pos_header_name : NULL, omap_end(&tp->map),
                                 &tp->dest_last, &tp->dest_last_at, &err))
                break;
            if (!warned++)
                FLOG(WARN, TASK, "task %s-%d: cannot read the end of %s[%d] yet (%s); retrying", t->connector,
                     t->task, t->topics[tp->topic].target, tp->partition, err.msg);
            usleep(500 * 1000);
        }
    }
    return atomic_load(&t->stop) ? -1 : 0;
}

int rtask_resume_from_destination(rtask_t *t)
{
    int any = 0;
    for (int i = 0; i < t->nparts; i++) {
        t->parts[i].dest_last = -1;
        any |= needs_tail(&t->parts[i]);
    }
    if ((!t->pos_header && !t->bp) || !any) /* nothing to read: no consumer for it either */
        return 0;
    if (t->bp ? batch_tails(t) : read_destination_ends(t))
        return -1;
    for (int i = 0; i < t->nparts; i++) {
        tpart_t *tp = &t->parts[i];
        if (tp->dest_last < 0 || tp->dest_last + 1 == tp->start || tp->start < 0 || tp->altered)
            continue;
        FLOG(INFO, TASK, "task %s-%d: %s[%d] resumes at %lld, after the last record at the "
             "destination (stored offset: %lld)", t->connector, t->task, t->topics[tp->topic].name,
             tp->partition, (long long)tp->dest_last + 1, (long long)tp->start);
        tp->start = tp->acked = tp->expect = tp->dest_last + 1;
        /* The map ends at the stored offset; the records copied after it are contiguous with
         * it when the last one sits at the same distance (both logs advance by one per record
         * in between), and otherwise at least the last one is known. */
        omap_seg_t *last = tp->map.n ? &tp->map.seg[tp->map.n - 1] : NULL;
        if (last && tp->dest_last_at - tp->dest_last == last->dst - last->src && tp->dest_last >= last->src)
            last->n = tp->dest_last - last->src + 1;
        else
            omap_record(&tp->map, tp->dest_last, tp->dest_last_at);
        tp->map_committed = tp->map;
    }
    return 0;
}

