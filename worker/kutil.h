/* kutil: small helpers around librdkafka shared by the store, the connector and the
 * tasks: building a client conf from layered property sets, logging through flog,
 * reading topic partition counts, and creating topics with the admin API (which a
 * cluster may refuse: the mock cluster has no CreateTopics). */
#ifndef FERRY_KUTIL_H
#define FERRY_KUTIL_H

#include <librdkafka/rdkafka.h>
#include <jansson.h>
#include <pthread.h>

#include "worker/ferr.h"
#include "worker/props.h"

/** A new conf with ferry's log callback and @p bootstrap set. */
rd_kafka_conf_t *kutil_conf_new(const char *bootstrap);
/** A conf for a destination producer that copies records (a task's own or the worker's shared
 *  one): idempotent, batching, retrying through outages (message.timeout.ms=0), and
 *  murmur2_random as Kafka's Java clients partition. User layers are applied on top. */
rd_kafka_conf_t *kutil_copy_producer_conf(const char *bootstrap, const char *client_id);
/** Sets one property; on failure fills @p err naming @p origin (e.g. "producer.") and the key. */
ferr_code_t kutil_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                           const char *origin, ferr_t *err);
/** Applies every property of @p p (may be NULL). */
ferr_code_t kutil_conf_apply(rd_kafka_conf_t *conf, const props_t *p, const char *origin,
                             ferr_t *err);
/** Applies the string values of @p cfg (a connector config) whose key starts with @p prefix,
 *  with the prefix removed. A key the fixed allow-list of cpolicy.h refuses is not applied:
 *  FERR_INVALID with the reason, whatever validated the config before. sasl.jaas.config is
  *  applied as the librdkafka keys it stands for (jaas_translate()), here and in kutil_each_prefixed(). */
ferr_code_t kutil_conf_apply_prefixed(rd_kafka_conf_t *conf, const json_t *cfg,
                                      const char *prefix, ferr_t *err);

/** A setter for kutil_each_prefixed(): @p key without its prefix, @p origin the prefix. */
typedef ferr_code_t kutil_set_fn(void *arg, const char *key, const char *value, const char *origin,
                                 ferr_t *err);
/** The door itself, for Kafka clients other than librdkafka's (worker/kconn.c): calls @p set
 *  for every string value of @p cfg under @p prefix that cpolicy_check_safe() lets through, in
 *  order; FERR_INVALID with the reason for the first it refuses (nothing after it is set), or
 *  the first error @p set returns. */
ferr_code_t kutil_each_prefixed(const json_t *cfg, const char *prefix, kutil_set_fn *set, void *arg,
                                ferr_t *err);

/** Produce requests retried, summed over the brokers of a librdkafka statistics JSON
 *  ("txretries"). @returns 0, or -1 if @p json does not parse. */
int kutil_stats_retries(const char *json, size_t len, uint64_t *out);

/** Partition count of @p topic from cluster metadata, 0 if the topic does not exist, -1 on error.
 *  Lists all topics, so it never triggers broker-side auto-creation. */
int kutil_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, ferr_t *err);

/** Creates a topic with the admin API. @p configs: NULL or NULL-terminated key,value pairs.
 *  @returns FERR_OK if it was created or already exists, else an error (e.g. the cluster does
 *  not support CreateTopics). */
ferr_code_t kutil_create_topic(rd_kafka_t *rk, const char *topic, int partitions, int rf,
                               const char *const *configs, int timeout_ms, ferr_t *err);

/** The topic-level settings set explicitly on @p topic (DescribeConfigs; entries whose source is
 *  the topic's own dynamic config), as a NULL-terminated key,value array for kutil_create_topic
 *  (free with kutil_configs_free). NULL if the cluster does not answer (e.g. the mock cluster). */
char **kutil_topic_configs(rd_kafka_t *rk, const char *topic, int timeout_ms);
void kutil_configs_free(char **configs);

/** A condition variable whose timed waits use the monotonic clock: a wall-clock step (NTP, an
 *  operator) must not change how long a thread sleeps, least of all the coordinator's. */
void kutil_cond_init(pthread_cond_t *c);
/** Waits on @p c (initialised by kutil_cond_init, @p m held) for at most @p ms milliseconds.
 *  @returns 0 if signalled, ETIMEDOUT otherwise (or spuriously early: callers re-check). */
int kutil_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms);

/** Monotonic milliseconds. Only loop tops and thread bodies read the clock. */
int64_t kutil_now_ms(void);
/** Wall-clock milliseconds since the epoch. */
int64_t kutil_wall_ms(void);

#endif
