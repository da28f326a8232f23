/* ui: the live cluster page. See ui.h.
 *
 * The page lives in rest/ui.html so that it can be read and edited as HTML; CMakeLists.txt
 * turns it into the byte array ui_html[] (generated/rest/ui_html.h in the build tree) when it
 * configures, and again whenever the file changes. No build tool, framework or CDN: the page
 * is the whole UI, and it works from a worker with no access to the internet.
 *
 * Cross-origin reads: a browser lets the page served by worker A read an answer of worker B
 * only if B allows it (CORS). The page needs B's GET / and GET /metrics, so those two say
 * "Access-Control-Allow-Origin: *". That lets any web page an operator's browser opens read
 * them too, which is acceptable for worker ids, leadership and counters. Nothing else gets the
 * header: connector configs name hosts and may carry credentials, and writes must never be
 * driven from another site's page.
 */
#include "rest/ui.h"

#include "rest/ui_html.h"

const char *ui_page(size_t *len)
{
    *len = sizeof ui_html;
    return (const char *)ui_html;
}

void ui_allow_origin(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                   H2O_STRLIT("*"));
}
