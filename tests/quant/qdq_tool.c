/* qdq_tool.c - test helper for tests/interop/quant_qdq.py: quantizes a model
 * through the library and writes what pare's executor computes on it.
 *
 *   qdq-tool MODE IN OUT CALIB DATA OUTPUTS.npz
 *
 * MODE: static-u8 (uint8 activations, percentile), static-s8 (int8
 * activations, entropy), static-sq (int8, minmax, SmoothQuant 0.5),
 * fp8 (float8e4m3fn, minmax), dynamic. CALIB: calibration data (256 samples
 * at most; ignored by dynamic). DATA: the first 64 samples are run through
 * the quantized model and every graph output is written to OUTPUTS.npz
 * under its name. Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/quant.h"

static int fail(const char *what, const pare_error *err)
{
    fprintf(stderr, "qdq-tool: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: qdq-tool MODE IN OUT CALIB DATA OUTPUTS.npz\n");
        return 2;
    }
    const char *mode = argv[1];
    pare_error err;
    pare_model *m;
    if (pare_model_load(argv[2], NULL, &m, &err))
        return fail(argv[2], &err);
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_status st;
    if (!strcmp(mode, "dynamic")) {
        pare_dynamic_opts o = PARE_DYNAMIC_OPTS_INIT;
        st = pare_quantize_dynamic(m, &o, &r, &err);
    } else {
        pare_static_opts o = PARE_STATIC_OPTS_INIT;
        o.calib.path = argv[4];
        o.calib.samples = 256;
        o.calib.batch = 32;
        if (!strcmp(mode, "static-s8")) {
            o.activation_type = PARE_DT_INT8;
            o.method = PARE_CALIB_ENTROPY;
        } else if (!strcmp(mode, "static-sq")) {
            o.activation_type = PARE_DT_INT8;
            o.method = PARE_CALIB_MINMAX;
            o.smooth_quant_alpha = 0.5;
        } else if (!strcmp(mode, "fp8")) {
            o.activation_type = o.weight_type = PARE_DT_FLOAT8E4M3FN;
            o.method = PARE_CALIB_MINMAX;
        } else if (strcmp(mode, "static-u8") != 0) {
            fprintf(stderr, "qdq-tool: unknown mode %s\n", mode);
            return 2;
        }
        st = pare_quantize_static(m, &o, &r, &err);
    }
    if (st)
        return fail(mode, &err);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    if (pare_model_save(m, argv[3], &so, &err))
        return fail(argv[3], &err);
    pare_session *s;
    pare_session_opts sopts = PARE_SESSION_OPTS_INIT;
    sopts.threads = 1;
    if (pare_session_new(m, &sopts, &s, &err))
        return fail("session", &err);
    pare_feed *f;
    pare_tensor **ins, **outs;
    int64_t got;
    size_t n_outs;
    if (pare_feed_open(argv[5], s, 64, 64, &f, &err) || pare_feed_next(f, &ins, &got, &err))
        return fail(argv[5], &err);
    if (!ins) {
        fprintf(stderr, "qdq-tool: %s: no samples\n", argv[5]);
        return 1;
    }
    if (pare_session_run(s, ins, pare_session_input_count(s), &outs, &n_outs, &err))
        return fail("run", &err);
    pare_npz_writer *w;
    if (pare_npz_writer_open(argv[6], false, &w, &err))
        return fail(argv[6], &err);
    for (size_t i = 0; i < n_outs; i++)
        if (pare_npz_writer_add(w, pare_session_output(s, i)->name, outs[i], &err))
            return fail(argv[6], &err);
    if (pare_npz_writer_close(w, &err))
        return fail(argv[6], &err);
    printf("%s: %zu report entries, weights %llu -> %llu bytes\n", mode, r.n,
           (unsigned long long)r.weight_bytes_before, (unsigned long long)r.weight_bytes_after);
    pare_tensors_free(ins, pare_session_input_count(s));
    pare_tensors_free(outs, n_outs);
    pare_feed_close(f);
    pare_session_free(s);
    pare_quant_report_release(&r);
    pare_model_free(m);
    return 0;
}
