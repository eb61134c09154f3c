/* Device code of the dnn family (lib/cuda/dnn.c): padding, bias, crop,
 * pooling, BatchNormalization, Resize. Launchers in dnn_cu.h. Every kernel
 * loads its element type into float, computes in float and stores back;
 * index arithmetic is in int64 with grid-stride loops. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/dnn_cu.h"
#include "cuda/ops_shared.h"
#include "cuda/pcu_launch.cuh"

namespace {

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i)
{
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16 *p, int64_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}

const int kThreads = 256;

unsigned grid_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

#define GRID_LOOP(i, n)                                                                        \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                  \
         i += (int64_t)blockDim.x * gridDim.x)

/* Dispatches F<T> on the element type code t. */
#define DISPATCH(t, F, ...)                                                                    \
    do {                                                                                       \
        if ((t) == PCU_T_F16)                                                                  \
            F<__half>(__VA_ARGS__);                                                            \
        else if ((t) == PCU_T_BF16)                                                            \
            F<__nv_bfloat16>(__VA_ARGS__);                                                     \
        else                                                                                   \
            F<float>(__VA_ARGS__);                                                             \
    } while (0)

/* splits flat index r of an output plane into nsp coordinates */
__device__ __forceinline__ void split3(int64_t r, const pcu_sp &g, const int64_t *dims,
                                       int64_t *o)
{
    for (int i = g.nsp - 1; i >= 0; i--) {
        o[i] = r % dims[i];
        r /= dims[i];
    }
}

/* ---- padding ---- */

template <typename T>
__global__ void pad_kernel(const T *src, T *dst, pcu_sp g, int64_t out_plane, int64_t in_plane)
{
    GRID_LOOP(i, g.planes * out_plane)
    {
        int64_t p = i / out_plane, o[3];
        split3(i % out_plane, g, g.out, o);
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < g.nsp; d++) {
            int64_t c = o[d] - g.pb[d];
            if (c < 0 || c >= g.in[d])
                inside = false;
            off = off * g.in[d] + c;
        }
        dst[i] = inside ? src[p * in_plane + off] : T(0.0f);
    }
}

int64_t plane_of(int nsp, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < nsp; i++)
        n *= dims[i];
    return n;
}

template <typename T> void pad_launch(const void *src, void *dst, const pcu_sp *g, cudaStream_t s)
{
    int64_t op = plane_of(g->nsp, g->out), ip = plane_of(g->nsp, g->in);
    PCU_LAUNCH(grid_for(g->planes * op), kThreads, 0, s, pad_kernel<T>)(
        (const T *)src, (T *)dst, *g, op, ip);
}

/* ---- crop + bias (ConvTranspose) ---- */

template <typename T>
__global__ void crop_kernel(const T *src, const T *bias, T *y, int64_t C, pcu_sp g,
                            int64_t out_plane, int64_t in_plane)
{
    GRID_LOOP(i, g.planes * out_plane)
    {
        int64_t p = i / out_plane, o[3];
        split3(i % out_plane, g, g.out, o);
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < g.nsp; d++) {
            int64_t c = o[d] + g.pb[d]; /* pb < 0: zeros before the full result */
            if (c < 0 || c >= g.in[d])
                inside = false;
            off = off * g.in[d] + c;
        }
        float v = inside ? ld(src, p * in_plane + off) : 0.0f;
        if (bias)
            v += ld(bias, p % C);
        st(y, i, v);
    }
}

template <typename T>
void crop_launch(const void *src, const void *bias, void *y, int64_t C, const pcu_sp *g,
                 cudaStream_t s)
{
    int64_t op = plane_of(g->nsp, g->out), ip = plane_of(g->nsp, g->in);
    PCU_LAUNCH(grid_for(g->planes * op), kThreads, 0, s, crop_kernel<T>)(
        (const T *)src, (const T *)bias, (T *)y, C, *g, op, ip);
}

/* ---- bias ---- */

template <typename T>
__global__ void bias_kernel(T *y, const T *bias, int64_t n, int64_t C, int64_t inner)
{
    GRID_LOOP(i, n)
    {
        st(y, i, ld(y, i) + ld(bias, (i / inner) % C));
    }
}

template <typename T>
void bias_launch(void *y, const void *bias, int64_t N, int64_t C, int64_t inner, cudaStream_t s)
{
    int64_t n = N * C * inner;
    PCU_LAUNCH(grid_for(n), kThreads, 0, s, bias_kernel<T>)((T *)y, (const T *)bias, n, C, inner);
}

/* ---- fused Conv epilogue: y = act(y + bias[c] + res) ---- */

__device__ __forceinline__ float act_f(int act, float v, float a, float b)
{
    switch (act) {
    case PCU_ACT_RELU: return v > 0.0f ? v : (v != v ? v : 0.0f);
    case PCU_ACT_CLIP: return v != v ? v : fminf(fmaxf(v, a), b);
    case PCU_ACT_LEAKY_RELU: return v >= 0.0f ? v : a * v;
    case PCU_ACT_SIGMOID: return v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
    case PCU_ACT_TANH: return tanhf(v);
    case PCU_ACT_HARDSIGMOID: /* NaN stays NaN (fminf would make it 1), as on the CPU */
        return v != v ? v : fmaxf(0.0f, fminf(1.0f, a * v + b));
    case PCU_ACT_HARDSWISH: return v * fmaxf(0.0f, fminf(1.0f, v * (1.0f / 6.0f) + 0.5f));
    default: return v;
    }
}

/* 32-bit index arithmetic when the tensor allows it (the common case): the
 * channel of element i is (i / inner) % C */
template <typename T, typename I>
__global__ void epi_kernel(T *y, const float *bias, const T *res, I n, I C, I inner, int act,
                           float a, float b)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)blockDim.x * gridDim.x) {
        float v = ld(y, i) + bias[(i / inner) % C];
        if (res)
            v += ld(res, i);
        st(y, i, act_f(act, v, a, b));
    }
}

template <typename T>
void epi_launch(void *y, const float *bias, const void *res, int64_t N, int64_t C, int64_t inner,
                int act, float a, float b, cudaStream_t s)
{
    int64_t n = N * C * inner;
    if (n < (int64_t)0x7fffffff)
        PCU_LAUNCH(grid_for(n), kThreads, 0, s, epi_kernel<T, uint32_t>)(
            (T *)y, bias, (const T *)res, (uint32_t)n, (uint32_t)C, (uint32_t)inner, act, a, b);
    else
        PCU_LAUNCH(grid_for(n), kThreads, 0, s, epi_kernel<T, int64_t>)(
            (T *)y, bias, (const T *)res, n, C, inner, act, a, b);
}

/* ---- pooling ---- */

template <typename T>
__global__ void pool_kernel(const T *x, T *y, int64_t *ind, int kind, int storage_order,
                            int count_include_pad, pcu_sp g, int64_t out_plane, int64_t in_plane)
{
    GRID_LOOP(i, g.planes * out_plane)
    {
        int64_t p = i / out_plane, o[3];
        split3(i % out_plane, g, g.out, o);
        int64_t st0[3], lo[3], hi[3];
        bool empty = false;
        float cnt_pad = 1.0f;
        for (int d = 0; d < g.nsp; d++) {
            st0[d] = o[d] * g.s[d] - g.pb[d];
            /* taps t with 0 <= st0 + t*dil < in */
            int64_t l = st0[d] < 0 ? (-st0[d] + g.d[d] - 1) / g.d[d] : 0;
            int64_t h = (g.in[d] - st0[d] + g.d[d] - 1) / g.d[d];
            if (g.in[d] - st0[d] <= 0)
                h = 0;
            if (h > g.k[d])
                h = g.k[d];
            lo[d] = l;
            hi[d] = h;
            if (l >= h)
                empty = true;
            if (count_include_pad) {
                int64_t e = g.in[d] + g.pe[d] - st0[d];
                int64_t c = e <= 0 ? 0 : (e + g.d[d] - 1) / g.d[d];
                cnt_pad *= (float)(c < g.k[d] ? c : g.k[d]);
            }
        }
        float acc = 0.0f, best = 0.0f;
        int64_t cnt = 0, best_at = -1;
        if (!empty) {
            int64_t t[3] = {lo[0], g.nsp > 1 ? lo[1] : 0, g.nsp > 2 ? lo[2] : 0};
            for (;;) {
                int64_t off = 0, ioff = 0, cstride = 1;
                for (int d = 0; d < g.nsp; d++) {
                    int64_t pos = st0[d] + t[d] * g.d[d];
                    off = off * g.in[d] + pos;
                    ioff += pos * cstride; /* column-major offset for storage_order 1 */
                    cstride *= g.in[d];
                }
                float v = ld(x, p * in_plane + off);
                if (kind == PCU_POOL_MAX) {
                    if (best_at < 0 || v > best) {
                        best = v;
                        best_at = storage_order ? ioff : off;
                    }
                } else {
                    acc += v;
                }
                cnt++;
                int d = g.nsp - 1;
                for (; d >= 0; d--) {
                    if (++t[d] < hi[d])
                        break;
                    t[d] = lo[d];
                }
                if (d < 0)
                    break;
            }
        }
        if (kind == PCU_POOL_MAX) {
            st(y, i, best_at >= 0 ? best : 0.0f);
            if (ind)
                ind[i] = best_at >= 0 ? p * in_plane + best_at : -1;
        } else {
            float den = count_include_pad ? cnt_pad : (float)cnt;
            st(y, i, den > 0 ? acc / den : 0.0f);
        }
    }
}

/* 2-D pooling in 32-bit index arithmetic (the common case: the generic
 * kernel above spends its time in 64-bit divisions); same results */
struct pool2d_geom {
    int ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pe_h, pe_w;
};

__device__ __forceinline__ void taps(int st0, int in, int k, int d, int &lo, int &hi)
{
    lo = st0 < 0 ? (-st0 + d - 1) / d : 0;
    hi = in - st0 <= 0 ? 0 : (in - st0 + d - 1) / d;
    if (hi > k)
        hi = k;
}

template <typename T>
__global__ void pool2d_kernel(const T *x, T *y, int64_t *ind, int kind, int storage_order,
                              int count_include_pad, pool2d_geom g, unsigned n)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        unsigned op = (unsigned)g.oh * (unsigned)g.ow;
        unsigned p = i / op, r = i - p * op;
        int oy = (int)(r / (unsigned)g.ow), ox = (int)(r - (unsigned)oy * (unsigned)g.ow);
        int y0 = oy * g.sh - g.pt, x0 = ox * g.sw - g.pl, ly, hy, lx, hx;
        taps(y0, g.ih, g.kh, g.dh, ly, hy);
        taps(x0, g.iw, g.kw, g.dw, lx, hx);
        const T *xp = x + (size_t)p * (size_t)g.ih * (size_t)g.iw;
        float acc = 0.0f, best = 0.0f;
        int best_at = -1, cnt = 0;
        for (int ty = ly; ty < hy; ty++) {
            int yy = y0 + ty * g.dh;
            for (int tx = lx; tx < hx; tx++) {
                int xx = x0 + tx * g.dw;
                float v = ld(xp, yy * g.iw + xx);
                if (kind == PCU_POOL_MAX) {
                    if (best_at < 0 || v > best) {
                        best = v;
                        best_at = storage_order ? xx * g.ih + yy : yy * g.iw + xx;
                    }
                } else {
                    acc += v;
                }
                cnt++;
            }
        }
        if (kind == PCU_POOL_MAX) {
            st(y, i, best_at >= 0 ? best : 0.0f);
            if (ind)
                ind[i] = best_at >= 0 ? (int64_t)p * g.ih * g.iw + best_at : -1;
        } else {
            float den = (float)cnt;
            if (count_include_pad) {
                int eh = g.ih + g.pe_h - y0, ew = g.iw + g.pe_w - x0;
                int ch = eh <= 0 ? 0 : (eh + g.dh - 1) / g.dh, cw = ew <= 0 ? 0 : (ew + g.dw - 1) / g.dw;
                den = (float)(ch < g.kh ? ch : g.kh) * (float)(cw < g.kw ? cw : g.kw);
            }
            st(y, i, (hy > ly && hx > lx && den > 0) ? acc / den : 0.0f);
        }
    }
}

template <typename T>
void pool_launch(int kind, const void *x, void *y, int64_t *ind, int so, int cip, const pcu_sp *g,
                 cudaStream_t s)
{
    int64_t op = plane_of(g->nsp, g->out), ip = plane_of(g->nsp, g->in);
    if (g->nsp == 2 && g->planes * op < 0x7fffffff && g->planes * ip < 0x7fffffff) {
        pool2d_geom q = {(int)g->in[0], (int)g->in[1], (int)g->out[0], (int)g->out[1],
                         (int)g->k[0],  (int)g->k[1],  (int)g->s[0],   (int)g->s[1],
                         (int)g->d[0],  (int)g->d[1],  (int)g->pb[0],  (int)g->pb[1],
                         (int)g->pe[0], (int)g->pe[1]};
        PCU_LAUNCH(grid_for(g->planes * op), kThreads, 0, s, pool2d_kernel<T>)(
            (const T *)x, (T *)y, ind, kind, so, cip, q, (unsigned)(g->planes * op));
        return;
    }
    PCU_LAUNCH(grid_for(g->planes * op), kThreads, 0, s, pool_kernel<T>)(
        (const T *)x, (T *)y, ind, kind, so, cip, *g, op, ip);
}

/* one block per plane: a strided pass then a shared-memory tree */
template <typename T>
__global__ void gpool_kernel(const T *x, T *y, int kind, int64_t planes, int64_t plane)
{
    __shared__ float sh[kThreads];
    for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
        const T *xp = x + p * plane;
        float acc = kind == PCU_POOL_MAX ? -INFINITY : 0.0f;
        for (int64_t j = threadIdx.x; j < plane; j += blockDim.x) {
            float v = ld(xp, j);
            acc = kind == PCU_POOL_MAX ? (v > acc || v != v ? v : acc) : acc + v;
        }
        sh[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w) {
                float a = sh[threadIdx.x], b = sh[threadIdx.x + w];
                sh[threadIdx.x] = kind == PCU_POOL_MAX ? (b > a || b != b ? b : a) : a + b;
            }
            __syncthreads();
        }
        if (threadIdx.x == 0)
            st(y, p, kind == PCU_POOL_MAX ? sh[0] : sh[0] / (float)plane);
        __syncthreads();
    }
}

template <typename T>
void gpool_launch(int kind, const void *x, void *y, int64_t planes, int64_t plane, cudaStream_t s)
{
    unsigned blocks = (unsigned)(planes < 65535 * 8 ? planes : 65535 * 8);
    PCU_LAUNCH(blocks, kThreads, 0, s, gpool_kernel<T>)((const T *)x, (T *)y, kind, planes, plane);
}

/* ---- BatchNormalization ---- */

template <typename T, typename P>
__global__ void bn_kernel(const T *x, const P *scale, const P *bias, const P *mean, const P *var,
                          T *y, int64_t n, int64_t C, int64_t inner, float eps)
{
    GRID_LOOP(i, n)
    {
        int64_t c = (i / inner) % C;
        float a = ld(scale, c) * rsqrtf(ld(var, c) + eps);
        st(y, i, (ld(x, i) - ld(mean, c)) * a + ld(bias, c));
    }
}

template <typename T>
void bn_launch(int pt, const void *x, const void *sc, const void *b, const void *m, const void *v,
               void *y, int64_t N, int64_t C, int64_t inner, float eps, cudaStream_t s)
{
    int64_t n = N * C * inner;
    unsigned gr = grid_for(n);
    if (pt == PCU_T_F16)
        PCU_LAUNCH(gr, kThreads, 0, s, bn_kernel<T, __half>)(
            (const T *)x, (const __half *)sc, (const __half *)b, (const __half *)m,
            (const __half *)v, (T *)y, n, C, inner, eps);
    else if (pt == PCU_T_BF16)
        PCU_LAUNCH(gr, kThreads, 0, s, bn_kernel<T, __nv_bfloat16>)(
            (const T *)x, (const __nv_bfloat16 *)sc, (const __nv_bfloat16 *)b,
            (const __nv_bfloat16 *)m, (const __nv_bfloat16 *)v, (T *)y, n, C, inner, eps);
    else
        PCU_LAUNCH(gr, kThreads, 0, s, bn_kernel<T, float>)(
            (const T *)x, (const float *)sc, (const float *)b, (const float *)m, (const float *)v,
            (T *)y, n, C, inner, eps);
}

/* ---- Resize ---- */

template <typename T> __global__ void resize_kernel(const T *x, T *y, pcu_resize_args a)
{
    int64_t plane_out = a.out_h * a.out_w, plane_in = a.in_h * a.in_w;
    GRID_LOOP(i, a.planes * plane_out)
    {
        int64_t p = i / plane_out, r = i % plane_out, oh = r / a.out_w, ow = r % a.out_w;
        const T *xp = x + p * plane_in;
        double fy = pcu_rs_coord(a.coord, (double)oh, a.scale_h, a.in_h, a.out_h);
        double fx = pcu_rs_coord(a.coord, (double)ow, a.scale_w, a.in_w, a.out_w);
        if (a.mode == 0) {
            int64_t iy = pcu_rs_nearest(a.nearest, fy, a.in_h);
            int64_t ix = pcu_rs_nearest(a.nearest, fx, a.in_w);
            y[i] = xp[iy * a.in_w + ix];
        } else {
            double y0f = floor(fy), x0f = floor(fx);
            float ry = (float)(fy - y0f), rx = (float)(fx - x0f);
            int64_t y0 = (int64_t)y0f, x0 = (int64_t)x0f, y1 = y0 + 1, x1 = x0 + 1;
            y0 = y0 < 0 ? 0 : (y0 >= a.in_h ? a.in_h - 1 : y0);
            y1 = y1 < 0 ? 0 : (y1 >= a.in_h ? a.in_h - 1 : y1);
            x0 = x0 < 0 ? 0 : (x0 >= a.in_w ? a.in_w - 1 : x0);
            x1 = x1 < 0 ? 0 : (x1 >= a.in_w ? a.in_w - 1 : x1);
            float v00 = ld(xp, y0 * a.in_w + x0), v01 = ld(xp, y0 * a.in_w + x1);
            float v10 = ld(xp, y1 * a.in_w + x0), v11 = ld(xp, y1 * a.in_w + x1);
            float top = v00 * (1 - rx) + v01 * rx, bot = v10 * (1 - rx) + v11 * rx;
            st(y, i, top * (1 - ry) + bot * ry);
        }
    }
}

template <typename T>
void resize_launch(const void *x, void *y, const pcu_resize_args *a, cudaStream_t s)
{
    PCU_LAUNCH(grid_for(a->planes * a->out_h * a->out_w), kThreads, 0, s, resize_kernel<T>)(
        (const T *)x, (T *)y, *a);
}

} // namespace

extern "C" {

cudaError_t pcu_pad_planes(int t, const void *src, void *dst, const pcu_sp *g,
                           cudaStream_t stream)
{
    if (g->planes * plane_of(g->nsp, g->out) == 0)
        return cudaSuccess;
    DISPATCH(t, pad_launch, src, dst, g, stream);
    return cudaGetLastError();
}

cudaError_t pcu_crop_bias(int t, const void *src, const void *bias, void *y, int64_t C,
                          const pcu_sp *g, cudaStream_t stream)
{
    if (g->planes * plane_of(g->nsp, g->out) == 0)
        return cudaSuccess;
    DISPATCH(t, crop_launch, src, bias, y, C, g, stream);
    return cudaGetLastError();
}

cudaError_t pcu_bias_add(int t, void *y, const void *bias, int64_t N, int64_t C, int64_t inner,
                         cudaStream_t stream)
{
    if (N * C * inner == 0)
        return cudaSuccess;
    DISPATCH(t, bias_launch, y, bias, N, C, inner, stream);
    return cudaGetLastError();
}

cudaError_t pcu_conv_epilogue(int t, void *y, const float *bias, const void *res, int64_t N,
                              int64_t C, int64_t inner, int act, float a, float b,
                              cudaStream_t stream)
{
    if (N * C * inner == 0)
        return cudaSuccess;
    DISPATCH(t, epi_launch, y, bias, res, N, C, inner, act, a, b, stream);
    return cudaGetLastError();
}

cudaError_t pcu_pool(int t, int kind, const void *x, void *y, int64_t *indices,
                     int storage_order, int count_include_pad, const pcu_sp *g,
                     cudaStream_t stream)
{
    if (g->planes * plane_of(g->nsp, g->out) == 0)
        return cudaSuccess;
    DISPATCH(t, pool_launch, kind, x, y, indices, storage_order, count_include_pad, g, stream);
    return cudaGetLastError();
}

cudaError_t pcu_global_pool(int t, int kind, const void *x, void *y, int64_t planes,
                            int64_t plane, cudaStream_t stream)
{
    if (planes == 0)
        return cudaSuccess;
    DISPATCH(t, gpool_launch, kind, x, y, planes, plane, stream);
    return cudaGetLastError();
}

cudaError_t pcu_batchnorm(int t, int pt, const void *x, const void *scale, const void *bias,
                          const void *mean, const void *var, void *y, int64_t N, int64_t C,
                          int64_t inner, float eps, cudaStream_t stream)
{
    if (N * C * inner == 0)
        return cudaSuccess;
    DISPATCH(t, bn_launch, pt, x, scale, bias, mean, var, y, N, C, inner, eps, stream);
    return cudaGetLastError();
}

cudaError_t pcu_resize(int t, const void *x, void *y, const pcu_resize_args *a,
                       cudaStream_t stream)
{
    if (a->planes * a->out_h * a->out_w == 0)
        return cudaSuccess;
    DISPATCH(t, resize_launch, x, y, a, stream);
    return cudaGetLastError();
}

} // extern "C"
