/* Conformance: runs the executor over ONNX backend node test cases
 * (DIR/test_NAME/model.onnx with test_data_set_N/input_K.pb and output_K.pb)
 * and compares with onnx's backend-test tolerances (rtol 1e-3, atol 1e-7).
 *
 * Usage: run_node_tests [--filter SUBSTR] [--min-pass N] [--verbose] [--list-failures] DIR...
 * Prints a line per failing case, a table of failures by op, and
 * "N passed, N failed". Exits 1 when --min-pass is given and not reached
 * (the ratchet), 0 otherwise. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "pare/exec.h"
#include "pare/model.h"

typedef struct opcount {
    char op[64];
    int pass, fail;
} opcount;

static opcount ops[1024];
static size_t n_ops;

static void count_op(const char *op, bool ok)
{
    for (size_t i = 0; i < n_ops; i++)
        if (strcmp(ops[i].op, op) == 0) {
            ok ? ops[i].pass++ : ops[i].fail++;
            return;
        }
    if (n_ops < sizeof ops / sizeof *ops) {
        snprintf(ops[n_ops].op, sizeof ops[n_ops].op, "%s", op);
        ok ? ops[n_ops].pass++ : ops[n_ops].fail++;
        n_ops++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static pare_status read_pb(const char *path, pare_tensor **out, pare_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pare_error_set(err, PARE_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b || (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)) {
        fclose(f);
        free(b);
        return pare_error_set(err, PARE_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    pare_status st = pare_tensor_pb_decode(b, (size_t)n, out, err);
    free(b);
    return st;
}

static bool compare(const pare_tensor *got, const pare_tensor *want, double rtol, double atol,
                    char *why, size_t size)
{
    if (got->dtype != want->dtype) {
        snprintf(why, size, "dtype %s, expected %s", pare_dtype_name(got->dtype),
                 pare_dtype_name(want->dtype));
        return false;
    }
    if (got->rank != want->rank ||
        (got->rank && memcmp(got->dims, want->dims, (size_t)got->rank * 8) != 0)) {
        char a[128], b[128];
        snprintf(why, size, "shape %s, expected %s", pare_dims_str(got->rank, got->dims, a, 128),
                 pare_dims_str(want->rank, want->dims, b, 128));
        return false;
    }
    uint64_t n = pare_tensor_numel(want);
    if (want->dtype == PARE_DT_STRING) {
        const pare_string *x = got->data, *y = want->data;
        for (uint64_t i = 0; i < n; i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].data, y[i].data, x[i].len) != 0)) {
                snprintf(why, size, "string %llu differs", (unsigned long long)i);
                return false;
            }
        return true;
    }
    int dt = want->dtype;
    bool is_float = pare_dtype_is_float(dt);
    if (dt == PARE_DT_COMPLEX64 || dt == PARE_DT_COMPLEX128) {
        n *= 2;
        dt = dt == PARE_DT_COMPLEX64 ? PARE_DT_FLOAT : PARE_DT_DOUBLE;
    }
    for (uint64_t i = 0; i < n; i++) {
        double a = pare_dtype_get_f64(dt, got->data, (size_t)i);
        double b = pare_dtype_get_f64(dt, want->data, (size_t)i);
        if (is_float) {
            if (isnan(a) && isnan(b))
                continue;
            if (isinf(a) || isinf(b)) {
                if (a == b)
                    continue;
            } else if (fabs(a - b) <= atol + rtol * fabs(b)) {
                continue;
            }
        } else if (a == b) {
            continue;
        }
        snprintf(why, size, "element %llu is %.9g, expected %.9g", (unsigned long long)i, a, b);
        return false;
    }
    return true;
}

static bool run_case(const char *dir, bool verbose, char *why, size_t size, char *op, size_t opsz)
{
    char path[4096];
    pare_error err;
    pare_model *m = NULL;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(op, opsz, "?");
    if (pare_model_load(path, NULL, &m, &err)) {
        snprintf(why, size, "load: %s", err.msg);
        return false;
    }
    pare_graph *g = pare_model_graph(m);
    if (g->n_nodes)
        snprintf(op, opsz, "%s", g->nodes[0]->op_type);
    pare_session *s = NULL;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    bool ok = true;
    if (pare_session_new(m, &so, &s, &err)) {
        snprintf(why, size, "plan: %s", err.msg);
        pare_model_free(m);
        return false;
    }
    /* each test_data_set_N */
    DIR *d = opendir(dir);
    char *sets[64];
    size_t n_sets = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "test_data_set_", 14) == 0 && n_sets < 64)
            sets[n_sets++] = strdup(e->d_name);
    if (d)
        closedir(d);
    if (n_sets)
        qsort(sets, n_sets, sizeof *sets, cmp_str);
    for (size_t si = 0; si < n_sets && ok; si++) {
        pare_tensor *ins[64], *wants[64];
        size_t n_in = 0, n_want = 0;
        for (; n_in < 64; n_in++) {
            snprintf(path, sizeof path, "%s/%s/input_%zu.pb", dir, sets[si], n_in);
            struct stat sb;
            if (stat(path, &sb) != 0)
                break;
            if (read_pb(path, &ins[n_in], &err)) {
                snprintf(why, size, "%s: %s", path, err.msg);
                ok = false;
                break;
            }
        }
        for (; ok && n_want < 64; n_want++) {
            snprintf(path, sizeof path, "%s/%s/output_%zu.pb", dir, sets[si], n_want);
            struct stat sb;
            if (stat(path, &sb) != 0)
                break;
            if (read_pb(path, &wants[n_want], &err)) {
                snprintf(why, size, "%s: %s", path, err.msg);
                ok = false;
                break;
            }
        }
        if (ok) {
            /* input .pb names may differ from graph input names: bind by position */
            for (size_t i = 0; i < n_in; i++)
                pare_tensor_set_name(ins[i], NULL, &err);
            pare_tensor **outs = NULL;
            size_t n_outs = 0;
            if (pare_session_run(s, ins, n_in, &outs, &n_outs, &err)) {
                snprintf(why, size, "run: %s", err.msg);
                ok = false;
            } else if (n_outs < n_want) {
                snprintf(why, size, "%zu outputs, expected %zu", n_outs, n_want);
                ok = false;
            } else {
                for (size_t i = 0; i < n_want && ok; i++) {
                    char w[512];
                    if (!compare(outs[i], wants[i], 1e-3, 1e-7, w, sizeof w)) {
                        snprintf(why, size, "output %zu ('%s'): %s", i,
                                 outs[i]->name ? outs[i]->name : "", w);
                        ok = false;
                    }
                }
            }
            pare_tensors_free(outs, n_outs);
        }
        for (size_t i = 0; i < n_in; i++)
            pare_tensor_free(ins[i]);
        for (size_t i = 0; i < n_want; i++)
            pare_tensor_free(wants[i]);
    }
    for (size_t i = 0; i < n_sets; i++)
        free(sets[i]);
    (void)verbose;
    pare_session_free(s);
    pare_model_free(m);
    return ok;
}

static int cmp_op(const void *a, const void *b)
{
    const opcount *x = a, *y = b;
    if (x->fail != y->fail)
        return y->fail - x->fail;
    return strcmp(x->op, y->op);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    long min_pass = -1;
    bool verbose = false, quiet_fail = false;
    int first_dir = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--min-pass") == 0 && i + 1 < argc)
            min_pass = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--min-pass-file") == 0 && i + 1 < argc) {
            FILE *f = fopen(argv[++i], "r");
            if (!f || fscanf(f, "%ld", &min_pass) != 1) {
                fprintf(stderr, "run_node_tests: cannot read %s\n", argv[i]);
                return 2;
            }
            fclose(f);
        } else if (strcmp(argv[i], "--verbose") == 0)
            verbose = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet_fail = true;
        else {
            first_dir = i;
            break;
        }
    }
    if (first_dir >= argc) {
        fprintf(stderr, "usage: run_node_tests [--filter S] [--min-pass N] DIR...\n");
        return 2;
    }
    int pass = 0, fail = 0;
    for (int a = first_dir; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            fprintf(stderr, "run_node_tests: %s: cannot open\n", argv[a]);
            return 2;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "test_", 5) != 0)
                continue;
            if (filter && !strstr(e->d_name, filter))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                names = realloc(names, cap * sizeof *names);
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        if (n)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char dir[4096], why[1024] = "", op[64];
            snprintf(dir, sizeof dir, "%s/%s", argv[a], names[i]);
            bool ok = run_case(dir, verbose, why, sizeof why, op, sizeof op);
            count_op(op, ok);
            if (ok) {
                pass++;
                if (verbose)
                    printf("PASS %s\n", names[i]);
            } else {
                fail++;
                if (!quiet_fail)
                    printf("FAIL %s: %s\n", names[i], why);
            }
            free(names[i]);
        }
        free(names);
    }
    qsort(ops, n_ops, sizeof *ops, cmp_op);
    printf("\nfailures by op (op: failed/total)\n");
    for (size_t i = 0; i < n_ops && ops[i].fail; i++)
        printf("  %-28s %d/%d\n", ops[i].op, ops[i].fail, ops[i].pass + ops[i].fail);
    int total = pass + fail;
    printf("conformance: %.1f%% of %d cases pass\n", total ? 100.0 * pass / total : 0.0, total);
    printf("%d passed, %d failed\n", pass, fail);
    if (min_pass >= 0 && pass < min_pass) {
        fprintf(stderr, "run_node_tests: ratchet: %d passed, below the committed minimum %ld\n",
                pass, min_pass);
        return 1;
    }
    return 0;
}
