/* weights.c - pare_prune_weights: unstructured, N:M and block sparsity by
 * magnitude or Wanda scores (SparseGPT lives in sparsegpt.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/stats.h"
#include "prune_internal.h"

/* ---- selection ---------------------------------------------------------- */

/* Non-negative floats (and +inf, NaN) order like their bit patterns read as
 * unsigned integers, so the k-th smallest is found digit by digit from the
 * top byte: four passes of a 256-bucket histogram, exact, no sort, no copy. */
static uint32_t fbits(float f)
{
    uint32_t u;
    if (f == 0)
        f = 0; /* -0 -> +0 */
    memcpy(&u, &f, sizeof u);
    if (u & 0x80000000u)
        u = 0; /* negatives are not expected; treat as zero */
    return u;
}

float prune_kth_smallest(const float *v, size_t n, size_t k)
{
    uint32_t prefix = 0, mask = 0;
    size_t hist[256];
    for (int shift = 24; shift >= 0; shift -= 8) {
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < n; i++) {
            uint32_t u = fbits(v[i]);
            if ((u & mask) == prefix)
                hist[(u >> shift) & 0xff]++;
        }
        size_t d = 0;
        while (d < 255 && k >= hist[d]) {
            k -= hist[d];
            d++;
        }
        prefix |= (uint32_t)d << shift;
        mask |= 0xffu << shift;
    }
    float f;
    memcpy(&f, &prefix, sizeof f);
    return f;
}

void prune_mask_smallest(const float *score, size_t n, size_t count, unsigned char *mask)
{
    if (count == 0)
        return;
    if (count >= n) {
        memset(mask, 1, n);
        return;
    }
    uint32_t t = fbits(prune_kth_smallest(score, n, count - 1));
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        if (fbits(score[i]) < t) {
            mask[i] = 1;
            done++;
        }
    for (size_t i = 0; i < n && done < count; i++)
        if (fbits(score[i]) == t && !mask[i]) {
            mask[i] = 1;
            done++;
        }
}

/* ---- scores ------------------------------------------------------------- */

typedef struct scorer {
    prune_layer *L;
    const double *norm2; /* Wanda: sum of squares per feature; NULL: magnitude */
} scorer;

static inline float importance(const scorer *s, int64_t r, int64_t j)
{
    const prune_layer *L = s->L;
    float a = fabsf(L->w[prune_widx(L, r, j)]);
    if (s->norm2)
        a = (float)((double)a * sqrt(s->norm2[prune_fidx(L, r, j)]));
    return a;
}

/* Units of a layer: blocks of br x bc over [rows, cols] (1x1: elements). */
static int64_t n_units(const prune_layer *L, int br, int bc)
{
    return ((L->rows + br - 1) / br) * ((L->cols + bc - 1) / bc);
}

static void unit_scores(const scorer *s, int br, int bc, float *out)
{
    const prune_layer *L = s->L;
    int64_t nbc = (L->cols + bc - 1) / bc;
    int64_t u = 0;
    for (int64_t r0 = 0; r0 < L->rows; r0 += br)
        for (int64_t c = 0; c < nbc; c++, u++) {
            double sum = 0;
            int64_t cnt = 0;
            for (int64_t r = r0; r < r0 + br && r < L->rows; r++)
                for (int64_t j = c * bc; j < (c + 1) * bc && j < L->cols; j++, cnt++)
                    sum += importance(s, r, j);
            out[u] = (float)(sum / (double)cnt);
        }
}

static void zero_units(prune_layer *L, int br, int bc, const unsigned char *mask)
{
    int64_t nbc = (L->cols + bc - 1) / bc;
    int64_t u = 0;
    for (int64_t r0 = 0; r0 < L->rows; r0 += br)
        for (int64_t c = 0; c < nbc; c++, u++) {
            if (!mask[u])
                continue;
            for (int64_t r = r0; r < r0 + br && r < L->rows; r++)
                for (int64_t j = c * bc; j < (c + 1) * bc && j < L->cols; j++)
                    L->w[prune_widx(L, r, j)] = 0;
        }
}

/* N:M along the reduction axis of every row: in each group of m at most n kept. */
static void prune_nm(const scorer *s, int n, int m)
{
    prune_layer *L = s->L;
    float sc[256];
    unsigned char mk[256];
    for (int64_t r = 0; r < L->rows; r++)
        for (int64_t j0 = 0; j0 < L->cols; j0 += m) {
            int64_t gs = L->cols - j0 < m ? L->cols - j0 : m;
            if (gs <= n)
                continue;
            for (int64_t q = 0; q < gs; q++) {
                sc[q] = importance(s, r, j0 + q);
                mk[q] = 0;
            }
            prune_mask_smallest(sc, (size_t)gs, (size_t)(gs - n), mk);
            for (int64_t q = 0; q < gs; q++)
                if (mk[q])
                    L->w[prune_widx(L, r, j0 + q)] = 0;
        }
}

/* Wanda's comparison group: each output row alone. */
static pare_status prune_rows(const scorer *s, double sparsity, pare_error *err)
{
    prune_layer *L = s->L;
    float *sc = malloc((size_t)L->cols * sizeof *sc);
    unsigned char *mk = malloc((size_t)L->cols);
    if (!sc || !mk) {
        free(sc);
        free(mk);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    size_t count = (size_t)(sparsity * (double)L->cols);
    for (int64_t r = 0; r < L->rows; r++) {
        for (int64_t j = 0; j < L->cols; j++)
            sc[j] = importance(s, r, j);
        memset(mk, 0, (size_t)L->cols);
        prune_mask_smallest(sc, (size_t)L->cols, count, mk);
        for (int64_t j = 0; j < L->cols; j++)
            if (mk[j])
                L->w[prune_widx(L, r, j)] = 0;
    }
    free(sc);
    free(mk);
    return PARE_OK;
}

/* ---- Wanda statistics ----------------------------------------------------- */

typedef struct wanda_ctx {
    double **norm2; /* per layer */
    prune_layers *ls;
} wanda_ctx;

static pare_status wanda_sink(void *ctx, prune_layer *L, const double *rows, int64_t nrows,
                              pare_error *err)
{
    (void)err;
    wanda_ctx *w = ctx;
    size_t li = (size_t)(L - w->ls->items);
    double *n2 = w->norm2[li];
    int64_t nc = prune_row_cols(L);
    for (int64_t i = 0; i < nrows; i++) {
        const double *x = rows + i * nc;
        for (int64_t j = 0; j < nc; j++)
            n2[j] += x[j] * x[j];
    }
    return PARE_OK;
}

/* ---- the entry point ------------------------------------------------------ */

static const char *crit_name(pare_prune_criterion c)
{
    return c == PARE_PRUNE_WANDA ? "wanda" : c == PARE_PRUNE_SPARSEGPT ? "sparsegpt" : "magnitude";
}

static pare_status check_opts(const pare_prune_opts *o, pare_error *err)
{
    if (o->pattern_m || o->pattern_n) {
        if (o->pattern_m < 1 || o->pattern_m > 256)
            return pare_error_set(err, PARE_ERR_ARG, "pattern N:M: M must be 1..256 (got %d)",
                                  o->pattern_m);
        if (o->pattern_n < 1)
            return pare_error_set(err, PARE_ERR_ARG, "pattern N:M: N must be at least 1 (got %d)",
                                  o->pattern_n);
        if (o->pattern_n > o->pattern_m)
            return pare_error_set(err, PARE_ERR_ARG,
                                  "pattern N:M: N (%d) is larger than M (%d)", o->pattern_n,
                                  o->pattern_m);
        if (o->block_r > 1 || o->block_c > 1)
            return pare_error_set(err, PARE_ERR_ARG, "N:M and block patterns are exclusive");
    } else if (!(o->sparsity >= 0 && o->sparsity < 1)) {
        return pare_error_set(err, PARE_ERR_ARG, "sparsity %g is outside [0, 1)", o->sparsity);
    }
    if (o->block_r < 0 || o->block_c < 0 || o->block_r > 1 << 20 || o->block_c > 1 << 20)
        return pare_error_set(err, PARE_ERR_ARG, "block size %dx%d is out of range", o->block_r,
                              o->block_c);
    if (o->criterion < PARE_PRUNE_MAGNITUDE || o->criterion > PARE_PRUNE_SPARSEGPT)
        return pare_error_set(err, PARE_ERR_ARG, "unknown criterion %d", (int)o->criterion);
    if (o->criterion != PARE_PRUNE_MAGNITUDE && !o->calib.path)
        return pare_error_set(err, PARE_ERR_ARG, "criterion %s needs calibration data",
                              crit_name(o->criterion));
    if (o->criterion == PARE_PRUNE_SPARSEGPT && (o->block_r > 1 || o->block_c > 1))
        return pare_error_set(err, PARE_ERR_ARG, "sparsegpt does not do block patterns");
    if (o->damp < 0 || o->damp > 1e6 || o->sgpt_block < 0)
        return pare_error_set(err, PARE_ERR_ARG, "sparsegpt damping or block out of range");
    for (size_t i = 0; i < o->n_layers; i++)
        if (!o->layers[i].node || !(o->layers[i].sparsity >= 0 && o->layers[i].sparsity < 1))
            return pare_error_set(err, PARE_ERR_ARG, "layer sparsity of '%s' outside [0, 1)",
                                  o->layers[i].node ? o->layers[i].node : "?");
    return PARE_OK;
}

static void set_targets(const pare_prune_opts *o, prune_layers *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        prune_layer *L = &ls->items[i];
        if (o->pattern_m) {
            L->sparsity = 1.0 - (double)o->pattern_n / (double)o->pattern_m;
            continue;
        }
        L->sparsity = o->n_layers ? 0 : o->sparsity;
        for (size_t k = 0; k < o->n_layers; k++)
            if (L->node->name && strcmp(L->node->name, o->layers[k].node) == 0)
                L->sparsity = o->layers[k].sparsity;
    }
}

static pare_status method_text(const pare_prune_opts *o, bool global, pare_prune_report *r,
                               pare_error *err)
{
    char buf[160];
    if (o->pattern_m)
        snprintf(buf, sizeof buf, "%d:%d %s", o->pattern_n, o->pattern_m, crit_name(o->criterion));
    else if (o->block_r > 1 || o->block_c > 1)
        snprintf(buf, sizeof buf, "block %dx%d %s %s %g", o->block_r ? o->block_r : 1,
                 o->block_c ? o->block_c : 1, crit_name(o->criterion),
                 global ? "global" : "per-layer", o->sparsity);
    else if (o->n_layers)
        snprintf(buf, sizeof buf, "unstructured %s per-layer sparsities", crit_name(o->criterion));
    else
        snprintf(buf, sizeof buf, "unstructured %s %s %g", crit_name(o->criterion),
                 global ? "global" : o->criterion == PARE_PRUNE_WANDA ? "per-row" : "per-layer",
                 o->sparsity);
    free(r->method);
    if (!(r->method = prune_strdup(buf)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return PARE_OK;
}

pare_status pare_prune_weights(pare_model *m, const pare_prune_opts *o, pare_prune_report *r,
                               pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    pare_status st = check_opts(o, err);
    if (st)
        return st;
    double t0 = pare_now();
    pare_prune_report local;
    if (!r) {
        pare_prune_report_init(&local);
        r = &local;
    }
    prune_layers ls = {0};
    double **norm2 = NULL;
    float *scores = NULL;
    unsigned char *mask = NULL;
    if (r->params_before == 0 && r->nonzero_before == 0)
        pare_prune_count_params(m, &r->params_before, &r->nonzero_before);
    if ((st = prune_find_layers(m, &o->filter, r, &ls, err)))
        goto out;
    set_targets(o, &ls);
    int br = o->block_r > 0 ? o->block_r : 1, bc = o->block_c > 0 ? o->block_c : 1;
    bool blocks = br > 1 || bc > 1;
    bool global = !o->pattern_m && !o->per_layer && !o->n_layers &&
                  o->criterion == PARE_PRUNE_MAGNITUDE;
    if ((st = method_text(o, global, r, err)))
        goto out;

    if (o->criterion == PARE_PRUNE_SPARSEGPT) {
        int64_t samples = 0;
        if ((st = prune_sparsegpt(m, o, &ls, &samples, err)))
            goto out;
        r->calib_samples = samples;
        goto commit;
    }
    if (o->criterion == PARE_PRUNE_WANDA && ls.n) {
        norm2 = calloc(ls.n, sizeof *norm2);
        size_t *which = calloc(ls.n, sizeof *which);
        if (!norm2 || !which) {
            free(which);
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
        size_t nw = 0;
        for (size_t i = 0; i < ls.n; i++) {
            norm2[i] = calloc((size_t)prune_nfeat(&ls.items[i]), sizeof(double));
            if (!norm2[i]) {
                free(which);
                st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                goto out;
            }
            if (ls.items[i].xv)
                which[nw++] = i;
            else
                prune_note(&ls.items[i], "constant input: magnitude");
        }
        wanda_ctx wc = {norm2, &ls};
        prune_rowsink sink = {wanda_sink, &wc};
        int64_t samples = 0;
        st = prune_calib_run(m, &o->calib, &ls, which, nw, &sink, &samples, err);
        free(which);
        if (st)
            goto out;
        r->calib_samples = samples;
        for (size_t i = 0; i < ls.n; i++)
            if (!ls.items[i].xv || ls.items[i].calib_bad) {
                free(norm2[i]);
                norm2[i] = NULL;
            }
    }

    if (global) {
        size_t total = 0;
        for (size_t i = 0; i < ls.n; i++)
            total += (size_t)n_units(&ls.items[i], br, bc);
        scores = malloc((total ? total : 1) * sizeof *scores);
        mask = calloc(total ? total : 1, 1);
        if (!scores || !mask) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
        size_t off = 0;
        for (size_t i = 0; i < ls.n; i++) {
            scorer s = {&ls.items[i], NULL};
            unit_scores(&s, br, bc, scores + off);
            off += (size_t)n_units(&ls.items[i], br, bc);
        }
        size_t count = (size_t)(o->sparsity * (double)total);
        if (count > 0 && total > 0)
            r->threshold = prune_kth_smallest(scores, total, count - 1);
        prune_mask_smallest(scores, total, count, mask);
        off = 0;
        for (size_t i = 0; i < ls.n; i++) {
            zero_units(&ls.items[i], br, bc, mask + off);
            off += (size_t)n_units(&ls.items[i], br, bc);
        }
        goto commit;
    }
    for (size_t i = 0; i < ls.n; i++) {
        prune_layer *L = &ls.items[i];
        scorer s = {L, norm2 ? norm2[i] : NULL};
        if (o->pattern_m) {
            prune_nm(&s, o->pattern_n, o->pattern_m);
        } else if (!blocks && s.norm2) {
            if ((st = prune_rows(&s, L->sparsity, err)))
                goto out;
        } else {
            size_t nu = (size_t)n_units(L, br, bc);
            free(scores);
            free(mask);
            scores = malloc(nu * sizeof *scores);
            mask = calloc(nu, 1);
            if (!scores || !mask) {
                st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                goto out;
            }
            unit_scores(&s, br, bc, scores);
            prune_mask_smallest(scores, nu, (size_t)(L->sparsity * (double)nu), mask);
            zero_units(L, br, bc, mask);
        }
    }
commit:
    if ((st = prune_commit_layers(&ls, err)))
        goto out;
    if ((st = prune_report_layers(&ls, r, err)))
        goto out;
    pare_prune_count_params(m, &r->params_after, &r->nonzero_after);
    r->seconds += pare_now() - t0;
out:
    if (norm2)
        for (size_t i = 0; i < ls.n; i++)
            free(norm2[i]);
    free(norm2);
    free(scores);
    free(mask);
    prune_layers_release(&ls);
    if (r == &local)
        pare_prune_report_release(&local);
    return st;
}
