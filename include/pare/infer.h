/* pare/infer.h - shape and type inference over the IR.
 *
 * Fills dtype and shape of every value it can, in every graph (subgraphs
 * included), keeping symbolic dims symbolic ("N", "seq") and doing simple
 * arithmetic on them where ONNX ops need it is not attempted: a dim that is
 * not a plain copy of a known or symbolic dim becomes unknown (-1, no
 * param), never a guess. Small integer tensors computed from shapes
 * (Shape -> Gather -> Concat -> Reshape chains) are propagated as values, so
 * Reshape, Expand, Slice, ConstantOfShape and Range get real output shapes.
 *
 * Values whose type came from the file keep it; where inference computes a
 * more precise shape (a known dim where the file had none) it refines it.
 * Inference never marks values as changed, so saving an untouched model
 * stays lossless.
 */
#ifndef PARE_INFER_H
#define PARE_INFER_H

#include "pare/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_infer_opts {
    /* Bind symbolic dims by name ("N" -> 1) before inferring; NULL/0: none. */
    const char *const *sym_names;
    const int64_t *sym_values;
    size_t n_sym;
    /* Input shapes given by the user (name -> dims), overriding the file. */
    const char *const *input_names;
    const int64_t *const *input_dims;
    const int *input_ranks;
    size_t n_inputs;
} pare_infer_opts;

typedef struct pare_infer_report {
    /* Nodes whose op the inference does not know: their outputs stay unknown.
     * Each entry "node 'x' (Foo, domain d)". */
    char **unknown;
    size_t n_unknown;
    /* Contradictions found (a file shape that disagrees with inference). */
    char **conflicts;
    size_t n_conflicts;
} pare_infer_report;

/* Infers shapes over m. rep may be NULL; if given, release it with
 * pare_infer_report_release. Fails only on allocation failure or a node
 * whose inputs are provably invalid for it (e.g. MatMul 3x4 by 5x6), named
 * in err. */
pare_status pare_infer_shapes(pare_model *m, const pare_infer_opts *opts, pare_infer_report *rep,
                              pare_error *err);
void pare_infer_report_release(pare_infer_report *rep);

/* Broadcast two shapes the ONNX way (multidirectional). Unknown dims stay
 * unknown unless the other side fixes them. Result in *out (caller releases
 * with pare_shape_release). */
pare_status pare_shape_broadcast(const pare_shape *a, const pare_shape *b, pare_shape *out,
                                 pare_error *err);
void pare_shape_release(pare_shape *s);

#ifdef __cplusplus
}
#endif
#endif
