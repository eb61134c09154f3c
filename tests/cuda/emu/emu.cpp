/* The thread scheduler behind pcu_emu.hpp: a launch runs its blocks one
 * after another; the threads of a block are fibers on stacks of
 * their own, switched only at barriers, so a block runs deterministically
 * in the order pcu_emu_order chose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <ucontext.h>

#include <map>
#include <vector>

#include "cuda_runtime_api.h"
#include "pcu_emu.hpp"
#include "emu_internal.hpp"

#ifdef PCU_EMU_ASAN
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                                size_t *size_old);
#endif

/* A fiber switch. On x86-64 a few instructions (the callee-saved registers,
 * the stack pointer, MXCSR and the x87 control word): ucontext's
 * swapcontext also saves the signal mask, a system call per switch that
 * made it most of the emulation's time. Elsewhere, ucontext. */
#if defined(__x86_64__)
#define PCU_EMU_FAST_SWITCH 1
extern "C" void pcu_emu_swap(void **save_sp, void *load_sp);
__asm__(".pushsection .text\n"
        ".globl pcu_emu_swap\n"
        ".type pcu_emu_swap,@function\n"
        "pcu_emu_swap:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size pcu_emu_swap,.-pcu_emu_swap\n"
        ".popsection\n");
#endif

namespace pcu_emu {

uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;

namespace {

enum { READY, AT_BLOCK, AT_WARP, DONE };

#ifdef PCU_EMU_ASAN
/* the sanitizer clears a stack's shadow at every switch: small stacks keep
 * that cheap (its redzones still fit the kernels' frames) */
const size_t kStack = 128 * 1024;
#else
const size_t kStack = 256 * 1024;
#endif

struct fiber {
#ifdef PCU_EMU_FAST_SWITCH
    void *sp;
#else
    ucontext_t ctx;
#endif
    char *stack;
    int state;
    unsigned warp_mask; /* the mask of the __syncwarp / shuffle it waits in */
    int pred;           /* its __syncthreads_or / _and / _count predicate */
    uint64_t slot;      /* its value in a shuffle */
    uint3 idx;
    void *fake_stack;
};

std::vector<fiber> fibers;
size_t n_stacks;
#ifdef PCU_EMU_FAST_SWITCH
void *sched_sp;
#else
ucontext_t sched;
#endif
fiber *cur;
int cur_id;
body_fn cur_body;
void *cur_ctx;
bool aborted;
bool direct;           /* threads run as plain calls, one after another */
bool barrier_seen;     /* in the block being run */
jmp_buf direct_exit;   /* where a barrier or fail() in direct mode returns */
std::map<const void *, bool> barrier_free; /* per kernel, learned from its first block */
int order_mode;
long n_launches;
cudaError_t last_error = cudaSuccess;
char failure[256];
/* results of the barrier just passed: block reductions and warp snapshots */
int bar_or, bar_and, bar_count;
std::vector<uint64_t> snap;
[[maybe_unused]] const void *sched_bottom;
[[maybe_unused]] size_t sched_size;

void to_scheduler()
{
#ifdef PCU_EMU_ASAN
    __sanitizer_start_switch_fiber(cur->state == DONE ? nullptr : &cur->fake_stack, sched_bottom,
                                   sched_size);
#endif
#ifdef PCU_EMU_FAST_SWITCH
    pcu_emu_swap(&cur->sp, sched_sp);
#else
    swapcontext(&cur->ctx, &sched);
#endif
#ifdef PCU_EMU_ASAN
    __sanitizer_finish_switch_fiber(cur->fake_stack, nullptr, nullptr);
#endif
}

void entry()
{
#ifdef PCU_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
    cur_body(cur_ctx);
    cur->state = DONE;
    to_scheduler();
    abort(); /* a finished fiber is never resumed */
}

void set_failure(const char *what)
{
    if (!aborted)
        snprintf(failure, sizeof failure, "%s (block %u,%u,%u thread %u,%u,%u)", what, block_idx.x,
                 block_idx.y, block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
    aborted = true;
}

void ensure_stacks(size_t n)
{
    if (fibers.size() < n)
        fibers.resize(n);
    for (; n_stacks < n; n_stacks++) {
        void *p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("pcu_emu: mmap");
            abort();
        }
        fibers[n_stacks].stack = (char *)p;
    }
}

void resume(int i)
{
    cur = &fibers[i];
    cur_id = i;
    thread_idx = cur->idx;
#ifdef PCU_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, cur->stack, kStack);
#endif
#ifdef PCU_EMU_FAST_SWITCH
    pcu_emu_swap(&sched_sp, cur->sp);
#else
    swapcontext(&sched, &cur->ctx);
#endif
#ifdef PCU_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

/* the order the fibers of a block of n run in */
void make_order(int n, std::vector<int> &ord)
{
    ord.clear();
    if (order_mode == 1) {
        for (int i = n - 1; i >= 0; i--)
            ord.push_back(i);
    } else { /* 0 (2 goes warp by warp, run_block) */
        for (int i = 0; i < n; i++)
            ord.push_back(i);
    }
}

/* releases warp w when every live lane of it waits in __syncwarp or a
 * shuffle: 1; 0 when not; -1 (the launch failed) on mismatched masks */
int release_warp(int w, int n)
{
    int lo = w * 32, hi = lo + 32 < n ? lo + 32 : n, waiting = 0, live = 0;
    unsigned mask = 0;
    for (int i = lo; i < hi; i++) {
        if (fibers[i].state != DONE)
            live++;
        if (fibers[i].state == AT_WARP) {
            waiting++;
            mask = fibers[i].warp_mask;
        }
    }
    if (!waiting || waiting != live)
        return 0;
    unsigned present = 0;
    for (int i = lo; i < hi; i++)
        if (fibers[i].state == AT_WARP) {
            present |= 1u << (i - lo);
            if (fibers[i].warp_mask != mask) {
                thread_idx = fibers[i].idx;
                set_failure("__syncwarp / shuffle: lanes name different masks");
                return -1;
            }
        }
    if ((mask & ~present) & ((hi - lo) == 32 ? 0xffffffffu : ((1u << (hi - lo)) - 1))) {
        thread_idx = fibers[lo].idx;
        set_failure("__syncwarp / shuffle: a lane of the mask has exited or waits elsewhere");
        return -1;
    }
    for (int i = lo; i < hi; i++) {
        snap[i] = fibers[i].slot;
        if (fibers[i].state == AT_WARP)
            fibers[i].state = READY;
    }
    return 1;
}

/* runs one block to its end; false when it failed */
bool run_block(int n)
{
    for (int i = 0; i < n; i++) {
        fiber &f = fibers[i];
        f.state = READY;
#ifdef PCU_EMU_FAST_SWITCH
        /* the frame pcu_emu_swap pops: MXCSR and x87 control word, six
         * registers, then entry as the return address, with the stack
         * aligned as after a call */
        uint64_t *top = (uint64_t *)(((uintptr_t)f.stack + kStack) & ~(uintptr_t)15);
        top[-1] = 0;
        top[-2] = (uint64_t)(uintptr_t)&entry;
        for (int r = 3; r <= 8; r++)
            top[-r] = 0;
        top[-9] = 0x1f80u | (uint64_t)0x037fu << 32;
        f.sp = top - 9;
#else
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, entry, 0);
#endif
        f.idx.x = (unsigned)i % block_dim.x;
        f.idx.y = (unsigned)i / block_dim.x % block_dim.y;
        f.idx.z = (unsigned)i / (block_dim.x * block_dim.y);
    }
    int nw = (n + 31) / 32;
    static std::vector<int> ord;
    make_order(n, ord);
    for (;;) {
        if (order_mode == 2) {
            /* warps descending, each run ahead through its warp-level waits
             * to the next __syncthreads before the next warp starts: a
             * barrier missing between warps that only shuffles separate
             * shows here */
            for (int w = nw - 1; w >= 0; w--)
                for (;;) {
                    for (int i = w * 32; i < n && i < w * 32 + 32; i++)
                        if (fibers[i].state == READY) {
                            resume(i);
                            if (aborted)
                                return false;
                        }
                    int r = release_warp(w, n);
                    if (r < 0)
                        return false;
                    if (!r)
                        break;
                }
        } else {
            for (int i : ord) {
                if (fibers[i].state == READY) {
                    resume(i);
                    if (aborted)
                        return false;
                }
            }
        }
        int done = 0, at_block = 0;
        for (int i = 0; i < n; i++) {
            done += fibers[i].state == DONE;
            at_block += fibers[i].state == AT_BLOCK;
        }
        if (done == n)
            return true;
        /* warps whose live threads all wait in __syncwarp or a shuffle */
        bool released = false;
        for (int w = 0; w < nw; w++) {
            int r = release_warp(w, n);
            if (r < 0)
                return false;
            released = released || r;
        }
        if (released)
            continue;
        if (at_block == n - done) {
            if (done) {
                for (int i = 0; i < n; i++)
                    if (fibers[i].state == DONE)
                        thread_idx = fibers[i].idx;
                set_failure("__syncthreads after some threads of the block exited");
                return false;
            }
            bar_or = 0;
            bar_and = 1;
            bar_count = 0;
            for (int i = 0; i < n; i++) {
                bar_or |= fibers[i].pred != 0;
                bar_and &= fibers[i].pred != 0;
                bar_count += fibers[i].pred != 0;
                fibers[i].state = READY;
            }
            continue;
        }
        set_failure("deadlock: threads wait at different barriers");
        return false;
    }
}

} // namespace

int lane()
{
    return cur_id % 32;
}

/* a barrier reached by a thread run without a fiber: the launch fails */
void no_fiber(const char *what)
{
    if (!direct)
        return;
    snprintf(failure, sizeof failure,
             "%s in a kernel whose first block passed no barrier (block %u,%u,%u thread "
             "%u,%u,%u): the emulator ran it without fibers and cannot wait here",
             what, block_idx.x, block_idx.y, block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
    aborted = true;
    longjmp(direct_exit, 1);
}

void sync_block()
{
    barrier_seen = true;
    no_fiber("__syncthreads");
    cur->pred = 0;
    cur->state = AT_BLOCK;
    to_scheduler();
}

int sync_block_count(int pred, int how)
{
    barrier_seen = true;
    no_fiber("__syncthreads_or / _and / _count");
    cur->pred = pred;
    cur->state = AT_BLOCK;
    to_scheduler();
    return how == 0 ? bar_or : how == 1 ? bar_and : bar_count;
}

void sync_warp(unsigned mask)
{
    barrier_seen = true;
    no_fiber("__syncwarp or a shuffle");
    cur->warp_mask = mask;
    cur->state = AT_WARP;
    to_scheduler();
}

uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane)
{
    cur->slot = mine;
    sync_warp(mask);
    /* the values as they were when the warp met (snap), not as lanes that
     * ran on since have left them */
    return snap[(size_t)(cur_id / 32 * 32 + src_lane)];
}

void fail(const char *what)
{
    set_failure(what);
    if (direct)
        longjmp(direct_exit, 1);
    cur->state = DONE;
    to_scheduler();
    abort();
}

bool launch_ok(dim3 grid, dim3 block, size_t shared_bytes)
{
    n_launches++;
    uint64_t n = (uint64_t)block.x * block.y * block.z;
    if (!n || block.x > 1024 || block.y > 1024 || block.z > 64 || n > 1024 || !grid.x ||
        !grid.y || !grid.z || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 ||
        shared_bytes > 48 * 1024) {
        snprintf(failure, sizeof failure, "launch of %u x %u x %u blocks of %u x %u x %u threads",
                 grid.x, grid.y, grid.z, block.x, block.y, block.z);
        last_error = cudaErrorInvalidConfiguration;
        return false;
    }
    return true;
}

/* the threads of a block as plain calls; false when one failed */
static bool run_direct(int n)
{
    if (setjmp(direct_exit))
        return false;
    for (int i = 0; i < n; i++) {
        fiber &f = fibers[i];
        f.idx.x = (unsigned)i % block_dim.x;
        f.idx.y = (unsigned)i / block_dim.x % block_dim.y;
        f.idx.z = (unsigned)i / (block_dim.x * block_dim.y);
        cur = &f;
        cur_id = i;
        thread_idx = f.idx;
        cur_body(cur_ctx);
    }
    return true;
}

void run(dim3 grid, dim3 block, size_t shared_bytes, body_fn body, void *ctx, const void *kernel)
{
    (void)shared_bytes;
    uint64_t n = (uint64_t)block.x * block.y * block.z;
    ensure_stacks((size_t)n);
    snap.assign((size_t)(n + 31) / 32 * 32, 0);
    block_dim = block;
    grid_dim = grid;
    cur_body = body;
    cur_ctx = ctx;
    aborted = false;
    auto known = barrier_free.find(kernel);
    bool fast = known != barrier_free.end() && known->second;
    device_open(true);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                block_idx = uint3{x, y, z};
                barrier_seen = false;
                direct = fast;
                bool ok = direct ? run_direct((int)n) : run_block((int)n);
                direct = false;
                if (!ok) {
                    fprintf(stderr, "pcu_emu: %s\n", failure);
                    last_error = cudaErrorLaunchFailure;
                    device_open(false);
                    return;
                }
                if (!fast) { /* what the first block taught */
                    fast = !barrier_seen;
                    barrier_free[kernel] = fast;
                }
            }
    device_open(false);
}

void set_error(cudaError_t e)
{
    last_error = e;
}

} // namespace pcu_emu

extern "C" cudaError_t cudaGetLastError(void)
{
    cudaError_t e = pcu_emu::last_error;
    pcu_emu::last_error = cudaSuccess;
    return e;
}

extern "C" cudaError_t cudaPeekAtLastError(void)
{
    return pcu_emu::last_error;
}

extern "C" void pcu_emu_order(int order)
{
    pcu_emu::order_mode = order;
}

extern "C" long pcu_emu_launches(void)
{
    return pcu_emu::n_launches;
}

extern "C" const char *pcu_emu_failure(void)
{
    return pcu_emu::failure;
}
