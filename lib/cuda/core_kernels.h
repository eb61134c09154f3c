/* Launchers of the CUDA core kernels (ew.cu, move.cu, reduce.cu), plain C
 * signatures for lib/cuda/core.c. Each queues work on stream and returns
 * the launch's cudaError_t as an int (0 on success). Element types are
 * pare dtype numbers (PCU_F32 ... below, the same values as pare_dtype).
 * Floating types compute in float. Shapes go in pcu_shape (at most
 * PCU_MAX_RANK dims; core.c folds or declines more). */
#ifndef PARE_CUDA_CORE_KERNELS_H
#define PARE_CUDA_CORE_KERNELS_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PCU_F32 = 1, PCU_U8 = 2, PCU_I8 = 3, PCU_I32 = 6, PCU_I64 = 7, PCU_BOOL = 9,
       PCU_F16 = 10, PCU_BF16 = 16 };

#define PCU_MAX_RANK 8

/* dims of the output and, per operand, the stride (in elements) of each
 * output dim in that operand (0 where broadcast) */
typedef struct pcu_shape {
    int rank;
    int64_t dims[PCU_MAX_RANK];
} pcu_shape;
typedef struct pcu_strides {
    int64_t s[PCU_MAX_RANK];
} pcu_strides;

/* binary ops: y = a OP b with broadcasting; comparisons write bool */
/* from PCU_EQ on the output is bool; PCU_AND, PCU_OR, PCU_XOR take bool
 * (PCU_BOOL) operands, the others floating ones */
enum { PCU_ADD, PCU_SUB, PCU_MUL, PCU_DIV, PCU_POW, PCU_MAX, PCU_MIN, PCU_PRELU, PCU_EQ, PCU_LT,
       PCU_GT, PCU_LE, PCU_GE, PCU_AND, PCU_OR, PCU_XOR, PCU_BIN_COUNT };
int pcu_binary(int op, int dtype, const pcu_shape *out, const pcu_strides *sa,
               const pcu_strides *sb, const void *a, const void *b, void *y, int64_t n,
               cudaStream_t stream);

/* unary ops with up to two float parameters p0, p1:
 * LEAKYRELU p0 alpha; ELU p0 alpha; SELU p0 alpha p1 gamma; HARDSIGMOID p0
 * alpha p1 beta; CLIP p0 min p1 max; SCALE y = x * p0; GELU exact,
 * GELU_TANH the tanh approximation; HARDSWISH x * hardsigmoid(x, 1/6, 1/2) */
enum { PCU_NEG, PCU_ABS, PCU_SQRT, PCU_EXP, PCU_LOG, PCU_RECIP, PCU_FLOOR, PCU_CEIL, PCU_ERF,
       PCU_TANH, PCU_SIGMOID, PCU_RELU, PCU_LEAKYRELU, PCU_ELU, PCU_SELU, PCU_GELU,
       PCU_GELU_TANH, PCU_HARDSIGMOID, PCU_HARDSWISH, PCU_CLIP, PCU_SOFTPLUS, PCU_SCALE,
       PCU_SIN, PCU_COS, PCU_TAN, PCU_ASIN, PCU_ACOS, PCU_ATAN, PCU_SINH, PCU_COSH, PCU_ASINH,
       PCU_ACOSH, PCU_ATANH, PCU_ROUND, PCU_SIGN, PCU_SOFTSIGN, PCU_MISH, PCU_CELU,
       PCU_THRESHOLDED_RELU, PCU_UN_COUNT };
int pcu_unary(int op, int dtype, const void *x, void *y, int64_t n, float p0, float p1,
              cudaStream_t stream);
/* Not of n bools */
int pcu_not(const void *x, void *y, int64_t n, cudaStream_t stream);

/* Cast between float32, float16, bfloat16, int32, int64, bool, int8, uint8 */
int pcu_cast(int from, int to, const void *x, void *y, int64_t n, cudaStream_t stream);

/* y = cond ? x : z with broadcasting; elements of esize bytes (1, 2, 4, 8) */
int pcu_where(int esize, const pcu_shape *out, const pcu_strides *sc, const pcu_strides *sx,
              const pcu_strides *sz, const uint8_t *cond, const void *x, const void *z, void *y,
              int64_t n, cudaStream_t stream);

/* ---- move.cu ---- */

/* For every index i of shape: y[yoff + sum i*ys] = x[xoff + sum i*xs]; elements
 * of esize bytes (1, 2, 4, 8). Transpose, Expand, Slice, Concat, Split. */
int pcu_copy_nd(int esize, const pcu_shape *shape, const void *x, const pcu_strides *xs,
                int64_t xoff, void *y, const pcu_strides *ys, int64_t yoff, int64_t n,
                cudaStream_t stream);

/* Gather along an axis: x viewed as [outer, axis_len, inner], indices
 * (int32 or int64, negative counted from the end) n_idx of them; y is
 * [outer, n_idx, inner]. An index out of range gives zeros. */
/* GatherElements: y (sh, contiguous: the indices' shape) from x (strides
 * xs) with coordinate axis taken from idx (int64 when idx64, else int32;
 * negative from the end; out of range gives zeros) */
int pcu_gather_elements(int esize, const pcu_shape *sh, const pcu_strides *xs, int axis,
                        int64_t axis_len, const void *x, const void *idx, int idx64, void *y,
                        int64_t n, cudaStream_t stream);

/* Trilu of n elements, matrices [rows, cols] last: kept where j - i >= k
 * (upper) or <= k (lower), else zero */
int pcu_trilu(int esize, int upper, int64_t k, int64_t rows, int64_t cols, const void *x, void *y,
              int64_t n, cudaStream_t stream);

/* Pad: y (a->out, contiguous) from x (a->in, contiguous), axis d read at
 * pcu_pad_src(a->mode, c, a->pb[d], a->in[d]); fill (esize bytes, host
 * memory) where that is -1. esize 1, 2, 4 or 8. */
typedef struct pcu_pad_args {
    int rank, mode;
    int64_t out[PCU_MAX_RANK], in[PCU_MAX_RANK], pb[PCU_MAX_RANK];
} pcu_pad_args;
int pcu_pad(int esize, const pcu_pad_args *a, const void *fill, const void *x, void *y, int64_t n,
            cudaStream_t stream);

int pcu_gather(int esize, int64_t outer, int64_t axis_len, int64_t inner, const void *x,
               const void *idx, int idx64, int64_t n_idx, void *y, cudaStream_t stream);

/* ---- reduce.cu ---- */

/* Softmax (log: LogSoftmax) over rows of len elements strided by inner: x
 * viewed as [outer, len, inner]. */
int pcu_softmax(int dtype, int log, int64_t outer, int64_t len, int64_t inner, const void *x,
                void *y, cudaStream_t stream);

/* LayerNormalization over rows of len: y = (x - mean) / sqrt(var + eps) *
 * scale + bias; scale and bias (bias may be NULL) have len elements, or
 * one (scale_n/bias_n 1). mean and inv_std (float, rows entries) may be
 * NULL. */
int pcu_layernorm(int dtype, int64_t rows, int64_t len, const void *x, const void *scale,
                  int64_t scale_n, const void *bias, int64_t bias_n, float eps, void *y,
                  float *mean, float *inv_std, cudaStream_t stream);

/* Reductions: out has n_out elements, each the reduction over the kept
 * index's reduced set. For output element o, its kept index (by kept dims,
 * row-major) selects base = sum k_i * kept_stride_i in x; the reduced set is
 * base + sum r_j * red_stride_j over red dims. */
/* RMSNormalization: y = x / sqrt(mean(x^2) + eps) * scale over rows of len
 * (scale: len values, or one) */
int pcu_rmsnorm(int dtype, int64_t rows, int64_t len, const void *x, const void *scale,
                int64_t scale_n, float eps, void *y, cudaStream_t stream);

/* ArgMax (mx) / ArgMin of x [outer, dim, inner] over dim into y [outer,
 * inner]: the first extreme (the last with last), a NaN beating numbers */
int pcu_argreduce(int dtype, int mx, int last, int64_t outer, int64_t dim, int64_t inner,
                  const void *x, int64_t *y, cudaStream_t stream);

enum { PCU_RSUM, PCU_RMEAN, PCU_RMAX, PCU_RMIN, PCU_RL1, PCU_RL2, PCU_RSUMSQ, PCU_RLOGSUM,
       PCU_RLOGSUMEXP, PCU_R_COUNT };
int pcu_reduce(int op, int dtype, const pcu_shape *kept, const pcu_strides *kept_stride,
               const pcu_shape *red, const pcu_strides *red_stride, const void *x, void *y,
               int64_t n_out, int64_t n_red, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
