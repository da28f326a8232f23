/* fwd: forwards a REST request to another worker (the leader, or a task's owner) and
 * hands the answer back to the h2o loop. Kafka Connect followers do the same with their
 * inter-worker HTTP client.
 *
 * Threads: each forwarded request runs a blocking libcurl call on its own short-lived
 * thread (a blocking call on the loop would stall every request, and would deadlock when
 * a worker forwards to itself). The result comes back through a multithread receiver, so
 * callbacks run on the loop thread. At most FWD_MAX_INFLIGHT requests run at once. */
#ifndef FERRY_FWD_H
#define FERRY_FWD_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stddef.h>

#define FWD_MAX_INFLIGHT 64

typedef struct fwd_result {
    int status;          /* HTTP status, 0 when the request could not be made */
    char *body;          /* response body (NUL-terminated), may be empty */
    size_t len;
    char *content_type;  /* may be NULL */
    char *location;      /* may be NULL */
    char error[256];     /* transport error when status == 0 */
} fwd_result_t;

/** Called on the loop thread; @p r is freed after it returns. */
typedef void (*fwd_cb)(void *arg, fwd_result_t *r);

typedef struct fwd fwd_t;

/** TLS settings for https URLs (PEM text, as read by rest/sec.c). NULL/0 fields are unset. */
typedef struct fwd_tls {
    const char *ca_pem;       /* trusted CAs; NULL = the system's CA bundle */
    int verify_host;          /* check the host name against the certificate (default 1) */
    const char *cert_pem;     /* client certificate chain, sent if the server asks; may be NULL */
    const char *key_pem;      /* its private key */
    const char *key_password; /* the key's password, or NULL */
} fwd_tls_t;

fwd_t *fwd_new(h2o_loop_t *loop, long timeout_ms);
/** Sets the TLS settings of later requests. @p tls is borrowed and must outlive @p f. */
void fwd_set_tls(fwd_t *f, const fwd_tls_t *tls);
/** One request to make. Every string may be NULL but method and url. */
typedef struct fwd_req {
    const char *method, *url;
    const char *body;
    size_t len;
    const char *content_type;
    const char *auth;          /* an Authorization header value to pass on */
    const char *sig, *sig_alg; /* X-Connect-Authorization and X-Connect-Request-Signature-Algorithm
                                  (signed internal requests, worker/isig.h) */
} fwd_req_t;

/** @returns 0 if started, -1 if too many requests are in flight (cb is not called). Everything
 *  in @p r is copied. */
int fwd_request(fwd_t *f, const fwd_req_t *r, fwd_cb cb, void *arg);
/** Waits for in-flight requests (their callbacks are not called) and frees. */
void fwd_destroy(fwd_t *f);

#endif
