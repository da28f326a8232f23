/* wclient: the worker's Kafka client configurations and the files they read. See wclient.h.
 *
 * Which layers each kind gets is fixed here; whether a user key is valid does not depend on
 * ferry's own settings for the kind (librdkafka checks each property on its own when it is
 * set), so the kinds that wprod.c and rtask.c finish themselves are checked with the layers they
 * apply. */
#include "worker/wclient.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "worker/kutil.h"

const char *wclient_name(wclient_kind_t kind)
{
    static const char *const names[] = {"storage producer", "storage reader", "copy producer",
                                        "source consumer", "admin client"};
    return (unsigned)kind < WCLIENT__COUNT ? names[kind] : "?";
}

rd_kafka_conf_t *wclient_conf(const wconf_t *wc, wclient_kind_t kind, ferr_t *err)
{
    rd_kafka_conf_t *c = NULL;
    ferr_code_t rc = FERR_OK;
    char gid[512];
    switch (kind) {
    case WCLIENT_STORE_PRODUCER:
        c = kutil_conf_new(wc->bootstrap_servers);
        kutil_conf_set(c, "client.id", "ferry-store-producer", NULL, NULL);
        kutil_conf_set(c, "enable.idempotence", "true", NULL, NULL);
        kutil_conf_set(c, "linger.ms", "1", NULL, NULL);
        /* Java's default partitioner, so keyed records land where Kafka Connect puts them. */
        kutil_conf_set(c, "partitioner", "murmur2_random", NULL, NULL);
        rc = kutil_conf_apply(c, wc->common, "", err) || kutil_conf_apply(c, wc->producer, "producer.", err);
        break;
    case WCLIENT_STORE_READER:
        c = kutil_conf_new(wc->bootstrap_servers);
        kutil_conf_set(c, "client.id", "ferry-store-reader", NULL, NULL);
        /* librdkafka wants a group.id even for assign(); nothing is ever committed with it. */
        snprintf(gid, sizeof gid, "%s-ferry-store", wc->group_id);
        kutil_conf_set(c, "group.id", gid, NULL, NULL);
        kutil_conf_set(c, "enable.partition.eof", "true", NULL, NULL);
        kutil_conf_set(c, "enable.auto.commit", "false", NULL, NULL);
        kutil_conf_set(c, "fetch.wait.max.ms", "50", NULL, NULL);
        rc = kutil_conf_apply(c, wc->common, "", err) || kutil_conf_apply(c, wc->consumer, "consumer.", err);
        break;
    case WCLIENT_COPY_PRODUCER:
        c = kutil_copy_producer_conf(wc->bootstrap_servers, "ferry-producer");
        rc = kutil_conf_apply(c, wc->common, "", err) || kutil_conf_apply(c, wc->producer, "producer.", err);
        break;
    case WCLIENT_SOURCE_CONSUMER:
        c = kutil_conf_new(NULL);
        rc = kutil_conf_apply(c, wc->consumer, "consumer.", err);
        break;
    case WCLIENT_ADMIN:
        c = kutil_conf_new(wc->bootstrap_servers);
        kutil_conf_set(c, "client.id", "ferry-admin", NULL, NULL);
        rc = kutil_conf_apply(c, wc->common, "", err) || kutil_conf_apply(c, wc->admin, "admin.", err);
        break;
    case WCLIENT__COUNT:
        break;
    }
    if (rc && c) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

ferr_code_t wclient_check(const wconf_t *wc, ferr_t *err)
{
    for (int k = 0; k < WCLIENT__COUNT; k++) {
        rd_kafka_conf_t *c = wclient_conf(wc, (wclient_kind_t)k, err);
        if (!c)
            return err->code;
        rd_kafka_conf_destroy(c);
    }
    return FERR_OK;
}

static int is_file_key(const char *k)
{
    size_t n = strlen(k), sl = sizeof ".location" - 1;
    return (n > sl && !strcmp(k + n - sl, ".location")) || !strcmp(k, "sasl.kerberos.keytab");
}

/* The file keys of one translated client layer, named as the operator wrote them. */
static int layer_files(const wconf_t *wc, const char *prefix, const props_t *p, wclient_file_fn fn, void *arg)
{
    for (size_t i = 0; i < props_count(p); i++) {
        char full[512];
        snprintf(full, sizeof full, "%s%s", prefix, props_key(p, i));
        const char *from = props_get(wc->notes, full);
        int rc = is_file_key(props_key(p, i)) ? fn(from && *from ? from : full, props_value(p, i), arg) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int wclient_files_each(const wconf_t *wc, const char *config_path, wclient_file_fn fn, void *arg)
{
    int rc = config_path ? fn("CONFIG", config_path, arg) : 0;
    if (!rc)
        rc = layer_files(wc, "", wc->common, fn, arg);
    if (!rc)
        rc = layer_files(wc, "producer.", wc->producer, fn, arg);
    if (!rc)
        rc = layer_files(wc, "consumer.", wc->consumer, fn, arg);
    if (!rc)
        rc = layer_files(wc, "admin.", wc->admin, fn, arg);
    for (size_t i = 0; !rc && i < props_count(wc->all); i++) {
        const char *k = props_key(wc->all, i);
        if ((!strncmp(k, "listeners.https.", 16) && is_file_key(k)) || !strcmp(k, "rest.basic.auth.credentials.file"))
            rc = fn(k, props_value(wc->all, i), arg);
    }
    return rc;
}

typedef struct {
    ferr_t *err;
} files_arg_t;

static int check_one(const char *key, const char *path, void *arg)
{
    files_arg_t *a = arg;
    if (access(path, R_OK) == 0)
        return 0;
    if (!strcmp(key, "CONFIG"))
        ferr_set(a->err, FERR_INVALID, "%s: cannot read the file: %s", path, strerror(errno));
    else
        ferr_set(a->err, FERR_INVALID, "Invalid value %s for configuration %s: cannot read the file: %s", path, key,
                 strerror(errno));
    return 1;
}

ferr_code_t wclient_check_files(const wconf_t *wc, const char *config_path, ferr_t *err)
{
    files_arg_t a = {err};
    return wclient_files_each(wc, config_path, check_one, &a) ? FERR_INVALID : FERR_OK;
}
