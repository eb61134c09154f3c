/* Fused QDQ kernels (qfused_cu.h): the int8 tensor-core product of a
 * quantized Conv / MatMul / Gemm with its requantizing epilogue, and the
 * 8-bit Add.
 *
 * The product is an implicit GEMM: C[m, p] = sum_k A[m, k] B[k, p] with A
 * the packed weights of one group and B gathered on the fly from x
 * (Conv: k = (channel, ky, kx), p = (image, output pixel), through a table
 * of k's offsets; MatMul: B[k, p] = x[p, k]). A block of 256 threads
 * (8 warps) computes BM x 128 outputs over 32-k steps: each step every
 * thread gathers 16 bytes of B (one column, 16 k) and, for the first BM x 2
 * threads, 16 bytes of A into registers, then into shared memory laid out
 * as 16 x 16 WMMA tiles ([k half][row][16 k] for A, row major; [k half]
 * [column][16 k] for B, column major), while the warps multiply the
 * previous step. Warps split the block 4 x 2 (BM 128) or 2 x 4 (BM 64),
 * each a 32-row strip of 2 x (WN / 16) accumulator tiles. The epilogue
 * goes tile by tile through a per-warp shared buffer so that each output
 * element is finished by one thread with the CPU's float operations.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "cuda/qfused_cu.h"
#include "cuda/quant_cu.h"
#include "cuda/pcu_launch.cuh"

namespace {

const int kThreads = 256;

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 720
#define PCU_QG_WMMA 1
#else
#define PCU_QG_WMMA 0
#endif

template <int BM>
__global__ void __launch_bounds__(256, 2) qgemm_kernel(pcu_qgemm a, const uint8_t *x, void *y)
{
#if PCU_QG_WMMA
    using namespace nvcuda;
    constexpr int WARPS_M = BM / 32, WARPS_N = 8 / WARPS_M, WN = PCU_QG_BN / WARPS_N,
                  FN = WN / 16;
    __shared__ __align__(128) int8_t As[2][BM][16];
    __shared__ __align__(128) int8_t Bs[2][PCU_QG_BN][16];
    __shared__ __align__(128) int32_t Cs[8][256];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    const int64_t grp = blockIdx.z, m0 = (int64_t)blockIdx.y * BM,
                  p0 = (int64_t)blockIdx.x * PCU_QG_BN;

    /* this thread's B column and k half */
    const int bp = tid % PCU_QG_BN, bh = tid / PCU_QG_BN;
    const pcu_qg_col col = pcu_qg_column(&a, grp, p0 + bp);
    /* this thread's A row and k half */
    const int ar = tid / 2, ah = tid % 2;
    const bool aload = ar < BM;
    const int8_t *wrow = a.w + ((grp * a.Mpad) + m0 + (aload ? ar : 0)) * a.Kp + ah * 16;

    wmma::fragment<wmma::accumulator, 16, 16, 16, int> acc[2][FN];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < FN; j++)
            wmma::fill_fragment(acc[i][j], 0);

    int4 areg = make_int4(0, 0, 0, 0);
    uint32_t breg[4];
    auto load = [&](int64_t k0) {
        if (aload)
            areg = __ldg((const int4 *)(wrow + k0));
        pcu_qg_b16(&a, x, &col, k0 + bh * 16, breg);
    };
    auto store = [&]() {
        if (aload)
            *(int4 *)&As[ah][ar][0] = areg;
        *(int4 *)&Bs[bh][bp][0] =
            make_int4((int)breg[0], (int)breg[1], (int)breg[2], (int)breg[3]);
    };

    const int64_t nk = a.Kp / PCU_QG_BK;
    load(0);
    store();
    __syncthreads();
    for (int64_t kt = 0; kt < nk; kt++) {
        if (kt + 1 < nk)
            load((kt + 1) * PCU_QG_BK);
#pragma unroll
        for (int kk = 0; kk < 2; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> fb[FN];
#pragma unroll
            for (int i = 0; i < 2; i++)
                wmma::load_matrix_sync(fa[i], &As[kk][wm * 32 + i * 16][0], 16);
#pragma unroll
            for (int j = 0; j < FN; j++)
                wmma::load_matrix_sync(fb[j], &Bs[kk][wn * WN + j * 16][0], 16);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < FN; j++)
                    wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
        if (kt + 1 < nk) {
            store();
            __syncthreads();
        }
    }

    /* epilogue: one 16 x 16 tile at a time through this warp's buffer */
    int32_t *cw = Cs[warp];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) {
            wmma::store_matrix_sync(cw, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int idx = e * 32 + lane, r = idx / 16, c = idx % 16;
                int64_t m = m0 + wm * 32 + i * 16 + r, pp = p0 + wn * WN + j * 16 + c;
                if (m < a.Mg && pp < a.P)
                    pcu_qg_out(&a, grp, m, pp, cw[idx], y);
            }
            __syncwarp();
        }
#else
    __trap(); /* built for an architecture without int8 WMMA (before sm_72) */
#endif
}

__device__ __forceinline__ int32_t ld8(int t, const void *p, int64_t i)
{
    return t == PCU_DT_U8 ? (int32_t)((const uint8_t *)p)[i] : (int32_t)((const int8_t *)p)[i];
}

__global__ void qadd_kernel(pcu_qadd a, const void *A, const void *B, uint8_t *y, int64_t n)
{
    float lo = (float)(a.lo - a.zy), hi = (float)(a.hi - a.zy);
    float floor0 = a.relu ? 0.0f : -INFINITY;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float va = __fmul_rn((float)(ld8(a.adt, A, i) - a.za), a.sa);
        float vb = __fmul_rn((float)(ld8(a.bdt, B, i) - a.zb), a.sb);
        float v = __fadd_rn(va, vb);
        v = v > floor0 ? v : floor0;
        float q = __fdiv_rn(v, a.ys);
        q = q > lo ? q : lo;
        q = q < hi ? q : hi;
        y[i] = (uint8_t)((int32_t)rintf(q) + a.zy);
    }
}

__global__ void qbn_kernel(pcu_qbn p, const void *x, uint8_t *y, int64_t n)
{
    float lo = (float)(p.lo - p.zy), hi = (float)(p.hi - p.zy);
    float floor0 = p.relu ? 0.0f : -INFINITY;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        /* the channel: 32-bit division where every index fits (64-bit
         * division is a long software sequence on the GPU) */
        int64_t c = n <= 0xffffffffLL
                        ? (int64_t)(((uint32_t)i / (uint32_t)p.plane) % (uint32_t)p.C)
                        : (i / p.plane) % p.C;
        float v = __fmul_rn((float)(ld8(p.xdt, x, i) - p.zx), p.sx);
        v = __fadd_rn(__fmul_rn(v, p.a[c]), p.b[c]);
        v = v > floor0 ? v : floor0;
        float q = __fdiv_rn(v, p.ys);
        q = q > lo ? q : lo;
        q = q < hi ? q : hi;
        y[i] = (uint8_t)((int32_t)rintf(q) + p.zy);
    }
}

} // namespace

extern "C" cudaError_t pcu_qgemm_run(const pcu_qgemm *a, const void *x, void *y,
                                     cudaStream_t stream)
{
    if ((a->bm != 64 && a->bm != 128) || a->Kp % PCU_QG_BK || a->Mpad % a->bm || a->P < 0)
        return cudaErrorInvalidValue;
    if (a->P == 0 || a->Mg == 0)
        return cudaSuccess;
    int64_t gx = (a->P + PCU_QG_BN - 1) / PCU_QG_BN, gy = a->Mpad / a->bm;
    if (gx > 0x7fffffff || gy > 65535 || a->group > 65535)
        return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)a->group);
    if (a->bm == 128)
        PCU_LAUNCH(grid, kThreads, 0, stream, qgemm_kernel<128>)(*a, (const uint8_t *)x, y);
    else
        PCU_LAUNCH(grid, kThreads, 0, stream, qgemm_kernel<64>)(*a, (const uint8_t *)x, y);
    return cudaGetLastError();
}

extern "C" cudaError_t pcu_qadd_run(const pcu_qadd *a, const void *A, const void *B, void *y,
                                    int64_t n, cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    int64_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks > 65535 * 8)
        blocks = 65535 * 8;
    PCU_LAUNCH((unsigned)blocks, kThreads, 0, stream, qadd_kernel)(*a, A, B, (uint8_t *)y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t pcu_qbn_run(const pcu_qbn *p, const void *x, void *y, int64_t n,
                                   cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    if (p->C < 1 || p->plane < 1)
        return cudaErrorInvalidValue;
    int64_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks > 65535 * 8)
        blocks = 65535 * 8;
    PCU_LAUNCH((unsigned)blocks, kThreads, 0, stream, qbn_kernel)(*p, x, (uint8_t *)y, n);
    return cudaGetLastError();
}
