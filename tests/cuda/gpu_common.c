/* Helpers of the GPU suite (gpu_common.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gpu_common.h"
#include "exec/backend.h"

bool gpu_usable(char *why, size_t size)
{
    const pare_backend *b;
    pare_error err;
    if (pare_backend_get("cuda", 0, &b, &err)) {
        snprintf(why, size, "%s", err.msg);
        return false;
    }
    return true;
}

pare_status gpu_read_pb(const char *path, pare_tensor **out, pare_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pare_error_set(err, PARE_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(n > 0 ? (size_t)n : 1);
    size_t got = b && n > 0 ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!b || got != (size_t)(n > 0 ? n : 0)) {
        free(b);
        return pare_error_set(err, PARE_ERR_IO, "%s: read failed", path);
    }
    pare_status st = pare_tensor_pb_decode(b, (size_t)n, out, err);
    free(b);
    return st;
}

bool gpu_compare(const pare_tensor *got, const pare_tensor *want, double rtol, double atol,
                 char *why, size_t size)
{
    if (got->dtype != want->dtype) {
        snprintf(why, size, "dtype %s, expected %s", pare_dtype_name(got->dtype),
                 pare_dtype_name(want->dtype));
        return false;
    }
    if (got->rank != want->rank ||
        (got->rank && memcmp(got->dims, want->dims, (size_t)got->rank * sizeof *got->dims))) {
        char a[128], b[128];
        snprintf(why, size, "shape %s, expected %s", pare_dims_str(got->rank, got->dims, a, 128),
                 pare_dims_str(want->rank, want->dims, b, 128));
        return false;
    }
    uint64_t n = pare_tensor_numel(want);
    if (want->dtype == PARE_DT_STRING) {
        snprintf(why, size, "string output");
        return false;
    }
    bool fl = pare_dtype_is_float(want->dtype);
    double worst = 0;
    uint64_t at = 0, bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        double a = pare_dtype_get_f64(want->dtype, got->data, (size_t)i);
        double b = pare_dtype_get_f64(want->dtype, want->data, (size_t)i);
        bool ok;
        if (!fl)
            ok = a == b;
        else if (isnan(a) || isnan(b))
            ok = isnan(a) && isnan(b);
        else if (isinf(a) || isinf(b))
            ok = a == b;
        else
            ok = fabs(a - b) <= atol + rtol * fabs(b);
        if (!ok) {
            double d = fabs(a - b);
            if (!bad || d > worst || isnan(d)) {
                worst = d;
                at = i;
            }
            bad++;
        }
    }
    if (!bad)
        return true;
    snprintf(why, size, "%llu of %llu elements off; worst at %llu: %.9g, expected %.9g "
             "(rtol %g, atol %g)",
             (unsigned long long)bad, (unsigned long long)n, (unsigned long long)at,
             pare_dtype_get_f64(want->dtype, got->data, (size_t)at),
             pare_dtype_get_f64(want->dtype, want->data, (size_t)at), rtol, atol);
    return false;
}

pare_status gpu_run(pare_model *m, const char *device, int cuda_graph, int runs,
                    pare_tensor *const *ins, size_t n_in, pare_tensor ***outs, size_t *n_outs,
                    pare_run_stats *rs, char **plan, pare_error *err)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = device;
    so.cuda_graph = cuda_graph;
    so.threads = 1;
    pare_session *s;
    *outs = NULL;
    *n_outs = 0;
    pare_status st = pare_session_new(m, &so, &s, err);
    if (st)
        return st;
    if (plan)
        *plan = pare_session_plan_text(s);
    for (int r = 0; r < runs && !st; r++) {
        if (*outs)
            pare_tensors_free(*outs, *n_outs);
        *outs = NULL;
        st = pare_session_run(s, ins, n_in, outs, n_outs, err);
    }
    if (rs)
        pare_session_run_stats(s, rs);
    pare_session_free(s);
    return st;
}

pare_status gpu_make_inputs(pare_model *m, int64_t dyn, pare_tensor ***ins, size_t *n,
                            pare_error *err)
{
    pare_graph *g = pare_model_graph(m);
    *ins = calloc(g->n_inputs ? g->n_inputs : 1, sizeof **ins);
    *n = 0;
    if (!*ins)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (v->init)
            continue;
        int64_t dims[PARE_MAX_RANK];
        int r = v->shape.rank < 0 ? 1 : v->shape.rank;
        for (int d = 0; d < r; d++)
            dims[d] = v->shape.rank < 0 || v->shape.dims[d].param || v->shape.dims[d].value <= 0
                          ? dyn
                          : v->shape.dims[d].value;
        pare_tensor *t;
        pare_status st = pare_tensor_new(v->name, v->dtype ? v->dtype : PARE_DT_FLOAT, r, dims, &t,
                                         err);
        if (st)
            return st;
        uint64_t ne = pare_tensor_numel(t);
        for (uint64_t j = 0; j < ne; j++) {
            double x = pare_dtype_is_float(t->dtype) ? (double)j / (double)ne
                       : t->dtype == PARE_DT_BOOL    ? (double)(j % 2)
                                                     : (double)(j % 7);
            pare_dtype_set_f64(t->dtype, t->data, (size_t)j, x);
        }
        (*ins)[(*n)++] = t;
    }
    return PARE_OK;
}

bool gpu_plan_has(const char *plan, const char *be, const char *note)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s ", be);
    for (const char *l = plan; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        if (strstr(line, pat) && strstr(line, note))
            return true;
        l = e ? e + 1 : NULL;
    }
    return false;
}
