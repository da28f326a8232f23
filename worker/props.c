/* props: java.util.Properties.load for C. See props.h for the rules.
 *
 * Parsing runs in two steps, as Java's does: a reader joins natural lines into one logical
 * line (dropping comments, blank lines and continuation backslashes, but keeping every other
 * escape as written), then the logical line is split into key and value on the raw text and
 * each half is unescaped. Splitting before unescaping is what makes "a\=b=c" a key "a=b".
 *
 * To name the right line in an error, the logical line remembers the offsets at which each
 * continuation line starts; every continuation consumes exactly one line terminator, so the
 * line of an offset is the first line plus the number of continuations before it.
 *
 * The list is two parallel arrays searched linearly: worker files hold tens of keys, and
 * keeping the order of first appearance matters more than lookup speed. */
#include "worker/props.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct props {
    char **keys;
    char **vals;
    size_t n, cap;
};

/* ---- memory ---- */

static void *xrealloc(void *ptr, size_t size)
{
    void *r = realloc(ptr, size ? size : 1);
    if (!r)
        abort();
    return r;
}

static char *xstrndup(const char *s, size_t n)
{
    char *r = xrealloc(NULL, n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

/* ---- the list ---- */

props_t *props_new(void)
{
    props_t *p = xrealloc(NULL, sizeof *p);
    memset(p, 0, sizeof *p);
    return p;
}

void props_destroy(props_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    free(p);
}

static ssize_t props_find(const props_t *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

/* Takes ownership of key and value. */
static void props_put_owned(props_t *p, char *key, char *value)
{
    ssize_t i = props_find(p, key);
    if (i >= 0) {
        free(key);
        free(p->vals[i]);
        p->vals[i] = value;
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->keys = xrealloc(p->keys, p->cap * sizeof *p->keys);
        p->vals = xrealloc(p->vals, p->cap * sizeof *p->vals);
    }
    p->keys[p->n] = key;
    p->vals[p->n] = value;
    p->n++;
}

void props_set(props_t *p, const char *key, const char *value)
{
    props_put_owned(p, xstrndup(key, strlen(key)), xstrndup(value, strlen(value)));
}

const char *props_get(const props_t *p, const char *key)
{
    ssize_t i = props_find(p, key);
    return i >= 0 ? p->vals[i] : NULL;
}

size_t props_count(const props_t *p)
{
    return p->n;
}

const char *props_key(const props_t *p, size_t i)
{
    return i < p->n ? p->keys[i] : NULL;
}

const char *props_value(const props_t *p, size_t i)
{
    return i < p->n ? p->vals[i] : NULL;
}

/* ---- reading logical lines ---- */

typedef struct {
    const char *buf;
    size_t len, pos;
    unsigned line; /* 1-based line of buf[pos] */
} rd_t;

typedef struct {
    char *s;
    size_t len, cap;
    unsigned first_line;
    size_t *brk; /* offsets in s where continuation lines start */
    size_t nbrk, brkcap;
} lline_t;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

static int is_eol(char c)
{
    return c == '\n' || c == '\r';
}

/* Consumes one LF, CR or CRLF at r->pos. */
static void rd_skip_eol(rd_t *r)
{
    if (r->buf[r->pos++] == '\r' && r->pos < r->len && r->buf[r->pos] == '\n')
        r->pos++;
    r->line++;
}

/* Skips whitespace, blank lines and comment lines. @returns 0 at EOF. */
static int rd_skip_to_content(rd_t *r)
{
    while (r->pos < r->len) {
        char c = r->buf[r->pos];
        if (is_eol(c)) {
            rd_skip_eol(r);
        } else if (is_ws(c)) {
            r->pos++;
        } else if (c == '#' || c == '!') {
            while (r->pos < r->len && !is_eol(r->buf[r->pos]))
                r->pos++;
        } else {
            return 1;
        }
    }
    return 0;
}

static void lline_append(lline_t *ll, const char *s, size_t n)
{
    if (ll->len + n + 1 > ll->cap) {
        ll->cap = (ll->len + n + 1) * 2;
        ll->s = xrealloc(ll->s, ll->cap);
    }
    memcpy(ll->s + ll->len, s, n);
    ll->len += n;
}

static void lline_mark_continuation(lline_t *ll)
{
    if (ll->nbrk == ll->brkcap) {
        ll->brkcap = ll->brkcap ? ll->brkcap * 2 : 8;
        ll->brk = xrealloc(ll->brk, ll->brkcap * sizeof *ll->brk);
    }
    ll->brk[ll->nbrk++] = ll->len;
}

static unsigned lline_line_of(const lline_t *ll, size_t off)
{
    unsigned line = ll->first_line;
    for (size_t i = 0; i < ll->nbrk && ll->brk[i] <= off; i++)
        line++;
    return line;
}

/*
 * Reads the next logical line into @p ll. @returns 1 if there is one, 0 at EOF.
 *
 * The end-of-input cases copy Java's LineReader (JDK 9 and later), including a quirk: a line
 * holding only a backslash is an entry with an empty key when its terminator is the last
 * byte of the input, and nothing otherwise (Java looks for EOF after the first character of
 * the terminator, so such a last line ending in LF and one ending in CRLF differ).
 */
static int rd_logical_line(rd_t *r, lline_t *ll)
{
restart:
    ll->len = 0;
    ll->nbrk = 0;
    if (!rd_skip_to_content(r))
        return 0;
    ll->first_line = r->line;
    for (;;) {
        size_t start = r->pos;
        while (r->pos < r->len && !is_eol(r->buf[r->pos]))
            r->pos++;
        lline_append(ll, r->buf + start, r->pos - start);
        size_t run = 0;
        while (run < r->pos - start && r->buf[r->pos - 1 - run] == '\\')
            run++;
        int continued = run % 2 == 1;
        if (continued)
            ll->len--;
        if (r->pos >= r->len)
            return 1;
        if (r->pos + 1 == r->len) {
            rd_skip_eol(r);
            return 1;
        }
        rd_skip_eol(r);
        if (!continued)
            return 1;
        while (r->pos < r->len && is_ws(r->buf[r->pos]))
            r->pos++;
        /* Nothing but a backslash so far: Java is still at the start of a logical line,
         * so blank lines and comments are skipped as usual. */
        if (ll->len == 0)
            goto restart;
        /* A blank continuation line, or the end of input, ends the logical line. */
        if (r->pos >= r->len || is_eol(r->buf[r->pos]))
            return 1;
        lline_mark_continuation(ll);
    }
}

/* ---- unescaping ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s[i..i+3]. @returns the value or -1. */
static long hex4(const char *s, size_t i, size_t end)
{
    if (end < i + 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the \uXXXX whose 'u' is at s[*i], joining a following low-surrogate escape to a
 * high surrogate; an unpaired surrogate becomes U+FFFD. Leaves *i on the last digit used.
 * @returns 0 if the four hex digits are not there.
 */
static int decode_u(const char *s, size_t *i, size_t end, uint32_t *cp)
{
    long hi = hex4(s, *i + 1, end);
    if (hi < 0)
        return 0;
    *i += 4;
    *cp = (uint32_t)hi;
    if (hi >= 0xD800 && hi <= 0xDBFF && *i + 2 < end && s[*i + 1] == '\\' && s[*i + 2] == 'u') {
        long lo = hex4(s, *i + 3, end);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            *i += 6;
        }
    }
    if (*cp >= 0xD800 && *cp <= 0xDFFF)
        *cp = 0xFFFD;
    return 1;
}

/*
 * Unescapes ll->s[off, off+n) into a new string (*out). Output is never longer than input:
 * 6 bytes of \uXXXX make at most 3 bytes, 12 bytes of a surrogate pair make 4.
 */
static ferr_code_t unescape(const lline_t *ll, size_t off, size_t n, char **out, ferr_t *err)
{
    const char *s = ll->s, *why;
    size_t end = off + n, o = 0, where;
    char *d = xrealloc(NULL, n + 1);
    for (size_t i = off; i < end; i++) {
        char c = s[i];
        where = i;
        if (c == '\\') {
            if (++i >= end) /* unreachable: a trailing odd backslash is a continuation */
                break;
            c = s[i];
            if (c == 'u') {
                uint32_t cp;
                why = "malformed \\uxxxx encoding";
                if (!decode_u(s, &i, end, &cp))
                    goto fail;
                why = "\\u0000 is not supported";
                if (cp == 0)
                    goto fail;
                o += utf8_put(d + o, cp);
                continue;
            }
            c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
        }
        why = "NUL character is not supported";
        if (c == '\0')
            goto fail;
        d[o++] = c;
    }
    d[o] = '\0';
    *out = d;
    return FERR_OK;
fail:
    free(d);
    return ferr_set(err, FERR_INVALID, "line %u: %s", lline_line_of(ll, where), why);
}

/* ---- splitting a logical line ---- */

static ferr_code_t props_put_line(props_t *p, const lline_t *ll, ferr_t *err)
{
    const char *s = ll->s;
    size_t n = ll->len, klen = 0, vstart = n;
    int has_sep = 0, escaped = 0;
    for (; klen < n; klen++) {
        char c = s[klen];
        if (!escaped && (c == '=' || c == ':')) {
            vstart = klen + 1;
            has_sep = 1;
            break;
        }
        if (!escaped && is_ws(c)) {
            vstart = klen + 1;
            break;
        }
        escaped = c == '\\' ? !escaped : 0;
    }
    for (; vstart < n; vstart++) {
        char c = s[vstart];
        if (is_ws(c))
            continue;
        if (!has_sep && (c == '=' || c == ':')) {
            has_sep = 1;
            continue;
        }
        break;
    }
    char *key, *value;
    ferr_code_t rc = unescape(ll, 0, klen, &key, err);
    if (rc)
        return rc;
    rc = unescape(ll, vstart, n - vstart, &value, err);
    if (rc) {
        free(key);
        return rc;
    }
    props_put_owned(p, key, value);
    return FERR_OK;
}

ferr_code_t props_parse(props_t *p, const char *buf, size_t len, ferr_t *err)
{
    rd_t r = {.buf = buf, .len = len, .pos = 0, .line = 1};
    lline_t ll = {0};
    ferr_code_t rc = FERR_OK;
    while (rc == FERR_OK && rd_logical_line(&r, &ll))
        rc = props_put_line(p, &ll, err);
    free(ll.s);
    free(ll.brk);
    return rc;
}

ferr_code_t props_load_file(props_t *p, const char *path, ferr_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ferr_set(err, FERR_INVALID, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) {
        free(buf);
        return ferr_set(err, FERR_INVALID, "%s: %s", path, strerror(saved ? saved : EIO));
    }
    ferr_t perr;
    ferr_code_t rc = props_parse(p, buf, len, &perr);
    free(buf);
    if (rc)
        return ferr_set(err, rc, "%s: %s", path, perr.msg);
    return FERR_OK;
}
