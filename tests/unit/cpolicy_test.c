/* Unit tests for worker/cpolicy: the client settings a connector config may carry. Every
 * property class the security review found (command, code, files, other hosts, logging) is
 * refused under every prefix and policy; the tuning settings pass; Kafka Connect's None,
 * Principal and Allowlist policies refuse with Kafka Connect's message; the destination side
 * keeps the worker's transport security; a library named in plugin.library.paths is never
 * loaded, not even by validation; and kutil_conf_apply_prefixed() refuses what cpolicy does. */
#include "worker/cpolicy.h"

#include <CUnit/Basic.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/cu.h"
#include "worker/kutil.h"

static const char *const all_prefixes[] = {"src.kafka.", "src.consumer.", "dest.kafka.", "producer.override."};

/* cpolicy_check on a one-key config. */
static int check1(const cpolicy_t *pol, const char *key, const char *value, char *msg, size_t len)
{
    json_t *cfg = json_pack("{s:s}", key, value);
    int rc = cpolicy_check(pol, cfg, key, msg, len);
    json_decref(cfg);
    return rc;
}

static void test_dangerous_refused_everywhere(void)
{
    static const struct {
        const char *key, *value, *why;
    } bad[] = {
        {"sasl.kerberos.kinit.cmd", "touch /tmp/x", "run a command"},
        {"sasl.kerberos.keytab", "/etc/krb5.keytab", "Kerberos"},
        {"sasl.kerberos.principal", "x; touch /tmp/x", "Kerberos"},
        {"plugin.library.paths", "/tmp/x.so", "load code"},
        {"ssl.engine.location", "/tmp/x.so", "load code"},
        {"ssl.engine.id", "dynamic", "load code"},
        {"ssl.providers", "legacy", "load code"},
        {"ssl.ca.location", "/etc/shadow", "file"},
        {"ssl.key.location", "/etc/shadow", "file"},
        {"ssl.certificate.location", "/etc/shadow", "file"},
        {"ssl.crl.location", "/etc/shadow", "file"},
        {"ssl.keystore.location", "/etc/shadow", "file"},
        {"offset.store.path", "/tmp", "file"},
        {"sasl.oauthbearer.token.endpoint.url", "http://169.254.169.254/", "another host"},
        {"debug", "all", "logging"},
        {"log_level", "7", "logging"},
        {"log.connection.close", "false", "logging"},
        {"opaque", "1", "C API"},
        {"dr_msg_cb", "1", "C API"},
        {"transactional.id", "x", "ferry sets it"},
        {"PLUGIN.LIBRARY.PATHS", "/tmp/x.so", "load code"},
    };
    cpolicy_t all = {CPOLICY_ALL, NULL};
    char msg[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t p = 0; p < 4; p++) {
            char key[256];
            snprintf(key, sizeof key, "%s%s", all_prefixes[p], bad[i].key);
            msg[0] = '\0';
            CU_ASSERT_EQUAL(check1(&all, key, bad[i].value, msg, sizeof msg), -1);
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, key));
            if (!strstr(msg, bad[i].why))
                fprintf(stderr, "%s: %s\n", key, msg);
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, bad[i].why));
        }
}

static void test_tuning_allowed(void)
{
    static const char *const ok[][2] = {
        {"fetch.wait.max.ms", "50"}, {"queued.max.messages.kbytes", "65536"}, {"linger.ms", "20"},
        {"compression.type", "lz4"}, {"batch.size", "1000000"}, {"acks", "all"}, {"sasl.username", "u"},
        {"sasl.password", "p"}, {"ssl.key.pem", "-----BEGIN PRIVATE KEY-----"}, {"client.rack", "r1"},
        {"max.poll.records", "10"}, /* Java-only: ignored, as before */
        /* Java's JAAS config: translated to librdkafka's keys (jaas.h) */
        {"sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=u password=p;"},
    };
    cpolicy_t all = {CPOLICY_ALL, NULL};
    char msg[1024];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        for (size_t p = 0; p < 4; p++) {
            char key[256];
            snprintf(key, sizeof key, "%s%s", all_prefixes[p], ok[i][0]);
            msg[0] = '\0';
            int rc = check1(&all, key, ok[i][1], msg, sizeof msg);
            if (rc)
                fprintf(stderr, "%s: %s\n", key, msg);
            CU_ASSERT_EQUAL(rc, 0);
        }
    CU_ASSERT_EQUAL(check1(NULL, "topic.whitelist", "x", msg, sizeof msg), 0); /* not a client key */
}

static void test_values_checked(void)
{
    char msg[1024];
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.compression.type", "zstdd", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "zstdd"));
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.sasl.mechanism", "GSSAPI", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Kerberos"));
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.sasl.mechanisms", "SCRAM-SHA-512", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.sasl.oauthbearer.method", "oidc", msg, sizeof msg), -1);
    /* "default" passes ferry's rule; Debian's librdkafka 2.0.2 (built without libcurl) then
     * refuses the property itself, which must surface as its own message */
    if (check1(NULL, "src.kafka.sasl.oauthbearer.method", "default", msg, sizeof msg))
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not supported in this build"));
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.acks", "0", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.acks", "1", msg, sizeof msg), 0);
    /* a secret is never echoed */
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.sasl.password", "hunter2", msg, sizeof msg), 0);
    json_t *cfg = json_pack("{s:s}", "src.kafka.ssl.key.password", "hunter2");
    CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, "src.kafka.ssl.key.password", msg, sizeof msg), 0);
    json_decref(cfg);
}

static void test_destination_side(void)
{
    char msg[1024];
    /* the source is the connector's own cluster, the destination the worker's */
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.security.protocol", "sasl_ssl", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.ssl.endpoint.identification.algorithm", "none", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.bootstrap.servers", "h:9092", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(NULL, "dest.kafka.bootstrap.servers", "evil:9092", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "worker's cluster"));
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.metadata.broker.list", "evil:9092", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.metadata.broker.list", "evil:9092", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(check1(NULL, "dest.kafka.security.protocol", "plaintext", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.enable.ssl.certificate.verification", "false", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(check1(NULL, "dest.kafka.ssl.ca.pem", "x", msg, sizeof msg), -1);
    /* a mechanism change on the destination only with the connector's own credentials */
    CU_ASSERT_EQUAL(check1(NULL, "dest.kafka.sasl.mechanism", "PLAIN", msg, sizeof msg), -1);
    json_t *cfg = json_pack("{s:s,s:s,s:s}", "dest.kafka.sasl.mechanism", "PLAIN", "producer.override.sasl.username",
                            "c", "dest.kafka.sasl.password", "p");
    CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, "dest.kafka.sasl.mechanism", msg, sizeof msg), 0);
    json_decref(cfg);
}

/* sasl.jaas.config in a connector config: checked at validation and translated when applied. */
static void test_jaas(void)
{
    char msg[1024];
    CU_ASSERT_EQUAL(check1(NULL, "src.kafka.sasl.jaas.config",
                           "com.sun.security.auth.module.Krb5LoginModule required keyTab=\"/etc/k\";", msg, sizeof msg),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Invalid value [hidden] for configuration src.kafka.sasl.jaas.config: "
                                       "Krb5LoginModule (Kerberos) cannot be translated"));
    CU_ASSERT_EQUAL(check1(NULL, "producer.override.sasl.jaas.config", "Secr3t required", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NULL(strstr(msg, "Secr3t"));
    /* the mechanism set beside it, under the same prefix or the same side's other one */
    json_t *cfg = json_pack("{s:s,s:s}", "src.kafka.sasl.mechanism", "GSSAPI", "src.consumer.sasl.jaas.config",
                            "org.apache.kafka.common.security.plain.PlainLoginModule required username=u password=p;");
    CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, "src.consumer.sasl.jaas.config", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "sasl.mechanism is GSSAPI"));
    json_decref(cfg);
    /* credentials in a JAAS config let the destination's mechanism change */
    cfg = json_pack("{s:s,s:s}", "dest.kafka.sasl.mechanism", "SCRAM-SHA-256", "producer.override.sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=c password=p;");
    CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, "dest.kafka.sasl.mechanism", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, "producer.override.sasl.jaas.config", msg, sizeof msg), 0);
    /* applied as librdkafka's keys */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ferr_t err = {0};
    CU_ASSERT_EQUAL(kutil_conf_apply_prefixed(conf, cfg, "producer.override.", &err), FERR_OK);
    char buf[64];
    size_t sz = sizeof buf;
    CU_ASSERT_EQUAL(rd_kafka_conf_get(conf, "sasl.username", buf, &sz), RD_KAFKA_CONF_OK);
    CU_ASSERT_STRING_EQUAL(buf, "c");
    rd_kafka_conf_destroy(conf);
    json_decref(cfg);
    /* the Principal policy lets it through, as Kafka Connect's does */
    cpolicy_t principal = {CPOLICY_PRINCIPAL, NULL};
    CU_ASSERT_EQUAL(check1(&principal, "src.kafka.sasl.jaas.config",
                           "org.apache.kafka.common.security.plain.PlainLoginModule required username=u password=p;",
                           msg, sizeof msg), 0);
}

static void test_policies(void)
{
    char msg[1024];
    cpolicy_kind_t k;
    CU_ASSERT_EQUAL(cpolicy_parse("None", &k), 0);
    CU_ASSERT_EQUAL(k, CPOLICY_NONE);
    CU_ASSERT_EQUAL(cpolicy_parse("org.apache.kafka.connect.connector.policy.PrincipalConnectorClientConfigOverridePolicy", &k), 0);
    CU_ASSERT_EQUAL(k, CPOLICY_PRINCIPAL);
    CU_ASSERT_EQUAL(cpolicy_parse("AllConnectorClientConfigOverridePolicy", &k), 0);
    CU_ASSERT_EQUAL(k, CPOLICY_ALL);
    CU_ASSERT_EQUAL(cpolicy_parse("Allowlist", &k), 0);
    CU_ASSERT_EQUAL(k, CPOLICY_ALLOWLIST);
    CU_ASSERT_EQUAL(cpolicy_parse("Some", &k), -1);
    CU_ASSERT_EQUAL(cpolicy_parse("", &k), -1);

    cpolicy_t none = {CPOLICY_NONE, NULL};
    CU_ASSERT_EQUAL(check1(&none, "producer.override.linger.ms", "5", msg, sizeof msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, "The 'None' policy does not allow 'linger.ms' to be overridden in the connector configuration.");
    CU_ASSERT_EQUAL(check1(&none, "src.consumer.max.poll.records", "5", msg, sizeof msg), -1);

    cpolicy_t principal = {CPOLICY_PRINCIPAL, NULL};
    CU_ASSERT_EQUAL(check1(&principal, "src.kafka.sasl.username", "u", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(&principal, "src.kafka.security.protocol", "sasl_ssl", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(&principal, "producer.override.linger.ms", "5", msg, sizeof msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, "The 'Principal' policy does not allow 'linger.ms' to be overridden in the connector configuration.");
    /* the fixed list still applies under the policy */
    CU_ASSERT_EQUAL(check1(&principal, "dest.kafka.security.protocol", "plaintext", msg, sizeof msg), -1);

    const char *const allow[] = {"linger.ms", "plugin.library.paths", NULL};
    cpolicy_t al = {CPOLICY_ALLOWLIST, allow};
    CU_ASSERT_EQUAL(check1(&al, "producer.override.linger.ms", "5", msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(check1(&al, "producer.override.batch.size", "5", msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "'Allowlist' policy"));
    /* an operator's allow-list cannot open what the fixed list refuses */
    CU_ASSERT_EQUAL(check1(&al, "producer.override.plugin.library.paths", "/tmp/x.so", msg, sizeof msg), -1);
}

/* A shared library whose constructor writes a marker file: neither validation nor
 * kutil_conf_apply_prefixed() may ever let librdkafka load it. Built with the system cc. */
static void test_library_never_loaded(void)
{
    char dir[] = "/tmp/cpolicy_test.XXXXXX";
    if (!mkdtemp(dir)) {
        CU_FAIL("mkdtemp");
        return;
    }
    char src[512], so[512], marker[512], cmd[2048];
    snprintf(src, sizeof src, "%s/m.c", dir);
    snprintf(so, sizeof so, "%s/m.so", dir);
    snprintf(marker, sizeof marker, "%s/loaded", dir);
    FILE *f = fopen(src, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "#include <stdio.h>\n__attribute__((constructor)) static void m(void) { FILE *f = fopen(\"%s\", \"w\"); if (f) fclose(f); }\n", marker);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -o %s %s", so, src);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    /* the harness itself works: dlopen does create the marker */
    void *h = dlopen(so, RTLD_NOW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    dlclose(h);
    CU_ASSERT_EQUAL_FATAL(access(marker, F_OK), 0);
    unlink(marker);

    char msg[1024];
    for (size_t p = 0; p < 4; p++) {
        char key[256];
        snprintf(key, sizeof key, "%splugin.library.paths", all_prefixes[p]);
        json_t *cfg = json_pack("{s:s}", key, so);
        CU_ASSERT_EQUAL(cpolicy_check(NULL, cfg, key, msg, sizeof msg), -1);
        rd_kafka_conf_t *conf = kutil_conf_new("127.0.0.1:1");
        ferr_t err = {0};
        CU_ASSERT_EQUAL(kutil_conf_apply_prefixed(conf, cfg, all_prefixes[p], &err), FERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "load code"));
        rd_kafka_conf_destroy(conf);
        json_decref(cfg);
    }
    CU_ASSERT_NOT_EQUAL(access(marker, F_OK), 0);
    unlink(so);
    unlink(src);
    rmdir(dir);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"dangerous properties refused under every prefix", test_dangerous_refused_everywhere},
        {"tuning properties allowed", test_tuning_allowed},
        {"values checked by librdkafka and by rule", test_values_checked},
        {"destination keeps the worker's transport security", test_destination_side},
        {"sasl.jaas.config translated", test_jaas},
        {"None, Principal, All, Allowlist", test_policies},
        {"a plugin library is never loaded", test_library_never_loaded},
    };
    return cu_add_tests("cpolicy", tests, sizeof tests / sizeof tests[0]);
}
