/* ksasl: the client side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 5802, RFC 7677), the
 * messages that kwire's SaslAuthenticate requests carry.
 *
 * Why: ferry's own Kafka connections (kwire) must log in where librdkafka's do. The SCRAM
 * client is a pure state machine: it is handed the server's messages and returns its own; the
 * caller does the I/O (SaslHandshake v1 with the mechanism name, then one SaslAuthenticate per
 * client message). The one impure helper, ksasl_scram_nonce(), draws the client nonce from
 * OpenSSL's RNG; tests pass a fixed nonce instead.
 *
 *   ksasl_scram_new(mech, user, pass, nonce)   state FIRST
 *   ksasl_scram_client_first()                 "n,,n=USER,r=NONCE"               -> server-first
 *   ksasl_scram_client_final(server-first)     "c=biws,r=NONCE2,p=PROOF"         -> server-final
 *   ksasl_scram_verify(server-final)           checks "v=SIGNATURE": state DONE
 *
 * What is checked: the server nonce must extend ours; iterations must be in
 * [KSASL_SCRAM_MIN_ITERATIONS, KSASL_SCRAM_MAX_ITERATIONS] (Kafka's own limits: fewer is weak,
 * more lets a hostile server burn our CPU); base64 is decoded strictly; a mandatory extension
 * ("m=") is refused; the server signature is compared in constant time, so a server that does
 * not know the password cannot make us believe it does.
 *
 * SASLprep (RFC 4013) is NOT applied: the user name is only escaped as RFC 5802 requires
 * (',' -> "=2C", '=' -> "=3D"), and the password goes into PBKDF2 as its bytes. That is what
 * Kafka's Java ScramFormatter does too (its normalize() only encodes UTF-8), so credentials made
 * with kafka-configs match; a password whose Unicode form differs from its NFKC form would not
 * match a server that does apply SASLprep. Names and passwords must not contain NUL.
 *
 * thread: all functions are reentrant; one ksasl_scram_t belongs to one thread. */
#ifndef FERRY_KSASL_H
#define FERRY_KSASL_H

#include <stddef.h>

#include "worker/ferr.h"

typedef enum ksasl_mech {
    KSASL_SCRAM_SHA_256,
    KSASL_SCRAM_SHA_512,
} ksasl_mech_t;

#define KSASL_SCRAM_MIN_ITERATIONS 4096
#define KSASL_SCRAM_MAX_ITERATIONS 16384
#define KSASL_MAX_MESSAGE 4096 /* longest server message accepted */

/** @returns "SCRAM-SHA-256" or "SCRAM-SHA-512": the SaslHandshake mechanism name. */
const char *ksasl_mech_name(ksasl_mech_t mech);

/**
 * @brief The PLAIN message: "\0user\0password" (empty authorization id).
 * @param msg  out: malloc'd, caller frees; *len bytes (not NUL-terminated).
 * @returns FERR_OK, FERR_INVALID for an empty user, FERR_INTERNAL if out of memory.
 */
ferr_code_t ksasl_plain(const char *user, const char *password, char **msg, size_t *len, ferr_t *err);

typedef struct ksasl_scram ksasl_scram_t;

/**
 * @brief Writes a fresh client nonce (base64 of 24 bytes from OpenSSL's RNG) into @p out.
 * @param size  at least 33 (32 characters and a NUL).
 * @returns FERR_OK, FERR_INVALID if @p size is too small, FERR_INTERNAL if the RNG fails.
 */
ferr_code_t ksasl_scram_nonce(char *out, size_t size, ferr_t *err);

/**
 * @brief A SCRAM exchange for @p user / @p password with the client nonce @p nonce.
 * @param nonce  printable ASCII without ',' (RFC 5802); copied.
 * @returns the state (free with ksasl_scram_destroy()), or NULL with @p err set: FERR_INVALID
 *          for an empty user or a bad nonce, FERR_INTERNAL if out of memory.
 */
ksasl_scram_t *ksasl_scram_new(ksasl_mech_t mech, const char *user, const char *password, const char *nonce,
                               ferr_t *err);

/** @returns the client-first message ("n,,n=...,r=..."), *len bytes, owned by @p s. */
const char *ksasl_scram_client_first(ksasl_scram_t *s, size_t *len);

/**
 * @brief Reads the server-first message and makes the client-final one.
 * @param out  out: the client-final message, *out_len bytes, owned by @p s.
 * @returns FERR_OK; FERR_INVALID for a malformed message, a nonce that does not extend ours,
 *          iterations out of range, or a call out of order (@p err says which); FERR_INTERNAL
 *          if OpenSSL fails. Any error ends the exchange.
 */
ferr_code_t ksasl_scram_client_final(ksasl_scram_t *s, const void *server_first, size_t len, const char **out,
                                     size_t *out_len, ferr_t *err);

/**
 * @brief Reads the server-final message.
 * @returns FERR_OK if the server proved it knows the password; FERR_UNAUTHORIZED if it
 *          answered "e=..." (the reason is in @p err) or its signature is wrong; FERR_INVALID
 *          for a malformed message or a call out of order.
 */
ferr_code_t ksasl_scram_verify(ksasl_scram_t *s, const void *server_final, size_t len, ferr_t *err);

/** Wipes the secrets and frees @p s (NULL is fine). */
void ksasl_scram_destroy(ksasl_scram_t *s);

#endif
