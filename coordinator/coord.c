/* coord: placeholder until distributed mode lands: the worker is a group of one. */
#include "coordinator/coord.h"

#include <stdlib.h>

struct coord {
    herder_t *h;
};

coord_t *coord_new(const wconf_t *wc, herder_t *h, h2o_loop_t *loop, ferr_t *err)
{
    coord_t *co = calloc(1, sizeof *co);
    co->h = h;
    return co;
}

void coord_destroy(coord_t *co)
{
    free(co);
}
