/* test_quant.c - the quantization kernels run directly through their kernel
 * records (no session): QuantizeLinear rounding (half to even), saturation,
 * per-axis and blocked scales, packed int4, float8; DequantizeLinear;
 * DynamicQuantizeLinear; the integer matmuls and convs against naive loops
 * (per-row/column zero points, 32-bit wrap-around); MatMulNBits against a
 * naive dequantize-then-multiply; bad shapes fail cleanly; and a few checks
 * of the recurrent kernels (LSTM sequence_lens, GRU reverse). */
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

#define MAX_OUT 4

typedef struct harness {
    pare_tensor *out[MAX_OUT];
} harness;

static pare_status h_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                           pare_tensor **out, pare_error *err)
{
    harness *h = k->exec;
    if (i >= MAX_OUT)
        return pare_error_set(err, PARE_ERR_ARG, "output %zu", i);
    pare_tensor_free(h->out[i]);
    h->out[i] = NULL;
    pare_status st = pare_tensor_new(NULL, dtype, rank, dims, out, err);
    if (st == PARE_OK)
        h->out[i] = *out;
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

static pare_attr attr_ints(const char *name, int64_t *v, size_t n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INTS;
    a.ints = v;
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

/* Runs domain/op at opset with n_out outputs on a pool of `threads`; outs
 * receives the outputs (caller frees) on success. */
static pare_status run_opd(const char *domain, const char *op, int64_t opset, pare_attr *attrs,
                           size_t n_attrs, const pare_tensor *const *in, size_t n_in,
                           size_t n_out, int threads, pare_tensor **outs, pare_error *err)
{
    for (size_t i = 0; i < n_out; i++)
        outs[i] = NULL;
    const pare_kernel *kr = pare_kernel_find(domain, op, opset);
    if (!kr)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no kernel for %s-%lld", op,
                              (long long)opset);
    pare_node node = {0};
    node.op_type = (char *)op;
    node.domain = (char *)domain;
    node.attrs = attrs;
    node.n_attrs = n_attrs;
    void *state = NULL;
    pare_status st = kr->init ? kr->init(&node, opset, &state, err) : PARE_OK;
    if (st)
        return st;
    pare_threadpool *pool = pare_threadpool_new(threads);
    assert_non_null(pool);
    harness h = {{0}};
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
        if (!st && i < n_out)
            outs[i] = h.out[i];
        else
            pare_tensor_free(h.out[i]);
    }
    return st;
}

/* Runs an ai.onnx op with one output and fails the test on error. */
static pare_tensor *run1(const char *op, int64_t opset, pare_attr *attrs, size_t n_attrs,
                         const pare_tensor *const *in, size_t n_in)
{
    pare_tensor *out;
    pare_error err;
    if (run_opd("", op, opset, attrs, n_attrs, in, n_in, 1, 4, &out, &err))
        fail_msg("%s failed: %s", op, err.msg);
    return out;
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

static pare_tensor *mks(int dtype, const void *data)
{
    return mk(dtype, 0, NULL, data);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* ---- QuantizeLinear ---- */

static void test_quantize_round_half_even(void **state)
{
    (void)state;
    float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, 1000.0f, -1000.0f};
    float s = 1.0f;
    int8_t zp = 0;
    pare_tensor *tx = mk1(PARE_DT_FLOAT, 9, x), *ts = mks(PARE_DT_FLOAT, &s);
    pare_tensor *tz = mks(PARE_DT_INT8, &zp);
    const pare_tensor *in[3] = {tx, ts, tz};
    pare_tensor *o = run1("QuantizeLinear", 21, NULL, 0, in, 3);
    assert_int_equal(o->dtype, PARE_DT_INT8);
    const int8_t want[] = {0, 2, 2, 0, -2, -2, 3, 127, -128};
    assert_memory_equal(o->data, want, sizeof want);
    pare_tensor_free(o);
    /* no zero point: uint8, saturating at 0 */
    o = run1("QuantizeLinear", 13, NULL, 0, in, 2);
    assert_int_equal(o->dtype, PARE_DT_UINT8);
    const uint8_t wantu[] = {0, 2, 2, 0, 0, 0, 3, 255, 0};
    assert_memory_equal(o->data, wantu, sizeof wantu);
    pare_tensor_free(o);
    /* output_dtype without a zero point */
    pare_attr od = attr_int("output_dtype", PARE_DT_INT16);
    o = run1("QuantizeLinear", 21, &od, 1, in, 2);
    assert_int_equal(o->dtype, PARE_DT_INT16);
    assert_int_equal(((int16_t *)o->data)[7], 1000);
    assert_int_equal(((int16_t *)o->data)[8], -1000);
    pare_tensor_free(o);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
    pare_tensor_free(tz);
}

static void test_quantize_per_axis_and_blocked(void **state)
{
    (void)state;
    /* x [2, 5]; per axis 1: scale per column */
    float x[10] = {1, 2, 3, 4, 5, -1, -2, -3, -4, -5};
    float sc[5] = {1, 2, 4, 8, 16};
    uint8_t zp[5] = {10, 20, 30, 40, 50};
    int64_t xd[2] = {2, 5};
    pare_tensor *tx = mk(PARE_DT_FLOAT, 2, xd, x), *ts = mk1(PARE_DT_FLOAT, 5, sc);
    pare_tensor *tz = mk1(PARE_DT_UINT8, 5, zp);
    const pare_tensor *in[3] = {tx, ts, tz};
    pare_attr ax = attr_int("axis", 1);
    pare_tensor *o = run1("QuantizeLinear", 21, &ax, 1, in, 3);
    const uint8_t want[10] = {11, 21, 31, 40, 50, 9, 19, 29, 40, 50};
    assert_memory_equal(o->data, want, sizeof want);
    /* and back */
    const pare_tensor *din[3] = {o, ts, tz};
    pare_tensor *d = run1("DequantizeLinear", 21, &ax, 1, din, 3);
    assert_int_equal(d->dtype, PARE_DT_FLOAT);
    assert_float_equal(((float *)d->data)[0], 1.0f, 0);
    assert_float_equal(((float *)d->data)[3], 0.0f, 0);
    assert_float_equal(((float *)d->data)[6], -2.0f, 0);
    pare_tensor_free(d);
    pare_tensor_free(o);
    pare_tensor_free(ts);
    pare_tensor_free(tz);

    /* blocked along axis 1, block 2: 3 blocks, the last one ragged */
    float bs[6] = {1, 2, 4, 0.5f, 0.25f, 8};
    int64_t sd[2] = {2, 3};
    ts = mk(PARE_DT_FLOAT, 2, sd, bs);
    pare_attr at[2] = {attr_int("axis", 1), attr_int("block_size", 2)};
    pare_attr odt = attr_int("output_dtype", PARE_DT_INT8);
    pare_attr at3[3] = {at[0], at[1], odt};
    const pare_tensor *bin[2] = {tx, ts};
    o = run1("QuantizeLinear", 21, at3, 3, bin, 2);
    /* 3/2 = 1.5 -> 2 (even), 5/4 = 1.25 -> 1, -5/8 -> -1 */
    const int8_t wantb2[10] = {1, 2, 2, 2, 1, -2, -4, -12, -16, -1};
    for (int i = 0; i < 10; i++)
        assert_int_equal(((int8_t *)o->data)[i], wantb2[i]);
    pare_tensor_free(o);
    /* a scale of the wrong blocked shape fails without crashing */
    int64_t bad[2] = {2, 2};
    pare_tensor *tbad = mk(PARE_DT_FLOAT, 2, bad, bs);
    const pare_tensor *badin[2] = {tx, tbad};
    pare_error err;
    assert_int_not_equal(run_opd("", "QuantizeLinear", 21, at, 2, badin, 2, 1, 1, &o, &err),
                         PARE_OK);
    assert_null(o);
    pare_tensor_free(tbad);
    pare_tensor_free(ts);
    pare_tensor_free(tx);
}

static void test_quantize_int4_packed(void **state)
{
    (void)state;
    float x[5] = {-9, -1, 0, 6.5f, 100};
    float s = 1.0f;
    pare_tensor *tx = mk1(PARE_DT_FLOAT, 5, x), *ts = mks(PARE_DT_FLOAT, &s);
    pare_attr od = attr_int("output_dtype", PARE_DT_INT4);
    const pare_tensor *in[2] = {tx, ts};
    pare_tensor *o = run1("QuantizeLinear", 21, &od, 1, in, 2);
    assert_int_equal(o->dtype, PARE_DT_INT4);
    assert_int_equal(o->nbytes, 3);
    const int want[5] = {-8, -1, 0, 6, 7};
    for (int i = 0; i < 5; i++)
        assert_int_equal(pare_int4_get(o->data, (size_t)i, true), want[i]);
    /* low nibble first */
    assert_int_equal(((uint8_t *)o->data)[0], 0xF8);
    /* dequantize the packed tensor */
    const pare_tensor *din[2] = {o, ts};
    pare_tensor *d = run1("DequantizeLinear", 21, NULL, 0, din, 2);
    for (int i = 0; i < 5; i++)
        assert_float_equal(((float *)d->data)[i], (float)want[i], 0);
    pare_tensor_free(d);
    pare_tensor_free(o);
    /* uint4 with a zero point, many elements: the parallel path on odd chunks */
    int64_t n = 40001;
    pare_tensor *big = mk1(PARE_DT_FLOAT, n, NULL);
    for (int64_t i = 0; i < n; i++)
        ((float *)big->data)[i] = (float)(i % 19) - 4.0f;
    uint8_t zp4 = 3;
    pare_tensor *tz = mks(PARE_DT_UINT4, &zp4);
    const pare_tensor *bin[3] = {big, ts, tz};
    o = run1("QuantizeLinear", 21, NULL, 0, bin, 3);
    for (int64_t i = 0; i < n; i++) {
        int v = (int)(i % 19) - 4 + 3;
        v = v < 0 ? 0 : v > 15 ? 15 : v;
        assert_int_equal(pare_int4_get(o->data, (size_t)i, false), v);
    }
    pare_tensor_free(o);
    pare_tensor_free(big);
    pare_tensor_free(tz);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
}

static void test_quantize_float8(void **state)
{
    (void)state;
    float x[3] = {1.0f, 1000.0f, -1000.0f};
    float s = 1.0f;
    uint8_t zp = 0;
    pare_tensor *tx = mk1(PARE_DT_FLOAT, 3, x), *ts = mks(PARE_DT_FLOAT, &s);
    pare_tensor *tz = mks(PARE_DT_FLOAT8E4M3FN, &zp);
    const pare_tensor *in[3] = {tx, ts, tz};
    pare_tensor *o = run1("QuantizeLinear", 19, NULL, 0, in, 3);
    assert_int_equal(o->dtype, PARE_DT_FLOAT8E4M3FN);
    assert_float_equal(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, ((uint8_t *)o->data)[0]), 1.0f, 0);
    assert_float_equal(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, ((uint8_t *)o->data)[1]), 448.0f, 0);
    assert_float_equal(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, ((uint8_t *)o->data)[2]), -448.0f, 0);
    pare_tensor_free(o);
    pare_attr sat = attr_int("saturate", 0);
    o = run1("QuantizeLinear", 19, &sat, 1, in, 3);
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, ((uint8_t *)o->data)[1])));
    pare_tensor_free(o);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
    pare_tensor_free(tz);
}

static void test_quantize_float16_input(void **state)
{
    (void)state;
    /* x / scale rounds in float16 before rint, as numpy does */
    uint16_t x[2] = {pare_f32_to_f16(2.5f), pare_f32_to_f16(-7.0f)};
    uint16_t s = pare_f32_to_f16(2.0f);
    pare_tensor *tx = mk1(PARE_DT_FLOAT16, 2, x), *ts = mks(PARE_DT_FLOAT16, &s);
    pare_attr od = attr_int("output_dtype", PARE_DT_INT8);
    const pare_tensor *in[2] = {tx, ts};
    pare_tensor *o = run1("QuantizeLinear", 21, &od, 1, in, 2);
    assert_int_equal(((int8_t *)o->data)[0], 1); /* 1.25 */
    assert_int_equal(((int8_t *)o->data)[1], -4); /* -3.5 -> -4 */
    /* DequantizeLinear to float16 follows the scale's type */
    const pare_tensor *din[2] = {o, ts};
    pare_tensor *d = run1("DequantizeLinear", 21, NULL, 0, din, 2);
    assert_int_equal(d->dtype, PARE_DT_FLOAT16);
    assert_float_equal(pare_f16_to_f32(((uint16_t *)d->data)[1]), -8.0f, 0);
    pare_tensor_free(d);
    pare_tensor_free(o);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
}

static void test_dequantize_int32_and_unaligned(void **state)
{
    (void)state;
    int32_t x[3] = {-5, 0, 1 << 20};
    float s = 0.5f;
    pare_tensor *tx = mk1(PARE_DT_INT32, 3, x), *ts = mks(PARE_DT_FLOAT, &s);
    const pare_tensor *in[2] = {tx, ts};
    pare_tensor *o = run1("DequantizeLinear", 13, NULL, 0, in, 2);
    assert_float_equal(((float *)o->data)[0], -2.5f, 0);
    assert_float_equal(((float *)o->data)[2], (float)(1 << 19), 0);
    pare_tensor_free(o);
    /* a float input at an odd address (borrowed from a model file) */
    unsigned char *buf = malloc(4 * 4 + 1);
    float xv[4] = {0.4f, 0.6f, 1.4f, 1.6f};
    memcpy(buf + 1, xv, sizeof xv);
    int64_t d4 = 4;
    pare_tensor *tu;
    pare_error err;
    assert_int_equal(pare_tensor_wrap(NULL, PARE_DT_FLOAT, 1, &d4, buf + 1, 16, &tu, &err),
                     PARE_OK);
    const pare_tensor *qin[2] = {tu, ts};
    o = run1("QuantizeLinear", 13, NULL, 0, qin, 2);
    const uint8_t want[4] = {1, 1, 3, 3};
    assert_memory_equal(o->data, want, 4);
    pare_tensor_free(o);
    pare_tensor_free(tu);
    free(buf);
    pare_tensor_free(tx);
    pare_tensor_free(ts);
}

static void test_dynamic_quantize(void **state)
{
    (void)state;
    float x[6] = {0, 2, -3, -2.5f, 1.34f, 0.5f};
    pare_tensor *tx = mk1(PARE_DT_FLOAT, 6, x);
    const pare_tensor *in[1] = {tx};
    pare_tensor *o[3];
    pare_error err;
    assert_int_equal(run_opd("", "DynamicQuantizeLinear", 11, NULL, 0, in, 1, 3, 1, o, &err),
                     PARE_OK);
    /* the ONNX spec example */
    const uint8_t want[6] = {153, 255, 0, 26, 221, 179};
    assert_memory_equal(o[0]->data, want, 6);
    assert_float_equal(*(float *)o[1]->data, 0.0196078438f, 1e-9);
    assert_int_equal(*(uint8_t *)o[2]->data, 153);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(o[i]);
    pare_tensor_free(tx);
}

/* ---- integer matmul and conv ---- */

static void test_matmul_integer(void **state)
{
    (void)state;
    /* batched [2, M, K] x [K, N] with per-row A and per-column B zero points */
    const int64_t M = 5, K = 37, N = 523;
    int64_t ad[3] = {2, M, K}, bd[2] = {K, N};
    pare_tensor *a = mk(PARE_DT_UINT8, 3, ad, NULL), *b = mk(PARE_DT_INT8, 2, bd, NULL);
    for (int64_t i = 0; i < 2 * M * K; i++)
        ((uint8_t *)a->data)[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < K * N; i++)
        ((int8_t *)b->data)[i] = (int8_t)rnd();
    pare_tensor *az = mk1(PARE_DT_UINT8, M, NULL), *bz = mk1(PARE_DT_INT8, N, NULL);
    for (int64_t i = 0; i < M; i++)
        ((uint8_t *)az->data)[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < N; i++)
        ((int8_t *)bz->data)[i] = (int8_t)rnd();
    const pare_tensor *in[4] = {a, b, az, bz};
    pare_tensor *o = run1("MatMulInteger", 10, NULL, 0, in, 4);
    assert_int_equal(o->rank, 3);
    assert_int_equal(o->dims[2], N);
    for (int64_t bt = 0; bt < 2; bt++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                int32_t s = 0;
                for (int64_t kk = 0; kk < K; kk++)
                    s += ((int32_t)((uint8_t *)a->data)[(bt * M + i) * K + kk] -
                          ((uint8_t *)az->data)[i]) *
                         ((int32_t)((int8_t *)b->data)[kk * N + j] - ((int8_t *)bz->data)[j]);
                assert_int_equal(((int32_t *)o->data)[(bt * M + i) * N + j], s);
            }
    pare_tensor_free(o);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(az);
    pare_tensor_free(bz);
}

static void test_matmul_integer_wraps(void **state)
{
    (void)state;
    /* 255*255*K overflows int32 for K = 40000: wraps modulo 2^32 */
    const int64_t K = 40000;
    int64_t ad[2] = {1, K}, bd[2] = {K, 1};
    pare_tensor *a = mk(PARE_DT_UINT8, 2, ad, NULL), *b = mk(PARE_DT_UINT8, 2, bd, NULL);
    memset(a->data, 255, (size_t)K);
    memset(b->data, 255, (size_t)K);
    const pare_tensor *in[2] = {a, b};
    pare_tensor *o = run1("MatMulInteger", 10, NULL, 0, in, 2);
    uint32_t want = (uint32_t)(255u * 255u) * (uint32_t)K;
    int32_t w;
    memcpy(&w, &want, 4);
    assert_int_equal(((int32_t *)o->data)[0], w);
    pare_tensor_free(o);
    pare_tensor_free(a);
    pare_tensor_free(b);
}

static void test_conv_integer(void **state)
{
    (void)state;
    /* x [1, 2, 5, 4] uint8, w [4, 1, 3, 2] (group 2), pads, stride 2 vs naive */
    int64_t xd[4] = {1, 2, 5, 4}, wd[4] = {4, 1, 3, 2};
    pare_tensor *x = mk(PARE_DT_UINT8, 4, xd, NULL), *w = mk(PARE_DT_UINT8, 4, wd, NULL);
    for (int i = 0; i < 40; i++)
        ((uint8_t *)x->data)[i] = (uint8_t)(rnd() % 256);
    for (int i = 0; i < 24; i++)
        ((uint8_t *)w->data)[i] = (uint8_t)(rnd() % 256);
    uint8_t xz = 7, wz = 100;
    pare_tensor *txz = mks(PARE_DT_UINT8, &xz), *twz = mks(PARE_DT_UINT8, &wz);
    int64_t pads[4] = {1, 0, 1, 1}, strides[2] = {2, 1};
    pare_attr at[3] = {attr_ints("pads", pads, 4), attr_ints("strides", strides, 2),
                       attr_int("group", 2)};
    const pare_tensor *in[4] = {x, w, txz, twz};
    pare_tensor *o = run1("ConvInteger", 10, at, 3, in, 4);
    /* out h = (5 + 2 - 3)/2 + 1 = 3, w = (4 + 1 - 2) + 1 = 4 */
    assert_int_equal(o->dims[1], 4);
    assert_int_equal(o->dims[2], 3);
    assert_int_equal(o->dims[3], 4);
    for (int m = 0; m < 4; m++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 4; ox++) {
                int c = m / 2;
                int32_t s = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        int iy = oy * 2 - 1 + ky, ix = ox - 0 + kx;
                        if (iy < 0 || iy >= 5 || ix < 0 || ix >= 4)
                            continue;
                        s += ((int32_t)((uint8_t *)x->data)[(c * 5 + iy) * 4 + ix] - xz) *
                             ((int32_t)((uint8_t *)w->data)[(m * 3 + ky) * 2 + kx] - wz);
                    }
                assert_int_equal(((int32_t *)o->data)[(m * 3 + oy) * 4 + ox], s);
            }
    pare_tensor_free(o);
    pare_tensor_free(x);
    pare_tensor_free(w);
    pare_tensor_free(txz);
    pare_tensor_free(twz);
}

static void test_qlinear_matmul(void **state)
{
    (void)state;
    uint8_t a[4] = {208, 236, 0, 238}, b[6] = {152, 51, 244, 60, 26, 255};
    int64_t ad[2] = {2, 2}, bd[2] = {2, 3};
    float as = 0.0066f, bs = 0.00705f, ys = 0.0107f;
    uint8_t az = 113, bz = 114, yz = 118;
    pare_tensor *ta = mk(PARE_DT_UINT8, 2, ad, a), *tb = mk(PARE_DT_UINT8, 2, bd, b);
    pare_tensor *tas = mks(PARE_DT_FLOAT, &as), *tbs = mks(PARE_DT_FLOAT, &bs);
    pare_tensor *tys = mks(PARE_DT_FLOAT, &ys), *taz = mks(PARE_DT_UINT8, &az);
    pare_tensor *tbz = mks(PARE_DT_UINT8, &bz), *tyz = mks(PARE_DT_UINT8, &yz);
    const pare_tensor *in[8] = {ta, tas, taz, tb, tbs, tbz, tys, tyz};
    pare_tensor *o = run1("QLinearMatMul", 10, NULL, 0, in, 8);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            int32_t acc = 0;
            for (int kk = 0; kk < 2; kk++)
                acc += (a[i * 2 + kk] - az) * (b[kk * 3 + j] - bz);
            float m = (as * bs) / ys;
            double d = nearbyint((double)acc * (double)m + yz);
            d = d < 0 ? 0 : d > 255 ? 255 : d;
            assert_int_equal(((uint8_t *)o->data)[i * 3 + j], (int)d);
        }
    pare_tensor_free(o);
    pare_tensor *tensors[] = {ta, tb, tas, tbs, tys, taz, tbz, tyz};
    for (size_t i = 0; i < 8; i++)
        pare_tensor_free(tensors[i]);
}

static void test_matmul_integer_to_float(void **state)
{
    (void)state;
    /* com.microsoft MatMulIntegerToFloat with per-column b scale and bias, and
     * DynamicQuantizeMatMul against dequantize-then-multiply */
    const int64_t M = 3, K = 300, N = 5;
    int64_t ad[2] = {M, K}, bd[2] = {K, N};
    pare_tensor *a = mk(PARE_DT_UINT8, 2, ad, NULL), *b = mk(PARE_DT_INT8, 2, bd, NULL);
    for (int64_t i = 0; i < M * K; i++)
        ((uint8_t *)a->data)[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < K * N; i++)
        ((int8_t *)b->data)[i] = (int8_t)rnd();
    float as = 0.02f, bs[5] = {0.5f, 0.25f, 0.125f, 1.0f, 2.0f}, bias[5] = {1, 2, 3, 4, 5};
    uint8_t az = 120;
    pare_tensor *tas = mks(PARE_DT_FLOAT, &as), *tbs = mk1(PARE_DT_FLOAT, N, bs);
    pare_tensor *taz = mks(PARE_DT_UINT8, &az), *tb = mk1(PARE_DT_FLOAT, N, bias);
    const pare_tensor *in[7] = {a, b, tas, tbs, taz, NULL, tb};
    pare_tensor *o;
    pare_error err;
    assert_int_equal(run_opd("com.microsoft", "MatMulIntegerToFloat", 1, NULL, 0, in, 7, 1, 2, &o,
                             &err),
                     PARE_OK);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            int32_t acc = 0;
            for (int64_t kk = 0; kk < K; kk++)
                acc += ((int32_t)((uint8_t *)a->data)[i * K + kk] - az) *
                       ((int8_t *)b->data)[kk * N + j];
            double want = (double)acc * as * bs[j] + bias[j];
            assert_float_equal(((float *)o->data)[i * N + j], want, 1e-4 * (1 + fabs(want)));
        }
    pare_tensor_free(o);
    /* DynamicQuantizeMatMul: A float quantized on the fly */
    pare_tensor *af = mk(PARE_DT_FLOAT, 2, ad, NULL);
    for (int64_t i = 0; i < M * K; i++)
        ((float *)af->data)[i] = (float)((int)(rnd() % 2000) - 1000) / 300.0f;
    const pare_tensor *din[5] = {af, b, tbs, NULL, tb};
    assert_int_equal(run_opd("com.microsoft", "DynamicQuantizeMatMul", 1, NULL, 0, din, 5, 1, 2,
                             &o, &err),
                     PARE_OK);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double want = bias[j];
            for (int64_t kk = 0; kk < K; kk++)
                want += ((float *)af->data)[i * K + kk] * ((int8_t *)b->data)[kk * N + j] * bs[j];
            /* within the quantization error of A (scale ~ 6.7/255, half a step per term) */
            double tol = 0.5 * (6.7 / 255) * 128 * bs[j] * sqrt((double)K) * 3;
            assert_float_equal(((float *)o->data)[i * N + j], want, tol);
        }
    pare_tensor_free(o);
    pare_tensor *all[] = {a, b, tas, tbs, taz, tb, af};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pare_tensor_free(all[i]);
}

static void test_qoperator_ops(void **state)
{
    (void)state;
    /* QLinearAdd with broadcasting, QLinearMul, QLinearLeakyRelu, QGemm */
    int64_t ad[2] = {2, 3};
    uint8_t a[6] = {0, 50, 100, 150, 200, 255}, b[3] = {10, 128, 250};
    float sa = 0.1f, sb = 0.05f, sc = 0.2f;
    uint8_t za = 100, zb = 128, zc = 50;
    pare_tensor *ta = mk(PARE_DT_UINT8, 2, ad, a), *tb = mk1(PARE_DT_UINT8, 3, b);
    pare_tensor *tsa = mks(PARE_DT_FLOAT, &sa), *tsb = mks(PARE_DT_FLOAT, &sb);
    pare_tensor *tsc = mks(PARE_DT_FLOAT, &sc), *tza = mks(PARE_DT_UINT8, &za);
    pare_tensor *tzb = mks(PARE_DT_UINT8, &zb), *tzc = mks(PARE_DT_UINT8, &zc);
    const pare_tensor *in[8] = {ta, tsa, tza, tb, tsb, tzb, tsc, tzc};
    pare_tensor *o;
    pare_error err;
    for (int op = 0; op < 2; op++) {
        assert_int_equal(run_opd("com.microsoft", op ? "QLinearMul" : "QLinearAdd", 1, NULL, 0,
                                 in, 8, 1, 1, &o, &err),
                         PARE_OK);
        for (int i = 0; i < 6; i++) {
            float va = (float)(a[i] - za), vb = (float)(b[i % 3] - zb);
            float v = op ? va * vb * (sa * sb) : sa * va + sb * vb;
            float r = nearbyintf(v / sc) + zc;
            r = r < 0 ? 0 : r > 255 ? 255 : r;
            assert_int_equal(((uint8_t *)o->data)[i], (int)r);
        }
        pare_tensor_free(o);
    }
    pare_attr al = {0};
    al.name = (char *)"alpha";
    al.type = PARE_ATTR_FLOAT;
    al.f = 0.5f;
    const pare_tensor *uin[5] = {ta, tsa, tza, tsc, tzc};
    assert_int_equal(run_opd("com.microsoft", "QLinearLeakyRelu", 1, &al, 1, uin, 5, 1, 1, &o,
                             &err),
                     PARE_OK);
    for (int i = 0; i < 6; i++) {
        float v = (float)(a[i] - za) * sa;
        v = v >= 0 ? v : 0.5f * v;
        float r = nearbyintf(v / sc) + zc;
        r = r < 0 ? 0 : r > 255 ? 255 : r;
        assert_int_equal(((uint8_t *)o->data)[i], (int)r);
    }
    pare_tensor_free(o);
    /* QGemm: A [2, 3] x B^T where B is [4, 3] (transB), float output */
    int64_t bd[2] = {4, 3};
    int8_t bw[12] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12};
    int8_t zbw = 0;
    pare_tensor *tbw = mk(PARE_DT_INT8, 2, bd, bw), *tzbw = mks(PARE_DT_INT8, &zbw);
    pare_attr tb_attr = attr_int("transB", 1);
    const pare_tensor *gin[6] = {ta, tsa, tza, tbw, tsb, tzbw};
    assert_int_equal(run_opd("com.microsoft", "QGemm", 1, &tb_attr, 1, gin, 6, 1, 1, &o, &err),
                     PARE_OK);
    assert_int_equal(o->dtype, PARE_DT_FLOAT);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            int32_t acc = 0;
            for (int t = 0; t < 3; t++)
                acc += (a[i * 3 + t] - za) * bw[j * 3 + t];
            assert_float_equal(((float *)o->data)[i * 4 + j], acc * sa * sb, 1e-5);
        }
    pare_tensor_free(o);
    pare_tensor *all[] = {ta, tb, tsa, tsb, tsc, tza, tzb, tzc, tbw, tzbw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pare_tensor_free(all[i]);
}

/* ---- MatMulNBits ---- */

static void nbits_case(int64_t M, int64_t bits, int64_t K, int64_t N, int64_t bsz, bool with_zp,
                       int zp_kind, bool with_gidx)
{
    int64_t nblk = (K + bsz - 1) / bsz, blob = bsz * bits / 8;
    int64_t ad[2] = {M, K}, bd[3] = {N, nblk, blob}, sd[2] = {N, nblk};
    pare_tensor *a = mk(PARE_DT_FLOAT, 2, ad, NULL), *b = mk(PARE_DT_UINT8, 3, bd, NULL);
    pare_tensor *sc = mk(PARE_DT_FLOAT, 2, sd, NULL), *zp = NULL;
    for (int64_t i = 0; i < M * K; i++)
        ((float *)a->data)[i] = (float)((int)(rnd() % 200) - 100) / 50.0f;
    for (int64_t i = 0; i < N * nblk * blob; i++)
        ((uint8_t *)b->data)[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < N * nblk; i++)
        ((float *)sc->data)[i] = (float)(rnd() % 100 + 1) / 64.0f;
    int64_t zrow = (nblk * bits + 7) / 8;
    if (with_zp) {
        if (zp_kind == 0) {
            int64_t zd[2] = {N, zrow};
            zp = mk(PARE_DT_UINT8, 2, zd, NULL);
            for (int64_t i = 0; i < N * zrow; i++)
                ((uint8_t *)zp->data)[i] = (uint8_t)rnd();
        } else {
            zp = mk(PARE_DT_FLOAT, 2, sd, NULL);
            for (int64_t i = 0; i < N * nblk; i++)
                ((float *)zp->data)[i] = (float)(rnd() % 16);
        }
    }
    pare_attr at[4] = {attr_int("K", K), attr_int("N", N), attr_int("bits", bits),
                       attr_int("block_size", bsz)};
    /* g_idx equal to k / block_size must not change the result */
    pare_tensor *gi = mk1(PARE_DT_INT32, K, NULL);
    for (int64_t i = 0; i < K; i++)
        ((int32_t *)gi->data)[i] = (int32_t)(i / bsz);
    const pare_tensor *in[5] = {a, b, sc, zp, gi};
    pare_tensor *o;
    pare_error err;
    if (run_opd("com.microsoft", "MatMulNBits", 1, at, 4, in, with_gidx ? 5 : with_zp ? 4 : 3, 1,
                4, &o, &err))
        fail_msg("MatMulNBits: %s", err.msg);
    assert_int_equal(o->dims[1], N);
    uint8_t mask = (uint8_t)((1u << bits) - 1u);
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t kk = 0; kk < K; kk++) {
                int64_t blk = kk / bsz, j = kk % bsz;
                const uint8_t *blob_p = (uint8_t *)b->data + (n * nblk + blk) * blob;
                int q = (blob_p[j * bits / 8] >> ((j * bits) % 8)) & mask;
                double z = (double)(1 << (bits - 1));
                if (zp && zp_kind == 0) {
                    const uint8_t *zr = (uint8_t *)zp->data + n * zrow;
                    z = (zr[blk * bits / 8] >> ((blk * bits) % 8)) & mask;
                } else if (zp) {
                    z = ((float *)zp->data)[n * nblk + blk];
                }
                double wv = ((double)q - z) * ((float *)sc->data)[n * nblk + blk];
                s += ((float *)a->data)[i * K + kk] * wv;
            }
            assert_float_equal(((float *)o->data)[i * N + n], s, 1e-3 * (1 + fabs(s)));
        }
    pare_tensor_free(o);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(sc);
    pare_tensor_free(zp);
    pare_tensor_free(gi);
}

static void test_matmul_nbits(void **state)
{
    (void)state;
    for (int64_t M = 3; M <= 9; M += 6) { /* the fused small-M path and the tiled GEMM */
        nbits_case(M, 4, 64, 7, 32, false, 0, false);
        nbits_case(M, 4, 80, 9, 16, true, 0, false); /* K not a multiple of the block */
        nbits_case(M, 8, 48, 5, 16, true, 1, false); /* float zero points */
        nbits_case(M, 2, 64, 3, 32, true, 0, false);
        nbits_case(M, 4, 1024, 33, 32, true, 0, false); /* several K tiles */
        nbits_case(M, 4, 96, 6, 32, true, 0, true);     /* with g_idx */
    }
}

/* ---- recurrent kernels ---- */

static void test_lstm_sequence_lens(void **state)
{
    (void)state;
    /* seq 3, batch 2, input 1, hidden 1; batch 1 has length 1: its Y rows
     * after step 0 are zero and Y_h is its step-0 state */
    const int64_t H = 1;
    float x[6] = {1, 2, 3, 4, 5, 6};
    float w[4] = {0.5f, 0.4f, 0.3f, 0.2f}, r[4] = {0.1f, 0.1f, 0.1f, 0.1f};
    int32_t lens[2] = {3, 1};
    int64_t xd[3] = {3, 2, 1}, wd[3] = {1, 4, 1}, rd[3] = {1, 4, H};
    pare_tensor *tx = mk(PARE_DT_FLOAT, 3, xd, x), *tw = mk(PARE_DT_FLOAT, 3, wd, w);
    pare_tensor *tr = mk(PARE_DT_FLOAT, 3, rd, r), *tl = mk1(PARE_DT_INT32, 2, lens);
    const pare_tensor *in[5] = {tx, tw, tr, NULL, tl};
    pare_tensor *o[2];
    pare_error err;
    pare_attr hs = attr_int("hidden_size", H);
    assert_int_equal(run_opd("", "LSTM", 14, &hs, 1, in, 5, 2, 1, o, &err), PARE_OK);
    const float *y = o[0]->data, *yh = o[1]->data;
    /* Y [3, 1, 2, 1]: batch 1 zero after step 0 */
    assert_float_equal(y[3], 0.0f, 0);
    assert_float_equal(y[5], 0.0f, 0);
    assert_float_equal(yh[1], y[1], 0);
    assert_float_equal(yh[0], y[4], 0);
    /* step 0 of batch 1 by hand: x = 2, h = c = 0 */
    double i = 1 / (1 + exp(-1.0)), c = tanh(0.4), o_ = 1 / (1 + exp(-0.8));
    double cc = i * c, hh = o_ * tanh(cc);
    assert_float_equal(y[1], hh, 1e-6);
    pare_tensor_free(o[0]);
    pare_tensor_free(o[1]);
    pare_tensor_free(tx);
    pare_tensor_free(tw);
    pare_tensor_free(tr);
    pare_tensor_free(tl);
}

static void test_gru_bidirectional(void **state)
{
    (void)state;
    /* the reverse direction of a bidirectional GRU on x equals a forward GRU
     * on x reversed in time */
    const int64_t S = 4, B = 2, I = 3, H = 2;
    int64_t xd[3] = {S, B, I}, wd[3] = {2, 3 * H, I}, rd[3] = {2, 3 * H, H}, bd[2] = {2, 6 * H};
    pare_tensor *x = mk(PARE_DT_FLOAT, 3, xd, NULL), *w = mk(PARE_DT_FLOAT, 3, wd, NULL);
    pare_tensor *r = mk(PARE_DT_FLOAT, 3, rd, NULL), *bb = mk(PARE_DT_FLOAT, 2, bd, NULL);
    pare_tensor *ts[4] = {x, w, r, bb};
    for (int t = 0; t < 4; t++)
        for (uint64_t i = 0; i < pare_tensor_numel(ts[t]); i++)
            ((float *)ts[t]->data)[i] = (float)((int)(rnd() % 200) - 100) / 100.0f;
    pare_attr at[3] = {attr_int("hidden_size", H), attr_str("direction", "bidirectional"),
                       attr_int("linear_before_reset", 1)};
    const pare_tensor *in[4] = {x, w, r, bb};
    pare_tensor *o[2];
    pare_error err;
    assert_int_equal(run_opd("", "GRU", 14, at, 3, in, 4, 2, 1, o, &err), PARE_OK);
    /* forward-only run of direction 1's weights on reversed x */
    int64_t wd1[3] = {1, 3 * H, I}, rd1[3] = {1, 3 * H, H}, bd1[2] = {1, 6 * H};
    pare_tensor *x2 = mk(PARE_DT_FLOAT, 3, xd, NULL);
    for (int64_t s = 0; s < S; s++)
        memcpy((float *)x2->data + s * B * I, (float *)x->data + (S - 1 - s) * B * I,
               (size_t)(B * I) * 4);
    pare_tensor *w1 = mk(PARE_DT_FLOAT, 3, wd1, (float *)w->data + 3 * H * I);
    pare_tensor *r1 = mk(PARE_DT_FLOAT, 3, rd1, (float *)r->data + 3 * H * H);
    pare_tensor *b1 = mk(PARE_DT_FLOAT, 2, bd1, (float *)bb->data + 6 * H);
    pare_attr at1[2] = {at[0], at[2]};
    const pare_tensor *in1[4] = {x2, w1, r1, b1};
    pare_tensor *o1[2];
    assert_int_equal(run_opd("", "GRU", 14, at1, 2, in1, 4, 2, 1, o1, &err), PARE_OK);
    const float *yb = o[1]->data, *yf = o1[1]->data;
    for (int64_t i = 0; i < B * H; i++)
        assert_float_equal(yb[B * H + i], yf[i], 1e-6);
    /* Y[s, 1] of the bidirectional run is Y[S-1-s, 0] of the forward run */
    const float *Y = o[0]->data, *Yf = o1[0]->data;
    for (int64_t s = 0; s < S; s++)
        for (int64_t i = 0; i < B * H; i++)
            assert_float_equal(Y[(s * 2 + 1) * B * H + i], Yf[(S - 1 - s) * B * H + i], 1e-6);
    pare_tensor *all[] = {o[0], o[1], o1[0], o1[1], x, w, r, bb, x2, w1, r1, b1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pare_tensor_free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_round_half_even),
        cmocka_unit_test(test_quantize_per_axis_and_blocked),
        cmocka_unit_test(test_quantize_int4_packed),
        cmocka_unit_test(test_quantize_float8),
        cmocka_unit_test(test_quantize_float16_input),
        cmocka_unit_test(test_dequantize_int32_and_unaligned),
        cmocka_unit_test(test_dynamic_quantize),
        cmocka_unit_test(test_matmul_integer),
        cmocka_unit_test(test_matmul_integer_wraps),
        cmocka_unit_test(test_conv_integer),
        cmocka_unit_test(test_qlinear_matmul),
        cmocka_unit_test(test_matmul_integer_to_float),
        cmocka_unit_test(test_qoperator_ops),
        cmocka_unit_test(test_matmul_nbits),
        cmocka_unit_test(test_lstm_sequence_lens),
        cmocka_unit_test(test_gru_bidirectional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
