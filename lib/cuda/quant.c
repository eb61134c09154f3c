/* CUDA kernels of the quantization family: QuantizeLinear and
 * DequantizeLinear (ai.onnx 10+ and com.microsoft; per tensor, per axis,
 * blocked; int8/uint8/int16/uint16, packed int4/uint4, float8 e4m3fn and
 * e5m2), DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, QLinearConv
 * and com.microsoft MatMulNBits. Device code in quant.cu.
 *
 * MatMulInteger and QLinearMatMul run an own tiled int8 kernel with int32
 * accumulation (wrapping as the CPU's) and, for QLinearMatMul, the
 * requantization in its epilogue. cuBLASLt's int8 GEMM is not used yet: it
 * wants signed int8 on both sides, zero points of 0 and K a multiple of 4,
 * and the zero-point corrections would be extra kernels; worth it for
 * large symmetric-int8 GEMMs, a later step.
 *
 * QLinearConv dequantizes x and w without their scales ((x - x_zp) and
 * (w - w_zp) as floats, exact), runs the float32 cuDNN convolution of
 * dnn.c without TF32 (products exact, sums exact below 2^24 in
 * magnitude: the CPU's int32 sums unless |acc| >= 2^24), then one kernel
 * adds the int32 bias and requantizes with the CPU's multiplier.
 *
 * MatMulNBits dequantizes B to an N x K matrix of A's dtype in the
 * workspace, then one cuBLAS GEMM (float accumulation; TF32 only when the
 * session asks) and a bias kernel. g_idx (act-order) is left to the CPU.
 *
 * Fused QDQ (DequantizeLinear -> Conv / MatMul / Gemm -> QuantizeLinear as
 * one int8 tensor-core kernel) is qfused.c, reached through the executor's
 * QDQ fusion (pare_backend.fuse_qdq), not through these records.
 *
 * Conditions beyond the records' types are in pcu_quant_accepts.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/dnn.h"
#include "cuda/ops_host.h"
#include "cuda/quant_cu.h"

#define WS_ALIGN 256

static size_t ws_round(size_t b)
{
    return (b + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

static int64_t numel(const pare_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

static bool is_fp(int dt)
{
    return dt == PARE_DT_FLOAT || dt == PARE_DT_FLOAT16 || dt == PARE_DT_BFLOAT16;
}

static bool is_q_out(int dt)
{
    switch (dt) {
    case PARE_DT_UINT8: case PARE_DT_INT8: case PARE_DT_UINT16: case PARE_DT_INT16:
    case PARE_DT_UINT4: case PARE_DT_INT4: case PARE_DT_FLOAT8E4M3FN: case PARE_DT_FLOAT8E5M2:
        return true;
    default: return false;
    }
}

static bool is_f8(int dt)
{
    return dt == PARE_DT_FLOAT8E4M3FN || dt == PARE_DT_FLOAT8E5M2;
}

/* ------------------------------------------------------------------ */
/* QuantizeLinear and DequantizeLinear                                 */

typedef struct q_state {
    int64_t axis, block_size, output_dtype, precision;
    bool saturate;
} q_state;

static pare_status q_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    q_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->axis = pare_node_attr_int(n, "axis", 1);
    s->block_size = pare_node_attr_int(n, "block_size", 0);
    s->output_dtype = pare_node_attr_int(n, "output_dtype", 0);
    s->precision = pare_node_attr_int(n, "precision", 0);
    s->saturate = pare_node_attr_int(n, "saturate", 1) != 0;
    if (s->block_size < 0) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "block_size must not be negative");
    }
    *state = s;
    return PARE_OK;
}

static pare_status q_map(const pare_tensor *x, const pare_tensor *sc, const pare_tensor *zp,
                         const q_state *S, pcu_qmap *m, pare_error *err)
{
    if (zp && numel(zp) != numel(sc))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "zero point has %lld elements, scale has %lld",
                              (long long)numel(zp), (long long)numel(sc));
    pcu_qlayout L;
    pare_status st = pcu_qlayout_make(x->rank, x->dims, sc->rank, sc->dims, S->axis,
                                      S->block_size, &L, err);
    if (st)
        return st;
    *m = (pcu_qmap){L.mode, L.n, L.inner, L.axis_len, L.bs, L.nblk};
    return PARE_OK;
}

static pare_status quant_run(pare_kctx *k, pare_error *err)
{
    const q_state *S = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0], *sc = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *zp = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !sc)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input or scale");
    int ydt = zp ? zp->dtype : S->output_dtype ? (int)S->output_dtype : PARE_DT_UINT8;
    if (zp && S->output_dtype && S->output_dtype != zp->dtype)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "output_dtype %s differs from the zero point's %s",
                              pare_dtype_name((int)S->output_dtype), pare_dtype_name(zp->dtype));
    if (!is_q_out(ydt) || !is_fp(x->dtype) || !is_fp(sc->dtype))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "quantizing %s to %s is not run on cuda",
                              pare_dtype_name(x->dtype), pare_dtype_name(ydt));
    int pt = S->precision ? (int)S->precision : x->dtype == sc->dtype ? x->dtype : PARE_DT_FLOAT;
    if (!is_fp(pt))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "precision %s is not run on cuda",
                              pare_dtype_name(pt));
    pcu_qmap m;
    pare_status st = q_map(x, sc, zp, S, &m, err);
    if (st)
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, ydt, x->rank, x->dims, &y, err)))
        return st;
    PCU_RT(pcu_quantize(x->dtype, x->data, sc->dtype, sc->data,
                        zp && !is_f8(ydt) ? zp->data : NULL, ydt, y->data, pt, S->saturate, &m,
                        ps->stream),
           err);
    return PARE_OK;
}

static pare_status dequant_run(pare_kctx *k, pare_error *err)
{
    const q_state *S = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0], *sc = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *zp = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !sc)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input or scale");
    if (zp && zp->dtype != x->dtype)
        return pare_error_set(err, PARE_ERR_INVALID, "zero point dtype %s differs from input's %s",
                              pare_dtype_name(zp->dtype), pare_dtype_name(x->dtype));
    int ydt = S->output_dtype ? (int)S->output_dtype : sc->dtype;
    if (!is_fp(ydt) || !is_fp(sc->dtype))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "dequantizing to %s is not run on cuda",
                              pare_dtype_name(ydt));
    pcu_qmap m;
    pare_status st = q_map(x, sc, zp, S, &m, err);
    if (st)
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, ydt, x->rank, x->dims, &y, err)))
        return st;
    PCU_RT(pcu_dequantize(x->dtype, x->data, sc->dtype, sc->data,
                          zp && !is_f8(x->dtype) ? zp->data : NULL, ydt, y->data, &m, ps->stream),
           err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* DynamicQuantizeLinear                                               */

static pare_status dynq_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype != PARE_DT_FLOAT)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be float32");
    pare_tensor *y, *ys, *yz;
    pare_status st = k->alloc_out(k, 0, PARE_DT_UINT8, x->rank, x->dims, &y, err);
    if (!st)
        st = k->alloc_out(k, 1, PARE_DT_FLOAT, 0, NULL, &ys, err);
    if (!st)
        st = k->alloc_out(k, 2, PARE_DT_UINT8, 0, NULL, &yz, err);
    if (st)
        return st;
    void *ws;
    if ((st = pcu_workspace(ps, pcu_dynq_ws_bytes(numel(x)), &ws, err)))
        return st;
    PCU_RT(pcu_dynamic_quantize(x->data, numel(x), y->data, ys->data, yz->data, ws, ps->stream),
           err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* MatMulInteger and QLinearMatMul                                     */

static pare_status imm_setup(const pare_tensor *a, const pare_tensor *b, const pare_tensor *azp,
                             const pare_tensor *bzp, pcu_mm_geom *g, pcu_imm *p, pare_error *err)
{
    pare_status st = pcu_mm_geom_make(a->rank, a->dims, b->rank, b->dims, g, err);
    if (st)
        return st;
    memset(p, 0, sizeof *p);
    p->at = a->dtype;
    p->bt = b->dtype;
    p->M = g->M;
    p->N = g->N;
    p->K = g->K;
    p->batch = g->batch;
    p->nb = g->nb;
    for (int i = 0; i < g->nb; i++) {
        p->bdims[i] = g->bdims[i];
        p->sa[i] = g->sa[i];
        p->sb[i] = g->sb[i];
    }
    if (azp) {
        if (azp->dtype != a->dtype ||
            (p->azp_kind = pcu_mm_param_kind(numel(azp), g->M, g->a_batches)) < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "A's zero point does not fit A");
        p->azp = azp->data;
    }
    if (bzp) {
        if (bzp->dtype != b->dtype ||
            (p->bzp_kind = pcu_mm_param_kind(numel(bzp), g->N, g->b_batches)) < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "B's zero point does not fit B");
        p->bzp = bzp->data;
    }
    return PARE_OK;
}

static pare_status mmint_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    const pare_tensor *a = k->in[0], *b = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *azp = k->n_in > 2 ? k->in[2] : NULL, *bzp = k->n_in > 3 ? k->in[3] : NULL;
    if (!a || !b)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    pcu_mm_geom g;
    pcu_imm p;
    pare_status st = imm_setup(a, b, azp, bzp, &g, &p, err);
    if (st)
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, PARE_DT_INT32, g.rank, g.dims, &y, err)))
        return st;
    PCU_RT(pcu_int_matmul(&p, a->data, b->data, y->data, ps->stream), err);
    return PARE_OK;
}

static pare_status qlinmm_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    if (k->n_in < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "expected 8 inputs");
    const pare_tensor *a = k->in[0], *as = k->in[1], *azp = k->in[2], *b = k->in[3],
                      *bs = k->in[4], *bzp = k->in[5], *ys = k->in[6], *yzp = k->in[7];
    if (!a || !as || !b || !bs || !ys)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    pcu_mm_geom g;
    pcu_imm p;
    pare_status st = imm_setup(a, b, azp, bzp, &g, &p, err);
    if (st)
        return st;
    int ydt = yzp ? yzp->dtype : a->dtype;
    if (ydt != PARE_DT_UINT8 && ydt != PARE_DT_INT8)
        return pare_error_set(err, PARE_ERR_INVALID, "output dtype %s", pare_dtype_name(ydt));
    if ((p.as_kind = pcu_mm_param_kind(numel(as), g.M, g.a_batches)) < 0 ||
        (p.bs_kind = pcu_mm_param_kind(numel(bs), g.N, g.b_batches)) < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "a_scale or b_scale does not fit its input");
    if (numel(ys) != 1 || (yzp && numel(yzp) != 1))
        return pare_error_set(err, PARE_ERR_INVALID, "y_scale and y_zero_point must be scalars");
    p.epi = 1;
    p.as = as->data;
    p.bs = bs->data;
    p.ys = ys->data;
    p.yzp = yzp ? yzp->data : NULL;
    p.yt = ydt;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, ydt, g.rank, g.dims, &y, err)))
        return st;
    PCU_RT(pcu_int_matmul(&p, a->data, b->data, y->data, ps->stream), err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* QLinearConv                                                         */

static pare_status qconv_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    pcu_conv *c;
    pare_status st = pcu_conv_new(n, &c, err);
    if (st)
        return st;
    *state = c;
    return PARE_OK;
}

static void qconv_release(void *state)
{
    pcu_conv_free(state);
}

static pare_status qlinconv_run(pare_kctx *k, pare_error *err)
{
    pcu_session *ps = k->dev;
    if (k->n_in < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "expected at least 8 inputs");
    const pare_tensor *x = k->in[0], *xs = k->in[1], *xzp = k->in[2], *w = k->in[3],
                      *ws = k->in[4], *wzp = k->in[5], *ys = k->in[6], *yzp = k->in[7];
    const pare_tensor *bias = k->n_in > 8 ? k->in[8] : NULL;
    if (!x || !xs || !w || !ws || !ys)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    if (x->rank != w->rank || x->rank < 3)
        return pare_error_set(err, PARE_ERR_INVALID, "input and weight ranks differ");
    int ydt = yzp ? yzp->dtype : x->dtype;
    if (ydt != PARE_DT_UINT8 && ydt != PARE_DT_INT8)
        return pare_error_set(err, PARE_ERR_INVALID, "output dtype %s", pare_dtype_name(ydt));
    int64_t M = w->dims[0], nws = numel(ws);
    if (numel(xs) != 1 || numel(ys) != 1 || (yzp && numel(yzp) != 1) ||
        (xzp && numel(xzp) != 1) || (nws != 1 && nws != M) ||
        (wzp && numel(wzp) != 1 && numel(wzp) != M))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "scales and zero points must be scalars (w's: scalar or per output "
                              "channel)");
    if ((xzp && xzp->dtype != x->dtype) || (wzp && wzp->dtype != w->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "zero point dtypes differ from the inputs'");
    if (bias && (bias->dtype != PARE_DT_INT32 || numel(bias) != M))
        return pare_error_set(err, PARE_ERR_INVALID, "bias must be int32 of M elements");
    int64_t yd[PARE_MAX_RANK];
    size_t conv_ws;
    pare_status st = pcu_conv_prepare(ps, k->state, PARE_DT_FLOAT, x->rank, x->dims, w->dims, yd,
                                      &conv_ws, err);
    if (st)
        return st;
    int64_t ny = 1;
    for (int i = 0; i < x->rank; i++)
        ny *= yd[i];
    size_t bx = ws_round((size_t)numel(x) * 4), bw = ws_round((size_t)numel(w) * 4),
           by = ws_round((size_t)ny * 4);
    void *scratch;
    if ((st = pcu_workspace(ps, bx + bw + by + conv_ws, &scratch, err)))
        return st;
    char *base = scratch;
    float *xf = (float *)base, *wf = (float *)(base + bx), *yf = (float *)(base + bx + bw);
    void *cws = conv_ws ? base + bx + bw + by : NULL;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, ydt, x->rank, yd, &y, err)))
        return st;
    /* x - x_zp and w - w_zp as floats (scale NULL: 1) */
    pcu_qmap mx = {PCU_Q_TENSOR, numel(x), numel(x), 1, 0, 0};
    pcu_qmap mw = {PCU_Q_TENSOR, numel(w), numel(w), 1, 0, 0};
    if (wzp && numel(wzp) == M && M > 1)
        mw = (pcu_qmap){PCU_Q_AXIS, numel(w), numel(w) / M, M, 0, 0};
    PCU_RT(pcu_dequantize(x->dtype, x->data, PARE_DT_FLOAT, NULL, xzp ? xzp->data : NULL,
                          PARE_DT_FLOAT, xf, &mx, ps->stream),
           err);
    PCU_RT(pcu_dequantize(w->dtype, w->data, PARE_DT_FLOAT, NULL, wzp ? wzp->data : NULL,
                          PARE_DT_FLOAT, wf, &mw, ps->stream),
           err);
    if ((st = pcu_conv_forward(ps, k->state, xf, wf, yf, cws, err)))
        return st;
    int64_t inner = ny / (yd[0] * M);
    PCU_RT(pcu_qconv_requant(yf, bias ? bias->data : NULL, xs->data, ws->data, nws == M && M > 1,
                             ys->data, yzp ? yzp->data : NULL, ydt, y->data, yd[0], M, inner,
                             ps->stream),
           err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* MatMulNBits (com.microsoft)                                         */

typedef struct nbits_state {
    int64_t K, N, bits, block_size;
} nbits_state;

static pare_status nbits_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    nbits_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->K = pare_node_attr_int(n, "K", -1);
    s->N = pare_node_attr_int(n, "N", -1);
    s->bits = pare_node_attr_int(n, "bits", 4);
    s->block_size = pare_node_attr_int(n, "block_size", -1);
    if (s->K < 1 || s->N < 1 || s->bits < 1 || s->bits > 8 || s->block_size < 1 ||
        s->K > INT_MAX || s->N > INT_MAX) {
        free(s);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "MatMulNBits needs K, N, block_size >= 1 and bits in 1..8");
    }
    *state = s;
    return PARE_OK;
}

static cudaDataType_t blas_type(int dt)
{
    return dt == PARE_DT_FLOAT16 ? CUDA_R_16F : dt == PARE_DT_BFLOAT16 ? CUDA_R_16BF : CUDA_R_32F;
}

static pare_status nbits_run(pare_kctx *k, pare_error *err)
{
    const nbits_state *S = k->state;
    pcu_session *ps = k->dev;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    const pare_tensor *a = k->in[0], *b = k->in[1], *sc = k->in[2];
    const pare_tensor *zp = k->n_in > 3 ? k->in[3] : NULL;
    const pare_tensor *gi = k->n_in > 4 ? k->in[4] : NULL;
    const pare_tensor *bias = k->n_in > 5 ? k->in[5] : NULL;
    int64_t K = S->K, N = S->N, bsz = S->block_size, bits = S->bits;
    int64_t nblk = (K + bsz - 1) / bsz, blob = (bsz * bits + 7) / 8;
    if (gi)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "g_idx is not run on cuda");
    if (a->rank < 1 || a->dims[a->rank - 1] != K)
        return pare_error_set(err, PARE_ERR_INVALID, "A's last dim must be K = %lld",
                              (long long)K);
    if (b->dtype != PARE_DT_UINT8 || numel(b) != N * nblk * blob)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "B must be uint8 of %lld x %lld x %lld elements", (long long)N,
                              (long long)nblk, (long long)blob);
    if (numel(sc) != N * nblk || sc->dtype != a->dtype)
        return pare_error_set(err, PARE_ERR_INVALID, "scales must be %lld elements of A's dtype",
                              (long long)(N * nblk));
    int64_t zp_row = (nblk * bits + 7) / 8;
    bool packed = zp && zp->dtype == PARE_DT_UINT8;
    if (zp && (packed ? numel(zp) != N * zp_row : (zp->dtype != a->dtype || numel(zp) != N * nblk)))
        return pare_error_set(err, PARE_ERR_INVALID, "zero points do not fit B");
    if (bias && (numel(bias) != N || bias->dtype != a->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have N elements of A's dtype");
    int64_t M = numel(a) / K;
    if (M > INT_MAX)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "too many rows for cuBLAS");
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, a->dims, (size_t)a->rank * sizeof *dims);
    dims[a->rank - 1] = N;
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, a->dtype, a->rank, dims, &y, err);
    if (st)
        return st;
    if (M == 0)
        return PARE_OK;
    void *W;
    if ((st = pcu_workspace(ps, (size_t)(N * K) * pare_elem_size(a->dtype), &W, err)))
        return st;
    PCU_RT(pcu_nbits_dequant(b->data, sc->dtype, sc->data, zp ? zp->data : NULL, packed,
                             (int)bits, N, K, bsz, a->dtype, W, ps->stream),
           err);
    /* row-major Y[M, N] = A[M, K] W[N, K]^T: column-major Y^T = W^T(op T) A^T */
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = blas_type(a->dtype);
    cublasComputeType_t ct = a->dtype == PARE_DT_FLOAT && ps->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                   : CUBLAS_COMPUTE_32F;
    PCU_BLAS(cublasGemmEx(ps->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, W, t,
                          (int)K, a->data, t, (int)K, &zero, y->data, t, (int)N, ct,
                          CUBLAS_GEMM_DEFAULT),
             err);
    if (bias)
        PCU_RT(pcu_add_row_bias(a->dtype, y->data, bias->data, M, N, ps->stream), err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */

#define FP "float32,float16,bfloat16"
#define QT "uint8,int8,uint16,int16,uint4,int4,float8e4m3fn,float8e5m2"
#define DQT "uint8,int8,uint16,int16,int32,uint4,int4,float8e4m3fn,float8e5m2"

const pare_kernel pare_cuda_kernels_quant[] = {
    {"", "QuantizeLinear", 10, 0, q_init, quant_run, free, FP " " FP " " QT},
    {"", "DequantizeLinear", 10, 0, q_init, dequant_run, free, DQT " " FP " =0"},
    {"", "DynamicQuantizeLinear", 11, 0, NULL, dynq_run, NULL, "float32"},
    {"", "MatMulInteger", 10, 0, NULL, mmint_run, NULL, "uint8,int8 uint8,int8 =0 =1"},
    {"", "QLinearMatMul", 10, 0, NULL, qlinmm_run, NULL,
     "uint8,int8 float32 =0 uint8,int8 float32 =3 float32 uint8,int8"},
    {"", "QLinearConv", 10, 0, qconv_init, qlinconv_run, qconv_release,
     "uint8,int8 float32 =0 uint8,int8 float32 =3 float32 uint8,int8 int32"},
    {"com.microsoft", "QuantizeLinear", 1, 0, q_init, quant_run, free, FP " " FP " " QT},
    {"com.microsoft", "DequantizeLinear", 1, 0, q_init, dequant_run, free, DQT " " FP " =0"},
    {"com.microsoft", "MatMulNBits", 1, 0, nbits_init, nbits_run, free,
     FP " uint8 =0 * int32 =0"},
    {0},
};

bool pcu_quant_accepts(const pare_kernel *k, const pare_node *n, int64_t opset, char *why,
                       size_t why_size)
{
    (void)opset;
    const char *op = k->op_type;
    if (!strcmp(op, "QuantizeLinear")) {
        int64_t od = pare_node_attr_int(n, "output_dtype", 0);
        int64_t pr = pare_node_attr_int(n, "precision", 0);
        bool has_zp = n->n_inputs > 2 && n->inputs[2];
        if ((!has_zp && od && !is_q_out((int)od)) || (pr && !is_fp((int)pr))) {
            snprintf(why, why_size, "QuantizeLinear to %s in %s precision runs on the cpu",
                     pare_dtype_name(od ? (int)od : PARE_DT_UINT8),
                     pr ? pare_dtype_name((int)pr) : "default");
            return false;
        }
    } else if (!strcmp(op, "DequantizeLinear")) {
        int64_t od = pare_node_attr_int(n, "output_dtype", 0);
        if (od && !is_fp((int)od)) {
            snprintf(why, why_size, "DequantizeLinear to %s runs on the cpu",
                     pare_dtype_name((int)od));
            return false;
        }
    } else if (!strcmp(op, "MatMulNBits")) {
        if (n->n_inputs > 4 && n->inputs[4]) {
            snprintf(why, why_size, "MatMulNBits with g_idx runs on the cpu");
            return false;
        }
        if (pare_node_attr_int(n, "weight_prepacked", 0) != 0) {
            snprintf(why, why_size, "prepacked MatMulNBits weights run on the cpu");
            return false;
        }
        const pare_value *a = n->n_inputs > 0 ? n->inputs[0] : NULL;
        const pare_value *zp = n->n_inputs > 3 ? n->inputs[3] : NULL;
        const pare_value *sc = n->n_inputs > 2 ? n->inputs[2] : NULL;
        if (a && a->dtype && ((zp && zp->dtype && zp->dtype != PARE_DT_UINT8 &&
                               zp->dtype != a->dtype) ||
                              (sc && sc->dtype && sc->dtype != a->dtype))) {
            snprintf(why, why_size, "MatMulNBits with scales or zero points of another dtype "
                                    "than A runs on the cpu");
            return false;
        }
    }
    return true;
}
