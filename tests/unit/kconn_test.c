/* kconn_test: ferry's own broker connections (worker/kconn.c) against two peers.
 *
 *  - librdkafka 2.0.2's mock cluster, in-process: plaintext connections, version negotiation,
 *    Metadata, a Fetch of what librdkafka produced, Produce requests pipelined on one
 *    connection (one batch per partition per request: the mock's limit) with the responses
 *    matched in order, and the misuses kconn refuses (acks=0, a blocking call while requests
 *    are in flight).
 *  - A fake broker thread written here, for what the mock has no way to show: TLS (a CA and
 *    certificates made at run time with OpenSSL: right CA, wrong CA, host name mismatch, IP
 *    address SAN, verification off, SNI, client certificates with an encrypted key), SASL
 *    (PLAIN and the server side of SCRAM-SHA-256/512, RFC 5802: right and wrong passwords,
 *    a forged server signature, a mechanism the broker does not enable, SaslAuthenticate v0
 *    and v1, over TLS too), the ApiVersions fallback, and broken peers (a response out of
 *    order, an oversized frame, a hang-up, a response that comes late, a broker that stops
 *    reading, responses in 1-byte pieces, large ones, two in one read).
 *  - Timeouts and refusals: a listening socket that never answers (the kernel completes the
 *    TCP handshake, nobody reads) and a port nobody listens on.
 *  - kconn_conf_from(): layering, librdkafka's value rules, and what it refuses.
 * Nothing sleeps for a fixed time: the fake broker is driven by the client's requests, and the
 * one test of a late response releases it through a condition variable. */
#include "worker/kconn.h"

#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "worker/kutil.h"
#include "tests/unit/cu.h"

#define USER "alice"
#define PASS "alice-secret"
#define KEYPASS "key-passphrase"

/* ---- certificates, made at run time ---- */

typedef struct pki {
    EVP_PKEY *ca_key, *other_ca_key, *server_key, *client_key;
    X509 *ca, *other_ca, *server, *elsewhere, *client;
    char *ca_pem, *other_ca_pem, *client_pem, *client_key_pem; /* the key encrypted with KEYPASS */
    char dir[64], ca_file[96];
} pki_t;

static pki_t pki;

static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"basicConstraints", issuer ? "CA:FALSE" : "critical,CA:TRUE"},
                             {"keyUsage", issuer ? "digitalSignature" : "critical,keyCertSign,cRLSign"},
                             {"subjectAltName", san}};
    for (int i = 0; i < 3; i++) {
        if (!exts[i][1])
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v, exts[i][0], exts[i][1]);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
}

static char *pem_of(X509 *x, EVP_PKEY *k, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (x)
        PEM_write_bio_X509(b, x);
    else
        PEM_write_bio_PrivateKey(b, k, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)pass);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static void pki_init(void)
{
    pki.ca_key = EVP_EC_gen("P-256");
    pki.other_ca_key = EVP_EC_gen("P-256");
    pki.server_key = EVP_EC_gen("P-256");
    pki.client_key = EVP_EC_gen("P-256");
    pki.ca = cert_new(pki.ca_key, "kconn test CA", NULL, NULL, NULL);
    pki.other_ca = cert_new(pki.other_ca_key, "some other CA", NULL, NULL, NULL);
    pki.server = cert_new(pki.server_key, "localhost", pki.ca, pki.ca_key, "DNS:localhost,IP:127.0.0.1");
    pki.elsewhere = cert_new(pki.server_key, "broker.example", pki.ca, pki.ca_key, "DNS:broker.example");
    pki.client = cert_new(pki.client_key, "ferry client", pki.ca, pki.ca_key, NULL);
    pki.ca_pem = pem_of(pki.ca, NULL, NULL);
    pki.other_ca_pem = pem_of(pki.other_ca, NULL, NULL);
    pki.client_pem = pem_of(pki.client, NULL, NULL);
    pki.client_key_pem = pem_of(NULL, pki.client_key, KEYPASS);
    snprintf(pki.dir, sizeof pki.dir, "/tmp/kconn_test.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(pki.dir));
    snprintf(pki.ca_file, sizeof pki.ca_file, "%s/ca.pem", pki.dir);
    FILE *f = fopen(pki.ca_file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(pki.ca_pem, f);
    fclose(f);
}

static void pki_free(void)
{
    unlink(pki.ca_file);
    rmdir(pki.dir);
    EVP_PKEY *keys[] = {pki.ca_key, pki.other_ca_key, pki.server_key, pki.client_key};
    X509 *certs[] = {pki.ca, pki.other_ca, pki.server, pki.elsewhere, pki.client};
    for (size_t i = 0; i < 4; i++)
        EVP_PKEY_free(keys[i]);
    for (size_t i = 0; i < 5; i++)
        X509_free(certs[i]);
    free(pki.ca_pem);
    free(pki.other_ca_pem);
    free(pki.client_pem);
    free(pki.client_key_pem);
    memset(&pki, 0, sizeof pki);
}

/* A broker's TLS context: @p cert, and with @p client_ca a client certificate is required. */
static SSL_CTX *server_tls(X509 *cert, X509 *client_ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, pki.server_key);
    if (client_ca) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), client_ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

/* ---- the fake broker: one thread, one connection at a time, blocking I/O ---- */

#define BIG_PARTITIONS 5000

typedef enum fb_mode {
    FB_NORMAL,
    FB_BAD_CORR, /* Metadata answered with another correlation id */
    FB_HUGE,     /* Metadata answered with a 1 GiB frame size */
    FB_CLOSE,    /* hangs up on Metadata */
    FB_HOLD,     /* answers Metadata once the test calls fake_release() */
    FB_BAD_SIG,  /* a SCRAM server-final with a wrong signature */
    FB_DRIBBLE,  /* every response one byte at a time */
    FB_BIG,      /* Metadata with BIG_PARTITIONS partitions: a response above kconn's read chunk */
    FB_PAIR,     /* reads two Metadata requests, answers both with one write */
} fb_mode_t;

typedef struct fake {
    /* set before fake_start() */
    SSL_CTX *tls;      /* NULL: plaintext (owned: freed by fake_stop) */
    const char *mechs; /* "PLAIN,SCRAM-SHA-256": SASL required; NULL: none */
    int apiv_max;      /* the highest ApiVersions version it knows */
    int auth_max;      /* the highest SaslAuthenticate version it offers */
    fb_mode_t mode;
    /* the thread */
    int lfd, port, wake[2];
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool released;
    /* what it saw: read after fake_stop() */
    int conns, apiv_seen[4], auth_ok, auth_failed;
    char sni[64];
} fake_t;

typedef struct fconn {
    fake_t *f;
    int fd;
    SSL *ssl;
    bool authed, close_after;
    int paired;
    char mech[32];
    int scram_step;
    char bare[512], server_first[512], nonce[128];
    kwire_wr_t in, out;
} fconn_t;

static int fc_io(fconn_t *fc, void *buf, size_t n, bool wr)
{
    for (size_t done = 0; done < n;) {
        ssize_t k;
        if (fc->ssl)
            k = wr ? SSL_write(fc->ssl, (char *)buf + done, (int)(n - done))
                   : SSL_read(fc->ssl, (char *)buf + done, (int)(n - done));
        else
            k = wr ? send(fc->fd, (char *)buf + done, n - done, MSG_NOSIGNAL) : recv(fc->fd, (char *)buf + done, n - done, 0);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static int fc_read_frame(fconn_t *fc)
{
    size_t fl;
    ferr_t e;
    kwire_wr_reset(&fc->in);
    if (fc_io(fc, kwire_wr_alloc(&fc->in, 4), 4, false) || kwire_frame_len(fc->in.buf, 4, 1 << 20, &fl, &e))
        return -1;
    return fc_io(fc, kwire_wr_alloc(&fc->in, fl - 4), fl - 4, false);
}

static bool fb_enabled(const fake_t *f, const char *mech)
{
    size_t n = strlen(mech);
    for (const char *p = f->mechs; p && (p = strstr(p, mech)); p += n)
        if ((p == f->mechs || p[-1] == ',') && (p[n] == ',' || !p[n]))
            return true;
    return false;
}

static void fb_apiversions(fconn_t *fc, int32_t corr, int16_t ver)
{
    kwire_api_version_t keys[] = {{KWIRE_API_PRODUCE, 3, 8},         {KWIRE_API_FETCH, 4, 11},
                                  {KWIRE_API_METADATA, 1, 8},        {KWIRE_API_SASL_HANDSHAKE, 0, 1},
                                  {KWIRE_API_API_VERSIONS, 0, 2},    {KWIRE_API_SASL_AUTHENTICATE, 0, 1}};
    keys[4].max_version = (int16_t)fc->f->apiv_max;
    keys[5].max_version = (int16_t)fc->f->auth_max;
    kwire_apiversions_resp_t r = {0, keys, 6, 0, NULL};
    if (ver > fc->f->apiv_max) { /* as Kafka: v0, UNSUPPORTED_VERSION, its own range */
        r = (kwire_apiversions_resp_t){35, &keys[4], 1, 0, NULL};
        ver = 0;
    }
    kwire_apiversions_resp_write(&fc->out, corr, ver, &r, NULL);
}

static void fb_metadata(fconn_t *fc, int32_t corr, int16_t ver, const uint8_t *body, size_t len)
{
    fake_t *f = fc->f;
    kwire_metadata_req_t mr;
    kwire_req_arena_t a = {0};
    kwire_metadata_broker_t b = {1, "localhost", f->port, NULL};
    static kwire_metadata_partition_t parts[BIG_PARTITIONS];
    for (int i = 0; i < BIG_PARTITIONS; i++)
        parts[i] = (kwire_metadata_partition_t){0, i, 1, 5};
    kwire_metadata_topic_t t[4];
    int n = 0;
    if (kwire_metadata_req_decode(body, len, ver, &mr, &a, NULL) == FERR_OK)
        for (; n < mr.n_topics && n < 4; n++)
            t[n] = (kwire_metadata_topic_t){0, mr.topics[n].name, false, parts, f->mode == FB_BIG ? BIG_PARTITIONS : 1};
    kwire_metadata_resp_t r = {0, &b, 1, "fake-cluster", 1, t, n, NULL};
    if (f->mode == FB_HOLD) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5; /* a test gone wrong fails instead of hanging */
        pthread_mutex_lock(&f->lock);
        while (!f->released && pthread_cond_timedwait(&f->cond, &f->lock, &until) == 0)
            ;
        pthread_mutex_unlock(&f->lock);
    }
    if (f->mode == FB_HUGE)
        kwire_wr_i32(&fc->out, 1 << 30);
    else
        kwire_metadata_resp_write(&fc->out, f->mode == FB_BAD_CORR ? corr + 1 : corr, ver, &r, NULL);
    kwire_req_arena_dispose(&a);
}

static void fb_handshake(fconn_t *fc, int32_t corr, const uint8_t *body, size_t len)
{
    kwire_saslhandshake_req_t hr;
    kwire_req_arena_t a = {0};
    kwire_sasl_mechanism_t list[3] = {{"PLAIN"}, {"SCRAM-SHA-256"}, {"SCRAM-SHA-512"}}, on[3];
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (fb_enabled(fc->f, list[i].name))
            on[n++] = list[i];
    bool ok = kwire_saslhandshake_req_decode(body, len, 1, &hr, &a, NULL) == FERR_OK && fb_enabled(fc->f, hr.mechanism);
    if (ok)
        snprintf(fc->mech, sizeof fc->mech, "%s", hr.mechanism);
    kwire_saslhandshake_resp_t r = {ok ? 0 : 33, on, n, NULL};
    kwire_saslhandshake_resp_write(&fc->out, corr, 1, &r, NULL);
    fc->close_after = !ok;
    kwire_req_arena_dispose(&a);
}

static bool fb_plain(const uint8_t *m, size_t n)
{
    static const char want[] = "\0" USER "\0" PASS;
    return n == sizeof want - 1 && !memcmp(m, want, n);
}

/* The broker's side of SCRAM (RFC 5802) for USER/PASS, salt fixed, 4096 iterations.
 * @returns the server message to send, or NULL to refuse. */
static const char *fb_scram(fconn_t *fc, const char *m, size_t n, char *out, size_t outlen)
{
    static const unsigned char salt[16] = "kconn-test-salt";
    const EVP_MD *md = strcmp(fc->mech, "SCRAM-SHA-512") ? EVP_sha256() : EVP_sha512();
    int hl = EVP_MD_get_size(md);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)n, m);
    if (fc->scram_step++ == 0) { /* client-first: "n,,n=USER,r=NONCE" */
        char b64[32];
        if (sscanf(msg, "n,,n=" USER ",r=%100[^,]", fc->nonce) != 1)
            return NULL;
        snprintf(fc->bare, sizeof fc->bare, "%s", msg + 3);
        EVP_EncodeBlock((unsigned char *)b64, salt, 16);
        snprintf(fc->server_first, sizeof fc->server_first, "r=%sfakeserver,s=%s,i=4096", fc->nonce, b64);
        return fc->server_first;
    }
    /* client-final: "c=biws,r=NONCEfakeserver,p=PROOF" */
    char *p = strstr(msg, ",p="), auth[1024], want_r[160];
    snprintf(want_r, sizeof want_r, "c=biws,r=%sfakeserver", fc->nonce);
    if (!p || (size_t)(p - msg) != strlen(want_r) || strncmp(msg, want_r, strlen(want_r)))
        return NULL;
    int alen = snprintf(auth, sizeof auth, "%s,%s,%.*s", fc->bare, fc->server_first, (int)(p - msg), msg);
    unsigned char salted[64], ckey[64], stored[64], csig[64], proof[100], skey[64], ssig[64];
    unsigned int l;
    PKCS5_PBKDF2_HMAC(PASS, (int)strlen(PASS), salt, 16, 4096, md, hl, salted);
    HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, ckey, &l);
    EVP_Digest(ckey, (size_t)hl, stored, NULL, md, NULL);
    HMAC(md, stored, hl, (unsigned char *)auth, (size_t)alen, csig, &l);
    if (EVP_DecodeBlock(proof, (unsigned char *)p + 3, (int)strlen(p + 3)) < hl)
        return NULL;
    for (int i = 0; i < hl; i++)
        ckey[i] = proof[i] ^ csig[i];
    EVP_Digest(ckey, (size_t)hl, csig, NULL, md, NULL); /* H(recovered client key) */
    if (memcmp(csig, stored, (size_t)hl))
        return NULL;
    HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, skey, &l);
    HMAC(md, skey, hl, (unsigned char *)auth, (size_t)alen, ssig, &l);
    if (fc->f->mode == FB_BAD_SIG)
        ssig[0] ^= 1;
    char b64[100];
    EVP_EncodeBlock((unsigned char *)b64, ssig, hl);
    snprintf(out, outlen, "v=%s", b64);
    return out;
}

static void fb_authenticate(fconn_t *fc, int32_t corr, int16_t ver, const uint8_t *body, size_t len)
{
    kwire_saslauth_req_t ar;
    kwire_req_arena_t a = {0};
    char final[200];
    const char *reply = NULL;
    bool ok = kwire_saslauth_req_decode(body, len, ver, &ar, &a, NULL) == FERR_OK;
    if (ok && !strcmp(fc->mech, "PLAIN"))
        reply = fb_plain(ar.auth_bytes, ar.auth_bytes_len) ? "" : NULL;
    else if (ok && fc->mech[0])
        reply = fb_scram(fc, (const char *)ar.auth_bytes, ar.auth_bytes_len, final, sizeof final);
    kwire_saslauth_resp_t r = {0, NULL, (const uint8_t *)(reply ? reply : ""), reply ? strlen(reply) : 0, 3600000, NULL};
    if (!reply) { /* what Kafka says, then it hangs up */
        r.error_code = 58;
        r.error_message = !strcmp(fc->mech, "PLAIN") ? "Authentication failed: Invalid username or password"
                                                     : "Authentication failed during authentication due to invalid "
                                                       "credentials with SASL mechanism";
        fc->close_after = true;
        fc->f->auth_failed++;
    } else if (!strcmp(fc->mech, "PLAIN") || fc->scram_step == 2) {
        fc->authed = true;
        fc->f->auth_ok++;
    }
    kwire_saslauth_resp_write(&fc->out, corr, ver, &r, NULL);
    kwire_req_arena_dispose(&a);
}

/* Answers one request into fc->out. @returns false to hang up without answering. */
static bool fb_handle(fconn_t *fc)
{
    int16_t key, ver;
    int32_t corr;
    size_t hl;
    if (kwire_req_hdr_read(fc->in.buf + 4, fc->in.len - 4, &key, &ver, &corr, &hl, NULL))
        return false;
    const uint8_t *body = fc->in.buf + 4 + hl;
    size_t len = fc->in.len - 4 - hl;
    if (key == KWIRE_API_API_VERSIONS) {
        fc->f->apiv_seen[ver & 3]++;
        fb_apiversions(fc, corr, ver);
    } else if (key == KWIRE_API_SASL_HANDSHAKE && fc->f->mechs) {
        fb_handshake(fc, corr, body, len);
    } else if (key == KWIRE_API_SASL_AUTHENTICATE && fc->f->mechs) {
        fb_authenticate(fc, corr, ver, body, len);
    } else if (key == KWIRE_API_METADATA && (!fc->f->mechs || fc->authed) && fc->f->mode != FB_CLOSE) {
        fb_metadata(fc, corr, ver, body, len);
    } else {
        return false; /* Kafka hangs up on a request before authentication, too */
    }
    if (key == KWIRE_API_METADATA && fc->f->mode == FB_PAIR && !fc->paired++) /* answer the next one too */
        return !fc_read_frame(fc) && fb_handle(fc);
    return true;
}

static int fc_write(fconn_t *fc)
{
    for (size_t i = 0; fc->f->mode == FB_DRIBBLE && i < fc->out.len; i++)
        if (fc_io(fc, fc->out.buf + i, 1, true))
            return -1;
    return fc->f->mode == FB_DRIBBLE ? 0 : fc_io(fc, fc->out.buf, fc->out.len, true);
}

static void fb_serve(fake_t *f, int fd)
{
    fconn_t fc = {.f = f, .fd = fd};
    struct timeval tv = {5, 0}; /* a test gone wrong fails instead of hanging */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    kwire_wr_init(&fc.in);
    kwire_wr_init(&fc.out);
    if (f->tls) {
        fc.ssl = SSL_new(f->tls);
        SSL_set_fd(fc.ssl, fd);
        if (SSL_accept(fc.ssl) != 1)
            goto out;
        const char *sni = SSL_get_servername(fc.ssl, TLSEXT_NAMETYPE_host_name);
        pthread_mutex_lock(&f->lock);
        snprintf(f->sni, sizeof f->sni, "%s", sni ? sni : "");
        pthread_mutex_unlock(&f->lock);
    }
    int one = 1; /* so that dribbled bytes arrive one by one */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (!fc.close_after && (kwire_wr_reset(&fc.out), !fc_read_frame(&fc)) && fb_handle(&fc) && !fc_write(&fc))
        ;
out:
    ERR_clear_error();
    SSL_free(fc.ssl);
    kwire_wr_dispose(&fc.in);
    kwire_wr_dispose(&fc.out);
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN}, {.fd = f->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents)
            break;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        f->conns++;
        fb_serve(f, fd);
        close(fd);
    }
    OPENSSL_thread_stop();
    return NULL;
}

/* A socket on 127.0.0.1 with a free port; listening if @p backlog > 0. */
static int local_socket(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(backlog == 0 || listen(fd, backlog) == 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static void fake_start(fake_t *f)
{
    f->lfd = local_socket(8, &f->port);
    CU_ASSERT_FATAL(pipe(f->wake) == 0);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    CU_ASSERT_FATAL(pthread_create(&f->th, NULL, fake_main, f) == 0);
}

static void fake_release(fake_t *f)
{
    pthread_mutex_lock(&f->lock);
    f->released = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void fake_stop(fake_t *f)
{
    CU_ASSERT(write(f->wake[1], "x", 1) == 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
    close(f->wake[0]);
    close(f->wake[1]);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    SSL_CTX_free(f->tls);
}

/* @returns whether the last TLS client named @p want with SNI. */
static bool fake_sni_is(fake_t *f, const char *want)
{
    pthread_mutex_lock(&f->lock);
    bool same = !strcmp(f->sni, want);
    pthread_mutex_unlock(&f->lock);
    return same;
}

static fake_t fake_new(SSL_CTX *tls, const char *mechs)
{
    return (fake_t){.tls = tls, .mechs = mechs, .apiv_max = 2, .auth_max = 1};
}

/* ---- client helpers ---- */

/* A finished configuration from NULL-terminated key, value pairs (one props layer). */
static ferr_code_t conf_of(kconn_conf_t *c, ferr_t *err, const char *const *kv)
{
    props_t *p = props_new();
    for (; kv && kv[0]; kv += 2)
        props_set(p, kv[0], kv[1]);
    ferr_code_t rc = kconn_conf_from(NULL, p, "consumer.", NULL, NULL, c, err);
    props_destroy(p);
    return rc;
}

/* Opens a connection to the fake broker at @p host with the settings @p kv, asks for Metadata,
 * closes. @returns the first error (FERR_OK if all went well); @p err says why. */
static ferr_code_t try_fake(fake_t *f, const char *host, ferr_t *err, const char *const *kv)
{
    kconn_conf_t conf;
    ferr_code_t rc = conf_of(&conf, err, kv);
    if (rc)
        return rc;
    kconn_t *c = kconn_open(&conf, host, f->port, 5000, err);
    kconn_conf_dispose(&conf);
    if (!c)
        return err->code;
    static const char *const topics[] = {"t1"};
    kwire_metadata_resp_t md;
    rc = kconn_metadata(c, topics, 1, &md, 5000, err);
    if (!rc) {
        CU_ASSERT(md.n_brokers == 1 && md.brokers[0].port == f->port && md.n_topics == 1);
        CU_ASSERT(md.n_topics == 1 && !strcmp(md.topics[0].name, "t1"));
        kwire_metadata_resp_dispose(&md);
    }
    kconn_destroy(c);
    return rc;
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static bool has(const ferr_t *e, const char *s)
{
    if (strstr(e->msg, s))
        return true;
    fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", e->msg, s);
    return false;
}

/* ---- the mock cluster ---- */

#define MOCK_RECORDS 200

static rd_kafka_t *mock_producer(const char *bootstraps)
{
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers", bootstraps, "log_level", "3", "linger.ms", "5", "batch.num.messages", "20",
                        NULL};
    for (int i = 0; kv[i]; i += 2)
        rd_kafka_conf_set(conf, kv[i], kv[i + 1], e, sizeof e);
    return rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
}

typedef struct batches {
    uint8_t *data[64];
    size_t len[64];
    int32_t count[64];
    int n, records;
} batches_t;

/* Fetches partition @p p of @p topic from offset 0 to its end, one Fetch after another (the mock
 * answers one stored batch per Fetch); keeps copies of the batches in @p out. */
static void fetch_all(kconn_t *c, const char *topic, int32_t p, batches_t *out)
{
    int16_t v = kconn_version(c, KWIRE_API_FETCH, 4, 11);
    int64_t next = 0, hw = -1;
    kwire_wr_t w;
    kwire_wr_init(&w);
    memset(out, 0, sizeof *out);
    while (hw < 0 || next < hw) {
        kwire_fetch_req_partition_t fp = {p, -1, next, -1, 1 << 20};
        kwire_fetch_req_topic_t ft = {topic, &fp, 1};
        kwire_fetch_req_t fr = {10, 1, 4 << 20, 0, &ft, 1, NULL};
        kwire_fetch_resp_t resp;
        kwire_req_hdr_t h = kconn_hdr(c, v);
        const uint8_t *body;
        size_t len;
        ferr_t err;
        kwire_wr_reset(&w);
        CU_ASSERT_EQUAL_FATAL(kwire_fetch_req_write(&w, &h, &fr, &err), FERR_OK);
        CU_ASSERT_EQUAL_FATAL(kconn_call(c, &w, 5000, &body, &len, &err), FERR_OK);
        CU_ASSERT_EQUAL_FATAL(kwire_fetch_resp_decode(body, len, v, &resp, &err), FERR_OK);
        kwire_fetch_partition_t *fp2 = &resp.topics[0].partitions[0];
        CU_ASSERT_EQUAL(fp2->error_code, 0);
        hw = fp2->high_watermark;
        kwire_batch_iter_t it;
        kwire_batch_t b;
        int64_t before = next;
        kwire_batch_iter_init(&it, fp2->records, fp2->records_len);
        while (kwire_batch_next(&it, &b, &err) == KWIRE_ITEM && out->n < 64) {
            CU_ASSERT(b.base_offset == next && kwire_batch_crc_ok(&b));
            out->data[out->n] = malloc(b.len);
            memcpy(out->data[out->n], b.data, b.len);
            out->len[out->n] = b.len;
            out->count[out->n++] = b.record_count;
            out->records += b.record_count;
            next = b.base_offset + b.last_offset_delta + 1;
        }
        kwire_fetch_resp_dispose(&resp);
        CU_ASSERT_FATAL(next > before || next >= hw); /* progress */
    }
    kwire_wr_dispose(&w);
}

static void batches_free(batches_t *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->data[i]);
    memset(b, 0, sizeof *b);
}

/* Appends a Produce request for one rewritten batch to @p w. @returns its correlation id. */
static int32_t produce_req(kconn_t *c, kwire_wr_t *w, const char *topic, int32_t p, const uint8_t *batch, size_t len,
                           int16_t acks)
{
    uint8_t *copy = malloc(len);
    ferr_t err;
    CU_ASSERT_EQUAL(kwire_batch_rewrite(copy, batch, len, 0, -1, -1, -1, -1, &err), FERR_OK);
    kwire_produce_req_partition_t pp = {p, copy, len};
    kwire_produce_req_topic_t pt = {topic, &pp, 1};
    kwire_produce_req_t pr = {acks, 5000, &pt, 1};
    kwire_req_hdr_t h = kconn_hdr(c, kconn_version(c, KWIRE_API_PRODUCE, 3, 8));
    CU_ASSERT_EQUAL(kwire_produce_req_write(w, &h, &pr, &err), FERR_OK);
    free(copy);
    return h.correlation_id;
}

static void mock_produce_source(const char *bootstraps)
{
    rd_kafka_t *rk = mock_producer(bootstraps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
    for (int i = 0; i < MOCK_RECORDS; i++) {
        char v[32];
        int n = snprintf(v, sizeof v, "value-%d", i);
        CU_ASSERT_EQUAL(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("src"), RD_KAFKA_V_PARTITION(i % 2),
                                          RD_KAFKA_V_VALUE(v, (size_t)n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_END),
                        0);
    }
    CU_ASSERT_EQUAL(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* Sends every batch of @p b as its own Produce request, without waiting: the first half one
 * kconn_send each, the rest in one writer and one kconn_send; then reads the answers, which
 * must come in the order sent, each with the base offset that follows the previous batch. */
static void produce_pipelined(kconn_t *c, const batches_t *b)
{
    int32_t corr[64];
    kwire_wr_t w;
    ferr_t err;
    kwire_wr_init(&w);
    for (int i = 0; i < b->n; i++) {
        if (i <= b->n / 2)
            kwire_wr_reset(&w);
        corr[i] = produce_req(c, &w, "dst", 0, b->data[i], b->len[i], -1);
        int32_t last = -1;
        if (i < b->n / 2 || i == b->n - 1) {
            CU_ASSERT_EQUAL(kconn_send(c, &w, 5000, &last, &err), FERR_OK);
            CU_ASSERT_EQUAL(last, corr[i]);
        }
    }
    CU_ASSERT_EQUAL(kconn_inflight(c), (size_t)b->n);
    CU_ASSERT_EQUAL(kconn_call(c, &w, 5000, NULL, NULL, &err), FERR_INVALID); /* requests in flight */
    kwire_wr_reset(&w);
    produce_req(c, &w, "dst", 0, b->data[0], b->len[0], 0);
    CU_ASSERT_EQUAL(kconn_send(c, &w, 5000, NULL, &err), FERR_INVALID); /* acks=0: never answered */
    CU_ASSERT(kconn_ok(c) && kconn_inflight(c) == (size_t)b->n);
    int64_t expect = 0;
    for (int i = 0; i < b->n; i++) {
        const uint8_t *body;
        size_t len;
        int32_t got;
        kwire_produce_resp_t r;
        CU_ASSERT_EQUAL_FATAL(kconn_recv(c, 5000, &body, &len, &got, &err), FERR_OK);
        CU_ASSERT_EQUAL(got, corr[i]);
        CU_ASSERT_EQUAL_FATAL(kwire_produce_resp_decode(body, len, 7, &r, &err), FERR_OK);
        CU_ASSERT(r.topics[0].partitions[0].error_code == 0 && r.topics[0].partitions[0].base_offset == expect);
        expect += b->count[i];
        kwire_produce_resp_dispose(&r);
    }
    CU_ASSERT_EQUAL(kconn_inflight(c), 0);
    CU_ASSERT_EQUAL(kconn_recv(c, 0, NULL, NULL, NULL, &err), FERR_INVALID); /* nothing in flight */
    kwire_wr_dispose(&w);
}

static void test_mock(void)
{
    char e[256], host[64];
    int port;
    ferr_t err;
    rd_kafka_conf_t *oc = rd_kafka_conf_new();
    rd_kafka_conf_set(oc, "log_level", "3", e, sizeof e);
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, oc, e, sizeof e);
    rd_kafka_mock_cluster_t *mc = owner ? rd_kafka_mock_cluster_new(owner, 1) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(mc);
    CU_ASSERT_FATAL(!rd_kafka_mock_topic_create(mc, "src", 2, 1) && !rd_kafka_mock_topic_create(mc, "dst", 2, 1));
    const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
    CU_ASSERT_EQUAL_FATAL(sscanf(bs, "%63[^:]:%d", host, &port), 2);
    mock_produce_source(bs);

    kconn_conf_t conf;
    CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err, KV("client.id", "kconn-test")), FERR_OK);
    kconn_t *c = kconn_open(&conf, host, port, 5000, &err);
    kconn_conf_dispose(&conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* what the 2.0.2 mock offers, met with kwire's ranges */
    CU_ASSERT_EQUAL(kconn_version(c, KWIRE_API_METADATA, 1, 8), 2);
    CU_ASSERT_EQUAL(kconn_version(c, KWIRE_API_FETCH, 4, 11), 11);
    CU_ASSERT_EQUAL(kconn_version(c, KWIRE_API_PRODUCE, 3, 8), 7);
    CU_ASSERT_EQUAL(kconn_version(c, KWIRE_API_PRODUCE, 8, 8), -1);
    CU_ASSERT_EQUAL(kconn_version(c, 999, 0, 5), -1);
    CU_ASSERT_EQUAL(kwire_negotiate(kconn_apiversions(c), KWIRE_API_LIST_OFFSETS), 3);
    CU_ASSERT_EQUAL(kconn_hdr(c, 0).client_id[0], 'k');
    CU_ASSERT(kconn_fd(c) >= 0 && !kconn_pending(c) && kconn_session_end_ms(c) == 0);

    static const char *const topics[] = {"src", "dst"};
    kwire_metadata_resp_t md;
    CU_ASSERT_EQUAL_FATAL(kconn_metadata(c, topics, 2, &md, 5000, &err), FERR_OK);
    CU_ASSERT(md.n_brokers == 1 && md.brokers[0].port == port && md.n_topics == 2);
    for (int t = 0; t < md.n_topics; t++)
        CU_ASSERT(md.topics[t].error_code == 0 && md.topics[t].n_partitions == 2 &&
                  md.topics[t].partitions[0].leader == md.brokers[0].node_id);
    kwire_metadata_resp_dispose(&md);

    batches_t src, back;
    fetch_all(c, "src", 0, &src);
    CU_ASSERT_EQUAL(src.records, MOCK_RECORDS / 2);
    CU_ASSERT(src.n >= 3); /* batch.num.messages=20: several batches to pipeline */
    produce_pipelined(c, &src);
    fetch_all(c, "dst", 0, &back);
    CU_ASSERT(back.records == src.records && back.n == src.n);
    for (int i = 0; i < src.n && i < back.n; i++) /* records and timestamps byte for byte */
        CU_ASSERT(back.len[i] == src.len[i] && !memcmp(back.data[i] + 57, src.data[i] + 57, src.len[i] - 57));
    batches_free(&src);
    batches_free(&back);
    kconn_close(c);
    CU_ASSERT(!kconn_ok(c) && kconn_metadata(c, topics, 1, &md, 100, &err) == FERR_KAFKA && has(&err, "closed"));
    kconn_destroy(c);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
}

/* ---- timeouts and refusals ---- */

static void test_timeouts(void)
{
    int port, refused_port;
    ferr_t err;
    int silent = local_socket(8, &port);   /* the kernel accepts; nobody reads or answers */
    int closed = local_socket(0, &refused_port); /* bound, not listening: connections are refused */
    const char *const *confs[] = {KV("client.id", "x"), KV("security.protocol", "ssl", "ssl.ca.pem", pki.ca_pem)};
    const char *const stage[] = {"no response to ApiVersions within 300 ms", "TLS handshake timed out after 300 ms"};
    for (int i = 0; i < 2; i++) {
        kconn_conf_t conf;
        CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err, confs[i]), FERR_OK);
        int64_t t0 = kutil_now_ms();
        kconn_t *c = kconn_open(&conf, "127.0.0.1", port, 300, &err);
        int64_t took = kutil_now_ms() - t0;
        CU_ASSERT_PTR_NULL(c);
        CU_ASSERT(err.code == FERR_TIMEOUT && has(&err, stage[i]) && has(&err, "127.0.0.1:"));
        CU_ASSERT(took >= 295 && took < 2000);
        t0 = kutil_now_ms();
        c = kconn_open(&conf, "127.0.0.1", refused_port, 5000, &err);
        CU_ASSERT(!c && err.code == FERR_KAFKA && has(&err, "Connection refused"));
        CU_ASSERT(kutil_now_ms() - t0 < 2000);
        kconn_conf_dispose(&conf);
    }
    close(silent);
    close(closed);
}

/* ---- broken peers, and a response that comes late ---- */

static void test_broken_peers(void)
{
    static const struct {
        fb_mode_t mode;
        const char *why;
    } cases[] = {{FB_BAD_CORR, "where 2 (Metadata v8) was due"},
                 {FB_HUGE, "above the limit of 100000000 (receive.message.max.bytes)"},
                 {FB_CLOSE, "connection closed by the broker"}};
    ferr_t err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t f = fake_new(NULL, NULL);
        f.mode = cases[i].mode;
        fake_start(&f);
        CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, KV("client.id", "x")), FERR_KAFKA);
        CU_ASSERT(has(&err, cases[i].why));
        fake_stop(&f);
    }
}

/* Appends an all-topics Metadata request to @p w. @returns its correlation id. */
static int32_t metadata_req(kconn_t *c, kwire_wr_t *w)
{
    kwire_metadata_req_t mr = {NULL, -1, false};
    kwire_req_hdr_t h = kconn_hdr(c, kconn_version(c, KWIRE_API_METADATA, 1, 8));
    CU_ASSERT_EQUAL(kwire_metadata_req_write(w, &h, &mr, NULL), FERR_OK);
    return h.correlation_id;
}

static void fake_hold(fake_t *f)
{
    pthread_mutex_lock(&f->lock);
    f->released = false;
    pthread_mutex_unlock(&f->lock);
}

/* A response that comes late (nothing lost), then a broker that stops reading: a request larger
 * than the socket buffers cannot be written in time. */
static void test_late_and_stuck(void)
{
    ferr_t err;
    fake_t f = fake_new(NULL, NULL);
    f.mode = FB_HOLD;
    fake_start(&f);
    int small = 65536; /* small buffers on both sides (accepted sockets inherit the listener's) */
    setsockopt(f.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    kconn_conf_t conf;
    CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err, KV("socket.send.buffer.bytes", "65536")), FERR_OK);
    CU_ASSERT_EQUAL(conf.send_buffer, 65536);
    kconn_t *c = kconn_open(&conf, "localhost", f.port, 5000, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    kwire_wr_t w;
    kwire_wr_init(&w);
    int32_t sent = metadata_req(c, &w), corr;
    CU_ASSERT_EQUAL(kconn_send(c, &w, 5000, NULL, &err), FERR_OK);
    const uint8_t *body;
    size_t len;
    int64_t t0 = kutil_now_ms();
    CU_ASSERT_EQUAL(kconn_recv(c, 100, &body, &len, &corr, &err), FERR_TIMEOUT);
    CU_ASSERT(kutil_now_ms() - t0 >= 95 && has(&err, "no response to Metadata within 100 ms"));
    CU_ASSERT(kconn_ok(c) && kconn_inflight(c) == 1 && !kconn_pending(c));
    fake_release(&f);
    CU_ASSERT_EQUAL(kconn_recv(c, 5000, &body, &len, &corr, &err), FERR_OK);
    CU_ASSERT(corr == sent && kconn_inflight(c) == 0 && len > 0);

    fake_hold(&f);
    kwire_wr_reset(&w);
    metadata_req(c, &w);
    CU_ASSERT_EQUAL(kconn_send(c, &w, 5000, NULL, &err), FERR_OK); /* the fake now waits, reading nothing */
    size_t big = 8 << 20;
    uint8_t *junk = calloc(1, big);
    kwire_produce_req_partition_t pp = {0, junk, big};
    kwire_produce_req_topic_t pt = {"t1", &pp, 1};
    kwire_produce_req_t pr = {-1, 5000, &pt, 1};
    kwire_req_hdr_t h = kconn_hdr(c, 7);
    kwire_wr_reset(&w);
    CU_ASSERT_EQUAL(kwire_produce_req_write(&w, &h, &pr, &err), FERR_OK);
    free(junk);
    t0 = kutil_now_ms();
    CU_ASSERT_EQUAL(kconn_send(c, &w, 200, NULL, &err), FERR_TIMEOUT);
    CU_ASSERT(kutil_now_ms() - t0 >= 195 && has(&err, "sending a request timed out after 200 ms"));
    CU_ASSERT(!kconn_ok(c) && kconn_recv(c, 0, NULL, NULL, NULL, &err) == FERR_KAFKA);
    kwire_wr_dispose(&w);
    kconn_destroy(c);
    fake_release(&f);
    kconn_conf_dispose(&conf);
    fake_stop(&f);
}

/* ---- frames split across reads, larger than a read, several in one read ---- */

static void test_reassembly(void)
{
    ferr_t err;
    fake_t f = fake_new(NULL, NULL);
    f.mode = FB_DRIBBLE;
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, NULL), FERR_OK);
    fake_stop(&f);

    kconn_conf_t conf;
    static const char *const topics[] = {"big"};
    kwire_metadata_resp_t md;
    CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err, NULL), FERR_OK);
    f = fake_new(NULL, NULL);
    f.mode = FB_BIG;
    fake_start(&f);
    kconn_t *c = kconn_open(&conf, "localhost", f.port, 5000, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(kconn_metadata(c, topics, 1, &md, 5000, &err), FERR_OK);
    CU_ASSERT(md.n_topics == 1 && md.topics[0].n_partitions == BIG_PARTITIONS);
    kwire_metadata_resp_dispose(&md);
    kconn_destroy(c);
    fake_stop(&f);

    /* two requests in one send, two answers in one write: the second is there without reading */
    f = fake_new(NULL, NULL);
    f.mode = FB_PAIR;
    fake_start(&f);
    c = kconn_open(&conf, "localhost", f.port, 5000, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    kwire_wr_t w;
    kwire_wr_init(&w);
    int32_t first = metadata_req(c, &w), second = metadata_req(c, &w);
    CU_ASSERT_EQUAL(kconn_send(c, &w, 5000, NULL, &err), FERR_OK);
    const uint8_t *body;
    size_t len;
    int32_t corr;
    CU_ASSERT(!kconn_pending(c) && kconn_inflight(c) == 2);
    struct pollfd p = {.fd = kconn_fd(c), .events = POLLIN};
    CU_ASSERT_EQUAL(poll(&p, 1, 5000), 1);
    CU_ASSERT(kconn_recv(c, 5000, &body, &len, &corr, &err) == FERR_OK && corr == first);
    CU_ASSERT(kconn_pending(c));
    CU_ASSERT(kconn_recv(c, 0, &body, &len, &corr, &err) == FERR_OK && corr == second);
    CU_ASSERT(!kconn_pending(c) && kconn_inflight(c) == 0);
    kwire_wr_dispose(&w);
    kconn_destroy(c);
    kconn_conf_dispose(&conf);
    fake_stop(&f);
}

/* ---- kconn_open_fd: a socketpair with the broker's bytes written in advance ---- */

static void test_open_fd(void)
{
    int sv[2];
    ferr_t err;
    kconn_conf_t conf;
    kwire_wr_t w;
    kwire_api_version_t keys[] = {{KWIRE_API_METADATA, 1, 8}, {KWIRE_API_API_VERSIONS, 0, 2}};
    kwire_apiversions_resp_t av = {0, keys, 2, 0, NULL};
    kwire_metadata_resp_t md = {0};
    CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err, NULL), FERR_OK);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    kwire_wr_init(&w);
    kwire_apiversions_resp_write(&w, 1, 2, &av, NULL); /* correlation ids count from 1 */
    kwire_metadata_resp_write(&w, 2, 8, &md, NULL);
    kwire_metadata_resp_write(&w, 9, 8, &md, NULL); /* not the id that is due */
    CU_ASSERT(write(sv[1], w.buf, w.len) == (ssize_t)w.len);
    kconn_t *c = kconn_open_fd(&conf, sv[0], "pair", 1, 1000, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(kconn_version(c, KWIRE_API_METADATA, 1, 8) == 8 && kconn_version(c, KWIRE_API_FETCH, 4, 11) == -1);
    CU_ASSERT_EQUAL(kconn_metadata(c, NULL, -1, &md, 1000, &err), FERR_OK);
    kwire_metadata_resp_dispose(&md);
    CU_ASSERT_EQUAL(kconn_metadata(c, NULL, -1, &md, 1000, &err), FERR_KAFKA);
    CU_ASSERT(has(&err, "pair:1: response with correlation id 9 where 3 (Metadata v8) was due"));
    kconn_destroy(c);
    /* the broker hangs up during ApiVersions */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv + 0) == 0);
    close(sv[1]);
    CU_ASSERT_PTR_NULL(kconn_open_fd(&conf, sv[0], "pair", 1, 1000, &err));
    CU_ASSERT(err.code == FERR_KAFKA && has(&err, "pair:1: "));
    kwire_wr_dispose(&w);
    kconn_conf_dispose(&conf);
}

/* ---- ApiVersions: v2, or what an older broker says it speaks ---- */

static void test_apiversions_fallback(void)
{
    ferr_t err;
    for (int max = 2; max >= 0; max--) {
        fake_t f = fake_new(NULL, NULL);
        f.apiv_max = max;
        fake_start(&f);
        CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, NULL), FERR_OK);
        fake_stop(&f);
        CU_ASSERT_EQUAL(f.apiv_seen[2], 1); /* asked v2 first */
        CU_ASSERT_EQUAL(f.apiv_seen[max], 1);
        CU_ASSERT_EQUAL(f.conns, 1);
    }
}

/* ---- TLS ---- */

static void test_tls(void)
{
    ferr_t err;
    fake_t f = fake_new(server_tls(pki.server, NULL), NULL);
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, KV("security.protocol", "SSL", "ssl.ca.pem", pki.ca_pem)),
                    FERR_OK);
    CU_ASSERT(fake_sni_is(&f, "localhost"));
    /* the CA from a file; an IP address is checked against the IP SAN and sent without SNI */
    CU_ASSERT_EQUAL(try_fake(&f, "127.0.0.1", &err, KV("security.protocol", "ssl", "ssl.ca.location", pki.ca_file)),
                    FERR_OK);
    CU_ASSERT(fake_sni_is(&f, ""));
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, KV("security.protocol", "ssl", "ssl.ca.pem", pki.other_ca_pem)),
                    FERR_KAFKA);
    CU_ASSERT(has(&err, "TLS handshake failed: certificate verify failed: unable to get local issuer certificate"));
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "ssl", "ssl.ca.pem", pki.other_ca_pem,
                                "enable.ssl.certificate.verification", "false")),
                    FERR_OK);
    fake_stop(&f);
    CU_ASSERT_EQUAL(f.conns, 4);

    /* a certificate for another host: refused with https (the default), accepted with none */
    f = fake_new(server_tls(pki.elsewhere, NULL), NULL);
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, KV("security.protocol", "ssl", "ssl.ca.pem", pki.ca_pem)),
                    FERR_KAFKA);
    CU_ASSERT(has(&err, "certificate verify failed: hostname mismatch"));
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "ssl", "ssl.ca.pem", pki.ca_pem,
                                "ssl.endpoint.identification.algorithm", "none")),
                    FERR_OK);
    fake_stop(&f);

    /* a broker that wants a client certificate */
    f = fake_new(server_tls(pki.server, pki.ca), NULL);
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err, KV("security.protocol", "ssl", "ssl.ca.pem", pki.ca_pem)),
                    FERR_KAFKA);
    CU_ASSERT(has(&err, "localhost:"));
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "ssl", "ssl.ca.pem", pki.ca_pem, "ssl.certificate.pem",
                                pki.client_pem, "ssl.key.pem", pki.client_key_pem, "ssl.key.password", KEYPASS)),
                    FERR_OK);
    fake_stop(&f);
    CU_ASSERT_EQUAL(f.conns, 2);
    kconn_conf_t conf;
    CU_ASSERT_EQUAL(conf_of(&conf, &err,
                            KV("security.protocol", "ssl", "ssl.certificate.pem", pki.client_pem, "ssl.key.pem",
                               pki.client_key_pem, "ssl.key.password", "wrong")),
                    FERR_INVALID);
    CU_ASSERT(has(&err, "consumer.ssl.key.pem: cannot read the private key"));
    CU_ASSERT_EQUAL(conf_of(&conf, &err,
                            KV("security.protocol", "ssl", "ssl.certificate.pem", pki.ca_pem, "ssl.key.pem",
                               pki.client_key_pem, "ssl.key.password", KEYPASS)),
                    FERR_INVALID);
    CU_ASSERT(has(&err, "the key does not match the certificate"));
}

/* ---- SASL ---- */

static void test_sasl(void)
{
    static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    ferr_t err;
    fake_t f = fake_new(NULL, "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512");
    fake_start(&f);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                                 KV("security.protocol", "sasl_plaintext", "sasl.mechanism", mechs[i], "sasl.username",
                                    USER, "sasl.password", PASS)),
                        FERR_OK);
        CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                                 KV("security.protocol", "sasl_plaintext", "sasl.mechanisms", mechs[i],
                                    "sasl.username", USER, "sasl.password", "wrong")),
                        FERR_UNAUTHORIZED);
        CU_ASSERT(has(&err, "SASL authentication failed: SASL_AUTHENTICATION_FAILED: Authentication failed"));
    }
    CU_ASSERT(has(&err, "invalid credentials"));
    kconn_conf_t conf;
    CU_ASSERT_EQUAL_FATAL(conf_of(&conf, &err,
                                  KV("security.protocol", "sasl_plaintext", "sasl.mechanism", "SCRAM-SHA-256",
                                     "sasl.username", USER, "sasl.password", PASS)),
                          FERR_OK);
    kconn_t *c = kconn_open(&conf, "localhost", f.port, 5000, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(kconn_session_end_ms(c) > kutil_now_ms() + 3000000); /* SaslAuthenticate v1: one hour */
    kconn_destroy(c);
    kconn_conf_dispose(&conf);
    fake_stop(&f);
    CU_ASSERT(f.auth_ok == 4 && f.auth_failed == 3);

    /* SaslAuthenticate v0 only, a mechanism the broker does not enable, a forged server-final */
    f = fake_new(NULL, "PLAIN,SCRAM-SHA-256");
    f.auth_max = 0;
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "sasl_plaintext", "sasl.mechanism", "SCRAM-SHA-256",
                                "sasl.username", USER, "sasl.password", PASS)),
                    FERR_OK);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "sasl_plaintext", "sasl.mechanism", "SCRAM-SHA-512",
                                "sasl.username", USER, "sasl.password", PASS)),
                    FERR_UNAUTHORIZED);
    CU_ASSERT(has(&err, "UNSUPPORTED_SASL_MECHANISM (the broker offers: PLAIN, SCRAM-SHA-256)"));
    fake_stop(&f);
    f = fake_new(NULL, "SCRAM-SHA-512");
    f.mode = FB_BAD_SIG;
    fake_start(&f);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "sasl_plaintext", "sasl.mechanism", "SCRAM-SHA-512",
                                "sasl.username", USER, "sasl.password", PASS)),
                    FERR_UNAUTHORIZED);
    CU_ASSERT(has(&err, "the server signature is wrong (the broker's server-final message)"));
    fake_stop(&f);

    /* sasl_ssl: TLS first, then SASL inside it */
    f = fake_new(server_tls(pki.server, NULL), "SCRAM-SHA-512,PLAIN");
    fake_start(&f);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                                 KV("security.protocol", "SASL_SSL", "ssl.ca.pem", pki.ca_pem, "sasl.mechanism",
                                    i ? "PLAIN" : "SCRAM-SHA-512", "sasl.username", USER, "sasl.password", PASS)),
                        FERR_OK);
    CU_ASSERT_EQUAL(try_fake(&f, "localhost", &err,
                             KV("security.protocol", "SASL_SSL", "ssl.ca.pem", pki.ca_pem, "sasl.mechanism",
                                "SCRAM-SHA-512", "sasl.username", USER, "sasl.password", "wrong")),
                    FERR_UNAUTHORIZED);
    fake_stop(&f);
    CU_ASSERT(f.auth_ok == 2 && f.auth_failed == 1);
}

/* ---- the configuration ---- */

static void test_conf_layers(void)
{
    kconn_conf_t c;
    ferr_t err;
    CU_ASSERT_EQUAL(kconn_conf_from(NULL, NULL, NULL, NULL, NULL, &c, &err), FERR_OK);
    CU_ASSERT(c.security == KCONN_PLAINTEXT && c.mechanism == KCONN_MECH_NONE && c.verify_certificate &&
              c.verify_hostname && c.connect_timeout_ms == 30000 && c.request_timeout_ms == 60000 &&
              c.max_response == 100000000 && !c.client_id && !c.keepalive);
    CU_ASSERT_EQUAL(kconn_conf_set(&c, "client.id", "late", NULL, &err), FERR_INVALID); /* finished */
    kconn_conf_dispose(&c);

    props_t *common = props_new(), *layer = props_new();
    props_set(common, "security.protocol", "SASL_SSL");
    props_set(common, "sasl.mechanism", "GSSAPI");
    props_set(common, "sasl.username", "worker");
    props_set(common, "client.id", "c0");
    props_set(common, "ssl.ca.pem", pki.ca_pem);
    props_set(common, "socket.connection.setup.timeout.ms", "0x2710"); /* base 0, as librdkafka */
    props_set(layer, "sasl.mechanisms", "PLAIN");
    props_set(layer, "sasl.password", "worker-secret");
    props_set(layer, "ssl.endpoint.identification.algorithm", "NONE");
    props_set(layer, "receive.message.max.bytes", "5000");
    props_set(layer, "broker.address.family", "v4");
    props_set(layer, "max.poll.records", "5"); /* not a connection setting: ignored */
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:i}", "dest.kafka.sasl.mechanism", "SCRAM-SHA-512",
                            "dest.kafka.sasl.username", "connector", "dest.kafka.sasl.password", "connector-secret",
                            "producer.override.client.id", "c3", "dest.kafka.socket.timeout.ms", 5);
    static const char *const dest[] = {"dest.kafka.", "producer.override.", NULL};
    CU_ASSERT_EQUAL_FATAL(kconn_conf_from(common, layer, "producer.", cfg, dest, &c, &err), FERR_OK);
    CU_ASSERT(c.security == KCONN_SASL_SSL && c.mechanism == KCONN_MECH_SCRAM_SHA_512);
    CU_ASSERT(!strcmp(c.username, "connector") && !strcmp(c.password, "connector-secret") && !strcmp(c.client_id, "c3"));
    CU_ASSERT(c.verify_certificate && !c.verify_hostname && c.connect_timeout_ms == 10000);
    CU_ASSERT(c.max_response == 5000 && c.address_family == AF_INET && c.request_timeout_ms == 60000);
    CU_ASSERT_PTR_NOT_NULL(c._ssl_ctx);
    kconn_conf_dispose(&c);
    CU_ASSERT(!c.username && !c.password && !c._ssl_ctx);

    /* the layer alone: PLAIN with the worker's user from common */
    CU_ASSERT_EQUAL(kconn_conf_from(common, layer, "producer.", NULL, dest, &c, &err), FERR_OK);
    CU_ASSERT(c.mechanism == KCONN_MECH_PLAIN && !strcmp(c.username, "worker") && !strcmp(c.client_id, "c0"));
    kconn_conf_dispose(&c);

    /* a connector may not make the worker read a file, nor change the destination's security */
    json_t *bad = json_pack("{s:s}", "dest.kafka.ssl.ca.location", "/etc/passwd");
    CU_ASSERT_EQUAL(kconn_conf_from(common, layer, "producer.", bad, dest, &c, &err), FERR_INVALID);
    CU_ASSERT(has(&err, "dest.kafka.ssl.ca.location") && has(&err, "a connector config may not set it"));
    json_decref(bad);
    bad = json_pack("{s:s, s:s}", "src.kafka.security.protocol", "ssl", "src.kafka.ssl.ca.pem", pki.ca_pem);
    static const char *const src[] = {"src.kafka.", "src.consumer.", NULL};
    CU_ASSERT_EQUAL(kconn_conf_from(NULL, NULL, NULL, bad, src, &c, &err), FERR_OK); /* the source's own */
    CU_ASSERT(c.security == KCONN_SSL && c._ssl_ctx);
    kconn_conf_dispose(&c);
    json_decref(bad);
    json_decref(cfg);
    props_destroy(common);
    props_destroy(layer);
}

static void test_conf_refusals(void)
{
    static const struct {
        const char *kv[9];
        ferr_code_t code;
        const char *why;
    } cases[] = {
        {{"security.protocol", "sasl_kerberos"}, FERR_UNSUPPORTED, "consumer.security.protocol=sasl_kerberos"},
        {{"security.protocol", "sasl_plaintext"}, FERR_UNSUPPORTED, "sasl.mechanism (default)=GSSAPI"},
        {{"security.protocol", "sasl_ssl", "sasl.mechanism", "OAUTHBEARER"}, FERR_UNSUPPORTED,
         "consumer.sasl.mechanism=OAUTHBEARER"},
        {{"security.protocol", "sasl_ssl", "sasl.mechanism", "plain"}, FERR_UNSUPPORTED, "sasl.mechanism=plain"},
        {{"security.protocol", "ssl", "ssl.keystore.location", "/k.p12", "ssl.keystore.password", "x"},
         FERR_UNSUPPORTED, "consumer.ssl.keystore.location: not supported"},
        {{"security.protocol", "ssl", "ssl.engine.location", "/e.so"}, FERR_UNSUPPORTED, "ssl.engine.location"},
        {{"security.protocol", "ssl", "ssl.providers", "legacy"}, FERR_UNSUPPORTED, "ssl.providers"},
        {{"security.protocol", "sasl_plaintext", "sasl.mechanism", "PLAIN", "sasl.username", "u"}, FERR_INVALID,
         "sasl.username and sasl.password must be set"},
        {{"enable.ssl.certificate.verification", "maybe"}, FERR_INVALID, "true or false"},
        {{"socket.connection.setup.timeout.ms", "999"}, FERR_INVALID, "1000..2147483647"},
        {{"receive.message.max.bytes", "12kb"}, FERR_INVALID, "receive.message.max.bytes"},
        {{"ssl.endpoint.identification.algorithm", "dns"}, FERR_INVALID, "https or none"},
        {{"security.protocol", "ssl", "ssl.ca.pem", "not a certificate"}, FERR_INVALID,
         "consumer.ssl.ca.pem: no certificate"},
        {{"security.protocol", "ssl", "ssl.ca.location", "/nonexistent/ca.pem"}, FERR_INVALID,
         "consumer.ssl.ca.location: /nonexistent/ca.pem: No such file or directory"},
        {{"security.protocol", "ssl", "ssl.cipher.suites", "NO-SUCH-CIPHER"}, FERR_INVALID, "ssl.cipher.suites"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kconn_conf_t c;
        ferr_t err = {0};
        CU_ASSERT_EQUAL(conf_of(&c, &err, cases[i].kv), cases[i].code);
        CU_ASSERT(has(&err, cases[i].why));
        CU_ASSERT(!c._ssl_ctx && !c.username);
        kconn_conf_dispose(&c);
    }
    /* refused keys that would not be used: fine without TLS or SASL */
    kconn_conf_t c;
    ferr_t err;
    CU_ASSERT_EQUAL(conf_of(&c, &err, KV("ssl.keystore.location", "/k.p12", "sasl.mechanism", "GSSAPI")), FERR_OK);
    kconn_conf_dispose(&c);
    CU_ASSERT_EQUAL(conf_of(&c, &err, NULL), FERR_OK);
    CU_ASSERT_EQUAL(kconn_open(&(kconn_conf_t){0}, "localhost", 1, 100, &err), NULL); /* not finished */
    CU_ASSERT_EQUAL(err.code, FERR_INVALID);
    kconn_conf_dispose(&c);
}

static void test_pki_init(void) { pki_init(); }
static void test_pki_free(void) { pki_free(); }

int cu_register(void)
{
    signal(SIGPIPE, SIG_IGN); /* the fake broker writes to clients that hung up */
    static const cu_test_t tests[] = {
        {"certificates for the TLS tests", test_pki_init},
        {"conf: defaults, layers (later wins), connector keys through cpolicy", test_conf_layers},
        {"conf: unsupported mechanisms, keystores, engines; bad values", test_conf_refusals},
        {"mock cluster: versions, Metadata, Fetch, pipelined Produce in order", test_mock},
        {"timeouts (silent broker, plaintext and TLS) and refused connections", test_timeouts},
        {"broken peers: out of order, oversized, hang-up", test_broken_peers},
        {"a late response (nothing lost); a broker that stops reading (the send times out)", test_late_and_stuck},
        {"frames in 1-byte pieces, above the read chunk, two in one read (kconn_pending)", test_reassembly},
        {"kconn_open_fd on a socketpair: handshake, Metadata, an id out of order, a hang-up", test_open_fd},
        {"ApiVersions v2, falling back to what the broker speaks", test_apiversions_fallback},
        {"TLS: CA file and PEM, wrong CA, host names, verification off, client certificate", test_tls},
        {"SASL: PLAIN, SCRAM-SHA-256/512, wrong passwords, forged server, over TLS", test_sasl},
        {"free the certificates", test_pki_free},
    };
    return cu_add_tests("kconn", tests, sizeof tests / sizeof tests[0]);
}
