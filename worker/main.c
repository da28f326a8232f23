/* ferry-worker: the daemon. `ferry-worker PATH/connect-distributed.properties`.
 *
 * Start-up: parse the properties (exit 2 naming the key on error), connect to the
 * destination cluster and read the storage topics (herder), open the REST listener, join
 * the group through ZooKeeper (coord), then run the h2o loop until SIGTERM/SIGINT.
 * `--check` stops after the first step and prints the effective settings (wconf_describe).
 * Shutdown is graceful: leave the group, stop tasks (each flushes and stores offsets).
 * Signals reach the loop through a self-pipe, the only async-signal-safe way in. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <curl/curl.h>
#include <h2o.h>

#include "coordinator/coord.h"
#include "rest/listener.h"
#include "rest/rest.h"
#include "rest/sec.h"
#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/herder.h"
#include "worker/props.h"
#include "worker/wconf.h"

/* --version says when jemalloc serves malloc (CMakeLists.txt, FERRY_JEMALLOC). */
#ifdef FERRY_JEMALLOC
#define ALLOCATOR_NOTE " (jemalloc)"
#else
#define ALLOCATOR_NOTE ""
#endif

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = 1;
    char c = (char)sig;
    ssize_t w = write(sig_pipe[1], &c, 1);
    (void)w;
}

static void on_sig_readable(h2o_socket_t *sock, const char *err)
{
    char buf[16];
    ssize_t r = read(h2o_socket_get_fd(sock), buf, sizeof buf);
    (void)r;
    (void)err;
    h2o_socket_read_stop(sock);
}

/* Runs the loop until a stop signal. epoll_wait fails with EINTR whenever a signal handler ran
 * or the process was stopped and continued (SIGSTOP/SIGCONT, a debugger attaching): that is
 * not a reason to stop. Any other failure is, and is an error exit. @returns 0 or -1. */
static int run_loop(h2o_evloop_t *loop)
{
    while (!stopping) {
        if (h2o_evloop_run(loop, 1000) == 0 || errno == EINTR)
            continue;
        FLOG(ERROR, WORKER, "the event loop failed: %s; stopping", strerror(errno));
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ferry-worker [--help] [--version] [--check] CONFIG\n"
            "\n"
            "Runs a ferry worker: Kafka Connect's distributed mode for copying topics between\n"
            "Kafka clusters, with the EMRReplicatorSourceConnector built in.\n"
            "\n"
            "CONFIG is a Kafka Connect connect-distributed.properties file. Besides Kafka\n"
            "Connect's worker keys (bootstrap.servers, group.id, *.storage.topic, listeners, ...)\n"
            "ferry needs zookeeper.connect (host:port[,host:port][/chroot]) for group membership.\n"
            "\n"
            "  --check    validate CONFIG as the worker would and print the effective settings\n"
            "             (secrets hidden), without contacting Kafka or ZooKeeper; exit 0 if it\n"
            "             is valid, 2 with a one-line message naming the key if not\n"
            "  --version  print the version\n"
            "  --help     print this text\n"
            "\n"
            "The REST API (Kafka Connect's) listens on `listeners` (default http://:8083).\n"
            "Security keys: listeners.https.ssl.* (or ssl.*) for an https listener\n"
            "(ssl.keystore.location, ssl.key.password, ssl.truststore.location, ssl.client.auth,\n"
            "...; PEM only); rest.extension.classes=...BasicAuthSecurityRestExtension with\n"
            "rest.basic.auth.credentials.file (and rest.basic.auth.internal.user for forwarding)\n"
            "for basic authentication; zookeeper.digest.username, zookeeper.digest.password and\n"
            "zookeeper.set.acl=true for ZooKeeper ACLs.\n"
            "Exit codes: 0 clean stop, 1 runtime failure, 2 invalid command line or config.\n"
            "See ferry-worker(1).\n");
}

static h2o_accept_ctx_t accept_ctx;

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("ferry-worker %s%s\n", FERRY_VERSION, ALLOCATOR_NOTE);
            return 0;
        }
        if (!strcmp(argv[i], "--check")) {
            check = 1;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ferry-worker: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
        if (path) {
            fprintf(stderr, "ferry-worker: more than one config file given (see --help)\n");
            return 2;
        }
        path = argv[i];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    ferr_t err = {0};
    props_t *props = props_new();
    if (props_load_file(props, path, &err)) {
        fprintf(stderr, "ferry-worker: %s\n", err.msg);
        props_destroy(props);
        return 2;
    }
    wconf_t *wc = wconf_new(props, &err);
    props_destroy(props);
    if (!wc) {
        fprintf(stderr, "ferry-worker: %s\n", err.msg);
        return 2;
    }
    /* TLS material and the credentials file are read now, so that a bad one is a config error */
    sec_t *sec = sec_new(wc, &err);
    if (!sec) {
        fprintf(stderr, "ferry-worker: %s\n", err.msg);
        wconf_destroy(wc);
        return 2;
    }
    if (check) {
        printf("%s: valid (checked without contacting Kafka or ZooKeeper)\n\n", path);
        wconf_describe(wc, stdout);
        sec_destroy(sec);
        wconf_destroy(wc);
        return 0;
    }
    wconf_log_summary(wc);

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK)) {
        perror("ferry-worker: pipe");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_config_init(&config);
    config.max_request_entity_size = 8 * 1024 * 1024; /* rest.c refuses > 1 MiB with a JSON 413 */
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_evloop_t *loop = h2o_evloop_create();

    int rc = 0;
    char why[512] = "";
    coord_t *co = NULL;
    herder_t *h = herder_new(wc, loop, &err);
    if (!h) {
        fprintf(stderr, "ferry-worker: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    rest_t *rest = rest_new(host, h, wc, loop);
    rest_set_sec(rest, sec);
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    if ((accept_ctx.ssl_ctx = sec_server_ctx(sec)))
        h2o_ssl_register_alpn_protocols(accept_ctx.ssl_ctx, h2o_http2_alpn_protocols);
    listener_t *lst = listener_new(wc, loop, &accept_ctx, why, sizeof why);
    if (!lst) {
        fprintf(stderr, "ferry-worker: %s\n", why);
        rc = 1;
        goto out_rest;
    }
    h2o_socket_t *ssock = h2o_evloop_socket_create(loop, sig_pipe[0], 0);
    h2o_socket_read_start(ssock, on_sig_readable);

    co = coord_new(wc, h, loop, &err);
    if (!co) {
        fprintf(stderr, "ferry-worker: %s\n", err.msg);
        rc = 1;
    } else {
        FLOG(INFO, WORKER, "ferry-worker %s listening on %s://%s:%d (worker id %s)", FERRY_VERSION,
             wc->listener_scheme, *wc->listener_host ? wc->listener_host : "0.0.0.0",
             wc->listener_port, herder_worker_id(h));
        if (run_loop(loop))
            rc = 1;
        /* Graceful stop: stop tasks while still a member (no one else may take them yet), each
         * flushing its producer and storing offsets, then leave the group. */
        FLOG(INFO, WORKER, "stopping: finishing in-flight batches and storing offsets");
        coord_stop(co);
    }
    listener_destroy(lst);
    h2o_socket_close(ssock);
out_rest:
    herder_destroy(h);
    coord_destroy(co);
    rest_destroy(rest);
    h2o_context_dispose(&ctx);
    evq_drain(loop); /* h2o frees closed sockets (and queues) on the next loop round */
out:
    h2o_evloop_destroy(loop);
    h2o_config_dispose(&config);
    sec_destroy(sec);
    wconf_destroy(wc);
    curl_global_cleanup();
    FLOG(INFO, WORKER, "stopped");
    return rc;
}
