/* jaas: Kafka's sasl.jaas.config, for librdkafka.
 *
 * Worker files written for Kafka Connect give SASL credentials as a JAAS entry
 * ("org.apache.kafka.common.security.plain.PlainLoginModule required username="u"
 * password="p";"), which librdkafka refuses outright. This module parses that value exactly as
 * Kafka does (org.apache.kafka.common.security.JaasConfig on java.io.StreamTokenizer, then
 * JaasContext's one-entry rule) and translates the login modules librdkafka can serve:
 *   PlainLoginModule, ScramLoginModule   -> sasl.username, sasl.password
 *   OAuthBearerLoginModule (unsecured)    -> enable.sasl.oauthbearer.unsecure.jwt=true,
 *                                            sasl.oauthbearer.config
 * Kerberos (Krb5LoginModule), token endpoints (OIDC), delegation tokens and unknown modules
 * are refused with the librdkafka keys to use instead. The mechanism itself is never taken
 * from the JAAS entry: it is sasl.mechanism, as in Kafka, and jaas_translate() checks that
 * the two fit.
 *
 * Messages never contain an option value, nor a word that could be part of one: a value is a
 * secret, and a stray space in an unquoted password would otherwise show half of it.
 * Pure apart from jaas_conf_set(), which only sets properties on a librdkafka conf; any
 * thread. Fuzzed by tests/fuzz/fuzz_jaas.c. */
#ifndef FERRY_JAAS_H
#define FERRY_JAAS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "worker/ferr.h"
#include "worker/props.h"

/** The worker and connector key this module reads. */
#define JAAS_KEY "sasl.jaas.config"

typedef enum { JAAS_REQUIRED = 0, JAAS_REQUISITE, JAAS_SUFFICIENT, JAAS_OPTIONAL } jaas_flag_t;

/** One parsed JAAS entry. Owns its strings; free with jaas_dispose(). */
typedef struct jaas {
    char *module;     /* the login module class, as written */
    jaas_flag_t flag; /* the control flag (case-insensitive in the text) */
    size_t n;         /* options, in order of first appearance; a repeated key keeps the last value */
    char **keys, **values;
} jaas_t;

/**
 * @brief Parses @p text as Kafka's JaasConfig does, and requires exactly one entry.
 *
 * Tokens are java.io.StreamTokenizer's with JaasConfig's settings: words of letters, digits,
 * '.', '-', '_' and '$' (a token starting with a digit, '.' or '-' is a number, which is no
 * value), strings in "..." or '...' with Java's escapes (\n \t \b \f \r \a \v, octal \0 to
 * \377, a backslash before any other character yields it; a string also ends at a line end),
 * and // and / * * / comments (a lone '/' comments out the rest of the line). Bytes from 0x80
 * up are word characters. An entry is "<class> <flag> (<key>=<value>)* ;" with flag one of
 * required, requisite, sufficient, optional.
 * @param out   filled on success (jaas_dispose() it); zeroed on failure.
 * @param why   on failure, Kafka's message ("JAAS config entry not terminated by semi-colon",
 *              "JAAS config property contains 2 login modules, should be 1 module", ...).
 * @returns 0, or -1.
 */
int jaas_parse(const char *text, jaas_t *out, char *why, size_t len);

/** @brief Frees what @p j owns and zeroes it. Accepts a zeroed jaas_t. */
void jaas_dispose(jaas_t *j);

/** @returns the value of option @p key, or NULL. */
const char *jaas_option(const jaas_t *j, const char *key);

/**
 * @brief The librdkafka properties that stand for the JAAS config @p text.
 * @param mechanism  the client's sasl.mechanism (Kafka's default when unset is GSSAPI), checked
 *                   against the login module; NULL skips that check (the caller checks it
 *                   where every layer of the client is known).
 * @param out        receives the properties (sasl.username, ...); may be NULL to only check.
 * @param why        on failure: why, naming the librdkafka keys to use instead when the login
 *                   module cannot be translated. Never contains a value.
 * @returns 0, or -1.
 */
int jaas_translate(const char *text, const char *mechanism, props_t *out, char *why, size_t len);

/**
 * @brief Sets on @p conf the librdkafka properties that stand for @p text (no mechanism
 * check: see jaas_translate()).
 * @param origin  the key's prefix for the message ("src.kafka.", "" ...).
 * @returns FERR_OK, or FERR_INVALID with "Invalid value [hidden] for configuration
 *          <origin>sasl.jaas.config: <why>".
 */
ferr_code_t jaas_conf_set(rd_kafka_conf_t *conf, const char *text, const char *origin, ferr_t *err);

#endif
