/* qcommon.c - filters, opset raising and weight quantization shared by the
 * int8/fp8 passes (qcommon.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/dtype.h"
#include "quant/qcommon.h"
#include "internal.h"

bool pare_qx_is_const(const pare_value *v)
{
    /* before IR 4 every initializer is also listed as an input, and is a constant */
    return v && v->init &&
           (!v->is_input || (v->graph->model && pare_model_ir_version(v->graph->model) < 4));
}

/* the IR version that brings an opset's ops and types (onnx's table) */
static int64_t ir_for_opset(int64_t opset)
{
    return opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : opset >= 13 ? 7
         : opset >= 12 ? 7 : opset >= 11 ? 6 : opset >= 10 ? 5 : 4;
}


bool pare_qx_in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

static bool in_array(const char *const *a, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] && strcmp(a[i], name) == 0)
            return true;
    return false;
}

pare_status pare_qx_check_filter(const pare_graph *g, const pare_quant_filter *f,
                                 const char *const *quantizable, const char *mode,
                                 pare_error *err)
{
    char missing[512] = "";
    size_t n_missing = 0, len = 0;
    for (size_t i = 0; i < f->n_exclude_nodes; i++) {
        const char *name = f->exclude_nodes[i];
        if (name && pare_graph_find_node(g, name))
            continue;
        n_missing++;
        if (len < sizeof missing - 8) {
            int k = snprintf(missing + len, sizeof missing - len, "%s'%s'", len ? ", " : "",
                             name ? name : "(null)");
            if (k > 0)
                len += (size_t)k;
        }
    }
    if (n_missing)
        return pare_error_set(err, PARE_ERR_ARG, "%s: no node named %s in the main graph",
                              n_missing > 1 ? "excluded nodes" : "excluded node", missing);
    for (size_t i = 0; i < f->n_op_types; i++) {
        const char *op = f->op_types[i];
        if (op && pare_qx_in_list(quantizable, op))
            continue;
        char list[512] = "";
        size_t l = 0;
        for (const char *const *q = quantizable; *q && l < sizeof list - 2; q++) {
            int k = snprintf(list + l, sizeof list - l, "%s%s", l ? " " : "", *q);
            if (k > 0)
                l += (size_t)k;
        }
        return pare_error_set(err, PARE_ERR_ARG, "op type '%s' cannot be quantized in %s mode "
                              "(it can: %s)", op ? op : "(null)", mode, list);
    }
    return PARE_OK;
}

bool pare_qx_excluded(const pare_quant_filter *f, const pare_node *n)
{
    return (n->name && n->name[0] && in_array(f->exclude_nodes, f->n_exclude_nodes, n->name)) ||
           in_array(f->exclude_op_types, f->n_exclude_op_types, n->op_type);
}

const char *pare_qx_filter_why(const pare_quant_filter *f, const pare_node *n,
                               const char *const *defaults)
{
    if (n->name && in_array(f->exclude_nodes, f->n_exclude_nodes, n->name))
        return "excluded by --exclude-nodes";
    if (n->domain[0])
        return "op not quantizable (not in the default domain)";
    if (in_array(f->exclude_op_types, f->n_exclude_op_types, n->op_type))
        return "excluded by --exclude-op-types";
    if (f->n_op_types) {
        if (!in_array(f->op_types, f->n_op_types, n->op_type))
            return "not in --op-types";
        return NULL;
    }
    if (!pare_qx_in_list(defaults, n->op_type))
        return "op not quantizable";
    return NULL;
}

pare_status pare_qx_drop_if_unused(pare_value *v, pare_error *err)
{
    if (!v || !v->init || v->n_uses || v->is_output || v->is_input || !v->init->nbytes)
        return PARE_OK;
    int64_t zero = 0;
    pare_tensor *t;
    pare_status st = pare_tensor_new(v->init->name, v->init->dtype, 1, &zero, &t, err);
    if (st)
        return st;
    return pare_value_set_tensor(v, t, err);
}

/* ---- opset ----------------------------------------------------------- */

/* An op whose attributes or inputs change meaning at `since`. */
typedef struct opset_change {
    const char *op;
    int since;
    const char *attr; /* the change only matters when this attribute is set (NULL: always) */
} opset_change;

static const opset_change changes[] = {
    {"Slice", 10, NULL},        {"TopK", 10, NULL},          {"Upsample", 10, NULL},
    {"Resize", 11, NULL},       {"Pad", 11, NULL},           {"Clip", 11, "min"},
    {"Clip", 11, "max"},        {"Scatter", 11, NULL},
    {"Squeeze", 13, "axes"},    {"Unsqueeze", 13, NULL},     {"Split", 13, "split"},
    {"ReduceSum", 13, "axes"},  {"Softmax", 13, NULL},       {"LogSoftmax", 13, NULL},
    {"Hardmax", 13, NULL},      {"ReduceMean", 18, "axes"},  {"ReduceMax", 18, "axes"},
    {"ReduceMin", 18, "axes"},  {"ReduceProd", 18, "axes"},  {"ReduceL1", 18, "axes"},
    {"ReduceL2", 18, "axes"},   {"ReduceLogSum", 18, "axes"}, {"ReduceLogSumExp", 18, "axes"},
    {"ReduceSumSquare", 18, "axes"}, {"Split", 18, NULL},
    {"GridSample", 20, "mode"}, {"DFT", 20, NULL}, {"GroupNormalization", 21, NULL},
};

typedef struct opset_check {
    int64_t from, to;
    const pare_node *bad;
    const char *what;
} opset_check;

static bool softmax_last_axis(const pare_node *n)
{
    int64_t axis = pare_node_attr_int(n, "axis", 1);
    if (axis == -1)
        return true;
    const pare_value *x = n->n_inputs ? n->inputs[0] : NULL;
    if (!x || x->shape.rank <= 0)
        return false;
    if (axis < 0)
        axis += x->shape.rank;
    if (axis < 0 || axis >= x->shape.rank)
        return false;
    /* before 13 the input is seen as 2-D [d0..d(axis-1), d(axis)..]: the same
     * as one axis when every later dim is 1 */
    for (int d = (int)axis + 1; d < x->shape.rank; d++)
        if (x->shape.dims[d].value != 1)
            return false;
    return true;
}

static void check_graph(pare_graph *g, void *ctx)
{
    opset_check *c = ctx;
    for (size_t i = 0; i < g->n_nodes && !c->bad; i++) {
        const pare_node *n = g->nodes[i];
        if (n->domain[0])
            continue;
        for (size_t k = 0; k < sizeof changes / sizeof *changes; k++) {
            const opset_change *ch = &changes[k];
            if (strcmp(ch->op, n->op_type) || ch->since <= c->from || ch->since > c->to)
                continue;
            if (ch->attr && !pare_node_attr(n, ch->attr))
                continue;
            if (!strcmp(ch->op, "Softmax") || !strcmp(ch->op, "LogSoftmax") ||
                !strcmp(ch->op, "Hardmax")) {
                if (softmax_last_axis(n))
                    continue;
                c->what = "the axis attribute changes meaning at opset 13";
            } else if (!strcmp(ch->op, "Split") && ch->since == 18) {
                if (n->n_inputs > 1 && n->inputs[1])
                    continue;
                c->what = "opset 18 needs 'num_outputs' or a 'split' input";
            } else
                c->what = ch->attr ? "an attribute becomes an input" : "its signature changes";
            c->bad = n;
            break;
        }
    }
}

static void drop_ratio(pare_graph *g, void *ctx)
{
    pare_status *st = ctx;
    for (size_t i = 0; i < g->n_nodes && !*st; i++) {
        pare_node *n = g->nodes[i];
        pare_error e;
        if (pare_node_is(n, "", "Dropout") && pare_node_attr(n, "ratio"))
            *st = pare_node_remove_attr(n, "ratio", &e);
    }
}

pare_status pare_qx_raise_opset(pare_model *m, int64_t target, const char *why, pare_error *err)
{
    int64_t cur = pare_model_opset_version(m, "");
    if (cur >= target)
        return PARE_OK;
    opset_check c = {.from = cur, .to = target};
    pare_graph_walk(pare_model_graph(m), check_graph, &c);
    if (c.bad) {
        char lbl[256];
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "%s needs opset %lld, but raising it from %lld would change node %s: "
                              "%s (convert the model to opset %lld first)",
                              why, (long long)target, (long long)cur,
                              pare_node_label(c.bad, lbl, sizeof lbl), c.what, (long long)target);
    }
    pare_status st = PARE_OK;
    if (cur < 12) /* Dropout's ratio became an input at 12; in inference it is an identity */
        pare_graph_walk(pare_model_graph(m), drop_ratio, &st);
    if (st)
        return pare_error_set(err, st, "out of memory");
    if ((st = pare_model_set_opset(m, "", target, err)))
        return st;
    /* an opset needs the IR version that brought it (float8 types: IR 9);
     * no public setter exists, the field is set here */
    int64_t ir = ir_for_opset(target);
    if (pare_model_ir_version(m) < 4) {
        /* before IR 4 initializers were listed as inputs and still constant;
         * from 4 on an input may override them: drop those input entries */
        pare_graph *g = pare_model_graph(m);
        for (size_t i = g->n_inputs; i-- > 0;)
            if (g->inputs[i]->init && (st = pare_graph_remove_input(g, i, err)))
                return st;
    }
    if (pare_model_ir_version(m) < ir) {
        m->proto->ir_version = ir;
        m->proto->has_ir_version = 1;
    }
    return PARE_OK;
}

/* ---- tensors --------------------------------------------------------- */

pare_status pare_qx_tensor(int dtype, const double *v, size_t n, pare_tensor **out,
                           pare_error *err)
{
    int64_t dim = (int64_t)n;
    pare_status st = pare_tensor_new(NULL, dtype, n ? 1 : 0, n ? &dim : NULL, out, err);
    if (st)
        return st;
    for (size_t i = 0; i < (n ? n : 1); i++) {
        if (dtype == PARE_DT_FLOAT8E4M3FN)
            ((uint8_t *)(*out)->data)[i] = pare_f32_to_f8(dtype, (float)v[i], true);
        else
            pare_dtype_set_f64(dtype, (*out)->data, i, v[i]);
    }
    return PARE_OK;
}

pare_status pare_qx_add_init(pare_graph *g, pare_tensor *t, const char *hint, pare_value **out,
                             pare_error *err)
{
    char buf[512];
    pare_status st = pare_tensor_set_name(t, pare_graph_unique_name(g, hint, buf, sizeof buf), err);
    if (!st)
        st = pare_graph_add_initializer(g, t, out, err);
    else
        pare_tensor_free(t);
    return st;
}

pare_status pare_qx_new_value(pare_graph *g, const char *hint, int dtype, pare_value **out,
                              pare_error *err)
{
    return pare_graph_new_value(g, NULL, hint, dtype, out, err);
}

pare_status pare_qx_add_node(pare_graph *g, const char *hint, const char *op,
                             pare_value *const *in, size_t n_in, pare_value *const *out,
                             size_t n_out, pare_node **node, pare_error *err)
{
    return pare_graph_add_node(g, hint, "", op, in, n_in, out, n_out, NULL, node, err);
}

pare_status pare_qx_quantize_weight(const pare_tensor *w, int axis, int qtype, pare_tensor **q,
                                    pare_tensor **scale, pare_tensor **zp, pare_error *err)
{
    *q = *scale = *zp = NULL;
    if (w->dtype != PARE_DT_FLOAT)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "weight '%s' is %s, not float32",
                              w->name ? w->name : "", pare_dtype_name(w->dtype));
    if (axis >= w->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "weight '%s': axis %d of rank %d",
                              w->name ? w->name : "", axis, w->rank);
    size_t C = axis >= 0 ? (size_t)w->dims[axis] : 1, inner = 1, outer = 1;
    for (int d = 0; d < w->rank; d++) {
        if (axis >= 0 && d < axis)
            outer *= (size_t)w->dims[d];
        else if (axis >= 0 && d > axis)
            inner *= (size_t)w->dims[d];
    }
    if (axis < 0)
        inner = (size_t)pare_tensor_numel(w);
    double *amax = calloc(C ? C : 1, sizeof *amax);
    if (!amax)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    const float *x = w->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < C; c++) {
            const float *p = x + (o * C + c) * inner;
            double a = amax[c];
            for (size_t i = 0; i < inner; i++) {
                double v = fabs((double)p[i]);
                if (v > a && isfinite(v))
                    a = v;
            }
            amax[c] = a;
        }
    double qmax = qtype == PARE_DT_FLOAT8E4M3FN ? 448.0 : 127.0;
    double zero = qtype == PARE_DT_UINT8 ? 128.0 : 0.0;
    for (size_t c = 0; c < C; c++)
        amax[c] = amax[c] > 0 ? amax[c] / qmax : 1.0; /* now the scale */
    pare_status st = pare_tensor_new(NULL, qtype, w->rank, w->dims, q, err);
    if (!st)
        st = pare_qx_tensor(PARE_DT_FLOAT, amax, axis >= 0 ? C : 0, scale, err);
    if (!st) {
        double *z = malloc((C ? C : 1) * sizeof *z);
        if (!z)
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        else {
            for (size_t c = 0; c < C; c++)
                z[c] = zero;
            st = pare_qx_tensor(qtype, z, axis >= 0 ? C : 0, zp, err);
            free(z);
        }
    }
    if (st) {
        free(amax);
        pare_tensor_free(*q);
        pare_tensor_free(*scale);
        *q = *scale = NULL;
        return st;
    }
    const float *sc = (*scale)->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < C; c++) {
            const float *p = x + (o * C + c) * inner;
            size_t base = (o * C + c) * inner;
            float inv = 1.0f / sc[c];
            if (qtype == PARE_DT_FLOAT8E4M3FN) {
                uint8_t *d = (uint8_t *)(*q)->data + base;
                for (size_t i = 0; i < inner; i++)
                    d[i] = pare_f32_to_f8(qtype, isfinite(p[i]) ? p[i] * inv : 0.0f, true);
            } else if (qtype == PARE_DT_UINT8) {
                uint8_t *d = (uint8_t *)(*q)->data + base;
                for (size_t i = 0; i < inner; i++) {
                    float r = isfinite(p[i]) ? nearbyintf(p[i] * inv) : 0.0f;
                    r = r < -127 ? -127 : r > 127 ? 127 : r;
                    d[i] = (uint8_t)(int)(r + 128);
                }
            } else {
                int8_t *d = (int8_t *)(*q)->data + base;
                for (size_t i = 0; i < inner; i++) {
                    float r = isfinite(p[i]) ? nearbyintf(p[i] * inv) : 0.0f;
                    r = r < -127 ? -127 : r > 127 ? 127 : r;
                    d[i] = (int8_t)r;
                }
            }
        }
    free(amax);
    return PARE_OK;
}
