/* Device code of the quantization family (lib/cuda/quant.c); launchers in
 * quant_cu.h. Semantics follow the ONNX spec and the CPU kernels
 * (lib/exec/kernels_quant.c): QuantizeLinear rounds half to even and
 * saturates, NaN going to the low end of an integer type; DequantizeLinear
 * computes (x - zp) * scale in double (exact for 8/16-bit x and a float
 * scale, so the same as the CPU's float32 path) and rounds once. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "cuda/ops_shared.h"
#include "cuda/quant_cu.h"
#include "cuda/pcu_launch.cuh"

namespace {

const int kThreads = 256;

unsigned grid_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

#define GRID_LOOP(i, n)                                                                        \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                  \
         i += (int64_t)blockDim.x * gridDim.x)

/* a float-typed element (f32, f16, bf16) as float */
__device__ __forceinline__ float ldf(int t, const void *p, int64_t i)
{
    if (t == PCU_DT_F16)
        return __half2float(((const __half *)p)[i]);
    if (t == PCU_DT_BF16)
        return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}

__device__ __forceinline__ void stf(int t, void *p, int64_t i, float v)
{
    if (t == PCU_DT_F16)
        ((__half *)p)[i] = __float2half_rn(v);
    else if (t == PCU_DT_BF16)
        ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else
        ((float *)p)[i] = v;
}

/* v rounded to precision t (f16/bf16) as numpy arithmetic in that type */
__device__ __forceinline__ float round_to(int t, float v)
{
    if (t == PCU_DT_F16)
        return __half2float(__float2half_rn(v));
    if (t == PCU_DT_BF16)
        return __bfloat162float(__float2bfloat16_rn(v));
    return v;
}

/* an integer-typed element as int32 (4-bit types packed, low nibble first) */
__device__ __forceinline__ int32_t ldi(int t, const void *p, int64_t i)
{
    switch (t) {
    case PCU_DT_U8: return ((const uint8_t *)p)[i];
    case PCU_DT_I8: return ((const int8_t *)p)[i];
    case PCU_DT_U16: return ((const uint16_t *)p)[i];
    case PCU_DT_I16: return ((const int16_t *)p)[i];
    case PCU_DT_I32: return ((const int32_t *)p)[i];
    case PCU_DT_U4: return (((const uint8_t *)p)[i >> 1] >> ((i & 1) * 4)) & 15;
    case PCU_DT_I4: {
        int32_t v = (((const uint8_t *)p)[i >> 1] >> ((i & 1) * 4)) & 15;
        return v >= 8 ? v - 16 : v;
    }
    default: return 0;
    }
}

__device__ __forceinline__ bool int_range(int t, int32_t *lo, int32_t *hi)
{
    switch (t) {
    case PCU_DT_U8: *lo = 0, *hi = 255; return true;
    case PCU_DT_I8: *lo = -128, *hi = 127; return true;
    case PCU_DT_U16: *lo = 0, *hi = 65535; return true;
    case PCU_DT_I16: *lo = -32768, *hi = 32767; return true;
    case PCU_DT_U4: *lo = 0, *hi = 15; return true;
    case PCU_DT_I4: *lo = -8, *hi = 7; return true;
    default: return false;
    }
}

__device__ __forceinline__ bool is_f8(int t)
{
    return t == PCU_DT_F8E4M3FN || t == PCU_DT_F8E5M2;
}

__device__ __forceinline__ float f8_to_float(int t, uint8_t v)
{
    __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)v,
                                           t == PCU_DT_F8E5M2 ? __NV_E5M2 : __NV_E4M3);
    return __half2float(__half(h));
}

/* float -> float8 as the CPU (lib/dtype): saturate clamps to the largest
 * finite value (infinities too, e5m2 included); otherwise out of range is
 * NaN for e4m3fn and inf for e5m2. Round to nearest even. */
__device__ __forceinline__ uint8_t float_to_f8(int t, float v, int saturate)
{
    return (uint8_t)__nv_cvt_float_to_fp8(v, saturate ? __NV_SATFINITE : __NV_NOSAT,
                                          t == PCU_DT_F8E5M2 ? __NV_E5M2 : __NV_E4M3);
}

__device__ __forceinline__ int64_t qidx(const pcu_qmap &m, int64_t e)
{
    return pcu_q_index(m.mode, m.inner, m.axis_len, m.bs, m.nblk, e);
}

/* ---- DequantizeLinear ---- */

__global__ void dequant_kernel(int xt, const void *x, int st, const void *scale, const void *zp,
                               int yt, void *y, pcu_qmap m)
{
    GRID_LOOP(e, m.n)
    {
        int64_t si = qidx(m, e);
        double s = scale ? ldf(st, scale, si) : 1.0, d;
        if (is_f8(xt)) {
            d = (double)f8_to_float(xt, ((const uint8_t *)x)[e]) * s;
        } else {
            double v = (double)(float)ldi(xt, x, e); /* x.astype(float32) */
            if (zp)
                v -= (double)ldi(xt, zp, si);
            d = v * s;
        }
        stf(yt, y, e, (float)d);
    }
}

/* per-tensor 8-bit -> float32, 4 elements per thread, 32-bit indices (the
 * activations of a QDQ model): (float)(x - zp) * s, which is what the
 * general kernel's double product rounds to (an integer below 2^9 times a
 * float is exact in double) */
template <typename X>
__global__ void dequant_pt_kernel(const X *x, int st, const void *scale, const X *zp, float *y,
                                  unsigned n)
{
    float s = ldf(st, scale, 0);
    float z = zp ? (float)zp[0] : 0.0f;
    unsigned n4 = n / 4;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += blockDim.x * gridDim.x) {
        X a = x[4 * i], b = x[4 * i + 1], c = x[4 * i + 2], d = x[4 * i + 3];
        float4 v = make_float4(((float)a - z) * s, ((float)b - z) * s, ((float)c - z) * s,
                               ((float)d - z) * s);
        reinterpret_cast<float4 *>(y)[i] = v;
    }
    for (unsigned i = 4 * n4 + blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += blockDim.x * gridDim.x)
        y[i] = ((float)x[i] - z) * s;
}

/* ---- QuantizeLinear ---- */

/* per-tensor float32 -> 8-bit: clamp(rint(x / s) + zp), as quant_one with
 * float32 precision */
template <typename Y>
__global__ void quant_pt_kernel(const float *x, int st, const void *scale, const Y *zp, Y *y,
                                unsigned n, float lo, float hi)
{
    float s = ldf(st, scale, 0);
    float z = zp ? (float)zp[0] : 0.0f;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        float r = rintf(x[i] / s) + z;
        y[i] = (Y)(int32_t)(!(r > lo) ? lo : r > hi ? hi : r);
    }
}

/* quantized value of element e: an integer (clamped) or a float8 byte */
__device__ __forceinline__ int32_t quant_one(int xt, const void *x, int st, const void *scale,
                                             const void *zp, int yt, int pt, int saturate,
                                             const pcu_qmap &m, int64_t e)
{
    int64_t si = qidx(m, e);
    float q = round_to(pt, round_to(pt, ldf(xt, x, e)) / round_to(pt, ldf(st, scale, si)));
    if (is_f8(yt))
        return float_to_f8(yt, q, saturate);
    int32_t lo = 0, hi = 0;
    int_range(yt, &lo, &hi);
    float r = rintf(q); /* half to even */
    if (zp)
        r += (float)ldi(yt, zp, si);
    return !(r > (float)lo) ? lo : r > (float)hi ? hi : (int32_t)r;
}

__global__ void quant_kernel(int xt, const void *x, int st, const void *scale, const void *zp,
                             int yt, void *y, int pt, int saturate, pcu_qmap m)
{
    if (yt == PCU_DT_U4 || yt == PCU_DT_I4) {
        int64_t bytes = (m.n + 1) / 2;
        GRID_LOOP(b, bytes)
        {
            int32_t lo = quant_one(xt, x, st, scale, zp, yt, pt, saturate, m, 2 * b);
            int32_t hi = 2 * b + 1 < m.n
                             ? quant_one(xt, x, st, scale, zp, yt, pt, saturate, m, 2 * b + 1)
                             : 0;
            ((uint8_t *)y)[b] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
        }
        return;
    }
    GRID_LOOP(e, m.n)
    {
        int32_t v = quant_one(xt, x, st, scale, zp, yt, pt, saturate, m, e);
        switch (yt) {
        case PCU_DT_U8: ((uint8_t *)y)[e] = (uint8_t)v; break;
        case PCU_DT_I8: ((int8_t *)y)[e] = (int8_t)v; break;
        case PCU_DT_U16: ((uint16_t *)y)[e] = (uint16_t)v; break;
        case PCU_DT_I16: ((int16_t *)y)[e] = (int16_t)v; break;
        default: ((uint8_t *)y)[e] = (uint8_t)v; break; /* float8 */
        }
    }
}

/* ---- DynamicQuantizeLinear ---- */

const int kDynBlocks = 1024;

/* per block: min(0, min x) and max(0, max x) of its share, NaNs ignored */
__global__ void dyn_minmax_kernel(const float *x, int64_t n, float *part)
{
    __shared__ float smn[kThreads], smx[kThreads];
    float mn = 0.0f, mx = 0.0f;
    GRID_LOOP(i, n)
    {
        float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    smn[threadIdx.x] = mn;
    smx[threadIdx.x] = mx;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) {
            smn[threadIdx.x] = fminf(smn[threadIdx.x], smn[threadIdx.x + w]);
            smx[threadIdx.x] = fmaxf(smx[threadIdx.x], smx[threadIdx.x + w]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        part[blockIdx.x] = smn[0];
        part[gridDim.x + blockIdx.x] = smx[0];
    }
}

/* one thread: reduce the partials, the ONNX reference's scale and zero point */
__global__ void dyn_params_kernel(float *part, int nparts, float *y_scale, uint8_t *y_zp,
                                  float *params)
{
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
    float mn = 0.0f, mx = 0.0f;
    for (int i = 0; i < nparts; i++) {
        mn = fminf(mn, part[i]);
        mx = fmaxf(mx, part[nparts + i]);
    }
    float s = (mx == mn ? 1.0f : (mx - mn)) / 255.0f;
    float z0 = 0.0f - mn / s;
    float z = z0 < 0.0f ? 0.0f : z0 > 255.0f ? 255.0f : z0;
    z = rintf(z);
    params[0] = s;
    params[1] = z;
    *y_scale = s;
    *y_zp = (uint8_t)z;
}

__global__ void dyn_quant_kernel(const float *x, int64_t n, uint8_t *y, const float *params)
{
    float s = params[0], zp = params[1];
    GRID_LOOP(i, n)
    {
        float r = rintf(x[i] / s);
        if (r != r)
            r = 0.0f;
        r += zp;
        y[i] = (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
    }
}

/* ---- integer matmul ---- */

const int kTile = 16;

__device__ __forceinline__ int32_t ld8(int t, const void *p, int64_t i)
{
    return t == PCU_DT_U8 ? (int32_t)((const uint8_t *)p)[i] : (int32_t)((const int8_t *)p)[i];
}

/* parameter index by kind: 0 scalar, 1 per row/col, 2 per matrix row/col */
__device__ __forceinline__ int64_t pidx(int kind, int64_t mat, int64_t len, int64_t i)
{
    return kind == 0 ? 0 : kind == 1 ? i : mat * len + i;
}

__global__ void imm_kernel(pcu_imm p, const void *A, const void *B, void *C)
{
    __shared__ int32_t sa[kTile][kTile + 1], sb[kTile][kTile + 1];
    int64_t row = (int64_t)blockIdx.y * kTile + threadIdx.y;
    int64_t col = (int64_t)blockIdx.x * kTile + threadIdx.x;
    for (int64_t bt = blockIdx.z; bt < p.batch; bt += gridDim.z) {
        int64_t am = 0, bm = 0, r = bt;
        for (int d = p.nb - 1; d >= 0; d--) {
            int64_t idx = r % p.bdims[d];
            r /= p.bdims[d];
            am += idx * p.sa[d];
            bm += idx * p.sb[d];
        }
        const int64_t abase = am * p.M * p.K, bbase = bm * p.K * p.N;
        int32_t az = 0, bz = 0;
        if (p.azp && row < p.M)
            az = ld8(p.at, p.azp, pidx(p.azp_kind, am, p.M, row));
        int32_t acc = 0;
        for (int64_t k0 = 0; k0 < p.K; k0 += kTile) {
            int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
            sa[threadIdx.y][threadIdx.x] =
                row < p.M && ka < p.K ? ld8(p.at, A, abase + row * p.K + ka) - az : 0;
            if (p.bzp && col < p.N)
                bz = ld8(p.bt, p.bzp, pidx(p.bzp_kind, bm, p.N, col));
            sb[threadIdx.y][threadIdx.x] =
                col < p.N && kb < p.K ? ld8(p.bt, B, bbase + kb * p.N + col) - bz : 0;
            __syncthreads();
#pragma unroll
            for (int t = 0; t < kTile; t++)
                acc = (int32_t)((uint32_t)acc +
                                (uint32_t)(sa[threadIdx.y][t] * sb[t][threadIdx.x])); /* wraps */
            __syncthreads();
        }
        if (row < p.M && col < p.N) {
            int64_t o = (bt * p.M + row) * p.N + col;
            if (p.epi == 0) {
                ((int32_t *)C)[o] = acc;
            } else {
                float m = p.as[pidx(p.as_kind, am, p.M, row)] * p.bs[pidx(p.bs_kind, bm, p.N, col)];
                m = m / p.ys[0];
                double d = (double)acc * (double)m;
                if (p.yzp)
                    d += (double)ld8(p.yt, p.yzp, 0);
                d = rint(d);
                int32_t lo = p.yt == PCU_DT_U8 ? 0 : -128, hi = p.yt == PCU_DT_U8 ? 255 : 127;
                int32_t v = d < lo ? lo : d > hi ? hi : (int32_t)d;
                if (p.yt == PCU_DT_U8)
                    ((uint8_t *)C)[o] = (uint8_t)v;
                else
                    ((int8_t *)C)[o] = (int8_t)v;
            }
        }
    }
}

/* ---- MatMulNBits ---- */

__device__ __forceinline__ uint32_t nb_field(const uint8_t *p, int64_t idx, int bits)
{
    int64_t bit = idx * bits;
    const uint8_t *q = p + (bit >> 3);
    uint32_t v = q[0];
    int sh = (int)(bit & 7);
    if (sh + bits > 8)
        v |= (uint32_t)q[1] << 8;
    return (v >> sh) & ((1u << bits) - 1u);
}

__global__ void nbits_kernel(const uint8_t *blob, int st, const void *scales, const void *zp,
                             int zp_packed, int bits, int64_t N, int64_t K, int64_t bs, int wt,
                             void *W)
{
    int64_t nblk = (K + bs - 1) / bs, blob_bytes = (bs * bits + 7) / 8;
    int64_t zp_row = (nblk * bits + 7) / 8;
    GRID_LOOP(i, N * K)
    {
        int64_t n = i / K, k = i % K, b = k / bs;
        float q = (float)nb_field(blob + (n * nblk + b) * blob_bytes, k % bs, bits);
        float z = !zp          ? (float)(1u << (bits - 1))
                  : zp_packed ? (float)nb_field((const uint8_t *)zp + n * zp_row, b, bits)
                               : ldf(st, zp, n * nblk + b);
        stf(wt, W, i, (q - z) * ldf(st, scales, n * nblk + b));
    }
}

__global__ void row_bias_kernel(int t, void *y, const void *bias, int64_t rows, int64_t cols)
{
    GRID_LOOP(i, rows * cols)
    {
        stf(t, y, i, ldf(t, y, i) + ldf(t, bias, i % cols));
    }
}

/* QLinearConv's epilogue: acc (float holding an integer sum) plus the int32
 * bias, times (x_scale * w_scale[m]) / y_scale in float32 (as the CPU
 * rounds the multiplier), plus y_zp, rounded half to even and saturated */
__global__ void qconv_requant_kernel(const float *acc, const int32_t *bias, const float *xs,
                                     const float *ws, int per_ch, const float *ys,
                                     const void *yzp, int yt, void *y, int64_t N, int64_t M,
                                     int64_t inner)
{
    GRID_LOOP(i, N * M * inner)
    {
        int64_t m = (i / inner) % M;
        float mult = (xs[0] * ws[per_ch ? m : 0]) / ys[0];
        double a = (double)acc[i] + (bias ? (double)bias[m] : 0.0);
        double d = rint(a * (double)mult + (yzp ? (double)ld8(yt, yzp, 0) : 0.0));
        int32_t lo = yt == PCU_DT_U8 ? 0 : -128, hi = yt == PCU_DT_U8 ? 255 : 127;
        int32_t v = d < lo ? lo : d > hi ? hi : (int32_t)d;
        if (yt == PCU_DT_U8)
            ((uint8_t *)y)[i] = (uint8_t)v;
        else
            ((int8_t *)y)[i] = (int8_t)v;
    }
}

bool is_float_type(int t)
{
    return t == PCU_DT_F32 || t == PCU_DT_F16 || t == PCU_DT_BF16;
}

} // namespace

extern "C" {

cudaError_t pcu_dequantize(int xt, const void *x, int st, const void *scale, const void *zp,
                           int yt, void *y, const pcu_qmap *m, cudaStream_t stream)
{
    bool xok = xt == PCU_DT_U8 || xt == PCU_DT_I8 || xt == PCU_DT_U16 || xt == PCU_DT_I16 ||
               xt == PCU_DT_I32 || xt == PCU_DT_U4 || xt == PCU_DT_I4 ||
               xt == PCU_DT_F8E4M3FN || xt == PCU_DT_F8E5M2;
    if (!xok || !is_float_type(st) || !is_float_type(yt))
        return cudaErrorNotSupported;
    if (m->n == 0)
        return cudaSuccess;
    bool fast = m->mode == PCU_Q_TENSOR && scale && yt == PCU_DT_F32 && m->n < 0x7fffffff &&
                (xt == PCU_DT_U8 || xt == PCU_DT_I8) && ((uintptr_t)y & 15) == 0;
    if (fast && xt == PCU_DT_U8)
        PCU_LAUNCH(grid_for((m->n + 3) / 4), kThreads, 0, stream, dequant_pt_kernel<uint8_t>)(
            (const uint8_t *)x, st, scale, (const uint8_t *)zp, (float *)y, (unsigned)m->n);
    else if (fast)
        PCU_LAUNCH(grid_for((m->n + 3) / 4), kThreads, 0, stream, dequant_pt_kernel<int8_t>)(
            (const int8_t *)x, st, scale, (const int8_t *)zp, (float *)y, (unsigned)m->n);
    else
        PCU_LAUNCH(grid_for(m->n), kThreads, 0, stream, dequant_kernel)(
            xt, x, st, scale, zp, yt, y, *m);
    return cudaGetLastError();
}

cudaError_t pcu_quantize(int xt, const void *x, int st, const void *scale, const void *zp,
                         int yt, void *y, int pt, int saturate, const pcu_qmap *m,
                         cudaStream_t stream)
{
    bool yok = yt == PCU_DT_U8 || yt == PCU_DT_I8 || yt == PCU_DT_U16 || yt == PCU_DT_I16 ||
               yt == PCU_DT_U4 || yt == PCU_DT_I4 || yt == PCU_DT_F8E4M3FN ||
               yt == PCU_DT_F8E5M2;
    if (!yok || !is_float_type(xt) || !is_float_type(st) || !is_float_type(pt))
        return cudaErrorNotSupported;
    if (m->n == 0)
        return cudaSuccess;
    if (m->mode == PCU_Q_TENSOR && xt == PCU_DT_F32 && pt == PCU_DT_F32 && m->n < 0x7fffffff &&
        (yt == PCU_DT_U8 || yt == PCU_DT_I8)) {
        if (yt == PCU_DT_U8)
            PCU_LAUNCH(grid_for(m->n), kThreads, 0, stream, quant_pt_kernel<uint8_t>)(
                (const float *)x, st, scale, (const uint8_t *)zp, (uint8_t *)y, (unsigned)m->n,
                0.0f, 255.0f);
        else
            PCU_LAUNCH(grid_for(m->n), kThreads, 0, stream, quant_pt_kernel<int8_t>)(
                (const float *)x, st, scale, (const int8_t *)zp, (int8_t *)y, (unsigned)m->n,
                -128.0f, 127.0f);
        return cudaGetLastError();
    }
    int64_t work = (yt == PCU_DT_U4 || yt == PCU_DT_I4) ? (m->n + 1) / 2 : m->n;
    PCU_LAUNCH(grid_for(work), kThreads, 0, stream, quant_kernel)(
        xt, x, st, scale, zp, yt, y, pt, saturate, *m);
    return cudaGetLastError();
}

size_t pcu_dynq_ws_bytes(int64_t n)
{
    (void)n;
    return (2 * (size_t)kDynBlocks + 2) * sizeof(float);
}

cudaError_t pcu_dynamic_quantize(const float *x, int64_t n, uint8_t *y, float *y_scale,
                                 uint8_t *y_zp, void *ws, cudaStream_t stream)
{
    int64_t b = (n + kThreads * 4 - 1) / (kThreads * 4);
    int blocks = (int)(b < 1 ? 1 : b > kDynBlocks ? kDynBlocks : b);
    float *part = (float *)ws, *params = part + 2 * kDynBlocks;
    PCU_LAUNCH(blocks, kThreads, 0, stream, dyn_minmax_kernel)(x, n, part);
    PCU_LAUNCH(1, 1, 0, stream, dyn_params_kernel)(part, blocks, y_scale, y_zp, params);
    if (n > 0)
        PCU_LAUNCH(grid_for(n), kThreads, 0, stream, dyn_quant_kernel)(x, n, y, params);
    return cudaGetLastError();
}

cudaError_t pcu_int_matmul(const pcu_imm *p, const void *A, const void *B, void *C,
                           cudaStream_t stream)
{
    if ((p->at != PCU_DT_U8 && p->at != PCU_DT_I8) || (p->bt != PCU_DT_U8 && p->bt != PCU_DT_I8) ||
        p->nb > PCU_MM_MAXB || (p->epi == 1 && p->yt != PCU_DT_U8 && p->yt != PCU_DT_I8))
        return cudaErrorNotSupported;
    if (p->batch * p->M * p->N == 0)
        return cudaSuccess;
    int64_t gx = (p->N + kTile - 1) / kTile, gy = (p->M + kTile - 1) / kTile;
    if (gx > 2147483647 || gy > 65535)
        return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)(p->batch < 65535 ? p->batch : 65535));
    PCU_LAUNCH(grid, dim3(kTile, kTile), 0, stream, imm_kernel)(*p, A, B, C);
    return cudaGetLastError();
}

cudaError_t pcu_nbits_dequant(const uint8_t *blob, int st, const void *scales, const void *zp,
                              int zp_packed, int bits, int64_t N, int64_t K, int64_t bs,
                              int wt, void *W, cudaStream_t stream)
{
    if (!is_float_type(st) || !is_float_type(wt) || bits < 1 || bits > 8 || bs < 1)
        return cudaErrorNotSupported;
    if (N * K == 0)
        return cudaSuccess;
    PCU_LAUNCH(grid_for(N * K), kThreads, 0, stream, nbits_kernel)(
        blob, st, scales, zp, zp_packed, bits, N, K, bs, wt, W);
    return cudaGetLastError();
}

cudaError_t pcu_add_row_bias(int t, void *y, const void *bias, int64_t rows, int64_t cols,
                             cudaStream_t stream)
{
    if (!is_float_type(t))
        return cudaErrorNotSupported;
    if (rows * cols == 0)
        return cudaSuccess;
    PCU_LAUNCH(grid_for(rows * cols), kThreads, 0, stream, row_bias_kernel)(t, y, bias, rows, cols);
    return cudaGetLastError();
}

cudaError_t pcu_qconv_requant(const float *acc, const int32_t *bias, const float *x_scale,
                              const float *w_scale, int w_per_channel, const float *y_scale,
                              const void *y_zp, int yt, void *y, int64_t N, int64_t M,
                              int64_t inner, cudaStream_t stream)
{
    if (yt != PCU_DT_U8 && yt != PCU_DT_I8)
        return cudaErrorNotSupported;
    if (N * M * inner == 0)
        return cudaSuccess;
    PCU_LAUNCH(grid_for(N * M * inner), kThreads, 0, stream, qconv_requant_kernel)(
        acc, bias, x_scale, w_scale, w_per_channel, y_scale, y_zp, yt, y, N, M, inner);
    return cudaGetLastError();
}

} // extern "C"
