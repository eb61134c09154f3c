/* Helpers shared by the cleanup passes: graph lists, pinned values, node and
 * value removal that keeps the IR's links right, notes. */
#include <stdarg.h>
#include <stdio.h>
#include "opt/opt_int.h"

static void collect_rec(opt_graphs *gs, pare_graph *g)
{
    if (gs->st)
        return;
    if (pare__grow((void **)&gs->g, &gs->cap, gs->n + 1, sizeof *gs->g)) {
        gs->st = PARE_ERR_NOMEM;
        return;
    }
    gs->g[gs->n++] = g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g)
                collect_rec(gs, n->attrs[a].g);
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                collect_rec(gs, n->attrs[a].graphs[j]);
        }
    }
}

pare_status opt_graphs_collect(pare_model *m, opt_graphs *out, pare_error *err)
{
    memset(out, 0, sizeof *out);
    collect_rec(out, pare_model_graph(m));
    if (out->st) {
        opt_graphs_release(out);
        return PARE_NOMEM(err);
    }
    return PARE_OK;
}

void opt_graphs_release(opt_graphs *gs)
{
    free(gs->g);
    memset(gs, 0, sizeof *gs);
}

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const pare_value *const *)a;
    uintptr_t y = (uintptr_t) * (const pare_value *const *)b;
    return x < y ? -1 : x > y;
}

pare_status opt_pins_collect(pare_model *m, opt_pins *out, pare_error *err)
{
    memset(out, 0, sizeof *out);
    opt_graphs gs;
    pare_status st = opt_graphs_collect(m, &gs, err);
    if (st)
        return st;
    for (size_t i = 0; i < gs.n; i++) {
        pare_graph *g = gs.g[i];
        if (!g->parent)
            continue;
        for (size_t k = 0; k < g->n_outputs; k++) {
            pare_value *v = g->outputs[k];
            if (v->producer || v->is_input || v->init)
                continue;
            const pare_value *outer = pare_graph_find_value(g->parent, v->name);
            if (!outer)
                continue;
            if (pare__grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v)) {
                opt_graphs_release(&gs);
                opt_pins_release(out);
                return PARE_NOMEM(err);
            }
            out->v[out->n++] = outer;
        }
    }
    opt_graphs_release(&gs);
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, ptr_cmp);
    return PARE_OK;
}

bool opt_pinned(const opt_pins *p, const pare_value *v)
{
    if (!p || !p->n || !v)
        return false;
    return bsearch(&v, p->v, p->n, sizeof *p->v, ptr_cmp) != NULL;
}

void opt_pins_release(opt_pins *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}

bool opt_legacy(const pare_graph *g)
{
    return g->model && pare_model_ir_version(g->model) < 4;
}

bool opt_is_const(const pare_value *v)
{
    return v && v->init && (!v->is_input || opt_legacy(v->graph)) && v->elem_kind == 0;
}

pare_status opt_set_init(pare_value *v, pare_tensor *t, pare_error *err)
{
    pare_status st = pare_value_set_tensor(v, t, err);
    if (st) {
        if (v->init != t)
            pare_tensor_free(t);
        return st;
    }
    if (opt_legacy(v->graph) && !v->is_input)
        st = pare_graph_add_input(v->graph, v, err);
    return st;
}

pare_status opt_add_init(pare_graph *g, pare_tensor *t, pare_value **out, pare_error *err)
{
    pare_value *v;
    pare_status st = pare_graph_add_initializer(g, t, &v, err);
    if (st) {
        pare_tensor_free(t);
        return st;
    }
    if (opt_legacy(g) && (st = pare_graph_add_input(g, v, err)))
        return st;
    if (out)
        *out = v;
    return PARE_OK;
}

pare_status opt_unlist_unused_inits(pare_graph *g, const opt_pins *pins, pare_error *err)
{
    if (!opt_legacy(g))
        return PARE_OK;
    for (size_t j = g->n_inputs; j-- > 0;) {
        pare_value *v = g->inputs[j];
        if ((v->init || v->is_sparse_init) && !v->n_uses && !v->is_output && !opt_pinned(pins, v)) {
            pare_status st = pare_graph_remove_input(g, j, err);
            if (st)
                return st;
        }
    }
    return PARE_OK;
}

bool opt_can_replace(const opt_pins *pins, const pare_value *from, const pare_value *to)
{
    if (!from || !to || from == to || opt_pinned(pins, from))
        return false;
    if (from->is_output &&
        (to->is_input || to->is_output || to->init || to->graph != from->graph ||
         opt_pinned(pins, to) || !to->producer))
        return false;
    return true;
}

pare_status opt_replace(pare_value *from, pare_value *to, pare_error *err)
{
    bool out = from->is_output;
    int dtype = from->dtype;
    pare_shape sh = {-1, NULL};
    pare_status st = out ? pare__shape_copy(&sh, &from->shape, err) : PARE_OK;
    if (!st)
        st = pare_value_replace_uses(from, to, err);
    if (!st && out && to->is_output && dtype && !to->dtype)
        st = pare_value_set_type(to, dtype, &sh, err);
    pare__shape_release(&sh);
    return st;
}


static void value_destroy(pare_value *v)
{
    free(v->name);
    pare__shape_release(&v->shape);
    free(v->uses);
    pare_tensor_free(v->init);
    free(v);
}

pare_status opt_sweep_values(pare_graph *g, const opt_pins *pins, bool drop_unused_inits,
                             size_t *inits, pare_error *err)
{
    (void)err;
    size_t w = 0, dropped_inits = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        bool keep = v->is_input || v->is_output || v->n_uses || v->producer ||
                    opt_pinned(pins, v) || (v->init && !drop_unused_inits) ||
                    (v->is_sparse_init && !drop_unused_inits);
        if (keep) {
            v->id = w;
            g->values[w++] = v;
        } else {
            if (v->init || v->is_sparse_init)
                dropped_inits++;
            pare__graph_index_del(g, v);
            value_destroy(v);
            g->dirty = true;
        }
    }
    g->n_values = w;
    if (inits)
        *inits = dropped_inits;
    return PARE_OK;
}

void opt_drop_marked(pare_graph *g, const uint8_t *mark)
{
    size_t w = 0, n = g->n_values;
    for (size_t i = 0; i < n; i++) {
        pare_value *v = g->values[i];
        bool drop = mark[i] && !v->is_input && !v->is_output && !v->n_uses && !v->producer;
        if (!drop) {
            v->id = w;
            g->values[w++] = v;
        } else {
            pare__graph_index_del(g, v);
            value_destroy(v);
            g->dirty = true;
        }
    }
    g->n_values = w;
}

pare_status opt_note(char **notes, pare_error *err, const char *fmt, ...)
{
    if (!notes)
        return PARE_OK;
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    int w = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w < 0)
        return PARE_OK;
    size_t add = strlen(line), have = *notes ? strlen(*notes) : 0;
    char *nn = realloc(*notes, have + add + 2);
    if (!nn)
        return PARE_NOMEM(err);
    memcpy(nn + have, line, add);
    nn[have + add] = '\n';
    nn[have + add + 1] = 0;
    *notes = nn;
    return PARE_OK;
}

static int64_t tensor_ints(const pare_tensor *t, int64_t *vals, int64_t max)
{
    if (!t || t->rank > 1)
        return -1;
    uint64_t n = pare_tensor_numel(t);
    if (n > (uint64_t)max)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (t->dtype == PARE_DT_INT64)
            memcpy(&vals[i], (const char *)t->data + 8 * i, 8);
        else if (t->dtype == PARE_DT_INT32) {
            int32_t x;
            memcpy(&x, (const char *)t->data + 4 * i, 4);
            vals[i] = x;
        } else
            return -1;
    }
    return (int64_t)n;
}

int64_t opt_const_ints(pare_value *v, int64_t *vals, int64_t max)
{
    if (!v)
        return -1;
    if (opt_is_const(v)) {
        pare_error e;
        return tensor_ints(pare_value_tensor(v, &e), vals, max);
    }
    const pare_node *p = v->producer;
    if (p && pare_node_is(p, "", "Constant") && p->n_outputs == 1) {
        const pare_attr *a = pare_node_attr(p, "value");
        if (a && a->type == PARE_ATTR_TENSOR)
            return tensor_ints(a->t, vals, max);
        a = pare_node_attr(p, "value_ints");
        if (a && a->type == PARE_ATTR_INTS && a->n <= (size_t)max) {
            memcpy(vals, a->ints, a->n * sizeof *vals);
            return (int64_t)a->n;
        }
        a = pare_node_attr(p, "value_int");
        if (a && a->type == PARE_ATTR_INT && max >= 1) {
            vals[0] = a->i;
            return 1;
        }
    }
    return -1;
}

size_t opt_count_nodes(const pare_graph *g)
{
    size_t c = g->n_nodes;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const pare_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g)
                c += opt_count_nodes(n->attrs[a].g);
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                c += opt_count_nodes(n->attrs[a].graphs[j]);
        }
    }
    return c;
}

pare_status opt_pass_begin(pare_model *m, size_t *changed, opt_pins *pins, opt_graphs *gs,
                           pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    if (changed)
        *changed = 0;
    pare_status st = opt_pins_collect(m, pins, err);
    if (st)
        return st;
    if ((st = opt_graphs_collect(m, gs, err)))
        opt_pins_release(pins);
    return st;
}
