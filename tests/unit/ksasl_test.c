/* Unit tests for ksasl (proto/ksasl.c): the RFC 7677 SCRAM-SHA-256 example exchange byte for
 * byte, SCRAM-SHA-512 against a server written here with OpenSSL (it recovers the client key
 * from the proof, as a broker does), every refusal (nonce, iterations, extensions, base64,
 * order, server errors, wrong signatures), user name escaping, PLAIN and the nonce helper. */
#include "proto/ksasl.h"

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/cu.h"

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                                   \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void test_rfc7677(void)
{
    ferr_t err;
    ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", RFC_NONCE, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    size_t n;
    const char *m = ksasl_scram_client_first(s, &n);
    CU_ASSERT_STRING_EQUAL(m, "n,,n=user,r=" RFC_NONCE);
    CU_ASSERT_EQUAL(n, strlen(m));
    CU_ASSERT_EQUAL(ksasl_scram_client_final(s, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &m, &n, &err), FERR_OK);
    CU_ASSERT_STRING_EQUAL(m, RFC_CLIENT_FINAL);
    CU_ASSERT_EQUAL(n, strlen(RFC_CLIENT_FINAL));
    CU_ASSERT_EQUAL(ksasl_scram_verify(s, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), &err), FERR_OK);
    CU_ASSERT_EQUAL(ksasl_scram_verify(s, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), &err), FERR_INVALID);
    ksasl_scram_destroy(s);
}

/* The broker's side of SCRAM-SHA-512, from its stored credential. */
typedef struct server {
    unsigned char salt[16], salted[64], stored[64], skey[64];
    int iter;
    char first[256];
    char final[256];
} server_t;

static void server_init(server_t *sv, const char *password, const char *client_nonce, int iter)
{
    const EVP_MD *md = EVP_sha512();
    unsigned char ckey[64];
    unsigned int n;
    for (int i = 0; i < 16; i++)
        sv->salt[i] = (unsigned char)(i * 37 + 1);
    sv->iter = iter;
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), sv->salt, 16, iter, md, 64, sv->salted);
    HMAC(md, sv->salted, 64, (const unsigned char *)"Client Key", 10, ckey, &n);
    EVP_Digest(ckey, 64, sv->stored, NULL, md, NULL);
    HMAC(md, sv->salted, 64, (const unsigned char *)"Server Key", 10, sv->skey, &n);
    unsigned char b64[32];
    EVP_EncodeBlock(b64, sv->salt, 16);
    snprintf(sv->first, sizeof sv->first, "r=%sSERVERPART,s=%s,i=%d,x=ignored-extension", client_nonce, b64, iter);
}

/* Checks the client-final's proof; @returns 1 and fills sv->final with "v=..." if it is right. */
static int server_check(server_t *sv, const char *client_first, const char *client_final)
{
    const EVP_MD *md = EVP_sha512();
    const char *p = strstr(client_final, ",p=");
    char auth[1024];
    unsigned char csig[64], proof[96], ckey[64], stored[64], ssig[64], b64[100];
    unsigned int n;
    if (!p)
        return 0;
    int alen = snprintf(auth, sizeof auth, "%s,%s,%.*s", client_first + 3, sv->first, (int)(p - client_final),
                        client_final);
    HMAC(md, sv->stored, 64, (unsigned char *)auth, (size_t)alen, csig, &n);
    if (EVP_DecodeBlock(proof, (const unsigned char *)p + 3, (int)strlen(p + 3)) < 64)
        return 0;
    for (int i = 0; i < 64; i++)
        ckey[i] = proof[i] ^ csig[i];
    EVP_Digest(ckey, 64, stored, NULL, md, NULL);
    if (memcmp(stored, sv->stored, 64) != 0)
        return 0;
    HMAC(md, sv->skey, 64, (unsigned char *)auth, (size_t)alen, ssig, &n);
    EVP_EncodeBlock(b64, ssig, 64);
    snprintf(sv->final, sizeof sv->final, "v=%s", b64);
    return 1;
}

static void test_sha512_against_server(void)
{
    ferr_t err;
    char nonce[40];
    CU_ASSERT_EQUAL_FATAL(ksasl_scram_nonce(nonce, sizeof nonce, &err), FERR_OK);
    ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_512, "al,ice=", "s3cr\xc3\xa9t", nonce, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    server_t sv;
    server_init(&sv, "s3cr\xc3\xa9t", nonce, 8192);
    size_t n;
    const char *first = ksasl_scram_client_first(s, &n), *final;
    char firstcopy[256];
    snprintf(firstcopy, sizeof firstcopy, "%s", first);
    CU_ASSERT_PTR_NOT_NULL(strstr(first, "n=al=2Cice=3D,r="));
    CU_ASSERT_EQUAL(ksasl_scram_client_final(s, sv.first, strlen(sv.first), &final, &n, &err), FERR_OK);
    CU_ASSERT_EQUAL_FATAL(server_check(&sv, firstcopy, final), 1);
    CU_ASSERT_EQUAL(ksasl_scram_verify(s, sv.final, strlen(sv.final), &err), FERR_OK);
    ksasl_scram_destroy(s);

    /* the wrong password: the server refuses the proof; a forged server signature is caught */
    s = ksasl_scram_new(KSASL_SCRAM_SHA_512, "al,ice=", "wrong", nonce, &err);
    first = ksasl_scram_client_first(s, &n);
    snprintf(firstcopy, sizeof firstcopy, "%s", first);
    CU_ASSERT_EQUAL(ksasl_scram_client_final(s, sv.first, strlen(sv.first), &final, &n, &err), FERR_OK);
    CU_ASSERT_EQUAL(server_check(&sv, firstcopy, final), 0);
    CU_ASSERT_EQUAL(ksasl_scram_verify(s, sv.final, strlen(sv.final), &err), FERR_UNAUTHORIZED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "signature is wrong"));
    ksasl_scram_destroy(s);
}

/* A new SHA-256 exchange with the RFC nonce, fed @p server_first. */
static ferr_code_t final_with(const char *server_first, ferr_t *err)
{
    ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", RFC_NONCE, err);
    const char *m;
    size_t n;
    ferr_code_t rc = ksasl_scram_client_final(s, server_first, strlen(server_first), &m, &n, err);
    ksasl_scram_destroy(s);
    return rc;
}

static void test_server_first_refusals(void)
{
    static const struct {
        const char *msg, *why;
    } bad[] = {
        {"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},
        {"r=XOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},
        {"r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},
        {"r=rOprNGfwEbeRWgbNEkqOab\x01,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "not printable"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "iterations"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=16385", "iterations"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096", "iterations"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=40x6", "iterations"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "iterations"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "base64"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096", "base64"},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=,i=4096", "base64"},
        {"m=ext,r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"},
        {"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOab,i=4096", "not r=...,s=...,i=..."},
        {"r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==", "not r=...,s=...,i=..."},
        {"", "not r=...,s=...,i=..."},
    };
    ferr_t err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(final_with(bad[i].msg, &err), FERR_INVALID);
        if (!strstr(err.msg, bad[i].why))
            fprintf(stderr, "\n[%zu] %s: %s\n", i, bad[i].msg, err.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].why));
    }
    ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", RFC_NONCE, &err);
    const char *m;
    size_t n;
    CU_ASSERT_EQUAL(ksasl_scram_client_final(s, "r=a\0b", 5, &m, &n, &err), FERR_INVALID);
    CU_ASSERT_PTR_NULL(m);
    /* one error ends the exchange, even for a good message after it */
    CU_ASSERT_EQUAL(ksasl_scram_client_final(s, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &m, &n, &err),
                    FERR_INVALID);
    ksasl_scram_destroy(s);
}

static void test_server_final_refusals(void)
{
    static const char *const bad[] = {"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", /* one bit off */
                                      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",  /* bad base64 */
                                      "v=bm90IGl0", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "",
                                      "e=other-error"};
    static const ferr_code_t want[] = {FERR_UNAUTHORIZED, FERR_UNAUTHORIZED, FERR_UNAUTHORIZED, FERR_INVALID,
                                       FERR_INVALID, FERR_UNAUTHORIZED};
    ferr_t err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ksasl_scram_t *s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", RFC_NONCE, &err);
        const char *m;
        size_t n;
        CU_ASSERT_EQUAL(ksasl_scram_verify(s, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), &err), FERR_INVALID);
        ksasl_scram_destroy(s); /* verify before client-final is out of order, and ends it */
        s = ksasl_scram_new(KSASL_SCRAM_SHA_256, "user", "pencil", RFC_NONCE, &err);
        CU_ASSERT_EQUAL(ksasl_scram_client_final(s, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &m, &n, &err),
                        FERR_OK);
        CU_ASSERT_EQUAL(ksasl_scram_verify(s, bad[i], strlen(bad[i]), &err), want[i]);
        ksasl_scram_destroy(s);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "the server refused: other-error"));
}

static void test_plain_and_args(void)
{
    ferr_t err;
    char *m;
    size_t n;
    CU_ASSERT_EQUAL(ksasl_plain("user", "pass", &m, &n, &err), FERR_OK);
    CU_ASSERT(n == 10 && memcmp(m, "\0user\0pass", 10) == 0);
    free(m);
    CU_ASSERT_EQUAL(ksasl_plain("", "pass", &m, &n, &err), FERR_INVALID);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NULL(ksasl_scram_new(KSASL_SCRAM_SHA_256, "", "p", RFC_NONCE, &err));
    CU_ASSERT_PTR_NULL(ksasl_scram_new(KSASL_SCRAM_SHA_256, "u", "p", "has,comma", &err));
    CU_ASSERT_PTR_NULL(ksasl_scram_new(KSASL_SCRAM_SHA_256, "u", "p", "", &err));
    CU_ASSERT_PTR_NULL(ksasl_scram_new(KSASL_SCRAM_SHA_256, "u", "p", "sp ace", &err));
    ksasl_scram_destroy(NULL);
    char a[33], b[33];
    CU_ASSERT_EQUAL(ksasl_scram_nonce(a, 32, &err), FERR_INVALID);
    CU_ASSERT_EQUAL(ksasl_scram_nonce(a, sizeof a, &err), FERR_OK);
    CU_ASSERT_EQUAL(ksasl_scram_nonce(b, sizeof b, &err), FERR_OK);
    CU_ASSERT_EQUAL(strlen(a), 32);
    CU_ASSERT(strcmp(a, b) != 0);
    CU_ASSERT_PTR_NULL(strchr(a, ','));
    CU_ASSERT_STRING_EQUAL(ksasl_mech_name(KSASL_SCRAM_SHA_512), "SCRAM-SHA-512");
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"SCRAM-SHA-256: the RFC 7677 exchange", test_rfc7677},
        {"SCRAM-SHA-512 against a server built here; wrong password, forged signature", test_sha512_against_server},
        {"server-first refusals: nonce, iterations, salt, extensions, order", test_server_first_refusals},
        {"server-final refusals: signature, base64, e=, order", test_server_final_refusals},
        {"PLAIN, argument checks, nonces", test_plain_and_args},
    };
    return cu_add_tests("ksasl", tests, sizeof tests / sizeof tests[0]);
}
