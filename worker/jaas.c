/* jaas: sasl.jaas.config parsed as Kafka does and translated for librdkafka. See jaas.h.
 *
 * The tokenizer is a transcription of java.io.StreamTokenizer.nextToken() for the table
 * JaasConfig sets up (default syntax, slash-slash and slash-star comments, '-', '_' and '$' as
 * word characters), quirks included: a number is a token but no value, a quoted string simply
 * stops at a line end, an escape before the end of the text yields U+FFFF. The grammar above it
 * is JaasConfig.parseAppConfigurationEntry() with JaasContext's "exactly one entry". */
#include "worker/jaas.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PLAIN_MODULE "org.apache.kafka.common.security.plain.PlainLoginModule"
#define SCRAM_MODULE "org.apache.kafka.common.security.scram.ScramLoginModule"
#define OAUTH_MODULE "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"

/* ---- the tokenizer --------------------------------------------------------------------- */

enum { TT_EOF = -1, TT_WORD = -3, TT_NUMBER = -2 };
enum { CT_WHITE = 1, CT_DIGIT = 2, CT_ALPHA = 4, CT_QUOTE = 8, CT_COMMENT = 16 };

typedef struct {
    const unsigned char *s;
    size_t pos;        /* next byte to read */
    int peek;          /* a character read ahead, or NEED (read one) */
    int type;          /* TT_*, a quote character, or an ordinary character */
    size_t start;      /* offset of the token's first byte, for messages */
    char *sval;        /* words and quoted strings (owned), else NULL */
    size_t cap, len;
} tok_t;

#define NEED (-4) /* t->peek: read the next character */

static int ctype_of(int c)
{
    if (c <= ' ')
        return CT_WHITE;
    if (c >= 0x80 || isalpha(c) || c == '_' || c == '$')
        return CT_ALPHA;
    if (c == '-')
        return CT_ALPHA | CT_DIGIT;
    if (isdigit(c) || c == '.')
        return CT_DIGIT;
    if (c == '"' || c == '\'')
        return CT_QUOTE;
    if (c == '/')
        return CT_COMMENT;
    return 0;
}

static int rd(tok_t *t)
{
    return t->s[t->pos] ? t->s[t->pos++] : -1;
}

static void put_byte(tok_t *t, unsigned char b)
{
    if (t->len + 2 > t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->sval = realloc(t->sval, t->cap);
        if (!t->sval)
            abort();
    }
    t->sval[t->len++] = (char)b;
    t->sval[t->len] = '\0';
}

/* A Java char from an escape (0..0377, or 0xFFFF for a backslash at the end), as UTF-8. */
static void put_char(tok_t *t, int c)
{
    if (c < 0x80) {
        put_byte(t, (unsigned char)c);
    } else if (c < 0x800) {
        put_byte(t, (unsigned char)(0xC0 | (c >> 6)));
        put_byte(t, (unsigned char)(0x80 | (c & 0x3F)));
    } else {
        put_byte(t, (unsigned char)(0xE0 | (c >> 12)));
        put_byte(t, (unsigned char)(0x80 | ((c >> 6) & 0x3F)));
        put_byte(t, (unsigned char)(0x80 | (c & 0x3F)));
    }
}

/* t->sval becomes an empty, allocated string for a word or a quoted string to grow in. */
static void start_sval(tok_t *t)
{
    t->len = 0;
    put_byte(t, 0);
    t->len = 0;
    t->sval[0] = '\0';
}

/* Skips to the end of the line; the line end is read again next time. */
static void skip_line(tok_t *t)
{
    int c;
    while ((c = rd(t)) != '\n' && c != '\r' && c >= 0)
        ;
    t->peek = c;
}

static int quoted(tok_t *t, int q)
{
    start_sval(t);
    int d = rd(t);
    while (d >= 0 && d != q && d != '\n' && d != '\r') {
        int c;
        if (d == '\\') {
            c = rd(t);
            int first = c;
            if (c >= '0' && c <= '7') {
                c -= '0';
                int c2 = rd(t);
                if (c2 >= '0' && c2 <= '7') {
                    c = (c << 3) + (c2 - '0');
                    c2 = rd(t);
                    if (c2 >= '0' && c2 <= '7' && first <= '3') {
                        c = (c << 3) + (c2 - '0');
                        d = rd(t);
                    } else {
                        d = c2;
                    }
                } else {
                    d = c2;
                }
                put_char(t, c);
                continue;
            }
            switch (c) {
            case 'a': c = 0x7; break;
            case 'b': c = '\b'; break;
            case 'f': c = 0xC; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'v': c = 0xB; break;
            }
            d = rd(t);
            if (c < 0)
                put_char(t, 0xFFFF); /* Java's (char)-1 */
            else
                put_byte(t, (unsigned char)c);
        } else {
            put_byte(t, (unsigned char)d);
            d = rd(t);
        }
    }
    t->peek = d == q ? NEED : d;
    return t->type = q;
}

/* One token: t->type, and t->sval for words and quoted strings. */
static int next(tok_t *t)
{
    for (;;) {
        int c = t->peek == NEED ? rd(t) : t->peek;
        t->peek = NEED;
        free(t->sval);
        t->sval = NULL;
        t->cap = t->len = 0;
        while (c >= 0 && (ctype_of(c) & CT_WHITE))
            c = rd(t);
        if (c < 0)
            return t->type = TT_EOF;
        t->start = t->pos - 1;
        int ct = ctype_of(c);
        if (ct & CT_DIGIT) {
            if (c == '-') {
                c = rd(t);
                if (c != '.' && (c < '0' || c > '9')) {
                    t->peek = c;
                    return t->type = '-';
                }
            }
            int seendot = 0;
            while ((c == '.' && !seendot) || (c >= '0' && c <= '9')) {
                seendot |= c == '.';
                c = rd(t);
            }
            t->peek = c;
            return t->type = TT_NUMBER;
        }
        if (ct & CT_ALPHA) {
            start_sval(t);
            do {
                put_byte(t, (unsigned char)c);
                c = rd(t);
            } while (c >= 0 && (ctype_of(c) & (CT_ALPHA | CT_DIGIT)));
            t->peek = c;
            return t->type = TT_WORD;
        }
        if (ct & CT_QUOTE)
            return quoted(t, c);
        if (c == '/') {
            c = rd(t);
            if (c == '*') {
                int prevc = 0;
                while ((c = rd(t)) != '/' || prevc != '*') {
                    if (c == '\r') {
                        c = rd(t);
                        if (c == '\n')
                            c = rd(t);
                    } else if (c == '\n') {
                        c = rd(t);
                    }
                    if (c < 0)
                        return t->type = TT_EOF;
                    prevc = c;
                }
                continue;
            }
            /* "//", or a lone '/', which is a comment character: the rest of the line goes
             * (for a lone '/', Java drops the character after it even when it ends the line) */
            skip_line(t);
            continue;
        }
        return t->type = c;
    }
}

/* ---- the grammar ------------------------------------------------------------------------ */

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Option names that may be named in a message: a word in key position could otherwise be
 * the second half of an unquoted password with a space in it. */
static int nameable(const char *k)
{
    static const char *const names[] = {"username", "password", "tokenauth", "serviceName", "principal",
                                        "keyTab", "useKeyTab", "storeKey", "clientId", "clientSecret", "scope"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(k, names[i]))
            return 1;
    return !strncmp(k, "unsecuredLogin", 14);
}

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r)
        abort();
    return r;
}

static void set_option(jaas_t *j, const char *k, const char *v)
{
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->keys[i], k)) {
            free(j->values[i]);
            j->values[i] = xstrdup(v);
            return;
        }
    j->keys = realloc(j->keys, (j->n + 1) * sizeof *j->keys);
    j->values = realloc(j->values, (j->n + 1) * sizeof *j->values);
    if (!j->keys || !j->values)
        abort();
    j->keys[j->n] = xstrdup(k);
    j->values[j->n++] = xstrdup(v);
}

static int parse_flag(const char *s, jaas_flag_t *out)
{
    static const char *const flags[] = {"required", "requisite", "sufficient", "optional"};
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, flags[i])) {
            *out = (jaas_flag_t)i;
            return 0;
        }
    return -1;
}

/* One entry, from its first token (already read) to its ';'. */
static int parse_entry(tok_t *t, jaas_t *j, char *why, size_t len)
{
    if (!t->sval || !*t->sval)
        return fail(why, len, "Login module not specified in JAAS config (expected a class name at character %zu)",
                    t->start + 1);
    j->module = xstrdup(t->sval);
    if (next(t) == TT_EOF)
        return fail(why, len, "Login module control flag not specified in JAAS config");
    if (!t->sval)
        return fail(why, len, "Login module control flag is not available in the JAAS config");
    if (parse_flag(t->sval, &j->flag)) /* not echoed: "Module secret;" would show the secret */
        return fail(why, len, "Invalid login module control flag in JAAS config (expected required, "
                              "requisite, sufficient or optional after the login module class)");
    while (next(t) != TT_EOF && t->type != ';') {
        size_t at = t->start + 1;
        if (!t->sval) /* a number or a stray character (Java would take it for a null key) */
            return fail(why, len, "an option name is expected at character %zu in JAAS config (a word, or a "
                                  "quoted string)", at);
        char *key = xstrdup(t->sval);
        int ok = next(t) == '=' && next(t) != TT_EOF && t->sval;
        if (!ok) {
            if (nameable(key))
                fail(why, len, "Value not specified for key '%s' in JAAS config", key);
            else
                fail(why, len, "Value not specified for the option at character %zu in JAAS config "
                               "(options are key=value, quoted if the value has other characters than "
                               "letters, digits and . - _ $)", at);
            free(key);
            return -1;
        }
        if (strlen(t->sval) != t->len) /* an escaped \0 */
            ok = 0;
        if (ok)
            set_option(j, key, t->sval);
        free(key);
        if (!ok)
            return fail(why, len, "a value at character %zu of the JAAS config holds a NUL character, "
                                  "which librdkafka cannot take", at);
    }
    if (t->type != ';')
        return fail(why, len, "JAAS config entry not terminated by semi-colon");
    return 0;
}

int jaas_parse(const char *text, jaas_t *out, char *why, size_t len)
{
    memset(out, 0, sizeof *out);
    tok_t t = {.s = (const unsigned char *)text, .peek = NEED};
    int entries = 0, rc = 0;
    jaas_t extra = {0};
    while (rc == 0 && next(&t) != TT_EOF) {
        rc = parse_entry(&t, entries ? &extra : out, why, len);
        jaas_dispose(&extra);
        entries++;
    }
    free(t.sval);
    if (rc == 0 && entries == 0)
        rc = fail(why, len, "Login module not specified in JAAS config");
    if (rc == 0 && entries > 1)
        rc = fail(why, len, "JAAS config property contains %d login modules, should be 1 module", entries);
    if (rc)
        jaas_dispose(out);
    return rc;
}

void jaas_dispose(jaas_t *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->keys[i]);
        free(j->values[i]);
    }
    free(j->keys);
    free(j->values);
    free(j->module);
    memset(j, 0, sizeof *j);
}

const char *jaas_option(const jaas_t *j, const char *key)
{
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->keys[i], key))
            return j->values[i];
    return NULL;
}

/* ---- translation ------------------------------------------------------------------------ */

static int is_password_mechanism(const char *m)
{
    return !strcmp(m, "PLAIN") || !strcmp(m, "SCRAM-SHA-256") || !strcmp(m, "SCRAM-SHA-512");
}

/* The login module against sasl.mechanism. */
static int check_mechanism(const char *simple, int oauth, const char *mechanism, char *why, size_t len)
{
    if (!mechanism)
        return 0;
    if (oauth ? !strcmp(mechanism, "OAUTHBEARER") : is_password_mechanism(mechanism))
        return 0;
    if (!strcmp(mechanism, "GSSAPI"))
        return fail(why, len, "sasl.mechanism is GSSAPI (Kafka's default when it is not set), which %s cannot "
                              "serve: set sasl.mechanism=%s", simple,
                    oauth ? "OAUTHBEARER" : "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    return fail(why, len, "sasl.mechanism=%.40s does not go with %s (%s)", mechanism, simple,
                oauth ? "use OAUTHBEARER" : "use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
}

static int password_module(const jaas_t *j, const char *simple, props_t *out, char *why, size_t len)
{
    const char *u = jaas_option(j, "username"), *p = jaas_option(j, "password"),
               *tok = jaas_option(j, "tokenauth");
    if (tok && !strcasecmp(tok, "true"))
        return fail(why, len, "%s with tokenauth=true (delegation tokens) is not supported by librdkafka",
                    simple);
    if (!u || !p)
        return fail(why, len, "%s needs the options username and password", simple);
    if (out) {
        props_set(out, "sasl.username", u);
        props_set(out, "sasl.password", p);
    }
    return 0;
}

/* A value librdkafka's sasl.oauthbearer.config can carry: it splits on spaces and '='. */
static int ujws_value_ok(const char *v)
{
    if (!*v)
        return 0;
    for (const unsigned char *s = (const unsigned char *)v; *s; s++)
        if (*s <= ' ' || *s == '=')
            return 0;
    return 1;
}

static void append(FILE *f, const char *k, const char *v)
{
    fprintf(f, "%s%s=%s", ftell(f) ? " " : "", k, v);
}

/* Kafka's unsecured JWS options (OAuthBearerUnsecuredLoginCallbackHandler) in librdkafka's
 * sasl.oauthbearer.config: principal, principalClaimName, scope, scopeClaimName, lifeSeconds,
 * extension_NAME. Claims librdkafka cannot put in its token are refused. */
static int oauth_module(const jaas_t *j, props_t *out, char *why, size_t len)
{
    static const char P[] = "unsecuredLogin";
    const char *pname = jaas_option(j, "unsecuredLoginPrincipalClaimName");
    const char *sname = jaas_option(j, "unsecuredLoginScopeClaimName");
    const char *life = jaas_option(j, "unsecuredLoginLifetimeSeconds");
    if (jaas_option(j, "clientId") || jaas_option(j, "clientSecret"))
        return fail(why, len, "OAuthBearerLoginModule with a token endpoint (clientId, clientSecret) cannot be "
                              "translated: set librdkafka's sasl.oauthbearer.method=oidc, "
                              "sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret, "
                              "sasl.oauthbearer.token.endpoint.url and sasl.oauthbearer.scope instead");
    char pkey[128], skey[128];
    snprintf(pkey, sizeof pkey, "unsecuredLoginStringClaim_%s", pname ? pname : "sub");
    snprintf(skey, sizeof skey, "unsecuredLoginListClaim_%s", sname ? sname : "scope");
    const char *principal = jaas_option(j, pkey);
    if (!principal)
        return fail(why, len, "OAuthBearerLoginModule needs the option %.80s (the principal of its unsecured "
                              "token); other token sources cannot be translated: set librdkafka's "
                              "sasl.oauthbearer.* keys instead", pkey);
    char *cfg = NULL;
    size_t cfglen = 0;
    FILE *f = open_memstream(&cfg, &cfglen);
    int rc = 0;
    for (size_t i = 0; i < j->n && !rc; i++) {
        const char *k = j->keys[i], *v = j->values[i];
        if (strncmp(k, P, sizeof P - 1))
            continue; /* Kafka's unsecured handler reads only these; others are for other handlers */
        if (!ujws_value_ok(v))
            rc = fail(why, len, "option %.80s of OAuthBearerLoginModule is empty or holds a space or '=', "
                                "which librdkafka's sasl.oauthbearer.config cannot carry", k);
        else if (!strcmp(k, pkey))
            append(f, "principal", v);
        else if (!strcmp(k, "unsecuredLoginPrincipalClaimName"))
            append(f, "principalClaimName", v);
        else if (!strcmp(k, "unsecuredLoginScopeClaimName"))
            append(f, "scopeClaimName", v);
        else if (!strcmp(k, "unsecuredLoginLifetimeSeconds"))
            append(f, "lifeSeconds", v);
        else if (!strcmp(k, skey)) {
            /* Kafka's list claim: the first character is the separator */
            char *list = xstrdup(v + 1);
            for (char *s = list; *s; s++)
                if (*s == v[0])
                    *s = ',';
            if (strchr(v + 1, ',') && v[0] != ',')
                rc = fail(why, len, "a scope in %.80s holds a ',', which librdkafka cannot carry", k);
            else if (*list)
                append(f, "scope", list);
            free(list);
        } else if (!strncmp(k, "unsecuredLoginExtension_", 24)) {
            const char *name = k + 24;
            int alpha = *name != '\0';
            for (const char *s = name; *s; s++)
                alpha &= isalpha((unsigned char)*s) != 0;
            if (!alpha)
                rc = fail(why, len, "SASL extension names are letters only (RFC 7628): %.80s", k);
            else {
                char ek[128];
                snprintf(ek, sizeof ek, "extension_%s", name);
                append(f, ek, v);
            }
        } else {
            rc = fail(why, len, "option %.80s of OAuthBearerLoginModule cannot be translated: librdkafka's "
                                "unsecured tokens carry only the principal, the scope, the lifetime and "
                                "extensions", k);
        }
    }
    fclose(f);
    if (!rc && life && strspn(life, "0123456789") != strlen(life))
        rc = fail(why, len, "unsecuredLoginLifetimeSeconds must be a number of seconds");
    if (!rc && out) {
        props_set(out, "enable.sasl.oauthbearer.unsecure.jwt", "true");
        props_set(out, "sasl.oauthbearer.config", cfg);
    }
    free(cfg);
    return rc;
}

int jaas_translate(const char *text, const char *mechanism, props_t *out, char *why, size_t len)
{
    jaas_t j;
    if (jaas_parse(text, &j, why, len))
        return -1;
    const char *m = j.module, *dot = strrchr(m, '.'), *simple = dot ? dot + 1 : m;
    int rc;
    int oauth = !strcmp(m, OAUTH_MODULE);
    if (!strcmp(m, PLAIN_MODULE) || !strcmp(m, SCRAM_MODULE) || oauth) {
        rc = check_mechanism(simple, oauth, mechanism, why, len);
        if (!rc)
            rc = oauth ? oauth_module(&j, out, why, len) : password_module(&j, simple, out, why, len);
    } else if (!strcmp(simple, "Krb5LoginModule")) {
        rc = fail(why, len, "Krb5LoginModule (Kerberos) cannot be translated: set sasl.mechanism=GSSAPI with "
                            "librdkafka's sasl.kerberos.principal, sasl.kerberos.keytab and "
                            "sasl.kerberos.service.name instead (the entry's principal, keyTab and "
                            "serviceName), in the worker config");
    } else {
        /* named only when it looks like a class, not like a value written in the wrong place */
        if (!strstr(m, "LoginModule"))
            m = "(the first word of the JAAS config)";
        rc = fail(why, len, "login module %.200s cannot be used with librdkafka: ferry translates "
                            PLAIN_MODULE " and " SCRAM_MODULE " (to sasl.username and sasl.password) and "
                            OAUTH_MODULE " with unsecured tokens (to sasl.oauthbearer.config); set those "
                            "librdkafka keys instead", m);
    }
    jaas_dispose(&j);
    return rc;
}

ferr_code_t jaas_conf_set(rd_kafka_conf_t *conf, const char *text, const char *origin, ferr_t *err)
{
    char why[768], e[512];
    props_t *p = props_new();
    ferr_code_t rc = FERR_OK;
    if (jaas_translate(text, NULL, p, why, sizeof why))
        rc = ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY ": %s",
                      origin ? origin : "", why);
    for (size_t i = 0; !rc && i < props_count(p); i++)
        if (rd_kafka_conf_set(conf, props_key(p, i), props_value(p, i), e, sizeof e) != RD_KAFKA_CONF_OK)
            rc = ferr_set(err, FERR_INVALID, "Invalid value [hidden] for configuration %s" JAAS_KEY
                          ": librdkafka refused %s", origin ? origin : "", props_key(p, i));
    props_destroy(p);
    return rc;
}
