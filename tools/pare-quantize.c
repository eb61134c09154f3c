/* pare-quantize: int8 (dynamic, static QDQ with calibration), fp8,
 * weight-only int4/int8 (RTN, GPTQ), fp16/bf16; an accuracy-aware mode that
 * returns the most sensitive layers to float until a validation target holds.
 *
 * The modes live in lib/quant (pare/quant.h); this file parses options,
 * checks data against the model before the long work, runs the mode (once,
 * or in rounds for --max-accuracy-drop), validates the result, writes it
 * atomically and prints the report (text or JSON, schema pare-quantize/1). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/ir.h"
#include "pare/model.h"
#include "pare/quant.h"
#include "pare/report.h"
#include "pare/stats.h"

/* ---- options ---- */

enum { MODE_DYNAMIC, MODE_STATIC, MODE_WEIGHT_ONLY, MODE_FP16, MODE_BF16, MODE_FP8 };
static const char *const mode_names[] = {"dynamic", "static", "weight-only", "fp16",
                                         "bf16",    "fp8",    NULL};
static const char *const method_names[] = {"minmax", "percentile", "entropy", "mse", NULL};
static const char *const act_names[] = {"uint8", "int8", NULL};
static const char *const format_names[] = {"qdq", "matmulnbits", NULL};
static const char *const algo_names[] = {"rtn", "gptq", NULL};
enum { MET_ACCURACY, MET_TOP1, MET_COSINE, MET_REL_L2 };
static const char *const metric_names[] = {"accuracy", "top1", "cosine", "rel-l2", NULL};

#define NOT_GIVEN_SIZE UINT64_MAX

static int o_mode = -1, o_method = -1, o_act_type = -1, o_format = -1, o_algo = -1,
           o_metric = -1;
static const char *o_output = "-", *o_calibrate, *o_validate, *o_labels, *o_report;
static const char *o_device = "cpu";
static cli_list o_op_types, o_exclude_nodes, o_exclude_op_types, o_block_ops, o_block_nodes;
static int64_t o_calib_samples = -1, o_calib_batch = -1, o_seed = -1, o_threads = 0, o_bits = -1,
               o_block_size = -1;
static double o_percentile = -1, o_smooth = -1, o_damp = -1, o_max_drop = -1;
static bool o_per_channel, o_per_tensor, o_symmetric, o_act_order, o_embeddings, o_keep_io,
    o_no_keep_io, o_no_default_block, o_bf16_compute, o_requantize, o_write_best, o_json, o_moving_average;
static uint64_t o_external = NOT_GIVEN_SIZE, o_max_decompressed = 0;

static const cli_option options[] = {
    CLI_GROUP("Mode"),
    CLI_CHOICE(0, "mode", &o_mode, "MODE", mode_names,
               "the kind of quantization (required)"),
    CLI_FLAG(0, "requantize", &o_requantize, "quantize a model that is already quantized"),
    CLI_GROUP("Calibration data (static, fp8, weight-only --algo gptq)"),
    CLI_STRING(0, "calibrate", &o_calibrate, "DATA",
               ".npz (arrays named after the inputs, samples on axis 0), a folder of .npz "
               "files, or test_data_set folders"),
    CLI_INT(0, "calib-samples", &o_calib_samples, "N", 1, 1e15,
            "use the first N samples of DATA (all)"),
    CLI_INT(0, "calib-batch", &o_calib_batch, "N", 1, 1e6, "samples per calibration run (8)"),
    CLI_INT(0, "seed", &o_seed, "N", 0, 9007199254740991.0, "draw the --calib-samples at random with this seed (0: the first ones)"),
    CLI_INT('t', "threads", &o_threads, "N", 0, 4096,
            "threads of calibration and validation runs (0: all cores)"),
    CLI_STRING(0, "device", &o_device, "DEV", "cpu, cuda or auto: where data runs (cpu)"),
    CLI_GROUP("Which nodes (int8, fp8, weight-only)"),
    CLI_LIST(0, "op-types", &o_op_types, "OPS",
             "quantize only these op types, comma-separated (default: the mode's)"),
    CLI_LIST(0, "exclude-nodes", &o_exclude_nodes, "NAMES", "keep these nodes float"),
    CLI_LIST(0, "exclude-op-types", &o_exclude_op_types, "OPS", "keep these op types float"),
    CLI_GROUP("int8 and fp8 (static, dynamic, fp8)"),
    CLI_CHOICE(0, "calib-method", &o_method, "M", method_names,
               "how activation ranges are chosen (percentile)"),
    CLI_DOUBLE(0, "percentile", &o_percentile, "P", 0, 100,
               "--calib-method percentile: keep P% of |x| inside the range (99.999)"),
    CLI_FLAG(0, "moving-average", &o_moving_average,
             "--calib-method minmax: moving average of each batch's min and max"),
    CLI_CHOICE(0, "activation-type", &o_act_type, "T", act_names,
               "static: uint8 is asymmetric (default), int8 symmetric"),
    CLI_FLAG(0, "per-channel", &o_per_channel, "one weight scale per output channel (default)"),
    CLI_FLAG(0, "per-tensor", &o_per_tensor, "one weight scale per tensor"),
    CLI_DOUBLE(0, "smooth-quant", &o_smooth, "ALPHA", 0, 1,
               "static: move activation outliers into the weights (SmoothQuant, e.g. 0.5)"),
    CLI_GROUP("Weight-only"),
    CLI_INT(0, "bits", &o_bits, "N", 1, 64, "4 or 8 (4)"),
    CLI_INT(0, "block-size", &o_block_size, "N", 1, 1 << 20,
            "weights per scale along the reduction axis: 32, 64 or 128 (32)"),
    CLI_FLAG(0, "symmetric", &o_symmetric, "no zero points (default: asymmetric)"),
    CLI_CHOICE(0, "format", &o_format, "F", format_names,
               "blocked DequantizeLinear (opset 21; default) or com.microsoft MatMulNBits"),
    CLI_CHOICE(0, "algo", &o_algo, "A", algo_names,
               "round to nearest (default) or GPTQ (needs --calibrate)"),
    CLI_DOUBLE(0, "damp", &o_damp, "X", 0, 1, "gptq: damping, a share of mean(diag H) (0.01)"),
    CLI_FLAG(0, "act-order", &o_act_order, "gptq: columns in order of decreasing diag H"),
    CLI_FLAG(0, "embeddings", &o_embeddings, "also Gather of embedding tables"),
    CLI_GROUP("fp16 and bf16"),
    CLI_FLAG(0, "keep-io-types", &o_keep_io, "graph inputs and outputs stay float32 (default)"),
    CLI_FLAG(0, "no-keep-io-types", &o_no_keep_io, "graph inputs and outputs change type too"),
    CLI_LIST(0, "block-ops", &o_block_ops, "OPS", "also keep these op types float32"),
    CLI_LIST(0, "block-nodes", &o_block_nodes, "NAMES", "keep these nodes float32"),
    CLI_FLAG(0, "no-default-block-list", &o_no_default_block,
             "convert the ops of the default block list too"),
    CLI_FLAG(0, "bf16-compute", &o_bf16_compute,
             "bf16: compute in bfloat16 (GPU runtimes); default: bfloat16 weights, float32 "
             "compute"),
    CLI_GROUP("Accuracy"),
    CLI_STRING(0, "validate", &o_validate, "DATA",
               "compare the result with the original on DATA and print the figures"),
    CLI_STRING(0, "labels", &o_labels, "FILE",
               "labels of DATA (.npy, or .npz with one array) for accuracy"),
    CLI_CHOICE(0, "metric", &o_metric, "M", metric_names,
               "what --max-accuracy-drop bounds (default: accuracy with --labels, else top1 "
               "for an [N,C] first output, else cosine)"),
    CLI_DOUBLE(0, "max-accuracy-drop", &o_max_drop, "X", 0, 1,
               "return the most sensitive layers to float until the drop is at most X "
               "(0.01 = 1 point); exit 3 if it cannot hold"),
    CLI_FLAG(0, "write-best", &o_write_best,
             "when the target cannot be met, still write the best model (exit 3)"),
    CLI_GROUP("Output"),
    CLI_STRING('o', "output", &o_output, "FILE",
               "the quantized model (.onnx.gz: gzip; -: stdout, the default)"),
    CLI_SIZE(0, "external-data", &o_external, "BYTES",
             "tensors of at least BYTES go to FILE.data (default: 1K when the input has "
             "external data, else none)"),
    CLI_FLAG(0, "json", &o_json, "print the report as JSON (schema pare-quantize/1)"),
    CLI_STRING(0, "report", &o_report, "FILE", "write the report to FILE instead of stdout"),
    CLI_SIZE(0, "max-decompressed", &o_max_decompressed, "BYTES",
             "largest decompressed size of a gzip model (2G)"),
    CLI_END(),
};

static const cli_program prog = {
    .name = "pare-quantize",
    .usage = "--mode MODE [OPTIONS] MODEL -o OUTPUT",
    .summary = "Quantize an ONNX model: int8 dynamic or static (QDQ, calibrated), fp8, "
               "weight-only int4/int8 (RTN or GPTQ), fp16 or bf16. With --max-accuracy-drop, "
               "layers go back to float until a validation target holds.",
    .footer = "Exit status: 0 done, 1 bad input or failure, 2 bad usage, 3 the accuracy target "
              "could not be met.",
    .options = options,
    .args_name = "MODEL",
    .min_args = 1,
    .max_args = 1,
};

/* ---- small helpers ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_stdout(const char *path) { return !path || strcmp(path, "-") == 0; }

static void json_num(pare_json *j, const char *k, double v)
{
    if (isfinite(v))
        pare_json_kv_double(j, k, v);
    else
        pare_json_kv_null(j, k);
}

static const char *fmt_num(double v, char *buf, size_t size, const char *fmt)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, size, fmt, v);
    return buf;
}

/* ---- usage checks ---- */

static bool mode_is(int a, int b, int c) { return o_mode == a || o_mode == b || o_mode == c; }
static bool int8_mode(void) { return mode_is(MODE_STATIC, MODE_DYNAMIC, MODE_FP8); }
static bool calib_mode(void) { return mode_is(MODE_STATIC, MODE_FP8, -2); }
static bool float_mode(void) { return mode_is(MODE_FP16, MODE_BF16, -2); }

/* "--opt applies to --mode a or b" for an option given where it means nothing */
static int not_here(const char *opt, const char *where)
{
    return cli_usage_error("--%s applies to %s, not to --mode %s", opt, where,
                           mode_names[o_mode]);
}

static int check_usage(void)
{
    if (o_mode < 0)
        return cli_usage_error("--mode is required: dynamic, static, weight-only, fp16, bf16 "
                               "or fp8");
    bool gptq = o_mode == MODE_WEIGHT_ONLY && o_algo == 1;
    /* calibration data */
    if ((calib_mode() || gptq) && !o_calibrate)
        return cli_usage_error("--mode %s%s needs --calibrate DATA", mode_names[o_mode],
                               gptq ? " --algo gptq" : "");
    if (o_calibrate && !calib_mode() && !gptq)
        return not_here("calibrate", "--mode static, fp8 and weight-only --algo gptq");
    if (!o_calibrate && o_calib_samples >= 0)
        return cli_usage_error("--calib-samples needs --calibrate");
    if (!o_calibrate && o_calib_batch >= 0)
        return cli_usage_error("--calib-batch needs --calibrate");
    if (strcmp(o_device, "cpu") && strcmp(o_device, "cuda") && strcmp(o_device, "auto"))
        return cli_usage_error("--device must be cpu, cuda or auto, not '%s'", o_device);
    /* filters */
    if (float_mode()) {
        if (o_op_types.n)
            return not_here("op-types", "int8, fp8 and weight-only modes (fp16/bf16: "
                                        "--block-ops)");
        if (o_exclude_nodes.n)
            return not_here("exclude-nodes", "int8, fp8 and weight-only modes (fp16/bf16: "
                                             "--block-nodes)");
        if (o_exclude_op_types.n)
            return not_here("exclude-op-types", "int8, fp8 and weight-only modes (fp16/bf16: "
                                                "--block-ops)");
    }
    /* int8 / fp8 */
    if (!calib_mode()) {
        if (o_method >= 0)
            return not_here("calib-method", "--mode static and fp8");
        if (o_percentile >= 0)
            return not_here("percentile", "--mode static and fp8");
        if (o_moving_average)
            return not_here("moving-average", "--mode static and fp8");
    }
    if (o_percentile >= 0 && o_method >= 0 && o_method != PARE_CALIB_PERCENTILE - 1)
        return cli_usage_error("--percentile goes with --calib-method percentile, not %s",
                               method_names[o_method]);
    if (o_percentile == 0)
        return cli_usage_error("--percentile must be above 0");
    if (o_moving_average && o_method >= 0 && o_method != PARE_CALIB_MINMAX - 1)
        return cli_usage_error("--moving-average goes with --calib-method minmax, not %s",
                               method_names[o_method]);
    if (o_moving_average && o_method < 0)
        return cli_usage_error("--moving-average goes with --calib-method minmax");
    if (o_act_type >= 0 && o_mode != MODE_STATIC)
        return not_here("activation-type", "--mode static");
    if (o_smooth >= 0 && o_mode != MODE_STATIC)
        return not_here("smooth-quant", "--mode static");
    if (o_smooth == 0)
        return cli_usage_error("--smooth-quant ALPHA must be above 0 (0.5 is usual)");
    if (o_per_channel && o_per_tensor)
        return cli_usage_error("--per-channel and --per-tensor exclude each other");
    if ((o_per_channel || o_per_tensor) && !int8_mode())
        return not_here(o_per_channel ? "per-channel" : "per-tensor",
                        "--mode static, dynamic and fp8");
    /* weight-only */
    if (o_mode != MODE_WEIGHT_ONLY) {
        const char *w = NULL;
        if (o_bits >= 0)
            w = "bits";
        else if (o_block_size >= 0)
            w = "block-size";
        else if (o_symmetric)
            w = "symmetric";
        else if (o_format >= 0)
            w = "format";
        else if (o_algo >= 0)
            w = "algo";
        else if (o_damp >= 0)
            w = "damp";
        else if (o_act_order)
            w = "act-order";
        else if (o_embeddings)
            w = "embeddings";
        if (w)
            return not_here(w, "--mode weight-only");
    } else {
        if (o_bits >= 0 && o_bits != 4 && o_bits != 8)
            return cli_usage_error("--bits must be 4 or 8, not %lld", (long long)o_bits);
        if (o_block_size >= 0 && o_block_size != 32 && o_block_size != 64 &&
            o_block_size != 128)
            return cli_usage_error("--block-size must be 32, 64 or 128, not %lld",
                                   (long long)o_block_size);
        if ((o_damp >= 0 || o_act_order) && !gptq)
            return cli_usage_error("--%s goes with --algo gptq", o_act_order ? "act-order"
                                                                             : "damp");
    }
    /* fp16 / bf16 */
    if (!float_mode()) {
        const char *w = NULL;
        if (o_keep_io)
            w = "keep-io-types";
        else if (o_no_keep_io)
            w = "no-keep-io-types";
        else if (o_block_ops.n)
            w = "block-ops";
        else if (o_block_nodes.n)
            w = "block-nodes";
        else if (o_no_default_block)
            w = "no-default-block-list";
        if (w)
            return not_here(w, "--mode fp16 and bf16");
    }
    if (o_bf16_compute && o_mode != MODE_BF16)
        return not_here("bf16-compute", "--mode bf16");
    if (o_mode == MODE_BF16 && !o_bf16_compute && o_no_keep_io)
        return cli_usage_error("--no-keep-io-types needs --bf16-compute in --mode bf16 (the "
                               "default bf16 form computes in float32)");
    if (o_keep_io && o_no_keep_io)
        return cli_usage_error("--keep-io-types and --no-keep-io-types exclude each other");
    /* accuracy */
    if (o_labels && !o_validate)
        return cli_usage_error("--labels needs --validate");
    if (o_metric >= 0 && !o_validate)
        return cli_usage_error("--metric needs --validate");
    if (o_metric == MET_ACCURACY && !o_labels)
        return cli_usage_error("--metric accuracy needs --labels");
    if (o_max_drop >= 0 && !o_validate)
        return cli_usage_error("--max-accuracy-drop needs --validate DATA");
    if (o_write_best && o_max_drop < 0)
        return cli_usage_error("--write-best goes with --max-accuracy-drop");
    /* output */
    if (is_stdout(o_output) && o_external != NOT_GIVEN_SIZE)
        return cli_usage_error("--external-data needs -o FILE (standard output cannot carry "
                               "external data)");
    if (is_stdout(o_output) && o_json && !o_report)
        return cli_usage_error("--json with the model on standard output needs --report FILE");
    if (o_report && o_output && !is_stdout(o_output) && strcmp(o_report, o_output) == 0)
        return cli_usage_error("--report and -o name the same file");
    if (is_stdout(o_output) && cli_is_terminal_output(o_output))
        return cli_usage_error("refusing to write a binary model to a terminal: give -o FILE "
                               "or redirect standard output");
    return CLI_CONTINUE;
}

/* ---- the job: one mode with its options ---- */

typedef struct job {
    cli_names op_types, excl_nodes, excl_ops, block_ops, block_nodes;
    const char *model_path;
    int round; /* for the progress title */
} job;

typedef struct progress_ctx {
    cli_progress *bar;
    bool started;
    char title[64];
} progress_ctx;

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress_ctx *p = ctx;
    if (!p->started) {
        p->bar = cli_progress_start(p->title, total > 0 ? (uint64_t)total : 0);
        p->started = true;
    }
    cli_progress_update(p->bar, done > 0 ? (uint64_t)done : 0);
}

static void calib_opts(pare_calib_opts *c, progress_ctx *pc)
{
    c->path = o_calibrate;
    c->samples = o_calib_samples > 0 ? o_calib_samples : 0;
    c->batch = o_calib_batch > 0 ? o_calib_batch : 0;
    c->seed = o_seed > 0 ? (uint64_t)o_seed : 0;
    c->threads = (int)o_threads;
    c->device = o_device;
    c->progress = on_progress;
    c->progress_ctx = pc;
}

/* user's excludes + the accuracy fallback's, as one array (caller frees the array only) */
static const char **joined(const cli_names *a, const char *const *b, size_t nb, size_t *n)
{
    *n = a->n + nb;
    const char **v = malloc((*n ? *n : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < a->n; i++)
        v[i] = a->v[i];
    for (size_t i = 0; i < nb; i++)
        v[a->n + i] = b[i];
    return v;
}

/* Quantizes m in place by the options, with `extra` nodes kept float too. */
static pare_status quantize(const job *jb, pare_model *m, const char *const *extra, size_t n_extra,
                            pare_quant_report *r, pare_error *err)
{
    size_t n_excl;
    const cli_names *base = float_mode() ? &jb->block_nodes : &jb->excl_nodes;
    const char **excl = joined(base, extra, n_extra, &n_excl);
    if (!excl)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_quant_filter f = {(const char *const *)jb->op_types.v, jb->op_types.n,
                           n_excl ? excl : NULL,                n_excl,
                           (const char *const *)jb->excl_ops.v, jb->excl_ops.n};
    progress_ctx pc;
    memset(&pc, 0, sizeof pc);
    snprintf(pc.title, sizeof pc.title, jb->round > 1 ? "calibrating (round %d)" : "calibrating",
             jb->round);
    uint64_t wb = pare_model_weight_bytes(m);
    double t0 = pare_now();
    pare_status st;
    switch (o_mode) {
    case MODE_DYNAMIC: {
        pare_dynamic_opts o = PARE_DYNAMIC_OPTS_INIT;
        o.filter = f;
        o.per_channel = !o_per_tensor;
        st = pare_quantize_dynamic(m, &o, r, err);
        break;
    }
    case MODE_STATIC:
    case MODE_FP8: {
        pare_static_opts o = PARE_STATIC_OPTS_INIT;
        o.filter = f;
        calib_opts(&o.calib, &pc);
        if (o_method >= 0)
            o.method = (pare_calib_method)(o_method + 1);
        if (o_percentile > 0)
            o.percentile = o_percentile;
        if (o_mode == MODE_FP8) {
            o.activation_type = PARE_DT_FLOAT8E4M3FN;
            o.weight_type = PARE_DT_FLOAT8E4M3FN;
        } else if (o_act_type == 1) {
            o.activation_type = PARE_DT_INT8;
        }
        o.per_channel = !o_per_tensor;
        if (o_smooth > 0)
            o.smooth_quant_alpha = o_smooth;
        o.moving_average = o_moving_average;
        st = pare_quantize_static(m, &o, r, err);
        break;
    }
    case MODE_WEIGHT_ONLY: {
        pare_wq_opts o = PARE_WQ_OPTS_INIT;
        o.filter = f;
        if (o_bits > 0)
            o.bits = (int)o_bits;
        if (o_block_size > 0)
            o.block_size = (int)o_block_size;
        o.symmetric = o_symmetric;
        if (o_format == 1)
            o.format = PARE_WQ_MATMULNBITS;
        if (o_algo == 1) {
            o.algo = PARE_WQ_GPTQ;
            calib_opts(&o.calib, &pc);
            snprintf(pc.title, sizeof pc.title, "gptq");
        }
        if (o_damp >= 0)
            o.damp = o_damp;
        o.act_order = o_act_order;
        o.embeddings = o_embeddings;
        st = pare_quantize_weight_only(m, &o, r, err);
        break;
    }
    default: {
        pare_fq_opts o = PARE_FQ_OPTS_INIT;
        o.dtype = o_mode == MODE_BF16 ? PARE_DT_BFLOAT16 : PARE_DT_FLOAT16;
        o.keep_io_types = !o_no_keep_io;
        o.default_block_list = !o_no_default_block;
        /* onnxruntime's CPU provider has no bfloat16 kernel for compute ops:
         * by default only the weights are stored in bfloat16 */
        o.storage_only = o_mode == MODE_BF16 && !o_bf16_compute;
        o.block_ops = (const char *const *)jb->block_ops.v;
        o.n_block_ops = jb->block_ops.n;
        o.block_nodes = n_excl ? excl : NULL;
        o.n_block_nodes = n_excl;
        st = pare_quantize_float(m, &o, r, err);
        break;
    }
    }
    cli_progress_stop(&pc.bar);
    free(excl);
    if (st)
        return st;
    if (!r->weight_bytes_before && !r->weight_bytes_after) {
        r->weight_bytes_before = wb;
        r->weight_bytes_after = pare_model_weight_bytes(m);
    }
    if (r->seconds <= 0)
        r->seconds = pare_now() - t0;
    return PARE_OK;
}

/* ---- the input model, loadable again for each round ---- */

typedef struct source {
    const char *path;
    void *buf; /* stdin's bytes; NULL for a file */
    size_t len;
} source;

static pare_status source_read_stdin(source *s, pare_error *err)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (;;) {
        if (len == cap) {
            if (cap > ((size_t)1 << 40)) {
                free(buf);
                return pare_error_set(err, PARE_ERR_LIMIT, "standard input is too large");
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                return pare_error_set(err, PARE_ERR_IO, "cannot read standard input: %s",
                                      strerror(errno));
            }
            break;
        }
    }
    s->buf = buf;
    s->len = len;
    return PARE_OK;
}

static pare_status source_load(const source *s, pare_model **m, pare_error *err)
{
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = o_max_decompressed;
    if (s->buf)
        return pare_model_load_buffer(s->buf, s->len, NULL, &lo, m, err);
    return pare_model_load(s->path, &lo, m, err);
}

/* ---- validation: the candidate against the original on DATA ---- */

typedef struct figures {
    size_t n;
    char **names;
    pare_compare *c;
    uint64_t samples;
    double drop; /* by the metric */
} figures;

static void figures_release(figures *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    free(f->names);
    free(f->c);
    memset(f, 0, sizeof *f);
}

#define REF_CACHE_BYTES ((uint64_t)256 << 20)

typedef struct evalset {
    const char *path;
    pare_model *ref_m;    /* the float model (borrowed) */
    pare_session *ref_s;
    pare_tensor *labels;  /* int32/int64, one per sample; NULL without --labels */
    int64_t batch;
    int metric;
    /* the reference outputs of each batch, kept while they fit in REF_CACHE_BYTES */
    pare_tensor ***cache;
    size_t *cache_n;
    size_t n_cache, cap_cache;
    uint64_t cache_bytes;
    bool cache_off, cache_full;
} evalset;

static void cache_drop(evalset *ev)
{
    for (size_t i = 0; i < ev->n_cache; i++)
        pare_tensors_free(ev->cache[i], ev->cache_n[i]);
    free(ev->cache);
    free(ev->cache_n);
    ev->cache = NULL;
    ev->cache_n = NULL;
    ev->n_cache = ev->cap_cache = 0;
    ev->cache_bytes = 0;
    ev->cache_full = false;
}

static void evalset_close(evalset *ev)
{
    cache_drop(ev);
    pare_session_free(ev->ref_s);
    pare_tensor_free(ev->labels);
    memset(ev, 0, sizeof *ev);
}

static pare_status session_for(pare_model *m, pare_session **s, pare_error *err)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = (int)o_threads;
    so.device = o_device;
    return pare_session_new(m, &so, s, err);
}

/* labels from .npy/.pb, or an .npz holding one array (or one named label/labels) */
static pare_status read_labels(const char *path, pare_tensor **out, pare_error *err)
{
    *out = NULL;
    if (!ends_with(path, ".npz"))
        return pare_tensor_read_file(path, out, err);
    pare_npz *z;
    pare_status st = pare_npz_open(path, &z, err);
    if (st)
        return st;
    int64_t pick = pare_npz_count(z) == 1 ? 0 : pare_npz_find(z, "label");
    if (pick < 0)
        pick = pare_npz_find(z, "labels");
    if (pick < 0) {
        pare_npz_close(z);
        return pare_error_set(err, PARE_ERR_INVALID, "the archive holds %zu arrays; expected "
                              "one, or one named 'label' or 'labels'", pare_npz_count(z));
    }
    st = pare_npz_read(z, (size_t)pick, out, err);
    pare_npz_close(z);
    return st;
}

/* On failure *bad_file is the file the message is about, or NULL when the
 * message already starts with the data's path (pare/feed.h's messages do). */
static int evalset_open(evalset *ev, pare_model *ref, const char *model_shown, pare_error *err,
                        const char **bad_file)
{
    memset(ev, 0, sizeof *ev);
    ev->path = o_validate;
    ev->ref_m = ref;
    *bad_file = model_shown;
    if (session_for(ref, &ev->ref_s, err))
        return 1;
    /* batch: a fixed first dim of the first input, else 32 */
    ev->batch = 32;
    if (pare_session_input_count(ev->ref_s)) {
        const pare_value *v = pare_session_input(ev->ref_s, 0);
        if (v->shape.rank > 0 && v->shape.dims[0].value > 0)
            ev->batch = v->shape.dims[0].value;
    }
    pare_feed *f;
    *bad_file = NULL;
    if (pare_feed_open(ev->path, ev->ref_s, ev->batch, 0, &f, err))
        return 1;
    int64_t count = pare_feed_count(f);
    pare_feed_close(f);
    if (count == 0) {
        pare_error_set(err, PARE_ERR_INVALID, "%s: the dataset holds no samples", ev->path);
        return 1;
    }
    if (o_labels) {
        if (read_labels(o_labels, &ev->labels, err)) {
            *bad_file = o_labels;
            return 1;
        }
        if (ev->labels->dtype != PARE_DT_INT64 && ev->labels->dtype != PARE_DT_INT32) {
            pare_error_set(err, PARE_ERR_INVALID, "labels are %s; expected int64 or int32",
                           pare_dtype_name(ev->labels->dtype));
            *bad_file = o_labels;
            return 1;
        }
        if (count > 0 && pare_tensor_numel(ev->labels) < (uint64_t)count) {
            pare_error_set(err, PARE_ERR_INVALID, "%llu labels for %lld samples of %s",
                           (unsigned long long)pare_tensor_numel(ev->labels), (long long)count,
                           ev->path);
            *bad_file = o_labels;
            return 1;
        }
    }
    /* the metric: asked, else accuracy with labels, top-1 for [N,C], else cosine */
    const pare_value *out0 = pare_session_output_count(ev->ref_s)
                                 ? pare_session_output(ev->ref_s, 0)
                                 : NULL;
    if (o_metric >= 0)
        ev->metric = o_metric;
    else if (ev->labels)
        ev->metric = MET_ACCURACY;
    else if (out0 && out0->shape.rank == 2)
        ev->metric = MET_TOP1;
    else
        ev->metric = MET_COSINE;
    return 0;
}

/* A batch's inputs in the dtypes of session s (a --no-keep-io-types fp16
 * model wants float16 where the data is float32). *conv holds the new
 * tensors (NULL entries where the input is used as it is). */
static pare_status adapt_inputs(pare_session *s, pare_tensor **ins, size_t n, pare_tensor ***use,
                                pare_tensor ***conv, pare_error *err)
{
    *use = calloc(n ? n : 1, sizeof **use);
    *conv = calloc(n ? n : 1, sizeof **conv);
    if (!*use || !*conv)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        (*use)[i] = ins[i];
        const pare_value *v = NULL;
        for (size_t k = 0; k < pare_session_input_count(s); k++)
            if (ins[i]->name && strcmp(pare_session_input(s, k)->name, ins[i]->name) == 0)
                v = pare_session_input(s, k);
        if (!v || !v->dtype || v->dtype == ins[i]->dtype || !pare_dtype_is_float(v->dtype) ||
            !pare_dtype_is_float(ins[i]->dtype))
            continue;
        pare_tensor *t;
        pare_status st = pare_tensor_new(ins[i]->name, v->dtype, ins[i]->rank, ins[i]->dims, &t,
                                         err);
        if (st)
            return st;
        pare_dtype_convert(v->dtype, t->data, ins[i]->dtype, ins[i]->data,
                           pare_tensor_numel(ins[i]), false);
        (*conv)[i] = t;
        (*use)[i] = t;
    }
    return PARE_OK;
}

static pare_tensor *labels_slice(const pare_tensor *labels, int64_t start, int64_t count,
                                 pare_error *err)
{
    if ((uint64_t)(start + count) > pare_tensor_numel(labels)) {
        pare_error_set(err, PARE_ERR_INVALID, "%llu labels for more samples",
                       (unsigned long long)pare_tensor_numel(labels));
        return NULL;
    }
    int64_t d[1] = {count};
    pare_tensor *t;
    if (pare_tensor_new(NULL, labels->dtype, 1, d, &t, err))
        return NULL;
    size_t es = pare_dtype_nbytes(labels->dtype, 1);
    memcpy(t->data, (const uint8_t *)labels->data + (size_t)start * es, (size_t)count * es);
    return t;
}

static double metric_drop(const figures *f, int metric)
{
    if (!f->n)
        return NAN;
    switch (metric) {
    case MET_ACCURACY:
        return pare_compare_accuracy_b(&f->c[0]) - pare_compare_accuracy_a(&f->c[0]);
    case MET_TOP1:
        return 1.0 - pare_compare_top1(&f->c[0]);
    case MET_COSINE: {
        double worst = 0;
        for (size_t o = 0; o < f->n; o++) {
            double d = 1.0 - pare_compare_cosine(&f->c[o]);
            if (isnan(d) || f->c[o].mismatched_nonfinite)
                return INFINITY;
            worst = d > worst ? d : worst;
        }
        return worst;
    }
    default: {
        double worst = 0;
        for (size_t o = 0; o < f->n; o++) {
            double d = pare_compare_rel_l2(&f->c[o]);
            if (isnan(d) || f->c[o].mismatched_nonfinite)
                return INFINITY;
            worst = d > worst ? d : worst;
        }
        return worst;
    }
    }
}

static pare_status evaluate_session(evalset *ev, pare_session *cs, figures *fig, pare_error *err)
{
    memset(fig, 0, sizeof *fig);
    size_t n_out = pare_session_output_count(cs);
    fig->n = n_out;
    fig->names = calloc(n_out ? n_out : 1, sizeof *fig->names);
    fig->c = calloc(n_out ? n_out : 1, sizeof *fig->c);
    if (!fig->names || !fig->c)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t o = 0; o < n_out; o++) {
        fig->names[o] = strdup(pare_session_output(cs, o)->name);
        if (!fig->names[o])
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        pare_compare_init(&fig->c[o], -1, -1);
    }
    pare_feed *f;
    pare_status st = pare_feed_open(ev->path, ev->ref_s, ev->batch, 0, &f, err);
    if (st)
        return st;
    size_t n_in = pare_session_input_count(ev->ref_s);
    bool caching = !ev->cache_full && !ev->cache_off;
    if (caching)
        cache_drop(ev);
    cli_progress *bar = NULL;
    double t_start = pare_now();
    int64_t total = pare_feed_count(f);
    size_t bi = 0;
    for (;; bi++) {
        pare_tensor **ins = NULL, **use = NULL, **conv = NULL, **a = NULL, **b = NULL;
        size_t na = 0, nb = 0;
        int64_t got = 0;
        bool b_owned = true;
        if ((st = pare_feed_next(f, &ins, &got, err)) || !ins)
            break;
        if (ev->cache_full && bi < ev->n_cache) {
            b = ev->cache[bi];
            nb = ev->cache_n[bi];
            b_owned = false;
        } else if ((st = pare_session_run(ev->ref_s, ins, n_in, &b, &nb, err))) {
            pare_error_prefix(err, "the original model");
            goto batch_done;
        }
        if ((st = adapt_inputs(cs, ins, n_in, &use, &conv, err)))
            goto batch_done;
        if ((st = pare_session_run(cs, use, n_in, &a, &na, err))) {
            pare_error_prefix(err, "the quantized model");
            goto batch_done;
        }
        for (size_t o = 0; o < n_out && o < na; o++) {
            pare_tensor *tb = NULL;
            for (size_t k = 0; k < nb; k++)
                if (b[k] && b[k]->name && strcmp(b[k]->name, fig->names[o]) == 0)
                    tb = b[k];
            if (!tb && o < nb)
                tb = b[o];
            if (!tb || !a[o])
                continue;
            pare_tensor *lab = NULL;
            if (ev->labels && o == 0 && a[o]->rank >= 2) {
                int64_t rows = 1;
                for (int d = 0; d + 1 < a[o]->rank; d++)
                    rows *= a[o]->dims[d];
                lab = labels_slice(ev->labels, (int64_t)fig->samples, rows, err);
                if (!lab) {
                    st = err->status;
                    goto batch_done;
                }
            }
            st = pare_compare_add(&fig->c[o], a[o], tb, lab, err);
            pare_tensor_free(lab);
            if (st) {
                pare_error_prefix(err, "output '%s'", fig->names[o]);
                goto batch_done;
            }
        }
        fig->samples += (uint64_t)got;
        if (caching && b_owned) {
            uint64_t bytes = 0;
            for (size_t k = 0; k < nb; k++)
                bytes += b[k] ? b[k]->nbytes : 0;
            if (ev->cache_bytes + bytes > REF_CACHE_BYTES) {
                caching = false;
                ev->cache_off = true;
                cache_drop(ev);
            } else {
                if (ev->n_cache == ev->cap_cache) {
                    size_t nc = ev->cap_cache ? ev->cap_cache * 2 : 16;
                    pare_tensor ***c1 = realloc(ev->cache, nc * sizeof *c1);
                    if (c1)
                        ev->cache = c1;
                    size_t *c2 = c1 ? realloc(ev->cache_n, nc * sizeof *c2) : NULL;
                    if (c2)
                        ev->cache_n = c2;
                    if (!c1 || !c2) {
                        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                        goto batch_done;
                    }
                    ev->cap_cache = nc;
                }
                ev->cache[ev->n_cache] = b;
                ev->cache_n[ev->n_cache++] = nb;
                ev->cache_bytes += bytes;
                b_owned = false;
            }
        }
    batch_done:
        pare_tensors_free(a, na);
        if (b_owned)
            pare_tensors_free(b, nb);
        pare_tensors_free(conv, n_in);
        free(use);
        pare_tensors_free(ins, n_in);
        if (st)
            break;
        if (!bar && pare_now() - t_start > 1.0)
            bar = cli_progress_start("validating", total > 0 ? (uint64_t)total : 0);
        cli_progress_update(bar, fig->samples);
    }
    cli_progress_stop(&bar);
    pare_feed_close(f);
    if (st) {
        if (caching)
            cache_drop(ev);
        return st;
    }
    if (caching)
        ev->cache_full = true;
    if (ev->metric == MET_ACCURACY && isnan(pare_compare_accuracy_a(&fig->c[0])))
        return pare_error_set(err, PARE_ERR_INVALID, "--metric accuracy: output '%s' has no "
                              "class axis to compare with the labels", fig->names[0]);
    if (ev->metric == MET_TOP1 && (!fig->n || isnan(pare_compare_top1(&fig->c[0]))))
        return pare_error_set(err, PARE_ERR_INVALID, "--metric top1: output '%s' has no class "
                              "axis; use --metric cosine", fig->n ? fig->names[0] : "?");
    fig->drop = metric_drop(fig, ev->metric);
    return PARE_OK;
}

static pare_status evaluate(evalset *ev, pare_model *cand, figures *fig, pare_error *err)
{
    pare_session *cs;
    memset(fig, 0, sizeof *fig);
    pare_status st = session_for(cand, &cs, err);
    if (st)
        return pare_error_prefix(err, "the quantized model");
    st = evaluate_session(ev, cs, fig, err);
    pare_session_free(cs);
    return st;
}

/* ---- sensitivity: per-tensor error of each quantized node ---- */

typedef struct cand {
    char *name, *op;
    double out_err; /* relative L2 of the node's output against the float model's */
    double in_err;  /* the largest of its inputs' (error it inherited) */
    double score;   /* out_err - in_err: error the node added */
    size_t order;   /* position in the report (topological) */
    bool measured;
} cand;

typedef struct tensor_err {
    pare_tensor *ref; /* the float model's tensor (first batch) */
    double rel_l2;
    bool seen;
} tensor_err;

typedef struct sens_ctx {
    char **want;        /* names of interest, sorted */
    size_t n_want;
    tensor_err *errs;   /* parallel to want */
    bool failed;
} sens_ctx;

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static ptrdiff_t want_index(const sens_ctx *c, const char *name)
{
    const char *key = name;
    char *const *hit = bsearch(&key, c->want, c->n_want, sizeof *c->want, cmp_strp);
    return hit ? hit - c->want : -1;
}

static int stash_observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    sens_ctx *c = ctx;
    const pare_value *v = node->outputs[output];
    if (!v || !v->name || t->dtype == PARE_DT_STRING || !pare_dtype_valid(t->dtype))
        return 0;
    ptrdiff_t i = want_index(c, v->name);
    if (i < 0 || c->errs[i].ref)
        return 0;
    pare_error err;
    if (pare_tensor_clone(t, &c->errs[i].ref, &err)) {
        c->failed = true;
        return 1;
    }
    return 0;
}

static int compare_observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    sens_ctx *c = ctx;
    const pare_value *v = node->outputs[output];
    if (!v || !v->name)
        return 0;
    ptrdiff_t i = want_index(c, v->name);
    if (i < 0 || !c->errs[i].ref || c->errs[i].seen)
        return 0;
    const pare_tensor *r = c->errs[i].ref;
    if (r->rank != t->rank || t->dtype == PARE_DT_STRING ||
        (r->rank && memcmp(r->dims, t->dims, (size_t)r->rank * sizeof *r->dims)))
        return 0;
    pare_compare cmp;
    pare_error err;
    pare_compare_init(&cmp, -1, -1);
    if (pare_compare_add(&cmp, t, r, NULL, &err))
        return 0;
    double e = pare_compare_rel_l2(&cmp);
    if (cmp.mismatched_nonfinite)
        e = INFINITY;
    else if (isnan(e))
        e = cmp.max_abs > 0 ? INFINITY : 0; /* reference all zero */
    c->errs[i].rel_l2 = e;
    c->errs[i].seen = true;
    return 0;
}

static int cmp_cand(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->measured != b->measured)
        return a->measured ? -1 : 1;
    if (a->measured) {
        if (a->score != b->score)
            return a->score > b->score ? -1 : 1;
        if (a->out_err != b->out_err)
            return a->out_err > b->out_err ? -1 : 1;
    }
    return a->order < b->order ? -1 : a->order > b->order;
}

static void cands_free(cand *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].name);
        free(c[i].op);
    }
    free(c);
}

/* Where the float value v can be compared with the quantized model: v
 * itself when the quantized graph has a value of that name and every node
 * that reads v in the float graph is still there (so the name still means
 * the same tensor); else, when v feeds a single node that the quantizer
 * removed or merged (a BatchNormalization folded into its Conv), that
 * node's output, and so on along the chain. NULL when there is none. */
static pare_value *observation_point(pare_value *v, const pare_graph *qg)
{
    for (int depth = 0; v && depth < 8; depth++) {
        if (v->init)
            return NULL;
        bool survives = pare_graph_find_value(qg, v->name) != NULL;
        for (size_t u = 0; u < v->n_uses && survives; u++) {
            const pare_node *c = v->uses[u].node;
            survives = c && c->name && c->name[0] && pare_graph_find_node(qg, c->name);
        }
        if (survives)
            return v;
        if (v->n_uses != 1 || !v->uses[0].node || v->uses[0].node->n_outputs < 1)
            return NULL;
        v = v->uses[0].node->outputs[0];
    }
    return NULL;
}

/* The quantized nodes of r that can go back to float (named nodes of the
 * main graph), ranked by the error each adds on the first batch of DATA. */
static pare_status rank_nodes(evalset *ev, pare_model *qm, const pare_quant_report *r,
                              cand **out, size_t *n_out, pare_error *err)
{
    *out = NULL;
    *n_out = 0;
    pare_graph *g = pare_model_graph(ev->ref_m);
    cand *cs = calloc(r->n ? r->n : 1, sizeof *cs);
    if (!cs)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pare_quant_entry *e = &r->items[i];
        if (e->kind != PARE_QE_QUANTIZED || !e->name || !pare_graph_find_node(g, e->name))
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(cs[k].name, e->name) == 0;
        if (dup)
            continue;
        cs[n].name = strdup(e->name);
        cs[n].op = strdup(e->op ? e->op : "?");
        cs[n].order = n;
        if (!cs[n].name || !cs[n].op) {
            n++;
            cands_free(cs, n);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        n++;
    }
    /* the tensors to compare: inputs and outputs of those nodes */
    sens_ctx sc;
    memset(&sc, 0, sizeof sc);
    size_t cap = 0;
    for (size_t k = 0; k < n; k++) {
        pare_node *nd = pare_graph_find_node(g, cs[k].name);
        cap += nd->n_inputs + nd->n_outputs;
    }
    sc.want = calloc(cap ? cap : 1, sizeof *sc.want);
    sc.errs = calloc(cap ? cap : 1, sizeof *sc.errs);
    pare_status st = PARE_OK;
    pare_session *qs = NULL;
    pare_feed *f = NULL;
    pare_tensor **ins = NULL, **use = NULL, **conv = NULL, **outs = NULL;
    size_t n_outs = 0, n_in = pare_session_input_count(ev->ref_s);
    if (!sc.want || !sc.errs) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    const pare_graph *qg = pare_model_graph(qm);
    for (size_t k = 0; k < n; k++) {
        pare_node *nd = pare_graph_find_node(g, cs[k].name);
        for (size_t i = 0; i < nd->n_inputs + nd->n_outputs; i++) {
            pare_value *v = i < nd->n_inputs ? nd->inputs[i] : nd->outputs[i - nd->n_inputs];
            v = v ? observation_point(v, qg) : NULL;
            if (v && v->name)
                sc.want[sc.n_want++] = v->name;
        }
    }
    qsort(sc.want, sc.n_want, sizeof *sc.want, cmp_strp);
    size_t u = 0;
    for (size_t i = 0; i < sc.n_want; i++)
        if (!u || strcmp(sc.want[u - 1], sc.want[i]))
            sc.want[u++] = sc.want[i];
    sc.n_want = u;
    /* one batch through both models */
    if ((st = session_for(qm, &qs, err)) ||
        (st = pare_feed_open(ev->path, ev->ref_s, ev->batch, ev->batch, &f, err)))
        goto done;
    int64_t got;
    if ((st = pare_feed_next(f, &ins, &got, err)) || !ins)
        goto done;
    pare_session_set_observer(ev->ref_s, stash_observer, &sc);
    st = pare_session_run(ev->ref_s, ins, n_in, &outs, &n_outs, err);
    pare_session_set_observer(ev->ref_s, NULL, NULL);
    pare_tensors_free(outs, n_outs);
    outs = NULL;
    if (st)
        goto done;
    if (sc.failed) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = adapt_inputs(qs, ins, n_in, &use, &conv, err)))
        goto done;
    pare_session_set_observer(qs, compare_observer, &sc);
    st = pare_session_run(qs, use, n_in, &outs, &n_outs, err);
    pare_session_set_observer(qs, NULL, NULL);
    if (st)
        goto done;
    for (size_t k = 0; k < n; k++) {
        pare_node *nd = pare_graph_find_node(g, cs[k].name);
        double out_e = -1, in_e = 0;
        for (size_t i = 0; i < nd->n_outputs; i++) {
            pare_value *v = nd->outputs[i] ? observation_point(nd->outputs[i], qg) : NULL;
            ptrdiff_t w = v ? want_index(&sc, v->name) : -1;
            if (w >= 0 && sc.errs[w].seen && sc.errs[w].rel_l2 > out_e)
                out_e = sc.errs[w].rel_l2;
        }
        for (size_t i = 0; i < nd->n_inputs; i++) {
            pare_value *v = nd->inputs[i] ? observation_point(nd->inputs[i], qg) : NULL;
            ptrdiff_t w = v ? want_index(&sc, v->name) : -1;
            if (w >= 0 && sc.errs[w].seen && sc.errs[w].rel_l2 > in_e)
                in_e = sc.errs[w].rel_l2;
        }
        if (out_e >= 0) {
            cs[k].measured = true;
            cs[k].out_err = out_e;
            cs[k].in_err = in_e;
            cs[k].score = isinf(out_e) ? INFINITY : out_e - (isinf(in_e) ? out_e : in_e);
        }
    }
    qsort(cs, n, sizeof *cs, cmp_cand);
done:
    pare_tensors_free(outs, n_outs);
    pare_tensors_free(conv, n_in);
    free(use);
    pare_tensors_free(ins, n_in);
    pare_feed_close(f);
    pare_session_free(qs);
    for (size_t i = 0; i < sc.n_want; i++)
        pare_tensor_free(sc.errs[i].ref);
    free(sc.want);
    free(sc.errs);
    if (st) {
        cands_free(cs, n);
        return st;
    }
    *out = cs;
    *n_out = n;
    return PARE_OK;
}

/* ---- one quantized candidate and the search ---- */

typedef struct outcome {
    pare_model *m;
    pare_quant_report r;
    figures fig;
    size_t k;        /* nodes returned to float by the search */
    size_t nq;       /* nodes quantized */
    bool holds;      /* the target holds, with something quantized */
} outcome;

static void outcome_release(outcome *o)
{
    pare_model_free(o->m);
    pare_quant_report_release(&o->r);
    figures_release(&o->fig);
    memset(o, 0, sizeof *o);
}

typedef struct round_rec {
    size_t k;
    double drop;
    bool holds;
} round_rec;

typedef struct search {
    cand *cands;
    size_t n_cands;
    round_rec *rounds;
    size_t n_rounds;
    bool ran;   /* --max-accuracy-drop given */
    bool met;
    size_t kept_float; /* nodes returned to float in the chosen model */
} search;

/* Quantizes a fresh copy of the input with the first k candidates float and
 * measures it. */
static int measure(job *jb, const source *src, evalset *ev, const cand *cs, size_t k,
                   outcome *out, pare_error *err, const char **bad_file)
{
    memset(out, 0, sizeof *out);
    pare_quant_report_init(&out->r);
    out->k = k;
    *bad_file = cli_display_name(src->path);
    if (source_load(src, &out->m, err))
        return 1;
    const char **extra = k ? malloc(k * sizeof *extra) : NULL;
    if (k && !extra) {
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < k; i++)
        extra[i] = cs[i].name;
    jb->round++;
    pare_status st = quantize(jb, out->m, extra, k, &out->r, err);
    free(extra);
    if (st)
        return 1;
    if (ev && evaluate(ev, out->m, &out->fig, err)) {
        pare_error_prefix(err, "validating on %s", ev->path);
        return 1;
    }
    for (size_t i = 0; i < out->r.n; i++)
        out->nq += out->r.items[i].kind == PARE_QE_QUANTIZED;
    if (ev)
        out->holds = o_max_drop >= 0 && out->fig.drop <= o_max_drop && out->nq > 0;
    return 0;
}

static int record(search *s, const outcome *o, int metric)
{
    round_rec *nr = realloc(s->rounds, (s->n_rounds + 1) * sizeof *nr);
    if (!nr)
        return 1;
    s->rounds = nr;
    s->rounds[s->n_rounds++] = (round_rec){o->k, o->fig.drop, o->holds};
    cli_info(1, "measurement %zu: %zu node%s back in float, %zu quantized: %s drop %.6g (%s)",
             s->n_rounds, o->k, o->k == 1 ? "" : "s", o->nq, metric_names[metric], o->fig.drop,
             o->holds ? "holds" : o->nq ? "too high" : "nothing quantized");
    return 0;
}

/* keeps in *keep whichever of *keep and *cur is better by `better`; frees the other */
static void keep_better(outcome *keep, outcome *cur, bool cur_better)
{
    if (cur_better) {
        outcome_release(keep);
        *keep = *cur;
    } else {
        outcome_release(cur);
    }
    memset(cur, 0, sizeof *cur);
}

/* The accuracy-aware loop: quantize everything; while the drop exceeds the
 * target, return the top-k ranked nodes to float, k found by doubling then
 * bisection (each step re-quantizes the original with the longer exclude
 * list). A model with nothing quantized left does not count: when only
 * such a model would hold, the target cannot be met by quantization and
 * *result is the best model tried (lowest drop). */
static int accuracy_search(job *jb, const source *src, evalset *ev, search *s, outcome *result,
                           pare_error *err, const char **bad_file)
{
    outcome first, ok, best;
    memset(&ok, 0, sizeof ok);
    memset(&best, 0, sizeof best);
    if (measure(jb, src, ev, NULL, 0, &first, err, bad_file)) {
        outcome_release(&first);
        return 1;
    }
    if (record(s, &first, ev->metric))
        goto nomem;
    if (first.holds) {
        s->met = true;
        *result = first;
        return 0;
    }
    if (rank_nodes(ev, first.m, &first.r, &s->cands, &s->n_cands, err)) {
        pare_error_prefix(err, "ranking layers on %s", ev->path);
        outcome_release(&first);
        return 1;
    }
    best = first;
    memset(&first, 0, sizeof first);
    /* k: how many of the ranked nodes go back to float. A round whose
     * model has nothing quantized left ends the range: kmax < that k. */
    size_t kmax = s->n_cands;
    size_t lo = 0, hi = 0; /* lo fails; hi (when > 0) holds */
    for (size_t k = 1; k <= kmax && k > lo;) {
        outcome cur;
        if (measure(jb, src, ev, s->cands, k, &cur, err, bad_file)) {
            outcome_release(&cur);
            goto fail;
        }
        if (record(s, &cur, ev->metric)) {
            outcome_release(&cur);
            goto nomem;
        }
        if (cur.holds) {
            hi = k;
            keep_better(&ok, &cur, true);
            break;
        }
        if (!cur.nq) {
            outcome_release(&cur);
            kmax = k - 1;
            k = lo + (k - lo) / 2 > lo ? lo + (k - lo) / 2 : lo + 1;
            continue;
        }
        lo = k;
        keep_better(&best, &cur, cur.fig.drop < best.fig.drop);
        if (k == kmax)
            break;
        k = k * 2 > kmax ? kmax : k * 2;
    }
    while (hi && hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        outcome cur;
        if (measure(jb, src, ev, s->cands, mid, &cur, err, bad_file)) {
            outcome_release(&cur);
            goto fail;
        }
        if (record(s, &cur, ev->metric)) {
            outcome_release(&cur);
            goto nomem;
        }
        if (cur.holds) {
            hi = mid;
            keep_better(&ok, &cur, true);
        } else {
            lo = mid;
            keep_better(&best, &cur, cur.nq && cur.fig.drop < best.fig.drop);
        }
    }
    if (hi) {
        s->met = true;
        outcome_release(&best);
        *result = ok;
    } else {
        *result = best;
    }
    s->kept_float = result->k;
    return 0;
nomem:
    pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
fail:
    outcome_release(&first);
    outcome_release(&ok);
    outcome_release(&best);
    return 1;
}

/* The report says why the search's nodes are float. */
static void mark_fallback(pare_quant_report *r, const search *s)
{
    for (size_t i = 0; i < r->n; i++) {
        pare_quant_entry *e = &r->items[i];
        if (e->kind != PARE_QE_FLOAT || !e->name)
            continue;
        for (size_t k = 0; k < s->kept_float; k++)
            if (strcmp(s->cands[k].name, e->name) == 0) {
                char *how = strdup("accuracy fallback");
                if (how) {
                    free(e->how);
                    e->how = how;
                }
            }
    }
}

/* ---- the report ---- */

typedef struct summary {
    const char *model, *output;
    uint64_t file_before, file_after;
    bool written;
    const pare_quant_report *r;
    const figures *fig; /* NULL without --validate */
    const evalset *ev;
    const search *s;
    double seconds;
} summary;

static void json_options(pare_json *j)
{
    pare_json_key(j, "options");
    pare_json_begin_object(j);
    if (calib_mode() || (o_mode == MODE_WEIGHT_ONLY && o_algo == 1)) {
        pare_json_kv_string(j, "calibrate", o_calibrate);
        pare_json_kv_int(j, "calib_samples", o_calib_samples > 0 ? o_calib_samples : 0);
        pare_json_kv_int(j, "calib_batch", o_calib_batch > 0 ? o_calib_batch : 8);
    }
    if (calib_mode()) {
        int method = o_method >= 0 ? o_method : PARE_CALIB_PERCENTILE - 1;
        pare_json_kv_string(j, "calib_method", method_names[method]);
        if (method == PARE_CALIB_PERCENTILE - 1)
            pare_json_kv_double(j, "percentile", o_percentile > 0 ? o_percentile : 99.999);
        pare_json_kv_bool(j, "moving_average", o_moving_average);
    }
    if (o_mode == MODE_STATIC) {
        pare_json_kv_string(j, "activation_type", act_names[o_act_type > 0 ? 1 : 0]);
        json_num(j, "smooth_quant", o_smooth > 0 ? o_smooth : NAN);
    }
    if (o_mode == MODE_FP8)
        pare_json_kv_string(j, "type", "float8e4m3fn");
    if (int8_mode())
        pare_json_kv_bool(j, "per_channel", !o_per_tensor);
    if (o_mode == MODE_WEIGHT_ONLY) {
        pare_json_kv_int(j, "bits", o_bits > 0 ? o_bits : 4);
        pare_json_kv_int(j, "block_size", o_block_size > 0 ? o_block_size : 32);
        pare_json_kv_bool(j, "symmetric", o_symmetric);
        pare_json_kv_string(j, "format", format_names[o_format > 0 ? 1 : 0]);
        pare_json_kv_string(j, "algo", algo_names[o_algo > 0 ? 1 : 0]);
        if (o_algo == 1) {
            pare_json_kv_double(j, "damp", o_damp >= 0 ? o_damp : 0.01);
            pare_json_kv_bool(j, "act_order", o_act_order);
        }
        pare_json_kv_bool(j, "embeddings", o_embeddings);
    }
    if (float_mode()) {
        pare_json_kv_bool(j, "keep_io_types", !o_no_keep_io);
        pare_json_kv_bool(j, "default_block_list", !o_no_default_block);
        pare_json_kv_string(j, "compute", o_mode == MODE_BF16 && !o_bf16_compute ? "float32"
                                          : o_mode == MODE_BF16 ? "bfloat16" : "float16");
    }
    pare_json_kv_bool(j, "requantize", o_requantize);
    pare_json_end_object(j);
}

static void json_figures(pare_json *j, const summary *sm)
{
    const figures *f = sm->fig;
    pare_json_key(j, "validation");
    if (!f) {
        pare_json_null(j);
        return;
    }
    pare_json_begin_object(j);
    pare_json_kv_string(j, "data", sm->ev->path);
    pare_json_kv_uint(j, "samples", f->samples);
    pare_json_kv_string(j, "metric", metric_names[sm->ev->metric]);
    json_num(j, "drop", f->drop);
    pare_json_key(j, "outputs");
    pare_json_begin_array(j);
    for (size_t o = 0; o < f->n; o++) {
        const pare_compare *c = &f->c[o];
        pare_json_begin_object(j);
        pare_json_kv_string(j, "name", f->names[o]);
        json_num(j, "cosine", pare_compare_cosine(c));
        json_num(j, "rel_l2", pare_compare_rel_l2(c));
        json_num(j, "max_abs", c->max_abs);
        json_num(j, "snr_db", pare_compare_snr_db(c));
        json_num(j, "top1_agreement", pare_compare_top1(c));
        json_num(j, "accuracy", pare_compare_accuracy_a(c));
        json_num(j, "reference_accuracy", pare_compare_accuracy_b(c));
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
}

static void json_search(pare_json *j, const summary *sm)
{
    const search *s = sm->s;
    pare_json_key(j, "accuracy_aware");
    if (!s || !s->ran) {
        pare_json_null(j);
        return;
    }
    pare_json_begin_object(j);
    pare_json_kv_double(j, "max_drop", o_max_drop);
    pare_json_kv_bool(j, "met", s->met);
    pare_json_kv_uint(j, "measurements", (uint64_t)s->n_rounds);
    pare_json_key(j, "kept_float");
    pare_json_begin_array(j);
    for (size_t k = 0; k < s->kept_float; k++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", s->cands[k].name);
        pare_json_kv_string(j, "op", s->cands[k].op);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_key(j, "rounds");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_rounds; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_uint(j, "float_nodes", (uint64_t)s->rounds[i].k);
        json_num(j, "drop", s->rounds[i].drop);
        pare_json_kv_bool(j, "holds", s->rounds[i].holds);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_key(j, "sensitivity");
    pare_json_begin_array(j);
    for (size_t k = 0; k < s->n_cands; k++) {
        const cand *c = &s->cands[k];
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", c->name);
        pare_json_kv_string(j, "op", c->op);
        if (c->measured) {
            json_num(j, "rel_l2", c->out_err);
            json_num(j, "input_rel_l2", c->in_err);
            json_num(j, "added", c->score);
        } else {
            pare_json_kv_null(j, "rel_l2");
        }
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
}

static pare_status report_json(const summary *sm, char **text, size_t *len, pare_error *err)
{
    pare_json *j;
    pare_status st = pare_json_new(PARE_JSON_PRETTY, &j, err);
    if (st)
        return st;
    pare_json_begin_object(j);
    pare_json_kv_string(j, "schema", "pare-quantize/1");
    pare_json_kv_string(j, "model", sm->model);
    pare_json_kv_string(j, "output", sm->output);
    pare_json_kv_bool(j, "written", sm->written);
    pare_json_kv_string(j, "mode", mode_names[o_mode]);
    json_options(j);
    pare_json_kv_uint(j, "file_bytes_before", sm->file_before);
    if (sm->written && !is_stdout(sm->output))
        pare_json_kv_uint(j, "file_bytes_after", sm->file_after);
    else
        pare_json_kv_null(j, "file_bytes_after");
    pare_json_key(j, "quantization");
    pare_quant_report_json(sm->r, j);
    json_figures(j, sm);
    json_search(j, sm);
    pare_json_kv_double(j, "seconds", sm->seconds);
    pare_json_kv_uint(j, "peak_rss_bytes", pare_peak_rss());
    pare_json_end_object(j);
    const char *t;
    if (!(st = pare_json_finish(j, &t, len, err))) {
        *text = malloc(*len + 1);
        if (*text)
            memcpy(*text, t, *len + 1);
        else
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pare_json_free(j);
    return st;
}

static void put_table(FILE *fp, pare_table *t)
{
    char *text;
    size_t len;
    pare_error err;
    if (t && !pare_table_render(t, 2, &text, &len, &err)) {
        fwrite(text, 1, len, fp);
        free(text);
    }
    pare_table_free(t);
}

static const char *mode_text(char *buf, size_t size)
{
    switch (o_mode) {
    case MODE_DYNAMIC:
        snprintf(buf, size, "int8 dynamic, %s weights", o_per_tensor ? "per-tensor"
                                                                     : "per-channel");
        break;
    case MODE_STATIC:
    case MODE_FP8: {
        int method = o_method >= 0 ? o_method : PARE_CALIB_PERCENTILE - 1;
        char pct[48] = "";
        if (method == PARE_CALIB_PERCENTILE - 1)
            snprintf(pct, sizeof pct, " %g", o_percentile > 0 ? o_percentile : 99.999);
        if (o_mode == MODE_FP8)
            snprintf(buf, size, "fp8 e4m3fn QDQ, %s%s calibration", method_names[method], pct);
        else
            snprintf(buf, size, "int8 QDQ, %s%s calibration, %s activations, %s weights%s",
                     method_names[method], pct, o_act_type > 0 ? "int8" : "uint8",
                     o_per_tensor ? "per-tensor" : "per-channel",
                     o_smooth > 0 ? ", SmoothQuant" : "");
        break;
    }
    case MODE_WEIGHT_ONLY:
        snprintf(buf, size, "weight-only %s%lld %s, block %lld, %s", o_symmetric ? "int" : "uint",
                 (long long)(o_bits > 0 ? o_bits : 4), o_algo == 1 ? "GPTQ" : "RTN",
                 (long long)(o_block_size > 0 ? o_block_size : 32),
                 o_format == 1 ? "MatMulNBits" : "blocked DequantizeLinear");
        break;
    default:
        if (o_mode == MODE_BF16 && !o_bf16_compute)
            snprintf(buf, size, "bf16 weights, float32 compute");
        else
            snprintf(buf, size, "%s, %s", o_mode == MODE_BF16 ? "bf16" : "fp16",
                     o_no_keep_io ? "inputs and outputs converted"
                                  : "float32 inputs and outputs");
    }
    return buf;
}

/* widest range first (max of |lo|, |hi|), ties in report order */
static int cmp_widest(const void *pa, const void *pb)
{
    const pare_quant_entry *a = *(const pare_quant_entry *const *)pa;
    const pare_quant_entry *b = *(const pare_quant_entry *const *)pb;
    double x = fmax(fabs(a->lo), fabs(a->hi)), y = fmax(fabs(b->lo), fabs(b->hi));
    if (x != y && !isnan(x) && !isnan(y))
        return x > y ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void report_text(FILE *fp, const summary *sm)
{
    const pare_quant_report *r = sm->r;
    char b[6][64];
    size_t nq = 0, nf = 0, nr = 0, nc = 0;
    uint64_t clamped = 0;
    for (size_t i = 0; i < r->n; i++) {
        switch (r->items[i].kind) {
        case PARE_QE_QUANTIZED:
            nq++;
            break;
        case PARE_QE_FLOAT:
            nf++;
            break;
        case PARE_QE_RANGE:
            nr++;
            break;
        default:
            nc++;
            clamped += r->items[i].count;
        }
    }
    char mt[256];
    fprintf(fp, "%s -> %s: %s\n", sm->model, sm->written ? sm->output : "(not written)",
            mode_text(mt, sizeof mt));
    fprintf(fp, "weights %s -> %s (%s)", cli_fmt_bytes(r->weight_bytes_before, b[1], 64),
            cli_fmt_bytes(r->weight_bytes_after, b[2], 64),
            r->weight_bytes_before
                ? fmt_num((double)r->weight_bytes_after / (double)r->weight_bytes_before, b[3], 64,
                          "%.3fx")
                : "-");
    if (sm->written && !is_stdout(sm->output))
        fprintf(fp, "; file %s -> %s", cli_fmt_bytes(sm->file_before, b[4], 64),
                cli_fmt_bytes(sm->file_after, b[5], 64));
    if (r->calib_samples)
        fprintf(fp, "; %s calibration samples", cli_fmt_count(r->calib_samples, b[1], 64));
    fprintf(fp, "; %.2f s\n", sm->seconds);

    /* quantized nodes by op type and how */
    fprintf(fp, "quantized: %zu node%s\n", nq, nq == 1 ? "" : "s");
    pare_error err;
    pare_table *t = NULL;
    if (nq && !pare_table_new(3, &t, &err)) {
        pare_table_column(t, 0, "op", PARE_ALIGN_LEFT);
        pare_table_column(t, 1, "how", PARE_ALIGN_LEFT);
        pare_table_column(t, 2, "nodes", PARE_ALIGN_RIGHT);
        /* groups in order of first appearance */
        bool *done = calloc(r->n, sizeof *done);
        for (size_t i = 0; done && i < r->n; i++) {
            const pare_quant_entry *e = &r->items[i];
            if (e->kind != PARE_QE_QUANTIZED || done[i])
                continue;
            size_t count = 0;
            for (size_t k = i; k < r->n; k++) {
                const pare_quant_entry *x = &r->items[k];
                if (x->kind == PARE_QE_QUANTIZED && !done[k] &&
                    strcmp(x->op ? x->op : "", e->op ? e->op : "") == 0 &&
                    strcmp(x->how ? x->how : "", e->how ? e->how : "") == 0) {
                    done[k] = true;
                    count++;
                }
            }
            pare_table_row(t);
            pare_table_cell(t, "%s", e->op ? e->op : "?");
            pare_table_cell(t, "%s", e->how ? e->how : "");
            pare_table_cell(t, "%zu", count);
        }
        free(done);
        put_table(fp, t);
    }
    /* float nodes and why */
    fprintf(fp, "left float: %zu node%s\n", nf, nf == 1 ? "" : "s");
    t = NULL;
    if (nf && !pare_table_new(3, &t, &err)) {
        pare_table_column(t, 0, "node", PARE_ALIGN_LEFT);
        pare_table_column(t, 1, "op", PARE_ALIGN_LEFT);
        pare_table_column(t, 2, "why", PARE_ALIGN_LEFT);
        size_t shown = 0;
        for (size_t i = 0; i < r->n; i++) {
            const pare_quant_entry *e = &r->items[i];
            if (e->kind != PARE_QE_FLOAT)
                continue;
            if (shown == 20 && cli_verbosity() < 1) {
                pare_table_row(t);
                pare_table_cell(t, "(%zu more; -v lists them)", nf - shown);
                break;
            }
            pare_table_row(t);
            pare_table_cell(t, "%s", e->name ? e->name : "?");
            pare_table_cell(t, "%s", e->op ? e->op : "?");
            pare_table_cell(t, "%s", e->how ? e->how : "");
            shown++;
        }
        put_table(fp, t);
    }
    /* calibration ranges: the widest ones */
    if (nr) {
        const pare_quant_entry **es = malloc(nr * sizeof *es);
        t = NULL;
        if (es && !pare_table_new(5, &t, &err)) {
            size_t m = 0;
            for (size_t i = 0; i < r->n; i++)
                if (r->items[i].kind == PARE_QE_RANGE)
                    es[m++] = &r->items[i];
            qsort(es, m, sizeof *es, cmp_widest);
            size_t show = cli_verbosity() > 0 ? nr : (nr < 10 ? nr : 10);
            fprintf(fp, "calibration ranges: %zu tensors (widest %zu)\n", nr, show);
            pare_table_column(t, 0, "tensor", PARE_ALIGN_LEFT);
            pare_table_column(t, 1, "min", PARE_ALIGN_RIGHT);
            pare_table_column(t, 2, "max", PARE_ALIGN_RIGHT);
            pare_table_column(t, 3, "scale", PARE_ALIGN_RIGHT);
            pare_table_column(t, 4, "zero point", PARE_ALIGN_RIGHT);
            for (size_t a = 0; a < show; a++) {
                pare_table_row(t);
                pare_table_cell(t, "%s", es[a]->name ? es[a]->name : "?");
                pare_table_cell(t, "%.6g", es[a]->lo);
                pare_table_cell(t, "%.6g", es[a]->hi);
                pare_table_cell(t, "%.6g", es[a]->scale);
                pare_table_cell(t, "%lld", (long long)es[a]->zero_point);
            }
            put_table(fp, t);
        }
        free(es);
    }
    if (nc) {
        fprintf(fp, "clamped: %s values in %zu tensor%s\n", cli_fmt_count(clamped, b[1], 64), nc,
                nc == 1 ? "" : "s");
        t = NULL;
        if (!pare_table_new(2, &t, &err)) {
            pare_table_column(t, 0, "tensor", PARE_ALIGN_LEFT);
            pare_table_column(t, 1, "values", PARE_ALIGN_RIGHT);
            for (size_t i = 0; i < r->n; i++)
                if (r->items[i].kind == PARE_QE_CLAMPED) {
                    pare_table_row(t);
                    pare_table_cell(t, "%s", r->items[i].name ? r->items[i].name : "?");
                    pare_table_cell(t, "%s", cli_fmt_count(r->items[i].count, b[2], 64));
                }
            put_table(fp, t);
        }
    }
    /* validation */
    if (sm->fig) {
        const figures *f = sm->fig;
        fprintf(fp, "validation on %s: %llu samples, %s drop %s\n", sm->ev->path,
                (unsigned long long)f->samples, metric_names[sm->ev->metric],
                fmt_num(f->drop, b[1], 64, "%.6g"));
        t = NULL;
        if (!pare_table_new(6, &t, &err)) {
            pare_table_column(t, 0, "output", PARE_ALIGN_LEFT);
            pare_table_column(t, 1, "cosine", PARE_ALIGN_RIGHT);
            pare_table_column(t, 2, "rel L2", PARE_ALIGN_RIGHT);
            pare_table_column(t, 3, "SNR dB", PARE_ALIGN_RIGHT);
            pare_table_column(t, 4, "top-1", PARE_ALIGN_RIGHT);
            pare_table_column(t, 5, "accuracy", PARE_ALIGN_RIGHT);
            for (size_t o = 0; o < f->n; o++) {
                const pare_compare *c = &f->c[o];
                pare_table_row(t);
                pare_table_cell(t, "%s", f->names[o]);
                pare_table_cell(t, "%s", fmt_num(pare_compare_cosine(c), b[1], 64, "%.6f"));
                pare_table_cell(t, "%s", fmt_num(pare_compare_rel_l2(c), b[2], 64, "%.3e"));
                pare_table_cell(t, "%s", fmt_num(pare_compare_snr_db(c), b[3], 64, "%.2f"));
                pare_table_cell(t, "%s", fmt_num(pare_compare_top1(c), b[4], 64, "%.4f"));
                if (isnan(pare_compare_accuracy_a(c)))
                    pare_table_cell(t, "-");
                else
                    pare_table_cell(t, "%.4f (float %.4f)", pare_compare_accuracy_a(c),
                                    pare_compare_accuracy_b(c));
            }
            put_table(fp, t);
        }
    }
    /* the search */
    const search *s = sm->s;
    if (s && s->ran) {
        fprintf(fp, "accuracy-aware: target drop <= %g %s after %zu measurement%s; ", o_max_drop,
                s->met ? "met" : "NOT met", s->n_rounds, s->n_rounds == 1 ? "" : "s");
        if (!s->kept_float) {
            fprintf(fp, "%s\n", s->met ? "no layer returned to float"
                                       : "no layer could go back to float");
        } else {
            fprintf(fp, "%zu layer%s returned to float:", s->kept_float,
                    s->kept_float == 1 ? "" : "s");
            for (size_t k = 0; k < s->kept_float; k++)
                fprintf(fp, "%s %s (%s)", k ? "," : "", s->cands[k].name, s->cands[k].op);
            fputc('\n', fp);
        }
        if (cli_verbosity() > 0 && s->n_cands) {
            fprintf(fp, "sensitivity (error added on the first batch, most sensitive first):\n");
            t = NULL;
            if (!pare_table_new(4, &t, &err)) {
                pare_table_column(t, 0, "node", PARE_ALIGN_LEFT);
                pare_table_column(t, 1, "op", PARE_ALIGN_LEFT);
                pare_table_column(t, 2, "rel L2", PARE_ALIGN_RIGHT);
                pare_table_column(t, 3, "added", PARE_ALIGN_RIGHT);
                for (size_t k = 0; k < s->n_cands; k++) {
                    pare_table_row(t);
                    pare_table_cell(t, "%s", s->cands[k].name);
                    pare_table_cell(t, "%s", s->cands[k].op);
                    pare_table_cell(t, "%s", s->cands[k].measured
                                                 ? fmt_num(s->cands[k].out_err, b[1], 64, "%.3e")
                                                 : "-");
                    pare_table_cell(t, "%s", s->cands[k].measured
                                                 ? fmt_num(s->cands[k].score, b[2], 64, "%.3e")
                                                 : "-");
                }
                put_table(fp, t);
            }
        }
    }
}

/* ---- main ---- */

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return path && !is_stdout(path) && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

int main(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&prog, argc, argv, &args);
    if (rc != CLI_CONTINUE)
        return rc;
    job jb;
    memset(&jb, 0, sizeof jb);
    source src = {args.argv[0], NULL, 0};
    const char *shown = cli_display_name(src.path);
    pare_error err;
    pare_model *orig = NULL;
    evalset ev;
    bool have_ev = false;
    search srch;
    outcome res;
    cli_output rep;
    bool rep_open = false;
    char *rep_text = NULL;
    memset(&ev, 0, sizeof ev);
    memset(&srch, 0, sizeof srch);
    memset(&res, 0, sizeof res);
    memset(&rep, 0, sizeof rep);
    double t_start = pare_now();

    if (o_device && strcmp(o_device, "auto") == 0)
        o_device = "cpu"; /* this build has no CUDA backend */
    if ((rc = check_usage()) != CLI_CONTINUE)
        goto done;
    if ((rc = cli_split_names(&o_op_types, "op-types", &jb.op_types)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_exclude_nodes, "exclude-nodes", &jb.excl_nodes)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_exclude_op_types, "exclude-op-types", &jb.excl_ops)) !=
            CLI_CONTINUE ||
        (rc = cli_split_names(&o_block_ops, "block-ops", &jb.block_ops)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_block_nodes, "block-nodes", &jb.block_nodes)) != CLI_CONTINUE)
        goto done;
    rc = CLI_EXIT_FAIL;

    /* the input, once; a model on stdin is kept as bytes for the rounds */
    if (strcmp(src.path, "-") == 0 && source_read_stdin(&src, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    if (source_load(&src, &orig, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    bool input_external = pare_model_external_bytes(orig) > 0;
    char why[512];
    if (!o_requantize && pare_model_is_quantized(orig, why, sizeof why)) {
        cli_error(shown, "the model is already quantized (%s); --requantize quantizes it again",
                  why);
        goto done;
    }
    /* a node name that is not in the model is a usage error (a typo would
     * otherwise quantize the node it meant to keep float) */
    {
        const cli_names *lists[2] = {&jb.excl_nodes, &jb.block_nodes};
        const char *opts[2] = {"exclude-nodes", "block-nodes"};
        for (int l = 0; l < 2; l++)
            for (size_t i = 0; i < lists[l]->n; i++)
                if (!pare_graph_find_node(pare_model_graph(orig), lists[l]->v[i])) {
                    rc = cli_usage_error("--%s: no node named '%s' in the main graph of %s",
                                         opts[l], lists[l]->v[i], shown);
                    goto done;
                }
    }
    /* calibration data that does not fit the model fails now, not after a long run */
    if (o_calibrate) {
        pare_session *s;
        pare_feed *f;
        if (session_for(orig, &s, &err)) {
            rc = cli_fail(shown, &err);
            goto done;
        }
        if (pare_feed_open(o_calibrate, s, 1, 0, &f, &err)) {
            pare_session_free(s);
            rc = cli_fail(NULL, &err); /* the message starts with the data's path */
            goto done;
        }
        int64_t count = pare_feed_count(f);
        pare_feed_close(f);
        pare_session_free(s);
        if (count == 0) {
            cli_error(o_calibrate, "the dataset holds no samples");
            goto done;
        }
    }
    if (o_validate) {
        const char *bad;
        if (evalset_open(&ev, orig, shown, &err, &bad)) {
            rc = cli_fail(bad, &err);
            evalset_close(&ev);
            goto done;
        }
        have_ev = true;
    }
    jb.model_path = src.path;

    /* quantize: once, or the accuracy-aware search */
    const char *bad = shown;
    if (o_max_drop >= 0) {
        srch.ran = true;
        if (accuracy_search(&jb, &src, &ev, &srch, &res, &err, &bad)) {
            rc = cli_fail(bad, &err);
            goto done;
        }
        mark_fallback(&res.r, &srch);
    } else {
        /* without --validate the loaded model is quantized in place */
        if (!have_ev) {
            res.m = orig;
            orig = NULL;
            pare_quant_report_init(&res.r);
            jb.round = 1;
            if (quantize(&jb, res.m, NULL, 0, &res.r, &err)) {
                rc = cli_fail(shown, &err);
                goto done;
            }
        } else if (measure(&jb, &src, &ev, NULL, 0, &res, &err, &bad)) {
            rc = cli_fail(bad, &err);
            goto done;
        }
    }

    /* the result must be a valid model */
    pare_problems probs = {0};
    if (pare_model_validate(res.m, &probs, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    if (probs.n) {
        cli_error(shown, "the quantized model is invalid (%zu problem%s; nothing written): %s: %s",
                  probs.n, probs.n == 1 ? "" : "s", probs.items[0].where, probs.items[0].what);
        pare_problems_release(&probs);
        goto done;
    }
    pare_problems_release(&probs);

    bool write = !srch.ran || srch.met || o_write_best;
    summary sm = {.model = shown,
                  .output = is_stdout(o_output) ? "-" : o_output,
                  .file_before = src.buf ? src.len : file_size(src.path),
                  .written = write,
                  .r = &res.r,
                  .fig = have_ev ? &res.fig : NULL,
                  .ev = have_ev ? &ev : NULL,
                  .s = &srch};

    /* the report goes to --report, or stdout, or (the model on stdout) stderr */
    if (o_report) {
        if (cli_output_open(&rep, o_report, 0, &err)) {
            rc = cli_fail(o_report, &err);
            goto done;
        }
        rep_open = true;
    }
    if (write) {
        pare_save_opts so = PARE_SAVE_OPTS_INIT;
        so.gzip = !is_stdout(o_output) && ends_with(o_output, ".gz");
        if (o_external != NOT_GIVEN_SIZE)
            so.external_threshold = o_external > INT64_MAX ? INT64_MAX : (int64_t)o_external;
        else if (!is_stdout(o_output) && input_external)
            so.external_threshold = 1024;
        if (pare_model_save(res.m, is_stdout(o_output) ? "-" : o_output, &so, &err)) {
            rc = cli_fail(cli_display_name(o_output), &err);
            goto done;
        }
        if (!is_stdout(o_output))
            sm.file_after = file_size(o_output);
    }
    sm.seconds = pare_now() - t_start;
    FILE *out = rep_open ? rep.fp : is_stdout(o_output) ? stderr : stdout;
    bool show = rep_open || !is_stdout(o_output) || cli_verbosity() >= 0;
    if (o_json) {
        size_t len;
        if (report_json(&sm, &rep_text, &len, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        fwrite(rep_text, 1, len, out);
    } else if (show) {
        report_text(out, &sm);
    }
    if (rep_open) {
        rep_open = false;
        if (cli_output_commit(&rep, &err)) {
            rc = cli_fail(o_report, &err);
            goto done;
        }
    } else if (out == stdout && fflush(stdout)) {
        cli_error(NULL, "cannot write the report: %s", strerror(errno));
        goto done;
    }
    if (srch.ran && !srch.met) {
        fflush(stdout);
        cli_error(shown, "accuracy target not met: the best drop is %.6g > %g (%s) with %zu "
                  "node%s back in float%s", res.fig.drop, o_max_drop,
                  metric_names[ev.metric], res.k, res.k == 1 ? "" : "s",
                  o_write_best ? "; wrote it (--write-best)" : "; nothing written");
        rc = CLI_EXIT_GATE;
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (rep_open)
        cli_output_abort(&rep);
    free(rep_text);
    outcome_release(&res);
    cands_free(srch.cands, srch.n_cands);
    free(srch.rounds);
    if (have_ev)
        evalset_close(&ev);
    pare_model_free(orig);
    free(src.buf);
    cli_names_release(&jb.op_types);
    cli_names_release(&jb.excl_nodes);
    cli_names_release(&jb.excl_ops);
    cli_names_release(&jb.block_ops);
    cli_names_release(&jb.block_nodes);
    cli_list_release(&o_op_types);
    cli_list_release(&o_exclude_nodes);
    cli_list_release(&o_exclude_op_types);
    cli_list_release(&o_block_ops);
    cli_list_release(&o_block_nodes);
    cli_args_release(&args);
    return rc;
}
