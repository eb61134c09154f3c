/* GEMM core of the CPU executor.
 *
 * All matrices are row-major. pare_sgemm computes
 *     C = alpha * op(A) * op(B) + beta * C
 * with op(A) M x K and op(B) K x N (op transposes when trans* is set). When
 * beta is 0, C is not read (NaNs in it do not propagate). Work is spread
 * over `pool`; a call made from inside a pool job runs on the calling thread.
 *
 * pare_sgemm uses CBLAS when the build found one (PARE_HAVE_CBLAS) and the
 * portable kernels otherwise; pare_sgemm_portable always uses the portable
 * ones (blocked, packed, register-tiled, chosen at run time for AVX-512,
 * AVX2+FMA or baseline vectors). Both agree within float rounding.
 *
 * The portable path packs its operands (B always; A unless it is plain with
 * alpha 1, which the kernels read in place) into per-thread scratch buffers
 * that are kept for the next call (freed when the thread exits), so
 * steady-state calls do not allocate. Functions return PARE_ERR_NOMEM when such a buffer
 * cannot be grown; they set no message (the caller names the node).
 */
#ifndef PARE_EXEC_GEMM_H
#define PARE_EXEC_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pare/status.h"
#include "exec/threadpool.h"

pare_status pare_sgemm(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                       int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float beta, float *C, int64_t ldc);

pare_status pare_sgemm_portable(pare_threadpool *pool, bool transA, bool transB, int64_t M,
                                int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                                const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Same contract in double precision (simple blocked loops, parallel over rows). */
pare_status pare_dgemm(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                       int64_t K, double alpha, const double *A, int64_t lda, const double *B,
                       int64_t ldb, double beta, double *C, int64_t ldc);

/* ---- convolution as GEMM ---------------------------------------------- */

/* A 2-D image of one convolution group seen as the implicit im2col matrix
 * [C*kh*kw, oh*ow] (row k = (c, ky, kx), column n = (oy, ox)); 1-D convs use
 * h = kh = oh = 1. Points outside the image read as 0. */
typedef struct pare_im2col {
    const float *x; /* c x h x w */
    int64_t c, h, w;
    int64_t kh, kw, sh, sw, dh, dw, ph, pw; /* kernel, strides, dilations, top/left pads */
    int64_t oh, ow;
} pare_im2col;

/* op(A) packed once (e.g. a Conv's weights) for repeated pare_sgemm_conv /
 * pare_sgemm_packed calls; alpha is folded in. The tile shape may depend on
 * M. Owned by the caller. */
typedef struct pare_sgemm_packed_a pare_sgemm_packed_a;
pare_status pare_sgemm_pack_a(bool transA, int64_t M, int64_t K, float alpha, const float *A,
                              int64_t lda, pare_sgemm_packed_a **out);
void pare_sgemm_packed_a_free(pare_sgemm_packed_a *p);

/* What is done to C once the product is in: bias[m] added to row m (bias may
 * be NULL), then values clamped to [lo, hi] (NaN stays NaN). Relu is
 * lo = 0, hi = INFINITY; no clamp is -INFINITY, INFINITY. NULL: neither. */
typedef struct pare_gemm_epi {
    const float *bias;
    float lo, hi;
} pare_gemm_epi;

/* Fused epilogue of the _ex entry points (perf-graph fuses Conv/Gemm/MatMul
 * with what follows them). With P = alpha * op(A) * op(B) (the conv entry
 * points: A * im2col(img)), every element of C becomes
 *
 *     C[i][j] = act(P[i][j] + beta*C[i][j] + bias_term + residual[i*ldr + j])
 *
 * evaluated in float, in that order (the residual is added before the
 * activation, as in Conv -> Add -> Relu), where
 *   bias_term = bias[i] (bias_axis 0: one value per row, e.g. per output
 *               channel of a conv) or bias[j] (bias_axis 1: one per column,
 *               e.g. Gemm's C of shape [N]); 0 when bias is NULL;
 *   residual  = 0 when residual is NULL; else an M x N matrix with row stride
 *               ldr that must not overlap C (use beta = 1 to accumulate in
 *               place instead);
 *   act (PARE_GEMM_ACT_*, with a = act_alpha, b = act_beta):
 *     NONE        x
 *     RELU        max(x, 0)
 *     CLIP        min(max(x, a), b)         (Clip: a = min, b = max; NaN stays NaN)
 *     LEAKY_RELU  x < 0 ? a*x : x
 *     SIGMOID     1 / (1 + exp(-x))
 *     HARDSIGMOID max(0, min(1, a*x + b))
 *     HARDSWISH   x * max(0, min(1, a*x + b))  (ONNX: a = 1/6, b = 0.5)
 *     TANH        tanh(x)
 *     GELU        x/2 * (1 + erf(x/sqrt(2)))   (ONNX Gelu, approximate "none")
 * A NULL epilogue is the same as an all-zero one (no bias, no residual,
 * act NONE). bias has M (axis 0) or N (axis 1) elements. NaN stays NaN
 * through every act. The epilogue is applied to each output tile right
 * after its last depth block: on the microkernel's registers before the
 * store for full tiles (AVX2 and AVX-512 kernels; SIGMOID, TANH and GELU, and the
 * generic kernel, take a pass over the tile while it is in L1); results
 * match the unfused sequence within float rounding. */
enum {
    PARE_GEMM_ACT_NONE = 0,
    PARE_GEMM_ACT_RELU,
    PARE_GEMM_ACT_CLIP,
    PARE_GEMM_ACT_LEAKY_RELU,
    PARE_GEMM_ACT_SIGMOID,
    PARE_GEMM_ACT_HARDSIGMOID,
    PARE_GEMM_ACT_HARDSWISH,
    PARE_GEMM_ACT_TANH,
    PARE_GEMM_ACT_GELU,
};

typedef struct pare_gemm_epilogue {
    const float *bias;
    int bias_axis; /* 0: bias[i] per row, 1: bias[j] per column */
    int act;       /* PARE_GEMM_ACT_* */
    float act_alpha, act_beta;
    const float *residual; /* M x N, row stride ldr, or NULL */
    int64_t ldr;
} pare_gemm_epilogue;

/* pare_sgemm (portable kernels unless CBLAS is in use; with CBLAS the
 * epilogue runs as a pass over C after the product) and the two entry points
 * below, with an epilogue (NULL: none). They return PARE_ERR_ARG for an
 * unknown act or bias_axis. */
pare_status pare_sgemm_ex(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                          int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                          int64_t ldb, float beta, float *C, int64_t ldc,
                          const pare_gemm_epilogue *ep);

/* pare_sgemm_ex that never goes to CBLAS (for calls made inside pool jobs). */
pare_status pare_sgemm_portable_ex(pare_threadpool *pool, bool transA, bool transB, int64_t M,
                                   int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                                   const float *B, int64_t ldb, float beta, float *C,
                                   int64_t ldc, const pare_gemm_epilogue *ep);

/* C[M, oh*ow] = epi(A * im2col(img) + beta*C).
 * A is either packed (pa != NULL; then A/lda are ignored) or plain M x K
 * (K = c*kh*kw) with row stride lda. Uses the portable kernels. */
pare_status pare_sgemm_conv(pare_threadpool *pool, int64_t M, const pare_sgemm_packed_a *pa,
                            const float *A, int64_t lda, const pare_im2col *img, float beta,
                            const pare_gemm_epi *epi, float *C, int64_t ldc);

/* C = epi(op(A) * op(B) + beta*C) with A pre-packed (portable kernels). */
pare_status pare_sgemm_packed(pare_threadpool *pool, const pare_sgemm_packed_a *pa, bool transB,
                              int64_t N, const float *B, int64_t ldb, float beta,
                              const pare_gemm_epi *epi, float *C, int64_t ldc);

/* pare_sgemm_conv / pare_sgemm_packed with the full epilogue above. */
pare_status pare_sgemm_conv_ex(pare_threadpool *pool, int64_t M, const pare_sgemm_packed_a *pa,
                               const float *A, int64_t lda, const pare_im2col *img, float beta,
                               const pare_gemm_epilogue *ep, float *C, int64_t ldc);
pare_status pare_sgemm_packed_ex(pare_threadpool *pool, const pare_sgemm_packed_a *pa,
                                 bool transB, int64_t N, const float *B, int64_t ldb, float beta,
                                 const pare_gemm_epilogue *ep, float *C, int64_t ldc);

/* Writes the im2col matrix of img (rows c*kh*kw, columns oh*ow, row stride
 * oh*ow) into dst, for BLAS paths that need it materialised. */
void pare_im2col_fill(pare_threadpool *pool, const pare_im2col *img, float *dst);

/* C = epi(C) for an M x N matrix (row stride ldc): the epilogue alone, as
 * the GEMMs apply it (an invalid epilogue does nothing). */
void pare_gemm_epilogue_apply(pare_threadpool *pool, int64_t M, int64_t N,
                              const pare_gemm_epilogue *ep, float *C, int64_t ldc);

/* The im2col matrices of nimg images side by side: image i (at img->x +
 * i*xstride) fills columns [i*oh*ow, (i+1)*oh*ow) of each row; rows are ldd
 * floats apart. For batches of small images, whose GEMMs are too narrow
 * one image at a time. */
void pare_im2col_fill_batch(pare_threadpool *pool, const pare_im2col *img, int64_t nimg,
                            int64_t xstride, float *dst, int64_t ldd);

/* Per-thread scratch kept between calls: slot 0..PARE_SCRATCH_SLOTS-1 of the
 * calling thread, at least `bytes` long, 64-byte aligned; NULL on allocation
 * failure. Slots 0-1 and 6-7 are the GEMM's own; kernels use 2 to 5. The buffer
 * stays valid until the same slot is asked again on the same thread. */
#define PARE_SCRATCH_SLOTS 8
void *pare_scratch(int slot, size_t bytes);

/* Name of the portable kernel chosen for this CPU ("avx512", "avx2", "generic"). */
const char *pare_sgemm_arch(void);
/* Selects a portable kernel by name for tests and benchmarks; false if this
 * CPU cannot run it. Not thread-safe: call before any GEMM runs. */
bool pare_sgemm_force_arch(const char *name);
/* Whether pare_sgemm goes to CBLAS. */
bool pare_sgemm_uses_blas(void);

#endif
