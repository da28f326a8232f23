/* omap: the offset map of one copied partition — which destination offset holds the copy of
 * which source offset — kept compact as segments where both sides advance together.
 *
 * Why: a consumer group that stopped at source offset C must continue on the destination at
 * the copy of C. Offsets differ between the two logs (retention before the copy started,
 * compaction gaps, transaction markers, offsets altered over REST, re-copies after a crash),
 * but only at a few points, so a segment is written only where the difference changes.
 * The task keeps the map next to its source offset in the offset topic (same record, same
 * transaction), so every worker has it and a new owner continues it.
 *
 * Pure data, no locks: a task owns its maps; translation works on copies. */
#ifndef FERRY_OMAP_H
#define FERRY_OMAP_H

#include <jansson.h>
#include <stdint.h>

/** Most segments kept per partition; the oldest are dropped first, and the source offsets
 *  they covered are then reported as below the map (a transactional copy starts a segment
 *  per transaction, its commit marker taking one destination offset). */
#define OMAP_MAX_SEGS 128
/** Keys in an offset value: {"offset":N,"ferry.map":[[src,dst,count],...],"ferry.map.floor":F}. */
#define OMAP_JSON_KEY "ferry.map"
#define OMAP_FLOOR_KEY "ferry.map.floor"

/** Source offsets src..src+n-1 were copied, in order, to destination offsets dst..dst+n-1. */
typedef struct omap_seg {
    int64_t src, dst, n;
} omap_seg_t;

/** Segments in the order they were written to the destination (dst ascending). */
typedef struct omap {
    omap_seg_t seg[OMAP_MAX_SEGS];
    int n;
    int64_t floor; /* source offsets below it were in dropped segments: unknown (0: none) */
} omap_t;

typedef enum {
    OMAP_EXACT = 1, /* the copy of the source offset is at dst */
    OMAP_GAP,       /* no record of the source offsets [c, c+skipped) was copied (deleted by
                       retention or compaction before the copy, transaction markers, offsets
                       moved over REST); dst is the copy of the next copied one */
    OMAP_END,       /* c is the copy's position: dst is the end of what was copied */
    OMAP_AHEAD,     /* c is past the copy's position (copied): records before c may still be
                       copied; dst is the end of what was copied so far */
    OMAP_BELOW,     /* c was in a segment dropped to keep the map small: unknown */
    OMAP_EMPTY,     /* nothing copied yet */
} omap_kind_t;

typedef struct omap_tr {
    omap_kind_t kind;
    int64_t dst;     /* translated destination offset (valid for EXACT, GAP, END, AHEAD) */
    int64_t skipped; /* GAP: source offsets without a copy between c and the next copied */
} omap_tr_t;

/** Records that source offset @p src was written at destination offset @p dst.
 *  @returns 1 if that started a new segment (worth storing soon), else 0. */
int omap_record(omap_t *m, int64_t src, int64_t dst);
/** Records that source offsets @p src..src+n-1 were written at @p dst..dst+n-1 (a forwarded
 *  batch). @returns as omap_record(). */
int omap_record_run(omap_t *m, int64_t src, int64_t dst, int64_t n);
/** The destination offset after the last segment, -1 for an empty map. */
int64_t omap_end(const omap_t *m);
/** Where a consumer whose next source offset is @p c continues on the destination; @p copied
 *  is the next source offset the copy has not yet written (the stored source offset). */
omap_tr_t omap_translate(const omap_t *m, int64_t copied, int64_t c);
const char *omap_kind_name(omap_kind_t k);

/** Adds the map to an offset value object (OMAP_JSON_KEY, and OMAP_FLOOR_KEY when set). */
void omap_to_json(const omap_t *m, json_t *value);
/** Reads the map from an offset value; a missing or malformed map leaves @p m empty.
 *  @returns 0, or -1 when a map was there but malformed. */
int omap_from_json(omap_t *m, const json_t *value);

#endif
