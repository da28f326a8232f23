/* cpolicy: which Kafka client settings a connector config may carry.
 *
 * A connector config reaches librdkafka through four prefixes: src.kafka.* and src.consumer.*
 * (the source clients) and dest.kafka.* and producer.override.* (the destination clients).
 * Anyone who may create a connector over REST writes them, while librdkafka properties can run
 * a command (sasl.kerberos.kinit.cmd), load code (plugin.library.paths, ssl.engine.location),
 * read local files (*.location) or reach other hosts (sasl.oauthbearer.token.endpoint.url):
 * Kafka Connect's CVE-2023-25194 class of hole. Two layers close it:
 *
 *  1. A fixed allow-list, whatever the worker says: only tuning and protocol settings that do
 *     none of the above may be set from a connector config. An allow-list rather than a deny-
 *     list, because a librdkafka upgrade adds properties, and a new one must stay out until
 *     someone has read what it does. On the destination side (the worker's own cluster, with
 *     the worker's credentials) the transport security may not be changed either. Keys
 *     librdkafka does not know are ignored (Java-only keys such as max.poll.records), as
 *     before. The worker config (consumer.*, producer.*, admin.*), which only the operator
 *     writes, is not restricted.
 *  2. Kafka Connect's connector.client.config.override.policy (None, Principal, All) and the
 *     Allowlist policy of KIP-1188, applied to all four prefixes with Kafka Connect's
 *     messages. The keys the connector itself defines (src.kafka.bootstrap.servers,
 *     src.kafka.max.poll.records) are its own settings, not client overrides.
 *
 * The same check runs at validation (400 naming the key), when a stored config starts (a
 * refused key fails the connector or task with the reason) and in kutil_conf_apply_prefixed(),
 * the one function that hands connector-config keys to librdkafka, so nothing reaches
 * librdkafka around it. Pure apart from reading librdkafka's property table; any thread. */
#ifndef FERRY_CPOLICY_H
#define FERRY_CPOLICY_H

#include <jansson.h>
#include <stddef.h>

/** connector.client.config.override.policy. */
typedef enum {
    CPOLICY_ALL = 0, /* Kafka Connect's default */
    CPOLICY_NONE,
    CPOLICY_PRINCIPAL,
    CPOLICY_ALLOWLIST,
} cpolicy_kind_t;

/** The policy as the worker config sets it; allow: the KIP-1188 allow-list (client property
 *  names, without prefix), NULL-terminated, only read for CPOLICY_ALLOWLIST. */
typedef struct cpolicy {
    cpolicy_kind_t kind;
    const char *const *allow;
} cpolicy_t;

/** Parses a policy name: None, Principal, All, Allowlist, or the Kafka class names
 *  (org.apache.kafka.connect.connector.policy.NoneConnectorClientConfigOverridePolicy ...,
 *  with or without the package). @returns 0, or -1 if unknown. */
int cpolicy_parse(const char *name, cpolicy_kind_t *out);
const char *cpolicy_name(cpolicy_kind_t kind);

/** The client prefix of a connector-config key: "src.kafka.", "src.consumer.", "dest.kafka."
 *  or "producer.override.", or NULL; *sub (may be NULL) is the client property after it. */
const char *cpolicy_prefix(const char *key, const char **sub);

/**
 * @brief Checks one key of @p config (a connector config: string values) that
 * cpolicy_prefix() recognises: the value must be a string librdkafka accepts for the property,
 * and, on the destination side, sasl.mechanism(s) comes with the connector's own
 * sasl.username and sasl.password (else the worker's password could be sent in a weaker way).
 * @param policy  the worker's policy; NULL = Kafka Connect's default (All).
 * @param msg     filled with the error message (Kafka Connect's for a policy refusal).
 * @returns 0 if it may be passed to librdkafka (or is ignored as unknown to it), -1 if not.
 * @remark Never hands a refused key to librdkafka, not even to a scratch configuration:
 *         librdkafka loads plugin.library.paths the moment it is set.
 */
int cpolicy_check(const cpolicy_t *policy, const json_t *config, const char *key, char *msg,
                  size_t len);

/** Only the fixed allow-list (layer 1), for kutil_conf_apply_prefixed(). Same contract. */
int cpolicy_check_safe(const json_t *config, const char *key, char *msg, size_t len);

#endif
