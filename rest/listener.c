/* listener: REST listening socket and connection admission. See listener.h. */
#include "rest/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rest/rest.h"
#include "worker/flog.h"
#include "worker/kutil.h"

#define PAUSE_MS 100            /* listener rest when even the reserve descriptor cannot help */
#define RELOG_MS (60 * 1000)    /* one WARN per minute while shedding */

struct listener {
    h2o_loop_t *loop;
    h2o_accept_ctx_t *accept_ctx;
    h2o_socket_t *sock;
    int fd_limit;
    int spare;             /* a descriptor kept in reserve (/dev/null), -1 while given up */
    int shedding;          /* refusing since the last accepted connection */
    int64_t last_log_ms;
    uint64_t refused;
    h2o_timeout_t pause;
    h2o_timeout_entry_t resume;
};

int listener_fd_limit(long nofile)
{
    long reserve = nofile / 4 > 64 ? nofile / 4 : 64;
    long lim = nofile - reserve;
    return lim > 16 ? (int)lim : 16;
}

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void note_refused(listener_t *l, const char *why)
{
    l->refused++;
    int64_t now = kutil_now_ms();
    if (!l->shedding || now - l->last_log_ms >= RELOG_MS) {
        FLOG(WARN, REST, "refusing REST connections (503): %s (RLIMIT_NOFILE leaves REST descriptors below %d; "
             "%llu refused so far)", why, l->fd_limit, (unsigned long long)l->refused);
        l->last_log_ms = now;
    }
    l->shedding = 1;
}

/* Kafka Connect's error body, written straight to a fresh connection (plain HTTP only: on an
 * https listener there is no TLS session yet, and the connection is just closed). */
static void answer_503(listener_t *l, int fd)
{
    if (l->accept_ctx->ssl_ctx)
        return;
    char *body = rest_error_body(503, "Too many connections: this worker is at its file descriptor limit");
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
    ssize_t w = write(fd, head, (size_t)n);
    if (w == n)
        w = write(fd, body, strlen(body));
    (void)w;
    free(body);
}

static void on_accept(h2o_socket_t *ls, const char *err);

static void on_resume(h2o_timeout_entry_t *e)
{
    listener_t *l = H2O_STRUCT_FROM_MEMBER(listener_t, resume, e);
    if (l->spare < 0)
        l->spare = open_spare();
    h2o_socket_read_start(l->sock, on_accept);
}

/* accept() failed for want of descriptors: free the reserve one, take the connection off the
 * backlog, answer and close it, take the reserve back. Without a reserve, rest a moment. */
static void shed_backlog(listener_t *l)
{
    note_refused(l, "accept() ran out of file descriptors");
    if (l->spare >= 0) {
        close(l->spare);
        l->spare = -1;
        int fd = accept4(h2o_socket_get_fd(l->sock), NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            answer_503(l, fd);
            close(fd);
        }
        l->spare = open_spare();
        if (l->spare >= 0)
            return;
    }
    h2o_socket_read_stop(l->sock);
    h2o_timeout_link(l->loop, &l->pause, &l->resume);
}

static void on_accept(h2o_socket_t *ls, const char *err)
{
    listener_t *l = ls->data;
    if (err)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(ls);
    if (!sock) {
        if (errno == EMFILE || errno == ENFILE)
            shed_backlog(l);
        return;
    }
    int fd = h2o_socket_get_fd(sock);
    if (fd >= l->fd_limit) {
        note_refused(l, "the worker's descriptors are needed for its Kafka and ZooKeeper connections");
        answer_503(l, fd);
        h2o_socket_close(sock);
        return;
    }
    if (l->shedding) {
        FLOG(INFO, REST, "accepting REST connections again (%llu refused)", (unsigned long long)l->refused);
        l->shedding = 0;
    }
    h2o_accept(l->accept_ctx, sock);
}

static int bind_listen(const wconf_t *wc, char *why, size_t len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof port, "%d", wc->listener_port);
    const char *host = wc->listener_host && *wc->listener_host ? wc->listener_host : NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(why, len, "cannot resolve listener host %s: %s", host ? host : "*", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        snprintf(why, len, "cannot listen on %s:%d: %s", host ? host : "*", wc->listener_port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

listener_t *listener_new(const wconf_t *wc, h2o_loop_t *loop, h2o_accept_ctx_t *accept_ctx, char *why, size_t len)
{
    int fd = bind_listen(wc, why, len);
    if (fd < 0)
        return NULL;
    listener_t *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    struct rlimit rl;
    long nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 65536;
    l->loop = loop;
    l->accept_ctx = accept_ctx;
    l->fd_limit = listener_fd_limit(nofile);
    l->spare = open_spare();
    h2o_timeout_init(loop, &l->pause, PAUSE_MS);
    l->resume.cb = on_resume;
    l->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return l;
}

void listener_destroy(listener_t *l)
{
    if (!l)
        return;
    if (h2o_timeout_is_linked(&l->resume))
        h2o_timeout_unlink(&l->resume);
    h2o_timeout_dispose(l->loop, &l->pause);
    h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    if (l->spare >= 0)
        close(l->spare);
    free(l);
}
