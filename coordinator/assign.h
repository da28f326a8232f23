/* assign: the leader's incremental cooperative sticky assignor (KIP-415 style).
 *
 * Why it exists: a rebalance must not stop work that does not have to move. Every worker keeps
 * what it runs; an item that has to move is revoked from its holder in one round and added to
 * another worker only in a later round, once the holder has acknowledged the revocation. The
 * caller enforces the "acknowledged" part by passing each worker's acknowledged allocation as
 * `current`; this module only guarantees that it never adds an item some live worker holds.
 *
 * Pure computation: no I/O, no clock, no globals, deterministic for a given input. Cost is
 * O(C log C + H log H + U * W) for C configured items, H held items, U unheld items, W workers.
 * Allocation failure aborts (the lists have no error path). */
#ifndef FERRY_ASSIGN_H
#define FERRY_ASSIGN_H

#include <stddef.h>

/** Task index that stands for the connector instance itself (Kafka's CONNECTOR_TASK). */
#define ASSIGN_CONNECTOR_TASK (-1)

/** One unit of work: a connector instance (task == -1) or one of its tasks (task >= 0). */
typedef struct assign_item {
    char *connector; /* owned by the list that holds the item */
    int task;
} assign_item_t;

/** A growable list of items; the list owns the connector strings. Zero-filled is a valid empty list. */
typedef struct assign_list {
    assign_item_t *items;
    size_t n, cap;
} assign_list_t;

/** @brief Makes @p l an empty list. */
void assign_list_init(assign_list_t *l);
/** @brief Frees the items and their strings; @p l is left empty and reusable. */
void assign_list_dispose(assign_list_t *l);
/** @brief Removes all items but keeps the allocation. */
void assign_list_clear(assign_list_t *l);
/** @brief Appends a copy of @p connector (borrowed) with @p task. Duplicates are not filtered. */
void assign_list_add(assign_list_t *l, const char *connector, int task);
/** @brief Replaces the content of @p dst with a deep copy of @p src. */
void assign_list_copy(assign_list_t *dst, const assign_list_t *src);
/** @returns 1 if the list holds {connector, task}, else 0. Linear scan. */
int assign_list_contains(const assign_list_t *l, const char *connector, int task);
/** @returns 1 if both lists hold the same items in the same order, else 0. */
int assign_list_equal(const assign_list_t *a, const assign_list_t *b);
/** @brief Sorts by connector name (strcmp), then task index (the connector instance first). */
void assign_list_sort(assign_list_t *l);

/** One live worker as the assignor sees it. */
typedef struct assign_worker {
    const char *id;         /* member id, borrowed; workers are passed sorted by id */
    assign_list_t current;  /* input: what it holds now (acknowledged) */
    assign_list_t assigned; /* output: what it should hold after this round = current - revoked + added */
    assign_list_t revoked;  /* output: stop these now */
    assign_list_t added;    /* output: start these now */
} assign_worker_t;

/** @brief Sets the id (borrowed) and makes all four lists empty. */
void assign_worker_init(assign_worker_t *w, const char *id);
/** @brief Frees all four lists. */
void assign_worker_dispose(assign_worker_t *w);

/** What one round did. */
typedef struct assign_stats {
    size_t moved_revocations;  /* revoked from overloaded workers to rebalance (added next round) */
    size_t added;              /* items added, all of them configured and held by no live worker */
    size_t lost_reassigned;    /* configured items that no live worker held and that were added now:
                                  lost with a departed worker, new, or revoked last round. The assignor
                                  keeps no history, so this equals `added`; the caller tells the cases
                                  apart with its previous assignment. */
    size_t deleted_revoked;    /* held but no longer configured (counted once per holder) */
    size_t duplicates_revoked; /* held by 2+ workers: revoked from all but the lowest id */
} assign_stats_t;

/**
 * @brief Computes one rebalance round.
 *
 * @p configured is every item that should run (duplicates are ignored). For each worker,
 * `current` is read and `assigned`, `revoked` and `added` are cleared and then filled, each
 * sorted with assign_list_sort() order. Rules:
 *  1. held but not configured: revoked from every holder;
 *  2. held by 2+ workers: kept on the lowest-id holder, revoked from the others;
 *  3. configured and held by nobody: added at once to the least-loaded worker still below its
 *     target (loads counted after this round's revocations; ties go to the worker holding fewer
 *     items of the same connector, then fewer items of the same kind (connector instances or
 *     tasks), then the lower id), so a connector's tasks and the connector instances spread out;
 *  4. targets are floor(total/n) or ceil(total/n); the ceilings go to the workers holding the
 *     most (ties: lower id), which makes the revocations below the minimum. A worker holding more
 *     than its target has the excess revoked (tasks before connector instances, taken from the
 *     connector it holds most of); those items are not added anywhere this round;
 *  5. nothing else moves.
 * Once the workers acknowledge, the next round adds what rule 4 revoked and returns 0.
 *
 * @param configured  borrowed, not modified.
 * @param workers     borrowed array of @p nworkers, sorted by id (ties are broken by id anyway).
 * @param stats       may be NULL; zeroed then filled.
 * @returns 1 if rule 4 revoked something (another round is needed), else 0.
 * @remark thread: pure; safe on any thread as long as the arguments are not shared.
 */
int assign_compute(const assign_list_t *configured, assign_worker_t *workers, size_t nworkers,
                   assign_stats_t *stats);

#endif
