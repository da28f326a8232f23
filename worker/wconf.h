/* wconf: the worker configuration, built from a connect-distributed.properties file.
 * Operators point ferry at the worker file they already use with Kafka Connect, so the keys,
 * defaults and error wording are Kafka Connect's (DistributedConfig, WorkerConfig,
 * RestServerConfig); ferry adds zookeeper.* for its coordinator and ferry.* for its own
 * extensions. Validation happens once, here, so that the rest of the worker can trust
 * every field. */
#ifndef FERRY_WCONF_H
#define FERRY_WCONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "worker/cpolicy.h"
#include "worker/ferr.h"
#include "worker/flog.h"
#include "worker/props.h"

/** Buffer size that always fits wconf_worker_id() and wconf_rest_url() (host names are at most 255 bytes). */
#define WCONF_URL_MAX 300

/**
 * @brief The validated worker configuration. Every string and props_t is owned by the
 * wconf_t and freed by wconf_destroy(); treat it as read-only after wconf_new().
 */
typedef struct wconf {
    char *bootstrap_servers; /* bootstrap.servers, required (Kafka Connect 4.2 dropped its default) */
    char *group_id;          /* group.id, required */
    char *config_topic;      /* config.storage.topic, required */
    char *offset_topic;      /* offset.storage.topic, required */
    char *status_topic;      /* status.storage.topic, required */
    int config_rf, offset_rf, status_rf; /* *.storage.replication.factor: default 3, -1 = broker default */
    int offset_partitions;   /* offset.storage.partitions: default 25, -1 = broker default */
    int status_partitions;   /* status.storage.partitions: default 5, -1 = broker default */
    char *listener_scheme;   /* "http" or "https", from the first entry of listeners (default "http://:8083") */
    char *listener_host;     /* without brackets; "" means all interfaces */
    int listener_port;       /* 0..65535; 0 asks the OS for a port */
    char *advertised_host;   /* rest.advertised.host.name; default the listener host, or gethostname()
                                when that is "", 0.0.0.0 or :: */
    int advertised_port;     /* rest.advertised.port; default listener_port */
    char *advertised_scheme; /* rest.advertised.listener ("http"/"https"); default listener_scheme */
    int64_t offset_flush_interval_ms;         /* default 60000, >= 1 */
    int64_t offset_flush_timeout_ms;          /* default 5000, >= 0 */
    int64_t task_shutdown_timeout_ms;         /* task.shutdown.graceful.timeout.ms, default 5000, >= 0 */
    int64_t scheduled_rebalance_max_delay_ms; /* default 0 in ferry (Kafka Connect: 300000), 0..INT32_MAX */
    int64_t session_timeout_ms;               /* zookeeper.session.timeout.ms, default 6000, >= 1000 */
    int64_t memory_budget_bytes; /* ferry.memory.budget.bytes: the copy buffers of all tasks of
                                    the worker, divided among them (mbudget.h); 0 = a fixed
                                    per-task bound. Default MBUDGET_DEFAULT_BYTES, >= 0 */
    int eos_source;          /* exactly.once.source.support=enabled (KIP-618): tasks write records and
                                offsets in one producer transaction; "disabled" (default) or "preparing" = 0 */
    char *key_converter;     /* required; one of the three converters ferry knows (it copies bytes) */
    char *value_converter;   /* required; same */
    char *header_converter;  /* default org.apache.kafka.connect.storage.SimpleHeaderConverter */
    char *zookeeper_connect; /* zookeeper.connect, required: "host:port[,host:port][/chroot]" */
    char *zk_root;           /* the chroot of zookeeper.connect, e.g. "/ferry"; "" if none */
    char *zk_hosts;          /* zookeeper.connect without the chroot */
    char *zk_digest;         /* "user:password" from zookeeper.digest.username/.password, or NULL */
    int zk_set_acl;          /* zookeeper.set.acl: ferry's znodes readable and writable only by
                                that digest identity (ZOO_CREATOR_ALL_ACL) */
    cpolicy_t client_policy; /* connector.client.config.override.policy (default All) and, for
                                Allowlist, connector.client.config.override.allowlist (cpolicy.h) */
    char **client_allowlist; /* that list, NULL-terminated (client_policy.allow points here) */
    /* Signed internal requests (KIP-507): the leader keeps a session key in the config topic,
     * and task configs a follower sends carry an HMAC of the body made with it (rest/isig.h). */
    int isig_enabled;        /* connect.protocol=sessioned (default); compatible/eager turn it off */
    char *isig_key_algorithm; /* inter.worker.key.generation.algorithm, default HmacSHA256 */
    int isig_key_bits;       /* inter.worker.key.size; 0 = the algorithm's digest size */
    int64_t isig_key_ttl_ms; /* inter.worker.key.ttl.ms, default 3600000, 0..INT32_MAX */
    char *isig_algorithm;    /* inter.worker.signature.algorithm, default HmacSHA256 */
    char **isig_verify;      /* inter.worker.verification.algorithms, NULL-terminated, contains
                                isig_algorithm */
    int copy_threads;        /* ferry.copy.threads: threads that copy records, shared by all tasks
                                (copier.h); default 0 = one per online core */
    int max_connectors;      /* ferry.max.connectors: the group's connectors, default 1000 */
    int max_tasks_per_worker; /* ferry.max.tasks.per.worker: tasks one worker runs, default 256 */
    int log_levels[FLOG_M__COUNT + 1]; /* ferry.log.level (index FLOG_M__COUNT, the root logger) and
                                ferry.log.level.<logger>: a flog_level_t, or -1 if not set */
    /* The client layers, in librdkafka's keys (Java's translated by jclient.h): */
    props_t *producer;       /* "producer.X=v" as X=v */
    props_t *consumer;       /* "consumer.X=v" as X=v */
    props_t *admin;          /* "admin.X=v" as X=v (admin.listeners* excluded: those are REST keys) */
    props_t *common;         /* top-level client keys every Kafka client gets: security.protocol,
                                ssl.*, sasl.*, client.id, client.rack, client.dns.lookup,
                                metadata.max.age.ms, reconnect.backoff.*, retry.backoff.*,
                                connections.max.idle.ms, socket.connection.setup.timeout.ms */
    props_t *notes;          /* what jclient translated: "producer.ssl.ca.location" ->
                                "producer.ssl.truststore.location"; a Java key it dropped -> "" */
    props_t *all;            /* every key as given, including ferry.* and unknown keys */
} wconf_t;

/**
 * @brief Validates @p p and builds the typed configuration.
 *
 * Checked first: no value holds a ${...} config-provider placeholder (ferry has no config
 * providers), and no unknown key is within two edits of a known one (typo.h):
 *   The configuration 'bootstrap.server' isn't a known config; did you mean 'bootstrap.servers'?
 * Checked last: the client layers translate for librdkafka (jclient.h: sasl.jaas.config,
 * keystores; this reads the first bytes of store files) and each client's sasl.jaas.config
 * fits its sasl.mechanism.
 *
 * String values are trimmed (as Kafka's ConfigDef does). Integers take an optional sign
 * and decimal digits only; trailing garbage, overflow of the Java type (SHORT, INT or
 * LONG) and empty strings are errors. Errors use Kafka Connect's wording and name the key:
 *   Missing required configuration "group.id" which has no default value.
 *   Invalid value abc for configuration offset.flush.interval.ms: Not a number of type LONG
 *   Invalid value 0 for configuration zookeeper.session.timeout.ms: Value must be at least 1000
 * Beyond Kafka Connect, required strings must be non-empty, the three topic names must be
 * legal and distinct, and converters must be ByteArrayConverter, JsonConverter or
 * StringConverter (header.converter may also be SimpleHeaderConverter).
 *
 * listeners: a comma list of "http|https://host:port" (host may be empty or a bracketed
 * IPv6 address); only the first entry is served. Without listeners, the deprecated
 * rest.host.name and rest.port (default 8083) are used if either is set.
 *
 * @param p    borrowed; copied into ->all.
 * @param err  filled on error (may be NULL).
 * @returns the configuration (free with wconf_destroy()), or NULL with err->code FERR_INVALID.
 * @remark Calls gethostname() when the advertised host must be guessed. Logs nothing.
 */
wconf_t *wconf_new(const props_t *p, ferr_t *err);

/** @brief Frees @p c and everything it owns. Accepts NULL. */
void wconf_destroy(wconf_t *c);

/**
 * @brief Formats the worker id, "advertised_host:advertised_port" (an IPv6 host in brackets),
 * as Kafka Connect reports it in status and uses it in the group.
 * @returns @p buf, or NULL if @p len is too small (WCONF_URL_MAX always suffices).
 */
const char *wconf_worker_id(const wconf_t *c, char *buf, size_t len);

/**
 * @brief Formats the URL other workers use to reach this one:
 * "advertised_scheme://advertised_host:advertised_port", without a trailing slash.
 * @returns @p buf, or NULL if @p len is too small.
 */
const char *wconf_rest_url(const wconf_t *c, char *buf, size_t len);

/**
 * @brief Says whether a key's value must never be logged or returned: passwords, secrets,
 * JAAS configs, private keys, basic-auth credentials, with or without a client prefix
 * (producer.sasl.jaas.config). Case-insensitive.
 * @returns 1 if secret, else 0.
 */
int wconf_is_secret(const char *key);

/**
 * @brief Logs the effective configuration at INFO, one "key = value" line per key in key
 * order, with secrets shown as [hidden]; then a WARN for each unknown key ("The configuration
 * 'x' was supplied but isn't a known config.", Kafka's wording), each client key librdkafka
 * has no property for, and each listener that is not served.
 */
void wconf_log_summary(const wconf_t *c);

/**
 * @brief Writes what a worker started with @p c would do, for `ferry-worker --check`: the
 * effective settings (the values wconf_log_summary() logs) grouped as destination cluster,
 * group and storage topics (partitions, replication), REST listener and advertised URL,
 * ZooKeeper hosts, chroot and group path, task settings, the keys passed on to the
 * producer/consumer/admin clients, then the keys accepted without effect and the unknown
 * (ignored) ones. Secrets are shown as [hidden].
 * @param out  borrowed; written with stdio, not flushed.
 * @remark Contacts nothing: no DNS, Kafka or ZooKeeper.
 */
void wconf_describe(const wconf_t *c, FILE *out);

#endif
