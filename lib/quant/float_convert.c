/* float_convert.c - float32 -> float16 / bfloat16 conversion of a model
 * (pare/quant.h, pare_quantize_float).
 *
 * After type inference, every node of the main graph is either converted
 * (computes in the narrow type) or kept float32 (blocked), for one of these
 * reasons: the default block list below, --block-ops, --block-nodes, a
 * domain other than ai.onnx, control flow (If/Loop/Scan bodies are kept
 * float32 as a whole, with Casts on the outer values they read), a shape
 * computation (a node whose inputs all derive from Shape/Size through
 * integer or small constant arithmetic: shape values above 2048 are not
 * exact in float16), for bfloat16 an op whose ONNX schema has no bfloat16,
 * or a float value whose type inference could not tell.
 *
 * Each float32 value then has one stored type: narrow when a converted node
 * makes it, float32 when a blocked node makes it or it is a graph input
 * kept float32 (keep_io_types). Initializers follow their consumers:
 * converted in place when every reader is converted, duplicated narrow when
 * readers disagree. A Cast is inserted only where a value's stored type
 * differs from what its reader computes in (one Cast per value and
 * direction, shared by every such reader), so Casts sit exactly at the
 * borders of blocked regions and a Cast never feeds its inverse. Graph
 * outputs made by converted nodes get a Cast back to float32 when
 * keep_io_types (their names kept). Cast nodes to float32 inside a
 * converted region cast to the narrow type instead; Constant and
 * ConstantOfShape values are converted with their nodes.
 *
 * With storage_only (pare-quantize's default bf16 form) steps 2 to 6 are
 * skipped: only weights are stored narrow, each read through a Cast to
 * float32 (store_narrow below).
 *
 * Narrowing rounds to nearest even (pare/dtype.h); finite values beyond the
 * narrow type's largest finite value are clamped to it and counted per
 * tensor in the report (inf and NaN are kept as they are).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/infer.h"
#include "pare/quant.h"
#include "pare/stats.h"

/* The default block list (kept float32 unless default_block_list is false).
 * Each entry and why, for the man page:
 *   Range                   its T has no float16 in the ONNX spec, and a float16
 *                           start/delta changes the element count
 *   Resize, Upsample        scales (and Resize's roi) are float32 inputs that
 *                           decide the output shape; onnxruntime's converter
 *                           blocks them too
 *   NonMaxSuppression       boxes and scores are float32-only in the spec; IoU
 *                           ties in float16 change which boxes survive
 *   TopK                    ties created by float16 rounding change the indices
 *                           output, which later Gathers read
 *   RoiAlign                box coordinates lose whole pixels in float16
 *   CumSum                  running sums overflow or drop small terms in float16
 *   ReduceSumSquare, ReduceL2, ReduceProd, ReduceLogSumExp, LpNormalization
 *                           sums of squares, products and exponentials leave
 *                           float16's range (65504) long before their result does
 *   RandomNormal, RandomUniform, RandomNormalLike, RandomUniformLike,
 *   Multinomial, Bernoulli  sampling in float16 skews the distribution; their
 *                           dtype attribute also fixes the output type
 *   EyeLike                 dtype attribute fixes the output type
 *   QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear
 *                           quantization scales need float32 precision (and
 *                           DynamicQuantizeLinear is float32-only)
 *   If, Loop, Scan, SequenceMap
 *                           bodies are kept float32 as a whole (always blocked,
 *                           even without the default list) */
const char *const pare_fq_default_block_ops[] = {
    "Range",          "Resize",          "Upsample",
    "NonMaxSuppression", "TopK",         "RoiAlign",
    "CumSum",         "ReduceSumSquare", "ReduceL2",
    "ReduceProd",     "ReduceLogSumExp", "LpNormalization",
    "RandomNormal",   "RandomUniform",   "RandomNormalLike",
    "RandomUniformLike", "Multinomial",  "Bernoulli",
    "EyeLike",        "QuantizeLinear",  "DequantizeLinear",
    "DynamicQuantizeLinear", "If",       "Loop",
    "Scan",           "SequenceMap",     NULL};

/* ai.onnx ops with bfloat16 in their float type, and the opset since which
 * (others stay float32 in bf16 mode). */
typedef struct bf16_op {
    const char *op;
    int since;
} bf16_op;
static const bf16_op bf16_ops[] = {
    {"Abs", 13}, {"Add", 14}, {"ArgMax", 13}, {"ArgMin", 13}, {"BatchNormalization", 15},
    {"Cast", 13}, {"CastLike", 15}, {"Ceil", 13}, {"Clip", 13}, {"Concat", 13}, {"Constant", 13},
    {"ConstantOfShape", 20}, {"Div", 14}, {"Dropout", 13}, {"Equal", 13}, {"Erf", 13},
    {"Exp", 13}, {"Expand", 13}, {"Flatten", 13}, {"Floor", 13}, {"Gather", 13},
    {"GatherElements", 13}, {"GatherND", 13}, {"Gelu", 20}, {"Gemm", 13}, {"Greater", 13},
    {"GreaterOrEqual", 16}, {"Hardmax", 13}, {"Identity", 13}, {"LayerNormalization", 17},
    {"LeakyRelu", 16}, {"Less", 13}, {"LessOrEqual", 16}, {"Log", 13}, {"LogSoftmax", 13},
    {"MatMul", 13}, {"Max", 13}, {"Mean", 13}, {"Min", 13}, {"Mul", 14}, {"Neg", 13},
    {"PRelu", 16}, {"Pad", 13}, {"Pow", 13}, {"Reciprocal", 13}, {"ReduceL1", 13},
    {"ReduceLogSum", 13}, {"ReduceMax", 13}, {"ReduceMean", 13}, {"ReduceMin", 13},
    {"ReduceSum", 13}, {"Relu", 14}, {"Reshape", 13}, {"ScatterElements", 13},
    {"ScatterND", 13}, {"Shape", 13}, {"Sigmoid", 13}, {"Sign", 13}, {"Size", 13},
    {"Slice", 13}, {"Softmax", 13}, {"Split", 13}, {"Sqrt", 13}, {"Squeeze", 13}, {"Sub", 14},
    {"Sum", 13}, {"Tanh", 13}, {"Tile", 13}, {"Transpose", 13}, {"Unsqueeze", 13},
    {"Where", 16}, {NULL, 0}};

static bool has_bf16(const char *op, int64_t opset)
{
    for (size_t i = 0; bf16_ops[i].op; i++)
        if (strcmp(bf16_ops[i].op, op) == 0)
            return opset >= bf16_ops[i].since;
    return false;
}

static const char *const control_ops[] = {"If", "Loop", "Scan", "SequenceMap", NULL};

static bool in_null_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && s && strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Input slots of a converted node that stay float32 or take any type. */
static bool slot_keeps_type(const pare_node *n, size_t i)
{
    const char *op = n->op_type;
    if (strcmp(op, "Cast") == 0 || strcmp(op, "Shape") == 0 || strcmp(op, "Size") == 0)
        return true; /* read any type as it is */
    if (strcmp(op, "CastLike") == 0)
        return i == 0;
    return false;
}

/* Output slots of a converted node that stay float32 (LayerNormalization's
 * Mean and InvStdDev follow stash_type). */
static bool out_keeps_type(const pare_node *n, size_t i)
{
    return i > 0 && (pare_node_is(n, "", "LayerNormalization"));
}

typedef struct fq {
    pare_graph *g;
    const pare_fq_opts *o;
    int nt;               /* narrow dtype */
    float maxv;           /* its largest finite value */
    pare_quant_report *r;
    pare_error *err;
    unsigned char *conv;  /* per node id: 1 converted */
    unsigned char *shp;   /* per value id: derives from Shape/Size */
    int *vt;              /* per value id: stored dtype after conversion (0: unchanged) */
    pare_value **c16;     /* per value id: Cast to narrow */
    pare_value **c32;     /* per value id: Cast to float32 */
    pare_value **dup;     /* per value id: narrow copy of an initializer */
} fq;

static bool is_small_const(const pare_value *v)
{
    if (v->init && !v->is_input)
        return pare_tensor_numel(v->init) <= 16;
    return v->producer && pare_node_is(v->producer, "", "Constant");
}

/* Why node n stays float32 (NULL: converted). */
static const char *block_reason(fq *c, pare_node *n)
{
    const pare_fq_opts *o = c->o;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return "not an ai.onnx op";
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || n->attrs[a].graphs || in_null_list(control_ops, n->op_type))
            return "control flow: body kept float32";
    if (in_null_list(control_ops, n->op_type))
        return "control flow: body kept float32";
    if (n->name && in_list(o->block_nodes, o->n_block_nodes, n->name))
        return "--block-nodes";
    if (in_list(o->block_ops, o->n_block_ops, n->op_type))
        return "--block-ops";
    if (o->default_block_list && in_null_list(pare_fq_default_block_ops, n->op_type))
        return "default block list";
    /* with storage_only the node computes in float32: its schema's types do not matter */
    if (c->nt == PARE_DT_BFLOAT16 && !o->storage_only && !has_bf16(n->op_type, pare_node_opset(n)))
        return "no bfloat16 in the op's ONNX schema at the model's opset";
    /* shape computations: some input from Shape/Size, the rest too or small constants */
    bool any = false, all = n->n_inputs > 0;
    for (size_t i = 0; i < n->n_inputs; i++) {
        pare_value *v = n->inputs[i];
        if (!v)
            continue;
        if (c->shp[v->id] && v->graph == c->g)
            any = true;
        else if (!is_small_const(v))
            all = false;
    }
    if (any && all && !pare_node_is(n, "", "ConstantOfShape")) /* that one makes data */
        return "shape computation";
    for (size_t i = 0; i < n->n_inputs + n->n_outputs; i++) {
        pare_value *v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
        if (v && v->dtype == PARE_DT_UNDEFINED && v->elem_kind == 0)
            return "a value of unknown type";
    }
    return NULL;
}

static bool touches_float(const pare_node *n)
{
    for (size_t i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && n->inputs[i]->dtype == PARE_DT_FLOAT)
            return true;
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && n->outputs[i]->dtype == PARE_DT_FLOAT)
            return true;
    return pare_node_is(n, "", "Cast") && pare_node_attr_int(n, "to", 0) == PARE_DT_FLOAT;
}

/* Narrow copy of a float32 tensor (clamping and counting). */
static pare_status narrow_tensor(fq *c, const pare_tensor *t, const char *what, pare_tensor **out)
{
    pare_tensor *n;
    pare_status st = pare_tensor_new(t->name, c->nt, t->rank, t->dims, &n, c->err);
    if (st)
        return st;
    const float *src = t->data;
    uint16_t *dst = n->data;
    uint64_t cnt = pare_tensor_numel(t), clamped = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        float f = src[i];
        if (isfinite(f) && fabsf(f) > c->maxv) {
            f = f > 0 ? c->maxv : -c->maxv;
            clamped++;
        }
        dst[i] = c->nt == PARE_DT_FLOAT16 ? pare_f32_to_f16(f) : pare_f32_to_bf16(f);
    }
    if (clamped && c->r && (st = pare_quant_report_clamped(c->r, what, clamped, c->err))) {
        pare_tensor_free(n);
        return st;
    }
    *out = n;
    return PARE_OK;
}

static pare_status set_dtype(pare_value *v, int dt, pare_error *err)
{
    return pare_value_set_type(v, dt, &v->shape, err);
}

/* The value of v cast to dt (made once, placed before `before`). */
static pare_status cast_of(fq *c, pare_value *v, int dt, pare_node *before, pare_value **out)
{
    pare_value **slot = dt == PARE_DT_FLOAT ? &c->c32[v->id] : &c->c16[v->id];
    if (*slot) {
        *out = *slot;
        return PARE_OK;
    }
    char hint[512], name[512];
    snprintf(hint, sizeof hint, "%s_%s", v->name, dt == PARE_DT_FLOAT ? "fp32" : pare_dtype_name(dt));
    pare_value *cv;
    pare_node *cn;
    pare_status st;
    if ((st = pare_graph_new_value(c->g, NULL, hint, dt, &cv, c->err)) ||
        (st = pare_value_set_type(cv, dt, &v->shape, c->err)))
        return st;
    snprintf(hint, sizeof hint, "%s_Cast", cv->name);
    pare_graph_unique_name(c->g, hint, name, sizeof name);
    if ((st = pare_graph_add_node(c->g, name, "", "Cast", &v, 1, &cv, 1, before, &cn, c->err)) ||
        (st = pare_node_set_attr_int(cn, "to", dt, c->err)))
        return st;
    *slot = *out = cv;
    return PARE_OK;
}

/* The top-level node of g that holds (or is) n. */
static pare_node *top_node(pare_graph *g, pare_node *n)
{
    while (n && n->graph != g)
        n = n->graph->owner;
    return n;
}

/* Stored type a reader (node, slot) computes in, for a float32 value. */
static int wanted(fq *c, const pare_node *n, size_t slot, int have)
{
    if (n->graph != c->g)
        return PARE_DT_FLOAT; /* subgraph bodies stay float32 */
    if (!c->conv[n->id])
        return PARE_DT_FLOAT;
    if (slot_keeps_type(n, slot))
        return have;
    return c->nt;
}

/* storage_only: each float32 initializer of more than 16 values that only
 * converted nodes of the main graph read is stored narrow; a Cast to float32
 * takes its name, so readers (and node names, --block-nodes) stay as they
 * were and compute stays float32. Readers of such a weight are marked 2 in
 * c->conv. onnxruntime's CPU provider has Cast but no bfloat16 MatMul, Conv,
 * Gemm, Add, ... kernels, so this is the bf16 form that runs there. */
static pare_status store_narrow(fq *c, pare_value **vals, size_t n_vals)
{
    pare_status st = PARE_OK;
    for (size_t i = 0; i < n_vals && !st; i++) {
        pare_value *v = vals[i];
        if (!v || !v->init || v->is_input || v->is_output || v->dtype != PARE_DT_FLOAT ||
            !v->n_uses || pare_tensor_numel(v->init) <= 16)
            continue;
        bool all = true;
        for (size_t u = 0; u < v->n_uses && all; u++) {
            const pare_node *n = v->uses[u].node;
            all = n->graph == c->g && c->conv[n->id] && !slot_keeps_type(n, v->uses[u].input);
        }
        if (!all)
            continue;
        pare_tensor *t = pare_value_tensor(v, c->err), *nt;
        if (!t)
            return pare_error_set(c->err, PARE_ERR_INVALID, "initializer '%s' has no data",
                                  v->name);
        char name[512], hint[512];
        snprintf(name, sizeof name, "%s", v->name);
        if ((st = narrow_tensor(c, t, v->name, &nt)))
            return st;
        snprintf(hint, sizeof hint, "%s_%s", name, pare_dtype_name(c->nt));
        pare_value *d, *f;
        pare_node *cn;
        if ((st = pare_tensor_set_name(nt, hint, c->err)) ||
            (st = pare_graph_add_initializer(c->g, nt, &d, c->err))) {
            pare_tensor_free(nt);
            return st;
        }
        for (size_t u = 0; u < v->n_uses; u++)
            c->conv[v->uses[u].node->id] = 2;
        char old[512];
        snprintf(hint, sizeof hint, "%s_float32", name);
        pare_graph_unique_name(c->g, hint, old, sizeof old);
        if ((st = pare_value_rename(v, old, c->err)) ||
            (st = pare_graph_new_value(c->g, name, NULL, PARE_DT_FLOAT, &f, c->err)) ||
            (st = pare_value_set_type(f, PARE_DT_FLOAT, &v->shape, c->err)))
            return st;
        snprintf(hint, sizeof hint, "%s_Cast", d->name);
        pare_graph_unique_name(c->g, hint, name, sizeof name);
        if ((st = pare_graph_add_node(c->g, name, "", "Cast", &d, 1, &f, 1, NULL, &cn, c->err)) ||
            (st = pare_node_set_attr_int(cn, "to", PARE_DT_FLOAT, c->err)))
            return st;
        st = pare_value_replace_uses(v, f, c->err);
    }
    return st;
}

pare_status pare_quantize_float(pare_model *m, const pare_fq_opts *o, pare_quant_report *r,
                                pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    double t0 = pare_now();
    if (!m || !o)
        return pare_error_set(err, PARE_ERR_ARG, "no model or options");
    if (o->dtype != PARE_DT_FLOAT16 && o->dtype != PARE_DT_BFLOAT16)
        return pare_error_set(err, PARE_ERR_ARG, "float conversion targets float16 or bfloat16, "
                                                 "not %s",
                              pare_dtype_name(o->dtype));
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < o->n_block_nodes; i++)
        if (!o->block_nodes[i] || !pare_graph_find_node(g, o->block_nodes[i]))
            return pare_error_set(err, PARE_ERR_ARG, "no node named '%s' to block",
                                  o->block_nodes[i] ? o->block_nodes[i] : "(null)");
    pare_infer_report irep;
    memset(&irep, 0, sizeof irep);
    pare_status st = pare_infer_shapes(m, NULL, &irep, err);
    pare_infer_report_release(&irep);
    if (st)
        return pare_error_prefix(err, "type inference");
    if ((st = pare_graph_toposort(g, err)))
        return st;
    if (r)
        r->weight_bytes_before = pare_model_weight_bytes(m);
    fq c = {g, o, o->dtype, o->dtype == PARE_DT_FLOAT16 ? 65504.0f : 3.38953139e38f, r, err,
            NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nv = g->n_values + 1, nn = g->next_node_id + g->n_nodes + 1;
    c.conv = calloc(nn, 1);
    c.shp = calloc(nv, 1);
    c.vt = calloc(nv, sizeof *c.vt);
    c.c16 = calloc(nv, sizeof *c.c16);
    c.c32 = calloc(nv, sizeof *c.c32);
    c.dup = calloc(nv, sizeof *c.dup);
    /* values and nodes made below get ids past these arrays: only the
     * original ones are looked up */
    pare_node **nodes = malloc((g->n_nodes + 1) * sizeof *nodes);
    size_t n_nodes = g->n_nodes;
    pare_value **vals = malloc(nv * sizeof *vals);
    if (!c.conv || !c.shp || !c.vt || !c.c16 || !c.c32 || !c.dup || !nodes || !vals) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(nodes, g->nodes, n_nodes * sizeof *nodes);
    size_t n_vals = g->n_values;
    memcpy(vals, g->values, n_vals * sizeof *vals);
    for (size_t i = 0; i < n_nodes; i++)
        if (nodes[i]->id >= nn || (nodes[i]->id + 1) == 0) {
            st = pare_error_set(err, PARE_ERR_INVALID, "node ids out of range");
            goto done;
        }

    /* 1. which nodes convert (in topological order, so shape-derivation flows) */
    for (size_t i = 0; i < n_nodes && !st; i++) {
        pare_node *n = nodes[i];
        bool shape_src = pare_node_is(n, "", "Shape") || pare_node_is(n, "", "Size");
        const char *why = block_reason(&c, n);
        if (shape_src || (why && strcmp(why, "shape computation") == 0))
            for (size_t k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] && n->outputs[k]->id < nv)
                    c.shp[n->outputs[k]->id] = 1;
        if (!touches_float(n))
            continue;
        if (why) {
            if (r)
                st = pare_quant_report_node(r, PARE_QE_FLOAT, n, why, err);
            continue;
        }
        c.conv[n->id] = 1;
        if (r && !o->storage_only)
            st = pare_quant_report_node(r, PARE_QE_QUANTIZED, n, pare_dtype_name(c.nt), err);
    }
    if (st)
        goto done;

    if (o->storage_only) {
        if ((st = store_narrow(&c, vals, n_vals)))
            goto done;
        char how[64];
        snprintf(how, sizeof how, "%s weights, float32 compute", pare_dtype_name(c.nt));
        for (size_t i = 0; i < n_nodes && r && !st; i++)
            if (c.conv[nodes[i]->id] == 2)
                st = pare_quant_report_node(r, PARE_QE_QUANTIZED, nodes[i], how, err);
            else if (c.conv[nodes[i]->id] == 1)
                st = pare_quant_report_node(r, PARE_QE_FLOAT, nodes[i],
                                            "no weight to store narrow (compute stays float32)",
                                            err);
        goto finish;
    }

    /* 2. stored types of the values made by converted nodes */
    for (size_t i = 0; i < n_nodes; i++) {
        pare_node *n = nodes[i];
        if (!c.conv[n->id])
            continue;
        for (size_t k = 0; k < n->n_outputs; k++) {
            pare_value *v = n->outputs[k];
            if (v && v->dtype == PARE_DT_FLOAT && !out_keeps_type(n, k))
                c.vt[v->id] = c.nt;
        }
    }
    for (size_t i = 0; i < n_vals; i++) {
        pare_value *v = vals[i];
        if (v && v->is_input && !v->init && v->dtype == PARE_DT_FLOAT && !o->keep_io_types)
            c.vt[v->id] = c.nt;
    }

    /* 3. initializers follow their readers */
    for (size_t i = 0; i < n_vals && !st; i++) {
        pare_value *v = vals[i];
        if (!v || !v->init || v->is_input || v->dtype != PARE_DT_FLOAT)
            continue;
        size_t narrow = 0, wide = 0;
        for (size_t u = 0; u < v->n_uses; u++) {
            int w = wanted(&c, v->uses[u].node, v->uses[u].input, PARE_DT_FLOAT);
            if (w == c.nt)
                narrow++;
            else
                wide++;
        }
        if (!narrow)
            continue;
        pare_tensor *t = pare_value_tensor(v, err), *nt;
        if (!t) {
            st = pare_error_set(err, PARE_ERR_INVALID, "initializer '%s' has no data", v->name);
            break;
        }
        if ((st = narrow_tensor(&c, t, v->name, &nt)))
            break;
        if (!wide && !v->is_output) {
            st = pare_value_set_tensor(v, nt, err);
            c.vt[v->id] = -1; /* already narrow: no cast, no type change */
        } else {
            pare_value *d;
            char hint[512];
            snprintf(hint, sizeof hint, "%s_%s", v->name, pare_dtype_name(c.nt));
            if ((st = pare_tensor_set_name(nt, hint, err)) ||
                (st = pare_graph_add_initializer(g, nt, &d, err))) {
                pare_tensor_free(nt);
                break;
            }
            c.dup[v->id] = d;
        }
    }
    if (st)
        goto done;

    /* 4. Constant / ConstantOfShape / Cast of converted nodes */
    for (size_t i = 0; i < n_nodes && !st; i++) {
        pare_node *n = nodes[i];
        if (!c.conv[n->id])
            continue;
        if (pare_node_is(n, "", "Cast") && pare_node_attr_int(n, "to", 0) == PARE_DT_FLOAT) {
            st = pare_node_set_attr_int(n, "to", c.nt, err);
            if (!st && n->outputs[0])
                c.vt[n->outputs[0]->id] = c.nt;
            continue;
        }
        if (pare_node_is(n, "", "Constant") || pare_node_is(n, "", "ConstantOfShape")) {
            const pare_attr *a = pare_node_attr(n, "value");
            if (a && a->type == PARE_ATTR_TENSOR && a->t && a->t->dtype == PARE_DT_FLOAT) {
                pare_tensor *nt;
                if ((st = narrow_tensor(&c, a->t, n->outputs[0] ? n->outputs[0]->name : "value",
                                        &nt)))
                    break;
                st = pare_node_set_attr_tensor(n, "value", nt, err);
            } else if (!a && pare_node_is(n, "", "ConstantOfShape")) {
                int64_t one = 1;
                pare_tensor *z; /* the default value is a float32 zero */
                if ((st = pare_tensor_new("value", c.nt, 1, &one, &z, err)))
                    break;
                st = pare_node_set_attr_tensor(n, "value", z, err);
            } else if (pare_node_is(n, "", "Constant") && n->outputs[0]) {
                c.vt[n->outputs[0]->id] = 0; /* value_float(s) etc.: keep float32 */
                c.conv[n->id] = 0;
            }
        }
    }
    if (st)
        goto done;

    /* 5. readers: Casts where the stored and the computing types differ */
    for (size_t i = 0; i < n_vals && !st; i++) {
        pare_value *v = vals[i];
        if (!v || v->elem_kind != 0)
            continue;
        int have = c.vt[v->id] > 0 ? c.vt[v->id] : v->dtype;
        if (have != PARE_DT_FLOAT && have != c.nt)
            continue;
        if (c.vt[v->id] < 0)
            continue; /* initializer converted in place */
        /* copy the uses: set_input edits the list */
        size_t nu = v->n_uses;
        pare_use *uses = nu ? malloc(nu * sizeof *uses) : NULL;
        if (nu && !uses) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            break;
        }
        if (nu)
            memcpy(uses, v->uses, nu * sizeof *uses);
        for (size_t u = 0; u < nu && !st; u++) {
            pare_node *n = uses[u].node;
            int w = wanted(&c, n, uses[u].input, have);
            if (w == have)
                continue;
            pare_value *src;
            if (c.dup[v->id] && w == c.nt)
                src = c.dup[v->id];
            else if ((st = cast_of(&c, v, w, top_node(g, n), &src)))
                break;
            st = pare_node_set_input(n, uses[u].input, src, err);
        }
        free(uses);
    }
    if (st)
        goto done;

    /* 6. new stored types; graph outputs back to float32 with their names */
    for (size_t i = 0; i < n_vals && !st; i++) {
        pare_value *v = vals[i];
        if (!v || c.vt[v->id] <= 0 || v->dtype == c.vt[v->id])
            continue;
        if ((st = set_dtype(v, c.vt[v->id], err)))
            break;
        if (v->is_output && o->keep_io_types) {
            pare_value *f32;
            char hint[512], name[512];
            snprintf(hint, sizeof hint, "%s_%s", v->name, pare_dtype_name(c.nt));
            if ((st = pare_graph_new_value(g, NULL, hint, PARE_DT_FLOAT, &f32, err)) ||
                (st = pare_value_set_type(f32, PARE_DT_FLOAT, &v->shape, err)))
                break;
            size_t nu = v->n_uses;
            pare_use *uses = nu ? malloc(nu * sizeof *uses) : NULL;
            if (nu && !uses) {
                st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                break;
            }
            if (nu)
                memcpy(uses, v->uses, nu * sizeof *uses);
            /* f32 takes the output (and its name); readers go back to v */
            st = pare_value_replace_uses(v, f32, err);
            for (size_t u = 0; u < nu && !st; u++)
                st = pare_node_set_input(uses[u].node, uses[u].input, v, err);
            free(uses);
            pare_node *cn;
            snprintf(hint, sizeof hint, "%s_Cast", f32->name);
            pare_graph_unique_name(g, hint, name, sizeof name);
            if (!st && !(st = pare_graph_add_node(g, name, "", "Cast", &v, 1, &f32, 1, NULL, &cn,
                                                  err)))
                st = pare_node_set_attr_int(cn, "to", PARE_DT_FLOAT, err);
        }
    }
finish:
    if (!st)
        st = pare_graph_remove_dead(g, NULL, err);
    if (!st)
        st = pare_graph_toposort(g, err);
    if (!st && r) {
        r->weight_bytes_after = pare_model_weight_bytes(m);
        r->seconds += pare_now() - t0;
    }
done:
    free(c.conv);
    free(c.shp);
    free(c.vt);
    free(c.c16);
    free(c.c32);
    free(c.dup);
    free(nodes);
    free(vals);
    return st;
}
