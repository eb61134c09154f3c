/* ModelProto -> IR. The proto stays alive as the backing store of every
 * field the IR does not model, so an untouched model saves unchanged. */
#include <stdio.h>
#include <inttypes.h>
#include "internal.h"

pare_status pare__problem_add(pare_problems *p, const char *where, const char *fmt, ...)
{
    if (pare__grow((void **)&p->items, &p->cap, p->n + 1, sizeof *p->items))
        return PARE_ERR_NOMEM;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pare_problem *it = &p->items[p->n];
    it->where = strdup(where ? where : "");
    it->what = strdup(buf);
    if (!it->where || !it->what) {
        free(it->where);
        free(it->what);
        return PARE_ERR_NOMEM;
    }
    p->n++;
    return PARE_OK;
}

void pare_problems_release(pare_problems *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].where);
        free(p->items[i].what);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

static pare_status graph_from_proto(pare_model *m, Onnx__GraphProto *gp, pare_graph *parent,
                                    pare_node *owner, pare_graph **out, pare_error *err);

static pare_status read_type(pare_value *v, const Onnx__TypeProto *tp, pare_error *err)
{
    if (!tp)
        return PARE_OK;
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
        break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
        v->elem_kind = 1;
        return PARE_OK;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
        v->elem_kind = 2;
        return PARE_OK;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
        v->elem_kind = 3;
        return PARE_OK;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
        v->elem_kind = 4;
        if (tp->sparse_tensor_type && tp->sparse_tensor_type->has_elem_type)
            v->dtype = tp->sparse_tensor_type->elem_type;
        return PARE_OK;
    default:
        return PARE_OK;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt)
        return PARE_OK;
    if (tt->has_elem_type)
        v->dtype = tt->elem_type;
    v->shape_from_file = true;
    if (!tt->shape)
        return PARE_OK;
    size_t r = tt->shape->n_dim;
    if (r > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "value '%s' has rank %zu", v->name, r);
    pare_shape s = {(int)r, NULL};
    if (r) {
        s.dims = calloc(r, sizeof *s.dims);
        if (!s.dims)
            return PARE_NOMEM(err);
    }
    for (size_t i = 0; i < r; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        s.dims[i].value = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0)
            s.dims[i].value = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 d->dim_param && *d->dim_param &&
                 !(s.dims[i].param = strdup(d->dim_param))) {
            pare__shape_release(&s);
            return PARE_NOMEM(err);
        }
    }
    pare__shape_release(&v->shape);
    v->shape = s;
    return PARE_OK;
}

static pare_status value_get_or_new(pare_graph *g, const char *name, pare_value **out,
                                    pare_error *err)
{
    pare_value *v = pare__graph_index_get(g, name);
    if (v) {
        *out = v;
        return PARE_OK;
    }
    return pare__value_new(g, name, out, err);
}

static pare_status attr_from_proto(pare_model *m, pare_node *n, Onnx__AttributeProto *ap,
                                   pare_attr *a, pare_error *err)
{
    pare_status st;
    a->orig = ap;
    if (!(a->name = pare__strdup0(ap->name)))
        return PARE_NOMEM(err);
    if (ap->ref_attr_name && *ap->ref_attr_name && !(a->ref_attr_name = strdup(ap->ref_attr_name)))
        return PARE_NOMEM(err);
    a->type = ap->has_type ? (pare_attr_type)ap->type : PARE_ATTR_UNDEFINED;
    a->f = ap->f;
    a->i = ap->i;
    a->s.data = malloc(ap->s.len + 1);
    if (!a->s.data)
        return PARE_NOMEM(err);
    if (ap->s.len)
        memcpy(a->s.data, ap->s.data, ap->s.len);
    a->s.data[ap->s.len] = 0;
    a->s.len = ap->s.len;
    if (ap->t && (st = pare__tensor_from_proto(ap->t, m, PARE__TP_BORROW, &a->t, err)))
        return pare_error_prefix(err, "attribute '%s'", a->name);
    if (ap->g && (st = graph_from_proto(m, ap->g, n->graph, n, &a->g, err)))
        return st;
    switch (a->type) {
    case PARE_ATTR_FLOATS:
        a->n = ap->n_floats;
        a->floats = malloc((a->n ? a->n : 1) * sizeof *a->floats);
        if (!a->floats)
            return PARE_NOMEM(err);
        if (a->n)
            memcpy(a->floats, ap->floats, a->n * sizeof *a->floats);
        break;
    case PARE_ATTR_INTS:
        a->n = ap->n_ints;
        a->ints = malloc((a->n ? a->n : 1) * sizeof *a->ints);
        if (!a->ints)
            return PARE_NOMEM(err);
        if (a->n)
            memcpy(a->ints, ap->ints, a->n * sizeof *a->ints);
        break;
    case PARE_ATTR_STRINGS:
        a->n = ap->n_strings;
        a->strings = calloc(a->n ? a->n : 1, sizeof *a->strings);
        if (!a->strings)
            return PARE_NOMEM(err);
        for (size_t i = 0; i < a->n; i++) {
            a->strings[i].data = malloc(ap->strings[i].len + 1);
            if (!a->strings[i].data)
                return PARE_NOMEM(err);
            if (ap->strings[i].len)
                memcpy(a->strings[i].data, ap->strings[i].data, ap->strings[i].len);
            a->strings[i].data[ap->strings[i].len] = 0;
            a->strings[i].len = ap->strings[i].len;
        }
        break;
    case PARE_ATTR_TENSORS:
        a->n = ap->n_tensors;
        a->tensors = calloc(a->n ? a->n : 1, sizeof *a->tensors);
        if (!a->tensors)
            return PARE_NOMEM(err);
        for (size_t i = 0; i < a->n; i++)
            if ((st = pare__tensor_from_proto(ap->tensors[i], m, PARE__TP_BORROW, &a->tensors[i], err)))
                return pare_error_prefix(err, "attribute '%s'", a->name);
        break;
    case PARE_ATTR_GRAPHS:
        a->n = ap->n_graphs;
        a->graphs = calloc(a->n ? a->n : 1, sizeof *a->graphs);
        if (!a->graphs)
            return PARE_NOMEM(err);
        for (size_t i = 0; i < a->n; i++)
            if ((st = graph_from_proto(m, ap->graphs[i], n->graph, n, &a->graphs[i], err)))
                return st;
        break;
    default:
        break;
    }
    return PARE_OK;
}

static char *node_where(const pare_node *n, char *buf, size_t size)
{
    char lbl[300];
    snprintf(buf, size, "node %s", pare_node_label(n, lbl, sizeof lbl));
    return buf;
}

static pare_status graph_from_proto(pare_model *m, Onnx__GraphProto *gp, pare_graph *parent,
                                    pare_node *owner, pare_graph **out, pare_error *err)
{
    pare_status st;
    pare_graph *g = calloc(1, sizeof *g);
    if (!g)
        return PARE_NOMEM(err);
    g->model = m;
    g->parent = parent;
    g->owner = owner;
    g->orig = gp;
    if (!(g->name = pare__strdup0(gp->name))) {
        free(g);
        return PARE_NOMEM(err);
    }
    pare_problems *probs = &m->load_problems;
    char where[400];
    snprintf(where, sizeof where, "graph '%s'", g->name);

    /* initializers first: their order is the file order on save */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = tp->name ? tp->name : "";
        pare_value *v;
        if (pare__graph_index_get(g, name)) {
            pare__problem_add(probs, where, "initializer '%s' is defined twice", name);
            continue;
        }
        if ((st = pare__value_new(g, name, &v, err)))
            goto fail;
        v->orig_init = tp;
        if ((st = pare__tensor_from_proto(tp, m, PARE__TP_BORROW | PARE__TP_DEFER_ALIGN, &v->init,
                                           err)))
            goto fail;
        v->dtype = v->init->dtype;
        if ((st = pare_value_set_dims(v, v->init->dtype, v->init->rank, v->init->dims, err)))
            goto fail;
        v->dirty = false;
    }
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
        const char *name = sp->values && sp->values->name ? sp->values->name : "";
        pare_value *v;
        if (pare__graph_index_get(g, name)) {
            pare__problem_add(probs, where, "initializer '%s' is defined twice", name);
            continue;
        }
        if ((st = pare__value_new(g, name, &v, err)))
            goto fail;
        v->is_sparse_init = true;
        v->orig_init = sp;
        v->dtype = sp->values && sp->values->has_data_type ? sp->values->data_type : 0;
        if (sp->n_dims <= PARE_MAX_RANK &&
            (st = pare_value_set_dims(v, v->dtype, (int)sp->n_dims, sp->dims, err)))
            goto fail;
        v->dirty = false;
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        Onnx__ValueInfoProto *vi = gp->input[i];
        pare_value *v;
        if ((st = value_get_or_new(g, vi->name ? vi->name : "", &v, err)))
            goto fail;
        if (v->is_input)
            pare__problem_add(probs, where, "input '%s' is listed twice", v->name);
        if (!v->orig_vi)
            v->orig_vi = vi;
        if (!v->init && (st = read_type(v, vi->type, err)))
            goto fail;
        if (pare__grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof *g->inputs)) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        g->inputs[g->n_inputs++] = v;
        v->is_input = true;
        v->dirty = false;
    }
    /* node outputs: producers first, so inputs can refer forward (and a
     * cycle or misordering is seen by validate rather than as undefined) */
    if (gp->n_node && pare__grow((void **)&g->nodes, &g->cap_nodes, gp->n_node, sizeof *g->nodes)) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        Onnx__NodeProto *np = gp->node[i];
        pare_node *n = calloc(1, sizeof *n);
        if (!n) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        g->nodes[g->n_nodes++] = n;
        n->graph = g;
        n->orig = np;
        n->id = g->next_node_id++;
        n->name = pare__strdup0(np->name);
        n->op_type = pare__strdup0(np->op_type);
        n->domain = pare__strdup0(np->domain && strcmp(np->domain, "ai.onnx") ? np->domain : "");
        n->inputs = calloc(np->n_input ? np->n_input : 1, sizeof *n->inputs);
        n->outputs = calloc(np->n_output ? np->n_output : 1, sizeof *n->outputs);
        if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        if (np->doc_string && *np->doc_string && !(n->doc = strdup(np->doc_string))) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        n->n_inputs = np->n_input;
        n->n_outputs = np->n_output;
        for (size_t o = 0; o < np->n_output; o++) {
            const char *on = np->output[o];
            if (!on || !*on)
                continue;
            pare_value *v;
            if ((st = value_get_or_new(g, on, &v, err)))
                goto fail;
            n->outputs[o] = v;
            if (v->producer || v->init || v->is_input) {
                char w[400];
                pare__problem_add(probs, node_where(n, w, sizeof w),
                                  "output '%s' already has a producer (%s)", on,
                                  v->producer ? "another node" : v->init ? "an initializer"
                                                                          : "a graph input");
                continue;
            }
            v->producer = n;
            v->producer_output = o;
        }
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        Onnx__ValueInfoProto *vi = gp->value_info[i];
        pare_value *v = pare__graph_index_get(g, vi->name ? vi->name : "");
        if (!v) {
            /* value_info for a name nobody defines: kept in the file, not in the IR */
            continue;
        }
        if (!v->orig_vi)
            v->orig_vi = vi;
        if (!v->init && !v->is_input && (st = read_type(v, vi->type, err)))
            goto fail;
        v->dirty = false;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        Onnx__NodeProto *np = gp->node[i];
        pare_node *n = g->nodes[i];
        for (size_t k = 0; k < np->n_input; k++) {
            const char *in = np->input[k];
            if (!in || !*in)
                continue;
            pare_value *v = pare_graph_find_value(g, in);
            if (!v) {
                char w[400];
                pare__problem_add(probs, node_where(n, w, sizeof w),
                                  "input '%s' is not defined (no node, initializer or graph input "
                                  "produces it)", in);
                if ((st = pare__value_new(g, in, &v, err)))
                    goto fail;
            }
            n->inputs[k] = v;
            if ((st = pare__use_add(v, n, k, err)))
                goto fail;
        }
        if (np->n_attribute) {
            n->attrs = calloc(np->n_attribute, sizeof *n->attrs);
            if (!n->attrs) {
                st = PARE_NOMEM(err);
                goto fail;
            }
            for (size_t a = 0; a < np->n_attribute; a++) {
                n->n_attrs = a + 1;
                if ((st = attr_from_proto(m, n, np->attribute[a], &n->attrs[a], err))) {
                    char w[400];
                    pare_error_prefix(err, "%s", node_where(n, w, sizeof w));
                    goto fail;
                }
            }
        }
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi->name ? vi->name : "";
        pare_value *v = pare__graph_index_get(g, name);
        if (!v) {
            pare_value *outer = parent ? pare_graph_find_value(parent, name) : NULL;
            if (!outer)
                pare__problem_add(probs, where, "output '%s' is not produced by any node", name);
            /* an output that passes an outer value through: a local value stands for it */
            if ((st = pare__value_new(g, name, &v, err)))
                goto fail;
        }
        if (!v->orig_vi)
            v->orig_vi = vi;
        if (!v->init && !v->is_input && (st = read_type(v, vi->type, err)))
            goto fail;
        if (pare__grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1,
                       sizeof *g->outputs)) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        g->outputs[g->n_outputs++] = v;
        v->is_output = true;
        v->dirty = false;
    }
    *out = g;
    return PARE_OK;
fail:
    pare__graph_free(g);
    return st;
}

pare_status pare__model_from_proto(Onnx__ModelProto *proto, const char *base_dir, bool no_external,
                                   pare_model **out, pare_error *err)
{
    pare_model *m = calloc(1, sizeof *m);
    if (!m) {
        pare__model_proto_free(proto, NULL);
        return PARE_NOMEM(err);
    }
    m->proto = proto;
    m->no_external = no_external;
    pare_status st = PARE_OK;
    if (base_dir && !(m->base_dir = strdup(base_dir))) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    if (!proto->graph) {
        st = pare_error_set(err, PARE_ERR_FORMAT, "not an ONNX model: it has no graph");
        goto fail;
    }
    m->opsets = calloc(proto->n_opset_import ? proto->n_opset_import : 1, sizeof *m->opsets);
    if (!m->opsets) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    for (size_t i = 0; i < proto->n_opset_import; i++) {
        Onnx__OperatorSetIdProto *op = proto->opset_import[i];
        const char *d = op->domain && strcmp(op->domain, "ai.onnx") ? op->domain : "";
        m->opsets[i].domain = strdup(d);
        if (!m->opsets[i].domain) {
            st = PARE_NOMEM(err);
            goto fail;
        }
        m->opsets[i].version = op->version;
        m->n_opsets = i + 1;
    }
    if ((st = graph_from_proto(m, proto->graph, NULL, NULL, &m->graph, err)))
        goto fail;
    *out = m;
    return PARE_OK;
fail:
    pare_model_free(m);
    return st;
}

pare_tensor *pare_value_tensor(pare_value *v, pare_error *err)
{
    if (v->init || !v->is_sparse_init)
        return v->init;
    const Onnx__SparseTensorProto *sp = v->orig_init;
    if (!sp || !sp->values || !sp->indices) {
        pare_error_set(err, PARE_ERR_INVALID, "sparse initializer '%s' lacks values or indices",
                       v->name);
        return NULL;
    }
    pare_tensor *vals = NULL, *idx = NULL, *dense = NULL;
    pare_status st = pare__tensor_from_proto(sp->values, v->graph->model, 0, &vals, err);
    if (!st)
        st = pare__tensor_from_proto(sp->indices, v->graph->model, 0, &idx, err);
    if (st)
        goto fail;
    if (sp->n_dims > PARE_MAX_RANK) {
        pare_error_set(err, PARE_ERR_INVALID, "sparse initializer '%s': rank too large", v->name);
        goto fail;
    }
    if ((st = pare_tensor_new(v->name, vals->dtype, (int)sp->n_dims, sp->dims, &dense, err)))
        goto fail;
    uint64_t total = pare_tensor_numel(dense);
    uint64_t nnz = pare_tensor_numel(vals);
    if (idx->dtype != PARE_DT_INT64 || vals->dtype == PARE_DT_STRING ||
        pare_dtype_bits(vals->dtype) < 8) {
        pare_error_set(err, PARE_ERR_UNSUPPORTED, "sparse initializer '%s': unsupported index or "
                       "value type", v->name);
        goto fail;
    }
    size_t es = (size_t)pare_dtype_bits(vals->dtype) / 8;
    const int64_t *ix = idx->data;
    bool flat = idx->rank == 1;
    if (!(flat && (uint64_t)idx->dims[0] == nnz) &&
        !(idx->rank == 2 && (uint64_t)idx->dims[0] == nnz && idx->dims[1] == (int64_t)sp->n_dims)) {
        pare_error_set(err, PARE_ERR_INVALID, "sparse initializer '%s': indices shape does not "
                       "match values", v->name);
        goto fail;
    }
    for (uint64_t i = 0; i < nnz; i++) {
        uint64_t lin = 0;
        if (flat) {
            if (ix[i] < 0 || (uint64_t)ix[i] >= total)
                goto bad_index;
            lin = (uint64_t)ix[i];
        } else {
            for (size_t d = 0; d < sp->n_dims; d++) {
                int64_t c = ix[i * sp->n_dims + d];
                if (c < 0 || c >= sp->dims[d])
                    goto bad_index;
                lin = lin * (uint64_t)sp->dims[d] + (uint64_t)c;
            }
        }
        memcpy((uint8_t *)dense->data + lin * es, (uint8_t *)vals->data + i * es, es);
    }
    pare_tensor_free(vals);
    pare_tensor_free(idx);
    v->init = dense;
    return dense;
bad_index:
    pare_error_set(err, PARE_ERR_INVALID, "sparse initializer '%s': index out of range", v->name);
fail:
    pare_tensor_free(vals);
    pare_tensor_free(idx);
    pare_tensor_free(dense);
    return NULL;
}

bool pare_value_is_external(const pare_value *v)
{
    if (!v->init || !v->orig_init || v->is_sparse_init || v->dirty)
        return false;
    const Onnx__TensorProto *tp = v->orig_init;
    return tp->has_data_location &&
           tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}
