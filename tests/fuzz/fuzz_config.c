/* fuzz_config: libFuzzer harness for the body of POST /connectors, from bytes to a stored and
 * split connector config.
 *
 * The input is a request body. It takes the path of rest.c and herder.c:
 *   1. read_body(): jansson's json_loadb() with the same flags; bodies over REST_MAX_BODY
 *      are refused before parsing (413);
 *   2. do_create(): the body's shape, the trimmed name, the config coerced to a string map
 *      (string_config()) and the name checks (name_ok()). These three are static in rest.c,
 *      and take a live h2o request to answer errors, so their checks are repeated here, and
 *      must be kept in step with rest.c;
 *   3. herder_put_connector(): the merged config, then repl_validate() (and herder_validate(),
 *      the PUT .../config/validate endpoint); every error message goes through
 *      rest_error_body() as send_error() sends it (cut to 2047 bytes), and must give a body;
 *   4. a valid config is what the connector then runs with: the config-topic record is
 *      applied to a cstate as every worker does, topics are selected and renamed with
 *      repl_select_*() and repl_rename(), partitions split with repl_split() and
 *      repl_task_configs(), and each task's partition list parses back.
 * A crash, leak, undefined behaviour or a broken invariant (abort) is a finding.
 *
 *   run: build-fuzz/fuzz_config -max_total_time=300 <copy of tests/fuzz/corpus/config> */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rest/rest.h"
#include "worker/cstate.h"
#include "worker/flog.h"
#include "worker/herder.h"
#include "worker/repl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    flog_set_level(FLOG_M__COUNT, FLOG_ERROR, 0); /* cstate logs every malformed record */
    return 0;
}

/* send_error(): the message is formatted into 2048 bytes, then made a JSON body. */
static void error_body(const char *msg)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", msg);
    char *body = rest_error_body(400, buf);
    if (!body)
        abort();
    free(body);
}

/* string_config() in rest.c: strings as they are, numbers and booleans as Jackson prints them,
 * anything else refused (NULL). */
static json_t *string_config(const json_t *in)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v) {
        char buf[64];
        if (json_is_string(v)) {
            json_object_set(out, k, v);
            continue;
        }
        if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        } else if (json_is_boolean(v)) {
            snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
        } else {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, json_string(buf));
    }
    return out;
}

/* name_ok() in rest.c */
static int name_ok(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return *name && strlen(name) <= 249;
}

/* What a worker does with an accepted config: store it, read it back, select and split. */
static void run_connector(const char *name, const json_t *config)
{
    cstate_t *cs = cstate_new();
    char *key = cstate_key_connector(name);
    json_t *rec = json_pack("{s:O}", "properties", config);
    char *val = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_t *back = val ? json_loads(val, 0, NULL) : NULL;
    if (!back || cstate_apply(cs, key, back, 0, 0, NULL) != CSTATE_EV_CONNECTOR ||
        !json_equal(cstate_get(cs, name)->config, config))
        abort();
    ferr_t err = {0};
    repl_select_t *sel = repl_select_new(config, &err);
    json_t *topics = json_object();
    static const char *names[] = {"connect", "aux", "a.b-c_d", "__consumer_offsets", "x"};
    for (size_t i = 0; sel && i < sizeof names / sizeof names[0]; i++) {
        if (!repl_select_match(sel, names[i]))
            continue;
        json_object_set_new(topics, names[i], json_integer((json_int_t)i + 1));
        free(repl_rename(json_string_value(json_object_get(config, "topic.rename.format"))
                             ? json_string_value(json_object_get(config, "topic.rename.format"))
                             : "${topic}.replica",
                         names[i]));
    }
    long tasks_max = strtol(json_string_value(json_object_get(config, "tasks.max"))
                                ? json_string_value(json_object_get(config, "tasks.max"))
                                : "1",
                            NULL, 10);
    json_t *split = repl_split(topics, NULL, tasks_max > 64 ? 64 : (int)tasks_max);
    json_t *tasks = repl_task_configs(config, split);
    size_t i;
    json_t *tc;
    json_array_foreach(tasks, i, tc) {
        const char *pl = json_string_value(json_object_get(tc, REPL_TASK_PARTITIONS));
        json_t *parts = repl_parse_partitions(pl);
        if (!parts)
            abort();
        json_decref(parts);
    }
    json_decref(tasks);
    json_decref(split);
    json_decref(topics);
    repl_select_destroy(sel);
    json_decref(back);
    free(val);
    json_decref(rec);
    free(key);
    cstate_destroy(cs);
}

/* herder_put_connector(HERDER_PUT_CREATE) without the store: merge, validate, run. */
static void put_connector(const char *name, const json_t *cfg)
{
    json_t *merged = json_object();
    json_object_update(merged, (json_t *)cfg);
    if (!json_object_get(merged, "name"))
        json_object_set_new(merged, "name", json_string(name));
    json_t *infos = NULL, *o = NULL;
    ferr_t err = {0};
    if (herder_validate(NULL, REPL_CLASS, merged, &o, &err) != FERR_OK)
        error_body(err.msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (o && !s)
        abort();
    free(s);
    json_decref(o);
    char *msgs = NULL;
    /* checked against a worker, as herder_put_connector() does */
    static const wconf_t wc = {.bootstrap_servers = "127.0.0.1:9092", .config_topic = "connect-configs",
                               .offset_topic = "connect-offsets", .status_topic = "connect-status"};
    int nerr = repl_validate(merged, &wc, &infos, &msgs);
    if (json_integer_value(json_object_get(infos, "error_count")) != nerr)
        abort();
    if (nerr)
        error_body(msgs);
    else if (json_object_get(merged, "connector.class"))
        run_connector(name, merged);
    free(msgs);
    json_decref(infos);
    json_decref(merged);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > REST_MAX_BODY)
        return 0;
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (!body) {
        error_body(je.text);
        return 0;
    }
    json_t *jname = json_object_get(body, "name"), *jcfg = json_object_get(body, "config");
    json_t *jinit = json_object_get(body, "initial_state");
    if (!json_is_object(body) || (jname && !json_is_string(jname)) || !json_is_object(jcfg) ||
        (jinit && !json_is_null(jinit) && !json_is_string(jinit))) {
        json_decref(body);
        return 0;
    }
    const char *raw = jname ? json_string_value(jname) : "";
    while (isspace((unsigned char)*raw))
        raw++;
    char *name = strdup(raw);
    for (size_t n = strlen(name); n && isspace((unsigned char)name[n - 1]);)
        name[--n] = '\0';
    json_t *cfg = string_config(jcfg);
    const char *cn = json_string_value(json_object_get(cfg, "name"));
    if (cfg && name_ok(name) && (!cn || !strcmp(cn, name)))
        put_connector(name, cfg);
    json_decref(cfg);
    free(name);
    json_decref(body);
    return 0;
}
