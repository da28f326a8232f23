/* ferry-worker: the daemon. `ferry-worker PATH/connect-distributed.properties`.
 *
 * Start-up: check the configuration (load_config: the properties, the REST security files,
 * every Kafka client configuration and every file named; exit 2 naming the key on error),
 * refuse to start next to running Kafka Connect workers of the same group (coexist.h, exit 2),
 * connect to the destination cluster and read the storage topics (herder), open the REST
 * listener, join the group through ZooKeeper (coord), then run the h2o loop until
 * SIGTERM/SIGINT, telling systemd when the worker is ready (notify.h).
 * `--check` runs load_config() and nothing after it, so it reports what start-up would, and
 * prints the effective settings (wconf_describe); `--check --as USER` also checks the files as
 * that user. Shutdown is graceful: stop tasks (each flushes and stores offsets), leave the group.
 * Signals reach the loop through a self-pipe, the only async-signal-safe way in.
 *
 * Exit codes: 0 clean stop, 2 invalid command line or configuration (restarting will not help:
 * the unit's RestartPreventExitStatus=2), 1 anything else. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <curl/curl.h>
#include <h2o.h>

#include "coordinator/coord.h"
#include "rest/listener.h"
#include "rest/rest.h"
#include "rest/sec.h"
#include "worker/coexist.h"
#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/herder.h"
#include "worker/notify.h"
#include "worker/props.h"
#include "worker/wclient.h"
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
            "Usage: ferry-worker [--help] [--version] [--check [--as USER]] CONFIG\n"
            "\n"
            "Runs a ferry worker: Kafka Connect's distributed mode for copying topics between\n"
            "Kafka clusters, with the EMRReplicatorSourceConnector built in.\n"
            "\n"
            "CONFIG is a Kafka Connect connect-distributed.properties file. Besides Kafka\n"
            "Connect's worker keys (bootstrap.servers, group.id, *.storage.topic, listeners, ...)\n"
            "ferry needs zookeeper.connect (host:port[,host:port][/chroot]) for group membership.\n"
            "\n"
            "  --check    validate CONFIG exactly as start-up does (every Kafka client setting,\n"
            "             sasl.jaas.config, keystores, every file named) and print the effective\n"
            "             settings (secrets hidden), without contacting Kafka or ZooKeeper; exit 0\n"
            "             if it is valid, 2 with start-up's one-line message naming the key if not\n"
            "  --as USER  with --check, as root: also check that USER (the service's user, e.g.\n"
            "             ferry) can read CONFIG and every file it names, as ferry.service runs it\n"
            "  --version  print ferry's version and the Kafka Connect REST API version it answers as\n"
            "  --help     print this text\n"
            "\n"
            "The REST API (Kafka Connect's) listens on `listeners` (default http://:8083).\n"
            "Security keys: listeners.https.ssl.* (or ssl.*) for an https listener\n"
            "(ssl.keystore.location, ssl.key.password, ssl.truststore.location, ssl.client.auth,\n"
            "...; PEM only); rest.extension.classes=...BasicAuthSecurityRestExtension with\n"
            "rest.basic.auth.credentials.file (and rest.basic.auth.internal.user for forwarding)\n"
            "for basic authentication; zookeeper.digest.username, zookeeper.digest.password and\n"
            "zookeeper.set.acl=true for ZooKeeper ACLs.\n"
            "Log levels at start: ferry.log.level=INFO, ferry.log.level.<logger>=DEBUG (loggers:\n"
            "ferry.worker, ferry.rest, ferry.store, ferry.connector, ferry.task,\n"
            "ferry.coordinator, ferry.proto, ferry.kafka).\n"
            "Exit codes: 0 clean stop, 2 invalid command line or config (also an invalid Kafka\n"
            "client setting, or Kafka Connect workers of the same group running), 1 anything else.\n"
            "See ferry-worker(1).\n");
}

static h2o_accept_ctx_t accept_ctx;

/*
 * Everything start-up checks before it starts anything, in the order it checks it: the
 * properties, the worker config (wconf.h), the REST security files (sec.h), every Kafka client
 * configuration the worker builds (wclient.h) and every file named, read as this process.
 * `--check` calls this and nothing else, so both say the same thing.
 * @returns 0, or 2 (the exit code) with @p err filled.
 */
static int load_config(const char *path, wconf_t **wc_out, sec_t **sec_out, ferr_t *err)
{
    *wc_out = NULL;
    *sec_out = NULL;
    props_t *props = props_new();
    ferr_code_t rc = props_load_file(props, path, err);
    wconf_t *wc = rc ? NULL : wconf_new(props, err);
    props_destroy(props);
    sec_t *sec = wc ? sec_new(wc, err) : NULL;
    if (!sec || wclient_check(wc, err) || wclient_check_files(wc, path, err)) {
        sec_destroy(sec);
        wconf_destroy(wc);
        return 2;
    }
    *wc_out = wc;
    *sec_out = sec;
    return 0;
}

/* ---- --check --as USER ---- */

typedef struct {
    FILE *out;
    int bad;
} as_arg_t;

/* Paths the unit hides from the worker: ProtectHome=true and PrivateTmp=true (ferry.service). */
static const char *hidden_by_unit(const char *path)
{
    static const char *const home[] = {"/home/", "/root/", "/run/user/"}, *const tmp[] = {"/tmp/", "/var/tmp/"};
    for (size_t i = 0; i < 3; i++)
        if (!strncmp(path, home[i], strlen(home[i])))
            return "ferry.service runs with ProtectHome=true, so the worker cannot see it";
    for (size_t i = 0; i < 2; i++)
        if (!strncmp(path, tmp[i], strlen(tmp[i])))
            return "ferry.service runs with PrivateTmp=true, so the worker sees another, empty /tmp";
    return NULL;
}

/* In the child, after the switch to the user: one line per file, "ok"/"no" first. */
static int as_check_one(const char *key, const char *path, void *arg)
{
    as_arg_t *a = arg;
    const char *hidden = hidden_by_unit(path);
    int ok = !hidden && access(path, R_OK) == 0;
    fprintf(a->out, "%s %s\t%s\t%s\n", ok ? "ok" : "no", key, path, ok ? "readable" : hidden ? hidden : strerror(errno));
    a->bad |= !ok;
    return 0;
}

/*
 * Checks, in a child that takes the user's uid, gid and supplementary groups (setresgid,
 * initgroups, setresuid: no setuid bit involved, so this needs root), that USER can read every
 * file of wclient_files_each(), and that none is where the unit hides it. access() checks the
 * real ids, mode bits and ACLs; it cannot know about the unit's other sandboxing (ReadOnlyPaths
 * and the like added by a drop-in), nor about a file that changes later.
 * @returns 0 if every file is readable, 2 otherwise (reported on stdout and in @p err).
 */
static int check_as(const wconf_t *wc, const char *path, const char *user, ferr_t *err)
{
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return ferr_set(err, FERR_INVALID, "--as %s: no such user", user), 2;
    if (geteuid() != 0)
        return ferr_set(err, FERR_INVALID, "--as %s: only root can check files as another user", user), 2;
    int fds[2];
    if (pipe(fds))
        return ferr_set(err, FERR_INVALID, "--as: pipe: %s", strerror(errno)), 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        FILE *out = fdopen(fds[1], "w");
        if (!out || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) || initgroups(user, pw->pw_gid) ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
            _exit(3);
        as_arg_t a = {out, 0};
        wclient_files_each(wc, path, as_check_one, &a);
        fclose(out);
        _exit(a.bad ? 2 : 0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[2048];
    int bad = 0;
    printf("\nFiles, read as %s (uid %d, gid %d, its groups; as ferry.service runs it)\n", user, (int)pw->pw_uid,
           (int)pw->pw_gid);
    while (in && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = '\0';
        char *key = line + 3, *file = strchr(key, '\t'), *why = file ? strchr(file + 1, '\t') : NULL;
        if (!why)
            continue;
        *file++ = '\0';
        *why++ = '\0';
        printf("  %-34s %s (%s)\n", key, file, why);
        if (line[0] == 'n' && !bad++) {
            if (!strcmp(key, "CONFIG"))
                ferr_set(err, FERR_INVALID, "%s: %s cannot read it: %s", file, user, why);
            else
                ferr_set(err, FERR_INVALID, "Invalid value %s for configuration %s: %s cannot read it: %s", file,
                         key, user, why);
        }
    }
    if (in)
        fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 3)
        return ferr_set(err, FERR_INVALID, "--as %s: could not switch to the user", user), 2;
    return WEXITSTATUS(status) || bad ? 2 : 0;
}

static int journal; /* stderr is the journal: lines carry a syslog priority (flog.h) */

/* A fatal line on stderr: "ferry-worker: why", at priority err in the journal. */
static void say_error(const char *msg)
{
    fprintf(stderr, "%sferry-worker: %s\n", journal ? "<3>" : "", msg);
}

static int ready_for_systemd(void *arg)
{
    return rest_healthy(arg);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *as_user = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("ferry-worker %s%s\nKafka Connect REST API %s (GET / reports it as \"version\", "
                   "ferry's own version as \"ferry_version\")\n", FERRY_VERSION, ALLOCATOR_NOTE,
                   REST_KAFKA_CONNECT_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--check")) {
            check = 1;
            continue;
        }
        if (!strcmp(argv[i], "--as")) {
            if (++i == argc) {
                fprintf(stderr, "ferry-worker: --as needs a user name (see --help)\n");
                return 2;
            }
            as_user = argv[i];
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
    if (as_user && !check) {
        fprintf(stderr, "ferry-worker: --as goes with --check (see --help)\n");
        return 2;
    }

    journal = !check && flog_detect_journal();
    ferr_t err = {0};
    wconf_t *wc;
    sec_t *sec;
    if (load_config(path, &wc, &sec, &err)) {
        say_error(err.msg);
        return 2;
    }
    if (check) {
        printf("%s: valid (checked without contacting Kafka or ZooKeeper)\n\n", path);
        wconf_describe(wc, stdout);
        int rc = as_user ? check_as(wc, path, as_user, &err) : 0;
        if (rc)
            fprintf(stderr, "ferry-worker: %s\n", err.msg);
        sec_destroy(sec);
        wconf_destroy(wc);
        return rc;
    }
    for (int m = 0; m <= FLOG_M__COUNT; m++)
        if (wc->log_levels[m] >= 0)
            flog_set_level(m, (flog_level_t)wc->log_levels[m], -1);
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
    notify_t *nt = NULL;
    herder_t *h = NULL;
    if (coexist_check(wc, 5000, &err)) {
        say_error(err.msg);
        rc = 2; /* a deployment error: restarting does not stop the other workers */
        goto out;
    }
    h = herder_new(wc, loop, &err);
    if (!h) {
        say_error(err.msg);
        rc = err.code == FERR_INVALID ? 2 : 1; /* e.g. a config topic with several partitions */
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
        say_error(why);
        rc = 1;
        goto out_rest;
    }
    h2o_socket_t *ssock = h2o_evloop_socket_create(loop, sig_pipe[0], 0);
    h2o_socket_read_start(ssock, on_sig_readable);

    co = coord_new(wc, h, loop, &err);
    if (!co) {
        say_error(err.msg);
        rc = 1;
    } else {
        FLOG(INFO, WORKER, "ferry-worker %s listening on %s://%s:%d (worker id %s)", FERRY_VERSION,
             wc->listener_scheme, *wc->listener_host ? wc->listener_host : "0.0.0.0",
             wc->listener_port, herder_worker_id(h));
        nt = notify_new(loop, ready_for_systemd, h);
        if (run_loop(loop))
            rc = 1;
        /* Graceful stop: stop tasks while still a member (no one else may take them yet), each
         * flushing its producer and storing offsets, then leave the group. */
        notify_stopping(nt);
        FLOG(INFO, WORKER, "stopping: finishing in-flight batches and storing offsets");
        coord_stop(co);
    }
    notify_destroy(nt);
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
