/* rest: Kafka Connect's REST API on h2o — paths, query parameters, status codes and JSON
 * shapes as Kafka Connect answers them. Reads are served from this worker's snapshots;
 * writes run on the leader and are forwarded there by followers (with Kafka Connect's
 * `forward` query parameter, so a request makes at most two hops and never loops).
 *
 * Threads: everything runs on the h2o loop thread; forwarded calls complete through fwd. */
#ifndef FERRY_REST_H
#define FERRY_REST_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "worker/ferr.h"
#include "worker/herder.h"
#include "worker/wconf.h"

/** The Kafka Connect release whose REST API ferry answers like: "version" in GET / (where Kafka
 *  Connect reports its own version) and ferry-worker --version. Scripts that check it see the
 *  API they were written for; ferry's own version is "ferry_version" (and "commit"). */
#define REST_KAFKA_CONNECT_VERSION "3.9.0"

/** Request bodies above this size are refused with 413. */
#define REST_MAX_BODY (1024 * 1024)

typedef struct rest rest_t;

/** Registers the API on @p host. @p h and @p wc are borrowed and must outlive the rest_t. */
rest_t *rest_new(h2o_hostconf_t *host, herder_t *h, const wconf_t *wc, h2o_loop_t *loop);
void rest_destroy(rest_t *r);

struct sec;
/** Applies the REST security settings (rest/sec.h): basic authentication of every request,
 *  TLS and the internal credential for forwarded ones. @p s is borrowed and must outlive @p r. */
void rest_set_sec(rest_t *r, const struct sec *s);

/** 1 when GET /health answers 200: the storage topics are read and a leader is known (the
 *  group is joined), so writes work. notify.h's READY=1 follows the same test. */
int rest_healthy(const herder_t *h);

/** The HTTP status for an error code: the single place where errors become statuses. */
int rest_status_of(ferr_code_t code);

/** Builds Kafka Connect's error body {"error_code":N,"message":"..."} (malloc'd, compact JSON). */
char *rest_error_body(int status, const char *message);

#endif
