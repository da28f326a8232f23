/* evq: see evq.h. */
#include "worker/evq.h"

void evq_drain(h2o_loop_t *loop)
{
    /* A few non-blocking rounds: a delivered message may cause another to be posted. */
    for (int i = 0; i < 4; i++)
        h2o_evloop_run(loop, 0);
}
