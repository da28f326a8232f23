/* coexist: is a Kafka Connect group of the same name running? See coexist.h. */
#include "worker/coexist.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "worker/flog.h"
#include "worker/wclient.h"

#define DOC "docs/OPERATIONS.md, \"Moving from Kafka Connect\""

static int active_state(const char *s)
{
    return s && (!strcmp(s, "Stable") || !strcmp(s, "PreparingRebalance") || !strcmp(s, "CompletingRebalance"));
}

coexist_verdict_t coexist_decide(const char *group, const char *bootstrap, const coexist_answer_t *a, char *msg,
                                 size_t len)
{
    msg[0] = '\0';
    if (!a->answered) {
        snprintf(msg, len, "could not check the destination cluster (bootstrap.servers=%s) for Kafka Connect "
                           "workers of group '%s' (%s); make sure none runs before this worker writes to the "
                           "storage topics (" DOC ")", bootstrap, group, a->error ? a->error : "no answer");
        return COEXIST_WARN;
    }
    const char *state = a->state ? a->state : "";
    if (!a->found || !strcmp(state, "Dead"))
        return COEXIST_OK;
    const char *proto = a->protocol_type ? a->protocol_type : "";
    if (strcmp(proto, "connect")) {
        snprintf(msg, len, "the destination cluster has a group named '%s' (protocol type %s, state %s, %d "
                           "member%s) that is not a Kafka Connect group: ferry's workers do not use it (they "
                           "coordinate through ZooKeeper), but its name is this worker's group.id",
                 group, *proto ? proto : "none: a simple consumer group", *state ? state : "unknown", a->members,
                 a->members == 1 ? "" : "s");
        return COEXIST_WARN;
    }
    if (a->members > 0 || active_state(state)) {
        snprintf(msg, len, "Kafka Connect workers of group '%s' are running against bootstrap.servers=%s (group "
                           "state %s, %d member%s): they keep their connectors, tasks and offsets in the same "
                           "storage topics; stop them before starting ferry with this group.id, or give ferry "
                           "its own group.id and storage topics (" DOC ")",
                 group, bootstrap, *state ? state : "unknown", a->members, a->members == 1 ? "" : "s");
        return COEXIST_REFUSE;
    }
    snprintf(msg, len, "Kafka Connect group '%s' on the destination has no members (state %s): taking over its "
                       "storage topics", group, *state ? state : "unknown");
    return COEXIST_OK;
}

ferr_code_t coexist_check(const wconf_t *wc, int timeout_ms, ferr_t *err)
{
    char e[512], msg[1024];
    coexist_answer_t a = {0};
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = wclient_conf(wc, WCLIENT_ADMIN, err);
    if (!conf)
        return err->code;
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e))) {
        a.error = e;
    } else {
        rd_kafka_resp_err_t r = rd_kafka_list_groups(rk, wc->group_id, &gl, timeout_ms);
        if (r && r != RD_KAFKA_RESP_ERR__PARTIAL) {
            a.error = rd_kafka_err2str(r);
        } else {
            a.answered = 1;
            for (int i = 0; gl && i < gl->group_cnt; i++) {
                const struct rd_kafka_group_info *g = &gl->groups[i];
                if (strcmp(g->group, wc->group_id))
                    continue;
                if (g->err) {
                    a.answered = 0;
                    a.error = rd_kafka_err2str(g->err);
                    break;
                }
                a.found = 1;
                a.protocol_type = g->protocol_type;
                a.state = g->state;
                a.members = g->member_cnt;
            }
        }
    }
    coexist_verdict_t v = coexist_decide(wc->group_id, wc->bootstrap_servers, &a, msg, sizeof msg);
    if (v == COEXIST_WARN)
        FLOG(WARN, WORKER, "%s", msg);
    else if (v == COEXIST_OK && *msg)
        FLOG(INFO, WORKER, "%s", msg);
    if (gl)
        rd_kafka_group_list_destroy(gl);
    if (rk)
        rd_kafka_destroy(rk);
    return v == COEXIST_REFUSE ? ferr_set(err, FERR_CONFLICT, "%s", msg) : FERR_OK;
}
