/* pare/stats.h - comparison metrics and timing statistics, defined once.
 *
 * For an output a of the model under test and b of the reference:
 * max and mean |a-b|; relative L2 = ||a-b|| / ||b||; cosine similarity;
 * SNR dB = 10 log10(||b||^2 / ||a-b||^2); top-k agreement = share of
 * samples whose top-1 of a is among the top-k of b (outputs with a class
 * axis, the last one); accuracy against labels. NaN and Inf are counted,
 * not folded into the sums. Everything accumulates batch by batch, so a
 * dataset never has to be in memory at once.
 */
#ifndef PARE_STATS_H
#define PARE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pare/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_compare {
    uint64_t n;              /* finite element pairs compared */
    uint64_t nonfinite_a;    /* NaN or Inf in a */
    uint64_t nonfinite_b;
    uint64_t mismatched_nonfinite; /* positions where exactly one side is not finite, or they differ */
    double max_abs, sum_abs;
    double sum_sq_diff, sum_sq_a, sum_sq_b, dot;
    /* class-axis metrics (rank >= 2 outputs, classes on the last axis) */
    uint64_t samples, top1_agree, top5_agree;
    /* labels (optional) */
    uint64_t labelled, correct_a, correct_b;
    /* tolerance check: elements with |a-b| > atol + rtol*|b| */
    double atol, rtol;
    uint64_t out_of_tol;
} pare_compare;

/* atol/rtol < 0: no tolerance counting. */
void pare_compare_init(pare_compare *c, double atol, double rtol);
/* Adds a batch. a and b must have the same dims; any numeric dtype (read as
 * double). labels (may be NULL): int64 or int32 tensor with one label per
 * sample (the product of all dims but the last). */
pare_status pare_compare_add(pare_compare *c, const pare_tensor *a, const pare_tensor *b,
                             const pare_tensor *labels, pare_error *err);
double pare_compare_mean_abs(const pare_compare *c);
double pare_compare_rel_l2(const pare_compare *c);
double pare_compare_cosine(const pare_compare *c);   /* 1 when both are all zero */
double pare_compare_snr_db(const pare_compare *c);   /* +inf when identical */
double pare_compare_top1(const pare_compare *c);     /* NaN without a class axis */
double pare_compare_top5(const pare_compare *c);
double pare_compare_accuracy_a(const pare_compare *c); /* NaN without labels */
double pare_compare_accuracy_b(const pare_compare *c);

/* Latency samples in milliseconds. */
typedef struct pare_latency {
    double *ms;
    size_t n, cap;
} pare_latency;

pare_status pare_latency_add(pare_latency *l, double ms, pare_error *err);
void pare_latency_release(pare_latency *l);
typedef struct pare_latency_summary {
    size_t n;
    double min, mean, p50, p90, p95, p99, max, stddev;
} pare_latency_summary;
/* Percentiles by nearest rank (sorts the samples in place). */
void pare_latency_summarize(pare_latency *l, pare_latency_summary *s);

/* Monotonic clock in seconds. */
double pare_now(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t pare_peak_rss(void);

#ifdef __cplusplus
}
#endif
#endif
