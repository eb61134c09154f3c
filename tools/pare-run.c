/* pare-run: runs a model on the executor (CPU or CUDA); measures speed,
 * compares a candidate with its reference (or the model on another device),
 * and gates CI on accuracy, speed and size. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/ir.h"
#include "pare/model.h"
#include "pare/report.h"
#include "pare/stats.h"

/* ---- options ---- */

static const char *opt_inputs, *opt_reference, *opt_labels, *opt_save, *opt_batch_sweep;
static const char *opt_device = "cpu";
static cli_list opt_shapes;
static int64_t opt_seed = 0, opt_batch = 1, opt_warmup = 5, opt_iterations = 0, opt_threads = 0;
static int64_t opt_samples = 0, opt_concurrency = 0, opt_max_batch = 8, opt_max_delay_us = 1000;
static int64_t opt_gpu = 0;
static bool opt_tf32;
static int opt_cuda_graph = 0;         /* index into cuda_graph_names */
static int opt_reference_device = -1;  /* index into device_names; -1: not given */
static const char *const cuda_graph_names[] = {"auto", "on", "off", NULL};
static const char *const conv_algo_names[] = {"search", "heuristic", NULL};
static int opt_conv_algo = 0;          /* index into conv_algo_names */
static const char *const device_names[] = {"cpu", "cuda", "auto", NULL};
static double opt_duration = 0;
static bool opt_json, opt_per_tensor, opt_plan, opt_profile;
static int64_t opt_profile_runs = 10;
static double opt_atol = -1, opt_rtol = -1, opt_min_cosine = -2, opt_min_top1 = -1;
static double opt_max_drop = -1, opt_min_speedup = -1, opt_max_p99 = -1, opt_max_size_ratio = -1;
static double opt_tensor_min_cosine = 0.99;
static uint64_t opt_max_decompressed = 0;

static const cli_option options[] = {
    CLI_GROUP("Inputs"),
    CLI_STRING('i', "inputs", &opt_inputs, "DATA",
               "inputs: .npz (arrays named after the inputs, samples on axis 0), a folder of "
               ".npz files, or a test_data_set folder; random inputs when absent"),
    CLI_LIST(0, "shape", &opt_shapes, "NAME=DIMS",
             "shape of an input for random data, e.g. input=1x3x224x224"),
    CLI_INT(0, "seed", &opt_seed, "N", 0, 9007199254740991.0, "seed of the random inputs (0)"),
    CLI_INT('b', "batch", &opt_batch, "N", 1, 1e9,
            "samples per run: the first symbolic dim of each input (1)"),
    CLI_INT(0, "samples", &opt_samples, "N", 0, 1e15,
            "use at most N samples of DATA for accuracy (all)"),
    CLI_GROUP("Speed"),
    CLI_INT(0, "warmup", &opt_warmup, "N", 0, 1e9, "untimed runs first (5)"),
    CLI_INT('n', "iterations", &opt_iterations, "N", 0, 1e12, "timed runs (default: --duration)"),
    CLI_DOUBLE(0, "duration", &opt_duration, "S", 0, 1e6,
               "time the runs for S seconds (2 when neither this nor --iterations)"),
    CLI_INT('t', "threads", &opt_threads, "N", 0, 4096, "threads (0: all cores)"),
    CLI_STRING(0, "batch-sweep", &opt_batch_sweep, "LIST",
               "latency and throughput at each batch size, e.g. 1,2,4,8"),
    CLI_INT(0, "concurrency", &opt_concurrency, "C", 0, 1024,
            "simulate C clients sending single-sample requests to a dynamic batcher"),
    CLI_INT(0, "max-batch", &opt_max_batch, "B", 1, 1e6,
            "dynamic batcher: merge up to B requests (8)"),
    CLI_INT(0, "max-delay-us", &opt_max_delay_us, "D", 0, 1e9,
            "dynamic batcher: wait at most D microseconds for more requests (1000)"),
    CLI_STRING(0, "device", &opt_device, "DEV", "cpu, cuda or auto (cpu)"),
    CLI_INT(0, "gpu", &opt_gpu, "N", 0, 1024, "GPU index for --device cuda (0)"),
    CLI_FLAG(0, "tf32", &opt_tf32, "cuda: let float32 MatMul, Gemm and Conv use TF32 tensor cores"),
    CLI_CHOICE(0, "cuda-graph", &opt_cuda_graph, "MODE", cuda_graph_names,
               "cuda: capture and replay a CUDA graph (auto)"),
    CLI_CHOICE(0, "conv-algo", &opt_conv_algo, "HOW", conv_algo_names,
               "cuda: choose each Conv's cuDNN algorithm by timing them in the first run "
               "(search) or by cuDNN's heuristics (heuristic) (search)"),
    CLI_FLAG(0, "plan", &opt_plan, "print which backend runs each node, then exit"),
    CLI_FLAG(0, "profile", &opt_profile,
             "after the timing, time each node in a session of its own (the device "
             "synchronised around each node, no CUDA graph): per op type and the slowest nodes"),
    CLI_INT(0, "profile-runs", &opt_profile_runs, "N", 1, 1e9,
            "--profile: profiled runs after one untimed run (10)"),
    CLI_GROUP("Accuracy"),
    CLI_STRING('r', "reference", &opt_reference, "MODEL",
               "compare with this model (the original) on the same inputs"),
    CLI_CHOICE(0, "reference-device", &opt_reference_device, "DEV", device_names,
               "run the reference on DEV; without --reference the reference is MODEL "
               "itself on DEV"),
    CLI_STRING(0, "labels", &opt_labels, "FILE",
               "labels (.npy, or .npz with one array) for accuracy against the truth"),
    CLI_FLAG(0, "per-tensor", &opt_per_tensor,
             "compare every intermediate tensor both models share by name and name the first "
             "that diverges"),
    CLI_DOUBLE(0, "tensor-min-cosine", &opt_tensor_min_cosine, "X", -1, 1,
               "--per-tensor: a tensor diverges below this cosine (0.99)"),
    CLI_STRING(0, "save-outputs", &opt_save, "FILE.npz", "write the outputs to FILE.npz"),
    CLI_GROUP("Gates (exit 3 when one fails)"),
    CLI_DOUBLE(0, "atol", &opt_atol, "X", 0, 1e300,
               "every element within atol + rtol*|reference| (with --rtol, default 0)"),
    CLI_DOUBLE(0, "rtol", &opt_rtol, "X", 0, 1e300, "relative tolerance of the --atol gate"),
    CLI_DOUBLE(0, "min-cosine", &opt_min_cosine, "X", -1, 1, "cosine similarity of each output"),
    CLI_DOUBLE(0, "min-top1-agreement", &opt_min_top1, "X", 0, 1,
               "share of samples whose top-1 matches the reference's"),
    CLI_DOUBLE(0, "max-accuracy-drop", &opt_max_drop, "X", 0, 1,
               "accuracy drop against --labels (without labels: 1 - top-1 agreement)"),
    CLI_DOUBLE(0, "min-speedup", &opt_min_speedup, "X", 0, 1e9,
               "reference p50 latency / candidate p50 latency"),
    CLI_DOUBLE(0, "max-p99-ms", &opt_max_p99, "MS", 0, 1e12, "p99 latency of the model"),
    CLI_DOUBLE(0, "max-size-ratio", &opt_max_size_ratio, "X", 0, 1e9,
               "file size of the model / file size of the reference"),
    CLI_GROUP("Output"),
    CLI_FLAG(0, "json", &opt_json, "print the report as JSON (schema pare-run/1)"),
    CLI_SIZE(0, "max-decompressed", &opt_max_decompressed, "BYTES",
             "largest decompressed size of a gzip model (2G)"),
    CLI_END(),
};

static const cli_program prog = {
    .name = "pare-run",
    .usage = "[OPTIONS] MODEL\n--reference ORIGINAL [OPTIONS] CANDIDATE",
    .summary = "Run an ONNX model on the CPU or a CUDA GPU: latency and throughput, accuracy "
               "against a reference model (or the model on the CPU), and gates for CI (exit 3 "
               "when one fails).",
    .footer = "Exit status: 0 done, 1 bad input or failure, 2 bad usage, 3 a gate failed.",
    .options = options,
    .args_name = "MODEL",
    .min_args = 1,
    .max_args = 1,
};

/* ---- helpers ---- */

typedef struct runner {
    const char *path;
    pare_model *m;
    pare_session *s;
    pare_session_opts so; /* the options s was made with */
    uint64_t file_size;
    const char *device; /* the device that runs it: "cpu" or "cuda" */
    char why[PARE_ERROR_MSG_MAX + 64]; /* --device auto: why this device and not the other */
} runner;

/* Loads path and makes its session on device (cpu, cuda or auto). auto tries
 * CUDA and takes the CPU when CUDA is not usable (PARE_ERR_UNSUPPORTED: a
 * build without it, no driver, no GPU), keeping the reason for the report. */
static int open_runner(runner *r, const char *path, const char *device, pare_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = opt_max_decompressed;
    if (pare_model_load(path, &lo, &r->m, err))
        return 1;
    r->file_size = pare_model_file_size(r->m);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = (int)opt_threads;
    so.gpu = (int)opt_gpu;
    so.tf32 = opt_tf32;
    so.cuda_graph = opt_cuda_graph == 1 ? 1 : opt_cuda_graph == 2 ? 0 : -1;
    so.cuda_conv_algo = opt_conv_algo;
    if (strcmp(device, "auto") == 0) {
        so.device = "cuda";
        pare_error e;
        pare_status st = pare_session_new(r->m, &so, &r->s, &e);
        if (st == PARE_OK) {
            r->so = so;
            r->device = "cuda";
            snprintf(r->why, sizeof r->why,
                     "--device auto: GPU %d is usable; the CPU runs only the nodes CUDA cannot",
                     (int)opt_gpu);
            return 0;
        }
        if (st != PARE_ERR_UNSUPPORTED) {
            *err = e;
            return 1;
        }
        snprintf(r->why, sizeof r->why, "--device auto: CUDA is not usable: %s", e.msg);
        device = "cpu";
    }
    so.device = device;
    r->device = strcmp(device, "cuda") == 0 ? "cuda" : "cpu";
    if (strcmp(r->device, "cpu") == 0) {
        so.cuda_graph = -1; /* the CUDA options mean nothing on the CPU */
        so.tf32 = false;
    }
    r->so = so;
    if (pare_session_new(r->m, &so, &r->s, err))
        return 1;
    return 0;
}

static void close_runner(runner *r)
{
    pare_session_free(r->s);
    pare_model_free(r->m);
}

/* the dims of input v for random data: --shape, else the file's dims with the
 * first symbolic dim = batch and the others 1 */
static int input_dims(const pare_value *v, int64_t batch, int64_t *dims, int *rank, char *why,
                      size_t whysz)
{
    for (size_t i = 0; i < opt_shapes.n; i++) {
        char *name = NULL;
        int64_t d[PARE_MAX_RANK];
        int r;
        if (!cli_parse_named_dims(opt_shapes.items[i], &name, d, &r, why, whysz))
            return -1;
        bool match = strcmp(name, v->name) == 0;
        free(name);
        if (match) {
            memcpy(dims, d, (size_t)r * sizeof *d);
            *rank = r;
            return 0;
        }
    }
    if (v->shape.rank < 0) {
        snprintf(why, whysz, "input '%s' has no shape in the model: give it with --shape",
                 v->name);
        return -1;
    }
    bool used_batch = false;
    for (int d = 0; d < v->shape.rank; d++) {
        if (v->shape.dims[d].value >= 0) {
            dims[d] = v->shape.dims[d].value;
        } else {
            dims[d] = used_batch ? 1 : batch;
            used_batch = true;
        }
    }
    *rank = v->shape.rank;
    return 0;
}

static int random_inputs(pare_session *s, int64_t batch, uint64_t seed, pare_tensor ***out,
                         pare_error *err)
{
    size_t n = pare_session_input_count(s);
    pare_tensor **ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const pare_value *v = pare_session_input(s, i);
        int64_t dims[PARE_MAX_RANK];
        int rank;
        char why[256];
        if (input_dims(v, batch, dims, &rank, why, sizeof why)) {
            pare_error_set(err, PARE_ERR_ARG, "%s", why);
            pare_tensors_free(ts, n);
            return 1;
        }
        if (pare_tensor_random(v->name, v->dtype ? v->dtype : PARE_DT_FLOAT, rank, dims,
                               seed + i * 7919, &ts[i], err)) {
            pare_tensors_free(ts, n);
            return 1;
        }
    }
    *out = ts;
    return 0;
}

/* Selects the dataset arrays that feed the model (by name; by position for
 * unnamed .pb tensors). Returns the count of model inputs bound. */
static int bind_dataset(pare_dataset *ds, pare_session *s, int *map, pare_error *err)
{
    size_t n = pare_session_input_count(s), na = pare_dataset_num_arrays(ds);
    for (size_t i = 0; i < n; i++) {
        map[i] = -1;
        const pare_value *v = pare_session_input(s, i);
        for (size_t a = 0; a < na; a++) {
            const pare_dataset_array *arr = pare_dataset_array_at(ds, a);
            if (arr->name && strcmp(arr->name, v->name) == 0)
                map[i] = (int)a;
        }
        if (map[i] < 0 && i < na && !pare_dataset_array_at(ds, i)->name)
            map[i] = (int)i;
        bool pb = pare_dataset_get_kind(ds) == PARE_DATASET_PB_SET ||
                  pare_dataset_get_kind(ds) == PARE_DATASET_PB_SETS;
        if (map[i] < 0 && pb && na == n) {
            /* .pb tensors named otherwise than the inputs: by position */
            map[i] = (int)i;
        }
        if (map[i] < 0) {
            pare_error_set(err, PARE_ERR_ARG, "the data has no array for input '%s'; the model "
                           "expects %s", v->name, pare_session_signature(s));
            return 1;
        }
    }
    return 0;
}

/* The model's input tensors from a dataset batch (borrowed pointers). */
static pare_tensor **pick(pare_tensor **batch, const int *map, size_t n)
{
    pare_tensor **ins = calloc(n ? n : 1, sizeof *ins);
    if (!ins)
        return NULL;
    pare_error err;
    for (size_t i = 0; i < n; i++) {
        ins[i] = batch[map[i]];
        /* bound by position: the session's input order */
        pare_tensor_set_name(ins[i], NULL, &err);
    }
    return ins;
}

/* ---- speed ---- */

typedef struct speed {
    pare_latency_summary lat;   /* end to end: inputs in, outputs back on the host */
    double throughput; /* samples per second */
    int64_t batch;
    size_t iterations;
    /* on a device (pare_session_run_stats of each timed run) */
    bool on_device;
    pare_latency_summary compute; /* device time of the kernels of a run */
    double h2d_ms, d2h_ms;        /* mean per run */
    size_t graph_replays;         /* runs that replayed a CUDA graph */
    uint64_t device_mem_peak, device_arena_bytes;
    size_t nodes_device, nodes_cpu;
} speed;

static int measure(pare_session *s, pare_tensor **ins, size_t n_in, int64_t batch, speed *out,
                   pare_error *err)
{
    pare_latency lat = {0}, dev = {0};
    pare_tensor **outs;
    size_t n_outs;
    double h2d = 0, d2h = 0;
    memset(out, 0, sizeof *out);
    for (int64_t i = 0; i < opt_warmup; i++) {
        if (pare_session_run(s, ins, n_in, &outs, &n_outs, err))
            return 1;
        pare_tensors_free(outs, n_outs);
    }
    double dur = opt_duration > 0 ? opt_duration : (opt_iterations ? 0 : 2.0);
    double start = pare_now(), total = 0;
    cli_progress *prog_bar = NULL;
    for (int64_t i = 0;; i++) {
        if (opt_iterations && i >= opt_iterations)
            break;
        if (!opt_iterations && pare_now() - start >= dur && i > 0)
            break;
        double t0 = pare_now();
        if (pare_session_run(s, ins, n_in, &outs, &n_outs, err)) {
            cli_progress_stop(&prog_bar);
            pare_latency_release(&lat);
            return 1;
        }
        double ms = (pare_now() - t0) * 1e3;
        total += ms;
        pare_tensors_free(outs, n_outs);
        pare_run_stats rs;
        pare_session_run_stats(s, &rs);
        out->on_device = rs.device && strcmp(rs.device, "cpu") != 0;
        h2d += rs.h2d_ms;
        d2h += rs.d2h_ms;
        out->graph_replays += rs.graph_replayed;
        if (pare_latency_add(&lat, ms, err) ||
            (out->on_device && pare_latency_add(&dev, rs.compute_ms, err))) {
            cli_progress_stop(&prog_bar);
            pare_latency_release(&lat);
            pare_latency_release(&dev);
            return 1;
        }
        if (!prog_bar && pare_now() - start > 1.0)
            prog_bar = cli_progress_start("timing", opt_iterations ? (uint64_t)opt_iterations
                                                                   : (uint64_t)(dur * 1000));
        if (prog_bar)
            cli_progress_update(prog_bar, opt_iterations ? (uint64_t)i + 1
                                                         : (uint64_t)((pare_now() - start) * 1000));
    }
    cli_progress_stop(&prog_bar);
    pare_latency_summarize(&lat, &out->lat);
    if (out->on_device)
        pare_latency_summarize(&dev, &out->compute);
    out->iterations = lat.n;
    out->batch = batch;
    out->throughput = total > 0 ? (double)batch * (double)lat.n / (total / 1e3) : 0;
    out->h2d_ms = lat.n ? h2d / (double)lat.n : 0;
    out->d2h_ms = lat.n ? d2h / (double)lat.n : 0;
    pare_run_stats rs;
    pare_session_run_stats(s, &rs);
    out->device_mem_peak = rs.device_mem_peak;
    out->device_arena_bytes = rs.device_arena_bytes;
    out->nodes_device = rs.nodes_device;
    out->nodes_cpu = rs.nodes_cpu;
    pare_latency_release(&lat);
    pare_latency_release(&dev);
    return 0;
}

/* ---- --profile ---- */

typedef struct op_row {
    const char *op;
    size_t nodes;
    double ms;
} op_row;

static int cmp_op_row(const void *a, const void *b)
{
    const op_row *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : strcmp(x->op, y->op);
}

static int cmp_prof(const void *a, const void *b)
{
    const pare_node_profile *x = *(const pare_node_profile *const *)a;
    const pare_node_profile *y = *(const pare_node_profile *const *)b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

/* Runs r's model opt_profile_runs times in a session made with
 * opts.profile (after one untimed run) and reports the time per op type
 * and the slowest nodes, per run. */
static int profile_report(runner *r, pare_tensor **ins, size_t n_in, pare_json *j, FILE *fp,
                          pare_error *err)
{
    pare_session_opts so = r->so;
    so.profile = true;
    pare_session *s;
    if (pare_session_new(r->m, &so, &s, err))
        return 1;
    pare_tensor **outs;
    size_t n_outs;
    for (int64_t i = 0; i <= opt_profile_runs; i++) {
        if (pare_session_run(s, ins, n_in, &outs, &n_outs, err)) {
            pare_session_free(s);
            return 1;
        }
        pare_tensors_free(outs, n_outs);
        if (i == 0)
            pare_session_profile_reset(s); /* first-run costs (planning, arena) apart */
    }
    const pare_node_profile *pf;
    size_t n = pare_session_profile(s, &pf);
    op_row *ops = calloc(n + 1, sizeof *ops);
    const pare_node_profile **by = calloc(n + 1, sizeof *by);
    if (!ops || !by) {
        free(ops);
        free(by);
        pare_session_free(s);
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return 1;
    }
    size_t n_ops = 0, n_by = 0;
    double total = 0, runs = (double)opt_profile_runs;
    for (size_t i = 0; i < n; i++) {
        const char *op = pf[i].node ? pf[i].node->op_type : "(copies)";
        total += pf[i].ms;
        if (pf[i].fused_into)
            continue;
        size_t k = 0;
        while (k < n_ops && strcmp(ops[k].op, op) != 0)
            k++;
        if (k == n_ops)
            ops[n_ops++].op = op;
        ops[k].nodes += pf[i].node != NULL;
        ops[k].ms += pf[i].ms;
        if (pf[i].node)
            by[n_by++] = &pf[i];
    }
    qsort(ops, n_ops, sizeof *ops, cmp_op_row);
    qsort(by, n_by, sizeof *by, cmp_prof);
    char lbl[300];
    if (j) {
        pare_json_key(j, "profile");
        pare_json_begin_object(j);
        pare_json_kv_int(j, "runs", opt_profile_runs);
        pare_json_kv_double(j, "total_ms", total / runs);
        pare_json_key(j, "ops");
        pare_json_begin_array(j);
        for (size_t k = 0; k < n_ops; k++) {
            pare_json_begin_object(j);
            pare_json_kv_string(j, "op", ops[k].op);
            pare_json_kv_int(j, "nodes", (int64_t)ops[k].nodes);
            pare_json_kv_double(j, "ms", ops[k].ms / runs);
            pare_json_end_object(j);
        }
        pare_json_end_array(j);
        pare_json_key(j, "nodes"); /* run order */
        pare_json_begin_array(j);
        for (size_t i = 0; i < n; i++) {
            if (!pf[i].node)
                continue;
            pare_json_begin_object(j);
            pare_json_kv_string(j, "node", pare_node_label(pf[i].node, lbl, sizeof lbl));
            pare_json_kv_string(j, "op", pf[i].node->op_type);
            pare_json_kv_string(j, "backend", pf[i].backend);
            if (pf[i].fused_into)
                pare_json_kv_string(j, "fused_into",
                                    pare_node_label(pf[i].fused_into, lbl, sizeof lbl));
            else
                pare_json_kv_null(j, "fused_into");
            pare_json_kv_double(j, "ms", pf[i].ms / runs);
            pare_json_end_object(j);
        }
        pare_json_end_array(j);
        pare_json_end_object(j);
    } else {
        fprintf(fp, "profile (%lld runs, each node timed alone%s; per run %.3f ms)\n",
                (long long)opt_profile_runs,
                strcmp(r->device, "cpu") ? ", the device synchronised around it" : "",
                total / runs);
        fprintf(fp, "  %-24s %6s %10s %7s\n", "op", "nodes", "ms/run", "share");
        for (size_t k = 0; k < n_ops; k++)
            if (ops[k].nodes || ops[k].ms > 0)
                fprintf(fp, "  %-24s %6zu %10.3f %6.1f%%\n", ops[k].op, ops[k].nodes, ops[k].ms / runs,
                   total > 0 ? 100.0 * ops[k].ms / total : 0.0);
        size_t top = n_by < 15 ? n_by : 15;
        fprintf(fp, "  slowest nodes:\n  %-32s %-20s %-8s %10s %7s\n", "node", "op", "backend",
               "ms/run", "share");
        for (size_t k = 0; k < top; k++)
            fprintf(fp, "  %-32.32s %-20s %-8s %10.3f %6.1f%%\n",
                   pare_node_label(by[k]->node, lbl, sizeof lbl), by[k]->node->op_type,
                   by[k]->backend, by[k]->ms / runs, total > 0 ? 100.0 * by[k]->ms / total : 0.0);
    }
    free(ops);
    free(by);
    pare_session_free(s);
    return 0;
}

static void print_speed(const char *title, const speed *sp)
{
    printf("%s: %zu runs of batch %lld\n", title, sp->iterations, (long long)sp->batch);
    if (sp->on_device) {
        /* like trtexec: device compute, the copies, then end to end */
        const pare_latency_summary *c = &sp->compute;
        printf("  GPU compute ms min %.3f  mean %.3f  p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  "
               "max %.3f\n", c->min, c->mean, c->p50, c->p90, c->p95, c->p99, c->max);
        printf("  H2D ms       %.3f per run   D2H ms %.3f per run\n", sp->h2d_ms, sp->d2h_ms);
        printf("  CUDA graph   replayed in %zu of %zu runs\n", sp->graph_replays,
               sp->iterations);
    }
    printf("  latency ms   min %.3f  mean %.3f  p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f%s\n",
           sp->lat.min, sp->lat.mean, sp->lat.p50, sp->lat.p90, sp->lat.p95, sp->lat.p99,
           sp->lat.max, sp->on_device ? "  (end to end)" : "");
    printf("  throughput   %.2f samples/s\n", sp->throughput);
}

static void json_speed(pare_json *j, const char *key, const speed *sp)
{
    pare_json_key(j, key);
    pare_json_begin_object(j);
    pare_json_kv_int(j, "batch", sp->batch);
    pare_json_kv_int(j, "iterations", (int64_t)sp->iterations);
    pare_json_kv_double(j, "min_ms", sp->lat.min);
    pare_json_kv_double(j, "mean_ms", sp->lat.mean);
    pare_json_kv_double(j, "p50_ms", sp->lat.p50);
    pare_json_kv_double(j, "p90_ms", sp->lat.p90);
    pare_json_kv_double(j, "p95_ms", sp->lat.p95);
    pare_json_kv_double(j, "p99_ms", sp->lat.p99);
    pare_json_kv_double(j, "max_ms", sp->lat.max);
    pare_json_kv_double(j, "throughput", sp->throughput);
    /* device figures: null on the CPU */
    pare_json_key(j, "gpu_compute");
    if (sp->on_device) {
        const pare_latency_summary *c = &sp->compute;
        pare_json_begin_object(j);
        pare_json_kv_double(j, "min_ms", c->min);
        pare_json_kv_double(j, "mean_ms", c->mean);
        pare_json_kv_double(j, "p50_ms", c->p50);
        pare_json_kv_double(j, "p90_ms", c->p90);
        pare_json_kv_double(j, "p95_ms", c->p95);
        pare_json_kv_double(j, "p99_ms", c->p99);
        pare_json_kv_double(j, "max_ms", c->max);
        pare_json_end_object(j);
    } else {
        pare_json_null(j);
    }
    pare_json_kv_double(j, "h2d_ms", sp->h2d_ms);
    pare_json_kv_double(j, "d2h_ms", sp->d2h_ms);
    pare_json_kv_int(j, "graph_replays", (int64_t)sp->graph_replays);
    pare_json_end_object(j);
}

/* ---- dynamic batching ---- */

typedef struct request {
    pare_tensor **ins;       /* one sample */
    pare_tensor **outs;      /* filled by the batcher */
    size_t n_outs;
    double t_enqueue, t_done;
    int done;
    pare_status st;
    struct request *next;
} request;

typedef struct batcher {
    pthread_mutex_t mu;
    pthread_cond_t cv_req, cv_done;
    request *head, *tail;
    size_t queued;
    int stop;
    pare_session *s;
    size_t n_in;
    int64_t max_batch, max_delay_us;
    uint64_t batches, requests;
    pare_error err;
} batcher;

static pare_status concat_rows(pare_tensor *const *parts, size_t n, pare_tensor **out,
                               pare_error *err)
{
    const pare_tensor *f = parts[0];
    if (f->rank < 1 || f->dtype == PARE_DT_STRING || pare_dtype_bits(f->dtype) < 8)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "cannot batch this input");
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, f->dims, (size_t)f->rank * sizeof *dims);
    dims[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const pare_tensor *t = parts[i];
        if (t->dtype != f->dtype || t->rank != f->rank ||
            memcmp(t->dims + 1, f->dims + 1, (size_t)(f->rank - 1) * sizeof *dims) != 0) {
            char a[128], b[128];
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "cannot join rows of %s %s and %s %s",
                                  pare_dtype_name(f->dtype), pare_dims_str(f->rank, f->dims, a, 128),
                                  pare_dtype_name(t->dtype), pare_dims_str(t->rank, t->dims, b, 128));
        }
        if (__builtin_add_overflow(dims[0], t->dims[0], &dims[0]))
            return pare_error_set(err, PARE_ERR_LIMIT, "too many rows");
    }
    pare_status st = pare_tensor_new(f->name, f->dtype, f->rank, dims, out, err);
    if (st)
        return st;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy((uint8_t *)(*out)->data + off, parts[i]->data, parts[i]->nbytes);
        off += parts[i]->nbytes;
    }
    return PARE_OK;
}

static pare_status slice_rows(const pare_tensor *t, int64_t start, int64_t count, pare_tensor **out,
                              pare_error *err)
{
    /* an output without a batch axis (a scalar, or rows that are not the
     * requests, e.g. a reduction over axis 0) cannot be split */
    if (t->rank < 1 || start < 0 || count < 0 || t->dims[0] < start + count) {
        char shape[128];
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "dynamic batching needs a batch axis on every output ('%s' has "
                              "shape %s)",
                              t->name ? t->name : "?",
                              pare_dims_str(t->rank, t->dims, shape, sizeof shape));
    }
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
    dims[0] = count;
    pare_status st = pare_tensor_new(t->name, t->dtype, t->rank, dims, out, err);
    if (st)
        return st;
    size_t row = t->dims[0] ? t->nbytes / (size_t)t->dims[0] : 0;
    memcpy((*out)->data, (uint8_t *)t->data + row * (size_t)start, row * (size_t)count);
    return PARE_OK;
}

static void *batcher_main(void *arg)
{
    batcher *b = arg;
    request *batch[4096];
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!b->stop && !b->head)
            pthread_cond_wait(&b->cv_req, &b->mu);
        if (b->stop && !b->head) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        /* wait for more until max_batch or the first request's deadline */
        double deadline = b->head->t_enqueue + (double)b->max_delay_us * 1e-6;
        while (!b->stop && (int64_t)b->queued < b->max_batch && pare_now() < deadline) {
            pthread_mutex_unlock(&b->mu);
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&b->mu);
        }
        size_t n = 0;
        while (b->head && (int64_t)n < b->max_batch && n < 4096) {
            batch[n++] = b->head;
            b->head = b->head->next;
            b->queued--;
        }
        if (!b->head)
            b->tail = NULL;
        pthread_mutex_unlock(&b->mu);

        pare_status st = PARE_OK;
        pare_error err;
        pare_tensor **ins = calloc(b->n_in ? b->n_in : 1, sizeof *ins);
        pare_tensor **parts = calloc(n, sizeof *parts);
        pare_tensor **outs = NULL;
        size_t n_outs = 0;
        if (!ins || !parts)
            st = pare_error_set(&err, PARE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < b->n_in && !st; i++) {
            for (size_t r = 0; r < n; r++)
                parts[r] = batch[r]->ins[i];
            st = concat_rows(parts, n, &ins[i], &err);
        }
        if (!st)
            st = pare_session_run(b->s, ins, b->n_in, &outs, &n_outs, &err);
        for (size_t r = 0; r < n; r++) {
            request *q = batch[r];
            q->st = st;
            if (!st) {
                q->outs = calloc(n_outs ? n_outs : 1, sizeof *q->outs);
                q->n_outs = n_outs;
                if (!q->outs)
                    q->st = pare_error_set(&err, PARE_ERR_NOMEM, "out of memory");
                for (size_t o = 0; o < n_outs && !q->st; o++)
                    q->st = slice_rows(outs[o], (int64_t)r, 1, &q->outs[o], &err);
                if (q->st)
                    st = q->st; /* the remaining requests fail alike */
            }
        }
        if (st)
            b->err = err;
        pare_tensors_free(ins, b->n_in);
        pare_tensors_free(outs, n_outs);
        free(parts);
        pthread_mutex_lock(&b->mu);
        b->batches++;
        b->requests += n;
        double now = pare_now();
        for (size_t r = 0; r < n; r++) {
            batch[r]->t_done = now;
            batch[r]->done = 1;
        }
        pthread_cond_broadcast(&b->cv_done);
        pthread_mutex_unlock(&b->mu);
    }
    return NULL;
}

typedef struct client {
    batcher *b;
    pare_tensor **sample;
    int64_t n_requests;
    double end_time;
    pare_latency lat;
    int failed;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    pare_error err;
    for (int64_t i = 0; c->n_requests ? i < c->n_requests : pare_now() < c->end_time; i++) {
        request q;
        memset(&q, 0, sizeof q);
        q.ins = c->sample;
        q.t_enqueue = pare_now();
        batcher *b = c->b;
        pthread_mutex_lock(&b->mu);
        if (b->tail)
            b->tail->next = &q;
        else
            b->head = &q;
        b->tail = &q;
        b->queued++;
        pthread_cond_signal(&b->cv_req);
        while (!q.done)
            pthread_cond_wait(&b->cv_done, &b->mu);
        pthread_mutex_unlock(&b->mu);
        pare_tensors_free(q.outs, q.n_outs);
        if (q.st) {
            c->failed = 1;
            break;
        }
        pare_latency_add(&c->lat, (q.t_done - q.t_enqueue) * 1e3, &err);
    }
    return NULL;
}

typedef struct dynres {
    pare_latency_summary lat;
    double throughput, mean_batch;
} dynres;

static int simulate(pare_session *s, pare_tensor **sample, size_t n_in, int64_t max_batch,
                    dynres *res, pare_error *err)
{
    batcher b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv_req, NULL);
    pthread_cond_init(&b.cv_done, NULL);
    b.s = s;
    b.n_in = n_in;
    b.max_batch = max_batch;
    b.max_delay_us = max_batch > 1 ? opt_max_delay_us : 0;
    size_t nc = (size_t)opt_concurrency;
    client *cs = calloc(nc, sizeof *cs);
    pthread_t *th = calloc(nc, sizeof *th);
    pthread_t bt;
    double dur = opt_duration > 0 ? opt_duration : 2.0;
    double t0 = pare_now();
    pthread_create(&bt, NULL, batcher_main, &b);
    for (size_t i = 0; i < nc; i++) {
        cs[i].b = &b;
        cs[i].sample = sample;
        cs[i].n_requests = opt_iterations;
        cs[i].end_time = t0 + dur;
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    for (size_t i = 0; i < nc; i++)
        pthread_join(th[i], NULL);
    double elapsed = pare_now() - t0;
    pthread_mutex_lock(&b.mu);
    b.stop = 1;
    pthread_cond_broadcast(&b.cv_req);
    pthread_mutex_unlock(&b.mu);
    pthread_join(bt, NULL);
    pare_latency all = {0};
    int failed = 0;
    for (size_t i = 0; i < nc; i++) {
        for (size_t k = 0; k < cs[i].lat.n; k++)
            pare_latency_add(&all, cs[i].lat.ms[k], err);
        failed |= cs[i].failed;
        pare_latency_release(&cs[i].lat);
    }
    pare_latency_summarize(&all, &res->lat);
    res->throughput = elapsed > 0 ? (double)all.n / elapsed : 0;
    res->mean_batch = b.batches ? (double)b.requests / (double)b.batches : 0;
    pare_latency_release(&all);
    free(cs);
    free(th);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv_req);
    pthread_cond_destroy(&b.cv_done);
    if (failed) {
        *err = b.err;
        return 1;
    }
    return 0;
}

/* ---- per-tensor comparison ---- */

typedef struct stash {
    pare_tensor **ts;
    size_t n, cap;
    const pare_graph *other; /* only values the other graph also has are kept */
} stash;

static int stash_observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    stash *st = ctx;
    const pare_value *v = node->outputs[output];
    if (!v || !pare_graph_find_value(st->other, v->name))
        return 0;
    if (t->dtype == PARE_DT_STRING || !pare_dtype_valid(t->dtype))
        return 0;
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        pare_tensor **n = realloc(st->ts, nc * sizeof *n);
        if (!n)
            return 1;
        st->ts = n;
        st->cap = nc;
    }
    pare_error err;
    pare_tensor *c;
    if (pare_tensor_clone(t, &c, &err))
        return 1;
    pare_tensor_set_name(c, v->name, &err);
    st->ts[st->n++] = c;
    return 0;
}

typedef struct diverge {
    stash *ref;
    char first[512];
    char first_op[64];
    double first_cos, first_rel;
    size_t compared;
    pare_json *j;
    bool print;
} diverge;

static int compare_observer(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    diverge *d = ctx;
    const pare_value *v = node->outputs[output];
    if (!v)
        return 0;
    for (size_t i = 0; i < d->ref->n; i++) {
        pare_tensor *r = d->ref->ts[i];
        if (strcmp(r->name, v->name) != 0)
            continue;
        if (r->rank != t->rank || (r->rank && memcmp(r->dims, t->dims, (size_t)r->rank * 8)) ||
            t->dtype == PARE_DT_STRING)
            return 0;
        pare_compare c;
        pare_error err;
        pare_compare_init(&c, -1, -1);
        if (pare_compare_add(&c, t, r, NULL, &err))
            return 0;
        d->compared++;
        double cos = pare_compare_cosine(&c);
        if (d->print)
            printf("  %-40s %-16s cosine %.6f  rel L2 %.3e  max abs %.3e\n", v->name,
                   node->op_type, cos, pare_compare_rel_l2(&c), c.max_abs);
        if (!d->first[0] && (cos < opt_tensor_min_cosine || c.mismatched_nonfinite)) {
            snprintf(d->first, sizeof d->first, "%s", v->name);
            snprintf(d->first_op, sizeof d->first_op, "%s", node->op_type);
            d->first_cos = cos;
            d->first_rel = pare_compare_rel_l2(&c);
        }
        return 0;
    }
    return 0;
}

/* ---- gates ---- */

static int gate_failures;

static void gate_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void gate_fail(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fflush(stdout);
    cli_error(NULL, "gate failed: %s", buf);
    gate_failures++;
}

/* ---- accuracy mode ---- */

typedef struct outcmp {
    char *name;
    pare_compare c;
    bool has_classes;
} outcmp;

static pare_tensor *labels_slice(const pare_tensor *labels, int64_t start, int64_t count,
                                 pare_error *err)
{
    if (!labels)
        return NULL;
    if ((uint64_t)(start + count) > pare_tensor_numel(labels)) {
        pare_error_set(err, PARE_ERR_INVALID, "fewer labels (%llu) than samples",
                       (unsigned long long)pare_tensor_numel(labels));
        return NULL;
    }
    int64_t d[1] = {count};
    pare_tensor *t;
    if (pare_tensor_new(NULL, labels->dtype, 1, d, &t, err))
        return NULL;
    size_t es = pare_dtype_nbytes(labels->dtype, 1);
    memcpy(t->data, (uint8_t *)labels->data + (size_t)start * es, (size_t)count * es);
    return t;
}

static pare_status append_rows(pare_tensor **acc, const pare_tensor *t, pare_error *err)
{
    if (!*acc)
        return pare_tensor_clone(t, acc, err);
    pare_tensor *parts[2] = {*acc, (pare_tensor *)t};
    pare_tensor *joined;
    if (t->rank < 1 || t->rank != (*acc)->rank)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "outputs of different ranks");
    pare_status st = concat_rows(parts, 2, &joined, err);
    if (st)
        return st;
    pare_tensor_free(*acc);
    *acc = joined;
    return PARE_OK;
}

static int save_outputs(const char *path, pare_tensor **outs, size_t n, pare_error *err)
{
    pare_npz_writer *w;
    if (pare_npz_writer_open(path, false, &w, err))
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (!outs[i])
            continue;
        if (pare_npz_writer_add(w, outs[i]->name ? outs[i]->name : "output", outs[i], err)) {
            pare_npz_writer_abort(w);
            return 1;
        }
    }
    return pare_npz_writer_close(w, err) ? 1 : 0;
}

static const char *fmt_metric(double v, char *buf, size_t size, const char *fmt)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, size, fmt, v);
    return buf;
}

static void json_num(pare_json *j, const char *k, double v)
{
    if (isfinite(v))
        pare_json_kv_double(j, k, v);
    else
        pare_json_kv_null(j, k);
}

int main(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&prog, argc, argv, &args);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *path = args.argv[0];
    pare_error err;
    runner cand, ref;
    bool have_ref = false;
    pare_dataset *ds = NULL;
    pare_tensor *labels = NULL;
    pare_tensor **rand_in = NULL;
    outcmp *oc = NULL;
    size_t n_oc = 0;
    pare_tensor **saved = NULL;
    size_t n_saved = 0;
    pare_json *j = NULL;
    stash st_ref = {0};
    rc = CLI_EXIT_FAIL;
    memset(&cand, 0, sizeof cand);
    memset(&ref, 0, sizeof ref);

    if (strcmp(opt_device, "cpu") && strcmp(opt_device, "cuda") && strcmp(opt_device, "auto")) {
        rc = cli_usage_error("--device must be cpu, cuda or auto, not '%s'", opt_device);
        goto done;
    }
    /* the reference: --reference on --reference-device (else --device), or
     * without --reference the model itself on --reference-device */
    const char *ref_path = opt_reference ? opt_reference
                           : opt_reference_device >= 0 ? path : NULL;
    const char *ref_device =
        opt_reference_device >= 0 ? device_names[opt_reference_device] : opt_device;
    if ((opt_atol >= 0) != (opt_rtol >= 0)) {
        if (opt_atol < 0)
            opt_atol = 0;
        if (opt_rtol < 0)
            opt_rtol = 0;
    }
    if (!ref_path && (opt_min_cosine > -2 || opt_min_top1 >= 0 || opt_max_drop >= 0 ||
                      opt_min_speedup >= 0 || opt_max_size_ratio >= 0 || opt_atol >= 0 ||
                      opt_per_tensor)) {
        rc = cli_usage_error("accuracy, speed-up and size gates and --per-tensor need "
                             "--reference or --reference-device");
        goto done;
    }
    if (opt_labels && !opt_inputs) {
        rc = cli_usage_error("--labels needs --inputs");
        goto done;
    }
    for (size_t i = 0; i < opt_shapes.n; i++) {
        char *name = NULL, why[256];
        int64_t d[PARE_MAX_RANK];
        int r;
        if (!cli_parse_named_dims(opt_shapes.items[i], &name, d, &r, why, sizeof why)) {
            rc = cli_usage_error("--shape '%s': %s", opt_shapes.items[i], why);
            goto done;
        }
        free(name);
    }

    if (open_runner(&cand, path, opt_device, &err)) {
        rc = cli_fail(cli_display_name(path), &err);
        goto done;
    }
    if (opt_plan) {
        char *t = pare_session_plan_text(cand.s);
        if (t)
            fputs(t, stdout);
        free(t);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (ref_path) {
        if (open_runner(&ref, ref_path, ref_device, &err)) {
            rc = cli_fail(cli_display_name(ref_path), &err);
            goto done;
        }
        have_ref = true;
    }
    if (opt_inputs && pare_dataset_open(opt_inputs, &ds, &err)) {
        rc = cli_fail(opt_inputs, &err);
        goto done;
    }
    if (opt_labels && pare_tensor_read_file(opt_labels, &labels, &err)) {
        rc = cli_fail(opt_labels, &err);
        goto done;
    }
    if (opt_json) {
        if (pare_json_new(PARE_JSON_PRETTY, &j, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        pare_json_begin_object(j);
        pare_json_kv_string(j, "schema", "pare-run/1");
        pare_json_kv_string(j, "model", path);
        pare_json_kv_int(j, "file_bytes", (int64_t)cand.file_size);
        pare_json_kv_string(j, "device", cand.device);
        pare_json_kv_int(j, "threads", opt_threads ? opt_threads : pare_cpu_count());
        pare_json_kv_string(j, "device_requested", opt_device);
        if (cand.why[0])
            pare_json_kv_string(j, "device_note", cand.why);
        else
            pare_json_kv_null(j, "device_note");
        if (strcmp(cand.device, "cpu") != 0) {
            pare_json_kv_int(j, "gpu", opt_gpu);
        } else {
            pare_json_kv_null(j, "gpu");
        }
        pare_json_kv_bool(j, "tf32", opt_tf32);
        pare_json_kv_string(j, "cuda_graph", cuda_graph_names[opt_cuda_graph]);
        pare_json_kv_string(j, "conv_algo", conv_algo_names[opt_conv_algo]);
    } else if (strcmp(cand.device, "cpu") == 0) {
        printf("model: %s (%llu bytes), device cpu, %d threads\n", path,
               (unsigned long long)cand.file_size, opt_threads ? (int)opt_threads : pare_cpu_count());
        if (cand.why[0])
            printf("device: cpu (%s)\n", cand.why);
    } else {
        printf("model: %s (%llu bytes), device %s (GPU %d), %d threads\n", path,
               (unsigned long long)cand.file_size, cand.device, (int)opt_gpu,
               opt_threads ? (int)opt_threads : pare_cpu_count());
        printf("device: %s%s%s%s, tf32 %s, CUDA graph %s, conv algorithms by %s\n", cand.device,
               cand.why[0] ? " (" : "", cand.why, cand.why[0] ? ")" : "",
               opt_tf32 ? "on" : "off", cuda_graph_names[opt_cuda_graph],
               conv_algo_names[opt_conv_algo]);
    }

    size_t n_in = pare_session_input_count(cand.s);
    int *map = calloc(n_in ? n_in : 1, sizeof *map);
    int *map_ref = NULL;
    if (!map)
        goto done;
    if (ds && bind_dataset(ds, cand.s, map, &err)) {
        free(map);
        rc = cli_fail(opt_inputs, &err);
        goto done;
    }
    if (have_ref) {
        map_ref = calloc(pare_session_input_count(ref.s) + 1, sizeof *map_ref);
        if (ds && bind_dataset(ds, ref.s, map_ref, &err)) {
            free(map);
            free(map_ref);
            rc = cli_fail(opt_inputs, &err);
            goto done;
        }
    }

    /* the inputs of the speed runs: the first batch of the data, or random */
    pare_tensor **speed_batch = NULL;
    pare_tensor **speed_in = NULL, **speed_in_ref = NULL;
    int64_t speed_bs = opt_batch;
    if (ds) {
        int64_t count = pare_dataset_count(ds);
        bool pb = pare_dataset_get_kind(ds) == PARE_DATASET_PB_SET ||
                  pare_dataset_get_kind(ds) == PARE_DATASET_PB_SETS;
        int64_t bs = pb ? 1 : (count > 0 && count < opt_batch ? count : opt_batch);
        if (pare_dataset_read(ds, 0, bs, &speed_batch, &err)) {
            free(map);
            free(map_ref);
            rc = cli_fail(opt_inputs, &err);
            goto done;
        }
        speed_in = pick(speed_batch, map, n_in);
        if (have_ref)
            speed_in_ref = pick(speed_batch, map_ref, pare_session_input_count(ref.s));
        speed_bs = speed_in[0] && speed_in[0]->rank ? speed_in[0]->dims[0] : 1;
    } else {
        if (random_inputs(cand.s, opt_batch, (uint64_t)opt_seed, &rand_in, &err)) {
            free(map);
            free(map_ref);
            rc = cli_fail(path, &err);
            goto done;
        }
        speed_in = rand_in;
        speed_in_ref = rand_in;
    }

    /* ---- accuracy ---- */
    if (have_ref) {
        size_t n_out = pare_session_output_count(cand.s);
        oc = calloc(n_out, sizeof *oc);
        n_oc = n_out;
        for (size_t o = 0; o < n_out; o++) {
            oc[o].name = strdup(pare_session_output(cand.s, o)->name);
            pare_compare_init(&oc[o].c, opt_atol, opt_rtol);
        }
        int64_t start = 0;
        bool first = true;
        int64_t total = ds ? pare_dataset_count(ds) : 1;
        if (opt_samples > 0 && total > opt_samples)
            total = opt_samples;
        bool pb = ds && (pare_dataset_get_kind(ds) == PARE_DATASET_PB_SET ||
                         pare_dataset_get_kind(ds) == PARE_DATASET_PB_SETS);
        cli_progress *bar = NULL;
        double t_start = pare_now();
        int64_t label_pos = 0;
        while (start < total) {
            pare_tensor **batch = NULL, **ins = NULL, **ins_ref = NULL;
            int64_t bs = pb ? 1 : (opt_batch < total - start ? opt_batch : total - start);
            if (ds) {
                if (pare_dataset_read(ds, start, bs, &batch, &err)) {
                    rc = cli_fail(opt_inputs, &err);
                    goto acc_fail;
                }
                ins = pick(batch, map, n_in);
                ins_ref = pick(batch, map_ref, pare_session_input_count(ref.s));
            } else {
                ins = rand_in;
                ins_ref = rand_in;
            }
            if (first && opt_per_tensor) {
                st_ref.other = pare_model_graph(cand.m);
                pare_session_set_observer(ref.s, stash_observer, &st_ref);
            }
            pare_tensor **a = NULL, **b = NULL;
            size_t na = 0, nb = 0;
            if (pare_session_run(ref.s, ins_ref, pare_session_input_count(ref.s), &b, &nb, &err)) {
                rc = cli_fail(ref_path, &err);
                goto acc_batch_fail;
            }
            pare_session_set_observer(ref.s, NULL, NULL);
            diverge dv;
            memset(&dv, 0, sizeof dv);
            if (first && opt_per_tensor) {
                dv.ref = &st_ref;
                dv.print = !opt_json && cli_verbosity() > 0;
                pare_session_set_observer(cand.s, compare_observer, &dv);
            }
            if (pare_session_run(cand.s, ins, n_in, &a, &na, &err)) {
                rc = cli_fail(path, &err);
                goto acc_batch_fail;
            }
            pare_session_set_observer(cand.s, NULL, NULL);
            if (first && opt_per_tensor) {
                if (opt_json) {
                    pare_json_key(j, "per_tensor");
                    pare_json_begin_object(j);
                    pare_json_kv_int(j, "compared", (int64_t)dv.compared);
                    if (dv.first[0]) {
                        pare_json_kv_string(j, "first_divergent", dv.first);
                        pare_json_kv_string(j, "op", dv.first_op);
                        json_num(j, "cosine", dv.first_cos);
                        json_num(j, "rel_l2", dv.first_rel);
                    } else {
                        pare_json_kv_null(j, "first_divergent");
                    }
                    pare_json_end_object(j);
                } else if (dv.first[0]) {
                    printf("per-tensor: %zu shared tensors compared; first divergent: '%s' (%s), "
                           "cosine %.6f, rel L2 %.3e\n", dv.compared, dv.first, dv.first_op,
                           dv.first_cos, dv.first_rel);
                } else {
                    printf("per-tensor: %zu shared tensors compared; none below cosine %g\n",
                           dv.compared, opt_tensor_min_cosine);
                }
            }
            first = false;
            for (size_t o = 0; o < n_oc; o++) {
                pare_tensor *ta = a[o], *tb = NULL;
                for (size_t k = 0; k < nb; k++)
                    if (b[k]->name && strcmp(b[k]->name, oc[o].name) == 0)
                        tb = b[k];
                if (!tb && o < nb)
                    tb = b[o];
                if (!tb)
                    continue;
                int64_t samples_here = ta->rank >= 1 ? ta->dims[0] : 1;
                pare_tensor *lab = NULL;
                bool use_labels = labels && o == 0 && ta->rank == 2;
                if (use_labels) {
                    lab = labels_slice(labels, label_pos, samples_here, &err);
                    if (!lab) {
                        rc = cli_fail(opt_labels, &err);
                        pare_tensors_free(a, na);
                        pare_tensors_free(b, nb);
                        goto acc_batch_fail;
                    }
                }
                if (pare_compare_add(&oc[o].c, ta, tb, lab, &err)) {
                    pare_tensor_free(lab);
                    cli_error(path, "output '%s': %s", oc[o].name, err.msg);
                    pare_tensors_free(a, na);
                    pare_tensors_free(b, nb);
                    goto acc_batch_fail;
                }
                if (use_labels)
                    label_pos += samples_here;
                pare_tensor_free(lab);
            }
            if (opt_save) {
                if (!saved) {
                    saved = calloc(na, sizeof *saved);
                    n_saved = na;
                }
                for (size_t o = 0; o < na && o < n_saved; o++)
                    if (append_rows(&saved[o], a[o], &err)) {
                        rc = cli_fail(opt_save, &err);
                        pare_tensors_free(a, na);
                        pare_tensors_free(b, nb);
                        goto acc_batch_fail;
                    }
            }
            pare_tensors_free(a, na);
            pare_tensors_free(b, nb);
            if (ds) {
                pare_tensors_free(batch, pare_dataset_num_arrays(ds));
                free(ins);
                free(ins_ref);
            }
            start += bs;
            if (!bar && pare_now() - t_start > 1.0)
                bar = cli_progress_start("comparing", (uint64_t)total);
            if (bar)
                cli_progress_update(bar, (uint64_t)start);
            continue;
        acc_batch_fail:
            if (ds) {
                pare_tensors_free(batch, pare_dataset_num_arrays(ds));
                free(ins);
                free(ins_ref);
            }
        acc_fail:
            cli_progress_stop(&bar);
            free(map);
            free(map_ref);
            if (ds) {
                pare_tensors_free(speed_batch, pare_dataset_num_arrays(ds));
                free(speed_in);
                free(speed_in_ref);
            }
            goto done;
        }
        cli_progress_stop(&bar);
    }

    /* ---- speed ---- */
    speed sp_c, sp_r;
    memset(&sp_c, 0, sizeof sp_c);
    memset(&sp_r, 0, sizeof sp_r);
    bool speed_ok = true;
    if (measure(cand.s, speed_in, n_in, speed_bs, &sp_c, &err)) {
        rc = cli_fail(path, &err);
        speed_ok = false;
    } else if (have_ref &&
               measure(ref.s, speed_in_ref, pare_session_input_count(ref.s), speed_bs, &sp_r,
                       &err)) {
        rc = cli_fail(ref_path, &err);
        speed_ok = false;
    }
    /* --profile: JSON goes in the report here, text after the speed */
    char *prof_text = NULL;
    size_t prof_len = 0;
    FILE *prof_fp = NULL;
    if (speed_ok && opt_profile && !opt_json && !(prof_fp = open_memstream(&prof_text, &prof_len))) {
        pare_error_set(&err, PARE_ERR_NOMEM, "out of memory");
        rc = cli_fail(path, &err);
        speed_ok = false;
    }
    if (speed_ok && opt_profile &&
        profile_report(&cand, speed_in, n_in, opt_json ? j : NULL, prof_fp, &err)) {
        rc = cli_fail(path, &err);
        speed_ok = false;
    }
    if (prof_fp)
        fclose(prof_fp);
    /* outputs of a single run when no comparison collected them */
    if (speed_ok && opt_save && !saved) {
        if (pare_session_run(cand.s, speed_in, n_in, &saved, &n_saved, &err)) {
            rc = cli_fail(path, &err);
            speed_ok = false;
        }
    }
    if (ds) {
        pare_tensors_free(speed_batch, pare_dataset_num_arrays(ds));
        free(speed_in);
        free(speed_in_ref);
    }
    free(map_ref);
    if (!speed_ok) {
        free(map);
        free(prof_text);
        goto done;
    }
    free(map);
    uint64_t rss = pare_peak_rss();
    size_t arena = pare_session_arena_bytes(cand.s);
    if (opt_json) {
        json_speed(j, "speed", &sp_c);
        pare_json_kv_int(j, "peak_rss_bytes", (int64_t)rss);
        pare_json_kv_int(j, "arena_bytes", (int64_t)arena);
        pare_json_kv_int(j, "nodes_device", (int64_t)sp_c.nodes_device);
        pare_json_kv_int(j, "nodes_cpu", (int64_t)sp_c.nodes_cpu);
        pare_json_kv_int(j, "device_mem_peak_bytes", (int64_t)sp_c.device_mem_peak);
        pare_json_kv_int(j, "device_arena_bytes", (int64_t)sp_c.device_arena_bytes);
    } else {
        print_speed("speed", &sp_c);
        char b1[32], b2[32];
        printf("  peak RSS     %s   arena %s\n", cli_fmt_bytes(rss, b1, sizeof b1),
               cli_fmt_bytes(arena, b2, sizeof b2));
        if (strcmp(cand.device, "cpu") != 0) {
            printf("  GPU memory   peak %s   arena %s\n",
                   cli_fmt_bytes(sp_c.device_mem_peak, b1, sizeof b1),
                   cli_fmt_bytes(sp_c.device_arena_bytes, b2, sizeof b2));
            printf("  nodes        %zu on %s, %zu on the CPU\n", sp_c.nodes_device, cand.device,
                   sp_c.nodes_cpu);
        }
        if (prof_text)
            fputs(prof_text, stdout);
    }
    free(prof_text);

    /* ---- batch sweep ---- */
    if (opt_batch_sweep) {
        if (opt_json) {
            pare_json_key(j, "batch_sweep");
            pare_json_begin_array(j);
        } else {
            printf("batch sweep:\n  %8s %10s %10s %14s", "batch", "p50 ms", "p99 ms",
                   "samples/s");
            if (strcmp(cand.device, "cpu") != 0)
                printf(" %12s %10s %10s", "GPU p50 ms", "H2D ms", "D2H ms");
            printf("\n");
        }
        const char *p = opt_batch_sweep;
        while (*p) {
            char *end;
            long long b = strtoll(p, &end, 10);
            if (end == p || b < 1) {
                rc = cli_usage_error("--batch-sweep '%s': expected a list like 1,2,4,8",
                                     opt_batch_sweep);
                goto done;
            }
            pare_tensor **ins;
            if (random_inputs(cand.s, b, (uint64_t)opt_seed, &ins, &err)) {
                rc = cli_fail(path, &err);
                goto done;
            }
            speed sp;
            if (measure(cand.s, ins, n_in, b, &sp, &err)) {
                pare_tensors_free(ins, n_in);
                rc = cli_fail(path, &err);
                goto done;
            }
            pare_tensors_free(ins, n_in);
            if (opt_json) {
                pare_json_begin_object(j);
                pare_json_kv_int(j, "batch", b);
                pare_json_kv_double(j, "p50_ms", sp.lat.p50);
                pare_json_kv_double(j, "p99_ms", sp.lat.p99);
                pare_json_kv_double(j, "throughput", sp.throughput);
                if (sp.on_device)
                    pare_json_kv_double(j, "gpu_compute_p50_ms", sp.compute.p50);
                else
                    pare_json_kv_null(j, "gpu_compute_p50_ms");
                pare_json_kv_double(j, "h2d_ms", sp.h2d_ms);
                pare_json_kv_double(j, "d2h_ms", sp.d2h_ms);
                pare_json_end_object(j);
            } else {
                printf("  %8lld %10.3f %10.3f %14.2f", b, sp.lat.p50, sp.lat.p99, sp.throughput);
                if (strcmp(cand.device, "cpu") != 0)
                    printf(" %12.3f %10.3f %10.3f", sp.compute.p50, sp.h2d_ms, sp.d2h_ms);
                printf("\n");
            }
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') {
                rc = cli_usage_error("--batch-sweep '%s': expected a list like 1,2,4,8",
                                     opt_batch_sweep);
                goto done;
            }
        }
        if (opt_json)
            pare_json_end_array(j);
    }

    /* ---- dynamic batching ---- */
    if (opt_concurrency > 0) {
        pare_tensor **one;
        if (random_inputs(cand.s, 1, (uint64_t)opt_seed, &one, &err)) {
            rc = cli_fail(path, &err);
            goto done;
        }
        for (size_t i = 0; i < n_in; i++)
            if (one[i]->rank < 1) {
                pare_tensors_free(one, n_in);
                cli_error(path, "dynamic batching needs a batch axis on every input ('%s' is a "
                          "scalar)", pare_session_input(cand.s, i)->name);
                goto done;
            }
        dynres unb, bat;
        if (simulate(cand.s, one, n_in, 1, &unb, &err) ||
            simulate(cand.s, one, n_in, opt_max_batch, &bat, &err)) {
            pare_tensors_free(one, n_in);
            rc = cli_fail(path, &err);
            goto done;
        }
        pare_tensors_free(one, n_in);
        if (opt_json) {
            pare_json_key(j, "dynamic_batching");
            pare_json_begin_object(j);
            pare_json_kv_int(j, "concurrency", opt_concurrency);
            pare_json_kv_int(j, "max_batch", opt_max_batch);
            pare_json_kv_int(j, "max_delay_us", opt_max_delay_us);
            const dynres *rs[2] = {&unb, &bat};
            const char *names[2] = {"unbatched", "batched"};
            for (int k = 0; k < 2; k++) {
                pare_json_key(j, names[k]);
                pare_json_begin_object(j);
                pare_json_kv_double(j, "p50_ms", rs[k]->lat.p50);
                pare_json_kv_double(j, "p90_ms", rs[k]->lat.p90);
                pare_json_kv_double(j, "p99_ms", rs[k]->lat.p99);
                pare_json_kv_double(j, "max_ms", rs[k]->lat.max);
                pare_json_kv_double(j, "throughput", rs[k]->throughput);
                pare_json_kv_double(j, "mean_batch", rs[k]->mean_batch);
                pare_json_end_object(j);
            }
            pare_json_end_object(j);
        } else {
            printf("dynamic batching: %lld clients, max batch %lld, max delay %lld us\n",
                   (long long)opt_concurrency, (long long)opt_max_batch,
                   (long long)opt_max_delay_us);
            printf("  %-10s %10s %10s %10s %14s %10s\n", "", "p50 ms", "p90 ms", "p99 ms",
                   "requests/s", "mean batch");
            printf("  %-10s %10.3f %10.3f %10.3f %14.2f %10.2f\n", "unbatched", unb.lat.p50,
                   unb.lat.p90, unb.lat.p99, unb.throughput, unb.mean_batch);
            printf("  %-10s %10.3f %10.3f %10.3f %14.2f %10.2f\n", "batched", bat.lat.p50,
                   bat.lat.p90, bat.lat.p99, bat.throughput, bat.mean_batch);
        }
    }

    /* ---- accuracy report and gates ---- */
    double speedup = NAN, size_ratio = NAN;
    if (have_ref) {
        speedup = sp_c.lat.p50 > 0 ? sp_r.lat.p50 / sp_c.lat.p50 : NAN;
        size_ratio = ref.file_size ? (double)cand.file_size / (double)ref.file_size : NAN;
        char b[8][32];
        if (opt_json) {
            pare_json_kv_string(j, "reference", ref_path);
            pare_json_kv_string(j, "reference_device", ref.device);
            pare_json_kv_int(j, "reference_file_bytes", (int64_t)ref.file_size);
            json_speed(j, "reference_speed", &sp_r);
            json_num(j, "speedup", speedup);
            json_num(j, "size_ratio", size_ratio);
            pare_json_key(j, "outputs");
            pare_json_begin_array(j);
        } else {
            printf("reference: %s (%llu bytes), device %s%s%s%s\n", ref_path,
                   (unsigned long long)ref.file_size, ref.device, ref.why[0] ? " (" : "",
                   ref.why, ref.why[0] ? ")" : "");
            print_speed("reference speed", &sp_r);
            printf("speed-up %s x (p50), size ratio %s\n",
                   fmt_metric(speedup, b[0], 32, "%.3f"), fmt_metric(size_ratio, b[1], 32, "%.3f"));
            printf("%-24s %11s %11s %11s %10s %9s %7s %7s %9s %9s\n", "output", "max abs",
                   "mean abs", "rel L2", "cosine", "SNR dB", "top-1", "top-5", "nonfinite",
                   "accuracy");
        }
        for (size_t o = 0; o < n_oc; o++) {
            pare_compare *c = &oc[o].c;
            double acc_a = pare_compare_accuracy_a(c), acc_b = pare_compare_accuracy_b(c);
            if (opt_json) {
                pare_json_begin_object(j);
                pare_json_kv_string(j, "name", oc[o].name);
                pare_json_kv_int(j, "elements", (int64_t)c->n);
                json_num(j, "max_abs", c->max_abs);
                json_num(j, "mean_abs", pare_compare_mean_abs(c));
                json_num(j, "rel_l2", pare_compare_rel_l2(c));
                json_num(j, "cosine", pare_compare_cosine(c));
                json_num(j, "snr_db", pare_compare_snr_db(c));
                json_num(j, "top1_agreement", pare_compare_top1(c));
                json_num(j, "top5_agreement", pare_compare_top5(c));
                pare_json_kv_int(j, "nonfinite", (int64_t)c->nonfinite_a);
                pare_json_kv_int(j, "reference_nonfinite", (int64_t)c->nonfinite_b);
                json_num(j, "accuracy", acc_a);
                json_num(j, "reference_accuracy", acc_b);
                if (c->atol >= 0)
                    pare_json_kv_int(j, "out_of_tolerance", (int64_t)c->out_of_tol);
                pare_json_end_object(j);
            } else {
                char accs[64];
                if (isnan(acc_a))
                    snprintf(accs, sizeof accs, "-");
                else
                    snprintf(accs, sizeof accs, "%.4f/%.4f", acc_a, acc_b);
                printf("%-24s %11s %11s %11s %10s %9s %7s %7s %9llu %9s\n", oc[o].name,
                       fmt_metric(c->max_abs, b[0], 32, "%.3e"),
                       fmt_metric(pare_compare_mean_abs(c), b[1], 32, "%.3e"),
                       fmt_metric(pare_compare_rel_l2(c), b[2], 32, "%.3e"),
                       fmt_metric(pare_compare_cosine(c), b[3], 32, "%.6f"),
                       fmt_metric(pare_compare_snr_db(c), b[4], 32, "%.2f"),
                       fmt_metric(pare_compare_top1(c), b[5], 32, "%.4f"),
                       fmt_metric(pare_compare_top5(c), b[6], 32, "%.4f"),
                       (unsigned long long)(c->nonfinite_a + c->mismatched_nonfinite), accs);
            }
        }
        if (opt_json)
            pare_json_end_array(j);
        if (!opt_json && labels)
            printf("(accuracy: candidate/reference against %s)\n", opt_labels);
        /* gates */
        for (size_t o = 0; o < n_oc; o++) {
            pare_compare *c = &oc[o].c;
            if (opt_atol >= 0 && (c->out_of_tol || c->mismatched_nonfinite))
                gate_fail("output '%s': %llu elements outside atol %g + rtol %g (max abs error "
                          "%.3e)", oc[o].name,
                          (unsigned long long)(c->out_of_tol + c->mismatched_nonfinite), opt_atol,
                          opt_rtol, c->max_abs);
            if (opt_min_cosine > -2 && !(pare_compare_cosine(c) >= opt_min_cosine))
                gate_fail("output '%s': cosine %.6f < --min-cosine %g", oc[o].name,
                          pare_compare_cosine(c), opt_min_cosine);
            if (opt_min_top1 >= 0 && !isnan(pare_compare_top1(c)) &&
                pare_compare_top1(c) < opt_min_top1)
                gate_fail("output '%s': top-1 agreement %.4f < --min-top1-agreement %g",
                          oc[o].name, pare_compare_top1(c), opt_min_top1);
            if (opt_max_drop >= 0 && o == 0) {
                double drop = !isnan(pare_compare_accuracy_a(c))
                                  ? pare_compare_accuracy_b(c) - pare_compare_accuracy_a(c)
                                  : 1.0 - pare_compare_top1(c);
                if (!isnan(drop) && drop > opt_max_drop)
                    gate_fail("output '%s': accuracy drop %.4f > --max-accuracy-drop %g",
                              oc[o].name, drop, opt_max_drop);
            }
        }
        if (opt_min_speedup >= 0 && !(speedup >= opt_min_speedup))
            gate_fail("speed-up %.3f < --min-speedup %g", speedup, opt_min_speedup);
        if (opt_max_size_ratio >= 0 && !(size_ratio <= opt_max_size_ratio))
            gate_fail("size ratio %.3f > --max-size-ratio %g", size_ratio, opt_max_size_ratio);
    }
    if (opt_max_p99 >= 0 && sp_c.lat.p99 > opt_max_p99)
        gate_fail("p99 latency %.3f ms > --max-p99-ms %g", sp_c.lat.p99, opt_max_p99);

    if (opt_save && saved) {
        if (save_outputs(opt_save, saved, n_saved, &err)) {
            rc = cli_fail(opt_save, &err);
            goto done;
        }
    }
    if (opt_json) {
        pare_json_kv_int(j, "gates_failed", gate_failures);
        pare_json_end_object(j);
        const char *text;
        size_t len;
        if (pare_json_finish(j, &text, &len, &err)) {
            rc = cli_fail(NULL, &err);
            goto done;
        }
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    }
    rc = gate_failures ? CLI_EXIT_GATE : CLI_EXIT_OK;
done:
    pare_json_free(j);
    for (size_t o = 0; o < n_oc; o++)
        free(oc[o].name);
    free(oc);
    pare_tensors_free(saved, n_saved);
    pare_tensors_free(st_ref.ts, st_ref.n);
    if (rand_in)
        pare_tensors_free(rand_in, pare_session_input_count(cand.s));
    pare_tensor_free(labels);
    pare_dataset_close(ds);
    close_runner(&cand);
    if (have_ref || ref.m)
        close_runner(&ref);
    cli_list_release(&opt_shapes);
    cli_args_release(&args);
    return rc;
}
