/* gsync: consumer-group cut-over — translates the offsets a consumer group committed on the
 * source into offsets of the copies on the destination, and commits them there.
 *
 * Why a module and a thread of its own: translating needs blocking Kafka calls on both
 * clusters (OffsetFetch, ListOffsets, a short fetch, OffsetCommit), which must never run on
 * the h2o loop. The loop hands the thread a job carrying copies of everything it needs (the
 * connector config and, per partition, the stored copy position and offset map from the
 * offsets snapshot); the thread answers with a JSON report through the loop's queue.
 *
 * Safety rules (docs/OPERATIONS.md, "Consumer cut-over"):
 *  - a destination offset is committed only if it is ahead of the group's committed one
 *    (never backwards), and only for partitions whose translation is certain;
 *  - commits are "simple" commits (no group membership): a broker refuses them for a group
 *    that has active members, so a group already consuming on the destination is never
 *    touched — the refusal is reported, not retried;
 *  - source offsets that were never copied (deleted by retention before the copy reached
 *    them, compaction, transaction markers) are reported with their count.
 *
 * Threads: gsync_submit and the completion callbacks run on the loop thread; everything
 * else on the gsync thread, which owns its Kafka clients for the length of one job. */
#ifndef FERRY_GSYNC_H
#define FERRY_GSYNC_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>
#include <jansson.h>
#include <stdint.h>

#include "worker/ferr.h"
#include "worker/omap.h"
#include "worker/wconf.h"

/** One copied partition as the offsets snapshot knows it. */
typedef struct gsync_part {
    char *topic, *target; /* source topic and its destination name */
    int32_t partition;
    int64_t copied; /* next source offset not yet copied (stored offset), -1 unknown */
    omap_t map;
} gsync_part_t;

/** Called on the loop thread when a job ends: @p report (stolen by the callee, may be NULL on
 *  error) or @p err. */
typedef void (*gsync_cb)(void *arg, json_t *report, const ferr_t *err);

typedef struct gsync gsync_t;

/** Starts the thread; results come back through @p queue (the herder's). */
gsync_t *gsync_new(const wconf_t *wc, h2o_multithread_queue_t *queue);
/** Stops the thread after its current job; jobs still queued are answered with an error.
 *  Their callbacks run inside this call (it drains @p loop). Accepts NULL. */
void gsync_destroy(gsync_t *g, h2o_loop_t *loop);

/** Queues a translation of @p group's offsets for connector @p connector (@p config: its
 *  config, copied). @p parts (an array of @p nparts, taken over) lists its partitions.
 *  @p commit: 0 only reports, 1 also commits on the destination. Without @p cb, failures are
 *  logged (WARN). */
void gsync_submit(gsync_t *g, const char *connector, const char *group, const json_t *config,
                  gsync_part_t *parts, int nparts, int commit, gsync_cb cb, void *arg);

/** The same for every source group whose whole name matches @p regex (groups.regex; the
 *  source must answer ListGroups): the report is {"groups":[one report per group]}. */
void gsync_submit_regex(gsync_t *g, const char *connector, const char *regex, const json_t *config,
                        gsync_part_t *parts, int nparts, int commit, gsync_cb cb, void *arg);

/** Queued or running jobs. */
int gsync_pending(const gsync_t *g);

/** 1 if @p group is a valid consumer group name for the endpoints (non-empty, printable, no
 *  longer than 249 bytes). */
int gsync_group_name_ok(const char *group);

#endif
