/* lib/cuda's dnn kernels (dnn.cu: padding, ConvTranspose's crop and bias,
 * bias, the fused Conv epilogue, pooling, global pooling,
 * BatchNormalization, Resize) run on the CPU through the CUDA emulation of
 * tests/cuda/emu, with the arguments lib/cuda/dnn.c gives them, for
 * float32, float16 and bfloat16. The references are pare's CPU executor on
 * one-node models (the bias, the epilogue and the crop's bias: the ONNX
 * formulas), on the same values rounded to the kernel's type. Tolerances
 * are given with each check: exact where a kernel copies, picks or rounds
 * once what the reference also computes in float; otherwise a few float
 * ulps, plus one unit of a 16-bit result's own rounding. Only the global
 * pooling has barriers: it runs in all three thread orders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/dtype.h"
#include "pare/exec.h"
#include "pare/model.h"
#include "cuda/dnn_cu.h"
#include "cuda/ops_shared.h"
#include "../exec/fusion_build.h"

/* images and channels of every spatial case: 6 planes */
#define NI 2
#define NC 3

static const char *const tname[] = {"float32", "float16", "bfloat16"}; /* by PCU_T_* */

static size_t esz(int t)
{
    return t == PCU_T_F32 ? 4 : 2;
}

/* v rounded to type t */
static float round_t(int t, float v)
{
    if (t == PCU_T_F16)
        return pare_f16_to_f32(pare_f32_to_f16(v));
    if (t == PCU_T_BF16)
        return pare_bf16_to_f32(pare_f32_to_bf16(v));
    return v;
}

static float get_t(int t, const void *p, int64_t i)
{
    if (t == PCU_T_F32)
        return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return t == PCU_T_F16 ? pare_f16_to_f32(h) : pare_bf16_to_f32(h);
}

/* n elements of size sz that a kernel must overwrite (a pattern, not zeros) */
static void *out_buf(int64_t n, size_t sz)
{
    void *p = malloc((size_t)n * sz);
    assert_non_null(p);
    memset(p, 0xa5, (size_t)n * sz);
    return p;
}

/* the "device" copy of v (values of type t) in type t: host memory, as the
 * emulation takes it */
static void *to_dev(int t, const float *v, int64_t n)
{
    void *p = out_buf(n, esz(t));
    for (int64_t i = 0; i < n; i++) {
        if (t == PCU_T_F32)
            ((float *)p)[i] = v[i];
        else
            ((uint16_t *)p)[i] = t == PCU_T_F16 ? pare_f32_to_f16(v[i]) : pare_f32_to_bf16(v[i]);
    }
    return p;
}

static float *floats(int64_t n)
{
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    return v;
}

/* n random values in [lo, hi) of type t */
static float *rand_t(int t, int64_t n, float lo, float hi)
{
    float *v = floats(n);
    for (int64_t i = 0; i < n; i++)
        v[i] = round_t(t, lo + (hi - lo) * 0.5f * (frand() + 1.0f));
    return v;
}

/* planes of `plane` distinct values each (a shuffle of multiples of 1/16,
 * exact in every type for plane <= 512), so that a maximum and its index
 * have no ties */
static float *distinct_planes(int64_t planes, int64_t plane)
{
    float *v = floats(planes * plane);
    for (int64_t p = 0; p < planes; p++) {
        float *q = v + p * plane;
        for (int64_t i = 0; i < plane; i++)
            q[i] = (float)(i - plane / 2) / 16.0f;
        for (int64_t i = plane - 1; i > 0; i--) {
            int64_t j = (int64_t)((frand() + 1.0f) * 0.5f * (float)(i + 1));
            j = j > i ? i : j;
            float s = q[i];
            q[i] = q[j];
            q[j] = s;
        }
    }
    return v;
}

static int64_t prod(int n, const int64_t *d)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

/* got (n elements of type t) against want. rtol 0: equal values (want holds
 * values of type t). Else |got - want| <= atol + rtol |want|, a float16
 * result 2^-10 |want| more and a bfloat16 one 2^-7 |want| (its rounding of
 * a float that differs from the reference's by the tolerance: one unit in
 * the last place, two just below a power of two). NaN wants NaN. */
static void expect_t(const char *what, int t, const void *got, const float *want, int64_t n,
                     double atol, double rtol)
{
    double r16 = rtol == 0 ? 0 : t == PCU_T_F16 ? 0x1p-10 : t == PCU_T_BF16 ? 0x1p-7 : 0;
    for (int64_t i = 0; i < n; i++) {
        double g = get_t(t, got, i), w = want[i];
        if (isnan(w) ? !isnan(g) : !(fabs(g - w) <= atol + (rtol + r16) * fabs(w)))
            fail_msg("%s, %s: element %lld is %.9g, want %.9g", what, tname[t], (long long)i, g,
                     w);
    }
}

/* a call that must succeed and queue exactly one kernel */
#define LAUNCH(call)                                                                           \
    do {                                                                                       \
        long before_ = pcu_emu_launches();                                                     \
        assert_int_equal((call), cudaSuccess);                                                 \
        assert_int_equal(pcu_emu_launches(), before_ + 1);                                     \
    } while (0)

/* ---- the CPU reference: one node of a model run by pare's executor ---- */

typedef struct ref {
    pare_model *m;
    pare_graph *g;
    pare_value *in[5]; /* the node's inputs */
    size_t n_in;
    pare_tensor *feed[5]; /* data of the graph inputs */
    size_t n_feed;
} ref;

static void ref_new(ref *r)
{
    memset(r, 0, sizeof *r);
    r->m = new_model(21);
    r->g = pare_model_graph(r->m);
}

/* the next input: a float32 graph input holding x */
static void ref_x(ref *r, int rank, const int64_t *dims, const float *x)
{
    char name[8];
    snprintf(name, sizeof name, "x%zu", r->n_in);
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    memcpy(t->data, x, (size_t)prod(rank, dims) * sizeof *x);
    r->feed[r->n_feed++] = t;
    r->in[r->n_in++] = add_input(r->g, name, rank, dims);
}

/* the next input: a 1-D constant of n float32 or int64 values */
static void ref_const(ref *r, int dtype, int64_t n, const void *data)
{
    char name[8];
    snprintf(name, sizeof name, "c%zu", r->n_in);
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dtype, 1, &n, &t, &err), PARE_OK);
    memcpy(t->data, data, (size_t)n * (dtype == PARE_DT_INT64 ? 8 : 4));
    assert_int_equal(pare_graph_add_initializer(r->g, t, &r->in[r->n_in++], &err), PARE_OK);
}

/* the next input omitted */
static void ref_none(ref *r)
{
    r->in[r->n_in++] = NULL;
}

/* the node op on the inputs so far, its n_out outputs the graph's */
static pare_node *ref_node(ref *r, const char *op, size_t n_out)
{
    pare_value *out[2];
    pare_node *n;
    pare_error err;
    for (size_t i = 0; i < n_out; i++)
        assert_int_equal(pare_graph_new_value(r->g, i ? "y1" : "y0", NULL, 0, &out[i], &err),
                         PARE_OK);
    assert_int_equal(pare_graph_add_node(r->g, NULL, "", op, r->in, r->n_in, out, n_out, NULL, &n,
                                         &err),
                     PARE_OK);
    for (size_t i = 0; i < n_out; i++)
        output(r->g, out[i]);
    return n;
}

/* runs the model on the CPU and frees it; the outputs are the caller's */
static pare_tensor **ref_run(ref *r, size_t *n_out)
{
    pare_tensor **o = run(r->m, true, r->feed, r->n_feed, n_out, NULL);
    for (size_t i = 0; i < r->n_feed; i++)
        pare_tensor_free(r->feed[i]);
    pare_model_free(r->m);
    return o;
}

static void set_ints(pare_node *n, const char *name, const int64_t *v, size_t count)
{
    pare_error err;
    assert_int_equal(pare_node_set_attr_ints(n, name, v, count, &err), PARE_OK);
}

static void set_int(pare_node *n, const char *name, int64_t v)
{
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(n, name, v, &err), PARE_OK);
}

static void set_str(pare_node *n, const char *name, const char *v)
{
    pare_error err;
    assert_int_equal(pare_node_set_attr_string(n, name, v, &err), PARE_OK);
}

/* ---- padding and ConvTranspose's crop ---- */

/* A spatial copy of planes [NI, NC, in...]: pads b before and e after each
 * dim, negative ones crop (Pad's semantics; pcu_pad_planes takes b, e >= 0,
 * pcu_crop_bias the crop -b, -e) */
typedef struct win_case {
    int nsp;
    int64_t in[3], b[3], e[3];
} win_case;

static int64_t win_out(const win_case *q, int64_t *out)
{
    for (int i = 0; i < q->nsp; i++)
        out[i] = q->in[i] + q->b[i] + q->e[i];
    return NI * NC * prod(q->nsp, out);
}

/* x padded as q says by the CPU's Pad (constant zeros) */
static pare_tensor **pad_ref(const win_case *q, const float *x, size_t *n_out)
{
    int rank = 2 + q->nsp;
    int64_t dims[5] = {NI, NC}, pads[10] = {0};
    for (int i = 0; i < q->nsp; i++) {
        dims[2 + i] = q->in[i];
        pads[2 + i] = q->b[i];
        pads[rank + 2 + i] = q->e[i];
    }
    ref r;
    ref_new(&r);
    ref_x(&r, rank, dims, x);
    ref_const(&r, PARE_DT_INT64, 2 * rank, pads);
    ref_node(&r, "Pad", 1);
    return ref_run(&r, n_out);
}

/* pcu_pad_planes as Conv's asymmetric padding: exact (a copy) */
static void test_pad_planes(void **state)
{
    (void)state;
    static const win_case cases[] = {
        {1, {5}, {2}, {1}},
        {2, {4, 3}, {1, 0}, {0, 2}},
        {3, {2, 3, 2}, {1, 1, 0}, {0, 1, 2}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int t = PCU_T_F32; t <= PCU_T_BF16; t++) {
            const win_case *q = &cases[c];
            int64_t nx = NI * NC * prod(q->nsp, q->in), out[3], ny = win_out(q, out);
            float *x = rand_t(t, nx, -1, 1);
            size_t no;
            pare_tensor **o = pad_ref(q, x, &no);
            assert_int_equal((int64_t)pare_tensor_numel(o[0]), ny);
            pcu_sp g = {.nsp = q->nsp, .planes = NI * NC};
            for (int i = 0; i < q->nsp; i++) {
                g.in[i] = q->in[i];
                g.out[i] = out[i];
                g.pb[i] = q->b[i];
                g.pe[i] = q->e[i];
            }
            void *src = to_dev(t, x, nx), *dst = out_buf(ny, esz(t));
            LAUNCH(pcu_pad_planes(t, src, dst, &g, NULL));
            expect_t("pad_planes", t, dst, o[0]->data, ny, 0, 0);
            free(src);
            free(dst);
            free(x);
            pare_tensors_free(o, no);
        }
}

/* pcu_crop_bias of a full ConvTranspose result: crop pb at the start (zeros
 * before it where pb < 0), zeros past its end (output_padding), + bias[c]
 * or not. Exact: the reference rounds the same float sum once. */
static void check_crop(int t, const win_case *q, bool with_bias)
{
    int64_t nx = NI * NC * prod(q->nsp, q->in), out[3], ny = win_out(q, out);
    int64_t plane = ny / (NI * NC);
    float *x = rand_t(t, nx, -1, 1), *b = rand_t(t, NC, -1, 1);
    size_t no;
    pare_tensor **o = pad_ref(q, x, &no);
    assert_int_equal((int64_t)pare_tensor_numel(o[0]), ny);
    float *want = o[0]->data;
    for (int64_t i = 0; i < ny && with_bias; i++)
        want[i] = round_t(t, want[i] + b[i / plane % NC]);
    pcu_sp g = {.nsp = q->nsp, .planes = NI * NC};
    for (int i = 0; i < q->nsp; i++) {
        g.in[i] = q->in[i];
        g.out[i] = out[i];
        g.pb[i] = -q->b[i];
    }
    void *src = to_dev(t, x, nx), *bias = to_dev(t, b, NC), *y = out_buf(ny, esz(t));
    LAUNCH(pcu_crop_bias(t, src, with_bias ? bias : NULL, y, NC, &g, NULL));
    expect_t(with_bias ? "crop_bias" : "crop", t, y, want, ny, 0, 0);
    free(src);
    free(bias);
    free(y);
    free(x);
    free(b);
    pare_tensors_free(o, no);
}

static void test_crop_bias(void **state)
{
    (void)state;
    /* in: the full result; b, e: minus the crop (as Pad's pads) */
    static const win_case cases[] = {
        {2, {6, 5}, {-1, -2}, {-2, 1}},        /* cropped, one zero column at the end */
        {1, {7}, {1}, {-2}},                   /* a zero before (output larger than full) */
        {3, {3, 4, 5}, {0, -1, 1}, {-1, 1, 0}}, /* crop, zeros before, zeros after */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int t = PCU_T_F32; t <= PCU_T_BF16; t++) {
            check_crop(t, &cases[c], true);
            check_crop(t, &cases[c], false);
        }
}

/* ---- bias and the fused Conv epilogue ---- */

#define EPI_INNER 45 /* NI * NC * 45 = 270 elements: two blocks, the second partial */

/* pcu_bias_add: y + bias[c] rounded once to y's type, as the formula: exact */
static void test_bias_add(void **state)
{
    (void)state;
    const int64_t n = NI * NC * EPI_INNER;
    for (int t = PCU_T_F32; t <= PCU_T_BF16; t++) {
        float *y = rand_t(t, n, -2, 2), *b = rand_t(t, NC, -2, 2), *want = floats(n);
        for (int64_t i = 0; i < n; i++)
            want[i] = round_t(t, y[i] + b[i / EPI_INNER % NC]);
        void *yd = to_dev(t, y, n), *bd = to_dev(t, b, NC);
        LAUNCH(pcu_bias_add(t, yd, bd, NI, NC, EPI_INNER, NULL));
        expect_t("bias_add", t, yd, want, n, 0, 0);
        free(yd);
        free(bd);
        free(y);
        free(b);
        free(want);
    }
}

/* the activations as ONNX defines them, in double */
static double act_ref(int act, double v, double a, double b)
{
    switch (act) {
    case PCU_ACT_RELU: return v > 0 ? v : 0;
    case PCU_ACT_CLIP: return v < a ? a : v > b ? b : v;
    case PCU_ACT_LEAKY_RELU: return v >= 0 ? v : a * v;
    case PCU_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case PCU_ACT_TANH: return tanh(v);
    case PCU_ACT_HARDSIGMOID: return fmax(0, fmin(1, a * v + b));
    case PCU_ACT_HARDSWISH: return v * fmax(0, fmin(1, v / 6 + 0.5));
    default: return v;
    }
}

/* the activations' parameters: clip to [-0.3, 0.4], leaky alpha 0.1,
 * hard sigmoid alpha 0.2 and beta 0.5 (the others take none) */
static float act_a(int act)
{
    return act == PCU_ACT_CLIP ? -0.3f : act == PCU_ACT_LEAKY_RELU ? 0.1f : 0.2f;
}

static float act_b(int act)
{
    return act == PCU_ACT_CLIP ? 0.4f : 0.5f;
}

/* pcu_conv_epilogue, y = act(y + bias[c] + res), against the formula in
 * double: 1e-6 absolute and relative (two float additions and the host's
 * expf/tanhf against exp/tanh), and a 16-bit result's rounding. All sizes
 * here take the 32-bit index path: the 64-bit one needs N*C*inner >= 2^31
 * elements, beyond a unit test. */
static void check_epilogue(int t, int act, bool with_res)
{
    const int64_t n = NI * NC * EPI_INNER;
    float a = act_a(act), b = act_b(act);
    float *y = rand_t(t, n, -3, 3), *res = rand_t(t, n, -1, 1);
    float *bias = rand_t(PCU_T_F32, NC, -1, 1), *want = floats(n);
    for (int64_t i = 0; i < n; i++) {
        double v = (double)y[i] + bias[i / EPI_INNER % NC] + (with_res ? res[i] : 0);
        want[i] = (float)act_ref(act, v, a, b);
    }
    void *yd = to_dev(t, y, n), *rd = to_dev(t, res, n);
    LAUNCH(pcu_conv_epilogue(t, yd, bias, with_res ? rd : NULL, NI, NC, EPI_INNER, act, a, b,
                             NULL));
    char what[48];
    snprintf(what, sizeof what, "epilogue act %d%s", act, with_res ? " + res" : "");
    expect_t(what, t, yd, want, n, 1e-6, 1e-6);
    free(yd);
    free(rd);
    free(y);
    free(res);
    free(bias);
    free(want);
}

static void test_conv_epilogue(void **state)
{
    (void)state;
    for (int t = PCU_T_F32; t <= PCU_T_BF16; t++)
        for (int act = PCU_ACT_NONE; act <= PCU_ACT_HARDSWISH; act++) {
            check_epilogue(t, act, false);
            check_epilogue(t, act, true);
        }
}

/* NaN stays NaN through every activation, as in the CPU's fused Conv
 * (fmaxf and fminf alone would make a number of it); the other elements
 * as in check_epilogue */
static void test_conv_epilogue_nan(void **state)
{
    (void)state;
    const int64_t n = NC * 8;
    float y[NC * 8], bias[NC] = {0.5f, -0.5f, 1.0f}, want[NC * 8];
    for (int act = PCU_ACT_NONE; act <= PCU_ACT_HARDSWISH; act++) {
        for (int64_t i = 0; i < n; i++) {
            y[i] = i % 3 ? NAN : (float)(i - 12) / 4;
            want[i] = i % 3 ? NAN
                            : (float)act_ref(act, (double)y[i] + bias[i / 8 % NC], act_a(act),
                                             act_b(act));
        }
        LAUNCH(pcu_conv_epilogue(PCU_T_F32, y, bias, NULL, 1, NC, 8, act, act_a(act), act_b(act),
                                 NULL));
        char what[32];
        snprintf(what, sizeof what, "epilogue act %d of NaN", act);
        expect_t(what, PCU_T_F32, y, want, n, 1e-6, 1e-6);
    }
}

/* ---- MaxPool and AveragePool ---- */

typedef struct pool_case {
    int nsp;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    int ceil;
} pool_case;

/* 2-D: the launcher's 32-bit kernel (pool2d_kernel) */
static const pool_case pool2d_cases[] = {
    /* strides, asymmetric pads, a dilation whose first tap falls in the pad */
    {2, {7, 9}, {3, 2}, {2, 1}, {1, 2}, {1, 1}, {2, 1}, 0},
    /* ceil_mode: the last window of each dim runs past the end pad */
    {2, {7, 9}, {2, 2}, {2, 3}, {2, 1}, {0, 1}, {1, 0}, 1},
};
/* 1-D and 3-D: the generic kernel (pool_kernel) */
static const pool_case poolnd_cases[] = {
    {1, {11}, {3}, {2}, {2}, {2}, {1}, 1},
    {3, {4, 5, 6}, {2, 3, 2}, {1, 2, 2}, {1, 1, 2}, {1, 0, 1}, {0, 1, 1}, 0},
    {3, {5, 4, 5}, {2, 2, 3}, {2, 1, 2}, {1, 2, 1}, {0, 1, 1}, {1, 0, 0}, 1},
};
#define NCASES(a) (sizeof(a) / sizeof *(a))

/* MaxPool (kind PCU_POOL_MAX, with its indices output when ind, storage
 * order so) or AveragePool (count_include_pad cip) of q on the CPU and by
 * pcu_pool with the CPU's output dims (pool_run takes the same ONNX
 * formula). Max and its indices exact; average 1e-6 absolute and relative
 * (the sum of multiples of 1/16 is exact, one division). */
static void check_pool(int t, int kind, const pool_case *q, int so, int cip, bool ind)
{
    int rank = 2 + q->nsp;
    int64_t dims[5] = {NI, NC}, pads[6], plane = prod(q->nsp, q->in);
    for (int i = 0; i < q->nsp; i++) {
        dims[2 + i] = q->in[i];
        pads[i] = q->pb[i];
        pads[q->nsp + i] = q->pe[i];
    }
    float *x = distinct_planes(NI * NC, plane);
    ref r;
    ref_new(&r);
    ref_x(&r, rank, dims, x);
    pare_node *n = ref_node(&r, kind == PCU_POOL_MAX ? "MaxPool" : "AveragePool", ind ? 2 : 1);
    set_ints(n, "kernel_shape", q->k, (size_t)q->nsp);
    set_ints(n, "strides", q->s, (size_t)q->nsp);
    set_ints(n, "dilations", q->d, (size_t)q->nsp);
    set_ints(n, "pads", pads, 2 * (size_t)q->nsp);
    set_int(n, "ceil_mode", q->ceil);
    set_int(n, kind == PCU_POOL_MAX ? "storage_order" : "count_include_pad",
            kind == PCU_POOL_MAX ? so : cip);
    size_t no;
    pare_tensor **o = ref_run(&r, &no);
    pcu_sp g = {.nsp = q->nsp, .planes = NI * NC};
    for (int i = 0; i < q->nsp; i++) {
        g.in[i] = q->in[i];
        g.out[i] = o[0]->dims[2 + i];
        g.k[i] = q->k[i];
        g.s[i] = q->s[i];
        g.d[i] = q->d[i];
        g.pb[i] = q->pb[i];
        g.pe[i] = q->pe[i];
    }
    int64_t ny = NI * NC * prod(q->nsp, g.out);
    void *xd = to_dev(t, x, NI * NC * plane), *y = out_buf(ny, esz(t));
    int64_t *iy = ind ? out_buf(ny, sizeof(int64_t)) : NULL;
    LAUNCH(pcu_pool(t, kind, xd, y, iy, so, cip, &g, NULL));
    char what[80];
    snprintf(what, sizeof what, "%s %d-D (in %lld, ceil %d, storage order %d, pads counted %d)",
             kind == PCU_POOL_MAX ? "MaxPool" : "AveragePool", q->nsp, (long long)q->in[0],
             q->ceil, so, cip);
    double tol = kind == PCU_POOL_MAX ? 0 : 1e-6;
    expect_t(what, t, y, o[0]->data, ny, tol, tol);
    if (ind)
        for (int64_t i = 0; i < ny; i++)
            if (iy[i] != ((const int64_t *)o[1]->data)[i])
                fail_msg("%s, %s: index %lld is %lld, want %lld", what, tname[t], (long long)i,
                         (long long)iy[i], (long long)((const int64_t *)o[1]->data)[i]);
    free(xd);
    free(y);
    free(iy);
    free(x);
    pare_tensors_free(o, no);
}

/* a pooling test: kind over the cases in every type, max with indices in
 * both storage orders, average with and without the pads counted */
typedef struct pool_suite {
    int kind;
    const pool_case *cases;
    size_t n;
} pool_suite;

static void test_pool(void **state)
{
    const pool_suite *s = *state;
    bool max = s->kind == PCU_POOL_MAX;
    for (size_t c = 0; c < s->n; c++)
        for (int t = PCU_T_F32; t <= PCU_T_BF16; t++)
            for (int v = 0; v < 2; v++)
                check_pool(t, s->kind, &s->cases[c], max ? v : 0, max ? 0 : v, max);
}

/* named test_pool runs on a pool_suite of kind over cases */
#define POOL_TEST(name, kind, cases)                                                           \
    {                                                                                          \
        name, test_pool, NULL, NULL, (void *)&(const pool_suite){kind, cases, NCASES(cases)}   \
    }

/* without the indices output (NULL): the values alone, both kernels */
static void test_maxpool_no_indices(void **state)
{
    (void)state;
    check_pool(PCU_T_F32, PCU_POOL_MAX, &pool2d_cases[1], 0, 0, false);
    check_pool(PCU_T_F16, PCU_POOL_MAX, &poolnd_cases[2], 1, 0, false);
}

/* ---- GlobalMaxPool and GlobalAveragePool ---- */

/* planes of `plane` elements on the CPU and by pcu_global_pool (one block
 * of 256 threads a plane, a shared-memory tree) in thread order `order`.
 * Max exact; mean 1e-6 absolute, 1e-5 relative (sums in another order). */
static void check_gpool(int t, int kind, int64_t plane, int order)
{
    int64_t dims[3] = {NI, NC, plane}, n = NI * NC * plane;
    float *x = rand_t(t, n, -1, 1);
    ref r;
    ref_new(&r);
    ref_x(&r, 3, dims, x);
    ref_node(&r, kind == PCU_POOL_MAX ? "GlobalMaxPool" : "GlobalAveragePool", 1);
    size_t no;
    pare_tensor **o = ref_run(&r, &no);
    void *xd = to_dev(t, x, n), *y = out_buf(NI * NC, esz(t));
    pcu_emu_order(order);
    LAUNCH(pcu_global_pool(t, kind, xd, y, NI * NC, plane, NULL));
    pcu_emu_order(0);
    char what[64];
    snprintf(what, sizeof what, "%s of %lld in order %d",
             kind == PCU_POOL_MAX ? "GlobalMaxPool" : "GlobalAveragePool", (long long)plane,
             order);
    expect_t(what, t, y, o[0]->data, NI * NC, kind == PCU_POOL_MAX ? 0 : 1e-6,
             kind == PCU_POOL_MAX ? 0 : 1e-5);
    free(xd);
    free(y);
    free(x);
    pare_tensors_free(o, no);
}

/* planes of 700 (each thread sums several) and of 37 (most threads hold
 * the identity): both kinds, every thread order, every type */
static void test_global_pool(void **state)
{
    (void)state;
    static const int64_t planes[] = {700, 37};
    for (int t = PCU_T_F32; t <= PCU_T_BF16; t++)
        for (int kind = PCU_POOL_MAX; kind <= PCU_POOL_AVG; kind++)
            for (size_t p = 0; p < 2; p++)
                for (int order = 0; order < 3; order++)
                    check_gpool(t, kind, planes[p], order);
}

/* ---- BatchNormalization ---- */

/* x of type t, the four parameters of type pt, on the CPU (float32 on the
 * same values) and by pcu_batchnorm: 1e-6 absolute, 1e-5 relative (the
 * kernel's rsqrtf and order of operations) and a 16-bit result's rounding */
static void check_bn(int t, int pt)
{
    int64_t dims[4] = {NI, NC, 5, 7}, n = NI * NC * 35;
    float *x = rand_t(t, n, -2, 2), *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = rand_t(pt, NC, i == 3 ? 0.1f : -1.5f, 1.5f); /* scale, bias, mean, var > 0 */
    ref r;
    ref_new(&r);
    ref_x(&r, 4, dims, x);
    for (int i = 0; i < 4; i++)
        ref_x(&r, 1, dims + 1, p[i]);
    pare_error err;
    assert_int_equal(pare_node_set_attr_float(ref_node(&r, "BatchNormalization", 1), "epsilon",
                                              1e-3f, &err),
                     PARE_OK);
    size_t no;
    pare_tensor **o = ref_run(&r, &no);
    void *xd = to_dev(t, x, n), *y = out_buf(n, esz(t)), *pd[4];
    for (int i = 0; i < 4; i++)
        pd[i] = to_dev(pt, p[i], NC);
    LAUNCH(pcu_batchnorm(t, pt, xd, pd[0], pd[1], pd[2], pd[3], y, NI, NC, 35, 1e-3f, NULL));
    char what[48];
    snprintf(what, sizeof what, "BatchNormalization, %s parameters", tname[pt]);
    expect_t(what, t, y, o[0]->data, n, 1e-6, 1e-5);
    for (int i = 0; i < 4; i++) {
        free(pd[i]);
        free(p[i]);
    }
    free(xd);
    free(y);
    free(x);
    pare_tensors_free(o, no);
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int t = PCU_T_F32; t <= PCU_T_BF16; t++)
        for (int pt = PCU_T_F32; pt <= PCU_T_BF16; pt++)
            check_bn(t, pt);
}

/* ---- Resize ---- */

/* by PCU_CT_* and PCU_NM_* */
static const char *const rs_coord[] = {"half_pixel", "asymmetric", "align_corners",
                                       "pytorch_half_pixel", "half_pixel_symmetric"};
static const char *const rs_near[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* output H and W from scales or from sizes. The scales are binary
 * fractions (float32 holds the scale meant) for which no
 * half_pixel_symmetric coordinate is a multiple of 0.5: there the
 * computed one is an ulp off, and the CPU, as the ONNX reference, places
 * its taps by the rounding of x + 1 and may take the neighbour (x =
 * 3 + 4e-16 reads x[2]), the kernel x itself. */
typedef struct rs_case {
    bool sizes;
    float sc[2];
    int64_t sz[2];
} rs_case;

static const rs_case rs_cases[] = {
    {false, {1.625f, 2.375f}, {0}}, /* up: 8.125 x 16.625 -> 8 x 16 */
    {false, {0.875f, 0.375f}, {0}}, /* down: 4.375 x 2.625 -> 4 x 2 */
    {true, {0}, {9, 4}},
    {true, {0}, {1, 3}}, /* one row: align_corners' and pytorch_half_pixel's own case */
};

/* Resize of [1, 2, 5, 7] on the CPU and by pcu_resize with the arguments
 * resize_run gives (the scale given, or out / in for sizes). Nearest exact
 * (a copy); linear 1e-6 absolute and relative (float weights against the
 * CPU's double) and a 16-bit result's rounding. */
static void check_resize(int t, int mode, int coord, int nearest, const rs_case *q)
{
    int64_t dims[4] = {1, 2, 5, 7}, n = 70;
    float *x = rand_t(t, n, -1, 1);
    ref r;
    ref_new(&r);
    ref_x(&r, 4, dims, x);
    ref_none(&r); /* roi */
    if (q->sizes) {
        int64_t sz[4] = {1, 2, q->sz[0], q->sz[1]};
        ref_none(&r);
        ref_const(&r, PARE_DT_INT64, 4, sz);
    } else {
        float sc[4] = {1, 1, q->sc[0], q->sc[1]};
        ref_const(&r, PARE_DT_FLOAT, 4, sc);
    }
    pare_node *nd = ref_node(&r, "Resize", 1);
    set_str(nd, "mode", mode == 0 ? "nearest" : "linear");
    set_str(nd, "coordinate_transformation_mode", rs_coord[coord]);
    set_str(nd, "nearest_mode", rs_near[nearest]);
    size_t no;
    pare_tensor **o = ref_run(&r, &no);
    int64_t oh = o[0]->dims[2], ow = o[0]->dims[3], ny = 2 * oh * ow;
    pcu_resize_args a = {mode, coord, nearest, 2, 5, 7, oh, ow,
                         q->sizes ? (double)oh / 5 : (double)q->sc[0],
                         q->sizes ? (double)ow / 7 : (double)q->sc[1]};
    void *xd = to_dev(t, x, n), *y = out_buf(ny, esz(t));
    LAUNCH(pcu_resize(t, xd, y, &a, NULL));
    char what[96];
    snprintf(what, sizeof what, "Resize %s %s %s to %lld x %lld", mode ? "linear" : "nearest",
             rs_coord[coord], mode ? "" : rs_near[nearest], (long long)oh, (long long)ow);
    expect_t(what, t, y, o[0]->data, ny, mode ? 1e-6 : 0, mode ? 1e-6 : 0);
    free(xd);
    free(y);
    free(x);
    pare_tensors_free(o, no);
}

static void test_resize_nearest(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCASES(rs_cases); c++)
        for (int coord = PCU_CT_HALF_PIXEL; coord <= PCU_CT_HALF_PIXEL_SYMMETRIC; coord++)
            for (int nm = PCU_NM_ROUND_PREFER_FLOOR; nm <= PCU_NM_CEIL; nm++)
                check_resize(PCU_T_F32, 0, coord, nm, &rs_cases[c]);
}

static void test_resize_linear(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCASES(rs_cases); c++)
        for (int coord = PCU_CT_HALF_PIXEL; coord <= PCU_CT_HALF_PIXEL_SYMMETRIC; coord++)
            check_resize(PCU_T_F32, 1, coord, 0, &rs_cases[c]);
}

/* float16 and bfloat16: both modes, a scaled and a sized case */
static void test_resize_16bit(void **state)
{
    (void)state;
    for (int t = PCU_T_F16; t <= PCU_T_BF16; t++)
        for (int mode = 0; mode < 2; mode++)
            for (size_t c = 1; c < 3; c++)
                check_resize(t, mode, c == 1 ? PCU_CT_HALF_PIXEL : PCU_CT_ASYMMETRIC,
                             PCU_NM_ROUND_PREFER_CEIL, &rs_cases[c]);
}

/* ---- nothing to do ---- */

/* empty tensors: success and no launch, from every launcher */
static void test_empty(void **state)
{
    (void)state;
    float f = 0;
    pcu_sp g = {.nsp = 2, .planes = 0, .in = {3, 3}, .out = {3, 3}, .k = {1, 1}, .s = {1, 1},
                .d = {1, 1}};
    pcu_resize_args a = {0, 0, 0, 0, 3, 3, 6, 6, 2.0, 2.0};
    long before = pcu_emu_launches();
    assert_int_equal(pcu_pad_planes(PCU_T_F32, &f, &f, &g, NULL), cudaSuccess);
    assert_int_equal(pcu_crop_bias(PCU_T_F16, &f, NULL, &f, 1, &g, NULL), cudaSuccess);
    assert_int_equal(pcu_pool(PCU_T_F32, PCU_POOL_MAX, &f, &f, NULL, 0, 0, &g, NULL), cudaSuccess);
    assert_int_equal(pcu_bias_add(PCU_T_F32, &f, &f, 2, 0, 4, NULL), cudaSuccess);
    assert_int_equal(pcu_conv_epilogue(PCU_T_BF16, &f, &f, NULL, 0, 2, 4, PCU_ACT_RELU, 0, 0,
                                       NULL),
                     cudaSuccess);
    assert_int_equal(pcu_global_pool(PCU_T_F32, PCU_POOL_AVG, &f, &f, 0, 9, NULL), cudaSuccess);
    assert_int_equal(pcu_batchnorm(PCU_T_F32, PCU_T_F32, &f, &f, &f, &f, &f, &f, 1, 2, 0, 1e-5f,
                                   NULL),
                     cudaSuccess);
    assert_int_equal(pcu_resize(PCU_T_F32, &f, &f, &a, NULL), cudaSuccess);
    assert_int_equal(pcu_emu_launches(), before);
    assert_true(f == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_planes),
        cmocka_unit_test(test_crop_bias),
        cmocka_unit_test(test_bias_add),
        cmocka_unit_test(test_conv_epilogue),
        cmocka_unit_test(test_conv_epilogue_nan),
        POOL_TEST("test_maxpool_2d", PCU_POOL_MAX, pool2d_cases),
        POOL_TEST("test_maxpool_1d_3d", PCU_POOL_MAX, poolnd_cases),
        cmocka_unit_test(test_maxpool_no_indices),
        POOL_TEST("test_avgpool_2d", PCU_POOL_AVG, pool2d_cases),
        POOL_TEST("test_avgpool_1d_3d", PCU_POOL_AVG, poolnd_cases),
        cmocka_unit_test(test_global_pool),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_resize_nearest),
        cmocka_unit_test(test_resize_linear),
        cmocka_unit_test(test_resize_16bit),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
