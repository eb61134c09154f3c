/* The CUDA backend record "cuda" (lib/exec/backend.h): availability, the
 * per-session context (device, stream, library handles bound to it), device
 * memory, copies staged through pinned host memory, the kernel registry and
 * the placement conditions, timing figures, CUDA graph capture and replay,
 * and the error strings of failed CUDA, cuBLAS and cuDNN calls. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "cuda/cuda_internal.h"

/* ---- errors ---- */

/* __FILE__ is relative to the build dir ("../lib/cuda/backend.c"): keep
 * the part from lib/ on so that messages name the source file. */
static const char *short_file(const char *file)
{
    const char *p = strstr(file, "lib/");
    return p ? p : file;
}

pare_status pcu_fail_rt(int code, const char *call, const char *file, int line, pare_error *err)
{
    pare_status st = code == (int)cudaErrorMemoryAllocation ? PARE_ERR_NOMEM : PARE_ERR_RUNTIME;
    return pare_error_set(err, st, "%s failed at %s:%d: %s", call, short_file(file), line,
                          cudaGetErrorString((cudaError_t)code));
}

pare_status pcu_fail_blas(int code, const char *call, const char *file, int line,
                          pare_error *err)
{
    pare_status st = code == (int)CUBLAS_STATUS_ALLOC_FAILED ? PARE_ERR_NOMEM : PARE_ERR_RUNTIME;
    return pare_error_set(err, st, "%s failed at %s:%d: %s", call, short_file(file), line,
                          cublasGetStatusString((cublasStatus_t)code));
}

pare_status pcu_fail_dnn(int code, const char *call, const char *file, int line, pare_error *err)
{
    pare_status st = code == (int)CUDNN_STATUS_ALLOC_FAILED ? PARE_ERR_NOMEM : PARE_ERR_RUNTIME;
    return pare_error_set(err, st, "%s failed at %s:%d: %s", call, short_file(file), line,
                          cudnnGetErrorString((cudnnStatus_t)code));
}

/* ---- the core's private part of a session ---- */

#define PINNED_MAX ((size_t)64 << 20) /* staging buffer cap; larger copies go in chunks */
#define COPY_EVENTS 64                /* timed host->device copies per run */
#define GRAPH_COPIES 64               /* host->device copies in a captured run */

typedef struct alloc_rec {
    void *p;
    size_t bytes;
} alloc_rec;

typedef struct pcu_priv {
    /* pinned staging: a host->device copy may still read it after
     * to_device returned, so staged_ev says when it is free again */
    void *pinned;
    size_t pinned_size;
    cudaEvent_t staged_ev;
    bool staged_pending;
    /* timing of the last run */
    cudaEvent_t ev_begin, ev_end;
    bool timed;
    cudaEvent_t h2d_ev[COPY_EVENTS][2];
    int n_h2d_ev;
    double h2d_host_ms; /* copies beyond the event pairs, timed on the host */
    double d2h_ms;
    /* CUDA graphs: while capturing, copies to the device go through one
     * pinned buffer per copy of the run (gin[k] for the k-th), which the
     * captured memcpy nodes read when the graph is launched */
    bool capturing;
    cudaGraphExec_t gexec;    /* the instantiation launched by the last captured run */
    bool replayed;            /* the last run launched an updated gexec */
    void *gin[GRAPH_COPIES];
    size_t gin_size[GRAPH_COPIES];
    int n_gin;
    /* device bytes held: buffers from alloc, the workspace, pinned staging */
    alloc_rec *allocs;
    size_t n_allocs, cap_allocs;
    uint64_t bytes_now, bytes_peak;
} pcu_priv;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void count_bytes(pcu_priv *pv, int64_t delta)
{
    pv->bytes_now = (uint64_t)((int64_t)pv->bytes_now + delta);
    if (pv->bytes_now > pv->bytes_peak)
        pv->bytes_peak = pv->bytes_now;
}

/* ---- availability ---- */

static bool cuda_available(const pare_backend *b, int gpu, char *why, size_t why_size)
{
    (void)b;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, why_size, "no usable CUDA device (cudaGetDeviceCount: %s)",
                 cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error for later calls */
        return false;
    }
    if (n == 0) {
        snprintf(why, why_size, "no CUDA device found");
        return false;
    }
    if (gpu < 0 || gpu >= n) {
        snprintf(why, why_size, "CUDA device %d asked, %d present", gpu, n);
        return false;
    }
    return true;
}

/* ---- session context ---- */

static void cuda_close(const pare_backend *b, void *sctx)
{
    (void)b;
    pcu_session *s = sctx;
    if (!s)
        return;
    pcu_priv *pv = s->backend_private;
    if (s->stream)
        cudaStreamSynchronize(s->stream);
    if (pv) {
        if (pv->pinned)
            cudaFreeHost(pv->pinned);
        if (pv->staged_ev)
            cudaEventDestroy(pv->staged_ev);
        if (pv->ev_begin)
            cudaEventDestroy(pv->ev_begin);
        if (pv->ev_end)
            cudaEventDestroy(pv->ev_end);
        for (int i = 0; i < COPY_EVENTS; i++)
            for (int j = 0; j < 2; j++)
                if (pv->h2d_ev[i][j])
                    cudaEventDestroy(pv->h2d_ev[i][j]);
        if (pv->gexec)
            cudaGraphExecDestroy(pv->gexec);
        for (int i = 0; i < GRAPH_COPIES; i++)
            if (pv->gin[i])
                cudaFreeHost(pv->gin[i]);
        free(pv->allocs);
        free(pv);
    }
    if (s->workspace)
        cudaFree(s->workspace);
    if (s->cudnn)
        cudnnDestroy(s->cudnn);
    if (s->lt)
        cublasLtDestroy(s->lt);
    if (s->cublas)
        cublasDestroy(s->cublas);
    if (s->stream)
        cudaStreamDestroy(s->stream);
    free(s);
}

static pare_status open_ctx(pcu_session *s, const pare_session_opts *o, pare_error *err)
{
    PCU_RT(cudaSetDevice(s->gpu), err);
    int major = 0, minor = 0;
    PCU_RT(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, s->gpu), err);
    PCU_RT(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, s->gpu), err);
    s->sm = major * 10 + minor;
    s->tf32 = o->tf32;
    PCU_RT(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), err);
    PCU_BLAS(cublasCreate(&s->cublas), err);
    PCU_BLAS(cublasSetStream(s->cublas, s->stream), err);
    /* TF32 only when asked: the compute type of each GEMM says it too
     * (core.c), this covers cuBLAS calls that take a math mode */
    PCU_BLAS(cublasSetMathMode(s->cublas, o->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                  : CUBLAS_DEFAULT_MATH),
             err);
    PCU_BLAS(cublasLtCreate(&s->lt), err);
    PCU_DNN(cudnnCreate(&s->cudnn), err);
    PCU_DNN(cudnnSetStream(s->cudnn, s->stream), err);
    pcu_priv *pv = s->backend_private;
    PCU_RT(cudaEventCreateWithFlags(&pv->staged_ev, cudaEventDisableTiming), err);
    PCU_RT(cudaEventCreate(&pv->ev_begin), err);
    PCU_RT(cudaEventCreate(&pv->ev_end), err);
    return PARE_OK;
}

static pare_status cuda_open(const pare_backend *b, const pare_session_opts *o, void **sctx,
                             pare_error *err)
{
    (void)b;
    *sctx = NULL;
    pcu_session *s = calloc(1, sizeof *s);
    pcu_priv *pv = calloc(1, sizeof *pv);
    if (!s || !pv) {
        free(s);
        free(pv);
        return PARE_NOMEM(err);
    }
    s->gpu = o->gpu;
    s->backend_private = pv;
    pare_status st = open_ctx(s, o, err);
    if (st) {
        cuda_close(b, s);
        return pare_error_prefix(err, "cuda device %d", o->gpu);
    }
    *sctx = s;
    return PARE_OK;
}

pare_status pcu_workspace(pcu_session *s, size_t bytes, void **out, pare_error *err)
{
    pcu_priv *pv = s->backend_private;
    if (bytes > s->workspace_size) {
        size_t want = bytes < ((size_t)4 << 20) ? ((size_t)4 << 20) : bytes;
        if (s->workspace) {
            /* kernels queued earlier may still use the old one */
            PCU_RT(cudaStreamSynchronize(s->stream), err);
            cudaFree(s->workspace);
            count_bytes(pv, -(int64_t)s->workspace_size);
            s->workspace = NULL;
            s->workspace_size = 0;
        }
        cudaError_t e = cudaMalloc(&s->workspace, want);
        if (e != cudaSuccess) {
            cudaGetLastError();
            s->workspace = NULL;
            return pare_error_set(err, e == cudaErrorMemoryAllocation ? PARE_ERR_NOMEM
                                                                      : PARE_ERR_RUNTIME,
                                  "cuda workspace of %zu bytes: cudaMalloc failed: %s", want,
                                  cudaGetErrorString(e));
        }
        s->workspace_size = want;
        count_bytes(pv, (int64_t)want);
    }
    *out = s->workspace;
    return PARE_OK;
}

/* ---- memory ---- */

static pare_status cuda_alloc(const pare_backend *b, void *sctx, size_t bytes, void **ptr,
                              pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    *ptr = NULL;
    if (pv->n_allocs == pv->cap_allocs) {
        size_t cap = pv->cap_allocs ? 2 * pv->cap_allocs : 64;
        alloc_rec *r = realloc(pv->allocs, cap * sizeof *r);
        if (!r)
            return PARE_NOMEM(err);
        pv->allocs = r;
        pv->cap_allocs = cap;
    }
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1); /* 256-byte aligned */
    if (e != cudaSuccess) {
        cudaGetLastError();
        *ptr = NULL;
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError();
        return pare_error_set(err, e == cudaErrorMemoryAllocation ? PARE_ERR_NOMEM
                                                                  : PARE_ERR_RUNTIME,
                              "cudaMalloc of %zu bytes on cuda:%d failed: %s (%zu of %zu "
                              "bytes free)",
                              bytes, s->gpu, cudaGetErrorString(e), free_b, total_b);
    }
    pv->allocs[pv->n_allocs++] = (alloc_rec){*ptr, bytes};
    count_bytes(pv, (int64_t)bytes);
    return PARE_OK;
}

static void cuda_free(const pare_backend *b, void *sctx, void *ptr)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    if (!ptr)
        return;
    /* the most recent allocations are the likeliest to go first */
    for (size_t i = pv->n_allocs; i-- > 0;)
        if (pv->allocs[i].p == ptr) {
            count_bytes(pv, -(int64_t)pv->allocs[i].bytes);
            pv->allocs[i] = pv->allocs[--pv->n_allocs];
            break;
        }
    cudaFree(ptr); /* waits for work that may still read it */
}

/* A staging buffer of at least min(bytes, PINNED_MAX), free for writing. */
static pare_status staging(pcu_session *s, size_t bytes, size_t *chunk, pare_error *err)
{
    pcu_priv *pv = s->backend_private;
    size_t want = bytes < PINNED_MAX ? bytes : PINNED_MAX;
    if (want == 0)
        want = 1;
    if (pv->staged_pending) {
        PCU_RT(cudaEventSynchronize(pv->staged_ev), err);
        pv->staged_pending = false;
    }
    if (pv->pinned_size < want) {
        size_t sz = want < ((size_t)1 << 20) ? ((size_t)1 << 20) : want;
        if (pv->pinned) {
            cudaFreeHost(pv->pinned);
            count_bytes(pv, -(int64_t)pv->pinned_size);
            pv->pinned = NULL;
            pv->pinned_size = 0;
        }
        PCU_RT(cudaHostAlloc(&pv->pinned, sz, cudaHostAllocDefault), err);
        pv->pinned_size = sz;
        count_bytes(pv, (int64_t)sz);
    }
    *chunk = pv->pinned_size;
    return PARE_OK;
}

static pare_status cuda_to_device(const pare_backend *b, void *sctx, void *dst, const void *src,
                                  size_t bytes, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    double t0 = now_ms();
    if (pv->capturing) {
        /* the staging buffer is reused after waiting on an event, which a
         * capture does not allow: a buffer of its own for each copy */
        if (pv->n_gin >= GRAPH_COPIES)
            return pare_error_set(err, PARE_ERR_LIMIT, "more than %d copies to the device in "
                                  "a captured run", GRAPH_COPIES);
        int i = pv->n_gin++;
        if (pv->gin_size[i] < bytes) {
            if (pv->gin[i]) {
                cudaFreeHost(pv->gin[i]);
                count_bytes(pv, -(int64_t)pv->gin_size[i]);
                pv->gin[i] = NULL;
                pv->gin_size[i] = 0;
            }
            PCU_RT(cudaHostAlloc(&pv->gin[i], bytes ? bytes : 1, cudaHostAllocDefault), err);
            pv->gin_size[i] = bytes;
            count_bytes(pv, (int64_t)bytes);
        }
        if (bytes) {
            memcpy(pv->gin[i], src, bytes);
            PCU_RT(cudaMemcpyAsync(dst, pv->gin[i], bytes, cudaMemcpyHostToDevice, s->stream),
                   err);
        }
        pv->h2d_host_ms += now_ms() - t0;
        return PARE_OK;
    }
    bool evs = pv->timed && pv->n_h2d_ev < COPY_EVENTS;
    if (evs) {
        cudaEvent_t *e = pv->h2d_ev[pv->n_h2d_ev];
        if (!e[0])
            PCU_RT(cudaEventCreate(&e[0]), err);
        if (!e[1])
            PCU_RT(cudaEventCreate(&e[1]), err);
        PCU_RT(cudaEventRecord(e[0], s->stream), err);
    }
    for (size_t off = 0; off < bytes;) {
        size_t chunk;
        pare_status st = staging(s, bytes - off, &chunk, err);
        if (st)
            return st;
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        memcpy(pv->pinned, (const char *)src + off, n);
        PCU_RT(cudaMemcpyAsync((char *)dst + off, pv->pinned, n, cudaMemcpyHostToDevice,
                               s->stream),
               err);
        PCU_RT(cudaEventRecord(pv->staged_ev, s->stream), err);
        pv->staged_pending = true;
        off += n;
    }
    if (evs)
        PCU_RT(cudaEventRecord(pv->h2d_ev[pv->n_h2d_ev++][1], s->stream), err);
    else if (pv->timed)
        pv->h2d_host_ms += now_ms() - t0; /* past the event pairs: the host's view */
    return PARE_OK;
}

static pare_status cuda_to_host(const pare_backend *b, void *sctx, void *dst, const void *src,
                                size_t bytes, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    double t0 = now_ms();
    for (size_t off = 0; off < bytes;) {
        size_t chunk;
        pare_status st = staging(s, bytes - off, &chunk, err);
        if (st)
            return st;
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        PCU_RT(cudaMemcpyAsync(pv->pinned, (const char *)src + off, n, cudaMemcpyDeviceToHost,
                               s->stream),
               err);
        PCU_RT(cudaStreamSynchronize(s->stream), err);
        memcpy((char *)dst + off, pv->pinned, n);
        off += n;
    }
    if (pv->timed)
        pv->d2h_ms += now_ms() - t0;
    return PARE_OK;
}

static pare_status cuda_sync(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    PCU_RT(cudaStreamSynchronize(s->stream), err);
    PCU_RT(cudaGetLastError(), err);
    return PARE_OK;
}

/* ---- figures ---- */

static void cuda_run_begin(const pare_backend *b, void *sctx)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    /* the current device is per host thread: a session made on one thread
     * may run on another (pare-run --concurrency's batcher) */
    (void)cudaSetDevice(s->gpu);
    pv->n_h2d_ev = 0;
    pv->h2d_host_ms = 0;
    pv->d2h_ms = 0;
    pv->replayed = false;
    pv->timed = cudaEventRecord(pv->ev_begin, s->stream) == cudaSuccess;
}

static pare_status cuda_run_end(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    if (pv->timed)
        PCU_RT(cudaEventRecord(pv->ev_end, s->stream), err);
    return PARE_OK;
}

static void cuda_stats(const pare_backend *b, void *sctx, pare_run_stats *out)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    float ms = 0;
    if (pv->timed && cudaEventElapsedTime(&ms, pv->ev_begin, pv->ev_end) == cudaSuccess)
        out->compute_ms = ms;
    double h2d = pv->h2d_host_ms;
    for (int i = 0; i < pv->n_h2d_ev; i++)
        if (cudaEventElapsedTime(&ms, pv->h2d_ev[i][0], pv->h2d_ev[i][1]) == cudaSuccess)
            h2d += ms;
    cudaGetLastError(); /* a not-ready event is not an error of a later call */
    out->h2d_ms = h2d;
    out->d2h_ms = pv->d2h_ms;
    out->device_mem_peak = pv->bytes_peak;
    out->graph_replayed = pv->replayed;
}

/* ---- CUDA graphs (backend.h: graph_begin, graph_end) ----
 * Each captured run is recorded anew (the kernels' host code runs as
 * always: shapes, arena buffers, launches) and the recording updates the
 * instantiated graph of the run before (cudaGraphExecUpdate, cheap when the
 * topology is the same) which is then launched: one launch instead of one
 * per kernel. Relaxed capture mode: kernels may call the runtime for
 * things a capture allows; anything it does not (a synchronisation, a
 * host read of a computed tensor) fails the capture, and the session runs
 * the run again without a graph. */

static pare_status cuda_graph_begin(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    if (pv->staged_pending) { /* the staging buffer is not touched while capturing */
        PCU_RT(cudaEventSynchronize(pv->staged_ev), err);
        pv->staged_pending = false;
    }
    pv->n_gin = 0;
    pv->replayed = false;
    PCU_RT(cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeRelaxed), err);
    pv->capturing = true;
    return PARE_OK;
}

static pare_status cuda_graph_end(const pare_backend *b, void *sctx, bool ok, pare_error *err)
{
    (void)b;
    pcu_session *s = sctx;
    pcu_priv *pv = s->backend_private;
    pv->capturing = false;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(s->stream, &g);
    if (!ok || e != cudaSuccess) {
        if (g)
            cudaGraphDestroy(g);
        cudaGetLastError(); /* an invalidated capture is not a later call's error */
        if (!ok)
            return PARE_OK;
        return pcu_fail_rt((int)e, "cudaStreamEndCapture(s->stream, &g)", __FILE__, __LINE__,
                           err);
    }
    if (pv->gexec) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(pv->gexec, g, &info) == cudaSuccess) {
            pv->replayed = true;
        } else {
            cudaGetLastError();
            cudaGraphExecDestroy(pv->gexec);
            pv->gexec = NULL;
        }
    }
    if (!pv->gexec && (e = cudaGraphInstantiate(&pv->gexec, g, 0)) != cudaSuccess) {
        pv->gexec = NULL;
        cudaGraphDestroy(g);
        return pcu_fail_rt((int)e, "cudaGraphInstantiate(&pv->gexec, g, 0)", __FILE__, __LINE__,
                           err);
    }
    cudaGraphDestroy(g);
    PCU_RT(cudaGraphLaunch(pv->gexec, s->stream), err);
    return PARE_OK;
}

/* ---- placement ---- */

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static pare_kreg *reg;
static char reg_error[PARE_ERROR_MSG_MAX];

static void build_registry(void)
{
    const pare_kernel *const tables[] = {pare_cuda_kernels_core, pare_cuda_kernels_dnn,
                                         pare_cuda_kernels_quant};
    pare_error err;
    if (pare_kreg_new(tables, 3, &reg, &err)) {
        reg = NULL;
        snprintf(reg_error, sizeof reg_error, "%s", err.msg);
    }
}

/* Ops that only move or reshape data or do integer arithmetic: when every
 * input is an int32/int64 tensor they are shape computations (Shape ->
 * Gather -> Concat -> Reshape), which stay on the CPU where their results
 * are read. */
static bool is_shape_op(const char *op)
{
    static const char *const ops[] = {
        "Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Less", "Greater", "Where",
        "Concat", "Slice", "Gather", "Squeeze", "Unsqueeze", "Reshape", "Cast", "Expand",
        "Identity", "Split", "Flatten", "Transpose", "ReduceSum", "ReduceMax", "ReduceMin",
        "ReduceMean", "Neg", "Abs", "Mod", "Range", "Tile", "Sum"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

/* Elements of v when its shape is fully known, else -1. */
static int64_t static_numel(const pare_value *v)
{
    if (!v || v->shape.rank < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < v->shape.rank; i++) {
        if (v->shape.dims[i].param || v->shape.dims[i].value < 0)
            return -1;
        n *= v->shape.dims[i].value;
    }
    return n;
}

#define TINY_ELEMS 16 /* up to this many elements in and out: not worth a launch */

const pare_kernel *pcu_supports(const pare_node *n, int64_t opset, const int *dtypes,
                                size_t n_in, char *why, size_t why_size)
{
    pthread_once(&reg_once, build_registry);
    if (!reg) {
        snprintf(why, why_size, "the CUDA kernel registry could not be built: %s", reg_error);
        return NULL;
    }
    bool all_int = true, any = false;
    for (size_t i = 0; i < n_in; i++) {
        if (dtypes[i] == PARE_DT_STRING) {
            snprintf(why, why_size, "strings stay on the host");
            return NULL;
        }
        if (dtypes[i] > 0) {
            any = true;
            if (dtypes[i] != PARE_DT_INT64 && dtypes[i] != PARE_DT_INT32)
                all_int = false;
        }
    }
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && n->outputs[i]->dtype == PARE_DT_STRING) {
            snprintf(why, why_size, "strings stay on the host");
            return NULL;
        }
    if (n->domain[0] == 0 && is_shape_op(n->op_type)) {
        if (any && all_int) {
            snprintf(why, why_size, "integer shape arithmetic stays on the cpu");
            return NULL;
        }
        /* tiny tensors (shape vectors, scalars) in and out */
        bool tiny = n->n_outputs > 0;
        for (size_t i = 0; tiny && i < n->n_inputs; i++)
            if (n->inputs[i]) {
                int64_t e = static_numel(n->inputs[i]);
                tiny = e >= 0 && e <= TINY_ELEMS;
            }
        for (size_t i = 0; tiny && i < n->n_outputs; i++)
            if (n->outputs[i]) {
                int64_t e = static_numel(n->outputs[i]);
                tiny = e >= 0 && e <= TINY_ELEMS;
            }
        if (tiny) {
            snprintf(why, why_size, "tiny tensors (at most %d elements) stay on the cpu",
                     TINY_ELEMS);
            return NULL;
        }
    }
    if (n->domain[0] == 0 && strcmp(n->op_type, "Cast") == 0) {
        int to = (int)pare_node_attr_int(n, "to", 0);
        if (!pcu_cast_supported(to)) {
            snprintf(why, why_size, "no Cast to %s on cuda", pare_dtype_name(to));
            return NULL;
        }
    }
    const pare_kernel *k =
        pare_kreg_select(reg, n->domain, n->op_type, opset, dtypes, n_in, why, why_size);
    /* conditions of the dnn and quant kernels beyond their types */
    if (k && !pcu_ops_accepts(k, n, opset, why, why_size))
        return NULL;
    return k;
}

static const pare_kernel *cuda_supports(const pare_backend *b, const pare_node *n, int64_t opset,
                                        const int *dtypes, size_t n_in, char *why,
                                        size_t why_size)
{
    (void)b;
    return pcu_supports(n, opset, dtypes, n_in, why, why_size);
}

static const pare_backend cuda_backend = {
    .name = "cuda",
    .ctx = NULL,
    .host_memory = false,
    .available = cuda_available,
    .open = cuda_open,
    .close = cuda_close,
    .supports = cuda_supports,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .to_device = cuda_to_device,
    .to_host = cuda_to_host,
    .sync = cuda_sync,
    .run_begin = cuda_run_begin,
    .run_end = cuda_run_end,
    .stats = cuda_stats,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
};

const pare_backend *pare_backend_cuda(void)
{
    return &cuda_backend;
}
