/* wq_write.c - test helper: applies one weight-only or float conversion to
 * a model and saves it, for the interop checks (tests/quant/wq_ort.py).
 *
 * usage: wq-write MODE IN OUT [CALIB]
 * MODE: qdq4 qdq4s qdq8 nbits4 nbits4s nbits8 gptq4 gptq-nbits4 gptq-ao-nbits4
 * gptq-nbits4s emb4 fp16 bf16 bf16w (s: symmetric; ao: act_order; emb: QDQ with
 * embeddings; gptq needs CALIB; bf16w: bfloat16 weights with float32
 * compute, storage_only). */
#include <stdio.h>
#include <string.h>
#include "pare/quant.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: wq-write MODE IN OUT [CALIB]\n");
        return 2;
    }
    const char *mode = argv[1];
    pare_model *m;
    pare_error err;
    if (pare_model_load(argv[2], NULL, &m, &err)) {
        fprintf(stderr, "wq-write: %s: %s\n", argv[2], err.msg);
        return 1;
    }
    pare_status st;
    if (!strcmp(mode, "fp16") || !strncmp(mode, "bf16", 4)) {
        pare_fq_opts o = PARE_FQ_OPTS_INIT;
        o.dtype = mode[0] == 'f' ? PARE_DT_FLOAT16 : PARE_DT_BFLOAT16;
        o.storage_only = !strcmp(mode, "bf16w");
        st = pare_quantize_float(m, &o, NULL, &err);
    } else {
        pare_wq_opts o = PARE_WQ_OPTS_INIT;
        o.format = strstr(mode, "nbits") ? PARE_WQ_MATMULNBITS : PARE_WQ_QDQ;
        o.bits = strchr(mode, '8') ? 8 : 4;
        o.symmetric = mode[strlen(mode) - 1] == 's';
        o.embeddings = strncmp(mode, "emb", 3) == 0;
        o.act_order = strstr(mode, "-ao") != NULL;
        if (!strncmp(mode, "gptq", 4)) {
            o.algo = PARE_WQ_GPTQ;
            o.calib.path = argc > 4 ? argv[4] : NULL;
        }
        st = pare_quantize_weight_only(m, &o, NULL, &err);
    }
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    if (st || (st = pare_model_save(m, argv[3], &so, &err))) {
        fprintf(stderr, "wq-write: %s: %s\n", argv[2], err.msg);
        pare_model_free(m);
        return 1;
    }
    pare_model_free(m);
    return 0;
}
