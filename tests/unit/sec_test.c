/* sec_test: REST basic authentication (rest/sec.c): which Authorization values pass, the
 * internal credential, and the start-up errors for the credentials file and TLS keys. TLS
 * itself is exercised end to end by tests/integration/test_rest_security.py. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rest/sec.h"

static char cred_path[64];

static wconf_t *conf_with(const char *const kv[][2], size_t n)
{
    static const char *const required[][2] = {
        {"bootstrap.servers", "localhost:9092"},
        {"group.id", "g"},
        {"config.storage.topic", "c"},
        {"offset.storage.topic", "o"},
        {"status.storage.topic", "s"},
        {"key.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"},
        {"value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"},
        {"zookeeper.connect", "localhost:2181"},
        {"zookeeper.set.acl", "false"}, /* basic auth and HTTPS need it said (wconf_test) */
    };
    props_t *p = props_new();
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        props_set(p, required[i][0], required[i][1]);
    for (size_t i = 0; i < n; i++)
        props_set(p, kv[i][0], kv[i][1]);
    ferr_t err = {0};
    wconf_t *c = wconf_new(p, &err);
    props_destroy(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    return c;
}

static void write_creds(const char *text)
{
    snprintf(cred_path, sizeof cred_path, "/tmp/ferry-sec-test-%d", (int)getpid());
    FILE *f = fopen(cred_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static sec_t *auth_sec(const char *internal_user, ferr_t *err)
{
    const char *const kv[][2] = {
        {"rest.extension.classes", "x.Other, " SEC_BASIC_AUTH_CLASS},
        {"rest.basic.auth.credentials.file", cred_path},
        {"rest.basic.auth.internal.user", internal_user ? internal_user : ""},
    };
    wconf_t *c = conf_with(kv, 3);
    sec_t *s = sec_new(c, err);
    wconf_destroy(c);
    return s;
}

static int check(const sec_t *s, const char *value)
{
    return sec_auth_check(s, value, value ? strlen(value) : 0);
}

static void test_basic_auth(void)
{
    write_creds("# users\nconnect: internal-pw\nalice: wonder:land\nbob=\n");
    ferr_t err = {0};
    sec_t *s = auth_sec(NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(sec_auth_enabled(s));
    CU_ASSERT_TRUE(check(s, "Basic YWxpY2U6d29uZGVyOmxhbmQ="));   /* alice:wonder:land */
    CU_ASSERT_TRUE(check(s, "basic  YWxpY2U6d29uZGVyOmxhbmQ= ")); /* scheme is case-insensitive */
    CU_ASSERT_TRUE(check(s, "Basic Ym9iOg=="));                   /* bob with an empty password */
    CU_ASSERT_FALSE(check(s, "Basic YWxpY2U6d29uZGVy"));          /* alice:wonder */
    CU_ASSERT_FALSE(check(s, "Basic Ym9i"));                      /* bob, no colon */
    CU_ASSERT_FALSE(check(s, "Basic Y29ubmVjdDppbnRlcm5hbC1wdw"));  /* not padded */
    CU_ASSERT_FALSE(check(s, "Basic !!!!"));
    CU_ASSERT_FALSE(check(s, "Basic "));
    CU_ASSERT_FALSE(check(s, "Bearer YWxpY2U6d29uZGVyOmxhbmQ="));
    CU_ASSERT_FALSE(check(s, NULL));
    /* the first user of the file is the internal credential: connect:internal-pw */
    CU_ASSERT_STRING_EQUAL(sec_internal_auth(s), "Basic Y29ubmVjdDppbnRlcm5hbC1wdw==");
    CU_ASSERT_TRUE(check(s, sec_internal_auth(s)));
    sec_destroy(s);

    s = auth_sec("alice", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(sec_internal_auth(s), "Basic YWxpY2U6d29uZGVyOmxhbmQ=");
    sec_destroy(s);
    CU_ASSERT_PTR_NULL(auth_sec("nobody", &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "rest.basic.auth.internal.user"));
    unlink(cred_path);
}

static void test_off_and_errors(void)
{
    ferr_t err = {0};
    wconf_t *c = conf_with(NULL, 0);
    sec_t *s = sec_new(c, &err);
    wconf_destroy(c);
    CU_ASSERT_FALSE(sec_auth_enabled(s));
    CU_ASSERT_TRUE(check(s, NULL));
    CU_ASSERT_PTR_NULL(sec_internal_auth(s));
    CU_ASSERT_PTR_NULL(sec_server_ctx(s));
    sec_destroy(s);

    write_creds("# nothing but comments\n");
    CU_ASSERT_PTR_NULL(auth_sec(NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "rest.basic.auth.credentials.file"));
    unlink(cred_path);

    const char *const https[][2] = {
        {"listeners", "https://127.0.0.1:0"},
        {"listeners.https.ssl.keystore.type", "PKCS12"},
        {"listeners.https.ssl.keystore.location", "/dev/null"},
    };
    c = conf_with(https, 3);
    CU_ASSERT_PTR_NULL(sec_new(c, &err));
    wconf_destroy(c);
    CU_ASSERT_STRING_EQUAL(err.msg, "Invalid value PKCS12 for configuration listeners.https.ssl.keystore.type: "
                                    "ferry reads PEM key and trust stores only (convert with openssl and set PEM)");
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"basic auth: accepted and refused Authorization values, internal credential", test_basic_auth},
        {"off by default; credentials file and keystore type errors", test_off_and_errors},
    };
    return cu_add_tests("sec", tests, sizeof tests / sizeof tests[0]);
}
