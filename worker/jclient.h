/* jclient: Kafka's Java client settings in a worker config, as librdkafka reads them.
 *
 * The client keys of a worker file (security.protocol, ssl.*, sasl.* at the top, and the same
 * under producer., consumer. and admin.) were written for Kafka's Java clients. Most mean the
 * same to librdkafka; a few do not, and would either stop the worker (librdkafka refuses
 * sasl.jaas.config and ssl.truststore.location) or be silently ignored (ssl.keystore.type). Each
 * layer is translated once, when the worker config is read, so every client built from it
 * gets librdkafka's keys:
 *   sasl.jaas.config                       -> sasl.username/sasl.password, ... (worker/jaas.h)
 *   ssl.truststore.location (PEM)          -> ssl.ca.location
 *   ssl.keystore.location (PKCS12)         -> ssl.keystore.location (+ ssl.keystore.password)
 *   ssl.keystore.location (PEM)            -> ssl.certificate.location + ssl.key.location
 *   ssl.truststore.certificates, ssl.keystore.certificate.chain, ssl.keystore.key
 *                                          -> ssl.ca.pem, ssl.certificate.pem, ssl.key.pem
 *   ssl.endpoint.identification.algorithm= -> none (Kafka's empty value turns the check off)
 * A JKS (or JCEKS) store, which librdkafka cannot read, and a PKCS#12 truststore are refused
 * with the keytool/openssl command that converts them. A store's type is its *.type key (the
 * layer's, else the top-level one); without one, the file's first bytes decide (Kafka's
 * default is JKS, which reads PKCS#12 files too), so the file is read here.
 * SASL settings are translated only where security.protocol is SASL_PLAINTEXT or SASL_SSL:
 * elsewhere Kafka never reads them either. */
#ifndef FERRY_JCLIENT_H
#define FERRY_JCLIENT_H

#include "worker/ferr.h"
#include "worker/props.h"

/**
 * @brief Translates one client layer.
 * @param layer   the layer's keys without their prefix (borrowed).
 * @param parent  the top-level client keys a prefixed layer inherits (store types,
 *                security.protocol), or NULL for the top level itself.
 * @param origin  the layer's prefix: "", "producer.", "consumer." or "admin.".
 * @param out     receives the librdkafka keys of the layer, in order.
 * @param notes   receives, for each key of @p out that came from a Java key, origin+key ->
 *                origin+Java key ("producer.ssl.ca.location" -> "producer.ssl.truststore.location"),
 *                and for each Java key that is dropped, origin+key -> "" (read by --check).
 * @returns FERR_OK, or FERR_INVALID naming the key ("Invalid value ... for configuration
 *          producer.ssl.truststore.location: ..."); secrets shown as [hidden].
 * @remark Reads the first bytes of keystore and truststore files whose type is not given.
 */
ferr_code_t jclient_translate(const props_t *layer, const props_t *parent, const char *origin, props_t *out,
                              props_t *notes, ferr_t *err);

/**
 * @brief Checks that a client's sasl.jaas.config fits its sasl.mechanism, where both come
 * from @p layer or, failing that, @p parent (Kafka's default mechanism is GSSAPI).
 * @param layer, parent, origin  as for jclient_translate(), untranslated.
 * @returns FERR_OK (also when the client does not use SASL), or FERR_INVALID.
 */
ferr_code_t jclient_check_mechanism(const props_t *layer, const props_t *parent, const char *origin, ferr_t *err);

/** @returns 1 if librdkafka has a global or topic property of this exact name (from its own
 *  property table, without setting anything: setting some properties has effects, e.g.
 *  plugin.library.paths loads code), 0 if librdkafka would ignore or refuse it (a Java-only key
 *  such as max.poll.records, or sasl.jaas.config). Any thread. */
int jclient_is_property(const char *name);

#endif
