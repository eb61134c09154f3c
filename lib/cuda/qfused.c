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
