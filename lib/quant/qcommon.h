/* qcommon.h - pieces shared by the int8/fp8 passes (static.c, dynamic.c);
 * internal to lib/quant. */
#ifndef PARE_QUANT_QCOMMON_H
#define PARE_QUANT_QCOMMON_H

#include <stdbool.h>
#include <stdint.h>
#include "pare/quant.h"

/* An initializer that a caller cannot override (not also a graph input). */
bool pare_qx_is_const(const pare_value *v);

/* Checks a filter against g: every --exclude-nodes name must exist (one
 * error naming all that do not) and every --op-types entry must be in
 * `quantizable` (NULL-terminated). mode names the mode in messages. */
pare_status pare_qx_check_filter(const pare_graph *g, const pare_quant_filter *f,
                                 const char *const *quantizable, const char *mode,
                                 pare_error *err);

/* NULL when n passes the filter (its op type is in op_types or, without
 * op_types, in `defaults`); else why it stays float. */
const char *pare_qx_filter_why(const pare_quant_filter *f, const pare_node *n,
                               const char *const *defaults);

/* True when n is excluded by name or by op type. */
bool pare_qx_excluded(const pare_quant_filter *f, const pare_node *n);

/* True when name is in the NULL-terminated list. */
bool pare_qx_in_list(const char *const *list, const char *name);

/* Frees the data of initializer v once nothing reads it (a float weight just
 * replaced by its quantized form), so that the float weights go one by one
 * instead of all at the end: peak memory is then the loaded model plus one
 * weight's work. v itself stays (a 0-element tensor) until
 * pare_graph_remove_dead drops it. */
pare_status pare_qx_drop_if_unused(pare_value *v, pare_error *err);

/* Raises the default domain's opset to at least `target`, after checking
 * that no node (subgraphs included) changes meaning between the model's
 * opset and target; refuses (PARE_ERR_UNSUPPORTED naming the node) if one
 * would. Nothing changes when the opset is already high enough. The IR
 * version is raised with it where the opset needs it (13: 7, 19: 9); a
 * model older than IR 4 loses the graph inputs that only listed its
 * initializers (constants then, and still constants after). */
pare_status pare_qx_raise_opset(pare_model *m, int64_t target, const char *why, pare_error *err);

/* Quantizes float32 weights w symmetrically: per channel along axis
 * (axis >= 0) or per tensor (axis -1). qtype PARE_DT_INT8 (zero point 0,
 * values in [-127, 127]), PARE_DT_UINT8 (zero point 128, values in
 * [1, 255]) or PARE_DT_FLOAT8E4M3FN (scale amax / 448). Channels that are
 * all zero get scale 1. New tensors (caller owns them, unnamed): *q with w's
 * dims, *scale float32 [C] or scalar, *zp of qtype [C] or scalar. */
pare_status pare_qx_quantize_weight(const pare_tensor *w, int axis, int qtype, pare_tensor **q,
                                    pare_tensor **scale, pare_tensor **zp, pare_error *err);

/* A new scalar (rank 0) or 1-D tensor of dtype holding v[0..n) converted
 * from double; n 0 means a scalar of v[0]. */
pare_status pare_qx_tensor(int dtype, const double *v, size_t n, pare_tensor **out,
                           pare_error *err);

/* Adds t as a new initializer of g named after hint (made unique); takes
 * ownership of t. */
pare_status pare_qx_add_init(pare_graph *g, pare_tensor *t, const char *hint, pare_value **out,
                             pare_error *err);

/* A new value in g named after hint (made unique). */
pare_status pare_qx_new_value(pare_graph *g, const char *hint, int dtype, pare_value **out,
                              pare_error *err);

/* Appends a node named after hint (made unique among node names). */
pare_status pare_qx_add_node(pare_graph *g, const char *hint, const char *op,
                             pare_value *const *in, size_t n_in, pare_value *const *out,
                             size_t n_out, pare_node **node, pare_error *err);

#endif
