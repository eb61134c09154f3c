/* calib.c - streaming calibration: statistics per tensor and the ranges
 * that minmax, percentile, entropy (KL divergence, TensorRT style) and mse
 * pick from them (see calib.h for the memory bound). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "pare/feed.h"
#include "quant/calib.h"
#include "exec/threadpool.h"

#define B PARE_QC_BINS

void pare_qc_stats_release(pare_qc_stats *s)
{
    if (!s)
        return;
    free(s->hist);
    free(s->chmax);
    memset(s, 0, sizeof *s);
}

/* doubles the histogram's range: bins 2i and 2i+1 become bin i */
static void hist_grow(uint64_t *h)
{
    for (int side = 0; side < 2; side++) {
        uint64_t *p = h + (size_t)side * B;
        for (int i = 0; i < B / 2; i++)
            p[i] = p[2 * i] + p[2 * i + 1];
        memset(p + B / 2, 0, (B / 2) * sizeof *p);
    }
}

/* min, max and the non-finite count of x[i0, i1): eight running minima
 * and maxima without branches first (one pair waits on each comparison),
 * then the rest element by element */
static void minmax_range(const float *x, size_t i0, size_t i1, float *pmn, float *pmx,
                         size_t *pbad)
{
    /* the common case first, in a form compilers vectorize (the selects are
     * minps/maxps, which pass NaN over; a 32-bit count per lane): when
     * every element is finite it is the answer */
    {
        float lo[16], hi[16];
        uint32_t nf[16] = {0};
        for (int k = 0; k < 16; k++)
            lo[k] = INFINITY, hi[k] = -INFINITY;
        size_t i16 = i0 + ((i1 - i0) & ~(size_t)15);
        bool ok = i1 - i0 < ((size_t)1 << 31);
        for (size_t i = i0; ok && i < i16; i += 16)
            for (int k = 0; k < 16; k++) {
                float v = x[i + (size_t)k];
                lo[k] = v < lo[k] ? v : lo[k];
                hi[k] = v > hi[k] ? v : hi[k];
                nf[k] += !(fabsf(v) <= FLT_MAX);
            }
        uint32_t nonfin = 0;
        float mn = INFINITY, mx = -INFINITY;
        for (int k = 0; k < 16; k++) {
            mn = lo[k] < mn ? lo[k] : mn;
            mx = hi[k] > mx ? hi[k] : mx;
            nonfin += nf[k];
        }
        for (size_t i = i16; ok && i < i1; i++) {
            float v = x[i];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            nonfin += !(fabsf(v) <= FLT_MAX);
        }
        if (ok && nonfin == 0) {
            *pmn = mn;
            *pmx = mx;
            *pbad = 0;
            return;
        }
    }
    float mn = INFINITY, mx = -INFINITY;
    size_t bad = 0, i8 = i0 + ((i1 - i0) & ~(size_t)7);
    {
        float lo[8], hi[8];
        size_t nb[8] = {0};
        for (int k = 0; k < 8; k++)
            lo[k] = INFINITY, hi[k] = -INFINITY;
        for (size_t i = i0; i < i8; i += 8)
            for (int k = 0; k < 8; k++) {
                float v = x[i + (size_t)k];
                bool fin = fabsf(v) <= FLT_MAX; /* false for inf and NaN */
                float a = fin ? v : INFINITY, b = fin ? v : -INFINITY;
                lo[k] = a < lo[k] ? a : lo[k];
                hi[k] = b > hi[k] ? b : hi[k];
                nb[k] += !fin;
            }
        for (int k = 0; k < 8; k++) {
            mn = lo[k] < mn ? lo[k] : mn;
            mx = hi[k] > mx ? hi[k] : mx;
            bad += nb[k];
        }
    }
    for (size_t i = i8; i < i1; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    *pmn = mn;
    *pmx = mx;
    *pbad = bad;
}

/* adds x[i0, i1) to h (2 * B counts) at inv bins per unit of |x|. loc
 * (4 x 2B 32-bit counters, zeroed) when x[i0, i1) is all finite:
 * activations crowd a few bins near zero, and with one counter per bin
 * each increment waits for the one before (store to load): four
 * interleaved counters per bin, summed after each chunk of at most 2^30
 * elements, count the same about twice as fast. */
static void hist_range(const float *x, size_t i0, size_t i1, float inv, uint64_t *h,
                       uint32_t (*loc)[2 * B])
{
    const size_t chunk = (size_t)1 << 30;
    for (size_t c0 = i0; loc && c0 < i1; c0 += chunk) {
        size_t c1 = i1 - c0 > chunk ? c0 + chunk : i1, i = c0;
        /* the bins of 16 elements at a time (a loop compilers vectorize),
         * then their increments */
        for (; i + 16 <= c1; i += 16) {
            int32_t idx[16];
            for (int k = 0; k < 16; k++) {
                float v = x[i + (size_t)k], a = fabsf(v) * inv;
                a = a < (float)(B - 1) ? a : (float)(B - 1);
                idx[k] = (int32_t)a + (v >= 0.0f ? B : 0);
            }
            for (int k = 0; k < 16; k++)
                loc[k & 3][idx[k]]++;
        }
        for (; i + 4 <= c1; i += 4)
            for (int k = 0; k < 4; k++) {
                float v = x[i + k], a = fabsf(v) * inv;
                size_t b = a < (float)(B - 1) ? (size_t)a : (size_t)(B - 1);
                loc[k][(v >= 0.0f ? (size_t)B : 0) + b]++;
            }
        for (; i < c1; i++) {
            float v = x[i], a = fabsf(v) * inv;
            size_t b = a < (float)(B - 1) ? (size_t)a : (size_t)(B - 1);
            loc[0][(v >= 0.0f ? (size_t)B : 0) + b]++;
        }
        for (size_t b = 0; b < 2 * (size_t)B; b++)
            h[b] += (uint64_t)loc[0][b] + loc[1][b] + loc[2][b] + loc[3][b];
        memset(loc, 0, 4 * sizeof *loc);
    }
    for (size_t i = i0; !loc && i < i1; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        float a = fabsf(v) * inv;
        size_t b = a < (float)(B - 1) ? (size_t)a : (size_t)(B - 1);
        h[(v >= 0.0f ? (size_t)B : 0) + b]++;
    }
}

/* the parts of a tensor split across a pool: part p is [p n / P, (p+1) n / P) */
typedef struct qc_par {
    const float *x;
    size_t n, parts;
    float *mn, *mx;
    size_t *bad;
    float inv;
    uint64_t *h;           /* parts x 2B */
    uint32_t (*loc)[2 * B]; /* parts x 4 rows, or NULL */
} qc_par;

static void par_minmax(void *ctx, int64_t p0, int64_t p1)
{
    qc_par *q = ctx;
    for (int64_t p = p0; p < p1; p++)
        minmax_range(q->x, q->n * (size_t)p / q->parts, q->n * (size_t)(p + 1) / q->parts,
                     &q->mn[p], &q->mx[p], &q->bad[p]);
}

static void par_hist(void *ctx, int64_t p0, int64_t p1)
{
    qc_par *q = ctx;
    for (int64_t p = p0; p < p1; p++)
        hist_range(q->x, q->n * (size_t)p / q->parts, q->n * (size_t)(p + 1) / q->parts, q->inv,
                   q->h + (size_t)p * 2 * B, q->loc ? q->loc + 4 * (size_t)p : NULL);
}

pare_status pare_qc_stats_add(pare_qc_stats *s, unsigned flags, double ma_const, const float *x,
                              size_t n, int64_t last_dim, pare_error *err)
{
    return pare_qc_stats_add_pool(s, flags, ma_const, x, n, last_dim, NULL, err);
}

pare_status pare_qc_stats_add_pool(pare_qc_stats *s, unsigned flags, double ma_const,
                                   const float *x, size_t n, int64_t last_dim,
                                   pare_threadpool *pool, pare_error *err)
{
    /* a tensor of at least 2^18 elements is split across the pool; the
     * parts' counts add up to the same histogram */
    size_t parts = pool && n >= ((size_t)1 << 18) ? (size_t)pare_threadpool_size(pool) : 1;
    if (parts < 1)
        parts = 1;
    float mn1, mx1;
    size_t bad1;
    qc_par q = {.x = x, .n = n, .parts = parts, .mn = &mn1, .mx = &mx1, .bad = &bad1};
    if (parts > 1) {
        q.mn = malloc(parts * sizeof *q.mn);
        q.mx = malloc(parts * sizeof *q.mx);
        q.bad = malloc(parts * sizeof *q.bad);
        if (!q.mn || !q.mx || !q.bad) {
            free(q.mn);
            free(q.mx);
            free(q.bad);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        pare_parallel_for(pool, (int64_t)parts, 1, par_minmax, &q);
    } else {
        minmax_range(x, 0, n, q.mn, q.mx, q.bad);
    }
    float mn = INFINITY, mx = -INFINITY;
    size_t bad = 0;
    for (size_t p = 0; p < parts; p++) {
        mn = q.mn[p] < mn ? q.mn[p] : mn;
        mx = q.mx[p] > mx ? q.mx[p] : mx;
        bad += q.bad[p];
    }
    if (parts > 1) {
        free(q.mn);
        free(q.mx);
        free(q.bad);
    }
    s->nonfinite += bad;
    if (bad == n)
        return PARE_OK;
    s->count += n - bad;
    if (!s->any) {
        s->min = mn;
        s->max = mx;
        s->ma_min = mn;
        s->ma_max = mx;
        s->any = true;
    } else {
        s->min = mn < s->min ? mn : s->min;
        s->max = mx > s->max ? mx : s->max;
        if (flags & PARE_QC_MOVING) {
            s->ma_min += ma_const * (mn - s->ma_min);
            s->ma_max += ma_const * (mx - s->ma_max);
        }
    }
    if (flags & PARE_QC_HIST) {
        if (!s->hist && !(s->hist = calloc(2 * (size_t)B, sizeof *s->hist)))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        double amax = fabs((double)mn) > fabs((double)mx) ? fabs((double)mn) : fabs((double)mx);
        if (s->range == 0)
            s->range = amax;
        else
            while (amax > s->range) {
                hist_grow(s->hist);
                s->range *= 2;
            }
        /* pass 2: one increment per element */
        q.inv = s->range > 0 ? (float)(B / s->range) : 0.0f;
        bool fast = bad == 0 && n >= 16384;
        if (parts == 1) {
            uint32_t(*loc)[2 * B] = fast ? calloc(4, sizeof *loc) : NULL;
            hist_range(x, 0, n, q.inv, s->hist, loc);
            free(loc);
        } else {
            q.h = calloc(parts * 2 * (size_t)B, sizeof *q.h);
            q.loc = fast ? calloc(4 * parts, sizeof *q.loc) : NULL;
            if (!q.h || (fast && !q.loc)) {
                free(q.h);
                free(q.loc);
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            }
            pare_parallel_for(pool, (int64_t)parts, 1, par_hist, &q);
            for (size_t p = 0; p < parts; p++)
                for (size_t b = 0; b < 2 * (size_t)B; b++)
                    s->hist[b] += q.h[p * 2 * B + b];
            free(q.h);
            free(q.loc);
        }
    }
    if ((flags & PARE_QC_CHANNEL) && last_dim > 0) {
        if (!s->chmax) {
            if (!(s->chmax = calloc((size_t)last_dim, sizeof *s->chmax)))
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            s->nch = last_dim;
        } else if (s->nch != last_dim)
            return pare_error_set(err, PARE_ERR_INVALID, "last axis changed from %lld to %lld "
                                  "between batches", (long long)s->nch, (long long)last_dim);
        size_t k = (size_t)last_dim, rows = n / k;
        float *cm = s->chmax;
        for (size_t r = 0; r < rows; r++) {
            const float *row = x + r * k;
            for (size_t j = 0; j < k; j++) {
                float a = fabsf(row[j]);
                if (a > cm[j] && isfinite(a))
                    cm[j] = a;
            }
        }
    }
    return PARE_OK;
}

/* ---- ranges from the statistics ---------------------------------------- */

/* |x| counts: both sides added */
static void abs_hist(const pare_qc_stats *s, double *c, int *last)
{
    *last = 0;
    for (int b = 0; b < B; b++) {
        c[b] = (double)s->hist[b] + (double)s->hist[B + b];
        if (c[b] > 0)
            *last = b + 1;
    }
}

static double thr_percentile_abs(const double *c, int last, double w, double p)
{
    double total = 0;
    for (int b = 0; b < last; b++)
        total += c[b];
    double target = total * p / 100.0, acc = 0;
    for (int b = 0; b < last; b++) {
        acc += c[b];
        if (acc >= target)
            return (b + 1) * w;
    }
    return last * w;
}

/* upper edge of the bin on one side (counts h, B bins) past which at most
 * `cut` samples lie; -1 when the side holds no more than cut samples */
static double side_edge(const uint64_t *h, double w, double cut)
{
    double acc = 0;
    for (int b = B - 1; b >= 0; b--) {
        acc += (double)h[b];
        if (acc > cut)
            return (b + 1) * w;
    }
    return -1;
}

/* TensorRT's entropy calibration: the threshold whose clipped distribution
 * P (outliers folded into the last bin) loses least information (KL) when
 * quantized into nq bins */
static double thr_entropy(double *c, int last, double w, int nq)
{
    if (last <= nq)
        return last * w;
    /* the zeros a Relu makes pile up in bin 0; Q smears that spike over its
     * whole group, which would push the threshold down the wider groups get:
     * bin 0 counts as much as bin 1 here (as NVIDIA's pytorch-quantization
     * does) */
    double c0 = c[0];
    c[0] = c[1];
    double total = 0;
    for (int b = 0; b < last; b++)
        total += c[b];
    double best = INFINITY;
    int best_i = last + 1; /* none yet */
    /* a threshold with few non-empty bins below it is degenerate (a handful
     * of spikes, e.g. data with few distinct values, quantize exactly
     * whatever the threshold, so KL is 0): such thresholds are skipped, and
     * with none left the range is not clipped. Candidates: every step-th
     * bin, then each bin around the best of those (KL of one candidate costs
     * O(i), so 2048 bins would cost 2M steps a tensor) */
    /* prefix sums: mass and non-empty bins below i; log of every count */
    double cum[B + 1], lc[B];
    int nzc[B + 1];
    cum[0] = 0;
    nzc[0] = 0;
    for (int k = 0; k < last; k++) {
        cum[k + 1] = cum[k] + c[k];
        nzc[k + 1] = nzc[k] + (k > 0 && c[k] > 0);
        lc[k] = c[k] > 0 ? log(c[k]) : 0;
    }
    double ltot = log(total);
    int step = (last - nq) / 256 > 1 ? (last - nq) / 256 : 1;
    for (int pass = 0; pass < 2; pass++) {
        int from = nq, to = last, by = step;
        if (pass == 1) {
            if (step == 1 || best_i == last + 1)
                break;
            from = best_i - step + 1 > nq ? best_i - step + 1 : nq;
            to = best_i + step - 1 < last ? best_i + step - 1 : last;
            by = 1;
        }
        for (int i = from; i <= to; i += by) {
            if (nzc[i] < nq / 2)
                continue;
            double tail = total - cum[i], inside = cum[i] > 0 ? cum[i] : 1;
            double kl = 0;
            /* P: c[0..i) with the tail added to the last bin, over total;
             * Q: each group's mass (before folding the tail) spread evenly
             * over the bins where P is nonzero, over total - tail */
            for (int j = 0; j < nq; j++) {
                int start = (int)((int64_t)j * i / nq), end = (int)((int64_t)(j + 1) * i / nq);
                double sum = cum[end] - cum[start];
                int nz = nzc[end] - nzc[start] + (start == 0 && c[0] > 0);
                bool last_group = end == i;
                if (last_group && tail > 0 && !(c[i - 1] > 0))
                    nz++;
                if (!nz)
                    continue;
                double lq = sum > 0 ? log(sum / nz / inside) : log(1e-10);
                for (int k = start; k < end; k++) {
                    if (k == i - 1 && tail > 0) {
                        double pp = (c[k] + tail) / total;
                        kl += pp * (log(pp) - lq);
                    } else if (c[k] > 0)
                        kl += c[k] / total * (lc[k] - ltot - lq);
                }
            }
            if (kl < best) {
                best = kl;
                best_i = i;
            }
        }
    }
    if (best_i == last + 1)
        best_i = last;
    c[0] = c0;
    return best_i * w;
}

/* the threshold t minimizing the expected squared error of a quantizer with
 * step t/levels: in range, step^2/12; beyond t, the clipping distance */
static double thr_mse(const double *c, int last, double w, double levels)
{
    if (last == 0)
        return 0;
    double total = 0;
    for (int b = 0; b < last; b++)
        total += c[b];
    /* suffix sums over bins >= i of count, count*center, count*center^2 */
    double s0 = 0, s1 = 0, s2 = 0;
    for (int b = 0; b < last; b++) {
        double ctr = (b + 0.5) * w;
        s0 += c[b];
        s1 += c[b] * ctr;
        s2 += c[b] * ctr * ctr;
    }
    double best = INFINITY, best_t = last * w;
    for (int i = 1; i <= last; i++) {
        double ctr = (i - 0.5) * w; /* bin i-1 moves inside */
        s0 -= c[i - 1];
        s1 -= c[i - 1] * ctr;
        s2 -= c[i - 1] * ctr * ctr;
        double t = i * w, step = t / levels;
        double e = (total - s0) * step * step / 12.0 + (s2 - 2 * t * s1 + t * t * s0);
        if (e < best) {
            best = e;
            best_t = t;
        }
    }
    return best_t;
}

void pare_qc_range(const pare_qc_stats *s, pare_calib_method method, double percentile,
                   bool symmetric, bool moving, int levels, double *lo, double *hi)
{
    *lo = *hi = 0;
    if (!s->any)
        return;
    double mn = moving ? s->ma_min : s->min, mx = moving ? s->ma_max : s->max;
    double amax = fabs(mn) > fabs(mx) ? fabs(mn) : fabs(mx);
    if (method == PARE_CALIB_MINMAX || !s->hist || s->range <= 0) {
        if (symmetric) {
            *lo = -amax;
            *hi = amax;
        } else {
            *lo = mn;
            *hi = mx;
        }
        return;
    }
    double w = s->range / B;
    double c[B];
    int last;
    abs_hist(s, c, &last);
    double t;
    if (method == PARE_CALIB_PERCENTILE && !symmetric) {
        double total = 0;
        for (int b = 0; b < last; b++)
            total += c[b];
        double cut = total * (100.0 - percentile) / 200.0;
        double e_hi = side_edge(s->hist + B, w, cut), e_lo = side_edge(s->hist, w, cut);
        *hi = e_hi < 0 ? (mx < 0 ? mx : 0) : (e_hi < mx ? e_hi : mx);
        *lo = e_lo < 0 ? (mn > 0 ? mn : 0) : (-e_lo > mn ? -e_lo : mn);
        if (mn > 0)
            *lo = mn;
        if (mx < 0)
            *hi = mx;
        return;
    }
    if (method == PARE_CALIB_PERCENTILE)
        t = thr_percentile_abs(c, last, w, percentile);
    else if (method == PARE_CALIB_ENTROPY)
        t = thr_entropy(c, last, w, levels > 200 ? 256 : 128);
    else
        t = thr_mse(c, last, w, (double)levels);
    if (t > amax)
        t = amax;
    if (symmetric) {
        *lo = -t;
        *hi = t;
    } else {
        *lo = mn < -t ? -t : mn;
        *hi = mx > t ? t : mx;
    }
}

/* ---- running the data ---------------------------------------------------- */

typedef struct qc_ctx {
    size_t *slot;        /* value id -> index + 1 (0: not observed) */
    size_t n_ids;
    pare_qc_stats *stats;
    unsigned flags;
    double ma_const;
    pare_threadpool *pool; /* the statistics of large tensors split across it */
    pare_status st;
    pare_error err;
} qc_ctx;

static int observe_tensor(qc_ctx *c, const pare_value *v, const pare_tensor *t)
{
    if (!v || v->id >= c->n_ids || !c->slot[v->id])
        return 0;
    pare_qc_stats *s = &c->stats[c->slot[v->id] - 1];
    if (t->dtype != PARE_DT_FLOAT) {
        s->not_float = true;
        return 0;
    }
    int64_t last = t->rank > 0 ? t->dims[t->rank - 1] : 1;
    pare_status st = pare_qc_stats_add_pool(s, c->flags, c->ma_const, (const float *)t->data,
                                            (size_t)pare_tensor_numel(t), last, c->pool,
                                            &c->err);
    if (st) {
        c->st = st;
        pare_error_prefix(&c->err, "tensor '%s'", v->name);
        return 1;
    }
    return 0;
}

static int observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    return observe_tensor(ctx, node->outputs[output], t);
}

pare_status pare_qc_calibrate(pare_model *m, pare_value *const *vals, size_t n,
                              const pare_calib_opts *c, unsigned flags, double ma_const,
                              pare_qc_stats *stats, uint64_t *samples, pare_error *err)
{
    *samples = 0;
    if (!c->path)
        return pare_error_set(err, PARE_ERR_ARG, "calibration needs a dataset");
    pare_graph *g = pare_model_graph(m);
    qc_ctx q = {.stats = stats, .flags = flags, .ma_const = ma_const, .n_ids = g->n_values};
    q.slot = calloc(g->n_values ? g->n_values : 1, sizeof *q.slot);
    if (!q.slot)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (vals[i]->graph == g && vals[i]->id < g->n_values)
            q.slot[vals[i]->id] = i + 1;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = c->threads;
    so.device = c->device;
    pare_session *s = NULL;
    pare_feed *f = NULL;
    /* the observer runs between nodes, while the session's threads wait:
     * a pool of the same size takes the statistics of large tensors */
    q.pool = pare_threadpool_new(c->threads);
    if (!q.pool) {
        free(q.slot);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pare_status st = pare_session_new(m, &so, &s, err);
    if (st)
        goto out;
    pare_session_set_observer(s, observer, &q);
    if ((st = pare_feed_open(c->path, s, c->batch > 0 ? c->batch : 8, c->samples, &f, err)) ||
        (st = pare_feed_set_sampling(f, c->seed, err)))
        goto out;
    int64_t total = pare_feed_count(f);
    size_t n_in = pare_session_input_count(s);
    for (;;) {
        pare_tensor **ins = NULL, **outs = NULL;
        size_t n_outs = 0;
        int64_t got = 0;
        if ((st = pare_feed_next(f, &ins, &got, err)))
            goto out;
        if (!ins)
            break;
        for (size_t i = 0; i < n_in; i++)
            if (observe_tensor(&q, pare_session_input(s, i), ins[i]))
                break;
        if (q.st) {
            pare_tensors_free(ins, n_in);
            st = q.st;
            *err = q.err;
            goto out;
        }
        st = pare_session_run(s, ins, n_in, &outs, &n_outs, err);
        pare_tensors_free(ins, n_in);
        pare_tensors_free(outs, n_outs);
        if (q.st) {
            st = q.st;
            *err = q.err;
            goto out;
        }
        if (st)
            goto out;
        *samples += (uint64_t)got;
        if (c->progress)
            c->progress(c->progress_ctx, (int64_t)*samples, total);
    }
    if (*samples == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "%s: the dataset holds no samples", c->path);
out:
    if (st && st != PARE_ERR_NOMEM && strncmp(err->msg, c->path, strlen(c->path)) != 0)
        pare_error_prefix(err, "calibration with %s", c->path);
    pare_feed_close(f);
    pare_session_free(s);
    pare_threadpool_free(q.pool);
    free(q.slot);
    return st;
}
