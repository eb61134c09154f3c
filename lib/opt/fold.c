/* Constant folding: nodes whose inputs are all constant run once through
 * the executor's kernels (the same records a session plans with) and their
 * results become initializers.
 *
 * Each graph is walked in topological order, so a chain of constant nodes
 * folds in one pass; only results that a node outside the folded set reads
 * are kept (intermediates of a chain vanish). A result larger than the cap
 * and larger than the node's inputs is refused already when the kernel asks
 * for its buffer, so a Tile or Expand of a small constant never allocates
 * more than the cap. Nodes with randomness, control flow, non-tensor values
 * and DequantizeLinear (folding it would undo weight quantization) are left
 * alone. */
#include <stdio.h>
#include <inttypes.h>
#include "opt/opt_int.h"
#include "exec/kernel.h"

/* what a result may take when no cap is asked for: a protobuf message's limit */
#define FOLD_HARD_LIMIT ((uint64_t)2 << 30)

typedef struct fold_run {
    pare_kctx k;
    pare_tensor **outs;
    size_t n_out;
    uint64_t limit;      /* most bytes all outputs together may take */
    uint64_t used;
    bool over;           /* an allocation was refused for the limit */
} fold_run;

static pare_status fold_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                              pare_tensor **out, pare_error *err)
{
    fold_run *f = (fold_run *)k;
    if (i >= f->n_out)
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu does not exist", i);
    if (f->outs[i])
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu allocated twice", i);
    uint64_t n;
    pare_status st = pare_shape_numel(rank, dims, &n, err);
    if (st)
        return st;
    size_t bytes = pare_dtype_nbytes(dtype, n);
    if (bytes == SIZE_MAX || (uint64_t)bytes > f->limit - f->used) {
        f->over = true;
        return pare_error_set(err, PARE_ERR_LIMIT, "result larger than %" PRIu64 " bytes",
                              f->limit);
    }
    f->used += bytes;
    if ((st = pare_tensor_new(NULL, dtype, rank, dims, &f->outs[i], err)))
        return st;
    *out = f->outs[i];
    return PARE_OK;
}

static pare_status fold_no_graph(pare_kctx *k, const pare_graph *g,
                                 const pare_tensor *const *inputs, size_t n_inputs,
                                 pare_tensor ***outputs, size_t *n_outputs, pare_error *err)
{
    (void)k, (void)g, (void)inputs, (void)n_inputs, (void)outputs, (void)n_outputs;
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "subgraphs are not folded");
}

static bool has_graph_attr(const pare_node *n)
{
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == PARE_ATTR_GRAPH || n->attrs[a].type == PARE_ATTR_GRAPHS)
            return true;
    return false;
}

static bool never_fold(const pare_node *n)
{
    static const char *const deny[] = {
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
        "Bernoulli", "Dropout", "DequantizeLinear", "Identity", "If", "Loop", "Scan",
        "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalHasElement",
        "OptionalGetElement",
    };
    for (size_t i = 0; i < sizeof deny / sizeof *deny; i++)
        if (strcmp(n->op_type, deny[i]) == 0)
            return true;
    if (strncmp(n->op_type, "Sequence", 8) == 0 || strncmp(n->op_type, "Random", 6) == 0)
        return true;
    if (has_graph_attr(n))
        return true;
    for (size_t o = 0; o < n->n_outputs; o++)
        if (n->outputs[o] && n->outputs[o]->elem_kind != 0)
            return true;
    return false;
}

typedef struct gfold {
    pare_graph *g;
    pare_tensor **val;   /* per value id of g: computed result */
    uint8_t *folded;     /* per node id */
    size_t n_folded;
} gfold;

static const pare_tensor *const_input(gfold *f, pare_value *v)
{
    if (opt_is_const(v)) {
        pare_error e;
        return pare_value_tensor(v, &e);
    }
    if (v->graph == f->g && v->id < f->g->n_values && f->val[v->id])
        return f->val[v->id];
    return NULL;
}

/* Tries to fold n; on success its results are in f->val. */
static pare_status try_fold(gfold *f, pare_node *n, uint64_t cap, pare_threadpool *pool,
                            char **notes, pare_error *err)
{
    char lbl[300];
    const pare_tensor *inbuf[16];
    const pare_tensor **ins = inbuf;
    pare_status st = PARE_OK;
    uint64_t inbytes = 0;
    if (n->n_inputs > 16 && !(ins = malloc(n->n_inputs * sizeof *ins)))
        return PARE_NOMEM(err);
    for (size_t k = 0; k < n->n_inputs; k++) {
        ins[k] = NULL;
        if (!n->inputs[k])
            continue;
        if (!(ins[k] = const_input(f, n->inputs[k])))
            goto out; /* not constant */
        inbytes += ins[k]->nbytes;
    }
    if (n->n_inputs == 0 && !pare_node_is(n, "", "Constant"))
        goto out;
    int64_t opset = pare_node_opset(n);
    const pare_kernel *kr = pare_kernel_find(n->domain, n->op_type, opset);
    if (!kr) {
        st = opt_note(notes, err, "node %s: not folded: no kernel at opset %" PRId64,
                      pare_node_label(n, lbl, sizeof lbl), opset);
        goto out;
    }
    fold_run r;
    memset(&r, 0, sizeof r);
    r.n_out = n->n_outputs;
    r.outs = calloc(r.n_out ? r.n_out : 1, sizeof *r.outs);
    if (!r.outs) {
        st = PARE_NOMEM(err);
        goto out;
    }
    /* a Constant only moves its bytes from the node to an initializer */
    if (pare_node_is(n, "", "Constant"))
        r.limit = FOLD_HARD_LIMIT;
    else
        r.limit = cap > inbytes ? cap : inbytes;
    void *state = NULL;
    pare_error kerr;
    pare_status kst = kr->init ? kr->init(n, opset, &state, &kerr) : PARE_OK;
    if (kst == PARE_OK) {
        r.k.node = n;
        r.k.opset = opset;
        r.k.in = ins;
        r.k.n_in = n->n_inputs;
        r.k.n_out = n->n_outputs;
        r.k.state = state;
        r.k.pool = pool;
        r.k.alloc_out = fold_alloc;
        r.k.run_graph = fold_no_graph;
        r.k.exec = NULL;
        kst = kr->run(&r.k, &kerr);
        if (kr->release && state)
            kr->release(state);
    }
    for (size_t o = 0; kst == PARE_OK && o < n->n_outputs; o++)
        if (n->outputs[o] && !r.outs[o])
            kst = pare_error_set(&kerr, PARE_ERR_RUNTIME, "output %zu was not produced", o);
    if (kst == PARE_ERR_NOMEM && !r.over) {
        st = PARE_NOMEM(err);
    } else if (kst) {
        if (r.over)
            st = opt_note(notes, err,
                          "node %s: not folded: its result would exceed %" PRIu64
                          " bytes (the folding cap)",
                          pare_node_label(n, lbl, sizeof lbl), r.limit);
        else
            st = opt_note(notes, err, "node %s: not folded: %s",
                          pare_node_label(n, lbl, sizeof lbl), kerr.msg);
    } else {
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = n->outputs[o];
            if (v && v->producer == n && v->id < f->g->n_values) {
                f->val[v->id] = r.outs[o];
                r.outs[o] = NULL;
            }
        }
        f->folded[n->id] = 1;
        f->n_folded++;
    }
    for (size_t o = 0; o < r.n_out; o++)
        pare_tensor_free(r.outs[o]);
    free(r.outs);
out:
    if (ins != inbuf)
        free(ins);
    return st;
}

/* Does anything outside the folded set read v (or name it)? */
static bool result_needed(const gfold *f, const opt_pins *pins, const pare_value *v)
{
    if (v->is_output || opt_pinned(pins, v))
        return true;
    for (size_t u = 0; u < v->n_uses; u++) {
        const pare_node *c = v->uses[u].node;
        if (c->graph != f->g || !f->folded[c->id])
            return true;
    }
    return false;
}

static pare_status apply_folds(gfold *f, const opt_pins *pins, size_t *count, pare_error *err)
{
    pare_graph *g = f->g;
    size_t nn = g->n_nodes;
    pare_node **todo = malloc((nn ? nn : 1) * sizeof *todo);
    uint8_t *need = calloc(g->n_values ? g->n_values : 1, 1);
    size_t nt = 0;
    pare_status st = PARE_OK;
    if (!todo || !need) {
        free(todo);
        free(need);
        return PARE_NOMEM(err);
    }
    for (size_t i = 0; i < nn; i++) {
        pare_node *n = g->nodes[i];
        if (!f->folded[n->id])
            continue;
        todo[nt++] = n;
        for (size_t o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] && n->outputs[o]->producer == n)
                need[n->outputs[o]->id] = result_needed(f, pins, n->outputs[o]);
    }
    for (size_t i = 0; i < nt && !st; i++) {
        pare_node *n = todo[i];
        size_t no = n->n_outputs;
        pare_value **outs = malloc((no ? no : 1) * sizeof *outs);
        char *name = strdup(n->name ? n->name : "");
        if (!name || !outs) {
            free(name);
            free(outs);
            st = PARE_NOMEM(err);
            break;
        }
        for (size_t o = 0; o < no; o++)
            outs[o] = n->outputs[o] && n->outputs[o]->producer == n ? n->outputs[o] : NULL;
        if ((st = pare_graph_remove_node(g, n, err))) {
            free(name);
            free(outs);
            break;
        }
        (*count)++;
        for (size_t o = 0; o < no && !st; o++) {
            pare_value *v = outs[o];
            if (!v || !need[v->id] || !f->val[v->id])
                continue;
            pare_tensor *t = f->val[v->id];
            f->val[v->id] = NULL;
            if (v->is_output || opt_pinned(pins, v)) {
                /* a graph output keeps a producer: a Constant holding the result */
                pare_node *c;
                if ((st = pare_tensor_set_name(t, v->name, err)) ||
                    (st = pare_graph_add_node(g, name, "", "Constant", NULL, 0, &v, 1, NULL, &c,
                                              err))) {
                    pare_tensor_free(t);
                    break;
                }
                st = pare_node_set_attr_tensor(c, "value", t, err);
            } else {
                st = opt_set_init(v, t, err);
            }
        }
        free(name);
        free(outs);
    }
    free(todo);
    free(need);
    if (!st)
        st = pare_graph_toposort(g, err);
    return st;
}

pare_status pare_opt_fold_constants_ex(pare_model *m, int64_t max_bytes, size_t *changed,
                                       char **notes, pare_error *err)
{
    size_t count = 0;
    uint64_t cap = max_bytes == 0   ? (uint64_t)PARE_OPT_FOLD_MAX_BYTES_DEFAULT
                   : max_bytes < 0 ? FOLD_HARD_LIMIT
                                   : (uint64_t)max_bytes;
    if (cap > FOLD_HARD_LIMIT)
        cap = FOLD_HARD_LIMIT;
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    pare_threadpool *pool = pare_threadpool_new(1);
    if (!pool)
        st = PARE_NOMEM(err);
    /* outer graphs first: their folded results are constants for the bodies */
    for (size_t gi = 0; gi < gs.n && !st; gi++) {
        pare_graph *g = gs.g[gi];
        if (g->parent && opt_legacy(g))
            continue; /* a new initializer would have to become a body input */
        if ((st = pare_graph_toposort(g, err)))
            break;
        gfold f = {g, NULL, NULL, 0};
        f.val = calloc(g->n_values ? g->n_values : 1, sizeof *f.val);
        f.folded = calloc(g->next_node_id ? g->next_node_id : 1, 1);
        if (!f.val || !f.folded)
            st = PARE_NOMEM(err);
        size_t nv = g->n_values;
        for (size_t i = 0; i < g->n_nodes && !st; i++) {
            pare_node *n = g->nodes[i];
            if (n->id >= g->next_node_id || never_fold(n))
                continue;
            if (pare_node_is(n, "", "Constant") && n->n_outputs == 1 && n->outputs[0] &&
                (n->outputs[0]->is_output || opt_pinned(&pins, n->outputs[0])))
                continue; /* already what folding would leave */
            st = try_fold(&f, n, cap, pool, notes, err);
        }
        if (!st && f.n_folded)
            st = apply_folds(&f, &pins, &count, err);
        if (f.val)
            for (size_t i = 0; i < nv; i++)
                pare_tensor_free(f.val[i]);
        free(f.val);
        free(f.folded);
        if (!st)
            st = opt_sweep_values(g, &pins, false, NULL, err);
    }
    pare_threadpool_free(pool);
    opt_graphs_release(&gs);
    opt_pins_release(&pins);
    if (changed)
        *changed = count;
    return st;
}

pare_status pare_opt_fold_constants(pare_model *m, int64_t max_bytes, size_t *changed,
                                    pare_error *err)
{
    return pare_opt_fold_constants_ex(m, max_bytes, changed, NULL, err);
}
