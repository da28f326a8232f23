/* sec: securing the REST API, as Kafka Connect does it: TLS on an https listener
 * (listeners.https.ssl.* or ssl.*, PEM keystores and truststores only) and HTTP basic
 * authentication (the role of BasicAuthSecurityRestExtension, with a JAAS
 * PropertyFileLoginModule-style credentials file). The same settings are used by the
 * follower side: TLS for requests forwarded to an https leader, and the credential it
 * sends with the requests it originates itself (task configs).
 *
 * Everything is read and checked once, at start-up, so that a bad file fails the start
 * (exit 2, naming the key) instead of the first request. */
#ifndef FERRY_SEC_H
#define FERRY_SEC_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "rest/fwd.h"
#include "worker/ferr.h"
#include "worker/wconf.h"

/** The extension class that turns basic authentication on in rest.extension.classes. */
#define SEC_BASIC_AUTH_CLASS "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
/** The realm in WWW-Authenticate (Kafka Connect's JAAS login context name). */
#define SEC_REALM "KafkaConnect"

typedef struct sec sec_t;

/**
 * @brief Reads the REST security settings of @p wc: the TLS settings when the listener or
 * the advertised listener is https, the credentials file when rest.extension.classes names
 * SEC_BASIC_AUTH_CLASS.
 *
 * TLS keys come from listeners.https.ssl.* if any such key is set, else from ssl.* (Kafka's
 * all-or-nothing prefix rule). Keystores and truststores must be PEM (a file or inline
 * text); JKS and PKCS12 are refused. Errors read like wconf's and name the key:
 *   Invalid value /x.pem for configuration listeners.https.ssl.keystore.location: cannot read: No such file or directory
 *
 * @param wc   borrowed; need not outlive the sec_t.
 * @param err  filled on error.
 * @returns the settings (free with sec_destroy()), or NULL with err->code FERR_INVALID.
 */
sec_t *sec_new(const wconf_t *wc, ferr_t *err);

/** @brief Frees @p s. Accepts NULL. */
void sec_destroy(sec_t *s);

/** @returns the server TLS context for an https listener (owned by @p s), or NULL for http. */
SSL_CTX *sec_server_ctx(const sec_t *s);

/** @returns 1 if requests must carry valid basic-auth credentials, else 0. */
int sec_auth_enabled(const sec_t *s);

/**
 * @brief Checks an Authorization header value ("Basic base64(user:password)") against the
 * credentials file. Passwords are compared in constant time (SHA-256 digests, CRYPTO_memcmp).
 * @param value  borrowed, not NUL-terminated; NULL when the header is absent.
 * @returns 1 if authentication is off or the credentials match, else 0.
 */
int sec_auth_check(const sec_t *s, const char *value, size_t len);

/**
 * @returns the Authorization header value for requests this worker originates itself
 * ("Basic ..." for rest.basic.auth.internal.user, default the first user of the file), or
 * NULL when authentication is off. Owned by @p s.
 */
const char *sec_internal_auth(const sec_t *s);

/** @returns the TLS settings for outgoing (forwarded) requests; owned by @p s. */
const fwd_tls_t *sec_client_tls(const sec_t *s);

#endif
