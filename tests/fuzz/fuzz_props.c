/* fuzz_props: libFuzzer harness for the .properties parser (worker/props.c).
 *
 * The input is a properties file. Besides crashes, leaks and undefined behaviour (the build
 * adds ASan+UBSan), two invariants are checked, and a violation aborts:
 *   - every entry reads back: keys are unique and props_get() finds each entry's value;
 *   - writing the entries out with every special character escaped and parsing that text
 *     gives the same entries in the same order (the parser and its documented escapes agree).
 *
 *   build: CC=clang cmake -S . -B build-fuzz -DFERRY_FUZZ=ON
 *          cmake --build build-fuzz --target fuzz
 *   run:   build-fuzz/fuzz_props -max_total_time=300 <copy of tests/fuzz/corpus/props>
 *          (or scripts/fuzz.sh, which does both) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/props.h"

/* Writes @p s so that props_parse() reads it back verbatim: backslash before the separators,
 * comment starters and spaces, and \t \n \r \f for the line-breaking whitespace. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\f': fputs("\\f", f); break;
        case '\\': case '=': case ':': case ' ': case '#': case '!':
            fputc('\\', f);
            fputc(*s, f);
            break;
        default: fputc(*s, f);
        }
    }
}

static void check_round_trip(const props_t *p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    for (size_t i = 0; i < props_count(p); i++) {
        put_escaped(f, props_key(p, i));
        fputc('=', f);
        put_escaped(f, props_value(p, i));
        fputc('\n', f);
    }
    fclose(f);
    props_t *q = props_new();
    ferr_t err = {0};
    if (props_parse(q, text, len, &err) != FERR_OK || props_count(q) != props_count(p)) {
        fprintf(stderr, "round trip failed: %s\n", err.msg);
        abort();
    }
    for (size_t i = 0; i < props_count(p); i++)
        if (strcmp(props_key(p, i), props_key(q, i)) ||
            strcmp(props_value(p, i), props_value(q, i)))
            abort();
    props_destroy(q);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    props_t *p = props_new();
    ferr_t err = {0};
    ferr_code_t rc = props_parse(p, (const char *)data, size, &err);
    if (rc != FERR_OK && (rc != FERR_INVALID || !err.msg[0]))
        abort();
    for (size_t i = 0; i < props_count(p); i++)
        if (props_get(p, props_key(p, i)) != props_value(p, i))
            abort();
    if (rc == FERR_OK)
        check_round_trip(p);
    props_destroy(p);
    return 0;
}
