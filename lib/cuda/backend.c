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
#include "cuda/dnn.h"

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
#define H2D_CHUNK ((size_t)4 << 20)   /* host->device: chunks through two staging buffers,
                                       * so that the host's memcpy of one overlaps the
                                       * device's copy of the other */
#define COPY_EVENTS 64                /* timed host->device copies per run */
#define GRAPH_COPIES 64               /* host->device copies in a captured run */
#define CUBLAS_WS ((size_t)32 << 20)  /* cuBLAS's workspace per session */

typedef struct alloc_rec {
    void *p;
    size_t bytes;
} alloc_rec;

typedef struct pcu_priv {
    /* pinned staging: a host->device copy may still read it after
     * to_device returned, so staged_ev says when it is free again */
    void *pinned[2];
    size_t pinned_size[2];
    cudaEvent_t staged_ev[2];
    bool staged_pending[2];
    int slot;           /* the staging buffer the next host->device chunk takes */
    /* timing of the last run */
    cudaEvent_t ev_begin, ev_end;
    bool timed;
    cudaEvent_t h2d_ev[COPY_EVENTS][2];
    int n_h2d_ev;
    double h2d_host_ms; /* copies beyond the event pairs, timed on the host */
    double d2h_ms;
    /* CUDA graphs: while capturing, copies to the device are noted in
     * defer and made (through the staging buffers, timed) right before the
     * graph's launch */
    bool capturing;
    cudaGraphExec_t gexec;    /* the instantiation launched by the last captured run */
    bool replayed;            /* the last run launched an updated gexec */
    struct {
        void *dst;
        const void *src;
        size_t bytes;
    } defer[GRAPH_COPIES];
    int n_defer;
    /* device bytes held: buffers from alloc, the workspace, pinned staging */
    alloc_rec *allocs;
    size_t n_allocs, cap_allocs;
    uint64_t bytes_now, bytes_peak;
    void *blas_ws; /* cuBLAS's workspace (cublasSetWorkspace) */
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
        for (int i = 0; i < 2; i++) {
            if (pv->pinned[i])
                cudaFreeHost(pv->pinned[i]);
            if (pv->staged_ev[i])
                cudaEventDestroy(pv->staged_ev[i]);
        }
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
        if (pv->blas_ws)
            cudaFree(pv->blas_ws);
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
    pcu_priv *pv = s->backend_private;
    PCU_RT(cudaSetDevice(s->gpu), err);
    int major = 0, minor = 0;
    PCU_RT(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, s->gpu), err);
    PCU_RT(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, s->gpu), err);
    s->sm = major * 10 + minor;
    s->tf32 = o->tf32;
    s->conv_search = o->cuda_conv_algo == 0;
    PCU_RT(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), err);
    PCU_BLAS(cublasCreate(&s->cublas), err);
    PCU_BLAS(cublasSetStream(s->cublas, s->stream), err);
    /* TF32 only when asked: the compute type of each GEMM says it too
     * (core.c), this covers cuBLAS calls that take a math mode */
    PCU_BLAS(cublasSetMathMode(s->cublas, o->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                  : CUBLAS_DEFAULT_MATH),
             err);
    /* cuBLAS's own workspace, fixed: without one it may allocate inside a
     * GEMM, which a CUDA graph capture refuses (the graph is then dropped) */
    PCU_RT(cudaMalloc(&pv->blas_ws, CUBLAS_WS), err);
    count_bytes(pv, (int64_t)CUBLAS_WS);
    PCU_BLAS(cublasSetWorkspace(s->cublas, pv->blas_ws, CUBLAS_WS), err);
    PCU_BLAS(cublasLtCreate(&s->lt), err);
    PCU_DNN(cudnnCreate(&s->cudnn), err);
    PCU_DNN(cudnnSetStream(s->cudnn, s->stream), err);
    for (int i = 0; i < 2; i++)
        PCU_RT(cudaEventCreateWithFlags(&pv->staged_ev[i], cudaEventDisableTiming), err);
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

void pcu_count_device_bytes(pcu_session *s, int64_t delta)
{
    count_bytes(s->backend_private, delta);
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

/* Staging buffer `slot` with at least min(bytes, cap) bytes, free for
 * writing (its last copy done). */
static pare_status staging(pcu_session *s, int slot, size_t bytes, size_t cap, size_t *chunk,
                           pare_error *err)
{
    pcu_priv *pv = s->backend_private;
    size_t want = bytes < cap ? bytes : cap;
    if (want == 0)
        want = 1;
    if (pv->staged_pending[slot]) {
        PCU_RT(cudaEventSynchronize(pv->staged_ev[slot]), err);
        pv->staged_pending[slot] = false;
    }
    if (pv->pinned_size[slot] < want) {
        size_t sz = want < ((size_t)1 << 20) ? ((size_t)1 << 20) : want;
        if (pv->pinned[slot]) {
            cudaFreeHost(pv->pinned[slot]);
            count_bytes(pv, -(int64_t)pv->pinned_size[slot]);
            pv->pinned[slot] = NULL;
            pv->pinned_size[slot] = 0;
        }
        PCU_RT(cudaHostAlloc(&pv->pinned[slot], sz, cudaHostAllocDefault), err);
        pv->pinned_size[slot] = sz;
        count_bytes(pv, (int64_t)sz);
    }
    *chunk = pv->pinned_size[slot] < cap ? pv->pinned_size[slot] : cap;
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
        /* the copies of a captured run (the graph inputs: a graph is made
         * only when every node runs here) are made when the graph is
         * launched, before it on the stream (cuda_graph_end): their host
         * data is the caller's input, alive for the whole run */
        if (pv->n_defer >= GRAPH_COPIES)
            return pare_error_set(err, PARE_ERR_LIMIT, "more than %d copies to the device in "
                                  "a captured run", GRAPH_COPIES);
        pv->defer[pv->n_defer].dst = dst;
        pv->defer[pv->n_defer].src = src;
        pv->defer[pv->n_defer].bytes = bytes;
        pv->n_defer++;
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
        int k = pv->slot;
        pare_status st = staging(s, k, bytes - off, H2D_CHUNK, &chunk, err);
        if (st)
            return st;
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        memcpy(pv->pinned[k], (const char *)src + off, n);
        PCU_RT(cudaMemcpyAsync((char *)dst + off, pv->pinned[k], n, cudaMemcpyHostToDevice,
                               s->stream),
               err);
        PCU_RT(cudaEventRecord(pv->staged_ev[k], s->stream), err);
        pv->staged_pending[k] = true;
        pv->slot = 1 - k;
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
        pare_status st = staging(s, 0, bytes - off, PINNED_MAX, &chunk, err);
        if (st)
            return st;
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        PCU_RT(cudaMemcpyAsync(pv->pinned[0], (const char *)src + off, n, cudaMemcpyDeviceToHost,
                               s->stream),
               err);
        PCU_RT(cudaStreamSynchronize(s->stream), err);
        memcpy((char *)dst + off, pv->pinned[0], n);
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
    pv->n_defer = 0;
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
    double total = 0;
    if (pv->timed && cudaEventElapsedTime(&ms, pv->ev_begin, pv->ev_end) == cudaSuccess)
        total = ms;
    double h2d = pv->h2d_host_ms, h2d_dev = 0;
    for (int i = 0; i < pv->n_h2d_ev; i++)
        if (cudaEventElapsedTime(&ms, pv->h2d_ev[i][0], pv->h2d_ev[i][1]) == cudaSuccess)
            h2d_dev += ms;
    cudaGetLastError(); /* a not-ready event is not an error of a later call */
    /* GPU compute as trtexec's: without the copies to the device, which
     * the stream runs between the kernels (or before a replayed graph),
     * timed by events */
    out->compute_ms = total > h2d_dev ? total - h2d_dev : total;
    out->h2d_ms = h2d + h2d_dev;
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
    for (int i = 0; i < 2; i++)
        if (pv->staged_pending[i]) { /* the staging buffers are not touched while capturing */
            PCU_RT(cudaEventSynchronize(pv->staged_ev[i]), err);
            pv->staged_pending[i] = false;
        }
    pv->n_defer = 0;
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
    /* the device's time of this run starts here (the capture before it
     * queued nothing): the graph inputs' copies, then the graph */
    if (pv->timed)
        PCU_RT(cudaEventRecord(pv->ev_begin, s->stream), err);
    int nd = pv->n_defer;
    pv->n_defer = 0;
    for (int i = 0; i < nd; i++) {
        pare_status st = cuda_to_device(b, sctx, pv->defer[i].dst, pv->defer[i].src,
                                        pv->defer[i].bytes, err);
        if (st)
            return st;
    }
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

static pare_status cuda_fuse_qdq(const pare_backend *b, void *sctx, const pare_kqdq *d,
                                 const pare_kernel **k, void **state, pare_error *err)
{
    (void)b;
    return pcu_fuse_qdq(sctx, d, k, state, err);
}

static pare_status cuda_fuse(const pare_backend *b, void *sctx, const pare_kernel *k,
                             const pare_node *n, void *state, const pare_kfuse *f, pare_error *err)
{
    (void)b;
    return pcu_conv_fuse(sctx, k, n, state, f, err);
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
    .fuse = cuda_fuse,
    .fuse_qdq = cuda_fuse_qdq,
};

const pare_backend *pare_backend_cuda(void)
{
    return &cuda_backend;
}
