/* dynamic.c - int8 dynamic quantization (pare_quantize_dynamic in
 * pare/quant.h): weights quantized ahead of time, activations at run time,
 * in the form onnxruntime's CPU provider runs (and fuses into
 * MatMulIntegerToFloat / DynamicQuantizeMatMul):
 *
 *   MatMul(x, W), Gemm(x, W, C):
 *     x -> DynamicQuantizeLinear -> (xq uint8, xs, xz)      one per x
 *     MatMulInteger(xq, Wq, xz, wz) -> Cast(float) -> Mul(by xs * ws * alpha)
 *     [-> Add(beta * C)]
 *   Wq: [K, N] int8 symmetric (scalar zero point 0; or uint8 with zero point
 *   128), per output column by default: the per-channel scales ws are applied
 *   after the integer product, because onnxruntime's MatMulInteger takes only
 *   a scalar weight zero point in its fast path. Gemm's transB is folded into
 *   Wq; transA = 1 stays float.
 *
 *   Conv(x, W, B):
 *     ConvInteger(xq, Wq, xz, 128) -> Cast -> Mul(by xs * ws[C,1,1]) [-> Add(B[C,1,1])]
 *   Wq is uint8 with the scalar zero point 128 (symmetric, 255 levels like
 *   int8): onnxruntime's ConvInteger takes only uint8 x uint8 in releases
 *   before 1.20 (1.32 also runs uint8 x int8, checked) and only a scalar
 *   weight zero point in all of them (1.32: "Non per-tensor quantization is
 *   not supported now"), so per-channel scales are applied after it too.
 *
 * LSTM, GRU, RNN, Attention and everything else stay float (reported).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/infer.h"
#include "pare/stats.h"
#include "quant/qcommon.h"

static const char *const dynamic_ops[] = {"MatMul", "Gemm", "Conv", NULL};

typedef struct dq_cache {
    pare_value *x, *xq, *xs, *xz;
} dq_cache;

typedef struct dctx {
    pare_graph *g;
    const pare_dynamic_opts *o;
    dq_cache *dq;
    size_t ndq, capdq;
} dctx;

static bool is_act(const pare_value *v)
{
    return v && v->dtype == PARE_DT_FLOAT && !pare_qx_is_const(v);
}

static bool is_cf(const pare_value *v, int rank)
{
    return pare_qx_is_const(v) && v->init->dtype == PARE_DT_FLOAT &&
           (rank < 0 ? v->init->rank >= 3 : v->init->rank == rank);
}

/* why n stays float; NULL when it can be quantized */
static const char *dyn_why(const pare_dynamic_opts *o, const pare_node *n)
{
    static const char *const rnn[] = {"LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention",
                                      NULL};
    if (!n->domain[0] || !strcmp(n->domain, "com.microsoft"))
        if (pare_qx_in_list(rnn, n->op_type) && !pare_qx_excluded(&o->filter, n))
            return "recurrent and attention ops stay float in dynamic mode";
    const char *why = pare_qx_filter_why(&o->filter, n, dynamic_ops);
    if (why)
        return why;
    if (!n->n_outputs || !n->outputs[0] || n->n_inputs < 2)
        return "op not quantizable";
    if (!is_act(n->inputs[0]))
        return "first input is not a float32 activation";
    if (!strcmp(n->op_type, "Conv")) {
        if (!is_cf(n->inputs[1], -1))
            return "weight is not a constant float32 initializer";
        if (n->n_inputs > 2 && n->inputs[2] &&
            (!is_cf(n->inputs[2], 1) || n->inputs[2]->init->dims[0] != n->inputs[1]->init->dims[0]))
            return "bias is not a constant float32 vector of the output channels";
        return NULL;
    }
    if (!is_cf(n->inputs[1], 2))
        return "weight is not a constant float32 2-D initializer (only MatMul/Gemm with a "
               "constant B are quantized)";
    if (!strcmp(n->op_type, "Gemm")) {
        if (pare_node_attr_int(n, "transA", 0))
            return "Gemm with transA=1 stays float";
        pare_value *c = n->n_inputs > 2 ? n->inputs[2] : NULL;
        if (c && !pare_qx_is_const(c) && pare_node_attr_float(n, "beta", 1.0f) != 1.0f)
            return "Gemm with a non-constant C and beta != 1 stays float";
        if (c && c->dtype != PARE_DT_FLOAT && c->dtype != 0)
            return "C is not float32";
        if (n->inputs[0]->shape.rank >= 0 && n->inputs[0]->shape.rank != 2)
            return "Gemm input is not 2-D";
    }
    return NULL;
}

static pare_status get_dql(dctx *c, pare_value *x, dq_cache **out, pare_error *err)
{
    for (size_t i = 0; i < c->ndq; i++)
        if (c->dq[i].x == x) {
            *out = &c->dq[i];
            return PARE_OK;
        }
    if (c->ndq == c->capdq) {
        size_t cap = c->capdq ? c->capdq * 2 : 8;
        dq_cache *n = realloc(c->dq, cap * sizeof *n);
        if (!n)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        c->dq = n;
        c->capdq = cap;
    }
    dq_cache *d = &c->dq[c->ndq];
    char hint[300];
    pare_status st;
    snprintf(hint, sizeof hint, "%s_quantized", x->name);
    if ((st = pare_qx_new_value(c->g, hint, PARE_DT_UINT8, &d->xq, err)))
        return st;
    if (x->shape.rank >= 0 && (st = pare_value_set_type(d->xq, PARE_DT_UINT8, &x->shape, err)))
        return st;
    snprintf(hint, sizeof hint, "%s_scale", x->name);
    if ((st = pare_qx_new_value(c->g, hint, PARE_DT_FLOAT, &d->xs, err)) ||
        (st = pare_value_set_dims(d->xs, PARE_DT_FLOAT, 0, NULL, err)))
        return st;
    snprintf(hint, sizeof hint, "%s_zero_point", x->name);
    if ((st = pare_qx_new_value(c->g, hint, PARE_DT_UINT8, &d->xz, err)) ||
        (st = pare_value_set_dims(d->xz, PARE_DT_UINT8, 0, NULL, err)))
        return st;
    pare_value *outs[3] = {d->xq, d->xs, d->xz};
    snprintf(hint, sizeof hint, "%s_DynamicQuantizeLinear", x->name);
    if ((st = pare_qx_add_node(c->g, hint, "DynamicQuantizeLinear", &x, 1, outs, 3, NULL, err)))
        return st;
    d->x = x;
    c->ndq++;
    *out = d;
    return PARE_OK;
}

/* a new value named after base + suffix */
static pare_status newv(dctx *c, const char *base, const char *suffix, int dtype,
                        pare_value **out, pare_error *err)
{
    char hint[300];
    snprintf(hint, sizeof hint, "%s%s", base, suffix);
    return pare_qx_new_value(c->g, hint, dtype, out, err);
}

static pare_status node1(dctx *c, const char *base, const char *op, const char *suffix,
                         pare_value *a, pare_value *b, pare_value *out, pare_node **n,
                         pare_error *err)
{
    char hint[300];
    snprintf(hint, sizeof hint, "%s_%s", base, suffix);
    pare_value *ins[2] = {a, b};
    return pare_qx_add_node(c->g, hint, op, ins, b ? 2 : 1, &out, 1, n, err);
}

static pare_status init_of(dctx *c, pare_tensor *t, const char *base, const char *suffix,
                           pare_value **out, pare_error *err)
{
    char hint[300];
    snprintf(hint, sizeof hint, "%s%s", base, suffix);
    return pare_qx_add_init(c->g, t, hint, out, err);
}

/* B of a Gemm with transB = 1 as [K, N] */
static pare_status transposed(const pare_tensor *w, pare_tensor **out, pare_error *err)
{
    int64_t d[2] = {w->dims[1], w->dims[0]};
    pare_status st = pare_tensor_new(NULL, PARE_DT_FLOAT, 2, d, out, err);
    if (st)
        return st;
    const float *s = w->data;
    float *t = (*out)->data;
    for (int64_t i = 0; i < w->dims[0]; i++)
        for (int64_t j = 0; j < w->dims[1]; j++)
            t[j * d[1] + i] = s[i * w->dims[1] + j];
    return PARE_OK;
}

static pare_status copy_attrs(const pare_node *from, pare_node *to, pare_error *err)
{
    pare_status st = PARE_OK;
    for (size_t i = 0; i < from->n_attrs && !st; i++) {
        const pare_attr *a = &from->attrs[i];
        switch (a->type) {
        case PARE_ATTR_INT:
            st = pare_node_set_attr_int(to, a->name, a->i, err);
            break;
        case PARE_ATTR_INTS:
            st = pare_node_set_attr_ints(to, a->name, a->ints, a->n, err);
            break;
        case PARE_ATTR_FLOAT:
            st = pare_node_set_attr_float(to, a->name, a->f, err);
            break;
        case PARE_ATTR_STRING:
            st = pare_node_set_attr_string(to, a->name, a->s.data, err);
            break;
        default:
            break;
        }
    }
    return st;
}

static pare_status quantize_node(dctx *c, pare_node *n, char *how, size_t howsz,
                                 pare_error *err)
{
    const pare_dynamic_opts *o = c->o;
    bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
    pare_value *x = n->inputs[0], *wv = n->inputs[1], *out = n->outputs[0];
    pare_value *bias = n->n_inputs > 2 ? n->inputs[2] : NULL;
    const char *base = out->name;
    double alpha = gemm ? pare_node_attr_float(n, "alpha", 1.0f) : 1.0;
    double beta = gemm ? pare_node_attr_float(n, "beta", 1.0f) : 1.0;
    pare_status st;
    /* weights */
    pare_tensor *w = wv->init, *wt = NULL;
    if (gemm && pare_node_attr_int(n, "transB", 0)) {
        if ((st = transposed(w, &wt, err)))
            return st;
        w = wt;
    }
    int qtype = conv ? PARE_DT_UINT8 : o->weight_type;
    int axis = o->per_channel ? (conv ? 0 : 1) : -1;
    pare_tensor *q, *s, *z;
    st = pare_qx_quantize_weight(w, axis, qtype, &q, &s, &z, err);
    pare_tensor_free(wt);
    if (st)
        return pare_error_prefix(err, "initializer '%s'", wv->name);
    pare_tensor_free(z); /* one scalar zero point instead */
    double zero = qtype == PARE_DT_UINT8 ? 128 : 0;
    if ((st = pare_qx_tensor(qtype, &zero, 0, &z, err))) {
        pare_tensor_free(q);
        pare_tensor_free(s);
        return st;
    }
    int64_t C = s->rank ? s->dims[0] : 1;
    if (conv && s->rank) { /* [C] -> [C, 1, ..., 1] to broadcast over the spatial axes */
        int64_t d[PARE_MAX_RANK] = {C};
        for (int i = 1; i < w->rank - 1; i++)
            d[i] = 1;
        pare_tensor *s2;
        if ((st = pare_tensor_new(NULL, PARE_DT_FLOAT, w->rank - 1, d, &s2, err))) {
            pare_tensor_free(q);
            pare_tensor_free(s);
            pare_tensor_free(z);
            return st;
        }
        memcpy(s2->data, s->data, (size_t)C * sizeof(float));
        pare_tensor_free(s);
        s = s2;
    }
    if (alpha != 1.0) {
        float *sd = s->data;
        for (int64_t i = 0; i < C; i++)
            sd[i] = (float)(sd[i] * alpha);
    }
    pare_value *qv, *sv, *zv;
    if ((st = init_of(c, q, wv->name, "_quantized", &qv, err))) {
        pare_tensor_free(s);
        pare_tensor_free(z);
        return st;
    }
    if ((st = init_of(c, s, wv->name, "_scale", &sv, err))) {
        pare_tensor_free(z);
        return st;
    }
    if ((st = init_of(c, z, wv->name, "_zero_point", &zv, err)))
        return st;
    /* bias: beta * C for Gemm, B as [C, 1, ..., 1] for Conv */
    pare_value *bv = NULL;
    if (bias && pare_qx_is_const(bias)) {
        pare_tensor *bt;
        if ((st = pare_tensor_clone(bias->init, &bt, err)))
            return st;
        float *bd = bt->data;
        size_t nb = (size_t)pare_tensor_numel(bt);
        if (gemm && beta != 1.0)
            for (size_t i = 0; i < nb; i++)
                bd[i] = (float)(bd[i] * beta);
        if (conv) {
            int64_t d[PARE_MAX_RANK] = {(int64_t)nb};
            for (int i = 1; i < wv->init->rank - 1; i++)
                d[i] = 1;
            pare_tensor *b2;
            if ((st = pare_tensor_new(NULL, PARE_DT_FLOAT, wv->init->rank - 1, d, &b2, err))) {
                pare_tensor_free(bt);
                return st;
            }
            memcpy(b2->data, bt->data, nb * sizeof(float));
            pare_tensor_free(bt);
            bt = b2;
        }
        if ((st = init_of(c, bt, bias->name, gemm && beta != 1.0 ? "_beta" : "_bcast", &bv, err)))
            return st;
    } else if (bias)
        bv = bias; /* a non-constant C with beta 1 */
    dq_cache *d = NULL;
    if ((st = get_dql(c, x, &d, err)))
        return st;
    /* the integer product, Cast, scale, bias */
    pare_value *acc, *accf, *sc, *scaled;
    pare_node *core;
    if ((st = newv(c, base, "_int32", PARE_DT_INT32, &acc, err)))
        return st;
    {
        pare_value *ins[4] = {d->xq, qv, d->xz, zv};
        char hint[300];
        snprintf(hint, sizeof hint, "%s_%s", base, conv ? "ConvInteger" : "MatMulInteger");
        if ((st = pare_qx_add_node(c->g, hint, conv ? "ConvInteger" : "MatMulInteger", ins, 4,
                                   &acc, 1, &core, err)))
            return st;
        if (conv && (st = copy_attrs(n, core, err)))
            return st;
    }
    pare_node *cast;
    if ((st = newv(c, base, "_float", PARE_DT_FLOAT, &accf, err)) ||
        (st = node1(c, base, "Cast", "Cast", acc, NULL, accf, &cast, err)) ||
        (st = pare_node_set_attr_int(cast, "to", PARE_DT_FLOAT, err)) ||
        (st = newv(c, base, "_rescale", PARE_DT_FLOAT, &sc, err)) ||
        (st = node1(c, base, "Mul", "Mul_scales", d->xs, sv, sc, NULL, err)))
        return st;
    /* n goes; its output is made by the last new node */
    pare_graph *g = c->g;
    pare_value *keep_out = out;
    if ((st = pare_graph_remove_node(g, n, err)))
        return st;
    if (bv) {
        if ((st = newv(c, base, "_scaled", PARE_DT_FLOAT, &scaled, err)) ||
            (st = node1(c, base, "Mul", "Mul", accf, sc, scaled, NULL, err)) ||
            (st = node1(c, base, "Add", "Add_bias", scaled, bv, keep_out, NULL, err)))
            return st;
    } else if ((st = node1(c, base, "Mul", "Mul", accf, sc, keep_out, NULL, err)))
        return st;
    snprintf(how, howsz, "dynamic %s %s weights (DynamicQuantizeLinear + %s%s)",
             pare_dtype_name(qtype), axis >= 0 ? "per-channel" : "per-tensor",
             conv ? "ConvInteger, zero point 128" : "MatMulInteger",
             alpha != 1.0 || beta != 1.0 ? ", alpha/beta folded" : "");
    return PARE_OK;
}

pare_status pare_quantize_dynamic(pare_model *m, const pare_dynamic_opts *o, pare_quant_report *r,
                                  pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    double t0 = pare_now();
    if (o->weight_type != PARE_DT_INT8 && o->weight_type != PARE_DT_UINT8)
        return pare_error_set(err, PARE_ERR_ARG, "weight type %s: expected int8 or uint8",
                              pare_dtype_name(o->weight_type));
    pare_graph *g = pare_model_graph(m);
    pare_status st;
    if ((st = pare_qx_check_filter(g, &o->filter, dynamic_ops, "dynamic", err)) ||
        (st = pare_infer_shapes(m, NULL, NULL, err)) ||
        (st = pare_qx_raise_opset(m, 11, "DynamicQuantizeLinear", err)) ||
        (st = pare_graph_toposort(g, err)))
        return st;
    r->weight_bytes_before = pare_model_weight_bytes(m);
    dctx c = {.g = g, .o = o};
    size_t n0 = g->n_nodes;
    pare_node **nodes = malloc((n0 ? n0 : 1) * sizeof *nodes);
    if (!nodes)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    memcpy(nodes, g->nodes, n0 * sizeof *nodes);
    /* two passes: first the nodes whose weight the loader copied to the
     * heap (unaligned in the file), then those that borrow the file's
     * pages, so that the copies are freed (pare_qx_drop_if_unused) before
     * the mapped weights are read: the peak stays near the loaded model */
    for (size_t k = 0; k < 2 * n0 && !st; k++) {
        size_t i = k % n0;
        bool first = k < n0;
        pare_node *n = nodes[i];
        if (!n)
            continue;
        const char *why = dyn_why(o, n);
        if (why) {
            if (!first)
                st = pare_quant_report_node(r, PARE_QE_FLOAT, n, why, err);
            continue;
        }
        const pare_value *w0 = n->n_inputs > 1 ? n->inputs[1] : NULL;
        if (first && !(w0 && w0->init && w0->init->owns_data))
            continue;
        nodes[i] = NULL; /* rewritten: freed below */
        /* report first: the node is freed by the rewrite */
        char how[256];
        size_t at = r->n;
        if ((st = pare_quant_report_node(r, PARE_QE_QUANTIZED, n, "", err)))
            break;
        pare_value *wv = n->n_inputs > 1 ? n->inputs[1] : NULL;
        if ((st = quantize_node(&c, n, how, sizeof how, err)) ||
            (st = pare_qx_drop_if_unused(wv, err)))
            break;
        free(r->items[at].how);
        if (!(r->items[at].how = strdup(how)))
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    free(nodes);
    free(c.dq);
    size_t removed;
    if (!st && !(st = pare_graph_toposort(g, err)))
        st = pare_graph_remove_dead(g, &removed, err);
    r->weight_bytes_after = pare_model_weight_bytes(m);
    r->seconds += pare_now() - t0;
    return st;
}
