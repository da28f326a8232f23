/* ferr: error codes and messages. See ferr.h. */
#include "worker/ferr.h"

#include <stdio.h>

ferr_code_t ferr_set(ferr_t *e, ferr_code_t code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ferr_clear(ferr_t *e)
{
    e->code = FERR_OK;
    e->msg[0] = '\0';
}

const char *ferr_code_name(ferr_code_t code)
{
    static const char *names[] = {"OK", "INVALID", "NOT_FOUND", "CONFLICT", "FORBIDDEN",
                                  "UNAUTHORIZED", "TOO_LARGE", "UNSUPPORTED", "METHOD",
                                  "TIMEOUT", "UNAVAILABLE", "INTERNAL", "KAFKA", "ZK"};
    return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "?";
}
