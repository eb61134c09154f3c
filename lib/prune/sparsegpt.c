/* sparsegpt.c - SparseGPT (Frantar and Alistarh, 2023), written from the
 * paper's description: for each layer in order, H = X^T X over the layer's
 * inputs from the calibration data (run through the model pruned so far),
 * damped, inverted through Cholesky; then the weight columns are visited in
 * blocks: a mask is chosen from w^2 / [H^-1]_jj^2 (per block of columns, or
 * per group of M for N:M), and each pruned weight's error is spread over
 * the columns not visited yet (the OBS update), lazily per block. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prune_internal.h"

#define SGPT_MAX_COLS 4096

typedef struct hess_ctx {
    double *H;   /* n x n, upper triangle accumulated */
    int64_t n;
    int64_t rows;
} hess_ctx;

static pare_status hess_sink(void *ctx, prune_layer *L, const double *rows, int64_t nrows,
                             pare_error *err)
{
    (void)L;
    (void)err;
    hess_ctx *h = ctx;
    int64_t n = h->n;
    for (int64_t r = 0; r < nrows; r++) {
        const double *x = rows + r * n;
        for (int64_t i = 0; i < n; i++) {
            double xi = x[i];
            if (xi == 0)
                continue;
            double *hr = h->H + i * n;
            for (int64_t j = i; j < n; j++)
                hr[j] += xi * x[j];
        }
    }
    h->rows += nrows;
    return PARE_OK;
}

/* In-place lower Cholesky of the n x n matrix a (upper part left as is);
 * false when a is not positive definite. */
static bool cholesky(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0))
            return false;
        d = sqrt(d);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int64_t k = 0; k < j; k++)
                s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
    }
    return true;
}

/* The upper Cholesky factor U of H^-1 (H^-1 = U^T U) from the damped H.
 * Returns false when H stays indefinite. */
static bool inverse_factor(const double *H, int64_t n, double damp, double *U, double *tmp)
{
    double mean = 0;
    for (int64_t i = 0; i < n; i++)
        mean += H[i * n + i];
    mean /= (double)n;
    if (!(mean > 0))
        mean = 1;
    for (int attempt = 0; attempt < 6; attempt++, damp *= 10) {
        /* tmp = full symmetric H + damp*mean*I */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                tmp[i * n + j] = i <= j ? H[i * n + j] : H[j * n + i];
        for (int64_t i = 0; i < n; i++)
            tmp[i * n + i] += damp * mean;
        if (!cholesky(tmp, n))
            continue;
        /* U <- inverse of lower L (lower triangular), in U */
        memset(U, 0, (size_t)(n * n) * sizeof *U);
        for (int64_t j = 0; j < n; j++) {
            U[j * n + j] = 1.0 / tmp[j * n + j];
            for (int64_t i = j + 1; i < n; i++) {
                double s = 0;
                for (int64_t k = j; k < i; k++)
                    s -= tmp[i * n + k] * U[k * n + j];
                U[i * n + j] = s / tmp[i * n + i];
            }
        }
        /* tmp <- H^-1 = Linv^T Linv (full) */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i; j < n; j++) {
                double s = 0;
                for (int64_t k = j; k < n; k++)
                    s += U[k * n + i] * U[k * n + j];
                tmp[i * n + j] = tmp[j * n + i] = s;
            }
        if (!cholesky(tmp, n))
            continue;
        /* U = L2^T: upper */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                U[i * n + j] = j >= i ? tmp[j * n + i] : 0;
        return true;
    }
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* smallest `count` of v[0..n) marked in mask (ties: the first ones) */
static void mark_smallest(const double *v, int64_t n, int64_t count, unsigned char *mask,
                          double *scratch)
{
    if (count <= 0)
        return;
    if (count >= n) {
        memset(mask, 1, (size_t)n);
        return;
    }
    memcpy(scratch, v, (size_t)n * sizeof *v);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double);
    double t = scratch[count - 1];
    int64_t done = 0;
    for (int64_t i = 0; i < n; i++)
        if (v[i] < t) {
            mask[i] = 1;
            done++;
        }
    for (int64_t i = 0; i < n && done < count; i++)
        if (v[i] == t && !mask[i]) {
            mask[i] = 1;
            done++;
        }
}

/* Prunes W [rows][n] (double, row-major) in place. */
static pare_status sgpt_layer(double *W, int64_t rows, int64_t n, const double *U, double sparsity,
                              int pn, int pm, int bs, pare_error *err)
{
    if (pm > 0)
        bs = ((bs + pm - 1) / pm) * pm;
    int64_t B = bs < n ? bs : n;
    double *err1 = malloc((size_t)(rows * B) * sizeof *err1);
    double *score = malloc((size_t)(rows * B) * sizeof *score);
    double *scratch = malloc((size_t)(rows * B) * sizeof *scratch);
    unsigned char *mask = malloc((size_t)(rows * B));
    if (!err1 || !score || !scratch || !mask) {
        free(err1);
        free(score);
        free(scratch);
        free(mask);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (int64_t i1 = 0; i1 < n; i1 += B) {
        int64_t i2 = i1 + B < n ? i1 + B : n, cnt = i2 - i1;
        memset(mask, 0, (size_t)(rows * cnt));
        if (pm <= 0) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t i = 0; i < cnt; i++) {
                    double w = W[r * n + i1 + i], d = U[(i1 + i) * n + i1 + i];
                    score[r * cnt + i] = w * w / (d * d);
                }
            mark_smallest(score, rows * cnt, (int64_t)(sparsity * (double)(rows * cnt)), mask,
                          scratch);
        }
        for (int64_t i = 0; i < cnt; i++) {
            int64_t col = i1 + i;
            if (pm > 0 && i % pm == 0) {
                int64_t gs = cnt - i < pm ? cnt - i : pm;
                for (int64_t r = 0; gs > pn && r < rows; r++) {
                    double sc[256];
                    unsigned char mk[256];
                    memset(mk, 0, sizeof mk);
                    for (int64_t q = 0; q < gs; q++) {
                        double w = W[r * n + col + q], d = U[(col + q) * n + col + q];
                        sc[q] = w * w / (d * d);
                    }
                    mark_smallest(sc, gs, gs - pn, mk, scratch);
                    for (int64_t q = 0; q < gs; q++)
                        mask[r * cnt + i + q] = mk[q];
                }
            }
            double d = U[col * n + col];
            const double *urow = U + col * n;
            for (int64_t r = 0; r < rows; r++) {
                double *wr = W + r * n;
                double w = wr[col];
                double q = mask[r * cnt + i] ? 0.0 : w;
                double e = (w - q) / d;
                wr[col] = q;
                if (e != 0)
                    for (int64_t k = col + 1; k < i2; k++)
                        wr[k] -= e * urow[k];
                err1[r * B + i] = e;
            }
        }
        for (int64_t r = 0; r < rows; r++) {
            double *wr = W + r * n;
            for (int64_t i = 0; i < cnt; i++) {
                double e = err1[r * B + i];
                if (e == 0)
                    continue;
                const double *urow = U + (i1 + i) * n;
                for (int64_t k = i2; k < n; k++)
                    wr[k] -= e * urow[k];
            }
        }
    }
    free(err1);
    free(score);
    free(scratch);
    free(mask);
    return PARE_OK;
}

/* magnitude fallback for one layer (per layer, or N:M) */
static void magnitude_layer(prune_layer *L, double sparsity, int pn, int pm)
{
    int64_t n = L->cols;
    float *sc = malloc((size_t)(pm > 0 ? (pm > 0 ? pm : 1) : L->params) * sizeof *sc);
    unsigned char *mk = calloc((size_t)(pm > 0 ? pm : L->params), 1);
    if (!sc || !mk) {
        free(sc);
        free(mk);
        return;
    }
    if (pm > 0) {
        for (int64_t r = 0; r < L->rows; r++)
            for (int64_t j0 = 0; j0 < n; j0 += pm) {
                int64_t gs = n - j0 < pm ? n - j0 : pm;
                if (gs <= pn)
                    continue;
                for (int64_t q = 0; q < gs; q++) {
                    sc[q] = fabsf(L->w[prune_widx(L, r, j0 + q)]);
                    mk[q] = 0;
                }
                prune_mask_smallest(sc, (size_t)gs, (size_t)(gs - pn), mk);
                for (int64_t q = 0; q < gs; q++)
                    if (mk[q])
                        L->w[prune_widx(L, r, j0 + q)] = 0;
            }
    } else {
        for (int64_t k = 0; k < L->params; k++)
            sc[k] = fabsf(L->w[k]);
        prune_mask_smallest(sc, (size_t)L->params, (size_t)(sparsity * (double)L->params), mk);
        for (int64_t k = 0; k < L->params; k++)
            if (mk[k])
                L->w[k] = 0;
    }
    free(sc);
    free(mk);
}

pare_status prune_sparsegpt(pare_model *m, const pare_prune_opts *o, prune_layers *ls,
                            int64_t *samples, pare_error *err)
{
    *samples = 0;
    pare_status st = PARE_OK;
    double damp = o->damp > 0 ? o->damp : 0.01;
    int bs = o->sgpt_block > 0 ? o->sgpt_block : 128;
    for (size_t li = 0; li < ls->n; li++) {
        prune_layer *L = &ls->items[li];
        int64_t n = L->cols;
        const char *why = NULL;
        if (L->sparsity <= 0 && !o->pattern_m)
            continue;
        if (!L->xv)
            why = "constant input";
        else if (L->kind == PK_CONVT)
            why = "ConvTranspose";
        else if (L->kind == PK_CONV && L->group != 1)
            why = "grouped Conv";
        else if (n > SGPT_MAX_COLS)
            why = "reduction axis too long for the Hessian";
        if (!why) {
            /* the model as pruned so far feeds this layer */
            if ((st = prune_commit_layers(ls, err)))
                return st;
            hess_ctx h = {calloc((size_t)(n * n), sizeof(double)), n, 0};
            if (!h.H)
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            prune_rowsink sink = {hess_sink, &h};
            int64_t got = 0;
            st = prune_calib_run(m, &o->calib, ls, &li, 1, &sink, &got, err);
            if (st) {
                free(h.H);
                return st;
            }
            if (got > *samples)
                *samples = got;
            if (L->calib_bad || h.rows == 0) {
                free(h.H);
                why = L->calib_bad ? "input not captured" : "no input rows";
            } else {
                double *U = malloc((size_t)(n * n) * sizeof *U);
                double *tmp = malloc((size_t)(n * n) * sizeof *tmp);
                double *W = malloc((size_t)(L->rows * n) * sizeof *W);
                if (!U || !tmp || !W) {
                    free(U);
                    free(tmp);
                    free(W);
                    free(h.H);
                    return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                }
                /* dead inputs: never seen nonzero; their weights do not matter */
                for (int64_t j = 0; j < n; j++)
                    if (h.H[j * n + j] == 0)
                        h.H[j * n + j] = 1;
                for (int64_t r = 0; r < L->rows; r++)
                    for (int64_t j = 0; j < n; j++)
                        W[r * n + j] = L->w[prune_widx(L, r, j)];
                bool ok = inverse_factor(h.H, n, damp, U, tmp);
                free(tmp);
                free(h.H);
                if (ok)
                    st = sgpt_layer(W, L->rows, n, U, L->sparsity, o->pattern_n, o->pattern_m, bs,
                                    err);
                if (ok && !st)
                    for (int64_t r = 0; r < L->rows; r++)
                        for (int64_t j = 0; j < n; j++)
                            L->w[prune_widx(L, r, j)] = (float)W[r * n + j];
                free(U);
                free(W);
                if (st)
                    return st;
                if (!ok)
                    why = "Hessian not positive definite";
            }
        }
        if (why) {
            prune_note(L, "%s: magnitude", why);
            magnitude_layer(L, L->sparsity, o->pattern_n, o->pattern_m);
        }
    }
    return PARE_OK;
}
