/* assign: incremental cooperative sticky assignment. See assign.h for the rules.
 *
 * One round, on indices into the sorted, de-duplicated configured array `cfg`:
 *
 *   held (every worker's current, sorted by item then worker rank)
 *     |  merge-join with cfg
 *     v
 *   owner[i] = keeper worker | NONE      revoke: not configured (rule 1), extra holders (rule 2)
 *     |  targets: floor/ceil(C / W), ceilings to the most-loaded
 *     v
 *   overloaded workers: owner[i] = BALANCE, revoke (rule 4)
 *     |  per connector group of cfg
 *     v
 *   owner[i] == NONE  ->  least-loaded worker below target (rule 3), added[i] = 1
 *     |
 *     v
 *   materialize assigned/added in cfg order (already sorted), sort revoked
 *
 * Invariant: an item gets an owner in this round only if it was held by nobody, so following
 * the rounds with acknowledgements never runs an item on two workers at once. */
#include "coordinator/assign.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWNER_NONE (-1)    /* configured, held by nobody: add this round */
#define OWNER_BALANCE (-2) /* revoked for balance: add next round */

/* ---- allocation: the list API has no error path, so running out of memory aborts ---- */

static void *assign_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "assign: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static void *assign_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "assign: out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

/* ---- lists ---- */

void assign_list_init(assign_list_t *l)
{
    l->items = NULL;
    l->n = l->cap = 0;
}

void assign_list_clear(assign_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].connector);
    l->n = 0;
}

void assign_list_dispose(assign_list_t *l)
{
    assign_list_clear(l);
    free(l->items);
    assign_list_init(l);
}

static void assign_list_reserve(assign_list_t *l, size_t want)
{
    if (want <= l->cap)
        return;
    size_t cap = l->cap ? l->cap : 8;
    while (cap < want)
        cap *= 2;
    l->items = assign_xrealloc(l->items, cap * sizeof *l->items);
    l->cap = cap;
}

void assign_list_add(assign_list_t *l, const char *connector, int task)
{
    assert(connector);
    size_t len = strlen(connector) + 1;
    char *copy = assign_xrealloc(NULL, len);
    memcpy(copy, connector, len);
    assign_list_reserve(l, l->n + 1);
    l->items[l->n].connector = copy;
    l->items[l->n].task = task;
    l->n++;
}

void assign_list_copy(assign_list_t *dst, const assign_list_t *src)
{
    assert(dst != src);
    assign_list_clear(dst);
    assign_list_reserve(dst, src->n);
    for (size_t i = 0; i < src->n; i++)
        assign_list_add(dst, src->items[i].connector, src->items[i].task);
}

int assign_list_contains(const assign_list_t *l, const char *connector, int task)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].task == task && strcmp(l->items[i].connector, connector) == 0)
            return 1;
    return 0;
}

static int assign_item_cmp(const assign_item_t *a, const assign_item_t *b)
{
    int c = strcmp(a->connector, b->connector);
    if (c)
        return c;
    return (a->task > b->task) - (a->task < b->task);
}

static int assign_item_qcmp(const void *a, const void *b)
{
    return assign_item_cmp(a, b);
}

int assign_list_equal(const assign_list_t *a, const assign_list_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].task != b->items[i].task || strcmp(a->items[i].connector, b->items[i].connector))
            return 0;
    return 1;
}

void assign_list_sort(assign_list_t *l)
{
    if (l->n > 1)
        qsort(l->items, l->n, sizeof *l->items, assign_item_qcmp);
}

void assign_worker_init(assign_worker_t *w, const char *id)
{
    w->id = id;
    assign_list_init(&w->current);
    assign_list_init(&w->assigned);
    assign_list_init(&w->revoked);
    assign_list_init(&w->added);
}

void assign_worker_dispose(assign_worker_t *w)
{
    assign_list_dispose(&w->current);
    assign_list_dispose(&w->assigned);
    assign_list_dispose(&w->revoked);
    assign_list_dispose(&w->added);
}

/* ---- one round ---- */

typedef struct assign_held {
    const assign_item_t *it;
    size_t rank; /* position of the worker in id order */
    size_t w;    /* index into the caller's array */
} assign_held_t;

typedef struct assign_round {
    assign_worker_t *ws;
    size_t nw;
    const assign_item_t **cfg; /* sorted, unique; borrowed from configured */
    size_t ncfg;
    long *owner;            /* per cfg item: worker index, OWNER_NONE or OWNER_BALANCE */
    unsigned char *added;   /* per cfg item */
    size_t *rank;           /* per worker: position in id order */
    size_t *cnt;            /* per worker: items held after this round so far */
    size_t *kind;           /* per worker: [2w] connector instances, [2w+1] tasks */
    size_t *target;         /* per worker */
    assign_stats_t *st;
} assign_round_t;

static int assign_ptr_qcmp(const void *a, const void *b)
{
    return assign_item_cmp(*(const assign_item_t *const *)a, *(const assign_item_t *const *)b);
}

static int assign_held_qcmp(const void *a, const void *b)
{
    const assign_held_t *x = a, *y = b;
    int c = assign_item_cmp(x->it, y->it);
    if (c)
        return c;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Worker ranks by id, so "lowest id" never depends on the caller's order. */
static void assign_rank_workers(assign_round_t *r)
{
    size_t *order = assign_xcalloc(r->nw, sizeof *order);
    for (size_t i = 0; i < r->nw; i++)
        order[i] = i;
    /* insertion sort: the input is documented as sorted, so this is linear in practice */
    for (size_t i = 1; i < r->nw; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && strcmp(r->ws[order[j - 1]].id, r->ws[v].id) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t i = 0; i < r->nw; i++)
        r->rank[order[i]] = i;
    free(order);
}

static void assign_build_cfg(assign_round_t *r, const assign_list_t *configured)
{
    r->cfg = assign_xcalloc(configured->n, sizeof *r->cfg);
    for (size_t i = 0; i < configured->n; i++)
        r->cfg[i] = &configured->items[i];
    qsort(r->cfg, configured->n, sizeof *r->cfg, assign_ptr_qcmp);
    size_t n = 0;
    for (size_t i = 0; i < configured->n; i++)
        if (n == 0 || assign_item_cmp(r->cfg[n - 1], r->cfg[i]) != 0)
            r->cfg[n++] = r->cfg[i];
    r->ncfg = n;
}

static assign_held_t *assign_build_held(const assign_round_t *r, size_t *nheld)
{
    size_t n = 0;
    for (size_t w = 0; w < r->nw; w++)
        n += r->ws[w].current.n;
    assign_held_t *h = assign_xcalloc(n, sizeof *h);
    size_t k = 0;
    for (size_t w = 0; w < r->nw; w++)
        for (size_t i = 0; i < r->ws[w].current.n; i++)
            h[k++] = (assign_held_t){&r->ws[w].current.items[i], r->rank[w], w};
    qsort(h, n, sizeof *h, assign_held_qcmp);
    *nheld = n;
    return h;
}

/* Revokes every holder of the unconfigured item starting at h[*j] (rule 1). */
static void assign_revoke_deleted(assign_round_t *r, const assign_held_t *h, size_t nh, size_t *j)
{
    const assign_item_t *it = h[*j].it;
    size_t last = SIZE_MAX;
    for (; *j < nh && assign_item_cmp(h[*j].it, it) == 0; (*j)++) {
        if (h[*j].w == last) /* the same worker listed it twice */
            continue;
        last = h[*j].w;
        assign_list_add(&r->ws[last].revoked, it->connector, it->task);
        r->st->deleted_revoked++;
    }
}

/* Rules 1 and 2: a merge-join of held items against configured ones sets owner[]. */
static void assign_classify(assign_round_t *r, const assign_held_t *h, size_t nh)
{
    size_t j = 0;
    for (size_t i = 0; i < r->ncfg; i++) {
        while (j < nh && assign_item_cmp(h[j].it, r->cfg[i]) < 0)
            assign_revoke_deleted(r, h, nh, &j);
        if (j >= nh || assign_item_cmp(h[j].it, r->cfg[i]) != 0) {
            r->owner[i] = OWNER_NONE;
            continue;
        }
        size_t keeper = h[j].w;
        r->owner[i] = (long)keeper;
        size_t last = keeper;
        for (j++; j < nh && assign_item_cmp(h[j].it, r->cfg[i]) == 0; j++) {
            if (h[j].w == last)
                continue;
            last = h[j].w;
            assign_list_add(&r->ws[last].revoked, r->cfg[i]->connector, r->cfg[i]->task);
            r->st->duplicates_revoked++;
        }
    }
    while (j < nh)
        assign_revoke_deleted(r, h, nh, &j);
}

static void assign_count(assign_round_t *r)
{
    for (size_t i = 0; i < r->ncfg; i++) {
        if (r->owner[i] < 0)
            continue;
        size_t w = (size_t)r->owner[i];
        r->cnt[w]++;
        r->kind[2 * w + (r->cfg[i]->task >= 0)]++;
    }
}

/* Rule 4 targets: ceilings to the workers holding most, so the fewest items have to move. */
static void assign_targets(assign_round_t *r)
{
    size_t base = r->ncfg / r->nw, extra = r->ncfg % r->nw;
    size_t *order = assign_xcalloc(r->nw, sizeof *order);
    for (size_t i = 0; i < r->nw; i++)
        order[i] = i;
    for (size_t i = 1; i < r->nw; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && (r->cnt[order[j - 1]] < r->cnt[v] ||
                         (r->cnt[order[j - 1]] == r->cnt[v] && r->rank[order[j - 1]] > r->rank[v]))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t i = 0; i < r->nw; i++)
        r->target[order[i]] = base + (i < extra);
    free(order);
}

/* ---- rule 4: which items an overloaded worker gives up ---- */

typedef struct assign_group {
    size_t start, left; /* task positions in the worker's kept list: [start, start + left) */
} assign_group_t;

/* Max-heap order: more tasks left first, then the earlier connector name. */
static int assign_group_before(const assign_group_t *g, size_t a, size_t b)
{
    return g[a].left > g[b].left || (g[a].left == g[b].left && a < b);
}

static void assign_heap_down(const assign_group_t *g, size_t *heap, size_t n, size_t i)
{
    for (;;) {
        size_t best = i, l = 2 * i + 1, rr = l + 1;
        if (l < n && assign_group_before(g, heap[l], heap[best]))
            best = l;
        if (rr < n && assign_group_before(g, heap[rr], heap[best]))
            best = rr;
        if (best == i)
            return;
        size_t t = heap[i];
        heap[i] = heap[best];
        heap[best] = t;
        i = best;
    }
}

static void assign_revoke_one(assign_round_t *r, size_t w, size_t ci)
{
    r->owner[ci] = OWNER_BALANCE;
    r->cnt[w]--;
    r->kind[2 * w + (r->cfg[ci]->task >= 0)]--;
    assign_list_add(&r->ws[w].revoked, r->cfg[ci]->connector, r->cfg[ci]->task);
    r->st->moved_revocations++;
}

/* Revokes @p m of the @p nk kept items (cfg indices, sorted): tasks first, each taken from the
 * connector with the most tasks left on this worker (its highest task index), then connector
 * instances from the end of the name order. */
static void assign_shed(assign_round_t *r, size_t w, const size_t *kept, size_t nk, size_t m)
{
    assign_group_t *g = assign_xcalloc(nk, sizeof *g);
    size_t *heap = assign_xcalloc(nk, sizeof *heap);
    size_t ng = 0;
    for (size_t i = 0; i < nk; i++) {
        if (r->cfg[kept[i]]->task < 0)
            continue;
        if (ng == 0 || strcmp(r->cfg[kept[g[ng - 1].start]]->connector, r->cfg[kept[i]]->connector))
            g[ng++] = (assign_group_t){i, 0};
        g[ng - 1].left++;
    }
    for (size_t i = 0; i < ng; i++)
        heap[i] = i;
    for (size_t i = ng / 2; i-- > 0;)
        assign_heap_down(g, heap, ng, i);
    size_t nh = ng;
    while (m > 0 && nh > 0) {
        assign_group_t *top = &g[heap[0]];
        assign_revoke_one(r, w, kept[top->start + --top->left]);
        m--;
        if (top->left == 0)
            heap[0] = heap[--nh];
        assign_heap_down(g, heap, nh, 0);
    }
    for (size_t i = nk; m > 0 && i-- > 0;) {
        if (r->cfg[kept[i]]->task < 0) {
            assign_revoke_one(r, w, kept[i]);
            m--;
        }
    }
    assert(m == 0);
    free(g);
    free(heap);
}

/* Rule 4 over all workers; returns the number of items revoked. */
static size_t assign_balance(assign_round_t *r)
{
    size_t *off = assign_xcalloc(r->nw + 1, sizeof *off);
    for (size_t w = 0; w < r->nw; w++)
        off[w + 1] = off[w] + r->cnt[w];
    size_t *kept = assign_xcalloc(off[r->nw], sizeof *kept);
    size_t *fill = assign_xcalloc(r->nw, sizeof *fill);
    for (size_t i = 0; i < r->ncfg; i++)
        if (r->owner[i] >= 0) {
            size_t w = (size_t)r->owner[i];
            kept[off[w] + fill[w]++] = i;
        }
    size_t before = r->st->moved_revocations;
    for (size_t w = 0; w < r->nw; w++)
        if (r->cnt[w] > r->target[w])
            assign_shed(r, w, kept + off[w], off[w + 1] - off[w], r->cnt[w] - r->target[w]);
    free(off);
    free(kept);
    free(fill);
    return r->st->moved_revocations - before;
}

/* ---- rule 3: adding unheld items ---- */

/* @returns the worker for cfg item @p ci, or SIZE_MAX if every worker is at its target. */
static size_t assign_pick(const assign_round_t *r, const size_t *conn, size_t ci)
{
    int t = r->cfg[ci]->task >= 0;
    size_t best = SIZE_MAX;
    for (size_t w = 0; w < r->nw; w++) {
        if (r->cnt[w] >= r->target[w])
            continue;
        if (best == SIZE_MAX || r->cnt[w] < r->cnt[best])
            best = w;
        else if (r->cnt[w] > r->cnt[best])
            continue;
        else if (conn[w] != conn[best])
            best = conn[w] < conn[best] ? w : best;
        else if (r->kind[2 * w + t] != r->kind[2 * best + t])
            best = r->kind[2 * w + t] < r->kind[2 * best + t] ? w : best;
        else if (r->rank[w] < r->rank[best])
            best = w;
    }
    return best;
}

static void assign_add_all(assign_round_t *r)
{
    size_t *conn = assign_xcalloc(r->nw, sizeof *conn); /* items of the current connector */
    for (size_t s = 0, e; s < r->ncfg; s = e) {
        int any = 0;
        for (e = s; e < r->ncfg && strcmp(r->cfg[e]->connector, r->cfg[s]->connector) == 0; e++)
            any |= r->owner[e] == OWNER_NONE;
        if (!any)
            continue;
        for (size_t i = s; i < e; i++)
            if (r->owner[i] >= 0)
                conn[r->owner[i]]++;
        for (size_t i = s; i < e; i++) {
            if (r->owner[i] != OWNER_NONE)
                continue;
            size_t w = assign_pick(r, conn, i);
            assert(w != SIZE_MAX); /* unheld items never exceed the free room under the targets */
            r->owner[i] = (long)w;
            r->added[i] = 1;
            r->cnt[w]++;
            r->kind[2 * w + (r->cfg[i]->task >= 0)]++;
            conn[w]++;
            r->st->added++;
            r->st->lost_reassigned++;
        }
        for (size_t i = s; i < e; i++)
            if (r->owner[i] >= 0)
                conn[r->owner[i]] = 0;
    }
    free(conn);
}

static void assign_materialize(assign_round_t *r)
{
    for (size_t w = 0; w < r->nw; w++)
        assign_list_reserve(&r->ws[w].assigned, r->cnt[w]);
    for (size_t i = 0; i < r->ncfg; i++) {
        if (r->owner[i] < 0)
            continue;
        assign_worker_t *wk = &r->ws[r->owner[i]];
        assign_list_add(&wk->assigned, r->cfg[i]->connector, r->cfg[i]->task);
        if (r->added[i])
            assign_list_add(&wk->added, r->cfg[i]->connector, r->cfg[i]->task);
    }
    for (size_t w = 0; w < r->nw; w++)
        assign_list_sort(&r->ws[w].revoked);
}

int assign_compute(const assign_list_t *configured, assign_worker_t *workers, size_t nworkers,
                   assign_stats_t *stats)
{
    assign_stats_t scratch;
    assign_round_t r = {.ws = workers, .nw = nworkers, .st = stats ? stats : &scratch};
    memset(r.st, 0, sizeof *r.st);
    for (size_t w = 0; w < nworkers; w++) {
        assign_list_clear(&workers[w].assigned);
        assign_list_clear(&workers[w].revoked);
        assign_list_clear(&workers[w].added);
    }
    assign_build_cfg(&r, configured);
    if (nworkers == 0) {
        free(r.cfg);
        return 0;
    }
    r.owner = assign_xcalloc(r.ncfg, sizeof *r.owner);
    r.added = assign_xcalloc(r.ncfg, 1);
    r.rank = assign_xcalloc(nworkers, sizeof *r.rank);
    r.cnt = assign_xcalloc(nworkers, sizeof *r.cnt);
    r.kind = assign_xcalloc(2 * nworkers, sizeof *r.kind);
    r.target = assign_xcalloc(nworkers, sizeof *r.target);

    assign_rank_workers(&r);
    size_t nh;
    assign_held_t *h = assign_build_held(&r, &nh);
    assign_classify(&r, h, nh);
    free(h);
    assign_count(&r);
    assign_targets(&r);
    size_t moved = assign_balance(&r);
    assign_add_all(&r);
    assign_materialize(&r);

    free(r.cfg);
    free(r.owner);
    free(r.added);
    free(r.rank);
    free(r.cnt);
    free(r.kind);
    free(r.target);
    return moved > 0;
}
