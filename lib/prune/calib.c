/* calib.c - streams the inputs of prunable layers over calibration data:
 * the data runs through the executor batch by batch and an observer turns
 * each layer's input into rows (im2col rows for Conv) handed to a sink, so
 * no activation outlives its batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/feed.h"
#include "prune_internal.h"

#define ROWS_PER_BLOCK 128

int64_t prune_row_cols(const prune_layer *L)
{
    return L->kind == PK_CONV ? L->cin * L->ksize : L->cin;
}

typedef struct calib_ctx {
    prune_layers *ls;
    const size_t *which;
    size_t n_which;
    const prune_rowsink *sink;
    double *buf;       /* ROWS_PER_BLOCK rows of the widest layer */
    pare_error err;
    bool failed;
} calib_ctx;

static pare_status flush(calib_ctx *c, prune_layer *L, int64_t *nr)
{
    pare_status st = PARE_OK;
    if (*nr)
        st = c->sink->fn(c->sink->ctx, L, c->buf, *nr, &c->err);
    *nr = 0;
    return st;
}

/* Conv geometry for 1-D and 2-D kernels (1-D as height 1). */
typedef struct conv_geo {
    int64_t c, h, w, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow;
} conv_geo;

static bool conv_geometry(const prune_layer *L, const pare_tensor *t, conv_geo *g, char *why,
                          size_t wsz)
{
    const pare_node *n = L->node;
    const pare_value *wv = L->wv;
    int sp = wv->shape.rank - 2;
    if (sp < 1 || sp > 2 || t->rank != sp + 2) {
        snprintf(why, wsz, "input rank %d not captured (1-D and 2-D convolutions only)", t->rank);
        return false;
    }
    const int64_t *st = NULL, *dl = NULL, *pd = NULL;
    size_t nst = pare_node_attr_ints(n, "strides", &st);
    size_t ndl = pare_node_attr_ints(n, "dilations", &dl);
    size_t npd = pare_node_attr_ints(n, "pads", &pd);
    const char *ap = pare_node_attr_string(n, "auto_pad", "NOTSET");
    int64_t in[2] = {1, 1}, k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, pb[2] = {0, 0},
            out[2];
    for (int i = 0; i < sp; i++) {
        int a = sp == 1 ? 1 : i;
        in[a] = t->dims[2 + i];
        k[a] = wv->shape.dims[2 + i].value;
        if (nst == (size_t)sp)
            s[a] = st[i];
        if (ndl == (size_t)sp)
            d[a] = dl[i];
        if (s[a] < 1 || d[a] < 1) {
            snprintf(why, wsz, "bad strides or dilations");
            return false;
        }
        int64_t ext = (k[a] - 1) * d[a] + 1;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            out[a] = (in[a] + s[a] - 1) / s[a];
            int64_t tot = (out[a] - 1) * s[a] + ext - in[a];
            if (tot < 0)
                tot = 0;
            pb[a] = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
        } else {
            int64_t pe = 0;
            if (!strcmp(ap, "NOTSET") && npd == (size_t)(2 * sp)) {
                pb[a] = pd[i];
                pe = pd[i + sp];
            }
            if (pb[a] < 0 || pe < 0) {
                snprintf(why, wsz, "negative pads");
                return false;
            }
            int64_t span = in[a] + pb[a] + pe - ext;
            out[a] = span < 0 ? 0 : span / s[a] + 1;
        }
    }
    if (sp == 1)
        out[0] = 1;
    g->c = t->dims[1];
    g->h = in[0];
    g->w = in[1];
    g->kh = k[0];
    g->kw = k[1];
    g->sh = s[0];
    g->sw = s[1];
    g->dh = d[0];
    g->dw = d[1];
    g->ph = pb[0];
    g->pw = pb[1];
    g->oh = out[0];
    g->ow = out[1];
    return true;
}

static pare_status emit_rows(calib_ctx *c, prune_layer *L, const pare_tensor *t)
{
    char why[160];
    if (t->dtype != PARE_DT_FLOAT || !t->data) {
        L->calib_bad = true;
        prune_note(L, "input is not float32: magnitude");
        return PARE_OK;
    }
    const float *x = t->data;
    int64_t nc = prune_row_cols(L), nr = 0;
    double *row;
    if (L->kind == PK_GEMM || L->kind == PK_MATMUL) {
        int64_t K = L->cin;
        if (t->rank < 1 || t->dims[L->xt ? 0 : t->rank - 1] != K) {
            L->calib_bad = true;
            prune_note(L, "input does not match the weight: magnitude");
            return PARE_OK;
        }
        int64_t rows = (int64_t)pare_tensor_numel(t) / K;
        for (int64_t i = 0; i < rows; i++) {
            row = c->buf + nr * nc;
            if (L->xt)
                for (int64_t j = 0; j < K; j++)
                    row[j] = x[j * rows + i];
            else
                for (int64_t j = 0; j < K; j++)
                    row[j] = x[i * K + j];
            if (++nr == ROWS_PER_BLOCK && flush(c, L, &nr))
                return c->err.status;
        }
        return flush(c, L, &nr);
    }
    if (L->kind == PK_CONVT) {
        if (t->rank < 2 || t->dims[1] != L->cin) {
            L->calib_bad = true;
            prune_note(L, "input does not match the weight: magnitude");
            return PARE_OK;
        }
        int64_t N = t->dims[0], C = t->dims[1];
        int64_t nc0 = N * C;
        int64_t sp = nc0 > 0 ? (int64_t)pare_tensor_numel(t) / nc0 : 0;
        for (int64_t b = 0; b < N; b++)
            for (int64_t p = 0; p < sp; p++) {
                row = c->buf + nr * nc;
                for (int64_t ch = 0; ch < C; ch++)
                    row[ch] = x[(b * C + ch) * sp + p];
                if (++nr == ROWS_PER_BLOCK && flush(c, L, &nr))
                    return c->err.status;
            }
        return flush(c, L, &nr);
    }
    conv_geo g;
    memset(&g, 0, sizeof g);
    if (!conv_geometry(L, t, &g, why, sizeof why)) {
        L->calib_bad = true;
        prune_note(L, "%s: magnitude", why);
        return PARE_OK;
    }
    if (g.c != L->cin) {
        L->calib_bad = true;
        prune_note(L, "input channels differ from the weight: magnitude");
        return PARE_OK;
    }
    int64_t N = t->dims[0];
    for (int64_t b = 0; b < N; b++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                row = c->buf + nr * nc;
                int64_t j = 0;
                for (int64_t ch = 0; ch < g.c; ch++) {
                    const float *plane = x + (b * g.c + ch) * g.h * g.w;
                    for (int64_t ky = 0; ky < g.kh; ky++) {
                        int64_t iy = oy * g.sh - g.ph + ky * g.dh;
                        for (int64_t kx = 0; kx < g.kw; kx++, j++) {
                            int64_t ix = ox * g.sw - g.pw + kx * g.dw;
                            row[j] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
                                         ? plane[iy * g.w + ix]
                                         : 0.0;
                        }
                    }
                }
                if (++nr == ROWS_PER_BLOCK && flush(c, L, &nr))
                    return c->err.status;
            }
    return flush(c, L, &nr);
}

static int observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    calib_ctx *c = ctx;
    for (size_t i = 0; i < c->n_which; i++) {
        prune_layer *L = &c->ls->items[c->which[i]];
        if (!L->xv || L->xv->producer != node || L->xv->producer_output != output)
            continue;
        if (emit_rows(c, L, t)) {
            c->failed = true;
            return 1;
        }
    }
    return 0;
}

pare_status prune_calib_run(pare_model *m, const pare_prune_calib *cal, prune_layers *ls,
                            const size_t *which, size_t n_which, const prune_rowsink *sink,
                            int64_t *samples, pare_error *err)
{
    *samples = 0;
    if (!n_which)
        return PARE_OK;
    calib_ctx c = {ls, which, n_which, sink, NULL, {0}, false};
    int64_t widest = 1;
    for (size_t i = 0; i < n_which; i++) {
        int64_t w = prune_row_cols(&ls->items[which[i]]);
        if (w > widest)
            widest = w;
    }
    if (widest > (int64_t)1 << 24)
        return pare_error_set(err, PARE_ERR_LIMIT, "layer input rows of %lld values are too wide",
                              (long long)widest);
    c.buf = malloc((size_t)widest * ROWS_PER_BLOCK * sizeof(double));
    if (!c.buf)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_session *s = NULL;
    pare_feed *f = NULL;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = cal->threads;
    pare_status st = pare_session_new(m, &so, &s, err);
    if (st)
        goto out;
    pare_session_set_observer(s, observer, &c);
    if ((st = pare_feed_open(cal->path, s, cal->batch > 0 ? cal->batch : 8, cal->samples, &f,
                             err))) {
        if (st == PARE_ERR_ARG) /* data that does not fit the model: bad input, not usage */
            st = err->status = PARE_ERR_INVALID;
        goto out;
    }
    if ((st = pare_feed_set_sampling(f, cal->seed, err)))
        goto out;
    int64_t total = pare_feed_count(f);
    size_t nin = pare_session_input_count(s);
    for (;;) {
        pare_tensor **ins = NULL, **outs = NULL;
        int64_t got = 0;
        size_t nout = 0;
        if ((st = pare_feed_next(f, &ins, &got, err))) {
            /* the dataset names its file */
            goto out;
        }
        if (!ins)
            break;
        /* layers that read a graph input directly */
        for (size_t i = 0; i < n_which && !st; i++) {
            prune_layer *L = &ls->items[which[i]];
            if (!L->xv || L->xv->producer)
                continue;
            for (size_t k = 0; k < nin; k++)
                if (ins[k] && ins[k]->name && !strcmp(ins[k]->name, L->xv->name)) {
                    if ((st = emit_rows(&c, L, ins[k])))
                        *err = c.err;
                    break;
                }
        }
        if (!st)
            st = pare_session_run(s, ins, nin, &outs, &nout, err);
        if (st && c.failed)
            *err = c.err;
        pare_tensors_free(ins, nin);
        pare_tensors_free(outs, nout);
        if (st)
            goto out;
        *samples += got;
        if (cal->progress)
            cal->progress(cal->progress_ctx, *samples, total);
    }
    if (*samples == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "%s: no calibration samples", cal->path);
out:
    pare_feed_close(f);
    pare_session_free(s);
    free(c.buf);
    return st;
}
