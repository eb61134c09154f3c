/* opt_models - runs pare_optimize (all passes) on whole models and checks that
 * the outputs stay equal and the node count never goes up.
 *
 *   opt_models [--save DIR] [--rtol R] [--atol A] MODEL[:DATA.npz]|DIR ...
 *       Each model (a DIR is scanned for *.onnx) runs before and after the
 *       passes on the arrays of DATA.npz named after its inputs (whole arrays)
 *       or, without data, on seeded random inputs with symbolic dims 1. The
 *       optimized model is saved to memory, reloaded, checked with
 *       pare_model_validate and run; --save writes it to DIR/NAME.onnx.
 *       One line per model with the effect of each pass.
 *   opt_models --node-tests DIR [--min-applied N]
 *       The ONNX backend node tests: each DIR/test_* whose test_data_set_0
 *       the executor reproduces before the passes (rtol 1e-3, atol 1e-7) must
 *       reproduce it after them too; the others are skipped. Prints counts;
 *       fails when fewer than N models were changed by a pass.
 *
 * Exit 0 when every check holds, 1 otherwise, 77 when a directory given
 * through the environment is missing (the caller's skip). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/model.h"
#include "pare/opt.h"

static double g_rtol = 1e-4, g_atol = 1e-5;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir that end with suffix (or start with prefix when suffix is NULL). */
static char **list_dir(const char *dir, const char *prefix, const char *suffix, size_t *n)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t c = 0, cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        bool ok = suffix ? l > strlen(suffix) && strcmp(e->d_name + l - strlen(suffix), suffix) == 0
                         : strncmp(e->d_name, prefix, strlen(prefix)) == 0;
        if (!ok)
            continue;
        if (c == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[c++] = strdup(e->d_name);
    }
    closedir(d);
    if (c)
        qsort(v, c, sizeof *v, cmp_str);
    *n = c;
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool compare(const pare_tensor *got, const pare_tensor *want, double rtol, double atol,
                    char *why, size_t size)
{
    if (got->dtype != want->dtype || got->rank != want->rank ||
        (got->rank && memcmp(got->dims, want->dims, (size_t)got->rank * sizeof *got->dims))) {
        char a[128], b[128];
        snprintf(why, size, "%s %s, expected %s %s", pare_dtype_name(got->dtype),
                 pare_dims_str(got->rank, got->dims, a, sizeof a), pare_dtype_name(want->dtype),
                 pare_dims_str(want->rank, want->dims, b, sizeof b));
        return false;
    }
    uint64_t n = pare_tensor_numel(want);
    int dt = want->dtype;
    if (dt == PARE_DT_STRING) {
        const pare_string *x = got->data, *y = want->data;
        for (uint64_t i = 0; i < n; i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].data, y[i].data, x[i].len))) {
                snprintf(why, size, "string %llu differs", (unsigned long long)i);
                return false;
            }
        return true;
    }
    bool fl = pare_dtype_is_float(dt);
    if (dt == PARE_DT_COMPLEX64 || dt == PARE_DT_COMPLEX128) {
        n *= 2;
        dt = dt == PARE_DT_COMPLEX64 ? PARE_DT_FLOAT : PARE_DT_DOUBLE;
        fl = true;
    }
    for (uint64_t i = 0; i < n; i++) {
        double a = pare_dtype_get_f64(dt, got->data, (size_t)i);
        double b = pare_dtype_get_f64(dt, want->data, (size_t)i);
        if (fl) {
            if ((isnan(a) && isnan(b)) || a == b)
                continue;
            if (!isinf(a) && !isinf(b) && fabs(a - b) <= atol + rtol * fabs(b))
                continue;
        } else if (a == b) {
            continue;
        }
        snprintf(why, size, "element %llu is %.9g, expected %.9g", (unsigned long long)i, a, b);
        return false;
    }
    return true;
}

static pare_status run_model(pare_model *m, pare_tensor **ins, size_t n_ins, pare_tensor ***outs,
                             size_t *n_outs, pare_error *err)
{
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 0;
    pare_status st = pare_session_new(m, &so, &s, err);
    if (st)
        return st;
    st = pare_session_run(s, ins, n_ins, outs, n_outs, err);
    pare_session_free(s);
    return st;
}

/* Inputs for m: arrays of data (npz, whole) named after the inputs, else random. */
static pare_status make_inputs(pare_model *m, const char *data, pare_tensor ***out, size_t *n,
                               pare_error *err)
{
    pare_session *s;
    pare_status st = pare_session_new(m, NULL, &s, err);
    if (st)
        return st;
    size_t ni = pare_session_input_count(s);
    pare_tensor **ins = calloc(ni ? ni : 1, sizeof *ins);
    pare_npz *z = NULL;
    if (!ins) {
        pare_session_free(s);
        return PARE_ERR_NOMEM;
    }
    if (data && (st = pare_npz_open(data, &z, err)))
        goto out;
    for (size_t i = 0; i < ni && !st; i++) {
        const pare_value *v = pare_session_input(s, i);
        int64_t k = z ? pare_npz_find(z, v->name) : -1;
        if (k >= 0) {
            st = pare_npz_read(z, (size_t)k, &ins[i], err);
            if (!st)
                st = pare_tensor_set_name(ins[i], v->name, err);
            continue;
        }
        int64_t dims[PARE_MAX_RANK];
        int rank = v->shape.rank < 0 ? 0 : v->shape.rank;
        for (int d = 0; d < rank; d++)
            dims[d] = v->shape.dims[d].value >= 0 ? v->shape.dims[d].value : 1;
        st = pare_tensor_random(v->name, v->dtype ? v->dtype : PARE_DT_FLOAT, rank, dims,
                                1234 + i, &ins[i], err);
    }
out:
    pare_npz_close(z);
    pare_session_free(s);
    if (st) {
        pare_tensors_free(ins, ni);
        return st;
    }
    *out = ins;
    *n = ni;
    return PARE_OK;
}

static bool compare_all(pare_tensor **got, size_t ng, pare_tensor **want, size_t nw, char *why,
                        size_t size)
{
    if (ng != nw) {
        snprintf(why, size, "%zu outputs, expected %zu", ng, nw);
        return false;
    }
    for (size_t i = 0; i < nw; i++) {
        char w[400];
        if (!compare(got[i], want[i], g_rtol, g_atol, w, sizeof w)) {
            snprintf(why, size, "output '%s': %s", want[i]->name ? want[i]->name : "?", w);
            return false;
        }
    }
    return true;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool check_model(const char *path, const char *data, const char *save_dir)
{
    pare_error err;
    pare_model *orig = NULL, *opt = NULL, *back = NULL;
    pare_tensor **ins = NULL, **want = NULL, **got2 = NULL;
    size_t ni = 0, nw = 0, ng2 = 0;
    bool ok = false;
    char why[1200] = "";
    pare_opt_report r;
    memset(&r, 0, sizeof r);
    void *buf = NULL;
    size_t len = 0;
    if (pare_model_load(path, NULL, &orig, &err) || pare_model_load(path, NULL, &opt, &err) ||
        make_inputs(orig, data, &ins, &ni, &err) || run_model(orig, ins, ni, &want, &nw, &err)) {
        snprintf(why, sizeof why, "before: %s", err.msg);
        goto out;
    }
    pare_opt_opts o = PARE_OPT_OPTS_ALL;
    if (pare_optimize(opt, &o, &r, &err)) {
        snprintf(why, sizeof why, "pare_optimize: %s", err.msg);
        goto out;
    }
    if (r.nodes_after > r.nodes_before) {
        snprintf(why, sizeof why, "node count went up: %zu -> %zu", r.nodes_before,
                 r.nodes_after);
        goto out;
    }
    /* the saved form (what a program writes): valid, same outputs */
    pare_problems p = {0};
    if (pare_model_save_buffer(opt, &buf, &len, &err) ||
        pare_model_load_buffer(buf, len, NULL, NULL, &back, &err) ||
        pare_model_validate(back, &p, &err) || run_model(back, ins, ni, &got2, &ng2, &err)) {
        snprintf(why, sizeof why, "saved model: %s", err.msg);
        pare_problems_release(&p);
        goto out;
    }
    if (p.n) {
        snprintf(why, sizeof why, "saved model: %s: %s", p.items[0].where, p.items[0].what);
        pare_problems_release(&p);
        goto out;
    }
    if (!compare_all(got2, ng2, want, nw, why, sizeof why))
        goto out;
    if (save_dir) {
        char outp[4096];
        snprintf(outp, sizeof outp, "%s/%s", save_dir, base_name(path));
        pare_save_opts so = PARE_SAVE_OPTS_INIT;
        so.external_threshold = -1;
        if (strcmp(base_name(path), "model.onnx") == 0) {
            /* a model in its own folder: name the copy after the folder */
            char dir[4096];
            snprintf(dir, sizeof dir, "%.*s", (int)(strlen(path) - strlen("/model.onnx")), path);
            snprintf(outp, sizeof outp, "%s/%s.onnx", save_dir, base_name(dir));
            so.external_threshold = 1 << 30; /* embed */
        }
        if (pare_model_save(opt, outp, &so, &err)) {
            snprintf(why, sizeof why, "save: %s", err.msg);
            goto out;
        }
    }
    ok = true;
out:
    if (ok)
        printf("ok   %-28s nodes %4zu -> %4zu  inits %4zu -> %4zu  bytes %9llu -> %9llu  "
               "identity %zu noop %zu folded %zu bn %zu dedupe %zu dead %zu\n",
               base_name(path), r.nodes_before, r.nodes_after, r.inits_before, r.inits_after,
               (unsigned long long)r.bytes_before, (unsigned long long)r.bytes_after,
               r.removed_identity, r.removed_noop, r.folded, r.bn_folded, r.deduped,
               r.removed_dead);
    else
        printf("FAIL %s: %s\n", path, why);
    if (r.notes && ok) {
        size_t lines = 0;
        for (const char *c = r.notes; *c; c++)
            lines += *c == '\n';
        printf("     %zu notes, the first: %.*s\n", lines, (int)strcspn(r.notes, "\n"), r.notes);
    }
    pare_opt_report_release(&r);
    free(buf);
    pare_tensors_free(ins, ni);
    pare_tensors_free(want, nw);
    pare_tensors_free(got2, ng2);
    pare_model_free(orig);
    pare_model_free(opt);
    pare_model_free(back);
    return ok;
}

/* ---- node tests ---- */

static pare_status read_set(const char *dir, const char *prefix, pare_tensor ***out, size_t *n,
                            pare_error *err)
{
    size_t k;
    char **names = list_dir(dir, prefix, NULL, &k);
    pare_tensor **ts = calloc(k ? k : 1, sizeof *ts);
    pare_status st = ts ? PARE_OK : PARE_ERR_NOMEM;
    /* input_0.pb .. input_9.pb, input_10.pb: by number, not by name */
    for (size_t i = 0; i < k && !st; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s%zu.pb", dir, prefix, i);
        st = pare_tensor_read_file(p, &ts[i], err);
        if (!st)
            st = pare_tensor_set_name(ts[i], NULL, err);
    }
    free_list(names, k);
    if (st) {
        pare_tensors_free(ts, k);
        return st;
    }
    *out = ts;
    *n = k;
    return PARE_OK;
}

typedef enum { CASE_SKIP, CASE_SAME, CASE_APPLIED, CASE_FAIL } case_result;

/* what the passes did over all node tests */
static size_t g_sum[6];

static case_result node_case(const char *dir, char *why, size_t size)
{
    char path[4096], set[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(set, sizeof set, "%s/test_data_set_0", dir);
    pare_error err;
    pare_model *m = NULL;
    pare_tensor **ins = NULL, **want = NULL, **got = NULL;
    size_t ni = 0, nw = 0, ng = 0;
    case_result res = CASE_SKIP;
    pare_opt_report r;
    memset(&r, 0, sizeof r);
    if (pare_model_load(path, NULL, &m, &err) || read_set(set, "input_", &ins, &ni, &err) ||
        read_set(set, "output_", &want, &nw, &err))
        goto out;
    double rt = g_rtol, at = g_atol;
    g_rtol = 1e-3;
    g_atol = 1e-7;
    if (run_model(m, ins, ni, &got, &ng, &err) || !compare_all(got, ng, want, nw, why, size)) {
        g_rtol = rt;
        g_atol = at;
        goto out; /* the executor could not run it before: skipped */
    }
    pare_tensors_free(got, ng);
    got = NULL;
    pare_opt_opts o = PARE_OPT_OPTS_ALL;
    res = CASE_FAIL;
    if (pare_optimize(m, &o, &r, &err)) {
        snprintf(why, size, "pare_optimize: %s", err.msg);
    } else if (r.nodes_after > r.nodes_before) {
        snprintf(why, size, "node count went up: %zu -> %zu", r.nodes_before, r.nodes_after);
    } else if (run_model(m, ins, ni, &got, &ng, &err)) {
        snprintf(why, size, "after: %s", err.msg);
    } else if (compare_all(got, ng, want, nw, why, size)) {
        size_t c[6] = {r.removed_identity, r.removed_noop, r.folded, r.bn_folded, r.deduped,
                       r.removed_dead};
        for (int i = 0; i < 6; i++)
            g_sum[i] += c[i];
        res = r.nodes_after < r.nodes_before || r.removed_identity || r.removed_noop ||
                      r.folded || r.bn_folded || r.deduped || r.removed_dead
                  ? CASE_APPLIED
                  : CASE_SAME;
    }
    g_rtol = rt;
    g_atol = at;
out:
    pare_opt_report_release(&r);
    pare_tensors_free(ins, ni);
    pare_tensors_free(want, nw);
    pare_tensors_free(got, ng);
    pare_model_free(m);
    return res;
}

static int node_tests(const char *dir, long min_applied)
{
    size_t n;
    char **cases = list_dir(dir, "test_", NULL, &n);
    if (!cases || !n) {
        fprintf(stderr, "opt_models: %s: no test_* folders\n", dir);
        return 77;
    }
    size_t skip = 0, same = 0, applied = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char d[4096], why[1200] = "";
        snprintf(d, sizeof d, "%s/%s", dir, cases[i]);
        switch (node_case(d, why, sizeof why)) {
        case CASE_SKIP:
            skip++;
            break;
        case CASE_SAME:
            same++;
            break;
        case CASE_APPLIED:
            applied++;
            break;
        case CASE_FAIL:
            failed++;
            printf("FAIL %s: %s\n", cases[i], why);
            break;
        }
    }
    printf("node tests: %zu cases, %zu skipped (the executor fails them before the passes), "
           "%zu unchanged, %zu changed by a pass and still equal, %zu failed\n",
           n, skip, same, applied, failed);
    printf("changes: identity %zu, noop %zu, folded %zu, bn %zu, dedupe %zu, dead %zu\n",
           g_sum[0], g_sum[1], g_sum[2], g_sum[3], g_sum[4], g_sum[5]);
    free_list(cases, n);
    if ((long)applied < min_applied) {
        printf("FAIL only %zu cases were changed by a pass, expected at least %ld\n", applied,
               min_applied);
        return 1;
    }
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *save = NULL, *nodes = NULL;
    long min_applied = 0;
    int first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        const char *a = argv[first];
        if (first + 1 >= argc) {
            fprintf(stderr, "opt_models: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--save"))
            save = argv[++first];
        else if (!strcmp(a, "--rtol"))
            g_rtol = atof(argv[++first]);
        else if (!strcmp(a, "--atol"))
            g_atol = atof(argv[++first]);
        else if (!strcmp(a, "--node-tests"))
            nodes = argv[++first];
        else if (!strcmp(a, "--min-applied"))
            min_applied = atol(argv[++first]);
        else {
            fprintf(stderr, "opt_models: unknown option %s\n", a);
            return 2;
        }
    }
    /* "$NAME": the folder in environment variable NAME (unset: skip) */
    if (nodes && nodes[0] == '$') {
        const char *e = getenv(nodes + 1);
        if (!e || !*e) {
            printf("%s not set: skipping (scripts/test-all sets it)\n", nodes + 1);
            return 77;
        }
        nodes = e;
    }
    if (nodes)
        return node_tests(nodes, min_applied);
    int failed = 0, total = 0;
    for (int i = first; i < argc; i++) {
        char arg[4096];
        const char *a = argv[i];
        if (a[0] == '$') {
            a = getenv(argv[i] + 1);
            if (!a || !*a) {
                printf("%s not set: skipping (scripts/test-all sets it)\n", argv[i] + 1);
                return 77;
            }
        }
        snprintf(arg, sizeof arg, "%s", a);
        char *data = strstr(arg, ".onnx:");
        if (data) {
            data += 5;
            *data++ = 0;
        }
        struct stat sb;
        if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            size_t n;
            char **files = list_dir(arg, NULL, ".onnx", &n);
            if (!n) {
                fprintf(stderr, "opt_models: %s: no .onnx files\n", arg);
                free_list(files, n);
                return 77;
            }
            for (size_t k = 0; k < n; k++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", arg, files[k]);
                total++;
                failed += !check_model(p, NULL, save);
            }
            free_list(files, n);
        } else {
            total++;
            failed += !check_model(arg, data, save);
        }
    }
    printf("%d models, %d failed\n", total, failed);
    return failed ? 1 : 0;
}
