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
 * stays lossless (and inferred types are not written out).
 *
 *     pare_infer_report rep;
 *     if (pare_infer_shapes(m, NULL, &rep, &err) != PARE_OK)
 *         fprintf(stderr, "%s\n", err.msg);      // e.g. "node 'mm' (MatMul): ..."
 *     for (size_t i = 0; i < rep.n_unknown; i++)
 *         printf("not inferred: %s\n", rep.unknown[i]);
 *     pare_infer_report_release(&rep);
 *
 * What it knows: the ai.onnx ops up to opset 27 except the sequence and
 * optional ops, ImageDecoder, StringNormalizer and TfIdfVectorizer, and no
 * op of the ai.onnx.ml, ai.onnx.preview(.training) or model-local function
 * domains (their outputs stay unknown and the nodes are reported); plus
 * com.microsoft MatMulNBits, QuantizeLinear,
 * DequantizeLinear, FusedMatMul, SkipLayerNormalization and the Gelu
 * family. Attributes that became inputs in later opsets are read the way the
 * node's opset says. Subgraphs are inferred with the enclosing scopes
 * visible: If gives the union of its branches (the taken branch when the
 * condition is known), Loop and Scan type their bodies' inputs from the
 * node's inputs and widen loop-carried values until the body's outputs fit
 * (so a state that keeps its shape keeps it exactly). An initializer that is
 * also a graph input is only a default, so its contents are not used.
 *
 * Inference may be run again after a pass changed the graph; types it
 * inferred earlier are then replaced where the new result knows better.
 */
#ifndef PARE_INFER_H
#define PARE_INFER_H

#include "pare/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_infer_opts {
    /* Bind symbolic dims by name ("N" -> 1) before inferring; NULL/0: none.
     * Every dim of that name, in every graph, becomes the number (in the IR
     * only: the values are not marked changed). A negative value makes the
     * dim unknown. */
    const char *const *sym_names;
    const int64_t *sym_values;
    size_t n_sym;
    /* Input shapes given by the user (name -> dims), overriding the file's
     * for inputs of the main graph (a negative dim is unknown). A name that
     * is not an input fails with PARE_ERR_ARG. */
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
    /* Contradictions found (a file type that disagrees with inference):
     * "value 'x': the file says float32 1x3, inference says float32 1x4".
     * The file's type is kept. */
    char **conflicts;
    size_t n_conflicts;
} pare_infer_report;

/* Infers shapes over m. rep may be NULL; if given, it is cleared first and
 * filled even when the call fails: release it with pare_infer_report_release
 * either way. Fails only on allocation failure, bad options (PARE_ERR_ARG),
 * or a node whose inputs are provably invalid for it (e.g. MatMul 3x4 by
 * 5x6, Concat of different ranks): PARE_ERR_INVALID with err naming the node,
 * and then nothing in the IR is changed (bound symbols and given input
 * shapes excepted). */
pare_status pare_infer_shapes(pare_model *m, const pare_infer_opts *opts, pare_infer_report *rep,
                              pare_error *err);
void pare_infer_report_release(pare_infer_report *rep);

/* Broadcast two shapes the ONNX way (multidirectional). Unknown dims stay
 * unknown unless the other side fixes them; a symbol survives against 1 or
 * itself. Result in *out (caller releases with pare_shape_release); an
 * unknown rank on either side gives an unknown rank. Two known dims that
 * differ and are not 1 fail with PARE_ERR_INVALID. */
pare_status pare_shape_broadcast(const pare_shape *a, const pare_shape *b, pare_shape *out,
                                 pare_error *err);
/* NULL-safe; frees the dims and sets the rank to -1. */
void pare_shape_release(pare_shape *s);

#ifdef __cplusplus
}
#endif
#endif
