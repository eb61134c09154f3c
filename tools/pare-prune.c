/* pare-prune: unstructured, N:M and block sparsity (magnitude, Wanda,
 * SparseGPT), structured channel pruning, a per-layer sensitivity scan, and
 * the graph cleanup passes, on the ONNX file itself.
 *
 * The work lives in lib/prune (pare/prune.h) and lib/opt (pare/opt.h); this
 * file parses options, checks them before the long work, runs the steps in
 * order (cut, sensitivity, channels, weights, cleanup), validates the
 * result, writes it atomically and prints the report (text or JSON, schema
 * pare-prune/1). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "pare/exec.h"
#include "pare/ir.h"
#include "pare/model.h"
#include "pare/opt.h"
#include "pare/prune.h"
#include "pare/report.h"
#include "pare/stats.h"

/* ---- options ---- */

#define NOT_GIVEN_SIZE UINT64_MAX

static const char *const criterion_names[] = {"magnitude", "wanda", "sparsegpt", NULL};
static const char *const structured_names[] = {"channels", NULL};
static const char *const norm_names[] = {"l1", "l2", NULL};
static const char *const sparse_names[] = {"dense", "coo", NULL};

static const char *o_output = "-", *o_report, *o_calibrate, *o_pattern, *o_sensitivity,
                  *o_labels, *o_levels, *o_bn_recal;
static cli_list o_exclude_nodes, o_exclude_op_types, o_layer_ratio, o_outputs, o_inputs;
static double o_sparsity = NAN, o_ratio = NAN, o_max_drop = -1, o_damp = 0;
static int64_t o_min_params = 0, o_calib_samples = 0, o_calib_batch = 0, o_seed = 0,
               o_threads = 0, o_sgpt_block = 0, o_samples = 0;
static int o_criterion = -1, o_structured = -1, o_norm = -1, o_sparse_format = 0;
static int64_t o_channel_multiple = 0;
static bool o_per_layer, o_first_last, o_json, o_cleanup, o_cleanup_only, o_no_dead;
static bool o_keep_bn;
static uint64_t o_external = NOT_GIVEN_SIZE, o_max_decompressed = 0;

static const cli_option options[] = {
    CLI_GROUP("Weight pruning"),
    CLI_DOUBLE(0, "sparsity", &o_sparsity, "S", -1e300, 1e300,
               "share of weights set to zero, in [0, 1) (global threshold unless --per-layer)"),
    CLI_FLAG(0, "per-layer", &o_per_layer, "the same share in every layer"),
    CLI_STRING(0, "pattern", &o_pattern, "N:M|block:RxC",
               "at most N kept in every M weights along the reduction axis (bare --pattern: 2:4), "
               "or blocks of R rows x C columns (with --sparsity)"),
    CLI_CHOICE(0, "criterion", &o_criterion, "C", criterion_names,
               "how weights are ranked (magnitude; wanda and sparsegpt need --calibrate)"),
    CLI_DOUBLE(0, "damp", &o_damp, "X", 0, 1, "sparsegpt: damping, a share of mean(diag H) (0.01)"),
    CLI_INT(0, "block-size", &o_sgpt_block, "N", 1, 1 << 20,
            "sparsegpt: columns per lazy-update block (128)"),
    CLI_GROUP("Which layers (Conv, ConvTranspose, Gemm, MatMul with constant weights)"),
    CLI_LIST(0, "exclude-nodes", &o_exclude_nodes, "NAMES",
             "leave these nodes dense (comma-separated or repeated)"),
    CLI_LIST(0, "exclude-op-types", &o_exclude_op_types, "OPS", "leave these op types dense"),
    CLI_INT(0, "min-params", &o_min_params, "N", 0, 9007199254740991.0,
            "leave layers with fewer weights dense (0)"),
    CLI_FLAG(0, "include-first-last", &o_first_last,
             "also prune the first and the last prunable layer (kept dense by default)"),
    CLI_GROUP("Calibration data (wanda, sparsegpt, --bn-recalibrate)"),
    CLI_STRING(0, "calibrate", &o_calibrate, "DATA",
               ".npz (arrays named after the inputs, samples on axis 0), a folder of .npz "
               "files, or test_data_set folders"),
    CLI_INT(0, "calib-samples", &o_calib_samples, "N", 1, 1e15,
            "use the first N samples of DATA (all)"),
    CLI_INT(0, "calib-batch", &o_calib_batch, "N", 1, 1e6, "samples per calibration run (8)"),
    CLI_INT(0, "seed", &o_seed, "N", 0, 9007199254740991.0, "draw the --calib-samples at random with this seed (0: the first ones)"),
    CLI_INT('t', "threads", &o_threads, "N", 0, 4096, "threads of the executor (0: all cores)"),
    CLI_GROUP("Structured pruning"),
    CLI_CHOICE(0, "structured", &o_structured, "KIND", structured_names,
               "remove whole output channels and units (with --ratio)"),
    CLI_DOUBLE(0, "ratio", &o_ratio, "R", -1e300, 1e300,
               "share of channels removed per layer, in [0, 1)"),
    CLI_LIST(0, "layer-ratio", &o_layer_ratio, "NODE=R", "ratio of one layer (repeatable)"),
    CLI_CHOICE(0, "norm", &o_norm, "N", norm_names, "norm that ranks channels (l1)"),
    CLI_INT(0, "channel-multiple", &o_channel_multiple, "M", 1, 4096,
            "round kept channel counts to a multiple of M in layers of at least max(32, 2M) "
            "channels (16: whole blocks of 8- and 16-wide convolution kernels; 1: exact)"),
    CLI_STRING(0, "bn-recalibrate", &o_bn_recal, "DATA",
               "re-estimate BatchNormalization statistics on DATA after channel pruning"),
    CLI_GROUP("Sensitivity"),
    CLI_STRING(0, "sensitivity", &o_sensitivity, "DATA",
               "prune each layer alone at several sparsities and compare with the original on "
               "DATA (table and JSON)"),
    CLI_STRING(0, "sensitivity-levels", &o_levels, "LIST",
               "sparsities of the scan (0.3,0.5,0.7,0.9)"),
    CLI_STRING(0, "labels", &o_labels, "FILE",
               "labels of the --sensitivity DATA (.npy) for accuracy"),
    CLI_INT(0, "samples", &o_samples, "N", 1, 1e15, "use at most N samples of the scan's DATA"),
    CLI_DOUBLE(0, "max-accuracy-drop", &o_max_drop, "X", 0, 1,
               "choose per-layer sparsities from the scan so the drop stays at most X "
               "(0.01 = 1 point)"),
    CLI_GROUP("Graph cleanup"),
    CLI_FLAG(0, "cleanup", &o_cleanup,
             "also run every cleanup pass first (BatchNorm folded into the weights it scales, "
             "dead code, Identity, constants, duplicates, no-ops)"),
    CLI_FLAG(0, "cleanup-only", &o_cleanup_only, "run the cleanup passes only, no pruning"),
    CLI_FLAG(0, "keep-batchnorm", &o_keep_bn,
             "do not fold BatchNormalization into the Conv/Gemm before weight pruning (folded "
             "by default: a weight's importance is its magnitude after the BN scale)"),
    CLI_FLAG(0, "no-dead-code", &o_no_dead,
             "keep unused nodes and initializers (removed after pruning by default)"),
    CLI_LIST(0, "outputs", &o_outputs, "NAMES", "cut the model to what computes these tensors"),
    CLI_LIST(0, "inputs", &o_inputs, "NAMES", "start the model from these tensors"),
    CLI_GROUP("Output"),
    CLI_STRING('o', "output", &o_output, "FILE",
               "the pruned model (.onnx.gz: gzip; -: stdout, the default)"),
    CLI_CHOICE(0, "sparse-format", &o_sparse_format, "F", sparse_names,
               "how pruned weights are stored (dense; coo: ONNX sparse_initializer where "
               "smaller)"),
    CLI_SIZE(0, "external-data", &o_external, "BYTES",
             "tensors of at least BYTES go to FILE.data (default: 1K when the input has "
             "external data, else none)"),
    CLI_FLAG(0, "json", &o_json, "print the report as JSON (schema pare-prune/1)"),
    CLI_STRING(0, "report", &o_report, "FILE", "write the report to FILE instead of stdout"),
    CLI_SIZE(0, "max-decompressed", &o_max_decompressed, "BYTES",
             "largest decompressed size of a gzip model (2G)"),
    CLI_END(),
};

static const cli_program prog = {
    .name = "pare-prune",
    .usage = "[OPTIONS] MODEL [-o OUTPUT]\n--sensitivity DATA [--max-accuracy-drop X] MODEL "
             "[-o OUTPUT]\n--cleanup-only [--outputs NAMES] MODEL [-o OUTPUT]",
    .summary = "Prune an ONNX model: unstructured, N:M or block sparsity by magnitude, Wanda or "
               "SparseGPT; whole channels; per-layer sensitivity; graph cleanup. Prints what it "
               "did: sparsity per layer, params, bytes plain and gzipped, MACs.",
    .footer = "Exit status: 0 done, 1 bad input or failure, 2 bad usage.",
    .options = options,
    .args_name = "MODEL",
    .min_args = 1,
    .max_args = 1,
};

/* ---- helpers ---- */

static bool is_stdout(const char *p) { return !p || strcmp(p, "-") == 0; }

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}


static bool parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == 0 && errno == 0 && isfinite(*v);
}

static bool parse_int_range(const char *s, const char **end, long lo, long hi, int *v)
{
    char *e;
    errno = 0;
    long x = strtol(s, &e, 10);
    if (e == s || errno || x < lo || x > hi)
        return false;
    *v = (int)x;
    *end = e;
    return true;
}

/* "N:M" or "block:RxC" */
static int parse_pattern(const char *s, pare_prune_opts *po)
{
    const char *e;
    if (strncmp(s, "block:", 6) == 0) {
        int r, c;
        if (!parse_int_range(s + 6, &e, 1, 1 << 20, &r) || (*e != 'x' && *e != 'X') ||
            !parse_int_range(e + 1, &e, 1, 1 << 20, &c) || *e)
            return cli_usage_error("--pattern '%s': expected block:RxC with R, C >= 1", s);
        po->block_r = r;
        po->block_c = c;
        return CLI_CONTINUE;
    }
    int n, m;
    if (!parse_int_range(s, &e, 0, 1 << 20, &n) || *e != ':' ||
        !parse_int_range(e + 1, &e, 0, 1 << 20, &m) || *e)
        return cli_usage_error("--pattern '%s': expected N:M (such as 2:4) or block:RxC", s);
    if (m < 1 || m > 256)
        return cli_usage_error("--pattern %s: M must be 1 to 256", s);
    if (n < 1)
        return cli_usage_error("--pattern %s: N must be at least 1", s);
    if (n > m)
        return cli_usage_error("--pattern %s: N (%d) is larger than M (%d)", s, n, m);
    po->pattern_n = n;
    po->pattern_m = m;
    return CLI_CONTINUE;
}

/* the word after --pattern is its value when it starts like one: "block",
 * or a digit in a word without a '.' (which a model file name would have) */
static bool looks_like_pattern(const char *s)
{
    if (strncmp(s, "block", 5) == 0)
        return true;
    return s[0] >= '0' && s[0] <= '9' && !strchr(s, '.');
}

/* "--pattern" not followed by a pattern means 2:4: rewrite argv so the
 * option table (which wants a value) sees "--pattern=2:4". */
static char **expand_bare_pattern(int argc, char **argv)
{
    char **v = malloc(((size_t)argc + 1) * sizeof *v);
    if (!v)
        return NULL;
    bool opts = true;
    for (int i = 0; i < argc; i++) {
        v[i] = argv[i];
        if (!opts || i == 0)
            continue;
        if (strcmp(argv[i], "--") == 0)
            opts = false;
        else if (strcmp(argv[i], "--pattern") == 0 &&
                 (i + 1 >= argc || !looks_like_pattern(argv[i + 1])))
            v[i] = "--pattern=2:4";
    }
    v[argc] = NULL;
    return v;
}

typedef struct progress_ctx {
    cli_progress *bar;
    const char *title;
} progress_ctx;

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress_ctx *p = ctx;
    if (!p->bar)
        p->bar = cli_progress_start(p->title, total > 0 ? (uint64_t)total : 0);
    cli_progress_update(p->bar, done > 0 ? (uint64_t)done : 0);
    if (total > 0 && done >= total)
        cli_progress_stop(&p->bar);
}

static int check_usage(const pare_prune_opts *po)
{
    bool prune = !isnan(o_sparsity) || o_pattern;
    if (!isnan(o_sparsity) && !(o_sparsity >= 0 && o_sparsity < 1))
        return cli_usage_error("--sparsity %g is outside [0, 1)", o_sparsity);
    if (po->pattern_m && !isnan(o_sparsity))
        return cli_usage_error("--pattern N:M fixes the sparsity: drop --sparsity");
    if ((po->block_r || po->block_c) && isnan(o_sparsity))
        return cli_usage_error("--pattern block:RxC needs --sparsity (the share of blocks)");
    if (o_criterion >= 1 && !o_calibrate)
        return cli_usage_error("--criterion %s needs --calibrate DATA",
                               criterion_names[o_criterion]);
    if (o_criterion == 2 && (po->block_r || po->block_c))
        return cli_usage_error("--criterion sparsegpt does not do block patterns");
    if ((o_damp > 0 || o_sgpt_block > 0) && o_criterion != 2)
        return cli_usage_error("--damp and --block-size go with --criterion sparsegpt");
    if (o_calibrate && o_criterion < 1 && !o_bn_recal)
        return cli_usage_error("--calibrate goes with --criterion wanda or sparsegpt");
    if ((o_calib_samples || o_calib_batch) && !o_calibrate && !o_bn_recal)
        return cli_usage_error("--calib-samples and --calib-batch need --calibrate DATA");
    if (!isnan(o_ratio) && !(o_ratio >= 0 && o_ratio < 1))
        return cli_usage_error("--ratio %g is outside [0, 1): a ratio of 1 would remove every "
                               "channel", o_ratio);
    for (size_t i = 0; i < o_layer_ratio.n; i++) {
        const char *s = o_layer_ratio.items[i], *eq = strrchr(s, '=');
        double r;
        if (!eq || eq == s || !parse_double(eq + 1, &r))
            return cli_usage_error("--layer-ratio '%s': expected NODE=R", s);
        if (!(r >= 0 && r < 1))
            return cli_usage_error("--layer-ratio '%s': %g is outside [0, 1): it would remove "
                                   "every channel", s, r);
    }
    if (o_structured >= 0 && isnan(o_ratio) && o_layer_ratio.n == 0)
        return cli_usage_error("--structured channels needs --ratio R or --layer-ratio");
    if ((!isnan(o_ratio) || o_layer_ratio.n || o_norm >= 0 || o_bn_recal ||
         o_channel_multiple) && o_structured < 0)
        return cli_usage_error("--ratio, --layer-ratio, --norm, --channel-multiple and "
                               "--bn-recalibrate go with --structured channels");
    if (o_max_drop >= 0 && !o_sensitivity)
        return cli_usage_error("--max-accuracy-drop needs --sensitivity DATA");
    if ((o_labels || o_levels || o_samples) && !o_sensitivity)
        return cli_usage_error("--labels, --sensitivity-levels and --samples go with "
                               "--sensitivity DATA");
    if (o_max_drop >= 0 && prune)
        return cli_usage_error("--max-accuracy-drop chooses the sparsities: drop --sparsity "
                               "and --pattern");
    if (o_cleanup_only && (prune || o_structured >= 0 || o_sensitivity))
        return cli_usage_error("--cleanup-only prunes nothing: drop the pruning options");
    if (!prune && o_structured < 0 && !o_sensitivity && !o_cleanup_only && !o_cleanup &&
        !o_outputs.n && !o_inputs.n)
        return cli_usage_error("nothing to do: give --sparsity, --pattern, --structured, "
                               "--sensitivity or --cleanup-only");
    if (is_stdout(o_output) && o_external != NOT_GIVEN_SIZE)
        return cli_usage_error("--external-data needs -o FILE (standard output cannot carry "
                               "external data)");
    if (is_stdout(o_output) && o_json && !o_report)
        return cli_usage_error("--json with the model on standard output needs --report FILE");
    if (o_report && !is_stdout(o_output) && strcmp(o_report, o_output) == 0)
        return cli_usage_error("--report and -o name the same file");
    if (is_stdout(o_output) && cli_is_terminal_output(o_output))
        return cli_usage_error("refusing to write a binary model to a terminal: give -o FILE "
                               "or redirect standard output");
    return CLI_CONTINUE;
}

static int parse_levels(const char *s, double **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char buf[64];
        double v;
        if (len == 0 || len >= sizeof buf)
            goto bad;
        memcpy(buf, p, len);
        buf[len] = 0;
        if (!parse_double(buf, &v) || !(v >= 0 && v < 1))
            goto bad;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            if (cap > 64)
                goto bad;
            double *q = realloc(*out, cap * sizeof *q);
            if (!q)
                goto bad;
            *out = q;
        }
        (*out)[(*n)++] = v;
        p += len;
        if (*p == ',')
            p++;
    }
    if (*n)
        return CLI_CONTINUE;
bad:
    free(*out);
    *out = NULL;
    return cli_usage_error("--sensitivity-levels '%s': expected up to 64 comma-separated "
                           "sparsities in [0, 1)", s);
}

/* pruned weights as sparse_initializer where the COO form is smaller */
static int store_coo(pare_model *m, const pare_prune_report *r, const char *shown, pare_error *err)
{
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < r->n_layers; i++) {
        const pare_prune_layer_stat *s = &r->layers[i];
        pare_value *v = pare_graph_find_value(g, s->weight);
        if (!v || !v->init || v->is_input)
            continue;
        int64_t nnz = s->params - s->zeros_after;
        /* COO: 4-byte values + 8-byte indices per nonzero */
        if (nnz * 12 >= s->params * 4 || s->params * 4 < 4096)
            continue;
        if (pare_value_store_sparse(v, true, err))
            return cli_fail(shown, err);
    }
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    char **av = expand_bare_pattern(argc, argv);
    if (!av) {
        fprintf(stderr, "pare-prune: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_args args = {0};
    int rc = cli_parse(&prog, argc, av, &args);
    if (rc != CLI_CONTINUE) {
        free(av);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    pare_error err;
    pare_model *m = NULL;
    pare_prune_report rep;
    pare_prune_report_init(&rep);
    pare_sensitivity sens = {0};
    bool have_sens = false;
    pare_prune_layer_sparsity *chosen = NULL;
    size_t n_chosen = 0;
    double chosen_drop = NAN;
    double *levels = NULL;
    size_t n_levels = 0;
    cli_names excl_nodes = {0}, excl_ops = {0}, outs = {0}, ins = {0};
    pare_json *j = NULL;
    char *text = NULL, *stext = NULL;
    cli_output repf;
    bool rep_open = false;
    pare_opt_report orep = {0};
    bool have_orep = false;
    const char *path = args.argv[0];
    const char *shown = cli_display_name(path);

    pare_prune_opts po = PARE_PRUNE_OPTS_INIT;
    if (o_pattern && (rc = parse_pattern(o_pattern, &po)) != CLI_CONTINUE)
        goto done;
    if ((rc = check_usage(&po)) != CLI_CONTINUE)
        goto done;
    if (o_levels && (rc = parse_levels(o_levels, &levels, &n_levels)) != CLI_CONTINUE)
        goto done;
    if ((rc = cli_split_names(&o_exclude_nodes, "exclude-nodes", &excl_nodes)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_exclude_op_types, "exclude-op-types", &excl_ops)) !=
            CLI_CONTINUE ||
        (rc = cli_split_names(&o_outputs, "outputs", &outs)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_inputs, "inputs", &ins)) != CLI_CONTINUE)
        goto done;
    rc = CLI_EXIT_FAIL;

    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = o_max_decompressed;
    if (pare_model_load(path, &lo, &m, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    bool input_external = pare_model_external_bytes(m) > 0;
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < excl_nodes.n; i++)
        if (!pare_graph_find_node(g, excl_nodes.v[i])) {
            rc = cli_usage_error("--exclude-nodes: no node named '%s' in %s", excl_nodes.v[i],
                                 shown);
            goto done;
        }
    double t0 = pare_now();
    pare_prune_count_params(m, &rep.params_before, &rep.nonzero_before);
    if (pare_prune_model_sizes(m, 6, &rep.bytes_before, &rep.gzip_before, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }

    /* 1. cut to --outputs / --inputs, and with --cleanup(-only) every pass: before
     * pruning, so that BatchNormalization is folded into the weights it scales */
    if (outs.n || ins.n || o_cleanup_only || o_cleanup) {
        pare_opt_opts oo = PARE_OPT_OPTS_NONE;
        if (o_cleanup_only || o_cleanup)
            oo = (pare_opt_opts)PARE_OPT_OPTS_ALL;
        oo.outputs = (const char *const *)outs.v;
        oo.n_outputs = outs.n;
        oo.inputs = (const char *const *)ins.v;
        oo.n_inputs = ins.n;
        have_orep = true;
        pare_status st = pare_optimize(m, &oo, &orep, &err);
        if (st) {
            rc = st == PARE_ERR_ARG ? cli_usage_error("%s: %s", shown, err.msg)
                                    : cli_fail(shown, &err);
            goto done;
        }
    }

    /* weight pruning ranks weights as the model applies them: a BatchNormalization
     * after a Conv rescales each output channel, so fold it first (outputs equal)
     * unless asked not to; structured pruning keeps BN (it may re-estimate it) */
    if ((!isnan(o_sparsity) || o_pattern) && !o_keep_bn && !o_cleanup && o_structured < 0 &&
        !o_bn_recal) {
        size_t folded = 0;
        if (pare_opt_fold_batchnorm(m, &folded, &err)) {
            rc = cli_fail(shown, &err);
            goto done;
        }
        if (folded)
            cli_info(1, "folded %zu BatchNormalization node%s into the weights they scale",
                     folded, folded == 1 ? "" : "s");
    }

    pare_prune_filter filt = {(const char *const *)excl_nodes.v, excl_nodes.n,
                              (const char *const *)excl_ops.v, excl_ops.n, o_min_params,
                              o_first_last};
    progress_ctx pcal = {NULL, "calibration"}, pscan = {NULL, "sensitivity scan"};

    /* 2. sensitivity scan, and the choice of per-layer sparsities */
    if (o_sensitivity) {
        pare_sensitivity_opts so = {0};
        so.data = o_sensitivity;
        so.labels = o_labels;
        so.levels = levels;
        so.n_levels = n_levels;
        so.samples = o_samples;
        so.batch = o_calib_batch;
        so.threads = (int)o_threads;
        so.base = po;
        so.base.filter = filt;
        so.progress = on_progress;
        so.progress_ctx = &pscan;
        pare_status st = pare_prune_sensitivity(m, &so, &sens, &err);
        cli_progress_stop(&pscan.bar);
        if (st) {
            rc = cli_fail(shown, &err);
            goto done;
        }
        have_sens = true;
        if (o_max_drop >= 0) {
            if (o_criterion >= 1) {
                so.base.criterion = (pare_prune_criterion)(o_criterion + 1);
                so.base.calib.path = o_calibrate;
                so.base.calib.samples = o_calib_samples;
                so.base.calib.batch = o_calib_batch;
                so.base.calib.threads = (int)o_threads;
            }
            st = pare_prune_choose(m, &so, &sens, o_max_drop, &chosen, &n_chosen, &chosen_drop,
                                   &err);
            if (st) {
                rc = cli_fail(shown, &err);
                goto done;
            }
        }
    }

    /* 3. structured channels */
    if (o_structured >= 0) {
        pare_channel_opts co = PARE_CHANNEL_OPTS_INIT;
        co.ratio = isnan(o_ratio) ? 0 : o_ratio;
        co.layer_ratios = o_layer_ratio.items;
        co.n_layer_ratios = o_layer_ratio.n;
        co.norm = o_norm == 1 ? PARE_NORM_L2 : PARE_NORM_L1;
        co.filter = filt;
        co.bn_recalibrate = o_bn_recal;
        co.calib.samples = o_calib_samples;
        co.calib.batch = o_calib_batch;
        co.calib.threads = (int)o_threads;
        co.calib.seed = (uint64_t)o_seed;
        co.channel_multiple = o_channel_multiple;
        pare_status st = pare_prune_channels(m, &co, &rep, &err);
        if (st) {
            rc = st == PARE_ERR_ARG ? cli_usage_error("%s: %s", shown, err.msg)
                                    : cli_fail(shown, &err);
            goto done;
        }
    }

    /* 4. weights */
    if (!isnan(o_sparsity) || o_pattern || chosen) {
        po.sparsity = isnan(o_sparsity) ? 0 : o_sparsity;
        po.per_layer = o_per_layer;
        po.criterion = o_criterion >= 0 ? (pare_prune_criterion)(o_criterion + 1)
                                        : PARE_PRUNE_MAGNITUDE;
        po.calib.path = o_calibrate;
        po.calib.samples = o_calib_samples;
        po.calib.batch = o_calib_batch;
        po.calib.seed = (uint64_t)o_seed;
        po.calib.threads = (int)o_threads;
        po.calib.progress = on_progress;
        po.calib.progress_ctx = &pcal;
        po.filter = filt;
        po.damp = o_damp;
        po.sgpt_block = (int)o_sgpt_block;
        if (chosen) {
            po.layers = chosen;
            po.n_layers = n_chosen;
            po.per_layer = true;
        }
        pare_status st = pare_prune_weights(m, &po, &rep, &err);
        cli_progress_stop(&pcal.bar);
        if (st) {
            rc = st == PARE_ERR_ARG ? cli_usage_error("%s: %s", shown, err.msg)
                                    : cli_fail(shown, &err);
            goto done;
        }
    }

    /* 5. what pruning left unused */
    if (!o_cleanup_only && !o_no_dead && pare_opt_remove_dead(m, NULL, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    if (o_sparse_format == 1 && store_coo(m, &rep, shown, &err))
        goto done;

    /* the result must be a valid model */
    pare_problems probs = {0};
    if (pare_model_validate(m, &probs, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    if (probs.n) {
        cli_error(shown, "the pruned model is invalid (%zu problem%s; nothing written): %s: %s",
                  probs.n, probs.n == 1 ? "" : "s", probs.items[0].where, probs.items[0].what);
        pare_problems_release(&probs);
        goto done;
    }
    pare_problems_release(&probs);
    pare_prune_count_params(m, &rep.params_after, &rep.nonzero_after);
    if (pare_prune_model_sizes(m, 6, &rep.bytes_after, &rep.gzip_after, &err)) {
        rc = cli_fail(shown, &err);
        goto done;
    }
    if (!rep.method && !(rep.method = strdup(o_cleanup_only ? "cleanup only" : "none"))) {
        cli_error(NULL, "out of memory");
        goto done;
    }
    rep.seconds = pare_now() - t0;

    if (o_report) {
        if (cli_output_open(&repf, o_report, 0, &err)) {
            rc = cli_fail(o_report, &err);
            goto done;
        }
        rep_open = true;
    }
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.gzip = !is_stdout(o_output) && ends_with(o_output, ".gz");
    if (o_external != NOT_GIVEN_SIZE)
        so.external_threshold = o_external > INT64_MAX ? INT64_MAX : (int64_t)o_external;
    else if (!is_stdout(o_output) && input_external)
        so.external_threshold = 1024;
    if (pare_model_save(m, is_stdout(o_output) ? "-" : o_output, &so, &err)) {
        rc = cli_fail(cli_display_name(o_output), &err);
        goto done;
    }

    FILE *out = rep_open ? repf.fp : is_stdout(o_output) ? stderr : stdout;
    if (o_json) {
        if (pare_json_new(PARE_JSON_PRETTY, &j, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        pare_json_begin_object(j);
        pare_json_kv_string(j, "schema", "pare-prune/1");
        pare_json_kv_string(j, "model", shown);
        pare_json_kv_string(j, "output", is_stdout(o_output) ? "-" : o_output);
        pare_json_key(j, "prune");
        pare_prune_report_json(&rep, j);
        if (have_orep) {
            pare_json_key(j, "cleanup");
            pare_json_begin_object_flat(j);
            pare_json_kv_uint(j, "nodes_before", orep.nodes_before);
            pare_json_kv_uint(j, "nodes_after", orep.nodes_after);
            pare_json_kv_uint(j, "initializers_before", orep.inits_before);
            pare_json_kv_uint(j, "initializers_after", orep.inits_after);
            pare_json_end_object(j);
        }
        if (have_sens) {
            pare_json_key(j, "sensitivity");
            pare_sensitivity_json(&sens, j);
        }
        if (chosen) {
            pare_json_key(j, "chosen");
            pare_json_begin_object(j);
            pare_json_kv_double(j, "max_drop", o_max_drop);
            pare_json_kv_double(j, "drop", chosen_drop);
            pare_json_key(j, "layers");
            pare_json_begin_array(j);
            for (size_t i = 0; i < n_chosen; i++) {
                pare_json_begin_object_flat(j);
                pare_json_kv_string(j, "node", chosen[i].node);
                pare_json_kv_double(j, "sparsity", chosen[i].sparsity);
                pare_json_end_object(j);
            }
            pare_json_end_array(j);
            pare_json_end_object(j);
        }
        pare_json_kv_double(j, "seconds", floor(rep.seconds * 1000 + 0.5) / 1000);
        pare_json_end_object(j);
        const char *jt;
        size_t len;
        if (pare_json_finish(j, &jt, &len, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        fwrite(jt, 1, len, out);
    } else if (rep_open || cli_verbosity() >= 0) {
        if (have_sens) {
            if (pare_sensitivity_text(&sens, &stext, &err)) {
                rc = cli_fail(NULL, &err);
                goto done;
            }
            fprintf(out, "sensitivity of '%s' on %s (%lld samples):\n%s", sens.output,
                    o_sensitivity, (long long)sens.samples, stext);
            if (chosen) {
                fprintf(out, "chosen for a drop of at most %g (measured %.4g):", o_max_drop,
                        chosen_drop);
                for (size_t i = 0; i < n_chosen; i++)
                    fprintf(out, " %s=%g", chosen[i].node, chosen[i].sparsity);
                fputc('\n', out);
            }
        }
        if (have_orep)
            fprintf(out, "cleanup: %zu -> %zu nodes, %zu -> %zu initializers\n",
                    orep.nodes_before, orep.nodes_after, orep.inits_before, orep.inits_after);
        if (pare_prune_report_text(&rep, &text, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        fputs(text, out);
    }
    if (rep_open) {
        rep_open = false;
        if (cli_output_commit(&repf, &err)) {
            rc = cli_fail(o_report, &err);
            goto done;
        }
    } else if (out == stdout && fflush(stdout)) {
        cli_error(NULL, "cannot write the report: %s", strerror(errno));
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (rep_open)
        cli_output_abort(&repf);
    free(text);
    free(stext);
    pare_json_free(j);
    if (have_orep)
        pare_opt_report_release(&orep);
    free(chosen);
    if (have_sens)
        pare_sensitivity_release(&sens);
    free(levels);
    pare_prune_report_release(&rep);
    pare_model_free(m);
    cli_names_release(&excl_nodes);
    cli_names_release(&excl_ops);
    cli_names_release(&outs);
    cli_names_release(&ins);
    cli_list_release(&o_exclude_nodes);
    cli_list_release(&o_exclude_op_types);
    cli_list_release(&o_layer_ratio);
    cli_list_release(&o_outputs);
    cli_list_release(&o_inputs);
    cli_args_release(&args);
    free(av);
    return rc;
}
