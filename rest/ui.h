/* ui: the live cluster page served at GET /ui. The page (rest/ui.html, embedded in the binary
 * at build time) is static HTML and JavaScript: every 2 s it asks the worker that served it
 * for GET / and GET /connectors?expand=status&expand=info, and every worker it has heard of
 * for GET / and GET /metrics, and shows workers, leader, connectors, tasks and per-partition
 * lag and records/s. The worker does no work for it beyond serving those endpoints.
 *
 * Threads: ui_allow_origin runs on the h2o loop thread, as every handler does. */
#ifndef FERRY_UI_H
#define FERRY_UI_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stddef.h>

/** Content-Type of the page. */
#define UI_CONTENT_TYPE "text/html; charset=utf-8"

/** The page: static bytes (not NUL-terminated), @p len set to their length. */
const char *ui_page(size_t *len);

/** Adds "Access-Control-Allow-Origin: *" to @p req's response, so the page served by one
 *  worker may read another worker's answer. For the read-only GETs the page polls only. */
void ui_allow_origin(h2o_req_t *req);

#endif
