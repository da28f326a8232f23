/* isig: signatures of internal requests between workers, as Kafka Connect makes them (KIP-507).
 *
 * Why: POST /connectors/{name}/tasks writes task configs into the config topic, and only a
 * worker of the group may do that (a forged one could name any topic, any number of tasks).
 * The leader keeps a random session key in the config topic (key "session-key", value
 * {"key":base64,"algorithm":"HmacSHA256","creation-timestamp":ms}, Kafka Connect's format),
 * which only the group's workers read; a follower sends the HMAC of the request body under it
 * in X-Connect-Authorization (base64), with the algorithm in
 * X-Connect-Request-Signature-Algorithm, and the leader checks it. Algorithms are Java's MAC
 * names: HmacSHA1, HmacSHA224, HmacSHA256, HmacSHA384, HmacSHA512.
 *
 * Pure functions on OpenSSL; any thread. */
#ifndef FERRY_ISIG_H
#define FERRY_ISIG_H

#include <stddef.h>

#define ISIG_HEADER "X-Connect-Authorization"
#define ISIG_ALGORITHM_HEADER "X-Connect-Request-Signature-Algorithm"
#define ISIG_KEY_MAX 512 /* bytes of a session key */

/** @returns 1 if @p alg names a MAC algorithm ferry implements. */
int isig_algorithm_ok(const char *alg);
/** The digest size of @p alg in bits (the default key size), 0 if unknown. */
int isig_default_key_bits(const char *alg);

/** Fills @p key with @p bytes random bytes (at most ISIG_KEY_MAX). @returns 0, -1 on failure. */
int isig_new_key(unsigned char *key, size_t bytes);

/** Base64 of the HMAC of @p body under @p key with @p alg (malloc'd), NULL if @p alg is unknown. */
char *isig_sign(const char *alg, const unsigned char *key, size_t keylen, const void *body, size_t len);

/** Checks a base64 signature in constant time. @returns 1 valid, 0 invalid, -1 not base64 or
 *  unknown algorithm. */
int isig_verify(const char *alg, const unsigned char *key, size_t keylen, const void *body, size_t len,
                const char *sig_b64, size_t siglen);

/** Base64 (standard alphabet, padded) of @p len bytes, malloc'd. */
char *isig_b64_encode(const unsigned char *data, size_t len);
/** Decodes standard padded base64 into @p out (capacity @p cap). @returns the length, or -1. */
int isig_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#endif
