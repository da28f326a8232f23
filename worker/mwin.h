/* mwin: the minimum, maximum and mean of a value over a sliding time window, computed as
 * Kafka's metrics library computes Min, Max and Avg (SampledStat with its defaults:
 * metrics.sample.window.ms=30000, metrics.num.samples=2). Values go into the current sample;
 * a sample that is MWIN_SAMPLE_MS old is replaced by a new one; a read combines the samples
 * that started less than MWIN_SAMPLES * MWIN_SAMPLE_MS ago. So a read covers the last 30 to
 * 60 s, and nothing once the value has not been recorded for 60 s (Kafka reads NaN then).
 *
 * Used for MirrorMaker 2's replication-latency-ms-min/-max/-avg and record-age-ms-min/-max/
 * -avg (mdash.h). Pure: the caller passes the time and guards the struct. */
#ifndef FERRY_MWIN_H
#define FERRY_MWIN_H

#include <stdint.h>

#define MWIN_SAMPLE_MS 30000
#define MWIN_SAMPLES 2

typedef struct mwin_sample {
    int64_t start; /* ms; the sample holds values recorded from here on */
    uint64_t n;
    double min, max, sum;
} mwin_sample_t;

typedef struct mwin {
    mwin_sample_t s[MWIN_SAMPLES];
    int cur;
} mwin_t;

/** An empty window (a zeroed mwin_t is not: its samples would look current at time 0). */
void mwin_init(mwin_t *w);
/** Records @p n values at @p now whose minimum, maximum and sum are given (n = 1: one value
 *  v as mwin_add(w, now, v, v, v, 1)). @p now never goes back by more than clock noise. */
void mwin_add(mwin_t *w, int64_t now, double min, double max, double sum, uint64_t n);
/** The minimum, maximum and mean of what was recorded in the window ending at @p now.
 *  @returns the number of values; 0: none (the outputs are left alone). */
uint64_t mwin_read(const mwin_t *w, int64_t now, double *min, double *max, double *avg);

#endif
