/* Internal to lib/cuda: what the CUDA backend's files share.
 *
 * Layout of the backend (see lib/exec/backend.h for the interface):
 *   - Host logic (the pare_backend record, session contexts, kernel records
 *     and their run functions, descriptor caches) is C11 in the .c files of
 *     lib/cuda, compiled by the C compiler against the CUDA runtime,
 *     cuBLAS(Lt) and cuDNN C headers.
 *   - Device code is in the .cu files of lib/cuda, compiled by nvcc. A .cu
 *     file exports only extern "C" launchers with plain C signatures
 *     (pointers, counts, a cudaStream_t) declared in a C header of its own;
 *     no pare header is included from C++.
 *   - Kernels are pare_kernel records (exec/kernel.h) in tables listed
 *     below. Their run gets the session's pcu_session in k->dev, input
 *     tensors whose data are device pointers, and k->alloc_out returns
 *     tensors whose data are device pointers. A run queues work on
 *     s->stream and returns; it never synchronises (the executor calls the
 *     backend's sync where needed) and never allocates device memory except
 *     through k->alloc_out and pcu_workspace.
 */
#ifndef PARE_CUDA_INTERNAL_H
#define PARE_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#include <cudnn.h>

#include "exec/backend.h"
#include "cuda/qfused_cu.h"
#include "cuda/qfused_plan.h"

/* One session's context (pare_backend.open), passed to kernels as k->dev. */
typedef struct pcu_session {
    int gpu;                 /* device index */
    int sm;                  /* compute capability, major * 10 + minor (90 on Hopper) */
    cudaStream_t stream;     /* every kernel of the session queues here */
    cublasHandle_t cublas;   /* bound to stream */
    cublasLtHandle_t lt;
    cudnnHandle_t cudnn;     /* bound to stream */
    bool tf32;               /* pare_session_opts.tf32 */
    bool conv_search;        /* Conv algorithms by timing (cudnnFind), not heuristics */
    void *workspace;         /* scratch for cuBLASLt, cuDNN and kernels (pcu_workspace) */
    size_t workspace_size;
    void *backend_private;   /* the backend core's own state (timing events, pinned buffers, graphs) */
} pcu_session;

/* Row-major C[M,N] = alpha op(A) op(B) + beta C on cuBLAS, batched with
 * element strides sa, sb, sc between matrices (core.c): float32 (TF32 as
 * the session says), float16 and bfloat16 with float accumulation. */
pare_status pcu_gemm_rm(pcu_session *s, int dtype, bool ta, bool tb, int64_t M, int64_t N,
                        int64_t K, float alpha, const void *A, int64_t sa, const void *B,
                        int64_t sb, float beta, void *C, int64_t sc, int64_t batch,
                        pare_error *err);

/* Turn a failed call into a status whose message names the call, the file
 * and line, and the library's error string, e.g.
 * "cudaMalloc(&p, bytes) failed at lib/cuda/backend.c:88: out of memory". */
pare_status pcu_fail_rt(int code, const char *call, const char *file, int line, pare_error *err);
pare_status pcu_fail_blas(int code, const char *call, const char *file, int line,
                          pare_error *err);
pare_status pcu_fail_dnn(int code, const char *call, const char *file, int line, pare_error *err);

#define PCU_RT(call, err)                                                       \
    do {                                                                        \
        cudaError_t pcu_e_ = (call);                                            \
        if (pcu_e_ != cudaSuccess)                                              \
            return pcu_fail_rt((int)pcu_e_, #call, __FILE__, __LINE__, (err));  \
    } while (0)
#define PCU_BLAS(call, err)                                                     \
    do {                                                                        \
        cublasStatus_t pcu_e_ = (call);                                         \
        if (pcu_e_ != CUBLAS_STATUS_SUCCESS)                                    \
            return pcu_fail_blas((int)pcu_e_, #call, __FILE__, __LINE__, (err));\
    } while (0)
#define PCU_DNN(call, err)                                                      \
    do {                                                                        \
        cudnnStatus_t pcu_e_ = (call);                                          \
        if (pcu_e_ != CUDNN_STATUS_SUCCESS)                                     \
            return pcu_fail_dnn((int)pcu_e_, #call, __FILE__, __LINE__, (err)); \
    } while (0)

/* Scratch of at least bytes on the device, valid until the next call on the
 * same session. Grows (cudaFree + cudaMalloc) only when asked for more than
 * it holds, which happens on the recording run, not in steady state. */
pare_status pcu_workspace(pcu_session *s, size_t bytes, void **out, pare_error *err);

/* Counts device bytes a kernel allocated for the session's lifetime (e.g.
 * a fused Conv's folded weights) into its GPU memory figures. */
void pcu_count_device_bytes(pcu_session *s, int64_t delta);

/* Kernel tables (each ends with a zeroed record). */
extern const pare_kernel pare_cuda_kernels_core[]; /* MatMul, Gemm, elementwise, activations,
                                                      Softmax, LayerNormalization, data movement,
                                                      Reduce, Cast, Where, Expand (core.c) */
extern const pare_kernel pare_cuda_kernels_dnn[];  /* Conv, ConvTranspose, pooling,
                                                      BatchNormalization, Resize (dnn.c) */
extern const pare_kernel pare_cuda_kernels_quant[]; /* QuantizeLinear, DequantizeLinear,
                                                       MatMulInteger, QLinearMatMul, QLinearConv,
                                                       MatMulNBits, fused QDQ (quant.c) */

/* The placement decision of the cuda record (backend.c): the kernel for n,
 * or NULL and why ("strings stay on the host", "integer shape arithmetic
 * stays on the cpu", "tiny tensors ... stay on the cpu", or the registry's
 * reason). Needs no GPU: the host-side tests call it through the record. */
const pare_kernel *pcu_supports(const pare_node *n, int64_t opset, const int *dtypes,
                                size_t n_in, char *why, size_t why_size);

/* Reads input i of a kernel on the host (shape, axes, starts, Clip bounds:
 * small parameter tensors): from the initializer when the input is one,
 * else copied from the device after waiting for the stream. At most max
 * bytes; fails on a larger tensor. Returns the tensor's byte count in
 * *nbytes (core.c). */
pare_status pcu_read_input(pare_kctx *k, size_t i, void *dst, size_t max, size_t *nbytes,
                           pare_error *err);
/* The same for an integer (int32/int64) input as int64 values; *count
 * elements (core.c). */
pare_status pcu_read_ints(pare_kctx *k, size_t i, int64_t *vals, size_t max, size_t *count,
                          pare_error *err);

/* Conditions of the dnn and quant kernels on node n beyond their types
 * (constant Resize scales, inference-only BatchNormalization, attributes
 * a kernel does not implement): called by supports after the registry
 * chose k; false with why set when k does not run n, which then runs on the
 * CPU. True for kernels of other tables. (dnn.c; pcu_dnn_accepts and
 * pcu_quant_accepts are its two halves.) */
bool pcu_ops_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                     size_t why_size);
bool pcu_dnn_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                     size_t why_size);
bool pcu_quant_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                       size_t why_size);

/* Whether Cast on cuda converts to or from this dtype (core.c). */
bool pcu_cast_supported(int dtype);

/* Fused QDQ (qfused.c): the backend's fuse_qdq, the kernel of a QDQ-fused
 * node (exec/kernel.h pare_kqdq) or a refusal (PARE_ERR_UNSUPPORTED: the
 * nodes run as they are). */
pare_status pcu_fuse_qdq(pcu_session *ps, const pare_kqdq *d, const pare_kernel **k, void **state,
                         pare_error *err);
/* Its host-side parts (packing, kernel arguments): qfused_plan.h. */

/* The CUDA backend record (backend.c), registered at start-up of a CUDA build. */
const pare_backend *pare_backend_cuda(void);

#endif
