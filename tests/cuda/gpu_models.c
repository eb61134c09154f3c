/* GPU suite: whole models on device cuda against the CPU.
 *   - the onnx light zoo (PARE_LIGHT_MODELS): the input onnx's runner
 *     feeds (arange(n)/n, dynamic dims 1), against the stored output and
 *     the CPU (rtol 2e-3, atol 1e-4);
 *   - testdata's CNN and transformer blocks, float32 (rtol 1e-3, atol
 *     1e-4), and their fp16 (rtol 2e-2, atol 2e-2) and int8 QDQ (the
 *     quantized model on both sides; atol 0.1 of the output's range: one
 *     int8 step; the cuda plan must run some node as a fused 8-bit QDQ
 *     kernel) versions made by pare-quantize when it is built;
 *   - CUDA graphs: with cuda_graph -1 three runs give the outputs of a
 *     cuda_graph 0 session bit for bit; cuda_graph 1 either replays (the
 *     stats say so) or is refused with a reason;
 *   - the figures of a cuda run (compute time, device memory, copies).
 * Exits 77 when no GPU is usable. Prints failures and "N passed, N failed". */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gpu_common.h"

#ifndef PARE_QUANTIZE
#define PARE_QUANTIZE ""
#endif

static int passed, failed;

static void result(bool ok, const char *what, const char *why)
{
    if (ok) {
        passed++;
        printf("ok   %s\n", what);
    } else {
        failed++;
        printf("FAIL %s: %s\n", what, why);
    }
    fflush(stdout);
}

/* cuda against cpu (and against want[0] when given) on the same inputs */
/* plan_note: some row of the cuda plan must run on cuda with this note */
static void check_model(const char *what, const char *path, int64_t dyn, double rtol,
                        double atol, const pare_tensor *want, const char *plan_note)
{
    pare_error err;
    pare_model *m;
    char why[1200];
    if (pare_model_load(path, NULL, &m, &err)) {
        result(false, what, err.msg);
        return;
    }
    pare_tensor **ins = NULL, **ref = NULL, **got = NULL;
    size_t n_in = 0, n_ref = 0, n_got = 0;
    char *plan = NULL;
    pare_run_stats rs;
    bool ok = true;
    if (gpu_make_inputs(m, dyn, &ins, &n_in, &err) ||
        gpu_run(m, "cpu", 0, 1, ins, n_in, &ref, &n_ref, NULL, NULL, &err)) {
        snprintf(why, sizeof why, "cpu: %s", err.msg);
        ok = false;
    } else if (gpu_run(m, "cuda", 0, 2, ins, n_in, &got, &n_got, &rs, &plan, &err)) {
        snprintf(why, sizeof why, "cuda: %s", err.msg);
        ok = false;
    } else {
        for (size_t i = 0; i < n_got && i < n_ref && ok; i++) {
            char w[1000];
            if (!gpu_compare(got[i], ref[i], rtol, atol, w, sizeof w)) {
                snprintf(why, sizeof why, "output %zu vs cpu: %s", i, w);
                ok = false;
            }
        }
        if (ok && want && n_got && !gpu_compare(got[0], want, rtol, atol, why, sizeof why))
            ok = false;
        if (ok && plan_note && !gpu_plan_has(plan, "cuda", plan_note)) {
            snprintf(why, sizeof why, "no node of the cuda plan has '%s'", plan_note);
            ok = false;
        }
        if (ok)
            printf("     %s: %zu nodes on cuda, %zu on cpu, compute %.3f ms, h2d %.3f ms, "
                   "d2h %.3f ms, device peak %llu bytes\n",
                   what, rs.nodes_device, rs.nodes_cpu, rs.compute_ms, rs.h2d_ms, rs.d2h_ms,
                   (unsigned long long)rs.device_mem_peak);
    }
    result(ok, what, why);
    free(plan);
    pare_tensors_free(ins, n_in);
    pare_tensors_free(ref, n_ref);
    pare_tensors_free(got, n_got);
    pare_model_free(m);
}

static void light_zoo(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        result(false, "light zoo", "cannot open PARE_LIGHT_MODELS");
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
            continue;
        char path[4096], ref[4096], what[300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(ref, sizeof ref, "%s/%.*s_output_0.pb", dir, (int)(len - 5), e->d_name);
        snprintf(what, sizeof what, "light %s", e->d_name);
        pare_tensor *want = NULL;
        pare_error err;
        if (gpu_read_pb(ref, &want, &err))
            want = NULL;
        check_model(what, path, 1, 2e-3, 1e-4, want, NULL);
        pare_tensor_free(want);
    }
    closedir(d);
}

/* pare-quantize MODE MODEL -> OUT (extra args); false when it is not built or fails */
static bool quantize(const char *mode, const char *model, const char *out, const char *extra)
{
    if (!PARE_QUANTIZE[0] || access(PARE_QUANTIZE, X_OK) != 0)
        return false;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --mode %s %s '%s' -o '%s' >/dev/null 2>&1", PARE_QUANTIZE,
             mode, extra, model, out);
    return system(cmd) == 0;
}

static void graphs(const char *path)
{
    pare_error err;
    pare_model *m;
    char why[1200] = "";
    if (pare_model_load(path, NULL, &m, &err)) {
        result(false, "cuda graph", err.msg);
        return;
    }
    pare_tensor **ins = NULL, **a = NULL, **b = NULL;
    size_t n_in = 0, na = 0, nb = 0;
    pare_run_stats rs;
    bool ok = true;
    if (gpu_make_inputs(m, 2, &ins, &n_in, &err) ||
        gpu_run(m, "cuda", 0, 1, ins, n_in, &a, &na, NULL, NULL, &err) ||
        gpu_run(m, "cuda", -1, 3, ins, n_in, &b, &nb, &rs, NULL, &err)) {
        snprintf(why, sizeof why, "%s", err.msg);
        ok = false;
    }
    for (size_t i = 0; ok && i < na && i < nb; i++)
        if (a[i]->nbytes != b[i]->nbytes || memcmp(a[i]->data, b[i]->data, a[i]->nbytes)) {
            snprintf(why, sizeof why, "output %zu differs between graph replay and no graph", i);
            ok = false;
        }
    result(ok, "cuda_graph -1 gives the outputs of cuda_graph 0", why);
    pare_tensors_free(b, nb);
    b = NULL;
    nb = 0;
    /* cuda_graph 1: replayed, or refused with the reason */
    pare_status st = gpu_run(m, "cuda", 1, 3, ins, n_in, &b, &nb, &rs, NULL, &err);
    if (st == PARE_OK) {
        ok = rs.graph_replayed;
        for (size_t i = 0; ok && i < na && i < nb; i++)
            ok = a[i]->nbytes == b[i]->nbytes && !memcmp(a[i]->data, b[i]->data, a[i]->nbytes);
        snprintf(why, sizeof why, "cuda_graph 1 did not replay the same outputs");
    } else {
        ok = strstr(err.msg, "cuda_graph") != NULL;
        snprintf(why, sizeof why, "cuda_graph 1 failed without a reason: %s", err.msg);
    }
    result(ok, "cuda_graph 1 replays or says why not", why);
    pare_tensors_free(ins, n_in);
    pare_tensors_free(a, na);
    pare_tensors_free(b, nb);
    pare_model_free(m);
}

static void stats(const char *path)
{
    pare_error err;
    pare_model *m;
    char why[600] = "";
    if (pare_model_load(path, NULL, &m, &err)) {
        result(false, "stats", err.msg);
        return;
    }
    pare_tensor **ins = NULL, **o = NULL;
    size_t n_in = 0, no = 0;
    pare_run_stats rs;
    bool ok = !gpu_make_inputs(m, 2, &ins, &n_in, &err) &&
              !gpu_run(m, "cuda", 0, 2, ins, n_in, &o, &no, &rs, NULL, &err);
    if (!ok)
        snprintf(why, sizeof why, "%s", err.msg);
    else if (strcmp(rs.device, "cuda") != 0 || rs.nodes_device == 0 || rs.compute_ms <= 0 ||
             rs.device_mem_peak < rs.device_arena_bytes || rs.device_arena_bytes == 0 ||
             rs.h2d_ms < 0 || rs.d2h_ms <= 0) {
        snprintf(why, sizeof why, "device %s, %zu nodes, compute %g ms, peak %llu, arena %llu, "
                 "h2d %g, d2h %g",
                 rs.device, rs.nodes_device, rs.compute_ms, (unsigned long long)rs.device_mem_peak,
                 (unsigned long long)rs.device_arena_bytes, rs.h2d_ms, rs.d2h_ms);
        ok = false;
    }
    result(ok, "run stats of a cuda run", why);
    pare_tensors_free(ins, n_in);
    pare_tensors_free(o, no);
    pare_model_free(m);
}

int main(void)
{
    char why[1024];
    if (!gpu_usable(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    const char *light = getenv("PARE_LIGHT_MODELS");
    if (light && *light)
        light_zoo(light);
    else
        printf("note: PARE_LIGHT_MODELS not set, light zoo not run\n");
    static const struct {
        const char *file, *calib;
    } models[] = {{"cnn_digits.onnx", "digits_val.npz"},
                  {"transformer_block.onnx", "transformer_data.npz"},
                  {"transformer_tiny2.onnx", "transformer_data.npz"}};
    char tmpl[] = "/tmp/pare-gpu-XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char path[4096], out[4096], what[300], extra[4200];
        snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, models[i].file);
        snprintf(what, sizeof what, "%s float32", models[i].file);
        check_model(what, path, 2, 1e-3, 1e-4, NULL, NULL);
        if (!tmp)
            continue;
        snprintf(out, sizeof out, "%s/fp16_%s", tmp, models[i].file);
        if (quantize("fp16", path, out, "")) {
            snprintf(what, sizeof what, "%s fp16", models[i].file);
            check_model(what, out, 2, 2e-2, 2e-2, NULL, NULL);
            unlink(out);
        } else {
            printf("note: no fp16 model of %s (pare-quantize not built or failed)\n",
                   models[i].file);
        }
        snprintf(out, sizeof out, "%s/int8_%s", tmp, models[i].file);
        snprintf(extra, sizeof extra, "--calibrate '%s/%s' --calib-samples 32", PARE_TESTDATA,
                 models[i].calib);
        if (quantize("static", path, out, extra)) {
            snprintf(what, sizeof what, "%s int8 QDQ", models[i].file);
            /* the convolutions and MatMuls run as the int8 kernels of qfused.c */
            check_model(what, out, 2, 1e-2, 0.1, NULL, "8-bit QDQ kernel");
            unlink(out);
        } else {
            printf("note: no int8 QDQ model of %s (pare-quantize not built or failed)\n",
                   models[i].file);
        }
    }
    if (tmp)
        rmdir(tmp);
    char path[4096];
    snprintf(path, sizeof path, "%s/transformer_block.onnx", PARE_TESTDATA);
    graphs(path);
    stats(path);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
