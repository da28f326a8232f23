/* props_test: the java.util.Properties.load syntax, rule by rule, including the examples
 * from the Properties.load javadoc, so that a config file Kafka Connect accepts means the
 * same thing to ferry. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/props.h"

/* Parses a string literal (embedded NULs allowed) and expects success. */
#define PARSE_LIT(lit) parse_ok((lit), sizeof(lit) - 1)

static props_t *parse_ok(const char *buf, size_t len)
{
    props_t *p = props_new();
    ferr_t err = {0};
    ferr_code_t rc = props_parse(p, buf, len, &err);
    CU_ASSERT_EQUAL(rc, FERR_OK);
    if (rc)
        fprintf(stderr, "unexpected parse error: %s\n", err.msg);
    return p;
}

/* Parses and expects FERR_INVALID with exactly @p msg. */
static void parse_fails(const char *buf, size_t len, const char *msg)
{
    props_t *p = props_new();
    ferr_t err = {0};
    CU_ASSERT_EQUAL(props_parse(p, buf, len, &err), FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, msg);
    props_destroy(p);
}

#define PARSE_FAILS(lit, msg) parse_fails((lit), sizeof(lit) - 1, (msg))

/* The single value of a one-entry input. */
static void expect_one(const char *buf, const char *key, const char *value)
{
    props_t *p = parse_ok(buf, strlen(buf));
    CU_ASSERT_EQUAL(props_count(p), 1);
    if (props_count(p) == 1) {
        CU_ASSERT_STRING_EQUAL(props_key(p, 0), key);
        CU_ASSERT_STRING_EQUAL(props_value(p, 0), value);
    }
    props_destroy(p);
}

static void test_separators(void)
{
    /* The three lines of the javadoc, each giving Truth -> Beauty. */
    expect_one("Truth = Beauty\n", "Truth", "Beauty");
    expect_one("  Truth:Beauty\n", "Truth", "Beauty");
    expect_one("Truth\t\t\t:Beauty\n", "Truth", "Beauty");
    expect_one("Truth                    :Beauty", "Truth", "Beauty");
    expect_one("Truth Beauty", "Truth", "Beauty");
    expect_one("Truth\fBeauty", "Truth", "Beauty");
    expect_one("Truth=Beauty", "Truth", "Beauty");
    expect_one("Truth\t=\tBeauty", "Truth", "Beauty");
    /* Only the first separator counts; a second one belongs to the value. */
    expect_one("a  =  =b", "a", "=b");
    expect_one("a:=b", "a", "=b");
    expect_one("a=:b", "a", ":b");
    expect_one("a b=c", "a", "b=c");
    expect_one("a = b = c", "a", "b = c");
    expect_one("a  b c", "a", "b c");
    expect_one("url=http://h:8083/x", "url", "http://h:8083/x");
    /* Trailing whitespace of a value is kept, as in Java. */
    expect_one("a = b  \t", "a", "b  \t");
}

static void test_empty_keys_and_values(void)
{
    /* javadoc: "cheeses" alone is the key cheeses with the empty string as value. */
    expect_one("cheeses\n", "cheeses", "");
    expect_one("cheeses", "cheeses", "");
    expect_one("cheeses   ", "cheeses", "");
    expect_one("cheeses=", "cheeses", "");
    expect_one("cheeses :  ", "cheeses", "");
    expect_one("=v", "", "v");
    expect_one(":v", "", "v");
    expect_one("  = v", "", "v");
    expect_one("=", "", "");
}

static void test_fruits_continuation(void)
{
    props_t *p = PARSE_LIT("fruits                           apple, banana, pear, \\\n"
                           "                                  cantaloupe, watermelon, \\\n"
                           "                                  kiwi, mango\n"
                           "next=1\n");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "fruits"),
                           "apple, banana, pear, cantaloupe, watermelon, kiwi, mango");
    CU_ASSERT_STRING_EQUAL(props_get(p, "next"), "1");
    props_destroy(p);

    /* A continuation can split a key, and the separator can sit on the next line. */
    expect_one("ke\\\n   y\\\n   = v", "key", "v");
    /* Only leading whitespace of the continuation line goes; trailing whitespace before
     * the backslash stays. */
    expect_one("a=x  \\\n   y", "a", "x  y");
}

static void test_comments(void)
{
    props_t *p = PARSE_LIT("# a=1\n"
                           "! b=2\n"
                           "   # c=3\n"
                           "\t! d=4\n"
                           "#\n"
                           "x=1\n"
                           "y=not # a comment\n"
                           "z=not ! a comment either\n");
    CU_ASSERT_EQUAL(props_count(p), 3);
    CU_ASSERT_PTR_NULL(props_get(p, "a"));
    CU_ASSERT_PTR_NULL(props_get(p, "#"));
    CU_ASSERT_STRING_EQUAL(props_get(p, "x"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "y"), "not # a comment");
    CU_ASSERT_STRING_EQUAL(props_get(p, "z"), "not ! a comment either");
    props_destroy(p);

    /* A comment line never continues, however many backslashes it ends with. */
    p = PARSE_LIT("# comment \\\nx=1\n! another \\\ny=2");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "x"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "y"), "2");
    props_destroy(p);

    /* '#' at the start of a continuation line is data, not a comment. */
    expect_one("a=b\\\n  #c", "a", "b#c");
    /* An escaped '#' or '!' starts a key. */
    expect_one("\\#k=v", "#k", "v");
    expect_one("\\!k=v", "!k", "v");
    /* A comment at the end of input without a newline. */
    p = PARSE_LIT("x=1\n# last");
    CU_ASSERT_EQUAL(props_count(p), 1);
    props_destroy(p);
}

static void test_blank_lines_and_whitespace(void)
{
    props_t *p = PARSE_LIT("\n\n   \n\t\f\na=1\n\n  b = 2\n   \n");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    props_destroy(p);

    p = PARSE_LIT("");
    CU_ASSERT_EQUAL(props_count(p), 0);
    props_destroy(p);
    p = PARSE_LIT("   \n# only comments\n");
    CU_ASSERT_EQUAL(props_count(p), 0);
    props_destroy(p);
}

static void test_escapes(void)
{
    expect_one("k=a\\tb\\nc\\rd\\fe", "k", "a\tb\nc\rd\fe");
    expect_one("k=back\\\\slash", "k", "back\\slash");
    /* A backslash before any other character is that character. */
    expect_one("k=\\q\\z\\\"", "k", "qz\"");
    expect_one("k=\\=\\:\\#\\!", "k", "=:#!");
    /* Escaped separators are part of the key. */
    expect_one("a\\=b\\:c\\ d=v", "a=b:c d", "v");
    expect_one("key\\ with\\ spaces = value", "key with spaces", "value");
    expect_one("k\\\tey:v", "k\tey", "v");
    /* An escaped space keeps leading whitespace in a value. */
    expect_one("k=\\  v", "k", "  v");
    /* Escapes in the key do not move the separator: \t is two raw characters. */
    expect_one("a\\tb=c", "a\tb", "c");
    /* An escaped backslash before a separator does not escape it. */
    expect_one("a\\\\=b", "a\\", "b");
}

static void test_unicode_escapes(void)
{
    expect_one("k=caf\\u00e9", "k", "caf\xc3\xa9");
    expect_one("k=caf\\u00E9", "k", "caf\xc3\xa9");
    expect_one("k=\\u0041\\u007a", "k", "Az");
    expect_one("k=\\u20ac", "k", "\xe2\x82\xac");
    expect_one("\\u00e9t\\u00e9=summer", "\xc3\xa9t\xc3\xa9", "summer");
    /* \u003d is '=' but, being escaped, it is not a separator. */
    expect_one("a\\u003db=c", "a=b", "c");
    /* A surrogate pair is one code point (U+1F600), written as 4 UTF-8 bytes. */
    expect_one("k=\\ud83d\\ude00!", "k", "\xf0\x9f\x98\x80!");
    expect_one("k=\\uD83D\\uDE00", "k", "\xf0\x9f\x98\x80");
    /* Unpaired surrogates become U+FFFD. */
    expect_one("k=\\ud83dx", "k", "\xef\xbf\xbdx");
    expect_one("k=\\ude00", "k", "\xef\xbf\xbd");
    expect_one("k=\\ud83d\\u0041", "k", "\xef\xbf\xbd" "A");
    /* Raw UTF-8 bytes pass through unchanged. */
    expect_one("k=\xc3\xa9t\xc3\xa9", "k", "\xc3\xa9t\xc3\xa9");
}

static void test_malformed_unicode(void)
{
    PARSE_FAILS("k=\\u00g1", "line 1: malformed \\uxxxx encoding");
    PARSE_FAILS("a=1\n\n# c\nk=\\u12", "line 4: malformed \\uxxxx encoding");
    PARSE_FAILS("a=1\nk=\\u12\nb=2", "line 2: malformed \\uxxxx encoding");
    PARSE_FAILS("k\\uzzzz=v", "line 1: malformed \\uxxxx encoding");
    PARSE_FAILS("k=\\u", "line 1: malformed \\uxxxx encoding");
    /* The value ends at the end of the logical line: digits cannot come from the next one. */
    PARSE_FAILS("k=\\u00\n e9", "line 1: malformed \\uxxxx encoding");
    /* On a continuation line, the line of the escape is reported, not the first line. */
    PARSE_FAILS("a=1\r\nb=x\\\r\n  y\\\r\n  \\u12zz", "line 4: malformed \\uxxxx encoding");
    PARSE_FAILS("a=1\rb=x\\\r  \\u12zz", "line 3: malformed \\uxxxx encoding");
    /* A pair's low half that is malformed is still an error. */
    PARSE_FAILS("k=\\ud83d\\ude0", "line 1: malformed \\uxxxx encoding");
    /* Values are C strings, so NUL cannot be represented. */
    PARSE_FAILS("k=a\\u0000b", "line 1: \\u0000 is not supported");
    PARSE_FAILS("x=1\nk=a\0b", "line 2: NUL character is not supported");

    /* Entries before the bad line are kept. */
    props_t *p = props_new();
    ferr_t err;
    CU_ASSERT_EQUAL(props_parse(p, "a=1\nb=\\uq\nc=3", 13, &err), FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    CU_ASSERT_PTR_NULL(props_get(p, "c"));
    /* err may be NULL */
    CU_ASSERT_EQUAL(props_parse(p, "b=\\uq", 5, NULL), FERR_INVALID);
    props_destroy(p);

    /* A continuation splitting an escape is joined before unescaping, as in Java. */
    expect_one("k=\\u00\\\n   e9", "k", "\xc3\xa9");
}

static void test_trailing_backslashes(void)
{
    /* Even: escaped backslashes, no continuation. */
    props_t *p = PARSE_LIT("a=x\\\\\nb=y\n");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "x\\");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "y");
    props_destroy(p);

    p = PARSE_LIT("a=x\\\\\\\\\nb=y\n");
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "x\\\\");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "y");
    props_destroy(p);

    /* Odd: an escaped backslash plus a continuation. */
    p = PARSE_LIT("a=x\\\\\\\n  b=y\n");
    CU_ASSERT_EQUAL(props_count(p), 1);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "x\\b=y");
    CU_ASSERT_PTR_NULL(props_get(p, "b"));
    props_destroy(p);

    /* A blank line after a continuation ends the logical line. */
    p = PARSE_LIT("a=1\\\n\nb=2\n");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    props_destroy(p);
    p = PARSE_LIT("a=1\\\n   \t\nb=2\n");
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    props_destroy(p);

    /* A line holding only a backslash leaves Java at the start of a logical line, so a
     * blank line or comment after it is skipped and the line yields nothing... */
    p = PARSE_LIT("\\\n\nb=2\n");
    CU_ASSERT_EQUAL(props_count(p), 1);
    CU_ASSERT_PTR_NULL(props_get(p, ""));
    props_destroy(p);
    p = PARSE_LIT("  \\\n  # comment\nb=2\n");
    CU_ASSERT_EQUAL(props_count(p), 1);
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    props_destroy(p);
    /* ...except at the very end, where JDK 17 yields the empty key if the terminator is a
     * single character, and nothing after CRLF. */
    expect_one("\\", "", "");
    expect_one("# c\n\\\n", "", "");
    p = PARSE_LIT("\\\r\n");
    CU_ASSERT_EQUAL(props_count(p), 0);
    props_destroy(p);
    /* With an escaped backslash before the continuation the line has content, so '!' on
     * the continuation line is data. */
    expect_one("\\\\\\\n!x=1\n", "\\!x", "1");
}

static void test_end_of_input(void)
{
    /* A final line without a newline. */
    props_t *p = PARSE_LIT("a=1\nb=2");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    props_destroy(p);

    /* A continuation at EOF: the backslash is dropped. */
    expect_one("a=1\\", "a", "1");
    expect_one("a=1\\\n", "a", "1");
    expect_one("a=1\\\r\n", "a", "1");
    expect_one("a=1\\\n    ", "a", "1");
    expect_one("a=1\\\\", "a", "1\\");

    /* The length is honoured: the buffer need not end in NUL. */
    const char buf[] = "a=1\nb=2\nc=3";
    p = parse_ok(buf, 6);
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "");
    props_destroy(p);
    p = parse_ok(buf, 7);
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    CU_ASSERT_PTR_NULL(props_get(p, "c"));
    props_destroy(p);
}

static void test_line_endings(void)
{
    props_t *p = PARSE_LIT("a=1\r\nb=2\rc=3\r\n\r\nd=4\n\re=5");
    CU_ASSERT_EQUAL(props_count(p), 5);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    CU_ASSERT_STRING_EQUAL(props_get(p, "b"), "2");
    CU_ASSERT_STRING_EQUAL(props_get(p, "c"), "3");
    CU_ASSERT_STRING_EQUAL(props_get(p, "d"), "4");
    CU_ASSERT_STRING_EQUAL(props_get(p, "e"), "5");
    props_destroy(p);

    /* Continuations across CRLF and CR; the LF of a CRLF is not a blank line. */
    expect_one("a=1\\\r\n   2\\\r   3", "a", "123");
    p = PARSE_LIT("# c\r\na=1\r\n");
    CU_ASSERT_EQUAL(props_count(p), 1);
    CU_ASSERT_STRING_EQUAL(props_get(p, "a"), "1");
    props_destroy(p);
}

static void test_duplicates_and_order(void)
{
    props_t *p = PARSE_LIT("a=1\nb=2\nc=3\na=4\nb=5\n");
    CU_ASSERT_EQUAL(props_count(p), 3);
    CU_ASSERT_STRING_EQUAL(props_key(p, 0), "a");
    CU_ASSERT_STRING_EQUAL(props_value(p, 0), "4");
    CU_ASSERT_STRING_EQUAL(props_key(p, 1), "b");
    CU_ASSERT_STRING_EQUAL(props_value(p, 1), "5");
    CU_ASSERT_STRING_EQUAL(props_key(p, 2), "c");
    CU_ASSERT_STRING_EQUAL(props_value(p, 2), "3");
    CU_ASSERT_PTR_NULL(props_key(p, 3));

    /* A second parse into the same list merges, later values winning. */
    CU_ASSERT_EQUAL(props_parse(p, "c=9\nd=10", 8, NULL), FERR_OK);
    CU_ASSERT_EQUAL(props_count(p), 4);
    CU_ASSERT_STRING_EQUAL(props_get(p, "c"), "9");
    CU_ASSERT_STRING_EQUAL(props_key(p, 3), "d");
    props_destroy(p);
}

static void test_set_get(void)
{
    props_t *p = props_new();
    CU_ASSERT_EQUAL(props_count(p), 0);
    CU_ASSERT_PTR_NULL(props_get(p, "x"));
    char key[8] = "x", val[8] = "1";
    props_set(p, key, val);
    key[0] = 'y';
    val[0] = '2';
    CU_ASSERT_STRING_EQUAL(props_get(p, "x"), "1"); /* copied */
    props_set(p, "y", "2");
    props_set(p, "x", "3");
    CU_ASSERT_EQUAL(props_count(p), 2);
    CU_ASSERT_STRING_EQUAL(props_key(p, 0), "x");
    CU_ASSERT_STRING_EQUAL(props_value(p, 0), "3");
    props_set(p, "", "");
    CU_ASSERT_STRING_EQUAL(props_get(p, ""), "");
    /* Many entries, to grow the arrays. */
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        props_set(p, k, k);
    }
    CU_ASSERT_EQUAL(props_count(p), 103);
    CU_ASSERT_STRING_EQUAL(props_get(p, "k99"), "k99");
    props_destroy(p);
    props_destroy(NULL);
}

static void test_load_file(void)
{
    char path[] = "/tmp/props_testXXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char text[] = "# worker\r\ngroup.id = connect-cluster\r\nlisteners=http://:8083\r\n"
                        "fruits apple, \\\r\n   pear\r\n";
    CU_ASSERT_EQUAL(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);

    props_t *p = props_new();
    ferr_t err = {0};
    CU_ASSERT_EQUAL(props_load_file(p, path, &err), FERR_OK);
    CU_ASSERT_EQUAL(props_count(p), 3);
    CU_ASSERT_STRING_EQUAL(props_get(p, "group.id"), "connect-cluster");
    CU_ASSERT_STRING_EQUAL(props_get(p, "listeners"), "http://:8083");
    CU_ASSERT_STRING_EQUAL(props_get(p, "fruits"), "apple, pear");
    props_destroy(p);

    /* A syntax error names the file and the line. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("a=1\nb=\\u12\n", f);
    fclose(f);
    p = props_new();
    CU_ASSERT_EQUAL(props_load_file(p, path, &err), FERR_INVALID);
    char want[256];
    snprintf(want, sizeof want, "%s: line 2: malformed \\uxxxx encoding", path);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    props_destroy(p);
    unlink(path);

    /* An I/O error names the file and the reason. */
    p = props_new();
    CU_ASSERT_EQUAL(props_load_file(p, "/nonexistent/worker.properties", &err), FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "/nonexistent/worker.properties: No such file or directory");
    CU_ASSERT_EQUAL(props_load_file(p, "/tmp", &err), FERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "/tmp: Is a directory");
    CU_ASSERT_EQUAL(props_count(p), 0);
    props_destroy(p);

    /* A large file, to exercise the read loop. */
    char bigpath[] = "/tmp/props_testXXXXXX";
    fd = mkstemp(bigpath);
    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    for (int i = 0; i < 5000; i++)
        fprintf(f, "key.%d = value number %d\n", i, i);
    fclose(f);
    p = props_new();
    CU_ASSERT_EQUAL(props_load_file(p, bigpath, &err), FERR_OK);
    CU_ASSERT_EQUAL(props_count(p), 5000);
    CU_ASSERT_STRING_EQUAL(props_get(p, "key.4999"), "value number 4999");
    props_destroy(p);
    unlink(bigpath);
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"separators", test_separators},
        {"empty keys and values", test_empty_keys_and_values},
        {"fruits continuation", test_fruits_continuation},
        {"comments", test_comments},
        {"blank lines and whitespace", test_blank_lines_and_whitespace},
        {"escapes", test_escapes},
        {"unicode escapes", test_unicode_escapes},
        {"malformed unicode", test_malformed_unicode},
        {"trailing backslashes", test_trailing_backslashes},
        {"end of input", test_end_of_input},
        {"line endings", test_line_endings},
        {"duplicates and order", test_duplicates_and_order},
        {"set and get", test_set_get},
        {"load file", test_load_file},
    };
    return cu_add_tests("props", tests, sizeof tests / sizeof tests[0]);
}
