/* pare/prune.h - weight pruning (unstructured, N:M, blocks; magnitude, Wanda,
 * SparseGPT), structured channel pruning, the per-layer sensitivity scan,
 * and the report they share.
 *
 * Every entry point rewrites the model in place and appends what it did to a
 * pare_prune_report; the program pare-prune (tools/pare-prune.c) parses
 * options, calls them, runs the cleanup passes (pare/opt.h), validates,
 * prints the report and saves. Calibration data runs through the executor
 * (pare/exec.h) over a dataset (pare/feed.h) batch by batch; only streaming
 * statistics are kept (per-column norms for Wanda, one Hessian per layer for
 * SparseGPT), never all activations.
 *
 *     pare_prune_report r;
 *     pare_prune_report_init(&r);
 *     pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
 *     o.sparsity = 0.5;
 *     if (pare_prune_weights(m, &o, &r, &err)) ...;
 *     pare_prune_report_json(&r, json);
 *     pare_prune_report_release(&r);
 *
 * Prunable layers: Conv, ConvTranspose, Gemm and MatMul nodes of the main
 * graph whose weight (input 1; for Gemm and MatMul the constant operand) is
 * a float32 initializer with 2 or more dims. A weight shared by several
 * nodes is pruned once, by its first consumer.
 */
#ifndef PARE_PRUNE_H
#define PARE_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pare/ir.h"
#include "pare/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- what to prune ----------------------------------------------------- */

typedef struct pare_prune_filter {
    const char *const *exclude_nodes;    /* node names left dense (a name that does not exist: PARE_ERR_ARG) */
    size_t n_exclude_nodes;
    const char *const *exclude_op_types; /* op types left dense */
    size_t n_exclude_op_types;
    int64_t min_params;                  /* layers with fewer weight elements are left dense */
    bool include_first_last;             /* also prune the first and last prunable layer */
} pare_prune_filter;

typedef enum pare_prune_criterion {
    PARE_PRUNE_MAGNITUDE = 1, /* |w| */
    PARE_PRUNE_WANDA,         /* |w| * ||x_j||_2 over calibration data, compared per output row */
    PARE_PRUNE_SPARSEGPT      /* OBS with the inverse Hessian of the layer inputs, kept weights updated */
} pare_prune_criterion;

/* Progress over calibration samples: done of total (total -1: unknown). */
typedef void (*pare_prune_progress_fn)(void *ctx, int64_t done, int64_t total);

typedef struct pare_prune_calib {
    const char *path;        /* dataset (pare/feed.h); NULL when the criterion needs none */
    int64_t samples;         /* at most this many samples; 0: all */
    int64_t batch;           /* samples per run; 0: 8 */
    uint64_t seed;           /* reserved for sampling; output is deterministic for a seed */
    int threads;             /* executor threads; 0: all cores */
    pare_prune_progress_fn progress;
    void *progress_ctx;
} pare_prune_calib;

/* Per-layer sparsity that overrides opts.sparsity for the named node. */
typedef struct pare_prune_layer_sparsity {
    const char *node;
    double sparsity;         /* [0, 1) */
} pare_prune_layer_sparsity;

typedef struct pare_prune_opts {
    double sparsity;                  /* share of weights set to zero, [0, 1) (unused with a pattern N:M) */
    bool per_layer;                   /* the same share in each layer; else one global threshold */
    int pattern_n, pattern_m;         /* N:M (at most N kept in every M along the reduction axis); 0: none */
    int block_r, block_c;             /* block sparsity RxC over the [out, reduction] matrix; 0: none */
    pare_prune_criterion criterion;   /* default magnitude */
    pare_prune_calib calib;           /* for wanda and sparsegpt */
    pare_prune_filter filter;
    double damp;                      /* sparsegpt: damping as a share of mean(diag H); 0: 0.01 */
    int sgpt_block;                   /* sparsegpt: columns per lazy-update block; 0: 128 */
    const pare_prune_layer_sparsity *layers; /* overrides (from --max-accuracy-drop); may be NULL */
    size_t n_layers;
} pare_prune_opts;

#define PARE_PRUNE_OPTS_INIT {0.0, false, 0, 0, 0, 0, PARE_PRUNE_MAGNITUDE, \
    {NULL, 0, 0, 0, 0, NULL, NULL}, {NULL, 0, NULL, 0, 0, false}, 0.0, 0, NULL, 0}

/* ---- report ------------------------------------------------------------ */

typedef struct pare_prune_layer_stat {
    char *node, *op, *weight;
    int64_t params;                       /* weight elements (after structured pruning: the new count) */
    int64_t zeros_before, zeros_after;    /* zero weight elements */
    int64_t channels_before, channels_after; /* output channels / units */
    double macs_before, macs_after;       /* dense MACs per sample (0 when shapes are unknown) */
    double macs_effective;                /* MACs after, counting only nonzero weights */
    double sparsity;                      /* target share asked for this layer */
    char *note;                           /* may be NULL */
} pare_prune_layer_stat;

typedef struct pare_prune_skip {
    char *node, *op, *why;
} pare_prune_skip;

typedef struct pare_prune_report {
    pare_prune_layer_stat *layers;
    size_t n_layers, cap_layers;
    pare_prune_skip *skipped;
    size_t n_skipped, cap_skipped;
    char *method;                         /* "unstructured magnitude global", "2:4 sparsegpt", ... */
    double threshold;                     /* global importance threshold (NaN when none) */
    uint64_t params_before, params_after; /* float weight elements of all initializers */
    uint64_t nonzero_before, nonzero_after; /* of those, nonzero */
    uint64_t bytes_before, bytes_after;   /* serialized model bytes (0: not measured) */
    uint64_t gzip_before, gzip_after;     /* gzip size of the serialized model */
    double macs_before, macs_after, macs_effective_after; /* totals over prunable layers */
    int64_t calib_samples;
    double seconds;
} pare_prune_report;

void pare_prune_report_init(pare_prune_report *r);
void pare_prune_report_release(pare_prune_report *r);
/* Appends a layer (strings copied; note may be NULL); *out points into r. */
pare_status pare_prune_report_layer(pare_prune_report *r, const pare_node *n, const char *weight,
                                    pare_prune_layer_stat **out, pare_error *err);
pare_status pare_prune_report_skip(pare_prune_report *r, const pare_node *n, const char *why,
                                   pare_error *err);

/* Params and nonzeros over every float initializer of the main graph. */
void pare_prune_count_params(pare_model *m, uint64_t *params, uint64_t *nonzero);
/* Serialized size of m, and the size of its gzip stream at level (1..9, 0: 6,
 * the writer's default). */
pare_status pare_prune_model_sizes(pare_model *m, int level, uint64_t *plain, uint64_t *gz,
                                   pare_error *err);

/* Writes the report as a JSON object (schema pare-prune/1, documented in
 * man/pare-prune.1) at the writer's current position. */
void pare_prune_report_json(const pare_prune_report *r, pare_json *j);
/* Text table of the report; caller frees *text. */
pare_status pare_prune_report_text(const pare_prune_report *r, char **text, pare_error *err);

/* ---- weight pruning (lib/prune/weights.c, wanda.c, sparsegpt.c) -------- */

/* Errors: PARE_ERR_ARG for a sparsity outside [0,1), N > M or M < 1, a
 * block size < 1, an unknown node in the exclude list, wanda/sparsegpt
 * without calib.path; PARE_ERR_INVALID/RUNTIME from calibration. */
pare_status pare_prune_weights(pare_model *m, const pare_prune_opts *o, pare_prune_report *r,
                               pare_error *err);

/* ---- structured channel pruning (lib/prune/channels.c) ----------------- */

typedef enum pare_norm { PARE_NORM_L1 = 1, PARE_NORM_L2 } pare_norm;

typedef struct pare_channel_opts {
    double ratio;                     /* share of output channels removed per layer, [0, 1) */
    const char *const *layer_ratios;  /* "node=R" overrides */
    size_t n_layer_ratios;
    pare_norm norm;                   /* default L1 */
    pare_prune_filter filter;
    const char *bn_recalibrate;       /* dataset for BatchNorm statistics re-estimation; NULL: none */
    pare_prune_calib calib;           /* samples, batch, threads for bn_recalibrate */
    int64_t channel_multiple;         /* kept counts rounded to the nearest multiple of this in
                                         layers of at least max(32, 2x it) channels (0: 16,
                                         whole blocks of onnxruntime's 8- and 16-wide blocked
                                         convolutions; 1: no rounding) */
} pare_channel_opts;

#define PARE_CHANNEL_OPTS_INIT {0.0, NULL, 0, PARE_NORM_L1, {NULL, 0, NULL, 0, 0, false}, NULL, \
    {NULL, 0, 0, 0, 0, NULL, NULL}, 0}

/* Removes whole output channels (Conv, ConvTranspose) and units
 * (Gemm/MatMul) and rewrites every consumer so the model stays dense and
 * valid; channel groups coupled through residual Add/Mul are pruned together
 * or left dense (listed in r->skipped); grouped convolutions keep their
 * group, each group losing as many channels, through channel shuffles too.
 * Errors: PARE_ERR_ARG for a ratio outside [0,1) or one that
 * removes every channel of a layer. */
pare_status pare_prune_channels(pare_model *m, const pare_channel_opts *o, pare_prune_report *r,
                                pare_error *err);

/* ---- sensitivity scan (lib/prune/sensitivity.c) ------------------------ */

typedef struct pare_sensitivity_opts {
    const char *data;            /* dataset run through the executor */
    const char *labels;          /* .npy of int labels (one per sample) or NULL */
    const double *levels;        /* sparsities to try per layer; NULL: 0.3, 0.5, 0.7, 0.9 */
    size_t n_levels;
    int64_t samples, batch;      /* 0: all samples; 0: 8 */
    int threads;
    pare_prune_opts base;        /* criterion, pattern and filter used for each trial
                                    (wanda/sparsegpt fall back to magnitude in the scan) */
    pare_prune_progress_fn progress; /* done of total trials */
    void *progress_ctx;
} pare_sensitivity_opts;

typedef struct pare_sensitivity_row {
    char *node, *op;
    int64_t params;
    double *cosine;              /* n_levels entries: cosine of the first output vs the original */
    double *top1;                /* top-1 agreement (NaN without a class axis) */
    double *accuracy;            /* accuracy against labels (NaN without labels) */
} pare_sensitivity_row;

typedef struct pare_sensitivity {
    double *levels;
    size_t n_levels;
    pare_sensitivity_row *rows;
    size_t n_rows;
    char *output;                /* the output compared (the first graph output) */
    double base_accuracy;        /* accuracy of the original model (NaN without labels) */
    bool has_top1, has_accuracy;
    int64_t samples;
} pare_sensitivity;

void pare_sensitivity_release(pare_sensitivity *s);

/* Prunes each prunable layer alone at each level (on a copy of its weight),
 * runs the data through the executor and compares with the original's
 * outputs. m is left as it was. */
pare_status pare_prune_sensitivity(pare_model *m, const pare_sensitivity_opts *o,
                                   pare_sensitivity *out, pare_error *err);

/* The "drop" of a row at level i: accuracy drop with labels, else
 * 1 - top-1 agreement, else 1 - cosine. */
double pare_sensitivity_drop(const pare_sensitivity *s, size_t row, size_t level);

/* Picks per-layer sparsities from a scan: per layer the largest level whose
 * drop is at most max_drop; then prunes a copy of m with them, measures the
 * combined drop on the same data, and while it exceeds max_drop lowers the
 * most sensitive layer one level. *out (malloc'd, *n_out entries, node
 * strings pointing into s) receives the choice; *drop the combined drop.
 * Caller frees *out. */
pare_status pare_prune_choose(pare_model *m, const pare_sensitivity_opts *o,
                              const pare_sensitivity *s, double max_drop,
                              pare_prune_layer_sparsity **out, size_t *n_out, double *drop,
                              pare_error *err);

void pare_sensitivity_json(const pare_sensitivity *s, pare_json *j);
pare_status pare_sensitivity_text(const pare_sensitivity *s, char **text, pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
