/* pare/distill.h - the teacher's half of offline knowledge distillation:
 * soft targets per row, students derived from the teacher by structure
 * (dropping repeated residual blocks, low-rank factoring), and a
 * training-free closed-form refit of the student's final linear layer.
 *
 *     pare_block_list bl;
 *     pare_distill_find_blocks(m, &bl, &err);        // repeated residual blocks
 *     bool drop[] = {false, true};                    // one per block
 *     pare_distill_drop_blocks(m, &bl, drop, &err);   // rewire, remove dead nodes
 *     pare_block_list_release(&bl);
 *
 * The math is in double throughout; nothing calls LAPACK.
 */
#ifndef PARE_DISTILL_H
#define PARE_DISTILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pare/ir.h"
#include "pare/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- soft targets ---- */

/* One row of C class scores x. temperature > 0: v = softmax(x / T) over
 * the row (float64 accumulation); temperature <= 0: v = x (logits).
 * k == 0 or k == C with vals: vals receives all C entries of v in class
 * order (idx and tail untouched). 0 < k <= C: vals[0..k) the k largest
 * entries of v in descending order, ties broken by the lower index (the
 * order of numpy.argsort(-v, kind='stable')[:k]), idx their class indices,
 * and *tail the rest: with a temperature, the probability mass of the other
 * C-k entries (their sum, not 1 - sum(top)); without one, the logsumexp of
 * the other logits (-inf when k == C). scratch holds at least C entries of
 * 16 bytes. */
void pare_distill_row(const float *x, int64_t c, double temperature, int64_t k, double *vals,
                      int64_t *idx, double *tail, void *scratch);

/* SHA-256 of a file as 64 lowercase hex digits plus NUL in hex[65]. */
pare_status pare_sha256_file(const char *path, char hex[65], pare_error *err);

/* ---- student derivation ---- */

/* A block of the residual stream: the nodes between stream tensor `in` and
 * stream tensor `out` (one or more residual joins). */
typedef struct pare_block {
    pare_value *in, *out;
    pare_node **nodes;        /* in graph order */
    size_t n_nodes;
    uint64_t params;          /* elements of the initializers only this block reads */
    char *signature;          /* op types and weight shapes, for matching */
} pare_block;

typedef struct pare_block_list {
    pare_block *items;
    size_t n;
    size_t segments_per_block; /* residual joins per block */
} pare_block_list;

/* Finds the repeated blocks of m's main graph: a residual join is an Add
 * of a tensor s and a function of s; the main path is the chain of joins,
 * each one's skip input computed from the previous join's output; a segment
 * runs from one join's skip input to the next one's (the last from its skip
 * input through its join and the same chain of nodes after it as the
 * segment before). The blocks are the smallest run of p consecutive
 * segments whose signatures repeat along the whole path (at least twice).
 * No such repeat: PARE_ERR_INVALID ("no repeated residual blocks").
 * Caller releases *out. */
pare_status pare_distill_find_blocks(pare_model *m, pare_block_list *out, pare_error *err);
void pare_block_list_release(pare_block_list *bl);

/* Drops block i where drop[i]: the uses of its `out` read its `in` instead
 * (blocks are dropped from the last to the first), then dead nodes and
 * initializers are removed. Dropping every block is refused. */
pare_status pare_distill_drop_blocks(pare_model *m, const pare_block_list *bl, const bool *drop,
                                     pare_error *err);

/* Low-rank factoring of 2-D float32 MatMul weights (B input) and Gemm B
 * (transA 0): W[K,N] ~ A[K,r] B[r,N] from the eigen-decomposition of the
 * smaller of W^T W and W W^T (cyclic Jacobi in double). rank > 0: r = rank;
 * else r is the smallest rank keeping share `energy` of sum(sigma^2).
 * Layers where r * (K + N) >= K * N are skipped. *factored and *skipped
 * count layers (may be NULL). */
pare_status pare_distill_low_rank(pare_model *m, int64_t rank, double energy, size_t *factored,
                                  size_t *skipped, pare_error *err);

/* Eigen-decomposition of the symmetric n x n matrix a (row-major, destroyed):
 * evals descending, evecs column j (evecs[i*n + j]) the unit eigenvector of
 * evals[j]. */
pare_status pare_sym_eig(double *a, size_t n, double *evals, double *evecs, pare_error *err);

/* Solves (G) X = B for X in place of B (n x m, row-major) with G n x n
 * symmetric positive definite (destroyed: its Cholesky factor). */
pare_status pare_cholesky_solve(double *g, size_t n, double *b, size_t m, pare_error *err);

/* ---- costs ---- */

typedef struct pare_model_cost {
    uint64_t params;          /* elements of all initializers */
    uint64_t bytes;           /* bytes of all initializers */
    double macs;              /* per sample: MatMul, Gemm, Conv, ConvTranspose (from one run) */
} pare_model_cost;

/* Params and bytes of m; MACs by running one sample of `sample` inputs
 * (tensors in the session's input order, first axis samples) when sample is
 * not NULL. */
pare_status pare_distill_cost(pare_model *m, pare_tensor *const *sample, size_t n_inputs,
                              pare_model_cost *out, pare_error *err);

/* ---- refit ---- */

typedef struct pare_refit_opts {
    const char *data;          /* dataset path (pare/feed.h) */
    int64_t batch;             /* 0: 32 */
    int64_t max_samples;       /* 0: all */
    double ridge;              /* L >= 0 added to the Gram diagonal (not the bias row) */
    bool all;                  /* every linear layer, first to last; else the final one */
    int threads;
} pare_refit_opts;

typedef struct pare_refit_report {
    size_t layers;             /* layers refitted */
    pare_compare before, after;/* student vs teacher on the first graph output */
    char *final_node;          /* the final linear layer's label (owned) */
} pare_refit_report;

/* Refits student's linear layers in closed form to the teacher's tensors
 * of the same names (student derived from teacher keeps names): for a
 * layer y = x W + b (MatMul with a float32 2-D weight, optionally followed
 * by an Add of a 1-D bias; or Gemm), X is the student's input of the layer
 * (plus a column of ones for b) and Y the teacher's value of the layer's
 * output name; W' = (X^T X + L I)^-1 X^T Y with X^T X and X^T Y
 * accumulated batch by batch. The report compares the first graph output of
 * student and teacher over the data before and after. Release the report. */
pare_status pare_distill_refit(pare_model *student, pare_model *teacher,
                               const pare_refit_opts *o, pare_refit_report *r, pare_error *err);
void pare_refit_report_release(pare_refit_report *r);

/* Agreement of the first graph outputs of a and b over the data. */
pare_status pare_distill_agreement(pare_model *a, pare_model *b, const char *data, int64_t batch,
                                   int64_t max_samples, int threads, pare_compare *c,
                                   pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
