/* layers.c - which nodes of a model are prunable layers, their weights as
 * matrices, and putting pruned weights back. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/infer.h"
#include "prune_internal.h"

void prune_layers_release(prune_layers *ls)
{
    if (!ls)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->items[i].w);
        free(ls->items[i].note);
    }
    free(ls->items);
    ls->items = NULL;
    ls->n = 0;
}

static bool is_float_weight(pare_value *v)
{
    /* an initializer also listed as a graph input (older exporters list every
     * weight so) is a default the caller could override; it is pruned too */
    return v && (v->init || v->is_sparse_init) && v->dtype == PARE_DT_FLOAT;
}

/* per-sample element count of a value: the first dim may be unknown (the
 * batch), every other must be known; 0 when not */
static double per_sample(const pare_value *v)
{
    if (!v || v->shape.rank < 1)
        return 0;
    double n = 1;
    for (int d = 0; d < v->shape.rank; d++) {
        int64_t x = v->shape.dims[d].value;
        if (x < 0) {
            if (d == 0)
                continue;
            return 0;
        }
        if (d > 0 || v->shape.rank == 1)
            n *= (double)x;
    }
    return n;
}

/* Fills L from node n when n is a prunable layer; returns NULL or why not. */
static const char *describe(pare_node *n, prune_layer *L)
{
    memset(L, 0, sizeof *L);
    L->node = n;
    L->group = 1;
    L->ksize = 1;
    if (pare_node_is(n, "", "Conv") || pare_node_is(n, "", "ConvTranspose")) {
        bool tr = pare_node_is(n, "", "ConvTranspose");
        if (n->n_inputs < 2 || !n->inputs[1] || !is_float_weight(n->inputs[1]))
            return "weight is not a float32 initializer";
        pare_value *w = n->inputs[1];
        if (w->shape.rank < 3)
            return "weight has fewer than 3 dims";
        int64_t g = pare_node_attr_int(n, "group", 1);
        if (g < 1)
            return "group < 1";
        int64_t k = 1;
        for (int d = 2; d < w->shape.rank; d++) {
            if (w->shape.dims[d].value < 1)
                return "weight has an empty or unknown dim";
            k *= w->shape.dims[d].value;
        }
        int64_t d0 = w->shape.dims[0].value, d1 = w->shape.dims[1].value;
        if (d0 < 1 || d1 < 1)
            return "weight has an empty or unknown dim";
        L->kind = tr ? PK_CONVT : PK_CONV;
        L->group = g;
        L->ksize = k;
        if (tr) {
            if (d0 % g)
                return "input channels not divisible by group";
            L->rows = d1 * g;
            L->cin = d0;
            L->cols = d0 / g * k;
        } else {
            if (d0 % g)
                return "output channels not divisible by group";
            L->rows = d0;
            L->cin = d1 * g;
            L->cols = d1 * k;
        }
        L->wv = w;
        L->xv = n->inputs[0];
    } else if (pare_node_is(n, "", "Gemm") || pare_node_is(n, "", "MatMul")) {
        bool gemm = pare_node_is(n, "", "Gemm");
        if (n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1])
            return "missing input";
        pare_value *w = n->inputs[1];
        if (!w->init && !w->is_sparse_init)
            return ""; /* activation times activation: no weight to prune */
        if (!is_float_weight(w))
            return "weight is not float32";
        if (w->shape.rank != 2)
            return "weight is not 2-D";
        int64_t d0 = w->shape.dims[0].value, d1 = w->shape.dims[1].value;
        if (d0 < 1 || d1 < 1)
            return "weight has an empty or unknown dim";
        bool tb = gemm && pare_node_attr_int(n, "transB", 0) != 0;
        L->kind = gemm ? PK_GEMM : PK_MATMUL;
        L->wt = !tb;
        L->rows = tb ? d0 : d1;
        L->cols = tb ? d1 : d0;
        L->cin = L->cols;
        L->xt = gemm && pare_node_attr_int(n, "transA", 0) != 0;
        L->wv = w;
        L->xv = n->inputs[0];
        if (L->xv->shape.rank >= 0 && L->xv->shape.rank != 2 && (gemm || L->xv->shape.rank < 1))
            return "activation rank not supported";
    } else {
        return "";
    }
    if (L->xv && (L->xv->init || L->xv->is_sparse_init))
        L->xv = NULL; /* constant activation */
    L->params = L->rows * L->cols;
    L->channels = L->rows;
    return NULL;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (list[i] && strcmp(list[i], s) == 0)
            return true;
    return false;
}

static double layer_macs(const prune_layer *L)
{
    const pare_node *n = L->node;
    if (L->kind == PK_CONVT) {
        double in = per_sample(n->inputs[0]);
        return in * (double)(L->rows / L->group) * (double)L->ksize;
    }
    double out = n->n_outputs ? per_sample(n->outputs[0]) : 0;
    return out * (double)L->cols;
}

pare_status prune_find_layers(pare_model *m, const pare_prune_filter *f, pare_prune_report *r,
                              prune_layers *out, pare_error *err)
{
    out->items = NULL;
    out->n = 0;
    pare_graph *g = pare_model_graph(m);
    pare_status st;
    for (size_t i = 0; f && i < f->n_exclude_nodes; i++)
        if (!pare_graph_find_node(g, f->exclude_nodes[i]))
            return pare_error_set(err, PARE_ERR_ARG, "no node named '%s' in the model",
                                  f->exclude_nodes[i]);
    if ((st = pare_graph_toposort(g, err)))
        return st;
    {
        pare_infer_report rep;
        pare_error e;
        pare_infer_shapes(m, NULL, &rep, &e); /* best effort: MACs only */
        pare_infer_report_release(&rep);
    }
    prune_layer *cand = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *cand);
    if (!cand)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    size_t nc = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        const char *why = describe(n, &cand[nc]);
        if (!why) {
            nc++;
            continue;
        }
        if (why[0] && r && (st = pare_prune_report_skip(r, n, why, err)))
            goto fail;
    }
    size_t keep = 0;
    for (size_t i = 0; i < nc; i++) {
        prune_layer *L = &cand[i];
        const char *why = NULL;
        char buf[160];
        if (L->wv->n_uses > 1) {
            snprintf(buf, sizeof buf, "weight '%s' is read by %zu nodes", L->wv->name,
                     L->wv->n_uses);
            why = buf;
        }
        else if (f && in_list(L->node->name, f->exclude_nodes, f->n_exclude_nodes))
            why = "excluded by name";
        else if (f && in_list(L->node->op_type, f->exclude_op_types, f->n_exclude_op_types))
            why = "op type excluded";
        else if (f && L->params < f->min_params)
            why = "fewer params than --min-params";
        else if (!(f && f->include_first_last) && nc > 1 && (i == 0 || i == nc - 1))
            why = i == 0 ? "first layer (kept dense)" : "last layer (kept dense)";
        if (why) {
            if (r && (st = pare_prune_report_skip(r, L->node, why, err)))
                goto fail;
            continue;
        }
        if (!(f && f->include_first_last) && nc == 1) {
            if (r && (st = pare_prune_report_skip(r, L->node, "only layer (kept dense)", err)))
                goto fail;
            continue;
        }
        cand[keep++] = *L;
    }
    for (size_t i = 0; i < keep; i++) {
        prune_layer *L = &cand[i];
        pare_tensor *t = pare_value_tensor(L->wv, err);
        if (!t) {
            st = err->status;
            goto fail;
        }
        if (pare_tensor_numel(t) != (uint64_t)L->params || !t->data) {
            st = pare_error_set(err, PARE_ERR_INVALID, "initializer '%s': data does not match its dims",
                                L->wv->name);
            goto fail;
        }
        L->w = malloc((size_t)L->params * sizeof(float));
        if (!L->w) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(L->w, t->data, (size_t)L->params * sizeof(float));
        for (int64_t k = 0; k < L->params; k++)
            if (L->w[k] == 0)
                L->zeros_before++;
        L->macs = layer_macs(L);
    }
    out->items = cand;
    out->n = keep;
    return PARE_OK;
fail:
    for (size_t i = 0; i < nc; i++)
        free(cand[i].w);
    free(cand);
    return st;
}

pare_status prune_commit_layers(prune_layers *ls, pare_error *err)
{
    for (size_t i = 0; i < ls->n; i++) {
        prune_layer *L = &ls->items[i];
        const pare_tensor *old = pare_value_tensor(L->wv, err);
        if (!old)
            return err->status;
        if (memcmp(old->data, L->w, (size_t)L->params * sizeof(float)) == 0)
            continue;
        pare_tensor *t;
        pare_status st = pare_tensor_new(L->wv->name, PARE_DT_FLOAT, old->rank, old->dims, &t, err);
        if (st)
            return st;
        memcpy(t->data, L->w, (size_t)L->params * sizeof(float));
        if ((st = pare_value_set_tensor(L->wv, t, err))) {
            pare_tensor_free(t);
            return st;
        }
    }
    return PARE_OK;
}

pare_status prune_report_layers(const prune_layers *ls, pare_prune_report *r, pare_error *err)
{
    for (size_t i = 0; i < ls->n; i++) {
        const prune_layer *L = &ls->items[i];
        pare_prune_layer_stat *s;
        pare_status st = pare_prune_report_layer(r, L->node, L->wv->name, &s, err);
        if (st)
            return st;
        int64_t z = 0;
        for (int64_t k = 0; k < L->params; k++)
            z += L->w[k] == 0;
        s->params = L->params;
        s->zeros_before = L->zeros_before;
        s->zeros_after = z;
        s->channels_before = s->channels_after = L->channels;
        s->macs_before = s->macs_after = L->macs;
        s->macs_effective = L->params ? L->macs * (double)(L->params - z) / (double)L->params : 0;
        s->sparsity = L->sparsity;
        if (L->note && !(s->note = prune_strdup(L->note)))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        r->macs_before += s->macs_before;
        r->macs_after += s->macs_after;
        r->macs_effective_after += s->macs_effective;
    }
    return PARE_OK;
}
