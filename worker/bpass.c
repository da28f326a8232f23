/* bpass: batch passthrough engines. See bpass.h.
 *
 * The engine thread, one round:
 *
 *   control inbox (partitions added, removed) ─▶ metadata (leaders), producer id when needed
 *   ─▶ one Fetch per source leader for its partitions with room in their queue
 *   ─▶ one Produce per destination leader: the first unsent batch of each of its partitions
 *   ─▶ poll every connection and the wake-up eventfd ─▶ responses: batches checked, rewritten
 *      and queued; acknowledgements reported to the tasks
 *
 * A partition's batches are produced one at a time, in order: the next is sent only once the
 * previous one is acknowledged (a retry resends the same bytes with the same sequence number),
 * so order holds through leader changes and reconnections without reasoning about several
 * requests of one partition in flight. Many partitions share each request. */
#include "worker/bpass.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "worker/flog.h"
#include "worker/kutil.h"
#include "worker/mbudget.h"
#include "worker/rtask_int.h"

#define SRC 0
#define DST 1
#define FETCH_MAX_WAIT_MS 100 /* the shared consumers' default too (scons.c); fetch.wait.max.ms */
#define FETCH_PARTITION_MAX_BYTES (1 << 20)
#define QUEUE_MAX_BYTES (4 << 20)  /* fetched, not yet acknowledged, per partition */
#define FETCH_MAX_BYTES (16 << 20) /* one Fetch's answer */
#define FETCH_MIN_ROOM (64 << 10)  /* below it, wait for acknowledgements before fetching */
#define METADATA_EVERY_MS 30000
#define HWM_EVERY_MS 1000 /* paused partitions' high watermarks (the lag metric), as scons does */
#define RECONNECT_BACKOFF_MS 500
#define REQUEST_TIMEOUT_MS 30000

/* Kafka error codes the engine acts on */
#define E_NONE 0
#define E_OFFSET_OUT_OF_RANGE 1
#define E_CORRUPT_MESSAGE 2
#define E_UNKNOWN_TOPIC_OR_PART 3
#define E_LEADER_NOT_AVAILABLE 5
#define E_NOT_LEADER 6
#define E_REQUEST_TIMED_OUT 7
#define E_MESSAGE_TOO_LARGE 10
#define E_NETWORK_EXCEPTION 13
#define E_RECORD_LIST_TOO_LARGE 18
#define E_NOT_ENOUGH_REPLICAS 19
#define E_NOT_ENOUGH_REPLICAS_AFTER_APPEND 20
#define E_OUT_OF_ORDER_SEQUENCE 45
#define E_DUPLICATE_SEQUENCE 46
#define E_INVALID_PRODUCER_EPOCH 47
#define E_UNKNOWN_PRODUCER_ID 59
#define E_KAFKA_STORAGE_ERROR 56
#define E_FENCED_LEADER_EPOCH 74
#define E_UNKNOWN_LEADER_EPOCH 75
#define E_INVALID_RECORD 87

typedef struct bbatch {
    struct bbatch *next;
    uint8_t *data; /* rewritten, owned */
    size_t len;
    int64_t src_base, src_last, max_ts;
    int32_t records;
    int sent;    /* in a request now */
    int stamped; /* producer id, epoch and sequence written in (at its first send) */
} bbatch_t;

/* The next sequence number of a destination partition under the engine's producer id: kept
 * across the partition's owners (a task that goes and one that comes on this worker share the
 * producer id), reset with a new producer id. */
typedef struct bseq {
    struct bseq *next;
    char *topic;
    int32_t partition;
    int32_t next_seq;
} bseq_t;

typedef struct bpart {
    struct bpart *next;
    struct bpass *bp;
    tpart_t *tp;   /* NULL once released: nothing more is reported */
    rtask_t *t;
    char *src_topic, *dst_topic;
    int32_t partition;
    int64_t fetch_at;       /* next source offset to fetch */
    int32_t src_leader, dst_leader; /* -1: not known */
    bbatch_t *head, *tail;
    size_t queued_bytes;
    int fetching;           /* a Fetch for it is in flight */
    int removing;           /* no more fetches; drop what is queued */
    int paused;             /* no more fetches for now */
    int64_t fallback_at;    /* >= 0: stop forwarding there, hand the partition back */
    bseq_t *seq;
    bpass_txn_t txn;        /* read_committed: the source's aborted transactions */
    int nreq;               /* requests in flight that list it: freed only when 0 */
} bpart_t;

typedef struct breq {
    struct breq *next;
    int64_t sent_at;
    int16_t api, version;
    bpart_t **parts; /* fetch: the partitions asked for; produce: those whose head batch is in it */
    int n;
    size_t reserve;  /* a fetch: the bytes its answer may bring (counted in the engine's bound) */
} breq_t;

typedef struct bconn {
    struct bconn *next;
    int side;
    int32_t node;
    char host[256];
    int port;
    kconn_t *c;
    breq_t *head, *tail; /* in flight, oldest first */
    int64_t retry_at;
} bconn_t;

typedef enum { OP_ADD = 1, OP_REMOVE, OP_ABANDON, OP_PAUSE, OP_RESUME } ctl_op_t;

typedef struct ctl {
    struct ctl *next;
    ctl_op_t op;
    tpart_t *tp;
    int64_t from;
} ctl_t;

struct bpass {
    bpass_reg_t *reg;
    bpass_t *next;
    int refs; /* loop thread */
    char *key;
    kconn_conf_t conf[2];
    char *bootstrap[2];
    int read_committed;
    int32_t fetch_wait_ms; /* fetch.wait.max.ms, as the record path's consumer has it */
    pthread_t thread;
    int efd;
    pthread_mutex_t lock; /* ctl, stop */
    ctl_t *ctl;
    int stop;
    /* engine thread */
    bpart_t *parts;
    bconn_t *conns;
    kwire_metadata_resp_t md[2];
    int have_md[2];
    int64_t md_at[2], md_wanted;
    int64_t hwm_at;
    size_t max_bytes;        /* mbudget_batch_bytes(): queued batches + fetch room in flight */
    size_t queued, reserved; /* of it: batches held, and what fetches in flight may bring */
    int64_t pid;  /* -1: ask for one (InitProducerId) before the next Produce */
    int16_t epoch;
    bseq_t *seqs;
    atomic_uint_fast64_t st_batches, st_records, st_bytes, st_fallbacks, st_skipped;
};

struct bpass_reg {
    const wconf_t *wc;
    bpass_t *list;
};

/* ---- reports to the task ------------------------------------------------------------------- */

static void report(bpart_t *p, bpass_report_t kind, int64_t src, int64_t src_last, int64_t dst, int32_t records,
                   size_t bytes, int64_t ts, const char *msg)
{
    if (!p->tp)
        return; /* released: its task may be gone */
    dres_t r = {.tp = p->tp, .kind = kind, .src = src, .src_last = src_last, .dst_offset = dst,
                .records = records, .bytes = bytes, .timestamp = ts, .msg = msg ? strdup(msg) : NULL};
    rtask_batch_report(p->t, &r, kind == BPASS_ACK || kind == BPASS_DROP || kind == BPASS_FAILED);
}

/* ---- partitions -------------------------------------------------------------------------- */

static void batch_free(bbatch_t *b)
{
    free(b->data);
    free(b);
}

/* Drops the queued (unsent) batches of @p p, reported as not written. */
static void drop_queued(bpart_t *p)
{
    bbatch_t **pp = &p->head;
    while (*pp) {
        bbatch_t *b = *pp;
        if (b->sent) {
            pp = &b->next;
            continue;
        }
        *pp = b->next;
        p->queued_bytes -= b->len;
        p->bp->queued -= b->len;
        report(p, BPASS_DROP, b->src_base, b->src_last, -1, 0, 0, 0, NULL);
        batch_free(b);
    }
    p->tail = NULL;
    for (bbatch_t *b = p->head; b; b = b->next)
        p->tail = b;
}

static bpart_t *part_find(bpass_t *bp, const tpart_t *tp)
{
    for (bpart_t *p = bp->parts; p; p = p->next)
        if (p->tp == tp)
            return p;
    return NULL;
}

/* Lets go of the task: the last report about @p p. */
static void release(bpass_t *bp, bpart_t *p)
{
    if (!p->tp)
        return;
    if (!p->removing && p->fallback_at >= 0) { /* handed back: the task continues it */
        atomic_fetch_add(&bp->st_fallbacks, 1);
        report(p, BPASS_FALLBACK, p->fallback_at, p->fallback_at, -1, 0, 0, 0, NULL);
    } else {
        report(p, BPASS_RELEASED, -1, -1, -1, 0, 0, 0, NULL);
    }
    p->tp = NULL;
    p->t = NULL;
}

/* A removed or handed-back partition: released once nothing of it is queued or being fetched,
 * freed once no request in flight lists it. */
static void part_reap(bpass_t *bp, bpart_t *p)
{
    if (p->head || p->fetching)
        return;
    release(bp, p);
    if (p->nreq)
        return;
    for (bpart_t **pp = &bp->parts; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    bpass_txn_dispose(&p->txn);
    free(p->src_topic);
    free(p->dst_topic);
    free(p);
}

/* Drops every batch of @p p, sent or not (a fence, a shutdown): their answers are ignored. */
static void abandon(bpass_t *bp, bpart_t *p)
{
    for (bbatch_t *b = p->head; b; b = b->next)
        if (b->sent) {
            /* written or not, nobody will know: the partition's next batch (another owner's,
             * on this worker) must not follow it in sequence, so a new producer id */
            bp->pid = -1;
            b->sent = 0;
        }
    drop_queued(p);
    p->fetching = 0; /* a fetch in flight is ignored when it comes (removing) */
    release(bp, p);
}

/* Stops forwarding @p p: the record path takes it from the first offset not written, @p at or
 * the first batch still queued (dropped here), whichever is lower; a batch in flight is still
 * answered first (part_reap), and if it fails too, the hand-back moves down to it. */
static void fall_back(bpart_t *p, int64_t at, const char *why)
{
    if (!p->tp)
        return;
    for (bbatch_t *b = p->head; b; b = b->next)
        if (!b->sent && b->src_base < at)
            at = b->src_base;
    if (p->fallback_at >= 0 && p->fallback_at <= at)
        return;
    rtask_t *t = p->t;
    FLOG(INFO, TASK, "task %s-%d: %s[%d] copied record by record from offset %lld on: %s", t->connector, t->task,
         p->src_topic, p->partition, (long long)at, why);
    p->fallback_at = at;
    drop_queued(p);
}

/* ---- connections and metadata -------------------------------------------------------------- */

static void conn_fail(bpass_t *bp, bconn_t *bc, const char *why);

static bconn_t *conn_get(bpass_t *bp, int side, int32_t node)
{
    for (bconn_t *bc = bp->conns; bc; bc = bc->next)
        if (bc->side == side && bc->node == node)
            return bc;
    if (!bp->have_md[side])
        return NULL;
    const kwire_metadata_resp_t *md = &bp->md[side];
    for (int i = 0; i < md->n_brokers; i++)
        if (md->brokers[i].node_id == node) {
            bconn_t *bc = calloc(1, sizeof *bc);
            if (!bc)
                abort();
            bc->side = side;
            bc->node = node;
            snprintf(bc->host, sizeof bc->host, "%s", md->brokers[i].host);
            bc->port = md->brokers[i].port;
            bc->next = bp->conns;
            bp->conns = bc;
            return bc;
        }
    return NULL;
}

/* The connection's kconn, opened if needed (blocking, bounded; retried after a backoff). */
static kconn_t *conn_open(bpass_t *bp, bconn_t *bc, int64_t now)
{
    if (bc->c && kconn_ok(bc->c))
        return bc->c;
    if (bc->c)
        conn_fail(bp, bc, "connection lost");
    if (now < bc->retry_at)
        return NULL;
    ferr_t err = {0};
    bc->c = kconn_open(&bp->conf[bc->side], bc->host, bc->port, 10000, &err);
    if (!bc->c) {
        FLOG(WARN, TASK, "batch passthrough: cannot connect to %s broker %d: %s", bc->side == SRC ? "source" : "destination",
             bc->node, err.msg);
        bc->retry_at = now + RECONNECT_BACKOFF_MS;
        bp->md_wanted = 1;
    }
    return bc->c;
}

/* A broken connection: what was in flight is asked again (fetches) or resent (batches). */
static void conn_fail(bpass_t *bp, bconn_t *bc, const char *why)
{
    FLOG(DEBUG, TASK, "batch passthrough: %s: %s", bc->c ? kconn_peer(bc->c) : bc->host, why);
    for (breq_t *r = bc->head, *next; r; r = next) {
        next = r->next;
        bp->reserved -= r->reserve;
        for (int i = 0; i < r->n; i++) {
            r->parts[i]->nreq--;
            if (r->api == KWIRE_API_FETCH)
                r->parts[i]->fetching = 0;
            else if (r->api == KWIRE_API_PRODUCE && r->parts[i]->head)
                r->parts[i]->head->sent = 0;
        }
        free(r->parts);
        free(r);
    }
    bc->head = bc->tail = NULL;
    kconn_destroy(bc->c);
    bc->c = NULL;
    bc->retry_at = kutil_now_ms() + RECONNECT_BACKOFF_MS;
    bp->md_wanted = 1;
}

/* Metadata of one side from any broker that answers (the bootstrap list first). */
/* Metadata of @p topics (NULL, -1: all) from the first broker of @p side's bootstrap list
 * that answers. @returns 0, or -1 with @p err. */
static int bootstrap_metadata(bpass_t *bp, int side, const char *const *topics, int ntopics,
                              kwire_metadata_resp_t *md, ferr_t *err)
{
    int ok = 0;
    char *list = strdup(bp->bootstrap[side]), *save = NULL;
    if (!list)
        abort();
    ferr_set(err, FERR_KAFKA, "no broker in the bootstrap list");
    for (char *hp = strtok_r(list, ",", &save); hp && !ok; hp = strtok_r(NULL, ",", &save)) {
        while (*hp == ' ')
            hp++;
        char *colon = strrchr(hp, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *host = hp;
        if (*host == '[') { /* [v6]:port */
            host++;
            host[strlen(host) - 1] = '\0';
        }
        kconn_t *c = kconn_open(&bp->conf[side], host, atoi(colon + 1), 10000, err);
        if (!c)
            continue;
        ok = kconn_metadata(c, topics, ntopics, md, 10000, err) == FERR_OK;
        kconn_destroy(c);
    }
    free(list);
    return ok ? 0 : -1;
}

static int read_metadata(bpass_t *bp, int side)
{
    ferr_t err = {0};
    kwire_metadata_resp_t md;
    if (bootstrap_metadata(bp, side, NULL, -1, &md, &err)) {
        FLOG(WARN, TASK, "batch passthrough: cannot read the %s cluster's metadata: %s",
             side == SRC ? "source" : "destination", err.msg);
        return -1;
    }
    if (bp->have_md[side])
        kwire_metadata_resp_dispose(&bp->md[side]);
    bp->md[side] = md;
    bp->have_md[side] = 1;
    bp->md_at[side] = kutil_now_ms();
    return 0;
}

static int32_t md_leader(const kwire_metadata_resp_t *md, const char *topic, int32_t partition)
{
    for (int i = 0; i < md->n_topics; i++) {
        if (strcmp(md->topics[i].name, topic))
            continue;
        for (int j = 0; j < md->topics[i].n_partitions; j++)
            if (md->topics[i].partitions[j].partition == partition)
                return md->topics[i].partitions[j].leader;
    }
    return -1;
}

static int32_t leader_of(const bpass_t *bp, int side, const char *topic, int32_t partition)
{
    return bp->have_md[side] ? md_leader(&bp->md[side], topic, partition) : -1;
}

static void refresh_leaders(bpass_t *bp, int64_t now)
{
    if (!bp->md_wanted && bp->have_md[SRC] && bp->have_md[DST] && now - bp->md_at[SRC] < METADATA_EVERY_MS)
        return;
    if (read_metadata(bp, SRC) || read_metadata(bp, DST))
        return;
    bp->md_wanted = 0;
    for (bpart_t *p = bp->parts; p; p = p->next) {
        p->src_leader = leader_of(bp, SRC, p->src_topic, p->partition);
        p->dst_leader = leader_of(bp, DST, p->dst_topic, p->partition);
    }
}

/* The idempotent producer id (once per engine, from any destination broker). */
static int init_producer(bpass_t *bp, int64_t now)
{
    if (bp->pid >= 0)
        return 0;
    for (bpart_t *p = bp->parts; p; p = p->next) {
        bconn_t *bc = p->dst_leader >= 0 ? conn_get(bp, DST, p->dst_leader) : NULL;
        kconn_t *c = bc ? conn_open(bp, bc, now) : NULL;
        if (!c || kconn_inflight(c))
            continue;
        int16_t v = kconn_version(c, KWIRE_API_INIT_PRODUCER_ID, 0, 1);
        kwire_wr_t w;
        kwire_wr_init(&w);
        kwire_req_hdr_t h = kconn_hdr(c, v);
        kwire_initpid_req_t req = {.transaction_timeout_ms = 60000};
        ferr_t err = {0};
        const uint8_t *body;
        size_t len;
        kwire_initpid_resp_t resp;
        int ok = v >= 0 && kwire_initpid_req_write(&w, &h, &req, &err) == FERR_OK &&
                 kconn_call(c, &w, 10000, &body, &len, &err) == FERR_OK &&
                 kwire_initpid_resp_decode(body, len, v, &resp, &err) == FERR_OK;
        kwire_wr_dispose(&w);
        if (!ok) {
            if (!kconn_ok(c))
                conn_fail(bp, bc, err.msg);
            continue;
        }
        if (!resp.error_code) {
            bp->pid = resp.producer_id;
            bp->epoch = resp.producer_epoch;
            for (bseq_t *q = bp->seqs; q; q = q->next)
                q->next_seq = 0;
            FLOG(INFO, TASK, "batch passthrough: producer id %lld epoch %d", (long long)bp->pid, bp->epoch);
        }
        kwire_initpid_resp_dispose(&resp);
        return bp->pid >= 0 ? 0 : -1;
    }
    return -1;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Queues request @p api (version @p v) listing @p ps on @p bc, to be matched with its answer
 * (they come in order); takes @p ps. @p reserve: bytes its answer may bring (a fetch). */
static void req_push(bpass_t *bp, bconn_t *bc, int16_t api, int16_t v, bpart_t **ps, int n, size_t reserve)
{
    breq_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->api = api;
    r->version = v;
    r->parts = ps;
    r->n = n;
    r->reserve = reserve;
    r->sent_at = kutil_now_ms();
    bp->reserved += reserve;
    for (int i = 0; i < n; i++)
        ps[i]->nreq++;
    if (bc->tail)
        bc->tail->next = r;
    else
        bc->head = r;
    bc->tail = r;
}

typedef int part_pred_t(const bpart_t *p, int32_t node);

static int fetchable(const bpart_t *p, int32_t node)
{
    return p->src_leader == node && !p->fetching && !p->removing && !p->paused && p->fallback_at < 0 &&
           p->queued_bytes < QUEUE_MAX_BYTES;
}

static int producible(const bpart_t *p, int32_t node)
{
    return p->dst_leader == node && p->head && !p->head->sent;
}

static int paused_here(const bpart_t *p, int32_t node)
{
    return p->src_leader == node && p->paused && !p->removing && p->fallback_at < 0 && p->tp;
}

/* A request's partitions: those @p want picks for @p node, grouped by topic (each topic's
 * together, topics in first-seen order). @p ps (malloc'd, NULL if none), @p tn the distinct
 * topic names of @p side and @p start[i]..start[i+1] the partitions of topic i (both with room
 * for every partition). @returns the number of partitions. */
typedef struct pick {
    bpart_t **ps;
    const char **tn;
    int *start;
    int n, nt;
} pick_t;

static int pick(bpass_t *bp, int32_t node, part_pred_t *want, int side, pick_t *out)
{
    memset(out, 0, sizeof *out);
    for (bpart_t *p = bp->parts; p; p = p->next)
        out->n += want(p, node);
    if (!out->n)
        return 0;
    bpart_t **in = calloc((size_t)out->n, sizeof *in);
    out->ps = calloc((size_t)out->n, sizeof *out->ps);
    out->tn = calloc((size_t)out->n, sizeof *out->tn);
    out->start = calloc((size_t)out->n + 1, sizeof *out->start);
    if (!in || !out->ps || !out->tn || !out->start)
        abort();
    int k = 0;
    for (bpart_t *p = bp->parts; p; p = p->next)
        if (want(p, node))
            in[k++] = p;
    for (int i = 0; i < out->n; i++) {
        const char *t = side == SRC ? in[i]->src_topic : in[i]->dst_topic;
        int j;
        for (j = 0; j < out->nt && strcmp(out->tn[j], t); j++)
            ;
        if (j == out->nt)
            out->tn[out->nt++] = t;
    }
    k = 0;
    for (int j = 0; j < out->nt; j++) {
        out->start[j] = k;
        for (int i = 0; i < out->n; i++)
            if (!strcmp(side == SRC ? in[i]->src_topic : in[i]->dst_topic, out->tn[j]))
                out->ps[k++] = in[i];
    }
    out->start[out->nt] = k;
    free(in);
    return out->n;
}

static void pick_dispose(pick_t *pk)
{
    free(pk->ps);
    free(pk->tn);
    free(pk->start);
}

/* One Fetch to a source leader for every partition it leads that has room. */
static void send_fetch(bpass_t *bp, bconn_t *bc, int64_t now)
{
    /* the engine's bound: what is held plus what answers in flight may bring */
    size_t used = bp->queued + bp->reserved;
    if (used + FETCH_MIN_ROOM > bp->max_bytes)
        return;
    size_t room = bp->max_bytes - used;
    if (room > FETCH_MAX_BYTES)
        room = FETCH_MAX_BYTES;
    pick_t pk;
    if (!pick(bp, bc->node, fetchable, SRC, &pk))
        return;
    int n = pk.n;
    /* an answer brings at most a partition's maximum per partition: reserve no more, so that
     * a long poll of a few idle partitions leaves room for the other brokers' fetches */
    if (room > (size_t)n * FETCH_PARTITION_MAX_BYTES)
        room = (size_t)n * FETCH_PARTITION_MAX_BYTES;
    size_t nsrc = 0; /* and each source broker its share of the bound */
    for (bconn_t *x = bp->conns; x; x = x->next)
        nsrc += x->side == SRC;
    if (nsrc > 1 && room > bp->max_bytes / nsrc)
        room = bp->max_bytes / nsrc > FETCH_MIN_ROOM ? bp->max_bytes / nsrc : FETCH_MIN_ROOM;
    kconn_t *c = conn_open(bp, bc, now);
    int16_t v = c ? kconn_version(c, KWIRE_API_FETCH, 4, 11) : -1;
    if (c && v < 0)
        for (int i = 0; i < n; i++)
            fall_back(pk.ps[i], pk.ps[i]->fetch_at, "the source broker offers no Fetch version ferry speaks");
    if (v < 0) {
        pick_dispose(&pk);
        return;
    }
    kwire_fetch_req_topic_t *tt = calloc((size_t)pk.nt, sizeof *tt);
    kwire_fetch_req_partition_t *pp = calloc((size_t)n, sizeof *pp);
    if (!tt || !pp)
        abort();
    int32_t part_max = room < FETCH_PARTITION_MAX_BYTES ? (int32_t)room : FETCH_PARTITION_MAX_BYTES;
    for (int i = 0; i < pk.nt; i++)
        tt[i] = (kwire_fetch_req_topic_t){pk.tn[i], pp + pk.start[i], pk.start[i + 1] - pk.start[i]};
    for (int j = 0; j < n; j++) {
        pp[j] = (kwire_fetch_req_partition_t){pk.ps[j]->partition, -1, pk.ps[j]->fetch_at, -1, part_max};
        pk.ps[j]->fetching = 1; /* the response is matched by topic and partition */
    }
    kwire_fetch_req_t req = {.max_wait_ms = bp->fetch_wait_ms, .min_bytes = 1, .max_bytes = (int32_t)room,
                             .isolation_level = (int8_t)bp->read_committed, .topics = tt, .n_topics = pk.nt};
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_req_hdr_t h = kconn_hdr(c, v);
    ferr_t err = {0};
    if (kwire_fetch_req_write(&w, &h, &req, &err) == FERR_OK && kconn_send(c, &w, REQUEST_TIMEOUT_MS, NULL, &err) == FERR_OK) {
        req_push(bp, bc, KWIRE_API_FETCH, v, pk.ps, n, room);
        pk.ps = NULL;
    } else {
        for (int i = 0; i < n; i++)
            pk.ps[i]->fetching = 0;
        if (!kconn_ok(c))
            conn_fail(bp, bc, err.msg);
    }
    kwire_wr_dispose(&w);
    pick_dispose(&pk);
    free(tt);
    free(pp);
}

/* Kafka's sequence after @p n more records (DefaultRecordBatch.incrementSequence: wraps to 0). */
static int32_t next_sequence(int32_t seq, int32_t n)
{
    return seq > INT32_MAX - n ? n - (INT32_MAX - seq) - 1 : seq + n;
}

/* Of the picked partitions, those whose head batch goes into the request now (stamped with
 * the producer id and the partition's next sequence at its first send); a fenced task's
 * batches are dropped instead. The tasks' gates are locked (each once) and listed in
 * @p gated: held until the request is written, so rtask_fence waits for it. */
static int gate_and_stamp(bpass_t *bp, pick_t *pk, rtask_t **gated, int *ng)
{
    int k = 0;
    for (int i = 0; i < pk->n; i++) {
        bpart_t *p = pk->ps[i];
        int g;
        for (g = 0; g < *ng && gated[g] != p->t; g++)
            ;
        if (g == *ng) {
            pthread_mutex_lock(&p->t->gate);
            gated[(*ng)++] = p->t;
        }
        if (atomic_load(&p->t->fenced)) {
            drop_queued(p);
            continue;
        }
        bbatch_t *b = p->head;
        if (!b->stamped) {
            ferr_t serr = {0};
            if (kwire_batch_rewrite(b->data, b->data, b->len, 0, bp->pid, bp->epoch, p->seq->next_seq, -1, &serr)) {
                fall_back(p, b->src_base, serr.msg);
                continue;
            }
            b->stamped = 1;
            p->seq->next_seq = next_sequence(p->seq->next_seq, b->records);
        }
        pk->ps[k++] = p; /* topics stay grouped: only some are left out */
    }
    return k;
}

/* One Produce to a destination leader: the first batch of each of its partitions with one
 * waiting and none in flight. */
static void send_produce(bpass_t *bp, bconn_t *bc, int64_t now)
{
    pick_t pk;
    if (!pick(bp, bc->node, producible, DST, &pk))
        return;
    kconn_t *c = conn_open(bp, bc, now);
    int16_t v = c ? kconn_version(c, KWIRE_API_PRODUCE, 3, 8) : -1;
    if (c && v < 0)
        for (int i = 0; i < pk.n; i++)
            fall_back(pk.ps[i], pk.ps[i]->head->src_base,
                      "the destination broker offers no Produce version ferry speaks");
    if (v < 0) {
        pick_dispose(&pk);
        return;
    }
    rtask_t **gated = calloc((size_t)pk.n, sizeof *gated);
    kwire_produce_req_topic_t *tt = calloc((size_t)pk.nt, sizeof *tt);
    kwire_produce_req_partition_t *pp = calloc((size_t)pk.n, sizeof *pp);
    if (!gated || !tt || !pp)
        abort();
    int ng = 0, n = gate_and_stamp(bp, &pk, gated, &ng), nt = 0;
    for (int i = 0, j = 0; i < pk.nt; i++) { /* the topics of what is left */
        int first = j;
        while (j < n && !strcmp(pk.ps[j]->dst_topic, pk.tn[i]))
            j++;
        if (j > first)
            tt[nt++] = (kwire_produce_req_topic_t){pk.tn[i], pp + first, j - first};
    }
    for (int j = 0; j < n; j++)
        pp[j] = (kwire_produce_req_partition_t){pk.ps[j]->partition, pk.ps[j]->head->data, pk.ps[j]->head->len};
    kwire_produce_req_t req = {.acks = -1, .timeout_ms = REQUEST_TIMEOUT_MS, .topics = tt, .n_topics = nt};
    kwire_wr_t w;
    kwire_wr_init(&w);
    ferr_t err = {0};
    kwire_req_hdr_t h = kconn_hdr(c, v);
    int sent = n > 0 && kwire_produce_req_write(&w, &h, &req, &err) == FERR_OK &&
               kconn_send(c, &w, REQUEST_TIMEOUT_MS, NULL, &err) == FERR_OK;
    for (int i = 0; sent && i < n; i++)
        pk.ps[i]->head->sent = 1;
    for (int g = 0; g < ng; g++)
        pthread_mutex_unlock(&gated[g]->gate);
    if (sent) {
        req_push(bp, bc, KWIRE_API_PRODUCE, v, pk.ps, n, 0);
        pk.ps = NULL;
    } else if (n > 0 && !kconn_ok(c)) {
        conn_fail(bp, bc, err.msg);
    }
    kwire_wr_dispose(&w);
    pick_dispose(&pk);
    free(gated);
    free(tt);
    free(pp);
}

/* The high watermarks of the paused partitions @p bc's broker leads (nothing fetches them, and
 * the lag metric wants them), pipelined behind whatever is in flight there. */
static void send_offsets(bpass_t *bp, bconn_t *bc)
{
    if (!bc->c || !kconn_ok(bc->c))
        return;
    int16_t v = kconn_version(bc->c, KWIRE_API_LIST_OFFSETS, 1, KWIRE_LISTOFFSETS_SAFE_MAX);
    pick_t pk;
    if (v < 0 || !pick(bp, bc->node, paused_here, SRC, &pk))
        return;
    kwire_listoffsets_req_topic_t *tt = calloc((size_t)pk.nt, sizeof *tt);
    kwire_listoffsets_req_partition_t *pp = calloc((size_t)pk.n, sizeof *pp);
    if (!tt || !pp)
        abort();
    for (int i = 0; i < pk.nt; i++)
        tt[i] = (kwire_listoffsets_req_topic_t){pk.tn[i], pp + pk.start[i], pk.start[i + 1] - pk.start[i]};
    for (int j = 0; j < pk.n; j++)
        pp[j] = (kwire_listoffsets_req_partition_t){pk.ps[j]->partition, -1, KWIRE_OFFSET_LATEST};
    kwire_listoffsets_req_t req = {.isolation_level = 0, .topics = tt, .n_topics = pk.nt};
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_req_hdr_t h = kconn_hdr(bc->c, v);
    ferr_t err = {0};
    if (kwire_listoffsets_req_write(&w, &h, &req, &err) == FERR_OK &&
        kconn_send(bc->c, &w, REQUEST_TIMEOUT_MS, NULL, &err) == FERR_OK) {
        req_push(bp, bc, KWIRE_API_LIST_OFFSETS, v, pk.ps, pk.n, 0);
        pk.ps = NULL;
    } else if (!kconn_ok(bc->c)) {
        conn_fail(bp, bc, err.msg);
    }
    kwire_wr_dispose(&w);
    pick_dispose(&pk);
    free(tt);
    free(pp);
}

/* ---- responses ------------------------------------------------------------------------------ */

static int retriable(int16_t e)
{
    return e == E_UNKNOWN_TOPIC_OR_PART || e == E_LEADER_NOT_AVAILABLE || e == E_NOT_LEADER ||
           e == E_REQUEST_TIMED_OUT || e == E_NETWORK_EXCEPTION || e == E_NOT_ENOUGH_REPLICAS ||
           e == E_NOT_ENOUGH_REPLICAS_AFTER_APPEND || e == E_KAFKA_STORAGE_ERROR || e == E_FENCED_LEADER_EPOCH ||
           e == E_UNKNOWN_LEADER_EPOCH;
}

/* ---- what becomes of a fetched batch (pure; bpass.h) ------------------------------------------ */

void bpass_txn_note(bpass_txn_t *x, int64_t producer_id, int64_t first_offset)
{
    for (int i = 0; i < x->n; i++)
        if (x->pending[i].producer_id == producer_id && x->pending[i].first_offset == first_offset)
            return; /* every Fetch that overlaps it lists it again */
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 8;
        x->pending = realloc(x->pending, (size_t)x->cap * sizeof *x->pending);
        if (!x->pending)
            abort();
    }
    x->pending[x->n++] = (bpass_aborted_t){producer_id, first_offset};
}

void bpass_txn_dispose(bpass_txn_t *x)
{
    free(x->pending);
    free(x->open);
    memset(x, 0, sizeof *x);
}

static int txn_is_open(const bpass_txn_t *x, int64_t pid)
{
    for (int i = 0; i < x->nopen; i++)
        if (x->open[i] == pid)
            return 1;
    return 0;
}

/* Kafka's consumer (read_committed): the aborted transactions that start at or before the
 * batch's last offset are open from there until their producer's marker. */
static void txn_advance(bpass_txn_t *x, const kwire_batch_t *b)
{
    int64_t last = b->base_offset + b->last_offset_delta;
    for (int i = 0; i < x->n;) {
        if (x->pending[i].first_offset > last) {
            i++;
            continue;
        }
        if (!txn_is_open(x, x->pending[i].producer_id)) {
            x->open = realloc(x->open, (size_t)(x->nopen + 1) * sizeof *x->open);
            if (!x->open)
                abort();
            x->open[x->nopen++] = x->pending[i].producer_id;
        }
        x->pending[i] = x->pending[--x->n];
    }
    if (b->is_control) /* its marker (abort, or a commit of one not open: nothing to close) */
        for (int i = 0; i < x->nopen; i++)
            if (x->open[i] == b->producer_id) {
                x->open[i] = x->open[--x->nopen];
                break;
            }
}

bpass_verdict_t bpass_judge(const kwire_batch_t *b, int64_t want, bpass_txn_t *txn, int64_t *at, const char **why)
{
    *at = want;
    *why = NULL;
    if (b->magic != 2) {
        *why = "a batch of an old message format (magic < 2)";
        return BPASS_HANDBACK;
    }
    int64_t last = b->base_offset + b->last_offset_delta;
    if (last < want)
        return BPASS_BEFORE;
    if (b->base_offset < want) {
        *why = "the first batch starts before the wanted offset";
        return BPASS_HANDBACK;
    }
    if (txn && b->producer_id >= 0) {
        txn_advance(txn, b);
        if (!b->is_control && b->is_transactional && txn_is_open(txn, b->producer_id))
            return BPASS_SKIPPED; /* a batch of an aborted transaction */
    }
    if (b->is_control)
        return BPASS_SKIPPED;
    *at = b->base_offset;
    *why = !kwire_batch_crc_ok(b)          ? "a batch whose CRC does not match (corrupt at the source)"
           : !kwire_batch_is_contiguous(b) ? "a batch with offset gaps (compacted)"
           : b->timestamp_type == 1        ? "a batch with LogAppendTime timestamps"
                                           : NULL;
    return *why ? BPASS_HANDBACK : BPASS_FORWARD;
}

/* The batches of one partition of a Fetch response: judged, copied, queued. */
static void take_records(bpass_t *bp, bpart_t *p, const kwire_fetch_partition_t *fp)
{
    for (int i = 0; bp->read_committed && i < fp->n_aborted_transactions; i++)
        bpass_txn_note(&p->txn, fp->aborted_transactions[i].producer_id, fp->aborted_transactions[i].first_offset);
    kwire_batch_iter_t it;
    kwire_batch_iter_init(&it, fp->records, fp->records ? fp->records_len : 0);
    kwire_batch_t b;
    ferr_t err = {0};
    for (;;) {
        kwire_next_t nx = kwire_batch_next(&it, &b, &err);
        if (nx == KWIRE_END || nx == KWIRE_PARTIAL)
            break;
        if (nx == KWIRE_BAD) {
            fall_back(p, p->fetch_at, err.msg);
            return;
        }
        int64_t last = b.base_offset + b.last_offset_delta, at;
        const char *why;
        switch (bpass_judge(&b, p->fetch_at, bp->read_committed ? &p->txn : NULL, &at, &why)) {
        case BPASS_BEFORE:
            continue;
        case BPASS_HANDBACK:
            fall_back(p, at, why);
            return;
        case BPASS_SKIPPED:
            atomic_fetch_add(&bp->st_skipped, 1);
            report(p, BPASS_SKIP, b.base_offset, last, -1, 0, 0, 0, NULL);
            p->fetch_at = last + 1;
            continue;
        case BPASS_FORWARD:
            break;
        }
        bbatch_t *q = calloc(1, sizeof *q);
        if (!q || !(q->data = malloc(b.len)))
            abort();
        memcpy(q->data, b.data, b.len); /* stamped when first sent (send_produce) */
        q->len = b.len;
        q->src_base = b.base_offset;
        q->src_last = last;
        q->records = b.record_count;
        q->max_ts = b.max_timestamp;
        atomic_fetch_add(&p->t->inflight, 1);
        if (p->tail)
            p->tail->next = q;
        else
            p->head = q;
        p->tail = q;
        p->queued_bytes += q->len;
        bp->queued += q->len;
        p->fetch_at = last + 1;
    }
}

static bpart_t *find_in(breq_t *r, const char *topic, int32_t partition, int side)
{
    for (int i = 0; i < r->n; i++)
        if (r->parts[i]->partition == partition &&
            !strcmp(side == SRC ? r->parts[i]->src_topic : r->parts[i]->dst_topic, topic))
            return r->parts[i];
    return NULL;
}

static void on_fetch(bpass_t *bp, breq_t *r, const uint8_t *body, size_t len)
{
    kwire_fetch_resp_t resp;
    ferr_t err = {0};
    for (int i = 0; i < r->n; i++)
        r->parts[i]->fetching = 0;
    if (kwire_fetch_resp_decode(body, len, r->version, &resp, &err)) {
        for (int i = 0; i < r->n; i++)
            fall_back(r->parts[i], r->parts[i]->fetch_at, err.msg);
        return;
    }
    for (int ti = 0; ti < resp.n_topics; ti++)
        for (int pi = 0; pi < resp.topics[ti].n_partitions; pi++) {
            const kwire_fetch_partition_t *fp = &resp.topics[ti].partitions[pi];
            bpart_t *p = find_in(r, resp.topics[ti].topic, fp->partition, SRC);
            if (!p || p->removing || p->fallback_at >= 0)
                continue;
            if (fp->high_watermark >= 0)
                atomic_store_explicit(&p->tp->st_hwm, fp->high_watermark, memory_order_relaxed);
            if (fp->error_code == E_NONE)
                take_records(bp, p, fp);
            else if (retriable(fp->error_code))
                bp->md_wanted = 1;
            else if (fp->error_code == E_OFFSET_OUT_OF_RANGE)
                fall_back(p, p->fetch_at, "the offset is out of range at the source (retention): offset.start decides");
            else
                fall_back(p, p->fetch_at, kwire_error_name(fp->error_code));
        }
    kwire_fetch_resp_dispose(&resp);
}

static void on_offsets(breq_t *r, const uint8_t *body, size_t len)
{
    kwire_listoffsets_resp_t resp;
    ferr_t err = {0};
    if (kwire_listoffsets_resp_decode(body, len, r->version, &resp, &err))
        return; /* a lag figure missed; the next round asks again */
    for (int ti = 0; ti < resp.n_topics; ti++)
        for (int pi = 0; pi < resp.topics[ti].n_partitions; pi++) {
            const kwire_listoffsets_partition_t *lp = &resp.topics[ti].partitions[pi];
            bpart_t *p = find_in(r, resp.topics[ti].topic, lp->partition, SRC);
            if (p && p->tp && !lp->error_code && lp->offset >= 0)
                atomic_store_explicit(&p->tp->st_hwm, lp->offset, memory_order_relaxed);
        }
    kwire_listoffsets_resp_dispose(&resp);
}

static void on_produce(bpass_t *bp, breq_t *r, const uint8_t *body, size_t len)
{
    kwire_produce_resp_t resp;
    ferr_t err = {0};
    int ok = kwire_produce_resp_decode(body, len, r->version, &resp, &err) == FERR_OK;
    for (int i = 0; i < r->n; i++) {
        bpart_t *p = r->parts[i];
        bbatch_t *b = p->head;
        if (!b || !b->sent || !p->tp)
            continue;
        b->sent = 0;
        const kwire_produce_partition_t *pr = NULL;
        for (int ti = 0; ok && ti < resp.n_topics && !pr; ti++)
            if (!strcmp(resp.topics[ti].topic, p->dst_topic))
                for (int pi = 0; pi < resp.topics[ti].n_partitions; pi++)
                    if (resp.topics[ti].partitions[pi].partition == p->partition)
                        pr = &resp.topics[ti].partitions[pi];
        int16_t e = pr ? pr->error_code : -1;
        if (e == E_NONE || e == E_DUPLICATE_SEQUENCE) {
            p->head = b->next;
            if (!p->head)
                p->tail = NULL;
            p->queued_bytes -= b->len;
            bp->queued -= b->len;
            atomic_fetch_add(&bp->st_batches, 1);
            atomic_fetch_add(&bp->st_records, (uint64_t)b->records);
            atomic_fetch_add(&bp->st_bytes, b->len);
            report(p, BPASS_ACK, b->src_base, b->src_last, e == E_NONE ? pr->base_offset : -1, b->records, b->len,
                   b->max_ts, NULL);
            batch_free(b);
        } else if (e == -1 || retriable(e)) {
            bp->md_wanted = 1; /* resent (same bytes, same sequence) once the leader is known */
        } else if (e == E_OUT_OF_ORDER_SEQUENCE || e == E_INVALID_PRODUCER_EPOCH || e == E_UNKNOWN_PRODUCER_ID) {
            /* the broker lost track of our producer state (or we of its): a new producer id,
             * and the batch is stamped again under it */
            if (bp->pid >= 0)
                FLOG(WARN, TASK, "batch passthrough: %s[%d]: %s; asking for a new producer id", p->dst_topic,
                     p->partition, kwire_error_name(e));
            bp->pid = -1;
            b->stamped = 0;
        } else if (e == E_MESSAGE_TOO_LARGE || e == E_RECORD_LIST_TOO_LARGE || e == E_CORRUPT_MESSAGE ||
                   e == E_INVALID_RECORD) {
            fall_back(p, b->src_base, kwire_error_name(e)); /* drops it with the rest (unsent now) */
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "producing to %s[%d] failed: %s%s%s", p->dst_topic, p->partition,
                     kwire_error_name(e), pr && pr->error_message ? ": " : "", pr && pr->error_message ? pr->error_message : "");
            p->head = b->next;
            if (!p->head)
                p->tail = NULL;
            p->queued_bytes -= b->len;
            bp->queued -= b->len;
            report(p, BPASS_FAILED, b->src_base, b->src_last, -1, 0, 0, 0, msg);
            batch_free(b);
            p->removing = 1; /* the task fails and removes it */
            drop_queued(p);
        }
    }
    if (ok)
        kwire_produce_resp_dispose(&resp);
}

/* Every response that has arrived on @p bc. */
static void serve_conn(bpass_t *bp, bconn_t *bc)
{
    while (bc->c && bc->head) {
        const uint8_t *body;
        size_t len;
        ferr_t err = {0};
        ferr_code_t rc = kconn_recv(bc->c, 0, &body, &len, NULL, &err);
        if (rc == FERR_TIMEOUT)
            return;
        if (rc) {
            conn_fail(bp, bc, err.msg);
            return;
        }
        breq_t *r = bc->head;
        bc->head = r->next;
        if (!bc->head)
            bc->tail = NULL;
        bp->reserved -= r->reserve;
        if (r->api == KWIRE_API_FETCH)
            on_fetch(bp, r, body, len);
        else if (r->api == KWIRE_API_LIST_OFFSETS)
            on_offsets(r, body, len);
        else
            on_produce(bp, r, body, len);
        for (int i = 0; i < r->n; i++)
            r->parts[i]->nreq--;
        free(r->parts);
        free(r);
    }
}

/* ---- the engine thread --------------------------------------------------------------------- */

static bseq_t *seq_of(bpass_t *bp, const char *topic, int32_t partition)
{
    for (bseq_t *q = bp->seqs; q; q = q->next)
        if (q->partition == partition && !strcmp(q->topic, topic))
            return q;
    bseq_t *q = calloc(1, sizeof *q);
    if (!q || !(q->topic = strdup(topic)))
        abort();
    q->partition = partition;
    q->next = bp->seqs;
    bp->seqs = q;
    return q;
}

static void take_ctl(bpass_t *bp)
{
    pthread_mutex_lock(&bp->lock);
    ctl_t *c = bp->ctl;
    bp->ctl = NULL;
    pthread_mutex_unlock(&bp->lock);
    /* the list is newest first: apply oldest first */
    ctl_t *rev = NULL;
    while (c) {
        ctl_t *n = c->next;
        c->next = rev;
        rev = c;
        c = n;
    }
    for (c = rev; c; c = rev) {
        rev = c->next;
        bpart_t *p = part_find(bp, c->tp);
        if (c->op == OP_ADD && !p) {
            p = calloc(1, sizeof *p);
            if (!p)
                abort();
            tpart_t *tp = c->tp;
            p->bp = bp;
            p->tp = tp;
            p->t = tp->task;
            p->src_topic = strdup(tp->task->topics[tp->topic].name);
            p->dst_topic = strdup(tp->task->topics[tp->topic].target);
            p->partition = tp->partition;
            p->fetch_at = c->from;
            p->fallback_at = -1;
            p->seq = seq_of(bp, p->dst_topic, p->partition);
            p->src_leader = leader_of(bp, SRC, p->src_topic, p->partition);
            p->dst_leader = leader_of(bp, DST, p->dst_topic, p->partition);
            if (p->src_leader < 0 || p->dst_leader < 0)
                bp->md_wanted = 1;
            p->next = bp->parts;
            bp->parts = p;
        } else if ((c->op == OP_PAUSE || c->op == OP_RESUME) && p) {
            p->paused = c->op == OP_PAUSE;
        } else if ((c->op == OP_REMOVE || c->op == OP_ABANDON) && p && p->tp) {
            p->removing = 1;
            if (c->op == OP_ABANDON)
                abandon(bp, p);
            else
                drop_queued(p);
        }
        free(c);
    }
}

static void *bp_main(void *arg)
{
    bpass_t *bp = arg;
    struct pollfd *pfd = NULL;
    bconn_t **pconn = NULL;
    size_t cap = 0;
    for (;;) {
        uint64_t v;
        ssize_t rr = read(bp->efd, &v, sizeof v);
        (void)rr;
        take_ctl(bp);
        pthread_mutex_lock(&bp->lock);
        int stop = bp->stop && !bp->parts;
        pthread_mutex_unlock(&bp->lock);
        if (stop)
            break;
        int64_t now = kutil_now_ms();
        for (bconn_t *bc = bp->conns; bc; bc = bc->next) /* an answer overdue: the connection is dead */
            if (bc->head && now - bc->head->sent_at > REQUEST_TIMEOUT_MS + bp->fetch_wait_ms)
                conn_fail(bp, bc, "no answer within the request timeout");
        for (bpart_t *p = bp->parts, *next; p; p = next) { /* removed or handed back, and settled */
            next = p->next;
            if (p->removing || p->fallback_at >= 0)
                part_reap(bp, p);
        }
        if (bp->parts) {
            refresh_leaders(bp, now);
            if (init_producer(bp, now) == 0) {
                for (bconn_t *bc = bp->conns; bc; bc = bc->next)
                    if (bc->side == DST)
                        send_produce(bp, bc, now);
                for (bpart_t *p = bp->parts; p; p = p->next)
                    if (p->src_leader >= 0)
                        conn_get(bp, SRC, p->src_leader);
                for (bpart_t *p = bp->parts; p; p = p->next)
                    if (p->dst_leader >= 0)
                        conn_get(bp, DST, p->dst_leader);
                for (bconn_t *bc = bp->conns; bc; bc = bc->next)
                    if (bc->side == SRC && !bc->head)
                        send_fetch(bp, bc, now);
                if (now - bp->hwm_at >= HWM_EVERY_MS) {
                    bp->hwm_at = now;
                    for (bconn_t *bc = bp->conns; bc; bc = bc->next)
                        if (bc->side == SRC)
                            send_offsets(bp, bc);
                }
            }
        }
        size_t n = 1;
        for (bconn_t *bc = bp->conns; bc; bc = bc->next)
            n++;
        if (n > cap) {
            cap = n * 2;
            pfd = realloc(pfd, cap * sizeof *pfd);
            pconn = realloc(pconn, cap * sizeof *pconn);
            if (!pfd || !pconn)
                abort();
        }
        size_t k = 0;
        int timeout = bp->parts ? 100 : 1000, ready = 0;
        pfd[k++] = (struct pollfd){.fd = bp->efd, .events = POLLIN};
        for (bconn_t *bc = bp->conns; bc; bc = bc->next) {
            if (!bc->c || !bc->head)
                continue;
            if (kconn_pending(bc->c))
                ready = 1;
            pconn[k] = bc;
            pfd[k++] = (struct pollfd){.fd = kconn_fd(bc->c), .events = POLLIN};
        }
        if (poll(pfd, k, ready ? 0 : timeout) < 0 && errno != EINTR)
            FLOG(WARN, TASK, "batch passthrough: poll: %s", strerror(errno));
        for (size_t i = 1; i < k; i++)
            if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) || kconn_pending(pconn[i]->c))
                serve_conn(bp, pconn[i]);
    }
    free(pfd);
    free(pconn);
    return NULL;
}

/* ---- the public side ----------------------------------------------------------------------- */

static void post_ctl(bpass_t *bp, tpart_t *tp, ctl_op_t op, int64_t from)
{
    ctl_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->op = op;
    c->tp = tp;
    c->from = from;
    pthread_mutex_lock(&bp->lock);
    c->next = bp->ctl;
    bp->ctl = c;
    pthread_mutex_unlock(&bp->lock);
    uint64_t one = 1;
    ssize_t w = write(bp->efd, &one, sizeof one);
    (void)w;
}

void bpass_add(bpass_t *bp, tpart_t *tp, int64_t from)
{
    post_ctl(bp, tp, OP_ADD, from);
}

void bpass_pause(bpass_t *bp, tpart_t *tp, int paused)
{
    post_ctl(bp, tp, paused ? OP_PAUSE : OP_RESUME, -1);
}

void bpass_remove(bpass_t *bp, tpart_t *tp, int abandon_)
{
    post_ctl(bp, tp, abandon_ ? OP_ABANDON : OP_REMOVE, -1);
}

void bpass_get_stats(const bpass_t *bp, bpass_stats_t *out)
{
    bpass_t *w = (bpass_t *)bp;
    out->batches = atomic_load(&w->st_batches);
    out->records = atomic_load(&w->st_records);
    out->bytes = atomic_load(&w->st_bytes);
    out->fallbacks = atomic_load(&w->st_fallbacks);
    out->skipped = atomic_load(&w->st_skipped);
}

bpass_reg_t *bpass_reg_new(const wconf_t *wc)
{
    bpass_reg_t *reg = calloc(1, sizeof *reg);
    if (!reg)
        abort();
    reg->wc = wc;
    return reg;
}

void bpass_reg_destroy(bpass_reg_t *reg)
{
    if (!reg)
        return;
    if (reg->list)
        FLOG(ERROR, WORKER, "batch passthrough engine still in use at shutdown");
    free(reg);
}

/* The connection settings of both sides as one string: connectors with the same ones share an
 * engine. */
static char *engine_key(const json_t *config)
{
    json_t *eff = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) if (json_is_string(v) && (!strncmp(k, "src.kafka.", 10) ||
                                                                         !strncmp(k, "src.consumer.", 13) ||
                                                                         !strncmp(k, "dest.kafka.", 11) ||
                                                                         !strncmp(k, "producer.override.", 18)) &&
                                                    strcmp(k, "src.kafka.max.poll.records"))
        json_object_set(eff, k, v);
    char *s = json_dumps(eff, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(eff);
    return s;
}

/* A source consumer setting as the record path's consumer gets it: the connector's
 * src.consumer.* over its src.kafka.* over the worker's consumer.*; NULL if none sets it. */
static const char *consumer_setting(const json_t *config, const wconf_t *wc, const char *key)
{
    static const char *const layers[] = {"src.consumer.", "src.kafka."};
    for (int i = 0; i < 2; i++) {
        char k[256];
        snprintf(k, sizeof k, "%s%s", layers[i], key);
        const char *v = json_string_value(json_object_get(config, k));
        if (v)
            return v;
    }
    return props_get(wc->consumer, key);
}

bpass_t *bpass_get(bpass_reg_t *reg, const json_t *config, ferr_t *err)
{
    char *key = engine_key(config);
    for (bpass_t *bp = reg->list; bp; bp = bp->next)
        if (!strcmp(bp->key, key)) {
            free(key);
            bp->refs++;
            return bp;
        }
    const wconf_t *wc = reg->wc;
    static const char *const src_layers[] = {"src.kafka.", "src.consumer.", NULL};
    static const char *const dst_layers[] = {"dest.kafka.", "producer.override.", NULL};
    bpass_t *bp = calloc(1, sizeof *bp);
    if (!bp)
        abort();
    kconn_conf_init(&bp->conf[SRC]);
    kconn_conf_init(&bp->conf[DST]);
    if (kconn_conf_from(NULL, wc->consumer, "consumer.", config, src_layers, &bp->conf[SRC], err) ||
        kconn_conf_from(wc->common, wc->producer, "producer.", config, dst_layers, &bp->conf[DST], err)) {
        kconn_conf_dispose(&bp->conf[SRC]);
        kconn_conf_dispose(&bp->conf[DST]);
        free(bp);
        free(key);
        return NULL;
    }
    const char *iso = consumer_setting(config, wc, "isolation.level");
    bp->read_committed = iso && !strcmp(iso, "read_committed");
    const char *wait = consumer_setting(config, wc, "fetch.wait.max.ms");
    long wait_ms = wait ? strtol(wait, NULL, 10) : FETCH_MAX_WAIT_MS;
    bp->fetch_wait_ms = wait_ms >= 0 && wait_ms <= 300000 ? (int32_t)wait_ms : FETCH_MAX_WAIT_MS;
    const char *src = json_string_value(json_object_get(config, "src.kafka.bootstrap.servers"));
    bp->bootstrap[SRC] = strdup(src ? src : "");
    bp->bootstrap[DST] = strdup(wc->bootstrap_servers);
    bp->reg = reg;
    bp->refs = 1;
    bp->key = key;
    bp->pid = -1;
    bp->epoch = -1;
    bp->max_bytes = (size_t)mbudget_batch_bytes(wc->memory_budget_bytes);
    bp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&bp->lock, NULL);
    pthread_create(&bp->thread, NULL, bp_main, bp);
    bp->next = reg->list;
    reg->list = bp;
    FLOG(INFO, WORKER, "batch passthrough engine for %s (source %s, destination %s)", bp->bootstrap[SRC],
         kconn_security_name(bp->conf[SRC].security), kconn_security_name(bp->conf[DST].security));
    return bp;
}

void bpass_put(bpass_t *bp)
{
    if (!bp || --bp->refs > 0)
        return;
    for (bpass_t **pp = &bp->reg->list; *pp; pp = &(*pp)->next)
        if (*pp == bp) {
            *pp = bp->next;
            break;
        }
    pthread_mutex_lock(&bp->lock);
    bp->stop = 1;
    pthread_mutex_unlock(&bp->lock);
    uint64_t one = 1;
    ssize_t w = write(bp->efd, &one, sizeof one);
    (void)w;
    pthread_join(bp->thread, NULL);
    for (bconn_t *bc = bp->conns, *next; bc; bc = next) {
        next = bc->next;
        for (breq_t *r = bc->head, *rn; r; r = rn) {
            rn = r->next;
            free(r->parts);
            free(r);
        }
        kconn_destroy(bc->c);
        free(bc);
    }
    for (int s = 0; s < 2; s++) {
        if (bp->have_md[s])
            kwire_metadata_resp_dispose(&bp->md[s]);
        kconn_conf_dispose(&bp->conf[s]);
        free(bp->bootstrap[s]);
    }
    for (bseq_t *q = bp->seqs, *next; q; q = next) {
        next = q->next;
        free(q->topic);
        free(q);
    }
    close(bp->efd);
    pthread_mutex_destroy(&bp->lock);
    free(bp->key);
    free(bp);
}

/* ---- the destination-tail resume (setup job; connections of its own) ------------------------ */

int bpass_same_records(const kwire_batch_t *a, const kwire_batch_t *b)
{
    return a->magic == 2 && b->magic == 2 && a->len == b->len && a->record_count == b->record_count &&
           a->last_offset_delta == b->last_offset_delta && a->base_timestamp == b->base_timestamp &&
           a->max_timestamp == b->max_timestamp && a->compression == b->compression &&
           !memcmp(a->data + KWIRE_BATCH_HDR_LEN, b->data + KWIRE_BATCH_HDR_LEN, a->len - KWIRE_BATCH_HDR_LEN);
}

/* A connection to the leader of @p topic[@p partition] on @p side, or NULL with @p err. */
static kconn_t *open_leader(bpass_t *bp, int side, const char *topic, int32_t partition, ferr_t *err)
{
    kwire_metadata_resp_t md;
    const char *const topics[] = {topic};
    if (bootstrap_metadata(bp, side, topics, 1, &md, err))
        return NULL;
    kconn_t *out = NULL;
    int32_t leader = md_leader(&md, topic, partition);
    for (int i = 0; i < md.n_brokers && leader >= 0 && !out; i++)
        if (md.brokers[i].node_id == leader &&
            !(out = kconn_open(&bp->conf[side], md.brokers[i].host, md.brokers[i].port, 10000, err)))
            break;
    if (leader < 0)
        ferr_set(err, FERR_KAFKA, "no leader for %s[%d]", topic, partition);
    kwire_metadata_resp_dispose(&md);
    return out;
}

/* One Fetch of one partition from @p offset: the response (dispose it) and that partition's
 * part of it, whose records point into @p c's buffer until its next call. */
static ferr_code_t fetch_one(kconn_t *c, const char *topic, int32_t partition, int64_t offset, int max_bytes,
                             kwire_fetch_resp_t *resp, const kwire_fetch_partition_t **fp, ferr_t *err)
{
    int16_t v = kconn_version(c, KWIRE_API_FETCH, 4, 11);
    if (v < 0)
        return ferr_set(err, FERR_UNSUPPORTED, "%s offers no Fetch version ferry speaks", kconn_peer(c));
    kwire_fetch_req_partition_t rp = {partition, -1, offset, -1, max_bytes};
    kwire_fetch_req_topic_t rt = {topic, &rp, 1};
    kwire_fetch_req_t req = {.max_wait_ms = 0, .min_bytes = 0, .max_bytes = max_bytes, .topics = &rt, .n_topics = 1};
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_req_hdr_t h = kconn_hdr(c, v);
    const uint8_t *body;
    size_t len;
    ferr_code_t rc = kwire_fetch_req_write(&w, &h, &req, err);
    if (!rc)
        rc = kconn_call(c, &w, 10000, &body, &len, err);
    kwire_wr_dispose(&w);
    if (!rc)
        rc = kwire_fetch_resp_decode(body, len, v, resp, err);
    if (rc)
        return rc;
    *fp = resp->n_topics == 1 && resp->topics[0].n_partitions == 1 ? &resp->topics[0].partitions[0] : NULL;
    if (!*fp || (*fp)->error_code) {
        rc = ferr_set(err, FERR_KAFKA, "fetching %s[%d] at %lld: %s", topic, partition, (long long)offset,
                      *fp ? kwire_error_name((*fp)->error_code) : "no answer for the partition");
        kwire_fetch_resp_dispose(resp);
    }
    return rc;
}

/* ListOffsets of one partition at @p ts (KWIRE_OFFSET_EARLIEST or _LATEST). */
static ferr_code_t list_offset(kconn_t *c, const char *topic, int32_t partition, int64_t ts, int64_t *out, ferr_t *err)
{
    int16_t v = kconn_version(c, KWIRE_API_LIST_OFFSETS, 1, KWIRE_LISTOFFSETS_SAFE_MAX);
    if (v < 0)
        return ferr_set(err, FERR_UNSUPPORTED, "%s offers no ListOffsets version ferry speaks", kconn_peer(c));
    kwire_listoffsets_req_partition_t rp = {partition, -1, ts};
    kwire_listoffsets_req_topic_t rt = {topic, &rp, 1};
    kwire_listoffsets_req_t req = {.isolation_level = 0, .topics = &rt, .n_topics = 1};
    kwire_wr_t w;
    kwire_wr_init(&w);
    kwire_req_hdr_t h = kconn_hdr(c, v);
    const uint8_t *body;
    size_t len;
    kwire_listoffsets_resp_t resp;
    ferr_code_t rc = kwire_listoffsets_req_write(&w, &h, &req, err);
    if (!rc)
        rc = kconn_call(c, &w, 10000, &body, &len, err);
    kwire_wr_dispose(&w);
    if (!rc)
        rc = kwire_listoffsets_resp_decode(body, len, v, &resp, err);
    if (rc)
        return rc;
    const kwire_listoffsets_partition_t *p =
        resp.n_topics == 1 && resp.topics[0].n_partitions == 1 ? &resp.topics[0].partitions[0] : NULL;
    if (!p || p->error_code)
        rc = ferr_set(err, FERR_KAFKA, "ListOffsets of %s[%d]: %s", topic, partition,
                      p ? kwire_error_name(p->error_code) : "no answer for the partition");
    else
        *out = p->offset;
    kwire_listoffsets_resp_dispose(&resp);
    return rc;
}

/* The source offset in the last record of an uncompressed destination batch, from the header a
 * record-by-record copy carries (source.offset.header.name), or -1. */
static int64_t header_offset(const kwire_batch_t *b, const char *name)
{
    kwire_record_iter_t it;
    kwire_record_t rec;
    ferr_t err = {0};
    int64_t found = -1;
    if (kwire_record_iter_init(&it, b, &err))
        return -1;
    while (kwire_record_next(&it, &rec, &err) == KWIRE_ITEM) {
        kwire_header_iter_t hi;
        kwire_header_t h;
        found = -1;
        kwire_header_iter_init(&hi, &rec);
        while (kwire_header_next(&hi, &h, &err) == KWIRE_ITEM)
            if ((size_t)h.key_len == strlen(name) && !memcmp(h.key, name, (size_t)h.key_len) && h.value_len == 8) {
                uint64_t o = 0;
                for (int i = 0; i < 8; i++)
                    o = o << 8 | h.value[i];
                found = (int64_t)o;
            }
    }
    return found;
}

ferr_code_t bpass_find_tail(bpass_t *bp, const char *src_topic, const char *dst_topic, int32_t partition,
                            int64_t stored, const char *header_name, int64_t mapped_end, int64_t *found_src,
                            int64_t *found_dst, ferr_t *err)
{
    *found_src = *found_dst = -1;
    kconn_t *dc = open_leader(bp, DST, dst_topic, partition, err);
    if (!dc)
        return FERR_KAFKA;
    /* the destination's last batch: fetch from its high watermark - 1 */
    kwire_fetch_resp_t resp;
    const kwire_fetch_partition_t *fp;
    int64_t hwm = -1, lso = -1;
    ferr_code_t rc = list_offset(dc, dst_topic, partition, KWIRE_OFFSET_LATEST, &hwm, err);
    if (!rc)
        rc = list_offset(dc, dst_topic, partition, KWIRE_OFFSET_EARLIEST, &lso, err);
    if (rc) {
        kconn_destroy(dc);
        return rc;
    }
    if (hwm <= 0 || hwm <= lso || (mapped_end >= 0 && hwm <= mapped_end)) {
        kconn_destroy(dc);
        return FERR_OK; /* empty, or nothing copied after the stored offset */
    }
    /* the copies after the stored offset are hwm - mapped_end records, and the source batches
     * they came from start at the stored offset: past that many source records (and as many
     * again for transaction markers and aborted data the copy skipped) there is nothing to
     * find. Without a map the scan goes to the source's end. */
    int64_t after = mapped_end >= 0 ? hwm - mapped_end : -1;
    int64_t limit = after >= 0 ? stored + after + (after > 1000 ? after : 1000) : INT64_MAX;
    rc = fetch_one(dc, dst_topic, partition, hwm - 1, 16 << 20, &resp, &fp, err);
    if (rc) {
        kconn_destroy(dc);
        return rc;
    }
    kwire_batch_iter_t it;
    kwire_batch_t b, d = {0};
    int have = 0;
    kwire_batch_iter_init(&it, fp->records, fp->records ? fp->records_len : 0);
    while (kwire_batch_next(&it, &b, err) == KWIRE_ITEM)
        if (b.magic == 2 && !b.is_control) {
            d = b;
            have = 1;
        }
    uint8_t *dcopy = have ? malloc(d.len) : NULL; /* the batch outlives the connection's buffer */
    if (have) {
        if (!dcopy)
            abort();
        memcpy(dcopy, d.data, d.len);
        d.data = dcopy;
    }
    kwire_fetch_resp_dispose(&resp);
    kconn_destroy(dc);
    if (!have)
        return FERR_OK;
    int64_t d_last = d.base_offset + d.last_offset_delta;
    /* a record-by-record copy says where it came from */
    int64_t h = header_name ? header_offset(&d, header_name) : -1;
    if (h >= 0) {
        *found_src = h;
        *found_dst = d_last;
        free(dcopy);
        return FERR_OK;
    }
    /* a forwarded batch: find the source batch it is a copy of, from the stored offset on */
    kconn_t *sc = open_leader(bp, SRC, src_topic, partition, err);
    if (!sc) {
        free(dcopy);
        return FERR_KAFKA;
    }
    int64_t at = stored, scanned = 0;
    rc = FERR_OK;
    int done = 0;
    if (after > 0) {
        /* where the copy ends when nothing was skipped since the stored offset (the usual
         * case): one Fetch there, before scanning from the stored offset */
        rc = fetch_one(sc, src_topic, partition, stored + after - 1, 4 << 20, &resp, &fp, err);
        if (!rc) {
            kwire_batch_iter_init(&it, fp->records, fp->records ? fp->records_len : 0);
            while (!done && kwire_batch_next(&it, &b, err) == KWIRE_ITEM)
                if (b.magic == 2 && bpass_same_records(&b, &d)) {
                    *found_src = b.base_offset + b.last_offset_delta;
                    *found_dst = d_last;
                    done = 1;
                }
            kwire_fetch_resp_dispose(&resp);
        }
        rc = FERR_OK; /* out of range and the like: the scan decides */
    }
    while (!done && !rc) {
        rc = fetch_one(sc, src_topic, partition, at, 4 << 20, &resp, &fp, err);
        if (rc)
            break;
        int64_t src_hwm = fp->high_watermark, before = at;
        kwire_batch_iter_init(&it, fp->records, fp->records ? fp->records_len : 0);
        while (!done && kwire_batch_next(&it, &b, err) == KWIRE_ITEM) {
            int64_t last = b.base_offset + (b.magic == 2 ? b.last_offset_delta : 0);
            if (b.magic == 2 && bpass_same_records(&b, &d)) {
                *found_src = last;
                *found_dst = d_last;
                done = 1;
            }
            if (last + 1 > at)
                at = last + 1;
            scanned += (int64_t)b.len;
        }
        kwire_fetch_resp_dispose(&resp);
        if (at >= src_hwm || at == before || at > limit)
            done = 1; /* the source's end, nothing more to read, or past where a copy could be */
    }
    FLOG(DEBUG, TASK, "batch passthrough: %s[%d]: destination tail %s in the source after %lld bytes from offset %lld",
         src_topic, partition, *found_src >= 0 ? "found" : "not found", (long long)scanned, (long long)stored);
    kconn_destroy(sc);
    free(dcopy);
    return rc;
}
