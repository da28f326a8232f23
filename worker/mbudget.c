/* mbudget: divides the worker's memory budget among its tasks. See mbudget.h.
 *
 * The split is static: a task gets budget / ntasks whatever its partitions or record sizes,
 * decided when the task starts (rtask.c). Fixed floors keep a worker with many tasks
 * working (a few MiB per task are needed for fetches and batches), so beyond about
 * budget / (2 * MBUDGET_FLOOR_KBYTES KiB) tasks the bound is the floors, not the budget. */
#include "worker/mbudget.h"

#include <stddef.h>

#define LEGACY_CONSUMER_KBYTES 16384
#define LEGACY_PRODUCER_KBYTES 32768
#define LEGACY_PRODUCER_MESSAGES 200000
#define DEFAULT_MESSAGE_MAX_BYTES 1000000 /* librdkafka's message.max.bytes */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void mbudget_task_limits(int64_t budget_bytes, int ntasks, int64_t message_max_bytes,
                         const mbudget_limits_t *user, mbudget_limits_t *out)
{
    if (ntasks < 1)
        ntasks = 1;
    if (message_max_bytes <= 0)
        message_max_bytes = DEFAULT_MESSAGE_MAX_BYTES;
    if (budget_bytes <= 0) {
        out->consumer_kbytes = LEGACY_CONSUMER_KBYTES;
        out->producer_kbytes = LEGACY_PRODUCER_KBYTES;
        out->producer_messages = LEGACY_PRODUCER_MESSAGES;
    } else {
        int64_t half_kb = budget_bytes / ntasks / 2 / 1024;
        out->consumer_kbytes = max64(half_kb, MBUDGET_FLOOR_KBYTES);
        out->producer_kbytes = max64(half_kb, MBUDGET_FLOOR_KBYTES);
        out->producer_messages = out->producer_kbytes * 1024 / MBUDGET_RECORD_COST;
    }
    /* librdkafka refuses a record larger than the producer's whole queue, forever */
    out->producer_kbytes = max64(out->producer_kbytes, message_max_bytes / 1024 + 1);
    if (user && user->consumer_kbytes > 0)
        out->consumer_kbytes = user->consumer_kbytes;
    if (user && user->producer_kbytes > 0)
        out->producer_kbytes = user->producer_kbytes;
    if (user && user->producer_messages > 0)
        out->producer_messages = user->producer_messages;
}

void mbudget_worker_producer_limits(int64_t budget_bytes, int64_t message_max_bytes,
                                    const mbudget_limits_t *user, mbudget_limits_t *out)
{
    mbudget_task_limits(budget_bytes, 1, message_max_bytes, user, out);
}

void mbudget_consumer_limits(int64_t budget_bytes, int queues, mbudget_limits_t *out)
{
    mbudget_task_limits(budget_bytes, queues < 1 ? 1 : queues, 0, NULL, out);
}

int64_t mbudget_batch_bytes(int64_t budget_bytes)
{
    if (budget_bytes <= 0)
        return 64 << 20;
    return budget_bytes / 2 > (4 << 20) ? budget_bytes / 2 : 4 << 20;
}
