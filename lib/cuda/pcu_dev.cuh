/* Device helpers shared by the core .cu files: element types, conversion to
 * and from the float that math is done in, index decomposition, grid
 * sizes. C++ only (included by .cu files). */
#ifndef PARE_CUDA_PCU_DEV_CUH
#define PARE_CUDA_PCU_DEV_CUH

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include "core_kernels.h"
#include "pcu_launch.cuh"

template <typename T> __device__ __forceinline__ float to_f(T v) { return (float)v; }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}
template <typename T> __device__ __forceinline__ T from_f(float v) { return (T)v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

/* offset in an operand of the output element with linear index i */
__device__ __forceinline__ int64_t pcu_offset(int64_t i, const pcu_shape &sh, const pcu_strides &st)
{
    int64_t off = 0;
    for (int d = sh.rank - 1; d >= 0; d--) {
        int64_t q = i / sh.dims[d];
        off += (i - q * sh.dims[d]) * st.s[d];
        i = q;
    }
    return off;
}

/* a grid-stride loop covers any n with a bounded grid */
static inline unsigned pcu_blocks(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535 * 8)
        b = 65535 * 8;
    return (unsigned)(b > 0 ? b : 1);
}

#define PCU_GRID_LOOP(i, n)                                                             \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);         \
         i += (int64_t)gridDim.x * blockDim.x)

/* calls F<T>() for the floating dtypes; returns cudaErrorInvalidValue for others */
#define PCU_FP_DISPATCH(dtype, F, ...)                                                  \
    switch (dtype) {                                                                    \
    case PCU_F32: return F<float>(__VA_ARGS__);                                         \
    case PCU_F16: return F<__half>(__VA_ARGS__);                                        \
    case PCU_BF16: return F<__nv_bfloat16>(__VA_ARGS__);                                \
    default: return (int)cudaErrorInvalidValue;                                         \
    }

#endif
