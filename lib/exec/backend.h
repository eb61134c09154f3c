/* The backend interface: how a device (the CPU today, CUDA next) plugs into
 * the executor. Internal to the library.
 *
 * What a backend provides (struct pare_backend below):
 *   - name: "cpu", "cuda"; printed by pare_session_plan_text and in errors.
 *   - supports: given a node, its opset and its input dtypes, the kernel
 *     that runs it on this backend, or NULL and a reason ("no kernel for
 *     input dtypes (int8, int8)", "strings stay on the host"). It is called
 *     once per node when a session is made, never while running. A backend
 *     keeps its kernels in a registry (pare_kreg_new over its own tables,
 *     exec/kernel.h), keyed like the CPU's by (domain, op_type, opset range,
 *     input dtypes); supports is usually pare_kreg_select on it plus any
 *     further condition of its own.
 *   - memory: alloc and free of device buffers, copies host->device and
 *     device->host, and sync (wait until queued work is done). The CPU
 *     backend's are malloc/free/memcpy and a no-op sync, and it sets
 *     host_memory so that no copy is ever planned between it and the host.
 *   - available: whether it can run here at all (a GPU present, a driver
 *     that loads); NULL means yes. "auto" picks the first registered device
 *     backend that is available, else the CPU.
 *
 * Kernels of a device backend are pare_kernel records like the CPU's: run
 * gets a pare_kctx whose input tensors have their data in that backend's
 * memory, and k->alloc_out hands out tensors whose data is in that memory
 * too (pare_tensor structs on the host whose data pointer is a device
 * pointer: nothing on the host may read it). A device kernel queues its
 * work (e.g. on the backend's stream, kept in ctx) and returns; the
 * executor calls sync before every device->host copy, before handing a
 * device tensor to an observer, and at the end of a run. to_host must
 * return with the bytes on the host. to_device may return before the
 * transfer is done only if src need not outlive the call (staged through
 * pinned memory): the host buffer can be reused by the next CPU node.
 *
 * How the session plans (lib/exec/session.c):
 *   - Backends: the CPU always; with pare_session_opts.device naming another
 *     (or "auto" finding one), that one is preferred.
 *   - Placement, per node of the main graph in topological order: the
 *     preferred backend when its supports returns a kernel; else the CPU
 *     (per-node fallback), and the plan records the preferred backend's
 *     reason. Nodes with subgraphs (If, Loop, Scan) and every node inside
 *     a subgraph run on the CPU. When the CPU lacks a kernel too, the
 *     session fails naming node, op, domain, opset and the input dtypes.
 *   - Homes and copies: each value lives where its producer ran (graph
 *     inputs and initializers on the host). A node that reads a value homed
 *     on the other backend gets a copy step in the plan, placed before the
 *     first such reader; later readers on that side share the copy (the
 *     value's mirror), so data crosses only at the borders of islands.
 *     Initializers read by a device node are uploaded once when the session
 *     is made and kept for its life. Graph outputs homed on a device get a
 *     device->host copy after the last node. A CPU-only plan has no copies
 *     and runs the same loop as before backends existed.
 *   - Arenas: the first run with new input shapes records every buffer's
 *     size (a value's home buffer and its mirror, if any); the executor then
 *     lays them out by liveness (home: producer to last reader; mirror: its
 *     copy step to last reader) in one arena per backend, allocated with
 *     that backend's alloc once, and later runs with the same shapes take
 *     every buffer from the arenas: no device allocation in the run loop (on
 *     the host, tensor headers and the caller's output tensors still are).
 *     Graph outputs are handed to the caller as host tensors.
 *
 * A backend is registered by the code that builds it (the CUDA backend in a
 * CUDA build); tests register fakes with pare_backend_register.
 */
#ifndef PARE_EXEC_BACKEND_H
#define PARE_EXEC_BACKEND_H

#include "exec/kernel.h"

typedef struct pare_backend pare_backend;

struct pare_backend {
    const char *name;
    void *ctx;         /* the backend's own state, shared by its sessions */
    bool host_memory;  /* buffers are plain host memory: no copies to or from the CPU */
    /* Optional: whether device gpu can be used here; false with a reason. */
    bool (*available)(const pare_backend *b, int gpu, char *why, size_t why_size);
    /* Optional: a context for one session (its device, stream, handles), made
     * when the session is made and closed when it is freed; passed as sctx
     * below and to kernels as pare_kctx.dev. Without open, sctx is NULL.
     * opts are the session's options (device index, tf32, cuda_graph). */
    pare_status (*open)(const pare_backend *b, const pare_session_opts *opts, void **sctx,
                        pare_error *err);
    void (*close)(const pare_backend *b, void *sctx);
    /* The kernel for node n at opset with these input dtypes (n_in entries:
     * -1 an omitted optional input, 0 unknown), or NULL and why. Plan time
     * only. */
    const pare_kernel *(*supports)(const pare_backend *b, const pare_node *n, int64_t opset,
                                   const int *dtypes, size_t n_in, char *why, size_t why_size);
    /* bytes > 0; a buffer aligned to at least 64 bytes. A failure says how
     * much was asked; the executor adds the tensor's name. */
    pare_status (*alloc)(const pare_backend *b, void *sctx, size_t bytes, void **ptr,
                         pare_error *err);
    void (*free)(const pare_backend *b, void *sctx, void *ptr);
    pare_status (*to_device)(const pare_backend *b, void *sctx, void *dst, const void *src,
                             size_t bytes, pare_error *err);
    pare_status (*to_host)(const pare_backend *b, void *sctx, void *dst, const void *src,
                           size_t bytes, pare_error *err);
    pare_status (*sync)(const pare_backend *b, void *sctx, pare_error *err);
    /* Optional, for figures (pare_session_run_stats): run_begin is called
     * before the first step of a run of the main graph of a plan that uses
     * the backend, run_end after its last node (before the copies of the
     * graph outputs and the final sync); stats fills the device fields of
     * out (h2d_ms, d2h_ms, compute_ms, device_mem_peak, graph_replayed) for
     * the last run. */
    void (*run_begin)(const pare_backend *b, void *sctx);
    pare_status (*run_end)(const pare_backend *b, void *sctx, pare_error *err);
    void (*stats)(const pare_backend *b, void *sctx, pare_run_stats *out);
    /* Optional, CUDA graphs. The session uses them (pare_session_opts.
     * cuda_graph -1 or 1) on runs where they apply: every node of the main
     * graph on this backend, its buffers taken from the arena (same input
     * shapes as the run before), no observer. graph_begin, called right
     * after run_begin, starts capturing the device work that follows
     * (copies to the device included); graph_end, before run_end, ends the
     * capture and with ok launches it (reusing the previous instantiation
     * when it still fits), without ok (the run failed) discards it. When a
     * captured run fails, the session runs it again without a graph and
     * does not try graphs again (cuda_graph 1: the run fails instead). */
    pare_status (*graph_begin)(const pare_backend *b, void *sctx, pare_error *err);
    pare_status (*graph_end)(const pare_backend *b, void *sctx, bool ok, pare_error *err);
    /* Optional: plan-time fusion of a node placed on this backend, as
     * pare_kernel_fuse (kernel.h) for the CPU: kernel k of node n with its
     * state asked to absorb what f describes; PARE_OK accepts (the kernel
     * then sees pare_kctx.fused), anything else leaves the node as it is.
     * NULL: the backend fuses nothing. */
    pare_status (*fuse)(const pare_backend *b, void *sctx, const pare_kernel *k,
                        const pare_node *n, void *state, const pare_kfuse *f, pare_error *err);
    /* Optional: the kernel of a QDQ-fused node placed on this backend, as
     * pare_kernel_qdq (kernel.h) for the CPU: PARE_OK with *k and *state
     * (released by (*k)->release), anything else refuses and the nodes run
     * as they are. The fused node reads x_q (and b_q) homed on this backend
     * and writes its output there. NULL: no QDQ fusion on this backend. */
    pare_status (*fuse_qdq)(const pare_backend *b, void *sctx, const pare_kqdq *d,
                            const pare_kernel **k, void **state, pare_error *err);
};

/* The CPU backend (lib/exec/backend_cpu.c): the CPU kernel registry. */
const pare_backend *pare_backend_cpu(void);

/* Resolves a device name for a session: NULL or "cpu": the CPU; "auto": the
 * first available registered device backend, else the CPU; another name: the
 * registered backend of that name, which must be available ("cuda" in a
 * build without it: "pare was built without CUDA"). */
pare_status pare_backend_get(const char *device, int gpu, const pare_backend **out,
                             pare_error *err);

/* Registers a device backend (at most 4; the struct must stay valid while
 * registered); a second one of the same name replaces the first.
 * pare_backend_unregister removes it by name. Not thread-safe against
 * sessions being made: call them at start-up (the CUDA build) or in tests. */
pare_status pare_backend_register(const pare_backend *b, pare_error *err);
void pare_backend_unregister(const char *name);

#endif
