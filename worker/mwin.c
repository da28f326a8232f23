/* mwin: windowed min/max/mean, Kafka's SampledStat (record: advance a complete sample;
 * measure: drop samples older than the whole window, combine the rest). See mwin.h. */
#include "worker/mwin.h"

void mwin_init(mwin_t *w)
{
    for (int i = 0; i < MWIN_SAMPLES; i++)
        w->s[i] = (mwin_sample_t){.start = INT64_MIN / 2};
    w->cur = 0;
}

void mwin_add(mwin_t *w, int64_t now, double min, double max, double sum, uint64_t n)
{
    if (!n)
        return;
    mwin_sample_t *s = &w->s[w->cur];
    if (now - s->start >= MWIN_SAMPLE_MS) {
        w->cur = (w->cur + 1) % MWIN_SAMPLES;
        s = &w->s[w->cur];
        *s = (mwin_sample_t){.start = now};
    }
    if (!s->n || min < s->min)
        s->min = min;
    if (!s->n || max > s->max)
        s->max = max;
    s->sum += sum;
    s->n += n;
}

uint64_t mwin_read(const mwin_t *w, int64_t now, double *min, double *max, double *avg)
{
    uint64_t n = 0;
    double lo = 0, hi = 0, sum = 0;
    for (int i = 0; i < MWIN_SAMPLES; i++) {
        const mwin_sample_t *s = &w->s[i];
        if (!s->n || now - s->start >= (int64_t)MWIN_SAMPLES * MWIN_SAMPLE_MS)
            continue;
        if (!n || s->min < lo)
            lo = s->min;
        if (!n || s->max > hi)
            hi = s->max;
        sum += s->sum;
        n += s->n;
    }
    if (n) {
        *min = lo;
        *max = hi;
        *avg = sum / (double)n;
    }
    return n;
}
