/* test_shape.c - the shape / data-movement / reduction kernel family run
 * directly through its kernel records (no session): Reshape's 0/-1 rules and
 * its error, Slice clamping with negative steps, Gather index errors, Pad
 * modes with negative pads, the tiled Transpose against a naive one on many
 * threads, strings moved with owned copies, 4-bit tensors, reductions over
 * empty sets, TopK/ArgMax tie rules, Unique's four outputs, Split's uneven
 * parts, scatter reductions, Resize on integers, misaligned inputs. */
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

#define MAX_OUT 8

typedef struct harness {
    pare_tensor *out[MAX_OUT];
} harness;

static pare_status h_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                           pare_tensor **out, pare_error *err)
{
    harness *h = k->exec;
    assert_true(i < MAX_OUT);
    pare_tensor_free(h->out[i]);
    h->out[i] = NULL;
    pare_status st = pare_tensor_new(NULL, dtype, rank, dims, out, err);
    if (st == PARE_OK) {
        /* poison numeric outputs so that unwritten elements show */
        if (dtype != PARE_DT_STRING && (*out)->nbytes)
            memset((*out)->data, 0xA5, (*out)->nbytes);
        h->out[i] = *out;
    }
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

static pare_attr attr_ints(const char *name, const int64_t *v, size_t n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INTS;
    a.ints = (int64_t *)v;
    a.n = n;
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

/* Runs op at opset with n_out outputs on a pool of `threads`; outputs go to
 * out[] (caller frees) and are all NULL on failure. */
static pare_status run_n(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                         const pare_tensor *const *in, size_t n_in, size_t n_out, int threads,
                         pare_tensor **out, pare_error *err)
{
    for (size_t i = 0; i < n_out; i++)
        out[i] = NULL;
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
    k.node = &node;
    k.opset = opset;
    k.in = in;
    k.n_in = n_in;
    k.n_out = n_out;
    k.state = state;
    k.pool = pool;
    k.alloc_out = h_alloc;
    k.exec = &h;
    st = kr->run(&k, err);
    if (kr->release)
        kr->release(state);
    pare_threadpool_free(pool);
    for (size_t i = 0; i < MAX_OUT; i++) {
        if (st || i >= n_out)
            pare_tensor_free(h.out[i]);
        else
            out[i] = h.out[i];
    }
    return st;
}

static pare_status run1(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                        const pare_tensor *const *in, size_t n_in, pare_tensor **out,
                        pare_error *err)
{
    return run_n(op, opset, attrs, n_attrs, in, n_in, 1, 1, out, err);
}

/* Runs and fails the test on error. */
static pare_tensor *ok1(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                        const pare_tensor *const *in, size_t n_in)
{
    pare_tensor *o;
    pare_error err;
    if (run1(op, opset, attrs, n_attrs, in, n_in, &o, &err))
        fail_msg("%s failed: %s", op, err.msg);
    return o;
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

static pare_tensor *ints(int64_t n, const int64_t *v)
{
    return mk1(PARE_DT_INT64, n, v);
}

static pare_tensor *iota_f(int rank, const int64_t *dims)
{
    pare_tensor *t = mk(PARE_DT_FLOAT, rank, dims, NULL);
    float *p = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        p[i] = (float)i;
    return t;
}

static void check_dims(const pare_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

static void free_all(pare_tensor **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pare_tensor_free(t[i]);
}

/* ---- Reshape, Squeeze, Unsqueeze ---- */

static void test_reshape(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    pare_tensor *x = iota_f(3, d);
    int64_t s1[] = {0, -1};
    pare_tensor *sh = ints(2, s1);
    const pare_tensor *in[] = {x, sh};
    pare_tensor *o = ok1("Reshape", 14, NULL, 0, in, 2);
    check_dims(o, 2, (int64_t[]){2, 12});
    assert_memory_equal(o->data, x->data, x->nbytes);
    pare_tensor_free(o);
    pare_tensor_free(sh);

    /* impossible: the message names both shapes */
    int64_t s2[] = {5, -1};
    sh = ints(2, s2);
    in[1] = sh;
    pare_error err;
    assert_int_not_equal(run1("Reshape", 14, NULL, 0, in, 2, &o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "2x3x4"));
    assert_non_null(strstr(err.msg, "5x-1"));
    pare_tensor_free(sh);

    /* two -1s */
    int64_t s3[] = {-1, -1};
    sh = ints(2, s3);
    in[1] = sh;
    assert_int_not_equal(run1("Reshape", 14, NULL, 0, in, 2, &o, &err), PARE_OK);
    pare_tensor_free(sh);

    /* allowzero: 0 is a real zero, so 24 elements cannot become 0x12 */
    int64_t s4[] = {0, 12};
    sh = ints(2, s4);
    in[1] = sh;
    pare_attr az = attr_int("allowzero", 1);
    assert_int_not_equal(run1("Reshape", 14, &az, 1, in, 2, &o, &err), PARE_OK);
    o = ok1("Reshape", 14, NULL, 0, in, 2); /* without allowzero 0 copies dim 0 */
    check_dims(o, 2, (int64_t[]){2, 12});
    pare_tensor_free(o);
    pare_tensor_free(sh);
    pare_tensor_free(x);

    /* an empty tensor reshaped with allowzero */
    int64_t de[] = {0, 3};
    pare_tensor *e = mk(PARE_DT_FLOAT, 2, de, NULL);
    int64_t s5[] = {3, 0};
    sh = ints(2, s5);
    const pare_tensor *ine[] = {e, sh};
    o = ok1("Reshape", 14, &az, 1, ine, 2);
    check_dims(o, 2, s5);
    pare_tensor_free(o);
    pare_tensor_free(sh);
    pare_tensor_free(e);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    int64_t d[] = {1, 3, 1, 2};
    pare_tensor *x = iota_f(4, d);
    const pare_tensor *in1[] = {x};
    pare_tensor *o = ok1("Squeeze", 13, NULL, 0, in1, 1);
    check_dims(o, 2, (int64_t[]){3, 2});
    pare_tensor_free(o);
    int64_t ax[] = {-2};
    pare_tensor *axes = ints(1, ax);
    const pare_tensor *in2[] = {x, axes};
    o = ok1("Squeeze", 13, NULL, 0, in2, 2);
    check_dims(o, 3, (int64_t[]){1, 3, 2});
    pare_tensor_free(o);
    /* squeezing a dim that is not 1 fails */
    int64_t bad[] = {1};
    pare_tensor *axb = ints(1, bad);
    in2[1] = axb;
    pare_error err;
    assert_int_not_equal(run1("Squeeze", 13, NULL, 0, in2, 2, &o, &err), PARE_OK);
    /* opset 11: axes as an attribute, negative counted on the output rank */
    int64_t uax[] = {-1, 0};
    pare_attr a = attr_ints("axes", uax, 2);
    o = ok1("Unsqueeze", 11, &a, 1, in1, 1);
    check_dims(o, 6, (int64_t[]){1, 1, 3, 1, 2, 1});
    pare_tensor_free(o);
    pare_tensor_free(axb);
    pare_tensor_free(axes);
    pare_tensor_free(x);
}

/* ---- Transpose ---- */

static void test_transpose_tiled(void **state)
{
    (void)state;
    /* big enough for the tiled path and several threads */
    int64_t d[] = {3, 129, 257};
    pare_tensor *x = mk(PARE_DT_INT16, 3, d, NULL);
    int16_t *p = x->data;
    for (int64_t i = 0; i < 3 * 129 * 257; i++)
        p[i] = (int16_t)(i * 7);
    int64_t perm[] = {0, 2, 1};
    pare_attr a = attr_ints("perm", perm, 3);
    const pare_tensor *in[] = {x};
    pare_tensor *o;
    pare_error err;
    assert_int_equal(run_n("Transpose", 21, &a, 1, in, 1, 1, 4, &o, &err), PARE_OK);
    check_dims(o, 3, (int64_t[]){3, 257, 129});
    const int16_t *q = o->data;
    for (int64_t b = 0; b < 3; b++)
        for (int64_t i = 0; i < 257; i++)
            for (int64_t j = 0; j < 129; j++)
                assert_int_equal(q[(b * 257 + i) * 129 + j], p[(b * 129 + j) * 257 + i]);
    pare_tensor_free(o);

    /* default perm reverses; a bad perm is an error */
    o = ok1("Transpose", 21, NULL, 0, in, 1);
    check_dims(o, 3, (int64_t[]){257, 129, 3});
    assert_int_equal(((int16_t *)o->data)[1], p[129 * 257]);
    pare_tensor_free(o);
    int64_t bad[] = {0, 0, 1};
    pare_attr b = attr_ints("perm", bad, 3);
    assert_int_not_equal(run1("Transpose", 21, &b, 1, in, 1, &o, &err), PARE_OK);
    pare_tensor_free(x);
}

/* ---- strings: moved with their own bytes ---- */

static pare_tensor *strings(int rank, const int64_t *dims, const char *const *v)
{
    pare_tensor *t = mk(PARE_DT_STRING, rank, dims, NULL);
    pare_string *s = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++) {
        s[i].len = strlen(v[i]);
        s[i].data = malloc(s[i].len + 1);
        memcpy(s[i].data, v[i], s[i].len + 1);
    }
    return t;
}

static void check_str(const pare_tensor *t, uint64_t i, const char *want)
{
    const pare_string *s = (const pare_string *)t->data + i;
    assert_int_equal(s->len, strlen(want));
    if (s->len)
        assert_memory_equal(s->data, want, s->len);
}

static void test_strings(void **state)
{
    (void)state;
    const char *v[] = {"a", "bb", "", "dddd", "e", "ff"};
    int64_t d[] = {2, 3};
    pare_tensor *x = strings(2, d, v);
    const pare_tensor *in[] = {x};
    pare_tensor *o = ok1("Transpose", 13, NULL, 0, in, 1);
    check_dims(o, 2, (int64_t[]){3, 2});
    check_str(o, 0, "a");
    check_str(o, 1, "dddd");
    check_str(o, 3, "e");
    /* the output owns its bytes */
    assert_ptr_not_equal(((pare_string *)o->data)[0].data, ((pare_string *)x->data)[0].data);
    pare_tensor_free(o);

    int64_t idx[] = {2, -3, 2};
    pare_tensor *it = ints(3, idx);
    pare_attr ax = attr_int("axis", 1);
    const pare_tensor *in2[] = {x, it};
    o = ok1("Gather", 13, &ax, 1, in2, 2);
    check_dims(o, 2, (int64_t[]){2, 3});
    check_str(o, 0, "");
    check_str(o, 1, "a");
    check_str(o, 5, "ff");
    pare_tensor_free(o);

    /* Pad a string tensor with a string constant, Concat, Slice with a negative step */
    int64_t pads[] = {0, 1, 0, 0};
    pare_tensor *pt = ints(4, pads);
    const char *cv[] = {"pad"};
    pare_tensor *c = strings(0, NULL, cv);
    const pare_tensor *in3[] = {x, pt, c};
    o = ok1("Pad", 13, NULL, 0, in3, 3);
    check_dims(o, 2, (int64_t[]){2, 4});
    check_str(o, 0, "pad");
    check_str(o, 1, "a");
    check_str(o, 4, "pad");
    pare_tensor_free(o);
    pare_attr ax0 = attr_int("axis", 0);
    const pare_tensor *in4[] = {x, x};
    o = ok1("Concat", 13, &ax0, 1, in4, 2);
    check_dims(o, 2, (int64_t[]){4, 3});
    check_str(o, 11, "ff");
    pare_tensor_free(o);
    int64_t st[] = {-1}, en[] = {INT64_MIN}, axs[] = {1}, stp[] = {-2};
    pare_tensor *ts = ints(1, st), *te = ints(1, en), *ta = ints(1, axs), *tp = ints(1, stp);
    const pare_tensor *in5[] = {x, ts, te, ta, tp};
    o = ok1("Slice", 13, NULL, 0, in5, 5);
    check_dims(o, 2, (int64_t[]){2, 2});
    check_str(o, 0, "");
    check_str(o, 1, "a");
    check_str(o, 2, "ff");
    pare_tensor_free(o);
    free_all((pare_tensor *[]){ts, te, ta, tp, pt, c, it, x}, 8);
}

/* ---- Slice ---- */

static void test_slice(void **state)
{
    (void)state;
    int64_t d[] = {10};
    pare_tensor *x = iota_f(1, d);
    struct {
        int64_t start, end, step;
        int64_t n;
        float first;
    } cases[] = {
        {20, 0, -1, 9, 9},          /* start clamps to dim-1 */
        {-100, 100, 3, 4, 0},       /* both clamp */
        {INT64_MAX, INT64_MIN, -4, 3, 9},
        {5, 5, 1, 0, 0},
        {-1, -11, -1, 10, 9},       /* end -11 + 10 = -1: all the way down */
        {3, 1, 1, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pare_tensor *ts = ints(1, &cases[c].start), *te = ints(1, &cases[c].end);
        pare_tensor *tp = ints(1, &cases[c].step);
        const pare_tensor *in[] = {x, ts, te, NULL, tp};
        pare_tensor *o = ok1("Slice", 13, NULL, 0, in, 5);
        assert_int_equal(o->dims[0], cases[c].n);
        if (cases[c].n)
            assert_float_equal(((float *)o->data)[0], cases[c].first, 0);
        pare_tensor_free(o);
        free_all((pare_tensor *[]){ts, te, tp}, 3);
    }
    /* step 0 and a repeated axis are errors */
    int64_t z = 0, one = 1, zero2[] = {0, 0};
    pare_tensor *ts = ints(1, &one), *tz = ints(1, &z), *t2 = ints(2, zero2);
    const pare_tensor *in[] = {x, ts, ts, NULL, tz};
    pare_tensor *o;
    pare_error err;
    assert_int_not_equal(run1("Slice", 13, NULL, 0, in, 5, &o, &err), PARE_OK);
    const pare_tensor *in2[] = {x, t2, t2, t2};
    assert_int_not_equal(run1("Slice", 13, NULL, 0, in2, 4, &o, &err), PARE_OK);
    /* opset 1: attributes */
    int64_t s1[] = {-3}, e1[] = {1000};
    pare_attr at[] = {attr_ints("starts", s1, 1), attr_ints("ends", e1, 1)};
    const pare_tensor *in3[] = {x};
    o = ok1("Slice", 1, at, 2, in3, 1);
    assert_int_equal(o->dims[0], 3);
    assert_float_equal(((float *)o->data)[0], 7, 0);
    pare_tensor_free(o);
    free_all((pare_tensor *[]){ts, tz, t2, x}, 4);
}

/* ---- Gather family ---- */

static void test_gather_errors(void **state)
{
    (void)state;
    int64_t d[] = {5, 2};
    pare_tensor *x = iota_f(2, d);
    int64_t idx[] = {0, 7};
    pare_tensor *it = ints(2, idx);
    const pare_tensor *in[] = {x, it};
    pare_tensor *o;
    pare_error err;
    assert_int_not_equal(run1("Gather", 13, NULL, 0, in, 2, &o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "index 7 out of range [-5, 5)"));
    pare_tensor_free(it);

    /* int32 indices, negative, scalar index drops the axis */
    int32_t i32 = -1;
    pare_tensor *sc = mk(PARE_DT_INT32, 0, NULL, &i32);
    in[1] = sc;
    o = ok1("Gather", 13, NULL, 0, in, 2);
    check_dims(o, 1, (int64_t[]){2});
    assert_float_equal(((float *)o->data)[1], 9, 0);
    pare_tensor_free(o);
    pare_tensor_free(sc);

    /* GatherElements and GatherND with batch_dims */
    int64_t ge[] = {4, 0, -1, 1};
    pare_tensor *gi = mk(PARE_DT_INT64, 2, (int64_t[]){2, 2}, ge);
    in[1] = gi;
    o = ok1("GatherElements", 13, NULL, 0, in, 2);
    const float want[] = {8, 1, 8, 3};
    assert_memory_equal(o->data, want, sizeof want);
    pare_tensor_free(o);
    pare_tensor_free(gi);

    int64_t nd[] = {1, 0, 4, 1};
    pare_tensor *ni = mk(PARE_DT_INT64, 2, (int64_t[]){2, 2}, nd);
    in[1] = ni;
    o = ok1("GatherND", 13, NULL, 0, in, 2);
    check_dims(o, 1, (int64_t[]){2});
    assert_float_equal(((float *)o->data)[0], 2, 0);
    assert_float_equal(((float *)o->data)[1], 9, 0);
    pare_tensor_free(o);
    int64_t nd2[] = {1, 2};
    pare_tensor *ni2 = mk(PARE_DT_INT64, 2, (int64_t[]){1, 2}, nd2);
    in[1] = ni2;
    assert_int_not_equal(run1("GatherND", 13, NULL, 0, in, 2, &o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "index 2 out of range [-2, 2)"));
    free_all((pare_tensor *[]){ni, ni2, x}, 3);
}

static void test_scatter(void **state)
{
    (void)state;
    float data[] = {1, 2, 3, 4};
    pare_tensor *x = mk1(PARE_DT_FLOAT, 4, data);
    int64_t idx[] = {1, 1, -1};
    float upd[] = {10, 20, 5};
    pare_tensor *it = ints(3, idx), *up = mk1(PARE_DT_FLOAT, 3, upd);
    const pare_tensor *in[] = {x, it, up};
    pare_attr r = attr_str("reduction", "add");
    pare_tensor *o = ok1("ScatterElements", 18, &r, 1, in, 3);
    const float w1[] = {1, 32, 3, 9};
    assert_memory_equal(o->data, w1, sizeof w1);
    pare_tensor_free(o);
    r = attr_str("reduction", "max");
    o = ok1("ScatterElements", 18, &r, 1, in, 3);
    const float w2[] = {1, 20, 3, 5};
    assert_memory_equal(o->data, w2, sizeof w2);
    pare_tensor_free(o);
    /* none: the last duplicate wins */
    o = ok1("ScatterElements", 18, NULL, 0, in, 3);
    const float w3[] = {1, 20, 3, 5};
    assert_memory_equal(o->data, w3, sizeof w3);
    pare_tensor_free(o);
    pare_tensor_free(it);

    /* ScatterND with mul on int32 */
    int32_t di[] = {2, 3, 4, 5};
    pare_tensor *xi = mk1(PARE_DT_INT32, 4, di);
    int64_t ndi[] = {0, 3, 0};
    pare_tensor *nit = mk(PARE_DT_INT64, 2, (int64_t[]){3, 1}, ndi);
    int32_t ui[] = {10, 2, 3};
    pare_tensor *uit = mk1(PARE_DT_INT32, 3, ui);
    const pare_tensor *in2[] = {xi, nit, uit};
    r = attr_str("reduction", "mul");
    o = ok1("ScatterND", 18, &r, 1, in2, 3);
    const int32_t w4[] = {60, 3, 4, 10};
    assert_memory_equal(o->data, w4, sizeof w4);
    pare_tensor_free(o);
    /* out of range */
    int64_t bad[] = {4};
    pare_tensor *bt = mk(PARE_DT_INT64, 2, (int64_t[]){1, 1}, bad), *u1 = mk1(PARE_DT_INT32, 1, ui);
    const pare_tensor *in3[] = {xi, bt, u1};
    pare_error err;
    assert_int_not_equal(run1("ScatterND", 18, NULL, 0, in3, 3, &o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "index 4 out of range [-4, 4)"));
    free_all((pare_tensor *[]){xi, nit, uit, bt, u1, up, x}, 7);
}

/* ---- Pad ---- */

static void test_pad_modes(void **state)
{
    (void)state;
    int32_t v[] = {1, 2, 3, 4};
    pare_tensor *x = mk1(PARE_DT_INT32, 4, v);
    struct {
        const char *mode;
        int64_t b, e;
        int32_t want[10];
        int n;
    } cases[] = {
        {"constant", 2, 1, {9, 9, 1, 2, 3, 4, 9}, 7},
        {"reflect", 3, 4, {4, 3, 2, 1, 2, 3, 4, 3, 2, 1}, 11},
        {"edge", 2, -1, {1, 1, 1, 2, 3}, 5},
        {"wrap", 3, 2, {2, 3, 4, 1, 2, 3, 4, 1, 2}, 9},
        {"constant", -1, -2, {2}, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t pads[] = {cases[c].b, cases[c].e};
        pare_tensor *pt = ints(2, pads);
        int32_t nine = 9;
        pare_tensor *cv = mk(PARE_DT_INT32, 0, NULL, &nine);
        const pare_tensor *in[] = {x, pt, cv};
        pare_attr m = attr_str("mode", cases[c].mode);
        pare_tensor *o = ok1("Pad", 19, &m, 1, in, 3);
        if (cases[c].n == 11) /* reflect beyond the edge keeps bouncing */
            assert_int_equal(o->dims[0], 11);
        else
            assert_int_equal(o->dims[0], cases[c].n);
        int n = (int)o->dims[0] < 10 ? (int)o->dims[0] : 10;
        assert_memory_equal(o->data, cases[c].want, (size_t)n * sizeof(int32_t));
        pare_tensor_free(o);
        pare_tensor_free(pt);
        pare_tensor_free(cv);
    }
    /* too negative */
    int64_t pads[] = {-3, -2};
    pare_tensor *pt = ints(2, pads);
    const pare_tensor *in[] = {x, pt};
    pare_tensor *o;
    pare_error err;
    assert_int_not_equal(run1("Pad", 19, NULL, 0, in, 2, &o, &err), PARE_OK);
    pare_tensor_free(pt);

    /* opset 2 attributes on float16, axes input at 18 */
    int64_t d2[] = {2, 2};
    pare_tensor *h = mk(PARE_DT_FLOAT16, 2, d2, NULL);
    uint16_t *hp = h->data;
    for (int i = 0; i < 4; i++)
        hp[i] = pare_f32_to_f16((float)i);
    int64_t p2[] = {0, 1, 0, 0};
    pare_attr at[] = {attr_ints("pads", p2, 4), {0}};
    at[1].name = (char *)"value";
    at[1].type = PARE_ATTR_FLOAT;
    at[1].f = 0.5f;
    const pare_tensor *in2[] = {h};
    o = ok1("Pad", 2, at, 2, in2, 1);
    check_dims(o, 2, (int64_t[]){2, 3});
    assert_float_equal(pare_f16_to_f32(((uint16_t *)o->data)[0]), 0.5, 0);
    assert_float_equal(pare_f16_to_f32(((uint16_t *)o->data)[5]), 3, 0);
    pare_tensor_free(o);
    int64_t p3[] = {1, 1}, ax[] = {-1};
    pare_tensor *t3 = ints(2, p3), *ta = ints(1, ax);
    const pare_tensor *in3[] = {h, t3, NULL, ta};
    o = ok1("Pad", 18, NULL, 0, in3, 4);
    check_dims(o, 2, (int64_t[]){2, 4});
    pare_tensor_free(o);
    free_all((pare_tensor *[]){t3, ta, h, x}, 4);
}

/* ---- reductions ---- */

static void test_reduce_empty(void **state)
{
    (void)state;
    int64_t d[] = {2, 0, 3};
    pare_tensor *x = mk(PARE_DT_FLOAT, 3, d, NULL);
    int64_t ax[] = {1};
    pare_tensor *at = ints(1, ax);
    const pare_tensor *in[] = {x, at};
    struct {
        const char *op;
        float want;
    } cases[] = {{"ReduceSum", 0},          {"ReduceProd", 1},      {"ReduceMax", -INFINITY},
                 {"ReduceMin", INFINITY},   {"ReduceL2", 0},        {"ReduceLogSum", -INFINITY},
                 {"ReduceLogSumExp", -INFINITY}, {"ReduceSumSquare", 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pare_tensor *o = ok1(cases[c].op, 18, NULL, 0, in, 2);
        check_dims(o, 3, (int64_t[]){2, 1, 3});
        for (int i = 0; i < 6; i++)
            assert_true(((float *)o->data)[i] == cases[c].want);
        pare_tensor_free(o);
    }
    pare_tensor *o = ok1("ReduceMean", 18, NULL, 0, in, 2);
    assert_true(isnan(((float *)o->data)[0]));
    pare_tensor_free(o);
    pare_tensor_free(x);

    /* integer max of nothing is the type's minimum */
    pare_tensor *xi = mk(PARE_DT_INT8, 3, d, NULL);
    in[0] = xi;
    o = ok1("ReduceMax", 18, NULL, 0, in, 2);
    assert_int_equal(((int8_t *)o->data)[0], INT8_MIN);
    pare_tensor_free(o);
    pare_tensor_free(xi);
    pare_tensor_free(at);
}

static void test_reduce_semantics(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    int32_t v[] = {INT32_MAX, 1, 2, -4, 5, -6};
    pare_tensor *x = mk(PARE_DT_INT32, 2, d, v);
    /* ReduceSum-13 takes axes as an input; no axes: everything */
    const pare_tensor *in[] = {x};
    pare_attr kd = attr_int("keepdims", 0);
    pare_tensor *o = ok1("ReduceSum", 13, &kd, 1, in, 1);
    assert_int_equal(o->rank, 0);
    assert_int_equal(((int32_t *)o->data)[0], (int32_t)((uint32_t)INT32_MAX + 1u + 2u - 4u + 5u - 6u));
    pare_tensor_free(o);
    /* empty axes with noop_with_empty_axes: identity */
    pare_tensor *e = mk1(PARE_DT_INT64, 0, NULL);
    const pare_tensor *in2[] = {x, e};
    pare_attr noop = attr_int("noop_with_empty_axes", 1);
    o = ok1("ReduceSum", 13, &noop, 1, in2, 2);
    assert_memory_equal(o->data, v, sizeof v);
    pare_tensor_free(o);
    /* before opset 18 other reductions take axes as an attribute */
    int64_t ax[] = {-1};
    pare_attr aa[] = {attr_ints("axes", ax, 1), attr_int("keepdims", 1)};
    o = ok1("ReduceMin", 13, aa, 2, in, 1);
    check_dims(o, 2, (int64_t[]){2, 1});
    assert_int_equal(((int32_t *)o->data)[0], 1);
    assert_int_equal(((int32_t *)o->data)[1], -6);
    pare_tensor_free(o);
    o = ok1("ReduceL1", 13, aa, 2, in, 1);
    assert_int_equal(((int32_t *)o->data)[1], 15);
    pare_tensor_free(o);
    /* out of range axis */
    int64_t bad[] = {2};
    pare_tensor *bt = ints(1, bad);
    in2[1] = bt;
    pare_error err;
    assert_int_not_equal(run1("ReduceSum", 13, NULL, 0, in2, 2, &o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "axis 2 out of range [-2, 2)"));
    free_all((pare_tensor *[]){bt, e, x}, 3);

    /* bool ReduceMax (opset 20) and a parallel float reduction over the outer axis */
    uint8_t b[] = {0, 1, 0, 0, 0, 0};
    pare_tensor *xb = mk(PARE_DT_BOOL, 2, d, b);
    pare_tensor *a1 = ints(1, (int64_t[]){1});
    const pare_tensor *in3[] = {xb, a1};
    o = ok1("ReduceMax", 20, NULL, 0, in3, 2);
    assert_int_equal(((uint8_t *)o->data)[0], 1);
    assert_int_equal(((uint8_t *)o->data)[1], 0);
    pare_tensor_free(o);
    pare_tensor_free(xb);

    int64_t bd[] = {300, 257};
    pare_tensor *big = iota_f(2, bd);
    pare_tensor *a0 = ints(1, (int64_t[]){0});
    const pare_tensor *in4[] = {big, a0};
    pare_tensor *outs[1];
    assert_int_equal(run_n("ReduceMean", 18, NULL, 0, in4, 2, 1, 4, outs, &err), PARE_OK);
    for (int j = 0; j < 257; j++)
        assert_float_equal(((float *)outs[0]->data)[j], 149.5 * 257 + j, 1e-2);
    pare_tensor_free(outs[0]);
    in4[1] = a1;
    assert_int_equal(run_n("ReduceLogSumExp", 18, NULL, 0, in4, 2, 1, 4, outs, &err), PARE_OK);
    /* log(sum exp(x)) over a row of 257 consecutive values without overflow */
    double row = 299 * 257.0, want = row + 256 + log((1 - exp(-257.0)) / (1 - exp(-1.0)));
    assert_float_equal(((float *)outs[0]->data)[299], want, 0.05);
    pare_tensor_free(outs[0]);
    free_all((pare_tensor *[]){a0, a1, big}, 3);

    /* few output rows and a long inner run: the run is split in blocks */
    int64_t wd[] = {3, 10001};
    pare_tensor *wide = iota_f(2, wd);
    pare_tensor *z = ints(1, (int64_t[]){0});
    const pare_tensor *in5[] = {wide, z};
    pare_attr kd0 = attr_int("keepdims", 0);
    assert_int_equal(run_n("ReduceMax", 18, &kd0, 1, in5, 2, 1, 4, outs, &err), PARE_OK);
    check_dims(outs[0], 1, (int64_t[]){10001});
    for (int j = 0; j < 10001; j++)
        assert_float_equal(((float *)outs[0]->data)[j], 2 * 10001 + j, 0);
    pare_tensor_free(outs[0]);
    free_all((pare_tensor *[]){z, wide}, 2);
}

static void test_arg_topk(void **state)
{
    (void)state;
    float v[] = {3, 1, 3, 2, 1, 3};
    pare_tensor *x = mk1(PARE_DT_FLOAT, 6, v);
    const pare_tensor *in[] = {x};
    pare_attr a[] = {attr_int("select_last_index", 1), attr_int("keepdims", 0)};
    pare_tensor *o = ok1("ArgMax", 13, a, 2, in, 1);
    assert_int_equal(o->rank, 0);
    assert_int_equal(((int64_t *)o->data)[0], 5);
    pare_tensor_free(o);
    o = ok1("ArgMin", 13, a + 1, 1, in, 1);
    assert_int_equal(((int64_t *)o->data)[0], 1);
    pare_tensor_free(o);

    /* TopK: ties keep the lower index first, largest and smallest */
    int64_t k = 4;
    pare_tensor *kt = ints(1, &k);
    const pare_tensor *in2[] = {x, kt};
    pare_tensor *outs[2];
    pare_error err;
    assert_int_equal(run_n("TopK", 11, NULL, 0, in2, 2, 2, 1, outs, &err), PARE_OK);
    const float wv[] = {3, 3, 3, 2};
    const int64_t wi[] = {0, 2, 5, 3};
    assert_memory_equal(outs[0]->data, wv, sizeof wv);
    assert_memory_equal(outs[1]->data, wi, sizeof wi);
    free_all(outs, 2);
    pare_attr sm = attr_int("largest", 0);
    assert_int_equal(run_n("TopK", 11, &sm, 1, in2, 2, 2, 1, outs, &err), PARE_OK);
    const int64_t wi2[] = {1, 4, 3, 0};
    assert_memory_equal(outs[1]->data, wi2, sizeof wi2);
    free_all(outs, 2);
    /* k too large */
    int64_t k7 = 7;
    pare_tensor *k7t = ints(1, &k7);
    in2[1] = k7t;
    assert_int_not_equal(run_n("TopK", 11, NULL, 0, in2, 2, 2, 1, outs, &err), PARE_OK);
    /* opset 1: k attribute */
    pare_attr ka = attr_int("k", 2);
    assert_int_equal(run_n("TopK", 1, &ka, 1, in, 1, 2, 1, outs, &err), PARE_OK);
    assert_int_equal(outs[1]->dims[0], 2);
    free_all(outs, 2);
    free_all((pare_tensor *[]){kt, k7t, x}, 3);
}

static void test_unique(void **state)
{
    (void)state;
    float v[] = {2, 1, 1, 3, 4, 3};
    pare_tensor *x = mk1(PARE_DT_FLOAT, 6, v);
    const pare_tensor *in[] = {x};
    pare_attr ns = attr_int("sorted", 0);
    pare_tensor *o[4];
    pare_error err;
    assert_int_equal(run_n("Unique", 11, &ns, 1, in, 1, 4, 1, o, &err), PARE_OK);
    const float y[] = {2, 1, 3, 4};
    const int64_t idx[] = {0, 1, 3, 4}, inv[] = {0, 1, 1, 2, 3, 2}, cnt[] = {1, 2, 2, 1};
    assert_memory_equal(o[0]->data, y, sizeof y);
    assert_memory_equal(o[1]->data, idx, sizeof idx);
    assert_memory_equal(o[2]->data, inv, sizeof inv);
    assert_memory_equal(o[3]->data, cnt, sizeof cnt);
    free_all(o, 4);
    assert_int_equal(run_n("Unique", 11, NULL, 0, in, 1, 4, 1, o, &err), PARE_OK);
    const float ys[] = {1, 2, 3, 4};
    const int64_t invs[] = {1, 0, 0, 2, 3, 2};
    assert_memory_equal(o[0]->data, ys, sizeof ys);
    assert_memory_equal(o[2]->data, invs, sizeof invs);
    free_all(o, 4);
    pare_tensor_free(x);

    /* rows of a matrix, strings */
    const char *sv[] = {"b", "a", "b", "a", "a", "c"};
    int64_t d[] = {3, 2};
    pare_tensor *s = strings(2, d, sv);
    pare_attr ax = attr_int("axis", 0);
    const pare_tensor *in2[] = {s};
    assert_int_equal(run_n("Unique", 11, &ax, 1, in2, 1, 4, 1, o, &err), PARE_OK);
    check_dims(o[0], 2, (int64_t[]){2, 2});
    check_str(o[0], 0, "a");
    check_str(o[0], 1, "c");
    check_str(o[0], 2, "b");
    const int64_t c2[] = {1, 2};
    assert_memory_equal(o[3]->data, c2, sizeof c2);
    free_all(o, 4);
    pare_tensor_free(s);
}

/* ---- Split, Concat ---- */

static void test_split(void **state)
{
    (void)state;
    int64_t d[] = {7};
    pare_tensor *x = iota_f(1, d);
    const pare_tensor *in[] = {x};
    pare_attr no = attr_int("num_outputs", 3);
    pare_tensor *o[3];
    pare_error err;
    assert_int_equal(run_n("Split", 18, &no, 1, in, 1, 3, 1, o, &err), PARE_OK);
    assert_int_equal(o[0]->dims[0], 3);
    assert_int_equal(o[1]->dims[0], 3);
    assert_int_equal(o[2]->dims[0], 1);
    assert_float_equal(((float *)o[2]->data)[0], 6, 0);
    free_all(o, 3);
    /* opset 13 without split needs an even division */
    assert_int_not_equal(run_n("Split", 13, NULL, 0, in, 1, 3, 1, o, &err), PARE_OK);
    int64_t sp[] = {2, 0, 5};
    pare_tensor *st = ints(3, sp);
    const pare_tensor *in2[] = {x, st};
    assert_int_equal(run_n("Split", 13, NULL, 0, in2, 2, 3, 1, o, &err), PARE_OK);
    assert_int_equal(o[1]->dims[0], 0);
    assert_float_equal(((float *)o[2]->data)[0], 2, 0);
    free_all(o, 3);
    int64_t bad[] = {2, 2, 2};
    pare_tensor *bt = ints(3, bad);
    in2[1] = bt;
    assert_int_not_equal(run_n("Split", 13, NULL, 0, in2, 2, 3, 1, o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "sum to 6"));
    free_all((pare_tensor *[]){st, bt, x}, 3);

    /* Concat checks shapes and dtypes */
    int64_t da[] = {2, 3}, db[] = {2, 4}, dc[] = {3, 3};
    pare_tensor *a = iota_f(2, da), *b = iota_f(2, db), *c = iota_f(2, dc);
    pare_attr ax = attr_int("axis", -1);
    const pare_tensor *in3[] = {a, b};
    pare_tensor *cat = ok1("Concat", 13, &ax, 1, in3, 2);
    check_dims(cat, 2, (int64_t[]){2, 7});
    assert_float_equal(((float *)cat->data)[7], 3, 0);
    assert_float_equal(((float *)cat->data)[3], 0, 0);
    pare_tensor_free(cat);
    in3[1] = c;
    assert_int_not_equal(run1("Concat", 13, &ax, 1, in3, 2, &cat, &err), PARE_OK);
    free_all((pare_tensor *[]){a, b, c}, 3);

    /* one image along channels: each input is one long row, copied in
     * pieces by several threads */
    int64_t dl[] = {1, 64, 32, 32}, dm[] = {1, 96, 32, 32};
    pare_tensor *l = iota_f(4, dl), *m = iota_f(4, dm);
    pare_attr ax1 = attr_int("axis", 1);
    const pare_tensor *in4[] = {l, m};
    pare_tensor *o4[1];
    assert_int_equal(run_n("Concat", 13, &ax1, 1, in4, 2, 1, 3, o4, &err), PARE_OK);
    check_dims(o4[0], 4, (int64_t[]){1, 160, 32, 32});
    const float *of = o4[0]->data;
    for (int64_t i = 0; i < 65536; i++)
        assert_true(of[i] == (float)i);
    for (int64_t i = 0; i < 98304; i++)
        assert_true(of[65536 + i] == (float)i);
    free_all((pare_tensor *[]){o4[0], l, m}, 3);
}

/* ---- 4-bit types ---- */

static void test_int4(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    pare_tensor *x = mk(PARE_DT_INT4, 2, d, NULL);
    const int vals[] = {-8, -1, 0, 1, 5, 7};
    for (int i = 0; i < 6; i++)
        pare_int4_set(x->data, (size_t)i, vals[i]);
    const pare_tensor *in[] = {x};
    pare_tensor *o = ok1("Transpose", 21, NULL, 0, in, 1);
    assert_int_equal(o->dtype, PARE_DT_INT4);
    check_dims(o, 2, (int64_t[]){3, 2});
    const int want[] = {-8, 1, -1, 5, 0, 7};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pare_int4_get(o->data, (size_t)i, true), want[i]);
    pare_tensor_free(o);
    pare_attr ax = attr_int("axis", 1);
    const pare_tensor *in2[] = {x, x};
    o = ok1("Concat", 13, &ax, 1, in2, 2);
    check_dims(o, 2, (int64_t[]){2, 6});
    assert_int_equal(pare_int4_get(o->data, 3, true), -8);
    assert_int_equal(pare_int4_get(o->data, 11, true), 7);
    pare_tensor_free(o);
    /* Unique orders int4 values as signed numbers */
    pare_tensor *uo[4];
    pare_error err;
    assert_int_equal(run_n("Unique", 11, NULL, 0, in, 1, 4, 1, uo, &err), PARE_OK);
    assert_int_equal(uo[0]->dtype, PARE_DT_INT4);
    assert_int_equal(uo[0]->dims[0], 6);
    assert_int_equal(pare_int4_get(uo[0]->data, 0, true), -8);
    assert_int_equal(pare_int4_get(uo[0]->data, 1, true), -1);
    assert_int_equal(pare_int4_get(uo[0]->data, 5, true), 7);
    free_all(uo, 4);
    /* Reshape copies the packed bytes as they are */
    int64_t s[] = {6};
    pare_tensor *sh = ints(1, s);
    const pare_tensor *in3[] = {x, sh};
    o = ok1("Reshape", 21, NULL, 0, in3, 2);
    assert_memory_equal(o->data, x->data, x->nbytes);
    pare_tensor_free(o);
    free_all((pare_tensor *[]){sh, x}, 2);
}

/* ---- generators and small ops ---- */

static void test_generators(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *o;
    /* Range: int count with a negative delta, delta zero is an error */
    int32_t s = 10, l = 4, dl = -3, z = 0;
    pare_tensor *ts = mk(PARE_DT_INT32, 0, NULL, &s), *tl = mk(PARE_DT_INT32, 0, NULL, &l);
    pare_tensor *td = mk(PARE_DT_INT32, 0, NULL, &dl), *tz = mk(PARE_DT_INT32, 0, NULL, &z);
    const pare_tensor *in[] = {ts, tl, td};
    o = ok1("Range", 11, NULL, 0, in, 3);
    const int32_t wr[] = {10, 7};
    assert_int_equal(o->dims[0], 2);
    assert_memory_equal(o->data, wr, sizeof wr);
    pare_tensor_free(o);
    in[2] = tz;
    assert_int_not_equal(run1("Range", 11, NULL, 0, in, 3, &o, &err), PARE_OK);
    free_all((pare_tensor *[]){ts, tl, td, tz}, 4);

    /* OneHot with a negative index and one out of range */
    int64_t idx[] = {-1, 0, 9};
    float depth = 3, vals[] = {0, 5};
    pare_tensor *it = ints(3, idx), *dt = mk(PARE_DT_FLOAT, 0, NULL, &depth);
    pare_tensor *vt = mk1(PARE_DT_FLOAT, 2, vals);
    const pare_tensor *in2[] = {it, dt, vt};
    o = ok1("OneHot", 11, NULL, 0, in2, 3);
    check_dims(o, 2, (int64_t[]){3, 3});
    const float wo[] = {0, 0, 5, 5, 0, 0, 0, 0, 0};
    assert_memory_equal(o->data, wo, sizeof wo);
    pare_tensor_free(o);
    free_all((pare_tensor *[]){it, dt, vt}, 3);

    /* EyeLike with k and dtype; Trilu lower with k = -1 */
    int64_t d[] = {3, 4};
    pare_tensor *x = iota_f(2, d);
    pare_attr ea[] = {attr_int("k", 1), attr_int("dtype", PARE_DT_INT32)};
    const pare_tensor *in3[] = {x};
    o = ok1("EyeLike", 9, ea, 2, in3, 1);
    const int32_t we[] = {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    assert_memory_equal(o->data, we, sizeof we);
    pare_tensor_free(o);
    int64_t km = -1;
    pare_tensor *kt = ints(1, &km);
    pare_attr up = attr_int("upper", 0);
    const pare_tensor *in4[] = {x, kt};
    o = ok1("Trilu", 14, &up, 1, in4, 2);
    const float wt[] = {0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0};
    assert_memory_equal(o->data, wt, sizeof wt);
    pare_tensor_free(o);
    pare_tensor_free(kt);

    /* NonZero, Compress */
    o = ok1("NonZero", 13, NULL, 0, in3, 1);
    check_dims(o, 2, (int64_t[]){2, 11});
    assert_int_equal(((int64_t *)o->data)[0], 0);  /* row of (0,1) */
    assert_int_equal(((int64_t *)o->data)[11], 1); /* its column */
    pare_tensor_free(o);
    uint8_t cond[] = {0, 1, 1};
    pare_tensor *ct = mk1(PARE_DT_BOOL, 3, cond);
    pare_attr ax0 = attr_int("axis", 0);
    const pare_tensor *in5[] = {x, ct};
    o = ok1("Compress", 11, &ax0, 1, in5, 2);
    check_dims(o, 2, (int64_t[]){2, 4});
    assert_float_equal(((float *)o->data)[0], 4, 0);
    pare_tensor_free(o);
    o = ok1("Compress", 11, NULL, 0, in5, 2);
    check_dims(o, 1, (int64_t[]){2});
    assert_float_equal(((float *)o->data)[1], 2, 0);
    pare_tensor_free(o);
    pare_tensor_free(ct);

    /* Constant value_strings, ConstantOfShape int32 */
    pare_string ss[] = {{(char *)"xy", 2}, {(char *)"", 0}};
    pare_attr cs = {0};
    cs.name = (char *)"value_strings";
    cs.type = PARE_ATTR_STRINGS;
    cs.strings = ss;
    cs.n = 2;
    o = ok1("Constant", 13, &cs, 1, NULL, 0);
    check_str(o, 0, "xy");
    assert_ptr_not_equal(((pare_string *)o->data)[0].data, ss[0].data);
    pare_tensor_free(o);
    int32_t seven = 7;
    pare_tensor *val = mk(PARE_DT_INT32, 1, (int64_t[]){1}, &seven);
    pare_attr va = {0};
    va.name = (char *)"value";
    va.type = PARE_ATTR_TENSOR;
    va.t = val;
    pare_tensor *shp = ints(2, (int64_t[]){2, 2});
    const pare_tensor *in6[] = {shp};
    o = ok1("ConstantOfShape", 9, &va, 1, in6, 1);
    const int32_t w7[] = {7, 7, 7, 7};
    assert_memory_equal(o->data, w7, sizeof w7);
    pare_tensor_free(o);
    free_all((pare_tensor *[]){val, shp, x}, 3);
}

static void test_cumsum_tile_expand(void **state)
{
    (void)state;
    int32_t v[] = {INT32_MAX, 1, 2};
    pare_tensor *x = mk1(PARE_DT_INT32, 3, v);
    int64_t a = 0;
    pare_tensor *at = mk(PARE_DT_INT64, 0, NULL, &a);
    const pare_tensor *in[] = {x, at};
    pare_attr ex[] = {attr_int("exclusive", 1), attr_int("reverse", 1)};
    pare_tensor *o = ok1("CumSum", 14, ex, 2, in, 2);
    const int32_t w[] = {3, 2, 0};
    assert_memory_equal(o->data, w, sizeof w);
    pare_tensor_free(o);
    o = ok1("CumSum", 14, NULL, 0, in, 2); /* wraps, no signed overflow */
    assert_int_equal(((int32_t *)o->data)[1], INT32_MIN);
    pare_tensor_free(o);

    /* Tile and Expand agree with a naive loop */
    int64_t d[] = {2, 1, 3};
    pare_tensor *f = iota_f(3, d);
    int64_t rep[] = {2, 3, 1};
    pare_tensor *rt = ints(3, rep);
    const pare_tensor *in2[] = {f, rt};
    o = ok1("Tile", 13, NULL, 0, in2, 2);
    check_dims(o, 3, (int64_t[]){4, 3, 3});
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                assert_float_equal(((float *)o->data)[(i * 3 + j) * 3 + k], (i % 2) * 3 + k, 0);
    pare_tensor_free(o);
    int64_t es[] = {2, 1, 4, 1};
    pare_tensor *et = ints(4, es);
    in2[1] = et;
    o = ok1("Expand", 13, NULL, 0, in2, 2);
    check_dims(o, 4, (int64_t[]){2, 2, 4, 3});
    assert_float_equal(((float *)o->data)[(((1 * 2 + 1) * 4 + 3) * 3) + 2], 5, 0);
    pare_tensor_free(o);
    int64_t bad[] = {2, 2};
    pare_tensor *bt = ints(2, bad);
    in2[1] = bt;
    pare_error err;
    assert_int_not_equal(run1("Expand", 13, NULL, 0, in2, 2, &o, &err), PARE_OK);
    free_all((pare_tensor *[]){bt, et, rt, f, at, x}, 6);
}

/* ---- Resize ---- */

static void test_resize_ints(void **state)
{
    (void)state;
    /* nearest copies int64 values exactly (no trip through double) */
    int64_t d[] = {1, 2};
    int64_t v[] = {INT64_MAX - 1, INT64_MIN + 3};
    pare_tensor *x = mk(PARE_DT_INT64, 2, d, v);
    float sc[] = {1, 2};
    pare_tensor *st = mk1(PARE_DT_FLOAT, 2, sc);
    const pare_tensor *in[] = {x, NULL, st};
    pare_attr m = attr_str("mode", "nearest");
    pare_tensor *o = ok1("Resize", 19, &m, 1, in, 3);
    check_dims(o, 2, (int64_t[]){1, 4});
    assert_true(((int64_t *)o->data)[0] == INT64_MAX - 1);
    assert_true(((int64_t *)o->data)[3] == INT64_MIN + 3);
    pare_tensor_free(o);
    pare_tensor_free(x);

    /* linear on uint8 rounds to nearest and saturates */
    uint8_t u[] = {0, 255, 100, 101};
    pare_tensor *xu = mk(PARE_DT_UINT8, 2, (int64_t[]){1, 4}, u);
    int64_t sz[] = {1, 7};
    pare_tensor *szt = ints(2, sz);
    const pare_tensor *in2[] = {xu, NULL, NULL, szt};
    pare_attr lm[] = {attr_str("mode", "linear"), attr_str("coordinate_transformation_mode",
                                                           "align_corners")};
    o = ok1("Resize", 19, lm, 2, in2, 4);
    check_dims(o, 2, (int64_t[]){1, 7});
    const uint8_t *r = o->data;
    assert_int_equal(r[0], 0);
    assert_int_equal(r[1], 128); /* 127.5 rounds to even */
    assert_int_equal(r[2], 255);
    assert_int_equal(r[6], 101);
    pare_tensor_free(o);

    /* both scales and sizes: an error */
    const pare_tensor *in3[] = {xu, NULL, st, szt};
    pare_error err;
    assert_int_not_equal(run1("Resize", 19, lm, 2, in3, 4, &o, &err), PARE_OK);
    free_all((pare_tensor *[]){szt, st, xu}, 3);
}

/* ---- misaligned inputs (initializers inside a model file) ---- */

static void test_misaligned(void **state)
{
    (void)state;
    char *buf = malloc(8 * 6 + 1);
    double v[] = {1, 5, 2, 8, 3, 4};
    memcpy(buf + 1, v, sizeof v);
    pare_tensor *x;
    pare_error err;
    assert_int_equal(pare_tensor_wrap(NULL, PARE_DT_DOUBLE, 2, (int64_t[]){2, 3}, buf + 1,
                                      sizeof v, &x, &err), PARE_OK);
    char *ib = malloc(8 * 2 + 1);
    int64_t iv[] = {1, 0};
    memcpy(ib + 1, iv, sizeof iv);
    pare_tensor *it;
    assert_int_equal(pare_tensor_wrap(NULL, PARE_DT_INT64, 1, (int64_t[]){2}, ib + 1, sizeof iv,
                                      &it, &err), PARE_OK);
    const pare_tensor *in[] = {x, it};
    pare_tensor *o = ok1("Gather", 13, NULL, 0, in, 2);
    const double wg[] = {8, 3, 4, 1, 5, 2};
    assert_memory_equal(o->data, wg, sizeof wg);
    pare_tensor_free(o);
    pare_attr kd = attr_int("keepdims", 0);
    o = ok1("ReduceMax", 13, &kd, 1, in, 1);
    assert_float_equal(((double *)o->data)[0], 8, 0);
    pare_tensor_free(o);
    pare_tensor *outs[2];
    int64_t k = 1;
    pare_tensor *kt = ints(1, &k);
    const pare_tensor *in2[] = {x, kt};
    assert_int_equal(run_n("TopK", 11, NULL, 0, in2, 2, 2, 1, outs, &err), PARE_OK);
    assert_float_equal(((double *)outs[0]->data)[1], 8, 0);
    free_all(outs, 2);
    free_all((pare_tensor *[]){kt, it, x}, 3);
    free(buf);
    free(ib);
}

static void test_depth_space(void **state)
{
    (void)state;
    int64_t d[] = {1, 8, 2, 3};
    pare_tensor *x = iota_f(4, d);
    pare_attr b[] = {attr_int("blocksize", 2), attr_str("mode", "CRD")};
    const pare_tensor *in[] = {x};
    pare_tensor *o = ok1("DepthToSpace", 13, b, 2, in, 1);
    check_dims(o, 4, (int64_t[]){1, 2, 4, 6});
    /* CRD: out[c, h*2+i, w*2+j] = in[c*4 + i*2 + j, h, w] */
    for (int c = 0; c < 2; c++)
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 6; w++) {
                int ic = c * 4 + (h % 2) * 2 + (w % 2);
                assert_float_equal(((float *)o->data)[(c * 4 + h) * 6 + w],
                                   (ic * 2 + h / 2) * 3 + w / 2, 0);
            }
    /* SpaceToDepth undoes DCR DepthToSpace */
    pare_tensor *o2 = ok1("DepthToSpace", 13, b, 1, in, 1);
    const pare_tensor *in2[] = {o2};
    pare_tensor *back = ok1("SpaceToDepth", 13, b, 1, in2, 1);
    assert_memory_equal(back->data, x->data, x->nbytes);
    free_all((pare_tensor *[]){o, o2, back, x}, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_squeeze_unsqueeze),
        cmocka_unit_test(test_transpose_tiled),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_gather_errors),
        cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_reduce_empty),
        cmocka_unit_test(test_reduce_semantics),
        cmocka_unit_test(test_arg_topk),
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_int4),
        cmocka_unit_test(test_generators),
        cmocka_unit_test(test_cumsum_tile_expand),
        cmocka_unit_test(test_resize_ints),
        cmocka_unit_test(test_misaligned),
        cmocka_unit_test(test_depth_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
