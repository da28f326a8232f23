/* props: an ordered key/value list read with java.util.Properties.load syntax.
 * The worker configuration (connect-distributed.properties) is the main user: operators
 * reuse the files they already run Kafka Connect with, so the parser follows Java's rules
 * exactly, quirks included, rather than some simpler "key=value" dialect. */
#ifndef FERRY_PROPS_H
#define FERRY_PROPS_H

#include <stddef.h>

#include "worker/ferr.h"

/** @brief An ordered list of unique keys, each with a value. Owns its strings. */
typedef struct props props_t;

/**
 * @brief Creates an empty list.
 * @returns the list; aborts on out-of-memory. Free with props_destroy().
 */
props_t *props_new(void);

/** @brief Frees the list and all its strings. Accepts NULL. */
void props_destroy(props_t *p);

/**
 * @brief Parses .properties text and adds every entry to @p p.
 *
 * The rules of java.util.Properties.load(Reader):
 * - Lines end with LF, CR or CRLF. Leading space, tab and form feed are skipped; blank lines
 *   and lines whose first other character is '#' or '!' are comments.
 * - A line ending in an odd number of backslashes continues on the next line; the backslash
 *   is dropped, as is the leading whitespace of the continuation line. A comment line never
 *   continues, and '#' at the start of a continuation line is data. A blank continuation
 *   line ends the logical line.
 * - The key ends at the first unescaped '=', ':', space, tab or form feed. Whitespace around
 *   the separator is skipped, and one '=' or ':' after whitespace is too ("k  = v", "k:v",
 *   "k v" all give k -> v). A line with only a key gives an empty value; "=v" gives the
 *   empty key.
 * - In keys and values: \t \n \r \f, \uXXXX (written out as UTF-8; a surrogate pair becomes one
 *   code point, an unpaired surrogate becomes U+FFFD), and a backslash before any other
 *   character yields that character (\= \: \# \! "\ " and a doubled backslash).
 * - A later duplicate key replaces the value but keeps the key's first position.
 *
 * Checked against JDK 17 on random inputs. Differences from Java: input bytes are taken as
 * UTF-8 and copied verbatim (Java's load(InputStream) reads ISO-8859-1); an unpaired
 * surrogate gives U+FFFD where Java's UTF-8 encoder gives '?'; NUL (raw or \u0000) is
 * rejected because keys and values are C strings.
 *
 * @param buf  the text; need not be NUL-terminated. Borrowed.
 * @param len  its length in bytes.
 * @param err  filled on error (may be NULL).
 * @returns FERR_OK, or FERR_INVALID with err->msg like "line 12: malformed \uxxxx encoding".
 *          Entries before the bad line have already been added.
 */
ferr_code_t props_parse(props_t *p, const char *buf, size_t len, ferr_t *err);

/**
 * @brief Reads the file at @p path and parses it with props_parse().
 * @returns FERR_OK; FERR_INVALID with "<path>: <strerror>" on I/O errors, or with
 *          "<path>: line N: ..." on syntax errors.
 */
ferr_code_t props_load_file(props_t *p, const char *path, ferr_t *err);

/**
 * @brief Sets @p key to @p value, replacing an existing value in place or appending.
 * @param key, value  copied.
 */
void props_set(props_t *p, const char *key, const char *value);

/** @returns the value of @p key, or NULL if absent. Valid until the key is set again or @p p is destroyed. */
const char *props_get(const props_t *p, const char *key);

/** @returns the number of entries. */
size_t props_count(const props_t *p);

/** @returns the key of entry @p i (0 <= i < props_count(p)), in order of first appearance. */
const char *props_key(const props_t *p, size_t i);

/** @returns the value of entry @p i. */
const char *props_value(const props_t *p, size_t i);

#endif
