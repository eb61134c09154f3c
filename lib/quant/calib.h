/* calib.h - streaming calibration statistics (internal to lib/quant).
 *
 * One pare_qc_stats per calibrated tensor, fed batch by batch through a
 * session observer; nothing of an activation is kept after the call that
 * saw it. What a tensor costs, whatever the number of samples:
 *
 *   - minmax:                      sizeof(pare_qc_stats), about 100 bytes;
 *   - percentile, entropy, mse:    that plus a histogram of 2 x 2048 uint64
 *                                  counts = 32 KiB (PARE_QC_HIST_BYTES);
 *   - SmoothQuant's pass:          that plus 4 bytes per channel of the
 *                                  last axis.
 *
 * So calibration needs the model, the executor's arena for one batch, one
 * batch of input data and at most 32 KiB + 100 bytes per calibrated tensor.
 *
 * The histogram counts |x| in PARE_QC_BINS equal bins over [0, range],
 * negatives and non-negatives apart (bins [0,B) and [B,2B)). It grows in a
 * single pass: the first batch sets range to its largest |x|; a later batch
 * that goes beyond doubles range (merging bin pairs, which is exact) as
 * often as needed. So at least half of the bins cover the data seen.
 */
#ifndef PARE_QUANT_CALIB_H
#define PARE_QUANT_CALIB_H

#include <stdbool.h>
#include <stdint.h>
#include "pare/quant.h"

#define PARE_QC_BINS 2048
#define PARE_QC_HIST_BYTES (2 * PARE_QC_BINS * sizeof(uint64_t))

enum {
    PARE_QC_HIST = 1,    /* keep the histogram */
    PARE_QC_CHANNEL = 2, /* keep max |x| per channel of the last axis */
    PARE_QC_MOVING = 4   /* moving averages of the batch min and max */
};

typedef struct pare_qc_stats {
    uint64_t count;     /* finite elements seen */
    uint64_t nonfinite; /* NaN and Inf, left out of everything */
    double min, max;    /* over all finite elements */
    double ma_min, ma_max;
    bool any;           /* a finite element was seen */
    bool not_float;     /* the tensor was not float32 at run time */
    double range;       /* histogram bound (0 before the first nonzero value) */
    uint64_t *hist;     /* 2 * PARE_QC_BINS counts, or NULL */
    float *chmax;       /* nch entries, or NULL */
    int64_t nch;
} pare_qc_stats;

void pare_qc_stats_release(pare_qc_stats *s);

/* Adds n float32 values (one batch of a tensor whose last axis has
 * last_dim entries; only read with PARE_QC_CHANNEL). ma_const: the moving
 * average weight of the new batch. */
pare_status pare_qc_stats_add(pare_qc_stats *s, unsigned flags, double ma_const, const float *x,
                              size_t n, int64_t last_dim, pare_error *err);
/* The same, a tensor of 2^18 elements or more split across pool's threads
 * (NULL: this thread); the same statistics either way. */
struct pare_threadpool;
pare_status pare_qc_stats_add_pool(pare_qc_stats *s, unsigned flags, double ma_const,
                                   const float *x, size_t n, int64_t last_dim,
                                   struct pare_threadpool *pool, pare_error *err);

/* The range [lo, hi] a method picks (lo <= 0 <= hi is NOT forced here).
 * symmetric: the range is [-t, t] around a threshold t on |x|; otherwise
 * each side is cut apart (percentile) or the threshold on |x| is clipped to
 * the data's min and max (entropy, mse). levels: quantization levels on one
 * side of zero (127 for int8 symmetric, 255 for uint8 over non-negative
 * data) that entropy and mse weigh errors with. A tensor without any finite
 * element gives [0, 0]. */
void pare_qc_range(const pare_qc_stats *s, pare_calib_method method, double percentile,
                   bool symmetric, bool moving, int levels, double *lo, double *hi);

/* Runs the dataset c->path through m and fills stats[i] for the main-graph
 * values vals[i] (node outputs through the session observer, graph inputs
 * from the fed tensors). stats must be zeroed by the caller. *samples gets
 * the number of samples seen. */
pare_status pare_qc_calibrate(pare_model *m, pare_value *const *vals, size_t n,
                              const pare_calib_opts *c, unsigned flags, double ma_const,
                              pare_qc_stats *stats, uint64_t *samples, pare_error *err);

#endif
