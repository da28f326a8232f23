/* herder: the worker's control core, as Kafka Connect's DistributedHerder. It owns the
 * snapshots of the three storage topics, decides which connectors and tasks this worker
 * runs (its assignment), starts and stops them so that what runs matches the config topic
 * and the assignment (herder_reconcile), writes statuses, and carries out the REST API's
 * operations. Writes go to the config topic and are answered only after the worker has
 * read them back, so a GET right after a POST sees the change.
 *
 * Threads: everything here runs on the h2o loop thread. Store records, connector and task
 * events, and coordinator decisions arrive as multithread messages on that loop.
 *
 * Leadership: REST write operations must run on the leader. The REST layer asks
 * herder_is_leader() and forwards to herder_leader_url() otherwise; the herder itself
 * never forwards. A worker with no coordinator is its own leader and owns everything. */
#ifndef FERRY_HERDER_H
#define FERRY_HERDER_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <jansson.h>
#include <stdint.h>

#include "coordinator/assign.h"
#include "worker/ferr.h"
#include "worker/wconf.h"

typedef struct herder herder_t;

/** Outcome of an operation: on success err.code == FERR_OK and status is the HTTP success
 *  status (200, 201, 202, 204); body and location are owned by the result. */
typedef struct herder_result {
    int status;
    ferr_t err;
    json_t *body;
    char *location;
} herder_result_t;

/** Completion of an asynchronous operation, on the loop thread. @p res is valid only during the
 *  call; steal res->body (set it to NULL) to keep it. */
typedef void (*herder_cb)(void *arg, herder_result_t *res);

/** Creates the herder and its store (connects to Kafka, creates storage topics). */
herder_t *herder_new(const wconf_t *wc, h2o_loop_t *loop, ferr_t *err);
/** Stops connectors and tasks gracefully, then frees everything. */
void herder_destroy(herder_t *h);

/** 1 once the storage topics have been read to the end at start-up. */
int herder_ready(const herder_t *h);
int herder_is_leader(const herder_t *h);
/** Leader REST URL, NULL when no leader is known. */
const char *herder_leader_url(const herder_t *h);
const char *herder_worker_id(const herder_t *h);
/** Highest group generation this worker has seen (leadership or assignment). */
int64_t herder_generation(const herder_t *h);
const char *herder_kafka_cluster_id(herder_t *h);

/* ---- distributed mode hooks (coordinator) ------------------------------------------- */

/** Leadership as decided by the coordinator. @p url may be NULL (no leader known). */
void herder_set_leader(herder_t *h, int is_leader, const char *url, int64_t generation);
/** Installs a new assignment: items this worker must run from now on. Items not in @p assigned
 *  are stopped. herder_holding() tells what still runs (stopping tasks included). */
void herder_set_assignment(herder_t *h, int64_t generation, const assign_list_t *assigned);
/** The group's members as the current assignment lists them: worker id, REST URL, ...,
 *  NULL-terminated (copied). A task's owner is forwarded to only at one of these URLs. */
void herder_set_directory(herder_t *h, const char *const *pairs);
/** The REST URL of the member whose worker id is @p worker_id, or NULL. */
const char *herder_member_url(const herder_t *h, const char *worker_id);
/** What this worker currently runs or is still stopping (connector instances and tasks). */
void herder_holding(const herder_t *h, assign_list_t *out);
/** Every configured item (each connector's instance, task -1, and its committed tasks). */
void herder_configured(const herder_t *h, assign_list_t *out);
/** Called when holding or configuration changes (coordinator re-checks); may be NULL. */
void herder_on_change(herder_t *h, void (*cb)(void *arg), void *arg);
/** Stops every task and connector at once, without the graceful flush (the worker may no
 *  longer own them: it lost ZooKeeper), and forgets the assignment. */
void herder_fence(herder_t *h);
/** Where task configs generated here go when this worker is not the leader: @p fn must send
 *  them to the leader (POST /connectors/{name}/tasks). @p configs is borrowed. */
void herder_on_task_configs(herder_t *h, void (*fn)(void *arg, const char *leader_url, const char *name,
                                                    const json_t *configs),
                            void *arg);
/** The group's current session key for signing internal requests (worker/isig.h), as read from
 *  the config topic; borrowed until the next loop event. @returns 0, or -1 if none is known yet. */
int herder_session_key(const herder_t *h, const unsigned char **key, size_t *len);
/** Config-topic position this worker has applied. */
int64_t herder_config_offset(const herder_t *h);

/* ---- reads (served locally, synchronous) ------------------------------------------- */

json_t *herder_list(herder_t *h, int expand_status, int expand_info);
ferr_code_t herder_info(herder_t *h, const char *name, json_t **out, ferr_t *err);
ferr_code_t herder_config(herder_t *h, const char *name, json_t **out, ferr_t *err);
ferr_code_t herder_status(herder_t *h, const char *name, json_t **out, ferr_t *err);
ferr_code_t herder_task_status(herder_t *h, const char *name, int task, json_t **out, ferr_t *err);
ferr_code_t herder_tasks(herder_t *h, const char *name, int as_map, json_t **out, ferr_t *err);
ferr_code_t herder_topics(herder_t *h, const char *name, json_t **out, ferr_t *err);
ferr_code_t herder_offsets(herder_t *h, const char *name, json_t **out, ferr_t *err);
json_t *herder_plugins(int connectors_only);
struct metrics;
/** Appends the worker's and its tasks' metrics (Prometheus text) to @p m. */
void herder_metrics(herder_t *h, struct metrics *m);
ferr_code_t herder_plugin_config(const char *plugin, json_t **out, ferr_t *err);
/** PUT /connector-plugins/{plugin}/config/validate: the ConfigInfos of @p config, checked against
 *  this worker's config too (see repl_validate(); @p h may be NULL for config-only checks). */
ferr_code_t herder_validate(const herder_t *h, const char *plugin, const json_t *config, json_t **out,
                            ferr_t *err);
/** Worker-scope logger level change; @returns the affected logger names. */
ferr_code_t herder_set_logger(const char *name, const char *level, json_t **out, ferr_t *err);
json_t *herder_loggers(void);
ferr_code_t herder_logger(const char *name, json_t **out, ferr_t *err);

/* ---- writes (leader; asynchronous, cb may run before the call returns) ------------- */

typedef enum { HERDER_PUT_CREATE = 1, HERDER_PUT_UPSERT, HERDER_PUT_PATCH } herder_put_t;

/** POST /connectors (CREATE), PUT .../config (UPSERT), PATCH .../config (PATCH: @p config is the
 *  patch, a JSON null value removes a key). @p initial_state: NULL, RUNNING, PAUSED or STOPPED. */
void herder_put_connector(herder_t *h, const char *name, const json_t *config, herder_put_t mode,
                          const char *initial_state, herder_cb cb, void *arg);
void herder_delete_connector(herder_t *h, const char *name, herder_cb cb, void *arg);
/** PAUSED, STARTED (resume) or STOPPED. */
void herder_set_target(herder_t *h, const char *name, const char *target, herder_cb cb, void *arg);
void herder_restart_connector(herder_t *h, const char *name, int include_tasks, int only_failed,
                              herder_cb cb, void *arg);
/** Restarts a task this worker runs (synchronous: the restart itself proceeds in the
 *  background). @returns FERR_CONFLICT with @p owner_url filled (malloc'd) when another worker
 *  runs it, FERR_NOT_FOUND for an unknown connector or task. */
ferr_code_t herder_restart_task(herder_t *h, const char *name, int task, char **owner_url,
                                ferr_t *err);
void herder_alter_offsets(herder_t *h, const char *name, const json_t *body, int reset,
                          herder_cb cb, void *arg);
/** Internal: task configs generated by a connector instance on a follower. */
void herder_put_task_configs(herder_t *h, const char *name, const json_t *configs, herder_cb cb,
                             void *arg);
void herder_set_logger_cluster(herder_t *h, const char *name, const char *level, herder_cb cb,
                               void *arg);
/** GET /connectors/{name}/groups/{group} (@p commit 0, any worker) and POST .../translate
 *  (@p commit 1, leader): translate @p group's source offsets for the connector's copies. */
void herder_group(herder_t *h, const char *name, const char *group, int commit, herder_cb cb, void *arg);
/** GET /connectors/{name}/groups: the groups the connector translates periodically. */
ferr_code_t herder_groups(herder_t *h, const char *name, json_t **out, ferr_t *err);

#endif
