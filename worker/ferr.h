/* ferr: ferry's error codes and error buffer.
 * Functions return an ferr_code_t (0 = OK) and, where a person must read why, fill a
 * caller-owned ferr_t. The REST layer maps codes to HTTP statuses in exactly one place
 * (rest_status_of()). Log an error once, where it crosses a boundary, not where it is made. */
#ifndef FERRY_FERR_H
#define FERRY_FERR_H

#include <stdarg.h>

typedef enum {
    FERR_OK = 0,
    FERR_INVALID,     /* bad input: 400 */
    FERR_NOT_FOUND,   /* 404 */
    FERR_CONFLICT,    /* 409: exists, rebalance, no leader */
    FERR_FORBIDDEN,   /* 403 */
    FERR_UNAUTHORIZED,/* 401 */
    FERR_TOO_LARGE,   /* 413 */
    FERR_UNSUPPORTED, /* 415 */
    FERR_METHOD,      /* 405 */
    FERR_TIMEOUT,     /* 500 "Request timed out" */
    FERR_UNAVAILABLE, /* 503 */
    FERR_INTERNAL,    /* 500 */
    FERR_KAFKA,       /* 500, a Kafka client error */
    FERR_ZK,          /* 500, a ZooKeeper error */
} ferr_code_t;

typedef struct ferr {
    ferr_code_t code;
    char msg[1024];
} ferr_t;

/** Fills @p e (may be NULL) and returns @p code, so callers can `return ferr_set(...)`. */
ferr_code_t ferr_set(ferr_t *e, ferr_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ferr_clear(ferr_t *e);
const char *ferr_code_name(ferr_code_t code);

#endif
