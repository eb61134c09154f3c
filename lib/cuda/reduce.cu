/* Row reductions on the device: Softmax/LogSoftmax, LayerNormalization,
 * RMSNormalization and ReduceSum/Mean/Max/Min (one block of 256 threads per
 * row, per output element, partial results combined in shared memory),
 * and ArgMax/ArgMin (a thread per output); math in float. */
#include <float.h>
#include "pcu_dev.cuh"

#define RT 256

/* block-wide reduction of v (sum or max); every thread gets the result */
template <bool MAX> __device__ float block_reduce(float v)
{
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = lane < nw ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    return v;
}

template <typename T>
__global__ void k_softmax(int log, int64_t len, int64_t inner, const T *x, T *y)
{
    int64_t r = blockIdx.x, o = r / inner, in = r % inner;
    int64_t base = o * len * inner + in;
    float m = -FLT_MAX;
    bool nan = false;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float v = to_f(x[base + j * inner]);
        nan |= v != v;
        m = fmaxf(m, v);
    }
    m = block_reduce<true>(m);
    float s = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        s += expf(to_f(x[base + j * inner]) - m);
    s = block_reduce<false>(s);
    float ls = logf(s);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float d = to_f(x[base + j * inner]) - m;
        y[base + j * inner] = from_f<T>(log ? d - ls : expf(d) / s);
    }
    (void)nan;
}

template <typename T>
static int softmax_t(int log, int64_t outer, int64_t len, int64_t inner, const void *x, void *y,
                     cudaStream_t st)
{
    /* grid.x holds up to 2^31-1 rows */
    int64_t rows = outer * inner;
    if (rows > 0x7fffffff)
        return (int)cudaErrorInvalidConfiguration;
    PCU_LAUNCH((unsigned)rows, RT, 0, st, k_softmax<T>)(log, len, inner, (const T *)x, (T *)y);
    return (int)cudaGetLastError();
}

extern "C" int pcu_softmax(int dtype, int log, int64_t outer, int64_t len, int64_t inner,
                           const void *x, void *y, cudaStream_t stream)
{
    if (outer * inner == 0 || len == 0)
        return 0;
    PCU_FP_DISPATCH(dtype, softmax_t, log, outer, len, inner, x, y, stream)
}

/* two passes over the row (mean, then the centred variance) for accuracy */
/* LayerNormalization (RMS false) and RMSNormalization (RMS true: no mean
 * is taken out, x / sqrt(mean(x^2) + eps) * scale, no bias or statistics) */
template <typename T, bool RMS>
__global__ void k_layernorm(int64_t len, const T *x, const T *scale, int64_t scale_n,
                            const T *bias, int64_t bias_n, float eps, T *y, float *mean,
                            float *inv_std)
{
    int64_t r = blockIdx.x;
    const T *xr = x + r * len;
    T *yr = y + r * len;
    float mu = 0;
    if (!RMS) {
        float s = 0;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
            s += to_f(xr[j]);
        mu = block_reduce<false>(s) / (float)len;
    }
    float v = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float d = to_f(xr[j]) - mu;
        v += d * d;
    }
    float var = block_reduce<false>(v) / (float)len;
    float is = rsqrtf(var + eps);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float sc = to_f(scale[scale_n == 1 ? 0 : j]);
        float b = bias ? to_f(bias[bias_n == 1 ? 0 : j]) : 0.0f;
        yr[j] = from_f<T>((to_f(xr[j]) - mu) * is * sc + b);
    }
    if (threadIdx.x == 0) {
        if (mean)
            mean[r] = mu;
        if (inv_std)
            inv_std[r] = is;
    }
}

template <typename T, bool RMS = false>
static int layernorm_t(int64_t rows, int64_t len, const void *x, const void *scale, int64_t scale_n,
                       const void *bias, int64_t bias_n, float eps, void *y, float *mean,
                       float *inv_std, cudaStream_t st)
{
    if (rows > 0x7fffffff)
        return (int)cudaErrorInvalidConfiguration;
    PCU_LAUNCH((unsigned)rows, RT, 0, st, k_layernorm<T, RMS>)(
        len, (const T *)x, (const T *)scale, scale_n, (const T *)bias, bias_n, eps, (T *)y, mean,
        inv_std);
    return (int)cudaGetLastError();
}

extern "C" int pcu_layernorm(int dtype, int64_t rows, int64_t len, const void *x,
                             const void *scale, int64_t scale_n, const void *bias, int64_t bias_n,
                             float eps, void *y, float *mean, float *inv_std, cudaStream_t stream)
{
    if (rows == 0 || len == 0)
        return 0;
    PCU_FP_DISPATCH(dtype, layernorm_t, rows, len, x, scale, scale_n, bias, bias_n, eps, y, mean,
                    inv_std, stream)
}

template <typename T>
static int rmsnorm_t(int64_t rows, int64_t len, const void *x, const void *scale, int64_t scale_n,
                     float eps, void *y, cudaStream_t st)
{
    return layernorm_t<T, true>(rows, len, x, scale, scale_n, NULL, 0, eps, y, NULL, NULL, st);
}

extern "C" int pcu_rmsnorm(int dtype, int64_t rows, int64_t len, const void *x, const void *scale,
                           int64_t scale_n, float eps, void *y, cudaStream_t stream)
{
    if (rows == 0 || len == 0)
        return 0;
    PCU_FP_DISPATCH(dtype, rmsnorm_t, rows, len, x, scale, scale_n, eps, y, stream)
}

template <typename T>
__global__ void k_reduce(int op, pcu_shape kept, pcu_strides ks, pcu_shape red, pcu_strides rs,
                         const T *x, T *y, int64_t n_red)
{
    int64_t o = blockIdx.x;
    int64_t base = pcu_offset(o, kept, ks);
    bool mx = op == PCU_RMAX, mn = op == PCU_RMIN, lse = op == PCU_RLOGSUMEXP;
    float acc = mx ? -INFINITY : mn ? INFINITY : 0.0f, shift = 0.0f;
    bool nan = false;
    if (lse) { /* exp(v - max): no overflow; an infinite max shifts by 0 */
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < n_red; j += blockDim.x)
            m = fmaxf(m, to_f(x[base + pcu_offset(j, red, rs)]));
        m = block_reduce<true>(m);
        shift = m > -INFINITY && m < INFINITY ? m : 0.0f;
    }
    for (int64_t j = threadIdx.x; j < n_red; j += blockDim.x) {
        float v = to_f(x[base + pcu_offset(j, red, rs)]);
        nan |= v != v;
        switch (op) {
        case PCU_RMAX: acc = fmaxf(acc, v); break;
        case PCU_RMIN: acc = fminf(acc, v); break;
        case PCU_RL1: acc += fabsf(v); break;
        case PCU_RL2:
        case PCU_RSUMSQ: acc += v * v; break;
        case PCU_RLOGSUMEXP: acc += expf(v - shift); break;
        default: acc += v; break;
        }
    }
    if (mn)
        acc = -block_reduce<true>(-acc);
    else if (mx)
        acc = block_reduce<true>(acc);
    else
        acc = block_reduce<false>(acc);
    /* a NaN anywhere in the set makes Max/Min NaN, as on the CPU */
    int any_nan = __syncthreads_or(nan);
    if (threadIdx.x == 0) {
        if ((mx || mn) && any_nan)
            acc = __int_as_float(0x7fc00000);
        if (op == PCU_RMEAN)
            acc /= (float)n_red;
        else if (op == PCU_RL2)
            acc = sqrtf(acc);
        else if (op == PCU_RLOGSUM)
            acc = logf(acc);
        else if (lse)
            acc = logf(acc) + shift;
        y[o] = from_f<T>(acc);
    }
}

template <typename T>
static int reduce_t(int op, const pcu_shape *kept, const pcu_strides *ks, const pcu_shape *red,
                    const pcu_strides *rs, const void *x, void *y, int64_t n_out, int64_t n_red,
                    cudaStream_t st)
{
    if (n_out > 0x7fffffff)
        return (int)cudaErrorInvalidConfiguration;
    PCU_LAUNCH((unsigned)n_out, RT, 0, st, k_reduce<T>)(
        op, *kept, *ks, *red, *rs, (const T *)x, (T *)y, n_red);
    return (int)cudaGetLastError();
}

extern "C" int pcu_reduce(int op, int dtype, const pcu_shape *kept, const pcu_strides *kept_stride,
                          const pcu_shape *red, const pcu_strides *red_stride, const void *x,
                          void *y, int64_t n_out, int64_t n_red, cudaStream_t stream)
{
    if (n_out == 0)
        return 0;
    PCU_FP_DISPATCH(dtype, reduce_t, op, kept, kept_stride, red, red_stride, x, y, n_out, n_red,
                    stream)
}

/* ArgMax / ArgMin: one thread per output (the reduced axis is short in the
 * heads that use them: classes, channels); the CPU's rule: the first (last
 * with select_last_index) extreme, a NaN beating any number */
template <typename T>
__global__ void k_arg(int mx, int last, int64_t dim, int64_t inner, const T *x, int64_t *y,
                      int64_t n)
{
    PCU_GRID_LOOP(o, n)
    {
        int64_t a = o / inner, b = o - a * inner;
        const T *q = x + a * dim * inner + b;
        float best = to_f(q[0]);
        int64_t bi = 0;
        for (int64_t i = 1; i < dim; i++) {
            float v = to_f(q[i * inner]);
            bool better;
            if (best != best)
                better = last && v != v;
            else if (v != v)
                better = true;
            else
                better = (mx ? v > best : v < best) || (last && v == best);
            if (better) {
                best = v;
                bi = i;
            }
        }
        y[o] = bi;
    }
}

template <typename T>
static int arg_t(int mx, int last, int64_t outer, int64_t dim, int64_t inner, const void *x,
                 int64_t *y, cudaStream_t st)
{
    int64_t n = outer * inner;
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_arg<T>)(mx, last, dim, inner, (const T *)x, y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_argreduce(int dtype, int mx, int last, int64_t outer, int64_t dim,
                             int64_t inner, const void *x, int64_t *y, cudaStream_t stream)
{
    if (outer * inner == 0)
        return 0;
    if (dim < 1)
        return (int)cudaErrorInvalidValue;
    PCU_FP_DISPATCH(dtype, arg_t, mx, last, outer, dim, inner, x, y, stream)
}
