/* The structural passes: dead code, Identity/Dropout, no-op shape and type
 * ops, duplicate initializers. */
#include <stdio.h>
#include <inttypes.h>
#include "opt/opt_int.h"
#include "pare/infer.h"

#define MAX_AXES 64

/* ---- dead nodes, unused initializers, unused value_info ---- */

static bool node_live(const opt_pins *pins, const pare_node *n)
{
    for (size_t o = 0; o < n->n_outputs; o++) {
        const pare_value *v = n->outputs[o];
        if (v && v->producer == n && (v->n_uses || v->is_output || opt_pinned(pins, v)))
            return true;
    }
    return false;
}

/* value_info entries of the file that name nothing in the IR: the saver
 * drops them once the graph is marked changed. */
static size_t stale_value_info(pare_graph *g)
{
    const Onnx__GraphProto *gp = g->orig;
    size_t c = 0;
    if (!gp || g->dirty)
        return 0;
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const char *name = gp->value_info[i]->name ? gp->value_info[i]->name : "";
        pare_value *v = pare__graph_index_get(g, name);
        if (!v || (!v->producer && !v->is_input && !v->init))
            c++;
    }
    if (c)
        g->dirty = true;
    return c;
}

pare_status pare_opt_remove_dead(pare_model *m, size_t *changed, pare_error *err)
{
    size_t count = 0;
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    /* subgraphs before the graphs that hold them: a node removed inside a
     * body may be the last reader of an outer value */
    for (size_t gi = gs.n; gi-- > 0 && !st;) {
        pare_graph *g = gs.g[gi];
        bool again = true;
        while (again && !st) {
            again = false;
            for (size_t k = g->n_nodes; k-- > 0;) {
                pare_node *n = g->nodes[k];
                if (node_live(&pins, n))
                    continue;
                if ((st = pare_graph_remove_node(g, n, err)))
                    break;
                count++;
                again = true;
            }
        }
    }
    opt_graphs_release(&gs);
    if (!st)
        st = opt_graphs_collect(m, &gs, err);
    for (size_t gi = 0; !st && gi < gs.n; gi++) {
        size_t inits = 0;
        count += stale_value_info(gs.g[gi]);
        if (!gs.g[gi]->parent)
            st = opt_unlist_unused_inits(gs.g[gi], &pins, err);
        if (!st)
            st = opt_sweep_values(gs.g[gi], &pins, true, &inits, err);
        count += inits;
    }
    opt_graphs_release(&gs);
    opt_pins_release(&pins);
    if (changed)
        *changed = count;
    return st;
}

/* ---- Identity and inference Dropout ---- */

static bool const_scalar_is_zero(pare_value *v, bool *known)
{
    pare_error e;
    *known = false;
    if (!opt_is_const(v))
        return false;
    pare_tensor *t = pare_value_tensor(v, &e);
    if (!t || pare_tensor_numel(t) != 1 || t->dtype == PARE_DT_STRING)
        return false;
    *known = true;
    return pare_dtype_get_f64(t->dtype, t->data, 0) == 0.0;
}

static bool dropout_is_identity(const opt_pins *pins, const pare_node *n)
{
    int64_t opset = pare_node_opset(n);
    if (opset < 7 && pare_node_attr_int(n, "is_test", 0) == 0)
        return false;
    if (opset >= 12 && n->n_inputs > 2 && n->inputs[2]) {
        bool known;
        if (!const_scalar_is_zero(n->inputs[2], &known) || !known)
            return false;
    }
    for (size_t o = 1; o < n->n_outputs; o++) {
        const pare_value *v = n->outputs[o];
        if (v && (v->n_uses || v->is_output || opt_pinned(pins, v)))
            return false;
    }
    return true;
}

pare_status pare_opt_remove_identity(pare_model *m, size_t *changed, pare_error *err)
{
    size_t count = 0;
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    for (size_t gi = 0; gi < gs.n && !st; gi++) {
        pare_graph *g = gs.g[gi];
        for (size_t k = 0; k < g->n_nodes && !st;) {
            pare_node *n = g->nodes[k];
            bool cand = false;
            if (n->n_inputs >= 1 && n->inputs[0] && n->n_outputs >= 1 && n->outputs[0]) {
                if (pare_node_is(n, "", "Identity"))
                    cand = n->n_outputs == 1;
                else if (pare_node_is(n, "", "Dropout"))
                    cand = dropout_is_identity(&pins, n);
            }
            if (cand && opt_can_replace(&pins, n->outputs[0], n->inputs[0])) {
                if ((st = opt_replace(n->outputs[0], n->inputs[0], err)) ||
                    (st = pare_graph_remove_node(g, n, err)))
                    break;
                count++;
                continue;
            }
            k++;
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

/* ---- no-op Reshape/Transpose/Cast/Pad/Slice/Expand/Concat, Squeeze pairs ---- */

static bool dim_known(const pare_value *v, int i)
{
    return v->shape.rank > i && v->shape.dims[i].value >= 0;
}

static bool shapes_equal_known(const pare_value *a, const pare_value *b)
{
    if (a->shape.rank < 0 || a->shape.rank != b->shape.rank)
        return false;
    for (int i = 0; i < a->shape.rank; i++)
        if (!dim_known(a, i) || !dim_known(b, i) ||
            a->shape.dims[i].value != b->shape.dims[i].value)
            return false;
    return true;
}

/* ints from the input at index `in` (opset >= since) or the attribute `attr` */
static int64_t ints_arg(pare_node *n, int64_t since, size_t in, const char *attr, int64_t *vals,
                        bool *present)
{
    *present = false;
    if (pare_node_opset(n) >= since) {
        if (n->n_inputs <= in || !n->inputs[in])
            return 0;
        *present = true;
        return opt_const_ints(n->inputs[in], vals, MAX_AXES);
    }
    const int64_t *a;
    size_t c = pare_node_attr_ints(n, attr, &a);
    if (!pare_node_attr(n, attr))
        return 0;
    *present = true;
    if (c > MAX_AXES)
        return -1;
    memcpy(vals, a, c * sizeof *vals);
    return (int64_t)c;
}

static bool reshape_noop(pare_node *n)
{
    pare_value *x = n->inputs[0], *y = n->outputs[0];
    int64_t t[MAX_AXES];
    int64_t c;
    if (pare_node_opset(n) >= 5)
        c = n->n_inputs > 1 && n->inputs[1] ? opt_const_ints(n->inputs[1], t, MAX_AXES) : -1;
    else {
        const int64_t *a;
        size_t k = pare_node_attr_ints(n, "shape", &a);
        c = k <= MAX_AXES && pare_node_attr(n, "shape") ? (int64_t)k : -1;
        if (c > 0)
            memcpy(t, a, (size_t)c * sizeof *t);
    }
    bool allowzero = pare_node_attr_int(n, "allowzero", 0) != 0;
    if (c >= 0 && x->shape.rank == c) {
        int neg = 0;
        bool ok = true;
        for (int i = 0; i < c && ok; i++) {
            if (dim_known(x, i) && x->shape.dims[i].value == 0)
                ok = false; /* -1 would be ambiguous */
            else if (t[i] == 0 && !allowzero)
                continue;
            else if (t[i] == -1)
                neg++;
            else if (!dim_known(x, i) || x->shape.dims[i].value != t[i])
                ok = false;
        }
        if (ok && neg <= 1)
            return true;
    }
    return shapes_equal_known(x, y);
}

static bool transpose_noop(pare_node *n)
{
    const int64_t *perm;
    size_t c = pare_node_attr_ints(n, "perm", &perm);
    if (!pare_node_attr(n, "perm"))
        return n->inputs[0]->shape.rank >= 0 && n->inputs[0]->shape.rank <= 1;
    for (size_t i = 0; i < c; i++)
        if (perm[i] != (int64_t)i)
            return false;
    return true;
}

static bool cast_noop(pare_node *n)
{
    const pare_value *x = n->inputs[0];
    if (!x->dtype || x->elem_kind != 0)
        return false;
    if (pare_node_is(n, "", "CastLike"))
        return n->n_inputs > 1 && n->inputs[1] && n->inputs[1]->dtype == x->dtype;
    return pare_node_attr_int(n, "to", -1) == x->dtype;
}

static bool pad_noop(pare_node *n)
{
    int64_t p[2 * MAX_AXES];
    int64_t c;
    if (pare_node_opset(n) >= 11)
        c = n->n_inputs > 1 && n->inputs[1] ? opt_const_ints(n->inputs[1], p, 2 * MAX_AXES) : -1;
    else {
        const int64_t *a;
        size_t k = pare_node_attr_ints(n, "pads", &a);
        c = k <= 2 * MAX_AXES && pare_node_attr(n, "pads") ? (int64_t)k : -1;
        if (c > 0)
            memcpy(p, a, (size_t)c * sizeof *p);
    }
    if (c < 0)
        return false;
    for (int64_t i = 0; i < c; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static bool slice_noop(pare_node *n)
{
    const pare_value *x = n->inputs[0];
    int r = x->shape.rank;
    if (r < 0 || r > MAX_AXES)
        return false;
    int64_t starts[MAX_AXES], ends[MAX_AXES], axes[MAX_AXES], steps[MAX_AXES];
    bool pst, pen, pax, pstp;
    int64_t ns = ints_arg(n, 10, 1, "starts", starts, &pst);
    int64_t ne = ints_arg(n, 10, 2, "ends", ends, &pen);
    int64_t na = ints_arg(n, 10, 3, "axes", axes, &pax);
    int64_t nt = pare_node_opset(n) >= 10 ? ints_arg(n, 10, 4, "steps", steps, &pstp) : 0;
    if (pare_node_opset(n) < 10)
        pstp = false;
    if (!pst || !pen || ns < 0 || ne != ns || (pax && na != ns) || (pstp && nt != ns) ||
        (pax && na < 0) || (pstp && nt < 0))
        return false;
    for (int64_t i = 0; i < ns; i++) {
        int64_t ax = pax ? axes[i] : i;
        if (ax < 0)
            ax += r;
        if (ax < 0 || ax >= r)
            return false;
        if (pstp && steps[i] != 1)
            return false;
        int64_t d = dim_known(x, (int)ax) ? x->shape.dims[ax].value : -1;
        bool start_ok = starts[i] == 0 || (d >= 0 && starts[i] < 0 && starts[i] + d <= 0);
        bool end_ok = ends[i] >= INT32_MAX || (d >= 0 && ends[i] >= d);
        if (!start_ok || !end_ok)
            return false;
    }
    return true;
}

static bool expand_noop(pare_node *n)
{
    const pare_value *x = n->inputs[0];
    int64_t t[MAX_AXES];
    int64_t c = n->n_inputs > 1 && n->inputs[1] ? opt_const_ints(n->inputs[1], t, MAX_AXES) : -1;
    int r = x->shape.rank;
    if (c < 0 || r < 0 || c > r)
        return false;
    for (int64_t j = 0; j < c; j++) {
        int i = (int)(r - c + j);
        if (t[j] == 1)
            continue;
        if (!dim_known(x, i) || x->shape.dims[i].value != t[j])
            return false;
    }
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* normalised, sorted axes of a Squeeze/Unsqueeze against rank r (r < 0:
 * unknown, then only non-negative axes are accepted); -1 when unknown */
static int64_t axes_norm(pare_node *n, int r, int64_t *ax)
{
    bool present;
    int64_t c = ints_arg(n, 13, 1, "axes", ax, &present);
    if (!present || c <= 0)
        return -1;
    for (int64_t i = 0; i < c; i++) {
        if (ax[i] < 0) {
            if (r < 0)
                return -1;
            ax[i] += r;
        }
        if (ax[i] < 0 || (r >= 0 && ax[i] >= r))
            return -1;
    }
    qsort(ax, (size_t)c, sizeof *ax, cmp_i64);
    for (int64_t i = 1; i < c; i++)
        if (ax[i] == ax[i - 1])
            return -1;
    return c;
}

/* n is the second node of Squeeze->Unsqueeze or Unsqueeze->Squeeze with the
 * same axes: returns the first node's input (what n's output equals), or NULL. */
static pare_value *squeeze_pair_source(pare_node *n, pare_node **first)
{
    bool unsq = pare_node_is(n, "", "Unsqueeze");
    pare_node *p = n->inputs[0]->producer;
    *first = p;
    if (!p || p->graph != n->graph || p->n_inputs < 1 || !p->inputs[0] ||
        !pare_node_is(p, "", unsq ? "Squeeze" : "Unsqueeze"))
        return NULL;
    pare_value *x = p->inputs[0];
    int64_t a1[MAX_AXES], a2[MAX_AXES];
    int r = x->shape.rank;
    int64_t c1, c2;
    if (unsq) {
        /* Squeeze axes against rank(x); Unsqueeze axes against rank(output) = rank(x) */
        c1 = axes_norm(p, r, a1);
        c2 = axes_norm(n, r, a2);
    } else {
        /* both against rank(x) + number of inserted axes */
        bool present;
        int64_t k = ints_arg(p, 13, 1, "axes", a1, &present);
        int rr = r >= 0 && k > 0 ? r + (int)k : -1;
        c1 = axes_norm(p, rr, a1);
        c2 = axes_norm(n, rr, a2);
    }
    if (c1 <= 0 || c1 != c2)
        return NULL;
    for (int64_t i = 0; i < c1; i++)
        if (a1[i] != a2[i])
            return NULL;
    return x;
}

pare_status pare_opt_remove_noop(pare_model *m, size_t *changed, pare_error *err)
{
    size_t count = 0;
    if (changed)
        *changed = 0;
    pare_error ierr;
    /* shapes from inference where it knows them; a failure leaves the file's */
    if (pare_infer_shapes(m, NULL, NULL, &ierr) == PARE_ERR_NOMEM)
        return PARE_NOMEM(err);
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    for (size_t gi = 0; gi < gs.n && !st; gi++) {
        pare_graph *g = gs.g[gi];
        for (size_t k = 0; k < g->n_nodes && !st;) {
            pare_node *n = g->nodes[k];
            if (n->n_inputs < 1 || !n->inputs[0] || n->n_outputs != 1 || !n->outputs[0] ||
                *n->domain) {
                k++;
                continue;
            }
            pare_value *src = NULL;
            pare_node *first = NULL;
            const char *op = n->op_type;
            if (!strcmp(op, "Reshape"))
                src = reshape_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Transpose"))
                src = transpose_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Cast") || !strcmp(op, "CastLike"))
                src = cast_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Pad"))
                src = pad_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Slice"))
                src = slice_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Expand"))
                src = expand_noop(n) ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Concat"))
                src = n->n_inputs == 1 ? n->inputs[0] : NULL;
            else if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze"))
                src = squeeze_pair_source(n, &first);
            if (!src || !opt_can_replace(&pins, n->outputs[0], src)) {
                k++;
                continue;
            }
            pare_value *out = n->outputs[0];
            if ((st = opt_replace(out, src, err)))
                break;
            if ((st = pare_graph_remove_node(g, n, err)))
                break;
            count++;
            /* the first node of a pair goes too when nothing else reads it */
            if (first && first->n_outputs == 1 && !node_live(&pins, first)) {
                if ((st = pare_graph_remove_node(g, first, err)))
                    break;
                count++;
                k = 0; /* positions moved; rescan (cheap: each pass only removes) */
            }
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

/* ---- duplicate initializers ---- */

typedef struct init_key {
    uint64_t hash;
    pare_value *v;
} init_key;

static uint64_t tensor_hash(const pare_tensor *t)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(byte) (h = (h ^ (uint8_t)(byte)) * 1099511628211ull)
    MIX(t->dtype);
    MIX(t->rank);
    for (int i = 0; i < t->rank; i++)
        for (int b = 0; b < 8; b++)
            MIX((uint64_t)t->dims[i] >> (8 * b));
    /* 64-bit words first, then the tail: fast enough for large weights */
    const uint8_t *p = t->data;
    size_t n = t->nbytes, i = 0;
    uint64_t h2 = 0x9e3779b97f4a7c15ull;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h2 = (h2 ^ w) * 0xff51afd7ed558ccdull;
        h2 ^= h2 >> 29;
    }
    for (; i < n; i++)
        MIX(p[i]);
#undef MIX
    return h ^ h2 ^ (uint64_t)n;
}

static int key_cmp(const void *a, const void *b)
{
    const init_key *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->v->id < y->v->id ? -1 : x->v->id > y->v->id;
}

static bool tensors_equal(const pare_tensor *a, const pare_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

pare_status pare_opt_dedupe_initializers(pare_model *m, size_t *changed, pare_error *err)
{
    size_t count = 0;
    opt_pins pins;
    opt_graphs gs;
    pare_status st = opt_pass_begin(m, changed, &pins, &gs, err);
    if (st)
        return st;
    for (size_t gi = 0; gi < gs.n && !st; gi++) {
        pare_graph *g = gs.g[gi];
        init_key *keys = malloc((g->n_values ? g->n_values : 1) * sizeof *keys);
        uint8_t *mark = calloc(g->n_values ? g->n_values : 1, 1);
        size_t nk = 0;
        if (!keys || !mark) {
            free(keys);
            free(mark);
            st = PARE_NOMEM(err);
            break;
        }
        for (size_t i = 0; i < g->n_values; i++) {
            pare_value *v = g->values[i];
            if (!opt_is_const(v) || v->is_sparse_init || v->is_output || opt_pinned(&pins, v) ||
                (v->is_input && g->parent) ||
                v->init->dtype == PARE_DT_STRING || !v->n_uses)
                continue;
            keys[nk].hash = tensor_hash(v->init);
            keys[nk].v = v;
            nk++;
        }
        if (nk > 1)
            qsort(keys, nk, sizeof *keys, key_cmp);
        for (size_t i = 0; i < nk && !st; i++) {
            if (mark[keys[i].v->id])
                continue;
            for (size_t j = i + 1; j < nk && keys[j].hash == keys[i].hash && !st; j++) {
                pare_value *keep = keys[i].v, *dup = keys[j].v;
                if (mark[dup->id] || !tensors_equal(keep->init, dup->init))
                    continue;
                if ((st = pare_value_replace_uses(dup, keep, err)))
                    break;
                mark[dup->id] = 1;
                count++;
            }
        }
        for (size_t j = g->n_inputs; !st && j-- > 0;)
            if (mark[g->inputs[j]->id] && !g->inputs[j]->n_uses)
                st = pare_graph_remove_input(g, j, err);
        if (!st)
            opt_drop_marked(g, mark);
        free(keys);
        free(mark);
    }
    opt_graphs_release(&gs);
    opt_pins_release(&pins);
    if (changed)
        *changed = count;
    return st;
}
