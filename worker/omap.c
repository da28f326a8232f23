/* omap: compact source -> destination offset maps and their translation (see omap.h). */
#include "worker/omap.h"

#include <string.h>

int omap_record(omap_t *m, int64_t src, int64_t dst)
{
    if (src < 0 || dst < 0)
        return 0;
    if (m->n > 0) {
        omap_seg_t *last = &m->seg[m->n - 1];
        if (last->src + last->n == src && last->dst + last->n == dst) {
            last->n++;
            return 0;
        }
        if (src >= last->src && src < last->src + last->n && dst == last->dst + (src - last->src))
            return 0; /* already known */
    }
    if (m->n == OMAP_MAX_SEGS) {
        if (m->seg[0].src + m->seg[0].n > m->floor)
            m->floor = m->seg[0].src + m->seg[0].n;
        memmove(&m->seg[0], &m->seg[1], (OMAP_MAX_SEGS - 1) * sizeof m->seg[0]);
        m->n--;
    }
    m->seg[m->n++] = (omap_seg_t){src, dst, 1};
    return 1;
}

int omap_record_run(omap_t *m, int64_t src, int64_t dst, int64_t n)
{
    if (n <= 0)
        return 0;
    int rc = omap_record(m, src, dst);
    if (m->n > 0) {
        omap_seg_t *last = &m->seg[m->n - 1];
        if (src >= last->src && src < last->src + last->n && dst == last->dst + (src - last->src) &&
            src + n > last->src + last->n)
            last->n = src + n - last->src;
    }
    return rc;
}

int64_t omap_end(const omap_t *m)
{
    return m->n ? m->seg[m->n - 1].dst + m->seg[m->n - 1].n : -1;
}

omap_tr_t omap_translate(const omap_t *m, int64_t copied, int64_t c)
{
    omap_tr_t r = {OMAP_EMPTY, -1, 0};
    if (m->n == 0)
        return r;
    /* The newest copy of c wins: after a re-copy the records that follow it are there. */
    for (int i = m->n - 1; i >= 0; i--) {
        const omap_seg_t *s = &m->seg[i];
        if (c >= s->src && c < s->src + s->n) {
            r.kind = OMAP_EXACT;
            r.dst = s->dst + (c - s->src);
            return r;
        }
    }
    if (c < m->floor) {
        r.kind = OMAP_BELOW;
        return r;
    }
    if (copied >= 0 && c >= copied) {
        r.kind = c == copied ? OMAP_END : OMAP_AHEAD;
        r.dst = omap_end(m);
        return r;
    }
    /* c was never copied: continue at the copy of the lowest source offset above it (the
     * newest such copy), and say how many source offsets lie between. */
    const omap_seg_t *next = NULL;
    for (int i = 0; i < m->n; i++)
        if (m->seg[i].src > c && (!next || m->seg[i].src <= next->src))
            next = &m->seg[i];
    if (!next) {
        /* c lies between the end of a segment and the copy position (possible only when
         * the copy position was moved): nothing copied follows it yet */
        r.kind = OMAP_AHEAD;
        r.dst = omap_end(m);
        return r;
    }
    r.kind = OMAP_GAP;
    r.dst = next->dst;
    r.skipped = next->src - c;
    return r;
}

const char *omap_kind_name(omap_kind_t k)
{
    switch (k) {
    case OMAP_EXACT: return "exact";
    case OMAP_GAP: return "gap";
    case OMAP_END: return "end";
    case OMAP_AHEAD: return "ahead";
    case OMAP_BELOW: return "below";
    case OMAP_EMPTY: return "empty";
    }
    return "?";
}

void omap_to_json(const omap_t *m, json_t *value)
{
    json_t *a = json_array();
    for (int i = 0; i < m->n; i++)
        json_array_append_new(a, json_pack("[I,I,I]", (json_int_t)m->seg[i].src,
                                           (json_int_t)m->seg[i].dst, (json_int_t)m->seg[i].n));
    json_object_set_new(value, OMAP_JSON_KEY, a);
    if (m->floor > 0)
        json_object_set_new(value, OMAP_FLOOR_KEY, json_integer(m->floor));
}

int omap_from_json(omap_t *m, const json_t *value)
{
    memset(m, 0, sizeof *m);
    const json_t *a = json_object_get(value, OMAP_JSON_KEY), *fl = json_object_get(value, OMAP_FLOOR_KEY);
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > OMAP_MAX_SEGS || (fl && (!json_is_integer(fl) || json_integer_value(fl) < 0)))
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        json_t *s = json_array_get(e, 0), *d = json_array_get(e, 1), *n = json_array_get(e, 2);
        if (json_array_size(e) != 3 || !json_is_integer(s) || !json_is_integer(d) || !json_is_integer(n) ||
            json_integer_value(s) < 0 || json_integer_value(d) < 0 || json_integer_value(n) < 1 ||
            (m->n > 0 && json_integer_value(d) < m->seg[m->n - 1].dst + m->seg[m->n - 1].n)) {
            memset(m, 0, sizeof *m);
            return -1;
        }
        m->seg[m->n++] = (omap_seg_t){json_integer_value(s), json_integer_value(d), json_integer_value(n)};
    }
    m->floor = fl ? json_integer_value(fl) : 0;
    return 0;
}
