/* pare/exec.h - running models.
 *
 *     pare_session *s;
 *     pare_session_opts so = PARE_SESSION_OPTS_INIT;   // all cores, CPU
 *     if (pare_session_new(model, &so, &s, &err)) ...
 *     pare_tensor **outs; size_t n_outs;
 *     if (pare_session_run(s, inputs, n_inputs, &outs, &n_outs, &err)) ...
 *     ... use outs[i] (named after the graph outputs) ...
 *     pare_tensors_free(outs, n_outs);
 *     pare_session_free(s);
 *
 * A session plans once per set of input shapes: a backend and a kernel are
 * chosen per node when the session is made, by (domain, op, opset, input
 * dtypes), with dtypes the file does not give filled in by shape inference
 * (pare/infer.h; inferred types are not saved). A node no backend supports
 * fails then, with the node, op, domain, opset and input dtypes named. On
 * the first run with new input shapes the session records every tensor's
 * size and lifetime and lays them out in one arena per backend by
 * liveness, which later runs with the same shapes reuse.
 * The model must outlive the session and must not change while it lives;
 * pare_session_new may fill in value types (inference), so do not make two
 * sessions of one model at the same time from different threads.
 */
#ifndef PARE_EXEC_H
#define PARE_EXEC_H

#include "pare/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_session pare_session;

typedef struct pare_session_opts {
    int threads;          /* 0: all cores */
    /* "cpu" (NULL: the default), "cuda" (PARE_ERR_UNSUPPORTED in a build
     * without it: "pare was built without CUDA"), "auto" (a usable device
     * backend, else the CPU). Nodes the device cannot run fall back to the
     * CPU one by one; pare_session_plan_text says which and why. */
    const char *device;
    int gpu;              /* device index for cuda */
    bool keep_all;        /* keep every intermediate alive (for observers that hold them) */
    bool tf32;            /* cuda: let float32 MatMul/Gemm/Conv use TF32 tensor cores */
    int cuda_graph;       /* cuda: -1 capture and replay a CUDA graph where shapes are
                           * static (default), 0 never, 1 always (error where it cannot) */
    /* Fusion (CPU plans, and device plans whose backend fuses: cuda, also
     * float16/bfloat16, each absorbed node on the conv's device): a float Conv absorbs the nodes after it whose
     * intermediates nothing else reads and that are not graph outputs: an
     * inference BatchNormalization with constant parameters (folded into a
     * copy of the weights, never into the model), a residual Add/Sum of the
     * same shape, then Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid or
     * HardSwish. The absorbed nodes are skipped (plan text: "Relu fused into
     * conv1"); results match the unfused run within float rounding. Runs
     * with an observer set run every node as it is. no_fusion (or keep_all,
     * or the environment variable PARE_NO_FUSION=1) turns it off.
     * QDQ fusion (CPU nodes): DequantizeLinear(x_q), DequantizeLinear(w_q)
     * -> Conv (1-D/2-D), MatMul or Gemm [-> Relu] -> QuantizeLinear, with
     * 8-bit activations, int8 weights with zero points 0, scalar x/y
     * parameters and constant weights, scales and bias, runs as one
     * integer kernel from x_q to y_q (plan text: "8-bit QDQ kernel");
     * the quantized outputs match the unfused run but for rare 1-step
     * differences where float rounding lands on the other side of a
     * rounding boundary. */
    bool no_fusion;
    /* Per-node timing for pare_session_profile: the device is synchronised
     * before each node and after each device node, so that each time is the
     * node's own, and no CUDA graph is captured. It slows the runs: for
     * finding where the time goes, not for latency figures. */
    bool profile;
    /* cuda: how Conv algorithms are chosen per shape: 0 by timing them
     * (cudnnFind, in the first run of each shape; the default, as
     * onnxruntime's EXHAUSTIVE and TensorRT's tactics), 1 by cuDNN's
     * heuristics (no timing runs: a faster first run) */
    int cuda_conv_algo;
} pare_session_opts;

#define PARE_SESSION_OPTS_INIT {0, NULL, 0, false, false, -1, false, false, 0}

pare_status pare_session_new(pare_model *m, const pare_session_opts *opts, pare_session **out,
                             pare_error *err);
void pare_session_free(pare_session *s);

/* Graph inputs that need data (initializers excluded), in order. */
size_t pare_session_input_count(const pare_session *s);
const pare_value *pare_session_input(const pare_session *s, size_t i);
size_t pare_session_output_count(const pare_session *s);
const pare_value *pare_session_output(const pare_session *s, size_t i);

/* Runs the model. inputs are matched by name (tensor->name) or, when a
 * tensor has no name, by position. Wrong names, dtypes or ranks fail with a
 * message listing the expected signature. On success *outputs is a
 * malloc'd array of *n_outputs tensors owned by the caller
 * (pare_tensors_free). */
pare_status pare_session_run(pare_session *s, pare_tensor *const *inputs, size_t n_inputs,
                             pare_tensor ***outputs, size_t *n_outputs, pare_error *err);

/* Called after each node of the main graph with each of its outputs; the
 * tensor is valid only during the call (copy it to keep it). Returning
 * nonzero stops the run with PARE_ERR_RUNTIME. */
typedef int (*pare_observer_fn)(void *ctx, const pare_node *node, size_t output,
                                const pare_tensor *t);
void pare_session_set_observer(pare_session *s, pare_observer_fn fn, void *ctx);

/* Figures of the last run, for reports like trtexec's. On the CPU the
 * device fields are zero. */
typedef struct pare_run_stats {
    const char *device;        /* the preferred backend of the plan: "cpu", "cuda" */
    size_t nodes_device;       /* nodes of the main graph placed on that device */
    size_t nodes_cpu;          /* nodes on the CPU (all of them for device "cpu") */
    double h2d_ms;             /* host->device copies of the last run (inputs, borders) */
    double d2h_ms;             /* device->host copies of the last run (outputs, borders) */
    double compute_ms;         /* device time from the first to the last queued kernel,
                                * measured with device events, less the copies to the
                                * device in between (as trtexec's GPU compute time; in
                                * a replayed CUDA graph, whose copies are inside it,
                                * less their time in the last run without one); 0 on
                                * the CPU */
    uint64_t device_mem_peak;  /* device bytes the session held at most: arena,
                                * uploaded weights, workspaces */
    uint64_t device_arena_bytes;
    bool graph_replayed;       /* the last run replayed a captured CUDA graph */
} pare_run_stats;
void pare_session_run_stats(const pare_session *s, pare_run_stats *out);

/* The per-node profile of a session made with opts.profile, summed over
 * the runs since it was made or last reset: one entry per node of the
 * main graph in run order, then one (node NULL) for the copies between the
 * CPU and the device. A node another absorbed (fusion) has fused_into set
 * and no time of its own. Returns the number of entries (0 without
 * opts.profile or before a run); *out stays valid until the session's
 * next run, reset or free. */
typedef struct pare_node_profile {
    const pare_node *node;       /* NULL: the copies between backends */
    const char *backend;         /* "cpu", "cuda" */
    const pare_node *fused_into; /* the node that computes it, or NULL */
    double ms;                   /* wall time, summed over the runs */
    uint64_t runs;
} pare_node_profile;
size_t pare_session_profile(const pare_session *s, const pare_node_profile **out);
void pare_session_profile_reset(pare_session *s);

/* Bytes of the activation arena of the current plan (0 before a run). */
size_t pare_session_arena_bytes(const pare_session *s);
/* The signature "input 'x' float32 [N,3,224,224]; ..." for messages. */
const char *pare_session_signature(pare_session *s);
/* The plan as text, for --plan: a header line, then one line per node of
 * the main graph in run order: name (or #id), op, backend, kernel as
 * "Op/since(input dtypes)" and, for a node the preferred device backend
 * declined, "fallback from DEV: reason"; rows "copy:TENSOR (copy) TO
 * FROM->TO" are the copies between backends. Caller frees; NULL on
 * allocation failure. */
char *pare_session_plan_text(pare_session *s);

/* Number of usable cores. */
int pare_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
