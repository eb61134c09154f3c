/* pare/opt.h - graph cleanup passes that keep a model's outputs equal.
 *
 *     pare_opt_opts o = PARE_OPT_OPTS_ALL;
 *     pare_opt_report r;
 *     if (pare_optimize(model, &o, &r, &err) != PARE_OK) { report err.msg; }
 *     printf("%zu -> %zu nodes\n", r.nodes_before, r.nodes_after);
 *     pare_opt_report_release(&r);
 *
 * Every pass rewrites through the IR's rewrite API (pare/ir.h), keeps the
 * names of graph outputs, counts values read by If/Loop/Scan bodies from an
 * outer scope as uses, and leaves the model valid (pare_model_validate) and
 * topologically sorted. Constant folding runs the constant part of the graph
 * through the executor (pare/exec.h); it never folds nodes with side effects
 * or randomness, nor a result larger than the size cap. Passes are
 * deterministic: the same model and options give the same graph.
 *
 * On failure a pass may have made some of its changes already; the model is
 * still valid, but callers that need all-or-nothing should work on a copy.
 */
#ifndef PARE_OPT_H
#define PARE_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"
#include "pare/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_opt_opts {
    bool dead;              /* dead nodes, unused initializers, unused value_info */
    bool identity;          /* Identity and Dropout (inference) removal */
    bool fold;              /* constant folding through the executor */
    int64_t fold_max_bytes; /* a folded result bigger than this (and bigger than its
                               inputs) stays as a node; 0: default 1 MiB; < 0: no cap */
    bool fold_bn;           /* BatchNormalization folded into a preceding Conv/ConvTranspose/Gemm */
    bool dedupe;            /* identical initializers merged */
    bool noop;              /* no-op Reshape/Transpose/Cast/Pad/Slice/Expand/Concat-of-one/
                               Squeeze+Unsqueeze pairs removed */
    const char *const *outputs; size_t n_outputs; /* cut to the subgraph computing these (NULL: keep) */
    const char *const *inputs;  size_t n_inputs;  /* start from these tensors (they become graph
                                                     inputs with their inferred type) */
} pare_opt_opts;

#define PARE_OPT_OPTS_ALL {true, true, true, 0, true, true, true, NULL, 0, NULL, 0}
#define PARE_OPT_OPTS_NONE {false, false, false, 0, false, false, false, NULL, 0, NULL, 0}

/* Default size cap of constant folding. */
#define PARE_OPT_FOLD_MAX_BYTES_DEFAULT ((int64_t)1 << 20)

typedef struct pare_opt_report {
    size_t nodes_before, nodes_after, inits_before, inits_after;
    uint64_t bytes_before, bytes_after; /* initializer bytes (main graph) */
    size_t removed_dead, removed_identity, folded, bn_folded, deduped, removed_noop;
    /* human-readable notes, one per line ("\n"-terminated), e.g. nodes not
     * folded because of the size cap; NULL when there is none. Owned; free
     * with pare_opt_report_release. */
    char *notes;
} pare_opt_report;

/* Runs the selected passes on m, in this order: cut (outputs/inputs), then
 * identity, noop, fold_bn, fold, dedupe, dead, repeated until nothing
 * changes (at most a few rounds). o NULL: PARE_OPT_OPTS_ALL. r may be NULL;
 * when given it is filled (also on failure, as far as it got) and must be
 * released with pare_opt_report_release. fold_max_bytes < 0: no cap.
 * Node and initializer counts cover the main graph and every subgraph.
 * Errors: PARE_ERR_ARG for an unknown name in o->outputs / o->inputs (named
 * in the message); PARE_ERR_INVALID when the result has a problem
 * pare_model_validate reports that the input did not have; PARE_ERR_NOMEM. */
pare_status pare_optimize(pare_model *m, const pare_opt_opts *o, pare_opt_report *r,
                          pare_error *err);

/* Frees r->notes and zeroes r. NULL-safe. */
void pare_opt_report_release(pare_opt_report *r);

/* ---- the individual passes; each adds how many changes it made to *changed
 * (which it sets to 0 first; changed may be NULL). ---- */

/* Removes nodes whose outputs nobody reads (graph outputs and subgraph
 * outer-scope reads count), initializers nobody uses, and value_info of
 * values that no longer exist, in the main graph and every subgraph.
 * Graph inputs stay (the cut pass is the one that drops them), except, in a
 * model of IR version 3 or older, initializers listed as inputs, which are
 * constants there. *changed counts nodes, initializers and value_info
 * entries removed (so does the report's removed_dead, plus what a cut
 * removed). */
pare_status pare_opt_remove_dead(pare_model *m, size_t *changed, pare_error *err);

/* Identity, and Dropout in inference (no training_mode input that is true,
 * mask output unused), bypassed. */
pare_status pare_opt_remove_identity(pare_model *m, size_t *changed, pare_error *err);

/* Folds nodes whose inputs are all constant (initializers, Constant nodes,
 * earlier folded results) into initializers, by running them through the
 * executor's kernels; a graph output keeps a Constant node as producer.
 * Never folded: random ops, Dropout, Identity, control flow, sequence and
 * optional values, DequantizeLinear (that would undo weight quantization).
 * Initializers that are also graph inputs count as constants only in models
 * of IR version 3 or older (onnxruntime's rule); from IR 4 on they are
 * overridable defaults. max_bytes 0: PARE_OPT_FOLD_MAX_BYTES_DEFAULT; < 0: no cap.
 * notes, when not NULL, receives a malloc'd string of "\n"-terminated lines
 * about nodes left alone (appended to any text already there). */
pare_status pare_opt_fold_constants_ex(pare_model *m, int64_t max_bytes, size_t *changed,
                                       char **notes, pare_error *err);
pare_status pare_opt_fold_constants(pare_model *m, int64_t max_bytes, size_t *changed,
                                    pare_error *err);

/* BatchNormalization (inference form) whose input comes from a Conv,
 * ConvTranspose or Gemm with constant weights and no other consumer is
 * merged into that node's weight and bias. */
pare_status pare_opt_fold_batchnorm(pare_model *m, size_t *changed, pare_error *err);

/* Initializers with equal dtype, dims and bytes become one (the first in
 * file order keeps its name). Graph inputs that are also initializers (overridable
 * defaults) are left alone. */
pare_status pare_opt_dedupe_initializers(pare_model *m, size_t *changed, pare_error *err);

/* Removes no-op Reshape (to the same shape), Transpose (identity perm),
 * Cast (to the same type), Pad (all zeros), Slice (whole range), Expand (to a
 * shape it already has), Concat of one input, Squeeze followed by the
 * Unsqueeze that undoes it (and the reverse), where the shapes are known. */
pare_status pare_opt_remove_noop(pare_model *m, size_t *changed, pare_error *err);

/* Cuts the main graph to what computes `outputs` (NULL/0: keep the
 * outputs) starting from `inputs` (NULL/0: keep the inputs): named tensors
 * become graph inputs with their inferred type and what only fed them goes;
 * graph inputs the cut graph no longer reads are dropped. An unknown name
 * fails with PARE_ERR_ARG naming it (also a name given as both input and
 * output, or an input that is an initializer). */
pare_status pare_opt_cut(pare_model *m, const char *const *outputs, size_t n_outputs,
                         const char *const *inputs, size_t n_inputs, size_t *changed,
                         pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
