/* Fused QDQ kernels: a Conv, MatMul or Gemm between DequantizeLinear and
 * QuantizeLinear nodes (what pare-quantize --mode static and onnxruntime's
 * quantize_static write) computed on the 8-bit data directly:
 *
 *     DQ(x_q) --+
 *     DQ(w_q) --+-> Conv / MatMul / Gemm [+ DQ(bias) | float bias] [-> Relu] -> Q -> y_q
 *
 * becomes one kernel reading x_q and writing y_q. The executor finds the
 * pattern (lib/exec/session.c, fuse_qdq) and hands the constants over in a
 * pare_kqdq; this file checks that they are what the integer path can
 * reproduce and packs the weights once (qgemm.h).
 *
 * Numerics. The unfused graph computes, in float32,
 *     v = sum (x - zx) xs * (w - zw) ws[m] + b[m],   y = sat(rint(v / ys) + zy)
 * The fused kernel computes the sum exactly in int32 (qgemm.h) and then
 * q = float(acc) * (xs * ws[m] / ys) + b[m] / ys in float32 (the two
 * factors computed in double and rounded once), Relu as max(q, 0), then
 * half to even plus zy, saturated. The difference is only where float
 * rounding happens: the float graph rounds every product, partial sum and
 * the division by ys. Outputs agree exactly except where v / ys falls
 * within a few float ulps of a rounding boundary, where they differ by 1.
 *
 * Also here: the Add / Sum of two dequantized tensors and the inference
 * BatchNormalization of one, each followed by [Relu ->] QuantizeLinear, in
 * the unfused nodes' own float operations (the same bits).
 *
 * Accepted: x uint8 or int8 with a scalar scale and zero point; weights
 * int8 with zero points 0, a scalar scale or one per output channel (the
 * DequantizeLinear axis on the output channel); bias float32 or
 * DequantizeLinear of int32; y uint8 or int8 with scalar parameters; scales
 * float32. Conv: 1-D and 2-D, any group, stride, dilation, pads or
 * auto_pad. MatMul: x of rank >= 2 times a [K, N] constant. Gemm: alpha =
 * beta = 1, transA = 0. Anything else is refused and runs unfused.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"
#include "exec/qgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QF_X86 1
static bool qf_avx512, qf_avx512bw, qf_avx2; /* set when a fused kernel is made */
#else
#define QF_X86 0
#endif
static bool qf_portable; /* pare_kernel_qdq_force_portable */

void pare_kernel_qdq_force_portable(bool on)
{
    qf_portable = on;
}

/* the vector forms the kernels made from now on use (plain C when portable) */
static void qf_pick_isa(void)
{
#if QF_X86
    qf_avx512 = !qf_portable && __builtin_cpu_supports("avx512f");
    qf_avx512bw = qf_avx512 && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl");
    qf_avx2 = !qf_portable && __builtin_cpu_supports("avx2");
#endif
}

#define QF_TILES 4                 /* microkernel tiles per item */
#define QF_PANEL (QF_TILES * QG_NR) /* columns per item, and the row stride of
                                     * a packed panel */

typedef struct qf_state {
    pare_qdq_geom g;                       /* what is computed (pare_qdq_geom_make) */
    bool direct;                           /* stride 1: read a channel-grouped image in
                                            * place (pare_qplane), weights packed with
                                            * k = (tap, channel group, channel) */
    int64_t K;                             /* the packed matrices' K (direct: taps times
                                            * channels rounded up to 4) */
    pare_qgemm_w *w;                       /* one packed matrix per group */
    uint8_t flip, zx;                      /* x's domain move and zero point (uint8) */
    int64_t *poff;                         /* im2col / row panels: row group q at
                                            * 4 q QF_PANEL bytes (K4 entries) */
} qf_state;

static void qf_release(void *p)
{
    qf_state *S = p;
    if (!S)
        return;
    if (S->w)
        for (int64_t g = 0; g < S->g.group; g++)
            pare_qgemm_w_release(&S->w[g]);
    free(S->w);
    pare_qdq_geom_release(&S->g);
    free(S->poff);
    free(S);
}

static int64_t numel(const pare_tensor *t)
{
    return t ? (int64_t)pare_tensor_numel(t) : 0;
}

/* a scalar float32 scale > 0 and finite */
static bool scale_ok(const pare_tensor *t)
{
    if (!t || t->dtype != PARE_DT_FLOAT || numel(t) != 1)
        return false;
    float s = *(const float *)t->data;
    return s > 0 && isfinite(s);
}

/* the zero point of 8-bit type dt (NULL: 0), scalar */
static bool zp_get(const pare_tensor *z, int dt, int32_t *out)
{
    *out = 0;
    if (!z)
        return true;
    if (z->dtype != dt || numel(z) != 1)
        return false;
    *out = dt == PARE_DT_UINT8 ? *(const uint8_t *)z->data : *(const int8_t *)z->data;
    return true;
}

static bool zeros(const pare_tensor *z)
{
    if (!z)
        return true;
    if (z->dtype != PARE_DT_INT8 && z->dtype != PARE_DT_UINT8)
        return false;
    const uint8_t *d = z->data;
    for (int64_t i = 0; i < numel(z); i++)
        if (d[i])
            return false;
    return true;
}

static bool conv_attrs(const pare_node *n, pare_qdq_geom *G)
{
    const int64_t *v;
    size_t c;
    const char *ap = pare_node_attr_string(n, "auto_pad", "NOTSET");
    G->auto_pad = !strcmp(ap, "SAME_UPPER") ? 1 : !strcmp(ap, "SAME_LOWER") ? 2
                  : !strcmp(ap, "VALID")    ? 3 : !strcmp(ap, "NOTSET") ? 0 : -1;
    if (G->auto_pad < 0)
        return false;
    G->group = pare_node_attr_int(n, "group", 1);
    int nd = G->nd;
    int64_t st[2] = {1, 1}, dl[2] = {1, 1}, pd[4] = {0, 0, 0, 0};
    if ((c = pare_node_attr_ints(n, "strides", &v))) {
        if ((int)c != nd)
            return false;
        memcpy(st + 2 - nd, v, c * sizeof *v);
    }
    if ((c = pare_node_attr_ints(n, "dilations", &v))) {
        if ((int)c != nd)
            return false;
        memcpy(dl + 2 - nd, v, c * sizeof *v);
    }
    if ((c = pare_node_attr_ints(n, "pads", &v))) {
        if ((int)c != 2 * nd)
            return false;
        if (nd == 2) {
            pd[0] = v[0];
            pd[1] = v[1];
            pd[2] = v[2];
            pd[3] = v[3];
        } else {
            pd[1] = v[0];
            pd[3] = v[1];
        }
    }
    if ((c = pare_node_attr_ints(n, "kernel_shape", &v))) {
        if ((int)c != nd || v[0] != (nd == 2 ? G->kh : G->kw) || (nd == 2 && v[1] != G->kw))
            return false;
    }
    G->sh = st[0];
    G->sw = st[1];
    G->dh = dl[0];
    G->dw = dl[1];
    memcpy(G->pads, pd, sizeof pd);
    for (int i = 0; i < 4; i++)
        if (pd[i] < 0 || pd[i] > (int64_t)1 << 30)
            return false;
    return G->group >= 1 && G->sh >= 1 && G->sw >= 1 && G->dh >= 1 && G->dw >= 1 &&
           G->sh <= 1 << 20 && G->sw <= 1 << 20 && G->dh <= 1 << 20 && G->dw <= 1 << 20;
}

/* A stride-1 convolution's weights of one group in the order the in-place
 * reads want: k = (ky * kw + kx, channel group c4, channel within it),
 * channels past Cg zero. */
static pare_status qf_pack_direct(const qf_state *S, const int8_t *wg, pare_qgemm_w *out)
{
    int64_t taps = S->g.kh * S->g.kw, C4 = (S->g.Cg + 3) / 4, Kd = taps * C4 * 4;
    int8_t *wd = calloc((size_t)(S->g.Mg * Kd), 1);
    if (!wd)
        return PARE_ERR_NOMEM;
    for (int64_t m = 0; m < S->g.Mg; m++)
        for (int64_t c = 0; c < S->g.Cg; c++)
            for (int64_t t = 0; t < taps; t++)
                wd[m * Kd + (t * C4 + c / 4) * 4 + c % 4] = wg[(m * S->g.Cg + c) * taps + t];
    pare_status st = pare_qgemm_pack_w(wd, S->g.Mg, Kd, Kd, 1, out);
    free(wd);
    return st;
}

/* ---- Add / Sum of two dequantized tensors ------------------------------ */

/* y = Q(Relu(DQ(a) + DQ(b))) element by element, in the float32 operations
 * and order of the unfused nodes: the same bits. */
typedef struct qf_add_state {
    float sa, sb, ys;
    int32_t za, zb, zy, lo, hi;
    int adt, bdt, ydt;
    bool relu;
} qf_add_state;

static const pare_kernel qf_add_kernel;

static pare_status qf_add_make(const pare_kqdq *d, const pare_kernel **k, void **state)
{
    qf_add_state A;
    memset(&A, 0, sizeof A);
    bool ok8 = (d->x_dtype == PARE_DT_UINT8 || d->x_dtype == PARE_DT_INT8) &&
               (d->b_dtype == PARE_DT_UINT8 || d->b_dtype == PARE_DT_INT8) &&
               (d->y_dtype == PARE_DT_UINT8 || d->y_dtype == PARE_DT_INT8);
    if (!ok8 || !scale_ok(d->x_scale) || !scale_ok(d->b_scale) || !scale_ok(d->y_scale) ||
        !zp_get(d->x_zp, d->x_dtype, &A.za) || !zp_get(d->b_zp, d->b_dtype, &A.zb) ||
        !zp_get(d->y_zp, d->y_dtype, &A.zy))
        return PARE_ERR_UNSUPPORTED;
    A.sa = *(const float *)d->x_scale->data;
    A.sb = *(const float *)d->b_scale->data;
    A.ys = *(const float *)d->y_scale->data;
    A.adt = d->x_dtype;
    A.bdt = d->b_dtype;
    A.ydt = d->y_dtype;
    A.lo = d->y_dtype == PARE_DT_UINT8 ? 0 : -128;
    A.hi = d->y_dtype == PARE_DT_UINT8 ? 255 : 127;
    A.relu = d->relu;
    qf_add_state *S = malloc(sizeof *S);
    if (!S)
        return PARE_ERR_NOMEM;
    qf_pick_isa();
    *S = A;
    *k = &qf_add_kernel;
    *state = S;
    return PARE_OK;
}

typedef struct qf_add_job {
    const qf_add_state *S;
    const void *a, *b;
    void *y;
} qf_add_job;

/* Relu (floor0 0, else -inf) and QuantizeLinear of a float value as the
 * unfused nodes do it: v / ys, saturated to [lo, hi] (y's range less its
 * zero point), half to even (|q| <= 255), plus zy */
static inline uint8_t qf_requant(float v, float floor0, float ys, float lo, float hi, int32_t zy)
{
    v = v > floor0 ? v : floor0;
    float q = v / ys;
    q = q > lo ? q : lo;
    q = q < hi ? q : hi;
    q = (q + 12582912.0f) - 12582912.0f;
    return (uint8_t)((int32_t)q + zy);
}

static inline int32_t qf_ld8(int dt, const void *p, int64_t i)
{
    return dt == PARE_DT_UINT8 ? ((const uint8_t *)p)[i] : ((const int8_t *)p)[i];
}

#if QF_X86
static inline __attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) __m512
qf_dq16(int dt, const void *p, int64_t i, __mmask16 m, __m512i z, __m512 s)
{
    __m128i b = _mm_maskz_loadu_epi8(m, (const uint8_t *)p + i);
    __m512i v = dt == PARE_DT_UINT8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, z)), s);
}

/* qf_add_range 16 at a time: the same operations, the same bits */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
qf_add_range512(const qf_add_job *J, int64_t b, int64_t e)
{
    const qf_add_state *S = J->S;
    __m512i za = _mm512_set1_epi32(S->za), zb = _mm512_set1_epi32(S->zb),
            zy = _mm512_set1_epi32(S->zy);
    __m512 sa = _mm512_set1_ps(S->sa), sb = _mm512_set1_ps(S->sb), ys = _mm512_set1_ps(S->ys);
    __m512 lo = _mm512_set1_ps((float)(S->lo - S->zy)), hi = _mm512_set1_ps((float)(S->hi - S->zy));
    if (S->relu)
        lo = _mm512_max_ps(lo, _mm512_setzero_ps());
    __m512 magic = _mm512_set1_ps(12582912.0f);
    for (int64_t i = b; i < e; i += 16) {
        __mmask16 m = e - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (e - i)) - 1);
        __m512 v = _mm512_add_ps(qf_dq16(S->adt, J->a, i, m, za, sa),
                                 qf_dq16(S->bdt, J->b, i, m, zb, sb));
        __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(v, ys), lo), hi);
        q = _mm512_sub_ps(_mm512_add_ps(q, magic), magic);
        _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)J->y + i, m,
                                         _mm512_add_epi32(_mm512_cvttps_epi32(q), zy));
    }
}
#endif

#if QF_X86
static inline __attribute__((target("avx2"), always_inline)) __m256
qf_dq8(int dt, const void *p, int64_t i, __m256i z, __m256 s)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)((const uint8_t *)p + i));
    __m256i v = dt == PARE_DT_UINT8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s);
}

/* qf_add_range 8 at a time on AVX2 (as qf_add_range512); returns where it
 * stopped (fewer than 8 left) */
__attribute__((target("avx2"))) static int64_t qf_add_range256(const qf_add_job *J, int64_t b,
                                                               int64_t e)
{
    const qf_add_state *S = J->S;
    __m256i za = _mm256_set1_epi32(S->za), zb = _mm256_set1_epi32(S->zb),
            zy = _mm256_set1_epi32(S->zy);
    __m256 sa = _mm256_set1_ps(S->sa), sb = _mm256_set1_ps(S->sb), ys = _mm256_set1_ps(S->ys);
    __m256 lo = _mm256_set1_ps((float)(S->lo - S->zy)), hi = _mm256_set1_ps((float)(S->hi - S->zy));
    if (S->relu)
        lo = _mm256_max_ps(lo, _mm256_setzero_ps());
    __m256 magic = _mm256_set1_ps(12582912.0f);
    bool u8 = S->ydt == PARE_DT_UINT8;
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
        __m256 v = _mm256_add_ps(qf_dq8(S->adt, J->a, i, za, sa), qf_dq8(S->bdt, J->b, i, zb, sb));
        __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, ys), lo), hi);
        q = _mm256_sub_ps(_mm256_add_ps(q, magic), magic);
        __m256i r = _mm256_add_epi32(_mm256_cvttps_epi32(q), zy);
        __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        h = u8 ? _mm_packus_epi16(h, h) : _mm_packs_epi16(h, h);
        _mm_storel_epi64((__m128i *)(void *)((uint8_t *)J->y + i), h);
    }
    return i;
}
#endif

static void qf_add_range(void *ctx, int64_t b, int64_t e)
{
    const qf_add_job *J = ctx;
    const qf_add_state *S = J->S;
#if QF_X86
    if (qf_avx512bw) {
        qf_add_range512(J, b, e);
        return;
    }
    if (qf_avx2)
        b = qf_add_range256(J, b, e);
#endif
    float lo = (float)(S->lo - S->zy), hi = (float)(S->hi - S->zy);
    float floor0 = S->relu ? 0.0f : -INFINITY;
    uint8_t *y = J->y;
    for (int64_t i = b; i < e; i++) {
        float va = (float)(qf_ld8(S->adt, J->a, i) - S->za) * S->sa;
        float vb = (float)(qf_ld8(S->bdt, J->b, i) - S->zb) * S->sb;
        y[i] = qf_requant(va + vb, floor0, S->ys, lo, hi, S->zy);
    }
}

static pare_status qf_add_run(pare_kctx *k, pare_error *err)
{
    const qf_add_state *S = k->state;
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
    pare_status st = k->alloc_out(k, 0, S->ydt, a->rank, a->dims, &y, err);
    if (st)
        return st;
    qf_add_job J = {S, a->data, b->data, y->data};
    pare_parallel_for(k->pool, numel(a), 16384, qf_add_range, &J);
    return PARE_OK;
}

static const pare_kernel qf_add_kernel = {"", "QDQAdd", 1, 0, NULL, qf_add_run, free, NULL};

/* ---- BatchNormalization of a dequantized tensor ------------------------ */

/* y = Q(Relu(BN(DQ(x)))) channel by channel, in the float32 operations and
 * order of the unfused nodes (DequantizeLinear, BatchNormalization's
 * x * a + b with a and b as its kernel computes them, Relu,
 * QuantizeLinear's division): the same bits. */
void pare_qdq_bn_release(pare_qdq_bn *S)
{
    if (S) {
        free(S->a);
        free(S->b);
        S->a = S->b = NULL;
    }
}

static void qf_bn_release(void *p)
{
    pare_qdq_bn_release(p);
    free(p);
}

static const pare_kernel qf_bn_kernel;

pare_status pare_qdq_bn_make(const pare_kqdq *d, pare_qdq_bn *A)
{
    memset(A, 0, sizeof *A);
    bool ok8 = (d->x_dtype == PARE_DT_UINT8 || d->x_dtype == PARE_DT_INT8) &&
               (d->y_dtype == PARE_DT_UINT8 || d->y_dtype == PARE_DT_INT8);
    if (d->float_out || !ok8 || !scale_ok(d->x_scale) || !scale_ok(d->y_scale) ||
        !zp_get(d->x_zp, d->x_dtype, &A->zx) || !zp_get(d->y_zp, d->y_dtype, &A->zy))
        return PARE_ERR_UNSUPPORTED;
    A->C = numel(d->bn[0]);
    for (int j = 0; j < 4; j++)
        if (!d->bn[j] || d->bn[j]->dtype != PARE_DT_FLOAT || numel(d->bn[j]) != A->C)
            return PARE_ERR_UNSUPPORTED;
    if (A->C < 1)
        return PARE_ERR_UNSUPPORTED;
    A->sx = *(const float *)d->x_scale->data;
    A->ys = *(const float *)d->y_scale->data;
    A->xdt = d->x_dtype;
    A->ydt = d->y_dtype;
    A->lo = d->y_dtype == PARE_DT_UINT8 ? 0 : -128;
    A->hi = d->y_dtype == PARE_DT_UINT8 ? 255 : 127;
    A->relu = d->relu;
    A->a = malloc((size_t)A->C * sizeof *A->a);
    A->b = malloc((size_t)A->C * sizeof *A->b);
    if (!A->a || !A->b) {
        pare_qdq_bn_release(A);
        return PARE_ERR_NOMEM;
    }
    const float *sc = d->bn[0]->data, *bb = d->bn[1]->data, *mu = d->bn[2]->data,
                *var = d->bn[3]->data;
    double eps = d->bn_eps;
    for (int64_t c = 0; c < A->C; c++) { /* as BatchNormalization's kernel */
        double aa = (double)sc[c] / sqrt((double)var[c] + eps), b0 = (double)bb[c] - (double)mu[c] * aa;
        if (d->bn_scale) { /* Mul / Add after it: composed in double, once */
            b0 = b0 * d->bn_scale[c] + d->bn_shift[c];
            aa *= d->bn_scale[c];
        }
        A->a[c] = (float)aa;
        A->b[c] = (float)b0;
        if (!isfinite(A->a[c]) || !isfinite(A->b[c])) {
            pare_qdq_bn_release(A);
            return PARE_ERR_UNSUPPORTED;
        }
    }
    return PARE_OK;
}

static pare_status qf_bn_make(const pare_kqdq *d, const pare_kernel **k, void **state)
{
    pare_qdq_bn *S = malloc(sizeof *S);
    if (!S)
        return PARE_ERR_NOMEM;
    pare_status st = pare_qdq_bn_make(d, S);
    if (st) {
        free(S);
        return st;
    }
    qf_pick_isa();
    *k = &qf_bn_kernel;
    *state = S;
    return PARE_OK;
}

typedef struct qf_bn_job {
    const pare_qdq_bn *S;
    int64_t plane;
    const void *x;
    uint8_t *y;
} qf_bn_job;

#if QF_X86
/* 16 at a time (AVX-512): the scalar loop's operations; returns where it stopped */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static int64_t
qf_bn_plane512(const pare_qdq_bn *S, int64_t c, const void *x, uint8_t *y, int64_t n)
{
    __m512i zx = _mm512_set1_epi32(S->zx), zy = _mm512_set1_epi32(S->zy);
    __m512 sx = _mm512_set1_ps(S->sx), ys = _mm512_set1_ps(S->ys), va = _mm512_set1_ps(S->a[c]),
           vb = _mm512_set1_ps(S->b[c]), magic = _mm512_set1_ps(12582912.0f);
    __m512 lo = _mm512_set1_ps((float)(S->lo - S->zy)), hi = _mm512_set1_ps((float)(S->hi - S->zy));
    if (S->relu)
        lo = _mm512_max_ps(lo, _mm512_setzero_ps());
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(qf_dq16(S->xdt, x, i, 0xffff, zx, sx), va), vb);
        __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(v, ys), lo), hi);
        q = _mm512_sub_ps(_mm512_add_ps(q, magic), magic);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, 0xffff, _mm512_add_epi32(_mm512_cvttps_epi32(q), zy));
    }
    return i;
}

/* 8 at a time (AVX2) */
__attribute__((target("avx2"))) static int64_t
qf_bn_plane256(const pare_qdq_bn *S, int64_t c, const void *x, uint8_t *y, int64_t n)
{
    __m256i zx = _mm256_set1_epi32(S->zx), zy = _mm256_set1_epi32(S->zy);
    __m256 sx = _mm256_set1_ps(S->sx), ys = _mm256_set1_ps(S->ys), va = _mm256_set1_ps(S->a[c]),
           vb = _mm256_set1_ps(S->b[c]), magic = _mm256_set1_ps(12582912.0f);
    __m256 lo = _mm256_set1_ps((float)(S->lo - S->zy)), hi = _mm256_set1_ps((float)(S->hi - S->zy));
    if (S->relu)
        lo = _mm256_max_ps(lo, _mm256_setzero_ps());
    bool u8 = S->ydt == PARE_DT_UINT8;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(qf_dq8(S->xdt, x, i, zx, sx), va), vb);
        __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, ys), lo), hi);
        q = _mm256_sub_ps(_mm256_add_ps(q, magic), magic);
        __m256i r = _mm256_add_epi32(_mm256_cvttps_epi32(q), zy);
        __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        h = u8 ? _mm_packus_epi16(h, h) : _mm_packs_epi16(h, h);
        _mm_storel_epi64((__m128i *)(void *)(y + i), h);
    }
    return i;
}
#endif

static void qf_bn_range(void *ctx, int64_t b, int64_t e)
{
    const qf_bn_job *J = ctx;
    const pare_qdq_bn *S = J->S;
    float lo = (float)(S->lo - S->zy), hi = (float)(S->hi - S->zy);
    float floor0 = S->relu ? 0.0f : -INFINITY;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % S->C, i = 0;
        const void *x = (const uint8_t *)J->x + pl * J->plane;
        uint8_t *y = J->y + pl * J->plane;
#if QF_X86
        if (qf_avx512bw)
            i = qf_bn_plane512(S, c, x, y, J->plane);
        else if (qf_avx2)
            i = qf_bn_plane256(S, c, x, y, J->plane);
#endif
        float a = S->a[c], bb = S->b[c];
        for (; i < J->plane; i++) {
            float v = (float)(qf_ld8(S->xdt, x, i) - S->zx) * S->sx;
            y[i] = qf_requant(v * a + bb, floor0, S->ys, lo, hi, S->zy);
        }
    }
}

static pare_status qf_bn_run(pare_kctx *k, pare_error *err)
{
    const pare_qdq_bn *S = k->state;
    const pare_tensor *x = k->n_in ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    if (x->dtype != S->xdt)
        return pare_error_set(err, PARE_ERR_INVALID, "input is %s", pare_dtype_name(x->dtype));
    if (x->rank < 2 || x->dims[1] != S->C)
        return pare_error_set(err, PARE_ERR_INVALID, "input has %lld channels, the parameters %lld",
                              (long long)(x->rank < 2 ? 0 : x->dims[1]), (long long)S->C);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->ydt, x->rank, x->dims, &y, err);
    if (st)
        return st;
    int64_t plane = 1;
    for (int i = 2; i < x->rank; i++)
        plane *= x->dims[i];
    qf_bn_job J = {S, plane, x->data, y->data};
    pare_parallel_for(k->pool, x->dims[0] * S->C, plane >= 16384 ? 1 : 16384 / (plane ? plane : 1),
                      qf_bn_range, &J);
    return PARE_OK;
}

static const pare_kernel qf_bn_kernel = {"", "QDQBatchNormalization", 1, 0, NULL, qf_bn_run,
                                         qf_bn_release, NULL};

void pare_qdq_geom_release(pare_qdq_geom *G)
{
    free(G->mult);
    free(G->bias);
    G->mult = G->bias = NULL;
}

pare_status pare_qdq_geom_make(const pare_kqdq *d, pare_qdq_geom *G)
{
    memset(G, 0, sizeof *G);
    const pare_node *n = d->op;
    bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
    if (!conv && !gemm && strcmp(n->op_type, "MatMul"))
        return PARE_ERR_UNSUPPORTED;
    const pare_tensor *w = d->w_q;
    int32_t zx = 0, zy = 0;
    bool yok = d->float_out || ((d->y_dtype == PARE_DT_UINT8 || d->y_dtype == PARE_DT_INT8) &&
                                scale_ok(d->y_scale) && zp_get(d->y_zp, d->y_dtype, &zy));
    if ((d->x_dtype != PARE_DT_UINT8 && d->x_dtype != PARE_DT_INT8) || !yok || !w ||
        w->dtype != PARE_DT_INT8 || !scale_ok(d->x_scale) || !zp_get(d->x_zp, d->x_dtype, &zx) ||
        !zeros(d->w_zp) || !d->w_scale || d->w_scale->dtype != PARE_DT_FLOAT ||
        (d->w_zp && d->w_zp->dtype != PARE_DT_INT8))
        return PARE_ERR_UNSUPPORTED;
    int64_t M, K, ch_axis;
    if (conv) {
        if (w->rank != 3 && w->rank != 4)
            return PARE_ERR_UNSUPPORTED;
        G->kind = PARE_QDQ_CONV;
        G->nd = w->rank - 2;
        G->kh = G->nd == 2 ? w->dims[2] : 1;
        G->kw = w->dims[w->rank - 1];
        if (!conv_attrs(n, G))
            return PARE_ERR_UNSUPPORTED;
        M = w->dims[0];
        G->Cg = w->dims[1];
        if (M % G->group)
            return PARE_ERR_UNSUPPORTED;
        G->Mg = M / G->group;
        K = G->Cg * G->kh * G->kw;
        G->sm = K;
        G->sk = 1;
        ch_axis = 0;
    } else {
        if (w->rank != 2)
            return PARE_ERR_UNSUPPORTED;
        bool tb = gemm && pare_node_attr_int(n, "transB", 0);
        if (gemm && (pare_node_attr_int(n, "transA", 0) || pare_node_attr_float(n, "alpha", 1) != 1.0f ||
                     pare_node_attr_float(n, "beta", 1) != 1.0f))
            return PARE_ERR_UNSUPPORTED;
        G->kind = PARE_QDQ_MATMUL;
        G->group = 1;
        K = tb ? w->dims[1] : w->dims[0];
        M = tb ? w->dims[0] : w->dims[1];
        G->sm = tb ? K : 1;
        G->sk = tb ? 1 : M;
        ch_axis = tb ? 0 : 1;
        G->Mg = M;
    }
    if (M < 1 || K < 1 || K > (1 << 24))
        return PARE_ERR_UNSUPPORTED;
    G->M = M;
    G->K = K;
    /* weight scales: one, or one per output channel along ch_axis */
    int64_t nws = numel(d->w_scale);
    int64_t wax = d->w_axis < 0 ? d->w_axis + w->rank : d->w_axis;
    if (nws != 1 && (nws != M || wax != ch_axis || d->w_scale->rank != 1))
        return PARE_ERR_UNSUPPORTED;
    if (d->w_zp && numel(d->w_zp) != nws)
        return PARE_ERR_UNSUPPORTED;
    pare_status st = PARE_ERR_UNSUPPORTED;
    float xs = *(const float *)d->x_scale->data;
    G->mult = malloc((size_t)M * sizeof *G->mult);
    if (!G->mult)
        goto nomem;
    const float *wsv = d->w_scale->data;
    for (int64_t m = 0; m < M; m++) {
        float ws = wsv[nws == 1 ? 0 : m];
        if (!(ws > 0) || !isfinite(ws))
            goto fail;
        G->mult[m] = xs * ws;
    }
    /* bias */
    if (d->bias_vec || d->bias_f || d->bias_q) {
        G->bias = malloc((size_t)M * sizeof *G->bias);
        if (!G->bias)
            goto nomem;
        if (d->bias_vec) {
            memcpy(G->bias, d->bias_vec, (size_t)M * sizeof *G->bias);
        } else if (d->bias_f) {
            const pare_tensor *b = d->bias_f;
            if (b->dtype != PARE_DT_FLOAT || numel(b) != M)
                goto fail;
            memcpy(G->bias, b->data, (size_t)M * sizeof *G->bias);
        } else {
            const pare_tensor *b = d->bias_q, *bs = d->bias_scale;
            int64_t nbs = numel(bs);
            if (b->dtype != PARE_DT_INT32 || numel(b) != M || !bs || bs->dtype != PARE_DT_FLOAT ||
                (nbs != 1 && nbs != M) || (d->bias_zp && (d->bias_zp->dtype != PARE_DT_INT32 ||
                                                          numel(d->bias_zp) != nbs)))
                goto fail;
            const int32_t *bq = b->data, *bz = d->bias_zp ? d->bias_zp->data : NULL;
            const float *bsv = bs->data;
            for (int64_t m = 0; m < M; m++) {
                int64_t j = nbs == 1 ? 0 : m;
                /* DequantizeLinear of int32: (b - zp) * s in float32 */
                G->bias[m] = (float)((double)bq[m] - (bz ? bz[j] : 0)) * bsv[j];
            }
        }
        for (int64_t m = 0; m < M; m++)
            if (!isfinite(G->bias[m]))
                goto fail;
    }
    G->fout = d->float_out;
    /* in units of y's scale: one multiply and one add per output */
    float ys = d->float_out ? 1.0f : *(const float *)d->y_scale->data;
    for (int64_t m = 0; m < M && !G->fout; m++) {
        G->mult[m] = (float)((double)G->mult[m] / ys);
        if (G->bias)
            G->bias[m] = (float)((double)G->bias[m] / ys);
        if (!isfinite(G->mult[m]) || (G->bias && !isfinite(G->bias[m])))
            goto fail;
    }
    G->zx = zx;
    G->zy = zy;
    G->xdt = d->x_dtype;
    G->ydt = d->float_out ? PARE_DT_FLOAT : d->y_dtype;
    G->lo = d->y_dtype == PARE_DT_UINT8 ? 0 : -128;
    G->hi = d->y_dtype == PARE_DT_UINT8 ? 255 : 127;
    G->relu = d->relu;
    return PARE_OK;
nomem:
    st = PARE_ERR_NOMEM;
fail:
    pare_qdq_geom_release(G);
    return st;
}

pare_status pare_kernel_qdq(const pare_kqdq *d, const pare_kernel **k, void **state,
                            pare_error *err)
{
    (void)err;
    const pare_node *n = d->op;
    if (!strcmp(n->op_type, "Add") || !strcmp(n->op_type, "Sum"))
        return qf_add_make(d, k, state);
    if (!strcmp(n->op_type, "BatchNormalization"))
        return qf_bn_make(d, k, state);
    qf_state *S = calloc(1, sizeof *S);
    if (!S)
        return PARE_ERR_NOMEM;
    pare_status st = pare_qdq_geom_make(d, &S->g);
    if (st) {
        free(S);
        return st;
    }
    const pare_qdq_geom *G = &S->g;
    S->direct = G->kind == PARE_QDQ_CONV && G->sh == 1 && G->sw == 1;
    S->K = G->K;
    S->flip = G->xdt == PARE_DT_INT8 ? 0x80 : 0;
    S->zx = (uint8_t)(G->zx + (G->xdt == PARE_DT_INT8 ? 128 : 0));
    /* the weights, one matrix per group */
    S->w = calloc((size_t)G->group, sizeof *S->w);
    if (!S->w)
        goto nomem;
    for (int64_t g = 0; g < G->group; g++) {
        const int8_t *wg = (const int8_t *)d->w_q->data + g * G->Mg * G->K;
        if (S->direct) {
            if ((st = qf_pack_direct(S, wg, &S->w[g])))
                goto fail;
        } else if ((st = pare_qgemm_pack_w(wg, G->Mg, G->K, G->sm, G->sk, &S->w[g]))) {
            goto fail;
        }
    }
    if (S->direct) {
        S->K = G->kh * G->kw * ((G->Cg + 3) / 4) * 4;
    } else { /* packed panels: the same offsets for every panel */
        int64_t K4 = (S->K + 3) / 4;
        if (!(S->poff = malloc((size_t)K4 * sizeof *S->poff)))
            goto nomem;
        pare_qgemm_panel_offsets(K4, QF_PANEL, S->poff);
    }
    (void)pare_qgemm_arch(); /* picks the microkernel before any thread runs */
    qf_pick_isa();
    *k = &pare_kernel_qdq_fused;
    *state = S;
    return PARE_OK;
nomem:
    st = PARE_ERR_NOMEM;
fail:
    qf_release(S);
    return st;
}

/* ---- the epilogue ------------------------------------------------------ */

/* The valid columns of one microkernel tile: acc columns j .. j+run-1 go
 * to output indices idx .. idx+run-1. */
typedef struct qf_seg {
    int64_t j, run, idx;
} qf_seg;

#if QF_X86
/* qf_store_tile with contiguous outputs, 16 at a time (the same operations
 * in the same order, so the same bits) */
__attribute__((target("avx512f"))) static void
qf_store_tile512(const qf_state *S, const pare_qgemm_w *w, int64_t m0, int64_t mr, int64_t moff,
                 const int32_t *acc, const qf_seg *sg, int nseg, void *y, int64_t rstride)
{
    __m512i vz = _mm512_set1_epi32(S->g.zy);
    __m512 lo = _mm512_set1_ps(S->g.fout ? -INFINITY : (float)(S->g.lo - S->g.zy)),
           hi = _mm512_set1_ps(S->g.fout ? INFINITY : (float)(S->g.hi - S->g.zy));
    if (S->g.relu)
        lo = _mm512_max_ps(lo, _mm512_setzero_ps()); /* Relu: max(q, 0) */
    for (int64_t i = 0; i < mr; i++) {
        int64_t m = moff + m0 + i;
        __m512i vc = _mm512_set1_epi32((int32_t)S->zx * w->rowsum[m0 + i]);
        __m512 vm = _mm512_set1_ps(S->g.mult[m]), vb = _mm512_set1_ps(S->g.bias ? S->g.bias[m] : 0.0f);
        const int32_t *ar = acc + i * QG_NR;
        for (int s = 0; s < nseg; s++)
            for (int64_t j = 0; j < sg[s].run; j += 16) {
                int64_t left = sg[s].run - j, at = (m0 + i) * rstride + sg[s].idx + j;
                __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                __m512i a = _mm512_maskz_loadu_epi32(k, ar + sg[s].j + j);
                __m512 q = _mm512_add_ps(
                    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, vc)), vm), vb);
                q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
                if (S->g.fout) {
                    _mm512_mask_storeu_ps((float *)y + at, k, q);
                    continue;
                }
                /* half to even, as the scalar 1.5 * 2^23 trick for |q| <= 255 */
                __m512i r = _mm512_cvt_roundps_epi32(q, _MM_FROUND_TO_NEAREST_INT |
                                                            _MM_FROUND_NO_EXC);
                _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)y + at, k, _mm512_add_epi32(r, vz));
            }
    }
}
#endif

#if QF_X86
/* qf_store_tile with contiguous outputs, 8 at a time on AVX2 (the same
 * operations in the same order; the last few of a run go one by one) */
__attribute__((target("avx2"))) static void
qf_store_tile256(const qf_state *S, const pare_qgemm_w *w, int64_t m0, int64_t mr, int64_t moff,
                 const int32_t *acc, const qf_seg *sg, int nseg, void *y, int64_t rstride)
{
    float flo = S->g.fout ? -INFINITY : (float)(S->g.lo - S->g.zy),
          fhi = S->g.fout ? INFINITY : (float)(S->g.hi - S->g.zy);
    if (S->g.relu && flo < 0)
        flo = 0; /* Relu: max(q, 0) */
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    __m256i vz = _mm256_set1_epi32(S->g.zy);
    bool u8 = S->g.ydt == PARE_DT_UINT8;
    for (int64_t i = 0; i < mr; i++) {
        int64_t m = moff + m0 + i;
        int32_t corr = (int32_t)S->zx * w->rowsum[m0 + i];
        float mul = S->g.mult[m], b = S->g.bias ? S->g.bias[m] : 0.0f;
        __m256i vc = _mm256_set1_epi32(corr);
        __m256 vm = _mm256_set1_ps(mul), vb = _mm256_set1_ps(b);
        const int32_t *ar = acc + i * QG_NR;
        for (int s = 0; s < nseg; s++) {
            int64_t j = 0, at0 = (m0 + i) * rstride + sg[s].idx;
            for (; j + 8 <= sg[s].run; j += 8) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(ar + sg[s].j + j));
                __m256 q = _mm256_add_ps(
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(a, vc)), vm), vb);
                q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
                if (S->g.fout) {
                    _mm256_storeu_ps((float *)y + at0 + j, q);
                    continue;
                }
                __m256i r = _mm256_add_epi32(
                    _mm256_cvtps_epi32(_mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT |
                                                              _MM_FROUND_NO_EXC)),
                    vz);
                __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(r),
                                            _mm256_extracti128_si256(r, 1));
                h = u8 ? _mm_packus_epi16(h, h) : _mm_packs_epi16(h, h);
                _mm_storel_epi64((__m128i *)(void *)((uint8_t *)y + at0 + j), h);
            }
            for (; j < sg[s].run; j++) {
                float q = (float)(ar[sg[s].j + j] - corr) * mul + b;
                q = q > flo ? q : flo;
                q = q < fhi ? q : fhi;
                if (S->g.fout) {
                    ((float *)y)[at0 + j] = q;
                    continue;
                }
                q = (q + 12582912.0f) - 12582912.0f; /* half to even, |q| <= 255 */
                ((uint8_t *)y)[at0 + j] = (uint8_t)((int32_t)q + S->g.zy);
            }
        }
    }
}
#endif

/* Rows m0 .. m0+mr-1 of a tile of int32 sums (row r: output channel
 * moff + r) to outputs at y + r * rstride + idx * cstride:
 * q = (acc - zx * rowsum) * mult + bias in units of y's scale, Relu as
 * max(q, 0), rounded half to even, plus zy, saturated (float outputs:
 * q itself, after the Relu). */
static void qf_store_tile(const qf_state *S, const pare_qgemm_w *w, int64_t m0, int64_t mr,
                          int64_t moff, const int32_t *acc, const qf_seg *sg, int nseg, void *y,
                          int64_t rstride, int64_t cstride)
{
#if QF_X86
    if (cstride == 1 && qf_avx512) {
        qf_store_tile512(S, w, m0, mr, moff, acc, sg, nseg, y, rstride);
        return;
    }
    if (cstride == 1 && qf_avx2) {
        qf_store_tile256(S, w, m0, mr, moff, acc, sg, nseg, y, rstride);
        return;
    }
#endif
    /* float32 output: no clamp, no rounding */
    float lo = S->g.fout ? -INFINITY : (float)(S->g.lo - S->g.zy),
          hi = S->g.fout ? INFINITY : (float)(S->g.hi - S->g.zy);
    if (S->g.relu && lo < 0)
        lo = 0; /* Relu: max(q, 0) */
    for (int64_t i = 0; i < mr; i++) {
        int64_t m = moff + m0 + i;
        int32_t corr = (int32_t)S->zx * w->rowsum[m0 + i];
        float mul = S->g.mult[m], b = S->g.bias ? S->g.bias[m] : 0.0f;
        for (int s = 0; s < nseg; s++) {
            const int32_t *ar = acc + i * QG_NR + sg[s].j;
            int64_t at = (m0 + i) * rstride + sg[s].idx * cstride;
            for (int64_t j = 0; j < sg[s].run; j++) {
                float q = (float)(ar[j] - corr) * mul + b;
                q = q > lo ? q : lo;
                q = q < hi ? q : hi;
                if (S->g.fout) {
                    ((float *)y)[at + j * cstride] = q;
                    continue;
                }
                q = (q + 12582912.0f) - 12582912.0f; /* half to even, |q| <= 255 */
                ((uint8_t *)y)[at + j * cstride] = (uint8_t)((int32_t)q + S->g.zy);
            }
        }
    }
}

/* The products of the columns vbase .. vbase+nn-1 (B lanes at b + 4 j,
 * groups at off[]) with row blocks mb0 .. mb1-1 of w, stored through
 * qf_store_tile: row r is output channel moff + r. Column v is output
 * index (v / wp) * ow + v % wp, and dropped when v % wp >= ow (the
 * virtual columns of pare_qplane; wp = ow = INT64_MAX: v itself). */
typedef struct qf_cols {
    const uint8_t *b;
    const int64_t *off;
    int64_t vbase, nn, wp, ow;
} qf_cols;


static void qf_product(const qf_state *S, const pare_qgemm_w *w, int64_t mb0, int64_t mb1,
                       const qf_cols *c, int64_t moff, void *y, int64_t rstride,
                       int64_t cstride)
{
    int32_t acc[QG_MR * QG_NR];
    qf_seg sg[QF_TILES][QG_NR];
    int nseg[QF_TILES];
    int64_t ntile = (c->nn + QG_NR - 1) / QG_NR;
    for (int64_t t = 0; t < ntile; t++) { /* the same for every row block */
        int64_t cnt = c->nn - t * QG_NR < QG_NR ? c->nn - t * QG_NR : QG_NR;
        nseg[t] = 0;
        for (int64_t j = 0; j < cnt;) {
            int64_t v = c->vbase + t * QG_NR + j, ox = v % c->wp;
            if (ox >= c->ow) {
                j += c->wp - ox;
                continue;
            }
            int64_t run = c->ow - ox < cnt - j ? c->ow - ox : cnt - j;
            sg[t][nseg[t]++] = (qf_seg){j, run, (v / c->wp) * c->ow + ox};
            j += run;
        }
    }
    int64_t mbn = (w->M + QG_MR - 1) / QG_MR;
    if (mb1 > mbn)
        mb1 = mbn;
    for (int64_t mb = mb0; mb < mb1; mb++) {
        int64_t m0 = mb * QG_MR, mr = w->M - m0 < QG_MR ? w->M - m0 : QG_MR;
        for (int64_t t = 0; t < ntile; t++) {
            pare_qgemm_block(w, m0, c->b + t * QG_NR * 4, c->off, acc);
            qf_store_tile(S, w, m0, mr, moff, acc, sg[t], nseg[t], y, rstride, cstride);
        }
    }
}

/* ---- Conv ------------------------------------------------------------- */


/* Items (image, group, panel of QF_PANEL columns, chunk of M) over either
 *   direct:  the channel-grouped padded images of every (image, group),
 *            packed first (stride 1), columns virtual (see pare_qplane);
 *   im2col:  panels packed by the item itself, or all up front when M is
 *            split (so that no panel is packed twice). */
typedef struct qf_conv_job {
    const qf_state *S;
    const uint8_t *x;
    void *y;
    int64_t C, H, W, oh, ow, ph, pw;
    int64_t ncol, npanel, nmch, mblocks_per_ch, items_per_img;
    /* direct */
    int64_t Wp, PP, C4;
    const int64_t *off;   /* per row group: byte offset in a plane set */
    uint8_t *planes;      /* [image][group][C4][PP] lanes */
    /* im2col */
    uint8_t *packed;      /* every panel packed up front (M split), or NULL */
    int64_t qchunks;      /* packing items per panel when packed */
    int failed;           /* a thread could not get its buffers */
} qf_conv_job;

static size_t qf_panel_bytes(const qf_state *S)
{
    return (size_t)((S->K + 3) / 4) * QF_PANEL * 4;
}

static void qf_im2col_geom(const qf_conv_job *J, int64_t img, int64_t g, int64_t pn,
                           pare_qim2col *gi, int64_t *n0, int64_t *nn)
{
    const qf_state *S = J->S;
    *n0 = pn * QF_PANEL;
    *nn = J->ncol - *n0 < QF_PANEL ? J->ncol - *n0 : QF_PANEL;
    pare_qim2col t = {J->x + (img * J->C + g * S->g.Cg) * J->H * J->W,
                      S->g.Cg, J->H, J->W, S->g.kh, S->g.kw, S->g.sh, S->g.sw, S->g.dh, S->g.dw,
                      J->ph, J->pw, J->oh, J->ow, S->flip, S->zx};
    *gi = t;
}

/* packing before the products: direct planes (items image, group, channel
 * group) or im2col panels (items image, group, panel, chunk of row groups) */
static void qf_conv_pack(void *ctx, int64_t b, int64_t e)
{
    const qf_conv_job *J = ctx;
    const qf_state *S = J->S;
    for (int64_t it = b; it < e; it++) {
        if (S->direct) {
            int64_t ig = it / J->C4, c4 = it % J->C4, img = ig / S->g.group, g = ig % S->g.group;
            int64_t Hp = J->oh + (S->g.kh - 1) * S->g.dh;
            pare_qplane pl = {J->x + (img * J->C + g * S->g.Cg) * J->H * J->W, S->g.Cg, J->H, J->W,
                              J->ph, J->pw, Hp - J->H - J->ph, J->Wp - J->W - J->pw, J->PP,
                              S->flip, S->zx};
            pare_qpack_plane(&pl, c4, J->planes + (ig * J->C4 + c4) * J->PP * 4);
            continue;
        }
        int64_t K4 = (S->K + 3) / 4, per = (K4 + J->qchunks - 1) / J->qchunks;
        int64_t pi = it / J->qchunks, qc = it % J->qchunks;
        int64_t img = pi / (S->g.group * J->npanel), r = pi % (S->g.group * J->npanel);
        int64_t g = r / J->npanel, pn = r % J->npanel, n0, nn;
        pare_qim2col gi;
        qf_im2col_geom(J, img, g, pn, &gi, &n0, &nn);
        int64_t q0 = qc * per, q1 = q0 + per < K4 ? q0 + per : K4;
        if (q0 < q1)
            pare_qpack_im2col(&gi, n0, nn, QF_PANEL, q0, q1, J->packed + pi * qf_panel_bytes(S));
    }
}

static void qf_conv_items(void *ctx, int64_t b, int64_t e)
{
    qf_conv_job *J = ctx;
    const qf_state *S = J->S;
    int64_t K4 = (S->K + 3) / 4, osz = J->oh * J->ow;
    bool own_panel = !S->direct && !J->packed;
    uint8_t *own = own_panel ? aligned_alloc(64, qf_panel_bytes(S)) : NULL;
    if (own_panel && !own) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t it = b; it < e; it++) {
        int64_t img = it / J->items_per_img, r = it % J->items_per_img;
        int64_t g = r / (J->npanel * J->nmch);
        r %= J->npanel * J->nmch;
        int64_t pn = r / J->nmch, mc = r % J->nmch;
        qf_cols c;
        if (S->direct) {
            int64_t v0 = pn * QF_PANEL;
            c.b = J->planes + ((img * S->g.group + g) * J->C4 * J->PP + v0) * 4;
            c.off = J->off;
            c.vbase = v0;
            c.nn = J->ncol - v0 < QF_PANEL ? J->ncol - v0 : QF_PANEL;
            c.wp = J->Wp;
            c.ow = J->ow;
        } else {
            int64_t n0, nn;
            pare_qim2col gi;
            qf_im2col_geom(J, img, g, pn, &gi, &n0, &nn);
            const uint8_t *panel = own;
            if (own)
                pare_qpack_im2col(&gi, n0, nn, QF_PANEL, 0, K4, own);
            else
                panel = J->packed + ((img * S->g.group + g) * J->npanel + pn) * qf_panel_bytes(S);
            c.b = panel;
            c.off = S->poff;
            c.vbase = n0;
            c.nn = nn;
            c.wp = c.ow = INT64_MAX;
        }
        int64_t mb0 = mc * J->mblocks_per_ch;
        qf_product(S, &S->w[g], mb0, mb0 + J->mblocks_per_ch, &c, g * S->g.Mg,
                   (char *)J->y + (img * S->g.M + g * S->g.Mg) * osz * (S->g.fout ? 4 : 1), osz, 1);
    }
    free(own);
}

/* output size and leading pad of one spatial axis */
static bool qf_axis(int auto_pad, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb,
                    int64_t pe, int64_t *out, int64_t *lead)
{
    int64_t dk = (k - 1) * d + 1;
    if (auto_pad == 1 || auto_pad == 2) {
        int64_t o = in / s + (in % s != 0);
        int64_t tot = (o - 1) * s + dk - in;
        if (tot < 0)
            tot = 0;
        pb = auto_pad == 1 ? tot / 2 : tot - tot / 2;
        pe = tot - pb;
    } else if (auto_pad == 3) {
        pb = pe = 0;
    }
    if (in + pb + pe < dk)
        return false;
    *out = (in + pb + pe - dk) / s + 1;
    *lead = pb;
    return true;
}

bool pare_qdq_conv_out(const pare_qdq_geom *G, int64_t H, int64_t W, int64_t *oh, int64_t *ow,
                       int64_t *ph, int64_t *pw)
{
    return qf_axis(G->nd == 2 ? G->auto_pad : 0, H, G->kh, G->sh, G->dh, G->pads[0], G->pads[2],
                   oh, ph) &&
           qf_axis(G->auto_pad, W, G->kw, G->sw, G->dw, G->pads[1], G->pads[3], ow, pw);
}

static pare_status qf_conv_run(pare_kctx *k, const qf_state *S, const pare_tensor *x,
                               pare_error *err)
{
    if (x->rank != S->g.nd + 2 || x->dims[1] != S->g.Cg * S->g.group)
        return pare_error_set(err, PARE_ERR_INVALID, "input rank %d or channels do not fit the "
                              "weights", x->rank);
    int64_t N = x->dims[0], C = x->dims[1], H = S->g.nd == 2 ? x->dims[2] : 1,
            W = x->dims[x->rank - 1], oh, ow, ph, pw;
    if (!pare_qdq_conv_out(&S->g, H, W, &oh, &ow, &ph, &pw))
        return pare_error_set(err, PARE_ERR_INVALID, "kernel larger than the padded input");
    int64_t dims[4] = {N, S->g.M, oh, ow};
    if (S->g.nd == 1)
        dims[2] = ow;
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->g.ydt, x->rank, dims, &y, err);
    if (st)
        return st;
    int64_t osz = oh * ow;
    if (!N || !osz)
        return PARE_OK;
    qf_conv_job J = {.S = S, .x = x->data, .y = y->data, .C = C, .H = H, .W = W, .oh = oh,
                     .ow = ow, .ph = ph, .pw = pw, .qchunks = 1, .ncol = osz};
    int64_t *off = NULL;
    if (S->direct) {
        /* virtual columns: oh rows of the padded width */
        int64_t taps = S->g.kh * S->g.kw, Hp = oh + (S->g.kh - 1) * S->g.dh;
        J.Wp = ow + (S->g.kw - 1) * S->g.dw;
        J.C4 = (S->g.Cg + 3) / 4;
        int64_t bytes; /* N * group * C4 * PP lanes of 4 bytes, rounded to 64 */
        if (__builtin_mul_overflow(Hp, J.Wp, &J.PP) ||
            __builtin_add_overflow(J.PP, QG_NR + (S->g.kw - 1) * S->g.dw, &J.PP) ||
            __builtin_mul_overflow(N * S->g.group * J.C4, J.PP, &bytes) ||
            __builtin_mul_overflow(bytes, 4, &bytes) || bytes > INT64_MAX - 63)
            return pare_error_set(err, PARE_ERR_LIMIT, "padded image too large");
        J.ncol = oh * J.Wp;
        off = malloc((size_t)(taps * J.C4) * sizeof *off);
        J.planes = aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64));
        if (!off || !J.planes) {
            free(off);
            free(J.planes);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        for (int64_t t = 0; t < taps; t++)
            for (int64_t c4 = 0; c4 < J.C4; c4++)
                off[t * J.C4 + c4] =
                    (c4 * J.PP + (t / S->g.kw) * S->g.dh * J.Wp + (t % S->g.kw) * S->g.dw) * 4;
        J.off = off;
    }
    J.npanel = (J.ncol + QF_PANEL - 1) / QF_PANEL;
    int64_t mbn = (S->g.Mg + QG_MR - 1) / QG_MR;
    /* enough items for every thread: split M when images, groups and
     * panels alone are few */
    int64_t threads = pare_threadpool_size(k->pool), base = N * S->g.group * J.npanel;
    int64_t want = 4 * threads, nmch = base >= want ? 1 : (want + base - 1) / base;
    if (nmch > mbn)
        nmch = mbn;
    if (nmch < 1)
        nmch = 1;
    J.mblocks_per_ch = (mbn + nmch - 1) / nmch;
    J.nmch = (mbn + J.mblocks_per_ch - 1) / J.mblocks_per_ch;
    J.items_per_img = S->g.group * J.npanel * J.nmch;
    if (S->direct) {
        pare_parallel_for(k->pool, N * S->g.group * J.C4, 1, qf_conv_pack, &J);
    } else if (J.nmch > 1) {
        /* M is split: pack each panel once, in parallel, before the products */
        int64_t npk = N * S->g.group * J.npanel;
        J.packed = aligned_alloc(64, (size_t)npk * qf_panel_bytes(S));
        if (!J.packed)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        J.qchunks = npk >= want ? 1 : (want + npk - 1) / npk;
        pare_parallel_for(k->pool, npk * J.qchunks, 1, qf_conv_pack, &J);
    }
    pare_parallel_for(k->pool, N * J.items_per_img, 1, qf_conv_items, &J);
    free(J.packed);
    free(J.planes);
    free(off);
    return J.failed ? pare_error_set(err, PARE_ERR_NOMEM, "out of memory") : PARE_OK;
}

/* ---- MatMul / Gemm ---------------------------------------------------- */

typedef struct qf_mm_job {
    const qf_state *S;
    const uint8_t *x;
    void *y;
    int64_t R, npanel, nmch, mblocks_per_ch;
    uint8_t *packed; /* every panel packed up front (M split), or NULL */
    int failed;
} qf_mm_job;

/* the rows of panel pn (returned) packed into dst when it is not NULL */
static int64_t qf_mm_panel(const qf_mm_job *J, int64_t pn, uint8_t *dst)
{
    int64_t r0 = pn * QF_PANEL, nn = J->R - r0 < QF_PANEL ? J->R - r0 : QF_PANEL;
    if (dst)
        pare_qpack_rows(J->x, J->S->K, r0, nn, QF_PANEL, J->S->K, J->S->flip, dst);
    return nn;
}

static void qf_mm_pack(void *ctx, int64_t b, int64_t e)
{
    const qf_mm_job *J = ctx;
    for (int64_t pn = b; pn < e; pn++)
        qf_mm_panel(J, pn, J->packed + pn * qf_panel_bytes(J->S));
}

static void qf_mm_items(void *ctx, int64_t b, int64_t e)
{
    qf_mm_job *J = ctx;
    const qf_state *S = J->S;
    uint8_t *own = J->packed ? NULL : aligned_alloc(64, qf_panel_bytes(S));
    if (!J->packed && !own) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t it = b; it < e; it++) {
        int64_t pn = it / J->nmch, mc = it % J->nmch;
        const uint8_t *panel = own ? own : J->packed + pn * qf_panel_bytes(S);
        qf_cols c = {panel, S->poff, pn * QF_PANEL, qf_mm_panel(J, pn, own), INT64_MAX,
                     INT64_MAX};
        int64_t mb0 = mc * J->mblocks_per_ch;
        qf_product(S, &S->w[0], mb0, mb0 + J->mblocks_per_ch, &c, 0, J->y, 1, S->g.M);
    }
    free(own);
}

static pare_status qf_mm_run(pare_kctx *k, const qf_state *S, const pare_tensor *x,
                             pare_error *err)
{
    if (x->rank < 2 || x->dims[x->rank - 1] != S->K)
        return pare_error_set(err, PARE_ERR_INVALID, "input's last dim does not match K = %lld",
                              (long long)S->K);
    int64_t R = 1, dims[PARE_MAX_RANK];
    for (int i = 0; i < x->rank - 1; i++) {
        R *= x->dims[i];
        dims[i] = x->dims[i];
    }
    dims[x->rank - 1] = S->g.M;
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->g.ydt, x->rank, dims, &y, err);
    if (st || !R)
        return st;
    qf_mm_job J = {S, x->data, y->data, R, (R + QF_PANEL - 1) / QF_PANEL, 1, 0, NULL, 0};
    int64_t mbn = (S->g.M + QG_MR - 1) / QG_MR, want = 4 * pare_threadpool_size(k->pool);
    int64_t nmch = J.npanel >= want ? 1 : (want + J.npanel - 1) / J.npanel;
    if (nmch > mbn)
        nmch = mbn;
    J.mblocks_per_ch = (mbn + nmch - 1) / nmch;
    J.nmch = (mbn + J.mblocks_per_ch - 1) / J.mblocks_per_ch;
    if (J.nmch > 1) { /* M is split: pack each panel once, first */
        if (!(J.packed = aligned_alloc(64, (size_t)J.npanel * qf_panel_bytes(S))))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        pare_parallel_for(k->pool, J.npanel, 1, qf_mm_pack, &J);
    }
    pare_parallel_for(k->pool, J.npanel * J.nmch, 1, qf_mm_items, &J);
    free(J.packed);
    return J.failed ? pare_error_set(err, PARE_ERR_NOMEM, "out of memory") : PARE_OK;
}

static pare_status qf_run(pare_kctx *k, pare_error *err)
{
    const qf_state *S = k->state;
    const pare_tensor *x = k->n_in ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    if (x->dtype != (S->flip ? PARE_DT_INT8 : PARE_DT_UINT8))
        return pare_error_set(err, PARE_ERR_INVALID, "input is %s", pare_dtype_name(x->dtype));
    return S->g.kind == PARE_QDQ_CONV ? qf_conv_run(k, S, x, err) : qf_mm_run(k, S, x, err);
}

const pare_kernel pare_kernel_qdq_fused = {"", "QDQ", 1, 0, NULL, qf_run, qf_release, NULL};
