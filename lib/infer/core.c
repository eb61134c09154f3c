/* Shape inference: the driver, the side table of inferred types, merging
 * with the file's types, and the report. The per-op rules live in ops_*.c. */
#include <stdio.h>
#include <stdarg.h>
#include <inttypes.h>
#include "infer/infer_int.h"

/* A bound on subgraph nesting, so a hostile model cannot exhaust the stack. */
#define IX_MAX_DEPTH 64

/* ---- arena ---- */

void *ix_alloc(ix_ctx *x, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    ix_arena_blk *b = x->arena;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) {
            x->oom = true;
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = x->arena;
        x->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static void arena_free(ix_ctx *x)
{
    while (x->arena) {
        ix_arena_blk *n = x->arena->next;
        free(x->arena);
        x->arena = n;
    }
}

/* ---- symbol interning ---- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

const char *ix_intern(ix_ctx *x, const char *s)
{
    if (!s)
        return NULL;
    if ((x->sym_n + 1) * 2 > x->sym_cap) {
        size_t nc = x->sym_cap ? x->sym_cap * 2 : 64;
        const char **ns = calloc(nc, sizeof *ns);
        if (!ns) {
            x->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < x->sym_cap; i++) {
            if (!x->syms[i])
                continue;
            size_t j = str_hash(x->syms[i]) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = x->syms[i];
        }
        free(x->syms);
        x->syms = ns;
        x->sym_cap = nc;
    }
    size_t j = str_hash(s) & (x->sym_cap - 1);
    while (x->syms[j]) {
        if (strcmp(x->syms[j], s) == 0)
            return x->syms[j];
        j = (j + 1) & (x->sym_cap - 1);
    }
    size_t len = strlen(s);
    char *copy = ix_alloc(x, len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len + 1);
    x->syms[j] = copy;
    x->sym_n++;
    return copy;
}

/* ---- pointer map ---- */

static size_t ptr_hash(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h;
}

static void *map_get(const ix_map *m, const void *k)
{
    if (!m->cap)
        return NULL;
    size_t j = ptr_hash(k) & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].key == k)
            return m->slots[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

static bool map_put(ix_map *m, const void *k, void *v)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        ix_slot *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key)
                continue;
            size_t j = ptr_hash(m->slots[i].key) & (nc - 1);
            while (ns[j].key)
                j = (j + 1) & (nc - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    size_t j = ptr_hash(k) & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].key == k) {
            m->slots[j].val = v;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].key = k;
    m->slots[j].val = v;
    m->n++;
    return true;
}

ix_vinfo *ix_info(ix_ctx *x, const pare_value *v, bool create)
{
    ix_vinfo *vi = map_get(&x->values, v);
    if (vi || !create)
        return vi;
    vi = ix_alloc(x, sizeof *vi);
    if (!vi)
        return NULL;
    vi->rank = -1;
    if (!map_put(&x->values, v, vi)) {
        x->oom = true;
        return NULL;
    }
    return vi;
}

/* ---- types: the file's, the inferred, and their merge ---- */

/* A subgraph output that names an outer value is a local stand-in without a
 * producer: its type is the outer value's. */
static pare_value *outer_of(pare_value *v)
{
    if (v->producer || v->init || v->is_input || !v->graph->parent)
        return NULL;
    pare_value *o = pare_graph_find_value(v->graph->parent, v->name);
    return o && o != v ? o : NULL;
}

static void base_shape(ix_ctx *x, const pare_value *v, ix_shape *s)
{
    s->rank = v->shape.rank > PARE_MAX_RANK ? -1 : v->shape.rank;
    for (int i = 0; i < s->rank; i++) {
        const pare_dim *d = &v->shape.dims[i];
        s->d[i].v = d->value >= 0 ? d->value : -1;
        s->d[i].sym = d->value < 0 && d->param ? ix_intern(x, d->param) : NULL;
    }
}

/* Merges the inferred type (idt, is) into the base (bdt, bs). With `file`
 * the base wins where both know and disagree (*conflict is set); otherwise
 * the inferred type wins. Unknown parts are filled from the other side. */
static void merge_types(int bdt, const ix_shape *bs, int idt, const ix_shape *is, bool file,
                        int *odt, ix_shape *os, bool *conflict)
{
    bool cf = false;
    if (bdt && idt && bdt != idt)
        cf = true;
    *odt = file ? (bdt ? bdt : idt) : (idt ? idt : bdt);
    if (is->rank < 0) {
        if (os != bs)
            *os = *bs;
    } else if (bs->rank < 0) {
        *os = *is;
    } else if (bs->rank != is->rank) {
        cf = true;
        if (os != (file ? bs : is))
            *os = file ? *bs : *is;
    } else {
        ix_shape r;
        r.rank = bs->rank;
        for (int i = 0; i < r.rank; i++) {
            ix_dim b = bs->d[i], d = is->d[i];
            if (ix_dim_differ(b, d))
                cf = true;
            if (file)
                r.d[i] = ix_known(d) ? (ix_known(b) ? b : d)
                                     : (d.sym && !ix_known(b) && !b.sym ? d : b);
            else
                r.d[i] = ix_known(d) || d.sym ? d : b;
        }
        *os = r;
    }
    if (conflict)
        *conflict = cf;
}

static int value_type_depth(ix_ctx *x, pare_value *v, ix_shape *s, int depth)
{
    if (v->elem_kind != 0) { /* sequences, maps, optionals: not modelled */
        s->rank = -1;
        return 0;
    }
    int dt = v->dtype;
    base_shape(x, v, s);
    pare_value *o = depth < IX_MAX_DEPTH ? outer_of(v) : NULL;
    if (o) {
        ix_shape *os = malloc(sizeof *os);
        if (!os) {
            x->oom = true;
            return dt;
        }
        int odt = value_type_depth(x, o, os, depth + 1);
        merge_types(dt, s, odt, os, v->shape_from_file, &dt, s, NULL);
        free(os);
    }
    ix_vinfo *vi = ix_info(x, v, false);
    if (vi && vi->typed) {
        ix_shape *is = malloc(sizeof *is);
        if (!is) {
            x->oom = true;
            return dt;
        }
        is->rank = vi->rank;
        for (int i = 0; i < vi->rank; i++)
            is->d[i] = vi->dims[i];
        merge_types(dt, s, vi->dtype, is, v->shape_from_file, &dt, s, NULL);
        free(is);
    }
    return dt;
}

int ix_value_type(ix_ctx *x, pare_value *v, ix_shape *s)
{
    return value_type_depth(x, v, s, 0);
}

static int value_dtype(ix_ctx *x, pare_value *v)
{
    for (int depth = 0; v && depth < IX_MAX_DEPTH && v->elem_kind == 0; depth++) {
        ix_vinfo *vi = ix_info(x, v, false);
        if (v->dtype && v->shape_from_file)
            return v->dtype;
        if (vi && vi->typed && vi->dtype)
            return vi->dtype;
        if (v->dtype)
            return v->dtype;
        v = outer_of(v);
    }
    return 0;
}

const ix_const *ix_value_const(ix_ctx *x, pare_value *v)
{
    for (int depth = 0; v && depth < IX_MAX_DEPTH; depth++) {
        ix_vinfo *vi = ix_info(x, v, false);
        if (vi && vi->c)
            return vi->c;
        /* An initializer that is also a graph input is only a default: the
         * caller may feed another value, so its contents are not known. */
        if (v->init && !v->is_input) {
            if (!vi && !(vi = ix_info(x, v, true)))
                return NULL;
            if (!vi->c_checked) {
                vi->c_checked = true;
                if (!v->is_sparse_init || v->init)
                    vi->c = ix_const_from_tensor(x, v->init);
            }
            return vi->c;
        }
        v = outer_of(v);
    }
    return NULL;
}

void ix_value_set(ix_ctx *x, pare_value *v, int dtype, const ix_shape *s, const ix_const *c)
{
    ix_vinfo *vi = ix_info(x, v, true);
    if (!vi)
        return;
    vi->typed = true;
    vi->dtype = dtype;
    vi->rank = s ? s->rank : -1;
    vi->dims = NULL;
    if (vi->rank > 0) {
        vi->dims = ix_alloc(x, (size_t)vi->rank * sizeof *vi->dims);
        if (!vi->dims) {
            vi->rank = -1;
            return;
        }
        memcpy(vi->dims, s->d, (size_t)vi->rank * sizeof *vi->dims);
    }
    vi->c = c;
}

static void reset_fn(pare_graph *g, void *ctx)
{
    ix_ctx *x = ctx;
    for (size_t i = 0; i < g->n_values; i++) {
        ix_vinfo *vi = ix_info(x, g->values[i], false);
        if (vi) {
            vi->typed = false;
            vi->rank = -1;
            vi->dims = NULL;
            vi->c = NULL;
            vi->c_checked = false;
        }
    }
}

void ix_reset_graph(ix_ctx *x, pare_graph *g)
{
    pare_graph_walk(g, reset_fn, x);
}

/* ---- the node being inferred ---- */

bool ix_has(ix_node *c, size_t i)
{
    return i < c->nin && c->n->inputs[i];
}

int ix_dt(ix_node *c, size_t i)
{
    return ix_has(c, i) ? value_dtype(c->x, c->n->inputs[i]) : 0;
}

bool ix_sh(ix_node *c, size_t i, ix_shape *s)
{
    if (!ix_has(c, i)) {
        s->rank = -1;
        return false;
    }
    ix_value_type(c->x, c->n->inputs[i], s);
    return s->rank >= 0;
}

const ix_const *ix_cst(ix_node *c, size_t i)
{
    if (!ix_has(c, i))
        return NULL;
    const ix_const *k = ix_value_const(c->x, c->n->inputs[i]);
    if (!k)
        return NULL;
    /* The contents must fit the value's type: a file whose value_info says
     * otherwise wins over them (and is reported as a conflict). */
    ix_shape *s = malloc(sizeof *s);
    if (!s) {
        c->x->oom = true;
        return NULL;
    }
    int dt = ix_value_type(c->x, c->n->inputs[i], s);
    bool ok = s->rank == k->rank && (!dt || dt == k->dtype);
    for (int d = 0; ok && d < k->rank; d++)
        if (s->d[d].v != k->dims[d])
            ok = false;
    free(s);
    return ok ? k : NULL;
}

void ix_set(ix_node *c, size_t o, int dtype, const ix_shape *s)
{
    if (o >= c->nout)
        return;
    c->out[o].set = true;
    c->out[o].dtype = dtype;
    if (s)
        c->out[o].s = *s;
    else
        c->out[o].s.rank = -1;
    c->out[o].c = NULL;
}

void ix_set_const(ix_node *c, size_t o, const ix_const *k)
{
    if (o >= c->nout || !k)
        return;
    ix_shape s;
    s.rank = k->rank;
    for (int i = 0; i < k->rank; i++)
        s.d[i] = ix_d(k->dims[i]);
    ix_set(c, o, k->dtype, &s);
    c->out[o].c = k;
}

int ix_fail(ix_node *c, const char *fmt, ...)
{
    char msg[700], lbl[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pare_error_set(c->x->err, PARE_ERR_INVALID, "node %s: %s",
                   pare_node_label(c->n, lbl, sizeof lbl), msg);
    return IX_ERR;
}

int64_t ix_attr_i(ix_node *c, const char *name, int64_t dflt)
{
    return pare_node_attr_int(c->n, name, dflt);
}

size_t ix_attr_ints(ix_node *c, const char *name, const int64_t **v)
{
    return pare_node_attr_ints(c->n, name, v);
}

bool ix_attr_has(ix_node *c, const char *name)
{
    return pare_node_attr(c->n, name) != NULL;
}

/* ---- the op table ---- */

static int op_cmp(const void *a, const void *b)
{
    const ix_op *x = *(const ix_op *const *)a, *y = *(const ix_op *const *)b;
    int d = strcmp(x->domain, y->domain);
    return d ? d : strcmp(x->name, y->name);
}

static bool ops_build(ix_ctx *x)
{
    const ix_op *tabs[] = {ix_ops_elem, ix_ops_nn, ix_ops_shape, ix_ops_quant, ix_ops_ctrl,
                           ix_ops_misc};
    const size_t counts[] = {ix_n_ops_elem, ix_n_ops_nn, ix_n_ops_shape, ix_n_ops_quant,
                             ix_n_ops_ctrl, ix_n_ops_misc};
    size_t total = 0;
    for (size_t t = 0; t < sizeof counts / sizeof *counts; t++)
        total += counts[t];
    x->ops = malloc(total * sizeof *x->ops);
    if (!x->ops)
        return false;
    for (size_t t = 0; t < sizeof counts / sizeof *counts; t++)
        for (size_t i = 0; i < counts[t]; i++)
            x->ops[x->n_ops++] = &tabs[t][i];
    qsort(x->ops, x->n_ops, sizeof *x->ops, op_cmp);
    return true;
}

static const ix_op *op_find(const ix_ctx *x, const char *domain, const char *name)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    ix_op key = {domain, name, NULL};
    const ix_op *kp = &key;
    const ix_op **r = bsearch(&kp, x->ops, x->n_ops, sizeof *x->ops, op_cmp);
    return r ? *r : NULL;
}

/* ---- report ---- */

static bool report_add(char ***arr, size_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static bool report_add(char ***arr, size_t *n, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na)
        return false;
    *arr = na;
    if (!(na[*n] = strdup(buf)))
        return false;
    (*n)++;
    return true;
}

static void node_ref(const pare_node *n, char *buf, size_t size)
{
    if (n->name && *n->name)
        snprintf(buf, size, "node '%s'", n->name);
    else
        snprintf(buf, size, "node #%zu", n->id);
}

static void report_unknown(ix_ctx *x, pare_node *n)
{
    if (!x->rep || map_get(&x->reported, n))
        return;
    if (!map_put(&x->reported, n, n)) {
        x->oom = true;
        return;
    }
    char ref[300];
    node_ref(n, ref, sizeof ref);
    if (!report_add(&x->rep->unknown, &x->rep->n_unknown, "%s (%s, domain %s)", ref, n->op_type,
                    n->domain && *n->domain ? n->domain : "ai.onnx"))
        x->oom = true;
}

void pare_infer_report_release(pare_infer_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n_unknown; i++)
        free(rep->unknown[i]);
    for (size_t i = 0; i < rep->n_conflicts; i++)
        free(rep->conflicts[i]);
    free(rep->unknown);
    free(rep->conflicts);
    memset(rep, 0, sizeof *rep);
}

/* ---- the driver ---- */

static int infer_subgraphs_plain(ix_ctx *x, pare_node *n)
{
    for (size_t a = 0; a < n->n_attrs; a++) {
        const pare_attr *at = &n->attrs[a];
        if (at->g && ix_infer_graph(x, at->g))
            return IX_ERR;
        for (size_t j = 0; at->graphs && j < at->n; j++)
            if (ix_infer_graph(x, at->graphs[j]))
                return IX_ERR;
    }
    return IX_OK;
}

static int infer_node(ix_ctx *x, pare_node *n)
{
    const ix_op *op = op_find(x, n->domain, n->op_type);
    if (!op) {
        report_unknown(x, n);
        return infer_subgraphs_plain(x, n);
    }
    ix_node c;
    c.x = x;
    c.n = n;
    c.opset = pare_node_opset(n);
    if (c.opset <= 0 && (!n->domain || !*n->domain))
        c.opset = 1000; /* no import: read the node with the newest rules */
    c.nin = n->n_inputs;
    c.nout = n->n_outputs;
    c.out = calloc(c.nout ? c.nout : 1, sizeof *c.out);
    if (!c.out) {
        x->oom = true;
        return IX_ERR;
    }
    int r = op->fn(&c);
    if (r == IX_OK) {
        for (size_t o = 0; o < c.nout; o++) {
            pare_value *v = n->outputs[o];
            if (v && c.out[o].set)
                ix_value_set(x, v, c.out[o].dtype, &c.out[o].s, c.out[o].c);
        }
    }
    free(c.out);
    if (x->oom) {
        PARE_NOMEM(x->err);
        return IX_ERR;
    }
    return r;
}

/* Whether p is a node of g that takes part in the ordering. */
static bool in_order(const pare_graph *g, const pare_node *p, const size_t *pos, size_t nid)
{
    return p && p->graph == g && p->id < nid && pos[p->id] != SIZE_MAX &&
           g->nodes[pos[p->id]] == p;
}

/* Inputs of n and of the nodes of its subgraphs (which see g's values) that
 * some other node of g produces: one per (node, input) pair, as in the
 * values' use lists. */
static size_t count_deps(const pare_graph *g, const pare_node *top, const pare_node *n,
                         const size_t *pos, size_t nid, int depth)
{
    size_t cnt = 0;
    for (size_t k = 0; k < n->n_inputs; k++) {
        pare_value *v = n->inputs[k];
        if (v && v->producer != top && in_order(g, v->producer, pos, nid))
            cnt++;
    }
    if (depth >= IX_MAX_DEPTH)
        return cnt;
    for (size_t a = 0; a < n->n_attrs; a++) {
        const pare_attr *at = &n->attrs[a];
        size_t ng = at->g ? 1 : at->graphs ? at->n : 0;
        for (size_t j = 0; j < ng; j++) {
            const pare_graph *sub = at->g ? at->g : at->graphs[j];
            for (size_t i = 0; sub && i < sub->n_nodes; i++)
                cnt += count_deps(g, top, sub->nodes[i], pos, nid, depth + 1);
        }
    }
    return cnt;
}

int ix_infer_graph(ix_ctx *x, pare_graph *g)
{
    if (x->depth >= IX_MAX_DEPTH)
        return IX_OK;
    size_t nn = g->n_nodes;
    if (!nn)
        return IX_OK;
    /* Kahn's algorithm over a private order, seeded in file order (which is
     * normally topological already); g->nodes is left as it is. Nodes on a
     * cycle are never ready and keep unknown outputs. */
    size_t nid = g->next_node_id;
    for (size_t i = 0; i < nn; i++)
        if (g->nodes[i]->id >= nid)
            nid = g->nodes[i]->id + 1;
    size_t *pos = malloc(nid * sizeof *pos);
    size_t *pending = calloc(nn, sizeof *pending);
    size_t *queue = malloc(nn * sizeof *queue);
    if (!pos || !pending || !queue) {
        free(pos);
        free(pending);
        free(queue);
        x->oom = true;
        PARE_NOMEM(x->err);
        return IX_ERR;
    }
    for (size_t i = 0; i < nid; i++)
        pos[i] = SIZE_MAX;
    for (size_t i = 0; i < nn; i++)
        pos[g->nodes[i]->id] = i;
    size_t qh = 0, qt = 0;
    for (size_t i = 0; i < nn; i++) {
        pending[i] = count_deps(g, g->nodes[i], g->nodes[i], pos, nid, 0);
        if (!pending[i])
            queue[qt++] = i;
    }
    x->depth++;
    int r = IX_OK;
    while (qh < qt && r == IX_OK) {
        pare_node *n = g->nodes[queue[qh++]];
        r = infer_node(x, n);
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = n->outputs[o];
            if (!v || v->producer != n)
                continue;
            for (size_t u = 0; u < v->n_uses; u++) {
                pare_node *m = v->uses[u].node;
                /* a use inside a subgraph counts for the node that owns it */
                for (int hops = 0; m && m->graph != g && hops < IX_MAX_DEPTH; hops++)
                    m = m->graph->owner;
                if (!m || m == n || !in_order(g, m, pos, nid))
                    continue;
                size_t mi = pos[m->id];
                if (pending[mi] && --pending[mi] == 0)
                    queue[qt++] = mi;
            }
        }
    }
    x->depth--;
    free(pos);
    free(pending);
    free(queue);
    return r;
}

/* ---- writing the result into the IR ---- */

static void write_back(ix_ctx *x, pare_value *v)
{
    ix_vinfo *vi = ix_info(x, v, false);
    if (!vi || !vi->typed || v->elem_kind != 0)
        return;
    ix_shape *bs = malloc(2 * sizeof *bs);
    if (!bs) {
        x->oom = true;
        return;
    }
    ix_shape *is = bs + 1;
    base_shape(x, v, bs);
    is->rank = vi->rank;
    for (int i = 0; i < vi->rank; i++)
        is->d[i] = vi->dims[i];
    int dt;
    bool conflict = false;
    ix_shape *ms = malloc(sizeof *ms);
    if (!ms) {
        free(bs);
        x->oom = true;
        return;
    }
    merge_types(v->dtype, bs, vi->dtype, is, v->shape_from_file, &dt, ms, &conflict);
    if (conflict && v->shape_from_file && x->rep) {
        char fb[512], ib[512];
        ix_shape_str(bs, fb, sizeof fb);
        ix_shape_str(is, ib, sizeof ib);
        if (!report_add(&x->rep->conflicts, &x->rep->n_conflicts,
                        "value '%s': the file says %s %s, inference says %s %s", v->name,
                        pare_dtype_name(v->dtype), fb, pare_dtype_name(vi->dtype), ib))
            x->oom = true;
    }
    v->dtype = dt;
    bool same = ms->rank == v->shape.rank;
    for (int i = 0; same && i < ms->rank; i++) {
        const pare_dim *d = &v->shape.dims[i];
        if (ms->d[i].v != (d->value >= 0 ? d->value : -1) ||
            (!ix_known(ms->d[i]) && (!ms->d[i].sym) != (!d->param)) ||
            (ms->d[i].sym && d->param && strcmp(ms->d[i].sym, d->param)))
            same = false;
    }
    if (!same) {
        pare_shape ns = {ms->rank, NULL};
        if (ns.rank > 0) {
            ns.dims = calloc((size_t)ns.rank, sizeof *ns.dims);
            if (!ns.dims) {
                x->oom = true;
                goto out;
            }
            for (int i = 0; i < ns.rank; i++) {
                ns.dims[i].value = ms->d[i].v;
                if (!ix_known(ms->d[i]) && ms->d[i].sym &&
                    !(ns.dims[i].param = strdup(ms->d[i].sym))) {
                    pare__shape_release(&ns);
                    x->oom = true;
                    goto out;
                }
            }
        }
        pare__shape_release(&v->shape);
        v->shape = ns;
    }
out:
    free(bs);
    free(ms);
}

static void write_back_fn(pare_graph *g, void *ctx)
{
    for (size_t i = 0; i < g->n_values; i++)
        write_back(ctx, g->values[i]);
}

/* ---- options ---- */

typedef struct bind_ctx {
    const pare_infer_opts *o;
} bind_ctx;

static void bind_fn(pare_graph *g, void *ctx)
{
    const pare_infer_opts *o = ((bind_ctx *)ctx)->o;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        for (int d = 0; d < v->shape.rank; d++) {
            pare_dim *dim = &v->shape.dims[d];
            if (!dim->param)
                continue;
            for (size_t k = 0; k < o->n_sym; k++) {
                if (o->sym_names[k] && strcmp(o->sym_names[k], dim->param) == 0) {
                    free(dim->param);
                    dim->param = NULL;
                    dim->value = o->sym_values[k] >= 0 ? o->sym_values[k] : -1;
                    break;
                }
            }
        }
    }
}

static pare_status apply_opts(pare_model *m, const pare_infer_opts *o, pare_error *err)
{
    if (!o)
        return PARE_OK;
    if (o->n_sym && (!o->sym_names || !o->sym_values))
        return pare_error_set(err, PARE_ERR_ARG, "symbol bindings without names or values");
    if (o->n_inputs && (!o->input_names || !o->input_ranks || !o->input_dims))
        return pare_error_set(err, PARE_ERR_ARG, "input shapes without names, ranks or dims");
    pare_graph *g = pare_model_graph(m);
    for (size_t k = 0; k < o->n_inputs; k++) {
        const char *name = o->input_names[k];
        int rank = o->input_ranks[k];
        pare_value *v = NULL;
        for (size_t i = 0; name && i < g->n_inputs; i++)
            if (strcmp(g->inputs[i]->name, name) == 0)
                v = g->inputs[i];
        if (!v)
            return pare_error_set(err, PARE_ERR_ARG, "the model has no input named '%s'",
                                  name ? name : "(null)");
        if (rank < 0 || rank > PARE_MAX_RANK || (rank > 0 && !o->input_dims[k]))
            return pare_error_set(err, PARE_ERR_ARG, "input '%s': bad rank %d", name, rank);
        if (v->init)
            return pare_error_set(err, PARE_ERR_ARG,
                                  "input '%s' is an initializer; its shape is its data's", name);
        pare_shape s = {rank, NULL};
        if (rank > 0) {
            s.dims = calloc((size_t)rank, sizeof *s.dims);
            if (!s.dims)
                return PARE_NOMEM(err);
            for (int d = 0; d < rank; d++)
                s.dims[d].value = o->input_dims[k][d] >= 0 ? o->input_dims[k][d] : -1;
        }
        pare__shape_release(&v->shape);
        v->shape = s;
    }
    if (o->n_sym) {
        bind_ctx bc = {o};
        pare_graph_walk(g, bind_fn, &bc);
    }
    return PARE_OK;
}

pare_status pare_infer_shapes(pare_model *m, const pare_infer_opts *opts, pare_infer_report *rep,
                              pare_error *err)
{
    if (!m)
        return pare_error_set(err, PARE_ERR_ARG, "no model");
    if (rep)
        memset(rep, 0, sizeof *rep);
    pare_status st = apply_opts(m, opts, err);
    if (st)
        return st;
    ix_ctx x;
    memset(&x, 0, sizeof x);
    x.m = m;
    x.opts = opts;
    x.rep = rep;
    x.err = err;
    if (!ops_build(&x)) {
        st = PARE_NOMEM(err);
        goto out;
    }
    pare_graph *g = pare_model_graph(m);
    if (ix_infer_graph(&x, g) != IX_OK || x.oom) {
        st = x.oom ? PARE_NOMEM(err) : (err ? err->status : PARE_ERR_INVALID);
        if (st == PARE_OK)
            st = PARE_ERR_INVALID;
        goto out;
    }
    pare_graph_walk(g, write_back_fn, &x);
    if (x.oom)
        st = PARE_NOMEM(err);
out:
    free(x.ops);
    free(x.syms);
    free(x.values.slots);
    free(x.reported.slots);
    arena_free(&x);
    return st;
}
