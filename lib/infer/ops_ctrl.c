/* Control flow: If, Loop, Scan. Bodies are inferred with the enclosing
 * scopes visible; loop-carried values are widened until the body's output
 * types fit its input types (a fixed point), so a state that keeps its
 * shape keeps it exactly and one that grows becomes unknown where it grows. */
#include "infer/infer_int.h"

static pare_graph *graph_attr(ix_node *c, const char *name)
{
    const pare_attr *a = pare_node_attr(c->n, name);
    return a && a->type == PARE_ATTR_GRAPH ? a->g : NULL;
}

static int op_if(ix_node *c)
{
    pare_graph *br[2] = {graph_attr(c, "then_branch"), graph_attr(c, "else_branch")};
    const ix_const *cond = ix_cst(c, 0);
    int pick = -1;
    int64_t cv;
    if (cond && cond->n == 1 && ix_const_int(cond, 0, &cv))
        pick = cv ? 0 : 1;
    for (int b = 0; b < 2; b++) {
        if (!br[b] || ix_infer_graph(c->x, br[b]) == IX_OK)
            continue;
        /* a branch that is never taken may well be invalid for these shapes
         * (a model that handles 4-D and 5-D inputs, say): forget it */
        if (c->x->oom || b == pick || pick < 0)
            return IX_ERR;
        pare_error_clear(c->x->err);
        ix_reset_graph(c->x, br[b]);
    }
    ix_shape *s = malloc(3 * sizeof *s);
    if (!s) {
        c->x->oom = true;
        return IX_ERR;
    }
    for (size_t o = 0; o < c->nout; o++) {
        int dt[2] = {0, 0};
        bool have[2] = {false, false};
        for (int b = 0; b < 2; b++) {
            s[b].rank = -1;
            if (br[b] && o < br[b]->n_outputs) {
                dt[b] = ix_value_type(c->x, br[b]->outputs[o], &s[b]);
                have[b] = true;
            }
        }
        if (pick >= 0) {
            if (have[pick]) {
                ix_set(c, o, dt[pick], &s[pick]);
                const ix_const *k = ix_value_const(c->x, br[pick]->outputs[o]);
                if (k)
                    ix_set_const(c, o, k);
            }
            continue;
        }
        if (!have[0] || !have[1])
            continue;
        if (dt[0] && dt[1] && dt[0] != dt[1]) {
            free(s);
            return ix_fail(c, "output %zu is %s in one branch and %s in the other", o,
                           pare_dtype_name(dt[0]), pare_dtype_name(dt[1]));
        }
        ix_shape_union(&s[0], &s[1], &s[2]);
        ix_set(c, o, dt[0] ? dt[0] : dt[1], &s[2]);
    }
    free(s);
    return IX_OK;
}

typedef struct body_io {
    int nb;          /* body inputs typed from the node */
    int *dt;         /* their types */
    ix_shape *s;     /* their shapes */
    int carried0;    /* first loop-carried body input */
    int out0;        /* body output matching it */
    int nc;          /* number of loop-carried values */
} body_io;

/* Infers body with typed inputs; loop-carried ones are widened to the
 * union with what the body produces until nothing changes. On return the
 * carried shapes in io->s are the fixed point (what every iteration sees). */
static int infer_body(ix_node *c, pare_graph *body, body_io *io)
{
    ix_ctx *x = c->x;
    ix_shape *so = malloc(sizeof *so);
    if (!so) {
        x->oom = true;
        return IX_ERR;
    }
    bool widened = false;
    int r = IX_OK;
    /* Deeply nested loops would multiply the passes: there the carried
     * values start unknown, which is a fixed point at once. */
    if (x->loop_depth >= 3) {
        for (int i = 0; i < io->nc; i++)
            io->s[io->carried0 + i].rank = -1;
        widened = true;
    }
    x->loop_depth++;
    for (int tries = 0;; tries++) {
        ix_reset_graph(x, body);
        for (int i = 0; i < io->nb && (size_t)i < body->n_inputs; i++)
            ix_value_set(x, body->inputs[i], io->dt[i], &io->s[i], NULL);
        r = ix_infer_graph(x, body);
        if (r != IX_OK) {
            /* a contradiction under the narrow types may be the carried shapes
             * changing between iterations: retry with them unknown, once */
            if (x->oom || widened || io->nc == 0)
                break;
            pare_error_clear(x->err);
            for (int i = 0; i < io->nc; i++)
                io->s[io->carried0 + i].rank = -1;
            widened = true;
            continue;
        }
        bool fixed = true;
        for (int i = 0; i < io->nc; i++) {
            size_t oi = (size_t)(io->out0 + i);
            ix_shape *cur = &io->s[io->carried0 + i];
            if (oi >= body->n_outputs)
                continue;
            int odt = ix_value_type(x, body->outputs[oi], so);
            if (!io->dt[io->carried0 + i])
                io->dt[io->carried0 + i] = odt;
            ix_shape u;
            ix_shape_union(cur, so, &u);
            if (!ix_shape_equal(&u, cur)) {
                fixed = false;
                *cur = u;
                if (tries >= 6)
                    cur->rank = -1;
            }
        }
        if (fixed)
            break;
    }
    x->loop_depth--;
    free(so);
    return r;
}

/* The body's condition output is provably always true. */
static bool cond_always_true(ix_ctx *x, pare_graph *body)
{
    if (body->n_outputs < 1 || body->n_inputs < 2)
        return false;
    pare_value *o = body->outputs[0], *in = body->inputs[1];
    for (int hops = 0; hops < 8 && o; hops++) {
        if (o == in)
            return true;
        const ix_const *k = ix_value_const(x, o);
        int64_t v;
        if (k && k->n == 1 && ix_const_int(k, 0, &v))
            return v != 0;
        if (o->producer && pare_node_is(o->producer, "", "Identity") && o->producer->n_inputs)
            o = o->producer->inputs[0];
        else
            break;
    }
    return false;
}

static int op_loop(ix_node *c)
{
    ix_ctx *x = c->x;
    pare_graph *body = graph_attr(c, "body");
    if (!body || c->nin < 2)
        return IX_OK;
    int nc = (int)c->nin - 2;
    body_io io = {nc + 2, calloc((size_t)nc + 2, sizeof(int)),
                  malloc(((size_t)nc + 3) * sizeof(ix_shape)), 2, 1, nc};
    if (!io.dt || !io.s) {
        free(io.dt);
        free(io.s);
        x->oom = true;
        return IX_ERR;
    }
    ix_shape *tmp = &io.s[nc + 2];
    io.dt[0] = PARE_DT_INT64;
    io.s[0].rank = 0;
    io.dt[1] = PARE_DT_BOOL;
    io.s[1].rank = 0;
    for (int i = 0; i < nc; i++) {
        io.dt[2 + i] = ix_dt(c, 2 + (size_t)i);
        ix_sh(c, 2 + (size_t)i, &io.s[2 + i]);
    }
    int r = infer_body(c, body, &io);
    if (r == IX_OK) {
        for (int i = 0; i < nc; i++)
            ix_set(c, (size_t)i, io.dt[2 + i], &io.s[2 + i]);
        /* scan outputs: one slice per iteration */
        ix_dim trip = ix_unk();
        const ix_const *m = ix_cst(c, 0), *cond = ix_cst(c, 1);
        int64_t mv, cv = 1;
        if (m && m->n == 1 && ix_const_int(m, 0, &mv) && mv >= 0 &&
            (!ix_has(c, 1) || (cond && cond->n == 1 && ix_const_int(cond, 0, &cv))) &&
            (cv == 0 || cond_always_true(x, body)))
            trip = ix_d(cv ? mv : 0);
        for (size_t k = (size_t)nc; k < c->nout; k++) {
            size_t oi = 1 + k;
            if (oi >= body->n_outputs)
                break;
            int dt = ix_value_type(x, body->outputs[oi], tmp);
            if (tmp->rank >= 0 && tmp->rank < PARE_MAX_RANK) {
                memmove(&tmp->d[1], &tmp->d[0], (size_t)tmp->rank * sizeof tmp->d[0]);
                tmp->d[0] = trip;
                tmp->rank++;
            } else {
                tmp->rank = -1;
            }
            ix_set(c, k, dt, tmp);
        }
    }
    free(io.dt);
    free(io.s);
    return r;
}

static int op_scan(ix_node *c)
{
    ix_ctx *x = c->x;
    pare_graph *body = graph_attr(c, "body");
    int64_t m = ix_attr_i(c, "num_scan_inputs", -1);
    bool v8 = c->opset < 9;
    int first = v8 ? 1 : 0; /* opset 8 starts with sequence_lens */
    int nin = (int)c->nin - first;
    if (!body || m < 0 || m > nin)
        return IX_OK;
    int ns = nin - (int)m; /* state variables */
    int nso = (int)c->nout - ns;
    int batch = v8 ? 1 : 0; /* opset 8: leading batch dim everywhere */
    const int64_t *in_axes = NULL, *out_axes = NULL;
    size_t n_in_axes = v8 ? 0 : ix_attr_ints(c, "scan_input_axes", &in_axes);
    size_t n_out_axes = v8 ? 0 : ix_attr_ints(c, "scan_output_axes", &out_axes);
    body_io io = {nin, calloc((size_t)nin + 1, sizeof(int)),
                  malloc(((size_t)nin + 2) * sizeof(ix_shape)), 0, 0, ns};
    if (!io.dt || !io.s) {
        free(io.dt);
        free(io.s);
        x->oom = true;
        return IX_ERR;
    }
    ix_shape *tmp = &io.s[nin + 1];
    ix_dim seq = ix_unk(), bdim = ix_unk();
    for (int i = 0; i < nin; i++) {
        size_t in = (size_t)(first + i);
        ix_shape *s = &io.s[i];
        io.dt[i] = ix_dt(c, in);
        ix_sh(c, in, s);
        if (s->rank < 0)
            continue;
        int drop = -1;
        if (i >= ns) {
            int64_t ax = (size_t)(i - ns) < n_in_axes ? in_axes[i - ns] : 0;
            int a;
            if (v8)
                a = 1;
            else if (!ix_axis(ax, s->rank, &a)) {
                free(io.dt);
                free(io.s);
                return ix_fail(c, "scan input axis %lld out of range", (long long)ax);
            }
            if (a >= s->rank) {
                free(io.dt);
                free(io.s);
                return ix_fail(c, "scan input %d has rank %d", i - ns, s->rank);
            }
            if (!ix_known(seq) && !seq.sym)
                seq = s->d[a];
            drop = a;
        }
        if (batch && s->rank >= 1) {
            if (!ix_known(bdim) && !bdim.sym)
                bdim = s->d[0];
            memmove(&s->d[0], &s->d[1], (size_t)(s->rank - 1) * sizeof s->d[0]);
            s->rank--;
            if (drop > 0)
                drop--;
        }
        if (drop >= 0 && drop < s->rank) {
            memmove(&s->d[drop], &s->d[drop + 1], (size_t)(s->rank - 1 - drop) * sizeof s->d[0]);
            s->rank--;
        }
    }
    int r = infer_body(c, body, &io);
    if (r == IX_OK) {
        for (int i = 0; i < ns; i++) {
            ix_shape *s = &io.s[i];
            if (batch && s->rank >= 0 && s->rank < PARE_MAX_RANK) {
                memmove(&s->d[1], &s->d[0], (size_t)s->rank * sizeof s->d[0]);
                s->d[0] = bdim;
                s->rank++;
            }
            ix_set(c, (size_t)i, io.dt[i], s);
        }
        for (int k = 0; k < nso; k++) {
            size_t oi = (size_t)(ns + k);
            if (oi >= body->n_outputs)
                break;
            int dt = ix_value_type(x, body->outputs[oi], tmp);
            if (tmp->rank >= 0 && tmp->rank + 1 + batch <= PARE_MAX_RANK) {
                int a = 0;
                int64_t ax = (size_t)k < n_out_axes ? out_axes[k] : 0;
                if (!v8 && !ix_axis(ax, tmp->rank + 1, &a)) {
                    free(io.dt);
                    free(io.s);
                    return ix_fail(c, "scan output axis %lld out of range", (long long)ax);
                }
                memmove(&tmp->d[a + 1], &tmp->d[a], (size_t)(tmp->rank - a) * sizeof tmp->d[0]);
                tmp->d[a] = seq;
                tmp->rank++;
                if (batch) {
                    memmove(&tmp->d[1], &tmp->d[0], (size_t)tmp->rank * sizeof tmp->d[0]);
                    tmp->d[0] = bdim;
                    tmp->rank++;
                }
            } else {
                tmp->rank = -1;
            }
            ix_set(c, (size_t)ns + (size_t)k, dt, tmp);
        }
    }
    free(io.dt);
    free(io.s);
    return r;
}

const ix_op ix_ops_ctrl[] = {
    {"", "If", op_if},
    {"", "Loop", op_loop},
    {"", "Scan", op_scan},
};
const size_t ix_n_ops_ctrl = sizeof ix_ops_ctrl / sizeof ix_ops_ctrl[0];
