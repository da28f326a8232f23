/* cstate: config-topic snapshot. See cstate.h.
 *
 * Record semantics follow Kafka Connect's KafkaConfigBackingStore:
 *   connector-{c}       {"properties":{...}}  create/update; tombstone deletes the connector
 *   target-state-{c}    {"state":S,"state.v2":S}  STARTED|PAUSED|STOPPED (v2 wins)
 *   task-{c}-{n}        {"properties":{...}}  buffered until the matching commit
 *   commit-{c}          {"tasks":N}           makes the N buffered task configs current at once
 *   restart-connector-{c}, logger-cluster-{ns}: events for the herder, no state here
 * A target-state record may precede its connector record (create with initial_state), so
 * entries exist with config == NULL ("not created yet"); lookups treat them as absent. */
#include "worker/cstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/flog.h"
#include "worker/isig.h"

struct cstate {
    cstate_conn_t **v; /* sorted by name, including not-yet-created entries */
    size_t n, cap;
    int64_t next_offset;
    cstate_session_key_t session_key;
};

cstate_t *cstate_new(void)
{
    return calloc(1, sizeof(cstate_t));
}

static void conn_free(cstate_conn_t *c)
{
    free(c->name);
    json_decref(c->config);
    json_decref(c->tasks);
    json_decref(c->pending);
    free(c);
}

void cstate_destroy(cstate_t *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->n; i++)
        conn_free(cs->v[i]);
    free(cs->v);
    free(cs);
}

/* Binary search; returns the index where name is or would be inserted. */
static size_t find_slot(const cstate_t *cs, const char *name, int *found)
{
    size_t lo = 0, hi = cs->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(cs->v[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static cstate_conn_t *entry(cstate_t *cs, const char *name, int create)
{
    int found;
    size_t i = find_slot(cs, name, &found);
    if (found)
        return cs->v[i];
    if (!create)
        return NULL;
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 16;
        cs->v = realloc(cs->v, cs->cap * sizeof *cs->v);
    }
    memmove(cs->v + i + 1, cs->v + i, (cs->n - i) * sizeof *cs->v);
    cstate_conn_t *c = calloc(1, sizeof *c);
    c->name = strdup(name);
    c->tasks = json_array();
    c->pending = json_object();
    c->config_offset = -1;
    cs->v[i] = c;
    cs->n++;
    return c;
}

static void entry_remove(cstate_t *cs, const char *name)
{
    int found;
    size_t i = find_slot(cs, name, &found);
    if (!found)
        return;
    conn_free(cs->v[i]);
    memmove(cs->v + i, cs->v + i + 1, (cs->n - i - 1) * sizeof *cs->v);
    cs->n--;
}

cstate_conn_t *cstate_get(const cstate_t *cs, const char *name)
{
    int found;
    size_t i = find_slot(cs, name, &found);
    return found && cs->v[i]->config ? cs->v[i] : NULL;
}

size_t cstate_count(const cstate_t *cs)
{
    size_t k = 0;
    for (size_t i = 0; i < cs->n; i++)
        k += cs->v[i]->config != NULL;
    return k;
}

cstate_conn_t *cstate_at(const cstate_t *cs, size_t idx)
{
    for (size_t i = 0; i < cs->n; i++) {
        if (!cs->v[i]->config)
            continue;
        if (idx-- == 0)
            return cs->v[i];
    }
    return NULL;
}

int64_t cstate_offset(const cstate_t *cs)
{
    return cs->next_offset;
}

const char *cstate_target_name(cstate_target_t t)
{
    switch (t) {
    case CSTATE_TARGET_PAUSED:
        return "PAUSED";
    case CSTATE_TARGET_STOPPED:
        return "STOPPED";
    default:
        return "STARTED";
    }
}

json_t *cstate_target_record(cstate_target_t t)
{
    /* Readers that predate STOPPED look at "state" only: they see PAUSED. */
    const char *v1 = t == CSTATE_TARGET_STOPPED ? "PAUSED" : cstate_target_name(t);
    return json_pack("{s:s,s:s}", "state", v1, "state.v2", cstate_target_name(t));
}

static int parse_target(const char *s, cstate_target_t *out)
{
    if (!s)
        return -1;
    if (!strcmp(s, "STARTED"))
        *out = CSTATE_TARGET_STARTED;
    else if (!strcmp(s, "PAUSED"))
        *out = CSTATE_TARGET_PAUSED;
    else if (!strcmp(s, "STOPPED"))
        *out = CSTATE_TARGET_STOPPED;
    else
        return -1;
    return 0;
}

/* Copies an object keeping only string values; Kafka Connect's maps are string->string. */
static json_t *string_map(const json_t *props)
{
    if (!json_is_object(props))
        return NULL;
    json_t *m = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v) {
        if (json_is_string(v))
            json_object_set(m, k, v);
    }
    return m;
}

static cstate_event_t apply_connector(cstate_t *cs, const char *name, const json_t *value,
                                      int64_t offset, int64_t ts)
{
    if (!value) {
        entry_remove(cs, name);
        return CSTATE_EV_CONNECTOR;
    }
    json_t *props = string_map(json_object_get(value, "properties"));
    if (!props) {
        FLOG(WARN, STORE, "ignoring malformed connector record for %s", name);
        return CSTATE_EV_IGNORED;
    }
    cstate_conn_t *c = entry(cs, name, 1);
    if (!c->config)
        c->created_ms = ts;
    json_decref(c->config);
    c->config = props;
    c->config_offset = offset;
    return CSTATE_EV_CONNECTOR;
}

static cstate_event_t apply_target(cstate_t *cs, const char *name, const json_t *value)
{
    if (!value) {
        cstate_conn_t *c = entry(cs, name, 0);
        if (c) {
            c->has_target = 0;
            c->target = CSTATE_TARGET_STARTED;
        }
        return CSTATE_EV_TARGET;
    }
    cstate_target_t t;
    const char *s = json_string_value(json_object_get(value, "state.v2"));
    if (!s)
        s = json_string_value(json_object_get(value, "state"));
    if (parse_target(s, &t) != 0) {
        FLOG(WARN, STORE, "ignoring target-state record for %s with unknown state", name);
        return CSTATE_EV_IGNORED;
    }
    cstate_conn_t *c = entry(cs, name, 1);
    c->target = t;
    c->has_target = 1;
    return CSTATE_EV_TARGET;
}

static cstate_event_t apply_task(cstate_t *cs, const char *rest, const json_t *value)
{
    const char *dash = strrchr(rest, '-');
    char *end;
    if (!dash || dash == rest || !dash[1])
        return CSTATE_EV_IGNORED;
    long id = strtol(dash + 1, &end, 10);
    if (*end || id < 0 || id > 100000)
        return CSTATE_EV_IGNORED;
    char *name = strndup(rest, dash - rest);
    json_t *props = value ? string_map(json_object_get(value, "properties")) : NULL;
    cstate_conn_t *c = entry(cs, name, props != NULL);
    if (c && props) {
        char k[16];
        snprintf(k, sizeof k, "%ld", id);
        json_object_set_new(c->pending, k, props);
    }
    free(name);
    return CSTATE_EV_NONE;
}

static cstate_event_t apply_commit(cstate_t *cs, const char *name, const json_t *value)
{
    json_t *n = value ? json_object_get(value, "tasks") : NULL;
    if (!json_is_integer(n) || json_integer_value(n) < 0)
        return CSTATE_EV_IGNORED;
    int count = (int)json_integer_value(n);
    cstate_conn_t *c = entry(cs, name, 1);
    json_t *tasks = json_array();
    int complete = 1;
    for (int i = 0; i < count; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        json_t *t = json_object_get(c->pending, k);
        if (!t) {
            complete = 0;
            break;
        }
        json_array_append(tasks, t);
    }
    if (!complete) {
        /* Kafka Connect marks the connector inconsistent and regenerates task configs. */
        FLOG(WARN, STORE, "commit for %s names %d tasks but not all task records were seen", name,
             count);
        json_decref(tasks);
        c->inconsistent = 1;
        return CSTATE_EV_TASKS;
    }
    json_decref(c->tasks);
    c->tasks = tasks;
    c->inconsistent = 0;
    json_object_clear(c->pending);
    return CSTATE_EV_TASKS;
}

/* A malformed session key is ignored (and logged), as Kafka Connect does; the last valid one stays. */
static cstate_event_t apply_session_key(cstate_t *cs, const json_t *value)
{
    const char *k = json_string_value(json_object_get(value, "key"));
    const char *alg = json_string_value(json_object_get(value, "algorithm"));
    json_t *ts = json_object_get(value, "creation-timestamp");
    cstate_session_key_t sk = {0};
    int n = k ? isig_b64_decode(k, strlen(k), sk.key, sizeof sk.key) : -1;
    if (n <= 0 || !alg || strlen(alg) >= sizeof sk.algorithm || !json_is_integer(ts)) {
        FLOG(ERROR, WORKER, "ignoring a malformed session key record in the config topic");
        return CSTATE_EV_IGNORED;
    }
    sk.len = (size_t)n;
    snprintf(sk.algorithm, sizeof sk.algorithm, "%s", alg);
    sk.created_ms = json_integer_value(ts);
    cs->session_key = sk;
    return CSTATE_EV_SESSION_KEY;
}

const cstate_session_key_t *cstate_session_key(const cstate_t *cs)
{
    return &cs->session_key;
}

json_t *cstate_session_key_record(const unsigned char *key, size_t len, const char *algorithm, int64_t created_ms)
{
    char *b64 = isig_b64_encode(key, len);
    json_t *v = json_pack("{s:s,s:s,s:I}", "key", b64, "algorithm", algorithm, "creation-timestamp",
                          (json_int_t)created_ms);
    free(b64);
    return v;
}

cstate_event_t cstate_apply(cstate_t *cs, const char *key, const json_t *value, int64_t offset,
                            int64_t timestamp_ms, const char **name_out)
{
    static const char P_CONN[] = "connector-", P_TARGET[] = "target-state-", P_TASK[] = "task-",
                      P_COMMIT[] = "commit-", P_RESTART[] = "restart-connector-",
                      P_LOGGER[] = "logger-cluster-";
    cstate_event_t ev = CSTATE_EV_IGNORED;
    const char *name = NULL;
    if (offset >= cs->next_offset)
        cs->next_offset = offset + 1;
    if (!key)
        return ev;
#define HAS(p) (strncmp(key, p, sizeof p - 1) == 0 && key[sizeof p - 1])
    if (HAS(P_CONN)) {
        name = key + sizeof P_CONN - 1;
        ev = apply_connector(cs, name, value, offset, timestamp_ms);
    } else if (HAS(P_TARGET)) {
        name = key + sizeof P_TARGET - 1;
        ev = apply_target(cs, name, value);
    } else if (HAS(P_TASK)) {
        ev = apply_task(cs, key + sizeof P_TASK - 1, value);
    } else if (HAS(P_COMMIT)) {
        name = key + sizeof P_COMMIT - 1;
        ev = apply_commit(cs, name, value);
    } else if (HAS(P_RESTART)) {
        name = key + sizeof P_RESTART - 1;
        ev = value ? CSTATE_EV_RESTART : CSTATE_EV_IGNORED;
    } else if (HAS(P_LOGGER)) {
        name = key + sizeof P_LOGGER - 1;
        ev = value ? CSTATE_EV_LOGGER : CSTATE_EV_IGNORED;
    } else if (!strcmp(key, CSTATE_SESSION_KEY)) {
        ev = apply_session_key(cs, value);
    }
#undef HAS
    if (name_out)
        *name_out = name;
    return ev;
}

static char *key2(const char *prefix, const char *name)
{
    char *s;
    if (asprintf(&s, "%s%s", prefix, name) < 0)
        abort();
    return s;
}

char *cstate_key_connector(const char *name)
{
    return key2("connector-", name);
}

char *cstate_key_target(const char *name)
{
    return key2("target-state-", name);
}

char *cstate_key_commit(const char *name)
{
    return key2("commit-", name);
}

char *cstate_key_restart(const char *name)
{
    return key2("restart-connector-", name);
}

char *cstate_key_task(const char *name, int task)
{
    char *s;
    if (asprintf(&s, "task-%s-%d", name, task) < 0)
        abort();
    return s;
}
