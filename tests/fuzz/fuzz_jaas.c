/* fuzz_jaas: libFuzzer harness for the sasl.jaas.config parser and its translation
 * (worker/jaas.c).
 *
 * The input is a JAAS config value. Besides crashes, leaks and undefined behaviour, these
 * invariants are checked (a violation aborts):
 *   - a failed parse says why and leaves nothing behind; a parsed entry has a class and
 *     unique option keys;
 *   - writing the entry back with every part quoted and escaped parses to the same entry
 *     (the tokenizer and its escapes agree);
 *   - the entry with every value replaced by a marker (\001) translates, for each mechanism,
 *     either into librdkafka properties or into a message without the marker: no message
 *     shows a value.
 *
 *   run: build-fuzz/fuzz_jaas -max_total_time=300 <copy of tests/fuzz/corpus/jaas>
 *        (or scripts/fuzz.sh 300 jaas) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/jaas.h"

static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\r')
            fputs("\\r", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* The entry as text; every value replaced by @p marker when it is not NULL. */
static char *write_entry(const jaas_t *j, const char *marker)
{
    static const char *const flags[] = {"required", "requisite", "sufficient", "optional"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    put_quoted(f, j->module);
    fprintf(f, " %s", flags[j->flag]);
    for (size_t i = 0; i < j->n; i++) {
        fputc(' ', f);
        put_quoted(f, j->keys[i]);
        fputc('=', f);
        put_quoted(f, marker ? marker : j->values[i]);
    }
    fputs(";\n", f);
    fclose(f);
    return text;
}

static void check_entry(const jaas_t *j)
{
    if (!j->module || (unsigned)j->flag > JAAS_OPTIONAL)
        abort();
    for (size_t i = 0; i < j->n; i++)
        for (size_t k = i + 1; k < j->n; k++)
            if (!strcmp(j->keys[i], j->keys[k]))
                abort();
}

static void check_round_trip(const jaas_t *j)
{
    char *text = write_entry(j, NULL), why[1024];
    jaas_t q;
    if (jaas_parse(text, &q, why, sizeof why)) {
        fprintf(stderr, "round trip failed: %s\n%s", why, text);
        abort();
    }
    if (strcmp(q.module, j->module) || q.flag != j->flag || q.n != j->n)
        abort();
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(q.keys[i], j->keys[i]) || strcmp(q.values[i], j->values[i]))
            abort();
    jaas_dispose(&q);
    free(text);
}

static void check_no_value_shown(const jaas_t *j)
{
    static const char *const mechanisms[] = {NULL, "PLAIN", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER", "X"};
    if (strchr(j->module, '\001'))
        return;
    for (size_t i = 0; i < j->n; i++)
        if (strchr(j->keys[i], '\001'))
            return;
    char *text = write_entry(j, "\001v\001");
    for (size_t m = 0; m < sizeof mechanisms / sizeof mechanisms[0]; m++) {
        char why[1024] = "";
        props_t *out = props_new();
        int rc = jaas_translate(text, mechanisms[m], out, why, sizeof why);
        if (rc == 0 ? props_count(out) == 0 : (!why[0] || strchr(why, '\001') || props_count(out) != 0)) {
            fprintf(stderr, "translation broke an invariant (rc %d): %s\n", rc, why);
            abort();
        }
        props_destroy(out);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    if (!text)
        return 0;
    jaas_t j;
    char why[1024] = "";
    if (jaas_parse(text, &j, why, sizeof why) == 0) {
        check_entry(&j);
        check_round_trip(&j);
        check_no_value_shown(&j);
        jaas_dispose(&j);
    } else if (!why[0] || j.module || j.n) {
        abort();
    }
    props_t *out = props_new();
    (void)jaas_translate(text, "PLAIN", out, why, sizeof why);
    props_destroy(out);
    free(text);
    return 0;
}
