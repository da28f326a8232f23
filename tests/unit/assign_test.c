/* Unit tests for coordinator/assign: the rules one by one, per-round invariants, a fixed-seed
 * random simulation of joins, leaves and config changes, and a small benchmark (assign_bench). */
#include "coordinator/assign.h"

#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXW 16

static char ids[MAXW][16];

/* ---- helpers ---- */

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static void cfg_add_connector(assign_list_t *cfg, const char *name, int ntasks)
{
    assign_list_add(cfg, name, ASSIGN_CONNECTOR_TASK);
    for (int t = 0; t < ntasks; t++)
        assign_list_add(cfg, name, t);
}

static void cfg_make(assign_list_t *cfg, int nconn, int ntasks)
{
    char name[32];
    for (int c = 0; c < nconn; c++) {
        snprintf(name, sizeof name, "conn-%03d", c);
        cfg_add_connector(cfg, name, ntasks);
    }
}

static void workers_make(assign_worker_t *ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "w%02d", (int)i);
        assign_worker_init(&ws[i], ids[i]);
    }
}

static void workers_free(assign_worker_t *ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assign_worker_dispose(&ws[i]);
}

/* Every worker acknowledges: it now holds exactly what it was assigned. */
static void ack(assign_worker_t *ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assign_list_copy(&ws[i].current, &ws[i].assigned);
}

static int item_cmp(const assign_item_t *a, const assign_item_t *b)
{
    int c = strcmp(a->connector, b->connector);
    return c ? c : (a->task > b->task) - (a->task < b->task);
}

static int has(const assign_list_t *sorted, const assign_item_t *it)
{
    size_t lo = 0, hi = sorted->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = item_cmp(&sorted->items[mid], it);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int is_sorted_unique(const assign_list_t *l)
{
    for (size_t i = 1; i < l->n; i++)
        if (item_cmp(&l->items[i - 1], &l->items[i]) >= 0)
            return 0;
    return 1;
}

/* Checks the per-round invariants; returns the number of violations (also CUnit failures). */
static int check_round(const assign_list_t *cfg, assign_worker_t *ws, size_t n)
{
    int bad = 0;
    assign_list_t scfg, cur[MAXW], all;
    assign_list_init(&scfg);
    assign_list_init(&all);
    assign_list_copy(&scfg, cfg);
    assign_list_sort(&scfg);
    for (size_t w = 0; w < n; w++) {
        assign_list_init(&cur[w]);
        assign_list_copy(&cur[w], &ws[w].current);
        assign_list_sort(&cur[w]);
    }
    for (size_t w = 0; w < n; w++) {
        bad += !is_sorted_unique(&ws[w].assigned) + !is_sorted_unique(&ws[w].added) +
               !is_sorted_unique(&ws[w].revoked);
        for (size_t i = 0; i < ws[w].revoked.n; i++) /* revoked from what it holds */
            bad += !has(&cur[w], &ws[w].revoked.items[i]) + has(&ws[w].assigned, &ws[w].revoked.items[i]);
        for (size_t i = 0; i < ws[w].added.n; i++) { /* added only if no live worker holds it */
            for (size_t v = 0; v < n; v++)
                bad += has(&cur[v], &ws[w].added.items[i]);
            bad += !has(&ws[w].assigned, &ws[w].added.items[i]);
        }
        for (size_t i = 0; i < ws[w].assigned.n; i++) { /* assigned = current - revoked + added */
            const assign_item_t *it = &ws[w].assigned.items[i];
            bad += !has(&scfg, it);
            bad += !(has(&cur[w], it) || has(&ws[w].added, it));
            assign_list_add(&all, it->connector, it->task);
        }
        for (size_t i = 0; i < cur[w].n; i++) {
            const assign_item_t *it = &cur[w].items[i];
            bad += !(has(&ws[w].assigned, it) || has(&ws[w].revoked, it));
        }
    }
    assign_list_sort(&all); /* no item assigned to two workers */
    for (size_t i = 1; i < all.n; i++)
        bad += item_cmp(&all.items[i - 1], &all.items[i]) == 0;
    CU_ASSERT_EQUAL(bad, 0);
    assign_list_dispose(&scfg);
    assign_list_dispose(&all);
    for (size_t w = 0; w < n; w++)
        assign_list_dispose(&cur[w]);
    return bad;
}

/* After convergence: every configured item held exactly once, counts within one. */
static int check_converged(const assign_list_t *cfg, assign_worker_t *ws, size_t n)
{
    if (n == 0)
        return 0;
    assign_list_t scfg;
    assign_list_init(&scfg);
    assign_list_copy(&scfg, cfg);
    assign_list_sort(&scfg);
    size_t uniq = 0;
    for (size_t i = 0; i < scfg.n; i++)
        uniq += i == 0 || item_cmp(&scfg.items[i - 1], &scfg.items[i]) != 0;
    size_t total = 0, mn = SIZE_MAX, mx = 0;
    int bad = 0;
    for (size_t w = 0; w < n; w++) {
        total += ws[w].current.n;
        mn = ws[w].current.n < mn ? ws[w].current.n : mn;
        mx = ws[w].current.n > mx ? ws[w].current.n : mx;
        for (size_t i = 0; i < ws[w].current.n; i++)
            bad += !has(&scfg, &ws[w].current.items[i]);
    }
    bad += total != uniq;
    bad += mx - mn > 1;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(mx - mn <= 1);
    assign_list_dispose(&scfg);
    return bad;
}

/* Runs rounds with acks until the assignor returns 0; returns the number of rounds. */
static int run_to_convergence(const assign_list_t *cfg, assign_worker_t *ws, size_t n, assign_stats_t *sum)
{
    int rounds = 0, again;
    if (sum)
        memset(sum, 0, sizeof *sum);
    do {
        assign_stats_t st;
        again = assign_compute(cfg, ws, n, &st);
        check_round(cfg, ws, n);
        ack(ws, n);
        rounds++;
        if (sum) {
            sum->moved_revocations += st.moved_revocations;
            sum->added += st.added;
            sum->lost_reassigned += st.lost_reassigned;
            sum->deleted_revoked += st.deleted_revoked;
            sum->duplicates_revoked += st.duplicates_revoked;
        }
    } while (again && rounds < 10);
    return rounds;
}

static size_t count_tasks_of(const assign_list_t *l, const char *conn)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        k += l->items[i].task >= 0 && strcmp(l->items[i].connector, conn) == 0;
    return k;
}

static size_t count_instances(const assign_list_t *l)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        k += l->items[i].task < 0;
    return k;
}

/* ---- tests ---- */

static void test_list_helpers(void)
{
    assign_list_t l, c;
    assign_list_init(&l);
    assign_list_init(&c);
    assign_list_add(&l, "b", 1);
    assign_list_add(&l, "a", 2);
    assign_list_add(&l, "b", -1);
    assign_list_add(&l, "a", 10);
    assign_list_sort(&l);
    CU_ASSERT_STRING_EQUAL(l.items[0].connector, "a");
    CU_ASSERT_EQUAL(l.items[0].task, 2);
    CU_ASSERT_EQUAL(l.items[1].task, 10);
    CU_ASSERT_STRING_EQUAL(l.items[2].connector, "b");
    CU_ASSERT_EQUAL(l.items[2].task, -1);
    CU_ASSERT(assign_list_contains(&l, "b", -1));
    CU_ASSERT(!assign_list_contains(&l, "b", 0));
    CU_ASSERT(!assign_list_contains(&l, "c", 1));
    assign_list_copy(&c, &l);
    CU_ASSERT_EQUAL(c.n, 4);
    CU_ASSERT(c.items[0].connector != l.items[0].connector);
    assign_list_clear(&l);
    CU_ASSERT_EQUAL(l.n, 0);
    assign_list_dispose(&l);
    assign_list_dispose(&c);
    assign_list_dispose(&l); /* twice is fine */
}

static void test_empty(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, NULL, 0, &st), 0);
    CU_ASSERT_EQUAL(st.added, 0);
    cfg_make(&cfg, 2, 2);
    CU_ASSERT_EQUAL(assign_compute(&cfg, NULL, 0, &st), 0); /* nobody to run them */
    CU_ASSERT_EQUAL(st.added, 0);

    assign_worker_t ws[3];
    workers_make(ws, 3);
    assign_list_t none;
    assign_list_init(&none);
    CU_ASSERT_EQUAL(assign_compute(&none, ws, 3, &st), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(ws[i].assigned.n + ws[i].added.n + ws[i].revoked.n, 0);
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, NULL), 0); /* stats may be NULL */
    workers_free(ws, 3);
    assign_list_dispose(&cfg);
}

static void test_first_assignment(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_make(&cfg, 2, 4); /* 10 items */
    assign_worker_t ws[3];
    workers_make(ws, 3);
    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0);
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.added, 10);
    CU_ASSERT_EQUAL(st.lost_reassigned, 10);
    CU_ASSERT_EQUAL(st.moved_revocations + st.deleted_revoked + st.duplicates_revoked, 0);
    CU_ASSERT_EQUAL(ws[0].assigned.n, 4); /* ties go to the lowest id */
    CU_ASSERT_EQUAL(ws[1].assigned.n, 3);
    CU_ASSERT_EQUAL(ws[2].assigned.n, 3);
    for (int w = 0; w < 3; w++) {
        CU_ASSERT(count_tasks_of(&ws[w].assigned, "conn-000") <= 2); /* tasks spread */
        CU_ASSERT(count_tasks_of(&ws[w].assigned, "conn-001") <= 2);
        CU_ASSERT(count_instances(&ws[w].assigned) <= 1); /* connector instances spread */
        CU_ASSERT_EQUAL(ws[w].added.n, ws[w].assigned.n);
    }
    ack(ws, 3);
    check_converged(&cfg, ws, 3);
    workers_free(ws, 3);
    assign_list_dispose(&cfg);
}

static void test_join(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_make(&cfg, 3, 5); /* 18 items */
    assign_worker_t ws[3];
    workers_make(ws, 3);
    CU_ASSERT_EQUAL(run_to_convergence(&cfg, ws, 2, NULL), 1); /* 9 + 9 */
    CU_ASSERT_EQUAL(ws[0].current.n, 9);

    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 1); /* w02 joins: revoke round */
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.moved_revocations, 6);
    CU_ASSERT_EQUAL(st.added, 0);
    CU_ASSERT_EQUAL(ws[0].revoked.n, 3);
    CU_ASSERT_EQUAL(ws[1].revoked.n, 3);
    CU_ASSERT_EQUAL(ws[2].assigned.n, 0); /* nothing added before the acks */
    CU_ASSERT_EQUAL(count_instances(&ws[0].revoked) + count_instances(&ws[1].revoked), 0); /* tasks first */
    ack(ws, 3);
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0); /* add round */
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.added, 6);
    CU_ASSERT_EQUAL(st.moved_revocations, 0);
    CU_ASSERT_EQUAL(ws[2].added.n, 6);
    CU_ASSERT_EQUAL(ws[0].revoked.n + ws[1].revoked.n + ws[0].added.n + ws[1].added.n, 0);
    ack(ws, 3);
    check_converged(&cfg, ws, 3);
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0); /* stable */
    CU_ASSERT_EQUAL(st.added + st.moved_revocations, 0);
    workers_free(ws, 3);
    assign_list_dispose(&cfg);
}

static void test_leave(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_make(&cfg, 4, 5); /* 24 items */
    assign_worker_t ws[4];
    workers_make(ws, 4);
    run_to_convergence(&cfg, ws, 4, NULL);
    assign_list_t before[3];
    for (int w = 0; w < 3; w++) {
        assign_list_init(&before[w]);
        assign_list_copy(&before[w], &ws[w].current);
    }
    size_t lost = ws[3].current.n;
    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0); /* w03 is gone */
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.added, lost);
    CU_ASSERT_EQUAL(st.lost_reassigned, lost);
    CU_ASSERT_EQUAL(st.moved_revocations + st.deleted_revoked + st.duplicates_revoked, 0);
    for (int w = 0; w < 3; w++) {
        CU_ASSERT_EQUAL(ws[w].revoked.n, 0);
        for (size_t i = 0; i < before[w].n; i++)
            CU_ASSERT(assign_list_contains(&ws[w].assigned, before[w].items[i].connector,
                                           before[w].items[i].task));
        for (size_t i = 0; i < ws[w].added.n; i++)
            CU_ASSERT(assign_list_contains(&ws[3].current, ws[w].added.items[i].connector,
                                           ws[w].added.items[i].task));
    }
    ack(ws, 3);
    check_converged(&cfg, ws, 3);
    for (int w = 0; w < 3; w++)
        assign_list_dispose(&before[w]);
    workers_free(ws, 4);
    assign_list_dispose(&cfg);
}

static void test_deleted_connector(void)
{
    assign_list_t cfg, cfg2;
    assign_list_init(&cfg);
    assign_list_init(&cfg2);
    cfg_add_connector(&cfg, "a", 3);
    cfg_add_connector(&cfg, "b", 3);
    cfg_add_connector(&cfg2, "a", 3);
    assign_worker_t ws[2];
    workers_make(ws, 2);
    run_to_convergence(&cfg, ws, 2, NULL);
    assign_stats_t st;
    int again = assign_compute(&cfg2, ws, 2, &st); /* "b" deleted */
    check_round(&cfg2, ws, 2);
    CU_ASSERT_EQUAL(st.deleted_revoked, 4);
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < ws[w].revoked.n; i++) /* besides "b", only balance moves */
            if (strcmp(ws[w].revoked.items[i].connector, "b") != 0)
                CU_ASSERT(again && ws[w].revoked.items[i].task >= 0);
        for (size_t i = 0; i < ws[w].assigned.n; i++)
            CU_ASSERT_STRING_EQUAL(ws[w].assigned.items[i].connector, "a");
    }
    ack(ws, 2);
    if (again) {
        CU_ASSERT_EQUAL(assign_compute(&cfg2, ws, 2, &st), 0);
        ack(ws, 2);
    }
    check_converged(&cfg2, ws, 2);
    workers_free(ws, 2);
    assign_list_dispose(&cfg);
    assign_list_dispose(&cfg2);
}

static void test_duplicates(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_add_connector(&cfg, "a", 1);
    assign_list_add(&cfg, "a", 0); /* duplicate in the configuration is ignored */
    assign_worker_t ws[3];
    workers_make(ws, 3);
    assign_list_add(&ws[2].current, "a", 0); /* a zombie came back holding a/0 */
    assign_list_add(&ws[1].current, "a", 0);
    assign_list_add(&ws[1].current, "a", 0); /* listed twice by one worker */
    assign_list_add(&ws[2].current, "gone", 0);
    assign_list_add(&ws[0].current, "gone", 0);
    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0);
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.duplicates_revoked, 1);
    CU_ASSERT_EQUAL(st.deleted_revoked, 2);
    CU_ASSERT(assign_list_contains(&ws[1].assigned, "a", 0)); /* lowest id holder keeps it */
    CU_ASSERT_EQUAL(ws[1].assigned.n, 1);
    CU_ASSERT(assign_list_contains(&ws[2].revoked, "a", 0));
    CU_ASSERT(assign_list_contains(&ws[2].revoked, "gone", 0));
    CU_ASSERT(assign_list_contains(&ws[0].revoked, "gone", 0));
    CU_ASSERT(assign_list_contains(&ws[0].added, "a", -1)); /* the unheld instance goes to w00 */
    CU_ASSERT_EQUAL(st.added, 1);
    ack(ws, 3);
    check_converged(&cfg, ws, 3);
    workers_free(ws, 3);
    assign_list_dispose(&cfg);
}

static void test_connector_added(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_add_connector(&cfg, "a", 5); /* 6 items over 3 workers */
    assign_worker_t ws[3];
    workers_make(ws, 3);
    run_to_convergence(&cfg, ws, 3, NULL);
    cfg_add_connector(&cfg, "b", 2); /* 3 more */
    assign_stats_t st;
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0);
    check_round(&cfg, ws, 3);
    CU_ASSERT_EQUAL(st.added, 3);
    CU_ASSERT_EQUAL(st.moved_revocations, 0);
    for (int w = 0; w < 3; w++) {
        CU_ASSERT_EQUAL(ws[w].added.n, 1); /* one each: least loaded, and b spread out */
        CU_ASSERT_EQUAL(ws[w].revoked.n, 0);
    }
    ack(ws, 3);
    check_converged(&cfg, ws, 3);

    /* more tasks for "a": added where there are fewest of a's tasks */
    assign_list_add(&cfg, "a", 5);
    assign_list_add(&cfg, "a", 6);
    assign_list_add(&cfg, "a", 7);
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 3, &st), 0);
    check_round(&cfg, ws, 3);
    for (int w = 0; w < 3; w++) {
        size_t k = count_tasks_of(&ws[w].assigned, "a");
        CU_ASSERT(k >= 2 && k <= 3);
        CU_ASSERT_EQUAL(ws[w].added.n, 1);
    }
    ack(ws, 3);
    check_converged(&cfg, ws, 3);
    workers_free(ws, 3);
    assign_list_dispose(&cfg);
}

/* On equal load, a new task goes where its connector has fewest items. */
static void test_spread_connector_tasks(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_add_connector(&cfg, "a", 2);
    cfg_add_connector(&cfg, "b", 2);
    assign_worker_t ws[2];
    workers_make(ws, 2);
    assign_list_add(&ws[0].current, "a", -1);
    assign_list_add(&ws[0].current, "a", 0);
    assign_list_add(&ws[1].current, "b", -1);
    assign_list_add(&ws[1].current, "b", 0);
    CU_ASSERT_EQUAL(assign_compute(&cfg, ws, 2, NULL), 0);
    check_round(&cfg, ws, 2);
    CU_ASSERT(assign_list_contains(&ws[1].added, "a", 1));
    CU_ASSERT(assign_list_contains(&ws[0].added, "b", 1));
    workers_free(ws, 2);
    assign_list_dispose(&cfg);
}

static void shuffle(assign_list_t *l)
{
    for (size_t i = l->n; i > 1; i--) {
        size_t j = rng() % i;
        assign_item_t t = l->items[i - 1];
        l->items[i - 1] = l->items[j];
        l->items[j] = t;
    }
}

static int lists_equal(const assign_list_t *a, const assign_list_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (item_cmp(&a->items[i], &b->items[i]))
            return 0;
    return 1;
}

static void test_determinism(void)
{
    rng_state = 7;
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_make(&cfg, 7, 6);
    assign_worker_t a[5], b[5];
    workers_make(a, 5);
    workers_make(b, 5);
    /* an uneven start with a duplicate and a deleted item */
    for (size_t i = 0; i < cfg.n; i += 2)
        assign_list_add(&a[i % 3].current, cfg.items[i].connector, cfg.items[i].task);
    assign_list_add(&a[4].current, cfg.items[0].connector, cfg.items[0].task);
    assign_list_add(&a[3].current, "deleted", 3);
    for (int w = 0; w < 5; w++) {
        assign_list_copy(&b[w].current, &a[w].current);
        shuffle(&b[w].current);
    }
    assign_list_t cfg2;
    assign_list_init(&cfg2);
    assign_list_copy(&cfg2, &cfg);
    shuffle(&cfg2);
    assign_stats_t sa, sb;
    int ra = assign_compute(&cfg, a, 5, &sa), rb = assign_compute(&cfg2, b, 5, &sb);
    CU_ASSERT_EQUAL(ra, rb);
    CU_ASSERT_EQUAL(memcmp(&sa, &sb, sizeof sa), 0);
    for (int w = 0; w < 5; w++) {
        CU_ASSERT(lists_equal(&a[w].assigned, &b[w].assigned));
        CU_ASSERT(lists_equal(&a[w].revoked, &b[w].revoked));
        CU_ASSERT(lists_equal(&a[w].added, &b[w].added));
    }
    /* and running it again on the same input gives the same output */
    assign_list_t keep[5];
    for (int w = 0; w < 5; w++) {
        assign_list_init(&keep[w]);
        assign_list_copy(&keep[w], &a[w].assigned);
    }
    assign_compute(&cfg, a, 5, NULL);
    for (int w = 0; w < 5; w++) {
        CU_ASSERT(lists_equal(&keep[w], &a[w].assigned));
        assign_list_dispose(&keep[w]);
    }
    workers_free(a, 5);
    workers_free(b, 5);
    assign_list_dispose(&cfg);
    assign_list_dispose(&cfg2);
}

/* The minimum number of balance revocations for the held counts (independent formula). */
static size_t min_moves(assign_worker_t *ws, size_t n, size_t total)
{
    size_t c[MAXW], moves = 0;
    for (size_t i = 0; i < n; i++)
        c[i] = ws[i].current.n;
    for (size_t i = 1; i < n; i++) /* descending */
        for (size_t j = i; j > 0 && c[j - 1] < c[j]; j--) {
            size_t t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        size_t t = total / n + (i < total % n);
        moves += c[i] > t ? c[i] - t : 0;
    }
    return moves;
}

typedef struct sim {
    int present[MAXW];
    int ntasks[20]; /* -1: connector not configured */
    assign_list_t held[MAXW];
} sim_t;

static void sim_cfg(const sim_t *s, assign_list_t *cfg)
{
    char name[16];
    assign_list_clear(cfg);
    for (int c = 19; c >= 0; c--) { /* reverse order: the assignor must not care */
        if (s->ntasks[c] < 0)
            continue;
        snprintf(name, sizeof name, "c%02d", c);
        cfg_add_connector(cfg, name, s->ntasks[c]);
    }
}

static void test_random_simulation(void)
{
    sim_t s;
    memset(&s, 0, sizeof s);
    rng_state = 42;
    for (int c = 0; c < 20; c++)
        s.ntasks[c] = c < 5 ? (int)(rng() % 9) : -1;
    for (int w = 0; w < MAXW; w++) {
        snprintf(ids[w], sizeof ids[w], "w%02d", w);
        assign_list_init(&s.held[w]);
    }
    s.present[0] = s.present[1] = 1;
    assign_list_t cfg;
    assign_list_init(&cfg);
    int failures = 0, joins = 0, leaves = 0, two_rounds = 0;
    for (int step = 0; step < 200; step++) {
        int op = rng() % 7, alive = 0, pure_join = 0;
        for (int w = 0; w < MAXW; w++)
            alive += s.present[w];
        if (op == 0 && alive < 10) { /* join */
            int w;
            do
                w = rng() % MAXW;
            while (s.present[w]);
            s.present[w] = 1;
            pure_join = 1;
            joins++;
        } else if (op == 1 && alive > 1) { /* leave: its items are lost */
            int w;
            do
                w = rng() % MAXW;
            while (!s.present[w]);
            s.present[w] = 0;
            assign_list_clear(&s.held[w]);
            leaves++;
        } else if (op == 2) {
            s.ntasks[rng() % 20] = (int)(rng() % 9); /* create or resize */
        } else if (op == 3) {
            s.ntasks[rng() % 20] = -1; /* delete */
        } else if (op == 4) { /* a zombie also runs something another worker runs */
            int from = rng() % MAXW, to = rng() % MAXW;
            if (s.present[from] && s.present[to] && from != to && s.held[from].n) {
                const assign_item_t *it = &s.held[from].items[rng() % s.held[from].n];
                assign_list_add(&s.held[to], it->connector, it->task);
            }
        } /* else: a rebalance with no change */
        sim_cfg(&s, &cfg);

        assign_worker_t ws[MAXW];
        size_t n = 0;
        int map[MAXW];
        for (int w = 0; w < MAXW; w++)
            if (s.present[w]) {
                assign_worker_init(&ws[n], ids[w]);
                assign_list_copy(&ws[n].current, &s.held[w]);
                map[n++] = w;
            }
        size_t want = 0;
        if (pure_join) { /* the cluster was converged, so what is held is exactly the configuration */
            size_t total = 0;
            for (size_t i = 0; i < n; i++)
                total += ws[i].current.n;
            want = min_moves(ws, n, total);
        }
        assign_stats_t sum;
        int rounds = run_to_convergence(&cfg, ws, n, &sum);
        CU_ASSERT(rounds <= 2);
        two_rounds += rounds == 2;
        if (pure_join)
            CU_ASSERT_EQUAL(sum.moved_revocations, want);
        failures += check_converged(&cfg, ws, n);
        assign_stats_t st; /* converged means stable */
        CU_ASSERT_EQUAL(assign_compute(&cfg, ws, n, &st), 0);
        CU_ASSERT_EQUAL(st.added + st.moved_revocations + st.deleted_revoked + st.duplicates_revoked, 0);
        for (size_t i = 0; i < n; i++) {
            assign_list_copy(&s.held[map[i]], &ws[i].current);
            assign_worker_dispose(&ws[i]);
        }
        if (rounds > 2 || failures) {
            fprintf(stderr, "simulation failed at step %d (op %d, rounds %d)\n", step, op, rounds);
            break;
        }
    }
    printf("\n    simulation: 200 steps, %d joins, %d leaves, %d needed two rounds ", joins, leaves, two_rounds);
    CU_ASSERT(joins > 5 && leaves > 5 && two_rounds > 5);
    for (int w = 0; w < MAXW; w++)
        assign_list_dispose(&s.held[w]);
    assign_list_dispose(&cfg);
}

/* ---- assign_bench: 100 connectors x (instance + 9 tasks) = 1000 items over 10 workers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void assign_bench(void)
{
    assign_list_t cfg;
    assign_list_init(&cfg);
    cfg_make(&cfg, 100, 9);
    CU_ASSERT_EQUAL(cfg.n, 1000);
    double best_join1 = 1e9, best_join2 = 1e9, best_leave = 1e9;
    size_t moved = 0, added2 = 0, leave_added = 0, leave_revoked = 0, leaver = 0;
    for (int rep = 0; rep < 5; rep++) {
        assign_worker_t ws[11];
        workers_make(ws, 11);
        run_to_convergence(&cfg, ws, 10, NULL);
        for (int w = 0; w < 10; w++)
            CU_ASSERT_EQUAL(ws[w].current.n, 100);

        assign_stats_t st;
        double t0 = now_ms();
        int again = assign_compute(&cfg, ws, 11, &st); /* w10 joins */
        double t1 = now_ms();
        CU_ASSERT_EQUAL(again, 1);
        moved = st.moved_revocations;
        ack(ws, 11);
        double t2 = now_ms();
        again = assign_compute(&cfg, ws, 11, &st);
        double t3 = now_ms();
        CU_ASSERT_EQUAL(again, 0);
        added2 = st.added;
        CU_ASSERT_EQUAL(ws[10].added.n, added2);
        ack(ws, 11);
        check_converged(&cfg, ws, 11);
        best_join1 = t1 - t0 < best_join1 ? t1 - t0 : best_join1;
        best_join2 = t3 - t2 < best_join2 ? t3 - t2 : best_join2;

        assign_worker_t ls[10];
        workers_make(ls, 10);
        run_to_convergence(&cfg, ls, 10, NULL);
        leaver = ls[9].current.n;
        double t4 = now_ms();
        again = assign_compute(&cfg, ls, 9, &st); /* w09 leaves */
        double t5 = now_ms();
        CU_ASSERT_EQUAL(again, 0);
        leave_added = st.added;
        leave_revoked = st.moved_revocations + st.deleted_revoked + st.duplicates_revoked;
        best_leave = t5 - t4 < best_leave ? t5 - t4 : best_leave;
        workers_free(ws, 11);
        workers_free(ls, 10);
    }
    CU_ASSERT(moved == 90 || moved == 91);
    CU_ASSERT_EQUAL(added2, moved);
    CU_ASSERT_EQUAL(leave_added, leaver);
    CU_ASSERT_EQUAL(leave_revoked, 0);
    CU_ASSERT(best_join1 < 10.0 && best_join2 < 10.0 && best_leave < 10.0);
    printf("\n    assign_bench 1000 items x 10 workers: join revoke round %.3f ms (%zu moved), "
           "join add round %.3f ms (%zu added), leave %.3f ms (%zu added, %zu revoked) ",
           best_join1, moved, best_join2, added2, best_leave, leave_added, leave_revoked);
    assign_list_dispose(&cfg);
}

int cu_register(void)
{
    CU_pSuite s = CU_add_suite("assign", NULL, NULL);
    if (!s)
        return -1;
    if (!CU_add_test(s, "list helpers", test_list_helpers) || !CU_add_test(s, "empty cluster", test_empty) ||
        !CU_add_test(s, "first assignment balanced", test_first_assignment) ||
        !CU_add_test(s, "join: revoke round then add round", test_join) ||
        !CU_add_test(s, "leave: lost items reassigned at once", test_leave) ||
        !CU_add_test(s, "deleted connector revoked", test_deleted_connector) ||
        !CU_add_test(s, "duplicates kept on lowest id", test_duplicates) ||
        !CU_add_test(s, "connector added", test_connector_added) ||
        !CU_add_test(s, "a connector's tasks spread out", test_spread_connector_tasks) ||
        !CU_add_test(s, "determinism", test_determinism) ||
        !CU_add_test(s, "random simulation (200 steps)", test_random_simulation) ||
        !CU_add_test(s, "assign_bench", assign_bench))
        return -1;
    return 0;
}
