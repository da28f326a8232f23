/* jclient: Java client keys translated for librdkafka, one worker-config layer at a time.
 * See jclient.h.
 *
 * Each Java key is either translated (a rule below), consumed by a translation (the store
 * types and passwords), or passed on unchanged (everything else: most keys mean the same to
 * librdkafka). Messages name the Java key the operator wrote, with its prefix. */
#include "worker/jclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>

#include "worker/jaas.h"
#include "worker/wconf.h"

typedef enum { FMT_UNKNOWN = 0, FMT_PEM, FMT_PKCS12, FMT_JKS } fmt_t;

static const char *const fmt_names[] = {"unknown", "PEM", "PKCS12", "JKS"};

/* What a store file holds, from its first bytes. @returns 0, or -1 with errno (unreadable). */
static int sniff(const char *path, fmt_t *fmt)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static const unsigned char jks[] = {0xFE, 0xED, 0xFE, 0xED}, jceks[] = {0xCE, 0xCE, 0xCE, 0xCE};
    unsigned char buf[16384];
    size_t n = fread(buf, 1, sizeof buf, f);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e) {
        errno = e;
        return -1;
    }
    *fmt = FMT_UNKNOWN;
    if (n >= 4 && (!memcmp(buf, jks, 4) || !memcmp(buf, jceks, 4)))
        *fmt = FMT_JKS;
    else if (memmem(buf, n, "-----BEGIN ", 11))
        *fmt = FMT_PEM;
    else if (n >= 2 && buf[0] == 0x30 && (buf[1] & 0x80)) /* a DER SEQUENCE: PKCS#12 */
        *fmt = FMT_PKCS12;
    return 0;
}

static int is_sasl(const props_t *layer, const props_t *parent)
{
    const char *p = props_get(layer, "security.protocol");
    if (!p && parent)
        p = props_get(parent, "security.protocol");
    return p && !strncasecmp(p, "SASL_", 5);
}

/* The layer's value of @p key, else the parent's. */
static const char *inherited(const props_t *layer, const props_t *parent, const char *key)
{
    const char *v = props_get(layer, key);
    return v || !parent ? v : props_get(parent, key);
}

/* "/etc/kafka/ts.jks" -> "/etc/kafka/ts" + ext */
static void replace_ext(char *out, size_t len, const char *path, const char *ext)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    snprintf(out, len, "%.*s%s", (int)n, path, ext);
}

typedef struct {
    const props_t *layer, *parent;
    const char *origin;
    props_t *out, *notes;
    ferr_t *err;
} xl_t;

static void emit(xl_t *x, const char *key, const char *value, const char *from)
{
    props_set(x->out, key, value);
    if (from) {
        char k[256], f[256];
        snprintf(k, sizeof k, "%s%s", x->origin, key);
        snprintf(f, sizeof f, "%s%s", x->origin, from);
        props_set(x->notes, k, f);
    }
}

static void dropped(xl_t *x, const char *key)
{
    char k[256];
    snprintf(k, sizeof k, "%s%s", x->origin, key);
    props_set(x->notes, k, "");
}

static ferr_code_t invalid(xl_t *x, const char *key, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ferr_code_t invalid(xl_t *x, const char *key, const char *value, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return ferr_set(x->err, FERR_INVALID, "Invalid value %s for configuration %s%s: %s",
                    wconf_is_secret(key) ? "[hidden]" : value, x->origin, key, why);
}

/* The format of a store ("keystore", "truststore"): what the file holds, which its *.type key
 * (the layer's, else the top level's) must agree with. Java's JKS and PKCS12 types read both
 * kinds of file, so those two agree with each other. */
static ferr_code_t store_format(xl_t *x, const char *store, fmt_t *fmt)
{
    char loc_key[64], type_key[64];
    snprintf(loc_key, sizeof loc_key, "ssl.%s.location", store);
    snprintf(type_key, sizeof type_key, "ssl.%s.type", store);
    const char *path = props_get(x->layer, loc_key), *type = inherited(x->layer, x->parent, type_key);
    fmt_t want = FMT_UNKNOWN;
    if (type) {
        for (int i = FMT_PEM; i <= FMT_JKS; i++)
            if (!strcasecmp(type, fmt_names[i]))
                want = (fmt_t)i;
        if (!strcasecmp(type, "JCEKS"))
            want = FMT_JKS;
        if (!want)
            return invalid(x, type_key, type, "ferry's Kafka clients read PKCS12 and PEM stores");
    }
    if (sniff(path, fmt))
        return invalid(x, loc_key, path, "cannot read the file: %s", strerror(errno));
    if (!*fmt)
        return invalid(x, loc_key, path, "the file is neither a PEM, a PKCS12 nor a JKS store");
    int java_pair = (want == FMT_JKS || want == FMT_PKCS12) && (*fmt == FMT_JKS || *fmt == FMT_PKCS12);
    if (want && want != *fmt && !java_pair)
        return invalid(x, loc_key, path, "%s is %s, but the file holds a %s store", type_key, type,
                       fmt_names[*fmt]);
    return FERR_OK;
}

/* A store's path, its format, and the name of the converted file (ext instead of its extension). */
static ferr_code_t store_open(xl_t *x, const char *store, const char *ext, const char **path, fmt_t *fmt,
                              char *converted, size_t len)
{
    char loc_key[64];
    snprintf(loc_key, sizeof loc_key, "ssl.%s.location", store);
    *path = props_get(x->layer, loc_key);
    replace_ext(converted, len, *path, ext);
    return store_format(x, store, fmt);
}

static ferr_code_t keystore(xl_t *x)
{
    const char *path;
    fmt_t fmt;
    char p12[512];
    ferr_code_t rc = store_open(x, "keystore", ".p12", &path, &fmt, p12, sizeof p12);
    if (rc)
        return rc;
    if (fmt == FMT_JKS)
        return invalid(x, "ssl.keystore.location", path,
                       "a JKS keystore, which librdkafka cannot read; convert it with `keytool -importkeystore "
                       "-srckeystore %s -srcstoretype JKS -destkeystore %s -deststoretype PKCS12` and set "
                       "%sssl.keystore.type=PKCS12 and %sssl.keystore.location=%s",
                       path, p12, x->origin, x->origin, p12);
    if (fmt == FMT_PKCS12) {
        emit(x, "ssl.keystore.location", path, NULL);
        const char *pw = props_get(x->layer, "ssl.keystore.password");
        if (pw)
            emit(x, "ssl.keystore.password", pw, NULL);
        return FERR_OK;
    }
    /* PEM: the certificate chain and the private key in one file */
    emit(x, "ssl.certificate.location", path, "ssl.keystore.location");
    emit(x, "ssl.key.location", path, "ssl.keystore.location");
    if (props_get(x->layer, "ssl.keystore.password"))
        dropped(x, "ssl.keystore.password");
    return FERR_OK;
}

static ferr_code_t truststore(xl_t *x)
{
    const char *path;
    fmt_t fmt;
    char pem[512];
    ferr_code_t rc = store_open(x, "truststore", ".pem", &path, &fmt, pem, sizeof pem);
    if (rc)
        return rc;
    if (fmt == FMT_JKS)
        return invalid(x, "ssl.truststore.location", path,
                       "a JKS truststore, which librdkafka cannot read; export its certificates with `keytool "
                       "-list -rfc -keystore %s > %s` and set %sssl.truststore.type=PEM and "
                       "%sssl.truststore.location=%s", path, pem, x->origin, x->origin, pem);
    if (fmt == FMT_PKCS12)
        return invalid(x, "ssl.truststore.location", path,
                       "a PKCS12 truststore, which librdkafka cannot read (it takes CA certificates as PEM); "
                       "export them with `openssl pkcs12 -in %s -nokeys -out %s` and set "
                       "%sssl.truststore.type=PEM and %sssl.truststore.location=%s", path, pem, x->origin,
                       x->origin, pem);
    emit(x, "ssl.ca.location", path, "ssl.truststore.location");
    return FERR_OK;
}

/* Keys that are translated as a group (keystore, truststore) or only read by one. */
static int consumed(const char *k)
{
    static const char *const keys[] = {"ssl.keystore.type", "ssl.truststore.type", "ssl.keystore.password",
                                       "ssl.truststore.password", "ssl.keystore.location",
                                       "ssl.truststore.location"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i]))
            return 1;
    return 0;
}

ferr_code_t jclient_translate(const props_t *layer, const props_t *parent, const char *origin, props_t *out,
                              props_t *notes, ferr_t *err)
{
    xl_t x = {layer, parent, origin, out, notes, err};
    static const char *const inline_pem[][2] = {{"ssl.truststore.certificates", "ssl.ca.pem"},
                                                {"ssl.keystore.certificate.chain", "ssl.certificate.pem"},
                                                {"ssl.keystore.key", "ssl.key.pem"}};
    ferr_code_t rc = FERR_OK;
    for (size_t i = 0; !rc && i < props_count(layer); i++) {
        const char *k = props_key(layer, i), *v = props_value(layer, i);
        size_t p;
        for (p = 0; p < 3 && strcmp(k, inline_pem[p][0]); p++)
            ;
        if (p < 3) {
            emit(&x, inline_pem[p][1], v, k);
        } else if (!strcmp(k, JAAS_KEY)) {
            char why[768];
            props_t *t = props_new();
            if (!is_sasl(layer, parent))
                dropped(&x, k); /* Kafka reads it only for SASL_* protocols too */
            else if (jaas_translate(v, NULL, t, why, sizeof why))
                rc = ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY ": %s",
                              origin, why);
            for (size_t j = 0; !rc && j < props_count(t); j++)
                emit(&x, props_key(t, j), props_value(t, j), JAAS_KEY);
            props_destroy(t);
        } else if (!strcmp(k, "ssl.endpoint.identification.algorithm") && !*v) {
            emit(&x, k, "none", k); /* Kafka: empty turns host name verification off */
        } else if (!strcmp(k, "ssl.keystore.location")) {
            rc = keystore(&x);
        } else if (!strcmp(k, "ssl.truststore.location")) {
            rc = truststore(&x);
        } else if (!strcmp(k, "ssl.keystore.password") && !props_get(layer, "ssl.keystore.location")) {
            props_set(out, k, v); /* for a keystore named by another layer */
        } else if (consumed(k)) {
            if (!strcmp(k, "ssl.truststore.password"))
                dropped(&x, k); /* librdkafka reads CA certificates from PEM, which needs none */
        } else {
            props_set(out, k, v);
        }
    }
    return rc;
}

ferr_code_t jclient_check_mechanism(const props_t *layer, const props_t *parent, const char *origin, ferr_t *err)
{
    const char *jaas = props_get(layer, JAAS_KEY), *jaas_origin = origin;
    if (!jaas && parent) {
        jaas = props_get(parent, JAAS_KEY);
        jaas_origin = "";
    }
    if (!jaas || !is_sasl(layer, parent))
        return FERR_OK;
    const char *m = props_get(layer, "sasl.mechanism");
    if (!m)
        m = props_get(layer, "sasl.mechanisms");
    if (!m && parent && !(m = props_get(parent, "sasl.mechanism")))
        m = props_get(parent, "sasl.mechanisms");
    char why[768];
    if (!jaas_translate(jaas, m ? m : "GSSAPI", NULL, why, sizeof why))
        return FERR_OK;
    if (!strcmp(jaas_origin, origin))
        return ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY ": %s", origin, why);
    return ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration " JAAS_KEY ": %s (for the "
                    "clients configured by %s*)", why, origin);
}

/* librdkafka's property names, from its own table (rd_kafka_conf_properties_show(), the text of
 * CONFIGURATION.md): asking rd_kafka_conf_get() cannot tell an unset string property from an
 * unknown one, and setting one to find out can have effects. Read once, sorted. */
static char **names;
static size_t n_names;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_names(void)
{
    char *text = NULL, *save = NULL;
    size_t len = 0, cap = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    rd_kafka_conf_properties_show(f);
    fclose(f);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t n = strcspn(line, " |");
        if (!n || !strchr(line, '|') || line[0] == '-' || !strncmp(line, "Property", 8))
            continue;
        if (n_names == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 256) * sizeof *names)))
            abort();
        if (!(names[n_names++] = strndup(line, n)))
            abort();
    }
    free(text);
    qsort(names, n_names, sizeof *names, cmp_str);
}

int jclient_is_property(const char *name)
{
    pthread_once(&names_once, load_names);
    return bsearch(&name, names, n_names, sizeof *names, cmp_str) != NULL;
}
