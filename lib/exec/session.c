/* The executor: plans kernels per node, runs graphs (and subgraphs for
 * control flow), frees each intermediate after its last use, and lays the
 * main graph's intermediates out in one arena by liveness once the sizes of a
 * set of input shapes are known. */
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "exec/kernel.h"

typedef struct gplan {
    const pare_graph *g;
    size_t n;
    pare_node **order;        /* the graph's nodes, topologically sorted */
    const pare_kernel **k;
    void **state;
    int64_t *opset;
    size_t *last_use;         /* per value id: position of last reading node (or SIZE_MAX) */
    struct gplan *next;       /* list of all plans of the session */
} gplan;

/* one arena slot per (main graph) value, from a recorded run */
typedef struct slot {
    size_t offset, size;
} slot;

struct pare_session {
    pare_model *m;
    pare_graph *g;
    pare_threadpool *pool;
    gplan *plans;
    gplan *main;
    pare_value **inputs;      /* inputs needing data */
    size_t n_inputs;
    pare_observer_fn observer;
    void *observer_ctx;
    bool keep_all;
    /* arena */
    int64_t *planned_dims;    /* concatenated input dims of the current plan */
    size_t n_planned_dims;
    bool have_plan;
    bool recording;
    size_t *rec_size;         /* per value id: bytes seen in the recording run */
    slot *slots;
    uint8_t *arena;
    size_t arena_size;
    char *signature;
};

typedef struct frame {
    pare_session *s;
    gplan *p;
    pare_tensor **vals;       /* per value id; NULL: not computed */
    uint8_t *owned;           /* 1: vals[i] is freed by the frame (heap); 2: arena view */
    struct frame *parent;
    size_t pos;               /* node being run */
} frame;

static pare_status plan_graph(pare_session *s, const pare_graph *g, gplan **out, pare_error *err);

static gplan *find_plan(pare_session *s, const pare_graph *g)
{
    for (gplan *p = s->plans; p; p = p->next)
        if (p->g == g)
            return p;
    return NULL;
}

static void gplan_free(gplan *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->k[i] && p->k[i]->release && p->state[i])
            p->k[i]->release(p->state[i]);
    free(p->order);
    free(p->k);
    free(p->state);
    free(p->opset);
    free(p->last_use);
    free(p);
}

/* the node of g that (directly or through a subgraph) holds node n */
static const pare_node *top_node(const pare_graph *g, const pare_node *n)
{
    while (n && n->graph != g)
        n = n->graph->owner;
    return n;
}

static pare_status plan_graph(pare_session *s, const pare_graph *g, gplan **out, pare_error *err)
{
    gplan *p = find_plan(s, g);
    if (p) {
        *out = p;
        return PARE_OK;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return PARE_NOMEM(err);
    p->g = g;
    p->n = g->n_nodes;
    size_t nn = p->n ? p->n : 1;
    p->order = malloc(nn * sizeof *p->order);
    p->k = calloc(nn, sizeof *p->k);
    p->state = calloc(nn, sizeof *p->state);
    p->opset = calloc(nn, sizeof *p->opset);
    p->last_use = malloc((g->n_values ? g->n_values : 1) * sizeof *p->last_use);
    if (!p->order || !p->k || !p->state || !p->opset || !p->last_use) {
        gplan_free(p);
        return PARE_NOMEM(err);
    }
    p->next = s->plans;
    s->plans = p;
    if (p->n)
        memcpy(p->order, g->nodes, p->n * sizeof *p->order);
    for (size_t i = 0; i < g->n_values; i++)
        p->last_use[i] = SIZE_MAX;
    /* positions, for liveness */
    for (size_t i = 0; i < p->n; i++)
        p->order[i]->user = (void *)(uintptr_t)i;
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        size_t last = SIZE_MAX;
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *t = top_node(g, v->uses[u].node);
            if (!t)
                continue;
            size_t pos = (size_t)(uintptr_t)t->user;
            if (last == SIZE_MAX || pos > last)
                last = pos;
        }
        p->last_use[i] = last;
    }
    char lbl[300];
    for (size_t i = 0; i < p->n; i++) {
        pare_node *n = p->order[i];
        int64_t opset = pare_node_opset(n);
        const pare_kernel *k = pare_kernel_find(n->domain, n->op_type, opset);
        if (!k)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "node %s: no kernel for %s in domain '%s' at opset %lld",
                                  pare_node_label(n, lbl, sizeof lbl), n->op_type,
                                  n->domain[0] ? n->domain : "ai.onnx", (long long)opset);
        p->k[i] = k;
        p->opset[i] = opset;
        if (k->init) {
            pare_status st = k->init(n, opset, &p->state[i], err);
            if (st)
                return pare_error_prefix(err, "node %s", pare_node_label(n, lbl, sizeof lbl));
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            pare_status st;
            gplan *sub;
            if (n->attrs[a].g && (st = plan_graph(s, n->attrs[a].g, &sub, err)))
                return st;
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                if ((st = plan_graph(s, n->attrs[a].graphs[j], &sub, err)))
                    return st;
        }
    }
    *out = p;
    return PARE_OK;
}

pare_status pare_session_new(pare_model *m, const pare_session_opts *opts, pare_session **out,
                             pare_error *err)
{
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    if (opts)
        o = *opts;
    *out = NULL;
    if (o.device && strcmp(o.device, "cpu") != 0 && strcmp(o.device, "auto") != 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "device '%s' is not available in this build", o.device);
    pare_session *s = calloc(1, sizeof *s);
    if (!s)
        return PARE_NOMEM(err);
    s->m = m;
    s->g = pare_model_graph(m);
    s->keep_all = o.keep_all;
    pare_status st = pare_graph_toposort(s->g, err);
    if (st)
        goto fail;
    s->pool = pare_threadpool_new(o.threads);
    if (!s->pool) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    s->inputs = malloc((s->g->n_inputs ? s->g->n_inputs : 1) * sizeof *s->inputs);
    if (!s->inputs) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    for (size_t i = 0; i < s->g->n_inputs; i++)
        if (!s->g->inputs[i]->init)
            s->inputs[s->n_inputs++] = s->g->inputs[i];
    /* densify sparse initializers up front */
    for (size_t i = 0; i < s->g->n_values; i++)
        if (s->g->values[i]->is_sparse_init && !pare_value_tensor(s->g->values[i], err)) {
            st = err->status;
            goto fail;
        }
    if ((st = plan_graph(s, s->g, &s->main, err)))
        goto fail;
    *out = s;
    return PARE_OK;
fail:
    pare_session_free(s);
    return st;
}

void pare_session_free(pare_session *s)
{
    if (!s)
        return;
    for (gplan *p = s->plans, *nx; p; p = nx) {
        nx = p->next;
        gplan_free(p);
    }
    pare_threadpool_free(s->pool);
    free(s->inputs);
    free(s->planned_dims);
    free(s->rec_size);
    free(s->slots);
    free(s->arena);
    free(s->signature);
    free(s);
}

size_t pare_session_input_count(const pare_session *s)
{
    return s->n_inputs;
}
const pare_value *pare_session_input(const pare_session *s, size_t i)
{
    return s->inputs[i];
}
size_t pare_session_output_count(const pare_session *s)
{
    return s->g->n_outputs;
}
const pare_value *pare_session_output(const pare_session *s, size_t i)
{
    return s->g->outputs[i];
}
void pare_session_set_observer(pare_session *s, pare_observer_fn fn, void *ctx)
{
    s->observer = fn;
    s->observer_ctx = ctx;
}
size_t pare_session_arena_bytes(const pare_session *s)
{
    return s->have_plan ? s->arena_size : 0;
}

static void shape_str(const pare_value *v, char *buf, size_t size)
{
    size_t off = 0;
    if (v->shape.rank < 0) {
        snprintf(buf, size, "[?]");
        return;
    }
    off += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < v->shape.rank && off < size; i++) {
        const pare_dim *d = &v->shape.dims[i];
        if (d->value >= 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%lld", i ? "," : "",
                                    (long long)d->value);
        else
            off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                    d->param ? d->param : "?");
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

const char *pare_session_signature(pare_session *s)
{
    if (s->signature)
        return s->signature;
    size_t cap = 256 + s->n_inputs * 320, off = 0;
    char *b = malloc(cap);
    if (!b)
        return "(out of memory)";
    b[0] = 0;
    for (size_t i = 0; i < s->n_inputs && off < cap; i++) {
        char sh[256];
        shape_str(s->inputs[i], sh, sizeof sh);
        off += (size_t)snprintf(b + off, cap - off, "%s'%s' %s %s", i ? ", " : "",
                                s->inputs[i]->name, pare_dtype_name(s->inputs[i]->dtype), sh);
    }
    if (s->n_inputs == 0)
        snprintf(b, cap, "(no inputs)");
    s->signature = b;
    return b;
}

char *pare_session_plan_text(pare_session *s)
{
    size_t cap = 1024, off = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    b[0] = 0;
    char lbl[300];
    for (size_t i = 0; i < s->main->n; i++) {
        const pare_node *n = s->main->order[i];
        char line[512];
        int w = snprintf(line, sizeof line, "%-40s cpu  %s opset %lld\n",
                         pare_node_label(n, lbl, sizeof lbl), n->op_type,
                         (long long)s->main->opset[i]);
        if (w < 0)
            continue;
        if (off + (size_t)w + 1 > cap) {
            while (off + (size_t)w + 1 > cap)
                cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
        }
        memcpy(b + off, line, (size_t)w + 1);
        off += (size_t)w;
    }
    return b;
}

/* ---- running ---- */

static pare_tensor *lookup(frame *f, const pare_value *v)
{
    for (frame *x = f; x; x = x->parent) {
        if (x->p->g == v->graph) {
            pare_tensor *t = x->vals[v->id];
            if (t || !v->init)
                return t;
            return v->init;
        }
    }
    return v->init;
}

/* a subgraph output with no producer stands for an outer value of that name */
static pare_tensor *lookup_output(frame *f, const pare_value *v)
{
    pare_tensor *t = lookup(f, v);
    if (t || v->producer || v->is_input)
        return t;
    for (frame *x = f->parent; x; x = x->parent) {
        const pare_value *o = pare_graph_find_value(x->p->g, v->name);
        if (o && o != v)
            return lookup(x, o);
    }
    return NULL;
}

typedef struct kctx_ext {
    pare_kctx k;
    frame *f;
    pare_node *node;
    pare_tensor **scratch;  /* outputs omitted in the node */
    size_t n_scratch;
} kctx_ext;

static pare_status alloc_out(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                             pare_tensor **out, pare_error *err)
{
    kctx_ext *x = (kctx_ext *)k;
    frame *f = x->f;
    pare_session *s = f->s;
    if (i >= k->n_out)
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu does not exist", i);
    pare_value *v = x->node->outputs[i];
    if (v && f->vals[v->id])
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu allocated twice", i);
    pare_tensor *t = NULL;
    pare_status st;
    bool from_arena = false;
    if (v && f->p == s->main && s->have_plan && dtype != PARE_DT_STRING) {
        uint64_t n;
        size_t need;
        if (pare_shape_numel(rank, dims, &n, err))
            return err->status;
        need = pare_dtype_nbytes(dtype, n);
        slot *sl = &s->slots[v->id];
        if (need != SIZE_MAX && sl->size >= need && need > 0) {
            st = pare_tensor_wrap(v->name, dtype, rank, dims, s->arena + sl->offset, need, &t,
                                  err);
            if (st)
                return st;
            from_arena = true;
        }
    }
    if (!t) {
        st = pare_tensor_new(v ? v->name : NULL, dtype, rank, dims, &t, err);
        if (st)
            return st;
    }
    if (v) {
        f->vals[v->id] = t;
        f->owned[v->id] = from_arena ? 2 : 1;
        if (s->recording && f->p == s->main && dtype != PARE_DT_STRING)
            s->rec_size[v->id] = t->nbytes;
    } else {
        pare_tensor **ns = realloc(x->scratch, (x->n_scratch + 1) * sizeof *ns);
        if (!ns) {
            pare_tensor_free(t);
            return PARE_NOMEM(err);
        }
        x->scratch = ns;
        x->scratch[x->n_scratch++] = t;
    }
    *out = t;
    return PARE_OK;
}

static void frame_release(frame *f, size_t id)
{
    if (f->owned[id])
        pare_tensor_free(f->vals[id]);
    f->vals[id] = NULL;
    f->owned[id] = 0;
}

static pare_status exec_graph(pare_session *s, gplan *p, frame *parent,
                              const pare_tensor *const *inputs, size_t n_inputs,
                              pare_tensor ***outs, size_t *n_outs, pare_error *err);

static pare_status run_graph_cb(pare_kctx *k, const pare_graph *g, const pare_tensor *const *inputs,
                                size_t n_inputs, pare_tensor ***outputs, size_t *n_outputs,
                                pare_error *err)
{
    kctx_ext *x = (kctx_ext *)k;
    gplan *p = find_plan(x->f->s, g);
    if (!p)
        return pare_error_set(err, PARE_ERR_INVALID, "subgraph was not planned");
    return exec_graph(x->f->s, p, x->f, inputs, n_inputs, outputs, n_outputs, err);
}

static pare_status exec_graph(pare_session *s, gplan *p, frame *parent,
                              const pare_tensor *const *inputs, size_t n_inputs,
                              pare_tensor ***outs, size_t *n_outs, pare_error *err)
{
    const pare_graph *g = p->g;
    frame f = {s, p, NULL, NULL, parent, 0};
    size_t nv = g->n_values ? g->n_values : 1;
    f.vals = calloc(nv, sizeof *f.vals);
    f.owned = calloc(nv, 1);
    pare_tensor **results = NULL;
    pare_status st = PARE_OK;
    char lbl[300];
    if (!f.vals || !f.owned) {
        st = PARE_NOMEM(err);
        goto out;
    }
    /* bind inputs (views; the caller keeps ownership) */
    size_t bound = 0;
    for (size_t i = 0; i < g->n_inputs && bound < n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (parent == NULL && v->init)
            continue; /* main graph: fed inputs exclude initializers, bound below */
        f.vals[v->id] = (pare_tensor *)inputs[bound++];
    }
    if (parent == NULL) {
        /* main graph: inputs arrive in session order, already matched */
    }
    for (size_t i = 0; i < p->n; i++) {
        pare_node *n = p->order[i];
        f.pos = i;
        kctx_ext x;
        memset(&x, 0, sizeof x);
        const pare_tensor *inbuf[16];
        const pare_tensor **ins = n->n_inputs <= 16 ? inbuf : malloc(n->n_inputs * sizeof *ins);
        if (!ins) {
            st = PARE_NOMEM(err);
            goto out;
        }
        for (size_t k = 0; k < n->n_inputs; k++) {
            ins[k] = n->inputs[k] ? lookup(&f, n->inputs[k]) : NULL;
            if (n->inputs[k] && !ins[k] && n->inputs[k]->producer == NULL &&
                !n->inputs[k]->is_input) {
                if (ins != inbuf)
                    free(ins);
                st = pare_error_set(err, PARE_ERR_INVALID, "node %s: input '%s' has no value",
                                    pare_node_label(n, lbl, sizeof lbl), n->inputs[k]->name);
                goto out;
            }
        }
        x.k.node = n;
        x.k.opset = p->opset[i];
        x.k.in = ins;
        x.k.n_in = n->n_inputs;
        x.k.n_out = n->n_outputs;
        x.k.state = p->state[i];
        x.k.pool = s->pool;
        x.k.alloc_out = alloc_out;
        x.k.run_graph = run_graph_cb;
        x.k.exec = &f;
        x.f = &f;
        x.node = n;
        st = p->k[i]->run(&x.k, err);
        if (ins != inbuf)
            free(ins);
        for (size_t k = 0; k < x.n_scratch; k++)
            pare_tensor_free(x.scratch[k]);
        free(x.scratch);
        if (st) {
            pare_error_prefix(err, "node %s", pare_node_label(n, lbl, sizeof lbl));
            goto out;
        }
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = n->outputs[o];
            if (v && !f.vals[v->id]) {
                st = pare_error_set(err, PARE_ERR_RUNTIME, "node %s: output %zu was not produced",
                                    pare_node_label(n, lbl, sizeof lbl), o);
                goto out;
            }
        }
        if (parent == NULL && s->observer) {
            for (size_t o = 0; o < n->n_outputs; o++) {
                pare_value *v = n->outputs[o];
                if (v && s->observer(s->observer_ctx, n, o, f.vals[v->id])) {
                    st = pare_error_set(err, PARE_ERR_RUNTIME, "stopped by the observer at node %s",
                                        pare_node_label(n, lbl, sizeof lbl));
                    goto out;
                }
            }
        }
        if (!s->keep_all) {
            /* free inputs whose last reader was this node */
            for (size_t k = 0; k < n->n_inputs; k++) {
                pare_value *v = n->inputs[k];
                if (v && v->graph == g && !v->is_output && p->last_use[v->id] == i &&
                    f.vals[v->id])
                    frame_release(&f, v->id);
            }
            /* outputs nobody reads */
            for (size_t o = 0; o < n->n_outputs; o++) {
                pare_value *v = n->outputs[o];
                if (v && !v->is_output && p->last_use[v->id] == SIZE_MAX)
                    frame_release(&f, v->id);
            }
        }
    }
    results = calloc(g->n_outputs ? g->n_outputs : 1, sizeof *results);
    if (!results) {
        st = PARE_NOMEM(err);
        goto out;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        pare_value *v = g->outputs[i];
        pare_tensor *t = lookup_output(&f, v);
        if (!t) {
            st = pare_error_set(err, PARE_ERR_RUNTIME, "graph output '%s' was not computed",
                                v->name);
            goto out;
        }
        if (v->graph == g && f.owned[v->id] == 1 && f.vals[v->id] == t) {
            /* hand the heap tensor over; the same value may be listed twice */
            bool later = false;
            for (size_t j = i + 1; j < g->n_outputs; j++)
                if (g->outputs[j] == v)
                    later = true;
            if (!later) {
                results[i] = t;
                f.vals[v->id] = NULL;
                f.owned[v->id] = 0;
                if (pare_tensor_set_name(t, v->name, err)) {
                    st = err->status;
                    goto out;
                }
                continue;
            }
        }
        if ((st = pare_tensor_clone(t, &results[i], err)))
            goto out;
        if ((st = pare_tensor_set_name(results[i], v->name, err)))
            goto out;
    }
    *outs = results;
    *n_outs = g->n_outputs;
    results = NULL;
out:
    if (results)
        pare_tensors_free(results, g->n_outputs);
    if (f.vals) {
        for (size_t i = 0; i < g->n_values; i++)
            if (f.owned[i])
                pare_tensor_free(f.vals[i]);
    }
    free(f.vals);
    free(f.owned);
    return st;
}

/* ---- arena planning from a recorded run ---- */

typedef struct live {
    size_t id, first, last, size;
} live;

static int cmp_size_desc(const void *a, const void *b)
{
    const live *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static pare_status build_arena(pare_session *s, pare_error *err)
{
    gplan *p = s->main;
    const pare_graph *g = p->g;
    live *ls = malloc((g->n_values ? g->n_values : 1) * sizeof *ls);
    if (!ls)
        return PARE_NOMEM(err);
    size_t n = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        if (!v->producer || !s->rec_size[i] || v->is_output)
            continue;
        size_t first = (size_t)(uintptr_t)v->producer->user;
        size_t last = p->last_use[i] == SIZE_MAX ? first : p->last_use[i];
        ls[n].id = i;
        ls[n].first = first;
        ls[n].last = last;
        ls[n].size = (s->rec_size[i] + 63) & ~(size_t)63;
        n++;
    }
    qsort(ls, n, sizeof *ls, cmp_size_desc);
    /* greedy by size: place each at the lowest offset that does not overlap a
     * placed buffer whose lifetime intersects */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (size_t j = 0; j < i; j++) {
                if (ls[j].last < ls[i].first || ls[i].last < ls[j].first)
                    continue;
                size_t a = s->slots[ls[j].id].offset, b = a + ls[j].size;
                if (off < b && a < off + ls[i].size) {
                    off = b;
                    moved = true;
                }
            }
        }
        s->slots[ls[i].id].offset = off;
        s->slots[ls[i].id].size = ls[i].size;
        if (off + ls[i].size > total)
            total = off + ls[i].size;
    }
    free(ls);
    free(s->arena);
    s->arena = total ? aligned_alloc(64, total) : NULL;
    if (total && !s->arena)
        return PARE_NOMEM(err);
    s->arena_size = total;
    return PARE_OK;
}

static pare_status match_inputs(pare_session *s, pare_tensor *const *inputs, size_t n_inputs,
                                const pare_tensor **bound, pare_error *err)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        bound[i] = NULL;
    for (size_t k = 0; k < n_inputs; k++) {
        const pare_tensor *t = inputs[k];
        size_t slot_i = SIZE_MAX;
        if (t->name && *t->name) {
            for (size_t i = 0; i < s->n_inputs; i++)
                if (strcmp(s->inputs[i]->name, t->name) == 0)
                    slot_i = i;
            if (slot_i == SIZE_MAX)
                return pare_error_set(err, PARE_ERR_ARG, "no model input named '%s'; the model "
                                      "expects %s", t->name, pare_session_signature(s));
        } else {
            slot_i = k;
        }
        if (slot_i >= s->n_inputs)
            return pare_error_set(err, PARE_ERR_ARG, "too many inputs (%zu); the model expects "
                                  "%s", n_inputs, pare_session_signature(s));
        if (bound[slot_i])
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' given twice",
                                  s->inputs[slot_i]->name);
        const pare_value *v = s->inputs[slot_i];
        if (v->dtype && v->dtype != t->dtype)
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' is %s, the model expects %s "
                                  "(signature: %s)", v->name, pare_dtype_name(t->dtype),
                                  pare_dtype_name(v->dtype), pare_session_signature(s));
        if (v->shape.rank >= 0) {
            if (v->shape.rank != t->rank)
                return pare_error_set(err, PARE_ERR_ARG, "input '%s' has rank %d, the model "
                                      "expects rank %d (signature: %s)", v->name, t->rank,
                                      v->shape.rank, pare_session_signature(s));
            for (int d = 0; d < t->rank; d++)
                if (v->shape.dims[d].value >= 0 && v->shape.dims[d].value != t->dims[d])
                    return pare_error_set(err, PARE_ERR_ARG, "input '%s' dim %d is %lld, the "
                                          "model expects %lld (signature: %s)", v->name, d,
                                          (long long)t->dims[d],
                                          (long long)v->shape.dims[d].value,
                                          pare_session_signature(s));
        }
        bound[slot_i] = t;
    }
    for (size_t i = 0; i < s->n_inputs; i++)
        if (!bound[i])
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' is missing; the model expects "
                                  "%s", s->inputs[i]->name, pare_session_signature(s));
    return PARE_OK;
}

static bool same_plan_shapes(pare_session *s, const pare_tensor **bound)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (k >= s->n_planned_dims || s->planned_dims[k++] != bound[i]->rank)
            return false;
        for (int d = 0; d < bound[i]->rank; d++)
            if (k >= s->n_planned_dims || s->planned_dims[k++] != bound[i]->dims[d])
                return false;
    }
    return k == s->n_planned_dims;
}

static pare_status remember_shapes(pare_session *s, const pare_tensor **bound, pare_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_inputs; i++)
        n += 1 + (size_t)bound[i]->rank;
    int64_t *d = malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return PARE_NOMEM(err);
    size_t k = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        d[k++] = bound[i]->rank;
        for (int j = 0; j < bound[i]->rank; j++)
            d[k++] = bound[i]->dims[j];
    }
    free(s->planned_dims);
    s->planned_dims = d;
    s->n_planned_dims = n;
    return PARE_OK;
}

pare_status pare_session_run(pare_session *s, pare_tensor *const *inputs, size_t n_inputs,
                             pare_tensor ***outputs, size_t *n_outputs, pare_error *err)
{
    const pare_tensor *bound_buf[8];
    const pare_tensor **bound = s->n_inputs <= 8 ? bound_buf
                                                 : malloc(s->n_inputs * sizeof *bound);
    if (!bound)
        return PARE_NOMEM(err);
    pare_status st = match_inputs(s, inputs, n_inputs, bound, err);
    if (st)
        goto out;
    bool same = s->planned_dims && same_plan_shapes(s, bound);
    if (!same) {
        /* new shapes: this run records sizes; the next one uses the arena */
        s->have_plan = false;
        free(s->rec_size);
        s->rec_size = calloc(s->g->n_values ? s->g->n_values : 1, sizeof *s->rec_size);
        free(s->slots);
        s->slots = calloc(s->g->n_values ? s->g->n_values : 1, sizeof *s->slots);
        if (!s->rec_size || !s->slots) {
            st = PARE_NOMEM(err);
            goto out;
        }
        s->recording = !s->keep_all;
        if ((st = remember_shapes(s, bound, err)))
            goto out;
    }
    st = exec_graph(s, s->main, NULL, bound, s->n_inputs, outputs, n_outputs, err);
    if (!st && s->recording) {
        s->recording = false;
        if ((st = build_arena(s, err)))
            goto out;
        s->have_plan = true;
    }
out:
    s->recording = false;
    if (bound != bound_buf)
        free(bound);
    return st;
}
