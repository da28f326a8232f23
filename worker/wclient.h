/* wclient: the Kafka client configurations a worker builds from its worker config, built one
 * way for the daemon and for `ferry-worker --check`.
 *
 * librdkafka checks a property when it is set (rd_kafka_conf_set), so an invalid client key
 * (producer.compression.type=zstdd) is found by building the client's configuration, without
 * creating a client or connecting anywhere. The daemon builds them all before it starts
 * anything and exits 2 on an error, and --check calls the same function, so both say the same
 * thing; the storage clients (store.c) are then created from the same confs.
 *
 * The files the clients and the REST listener read are listed here too, so that start-up and
 * `--check --as USER` check the same list. */
#ifndef FERRY_WCLIENT_H
#define FERRY_WCLIENT_H

#include <librdkafka/rdkafka.h>

#include "worker/ferr.h"
#include "worker/wconf.h"

typedef enum {
    WCLIENT_STORE_PRODUCER = 0, /* writes the storage topics (store.c): top level + producer.* */
    WCLIENT_STORE_READER,       /* reads them (store.c): top level + consumer.* */
    WCLIENT_COPY_PRODUCER,      /* the tasks' destination producer: kutil_copy_producer_conf() + top
                                   level + producer.*, as wprod.c and rtask.c layer it */
    WCLIENT_SOURCE_CONSUMER,    /* a task's source consumer before its connector's src.* keys:
                                   consumer.* only (the source is another cluster) */
    WCLIENT_ADMIN,              /* destination admin client: top level + admin.* */
    WCLIENT__COUNT
} wclient_kind_t;

/** @returns the kind's name for messages ("storage producer", ...). */
const char *wclient_name(wclient_kind_t kind);

/**
 * @brief Builds the configuration of one client kind: ferry's own settings, then the worker's
 * layers (each rd_kafka_conf_set), bootstrap.servers set to the destination (none for the
 * source consumer). Creates no client.
 * @returns the conf (the caller creates a client with it or destroys it), or NULL with @p err:
 *          FERR_INVALID, "Invalid client setting producer.compression.type: ...".
 */
rd_kafka_conf_t *wclient_conf(const wconf_t *wc, wclient_kind_t kind, ferr_t *err);

/** @brief Builds every kind and throws them away: the check start-up and --check share.
 *  @returns FERR_OK or the first error (FERR_INVALID). */
ferr_code_t wclient_check(const wconf_t *wc, ferr_t *err);

/** Called for each file; return nonzero to stop. */
typedef int (*wclient_file_fn)(const char *key, const char *path, void *arg);

/**
 * @brief Calls @p fn for every file the worker reads: @p config_path (key "CONFIG"; may be
 * NULL), every *.location and sasl.kerberos.keytab of the client layers (named by the key as
 * written: a translated truststore by ssl.truststore.location), the REST listener's stores
 * (listeners.https.ssl.*.location) and rest.basic.auth.credentials.file.
 * @returns the first nonzero result of @p fn, or 0.
 */
int wclient_files_each(const wconf_t *wc, const char *config_path, wclient_file_fn fn, void *arg);

/**
 * @brief Checks that the calling process can read every file of wclient_files_each()
 * (access(R_OK): the real user and groups, ACLs included).
 * @returns FERR_OK, or FERR_INVALID "Invalid value PATH for configuration KEY: cannot read the
 *          file: Permission denied".
 */
ferr_code_t wclient_check_files(const wconf_t *wc, const char *config_path, ferr_t *err);

#endif
