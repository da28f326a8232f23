/* repl: the EMRReplicatorSourceConnector — its config definition and validation, topic
 * selection and renaming, the split of source partitions into tasks, and the connector
 * instance: a thread that watches the source cluster's metadata and reports the selected
 * topics (and their partition counts) whenever they change.
 *
 * Threads: the pure functions run anywhere. A repl_conn_t owns one thread and one
 * librdkafka handle per cluster; it reports to the h2o loop through a multithread
 * receiver given by the owner (the herder), and the owner alone calls repl_conn_*(). */
#ifndef FERRY_REPL_H
#define FERRY_REPL_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <regex.h>
#include <stdint.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

#define REPL_CLASS "EMRReplicatorSourceConnector"
#define REPL_TASK_CLASS "EMRReplicatorSourceTask"
#define REPL_VERSION FERRY_VERSION
/** Task-config key holding the task's source partitions: "topic:0,topic:1,...". */
#define REPL_TASK_PARTITIONS "task.partitions"
/** Default name of the header carrying a copied record's source offset (8 bytes, big-endian). */
#define REPL_OFFSET_HEADER "__ferry.offset"

/** @returns 1 if @p cls names this connector: the simple name, the alias without "Connector",
 *  or either behind any dotted package prefix. */
int repl_class_matches(const char *cls);

/** Validates a connector config (string map). @returns the error count; @p infos_out (may be NULL)
 *  receives Kafka Connect's ConfigInfos JSON (new reference). @p msgs_out (may be NULL) receives
 *  the errors as "key: message" lines for the 400 message (malloc'd).
 *  @p wc (may be NULL: config-only checks) is the worker that would run the connector; with it,
 *  topic.rename.format may not rename a selected source topic onto the worker's storage topics
 *  or Kafka's __consumer_offsets/__transaction_state, nor, when src.kafka.bootstrap.servers
 *  shares a broker with the worker's bootstrap.servers, onto itself. Contacts nothing. */
int repl_validate(const json_t *config, const wconf_t *wc, json_t **infos_out, char **msgs_out);

/** Kafka Connect's ConfigKeyInfo list for GET /connector-plugins/{p}/config. New reference. */
json_t *repl_config_defs(void);

/** The consumer groups named in "groups" (trimmed, no duplicates). New reference. */
json_t *repl_groups(const json_t *config);
/** Compiles @p rx as a whole-name match (REG_EXTENDED | REG_NOSUB), refusing patterns too
 *  complex to compile in bounded time and memory (REG_ESPACE). @returns 0 or a REG_ code. */
int repl_regex_compile(regex_t *re, const char *rx);
/** sync.group.offsets.interval.ms (0: translate only on demand). */
long long repl_group_interval_ms(const json_t *config);

/** Target topic for @p topic under @p fmt (${topic} substituted). malloc'd. */
char *repl_rename(const char *fmt, const char *topic);

/** Topic selector built from a connector config. */
typedef struct repl_select repl_select_t;
repl_select_t *repl_select_new(const json_t *config, ferr_t *err);
int repl_select_match(const repl_select_t *s, const char *topic);
void repl_select_destroy(repl_select_t *s);

/** Splits partitions into tasks. @p topics: object topic -> partition count (the selection).
 *  @p prev: array of previous task configs (may be NULL); partitions keep their task where they
 *  can, so a new partition or topic changes only the task that receives it. @returns an array of
 *  partition-list strings ("t:0,t:1"), one per task, at most @p tasks_max, balanced (sizes differ by
 *  at most one). New reference. */
json_t *repl_split(const json_t *topics, const json_t *prev, int tasks_max);

/** Builds task configs: connector config + task.class + task.partitions. New reference. */
json_t *repl_task_configs(const json_t *config, const json_t *split);

/** Partition numbers in task.partitions are below this (Kafka has no such limit, but no topic
 *  comes near it, and a number from a forged record must not size anything). */
#define REPL_MAX_PARTITION 1000000

/** Parses "t:0,t:1" into an array of [topic, partition] (0 <= partition < REPL_MAX_PARTITION).
 *  New reference, NULL if malformed. */
json_t *repl_parse_partitions(const char *s);

/** Checks a task config read from the config topic (which anyone with write access to it can
 *  fill), before a task starts from it: string values, task.class, a config that passes
 *  repl_validate() against @p wc, and a task.partitions whose topics the config selects, each
 *  partition once. @returns 0, or -1 with @p why filled. */
int repl_check_task(const json_t *task, const wconf_t *wc, char *why, size_t len);
/** Checks task configs submitted for a connector (POST /connectors/{name}/tasks): at most
 *  tasks.max of them, each exactly @p config plus task.class and task.partitions and passing
 *  repl_check_task(), no partition in two tasks. @returns 0, or -1 with @p why filled. */
int repl_check_task_configs(const json_t *config, const json_t *tasks, const wconf_t *wc, char *why, size_t len);

/* ---- connector instance ----------------------------------------------------------- */

typedef struct repl_conn_ev {
    h2o_multithread_message_t super;
    char *connector;
    uint64_t instance;
    json_t *topics; /* object topic -> partition count, NULL when error is set */
    char *error;
} repl_conn_ev_t;

void repl_conn_ev_free(repl_conn_ev_t *ev);

typedef struct repl_conn repl_conn_t;

/** Starts the instance thread. @p config is copied. Events go to @p recv. @p src and @p dst
 *  (may be NULL): the worker's shared clients of the source and the destination cluster,
 *  borrowed (they must outlive the instance), used for metadata and topic creation instead
 *  of clients of its own. */
repl_conn_t *repl_conn_new(const char *name, const json_t *config, const wconf_t *wc,
                           uint64_t instance, h2o_multithread_receiver_t *recv, rd_kafka_t *src,
                           rd_kafka_t *dst);
/** Asks for an immediate metadata refresh (and a report even if nothing changed). */
void repl_conn_refresh(repl_conn_t *rc);
/** Stops and joins the thread (returns within about a second). Accepts NULL. */
void repl_conn_destroy(repl_conn_t *rc);

#endif
