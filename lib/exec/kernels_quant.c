/* Quantization kernels: QuantizeLinear, DequantizeLinear (ai.onnx and
 * com.microsoft), DynamicQuantizeLinear, MatMulInteger, ConvInteger,
 * QLinearMatMul, QLinearConv, and the onnxruntime contrib ops
 * DynamicQuantizeMatMul, MatMulIntegerToFloat, MatMulNBits and the
 * QOperator-format QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu
 * and QGemm.
 *
 * Numerics follow the ONNX reference implementation: quantization rounds
 * x / scale to nearest even in the type numpy would compute it in (the
 * promotion of x and scale, or the 'precision' attribute), adds the zero
 * point and saturates to the output range; dequantization computes
 * (x - zero_point) * scale in float32 (float64 when an int32 zero point makes
 * numpy promote) and rounds once to the output type.
 *
 * Scales and zero points are per tensor, per axis (a 1-D tensor along
 * 'axis') or blocked (same rank as x, the axis dim divided in blocks of
 * 'block_size'). Every element of x then belongs to a "run": a stretch of
 * `inner` contiguous elements sharing (outer, axis index); a run reads its
 * scales with stride 0 (per tensor / per axis) or 1 (blocked).
 *
 * Integer matrix products (MatMulInteger, ConvInteger via im2col, the
 * QLinear ops and the contrib matmuls) give the exact int32 result with
 * wrap-around, as the spec allows: small products run a direct uint32 loop
 * (defined overflow); larger ones run pare_sgemm over K chunks small enough
 * that every partial sum is exact in float32 (see igemm), and add the chunk
 * results in wrapping 32-bit arithmetic. Fast paths cover the common
 * float32 <-> 8/16-bit QuantizeLinear / DequantizeLinear loops.
 *
 * MatMulNBits dequantizes B a block at a time: for a few rows of A (token
 * generation) it fuses the dequantization into dot products per column;
 * otherwise it dequantizes a K tile of whole blocks and calls pare_sgemm.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"
#include "exec/gemm.h"

#define Q_GRAIN 16384
#define Q_RUN 256 /* elements converted per step of a run */

/* ------------------------------------------------------------------ */
/* small helpers                                                      */

static int64_t q_numel(const pare_tensor *t)
{
    return (int64_t)pare_tensor_numel(t);
}

static bool q_is_float8(int dt)
{
    return dt == PARE_DT_FLOAT8E4M3FN || dt == PARE_DT_FLOAT8E4M3FNUZ ||
           dt == PARE_DT_FLOAT8E5M2 || dt == PARE_DT_FLOAT8E5M2FNUZ;
}

/* Integer range of a quantized integer type; false for other types. */
static bool q_int_range(int dt, int32_t *lo, int32_t *hi)
{
    switch (dt) {
    case PARE_DT_UINT8: *lo = 0; *hi = 255; return true;
    case PARE_DT_INT8: *lo = -128; *hi = 127; return true;
    case PARE_DT_UINT16: *lo = 0; *hi = 65535; return true;
    case PARE_DT_INT16: *lo = -32768; *hi = 32767; return true;
    case PARE_DT_UINT4: *lo = 0; *hi = 15; return true;
    case PARE_DT_INT4: *lo = -8; *hi = 7; return true;
    case PARE_DT_UINT2: *lo = 0; *hi = 3; return true;
    case PARE_DT_INT2: *lo = -2; *hi = 1; return true;
    default: return false;
    }
}

/* All elements of t as doubles (malloc'd; NULL on failure or bad dtype). */
static double *q_to_f64(const pare_tensor *t, pare_error *err)
{
    int64_t n = q_numel(t);
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (!d) {
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!pare_dtype_convert(PARE_DT_DOUBLE, d, t->dtype, t->data, (size_t)n, true)) {
        free(d);
        pare_error_set(err, PARE_ERR_INVALID, "unsupported dtype %s", pare_dtype_name(t->dtype));
        return NULL;
    }
    return d;
}

/* All elements of t as float32 (malloc'd). */
static float *q_to_f32(const pare_tensor *t, pare_error *err)
{
    int64_t n = q_numel(t);
    float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (!d) {
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!pare_dtype_convert(PARE_DT_FLOAT, d, t->dtype, t->data, (size_t)n, true)) {
        free(d);
        pare_error_set(err, PARE_ERR_INVALID, "unsupported dtype %s", pare_dtype_name(t->dtype));
        return NULL;
    }
    return d;
}

/* Rounds v to the precision of float type dt (numpy arithmetic in that type). */
static inline double q_round_to(int dt, double v)
{
    switch (dt) {
    case PARE_DT_FLOAT: return (float)v;
    case PARE_DT_FLOAT16: return pare_f16_to_f32(pare_f32_to_f16((float)v));
    case PARE_DT_BFLOAT16: return pare_bf16_to_f32(pare_f32_to_bf16((float)v));
    default: return v;
    }
}

/* numpy's result type of arithmetic between x and a float scale. */
static int q_promote(int xdt, int sdt)
{
    if (xdt == PARE_DT_DOUBLE || sdt == PARE_DT_DOUBLE)
        return PARE_DT_DOUBLE;
    if (!pare_dtype_is_float(xdt)) /* int32 with any float: float64 */
        return PARE_DT_DOUBLE;
    if (xdt == sdt)
        return xdt;
    return PARE_DT_FLOAT;
}

/* Reads n elements of a numeric tensor from index off as doubles. */
static void q_load_run(int dt, const void *base, int64_t off, int64_t n, double *dst)
{
    const char *b = base;
    switch (dt) {
    case PARE_DT_FLOAT:
        for (int64_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, b + (off + i) * 4, 4);
            dst[i] = v;
        }
        break;
    case PARE_DT_FLOAT16:
    case PARE_DT_BFLOAT16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, b + (off + i) * 2, 2);
            dst[i] = dt == PARE_DT_FLOAT16 ? pare_f16_to_f32(v) : pare_bf16_to_f32(v);
        }
        break;
    case PARE_DT_INT32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, b + (off + i) * 4, 4);
            dst[i] = v;
        }
        break;
    case PARE_DT_UINT8:
        for (int64_t i = 0; i < n; i++)
            dst[i] = ((const uint8_t *)base)[off + i];
        break;
    case PARE_DT_INT8:
        for (int64_t i = 0; i < n; i++)
            dst[i] = ((const int8_t *)base)[off + i];
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = pare_dtype_get_f64(dt, base, (size_t)(off + i));
        break;
    }
}

/* ------------------------------------------------------------------ */
/* quantization layout: per tensor, per axis, blocked                 */

typedef struct q_layout {
    int64_t n;        /* elements of x */
    int64_t axis_len; /* A: x's dim at axis (1 per tensor) */
    int64_t inner;    /* product of dims after axis (n per tensor) */
    int64_t bs;       /* block size (blocked) */
    int64_t nblk;     /* scale dim at axis (blocked) */
    int mode;         /* 0 per tensor, 1 per axis, 2 blocked */
} q_layout;

static pare_status q_layout_make(const pare_tensor *x, const pare_tensor *scale,
                                 const pare_tensor *zp, int64_t axis_attr, int64_t block_size,
                                 q_layout *L, pare_error *err)
{
    memset(L, 0, sizeof *L);
    L->n = q_numel(x);
    int64_t ns = q_numel(scale);
    if (zp && q_numel(zp) != ns)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "zero point has %lld elements, scale has %lld",
                              (long long)q_numel(zp), (long long)ns);
    if (ns == 1) {
        L->mode = 0;
        L->axis_len = 1;
        L->inner = L->n;
        return PARE_OK;
    }
    int axis;
    pare_status st = pare_axis(axis_attr, x->rank, &axis, err);
    if (st)
        return st;
    int64_t inner = 1;
    for (int d = axis + 1; d < x->rank; d++)
        if (__builtin_mul_overflow(inner, x->dims[d], &inner)) /* only when another dim is 0 */
            return pare_error_set(err, PARE_ERR_LIMIT, "input dims overflow");
    L->axis_len = x->dims[axis];
    L->inner = inner;
    if (block_size <= 0) {
        if (scale->rank != 1 || scale->dims[0] != x->dims[axis])
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "scale of %lld elements does not match dim %d (%lld) of the "
                                  "input",
                                  (long long)ns, axis, (long long)x->dims[axis]);
        L->mode = 1;
        return PARE_OK;
    }
    if (scale->rank != x->rank)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "blocked quantization needs a scale of rank %d, got %d", x->rank,
                              scale->rank);
    int64_t nblk = x->dims[axis] / block_size + (x->dims[axis] % block_size != 0);
    for (int d = 0; d < x->rank; d++) {
        int64_t want = d == axis ? nblk : x->dims[d];
        if (scale->dims[d] != want)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "blocked quantization: scale dim %d is %lld, expected %lld", d,
                                  (long long)scale->dims[d], (long long)want);
    }
    L->mode = 2;
    L->bs = block_size;
    L->nblk = nblk;
    return PARE_OK;
}

/* Scale index of the run holding element e, the stride of the scale along
 * the run, and the run's length from e. */
static inline void q_run_at(const q_layout *L, int64_t e, int64_t *sidx, int64_t *sstride,
                            int64_t *len)
{
    if (L->mode == 0) {
        *sidx = 0;
        *sstride = 0;
        *len = L->n - e;
        return;
    }
    int64_t row = e / L->inner, j = e % L->inner;
    int64_t a = row % L->axis_len, o = row / L->axis_len;
    *len = L->inner - j;
    if (L->mode == 1) {
        *sidx = a;
        *sstride = 0;
    } else {
        *sidx = (o * L->nblk + a / L->bs) * L->inner + j;
        *sstride = 1;
    }
}

/* ------------------------------------------------------------------ */
/* QuantizeLinear                                                      */

typedef struct quant_state {
    int64_t axis, block_size, output_dtype, precision;
    bool saturate;
} quant_state;

static pare_status quant_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    quant_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->axis = pare_node_attr_int(n, "axis", 1);
    s->block_size = pare_node_attr_int(n, "block_size", 0);
    s->output_dtype = pare_node_attr_int(n, "output_dtype", 0);
    s->precision = pare_node_attr_int(n, "precision", 0);
    s->saturate = pare_node_attr_int(n, "saturate", 1) != 0;
    if (s->block_size < 0) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "block_size must not be negative");
    }
    *state = s;
    return PARE_OK;
}

typedef struct quant_job {
    const q_layout *L;
    const pare_tensor *x;
    const double *scale, *zp; /* zp NULL: 0 */
    void *y;
    int ydt, P;
    int32_t lo, hi;
    bool saturate;
    int unit; /* elements per parallel index (2 for packed 4-bit) */
    bool fast; /* aligned float32 x computed in float32 to an 8/16-bit integer type */
} quant_job;

/* The float32 fast path: q = x / s in float32 (what numpy computes), clamped
 * to the output range less the zero point (NaN goes to the low end), then
 * rounded half to even by the 1.5 * 2^23 trick, which is exact for
 * |q| <= 2^22 and vectorises. */
#define Q_FAST(name, T)                                                                      \
    static void name(const float *x, int64_t n, float s, float lo, float hi, int32_t zp,     \
                     T *y)                                                                   \
    {                                                                                        \
        for (int64_t i = 0; i < n; i++) {                                                    \
            float q = x[i] / s;                                                              \
            q = q > lo ? q : lo;                                                             \
            q = q < hi ? q : hi;                                                             \
            q = (q + 12582912.0f) - 12582912.0f;                                             \
            y[i] = (T)((int32_t)q + zp);                                                     \
        }                                                                                    \
    }
Q_FAST(q_fast_u8, uint8_t)
Q_FAST(q_fast_i8, int8_t)
Q_FAST(q_fast_u16, uint16_t)
Q_FAST(q_fast_i16, int16_t)

static void quant_range(void *ctx, int64_t b, int64_t e)
{
    const quant_job *J = ctx;
    const q_layout *L = J->L;
    int64_t e0 = b * J->unit, e1 = e * J->unit;
    if (e1 > L->n)
        e1 = L->n;
    double q[Q_RUN];
    bool is_int = J->ydt != PARE_DT_FLOAT4E2M1 && !q_is_float8(J->ydt);
    int64_t pos = e0;
    while (pos < e1) {
        int64_t si, ss, len;
        q_run_at(L, pos, &si, &ss, &len);
        if (len > e1 - pos)
            len = e1 - pos;
        if (J->fast && ss == 0) {
            float s = (float)J->scale[si];
            int32_t zp = J->zp ? (int32_t)J->zp[si] : 0;
            float lo = (float)(J->lo - zp), hi = (float)(J->hi - zp);
            const float *xf = (const float *)J->x->data + pos;
            switch (J->ydt) {
            case PARE_DT_UINT8: q_fast_u8(xf, len, s, lo, hi, zp, (uint8_t *)J->y + pos); break;
            case PARE_DT_INT8: q_fast_i8(xf, len, s, lo, hi, zp, (int8_t *)J->y + pos); break;
            case PARE_DT_UINT16: q_fast_u16(xf, len, s, lo, hi, zp, (uint16_t *)J->y + pos); break;
            default: q_fast_i16(xf, len, s, lo, hi, zp, (int16_t *)J->y + pos); break;
            }
            pos += len;
            continue;
        }
        if (len > Q_RUN)
            len = Q_RUN;
        q_load_run(J->x->dtype, J->x->data, pos, len, q);
        for (int64_t i = 0; i < len; i++) {
            double s = J->scale[si + i * ss];
            q[i] = q_round_to(J->P, q_round_to(J->P, q[i]) / q_round_to(J->P, s));
        }
        if (is_int) {
            for (int64_t i = 0; i < len; i++) {
                double r = nearbyint(q[i]);
                if (J->zp)
                    r += J->zp[si + i * ss];
                /* NaN goes to the low end, as numpy's int cast then clip does */
                int32_t v = !(r > J->lo) ? J->lo : r > J->hi ? J->hi : (int32_t)r;
                int64_t k = pos + i;
                switch (J->ydt) {
                case PARE_DT_UINT8: ((uint8_t *)J->y)[k] = (uint8_t)v; break;
                case PARE_DT_INT8: ((int8_t *)J->y)[k] = (int8_t)v; break;
                case PARE_DT_UINT16: ((uint16_t *)J->y)[k] = (uint16_t)v; break;
                case PARE_DT_INT16: ((int16_t *)J->y)[k] = (int16_t)v; break;
                case PARE_DT_UINT2: case PARE_DT_INT2: pare_int2_set(J->y, (size_t)k, v); break;
                default: pare_int4_set(J->y, (size_t)k, v); break;
                }
            }
        } else if (J->ydt == PARE_DT_FLOAT4E2M1) {
            for (int64_t i = 0; i < len; i++) {
                double v = q[i];
                if (J->zp)
                    v = q_round_to(J->P, v + J->zp[si + i * ss]);
                pare_int4_set(J->y, (size_t)(pos + i), pare_f32_to_f4e2m1((float)v));
            }
        } else {
            for (int64_t i = 0; i < len; i++)
                ((uint8_t *)J->y)[pos + i] = pare_f32_to_f8(J->ydt, (float)q[i], J->saturate);
        }
        pos += len;
    }
}

static pare_status quant_run(pare_kctx *k, pare_error *err)
{
    const quant_state *S = k->state;
    const pare_tensor *x = k->in[0], *sc = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *zpt = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !sc)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input or scale");
    if (!pare_dtype_is_float(sc->dtype) && sc->dtype != PARE_DT_INT32)
        return pare_error_set(err, PARE_ERR_INVALID, "scale dtype %s is not a float type",
                              pare_dtype_name(sc->dtype));
    if (!pare_dtype_is_float(x->dtype) && x->dtype != PARE_DT_INT32)
        return pare_error_set(err, PARE_ERR_INVALID, "input dtype %s cannot be quantized",
                              pare_dtype_name(x->dtype));
    int ydt = (int)S->output_dtype;
    if (zpt) {
        if (ydt && ydt != zpt->dtype)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "output_dtype %s differs from the zero point's %s",
                                  pare_dtype_name(ydt), pare_dtype_name(zpt->dtype));
        ydt = zpt->dtype;
    }
    if (!ydt)
        ydt = PARE_DT_UINT8;
    int32_t lo = 0, hi = 0;
    if (!q_int_range(ydt, &lo, &hi) && !q_is_float8(ydt) && ydt != PARE_DT_FLOAT4E2M1)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "cannot quantize to %s",
                              pare_dtype_name(ydt));
    q_layout L;
    pare_status st = q_layout_make(x, sc, zpt, S->axis, S->block_size, &L, err);
    if (st)
        return st;
    pare_tensor *y;
    st = k->alloc_out(k, 0, ydt, x->rank, x->dims, &y, err);
    if (st)
        return st;
    bool packed = pare_dtype_bits(ydt) < 8;
    if (packed)
        memset(y->data, 0, y->nbytes);
    if (L.n == 0)
        return PARE_OK;
    double *scale = q_to_f64(sc, err), *zp = NULL;
    if (!scale)
        return err->status;
    if (zpt && !q_is_float8(ydt)) {
        zp = q_to_f64(zpt, err);
        if (!zp) {
            free(scale);
            return err->status;
        }
    }
    int P = S->precision ? (int)S->precision : q_promote(x->dtype, sc->dtype);
    /* threads work on whole bytes of packed outputs: 2 (4-bit) or 4 (2-bit) elements */
    quant_job J = {&L, x, scale, zp, y->data, ydt, P, lo, hi, S->saturate,
                   packed ? 8 / pare_dtype_bits(ydt) : 1, false};
    J.fast = x->dtype == PARE_DT_FLOAT && P == PARE_DT_FLOAT && ((uintptr_t)x->data % 4) == 0 &&
             (ydt == PARE_DT_UINT8 || ydt == PARE_DT_INT8 || ydt == PARE_DT_UINT16 ||
              ydt == PARE_DT_INT16);
    int64_t units = (L.n + J.unit - 1) / J.unit;
    pare_parallel_for(k->pool, units, Q_GRAIN / J.unit, quant_range, &J);
    free(scale);
    free(zp);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* DequantizeLinear                                                    */

typedef struct dequant_job {
    const q_layout *L;
    const pare_tensor *x;
    const double *scale, *zp;
    void *y;
    int ydt;
    bool f64;  /* arithmetic in float64 (int32 zero point, double scale) */
    bool fast; /* 8-bit x, float32 scale and output: (x - zp) * s in float32 */
} dequant_job;

#define DQ_FAST(name, T)                                                                     \
    static void name(const T *x, int64_t n, float s, int32_t zp, float *y)                   \
    {                                                                                        \
        for (int64_t i = 0; i < n; i++)                                                      \
            y[i] = (float)((int32_t)x[i] - zp) * s;                                          \
    }
DQ_FAST(dq_fast_u8, uint8_t)
DQ_FAST(dq_fast_i8, int8_t)

static void dequant_range(void *ctx, int64_t b, int64_t e)
{
    const dequant_job *J = ctx;
    const q_layout *L = J->L;
    double v[Q_RUN];
    int64_t pos = b;
    while (pos < e) {
        int64_t si, ss, len;
        q_run_at(L, pos, &si, &ss, &len);
        if (len > e - pos)
            len = e - pos;
        if (J->fast && ss == 0) {
            float s = (float)J->scale[si], *y = (float *)J->y + pos;
            int32_t zp = J->zp ? (int32_t)J->zp[si] : 0;
            if (J->x->dtype == PARE_DT_UINT8)
                dq_fast_u8((const uint8_t *)J->x->data + pos, len, s, zp, y);
            else
                dq_fast_i8((const int8_t *)J->x->data + pos, len, s, zp, y);
            pos += len;
            continue;
        }
        if (len > Q_RUN)
            len = Q_RUN;
        q_load_run(J->x->dtype, J->x->data, pos, len, v);
        for (int64_t i = 0; i < len; i++) {
            double d = (float)v[i]; /* x.astype(float32) */
            if (J->zp)
                d -= J->zp[si + i * ss];
            d *= J->scale[si + i * ss];
            v[i] = J->f64 ? d : (float)d;
        }
        switch (J->ydt) {
        case PARE_DT_FLOAT:
            for (int64_t i = 0; i < len; i++)
                ((float *)J->y)[pos + i] = (float)v[i];
            break;
        case PARE_DT_FLOAT16:
            for (int64_t i = 0; i < len; i++)
                ((uint16_t *)J->y)[pos + i] = pare_f32_to_f16((float)v[i]);
            break;
        case PARE_DT_BFLOAT16:
            for (int64_t i = 0; i < len; i++)
                ((uint16_t *)J->y)[pos + i] = pare_f32_to_bf16((float)v[i]);
            break;
        default:
            for (int64_t i = 0; i < len; i++)
                pare_dtype_set_f64(J->ydt, J->y, (size_t)(pos + i), v[i]);
            break;
        }
        pos += len;
    }
}

static pare_status dequant_run(pare_kctx *k, pare_error *err)
{
    const quant_state *S = k->state;
    const pare_tensor *x = k->in[0], *sc = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *zpt = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !sc)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input or scale");
    int32_t lo, hi;
    bool xf8 = q_is_float8(x->dtype), xf4 = x->dtype == PARE_DT_FLOAT4E2M1;
    if (!q_int_range(x->dtype, &lo, &hi) && x->dtype != PARE_DT_INT32 && !xf8 && !xf4)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot dequantize %s",
                              pare_dtype_name(x->dtype));
    if (!pare_dtype_is_float(sc->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "scale dtype %s is not a float type",
                              pare_dtype_name(sc->dtype));
    if (zpt && !xf8 && !xf4 && zpt->dtype != x->dtype)
        return pare_error_set(err, PARE_ERR_INVALID, "zero point dtype %s differs from input's %s",
                              pare_dtype_name(zpt->dtype), pare_dtype_name(x->dtype));
    int ydt = S->output_dtype ? (int)S->output_dtype : sc->dtype;
    if (!pare_dtype_is_float(ydt))
        return pare_error_set(err, PARE_ERR_INVALID, "output dtype %s is not a float type",
                              pare_dtype_name(ydt));
    q_layout L;
    pare_status st = q_layout_make(x, sc, zpt, S->axis, S->block_size, &L, err);
    if (st)
        return st;
    pare_tensor *y;
    st = k->alloc_out(k, 0, ydt, x->rank, x->dims, &y, err);
    if (st)
        return st;
    if (L.n == 0)
        return PARE_OK;
    double *scale = q_to_f64(sc, err), *zp = NULL;
    if (!scale)
        return err->status;
    if (zpt && !xf8 && !xf4) {
        zp = q_to_f64(zpt, err);
        if (!zp) {
            free(scale);
            return err->status;
        }
    }
    bool f64 = sc->dtype == PARE_DT_DOUBLE || (zp && x->dtype == PARE_DT_INT32);
    dequant_job J = {&L, x, scale, zp, y->data, ydt, f64, false};
    J.fast = (x->dtype == PARE_DT_UINT8 || x->dtype == PARE_DT_INT8) &&
             sc->dtype == PARE_DT_FLOAT && ydt == PARE_DT_FLOAT;
    pare_parallel_for(k->pool, L.n, Q_GRAIN, dequant_range, &J);
    free(scale);
    free(zp);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* DynamicQuantizeLinear                                               */

/* Scale and zero point of uint8 asymmetric quantization of [min, max]
 * (both already widened to include 0), as the ONNX reference computes them
 * in float32. */
static void q_dynamic_params(float minx, float maxx, float *scale, float *zpi)
{
    float s = (maxx == minx ? 1.0f : (maxx - minx)) / 255.0f;
    float z0 = 0.0f - minx / s;
    float z = z0 < 0.0f ? 0.0f : z0 > 255.0f ? 255.0f : z0;
    *scale = s;
    *zpi = nearbyintf(z);
}

typedef struct dyn_minmax {
    const float *x;
    float *mins, *maxs; /* per chunk */
    int64_t chunk;
} dyn_minmax;

static void dyn_minmax_range(void *ctx, int64_t b, int64_t e)
{
    dyn_minmax *J = ctx;
    for (int64_t c = b; c < e; c++) {
        int64_t i0 = c * J->chunk;
        float mn = 0.0f, mx = 0.0f;
        for (int64_t i = i0; i < i0 + J->chunk; i++) {
            float v = J->x[i];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        J->mins[c] = mn;
        J->maxs[c] = mx;
    }
}

/* min(0, min x) and max(0, max x) over a float32 array (NaNs ignored). */
static pare_status q_minmax0(pare_threadpool *pool, const float *x, int64_t n, float *mn,
                             float *mx, pare_error *err)
{
    int64_t chunk = 65536, nch = n / chunk;
    float lo = 0.0f, hi = 0.0f;
    if (nch > 1) {
        float *buf = malloc((size_t)nch * 2 * sizeof *buf);
        if (!buf)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        dyn_minmax J = {x, buf, buf + nch, chunk};
        pare_parallel_for(pool, nch, 1, dyn_minmax_range, &J);
        for (int64_t c = 0; c < nch; c++) {
            lo = buf[c] < lo ? buf[c] : lo;
            hi = buf[nch + c] > hi ? buf[nch + c] : hi;
        }
        free(buf);
    } else {
        nch = 0;
    }
    for (int64_t i = nch * chunk; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
    return PARE_OK;
}

typedef struct dynq_job {
    const float *x;
    uint8_t *y;
    float scale, zp;
} dynq_job;

static void dynq_range(void *ctx, int64_t b, int64_t e)
{
    const dynq_job *J = ctx;
    for (int64_t i = b; i < e; i++) {
        float r = nearbyintf(J->x[i] / J->scale);
        if (r != r)
            r = 0;
        r += J->zp;
        J->y[i] = (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
    }
}

/* Quantizes n float32 values to uint8 with DynamicQuantizeLinear's rule. */
static pare_status q_dynamic_quantize(pare_threadpool *pool, const float *x, int64_t n,
                                      uint8_t *y, float *scale, float *zpi, pare_error *err)
{
    float mn = 0.0f, mx = 0.0f;
    pare_status st = q_minmax0(pool, x, n, &mn, &mx, err);
    if (st)
        return st;
    q_dynamic_params(mn, mx, scale, zpi);
    dynq_job J = {x, y, *scale, *zpi};
    pare_parallel_for(pool, n, Q_GRAIN, dynq_range, &J);
    return PARE_OK;
}

static pare_status dynquant_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype != PARE_DT_FLOAT)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be float32");
    int64_t n = q_numel(x);
    pare_tensor *y, *ys, *yz;
    pare_status st = k->alloc_out(k, 0, PARE_DT_UINT8, x->rank, x->dims, &y, err);
    if (!st)
        st = k->alloc_out(k, 1, PARE_DT_FLOAT, 0, NULL, &ys, err);
    if (!st)
        st = k->alloc_out(k, 2, PARE_DT_UINT8, 0, NULL, &yz, err);
    if (st)
        return st;
    float *xf = q_to_f32(x, err); /* aligned copy */
    if (!xf)
        return err->status;
    float scale, zpi;
    st = q_dynamic_quantize(k->pool, xf, n, y->data, &scale, &zpi, err);
    free(xf);
    if (st)
        return st;
    memcpy(ys->data, &scale, 4);
    *(uint8_t *)yz->data = (uint8_t)zpi;
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* integer GEMM core                                                   */

/* C[M, N] (int32, wrapping) = A[M, K] * B[K, N], rows of A and C with
 * strides lda / ldc. Values are zero-point-adjusted int32. */
typedef struct igemm_job {
    const int32_t *A, *B;
    int32_t *C;
    int64_t N, K, lda, ldb, ldc;
} igemm_job;

#define IG_NB 512
#define IG_KB 128

static void igemm_rows(void *ctx, int64_t r0, int64_t r1)
{
    const igemm_job *J = ctx;
    for (int64_t i = r0; i < r1; i++) {
        uint32_t *c = (uint32_t *)(J->C + i * J->ldc);
        const int32_t *a = J->A + i * J->lda;
        for (int64_t j0 = 0; j0 < J->N; j0 += IG_NB) {
            int64_t nb = J->N - j0 < IG_NB ? J->N - j0 : IG_NB;
            uint32_t acc[IG_NB];
            memset(acc, 0, (size_t)nb * sizeof *acc);
            for (int64_t k = 0; k < J->K; k++) {
                uint32_t av = (uint32_t)a[k];
                if (!av)
                    continue;
                const uint32_t *b = (const uint32_t *)(J->B + k * J->ldb + j0);
                for (int64_t j = 0; j < nb; j++)
                    acc[j] += av * b[j];
            }
            memcpy(c + j0, acc, (size_t)nb * sizeof *acc);
        }
    }
}

/* Float path: the operands are zero-point-adjusted 8-bit values, so every
 * product is at most 255*255 in magnitude and any partial sum of IG_FK of
 * them stays below 2^24, where float arithmetic is exact whatever the
 * summation order. So the product runs through pare_sgemm over K chunks
 * of IG_FK, and each exact chunk result is added into C in wrapping 32-bit
 * integer arithmetic: the same bits as a direct int32 accumulation. */
#define IG_FK 256

typedef struct igemm_acc_job {
    const float *Cf;
    int32_t *C;
    int64_t N, ldc;
    bool first;
} igemm_acc_job;

static void igemm_acc_rows(void *ctx, int64_t r0, int64_t r1)
{
    const igemm_acc_job *J = ctx;
    for (int64_t i = r0; i < r1; i++) {
        const float *cf = J->Cf + i * J->N;
        uint32_t *c = (uint32_t *)(J->C + i * J->ldc);
        if (J->first)
            for (int64_t j = 0; j < J->N; j++)
                c[j] = (uint32_t)(int32_t)cf[j];
        else
            for (int64_t j = 0; j < J->N; j++)
                c[j] += (uint32_t)(int32_t)cf[j];
    }
}

/* C[M, N] (int32, wrapping) = A[M, K] * B[K, N] for zero-point-adjusted
 * 8-bit operands held as int32 (rows of A, B, C with strides lda/ldb/ldc). */
static pare_status igemm(pare_threadpool *pool, int64_t M, int64_t N, int64_t K,
                         const int32_t *A, int64_t lda, const int32_t *B, int64_t ldb, int32_t *C,
                         int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return PARE_OK;
    if (M * N * K < (int64_t)1 << 16) { /* small: the direct loop */
        igemm_job J = {A, B, C, N, K, lda, ldb, ldc};
        pare_parallel_for(pool, M, M, igemm_rows, &J);
        return PARE_OK;
    }
    int64_t kc = K < IG_FK ? K : IG_FK;
    float *Af = malloc((size_t)(M * K + 1) * sizeof *Af);
    float *Bf = malloc((size_t)(kc * N + 1) * sizeof *Bf);
    float *Cf = malloc((size_t)(M * N) * sizeof *Cf);
    pare_status st = PARE_OK;
    if (!Af || !Bf || !Cf) {
        st = PARE_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t t = 0; t < K; t++)
            Af[i * K + t] = (float)A[i * lda + t];
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
        int64_t kn = K - k0 < kc ? K - k0 : kc;
        for (int64_t t = 0; t < kn; t++)
            for (int64_t j = 0; j < N; j++)
                Bf[t * N + j] = (float)B[(k0 + t) * ldb + j];
        st = pare_sgemm(pool, false, false, M, N, kn, 1.0f, Af + k0, K, Bf, N, 0.0f, Cf, N);
        if (st)
            goto done;
        igemm_acc_job J = {Cf, C, N, ldc, k0 == 0};
        int64_t grain = Q_GRAIN / N;
        pare_parallel_for(pool, M, grain < 1 ? 1 : grain, igemm_acc_rows, &J);
    }
done:
    free(Af);
    free(Bf);
    free(Cf);
    return st;
}

/* All elements of an integer tensor as int32 (malloc'd). */
static pare_status q_read_ints(const pare_tensor *t, int32_t **out, pare_error *err)
{
    int64_t n = q_numel(t);
    int32_t *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (!d)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (!pare_dtype_is_int(t->dtype) ||
        !pare_dtype_convert(PARE_DT_INT32, d, t->dtype, t->data, (size_t)n, false)) {
        free(d);
        return pare_error_set(err, PARE_ERR_INVALID, "expected an integer tensor, got %s",
                              pare_dtype_name(t->dtype));
    }
    *out = d;
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* batched matmul shapes (numpy matmul semantics)                      */

typedef struct mm_shape {
    int64_t M, N, K, batch;
    int rank;
    int64_t dims[PARE_MAX_RANK];
    int64_t *aoff, *boff; /* per batch: matrix index in A and in B */
    int64_t a_batches, b_batches;
} mm_shape;

static void mm_shape_release(mm_shape *s)
{
    free(s->aoff);
    free(s->boff);
}

static pare_status mm_shape_make(const pare_tensor *a, const pare_tensor *b, mm_shape *s,
                                 pare_error *err)
{
    memset(s, 0, sizeof *s);
    if (a->rank < 1 || b->rank < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "matmul inputs must have rank >= 1");
    int64_t ad[PARE_MAX_RANK], bd[PARE_MAX_RANK];
    int ar = a->rank, br = b->rank;
    if (ar == 1) {
        ad[0] = 1;
        ad[1] = a->dims[0];
        ar = 2;
    } else {
        memcpy(ad, a->dims, (size_t)ar * 8);
    }
    if (br == 1) {
        bd[0] = b->dims[0];
        bd[1] = 1;
        br = 2;
    } else {
        memcpy(bd, b->dims, (size_t)br * 8);
    }
    s->M = ad[ar - 2];
    s->K = ad[ar - 1];
    s->N = bd[br - 1];
    if (bd[br - 2] != s->K)
        return pare_error_set(err, PARE_ERR_INVALID, "matmul: inner dims %lld and %lld differ",
                              (long long)s->K, (long long)bd[br - 2]);
    int rb;
    int64_t bdims[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(ar - 2, ad, br - 2, bd, &rb, bdims, err);
    if (st)
        return st;
    int64_t batch = 1, abat = 1, bbat = 1;
    for (int i = 0; i < rb; i++)
        batch *= bdims[i];
    for (int i = 0; i < ar - 2; i++)
        abat *= ad[i];
    for (int i = 0; i < br - 2; i++)
        bbat *= bd[i];
    s->batch = batch;
    s->a_batches = abat;
    s->b_batches = bbat;
    s->aoff = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *s->aoff);
    s->boff = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *s->boff);
    if (!s->aoff || !s->boff) {
        mm_shape_release(s);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    int64_t sa[PARE_MAX_RANK], sb[PARE_MAX_RANK];
    pare_bcast_strides(rb, bdims, ar - 2, ad, sa);
    pare_bcast_strides(rb, bdims, br - 2, bd, sb);
    for (int64_t i = 0; i < batch; i++) {
        int64_t r = i, oa = 0, ob = 0;
        for (int d = rb - 1; d >= 0; d--) {
            int64_t idx = r % bdims[d];
            r /= bdims[d];
            oa += idx * sa[d];
            ob += idx * sb[d];
        }
        s->aoff[i] = oa;
        s->boff[i] = ob;
    }
    int r = 0;
    for (int i = 0; i < rb; i++)
        s->dims[r++] = bdims[i];
    if (a->rank > 1)
        s->dims[r++] = s->M;
    if (b->rank > 1)
        s->dims[r++] = s->N;
    s->rank = r;
    return PARE_OK;
}

/* Zero point / scale layout along rows (A side) or columns (B side) of a
 * batched matmul: scalar, one per row/col, or one per batch-row/col. */
static pare_status mm_qparam(const pare_tensor *t, int64_t len, int64_t batches, int64_t *kind,
                             const char *what, pare_error *err)
{
    int64_t n = q_numel(t);
    if (n == 1)
        *kind = 0;
    else if (n == len)
        *kind = 1;
    else if (n == len * batches)
        *kind = 2;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "%s has %lld elements, expected 1 or %lld",
                              what, (long long)n, (long long)len);
    return PARE_OK;
}

static inline int64_t mm_qidx(int64_t kind, int64_t batch, int64_t len, int64_t i)
{
    return kind == 0 ? 0 : kind == 1 ? i : batch * len + i;
}

/* A - a_zp as int32 [a_batches*M, K]; zp per row (kind 1/2) or scalar. */
static pare_status mm_prep_a(const pare_tensor *a, const pare_tensor *zp, const mm_shape *s,
                             int32_t **out, pare_error *err)
{
    int32_t *v;
    pare_status st = q_read_ints(a, &v, err);
    if (st)
        return st;
    if (zp) {
        if (zp->dtype != a->dtype) {
            free(v);
            return pare_error_set(err, PARE_ERR_INVALID, "zero point dtype %s differs from %s",
                                  pare_dtype_name(zp->dtype), pare_dtype_name(a->dtype));
        }
        int64_t kind = 0;
        int32_t *z = NULL;
        st = mm_qparam(zp, s->M, s->a_batches, &kind, "A's zero point", err);
        if (!st)
            st = q_read_ints(zp, &z, err);
        if (st) {
            free(v);
            return st;
        }
        for (int64_t bt = 0; bt < s->a_batches; bt++)
            for (int64_t i = 0; i < s->M; i++) {
                int32_t zv = z[mm_qidx(kind, bt, s->M, i)];
                int32_t *row = v + (bt * s->M + i) * s->K;
                for (int64_t c = 0; c < s->K; c++)
                    row[c] -= zv;
            }
        free(z);
    }
    *out = v;
    return PARE_OK;
}

/* B - b_zp as int32 [b_batches*K, N]; zp per column (kind 1/2) or scalar. */
static pare_status mm_prep_b(const pare_tensor *b, const pare_tensor *zp, const mm_shape *s,
                             int32_t **out, pare_error *err)
{
    int32_t *v;
    pare_status st = q_read_ints(b, &v, err);
    if (st)
        return st;
    if (zp) {
        if (zp->dtype != b->dtype) {
            free(v);
            return pare_error_set(err, PARE_ERR_INVALID, "zero point dtype %s differs from %s",
                                  pare_dtype_name(zp->dtype), pare_dtype_name(b->dtype));
        }
        int64_t kind = 0;
        int32_t *z = NULL;
        st = mm_qparam(zp, s->N, s->b_batches, &kind, "B's zero point", err);
        if (!st)
            st = q_read_ints(zp, &z, err);
        if (st) {
            free(v);
            return st;
        }
        for (int64_t bt = 0; bt < s->b_batches; bt++)
            for (int64_t kk = 0; kk < s->K; kk++) {
                int32_t *row = v + (bt * s->K + kk) * s->N;
                for (int64_t j = 0; j < s->N; j++)
                    row[j] -= z[mm_qidx(kind, bt, s->N, j)];
            }
        free(z);
    }
    *out = v;
    return PARE_OK;
}

static bool q_is_8bit(int dt)
{
    return dt == PARE_DT_UINT8 || dt == PARE_DT_INT8;
}

/* Integer product of the batched matmul into acc [batch*M*N]. */
static pare_status mm_int_product(pare_kctx *k, const pare_tensor *a, const pare_tensor *b,
                                  const pare_tensor *azp, const pare_tensor *bzp,
                                  const mm_shape *s, int32_t *acc, pare_error *err)
{
    if (!q_is_8bit(a->dtype) || !q_is_8bit(b->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "inputs must be int8 or uint8, got %s and %s",
                              pare_dtype_name(a->dtype), pare_dtype_name(b->dtype));
    int32_t *A = NULL, *B = NULL;
    pare_status st = mm_prep_a(a, azp, s, &A, err);
    if (!st)
        st = mm_prep_b(b, bzp, s, &B, err);
    for (int64_t bt = 0; bt < s->batch && !st; bt++)
        if ((st = igemm(k->pool, s->M, s->N, s->K, A + s->aoff[bt] * s->M * s->K, s->K,
                        B + s->boff[bt] * s->K * s->N, s->N, acc + bt * s->M * s->N, s->N)))
            st = pare_error_set(err, st, "out of memory");
    free(A);
    free(B);
    return st;
}

/* ------------------------------------------------------------------ */
/* MatMulInteger                                                       */

static pare_status matmulint_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *a = k->in[0], *b = k->n_in > 1 ? k->in[1] : NULL;
    if (!a || !b)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    const pare_tensor *azp = k->n_in > 2 ? k->in[2] : NULL, *bzp = k->n_in > 3 ? k->in[3] : NULL;
    mm_shape s;
    pare_status st = mm_shape_make(a, b, &s, err);
    if (st)
        return st;
    pare_tensor *y;
    st = k->alloc_out(k, 0, PARE_DT_INT32, s.rank, s.dims, &y, err);
    if (!st)
        st = mm_int_product(k, a, b, azp, bzp, &s, y->data, err);
    mm_shape_release(&s);
    return st;
}

/* ------------------------------------------------------------------ */
/* QLinearMatMul                                                       */

static pare_status qlinmm_run(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "expected 8 inputs");
    const pare_tensor *a = k->in[0], *as = k->in[1], *azp = k->in[2], *b = k->in[3],
                      *bs = k->in[4], *bzp = k->in[5], *ys = k->in[6], *yzp = k->in[7];
    if (!a || !as || !b || !bs || !ys)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    mm_shape s;
    pare_status st = mm_shape_make(a, b, &s, err);
    if (st)
        return st;
    int ydt = yzp ? yzp->dtype : a->dtype;
    int32_t lo, hi;
    int64_t ka = 0, kb = 0;
    double *dav = NULL, *dbv = NULL, *dy = NULL, *dz = NULL;
    int32_t *acc = NULL;
    pare_tensor *y;
    if (!q_int_range(ydt, &lo, &hi) || !q_is_8bit(ydt)) {
        st = pare_error_set(err, PARE_ERR_INVALID, "output dtype %s", pare_dtype_name(ydt));
        goto done;
    }
    if ((st = mm_qparam(as, s.M, s.a_batches, &ka, "a_scale", err)) ||
        (st = mm_qparam(bs, s.N, s.b_batches, &kb, "b_scale", err)))
        goto done;
    if (q_numel(ys) != 1 || (yzp && q_numel(yzp) != 1)) {
        st = pare_error_set(err, PARE_ERR_INVALID, "y_scale and y_zero_point must be scalars");
        goto done;
    }
    if ((st = k->alloc_out(k, 0, ydt, s.rank, s.dims, &y, err)))
        goto done;
    size_t nout = (size_t)(s.batch * s.M * s.N);
    acc = malloc((nout ? nout : 1) * sizeof *acc);
    if (!acc) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = mm_int_product(k, a, b, azp, bzp, &s, acc, err)))
        goto done;
    dav = q_to_f64(as, err);
    dbv = dav ? q_to_f64(bs, err) : NULL;
    dy = dbv ? q_to_f64(ys, err) : NULL;
    dz = dy && yzp ? q_to_f64(yzp, err) : NULL;
    if (!dy || (yzp && !dz)) {
        st = err->status;
        goto done;
    }
    /* multiplier a_scale * b_scale / y_scale in the scales' type */
    int P = as->dtype;
    for (int64_t bt = 0; bt < s.batch; bt++) {
        int64_t ab = s.aoff[bt], bb = s.boff[bt];
        for (int64_t i = 0; i < s.M; i++)
            for (int64_t j = 0; j < s.N; j++) {
                double m = q_round_to(P, dav[mm_qidx(ka, ab, s.M, i)] * dbv[mm_qidx(kb, bb, s.N, j)]);
                m = q_round_to(P, m / dy[0]);
                size_t o = (size_t)((bt * s.M + i) * s.N + j);
                double d = (double)acc[o] * m + (dz ? dz[0] : 0.0);
                d = nearbyint(d);
                int32_t v = d < lo ? lo : d > hi ? hi : (int32_t)d;
                if (ydt == PARE_DT_UINT8)
                    ((uint8_t *)y->data)[o] = (uint8_t)v;
                else
                    ((int8_t *)y->data)[o] = (int8_t)v;
            }
    }
done:
    free(acc);
    free(dav);
    free(dbv);
    free(dy);
    free(dz);
    mm_shape_release(&s);
    return st;
}

/* ------------------------------------------------------------------ */
/* MatMulIntegerToFloat and DynamicQuantizeMatMul (com.microsoft)      */

/* y[o] = acc[o] * a_scale * b_scale[j] + bias[j] */
static pare_status mm_to_float(pare_kctx *k, const mm_shape *s, const int32_t *acc, float ascale,
                               const pare_tensor *bs, const pare_tensor *bias, int ydt,
                               pare_error *err)
{
    int64_t kb = 0;
    pare_status st = mm_qparam(bs, s->N, s->b_batches, &kb, "b_scale", err);
    if (st)
        return st;
    if (bias && q_numel(bias) != s->N)
        return pare_error_set(err, PARE_ERR_INVALID, "bias has %lld elements, expected %lld",
                              (long long)q_numel(bias), (long long)s->N);
    pare_tensor *y;
    st = k->alloc_out(k, 0, ydt, s->rank, s->dims, &y, err);
    if (st)
        return st;
    float *bsv = q_to_f32(bs, err), *bv = NULL;
    if (!bsv)
        return err->status;
    if (bias && !(bv = q_to_f32(bias, err))) {
        free(bsv);
        return err->status;
    }
    for (int64_t bt = 0; bt < s->batch; bt++)
        for (int64_t i = 0; i < s->M; i++)
            for (int64_t j = 0; j < s->N; j++) {
                size_t o = (size_t)((bt * s->M + i) * s->N + j);
                float v = (float)acc[o] * (ascale * bsv[mm_qidx(kb, s->boff[bt], s->N, j)]);
                if (bv)
                    v += bv[j];
                pare_dtype_set_f64(ydt, y->data, o, v);
            }
    free(bsv);
    free(bv);
    return PARE_OK;
}

static pare_status mmi2f_run(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 4 || !k->in[0] || !k->in[1] || !k->in[2] || !k->in[3])
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    const pare_tensor *a = k->in[0], *b = k->in[1], *as = k->in[2], *bs = k->in[3];
    const pare_tensor *azp = k->n_in > 4 ? k->in[4] : NULL, *bzp = k->n_in > 5 ? k->in[5] : NULL,
                      *bias = k->n_in > 6 ? k->in[6] : NULL;
    if (q_numel(as) != 1)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "a_scale must be a scalar");
    mm_shape s;
    pare_status st = mm_shape_make(a, b, &s, err);
    if (st)
        return st;
    size_t nout = (size_t)(s.batch * s.M * s.N);
    int32_t *acc = malloc((nout ? nout : 1) * sizeof *acc);
    if (!acc) {
        mm_shape_release(&s);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    st = mm_int_product(k, a, b, azp, bzp, &s, acc, err);
    if (!st) {
        float asv = (float)pare_dtype_get_f64(as->dtype, as->data, 0);
        st = mm_to_float(k, &s, acc, asv, bs, bias, as->dtype, err);
    }
    free(acc);
    mm_shape_release(&s);
    return st;
}

static pare_status dqmm_run(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    const pare_tensor *a = k->in[0], *b = k->in[1], *bs = k->in[2];
    const pare_tensor *bzp = k->n_in > 3 ? k->in[3] : NULL, *bias = k->n_in > 4 ? k->in[4] : NULL;
    if (a->dtype != PARE_DT_FLOAT)
        return pare_error_set(err, PARE_ERR_INVALID, "A must be float32");
    mm_shape s;
    pare_status st = mm_shape_make(a, b, &s, err);
    if (st)
        return st;
    int64_t na = q_numel(a);
    size_t nout = (size_t)(s.batch * s.M * s.N);
    int32_t *acc = malloc((nout ? nout : 1) * sizeof *acc);
    float *af = q_to_f32(a, err);
    pare_tensor *aq = NULL, *azp = NULL;
    if (!acc || !af) {
        st = acc ? err->status : pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = pare_tensor_new(NULL, PARE_DT_UINT8, a->rank, a->dims, &aq, err)) ||
        (st = pare_tensor_new(NULL, PARE_DT_UINT8, 0, NULL, &azp, err)))
        goto done;
    float ascale, zpi;
    if ((st = q_dynamic_quantize(k->pool, af, na, aq->data, &ascale, &zpi, err)))
        goto done;
    *(uint8_t *)azp->data = (uint8_t)zpi;
    if ((st = mm_int_product(k, aq, b, azp, bzp, &s, acc, err)))
        goto done;
    st = mm_to_float(k, &s, acc, ascale, bs, bias, PARE_DT_FLOAT, err);
done:
    free(acc);
    free(af);
    pare_tensor_free(aq);
    pare_tensor_free(azp);
    mm_shape_release(&s);
    return st;
}

/* ------------------------------------------------------------------ */
/* ConvInteger and QLinearConv                                         */

#define QC_MAXD 8

typedef struct qconv_state {
    int auto_pad; /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    int64_t group;
    int n_kernel, n_pads, n_strides, n_dil;
    int64_t kernel[QC_MAXD], pads[2 * QC_MAXD], strides[QC_MAXD], dil[QC_MAXD];
} qconv_state;

/* Copies list attribute `name` (at most max values) into dst; false if longer. */
static bool qconv_ints(const pare_node *n, const char *name, size_t max, int64_t *dst, int *count)
{
    const int64_t *v = NULL;
    size_t c = pare_node_attr_ints(n, name, &v);
    *count = 0;
    if (c > max)
        return false;
    if (c)
        memcpy(dst, v, c * sizeof *dst);
    *count = (int)c;
    return true;
}

static pare_status qconv_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    qconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    const char *ap = pare_node_attr_string(n, "auto_pad", "NOTSET");
    s->auto_pad = !strcmp(ap, "SAME_UPPER") ? 1 : !strcmp(ap, "SAME_LOWER") ? 2
                  : !strcmp(ap, "VALID")    ? 3 : 0;
    s->group = pare_node_attr_int(n, "group", 1);
    pare_status st = PARE_OK;
    if (!qconv_ints(n, "kernel_shape", QC_MAXD, s->kernel, &s->n_kernel) ||
        !qconv_ints(n, "pads", 2 * QC_MAXD, s->pads, &s->n_pads) ||
        !qconv_ints(n, "strides", QC_MAXD, s->strides, &s->n_strides) ||
        !qconv_ints(n, "dilations", QC_MAXD, s->dil, &s->n_dil))
        st = pare_error_set(err, PARE_ERR_UNSUPPORTED, "too many spatial dims");
    if (s->group < 1)
        st = pare_error_set(err, PARE_ERR_INVALID, "group must be >= 1");
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return PARE_OK;
}

typedef struct qconv_geom {
    int nd;
    int64_t N, C, M, G, Cg, Mg;
    int64_t in[QC_MAXD], k[QC_MAXD], out[QC_MAXD], s[QC_MAXD], d[QC_MAXD], pb[QC_MAXD];
    int64_t in_sz, out_sz, k_sz; /* products */
} qconv_geom;

static pare_status qconv_geom_make(const qconv_state *S, const pare_tensor *x,
                                   const pare_tensor *w, qconv_geom *g, pare_error *err)
{
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || x->rank - 2 > QC_MAXD || w->rank != x->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "conv input rank %d / weight rank %d",
                              x->rank, w->rank);
    int nd = x->rank - 2;
    g->nd = nd;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->G = S->group;
    int64_t wc;
    if (g->C % g->G || g->M % g->G || __builtin_mul_overflow(w->dims[1], g->G, &wc) ||
        wc != g->C)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "channels %lld / weight %lldx%lld do not fit group %lld",
                              (long long)g->C, (long long)g->M, (long long)w->dims[1],
                              (long long)g->G);
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    if (S->n_kernel && S->n_kernel != nd)
        return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape has %d dims, expected %d",
                              S->n_kernel, nd);
    if ((S->n_strides && S->n_strides != nd) || (S->n_dil && S->n_dil != nd) ||
        (S->n_pads && S->n_pads != 2 * nd))
        return pare_error_set(err, PARE_ERR_INVALID, "strides/dilations/pads do not match rank");
    g->in_sz = g->out_sz = g->k_sz = 1;
    for (int i = 0; i < nd; i++) {
        int64_t in = x->dims[2 + i], k = w->dims[2 + i];
        if (S->n_kernel && S->kernel[i] != k)
            return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape does not match weights");
        int64_t s = S->n_strides ? S->strides[i] : 1, d = S->n_dil ? S->dil[i] : 1;
        if (s < 1 || d < 1)
            return pare_error_set(err, PARE_ERR_INVALID, "strides and dilations must be >= 1");
        int64_t dk, pb, pe, out, padded;
        if (k < 1 || __builtin_mul_overflow(k - 1, d, &dk) || __builtin_add_overflow(dk, 1, &dk))
            return pare_error_set(err, PARE_ERR_INVALID, "bad kernel size or dilation");
        if (S->auto_pad == 1 || S->auto_pad == 2) {
            out = in / s + (in % s != 0);
            int64_t tot = ((out - 1) * s - in) + dk; /* (out - 1) * s < in */
            if (tot < 0)
                tot = 0;
            pb = S->auto_pad == 1 ? tot / 2 : tot - tot / 2;
            pe = tot - pb;
        } else if (S->auto_pad == 3) {
            pb = pe = 0;
        } else {
            pb = S->n_pads ? S->pads[i] : 0;
            pe = S->n_pads ? S->pads[nd + i] : 0;
        }
        if (pb < 0 || pe < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative pads");
        if (__builtin_add_overflow(in, pb, &padded) || __builtin_add_overflow(padded, pe, &padded))
            return pare_error_set(err, PARE_ERR_LIMIT, "pads overflow");
        if (padded < dk)
            return pare_error_set(err, PARE_ERR_INVALID, "kernel larger than padded input");
        out = (padded - dk) / s + 1;
        g->in[i] = in;
        g->k[i] = k;
        g->out[i] = out;
        g->s[i] = s;
        g->d[i] = d;
        g->pb[i] = pb;
        if (__builtin_mul_overflow(g->in_sz, in, &g->in_sz) ||
            __builtin_mul_overflow(g->out_sz, out, &g->out_sz) ||
            __builtin_mul_overflow(g->k_sz, k, &g->k_sz))
            return pare_error_set(err, PARE_ERR_LIMIT, "convolution sizes overflow");
    }
    /* the im2col buffer: Cg * k_sz x out_sz int32 */
    int64_t ncol;
    if (__builtin_mul_overflow(g->Cg, g->k_sz, &ncol) ||
        __builtin_mul_overflow(ncol, g->out_sz, &ncol) || ncol > INT64_MAX / 4)
        return pare_error_set(err, PARE_ERR_LIMIT, "convolution sizes overflow");
    return PARE_OK;
}

/* im2col of one group of one image: col[(c, kpos), opos] with x already
 * zero-point adjusted (padding reads 0). */
typedef struct qcol_job {
    const qconv_geom *g;
    const int32_t *x; /* Cg x in_sz */
    int32_t *col;     /* (Cg*k_sz) x out_sz */
} qcol_job;

static void qcol_rows(void *ctx, int64_t r0, int64_t r1)
{
    const qcol_job *J = ctx;
    const qconv_geom *g = J->g;
    int nd = g->nd;
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r / g->k_sz, kp = r % g->k_sz;
        int64_t kidx[QC_MAXD];
        for (int i = nd - 1; i >= 0; i--) {
            kidx[i] = kp % g->k[i];
            kp /= g->k[i];
        }
        const int32_t *xc = J->x + c * g->in_sz;
        int32_t *dst = J->col + r * g->out_sz;
        int64_t oidx[QC_MAXD] = {0};
        for (int64_t o = 0; o < g->out_sz; o++) {
            int64_t off = 0;
            bool inside = true;
            for (int i = 0; i < nd; i++) {
                int64_t p = oidx[i] * g->s[i] - g->pb[i] + kidx[i] * g->d[i];
                if (p < 0 || p >= g->in[i]) {
                    inside = false;
                    break;
                }
                off = off * g->in[i] + p;
            }
            dst[o] = inside ? xc[off] : 0;
            for (int i = nd - 1; i >= 0; i--) {
                if (++oidx[i] < g->out[i])
                    break;
                oidx[i] = 0;
            }
        }
    }
}

/* acc[N, M, out_sz] = conv(x - xzp, w - wzp) (+ bias). */
static pare_status qconv_product(pare_kctx *k, const qconv_geom *g, const pare_tensor *x,
                                 const pare_tensor *w, const pare_tensor *xzp,
                                 const pare_tensor *wzp, const pare_tensor *bias, int32_t *acc,
                                 pare_error *err)
{
    if (!q_is_8bit(x->dtype) || !q_is_8bit(w->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "inputs must be int8 or uint8, got %s and %s",
                              pare_dtype_name(x->dtype), pare_dtype_name(w->dtype));
    if (xzp && q_numel(xzp) != 1)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "x_zero_point must be a scalar");
    if (wzp && q_numel(wzp) != 1 && q_numel(wzp) != g->M)
        return pare_error_set(err, PARE_ERR_INVALID, "w_zero_point has %lld elements",
                              (long long)q_numel(wzp));
    if (bias && (bias->dtype != PARE_DT_INT32 || q_numel(bias) != g->M))
        return pare_error_set(err, PARE_ERR_INVALID, "bias must be int32 of %lld elements",
                              (long long)g->M);
    int32_t *X = NULL, *W = NULL, *col = NULL, *z = NULL;
    pare_status st = q_read_ints(x, &X, err);
    if (!st)
        st = q_read_ints(w, &W, err);
    if (st)
        goto done;
    int64_t nx = q_numel(x), wk = g->Cg * g->k_sz;
    if (xzp) {
        if ((st = q_read_ints(xzp, &z, err)))
            goto done;
        for (int64_t i = 0; i < nx; i++)
            X[i] -= z[0];
        free(z);
        z = NULL;
    }
    if (wzp) {
        if ((st = q_read_ints(wzp, &z, err)))
            goto done;
        int64_t nz = q_numel(wzp);
        for (int64_t m = 0; m < g->M; m++)
            for (int64_t i = 0; i < wk; i++)
                W[m * wk + i] -= z[nz == 1 ? 0 : m];
    }
    bool direct = g->k_sz == 1;
    for (int i = 0; i < g->nd; i++)
        if (g->s[i] != 1 || g->pb[i] != 0 || g->out[i] != g->in[i])
            direct = false;
    if (!direct) {
        size_t ncol = (size_t)(wk * g->out_sz);
        col = malloc((ncol ? ncol : 1) * sizeof *col);
        if (!col) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t gr = 0; gr < g->G; gr++) {
            const int32_t *xg = X + (n * g->C + gr * g->Cg) * g->in_sz;
            const int32_t *B = xg;
            if (!direct) {
                qcol_job J = {g, xg, col};
                int64_t gr_grain = Q_GRAIN / (g->out_sz > 0 ? g->out_sz : 1);
                pare_parallel_for(k->pool, wk, gr_grain < 1 ? 1 : gr_grain, qcol_rows, &J);
                B = col;
            }
            int32_t *C = acc + (n * g->M + gr * g->Mg) * g->out_sz;
            if ((st = igemm(k->pool, g->Mg, g->out_sz, wk, W + gr * g->Mg * wk, wk, B, g->out_sz,
                            C, g->out_sz))) {
                st = pare_error_set(err, st, "out of memory");
                goto done;
            }
            if (bias) {
                const int32_t *bv = bias->data;
                for (int64_t m = 0; m < g->Mg; m++) {
                    uint32_t bm;
                    memcpy(&bm, bv + gr * g->Mg + m, 4);
                    uint32_t *row = (uint32_t *)(C + m * g->out_sz);
                    for (int64_t o = 0; o < g->out_sz; o++)
                        row[o] += bm;
                }
            }
        }
done:
    free(X);
    free(W);
    free(col);
    free(z);
    return st;
}

static void qconv_out_dims(const qconv_geom *g, int64_t *dims)
{
    dims[0] = g->N;
    dims[1] = g->M;
    for (int i = 0; i < g->nd; i++)
        dims[2 + i] = g->out[i];
}

static pare_status convint_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0], *w = k->n_in > 1 ? k->in[1] : NULL;
    if (!x || !w)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    qconv_geom g;
    pare_status st = qconv_geom_make(k->state, x, w, &g, err);
    if (st)
        return st;
    int64_t dims[QC_MAXD + 2];
    qconv_out_dims(&g, dims);
    pare_tensor *y;
    st = k->alloc_out(k, 0, PARE_DT_INT32, x->rank, dims, &y, err);
    if (st)
        return st;
    return qconv_product(k, &g, x, w, k->n_in > 2 ? k->in[2] : NULL,
                         k->n_in > 3 ? k->in[3] : NULL, NULL, y->data, err);
}

static pare_status qlinconv_run(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "expected at least 8 inputs");
    const pare_tensor *x = k->in[0], *xs = k->in[1], *xzp = k->in[2], *w = k->in[3],
                      *ws = k->in[4], *wzp = k->in[5], *ys = k->in[6], *yzp = k->in[7];
    const pare_tensor *bias = k->n_in > 8 ? k->in[8] : NULL;
    if (!x || !xs || !w || !ws || !ys)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    qconv_geom g;
    pare_status st = qconv_geom_make(k->state, x, w, &g, err);
    if (st)
        return st;
    int ydt = yzp ? yzp->dtype : x->dtype;
    int32_t lo, hi;
    if (!q_is_8bit(ydt) || !q_int_range(ydt, &lo, &hi))
        return pare_error_set(err, PARE_ERR_INVALID, "output dtype %s", pare_dtype_name(ydt));
    int64_t nws = q_numel(ws);
    if (q_numel(xs) != 1 || q_numel(ys) != 1 || (yzp && q_numel(yzp) != 1) ||
        (nws != 1 && nws != g.M))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "scales must be scalars (w_scale: scalar or per output channel)");
    int64_t dims[QC_MAXD + 2];
    qconv_out_dims(&g, dims);
    pare_tensor *y;
    st = k->alloc_out(k, 0, ydt, x->rank, dims, &y, err);
    if (st)
        return st;
    size_t nout = (size_t)(g.N * g.M * g.out_sz);
    int32_t *acc = malloc((nout ? nout : 1) * sizeof *acc);
    double *wsv = q_to_f64(ws, err);
    if (!acc || !wsv) {
        free(acc);
        free(wsv);
        return wsv ? pare_error_set(err, PARE_ERR_NOMEM, "out of memory") : err->status;
    }
    st = qconv_product(k, &g, x, w, xzp, wzp, bias, acc, err);
    if (!st) {
        int P = xs->dtype;
        double xsv = pare_dtype_get_f64(xs->dtype, xs->data, 0);
        double ysv = pare_dtype_get_f64(ys->dtype, ys->data, 0);
        double zv = yzp ? pare_dtype_get_f64(yzp->dtype, yzp->data, 0) : 0.0;
        for (int64_t n = 0; n < g.N; n++)
            for (int64_t m = 0; m < g.M; m++) {
                double mult = q_round_to(P, q_round_to(P, xsv * wsv[nws == 1 ? 0 : m]) / ysv);
                size_t base = (size_t)((n * g.M + m) * g.out_sz);
                for (int64_t o = 0; o < g.out_sz; o++) {
                    double d = nearbyint((double)acc[base + o] * mult + zv);
                    int32_t v = d < lo ? lo : d > hi ? hi : (int32_t)d;
                    if (ydt == PARE_DT_UINT8)
                        ((uint8_t *)y->data)[base + o] = (uint8_t)v;
                    else
                        ((int8_t *)y->data)[base + o] = (int8_t)v;
                }
            }
    }
    free(acc);
    free(wsv);
    return st;
}

/* ------------------------------------------------------------------ */
/* MatMulNBits (com.microsoft)                                         */

typedef struct nbits_state {
    int64_t K, N, bits, block_size;
} nbits_state;

static pare_status nbits_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    nbits_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->K = pare_node_attr_int(n, "K", -1);
    s->N = pare_node_attr_int(n, "N", -1);
    s->bits = pare_node_attr_int(n, "bits", 4);
    s->block_size = pare_node_attr_int(n, "block_size", -1);
    if (s->K < 1 || s->N < 1 || s->bits < 1 || s->bits > 8 || s->block_size < 1 ||
        pare_node_attr_int(n, "weight_prepacked", 0) != 0) {
        free(s);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "MatMulNBits needs K, N, block_size >= 1, bits in 1..8 and no "
                              "prepacked weights");
    }
    *state = s;
    return PARE_OK;
}

/* Value of the idx-th `bits`-wide field of a little-endian bit stream. */
static inline uint32_t nb_field(const uint8_t *p, int64_t idx, int bits)
{
    int64_t bit = idx * bits;
    const uint8_t *q = p + (bit >> 3);
    uint32_t v = q[0];
    int sh = (int)(bit & 7);
    if (sh + bits > 8)
        v |= (uint32_t)q[1] << 8;
    return (v >> sh) & ((1u << bits) - 1u);
}

typedef struct nbits_job {
    const nbits_state *S;
    const uint8_t *B;
    const float *scales; /* N x nblk */
    const float *zpf;    /* unpacked float zero points or NULL */
    const uint8_t *zpp;  /* packed zero points or NULL */
    const int32_t *gidx; /* K entries or NULL */
    int64_t nblk, blob, zp_row;
    int64_t k0, kc; /* K range of this tile */
    float *W;       /* N x kc */
} nbits_job;

/* q values of positions [j0, j0 + cnt) of one block's blob, as floats. */
static void nb_unpack(const uint8_t *blob, int64_t j0, int64_t cnt, int bits, float *dst)
{
    if (bits == 8) {
        for (int64_t j = 0; j < cnt; j++)
            dst[j] = blob[j0 + j];
    } else if (bits == 4) {
        int64_t j = 0;
        if (j0 & 1) {
            dst[j++] = (float)(blob[j0 >> 1] >> 4);
        }
        const uint8_t *p = blob + ((j0 + j) >> 1);
        for (; j + 2 <= cnt; j += 2, p++) {
            dst[j] = (float)(*p & 15);
            dst[j + 1] = (float)(*p >> 4);
        }
        if (j < cnt)
            dst[j] = (float)(*p & 15);
    } else {
        for (int64_t j = 0; j < cnt; j++)
            dst[j] = (float)nb_field(blob, j0 + j, bits);
    }
}

static inline float nb_zero_point(const nbits_job *J, int64_t n, int64_t sblk)
{
    if (J->zpf)
        return J->zpf[n * J->nblk + sblk];
    if (J->zpp)
        return (float)nb_field(J->zpp + n * J->zp_row, sblk, (int)J->S->bits);
    return (float)(1u << (J->S->bits - 1));
}

/* Dequantizes rows [r0, r1) of the tile W[n, k - k0], a block segment at a time. */
static void nbits_deq_rows(void *ctx, int64_t r0, int64_t r1)
{
    const nbits_job *J = ctx;
    const nbits_state *S = J->S;
    int bits = (int)S->bits;
    for (int64_t n = r0; n < r1; n++) {
        float *w = J->W + n * J->kc;
        const uint8_t *brow = J->B + n * J->nblk * J->blob;
        if (J->gidx) { /* act-order: each k has its own group */
            for (int64_t kk = 0; kk < J->kc; kk++) {
                int64_t kg = J->k0 + kk, sblk = J->gidx[kg];
                float q = (float)nb_field(brow + (kg / S->block_size) * J->blob,
                                          kg % S->block_size, bits);
                w[kk] = (q - nb_zero_point(J, n, sblk)) * J->scales[n * J->nblk + sblk];
            }
            continue;
        }
        for (int64_t kk = 0; kk < J->kc;) {
            int64_t kg = J->k0 + kk, blk = kg / S->block_size, j0 = kg % S->block_size;
            int64_t cnt = S->block_size - j0 < J->kc - kk ? S->block_size - j0 : J->kc - kk;
            nb_unpack(brow + blk * J->blob, j0, cnt, bits, w + kk);
            float zp = nb_zero_point(J, n, blk), sc = J->scales[n * J->nblk + blk];
            for (int64_t j = 0; j < cnt; j++)
                w[kk + j] = (w[kk + j] - zp) * sc;
            kk += cnt;
        }
    }
}

/* Small M (decoding): C[m, n] = sum over blocks of s * dot(A[m, blk], q - zp),
 * dequantizing one block at a time into a stack buffer; parallel over N. */
typedef struct nbits_gemv_job {
    const nbits_job *J;
    const float *A;
    float *C;
    int64_t M, K, N;
} nbits_gemv_job;

#define NB_MAX_BLOCK 1024
#define NB_GEMV_M 4

static void nbits_gemv_cols(void *ctx, int64_t n0, int64_t n1)
{
    const nbits_gemv_job *G = ctx;
    const nbits_job *J = G->J;
    int64_t bs = J->S->block_size;
    float q[NB_MAX_BLOCK];
    for (int64_t n = n0; n < n1; n++) {
        double acc[NB_GEMV_M] = {0};
        const uint8_t *brow = J->B + n * J->nblk * J->blob;
        for (int64_t blk = 0; blk < J->nblk; blk++) {
            int64_t k0 = blk * bs, cnt = G->K - k0 < bs ? G->K - k0 : bs;
            nb_unpack(brow + blk * J->blob, 0, cnt, (int)J->S->bits, q);
            float zp = nb_zero_point(J, n, blk), sc = J->scales[n * J->nblk + blk];
            for (int64_t j = 0; j < cnt; j++)
                q[j] -= zp;
            for (int64_t m = 0; m < G->M; m++) {
                const float *a = G->A + m * G->K + k0;
                float part[8] = {0}; /* eight independent sums, so the loop vectorises */
                int64_t j = 0;
                for (; j + 8 <= cnt; j += 8)
                    for (int l = 0; l < 8; l++)
                        part[l] += a[j + l] * q[j + l];
                float d = 0.0f;
                for (; j < cnt; j++)
                    d += a[j] * q[j];
                for (int l = 0; l < 8; l++)
                    d += part[l];
                acc[m] += (double)sc * d;
            }
        }
        for (int64_t m = 0; m < G->M; m++)
            G->C[m * G->N + n] = (float)acc[m];
    }
}

static pare_status nbits_run(pare_kctx *k, pare_error *err)
{
    const nbits_state *S = k->state;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    const pare_tensor *a = k->in[0], *b = k->in[1], *sc = k->in[2];
    const pare_tensor *zp = k->n_in > 3 ? k->in[3] : NULL, *gi = k->n_in > 4 ? k->in[4] : NULL,
                      *bias = k->n_in > 5 ? k->in[5] : NULL;
    int64_t K = S->K, N = S->N, bsz = S->block_size, bits = S->bits;
    int64_t nblk = (K + bsz - 1) / bsz, blob = (bsz * bits + 7) / 8;
    if (a->rank < 1 || a->dims[a->rank - 1] != K)
        return pare_error_set(err, PARE_ERR_INVALID, "A's last dim must be K = %lld",
                              (long long)K);
    if (b->dtype != PARE_DT_UINT8 || q_numel(b) != N * nblk * blob)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "B must be uint8 of %lld x %lld x %lld elements", (long long)N,
                              (long long)nblk, (long long)blob);
    if (q_numel(sc) != N * nblk)
        return pare_error_set(err, PARE_ERR_INVALID, "scales must have %lld elements",
                              (long long)(N * nblk));
    int64_t zp_row = (nblk * bits + 7) / 8;
    if (zp) {
        if (zp->dtype == PARE_DT_UINT8) {
            if (q_numel(zp) != N * zp_row)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "packed zero points must have %lld elements",
                                      (long long)(N * zp_row));
        } else if (!pare_dtype_is_float(zp->dtype) || q_numel(zp) != N * nblk) {
            return pare_error_set(err, PARE_ERR_INVALID, "zero points must have %lld elements",
                                  (long long)(N * nblk));
        }
    }
    if (gi && (gi->dtype != PARE_DT_INT32 || q_numel(gi) != K))
        return pare_error_set(err, PARE_ERR_INVALID, "g_idx must be int32 of K elements");
    if (bias && q_numel(bias) != N)
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have N elements");
    if (!pare_dtype_is_float(a->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "A must be a float tensor");
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, a->dims, (size_t)a->rank * 8);
    dims[a->rank - 1] = N;
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, a->dtype, a->rank, dims, &y, err);
    if (st)
        return st;
    int64_t M = q_numel(a) / K;
    float *af = NULL, *scales = NULL, *zpf = NULL, *W = NULL, *C = NULL, *bv = NULL;
    int32_t *gidx = NULL;
    if (!(af = q_to_f32(a, err)) || !(scales = q_to_f32(sc, err)) ||
        (zp && zp->dtype != PARE_DT_UINT8 && !(zpf = q_to_f32(zp, err))) ||
        (bias && !(bv = q_to_f32(bias, err)))) {
        st = err->status;
        goto done;
    }
    if (gi) {
        if ((st = q_read_ints(gi, &gidx, err)))
            goto done;
        for (int64_t i = 0; i < K; i++)
            if (gidx[i] < 0 || gidx[i] >= nblk) {
                st = pare_error_set(err, PARE_ERR_INVALID, "g_idx %d out of range [0, %lld)",
                                    gidx[i], (long long)nblk);
                goto done;
            }
    }
    /* K tile: whole blocks, at most ~4M floats of dequantized weights */
    int64_t kc = bsz;
    while (kc * 2 <= K && N * kc * 2 <= (4 << 20))
        kc *= 2;
    if (kc > K)
        kc = K;
    W = malloc((size_t)(N * kc + 1) * sizeof *W);
    C = a->dtype == PARE_DT_FLOAT ? y->data : malloc((size_t)(M * N > 0 ? M * N : 1) * sizeof *C);
    if (!W || !C) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (M * N > 0 && K == 0)
        memset(C, 0, (size_t)(M * N) * sizeof *C);
    bool tiled = true;
    if (M <= NB_GEMV_M && !gidx && bsz <= NB_MAX_BLOCK) {
        nbits_job J = {S, b->data, scales, zpf, zp && !zpf ? zp->data : NULL, NULL, nblk, blob,
                       zp_row, 0, K, NULL};
        nbits_gemv_job G = {&J, af, C, M, K, N};
        int64_t grain = Q_GRAIN / (K > 0 ? K : 1);
        pare_parallel_for(k->pool, N, grain < 1 ? 1 : grain, nbits_gemv_cols, &G);
        tiled = false;
    }
    for (int64_t k0 = 0; tiled && k0 < K; k0 += kc) {
        int64_t kn = K - k0 < kc ? K - k0 : kc;
        nbits_job J = {S,      b->data, scales, zpf, zp && !zpf ? zp->data : NULL,
                       gidx,   nblk,    blob,   zp_row, k0,   kn,
                       W};
        int64_t grain = Q_GRAIN / kn;
        pare_parallel_for(k->pool, N, grain < 1 ? 1 : grain, nbits_deq_rows, &J);
        if (M > 0) {
            st = pare_sgemm(k->pool, false, true, M, N, kn, 1.0f, af + k0, K, W, kn,
                            k0 ? 1.0f : 0.0f, C, N);
            if (st) {
                st = pare_error_set(err, st, "gemm failed");
                goto done;
            }
        }
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float v = C[i * N + j] + (bv ? bv[j] : 0.0f);
            if (a->dtype == PARE_DT_FLOAT)
                C[i * N + j] = v;
            else
                pare_dtype_set_f64(a->dtype, y->data, (size_t)(i * N + j), v);
        }
done:
    free(af);
    free(scales);
    free(zpf);
    free(bv);
    free(gidx);
    free(W);
    if (C != y->data)
        free(C);
    return st;
}

/* ------------------------------------------------------------------ */
/* com.microsoft QLinearAdd, QLinearMul, QLinearSigmoid,               */
/* QLinearLeakyRelu, QGemm (onnxruntime's QOperator format)            */

/* Per-tensor parameters of one quantized operand: scale and zero point. */
typedef struct q_param {
    float scale;
    int32_t zp;
} q_param;

static pare_status q_param_get(const pare_tensor *scale, const pare_tensor *zp, int dt,
                               q_param *p, const char *what, pare_error *err)
{
    if (!scale || q_numel(scale) != 1 || !pare_dtype_is_float(scale->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "%s scale must be a float scalar", what);
    if (zp && (q_numel(zp) != 1 || zp->dtype != dt))
        return pare_error_set(err, PARE_ERR_INVALID, "%s zero point must be a %s scalar", what,
                              pare_dtype_name(dt));
    p->scale = (float)pare_dtype_get_f64(scale->dtype, scale->data, 0);
    p->zp = zp ? (int32_t)pare_dtype_get_f64(zp->dtype, zp->data, 0) : 0;
    return PARE_OK;
}

/* round(v / scale) + zp saturated to the 8-bit type dt, stored at y[i] */
static inline void q_store8(int dt, void *y, int64_t i, float v, const q_param *o)
{
    float r = nearbyintf(v / o->scale) + (float)o->zp;
    if (dt == PARE_DT_UINT8)
        ((uint8_t *)y)[i] = (uint8_t)(!(r > 0.0f) ? 0.0f : r > 255.0f ? 255.0f : r);
    else
        ((int8_t *)y)[i] = (int8_t)(!(r > -128.0f) ? -128.0f : r > 127.0f ? 127.0f : r);
}

static inline int32_t q_load8(int dt, const void *x, int64_t i)
{
    return dt == PARE_DT_UINT8 ? ((const uint8_t *)x)[i] : ((const int8_t *)x)[i];
}

typedef struct qlin_state {
    int op; /* 0 add, 1 mul, 2 sigmoid, 3 leaky relu */
    float alpha;
} qlin_state;

static pare_status qlin_init_op(const pare_node *n, int op, void **state, pare_error *err)
{
    qlin_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->op = op;
    s->alpha = pare_node_attr_float(n, "alpha", 0.01f);
    *state = s;
    return PARE_OK;
}

static pare_status qadd_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return qlin_init_op(n, 0, s, e);
}

static pare_status qmul_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return qlin_init_op(n, 1, s, e);
}

static pare_status qsigmoid_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return qlin_init_op(n, 2, s, e);
}

static pare_status qleaky_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return qlin_init_op(n, 3, s, e);
}

static pare_status qlin_binary_run(pare_kctx *k, pare_error *err)
{
    const qlin_state *S = k->state;
    if (k->n_in < 7 || !k->in[0] || !k->in[3])
        return pare_error_set(err, PARE_ERR_INVALID, "expected A, scales, zero points and B");
    const pare_tensor *a = k->in[0], *b = k->in[3];
    int dt = a->dtype;
    if (!q_is_8bit(dt) || b->dtype != dt)
        return pare_error_set(err, PARE_ERR_INVALID, "A and B must both be int8 or uint8");
    q_param pa, pb, pc;
    pare_status st;
    if ((st = q_param_get(k->in[1], k->in[2], dt, &pa, "A", err)) ||
        (st = q_param_get(k->in[4], k->in[5], dt, &pb, "B", err)) ||
        (st = q_param_get(k->in[6], k->n_in > 7 ? k->in[7] : NULL, dt, &pc, "C", err)))
        return st;
    int rank;
    int64_t dims[PARE_MAX_RANK], sa[PARE_MAX_RANK], sb[PARE_MAX_RANK];
    if ((st = pare_bcast_dims(a->rank, a->dims, b->rank, b->dims, &rank, dims, err)))
        return st;
    pare_bcast_strides(rank, dims, a->rank, a->dims, sa);
    pare_bcast_strides(rank, dims, b->rank, b->dims, sb);
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, dt, rank, dims, &y, err)))
        return st;
    int64_t n = q_numel(y), idx[PARE_MAX_RANK] = {0}, ia = 0, ib = 0;
    float mul = pa.scale * pb.scale;
    for (int64_t i = 0; i < n; i++) {
        float va = (float)(q_load8(dt, a->data, ia) - pa.zp);
        float vb = (float)(q_load8(dt, b->data, ib) - pb.zp);
        float v = S->op == 0 ? pa.scale * va + pb.scale * vb : va * vb * mul;
        q_store8(dt, y->data, i, v, &pc);
        for (int d = rank - 1; d >= 0; d--) { /* odometer over the output */
            ia += sa[d];
            ib += sb[d];
            if (++idx[d] < dims[d])
                break;
            ia -= sa[d] * dims[d];
            ib -= sb[d] * dims[d];
            idx[d] = 0;
        }
    }
    return PARE_OK;
}

static pare_status qlin_unary_run(pare_kctx *k, pare_error *err)
{
    const qlin_state *S = k->state;
    if (k->n_in < 4 || !k->in[0])
        return pare_error_set(err, PARE_ERR_INVALID, "expected X, scales and zero points");
    const pare_tensor *x = k->in[0];
    int dt = x->dtype;
    if (!q_is_8bit(dt))
        return pare_error_set(err, PARE_ERR_INVALID, "X must be int8 or uint8");
    q_param px, py;
    pare_status st;
    if ((st = q_param_get(k->in[1], k->in[2], dt, &px, "X", err)) ||
        (st = q_param_get(k->in[3], k->n_in > 4 ? k->in[4] : NULL, dt, &py, "Y", err)))
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, dt, x->rank, x->dims, &y, err)))
        return st;
    /* a table over the 256 input codes, as onnxruntime builds */
    uint8_t table[256];
    for (int c = 0; c < 256; c++) {
        int32_t q = dt == PARE_DT_UINT8 ? c : c - 128;
        float v = (float)(q - px.zp) * px.scale;
        v = S->op == 2 ? 1.0f / (1.0f + expf(-v)) : v >= 0 ? v : v * S->alpha;
        q_store8(dt, table, c, v, &py);
    }
    int64_t n = q_numel(x);
    const uint8_t *in = x->data;
    uint8_t *out = y->data;
    for (int64_t i = 0; i < n; i++)
        out[i] = table[dt == PARE_DT_UINT8 ? in[i] : (uint8_t)(in[i] ^ 0x80)];
    return PARE_OK;
}

typedef struct qgemm_state {
    float alpha;
    bool ta, tb;
} qgemm_state;

static pare_status qgemm_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    qgemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->alpha = pare_node_attr_float(n, "alpha", 1.0f);
    s->ta = pare_node_attr_int(n, "transA", 0) != 0;
    s->tb = pare_node_attr_int(n, "transB", 0) != 0;
    *state = s;
    return PARE_OK;
}

static pare_status qgemm_run(pare_kctx *k, pare_error *err)
{
    const qgemm_state *S = k->state;
    if (k->n_in < 6 || !k->in[0] || !k->in[1] || !k->in[3] || !k->in[4])
        return pare_error_set(err, PARE_ERR_INVALID, "expected A, a_scale, a_zp, B, b_scale, b_zp");
    const pare_tensor *a = k->in[0], *as = k->in[1], *azp = k->in[2], *b = k->in[3];
    const pare_tensor *bs = k->in[4], *bzp = k->in[5], *c = k->n_in > 6 ? k->in[6] : NULL;
    const pare_tensor *ys = k->n_in > 7 ? k->in[7] : NULL, *yzp = k->n_in > 8 ? k->in[8] : NULL;
    if (a->rank != 2 || b->rank != 2 || !q_is_8bit(a->dtype) || !q_is_8bit(b->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "A and B must be 8-bit matrices");
    int64_t M = S->ta ? a->dims[1] : a->dims[0], K = S->ta ? a->dims[0] : a->dims[1];
    int64_t N = S->tb ? b->dims[0] : b->dims[1];
    if ((S->tb ? b->dims[1] : b->dims[0]) != K)
        return pare_error_set(err, PARE_ERR_INVALID, "inner dims differ");
    int64_t nbs = q_numel(bs);
    if (q_numel(as) != 1 || (nbs != 1 && nbs != N) || (azp && q_numel(azp) != 1) ||
        (bzp && q_numel(bzp) != nbs))
        return pare_error_set(err, PARE_ERR_INVALID, "scales: a per tensor, b per tensor or "
                              "per column");
    if (c && (c->dtype != PARE_DT_INT32 || (q_numel(c) != 1 && q_numel(c) != N &&
                                            q_numel(c) != M * N)))
        return pare_error_set(err, PARE_ERR_INVALID, "C must be int32 broadcastable to MxN");
    int ydt = ys ? (yzp ? yzp->dtype : a->dtype) : PARE_DT_FLOAT;
    if (ys && !q_is_8bit(ydt))
        return pare_error_set(err, PARE_ERR_INVALID, "y_zero_point must be 8-bit");
    q_param py = {1.0f, 0};
    pare_status st;
    if (ys && (st = q_param_get(ys, yzp, ydt, &py, "Y", err)))
        return st;
    int64_t yd[2] = {M, N};
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, ydt, 2, yd, &y, err)))
        return st;
    int32_t *A = NULL, *B = NULL, *acc = NULL;
    float *bsv = NULL;
    if ((st = q_read_ints(a, &A, err)) || (st = q_read_ints(b, &B, err)))
        goto done;
    /* A' = op(A) - a_zp as [M, K]; B' = op(B) - b_zp as [K, N] */
    int32_t *At = malloc((size_t)(M * K + 1) * sizeof *At), *Bt = malloc((size_t)(K * N + 1) * sizeof *Bt);
    acc = malloc((size_t)(M * N + 1) * sizeof *acc);
    if (!At || !Bt || !acc) {
        free(At);
        free(Bt);
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    int32_t za = azp ? (int32_t)pare_dtype_get_f64(azp->dtype, azp->data, 0) : 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t t = 0; t < K; t++)
            At[i * K + t] = A[S->ta ? t * M + i : i * K + t] - za;
    for (int64_t t = 0; t < K; t++)
        for (int64_t j = 0; j < N; j++) {
            int32_t zb = bzp ? (int32_t)pare_dtype_get_f64(bzp->dtype, bzp->data,
                                                            (size_t)(nbs == 1 ? 0 : j))
                             : 0;
            Bt[t * N + j] = B[S->tb ? j * K + t : t * N + j] - zb;
        }
    free(A);
    free(B);
    A = At;
    B = Bt;
    if ((st = igemm(k->pool, M, N, K, A, K, B, N, acc, N))) {
        st = pare_error_set(err, st, "out of memory");
        goto done;
    }
    if (!(bsv = q_to_f32(bs, err))) {
        st = err->status;
        goto done;
    }
    float asv = (float)pare_dtype_get_f64(as->dtype, as->data, 0);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            int64_t o = i * N + j;
            uint32_t v = (uint32_t)acc[o];
            if (c) {
                int64_t nc = q_numel(c), ci = nc == 1 ? 0 : nc == N ? j : o;
                int32_t cv;
                memcpy(&cv, (const int32_t *)c->data + ci, 4);
                v += (uint32_t)cv;
            }
            float f = (float)(int32_t)v * (S->alpha * asv * bsv[nbs == 1 ? 0 : j]);
            if (ys)
                q_store8(ydt, y->data, o, f, &py);
            else
                ((float *)y->data)[o] = f;
        }
done:
    free(A);
    free(B);
    free(acc);
    free(bsv);
    return st;
}

/* ------------------------------------------------------------------ */

static void q_free_state(void *s)
{
    free(s);
}

const pare_kernel pare_kernels_quant[] = {
    {"", "QuantizeLinear", 10, 0, quant_init, quant_run, q_free_state, NULL},
    {"", "DequantizeLinear", 10, 0, quant_init, dequant_run, q_free_state, NULL},
    {"", "DynamicQuantizeLinear", 11, 0, NULL, dynquant_run, NULL, "float32"},
    {"", "MatMulInteger", 10, 0, NULL, matmulint_run, NULL, NULL},
    {"", "ConvInteger", 10, 0, qconv_init, convint_run, q_free_state, NULL},
    {"", "QLinearConv", 10, 0, qconv_init, qlinconv_run, q_free_state, NULL},
    {"", "QLinearMatMul", 10, 0, NULL, qlinmm_run, NULL, NULL},
    {"com.microsoft", "QuantizeLinear", 1, 0, quant_init, quant_run, q_free_state, NULL},
    {"com.microsoft", "DequantizeLinear", 1, 0, quant_init, dequant_run, q_free_state, NULL},
    {"com.microsoft", "MatMulIntegerToFloat", 1, 0, NULL, mmi2f_run, NULL, NULL},
    {"com.microsoft", "DynamicQuantizeMatMul", 1, 0, NULL, dqmm_run, NULL, NULL},
    {"com.microsoft", "MatMulNBits", 1, 0, nbits_init, nbits_run, q_free_state, NULL},
    {"com.microsoft", "QLinearAdd", 1, 0, qadd_init, qlin_binary_run, q_free_state, NULL},
    {"com.microsoft", "QLinearMul", 1, 0, qmul_init, qlin_binary_run, q_free_state, NULL},
    {"com.microsoft", "QLinearSigmoid", 1, 0, qsigmoid_init, qlin_unary_run, q_free_state, NULL},
    {"com.microsoft", "QLinearLeakyRelu", 1, 0, qleaky_init, qlin_unary_run, q_free_state, NULL},
    {"com.microsoft", "QGemm", 1, 0, qgemm_init, qgemm_run, q_free_state, NULL},
    {0},
};
