/* The CUDA runtime API that lib/cuda's host code calls, emulated on the
 * CPU (tests/cuda/emu): enough of it that the whole CUDA backend
 * (libpare-cuda built against these headers) runs the GPU test suites on
 * a machine without a GPU.
 *
 * Device memory is one reserved region that the host may not touch: it is
 * closed (a protection key that denies access, or PROT_NONE) except while
 * a device operation (a kernel, a copy, a cuBLAS or cuDNN call) runs, so
 * host code that dereferences a device pointer faults here as it would on
 * a GPU (PCU_EMU_NO_GUARD=1 leaves it open). Fresh allocations are filled
 * with 0xff bytes (NaN as float) so reading memory never written shows.
 * Copies check that their pointers are of the kinds named.
 *
 * Streams made by cudaStreamCreate queue their work until something
 * synchronises (cudaStreamSynchronize, cudaEventSynchronize, a synchronous
 * cudaMemcpy, cudaFree, a copy to pageable host memory), so host code that
 * reads a result before waiting for it reads stale bytes, as it may on a
 * GPU. A stream being captured records its work into a graph instead, and
 * synchronising it is an error, as CUDA has it. The legacy stream (NULL)
 * runs work at once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include <functional>
#include <map>
#include <set>
#include <vector>

#include "cuda_runtime_api.h"
#include "pcu_emu.hpp"
#include "emu_internal.hpp"

#ifdef PCU_EMU_ASAN
/* under the address sanitizer each allocation is followed by a poisoned
 * redzone and freed memory is poisoned: a kernel, cuBLAS or cuDNN call or
 * copy that reads past its buffer is reported where it happens */
extern "C" void __asan_poison_memory_region(void const volatile *addr, size_t size);
extern "C" void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define PCU_POISON(p, n) __asan_poison_memory_region(p, n)
#define PCU_UNPOISON(p, n) __asan_unpoison_memory_region(p, n)
#else
#define PCU_POISON(p, n) ((void)(p), (void)(n))
#define PCU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef std::vector<std::function<void()>> op_list;

struct CUstream_st {
    op_list queue;
    bool capturing;
    op_list captured;
};

struct CUevent_st {
    unsigned flags;
    bool recorded, done;
    double ms;
    cudaStream_t stream;
};

struct CUgraph_st {
    op_list ops;
};

struct CUgraphExec_st {
    op_list ops;
};

namespace pcu_emu {
namespace {

const size_t kPool = (size_t)16 << 30; /* reserved, not committed */
char *pool;
size_t pool_top;                       /* bytes handed out from the bottom */
size_t mapped;                         /* bytes of [pool, pool + mapped) ever used */
std::map<size_t, size_t> live;         /* offset -> bytes (with the redzone) */
std::map<size_t, size_t> asked;        /* offset -> bytes asked for */
std::map<size_t, size_t> holes;        /* free offset -> bytes, merged */
size_t in_use, peak;
int open_depth;
bool guard = true;
int pkey = -1;                         /* a protection key over the pool, if the CPU has them */
std::set<void *> pinned;
std::set<cudaStream_t> streams;
int sm_major = 9, sm_minor = 0;

/* a fault in the pool: say what it was before dying of it */
void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (pool && (char *)si->si_addr >= pool && (char *)si->si_addr < pool + kPool) {
        static const char m[] = "pcu_emu: the host touched device memory (a device pointer "
                                "dereferenced outside a device operation)\n";
        if (write(2, m, sizeof m - 1) < 0) {
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void init()
{
    if (pool)
        return;
    const char *g = getenv("PCU_EMU_NO_GUARD");
    guard = !(g && *g && *g != '0');
    const char *sm = getenv("PCU_EMU_SM"); /* "75": a Turing GPU */
    if (sm && atoi(sm) >= 10) {
        sm_major = atoi(sm) / 10;
        sm_minor = atoi(sm) % 10;
    }
    void *p = mmap(nullptr, kPool, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("pcu_emu: reserving device memory");
        abort();
    }
    pool = (char *)p;
    struct sigaction old;
    if (sigaction(SIGSEGV, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigaction(SIGSEGV, &sa, nullptr);
    }
    /* With memory protection keys (x86 PKU) opening and closing the pool
     * is a register write per switch; else mprotect, which costs in
     * proportion to the pages in use. */
    if (guard) {
        pkey = pkey_alloc(0, PKEY_DISABLE_ACCESS);
        if (pkey >= 0 && pkey_mprotect(pool, kPool, PROT_READ | PROT_WRITE, pkey)) {
            pkey_free(pkey);
            pkey = -1;
        }
    }
}

void protect(bool open)
{
    if (pkey >= 0) {
        pkey_set(pkey, open ? 0 : PKEY_DISABLE_ACCESS);
        return;
    }
    if (!mapped)
        return;
    if (mprotect(pool, mapped, open || !guard ? PROT_READ | PROT_WRITE : PROT_NONE)) {
        perror("pcu_emu: mprotect");
        abort();
    }
}

bool on_device(const void *p, size_t n)
{
    if (!pool || (const char *)p < pool || (const char *)p >= pool + pool_top)
        return false;
    size_t off = (size_t)((const char *)p - pool);
    auto it = live.upper_bound(off);
    if (it == live.begin())
        return false;
    --it;
    return off + n <= it->first + asked[it->first];
}

bool overlaps_device(const void *p, size_t n)
{
    return pool && (const char *)p < pool + kPool && (const char *)p + n > pool;
}

double now_ms()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void flush(cudaStream_t s)
{
    if (!s || !streams.count(s))
        return;
    /* ops may queue more ops (a graph launch): take them in turn; device
     * memory stays open across the batch (one mprotect, not two per op) */
    if (s->queue.empty())
        return;
    device_open(true);
    while (!s->queue.empty()) {
        op_list q;
        q.swap(s->queue);
        for (auto &op : q)
            op();
    }
    device_open(false);
}

void flush_all()
{
    for (cudaStream_t s : streams)
        flush(s);
}

cudaError_t fail(cudaError_t e, const char *what)
{
    fprintf(stderr, "pcu_emu: %s\n", what);
    set_error(e);
    return e;
}

/* the kinds of a copy's pointers, checked against the kind it names */
cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    bool dd = on_device(dst, n), sd = on_device(src, n);
    bool ok;
    switch (kind) {
    case cudaMemcpyHostToDevice: ok = dd && !overlaps_device(src, n); break;
    case cudaMemcpyDeviceToHost: ok = sd && !overlaps_device(dst, n); break;
    case cudaMemcpyDeviceToDevice: ok = dd && sd; break;
    case cudaMemcpyHostToHost: ok = !overlaps_device(dst, n) && !overlaps_device(src, n); break;
    default: ok = (dd || !overlaps_device(dst, n)) && (sd || !overlaps_device(src, n)); break;
    }
    if (!ok) {
        char m[160];
        snprintf(m, sizeof m, "cudaMemcpy of %zu bytes, kind %d: %s to %s", n, (int)kind,
                 sd ? "device" : overlaps_device(src, n) ? "outside any allocation" : "host",
                 dd ? "device" : overlaps_device(dst, n) ? "outside any allocation" : "host");
        return fail(cudaErrorInvalidValue, m);
    }
    return cudaSuccess;
}

void device_copy(void *dst, const void *src, size_t n)
{
    device_open(true);
    memmove(dst, src, n);
    device_open(false);
}

} // namespace

void device_open(bool on)
{
    if (on ? open_depth++ == 0 : --open_depth == 0)
        protect(on);
}

void submit(cudaStream_t s, std::function<void()> op)
{
    if (s && streams.count(s)) {
        if (s->capturing)
            s->captured.push_back(std::move(op));
        else
            s->queue.push_back(std::move(op));
        return;
    }
    op();
}

} // namespace pcu_emu

using namespace pcu_emu;

extern "C" {

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorGraphExecUpdateFailure: return "cudaErrorGraphExecUpdateFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalState: return "operation not permitted in this state";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error "
                                                   "during capture";
    case cudaErrorGraphExecUpdateFailure: return "the graph update was not performed";
    }
    return "unknown error";
}

cudaError_t cudaGetDeviceCount(int *n)
{
    init();
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev)
{
    init();
    return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice: no such device");
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int dev)
{
    init();
    if (dev != 0)
        return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: no such device");
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *v = sm_major; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = sm_minor; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *v = 132; return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    init();
    *total_bytes = kPool;
    *free_bytes = kPool - in_use;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    flush_all();
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    init();
    *p = nullptr;
    size_t n = (bytes + 255) / 256 * 256 + 256; /* a 256-byte redzone after it */
    size_t off = (size_t)-1;
    for (auto it = holes.begin(); it != holes.end(); ++it)
        if (it->second >= n) { /* first fit */
            off = it->first;
            size_t rest = it->second - n;
            holes.erase(it);
            if (rest)
                holes[off + n] = rest;
            break;
        }
    if (off == (size_t)-1) {
        if (pool_top + n > kPool)
            return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of (emulated) device memory");
        off = pool_top;
        pool_top += n;
        if (pool_top > mapped) {
            mapped = (pool_top + 4095) / 4096 * 4096;
        }
    }
    live[off] = n;
    asked[off] = bytes;
    in_use += n;
    if (in_use > peak)
        peak = in_use;
    PCU_UNPOISON(pool + off, bytes);
    PCU_POISON(pool + off + bytes, n - bytes);
    device_open(true);
    memset(pool + off, 0xff, bytes);
    device_open(false);
    *p = pool + off;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    flush_all(); /* cudaFree synchronises */
    if (!pool || (char *)p < pool || (char *)p >= pool + pool_top ||
        !live.count((size_t)((char *)p - pool)))
        return fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
    size_t off = (size_t)((char *)p - pool), n = live[off];
    live.erase(off);
    asked.erase(off);
    in_use -= n;
    PCU_POISON(pool + off, n);
    /* merge with the neighbouring holes */
    auto next = holes.lower_bound(off);
    if (next != holes.end() && next->first == off + n) {
        n += next->second;
        holes.erase(next);
    }
    auto prev = holes.lower_bound(off);
    if (prev != holes.begin()) {
        --prev;
        if (prev->first + prev->second == off) {
            off = prev->first;
            n += prev->second;
            holes.erase(prev);
        }
    }
    holes[off] = n;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags)
{
    (void)flags;
    *p = malloc(bytes ? bytes : 1);
    if (!*p)
        return fail(cudaErrorMemoryAllocation, "cudaHostAlloc: out of memory");
    pinned.insert(*p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    return cudaHostAlloc(p, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void *p)
{
    if (!p)
        return cudaSuccess;
    flush_all();
    if (!pinned.erase(p))
        return fail(cudaErrorInvalidValue,
                    "cudaFreeHost of a pointer cudaHostAlloc did not return");
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    if (!n)
        return cudaSuccess;
    cudaError_t e = check_copy(dst, src, n, kind);
    if (e)
        return e;
    for (cudaStream_t s : streams)
        if (s->capturing) /* a synchronous copy in a capture: legal only relaxed; not used */
            return fail(cudaErrorStreamCaptureUnsupported, "cudaMemcpy while a stream captures");
    flush_all();
    device_copy(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s)
{
    if (!n)
        return cudaSuccess;
    cudaError_t e = check_copy(dst, src, n, kind);
    if (e)
        return e;
    bool src_host = !on_device(src, n), dst_host = !on_device(dst, n);
    bool capturing = s && streams.count(s) && s->capturing;
    if (src_host && !pinned.count(const_cast<void *>(src)) && !capturing) {
        /* pageable source: staged now, so the caller may reuse it */
        auto bytes = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
        submit(s, [dst, bytes]() { device_copy(dst, bytes->data(), bytes->size()); });
        return cudaSuccess;
    }
    if (dst_host && !pinned.count(dst) && !capturing) {
        /* pageable destination: the copy completes before the call returns */
        flush(s);
        device_copy(dst, src, n);
        return cudaSuccess;
    }
    submit(s, [dst, src, n]() { device_copy(dst, src, n); });
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
    flush_all();
    return cudaMemsetAsync(p, v, n, nullptr);
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s)
{
    if (!n)
        return cudaSuccess;
    if (!on_device(p, n))
        return fail(cudaErrorInvalidValue, "cudaMemset of memory not from cudaMalloc");
    submit(s, [p, v, n]() {
        device_open(true);
        memset(p, v, n);
        device_open(false);
    });
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    init();
    *s = new CUstream_st();
    streams.insert(*s);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    (void)flags;
    return cudaStreamCreate(s);
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (!streams.count(s))
        return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of an unknown stream");
    flush(s);
    streams.erase(s);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    if (s && streams.count(s) && s->capturing)
        return fail(cudaErrorStreamCaptureUnsupported,
                    "cudaStreamSynchronize of a stream being captured");
    if (s)
        flush(s);
    else
        flush_all();
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
    (void)mode;
    if (!s || !streams.count(s))
        return fail(cudaErrorStreamCaptureUnsupported, "capture of the legacy stream");
    if (s->capturing)
        return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: already capturing");
    flush(s);
    s->capturing = true;
    s->captured.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    if (!s || !streams.count(s) || !s->capturing)
        return fail(cudaErrorIllegalState, "cudaStreamEndCapture without a capture");
    s->capturing = false;
    *g = new CUgraph_st();
    (*g)->ops.swap(s->captured);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    return cudaEventCreateWithFlags(e, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
    *e = new CUevent_st();
    (*e)->flags = flags;
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    e->recorded = true;
    e->done = false;
    e->stream = s;
    submit(s, [e]() {
        e->ms = now_ms();
        e->done = true;
    });
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    if (e->recorded && e->stream && streams.count(e->stream)) {
        if (e->stream->capturing)
            return fail(cudaErrorStreamCaptureUnsupported,
                        "cudaEventSynchronize of an event in a capture");
        flush(e->stream);
    }
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if ((start->flags | end->flags) & cudaEventDisableTiming)
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of an untimed event");
    if (!start->recorded || !end->recorded)
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of an event not "
                                                    "recorded");
    if (!start->done || !end->done)
        return cudaErrorNotReady; /* not sticky: callers poll */
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags)
{
    (void)flags;
    *x = new CUgraphExec_st();
    (*x)->ops = g->ops;
    return cudaSuccess;
}

cudaError_t cudaGraphExecUpdate(cudaGraphExec_t x, cudaGraph_t g,
                                cudaGraphExecUpdateResultInfo *info)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (x->ops.size() != g->ops.size()) { /* another topology: CUDA refuses too */
        if (info)
            info->result = 2;
        return cudaErrorGraphExecUpdateFailure;
    }
    x->ops = g->ops;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s)
{
    op_list ops = x->ops; /* the graph as launched, whatever happens to x after */
    for (auto &op : ops)
        submit(s, op);
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    delete g;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x)
{
    delete x;
    return cudaSuccess;
}

size_t pcu_emu_device_bytes(size_t *peak_bytes)
{
    if (peak_bytes)
        *peak_bytes = peak;
    return in_use;
}

int pcu_emu_is_device(const void *p)
{
    return on_device(p, 1);
}

} // extern "C"
