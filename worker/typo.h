/* typo: "did you mean" for configuration keys. A misspelt key is worse than a missing one:
 * topic.blacklst=secret.* is silently unknown, so the topics it meant to exclude are copied,
 * and bootstrap.server leaves the worker on its default. The worker config and the connector
 * config both treat an unknown key close to a known one as an error naming the known one.
 * Pure: no allocation, any thread. */
#ifndef FERRY_TYPO_H
#define FERRY_TYPO_H

#include <stddef.h>

/** Longest key compared; longer keys are never reported as a typo. */
#define TYPO_MAX_LEN 128

/**
 * @brief The Damerau–Levenshtein distance of @p a and @p b in its optimal-string-alignment
 * form (insertions, deletions, substitutions and transpositions of adjacent characters, each
 * costing 1; no substring edited twice), case-sensitive, bytewise.
 * @returns the distance, or TYPO_MAX_LEN + 1 when either string is longer than TYPO_MAX_LEN.
 */
int typo_distance(const char *a, const char *b);

/**
 * @brief The candidate @p key is most likely a misspelling of.
 *
 * A candidate qualifies when it differs from @p key and their distance is at most 2, or at
 * most 1 when the shorter of the two has fewer than 8 characters (two edits turn "acks" into
 * many words). The first candidate with the smallest distance wins.
 * @param candidates  @p n strings (NULL entries are skipped).
 * @returns a pointer into @p candidates, or NULL if none qualifies.
 */
const char *typo_suggest(const char *key, const char *const *candidates, size_t n);

#endif
