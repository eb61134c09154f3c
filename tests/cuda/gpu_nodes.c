/* GPU suite: every ONNX backend node test (PARE_NODE_TESTS) whose nodes
 * the cuda backend takes (at least one node placed on cuda) runs on device
 * cuda and is compared with the stored outputs and with a CPU run of the
 * same model and inputs. Exits 77 (skipped) when no GPU is usable or
 * PARE_NODE_TESTS is not set.
 *
 * Tolerances |got - want| <= atol + rtol |want|, by output dtype, then per
 * op where the device computes differently (other summation orders, fast
 * transcendental functions, float accumulation of half types):
 *
 *   dtype     rtol   atol      ops with their own float32 tolerance
 *   float32   1e-3   1e-5      MatMul Gemm Conv ConvTranspose: 1e-3, 1e-4
 *   float16   1e-2   1e-3      ReduceSum ReduceMean LayerNormalization
 *   bfloat16  2e-2   1e-2        BatchNormalization: 1e-3, 1e-4
 *   float64   1e-3   1e-7      Pow Exp Log Softplus: 2e-3, 1e-5
 *   integers and bool: exact
 *
 * Usage: gpu_nodes [--filter SUBSTR] [DIR]   (DIR defaults to $PARE_NODE_TESTS)
 * Prints each failure, then "N passed, N failed" (N skipped: no node on
 * cuda). Exit 1 on a failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "gpu_common.h"

typedef struct tol {
    const char *op;
    double rtol, atol;
} tol;

static const tol op_tols[] = {
    {"MatMul", 1e-3, 1e-4},     {"Gemm", 1e-3, 1e-4},
    {"Conv", 1e-3, 1e-4},       {"ConvTranspose", 1e-3, 1e-4},
    {"ReduceSum", 1e-3, 1e-4},  {"ReduceMean", 1e-3, 1e-4},
    {"LayerNormalization", 1e-3, 1e-4}, {"BatchNormalization", 1e-3, 1e-4},
    {"Pow", 2e-3, 1e-5},        {"Exp", 2e-3, 1e-5},
    {"Log", 2e-3, 1e-5},        {"Softplus", 2e-3, 1e-5},
};

static void tolerance(const char *op, int dtype, double *rtol, double *atol)
{
    switch (dtype) {
    case PARE_DT_FLOAT16:
        *rtol = 1e-2, *atol = 1e-3;
        return;
    case PARE_DT_BFLOAT16:
        *rtol = 2e-2, *atol = 1e-2;
        return;
    case PARE_DT_DOUBLE:
        *rtol = 1e-3, *atol = 1e-7;
        return;
    default:
        *rtol = 1e-3, *atol = 1e-5;
    }
    for (size_t i = 0; i < sizeof op_tols / sizeof *op_tols; i++)
        if (strcmp(op_tols[i].op, op) == 0) {
            *rtol = op_tols[i].rtol;
            *atol = op_tols[i].atol;
        }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the op of the first node placed on cuda, or "" when none is */
static void cuda_op(const char *plan, char *op, size_t size)
{
    op[0] = 0;
    for (const char *l = plan ? strchr(plan, '\n') : NULL; l && l[1]; l = strchr(l + 1, '\n')) {
        char n[300], o[64], be[32];
        if (sscanf(l + 1, "%299s %63s %31s", n, o, be) == 3 && strcmp(be, "cuda") == 0 &&
            strcmp(o, "(copy)") != 0) {
            snprintf(op, size, "%s", o);
            return;
        }
    }
}

enum { SKIP, PASS, FAIL };

static int run_case(const char *dir, char *why, size_t size)
{
    char path[4096];
    pare_error err;
    pare_model *m;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (pare_model_load(path, NULL, &m, &err))
        return SKIP; /* the conformance suite reports models that do not load */
    /* placement only: a session whose plan has no cuda node is skipped */
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = "cuda";
    so.threads = 1;
    pare_session *s;
    char op[64] = "";
    if (pare_session_new(m, &so, &s, &err) == PARE_OK) {
        char *plan = pare_session_plan_text(s);
        cuda_op(plan, op, sizeof op);
        free(plan);
    } else {
        /* the CPU alone may fail too (an op it lacks): not ours */
        pare_session_opts co = PARE_SESSION_OPTS_INIT;
        if (pare_session_new(m, &co, &s, &err) != PARE_OK) {
            pare_model_free(m);
            return SKIP;
        }
        pare_session_free(s);
        snprintf(why, size, "plan on cuda failed where the cpu plans: %s", err.msg);
        pare_model_free(m);
        return FAIL;
    }
    if (!op[0]) {
        pare_session_free(s);
        pare_model_free(m);
        return SKIP;
    }
    DIR *d = opendir(dir);
    char *sets[64];
    size_t n_sets = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "test_data_set_", 14) == 0 && n_sets < 64)
            sets[n_sets++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(sets, n_sets, sizeof *sets, cmp_str);
    int res = PASS;
    for (size_t si = 0; si < n_sets && res == PASS; si++) {
        pare_tensor *ins[64], *wants[64];
        size_t n_in = 0, n_want = 0;
        struct stat sb;
        for (; n_in < 64; n_in++) {
            snprintf(path, sizeof path, "%s/%s/input_%zu.pb", dir, sets[si], n_in);
            if (stat(path, &sb) || gpu_read_pb(path, &ins[n_in], &err))
                break;
            pare_tensor_set_name(ins[n_in], NULL, &err); /* bound by position */
        }
        for (; n_want < 64; n_want++) {
            snprintf(path, sizeof path, "%s/%s/output_%zu.pb", dir, sets[si], n_want);
            if (stat(path, &sb) || gpu_read_pb(path, &wants[n_want], &err))
                break;
        }
        pare_tensor **got = NULL, **ref = NULL;
        size_t n_got = 0, n_ref = 0;
        if (gpu_run(m, "cpu", -1, 1, ins, n_in, &ref, &n_ref, NULL, NULL, &err)) {
            res = SKIP; /* the CPU fails it: the conformance suite's business */
        } else if (pare_session_run(s, ins, n_in, &got, &n_got, &err)) {
            snprintf(why, size, "[%s] run on cuda: %s", op, err.msg);
            res = FAIL;
        } else {
            for (size_t i = 0; i < n_want && i < n_got && res == PASS; i++) {
                double rtol, atol;
                tolerance(op, wants[i]->dtype, &rtol, &atol);
                char w[600];
                /* against the CPU first (same inputs, same model), then the file */
                if (i < n_ref && !gpu_compare(got[i], ref[i], rtol, atol, w, sizeof w)) {
                    snprintf(why, size, "[%s] output %zu vs cpu: %s", op, i, w);
                    res = FAIL;
                } else if (!gpu_compare(got[i], wants[i], rtol, atol, w, sizeof w)) {
                    /* where the CPU misses the stored output too, the CPU is the reference */
                    char w2[600];
                    if (i < n_ref && !gpu_compare(ref[i], wants[i], 1e-3, 1e-7, w2, sizeof w2))
                        continue;
                    snprintf(why, size, "[%s] output %zu vs stored: %s", op, i, w);
                    res = FAIL;
                }
            }
        }
        pare_tensors_free(got, n_got);
        pare_tensors_free(ref, n_ref);
        for (size_t i = 0; i < n_in; i++)
            pare_tensor_free(ins[i]);
        for (size_t i = 0; i < n_want; i++)
            pare_tensor_free(wants[i]);
    }
    for (size_t i = 0; i < n_sets; i++)
        free(sets[i]);
    pare_session_free(s);
    pare_model_free(m);
    return res;
}

int main(int argc, char **argv)
{
    const char *filter = NULL, *dir = getenv("PARE_NODE_TESTS");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else
            dir = argv[i];
    }
    char why[1024];
    if (!gpu_usable(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    if (!dir || !*dir) {
        printf("skipped: PARE_NODE_TESTS not set\n");
        return 77;
    }
    DIR *d = opendir(dir);
    if (!d) {
        printf("cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0 || (filter && !strstr(e->d_name, filter)))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                return 1;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        why[0] = 0;
        int r = run_case(path, why, sizeof why);
        if (r == PASS)
            passed++;
        else if (r == SKIP)
            skipped++;
        else {
            failed++;
            printf("FAIL %s: %s\n", names[i], why);
        }
        free(names[i]);
    }
    free(names);
    printf("%d passed, %d failed (%d skipped: no node on cuda)\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
