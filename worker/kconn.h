/* kconn: one connection to one Kafka broker, for the batch-passthrough path (kwire.h).
 *
 * Why: librdkafka 2.0.2 cannot hand over or accept whole RecordBatches, so the passthrough
 * engine speaks Fetch and Produce itself with kwire and needs connections of its own. They
 * must reach the brokers librdkafka's clients reach, the same way: the same configuration keys
 * layered in the same order, the same TLS checks, the same SASL mechanisms. What kconn cannot
 * do the same way it refuses with FERR_UNSUPPORTED, so the caller keeps the task on the
 * librdkafka record path and logs why once.
 *
 * Opening a connection (kconn_open), in librdkafka's order, all under one deadline:
 *
 *   TCP connect ──▶ TLS handshake ──▶ ApiVersions v2 ──▶ SaslHandshake v1 ──▶ ready
 *   (non-blocking,   (ssl, sasl_ssl:   (v1/v0 if the      + SaslAuthenticate
 *    TCP_NODELAY)     CA, host name,    broker answers     v0/v1 (sasl_*: PLAIN,
 *                     SNI, client       UNSUPPORTED_       SCRAM-SHA-256/512)
 *                     certificate)      VERSION)
 *
 * Requests: kconn_hdr() gives a request header (the next correlation id, client.id); a kwire
 * writer appends the frame; kconn_send() writes it. kconn_recv() returns the responses. Several
 * requests may be in flight on one connection: Kafka answers them in order, and kconn keeps
 * their correlation ids in a FIFO and refuses a response that is not the oldest one's.
 *
 * Errors (messages start with "host:port: "):
 *   FERR_KAFKA        the connection is broken: refused, reset or closed, a TLS failure, a
 *                     malformed or oversized frame, a response out of order. Every later call
 *                     fails the same way; destroy it and open another.
 *   FERR_TIMEOUT      the deadline passed. From kconn_recv nothing is lost: call it again. From
 *                     kconn_open, kconn_send and kconn_call the connection is broken as well (a
 *                     request may be half-written, or its answer is still due).
 *   FERR_UNAUTHORIZED the broker refused the SASL credentials (its message is kept), or a SCRAM
 *                     server could not prove it knows the password.
 *   FERR_UNSUPPORTED  a setting kconn cannot serve (GSSAPI, OAUTHBEARER, a PKCS#12 keystore,
 *                     an OpenSSL engine or provider, an unknown security.protocol), or a broker
 *                     without SaslHandshake v1. The message names the key.
 *   FERR_INVALID      a bad setting, or a misuse (kconn_call with requests in flight).
 *
 * thread: a kconn_t belongs to one thread at a time and is not locked; hand it to another
 * thread only through something that orders memory (a queue, a mutex). A kconn_conf_t is
 * written by one thread until kconn_conf_finish(); after that it is read-only, and any number
 * of threads may open connections with it at once (its SSL_CTX is only read).
 * Time: every deadline is on the monotonic clock. Name resolution (getaddrinfo) is not bounded
 * by the deadline. */
#ifndef FERRY_KCONN_H
#define FERRY_KCONN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/kwire.h"
#include "worker/ferr.h"
#include "worker/props.h"

/* ---- configuration ---- */

typedef enum kconn_security {
    KCONN_PLAINTEXT,
    KCONN_SSL,
    KCONN_SASL_PLAINTEXT,
    KCONN_SASL_SSL,
} kconn_security_t;

typedef enum kconn_mech {
    KCONN_MECH_NONE, /* no SASL */
    KCONN_MECH_PLAIN,
    KCONN_MECH_SCRAM_SHA_256,
    KCONN_MECH_SCRAM_SHA_512,
} kconn_mech_t;

/* The TLS materials, kept as given until kconn_conf_finish() loads them. */
enum {
    KCONN__CA_LOCATION,
    KCONN__CA_PEM,
    KCONN__CRL_LOCATION,
    KCONN__CERT_LOCATION,
    KCONN__CERT_PEM,
    KCONN__KEY_LOCATION,
    KCONN__KEY_PEM,
    KCONN__KEY_PASSWORD,
    KCONN__CIPHERS,
    KCONN__CURVES,
    KCONN__SIGALGS,
    KCONN__MECHANISM,   /* sasl.mechanism(s): resolved by kconn_conf_finish() */
    KCONN__TLS_REFUSED, /* the first ssl.keystore.location, ssl.engine.*, ssl.providers */
    KCONN__NSLOTS,
};

/**
 * @brief The settings of ferry's own Kafka connections, in librdkafka's key names.
 *
 * Read: security.protocol (plaintext, ssl, sasl_plaintext, sasl_ssl; any case),
 * sasl.mechanism / sasl.mechanisms (librdkafka's default GSSAPI), sasl.username,
 * sasl.password, ssl.ca.location (a file, a directory, or "probe"), ssl.ca.pem,
 * ssl.crl.location, ssl.certificate.location, ssl.certificate.pem, ssl.key.location,
 * ssl.key.pem, ssl.key.password, ssl.cipher.suites, ssl.curves.list, ssl.sigalgs.list,
 * enable.ssl.certificate.verification, ssl.endpoint.identification.algorithm (https, 2.0.2's
 * default, or none), client.id, socket.connection.setup.timeout.ms, socket.timeout.ms,
 * receive.message.max.bytes, broker.address.family, socket.send.buffer.bytes,
 * socket.receive.buffer.bytes, socket.keepalive.enable. Refused with FERR_UNSUPPORTED when
 * they would apply (TLS in use): ssl.keystore.location, ssl.engine.*, ssl.providers. Every
 * other key does not change how a connection is made or authenticated and is ignored (what
 * librdkafka does with it, e.g. retries or batching, is the caller's business).
 * Without TLS the ssl.* keys are not read; without SASL the mechanism is not checked.
 * Fields are filled by kconn_conf_set() and kconn_conf_finish(); read them, do not write them
 * (except client_id, see below). Release with kconn_conf_dispose().
 */
typedef struct kconn_conf {
    kconn_security_t security;
    kconn_mech_t mechanism;  /* KCONN_MECH_NONE unless security is sasl_* */
    char *username;          /* sasl.username, NULL = not set */
    char *password;          /* sasl.password, NULL = not set; wiped by kconn_conf_dispose() */
    char *client_id;         /* client.id; NULL = no layer set it: requests then carry librdkafka's
                                default "rdkafka". The caller may put its own (malloc'd) default
                                here after kconn_conf_from() if it is still NULL */
    bool verify_certificate; /* enable.ssl.certificate.verification, default true */
    bool verify_hostname;    /* ssl.endpoint.identification.algorithm=https (default) */
    int connect_timeout_ms;  /* socket.connection.setup.timeout.ms, default 30000 */
    int request_timeout_ms;  /* socket.timeout.ms, default 60000 (for the caller's requests) */
    size_t max_response;     /* receive.message.max.bytes, default 100000000: a larger response
                                frame breaks the connection */
    int address_family;      /* broker.address.family: AF_UNSPEC (any), AF_INET (v4), AF_INET6 */
    int send_buffer;         /* socket.send.buffer.bytes, 0 = the system's */
    int receive_buffer;      /* socket.receive.buffer.bytes, 0 = the system's */
    bool keepalive;          /* socket.keepalive.enable, default false */
    /* private */
    char *_slot[KCONN__NSLOTS];
    char _slot_key[KCONN__NSLOTS][80]; /* the key as the user wrote it (with its prefix) */
    void *_ssl_ctx;                    /* SSL_CTX *, built by kconn_conf_finish() with TLS */
    bool _finished;
} kconn_conf_t;

/** librdkafka's defaults: plaintext, verification on, https host check, 30 s setup timeout. */
void kconn_conf_init(kconn_conf_t *c);

/**
 * @brief Sets one key (a later call for the same key wins, as with rd_kafka_conf_set).
 * @param origin  prepended to @p key in messages ("producer.", "src.kafka."); may be NULL.
 * @returns FERR_OK (also for a key kconn does not read); FERR_INVALID for a value the key
 *          cannot take (a boolean that is not true/false/t/f/1/0, a number out of librdkafka's
 *          range, an unknown enum value); FERR_UNSUPPORTED for an unknown security.protocol.
 * @remark Only before kconn_conf_finish() (FERR_INVALID after it).
 */
ferr_code_t kconn_conf_set(kconn_conf_t *c, const char *key, const char *value, const char *origin, ferr_t *err);

/** Sets every entry of @p p (NULL = none) in order. Stops at the first error. */
ferr_code_t kconn_conf_apply(kconn_conf_t *c, const props_t *p, const char *origin, ferr_t *err);

/**
 * @brief Sets the string values of @p config (a connector config) whose key starts with
 *        @p prefix ("src.kafka."), without the prefix, as kutil_conf_apply_prefixed() does for
 *        librdkafka: a key the fixed allow-list of cpolicy.h refuses is not set, FERR_INVALID
 *        with the reason (a connector may not make the worker read its files, for one).
 */
ferr_code_t kconn_conf_apply_prefixed(kconn_conf_t *c, const json_t *config, const char *prefix, ferr_t *err);

/**
 * @brief Checks what needs every key at once and loads the TLS materials; then @p c is
 *        read-only and ready for kconn_open().
 * @returns FERR_OK; FERR_UNSUPPORTED naming the key (a SASL mechanism other than PLAIN and
 *          SCRAM-SHA-256/512, librdkafka's default GSSAPI included; a keystore, engine or
 *          provider with TLS); FERR_INVALID (SASL without sasl.username or sasl.password; a CA,
 *          CRL, certificate or key that cannot be read, a key that does not match the
 *          certificate, a wrong ssl.key.password, a cipher, curve or sigalg list OpenSSL refuses).
 */
ferr_code_t kconn_conf_finish(kconn_conf_t *c, ferr_t *err);

/**
 * @brief The configuration of one client from the layers the record path uses, later layers
 *        winning: @p common (the worker's top-level client keys, wconf->common; NULL for a
 *        source cluster, which the worker's settings do not reach), @p layer (wconf->producer
 *        or ->consumer; NULL = none) named @p layer_origin ("producer."), then, in the order of
 *        @p prefixes (NULL-terminated, NULL = none), the keys of @p config (NULL = none) under
 *        each prefix ({"dest.kafka.", "producer.override.", NULL} for a destination producer,
 *        {"src.kafka.", "src.consumer.", NULL} for a source consumer); then kconn_conf_finish().
 * @param out  overwritten; on error it owns nothing (kconn_conf_dispose() is still allowed).
 * @returns what kconn_conf_set(), kconn_conf_apply_prefixed() or kconn_conf_finish() returned.
 */
ferr_code_t kconn_conf_from(const props_t *common, const props_t *layer, const char *layer_origin,
                            const json_t *config, const char *const *prefixes, kconn_conf_t *out, ferr_t *err);

/** Frees what @p c owns, wipes the secrets, and leaves it as kconn_conf_init() does. */
void kconn_conf_dispose(kconn_conf_t *c);

/** @returns "plaintext", "ssl", "sasl_plaintext" or "sasl_ssl". */
const char *kconn_security_name(kconn_security_t s);

/* ---- a connection ---- */

typedef struct kconn kconn_t;

/**
 * @brief Connects to @p host : @p port and makes the connection ready (see the top comment).
 * @param conf        finished (kconn_conf_finish); borrowed only during the call (the
 *                    connection keeps its own copy of what it needs later).
 * @param timeout_ms  for all of it, from the first connect to the last SASL answer; <= 0 means
 *                    conf->connect_timeout_ms. Every address @p host resolves to is tried in turn.
 * @returns the connection (kconn_destroy() it), or NULL with @p err set (see the top comment).
 */
kconn_t *kconn_open(const kconn_conf_t *conf, const char *host, int port, int timeout_ms, ferr_t *err);

/**
 * @brief kconn_open() on a socket connected some other way (and for tests and fuzzers, on one
 *        end of a socketpair): TLS, ApiVersions and SASL as kconn_open() does them.
 * @param fd         taken over: made non-blocking and close-on-exec, closed by kconn_destroy()
 *                   (and on failure).
 * @param host, port for the TLS host name check and SNI, and for the messages.
 */
kconn_t *kconn_open_fd(const kconn_conf_t *conf, int fd, const char *host, int port, int timeout_ms, ferr_t *err);

/** @returns the version to use for @p api_key: the highest both @p ours_min..@p ours_max and
 *  the broker's ApiVersions range allow, or -1 if the broker does not offer it or the ranges do
 *  not meet. */
int16_t kconn_version(const kconn_t *c, int16_t api_key, int16_t ours_min, int16_t ours_max);

/** The broker's ApiVersions answer (for kwire_negotiate()); owned by @p c. */
const kwire_apiversions_resp_t *kconn_apiversions(const kconn_t *c);

/** @returns a request header for @p version with the next correlation id and the client id
 *  (owned by @p c), for kwire_X_req_write(). Ids that are never sent leave no trace. */
kwire_req_hdr_t kconn_hdr(kconn_t *c, int16_t version);

/**
 * @brief Writes the request frames in @p w (one or more complete frames made with kconn_hdr()
 *        headers) and queues their correlation ids for kconn_recv().
 * @param timeout_ms  to write all of it (< 0: no limit). A broker that does not read blocks this.
 * @param corr_out    may be NULL: the correlation id of the last frame.
 * @returns FERR_OK; FERR_INVALID (nothing sent, the connection is fine) for a writer that failed,
 *          an incomplete frame, or a Produce with acks=0 (a broker does not answer it, which
 *          would desynchronise the FIFO; the 2.0.2 mock answers it anyway); FERR_TIMEOUT or
 *          FERR_KAFKA (broken).
 */
ferr_code_t kconn_send(kconn_t *c, const kwire_wr_t *w, int timeout_ms, int32_t *corr_out, ferr_t *err);

/**
 * @brief Reads the next response: that of the oldest request in flight.
 * @param timeout_ms  0: only what has arrived; < 0: no limit.
 * @param body, len   out: the response body (after the correlation id), in a buffer of @p c
 *                    valid until the next kconn_recv(), kconn_call(), kconn_metadata() or kconn_destroy().
 * @param corr        out (may be NULL): its correlation id, always the oldest one sent.
 * @returns FERR_OK; FERR_TIMEOUT (nothing lost); FERR_INVALID if nothing is in flight;
 *          FERR_KAFKA (broken).
 */
ferr_code_t kconn_recv(kconn_t *c, int timeout_ms, const uint8_t **body, size_t *len, int32_t *corr, ferr_t *err);

/** kconn_send() then kconn_recv() for the one frame in @p w, on a connection with nothing in
 *  flight (FERR_INVALID otherwise). A timeout breaks the connection. */
ferr_code_t kconn_call(kconn_t *c, const kwire_wr_t *w, int timeout_ms, const uint8_t **body, size_t *len,
                       ferr_t *err);

/**
 * @brief Metadata for @p n topics (@p n < 0: all topics; broker-side auto-creation is not asked
 *        for from v4), at the highest version kwire and the broker share, with kconn_call().
 * @param out  on FERR_OK the decoded response (kwire_metadata_resp_dispose() it); zeroed otherwise.
 * @returns FERR_OK, FERR_UNSUPPORTED if no Metadata version fits, or kconn_call()'s errors
 *          (FERR_KAFKA also for a response that does not decode).
 */
ferr_code_t kconn_metadata(kconn_t *c, const char *const *topics, int n, kwire_metadata_resp_t *out, int timeout_ms,
                           ferr_t *err);

/** @returns the socket, for callers that poll themselves (POLLIN: kconn_recv may progress).
 *  Check kconn_pending() first: with TLS, bytes may wait inside OpenSSL, not in the socket. */
int kconn_fd(const kconn_t *c);
/** @returns true if kconn_recv() has a complete response or TLS data without reading the socket. */
bool kconn_pending(const kconn_t *c);
/** @returns the requests sent and not yet answered. */
size_t kconn_inflight(const kconn_t *c);
/** @returns false once the connection is broken (or closed). */
bool kconn_ok(const kconn_t *c);
/** @returns "host:port", as in the messages. */
const char *kconn_peer(const kconn_t *c);
/** @returns when the broker ends the SASL session (SaslAuthenticate v1 session lifetime,
 *  KIP-368) in kutil_now_ms() milliseconds, or 0 if it does not. kconn does not
 *  re-authenticate: open a new connection before then. */
int64_t kconn_session_end_ms(const kconn_t *c);

/** Closes the socket (later calls fail with FERR_KAFKA "closed") but keeps @p c. */
void kconn_close(kconn_t *c);
/** Closes and frees @p c (NULL is fine). */
void kconn_destroy(kconn_t *c);

#endif
