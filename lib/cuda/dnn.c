/* CUDA kernels of the dnn family: Conv and ConvTranspose (cuDNN), MaxPool,
 * AveragePool, GlobalAveragePool, GlobalMaxPool, BatchNormalization
 * (inference) and Resize (nearest/linear on NCHW) as own kernels (dnn.cu).
 *
 * Conv: cuDNN's convolution API on NCHW(D) tensors; 1-D convolutions are
 * run as 2-D ones with a height of 1. cuDNN takes one pad per dim on both
 * sides, so asymmetric pads (odd SAME padding, explicit pads) are applied
 * by a zero-padded copy of the input into the workspace and a convolution
 * without pads. Descriptors and the algorithm (cudnnGet..._v7 heuristics:
 * no timing runs, no synchronisation, so that the first run can be
 * captured as it is) are cached in the node's state per (input shape,
 * weight shape, dtype, tf32): up to CONV_CACHE entries, the oldest
 * replaced. The bias is added by a kernel of its own after the call.
 * float32 uses CUDNN_FMA_MATH (no TF32) unless the session asked for tf32;
 * float16 and bfloat16 compute in float on tensor cores.
 *
 * ConvTranspose: cudnnConvolutionBackwardData into the "full" result
 * ((in - 1) * stride + (k - 1) * dilation + 1 per dim, no pads), then one
 * kernel crops pads, adds output_padding zeros and the bias.
 *
 * Conditions beyond the records' types (Resize's constant scales, training
 * BatchNormalization) are in pcu_ops_accepts (cuda_internal.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_internal.h"
#include "pare/dtype.h"
#include "exec/kernel.h"
#include "cuda/dnn.h"
#include "cuda/dnn_cu.h"
#include "cuda/ops_host.h"

#define CONV_CACHE 4
#define WS_ALIGN 256
/* the heuristics' first algorithm whose workspace is at most this is taken
 * (e.g. over an FFT asking for gigabytes); above it only when none fits */
#define WS_SOFT_CAP ((size_t)256 << 20)

static size_t ws_round(size_t b)
{
    return (b + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* PCU_T_* of a pare dtype, -1 for others */
static int dnn_t(int dtype)
{
    switch (dtype) {
    case PARE_DT_FLOAT: return PCU_T_F32;
    case PARE_DT_FLOAT16: return PCU_T_F16;
    case PARE_DT_BFLOAT16: return PCU_T_BF16;
    default: return -1;
    }
}

static cudnnDataType_t dnn_dtype(int dtype)
{
    return dtype == PARE_DT_FLOAT16     ? CUDNN_DATA_HALF
           : dtype == PARE_DT_BFLOAT16 ? CUDNN_DATA_BFLOAT16
                                        : CUDNN_DATA_FLOAT;
}

static int64_t numel(const pare_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

static pare_status no_t(const pare_tensor *t, pare_error *err)
{
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "dtype %s is not run on cuda",
                          pare_dtype_name(t->dtype));
}

/* ------------------------------------------------------------------ */
/* Conv and ConvTranspose                                              */

typedef struct conv_entry {
    bool used;
    pcu_conv_key key;
    pcu_win_geom g;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int algo;             /* cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t */
    size_t ws;            /* cuDNN workspace of algo */
    size_t pad_bytes;     /* Conv: padded input copy (0: pads given to cuDNN) */
    size_t full_bytes;    /* ConvTranspose: full result in the workspace (0: written to y) */
    int64_t full[PCU_MAXSP];
    int64_t ydims[2 + PCU_MAXSP];
    /* a 1x1 convolution (stride 1, no pads, one group) as one batched
     * cuBLAS GEMM per image, y[n] (M x P) = w (M x C) x[n] (C x P), where it
     * timed faster than cuDNN's best (or by default with heuristics) */
    bool gemm;
    int dtype;
    int64_t gn, gm, gc, gp;
} conv_entry;

typedef struct pcu_conv {
    pcu_win_attrs a;
    bool transpose;
    unsigned next;
    conv_entry e[CONV_CACHE];
    bool no_tf32;     /* float32 stays exact whatever the session says (QLinearConv) */
    conv_entry *last; /* of pcu_conv_prepare */
    int dtype, rank;
    /* the fused form (pcu_conv_fuse, plan time): weights with the
     * per-channel scale folded in, on the device in the conv's dtype; the
     * folded bias (float32, C values); the epilogue's activation */
    void *fz_w;
    float *fz_b;
    int64_t fz_c;
    int fz_act;
    float fz_a, fz_b2;
} conv_state;

static void conv_entry_clear(conv_entry *e)
{
    if (e->xd)
        cudnnDestroyTensorDescriptor(e->xd);
    if (e->yd)
        cudnnDestroyTensorDescriptor(e->yd);
    if (e->wd)
        cudnnDestroyFilterDescriptor(e->wd);
    if (e->cd)
        cudnnDestroyConvolutionDescriptor(e->cd);
    memset(e, 0, sizeof *e);
}

static void conv_release(void *state)
{
    conv_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < CONV_CACHE; i++)
        conv_entry_clear(&s->e[i]);
    if (s->fz_w)
        cudaFree(s->fz_w);
    if (s->fz_b)
        cudaFree(s->fz_b);
    free(s);
}

static pare_status conv_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = pcu_win_parse(n, &s->a, err);
    if (st) {
        free(s);
        return st;
    }
    s->transpose = strcmp(n->op_type, "ConvTranspose") == 0;
    *state = s;
    return PARE_OK;
}

/* dims as cuDNN ints (4-D for a 1-D op: height 1 inserted), contiguous strides */
static pare_status dnn_dims(int rank, const int64_t *d, int *dims, int *strides, int *nd,
                            pare_error *err)
{
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (rank == 3 && i == 2)
            dims[r++] = 1;
        if (d[i] > INT_MAX || d[i] < 1)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "dim %lld is out of cuDNN's range", (long long)d[i]);
        dims[r++] = (int)d[i];
    }
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (acc > INT_MAX)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "tensor too large for cuDNN");
        strides[i] = (int)acc;
        acc *= dims[i];
    }
    if (acc > INT_MAX)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "tensor too large for cuDNN");
    *nd = r;
    return PARE_OK;
}

static pare_status set_tensor(cudnnTensorDescriptor_t t, cudnnDataType_t dt, int rank,
                              const int64_t *d, pare_error *err)
{
    int dims[2 + PCU_MAXSP + 1], strides[2 + PCU_MAXSP + 1], nd;
    pare_status st = dnn_dims(rank, d, dims, strides, &nd, err);
    if (st)
        return st;
    PCU_DNN(cudnnSetTensorNdDescriptor(t, dt, nd, dims, strides), err);
    return PARE_OK;
}

static pare_status set_filter(cudnnFilterDescriptor_t f, cudnnDataType_t dt, int rank,
                              const int64_t *d, pare_error *err)
{
    int dims[2 + PCU_MAXSP + 1], strides[2 + PCU_MAXSP + 1], nd;
    pare_status st = dnn_dims(rank, d, dims, strides, &nd, err);
    if (st)
        return st;
    PCU_DNN(cudnnSetFilterNdDescriptor(f, dt, CUDNN_TENSOR_NCHW, nd, dims), err);
    return PARE_OK;
}

/* The convolution descriptor: pads (per spatial dim, both sides), strides,
 * dilations; a 1-D op gets the unit height dim first. */
static pare_status set_conv(cudnnConvolutionDescriptor_t c, int nsp, const int64_t *pad,
                            const int64_t *s, const int64_t *d, int64_t group, int dtype,
                            bool tf32, pare_error *err)
{
    int p[PCU_MAXSP + 1], sa[PCU_MAXSP + 1], da[PCU_MAXSP + 1], n = 0;
    if (nsp == 1) {
        p[0] = 0;
        sa[0] = da[0] = 1;
        n = 1;
    }
    for (int i = 0; i < nsp; i++, n++) {
        if (pad[i] > INT_MAX || s[i] > INT_MAX || d[i] > INT_MAX)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "conv attribute out of cuDNN's range");
        p[n] = (int)pad[i];
        sa[n] = (int)s[i];
        da[n] = (int)d[i];
    }
    PCU_DNN(cudnnSetConvolutionNdDescriptor(c, n, p, sa, da, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            err);
    PCU_DNN(cudnnSetConvolutionGroupCount(c, (int)group), err);
    cudnnMathType_t m = dtype == PARE_DT_FLOAT && !tf32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    PCU_DNN(cudnnSetConvolutionMathType(c, m), err);
    return PARE_OK;
}

/* whether an algorithm's math type keeps float32 in full precision (no TF32) */
static bool math_ok(int dtype, bool tf32, cudnnMathType_t m)
{
    return dtype != PARE_DT_FLOAT || tf32 || m != CUDNN_TENSOR_OP_MATH;
}

/* algorithms that sum products directly (no FFT or Winograd transform), so
 * that integer-valued float inputs give exact sums below 2^24 (QLinearConv) */
static bool exact_algo(cudnnConvolutionFwdAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

/* y = conv(x, w) of a 1x1 entry (e->gemm) */
static pare_status gemm_forward(pcu_session *ps, const conv_entry *e, const void *x, const void *w,
                                void *y, pare_error *err)
{
    return pcu_gemm_rm(ps, e->dtype, false, false, e->gm, e->gp, e->gc, 1.0f, w, 0, x,
                       e->gc * e->gp, 0.0f, y, e->gm * e->gp, e->gn, err);
}

/* ms of one GEMM-form 1x1 convolution of entry e (the best of 3 after a
 * warm-up), on scratch buffers of its own, as cudnnFind times its
 * algorithms; the first run of a shape, never while capturing */
static pare_status time_gemm(pcu_session *ps, const conv_entry *e, float *ms, pare_error *err)
{
    size_t esz = e->dtype == PARE_DT_FLOAT ? 4 : 2;
    size_t nx = (size_t)(e->gn * e->gc * e->gp), nw = (size_t)(e->gm * e->gc),
           ny = (size_t)(e->gn * e->gm * e->gp);
    void *x = NULL, *w = NULL, *y = NULL;
    cudaEvent_t a = NULL, b = NULL;
    pare_status st = PARE_OK;
    cudaError_t ce = cudaMalloc(&x, nx * esz);
    if (ce == cudaSuccess)
        ce = cudaMalloc(&w, nw * esz);
    if (ce == cudaSuccess)
        ce = cudaMalloc(&y, ny * esz);
    if (ce == cudaSuccess)
        ce = cudaMemsetAsync(x, 0, nx * esz, ps->stream);
    if (ce == cudaSuccess)
        ce = cudaMemsetAsync(w, 0, nw * esz, ps->stream);
    if (ce == cudaSuccess)
        ce = cudaEventCreate(&a);
    if (ce == cudaSuccess)
        ce = cudaEventCreate(&b);
    if (ce != cudaSuccess) {
        st = pare_error_set(err, ce == cudaErrorMemoryAllocation ? PARE_ERR_NOMEM : PARE_ERR_RUNTIME,
                            "timing a 1x1 convolution as a GEMM: %s", cudaGetErrorString(ce));
        cudaGetLastError();
        goto out;
    }
    *ms = 1e30f;
    for (int r = 0; r < 4 && !st; r++) {
        float t = 0;
        if (cudaEventRecord(a, ps->stream) != cudaSuccess ||
            (st = gemm_forward(ps, e, x, w, y, err)) ||
            cudaEventRecord(b, ps->stream) != cudaSuccess || cudaEventSynchronize(b) != cudaSuccess ||
            cudaEventElapsedTime(&t, a, b) != cudaSuccess) {
            if (!st)
                st = pare_error_set(err, PARE_ERR_RUNTIME, "timing a 1x1 convolution failed");
            break;
        }
        if (r > 0 && t < *ms)
            *ms = t;
    }
out:
    if (a)
        cudaEventDestroy(a);
    if (b)
        cudaEventDestroy(b);
    if (x)
        cudaFree(x);
    if (w)
        cudaFree(w);
    if (y)
        cudaFree(y);
    return st;
}

static pare_status conv_entry_make(pcu_session *ps, const conv_state *s, int dtype, int rank,
                                   const int64_t *xd, const int64_t *wd, conv_entry *e,
                                   pare_error *err)
{
    int nsp = rank - 2;
    bool tf32 = ps->tf32 && !s->no_tf32;
    cudnnDataType_t dt = dnn_dtype(dtype);
    pare_status st;
    PCU_DNN(cudnnCreateTensorDescriptor(&e->xd), err);
    PCU_DNN(cudnnCreateTensorDescriptor(&e->yd), err);
    PCU_DNN(cudnnCreateFilterDescriptor(&e->wd), err);
    PCU_DNN(cudnnCreateConvolutionDescriptor(&e->cd), err);
    int64_t zero[PCU_MAXSP] = {0};
    if (!s->transpose) {
        if ((st = pcu_win_geom_make(&s->a, nsp, xd + 2, wd + 2, false, &e->g, err)))
            return st;
        if (xd[1] != wd[1] * s->a.group || wd[0] % s->a.group)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "input channels %lld do not match weight %lld x group %lld",
                                  (long long)xd[1], (long long)wd[1],
                                  (long long)s->a.group);
        for (int i = 0; i < nsp; i++)
            if (s->a.nk && s->a.kernel[i] != wd[2 + i])
                return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape differs from weight");
        int64_t xin[2 + PCU_MAXSP];
        xin[0] = xd[0];
        xin[1] = xd[1];
        int64_t padded = xd[0] * xd[1];
        for (int i = 0; i < nsp; i++) {
            xin[2 + i] = e->g.symmetric ? xd[2 + i] : xd[2 + i] + e->g.pb[i] + e->g.pe[i];
            padded *= xin[2 + i];
        }
        e->pad_bytes = e->g.symmetric ? 0 : ws_round((size_t)padded * pare_elem_size(dtype));
        e->ydims[0] = xd[0];
        e->ydims[1] = wd[0];
        for (int i = 0; i < nsp; i++)
            e->ydims[2 + i] = e->g.out[i];
        if ((st = set_tensor(e->xd, dt, rank, xin, err)) ||
            (st = set_tensor(e->yd, dt, rank, e->ydims, err)) ||
            (st = set_filter(e->wd, dt, rank, wd, err)) ||
            (st = set_conv(e->cd, nsp, e->g.symmetric ? e->g.pb : zero, e->g.s, e->g.d,
                           s->a.group, dtype, tf32, err)))
            return st;
        /* cross-check cuDNN's idea of the output against ours */
        int od[2 + PCU_MAXSP + 1], nd = rank + (nsp == 1);
        PCU_DNN(cudnnGetConvolutionNdForwardOutputDim(e->cd, e->xd, e->wd, nd, od), err);
        for (int i = 0, j = 0; i < nd; i++) {
            if (nsp == 1 && i == 2)
                continue;
            if (od[i] != e->ydims[j++])
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "cuDNN output dim %d is %d, expected %lld", i, od[i],
                                      (long long)e->ydims[j - 1]);
        }
        cudnnConvolutionFwdAlgoPerf_t perf[16];
        int got = 0;
        if (ps->conv_search) {
            /* timed (cudnnFind: runs each algorithm on scratch buffers of
             * its own and waits for the device; never in a captured run,
             * which reuses the entries of the run before it) */
            PCU_DNN(cudnnFindConvolutionForwardAlgorithm(ps->cudnn, e->xd, e->wd, e->cd, e->yd,
                                                         16, &got, perf),
                    err);
        } else {
            PCU_DNN(cudnnGetConvolutionForwardAlgorithm_v7(ps->cudnn, e->xd, e->wd, e->cd, e->yd,
                                                           16, &got, perf),
                    err);
        }
        int pick = -1;
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int i = 0; i < got && pick < 0; i++)
                if (perf[i].status == CUDNN_STATUS_SUCCESS &&
                    (pass || perf[i].memory <= WS_SOFT_CAP) &&
                    math_ok(dtype, tf32, perf[i].mathType) &&
                    (!s->no_tf32 || exact_algo(perf[i].algo)))
                    pick = i;
        if (pick < 0)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "cuDNN has no forward algorithm for this convolution");
        if (dtype != PARE_DT_FLOAT || tf32)
            PCU_DNN(cudnnSetConvolutionMathType(e->cd, perf[pick].mathType), err);
        e->algo = (int)perf[pick].algo;
        PCU_DNN(cudnnGetConvolutionForwardWorkspaceSize(ps->cudnn, e->xd, e->wd, e->cd, e->yd,
                                                        perf[pick].algo, &e->ws),
                err);
        bool one = s->a.group == 1 && !(s->no_tf32 && ps->tf32) && e->g.symmetric;
        int64_t P = 1;
        for (int i = 0; i < nsp && one; i++) {
            one = e->g.k[i] == 1 && e->g.s[i] == 1 && e->g.pb[i] == 0 && e->g.pe[i] == 0;
            P *= xd[2 + i];
        }
        if (one) {
            e->dtype = dtype;
            e->gn = xd[0], e->gm = wd[0], e->gc = xd[1], e->gp = P;
            float gemm_ms = 0;
            if (!ps->conv_search || (st = time_gemm(ps, e, &gemm_ms, err)) == PARE_OK) {
                e->gemm = !ps->conv_search || gemm_ms < perf[pick].time;
                if (e->gemm)
                    e->ws = 0;
            } else if (st == PARE_ERR_NOMEM) {
                return st;
            }
        }
        return PARE_OK;
    }
    /* ConvTranspose: w is C_in x C_out/group x k */
    if ((st = pcu_convt_geom_make(&s->a, nsp, xd + 2, wd + 2, &e->g, err)))
        return st;
    if (xd[1] != wd[0] || wd[0] % s->a.group)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "input channels %lld do not match weight dim 0 (%lld)",
                              (long long)xd[1], (long long)wd[0]);
    int64_t fdims[2 + PCU_MAXSP];
    fdims[0] = e->ydims[0] = xd[0];
    fdims[1] = e->ydims[1] = wd[1] * s->a.group;
    bool direct = true;
    int64_t fnum = fdims[0] * fdims[1];
    for (int i = 0; i < nsp; i++) {
        e->full[i] = (xd[2 + i] - 1) * e->g.s[i] + (e->g.k[i] - 1) * e->g.d[i] + 1;
        fdims[2 + i] = e->full[i];
        e->ydims[2 + i] = e->g.out[i];
        fnum *= e->full[i];
        if (e->g.pb[i] != 0 || e->full[i] != e->g.out[i])
            direct = false;
    }
    e->full_bytes = direct ? 0 : ws_round((size_t)fnum * pare_elem_size(dtype));
    if ((st = set_tensor(e->xd, dt, rank, xd, err)) ||
        (st = set_tensor(e->yd, dt, rank, fdims, err)) ||
        (st = set_filter(e->wd, dt, rank, wd, err)) ||
        (st = set_conv(e->cd, nsp, zero, e->g.s, e->g.d, s->a.group, dtype, tf32, err)))
        return st;
    cudnnConvolutionBwdDataAlgoPerf_t perf[16];
    int got = 0;
    PCU_DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(ps->cudnn, e->wd, e->xd, e->cd, e->yd, 16,
                                                        &got, perf),
            err);
    int pick = -1;
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < got && pick < 0; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS &&
                (pass || perf[i].memory <= WS_SOFT_CAP) && math_ok(dtype, tf32, perf[i].mathType))
                pick = i;
    if (pick < 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "cuDNN has no backward-data algorithm for this ConvTranspose");
    if (dtype != PARE_DT_FLOAT || tf32)
        PCU_DNN(cudnnSetConvolutionMathType(e->cd, perf[pick].mathType), err);
    e->algo = (int)perf[pick].algo;
    PCU_DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(ps->cudnn, e->wd, e->xd, e->cd, e->yd,
                                                         perf[pick].algo, &e->ws),
            err);
    return PARE_OK;
}

/* the cache entry for (x, w) on this session's settings, made on a miss */
static pare_status conv_entry_get(pcu_session *ps, conv_state *s, int dtype, int rank,
                                  const int64_t *xd, const int64_t *wd, conv_entry **out,
                                  pare_error *err)
{
    pcu_conv_key key;
    pcu_conv_key_make(dtype, rank, xd, rank, wd, ps->tf32 && !s->no_tf32, &key);
    for (int i = 0; i < CONV_CACHE; i++)
        if (s->e[i].used && pcu_conv_key_eq(&s->e[i].key, &key)) {
            *out = &s->e[i];
            return PARE_OK;
        }
    conv_entry *e = &s->e[s->next++ % CONV_CACHE];
    conv_entry_clear(e);
    pare_status st = conv_entry_make(ps, s, dtype, rank, xd, wd, e, err);
    if (st) {
        conv_entry_clear(e);
        return st;
    }
    e->key = key;
    e->used = true;
    *out = e;
    return PARE_OK;
}

/* y = conv(x, w) with entry e; ws holds e->pad_bytes + e->ws bytes */
static pare_status conv_forward(pcu_session *ps, const conv_entry *e, int t, int rank,
                                const int64_t *xd, const void *x, const void *w, void *y,
                                void *ws, pare_error *err)
{
    const float one = 1.0f, zero = 0.0f;
    int nsp = rank - 2;
    const void *xin = x;
    if (e->gemm)
        return gemm_forward(ps, e, x, w, y, err);
    if (e->pad_bytes) {
        pcu_sp g = {.nsp = nsp, .planes = xd[0] * xd[1]};
        for (int i = 0; i < nsp; i++) {
            g.in[i] = xd[2 + i];
            g.pb[i] = e->g.pb[i];
            g.pe[i] = e->g.pe[i];
            g.out[i] = g.in[i] + g.pb[i] + g.pe[i];
        }
        PCU_RT(pcu_pad_planes(t, x, ws, &g, ps->stream), err);
        xin = ws;
    }
    void *dws = e->ws ? (char *)ws + e->pad_bytes : NULL;
    PCU_DNN(cudnnConvolutionForward(ps->cudnn, &one, e->xd, xin, e->wd, w, e->cd,
                                    (cudnnConvolutionFwdAlgo_t)e->algo, dws, e->ws, &zero, e->yd,
                                    y),
            err);
    return PARE_OK;
}

pare_status pcu_conv_new(const pare_node *n, pcu_conv **out, pare_error *err)
{
    void *st = NULL;
    pare_status s = conv_init(n, 0, &st, err);
    if (s)
        return s;
    ((conv_state *)st)->transpose = false;
    ((conv_state *)st)->no_tf32 = true;
    *out = st;
    return PARE_OK;
}

void pcu_conv_free(pcu_conv *c)
{
    conv_release(c);
}

pare_status pcu_conv_prepare(pcu_session *ps, pcu_conv *c, int dtype, int rank, const int64_t *xd,
                             const int64_t *wd, int64_t *ydims, size_t *ws_bytes,
                             pare_error *err)
{
    if (rank < 3 || rank > 2 + PCU_MAXSP || dnn_t(dtype) < 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "convolution of rank %d in %s", rank,
                              pare_dtype_name(dtype));
    conv_entry *e;
    pare_status st = conv_entry_get(ps, c, dtype, rank, xd, wd, &e, err);
    if (st)
        return st;
    c->last = e;
    c->dtype = dtype;
    c->rank = rank;
    memcpy(ydims, e->ydims, (size_t)rank * sizeof *ydims);
    *ws_bytes = e->pad_bytes + e->ws;
    return PARE_OK;
}

pare_status pcu_conv_forward(pcu_session *ps, pcu_conv *c, const void *x, const void *w, void *y,
                             void *ws, pare_error *err)
{
    if (!c->last)
        return pare_error_set(err, PARE_ERR_INVALID, "convolution not prepared");
    return conv_forward(ps, c->last, dnn_t(c->dtype), c->rank, c->last->key.x, x, w, y, ws, err);
}

static pare_status conv_run(pare_kctx *k, pare_error *err)
{
    conv_state *s = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0], *w = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *b = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !w)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input or weight");
    if (x->rank < 3 || x->rank > 2 + PCU_MAXSP || w->rank != x->rank)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "input of rank %d and weight of rank %d (1 to %d spatial dims)",
                              x->rank, w->rank, PCU_MAXSP);
    int t = dnn_t(x->dtype);
    if (t < 0)
        return no_t(x, err);
    if (numel(x) == 0 || numel(w) == 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "empty convolution");
    conv_entry *e;
    pare_status st = conv_entry_get(ps, s, x->dtype, x->rank, x->dims, w->dims, &e, err);
    if (st)
        return st;
    int64_t C = e->ydims[1];
    if (b && numel(b) != C)
        return pare_error_set(err, PARE_ERR_INVALID, "bias has %lld elements, expected %lld",
                              (long long)numel(b), (long long)C);
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, e->ydims, &y, err)))
        return st;
    size_t extra = s->transpose ? e->full_bytes : e->pad_bytes;
    void *ws = NULL;
    if (extra + e->ws > 0 && (st = pcu_workspace(ps, extra + e->ws, &ws, err)))
        return st;
    void *dws = e->ws ? (char *)ws + extra : NULL;
    const float one = 1.0f, zero = 0.0f;
    int nsp = x->rank - 2;
    if (!s->transpose && k->fused) {
        /* Conv + per-channel affine + residual + activation (pcu_conv_fuse) */
        const pare_tensor *res = k->n_in > 3 ? k->in[3] : NULL;
        if (!s->fz_w || s->fz_c != C)
            return pare_error_set(err, PARE_ERR_INVALID, "fused convolution not prepared");
        if (res && (res->dtype != x->dtype || numel(res) != numel(y)))
            return pare_error_set(err, PARE_ERR_INVALID, "residual does not match the output");
        if ((st = conv_forward(ps, e, t, x->rank, x->dims, x->data, s->fz_w, y->data, ws, err)))
            return st;
        int64_t inner = 1;
        for (int i = 0; i < nsp; i++)
            inner *= e->ydims[2 + i];
        PCU_RT(pcu_conv_epilogue(t, y->data, s->fz_b, res ? res->data : NULL, e->ydims[0], C,
                                 inner, s->fz_act, s->fz_a, s->fz_b2, ps->stream),
               err);
        return PARE_OK;
    }
    if (!s->transpose) {
        if ((st = conv_forward(ps, e, t, x->rank, x->dims, x->data, w->data, y->data, ws, err)))
            return st;
        if (b) {
            int64_t inner = 1;
            for (int i = 0; i < nsp; i++)
                inner *= e->ydims[2 + i];
            PCU_RT(pcu_bias_add(t, y->data, b->data, e->ydims[0], C, inner, ps->stream), err);
        }
        return PARE_OK;
    }
    void *full = e->full_bytes ? ws : y->data;
    PCU_DNN(cudnnConvolutionBackwardData(ps->cudnn, &one, e->wd, w->data, e->xd, x->data, e->cd,
                                         (cudnnConvolutionBwdDataAlgo_t)e->algo, dws, e->ws,
                                         &zero, e->yd, full),
            err);
    if (e->full_bytes) {
        pcu_sp g = {.nsp = nsp, .planes = e->ydims[0] * C};
        for (int i = 0; i < nsp; i++) {
            g.in[i] = e->full[i];
            g.out[i] = e->ydims[2 + i];
            g.pb[i] = e->g.pb[i];
        }
        PCU_RT(pcu_crop_bias(t, full, b ? b->data : NULL, y->data, C, &g, ps->stream), err);
    } else if (b) {
        int64_t inner = 1;
        for (int i = 0; i < nsp; i++)
            inner *= e->ydims[2 + i];
        PCU_RT(pcu_bias_add(t, y->data, b->data, e->ydims[0], C, inner, ps->stream), err);
    }
    return PARE_OK;
}

_Static_assert((int)PCU_ACT_RELU == (int)PARE_KACT_RELU && (int)PCU_ACT_CLIP == (int)PARE_KACT_CLIP &&
                   (int)PCU_ACT_LEAKY_RELU == (int)PARE_KACT_LEAKY_RELU &&
                   (int)PCU_ACT_SIGMOID == (int)PARE_KACT_SIGMOID &&
                   (int)PCU_ACT_TANH == (int)PARE_KACT_TANH &&
                   (int)PCU_ACT_HARDSIGMOID == (int)PARE_KACT_HARDSIGMOID &&
                   (int)PCU_ACT_HARDSWISH == (int)PARE_KACT_HARDSWISH,
               "the epilogue's activation codes are pare_kfuse's");

static double elem_f(const pare_tensor *t, int64_t i)
{
    const uint16_t *h = t->data;
    switch (t->dtype) {
    case PARE_DT_FLOAT16: return pare_f16_to_f32(h[i]);
    case PARE_DT_BFLOAT16: return pare_bf16_to_f32(h[i]);
    default: return ((const float *)t->data)[i];
    }
}

static bool const_init(const pare_value *v)
{
    return v && v->init && !v->producer && !v->is_input;
}

/* The backend's fuse hook for Conv (see pare_backend.fuse): folds f's
 * per-channel scale into a device copy of the constant weights and
 * scale/shift into a float32 bias (the model is not changed); the run then
 * does one convolution and one epilogue kernel for the absorbed
 * BatchNormalization, Mul/Add, residual Add and activation. */
pare_status pcu_conv_fuse(pcu_session *ps, const pare_kernel *k, const pare_node *n, void *state,
                          const pare_kfuse *f, pare_error *err)
{
    conv_state *s = state;
    if (!k || k->run != conv_run || !s || s->transpose || s->fz_w)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not a plain Conv");
    if (f->act < 0 || f->act > PCU_ACT_HARDSWISH)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "activation %d", f->act);
    const pare_value *wv = n->n_inputs > 1 ? n->inputs[1] : NULL;
    const pare_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!const_init(wv) || (bv && !const_init(bv)))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "weights or bias are not constant");
    const pare_tensor *w = wv->init, *b = bv ? bv->init : NULL;
    int dt = w->dtype;
    if ((dt != PARE_DT_FLOAT && dt != PARE_DT_FLOAT16 && dt != PARE_DT_BFLOAT16) || w->rank < 3 ||
        (b && b->dtype != dt) || !w->data)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "weights of this type or shape");
    int64_t M = w->dims[0], nw = numel(w);
    if (M <= 0 || (f->scale && f->n_ch != M) || (b && numel(b) != M))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "channel counts do not match");
    int64_t per = nw / M;
    size_t esz = dt == PARE_DT_FLOAT ? 4 : 2;
    void *hw = malloc((size_t)nw * esz);
    float *hb = malloc((size_t)M * sizeof *hb);
    if (!hw || !hb) {
        free(hw);
        free(hb);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (int64_t m = 0; m < M; m++) {
        double sc = f->scale ? f->scale[m] : 1.0, sh = f->shift ? f->shift[m] : 0.0;
        for (int64_t j = 0; j < per; j++) {
            int64_t i = m * per + j;
            double v = elem_f(w, i) * sc;
            if (dt == PARE_DT_FLOAT)
                ((float *)hw)[i] = (float)v;
            else if (dt == PARE_DT_FLOAT16)
                ((uint16_t *)hw)[i] = pare_f32_to_f16((float)v);
            else
                ((uint16_t *)hw)[i] = pare_f32_to_bf16((float)v);
        }
        hb[m] = (float)((b ? elem_f(b, m) : 0.0) * sc + sh);
    }
    void *dw = NULL, *db = NULL;
    pare_status st = PARE_OK;
    cudaError_t ce = cudaMalloc(&dw, (size_t)nw * esz);
    if (ce == cudaSuccess)
        ce = cudaMalloc(&db, (size_t)M * sizeof *hb);
    if (ce == cudaSuccess)
        ce = cudaMemcpy(dw, hw, (size_t)nw * esz, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess)
        ce = cudaMemcpy(db, hb, (size_t)M * sizeof *hb, cudaMemcpyHostToDevice);
    if (ce != cudaSuccess) {
        st = pare_error_set(err, ce == cudaErrorMemoryAllocation ? PARE_ERR_NOMEM : PARE_ERR_RUNTIME,
                            "folded weights of %s (%lld bytes): %s", n->name ? n->name : "Conv",
                            (long long)(nw * (int64_t)esz), cudaGetErrorString(ce));
        if (dw)
            cudaFree(dw);
        if (db)
            cudaFree(db);
    } else {
        pcu_count_device_bytes(ps, (int64_t)((size_t)nw * esz + (size_t)M * sizeof *hb));
        s->fz_w = dw;
        s->fz_b = db;
        s->fz_c = M;
        s->fz_act = f->act;
        s->fz_a = f->act_a;
        s->fz_b2 = f->act_b;
    }
    free(hw);
    free(hb);
    return st;
}

/* ------------------------------------------------------------------ */
/* pooling                                                             */

typedef struct pool_state {
    pcu_win_attrs a;
    int kind;
    int storage_order;
} pool_state;

static pare_status pool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    pool_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = pcu_win_parse(n, &s->a, err);
    if (!st && !s->a.nk)
        st = pare_error_set(err, PARE_ERR_INVALID, "kernel_shape is required");
    if (st) {
        free(s);
        return st;
    }
    s->kind = strcmp(n->op_type, "MaxPool") == 0 ? PCU_POOL_MAX : PCU_POOL_AVG;
    s->storage_order = pare_node_attr_int(n, "storage_order", 0) != 0;
    *state = s;
    return PARE_OK;
}

static void pool_release(void *state)
{
    free(state);
}

static pare_status pool_run(pare_kctx *k, pare_error *err)
{
    const pool_state *s = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0];
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    int t = dnn_t(x->dtype);
    if (t < 0)
        return no_t(x, err);
    int nsp = x->rank - 2;
    pcu_win_geom g;
    pare_status st = pcu_win_geom_make(&s->a, nsp, x->dims + 2, s->a.kernel, s->a.ceil_mode, &g,
                                       err);
    if (st)
        return st;
    int64_t od[2 + PCU_MAXSP] = {x->dims[0], x->dims[1]};
    pcu_sp sp = {.nsp = nsp, .planes = x->dims[0] * x->dims[1]};
    for (int i = 0; i < nsp; i++) {
        od[2 + i] = g.out[i];
        sp.in[i] = g.in[i];
        sp.out[i] = g.out[i];
        sp.k[i] = g.k[i];
        sp.s[i] = g.s[i];
        sp.d[i] = g.d[i];
        sp.pb[i] = g.pb[i];
        sp.pe[i] = g.pe[i];
    }
    pare_tensor *y, *ind = NULL;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, od, &y, err)))
        return st;
    if (s->kind == PCU_POOL_MAX && k->n_out > 1 && k->node->outputs[1] &&
        (st = k->alloc_out(k, 1, PARE_DT_INT64, x->rank, od, &ind, err)))
        return st;
    PCU_RT(pcu_pool(t, s->kind, x->data, y->data, ind ? (int64_t *)ind->data : NULL,
                    s->storage_order, s->a.count_include_pad, &sp, ps->stream),
           err);
    return PARE_OK;
}

static pare_status gpool_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0];
    if (!x || x->rank < 3)
        return pare_error_set(err, PARE_ERR_INVALID, "input of rank >= 3 needed");
    int t = dnn_t(x->dtype);
    if (t < 0)
        return no_t(x, err);
    int64_t od[PARE_MAX_RANK], plane = 1;
    od[0] = x->dims[0];
    od[1] = x->dims[1];
    for (int i = 2; i < x->rank; i++) {
        od[i] = 1;
        plane *= x->dims[i];
    }
    if (plane == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "global pooling of empty planes");
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, od, &y, err);
    if (st)
        return st;
    int kind = strcmp(k->node->op_type, "GlobalMaxPool") == 0 ? PCU_POOL_MAX : PCU_POOL_AVG;
    PCU_RT(pcu_global_pool(t, kind, x->data, y->data, x->dims[0] * x->dims[1], plane, ps->stream),
           err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* BatchNormalization (inference)                                      */

static pare_status bn_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    float *eps = malloc(sizeof *eps);
    if (!eps)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    *eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    *state = eps;
    return PARE_OK;
}

static pare_status bn_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    if (k->n_in < 5)
        return pare_error_set(err, PARE_ERR_INVALID, "needs 5 inputs");
    for (size_t i = 0; i < 5; i++)
        if (!k->in[i])
            return pare_error_set(err, PARE_ERR_INVALID, "missing input %zu", i);
    const pare_tensor *x = k->in[0];
    int t = dnn_t(x->dtype), pt = dnn_t(k->in[1]->dtype);
    if (t < 0 || pt < 0)
        return no_t(t < 0 ? x : k->in[1], err);
    if (x->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "input of rank >= 2 needed");
    int64_t C = x->dims[1], inner = 1;
    for (int i = 2; i < x->rank; i++)
        inner *= x->dims[i];
    for (size_t i = 1; i < 5; i++)
        if (numel(k->in[i]) != C || k->in[i]->dtype != k->in[1]->dtype)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "parameter %zu must have C = %lld elements of one dtype", i,
                                  (long long)C);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err);
    if (st)
        return st;
    PCU_RT(pcu_batchnorm(t, pt, x->data, k->in[1]->data, k->in[2]->data, k->in[3]->data,
                         k->in[4]->data, y->data, x->dims[0], C, inner, *(const float *)k->state,
                         ps->stream),
           err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* Resize                                                              */

static pare_status resize_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    pcu_resize_attrs *r = malloc(sizeof *r);
    if (!r)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    char why[200];
    if (!pcu_resize_parse(n, opset, r, why, sizeof why)) {
        free(r);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s", why);
    }
    *state = r;
    return PARE_OK;
}

/* scales or sizes computed by the graph, read on the host */
static pare_status resize_dynamic(pare_kctx *k, pcu_resize_attrs *r, pare_error *err)
{
    size_t i = r->has_sizes ? 3 : 2, nb;
    const pare_tensor *t = i < k->n_in ? k->in[i] : NULL;
    if (!t)
        return pare_error_set(err, PARE_ERR_INVALID, "Resize is missing its %s",
                              r->has_sizes ? "sizes" : "scales");
    if (t->dtype != PARE_DT_FLOAT && t->dtype != PARE_DT_INT64)
        return pare_error_set(err, PARE_ERR_INVALID, "Resize %s of %s",
                              r->has_sizes ? "sizes" : "scales", pare_dtype_name(t->dtype));
    int64_t buf[4];
    pare_status st = pcu_read_input(k, i, buf, sizeof buf, &nb, err);
    if (st)
        return st;
    double v[4];
    int count = (int)pare_tensor_numel(t);
    for (int j = 0; j < count && j < 4; j++)
        v[j] = pare_dtype_get_f64(t->dtype, buf, (size_t)j);
    return pcu_resize_values(r, v, count, err);
}

static pare_status resize_run(pare_kctx *k, pare_error *err)
{
    pcu_resize_attrs ra = *(const pcu_resize_attrs *)k->state, *r = &ra;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0];
    if (!x || x->rank != 4)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Resize on cuda takes 4-D NCHW input");
    int t = dnn_t(x->dtype);
    if (t < 0)
        return no_t(x, err);
    pare_status st;
    if (r->dynamic && (st = resize_dynamic(k, r, err)))
        return st;
    pcu_resize_geom g;
    st = pcu_resize_geom_make(r, x->dims, &g, err);
    if (st)
        return st;
    if (numel(x) == 0 && g.out[2] * g.out[3] * g.out[0] * g.out[1] != 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot resize an empty tensor");
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, 4, g.out, &y, err)))
        return st;
    pcu_resize_args a = {r->mode, r->coord, r->nearest, x->dims[0] * x->dims[1],
                         x->dims[2], x->dims[3], g.out[2], g.out[3], g.scale[0], g.scale[1]};
    PCU_RT(pcu_resize(t, x->data, y->data, &a, ps->stream), err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */

#define FP "float32,float16,bfloat16"

const pare_kernel pare_cuda_kernels_dnn[] = {
    {"", "Conv", 1, 0, conv_init, conv_run, conv_release, FP " =0 =0"},
    {"", "ConvTranspose", 1, 0, conv_init, conv_run, conv_release, FP " =0 =0"},
    {"", "MaxPool", 1, 0, pool_init, pool_run, pool_release, FP},
    {"", "AveragePool", 1, 0, pool_init, pool_run, pool_release, FP},
    {"", "GlobalAveragePool", 1, 0, NULL, gpool_run, NULL, FP},
    {"", "GlobalMaxPool", 1, 0, NULL, gpool_run, NULL, FP},
    {"", "BatchNormalization", 9, 0, bn_init, bn_run, free, FP " " FP " =1 =1 =1"},
    {"", "Resize", 11, 0, resize_init, resize_run, free, FP " * * *"},
    {0},
};

/* Conditions of the dnn kernels beyond their types (see pcu_ops_accepts). */
bool pcu_dnn_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                     size_t why_size)
{
    const char *op = k->op_type;
    if (!strcmp(op, "BatchNormalization")) {
        bool extra = false;
        for (size_t i = 1; i < n->n_outputs; i++)
            if (n->outputs[i])
                extra = true;
        if (extra || pare_node_attr_int(n, "training_mode", 0) != 0) {
            snprintf(why, why_size, "training BatchNormalization runs on the cpu");
            return false;
        }
    } else if (!strcmp(op, "Resize")) {
        pcu_resize_attrs r;
        return pcu_resize_parse(n, opset, &r, why, why_size);
    } else if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        if (!pare_node_attr(n, "kernel_shape")) {
            snprintf(why, why_size, "%s without kernel_shape", op);
            return false;
        }
    }
    return true;
}

static bool in_table(const pare_kernel *k, const pare_kernel *table)
{
    for (const pare_kernel *t = table; t->op_type; t++)
        if (t == k)
            return true;
    return false;
}

bool pcu_ops_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                     size_t why_size)
{
    if (in_table(k, pare_cuda_kernels_dnn))
        return pcu_dnn_accepts(k, n, opset, why, why_size);
    if (in_table(k, pare_cuda_kernels_quant))
        return pcu_quant_accepts(k, n, opset, why, why_size);
    if (!strcmp(k->op_type, "Dropout") && opset >= 12 && n->n_inputs > 2 && n->inputs[2]) {
        /* training mode (random masks) is the CPU's; a constant false is inference */
        const pare_value *tm = n->inputs[2];
        const pare_tensor *t = const_init(tm) ? tm->init : NULL;
        if (!t || t->dtype != PARE_DT_BOOL || pare_tensor_numel(t) != 1 ||
            ((const uint8_t *)t->data)[0]) {
            snprintf(why, why_size, "Dropout in training mode (or not known to be off) runs on "
                     "the cpu");
            return false;
        }
    }
    return true;
}
