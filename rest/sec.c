/* sec: TLS and basic authentication for the REST API. See sec.h.
 *
 * PEM material is kept as text: the server context is built from it once, and the
 * forwarding client hands the same text to curl, so a file is read exactly once and both
 * sides agree on what it held. Credentials are kept as SHA-256 digests of "user:password"
 * next to the user name; only the internal credential is kept as a header value. */
#include "rest/sec.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/props.h"

#define HTTPS_PREFIX "listeners.https."
#define MAX_PEM (1024 * 1024)

typedef struct sec_user {
    char *name;
    unsigned char digest[SHA256_DIGEST_LENGTH]; /* of "name:password" */
} sec_user_t;

struct sec {
    SSL_CTX *server;
    fwd_tls_t client;
    char *ca_pem, *cert_pem, *key_pem, *key_password; /* owned; client points into them */
    sec_user_t *users;
    size_t nusers;
    char *internal_auth; /* "Basic ..." */
};

/* ---- reading keys ---- */

/* The TLS keys in use: the listeners.https.-prefixed set if any key has that prefix. */
typedef struct tls_keys {
    const props_t *all;
    const char *prefix; /* "" or HTTPS_PREFIX */
    char name[128];     /* the last full key name asked for, for messages */
} tls_keys_t;

static const char *tls_get(tls_keys_t *k, const char *key)
{
    snprintf(k->name, sizeof k->name, "%s%s", k->prefix, key);
    const char *v = props_get(k->all, k->name);
    return v && *v ? v : NULL;
}

static void tls_keys_init(tls_keys_t *k, const props_t *all)
{
    k->all = all;
    k->prefix = "";
    for (size_t i = 0; i < props_count(all); i++)
        if (!strncmp(props_key(all, i), HTTPS_PREFIX "ssl.", strlen(HTTPS_PREFIX "ssl.")))
            k->prefix = HTTPS_PREFIX;
}

static ferr_code_t bad(ferr_t *err, const char *key, const char *value, const char *why)
{
    return ferr_set(err, FERR_INVALID, "Invalid value %s for configuration %s: %s",
                    value ? value : "null", key, why);
}

/* Reads a whole (small) file into a NUL-terminated string. */
static char *read_text(const char *path, char *why, size_t wlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, wlen, "cannot read: %s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_PEM + 1);
    size_t n = fread(buf, 1, MAX_PEM + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n > MAX_PEM) {
        snprintf(why, wlen, rerr ? "cannot read the file" : "file larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* The last OpenSSL error as text, emptying the error queue. */
static const char *ssl_why(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "no PEM data found");
    ERR_clear_error();
    return buf;
}

/* ssl.<store>.type must be PEM; unset counts as PEM when the text looks like PEM. */
static ferr_code_t check_type(tls_keys_t *k, const char *store, const char *pem, ferr_t *err)
{
    char key[64];
    snprintf(key, sizeof key, "ssl.%s.type", store);
    const char *type = tls_get(k, key);
    if (type && strcasecmp(type, "PEM") != 0)
        return bad(err, k->name, type,
                   "ferry reads PEM key and trust stores only (convert with openssl and set PEM)");
    if (!type && !strstr(pem, "-----BEGIN"))
        return bad(err, k->name, "JKS", "ferry reads PEM key and trust stores only "
                                        "(convert with openssl and set PEM)");
    return FERR_OK;
}

/* ---- keystore and truststore ---- */

static ferr_code_t load_keystore(sec_t *s, tls_keys_t *k, ferr_t *err)
{
    char why[256], key_name[128];
    const char *loc = tls_get(k, "ssl.keystore.location");
    snprintf(key_name, sizeof key_name, "%s", k->name);
    const char *chain = tls_get(k, "ssl.keystore.certificate.chain");
    const char *key = tls_get(k, "ssl.keystore.key");
    const char *pass = tls_get(k, "ssl.key.password");
    if (loc) {
        if (!(s->cert_pem = read_text(loc, why, sizeof why)))
            return bad(err, key_name, loc, why);
        s->key_pem = strdup(s->cert_pem);
    } else if (chain && key) {
        s->cert_pem = strdup(chain);
        s->key_pem = strdup(key);
    } else {
        return ferr_set(err, FERR_INVALID, "Missing configuration %s: an https listener needs a "
                        "PEM keystore (or %sssl.keystore.certificate.chain and %sssl.keystore.key)",
                        key_name, k->prefix, k->prefix);
    }
    s->key_password = pass ? strdup(pass) : NULL;
    return check_type(k, "keystore", s->cert_pem, err);
}

static ferr_code_t load_truststore(sec_t *s, tls_keys_t *k, ferr_t *err)
{
    char why[256], key_name[128];
    const char *loc = tls_get(k, "ssl.truststore.location");
    snprintf(key_name, sizeof key_name, "%s", k->name);
    const char *inline_pem = tls_get(k, "ssl.truststore.certificates");
    if (loc) {
        if (!(s->ca_pem = read_text(loc, why, sizeof why)))
            return bad(err, key_name, loc, why);
    } else if (inline_pem) {
        s->ca_pem = strdup(inline_pem);
    } else {
        return FERR_OK; /* the system's CA bundle */
    }
    return check_type(k, "truststore", s->ca_pem, err);
}

/* Adds every certificate of @p pem to @p st; @returns how many, or -1 on a parse error. */
static int add_certs(X509_STORE *st, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        X509_STORE_add_cert(st, x);
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the data reads as an error */
    BIO_free(b);
    return n;
}

static ferr_code_t use_keystore(sec_t *s, tls_keys_t *k, ferr_t *err)
{
    char why[256];
    int from_file = tls_get(k, "ssl.keystore.location") != NULL;
    if (!from_file)
        tls_get(k, "ssl.keystore.certificate.chain");
    BIO *b = BIO_new_mem_buf(s->cert_pem, -1);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    int ok = leaf && SSL_CTX_use_certificate(s->server, leaf) == 1;
    X509_free(leaf);
    X509 *x;
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        SSL_CTX_add0_chain_cert(s->server, x); /* takes x */
    BIO_free(b);
    if (!ok)
        return bad(err, k->name, from_file ? props_get(k->all, k->name) : "[PEM]", ssl_why(why, sizeof why));
    ERR_clear_error();
    b = BIO_new_mem_buf(s->key_pem, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, s->key_password ? s->key_password : (char *)"");
    BIO_free(b);
    const char *why_key = !pk ? "no readable PEM private key (an encrypted key needs ssl.key.password)"
                          : SSL_CTX_use_PrivateKey(s->server, pk) != 1 || SSL_CTX_check_private_key(s->server) != 1
                              ? "the private key does not match the certificate"
                              : NULL;
    ERR_clear_error();
    if (why_key) {
        EVP_PKEY_free(pk);
        tls_get(k, !pk && s->key_password ? "ssl.key.password"
                   : from_file            ? "ssl.keystore.location"
                                          : "ssl.keystore.key");
        return bad(err, k->name, from_file ? props_get(k->all, k->name) : "[hidden]", why_key);
    }
    EVP_PKEY_free(pk);
    return FERR_OK;
}

/* ssl.client.auth: none (default), requested, required; checked against the truststore. */
static ferr_code_t use_client_auth(sec_t *s, tls_keys_t *k, ferr_t *err)
{
    const char *v = tls_get(k, "ssl.client.auth");
    int mode;
    if (!v || !strcasecmp(v, "none"))
        return FERR_OK;
    if (!strcasecmp(v, "requested"))
        mode = SSL_VERIFY_PEER;
    else if (!strcasecmp(v, "required"))
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else
        return bad(err, k->name, v, "String must be one of: required, requested, none");
    if (s->ca_pem) {
        if (add_certs(SSL_CTX_get_cert_store(s->server), s->ca_pem) <= 0) {
            tls_get(k, "ssl.truststore.location");
            return bad(err, k->name, "[PEM]", "no certificate found");
        }
    } else {
        SSL_CTX_set_default_verify_paths(s->server);
    }
    SSL_CTX_set_verify(s->server, mode, NULL);
    return FERR_OK;
}

static ferr_code_t tls_init(sec_t *s, const wconf_t *wc, int serve, ferr_t *err)
{
    tls_keys_t k;
    tls_keys_init(&k, wc->all);
    ferr_code_t rc;
    if ((rc = load_truststore(s, &k, err)))
        return rc;
    const char *alg = props_get(wc->all, k.prefix[0] ? HTTPS_PREFIX "ssl.endpoint.identification.algorithm"
                                                     : "ssl.endpoint.identification.algorithm");
    s->client.ca_pem = s->ca_pem;
    s->client.verify_host = !alg || *alg; /* Kafka: an empty value turns host name checks off */
    if (!serve && !tls_get(&k, "ssl.keystore.location") && !tls_get(&k, "ssl.keystore.key"))
        return FERR_OK; /* client only, without a certificate of its own */
    if ((rc = load_keystore(s, &k, err)))
        return rc;
    s->client.cert_pem = s->cert_pem;
    s->client.key_pem = s->key_pem;
    s->client.key_password = s->key_password;
    if (!serve)
        return FERR_OK;
    s->server = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(s->server, TLS1_2_VERSION);
    SSL_CTX_set_options(s->server, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if ((rc = use_keystore(s, &k, err)) || (rc = use_client_auth(s, &k, err)))
        return rc;
    return FERR_OK;
}

/* ---- basic authentication ---- */

static void digest_of(const char *user, size_t ulen, const char *pass, size_t plen,
                      unsigned char out[SHA256_DIGEST_LENGTH])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    EVP_DigestUpdate(m, user, ulen);
    EVP_DigestUpdate(m, ":", 1);
    EVP_DigestUpdate(m, pass, plen);
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
}

static int basic_auth_on(const wconf_t *wc)
{
    const char *v = props_get(wc->all, "rest.extension.classes");
    if (!v)
        return 0;
    size_t cl = strlen(SEC_BASIC_AUTH_CLASS);
    for (const char *p = strstr(v, SEC_BASIC_AUTH_CLASS); p; p = strstr(p + 1, SEC_BASIC_AUTH_CLASS)) {
        char before = p == v ? ',' : p[-1], after = p[cl];
        if ((before == ',' || before == ' ' || before == '\t') &&
            (!after || after == ',' || after == ' ' || after == '\t'))
            return 1;
    }
    return 0;
}

static ferr_code_t auth_init(sec_t *s, const wconf_t *wc, ferr_t *err)
{
    static const char *const fkey = "rest.basic.auth.credentials.file";
    const char *path = props_get(wc->all, fkey);
    if (!path || !*path)
        return ferr_set(err, FERR_INVALID, "Missing configuration %s: rest.extension.classes names "
                        "BasicAuthSecurityRestExtension, which needs a credentials file", fkey);
    props_t *cred = props_new();
    ferr_t lerr = {0};
    if (props_load_file(cred, path, &lerr)) {
        props_destroy(cred);
        return bad(err, fkey, path, lerr.msg);
    }
    s->nusers = props_count(cred);
    if (!s->nusers) {
        props_destroy(cred);
        return bad(err, fkey, path, "no credentials (user: password lines) in the file");
    }
    const char *iuser = props_get(wc->all, "rest.basic.auth.internal.user");
    if (iuser && !*iuser)
        iuser = NULL;
    s->users = calloc(s->nusers, sizeof *s->users);
    for (size_t i = 0; i < s->nusers; i++) {
        const char *u = props_key(cred, i), *p = props_value(cred, i);
        s->users[i].name = strdup(u);
        digest_of(u, strlen(u), p, strlen(p), s->users[i].digest);
        if (s->internal_auth || (iuser ? strcmp(iuser, u) : 0))
            continue;
        size_t raw_len = strlen(u) + 1 + strlen(p);
        char *raw = malloc(raw_len + 1), *hdr = malloc(6 + 4 * (raw_len / 3 + 1) + 1);
        snprintf(raw, raw_len + 1, "%s:%s", u, p);
        memcpy(hdr, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)hdr + 6, (unsigned char *)raw, (int)raw_len);
        OPENSSL_cleanse(raw, raw_len);
        free(raw);
        s->internal_auth = hdr;
    }
    props_destroy(cred);
    if (!s->internal_auth)
        return bad(err, "rest.basic.auth.internal.user", iuser, "no such user in the credentials file");
    return FERR_OK;
}

int sec_auth_check(const sec_t *s, const char *value, size_t len)
{
    if (!s || !s->nusers)
        return 1;
    if (!value || len < 7 || len > 4096 || strncasecmp(value, "Basic ", 6))
        return 0;
    const char *b64 = value + 6, *end = value + len;
    while (b64 < end && *b64 == ' ')
        b64++;
    while (end > b64 && end[-1] == ' ')
        end--;
    size_t blen = (size_t)(end - b64);
    if (!blen || blen % 4)
        return 0;
    unsigned char *raw = malloc(blen + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)blen);
    if (n >= 0)
        n -= (b64[blen - 1] == '=') + (blen > 1 && b64[blen - 2] == '=');
    const char *colon = n > 0 ? memchr(raw, ':', (size_t)n) : NULL;
    int ok = 0;
    if (colon) {
        size_t ulen = (size_t)(colon - (char *)raw);
        unsigned char d[SHA256_DIGEST_LENGTH];
        digest_of((char *)raw, ulen, colon + 1, (size_t)n - ulen - 1, d);
        for (size_t i = 0; i < s->nusers; i++) /* no early exit: time does not depend on which */
            ok |= CRYPTO_memcmp(d, s->users[i].digest, sizeof d) == 0;
    }
    OPENSSL_cleanse(raw, blen + 1);
    free(raw);
    return ok;
}

/* ---- the whole thing ---- */

sec_t *sec_new(const wconf_t *wc, ferr_t *err)
{
    sec_t *s = calloc(1, sizeof *s);
    int serve = !strcmp(wc->listener_scheme, "https");
    int client = serve || !strcmp(wc->advertised_scheme, "https");
    ferr_code_t rc = FERR_OK;
    s->client.verify_host = 1;
    if (client)
        rc = tls_init(s, wc, serve, err);
    if (!rc && basic_auth_on(wc))
        rc = auth_init(s, wc, err);
    if (rc) {
        sec_destroy(s);
        return NULL;
    }
    return s;
}

void sec_destroy(sec_t *s)
{
    if (!s)
        return;
    SSL_CTX_free(s->server);
    free(s->ca_pem);
    free(s->cert_pem);
    if (s->key_pem)
        OPENSSL_cleanse(s->key_pem, strlen(s->key_pem));
    free(s->key_pem);
    free(s->key_password);
    for (size_t i = 0; i < s->nusers; i++)
        free(s->users[i].name);
    free(s->users);
    free(s->internal_auth);
    free(s);
}

SSL_CTX *sec_server_ctx(const sec_t *s)
{
    return s ? s->server : NULL;
}

int sec_auth_enabled(const sec_t *s)
{
    return s && s->nusers > 0;
}

const char *sec_internal_auth(const sec_t *s)
{
    return s ? s->internal_auth : NULL;
}

const fwd_tls_t *sec_client_tls(const sec_t *s)
{
    return &s->client;
}
