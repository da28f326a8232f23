/* repl: EMRReplicatorSourceConnector. See repl.h.
 *
 * Validation mirrors Kafka Connect's ConfigDef: every key has a type, a default and a
 * validator; the result is the ConfigInfos document of PUT .../config/validate, and a
 * create/update with any error is refused with 400 before anything is written. */
#include "worker/repl.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/cpolicy.h"
#include "worker/flog.h"
#include "worker/gsync.h"
#include "worker/jclient.h"
#include "worker/kutil.h"
#include "worker/typo.h"

#define BYTE_ARRAY "org.apache.kafka.connect.converters.ByteArrayConverter"

/* ---- config definition ------------------------------------------------------------ */

typedef enum { T_STRING, T_INT, T_LONG, T_LIST, T_CLASS, T_BOOLEAN, T_PASSWORD } ktype_t;

typedef struct keydef {
    const char *name;
    ktype_t type;
    const char *def; /* NULL = no default */
    int required;
    const char *importance;
    const char *group;
    const char *doc;
} keydef_t;

static const char *type_names[] = {"STRING", "INT", "LONG", "LIST", "CLASS", "BOOLEAN", "PASSWORD"};

static const keydef_t defs[] = {
    {"name", T_STRING, NULL, 1, "HIGH", "Common", "Globally unique name to use for this connector."},
    {"connector.class", T_STRING, NULL, 1, "HIGH", "Common",
     "Name or alias of the class for this connector: " REPL_CLASS "."},
    {"tasks.max", T_INT, "1", 0, "HIGH", "Common", "Maximum number of tasks to use for this connector."},
    {"tasks.max.enforce", T_BOOLEAN, "true", 0, "LOW", "Common",
     "Kafka Connect's check that a connector generates at most tasks.max task configs. ferry never "
     "generates more, so both values behave the same."},
    {"config.action.reload", T_STRING, "restart", 0, "LOW", "Common",
     "restart or none: what to do when a config provider changes a value. ferry has no config "
     "providers, so no value ever changes that way."},
    {"key.converter", T_CLASS, NULL, 0, "LOW", "Common",
     "Converter class for keys. ferry copies bytes verbatim: only " BYTE_ARRAY " is supported."},
    {"value.converter", T_CLASS, NULL, 0, "LOW", "Common",
     "Converter class for values. ferry copies bytes verbatim: only " BYTE_ARRAY " is supported."},
    {"header.converter", T_CLASS, NULL, 0, "LOW", "Common",
     "Header converter class. Headers are always copied verbatim."},
    {"src.kafka.bootstrap.servers", T_LIST, NULL, 1, "HIGH", "Source",
     "Bootstrap servers of the source Kafka cluster."},
    {"src.zookeeper.connect", T_STRING, "", 0, "LOW", "Source",
     "Accepted for compatibility; ferry reads topic metadata from the source brokers instead."},
    {"dest.zookeeper.connect", T_STRING, "", 0, "LOW", "Destination",
     "Accepted for compatibility; ferry creates destination topics through the admin API."},
    {"topic.whitelist", T_LIST, "", 0, "HIGH", "Topics", "Comma-separated source topics to copy."},
    {"topic.regex", T_STRING, "", 0, "HIGH", "Topics",
     "POSIX extended regular expression; source topics whose whole name matches are copied."},
    {"topic.blacklist", T_LIST, "", 0, "MEDIUM", "Topics", "Source topics never copied."},
    {"topic.rename.format", T_STRING, "${topic}.replica", 0, "HIGH", "Topics",
     "Destination topic name; ${topic} is replaced by the source topic name."},
    {"topic.poll.interval.ms", T_LONG, "5000", 0, "LOW", "Topics",
     "How often the source cluster is checked for new topics and partitions."},
    {"src.kafka.max.poll.records", T_INT, "500", 0, "MEDIUM", "Source",
     "Maximum number of records taken from the source consumer in one batch."},
    {"offset.start", T_STRING, "earliest", 0, "MEDIUM", "Source",
     "Where to start a partition with no stored offset: earliest or latest."},
    {"dest.topic.replication.factor", T_INT, "0", 0, "LOW", "Destination",
     "Replication factor of destination topics ferry creates; 0 = min(3, brokers)."},
    {"provenance.header.enable", T_BOOLEAN, "false", 0, "LOW", "Destination",
     "Add a __ferry.provenance header and skip records that came from the destination cluster."},
    {"source.offset.header.enable", T_BOOLEAN, "true", 0, "MEDIUM", "Delivery",
     "Write each record's source offset in a header, and resume a partition a task takes over "
     "right after the last source offset found at the end of its destination partition, so "
     "that records are not copied twice after a crash. false: no extra header; resume from the "
     "stored offsets only (at-least-once). Record-by-record copies only: a forwarded batch "
     "(copy.mode) cannot take a header, and resumes by finding the destination's last batch "
     "in the source."},
    {"source.offset.header.name", T_STRING, REPL_OFFSET_HEADER, 0, "LOW", "Delivery",
     "Name of the source-offset header (8-byte big-endian offset)."},
    {"exactly.once.support", T_STRING, "requested", 0, "MEDIUM", "Delivery",
     "requested or required (KIP-618). With exactly.once.source.support=enabled on the worker, "
     "records and their source offsets are written in one producer transaction per "
     "transaction.boundary; required makes tasks fail on workers without it."},
    {"transaction.boundary", T_STRING, "poll", 0, "MEDIUM", "Delivery",
     "When a transaction commits: poll (after every batch taken from the source) or interval "
     "(every transaction.boundary.interval.ms)."},
    {"transaction.boundary.interval.ms", T_LONG, NULL, 0, "LOW", "Delivery",
     "Commit interval for transaction.boundary=interval; default offset.flush.interval.ms."},
    {"groups", T_LIST, "", 0, "MEDIUM", "Consumer groups",
     "Consumer groups whose committed source offsets ferry translates to the destination copies "
     "and commits there (never backwards, never for a group active on the destination)."},
    {"groups.regex", T_STRING, "", 0, "MEDIUM", "Consumer groups",
     "POSIX extended regular expression: the source's consumer groups whose whole name matches "
     "are translated too (needs ListGroups on the source cluster; name groups in groups where the "
     "source cannot list them)."},
    {"sync.group.offsets.interval.ms", T_LONG, "60000", 0, "LOW", "Consumer groups",
     "How often the leader translates the groups named in groups while the connector runs; "
     "0 = only on demand (POST /connectors/{name}/groups/{group}/translate)."},
    {"errors.tolerance", T_STRING, "none", 0, "MEDIUM", "Error Handling",
     "none: an error fails the task. ferry copies bytes, so no record can fail a conversion or a "
     "transformation; a record the destination refuses fails the task, and all, which would skip "
     "records, is refused."},
    {"errors.retry.timeout", T_LONG, "0", 0, "MEDIUM", "Error Handling",
     "How long Kafka Connect retries a failed conversion or transformation (-1: forever). ferry has "
     "neither; its writes to the destination are retried until they succeed."},
    {"errors.retry.delay.max.ms", T_LONG, "60000", 0, "MEDIUM", "Error Handling",
     "The longest pause between those retries (at least 1)."},
    {"errors.log.enable", T_BOOLEAN, "false", 0, "MEDIUM", "Error Handling",
     "With errors.tolerance=none every error fails the task and ferry logs it, whatever this says."},
    {"errors.log.include.messages", T_BOOLEAN, "false", 0, "MEDIUM", "Error Handling",
     "ferry never writes record keys, values or headers to its log, whatever this says."},
    {"copy.mode", T_STRING, "auto", 0, "MEDIUM", "Delivery",
     "How records are copied: batch forwards each source record batch as it is (ferry's own Kafka "
     "client; keys, values, headers, timestamps and compression byte for byte, no decoding), with "
     "the partition going record by record wherever a batch cannot be forwarded exactly; record "
     "copies record by record (librdkafka); auto is batch where the connection settings and the "
     "connector allow it (not with provenance.header.enable or exactly.once.source.support), "
     "record otherwise. batch fails the tasks where it is not possible."},
    {"src.cluster.alias", T_STRING, "source", 0, "LOW", "Destination", "Name of the source cluster."},
    {"dest.cluster.alias", T_STRING, "destination", 0, "LOW", "Destination",
     "Name of the destination cluster."},
};
#define NDEFS (sizeof defs / sizeof defs[0])

int repl_class_matches(const char *cls)
{
    if (!cls)
        return 0;
    const char *dot = strrchr(cls, '.');
    const char *simple = dot ? dot + 1 : cls;
    /* a package prefix is dotted segments, none of them empty */
    for (const char *p = cls; p < simple; p++)
        if (*p == '.' && (p == cls || p[-1] == '.'))
            return 0;
    return strcmp(simple, REPL_CLASS) == 0 || strcmp(simple, "EMRReplicatorSource") == 0;
}

static int parse_long(const char *s, long long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static const char *cfg_str(const json_t *config, const char *key)
{
    const keydef_t *d = NULL;
    for (size_t i = 0; i < NDEFS; i++)
        if (!strcmp(defs[i].name, key))
            d = &defs[i];
    const char *v = json_string_value(json_object_get(config, key));
    return v ? v : d ? d->def : NULL;
}

static long long cfg_ll(const json_t *config, const char *key)
{
    long long v = 0;
    parse_long(cfg_str(config, key), &v);
    return v;
}

static int list_nonempty(const char *s)
{
    for (; s && *s; s++)
        if (*s != ',' && *s != ' ')
            return 1;
    return 0;
}

static size_t list_count(const char *s)
{
    size_t n = 0;
    char *dup = strdup(s ? s : ""), *save, *tok;
    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            n++;
    }
    free(dup);
    return n;
}

/* Type check of one value; returns an error string or NULL. */
static char *check_type(const keydef_t *d, const char *v)
{
    char *err = NULL;
    long long n;
    switch (d->type) {
    case T_INT:
        if (parse_long(v, &n) || n < INT32_MIN || n > INT32_MAX)
            asprintf(&err, "Invalid value %s for configuration %s: Not a number of type INT", v, d->name);
        break;
    case T_LONG:
        if (parse_long(v, &n))
            asprintf(&err, "Invalid value %s for configuration %s: Not a number of type LONG", v, d->name);
        break;
    case T_BOOLEAN:
        if (strcasecmp(v, "true") && strcasecmp(v, "false"))
            asprintf(&err, "Invalid value %s for configuration %s: Expected value to be either true or false", v, d->name);
        break;
    default:
        break;
    }
    return err;
}

/* ---- topic.regex --------------------------------------------------------------------- */

/* topic.regex comes from REST, and glibc's regcomp() is not safe on hostile patterns:
 *  - it writes a subexpression out once per repetition it implies ('+' twice, {n,m} m times),
 *    with a node per operator, so stacked or nested repetitions multiply ("a" and 24 '+' took
 *    12 GB), and its epsilon closures grow with the square of the nodes ("(a?){10000}": 1.5 GB);
 *  - a loop or an option over something that can match the empty string makes the epsilon
 *    closures explode: "(d*)*" 20 times in a row took 1 s (twice as long with each one more),
 *    "((a?)?){325}" 14 s and 4 GB.
 * So a pattern is checked before it is compiled: at most REGEX_MAX_NODES nodes once its
 * repetitions are expanded, and no repetition but an exact {n} over a subexpression that can
 * match the empty string (write "a*", not "(a*)*" or "(a?)?"). Patterns for topic names are
 * far from both limits. */
#define REGEX_MAX_NODES 2000
#define REGEX_MAX_DEPTH 100
#define REGEX_REFUSED (REGEX_MAX_NODES + 1.0)

typedef struct rx_cost {
    double nodes; /* upper bound of the nodes glibc builds */
    int empty;    /* can match the empty string */
} rx_cost_t;

/* The repetition operator at *p (*, +, ?, {n}, {n,}, {,m}, {n,m}), which it skips: applies it
 * to @p c, the cost of what it repeats. */
static rx_cost_t rx_repeat(const char **p, rx_cost_t c)
{
    char op = *(*p)++;
    double lo = op == '+', hi = op == '?' ? 1 : -1; /* hi < 0: no upper bound */
    if (op == '{') {
        for (lo = 0; **p >= '0' && **p <= '9';)
            lo = lo * 10 + (*(*p)++ - '0');
        hi = lo;
        if (**p == ',') {
            (*p)++;
            hi = **p >= '0' && **p <= '9' ? 0 : -1;
            while (**p >= '0' && **p <= '9')
                hi = hi * 10 + (*(*p)++ - '0');
        }
        if (**p == '}')
            (*p)++;
    }
    if (c.empty && hi != lo) /* anything but {n} over what can match the empty string */
        return (rx_cost_t){REGEX_REFUSED, 1};
    double copies = hi < 0 ? lo + 1 : hi;
    return (rx_cost_t){(c.nodes + 1) * (copies > 1 ? copies : 1), c.empty || lo == 0};
}

static rx_cost_t rx_alt(const char **p, int depth);

/* The atom at *p, which it skips: a group, a bracket expression, an anchor, an escaped or a
 * plain character. */
static rx_cost_t rx_atom(const char **p, int depth)
{
    const char *s = *p;
    if (*s == '(') {
        *p = s + 1;
        rx_cost_t c = depth < REGEX_MAX_DEPTH ? rx_alt(p, depth + 1) : (rx_cost_t){REGEX_REFUSED, 0};
        if (**p == ')')
            (*p)++;
        return (rx_cost_t){c.nodes + 1, c.empty};
    }
    if (*s == '[') { /* to the first ']' after the first member: never past glibc's end */
        s += s[1] == '^' ? 2 : 1;
        s += *s == ']';
        while (*s && *s != ']')
            s++;
        *p = *s ? s + 1 : s;
        return (rx_cost_t){1, 0};
    }
    *p = s + (*s == '\\' && s[1] ? 2 : 1);
    /* anchors, and back-references (which may have matched nothing), match the empty string */
    return (rx_cost_t){1, *s == '^' || *s == '$' || (*s == '\\' && s[1] >= '1' && s[1] <= '9')};
}

/* The alternation at *p, up to the ')' that closes its group (at depth 0, up to the end:
 * glibc takes a stray ')' literally). */
static rx_cost_t rx_alt(const char **p, int depth)
{
    rx_cost_t alt = {0, 0}, last = {0, 1}; /* last: the latest atom with its repetitions */
    int before_empty = 1;                   /* the atoms of this branch before `last` */
    while (**p && !(depth && **p == ')')) {
        char c = **p;
        if (c == '|') {
            (*p)++;
            alt.empty |= before_empty && last.empty;
            before_empty = 1;
            last = (rx_cost_t){0, 1};
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            rx_cost_t grown = rx_repeat(p, last);
            alt.nodes += grown.nodes - last.nodes;
            last = grown;
        } else {
            before_empty &= last.empty;
            last = rx_atom(p, depth);
            alt.nodes += last.nodes;
        }
    }
    alt.empty |= before_empty && last.empty;
    return alt;
}

/* Compiles topic.regex to match whole topic names. @returns 0, regcomp()'s error, or
 * REG_ESPACE for a pattern refused as too costly (see above). */
static int regex_compile(regex_t *re, const char *rx)
{
    char *anchored;
    if (asprintf(&anchored, "^(%s)$", rx) < 0)
        abort();
    const char *p = anchored;
    int rc = rx_alt(&p, 0).nodes > REGEX_MAX_NODES ? REG_ESPACE
                                                    : regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    return rc;
}

/* ---- checks against the worker ------------------------------------------------------ */

static json_t *list_set(const char *s);

/* The source topic that @p fmt renames to @p target, if any (each ${topic} stands for the same
 * name, so its length and then the name itself follow from the target). malloc'd, or NULL. */
static char *rename_source(const char *fmt, const char *target)
{
    size_t k = 0, lit = strlen(fmt), tl = strlen(target);
    for (const char *p = fmt; (p = strstr(p, "${topic}")); p += 8, k++)
        lit -= 8;
    if (!k || tl <= lit || (tl - lit) % k)
        return NULL;
    char *src = strndup(target + (strstr(fmt, "${topic}") - fmt), (tl - lit) / k);
    char *back = repl_rename(fmt, src);
    int same = !strcmp(back, target);
    free(back);
    if (!same)
        free(src);
    return same ? src : NULL;
}

/* 1 if the comma lists @p a and @p b share an entry (host case-insensitive): two bootstrap
 * lists that name the same broker reach the same cluster. No DNS: "localhost:9092" and
 * "127.0.0.1:9092" are not recognised as one broker. */
static int lists_share(const char *a, const char *b)
{
    json_t *sa = list_set(a), *sb = list_set(b);
    int shared = 0;
    const char *ka, *kb;
    json_t *va, *vb;
    json_object_foreach(sa, ka, va) {
        json_object_foreach(sb, kb, vb) shared |= !strcasecmp(ka, kb);
    }
    json_decref(sa);
    json_decref(sb);
    return shared;
}

/* topic.rename.format against the worker that runs the connector: no selected source topic may
 * be renamed onto a topic the worker itself writes (its three storage topics, and Kafka's
 * consumer-offset and transaction-state topics its clients use), and when the source cluster is
 * the worker's own, no topic may be renamed onto itself (each copied record would be read and
 * copied again, endlessly). @returns an error string or NULL. */
static char *check_worker(const char *fmt, const json_t *config, const wconf_t *wc)
{
    ferr_t ferr = {0};
    repl_select_t *sel = repl_select_new(config, &ferr);
    if (!sel)
        return NULL; /* topic.regex carries the error */
    const struct {
        const char *topic, *what;
    } internal[] = {
        {wc->config_topic, "the worker's config.storage.topic"},
        {wc->offset_topic, "the worker's offset.storage.topic"},
        {wc->status_topic, "the worker's status.storage.topic"},
        {"__consumer_offsets", "Kafka's internal topic"},
        {"__transaction_state", "Kafka's internal topic"},
    };
    int templ = strstr(fmt, "${topic}") != NULL;
    char *err = NULL;
    for (size_t i = 0; !err && i < sizeof internal / sizeof internal[0]; i++) {
        const char *t = internal[i].topic;
        if (!t)
            continue;
        if (templ) {
            char *src = rename_source(fmt, t);
            if (src && repl_select_match(sel, src))
                asprintf(&err, "Invalid value %s for configuration topic.rename.format: source topic %s "
                               "would be copied onto %s %s and corrupt it", fmt, src, internal[i].what, t);
            free(src);
        } else if (!strcmp(fmt, t)) { /* a literal name: the one whitelisted topic goes there */
            json_t *white = list_set(cfg_str(config, "topic.whitelist"));
            void *it = json_object_iter(white);
            asprintf(&err, "Invalid value %s for configuration topic.rename.format: source topic %s "
                           "would be copied onto %s %s and corrupt it", fmt,
                     it ? json_object_iter_key(it) : "?", internal[i].what, t);
            json_decref(white);
        }
    }
    if (!err && lists_share(cfg_str(config, "src.kafka.bootstrap.servers"), wc->bootstrap_servers)) {
        if (!strcmp(fmt, "${topic}"))
            asprintf(&err, "Invalid value %s for configuration topic.rename.format: src.kafka.bootstrap.servers "
                           "names this worker's own cluster (bootstrap.servers), so every topic would be "
                           "copied onto itself, endlessly", fmt);
        else if (!templ && repl_select_match(sel, fmt))
            asprintf(&err, "Invalid value %s for configuration topic.rename.format: src.kafka.bootstrap.servers "
                           "names this worker's own cluster (bootstrap.servers), so topic %s would be "
                           "copied onto itself, endlessly", fmt, fmt);
    }
    repl_select_destroy(sel);
    return err;
}

/* Semantic checks beyond the type; returns an error string or NULL. */
static char *check_value(const keydef_t *d, const char *v, const json_t *config, const wconf_t *wc)
{
    char *err = NULL;
    const char *n = d->name;
    if (!strcmp(n, "tasks.max") && cfg_ll(config, n) < 1)
        asprintf(&err, "Invalid value %s for configuration tasks.max: Value must be at least 1", v);
    else if (!strcmp(n, "connector.class") && !repl_class_matches(v))
        asprintf(&err, "Failed to find any class that implements Connector and which name matches "
                       "%s, available connectors are: " REPL_CLASS, v);
    else if ((!strcmp(n, "key.converter") || !strcmp(n, "value.converter")) && strcmp(v, BYTE_ARRAY) &&
             strcmp(v, "ByteArrayConverter"))
        asprintf(&err, "Invalid value %s for configuration %s: ferry copies records byte for byte "
                       "and supports only " BYTE_ARRAY, v, n);
    else if (!strcmp(n, "src.kafka.bootstrap.servers") && !list_nonempty(v))
        asprintf(&err, "Missing required configuration \"%s\" which has no default value.", n);
    else if (!strcmp(n, "topic.whitelist") && !list_nonempty(v) && !list_nonempty(cfg_str(config, "topic.regex")))
        asprintf(&err, "Either topic.whitelist or topic.regex must name at least one topic");
    else if ((!strcmp(n, "topic.regex") || !strcmp(n, "groups.regex")) && *v) {
        regex_t re;
        int rc = regex_compile(&re, v);
        if (rc == REG_ESPACE)
            asprintf(&err, "Invalid value %s for configuration %s: too complex (more than "
                           "%d nodes once repetitions are expanded, or a repetition such as (a*)* "
                           "of something that can match the empty string)", v, n, REGEX_MAX_NODES);
        else if (rc)
            asprintf(&err, "Invalid value %s for configuration %s: not a valid regular expression", v, n);
        else
            regfree(&re);
    } else if (!strcmp(n, "topic.rename.format")) {
        if (!*v)
            asprintf(&err, "Invalid value for configuration topic.rename.format: must not be empty");
        else if (!strstr(v, "${topic}") &&
                 (list_count(cfg_str(config, "topic.whitelist")) != 1 ||
                  list_nonempty(cfg_str(config, "topic.regex"))))
            asprintf(&err, "Invalid value %s for configuration topic.rename.format: a name without "
                           "${topic} is only valid when topic.whitelist names exactly one topic", v);
        else if (wc)
            err = check_worker(v, config, wc);
    } else if (!strcmp(n, "topic.poll.interval.ms") && cfg_ll(config, n) < 100)
        asprintf(&err, "Invalid value %s for configuration %s: Value must be at least 100", v, n);
    else if (!strcmp(n, "src.kafka.max.poll.records") && (cfg_ll(config, n) < 1 || cfg_ll(config, n) > 1000000))
        asprintf(&err, "Invalid value %s for configuration %s: Value must be between 1 and 1000000", v, n);
    else if (!strcmp(n, "exactly.once.support") && strcmp(v, "requested") && strcmp(v, "required"))
        asprintf(&err, "Invalid value %s for configuration exactly.once.support: must be requested or required", v);
    else if (!strcmp(n, "transaction.boundary") && strcmp(v, "poll") && strcmp(v, "interval"))
        asprintf(&err, "Invalid value %s for configuration transaction.boundary: must be poll or interval "
                       "(connector-defined boundaries do not apply to a replicator)", v);
    else if (!strcmp(n, "transaction.boundary.interval.ms") && cfg_ll(config, n) < 1)
        asprintf(&err, "Invalid value %s for configuration %s: Value must be at least 1", v, n);
    else if (!strcmp(n, "source.offset.header.name") && !*v)
        asprintf(&err, "Invalid value for configuration source.offset.header.name: must not be empty");
    else if (!strcmp(n, "copy.mode") && strcmp(v, "auto") && strcmp(v, "record") && strcmp(v, "batch"))
        asprintf(&err, "Invalid value %s for configuration copy.mode: must be auto, record or batch", v);
    else if (!strcmp(n, "copy.mode") && !strcmp(v, "batch") &&
             !strcasecmp(cfg_str(config, "provenance.header.enable"), "true"))
        asprintf(&err, "Invalid value batch for configuration copy.mode: provenance.header.enable adds a header to "
                       "every record, which a forwarded batch cannot carry");
    else if (!strcmp(n, "offset.start") && strcmp(v, "earliest") && strcmp(v, "latest"))
        asprintf(&err, "Invalid value %s for configuration offset.start: must be earliest or latest", v);
    else if (!strcmp(n, "sync.group.offsets.interval.ms") && cfg_ll(config, n) != 0 && cfg_ll(config, n) < 100)
        asprintf(&err, "Invalid value %s for configuration %s: Value must be 0 or at least 100", v, n);
    else if (!strcmp(n, "groups") && list_nonempty(v)) {
        json_t *g = repl_groups(config);
        size_t i;
        json_t *e;
        json_array_foreach(g, i, e) if (!err && !gsync_group_name_ok(json_string_value(e)))
            asprintf(&err, "Invalid value %s for configuration groups: %s is not a valid consumer group name", v,
                     json_string_value(e));
        json_decref(g);
    } else if (!strcmp(n, "dest.topic.replication.factor") && (cfg_ll(config, n) < 0 || cfg_ll(config, n) > 32767))
        asprintf(&err, "Invalid value %s for configuration %s: must be between 0 and 32767", v, n);
    else if (!strcmp(n, "config.action.reload") && strcasecmp(v, "restart") && strcasecmp(v, "none"))
        asprintf(&err, "Invalid value %s for configuration config.action.reload: String must be one of "
                       "(case insensitive): NONE, RESTART", v);
    else if (!strcmp(n, "errors.tolerance") && strcasecmp(v, "none"))
        asprintf(&err, "Invalid value %s for configuration errors.tolerance: %s", v,
                 !strcasecmp(v, "all") ? "ferry does not support skipping records (errors.tolerance=all): a record "
                                         "the destination refuses fails the task"
                                       : "String must be one of (case insensitive): NONE, ALL");
    else if (!strcmp(n, "errors.retry.timeout") && cfg_ll(config, n) < -1)
        asprintf(&err, "Invalid value %s for configuration %s: Value must be at least -1", v, n);
    else if (!strcmp(n, "errors.retry.delay.max.ms") && cfg_ll(config, n) < 1)
        asprintf(&err, "Invalid value %s for configuration %s: Value must be at least 1", v, n);
    return err;
}

static json_t *definition_json(const keydef_t *d, int order)
{
    return json_pack("{s:s,s:s,s:b,s:s?,s:s,s:s,s:s,s:i,s:s,s:s,s:[]}", "name", d->name, "type",
                     type_names[d->type], "required", d->required, "default_value", d->def,
                     "importance", d->importance, "documentation", d->doc, "group", d->group,
                     "order", order, "width", "NONE", "display_name", d->name, "dependents");
}

json_t *repl_config_defs(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < NDEFS; i++)
        json_array_append_new(a, definition_json(&defs[i], (int)i + 1));
    return a;
}

static int is_def(const char *key)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (!strcmp(defs[i].name, key))
            return 1;
    return 0;
}

/* The names of defs, for typo_suggest(). */
static const char *const *def_names(void)
{
    static const char *names[NDEFS];
    for (size_t i = 0; i < NDEFS; i++)
        names[i] = defs[i].name;
    return names;
}

/* One ConfigInfo for a key outside defs (a client key, a framework key ferry refuses), with
 * its errors (a new reference, stolen). */
static json_t *extra_info(const char *k, const json_t *v, const char *group, const char *doc, json_t *errs, int order)
{
    keydef_t d = {k, wconf_is_secret(k) ? T_PASSWORD : T_STRING, NULL, 0, "LOW", group, doc};
    const char *val = json_string_value(v);
    return json_pack("{s:o,s:{s:s,s:s?,s:[],s:o,s:b}}", "definition", definition_json(&d, order), "value", "name", k,
                     "value", val && wconf_is_secret(k) ? "[hidden]" : val, "recommended_values", "errors", errs,
                     "visible", 1);
}

static int add_error(json_t *errs, FILE *mf, char *e)
{
    json_array_append_new(errs, json_string(e));
    fprintf(mf, "%s\n", e);
    free(e);
    return 1;
}

/* Kafka client settings (src.kafka.*, src.consumer.*, dest.kafka.*, producer.override.*): one
 * ConfigInfo each, as Kafka Connect lists client overrides, checked by cpolicy. A key librdkafka
 * does not know that is within two edits of one of the connector's own keys is taken for a
 * typo (src.kafka.max.poll.recods). */
static int validate_client_keys(const json_t *config, const wconf_t *wc, json_t *configs, FILE *mf, int *order)
{
    int nerr = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) {
        const char *sub, *prefix = cpolicy_prefix(k, &sub), *like;
        if (!prefix || is_def(k))
            continue;
        char msg[1024], *e = NULL;
        json_t *errs = json_array();
        if (!jclient_is_property(sub) && (like = typo_suggest(k, def_names(), NDEFS)))
            asprintf(&e, "Unknown configuration %s: did you mean %s?", k, like);
        else if (cpolicy_check(wc ? &wc->client_policy : NULL, config, k, msg, sizeof msg))
            e = strdup(msg);
        if (e)
            nerr += add_error(errs, mf, e);
        char doc[512];
        snprintf(doc, sizeof doc, "librdkafka property %s of the %s clients.", sub,
                 !strncmp(prefix, "src.", 4) ? "source" : "destination");
        json_array_append_new(configs, extra_info(k, v, !strncmp(prefix, "src.", 4) ? "Source" : "Destination", doc,
                                                  errs, ++*order));
    }
    return nerr;
}

/* Keys Kafka Connect defines for every connector (ConnectorConfig, SourceConnectorConfig,
 * TopicCreationConfig) that ferry cannot honour: refused, never silently ignored. The ones it
 * honours are in defs. */
static char *framework_refusal(const char *k, const char *v, const wconf_t *wc)
{
    char *e = NULL;
    if ((!strcmp(k, "transforms") || !strcmp(k, "predicates")) && list_nonempty(v))
        asprintf(&e, "Invalid value %s for configuration %s: ferry copies records byte for byte and does not run "
                     "Single Message Transforms or their predicates", v, k);
    else if (!strncmp(k, "transforms.", 11) || !strncmp(k, "predicates.", 11))
        asprintf(&e, "Invalid configuration %s: ferry copies records byte for byte and does not run Single "
                     "Message Transforms or their predicates", k);
    else if (!strncmp(k, "topic.creation.", 15))
        asprintf(&e, "Invalid configuration %s: ferry does not support topic.creation.*; it creates destination "
                     "topics itself, with the source topic's partition count and dest.topic.replication.factor", k);
    else if (!strcmp(k, "offsets.storage.topic") && *v && (!wc || strcmp(v, wc->offset_topic)))
        asprintf(&e, "Invalid value %s for configuration offsets.storage.topic: ferry keeps every connector's "
                     "offsets in the worker's offset.storage.topic%s%s; a connector's own offsets topic (KIP-618) "
                     "is not supported", v, wc ? " " : "", wc ? wc->offset_topic : "");
    else if (!strncmp(k, "consumer.override.", 18) || !strncmp(k, "admin.override.", 15))
        asprintf(&e, "Invalid configuration %s: ferry's connector does not use it: its source clients take "
                     "src.kafka.* and src.consumer.*, its destination clients dest.kafka.* and producer.override.*",
                 k);
    return e;
}

/* Every other key: Kafka Connect's own keys ferry refuses, and misspellings of the connector's
 * keys ("topic.blacklst" would otherwise copy the topics meant to be left out). Converter
 * settings (key.converter.*) and any other key are left alone, as Kafka Connect leaves them to
 * the connector. */
static int validate_other_keys(const json_t *config, const wconf_t *wc, json_t *configs, FILE *mf, int *order)
{
    static const char *const framework[] = {"transforms", "predicates", "offsets.storage.topic",
                                            "topic.creation.groups"};
    int nerr = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) {
        if (is_def(k) || cpolicy_prefix(k, NULL))
            continue;
        const char *val = json_string_value(v), *like = NULL;
        char *e = framework_refusal(k, val ? val : "", wc);
        if (!e && !(like = typo_suggest(k, def_names(), NDEFS)))
            like = typo_suggest(k, framework, sizeof framework / sizeof framework[0]);
        if (!e && like)
            asprintf(&e, "Unknown configuration %s: did you mean %s?", k, like);
        if (!e)
            continue;
        json_t *errs = json_array();
        nerr += add_error(errs, mf, e);
        json_array_append_new(configs, extra_info(k, v, "Common", "Not a setting of this connector.", errs, ++*order));
    }
    return nerr;
}

int repl_validate(const json_t *config, const wconf_t *wc, json_t **infos_out, char **msgs_out)
{
    json_t *configs = json_array();
    int nerr = 0;
    char *msgs = NULL;
    size_t msglen = 0;
    FILE *mf = open_memstream(&msgs, &msglen);
    for (size_t i = 0; i < NDEFS; i++) {
        const keydef_t *d = &defs[i];
        json_t *raw = json_object_get(config, d->name);
        const char *v = json_string_value(raw);
        json_t *errs = json_array();
        char *e = NULL;
        if (raw && !json_is_string(raw))
            asprintf(&e, "Invalid value for configuration %s: must be a string", d->name);
        else if (!v && d->required)
            asprintf(&e, "Missing required configuration \"%s\" which has no default value.", d->name);
        else if (v && !strcmp(d->name, "name") && !*v)
            asprintf(&e, "Connector name must not be empty");
        else if (v || d->def)
            e = check_type(d, v ? v : d->def);
        if (!e && (v || d->def))
            e = check_value(d, v ? v : d->def, config, wc);
        if (e) {
            json_array_append_new(errs, json_string(e));
            fprintf(mf, "%s\n", e);
            nerr++;
            free(e);
        }
        json_array_append_new(configs,
                              json_pack("{s:o,s:{s:s,s:s?,s:[],s:o,s:b}}", "definition",
                                        definition_json(d, (int)i + 1), "value", "name", d->name,
                                        "value", v ? v : d->def, "recommended_values", "errors",
                                        errs, "visible", 1));
    }
    int order = (int)NDEFS;
    nerr += validate_client_keys(config, wc, configs, mf, &order);
    nerr += validate_other_keys(config, wc, configs, mf, &order);
    fclose(mf);
    if (infos_out)
        *infos_out = json_pack("{s:s,s:i,s:[s,s,s,s,s,s,s],s:o}", "name", REPL_CLASS, "error_count", nerr,
                               "groups", "Common", "Source", "Topics", "Destination", "Delivery", "Error Handling",
                               "Consumer groups", "configs", configs);
    else
        json_decref(configs);
    if (msgs_out)
        *msgs_out = msgs;
    else
        free(msgs);
    return nerr;
}

char *repl_rename(const char *fmt, const char *topic)
{
    size_t tl = strlen(topic);
    size_t cap = strlen(fmt) + 1, n = 0;
    for (const char *p = fmt; (p = strstr(p, "${topic}")); p += 8)
        cap += tl;
    char *out = malloc(cap);
    for (const char *p = fmt; *p;) {
        if (!strncmp(p, "${topic}", 8)) {
            memcpy(out + n, topic, tl);
            n += tl;
            p += 8;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

/* ---- topic selection ---------------------------------------------------------------- */

struct repl_select {
    json_t *white, *black; /* objects used as sets */
    int has_regex;
    regex_t re;
};

static json_t *list_set(const char *s)
{
    json_t *set = json_object();
    char *dup = strdup(s ? s : ""), *save, *tok;
    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok)
            json_object_set_new(set, tok, json_true());
    }
    free(dup);
    return set;
}

repl_select_t *repl_select_new(const json_t *config, ferr_t *err)
{
    repl_select_t *s = calloc(1, sizeof *s);
    s->white = list_set(cfg_str(config, "topic.whitelist"));
    s->black = list_set(cfg_str(config, "topic.blacklist"));
    const char *rx = cfg_str(config, "topic.regex");
    if (rx && *rx) {
        if (regex_compile(&s->re, rx)) {
            ferr_set(err, FERR_INVALID, "invalid topic.regex %s", rx);
            json_decref(s->white);
            json_decref(s->black);
            free(s);
            return NULL;
        }
        s->has_regex = 1;
    }
    return s;
}

int repl_select_match(const repl_select_t *s, const char *topic)
{
    if (json_object_get(s->black, topic) || topic[0] == '_')
        return 0; /* internal topics (__consumer_offsets, ...) are never copied */
    return json_object_get(s->white, topic) ||
           (s->has_regex && regexec(&s->re, topic, 0, NULL, 0) == 0);
}

void repl_select_destroy(repl_select_t *s)
{
    if (!s)
        return;
    json_decref(s->white);
    json_decref(s->black);
    if (s->has_regex)
        regfree(&s->re);
    free(s);
}

/* ---- task split --------------------------------------------------------------------- */

json_t *repl_parse_partitions(const char *s)
{
    json_t *a = json_array();
    char *dup = strdup(s ? s : ""), *save, *tok;
    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        long long p;
        if (!colon || colon == tok || parse_long(colon + 1, &p) || p < 0 || p >= REPL_MAX_PARTITION) {
            json_decref(a);
            free(dup);
            return NULL;
        }
        *colon = '\0';
        json_array_append_new(a, json_pack("[s,I]", tok, (json_int_t)p));
    }
    free(dup);
    return a;
}

static char *pkey(const char *topic, json_int_t p)
{
    char *k;
    asprintf(&k, "%s:%lld", topic, (long long)p);
    return k;
}

/* Sorted list of every selected partition key. */
static json_t *all_partitions(const json_t *topics)
{
    json_t *all = json_array();
    const char *t;
    json_t *n;
    json_object_foreach((json_t *)topics, t, n) {
        for (json_int_t p = 0; p < json_integer_value(n); p++) {
            char *k = pkey(t, p);
            json_array_append_new(all, json_string(k));
            free(k);
        }
    }
    return all;
}

static char *join_keys(const json_t *arr)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) fprintf(f, "%s%s", i ? "," : "", json_string_value(v));
    fclose(f);
    return out;
}

json_t *repl_split(const json_t *topics, const json_t *prev, int tasks_max)
{
    json_t *all = all_partitions(topics);
    size_t total = json_array_size(all);
    size_t ntasks = total < (size_t)tasks_max ? total : (size_t)tasks_max;
    json_t *placed = json_object(); /* partition key -> task index */
    json_t *tasks = json_array();
    for (size_t i = 0; i < ntasks; i++)
        json_array_append_new(tasks, json_array());
    /* 1. keep previous placement of partitions that still exist */
    size_t ti;
    json_t *tc;
    json_array_foreach(prev, ti, tc) {
        if (ti >= ntasks)
            break;
        json_t *parts = repl_parse_partitions(json_string_value(json_object_get(tc, REPL_TASK_PARTITIONS)));
        size_t pi;
        json_t *pv;
        json_array_foreach(parts, pi, pv) {
            char *k = pkey(json_string_value(json_array_get(pv, 0)), json_integer_value(json_array_get(pv, 1)));
            json_t *n = json_object_get(topics, json_string_value(json_array_get(pv, 0)));
            if (n && json_integer_value(json_array_get(pv, 1)) < json_integer_value(n) &&
                !json_object_get(placed, k)) {
                json_array_append_new(json_array_get(tasks, ti), json_string(k));
                json_object_set_new(placed, k, json_integer(ti));
            }
            free(k);
        }
        json_decref(parts);
    }
    /* 2. trim tasks above the ceiling, so balance holds */
    size_t ceil = ntasks ? (total + ntasks - 1) / ntasks : 0;
    size_t floor_ = ntasks ? total / ntasks : 0;
    size_t at_ceil_allowed = ntasks ? total - floor_ * ntasks : 0;
    json_array_foreach(tasks, ti, tc) {
        size_t limit = floor_;
        if (json_array_size(tc) > floor_ && at_ceil_allowed) {
            limit = ceil;
            at_ceil_allowed--;
        }
        while (json_array_size(tc) > limit) {
            json_object_del(placed, json_string_value(json_array_get(tc, json_array_size(tc) - 1)));
            json_array_remove(tc, json_array_size(tc) - 1);
        }
    }
    /* 3. place the rest on the smallest task, lowest index first */
    size_t i;
    json_t *k;
    json_array_foreach(all, i, k) {
        if (json_object_get(placed, json_string_value(k)))
            continue;
        size_t best = 0;
        for (size_t t = 1; t < ntasks; t++)
            if (json_array_size(json_array_get(tasks, t)) < json_array_size(json_array_get(tasks, best)))
                best = t;
        json_array_append(json_array_get(tasks, best), k);
    }
    json_t *out = json_array();
    json_array_foreach(tasks, ti, tc) {
        char *s = join_keys(tc);
        json_array_append_new(out, json_string(s));
        free(s);
    }
    json_decref(tasks);
    json_decref(placed);
    json_decref(all);
    return out;
}

json_t *repl_task_configs(const json_t *config, const json_t *split)
{
    json_t *out = json_array();
    size_t i;
    json_t *parts;
    json_array_foreach(split, i, parts) {
        json_t *tc = json_deep_copy(config);
        json_object_set_new(tc, "task.class", json_string(REPL_TASK_CLASS));
        json_object_set(tc, REPL_TASK_PARTITIONS, parts);
        json_array_append_new(out, tc);
    }
    return out;
}

/* ---- connector instance ------------------------------------------------------------- */

struct repl_conn {
    char *name;
    json_t *config;
    uint64_t instance;
    h2o_multithread_receiver_t *recv;
    rd_kafka_t *src, *dst;
    rd_kafka_t *src_borrowed, *dst_borrowed; /* the worker's shared clients, not ours to destroy */
    repl_select_t *sel;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, refresh; /* guarded by lock */
    json_t *last;      /* thread-owned: last reported selection */
    json_t *create_failed; /* thread-owned: destination topics we could not create (logged once) */
};

void repl_conn_ev_free(repl_conn_ev_t *ev)
{
    free(ev->connector);
    json_decref(ev->topics);
    free(ev->error);
    free(ev);
}

static void conn_post(repl_conn_t *rc, json_t *topics, const char *error)
{
    repl_conn_ev_t *ev = calloc(1, sizeof *ev);
    ev->connector = strdup(rc->name);
    ev->instance = rc->instance;
    ev->topics = topics;
    ev->error = error ? strdup(error) : NULL;
    h2o_multithread_send_message(rc->recv, &ev->super);
}

static json_t *read_selection(repl_conn_t *rc, ferr_t *err)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rc->src, 1, NULL, &md, 10000);
    if (e) {
        ferr_set(err, FERR_KAFKA, "cannot read source cluster metadata (%s): %s",
                 cfg_str(rc->config, "src.kafka.bootstrap.servers"), rd_kafka_err2str(e));
        return NULL;
    }
    json_t *sel = json_object();
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (!t->err && t->partition_cnt > 0 && repl_select_match(rc->sel, t->topic))
            json_object_set_new(sel, t->topic, json_integer(t->partition_cnt));
    }
    rd_kafka_metadata_destroy(md);
    return sel;
}

/* Creates missing destination topics with the source partition count. A cluster without
 * CreateTopics (such as a mock) is logged once per topic; the task then checks the count. */
static void ensure_destination(repl_conn_t *rc, const json_t *sel)
{
    const char *t;
    json_t *n;
    const char *fmt = cfg_str(rc->config, "topic.rename.format");
    json_object_foreach((json_t *)sel, t, n) {
        char *target = repl_rename(fmt, t);
        ferr_t err = {0};
        int have = kutil_partition_count(rc->dst, target, 10000, &err);
        if (have == 0 && !json_object_get(rc->create_failed, target)) {
            int rf = (int)cfg_ll(rc->config, "dest.topic.replication.factor");
            if (rf <= 0) {
                const struct rd_kafka_metadata *md;
                rf = 1;
                if (!rd_kafka_metadata(rc->dst, 0, NULL, &md, 5000)) {
                    rf = md->broker_cnt < 3 ? md->broker_cnt : 3;
                    rd_kafka_metadata_destroy(md);
                }
            }
            /* Copy the source topic's own settings (retention, compaction...) where the source
             * cluster answers DescribeConfigs. */
            char **configs = kutil_topic_configs(rc->src, t, 3000);
            ferr_code_t crc = kutil_create_topic(rc->dst, target, (int)json_integer_value(n), rf,
                                                 (const char *const *)configs, 5000, &err);
            kutil_configs_free(configs);
            if (crc) {
                FLOG(WARN, CONN, "connector %s: could not create destination topic %s (%s); the "
                     "broker will auto-create it on first write", rc->name, target, err.msg);
                json_object_set_new(rc->create_failed, target, json_true());
            } else {
                FLOG(INFO, CONN, "connector %s: created destination topic %s with %d partitions",
                     rc->name, target, (int)json_integer_value(n));
            }
        }
        free(target);
    }
}

static void *conn_main(void *arg)
{
    repl_conn_t *rc = arg;
    int64_t interval = cfg_ll(rc->config, "topic.poll.interval.ms");
    int failures = 0;
    pthread_mutex_lock(&rc->lock);
    while (!rc->stop) {
        int forced = rc->refresh;
        rc->refresh = 0;
        pthread_mutex_unlock(&rc->lock);
        ferr_t err = {0};
        json_t *sel = read_selection(rc, &err);
        if (!sel) {
            if (failures++ % 10 == 0)
                FLOG(WARN, CONN, "connector %s: %s (retrying)", rc->name, err.msg);
        } else {
            failures = 0;
            /* Reported every round, changed or not: the herder compares with the committed
             * task configs, and a report that could not reach the leader is retried this way. */
            if (forced || !rc->last || !json_equal(sel, rc->last))
                ensure_destination(rc, sel);
            json_decref(rc->last);
            rc->last = json_incref(sel);
            conn_post(rc, sel, NULL);
        }
        pthread_mutex_lock(&rc->lock);
        if (rc->stop || rc->refresh)
            continue;
        kutil_cond_wait_ms(&rc->cond, &rc->lock, sel ? interval : (interval < 1000 ? interval : 1000));
    }
    pthread_mutex_unlock(&rc->lock);
    return NULL;
}

static rd_kafka_t *client(const char *bootstrap, const props_t *common, const props_t *layer1,
                          const char *l1name, const json_t *config, const char *p1, const char *p2,
                          ferr_t *err)
{
    char e[512];
    rd_kafka_conf_t *conf = kutil_conf_new(bootstrap);
    if (kutil_conf_apply(conf, common, "", err) || kutil_conf_apply(conf, layer1, l1name, err) ||
        (p1 && kutil_conf_apply_prefixed(conf, config, p1, err)) ||
        (p2 && kutil_conf_apply_prefixed(conf, config, p2, err))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    kutil_conf_set(conf, "bootstrap.servers", bootstrap, NULL, NULL);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk)
        ferr_set(err, FERR_KAFKA, "%s", e);
    return rk;
}

repl_conn_t *repl_conn_new(const char *name, const json_t *config, const wconf_t *wc,
                           uint64_t instance, h2o_multithread_receiver_t *recv, rd_kafka_t *src,
                           rd_kafka_t *dst)
{
    repl_conn_t *rc = calloc(1, sizeof *rc);
    ferr_t err = {0};
    rc->name = strdup(name);
    rc->config = json_deep_copy(config);
    rc->instance = instance;
    rc->recv = recv;
    rc->create_failed = json_object();
    pthread_mutex_init(&rc->lock, NULL);
    kutil_cond_init(&rc->cond);
    rc->sel = repl_select_new(rc->config, &err);
    rc->src = rc->src_borrowed = src;
    rc->dst = rc->dst_borrowed = dst;
    if (rc->sel && !rc->src)
        rc->src = client(cfg_str(config, "src.kafka.bootstrap.servers"), NULL, NULL, NULL, config,
                         "src.kafka.", NULL, &err);
    if (rc->src && !rc->dst)
        rc->dst = client(wc->bootstrap_servers, wc->common, wc->admin, "admin.", config,
                         "dest.kafka.", NULL, &err);
    if (!rc->dst) {
        /* Report the failure as an event so the herder marks the connector FAILED. */
        conn_post(rc, NULL, err.msg);
        rc->stop = 1;
        return rc;
    }
    pthread_create(&rc->thread, NULL, conn_main, rc);
    return rc;
}

void repl_conn_refresh(repl_conn_t *rc)
{
    pthread_mutex_lock(&rc->lock);
    rc->refresh = 1;
    pthread_cond_signal(&rc->cond);
    pthread_mutex_unlock(&rc->lock);
}

void repl_conn_destroy(repl_conn_t *rc)
{
    if (!rc)
        return;
    pthread_mutex_lock(&rc->lock);
    int started = !rc->stop;
    rc->stop = 1;
    pthread_cond_signal(&rc->cond);
    pthread_mutex_unlock(&rc->lock);
    if (started)
        pthread_join(rc->thread, NULL);
    if (rc->src && rc->src != rc->src_borrowed)
        rd_kafka_destroy(rc->src);
    if (rc->dst && rc->dst != rc->dst_borrowed)
        rd_kafka_destroy(rc->dst);
    repl_select_destroy(rc->sel);
    json_decref(rc->config);
    json_decref(rc->last);
    json_decref(rc->create_failed);
    pthread_cond_destroy(&rc->cond);
    pthread_mutex_destroy(&rc->lock);
    free(rc->name);
    free(rc);
}

json_t *repl_groups(const json_t *config)
{
    json_t *out = json_array();
    char *dup = strdup(cfg_str(config, "groups") ? cfg_str(config, "groups") : ""), *save, *tok;
    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            tok[--len] = '\0';
        int dupl = 0;
        for (size_t i = 0; i < json_array_size(out); i++)
            dupl |= !strcmp(json_string_value(json_array_get(out, i)), tok);
        if (*tok && !dupl)
            json_array_append_new(out, json_string(tok));
    }
    free(dup);
    return out;
}

long long repl_group_interval_ms(const json_t *config)
{
    return cfg_ll(config, "sync.group.offsets.interval.ms");
}

int repl_regex_compile(regex_t *re, const char *rx)
{
    return regex_compile(re, rx);
}

/* ---- task configs from elsewhere (the config topic, POST .../tasks) ---------------------- */

static int say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

int repl_check_task(const json_t *task, const wconf_t *wc, char *why, size_t len)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)task, k, v) if (!json_is_string(v))
        return say(why, len, "the value of %s is not a string", k);
    const char *cls = json_string_value(json_object_get(task, "task.class"));
    if (!cls || strcmp(cls, REPL_TASK_CLASS))
        return say(why, len, "task.class is %s, not " REPL_TASK_CLASS, cls ? cls : "missing");
    char *msgs = NULL;
    int nerr = repl_validate(task, wc, NULL, &msgs);
    if (nerr) {
        size_t n = strlen(msgs);
        while (n && msgs[n - 1] == '\n')
            msgs[--n] = '\0';
        say(why, len, "its configuration is invalid: %s", msgs);
        free(msgs);
        return -1;
    }
    free(msgs);
    json_t *parts = repl_parse_partitions(json_string_value(json_object_get(task, REPL_TASK_PARTITIONS)));
    if (!parts || !json_object_get(task, REPL_TASK_PARTITIONS)) {
        json_decref(parts);
        return say(why, len, REPL_TASK_PARTITIONS " is missing or malformed (topic:partition,... with "
                        "partitions from 0 to %d)", REPL_MAX_PARTITION - 1);
    }
    ferr_t ferr = {0};
    repl_select_t *sel = repl_select_new(task, &ferr);
    int rc = 0;
    size_t i;
    json_t *pv;
    json_t *seen = json_object();
    json_array_foreach(parts, i, pv) {
        const char *topic = json_string_value(json_array_get(pv, 0));
        char *key = pkey(topic, json_integer_value(json_array_get(pv, 1)));
        if (!sel || !repl_select_match(sel, topic))
            rc = say(why, len, "topic %s is not selected by the connector's topic.whitelist/topic.regex", topic);
        else if (json_object_get(seen, key))
            rc = say(why, len, "partition %s is listed twice", key);
        json_object_set_new(seen, key, json_true());
        free(key);
        if (rc)
            break;
    }
    json_decref(seen);
    repl_select_destroy(sel);
    json_decref(parts);
    return rc;
}

int repl_check_task_configs(const json_t *config, const json_t *tasks, const wconf_t *wc, char *why, size_t len)
{
    if (!json_is_array(tasks))
        return say(why, len, "task configs must be a JSON array of objects");
    long long max = cfg_ll(config, "tasks.max");
    if ((long long)json_array_size(tasks) > (max < 1 ? 1 : max))
        return say(why, len, "%zu task configs for a connector with tasks.max=%lld", json_array_size(tasks),
                        max);
    json_t *seen = json_object();
    int rc = 0;
    size_t i;
    json_t *tc;
    json_array_foreach(tasks, i, tc) {
        char sub[768];
        if (!json_is_object(tc)) {
            rc = say(why, len, "task config %zu is not a JSON object", i);
            break;
        }
        /* exactly the connector's config, plus the two task keys */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)tc, k, v) {
            if (!strcmp(k, "task.class") || !strcmp(k, REPL_TASK_PARTITIONS))
                continue;
            if (!json_equal(v, json_object_get(config, k))) {
                rc = say(why, len, "task config %zu: %s differs from the connector's config", i, k);
                break;
            }
        }
        json_object_foreach((json_t *)config, k, v) if (!rc && !json_object_get(tc, k))
            rc = say(why, len, "task config %zu: %s of the connector's config is missing", i, k);
        if (!rc && repl_check_task(tc, wc, sub, sizeof sub))
            rc = say(why, len, "task config %zu: %s", i, sub);
        if (rc)
            break;
        json_t *parts = repl_parse_partitions(json_string_value(json_object_get(tc, REPL_TASK_PARTITIONS)));
        size_t j;
        json_t *pv;
        json_array_foreach(parts, j, pv) {
            char *key = pkey(json_string_value(json_array_get(pv, 0)), json_integer_value(json_array_get(pv, 1)));
            if (!rc && json_object_get(seen, key))
                rc = say(why, len, "partition %s is given to two tasks", key);
            json_object_set_new(seen, key, json_true());
            free(key);
        }
        json_decref(parts);
        if (rc)
            break;
    }
    json_decref(seen);
    return rc;
}
