/* CUDA's device language, emulated on the CPU for tests (tests/cuda/emu).
 *
 * lib/cuda's .cu files compile unchanged with a C++ compiler when this
 * directory comes first on the include path: the qualifiers become nothing
 * (__shared__ becomes static: blocks run one after another, so a function
 * static is one block's shared memory), threadIdx and friends read the
 * running thread's coordinates, and PCU_LAUNCH (lib/cuda/pcu_launch.cuh)
 * runs a grid through pcu_emu::run: every thread of a block is a fiber
 * (ucontext) that runs until it reaches a barrier; a barrier is passed when
 * every live thread of the block (of the warp for __syncwarp and shuffles)
 * has reached it. Threads run in an order chosen by pcu_emu_order, so a
 * missing barrier shows as a wrong result. A barrier some threads skip or
 * leave by exiting, and misuse of WMMA, fail the launch with a message.
 *
 * What it does not model: concurrency within a barrier interval (a data race
 * between two threads that is not ordered by a barrier runs one way only),
 * warp-synchronous code without __syncwarp (which Volta and later do not
 * guarantee either), device memory limits, and the GPU's float functions
 * (expf and friends are the host's, within a few ulp of the GPU's). */
#ifndef PCU_EMU_HPP
#define PCU_EMU_HPP

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>
#include <utility>

#include "cuda_runtime_api.h"

#define __host__
#define __device__
#define __global__
#define __shared__ static
#define __constant__ static
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#ifndef __restrict__
#define __restrict__ __restrict
#endif

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __attribute__((aligned(16))) int4 {
    int x, y, z, w;
};
struct __attribute__((aligned(8))) int2 {
    int x, y;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

namespace pcu_emu {

/* the running thread's coordinates (set by the scheduler at every switch) */
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;

void sync_block();
int sync_block_count(int pred, int how); /* how: 0 or, 1 and, 2 count */
void sync_warp(unsigned mask);
/* writes this thread's 8-byte slot, waits for the warp, returns lane src's */
uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane);
[[noreturn]] void fail(const char *what);
int lane();

typedef void (*body_fn)(void *ctx);
/* runs a grid now (device memory open to it, see runtime.cpp). kernel
 * names the kernel: one whose first block passes no barrier runs its
 * other blocks thread after thread without fibers (much faster; a barrier
 * reached there after all fails the launch). */
void run(dim3 grid, dim3 block, size_t shared_bytes, body_fn body, void *ctx,
         const void *kernel);
/* false (and the launch error set) for a configuration the GPU refuses */
bool launch_ok(dim3 grid, dim3 block, size_t shared_bytes);
/* queues op on stream s: run now on the legacy stream (NULL, what the
 * kernel tests use), later on a stream of cudaStreamCreate (at the next
 * synchronisation, as a GPU would, so that a missing one shows), or into
 * the graph being captured */
void submit(cudaStream_t s, std::function<void()> op);

template <class... P> struct launcher {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    void (*kernel)(P...);
    template <class... A> void operator()(A &&...args) const
    {
        if (!launch_ok(grid, block, smem))
            return;
        /* parameters are copied into the kernel's types when launched, as a
         * launch does, and kept until the (maybe deferred) run */
        auto params = std::make_shared<std::tuple<P...>>(std::forward<A>(args)...);
        void (*k)(P...) = kernel;
        dim3 g = grid, b = block;
        size_t sm = smem;
        submit(stream, [params, k, g, b, sm]() {
            struct call {
                void (*k)(P...);
                std::tuple<P...> *p;
            } c{k, params.get()};
            run(g, b, sm, [](void *v) {
                call *c = (call *)v;
                std::apply(c->k, *c->p);
            }, &c, reinterpret_cast<const void *>(k));
        });
    }
};

template <class... P>
launcher<P...> launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                      void (*kernel)(P...))
{
    return launcher<P...>{grid, block, smem, stream, kernel};
}

} // namespace pcu_emu

#define threadIdx (pcu_emu::thread_idx)
#define blockIdx (pcu_emu::block_idx)
#define blockDim (pcu_emu::block_dim)
#define gridDim (pcu_emu::grid_dim)
#define warpSize 32

static inline void __syncthreads() { pcu_emu::sync_block(); }
static inline int __syncthreads_or(int p) { return pcu_emu::sync_block_count(p, 0); }
static inline int __syncthreads_and(int p) { return pcu_emu::sync_block_count(p, 1); }
static inline int __syncthreads_count(int p) { return pcu_emu::sync_block_count(p, 2); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { pcu_emu::sync_warp(mask); }
[[noreturn]] static inline void __trap() { pcu_emu::fail("__trap()"); }

namespace pcu_emu {
/* v of lane src of this warp, src outside this lane's segment of width: v */
template <class T> inline T shuffle(unsigned mask, T v, int src, int width)
{
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    uint64_t bits = 0, got;
    memcpy(&bits, &v, sizeof v);
    int l = lane();
    if (src < 0 || src / width != l / width)
        src = l;
    got = warp_exchange(mask, bits, src);
    T r;
    memcpy(&r, &got, sizeof r);
    return r;
}
} // namespace pcu_emu

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    return pcu_emu::shuffle(mask, v, pcu_emu::lane() ^ lane_mask, width);
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    return pcu_emu::shuffle(mask, v, pcu_emu::lane() / width * width + src % width, width);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32)
{
    return pcu_emu::shuffle(mask, v, pcu_emu::lane() + (int)d, width);
}

template <class T> static inline T __ldg(const T *p) { return *p; }

/* round-to-nearest float operations: the host's (built with
 * -ffp-contract=off, so nothing is fused behind the code's back) */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
static inline int __float2int_rn(float a) { return (int)rintf(a); }
static inline int __float_as_int(float a)
{
    int i;
    memcpy(&i, &a, 4);
    return i;
}
static inline float __int_as_float(int i)
{
    float a;
    memcpy(&a, &i, 4);
    return a;
}

#endif
