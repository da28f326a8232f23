/* jaas_test: sasl.jaas.config as Kafka's JaasConfig parses it (tokens, quoting, escapes,
 * comments, the one-entry rule, Kafka's messages), its translation into librdkafka properties
 * for each login module, the mechanism check, and that no message ever shows a value. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/jaas.h"

#define PLAIN "org.apache.kafka.common.security.plain.PlainLoginModule"
#define SCRAM "org.apache.kafka.common.security.scram.ScramLoginModule"
#define OAUTH "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"

static jaas_t parse_ok(const char *text)
{
    jaas_t j;
    char why[1024] = "";
    int rc = jaas_parse(text, &j, why, sizeof why);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        fprintf(stderr, "\n  unexpected: %s\n  for: %s\n", why, text);
    return j;
}

/* jaas_parse must fail with exactly @p msg (a prefix when @p prefix). */
static void parse_fails(const char *text, const char *msg, int prefix)
{
    jaas_t j;
    char why[1024] = "";
    CU_ASSERT_EQUAL(jaas_parse(text, &j, why, sizeof why), -1);
    CU_ASSERT_PTR_NULL(j.module);
    int ok = prefix ? !strncmp(why, msg, strlen(msg)) : !strcmp(why, msg);
    CU_ASSERT(ok);
    if (!ok)
        fprintf(stderr, "\n  want: %s\n  got:  %s\n  for:  %s\n", msg, why, text);
}

static void test_grammar(void)
{
    jaas_t j = parse_ok(PLAIN " required username=\"alice\" password=\"a-secret\";");
    CU_ASSERT_STRING_EQUAL(j.module, PLAIN);
    CU_ASSERT_EQUAL(j.flag, JAAS_REQUIRED);
    CU_ASSERT_EQUAL(j.n, 2);
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "alice");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "a-secret");
    CU_ASSERT_PTR_NULL(jaas_option(&j, "other"));
    jaas_dispose(&j);

    /* unquoted words (letters, digits, . - _ $), any whitespace, flags in any case, no options */
    j = parse_ok("\n\t" SCRAM "\r\n  OPTIONAL\n username=svc_user-1.$x\tpassword = 'pw' ;  ");
    CU_ASSERT_EQUAL(j.flag, JAAS_OPTIONAL);
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "svc_user-1.$x");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "pw");
    jaas_dispose(&j);
    j = parse_ok(PLAIN " Requisite;");
    CU_ASSERT_EQUAL(j.flag, JAAS_REQUISITE);
    CU_ASSERT_EQUAL(j.n, 0);
    jaas_dispose(&j);
    j = parse_ok(PLAIN " sufficient;");
    CU_ASSERT_EQUAL(j.flag, JAAS_SUFFICIENT);
    jaas_dispose(&j);

    /* a repeated key keeps its first position and the last value (Java's HashMap.put) */
    j = parse_ok(PLAIN " required username=a password=p username=b;");
    CU_ASSERT_EQUAL(j.n, 2);
    CU_ASSERT_STRING_EQUAL(j.keys[0], "username");
    CU_ASSERT_STRING_EQUAL(j.values[0], "b");
    jaas_dispose(&j);

    /* comments of both kinds, and a lone '/' comments out the rest of its line */
    j = parse_ok("// the broker user\n" PLAIN " /* flag: */ required\n"
                 "username=\"u\" / password is on the next line\n password=\"p\"; // done");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "u");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "p");
    jaas_dispose(&j);

    /* a quoted class name and a quoted key are strings like any other */
    j = parse_ok("\"" PLAIN "\" required \"username\"=u password=p;");
    CU_ASSERT_STRING_EQUAL(j.module, PLAIN);
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "u");
    jaas_dispose(&j);
}

static void test_quoting_and_escapes(void)
{
    jaas_t j = parse_ok(PLAIN " required username=\"u\" password=\"a \\\"q\\\" \\\\ b;c=d\";");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "a \"q\" \\ b;c=d");
    jaas_dispose(&j);
    j = parse_ok(PLAIN " required username='single \"inner\"' password='tab\\there\\nnl\\rcr\\b\\f\\a\\v';");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "single \"inner\"");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "tab\there\nnl\rcr\b\f\a\v");
    jaas_dispose(&j);
    /* octal escapes: \101 = 'A', \7 then a non-digit, \477 is \47 then '7'; \351 is U+00E9 in UTF-8;
     * a backslash before another character yields it; raw UTF-8 passes through */
    j = parse_ok(PLAIN " required username=\"\\101\\7x\\477\\351\" password=\"\\q\\'caf\xc3\xa9\";");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "A\7x'7\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "q'caf\xc3\xa9");
    jaas_dispose(&j);
    /* a string ends at a line end (StreamTokenizer), so the ';' on the next line closes the entry */
    j = parse_ok(PLAIN " required username=u password=\"unterminated\n;");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "password"), "unterminated");
    jaas_dispose(&j);
    /* bytes from 0x80 up are word characters */
    j = parse_ok(PLAIN " required username=j\xc3\xb6rg password=p;");
    CU_ASSERT_STRING_EQUAL(jaas_option(&j, "username"), "j\xc3\xb6rg");
    jaas_dispose(&j);
}

static void test_errors(void)
{
    parse_fails("", "Login module not specified in JAAS config", 0);
    parse_fails("  // nothing\n/* at all */", "Login module not specified in JAAS config", 0);
    parse_fails(PLAIN, "Login module control flag not specified in JAAS config", 0);
    parse_fails(PLAIN " =", "Login module control flag is not available in the JAAS config", 0);
    parse_fails(PLAIN " mandatory;", "Invalid login module control flag in JAAS config", 1);
    parse_fails(PLAIN " required username=\"u\" password=\"p\"", "JAAS config entry not terminated by semi-colon", 0);
    parse_fails(PLAIN " required; " SCRAM " required;",
                "JAAS config property contains 2 login modules, should be 1 module", 0);
    parse_fails(PLAIN " required; x required; y optional;",
                "JAAS config property contains 3 login modules, should be 1 module", 0);
    parse_fails(PLAIN " required username;", "Value not specified for key 'username' in JAAS config", 0);
    parse_fails(PLAIN " required username=;", "Value not specified for key 'username' in JAAS config", 0);
    /* a number is no value (StreamTokenizer parses numbers): quote it */
    parse_fails(PLAIN " required username=12345 password=p;",
                "Value not specified for key 'username' in JAAS config", 0);
    parse_fails(PLAIN " required username=u,password=p;", "an option name is expected at character", 1);
    parse_fails("x required 5=\"v\";", "an option name is expected at character 12 in JAAS config", 1); /* fuzz */
    parse_fails(PLAIN " required username=u password p;", "Value not specified for key 'password' in JAAS config", 0);
    parse_fails("42 required;", "Login module not specified in JAAS config (expected a class name at character 1)", 0);
    /* an escaped NUL cannot reach librdkafka */
    parse_fails(PLAIN " required username=u password=\"a\\0b\";", "a value at character", 1);
    /* an unterminated block comment ends the text */
    parse_fails(PLAIN " required username=u /* password=p;", "JAAS config entry not terminated by semi-colon", 0);
    /* a backslash at the very end is Java's U+FFFF, then the text ends */
    parse_fails(PLAIN " required username=u password=\"p\\", "JAAS config entry not terminated by semi-colon", 0);
}

/* Every failing translation and parse: a value never appears in the message. */
static void test_messages_hide_values(void)
{
    const char *texts[] = {
        PLAIN " required username=u password=my S3CR3T;",
        PLAIN " required username=u password=\"S3CR3T\"",
        PLAIN " S3CR3T;",
        "S3CR3T required;",
        "S3CR3T",
        PLAIN " required username=u password=S3CR3T extra S3CR3Tb;",
        PLAIN " required username=u password=\"S3CR3T\"; " PLAIN " required;",
        SCRAM " required username=u password=S3CR3T tokenauth=true;",
        OAUTH " required unsecuredLoginStringClaim_sub=\"S3CR3T x\";",
        OAUTH " required clientId=S3CR3T clientSecret=S3CR3T;",
        "com.sun.security.auth.module.Krb5LoginModule required keyTab=S3CR3T principal=S3CR3T;",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char why[1024] = "";
        props_t *p = props_new();
        CU_ASSERT_EQUAL(jaas_translate(texts[i], NULL, p, why, sizeof why), -1);
        CU_ASSERT_PTR_NULL(strstr(why, "S3CR3T"));
        if (strstr(why, "S3CR3T"))
            fprintf(stderr, "\n  leaks: %s\n", why);
        CU_ASSERT_EQUAL(props_count(p), 0);
        props_destroy(p);
    }
}

/* Translation to librdkafka keys; @p want: key, value pairs, NULL-terminated. */
static void expect_translation(const char *text, const char *mechanism, const char *const *want)
{
    char why[1024] = "";
    props_t *p = props_new();
    int rc = jaas_translate(text, mechanism, p, why, sizeof why);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        fprintf(stderr, "\n  unexpected: %s\n", why);
    size_t n = 0;
    for (; want[n]; n += 2) {
        const char *got = props_get(p, want[n]);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got && strcmp(got, want[n + 1])) {
            CU_FAIL("value differs");
            fprintf(stderr, "\n  %s: want %s got %s\n", want[n], want[n + 1], got);
        }
    }
    CU_ASSERT_EQUAL(props_count(p), n / 2);
    props_destroy(p);
}

static void expect_refusal(const char *text, const char *mechanism, const char *part)
{
    char why[1024] = "";
    CU_ASSERT_EQUAL(jaas_translate(text, mechanism, NULL, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, part));
    if (!strstr(why, part))
        fprintf(stderr, "\n  want part: %s\n  got: %s\n", part, why);
}

static void test_translate(void)
{
    static const char *const plain[] = {"sasl.username", "alice", "sasl.password", "pw", NULL};
    expect_translation(PLAIN " required username=\"alice\" password=\"pw\";", "PLAIN", plain);
    /* the module does not decide the mechanism: Kafka's Plain and SCRAM modules both only carry
     * the credentials, whichever mechanism sasl.mechanism names */
    expect_translation(SCRAM " required username=\"alice\" password=\"pw\";", "SCRAM-SHA-512", plain);
    expect_translation(SCRAM " required username=\"alice\" password=\"pw\";", "SCRAM-SHA-256", plain);
    expect_translation(PLAIN " required username=alice password=pw;", "SCRAM-SHA-256", plain);
    expect_translation(PLAIN " required username=alice password=pw;", NULL, plain);
    expect_translation(SCRAM " required username=alice password=pw tokenauth=false serviceName=kafka;", "PLAIN",
                       plain);

    static const char *const oauth[] = {"enable.sasl.oauthbearer.unsecure.jwt", "true", "sasl.oauthbearer.config",
                                        "principal=alice scope=read,write lifeSeconds=600 extension_traceId=abc",
                                        NULL};
    expect_translation(OAUTH " required unsecuredLoginStringClaim_sub=\"alice\" "
                             "unsecuredLoginListClaim_scope=\",read,write\" unsecuredLoginLifetimeSeconds=\"600\" "
                             "unsecuredLoginExtension_traceId=\"abc\";",
                       "OAUTHBEARER", oauth);
    static const char *const oauth2[] = {"enable.sasl.oauthbearer.unsecure.jwt", "true", "sasl.oauthbearer.config",
                                         "principalClaimName=user principal=bob scopeClaimName=roles scope=a,b",
                                         NULL};
    expect_translation(OAUTH " required unsecuredLoginPrincipalClaimName=user unsecuredLoginStringClaim_user=bob "
                             "unsecuredLoginScopeClaimName=roles unsecuredLoginListClaim_roles=\"|a|b\";",
                       "OAUTHBEARER", oauth2);

    expect_refusal(PLAIN " required username=u password=p;", "GSSAPI",
                   "sasl.mechanism is GSSAPI (Kafka's default when it is not set), which PlainLoginModule cannot "
                   "serve: set sasl.mechanism=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    expect_refusal(OAUTH " required unsecuredLoginStringClaim_sub=a;", "PLAIN", "use OAUTHBEARER");
    expect_refusal(PLAIN " required username=u password=p;", "OAUTHBEARER", "does not go with PlainLoginModule");
    expect_refusal(PLAIN " required username=u;", "PLAIN", "PlainLoginModule needs the options username and password");
    expect_refusal(SCRAM " required username=u password=p tokenauth=\"TRUE\";", "SCRAM-SHA-256",
                   "delegation tokens");
    expect_refusal("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\";", "GSSAPI",
                   "sasl.kerberos.keytab");
    expect_refusal("com.ibm.security.auth.module.Krb5LoginModule required;", "GSSAPI", "Krb5LoginModule (Kerberos)");
    expect_refusal("org.example.CustomLoginModule required;", "PLAIN",
                   "login module org.example.CustomLoginModule cannot be used with librdkafka");
    expect_refusal("PlainLoginModule required username=u password=p;", "PLAIN",
                   "login module PlainLoginModule cannot be used"); /* Kafka needs the class's full name too */
    expect_refusal(OAUTH " required clientId=c clientSecret=s;", "OAUTHBEARER", "sasl.oauthbearer.method=oidc");
    expect_refusal(OAUTH " required unsecuredLoginStringClaim_sub=a unsecuredLoginNumberClaim_n=\"1\";", "OAUTHBEARER",
                   "unsecuredLoginNumberClaim_n of OAuthBearerLoginModule cannot be translated");
    expect_refusal(OAUTH " required unsecuredLoginStringClaim_sub=a unsecuredLoginExtension_bad1=x;", "OAUTHBEARER",
                   "letters only");
    expect_refusal(OAUTH " required unsecuredLoginStringClaim_iss=x;", "OAUTHBEARER",
                   "needs the option unsecuredLoginStringClaim_sub");
    expect_refusal(OAUTH " required unsecuredLoginStringClaim_sub=a unsecuredLoginLifetimeSeconds=soon;",
                   "OAUTHBEARER", "number of seconds");
    expect_refusal(PLAIN " required username=u password=p", "PLAIN", "not terminated by semi-colon");
}

static void test_conf_set(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ferr_t err = {0};
    CU_ASSERT_EQUAL(jaas_conf_set(conf, PLAIN " required username=\"svc\" password=\"pw\";", "src.kafka.", &err),
                    FERR_OK);
    char buf[64];
    size_t sz = sizeof buf;
    CU_ASSERT_EQUAL(rd_kafka_conf_get(conf, "sasl.username", buf, &sz), RD_KAFKA_CONF_OK);
    CU_ASSERT_STRING_EQUAL(buf, "svc");
    CU_ASSERT_EQUAL(jaas_conf_set(conf, "com.sun.security.auth.module.Krb5LoginModule required;", "dest.kafka.", &err),
                    FERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Invalid value [hidden] for configuration dest.kafka.sasl.jaas.config: "
                                           "Krb5LoginModule"));
    rd_kafka_conf_destroy(conf);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"grammar (JaasConfig)", test_grammar},
        {"quoting and escapes (StreamTokenizer)", test_quoting_and_escapes},
        {"Kafka's errors", test_errors},
        {"messages never show a value", test_messages_hide_values},
        {"translation to librdkafka keys", test_translate},
        {"jaas_conf_set", test_conf_set},
    };
    return cu_add_tests("jaas", tests, sizeof tests / sizeof tests[0]);
}
