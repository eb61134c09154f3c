/* Structural checks in the spirit of onnx.checker. */
#include <stdio.h>
#include "internal.h"

typedef struct vctx {
    pare_model *m;
    pare_problems *out;
    pare_status st;
} vctx;

#define ADD(c, where, ...)                                                                     \
    do {                                                                                       \
        if (pare__problem_add((c)->out, (where), __VA_ARGS__))                                 \
            (c)->st = PARE_ERR_NOMEM;                                                          \
    } while (0)

static bool function_exists(const pare_model *m, const char *domain, const char *name)
{
    for (size_t i = 0; i < m->proto->n_functions; i++) {
        const Onnx__FunctionProto *f = m->proto->functions[i];
        if (f->name && strcmp(f->name, name) == 0 &&
            strcmp(f->domain ? f->domain : "", domain) == 0)
            return true;
    }
    return false;
}

static void check_attr(vctx *c, const char *where, const pare_attr *a, bool in_function)
{
    const Onnx__AttributeProto *ap = a->orig;
    if (!a->name[0])
        ADD(c, where, "an attribute has no name");
    if (a->ref_attr_name) {
        if (!in_function)
            ADD(c, where, "attribute '%s' refers to '%s' outside a function", a->name,
                a->ref_attr_name);
        return;
    }
    if (a->type == PARE_ATTR_UNDEFINED || a->type > PARE_ATTR_TYPE_PROTOS) {
        ADD(c, where, "attribute '%s' has no valid type", a->name);
        return;
    }
    if (!ap)
        return;
    /* the type must match the field that is set */
    int set = 0;
    bool ok = false;
    set += ap->has_f;
    set += ap->has_i;
    set += ap->has_s;
    set += ap->t != NULL;
    set += ap->g != NULL;
    set += ap->sparse_tensor != NULL;
    set += ap->tp != NULL;
    set += ap->n_floats > 0;
    set += ap->n_ints > 0;
    set += ap->n_strings > 0;
    set += ap->n_tensors > 0;
    set += ap->n_graphs > 0;
    set += ap->n_sparse_tensors > 0;
    set += ap->n_type_protos > 0;
    switch (a->type) {
    case PARE_ATTR_FLOAT: ok = ap->has_f; break;
    case PARE_ATTR_INT: ok = ap->has_i; break;
    case PARE_ATTR_STRING: ok = ap->has_s; break;
    case PARE_ATTR_TENSOR: ok = ap->t != NULL; break;
    case PARE_ATTR_GRAPH: ok = ap->g != NULL; break;
    case PARE_ATTR_SPARSE_TENSOR: ok = ap->sparse_tensor != NULL; break;
    case PARE_ATTR_TYPE_PROTO: ok = ap->tp != NULL; break;
    default: ok = true; break; /* lists may be empty */
    }
    if (!ok)
        ADD(c, where, "attribute '%s' says type %d but that field is not set", a->name, a->type);
    else if (set > 1)
        ADD(c, where, "attribute '%s' has more than one value field set", a->name);
}

static void check_graph(vctx *c, pare_graph *g, bool in_function);

static void check_node_order(vctx *c, pare_graph *g)
{
    /* a value is available once its producer has been passed */
    uint8_t *seen = calloc(g->next_node_id + 1, 1);
    if (!seen) {
        c->st = PARE_ERR_NOMEM;
        return;
    }
    char where[400], lbl[300];
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        snprintf(where, sizeof where, "node %s", pare_node_label(n, lbl, sizeof lbl));
        for (size_t k = 0; k < n->n_inputs; k++) {
            pare_value *v = n->inputs[k];
            if (!v || v->graph != g || !v->producer)
                continue;
            if (v->producer->graph == g && v->producer->id < g->next_node_id &&
                !seen[v->producer->id]) {
                if (v->producer == n)
                    ADD(c, where, "reads its own output '%s' (a cycle)", v->name);
                else
                    ADD(c, where, "input '%s' is produced by a later node %s: the nodes are not "
                        "in topological order (or form a cycle)", v->name,
                        pare_node_label(v->producer, lbl, sizeof lbl));
            }
        }
        seen[n->id] = 1;
    }
    free(seen);
}

static void check_graph(vctx *c, pare_graph *g, bool in_function)
{
    pare_model *m = c->m;
    char where[400], lbl[300];
    check_node_order(c, g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        snprintf(where, sizeof where, "node %s", pare_node_label(n, lbl, sizeof lbl));
        if (!n->op_type[0])
            ADD(c, where, "has no op_type");
        if (!function_exists(m, n->domain, n->op_type) &&
            pare_model_opset_version(m, n->domain) == 0)
            ADD(c, where, "domain '%s' has no opset import", n->domain[0] ? n->domain : "ai.onnx");
        for (size_t a = 0; a < n->n_attrs; a++) {
            check_attr(c, where, &n->attrs[a], in_function);
            for (size_t b = 0; b < a; b++)
                if (strcmp(n->attrs[a].name, n->attrs[b].name) == 0)
                    ADD(c, where, "attribute '%s' is given twice", n->attrs[a].name);
            if (n->attrs[a].g)
                check_graph(c, n->attrs[a].g, in_function);
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                check_graph(c, n->attrs[a].graphs[j], in_function);
        }
    }
    snprintf(where, sizeof where, "graph '%s'", g->name);
    if (!g->parent && g->n_outputs == 0)
        ADD(c, where, "has no outputs");
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v->init && v->orig_vi && v->is_input && v->dtype && v->init->dtype != v->dtype)
            ADD(c, where, "initializer '%s' is %s but its input declares %s", v->name,
                pare_dtype_name(v->init->dtype), pare_dtype_name(v->dtype));
    }
    if (!g->parent) {
        for (size_t i = 0; i < g->n_inputs; i++)
            if (!g->inputs[i]->init && g->inputs[i]->elem_kind == 0 && !g->inputs[i]->dtype)
                ADD(c, where, "input '%s' has no element type", g->inputs[i]->name);
        for (size_t i = 0; i < g->n_outputs; i++)
            if (g->outputs[i]->elem_kind == 0 && !g->outputs[i]->dtype &&
                !((Onnx__ValueInfoProto *)g->outputs[i]->orig_vi &&
                  ((Onnx__ValueInfoProto *)g->outputs[i]->orig_vi)->type))
                ADD(c, where, "output '%s' has no type", g->outputs[i]->name);
    }
}

pare_status pare_model_validate(pare_model *m, pare_problems *out, pare_error *err)
{
    vctx c = {m, out, PARE_OK};
    for (size_t i = 0; i < m->load_problems.n; i++)
        ADD(&c, m->load_problems.items[i].where, "%s", m->load_problems.items[i].what);
    if (!m->proto->has_ir_version)
        ADD(&c, "model", "ir_version is missing");
    else if (m->proto->ir_version < 3 && m->n_opsets == 0)
        ADD(&c, "model", "ir_version %lld is too old", (long long)m->proto->ir_version);
    if (m->n_opsets == 0)
        ADD(&c, "model", "has no opset imports");
    for (size_t i = 0; i < m->n_opsets; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->opsets[i].domain, m->opsets[k].domain) == 0)
                ADD(&c, "model", "opset domain '%s' is imported twice", m->opsets[i].domain);
    check_graph(&c, m->graph, false);
    if (c.st)
        return PARE_NOMEM(err);
    return PARE_OK;
}
