/* kwire_mock_test: kwire against a real peer, librdkafka 2.0.2's mock cluster, in-process.
 *
 * librdkafka produces a few thousand records (keys, null keys, null values, four kinds of
 * header, explicit timestamps; one topic uncompressed, one lz4 from an idempotent producer)
 * into a source mock cluster. Then, with plain blocking sockets and kwire only: ApiVersions,
 * Metadata, ListOffsets and Fetch from every partition leader; every batch is checked (CRC,
 * contiguous, offsets in sequence), rewritten and produced to a second mock cluster, one batch
 * per partition per Produce request (the mock mangles more). That is done twice: plain
 * (baseOffset 0, producerId -1) and idempotent (InitProducerId, producerId/epoch, running
 * baseSequence). A librdkafka consumer with check.crcs=true then reads the destination and
 * every record must equal what was produced (partition, offset, key, value, headers,
 * timestamp), and kwire fetches the idempotent copy back to check that each batch's records
 * and header are byte-identical to the source's except for the rewritten fields.
 *
 * KWIRE_CAPTURE=DIR writes the responses seen (and one records blob) as fuzz seeds in the
 * format of tests/fuzz/fuzz_kwire.c: selector byte, version byte, body. */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proto/kwire.h"
#include "tests/unit/cu.h"

#define NTOPICS 2
#define MAXPARTS 3
#define MAXBROKERS 3
#define MAXBATCHES 256
static const char *const topic_names[NTOPICS] = {"plain", "lz4"};
static const int topic_parts[NTOPICS] = {3, 2};
static const int topic_records[NTOPICS] = {2400, 1200};
#define TS0 1700000000000LL

/* ---- the records librdkafka produces (and the destination must hold) ---- */

typedef struct hdr_spec {
    const char *name;
    const void *value; /* NULL = null value */
    size_t len;
} hdr_spec_t;

static const hdr_spec_t hdrs4[] = {{"h-text", "text", 4}, {"h-null", NULL, 0}, {"h-bin", "a\0b", 3}, {"h-empty", "", 0}};

typedef struct rec {
    char key[32], value[96];
    int key_len, value_len; /* -1 = null */
    int nheaders;
    int64_t ts;
} rec_t;

/* Record @p i of topic @p t; it goes to partition i % parts. */
static void rec_gen(int t, int i, rec_t *r)
{
    r->key_len = i % 10 == 9 ? -1 : snprintf(r->key, sizeof r->key, "key-%d-%d", t, i);
    r->value_len = i % 50 == 49 ? -1 : snprintf(r->value, sizeof r->value, "value-%d-%.*s", i, i % 37,
                                                "abcdefghijklmnopqrstuvwxyz0123456789ABC");
    r->nheaders = i % 7 == 0 ? 0 : 4;
    r->ts = TS0 + (int64_t)i * 3;
}

/* ---- clusters and sockets ---- */

typedef struct broker {
    int32_t id;
    char host[64];
    int port, fd;
} broker_t;

typedef struct kcluster {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[256];
    broker_t brokers[MAXBROKERS];
    int nbrokers;
    int32_t leader[NTOPICS][MAXPARTS];
    int16_t v_md, v_fetch, v_produce, v_lo, v_ip;
    int32_t corr;
    kwire_wr_t req, resp; /* the request being made, the last response */
} kcluster_t;

static kcluster_t src, dst;
static const char *capture_dir;

static void capture(const char *name, int selector, int16_t version, const uint8_t *body, size_t len)
{
    if (!capture_dir)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", capture_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fputc(selector, f);
    fputc(version, f);
    fwrite(body, 1, len, f);
    fclose(f);
}

/* The same for a request frame in @p w: selector 64 + its API key, its body after the header. */
static void capture_req(const char *name, const kwire_wr_t *w)
{
    int16_t key, ver;
    int32_t corr;
    size_t hl;
    ferr_t err;
    if (kwire_req_hdr_read(w->buf + 4, w->len - 4, &key, &ver, &corr, &hl, &err) == FERR_OK)
        capture(name, 64 + key, ver, w->buf + 4 + hl, w->len - 4 - hl);
}

static int tcp_connect(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    struct timeval tv = {5, 0}; /* a stuck call fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int io_full(int fd, void *buf, size_t n, bool wr)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = wr ? send(fd, (char *)buf + done, n - done, MSG_NOSIGNAL) : recv(fd, (char *)buf + done, n - done, 0);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* Sends the one request frame in @p req and reads the response frame into @p resp; the body
 * (after the correlation id, which must match) is at resp->buf + 8. @returns 0 or -1. */
static int call(int fd, const kwire_wr_t *req, int32_t corr, kwire_wr_t *resp)
{
    ferr_t err;
    size_t flen = 0;
    int32_t got;
    kwire_wr_reset(resp);
    if (io_full(fd, req->buf, req->len, true) || io_full(fd, kwire_wr_alloc(resp, 4), 4, false) ||
        kwire_frame_len(resp->buf, 4, 64 << 20, &flen, &err) ||
        io_full(fd, kwire_wr_alloc(resp, flen - 4), flen - 4, false) ||
        kwire_resp_hdr_read(resp->buf + 4, resp->len - 4, &got, &err) || got != corr)
        return -1;
    return 0;
}

#define BODY(resp) ((resp)->buf + 4 + KWIRE_RESP_HDR_LEN)
#define BODY_LEN(resp) ((resp)->len - 4 - KWIRE_RESP_HDR_LEN)

/* Starts a request to @p kc: empties kc->req and @returns the header to write it with. */
static kwire_req_hdr_t kc_hdr(kcluster_t *kc, int16_t version)
{
    kwire_wr_reset(&kc->req);
    return (kwire_req_hdr_t){version, ++kc->corr, "kwire-mock-test"};
}

/* Sends kc->req to the broker on @p fd; the response's body is then at BODY(&kc->resp). */
static int kc_call(kcluster_t *kc, int fd) { return call(fd, &kc->req, kc->corr, &kc->resp); }

static int fd_of(kcluster_t *kc, int32_t id)
{
    for (int i = 0; i < kc->nbrokers; i++)
        if (kc->brokers[i].id == id)
            return kc->brokers[i].fd;
    return -1;
}

/* ApiVersions on the bootstrap broker, then Metadata for both topics: brokers and leaders. */
static int kc_discover(kcluster_t *kc, const char *suffix)
{
    char host[64];
    int port;
    ferr_t err;
    if (sscanf(kc->bootstraps, "%63[^:]:%d", host, &port) != 2)
        return -1;
    int fd = tcp_connect(host, port);
    kwire_req_hdr_t h = kc_hdr(kc, 2);
    int rc = -1;
    kwire_apiversions_resp_t av;
    kwire_metadata_resp_t md;
    CU_ASSERT_EQUAL(kwire_apiversions_req_write(&kc->req, &h, &err), FERR_OK);
    if (fd < 0 || kc_call(kc, fd) ||
        kwire_apiversions_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), 2, &av, &err))
        goto out;
    capture("apiversions-v2", KWIRE_API_API_VERSIONS, 2, BODY(&kc->resp), BODY_LEN(&kc->resp));
    kc->v_md = kwire_negotiate(&av, KWIRE_API_METADATA);
    kc->v_fetch = kwire_negotiate(&av, KWIRE_API_FETCH);
    kc->v_produce = kwire_negotiate(&av, KWIRE_API_PRODUCE);
    kc->v_lo = kwire_negotiate(&av, KWIRE_API_LIST_OFFSETS);
    kc->v_ip = kwire_negotiate(&av, KWIRE_API_INIT_PRODUCER_ID);
    kwire_apiversions_resp_dispose(&av);
    /* what the 2.0.2 mock offers, met with kwire's ranges */
    CU_ASSERT(kc->v_md == 2 && kc->v_fetch == 11 && kc->v_produce == 7 && kc->v_lo == 3 && kc->v_ip == 1);

    char names[NTOPICS][32];
    kwire_metadata_req_topic_t topics[NTOPICS];
    for (int t = 0; t < NTOPICS; t++) {
        snprintf(names[t], sizeof names[t], "%s%s", topic_names[t], suffix);
        topics[t].name = names[t];
    }
    kwire_metadata_req_t mreq = {topics, NTOPICS, false};
    h = kc_hdr(kc, kc->v_md);
    CU_ASSERT_EQUAL(kwire_metadata_req_write(&kc->req, &h, &mreq, &err), FERR_OK);
    if (kc_call(kc, fd) ||
        kwire_metadata_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), kc->v_md, &md, &err))
        goto out;
    capture("metadata-v2", KWIRE_API_METADATA, kc->v_md, BODY(&kc->resp), BODY_LEN(&kc->resp));
    capture_req("req-metadata-v2", &kc->req);
    CU_ASSERT_EQUAL(md.n_brokers, MAXBROKERS);
    CU_ASSERT_PTR_NOT_NULL(md.cluster_id);
    for (int i = 0; kc->nbrokers == 0 && i < md.n_brokers && i < MAXBROKERS; i++) { /* connect once */
        broker_t *b = &kc->brokers[i];
        b->id = md.brokers[i].node_id;
        snprintf(b->host, sizeof b->host, "%s", md.brokers[i].host);
        b->port = md.brokers[i].port;
        b->fd = tcp_connect(b->host, b->port);
        CU_ASSERT(b->fd >= 0);
        if (i + 1 == md.n_brokers || i + 1 == MAXBROKERS)
            kc->nbrokers = i + 1;
    }
    for (int t = 0; t < md.n_topics && t < NTOPICS; t++) {
        CU_ASSERT_STRING_EQUAL(md.topics[t].name, names[t]);
        CU_ASSERT_EQUAL(md.topics[t].error_code, 0);
        CU_ASSERT_EQUAL(md.topics[t].n_partitions, topic_parts[t]);
        for (int p = 0; p < md.topics[t].n_partitions && p < MAXPARTS; p++) {
            kwire_metadata_partition_t *mp = &md.topics[t].partitions[p];
            CU_ASSERT_EQUAL(mp->leader_epoch, -1); /* not in v2 */
            kc->leader[t][mp->partition] = mp->leader;
        }
    }
    kwire_metadata_resp_dispose(&md);
    rc = 0;
out:
    CU_ASSERT_EQUAL(rc, 0);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int kc_init(kcluster_t *kc, const char *const *suffixes, int nsuffixes)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    kc->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!kc->owner)
        return -1;
    kc->mc = rd_kafka_mock_cluster_new(kc->owner, MAXBROKERS);
    if (!kc->mc)
        return -1;
    snprintf(kc->bootstraps, sizeof kc->bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(kc->mc));
    for (int s = 0; s < nsuffixes; s++)
        for (int t = 0; t < NTOPICS; t++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", topic_names[t], suffixes[s]);
            if (rd_kafka_mock_topic_create(kc->mc, name, topic_parts[t], 3))
                return -1;
        }
    return 0;
}

static void kc_close(kcluster_t *kc)
{
    for (int i = 0; i < kc->nbrokers; i++)
        if (kc->brokers[i].fd >= 0)
            close(kc->brokers[i].fd);
    if (kc->mc)
        rd_kafka_mock_cluster_destroy(kc->mc);
    if (kc->owner)
        rd_kafka_destroy(kc->owner);
    kwire_wr_dispose(&kc->req);
    kwire_wr_dispose(&kc->resp);
    memset(kc, 0, sizeof *kc);
}

/* ---- librdkafka: produce the source, consume a destination ---- */

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps, const char *const *kv)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    for (; kv && kv[0]; kv += 2)
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            fprintf(stderr, "%s: %s\n", kv[0], errstr);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return rk;
}

static int produce_source(void)
{
    static const char *const plain[] = {"linger.ms", "5", "batch.num.messages", "60", NULL};
    static const char *const lz4[] = {"linger.ms", "5", "batch.num.messages", "60", "compression.codec", "lz4",
                                      "enable.idempotence", "true", NULL};
    const char *const *confs[NTOPICS] = {plain, lz4};
    for (int t = 0; t < NTOPICS; t++) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, src.bootstraps, confs[t]);
        if (!rk)
            return -1;
        for (int i = 0; i < topic_records[t]; i++) {
            rec_t r;
            rec_gen(t, i, &r);
            rd_kafka_headers_t *hs = rd_kafka_headers_new(4);
            for (int h = 0; h < r.nheaders; h++)
                rd_kafka_header_add(hs, hdrs4[h].name, -1, hdrs4[h].value, hdrs4[h].len);
            const char *key = r.key_len < 0 ? NULL : r.key, *value = r.value_len < 0 ? NULL : r.value;
            size_t klen = key ? (size_t)r.key_len : 0, vlen = value ? (size_t)r.value_len : 0;
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic_names[t]), RD_KAFKA_V_PARTITION(i % topic_parts[t]),
                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(r.ts), RD_KAFKA_V_HEADERS(hs),
                RD_KAFKA_V_END);
            if (e) {
                rd_kafka_headers_destroy(hs);
                fprintf(stderr, "producev: %s\n", rd_kafka_err2str(e));
                return -1;
            }
        }
        rd_kafka_resp_err_t e = rd_kafka_flush(rk, 10000);
        rd_kafka_destroy(rk);
        if (e)
            return -1;
    }
    return 0;
}

/* Consumes every partition of the topics ending in @p suffix on @p kc from the beginning and
 * checks each record against rec_gen(): partition, offset, key, value, headers, timestamp. */
static void verify_destination(kcluster_t *kc, const char *suffix)
{
    static const char *const cconf[] = {"group.id", "kwire-verify", "enable.auto.commit", "false",
                                        "check.crcs", "true", "fetch.wait.max.ms", "10",
                                        "queued.min.messages", "1000000", NULL};
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, kc->bootstraps, cconf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(8);
    char names[NTOPICS][32];
    int total = 0, seen = 0, next[NTOPICS][MAXPARTS] = {{0}};
    for (int t = 0; t < NTOPICS; t++) {
        snprintf(names[t], sizeof names[t], "%s%s", topic_names[t], suffix);
        for (int p = 0; p < topic_parts[t]; p++)
            rd_kafka_topic_partition_list_add(tp, names[t], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        total += topic_records[t];
    }
    CU_ASSERT_EQUAL(rd_kafka_assign(rk, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int bad = 0;
    while (seen < total && bad < 5) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "consume %s: %s\n", suffix, rd_kafka_message_errstr(m));
                bad++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        int t = strcmp(rd_kafka_topic_name(m->rkt), names[0]) == 0 ? 0 : 1;
        int p = m->partition;
        /* the i-th record of partition p is record p + i * parts */
        int i = p + next[t][p] * topic_parts[t];
        rec_t r;
        rec_gen(t, i, &r);
        rd_kafka_timestamp_type_t tstype;
        int ok = m->offset == next[t][p] && rd_kafka_message_timestamp(m, &tstype) == r.ts &&
                 tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME &&
                 (r.key_len < 0 ? m->key == NULL : (m->key_len == (size_t)r.key_len && !memcmp(m->key, r.key, m->key_len))) &&
                 (r.value_len < 0 ? m->payload == NULL
                                  : (m->len == (size_t)r.value_len && !memcmp(m->payload, r.value, m->len)));
        rd_kafka_headers_t *hs = NULL;
        size_t nh = rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_header_cnt(hs) : 0;
        ok = ok && nh == (size_t)r.nheaders;
        for (size_t h = 0; ok && h < nh; h++) {
            const char *name;
            const void *val;
            size_t sz;
            ok = !rd_kafka_header_get_all(hs, h, &name, &val, &sz) && !strcmp(name, hdrs4[h].name) &&
                 (hdrs4[h].value ? (val && sz == hdrs4[h].len && !memcmp(val, hdrs4[h].value, sz)) : val == NULL);
        }
        if (!ok) {
            fprintf(stderr, "%s[%d] offset %lld: record %d differs\n", names[t], p, (long long)m->offset, i);
            bad++;
        }
        next[t][p]++;
        seen++;
        rd_kafka_message_destroy(m);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(seen, total);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* ---- the copy, with kwire ---- */

typedef struct part_batches {
    uint8_t *data[MAXBATCHES];
    size_t len[MAXBATCHES];
    int n;
    int64_t end; /* log end offset */
} part_batches_t;

static part_batches_t fetched[NTOPICS][MAXPARTS];

/* ListOffsets (latest) for one partition at version @p v: @returns the offset, -1 on error. */
static int64_t list_end(kcluster_t *kc, const char *topic, int t, int p, int16_t v, ferr_code_t *rc)
{
    kwire_listoffsets_req_partition_t lp = {p, -1, KWIRE_OFFSET_LATEST};
    kwire_listoffsets_req_topic_t lt = {topic, &lp, 1};
    kwire_listoffsets_req_t lr = {0, &lt, 1};
    kwire_listoffsets_resp_t lo;
    ferr_t err;
    int64_t end = -1;
    kwire_req_hdr_t h = kc_hdr(kc, v);
    CU_ASSERT_EQUAL(kwire_listoffsets_req_write(&kc->req, &h, &lr, &err), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(kc_call(kc, fd_of(kc, kc->leader[t][p])), 0);
    *rc = kwire_listoffsets_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), v, &lo, &err);
    if (*rc == FERR_OK) {
        CU_ASSERT(lo.n_topics == 1 && lo.topics[0].n_partitions == 1 && lo.topics[0].partitions[0].error_code == 0);
        end = lo.topics[0].partitions[0].offset;
        kwire_listoffsets_resp_dispose(&lo);
    }
    char name[48];
    snprintf(name, sizeof name, "listoffsets-v%d", v);
    if (t == 0 && p == 0)
        capture(name, KWIRE_API_LIST_OFFSETS, v, BODY(&kc->resp), BODY_LEN(&kc->resp));
    return end;
}

/* One Fetch for one partition from @p offset: appends the complete batches to @p pb.
 * @returns the next offset to fetch, or -1 on error. */
static int64_t fetch_once(kcluster_t *kc, const char *topic, int t, int p, int64_t offset, part_batches_t *pb)
{
    kwire_fetch_req_partition_t fp = {p, -1, offset, -1, 1 << 20};
    kwire_fetch_req_topic_t ft = {topic, &fp, 1};
    kwire_fetch_req_t fr = {10, 1, 4 << 20, 0, &ft, 1, NULL};
    kwire_fetch_resp_t fe;
    ferr_t err;
    int64_t next = -1;
    kwire_req_hdr_t h = kc_hdr(kc, kc->v_fetch);
    CU_ASSERT_EQUAL(kwire_fetch_req_write(&kc->req, &h, &fr, &err), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(kc_call(kc, fd_of(kc, kc->leader[t][p])), 0);
    if (kwire_fetch_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), kc->v_fetch, &fe, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    CU_ASSERT(fe.error_code == 0 && fe.n_topics == 1 && fe.topics[0].n_partitions == 1);
    kwire_fetch_partition_t *fp2 = &fe.topics[0].partitions[0];
    CU_ASSERT(fp2->error_code == 0 && fp2->partition == p && fp2->preferred_read_replica == -1);
    CU_ASSERT(fp2->n_aborted_transactions == 0 && fp2->log_start_offset == 0);
    pb->end = fp2->high_watermark;
    if (offset == 0 && p == 0) {
        char name[48];
        snprintf(name, sizeof name, "fetch-v%d-%s", kc->v_fetch, topic);
        capture(name, KWIRE_API_FETCH, kc->v_fetch, BODY(&kc->resp), BODY_LEN(&kc->resp));
        snprintf(name, sizeof name, "records-%s", topic);
        capture(name, 100, 2, fp2->records, fp2->records_len);
        capture_req("req-fetch-v11", &kc->req);
    }
    kwire_batch_iter_t it;
    kwire_batch_t b;
    kwire_next_t nx;
    next = offset;
    kwire_batch_iter_init(&it, fp2->records, fp2->records_len);
    while ((nx = kwire_batch_next(&it, &b, &err)) == KWIRE_ITEM) {
        CU_ASSERT_EQUAL(b.magic, 2);
        CU_ASSERT(kwire_batch_crc_ok(&b));
        CU_ASSERT(kwire_batch_is_contiguous(&b));
        CU_ASSERT_EQUAL(b.base_offset, next);
        CU_ASSERT_EQUAL(b.compression, t == 1 ? 3 : 0);
        if (kc == &src)
            CU_ASSERT_EQUAL(b.producer_id >= 0, t == 1); /* the lz4 producer was idempotent */
        if (t == 0) { /* uncompressed: walk the records too */
            kwire_record_iter_t ri;
            kwire_record_t rec;
            int n = 0;
            CU_ASSERT_EQUAL(kwire_record_iter_init(&ri, &b, &err), FERR_OK);
            while (kwire_record_next(&ri, &rec, &err) == KWIRE_ITEM)
                CU_ASSERT_EQUAL(rec.offset_delta, n++);
            CU_ASSERT_EQUAL(n, b.record_count);
        }
        CU_ASSERT_FATAL(pb->n < MAXBATCHES);
        pb->data[pb->n] = malloc(b.len);
        memcpy(pb->data[pb->n], b.data, b.len);
        pb->len[pb->n++] = b.len;
        next = b.base_offset + b.last_offset_delta + 1;
    }
    CU_ASSERT(nx == KWIRE_END || nx == KWIRE_PARTIAL);
    kwire_fetch_resp_dispose(&fe);
out:
    return next;
}

static void fetch_all(kcluster_t *kc, const char *suffix, part_batches_t out[NTOPICS][MAXPARTS])
{
    for (int t = 0; t < NTOPICS; t++) {
        char topic[32];
        snprintf(topic, sizeof topic, "%s%s", topic_names[t], suffix);
        for (int p = 0; p < topic_parts[t]; p++) {
            part_batches_t *pb = &out[t][p];
            ferr_code_t rc;
            int64_t end = list_end(kc, topic, t, p, kc->v_lo, &rc);
            CU_ASSERT_EQUAL(rc, FERR_OK);
            CU_ASSERT_EQUAL(end, (topic_records[t] - p + topic_parts[t] - 1) / topic_parts[t]);
            for (int64_t off = 0; off >= 0 && off < end;) {
                int64_t nxt = fetch_once(kc, topic, t, p, off, pb);
                CU_ASSERT_FATAL(nxt > off); /* progress on every fetch (the mock returns one stored batch) */
                off = nxt;
            }
            CU_ASSERT_EQUAL(pb->end, end);
        }
    }
}

static void free_batches(part_batches_t pb[NTOPICS][MAXPARTS])
{
    for (int t = 0; t < NTOPICS; t++)
        for (int p = 0; p < MAXPARTS; p++) {
            for (int i = 0; i < pb[t][p].n; i++)
                free(pb[t][p].data[i]);
            memset(&pb[t][p], 0, sizeof pb[t][p]);
        }
}

/* Produces one rewritten batch; @returns the base offset the broker gave it, -1 on error. */
static int64_t produce_one(kcluster_t *kc, const char *topic, int t, int p, const uint8_t *batch, size_t len,
                           int64_t pid, int16_t epoch, int32_t seq, bool save)
{
    uint8_t *copy = malloc(len);
    ferr_t err;
    int64_t base = -1;
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, batch, len, 0, pid, epoch, seq, -1, &err), FERR_OK);
    kwire_produce_req_partition_t pp = {p, copy, len};
    kwire_produce_req_topic_t pt = {topic, &pp, 1};
    kwire_produce_req_t pr = {-1, 5000, &pt, 1};
    kwire_produce_resp_t out;
    kwire_req_hdr_t h = kc_hdr(kc, kc->v_produce);
    CU_ASSERT_EQUAL(kwire_produce_req_write(&kc->req, &h, &pr, &err), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(kc_call(kc, fd_of(kc, kc->leader[t][p])), 0);
    if (save) {
        capture("produce-v7", KWIRE_API_PRODUCE, kc->v_produce, BODY(&kc->resp), BODY_LEN(&kc->resp));
        capture_req("req-produce-v7", &kc->req);
    }
    if (kwire_produce_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), kc->v_produce, &out, &err) == FERR_OK) {
        kwire_produce_partition_t *op = &out.topics[0].partitions[0];
        if (op->error_code)
            fprintf(stderr, "produce %s[%d]: %s\n", topic, p, kwire_error_name(op->error_code));
        else
            base = op->base_offset;
        CU_ASSERT_EQUAL(op->log_start_offset, 0);
        kwire_produce_resp_dispose(&out);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    free(copy);
    return base;
}

/* InitProducerId on the destination: an idempotent producer id. */
static void init_pid(kcluster_t *kc, int64_t *pid, int16_t *epoch)
{
    kwire_initpid_req_t ir = {60000};
    kwire_initpid_resp_t out;
    ferr_t err;
    kwire_req_hdr_t h = kc_hdr(kc, kc->v_ip);
    CU_ASSERT_EQUAL(kwire_initpid_req_write(&kc->req, &h, &ir, &err), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(kc_call(kc, kc->brokers[0].fd), 0);
    capture("initpid-v1", KWIRE_API_INIT_PRODUCER_ID, kc->v_ip, BODY(&kc->resp), BODY_LEN(&kc->resp));
    CU_ASSERT_EQUAL_FATAL(kwire_initpid_resp_decode(BODY(&kc->resp), BODY_LEN(&kc->resp), kc->v_ip, &out, &err), FERR_OK);
    CU_ASSERT_EQUAL(out.error_code, 0);
    CU_ASSERT(out.producer_id >= 0 && out.producer_epoch >= 0);
    *pid = out.producer_id;
    *epoch = out.producer_epoch;
    kwire_initpid_resp_dispose(&out);
}

/* Copies every fetched batch to the topics ending in @p suffix on the destination. */
static void copy_all(const char *suffix, bool idempotent, int64_t pid, int16_t epoch)
{
    bool saved = false;
    for (int t = 0; t < NTOPICS; t++) {
        char topic[32];
        snprintf(topic, sizeof topic, "%s%s", topic_names[t], suffix);
        for (int p = 0; p < topic_parts[t]; p++) {
            part_batches_t *pb = &fetched[t][p];
            int32_t seq = 0;
            int64_t expect = 0;
            for (int i = 0; i < pb->n; i++) {
                kwire_batch_iter_t it;
                kwire_batch_t b;
                ferr_t err;
                kwire_batch_iter_init(&it, pb->data[i], pb->len[i]);
                kwire_batch_next(&it, &b, &err);
                int64_t base = produce_one(&dst, topic, t, p, pb->data[i], pb->len[i], idempotent ? pid : -1,
                                           idempotent ? epoch : -1, idempotent ? seq : -1, !saved);
                saved = true;
                CU_ASSERT_EQUAL(base, expect); /* the copy keeps the source's offsets */
                expect += b.record_count;
                seq += b.record_count;
            }
        }
    }
}

/* The idempotent copy, fetched back with kwire: batch for batch the source's bytes except for
 * the rewritten header fields, which hold what was written. */
static void compare_batches(int64_t pid, int16_t epoch)
{
    static part_batches_t back[NTOPICS][MAXPARTS];
    fetch_all(&dst, "_idem", back);
    for (int t = 0; t < NTOPICS; t++)
        for (int p = 0; p < topic_parts[t]; p++) {
            part_batches_t *s = &fetched[t][p], *d = &back[t][p];
            CU_ASSERT_EQUAL(d->n, s->n);
            int32_t seq = 0;
            for (int i = 0; i < s->n && i < d->n; i++) {
                kwire_batch_iter_t it;
                kwire_batch_t sb, db;
                ferr_t err;
                kwire_batch_iter_init(&it, s->data[i], s->len[i]);
                kwire_batch_next(&it, &sb, &err);
                kwire_batch_iter_init(&it, d->data[i], d->len[i]);
                CU_ASSERT_EQUAL_FATAL(kwire_batch_next(&it, &db, &err), KWIRE_ITEM);
                CU_ASSERT(db.len == sb.len && db.base_offset == sb.base_offset);
                CU_ASSERT(db.producer_id == pid && db.producer_epoch == epoch && db.base_sequence == seq);
                CU_ASSERT_EQUAL(db.partition_leader_epoch, -1); /* the mock keeps what was sent */
                CU_ASSERT_EQUAL(db.attributes, sb.attributes & ~KWIRE_ATTR_TRANSACTIONAL);
                CU_ASSERT(db.len == sb.len && !memcmp(db.data + 23, sb.data + 23, 20) &&
                          !memcmp(db.data + 57, sb.data + 57, sb.len - 57));
                seq += sb.record_count;
            }
        }
    free_batches(back);
}

static void test_mock_copy(void)
{
    static const char *const ssuffix[] = {""}, *const dsuffix[] = {"", "_idem"};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    capture_dir = getenv("KWIRE_CAPTURE");
    CU_ASSERT_EQUAL_FATAL(kc_init(&src, ssuffix, 1), 0);
    CU_ASSERT_EQUAL_FATAL(kc_init(&dst, dsuffix, 2), 0);
    CU_ASSERT_EQUAL_FATAL(produce_source(), 0);
    CU_ASSERT_EQUAL_FATAL(kc_discover(&src, ""), 0);
    CU_ASSERT_EQUAL_FATAL(kc_discover(&dst, ""), 0);

    /* the mock writes ListOffsets v4+'s LeaderEpoch as an int64: kwire must refuse, not misread */
    ferr_code_t rc;
    int64_t end5 = list_end(&src, "plain", 0, 0, 5, &rc);
    CU_ASSERT(rc == FERR_INVALID || end5 == 800);

    fetch_all(&src, "", fetched);
    copy_all("", false, -1, -1);
    verify_destination(&dst, "");

    int64_t pid;
    int16_t epoch;
    init_pid(&dst, &pid, &epoch);
    CU_ASSERT_EQUAL_FATAL(kc_discover(&dst, "_idem"), 0);
    copy_all("_idem", true, pid, epoch);
    verify_destination(&dst, "_idem");
    compare_batches(pid, epoch);

    free_batches(fetched);
    kc_close(&src);
    kc_close(&dst);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "\nkwire mock copy: %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"librdkafka -> mock -> kwire Fetch, rewrite, Produce -> mock -> librdkafka: identical", test_mock_copy},
    };
    return cu_add_tests("kwire_mock", tests, sizeof tests / sizeof tests[0]);
}
