/* sensitivity.c - per-layer sensitivity scan and the choice of per-layer
 * sparsities under an accuracy budget (pare/prune.h). Every trial prunes
 * one layer (by magnitude, per layer) of the model itself, runs the data
 * through a new session, compares the first output with the original's,
 * and puts the weight back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"
#include "pare/feed.h"
#include "pare/stats.h"
#include "prune_internal.h"

static const double default_levels[] = {0.3, 0.5, 0.7, 0.9};

void pare_sensitivity_release(pare_sensitivity *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rows; i++) {
        free(s->rows[i].node);
        free(s->rows[i].op);
        free(s->rows[i].cosine);
        free(s->rows[i].top1);
        free(s->rows[i].accuracy);
    }
    free(s->rows);
    free(s->levels);
    free(s->output);
    memset(s, 0, sizeof *s);
}

/* ---- evaluation against the original's outputs --------------------------- */

typedef struct evaluator {
    const pare_sensitivity_opts *o;
    pare_tensor **ref;   /* first output per batch */
    size_t n_ref;
    pare_tensor *labels;
    char *output;
    int64_t samples;
} evaluator;

static void eval_release(evaluator *e)
{
    pare_tensors_free(e->ref, e->n_ref);
    pare_tensor_free(e->labels);
    free(e->output);
    memset(e, 0, sizeof *e);
}

static pare_tensor *label_slice(const pare_tensor *labels, int64_t start, int64_t count,
                                pare_error *err)
{
    if ((uint64_t)(start + count) > pare_tensor_numel(labels)) {
        pare_error_set(err, PARE_ERR_INVALID, "fewer labels (%llu) than samples",
                       (unsigned long long)pare_tensor_numel(labels));
        return NULL;
    }
    pare_tensor *t;
    int64_t d[1] = {count};
    if (pare_tensor_new(NULL, labels->dtype, 1, d, &t, err))
        return NULL;
    size_t es = pare_dtype_nbytes(labels->dtype, 1);
    memcpy(t->data, (const unsigned char *)labels->data + (size_t)start * es, (size_t)count * es);
    return t;
}

/* Runs m over the data; with e->ref NULL stores the first output per batch,
 * else compares with it into c. */
static pare_status eval_run(evaluator *e, pare_model *m, pare_compare *c, pare_error *err)
{
    const pare_sensitivity_opts *o = e->o;
    pare_session *s = NULL;
    pare_feed *f = NULL;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = o->threads;
    bool store = e->ref == NULL && e->n_ref == 0;
    size_t cap = 0, bi = 0;
    int64_t pos = 0;
    pare_status st = pare_session_new(m, &so, &s, err);
    if (st)
        return st;
    if ((st = pare_feed_open(o->data, s, o->batch > 0 ? o->batch : 8, o->samples, &f, err))) {
        if (st == PARE_ERR_ARG)
            st = err->status = PARE_ERR_INVALID;
        goto out;
    }
    if (store && pare_session_output_count(s) > 0 &&
        !(e->output = prune_strdup(pare_session_output(s, 0)->name))) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t nin = pare_session_input_count(s);
    for (;;) {
        pare_tensor **ins = NULL, **outs = NULL;
        size_t nout = 0;
        int64_t got = 0;
        if ((st = pare_feed_next(f, &ins, &got, err))) {
            /* the dataset names its file */
            goto out;
        }
        if (!ins)
            break;
        st = pare_session_run(s, ins, nin, &outs, &nout, err);
        pare_tensors_free(ins, nin);
        if (!st && nout == 0)
            st = pare_error_set(err, PARE_ERR_INVALID, "the model has no outputs");
        if (!st && store) {
            if (e->n_ref == cap) {
                size_t nc = cap ? cap * 2 : 16;
                pare_tensor **p = realloc(e->ref, nc * sizeof *p);
                if (!p) {
                    st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                } else {
                    e->ref = p;
                    cap = nc;
                }
            }
            if (!st) {
                e->ref[e->n_ref++] = outs[0];
                outs[0] = NULL;
            }
        } else if (!st) {
            if (bi >= e->n_ref) {
                st = pare_error_set(err, PARE_ERR_RUNTIME, "more batches than the reference run");
            } else {
                pare_tensor *lab = NULL;
                if (e->labels && outs[0]->rank == 2 &&
                    !(lab = label_slice(e->labels, pos, got, err)))
                    st = err->status;
                if (!st)
                    st = pare_compare_add(c, outs[0], e->ref[bi], lab, err);
                pare_tensor_free(lab);
            }
            bi++;
        }
        pare_tensors_free(outs, nout);
        pos += got;
        if (st)
            goto out;
    }
    if (store)
        e->samples = pos;
    if (pos == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "%s: no samples", o->data);
out:
    pare_feed_close(f);
    pare_session_free(s);
    return st;
}

static pare_status eval_init(evaluator *e, const pare_sensitivity_opts *o, pare_model *m,
                             pare_error *err)
{
    memset(e, 0, sizeof *e);
    e->o = o;
    if (!o->data)
        return pare_error_set(err, PARE_ERR_ARG, "the sensitivity scan needs data");
    if (o->labels && pare_tensor_read_file(o->labels, &e->labels, err))
        return err->status; /* the message names the file */
    if (e->labels && e->labels->dtype != PARE_DT_INT64 && e->labels->dtype != PARE_DT_INT32) {
        eval_release(e);
        return pare_error_set(err, PARE_ERR_INVALID, "%s: labels must be int64 or int32",
                              o->labels);
    }
    pare_status st = eval_run(e, m, NULL, err);
    if (st)
        eval_release(e);
    return st;
}

/* ---- weights kept aside and put back ------------------------------------ */

typedef struct saved {
    pare_value **v;
    pare_tensor **t;
    size_t n;
} saved;

static void saved_release(saved *s)
{
    pare_tensors_free(s->t, s->n);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static pare_status save_weights(const prune_layers *ls, saved *s, pare_error *err)
{
    s->n = ls->n;
    s->v = calloc(ls->n ? ls->n : 1, sizeof *s->v);
    s->t = calloc(ls->n ? ls->n : 1, sizeof *s->t);
    if (!s->v || !s->t) {
        saved_release(s);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < ls->n; i++) {
        s->v[i] = ls->items[i].wv;
        pare_tensor *t = pare_value_tensor(s->v[i], err);
        if (!t || pare_tensor_clone(t, &s->t[i], err)) {
            saved_release(s);
            return err->status;
        }
    }
    return PARE_OK;
}

static pare_status restore_one(saved *s, size_t i, pare_error *err)
{
    pare_tensor *t;
    pare_status st = pare_tensor_clone(s->t[i], &t, err);
    if (st)
        return st;
    if ((st = pare_value_set_tensor(s->v[i], t, err)))
        pare_tensor_free(t);
    return st;
}

/* ---- the scan -------------------------------------------------------------- */

static double drop_of(const pare_compare *c, const evaluator *e, bool *has_top1, bool *has_acc)
{
    (void)e;
    double acc_a = pare_compare_accuracy_a(c), acc_b = pare_compare_accuracy_b(c);
    double top1 = pare_compare_top1(c);
    *has_acc = !isnan(acc_a);
    *has_top1 = !isnan(top1);
    if (*has_acc)
        return acc_b - acc_a;
    if (*has_top1)
        return 1 - top1;
    return 1 - pare_compare_cosine(c);
}

double pare_sensitivity_drop(const pare_sensitivity *s, size_t row, size_t level)
{
    const pare_sensitivity_row *r = &s->rows[row];
    if (s->has_accuracy)
        return s->base_accuracy - r->accuracy[level];
    if (s->has_top1)
        return 1 - r->top1[level];
    return 1 - r->cosine[level];
}

/* prunes layer L alone at `level` by magnitude within the layer */
static pare_status prune_one(pare_model *m, const pare_sensitivity_opts *o, prune_layer *L,
                             double level, pare_error *err)
{
    pare_prune_opts po = o->base;
    po.criterion = PARE_PRUNE_MAGNITUDE;
    po.calib.path = NULL;
    po.filter.include_first_last = true;
    po.filter.min_params = 0;
    po.filter.exclude_nodes = NULL;
    po.filter.n_exclude_nodes = 0;
    po.filter.exclude_op_types = NULL;
    po.filter.n_exclude_op_types = 0;
    po.pattern_n = po.pattern_m = 0;
    pare_prune_layer_sparsity one = {L->node->name, level};
    po.layers = &one;
    po.n_layers = 1;
    po.per_layer = true;
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_status st = pare_prune_weights(m, &po, &r, err);
    pare_prune_report_release(&r);
    return st;
}

pare_status pare_prune_sensitivity(pare_model *m, const pare_sensitivity_opts *o,
                                   pare_sensitivity *out, pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    memset(out, 0, sizeof *out);
    const double *levels = o->levels ? o->levels : default_levels;
    size_t nl = o->levels ? o->n_levels : 4;
    if (nl == 0)
        return pare_error_set(err, PARE_ERR_ARG, "no sparsity levels");
    for (size_t i = 0; i < nl; i++)
        if (!(levels[i] >= 0 && levels[i] < 1))
            return pare_error_set(err, PARE_ERR_ARG, "sparsity level %g is outside [0, 1)",
                                  levels[i]);
    evaluator e;
    prune_layers ls = {0};
    saved sv = {0};
    pare_status st = prune_find_layers(m, &o->base.filter, NULL, &ls, err);
    if (st)
        return st;
    if ((st = eval_init(&e, o, m, err))) {
        prune_layers_release(&ls);
        return st;
    }
    if ((st = save_weights(&ls, &sv, err)))
        goto out;
    out->levels = malloc(nl * sizeof *out->levels);
    out->rows = calloc(ls.n ? ls.n : 1, sizeof *out->rows);
    if (!out->levels || !out->rows) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(out->levels, levels, nl * sizeof *levels);
    out->n_levels = nl;
    out->output = e.output;
    e.output = NULL;
    out->samples = e.samples;
    out->base_accuracy = NAN;
    for (size_t i = 0; i < ls.n; i++) {
        prune_layer *L = &ls.items[i];
        pare_sensitivity_row *row = &out->rows[out->n_rows++];
        row->node = prune_strdup(L->node->name ? L->node->name : "");
        row->op = prune_strdup(L->node->op_type);
        row->params = L->params;
        row->cosine = malloc(nl * sizeof(double));
        row->top1 = malloc(nl * sizeof(double));
        row->accuracy = malloc(nl * sizeof(double));
        if (!row->node || !row->op || !row->cosine || !row->top1 || !row->accuracy) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (!L->node->name || !L->node->name[0]) {
            for (size_t k = 0; k < nl; k++)
                row->cosine[k] = row->top1[k] = row->accuracy[k] = NAN;
            continue;
        }
        for (size_t k = 0; k < nl; k++) {
            pare_compare c;
            pare_compare_init(&c, -1, -1);
            if ((st = prune_one(m, o, L, levels[k], err)))
                goto out;
            st = eval_run(&e, m, &c, err);
            pare_status st2 = restore_one(&sv, i, err);
            if (st || (st = st2))
                goto out;
            bool ht, ha;
            (void)drop_of(&c, &e, &ht, &ha);
            row->cosine[k] = pare_compare_cosine(&c);
            row->top1[k] = pare_compare_top1(&c);
            row->accuracy[k] = pare_compare_accuracy_a(&c);
            out->has_top1 = ht;
            out->has_accuracy = ha;
            if (ha)
                out->base_accuracy = pare_compare_accuracy_b(&c);
            if (o->progress)
                o->progress(o->progress_ctx, (int64_t)(i * nl + k + 1), (int64_t)(ls.n * nl));
        }
    }
out:
    saved_release(&sv);
    eval_release(&e);
    prune_layers_release(&ls);
    if (st)
        pare_sensitivity_release(out);
    return st;
}

pare_status pare_prune_choose(pare_model *m, const pare_sensitivity_opts *o,
                              const pare_sensitivity *s, double max_drop,
                              pare_prune_layer_sparsity **out, size_t *n_out, double *drop,
                              pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    *out = NULL;
    *n_out = 0;
    *drop = NAN;
    size_t nr = s->n_rows, nl = s->n_levels;
    pare_prune_layer_sparsity *ch = calloc(nr ? nr : 1, sizeof *ch);
    int *lev = calloc(nr ? nr : 1, sizeof *lev); /* chosen level index, -1: dense */
    if (!ch || !lev) {
        free(ch);
        free(lev);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    /* levels in increasing order of sparsity */
    size_t *ord = malloc((nl ? nl : 1) * sizeof *ord);
    if (!ord) {
        free(ch);
        free(lev);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < nl; k++)
        ord[k] = k;
    for (size_t a = 1; a < nl; a++)
        for (size_t b = a; b > 0 && s->levels[ord[b]] < s->levels[ord[b - 1]]; b--) {
            size_t t = ord[b];
            ord[b] = ord[b - 1];
            ord[b - 1] = t;
        }
    for (size_t i = 0; i < nr; i++) {
        lev[i] = -1;
        for (size_t q = 0; q < nl; q++)
            if (pare_sensitivity_drop(s, i, ord[q]) <= max_drop)
                lev[i] = (int)q;
        ch[i].node = s->rows[i].node;
    }
    evaluator e;
    memset(&e, 0, sizeof e);
    prune_layers ls = {0};
    saved sv = {0};
    pare_status st = prune_find_layers(m, &o->base.filter, NULL, &ls, err);
    if (!st && !(st = eval_init(&e, o, m, err)) && !(st = save_weights(&ls, &sv, err))) {
        for (;;) {
            for (size_t i = 0; i < nr; i++)
                ch[i].sparsity = lev[i] < 0 ? 0 : s->levels[ord[lev[i]]];
            pare_prune_opts po = o->base;
            po.layers = ch;
            po.n_layers = nr;
            po.per_layer = true;
            po.pattern_m = po.pattern_n = 0;
            pare_prune_report r;
            pare_prune_report_init(&r);
            st = pare_prune_weights(m, &po, &r, err);
            pare_prune_report_release(&r);
            pare_compare c;
            pare_compare_init(&c, -1, -1);
            if (!st)
                st = eval_run(&e, m, &c, err);
            for (size_t i = 0; i < sv.n; i++) {
                pare_status st2 = restore_one(&sv, i, err);
                if (!st)
                    st = st2;
            }
            if (st)
                break;
            bool ht, ha;
            *drop = drop_of(&c, &e, &ht, &ha);
            if (*drop <= max_drop)
                break;
            /* back off the most sensitive layer still pruned */
            size_t worst = nr;
            double wd = -INFINITY;
            for (size_t i = 0; i < nr; i++) {
                if (lev[i] < 0)
                    continue;
                double d = pare_sensitivity_drop(s, i, ord[lev[i]]);
                if (d > wd) {
                    wd = d;
                    worst = i;
                }
            }
            if (worst == nr)
                break; /* everything dense already */
            lev[worst]--;
        }
    }
    saved_release(&sv);
    eval_release(&e);
    prune_layers_release(&ls);
    free(lev);
    free(ord);
    if (st) {
        free(ch);
        return st;
    }
    *out = ch;
    *n_out = nr;
    return PARE_OK;
}

void pare_sensitivity_json(const pare_sensitivity *s, pare_json *j)
{
    pare_json_begin_object(j);
    pare_json_kv_string(j, "output", s->output);
    pare_json_kv_int(j, "samples", s->samples);
    pare_json_key(j, "levels");
    pare_json_begin_array_flat(j);
    for (size_t k = 0; k < s->n_levels; k++)
        pare_json_double(j, s->levels[k]);
    pare_json_end_array(j);
    pare_json_key(j, "metric");
    pare_json_string(j, s->has_accuracy ? "accuracy" : s->has_top1 ? "top1" : "cosine");
    if (s->has_accuracy)
        pare_json_kv_double(j, "base_accuracy", s->base_accuracy);
    pare_json_key(j, "layers");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_rows; i++) {
        const pare_sensitivity_row *r = &s->rows[i];
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "node", r->node);
        pare_json_kv_string(j, "op", r->op);
        pare_json_kv_int(j, "params", r->params);
        pare_json_key(j, "cosine");
        pare_json_begin_array_flat(j);
        for (size_t k = 0; k < s->n_levels; k++)
            pare_json_double_sig(j, r->cosine[k], 6);
        pare_json_end_array(j);
        if (s->has_top1) {
            pare_json_key(j, "top1");
            pare_json_begin_array_flat(j);
            for (size_t k = 0; k < s->n_levels; k++)
                pare_json_double_sig(j, r->top1[k], 6);
            pare_json_end_array(j);
        }
        if (s->has_accuracy) {
            pare_json_key(j, "accuracy");
            pare_json_begin_array_flat(j);
            for (size_t k = 0; k < s->n_levels; k++)
                pare_json_double_sig(j, r->accuracy[k], 6);
            pare_json_end_array(j);
        }
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
}

pare_status pare_sensitivity_text(const pare_sensitivity *s, char **text, pare_error *err)
{
    *text = NULL;
    size_t nc = 3 + s->n_levels;
    pare_table *t;
    if (pare_table_new(nc, &t, err))
        return err->status;
    const char *metric = s->has_accuracy ? "accuracy" : s->has_top1 ? "top-1" : "cosine";
    pare_table_column(t, 0, "layer", PARE_ALIGN_LEFT);
    pare_table_column(t, 1, "op", PARE_ALIGN_LEFT);
    pare_table_column(t, 2, "params", PARE_ALIGN_RIGHT);
    char titles[64][32];
    for (size_t k = 0; k < s->n_levels && k < 64; k++) {
        snprintf(titles[k], sizeof titles[k], "%s@%g", metric, s->levels[k]);
        pare_table_column(t, 3 + k, titles[k], PARE_ALIGN_RIGHT);
    }
    for (size_t i = 0; i < s->n_rows; i++) {
        const pare_sensitivity_row *r = &s->rows[i];
        pare_table_row(t);
        pare_table_cell(t, "%s", r->node);
        pare_table_cell(t, "%s", r->op);
        pare_table_cell(t, "%lld", (long long)r->params);
        for (size_t k = 0; k < s->n_levels; k++) {
            double v = s->has_accuracy ? r->accuracy[k] : s->has_top1 ? r->top1[k] : r->cosine[k];
            pare_table_cell(t, "%.4f", v);
        }
    }
    size_t len;
    pare_status st = pare_table_render(t, 0, text, &len, err);
    pare_table_free(t);
    return st;
}
