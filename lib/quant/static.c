/* static.c - int8 and fp8 static quantization in QDQ form, with calibration
 * (pare_quantize_static in pare/quant.h).
 *
 * Steps, each over the main graph (subgraphs stay float):
 *   1. opset raised to 13 (per-axis DequantizeLinear) or 21 (float8), after
 *      checking that no node changes meaning. Float8 pairs carry no zero
 *      point: QuantizeLinear names its type with output_dtype (opset 21),
 *      DequantizeLinear takes it from its input. With a float8 zero point
 *      (the opset-19 form) onnxruntime's graph optimizers (1.32, level
 *      EXTENDED and up) break the model: ReluQuantFusion drops a Relu before
 *      QuantizeLinear, since it only checks the zero point of int8/uint8
 *      (wrong outputs), and ClipQuantFusion throws on a Clip before it
 *      ("Unexpected data type for QuantizeLinear input y_zero_point of
 *      17"); both skip a QuantizeLinear with two inputs. The values are the
 *      same (zero points of float8 QDQ are 0); TensorRT reads opset 21;
 *   2. BatchNormalization after a Conv folded into the Conv's weight and bias
 *      (as onnxruntime's quant_pre_process does), so that Conv+BN+Relu fuse;
 *   3. SmoothQuant (alpha > 0): one calibration pass for max |x| per input
 *      channel of MatMul/Gemm with constant weights, then x / s folded into
 *      the LayerNormalization (gamma, beta) or the MatMul/Gemm (weight
 *      columns, bias) that makes x when only those nodes read x, else a Mul
 *      by 1/s inserted; the weight rows multiplied by s;
 *   4. the plan: which tensors get a QuantizeLinear/DequantizeLinear pair
 *      and which share a scale, the way onnxruntime's QDQ quantizer and
 *      TensorRT place and fuse them:
 *        - inputs of Conv, ConvTranspose, Gemm, MatMul (weights as int8
 *          initializers + DequantizeLinear, per channel or per tensor; an
 *          activation operand of MatMul/Gemm as any activation);
 *        - the output of Conv/ConvTranspose, of an Add or Mul of two
 *          activations (residual) and of Concat; a Relu, LeakyRelu or Clip
 *          that is the only reader of such an output (or of a Gemm/MatMul
 *          output that is quantized) is fused: no Q/DQ between them, the
 *          pair goes after the activation;
 *        - Concat: inputs and output share one scale (their union range);
 *        - MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Resize,
 *          Transpose, Reshape, Flatten, Squeeze, Unsqueeze whose input is
 *          quantized: the output gets a pair with the input's scale;
 *        - bias of Conv (and of Gemm with alpha = beta = 1) as int32 with
 *          scale input scale x weight scale, zero point 0;
 *   5. one calibration pass over the tensors of the plan (calib.c);
 *   6. the rewrite, then dead initializers (the float weights) removed.
 * Graph outputs keep their float values: a pair on a graph output feeds only
 * the other readers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/infer.h"
#include "pare/opt.h"
#include "pare/stats.h"
#include "quant/calib.h"
#include "quant/qcommon.h"

static const char *const static_ops[] = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "MaxPool",
    "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Resize", "Transpose", "Reshape",
    "Flatten", "Squeeze", "Unsqueeze", NULL};

enum { K_NONE, K_CONV, K_CONVT, K_GEMM, K_MATMUL, K_BINARY, K_CONCAT, K_PASS };
enum { S_FLOAT, S_QUANT, S_FUSED, S_FOLDED };

static int kind_of(const pare_node *n)
{
    static const char *const pass[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                       "GlobalMaxPool", "Resize", "Transpose", "Reshape",
                                       "Flatten", "Squeeze", "Unsqueeze", NULL};
    const char *op = n->op_type;
    if (n->domain[0])
        return K_NONE;
    if (!strcmp(op, "Conv"))
        return K_CONV;
    if (!strcmp(op, "ConvTranspose"))
        return K_CONVT;
    if (!strcmp(op, "Gemm"))
        return K_GEMM;
    if (!strcmp(op, "MatMul"))
        return K_MATMUL;
    if (!strcmp(op, "Add") || !strcmp(op, "Mul"))
        return K_BINARY;
    if (!strcmp(op, "Concat"))
        return K_CONCAT;
    if (pare_qx_in_list(pass, op))
        return K_PASS;
    return K_NONE;
}

typedef struct qparams {
    double lo, hi, scale;
    int64_t zp;
    bool set;
} qparams;

typedef struct splan {
    pare_graph *g;
    const pare_static_opts *o;
    size_t nv, nn;       /* value and node id bounds at plan time */
    int64_t *parent;     /* union-find over value ids */
    bool *need;          /* value gets a Q/DQ pair */
    uint8_t *state;      /* by node id */
    const char **why;    /* by node id: why float, or a note */
    pare_node **with;    /* by node id: the node a fused/folded one went into */
    pare_value **chain_end; /* by node id: the value after fused activations */
    bool *smoothed;      /* by node id */
    qparams *qp;         /* by value id: group parameters (at the root) */
    bool fp8;
} splan;

static int64_t uf_find(splan *p, int64_t v)
{
    while (p->parent[v] != v) {
        p->parent[v] = p->parent[p->parent[v]];
        v = p->parent[v];
    }
    return v;
}

static void uf_union(splan *p, int64_t a, int64_t b)
{
    a = uf_find(p, a);
    b = uf_find(p, b);
    if (a != b) /* the smaller id is the root: deterministic */
        p->parent[a > b ? a : b] = a < b ? a : b;
}

static bool is_float_act(const pare_value *v)
{
    return v && v->dtype == PARE_DT_FLOAT && !pare_qx_is_const(v);
}

static bool is_const_float(const pare_value *v, int min_rank)
{
    return pare_qx_is_const(v) && v->init->dtype == PARE_DT_FLOAT && v->init->rank >= min_rank;
}

static void release_plan(splan *p)
{
    free(p->parent);
    free(p->need);
    free(p->state);
    free(p->why);
    free(p->with);
    free(p->chain_end);
    free(p->smoothed);
    free(p->qp);
}

static pare_status alloc_plan(splan *p, pare_graph *g, pare_error *err)
{
    p->g = g;
    p->nv = g->n_values;
    p->nn = g->next_node_id;
    size_t nv = p->nv ? p->nv : 1, nn = p->nn ? p->nn : 1;
    p->parent = malloc(nv * sizeof *p->parent);
    p->need = calloc(nv, sizeof *p->need);
    p->state = calloc(nn, sizeof *p->state);
    p->why = calloc(nn, sizeof *p->why);
    p->with = calloc(nn, sizeof *p->with);
    p->chain_end = calloc(nn, sizeof *p->chain_end);
    p->smoothed = calloc(nn, sizeof *p->smoothed);
    p->qp = calloc(nv, sizeof *p->qp);
    if (!p->parent || !p->need || !p->state || !p->why || !p->with || !p->chain_end ||
        !p->smoothed || !p->qp)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->nv; i++)
        p->parent[i] = (int64_t)i;
    return PARE_OK;
}

static bool val_ok(const splan *p, const pare_value *v)
{
    return v && v->graph == p->g && v->id < p->nv;
}

/* ---- step 2: BatchNormalization folded into Conv ------------------------ */

static bool const_vec(const pare_value *v, int64_t len)
{
    return is_const_float(v, 1) && v->init->rank == 1 && v->init->dims[0] == len;
}

static pare_status fold_bn(pare_graph *g, const pare_static_opts *o, pare_quant_report *r,
                           pare_error *err)
{
    size_t n0 = g->n_nodes;
    pare_node **conv = malloc((n0 ? n0 : 1) * sizeof *conv);
    if (!conv)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    size_t nc = 0;
    for (size_t i = 0; i < n0; i++)
        if (pare_node_is(g->nodes[i], "", "Conv"))
            conv[nc++] = g->nodes[i];
    pare_status st = PARE_OK;
    for (size_t i = 0; i < nc && !st; i++) {
        pare_node *n = conv[i];
        if (pare_qx_filter_why(&o->filter, n, static_ops) || n->n_inputs < 2 ||
            !is_const_float(n->inputs[1], 3) || n->n_outputs != 1)
            continue;
        pare_value *out = n->outputs[0];
        if (out->is_output || out->n_uses != 1)
            continue;
        pare_node *bn = out->uses[0].node;
        if (!pare_node_is(bn, "", "BatchNormalization") || bn->n_inputs != 5 ||
            out->uses[0].input != 0 || pare_node_attr_int(bn, "training_mode", 0) != 0 ||
            pare_qx_excluded(&o->filter, bn))
            continue;
        bool extra = false;
        for (size_t k = 1; k < bn->n_outputs; k++)
            extra |= bn->outputs[k] && (bn->outputs[k]->n_uses || bn->outputs[k]->is_output);
        if (extra || !bn->outputs[0])
            continue;
        pare_tensor *w = n->inputs[1]->init;
        int64_t C = w->dims[0];
        if (C <= 0 || pare_tensor_numel(w) == 0 || !const_vec(bn->inputs[1], C) || !const_vec(bn->inputs[2], C) ||
            !const_vec(bn->inputs[3], C) || !const_vec(bn->inputs[4], C))
            continue;
        pare_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
        if (bv && !const_vec(bv, C))
            continue;
        double eps = pare_node_attr_float(bn, "epsilon", 1e-5f);
        const float *gam = bn->inputs[1]->init->data, *bet = bn->inputs[2]->init->data;
        const float *mean = bn->inputs[3]->init->data, *var = bn->inputs[4]->init->data;
        pare_tensor *nw = NULL, *nb = NULL;
        int64_t dimc = C;
        if ((st = pare_tensor_clone(w, &nw, err)) ||
            (st = pare_tensor_new(NULL, PARE_DT_FLOAT, 1, &dimc, &nb, err))) {
            pare_tensor_free(nw);
            break;
        }
        size_t inner = (size_t)(pare_tensor_numel(w) / (uint64_t)C);
        float *wd = nw->data, *bd = nb->data;
        const float *ob = bv ? bv->init->data : NULL;
        for (int64_t c = 0; c < C; c++) {
            double f = gam[c] / sqrt((double)var[c] + eps);
            for (size_t k = 0; k < inner; k++)
                wd[(size_t)c * inner + k] = (float)(wd[(size_t)c * inner + k] * f);
            bd[c] = (float)(((ob ? ob[c] : 0.0) - mean[c]) * f + bet[c]);
        }
        char hint[300];
        pare_value *wv, *bvn;
        snprintf(hint, sizeof hint, "%s_bnfold", n->inputs[1]->name);
        if ((st = pare_qx_add_init(g, nw, hint, &wv, err))) {
            pare_tensor_free(nb);
            break;
        }
        snprintf(hint, sizeof hint, "%s_bias_bnfold", n->inputs[1]->name);
        if ((st = pare_qx_add_init(g, nb, hint, &bvn, err)))
            break;
        if ((st = pare_node_set_input(n, 1, wv, err)))
            break;
        st = n->n_inputs > 2 ? pare_node_set_input(n, 2, bvn, err) : pare_node_add_input(n, bvn, err);
        if (st)
            break;
        char how[300], lbl[256];
        snprintf(how, sizeof how, "folded into %s", pare_node_label(n, lbl, sizeof lbl));
        if ((st = pare_quant_report_node(r, PARE_QE_QUANTIZED, bn, how, err)))
            break;
        st = pare_graph_bypass_node(g, bn, 0, err);
    }
    free(conv);
    return st;
}

/* ---- step 3: SmoothQuant -------------------------------------------------- */

typedef struct sq_group {
    pare_value *x;
    pare_node **nodes;
    size_t n;
} sq_group;

/* rows of the weight along the reduction axis: K, and where entry (j, col) lives */
static bool sq_weight(const pare_node *n, int64_t *K, int64_t *N, bool *trans)
{
    const pare_value *b = n->inputs[1];
    if (!is_const_float(b, 2) || b->init->rank != 2)
        return false;
    *trans = pare_node_is(n, "", "Gemm") && pare_node_attr_int(n, "transB", 0);
    *K = b->init->dims[*trans ? 1 : 0];
    *N = b->init->dims[*trans ? 0 : 1];
    return true;
}

static pare_status smooth_quant(pare_model *m, splan *p, pare_quant_report *r, pare_error *err)
{
    pare_graph *g = p->g;
    const pare_static_opts *o = p->o;
    double a = o->smooth_quant_alpha;
    sq_group *gr = NULL;
    size_t ng = 0;
    pare_status st = PARE_OK;
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        int k = kind_of(n);
        int64_t K, N;
        bool tr;
        if ((k != K_MATMUL && k != K_GEMM) || n->n_inputs < 2 ||
            pare_qx_filter_why(&o->filter, n, static_ops) || !is_float_act(n->inputs[0]) ||
            !sq_weight(n, &K, &N, &tr) ||
            (k == K_GEMM && (pare_node_attr_int(n, "transA", 0) ||
                             pare_node_attr_float(n, "alpha", 1.0f) != 1.0f)))
            continue;
        size_t j = 0;
        while (j < ng && gr[j].x != n->inputs[0])
            j++;
        if (j == ng) {
            sq_group *ngr = realloc(gr, (ng + 1) * sizeof *gr);
            if (!ngr) {
                st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                goto out;
            }
            gr = ngr;
            gr[ng++] = (sq_group){n->inputs[0], NULL, 0};
        }
        pare_node **nn = realloc(gr[j].nodes, (gr[j].n + 1) * sizeof *nn);
        if (!nn) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
        gr[j].nodes = nn;
        nn[gr[j].n++] = n;
    }
    if (!ng)
        goto out;
    pare_value **xs = malloc(ng * sizeof *xs);
    pare_qc_stats *stats = calloc(ng, sizeof *stats);
    if (!xs || !stats) {
        free(xs);
        free(stats);
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; j < ng; j++)
        xs[j] = gr[j].x;
    uint64_t samples = 0;
    st = pare_qc_calibrate(m, xs, ng, &o->calib, PARE_QC_CHANNEL, 0, stats, &samples, err);
    free(xs);
    for (size_t j = 0; j < ng && !st; j++) {
        sq_group *q = &gr[j];
        int64_t K = stats[j].nch;
        if (!stats[j].chmax || K <= 0)
            continue;
        bool fits = true;
        for (size_t i = 0; i < q->n; i++) {
            int64_t k, nn;
            bool tr;
            fits &= sq_weight(q->nodes[i], &k, &nn, &tr) && k == K;
        }
        if (!fits)
            continue;
        double *s = malloc((size_t)K * sizeof *s);
        if (!s) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            break;
        }
        for (int64_t c = 0; c < K; c++)
            s[c] = 0;
        for (size_t i = 0; i < q->n; i++) { /* max |W| per input channel */
            int64_t k, N;
            bool tr;
            sq_weight(q->nodes[i], &k, &N, &tr);
            const float *w = q->nodes[i]->inputs[1]->init->data;
            for (int64_t c = 0; c < K; c++)
                for (int64_t col = 0; col < N; col++) {
                    double v = fabs((double)w[tr ? col * K + c : c * N + col]);
                    if (v > s[c] && isfinite(v))
                        s[c] = v;
                }
        }
        for (int64_t c = 0; c < K; c++) {
            double ax = stats[j].chmax[c], wx = s[c];
            double f = ax > 0 && wx > 0 ? pow(ax, a) / pow(wx, 1.0 - a) : 1.0;
            s[c] = isfinite(f) ? (f < 1e-5 ? 1e-5 : f > 1e5 ? 1e5 : f) : 1.0;
        }
        /* weights: rows (input channels) times s */
        for (size_t i = 0; i < q->n && !st; i++) {
            pare_node *n = q->nodes[i];
            int64_t k, N;
            bool tr;
            sq_weight(n, &k, &N, &tr);
            pare_tensor *nw;
            if ((st = pare_tensor_clone(n->inputs[1]->init, &nw, err)))
                break;
            float *w = nw->data;
            for (int64_t c = 0; c < K; c++)
                for (int64_t col = 0; col < N; col++) {
                    size_t at = (size_t)(tr ? col * K + c : c * N + col);
                    w[at] = (float)(w[at] * s[c]);
                }
            char hint[300];
            snprintf(hint, sizeof hint, "%s_smooth", n->inputs[1]->name);
            pare_value *wv;
            if (!(st = pare_qx_add_init(g, nw, hint, &wv, err)))
                st = pare_node_set_input(n, 1, wv, err);
            if (n->id < p->nn)
                p->smoothed[n->id] = true;
        }
        /* activations: x / s, folded into a LayerNormalization that only
         * these nodes read, else a Mul */
        pare_value *x = q->x;
        pare_node *ln = x->producer;
        bool fold = ln && pare_node_is(ln, "", "LayerNormalization") && ln->n_outputs >= 1 &&
                    ln->outputs[0] == x && !x->is_output && x->n_uses == q->n &&
                    ln->n_inputs >= 2 && const_vec(ln->inputs[1], K) &&
                    (ln->n_inputs < 3 || !ln->inputs[2] || const_vec(ln->inputs[2], K)) &&
                    (pare_node_attr_int(ln, "axis", -1) == -1 ||
                     (x->shape.rank > 0 && pare_node_attr_int(ln, "axis", -1) == x->shape.rank - 1));
        for (size_t i = 0; fold && i < ln->n_outputs; i++)
            if (i && ln->outputs[i] && (ln->outputs[i]->n_uses || ln->outputs[i]->is_output))
                fold = false;
        for (size_t i = 0; fold && i < x->n_uses; i++)
            if (x->uses[i].input != 0)
                fold = false;
        /* or into the weight columns (and bias) of a MatMul/Gemm making x */
        int64_t pk, pn;
        bool ptr = false;
        bool pfold = !fold && ln && (pare_node_is(ln, "", "MatMul") || pare_node_is(ln, "", "Gemm")) &&
                     ln->n_outputs == 1 && !x->is_output && x->n_uses == q->n &&
                     ln->n_inputs >= 2 && sq_weight(ln, &pk, &pn, &ptr) && pn == K &&
                     (!pare_node_is(ln, "", "Gemm") || ln->n_inputs < 3 || !ln->inputs[2] ||
                      const_vec(ln->inputs[2], K));
        for (size_t i = 0; pfold && i < x->n_uses; i++)
            if (x->uses[i].input != 0)
                pfold = false;
        char hint[300];
        if (!st && pfold) {
            for (size_t in = 1; in < 3 && in < ln->n_inputs && !st; in++) {
                if (!ln->inputs[in])
                    continue;
                pare_tensor *t;
                if ((st = pare_tensor_clone(ln->inputs[in]->init, &t, err)))
                    break;
                float *d = t->data;
                if (in == 2)
                    for (int64_t c = 0; c < K; c++)
                        d[c] = (float)(d[c] / s[c]);
                else /* column c of the product: B[:, c], or B[c, :] with transB */
                    for (int64_t r0 = 0; r0 < pk; r0++)
                        for (int64_t c = 0; c < K; c++) {
                            size_t at = (size_t)(ptr ? c * pk + r0 : r0 * K + c);
                            d[at] = (float)(d[at] / s[c]);
                        }
                snprintf(hint, sizeof hint, "%s_smooth", ln->inputs[in]->name);
                pare_value *nv;
                if (!(st = pare_qx_add_init(g, t, hint, &nv, err)))
                    st = pare_node_set_input(ln, in, nv, err);
            }
        } else if (!st && fold) {
            for (size_t in = 1; in < 3 && in < ln->n_inputs && !st; in++) {
                if (!ln->inputs[in])
                    continue;
                pare_tensor *t;
                if ((st = pare_tensor_clone(ln->inputs[in]->init, &t, err)))
                    break;
                float *d = t->data;
                for (int64_t c = 0; c < K; c++)
                    d[c] = (float)(d[c] / s[c]);
                snprintf(hint, sizeof hint, "%s_smooth", ln->inputs[in]->name);
                pare_value *nv;
                if (!(st = pare_qx_add_init(g, t, hint, &nv, err)))
                    st = pare_node_set_input(ln, in, nv, err);
            }
        } else if (!st) {
            for (int64_t c = 0; c < K; c++)
                s[c] = 1.0 / s[c];
            pare_tensor *t;
            pare_value *iv, *xv;
            pare_node *mul;
            snprintf(hint, sizeof hint, "%s_smooth_scale", x->name);
            if (!(st = pare_qx_tensor(PARE_DT_FLOAT, s, (size_t)K, &t, err)) &&
                !(st = pare_qx_add_init(g, t, hint, &iv, err))) {
                snprintf(hint, sizeof hint, "%s_smoothed", x->name);
                if (!(st = pare_qx_new_value(g, hint, PARE_DT_FLOAT, &xv, err))) {
                    pare_value *ins[2] = {x, iv};
                    snprintf(hint, sizeof hint, "%s_SmoothQuant", x->name);
                    st = pare_qx_add_node(g, hint, "Mul", ins, 2, &xv, 1, &mul, err);
                    if (!st && x->shape.rank >= 0)
                        st = pare_value_set_type(xv, PARE_DT_FLOAT, &x->shape, err);
                    for (size_t i = 0; i < q->n && !st; i++)
                        st = pare_node_set_input(q->nodes[i], 0, xv, err);
                }
            }
        }
        free(s);
    }
    for (size_t j = 0; j < ng; j++)
        pare_qc_stats_release(&stats[j]);
    free(stats);
    if (!st)
        st = pare_graph_toposort(g, err);
    (void)r;
out:
    for (size_t j = 0; j < ng; j++)
        free(gr[j].nodes);
    free(gr);
    return st;
}

/* ---- step 4: the plan -------------------------------------------------- */

static void set_float(splan *p, const pare_node *n, const char *why)
{
    if (n->id < p->nn) {
        p->state[n->id] = S_FLOAT;
        p->why[n->id] = why;
    }
}

static void need(splan *p, const pare_value *v)
{
    if (val_ok(p, v))
        p->need[v->id] = true;
}

static bool act_fusable(const splan *p, const pare_node *u)
{
    if (u->domain[0] || u->n_outputs != 1 || !u->outputs[0] ||
        pare_qx_excluded(&p->o->filter, u))
        return false;
    if (!strcmp(u->op_type, "Relu") || !strcmp(u->op_type, "LeakyRelu"))
        return true;
    if (!strcmp(u->op_type, "Clip")) {
        for (size_t i = 1; i < u->n_inputs; i++)
            if (u->inputs[i] && !pare_qx_is_const(u->inputs[i]))
                return false;
        return true;
    }
    return false;
}

/* walks n's output through activations that only it reads; marks them fused */
static pare_value *fuse_chain(splan *p, pare_node *n)
{
    pare_value *end = n->outputs[0];
    while (end && !end->is_output && end->n_uses == 1 && end->uses[0].input == 0) {
        pare_node *u = end->uses[0].node;
        if (!act_fusable(p, u) || u->id >= p->nn)
            break;
        p->state[u->id] = S_FUSED;
        p->with[u->id] = n;
        end = u->outputs[0];
    }
    if (n->id < p->nn)
        p->chain_end[n->id] = end;
    return end;
}

static void unfuse_chain(splan *p, pare_node *n)
{
    pare_value *v = n->outputs[0];
    while (v && v != p->chain_end[n->id] && v->n_uses == 1) {
        pare_node *u = v->uses[0].node;
        if (u->id < p->nn && p->state[u->id] == S_FUSED && p->with[u->id] == n)
            set_float(p, u, "op not quantizable");
        v = u->outputs[0];
    }
}

static void plan_node(splan *p, pare_node *n)
{
    const pare_static_opts *o = p->o;
    if (n->id >= p->nn || p->state[n->id] == S_FUSED)
        return;
    const char *why = pare_qx_filter_why(&o->filter, n, static_ops);
    if (why) {
        set_float(p, n, why);
        return;
    }
    int k = kind_of(n);
    pare_value *x = n->n_inputs ? n->inputs[0] : NULL;
    if (!n->n_outputs || !n->outputs[0]) {
        set_float(p, n, "no output");
        return;
    }
    switch (k) {
    case K_CONV:
    case K_CONVT:
        if (n->n_inputs < 2 || !is_float_act(x)) {
            set_float(p, n, "input is not a float32 activation");
            return;
        }
        if (!is_const_float(n->inputs[1], 3)) {
            set_float(p, n, "weight is not a constant float32 initializer");
            return;
        }
        need(p, x);
        need(p, fuse_chain(p, n));
        break;
    case K_GEMM:
    case K_MATMUL:
        if (n->n_inputs < 2 || !is_float_act(x)) {
            set_float(p, n, "first input is not a float32 activation");
            return;
        }
        if (!is_const_float(n->inputs[1], 2) && !is_float_act(n->inputs[1])) {
            set_float(p, n, "second input is not float32");
            return;
        }
        need(p, x);
        if (!pare_qx_is_const(n->inputs[1]))
            need(p, n->inputs[1]);
        fuse_chain(p, n); /* kept only when something quantizes the end */
        break;
    case K_BINARY:
        if (n->n_inputs != 2 || !is_float_act(x) || !is_float_act(n->inputs[1])) {
            set_float(p, n, "a constant or non-float32 input (only Add/Mul of two "
                            "activations fuse)");
            return;
        }
        need(p, x);
        need(p, n->inputs[1]);
        {
            pare_value *end = fuse_chain(p, n);
            if (!(end->is_output && end->n_uses == 0))
                need(p, end);
        }
        break;
    case K_CONCAT:
        for (size_t i = 0; i < n->n_inputs; i++)
            if (!is_float_act(n->inputs[i])) {
                set_float(p, n, "a constant or non-float32 input");
                return;
            }
        for (size_t i = 0; i < n->n_inputs; i++) {
            need(p, n->inputs[i]);
            if (val_ok(p, n->inputs[i]) && val_ok(p, n->outputs[0]))
                uf_union(p, (int64_t)n->inputs[i]->id, (int64_t)n->outputs[0]->id);
        }
        need(p, n->outputs[0]);
        break;
    case K_PASS: {
        bool extra = false;
        for (size_t i = 1; i < n->n_outputs; i++)
            extra |= n->outputs[i] != NULL;
        if (extra || !val_ok(p, x) || !val_ok(p, n->outputs[0]) || x->dtype != PARE_DT_FLOAT) {
            set_float(p, n, "op not quantizable here");
            return;
        }
        if (!p->need[x->id]) {
            set_float(p, n, "input not quantized (no scale to share)");
            return;
        }
        need(p, n->outputs[0]);
        uf_union(p, (int64_t)x->id, (int64_t)n->outputs[0]->id);
        break;
    }
    default:
        set_float(p, n, "op not quantizable");
        return;
    }
    p->state[n->id] = S_QUANT;
}

static pare_status make_plan(splan *p)
{
    pare_graph *g = p->g;
    for (size_t i = 0; i < g->n_nodes; i++)
        plan_node(p, g->nodes[i]);
    /* a Gemm/MatMul keeps its fused activations only when the end is quantized */
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        int k = kind_of(n);
        if ((k == K_GEMM || k == K_MATMUL) && n->id < p->nn && p->state[n->id] == S_QUANT) {
            pare_value *end = p->chain_end[n->id];
            if (end && end != n->outputs[0] && !(val_ok(p, end) && p->need[end->id]))
                unfuse_chain(p, n);
        }
    }
    return PARE_OK;
}

/* ---- step 5: ranges to parameters ---------------------------------------- */

static void params_of(const splan *p, double lo, double hi, qparams *q)
{
    int at = p->o->activation_type;
    q->lo = lo;
    q->hi = hi;
    q->zp = 0;
    if (at == PARE_DT_UINT8) {
        lo = lo < 0 ? lo : 0;
        hi = hi > 0 ? hi : 0;
        float s = (float)((hi - lo) / 255.0);
        if (!(s > 0) || !isfinite(s)) {
            q->scale = 1.0;
            return;
        }
        q->scale = s;
        double z = nearbyint(-lo / (double)s);
        q->zp = (int64_t)(z < 0 ? 0 : z > 255 ? 255 : z);
        return;
    }
    double amax = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    float s = (float)(amax / (at == PARE_DT_FLOAT8E4M3FN ? 448.0 : 127.0));
    q->scale = s > 0 && isfinite(s) ? s : 1.0;
}

/* ---- step 6: the rewrite --------------------------------------------------- */

typedef struct wcache {
    pare_value *w;       /* float weight */
    int axis;
    pare_value *dq;      /* its DequantizeLinear output */
    pare_tensor *scale;  /* borrowed from the scale initializer */
} wcache;

typedef struct rw {
    splan *p;
    wcache *wc;
    size_t nwc, capwc;
} rw;

static pare_status add_dq(pare_graph *g, pare_value *q, pare_value *scale, pare_value *zp,
                          int axis, const char *hint, int rank, const int64_t *dims,
                          pare_value **out, pare_error *err)
{
    char buf[300];
    snprintf(buf, sizeof buf, "%s_dequantized", hint);
    pare_status st = pare_qx_new_value(g, buf, PARE_DT_FLOAT, out, err);
    if (st)
        return st;
    if (dims && (st = pare_value_set_dims(*out, PARE_DT_FLOAT, rank, dims, err)))
        return st;
    pare_value *ins[3] = {q, scale, zp};
    pare_node *n;
    snprintf(buf, sizeof buf, "%s_DequantizeLinear", hint);
    if ((st = pare_qx_add_node(g, buf, "DequantizeLinear", ins, zp ? 3 : 2, out, 1, &n, err)))
        return st;
    if (axis >= 0)
        st = pare_node_set_attr_int(n, "axis", axis, err);
    return st;
}

static int weight_axis(const splan *p, const pare_node *n)
{
    if (!p->o->per_channel)
        return -1;
    const pare_tensor *w = n->inputs[1]->init;
    switch (kind_of(n)) {
    case K_CONV:
        return 0;
    case K_CONVT:
        return pare_node_attr_int(n, "group", 1) == 1 ? 1 : -1;
    case K_GEMM:
        return pare_node_attr_int(n, "transB", 0) ? 0 : 1;
    case K_MATMUL:
        return w->rank - 1;
    default:
        return -1;
    }
}

static pare_status quantize_weight(rw *c, pare_node *n, wcache **out, pare_error *err)
{
    splan *p = c->p;
    pare_value *w = n->inputs[1];
    int axis = weight_axis(p, n);
    for (size_t i = 0; i < c->nwc; i++)
        if (c->wc[i].w == w && c->wc[i].axis == axis) {
            *out = &c->wc[i];
            return pare_node_set_input(n, 1, c->wc[i].dq, err);
        }
    int wt = p->o->weight_type;
    pare_tensor *q, *s, *z;
    pare_status st = pare_qx_quantize_weight(w->init, axis, wt, &q, &s, &z, err);
    if (st)
        return pare_error_prefix(err, "initializer '%s'", w->name);
    char hint[300];
    pare_value *qv, *sv, *zv, *dq;
    snprintf(hint, sizeof hint, "%s_quantized", w->name);
    if ((st = pare_qx_add_init(p->g, q, hint, &qv, err))) {
        pare_tensor_free(s);
        pare_tensor_free(z);
        return st;
    }
    snprintf(hint, sizeof hint, "%s_scale", w->name);
    if ((st = pare_qx_add_init(p->g, s, hint, &sv, err))) {
        pare_tensor_free(z);
        return st;
    }
    snprintf(hint, sizeof hint, "%s_zero_point", w->name);
    zv = NULL;
    if (p->fp8) /* float8: no zero point (see step 1) */
        pare_tensor_free(z);
    else if ((st = pare_qx_add_init(p->g, z, hint, &zv, err)))
        return st;
    if ((st = add_dq(p->g, qv, sv, zv, axis, w->name, w->init->rank, w->init->dims, &dq, err)))
        return st;
    if (c->nwc == c->capwc) {
        size_t cap = c->capwc ? c->capwc * 2 : 16;
        wcache *nw = realloc(c->wc, cap * sizeof *nw);
        if (!nw)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        c->wc = nw;
        c->capwc = cap;
    }
    c->wc[c->nwc] = (wcache){w, axis, dq, s};
    *out = &c->wc[c->nwc++];
    return pare_node_set_input(n, 1, dq, err);
}

/* int32 bias = round(b / (s_x * s_w)); false (kept float) when a value
 * would not fit */
static pare_status quantize_bias(rw *c, pare_node *n, size_t bi, const wcache *wc, double sx,
                                 bool *done, pare_error *err)
{
    *done = false;
    pare_value *b = n->inputs[bi];
    const pare_tensor *bt = b->init;
    int64_t C = bt->dims[0];
    size_t ns = (size_t)pare_tensor_numel(wc->scale);
    if (C <= 0 || (ns != 1 && ns != (size_t)C))
        return PARE_OK;
    double *scale = malloc((size_t)C * sizeof *scale);
    int64_t dim = C;
    pare_tensor *q = NULL;
    if (!scale)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = pare_tensor_new(NULL, PARE_DT_INT32, 1, &dim, &q, err);
    if (st) {
        free(scale);
        return st;
    }
    const float *ws = wc->scale->data, *bd = bt->data;
    int32_t *qd = q->data;
    bool fits = true;
    for (int64_t i = 0; i < C; i++) {
        float s = (float)(sx * ws[ns == 1 ? 0 : i]);
        scale[i] = s > 0 ? s : 1.0;
        double v = isfinite(bd[i]) ? nearbyint(bd[i] / scale[i]) : 0;
        if (fabs(v) > 2147483647.0)
            fits = false;
        else
            qd[i] = (int32_t)v;
    }
    if (!fits) {
        free(scale);
        pare_tensor_free(q);
        return PARE_OK;
    }
    char hint[300];
    pare_value *qv, *sv, *zv, *dq;
    pare_tensor *s = NULL, *z = NULL;
    snprintf(hint, sizeof hint, "%s_quantized", b->name);
    st = pare_qx_add_init(c->p->g, q, hint, &qv, err);
    if (!st)
        st = pare_qx_tensor(PARE_DT_FLOAT, scale, ns == 1 ? 0 : (size_t)C, &s, err);
    free(scale);
    if (!st) {
        snprintf(hint, sizeof hint, "%s_scale", b->name);
        st = pare_qx_add_init(c->p->g, s, hint, &sv, err);
    }
    if (!st) { /* zero points shaped like the scales */
        double *zeros = calloc(ns == 1 ? 1 : (size_t)C, sizeof *zeros);
        st = zeros ? pare_qx_tensor(PARE_DT_INT32, zeros, ns == 1 ? 0 : (size_t)C, &z, err)
                   : pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        free(zeros);
    }
    if (!st) {
        snprintf(hint, sizeof hint, "%s_zero_point", b->name);
        st = pare_qx_add_init(c->p->g, z, hint, &zv, err);
    }
    if (!st)
        st = add_dq(c->p->g, qv, sv, zv, ns == 1 ? -1 : 0, b->name, 1, &dim, &dq, err);
    if (!st)
        st = pare_node_set_input(n, bi, dq, err);
    *done = !st;
    return st;
}

static const qparams *group_params(const splan *p, const pare_value *v)
{
    if (!val_ok(p, v))
        return NULL;
    int64_t r = uf_find((splan *)p, (int64_t)v->id);
    return p->qp[r].set ? &p->qp[r] : NULL;
}

static pare_status insert_qdq(splan *p, pare_value *v, const qparams *q, pare_error *err)
{
    pare_graph *g = p->g;
    int qt = p->o->activation_type;
    char hint[300];
    pare_tensor *st_, *zt;
    pare_value *sv, *zv, *qv, *dq;
    double sc = q->scale, zp = (double)q->zp;
    pare_status st = pare_qx_tensor(PARE_DT_FLOAT, &sc, 0, &st_, err);
    if (st)
        return st;
    snprintf(hint, sizeof hint, "%s_scale", v->name);
    if ((st = pare_qx_add_init(g, st_, hint, &sv, err)))
        return st;
    zv = NULL; /* float8: no zero point, output_dtype instead (see step 1) */
    if (!p->fp8) {
        if ((st = pare_qx_tensor(qt, &zp, 0, &zt, err)))
            return st;
        snprintf(hint, sizeof hint, "%s_zero_point", v->name);
        if ((st = pare_qx_add_init(g, zt, hint, &zv, err)))
            return st;
    }
    snprintf(hint, sizeof hint, "%s_quantized", v->name);
    if ((st = pare_qx_new_value(g, hint, qt, &qv, err)))
        return st;
    if (v->shape.rank >= 0 && (st = pare_value_set_type(qv, qt, &v->shape, err)))
        return st;
    pare_value *ins[3] = {v, sv, zv};
    pare_node *qn;
    snprintf(hint, sizeof hint, "%s_QuantizeLinear", v->name);
    if ((st = pare_qx_add_node(g, hint, "QuantizeLinear", ins, zv ? 3 : 2, &qv, 1, &qn, err)) ||
        (!zv && (st = pare_node_set_attr_int(qn, "output_dtype", qt, err))))
        return st;
    /* the readers of v, before the DequantizeLinear exists */
    size_t nu = v->n_uses;
    pare_use *uses = malloc((nu ? nu : 1) * sizeof *uses);
    if (!uses)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    memcpy(uses, v->uses, nu * sizeof *uses);
    st = add_dq(g, qv, sv, zv, -1, v->name, 0, NULL, &dq, err);
    if (!st && v->shape.rank >= 0)
        st = pare_value_set_type(dq, PARE_DT_FLOAT, &v->shape, err);
    for (size_t i = 0; i < nu && !st; i++)
        if (uses[i].node != qn)
            st = pare_node_set_input(uses[i].node, uses[i].input, dq, err);
    free(uses);
    return st;
}

static const char *type_word(int dt)
{
    return dt == PARE_DT_UINT8 ? "uint8" : dt == PARE_DT_INT8 ? "int8" : "float8e4m3fn";
}

static pare_status rewrite(splan *p, pare_quant_report *r, pare_error *err)
{
    pare_graph *g = p->g;
    const pare_static_opts *o = p->o;
    rw c = {.p = p};
    pare_status st = PARE_OK;
    size_t n0 = g->n_nodes;
    pare_node **nodes = malloc((n0 ? n0 : 1) * sizeof *nodes);
    char **hows = calloc(n0 ? n0 : 1, sizeof *hows);
    if (!nodes || !hows) {
        free(nodes);
        free(hows);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    memcpy(nodes, g->nodes, n0 * sizeof *nodes);
    /* weights and biases */
    for (size_t i = 0; i < n0 && !st; i++) {
        pare_node *n = nodes[i];
        if (n->id >= p->nn || p->state[n->id] != S_QUANT)
            continue;
        int k = kind_of(n);
        char how[200];
        /* an input without a calibrated range (no finite value seen) gets
         * no QuantizeLinear / DequantizeLinear pair: it stays float */
        bool in_q = true;
        for (size_t j = 0; j < n->n_inputs && j < 2; j++)
            if (n->inputs[j] && !pare_qx_is_const(n->inputs[j]) && !group_params(p, n->inputs[j]))
                in_q = false;
        const char *act = in_q ? type_word(o->activation_type)
                               : "float (no finite range seen in calibration)";
        if (k == K_CONV || k == K_CONVT || k == K_GEMM || k == K_MATMUL) {
            if (pare_qx_is_const(n->inputs[1])) {
                wcache *wc = NULL;
                int axis = weight_axis(p, n);
                if ((st = quantize_weight(&c, n, &wc, err)))
                    break;
                const char *bias = "";
                const size_t bi = 2;
                pare_value *bv = k != K_MATMUL && n->n_inputs > bi ? n->inputs[bi] : NULL;
                bool bias_ok = bv && o->quantize_bias && !p->fp8 && is_const_float(bv, 1) &&
                               bv->init->rank == 1 &&
                               (!wc->scale->rank || wc->scale->dims[0] == bv->init->dims[0]);
                if (k == K_GEMM && (pare_node_attr_float(n, "alpha", 1) != 1.0f ||
                                    pare_node_attr_float(n, "beta", 1) != 1.0f))
                    bias_ok = false;
                if (bias_ok) {
                    const qparams *qx = group_params(p, n->inputs[0]);
                    bool done = false;
                    if (qx && (st = quantize_bias(&c, n, bi, wc, qx->scale, &done, err)))
                        break;
                    bias = done ? ", int32 bias" : ", float bias (int32 would overflow)";
                } else if (bv)
                    bias = ", float bias";
                snprintf(how, sizeof how, "%s activations, %s %s weights%s%s (QDQ)", act,
                         type_word(o->weight_type), axis >= 0 ? "per-channel" : "per-tensor",
                         bias, p->smoothed[n->id] ? ", SmoothQuant" : "");
            } else
                snprintf(how, sizeof how, "%s activations on both inputs (QDQ)", act);
        } else if (k == K_PASS)
            snprintf(how, sizeof how, "%s, shares its input's scale (QDQ)", act);
        else if (k == K_CONCAT)
            snprintf(how, sizeof how, "%s, inputs and output share one scale (QDQ)", act);
        else
            snprintf(how, sizeof how, "%s activations (QDQ)", act);
        if (!(hows[i] = strdup(how)))
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    /* activations, by value id */
    for (size_t v = 0; v < p->nv && !st; v++) {
        if (!p->need[v] || !g->values[v])
            continue;
        const qparams *q = group_params(p, g->values[v]);
        if (q)
            st = insert_qdq(p, g->values[v], q, err);
    }
    /* the report, in the original node order */
    for (size_t i = 0; i < n0 && !st; i++) {
        pare_node *n = nodes[i];
        if (n->id >= p->nn)
            continue;
        char how[300], lbl[256];
        switch (p->state[n->id]) {
        case S_QUANT:
            st = pare_quant_report_node(r, PARE_QE_QUANTIZED, n, hows[i], err);
            break;
        case S_FUSED:
            snprintf(how, sizeof how, "fused with %s (quantized after it)",
                     pare_node_label(p->with[n->id], lbl, sizeof lbl));
            st = pare_quant_report_node(r, PARE_QE_QUANTIZED, n, how, err);
            break;
        default:
            st = pare_quant_report_node(r, PARE_QE_FLOAT, n,
                                        p->why[n->id] ? p->why[n->id] : "op not quantizable", err);
        }
    }
    for (size_t v = 0; v < p->nv && !st; v++) {
        if (!p->need[v] || !g->values[v])
            continue;
        const qparams *q = group_params(p, g->values[v]);
        if (q)
            st = pare_quant_report_range(r, g->values[v]->name, q->lo, q->hi, q->scale, q->zp,
                                         err);
    }
    for (size_t i = 0; i < n0; i++)
        free(hows[i]);
    free(hows);
    free(nodes);
    free(c.wc);
    return st;
}

/* ---- the entry point ---------------------------------------------------- */

static pare_status check_opts(const pare_static_opts *o, bool *fp8, pare_error *err)
{
    int at = o->activation_type, wt = o->weight_type;
    *fp8 = at == PARE_DT_FLOAT8E4M3FN || wt == PARE_DT_FLOAT8E4M3FN;
    if (*fp8 && (at != PARE_DT_FLOAT8E4M3FN || wt != PARE_DT_FLOAT8E4M3FN))
        return pare_error_set(err, PARE_ERR_ARG, "float8 needs both activation and weight type "
                              "float8e4m3fn");
    if (!*fp8 && at != PARE_DT_UINT8 && at != PARE_DT_INT8)
        return pare_error_set(err, PARE_ERR_ARG, "activation type %s: expected uint8, int8 or "
                              "float8e4m3fn", pare_dtype_name(at));
    if (!*fp8 && wt != PARE_DT_INT8)
        return pare_error_set(err, PARE_ERR_ARG, "weight type %s: expected int8 (or "
                              "float8e4m3fn with float8 activations)", pare_dtype_name(wt));
    if (o->method < PARE_CALIB_MINMAX || o->method > PARE_CALIB_MSE)
        return pare_error_set(err, PARE_ERR_ARG, "unknown calibration method %d", (int)o->method);
    if (o->method == PARE_CALIB_PERCENTILE && !(o->percentile > 0 && o->percentile <= 100))
        return pare_error_set(err, PARE_ERR_ARG, "percentile %g: expected a value in (0, 100]",
                              o->percentile);
    if (o->moving_average &&
        !(o->moving_average_constant > 0 && o->moving_average_constant <= 1))
        return pare_error_set(err, PARE_ERR_ARG, "moving average constant %g: expected a value "
                              "in (0, 1]", o->moving_average_constant);
    if (!(o->smooth_quant_alpha >= 0 && o->smooth_quant_alpha <= 1))
        return pare_error_set(err, PARE_ERR_ARG, "SmoothQuant alpha %g: expected a value in "
                              "[0, 1]", o->smooth_quant_alpha);
    if (!o->calib.path)
        return pare_error_set(err, PARE_ERR_ARG, "static quantization needs calibration data");
    if (o->calib.samples < 0 || o->calib.batch < 0)
        return pare_error_set(err, PARE_ERR_ARG, "calibration samples and batch must be >= 0");
    return PARE_OK;
}

pare_status pare_quantize_static(pare_model *m, const pare_static_opts *o, pare_quant_report *r,
                                 pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    double t0 = pare_now();
    bool fp8;
    pare_status st = check_opts(o, &fp8, err);
    if (st)
        return st;
    pare_graph *g = pare_model_graph(m);
    if ((st = pare_qx_check_filter(g, &o->filter, static_ops, fp8 ? "fp8" : "static", err)))
        return st;
    /* values computed from constants alone (Constant -> Unsqueeze, as
     * version-converted models write per-channel scales) become
     * initializers first, so that a Mul or Add by one is seen as an op
     * with a constant operand, not as two activations to quantize; small
     * ones only, so that weights made at run time stay as they are */
    size_t folded = 0;
    if ((st = pare_opt_fold_constants(m, (int64_t)1 << 20, &folded, err)))
        return st;
    if ((st = pare_infer_shapes(m, NULL, NULL, err)) ||
        (st = pare_qx_raise_opset(m, fp8 ? 21 : 13,
                                  fp8 ? "float8 QDQ without zero points"
                                      : "per-axis DequantizeLinear", err)) ||
        (st = pare_graph_toposort(g, err)))
        return st;
    r->weight_bytes_before = pare_model_weight_bytes(m);
    if ((st = fold_bn(g, o, r, err)))
        return st;
    splan p = {.o = o, .fp8 = fp8};
    if ((st = alloc_plan(&p, g, err)))
        goto out;
    if (o->smooth_quant_alpha > 0) {
        if ((st = smooth_quant(m, &p, r, err)))
            goto out;
        if ((st = pare_infer_shapes(m, NULL, NULL, err)))
            goto out;
        /* new nodes and values: plan again over the larger graph */
        bool *sm = p.smoothed;
        size_t nn_old = p.nn;
        p.smoothed = NULL;
        release_plan(&p);
        splan q = {.o = o, .fp8 = fp8};
        p = q;
        if ((st = alloc_plan(&p, g, err))) {
            free(sm);
            goto out;
        }
        memcpy(p.smoothed, sm, nn_old * sizeof *sm);
        free(sm);
    }
    if ((st = make_plan(&p)))
        goto out;
    /* calibrate what the plan needs */
    size_t nq = 0;
    for (size_t v = 0; v < p.nv; v++)
        nq += p.need[v];
    if (nq) {
        pare_value **vals = malloc(nq * sizeof *vals);
        pare_qc_stats *stats = calloc(nq, sizeof *stats);
        if (!vals || !stats) {
            free(vals);
            free(stats);
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
        size_t k = 0;
        for (size_t v = 0; v < p.nv; v++)
            if (p.need[v])
                vals[k++] = g->values[v];
        unsigned flags = (o->method != PARE_CALIB_MINMAX ? PARE_QC_HIST : 0) |
                         (o->moving_average ? PARE_QC_MOVING : 0);
        uint64_t samples = 0;
        st = pare_qc_calibrate(m, vals, nq, &o->calib, flags, o->moving_average_constant, stats,
                               &samples, err);
        r->calib_samples += samples;
        bool symmetric = o->activation_type != PARE_DT_UINT8;
        for (size_t i = 0; i < nq && !st; i++) {
            pare_value *v = vals[i];
            if (stats[i].not_float || !stats[i].any) {
                /* never seen as float32 data: no pair for it */
                p.need[v->id] = false;
                continue;
            }
            int levels = (!symmetric && stats[i].min >= 0) ? 255 : 127;
            double lo, hi;
            pare_qc_range(&stats[i], o->method, o->percentile, symmetric, o->moving_average,
                          levels, &lo, &hi);
            qparams *root = &p.qp[uf_find(&p, (int64_t)v->id)];
            if (!root->set) {
                root->lo = lo;
                root->hi = hi;
                root->set = true;
            } else {
                root->lo = lo < root->lo ? lo : root->lo;
                root->hi = hi > root->hi ? hi : root->hi;
            }
        }
        for (size_t v = 0; v < p.nv; v++)
            if (p.qp[v].set)
                params_of(&p, p.qp[v].lo, p.qp[v].hi, &p.qp[v]);
        for (size_t i = 0; i < nq; i++)
            pare_qc_stats_release(&stats[i]);
        free(stats);
        free(vals);
        if (st)
            goto out;
    }
    if ((st = rewrite(&p, r, err)))
        goto out;
    size_t removed;
    if ((st = pare_graph_toposort(g, err)) || (st = pare_graph_remove_dead(g, &removed, err)))
        goto out;
    r->weight_bytes_after = pare_model_weight_bytes(m);
out:
    release_plan(&p);
    r->seconds += pare_now() - t0;
    return st;
}
