/* wconf: builds and checks the worker configuration. See wconf.h.
 *
 * Every check is a small getter that reads one key, applies the default, validates it, and
 * formats Kafka Connect's ConfigException wording ("Invalid value V for configuration K: why")
 * on failure. wconf_new() calls them in a fixed order, so the first bad key is the one
 * reported, and frees the half-built struct on the way out.
 *
 * Which keys exist is decided by three tables: the keys ferry or Kafka Connect define
 * (known_keys, known_prefixes), and the top-level keys that are passed on to every Kafka client
 * (common_keys, common_prefixes). An unknown key within two edits of a known one is an error
 * naming it (a misspelt key would otherwise silently keep its default); any other unknown key
 * is logged as a WARN, as Kafka does. The client layers are translated from Java's keys to
 * librdkafka's by jclient.h.
 *
 * The start-up log (wconf_log_summary) and `ferry-worker --check` (wconf_describe) show the
 * same effective values, built once by effective_props(), with secrets hidden by shown(). */
#include "worker/wconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "worker/flog.h"
#include "worker/isig.h"
#include "worker/jaas.h"
#include "worker/jclient.h"
#include "worker/mbudget.h"
#include "worker/typo.h"

#define DEFAULT_LISTENERS "http://:8083"
#define FERRY_LOG_LEVEL "ferry.log.level"
#define SIMPLE_HEADER_CONVERTER "org.apache.kafka.connect.storage.SimpleHeaderConverter"

static const char *const converters[] = {
    "org.apache.kafka.connect.converters.ByteArrayConverter",
    "org.apache.kafka.connect.json.JsonConverter",
    "org.apache.kafka.connect.storage.StringConverter",
};

/* Top-level keys handed to every Kafka client (librdkafka knows them by the same name). */
static const char *const common_keys[] = {
    "security.protocol", "client.id", "client.rack", "client.dns.lookup", "metadata.max.age.ms",
    "reconnect.backoff.ms", "reconnect.backoff.max.ms", "retry.backoff.ms", "retry.backoff.max.ms",
    "connections.max.idle.ms", "socket.connection.setup.timeout.ms",
};
static const char *const common_prefixes[] = {"ssl.", "sasl."};

/* Keys defined by ferry or by Kafka Connect's worker configs; the rest are logged as ignored. */
static const char *const known_keys[] = {
    "bootstrap.servers", "group.id", "config.storage.topic", "config.storage.replication.factor",
    "offset.storage.topic", "offset.storage.partitions", "offset.storage.replication.factor",
    "status.storage.topic", "status.storage.partitions", "status.storage.replication.factor",
    "listeners", "rest.host.name", "rest.port", "rest.advertised.host.name",
    "rest.advertised.port", "rest.advertised.listener", "admin.listeners",
    "offset.flush.interval.ms", "offset.flush.timeout.ms", "task.shutdown.graceful.timeout.ms",
    "scheduled.rebalance.max.delay.ms", "zookeeper.connect", "zookeeper.session.timeout.ms",
    "zookeeper.set.acl", "zookeeper.digest.username", "zookeeper.digest.password",
    "key.converter", "value.converter", "header.converter", "plugin.path", "plugin.discovery",
    "connect.protocol", "heartbeat.interval.ms", "session.timeout.ms", "rebalance.timeout.ms",
    "worker.sync.timeout.ms", "worker.unsync.backoff.ms", "config.providers",
    "topic.creation.enable", "topic.tracking.enable", "topic.tracking.allow.reset",
    "exactly.once.source.support", "connector.client.config.override.policy",
    "rest.extension.classes", "response.http.headers.config",
    "rest.basic.auth.credentials.file", "rest.basic.auth.internal.user", /* rest/sec.c */
    "inter.worker.key.generation.algorithm", "inter.worker.key.size", "inter.worker.key.ttl.ms",
    "inter.worker.signature.algorithm", "inter.worker.verification.algorithms",
    "connector.client.config.override.allowlist",
    "metric.reporters", "auto.include.jmx.reporter", "request.timeout.ms", "send.buffer.bytes",
    "receive.buffer.bytes", "socket.connection.setup.timeout.max.ms", "metadata.recovery.strategy",
    "metadata.recovery.rebootstrap.trigger.ms",
    "ferry.memory.budget.bytes", "ferry.max.connectors", "ferry.max.tasks.per.worker", FERRY_LOG_LEVEL,
};
static const char *const known_prefixes[] = {
    "producer.", "consumer.", "admin.", "key.converter.", "value.converter.",
    "header.converter.", "access.control.allow.", "listeners.https.", "config.providers.",
    "metrics.", FERRY_LOG_LEVEL ".", "ssl.", "sasl.",
};
/* The layers of client keys: the top level, then the three prefixes (jclient.h). */
static const char *const client_prefixes[] = {"", "producer.", "consumer.", "admin."};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r)
        abort();
    return r;
}

/* Copies s without leading/trailing characters <= ' ', as Java's String.trim(). */
static char *trimdup(const char *s)
{
    while (*s && (unsigned char)*s <= ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (unsigned char)s[n - 1] <= ' ')
        n--;
    char *r = strndup(s, n);
    if (!r)
        abort();
    return r;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static int has_prefix_in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (starts_with(s, list[i]))
            return 1;
    return 0;
}

static ferr_code_t invalid(ferr_t *err, const char *key, const char *value, const char *why)
{
    return ferr_set(err, FERR_INVALID, "Invalid value %s for configuration %s: %s", value, key,
                    why);
}

/* ---- typed getters ---- */

/* A string with a default; def NULL means required. *out is trimmed and owned. */
static ferr_code_t get_str(const props_t *p, const char *key, const char *def, char **out,
                           ferr_t *err)
{
    const char *v = props_get(p, key);
    if (!v && !def)
        return ferr_set(err, FERR_INVALID,
                        "Missing required configuration \"%s\" which has no default value.", key);
    *out = trimdup(v ? v : def);
    if (!def && !**out)
        return invalid(err, key, v, "String must be non-empty");
    return FERR_OK;
}

/*
 * Parses like Java's Long.parseLong on the trimmed text: optional sign, decimal digits,
 * nothing else. @returns 0 on success.
 */
static int parse_int64(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    char *t = trimdup(text);
    const char *s = t;
    int neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    int ok = *s != '\0';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; ok && *s; s++) {
        if (*s < '0' || *s > '9' || v > (limit - (uint64_t)(*s - '0')) / 10)
            ok = 0;
        else
            v = v * 10 + (uint64_t)(*s - '0');
    }
    free(t);
    if (!ok)
        return -1;
    int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (r < lo || r > hi)
        return -1;
    *out = r;
    return 0;
}

typedef enum { T_SHORT, T_INT, T_LONG } jtype_t;

/*
 * An integer of Java type @p type with a default, checked against [min, max] with Kafka's
 * Range wording.
 */
static ferr_code_t get_num(const props_t *p, const char *key, jtype_t type, int64_t def,
                           int64_t min, int64_t max, int64_t *out, ferr_t *err)
{
    static const char *names[] = {"SHORT", "INT", "LONG"};
    static const int64_t lo[] = {INT16_MIN, INT32_MIN, INT64_MIN};
    static const int64_t hi[] = {INT16_MAX, INT32_MAX, INT64_MAX};
    const char *v = props_get(p, key);
    if (!v) {
        *out = def;
        return FERR_OK;
    }
    char why[64];
    if (parse_int64(v, lo[type], hi[type], out) != 0) {
        snprintf(why, sizeof why, "Not a number of type %s", names[type]);
        return invalid(err, key, v, why);
    }
    if (*out < min) {
        snprintf(why, sizeof why, "Value must be at least %lld", (long long)min);
        return invalid(err, key, v, why);
    }
    if (*out > max) {
        snprintf(why, sizeof why, "Value must be no more than %lld", (long long)max);
        return invalid(err, key, v, why);
    }
    return FERR_OK;
}

static ferr_code_t get_int(const props_t *p, const char *key, int64_t def, int64_t min,
                           int64_t max, int *out, ferr_t *err)
{
    int64_t v;
    ferr_code_t rc = get_num(p, key, T_INT, def, min, max, &v, err);
    if (rc == FERR_OK)
        *out = (int)v;
    return rc;
}

/* *.storage.replication.factor: a SHORT that is -1 or positive (Kafka's wording). */
static ferr_code_t get_rf(const props_t *p, const char *key, int *out, ferr_t *err)
{
    int64_t v;
    ferr_code_t rc = get_num(p, key, T_SHORT, 3, INT16_MIN, INT16_MAX, &v, err);
    if (rc)
        return rc;
    if (v != -1 && v < 1)
        return invalid(err, key, props_get(p, key),
                       "Replication factor must be positive and not larger than the number of "
                       "brokers in the Kafka cluster, or -1 to use the broker's default");
    *out = (int)v;
    return FERR_OK;
}

/* *.storage.partitions: an INT that is -1 or positive. */
static ferr_code_t get_partitions(const props_t *p, const char *key, int def, int *out,
                                  ferr_t *err)
{
    ferr_code_t rc = get_int(p, key, def, INT32_MIN, INT32_MAX, out, err);
    if (rc)
        return rc;
    if (*out != -1 && *out < 1)
        return invalid(err, key, props_get(p, key),
                       "Number of partitions must be positive, or -1 to use the broker's default");
    return FERR_OK;
}

/* A legal Kafka topic name (org.apache.kafka.common.internals.Topic.validate). */
static ferr_code_t check_topic(const char *key, const char *name, ferr_t *err)
{
    char why[512];
    size_t n = strlen(name);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return invalid(err, key, name, "Topic name cannot be \".\" or \"..\"");
    if (n > 249)
        return invalid(err, key, name, "Topic name is illegal, it can't be longer than 249 characters");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-') {
            snprintf(why, sizeof why,
                     "Topic name \"%s\" is illegal, it contains a character other than ASCII "
                     "alphanumerics, '.', '_' and '-'",
                     name);
            return invalid(err, key, name, why);
        }
    }
    return FERR_OK;
}

static ferr_code_t get_topic(const props_t *p, const char *key, char **out, ferr_t *err)
{
    ferr_code_t rc = get_str(p, key, NULL, out, err);
    return rc ? rc : check_topic(key, *out, err);
}

static ferr_code_t get_converter(const props_t *p, const char *key, const char *def,
                                 char **out, ferr_t *err)
{
    ferr_code_t rc = get_str(p, key, def, out, err);
    if (rc)
        return rc;
    if (in_list(*out, converters, COUNT(converters)) ||
        (def && strcmp(*out, SIMPLE_HEADER_CONVERTER) == 0))
        return FERR_OK;
    char why[512];
    snprintf(why, sizeof why,
             "Class %s could not be found. ferry supports %s, %s and %s%s", *out, converters[0],
             converters[1], converters[2], def ? " (and " SIMPLE_HEADER_CONVERTER " for headers)" : "");
    return invalid(err, key, *out, why);
}

/* ---- listeners ---- */

typedef struct {
    char scheme[8];
    char host[256];
    int port;
} listener_t;

static int parse_scheme(const char *s, size_t n, char out[8])
{
    if (n == 4 && strncasecmp(s, "http", 4) == 0)
        strcpy(out, "http");
    else if (n == 5 && strncasecmp(s, "https", 5) == 0)
        strcpy(out, "https");
    else
        return -1;
    return 0;
}

/*
 * Parses one "scheme://host:port" (host may be empty or "[v6]"), following Kafka's
 * ^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+) but requiring the whole entry to match.
 * @returns NULL on success, else why it is wrong.
 */
static const char *parse_listener(const char *s, listener_t *l)
{
    static const char *format = "Listener doesn't have the right format (protocol://hostname:port).";
    const char *sep = strstr(s, "://");
    if (!sep)
        return format;
    if (parse_scheme(s, (size_t)(sep - s), l->scheme) != 0)
        return "Listener protocol must be either \"http\" or \"https\".";
    const char *h = sep + 3, *colon;
    size_t hlen;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return format;
        h++;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return format;
        hlen = (size_t)(colon - h);
    }
    if (hlen >= sizeof l->host)
        return "Host name must be at most 255 characters";
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr("-%._:", h[i]))
            return format;
    memcpy(l->host, h, hlen);
    l->host[hlen] = '\0';
    int64_t port;
    const char *ps = colon + 1;
    if (!*ps || strspn(ps, "0123456789") != strlen(ps))
        return format;
    if (parse_int64(ps, 0, 65535, &port) != 0)
        return "Listener port must be between 0 and 65535.";
    l->port = (int)port;
    return NULL;
}

/*
 * The listeners list as Kafka's ConfigDef splits a LIST: trimmed, split on commas with the
 * whitespace around them. Calls fn for each entry; stops and returns its result if nonzero.
 */
static int listeners_each(const char *list, int (*fn)(const char *entry, size_t i, void *arg),
                          void *arg)
{
    char *t = trimdup(list);
    int rc = 0;
    size_t i = 0;
    char *cur = t;
    if (*t == '\0') {
        rc = fn(NULL, 0, arg);
        free(t);
        return rc;
    }
    for (;;) {
        char *comma = strchr(cur, ',');
        if (comma)
            *comma = '\0';
        char *e = trimdup(cur);
        rc = fn(e, i++, arg);
        free(e);
        if (rc || !comma)
            break;
        cur = comma + 1;
    }
    free(t);
    return rc;
}

typedef struct {
    listener_t first;
    const char *why;
} first_listener_t;

static int take_first_listener(const char *entry, size_t i, void *arg)
{
    first_listener_t *fl = arg;
    if (!entry) {
        fl->why = "Invalid value for listeners, at least one URL is expected, ex: "
                  "http://localhost:8080,https://localhost:8443.";
        return -1;
    }
    if (*entry == '\0') {
        fl->why = "Empty URL found when parsing listeners list.";
        return -1;
    }
    listener_t l;
    fl->why = parse_listener(entry, &l);
    if (fl->why)
        return -1;
    if (i == 0)
        fl->first = l;
    return 0;
}

static int is_wildcard_host(const char *h)
{
    return *h == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 ||
           strcmp(h, "0:0:0:0:0:0:0:0") == 0;
}

/* listeners (or the deprecated rest.host.name/rest.port), then rest.advertised.*. */
static ferr_code_t get_rest(const props_t *p, wconf_t *c, ferr_t *err)
{
    const char *lv = props_get(p, "listeners");
    first_listener_t fl = {0};
    if (lv) {
        if (listeners_each(lv, take_first_listener, &fl) != 0)
            return invalid(err, "listeners", lv, fl.why);
    } else if (props_get(p, "rest.host.name") || props_get(p, "rest.port")) {
        int port;
        ferr_code_t rc = get_int(p, "rest.port", 8083, 0, 65535, &port, err);
        if (rc)
            return rc;
        const char *hv = props_get(p, "rest.host.name");
        char *host = trimdup(hv ? hv : "");
        if (strlen(host) >= sizeof fl.first.host) {
            free(host);
            return invalid(err, "rest.host.name", hv, "Host name must be at most 255 characters");
        }
        strcpy(fl.first.scheme, "http");
        snprintf(fl.first.host, sizeof fl.first.host, "%s", host);
        fl.first.port = port;
        free(host);
    } else {
        (void)parse_listener(DEFAULT_LISTENERS, &fl.first);
    }
    c->listener_scheme = xstrdup(fl.first.scheme);
    c->listener_host = xstrdup(fl.first.host);
    c->listener_port = fl.first.port;

    /* Optional keys with defaults: get_str cannot fail here. */
    get_str(p, "rest.advertised.host.name", "", &c->advertised_host, err);
    /* Bounded so that WCONF_URL_MAX always fits the worker id and URL. */
    if (strlen(c->advertised_host) > 255)
        return invalid(err, "rest.advertised.host.name", c->advertised_host,
                       "Host name must be at most 255 characters");
    if (!*c->advertised_host) {
        free(c->advertised_host);
        char name[256] = "";
        if (!is_wildcard_host(c->listener_host))
            snprintf(name, sizeof name, "%s", c->listener_host);
        else if (gethostname(name, sizeof name - 1) != 0 || !*name)
            strcpy(name, "localhost");
        c->advertised_host = xstrdup(name);
    }
    ferr_code_t rc = get_int(p, "rest.advertised.port", c->listener_port, 1, 65535,
                             &c->advertised_port, err);
    if (rc)
        return rc;
    get_str(p, "rest.advertised.listener", c->listener_scheme, &c->advertised_scheme, err);
    char scheme[8];
    if (parse_scheme(c->advertised_scheme, strlen(c->advertised_scheme), scheme) != 0)
        return invalid(err, "rest.advertised.listener", c->advertised_scheme,
                       "Value must be either \"http\" or \"https\"");
    strcpy(c->advertised_scheme, scheme); /* same length, lower case */
    return FERR_OK;
}

/* ---- zookeeper.connect ---- */

/*
 * Checks the host list of zookeeper.connect and writes it out for the C client, which needs
 * every port: one missing is ZooKeeper's 2181, as its Java client (ConnectStringParser) takes
 * it. Entries are host, host:port, [v6] or [v6]:port. @returns NULL, or why it is wrong.
 */
static const char *check_zk_hosts(const char *hosts, FILE *out)
{
    if (!*hosts)
        return "No ZooKeeper host given (expected host:port[,host:port][/chroot])";
    for (const char *s = hosts;;) {
        size_t n = strcspn(s, ",");
        if (n == 0)
            return "Empty host found in the ZooKeeper host list";
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] <= ' ')
                return "The ZooKeeper host list must not contain whitespace";
        const char *close = s[0] == '[' ? memchr(s, ']', n) : NULL, *colon;
        if (s[0] == '[' && (!close || close == s + 1))
            return "An IPv6 ZooKeeper host must be written [address] or [address]:port";
        colon = close ? (close + 1 < s + n && close[1] == ':' ? close + 1 : NULL) : memrchr(s, ':', n);
        if (close && close + 1 < s + n && !colon)
            return "An IPv6 ZooKeeper host must be written [address] or [address]:port";
        if (colon == s)
            return "A ZooKeeper host needs a name before its port";
        if (colon) {
            size_t pl = n - (size_t)(colon + 1 - s);
            int64_t port;
            char pbuf[8] = "";
            if (pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") < pl)
                return "A ZooKeeper port must be a number from 1 to 65535 (host:port)";
            memcpy(pbuf, colon + 1, pl);
            if (parse_int64(pbuf, 1, 65535, &port))
                return "A ZooKeeper port must be a number from 1 to 65535 (host:port)";
        }
        fprintf(out, "%s%.*s%s", s == hosts ? "" : ",", (int)n, s, colon ? "" : ":2181");
        if (!s[n])
            return NULL;
        s += n + 1;
    }
}

/* ZooKeeper's path rules (PathUtils.validatePath), and the chroot after the last host only: in
 * "zk1:2181/ferry,zk2:2181" ZooKeeper would take "/ferry,zk2:2181" for the chroot. */
static const char *check_zk_root(const char *root)
{
    if (strchr(root, ','))
        return "The chroot must come after the last host (host1:2181,host2:2181/chroot): a ',' follows the "
               "first '/'";
    for (const unsigned char *u = (const unsigned char *)root; *u; u++) {
        int c1 = u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F;                  /* U+0080..U+009F */
        int sur = u[0] == 0xED && u[1] >= 0xA0;                                  /* U+D800.. */
        int pua = (u[0] == 0xEE) || (u[0] == 0xEF && u[1] <= 0xA3);              /* ..U+F8FF */
        int end = u[0] == 0xEF && u[1] == 0xBF && u[2] >= 0xB0;                  /* U+FFF0..U+FFFF */
        if (*u < ' ' || *u == 0x7F || c1 || sur || pua || end)
            return "Invalid chroot path (a control or reserved character)";
    }
    /* no empty, "." or ".." components, no trailing slash */
    for (const char *s = root + 1;;) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return "Invalid chroot path (empty, \".\" or \"..\" component, or trailing '/')";
        if (!s[n])
            return NULL;
        s += n + 1;
    }
}

static ferr_code_t get_zk(const props_t *p, wconf_t *c, ferr_t *err)
{
    ferr_code_t rc = get_str(p, "zookeeper.connect", NULL, &c->zookeeper_connect, err);
    if (rc)
        return rc;
    /* ZooKeeper's split: the chroot starts at the first '/' ("/" alone is no chroot) */
    const char *zc = c->zookeeper_connect, *slash = strchr(zc, '/');
    char *hosts = strndup(zc, slash ? (size_t)(slash - zc) : strlen(zc));
    size_t hl = 0;
    FILE *f = open_memstream(&c->zk_hosts, &hl);
    if (!hosts || !f)
        abort();
    c->zk_root = xstrdup(slash && strcmp(slash, "/") != 0 ? slash : "");
    const char *why = check_zk_hosts(hosts, f);
    fclose(f);
    free(hosts);
    if (!why && *c->zk_root)
        why = check_zk_root(c->zk_root);
    if (why)
        return invalid(err, "zookeeper.connect", zc, why);
    if ((rc = get_num(p, "zookeeper.session.timeout.ms", T_INT, 6000, 1000, INT32_MAX,
                      &c->session_timeout_ms, err)))
        return rc;
    /* Digest authentication, and ACLs that let only that identity near ferry's znodes
     * (Kafka's broker key zookeeper.set.acl; the credentials are ferry's own keys). */
    const char *acl = props_get(p, "zookeeper.set.acl"), *user = props_get(p, "zookeeper.digest.username"),
               *pass = props_get(p, "zookeeper.digest.password");
    char *acl_v = trimdup(acl ? acl : "false");
    int acl_bad = strcasecmp(acl_v, "true") && strcasecmp(acl_v, "false");
    c->zk_set_acl = !strcasecmp(acl_v, "true");
    free(acl_v);
    if (acl_bad)
        return invalid(err, "zookeeper.set.acl", acl, "Expected value to be either true or false");
    if ((user && *user) != (pass && *pass))
        return ferr_set(err, FERR_INVALID, "Invalid configuration zookeeper.digest.%s: "
                        "zookeeper.digest.username and zookeeper.digest.password go together",
                        user && *user ? "password" : "username");
    if (user && *user) {
        if (strchr(user, ':'))
            return invalid(err, "zookeeper.digest.username", user, "must not contain ':'");
        if (asprintf(&c->zk_digest, "%s:%s", user, pass) < 0)
            abort();
    }
    if (c->zk_set_acl && !c->zk_digest)
        return invalid(err, "zookeeper.set.acl", "true",
                       "needs zookeeper.digest.username and zookeeper.digest.password");
    return FERR_OK;
}

/* ---- lists, connector client overrides, internal request signing, limits ---- */

/* A LIST as Kafka's ConfigDef splits it: comma-separated, each entry trimmed, empty ones
 * dropped. NULL-terminated, owned (free with free_list). */
static char **split_list(const char *v)
{
    size_t n = 0, cap = 4;
    char **out = calloc(cap, sizeof *out);
    char *dup = xstrdup(v ? v : ""), *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trimdup(tok);
        if (!*t) {
            free(t);
            continue;
        }
        if (n + 2 > cap)
            out = realloc(out, (cap *= 2) * sizeof *out);
        if (!out)
            abort();
        out[n++] = t;
    }
    out[n] = NULL;
    free(dup);
    return out;
}

static void free_list(char **l)
{
    for (size_t i = 0; l && l[i]; i++)
        free(l[i]);
    free(l);
}

static ferr_code_t get_client_policy(const props_t *p, wconf_t *c, ferr_t *err)
{
    char *name = NULL;
    get_str(p, "connector.client.config.override.policy", "All", &name, err);
    int bad = cpolicy_parse(name, &c->client_policy.kind);
    ferr_code_t rc = bad ? invalid(err, "connector.client.config.override.policy", name,
                                   "Class could not be found: ferry's policies are None, Principal, All "
                                   "and Allowlist (KIP-1188)")
                         : FERR_OK;
    free(name);
    c->client_allowlist = split_list(props_get(p, "connector.client.config.override.allowlist"));
    c->client_policy.allow = (const char *const *)c->client_allowlist;
    return rc;
}

static ferr_code_t get_isig(const props_t *p, wconf_t *c, ferr_t *err)
{
    ferr_code_t rc;
    char *proto = NULL;
    get_str(p, "connect.protocol", "sessioned", &proto, err);
    c->isig_enabled = !strcasecmp(proto, "sessioned");
    int proto_ok = c->isig_enabled || !strcasecmp(proto, "compatible") || !strcasecmp(proto, "eager");
    rc = proto_ok ? FERR_OK : invalid(err, "connect.protocol", proto,
                                      "String must be one of (case insensitive): EAGER, COMPATIBLE, SESSIONED");
    free(proto);
    if (rc)
        return rc;
    get_str(p, "inter.worker.key.generation.algorithm", "HmacSHA256", &c->isig_key_algorithm, err);
    get_str(p, "inter.worker.signature.algorithm", "HmacSHA256", &c->isig_algorithm, err);
    static const char *const why = "the algorithm is not supported by this worker; the supported algorithms "
                                   "are: HmacSHA1, HmacSHA224, HmacSHA256, HmacSHA384, HmacSHA512";
    if (!isig_algorithm_ok(c->isig_key_algorithm))
        return invalid(err, "inter.worker.key.generation.algorithm", c->isig_key_algorithm, why);
    if (!isig_algorithm_ok(c->isig_algorithm))
        return invalid(err, "inter.worker.signature.algorithm", c->isig_algorithm, why);
    const char *vl = props_get(p, "inter.worker.verification.algorithms");
    c->isig_verify = split_list(vl ? vl : "HmacSHA256");
    if (!c->isig_verify[0])
        return invalid(err, "inter.worker.verification.algorithms", vl,
                       "At least one signature verification algorithm must be provided");
    int has_sig = 0;
    for (size_t i = 0; c->isig_verify[i]; i++) {
        if (!isig_algorithm_ok(c->isig_verify[i]))
            return invalid(err, "inter.worker.verification.algorithms", c->isig_verify[i], why);
        has_sig |= !strcmp(c->isig_verify[i], c->isig_algorithm);
    }
    if (!has_sig)
        return invalid(err, "inter.worker.signature.algorithm", c->isig_algorithm,
                       "Signature algorithm must be present in inter.worker.verification.algorithms list");
    int64_t bits;
    if ((rc = get_num(p, "inter.worker.key.size", T_INT, isig_default_key_bits(c->isig_key_algorithm), 64,
                      ISIG_KEY_MAX * 8, &bits, err)))
        return rc;
    if (bits % 8)
        return invalid(err, "inter.worker.key.size", props_get(p, "inter.worker.key.size"),
                       "Key size must be a multiple of 8 bits");
    c->isig_key_bits = (int)bits;
    return get_num(p, "inter.worker.key.ttl.ms", T_INT, 3600000, 0, INT32_MAX, &c->isig_key_ttl_ms, err);
}

/* With basic authentication or HTTPS on, whoever can write ferry's znodes could redirect the
 * requests (and the Authorization headers) a follower forwards to the leader: ACLs are then
 * on by default (zookeeper.set.acl defaults to true), and a worker without ZooKeeper
 * credentials refuses to start unless the operator turns them off with zookeeper.set.acl=false. */
static ferr_code_t check_zk_acl_needed(const props_t *p, wconf_t *c, ferr_t *err)
{
    const char *ext = props_get(p, "rest.extension.classes");
    int basic = ext && strstr(ext, "BasicAuthSecurityRestExtension");
    int https = !strcmp(c->listener_scheme, "https") || !strcmp(c->advertised_scheme, "https");
    if (!(basic || https) || props_get(p, "zookeeper.set.acl"))
        return FERR_OK;
    if (c->zk_digest) { /* the credentials are there: the ACLs are on by default */
        c->zk_set_acl = 1;
        return FERR_OK;
    }
        return ferr_set(err, FERR_INVALID,
                        "Missing configuration zookeeper.set.acl: with %s on, ferry's znodes must be protected "
                        "by ZooKeeper ACLs, or anyone who reaches ZooKeeper could redirect the requests (and "
                        "credentials) workers forward to the leader; set zookeeper.digest.username, "
                        "zookeeper.digest.password and zookeeper.set.acl=true, or zookeeper.set.acl=false to "
                        "accept that risk", basic ? "basic authentication" : "HTTPS");
    return FERR_OK;
}

/* ---- passthrough ---- */

/*
 * The client layer a key belongs to (an index into client_prefixes and wconf_t's layers) with
 * the key inside it in *sub, or -1 if it is not a client key.
 */
static int client_layer_of(const char *k, const char **sub)
{
    *sub = k;
    for (int i = 1; i < 4; i++) {
        size_t n = strlen(client_prefixes[i]);
        if (starts_with(k, client_prefixes[i]) && k[n] &&
            !(i == 3 && (!strcmp(k, "admin.listeners") || starts_with(k, "admin.listeners.")))) {
            *sub = k + n;
            return i;
        }
    }
    return in_list(k, common_keys, COUNT(common_keys)) || has_prefix_in(k, common_prefixes, COUNT(common_prefixes))
               ? 0 : -1;
}

/* The four client layers of @p c, in client_prefixes' order. */
static props_t **layers(const wconf_t *c, props_t **out)
{
    out[0] = c->common;
    out[1] = c->producer;
    out[2] = c->consumer;
    out[3] = c->admin;
    return out;
}

/* The client keys as written (Java's), per layer, translated into librdkafka's (jclient.h);
 * then the SASL mechanism of every client the worker builds from them: the storage, copy and
 * admin clients (top level + layer) and the tasks' source consumers (consumer.* alone). */
static ferr_code_t get_clients(const props_t *p, wconf_t *c, ferr_t *err)
{
    props_t *java[4], *dst[4];
    layers(c, dst);
    for (int i = 0; i < 4; i++)
        java[i] = props_new();
    for (size_t i = 0; i < props_count(p); i++) {
        const char *sub;
        int l = client_layer_of(props_key(p, i), &sub);
        if (l >= 0)
            props_set(java[l], sub, props_value(p, i));
    }
    ferr_code_t rc = FERR_OK;
    for (int i = 0; i < 4 && !rc; i++)
        rc = jclient_translate(java[i], i ? java[0] : NULL, client_prefixes[i], dst[i], c->notes, err);
    if (!rc)
        rc = jclient_check_mechanism(java[0], NULL, "", err);
    for (int i = 1; i < 4 && !rc; i++)
        rc = jclient_check_mechanism(java[i], java[0], client_prefixes[i], err);
    if (!rc)
        rc = jclient_check_mechanism(java[2], NULL, "consumer.", err);
    for (int i = 0; i < 4; i++)
        props_destroy(java[i]);
    return rc;
}

/* ---- what the file must not hold: placeholders and misspelt keys ---- */

static int is_known(const char *key)
{
    return in_list(key, known_keys, COUNT(known_keys)) || in_list(key, common_keys, COUNT(common_keys)) ||
           has_prefix_in(key, known_prefixes, COUNT(known_prefixes)) ||
           has_prefix_in(key, common_prefixes, COUNT(common_prefixes));
}

/* Config providers (${file:/path:key}) are not supported: a placeholder passed on literally
 * would be a password that is the text "${...}". */
static ferr_code_t check_placeholders(const props_t *p, ferr_t *err)
{
    for (size_t i = 0; i < props_count(p); i++) {
        const char *k = props_key(p, i), *v = props_value(p, i), *open = strstr(v, "${");
        if (open && strchr(open, '}'))
            return invalid(err, k, wconf_is_secret(k) ? "[hidden]" : v,
                           "${...} is a config provider placeholder, and ferry does not support config "
                           "providers (config.providers): write the value itself into the file");
    }
    return FERR_OK;
}

/* A known key a misspelt @p k stands for: a worker key, or a client prefix ("prodcer.acks"). */
static const char *suggest(const char *k, char *buf, size_t len)
{
    const char *s = typo_suggest(k, known_keys, COUNT(known_keys));
    if (!s)
        s = typo_suggest(k, common_keys, COUNT(common_keys));
    const char *dot = strchr(k, '.');
    if (!s && dot && dot - k < 32) {
        static const char *const segs[] = {"producer", "consumer", "admin", "ssl", "sasl"};
        char seg[32];
        snprintf(seg, sizeof seg, "%.*s", (int)(dot - k), k);
        const char *m = typo_suggest(seg, segs, COUNT(segs));
        if (m) {
            snprintf(buf, len, "%s%s", m, dot);
            s = buf;
        }
    }
    return s;
}

static ferr_code_t check_typos(const props_t *p, ferr_t *err)
{
    for (size_t i = 0; i < props_count(p); i++) {
        const char *k = props_key(p, i), *s;
        char buf[256];
        if (!is_known(k) && (s = suggest(k, buf, sizeof buf)))
            return ferr_set(err, FERR_INVALID, "The configuration '%s' isn't a known config; did you mean '%s'?", k,
                            s);
    }
    return FERR_OK;
}

/* ferry.log.level (the root logger) and ferry.log.level.<logger> (flog.h's names): the levels
 * the worker starts with; PUT /admin/loggers changes them later. */
static ferr_code_t get_log_levels(const props_t *p, wconf_t *c, ferr_t *err)
{
    for (int m = 0; m <= FLOG_M__COUNT; m++)
        c->log_levels[m] = -1;
    for (size_t i = 0; i < props_count(p); i++) {
        const char *k = props_key(p, i);
        if (strcmp(k, FERRY_LOG_LEVEL) && !starts_with(k, FERRY_LOG_LEVEL "."))
            continue;
        const char *logger = k[sizeof FERRY_LOG_LEVEL - 1] ? k + sizeof FERRY_LOG_LEVEL : "root";
        int m = flog_module_find(logger);
        if (m < 0) {
            const char *names[FLOG_M__COUNT + 1];
            char all[256] = "";
            for (int j = 0; j <= FLOG_M__COUNT; j++) {
                names[j] = flog_module_logger((flog_module_t)j);
                snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", j ? ", " : "", names[j]);
            }
            const char *s = typo_suggest(logger, names, COUNT(names));
            return ferr_set(err, FERR_INVALID, "Invalid configuration %s: ferry has no logger %s%s%s%s; its "
                            "loggers are %s", k, logger, s ? " (did you mean " : "", s ? s : "", s ? "?)" : "", all);
        }
        char *v = trimdup(props_value(p, i));
        int level = flog_level_parse(v);
        free(v);
        if (level < 0)
            return invalid(err, k, props_value(p, i), "String must be one of: ERROR, WARN, INFO, DEBUG, TRACE");
        c->log_levels[m] = level;
    }
    return FERR_OK;
}

/* ---- the whole config ---- */

static ferr_code_t wconf_fill(wconf_t *c, const props_t *p, ferr_t *err)
{
    ferr_code_t rc;
    for (size_t i = 0; i < props_count(p); i++)
        props_set(c->all, props_key(p, i), props_value(p, i));
    if ((rc = check_placeholders(p, err)) || (rc = check_typos(p, err)) ||
        (rc = get_str(p, "bootstrap.servers", NULL, &c->bootstrap_servers, err)))
        return rc;
    if ((rc = get_str(p, "group.id", NULL, &c->group_id, err)) ||
        (rc = get_topic(p, "config.storage.topic", &c->config_topic, err)) ||
        (rc = get_topic(p, "offset.storage.topic", &c->offset_topic, err)) ||
        (rc = get_topic(p, "status.storage.topic", &c->status_topic, err)))
        return rc;
    if (strcmp(c->offset_topic, c->config_topic) == 0)
        return invalid(err, "offset.storage.topic", c->offset_topic,
                       "Must not be the same topic as config.storage.topic");
    if (strcmp(c->status_topic, c->config_topic) == 0)
        return invalid(err, "status.storage.topic", c->status_topic,
                       "Must not be the same topic as config.storage.topic");
    if (strcmp(c->status_topic, c->offset_topic) == 0)
        return invalid(err, "status.storage.topic", c->status_topic,
                       "Must not be the same topic as offset.storage.topic");
    if ((rc = get_rf(p, "config.storage.replication.factor", &c->config_rf, err)) ||
        (rc = get_rf(p, "offset.storage.replication.factor", &c->offset_rf, err)) ||
        (rc = get_rf(p, "status.storage.replication.factor", &c->status_rf, err)) ||
        (rc = get_partitions(p, "offset.storage.partitions", 25, &c->offset_partitions, err)) ||
        (rc = get_partitions(p, "status.storage.partitions", 5, &c->status_partitions, err)) ||
        (rc = get_converter(p, "key.converter", NULL, &c->key_converter, err)) ||
        (rc = get_converter(p, "value.converter", NULL, &c->value_converter, err)) ||
        (rc = get_converter(p, "header.converter", SIMPLE_HEADER_CONVERTER, &c->header_converter,
                            err)) ||
        (rc = get_rest(p, c, err)) ||
        (rc = get_num(p, "offset.flush.interval.ms", T_LONG, 60000, 1, INT64_MAX,
                      &c->offset_flush_interval_ms, err)) ||
        (rc = get_num(p, "offset.flush.timeout.ms", T_LONG, 5000, 0, INT64_MAX,
                      &c->offset_flush_timeout_ms, err)) ||
        (rc = get_num(p, "task.shutdown.graceful.timeout.ms", T_LONG, 5000, 0, INT64_MAX,
                      &c->task_shutdown_timeout_ms, err)) ||
        (rc = get_num(p, "scheduled.rebalance.max.delay.ms", T_INT, 0, 0, INT32_MAX,
                      &c->scheduled_rebalance_max_delay_ms, err)) ||
        (rc = get_num(p, "ferry.memory.budget.bytes", T_LONG, MBUDGET_DEFAULT_BYTES, 0, INT64_MAX,
                      &c->memory_budget_bytes, err)) ||
        (rc = get_zk(p, c, err)) || (rc = check_zk_acl_needed(p, c, err)) ||
        (rc = get_client_policy(p, c, err)) || (rc = get_isig(p, c, err)) ||
        (rc = get_int(p, "ferry.copy.threads", 0, 0, 1024, &c->copy_threads, err)) ||
        (rc = get_int(p, "ferry.max.connectors", 1000, 1, INT32_MAX, &c->max_connectors, err)) ||
        (rc = get_int(p, "ferry.max.tasks.per.worker", 256, 1, INT32_MAX, &c->max_tasks_per_worker, err)) ||
        (rc = get_log_levels(p, c, err)))
        return rc;
    char *eos = NULL;
    if ((rc = get_str(p, "exactly.once.source.support", "disabled", &eos, err)))
        return rc;
    c->eos_source = !strcasecmp(eos, "enabled");
    int eos_ok = c->eos_source || !strcasecmp(eos, "disabled") || !strcasecmp(eos, "preparing");
    if (!eos_ok)
        rc = invalid(err, "exactly.once.source.support", eos,
                     "String must be one of (case insensitive): DISABLED, ENABLED, PREPARING");
    free(eos);
    return rc ? rc : get_clients(p, c, err);
}

wconf_t *wconf_new(const props_t *p, ferr_t *err)
{
    wconf_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->producer = props_new();
    c->consumer = props_new();
    c->admin = props_new();
    c->common = props_new();
    c->all = props_new();
    c->notes = props_new();
    if (wconf_fill(c, p, err) != FERR_OK) {
        wconf_destroy(c);
        return NULL;
    }
    return c;
}

void wconf_destroy(wconf_t *c)
{
    if (!c)
        return;
    char **strs[] = {&c->bootstrap_servers, &c->group_id,         &c->config_topic,
                     &c->offset_topic,      &c->status_topic,     &c->listener_scheme,
                     &c->listener_host,     &c->advertised_host,  &c->advertised_scheme,
                     &c->key_converter,     &c->value_converter,  &c->header_converter,
                     &c->zookeeper_connect, &c->zk_root,          &c->zk_hosts,
                     &c->zk_digest,         &c->isig_key_algorithm, &c->isig_algorithm};
    for (size_t i = 0; i < COUNT(strs); i++)
        free(*strs[i]);
    free_list(c->client_allowlist);
    free_list(c->isig_verify);
    props_destroy(c->producer);
    props_destroy(c->consumer);
    props_destroy(c->admin);
    props_destroy(c->common);
    props_destroy(c->all);
    props_destroy(c->notes);
    free(c);
}

/* ---- formatting ---- */

static const char *fmt_host_port(char *buf, size_t len, const char *scheme, const char *host,
                                 int port)
{
    int v6 = strchr(host, ':') != NULL;
    int n = snprintf(buf, len, "%s%s%s%s%s:%d", scheme ? scheme : "", scheme ? "://" : "",
                     v6 ? "[" : "", host, v6 ? "]" : "", port);
    return n >= 0 && (size_t)n < len ? buf : NULL;
}

const char *wconf_worker_id(const wconf_t *c, char *buf, size_t len)
{
    return fmt_host_port(buf, len, NULL, c->advertised_host, c->advertised_port);
}

const char *wconf_rest_url(const wconf_t *c, char *buf, size_t len)
{
    return fmt_host_port(buf, len, c->advertised_scheme, c->advertised_host, c->advertised_port);
}

int wconf_is_secret(const char *key)
{
    static const char *const marks[] = {
        "password", "passwd", "secret", "jaas.config", "basic.auth.", "credential",
        "ssl.key.pem", "ssl.keystore.key", "private.key", "access.token", "api.key",
        "oauthbearer.config",
    };
    for (size_t i = 0; i < COUNT(marks); i++)
        if (strcasestr(key, marks[i]))
            return 1;
    return 0;
}

/* ---- the summary ---- */

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int log_ignored_listener(const char *entry, size_t i, void *arg)
{
    if (i > 0)
        FLOG(WARN, WORKER, "ignoring listener %s: ferry serves only the first entry of listeners",
             entry);
    return 0;
}

/* Why a client key jclient dropped has no effect. */
static const char *unused_why(const char *key)
{
    if (strstr(key, JAAS_KEY))
        return "security.protocol is not SASL_PLAINTEXT or SASL_SSL, so no SASL login happens";
    if (strstr(key, "ssl.truststore.password"))
        return "librdkafka reads CA certificates from PEM, which has no password";
    return "the keystore is PEM: its key's password is ssl.key.password";
}

/* A value as it may be shown: secrets never are. */
static const char *shown(const char *key, const char *value)
{
    return wconf_is_secret(key) ? "[hidden]" : value;
}

/*
 * The effective value of every key the worker reads, defaults applied, as text: what the
 * start-up log and --check show. Caller destroys.
 */
static props_t *effective_props(const wconf_t *c)
{
    char num[32];
    props_t *eff = props_new();
    props_set(eff, "bootstrap.servers", c->bootstrap_servers);
    props_set(eff, "group.id", c->group_id);
    props_set(eff, "config.storage.topic", c->config_topic);
    props_set(eff, "offset.storage.topic", c->offset_topic);
    props_set(eff, "status.storage.topic", c->status_topic);
#define SET_NUM(key, v)                                                                            \
    do {                                                                                           \
        snprintf(num, sizeof num, "%lld", (long long)(v));                                         \
        props_set(eff, key, num);                                                                  \
    } while (0)
    SET_NUM("config.storage.replication.factor", c->config_rf);
    SET_NUM("offset.storage.replication.factor", c->offset_rf);
    SET_NUM("status.storage.replication.factor", c->status_rf);
    SET_NUM("offset.storage.partitions", c->offset_partitions);
    SET_NUM("status.storage.partitions", c->status_partitions);
    SET_NUM("offset.flush.interval.ms", c->offset_flush_interval_ms);
    SET_NUM("offset.flush.timeout.ms", c->offset_flush_timeout_ms);
    SET_NUM("task.shutdown.graceful.timeout.ms", c->task_shutdown_timeout_ms);
    SET_NUM("scheduled.rebalance.max.delay.ms", c->scheduled_rebalance_max_delay_ms);
    SET_NUM("zookeeper.session.timeout.ms", c->session_timeout_ms);
    SET_NUM("ferry.memory.budget.bytes", c->memory_budget_bytes);
    SET_NUM("ferry.copy.threads", c->copy_threads);
    SET_NUM("ferry.max.connectors", c->max_connectors);
    SET_NUM("ferry.max.tasks.per.worker", c->max_tasks_per_worker);
    SET_NUM("inter.worker.key.ttl.ms", c->isig_key_ttl_ms);
    SET_NUM("inter.worker.key.size", c->isig_key_bits);
    props_set(eff, "inter.worker.key.generation.algorithm", c->isig_key_algorithm);
    props_set(eff, "inter.worker.signature.algorithm", c->isig_algorithm);
    props_set(eff, "connect.protocol", c->isig_enabled ? "sessioned" : props_get(c->all, "connect.protocol"));
    props_set(eff, "connector.client.config.override.policy", cpolicy_name(c->client_policy.kind));
    props_set(eff, "zookeeper.set.acl", c->zk_set_acl ? "true" : "false");
    props_set(eff, "exactly.once.source.support", c->eos_source ? "enabled" : "disabled");
    SET_NUM("rest.advertised.port", c->advertised_port);
#undef SET_NUM
    char url[WCONF_URL_MAX];
    if (fmt_host_port(url, sizeof url, c->listener_scheme, c->listener_host, c->listener_port))
        props_set(eff, "listeners", url);
    props_set(eff, "rest.advertised.host.name", c->advertised_host);
    props_set(eff, "rest.advertised.listener", c->advertised_scheme);
    props_set(eff, "key.converter", c->key_converter);
    props_set(eff, "value.converter", c->value_converter);
    props_set(eff, "header.converter", c->header_converter);
    props_set(eff, "zookeeper.connect", c->zookeeper_connect);
    int root = c->log_levels[FLOG_M__COUNT];
    props_set(eff, FERRY_LOG_LEVEL, flog_level_name(root >= 0 ? (flog_level_t)root : FLOG_INFO));
    for (int m = 0; m < FLOG_M__COUNT; m++)
        if (c->log_levels[m] >= 0) {
            char k[64];
            snprintf(k, sizeof k, FERRY_LOG_LEVEL ".%s", flog_module_logger((flog_module_t)m));
            props_set(eff, k, flog_level_name((flog_level_t)c->log_levels[m]));
        }
    return eff;
}

/* Whether the deprecated rest.host.name/rest.port are what the listener came from. */
static int uses_deprecated_rest(const wconf_t *c)
{
    return !props_get(c->all, "listeners") &&
           (props_get(c->all, "rest.host.name") || props_get(c->all, "rest.port"));
}

void wconf_log_summary(const wconf_t *c)
{
    props_t *eff = effective_props(c);
    for (size_t i = 0; i < props_count(c->all); i++)
        if (!props_get(eff, props_key(c->all, i)))
            props_set(eff, props_key(c->all, i), props_value(c->all, i));

    size_t n = props_count(eff);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        abort();
    for (size_t i = 0; i < n; i++)
        keys[i] = props_key(eff, i);
    qsort(keys, n, sizeof *keys, cmp_keys);
    FLOG(INFO, WORKER, "worker config values:");
    for (size_t i = 0; i < n; i++)
        FLOG(INFO, WORKER, "\t%s = %s", keys[i], shown(keys[i], props_get(eff, keys[i])));
    free(keys);
    props_destroy(eff);

    for (size_t i = 0; i < props_count(c->all); i++)
        if (!is_known(props_key(c->all, i)))
            FLOG(WARN, WORKER, "The configuration '%s' was supplied but isn't a known config.", props_key(c->all, i));
    props_t *l[4];
    layers(c, l);
    for (int i = 0; i < 4; i++)
        for (size_t j = 0; j < props_count(l[i]); j++)
            if (!jclient_is_property(props_key(l[i], j)))
                FLOG(WARN, WORKER, "The configuration '%s%s' was supplied but librdkafka has no such property: "
                     "ferry's Kafka clients ignore it.", client_prefixes[i], props_key(l[i], j));
    for (size_t i = 0; i < props_count(c->notes); i++)
        if (!*props_value(c->notes, i))
            FLOG(INFO, WORKER, "%s is not used: %s", props_key(c->notes, i), unused_why(props_key(c->notes, i)));
    const char *lv = props_get(c->all, "listeners");
    if (lv)
        listeners_each(lv, log_ignored_listener, NULL);
    else if (uses_deprecated_rest(c))
        FLOG(WARN, WORKER, "rest.host.name and rest.port are deprecated; use listeners");
}

/* ---- --check: the same settings, grouped by what the worker does with them ---- */

/* One "  label  value" line; the label column fits the longest worker key. */
static void describe_line(FILE *out, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void describe_line(FILE *out, const char *label, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "  %-34s ", label);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

static void describe_storage_topic(FILE *out, const char *key, const char *topic, int partitions,
                                   int rf)
{
    char p[64] = "the broker's default number of partitions", r[64] = "the broker's default";
    if (partitions != -1)
        snprintf(p, sizeof p, "%d partition%s", partitions, partitions == 1 ? "" : "s");
    if (rf != -1)
        snprintf(r, sizeof r, "%d", rf);
    describe_line(out, key, "%s (%s, replication factor %s)", topic, p, r);
}

/* The client keys of one props_t, "key = value" with secrets hidden, or "(none)". */
static void describe_client_keys(FILE *out, const wconf_t *c, const char *prefix, const props_t *p)
{
    for (size_t i = 0; i < props_count(p); i++) {
        char full[512];
        snprintf(full, sizeof full, "%s%s", prefix, props_key(p, i));
        const char *from = props_get(c->notes, full);
        describe_line(out, props_key(p, i), "%s%s%s%s", shown(full, props_value(p, i)),
                      from && *from ? " (from " : "", from && *from ? from : "",
                      from && *from                          ? ")"
                      : !jclient_is_property(props_key(p, i)) ? " (not a librdkafka property: no effect)"
                                                              : "");
    }
}

static void describe_clients(FILE *out, const wconf_t *c, const char *title, const char *prefix, const props_t *p)
{
    fprintf(out, "\n%s\n", title);
    if (!props_count(p))
        fprintf(out, "  (none)\n");
    describe_client_keys(out, c, prefix, p);
}

static int describe_ignored_listener(const char *entry, size_t i, void *arg)
{
    if (i > 0)
        describe_line(arg, "not served", "%s (ferry serves only the first entry of listeners)",
                      entry);
    return 0;
}

/* Keys read by rest/sec.c (TLS of the https listener, basic authentication). */
static int is_rest_security_key(const char *k)
{
    return starts_with(k, "listeners.https.") || starts_with(k, "rest.basic.auth.") ||
           !strcmp(k, "rest.extension.classes");
}

static void describe_rest(FILE *out, const wconf_t *c, const props_t *eff)
{
    char buf[WCONF_URL_MAX];
    fprintf(out, "\nREST API (Kafka Connect's)\n");
    describe_line(out, "listeners", "%s (%s, port %d)%s", props_get(eff, "listeners"),
                  is_wildcard_host(c->listener_host) ? "all interfaces" : c->listener_host,
                  c->listener_port,
                  uses_deprecated_rest(c) ? " from the deprecated rest.host.name/rest.port" : "");
    const char *lv = props_get(c->all, "listeners");
    if (lv)
        listeners_each(lv, describe_ignored_listener, out);
    const char *guess = "";
    if (!props_get(c->all, "rest.advertised.host.name"))
        guess = is_wildcard_host(c->listener_host)
                    ? "; rest.advertised.host.name not set: this machine's host name"
                    : "; rest.advertised.host.name not set: the listener's host";
    describe_line(out, "advertised URL", "%s (other workers forward requests there%s)",
                  wconf_rest_url(c, buf, sizeof buf), guess);
    describe_line(out, "worker id", "%s", wconf_worker_id(c, buf, sizeof buf));
    for (size_t i = 0; i < props_count(c->all); i++)
        if (is_rest_security_key(props_key(c->all, i)))
            describe_line(out, props_key(c->all, i), "%s", shown(props_key(c->all, i), props_value(c->all, i)));
}

static void describe_zookeeper(FILE *out, const wconf_t *c, const props_t *eff)
{
    fprintf(out, "\nZooKeeper (group membership, leader election, task assignment)\n");
    describe_line(out, "hosts", "%s", c->zk_hosts);
    describe_line(out, "chroot", "%s", *c->zk_root ? c->zk_root : "(none)");
    describe_line(out, "group path", "%s/ferry/%s", c->zk_root, c->group_id);
    describe_line(out, "zookeeper.session.timeout.ms", "%s",
                  props_get(eff, "zookeeper.session.timeout.ms"));
}

/* Keys given but read by nobody: Kafka Connect keys ferry has no use for, and unknown keys. */
static void describe_leftovers(FILE *out, const wconf_t *c, const props_t *eff, int unknown)
{
    fprintf(out, "\n%s\n", unknown ? "Ignored (unknown keys)" : "Accepted without effect in ferry");
    size_t shown_n = 0;
    for (size_t i = 0; i < props_count(c->all); i++) {
        const char *k = props_key(c->all, i), *sub;
        int deprecated_rest = !strcmp(k, "rest.host.name") || !strcmp(k, "rest.port");
        int used = props_get(eff, k) || client_layer_of(k, &sub) >= 0 || is_rest_security_key(k) ||
                   (deprecated_rest && uses_deprecated_rest(c));
        const char *note = props_get(c->notes, k);
        if (note && !*note && !unknown) {
            describe_line(out, k, "%s (%s)", shown(k, props_value(c->all, i)), unused_why(k));
            shown_n++;
        }
        if (used || (unknown ? is_known(k) : !is_known(k)))
            continue;
        describe_line(out, k, "%s", shown(k, props_value(c->all, i)));
        shown_n++;
    }
    if (!shown_n)
        fprintf(out, "  (none)\n");
}

void wconf_describe(const wconf_t *c, FILE *out)
{
    static const char *const task_keys[] = {
        "key.converter", "value.converter", "header.converter", "offset.flush.interval.ms",
        "offset.flush.timeout.ms", "task.shutdown.graceful.timeout.ms",
        "scheduled.rebalance.max.delay.ms", "exactly.once.source.support",
        "ferry.memory.budget.bytes", "ferry.copy.threads", "ferry.max.connectors", "ferry.max.tasks.per.worker",
    };
    static const char *const security_keys[] = {
        "connector.client.config.override.policy", "connect.protocol", "inter.worker.key.generation.algorithm",
        "inter.worker.key.size", "inter.worker.key.ttl.ms", "inter.worker.signature.algorithm",
        "zookeeper.set.acl",
    };
    props_t *eff = effective_props(c);
    fprintf(out, "Destination cluster (stores the worker state, receives the copies)\n");
    describe_line(out, "bootstrap.servers", "%s", c->bootstrap_servers);
    describe_client_keys(out, c, "", c->common);

    fprintf(out, "\nGroup and storage topics (created if missing, compacted)\n");
    describe_line(out, "group.id", "%s", c->group_id);
    describe_storage_topic(out, "config.storage.topic", c->config_topic, 1, c->config_rf);
    describe_storage_topic(out, "offset.storage.topic", c->offset_topic, c->offset_partitions,
                           c->offset_rf);
    describe_storage_topic(out, "status.storage.topic", c->status_topic, c->status_partitions,
                           c->status_rf);

    describe_rest(out, c, eff);
    describe_zookeeper(out, c, eff);

    fprintf(out, "\nTasks and offsets\n");
    for (size_t i = 0; i < COUNT(task_keys); i++)
        describe_line(out, task_keys[i], "%s", props_get(eff, task_keys[i]));

    fprintf(out, "\nSecurity (what connector configs may set, signed internal requests, ZooKeeper ACLs)\n");
    for (size_t i = 0; i < COUNT(security_keys); i++)
        describe_line(out, security_keys[i], "%s", props_get(eff, security_keys[i]));
    if (c->client_policy.kind == CPOLICY_ALLOWLIST) {
        char *joined = NULL;
        size_t jl = 0;
        FILE *f = open_memstream(&joined, &jl);
        for (size_t i = 0; c->client_allowlist[i]; i++)
            fprintf(f, "%s%s", i ? "," : "", c->client_allowlist[i]);
        fclose(f);
        describe_line(out, "connector.client.config.override.allowlist", "%s", *joined ? joined : "(empty)");
        free(joined);
    }

    fprintf(out, "\nLogging (start-up levels; PUT /admin/loggers/<logger> changes them)\n");
    for (size_t i = 0; i < props_count(eff); i++)
        if (starts_with(props_key(eff, i), FERRY_LOG_LEVEL))
            describe_line(out, props_key(eff, i), "%s", props_value(eff, i));

    describe_clients(out, c, "Passed to the producers (producer.*)", "producer.", c->producer);
    describe_clients(out, c, "Passed to the consumers (consumer.*)", "consumer.", c->consumer);
    describe_clients(out, c, "Passed to the admin clients (admin.*)", "admin.", c->admin);
    describe_leftovers(out, c, eff, 0);
    describe_leftovers(out, c, eff, 1);
    props_destroy(eff);
}
