/* cstate: the worker's snapshot of the config topic (connector configs, task configs,
 * target states), built only by applying config-topic records in order, exactly as
 * Kafka Connect's KafkaConfigBackingStore does. The topic is the log of truth: a worker
 * that restarts rebuilds this snapshot by reading the topic from the beginning.
 *
 * Thread: owned by the h2o loop thread (the herder); no locking. */
#ifndef FERRY_CSTATE_H
#define FERRY_CSTATE_H

#include <jansson.h>
#include <stdint.h>

typedef enum {
    CSTATE_TARGET_STARTED = 0,
    CSTATE_TARGET_PAUSED,
    CSTATE_TARGET_STOPPED,
} cstate_target_t;

typedef struct cstate_conn {
    char *name;
    json_t *config;       /* object of string values as the user gave it; NULL = not (yet) created */
    cstate_target_t target;
    int has_target;       /* a target-state record was seen */
    json_t *tasks;        /* array of committed task config objects (size = committed task count) */
    json_t *pending;      /* object "N" -> task config, written but not yet committed */
    int inconsistent;     /* a commit arrived without all its task records */
    int64_t config_offset;/* config-topic offset of the last connector-{c} record */
    int64_t created_ms;   /* record timestamp of the first connector-{c} record */
} cstate_conn_t;

/** What an applied record changed, so the herder knows what to react to. */
typedef enum {
    CSTATE_EV_NONE = 0,
    CSTATE_EV_CONNECTOR,     /* config created/updated/deleted */
    CSTATE_EV_TARGET,        /* target state changed */
    CSTATE_EV_TASKS,         /* a task-config commit */
    CSTATE_EV_RESTART,       /* restart-connector-{c} request */
    CSTATE_EV_LOGGER,        /* logger-cluster-{ns} */
    CSTATE_EV_SESSION_KEY,   /* session-key: a new key for signing internal requests */
    CSTATE_EV_IGNORED,
} cstate_event_t;

/** The group's session key for internal requests (isig.h), Kafka Connect's "session-key" record:
 *  {"key":base64,"algorithm":"HmacSHA256","creation-timestamp":ms}. */
#define CSTATE_SESSION_KEY "session-key"
typedef struct cstate_session_key {
    unsigned char key[512];
    size_t len;            /* 0: no key read yet */
    char algorithm[32];    /* the key generation algorithm, e.g. HmacSHA256 */
    int64_t created_ms;    /* creation-timestamp: wall-clock ms */
} cstate_session_key_t;

typedef struct cstate cstate_t;

cstate_t *cstate_new(void);
void cstate_destroy(cstate_t *cs);

/** Applies one config-topic record. @p value is the parsed JSON value, NULL for a tombstone.
 *  @p name_out (may be NULL) receives a borrowed pointer to the connector/logger name the record names
 *  (valid until the next apply). @returns what changed. Never fails: malformed records are ignored
 *  (and logged) as Kafka Connect does. */
cstate_event_t cstate_apply(cstate_t *cs, const char *key, const json_t *value, int64_t offset,
                            int64_t timestamp_ms, const char **name_out);

/** @returns the connector, or NULL if it does not exist (deleted or never created). */
cstate_conn_t *cstate_get(const cstate_t *cs, const char *name);
/** Number of existing connectors, and the i-th in name order (stable for iteration). */
size_t cstate_count(const cstate_t *cs);
cstate_conn_t *cstate_at(const cstate_t *cs, size_t i);
/** The last valid session key applied (len 0 if none). */
const cstate_session_key_t *cstate_session_key(const cstate_t *cs);
/** The record value for a session key. New reference. */
json_t *cstate_session_key_record(const unsigned char *key, size_t len, const char *algorithm, int64_t created_ms);
/** Offset of the next config-topic record to apply (= last applied + 1). */
int64_t cstate_offset(const cstate_t *cs);

const char *cstate_target_name(cstate_target_t t);     /* STARTED PAUSED STOPPED */
/** Kafka Connect's record value for a target state: {"state":..,"state.v2":..}. New reference. */
json_t *cstate_target_record(cstate_target_t t);

/* Record keys as Kafka Connect spells them. Return malloc'd strings. */
char *cstate_key_connector(const char *name);
char *cstate_key_target(const char *name);
char *cstate_key_task(const char *name, int task);
char *cstate_key_commit(const char *name);
char *cstate_key_restart(const char *name);

#endif
