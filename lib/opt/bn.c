/* BatchNormalization folded into the Conv, ConvTranspose or Gemm before it.
 *
 * In inference BN is y = a*x + b per channel, a = scale/sqrt(var+eps),
 * b = B - a*mean. For Conv (weight [M, C/g, k...]) output channel m is
 * scaled by a[m]; ConvTranspose's weight is [C_in, M/g, k...], so its output
 * channel is (c / (C_in/g)) * (M/g) + j; Gemm's output column n scales the
 * column of B (row of B when transB). The bias becomes a*bias + b (for Gemm
 * a*C + b/beta, C broadcast to the columns). Arithmetic is in double. */
#include <math.h>
#include <stdio.h>
#include "opt/opt_int.h"

typedef struct bn_coef {
    double *a, *b;
    int64_t c;
} bn_coef;

static bool read_vec(pare_value *v, int64_t c, double *out)
{
    pare_error e;
    pare_tensor *t = opt_is_const(v) ? pare_value_tensor(v, &e) : NULL;
    if (!t || !pare_dtype_is_float(t->dtype) || t->rank != 1 || t->dims[0] != c)
        return false;
    for (int64_t i = 0; i < c; i++)
        out[i] = pare_dtype_get_f64(t->dtype, t->data, (size_t)i);
    return true;
}

/* a and b of n, or false when n is not a foldable inference BN */
static bool bn_coefs(pare_node *n, bn_coef *k)
{
    memset(k, 0, sizeof *k);
    if (n->n_inputs < 5)
        return false;
    for (size_t i = 0; i < 5; i++)
        if (!n->inputs[i])
            return false;
    if (pare_node_attr_int(n, "training_mode", 0) != 0 || pare_node_attr_int(n, "spatial", 1) != 1)
        return false;
    pare_error e;
    pare_tensor *s = opt_is_const(n->inputs[1]) ? pare_value_tensor(n->inputs[1], &e) : NULL;
    if (!s || s->rank != 1 || s->dims[0] <= 0 || s->dims[0] > (int64_t)(SIZE_MAX / 32))
        return false;
    int64_t c = s->dims[0];
    double *buf = malloc((size_t)c * 4 * sizeof *buf);
    if (!buf)
        return false;
    double *sc = buf, *bb = buf + c, *mean = buf + 2 * c, *var = buf + 3 * c;
    if (!read_vec(n->inputs[1], c, sc) || !read_vec(n->inputs[2], c, bb) ||
        !read_vec(n->inputs[3], c, mean) || !read_vec(n->inputs[4], c, var)) {
        free(buf);
        return false;
    }
    double eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    for (int64_t i = 0; i < c; i++) {
        double a = sc[i] / sqrt(var[i] + eps);
        if (!isfinite(a)) {
            free(buf);
            return false;
        }
        double b = bb[i] - a * mean[i];
        sc[i] = a;
        bb[i] = b;
    }
    k->a = sc;
    k->b = bb;
    k->c = c;
    return true;
}

/* A tensor for input `in` of p: replaced in place when p is its only reader,
 * else a new initializer. Takes t. */
static pare_status put_param(pare_graph *g, pare_node *p, size_t in, pare_tensor *t,
                             const char *hint, pare_error *err)
{
    pare_value *old = in < p->n_inputs ? p->inputs[in] : NULL;
    if (old && old->n_uses == 1 && old->graph == g && !old->is_output && opt_is_const(old))
        return opt_set_init(old, t, err);
    pare_value *nv;
    pare_status st = pare_tensor_set_name(t, old ? old->name : hint, err);
    if (st) {
        pare_tensor_free(t);
        return st;
    }
    if ((st = opt_add_init(g, t, &nv, err)))
        return st;
    while (p->n_inputs <= in)
        if ((st = pare_node_add_input(p, NULL, err)))
            return st;
    return pare_node_set_input(p, in, nv, err);
}

static pare_status fold_into(pare_graph *g, pare_node *p, const bn_coef *k, bool *done,
                             pare_error *err)
{
    *done = false;
    bool conv = pare_node_is(p, "", "Conv"), convt = pare_node_is(p, "", "ConvTranspose");
    bool gemm = pare_node_is(p, "", "Gemm");
    if ((!conv && !convt && !gemm) || p->n_inputs < 2 || !p->inputs[0] || !p->inputs[1])
        return PARE_OK;
    pare_error e;
    pare_tensor *w = opt_is_const(p->inputs[1]) ? pare_value_tensor(p->inputs[1], &e) : NULL;
    if (!w || !pare_dtype_is_float(w->dtype) || w->dtype == PARE_DT_STRING)
        return PARE_OK;
    pare_value *bv = p->n_inputs > 2 ? p->inputs[2] : NULL;
    pare_tensor *bias = NULL;
    if (bv) {
        bias = opt_is_const(bv) ? pare_value_tensor(bv, &e) : NULL;
        if (!bias || bias->dtype != w->dtype)
            return PARE_OK;
    }
    int64_t c = k->c;
    uint64_t wn = pare_tensor_numel(w);
    pare_tensor *nw = NULL, *nb = NULL;
    pare_status st;
    if (conv || convt) {
        if (w->rank < 3)
            return PARE_OK;
        int64_t group = pare_node_attr_int(p, "group", 1);
        int64_t lead = w->dims[0] * w->dims[1];
        uint64_t slab = lead > 0 ? wn / (uint64_t)lead : 0;
        if (conv && w->dims[0] != c)
            return PARE_OK;
        if (convt && (group <= 0 || w->dims[0] % group || w->dims[1] * group != c))
            return PARE_OK;
        if (bias && (bias->rank != 1 || bias->dims[0] != c))
            return PARE_OK;
        if ((st = pare_tensor_clone(w, &nw, err)))
            return st;
        int64_t cin_g = convt ? w->dims[0] / group : 0;
        for (int64_t i = 0; i < w->dims[0]; i++)
            for (int64_t j = 0; j < w->dims[1]; j++) {
                int64_t o = conv ? i : (i / cin_g) * w->dims[1] + j;
                double a = k->a[o];
                size_t base = (size_t)((uint64_t)(i * w->dims[1] + j) * slab);
                for (uint64_t s = 0; s < slab; s++)
                    pare_dtype_set_f64(nw->dtype, nw->data, base + s,
                                       a * pare_dtype_get_f64(w->dtype, w->data, base + s));
            }
        int64_t bd[1] = {c};
        if ((st = pare_tensor_new(NULL, w->dtype, 1, bd, &nb, err))) {
            pare_tensor_free(nw);
            return st;
        }
        for (int64_t o = 0; o < c; o++) {
            double b0 = bias ? pare_dtype_get_f64(bias->dtype, bias->data, (size_t)o) : 0;
            pare_dtype_set_f64(nb->dtype, nb->data, (size_t)o, k->a[o] * b0 + k->b[o]);
        }
    } else {
        if (w->rank != 2)
            return PARE_OK;
        bool tb = pare_node_attr_int(p, "transB", 0) != 0;
        int64_t rows = w->dims[0], cols = w->dims[1];
        if ((tb ? rows : cols) != c)
            return PARE_OK;
        double beta = pare_node_attr_float(p, "beta", 1.0f);
        if (beta == 0)
            bias = NULL; /* C is ignored: it becomes b with beta 1 */
        int64_t m_rows = 1;
        if (bias) {
            uint64_t bn = pare_tensor_numel(bias);
            if (bn == 1 && bias->rank <= 2)
                m_rows = 1;
            else if (bias->rank == 1 && bias->dims[0] == c)
                m_rows = 1;
            else if (bias->rank == 2 && bias->dims[1] == c)
                m_rows = bias->dims[0];
            else if (bias->rank == 2 && bias->dims[1] == 1)
                m_rows = bias->dims[0];
            else
                return PARE_OK;
        }
        if ((st = pare_tensor_clone(w, &nw, err)))
            return st;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < cols; q++) {
                size_t i = (size_t)(r * cols + q);
                double a = k->a[tb ? r : q];
                pare_dtype_set_f64(nw->dtype, nw->data, i,
                                   a * pare_dtype_get_f64(w->dtype, w->data, i));
            }
        int64_t bd[2] = {m_rows, c};
        bool two_d = bias && bias->rank == 2;
        if ((st = pare_tensor_new(NULL, w->dtype, two_d ? 2 : 1, two_d ? bd : bd + 1, &nb,
                                  err))) {
            pare_tensor_free(nw);
            return st;
        }
        for (int64_t r = 0; r < m_rows; r++)
            for (int64_t q = 0; q < c; q++) {
                double c0 = 0;
                if (bias) {
                    uint64_t bn = pare_tensor_numel(bias);
                    size_t bi = bn == 1                              ? 0
                                : bias->rank == 2 && bias->dims[1] == 1 ? (size_t)r
                                : bias->rank == 2                     ? (size_t)(r * c + q)
                                                                      : (size_t)q;
                    c0 = pare_dtype_get_f64(bias->dtype, bias->data, bi);
                }
                double v = bias ? k->a[q] * c0 + k->b[q] / beta : k->b[q];
                pare_dtype_set_f64(nb->dtype, nb->data, (size_t)(r * c + q), v);
            }
        if (!bias && (st = pare_node_set_attr_float(p, "beta", 1.0f, err))) {
            pare_tensor_free(nw);
            pare_tensor_free(nb);
            return st;
        }
    }
    char hint[512];
    snprintf(hint, sizeof hint, "%s_bias", p->inputs[1]->name);
    if ((st = put_param(g, p, 1, nw, hint, err))) {
        pare_tensor_free(nb);
        return st;
    }
    if ((st = put_param(g, p, 2, nb, hint, err)))
        return st;
    *done = true;
    return PARE_OK;
}

pare_status pare_opt_fold_batchnorm(pare_model *m, size_t *changed, pare_error *err)
{
    size_t count = 0;
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    for (size_t gi = 0; gi < gs.n && !st; gi++) {
        pare_graph *g = gs.g[gi];
        if (g->parent && opt_legacy(g))
            continue; /* a new initializer would have to become a body input */
        for (size_t i = 0; i < g->n_nodes && !st;) {
            pare_node *n = g->nodes[i];
            pare_value *x = n->n_inputs ? n->inputs[0] : NULL;
            pare_node *p = x ? x->producer : NULL;
            bool cand = pare_node_is(n, "", "BatchNormalization") && p && p->graph == g &&
                        p->n_outputs >= 1 && p->outputs[0] == x && x->n_uses == 1 &&
                        !x->is_output && !opt_pinned(&pins, x) && n->n_outputs >= 1 &&
                        n->outputs[0];
            for (size_t o = 1; cand && o < n->n_outputs; o++) {
                const pare_value *v = n->outputs[o];
                if (v && (v->n_uses || v->is_output || opt_pinned(&pins, v)))
                    cand = false;
            }
            bn_coef k;
            bool done = false;
            if (cand && opt_can_replace(&pins, n->outputs[0], x) && bn_coefs(n, &k)) {
                st = fold_into(g, p, &k, &done, err);
                free(k.a);
            }
            if (!st && done) {
                if ((st = opt_replace(n->outputs[0], x, err)) ||
                    (st = pare_graph_remove_node(g, n, err)))
                    break;
                count++;
                continue;
            }
            i++;
        }
        if (!st)
            st = opt_sweep_values(g, &pins, false, NULL, err);
    }
    opt_graphs_release(&gs);
    opt_pins_release(&pins);
    if (changed)
        *changed = count;
    return st;
}
