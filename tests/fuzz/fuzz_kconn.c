/* fuzz_kconn: libFuzzer harness for kconn's own parsing (worker/kconn.c): what it does with a
 * broker's byte stream beyond kwire's decoders (frames split and joined across reads, the
 * receive buffer, the correlation FIFO, the ApiVersions fallback, the SaslHandshake and
 * SaslAuthenticate glue), and its configuration values.
 *
 * The input is  selector byte | data
 *   selector & 0x80    data is a .properties text, layered over a fixed ssl.ca.pem with
 *                      kconn_conf_from() (keys ending in ".location" are dropped: no files are
 *                      read); PEM values go to OpenSSL's parsers
 *   otherwise          data is everything a broker sends: written in advance into one end of a
 *                      socketpair, then that end is shut, and kconn_open_fd() runs on the other
 *                      end with security (selector & 3) plaintext, or sasl_plaintext with PLAIN,
 *                      SCRAM-SHA-256, SCRAM-SHA-512; once open, (selector >> 2) & 7 Metadata
 *                      requests are pipelined and their answers read, then one kconn_metadata().
 * Invariants (a violation aborts): every error is one of the documented codes with a message
 * (a connection's starting with "fuzz:9092: "), no wait ever times out (all bytes are there,
 * then EOF), responses come back in the order sent, a broken connection stays broken; a
 * finished configuration is consistent (TLS <=> an SSL_CTX, SASL <=> a mechanism) and
 * kconn_conf_dispose() leaves nothing.
 *
 *   run: build-fuzz/fuzz_kconn -max_total_time=300 <copy of tests/fuzz/corpus/kconn>
 * The seeds are streams of a plaintext broker, a SASL PLAIN broker, a SCRAM broker's first
 * answer, an older broker that refuses ApiVersions v2, and a configuration file. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/kconn.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_kconn: %s: %s\n", what, detail);
    abort();
}

/* Under the fuzzed layer, so that a configuration without a CA does not load OpenSSL's default
 * bundle (hundreds of certificates, on every run); the fuzzed layer may still replace it. */
static const char fixed_ca[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkjCCATmgAwIBAgIUB7IGBgqFYYAJ73Lpn9IrcHvb6nwwCgYIKoZIzj0EAwIw\n"
    "HjEcMBoGA1UEAwwTZnV6el9rY29ubiBmaXhlZCBDQTAgFw0yNjEyMDQyMDM3NTha\n"
    "GA8yMTI2MTExMDIwMzc1OFowHjEcMBoGA1UEAwwTZnV6el9rY29ubiBmaXhlZCBD\n"
    "QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBYAYlubTIXasHsubfUTlNJA63+T\n"
    "gAxA8EvaXiKBLQFf7xd0nsKHe2bFCjJtAqsQYQZ7jptq4nIX2jyAT8uTDG6jUzBR\n"
    "MB0GA1UdDgQWBBSK9Vt5TTUCA3iMmrP0fauqP49QMTAfBgNVHSMEGDAWgBSK9Vt5\n"
    "TTUCA3iMmrP0fauqP49QMTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA\n"
    "MEQCIC1GrRO/H6S21cTr6j5WkBrPXJB3bdU4ax7n6SfujWMSAiBsgofQg6Ct/vRZ\n"
    "cSG126ZYv9GLkFtSUNksrjD0LFjGZg==\n"
    "-----END CERTIFICATE-----\n";

static void check_error(ferr_code_t rc, const ferr_t *err, bool connection)
{
    if (rc != FERR_KAFKA && rc != FERR_UNAUTHORIZED && rc != FERR_UNSUPPORTED && rc != FERR_INVALID)
        fail("unexpected error code", ferr_code_name(rc));
    if (!err->msg[0] || (connection && strncmp(err->msg, "fuzz:9092: ", 11)))
        fail("error message", err->msg);
}

static void fuzz_conf(const uint8_t *data, size_t size)
{
    props_t *p = props_new(), *safe = props_new(), *base = props_new();
    kconn_conf_t c;
    ferr_t err = {0};
    props_parse(p, (const char *)data, size, NULL); /* entries before a bad line are kept */
    for (size_t i = 0; i < props_count(p); i++) {
        size_t n = strlen(props_key(p, i));
        if (n < 9 || strcmp(props_key(p, i) + n - 9, ".location"))
            props_set(safe, props_key(p, i), props_value(p, i));
    }
    props_set(base, "ssl.ca.pem", fixed_ca);
    ferr_code_t rc = kconn_conf_from(base, safe, "fuzz.", NULL, NULL, &c, &err);
    if (rc)
        check_error(rc, &err, false);
    bool tls = c.security == KCONN_SSL || c.security == KCONN_SASL_SSL;
    bool sasl = c.security == KCONN_SASL_PLAINTEXT || c.security == KCONN_SASL_SSL;
    if (!rc && (tls != (c._ssl_ctx != NULL) || sasl != (c.mechanism != KCONN_MECH_NONE)))
        fail("configuration", "TLS without an SSL_CTX, or SASL without a mechanism (or the reverse)");
    if (!rc && sasl && (!c.username || !c.password))
        fail("configuration", "SASL without credentials");
    kconn_conf_dispose(&c);
    if (c.username || c.password || c.client_id || c._ssl_ctx)
        fail("kconn_conf_dispose", "left something behind");
    props_destroy(p);
    props_destroy(safe);
    props_destroy(base);
}

/* Pipelines @p n Metadata requests, reads their answers in order, then one blocking call. */
static void fuzz_requests(kconn_t *c, int n)
{
    kwire_wr_t w;
    ferr_t err = {0};
    int32_t sent[8];
    kwire_wr_init(&w);
    int16_t v = kconn_version(c, KWIRE_API_METADATA, 1, 8);
    kwire_metadata_req_t mr = {NULL, -1, false};
    for (int i = 0; i < n && v >= 0; i++) {
        kwire_req_hdr_t h = kconn_hdr(c, v);
        sent[i] = h.correlation_id;
        kwire_metadata_req_write(&w, &h, &mr, NULL);
    }
    ferr_code_t rc = v >= 0 && n ? kconn_send(c, &w, 1000, NULL, &err) : FERR_OK;
    for (int i = 0; i < n && v >= 0 && !rc; i++) {
        const uint8_t *body;
        size_t len;
        int32_t corr;
        kwire_metadata_resp_t md;
        if ((rc = kconn_recv(c, 1000, &body, &len, &corr, &err)))
            break;
        if (corr != sent[i])
            fail("kconn_recv", "a response out of order was returned");
        if (kwire_metadata_resp_decode(body, len, v, &md, NULL) == FERR_OK)
            kwire_metadata_resp_dispose(&md);
    }
    if (rc == FERR_TIMEOUT)
        fail("kconn_recv", "waited although every byte was there");
    if (rc) {
        check_error(rc, &err, true);
        if (kconn_ok(c) || kconn_recv(c, 0, NULL, NULL, NULL, &err) != FERR_KAFKA)
            fail("kconn_recv", "a broken connection was usable again");
    }
    kwire_metadata_resp_t md;
    if ((rc = kconn_metadata(c, NULL, -1, &md, 1000, &err)) == FERR_OK)
        kwire_metadata_resp_dispose(&md);
    else if (rc == FERR_TIMEOUT)
        fail("kconn_metadata", "waited although every byte was there");
    kwire_wr_dispose(&w);
}

static void fuzz_stream(uint8_t sel, const uint8_t *data, size_t size)
{
    static const char *const mechs[] = {NULL, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    int sv[2];
    kconn_conf_t conf;
    ferr_t err = {0};
    props_t *p = props_new();
    if (mechs[sel & 3]) {
        props_set(p, "security.protocol", "sasl_plaintext");
        props_set(p, "sasl.mechanism", mechs[sel & 3]);
        props_set(p, "sasl.username", "fuzz");
        props_set(p, "sasl.password", "fuzz-secret");
    }
    if (kconn_conf_from(NULL, p, "", NULL, NULL, &conf, &err) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        fail("setup", err.msg);
    props_destroy(p);
    if (size > 65536) /* what the socket buffer surely holds */
        size = 65536;
    if (size && write(sv[1], data, size) != (ssize_t)size)
        fail("setup", "write");
    shutdown(sv[1], SHUT_WR);
    kconn_t *c = kconn_open_fd(&conf, sv[0], "fuzz", 9092, 1000, &err);
    if (!c && err.code == FERR_TIMEOUT)
        fail("kconn_open_fd", "waited although every byte was there");
    if (!c)
        check_error(err.code, &err, true);
    else
        fuzz_requests(c, (sel >> 2) & 7);
    kconn_destroy(c);
    close(sv[1]);
    kconn_conf_dispose(&conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        fuzz_conf(data + 1, size - 1);
    else
        fuzz_stream(data[0], data + 1, size - 1);
    return 0;
}
