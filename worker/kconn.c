/* kconn: one broker connection for batch passthrough. See kconn.h for the sequence and the
 * error contract.
 *
 * Invariants:
 *   - c->fail.code != FERR_OK  <=>  the connection is broken; every call then returns
 *     FERR_KAFKA with c->fail.msg, and the socket is not touched again.
 *   - c->q holds the correlation ids sent and not answered, oldest first; a response whose id
 *     is not the oldest breaks the connection (Kafka answers in order on one connection).
 *   - c->rbuf[0, rlen) are bytes read and not yet consumed; the frame kconn_recv() returned
 *     last is rbuf[0, rdone) and is dropped at the start of the next read.
 *   - The socket is non-blocking; every wait is a poll() bounded by a monotonic deadline.
 * TLS goes through a BIO of ours that writes with send(MSG_NOSIGNAL), so a broker that hangs
 * up cannot raise SIGPIPE in a process that did not ignore it. */
#include "worker/kconn.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/ksasl.h"
#include "worker/kutil.h"

#define KC_READ_CHUNK (64 * 1024) /* free space kept in the receive buffer */
#define KC_KAFKA_UNSUPPORTED_VERSION 35
#define KC_KAFKA_UNSUPPORTED_SASL_MECHANISM 33

static char *kc_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort(); /* as props_new(): out of memory is not recoverable here */
    return d;
}

static void kc_free_secret(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

/* ---- configuration ---- */

typedef enum kc_kind {
    KC_K_SECURITY,
    KC_K_USER,
    KC_K_PASSWORD,
    KC_K_CLIENT_ID,
    KC_K_BOOL,
    KC_K_INT,
    KC_K_ENDPOINT,
    KC_K_FAMILY,
    KC_K_SLOT,
    KC_K_REFUSED_TLS,
} kc_kind_t;

typedef struct kc_key {
    const char *name;
    kc_kind_t kind;
    size_t field; /* KC_K_BOOL, KC_K_INT: offsetof the field; KC_K_SLOT: the slot */
    int min, max; /* KC_K_INT: librdkafka's range */
} kc_key_t;

#define KC_OFF(f) offsetof(kconn_conf_t, f)

static const kc_key_t kc_keys[] = {
    {"security.protocol", KC_K_SECURITY, 0, 0, 0},
    {"sasl.mechanism", KC_K_SLOT, KCONN__MECHANISM, 0, 0},
    {"sasl.mechanisms", KC_K_SLOT, KCONN__MECHANISM, 0, 0},
    {"sasl.username", KC_K_USER, 0, 0, 0},
    {"sasl.password", KC_K_PASSWORD, 0, 0, 0},
    {"client.id", KC_K_CLIENT_ID, 0, 0, 0},
    {"enable.ssl.certificate.verification", KC_K_BOOL, KC_OFF(verify_certificate), 0, 0},
    {"socket.keepalive.enable", KC_K_BOOL, KC_OFF(keepalive), 0, 0},
    {"ssl.endpoint.identification.algorithm", KC_K_ENDPOINT, 0, 0, 0},
    {"socket.connection.setup.timeout.ms", KC_K_INT, KC_OFF(connect_timeout_ms), 1000, INT_MAX},
    {"socket.timeout.ms", KC_K_INT, KC_OFF(request_timeout_ms), 10, 300000},
    {"receive.message.max.bytes", KC_K_INT, KC_OFF(max_response), 1000, INT_MAX},
    {"socket.send.buffer.bytes", KC_K_INT, KC_OFF(send_buffer), 0, 100000000},
    {"socket.receive.buffer.bytes", KC_K_INT, KC_OFF(receive_buffer), 0, 100000000},
    {"broker.address.family", KC_K_FAMILY, 0, 0, 0},
    {"ssl.ca.location", KC_K_SLOT, KCONN__CA_LOCATION, 0, 0},
    {"ssl.ca.pem", KC_K_SLOT, KCONN__CA_PEM, 0, 0},
    {"ssl.crl.location", KC_K_SLOT, KCONN__CRL_LOCATION, 0, 0},
    {"ssl.certificate.location", KC_K_SLOT, KCONN__CERT_LOCATION, 0, 0},
    {"ssl.certificate.pem", KC_K_SLOT, KCONN__CERT_PEM, 0, 0},
    {"ssl.key.location", KC_K_SLOT, KCONN__KEY_LOCATION, 0, 0},
    {"ssl.key.pem", KC_K_SLOT, KCONN__KEY_PEM, 0, 0},
    {"ssl.key.password", KC_K_SLOT, KCONN__KEY_PASSWORD, 0, 0},
    {"ssl.cipher.suites", KC_K_SLOT, KCONN__CIPHERS, 0, 0},
    {"ssl.curves.list", KC_K_SLOT, KCONN__CURVES, 0, 0},
    {"ssl.sigalgs.list", KC_K_SLOT, KCONN__SIGALGS, 0, 0},
    {"ssl.keystore.location", KC_K_REFUSED_TLS, 0, 0, 0},
    {"ssl.engine.location", KC_K_REFUSED_TLS, 0, 0, 0},
    {"ssl.engine.id", KC_K_REFUSED_TLS, 0, 0, 0},
    {"ssl.providers", KC_K_REFUSED_TLS, 0, 0, 0},
};

static const char *const kc_security_names[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};

const char *kconn_security_name(kconn_security_t s) { return kc_security_names[s]; }

static bool kc_tls(kconn_security_t s) { return s == KCONN_SSL || s == KCONN_SASL_SSL; }
static bool kc_sasl(kconn_security_t s) { return s == KCONN_SASL_PLAINTEXT || s == KCONN_SASL_SSL; }

void kconn_conf_init(kconn_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->security = KCONN_PLAINTEXT;
    c->mechanism = KCONN_MECH_NONE;
    c->verify_certificate = true;
    c->verify_hostname = true; /* librdkafka >= 2.0: ssl.endpoint.identification.algorithm=https */
    c->connect_timeout_ms = 30000;
    c->request_timeout_ms = 60000;
    c->max_response = 100000000;
    c->address_family = AF_UNSPEC;
}

void kconn_conf_dispose(kconn_conf_t *c)
{
    free(c->username);
    kc_free_secret(&c->password);
    free(c->client_id);
    for (int i = 0; i < KCONN__NSLOTS; i++)
        kc_free_secret(&c->_slot[i]);
    SSL_CTX_free(c->_ssl_ctx);
    kconn_conf_init(c);
}

static ferr_code_t kc_bad_value(const char *origin, const char *key, const char *value, const char *want,
                                ferr_t *err)
{
    return ferr_set(err, FERR_INVALID, "Invalid value \"%s\" for %s%s: %s", value, origin, key, want);
}

/* librdkafka's boolean spellings (rdkafka_conf.c): true/t/1, false/f/0, letters in any case. */
static int kc_parse_bool(const char *v)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "t") || !strcmp(v, "1"))
        return 1;
    if (!strcasecmp(v, "false") || !strcasecmp(v, "f") || !strcmp(v, "0"))
        return 0;
    return -1;
}

static ferr_code_t kc_set_int(kconn_conf_t *c, const kc_key_t *k, const char *value, const char *origin,
                              ferr_t *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 0); /* base 0, as librdkafka's strtol */
    if (end == value || *end || errno || v < k->min || v > k->max) {
        char want[64];
        snprintf(want, sizeof want, "an integer in %d..%d", k->min, k->max);
        return kc_bad_value(origin, k->name, value, want, err);
    }
    if (k->field == KC_OFF(max_response))
        c->max_response = (size_t)v;
    else
        *(int *)((char *)c + k->field) = (int)v;
    return FERR_OK;
}

static void kc_set_slot(kconn_conf_t *c, int slot, const char *origin, const char *key, const char *value)
{
    kc_free_secret(&c->_slot[slot]);
    c->_slot[slot] = kc_strdup(value);
    snprintf(c->_slot_key[slot], sizeof c->_slot_key[slot], "%s%s", origin, key);
}

static void kc_replace(char **field, const char *value, bool secret)
{
    if (secret)
        kc_free_secret(field);
    else
        free(*field);
    *field = kc_strdup(value);
}

ferr_code_t kconn_conf_set(kconn_conf_t *c, const char *key, const char *value, const char *origin, ferr_t *err)
{
    const kc_key_t *k = NULL;
    for (size_t i = 0; i < sizeof kc_keys / sizeof kc_keys[0] && !k; i++)
        if (!strcmp(kc_keys[i].name, key))
            k = &kc_keys[i];
    if (c->_finished)
        return ferr_set(err, FERR_INVALID, "kconn_conf_set(%s) after kconn_conf_finish()", key);
    if (!k)
        return FERR_OK;
    origin = origin ? origin : "";
    switch (k->kind) {
    case KC_K_SECURITY:
        for (int s = KCONN_PLAINTEXT; s <= KCONN_SASL_SSL; s++)
            if (!strcasecmp(value, kc_security_names[s])) {
                c->security = (kconn_security_t)s;
                return FERR_OK;
            }
        return ferr_set(err, FERR_UNSUPPORTED,
                        "%s%s=%s: ferry's own Kafka connections speak plaintext, ssl, sasl_plaintext and sasl_ssl",
                        origin, key, value);
    case KC_K_USER: kc_replace(&c->username, value, false); return FERR_OK;
    case KC_K_PASSWORD: kc_replace(&c->password, value, true); return FERR_OK;
    case KC_K_CLIENT_ID: kc_replace(&c->client_id, value, false); return FERR_OK;
    case KC_K_BOOL: {
        int b = kc_parse_bool(value);
        if (b < 0)
            return kc_bad_value(origin, key, value, "true or false", err);
        *(bool *)((char *)c + k->field) = b;
        return FERR_OK;
    }
    case KC_K_INT: return kc_set_int(c, k, value, origin, err);
    case KC_K_ENDPOINT:
        if (strcasecmp(value, "https") && strcasecmp(value, "none"))
            return kc_bad_value(origin, key, value, "https or none", err);
        c->verify_hostname = !strcasecmp(value, "https");
        return FERR_OK;
    case KC_K_FAMILY:
        if (!strcasecmp(value, "any"))
            c->address_family = AF_UNSPEC;
        else if (!strcasecmp(value, "v4"))
            c->address_family = AF_INET;
        else if (!strcasecmp(value, "v6"))
            c->address_family = AF_INET6;
        else
            return kc_bad_value(origin, key, value, "any, v4 or v6", err);
        return FERR_OK;
    case KC_K_SLOT: kc_set_slot(c, (int)k->field, origin, key, value); return FERR_OK;
    case KC_K_REFUSED_TLS:
        if (!c->_slot[KCONN__TLS_REFUSED]) /* the first one is named; it cannot be unset */
            kc_set_slot(c, KCONN__TLS_REFUSED, origin, key, value);
        return FERR_OK;
    }
    return FERR_OK;
}

ferr_code_t kconn_conf_apply(kconn_conf_t *c, const props_t *p, const char *origin, ferr_t *err)
{
    for (size_t i = 0; p && i < props_count(p); i++) {
        ferr_code_t rc = kconn_conf_set(c, props_key(p, i), props_value(p, i), origin, err);
        if (rc)
            return rc;
    }
    return FERR_OK;
}

static ferr_code_t kc_set_fn(void *c, const char *key, const char *value, const char *origin, ferr_t *err)
{
    return kconn_conf_set(c, key, value, origin, err);
}

ferr_code_t kconn_conf_apply_prefixed(kconn_conf_t *c, const json_t *config, const char *prefix, ferr_t *err)
{
    return kutil_each_prefixed(config, prefix, kc_set_fn, c, err); /* through cpolicy, as librdkafka's keys */
}

static ferr_code_t kc_mechanism(kconn_conf_t *c, ferr_t *err)
{
    static const struct {
        const char *name;
        kconn_mech_t mech;
    } mechs[] = {{"PLAIN", KCONN_MECH_PLAIN},
                 {"SCRAM-SHA-256", KCONN_MECH_SCRAM_SHA_256},
                 {"SCRAM-SHA-512", KCONN_MECH_SCRAM_SHA_512}};
    const char *m = c->_slot[KCONN__MECHANISM] ? c->_slot[KCONN__MECHANISM] : "GSSAPI";
    const char *key = c->_slot[KCONN__MECHANISM] ? c->_slot_key[KCONN__MECHANISM] : "sasl.mechanism (default)";
    c->mechanism = KCONN_MECH_NONE;
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (!strcmp(m, mechs[i].name)) /* case-sensitive, as librdkafka */
            c->mechanism = mechs[i].mech;
    if (c->mechanism == KCONN_MECH_NONE)
        return ferr_set(err, FERR_UNSUPPORTED,
                        "%s=%s: ferry's own Kafka connections support the SASL mechanisms PLAIN, SCRAM-SHA-256 "
                        "and SCRAM-SHA-512",
                        key, m);
    if (!c->username || !c->password)
        return ferr_set(err, FERR_INVALID, "sasl.username and sasl.password must be set for SASL mechanism %s", m);
    return FERR_OK;
}

/* The reason of OpenSSL's last error, or of a system error under it (a file that cannot be
 * opened: "No such file or directory", not "system lib"). Empties the error queue. */
static const char *kc_ssl_reason(char *buf, size_t n)
{
    unsigned long e, last = 0, sys = 0;
    while ((e = ERR_get_error())) {
        last = e;
        if (ERR_SYSTEM_ERROR(e) && !sys)
            sys = e;
    }
    const char *r = last ? ERR_reason_error_string(last) : NULL;
    if (sys)
        snprintf(buf, n, "%s", strerror(ERR_GET_REASON(sys)));
    else if (r)
        snprintf(buf, n, "%s", r);
    else if (last)
        ERR_error_string_n(last, buf, n);
    else
        snprintf(buf, n, "unknown OpenSSL error");
    return buf;
}

static ferr_code_t kc_ssl_fail(kconn_conf_t *c, int slot, const char *what, ferr_t *err)
{
    char r[256];
    return ferr_set(err, FERR_INVALID, "%s: %s: %s", c->_slot_key[slot], what, kc_ssl_reason(r, sizeof r));
}

/* A PEM passphrase callback that never prompts (OpenSSL's default reads the terminal). */
static int kc_pem_password(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    size_t n = u ? strlen(u) : 0;
    if (!u || n > (size_t)size)
        return -1;
    memcpy(buf, u, n);
    return (int)n;
}

static BIO *kc_pem_bio(kconn_conf_t *c, int file_slot, int pem_slot)
{
    return c->_slot[file_slot] ? BIO_new_file(c->_slot[file_slot], "r") : BIO_new_mem_buf(c->_slot[pem_slot], -1);
}

static ferr_code_t kc_load_ca(kconn_conf_t *c, SSL_CTX *ctx, ferr_t *err)
{
    const char *loc = c->_slot[KCONN__CA_LOCATION];
    if (loc && strcmp(loc, "probe")) {
        struct stat st;
        bool dir = stat(loc, &st) == 0 && S_ISDIR(st.st_mode);
        if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : loc, dir ? loc : NULL) != 1)
            return kc_ssl_fail(c, KCONN__CA_LOCATION, loc, err);
    }
    if (c->_slot[KCONN__CA_PEM]) {
        BIO *b = BIO_new_mem_buf(c->_slot[KCONN__CA_PEM], -1);
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509 *x;
        int n = 0;
        while (b && (x = PEM_read_bio_X509(b, NULL, kc_pem_password, NULL))) {
            int ok = X509_STORE_add_cert(store, x);
            X509_free(x);
            if (!ok) {
                BIO_free(b);
                return kc_ssl_fail(c, KCONN__CA_PEM, "cannot add a certificate", err);
            }
            n++;
        }
        BIO_free(b);
        ERR_clear_error(); /* the read after the last certificate fails: that is the end */
        if (!n)
            return ferr_set(err, FERR_INVALID, "%s: no certificate in PEM format", c->_slot_key[KCONN__CA_PEM]);
    }
    /* no CA given (or "probe"): OpenSSL's default paths, as librdkafka with a shared OpenSSL */
    if ((!loc || !strcmp(loc, "probe")) && !c->_slot[KCONN__CA_PEM] && SSL_CTX_set_default_verify_paths(ctx) != 1)
        ERR_clear_error();
    if (c->_slot[KCONN__CRL_LOCATION]) {
        if (SSL_CTX_load_verify_locations(ctx, c->_slot[KCONN__CRL_LOCATION], NULL) != 1)
            return kc_ssl_fail(c, KCONN__CRL_LOCATION, c->_slot[KCONN__CRL_LOCATION], err);
        X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_CRL_CHECK);
    }
    return FERR_OK;
}

/* ssl.certificate.location / .pem (the first certificate is ours, the rest its chain) and
 * ssl.key.location / .pem with ssl.key.password. */
static ferr_code_t kc_load_identity(kconn_conf_t *c, SSL_CTX *ctx, ferr_t *err)
{
    int cs = c->_slot[KCONN__CERT_LOCATION] ? KCONN__CERT_LOCATION : KCONN__CERT_PEM;
    int ks = c->_slot[KCONN__KEY_LOCATION] ? KCONN__KEY_LOCATION : KCONN__KEY_PEM;
    if (c->_slot[cs]) {
        BIO *b = kc_pem_bio(c, KCONN__CERT_LOCATION, KCONN__CERT_PEM);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, kc_pem_password, NULL) : NULL;
        int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
        X509_free(x);
        while (ok && (x = PEM_read_bio_X509(b, NULL, kc_pem_password, NULL)))
            if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
                X509_free(x);
                ok = 0;
            }
        BIO_free(b);
        if (!ok)
            return kc_ssl_fail(c, cs, "cannot read the certificate", err);
        ERR_clear_error();
    }
    if (c->_slot[ks]) {
        BIO *b = kc_pem_bio(c, KCONN__KEY_LOCATION, KCONN__KEY_PEM);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, kc_pem_password, c->_slot[KCONN__KEY_PASSWORD]) : NULL;
        BIO_free(b);
        if (!k)
            return kc_ssl_fail(c, ks, "cannot read the private key (is ssl.key.password right?)", err);
        int ok = SSL_CTX_use_PrivateKey(ctx, k) == 1 && (!c->_slot[cs] || SSL_CTX_check_private_key(ctx) == 1);
        EVP_PKEY_free(k);
        if (!ok)
            return kc_ssl_fail(c, ks, "the key does not match the certificate", err);
    }
    return FERR_OK;
}

static ferr_code_t kc_build_ssl_ctx(kconn_conf_t *c, ferr_t *err)
{
    const char *refused = c->_slot_key[KCONN__TLS_REFUSED];
    if (c->_slot[KCONN__TLS_REFUSED])
        return ferr_set(err, FERR_UNSUPPORTED, "%s: not supported by ferry's own Kafka connections%s", refused,
                        strstr(refused, "keystore") ? " (give the client certificate and key in PEM: "
                                                      "ssl.certificate.*, ssl.key.*)"
                                                    : "");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        char r[256];
        return ferr_set(err, FERR_INTERNAL, "SSL_CTX_new: %s", kc_ssl_reason(r, sizeof r));
    }
    c->_ssl_ctx = ctx;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, c->verify_certificate ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    ferr_code_t rc = kc_load_ca(c, ctx, err);
    if (!rc)
        rc = kc_load_identity(c, ctx, err);
    if (!rc && c->_slot[KCONN__CIPHERS] && SSL_CTX_set_cipher_list(ctx, c->_slot[KCONN__CIPHERS]) != 1)
        rc = kc_ssl_fail(c, KCONN__CIPHERS, c->_slot[KCONN__CIPHERS], err);
    if (!rc && c->_slot[KCONN__CURVES] && SSL_CTX_set1_curves_list(ctx, c->_slot[KCONN__CURVES]) != 1)
        rc = kc_ssl_fail(c, KCONN__CURVES, c->_slot[KCONN__CURVES], err);
    if (!rc && c->_slot[KCONN__SIGALGS] && SSL_CTX_set1_sigalgs_list(ctx, c->_slot[KCONN__SIGALGS]) != 1)
        rc = kc_ssl_fail(c, KCONN__SIGALGS, c->_slot[KCONN__SIGALGS], err);
    return rc;
}

ferr_code_t kconn_conf_finish(kconn_conf_t *c, ferr_t *err)
{
    if (c->_finished)
        return FERR_OK;
    ferr_code_t rc = FERR_OK;
    c->mechanism = KCONN_MECH_NONE;
    if (kc_sasl(c->security))
        rc = kc_mechanism(c, err);
    if (!rc && kc_tls(c->security))
        rc = kc_build_ssl_ctx(c, err);
    /* the materials are in the SSL_CTX now (or not needed): do not keep secrets around */
    for (int i = 0; i < KCONN__NSLOTS; i++)
        kc_free_secret(&c->_slot[i]);
    c->_finished = rc == FERR_OK;
    return rc;
}

ferr_code_t kconn_conf_from(const props_t *common, const props_t *layer, const char *layer_origin,
                            const json_t *config, const char *const *prefixes, kconn_conf_t *out, ferr_t *err)
{
    kconn_conf_init(out);
    ferr_code_t rc = kconn_conf_apply(out, common, "", err);
    if (!rc)
        rc = kconn_conf_apply(out, layer, layer_origin, err);
    for (size_t i = 0; !rc && config && prefixes && prefixes[i]; i++)
        rc = kconn_conf_apply_prefixed(out, config, prefixes[i], err);
    if (!rc)
        rc = kconn_conf_finish(out, err);
    if (rc)
        kconn_conf_dispose(out);
    return rc;
}

/* ---- the connection ---- */

typedef struct kc_pending_req {
    int32_t corr;
    int16_t api_key, version;
} kc_pending_req_t;

struct kconn {
    int fd;
    SSL *ssl;
    char peer[300];
    char *client_id;
    size_t max_response;
    int32_t next_corr;
    kc_pending_req_t *q; /* ring of requests in flight */
    size_t q_cap, q_head, q_n;
    uint8_t *rbuf;
    size_t rlen, rcap, rdone;
    kwire_wr_t w; /* kconn's own requests (handshake, metadata) */
    kwire_apiversions_resp_t av;
    int64_t session_end_ms;
    ferr_t fail; /* code != FERR_OK: broken */
};

/* A deadline and the timeout it came from (for messages); at < 0: none. */
typedef struct kc_dl {
    int64_t at;
    int ms;
} kc_dl_t;

static kc_dl_t kc_deadline(int timeout_ms)
{
    return (kc_dl_t){timeout_ms < 0 ? -1 : kutil_now_ms() + timeout_ms, timeout_ms};
}

/* Marks @p c broken with "peer: message" and returns @p code (FERR_KAFKA, or FERR_TIMEOUT for
 * a deadline); later calls return FERR_KAFKA with the same message. */
__attribute__((format(printf, 4, 5))) static ferr_code_t kc_break(kconn_t *c, ferr_t *err, ferr_code_t code,
                                                                   const char *fmt, ...)
{
    if (!c->fail.code) {
        va_list ap;
        size_t n = (size_t)snprintf(c->fail.msg, sizeof c->fail.msg, "%s: ", c->peer); /* peer < msg */
        va_start(ap, fmt);
        vsnprintf(c->fail.msg + n, sizeof c->fail.msg - n, fmt, ap);
        va_end(ap);
        c->fail.code = FERR_KAFKA;
    } else {
        code = FERR_KAFKA;
    }
    return ferr_set(err, code, "%s", c->fail.msg);
}

static ferr_code_t kc_failed(const kconn_t *c, ferr_t *err) { return ferr_set(err, FERR_KAFKA, "%s", c->fail.msg); }

/* Waits until the socket is ready for @p events. @returns FERR_OK (also for errors and hang-ups:
 * the next read or write reports them), FERR_TIMEOUT (without a message; @p c not broken),
 * FERR_KAFKA if poll() fails. */
static ferr_code_t kc_wait(kconn_t *c, short events, kc_dl_t dl, ferr_t *err)
{
    for (;;) {
        int ms = -1;
        if (dl.at >= 0) {
            int64_t left = dl.at - kutil_now_ms();
            if (left <= 0)
                return FERR_TIMEOUT;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return FERR_OK;
        if (r < 0 && errno != EINTR)
            return kc_break(c, err, FERR_KAFKA, "poll: %s", strerror(errno));
    }
}

/* ---- I/O: plain socket or TLS; > 0 bytes moved, 0 would block (*want says for what), < 0 broken ---- */

static int kc_bio_write(BIO *b, const char *buf, int n)
{
    kconn_t *c = BIO_get_data(b);
    ssize_t k;
    do
        k = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    BIO_clear_retry_flags(b);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)k;
}

static int kc_bio_read(BIO *b, char *buf, int n)
{
    kconn_t *c = BIO_get_data(b);
    ssize_t k;
    do
        k = recv(c->fd, buf, (size_t)n, 0);
    while (k < 0 && errno == EINTR);
    BIO_clear_retry_flags(b);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)k;
}

static long kc_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *kc_bio_method_v;

static void kc_bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kconn socket");
    if (m && BIO_meth_set_write(m, kc_bio_write) && BIO_meth_set_read(m, kc_bio_read) &&
        BIO_meth_set_ctrl(m, kc_bio_ctrl))
        kc_bio_method_v = m; /* made once, kept for the life of the process */
    else
        BIO_meth_free(m);
}

/* OpenSSL's verdict on a failed TLS operation, as text. */
static const char *kc_tls_error(kconn_t *c, int r, char *buf, size_t n)
{
    int e = SSL_get_error(c->ssl, r);
    long v = SSL_get_verify_result(c->ssl);
    if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        ERR_clear_error();
        snprintf(buf, n, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
        ERR_clear_error();
        snprintf(buf, n, "connection closed by the broker");
    } else if (e == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        snprintf(buf, n, "%s", strerror(errno));
    } else {
        kc_ssl_reason(buf, n);
    }
    return buf;
}

static ssize_t kc_tls_io(kconn_t *c, void *buf, size_t n, bool wr, short *want, ferr_t *err)
{
    int len = n > INT_MAX ? INT_MAX : (int)n;
    ERR_clear_error();
    errno = 0;
    int r = wr ? SSL_write(c->ssl, buf, len) : SSL_read(c->ssl, buf, len);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    char m[256];
    kc_break(c, err, FERR_KAFKA, "TLS %s: %s", wr ? "write" : "read", kc_tls_error(c, r, m, sizeof m));
    return -1;
}

static ssize_t kc_io(kconn_t *c, void *buf, size_t n, bool wr, short *want, ferr_t *err)
{
    if (c->ssl)
        return kc_tls_io(c, buf, n, wr, want, err);
    for (;;) {
        ssize_t k = wr ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
        if (k > 0)
            return k;
        if (k == 0) { /* recv only: send of n > 0 bytes never returns 0 */
            kc_break(c, err, FERR_KAFKA, "connection closed by the broker");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = wr ? POLLOUT : POLLIN;
            return 0;
        }
        kc_break(c, err, FERR_KAFKA, "%s: %s", wr ? "send" : "recv", strerror(errno));
        return -1;
    }
}

static ferr_code_t kc_write_all(kconn_t *c, const uint8_t *p, size_t n, kc_dl_t dl, ferr_t *err)
{
    while (n) {
        short want = POLLOUT;
        ssize_t k = kc_io(c, (void *)p, n, true, &want, err);
        if (k < 0)
            return FERR_KAFKA;
        p += k;
        n -= (size_t)k;
        ferr_code_t rc = k ? FERR_OK : kc_wait(c, want, dl, err);
        if (rc == FERR_TIMEOUT)
            return kc_break(c, err, FERR_TIMEOUT, "sending a request timed out after %d ms", dl.ms);
        if (rc)
            return rc;
    }
    return FERR_OK;
}

/* ---- requests and responses ---- */

static void kc_push(kconn_t *c, kc_pending_req_t p)
{
    if (c->q_n == c->q_cap) {
        size_t cap = c->q_cap ? 2 * c->q_cap : 16;
        kc_pending_req_t *q = malloc(cap * sizeof *q);
        if (!q)
            abort();
        for (size_t i = 0; i < c->q_n; i++)
            q[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = q;
        c->q_cap = cap;
        c->q_head = 0;
    }
    c->q[(c->q_head + c->q_n++) % c->q_cap] = p;
}

/* Checks one request frame at @p p (@p n bytes from there on): @returns its length, or 0 with
 * @p err set (FERR_INVALID). */
static size_t kc_check_frame(const kconn_t *c, const uint8_t *p, size_t n, kc_pending_req_t *out, ferr_t *err)
{
    size_t fl, hl;
    if (kwire_frame_len(p, n, INT32_MAX, &fl, err) || fl == 0 || fl > n ||
        kwire_req_hdr_read(p + 4, fl - 4, &out->api_key, &out->version, &out->corr, &hl, err)) {
        ferr_set(err, FERR_INVALID, "%s: not a complete request frame", c->peer);
        return 0;
    }
    if (out->api_key == KWIRE_API_PRODUCE) {
        kwire_rd_t r;
        const char *txid;
        kwire_rd_init(&r, p + 4 + hl, fl - 4 - hl);
        kwire_rd_str(&r, "transactional_id", true, &txid);
        if (kwire_rd_i16(&r, "acks") == 0 && kwire_rd_ok(&r)) {
            ferr_set(err, FERR_INVALID, "%s: a Produce with acks=0 gets no response; send acks -1 or 1", c->peer);
            return 0;
        }
    }
    return fl;
}

static ferr_code_t kc_send(kconn_t *c, const kwire_wr_t *w, kc_dl_t dl, int32_t *corr_out, ferr_t *err)
{
    if (c->fail.code)
        return kc_failed(c, err);
    if (w->failed || !w->len)
        return ferr_set(err, FERR_INVALID, "%s: no request to send (the writer failed or is empty)", c->peer);
    size_t q_n = c->q_n;
    kc_pending_req_t p = {0};
    for (size_t off = 0, fl; off < w->len; off += fl) {
        if (!(fl = kc_check_frame(c, w->buf + off, w->len - off, &p, err))) {
            c->q_n = q_n; /* nothing was sent: forget the frames queued so far */
            return FERR_INVALID;
        }
        kc_push(c, p);
    }
    if (corr_out)
        *corr_out = p.corr;
    return kc_write_all(c, w->buf, w->len, dl, err);
}

/* Makes room for @p need bytes in the receive buffer, and at least KC_READ_CHUNK free. */
static void kc_reserve(kconn_t *c, size_t need)
{
    if (need < c->rlen + KC_READ_CHUNK)
        need = c->rlen + KC_READ_CHUNK;
    if (need <= c->rcap)
        return;
    size_t cap = c->rcap * 2 > need ? c->rcap * 2 : need;
    uint8_t *b = realloc(c->rbuf, cap);
    if (!b)
        abort();
    c->rbuf = b;
    c->rcap = cap;
}

static ferr_code_t kc_deliver(kconn_t *c, size_t fl, const uint8_t **body, size_t *len, int32_t *corr, ferr_t *err)
{
    int32_t got;
    ferr_t e;
    const kc_pending_req_t *p = &c->q[c->q_head];
    if (kwire_resp_hdr_read(c->rbuf + 4, fl - 4, &got, &e))
        return kc_break(c, err, FERR_KAFKA, "%s", e.msg);
    if (got != p->corr)
        return kc_break(c, err, FERR_KAFKA, "response with correlation id %d where %d (%s v%d) was due", got, p->corr,
                        kwire_api_name(p->api_key), p->version);
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_n--;
    c->rdone = fl;
    *body = c->rbuf + 4 + KWIRE_RESP_HDR_LEN;
    *len = fl - 4 - KWIRE_RESP_HDR_LEN;
    if (corr)
        *corr = got;
    return FERR_OK;
}

static ferr_code_t kc_recv(kconn_t *c, kc_dl_t dl, const uint8_t **body, size_t *len, int32_t *corr, ferr_t *err)
{
    if (c->fail.code)
        return kc_failed(c, err);
    if (!c->q_n)
        return ferr_set(err, FERR_INVALID, "%s: no request in flight", c->peer);
    if (c->rdone) { /* drop the frame returned last */
        memmove(c->rbuf, c->rbuf + c->rdone, c->rlen - c->rdone);
        c->rlen -= c->rdone;
        c->rdone = 0;
    }
    for (;;) {
        size_t fl;
        ferr_t e;
        if (kwire_frame_len(c->rbuf, c->rlen, c->max_response, &fl, &e))
            return kc_break(c, err, FERR_KAFKA, "response frame: %s (receive.message.max.bytes)", e.msg);
        if (fl && c->rlen >= fl)
            return kc_deliver(c, fl, body, len, corr, err);
        kc_reserve(c, fl);
        short want = POLLIN;
        ssize_t k = kc_io(c, c->rbuf + c->rlen, c->rcap - c->rlen, false, &want, err);
        if (k < 0)
            return FERR_KAFKA;
        c->rlen += (size_t)k;
        ferr_code_t rc = k ? FERR_OK : kc_wait(c, want, dl, err);
        if (rc == FERR_TIMEOUT)
            return ferr_set(err, FERR_TIMEOUT, "%s: no response to %s within %d ms", c->peer,
                            kwire_api_name(c->q[c->q_head].api_key), dl.ms);
        if (rc)
            return rc;
    }
}

static ferr_code_t kc_call(kconn_t *c, const kwire_wr_t *w, kc_dl_t dl, const uint8_t **body, size_t *len,
                           ferr_t *err)
{
    ferr_t e = {0};
    if (c->fail.code)
        return kc_failed(c, err);
    if (c->q_n)
        return ferr_set(err, FERR_INVALID, "%s: a blocking call with %zu requests in flight", c->peer, c->q_n);
    ferr_code_t rc = kc_send(c, w, dl, NULL, &e);
    if (!rc)
        rc = kc_recv(c, dl, body, len, NULL, &e);
    if (rc == FERR_TIMEOUT && !c->fail.code) { /* its answer is still due: the connection is done */
        c->fail.code = FERR_KAFKA;
        snprintf(c->fail.msg, sizeof c->fail.msg, "%s", e.msg);
    }
    return rc ? ferr_set(err, rc, "%s", e.msg) : FERR_OK;
}

kwire_req_hdr_t kconn_hdr(kconn_t *c, int16_t version)
{
    int32_t corr = c->next_corr;
    c->next_corr = c->next_corr == INT32_MAX ? 1 : c->next_corr + 1;
    return (kwire_req_hdr_t){version, corr, c->client_id};
}

ferr_code_t kconn_send(kconn_t *c, const kwire_wr_t *w, int timeout_ms, int32_t *corr_out, ferr_t *err)
{
    return kc_send(c, w, kc_deadline(timeout_ms), corr_out, err);
}

ferr_code_t kconn_recv(kconn_t *c, int timeout_ms, const uint8_t **body, size_t *len, int32_t *corr, ferr_t *err)
{
    return kc_recv(c, kc_deadline(timeout_ms), body, len, corr, err);
}

ferr_code_t kconn_call(kconn_t *c, const kwire_wr_t *w, int timeout_ms, const uint8_t **body, size_t *len,
                       ferr_t *err)
{
    return kc_call(c, w, kc_deadline(timeout_ms), body, len, err);
}

/* ---- opening: TCP, TLS, ApiVersions, SASL ---- */

static void kc_sockopts(int fd, const kconn_conf_t *conf)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (conf->keepalive)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (conf->send_buffer > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &conf->send_buffer, sizeof conf->send_buffer);
    if (conf->receive_buffer > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &conf->receive_buffer, sizeof conf->receive_buffer);
}

/* One address: @returns FERR_OK connected, FERR_TIMEOUT, or FERR_KAFKA with the reason in @p why. */
static ferr_code_t kc_connect_one(kconn_t *c, const kconn_conf_t *conf, const struct addrinfo *ai, kc_dl_t dl,
                                  char *why, size_t n)
{
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(why, n, "socket: %s", strerror(errno));
        return FERR_KAFKA;
    }
    kc_sockopts(c->fd, conf);
    int r = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && (errno == EINPROGRESS || errno == EINTR)) {
        ferr_code_t rc = kc_wait(c, POLLOUT, dl, NULL);
        if (rc)
            return rc; /* FERR_TIMEOUT, or poll() failed: @p c is broken, with the reason */
        int so = 0;
        socklen_t sl = sizeof so;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &sl);
        errno = so;
        r = so ? -1 : 0;
    }
    if (r == 0)
        return FERR_OK;
    snprintf(why, n, "connect: %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    return FERR_KAFKA;
}

static ferr_code_t kc_connect(kconn_t *c, const kconn_conf_t *conf, const char *host, int port, kc_dl_t dl,
                              ferr_t *err)
{
    struct addrinfo hints = {.ai_family = conf->address_family, .ai_socktype = SOCK_STREAM}, *ais;
    char ps[16], why[512] = "no address";
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host, ps, &hints, &ais);
    if (g)
        return kc_break(c, err, FERR_KAFKA, "cannot resolve %s: %s", host, gai_strerror(g));
    ferr_code_t rc = FERR_KAFKA;
    for (struct addrinfo *ai = ais; ai && rc == FERR_KAFKA && !c->fail.code; ai = ai->ai_next)
        rc = kc_connect_one(c, conf, ai, dl, why, sizeof why);
    freeaddrinfo(ais);
    if (rc == FERR_TIMEOUT)
        return kc_break(c, err, FERR_TIMEOUT, "TCP connect timed out after %d ms", dl.ms);
    return rc ? kc_break(c, err, FERR_KAFKA, "%s", why) : FERR_OK;
}

static bool kc_is_ip(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static ferr_code_t kc_tls_handshake(kconn_t *c, const kconn_conf_t *conf, const char *host, kc_dl_t dl,
                                    ferr_t *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char m[256];
    pthread_once(&once, kc_bio_method_init);
    BIO *b = kc_bio_method_v ? BIO_new(kc_bio_method_v) : NULL;
    c->ssl = b ? SSL_new(conf->_ssl_ctx) : NULL;
    if (!c->ssl) {
        BIO_free(b);
        return kc_break(c, err, FERR_KAFKA, "TLS setup: %s", kc_ssl_reason(m, sizeof m));
    }
    BIO_set_data(b, c);
    BIO_set_init(b, 1);
    SSL_set_bio(c->ssl, b, b);
    bool ip = kc_is_ip(host);
    int ok = ip || SSL_set_tlsext_host_name(c->ssl, host); /* SNI for names, as librdkafka */
    if (ok && conf->verify_hostname)
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) : SSL_set1_host(c->ssl, host);
    if (!ok)
        return kc_break(c, err, FERR_KAFKA, "TLS setup for %s: %s", host, kc_ssl_reason(m, sizeof m));
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return FERR_OK;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return kc_break(c, err, FERR_KAFKA, "TLS handshake failed: %s", kc_tls_error(c, r, m, sizeof m));
        ferr_code_t rc = kc_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, dl, err);
        if (rc == FERR_TIMEOUT)
            return kc_break(c, err, FERR_TIMEOUT, "TLS handshake timed out after %d ms", dl.ms);
        if (rc)
            return rc;
    }
}

/* ApiVersions at the highest version kwire speaks; a broker that does not know it answers
 * UNSUPPORTED_VERSION with its own range, and we ask again within that (KIP-511). */
static ferr_code_t kc_apiversions(kconn_t *c, kc_dl_t dl, ferr_t *err)
{
    int16_t v = 2;
    for (;;) {
        const uint8_t *body;
        size_t len;
        ferr_t e;
        kwire_wr_reset(&c->w);
        kwire_req_hdr_t h = kconn_hdr(c, v);
        ferr_code_t rc = kwire_apiversions_req_write(&c->w, &h, err);
        if (!rc)
            rc = kc_call(c, &c->w, dl, &body, &len, err);
        if (rc)
            return rc;
        if (kwire_apiversions_resp_decode(body, len, v, &c->av, &e))
            return kc_break(c, err, FERR_KAFKA, "ApiVersions v%d: %s", v, e.msg);
        int16_t code = c->av.error_code, bmin, bmax, next = -1;
        if (!code)
            return FERR_OK;
        if (code == KC_KAFKA_UNSUPPORTED_VERSION && v > 0)
            next = kwire_apiversions_find(&c->av, KWIRE_API_API_VERSIONS, &bmin, &bmax)
                       ? kwire_pick_version(0, (int16_t)(v - 1), bmin, bmax)
                       : 0;
        kwire_apiversions_resp_dispose(&c->av);
        if (next < 0 || code != KC_KAFKA_UNSUPPORTED_VERSION)
            return kc_break(c, err, FERR_KAFKA, "ApiVersions v%d refused: %s", v, kwire_error_name(code));
        v = next;
    }
}

/* One SaslAuthenticate round: @p out holds the broker's answer (dispose it) on FERR_OK. */
static ferr_code_t kc_sasl_round(kconn_t *c, int16_t v, const void *msg, size_t n, kc_dl_t dl,
                                 kwire_saslauth_resp_t *out, ferr_t *err)
{
    const uint8_t *body;
    size_t len;
    ferr_t e;
    kwire_saslauth_req_t req = {msg, n};
    kwire_wr_reset(&c->w);
    kwire_req_hdr_t h = kconn_hdr(c, v);
    ferr_code_t rc = kwire_saslauth_req_write(&c->w, &h, &req, err);
    if (!rc)
        rc = kc_call(c, &c->w, dl, &body, &len, err);
    if (rc)
        return rc;
    if (kwire_saslauth_resp_decode(body, len, v, out, &e))
        return kc_break(c, err, FERR_KAFKA, "SaslAuthenticate v%d: %s", v, e.msg);
    if (out->error_code) {
        rc = kc_break(c, err, FERR_UNAUTHORIZED, "SASL authentication failed: %s%s%s", kwire_error_name(out->error_code),
                      out->error_message ? ": " : "", out->error_message ? out->error_message : "");
        kwire_saslauth_resp_dispose(out);
        return rc;
    }
    if (out->session_lifetime_ms > 0)
        c->session_end_ms = kutil_now_ms() + out->session_lifetime_ms;
    return FERR_OK;
}

static ferr_code_t kc_sasl_handshake(kconn_t *c, const char *mech, kc_dl_t dl, ferr_t *err)
{
    const uint8_t *body;
    size_t len;
    ferr_t e;
    kwire_saslhandshake_resp_t hs;
    if (kconn_version(c, KWIRE_API_SASL_HANDSHAKE, 1, 1) < 0)
        return kc_break(c, err, FERR_UNSUPPORTED, "the broker does not offer SaslHandshake v1");
    kwire_saslhandshake_req_t req = {mech};
    kwire_wr_reset(&c->w);
    kwire_req_hdr_t h = kconn_hdr(c, 1);
    ferr_code_t rc = kwire_saslhandshake_req_write(&c->w, &h, &req, err);
    if (!rc)
        rc = kc_call(c, &c->w, dl, &body, &len, err);
    if (rc)
        return rc;
    if (kwire_saslhandshake_resp_decode(body, len, 1, &hs, &e))
        return kc_break(c, err, FERR_KAFKA, "SaslHandshake v1: %s", e.msg);
    if (hs.error_code) {
        char offered[256] = "";
        for (int32_t i = 0; i < hs.n_mechanisms; i++)
            snprintf(offered + strlen(offered), sizeof offered - strlen(offered), "%s%s", i ? ", " : "",
                     hs.mechanisms[i].name);
        rc = kc_break(c, err, hs.error_code == KC_KAFKA_UNSUPPORTED_SASL_MECHANISM ? FERR_UNAUTHORIZED : FERR_KAFKA,
                      "SaslHandshake %s refused: %s (the broker offers: %s)", mech, kwire_error_name(hs.error_code),
                      offered);
    }
    kwire_saslhandshake_resp_dispose(&hs);
    return rc;
}

/* SCRAM (RFC 5802) through ksasl: client-first -> server-first, client-final -> server-final. */
static ferr_code_t kc_scram(kconn_t *c, const kconn_conf_t *conf, int16_t v, kc_dl_t dl, ferr_t *err)
{
    char nonce[40];
    size_t n;
    const char *msg;
    ferr_t e;
    kwire_saslauth_resp_t r;
    ksasl_mech_t m = conf->mechanism == KCONN_MECH_SCRAM_SHA_512 ? KSASL_SCRAM_SHA_512 : KSASL_SCRAM_SHA_256;
    ksasl_scram_t *s = NULL;
    ferr_code_t rc = ksasl_scram_nonce(nonce, sizeof nonce, &e);
    if (!rc && !(s = ksasl_scram_new(m, conf->username, conf->password, nonce, &e)))
        rc = e.code;
    if (rc)
        return kc_break(c, err, rc, "SCRAM: %s", e.msg);
    msg = ksasl_scram_client_first(s, &n);
    if (!(rc = kc_sasl_round(c, v, msg, n, dl, &r, err))) {
        if ((rc = ksasl_scram_client_final(s, r.auth_bytes, r.auth_bytes_len, &msg, &n, &e)))
            kc_break(c, err, rc, "%s (the broker's server-first message)", e.msg);
        kwire_saslauth_resp_dispose(&r);
    }
    if (!rc && !(rc = kc_sasl_round(c, v, msg, n, dl, &r, err))) {
        if ((rc = ksasl_scram_verify(s, r.auth_bytes, r.auth_bytes_len, &e)))
            kc_break(c, err, rc, "%s (the broker's server-final message)", e.msg);
        kwire_saslauth_resp_dispose(&r);
    }
    ksasl_scram_destroy(s);
    return rc;
}

static ferr_code_t kc_authenticate(kconn_t *c, const kconn_conf_t *conf, kc_dl_t dl, ferr_t *err)
{
    static const char *const names[] = {"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    int16_t v = kconn_version(c, KWIRE_API_SASL_AUTHENTICATE, 0, 1);
    if (v < 0)
        return kc_break(c, err, FERR_UNSUPPORTED, "the broker does not offer SaslAuthenticate v0 or v1");
    ferr_code_t rc = kc_sasl_handshake(c, names[conf->mechanism], dl, err);
    if (rc || conf->mechanism != KCONN_MECH_PLAIN)
        return rc ? rc : kc_scram(c, conf, v, dl, err);
    char *msg;
    size_t n;
    ferr_t e;
    kwire_saslauth_resp_t r;
    if ((rc = ksasl_plain(conf->username, conf->password, &msg, &n, &e)))
        return kc_break(c, err, rc, "PLAIN: %s", e.msg);
    rc = kc_sasl_round(c, v, msg, n, dl, &r, err);
    OPENSSL_cleanse(msg, n);
    free(msg);
    if (!rc)
        kwire_saslauth_resp_dispose(&r);
    return rc;
}

static kconn_t *kc_new(const kconn_conf_t *conf, const char *host, int port, ferr_t *err)
{
    if (!conf->_finished) {
        ferr_set(err, FERR_INVALID, "kconn_open: the configuration is not finished (kconn_conf_finish)");
        return NULL;
    }
    kconn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->fd = -1;
    c->next_corr = 1;
    c->max_response = conf->max_response;
    c->client_id = kc_strdup(conf->client_id ? conf->client_id : "rdkafka");
    snprintf(c->peer, sizeof c->peer, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    kwire_wr_init(&c->w);
    return c;
}

/* TLS, ApiVersions and SASL on a connected socket; destroys @p c on failure. */
static kconn_t *kc_ready(kconn_t *c, const kconn_conf_t *conf, const char *host, kc_dl_t dl, ferr_code_t rc,
                         ferr_t *err)
{
    if (!rc && kc_tls(conf->security))
        rc = kc_tls_handshake(c, conf, host, dl, err);
    if (!rc)
        rc = kc_apiversions(c, dl, err);
    if (!rc && kc_sasl(conf->security))
        rc = kc_authenticate(c, conf, dl, err);
    if (rc) {
        kconn_destroy(c);
        return NULL;
    }
    kwire_wr_reset(&c->w);
    return c;
}

static kc_dl_t kc_open_deadline(const kconn_conf_t *conf, int timeout_ms)
{
    return kc_deadline(timeout_ms > 0 ? timeout_ms : conf->connect_timeout_ms);
}

kconn_t *kconn_open(const kconn_conf_t *conf, const char *host, int port, int timeout_ms, ferr_t *err)
{
    kconn_t *c = kc_new(conf, host, port, err);
    kc_dl_t dl = kc_open_deadline(conf, timeout_ms);
    return c ? kc_ready(c, conf, host, dl, kc_connect(c, conf, host, port, dl, err), err) : NULL;
}

kconn_t *kconn_open_fd(const kconn_conf_t *conf, int fd, const char *host, int port, int timeout_ms, ferr_t *err)
{
    kconn_t *c = kc_new(conf, host, port, err);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    int fl = fcntl(fd, F_GETFL);
    ferr_code_t rc = FERR_OK;
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        rc = kc_break(c, err, FERR_KAFKA, "fcntl: %s", strerror(errno));
    kc_sockopts(fd, conf);
    return kc_ready(c, conf, host, kc_open_deadline(conf, timeout_ms), rc, err);
}

/* ---- the rest of the API ---- */

int16_t kconn_version(const kconn_t *c, int16_t api_key, int16_t ours_min, int16_t ours_max)
{
    int16_t bmin, bmax;
    if (!kwire_apiversions_find(&c->av, api_key, &bmin, &bmax))
        return -1;
    return kwire_pick_version(ours_min, ours_max, bmin, bmax);
}

const kwire_apiversions_resp_t *kconn_apiversions(const kconn_t *c) { return &c->av; }

ferr_code_t kconn_metadata(kconn_t *c, const char *const *topics, int n, kwire_metadata_resp_t *out, int timeout_ms,
                           ferr_t *err)
{
    memset(out, 0, sizeof *out);
    int16_t v = kwire_negotiate(&c->av, KWIRE_API_METADATA);
    if (v < 0)
        return ferr_set(err, FERR_UNSUPPORTED, "%s: no Metadata version both kwire and the broker speak", c->peer);
    kwire_metadata_req_topic_t *t = n > 0 ? calloc((size_t)n, sizeof *t) : NULL;
    if (n > 0 && !t)
        abort();
    for (int i = 0; i < n; i++)
        t[i].name = topics[i];
    kwire_metadata_req_t req = {t, n < 0 ? -1 : n, false};
    kwire_wr_reset(&c->w);
    kwire_req_hdr_t h = kconn_hdr(c, v);
    const uint8_t *body;
    size_t len;
    ferr_t e;
    ferr_code_t rc = kwire_metadata_req_write(&c->w, &h, &req, err);
    free(t);
    if (!rc)
        rc = kconn_call(c, &c->w, timeout_ms, &body, &len, err);
    if (!rc && kwire_metadata_resp_decode(body, len, v, out, &e))
        rc = kc_break(c, err, FERR_KAFKA, "Metadata v%d: %s", v, e.msg);
    return rc;
}

int kconn_fd(const kconn_t *c) { return c->fd; }

bool kconn_pending(const kconn_t *c)
{
    size_t fl = 0, left = c->rlen - c->rdone;
    if (c->fail.code || !c->rbuf)
        return false;
    if (kwire_frame_len(c->rbuf + c->rdone, left, c->max_response, &fl, NULL) == FERR_OK && fl && left >= fl)
        return true;
    return c->ssl && SSL_pending(c->ssl) > 0;
}

size_t kconn_inflight(const kconn_t *c) { return c->q_n; }
bool kconn_ok(const kconn_t *c) { return c->fail.code == FERR_OK; }
const char *kconn_peer(const kconn_t *c) { return c->peer; }
int64_t kconn_session_end_ms(const kconn_t *c) { return c->session_end_ms; }

void kconn_close(kconn_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: brokers do not wait for one */
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (!c->fail.code) {
        c->fail.code = FERR_KAFKA;
        snprintf(c->fail.msg, sizeof c->fail.msg, "%s: closed", c->peer);
    }
}

void kconn_destroy(kconn_t *c)
{
    if (!c)
        return;
    kconn_close(c);
    kwire_apiversions_resp_dispose(&c->av);
    kwire_wr_dispose(&c->w);
    free(c->q);
    free(c->rbuf);
    free(c->client_id);
    free(c);
}
