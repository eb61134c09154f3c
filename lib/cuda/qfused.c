/* The CUDA backend's fused QDQ kernels (pare_backend.fuse_qdq): the
 * executor's QDQ fusion (lib/exec/session.c, fuse_qdq) hands over
 *     DequantizeLinear(x_q), DequantizeLinear(w_q) -> Conv / MatMul / Gemm
 *     [-> bias Add] [-> Relu] [-> QuantizeLinear]
 * or an Add of two DequantizeLinears, or DequantizeLinear ->
 * BatchNormalization [-> Mul / Add] [-> Relu] -> QuantizeLinear, as a pare_kqdq; this file derives
 * what is computed with the CPU's own rules (pare_qdq_geom_make, so that the
 * two backends accept the same patterns and agree to the bit), packs the
 * weights once into the tile layout of qfused.cu and uploads them with the
 * per-channel factors. Device code: qfused.cu.
 *
 * Refused here (the nodes then run as they are, dequantized): GPUs before
 * Turing (sm_75; int8 WMMA needs sm_72, and -Dgpu_arch must include one
 * such architecture or newer), groups of
 * fewer than 16 output channels (depthwise convolutions: a 64-row tile
 * would be mostly padding), K above 65536 (int32 sums could wrap where the
 * float graph does not), and anything pare_qdq_geom_make refuses. A CUDA
 * failure while uploading refuses too, so a session without a usable GPU
 * (the host-side tests) plans the unfused nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/qfused_cu.h"
#include "cuda/quant_cu.h"

_Static_assert((int)PCU_DT_U8 == (int)PARE_DT_UINT8 && (int)PCU_DT_I8 == (int)PARE_DT_INT8 &&
                   (int)PCU_DT_F32 == (int)PARE_DT_FLOAT,
               "the kernels' dtype numbers are pare's");

/* ---- host-side layout (no GPU needed; tested in test_cuda_ops) ---- */

int pcu_qdq_bm(int64_t Mg)
{
    return Mg <= 64 ? 64 : 128;
}

pare_status pcu_qdq_pack(const pare_qdq_geom *G, const int8_t *w, int bm, int8_t **packed,
                         int32_t **corr, int64_t *Kp, int64_t *Mpad)
{
    *packed = NULL;
    *corr = NULL;
    *Kp = (G->K + PCU_QG_BK - 1) / PCU_QG_BK * PCU_QG_BK;
    *Mpad = (G->Mg + bm - 1) / bm * bm;
    size_t bytes = (size_t)G->group * (size_t)*Mpad * (size_t)*Kp;
    int8_t *pk = calloc(bytes ? bytes : 1, 1);
    int32_t *cr = malloc((size_t)G->M * sizeof *cr);
    if (!pk || !cr) {
        free(pk);
        free(cr);
        return PARE_ERR_NOMEM;
    }
    /* x's zero point in the int8 domain the kernel reads x in */
    int32_t zc = G->xdt == PARE_DT_UINT8 ? G->zx - 128 : G->zx;
    /* Conv: k tap-major (k = tap * Cg + channel; the weights' own order is
     * channel * taps + tap), so that 16 consecutive k share a tap */
    int64_t taps = G->kind == PARE_QDQ_CONV ? G->kh * G->kw : 1;
    for (int64_t g = 0; g < G->group; g++)
        for (int64_t m = 0; m < G->Mg; m++) {
            const int8_t *src = w + g * G->Mg * G->K + m * G->sm;
            int8_t *dst = pk + (g * *Mpad + m) * *Kp;
            int32_t sum = 0;
            for (int64_t k = 0; k < G->K; k++) {
                int64_t ks = taps == 1 ? k : (k % G->Cg) * taps + k / G->Cg;
                dst[k] = src[ks * G->sk];
                sum += dst[k];
            }
            cr[g * G->Mg + m] = zc * sum;
        }
    *packed = pk;
    *corr = cr;
    return PARE_OK;
}

pare_status pcu_qdq_ktab(const pare_qdq_geom *G, int32_t **tab)
{
    *tab = malloc((size_t)(3 * G->K) * sizeof **tab);
    if (!*tab)
        return PARE_ERR_NOMEM;
    for (int64_t k = 0; k < G->K; k++) { /* tap-major, as pcu_qdq_pack */
        int64_t c = k % G->Cg, t = k / G->Cg;
        (*tab)[3 * k] = (int32_t)c;
        (*tab)[3 * k + 1] = (int32_t)(t / G->kw * G->dh);
        (*tab)[3 * k + 2] = (int32_t)(t % G->kw * G->dw);
    }
    return PARE_OK;
}

/* ---- Conv / MatMul / Gemm ---- */

typedef struct qg_state {
    pare_qdq_geom g;
    int bm;
    int64_t Kp, Mpad;
    void *dev;            /* one device block: weights, corr, mult, bias, ktab */
    int8_t *w;
    int32_t *corr, *ktab;
    float *mult, *bias;
} qg_state;

static void qg_release(void *p)
{
    qg_state *S = p;
    if (!S)
        return;
    if (S->dev)
        cudaFree(S->dev);
    pare_qdq_geom_release(&S->g);
    free(S);
}

static size_t up256(size_t b)
{
    return (b + 255) / 256 * 256;
}

pare_status pcu_qdq_args(const pare_qdq_geom *G, int xdt, int xrank, const int64_t *xdims,
                         pcu_qgemm *a, int64_t *ydims, pare_error *err)
{
    memset(a, 0, sizeof *a);
    if (xdt != G->xdt)
        return pare_error_set(err, PARE_ERR_INVALID, "input is %s", pare_dtype_name(xdt));
    a->xdt = G->xdt; /* PCU_DT_* are pare's (ONNX's) numbers */
    a->ydt = G->ydt; /* PARE_DT_FLOAT when fout */
    a->M = G->M;
    a->Mg = G->Mg;
    a->group = G->group;
    a->K = G->K;
    a->zy = G->zy;
    a->lo = G->lo;
    a->hi = G->hi;
    a->relu = G->relu;
    a->pad = G->xdt == PARE_DT_UINT8 ? G->zx - 128 : G->zx;
    if (G->kind == PARE_QDQ_CONV) {
        if (xrank != G->nd + 2 || xdims[1] != G->Cg * G->group)
            return pare_error_set(err, PARE_ERR_INVALID, "input rank %d or channels do not fit "
                                  "the weights", xrank);
        int64_t H = G->nd == 2 ? xdims[2] : 1, W = xdims[xrank - 1], oh, ow, ph, pw;
        if (!pare_qdq_conv_out(G, H, W, &oh, &ow, &ph, &pw))
            return pare_error_set(err, PARE_ERR_INVALID, "kernel larger than the padded input");
        a->kind = PCU_QG_CONV;
        a->C = xdims[1];
        a->Cg = G->Cg;
        a->H = H;
        a->W = W;
        a->oh = oh;
        a->ow = ow;
        a->sh = G->sh;
        a->sw = G->sw;
        a->ph = ph;
        a->pw = pw;
        a->P = xdims[0] * oh * ow;
        ydims[0] = xdims[0];
        ydims[1] = G->M;
        ydims[2] = G->nd == 2 ? oh : ow;
        ydims[3] = ow;
        return PARE_OK;
    }
    if (xrank < 2 || xdims[xrank - 1] != G->K)
        return pare_error_set(err, PARE_ERR_INVALID, "input's last dim does not match K = %lld",
                              (long long)G->K);
    a->kind = PCU_QG_MATMUL;
    a->P = 1;
    for (int i = 0; i < xrank - 1; i++) {
        a->P *= xdims[i];
        ydims[i] = xdims[i];
    }
    ydims[xrank - 1] = G->M;
    return PARE_OK;
}

static pare_status qg_run(pare_kctx *k, pare_error *err)
{
    const qg_state *S = k->state;
    const pare_qdq_geom *G = &S->g;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->n_in ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    pcu_qgemm a;
    int64_t dims[PARE_MAX_RANK];
    pare_status st = pcu_qdq_args(G, x->dtype, x->rank, x->dims, &a, dims, err);
    if (st)
        return st;
    a.bm = S->bm;
    a.Kp = S->Kp;
    a.Mpad = S->Mpad;
    a.w = S->w;
    a.corr = S->corr;
    a.mult = S->mult;
    a.bias = S->bias;
    a.ktab = S->ktab;
    a.x_vec = a.kind == PCU_QG_MATMUL && G->K % 16 == 0 && (uintptr_t)x->data % 16 == 0;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, G->ydt, x->rank, dims, &y, err)))
        return st;
    PCU_RT(pcu_qgemm_run(&a, x->data, y->data, ps->stream), err);
    return PARE_OK;
}

static const pare_kernel qg_kernel = {"", "QDQ", 1, 0, NULL, qg_run, qg_release, NULL};

static pare_status qg_make(pcu_session *ps, const pare_kqdq *d, const pare_kernel **k,
                           void **state, pare_error *err)
{
    qg_state *S = calloc(1, sizeof *S);
    if (!S)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = pare_qdq_geom_make(d, &S->g);
    const pare_qdq_geom *G = &S->g;
    if (st == PARE_ERR_NOMEM) {
        free(S);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    if (st || G->Mg < 16 || G->K > 65536 || ps->sm < 75) {
        qg_release(S);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not for the int8 kernel");
    }
    S->bm = pcu_qdq_bm(G->Mg);
    int8_t *pk = NULL;
    int32_t *corr = NULL, *tab = NULL;
    if ((st = pcu_qdq_pack(G, d->w_q->data, S->bm, &pk, &corr, &S->Kp, &S->Mpad)) ||
        (G->kind == PARE_QDQ_CONV && (st = pcu_qdq_ktab(G, &tab)))) {
        free(pk);
        free(corr);
        qg_release(S);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    size_t nw = (size_t)G->group * (size_t)S->Mpad * (size_t)S->Kp, nm = (size_t)G->M;
    size_t ow = 0, oc = ow + up256(nw), om = oc + up256(nm * 4), ob = om + up256(nm * 4),
           ot = ob + (G->bias ? up256(nm * 4) : 0), total = ot + (tab ? (size_t)(3 * G->K) * 4 : 0);
    cudaError_t ce = cudaMalloc(&S->dev, total);
    if (ce != cudaSuccess)
        S->dev = NULL;
    char *base = S->dev;
    if (ce == cudaSuccess)
        ce = cudaMemcpy(base + ow, pk, nw, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess)
        ce = cudaMemcpy(base + oc, corr, nm * 4, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess)
        ce = cudaMemcpy(base + om, G->mult, nm * 4, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess && G->bias)
        ce = cudaMemcpy(base + ob, G->bias, nm * 4, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess && tab)
        ce = cudaMemcpy(base + ot, tab, (size_t)(3 * G->K) * 4, cudaMemcpyHostToDevice);
    free(pk);
    free(corr);
    free(tab);
    if (ce != cudaSuccess) {
        qg_release(S);
        cudaGetLastError(); /* clears the sticky-free error of a failed call */
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "weights not uploaded: %s",
                              cudaGetErrorString(ce));
    }
    S->w = (int8_t *)(base + ow);
    S->corr = (int32_t *)(base + oc);
    S->mult = (float *)(base + om);
    S->bias = G->bias ? (float *)(base + ob) : NULL;
    S->ktab = tab ? (int32_t *)(base + ot) : NULL;
    pcu_count_device_bytes(ps, (int64_t)total);
    *k = &qg_kernel;
    *state = S;
    return PARE_OK;
}

/* ---- Add / Sum ---- */

static pare_status qa_run(pare_kctx *k, pare_error *err)
{
    const pcu_qadd *S = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *a = k->n_in > 1 ? k->in[0] : NULL, *b = k->n_in > 1 ? k->in[1] : NULL;
    if (!a || !b)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    if (a->dtype != S->adt || b->dtype != S->bdt || a->rank != b->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "inputs are %s and %s",
                              pare_dtype_name(a->dtype), pare_dtype_name(b->dtype));
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return pare_error_set(err, PARE_ERR_INVALID, "inputs differ in dim %d", i);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->ydt,
                                  a->rank, a->dims, &y, err);
    if (st)
        return st;
    PCU_RT(pcu_qadd_run(S, a->data, b->data, y->data, (int64_t)pare_tensor_numel(a), ps->stream),
           err);
    return PARE_OK;
}

static const pare_kernel qa_kernel = {"", "QDQAdd", 1, 0, NULL, qa_run, free, NULL};

static bool scalar_param(const pare_tensor *s, const pare_tensor *z, int dt, float *scale,
                         int32_t *zp)
{
    if (!s || s->dtype != PARE_DT_FLOAT || pare_tensor_numel(s) != 1 ||
        (z && (z->dtype != dt || pare_tensor_numel(z) != 1)))
        return false;
    *scale = *(const float *)s->data;
    *zp = !z ? 0 : dt == PARE_DT_UINT8 ? *(const uint8_t *)z->data : *(const int8_t *)z->data;
    return *scale > 0 && *scale < 1e30f;
}

pare_status pcu_qdq_add_params(const pare_kqdq *d, pcu_qadd *A)
{
    memset(A, 0, sizeof *A);
    int t[3] = {d->x_dtype, d->b_dtype, d->y_dtype};
    for (int i = 0; i < 3; i++)
        if (t[i] != PARE_DT_UINT8 && t[i] != PARE_DT_INT8)
            return PARE_ERR_UNSUPPORTED;
    if (!scalar_param(d->x_scale, d->x_zp, d->x_dtype, &A->sa, &A->za) ||
        !scalar_param(d->b_scale, d->b_zp, d->b_dtype, &A->sb, &A->zb) ||
        !scalar_param(d->y_scale, d->y_zp, d->y_dtype, &A->ys, &A->zy))
        return PARE_ERR_UNSUPPORTED;
    A->adt = d->x_dtype; /* PCU_DT_* are pare's numbers */
    A->bdt = d->b_dtype;
    A->ydt = d->y_dtype;
    A->lo = d->y_dtype == PARE_DT_UINT8 ? 0 : -128;
    A->hi = d->y_dtype == PARE_DT_UINT8 ? 255 : 127;
    A->relu = d->relu;
    return PARE_OK;
}

/* ---- BatchNormalization ---- */

typedef struct qb_state {
    pcu_qbn p;   /* a, b: device */
    void *dev;
} qb_state;

static void qb_release(void *st)
{
    qb_state *S = st;
    if (S && S->dev)
        cudaFree(S->dev);
    free(S);
}

void pcu_qdq_bn_params(const pare_qdq_bn *B, pcu_qbn *p)
{
    memset(p, 0, sizeof *p);
    p->xdt = B->xdt; /* PCU_DT_* are pare's numbers */
    p->ydt = B->ydt;
    p->C = B->C;
    p->sx = B->sx;
    p->ys = B->ys;
    p->zx = B->zx;
    p->zy = B->zy;
    p->lo = B->lo;
    p->hi = B->hi;
    p->relu = B->relu;
}

static pare_status qb_run(pare_kctx *k, pare_error *err)
{
    const qb_state *S = k->state;
    pcu_session *ps = k->dev;
    const pare_tensor *x = k->n_in ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    if (x->dtype != S->p.xdt)
        return pare_error_set(err, PARE_ERR_INVALID, "input is %s", pare_dtype_name(x->dtype));
    if (x->rank < 2 || x->dims[1] != S->p.C)
        return pare_error_set(err, PARE_ERR_INVALID, "input has %lld channels, the parameters %lld",
                              (long long)(x->rank < 2 ? 0 : x->dims[1]), (long long)S->p.C);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->p.ydt,
                                  x->rank, x->dims, &y, err);
    if (st)
        return st;
    pcu_qbn p = S->p;
    p.plane = 1;
    for (int i = 2; i < x->rank; i++)
        p.plane *= x->dims[i];
    if (!p.plane)
        return PARE_OK;
    PCU_RT(pcu_qbn_run(&p, x->data, y->data, (int64_t)pare_tensor_numel(x), ps->stream), err);
    return PARE_OK;
}

static const pare_kernel qb_kernel = {"", "QDQBatchNormalization", 1, 0, NULL, qb_run, qb_release,
                                      NULL};

static pare_status qb_make(pcu_session *ps, const pare_kqdq *d, const pare_kernel **k, void **state,
                           pare_error *err)
{
    pare_qdq_bn B;
    pare_status st = pare_qdq_bn_make(d, &B);
    if (st)
        return pare_error_set(err, st, st == PARE_ERR_NOMEM ? "out of memory" : "not this form");
    qb_state *S = calloc(1, sizeof *S);
    if (!S) {
        pare_qdq_bn_release(&B);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pcu_qdq_bn_params(&B, &S->p);
    size_t bytes = (size_t)B.C * sizeof(float);
    cudaError_t ce = cudaMalloc(&S->dev, 2 * bytes);
    if (ce != cudaSuccess)
        S->dev = NULL;
    if (ce == cudaSuccess)
        ce = cudaMemcpy(S->dev, B.a, bytes, cudaMemcpyHostToDevice);
    if (ce == cudaSuccess)
        ce = cudaMemcpy((char *)S->dev + bytes, B.b, bytes, cudaMemcpyHostToDevice);
    pare_qdq_bn_release(&B);
    if (ce != cudaSuccess) {
        qb_release(S);
        cudaGetLastError();
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "parameters not uploaded: %s",
                              cudaGetErrorString(ce));
    }
    S->p.a = S->dev;
    S->p.b = (const float *)((char *)S->dev + bytes);
    pcu_count_device_bytes(ps, (int64_t)(2 * bytes));
    *k = &qb_kernel;
    *state = S;
    return PARE_OK;
}

pare_status pcu_fuse_qdq(pcu_session *ps, const pare_kqdq *d, const pare_kernel **k, void **state,
                         pare_error *err)
{
    const char *op = d->op->op_type;
    if (!ps) /* a session without a device context (host-side tests) */
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no CUDA session");
    if (!strcmp(op, "BatchNormalization"))
        return qb_make(ps, d, k, state, err);
    if (strcmp(op, "Add") && strcmp(op, "Sum"))
        return qg_make(ps, d, k, state, err);
    pcu_qadd *A = malloc(sizeof *A);
    if (!A)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (pcu_qdq_add_params(d, A)) {
        free(A);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not an 8-bit Add");
    }
    *k = &qa_kernel;
    *state = A;
    return PARE_OK;
}
