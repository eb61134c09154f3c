/* qdq_case.h: a fused QDQ Conv / MatMul case and its expected output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pare/exec.h"
#include "qdq_case.h"
#include "../exec/fusion_build.h"

static pare_tensor *qt(const char *name, int dtype, int rank, const int64_t *dims)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dtype, rank, dims, &t, &err), PARE_OK);
    return t;
}

static uint32_t qrng = 12345;
static int32_t qrand(int32_t lo, int32_t hi)
{
    qrng = qrng * 1664525u + 1013904223u;
    return lo + (int32_t)((qrng >> 8) % (uint32_t)(hi - lo + 1));
}

void qdq_case_make(qdq_case *c, const qdq_shape *s)
{
    memset(c, 0, sizeof *c);
    c->s = *s;
    pare_error err;
    c->m = new_model(21);
    pare_graph *g = pare_model_graph(c->m);
    bool mm = s->matmul;
    int64_t group = mm ? 1 : s->group, C = s->cg * group, M = s->mg * group, K = s->cg;
    pare_value *ins[2], *out;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pare_graph_new_value(g, NULL, "v", PARE_DT_FLOAT, &ins[i], &err), PARE_OK);
    assert_int_equal(pare_graph_new_value(g, NULL, "v", 0, &out, &err), PARE_OK);
    pare_node *n;
    assert_int_equal(pare_graph_add_node(g, NULL, "", mm ? "MatMul" : "Conv", ins, 2, &out, 1,
                                         NULL, &n, &err),
                     PARE_OK);
    if (!mm) {
        int64_t st[2] = {2, 1}, dl[2] = {2, 2}, pd[4] = {1, 0, 2, 1};
        assert_int_equal(pare_node_set_attr_ints(n, "strides", st, 2, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_ints(n, "dilations", dl, 2, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_ints(n, "pads", pd, 4, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_int(n, "group", group, &err), PARE_OK);
    }
    int64_t one = 1, wd[4] = {M, s->cg, 3, 2}, wm[2] = {K, M};
    pare_tensor *xs = qt("xs", PARE_DT_FLOAT, 1, &one), *xz = qt("xz", s->xdt, 1, &one);
    pare_tensor *wq = mm ? qt("w", PARE_DT_INT8, 2, wm) : qt("w", PARE_DT_INT8, 4, wd);
    pare_tensor *ws = qt("ws", PARE_DT_FLOAT, 1, &M), *b = qt("b", PARE_DT_FLOAT, 1, &M);
    pare_tensor *ys = qt("ys", PARE_DT_FLOAT, 1, &one), *yz = qt("yz", PARE_DT_UINT8, 1, &one);
    pare_tensor *ts[7] = {xs, xz, wq, ws, b, ys, yz};
    memcpy(c->ts, ts, sizeof ts);
    *(float *)xs->data = 0.02f;
    c->zx = s->xdt == PARE_DT_UINT8 ? 37 : -5;
    if (s->xdt == PARE_DT_UINT8)
        *(uint8_t *)xz->data = (uint8_t)c->zx;
    else
        *(int8_t *)xz->data = (int8_t)c->zx;
    for (size_t i = 0; i < pare_tensor_numel(wq); i++)
        ((int8_t *)wq->data)[i] = (int8_t)qrand(-128, 127);
    /* scales sized so that the sums of K products land across y's range */
    float wscale = 0.02f / sqrtf((float)(mm ? K : s->cg * 6));
    for (int64_t i = 0; i < M; i++) {
        ((float *)ws->data)[i] = wscale * (float)qrand(1, 9);
        ((float *)b->data)[i] = 0.05f * (float)qrand(-20, 20);
    }
    *(float *)ys->data = 0.05f;
    *(uint8_t *)yz->data = 100;
    pare_kqdq *d = &c->d;
    d->op = n;
    d->x_dtype = s->xdt;
    d->x_scale = xs;
    d->x_zp = xz;
    d->w_q = wq;
    d->w_scale = ws;
    d->w_axis = mm ? 1 : 0;
    d->bias_f = mm ? NULL : b;
    d->bias_vec = mm ? b->data : NULL;
    d->y_scale = ys;
    d->y_zp = yz;
    d->y_dtype = PARE_DT_UINT8;
    d->relu = s->relu;
    d->float_out = s->fout;
    assert_int_equal(pare_qdq_geom_make(d, &c->G), PARE_OK);

    int64_t xd4[4] = {s->n, C, s->h, s->w}, xd2[2] = {s->rows, K};
    c->xrank = mm ? 2 : 4;
    memcpy(c->xdims, mm ? xd2 : xd4, (size_t)c->xrank * sizeof(int64_t));
    pcu_qgemm a;
    assert_int_equal(pcu_qdq_args(&c->G, s->xdt, c->xrank, c->xdims, &a, c->ydims, &err), PARE_OK);
    c->nx = c->ny = 1;
    for (int i = 0; i < c->xrank; i++) {
        c->nx *= c->xdims[i];
        c->ny *= c->ydims[i];
    }
    c->esz = s->fout ? 4 : 1;
    c->x = malloc((size_t)c->nx);
    c->want = calloc((size_t)c->ny, c->esz);
    assert_non_null(c->x);
    assert_non_null(c->want);
    for (int64_t i = 0; i < c->nx; i++)
        c->x[i] = (uint8_t)qrand(0, 255);

    /* the direct formula: sum over (x - zx) w, then the epilogue */
    const int8_t *wv = wq->data;
    int64_t Cg = s->cg, oh = mm ? 1 : c->ydims[2], ow = mm ? 1 : c->ydims[3];
    int64_t P = mm ? s->rows : s->n * oh * ow;
    for (int64_t gi = 0; gi < group; gi++)
        for (int64_t r = 0; r < s->mg; r++)
            for (int64_t p = 0; p < P; p++) {
                int64_t gm = gi * s->mg + r, at;
                int32_t acc = 0;
                if (mm) {
                    for (int64_t k = 0; k < K; k++) {
                        uint8_t v = c->x[p * K + k];
                        int32_t xq = s->xdt == PARE_DT_UINT8 ? v : (int8_t)v;
                        acc += (xq - c->zx) * wv[k * M + gm];
                    }
                    at = p * M + gm;
                } else {
                    int64_t img = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
                    for (int64_t ch = 0; ch < Cg; ch++)
                        for (int64_t ky = 0; ky < 3; ky++)
                            for (int64_t kx = 0; kx < 2; kx++) {
                                int64_t iy = oy * 2 - 1 + ky * 2, ix = ox + kx * 2;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue; /* reads zx: (zx - zx) w = 0 */
                                uint8_t v =
                                    c->x[((img * C + gi * Cg + ch) * s->h + iy) * s->w + ix];
                                int32_t xq = s->xdt == PARE_DT_UINT8 ? v : (int8_t)v;
                                acc += (xq - c->zx) * wv[((gm * Cg + ch) * 3 + ky) * 2 + kx];
                            }
                    at = (img * M + gm) * oh * ow + oy * ow + ox;
                }
                float q = (float)acc * c->G.mult[gm] + (c->G.bias ? c->G.bias[gm] : 0.0f);
                float lo = s->fout ? -INFINITY : -100.0f, hi = s->fout ? INFINITY : 155.0f;
                if (s->relu && lo < 0)
                    lo = 0;
                q = q > lo ? q : lo;
                q = q < hi ? q : hi;
                if (s->fout)
                    ((float *)c->want)[at] = q;
                else
                    ((uint8_t *)c->want)[at] = (uint8_t)((int)rintf(q) + 100);
            }
}

void qdq_case_args(const qdq_case *c, int bm, pcu_qgemm *a)
{
    pare_error err;
    int8_t *pk;
    int32_t *corr, *tab = NULL;
    int64_t Kp, Mpad, yd[4];
    assert_int_equal(pcu_qdq_pack(&c->G, c->d.w_q->data, bm, &pk, &corr, &Kp, &Mpad), PARE_OK);
    if (!c->s.matmul)
        assert_int_equal(pcu_qdq_ktab(&c->G, &tab), PARE_OK);
    assert_int_equal(pcu_qdq_args(&c->G, c->s.xdt, c->xrank, c->xdims, a, yd, &err), PARE_OK);
    a->bm = bm;
    a->Kp = Kp;
    a->Mpad = Mpad;
    a->w = pk;
    a->corr = corr;
    a->mult = c->G.mult;
    a->bias = c->G.bias;
    a->ktab = tab;
    a->x_vec = c->s.matmul && c->G.K % 16 == 0 && (uintptr_t)c->x % 16 == 0;
}

void qdq_case_args_free(pcu_qgemm *a)
{
    free((void *)a->w);
    free((void *)a->corr);
    free((void *)a->ktab);
    a->w = NULL;
    a->corr = NULL;
    a->ktab = NULL;
}

int64_t qdq_case_distinct(const qdq_case *c)
{
    int64_t distinct = 0;
    for (int64_t i = 1; i < c->ny; i++)
        distinct += c->s.fout ? ((float *)c->want)[i] != ((float *)c->want)[i - 1]
                              : ((uint8_t *)c->want)[i] != ((uint8_t *)c->want)[i - 1];
    return distinct;
}

void qdq_case_free(qdq_case *c)
{
    free(c->x);
    free(c->want);
    pare_qdq_geom_release(&c->G);
    for (int i = 0; i < 7; i++)
        pare_tensor_free(c->ts[i]);
    pare_model_free(c->m);
}
