/* ksasl: SASL PLAIN and SCRAM client messages. See ksasl.h for the exchange and its checks.
 *
 * The SCRAM arithmetic (RFC 5802 section 3):
 *   SaltedPassword  = PBKDF2-HMAC-H(password, salt, iterations)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key"),  StoredKey = H(ClientKey)
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
 * All from OpenSSL (PKCS5_PBKDF2_HMAC, HMAC, EVP_Digest); keys are wiped once used. Messages
 * are built in kwire writers (growable byte buffers), always kept NUL-terminated. */
#include "proto/ksasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kwire.h"

typedef enum ksasl_state {
    KSASL_FIRST,  /* client-first made; waiting for server-first */
    KSASL_FINAL,  /* client-final made; waiting for server-final */
    KSASL_DONE,   /* the server proved itself */
    KSASL_FAILED, /* any error ends the exchange */
} ksasl_state_t;

struct ksasl_scram {
    ksasl_mech_t mech;
    ksasl_state_t state;
    char *password;
    size_t nonce_len;
    kwire_wr_t first;  /* "n,," client-first-bare; the bare part starts at offset 3 */
    kwire_wr_t final;  /* client-final */
    unsigned char server_sig[EVP_MAX_MD_SIZE];
};

#define KSASL_GS2 "n,,"

const char *ksasl_mech_name(ksasl_mech_t mech)
{
    return mech == KSASL_SCRAM_SHA_512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
}

static const EVP_MD *ksasl_md(ksasl_mech_t mech) { return mech == KSASL_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256(); }

/* Appends a NUL that is not counted, so the buffer is always a C string. */
static void ksasl_terminate(kwire_wr_t *w)
{
    kwire_wr_i8(w, 0);
    if (!w->failed)
        w->len--;
}

static void ksasl_put(kwire_wr_t *w, const char *s) { kwire_wr_raw(w, s, strlen(s)); }

ferr_code_t ksasl_plain(const char *user, const char *password, char **msg, size_t *len, ferr_t *err)
{
    *msg = NULL;
    *len = 0;
    if (!user || !*user || !password)
        return ferr_set(err, FERR_INVALID, "PLAIN: empty user name");
    size_t ul = strlen(user), pl = strlen(password);
    char *m = malloc(ul + pl + 2);
    if (!m)
        return ferr_set(err, FERR_INTERNAL, "out of memory");
    m[0] = '\0';
    memcpy(m + 1, user, ul);
    m[1 + ul] = '\0';
    memcpy(m + 2 + ul, password, pl);
    *msg = m;
    *len = ul + pl + 2;
    return FERR_OK;
}

/* ---- base64, strict: only the standard alphabet, length a multiple of 4, padding at the end ---- */

static void ksasl_b64_put(kwire_wr_t *w, const unsigned char *p, size_t n)
{
    uint8_t *d = kwire_wr_alloc(w, 4 * ((n + 2) / 3) + 1);
    if (d)
        w->len -= 1 + (size_t)(4 * ((n + 2) / 3)) - (size_t)EVP_EncodeBlock(d, p, (int)n);
}

static bool ksasl_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Decodes @p n base64 characters into @p out (at least 3 * n / 4 bytes). @returns the length or -1. */
static int ksasl_b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n == 0 || n % 4 || n > 4 * 1024)
        return -1;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (!ksasl_b64_char((unsigned char)s[i]))
            return -1;
    int k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    return k < 0 ? -1 : k - (int)pad;
}

/* ---- the exchange ---- */

static bool ksasl_nonce_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return n > 0;
}

ferr_code_t ksasl_scram_nonce(char *out, size_t size, ferr_t *err)
{
    unsigned char raw[24];
    if (size < 33)
        return ferr_set(err, FERR_INVALID, "nonce buffer below 33 bytes");
    if (RAND_bytes(raw, sizeof raw) != 1)
        return ferr_set(err, FERR_INTERNAL, "RAND_bytes failed");
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw); /* 32 characters and a NUL */
    OPENSSL_cleanse(raw, sizeof raw);
    return FERR_OK;
}

ksasl_scram_t *ksasl_scram_new(ksasl_mech_t mech, const char *user, const char *password, const char *nonce,
                               ferr_t *err)
{
    if (!user || !*user || !password) {
        ferr_set(err, FERR_INVALID, "SCRAM: empty user name");
        return NULL;
    }
    if (!nonce || !ksasl_nonce_ok(nonce, strlen(nonce))) {
        ferr_set(err, FERR_INVALID, "SCRAM: the client nonce must be printable ASCII without ','");
        return NULL;
    }
    ksasl_scram_t *s = calloc(1, sizeof *s);
    if (!s || !(s->password = strdup(password))) {
        free(s);
        ferr_set(err, FERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->mech = mech;
    s->nonce_len = strlen(nonce);
    kwire_wr_init(&s->first);
    kwire_wr_init(&s->final);
    ksasl_put(&s->first, KSASL_GS2 "n=");
    for (const char *c = user; *c; c++)
        ksasl_put(&s->first, *c == ',' ? "=2C" : *c == '=' ? "=3D" : (char[2]){*c, 0});
    ksasl_put(&s->first, ",r=");
    ksasl_put(&s->first, nonce);
    ksasl_terminate(&s->first);
    if (s->first.failed) {
        ksasl_scram_destroy(s);
        ferr_set(err, FERR_INTERNAL, "out of memory");
        return NULL;
    }
    return s;
}

const char *ksasl_scram_client_first(ksasl_scram_t *s, size_t *len)
{
    *len = s->first.len;
    return (const char *)s->first.buf;
}

static ferr_code_t ksasl_fail(ksasl_scram_t *s, ferr_t *err, ferr_code_t code, const char *what)
{
    s->state = KSASL_FAILED;
    return ferr_set(err, code, "SCRAM %s: %s", ksasl_mech_name(s->mech), what);
}

/* The value of attribute @p name at *p ("x=value," or up to @p end); moves *p past it. */
static bool ksasl_attr(const char **p, const char *end, char name, const char **v, size_t *n)
{
    const char *q = *p;
    if (end - q < 2 || q[0] != name || q[1] != '=')
        return false;
    q += 2;
    const char *c = memchr(q, ',', (size_t)(end - q));
    *v = q;
    *n = (size_t)((c ? c : end) - q);
    *p = c ? c + 1 : end;
    return true;
}

typedef struct ksasl_server_first {
    const char *nonce, *salt, *iter;
    size_t nonce_len, salt_len, iter_len;
} ksasl_server_first_t;

static const char *ksasl_parse_first(const ksasl_scram_t *s, const char *m, size_t len, ksasl_server_first_t *f)
{
    const char *p = m, *end = m + len;
    if (len >= 2 && m[0] == 'm' && m[1] == '=')
        return "the server requires an extension (m=) this client does not know";
    if (!ksasl_attr(&p, end, 'r', &f->nonce, &f->nonce_len) || !ksasl_attr(&p, end, 's', &f->salt, &f->salt_len) ||
        !ksasl_attr(&p, end, 'i', &f->iter, &f->iter_len))
        return "server-first is not r=...,s=...,i=...";
    const char *ours = (const char *)s->first.buf + s->first.len - s->nonce_len;
    if (f->nonce_len <= s->nonce_len || memcmp(f->nonce, ours, s->nonce_len) != 0)
        return "the server nonce does not extend the client nonce";
    if (!ksasl_nonce_ok(f->nonce, f->nonce_len))
        return "the server nonce is not printable ASCII";
    return NULL;
}

static bool ksasl_iterations(const char *s, size_t n, int *iter)
{
    long v = 0;
    if (n == 0 || n > 9 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *iter = (int)v;
    return v >= KSASL_SCRAM_MIN_ITERATIONS && v <= KSASL_SCRAM_MAX_ITERATIONS;
}

static bool ksasl_hmac(const EVP_MD *md, const unsigned char *key, int klen, const void *data, size_t n,
                       unsigned char *out)
{
    unsigned int olen = 0;
    return HMAC(md, key, klen, data, n, out, &olen) != NULL;
}

/* The proof and the expected server signature for @p auth (AuthMessage). */
static bool ksasl_keys(ksasl_scram_t *s, const unsigned char *salt, int salt_len, int iter, const kwire_wr_t *auth,
                       unsigned char *proof)
{
    const EVP_MD *md = ksasl_md(s->mech);
    int n = EVP_MD_get_size(md);
    unsigned char salted[EVP_MAX_MD_SIZE], ckey[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE], csig[EVP_MAX_MD_SIZE],
        skey[EVP_MAX_MD_SIZE];
    bool ok = PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt, salt_len, iter, md, n, salted) == 1 &&
              ksasl_hmac(md, salted, n, "Client Key", 10, ckey) &&
              EVP_Digest(ckey, (size_t)n, stored, NULL, md, NULL) == 1 &&
              ksasl_hmac(md, stored, n, auth->buf, auth->len, csig) &&
              ksasl_hmac(md, salted, n, "Server Key", 10, skey) &&
              ksasl_hmac(md, skey, n, auth->buf, auth->len, s->server_sig);
    for (int i = 0; i < n; i++)
        proof[i] = ckey[i] ^ csig[i];
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ckey, sizeof ckey);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(csig, sizeof csig);
    OPENSSL_cleanse(skey, sizeof skey);
    return ok;
}

ferr_code_t ksasl_scram_client_final(ksasl_scram_t *s, const void *server_first, size_t len, const char **out,
                                     size_t *out_len, ferr_t *err)
{
    *out = NULL;
    *out_len = 0;
    if (s->state != KSASL_FIRST)
        return ksasl_fail(s, err, FERR_INVALID, "client-final asked for out of order");
    const char *m = server_first;
    if (len > KSASL_MAX_MESSAGE || memchr(m, 0, len))
        return ksasl_fail(s, err, FERR_INVALID, "server-first is too long or contains NUL");
    ksasl_server_first_t f;
    const char *bad = ksasl_parse_first(s, m, len, &f);
    if (bad)
        return ksasl_fail(s, err, FERR_INVALID, bad);
    int iter;
    if (!ksasl_iterations(f.iter, f.iter_len, &iter))
        return ksasl_fail(s, err, FERR_INVALID, "iterations are not a number in [4096, 16384]");
    unsigned char salt[3 * 1024], proof[EVP_MAX_MD_SIZE];
    int salt_len = ksasl_b64_decode(f.salt, f.salt_len, salt);
    if (salt_len <= 0)
        return ksasl_fail(s, err, FERR_INVALID, "the salt is not base64");

    kwire_wr_t auth; /* AuthMessage; s->final gets client-final-without-proof first */
    kwire_wr_init(&auth);
    ksasl_put(&s->final, "c=biws,r="); /* biws = base64("n,,") */
    kwire_wr_raw(&s->final, f.nonce, f.nonce_len);
    kwire_wr_raw(&auth, s->first.buf + 3, s->first.len - 3);
    kwire_wr_i8(&auth, ',');
    kwire_wr_raw(&auth, m, len);
    kwire_wr_i8(&auth, ',');
    kwire_wr_raw(&auth, s->final.buf, s->final.len);
    bool ok = !auth.failed && ksasl_keys(s, salt, salt_len, iter, &auth, proof);
    kwire_wr_dispose(&auth);
    ksasl_put(&s->final, ",p=");
    ksasl_b64_put(&s->final, proof, (size_t)EVP_MD_get_size(ksasl_md(s->mech)));
    ksasl_terminate(&s->final);
    OPENSSL_cleanse(proof, sizeof proof);
    if (!ok || s->final.failed)
        return ksasl_fail(s, err, FERR_INTERNAL, "OpenSSL or memory failed");
    s->state = KSASL_FINAL;
    *out = (const char *)s->final.buf;
    *out_len = s->final.len;
    return FERR_OK;
}

ferr_code_t ksasl_scram_verify(ksasl_scram_t *s, const void *server_final, size_t len, ferr_t *err)
{
    if (s->state != KSASL_FINAL)
        return ksasl_fail(s, err, FERR_INVALID, "server-final read out of order");
    const char *p = server_final, *end = p + len, *v;
    size_t n;
    if (len > KSASL_MAX_MESSAGE || memchr(p, 0, len))
        return ksasl_fail(s, err, FERR_INVALID, "server-final is too long or contains NUL");
    if (ksasl_attr(&p, end, 'e', &v, &n)) {
        s->state = KSASL_FAILED;
        return ferr_set(err, FERR_UNAUTHORIZED, "SCRAM %s: the server refused: %.*s", ksasl_mech_name(s->mech),
                        (int)n, v);
    }
    unsigned char sig[3 * 1024];
    int want = EVP_MD_get_size(ksasl_md(s->mech));
    if (!ksasl_attr(&p, end, 'v', &v, &n))
        return ksasl_fail(s, err, FERR_INVALID, "server-final is neither v=... nor e=...");
    if (ksasl_b64_decode(v, n, sig) != want || CRYPTO_memcmp(sig, s->server_sig, (size_t)want) != 0)
        return ksasl_fail(s, err, FERR_UNAUTHORIZED, "the server signature is wrong");
    s->state = KSASL_DONE;
    return FERR_OK;
}

void ksasl_scram_destroy(ksasl_scram_t *s)
{
    if (!s)
        return;
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    if (s->final.buf)
        OPENSSL_cleanse(s->final.buf, s->final.cap);
    OPENSSL_cleanse(s->server_sig, sizeof s->server_sig);
    kwire_wr_dispose(&s->first);
    kwire_wr_dispose(&s->final);
    free(s);
}
