/* metrics: Prometheus text format writer. See metrics.h. */
#include "worker/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics {
    FILE *f;
    char *buf;
    size_t len;
};

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof *m);
    if (!m || !(m->f = open_memstream(&m->buf, &m->len)))
        abort();
    return m;
}

char *metrics_finish(metrics_t *m, size_t *len)
{
    fclose(m->f);
    char *out = m->buf;
    if (len)
        *len = m->len;
    free(m);
    return out;
}

void metrics_family(metrics_t *m, const char *name, const char *type, const char *help)
{
    fprintf(m->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label value escaping of the text format: backslash, double quote and line feed. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_labels(FILE *f, const char *const *labels, const char *le)
{
    int first = 1;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        fputs(first ? "{" : ",", f);
        fprintf(f, "%s=\"", labels[i]);
        put_escaped(f, labels[i + 1]);
        fputc('"', f);
        first = 0;
    }
    if (le) {
        fprintf(f, "%sle=\"%s\"", first ? "{" : ",", le);
        first = 0;
    }
    if (!first)
        fputc('}', f);
}

static void put_value(FILE *f, double v)
{
    if (isnan(v))
        fputs(" NaN\n", f);
    else if (isinf(v))
        fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
    else if (v == (double)(int64_t)v && fabs(v) < 9.007199254740992e15)
        fprintf(f, " %lld\n", (long long)v);
    else
        fprintf(f, " %.17g\n", v);
}

void metrics_sample(metrics_t *m, const char *name, const char *const *labels, double value)
{
    fputs(name, m->f);
    put_labels(m->f, labels, NULL);
    put_value(m->f, value);
}

void metrics_histogram(metrics_t *m, const char *name, const char *const *labels, const double *bounds,
                       const uint64_t *counts, size_t n, double sum)
{
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i <= n; i++) {
        cum += counts[i];
        if (i < n)
            snprintf(le, sizeof le, "%g", bounds[i]);
        else
            strcpy(le, "+Inf");
        fprintf(m->f, "%s_bucket", name);
        put_labels(m->f, labels, le);
        put_value(m->f, (double)cum);
    }
    fprintf(m->f, "%s_sum", name);
    put_labels(m->f, labels, NULL);
    put_value(m->f, sum);
    fprintf(m->f, "%s_count", name);
    put_labels(m->f, labels, NULL);
    put_value(m->f, (double)cum);
}
