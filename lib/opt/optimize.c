/* Cutting a model to named outputs/inputs, and the driver that runs the
 * passes until nothing changes. */
#include <stdio.h>
#include <inttypes.h>
#include "opt/opt_int.h"
#include "pare/infer.h"

#define MAX_ROUNDS 8

/* ---- cut ---- */

static pare_status main_value(pare_graph *g, const char *what, const char *name, pare_value **out,
                              pare_error *err)
{
    *out = NULL;
    if (!name || !*name)
        return pare_error_set(err, PARE_ERR_ARG, "an empty name was given as %s", what);
    pare_value *v = pare__graph_index_get(g, name);
    if (!v || (!v->producer && !v->is_input && !v->init && !v->is_sparse_init))
        return pare_error_set(err, PARE_ERR_ARG, "%s '%s' is not a tensor of the main graph",
                              what, name);
    if (v->elem_kind != 0)
        return pare_error_set(err, PARE_ERR_ARG, "%s '%s' is not a tensor (a sequence, map or "
                              "optional value)", what, name);
    *out = v;
    return PARE_OK;
}

pare_status pare_opt_cut(pare_model *m, const char *const *outputs, size_t n_outputs,
                         const char *const *inputs, size_t n_inputs, size_t *changed,
                         pare_error *err)
{
    pare_graph *g = pare_model_graph(m);
    size_t count = 0;
    pare_status st = PARE_OK;
    if (changed)
        *changed = 0;
    if ((!outputs || !n_outputs) && (!inputs || !n_inputs))
        return PARE_OK;
    /* validate every name before changing anything */
    for (size_t i = 0; outputs && i < n_outputs; i++) {
        pare_value *v;
        if ((st = main_value(g, "output", outputs[i], &v, err)))
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(outputs[i], outputs[j]) == 0)
                return pare_error_set(err, PARE_ERR_ARG, "output '%s' is named twice",
                                      outputs[i]);
    }
    for (size_t i = 0; inputs && i < n_inputs; i++) {
        pare_value *v;
        if ((st = main_value(g, "input", inputs[i], &v, err)))
            return st;
        if (opt_is_const(v))
            return pare_error_set(err, PARE_ERR_ARG,
                                  "input '%s' is an initializer (a constant), not a tensor "
                                  "computed from the inputs", inputs[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(inputs[i], inputs[j]) == 0)
                return pare_error_set(err, PARE_ERR_ARG, "input '%s' is named twice", inputs[i]);
        for (size_t j = 0; outputs && j < n_outputs; j++)
            if (strcmp(inputs[i], outputs[j]) == 0)
                return pare_error_set(err, PARE_ERR_ARG,
                                      "'%s' is given both as an input and as an output",
                                      inputs[i]);
        if (!outputs || !n_outputs)
            for (size_t j = 0; j < g->n_outputs; j++)
                if (g->outputs[j] == v && !v->is_input)
                    return pare_error_set(err, PARE_ERR_ARG,
                                          "input '%s' is an output of the model; name the "
                                          "outputs to keep with it", inputs[i]);
    }
    /* types for the tensors that become inputs or outputs */
    pare_error ierr;
    if (pare_infer_shapes(m, NULL, NULL, &ierr) == PARE_ERR_NOMEM)
        return PARE_NOMEM(err);
    for (size_t i = 0; outputs && i < n_outputs; i++) {
        pare_value *v = pare__graph_index_get(g, outputs[i]);
        if (!v->dtype)
            return pare_error_set(err, PARE_ERR_ARG,
                                  "output '%s': its type is not known, so it cannot be an output",
                                  outputs[i]);
    }
    for (size_t i = 0; inputs && i < n_inputs; i++) {
        pare_value *v = pare__graph_index_get(g, inputs[i]);
        if (!v->is_input && !v->dtype)
            return pare_error_set(err, PARE_ERR_ARG,
                                  "input '%s': its type is not known, so it cannot be an input",
                                  inputs[i]);
    }
    /* outputs: exactly the named ones, in that order */
    if (outputs && n_outputs) {
        bool same = g->n_outputs == n_outputs;
        for (size_t i = 0; same && i < n_outputs; i++)
            same = strcmp(g->outputs[i]->name, outputs[i]) == 0;
        if (!same) {
            while (g->n_outputs)
                if ((st = pare_graph_remove_output(g, g->n_outputs - 1, err)))
                    return st;
            for (size_t i = 0; i < n_outputs; i++) {
                pare_value *v = pare__graph_index_get(g, outputs[i]);
                if ((st = pare_graph_add_output(g, v, err)))
                    return st;
                v->dirty = true; /* its value_info is written from the IR's type */
            }
            count++;
        }
    }
    /* inputs: a computed tensor is cut from its producer and becomes an input */
    pare_value **old_inputs = NULL;
    size_t n_old = g->n_inputs;
    if (inputs && n_inputs) {
        old_inputs = malloc((n_old ? n_old : 1) * sizeof *old_inputs);
        if (!old_inputs)
            return PARE_NOMEM(err);
        if (n_old)
            memcpy(old_inputs, g->inputs, n_old * sizeof *old_inputs);
        while (g->n_inputs)
            if ((st = pare_graph_remove_input(g, g->n_inputs - 1, err)))
                goto out;
        for (size_t i = 0; i < n_inputs; i++) {
            pare_value *v = pare__graph_index_get(g, inputs[i]);
            bool was_input = false;
            for (size_t j = 0; j < n_old; j++)
                if (old_inputs[j] == v)
                    was_input = true;
            if (!was_input) {
                /* a fresh value takes v's uses and then v's name */
                pare_value *nv;
                char tmp[512];
                if ((st = pare_graph_new_value(g, NULL, "__cut", v->dtype, &nv, err)) ||
                    (st = pare_value_set_type(nv, v->dtype, &v->shape, err)) ||
                    (st = pare_value_replace_uses(v, nv, err)))
                    goto out;
                bool was_output = v->is_output;
                for (size_t j = 0; was_output && j < g->n_outputs; j++)
                    if (g->outputs[j] == v)
                        g->outputs[j] = nv;
                v->is_output = false;
                nv->is_output = was_output;
                if ((st = pare_value_rename(v, pare_graph_unique_name(g, "__cut_old", tmp,
                                                                      sizeof tmp),
                                            err)) ||
                    (st = pare_value_rename(nv, inputs[i], err)))
                    goto out;
                v = nv;
                count++;
            }
            if ((st = pare_graph_add_input(g, v, err)))
                goto out;
        }
    }
    /* earlier inputs follow the named ones for now (so that nothing frees them) */
    for (size_t j = 0; old_inputs && j < n_old; j++)
        if (!old_inputs[j]->is_input && (st = pare_graph_add_input(g, old_inputs[j], err)))
            goto out;
    /* what no output needs goes */
    size_t dead = 0;
    if ((st = pare_opt_remove_dead(m, &dead, err)))
        goto out;
    count += dead;
    /* then earlier inputs that nothing reads any more go too */
    for (size_t j = g->n_inputs; j-- > 0;) {
        pare_value *v = g->inputs[j];
        bool named = false;
        for (size_t k = 0; inputs && k < n_inputs && !named; k++)
            named = strcmp(v->name, inputs[k]) == 0;
        if (!named && !v->n_uses && !v->is_output) {
            if ((st = pare_graph_remove_input(g, j, err)))
                goto out;
            count++;
        }
    }
    /* dropped inputs (and initializers that were inputs) are swept */
    {
        opt_pins pins;
        if ((st = opt_pins_collect(m, &pins, err)))
            goto out;
        st = opt_sweep_values(g, &pins, true, NULL, err);
        opt_pins_release(&pins);
    }
out:
    free(old_inputs);
    if (changed)
        *changed = count;
    return st;
}

/* ---- the driver ---- */

typedef struct totals {
    size_t nodes, inits;
    uint64_t bytes;
} totals;

static void count_graph(pare_graph *g, void *ctx)
{
    totals *t = ctx;
    t->nodes += g->n_nodes;
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        if (v->init || v->is_sparse_init) {
            t->inits++;
            if (v->init)
                t->bytes += v->init->nbytes;
        }
    }
}

static totals count_model(pare_model *m)
{
    totals t = {0, 0, 0};
    pare_graph_walk(pare_model_graph(m), count_graph, &t);
    return t;
}

static bool problem_known(const pare_problems *before, const pare_problem *p)
{
    for (size_t i = 0; i < before->n; i++)
        if (strcmp(before->items[i].where, p->where) == 0 &&
            strcmp(before->items[i].what, p->what) == 0)
            return true;
    return false;
}

typedef struct sort_ctx {
    pare_status st;
    pare_error *err;
} sort_ctx;

static void sort_graph(pare_graph *g, void *ctx)
{
    sort_ctx *c = ctx;
    if (c->st == PARE_OK)
        c->st = pare_graph_toposort(g, c->err);
}

void pare_opt_report_release(pare_opt_report *r)
{
    if (!r)
        return;
    free(r->notes);
    memset(r, 0, sizeof *r);
}

pare_status pare_optimize(pare_model *m, const pare_opt_opts *o, pare_opt_report *r,
                          pare_error *err)
{
    pare_opt_opts all = PARE_OPT_OPTS_ALL;
    pare_opt_report local;
    pare_error lerr;
    if (!err)
        err = &lerr;
    if (!o)
        o = &all;
    if (!r)
        r = &local;
    memset(r, 0, sizeof *r);
    totals t0 = count_model(m);
    r->nodes_before = t0.nodes;
    r->inits_before = t0.inits;
    r->bytes_before = t0.bytes;
    pare_problems before = {0}, after = {0};
    pare_status st = pare_model_validate(m, &before, err);
    if (!st && o->n_outputs && !o->outputs)
        st = pare_error_set(err, PARE_ERR_ARG, "n_outputs is %zu but outputs is NULL",
                            o->n_outputs);
    if (!st && o->n_inputs && !o->inputs)
        st = pare_error_set(err, PARE_ERR_ARG, "n_inputs is %zu but inputs is NULL",
                            o->n_inputs);
    size_t cut = 0;
    if (!st)
        st = pare_opt_cut(m, o->outputs, o->n_outputs, o->inputs, o->n_inputs, &cut, err);
    if (!st && cut)
        r->removed_dead += cut;
    for (int round = 0; round < MAX_ROUNDS && !st; round++) {
        size_t c, total = 0;
        if (o->identity && !(st = pare_opt_remove_identity(m, &c, err))) {
            r->removed_identity += c;
            total += c;
        }
        if (!st && o->noop && !(st = pare_opt_remove_noop(m, &c, err))) {
            r->removed_noop += c;
            total += c;
        }
        if (!st && o->fold_bn && !(st = pare_opt_fold_batchnorm(m, &c, err))) {
            r->bn_folded += c;
            total += c;
        }
        if (!st && o->fold &&
            !(st = pare_opt_fold_constants_ex(m, o->fold_max_bytes, &c,
                                              round == 0 ? &r->notes : NULL, err))) {
            r->folded += c;
            total += c;
        }
        if (!st && o->dedupe && !(st = pare_opt_dedupe_initializers(m, &c, err))) {
            r->deduped += c;
            total += c;
        }
        if (!st && o->dead && !(st = pare_opt_remove_dead(m, &c, err))) {
            r->removed_dead += c;
            total += c;
        }
        if (!total)
            break;
    }
    if (!st) {
        sort_ctx sc = {PARE_OK, err};
        pare_graph_walk(pare_model_graph(m), sort_graph, &sc);
        st = sc.st;
    }
    if (!st && !(st = pare_model_validate(m, &after, err))) {
        for (size_t i = 0; i < after.n; i++) {
            if (!problem_known(&before, &after.items[i])) {
                st = pare_error_set(err, PARE_ERR_INVALID,
                                    "after cleanup: %s: %s (a bug in the passes: please report "
                                    "it with the model)",
                                    after.items[i].where, after.items[i].what);
                break;
            }
        }
    }
    pare_problems_release(&before);
    pare_problems_release(&after);
    totals t1 = count_model(m);
    r->nodes_after = t1.nodes;
    r->inits_after = t1.inits;
    r->bytes_after = t1.bytes;
    if (r == &local)
        pare_opt_report_release(&local);
    return st;
}
