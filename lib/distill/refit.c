/* lib/distill/refit.c - model costs, student/teacher agreement, and the
 * closed-form ridge refit of a student's final linear layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/distill.h"
#include "pare/exec.h"
#include "pare/feed.h"

/* ---- costs ---- */

typedef struct cost_ctx {
    pare_graph *g;
    int (*dims)[9]; /* per value id: rank, then up to 8 dims */
    size_t n;
    double macs;
} cost_ctx;

static const int *vdims(cost_ctx *c, const pare_value *v)
{
    if (!v || v->id >= c->n || c->dims[v->id][0] < 0)
        return NULL;
    return c->dims[v->id];
}

static void put_dims(cost_ctx *c, const pare_value *v, const pare_tensor *t)
{
    if (!v || v->id >= c->n || t->rank > 8)
        return;
    c->dims[v->id][0] = t->rank;
    for (int i = 0; i < t->rank; i++)
        c->dims[v->id][i + 1] = (int)t->dims[i];
}

static int cost_observer(void *ctx, const pare_node *n, size_t output, const pare_tensor *t)
{
    cost_ctx *c = ctx;
    if (n->graph != c->g)
        return 0;
    put_dims(c, n->outputs[output], t);
    if (output != 0)
        return 0;
    double out = (double)pare_tensor_numel(t);
    if (pare_node_is(n, "", "MatMul") || pare_node_is(n, "", "Gemm")) {
        const int *a = vdims(c, n->inputs[0]);
        if (a && a[0] >= 1) {
            int k = a[a[0]];
            if (pare_node_is(n, "", "Gemm") && pare_node_attr_int(n, "transA", 0) && a[0] == 2)
                k = a[1];
            c->macs += out * k;
        }
    } else if ((pare_node_is(n, "", "Conv") || pare_node_is(n, "", "ConvTranspose")) &&
               n->n_inputs >= 2 && n->inputs[1]) {
        const int *w = vdims(c, n->inputs[1]);
        if (w && w[0] >= 2 && w[1] > 0) {
            double per = 1;
            for (int i = 2; i <= w[0]; i++)
                per *= w[i];
            if (pare_node_is(n, "", "ConvTranspose")) {
                /* every input element meets Cout/group x kernel weights */
                const int *x = vdims(c, n->inputs[0]);
                if (x) {
                    double xin = 1;
                    for (int i = 1; i <= x[0]; i++)
                        xin *= x[i];
                    c->macs += xin * per;
                }
            } else {
                c->macs += out * per;
            }
        }
    }
    return 0;
}

pare_status pare_distill_cost(pare_model *m, pare_tensor *const *sample, size_t n_inputs,
                              pare_model_cost *out, pare_error *err)
{
    memset(out, 0, sizeof *out);
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v && v->init) {
            out->params += pare_tensor_numel(v->init);
            out->bytes += v->init->nbytes;
        }
    }
    if (!sample)
        return PARE_OK;
    cost_ctx c = {.g = g, .n = g->n_values + 1};
    c.dims = malloc(c.n * sizeof *c.dims);
    if (!c.dims)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c.n; i++)
        c.dims[i][0] = -1;
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i] && g->values[i]->init)
            put_dims(&c, g->values[i], g->values[i]->init);
    pare_session *s = NULL;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_status st = pare_session_new(m, &so, &s, err);
    pare_tensor **ins = NULL;
    if (!st) {
        ins = calloc(n_inputs + 1, sizeof *ins);
        if (!ins)
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    size_t used = 0;
    for (size_t i = 0; i < n_inputs && !st; i++) {
        const pare_tensor *t = sample[i];
        pare_value *iv = t->name ? pare_graph_find_value(g, t->name) : NULL;
        if (t->name && (!iv || !iv->is_input || iv->init))
            continue; /* not an input of this model (labels, ...) */
        int64_t dims[PARE_MAX_RANK];
        memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
        if (t->rank >= 1)
            dims[0] = 1;
        size_t row = t->rank >= 1 && t->dims[0] > 0 ? t->nbytes / (size_t)t->dims[0] : t->nbytes;
        st = pare_tensor_new(t->name, t->dtype, t->rank, dims, &ins[used], err);
        if (!st)
            memcpy(ins[used]->data, t->data, row);
        if (!st && iv)
            put_dims(&c, iv, ins[used]);
        if (!st)
            used++;
    }
    if (!st) {
        pare_tensor **outs = NULL;
        size_t no = 0;
        pare_session_set_observer(s, cost_observer, &c);
        st = pare_session_run(s, ins, used, &outs, &no, err);
        pare_tensors_free(outs, no);
        out->macs = c.macs;
    }
    pare_tensors_free(ins, used);
    pare_session_free(s);
    free(c.dims);
    return st;
}

/* ---- agreement ---- */

pare_status pare_distill_agreement(pare_model *a, pare_model *b, const char *data, int64_t batch,
                                   int64_t max_samples, int threads, pare_compare *c,
                                   pare_error *err)
{
    pare_compare_init(c, -1, -1);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = threads;
    pare_session *sa = NULL, *sb = NULL;
    pare_feed *fa = NULL, *fb = NULL;
    pare_status st = pare_session_new(a, &so, &sa, err);
    if (!st)
        st = pare_session_new(b, &so, &sb, err);
    if (!st)
        st = pare_feed_open(data, sa, batch > 0 ? batch : 32, max_samples, &fa, err);
    if (!st)
        st = pare_feed_open(data, sb, batch > 0 ? batch : 32, max_samples, &fb, err);
    while (!st) {
        pare_tensor **ia = NULL, **ib = NULL, **oa = NULL, **ob = NULL;
        int64_t ga = 0, gb = 0;
        size_t na = 0, nb = 0;
        st = pare_feed_next(fa, &ia, &ga, err);
        if (!st)
            st = pare_feed_next(fb, &ib, &gb, err);
        if (!st && (!ia || !ib)) {
            pare_tensors_free(ia, pare_session_input_count(sa));
            pare_tensors_free(ib, pare_session_input_count(sb));
            break;
        }
        if (!st)
            st = pare_session_run(sa, ia, pare_session_input_count(sa), &oa, &na, err);
        if (!st)
            st = pare_session_run(sb, ib, pare_session_input_count(sb), &ob, &nb, err);
        if (!st && (na < 1 || nb < 1))
            st = pare_error_set(err, PARE_ERR_INVALID, "a model has no output");
        if (!st)
            st = pare_compare_add(c, oa[0], ob[0], NULL, err);
        pare_tensors_free(ia, pare_session_input_count(sa));
        pare_tensors_free(ib, pare_session_input_count(sb));
        pare_tensors_free(oa, na);
        pare_tensors_free(ob, nb);
    }
    pare_feed_close(fa);
    pare_feed_close(fb);
    pare_session_free(sa);
    pare_session_free(sb);
    return st;
}

/* ---- refit ---- */

typedef struct linear {
    pare_node *mm;        /* MatMul or Gemm */
    pare_node *bias_add;  /* Add of a 1-D bias after a MatMul; NULL */
    pare_value *x;        /* input rows */
    pare_value *w;        /* weight initializer */
    pare_value *b;        /* bias initializer; NULL */
    pare_value *y;        /* output (after the bias) */
    bool gemm, transb;
    int64_t k, n;
} linear;

static bool is_f32_init(const pare_value *v, int rank)
{
    return v && v->init && v->init->dtype == PARE_DT_FLOAT && v->init->rank == rank;
}

static bool find_final_linear(pare_graph *g, linear *l)
{
    memset(l, 0, sizeof *l);
    if (g->n_outputs < 1 || !g->outputs[0] || !g->outputs[0]->producer)
        return false;
    pare_node *p = g->outputs[0]->producer;
    if (pare_node_is(p, "", "Add") && p->n_inputs == 2) {
        int bi = is_f32_init(p->inputs[1], 1) ? 1 : is_f32_init(p->inputs[0], 1) ? 0 : -1;
        if (bi < 0)
            return false;
        pare_value *xv = p->inputs[1 - bi];
        if (!xv || !xv->producer || !pare_node_is(xv->producer, "", "MatMul") || xv->n_uses != 1)
            return false;
        l->bias_add = p;
        l->b = p->inputs[bi];
        p = xv->producer;
    }
    if (pare_node_is(p, "", "MatMul")) {
        if (p->n_inputs != 2 || !is_f32_init(p->inputs[1], 2))
            return false;
        l->mm = p;
        l->w = p->inputs[1];
        l->k = l->w->init->dims[0];
        l->n = l->w->init->dims[1];
    } else if (pare_node_is(p, "", "Gemm") && !l->bias_add) {
        if (p->n_inputs < 2 || !is_f32_init(p->inputs[1], 2) ||
            pare_node_attr_int(p, "transA", 0) != 0)
            return false;
        l->mm = p;
        l->gemm = true;
        l->w = p->inputs[1];
        l->transb = pare_node_attr_int(p, "transB", 0) != 0;
        l->k = l->transb ? l->w->init->dims[1] : l->w->init->dims[0];
        l->n = l->transb ? l->w->init->dims[0] : l->w->init->dims[1];
        if (p->n_inputs >= 3 && p->inputs[2]) {
            if (!is_f32_init(p->inputs[2], 1) || p->inputs[2]->init->dims[0] != l->n)
                return false;
            l->b = p->inputs[2];
        }
    } else {
        return false;
    }
    if (l->b && (l->b->init->dims[0] != l->n || l->b->n_uses != 1))
        return false;
    if (l->w->n_uses != 1)
        return false;
    l->x = l->mm->inputs[0];
    l->y = g->outputs[0];
    return l->x != NULL;
}

typedef struct grab {
    pare_graph *g;
    const pare_value *want;
    pare_tensor *got;
    int fail;
} grab;

static int grab_observer(void *ctx, const pare_node *n, size_t output, const pare_tensor *t)
{
    grab *gb = ctx;
    if (n->graph != gb->g || n->outputs[output] != gb->want || gb->got)
        return 0;
    pare_error e;
    if (pare_tensor_clone(t, &gb->got, &e)) {
        gb->fail = 1;
        return 1;
    }
    return 0;
}

void pare_refit_report_release(pare_refit_report *r)
{
    if (r) {
        free(r->final_node);
        r->final_node = NULL;
    }
}

/* Accumulates X^T X and X^T Y of one layer over the data and writes the
 * solution into its weight (and bias). skipped != NULL: a layer whose
 * tensors do not line up with the teacher's is skipped (*skipped set). */
static pare_status refit_one(pare_model *student, pare_model *teacher, const linear *l,
                             pare_value *ty, const pare_refit_opts *o, bool *skipped,
                             pare_error *err)
{
    pare_graph *sg = pare_model_graph(student), *tg = pare_model_graph(teacher);
    pare_status st = PARE_OK;
    bool skip = false;
    bool hasb = l->b != NULL;
    size_t kb = (size_t)l->k + hasb, nn = (size_t)l->n;
    double *gram = calloc(kb * kb, sizeof *gram), *xty = calloc(kb * nn, sizeof *xty);
    double *row = malloc(kb * sizeof *row);
    if (!gram || !xty || !row) {
        free(gram);
        free(xty);
        free(row);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = o->threads;
    pare_session *ss = NULL, *ts = NULL;
    pare_feed *sf = NULL, *tf = NULL;
    grab gs = {.g = sg, .want = l->x}, gt = {.g = tg, .want = ty};
    uint64_t rows = 0;
    int64_t batch = o->batch > 0 ? o->batch : 32;
    st = pare_session_new(student, &so, &ss, err);
    if (!st)
        st = pare_session_new(teacher, &so, &ts, err);
    if (!st)
        st = pare_feed_open(o->data, ss, batch, o->max_samples, &sf, err);
    if (!st)
        st = pare_feed_open(o->data, ts, batch, o->max_samples, &tf, err);
    if (!st) {
        pare_session_set_observer(ss, grab_observer, &gs);
        pare_session_set_observer(ts, grab_observer, &gt);
    }
    while (!st) {
        pare_tensor **si = NULL, **ti = NULL, **so_ = NULL, **to_ = NULL;
        int64_t g1 = 0, g2 = 0;
        size_t n1 = 0, n2 = 0;
        st = pare_feed_next(sf, &si, &g1, err);
        if (!st)
            st = pare_feed_next(tf, &ti, &g2, err);
        if (!st && (!si || !ti)) {
            pare_tensors_free(si, pare_session_input_count(ss));
            pare_tensors_free(ti, pare_session_input_count(ts));
            break;
        }
        if (!st)
            st = pare_session_run(ss, si, pare_session_input_count(ss), &so_, &n1, err);
        if (!st)
            st = pare_session_run(ts, ti, pare_session_input_count(ts), &to_, &n2, err);
        const pare_tensor *x = gs.got, *y = gt.got;
        if (!st && !x && l->x->is_input) /* the layer reads a graph input */
            for (size_t i = 0; i < pare_session_input_count(ss); i++)
                if (si[i]->name && strcmp(si[i]->name, l->x->name) == 0)
                    x = si[i];
        if (!st && (!x || !y || x->dtype != PARE_DT_FLOAT || y->dtype != PARE_DT_FLOAT))
            st = pare_error_set(err, PARE_ERR_RUNTIME, "could not capture the float32 tensors "
                                "'%s' (student) and '%s' (teacher)", l->x->name, ty->name);
        if (!st) {
            uint64_t rx = pare_tensor_numel(x) / (uint64_t)l->k, ry = pare_tensor_numel(y) / nn;
            if (x->rank < 1 || x->dims[x->rank - 1] != l->k || y->rank < 1 ||
                y->dims[y->rank - 1] != l->n || rx != ry) {
                if (skipped) { /* --refit all: a layer that does not match is left alone */
                    *skipped = true;
                    skip = true;
                }
                st = pare_error_set(err, PARE_ERR_INVALID,
                                    "student tensor '%s' and teacher tensor '%s' do not line up "
                                    "row by row", l->x->name, ty->name);
            }
            const float *xd = x->data, *yd = y->data;
            for (uint64_t rr = 0; !st && rr < rx; rr++) {
                for (size_t i = 0; i < (size_t)l->k; i++)
                    row[i] = xd[rr * (uint64_t)l->k + i];
                if (hasb)
                    row[l->k] = 1;
                for (size_t i = 0; i < kb; i++) {
                    double ri = row[i];
                    if (ri == 0)
                        continue;
                    for (size_t j = i; j < kb; j++)
                        gram[i * kb + j] += ri * row[j];
                    for (size_t j = 0; j < nn; j++)
                        xty[i * nn + j] += ri * yd[rr * nn + j];
                }
            }
            rows += rx;
        }
        pare_tensor_free(gs.got);
        pare_tensor_free(gt.got);
        gs.got = gt.got = NULL;
        pare_tensors_free(si, pare_session_input_count(ss));
        pare_tensors_free(ti, pare_session_input_count(ts));
        pare_tensors_free(so_, n1);
        pare_tensors_free(to_, n2);
    }
    pare_feed_close(sf);
    pare_feed_close(tf);
    pare_session_free(ss);
    pare_session_free(ts);
    if (!st && rows == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "%s: no samples to refit on", o->data);
    if (!st) {
        for (size_t i = 0; i < kb; i++)
            for (size_t j = 0; j < i; j++)
                gram[i * kb + j] = gram[j * kb + i];
        for (size_t i = 0; i < (size_t)l->k; i++)
            gram[i * kb + i] += o->ridge;
        st = pare_cholesky_solve(gram, kb, xty, nn, err);
    }
    if (!st) {
        pare_tensor *wt = NULL, *bt = NULL;
        st = pare_tensor_clone(l->w->init, &wt, err);
        if (!st && hasb)
            st = pare_tensor_clone(l->b->init, &bt, err);
        if (!st) {
            float *w = wt->data;
            for (size_t i = 0; i < (size_t)l->k; i++)
                for (size_t j = 0; j < nn; j++) {
                    float v = (float)xty[i * nn + j];
                    if (l->transb)
                        w[j * (size_t)l->k + i] = v;
                    else
                        w[i * nn + j] = v;
                }
            if (hasb) {
                float *b = bt->data;
                for (size_t j = 0; j < nn; j++)
                    b[j] = (float)xty[(size_t)l->k * nn + j];
            }
            st = pare_value_set_tensor(l->w, wt, err);
            wt = NULL;
            if (!st && hasb) {
                st = pare_value_set_tensor(l->b, bt, err);
                bt = NULL;
            }
        }
        pare_tensor_free(wt);
        pare_tensor_free(bt);
        if (!st && l->gemm) {
            st = pare_node_set_attr_float(l->mm, "alpha", 1.0f, err);
            if (!st && hasb)
                st = pare_node_set_attr_float(l->mm, "beta", 1.0f, err);
        }
    }
    free(gram);
    free(xty);
    free(row);
    if (skip) {
        pare_error_clear(err);
        return PARE_OK;
    }
    return st;
}

/* The linear layer computed by MatMul or Gemm node mm: a 2-D float32 weight
 * read by it alone, and a following Add of a 1-D bias of N (MatMul). */
static bool linear_at(pare_node *mm, linear *l)
{
    memset(l, 0, sizeof *l);
    bool gemm = pare_node_is(mm, "", "Gemm");
    if ((!gemm && !pare_node_is(mm, "", "MatMul")) || mm->n_inputs < 2 || !mm->inputs[0] ||
        !is_f32_init(mm->inputs[1], 2) || mm->inputs[1]->n_uses != 1 || !mm->outputs[0])
        return false;
    l->mm = mm;
    l->gemm = gemm;
    l->w = mm->inputs[1];
    l->x = mm->inputs[0];
    l->y = mm->outputs[0];
    if (gemm) {
        if (pare_node_attr_int(mm, "transA", 0) != 0)
            return false;
        l->transb = pare_node_attr_int(mm, "transB", 0) != 0;
    }
    l->k = l->transb ? l->w->init->dims[1] : l->w->init->dims[0];
    l->n = l->transb ? l->w->init->dims[0] : l->w->init->dims[1];
    if (gemm && mm->n_inputs >= 3 && mm->inputs[2]) {
        if (!is_f32_init(mm->inputs[2], 1) || mm->inputs[2]->init->dims[0] != l->n ||
            mm->inputs[2]->n_uses != 1)
            return false;
        l->b = mm->inputs[2];
    }
    pare_value *y = mm->outputs[0];
    if (!gemm && y->n_uses == 1 && !y->is_output) {
        pare_node *add = y->uses[0].node;
        if (pare_node_is(add, "", "Add") && add->n_inputs == 2 && add->outputs[0]) {
            pare_value *bv = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
            if (is_f32_init(bv, 1) && bv->init->dims[0] == l->n && bv->n_uses == 1) {
                l->bias_add = add;
                l->b = bv;
                l->y = add->outputs[0];
            }
        }
    }
    return true;
}

pare_status pare_distill_refit(pare_model *student, pare_model *teacher,
                               const pare_refit_opts *o, pare_refit_report *r, pare_error *err)
{
    pare_status align_st = pare_model_align_weights(student, err); /* typed reads below */
    if (align_st)
        return align_st;
    memset(r, 0, sizeof *r);
    pare_graph *sg = pare_model_graph(student), *tg = pare_model_graph(teacher);
    linear l;
    if (!find_final_linear(sg, &l))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "the student's first output does not come from a linear layer "
                              "(MatMul with a 2-D float32 weight plus an optional 1-D bias Add, "
                              "or Gemm) that can be refitted");
    char lab[256];
    r->final_node = strdup(pare_node_label(l.mm, lab, sizeof lab));
    pare_value *ty = pare_graph_find_value(tg, l.y->name);
    if (!ty || !ty->producer)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "the teacher has no node output named '%s' to refit to", l.y->name);
    pare_status st = pare_distill_agreement(student, teacher, o->data, o->batch, o->max_samples,
                                            o->threads, &r->before, err);
    if (st)
        return st;
    if (o->all) {
        st = pare_graph_toposort(sg, err);
        size_t n0 = sg->n_nodes;
        pare_node **list = st ? NULL : malloc((n0 + 1) * sizeof *list);
        if (!st && !list)
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        if (!st)
            memcpy(list, sg->nodes, n0 * sizeof *list);
        for (size_t k = 0; k < n0 && !st; k++) {
            linear li;
            if (!linear_at(list[k], &li))
                continue;
            pare_value *tv = pare_graph_find_value(tg, li.y->name);
            if (!tv || !tv->producer || tv->graph != tg)
                continue; /* no teacher tensor of that name (a low-rank first factor) */
            bool skipped = false;
            st = refit_one(student, teacher, &li, tv, o, &skipped, err);
            if (!st && !skipped)
                r->layers++;
        }
        free(list);
    } else {
        st = refit_one(student, teacher, &l, ty, o, NULL, err);
        if (!st)
            r->layers = 1;
    }
    if (!st)
        st = pare_distill_agreement(student, teacher, o->data, o->batch, o->max_samples,
                                    o->threads, &r->after, err);
    return st;
}
