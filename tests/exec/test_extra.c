/* test_extra.c - the "extra" kernel family run directly through its kernel
 * records (no session): Swish's alpha, its extremes and narrow float types;
 * RegexFullMatch's RE2 semantics (full match, anchors, flags, classes,
 * UTF-8, \b on empty text), its errors on bad or unsupported patterns and
 * its linear time on patterns that make backtracking engines explode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/kernel.h"
#include "pare/ir.h"

/* ---- harness ---- */

typedef struct harness {
    pare_tensor *out;
} harness;

static pare_status h_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                           pare_tensor **out, pare_error *err)
{
    harness *h = k->exec;
    assert_int_equal(i, 0);
    pare_status st = pare_tensor_new(NULL, dtype, rank, dims, out, err);
    if (st == PARE_OK) {
        if (dtype != PARE_DT_STRING && (*out)->nbytes)
            memset((*out)->data, 0xA5, (*out)->nbytes); /* unwritten elements show */
        pare_tensor_free(h->out);
        h->out = *out;
    }
    return st;
}

static pare_attr attr_float(const char *name, float v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_FLOAT;
    a.f = v;
    return a;
}

static pare_attr attr_str(const char *name, const char *v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_STRING;
    a.s.data = (char *)v;
    a.s.len = strlen(v);
    return a;
}

/* Runs op with one input and one output; *out is NULL on failure. */
static pare_status run1(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                        const pare_tensor *x, int threads, pare_tensor **out, pare_error *err)
{
    *out = NULL;
    const pare_kernel *kr = pare_kernel_find("", op, opset);
    if (!kr)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no kernel for %s-%lld", op,
                              (long long)opset);
    pare_node node = {0};
    node.op_type = (char *)op;
    node.domain = (char *)"";
    node.attrs = attrs;
    node.n_attrs = n_attrs;
    void *state = NULL;
    pare_status st = kr->init ? kr->init(&node, opset, &state, err) : PARE_OK;
    if (st) {
        if (kr->release)
            kr->release(state);
        return st;
    }
    pare_threadpool *pool = pare_threadpool_new(threads);
    assert_non_null(pool);
    harness h = {0};
    pare_kctx k = {0};
    const pare_tensor *in[] = {x};
    k.node = &node;
    k.opset = opset;
    k.in = in;
    k.n_in = 1;
    k.n_out = 1;
    k.state = state;
    k.pool = pool;
    k.alloc_out = h_alloc;
    k.exec = &h;
    st = kr->run(&k, err);
    if (kr->release)
        kr->release(state);
    pare_threadpool_free(pool);
    if (st)
        pare_tensor_free(h.out);
    else
        *out = h.out;
    return st;
}

static pare_tensor *mk1(int dtype, int64_t n, const void *data)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, dtype, 1, &n, &t, &err), PARE_OK);
    if (data && t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return t;
}

/* ---- Swish ---- */

static double swish_ref(double x, double alpha)
{
    return x / (1.0 + exp(-alpha * x));
}

static void test_swish_float(void **state)
{
    (void)state;
    float xs[] = {3.0f, 4.0f, 5.0f, -2.5f, 0.0f, -1000.0f, 1000.0f, 88.0f, -88.0f};
    int n = (int)(sizeof xs / sizeof *xs);
    pare_tensor *x = mk1(PARE_DT_FLOAT, n, xs);
    pare_tensor *y;
    pare_error err;
    /* default alpha = 1; the ONNX test's values */
    assert_int_equal(run1("Swish", 24, NULL, 0, x, 1, &y, &err), PARE_OK);
    const float *p = y->data;
    assert_float_equal(p[0], 2.857722282409668, 1e-6);
    assert_float_equal(p[1], 3.9280550479888916, 1e-6);
    assert_float_equal(p[2], 4.966536045074463, 1e-6);
    for (int i = 0; i < n; i++) {
        assert_false(isnan(p[i]));
        assert_float_equal(p[i], swish_ref(xs[i], 1.0), 1e-5 * (1 + fabs(xs[i])));
    }
    pare_tensor_free(y);

    pare_attr a = attr_float("alpha", 0.5f);
    assert_int_equal(run1("Swish", 24, &a, 1, x, 1, &y, &err), PARE_OK);
    p = y->data;
    for (int i = 0; i < n; i++)
        assert_float_equal(p[i], swish_ref(xs[i], 0.5), 1e-5 * (1 + fabs(xs[i])));
    pare_tensor_free(y);
    pare_tensor_free(x);

    /* not before opset 24 */
    assert_null(pare_kernel_find("", "Swish", 23));
}

static void test_swish_types(void **state)
{
    (void)state;
    const double xs[] = {-3.0, -0.5, 0.25, 2.0, 7.5};
    enum { N = 5 };
    pare_error err;
    pare_tensor *y;

    double d[N];
    uint16_t h[N], b[N];
    for (int i = 0; i < N; i++) {
        d[i] = xs[i];
        h[i] = pare_f32_to_f16((float)xs[i]);
        b[i] = pare_f32_to_bf16((float)xs[i]);
    }
    pare_attr a = attr_float("alpha", 2.0f);

    pare_tensor *x = mk1(PARE_DT_DOUBLE, N, d);
    assert_int_equal(run1("Swish", 24, &a, 1, x, 1, &y, &err), PARE_OK);
    assert_int_equal(y->dtype, PARE_DT_DOUBLE);
    for (int i = 0; i < N; i++)
        assert_float_equal(((double *)y->data)[i], swish_ref(xs[i], 2.0), 1e-12);
    pare_tensor_free(y);
    pare_tensor_free(x);

    x = mk1(PARE_DT_FLOAT16, N, h);
    assert_int_equal(run1("Swish", 24, &a, 1, x, 1, &y, &err), PARE_OK);
    assert_int_equal(y->dtype, PARE_DT_FLOAT16);
    for (int i = 0; i < N; i++)
        assert_float_equal(pare_f16_to_f32(((uint16_t *)y->data)[i]), swish_ref(xs[i], 2.0),
                           2e-3 * (1 + fabs(xs[i])));
    pare_tensor_free(y);
    pare_tensor_free(x);

    x = mk1(PARE_DT_BFLOAT16, N, b);
    assert_int_equal(run1("Swish", 24, &a, 1, x, 1, &y, &err), PARE_OK);
    assert_int_equal(y->dtype, PARE_DT_BFLOAT16);
    for (int i = 0; i < N; i++)
        assert_float_equal(pare_bf16_to_f32(((uint16_t *)y->data)[i]), swish_ref(xs[i], 2.0),
                           1e-2 * (1 + fabs(xs[i])));
    pare_tensor_free(y);
    pare_tensor_free(x);

    int32_t iv[N] = {0};
    x = mk1(PARE_DT_INT32, N, iv);
    assert_int_not_equal(run1("Swish", 24, NULL, 0, x, 1, &y, &err), PARE_OK);
    assert_null(y);
    pare_tensor_free(x);
}

/* A large input over many threads agrees with the formula everywhere. */
static void test_swish_parallel(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *xs = malloc(N * sizeof *xs);
    assert_non_null(xs);
    for (int i = 0; i < N; i++)
        xs[i] = (float)(i - N / 2) / 1000.0f;
    pare_tensor *x = mk1(PARE_DT_FLOAT, N, xs);
    pare_tensor *y;
    pare_error err;
    assert_int_equal(run1("Swish", 24, NULL, 0, x, 4, &y, &err), PARE_OK);
    for (int i = 0; i < N; i++)
        assert_float_equal(((float *)y->data)[i], swish_ref(xs[i], 1.0), 1e-5 * (1 + fabs(xs[i])));
    pare_tensor_free(y);
    pare_tensor_free(x);
    free(xs);
}

/* ---- RegexFullMatch ---- */

/* A string tensor of n entries; each is NUL-terminated text. */
static pare_tensor *mkstr(int64_t n, const char *const *s)
{
    pare_tensor *t = mk1(PARE_DT_STRING, n, NULL);
    pare_string *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        size_t len = strlen(s[i]);
        p[i].data = malloc(len ? len : 1);
        assert_non_null(p[i].data);
        memcpy(p[i].data, s[i], len);
        p[i].len = len;
    }
    return t;
}

/* Runs pattern over strs and compares with the expected '0'/'1' string. */
static void check_rx(const char *pattern, const char *const *strs, const char *expect)
{
    int64_t n = (int64_t)strlen(expect);
    pare_tensor *x = mkstr(n, strs);
    pare_attr a = attr_str("pattern", pattern);
    pare_tensor *y;
    pare_error err;
    if (run1("RegexFullMatch", 20, &a, 1, x, 1, &y, &err))
        fail_msg("pattern %s: %s", pattern, err.msg);
    assert_int_equal(y->dtype, PARE_DT_BOOL);
    const bool *b = y->data;
    for (int64_t i = 0; i < n; i++)
        if (b[i] != (expect[i] == '1'))
            fail_msg("pattern %s on \"%s\": got %d, expected %c", pattern, strs[i], b[i],
                     expect[i]);
    pare_tensor_free(y);
    pare_tensor_free(x);
}

#define RX(pat, expect, ...) check_rx(pat, (const char *const[]){__VA_ARGS__}, expect)

static void test_regex_basic(void **state)
{
    (void)state;
    /* the ONNX node tests */
    RX("www\\.[\\w.-]+\\.\\bcom\\b", "110", "www.google.com", "www.facebook.com",
       "www.bbc.co.uk");
    RX("(\\W|^)[\\w.\\-]{0,25}@(yahoo|gmail)\\.com(\\W|$)", "1001", "account@gmail.com",
       "account@hotmail.com", "not email", "account2@yahoo.com");
    /* full match, not search */
    RX("abc", "1000", "abc", "abcd", "xabc", "");
    RX("", "10", "", "a");
    RX("a|ab", "11", "a", "ab"); /* leftmost alternative must not stop the search */
    RX("(a|b)*c{2,3}", "110110", "cc", "abbaccc", "c", "bcc", "acc", "cccc");
    RX("x{0}y", "10", "y", "xy");
    RX("(?:ab)+?", "1101", "ab", "abab", "aba", "ababab");
    RX("[^a]", "0111", "a", "b", "\n", "-");
    RX("[]a]+", "110", "]a]", "a", "b");
    RX("[a-]+|[-z]", "111", "a-a", "-", "z");
    RX("\\d+\\s\\w+", "1010", "12 ab_9", "12\vab", "0\tx", "1 ");
    RX("[[:alpha:][:digit:]]+[[:^space:]]", "110", "ab1!", "z-", "ab ");
    RX("\\x41\\x{42}\\103\\.", "10", "ABC.", "ABCx");
    RX("a{,2}", "10", "a{,2}", "aa"); /* not a repetition: literal */
}

static void test_regex_anchors_flags(void **state)
{
    (void)state;
    /* $ is end of text only (no trailing-newline exception), ^ start of text */
    RX("a$", "10", "a", "a\n");
    RX("a\\n^b", "0", "a\nb");
    RX("(?m)a$\\n^b", "1", "a\nb");
    RX("\\Aab\\z", "1", "ab");
    /* . and newline */
    RX("a.b", "10", "axb", "a\nb");
    RX("(?s)a.b", "1", "a\nb");
    RX("(?s:a.)b.", "01", "a\nb\n", "a\nbx");
    /* case folding, scoped to the group */
    RX("(?i)hello", "111", "HeLLo", "hello", "HELLO");
    RX("(?i:ab)c", "10", "ABc", "ABC");
    RX("a(?i)b|c", "1110", "aB", "ab", "C", "A");
    RX("(?i)[a-c]+[^x]", "110", "AbCy", "cc", "ABX");
    RX("(?i-i:a)", "01", "A", "a");
    /* \b and \B: RE2 treats the empty text as a non-boundary */
    RX("\\B", "10", "", "a");
    RX("\\b", "0", "");
    RX("a\\b.", "10", "a-", "ab");
    RX("a\\B.", "01", "a-", "ab");
    /* named and non-capturing groups */
    RX("(?P<year>\\d{4})-(?<m>\\d\\d)", "10", "2024-05", "24-05");
}

static void test_regex_utf8(void **state)
{
    (void)state;
    /* . is one code point; \w and \d are ASCII only */
    RX("a.b", "110", "a\xc3\xa9" "b", "a\xe2\x82\xac" "b", "a\xc3\xa9\xc3\xa9" "b");
    RX("\\w+", "01", "caf\xc3\xa9", "cafe");
    RX("\\W", "1", "\xc3\xa9");
    RX("[\\x{e9}-\\x{ff}]x", "10", "\xc3\xa9x", "ex");
    RX("\xc3\xa9+", "10", "\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3");
    /* an invalid byte is one unit that only . and negations match */
    RX(".a", "1", "\xff" "a");
    RX("[^x]a", "1", "\x80" "a");
    RX("\\xffa", "0", "\xff" "a");
}

static void check_bad(const char *pattern, pare_status expect)
{
    pare_attr a = attr_str("pattern", pattern);
    const char *s[] = {"a"};
    pare_tensor *x = mkstr(1, s);
    pare_tensor *y;
    pare_error err;
    pare_status st = run1("RegexFullMatch", 20, &a, 1, x, 1, &y, &err);
    if (st != expect)
        fail_msg("pattern %s: status %d (%s), expected %d", pattern, st,
                 st ? err.msg : "ok", expect);
    assert_null(y);
    pare_tensor_free(x);
}

static void test_regex_errors(void **state)
{
    (void)state;
    check_bad("(", PARE_ERR_INVALID);
    check_bad("a)", PARE_ERR_INVALID);
    check_bad("*a", PARE_ERR_INVALID);
    check_bad("a**", PARE_ERR_INVALID);
    check_bad("a{2}{3}", PARE_ERR_INVALID);
    check_bad("{2}", PARE_ERR_INVALID);
    check_bad("[z-a]", PARE_ERR_INVALID);
    check_bad("[a", PARE_ERR_INVALID);
    check_bad("[a-\\d]", PARE_ERR_INVALID);
    check_bad("[[:nope:]]", PARE_ERR_INVALID);
    check_bad("a\\", PARE_ERR_INVALID);
    check_bad("\\q", PARE_ERR_INVALID);
    check_bad("\\xg0", PARE_ERR_INVALID);
    check_bad("\\x{110000}", PARE_ERR_INVALID);
    check_bad("(?z)", PARE_ERR_INVALID);
    check_bad("(?i)*", PARE_ERR_INVALID);
    check_bad("(?P<>a)", PARE_ERR_INVALID);
    check_bad("a{1001}", PARE_ERR_INVALID);
    check_bad("a{3,2}", PARE_ERR_INVALID);
    check_bad("\xff", PARE_ERR_INVALID);
    check_bad("(a)\\1", PARE_ERR_UNSUPPORTED);
    check_bad("\\p{L}", PARE_ERR_UNSUPPORTED);
    check_bad("\\Qa\\E", PARE_ERR_UNSUPPORTED);
    /* limits: program size and nesting depth */
    check_bad("((a{1000}){1000}){1000}", PARE_ERR_LIMIT);
    char deep[1201];
    memset(deep, '(', 600);
    memset(deep + 600, ')', 600);
    deep[1200] = 0;
    check_bad(deep, PARE_ERR_LIMIT);

    /* the input must be strings */
    pare_attr a = attr_str("pattern", "a");
    float f = 1.0f;
    pare_tensor *x = mk1(PARE_DT_FLOAT, 1, &f);
    pare_tensor *y;
    pare_error err;
    assert_int_equal(run1("RegexFullMatch", 20, &a, 1, x, 1, &y, &err), PARE_ERR_INVALID);
    pare_tensor_free(x);
}

/* Patterns that take exponential time in a backtracking matcher. */
static void test_regex_linear(void **state)
{
    (void)state;
    enum { N = 20000 };
    char *s = malloc(N + 2);
    assert_non_null(s);
    memset(s, 'a', N);
    s[N] = 0;
    clock_t t0 = clock();
    RX("(a*)*b", "0", s);
    RX("(a|aa)+$", "1", s);
    s[N] = '!';
    s[N + 1] = 0;
    RX("(a|a)*(a|a)*", "0", s);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 10.0);
    free(s);
}

/* Many strings over several threads, with empty and multi-dimensional input. */
static void test_regex_parallel(void **state)
{
    (void)state;
    enum { N = 5000 };
    int64_t n = N;
    pare_tensor *x = mk1(PARE_DT_STRING, n, NULL);
    pare_string *p = x->data;
    for (int i = 0; i < N; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%d", i);
        p[i].data = malloc((size_t)len);
        assert_non_null(p[i].data);
        memcpy(p[i].data, buf, (size_t)len);
        p[i].len = (size_t)len;
    }
    pare_attr a = attr_str("pattern", "[1-9]\\d*7");
    pare_tensor *y;
    pare_error err;
    assert_int_equal(run1("RegexFullMatch", 20, &a, 1, x, 4, &y, &err), PARE_OK);
    const bool *b = y->data;
    for (int i = 0; i < N; i++)
        assert_int_equal(b[i], i >= 10 && i % 10 == 7);
    pare_tensor_free(y);
    pare_tensor_free(x);

    int64_t dims[] = {2, 0};
    assert_int_equal(pare_tensor_new(NULL, PARE_DT_STRING, 2, dims, &x, &err), PARE_OK);
    assert_int_equal(run1("RegexFullMatch", 20, &a, 1, x, 4, &y, &err), PARE_OK);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 0);
    pare_tensor_free(y);
    pare_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swish_float),
        cmocka_unit_test(test_swish_types),
        cmocka_unit_test(test_swish_parallel),
        cmocka_unit_test(test_regex_basic),
        cmocka_unit_test(test_regex_anchors_flags),
        cmocka_unit_test(test_regex_utf8),
        cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_regex_linear),
        cmocka_unit_test(test_regex_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
