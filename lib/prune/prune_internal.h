/* prune_internal.h - what the files of lib/prune share. Not installed. */
#ifndef PARE_PRUNE_INTERNAL_H
#define PARE_PRUNE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "pare/prune.h"

typedef enum prune_kind { PK_CONV = 1, PK_CONVT, PK_GEMM, PK_MATMUL } prune_kind;

/* A prunable layer: its weight seen as a matrix [rows = output channels or
 * units, cols = the reduction axis of one output]. */
typedef struct prune_layer {
    pare_node *node;
    pare_value *wv;        /* the weight initializer */
    pare_value *xv;        /* the activation input (NULL when it is constant) */
    prune_kind kind;
    int64_t rows, cols;
    int64_t group;         /* Conv/ConvTranspose groups (1 otherwise) */
    int64_t ksize;         /* product of kernel dims (1 for Gemm/MatMul) */
    int64_t cin;           /* Conv/ConvTranspose input channels; K for Gemm/MatMul */
    bool wt;               /* weight stored [K, N] (MatMul, Gemm transB=0) */
    bool xt;               /* Gemm transA: activation rows are columns of A */
    int64_t params;
    float *w;              /* working copy of the weight (owned while pruning) */
    pare_tensor *wt_new;   /* the new tensor holding w */
    double sparsity;       /* target share for this layer */
    double macs;           /* dense MACs per sample (0: unknown) */
    int64_t zeros_before;
    int64_t channels;      /* output channels */
    char *note;            /* malloc'd or NULL */
    bool calib_bad;        /* its input could not be captured (falls back to magnitude) */
} prune_layer;

typedef struct prune_layers {
    prune_layer *items;
    size_t n;
} prune_layers;

/* Index of w[r][j] in the weight's storage. */
static inline int64_t prune_widx(const prune_layer *L, int64_t r, int64_t j)
{
    switch (L->kind) {
    case PK_CONVT: {
        int64_t og = L->rows / L->group, cg = L->cin / L->group;
        int64_t g = r / og, o = r % og, c = j / L->ksize, k = j % L->ksize;
        return ((g * cg + c) * og + o) * L->ksize + k;
    }
    case PK_CONV:
        return r * L->cols + j;
    default:
        return L->wt ? j * L->rows + r : r * L->cols + j;
    }
}

/* Index into a layer's per-feature statistics (Wanda norms): Conv keeps
 * C_in*K features, ConvTranspose C_in, Gemm/MatMul K. */
static inline int64_t prune_fidx(const prune_layer *L, int64_t r, int64_t j)
{
    switch (L->kind) {
    case PK_CONV:
        return (r / (L->rows / L->group)) * L->cols + j;
    case PK_CONVT:
        return (r / (L->rows / L->group)) * (L->cin / L->group) + j / L->ksize;
    default:
        return j;
    }
}
static inline int64_t prune_nfeat(const prune_layer *L)
{
    return L->kind == PK_CONV ? L->cin * L->ksize : L->cin;
}

/* layers.c: finds the prunable layers of m (filter applied; the rest go
 * to r->skipped when r is given), copies their weights into w. */
pare_status prune_find_layers(pare_model *m, const pare_prune_filter *f, pare_prune_report *r,
                              prune_layers *out, pare_error *err);
/* Puts each layer's working copy back into its initializer. */
pare_status prune_commit_layers(prune_layers *ls, pare_error *err);
void prune_layers_release(prune_layers *ls);
/* Appends a layer's stats to r (after pruning). */
pare_status prune_report_layers(const prune_layers *ls, pare_prune_report *r, pare_error *err);

/* weights.c helpers */
/* The k-th smallest (0-based) of n non-negative floats, exact (radix select). */
float prune_kth_smallest(const float *v, size_t n, size_t k);
/* Zeros the `count` units of smallest score in v (ties: the first ones). */
void prune_mask_smallest(const float *score, size_t n, size_t count, unsigned char *mask);

/* calib.c: streams each layer's input rows (im2col rows for Conv) over
 * the calibration data. */
typedef struct prune_rowsink {
    /* called with a block of rows [nrows][ncols] (double) of layer L */
    pare_status (*fn)(void *ctx, prune_layer *L, const double *rows, int64_t nrows,
                      pare_error *err);
    void *ctx;
} prune_rowsink;
/* Runs the data once; for each layer in `which` (indices into ls) feeds the
 * rows of its input to sink. *samples receives the samples seen. */
pare_status prune_calib_run(pare_model *m, const pare_prune_calib *c, prune_layers *ls,
                            const size_t *which, size_t n_which, const prune_rowsink *sink,
                            int64_t *samples, pare_error *err);
/* Columns of a layer's input rows: Conv C_in*K (all groups), ConvTranspose
 * C_in, Gemm/MatMul K. */
int64_t prune_row_cols(const prune_layer *L);

/* sparsegpt.c */
pare_status prune_sparsegpt(pare_model *m, const pare_prune_opts *o, prune_layers *ls,
                            int64_t *samples, pare_error *err);

char *prune_strdup(const char *s);
void prune_note(prune_layer *L, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
