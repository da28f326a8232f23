/* listener: the REST listening socket, and admission of connections within the process's file
 * descriptor limit.
 *
 * Why: every REST connection costs a descriptor, and so do the worker's Kafka and ZooKeeper
 * connections. When a flood of clients used them all, accept() failed with EMFILE while the
 * listener stayed readable, so the loop spun (~0.7 CPU) and REST stopped answering. Here a
 * connection whose descriptor is above the REST share of RLIMIT_NOFILE is answered 503 and
 * closed (the rest stays free for the clients), and when accept() itself fails for want of
 * descriptors, a descriptor kept in reserve is given up for a moment to take the connection
 * off the backlog and close it, so the loop never spins. Shedding is logged once per episode.
 *
 * Threads: the h2o loop thread only. */
#ifndef FERRY_LISTENER_H
#define FERRY_LISTENER_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "worker/wconf.h"

typedef struct listener listener_t;

/** Binds and listens on @p wc's listener (host, port) and starts accepting into @p accept_ctx.
 *  @returns NULL with @p why filled if the address cannot be bound. */
listener_t *listener_new(const wconf_t *wc, h2o_loop_t *loop, h2o_accept_ctx_t *accept_ctx, char *why,
                         size_t len);
/** Stops accepting and closes the socket. Accepts NULL. */
void listener_destroy(listener_t *l);

/** The highest descriptor number a REST connection may have: below it, RLIMIT_NOFILE minus a
 *  reserve for the worker's other clients (a quarter of the limit, at least 64). */
int listener_fd_limit(long nofile);

#endif
