/* Comparison metrics and timing statistics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "pare/stats.h"

void pare_compare_init(pare_compare *c, double atol, double rtol)
{
    memset(c, 0, sizeof *c);
    c->atol = atol;
    c->rtol = rtol;
}

static double getd(const pare_tensor *t, uint64_t i)
{
    return pare_dtype_get_f64(t->dtype, t->data, (size_t)i);
}

pare_status pare_compare_add(pare_compare *c, const pare_tensor *a, const pare_tensor *b,
                             const pare_tensor *labels, pare_error *err)
{
    if (a->rank != b->rank || (a->rank && memcmp(a->dims, b->dims, (size_t)a->rank * 8) != 0)) {
        char x[128], y[128];
        return pare_error_set(err, PARE_ERR_INVALID, "shapes differ: %s vs %s",
                              pare_dims_str(a->rank, a->dims, x, sizeof x),
                              pare_dims_str(b->rank, b->dims, y, sizeof y));
    }
    if (a->dtype == PARE_DT_STRING || b->dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "string outputs cannot be compared "
                              "numerically");
    uint64_t n = pare_tensor_numel(a);
    for (uint64_t i = 0; i < n; i++) {
        double x = getd(a, i), y = getd(b, i);
        bool fx = isfinite(x), fy = isfinite(y);
        if (!fx)
            c->nonfinite_a++;
        if (!fy)
            c->nonfinite_b++;
        if (!fx || !fy) {
            if (fx != fy || !(x == y || (isnan(x) && isnan(y))))
                c->mismatched_nonfinite++;
            continue;
        }
        double d = fabs(x - y);
        if (d > c->max_abs)
            c->max_abs = d;
        c->sum_abs += d;
        c->sum_sq_diff += d * d;
        c->sum_sq_a += x * x;
        c->sum_sq_b += y * y;
        c->dot += x * y;
        c->n++;
        if (c->atol >= 0 && d > c->atol + c->rtol * fabs(y))
            c->out_of_tol++;
    }
    /* class axis: the last one, when it has more than one class */
    if (a->rank >= 1 && a->dims[a->rank - 1] > 1 && pare_dtype_is_float(a->dtype)) {
        int64_t k = a->dims[a->rank - 1];
        uint64_t samples = n / (uint64_t)k;
        if (labels && pare_tensor_numel(labels) != samples)
            return pare_error_set(err, PARE_ERR_INVALID, "%llu labels for %llu samples",
                                  (unsigned long long)pare_tensor_numel(labels),
                                  (unsigned long long)samples);
        for (uint64_t s = 0; s < samples; s++) {
            uint64_t base = s * (uint64_t)k;
            int64_t best_a = 0, best_b = 0;
            for (int64_t j = 1; j < k; j++) {
                if (getd(a, base + (uint64_t)j) > getd(a, base + (uint64_t)best_a))
                    best_a = j;
                if (getd(b, base + (uint64_t)j) > getd(b, base + (uint64_t)best_b))
                    best_b = j;
            }
            /* rank of a's top-1 within b: how many classes b scores higher */
            double va = getd(b, base + (uint64_t)best_a);
            int64_t higher = 0;
            for (int64_t j = 0; j < k; j++) {
                double vb = getd(b, base + (uint64_t)j);
                if (vb > va || (vb == va && j < best_a))
                    higher++;
            }
            c->samples++;
            if (higher < 1)
                c->top1_agree++;
            if (higher < 5)
                c->top5_agree++;
            if (labels) {
                int64_t lab = (int64_t)getd(labels, s);
                c->labelled++;
                if (lab == best_a)
                    c->correct_a++;
                if (lab == best_b)
                    c->correct_b++;
            }
        }
    }
    return PARE_OK;
}

double pare_compare_mean_abs(const pare_compare *c)
{
    return c->n ? c->sum_abs / (double)c->n : 0.0;
}
double pare_compare_rel_l2(const pare_compare *c)
{
    if (c->sum_sq_b == 0)
        return c->sum_sq_diff == 0 ? 0.0 : INFINITY;
    return sqrt(c->sum_sq_diff / c->sum_sq_b);
}
double pare_compare_cosine(const pare_compare *c)
{
    if (c->sum_sq_diff == 0 || (c->sum_sq_a == 0 && c->sum_sq_b == 0))
        return 1.0; /* identical: exactly 1, not 1 - rounding */
    if (c->sum_sq_a == 0 || c->sum_sq_b == 0)
        return 0.0;
    double v = c->dot / (sqrt(c->sum_sq_a) * sqrt(c->sum_sq_b));
    return v > 1.0 ? 1.0 : v < -1.0 ? -1.0 : v;
}
double pare_compare_snr_db(const pare_compare *c)
{
    if (c->sum_sq_diff == 0)
        return INFINITY;
    if (c->sum_sq_b == 0)
        return -INFINITY;
    return 10.0 * log10(c->sum_sq_b / c->sum_sq_diff);
}
double pare_compare_top1(const pare_compare *c)
{
    return c->samples ? (double)c->top1_agree / (double)c->samples : NAN;
}
double pare_compare_top5(const pare_compare *c)
{
    return c->samples ? (double)c->top5_agree / (double)c->samples : NAN;
}
double pare_compare_accuracy_a(const pare_compare *c)
{
    return c->labelled ? (double)c->correct_a / (double)c->labelled : NAN;
}
double pare_compare_accuracy_b(const pare_compare *c)
{
    return c->labelled ? (double)c->correct_b / (double)c->labelled : NAN;
}

pare_status pare_latency_add(pare_latency *l, double ms, pare_error *err)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        double *nm = realloc(l->ms, nc * sizeof *nm);
        if (!nm)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        l->ms = nm;
        l->cap = nc;
    }
    l->ms[l->n++] = ms;
    return PARE_OK;
}

void pare_latency_release(pare_latency *l)
{
    free(l->ms);
    memset(l, 0, sizeof *l);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest rank: the smallest sample with at least p% of samples at or below it */
static double nearest_rank(const double *sorted, size_t n, double p)
{
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return sorted[r - 1];
}

void pare_latency_summarize(pare_latency *l, pare_latency_summary *s)
{
    memset(s, 0, sizeof *s);
    s->n = l->n;
    if (!l->n)
        return;
    qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < l->n; i++)
        sum += l->ms[i];
    s->mean = sum / (double)l->n;
    for (size_t i = 0; i < l->n; i++)
        sq += (l->ms[i] - s->mean) * (l->ms[i] - s->mean);
    s->stddev = sqrt(sq / (double)l->n);
    s->min = l->ms[0];
    s->max = l->ms[l->n - 1];
    s->p50 = nearest_rank(l->ms, l->n, 50);
    s->p90 = nearest_rank(l->ms, l->n, 90);
    s->p95 = nearest_rank(l->ms, l->n, 95);
    s->p99 = nearest_rank(l->ms, l->n, 99);
}

double pare_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t pare_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}
