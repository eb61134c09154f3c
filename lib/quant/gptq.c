/* gptq.c - GPTQ for weight-only quantization (Frantar et al., "GPTQ:
 * Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers", 2022), over wq.h's canonical W[N][K].
 *
 * Hessians: passes over the calibration data, batch by batch; a session
 * observer sees each target's input X (rows of K values; graph inputs come
 * from the batch itself) and adds X^T X to H in double. Targets reading the
 * same tensor (q, k and v projections) share one H and one factorization.
 * A pass collects the Hessians of as many layers (in topological order) as
 * fit in hessian_budget (K*K doubles each, 1 GiB by default); the first
 * pass runs on the float model before anything changes; when quantization
 * reaches a layer whose Hessian is not collected yet, another pass runs on
 * the model as it is then, with the earlier layers already quantized (the
 * sequential GPTQ way). Small models take one pass, float activations
 * throughout; large ones keep Hessian memory bounded at the cost of
 * sum(H) / budget passes. H is freed once its layers are quantized.
 *
 * Per group of targets: dead inputs (H[k][k] == 0) get H[k][k] = 1 and their
 * weights zeroed; with act_order the columns are permuted by decreasing
 * diag H; damp * mean(diag H) is added to the diagonal; U, the upper
 * Cholesky factor of H^-1, is computed through the Cholesky factor L of H
 * with rows and columns reversed (U = rev(L^-1)), so one factorization and
 * one triangular inverse suffice. If H is still not positive definite the
 * damping grows tenfold (three tries), then the targets keep round to
 * nearest, with a note in the report.
 *
 * The factorization runs over the pool (Cholesky rows below the diagonal,
 * the triangular inverse by columns); GPTQ itself is independent per output
 * row, so each thread runs the whole column loop for a range of rows.
 *
 * Per target, columns k in (permuted) order, in lazy blocks of 128 (or the
 * block size if larger): q = quant(w_k), err = (w_k - q) / U[k][k], the rest
 * of the lazy block w_j -= err * U[k][j]; after the block, the columns past
 * it get -= Err * U[block, rest] in one GEMM. Block scales are recomputed at
 * each block_size boundary from the current, compensated weights; with
 * act_order they are computed up front on the original order ("static
 * groups"), since both output formats need contiguous blocks along K.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/quant.h"
#include "exec/gemm.h"
#include "exec/threadpool.h"
#include "quant/wq.h"

#define GPTQ_LAZY 128
#define GPTQ_CHUNK 256 /* rows of X per float GEMM before adding into H */

typedef struct hgroup {
    const pare_value *x;
    int64_t K;
    double *H;     /* K*K */
    float *tmp;    /* K*K */
    uint64_t rows;
    size_t left;   /* targets not run yet */
    bool collecting; /* H allocated, the current pass adds to it */
    bool factored, ok;
    int64_t *perm; /* K */
    bool *dead;    /* K */
    float *Hinv;   /* K*K: U, upper Cholesky factor of H^-1 (permuted) */
} hgroup;

struct wq_gptq {
    const pare_wq_opts *o;
    pare_model *m;
    pare_quant_report *r;
    int passes;
    pare_threadpool *pool;
    hgroup *gs;
    size_t ng;
    pare_status st; /* the observer's, with its message */
    pare_error oerr;
};

static void group_free(hgroup *h)
{
    free(h->H);
    free(h->tmp);
    free(h->perm);
    free(h->dead);
    free(h->Hinv);
    h->H = NULL;
    h->tmp = NULL;
    h->perm = NULL;
    h->dead = NULL;
    h->Hinv = NULL;
}

void pare__wq_gptq_free(wq_gptq *G)
{
    if (!G)
        return;
    for (size_t g = 0; g < G->ng; g++)
        group_free(&G->gs[g]);
    free(G->gs);
    free(G);
}

static pare_status h_add(wq_gptq *G, hgroup *h, const pare_tensor *t, pare_error *err)
{
    if (t->dtype != PARE_DT_FLOAT || t->rank < 1 || t->dims[t->rank - 1] != h->K)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "GPTQ: input '%s' of a quantized weight is not float32 with last "
                              "dim %lld",
                              h->x->name, (long long)h->K);
    int64_t K = h->K, rows = (int64_t)(pare_tensor_numel(t) / (uint64_t)K);
    const float *X = t->data;
    if (!h->tmp && !(h->tmp = malloc((size_t)K * (size_t)K * sizeof *h->tmp)))
        return pare_error_set(err, PARE_ERR_NOMEM, "GPTQ: out of memory");
    for (int64_t r0 = 0; r0 < rows; r0 += GPTQ_CHUNK) {
        int64_t rc = rows - r0 < GPTQ_CHUNK ? rows - r0 : GPTQ_CHUNK;
        pare_status st = pare_sgemm(G->pool, true, false, K, K, rc, 1.0f, X + r0 * K, K,
                                    X + r0 * K, K, 0.0f, h->tmp, K);
        if (st)
            return pare_error_set(err, st, "GPTQ: out of memory");
        for (int64_t i = 0; i < K * K; i++)
            h->H[i] += h->tmp[i];
    }
    h->rows += (uint64_t)rows;
    return PARE_OK;
}

static int observe(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    wq_gptq *G = ctx;
    const pare_value *v = node->outputs[output];
    for (size_t i = 0; i < G->ng && v; i++)
        if (G->gs[i].collecting && G->gs[i].x == v &&
            (G->st = h_add(G, &G->gs[i], t, &G->oerr)))
            return 1;
    return 0;
}

/* ---- factorization ----
 * Blocked, so that nearly all flops run in pare_dgemm: the Cholesky factor
 * right-looking by column panels of FB (diagonal block unblocked, panel by a
 * triangular solve per row, trailing matrix by one GEMM), the inverse by row
 * blocks (X[I, <I] = -L[I,I]^-1 L[I, <I] X[<I, <I], one GEMM each). */

#define FB 96

/* Unblocked lower Cholesky of the n x n block at a (row stride lda). */
static bool chol_small(double *a, int64_t n, int64_t lda)
{
    for (int64_t j = 0; j < n; j++) {
        double *aj = a + j * lda;
        double d = aj[j];
        for (int64_t k = 0; k < j; k++)
            d -= aj[k] * aj[k];
        if (!(d > 0.0) || !isfinite(d))
            return false;
        d = sqrt(d);
        aj[j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double *ai = a + i * lda;
            double s = ai[j];
            for (int64_t k = 0; k < j; k++)
                s -= ai[k] * aj[k];
            ai[j] = s / d;
        }
    }
    return true;
}

typedef struct panel_job {
    double *a;        /* the matrix */
    int64_t n, j0, jb; /* panel columns [j0, j0 + jb) */
} panel_job;

/* Rows below the diagonal block: x L11^T = a_row, in place. */
static void panel_rows(void *ctx, int64_t r0, int64_t r1)
{
    const panel_job *J = ctx;
    int64_t n = J->n, j0 = J->j0, jb = J->jb;
    const double *L11 = J->a + j0 * n + j0;
    for (int64_t i = j0 + jb + r0; i < j0 + jb + r1; i++) {
        double *x = J->a + i * n + j0;
        for (int64_t c = 0; c < jb; c++) {
            const double *lc = L11 + c * n;
            double s = x[c];
            for (int64_t k = 0; k < c; k++)
                s -= x[k] * lc[k];
            x[c] = s / lc[c];
        }
    }
}

/* Lower Cholesky in place (a: n*n, row-major; the upper triangle is left
 * with garbage); false if not positive definite. */
static bool cholesky(pare_threadpool *pool, double *a, int64_t n)
{
    for (int64_t j0 = 0; j0 < n; j0 += FB) {
        int64_t jb = n - j0 < FB ? n - j0 : FB, j1 = j0 + jb, m = n - j1;
        if (!chol_small(a + j0 * n + j0, jb, n))
            return false;
        if (!m)
            break;
        panel_job J = {a, n, j0, jb};
        pare_parallel_for(pool, m, 1 + 8192 / (jb * jb), panel_rows, &J);
        /* trailing update of the lower triangle only, a row block at a time */
        for (int64_t r0 = 0; r0 < m; r0 += FB) {
            int64_t rb = m - r0 < FB ? m - r0 : FB;
            const double *pr = a + (j1 + r0) * n + j0;
            if (pare_dgemm(pool, false, true, rb, r0 + rb, jb, -1.0, pr, n, a + j1 * n + j0, n,
                           1.0, a + (j1 + r0) * n + j1, n))
                return false;
        }
    }
    return true;
}

/* X = L^-1 (lower, zeros above; X zeroed by the caller). */
static pare_status tri_inverse(pare_threadpool *pool, const double *L, double *X, int64_t n)
{
    for (int64_t i0 = 0; i0 < n; i0 += FB) {
        int64_t ib = n - i0 < FB ? n - i0 : FB;
        double *Y = X + i0 * n; /* rows [i0, i0 + ib), columns [0, i0 + ib) */
        if (i0 && pare_dgemm(pool, false, false, ib, i0, i0, -1.0, L + i0 * n, n, X, n, 0.0, Y, n))
            return PARE_ERR_NOMEM;
        for (int64_t r = 0; r < ib; r++)
            Y[r * n + i0 + r] = 1.0;
        /* forward substitution with L[I, I] over the row block */
        for (int64_t r = 0; r < ib; r++) {
            const double *lr = L + (i0 + r) * n + i0;
            double *yr = Y + r * n;
            int64_t w = i0 + r + 1;
            for (int64_t q = 0; q < r; q++) {
                const double *yq = Y + q * n;
                double f = lr[q];
                for (int64_t c = 0; c < w; c++)
                    yr[c] -= f * yq[c];
            }
            double inv = 1.0 / lr[r];
            for (int64_t c = 0; c < w; c++)
                yr[c] *= inv;
        }
    }
    return PARE_OK;
}

typedef struct diag_key {
    double d;
    int64_t k;
} diag_key;

static int by_diag_desc(const void *pa, const void *pb)
{
    const diag_key *a = pa, *b = pb;
    if (a->d != b->d)
        return a->d > b->d ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

/* perm, dead and Hinv of a group from its H (consumed). */
static pare_status factor(wq_gptq *G, hgroup *h, pare_error *err)
{
    const pare_wq_opts *o = G->o;
    int64_t K = h->K;
    double *H = h->H;
    size_t kk = (size_t)K * (size_t)K;
    double *A = malloc(kk * sizeof *A), *X = calloc(kk, sizeof *X);
    diag_key *keys = malloc((size_t)K * sizeof *keys);
    h->perm = malloc((size_t)K * sizeof *h->perm);
    h->dead = malloc((size_t)K * sizeof *h->dead);
    h->Hinv = malloc(kk * sizeof *h->Hinv);
    if (!A || !X || !keys || !h->perm || !h->dead || !h->Hinv) {
        free(A), free(X), free(keys);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory for GPTQ (K = %lld)",
                              (long long)K);
    }
    for (int64_t k = 0; k < K; k++) {
        h->dead[k] = !(H[k * K + k] != 0.0);
        if (h->dead[k]) {
            for (int64_t j = 0; j < K; j++)
                H[k * K + j] = H[j * K + k] = 0.0;
            H[k * K + k] = 1.0;
        }
        keys[k].d = H[k * K + k];
        keys[k].k = k;
    }
    if (o->act_order)
        qsort(keys, (size_t)K, sizeof *keys, by_diag_desc);
    for (int64_t k = 0; k < K; k++)
        h->perm[k] = keys[k].k;
    double mean = 0.0;
    for (int64_t k = 0; k < K; k++)
        mean += H[k * K + k];
    mean /= (double)K;
    bool ok = false;
    double damp = o->damp * mean;
    for (int tries = 0; tries < 4 && !ok; tries++, damp = damp > 0.0 ? damp * 10.0 : 1e-6 * mean) {
        /* A = H permuted, reversed and damped */
        for (int64_t i = 0; i < K; i++) {
            const double *hr = H + h->perm[K - 1 - i] * K;
            for (int64_t j = 0; j < K; j++)
                A[i * K + j] = hr[h->perm[K - 1 - j]] + (i == j ? damp : 0.0);
        }
        ok = cholesky(G->pool, A, K);
    }
    pare_status st = PARE_OK;
    if (ok && !(st = tri_inverse(G->pool, A, X, K))) {
        /* U[i][j] = L^-1[K-1-i][K-1-j] */
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++)
                h->Hinv[i * K + j] = (float)X[(K - 1 - i) * K + (K - 1 - j)];
    }
    free(A), free(X), free(keys);
    if (st)
        return pare_error_set(err, st, "out of memory for GPTQ (K = %lld)", (long long)K);
    free(h->H);
    h->H = NULL;
    h->ok = ok;
    h->factored = true;
    return PARE_OK;
}

/* ---- quantization of one target ---- */

typedef struct qjob {
    wq_target *t;
    const pare_wq_opts *o;
    const hgroup *h;
    float *W; /* N*K permuted weights */
    pare_status st;
} qjob;

static void gptq_rows(void *ctx, int64_t r0, int64_t r1)
{
    qjob *Q = ctx;
    wq_target *t = Q->t;
    const pare_wq_opts *o = Q->o;
    const int64_t *perm = Q->h->perm;
    const float *Hinv = Q->h->Hinv;
    int64_t K = t->K, bs = o->block_size, R = r1 - r0;
    int bits = o->bits, qmax = (1 << bits) - 1;
    int64_t lazy = bs > GPTQ_LAZY ? bs : GPTQ_LAZY;
    float *E = malloc((size_t)R * (size_t)lazy * sizeof *E);
    float *cs = malloc((size_t)R * sizeof *cs);
    uint8_t *cz = malloc((size_t)R);
    if (!E || !cs || !cz) {
        free(E), free(cs), free(cz);
        Q->st = PARE_ERR_NOMEM; /* a racy store of the same value */
        return;
    }
    float *W = Q->W + r0 * K;
    for (int64_t i1 = 0; i1 < K; i1 += lazy) {
        int64_t i2 = i1 + lazy < K ? i1 + lazy : K, B = i2 - i1;
        for (int64_t i = i1; i < i2; i++) {
            if (!o->act_order && i % bs == 0) {
                int64_t cnt = K - i < bs ? K - i : bs, b = i / bs;
                for (int64_t n = 0; n < R; n++) {
                    pare__wq_block_params(W + n * K + i, cnt, bits, o->symmetric, &cs[n], &cz[n]);
                    t->scales[(r0 + n) * t->nblk + b] = cs[n];
                    t->zps[(r0 + n) * t->nblk + b] = cz[n];
                }
            }
            int64_t ko = perm[i], b = ko / bs;
            const float *hrow = Hinv + i * K;
            float d = hrow[i];
            for (int64_t n = 0; n < R; n++) {
                size_t sb = (size_t)((r0 + n) * t->nblk + b);
                float s = o->act_order ? t->scales[sb] : cs[n];
                int z = o->act_order ? t->zps[sb] : cz[n];
                float *wr = W + n * K;
                float w = wr[i];
                uint8_t c = pare__wq_code(w, s, z, qmax);
                t->codes[(r0 + n) * K + ko] = c;
                float e = (w - (float)(c - z) * s) / d;
                E[n * B + (i - i1)] = e;
                for (int64_t j = i + 1; j < i2; j++)
                    wr[j] -= e * hrow[j];
            }
        }
        if (i2 < K && pare_sgemm(NULL, false, false, R, K - i2, B, -1.0f, E, B,
                                 Hinv + i1 * K + i2, K, 1.0f, W + i2, K)) {
            Q->st = PARE_ERR_NOMEM;
            break;
        }
    }
    free(E), free(cs), free(cz);
}

static pare_status collect(wq_gptq *G, size_t g0, pare_error *err);

pare_status pare__wq_gptq_run(wq_gptq *G, wq_target *t, pare_error *err)
{
    const pare_wq_opts *o = G->o;
    hgroup *h = NULL;
    for (size_t g = 0; g < G->ng && !h; g++)
        if (G->gs[g].x == t->x)
            h = &G->gs[g];
    if (!h) {
        pare__wq_rtn(G->pool, t, o->bits, o->block_size, o->symmetric);
        return PARE_OK;
    }
    pare_status st = PARE_OK;
    if (!h->factored && !h->H && (st = collect(G, (size_t)(h - G->gs), err)))
        return st;
    if (!h->factored && (st = factor(G, h, err)))
        return st;
    if (!h->ok) {
        t->note = "Hessian not positive definite, kept round to nearest";
        pare__wq_rtn(G->pool, t, o->bits, o->block_size, o->symmetric);
    } else {
        int64_t N = t->N, K = t->K;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++)
                if (h->dead[k])
                    t->w[n * K + k] = 0.0f;
        if (o->act_order) /* static groups on the original order */
            pare__wq_rtn(G->pool, t, o->bits, o->block_size, o->symmetric);
        float *W = malloc((size_t)N * (size_t)K * sizeof *W);
        if (!W)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory for GPTQ");
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < K; i++)
                W[n * K + i] = t->w[n * K + h->perm[i]];
        qjob Q = {t, o, h, W, PARE_OK};
        int64_t grain = 32;
        pare_parallel_for(G->pool, N, grain, gptq_rows, &Q);
        free(W);
        if (Q.st)
            return pare_error_set(err, Q.st, "out of memory for GPTQ");
        t->gptq = true;
    }
    if (--h->left == 0)
        group_free(h);
    return PARE_OK;
}

/* One pass over the calibration data collecting the Hessians of groups g0,
 * g0 + 1, ... as far as the budget allows (at least g0), on the model as it
 * is now: the float model for the first pass, with the layers quantized so
 * far for later ones. */
static pare_status collect(wq_gptq *G, size_t g0, pare_error *err)
{
    const pare_wq_opts *o = G->o;
    uint64_t budget = o->hessian_budget ? o->hessian_budget : (uint64_t)1 << 30, used = 0;
    pare_session *s = NULL;
    pare_feed *f = NULL;
    pare_status st = PARE_OK;
    for (size_t g = g0; g < G->ng; g++) {
        hgroup *h = &G->gs[g];
        if (h->factored || h->H)
            continue;
        uint64_t bytes = (uint64_t)h->K * (uint64_t)h->K * sizeof(double);
        if (g > g0 && used + bytes > budget)
            break;
        used += bytes;
        size_t kk = (size_t)h->K * (size_t)h->K;
        h->H = calloc(kk, sizeof *h->H);
        if (!h->H)
            return pare_error_set(err, PARE_ERR_NOMEM,
                                  "out of memory for the GPTQ Hessian of '%s' (K = %lld)",
                                  h->x->name, (long long)h->K);
        h->collecting = true;
    }
    G->passes++;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = o->calib.threads;
    so.device = o->calib.device;
    if ((st = pare_session_new(G->m, &so, &s, err)))
        goto done;
    int64_t batch = o->calib.batch > 0 ? o->calib.batch : 8;
    if ((st = pare_feed_open(o->calib.path, s, batch, o->calib.samples, &f, err)) ||
        (st = pare_feed_set_sampling(f, o->calib.seed, err)))
        goto done;
    pare_session_set_observer(s, observe, G);
    int64_t total = pare_feed_count(f), done_samples = 0;
    size_t nin = pare_session_input_count(s);
    for (;;) {
        pare_tensor **ins = NULL, **outs = NULL;
        size_t nouts = 0;
        int64_t got = 0;
        if ((st = pare_feed_next(f, &ins, &got, err)) || !ins)
            break;
        for (size_t g = 0; g < G->ng && !st; g++)
            if (G->gs[g].collecting && G->gs[g].x->is_input)
                for (size_t i = 0; i < nin && !st; i++)
                    if (strcmp(pare_session_input(s, i)->name, G->gs[g].x->name) == 0)
                        st = h_add(G, &G->gs[g], ins[i], err);
        if (!st) {
            st = pare_session_run(s, ins, nin, &outs, &nouts, err);
            if (st && G->st && err) {
                *err = G->oerr;
                st = G->st;
            }
        }
        pare_tensors_free(ins, nin);
        pare_tensors_free(outs, nouts);
        if (st)
            break;
        done_samples += got;
        if (o->calib.progress)
            o->calib.progress(o->calib.progress_ctx, done_samples, total);
    }
    if (st)
        goto done;
    if (G->r && G->passes == 1)
        G->r->calib_samples += (uint64_t)done_samples;
    if (done_samples == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "GPTQ: the calibration data holds no samples");
done:
    pare_feed_close(f);
    pare_session_free(s);
    for (size_t g = 0; g < G->ng; g++) {
        free(G->gs[g].tmp);
        G->gs[g].tmp = NULL;
        G->gs[g].collecting = false;
    }
    return st;
}

pare_status pare__wq_gptq_prepare(pare_model *m, const pare_wq_opts *o, pare_threadpool *pool,
                                  const wq_target *t, size_t n, pare_quant_report *r,
                                  wq_gptq **out, pare_error *err)
{
    *out = NULL;
    wq_gptq *G = calloc(1, sizeof *G);
    pare_status st = PARE_OK;
    if (!G || !(G->gs = calloc(n ? n : 1, sizeof *G->gs))) {
        free(G);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    G->o = o;
    G->m = m;
    G->r = r;
    G->pool = pool;
    /* groups in the order of their first target (topological) */
    for (size_t i = 0; i < n; i++) {
        if (!t[i].x)
            continue;
        size_t g = 0;
        while (g < G->ng && G->gs[g].x != t[i].x)
            g++;
        if (g == G->ng) {
            G->gs[g].x = t[i].x;
            G->gs[g].K = t[i].K;
            G->ng++;
        }
        G->gs[g].left++;
    }
    /* the first pass runs now, on the float model, which also checks the data */
    if (G->ng)
        st = collect(G, 0, err);
    if (st)
        pare__wq_gptq_free(G);
    else
        *out = G;
    return st;
}
