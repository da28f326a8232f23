/* rest: Kafka Connect REST API. See rest.h.
 *
 * One h2o handler takes every path; route() splits the path into percent-decoded segments
 * (so a connector name may contain an encoded '/') and dispatches on them. Every answer is
 * JSON; every error is {"error_code":N,"message":"..."} with N the HTTP status.
 *
 * Asynchronous answers: a write waits for the store, or a forward for another worker, while
 * the client may go away. A pending request is a refcounted rreq_t shared by the operation
 * and a guard object in the request's memory pool; when h2o frees the request, the guard
 * clears rreq->req, and the late answer is dropped. */
#include "rest/rest.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "rest/fwd.h"
#include "rest/sec.h"
#include "rest/ui.h"
#include "worker/flog.h"
#include "worker/isig.h"
#include "worker/metrics.h"

#define MAX_SEGS 8

struct rest {
    h2o_handler_t *handler;
    herder_t *h;
    const wconf_t *wc;
    fwd_t *fwd;
    const sec_t *sec; /* NULL: no TLS client settings, no authentication */
};

typedef struct rest_handler {
    h2o_handler_t super;
    rest_t *r;
} rest_handler_t;

typedef struct rreq {
    h2o_req_t *req;
    int refs;
    rest_t *r;
} rreq_t;

/* A parsed request. */
typedef struct call {
    rest_t *r;
    h2o_req_t *req;
    char *segs[MAX_SEGS];
    int nsegs;
    char *path;  /* raw path without the query */
    char *query; /* raw query, NULL if none */
    json_t *params; /* object name -> array of decoded values */
    const char *method;
} call_t;

int rest_status_of(ferr_code_t code)
{
    switch (code) {
    case FERR_OK:
        return 200;
    case FERR_INVALID:
        return 400;
    case FERR_UNAUTHORIZED:
        return 401;
    case FERR_FORBIDDEN:
        return 403;
    case FERR_NOT_FOUND:
        return 404;
    case FERR_METHOD:
        return 405;
    case FERR_CONFLICT:
        return 409;
    case FERR_TOO_LARGE:
        return 413;
    case FERR_UNSUPPORTED:
        return 415;
    case FERR_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "OK";
    }
}

/* Length of the well-formed UTF-8 sequence at @p s (no overlong forms, surrogates or code
 * points above U+10FFFF: what jansson accepts), 0 if there is none. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* Request bytes become strings in JSON (names, query values, error messages), and jansson
 * refuses what is not UTF-8 (json_pack fails, json_object_set_new frees the value). So every
 * byte that does not start a well-formed sequence becomes U+FFFD.
 * Takes @p s (malloc'd, may be NULL) and frees it; returns a malloc'd copy. */
static char *utf8_scrub(char *s)
{
    if (!s)
        return NULL;
    char *out = malloc(3 * strlen(s) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq_len(p);
        if (n) {
            memcpy(o, p, n);
            o += n;
            p += n;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        }
    }
    *o = '\0';
    free(s);
    return out;
}

char *rest_error_body(int status, const char *message)
{
    /* the message may quote request bytes, or end in a character that vsnprintf cut */
    char *msg = utf8_scrub(strdup(message));
    json_t *o = json_pack("{s:i,s:s}", "error_code", status, "message", msg);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    free(msg);
    return s;
}

/* ---- request counts (for /metrics; h2o loop thread only) -------------------------------- */

#define REST_COUNT_MAX 256

/* Requests answered, by method, route (the path with names and ids replaced, so the set stays
 * small) and status. Plain statics: only the loop thread serves requests. */
static struct {
    char method[8];
    const char *route;
    int status;
    uint64_t n;
} g_counts[REST_COUNT_MAX];
static size_t g_ncounts;

static const char *route_of(const h2o_req_t *req)
{
    static const char *const subs[] = {"config", "status", "restart", "pause", "resume", "stop",
                                       "tasks", "topics", "offsets", "groups", NULL};
    static const char *const sub_routes[] = {
        "/connectors/{name}/config", "/connectors/{name}/status", "/connectors/{name}/restart",
        "/connectors/{name}/pause", "/connectors/{name}/resume", "/connectors/{name}/stop",
        "/connectors/{name}/tasks", "/connectors/{name}/topics", "/connectors/{name}/offsets",
        "/connectors/{name}/groups"};
    char path[512];
    size_t len = req->path_normalized.len < sizeof path - 1 ? req->path_normalized.len : sizeof path - 1;
    memcpy(path, req->path_normalized.base, len);
    path[len] = '\0';
    char *segs[6] = {0}, *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(path, "/", &save); tok && n < 6; tok = strtok_r(NULL, "/", &save))
        segs[n++] = tok;
    if (n == 0)
        return "/";
    if (!strcmp(segs[0], "health") || !strcmp(segs[0], "metrics"))
        return n == 1 ? (segs[0][0] == 'h' ? "/health" : "/metrics") : "other";
    if (!strcmp(segs[0], "connector-plugins"))
        return n == 1 ? "/connector-plugins" : "/connector-plugins/{plugin}/...";
    if (!strcmp(segs[0], "ui"))
        return n == 1 ? "/ui" : "other";
    if (!strcmp(segs[0], "admin"))
        return n <= 2 ? "/admin/loggers" : "/admin/loggers/{logger}";
    if (strcmp(segs[0], "connectors"))
        return "other";
    if (n == 1)
        return "/connectors";
    if (n == 2)
        return "/connectors/{name}";
    if (n >= 4 && !strcmp(segs[2], "tasks"))
        return n == 4 ? "/connectors/{name}/tasks/{task}" : "/connectors/{name}/tasks/{task}/...";
    if (n >= 4 && !strcmp(segs[2], "groups"))
        return n == 4 ? "/connectors/{name}/groups/{group}" : "/connectors/{name}/groups/{group}/...";
    for (int i = 0; subs[i]; i++)
        if (!strcmp(segs[2], subs[i]))
            return n == 3 ? sub_routes[i] : "other";
    return "other";
}

static void count_request(const h2o_req_t *req, int status)
{
    char method[8];
    snprintf(method, sizeof method, "%.*s", (int)(req->method.len < 7 ? req->method.len : 7), req->method.base);
    const char *route = route_of(req);
    size_t i;
    for (i = 0; i < g_ncounts; i++)
        if (g_counts[i].status == status && g_counts[i].route == route && !strcmp(g_counts[i].method, method))
            break;
    if (i == g_ncounts) {
        if (g_ncounts == REST_COUNT_MAX)
            return; /* full: only odd methods get here, and they are not worth more memory */
        memcpy(g_counts[i].method, method, sizeof method);
        g_counts[i].route = route;
        g_counts[i].status = status;
        g_ncounts++;
    }
    g_counts[i].n++;
}

/* ---- sending ---------------------------------------------------------------------------- */

static void send_raw(h2o_req_t *req, int status, const char *body, size_t len,
                     const char *content_type, const char *location)
{
    count_request(req, status);
    req->res.status = status;
    req->res.reason = reason_of(status);
    if (body && status != 204) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       content_type ? content_type : "application/json",
                       strlen(content_type ? content_type : "application/json"));
    }
    if (location)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location,
                       strlen(location));
    if (status == 204 || !body) {
        req->res.content_length = 0;
        h2o_send_inline(req, "", 0);
        return;
    }
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static void send_json(h2o_req_t *req, int status, const json_t *body, const char *location)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    send_raw(req, status, s, s ? strlen(s) : 0, NULL, location);
    free(s);
}

static int send_error(h2o_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int send_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *body = rest_error_body(status, msg);
    FLOG(DEBUG, REST, "%.*s %.*s -> %d %s", (int)req->method.len, req->method.base,
         (int)req->path.len, req->path.base, status, msg);
    send_raw(req, status, body, strlen(body), NULL, NULL);
    free(body);
    return 0;
}

/* ---- pending requests --------------------------------------------------------------- */

static void rreq_unref(rreq_t *rr)
{
    if (--rr->refs == 0)
        free(rr);
}

static void guard_dispose(void *p)
{
    rreq_t *rr = *(rreq_t **)p;
    rr->req = NULL;
    rreq_unref(rr);
}

static rreq_t *rreq_new(rest_t *r, h2o_req_t *req)
{
    rreq_t *rr = calloc(1, sizeof *rr);
    rr->req = req;
    rr->refs = 2;
    rr->r = r;
    rreq_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof *guard, guard_dispose);
    *guard = rr;
    return rr;
}

/* The herder's Location is "/connectors/<name>" with the raw name; the header carries a URI,
 * so the name is percent-encoded (as one segment: a '/' in the name becomes %2F). malloc'd. */
static char *location_uri(const char *loc)
{
    const char *slash = strchr(loc + 1, '/');
    if (!slash)
        return strdup(loc);
    char *esc = curl_easy_escape(NULL, slash + 1, 0), *out;
    if (asprintf(&out, "%.*s%s", (int)(slash + 1 - loc), loc, esc) < 0)
        abort();
    curl_free(esc);
    return out;
}

static void on_herder_done(void *arg, herder_result_t *res)
{
    rreq_t *rr = arg;
    if (rr->req) {
        if (res->err.code) {
            send_error(rr->req, rest_status_of(res->err.code), "%s", res->err.msg);
        } else {
            char *loc = res->location ? location_uri(res->location) : NULL;
            send_json(rr->req, res->status, res->body, loc);
            free(loc);
        }
    }
    rreq_unref(rr);
}

static void on_forwarded(void *arg, fwd_result_t *fr)
{
    rreq_t *rr = arg;
    if (rr->req) {
        if (fr->status == 0)
            send_error(rr->req, 500, "IO Error trying to forward REST request: %s", fr->error);
        else
            send_raw(rr->req, fr->status, fr->body, fr->len, fr->content_type, fr->location);
    }
    rreq_unref(rr);
}

/* ---- parsing -------------------------------------------------------------------------- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decodes [s, s+len); '+' stays '+' in paths, becomes ' ' in queries. NULL if malformed.
 * The result is UTF-8 (see utf8_scrub). */
static char *pct_decode(const char *s, size_t len, int plus_space)
{
    char *out = malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len) {
                free(out);
                return NULL;
            }
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_space) {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return utf8_scrub(out);
}

static void call_dispose(call_t *c)
{
    for (int i = 0; i < c->nsegs; i++)
        free(c->segs[i]);
    free(c->path);
    free(c->query);
    json_decref(c->params);
}

/* @returns 0, or -1 after sending 404 for an undecodable or too deep path. */
static int call_parse(call_t *c)
{
    h2o_req_t *req = c->req;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    c->path = strndup(req->path.base, plen);
    c->params = json_object();
    if (req->query_at != SIZE_MAX) {
        c->query = strndup(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
        char *save, *tok, *dup = strdup(c->query);
        for (tok = strtok_r(dup, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(tok, '=');
            char *k = pct_decode(tok, eq ? (size_t)(eq - tok) : strlen(tok), 1);
            char *v = eq ? pct_decode(eq + 1, strlen(eq + 1), 1) : strdup("");
            if (k && v) {
                json_t *arr = json_object_get(c->params, k);
                if (!arr)
                    json_object_set_new(c->params, k, arr = json_array());
                json_array_append_new(arr, json_string(v));
            }
            free(k);
            free(v);
        }
        free(dup);
    }
    const char *p = c->path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (c->nsegs == MAX_SEGS)
            return send_error(req, 404, "HTTP 404 Not Found"), -1;
        char *seg = pct_decode(p, len, 0);
        if (!seg)
            return send_error(req, 404, "HTTP 404 Not Found"), -1;
        c->segs[c->nsegs++] = seg;
        p += len;
    }
    return 0;
}

static const char *param(const call_t *c, const char *name)
{
    return json_string_value(json_array_get(json_object_get(c->params, name), 0));
}

/* Boolean query parameter: absent = @p def; true/false (any case); anything else -> 400. */
static int bool_param(call_t *c, const char *name, int def, int *out)
{
    const char *v = param(c, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!strcasecmp(v, "true"))
        *out = 1;
    else if (!strcasecmp(v, "false"))
        *out = 0;
    else
        return send_error(c->req, 400, "Invalid value %s for query parameter %s: expected true or false", v, name),
               -1;
    return 0;
}

static int is_method(const call_t *c, const char *m)
{
    return !strcmp(c->method, m);
}

/* Reads the JSON body: content type, size and syntax checked. NULL after an error was sent. */
static json_t *read_body(call_t *c, int want_object)
{
    h2o_req_t *req = c->req;
    ssize_t ci = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ci < 0 || strncasecmp(req->headers.entries[ci].value.base, "application/json", 16) ||
        (req->headers.entries[ci].value.len > 16 && req->headers.entries[ci].value.base[16] != ';' &&
         req->headers.entries[ci].value.base[16] != ' ')) {
        send_error(req, 415, "HTTP 415 Unsupported Media Type");
        return NULL;
    }
    if (req->entity.len > REST_MAX_BODY) {
        send_error(req, 413, "Request body of %zu bytes is larger than the limit of %d bytes",
                   req->entity.len, REST_MAX_BODY);
        return NULL;
    }
    json_error_t je;
    json_t *j = req->entity.base ? json_loadb(req->entity.base, req->entity.len, JSON_DECODE_ANY, &je) : NULL;
    if (!j) {
        send_error(req, 400, "Malformed JSON in request body: %s",
                   req->entity.base ? je.text : "empty body");
        return NULL;
    }
    if (want_object && !json_is_object(j)) {
        send_error(req, 400, "Request body must be a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Coerces a config map to strings as Jackson does for Map<String,String>; @p allow_null for PATCH. */
static json_t *string_config(call_t *c, const json_t *in, int allow_null)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v) {
        char buf[64];
        if (json_is_string(v))
            json_object_set(out, k, v);
        else if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            json_object_set_new(out, k, json_string(buf));
        } else if (json_is_real(v)) {
            snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
            json_object_set_new(out, k, json_string(buf));
        } else if (json_is_boolean(v))
            json_object_set_new(out, k, json_string(json_is_true(v) ? "true" : "false"));
        else if (json_is_null(v) && allow_null)
            json_object_set(out, k, v);
        else {
            send_error(c->req, 400, "Invalid value for configuration %s: must be a string", k);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int name_ok(call_t *c, const char *name)
{
    if (!*name)
        return send_error(c->req, 400, "Connector name must not be empty"), 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return send_error(c->req, 400, "Connector name must not contain ISO control characters"), 0;
    if (strlen(name) > 249)
        return send_error(c->req, 400, "Connector name is longer than 249 characters"), 0;
    return 1;
}

/* ---- forwarding ------------------------------------------------------------------------ */

/* A request header's value (the first, by lower-case name), malloc'd, or NULL. */
static char *header_dup(const h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i >= 0 ? strndup(req->headers.entries[i].value.base, req->headers.entries[i].value.len) : NULL;
}

/* Runs @p fn here if this worker is the leader; otherwise forwards to the leader.
 * Returns 1 if the caller should run the operation locally. */
static int leader_or_forward(call_t *c)
{
    rest_t *r = c->r;
    if (herder_is_leader(r->h) && herder_ready(r->h))
        return 1;
    const char *fwdp = param(c, "forward");
    if (fwdp && !strcasecmp(fwdp, "false")) {
        send_error(c->req, 409, "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
        return 0;
    }
    const char *leader = herder_leader_url(r->h);
    if (!leader || !herder_ready(r->h)) {
        send_error(c->req, 409,
                   "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.");
        return 0;
    }
    /* Same path, same query but with forward=true (first hop) or forward=false (second hop). */
    char *url = NULL;
    size_t ulen = 0;
    FILE *f = open_memstream(&url, &ulen);
    fprintf(f, "%s%s?", leader, c->path);
    int first = 1;
    const char *k;
    json_t *vals;
    json_object_foreach(c->params, k, vals) {
        if (!strcmp(k, "forward"))
            continue;
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v) {
            char *ek = curl_easy_escape(NULL, k, 0), *ev = curl_easy_escape(NULL, json_string_value(v), 0);
            fprintf(f, "%s%s=%s", first ? "" : "&", ek, ev);
            curl_free(ek);
            curl_free(ev);
            first = 0;
        }
    }
    fprintf(f, "%sforward=%s", first ? "" : "&", fwdp ? "false" : "true");
    fclose(f);
    h2o_req_t *req = c->req;
    char *ct = header_dup(req, "content-type"), *au = header_dup(req, "authorization");
    char *sig = header_dup(req, "x-connect-authorization");
    char *alg = header_dup(req, "x-connect-request-signature-algorithm");
    rreq_t *rr = rreq_new(r, req);
    FLOG(DEBUG, REST, "forwarding %s %s to %s", c->method, c->path, url);
    fwd_req_t fr = {.method = c->method, .url = url, .body = req->entity.base, .len = req->entity.len,
                    .content_type = ct, .auth = au, .sig = sig, .sig_alg = alg};
    if (fwd_request(r->fwd, &fr, on_forwarded, rr)) {
        rreq_unref(rr);
        send_error(req, 503, "Too many forwarded requests in flight; retry later");
    }
    free(url);
    free(ct);
    free(au);
    free(sig);
    free(alg);
    return 0;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static int answer(call_t *c, ferr_code_t rc, ferr_t *err, json_t *body, int status)
{
    if (rc) {
        send_error(c->req, rest_status_of(rc), "%s", err->msg);
    } else {
        send_json(c->req, status, body, NULL);
        json_decref(body);
    }
    return 0;
}

static int do_root(call_t *c)
{
    /* Kafka Connect's three keys, then ferry's own: which worker this is and whom it follows,
     * so operators (and deploy/drill) can find the leader without reading logs. */
    herder_t *h = c->r->h;
    const char *leader = herder_leader_url(h);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:I}", "version", REST_KAFKA_CONNECT_VERSION, "commit",
                          "ferry-" FERRY_VERSION, "kafka_cluster_id", herder_kafka_cluster_id(h),
                          "ferry_version", FERRY_VERSION, "worker_id", herder_worker_id(h),
                          "leader", herder_is_leader(h), "leader_url",
                          leader ? json_string(leader) : json_null(), "generation",
                          (json_int_t)herder_generation(h));
    ui_allow_origin(c->req); /* read by the /ui page of other workers; why only here: ui.c */
    return answer(c, FERR_OK, NULL, o, 200);
}

int rest_healthy(const herder_t *h)
{
    return herder_ready(h) && herder_leader_url(h);
}

static int do_health(call_t *c)
{
    if (!rest_healthy(c->r->h))
        return answer(c, FERR_OK, NULL,
                      json_pack("{s:s,s:s}", "status", "starting", "message",
                                "Worker is still starting up. Reading the config topic to its end."),
                      503);
    return answer(c, FERR_OK, NULL,
                  json_pack("{s:s,s:s}", "status", "healthy", "message",
                            "Worker has completed startup and is ready to handle requests."),
                  200);
}

static int do_list(call_t *c)
{
    int st = 0, info = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c->params, "expand"), i, v) {
        /* expand=status,info is accepted as well as repeated parameters */
        char *dup = strdup(json_string_value(v)), *save, *tok;
        for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (!strcmp(tok, "status"))
                st = 1;
            else if (!strcmp(tok, "info"))
                info = 1;
        }
        free(dup);
    }
    return answer(c, FERR_OK, NULL, herder_list(c->r->h, st, info), 200);
}

static int do_create(call_t *c)
{
    json_t *body = read_body(c, 1);
    if (!body)
        return 0;
    json_t *jname = json_object_get(body, "name"), *jcfg = json_object_get(body, "config");
    json_t *jinit = json_object_get(body, "initial_state");
    if (jname && !json_is_string(jname))
        return json_decref(body), send_error(c->req, 400, "Connector name must be a string");
    if (!jcfg || !json_is_object(jcfg))
        return json_decref(body), send_error(c->req, 400, "Request body must contain a \"config\" object");
    if (jinit && !json_is_null(jinit) && !json_is_string(jinit))
        return json_decref(body), send_error(c->req, 400, "initial_state must be a string");
    /* Kafka Connect trims the name */
    const char *raw = jname ? json_string_value(jname) : "";
    while (isspace((unsigned char)*raw))
        raw++;
    char *name = strdup(raw);
    for (size_t n = strlen(name); n && isspace((unsigned char)name[n - 1]);)
        name[--n] = '\0';
    json_t *cfg = string_config(c, jcfg, 0);
    int rc = 0;
    if (!cfg || !name_ok(c, name)) {
        rc = 0;
    } else {
        const char *cn = json_string_value(json_object_get(cfg, "name"));
        if (cn && strcmp(cn, name))
            send_error(c->req, 400,
                       "Connector name configuration (%s) doesn't match connector name in the URL (%s)", cn, name);
        else if (leader_or_forward(c))
            herder_put_connector(c->r->h, name, cfg, HERDER_PUT_CREATE,
                                 jinit && json_is_string(jinit) ? json_string_value(jinit) : NULL,
                                 on_herder_done, rreq_new(c->r, c->req));
    }
    json_decref(cfg);
    json_decref(body);
    free(name);
    return rc;
}

static int do_put_config(call_t *c, const char *name, int patch)
{
    json_t *body = read_body(c, 1);
    if (!body)
        return 0;
    json_t *cfg = string_config(c, body, patch);
    if (cfg && name_ok(c, name)) {
        const char *cn = json_string_value(json_object_get(cfg, "name"));
        if (cn && strcmp(cn, name))
            send_error(c->req, 400,
                       "Connector name configuration (%s) doesn't match connector name in the URL (%s)", cn, name);
        else if (leader_or_forward(c))
            herder_put_connector(c->r->h, name, cfg, patch ? HERDER_PUT_PATCH : HERDER_PUT_UPSERT, NULL,
                                 on_herder_done, rreq_new(c->r, c->req));
    }
    json_decref(cfg);
    json_decref(body);
    return 0;
}

static int parse_task_id(call_t *c, const char *s, int *id)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000)
        return send_error(c->req, 404, "HTTP 404 Not Found"), -1;
    *id = (int)v;
    return 0;
}

static int do_offsets(call_t *c, const char *name)
{
    rest_t *r = c->r;
    if (is_method(c, "GET")) {
        json_t *o = NULL;
        ferr_t e;
        ferr_code_t rc = herder_offsets(r->h, name, &o, &e);
        return answer(c, rc, &e, o, 200);
    }
    json_t *body = NULL;
    if (is_method(c, "PATCH") && !(body = read_body(c, 1)))
        return 0;
    if (leader_or_forward(c))
        herder_alter_offsets(r->h, name, body, is_method(c, "DELETE"), on_herder_done, rreq_new(r, c->req));
    json_decref(body);
    return 0;
}

static int do_task_restart_forward(call_t *c, const char *owner)
{
    const char *fwdp = param(c, "forward");
    if (fwdp && !strcasecmp(fwdp, "false"))
        return send_error(c->req, 409, "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
    char *url;
    if (asprintf(&url, "%s%s?forward=%s", owner, c->path, fwdp ? "false" : "true") < 0)
        abort();
    char *au = header_dup(c->req, "authorization");
    rreq_t *rr = rreq_new(c->r, c->req);
    fwd_req_t fr = {.method = "POST", .url = url, .auth = au};
    int busy = fwd_request(c->r->fwd, &fr, on_forwarded, rr);
    free(au);
    if (busy) {
        rreq_unref(rr);
        send_error(c->req, 503, "Too many forwarded requests in flight; retry later");
    }
    free(url);
    return 0;
}

/* Internal requests must carry a valid signature made with the group's session key (KIP-507;
 * Kafka Connect's checks, statuses and messages), over the body exactly as received. Checked on
 * every worker, before forwarding.
 * @returns 1 if the request may proceed, 0 after an error was sent. */
static int signature_ok(call_t *c)
{
    const wconf_t *wc = c->r->wc;
    if (!wc->isig_enabled)
        return 1;
    h2o_req_t *req = c->req;
    char *sig = header_dup(req, "x-connect-authorization"), *alg = header_dup(req, "x-connect-request-signature-algorithm");
    const unsigned char *key;
    size_t keylen;
    int ok = 0, known = 0;
    for (size_t i = 0; alg && wc->isig_verify[i]; i++)
        known |= !strcmp(alg, wc->isig_verify[i]);
    if (!sig || !alg) {
        send_error(req, 400, "Internal request missing required signature");
    } else if (!known) {
        char list[512] = "";
        for (size_t i = 0, n = 0; wc->isig_verify[i] && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", wc->isig_verify[i]);
        send_error(req, 400, "This worker does not support the '%s' key signing algorithm used by other workers. "
                   "This worker is currently configured to use: [%s]. Check that all workers' configuration files "
                   "permit the same set of signature algorithms, and correct any misconfigured worker and restart it.",
                   alg, list);
    } else if (herder_session_key(c->r->h, &key, &keylen)) {
        send_error(req, 503, "This worker is still starting up and has not been able to read a session key from "
                   "the config topic yet");
    } else {
        int v = isig_verify(alg, key, keylen, req->entity.base, req->entity.len, sig, strlen(sig));
        if (v < 0)
            send_error(req, 400, "Invalid signature: not base64");
        else if (v == 0)
            send_error(req, 403, "Internal request contained invalid signature.");
        ok = v == 1;
    }
    if (!ok)
        FLOG(WARN, REST, "refused %s %s: %s signature", c->method, c->path, !sig || !alg ? "no" : "an invalid");
    free(sig);
    free(alg);
    return ok;
}

static int do_task_post(call_t *c, const char *name)
{
    /* the body is read first (content type, size, JSON: 415, 413, 400), as Kafka Connect's
     * JAX-RS layer does before the resource method checks the signature */
    json_t *body = read_body(c, 0);
    if (!body)
        return 0;
    if (!signature_ok(c)) {
        json_decref(body);
        return 0;
    }
    if (!json_is_array(body)) {
        json_decref(body);
        return send_error(c->req, 400, "Task configs must be a JSON array of objects");
    }
    if (leader_or_forward(c))
        herder_put_task_configs(c->r->h, name, body, on_herder_done, rreq_new(c->r, c->req));
    json_decref(body);
    return 0;
}

/* /connectors/{name}/tasks/{id}/(status|restart): 404 for another last segment or a bad id,
 * 405 for a known path with the wrong method. */
static int do_one_task(call_t *c, const char *name)
{
    herder_t *h = c->r->h;
    int status = !strcmp(c->segs[4], "status"), id;
    if (!status && strcmp(c->segs[4], "restart"))
        return send_error(c->req, 404, "HTTP 404 Not Found");
    if (parse_task_id(c, c->segs[3], &id))
        return 0;
    if (!is_method(c, status ? "GET" : "POST"))
        return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    json_t *o = NULL;
    ferr_t e;
    if (status) {
        ferr_code_t rc = herder_task_status(h, name, id, &o, &e);
        return answer(c, rc, &e, o, 200);
    }
    char *owner = NULL;
    ferr_code_t rc = herder_restart_task(h, name, id, &owner, &e);
    int ret = rc == FERR_CONFLICT && owner ? do_task_restart_forward(c, owner) : answer(c, rc, &e, NULL, 204);
    free(owner);
    return ret;
}

static int do_restart(call_t *c, const char *name)
{
    int inc, only;
    if (bool_param(c, "includeTasks", 0, &inc) || bool_param(c, "onlyFailed", 0, &only))
        return 0;
    if (leader_or_forward(c))
        herder_restart_connector(c->r->h, name, inc, only, on_herder_done, rreq_new(c->r, c->req));
    return 0;
}

static int do_target(call_t *c, const char *name, const char *sub)
{
    const char *target = !strcmp(sub, "pause") ? "PAUSED" : !strcmp(sub, "stop") ? "STOPPED" : "STARTED";
    if (leader_or_forward(c))
        herder_set_target(c->r->h, name, target, on_herder_done, rreq_new(c->r, c->req));
    return 0;
}

/* Paths under /connectors/{name}/: each known path checks its methods (405 otherwise);
 * an unknown path is a 404. */
static int do_connector_sub(call_t *c, const char *name)
{
    herder_t *h = c->r->h;
    const char *sub = c->segs[2];
    json_t *o = NULL;
    ferr_t e;
    ferr_code_t rc;
    int three = c->nsegs == 3;
    if (three && !strcmp(sub, "config")) {
        if (is_method(c, "GET"))
            return rc = herder_config(h, name, &o, &e), answer(c, rc, &e, o, 200);
        if (is_method(c, "PUT") || is_method(c, "PATCH"))
            return do_put_config(c, name, is_method(c, "PATCH"));
    } else if (three && !strcmp(sub, "status")) {
        if (is_method(c, "GET"))
            return rc = herder_status(h, name, &o, &e), answer(c, rc, &e, o, 200);
    } else if (three && !strcmp(sub, "tasks")) {
        if (is_method(c, "GET"))
            return rc = herder_tasks(h, name, 0, &o, &e), answer(c, rc, &e, o, 200);
        if (is_method(c, "POST")) /* internal: task configs from a follower's connector */
            return do_task_post(c, name);
    } else if (three && !strcmp(sub, "tasks-config")) {
        if (is_method(c, "GET")) {
            FLOG(WARN, REST, "GET /connectors/{name}/tasks-config is deprecated; use GET /connectors/{name}/tasks");
            return rc = herder_tasks(h, name, 1, &o, &e), answer(c, rc, &e, o, 200);
        }
    } else if (c->nsegs == 5 && !strcmp(sub, "tasks")) {
        return do_one_task(c, name);
    } else if (three && !strcmp(sub, "restart")) {
        if (is_method(c, "POST"))
            return do_restart(c, name);
    } else if (three && (!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "stop"))) {
        if (is_method(c, "PUT"))
            return do_target(c, name, sub);
    } else if (three && !strcmp(sub, "topics")) {
        if (is_method(c, "GET"))
            return rc = herder_topics(h, name, &o, &e), answer(c, rc, &e, o, 200);
    } else if (c->nsegs == 4 && !strcmp(sub, "topics") && !strcmp(c->segs[3], "reset")) {
        /* Active topics are derived from the task configs, so there is nothing stored to clear. */
        if (is_method(c, "PUT"))
            return send_json(c->req, 202, NULL, NULL), 0;
    } else if (three && !strcmp(sub, "offsets")) {
        if (is_method(c, "GET") || is_method(c, "PATCH") || is_method(c, "DELETE"))
            return do_offsets(c, name);
    } else if (three && !strcmp(sub, "groups")) {
        if (is_method(c, "GET"))
            return rc = herder_groups(h, name, &o, &e), answer(c, rc, &e, o, 200);
    } else if (c->nsegs == 4 && !strcmp(sub, "groups")) {
        /* a report only: served by any worker */
        if (is_method(c, "GET"))
            return herder_group(h, name, c->segs[3], 0, on_herder_done, rreq_new(c->r, c->req)), 0;
    } else if (c->nsegs == 5 && !strcmp(sub, "groups") && !strcmp(c->segs[4], "translate")) {
        if (is_method(c, "POST")) {
            if (leader_or_forward(c))
                herder_group(h, name, c->segs[3], 1, on_herder_done, rreq_new(c->r, c->req));
            return 0;
        }
    } else {
        return send_error(c->req, 404, "HTTP 404 Not Found");
    }
    return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
}

static int do_connectors(call_t *c)
{
    rest_t *r = c->r;
    if (c->nsegs == 1) {
        if (is_method(c, "GET"))
            return do_list(c);
        if (is_method(c, "POST"))
            return do_create(c);
        return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    }
    const char *name = c->segs[1];
    if (c->nsegs == 2) {
        json_t *o = NULL;
        ferr_t e;
        if (is_method(c, "GET")) {
            ferr_code_t rc = herder_info(r->h, name, &o, &e);
            return answer(c, rc, &e, o, 200);
        }
        if (is_method(c, "DELETE")) {
            if (leader_or_forward(c))
                herder_delete_connector(r->h, name, on_herder_done, rreq_new(r, c->req));
            return 0;
        }
        return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    }
    return do_connector_sub(c, name);
}

static int do_plugins(call_t *c)
{
    json_t *o = NULL;
    ferr_t e;
    ferr_code_t rc;
    if (c->nsegs == 1 && is_method(c, "GET")) {
        int only;
        if (bool_param(c, "connectorsOnly", 1, &only))
            return 0;
        return answer(c, FERR_OK, NULL, herder_plugins(only), 200);
    }
    if (c->nsegs == 3 && !strcmp(c->segs[2], "config") && is_method(c, "GET"))
        return rc = herder_plugin_config(c->segs[1], &o, &e), answer(c, rc, &e, o, 200);
    if (c->nsegs == 4 && !strcmp(c->segs[2], "config") && !strcmp(c->segs[3], "validate") &&
        is_method(c, "PUT")) {
        json_t *body = read_body(c, 1);
        if (!body)
            return 0;
        json_t *cfg = string_config(c, body, 0);
        json_decref(body);
        if (!cfg)
            return 0;
        rc = herder_validate(c->r->h, c->segs[1], cfg, &o, &e);
        json_decref(cfg);
        return answer(c, rc, &e, o, 200);
    }
    if (c->nsegs <= 4)
        return send_error(c->req, c->nsegs == 1 || c->nsegs == 3 || c->nsegs == 4 ? 405 : 404,
                          c->nsegs == 1 || c->nsegs == 3 || c->nsegs == 4 ? "HTTP 405 Method Not Allowed"
                                                                          : "HTTP 404 Not Found");
    return send_error(c->req, 404, "HTTP 404 Not Found");
}

static int do_loggers(call_t *c)
{
    json_t *o = NULL;
    ferr_t e;
    ferr_code_t rc;
    if (c->nsegs == 2) {
        if (!is_method(c, "GET"))
            return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
        return answer(c, FERR_OK, NULL, herder_loggers(), 200);
    }
    if (c->nsegs != 3)
        return send_error(c->req, 404, "HTTP 404 Not Found");
    const char *name = c->segs[2];
    if (is_method(c, "GET"))
        return rc = herder_logger(name, &o, &e), answer(c, rc, &e, o, 200);
    if (!is_method(c, "PUT"))
        return send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    json_t *body = read_body(c, 1);
    if (!body)
        return 0;
    const char *level = json_string_value(json_object_get(body, "level"));
    const char *scope = param(c, "scope");
    if (!level) {
        json_decref(body);
        return send_error(c->req, 400, "Desired 'level' parameter was not specified in request.");
    }
    if (scope && !strcasecmp(scope, "cluster")) {
        if (flog_level_parse(level) < 0)
            rc = ferr_set(&e, FERR_NOT_FOUND, "invalid log level '%s'.", level), answer(c, rc, &e, NULL, 0);
        else if (leader_or_forward(c))
            herder_set_logger_cluster(c->r->h, name, level, on_herder_done, rreq_new(c->r, c->req));
    } else {
        if (scope && strcasecmp(scope, "worker"))
            FLOG(WARN, REST, "unknown logger scope '%s'; using worker scope", scope);
        rc = herder_set_logger(name, level, &o, &e);
        answer(c, rc, &e, o, 200);
    }
    json_decref(body);
    return 0;
}

/* Prometheus text: the herder's worker and task metrics, the REST counts, the process RSS. */
static int do_metrics(call_t *c)
{
    metrics_t *m = metrics_new();
    herder_metrics(c->r->h, m);
    metrics_family(m, "ferry_rest_requests_total", "counter", "REST requests answered, by route and status.");
    for (size_t i = 0; i < g_ncounts; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", g_counts[i].status);
        const char *labels[] = {"method", g_counts[i].method, "route", g_counts[i].route, "code", code, NULL};
        metrics_sample(m, "ferry_rest_requests_total", labels, (double)g_counts[i].n);
    }
    long rss_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &rss_kb) == 1)
            break;
    if (f)
        fclose(f);
    metrics_family(m, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    metrics_sample(m, "process_resident_memory_bytes", NULL, (double)rss_kb * 1024);
    size_t len;
    char *text = metrics_finish(m, &len);
    ui_allow_origin(c->req); /* read by the /ui page of other workers; why only here: ui.c */
    send_raw(c->req, 200, text, len, "text/plain; version=0.0.4; charset=utf-8", NULL);
    free(text);
    return 0;
}

/* The live cluster page (rest/ui.c). */
static int do_ui(call_t *c)
{
    size_t len;
    const char *page = ui_page(&len);
    send_raw(c->req, 200, page, len, UI_CONTENT_TYPE, NULL);
    return 0;
}

static int route(call_t *c)
{
    const char *s0 = c->nsegs ? c->segs[0] : "";
    if (c->nsegs == 0)
        return is_method(c, "GET") ? do_root(c) : send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    if (!strcmp(s0, "health") && c->nsegs == 1)
        return is_method(c, "GET") ? do_health(c) : send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    if (!strcmp(s0, "metrics") && c->nsegs == 1)
        return is_method(c, "GET") ? do_metrics(c) : send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    if (!strcmp(s0, "ui") && c->nsegs == 1)
        return is_method(c, "GET") ? do_ui(c) : send_error(c->req, 405, "HTTP 405 Method Not Allowed");
    if (!strcmp(s0, "connectors"))
        return do_connectors(c);
    if (!strcmp(s0, "connector-plugins"))
        return do_plugins(c);
    if (!strcmp(s0, "admin") && c->nsegs >= 2 && !strcmp(c->segs[1], "loggers"))
        return do_loggers(c);
    return send_error(c->req, 404, "HTTP 404 Not Found");
}

/* Basic authentication (BasicAuthSecurityRestExtension's role): every path, every method.
 * A refusal is Kafka Connect's JSON error with a challenge. */
static int authorized(rest_t *r, h2o_req_t *req)
{
    if (!sec_auth_enabled(r->sec))
        return 1;
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (ai >= 0 && sec_auth_check(r->sec, req->headers.entries[ai].value.base, req->headers.entries[ai].value.len))
        return 1;
    static const char challenge[] = "Basic realm=\"" SEC_REALM "\"";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge,
                   sizeof challenge - 1);
    send_error(req, 401, "User cannot access the resource.");
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    rest_handler_t *rh = (rest_handler_t *)self;
    call_t c = {.r = rh->r, .req = req};
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)(req->method.len < 15 ? req->method.len : 15), req->method.base);
    c.method = method;
    if (!authorized(rh->r, req))
        return 0;
    if (call_parse(&c) == 0)
        route(&c);
    call_dispose(&c);
    return 0;
}

static void on_task_configs_sent(void *arg, fwd_result_t *fr)
{
    char *name = arg;
    if (fr->status != 204 && fr->status != 200)
        FLOG(WARN, REST, "sending task configs of %s to the leader failed: %s", name,
             fr->status ? fr->body : fr->error);
    free(name);
}

/* Task configs generated by a connector instance on this follower go to the leader. */
static void send_task_configs(void *arg, const char *leader_url, const char *name, const json_t *configs)
{
    rest_t *r = arg;
    char *esc = curl_easy_escape(NULL, name, 0), *url;
    if (asprintf(&url, "%s/connectors/%s/tasks?forward=true", leader_url, esc) < 0)
        abort();
    char *body = json_dumps(configs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *arg2 = strdup(name), *sig = NULL;
    const unsigned char *key;
    size_t keylen;
    if (r->wc->isig_enabled && herder_session_key(r->h, &key, &keylen) == 0)
        sig = isig_sign(r->wc->isig_algorithm, key, keylen, body, strlen(body));
    fwd_req_t fr = {.method = "POST", .url = url, .body = body, .len = strlen(body),
                    .content_type = "application/json", .auth = sec_internal_auth(r->sec), .sig = sig,
                    .sig_alg = r->wc->isig_algorithm};
    if (r->wc->isig_enabled && !sig)
        FLOG(WARN, REST, "task configs of %s not sent: no session key read from the config topic yet "
             "(sent again at the connector's next report)", name);
    else if (fwd_request(r->fwd, &fr, on_task_configs_sent, arg2) == 0)
        arg2 = NULL;
    free(arg2);
    free(sig);
    curl_free(esc);
    free(url);
    free(body);
}

rest_t *rest_new(h2o_hostconf_t *host, herder_t *h, const wconf_t *wc, h2o_loop_t *loop)
{
    rest_t *r = calloc(1, sizeof *r);
    r->h = h;
    r->wc = wc;
    r->fwd = fwd_new(loop, 90000);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    rest_handler_t *rh = (rest_handler_t *)h2o_create_handler(pc, sizeof *rh);
    rh->super.on_req = on_req;
    rh->r = r;
    r->handler = &rh->super;
    herder_on_task_configs(h, send_task_configs, r);
    return r;
}

void rest_set_sec(rest_t *r, const sec_t *s)
{
    r->sec = s;
    fwd_set_tls(r->fwd, s ? sec_client_tls(s) : NULL);
}

void rest_destroy(rest_t *r)
{
    if (!r)
        return;
    fwd_destroy(r->fwd);
    free(r);
}
