/* Recurrent kernels (RNN, GRU, LSTM) and the ops no other family owns:
 * Dropout, the window generators (Hann/Hamming/Blackman), MelWeightMatrix,
 * DFT, STFT, AffineGrid, NonMaxSuppression, RoiAlign, MaxRoiPool and
 * StringNormalizer (this file), plus the ops in kernels_rnn_misc.c.
 *
 * The recurrences run in float32 for float32/float16/bfloat16 inputs and in
 * float64 for float64 inputs: kernels_rnn_typed.c holds one body written
 * over a compute type and is included once per type. Inputs are converted
 * to the compute type in the canonical layout 0 ([seq, batch, ...]) and the
 * outputs are converted back (and transposed for layout 1). Each time step
 * is two GEMMs at most (the input projection of all steps is one GEMM done
 * up front), through pare_sgemm/pare_dgemm.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "exec/kernel.h"
#include "exec/gemm.h"

#define R_GRAIN 16384

static void r_free_state(void *s)
{
    free(s);
}

static pare_status r_nomem(pare_error *err)
{
    return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
}

static int64_t r_numel(const pare_tensor *t)
{
    return (int64_t)pare_tensor_numel(t);
}

/* Converts all of t to dtype `dt` (float or double) into a malloc'd buffer. */
static void *r_convert(const pare_tensor *t, int dt, pare_error *err)
{
    int64_t n = r_numel(t);
    size_t es = dt == PARE_DT_DOUBLE ? 8 : 4;
    void *d = malloc((size_t)(n > 0 ? n : 1) * es);
    if (!d) {
        r_nomem(err);
        return NULL;
    }
    if (!pare_dtype_convert(dt, d, t->dtype, t->data, (size_t)n, true)) {
        free(d);
        pare_error_set(err, PARE_ERR_INVALID, "unsupported dtype %s", pare_dtype_name(t->dtype));
        return NULL;
    }
    return d;
}

/* Scalar (or first element) of a numeric tensor as double. */
static double r_scalar(const pare_tensor *t)
{
    return pare_dtype_get_f64(t->dtype, t->data, 0);
}

/* dst[b, a, c] = src[a, b, c] for elements of es bytes. */
static void r_swap01(const void *src, void *dst, int64_t a, int64_t b, int64_t c, size_t es)
{
    const char *s = src;
    char *d = dst;
    size_t row = (size_t)c * es;
    for (int64_t i = 0; i < a; i++)
        for (int64_t j = 0; j < b; j++)
            memcpy(d + ((size_t)(j * a + i)) * row, s + ((size_t)(i * b + j)) * row, row);
}

/* ------------------------------------------------------------------ */
/* RNN, GRU, LSTM                                                      */

enum {
    ACT_RELU,
    ACT_TANH,
    ACT_SIGMOID,
    ACT_AFFINE,
    ACT_LEAKYRELU,
    ACT_THRESHRELU,
    ACT_SCALEDTANH,
    ACT_HARDSIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS
};
enum { CELL_RNN, CELL_GRU, CELL_LSTM };
enum { DIR_FORWARD, DIR_REVERSE, DIR_BIDI };

typedef struct rnn_act {
    int kind;
    float alpha, beta;
} rnn_act;

typedef struct rnn_state {
    int cell, ngates, nact, direction, ndir, layout;
    int64_t hidden; /* -1: from R */
    bool has_clip, lbr, input_forget;
    float clip;
    rnn_act act[2][3];
} rnn_state;

static const struct {
    const char *name;
    int kind;
    bool alpha, beta;
    float dalpha, dbeta;
} rnn_act_names[] = {
    {"Relu", ACT_RELU, false, false, 0, 0},
    {"Tanh", ACT_TANH, false, false, 0, 0},
    {"Sigmoid", ACT_SIGMOID, false, false, 0, 0},
    {"Affine", ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKYRELU, true, false, 0.01f, 0},
    {"ThresholdedRelu", ACT_THRESHRELU, true, false, 1.0f, 0},
    {"ScaledTanh", ACT_SCALEDTANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", ACT_HARDSIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", ACT_ELU, true, false, 1.0f, 0},
    {"Softsign", ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", ACT_SOFTPLUS, false, false, 0, 0},
};

static pare_status rnn_init_cell(const pare_node *n, int cell, void **state, pare_error *err)
{
    rnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->cell = cell;
    s->ngates = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 3 : 4;
    s->nact = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 2 : 3;
    const char *dir = pare_node_attr_string(n, "direction", "forward");
    s->direction = !strcmp(dir, "reverse") ? DIR_REVERSE : !strcmp(dir, "bidirectional") ? DIR_BIDI
                                                                                      : DIR_FORWARD;
    if (strcmp(dir, "forward") && strcmp(dir, "reverse") && strcmp(dir, "bidirectional")) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "unknown direction '%s'", dir);
    }
    s->ndir = s->direction == DIR_BIDI ? 2 : 1;
    s->layout = (int)pare_node_attr_int(n, "layout", 0);
    s->hidden = pare_node_attr_int(n, "hidden_size", -1);
    s->lbr = pare_node_attr_int(n, "linear_before_reset", 0) != 0;
    s->input_forget = pare_node_attr_int(n, "input_forget", 0) != 0;
    const pare_attr *ca = pare_node_attr(n, "clip");
    if (ca && ca->type == PARE_ATTR_FLOAT) {
        s->has_clip = true;
        s->clip = ca->f;
    }
    const char *defaults[3] = {"Tanh", NULL, NULL};
    if (cell == CELL_GRU) {
        defaults[0] = "Sigmoid";
        defaults[1] = "Tanh";
    } else if (cell == CELL_LSTM) {
        defaults[0] = "Sigmoid";
        defaults[1] = "Tanh";
        defaults[2] = "Tanh";
    }
    const pare_attr *aa = pare_node_attr(n, "activations");
    size_t na = aa && aa->type == PARE_ATTR_STRINGS ? aa->n : 0;
    if (na && na != (size_t)s->nact && na != (size_t)(s->nact * s->ndir)) {
        int want = s->nact * s->ndir;
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "expected %d activations, got %zu", want,
                              na);
    }
    const float *alphas, *betas;
    size_t nal = pare_node_attr_floats(n, "activation_alpha", &alphas);
    size_t nbe = pare_node_attr_floats(n, "activation_beta", &betas);
    size_t ia = 0, ib = 0;
    for (int d = 0; d < s->ndir; d++)
        for (int i = 0; i < s->nact; i++) {
            const char *name = defaults[i];
            if (na)
                name = aa->strings[(size_t)(d * s->nact + i) % na].data;
            size_t j = 0, nn = sizeof rnn_act_names / sizeof *rnn_act_names;
            while (j < nn && strcasecmp(rnn_act_names[j].name, name))
                j++;
            if (j == nn) {
                free(s);
                return pare_error_set(err, PARE_ERR_UNSUPPORTED, "unknown activation '%s'", name);
            }
            rnn_act *a = &s->act[d][i];
            a->kind = rnn_act_names[j].kind;
            if (rnn_act_names[j].alpha)
                a->alpha = ia < nal ? alphas[ia++] : rnn_act_names[j].dalpha;
            if (rnn_act_names[j].beta)
                a->beta = ib < nbe ? betas[ib++] : rnn_act_names[j].dbeta;
        }
    *state = s;
    return PARE_OK;
}

static pare_status rnn_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    return rnn_init_cell(n, CELL_RNN, state, err);
}

static pare_status gru_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    return rnn_init_cell(n, CELL_GRU, state, err);
}

static pare_status lstm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    return rnn_init_cell(n, CELL_LSTM, state, err);
}

#define RT float
#define RS f32
#define RGEMM pare_sgemm
#define RTANH tanhf
#define REXP expf
#define RFABS fabsf
#define RLOG1P log1pf
#include "kernels_rnn_typed.c"
#undef RT
#undef RS
#undef RGEMM
#undef RTANH
#undef REXP
#undef RFABS
#undef RLOG1P

#define RT double
#define RS f64
#define RGEMM pare_dgemm
#define RTANH tanh
#define REXP exp
#define RFABS fabs
#define RLOG1P log1p
#include "kernels_rnn_typed.c"
#undef RT
#undef RS
#undef RGEMM
#undef RTANH
#undef REXP
#undef RFABS
#undef RLOG1P

static bool r_dims_are(const pare_tensor *t, int rank, const int64_t *want)
{
    if (t->rank != rank)
        return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != want[i])
            return false;
    return true;
}

static pare_status rnn_run(pare_kctx *k, pare_error *err)
{
    const rnn_state *S = k->state;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "X, W and R are required");
    const pare_tensor *x = k->in[0], *w = k->in[1], *r = k->in[2];
    const pare_tensor *b = k->n_in > 3 ? k->in[3] : NULL, *sl = k->n_in > 4 ? k->in[4] : NULL;
    const pare_tensor *ih = k->n_in > 5 ? k->in[5] : NULL;
    const pare_tensor *ic = S->cell == CELL_LSTM && k->n_in > 6 ? k->in[6] : NULL;
    const pare_tensor *p = S->cell == CELL_LSTM && k->n_in > 7 ? k->in[7] : NULL;
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return pare_error_set(err, PARE_ERR_INVALID, "X, W and R must have rank 3");
    if (!pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "X must be a float tensor");
    int64_t seq = S->layout ? x->dims[1] : x->dims[0], batch = S->layout ? x->dims[0] : x->dims[1];
    int64_t In = x->dims[2], nd = S->ndir, H = r->dims[2];
    if (S->hidden >= 0 && S->hidden != H)
        return pare_error_set(err, PARE_ERR_INVALID, "hidden_size %lld, but R's last dim is %lld",
                              (long long)S->hidden, (long long)H);
    /* the byte sizes of the buffers (per step: nd * batch * G * H; all steps: seq times
     * that) must not overflow */
    int64_t GH, nb = (int64_t)nd * 8 * S->ngates, nyb;
    if (H > INT32_MAX || __builtin_mul_overflow(S->ngates, H, &GH) ||
        __builtin_mul_overflow(nb, batch, &nb) || __builtin_mul_overflow(nb, H, &nb) ||
        __builtin_mul_overflow(nb, seq, &nyb))
        return pare_error_set(err, PARE_ERR_LIMIT, "RNN sizes overflow");
    int64_t wd[3] = {nd, GH, In}, rd[3] = {nd, GH, H}, bd[2] = {nd, 2 * GH};
    int64_t hd[3] = {nd, batch, H}, hdl[3] = {batch, nd, H}, pd[2] = {nd, 3 * H};
    if (!r_dims_are(w, 3, wd) || !r_dims_are(r, 3, rd))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "W must be %lldx%lldx%lld and R %lldx%lldx%lld", (long long)nd,
                              (long long)GH, (long long)In, (long long)nd, (long long)GH,
                              (long long)H);
    if (b && !r_dims_are(b, 2, bd))
        return pare_error_set(err, PARE_ERR_INVALID, "B must be %lldx%lld", (long long)nd,
                              (long long)(2 * GH));
    if (sl && (r_numel(sl) != batch || pare_dtype_is_float(sl->dtype)))
        return pare_error_set(err, PARE_ERR_INVALID, "sequence_lens must be %lld integers",
                              (long long)batch);
    for (int i = 0; i < 2; i++) {
        const pare_tensor *t = i ? ic : ih;
        if (t && !r_dims_are(t, 3, S->layout ? hdl : hd))
            return pare_error_set(err, PARE_ERR_INVALID, "initial state has the wrong shape");
    }
    if (p && !r_dims_are(p, 2, pd))
        return pare_error_set(err, PARE_ERR_INVALID, "P must be %lldx%lld", (long long)nd,
                              (long long)(3 * H));
    int odt = x->dtype;
    int cdt = odt == PARE_DT_DOUBLE ? PARE_DT_DOUBLE : PARE_DT_FLOAT;
    size_t es = cdt == PARE_DT_DOUBLE ? 8 : 4;
    int64_t ydims[4], yhdims[3];
    if (S->layout) {
        int64_t yd[4] = {batch, seq, nd, H};
        memcpy(ydims, yd, sizeof yd);
        memcpy(yhdims, hdl, sizeof hdl);
    } else {
        int64_t yd[4] = {seq, nd, batch, H};
        memcpy(ydims, yd, sizeof yd);
        memcpy(yhdims, hd, sizeof hd);
    }
    pare_tensor *Y, *Yh, *Yc = NULL;
    pare_status st = k->alloc_out(k, 0, odt, 4, ydims, &Y, err);
    if (!st && k->n_out > 1)
        st = k->alloc_out(k, 1, odt, 3, yhdims, &Yh, err);
    if (!st && S->cell == CELL_LSTM && k->n_out > 2)
        st = k->alloc_out(k, 2, odt, 3, yhdims, &Yc, err);
    if (st)
        return st;
    size_t nh = (size_t)(nd * batch * H), ny = (size_t)(seq * nd * batch * H);
    void *X = NULL, *W = NULL, *R = NULL, *B = NULL, *h0 = NULL, *c0 = NULL, *P = NULL;
    void *Yb = NULL, *Yhb = NULL, *Ycb = NULL, *tmp = NULL;
    int64_t *lens = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *lens);
    if (!lens) {
        st = r_nomem(err);
        goto done;
    }
    for (int64_t i = 0; i < batch; i++) {
        lens[i] = sl ? (int64_t)pare_dtype_get_f64(sl->dtype, sl->data, (size_t)i) : seq;
        if (lens[i] < 0 || lens[i] > seq) {
            st = pare_error_set(err, PARE_ERR_INVALID, "sequence_lens[%lld] = %lld out of [0, %lld]",
                                (long long)i, (long long)lens[i], (long long)seq);
            goto done;
        }
    }
    if (!(X = r_convert(x, cdt, err)) || !(W = r_convert(w, cdt, err)) ||
        !(R = r_convert(r, cdt, err))) {
        st = err->status;
        goto done;
    }
    B = b ? r_convert(b, cdt, err) : calloc((size_t)(nd * 2 * GH > 0 ? nd * 2 * GH : 1), es);
    h0 = ih ? r_convert(ih, cdt, err) : calloc(nh ? nh : 1, es);
    c0 = ic ? r_convert(ic, cdt, err) : calloc(nh ? nh : 1, es);
    P = p ? r_convert(p, cdt, err) : NULL;
    Yb = malloc((ny ? ny : 1) * es);
    Yhb = malloc((nh ? nh : 1) * es);
    Ycb = malloc((nh ? nh : 1) * es);
    tmp = malloc(((size_t)r_numel(x) > ny ? (size_t)r_numel(x) : ny) * es + es);
    if (!B || !h0 || !c0 || (p && !P) || !Yb || !Yhb || !Ycb || !tmp) {
        st = err->status ? err->status : r_nomem(err);
        goto done;
    }
    if (S->layout) { /* to canonical [seq, batch, ...] */
        r_swap01(X, tmp, batch, seq, In, es);
        memcpy(X, tmp, (size_t)r_numel(x) * es);
        if (ih) {
            r_swap01(h0, tmp, batch, nd, H, es);
            memcpy(h0, tmp, nh * es);
        }
        if (ic) {
            r_swap01(c0, tmp, batch, nd, H, es);
            memcpy(c0, tmp, nh * es);
        }
    }
    if (cdt == PARE_DT_DOUBLE)
        st = rnn_core_f64(k, S, H, seq, batch, In, X, W, R, B, lens, h0, c0, P, Yb, Yhb, Ycb, err);
    else
        st = rnn_core_f32(k, S, H, seq, batch, In, X, W, R, B, lens, h0, c0, P, Yb, Yhb, Ycb, err);
    if (st)
        goto done;
    if (S->layout) {
        r_swap01(Yb, tmp, seq * nd, batch, H, es);
        memcpy(Yb, tmp, ny * es);
        r_swap01(Yhb, tmp, nd, batch, H, es);
        memcpy(Yhb, tmp, nh * es);
        r_swap01(Ycb, tmp, nd, batch, H, es);
        memcpy(Ycb, tmp, nh * es);
    }
    pare_dtype_convert(odt, Y->data, cdt, Yb, ny, true);
    if (k->n_out > 1)
        pare_dtype_convert(odt, Yh->data, cdt, Yhb, nh, true);
    if (Yc)
        pare_dtype_convert(odt, Yc->data, cdt, Ycb, nh, true);
done:
    free(lens);
    free(X);
    free(W);
    free(R);
    free(B);
    free(h0);
    free(c0);
    free(P);
    free(Yb);
    free(Yhb);
    free(Ycb);
    free(tmp);
    return st;
}

/* ------------------------------------------------------------------ */
/* Dropout                                                             */

/* MT19937, seeded as numpy's RandomState(seed), so a seeded training-mode
 * Dropout draws the same mask as the ONNX reference. */
typedef struct mt19937 {
    uint32_t key[624];
    int pos;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t seed)
{
    for (int i = 0; i < 624; i++) {
        m->key[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    m->pos = 624;
}

static uint32_t mt_next32(mt19937 *m)
{
    if (m->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % 624] & 0x7fffffffu);
            m->key[i] = m->key[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->pos = 0;
    }
    uint32_t y = m->key[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static double mt_next_double(mt19937 *m)
{
    uint32_t a = mt_next32(m) >> 5, b = mt_next32(m) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

typedef struct dropout_state {
    float ratio; /* attribute (opset < 12) */
    bool has_seed, is_test;
    uint32_t seed;
} dropout_state;

static pare_status dropout_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    dropout_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->ratio = pare_node_attr_float(n, "ratio", 0.5f);
    s->is_test = opset >= 7 || pare_node_attr_int(n, "is_test", 0) != 0;
    const pare_attr *a = pare_node_attr(n, "seed");
    if (a && a->type == PARE_ATTR_INT) {
        s->has_seed = true;
        s->seed = (uint32_t)a->i;
    }
    *state = s;
    return PARE_OK;
}

static pare_status dropout_run(pare_kctx *k, pare_error *err)
{
    const dropout_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input");
    double ratio = S->ratio;
    bool training = !S->is_test;
    if (k->opset >= 12) {
        ratio = 0.5;
        if (k->n_in > 1 && k->in[1])
            ratio = r_scalar(k->in[1]);
        training = k->n_in > 2 && k->in[2] && r_scalar(k->in[2]) != 0;
    }
    if (training && (ratio < 0 || ratio >= 1))
        return pare_error_set(err, PARE_ERR_INVALID, "ratio %g must be in [0, 1)", ratio);
    pare_tensor *y, *mask = NULL;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err);
    /* the mask only when the node names it (an omitted one is not made) */
    if (!st && k->n_out > 1 && k->node->outputs[1])
        st = k->alloc_out(k, 1, k->opset >= 10 ? PARE_DT_BOOL : x->dtype, x->rank, x->dims,
                          &mask, err);
    if (st)
        return st;
    size_t n = (size_t)r_numel(x);
    if (!training || ratio == 0) {
        if (x->dtype == PARE_DT_STRING)
            return pare_error_set(err, PARE_ERR_INVALID, "Dropout of strings");
        memcpy(y->data, x->data, x->nbytes);
        if (mask) {
            if (mask->dtype == PARE_DT_BOOL) {
                memset(mask->data, 1, n);
            } else if (mask->dtype == PARE_DT_FLOAT) {
                float *mf = mask->data;
                for (size_t i = 0; i < n; i++)
                    mf[i] = 1.0f;
            } else {
                for (size_t i = 0; i < n; i++)
                    pare_dtype_set_f64(mask->dtype, mask->data, i, 1.0);
            }
        }
        return PARE_OK;
    }
    if (!pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "training Dropout needs a float input");
    mt19937 *m = malloc(sizeof *m);
    if (!m)
        return r_nomem(err);
    mt_seed(m, S->has_seed ? S->seed : (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)m);
    float r32 = (float)ratio;
    float scale = 1.0f / (1.0f - r32);
    for (size_t i = 0; i < n; i++) {
        bool keep = mt_next_double(m) >= (double)r32;
        double v = pare_dtype_get_f64(x->dtype, x->data, i);
        float out = keep ? (float)v * scale : 0.0f;
        if (x->dtype == PARE_DT_DOUBLE)
            pare_dtype_set_f64(x->dtype, y->data, i, keep ? v * (1.0 / (1.0 - ratio)) : 0.0);
        else
            pare_dtype_set_f64(x->dtype, y->data, i, out);
        if (mask) {
            if (mask->dtype == PARE_DT_BOOL)
                ((uint8_t *)mask->data)[i] = keep;
            else
                pare_dtype_set_f64(mask->dtype, mask->data, i, keep);
        }
    }
    free(m);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* window functions and MelWeightMatrix                                */

typedef struct window_state {
    int kind; /* 0 Hann, 1 Hamming, 2 Blackman */
    int64_t dtype;
    bool periodic;
} window_state;

static pare_status window_init_kind(const pare_node *n, int kind, void **state, pare_error *err)
{
    window_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->kind = kind;
    s->dtype = pare_node_attr_int(n, "output_datatype", PARE_DT_FLOAT);
    s->periodic = pare_node_attr_int(n, "periodic", 1) != 0;
    if (!pare_dtype_valid((int)s->dtype) || s->dtype == PARE_DT_STRING) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "bad output_datatype");
    }
    *state = s;
    return PARE_OK;
}

static pare_status hann_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return window_init_kind(n, 0, s, e);
}

static pare_status hamming_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return window_init_kind(n, 1, s, e);
}

static pare_status blackman_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return window_init_kind(n, 2, s, e);
}

static pare_status window_run(pare_kctx *k, pare_error *err)
{
    const window_state *S = k->state;
    if (!k->in[0] || r_numel(k->in[0]) != 1 || pare_dtype_is_float(k->in[0]->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "size must be an integer scalar");
    int64_t size = (int64_t)r_scalar(k->in[0]);
    if (size < 0 || size > ((int64_t)1 << 40))
        return pare_error_set(err, PARE_ERR_INVALID, "window size %lld", (long long)size);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, (int)S->dtype, 1, &size, &y, err);
    if (st)
        return st;
    double N1 = (double)(S->periodic ? size : size - 1);
    const double pi = 3.14159265358979323846;
    for (int64_t i = 0; i < size; i++) {
        double v, ni = (double)i;
        if (S->kind == 0) {
            double s = sin(ni * pi / N1);
            v = s * s;
        } else if (S->kind == 1) {
            v = 25.0 / 46.0 - cos(ni * pi * 2 / N1) * (21.0 / 46.0);
        } else {
            v = cos(ni * (pi * 2) / N1) * -0.5 + cos(ni * (pi * 4) / N1) * 0.08 + 0.42;
        }
        pare_dtype_set_f64((int)S->dtype, y->data, (size_t)i, v);
    }
    return PARE_OK;
}

static pare_status mel_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    int64_t *dt = malloc(sizeof *dt);
    if (!dt)
        return r_nomem(err);
    *dt = pare_node_attr_int(n, "output_datatype", PARE_DT_FLOAT);
    if (!pare_dtype_valid((int)*dt) || *dt == PARE_DT_STRING) {
        free(dt);
        return pare_error_set(err, PARE_ERR_INVALID, "bad output_datatype");
    }
    *state = dt;
    return PARE_OK;
}

static pare_status mel_run(pare_kctx *k, pare_error *err)
{
    int odt = (int)*(const int64_t *)k->state;
    for (int i = 0; i < 5; i++)
        if ((size_t)i >= k->n_in || !k->in[i] || r_numel(k->in[i]) != 1)
            return pare_error_set(err, PARE_ERR_INVALID, "input %d must be a scalar", i);
    int64_t nmel = (int64_t)r_scalar(k->in[0]), dftlen = (int64_t)r_scalar(k->in[1]);
    int64_t rate = (int64_t)r_scalar(k->in[2]);
    float lo = (float)r_scalar(k->in[3]), hi = (float)r_scalar(k->in[4]);
    if (nmel < 1 || dftlen < 1 || rate < 1 || nmel > (1 << 20) || dftlen > (1 << 26))
        return pare_error_set(err, PARE_ERR_INVALID, "bad MelWeightMatrix arguments");
    int64_t nspec = dftlen / 2 + 1;
    int64_t dims[2] = {nspec, nmel};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, odt, 2, dims, &y, err);
    if (st)
        return st;
    double *out = calloc((size_t)(nspec * nmel), sizeof *out);
    int64_t *bins = malloc((size_t)(nmel + 2) * sizeof *bins);
    if (!out || !bins) {
        free(out);
        free(bins);
        return r_nomem(err);
    }
    /* as the reference computes it: mel edges in float32, the bins in float64 */
    float lmel = 2595.0f * log10f(1.0f + lo / 700.0f);
    float hmel = 2595.0f * log10f(1.0f + hi / 700.0f);
    float step = (hmel - lmel) / (float)(nmel + 2);
    for (int64_t i = 0; i < nmel + 2; i++) {
        double f = (double)i * (double)step + (double)lmel;
        f = 700.0 * (pow(10.0, f / 2595.0) - 1.0);
        f = floor((double)(dftlen + 1) * f / (double)rate);
        bins[i] = (int64_t)f;
        if (bins[i] < 0 || bins[i] >= nspec) {
            long long edge = (long long)bins[i];
            free(out);
            free(bins);
            return pare_error_set(err, PARE_ERR_INVALID, "mel bin edge %lld outside [0, %lld)",
                                  edge, (long long)nspec);
        }
    }
    for (int64_t i = 0; i < nmel; i++) {
        int64_t l = bins[i], c = bins[i + 1], h = bins[i + 2];
        if (c - l == 0)
            out[c * nmel + i] = 1;
        else
            for (int64_t j = l; j <= c; j++)
                out[j * nmel + i] = (double)(j - l) / (double)(c - l);
        if (h - c > 0)
            for (int64_t j = c; j < h; j++)
                out[j * nmel + i] = (double)(h - j) / (double)(h - c);
    }
    pare_dtype_convert(odt, y->data, PARE_DT_DOUBLE, out, (size_t)(nspec * nmel), true);
    free(out);
    free(bins);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* DFT and STFT                                                        */

/* In-place complex DFT of length n (re/im arrays), sign -1 forward, +1
 * inverse (unnormalised). Radix-2 for powers of two, else direct with an
 * exact twiddle table. */
static pare_status r_dft(double *re, double *im, int64_t n, int sign, pare_error *err)
{
    if (n <= 1)
        return PARE_OK;
    const double pi = 3.14159265358979323846;
    if ((n & (n - 1)) == 0) {
        for (int64_t i = 1, j = 0; i < n; i++) {
            int64_t bit = n >> 1;
            for (; j & bit; bit >>= 1)
                j ^= bit;
            j ^= bit;
            if (i < j) {
                double t = re[i];
                re[i] = re[j];
                re[j] = t;
                t = im[i];
                im[i] = im[j];
                im[j] = t;
            }
        }
        for (int64_t len = 2; len <= n; len <<= 1) {
            double ang = sign * 2 * pi / (double)len;
            for (int64_t i = 0; i < n; i += len)
                for (int64_t j = 0; j < len / 2; j++) {
                    double wr = cos(ang * (double)j), wi = sin(ang * (double)j);
                    double ur = re[i + j], ui = im[i + j];
                    double xr = re[i + j + len / 2], xi = im[i + j + len / 2];
                    double vr = xr * wr - xi * wi, vi = xr * wi + xi * wr;
                    re[i + j] = ur + vr;
                    im[i + j] = ui + vi;
                    re[i + j + len / 2] = ur - vr;
                    im[i + j + len / 2] = ui - vi;
                }
        }
        return PARE_OK;
    }
    double *buf = malloc((size_t)n * 4 * sizeof *buf);
    if (!buf)
        return r_nomem(err);
    double *cr = buf, *ci = buf + n, *tr = buf + 2 * n, *ti = buf + 3 * n;
    for (int64_t i = 0; i < n; i++) {
        cr[i] = cos(2 * pi * (double)i / (double)n);
        ci[i] = sign * sin(2 * pi * (double)i / (double)n);
    }
    for (int64_t kk = 0; kk < n; kk++) {
        double sr = 0, si = 0;
        int64_t idx = 0;
        for (int64_t t = 0; t < n; t++) {
            sr += re[t] * cr[idx] - im[t] * ci[idx];
            si += re[t] * ci[idx] + im[t] * cr[idx];
            idx += kk;
            if (idx >= n)
                idx -= n;
        }
        tr[kk] = sr;
        ti[kk] = si;
    }
    memcpy(re, tr, (size_t)n * sizeof *re);
    memcpy(im, ti, (size_t)n * sizeof *im);
    free(buf);
    return PARE_OK;
}

typedef struct dft_state {
    int64_t axis;
    bool inverse, onesided;
} dft_state;

static pare_status dft_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    dft_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->axis = pare_node_attr_int(n, "axis", opset >= 20 ? -2 : 1);
    s->inverse = pare_node_attr_int(n, "inverse", 0) != 0;
    s->onesided = pare_node_attr_int(n, "onesided", 0) != 0;
    *state = s;
    return PARE_OK;
}

static pare_status dft_run(pare_kctx *k, pare_error *err)
{
    const dft_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->rank < 2 || !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "input must be a float tensor of rank >= 2");
    int64_t comps = x->dims[x->rank - 1];
    if (comps != 1 && comps != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "last dim must be 1 (real) or 2 (complex)");
    int64_t axis = S->axis;
    if (k->opset >= 20 && k->n_in > 2 && k->in[2])
        axis = (int64_t)r_scalar(k->in[2]);
    if (axis < 0)
        axis += x->rank;
    if (axis < 0 || axis >= x->rank - 1)
        return pare_error_set(err, PARE_ERR_INVALID, "axis %lld out of range", (long long)axis);
    int64_t L = x->dims[axis];
    int64_t n = S->inverse && S->onesided ? 2 * (L - 1) : L;
    if (k->n_in > 1 && k->in[1] && r_numel(k->in[1]) > 0)
        n = (int64_t)r_scalar(k->in[1]);
    if (n < 1 || n > ((int64_t)1 << 30))
        return pare_error_set(err, PARE_ERR_INVALID, "dft_length %lld", (long long)n);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->rank - 1; i++)
        inner *= x->dims[i];
    bool irfft = S->inverse && S->onesided;
    int64_t nout = !S->inverse && S->onesided ? n / 2 + 1 : n, ocomps = irfft ? 1 : 2;
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, x->dims, (size_t)x->rank * 8);
    dims[axis] = nout;
    dims[x->rank - 1] = ocomps;
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, dims, &y, err);
    if (st)
        return st;
    double *re = malloc((size_t)n * 2 * sizeof *re);
    if (!re)
        return r_nomem(err);
    double *im = re + n;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            for (int64_t t = 0; t < n; t++)
                re[t] = im[t] = 0;
            int64_t take = irfft ? (L < n / 2 + 1 ? L : n / 2 + 1) : (L < n ? L : n);
            for (int64_t t = 0; t < take; t++) {
                size_t e = (size_t)(((o * L + t) * inner + in) * comps);
                re[t] = pare_dtype_get_f64(x->dtype, x->data, e);
                im[t] = comps == 2 ? pare_dtype_get_f64(x->dtype, x->data, e + 1) : 0;
            }
            if (irfft) /* Hermitian extension of the one-sided spectrum */
                for (int64_t t = n / 2 + 1; t < n; t++) {
                    re[t] = re[n - t];
                    im[t] = -im[n - t];
                }
            if ((st = r_dft(re, im, n, S->inverse ? 1 : -1, err)))
                break;
            for (int64_t t = 0; t < nout; t++) {
                size_t e = (size_t)(((o * nout + t) * inner + in) * ocomps);
                double sc = S->inverse ? 1.0 / (double)n : 1.0;
                pare_dtype_set_f64(y->dtype, y->data, e, re[t] * sc);
                if (ocomps == 2)
                    pare_dtype_set_f64(y->dtype, y->data, e + 1, im[t] * sc);
            }
        }
    free(re);
    return st;
}

static pare_status stft_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    bool *s = malloc(sizeof *s);
    if (!s)
        return r_nomem(err);
    *s = pare_node_attr_int(n, "onesided", 1) != 0;
    *state = s;
    return PARE_OK;
}

static pare_status stft_run(pare_kctx *k, pare_error *err)
{
    bool onesided = *(const bool *)k->state;
    const pare_tensor *x = k->in[0], *fs = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *win = k->n_in > 2 ? k->in[2] : NULL, *fl = k->n_in > 3 ? k->in[3] : NULL;
    if (!x || x->rank != 3 || !pare_dtype_is_float(x->dtype) || !fs)
        return pare_error_set(err, PARE_ERR_INVALID, "signal must be [batch, length, 1 or 2]");
    int64_t comps = x->dims[2], len = x->dims[1], batch = x->dims[0];
    if (comps != 1 && comps != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "last dim must be 1 or 2");
    int64_t step = (int64_t)r_scalar(fs);
    int64_t flen = fl ? (int64_t)r_scalar(fl) : win ? r_numel(win) : len;
    if (win && (win->rank != 1 || r_numel(win) != flen))
        return pare_error_set(err, PARE_ERR_INVALID, "window must have frame_length elements");
    if (step < 1 || flen < 1 || flen > len)
        return pare_error_set(err, PARE_ERR_INVALID, "frame_step %lld / frame_length %lld",
                              (long long)step, (long long)flen);
    if (comps == 2)
        onesided = false;
    int64_t frames = 1 + (len - flen) / step, bins = onesided ? flen / 2 + 1 : flen;
    int64_t dims[4] = {batch, frames, bins, 2};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, 4, dims, &y, err);
    if (st)
        return st;
    double *re = malloc((size_t)flen * 2 * sizeof *re);
    if (!re)
        return r_nomem(err);
    double *im = re + flen;
    for (int64_t b = 0; b < batch && !st; b++)
        for (int64_t f = 0; f < frames && !st; f++) {
            for (int64_t t = 0; t < flen; t++) {
                size_t e = (size_t)((b * len + f * step + t) * comps);
                double w = win ? pare_dtype_get_f64(win->dtype, win->data, (size_t)t) : 1.0;
                re[t] = pare_dtype_get_f64(x->dtype, x->data, e) * w;
                im[t] = comps == 2 ? pare_dtype_get_f64(x->dtype, x->data, e + 1) * w : 0;
            }
            if ((st = r_dft(re, im, flen, -1, err)))
                break;
            for (int64_t t = 0; t < bins; t++) {
                size_t e = (size_t)(((b * frames + f) * bins + t) * 2);
                pare_dtype_set_f64(y->dtype, y->data, e, re[t]);
                pare_dtype_set_f64(y->dtype, y->data, e + 1, im[t]);
            }
        }
    free(re);
    return st;
}

/* ------------------------------------------------------------------ */
/* AffineGrid                                                          */

static pare_status affine_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    bool *s = malloc(sizeof *s);
    if (!s)
        return r_nomem(err);
    *s = pare_node_attr_int(n, "align_corners", 0) != 0;
    *state = s;
    return PARE_OK;
}

static double affine_coord(int64_t i, int64_t size, bool align)
{
    if (align)
        return size > 1 ? -1.0 + (double)i * (2.0 / (double)(size - 1)) : -1.0;
    double step = 2.0 / (double)size;
    return -1.0 + step / 2 + (double)i * step;
}

static pare_status affine_run(pare_kctx *k, pare_error *err)
{
    bool align = *(const bool *)k->state;
    const pare_tensor *th = k->in[0], *sz = k->n_in > 1 ? k->in[1] : NULL;
    if (!th || !sz || !pare_dtype_is_float(th->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "theta (float) and size are required");
    int64_t s[5];
    int64_t ns = pare_tensor_ints(sz, s, 5);
    if (ns != 4 && ns != 5)
        return pare_error_set(err, PARE_ERR_INVALID, "size must have 4 or 5 int64 elements");
    int nd = (int)ns - 2; /* spatial dims */
    int64_t N = s[0];
    if (th->rank != 3 || th->dims[0] != N || th->dims[1] != nd || th->dims[2] != nd + 1)
        return pare_error_set(err, PARE_ERR_INVALID, "theta must be %lldx%dx%d", (long long)N,
                              nd, nd + 1);
    for (int i = 2; i < ns; i++)
        if (s[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative size");
    int64_t D = nd == 3 ? s[2] : 1, Hh = s[ns - 2], Wd = s[ns - 1];
    int64_t dims[5] = {N};
    if (nd == 3) {
        dims[1] = D;
        dims[2] = Hh;
        dims[3] = Wd;
        dims[4] = 3;
    } else {
        dims[1] = Hh;
        dims[2] = Wd;
        dims[3] = 2;
    }
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, th->dtype, nd + 2, dims, &y, err);
    if (st)
        return st;
    double *t = r_convert(th, PARE_DT_DOUBLE, err);
    if (!t)
        return err->status;
    size_t o = 0;
    for (int64_t n = 0; n < N; n++) {
        const double *tn = t + n * nd * (nd + 1);
        for (int64_t d = 0; d < D; d++)
            for (int64_t h = 0; h < Hh; h++)
                for (int64_t w = 0; w < Wd; w++) {
                    double p[4] = {affine_coord(w, Wd, align), affine_coord(h, Hh, align), 1, 1};
                    if (nd == 3)
                        p[2] = affine_coord(d, D, align);
                    for (int r = 0; r < nd; r++) {
                        double v = 0;
                        for (int c = 0; c <= nd; c++)
                            v += tn[r * (nd + 1) + c] * p[c];
                        pare_dtype_set_f64(y->dtype, y->data, o++, v);
                    }
                }
    }
    free(t);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* NonMaxSuppression                                                   */

typedef struct nms_box {
    float score;
    int64_t idx;
} nms_box;

static int nms_cmp(const void *a, const void *b)
{
    const nms_box *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static void nms_extent(const float *b, int center, float *x0, float *x1, float *y0, float *y1)
{
    if (center) {
        *x0 = b[0] - b[2] / 2;
        *x1 = b[0] + b[2] / 2;
        *y0 = b[1] - b[3] / 2;
        *y1 = b[1] + b[3] / 2;
    } else {
        *y0 = fminf(b[0], b[2]);
        *y1 = fmaxf(b[0], b[2]);
        *x0 = fminf(b[1], b[3]);
        *x1 = fmaxf(b[1], b[3]);
    }
}

static bool nms_suppress(const float *a, const float *b, int center, float thr)
{
    float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
    nms_extent(a, center, &ax0, &ax1, &ay0, &ay1);
    nms_extent(b, center, &bx0, &bx1, &by0, &by1);
    float ix0 = fmaxf(ax0, bx0), ix1 = fminf(ax1, bx1);
    if (ix1 <= ix0)
        return false;
    float iy0 = fmaxf(ay0, by0), iy1 = fminf(ay1, by1);
    if (iy1 <= iy0)
        return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    if (inter <= 0)
        return false;
    float a1 = (ax1 - ax0) * (ay1 - ay0), a2 = (bx1 - bx0) * (by1 - by0);
    float uni = a1 + a2 - inter;
    if (a1 <= 0 || a2 <= 0 || uni <= 0)
        return false;
    return inter / uni > thr;
}

static pare_status nms_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    int *s = malloc(sizeof *s);
    if (!s)
        return r_nomem(err);
    *s = (int)pare_node_attr_int(n, "center_point_box", 0);
    if (*s != 0 && *s != 1) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "center_point_box must be 0 or 1");
    }
    *state = s;
    return PARE_OK;
}

static pare_status nms_run(pare_kctx *k, pare_error *err)
{
    int center = *(const int *)k->state;
    const pare_tensor *bx = k->in[0], *sc = k->n_in > 1 ? k->in[1] : NULL;
    if (!bx || !sc || bx->rank != 3 || sc->rank != 3 || bx->dims[2] != 4 ||
        sc->dims[0] != bx->dims[0] || sc->dims[2] != bx->dims[1])
        return pare_error_set(err, PARE_ERR_INVALID,
                              "boxes must be [batch, n, 4] and scores [batch, classes, n]");
    int64_t maxout = 0;
    float iou = 0, sthr = 0;
    bool has_sthr = false;
    if (k->n_in > 2 && k->in[2] && r_numel(k->in[2]) > 0)
        maxout = (int64_t)r_scalar(k->in[2]);
    if (k->n_in > 3 && k->in[3] && r_numel(k->in[3]) > 0)
        iou = (float)r_scalar(k->in[3]);
    if (k->n_in > 4 && k->in[4] && r_numel(k->in[4]) > 0) {
        sthr = (float)r_scalar(k->in[4]);
        has_sthr = true;
    }
    if (maxout < 0)
        maxout = 0;
    int64_t B = bx->dims[0], N = bx->dims[1], C = sc->dims[1];
    float *boxes = r_convert(bx, PARE_DT_FLOAT, err), *scores = NULL;
    nms_box *cand = NULL;
    int64_t *sel = NULL, *res = NULL;
    size_t nres = 0, cap = 0;
    pare_status st = PARE_OK;
    if (!boxes || !(scores = r_convert(sc, PARE_DT_FLOAT, err))) {
        st = err->status;
        goto done;
    }
    cand = malloc((size_t)(N > 0 ? N : 1) * sizeof *cand);
    sel = malloc((size_t)(N > 0 ? N : 1) * sizeof *sel);
    if (!cand || !sel) {
        st = r_nomem(err);
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = scores + (b * C + c) * N, *bb = boxes + b * N * 4;
            int64_t nc = 0, ns = 0;
            for (int64_t i = 0; i < N; i++)
                if (!has_sthr || s[i] > sthr)
                    cand[nc++] = (nms_box){s[i], i};
            qsort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            for (int64_t i = 0; i < nc && ns < maxout; i++) {
                bool keep = true;
                for (int64_t j = 0; j < ns && keep; j++)
                    if (nms_suppress(bb + cand[i].idx * 4, bb + sel[j] * 4, center, iou))
                        keep = false;
                if (!keep)
                    continue;
                sel[ns++] = cand[i].idx;
                if (nres == cap) {
                    cap = cap ? cap * 2 : 64;
                    int64_t *nr = realloc(res, cap * 3 * sizeof *nr);
                    if (!nr) {
                        st = r_nomem(err);
                        goto done;
                    }
                    res = nr;
                }
                res[nres * 3] = b;
                res[nres * 3 + 1] = c;
                res[nres * 3 + 2] = cand[i].idx;
                nres++;
            }
        }
    int64_t dims[2] = {(int64_t)nres, 3};
    pare_tensor *y;
    if (!(st = k->alloc_out(k, 0, PARE_DT_INT64, 2, dims, &y, err)) && nres)
        memcpy(y->data, res, nres * 3 * sizeof *res);
done:
    free(boxes);
    free(scores);
    free(cand);
    free(sel);
    free(res);
    return st;
}

/* ------------------------------------------------------------------ */
/* RoiAlign and MaxRoiPool                                             */

typedef struct roi_state {
    bool half_pixel, max_mode;
    int64_t oh, ow, sampling;
    float scale;
    int64_t pooled[2]; /* MaxRoiPool */
} roi_state;

static pare_status roialign_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    roi_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const char *ctm = pare_node_attr_string(n, "coordinate_transformation_mode",
                                            opset >= 16 ? "half_pixel" : "output_half_pixel");
    const char *mode = pare_node_attr_string(n, "mode", "avg");
    s->half_pixel = !strcmp(ctm, "half_pixel");
    s->max_mode = !strcmp(mode, "max");
    s->oh = pare_node_attr_int(n, "output_height", 1);
    s->ow = pare_node_attr_int(n, "output_width", 1);
    s->sampling = pare_node_attr_int(n, "sampling_ratio", 0);
    s->scale = pare_node_attr_float(n, "spatial_scale", 1.0f);
    if (s->oh < 1 || s->ow < 1 || s->sampling < 0 ||
        (strcmp(mode, "avg") && strcmp(mode, "max")) ||
        (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "bad RoiAlign attributes");
    }
    *state = s;
    return PARE_OK;
}

typedef struct roi_pc {
    int64_t pos[4];
    double w[4];
} roi_pc;

static pare_status roialign_run(pare_kctx *k, pare_error *err)
{
    const roi_state *S = k->state;
    const pare_tensor *x = k->in[0], *rois = k->n_in > 1 ? k->in[1] : NULL,
                      *bi = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !rois || !bi || x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 ||
        r_numel(bi) != rois->dims[0] || !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "X [N,C,H,W], rois [R,4] and batch_indices [R] are required");
    int64_t R = rois->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t dims[4] = {R, C, S->oh, S->ow};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, 4, dims, &y, err);
    if (st)
        return st;
    if (H == 0 || W == 0) { /* nothing to sample: every bin reads 0 */
        memset(y->data, 0, y->nbytes);
        return PARE_OK;
    }
    double *X = r_convert(x, PARE_DT_DOUBLE, err), *rv = NULL;
    roi_pc *pc = NULL;
    if (!X || !(rv = r_convert(rois, PARE_DT_DOUBLE, err))) {
        st = err->status;
        goto done;
    }
    double off = S->half_pixel ? 0.5 : 0.0;
    for (int64_t r = 0; r < R; r++) {
        int64_t b = (int64_t)pare_dtype_get_f64(bi->dtype, bi->data, (size_t)r);
        if (b < 0 || b >= x->dims[0]) {
            st = pare_error_set(err, PARE_ERR_INVALID, "batch index %lld out of range [0, %lld)",
                                (long long)b, (long long)x->dims[0]);
            goto done;
        }
        double sw = rv[r * 4] * S->scale - off, sh = rv[r * 4 + 1] * S->scale - off;
        double ew = rv[r * 4 + 2] * S->scale - off, eh = rv[r * 4 + 3] * S->scale - off;
        double rw = ew - sw, rh = eh - sh;
        if (!S->half_pixel) {
            rw = fmax(rw, 1.0);
            rh = fmax(rh, 1.0);
        }
        double bh = rh / (double)S->oh, bw = rw / (double)S->ow;
        double gh_f = S->sampling > 0 ? (double)S->sampling : ceil(rh / (double)S->oh);
        double gw_f = S->sampling > 0 ? (double)S->sampling : ceil(rw / (double)S->ow);
        if (!(gh_f >= 0 && gw_f >= 0 && gh_f <= 4096 && gw_f <= 4096)) { /* NaN too */
            st = pare_error_set(err, PARE_ERR_INVALID, "bad RoI");
            goto done;
        }
        int64_t gh = (int64_t)gh_f, gw = (int64_t)gw_f;
        if (gh < 0 || gw < 0 || gh > 4096 || gw > 4096) {
            st = pare_error_set(err, PARE_ERR_INVALID, "bad RoI");
            goto done;
        }
        double count = (double)(gh * gw > 1 ? gh * gw : 1);
        int64_t npc64;
        if (__builtin_mul_overflow(S->oh, S->ow, &npc64) ||
            __builtin_mul_overflow(npc64, gh * gw, &npc64) ||
            npc64 > INT64_MAX / (int64_t)sizeof *pc) {
            st = pare_error_set(err, PARE_ERR_LIMIT, "RoiAlign output too large");
            goto done;
        }
        size_t npc = (size_t)npc64;
        free(pc);
        pc = malloc((npc ? npc : 1) * sizeof *pc);
        if (!pc) {
            st = r_nomem(err);
            goto done;
        }
        size_t idx = 0;
        for (int64_t ph = 0; ph < S->oh; ph++)
            for (int64_t pw = 0; pw < S->ow; pw++)
                for (int64_t iy = 0; iy < gh; iy++) {
                    double yy = sh + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                    for (int64_t ix = 0; ix < gw; ix++) {
                        double xx = sw + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                        roi_pc *p = &pc[idx++];
                        memset(p, 0, sizeof *p);
                        if (!(yy >= -1.0 && yy <= (double)H && xx >= -1.0 && xx <= (double)W))
                            continue; /* outside, or NaN */
                        double yv = yy < 0 ? 0 : yy, xv = xx < 0 ? 0 : xx;
                        int64_t yl = (int64_t)yv, xl = (int64_t)xv, yh, xh;
                        if (yl >= H - 1) {
                            yh = yl = H - 1;
                            yv = (double)yl;
                        } else {
                            yh = yl + 1;
                        }
                        if (xl >= W - 1) {
                            xh = xl = W - 1;
                            xv = (double)xl;
                        } else {
                            xh = xl + 1;
                        }
                        double ly = yv - (double)yl, lx = xv - (double)xl;
                        double hy = 1 - ly, hx = 1 - lx;
                        p->pos[0] = yl * W + xl;
                        p->pos[1] = yl * W + xh;
                        p->pos[2] = yh * W + xl;
                        p->pos[3] = yh * W + xh;
                        p->w[0] = hy * hx;
                        p->w[1] = hy * lx;
                        p->w[2] = ly * hx;
                        p->w[3] = ly * lx;
                    }
                }
        for (int64_t c = 0; c < C; c++) {
            const double *xc = X + (b * C + c) * H * W;
            size_t pi = 0;
            for (int64_t ph = 0; ph < S->oh; ph++)
                for (int64_t pw = 0; pw < S->ow; pw++) {
                    double v = 0;
                    bool first = true;
                    for (int64_t g = 0; g < gh * gw; g++, pi++) {
                        const roi_pc *p = &pc[pi];
                        if (!S->max_mode) {
                            v += p->w[0] * xc[p->pos[0]] + p->w[1] * xc[p->pos[1]] +
                                 p->w[2] * xc[p->pos[2]] + p->w[3] * xc[p->pos[3]];
                        } else {
                            double m = fmax(fmax(p->w[0] * xc[p->pos[0]], p->w[1] * xc[p->pos[1]]),
                                            fmax(p->w[2] * xc[p->pos[2]], p->w[3] * xc[p->pos[3]]));
                            v = first ? m : fmax(v, m);
                            first = false;
                        }
                    }
                    if (!S->max_mode)
                        v /= count;
                    size_t o = (size_t)(((r * C + c) * S->oh + ph) * S->ow + pw);
                    pare_dtype_set_f64(y->dtype, y->data, o, v);
                }
        }
    }
done:
    free(X);
    free(rv);
    free(pc);
    return st;
}

static pare_status maxroipool_init(const pare_node *n, int64_t opset, void **state,
                                   pare_error *err)
{
    (void)opset;
    roi_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const int64_t *ps;
    if (pare_node_attr_ints(n, "pooled_shape", &ps) != 2 || ps[0] < 1 || ps[1] < 1) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "pooled_shape must be two positive ints");
    }
    s->pooled[0] = ps[0];
    s->pooled[1] = ps[1];
    s->scale = pare_node_attr_float(n, "spatial_scale", 1.0f);
    *state = s;
    return PARE_OK;
}

static pare_status maxroipool_run(pare_kctx *k, pare_error *err)
{
    const roi_state *S = k->state;
    const pare_tensor *x = k->in[0], *rois = k->n_in > 1 ? k->in[1] : NULL;
    if (!x || !rois || x->rank != 4 || rois->rank != 2 || rois->dims[1] != 5 ||
        !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "X [N,C,H,W] and rois [R,5] are required");
    int64_t R = rois->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t PH = S->pooled[0], PW = S->pooled[1];
    int64_t dims[4] = {R, C, PH, PW};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, 4, dims, &y, err);
    if (st)
        return st;
    for (int64_t r = 0; r < R; r++) {
        double rv[5];
        for (int i = 0; i < 5; i++)
            rv[i] = pare_dtype_get_f64(rois->dtype, rois->data, (size_t)(r * 5 + i));
        int64_t b = (int64_t)rv[0];
        if (b < 0 || b >= x->dims[0])
            return pare_error_set(err, PARE_ERR_INVALID, "batch index %lld out of range",
                                  (long long)b);
        int64_t sw = (int64_t)round(rv[1] * S->scale), shh = (int64_t)round(rv[2] * S->scale);
        int64_t ew = (int64_t)round(rv[3] * S->scale), eh = (int64_t)round(rv[4] * S->scale);
        int64_t rw = ew - sw + 1 > 1 ? ew - sw + 1 : 1, rh = eh - shh + 1 > 1 ? eh - shh + 1 : 1;
        double bh = (double)rh / (double)PH, bw = (double)rw / (double)PW;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ph = 0; ph < PH; ph++)
                for (int64_t pw = 0; pw < PW; pw++) {
                    int64_t hs = (int64_t)floor((double)ph * bh) + shh;
                    int64_t he = (int64_t)ceil((double)(ph + 1) * bh) + shh;
                    int64_t ws = (int64_t)floor((double)pw * bw) + sw;
                    int64_t we = (int64_t)ceil((double)(pw + 1) * bw) + sw;
                    hs = hs < 0 ? 0 : hs > H ? H : hs;
                    he = he < 0 ? 0 : he > H ? H : he;
                    ws = ws < 0 ? 0 : ws > W ? W : ws;
                    we = we < 0 ? 0 : we > W ? W : we;
                    double m = 0;
                    bool any = false;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++) {
                            double v = pare_dtype_get_f64(x->dtype, x->data,
                                                          (size_t)(((b * C + c) * H + h) * W + w));
                            if (!any || v > m)
                                m = v;
                            any = true;
                        }
                    size_t o = (size_t)(((r * C + c) * PH + ph) * PW + pw);
                    pare_dtype_set_f64(y->dtype, y->data, o, any ? m : 0.0);
                }
    }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* StringNormalizer                                                    */

typedef struct strnorm_state {
    int case_action; /* 0 NONE, 1 LOWER, 2 UPPER */
    bool sensitive;
    size_t n_stop;
    const pare_string *stop;
} strnorm_state;

static pare_status strnorm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    strnorm_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const char *ca = pare_node_attr_string(n, "case_change_action", "NONE");
    s->case_action = !strcmp(ca, "LOWER") ? 1 : !strcmp(ca, "UPPER") ? 2 : 0;
    if (s->case_action == 0 && strcmp(ca, "NONE")) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "unknown case_change_action '%s'", ca);
    }
    s->sensitive = pare_node_attr_int(n, "is_case_sensitive", 0) != 0;
    const pare_attr *a = pare_node_attr(n, "stopwords");
    if (a && a->type == PARE_ATTR_STRINGS) {
        s->n_stop = a->n;
        s->stop = a->strings;
    }
    *state = s;
    return PARE_OK;
}

/* Case change of ASCII and the Latin-1 supplement (U+00C0..U+00FE) letters. */
static void strnorm_case(char *s, size_t n, int action)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            s[i] = (char)(action == 1 ? tolower(c) : toupper(c));
        } else if (c == 0xC3 && i + 1 < n) {
            unsigned char d = (unsigned char)s[i + 1];
            if (action == 1 && d >= 0x80 && d <= 0x9E && d != 0x97)
                s[i + 1] = (char)(d + 0x20);
            else if (action == 2 && d >= 0xA0 && d <= 0xBE && d != 0xB7)
                s[i + 1] = (char)(d - 0x20);
            i++;
        }
    }
}

static bool strnorm_eq(const pare_string *a, const pare_string *b, bool sensitive)
{
    if (a->len != b->len)
        return false;
    if (sensitive)
        return memcmp(a->data, b->data, a->len) == 0;
    char *x = malloc(a->len + 1), *y = malloc(b->len + 1);
    bool eq = false;
    if (x && y) {
        memcpy(x, a->data, a->len);
        memcpy(y, b->data, b->len);
        strnorm_case(x, a->len, 1);
        strnorm_case(y, b->len, 1);
        eq = memcmp(x, y, a->len) == 0;
    }
    free(x);
    free(y);
    return eq;
}

static pare_status strnorm_run(pare_kctx *k, pare_error *err)
{
    const strnorm_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype != PARE_DT_STRING || (x->rank != 1 && !(x->rank == 2 && x->dims[0] == 1)))
        return pare_error_set(err, PARE_ERR_INVALID, "input must be a string tensor [C] or [1, C]");
    int64_t n = r_numel(x);
    const pare_string *in = x->data;
    int64_t *keep = malloc((size_t)(n > 0 ? n : 1) * sizeof *keep);
    if (!keep)
        return r_nomem(err);
    int64_t nk = 0;
    for (int64_t i = 0; i < n; i++) {
        bool stop = false;
        for (size_t j = 0; j < S->n_stop && !stop; j++)
            stop = strnorm_eq(&in[i], &S->stop[j], S->sensitive);
        if (!stop && in[i].len > 0)
            keep[nk++] = i;
    }
    int64_t dims[2] = {1, nk ? nk : 1};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, PARE_DT_STRING, x->rank, x->rank == 2 ? dims : dims + 1,
                                  &y, err);
    if (st) {
        free(keep);
        return st;
    }
    pare_string *out = y->data;
    for (int64_t i = 0; i < nk; i++) {
        const pare_string *s = &in[keep[i]];
        out[i].data = malloc(s->len + 1);
        if (!out[i].data) {
            free(keep);
            return r_nomem(err);
        }
        memcpy(out[i].data, s->data, s->len);
        out[i].data[s->len] = 0;
        out[i].len = s->len;
        if (S->case_action)
            strnorm_case(out[i].data, s->len, S->case_action);
    }
    free(keep);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */

#include "kernels_rnn_misc.c"

const pare_kernel pare_kernels_rnn[] = {
    {"", "RNN", 1, 0, rnn_init, rnn_run, r_free_state, NULL},
    {"", "GRU", 1, 0, gru_init, rnn_run, r_free_state, NULL},
    {"", "LSTM", 1, 0, lstm_init, rnn_run, r_free_state, NULL},
    {"", "Dropout", 1, 0, dropout_init, dropout_run, r_free_state, NULL},
    {"", "HannWindow", 17, 0, hann_init, window_run, r_free_state, NULL},
    {"", "HammingWindow", 17, 0, hamming_init, window_run, r_free_state, NULL},
    {"", "BlackmanWindow", 17, 0, blackman_init, window_run, r_free_state, NULL},
    {"", "MelWeightMatrix", 17, 0, mel_init, mel_run, r_free_state, NULL},
    {"", "DFT", 17, 0, dft_init, dft_run, r_free_state, NULL},
    {"", "STFT", 17, 0, stft_init, stft_run, r_free_state, NULL},
    {"", "AffineGrid", 20, 0, affine_init, affine_run, r_free_state, NULL},
    {"", "NonMaxSuppression", 10, 0, nms_init, nms_run, r_free_state, NULL},
    {"", "RoiAlign", 10, 0, roialign_init, roialign_run, r_free_state, NULL},
    {"", "MaxRoiPool", 1, 0, maxroipool_init, maxroipool_run, r_free_state, NULL},
    {"", "StringNormalizer", 10, 0, strnorm_init, strnorm_run, r_free_state, NULL},
    RNN_MISC_KERNELS
    {0},
};
