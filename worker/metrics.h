/* metrics: a writer for the Prometheus text exposition format (version 0.0.4), used by
 * GET /metrics. One family (HELP and TYPE lines, then its samples) is written at a time, so
 * callers loop over their data once per family. Label values are escaped here.
 *
 * Threads: a metrics_t belongs to whoever created it (the h2o loop thread for /metrics). */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics_t;

metrics_t *metrics_new(void);
/** Ends the text and returns it (malloc'd, NUL-terminated, length in @p len); frees @p m. */
char *metrics_finish(metrics_t *m, size_t *len);

/** Starts a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_family(metrics_t *m, const char *name, const char *type, const char *help);
/** One sample "name{labels} value". @p labels is a NULL-terminated list of key, value pairs
 *  (values escaped here); may be NULL. */
void metrics_sample(metrics_t *m, const char *name, const char *const *labels, double value);
/** A histogram's samples: cumulative name_bucket{...,le="b"} for each bound, le="+Inf",
 *  name_sum and name_count. @p counts holds n + 1 per-bucket (not cumulative) counts, the
 *  last one for values above every bound. */
void metrics_histogram(metrics_t *m, const char *name, const char *const *labels, const double *bounds,
                       const uint64_t *counts, size_t n, double sum);

#endif
