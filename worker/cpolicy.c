/* cpolicy: client settings a connector config may carry. See cpolicy.h.
 *
 * The tables below come from librdkafka's CONFIGURATION.md (2.0.2), read property by property.
 * Every property is in one of three places: allowed (tuning, protocol choices, inline PEM and
 * SASL credentials: nothing that touches the worker's files, processes or other hosts),
 * refused with the reason shown to the user, or, if librdkafka adds it later, in neither,
 * which refuses it too. */
#include "worker/cpolicy.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/jaas.h"
#include "worker/jclient.h"
#include "worker/wconf.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const prefixes[] = {"src.kafka.", "src.consumer.", "dest.kafka.", "producer.override."};

/* Allowed on both sides unless src_only (only the source is the connector's own cluster; the
 * destination is the worker's, reached with the worker's credentials). */
typedef struct {
    const char *name;
    int src_only;
} allowed_t;

static const allowed_t allowed[] = {
    /* common tuning */
    {"client.id", 0}, {"client.rack", 0}, {"message.max.bytes", 0}, {"message.copy.max.bytes", 0},
    {"receive.message.max.bytes", 0}, {"max.in.flight.requests.per.connection", 0}, {"max.in.flight", 0},
    {"topic.metadata.refresh.interval.ms", 0}, {"metadata.max.age.ms", 0},
    {"topic.metadata.refresh.fast.interval.ms", 0}, {"topic.metadata.refresh.fast.cnt", 0},
    {"topic.metadata.refresh.sparse", 0}, {"topic.metadata.propagation.max.ms", 0},
    {"socket.timeout.ms", 0}, {"socket.blocking.max.ms", 0}, {"socket.send.buffer.bytes", 0},
    {"socket.receive.buffer.bytes", 0}, {"socket.keepalive.enable", 0}, {"socket.nagle.disable", 0},
    {"socket.max.fails", 0}, {"broker.address.ttl", 0}, {"broker.address.family", 0},
    {"socket.connection.setup.timeout.ms", 0}, {"connections.max.idle.ms", 0},
    {"reconnect.backoff.jitter.ms", 0}, {"reconnect.backoff.ms", 0}, {"reconnect.backoff.max.ms", 0},
    {"retry.backoff.ms", 0}, {"retry.backoff.max.ms", 0}, {"api.version.request", 0},
    {"api.version.request.timeout.ms", 0}, {"api.version.fallback.ms", 0}, {"broker.version.fallback", 0},
    {"allow.auto.create.topics", 0},
    /* consumer */
    {"group.id", 0}, {"group.instance.id", 0}, {"partition.assignment.strategy", 0},
    {"session.timeout.ms", 0}, {"heartbeat.interval.ms", 0}, {"group.protocol.type", 0},
    {"coordinator.query.interval.ms", 0}, {"max.poll.interval.ms", 0}, {"enable.auto.commit", 0},
    {"auto.commit.enable", 0}, {"auto.commit.interval.ms", 0}, {"enable.auto.offset.store", 0},
    {"queued.min.messages", 0}, {"queued.max.messages.kbytes", 0}, {"fetch.wait.max.ms", 0},
    {"fetch.message.max.bytes", 0}, {"max.partition.fetch.bytes", 0}, {"fetch.max.bytes", 0},
    {"fetch.min.bytes", 0}, {"fetch.error.backoff.ms", 0}, {"isolation.level", 0},
    {"enable.partition.eof", 0}, {"check.crcs", 0}, {"auto.offset.reset", 0},
    {"consume.callback.max.messages", 0},
    /* producer */
    {"transaction.timeout.ms", 0}, {"enable.idempotence", 0}, {"enable.gapless.guarantee", 0},
    {"queue.buffering.max.messages", 0}, {"queue.buffering.max.kbytes", 0}, {"queue.buffering.max.ms", 0},
    {"linger.ms", 0}, {"message.send.max.retries", 0}, {"retries", 0},
    {"queue.buffering.backpressure.threshold", 0}, {"compression.codec", 0}, {"compression.type", 0},
    {"compression.level", 0}, {"batch.num.messages", 0}, {"batch.size", 0},
    {"sticky.partitioning.linger.ms", 0}, {"request.required.acks", 0}, {"acks", 0},
    {"request.timeout.ms", 0}, {"message.timeout.ms", 0}, {"delivery.timeout.ms", 0},
    {"queuing.strategy", 0}, {"produce.offset.report", 0}, {"partitioner", 0},
    /* credentials and TLS as inline values (no files) */
    {"sasl.username", 0}, {"sasl.password", 0}, {"sasl.mechanism", 0}, {"sasl.mechanisms", 0},
    {"sasl.oauthbearer.config", 0}, {"enable.sasl.oauthbearer.unsecure.jwt", 0},
    {"sasl.oauthbearer.method", 0}, {"sasl.oauthbearer.client.id", 0},
    {"sasl.oauthbearer.client.secret", 0}, {"sasl.oauthbearer.scope", 0},
    {"sasl.oauthbearer.extensions", 0}, {"ssl.key.pem", 0}, {"ssl.key.password", 0},
    {"ssl.certificate.pem", 0}, {"ssl.keystore.password", 0}, {"ssl.cipher.suites", 0},
    {"ssl.curves.list", 0}, {"ssl.sigalgs.list", 0},
    /* the source cluster's own connection: the connector decides how to reach it */
    {"bootstrap.servers", 1}, {"security.protocol", 1}, {"ssl.ca.pem", 1},
    {"enable.ssl.certificate.verification", 1}, {"ssl.endpoint.identification.algorithm", 1},
};

#define WHY_EXEC "it makes librdkafka run a command on the worker"
#define WHY_KERBEROS "it belongs to Kerberos (GSSAPI), whose kinit command librdkafka runs on the worker"
#define WHY_CODE "it makes librdkafka load code into the worker"
#define WHY_FILE "it makes librdkafka read or write a file on the worker (give certificates and keys inline with ssl.*.pem)"
#define WHY_HOST "it makes the worker connect to another host"
#define WHY_LOG "it changes the worker's own logging"
#define WHY_FERRY "ferry sets it itself"
#define WHY_API "librdkafka sets it only through its C API"
#define WHY_DEST_CLUSTER "the destination is this worker's cluster (bootstrap.servers in the worker config)"
#define WHY_DEST_TLS "the destination is this worker's cluster, reached with the worker's credentials: its transport security is set in the worker config"

typedef struct {
    const char *name;
    const char *why;
} refused_t;

static const refused_t refused[] = {
    {"sasl.kerberos.kinit.cmd", WHY_EXEC},
    {"plugin.library.paths", WHY_CODE}, {"interceptors", WHY_CODE}, {"ssl.engine.location", WHY_CODE},
    {"ssl.engine.id", WHY_CODE}, {"ssl.providers", WHY_CODE}, {"ssl_engine_callback_data", WHY_CODE},
    {"ssl.ca.certificate.stores", WHY_FILE}, {"offset.store.path", WHY_FILE},
    {"offset.store.method", WHY_FILE}, {"offset.store.sync.interval.ms", WHY_FILE},
    {"sasl.oauthbearer.token.endpoint.url", WHY_HOST}, {"metadata.broker.list", WHY_HOST},
    {"client.dns.lookup", WHY_HOST},
    {"debug", WHY_LOG}, {"log_level", WHY_LOG}, {"statistics.interval.ms", WHY_LOG},
    {"enabled_events", WHY_LOG},
    {"transactional.id", WHY_FERRY}, {"delivery.report.only.error", WHY_FERRY},
    {"enable.random.seed", WHY_FERRY}, {"builtin.features", WHY_FERRY},
    {"internal.termination.signal", WHY_FERRY}, {"topic.blacklist", WHY_FERRY},
    {"opaque", WHY_API}, {"default_topic_conf", WHY_API}, {"ssl_key", WHY_API},
    {"ssl_certificate", WHY_API}, {"ssl_ca", WHY_API},
};

/* Families refused by their shape. */
static const refused_t refused_prefix[] = {{"sasl.kerberos.", WHY_KERBEROS}, {"log.", WHY_LOG}};
static const refused_t refused_suffix[] = {{".location", WHY_FILE}, {"_cb", WHY_API}};

/* Kafka Connect's Principal policy (sasl.jaas.config, sasl.mechanism, security.protocol) and
 * the librdkafka properties that carry the same principal. */
static const char *const principal_keys[] = {"sasl.jaas.config", "sasl.mechanism", "security.protocol",
                                             "sasl.mechanisms", "sasl.username", "sasl.password",
                                             "sasl.oauthbearer.config"};

static const char *const policy_names[] = {"All", "None", "Principal", "Allowlist"};

int cpolicy_parse(const char *name, cpolicy_kind_t *out)
{
    static const char pkg[] = "org.apache.kafka.connect.connector.policy.";
    static const char suffix[] = "ConnectorClientConfigOverridePolicy";
    if (!strncmp(name, pkg, sizeof pkg - 1))
        name += sizeof pkg - 1;
    size_t n = strlen(name), sl = sizeof suffix - 1;
    if (n > sl && !strcmp(name + n - sl, suffix))
        n -= sl;
    for (size_t i = 0; i < COUNT(policy_names); i++)
        if (strlen(policy_names[i]) == n && !strncmp(name, policy_names[i], n)) {
            *out = (cpolicy_kind_t)i;
            return 0;
        }
    return -1;
}

const char *cpolicy_name(cpolicy_kind_t kind)
{
    return (size_t)kind < COUNT(policy_names) ? policy_names[kind] : "?";
}

const char *cpolicy_prefix(const char *key, const char **sub)
{
    for (size_t i = 0; i < COUNT(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(key, prefixes[i], n) && key[n]) {
            if (sub)
                *sub = key + n;
            return prefixes[i];
        }
    }
    return NULL;
}

static int is_source(const char *prefix)
{
    return !strncmp(prefix, "src.", 4);
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return 1;
    return 0;
}

/* The reason a (lower-cased) property is refused by name or shape, or NULL. */
static const char *refused_why(const char *lc)
{
    size_t n = strlen(lc);
    for (size_t i = 0; i < COUNT(refused); i++)
        if (!strcmp(lc, refused[i].name))
            return refused[i].why;
    for (size_t i = 0; i < COUNT(refused_prefix); i++)
        if (!strncmp(lc, refused_prefix[i].name, strlen(refused_prefix[i].name)))
            return refused_prefix[i].why;
    for (size_t i = 0; i < COUNT(refused_suffix); i++) {
        size_t sl = strlen(refused_suffix[i].name);
        if (n >= sl && !strcmp(lc + n - sl, refused_suffix[i].name))
            return refused_suffix[i].why;
    }
    return NULL;
}

static const allowed_t *find_allowed(const char *sub)
{
    for (size_t i = 0; i < COUNT(allowed); i++)
        if (!strcmp(sub, allowed[i].name))
            return &allowed[i];
    return NULL;
}

static const char *cfg_get(const json_t *config, const char *key)
{
    return json_string_value(json_object_get(config, key));
}

/* A destination-side key's value from either destination prefix (producer.override. wins, as
 * it is applied last). */
static const char *dest_value(const json_t *config, const char *sub)
{
    char k[256];
    snprintf(k, sizeof k, "producer.override.%s", sub);
    const char *v = cfg_get(config, k);
    snprintf(k, sizeof k, "dest.kafka.%s", sub);
    return v ? v : cfg_get(config, k);
}

static char *trim_lower(const char *s, char *buf, size_t len)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = 0;
    for (; s[n] && n + 1 < len; n++)
        buf[n] = (char)tolower((unsigned char)s[n]);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    return buf;
}

/* Secret values are never echoed in a message. */
static const char *shown(const char *key, const char *value)
{
    return wconf_is_secret(key) ? "[hidden]" : value;
}

static int refuse(char *msg, size_t len, const char *key, const char *value, const char *why)
{
    snprintf(msg, len, "Invalid value %s for configuration %s: a connector config may not set it: %s",
             shown(key, value), key, why);
    return -1;
}

/* The destination clients get the connector's own credentials: sasl.username and sasl.password,
 * or a sasl.jaas.config that carries them. */
static int dest_has_credentials(const json_t *config)
{
    const char *jaas = dest_value(config, JAAS_KEY);
    char why[8];
    props_t *p = props_new();
    int from_jaas = jaas && !jaas_translate(jaas, NULL, p, why, sizeof why) && props_get(p, "sasl.username") &&
                    props_get(p, "sasl.password");
    props_destroy(p);
    return from_jaas || (dest_value(config, "sasl.username") && dest_value(config, "sasl.password"));
}

/* sasl.jaas.config in a connector config: translated for librdkafka (jaas.h) when the config is
 * applied (kutil_conf_apply_prefixed), so it must translate, and fit the sasl.mechanism the
 * connector sets beside it (under the same prefix, or the side's other prefix). A mechanism
 * that comes from the worker config is checked by the worker's own rules. */
static int check_jaas(const json_t *config, const char *prefix, const char *key, const char *value, char *msg,
                      size_t len)
{
    static const char *const same_side[][2] = {{"src.consumer.", "src.kafka."}, {"src.kafka.", "src.kafka."},
                                               {"producer.override.", "dest.kafka."}, {"dest.kafka.", "dest.kafka."}};
    const char *mech = NULL;
    for (size_t i = 0; i < COUNT(same_side) && !mech; i++) {
        if (strcmp(prefix, same_side[i][0]))
            continue;
        const char *pfx[] = {prefix, same_side[i][1]}, *names[] = {"sasl.mechanism", "sasl.mechanisms"};
        for (size_t p = 0; p < 2 && !mech; p++)
            for (size_t n = 0; n < 2 && !mech; n++) {
                char k[256];
                snprintf(k, sizeof k, "%s%s", pfx[p], names[n]);
                mech = cfg_get(config, k);
            }
    }
    char why[768];
    if (!jaas_translate(value, mech, NULL, why, sizeof why))
        return 0;
    snprintf(msg, len, "Invalid value [hidden] for configuration %s: %s", key, why);
    return -1;
}

/* Rules on the value of an allowed property. @returns 0 or -1 with msg filled. */
static int check_value(const json_t *config, const char *prefix, const char *key, const char *sub,
                       const char *value, char *msg, size_t len)
{
    char lv[64];
    trim_lower(value, lv, sizeof lv);
    if (!strcmp(sub, "sasl.mechanism") || !strcmp(sub, "sasl.mechanisms")) {
        if (!strcmp(lv, "gssapi"))
            return refuse(msg, len, key, value, WHY_KERBEROS);
        if (!is_source(prefix) && !dest_has_credentials(config))
            return refuse(msg, len, key, value,
                          "on the destination (this worker's cluster) the SASL mechanism may change only "
                          "together with the connector's own sasl.username and sasl.password (or a "
                          "sasl.jaas.config that carries them), so that the worker's password is never sent "
                          "another way");
    } else if (!strcmp(sub, "sasl.oauthbearer.method") && strcmp(lv, "default")) {
        return refuse(msg, len, key, value, "the oidc method fetches tokens from a URL: " WHY_HOST);
    } else if ((!strcmp(sub, "acks") || !strcmp(sub, "request.required.acks")) && !strcmp(lv, "0")) {
        return refuse(msg, len, key, value,
                      "ferry stores a source offset only once the destination acknowledged the copy");
    }
    /* librdkafka's own check of the value, on a configuration that is thrown away */
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_res_t r = rd_kafka_conf_set(c, sub, value, e, sizeof e);
    rd_kafka_conf_destroy(c);
    if (r == RD_KAFKA_CONF_INVALID) {
        snprintf(msg, len, "Invalid value %s for configuration %s: %s", shown(key, value), key,
                 wconf_is_secret(key) ? "not accepted by librdkafka" : e);
        return -1;
    }
    return 0;
}

int cpolicy_check_safe(const json_t *config, const char *key, char *msg, size_t len)
{
    const char *sub, *prefix = cpolicy_prefix(key, &sub);
    const char *value = cfg_get(config, key);
    if (!prefix)
        return 0;
    if (!value) {
        snprintf(msg, len, "Invalid value for configuration %s: must be a string", key);
        return -1;
    }
    char lc[256];
    snprintf(lc, sizeof lc, "%s", sub);
    for (char *p = lc; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!strcmp(sub, JAAS_KEY))
        return check_jaas(config, prefix, key, value, msg, len);
    const char *why = refused_why(lc);
    if (why)
        return refuse(msg, len, key, value, why);
    const allowed_t *a = find_allowed(sub);
    if (a) {
        if (a->src_only && !is_source(prefix))
            return refuse(msg, len, key, value,
                          !strcmp(sub, "bootstrap.servers") ? WHY_DEST_CLUSTER : WHY_DEST_TLS);
        return check_value(config, prefix, key, sub, value, msg, len);
    }
    if (!jclient_is_property(sub))
        return 0; /* Java-only (max.poll.records, sasl.jaas.config ...): ignored, as before */
    return refuse(msg, len, key, value,
                  "it is not among the client settings a connector may set (docs/OPERATIONS.md, \"Security\")");
}

int cpolicy_check(const cpolicy_t *policy, const json_t *config, const char *key, char *msg, size_t len)
{
    const char *sub;
    if (!cpolicy_prefix(key, &sub))
        return 0;
    cpolicy_kind_t kind = policy ? policy->kind : CPOLICY_ALL;
    int ok = kind == CPOLICY_ALL ||
             (kind == CPOLICY_PRINCIPAL && in_list(sub, principal_keys, COUNT(principal_keys)));
    for (size_t i = 0; kind == CPOLICY_ALLOWLIST && policy->allow && policy->allow[i]; i++)
        ok |= !strcmp(sub, policy->allow[i]);
    if (!ok) {
        snprintf(msg, len, "The '%s' policy does not allow '%s' to be overridden in the connector configuration.",
                 cpolicy_name(kind), sub);
        return -1;
    }
    return cpolicy_check_safe(config, key, msg, len);
}
