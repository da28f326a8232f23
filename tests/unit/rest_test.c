/* rest_test: the parts of rest.c that turn request bytes into JSON strings. Bytes that are not
 * UTF-8 (a percent-decoded path or query, or a message cut inside a character) once made
 * jansson fail: rest_error_body() returned NULL and send_error() crashed on it, and a query
 * key that was not UTF-8 was freed by json_object_set_new() and then appended to.
 *
 * rest.c is included, as h2o's unit tests include the file under test, to reach its static
 * functions; the test then defines every rest_* symbol, so the library's rest.o is not linked. */
#include "rest/rest.c"

#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"

#define FFFD "\xef\xbf\xbd"

/* The body for @p msg parses, has the status, and its message is @p want. */
static void expect_body(const char *msg, const char *want)
{
    char *body = rest_error_body(404, msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    json_t *j = json_loads(body, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "error_code")), 404);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "message")), want);
    json_decref(j);
    free(body);
}

static void test_error_body_utf8(void)
{
    expect_body("", "");
    expect_body("Connector x not found", "Connector x not found");
    expect_body("\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", "\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80");
    expect_body("Connector \xff not found", "Connector " FFFD " not found");
    expect_body("cut in two: \xc3", "cut in two: " FFFD);              /* vsnprintf's cut */
    expect_body("\xe2\x98", FFFD FFFD);                                /* truncated 3-byte */
    expect_body("\xc0\xaf \xe0\x80\xaf", FFFD FFFD " " FFFD FFFD FFFD); /* overlong forms */
    expect_body("\xed\xa0\x80", FFFD FFFD FFFD);                       /* a surrogate */
    expect_body("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);              /* above U+10FFFF */
    expect_body("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");               /* U+10FFFF itself */
    expect_body("\x80x\xfe", FFFD "x" FFFD);
}

static void test_error_body_cut_message(void)
{
    /* what send_error() does with a long message: cut at 2047 bytes, here inside an 'é' */
    char buf[2048];
    size_t n = 0;
    buf[n++] = 'x';
    buf[n++] = 'y';
    while (n < sizeof buf - 1) {
        buf[n++] = '\xc3';
        buf[n++] = '\xa9';
    }
    buf[sizeof buf - 1] = '\0'; /* the cut leaves the 0xc3 of the last 'é' */
    char *body = rest_error_body(400, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\xc3\xa9" FFFD "\"}"));
    free(body);
}

static void test_pct_decode_utf8(void)
{
    char *s = pct_decode("a%C3%A9%FF+b", 12, 0);
    CU_ASSERT_STRING_EQUAL(s, "a\xc3\xa9" FFFD "+b");
    free(s);
    s = pct_decode("%ED%A0%80+", 10, 1);
    CU_ASSERT_STRING_EQUAL(s, FFFD FFFD FFFD " ");
    free(s);
    CU_ASSERT_PTR_NULL(pct_decode("%F", 2, 0));
    CU_ASSERT_PTR_NULL(pct_decode("%zz", 3, 0));
}

/* A request as call_parse() reads it: only the path and the query offset are used. */
static int parse(call_t *c, h2o_req_t *req, const char *target)
{
    memset(req, 0, sizeof *req);
    memset(c, 0, sizeof *c);
    req->path = h2o_iovec_init(target, strlen(target));
    const char *q = strchr(target, '?');
    req->query_at = q ? (size_t)(q - target) : SIZE_MAX;
    c->req = req;
    return call_parse(c);
}

static void test_call_parse_not_utf8(void)
{
    h2o_req_t req;
    call_t c;
    CU_ASSERT_EQUAL_FATAL(parse(&c, &req, "/connectors/%FF/status?%FF=1&a=%C0&%FF=2&b=%zz&=e"), 0);
    CU_ASSERT_EQUAL(c.nsegs, 3);
    CU_ASSERT_STRING_EQUAL(c.segs[1], FFFD);
    json_t *v = json_object_get(c.params, FFFD);
    CU_ASSERT_EQUAL(json_array_size(v), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(v, 0)), "1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(v, 1)), "2");
    CU_ASSERT_STRING_EQUAL(param(&c, "a"), FFFD);
    CU_ASSERT_PTR_NULL(param(&c, "b")); /* undecodable: dropped */
    CU_ASSERT_STRING_EQUAL(param(&c, ""), "e");
    call_dispose(&c);
}

static void test_status_of(void)
{
    CU_ASSERT_EQUAL(rest_status_of(FERR_OK), 200);
    CU_ASSERT_EQUAL(rest_status_of(FERR_INVALID), 400);
    CU_ASSERT_EQUAL(rest_status_of(FERR_NOT_FOUND), 404);
    CU_ASSERT_EQUAL(rest_status_of(FERR_CONFLICT), 409);
    CU_ASSERT_EQUAL(rest_status_of(FERR_TOO_LARGE), 413);
    CU_ASSERT_EQUAL(rest_status_of(FERR_UNSUPPORTED), 415);
    CU_ASSERT_EQUAL(rest_status_of(FERR_INTERNAL), 500);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"error body: bytes that are not UTF-8 become U+FFFD", test_error_body_utf8},
        {"error body: a message cut inside a character", test_error_body_cut_message},
        {"percent-decoding yields UTF-8", test_pct_decode_utf8},
        {"path and query bytes that are not UTF-8", test_call_parse_not_utf8},
        {"error codes to statuses", test_status_of},
    };
    return cu_add_tests("rest", tests, sizeof tests / sizeof tests[0]);
}
