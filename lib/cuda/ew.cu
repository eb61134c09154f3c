/* Elementwise device code: binary ops with multidirectional broadcasting
 * (And, Or, Xor on bools), unary ops and activations, Not, Cast, Where.
 * Floating types compute in float and round once on store. */
#include "pcu_dev.cuh"

/* ---- binary ---- */

/* The op is a kernel argument, not a template parameter: one kernel per
 * dtype and form keeps the build short (2 cores in CI); the switch is
 * uniform across a warp. */
__device__ __forceinline__ float bin(int op, float a, float b)
{
    switch (op) {
    case PCU_ADD: return a + b;
    case PCU_SUB: return a - b;
    case PCU_MUL: return a * b;
    case PCU_DIV: return a / b;
    case PCU_POW: return powf(a, b);
    case PCU_MAX: return (a != a || b != b) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
    case PCU_MIN: return (a != a || b != b) ? __int_as_float(0x7fc00000) : fminf(a, b);
    case PCU_PRELU: return a < 0.0f ? b * a : a; /* a: X, b: the slope */
    default: return 0.0f;
    }
}
__device__ __forceinline__ bool cmp(int op, float a, float b)
{
    switch (op) {
    case PCU_EQ: return a == b;
    case PCU_LT: return a < b;
    case PCU_GT: return a > b;
    case PCU_LE: return a <= b;
    default: return a >= b;
    }
}

/* same shapes (the common case): no index arithmetic */
template <typename T>
__global__ void k_bin_flat(int op, const T *a, const T *b, T *y, int64_t n)
{
    PCU_GRID_LOOP(i, n) y[i] = from_f<T>(bin(op, to_f(a[i]), to_f(b[i])));
}
template <typename T>
__global__ void k_bin(int op, pcu_shape sh, pcu_strides sa, pcu_strides sb, const T *a,
                      const T *b, T *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    y[i] = from_f<T>(bin(op, to_f(a[pcu_offset(i, sh, sa)]), to_f(b[pcu_offset(i, sh, sb)])));
}
template <typename T>
__global__ void k_cmp(int op, pcu_shape sh, pcu_strides sa, pcu_strides sb, const T *a,
                      const T *b, bool *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    y[i] = cmp(op, to_f(a[pcu_offset(i, sh, sa)]), to_f(b[pcu_offset(i, sh, sb)]));
}

/* And, Or, Xor of bools (one byte each, 0 or 1) */
__global__ void k_logic(int op, pcu_shape sh, pcu_strides sa, pcu_strides sb, const uint8_t *a,
                        const uint8_t *b, uint8_t *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    {
        bool p = a[pcu_offset(i, sh, sa)] != 0, q = b[pcu_offset(i, sh, sb)] != 0;
        y[i] = op == PCU_AND ? (p && q) : op == PCU_OR ? (p || q) : (p != q);
    }
}

__global__ void k_not(const uint8_t *x, uint8_t *y, int64_t n)
{
    PCU_GRID_LOOP(i, n) y[i] = x[i] == 0;
}

extern "C" int pcu_not(const void *x, void *y, int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, stream, k_not)((const uint8_t *)x, (uint8_t *)y, n);
    return (int)cudaGetLastError();
}

static bool contiguous(const pcu_shape *sh, const pcu_strides *s)
{
    int64_t want = 1;
    for (int d = sh->rank - 1; d >= 0; d--) {
        if (sh->dims[d] != 1 && s->s[d] != want)
            return false;
        want *= sh->dims[d];
    }
    return true;
}

template <typename T>
static int bin_typed(int op, const pcu_shape *sh, const pcu_strides *sa, const pcu_strides *sb,
                     const void *a, const void *b, void *y, int64_t n, cudaStream_t st)
{
    if (op < 0 || op >= PCU_AND)
        return (int)cudaErrorInvalidValue;
    unsigned g = pcu_blocks(n, 256);
    if (op >= PCU_EQ)
        PCU_LAUNCH(g, 256, 0, st, k_cmp<T>)(
            op, *sh, *sa, *sb, (const T *)a, (const T *)b, (bool *)y, n);
    else if (contiguous(sh, sa) && contiguous(sh, sb))
        PCU_LAUNCH(g, 256, 0, st, k_bin_flat<T>)(op, (const T *)a, (const T *)b, (T *)y, n);
    else
        PCU_LAUNCH(g, 256, 0, st, k_bin<T>)(
            op, *sh, *sa, *sb, (const T *)a, (const T *)b, (T *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_binary(int op, int dtype, const pcu_shape *out, const pcu_strides *sa,
                          const pcu_strides *sb, const void *a, const void *b, void *y, int64_t n,
                          cudaStream_t stream)
{
    if (n == 0)
        return 0;
    if ((op >= PCU_AND) != (dtype == PCU_BOOL) || op >= PCU_BIN_COUNT)
        return (int)cudaErrorInvalidValue;
    if (dtype == PCU_BOOL) {
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, stream, k_logic)(
            op, *out, *sa, *sb, (const uint8_t *)a, (const uint8_t *)b, (uint8_t *)y, n);
        return (int)cudaGetLastError();
    }
    PCU_FP_DISPATCH(dtype, bin_typed, op, out, sa, sb, a, b, y, n, stream)
}

/* ---- unary ---- */

__device__ __forceinline__ float un(int op, float x, float p0, float p1)
{
    switch (op) {
    case PCU_NEG: return -x;
    case PCU_ABS: return fabsf(x);
    case PCU_SQRT: return sqrtf(x);
    case PCU_EXP: return expf(x);
    case PCU_LOG: return logf(x);
    case PCU_RECIP: return 1.0f / x;
    case PCU_FLOOR: return floorf(x);
    case PCU_CEIL: return ceilf(x);
    case PCU_ERF: return erff(x);
    case PCU_TANH: return tanhf(x);
    case PCU_SIGMOID: return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
    case PCU_RELU: return x > 0 ? x : (x != x ? x : 0.0f);
    case PCU_LEAKYRELU: return x >= 0 ? x : p0 * x;
    case PCU_ELU: return x >= 0 ? x : p0 * (expf(x) - 1.0f);
    case PCU_SELU: return x > 0 ? p1 * x : p1 * (p0 * expf(x) - p0);
    case PCU_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case PCU_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case PCU_HARDSIGMOID: /* NaN stays NaN (fminf would make it 1), as on the CPU */
        return x != x ? x : fmaxf(0.0f, fminf(1.0f, p0 * x + p1));
    case PCU_HARDSWISH: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
    case PCU_CLIP: return x != x ? x : fminf(fmaxf(x, p0), p1);
    case PCU_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    case PCU_SCALE: return x * p0;
    case PCU_SIN: return sinf(x);
    case PCU_COS: return cosf(x);
    case PCU_TAN: return tanf(x);
    case PCU_ASIN: return asinf(x);
    case PCU_ACOS: return acosf(x);
    case PCU_ATAN: return atanf(x);
    case PCU_SINH: return sinhf(x);
    case PCU_COSH: return coshf(x);
    case PCU_ASINH: return asinhf(x);
    case PCU_ACOSH: return acoshf(x);
    case PCU_ATANH: return atanhf(x);
    case PCU_ROUND: return rintf(x); /* halves to even, as ONNX's Round */
    case PCU_SIGN: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; /* 0, -0 and NaN kept */
    case PCU_SOFTSIGN: return x / (1.0f + fabsf(x));
    case PCU_MISH: return x * tanhf(x > 20.0f ? x : log1pf(expf(x)));
    case PCU_CELU: return fmaxf(0.0f, x) + fminf(0.0f, p0 * (expf(x / p0) - 1.0f));
    case PCU_THRESHOLDED_RELU: /* NaN: 0, as on the CPU and by the spec's formula */
        return x > p0 ? x : 0.0f;
    default: return x;
    }
}

template <typename T>
__global__ void k_un(int op, const T *x, T *y, int64_t n, float p0, float p1)
{
    PCU_GRID_LOOP(i, n) y[i] = from_f<T>(un(op, to_f(x[i]), p0, p1));
}

template <typename T>
static int un_typed(int op, const void *x, void *y, int64_t n, float p0, float p1, cudaStream_t st)
{
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_un<T>)(op, (const T *)x, (T *)y, n, p0, p1);
    return (int)cudaGetLastError();
}

extern "C" int pcu_unary(int op, int dtype, const void *x, void *y, int64_t n, float p0, float p1,
                         cudaStream_t stream)
{
    if (n == 0)
        return 0;
    PCU_FP_DISPATCH(dtype, un_typed, op, x, y, n, p0, p1, stream)
}

/* ---- Cast ---- */

template <typename T> struct is_fp { static const bool v = false; };
template <> struct is_fp<float> { static const bool v = true; };
template <> struct is_fp<__half> { static const bool v = true; };
template <> struct is_fp<__nv_bfloat16> { static const bool v = true; };

template <typename D> struct lim;
template <> struct lim<int8_t> {
    static constexpr double lo = -128.0, hi = 127.0;
    static constexpr int8_t min = -128, max = 127;
};
template <> struct lim<uint8_t> {
    static constexpr double lo = 0.0, hi = 255.0;
    static constexpr uint8_t min = 0, max = 255;
};
template <> struct lim<int32_t> {
    static constexpr double lo = -2147483648.0, hi = 2147483647.0;
    static constexpr int32_t min = INT32_MIN, max = INT32_MAX;
};
template <> struct lim<int64_t> {
    static constexpr double lo = -9223372036854775808.0, hi = 9223372036854775807.0;
    static constexpr int64_t min = INT64_MIN, max = INT64_MAX;
};

/* floating sources go through float, integer ones through int64; float ->
 * integer truncates, NaN gives 0 and out-of-range values saturate (as
 * pare_dtype_convert on the CPU); integer -> integer wraps */
template <typename S, typename D> __device__ __forceinline__ D conv(S s)
{
    if constexpr (is_fp<S>::v) {
        float f = to_f(s);
        if constexpr (is_fp<D>::v) {
            return from_f<D>(f);
        } else {
            double d = (double)f;
            if (d != d)
                return D(0);
            if (d >= lim<D>::hi)
                return lim<D>::max;
            if (d <= lim<D>::lo)
                return lim<D>::min;
            return (D)(int64_t)d;
        }
    } else {
        int64_t v = (int64_t)s;
        if constexpr (is_fp<D>::v)
            return from_f<D>((float)v);
        else
            return (D)v;
    }
}
template <typename S> __device__ __forceinline__ bool conv_bool(S s)
{
    if constexpr (is_fp<S>::v)
        return to_f(s) != 0.0f;
    else
        return s != 0;
}

template <typename S>
__device__ __forceinline__ void store_as(int to, void *y, int64_t i, S v)
{
    switch (to) {
    case PCU_F32: ((float *)y)[i] = conv<S, float>(v); break;
    case PCU_F16: ((__half *)y)[i] = conv<S, __half>(v); break;
    case PCU_BF16: ((__nv_bfloat16 *)y)[i] = conv<S, __nv_bfloat16>(v); break;
    case PCU_I32: ((int32_t *)y)[i] = conv<S, int32_t>(v); break;
    case PCU_I64: ((int64_t *)y)[i] = conv<S, int64_t>(v); break;
    case PCU_I8: ((int8_t *)y)[i] = conv<S, int8_t>(v); break;
    case PCU_U8: ((uint8_t *)y)[i] = conv<S, uint8_t>(v); break;
    default: ((bool *)y)[i] = conv_bool<S>(v); break;
    }
}

/* one kernel per source dtype; the destination is a uniform switch */
template <typename S>
__global__ void k_cast(int to, const S *x, void *y, int64_t n)
{
    PCU_GRID_LOOP(i, n) store_as<S>(to, y, i, x[i]);
}

template <typename S>
static int cast_from(int to, const void *x, void *y, int64_t n, cudaStream_t st)
{
    switch (to) {
    case PCU_F32: case PCU_F16: case PCU_BF16: case PCU_I32: case PCU_I64: case PCU_I8:
    case PCU_U8: case PCU_BOOL:
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_cast<S>)(to, (const S *)x, y, n);
        return (int)cudaGetLastError();
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int pcu_cast(int from, int to, const void *x, void *y, int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    switch (from) {
    case PCU_F32: return cast_from<float>(to, x, y, n, stream);
    case PCU_F16: return cast_from<__half>(to, x, y, n, stream);
    case PCU_BF16: return cast_from<__nv_bfloat16>(to, x, y, n, stream);
    case PCU_I32: return cast_from<int32_t>(to, x, y, n, stream);
    case PCU_I64: return cast_from<int64_t>(to, x, y, n, stream);
    case PCU_I8: return cast_from<int8_t>(to, x, y, n, stream);
    case PCU_U8: return cast_from<uint8_t>(to, x, y, n, stream);
    case PCU_BOOL: return cast_from<uint8_t>(to, x, y, n, stream); /* bool bytes are 0/1 */
    default: return (int)cudaErrorInvalidValue;
    }
}

/* ---- Where ---- */

template <typename T>
__global__ void k_where(pcu_shape sh, pcu_strides sc, pcu_strides sx, pcu_strides sz,
                        const uint8_t *c, const T *x, const T *z, T *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    y[i] = c[pcu_offset(i, sh, sc)] ? x[pcu_offset(i, sh, sx)] : z[pcu_offset(i, sh, sz)];
}

template <typename T>
static int where_t(const pcu_shape *sh, const pcu_strides *sc, const pcu_strides *sx,
                   const pcu_strides *sz, const uint8_t *c, const void *x, const void *z, void *y,
                   int64_t n, cudaStream_t st)
{
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_where<T>)(
        *sh, *sc, *sx, *sz, c, (const T *)x, (const T *)z, (T *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_where(int esize, const pcu_shape *out, const pcu_strides *sc,
                         const pcu_strides *sx, const pcu_strides *sz, const uint8_t *cond,
                         const void *x, const void *z, void *y, int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    switch (esize) {
    case 1: return where_t<uint8_t>(out, sc, sx, sz, cond, x, z, y, n, stream);
    case 2: return where_t<uint16_t>(out, sc, sx, sz, cond, x, z, y, n, stream);
    case 4: return where_t<uint32_t>(out, sc, sx, sz, cond, x, z, y, n, stream);
    case 8: return where_t<uint64_t>(out, sc, sx, sz, cond, x, z, y, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
