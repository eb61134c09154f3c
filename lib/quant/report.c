/* report.c - the report every quantization mode appends to (pare/quant.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/quant.h"

void pare_quant_report_init(pare_quant_report *r) { memset(r, 0, sizeof *r); }

void pare_quant_report_release(pare_quant_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].name);
        free(r->items[i].op);
        free(r->items[i].how);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

static pare_status push(pare_quant_report *r, pare_quant_entry *e, pare_error *err)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        pare_quant_entry *p = realloc(r->items, cap * sizeof *p);
        if (!p)
            goto nomem;
        r->items = p;
        r->cap = cap;
    }
    r->items[r->n++] = *e;
    return PARE_OK;
nomem:
    free(e->name);
    free(e->op);
    free(e->how);
    return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

pare_status pare_quant_report_node(pare_quant_report *r, pare_quant_entry_kind kind,
                                   const pare_node *n, const char *how, pare_error *err)
{
    pare_quant_entry e = {.kind = kind};
    bool failed = false;
    char label[64];
    const char *name = n->name && n->name[0] ? n->name : NULL;
    if (!name) {
        snprintf(label, sizeof label, "#%zu", n->id);
        name = label;
    }
    e.name = dup_or_null(name, &failed);
    e.op = dup_or_null(n->op_type, &failed);
    e.how = dup_or_null(how, &failed);
    if (failed) {
        free(e.name);
        free(e.op);
        free(e.how);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    return push(r, &e, err);
}

pare_status pare_quant_report_range(pare_quant_report *r, const char *tensor, double lo, double hi,
                                    double scale, int64_t zero_point, pare_error *err)
{
    pare_quant_entry e = {.kind = PARE_QE_RANGE, .lo = lo, .hi = hi, .scale = scale,
                          .zero_point = zero_point};
    bool failed = false;
    e.name = dup_or_null(tensor, &failed);
    if (failed)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return push(r, &e, err);
}

pare_status pare_quant_report_clamped(pare_quant_report *r, const char *tensor, uint64_t count,
                                      pare_error *err)
{
    pare_quant_entry e = {.kind = PARE_QE_CLAMPED, .count = count};
    bool failed = false;
    e.name = dup_or_null(tensor, &failed);
    if (failed)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return push(r, &e, err);
}

static void add_graph_bytes(pare_graph *g, void *ctx)
{
    uint64_t *sum = ctx;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v && v->init)
            *sum += v->init->nbytes;
    }
}

uint64_t pare_model_weight_bytes(pare_model *m)
{
    uint64_t sum = 0;
    pare_graph_walk(pare_model_graph(m), add_graph_bytes, &sum);
    return sum;
}
