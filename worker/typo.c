/* typo: edit distance and suggestions. See typo.h.
 *
 * Three rows of the dynamic-programming table suffice for the optimal-string-alignment
 * distance (the transposition looks two rows back). Keys are short, so the rows live on the
 * stack. */
#include "worker/typo.h"

#include <string.h>

int typo_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > TYPO_MAX_LEN || m > TYPO_MAX_LEN)
        return TYPO_MAX_LEN + 1;
    int rows[3][TYPO_MAX_LEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int d = prev[j] + 1;                     /* deletion */
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;                  /* insertion */
            if (prev[j - 1] + cost < d)
                d = prev[j - 1] + cost;              /* substitution */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;                /* transposition */
            cur[j] = d;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

const char *typo_suggest(const char *key, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    int best_d = 3;
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        if (!c || !strcmp(c, key))
            continue;
        size_t cl = strlen(c), shorter = kl < cl ? kl : cl;
        int limit = shorter < 8 ? 1 : 2;
        int d = typo_distance(key, c);
        if (d <= limit && d < best_d) {
            best = c;
            best_d = d;
        }
    }
    return best;
}
