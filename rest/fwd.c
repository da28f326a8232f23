/* fwd: request forwarding over libcurl on helper threads. See fwd.h. */
#include "rest/fwd.h"
#include "worker/evq.h"

#include <curl/curl.h>
#include <h2o/multithread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "worker/isig.h"

typedef struct fwd_job {
    h2o_multithread_message_t super;
    fwd_t *f;
    char *method, *url, *body, *content_type, *auth, *sig, *sig_alg;
    size_t len;
    fwd_cb cb;
    void *arg;
    fwd_result_t res;
    size_t cap;
} fwd_job_t;

struct fwd {
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    long timeout_ms;
    const fwd_tls_t *tls; /* NULL: curl's defaults */
    atomic_int inflight;
    atomic_int closing;
};

static void job_free(fwd_job_t *j)
{
    free(j->method);
    free(j->url);
    free(j->body);
    free(j->content_type);
    free(j->auth);
    free(j->sig);
    free(j->sig_alg);
    free(j->res.body);
    free(j->res.content_type);
    free(j->res.location);
    free(j);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    fwd_job_t *j = ud;
    size_t len = sz * n;
    if (j->res.len + len + 1 > j->cap) {
        j->cap = (j->res.len + len + 1) * 2;
        j->res.body = realloc(j->res.body, j->cap);
    }
    memcpy(j->res.body + j->res.len, p, len);
    j->res.len += len;
    j->res.body[j->res.len] = '\0';
    return len;
}

static char *header_value(const char *line, size_t len, const char *name)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return strndup(v, end - v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    fwd_job_t *j = ud;
    size_t len = sz * n;
    char *v;
    if ((v = header_value(p, len, "content-type"))) {
        free(j->res.content_type);
        j->res.content_type = v;
    } else if ((v = header_value(p, len, "location"))) {
        free(j->res.location);
        j->res.location = v;
    }
    return len;
}

/* TLS for https URLs: the truststore, host name checking, and a client certificate for a
 * leader that asks for one (ssl.client.auth). PEM text goes in as blobs, copied by curl. */
static void set_tls(CURL *c, const fwd_tls_t *t)
{
    if (!t)
        return;
    if (t->ca_pem) {
        struct curl_blob b = {(void *)t->ca_pem, strlen(t->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, t->verify_host ? 2L : 0L);
    if (t->cert_pem && t->key_pem) {
        struct curl_blob cb = {(void *)t->cert_pem, strlen(t->cert_pem), CURL_BLOB_COPY};
        struct curl_blob kb = {(void *)t->key_pem, strlen(t->key_pem), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
        if (t->key_password)
            curl_easy_setopt(c, CURLOPT_KEYPASSWD, t->key_password);
    }
}

static void *job_main(void *arg)
{
    fwd_job_t *j = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char *h;
    if (j->content_type && asprintf(&h, "Content-Type: %s", j->content_type) > 0) {
        hdrs = curl_slist_append(hdrs, h);
        free(h);
    }
    if (j->auth && asprintf(&h, "Authorization: %s", j->auth) > 0) {
        hdrs = curl_slist_append(hdrs, h);
        free(h);
    }
    if (j->sig && j->sig_alg && asprintf(&h, ISIG_HEADER ": %s", j->sig) > 0) {
        hdrs = curl_slist_append(hdrs, h);
        free(h);
        if (asprintf(&h, ISIG_ALGORITHM_HEADER ": %s", j->sig_alg) > 0) {
            hdrs = curl_slist_append(hdrs, h);
            free(h);
        }
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    /* the leader must get the path as received: curl would resolve "/connectors/.." to "/" */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, j->method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, j->f->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    set_tls(c, j->f->tls);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, j);
    if (j->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)j->len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(j->res.error, sizeof j->res.error, "%s", curl_easy_strerror(rc));
    } else {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        j->res.status = (int)status;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (!j->res.body)
        j->res.body = strdup("");
    fwd_t *f = j->f;
    if (atomic_load(&f->closing))
        job_free(j);
    else
        h2o_multithread_send_message(&f->receiver, &j->super);
    atomic_fetch_sub(&f->inflight, 1); /* counts running threads only */
    return NULL;
}

static void on_results(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    (void)recv;
    while (!h2o_linklist_is_empty(messages)) {
        fwd_job_t *j = H2O_STRUCT_FROM_MEMBER(fwd_job_t, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        j->cb(j->arg, &j->res);
        job_free(j);
    }
}

fwd_t *fwd_new(h2o_loop_t *loop, long timeout_ms)
{
    fwd_t *f = calloc(1, sizeof *f);
    f->timeout_ms = timeout_ms;
    f->loop = loop;
    f->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(f->queue, &f->receiver, on_results);
    return f;
}

void fwd_set_tls(fwd_t *f, const fwd_tls_t *tls)
{
    f->tls = tls;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int fwd_request(fwd_t *f, const fwd_req_t *r, fwd_cb cb, void *arg)
{
    if (atomic_fetch_add(&f->inflight, 1) >= FWD_MAX_INFLIGHT) {
        atomic_fetch_sub(&f->inflight, 1);
        return -1;
    }
    fwd_job_t *j = calloc(1, sizeof *j);
    j->f = f;
    j->method = strdup(r->method);
    j->url = strdup(r->url);
    if (r->body) {
        j->body = malloc(r->len + 1);
        memcpy(j->body, r->body, r->len);
        j->body[r->len] = '\0';
        j->len = r->len;
    }
    j->content_type = dup_or_null(r->content_type);
    j->auth = dup_or_null(r->auth);
    j->sig = dup_or_null(r->sig);
    j->sig_alg = dup_or_null(r->sig_alg);
    j->cb = cb;
    j->arg = arg;
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, job_main, j)) {
        pthread_attr_destroy(&attr);
        atomic_fetch_sub(&f->inflight, 1);
        job_free(j);
        return -1;
    }
    pthread_attr_destroy(&attr);
    return 0;
}

void fwd_destroy(fwd_t *f)
{
    if (!f)
        return;
    /* Wait for running threads, then deliver what they posted; one still running after 10 s
     * drops its result instead of posting to a receiver that is gone. */
    for (int i = 0; i < 1000 && atomic_load(&f->inflight) > 0; i++)
        usleep(10 * 1000);
    atomic_store(&f->closing, 1);
    evq_drain(f->loop);
    h2o_multithread_unregister_receiver(f->queue, &f->receiver);
    h2o_multithread_destroy_queue(f->queue);
    free(f);
}
