/* coexist: a ferry worker must not start next to running Kafka Connect workers of the same
 * group. Both would keep connectors, tasks and offsets in the same three storage topics and
 * copy the same partitions twice, and Kafka Connect would take ferry's records for its own.
 * At start the worker asks the destination cluster (bootstrap.servers) about the consumer-group
 * coordinator's group named group.id: Kafka Connect's workers form a group of protocol type
 * "connect" there (ferry's own workers never join one: they coordinate through ZooKeeper).
 *
 *   Kafka Connect group, with members (Stable, rebalancing)   refuse to start (exit 2)
 *   Kafka Connect group without members (Empty), none, Dead    start
 *   a group of another protocol type with that name            start, with a WARN
 *   the cluster does not answer (ListGroups unsupported, ...)  start, with a WARN
 *
 * The decision is a pure function of the answer (coexist_decide), tested with made-up answers;
 * coexist_check() asks and decides. The question uses rd_kafka_list_groups() (ListGroups, then
 * DescribeGroups): librdkafka 2.0.2's rd_kafka_ListConsumerGroups() leaves out groups whose
 * protocol type is not "consumer", and rd_kafka_DescribeConsumerGroups() answers for a connect
 * group only with the error "GroupId ... is not a consumer group (connect)", without its state,
 * so an active group could not be told from one whose workers were just stopped. */
#ifndef FERRY_COEXIST_H
#define FERRY_COEXIST_H

#include <stddef.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

typedef enum { COEXIST_OK = 0, COEXIST_WARN, COEXIST_REFUSE } coexist_verdict_t;

/** What the destination cluster said about the group. Strings are borrowed. */
typedef struct coexist_answer {
    int answered;              /* 0: the cluster could not be asked; why in error */
    const char *error;
    int found;                 /* the group exists (a Dead group does not) */
    const char *protocol_type; /* "connect" for Kafka Connect, "consumer", "" for a simple group */
    const char *state;         /* Stable, PreparingRebalance, CompletingRebalance, Empty, Dead */
    int members;
} coexist_answer_t;

/**
 * @brief Decides whether a worker of @p group may start, given @p a.
 * @param bootstrap  for the message.
 * @param msg        the line to log (REFUSE: the error; WARN: the warning; OK: an INFO line,
 *                   or "" when there is nothing to say).
 * @returns the verdict.
 */
coexist_verdict_t coexist_decide(const char *group, const char *bootstrap, const coexist_answer_t *a, char *msg,
                                 size_t len);

/**
 * @brief Asks the destination cluster about group.id (a short-lived client from the admin
 * configuration, wclient.h), decides, and logs a WARN or INFO line itself.
 * @param timeout_ms  for the whole question.
 * @returns FERR_OK (start), or FERR_CONFLICT with @p err filled (refuse).
 */
ferr_code_t coexist_check(const wconf_t *wc, int timeout_ms, ferr_t *err);

#endif
