/* kutil: librdkafka helpers. See kutil.h. */
#include "worker/kutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/cpolicy.h"
#include "worker/flog.h"
#include "worker/jaas.h"

/* Runs on librdkafka's internal threads: only formats and writes a line (flog is thread-safe). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    flog_level_t l = level <= 3 ? FLOG_ERROR : level <= 4 ? FLOG_WARN : level <= 6 ? FLOG_INFO
                                                                                    : FLOG_DEBUG;
    if (flog_enabled(l, FLOG_M_KAFKA))
        flog_write(l, FLOG_M_KAFKA, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

rd_kafka_conf_t *kutil_conf_new(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[256];
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set(conf, "log_level", "4", e, sizeof e);
    if (bootstrap)
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof e);
    return conf;
}

rd_kafka_conf_t *kutil_copy_producer_conf(const char *bootstrap, const char *client_id)
{
    rd_kafka_conf_t *pc = kutil_conf_new(bootstrap);
    kutil_conf_set(pc, "client.id", client_id, NULL, NULL);
    kutil_conf_set(pc, "enable.idempotence", "true", NULL, NULL);
    kutil_conf_set(pc, "linger.ms", "5", NULL, NULL);
    kutil_conf_set(pc, "batch.num.messages", "10000", NULL, NULL);
    kutil_conf_set(pc, "batch.size", "1000000", NULL, NULL);
    kutil_conf_set(pc, "message.timeout.ms", "0", NULL, NULL); /* retry through outages */
    kutil_conf_set(pc, "partitioner", "murmur2_random", NULL, NULL);
    return pc;
}

ferr_code_t kutil_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                           const char *origin, ferr_t *err)
{
    char e[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, key, value, e, sizeof e);
    if (r == RD_KAFKA_CONF_UNKNOWN) {
        /* Java-client-only keys (e.g. max.poll.records) are accepted for compatibility. */
        FLOG(DEBUG, KAFKA, "ignoring %s%s: not a librdkafka property", origin ? origin : "", key);
        return FERR_OK;
    }
    if (r != RD_KAFKA_CONF_OK)
        return ferr_set(err, FERR_INVALID, "Invalid client setting %s%s: %s", origin ? origin : "",
                        key, e);
    return FERR_OK;
}

ferr_code_t kutil_conf_apply(rd_kafka_conf_t *conf, const props_t *p, const char *origin,
                             ferr_t *err)
{
    if (!p)
        return FERR_OK;
    for (size_t i = 0; i < props_count(p); i++) {
        ferr_code_t rc = kutil_conf_set(conf, props_key(p, i), props_value(p, i), origin, err);
        if (rc)
            return rc;
    }
    return FERR_OK;
}

/* The librdkafka keys a sasl.jaas.config stands for, through @p set; no value in a message. */
static ferr_code_t jaas_each(const char *text, const char *prefix, kutil_set_fn *set, void *arg, ferr_t *err)
{
    char why[768];
    props_t *p = props_new();
    ferr_code_t rc = FERR_OK;
    if (jaas_translate(text, NULL, p, why, sizeof why))
        rc = ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY ": %s", prefix, why);
    for (size_t i = 0; !rc && i < props_count(p); i++)
        if (set(arg, props_key(p, i), props_value(p, i), prefix, err))
            rc = ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY
                          ": the client refused %s", prefix, props_key(p, i));
    props_destroy(p);
    return rc;
}

ferr_code_t kutil_each_prefixed(const json_t *cfg, const char *prefix, kutil_set_fn *set, void *arg,
                                ferr_t *err)
{
    size_t pl = strlen(prefix);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)cfg, k, v) {
        if (strncmp(k, prefix, pl) || !k[pl] || !json_is_string(v))
            continue;
        /* the one door from connector configs (REST) into a Kafka client: see cpolicy.h */
        char why[1024];
        if (cpolicy_check_safe(cfg, k, why, sizeof why))
            return ferr_set(err, FERR_INVALID, "%s", why);
        /* Kafka's sasl.jaas.config, which librdkafka refuses, as librdkafka's keys (jaas.h) */
        ferr_code_t rc = !strcmp(k + pl, JAAS_KEY) ? jaas_each(json_string_value(v), prefix, set, arg, err)
                                                   : set(arg, k + pl, json_string_value(v), prefix, err);
        if (rc)
            return rc;
    }
    return FERR_OK;
}

static ferr_code_t conf_set_fn(void *conf, const char *key, const char *value, const char *origin,
                               ferr_t *err)
{
    return kutil_conf_set(conf, key, value, origin, err);
}

ferr_code_t kutil_conf_apply_prefixed(rd_kafka_conf_t *conf, const json_t *cfg,
                                      const char *prefix, ferr_t *err)
{
    return kutil_each_prefixed(cfg, prefix, conf_set_fn, conf, err);
}

int kutil_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, ferr_t *err)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e) {
        ferr_set(err, FERR_KAFKA, "metadata request failed: %s", rd_kafka_err2str(e));
        return -1;
    }
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0) {
            n = md->topics[i].err ? 0 : md->topics[i].partition_cnt;
            break;
        }
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

ferr_code_t kutil_create_topic(rd_kafka_t *rk, const char *topic, int partitions, int rf,
                               const char *const *configs, int timeout_ms, ferr_t *err)
{
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, e, sizeof e);
    if (!nt)
        return ferr_set(err, FERR_INVALID, "cannot create topic %s: %s", topic, e);
    for (int i = 0; configs && configs[i]; i += 2)
        rd_kafka_NewTopic_set_config(nt, configs[i], configs[i + 1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, e, sizeof e);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    ferr_code_t rc = FERR_OK;
    if (!ev) {
        rc = ferr_set(err, FERR_TIMEOUT, "creating topic %s timed out", topic);
    } else if (rd_kafka_event_error(ev)) {
        rc = ferr_set(err, FERR_KAFKA, "creating topic %s failed: %s", topic,
                      rd_kafka_event_error_string(ev));
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
            if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                rc = ferr_set(err, FERR_KAFKA, "creating topic %s failed: %s", topic,
                              rd_kafka_topic_result_error_string(res[i])
                                  ? rd_kafka_topic_result_error_string(res[i])
                                  : rd_kafka_err2str(te));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return rc;
}

char **kutil_topic_configs(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    char e[512];
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, e, sizeof e);
    rd_kafka_DescribeConfigs(rk, &res, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    char **out = NULL;
    if (ev && !rd_kafka_event_error(ev)) {
        size_t nres, nent, n = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
        const rd_kafka_ConfigEntry_t **ents =
            nres && !rd_kafka_ConfigResource_error(rs[0]) ? rd_kafka_ConfigResource_configs(rs[0], &nent) : NULL;
        out = calloc(2 * (ents ? nent : 0) + 1, sizeof(char *));
        for (size_t i = 0; ents && i < nent; i++) {
            if (rd_kafka_ConfigEntry_source(ents[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG ||
                rd_kafka_ConfigEntry_is_read_only(ents[i]) || rd_kafka_ConfigEntry_is_sensitive(ents[i]) ||
                !rd_kafka_ConfigEntry_value(ents[i]))
                continue;
            out[n++] = strdup(rd_kafka_ConfigEntry_name(ents[i]));
            out[n++] = strdup(rd_kafka_ConfigEntry_value(ents[i]));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
    return out;
}

void kutil_configs_free(char **configs)
{
    for (size_t i = 0; configs && configs[i]; i++)
        free(configs[i]);
    free(configs);
}

int64_t kutil_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kutil_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kutil_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

int kutil_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &ts);
}

int kutil_stats_retries(const char *json, size_t len, uint64_t *out)
{
    json_t *j = json_loadb(json, len, 0, NULL), *b;
    const char *name;
    *out = 0;
    json_object_foreach(json_object_get(j, "brokers"), name, b) *out +=
        (uint64_t)json_integer_value(json_object_get(b, "txretries"));
    int rc = j ? 0 : -1;
    json_decref(j);
    return rc;
}
