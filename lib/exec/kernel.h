/* The kernel interface: what an op implementation sees of the executor.
 *
 * A kernel is a record in a table (see kernels_*.c): the (domain, op_type,
 * opset range) it serves, an optional init that reads the node's attributes
 * once at plan time into a private state, and run. run reads its inputs
 * (NULL for omitted optional ones), computes its output shapes, asks the
 * executor for each output buffer with k->alloc_out, and fills them.
 * Reference semantics are the ONNX operator spec. Errors name nothing: the
 * executor puts the node's label in front of err's message.
 */
#ifndef PARE_EXEC_KERNEL_H
#define PARE_EXEC_KERNEL_H

#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "exec/threadpool.h"

typedef struct pare_kctx pare_kctx;

struct pare_kctx {
    const pare_node *node;
    int64_t opset;
    const pare_tensor *const *in; /* n_in entries, NULL for omitted optional inputs */
    size_t n_in;
    size_t n_out;                 /* outputs the node declares (some may be omitted) */
    void *state;                  /* what init returned */
    pare_threadpool *pool;        /* never NULL; pare_parallel_for works with 1 thread */
    /* Allocates output i (dtype, dims). The tensor is owned by the executor;
     * its data is uninitialised (zeroed for STRING). If output i is omitted
     * in the node, a scratch tensor is still returned so kernels need no
     * special case. */
    pare_status (*alloc_out)(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                             pare_tensor **out, pare_error *err);
    /* Runs subgraph g (a graph attribute of this node) with the given inputs
     * (matched by position to g's inputs) and returns its outputs, owned by
     * the caller (pare_tensors_free). Outer-scope values are visible. */
    pare_status (*run_graph)(pare_kctx *k, const pare_graph *g, const pare_tensor *const *inputs,
                             size_t n_inputs, pare_tensor ***outputs, size_t *n_outputs,
                             pare_error *err);
    void *dev;                    /* the session's context of the backend running the
                                     node (pare_backend.open; NULL on the CPU) */
    void *exec;                   /* executor-private */
    /* Set when the executor runs the node in the fused form its kernel's
     * fuse accepted at plan time (see pare_kfuse); then in[] has at least 4
     * entries and in[3] is the residual (NULL when the fusion has none). */
    bool fused;
};

/* What the executor asks a kernel to absorb from the nodes after it (plan
 * time, main graph, CPU only). The fused node computes
 *     y = act(scale[c] * op(x) + shift[c] + residual)
 * per output channel c: scale/shift (n_ch values each, NULL: 1 and 0) are
 * what inference BatchNormalizations and Mul/Add by per-channel constants
 * after the op come to; fold them into constant weights in the state, never
 * into the model. The residual is an Add/Sum operand of y's exact shape,
 * given at run time as in[3]; act is PARE_KACT_*. For MatMul the channel
 * is the last axis of y (float32 MatMul: a scale equal for every channel). */
enum {
    PARE_KACT_NONE = 0,
    PARE_KACT_RELU,
    PARE_KACT_CLIP,        /* a = min, b = max */
    PARE_KACT_LEAKY_RELU,  /* a = alpha */
    PARE_KACT_SIGMOID,
    PARE_KACT_TANH,
    PARE_KACT_HARDSIGMOID, /* a = alpha, b = beta */
    PARE_KACT_HARDSWISH,   /* x * hardsigmoid(x) with a = 1/6, b = 0.5 */
    PARE_KACT_GELU,        /* x/2 (1 + erf(x/sqrt 2)): MatMul only */
};

typedef struct pare_kfuse {
    const double *scale, *shift; /* per output channel, or both NULL */
    int64_t n_ch;
    bool residual;
    int act;
    float act_a, act_b;
} pare_kfuse;

typedef struct pare_kernel {
    const char *domain;      /* "" for ai.onnx, "com.microsoft", ... */
    const char *op_type;
    int since_version;       /* first opset this record serves */
    int until_version;       /* last opset it serves; 0: no end */
    /* Optional: parse attributes once; *state is passed to run and release. */
    pare_status (*init)(const pare_node *n, int64_t opset, void **state, pare_error *err);
    pare_status (*run)(pare_kctx *k, pare_error *err);
    void (*release)(void *state);
    /* Input dtypes this record serves (NULL: any), checked at plan time so
     * that a node whose dtypes no kernel serves fails when the session is
     * made. One space-separated token per input index:
     *   set      dtype names (pare_dtype_from_name) and groups joined by ',':
     *            fp (float32, float64, float16, bfloat16), int (the eight
     *            8..64-bit integers), sint, uint, fp8 (the four float8 types)
     *   =N       the same dtype as input N
     *   *        any dtype
     * The last token may end in "..." to cover every further input (Sum,
     * Concat); inputs past the tokens are otherwise unconstrained. Omitted
     * optional inputs and dtypes the plan does not know match every token.
     * Example (Gemm): "fp,int32,int64,uint32,uint64 =0 =0". Declare only
     * what run really implements; a wrong spec is caught by the registry
     * test (pare_kreg_check). */
    const char *types;
} pare_kernel;

/* Asks kernel k (of node n, state from its init) to prepare the fused form
 * described by f (plan time; lib/exec/kernels_linalg_ops.c: float Conv,
 * MatMul and inference BatchNormalization). PARE_OK accepts it: run then
 * computes it when it sees k->fused. Any other status refuses and leaves
 * the plain form intact. */
pare_status pare_kernel_fuse(const pare_kernel *k, const pare_node *n, void *state,
                             const pare_kfuse *f, pare_error *err);

/* QDQ fusion (plan time, main graph, CPU): the executor found
 *     DequantizeLinear(x_q) -> op <- DequantizeLinear(w_q)
 *     [op's bias: a float32 constant or DequantizeLinear of an int32 one]
 *     op [-> Relu] -> QuantizeLinear -> y_q   (or -> float y)
 * with op a Conv, MatMul or Gemm and every parameter a constant (or op an
 * Add/Sum of DequantizeLinear(x_q) and DequantizeLinear(b_q), or an
 * inference BatchNormalization of DequantizeLinear(x_q)); the fused
 * node reads x_q (and b_q) and writes y_q. Tensors are the constants' data
 * (NULL: the optional input is absent). */
typedef struct pare_kqdq {
    const pare_node *op;
    int x_dtype;                                   /* x_q's dtype */
    const pare_tensor *x_scale, *x_zp;
    const pare_tensor *w_q, *w_scale, *w_zp;
    int64_t w_axis;                                /* DequantizeLinear(w_q)'s axis */
    const pare_tensor *bias_f;                     /* a float bias, or */
    const pare_tensor *bias_q, *bias_scale, *bias_zp; /* a dequantized int32 one */
    const pare_tensor *y_scale, *y_zp;
    int y_dtype;                                   /* y_q's dtype */
    bool relu;
    /* no QuantizeLinear after op: the fused node writes op's float32 result
     * (after the Relu; y_* unused), with bias_vec (M floats, the constant
     * of an Add after a MatMul) as its bias when set */
    bool float_out;
    const float *bias_vec;
    /* op Add or Sum of two DequantizeLinears of the same shape: x above is
     * the first, this the second (read as in[1]); no weights */
    int b_dtype;
    const pare_tensor *b_scale, *b_zp;
    /* op BatchNormalization (inference): its scale, B, mean and var (float32
     * constants) and epsilon; no weights */
    const pare_tensor *bn[4];
    float bn_eps;
    /* and, when the nodes after it multiplied and added per-channel
     * constants, their composition: y = BN(x) * bn_scale[c] + bn_shift[c]
     * (C entries each), else NULL */
    const double *bn_scale, *bn_shift;
} pare_kqdq;

/* The CPU kernel of such a fused node (lib/exec/kernels_qfused.c): sets *k
 * and *state (released by (*k)->release) and returns PARE_OK, or refuses
 * with PARE_ERR_UNSUPPORTED (the nodes then run as they are), or
 * PARE_ERR_NOMEM. The kernel's run reads in[0] = x_q (and in[1] = b_q) and
 * writes output 0. */
pare_status pare_kernel_qdq(const pare_kqdq *d, const pare_kernel **k, void **state,
                            pare_error *err);
extern const pare_kernel pare_kernel_qdq_fused;
/* What a fused Conv / MatMul / Gemm of a pare_kqdq computes, for any
 * backend's kernel (the CPU's above, the CUDA backend's):
 *     acc[m, p] = sum_k (x[k, p] - zx) * w[m, k]          (exact, in int32)
 *     q = float(acc) * mult[m] + bias[m]                   (two float32 ops, no fma)
 *     Relu: q = max(q, 0); then y = sat(rint_half_even(q) + zy) in [lo, hi]
 *     (fout: y = q as float32, after the Relu, no rounding)
 * Conv: p runs over (image, output pixel), k over (input channel of the
 * group, ky, kx), padding reads zx (a real zero). MatMul / Gemm: x is
 * [rows, K] and p a row; y is [rows, M]. */
enum { PARE_QDQ_CONV, PARE_QDQ_MATMUL };
typedef struct pare_qdq_geom {
    int kind;                              /* PARE_QDQ_CONV or PARE_QDQ_MATMUL */
    /* Conv */
    int nd;                                /* 1 or 2 spatial dims */
    int auto_pad;                          /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    int64_t group, Cg, Mg, kh, kw;         /* per group; kh = 1 for 1-D; MatMul: 1, -, M */
    int64_t sh, sw, dh, dw, pads[4];       /* pads: top, left, bottom, right */
    /* both */
    int64_t M, K;                          /* output channels (columns); K per group */
    int64_t sm, sk;                        /* weight (m, k) of group g in w_q's data at
                                            * g * Mg * K + m * sm + k * sk (int8) */
    float *mult;                           /* M: xs * ws[m] / ys (fout: xs * ws[m]) */
    float *bias;                           /* M: b[m] / ys (fout: b[m]), or NULL */
    int32_t zx, zy, lo, hi;                /* x's zero point in x's type; y's, y's range */
    int xdt, ydt;                          /* x's type; y's (PARE_DT_FLOAT when fout) */
    bool relu, fout;
} pare_qdq_geom;

/* What a fused DequantizeLinear -> BatchNormalization [-> Mul / Add]
 * [-> Relu] -> QuantizeLinear computes, element by element of channel c:
 *     v = float(x - zx) * sx;  v = v * a[c] + b[c];  Relu: v = max(v, 0)
 *     y = sat(rint_half_even(v / ys) + zy) in [lo, hi]
 * (float32 operations in this order, no fma: the unfused nodes' bits when
 * nothing follows the BatchNormalization; a and b as its kernel computes
 * them, composed in double with the Mul / Add after it). */
typedef struct pare_qdq_bn {
    int64_t C;
    float *a, *b;
    float sx, ys;
    int32_t zx, zy, lo, hi;
    int xdt, ydt;
    bool relu;
} pare_qdq_bn;
/* PARE_OK, PARE_ERR_UNSUPPORTED or PARE_ERR_NOMEM; release with
 * pare_qdq_bn_release (not the struct itself). */
pare_status pare_qdq_bn_make(const pare_kqdq *d, pare_qdq_bn *out);
void pare_qdq_bn_release(pare_qdq_bn *bn);

/* Checks d (not an Add) and derives its geom: PARE_OK, PARE_ERR_UNSUPPORTED
 * when the integer path cannot reproduce it (see kernels_qfused.c), or
 * PARE_ERR_NOMEM. Release with pare_qdq_geom_release (also on a zeroed one). */
pare_status pare_qdq_geom_make(const pare_kqdq *d, pare_qdq_geom *g);
void pare_qdq_geom_release(pare_qdq_geom *g);
/* A fused Conv's output size (oh, ow) and leading pads (ph, pw) for an input
 * of H x W (1-D: H = 1); false when the kernel is larger than the padded input. */
bool pare_qdq_conv_out(const pare_qdq_geom *g, int64_t H, int64_t W, int64_t *oh, int64_t *ow,
                       int64_t *ph, int64_t *pw);

/* For tests: fused kernels made from now on use their plain C epilogues
 * (on) or what the CPU has (off). The GEMM's own: pare_qgemm_force_arch. */
void pare_kernel_qdq_force_portable(bool on);

/* Each kernel family exports a table ending with a zeroed record. */
extern const pare_kernel pare_kernels_elementwise[];
extern const pare_kernel pare_kernels_linalg[];   /* gemm, matmul, conv, pool, norm */
extern const pare_kernel pare_kernels_shape[];    /* data movement, shape ops, reduce */
extern const pare_kernel pare_kernels_quant[];    /* quantization ops */
extern const pare_kernel pare_kernels_control[];  /* If, Loop, Scan */
extern const pare_kernel pare_kernels_rnn[];      /* RNN, GRU, LSTM and misc ops */
extern const pare_kernel pare_kernels_extra[];    /* attention, losses, and the rest */

/* Finds the CPU kernel for (domain, op_type) at opset, whatever the
 * dtypes (for tests that call kernels directly); NULL if none. */
const pare_kernel *pare_kernel_find(const char *domain, const char *op_type, int64_t opset);

/* ---- registries (lib/exec/registry.c) ----
 * A registry holds a backend's kernel tables sorted by (domain, op_type,
 * since_version) with each record's types compiled to masks. Lookup is done
 * once per node at plan time, never while running. */
typedef struct pare_kreg pare_kreg;

/* Builds a registry over n tables (each ending with a zeroed record); the
 * tables must outlive it. Fails on a types spec that does not parse, naming
 * the record. Caller frees with pare_kreg_free. */
pare_status pare_kreg_new(const pare_kernel *const *tables, size_t n, pare_kreg **out,
                          pare_error *err);
void pare_kreg_free(pare_kreg *r);
/* The CPU backend's registry (built once, never freed); NULL on allocation
 * failure or a broken spec in the CPU tables (pare_kreg_check says which). */
const pare_kreg *pare_kreg_cpu(void);
/* Checks that every types spec of the CPU tables parses. */
pare_status pare_kreg_check(pare_error *err);

/* The kernel for (domain, op_type) at opset whose types accept the n input
 * dtypes (0 for an omitted input or an unknown dtype); among several, the
 * newest since_version that fits. NULL when none, with why set to the
 * reason without the node ("no kernel for input dtypes (int8, int8)",
 * "no kernel for Foo in domain 'x' at opset 9"). */
const pare_kernel *pare_kreg_select(const pare_kreg *r, const char *domain, const char *op_type,
                                    int64_t opset, const int *dtypes, size_t n, char *why,
                                    size_t why_size);
/* Whether a kernel's types spec accepts these dtypes (the check
 * pare_kreg_select makes); a spec that does not parse accepts nothing. */
bool pare_kernel_accepts(const pare_kernel *k, const int *dtypes, size_t n);

/* ---- helpers for kernel authors (lib/exec/kutil.c) ---- */

/* Multidirectional broadcast of two shapes; fails on incompatible dims. */
pare_status pare_bcast_dims(int ra, const int64_t *da, int rb, const int64_t *db, int *rank_out,
                            int64_t *dims_out, pare_error *err);
/* Strides (in elements) of `dims` as seen from an output of rank `rank`
 * (leading dims missing or 1 get stride 0), for broadcasting loops. */
void pare_bcast_strides(int rank, const int64_t *out_dims, int r, const int64_t *dims,
                        int64_t *strides);
/* Reads an int64 vector from a 1-D (or scalar) int32/int64 tensor; returns count
 * or -1 on a wrong dtype. At most max values are stored. */
int64_t pare_tensor_ints(const pare_tensor *t, int64_t *vals, int64_t max);
/* Normalises a possibly negative axis against rank; fails if out of range
 * (then *out is 0, so callers never read an unset value). */
static inline pare_status pare_axis(int64_t axis, int rank, int *out, pare_error *err)
{
    *out = 0;
    if (axis < -(int64_t)rank || axis >= (int64_t)rank)
        return pare_error_set(err, PARE_ERR_INVALID, "axis %lld out of range for rank %d",
                              (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PARE_OK;
}
/* Element size in bytes (1 for the packed 4-bit types: use pare_dtype_nbytes for sizes). */
size_t pare_elem_size(int dtype);

#endif
