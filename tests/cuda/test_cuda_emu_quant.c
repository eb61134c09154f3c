/* lib/cuda's quantization kernels (quant.cu) run on the CPU through the CUDA
 * emulation of tests/cuda/emu, launched as lib/cuda/quant.c launches them,
 * against pare's CPU executor running the same one-node ONNX model:
 * QuantizeLinear and DequantizeLinear (per tensor, the vectorised
 * per-tensor kernels included, per axis, blocked; 8/16/32-bit, packed
 * 4-bit, float8), DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
 * MatMulNBits's weight dequantization, the row bias and QLinearConv's
 * requantization. Kernels with barriers (DynamicQuantizeLinear's min/max
 * reduction, the tiled integer matmul) run in all three thread orders.
 *
 * No tolerance: every result equals the CPU's to the bit, as the kernels
 * compute in the CPU's precision and order; only NaNs compare as NaNs (the
 * GPU writes its canonical NaN, the CPU keeps the sign) and MatMulNBits's
 * zeros without their sign (see check_nbits). The emulator's float8,
 * float16 and bfloat16 conversions, which those kernels rest on, are
 * checked first against lib/dtype's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/exec.h"
#include "pare/model.h"
#include "cuda/ops_shared.h"
#include "cuda/quant_cu.h"
#include "../exec/fusion_build.h"

#define F32 PARE_DT_FLOAT
#define F16 PARE_DT_FLOAT16
#define BF16 PARE_DT_BFLOAT16
#define T PCU_Q_TENSOR
#define AX PCU_Q_AXIS
#define BL PCU_Q_BLOCK
#define U8 PARE_DT_UINT8
#define I8 PARE_DT_INT8

/* check(&case, name) for every case of the array `cases`, named after it */
#define RUN(check, cases)                                                                  \
    for (size_t i_ = 0; i_ < sizeof cases / sizeof *cases; i_++) {                         \
        char name_[64];                                                                    \
        snprintf(name_, sizeof name_, "%s %zu", #cases, i_);                               \
        check(&cases[i_], name_);                                                          \
    }

/* ---- helpers ---- */

static int32_t irand(int32_t lo, int32_t hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int32_t)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

static pare_tensor *tens(int dt, int rank, const int64_t *dims)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, dt, rank, dims, &t, &err), PARE_OK);
    return t;
}

static double get(const pare_tensor *t, int64_t i)
{
    return pare_dtype_get_f64(t->dtype, t->data, (size_t)i);
}

static void put(pare_tensor *t, int64_t i, double v)
{
    pare_dtype_set_f64(t->dtype, t->data, (size_t)i, v);
}

/* random bytes: the whole range of an integer type, every float8 code;
 * int32 values shifted down by random amounts, for magnitudes of all sizes */
static void fill_bytes(pare_tensor *t)
{
    for (size_t i = 0; i < t->nbytes; i++)
        ((uint8_t *)t->data)[i] = (uint8_t)irand(0, 255);
    for (uint64_t i = 0; t->dtype == PARE_DT_INT32 && i < pare_tensor_numel(t); i++)
        ((int32_t *)t->data)[i] >>= irand(0, 31);
}

/* a "device" buffer: 16-byte aligned as cudaMalloc's, filled with a
 * pattern so that an element the kernel leaves unwritten shows */
static void *dbuf(size_t bytes)
{
    size_t n = (bytes + 16) / 16 * 16;
    void *p = aligned_alloc(16, n);
    assert_non_null(p);
    memset(p, 0xa5, n);
    return p;
}

static bool is_f8(int dt)
{
    return dt == PARE_DT_FLOAT8E4M3FN || dt == PARE_DT_FLOAT8E5M2;
}

/* a float value equal to the CPU's: the same bits, or both NaN */
static bool same_value(double want, double got)
{
    return (isnan(want) && isnan(got)) || (want == got && signbit(want) == signbit(got));
}

/* got (want's dtype and element count) equals want: float types value
 * for value (same_value), the others byte for byte, padding included */
static void expect_same(const pare_tensor *want, const void *got, const char *what)
{
    int dt = want->dtype;
    if (!pare_dtype_is_float(dt) && !memcmp(want->data, got, want->nbytes))
        return;
    for (uint64_t i = 0; i < pare_tensor_numel(want); i++) {
        double a = get(want, (int64_t)i), b = pare_dtype_get_f64(dt, got, (size_t)i);
        if (!same_value(a, b))
            fail_msg("%s: element %llu is %g, expected %g", what, (unsigned long long)i, b, a);
    }
    if (!pare_dtype_is_float(dt))
        fail_msg("%s: the padding nibble differs", what);
}

typedef struct iattr {
    const char *name;
    int64_t v;
} iattr;

/* The CPU executor's outputs of one node domain::op over ins (NULL: an
 * omitted input), as a session of a one-node model computes them. */
static pare_tensor **cpu_node(const char *domain, const char *op, pare_tensor *const *ins,
                              size_t n_ins, const iattr *attrs, size_t n_attrs, size_t n_out)
{
    pare_error err;
    pare_model *m = new_model(21);
    if (*domain)
        assert_int_equal(pare_model_set_opset(m, domain, 1, &err), PARE_OK);
    pare_graph *g = pare_model_graph(m);
    pare_value *iv[9] = {0}, *ov[3];
    pare_tensor *feed[9];
    size_t nf = 0;
    assert_true(n_ins <= 9 && n_out <= 3);
    for (size_t i = 0; i < n_ins; i++) {
        if (!ins[i])
            continue;
        assert_int_equal(pare_graph_new_value(g, NULL, "in", ins[i]->dtype, &iv[i], &err),
                         PARE_OK);
        assert_int_equal(pare_value_set_dims(iv[i], ins[i]->dtype, ins[i]->rank, ins[i]->dims,
                                             &err),
                         PARE_OK);
        assert_int_equal(pare_graph_add_input(g, iv[i], &err), PARE_OK);
        feed[nf++] = ins[i]; /* unnamed: matched by position */
    }
    for (size_t o = 0; o < n_out; o++)
        assert_int_equal(pare_graph_new_value(g, NULL, "out", 0, &ov[o], &err), PARE_OK);
    pare_node *n;
    assert_int_equal(pare_graph_add_node(g, NULL, domain, op, iv, n_ins, ov, n_out, NULL, &n,
                                         &err),
                     PARE_OK);
    for (size_t a = 0; a < n_attrs; a++)
        assert_int_equal(pare_node_set_attr_int(n, attrs[a].name, attrs[a].v, &err), PARE_OK);
    for (size_t o = 0; o < n_out; o++)
        output(g, ov[o]);
    size_t got;
    pare_tensor **outs = run(m, true, feed, nf, &got, NULL);
    assert_int_equal(got, n_out);
    pare_model_free(m);
    return outs;
}

static void free_all(pare_tensor **ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pare_tensor_free(ts[i]);
}

/* ---- float8 conversions of the emulator ---- */

/* all 256 float8 codes through DequantizeLinear without a scale: the
 * kernel's double product by 1 is exact, so y is the decoded code */
static void test_fp8_decode(void **state)
{
    (void)state;
    const int fmts[2] = {PCU_DT_F8E4M3FN, PCU_DT_F8E5M2};
    uint8_t codes[256];
    for (int i = 0; i < 256; i++)
        codes[i] = (uint8_t)i;
    float *y = dbuf(256 * sizeof *y);
    pcu_qmap m = {PCU_Q_TENSOR, 256, 256, 1, 0, 0};
    for (int f = 0; f < 2; f++) {
        assert_int_equal(pcu_dequantize(fmts[f], codes, PCU_DT_F32, NULL, NULL, PCU_DT_F32, y, &m,
                                        NULL),
                         cudaSuccess);
        for (int i = 0; i < 256; i++)
            if (!same_value(pare_f8_to_f32(fmts[f], (uint8_t)i), y[i]))
                fail_msg("%s code 0x%02x decodes to %g, lib/dtype's %g", pare_dtype_name(fmts[f]),
                         i, y[i], pare_f8_to_f32(fmts[f], (uint8_t)i));
    }
    free(y);
}

/* code c of a narrow float type as lib/dtype decodes it */
static float decode(int dt, int c)
{
    if (dt == PARE_DT_FLOAT16)
        return pare_f16_to_f32((uint16_t)c);
    if (dt == PARE_DT_BFLOAT16)
        return pare_bf16_to_f32((uint16_t)c);
    return pare_f8_to_f32(dt, (uint8_t)c);
}

/* floats that probe the positive codes lo..hi (ascending values) of a
 * narrow float type, appended to v at *n: each value, the midpoint to the
 * next (a tie: to even), the floats either side of it; past the largest
 * finite value the overflow threshold (half an ulp above it) instead */
static void probe_codes(int dt, int lo, int hi, float *v, size_t *n)
{
    for (int c = lo; c <= hi && isfinite(decode(dt, c)); c++) {
        float f = decode(dt, c), next = decode(dt, c + 1);
        float mid = isfinite(next) ? (f + next) / 2 : f + (f - decode(dt, c - 1)) / 2;
        v[(*n)++] = f;
        v[(*n)++] = mid;
        v[(*n)++] = nextafterf(mid, 0.0f);
        v[(*n)++] = nextafterf(mid, INFINITY);
    }
}

/* then what lies beyond every format: far past the largest value,
 * infinity, NaN, underflow (tiny: a quarter of the smallest subnormal) and
 * float subnormals; and all of them negated */
static void probe_finish(float tiny, float *v, size_t *n)
{
    const float extra[] = {1e30f, 3.0e38f, INFINITY, NAN, tiny, 1e-30f, 1e-40f};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        v[(*n)++] = extra[i];
    for (size_t i = 0, half = *n; i < half; i++)
        v[(*n)++] = -v[i];
}

/* float -> float8 through QuantizeLinear with scale 1 (x / 1 is x) against
 * lib/dtype's encoder, saturating or not; NaN gives CUDA's canonical 0x7f */
static void test_fp8_encode(void **state)
{
    (void)state;
    const int fmts[2] = {PCU_DT_F8E4M3FN, PCU_DT_F8E5M2};
    float x[1200], one = 1.0f;
    uint8_t *y = dbuf(sizeof x);
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        probe_codes(fmts[f], 0, 127, x, &n);
        probe_finish(decode(fmts[f], 1) / 4, x, &n);
        assert_true(n <= sizeof x / sizeof *x);
        pcu_qmap m = {PCU_Q_TENSOR, (int64_t)n, (int64_t)n, 1, 0, 0};
        for (int sat = 0; sat < 2; sat++) {
            assert_int_equal(pcu_quantize(PCU_DT_F32, x, PCU_DT_F32, &one, NULL, fmts[f], y,
                                          PCU_DT_F32, sat, &m, NULL),
                             cudaSuccess);
            for (size_t i = 0; i < n; i++) {
                uint8_t want = pare_f32_to_f8(fmts[f], x[i], sat);
                bool ok = isnan(x[i]) ? y[i] == 0x7f : y[i] == want;
                if (!ok)
                    fail_msg("%s saturate %d: %a gives 0x%02x, lib/dtype's 0x%02x",
                             pare_dtype_name(fmts[f]), sat, (double)x[i], y[i], want);
            }
        }
    }
    free(y);
}

/* The emulator's float16 and bfloat16 conversions, which the kernels'
 * float16 and bfloat16 loads and stores rest on, against lib/dtype's:
 * float -> type through DequantizeLinear's store (1 times a float32 scale
 * of the probe) over the subnormals, the top of the range and random bit
 * patterns; every code -> float through its load of a scale of the type. */
static void test_half_conversions(void **state)
{
    (void)state;
    const int types[2] = {PARE_DT_FLOAT16, PARE_DT_BFLOAT16}, top[2] = {0x7bff, 0x7f7f};
    const int64_t ncodes = 65536;
    float *v = malloc(16384 * sizeof *v), *y = dbuf((size_t)ncodes * sizeof *y);
    int32_t *ones = malloc((size_t)ncodes * sizeof *ones);
    uint16_t *codes = malloc((size_t)ncodes * sizeof *codes);
    for (int64_t i = 0; i < ncodes; i++) {
        ones[i] = 1;
        codes[i] = (uint16_t)i;
    }
    for (int t = 0; t < 2; t++) {
        size_t nv = 0;
        probe_codes(types[t], 0, 0x401, v, &nv);
        probe_codes(types[t], top[t] - 15, top[t], v, &nv);
        for (int i = 0; i < 2000; i++) {
            uint32_t bits = (uint32_t)irand(0, 0xffff) << 16 | (uint32_t)irand(0, 0xffff);
            memcpy(&v[nv++], &bits, 4);
        }
        probe_finish(decode(types[t], 1) / 4, v, &nv);
        assert_true(nv <= 16384);
        int64_t n = (int64_t)nv;
        pcu_qmap m = {PCU_Q_AXIS, n, 1, n, 0, 0};
        assert_int_equal(pcu_dequantize(PCU_DT_I32, ones, F32, v, NULL, types[t], y, &m, NULL),
                         cudaSuccess);
        pare_tensor *want = tens(types[t], 1, &n);
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)want->data)[i] = t ? pare_f32_to_bf16(v[i]) : pare_f32_to_f16(v[i]);
        expect_same(want, y, pare_dtype_name(types[t]));
        pare_tensor_free(want);
        /* and back: every code as a scale, to float32 */
        m = (pcu_qmap){PCU_Q_AXIS, ncodes, 1, ncodes, 0, 0};
        assert_int_equal(pcu_dequantize(PCU_DT_I32, ones, types[t], codes, NULL, F32, y, &m, NULL),
                         cudaSuccess);
        for (int64_t i = 0; i < ncodes; i++)
            if (!same_value(decode(types[t], (int)i), y[i]))
                fail_msg("%s code 0x%04x decodes to %g, lib/dtype's %g", pare_dtype_name(types[t]),
                         (unsigned)i, y[i], decode(types[t], (int)i));
    }
    free(codes);
    free(v);
    free(y);
    free(ones);
}

/* ---- QuantizeLinear and DequantizeLinear ---- */

typedef struct qspec {
    int qt;          /* quantized type: QuantizeLinear's y, DequantizeLinear's x */
    int ft, st;      /* float type (QuantizeLinear's x, DequantizeLinear's y), scale's */
    int mode, axis;  /* PCU_Q_*; the axis of AXIS and BLOCK */
    int64_t block;   /* BLOCK's block_size */
    int64_t dims[3]; /* x */
    bool zp;         /* a zero point (QuantizeLinear without one: output_dtype) */
    int precision;   /* QuantizeLinear's precision attribute, 0 for none */
    int saturate;    /* QuantizeLinear to float8 */
    int yoff;        /* DequantizeLinear: y this many bytes past 16-byte alignment */
} qspec;

typedef struct qparams {
    pare_tensor *scale, *zp; /* zp NULL: none */
    pcu_qmap m;              /* as lib/cuda/ops_host.c's pcu_qlayout_make fills it */
} qparams;

/* the range of an integer type of up to 16 bits */
static void int_range(int dt, int32_t *lo, int32_t *hi)
{
    int bits = pare_dtype_bits(dt);
    *lo = pare_dtype_is_signed(dt) ? -(1 << (bits - 1)) : 0;
    *hi = *lo + (1 << bits) - 1;
}

/* scale and zero point of s: QuantizeLinear's scales have few mantissa
 * bits, so that x = scale * m / 2 divides back exactly (ties), unless a
 * precision narrower than theirs is to round them */
static void qparams_make(const qspec *s, bool quant, qparams *P)
{
    int64_t n = s->dims[0] * s->dims[1] * s->dims[2], sd[3];
    int srank = 0;
    P->m = (pcu_qmap){PCU_Q_TENSOR, n, n, 1, 0, 0};
    if (s->mode != PCU_Q_TENSOR) {
        P->m.mode = s->mode;
        P->m.axis_len = s->dims[s->axis];
        P->m.inner = 1;
        for (int d = s->axis + 1; d < 3; d++)
            P->m.inner *= s->dims[d];
        if (s->mode == PCU_Q_AXIS) {
            srank = 1;
            sd[0] = s->dims[s->axis];
        } else {
            P->m.bs = s->block;
            P->m.nblk = (s->dims[s->axis] + s->block - 1) / s->block;
            srank = 3;
            memcpy(sd, s->dims, sizeof sd);
            sd[s->axis] = P->m.nblk;
        }
    }
    P->scale = tens(s->st, srank, sd);
    for (uint64_t i = 0; i < pare_tensor_numel(P->scale); i++) {
        double tail = s->precision ? irand(1, 4095) / 65536.0 : 0;
        double v = quant ? ldexp(1 + irand(0, 7) / 8.0 + tail, irand(-6, -2))
                         : ldexp(1 + irand(0, 255) / 256.0, irand(-8, 2)) * (irand(0, 1) ? 1 : -1);
        put(P->scale, (int64_t)i, v);
    }
    P->zp = NULL;
    if (s->zp) {
        P->zp = tens(s->qt, srank, sd);
        if (!is_f8(s->qt)) /* float8 zero points are 0 */
            fill_bytes(P->zp);
    }
}

/* QuantizeLinear's x at element e of scale sc: special values first, then
 * halves of integers across 1.5 times the output range (ties, saturation
 * at both ends) or, for float8, magnitudes across the format's range */
static double quant_input(int qt, double sc, int64_t e)
{
    static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e30, -1e-30};
    if (e < (int64_t)(sizeof special / sizeof *special))
        return special[e];
    if (is_f8(qt)) {
        bool e4 = qt == PARE_DT_FLOAT8E4M3FN;
        double mag = ldexp(1 + irand(0, 255) / 256.0, e4 ? irand(-12, 10) : irand(-18, 17));
        return sc * (irand(0, 1) ? mag : -mag);
    }
    int32_t lo, hi;
    int_range(qt, &lo, &hi);
    int32_t span = (hi - lo) * 3 / 2 + 2;
    return sc * irand(-span, span) / 2.0;
}

static void check_quantize(const qspec *s, const char *what)
{
    qparams P;
    qparams_make(s, true, &P);
    pare_tensor *x = tens(s->ft, 3, s->dims);
    for (int64_t e = 0; e < P.m.n; e++) {
        int64_t si = pcu_q_index(P.m.mode, P.m.inner, P.m.axis_len, P.m.bs, P.m.nblk, e);
        put(x, e, quant_input(s->qt, get(P.scale, si), e));
    }
    iattr at[5];
    size_t na = 0;
    if (s->mode != PCU_Q_TENSOR)
        at[na++] = (iattr){"axis", s->axis};
    if (s->mode == PCU_Q_BLOCK)
        at[na++] = (iattr){"block_size", s->block};
    if (!s->zp)
        at[na++] = (iattr){"output_dtype", s->qt};
    if (s->precision)
        at[na++] = (iattr){"precision", s->precision};
    at[na++] = (iattr){"saturate", s->saturate};
    pare_tensor *ins[3] = {x, P.scale, P.zp};
    pare_tensor **want = cpu_node("", "QuantizeLinear", ins, 3, at, na, 1);
    void *y = dbuf(want[0]->nbytes);
    /* quant.c: the precision attribute, else numpy's type of x / scale */
    int pt = s->precision ? s->precision : s->ft == s->st ? s->ft : PCU_DT_F32;
    long before = pcu_emu_launches();
    /* quant.c passes no zero point for float8 (it is 0) */
    assert_int_equal(pcu_quantize(s->ft, x->data, s->st, P.scale->data,
                                  P.zp && !is_f8(s->qt) ? P.zp->data : NULL, s->qt, y, pt,
                                  s->saturate, &P.m, NULL),
                     cudaSuccess);
    assert_int_equal(pcu_emu_launches(), before + 1);
    expect_same(want[0], y, what);
    free(y);
    pare_tensors_free(want, 1);
    free_all(ins, 3);
}

static void check_dequantize(const qspec *s, const char *what)
{
    qparams P;
    qparams_make(s, false, &P);
    pare_tensor *x = tens(s->qt, 3, s->dims);
    fill_bytes(x);
    iattr at[3];
    size_t na = 0;
    if (s->mode != PCU_Q_TENSOR)
        at[na++] = (iattr){"axis", s->axis};
    if (s->mode == PCU_Q_BLOCK)
        at[na++] = (iattr){"block_size", s->block};
    if (s->ft != s->st)
        at[na++] = (iattr){"output_dtype", s->ft};
    pare_tensor *ins[3] = {x, P.scale, P.zp};
    pare_tensor **want = cpu_node("", "DequantizeLinear", ins, 3, at, na, 1);
    char *buf = dbuf(want[0]->nbytes + (size_t)s->yoff);
    long before = pcu_emu_launches();
    assert_int_equal(pcu_dequantize(s->qt, x->data, s->st, P.scale->data,
                                    P.zp && !is_f8(s->qt) ? P.zp->data : NULL, s->ft,
                                    buf + s->yoff, &P.m, NULL),
                     cudaSuccess);
    assert_int_equal(pcu_emu_launches(), before + 1);
    expect_same(want[0], buf + s->yoff, what);
    free(buf);
    pare_tensors_free(want, 1);
    free_all(ins, 3);
}

/* qt, ft, st, mode, axis, block, dims, zp, precision, saturate, yoff */

/* per tensor: float32 x in float32 precision to 8 bits takes the
 * per-tensor kernel (its scale float32 or float16), the rest the general */
static void test_quantize_per_tensor(void **state)
{
    (void)state;
    const qspec q_per_tensor[] = {
        {PARE_DT_UINT8, F32, F32, T, 0, 0, {3, 5, 67}, true, 0, 1, 0},
        {PARE_DT_INT8, F32, F16, T, 0, 0, {2, 3, 171}, false, 0, 1, 0},
        {PARE_DT_INT8, F32, F32, T, 0, 0, {1, 1, 300}, true, 0, 1, 0},
        {PARE_DT_UINT16, F32, F32, T, 0, 0, {3, 5, 67}, true, 0, 1, 0},
        {PARE_DT_INT16, F16, F16, T, 0, 0, {2, 7, 30}, true, 0, 1, 0},
        {PARE_DT_UINT8, BF16, BF16, T, 0, 0, {2, 7, 30}, false, 0, 1, 0},
        {PARE_DT_INT8, F32, F32, T, 0, 0, {2, 7, 30}, true, F16, 1, 0}, /* float16 precision */
    };
    RUN(check_quantize, q_per_tensor);
}

static void test_quantize_per_axis(void **state)
{
    (void)state;
    const qspec q_per_axis[] = {
        {PARE_DT_UINT16, F32, F32, AX, 1, 0, {4, 6, 9}, true, 0, 1, 0},
        {PARE_DT_INT16, F16, F16, AX, 2, 0, {4, 6, 9}, true, 0, 1, 0},
        {PARE_DT_INT8, F32, F32, AX, 0, 0, {5, 3, 20}, true, BF16, 1, 0},
        {PARE_DT_UINT8, F32, BF16, AX, 1, 0, {3, 11, 7}, false, 0, 1, 0},
    };
    RUN(check_quantize, q_per_axis);
}

static void test_quantize_blocked(void **state)
{
    (void)state;
    const qspec q_blocked[] = {
        {PARE_DT_UINT8, BF16, BF16, BL, 2, 4, {3, 4, 10}, true, 0, 1, 0},
        {PARE_DT_INT16, F32, F32, BL, 1, 3, {4, 7, 5}, true, 0, 1, 0},
        {PARE_DT_INT8, F16, F32, BL, 0, 2, {5, 3, 8}, false, 0, 1, 0},
    };
    RUN(check_quantize, q_blocked);
}

/* packed two to a byte, low nibble first; odd counts leave a zero nibble */
static void test_quantize_int4(void **state)
{
    (void)state;
    const qspec q_int4[] = {
        {PARE_DT_UINT4, F32, F32, T, 0, 0, {3, 5, 67}, true, 0, 1, 0},
        {PARE_DT_INT4, F32, F32, T, 0, 0, {1, 1, 2}, false, 0, 1, 0},
        {PARE_DT_INT4, BF16, F32, BL, 1, 3, {3, 7, 5}, true, 0, 1, 0},
        {PARE_DT_UINT4, F16, F16, AX, 2, 0, {3, 3, 7}, true, 0, 1, 0},
    };
    RUN(check_quantize, q_int4);
}

static void test_quantize_fp8(void **state)
{
    (void)state;
    const qspec q_fp8[] = {
        {PARE_DT_FLOAT8E4M3FN, F32, F32, T, 0, 0, {3, 5, 67}, false, 0, 1, 0},
        {PARE_DT_FLOAT8E4M3FN, F16, F32, AX, 1, 0, {4, 6, 9}, true, 0, 0, 0},
        {PARE_DT_FLOAT8E5M2, F32, BF16, BL, 0, 2, {5, 3, 8}, false, 0, 1, 0},
        {PARE_DT_FLOAT8E5M2, BF16, BF16, T, 0, 0, {3, 5, 67}, true, 0, 0, 0},
    };
    RUN(check_quantize, q_fp8);
}

/* per tensor: 8-bit x to an aligned float32 y is the vectorised kernel
 * (a tail of n % 4 elements included); y off alignment takes the general */
static void test_dequantize_per_tensor(void **state)
{
    (void)state;
    const qspec dq_per_tensor[] = {
        {PARE_DT_UINT8, F32, F32, T, 0, 0, {3, 5, 67}, true, 0, 0, 0},
        {PARE_DT_INT8, F32, F32, T, 0, 0, {2, 3, 171}, false, 0, 0, 0},
        {PARE_DT_UINT8, F32, F16, T, 0, 0, {1, 1, 1023}, true, 0, 0, 0},
        {PARE_DT_INT8, F32, F32, T, 0, 0, {3, 5, 67}, true, 0, 0, 4},
        {PARE_DT_INT8, F32, F32, T, 0, 0, {4, 4, 16}, true, 0, 0, 0},
        {PARE_DT_UINT8, F16, F32, T, 0, 0, {2, 7, 30}, true, 0, 0, 0},
        {PARE_DT_INT32, F32, F32, T, 0, 0, {2, 7, 30}, true, 0, 0, 0},
        {PARE_DT_INT16, BF16, BF16, T, 0, 0, {2, 7, 30}, true, 0, 0, 0},
    };
    RUN(check_dequantize, dq_per_tensor);
}

static void test_dequantize_per_axis(void **state)
{
    (void)state;
    const qspec dq_per_axis[] = {
        {PARE_DT_UINT16, F16, F16, AX, 1, 0, {4, 6, 9}, true, 0, 0, 0},
        {PARE_DT_INT32, F16, F32, AX, 2, 0, {4, 6, 9}, true, 0, 0, 0},
        {PARE_DT_INT8, F32, F32, AX, 0, 0, {5, 3, 20}, true, 0, 0, 0},
        {PARE_DT_INT32, F32, F32, AX, 1, 0, {3, 11, 7}, true, 0, 0, 0},
    };
    RUN(check_dequantize, dq_per_axis);
}

static void test_dequantize_blocked(void **state)
{
    (void)state;
    const qspec dq_blocked[] = {
        {PARE_DT_INT16, BF16, F32, BL, 1, 3, {4, 7, 5}, true, 0, 0, 0},
        {PARE_DT_UINT8, F32, BF16, BL, 2, 4, {3, 4, 10}, true, 0, 0, 0},
        {PARE_DT_UINT16, F16, F16, BL, 0, 2, {5, 3, 8}, false, 0, 0, 0},
        {PARE_DT_INT32, F32, F16, BL, 1, 3, {4, 7, 5}, false, 0, 0, 0},
    };
    RUN(check_dequantize, dq_blocked);
}

static void test_dequantize_int4(void **state)
{
    (void)state;
    const qspec dq_int4[] = {
        {PARE_DT_UINT4, F32, F16, BL, 2, 4, {3, 3, 11}, true, 0, 0, 0},
        {PARE_DT_INT4, BF16, BF16, T, 0, 0, {3, 5, 67}, true, 0, 0, 0},
        {PARE_DT_INT4, F32, F32, AX, 1, 0, {1, 5, 1}, true, 0, 0, 0},
        {PARE_DT_UINT4, F16, F16, T, 0, 0, {1, 1, 3}, false, 0, 0, 0},
    };
    RUN(check_dequantize, dq_int4);
}

/* every code of the float8 inputs (random bytes: NaNs too); zero point
 * ignored */
static void test_dequantize_fp8(void **state)
{
    (void)state;
    const qspec dq_fp8[] = {
        {PARE_DT_FLOAT8E4M3FN, F32, F32, AX, 1, 0, {4, 6, 20}, true, 0, 0, 0},
        {PARE_DT_FLOAT8E5M2, F16, F16, T, 0, 0, {3, 5, 67}, false, 0, 0, 0},
        {PARE_DT_FLOAT8E5M2, BF16, F32, BL, 2, 8, {2, 3, 20}, true, 0, 0, 0},
    };
    RUN(check_dequantize, dq_fp8);
}

/* ---- DynamicQuantizeLinear ---- */

/* x of n floats in every thread order against the CPU: y, scale and zero
 * point; the workspace as the backend sizes it */
static void check_dynq(const float *x, int64_t n, const char *what)
{
    pare_tensor *xt = tens(F32, 1, &n);
    memcpy(xt->data, x, xt->nbytes);
    pare_tensor **want = cpu_node("", "DynamicQuantizeLinear", &xt, 1, NULL, 0, 3);
    uint8_t *y = dbuf((size_t)n), *yz = dbuf(1);
    float *ys = dbuf(sizeof *ys);
    void *ws = dbuf(pcu_dynq_ws_bytes(n));
    for (int order = 0; order < 3; order++) {
        char name[80];
        snprintf(name, sizeof name, "%s (n %lld, order %d)", what, (long long)n, order);
        pcu_emu_order(order);
        memset(y, 0xa5, (size_t)n);
        assert_int_equal(pcu_dynamic_quantize(x, n, y, ys, yz, ws, NULL), cudaSuccess);
        expect_same(want[0], y, name);
        expect_same(want[1], ys, name);
        expect_same(want[2], yz, name);
    }
    pcu_emu_order(0);
    free(y);
    free(yz);
    free(ys);
    free(ws);
    pare_tensors_free(want, 3);
    pare_tensor_free(xt);
}

/* sizes from one partial block of the min/max reduction to several (1024
 * elements a block), the extremes planted in different blocks and lanes,
 * so that a partial result the reduction drops changes the scale */
static void test_dynq_sizes(void **state)
{
    (void)state;
    const int64_t sizes[] = {0, 1, 300, 1025, 5000};
    float *x = malloc(5000 * sizeof *x);
    assert_non_null(x);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t n = sizes[s];
        for (int64_t i = 0; i < n; i++)
            x[i] = frand() * 3.0f;
        if (n > 1) {
            x[n / 3] = -7.25f;
            x[n - 1] = 9.5f;
        }
        check_dynq(x, n, "mixed signs");
    }
    free(x);
}

/* the range always holds 0: one-signed data, all zeros (scale 1 / 255),
 * NaNs (ignored by min and max, quantized to the zero point); [-1, 5],
 * whose zero point 1 / (6 / 255) is 42.5 in float32, rounded to even; and
 * [-1, 169]: zero point 1.5 -> 2, 169 / scale 253.5 -> 254, 256 saturates */
static void test_dynq_ranges(void **state)
{
    (void)state;
    const int64_t n = 2100;
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    const char *what[6] = {"positive", "negative", "zeros", "NaNs", "tie", "top"};
    for (int form = 0; form < 6; form++) {
        for (int64_t i = 0; i < n; i++) {
            float v = frand();
            x[i] = form == 0 ? 2.0f + v : form == 1 ? -2.0f + v : form == 2 ? 0.0f : 5 * v;
            if (form == 3 && i % 97 == 5)
                x[i] = NAN;
            if (form >= 4)
                x[i] = i == 700 ? -1.0f : i == 1500 ? (form == 4 ? 5.0f : 169.0f) : 2.0f + 2 * v;
        }
        check_dynq(x, n, what[form]);
    }
    free(x);
}

/* ---- MatMulInteger and QLinearMatMul ---- */

/* t's values within 3 of their zero points (zp, one per `inner` elements
 * in turn), the zero points 3 inside t's range: small sums, which a
 * multiplier of 1/2 turns into exact halves (rounding half to even) */
static void near_zero_point(pare_tensor *t, pare_tensor *zp, int64_t inner)
{
    int32_t lo, hi;
    int_range(t->dtype, &lo, &hi);
    int64_t nz = (int64_t)pare_tensor_numel(zp);
    for (int64_t i = 0; i < nz; i++)
        put(zp, i, irand(lo + 3, hi - 3));
    for (int64_t i = 0; i < (int64_t)pare_tensor_numel(t); i++)
        put(t, i, get(zp, i / inner % nz) + irand(-3, 3));
}

static void set_all(pare_tensor *t, double v)
{
    for (int64_t i = 0; i < (int64_t)pare_tensor_numel(t); i++)
        put(t, i, v);
}

typedef struct mmspec {
    int at, bt;
    int ar, br;
    int64_t ad[4], bd[4]; /* A's and B's dims (rank >= 2) */
    /* zero points and QLinearMatMul's scales: 0 none, 1 scalar, 2 per row
     * of A (column of B), 3 per row (column) of each of A's (B's) matrices */
    int azp, bzp;
    bool qlinear;
    int as, bs;
    int yt; /* QLinearMatMul's y: with a zero point of this type, 0 for none (y of A's) */
    bool ties; /* near_zero_point (scalar zero points), all scales 1/2 */
} mmspec;

/* the batch geometry as lib/cuda/ops_host.c's pcu_mm_geom_make gives it:
 * batch dims right-aligned and broadcast, each operand's matrix stride per
 * dim (0 where it broadcasts); a_batches, b_batches: matrices of A and B */
static void mm_geom(const mmspec *s, pcu_imm *p, int64_t *a_batches, int64_t *b_batches)
{
    int na = s->ar - 2, nbb = s->br - 2, nb = na > nbb ? na : nbb;
    int64_t stra = 1, strb = 1;
    memset(p, 0, sizeof *p);
    p->at = s->at;
    p->bt = s->bt;
    p->M = s->ad[na];
    p->K = s->ad[na + 1];
    p->N = s->bd[nbb + 1];
    p->nb = nb;
    p->batch = 1;
    for (int d = nb - 1; d >= 0; d--) {
        int ia = d - (nb - na), ib = d - (nb - nbb);
        int64_t da = ia >= 0 ? s->ad[ia] : 1, db = ib >= 0 ? s->bd[ib] : 1;
        p->bdims[d] = da > db ? da : db;
        p->sa[d] = da == 1 ? 0 : stra;
        p->sb[d] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
        p->batch *= p->bdims[d];
    }
    *a_batches = stra;
    *b_batches = strb;
}

/* a zero point or scale of layout kind (mmspec) for len rows (columns) of
 * `batches` matrices: for dt float32 scales about unit, else zero points
 * within 24 of the middle of dt's range (one far off it would shift every
 * sum alike and saturate the requantized outputs) */
static pare_tensor *mm_param(int kind, int dt, int64_t len, int64_t batches, float unit)
{
    int64_t n = kind == 1 ? 1 : kind == 2 ? len : len * batches;
    pare_tensor *t = tens(dt, kind == 1 ? 0 : 1, &n);
    int32_t lo = 0, hi = 0;
    if (dt != F32)
        int_range(dt, &lo, &hi);
    for (int64_t i = 0; i < n; i++)
        put(t, i, dt == F32 ? unit * (0.5 + irand(0, 255) / 256.0)
                            : (lo + hi) / 2 + irand(-24, 24));
    return t;
}

/* a y zero point near the middle of yt's range with its top bit set
 * (uint8 128..152, int8 -24..-1): read as the other 8-bit type, it would
 * be another value */
static pare_tensor *y_zero_point(int yt)
{
    pare_tensor *t = mm_param(1, yt, 1, 1, 0);
    put(t, 0, yt == U8 ? irand(128, 152) : irand(-24, -1));
    return t;
}

static void check_mm(const mmspec *s, const char *what)
{
    pcu_imm p;
    int64_t ab, bb;
    mm_geom(s, &p, &ab, &bb);
    pare_tensor *a = tens(s->at, s->ar, s->ad), *b = tens(s->bt, s->br, s->bd);
    fill_bytes(a);
    fill_bytes(b);
    pare_tensor *ins[8] = {a, NULL, NULL, b, NULL, NULL, NULL, NULL};
    if (s->azp)
        ins[2] = mm_param(s->azp, s->at, p.M, ab, 0);
    if (s->bzp)
        ins[5] = mm_param(s->bzp, s->bt, p.N, bb, 0);
    if (s->ties) {
        near_zero_point(a, ins[2], 1);
        near_zero_point(b, ins[5], 1);
    }
    p.azp = ins[2] ? ins[2]->data : NULL;
    p.bzp = ins[5] ? ins[5]->data : NULL;
    p.azp_kind = s->azp ? s->azp - 1 : 0;
    p.bzp_kind = s->bzp ? s->bzp - 1 : 0;
    pare_tensor **want;
    if (s->qlinear) {
        /* a_scale * b_scale / y_scale about 1 / (60 sqrt(K)): y spans its range */
        ins[1] = mm_param(s->as, F32, p.M, ab, 0.02f);
        ins[4] = mm_param(s->bs, F32, p.N, bb, 0.8f / (float)sqrt((double)p.K));
        ins[6] = mm_param(1, F32, 1, 1, 1.0f);
        ins[7] = s->yt ? y_zero_point(s->yt) : NULL;
        if (s->ties) { /* multiplier 0.5 * 0.5 / 0.5 */
            set_all(ins[1], 0.5);
            set_all(ins[4], 0.5);
            set_all(ins[6], 0.5);
        }
        p.epi = 1;
        p.as = ins[1]->data;
        p.bs = ins[4]->data;
        p.ys = ins[6]->data;
        p.as_kind = s->as - 1;
        p.bs_kind = s->bs - 1;
        p.yzp = ins[7] ? ins[7]->data : NULL;
        p.yt = s->yt ? s->yt : s->at;
        want = cpu_node("", "QLinearMatMul", ins, 8, NULL, 0, 1);
    } else {
        pare_tensor *mi[4] = {a, b, ins[2], ins[5]};
        want = cpu_node("", "MatMulInteger", mi, 4, NULL, 0, 1);
    }
    void *c = dbuf(want[0]->nbytes);
    for (int order = 0; order < 3; order++) {
        char name[80];
        snprintf(name, sizeof name, "%s order %d", what, order);
        pcu_emu_order(order);
        memset(c, 0xa5, want[0]->nbytes);
        assert_int_equal(pcu_int_matmul(&p, a->data, b->data, c, NULL), cudaSuccess);
        expect_same(want[0], c, name);
    }
    pcu_emu_order(0);
    free(c);
    pare_tensors_free(want, 1);
    free_all(ins, 8);
}

/* at, bt, ar, br, ad, bd, azp, bzp, qlinear, as, bs, yt, ties */

/* M, N and K not multiples of the 16 x 16 tile, K below and above it */
static void test_matmul_integer_zero_points(void **state)
{
    (void)state;
    const mmspec mm_zero_points[] = {
        {U8, I8, 2, 2, {37, 50}, {50, 45}, 1, 1, false, 0, 0, 0, false},
        {I8, U8, 2, 2, {17, 9}, {9, 33}, 2, 2, false, 0, 0, 0, false},
        {U8, U8, 3, 3, {3, 18, 16}, {3, 16, 20}, 3, 3, false, 0, 0, 0, false},
        {I8, I8, 2, 2, {5, 7}, {7, 1}, 0, 0, false, 0, 0, 0, false},
        {U8, U8, 2, 2, {20, 40}, {40, 17}, 0, 2, false, 0, 0, 0, false},
    };
    RUN(check_mm, mm_zero_points);
}

/* batch dims broadcast both ways, of unequal ranks */
static void test_matmul_integer_batch(void **state)
{
    (void)state;
    const mmspec mm_batch[] = {
        {I8, U8, 4, 3, {2, 1, 20, 33}, {3, 33, 17}, 2, 2, false, 0, 0, 0, false},
        {U8, I8, 2, 4, {9, 21}, {2, 2, 21, 5}, 1, 3, false, 0, 0, 0, false},
        {U8, U8, 3, 3, {4, 6, 18}, {1, 18, 19}, 3, 1, false, 0, 0, 0, false},
    };
    RUN(check_mm, mm_batch);
}

/* the requantizing epilogue: scales of every layout, y's zero point or
 * none, halves rounded to even */
static void test_qlinear_matmul(void **state)
{
    (void)state;
    const mmspec qlinear[] = {
        {U8, I8, 3, 2, {2, 19, 30}, {30, 21}, 1, 2, true, 1, 2, U8, false},
        {I8, I8, 4, 3, {2, 1, 9, 20}, {2, 20, 33}, 3, 3, true, 3, 3, I8, false},
        {U8, U8, 2, 2, {17, 40}, {40, 18}, 2, 1, true, 2, 1, 0, false},
        {I8, U8, 2, 2, {16, 16}, {16, 16}, 1, 1, true, 1, 1, U8, false},
        {U8, I8, 3, 2, {2, 20, 23}, {23, 19}, 1, 1, true, 1, 1, I8, true},
        {I8, I8, 2, 2, {18, 7}, {7, 17}, 1, 1, true, 1, 1, U8, true},
    };
    RUN(check_mm, qlinear);
}

/* ---- MatMulNBits, the row bias ---- */

typedef struct nbspec {
    int bits;
    int64_t N, K, bs;
    int zp; /* 0 none (2^(bits - 1)), 1 packed uint8, 2 of the scales' type */
    int t;  /* A's, the scales' and W's type */
} nbspec;

/* W (N x K) of pcu_nbits_dequant against the CPU's MatMulNBits of the K x K
 * identity: row k of its Y = I W^T is column k of W, exactly (one nonzero
 * product, by 1, in every sum); zeros compare without their sign (the sum
 * turns -0 into +0) */
static void check_nbits(const nbspec *s, const char *what)
{
    int64_t nblk = (s->K + s->bs - 1) / s->bs, blob = (s->bs * s->bits + 7) / 8;
    int64_t zrow = (nblk * s->bits + 7) / 8;
    int64_t ad[2] = {s->K, s->K}, bd[3] = {s->N, nblk, blob}, ns = s->N * nblk;
    int64_t nz = s->zp == 1 ? s->N * zrow : ns;
    pare_tensor *a = tens(s->t, 2, ad), *b = tens(PARE_DT_UINT8, 3, bd), *sc = tens(s->t, 1, &ns);
    pare_tensor *zp = s->zp ? tens(s->zp == 1 ? PARE_DT_UINT8 : s->t, 1, &nz) : NULL;
    for (int64_t k = 0; k < s->K; k++)
        put(a, k * s->K + k, 1.0);
    fill_bytes(b);
    for (int64_t i = 0; i < ns; i++)
        put(sc, i, ldexp(1 + irand(0, 15) / 16.0, irand(-4, 1)) * (irand(0, 1) ? 1 : -1));
    if (s->zp == 1)
        fill_bytes(zp);
    for (int64_t i = 0; s->zp == 2 && i < ns; i++)
        put(zp, i, irand(0, (2 << s->bits) - 2) / 2.0);
    pare_tensor *ins[4] = {a, b, sc, zp};
    iattr at[4] = {{"K", s->K}, {"N", s->N}, {"bits", s->bits}, {"block_size", s->bs}};
    pare_tensor **want = cpu_node("com.microsoft", "MatMulNBits", ins, s->zp ? 4 : 3, at, 4, 1);
    void *w = dbuf((size_t)(s->N * s->K) * pare_dtype_nbytes(s->t, 1));
    assert_int_equal(pcu_nbits_dequant(b->data, s->t, sc->data, zp ? zp->data : NULL,
                                       s->zp == 1, s->bits, s->N, s->K, s->bs, s->t, w, NULL),
                     cudaSuccess);
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t k = 0; k < s->K; k++) {
            double x = get(want[0], k * s->N + n);
            double y = pare_dtype_get_f64(s->t, w, (size_t)(n * s->K + k));
            if (x != y)
                fail_msg("%s: W[%lld, %lld] is %g, the CPU's %g", what, (long long)n,
                         (long long)k, y, x);
        }
    free(w);
    pare_tensors_free(want, 1);
    free_all(ins, 4);
}

/* 4 and 8 bits (and 3, whose fields straddle bytes), K not a multiple of
 * the block size, every kind of zero point, every float type */
static void test_nbits_dequant(void **state)
{
    (void)state;
    const nbspec nbits[] = {
        {4, 5, 37, 16, 0, F32}, {4, 3, 40, 32, 1, F16}, {4, 4, 21, 8, 2, BF16},
        {8, 4, 33, 16, 2, F32}, {8, 2, 20, 8, 1, BF16}, {8, 3, 17, 32, 0, F16},
        {3, 3, 29, 16, 1, F32},
    };
    RUN(check_nbits, nbits);
}

/* y[r, j] += bias[j]: the sum in float32, rounded once to the type (the
 * CPU's MatMulNBits bias step) */
static void test_add_row_bias(void **state)
{
    (void)state;
    const int types[3] = {F32, F16, BF16};
    int64_t dims[2] = {7, 45};
    for (int t = 0; t < 3; t++) {
        pare_tensor *y = tens(types[t], 2, dims), *bias = tens(types[t], 1, &dims[1]);
        pare_tensor *want = tens(types[t], 2, dims);
        for (int64_t i = 0; i < 7 * 45; i++)
            put(y, i, 8.0f * frand());
        for (int64_t j = 0; j < 45; j++)
            put(bias, j, 8.0f * frand());
        for (int64_t i = 0; i < 7 * 45; i++)
            put(want, i, (float)get(y, i) + (float)get(bias, i % 45));
        void *dy = dbuf(y->nbytes);
        memcpy(dy, y->data, y->nbytes);
        assert_int_equal(pcu_add_row_bias(types[t], dy, bias->data, 7, 45, NULL), cudaSuccess);
        expect_same(want, dy, pare_dtype_name(types[t]));
        free(dy);
        pare_tensor_free(y);
        pare_tensor_free(bias);
        pare_tensor_free(want);
    }
}

/* ---- QLinearConv ---- */

typedef struct qcspec {
    int xt, wt, yt;
    bool per_channel; /* w's scale and zero point per output channel */
    bool bias;
    bool ties; /* near_zero_point, all scales 1/2, a small bias */
} qcspec;

/* QLinearConv's device steps as lib/cuda/quant.c chains them around the
 * cuDNN convolution: x - x_zp and w - w_zp by DequantizeLinear without a
 * scale, the float convolution (here a direct loop: integer sums below
 * 2^24, exact), then pcu_qconv_requant; against the CPU's QLinearConv.
 * x is 2 x 3 x 6 x 5, w 4 x 3 x 3 x 2: y is 2 x 4 x 4 x 4. */
static void check_qconv(const qcspec *s, const char *what)
{
    enum { N = 2, C = 3, H = 6, W = 5, M = 4, KH = 3, KW = 2, OH = 4, OW = 4 };
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C, KH, KW}, m = M, nx = N * C * H * W;
    int64_t nw = M * C * KH * KW, inner = OH * OW;
    pare_tensor *ins[9] = {
        tens(s->xt, 4, xd), mm_param(1, F32, 1, 1, 0.02f), mm_param(1, s->xt, 1, 1, 0),
        tens(s->wt, 4, wd), mm_param(s->per_channel ? 2 : 1, F32, M, 1, 0.1f),
        mm_param(s->per_channel ? 2 : 1, s->wt, M, 1, 0), mm_param(1, F32, 1, 1, 0.5f),
        y_zero_point(s->yt), s->bias ? tens(PARE_DT_INT32, 1, &m) : NULL,
    };
    fill_bytes(ins[0]);
    fill_bytes(ins[3]);
    if (s->ties) {
        near_zero_point(ins[0], ins[2], 1);
        near_zero_point(ins[3], ins[5], nw / M);
        set_all(ins[1], 0.5);
        set_all(ins[4], 0.5);
        set_all(ins[6], 0.5);
    }
    for (int64_t i = 0; s->bias && i < M; i++)
        put(ins[8], i, s->ties ? irand(-40, 40) : irand(-20000, 20000));
    pare_tensor **want = cpu_node("", "QLinearConv", ins, s->bias ? 9 : 8, NULL, 0, 1);
    float *xf = dbuf((size_t)nx * 4), *wf = dbuf((size_t)nw * 4);
    float *acc = dbuf((size_t)(N * M * inner) * 4);
    void *y = dbuf(want[0]->nbytes);
    pcu_qmap mx = {PCU_Q_TENSOR, nx, nx, 1, 0, 0}, mw = {PCU_Q_TENSOR, nw, nw, 1, 0, 0};
    if (s->per_channel)
        mw = (pcu_qmap){PCU_Q_AXIS, nw, nw / M, M, 0, 0};
    assert_int_equal(pcu_dequantize(s->xt, ins[0]->data, F32, NULL, ins[2]->data, F32, xf, &mx,
                                    NULL),
                     cudaSuccess);
    assert_int_equal(pcu_dequantize(s->wt, ins[3]->data, F32, NULL, ins[5]->data, F32, wf, &mw,
                                    NULL),
                     cudaSuccess);
    for (int64_t i = 0; i < N * M * inner; i++) {
        int64_t n = i / (M * inner), o = i / inner % M, oy = i / OW % OH, ox = i % OW;
        double sum = 0;
        for (int64_t c = 0; c < C * KH * KW; c++) {
            int64_t ch = c / (KH * KW), ky = c / KW % KH, kx = c % KW;
            sum += (double)xf[((n * C + ch) * H + oy + ky) * W + ox + kx] * wf[o * C * KH * KW + c];
        }
        acc[i] = (float)sum;
    }
    assert_int_equal(pcu_qconv_requant(acc, s->bias ? ins[8]->data : NULL, ins[1]->data,
                                       ins[4]->data, s->per_channel, ins[6]->data, ins[7]->data,
                                       s->yt, y, N, M, inner, NULL),
                     cudaSuccess);
    expect_same(want[0], y, what);
    free(xf);
    free(wf);
    free(acc);
    free(y);
    pare_tensors_free(want, 1);
    free_all(ins, 9);
}

static void test_qlinear_conv(void **state)
{
    (void)state;
    const qcspec qlinear_conv[] = {
        {U8, I8, U8, false, true, false},
        {I8, I8, I8, true, false, false},
        {U8, U8, I8, true, true, false},
        {I8, U8, U8, false, false, false},
        {U8, I8, I8, true, true, true},
        {I8, U8, U8, false, false, true},
    };
    RUN(check_qconv, qlinear_conv);
}

/* ---- refusals ---- */

/* a type a launcher does not implement is refused and empty work returns
 * at once, neither launching anything */
static void test_refusals(void **state)
{
    (void)state;
    uint8_t buf[64] = {0};
    float one = 1.0f;
    pcu_qmap m = {PCU_Q_TENSOR, 8, 8, 1, 0, 0}, empty = {PCU_Q_TENSOR, 0, 0, 1, 0, 0};
    pcu_imm p = {.at = U8, .bt = U8, .M = 4, .N = 4, .K = 4, .batch = 1};
    long before = pcu_emu_launches();
    const cudaError_t no = cudaErrorNotSupported;
    assert_int_equal(pcu_dequantize(PCU_DT_F32, buf, F32, &one, NULL, F32, buf, &m, NULL), no);
    assert_int_equal(pcu_dequantize(U8, buf, PCU_DT_U8, &one, NULL, F32, buf, &m, NULL), no);
    assert_int_equal(pcu_dequantize(U8, buf, F32, &one, NULL, PCU_DT_I32, buf, &m, NULL), no);
    assert_int_equal(pcu_dequantize(U8, buf, F32, &one, NULL, F32, buf, &empty, NULL),
                     cudaSuccess);
    assert_int_equal(pcu_quantize(F32, buf, F32, &one, NULL, PCU_DT_I32, buf, F32, 1, &m, NULL),
                     no);
    assert_int_equal(pcu_quantize(U8, buf, F32, &one, NULL, U8, buf, F32, 1, &m, NULL), no);
    assert_int_equal(pcu_quantize(F32, buf, F32, &one, NULL, U8, buf, U8, 1, &m, NULL), no);
    assert_int_equal(pcu_quantize(F32, buf, F32, &one, NULL, U8, buf, F32, 1, &empty, NULL),
                     cudaSuccess);
    pcu_imm q = p;
    q.at = PCU_DT_U16;
    assert_int_equal(pcu_int_matmul(&q, buf, buf, buf, NULL), no);
    q = p;
    q.nb = PCU_MM_MAXB + 1;
    assert_int_equal(pcu_int_matmul(&q, buf, buf, buf, NULL), no);
    q = p;
    q.epi = 1;
    q.yt = PCU_DT_I32;
    assert_int_equal(pcu_int_matmul(&q, buf, buf, buf, NULL), no);
    q = p;
    q.M = 65536 * 16 + 1; /* more row tiles than a grid's y */
    assert_int_equal(pcu_int_matmul(&q, buf, buf, buf, NULL), cudaErrorInvalidConfiguration);
    q = p;
    q.batch = 0;
    assert_int_equal(pcu_int_matmul(&q, buf, buf, buf, NULL), cudaSuccess);
    assert_int_equal(pcu_nbits_dequant(buf, U8, buf, NULL, 0, 4, 2, 8, 8, F32, buf, NULL), no);
    assert_int_equal(pcu_nbits_dequant(buf, F32, buf, NULL, 0, 9, 2, 8, 8, F32, buf, NULL), no);
    assert_int_equal(pcu_nbits_dequant(buf, F32, buf, NULL, 0, 4, 2, 8, 0, F32, buf, NULL), no);
    assert_int_equal(pcu_nbits_dequant(buf, F32, buf, NULL, 0, 4, 0, 8, 8, F32, buf, NULL),
                     cudaSuccess);
    assert_int_equal(pcu_add_row_bias(PCU_DT_I32, buf, buf, 2, 2, NULL), no);
    assert_int_equal(pcu_add_row_bias(F32, buf, buf, 0, 2, NULL), cudaSuccess);
    assert_int_equal(pcu_qconv_requant((float *)buf, NULL, &one, &one, 0, &one, NULL,
                                       PCU_DT_U16, buf, 1, 1, 1, NULL),
                     no);
    assert_int_equal(pcu_qconv_requant((float *)buf, NULL, &one, &one, 0, &one, NULL, U8, buf,
                                       0, 1, 1, NULL),
                     cudaSuccess);
    assert_int_equal(pcu_emu_launches(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp8_decode),
        cmocka_unit_test(test_fp8_encode),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_quantize_per_tensor),
        cmocka_unit_test(test_quantize_per_axis),
        cmocka_unit_test(test_quantize_blocked),
        cmocka_unit_test(test_quantize_int4),
        cmocka_unit_test(test_quantize_fp8),
        cmocka_unit_test(test_dequantize_per_tensor),
        cmocka_unit_test(test_dequantize_per_axis),
        cmocka_unit_test(test_dequantize_blocked),
        cmocka_unit_test(test_dequantize_int4),
        cmocka_unit_test(test_dequantize_fp8),
        cmocka_unit_test(test_dynq_sizes),
        cmocka_unit_test(test_dynq_ranges),
        cmocka_unit_test(test_matmul_integer_zero_points),
        cmocka_unit_test(test_matmul_integer_batch),
        cmocka_unit_test(test_qlinear_matmul),
        cmocka_unit_test(test_nbits_dequant),
        cmocka_unit_test(test_add_row_bias),
        cmocka_unit_test(test_qlinear_conv),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
