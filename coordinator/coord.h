/* coord: group membership, leader election and assignment through ZooKeeper.
 * See coord.c for the protocol. */
#ifndef FERRY_COORD_H
#define FERRY_COORD_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "worker/ferr.h"
#include "worker/herder.h"
#include "worker/wconf.h"

typedef struct coord coord_t;

/** Connects to ZooKeeper (zookeeper.connect), registers this worker and starts taking part in
 *  leader election and assignment. The herder is told about leadership and assignments. */
coord_t *coord_new(const wconf_t *wc, herder_t *h, h2o_loop_t *loop, ferr_t *err);
/** Stops taking part (no more assignments reach the herder) but stays a member, so nobody
 *  else is given this worker's tasks while it stops them gracefully. */
void coord_stop(coord_t *co);
/** Leaves the group (deletes this worker's znodes, so the others rebalance at once) and frees. */
void coord_destroy(coord_t *co);

#endif
