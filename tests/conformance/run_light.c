/* The onnx package's "light" model zoo (light_resnet50.onnx and friends):
 * runs each model on the input onnx's test runner feeds it (float32
 * arange(n)/n in the input's shape, dynamic dims 1) and compares with the
 * stored light_NAME_output_0.pb (rtol 1e-3, 2e-3 for densenet121; atol 1e-7).
 * Usage: run_light DIR   (prints "N passed, N failed"; exit 1 on a failure) */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "pare/model.h"

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
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!b || got != (size_t)n) {
        free(b);
        return pare_error_set(err, PARE_ERR_IO, "%s: read failed", path);
    }
    pare_status st = pare_tensor_pb_decode(b, (size_t)n, out, err);
    free(b);
    return st;
}

static bool run_one(const char *dir, const char *file, char *why, size_t size)
{
    char path[4096], ref[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(ref, sizeof ref, "%s/%.*s_output_0.pb", dir, (int)(strlen(file) - 5), file);
    double rtol = strstr(file, "densenet121") ? 2e-3 : 1e-3, atol = 1e-7;
    pare_error err;
    pare_model *m;
    if (pare_model_load(path, NULL, &m, &err)) {
        snprintf(why, size, "load: %s", err.msg);
        return false;
    }
    pare_session *s;
    if (pare_session_new(m, NULL, &s, &err)) {
        snprintf(why, size, "plan: %s", err.msg);
        pare_model_free(m);
        return false;
    }
    bool ok = false;
    size_t n_in = pare_session_input_count(s);
    pare_tensor **ins = calloc(n_in ? n_in : 1, sizeof *ins);
    pare_tensor **outs = NULL, *want = NULL;
    size_t n_out = 0;
    for (size_t i = 0; i < n_in; i++) {
        const pare_value *v = pare_session_input(s, i);
        int64_t dims[PARE_MAX_RANK];
        for (int d = 0; d < v->shape.rank; d++)
            dims[d] = v->shape.dims[d].value >= 0 ? v->shape.dims[d].value : 1;
        if (pare_tensor_new(v->name, PARE_DT_FLOAT, v->shape.rank, dims, &ins[i], &err)) {
            snprintf(why, size, "input: %s", err.msg);
            goto out;
        }
        uint64_t n = pare_tensor_numel(ins[i]);
        float *x = ins[i]->data;
        for (uint64_t k = 0; k < n; k++)
            x[k] = (float)((double)k / (double)n);
    }
    if (pare_session_run(s, ins, n_in, &outs, &n_out, &err)) {
        snprintf(why, size, "run: %s", err.msg);
        goto out;
    }
    if (read_pb(ref, &want, &err)) {
        snprintf(why, size, "%s", err.msg);
        goto out;
    }
    if (n_out < 1 || outs[0]->dtype != want->dtype || outs[0]->nbytes != want->nbytes) {
        snprintf(why, size, "output type or size differs");
        goto out;
    }
    const float *a = outs[0]->data, *b = want->data;
    uint64_t n = pare_tensor_numel(want);
    double worst = 0;
    for (uint64_t k = 0; k < n; k++) {
        double d = fabs((double)a[k] - b[k]), lim = atol + rtol * fabs((double)b[k]);
        if (!(d <= lim)) {
            snprintf(why, size, "element %llu is %.7g, expected %.7g",
                     (unsigned long long)k, a[k], b[k]);
            goto out;
        }
        if (d / lim > worst)
            worst = d / lim;
    }
    snprintf(why, size, "max error %.2f of tolerance", worst);
    ok = true;
out:
    for (size_t i = 0; i < n_in; i++)
        pare_tensor_free(ins[i]);
    free(ins);
    pare_tensors_free(outs, n_out);
    pare_tensor_free(want);
    pare_session_free(s);
    pare_model_free(m);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: run_light DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "run_light: %s: cannot open\n", argv[1]);
        return 2;
    }
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".onnx") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int pass = 0, fail = 0;
    for (size_t i = 0; i < n; i++) {
        char why[1024];
        bool ok = run_one(argv[1], names[i], why, sizeof why);
        printf("%s %s: %s\n", ok ? "PASS" : "FAIL", names[i], why);
        ok ? pass++ : fail++;
        free(names[i]);
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail || !pass ? 1 : 0;
}
