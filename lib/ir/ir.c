/* The IR's rewrite API: values, uses, nodes, attributes. */
#include <stdio.h>
#include <inttypes.h>
#include "internal.h"

/* ---- name -> value table: open addressing, power-of-two capacity ---- */

typedef struct value_index {
    pare_value **slots;
    size_t cap, used, tomb;
} value_index;

#define TOMBSTONE ((pare_value *)(uintptr_t)1)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_rehash(value_index *ix, size_t ncap)
{
    pare_value **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < ix->cap; i++) {
        pare_value *v = ix->slots[i];
        if (!v || v == TOMBSTONE)
            continue;
        size_t j = hash_str(v->name) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = v;
    }
    free(ix->slots);
    ix->slots = ns;
    ix->cap = ncap;
    ix->tomb = 0;
    return 0;
}

pare_status pare__graph_index_put(pare_graph *g, pare_value *v, pare_error *err)
{
    value_index *ix = g->index;
    if (!ix) {
        ix = calloc(1, sizeof *ix);
        if (!ix)
            return PARE_NOMEM(err);
        g->index = ix;
    }
    if ((ix->used + ix->tomb + 1) * 4 >= ix->cap * 3) {
        size_t nc = ix->cap ? ix->cap : 16;
        while ((ix->used + 1) * 2 >= nc)
            nc *= 2;
        if (index_rehash(ix, nc))
            return PARE_NOMEM(err);
    }
    size_t j = hash_str(v->name) & (ix->cap - 1);
    while (ix->slots[j] && ix->slots[j] != TOMBSTONE)
        j = (j + 1) & (ix->cap - 1);
    if (ix->slots[j] == TOMBSTONE)
        ix->tomb--;
    ix->slots[j] = v;
    ix->used++;
    return PARE_OK;
}

static size_t index_find_slot(const value_index *ix, const char *name, bool *found)
{
    size_t j = hash_str(name) & (ix->cap - 1);
    while (ix->slots[j]) {
        if (ix->slots[j] != TOMBSTONE && strcmp(ix->slots[j]->name, name) == 0) {
            *found = true;
            return j;
        }
        j = (j + 1) & (ix->cap - 1);
    }
    *found = false;
    return j;
}

pare_value *pare__graph_index_get(const pare_graph *g, const char *name)
{
    const value_index *ix = g->index;
    if (!ix || !ix->cap || !name)
        return NULL;
    bool found;
    size_t j = index_find_slot(ix, name, &found);
    return found ? ix->slots[j] : NULL;
}

void pare__graph_index_del(pare_graph *g, pare_value *v)
{
    value_index *ix = g->index;
    if (!ix || !ix->cap)
        return;
    bool found;
    size_t j = index_find_slot(ix, v->name, &found);
    if (found && ix->slots[j] == v) {
        ix->slots[j] = TOMBSTONE;
        ix->used--;
        ix->tomb++;
    }
}

static void index_free(void *p)
{
    value_index *ix = p;
    if (ix)
        free(ix->slots);
    free(ix);
}

/* ---- values ---- */

pare_status pare__value_new(pare_graph *g, const char *name, pare_value **out, pare_error *err)
{
    if (pare__grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof *g->values))
        return PARE_NOMEM(err);
    pare_value *v = calloc(1, sizeof *v);
    if (!v || !(v->name = strdup(name))) {
        free(v);
        return PARE_NOMEM(err);
    }
    v->graph = g;
    v->shape.rank = -1;
    v->id = g->n_values;
    if (pare__graph_index_put(g, v, err)) {
        free(v->name);
        free(v);
        return PARE_ERR_NOMEM;
    }
    g->values[g->n_values++] = v;
    *out = v;
    return PARE_OK;
}

pare_status pare__use_add(pare_value *v, pare_node *n, size_t input, pare_error *err)
{
    if (pare__grow((void **)&v->uses, &v->cap_uses, v->n_uses + 1, sizeof *v->uses))
        return PARE_NOMEM(err);
    v->uses[v->n_uses].node = n;
    v->uses[v->n_uses].input = input;
    v->n_uses++;
    return PARE_OK;
}

void pare__use_del(pare_value *v, pare_node *n, size_t input)
{
    for (size_t i = 0; i < v->n_uses; i++) {
        if (v->uses[i].node == n && v->uses[i].input == input) {
            memmove(&v->uses[i], &v->uses[i + 1], (v->n_uses - i - 1) * sizeof *v->uses);
            v->n_uses--;
            return;
        }
    }
}

void pare__shape_release(pare_shape *s)
{
    if (s->dims) {
        for (int i = 0; i < s->rank; i++)
            free(s->dims[i].param);
        free(s->dims);
    }
    s->dims = NULL;
    s->rank = -1;
}

pare_status pare__shape_copy(pare_shape *dst, const pare_shape *src, pare_error *err)
{
    pare_shape n = {src ? src->rank : -1, NULL};
    if (n.rank > 0) {
        n.dims = calloc((size_t)n.rank, sizeof *n.dims);
        if (!n.dims)
            return PARE_NOMEM(err);
        for (int i = 0; i < n.rank; i++) {
            n.dims[i].value = src->dims[i].value;
            if (src->dims[i].param && !(n.dims[i].param = strdup(src->dims[i].param))) {
                pare__shape_release(&n);
                return PARE_NOMEM(err);
            }
        }
    }
    pare__shape_release(dst);
    *dst = n;
    return PARE_OK;
}

static void value_free(pare_value *v)
{
    if (!v)
        return;
    free(v->name);
    pare__shape_release(&v->shape);
    free(v->uses);
    pare_tensor_free(v->init);
    free(v);
}

/* ---- attributes and nodes ---- */

void pare__attr_release(pare_attr *a)
{
    free(a->name);
    free(a->ref_attr_name);
    free(a->s.data);
    pare_tensor_free(a->t);
    pare__graph_free(a->g);
    free(a->floats);
    free(a->ints);
    if (a->strings) {
        for (size_t i = 0; i < a->n; i++)
            free(a->strings[i].data);
        free(a->strings);
    }
    if (a->tensors) {
        for (size_t i = 0; i < a->n; i++)
            pare_tensor_free(a->tensors[i]);
        free(a->tensors);
    }
    if (a->graphs) {
        for (size_t i = 0; i < a->n; i++)
            pare__graph_free(a->graphs[i]);
        free(a->graphs);
    }
    memset(a, 0, sizeof *a);
}

void pare__node_free(pare_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_attrs; i++)
        pare__attr_release(&n->attrs[i]);
    free(n->attrs);
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->doc);
    free(n->inputs);
    free(n->outputs);
    free(n);
}

void pare__graph_free(pare_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_nodes; i++)
        pare__node_free(g->nodes[i]);
    for (size_t i = 0; i < g->n_values; i++)
        value_free(g->values[i]);
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    index_free(g->index);
    free(g);
}

/* ---- lookups ---- */

pare_value *pare_graph_find_value(const pare_graph *g, const char *name)
{
    for (; g; g = g->parent) {
        pare_value *v = pare__graph_index_get(g, name);
        if (v)
            return v;
    }
    return NULL;
}

pare_node *pare_graph_find_node(const pare_graph *g, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

static bool domain_eq(const char *a, const char *b)
{
    if (!a || strcmp(a, "ai.onnx") == 0)
        a = "";
    if (!b || strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

bool pare_node_is(const pare_node *n, const char *domain, const char *op_type)
{
    return strcmp(n->op_type, op_type) == 0 && domain_eq(n->domain, domain);
}

const pare_attr *pare_node_attr(const pare_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t pare_node_attr_int(const pare_node *n, const char *name, int64_t dflt)
{
    const pare_attr *a = pare_node_attr(n, name);
    return a && a->type == PARE_ATTR_INT ? a->i : dflt;
}

float pare_node_attr_float(const pare_node *n, const char *name, float dflt)
{
    const pare_attr *a = pare_node_attr(n, name);
    return a && a->type == PARE_ATTR_FLOAT ? a->f : dflt;
}

const char *pare_node_attr_string(const pare_node *n, const char *name, const char *dflt)
{
    const pare_attr *a = pare_node_attr(n, name);
    return a && a->type == PARE_ATTR_STRING ? a->s.data : dflt;
}

size_t pare_node_attr_ints(const pare_node *n, const char *name, const int64_t **vals)
{
    const pare_attr *a = pare_node_attr(n, name);
    if (!a || a->type != PARE_ATTR_INTS) {
        *vals = NULL;
        return 0;
    }
    *vals = a->ints;
    return a->n;
}

size_t pare_node_attr_floats(const pare_node *n, const char *name, const float **vals)
{
    const pare_attr *a = pare_node_attr(n, name);
    if (!a || a->type != PARE_ATTR_FLOATS) {
        *vals = NULL;
        return 0;
    }
    *vals = a->floats;
    return a->n;
}

int64_t pare_node_opset(const pare_node *n)
{
    return pare_model_opset_version(n->graph->model, n->domain);
}

const char *pare_node_label(const pare_node *n, char *buf, size_t size)
{
    if (n->name && *n->name)
        snprintf(buf, size, "'%s' (%s)", n->name, n->op_type);
    else
        snprintf(buf, size, "#%zu (%s)", n->id, n->op_type);
    return buf;
}

int64_t pare_value_numel(const pare_value *v)
{
    if (v->init)
        return (int64_t)pare_tensor_numel(v->init);
    if (v->shape.rank < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < v->shape.rank; i++) {
        int64_t d = v->shape.dims[i].value;
        if (d < 0)
            return -1;
        if (d && n > INT64_MAX / d)
            return -1;
        n *= d;
    }
    return n;
}

/* ---- rewriting ---- */

const char *pare_graph_unique_name(const pare_graph *g, const char *hint, char *buf, size_t size)
{
    if (!hint || !*hint)
        hint = "v";
    snprintf(buf, size, "%s", hint);
    for (unsigned long k = 1; pare_graph_find_value(g, buf); k++)
        snprintf(buf, size, "%s_%lu", hint, k);
    return buf;
}

pare_status pare_graph_new_value(pare_graph *g, const char *name, const char *hint, int dtype,
                                 pare_value **out, pare_error *err)
{
    char buf[512];
    if (!name)
        name = pare_graph_unique_name(g, hint, buf, sizeof buf);
    else if (pare__graph_index_get(g, name))
        return pare_error_set(err, PARE_ERR_ARG, "value '%s' already exists", name);
    pare_status st = pare__value_new(g, name, out, err);
    if (st == PARE_OK) {
        (*out)->dtype = dtype;
        (*out)->dirty = true;
        g->dirty = true;
    }
    return st;
}

pare_status pare_value_set_tensor(pare_value *v, pare_tensor *t, pare_error *err)
{
    if (t->name == NULL || strcmp(t->name, v->name) != 0) {
        pare_status st = pare_tensor_set_name(t, v->name, err);
        if (st)
            return st;
    }
    if (v->init != t)
        pare_tensor_free(v->init);
    v->init = t;
    if (v->is_sparse_init)
        v->orig_init = NULL; /* it was a SparseTensorProto: saved from t now */
    v->is_sparse_init = false;
    v->dtype = t->dtype;
    pare_value_set_dims(v, t->dtype, t->rank, t->dims, err);
    v->dirty = true;
    v->graph->dirty = true;
    return PARE_OK;
}

pare_status pare_value_store_sparse(pare_value *v, bool sparse, pare_error *err)
{
    if (!v->init && !v->is_sparse_init)
        return pare_error_set(err, PARE_ERR_ARG, "value '%s' is not an initializer", v->name);
    if (v->is_sparse_init == sparse)
        return PARE_OK;
    /* densifies a loaded sparse initializer, so v->init holds the data */
    pare_error e;
    pare_tensor *t = pare_value_tensor(v, &e);
    if (!t)
        return pare_error_set(err, e.status, "%s", e.msg);
    if (sparse && (t->dtype == PARE_DT_STRING || pare_dtype_bits(t->dtype) < 8))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "initializer '%s': %s tensors cannot be stored sparse", v->name,
                              pare_dtype_name(t->dtype));
    /* the message it was read from is of the other kind: save from v->init
     * (whose data, when borrowed, stays valid: the model keeps that message) */
    v->orig_init = NULL;
    v->is_sparse_init = sparse;
    v->dirty = true;
    return PARE_OK;
}

pare_status pare_graph_add_initializer(pare_graph *g, pare_tensor *t, pare_value **out,
                                       pare_error *err)
{
    pare_value *v;
    pare_status st = pare_graph_new_value(g, NULL, t->name ? t->name : "init", t->dtype, &v, err);
    if (st)
        return st;
    if ((st = pare_value_set_tensor(v, t, err)))
        return st;
    if (out)
        *out = v;
    return PARE_OK;
}

pare_status pare_value_set_type(pare_value *v, int dtype, const pare_shape *shape, pare_error *err)
{
    pare_status st = pare__shape_copy(&v->shape, shape, err);
    if (st)
        return st;
    v->dtype = dtype;
    v->dirty = true;
    return PARE_OK;
}

pare_status pare_value_set_dims(pare_value *v, int dtype, int rank, const int64_t *dims,
                                pare_error *err)
{
    pare_shape s = {rank, NULL};
    if (rank > 0) {
        s.dims = calloc((size_t)rank, sizeof *s.dims);
        if (!s.dims)
            return PARE_NOMEM(err);
        for (int i = 0; i < rank; i++)
            s.dims[i].value = dims[i];
    }
    pare__shape_release(&v->shape);
    v->shape = s;
    v->dtype = dtype;
    v->dirty = true;
    return PARE_OK;
}

static pare_status node_link(pare_node *n, pare_error *err)
{
    for (size_t i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && pare__use_add(n->inputs[i], n, i, err))
            return PARE_ERR_NOMEM;
    return PARE_OK;
}

pare_status pare_graph_add_node(pare_graph *g, const char *name, const char *domain,
                                const char *op_type, pare_value *const *inputs, size_t n_inputs,
                                pare_value *const *outputs, size_t n_outputs, pare_node *before,
                                pare_node **out, pare_error *err)
{
    for (size_t i = 0; i < n_outputs; i++)
        if (outputs[i] && (outputs[i]->producer || outputs[i]->init || outputs[i]->is_input))
            return pare_error_set(err, PARE_ERR_ARG, "value '%s' already has a producer",
                                  outputs[i]->name);
    if (pare__grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return PARE_NOMEM(err);
    pare_node *n = calloc(1, sizeof *n);
    if (!n)
        return PARE_NOMEM(err);
    n->name = pare__strdup0(name);
    n->op_type = pare__strdup0(op_type);
    n->domain = pare__strdup0(domain && strcmp(domain, "ai.onnx") ? domain : "");
    n->inputs = calloc(n_inputs ? n_inputs : 1, sizeof *n->inputs);
    n->outputs = calloc(n_outputs ? n_outputs : 1, sizeof *n->outputs);
    if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs) {
        pare__node_free(n);
        return PARE_NOMEM(err);
    }
    n->graph = g;
    n->id = g->next_node_id++;
    n->dirty = true;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    if (n_inputs)
        memcpy(n->inputs, inputs, n_inputs * sizeof *inputs);
    if (n_outputs)
        memcpy(n->outputs, outputs, n_outputs * sizeof *outputs);
    if (node_link(n, err)) {
        for (size_t i = 0; i < n_inputs; i++)
            if (inputs[i])
                pare__use_del(inputs[i], n, i);
        pare__node_free(n);
        return PARE_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_outputs; i++) {
        if (outputs[i]) {
            outputs[i]->producer = n;
            outputs[i]->producer_output = i;
        }
    }
    size_t pos = g->n_nodes;
    if (before)
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i] == before) {
                pos = i;
                break;
            }
    memmove(&g->nodes[pos + 1], &g->nodes[pos], (g->n_nodes - pos) * sizeof *g->nodes);
    g->nodes[pos] = n;
    g->n_nodes++;
    g->dirty = true;
    if (out)
        *out = n;
    return PARE_OK;
}

pare_status pare_node_set_input(pare_node *n, size_t i, pare_value *v, pare_error *err)
{
    if (i >= n->n_inputs)
        return pare_error_set(err, PARE_ERR_ARG, "input %zu out of range", i);
    if (n->inputs[i] == v)
        return PARE_OK;
    if (v && pare__use_add(v, n, i, err))
        return PARE_ERR_NOMEM;
    if (n->inputs[i])
        pare__use_del(n->inputs[i], n, i);
    n->inputs[i] = v;
    n->dirty = true;
    n->graph->dirty = true;
    return PARE_OK;
}

pare_status pare_node_add_input(pare_node *n, pare_value *v, pare_error *err)
{
    pare_value **ni = realloc(n->inputs, (n->n_inputs + 1) * sizeof *ni);
    if (!ni)
        return PARE_NOMEM(err);
    n->inputs = ni;
    n->inputs[n->n_inputs] = NULL;
    n->n_inputs++;
    return pare_node_set_input(n, n->n_inputs - 1, v, err);
}

static pare_status attr_slot(pare_node *n, const char *name, pare_attr **out, pare_error *err)
{
    for (size_t i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            char *keep = n->attrs[i].name;
            n->attrs[i].name = NULL;
            pare__attr_release(&n->attrs[i]);
            n->attrs[i].name = keep;
            *out = &n->attrs[i];
            n->dirty = true;
            return PARE_OK;
        }
    }
    pare_attr *na = realloc(n->attrs, (n->n_attrs + 1) * sizeof *na);
    if (!na)
        return PARE_NOMEM(err);
    n->attrs = na;
    pare_attr *a = &n->attrs[n->n_attrs];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name)))
        return PARE_NOMEM(err);
    n->n_attrs++;
    n->dirty = true;
    *out = a;
    return PARE_OK;
}

pare_status pare_node_set_attr_int(pare_node *n, const char *name, int64_t v, pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st)
        return st;
    a->type = PARE_ATTR_INT;
    a->i = v;
    return PARE_OK;
}

pare_status pare_node_set_attr_float(pare_node *n, const char *name, float v, pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st)
        return st;
    a->type = PARE_ATTR_FLOAT;
    a->f = v;
    return PARE_OK;
}

pare_status pare_node_set_attr_string(pare_node *n, const char *name, const char *v,
                                      pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st)
        return st;
    a->type = PARE_ATTR_STRING;
    if (!(a->s.data = strdup(v)))
        return PARE_NOMEM(err);
    a->s.len = strlen(v);
    return PARE_OK;
}

pare_status pare_node_set_attr_ints(pare_node *n, const char *name, const int64_t *v, size_t count,
                                    pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st)
        return st;
    a->type = PARE_ATTR_INTS;
    a->ints = malloc((count ? count : 1) * sizeof *a->ints);
    if (!a->ints)
        return PARE_NOMEM(err);
    if (count)
        memcpy(a->ints, v, count * sizeof *v);
    a->n = count;
    return PARE_OK;
}

pare_status pare_node_set_attr_floats(pare_node *n, const char *name, const float *v,
                                      size_t count, pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st)
        return st;
    a->type = PARE_ATTR_FLOATS;
    a->floats = malloc((count ? count : 1) * sizeof *a->floats);
    if (!a->floats)
        return PARE_NOMEM(err);
    if (count)
        memcpy(a->floats, v, count * sizeof *v);
    a->n = count;
    return PARE_OK;
}

pare_status pare_node_set_attr_tensor(pare_node *n, const char *name, pare_tensor *t,
                                      pare_error *err)
{
    pare_attr *a;
    pare_status st = attr_slot(n, name, &a, err);
    if (st) {
        pare_tensor_free(t);
        return st;
    }
    a->type = PARE_ATTR_TENSOR;
    a->t = t;
    return PARE_OK;
}

pare_status pare_node_remove_attr(pare_node *n, const char *name, pare_error *err)
{
    (void)err;
    for (size_t i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            pare__attr_release(&n->attrs[i]);
            memmove(&n->attrs[i], &n->attrs[i + 1], (n->n_attrs - i - 1) * sizeof *n->attrs);
            n->n_attrs--;
            n->dirty = true;
            return PARE_OK;
        }
    }
    return PARE_OK;
}

pare_status pare_value_rename(pare_value *v, const char *name, pare_error *err)
{
    if (strcmp(v->name, name) == 0)
        return PARE_OK;
    if (pare__graph_index_get(v->graph, name))
        return pare_error_set(err, PARE_ERR_ARG, "value '%s' already exists", name);
    char *nn = strdup(name);
    if (!nn)
        return PARE_NOMEM(err);
    pare__graph_index_del(v->graph, v);
    free(v->name);
    v->name = nn;
    if (pare__graph_index_put(v->graph, v, err))
        return PARE_ERR_NOMEM;
    if (v->init)
        pare_tensor_set_name(v->init, name, err);
    v->dirty = true;
    for (size_t i = 0; i < v->n_uses; i++)
        v->uses[i].node->dirty = true;
    if (v->producer)
        v->producer->dirty = true;
    v->graph->dirty = true;
    return PARE_OK;
}

pare_status pare_value_replace_uses(pare_value *from, pare_value *to, pare_error *err)
{
    if (from == to)
        return PARE_OK;
    while (from->n_uses) {
        pare_use u = from->uses[from->n_uses - 1];
        pare_status st = pare_node_set_input(u.node, u.input, to, err);
        if (st)
            return st;
    }
    if (from->is_output) {
        pare_graph *g = from->graph;
        /* A graph output keeps its name: if `to` is an internal value, it takes
         * the name; otherwise an Identity keeps both. */
        bool to_named_elsewhere = to->is_input || to->is_output || to->init || to->graph != g;
        if (!to_named_elsewhere) {
            char *keep = strdup(from->name);
            char tmp[512];
            if (!keep)
                return PARE_NOMEM(err);
            pare_status st = pare_value_rename(from, pare_graph_unique_name(g, "__replaced", tmp,
                                                                             sizeof tmp), err);
            if (!st)
                st = pare_value_rename(to, keep, err);
            free(keep);
            if (st)
                return st;
            for (size_t i = 0; i < g->n_outputs; i++)
                if (g->outputs[i] == from)
                    g->outputs[i] = to;
            to->is_output = true;
            from->is_output = false;
            if (!to->shape_from_file && from->shape.rank >= 0) {
                pare__shape_copy(&to->shape, &from->shape, err);
                if (!to->dtype)
                    to->dtype = from->dtype;
            }
        } else {
            pare_node *id;
            pare_status st;
            /* from keeps its name but is produced by Identity(to). */
            if (from->producer) {
                pare_node *p = from->producer;
                p->outputs[from->producer_output] = NULL;
                from->producer = NULL;
                p->dirty = true;
            }
            st = pare_graph_add_node(g, "", "", "Identity", &to, 1, &from, 1, NULL, &id, err);
            if (st)
                return st;
        }
        g->dirty = true;
    }
    return PARE_OK;
}

/* Every node of sub (and deeper) stops reading any value, so that values of
 * enclosing scopes keep no use by a node about to be freed with sub. */
static void drop_subgraph_uses(pare_graph *sub)
{
    for (size_t i = 0; i < sub->n_nodes; i++) {
        pare_node *m = sub->nodes[i];
        for (size_t k = 0; k < m->n_inputs; k++)
            if (m->inputs[k]) {
                pare__use_del(m->inputs[k], m, k);
                m->inputs[k] = NULL;
            }
        for (size_t a = 0; a < m->n_attrs; a++) {
            if (m->attrs[a].g)
                drop_subgraph_uses(m->attrs[a].g);
            for (size_t j = 0; m->attrs[a].graphs && j < m->attrs[a].n; j++)
                drop_subgraph_uses(m->attrs[a].graphs[j]);
        }
    }
}

pare_status pare_graph_remove_node(pare_graph *g, pare_node *n, pare_error *err)
{
    (void)err;
    size_t pos = g->n_nodes;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == n) {
            pos = i;
            break;
        }
    if (pos == g->n_nodes)
        return pare_error_set(err, PARE_ERR_ARG, "node not in graph");
    for (size_t i = 0; i < n->n_inputs; i++)
        if (n->inputs[i])
            pare__use_del(n->inputs[i], n, i);
    for (size_t a = 0; a < n->n_attrs; a++) {
        if (n->attrs[a].g)
            drop_subgraph_uses(n->attrs[a].g);
        for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
            drop_subgraph_uses(n->attrs[a].graphs[j]);
    }
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && n->outputs[i]->producer == n)
            n->outputs[i]->producer = NULL;
    memmove(&g->nodes[pos], &g->nodes[pos + 1], (g->n_nodes - pos - 1) * sizeof *g->nodes);
    g->n_nodes--;
    g->dirty = true;
    pare__node_free(n);
    return PARE_OK;
}

pare_status pare_graph_bypass_node(pare_graph *g, pare_node *n, size_t in, pare_error *err)
{
    if (in >= n->n_inputs || !n->inputs[in] || n->n_outputs < 1 || !n->outputs[0])
        return pare_error_set(err, PARE_ERR_ARG, "cannot bypass node");
    pare_value *src = n->inputs[in];
    pare_value *dst = n->outputs[0];
    pare_status st = pare_value_replace_uses(dst, src, err);
    if (st)
        return st;
    /* replace_uses may have moved dst's name onto src or added an Identity
     * reading src; n itself now has no consumer of output 0. */
    return pare_graph_remove_node(g, n, err);
}

static pare_status list_add(pare_value ***arr, size_t *n, size_t *cap, pare_value *v,
                            pare_error *err)
{
    if (pare__grow((void **)arr, cap, *n + 1, sizeof **arr))
        return PARE_NOMEM(err);
    (*arr)[(*n)++] = v;
    return PARE_OK;
}

pare_status pare_graph_add_input(pare_graph *g, pare_value *v, pare_error *err)
{
    pare_status st = list_add(&g->inputs, &g->n_inputs, &g->cap_inputs, v, err);
    if (!st) {
        v->is_input = true;
        g->dirty = true;
    }
    return st;
}

pare_status pare_graph_add_output(pare_graph *g, pare_value *v, pare_error *err)
{
    pare_status st = list_add(&g->outputs, &g->n_outputs, &g->cap_outputs, v, err);
    if (!st) {
        v->is_output = true;
        g->dirty = true;
    }
    return st;
}

static void list_remove(pare_value **arr, size_t *n, size_t i)
{
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
    (*n)--;
}

pare_status pare_graph_remove_output(pare_graph *g, size_t i, pare_error *err)
{
    if (i >= g->n_outputs)
        return pare_error_set(err, PARE_ERR_ARG, "output %zu out of range", i);
    pare_value *v = g->outputs[i];
    list_remove(g->outputs, &g->n_outputs, i);
    v->is_output = false;
    for (size_t k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v)
            v->is_output = true;
    g->dirty = true;
    return PARE_OK;
}

pare_status pare_graph_remove_input(pare_graph *g, size_t i, pare_error *err)
{
    if (i >= g->n_inputs)
        return pare_error_set(err, PARE_ERR_ARG, "input %zu out of range", i);
    g->inputs[i]->is_input = false;
    list_remove(g->inputs, &g->n_inputs, i);
    g->dirty = true;
    return PARE_OK;
}

/* Values of outer scopes used inside n's subgraphs count as uses of n for
 * liveness; we collect them by walking the subgraph nodes. */
static bool value_used_anywhere(const pare_value *v)
{
    return v->n_uses > 0 || v->is_output;
}

pare_status pare_graph_remove_dead(pare_graph *g, size_t *removed, pare_error *err)
{
    size_t count = 0;
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t k = g->n_nodes; k-- > 0;) {
            pare_node *n = g->nodes[k];
            bool live = false;
            for (size_t o = 0; o < n->n_outputs && !live; o++)
                if (n->outputs[o] && value_used_anywhere(n->outputs[o]))
                    live = true;
            if (!live) {
                pare_status st = pare_graph_remove_node(g, n, err);
                if (st)
                    return st;
                count++;
                changed = true;
            }
        }
    }
    /* Drop unused values (initializers included); keep inputs and outputs. */
    size_t w = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        bool keep = v->is_input || v->is_output || v->n_uses || v->producer;
        if (keep) {
            v->id = w;
            g->values[w++] = v;
        } else {
            pare__graph_index_del(g, v);
            value_free(v);
            g->dirty = true;
        }
    }
    g->n_values = w;
    if (removed)
        *removed = count;
    return PARE_OK;
}

/* Values from enclosing scopes that n's subgraphs read. */
static void collect_outer_refs(const pare_graph *sub, const pare_graph *scope, pare_value ***acc,
                               size_t *n, size_t *cap)
{
    for (size_t i = 0; i < sub->n_nodes; i++) {
        const pare_node *m = sub->nodes[i];
        for (size_t k = 0; k < m->n_inputs; k++) {
            pare_value *v = m->inputs[k];
            if (v && v->graph == scope)
                if (!pare__grow((void **)acc, cap, *n + 1, sizeof **acc))
                    (*acc)[(*n)++] = v;
        }
        for (size_t a = 0; a < m->n_attrs; a++) {
            if (m->attrs[a].g)
                collect_outer_refs(m->attrs[a].g, scope, acc, n, cap);
            for (size_t j = 0; m->attrs[a].graphs && j < m->attrs[a].n; j++)
                collect_outer_refs(m->attrs[a].graphs[j], scope, acc, n, cap);
        }
    }
}

pare_status pare_graph_toposort(pare_graph *g, pare_error *err)
{
    size_t nn = g->n_nodes;
    if (nn == 0)
        return PARE_OK;
    /* index of each node in the current order via a temporary id map */
    size_t *pending = calloc(nn, sizeof *pending);
    pare_node **order = malloc(nn * sizeof *order);
    size_t *old_ids = malloc(nn * sizeof *old_ids);
    uint8_t *done = calloc(nn, 1);
    pare_status st = PARE_OK;
    if (!pending || !order || !old_ids || !done) {
        st = PARE_NOMEM(err);
        goto out;
    }
    for (size_t i = 0; i < nn; i++) {
        old_ids[i] = g->nodes[i]->id;
        g->nodes[i]->id = i;
    }
    /* pending[i]: number of distinct producer nodes (in g) that node i waits for. */
    for (size_t i = 0; i < nn; i++) {
        pare_node *n = g->nodes[i];
        pare_value **refs = NULL;
        size_t nr = 0, cr = 0;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && !pare__grow((void **)&refs, &cr, nr + 1, sizeof *refs))
                refs[nr++] = n->inputs[k];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g)
                collect_outer_refs(n->attrs[a].g, g, &refs, &nr, &cr);
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                collect_outer_refs(n->attrs[a].graphs[j], g, &refs, &nr, &cr);
        }
        for (size_t k = 0; k < nr; k++) {
            pare_node *p = refs[k]->producer;
            if (p && p->graph == g && p != n)
                pending[i]++;
        }
        free(refs);
    }
    /* Kahn's algorithm with a min-heap of ready positions, so the result keeps
     * the file order wherever the dependencies allow. */
    size_t *heap = malloc(nn * sizeof *heap), hn = 0;
    if (!heap) {
        st = PARE_NOMEM(err);
        goto restore;
    }
#define HEAP_PUSH(x)                                                                           \
    do {                                                                                       \
        size_t c_ = hn++;                                                                      \
        heap[c_] = (x);                                                                        \
        while (c_ && heap[(c_ - 1) / 2] > heap[c_]) {                                          \
            size_t t_ = heap[c_];                                                              \
            heap[c_] = heap[(c_ - 1) / 2];                                                     \
            heap[(c_ - 1) / 2] = t_;                                                           \
            c_ = (c_ - 1) / 2;                                                                 \
        }                                                                                      \
    } while (0)
    for (size_t i = 0; i < nn; i++)
        if (pending[i] == 0)
            HEAP_PUSH(i);
    size_t placed = 0;
    while (hn) {
        size_t pick = heap[0];
        heap[0] = heap[--hn];
        for (size_t c = 0;;) {
            size_t l = 2 * c + 1, r = l + 1, m = c;
            if (l < hn && heap[l] < heap[m])
                m = l;
            if (r < hn && heap[r] < heap[m])
                m = r;
            if (m == c)
                break;
            size_t t = heap[c];
            heap[c] = heap[m];
            heap[m] = t;
            c = m;
        }
        pare_node *n = g->nodes[pick];
        done[pick] = 1;
        order[placed++] = n;
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = n->outputs[o];
            if (!v || v->producer != n)
                continue;
            for (size_t u = 0; u < v->n_uses; u++) {
                pare_node *c = v->uses[u].node;
                while (c && c->graph != g)
                    c = c->graph->owner;
                if (c && c != n && pending[c->id] && --pending[c->id] == 0)
                    HEAP_PUSH(c->id);
            }
        }
    }
#undef HEAP_PUSH
    free(heap);
    if (placed < nn) {
        size_t i = 0;
        while (done[i])
            i++;
        char lbl[300];
        st = pare_error_set(err, PARE_ERR_INVALID, "the graph has a cycle through node %s",
                            pare_node_label(g->nodes[i], lbl, sizeof lbl));
        goto restore;
    }
    memcpy(g->nodes, order, nn * sizeof *order);
    for (size_t i = 0; i < nn; i++)
        g->nodes[i]->id = old_ids[order[i]->id];
    goto out;
restore:
    for (size_t i = 0; i < nn; i++)
        g->nodes[i]->id = old_ids[i];
out:
    free(pending);
    free(order);
    free(old_ids);
    free(done);
    return st;
}

void pare_graph_walk(pare_graph *g, void (*fn)(pare_graph *, void *), void *ctx)
{
    fn(g, ctx);
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g)
                pare_graph_walk(n->attrs[a].g, fn, ctx);
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                pare_graph_walk(n->attrs[a].graphs[j], fn, ctx);
        }
    }
}
