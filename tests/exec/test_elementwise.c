/* test_elementwise.c - the elementwise kernel family run directly through its
 * kernel records (no session): integer Div/Mod/Pow semantics, division by
 * zero, broadcasting (including the parallel path and opset < 7 axis
 * alignment), Clip's bounds, Round, Softmax's opset-dependent axis, Cast
 * with strings, Where with strings, variadic ops and misaligned inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    pare_status st = pare_tensor_new(NULL, dtype, rank, dims, out, err);
    if (st == PARE_OK && i == 0)
        h->out = *out;
    return st;
}

static pare_attr attr_int(const char *name, int64_t v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INT;
    a.i = v;
    return a;
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

/* Runs op at opset on the inputs with a pool of `threads`; *out is the first
 * output (caller frees) or NULL on failure. */
static pare_status run_op(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                          const pare_tensor *const *in, size_t n_in, int threads,
                          pare_tensor **out, pare_error *err)
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
    if (st)
        return st;
    pare_threadpool *pool = pare_threadpool_new(threads);
    assert_non_null(pool);
    harness h = {0};
    pare_kctx k = {0};
    k.node = &node;
    k.opset = opset;
    k.in = in;
    k.n_in = n_in;
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

static pare_tensor *mk(int dtype, int rank, const int64_t *dims, const void *data)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, dtype, rank, dims, &t, &err), PARE_OK);
    if (data && t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return t;
}

static pare_tensor *mk1(int dtype, int64_t n, const void *data)
{
    return mk(dtype, 1, &n, data);
}

/* runs a binary op and checks it succeeded */
static pare_tensor *bin(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                        pare_tensor *a, pare_tensor *b)
{
    const pare_tensor *in[2] = {a, b};
    pare_tensor *out;
    pare_error err;
    pare_status st = run_op(op, opset, attrs, n_attrs, in, 2, 1, &out, &err);
    if (st)
        fail_msg("%s failed: %s", op, err.msg);
    return out;
}

static pare_tensor *un(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                       pare_tensor *a)
{
    const pare_tensor *in[1] = {a};
    pare_tensor *out;
    pare_error err;
    pare_status st = run_op(op, opset, attrs, n_attrs, in, 1, 1, &out, &err);
    if (st)
        fail_msg("%s failed: %s", op, err.msg);
    return out;
}

/* ---- integer arithmetic ---- */

static void test_div_int(void **state)
{
    (void)state;
    int32_t a[] = {-7, 7, -7, 7, INT32_MIN}, b[] = {2, 2, -2, -2, -1};
    pare_tensor *ta = mk1(PARE_DT_INT32, 5, a), *tb = mk1(PARE_DT_INT32, 5, b);
    pare_tensor *o = bin("Div", 14, NULL, 0, ta, tb);
    const int32_t *r = o->data;
    assert_int_equal(r[0], -3); /* truncation toward zero */
    assert_int_equal(r[1], 3);
    assert_int_equal(r[2], 3);
    assert_int_equal(r[3], -3);
    assert_int_equal(r[4], INT32_MIN); /* wraps, no trap */
    pare_tensor_free(o);

    int32_t z[] = {1, 0, 1, 1, 1};
    pare_tensor *tz = mk1(PARE_DT_INT32, 5, z);
    const pare_tensor *in[2] = {ta, tz};
    pare_error err;
    assert_int_equal(run_op("Div", 14, NULL, 0, in, 2, 1, &o, &err), PARE_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "division by zero"));
    assert_null(o);
    assert_int_equal(run_op("Mod", 13, NULL, 0, in, 2, 1, &o, &err), PARE_ERR_RUNTIME);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
    pare_tensor_free(tz);
}

static void test_mod(void **state)
{
    (void)state;
    int64_t a[] = {-4, 7, 5, 4, -7, 8, INT64_MIN}, b[] = {2, -3, 8, -2, 3, 5, -1};
    pare_tensor *ta = mk1(PARE_DT_INT64, 7, a), *tb = mk1(PARE_DT_INT64, 7, b);
    pare_tensor *o = bin("Mod", 13, NULL, 0, ta, tb);
    const int64_t want0[] = {0, -2, 5, 0, 2, 3, 0}; /* sign of the divisor */
    assert_memory_equal(o->data, want0, sizeof want0);
    pare_tensor_free(o);
    pare_attr fm = attr_int("fmod", 1);
    o = bin("Mod", 13, &fm, 1, ta, tb);
    const int64_t want1[] = {0, 1, 5, 0, -1, 3, 0}; /* sign of the dividend */
    assert_memory_equal(o->data, want1, sizeof want1);
    pare_tensor_free(o);
    pare_tensor_free(ta);
    pare_tensor_free(tb);

    float fa[] = {-4.3f, 7.2f, 5.0f}, fb[] = {2.1f, -3.4f, 8.0f};
    ta = mk1(PARE_DT_FLOAT, 3, fa);
    tb = mk1(PARE_DT_FLOAT, 3, fb);
    o = bin("Mod", 13, &fm, 1, ta, tb);
    const float *r = o->data;
    assert_float_equal(r[0], fmodf(-4.3f, 2.1f), 1e-6);
    assert_float_equal(r[1], fmodf(7.2f, -3.4f), 1e-6);
    assert_float_equal(r[2], 5.0f, 0);
    pare_tensor_free(o);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
}

static void test_add_wraps(void **state)
{
    (void)state;
    int32_t a[] = {INT32_MAX, INT32_MIN}, b[] = {1, -1};
    pare_tensor *ta = mk1(PARE_DT_INT32, 2, a), *tb = mk1(PARE_DT_INT32, 2, b);
    pare_tensor *o = bin("Add", 14, NULL, 0, ta, tb);
    assert_int_equal(((int32_t *)o->data)[0], INT32_MIN);
    assert_int_equal(((int32_t *)o->data)[1], INT32_MAX);
    pare_tensor_free(o);
    uint16_t ua[] = {65535, 300}, ub[] = {65535, 300};
    pare_tensor *tua = mk1(PARE_DT_UINT16, 2, ua), *tub = mk1(PARE_DT_UINT16, 2, ub);
    o = bin("Mul", 14, NULL, 0, tua, tub);
    assert_int_equal(((uint16_t *)o->data)[0], (uint16_t)(65535u * 65535u));
    assert_int_equal(((uint16_t *)o->data)[1], (uint16_t)(90000u));
    pare_tensor_free(o);
    pare_tensor *n = un("Neg", 13, NULL, 0, ta);
    assert_int_equal(((int32_t *)n->data)[1], INT32_MIN);
    pare_tensor_free(n);
    n = un("Abs", 13, NULL, 0, ta);
    assert_int_equal(((int32_t *)n->data)[0], INT32_MAX);
    pare_tensor_free(n);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
    pare_tensor_free(tua);
    pare_tensor_free(tub);
}

static void test_pow_types(void **state)
{
    (void)state;
    int32_t a[] = {2, 3, -2, 5};
    float e[] = {5.0f, 0.5f, 3.0f, -1.0f};
    pare_tensor *ta = mk1(PARE_DT_INT32, 4, a), *te = mk1(PARE_DT_FLOAT, 4, e);
    pare_tensor *o = bin("Pow", 15, NULL, 0, ta, te);
    assert_int_equal(o->dtype, PARE_DT_INT32);
    const int32_t *r = o->data;
    assert_int_equal(r[0], 32);
    assert_int_equal(r[1], 1); /* sqrt(3) truncated */
    assert_int_equal(r[2], -8);
    assert_int_equal(r[3], 0); /* 0.2 truncated */
    pare_tensor_free(o);
    int64_t ie[] = {10, 2, 3, 0};
    pare_tensor *tie = mk1(PARE_DT_INT64, 4, ie);
    o = bin("Pow", 15, NULL, 0, ta, tie);
    r = o->data;
    assert_int_equal(r[0], 1024);
    assert_int_equal(r[1], 9);
    assert_int_equal(r[2], -8);
    assert_int_equal(r[3], 1);
    pare_tensor_free(o);
    float fb[] = {2.0f, 1.5f, -2.0f, 4.0f};
    pare_tensor *tfb = mk1(PARE_DT_FLOAT, 4, fb);
    o = bin("Pow", 15, NULL, 0, tfb, tie);
    assert_int_equal(o->dtype, PARE_DT_FLOAT);
    assert_float_equal(((float *)o->data)[0], 1024.0f, 0);
    assert_float_equal(((float *)o->data)[1], 2.25f, 0);
    assert_float_equal(((float *)o->data)[3], 1.0f, 0);
    pare_tensor_free(o);
    pare_tensor_free(ta);
    pare_tensor_free(te);
    pare_tensor_free(tie);
    pare_tensor_free(tfb);
}

/* ---- broadcasting ---- */

static void test_broadcast(void **state)
{
    (void)state;
    int64_t da[] = {2, 3, 4}, db[] = {3, 1};
    float a[24], b[3];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i;
    for (int i = 0; i < 3; i++)
        b[i] = 100.0f * (float)(i + 1);
    pare_tensor *ta = mk(PARE_DT_FLOAT, 3, da, a), *tb = mk(PARE_DT_FLOAT, 2, db, b);
    pare_tensor *o = bin("Sub", 14, NULL, 0, tb, ta); /* [3,1] - [2,3,4] */
    assert_int_equal(o->rank, 3);
    assert_int_equal(o->dims[0], 2);
    assert_int_equal(o->dims[2], 4);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                assert_float_equal(((float *)o->data)[(i * 3 + j) * 4 + k],
                                   b[j] - a[(i * 3 + j) * 4 + k], 0);
    pare_tensor_free(o);

    /* [3,1] x [1,4] -> [3,4]: both sides broadcast */
    int64_t dc[] = {1, 4};
    float c[] = {1, 2, 3, 4};
    pare_tensor *tc = mk(PARE_DT_FLOAT, 2, dc, c);
    o = bin("Mul", 14, NULL, 0, tb, tc);
    assert_int_equal(o->dims[0], 3);
    assert_int_equal(o->dims[1], 4);
    assert_float_equal(((float *)o->data)[2 * 4 + 3], 300.0f * 4, 0);
    pare_tensor_free(o);

    /* incompatible shapes fail cleanly */
    int64_t dd[] = {5};
    pare_tensor *td = mk(PARE_DT_FLOAT, 1, dd, NULL);
    const pare_tensor *in[2] = {ta, td};
    pare_error err;
    assert_int_equal(run_op("Add", 14, NULL, 0, in, 2, 1, &o, &err), PARE_ERR_INVALID);
    /* mismatched dtypes too */
    pare_tensor *ti = mk(PARE_DT_INT32, 2, db, NULL);
    const pare_tensor *in2[2] = {ta, ti};
    assert_int_equal(run_op("Add", 14, NULL, 0, in2, 2, 1, &o, &err), PARE_ERR_INVALID);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
    pare_tensor_free(tc);
    pare_tensor_free(td);
    pare_tensor_free(ti);
}

static void test_legacy_axis_broadcast(void **state)
{
    (void)state;
    int64_t da[] = {2, 3, 2}, db[] = {3};
    float a[12] = {0}, b[] = {1, 2, 3};
    pare_tensor *ta = mk(PARE_DT_FLOAT, 3, da, a), *tb = mk(PARE_DT_FLOAT, 1, db, b);
    pare_attr at[] = {attr_int("broadcast", 1), attr_int("axis", 1)};
    pare_tensor *o = bin("Add", 6, at, 2, ta, tb);
    const float *r = o->data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                assert_float_equal(r[(i * 3 + j) * 2 + k], b[j], 0);
    pare_tensor_free(o);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
}

/* Large enough to be split across threads; compared with a plain loop. */
static void test_parallel_broadcast(void **state)
{
    (void)state;
    int64_t da[] = {7, 129, 131}, db[] = {129, 1};
    size_t na = 7 * 129 * 131;
    float *a = malloc(na * sizeof *a), b[129];
    assert_non_null(a);
    for (size_t i = 0; i < na; i++)
        a[i] = (float)(i % 1000) * 0.5f;
    for (int i = 0; i < 129; i++)
        b[i] = (float)i;
    pare_tensor *ta = mk(PARE_DT_FLOAT, 3, da, a), *tb = mk(PARE_DT_FLOAT, 2, db, b);
    const pare_tensor *in[2] = {ta, tb};
    pare_tensor *o;
    pare_error err;
    assert_int_equal(run_op("Add", 14, NULL, 0, in, 2, 4, &o, &err), PARE_OK);
    const float *r = o->data;
    for (size_t i = 0; i < na; i++)
        if (r[i] != a[i] + b[(i / 131) % 129])
            fail_msg("element %zu: %g", i, (double)r[i]);
    pare_tensor_free(o);
    /* and a same-shape op */
    const pare_tensor *in2[2] = {ta, ta};
    assert_int_equal(run_op("Mul", 14, NULL, 0, in2, 2, 4, &o, &err), PARE_OK);
    r = o->data;
    for (size_t i = 0; i < na; i++)
        if (r[i] != a[i] * a[i])
            fail_msg("element %zu: %g", i, (double)r[i]);
    pare_tensor_free(o);
    free(a);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
}

static void test_misaligned_input(void **state)
{
    (void)state;
    /* a borrowed tensor whose data starts one byte into a buffer */
    unsigned char *buf = malloc(4 * sizeof(float) + 1);
    assert_non_null(buf);
    float v[] = {1, -2, 3, -4};
    memcpy(buf + 1, v, sizeof v);
    int64_t n = 4;
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_wrap(NULL, PARE_DT_FLOAT, 1, &n, buf + 1, sizeof v, &t, &err),
                     PARE_OK);
    pare_tensor *o = un("Relu", 14, NULL, 0, t);
    float want[] = {1, 0, 3, 0};
    assert_memory_equal(o->data, want, sizeof want);
    pare_tensor_free(o);
    pare_tensor_free(t);
    free(buf);
}

/* ---- unary, Clip, Where, variadic ---- */

static void test_round_half_even(void **state)
{
    (void)state;
    float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.3f, -2.7f};
    float want[] = {0, 2, 2, -0.0f, -2, -2, 2, -3};
    pare_tensor *t = mk1(PARE_DT_FLOAT, 8, x);
    pare_tensor *o = un("Round", 22, NULL, 0, t);
    for (int i = 0; i < 8; i++)
        assert_float_equal(((float *)o->data)[i], want[i], 0);
    pare_tensor_free(o);
    pare_tensor_free(t);
}

static void test_clip(void **state)
{
    (void)state;
    int8_t x[] = {-128, -5, 0, 5, 127};
    int8_t hi = 3;
    pare_tensor *t = mk1(PARE_DT_INT8, 5, x), *th = mk(PARE_DT_INT8, 0, NULL, &hi);
    const pare_tensor *in[3] = {t, NULL, th}; /* min omitted */
    pare_tensor *o;
    pare_error err;
    assert_int_equal(run_op("Clip", 13, NULL, 0, in, 3, 1, &o, &err), PARE_OK);
    int8_t want[] = {-128, -5, 0, 3, 3};
    assert_memory_equal(o->data, want, sizeof want);
    pare_tensor_free(o);
    pare_tensor_free(t);
    pare_tensor_free(th);

    /* opset 6: bounds are attributes */
    float fx[] = {-3, 0.5f, 3};
    pare_tensor *tf = mk1(PARE_DT_FLOAT, 3, fx);
    pare_attr at[] = {attr_float("min", -1), attr_float("max", 1)};
    o = un("Clip", 6, at, 2, tf);
    float fw[] = {-1, 0.5f, 1};
    assert_memory_equal(o->data, fw, sizeof fw);
    pare_tensor_free(o);
    pare_tensor_free(tf);
}

static void test_isinf_flags(void **state)
{
    (void)state;
    float x[] = {-INFINITY, INFINITY, NAN, 1};
    pare_tensor *t = mk1(PARE_DT_FLOAT, 4, x);
    pare_attr at = attr_int("detect_positive", 0);
    pare_tensor *o = un("IsInf", 20, &at, 1, t);
    uint8_t want[] = {1, 0, 0, 0};
    assert_memory_equal(o->data, want, sizeof want);
    pare_tensor_free(o);
    o = un("IsNaN", 20, NULL, 0, t);
    uint8_t want2[] = {0, 0, 1, 0};
    assert_memory_equal(o->data, want2, sizeof want2);
    pare_tensor_free(o);
    pare_tensor_free(t);
}

static void test_bitshift(void **state)
{
    (void)state;
    uint8_t x[] = {16, 4, 1, 255}, s[] = {1, 2, 8, 7};
    pare_tensor *tx = mk1(PARE_DT_UINT8, 4, x), *ts = mk1(PARE_DT_UINT8, 4, s);
    pare_attr l = attr_str("direction", "LEFT"), r = attr_str("direction", "RIGHT");
    pare_tensor *o = bin("BitShift", 11, &l, 1, tx, ts);
    uint8_t wl[] = {32, 16, 0, 128};
    assert_memory_equal(o->data, wl, sizeof wl);
    pare_tensor_free(o);
    o = bin("BitShift", 11, &r, 1, tx, ts);
    uint8_t wr[] = {8, 1, 0, 1};
    assert_memory_equal(o->data, wr, sizeof wr);
    pare_tensor_free(o);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
}

static void test_variadic(void **state)
{
    (void)state;
    int64_t d0[] = {2, 1}, d1[] = {3}, d2[] = {1};
    float a[] = {1, 2}, b[] = {10, 20, 30}, c[] = {100};
    pare_tensor *t0 = mk(PARE_DT_FLOAT, 2, d0, a), *t1 = mk(PARE_DT_FLOAT, 1, d1, b),
                *t2 = mk(PARE_DT_FLOAT, 1, d2, c);
    const pare_tensor *in[3] = {t0, t1, t2};
    pare_tensor *o;
    pare_error err;
    assert_int_equal(run_op("Sum", 13, NULL, 0, in, 3, 1, &o, &err), PARE_OK);
    assert_int_equal(o->rank, 2);
    float ws[] = {111, 121, 131, 112, 122, 132};
    assert_memory_equal(o->data, ws, sizeof ws);
    pare_tensor_free(o);
    assert_int_equal(run_op("Mean", 13, NULL, 0, in, 3, 1, &o, &err), PARE_OK);
    assert_float_equal(((float *)o->data)[0], 111.0f / 3, 1e-5);
    pare_tensor_free(o);
    float nan_in[] = {NAN};
    pare_tensor *tn = mk(PARE_DT_FLOAT, 1, d2, nan_in);
    const pare_tensor *in2[2] = {t1, tn};
    assert_int_equal(run_op("Max", 13, NULL, 0, in2, 2, 1, &o, &err), PARE_OK);
    assert_true(isnan(((float *)o->data)[0])); /* NaN propagates */
    pare_tensor_free(o);
    pare_tensor_free(t0);
    pare_tensor_free(t1);
    pare_tensor_free(t2);
    pare_tensor_free(tn);
}

static pare_tensor *mk_strings(int64_t n, const char *const *s)
{
    pare_tensor *t = mk1(PARE_DT_STRING, n, NULL);
    pare_string *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        p[i].len = strlen(s[i]);
        p[i].data = malloc(p[i].len + 1);
        memcpy(p[i].data, s[i], p[i].len + 1);
    }
    return t;
}

static bool str_is(const pare_tensor *t, int64_t i, const char *s)
{
    const pare_string *p = &((const pare_string *)t->data)[i];
    return p->len == strlen(s) && memcmp(p->data, s, p->len) == 0;
}

static void test_strings(void **state)
{
    (void)state;
    const char *sa[] = {"a", "bc", ""}, *sb[] = {"a", "bd", ""};
    pare_tensor *ta = mk_strings(3, sa), *tb = mk_strings(3, sb);
    pare_tensor *o = bin("Equal", 19, NULL, 0, ta, tb);
    uint8_t we[] = {1, 0, 1};
    assert_memory_equal(o->data, we, sizeof we);
    pare_tensor_free(o);

    uint8_t c[] = {1, 0, 1};
    pare_tensor *tc = mk1(PARE_DT_BOOL, 3, c);
    const pare_tensor *in[3] = {tc, ta, tb};
    pare_error err;
    assert_int_equal(run_op("Where", 16, NULL, 0, in, 3, 1, &o, &err), PARE_OK);
    assert_true(str_is(o, 0, "a") && str_is(o, 1, "bd") && str_is(o, 2, ""));
    pare_tensor_free(o);

    /* numbers to strings and back */
    float f[] = {1.5f, -0.25f, 3.0f};
    pare_tensor *tf = mk1(PARE_DT_FLOAT, 3, f);
    pare_attr to_s = attr_int("to", PARE_DT_STRING);
    o = un("Cast", 13, &to_s, 1, tf);
    assert_true(str_is(o, 0, "1.5") && str_is(o, 1, "-0.25") && str_is(o, 2, "3.0"));
    pare_attr to_f = attr_int("to", PARE_DT_DOUBLE);
    pare_tensor *back = un("Cast", 13, &to_f, 1, o);
    assert_float_equal(((double *)back->data)[1], -0.25, 0);
    pare_tensor_free(back);
    pare_attr to_i = attr_int("to", PARE_DT_INT64);
    const char *si[] = {"42", "-7", "2.9"};
    pare_tensor *ts = mk_strings(3, si);
    back = un("Cast", 13, &to_i, 1, ts);
    int64_t wi[] = {42, -7, 2};
    assert_memory_equal(back->data, wi, sizeof wi);
    pare_tensor_free(back);
    pare_tensor_free(ts);
    pare_tensor_free(o);
    pare_tensor_free(tf);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
    pare_tensor_free(tc);
}

/* ---- Cast ---- */

static void test_cast(void **state)
{
    (void)state;
    float f[] = {2.9f, -2.9f, 1e10f, NAN};
    pare_tensor *t = mk1(PARE_DT_FLOAT, 4, f);
    pare_attr to = attr_int("to", PARE_DT_INT32);
    pare_tensor *o = un("Cast", 19, &to, 1, t);
    const int32_t *r = o->data;
    assert_int_equal(r[0], 2);
    assert_int_equal(r[1], -2);
    pare_tensor_free(o);
    /* opset 1 names the type with a string */
    pare_attr to1 = attr_str("to", "FLOAT16");
    o = un("Cast", 1, &to1, 1, t);
    assert_int_equal(o->dtype, PARE_DT_FLOAT16);
    assert_float_equal(pare_f16_to_f32(((uint16_t *)o->data)[0]), 2.900390625f, 0);
    /* CastLike takes the type of its second input */
    const pare_tensor *in[2] = {o, t};
    pare_tensor *o2;
    pare_error err;
    assert_int_equal(run_op("CastLike", 19, NULL, 0, in, 2, 1, &o2, &err), PARE_OK);
    assert_int_equal(o2->dtype, PARE_DT_FLOAT);
    assert_float_equal(((float *)o2->data)[1], -2.900390625f, 0);
    pare_tensor_free(o2);
    pare_tensor_free(o);
    pare_tensor_free(t);

    /* int4 output across several parallel blocks, odd count */
    int64_t n = 40001;
    float *big = malloc((size_t)n * sizeof *big);
    assert_non_null(big);
    for (int64_t i = 0; i < n; i++)
        big[i] = (float)(i % 16) - 8.0f;
    t = mk1(PARE_DT_FLOAT, n, big);
    pare_attr to4 = attr_int("to", PARE_DT_INT4);
    const pare_tensor *in1[1] = {t};
    assert_int_equal(run_op("Cast", 21, &to4, 1, in1, 1, 4, &o, &err), PARE_OK);
    for (int64_t i = 0; i < n; i++)
        if (pare_int4_get(o->data, (size_t)i, true) != (int)(i % 16) - 8)
            fail_msg("int4 element %lld", (long long)i);
    pare_tensor_free(o);
    pare_tensor_free(t);
    free(big);
}

/* ---- Softmax family ---- */

static void test_softmax_axis(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 7) % 11) * 0.3f;
    pare_tensor *t = mk(PARE_DT_FLOAT, 3, d, x);
    pare_attr ax = attr_int("axis", 1);

    /* opset 13: along dim 1 only */
    pare_tensor *o = un("Softmax", 13, &ax, 1, t);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            double s = 0;
            for (int j = 0; j < 3; j++)
                s += exp(x[(i * 3 + j) * 4 + k]);
            for (int j = 0; j < 3; j++)
                assert_float_equal(((float *)o->data)[(i * 3 + j) * 4 + k],
                                   exp(x[(i * 3 + j) * 4 + k]) / s, 1e-6);
        }
    pare_tensor_free(o);

    /* opset 11: the input coerced to [2, 12] */
    o = un("Softmax", 11, &ax, 1, t);
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 12; j++)
            s += exp(x[i * 12 + j]);
        for (int j = 0; j < 12; j++)
            assert_float_equal(((float *)o->data)[i * 12 + j], exp(x[i * 12 + j]) / s, 1e-6);
    }
    pare_tensor_free(o);

    o = un("LogSoftmax", 13, &ax, 1, t);
    double s = 0;
    for (int j = 0; j < 3; j++)
        s += exp(x[j * 4]);
    assert_float_equal(((float *)o->data)[0], x[0] - log(s), 1e-5);
    pare_tensor_free(o);

    /* Hardmax: the first maximum wins */
    float h[] = {1, 3, 3, 2};
    int64_t dh[] = {1, 4};
    pare_tensor *th = mk(PARE_DT_FLOAT, 2, dh, h);
    o = un("Hardmax", 13, NULL, 0, th);
    float wh[] = {0, 1, 0, 0};
    assert_memory_equal(o->data, wh, sizeof wh);
    pare_tensor_free(o);
    pare_tensor_free(th);

    /* out-of-range axis is an error, not a crash */
    pare_attr bad = attr_int("axis", 3);
    const pare_tensor *in[1] = {t};
    pare_error err;
    assert_int_equal(run_op("Softmax", 13, &bad, 1, in, 1, 1, &o, &err), PARE_ERR_INVALID);
    pare_tensor_free(t);
}

/* Softmax along rows of every length from 1 to 40 and a few longer ones (the
 * float32 row kernel works in 16-lane blocks with a masked tail on
 * AVX-512): each element against exp in double, with a spread of values and
 * one large value per row (the max is subtracted first). */
static void test_softmax_row_lengths(void **state)
{
    (void)state;
    static const int64_t extra[] = {63, 64, 65, 128, 1000};
    for (int li = 0; li < 40 + (int)(sizeof extra / sizeof *extra); li++) {
        int64_t n = li < 40 ? li + 1 : extra[li - 40];
        int64_t d[2] = {3, n};
        float *x = malloc((size_t)(3 * n) * sizeof *x);
        assert_non_null(x);
        for (int64_t i = 0; i < 3 * n; i++)
            x[i] = (float)((i * 37) % 23) * 0.25f - 3.0f;
        x[n + n / 2] = 80.0f; /* row 1: exp would overflow without the max */
        pare_tensor *t = mk(PARE_DT_FLOAT, 2, d, x);
        pare_tensor *o = un("Softmax", 13, NULL, 0, t);
        const float *y = o->data;
        for (int r = 0; r < 3; r++) {
            double mx = -INFINITY, s = 0.0, got = 0.0;
            for (int64_t i = 0; i < n; i++)
                mx = fmax(mx, (double)x[r * n + i]);
            for (int64_t i = 0; i < n; i++)
                s += exp((double)x[r * n + i] - mx);
            for (int64_t i = 0; i < n; i++) {
                double want = exp((double)x[r * n + i] - mx) / s;
                if (fabs((double)y[r * n + i] - want) > 4e-6 * (want + 1e-3))
                    fail_msg("n %lld row %d [%lld] = %.9g, want %.9g", (long long)n, r,
                             (long long)i, (double)y[r * n + i], want);
                got += y[r * n + i];
            }
            assert_true(fabs(got - 1.0) < 1e-5);
        }
        pare_tensor_free(o);
        pare_tensor_free(t);
        free(x);
    }
}

/* Exp, Tanh, Sigmoid and Erf use their own vectorisable float32 versions: check
 * them against libm in double over a wide sweep and at the special values. */
static void test_fast_exp_tanh(void **state)
{
    (void)state;
    enum { N = 200003 };
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < N; i++)
        x[i] = -110.0f + 200.0f * (float)i / (float)(N - 1);
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = -INFINITY;
    x[3] = 88.72f;  /* just below exp overflow */
    x[4] = 89.0f;   /* just above */
    x[5] = -100.0f; /* subnormal result */
    x[6] = 1e-30f;
    pare_tensor *t = mk1(PARE_DT_FLOAT, N, x);
    const char *ops[] = {"Exp", "Tanh", "Sigmoid", "Erf"};
    for (int k = 0; k < 4; k++) {
        pare_tensor *o = un(ops[k], 13, NULL, 0, t);
        const float *y = o->data;
        for (int i = 0; i < N; i++) {
            double xi = x[i];
            double ref = k == 0   ? exp(xi)
                         : k == 1 ? tanh(xi)
                         : k == 2 ? 1.0 / (1.0 + exp(-xi))
                                  : erf(xi);
            if (isnan(ref)) {
                if (!isnan(y[i]))
                    fail_msg("%s(nan) = %g", ops[k], (double)y[i]);
                continue;
            }
            float rf = (float)ref;
            if (isinf(rf)) {
                if (y[i] != rf)
                    fail_msg("%s(%g) = %g, want inf", ops[k], xi, (double)y[i]);
                continue;
            }
            double tol = 4 * ((double)nextafterf(fabsf(rf), INFINITY) - fabs((double)rf));
            if (fabs(rf) < 1.2e-38)
                tol = 1.2e-38; /* below the normal range: may flush to 0 */
            if (fabs((double)y[i] - ref) > tol)
                fail_msg("%s(%.9g) = %.9g, want %.9g", ops[k], xi, (double)y[i], ref);
        }
        pare_tensor_free(o);
    }
    pare_tensor_free(t);
    free(x);
}

static void test_float16_compute(void **state)
{
    (void)state;
    uint16_t a[] = {pare_f32_to_f16(1.5f), pare_f32_to_f16(-2.0f)};
    uint16_t b[] = {pare_f32_to_f16(0.25f)};
    pare_tensor *ta = mk1(PARE_DT_FLOAT16, 2, a), *tb = mk1(PARE_DT_FLOAT16, 1, b);
    pare_tensor *o = bin("Add", 14, NULL, 0, ta, tb);
    assert_float_equal(pare_f16_to_f32(((uint16_t *)o->data)[0]), 1.75f, 0);
    assert_float_equal(pare_f16_to_f32(((uint16_t *)o->data)[1]), -1.75f, 0);
    pare_tensor_free(o);
    uint16_t bf[] = {pare_f32_to_bf16(-1.0f), pare_f32_to_bf16(2.0f)};
    pare_tensor *tbf = mk1(PARE_DT_BFLOAT16, 2, bf);
    o = un("Relu", 14, NULL, 0, tbf);
    assert_float_equal(pare_bf16_to_f32(((uint16_t *)o->data)[0]), 0.0f, 0);
    assert_float_equal(pare_bf16_to_f32(((uint16_t *)o->data)[1]), 2.0f, 0);
    pare_tensor_free(o);
    pare_tensor_free(ta);
    pare_tensor_free(tb);
    pare_tensor_free(tbf);
}

static void test_registry_ranges(void **state)
{
    (void)state;
    assert_null(pare_kernel_find("", "Mod", 9));       /* Mod starts at 10 */
    assert_non_null(pare_kernel_find("", "Mod", 10));
    assert_null(pare_kernel_find("", "Gelu", 19));
    assert_non_null(pare_kernel_find("", "Gelu", 20));
    assert_non_null(pare_kernel_find("", "Softmax", 1));
    assert_non_null(pare_kernel_find("", "Cast", 25));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_div_int),
        cmocka_unit_test(test_mod),
        cmocka_unit_test(test_add_wraps),
        cmocka_unit_test(test_pow_types),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_legacy_axis_broadcast),
        cmocka_unit_test(test_parallel_broadcast),
        cmocka_unit_test(test_misaligned_input),
        cmocka_unit_test(test_round_half_even),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_isinf_flags),
        cmocka_unit_test(test_bitshift),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_softmax_axis),
        cmocka_unit_test(test_softmax_row_lengths),
        cmocka_unit_test(test_fast_exp_tanh),
        cmocka_unit_test(test_float16_compute),
        cmocka_unit_test(test_registry_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
