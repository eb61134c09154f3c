/* Host-side half of the fused QDQ kernels (qfused_plan.h): weights packed
 * into qfused.cu's tile layout, the Conv k table, the kernels' arguments.
 * No CUDA call here (tests/cuda/emu builds this file without CUDA). */
#include <stdlib.h>
#include <string.h>

#include "cuda/qfused_plan.h"

_Static_assert((int)PCU_DT_U8 == (int)PARE_DT_UINT8 && (int)PCU_DT_I8 == (int)PARE_DT_INT8 &&
                   (int)PCU_DT_F32 == (int)PARE_DT_FLOAT,
               "the kernels' dtype numbers are pare's");

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
