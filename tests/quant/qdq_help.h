/* qdq_help.h - helpers of the int8/fp8 tests (test_calib.c, test_qdq.c,
 * test_quant_quality.c): loading, counting nodes, and comparing a
 * quantized model with its float original over a dataset. */
#ifndef QDQ_HELP_H
#define QDQ_HELP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/quant.h"
#include "pare/stats.h"

static inline pare_model *qh_load(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static inline size_t qh_count(pare_model *m, const char *op)
{
    pare_graph *g = pare_model_graph(m);
    size_t c = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        c += strcmp(g->nodes[i]->op_type, op) == 0;
    return c;
}

static inline pare_node *qh_node(pare_model *m, const char *name)
{
    return pare_graph_find_node(pare_model_graph(m), name);
}

static inline void qh_valid(pare_model *m)
{
    pare_error err;
    pare_problems pr = {0};
    assert_int_equal(pare_model_validate(m, &pr, &err), PARE_OK);
    for (size_t i = 0; i < pr.n; i++)
        print_message("problem: %s: %s\n", pr.items[i].where, pr.items[i].what);
    assert_int_equal(pr.n, 0);
    pare_problems_release(&pr);
}

/* the report entry of kind for name; NULL if none */
static inline const pare_quant_entry *qh_entry(const pare_quant_report *r,
                                               pare_quant_entry_kind kind, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].kind == kind && strcmp(r->items[i].name, name) == 0)
            return &r->items[i];
    return NULL;
}

/* Runs `data` (first max samples, batches of 32) through a and b; every
 * output i of a is compared with b's in c[i] (n_out entries, initialised
 * here); labels (may be NULL): int64 [N] for the first output. */
static inline void qh_compare(pare_model *a, pare_model *b, const char *data, int64_t max,
                              const pare_tensor *labels, pare_compare *c, size_t n_out)
{
    pare_error err;
    pare_session *sa, *sb;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    if (pare_session_new(a, &so, &sa, &err) || pare_session_new(b, &so, &sb, &err))
        fail_msg("session: %s", err.msg);
    pare_feed *f;
    if (pare_feed_open(data, sa, 32, max, &f, &err))
        fail_msg("feed: %s", err.msg);
    for (size_t i = 0; i < n_out; i++)
        pare_compare_init(&c[i], -1, -1);
    size_t n_in = pare_session_input_count(sa);
    int64_t pos = 0;
    for (;;) {
        pare_tensor **ins = NULL, **oa = NULL, **ob = NULL;
        size_t na = 0, nb = 0;
        int64_t got = 0;
        if (pare_feed_next(f, &ins, &got, &err))
            fail_msg("feed: %s", err.msg);
        if (!ins)
            break;
        if (pare_session_run(sa, ins, n_in, &oa, &na, &err) ||
            pare_session_run(sb, ins, n_in, &ob, &nb, &err))
            fail_msg("run: %s", err.msg);
        assert_int_equal(na, nb);
        assert_true(na >= n_out);
        pare_tensor *lab = NULL;
        if (labels) {
            int64_t d = got;
            if (pare_tensor_wrap(NULL, labels->dtype, 1, &d,
                                 (char *)labels->data + (size_t)pos * 8, (size_t)got * 8, &lab,
                                 &err))
                fail_msg("labels: %s", err.msg);
        }
        for (size_t i = 0; i < n_out; i++)
            if (pare_compare_add(&c[i], oa[i], ob[i], i == 0 ? lab : NULL, &err))
                fail_msg("compare: %s", err.msg);
        pare_tensor_free(lab);
        pos += got;
        pare_tensors_free(ins, n_in);
        pare_tensors_free(oa, na);
        pare_tensors_free(ob, nb);
    }
    pare_feed_close(f);
    pare_session_free(sa);
    pare_session_free(sb);
}

#endif
