/* Fixed pool of worker threads; one parallel_for at a time per pool.
 *
 * Kernels call parallel_for many times per run, often for a few tens of
 * microseconds of work each, with short serial stretches between them (a
 * Concat, a small op). A futex wake-up costs about as much as such a job on
 * a virtual machine, so an idle worker first spins on the job counter for up
 * to POOL_SPIN_NS, pausing, and calls sched_yield every few hundred pauses
 * so that another runnable thread (another process on a loaded machine)
 * still gets the core; only then does it sleep on the condition variable.
 * The caller waiting for the last chunk does the same. Chunks are handed out
 * with atomic counters, not under the mutex: each thread first takes the
 * chunks of its own contiguous share of the items (thread t of n: the t-th
 * n-th), then helps with the others' shares. Consecutive loops over the
 * same items (a conv's output columns, then the next conv's) so keep each
 * part of a tensor in the cache of the core that wrote it, and a thread
 * that starts late still gets its work done by the others.
 *
 * Sleeping and waking without a lost wake-up: a worker announces itself in
 * `sleepers` (sequentially consistent) before it checks the job counter a
 * last time under the mutex; the caller publishes the job counter
 * (sequentially consistent) before it reads `sleepers`. One of the two sees
 * the other's write, so either the worker finds the job or the caller
 * broadcasts (under the mutex, which the worker holds until it waits). The
 * same handshake covers `caller_waits` and `active` at the end of a job. */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "exec/threadpool.h"
#include "pare/exec.h"

/* one thread's share of the current job, in chunks (own cache line) */
typedef struct share {
    int64_t next, end; /* next: atomic */
    char pad[48];
} share;

typedef struct worker_arg {
    struct pare_threadpool *p;
    int idx; /* 1..n-1; the caller is 0 */
} worker_arg;

struct pare_threadpool {
    int n;                 /* threads including the caller */
    pthread_t *threads;
    worker_arg *args;
    share *shares;         /* n */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    /* current job: written by the caller before generation is bumped */
    pare_range_fn fn;
    void *ctx;
    int64_t n_items, chunk;
    unsigned long active;  /* atomic: workers still inside the current job */
    unsigned long generation; /* atomic: bumped once per job */
    int sleepers;          /* atomic: workers asleep (or about to be) on cv_work */
    int caller_waits;      /* atomic: the caller sleeps (or is about to) on cv_done */
    int quit;              /* atomic */
    int busy;              /* under mu: a job is running (nested calls run inline) */
    int64_t spin_ns;       /* how long an idle thread spins before it sleeps */
};

static _Thread_local int in_pool_job;

/* how long an idle thread spins before sleeping: long enough to bridge the
 * serial stretches between a run's parallel loops, short enough that a pool
 * between runs sleeps almost at once; PARE_POOL_SPIN_US overrides it */
#define POOL_SPIN_NS 400000
/* pauses between clock reads, and clock reads between sched_yield calls */
#define POOL_SPIN_PAUSES 64
#define POOL_SPIN_YIELD 4

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pare_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Spins until *word != val (or quit) for at most p->spin_ns; true when it changed. */
static bool spin_until_changed(const pare_threadpool *p, const unsigned long *word,
                               unsigned long val)
{
    if (p->spin_ns <= 0)
        return false;
    int64_t start = 0;
    for (unsigned rounds = 0;; rounds++) {
        for (int i = 0; i < POOL_SPIN_PAUSES; i++) {
            if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val || __atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
                return true;
            cpu_relax();
        }
        int64_t t = now_ns();
        if (rounds == 0)
            start = t;
        else if (t - start > p->spin_ns)
            return false;
        if (rounds % POOL_SPIN_YIELD == POOL_SPIN_YIELD - 1)
            sched_yield();
    }
}

/* Thread `self`'s own share first, then the others' in turn. */
static void run_chunks(pare_threadpool *p, int self)
{
    int64_t chunk = p->chunk, n = p->n_items;
    for (int k = 0; k < p->n; k++) {
        share *sh = &p->shares[(self + k) % p->n];
        for (;;) {
            int64_t c = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED);
            if (c >= sh->end)
                break;
            int64_t b = c * chunk;
            p->fn(p->ctx, b, b + chunk < n ? b + chunk : n);
        }
    }
}

static void *worker(void *arg)
{
    pare_threadpool *p = ((worker_arg *)arg)->p;
    int self = ((worker_arg *)arg)->idx;
    unsigned long seen = 0;
    in_pool_job = 1;
    for (;;) {
        if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen &&
            !__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE) &&
            !spin_until_changed(p, &p->generation, seen)) {
            pthread_mutex_lock(&p->mu);
            __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while (!__atomic_load_n(&p->quit, __ATOMIC_SEQ_CST) &&
                   __atomic_load_n(&p->generation, __ATOMIC_SEQ_CST) == seen)
                pthread_cond_wait(&p->cv_work, &p->mu);
            __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
        }
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
            break;
        seen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        run_chunks(p, self);
        if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_SEQ_CST) == 0 &&
            __atomic_load_n(&p->caller_waits, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Frees p and what it holds; its workers are gone (joined or never started). */
static void pool_destroy(pare_threadpool *p)
{
    free(p->threads);
    free(p->args);
    free(p->shares);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

pare_threadpool *pare_threadpool_new(int n_threads)
{
    if (n_threads <= 0)
        n_threads = pare_cpu_count();
    pare_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    p->spin_ns = POOL_SPIN_NS;
    const char *e = getenv("PARE_POOL_SPIN_US");
    if (e && *e) {
        char *end;
        long long us = strtoll(e, &end, 10);
        if (*end == '\0' && us >= 0 && us <= 1000000)
            p->spin_ns = (int64_t)us * 1000;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
        if (posix_memalign((void **)&p->shares, 64, (size_t)n_threads * sizeof *p->shares))
            p->shares = NULL;
        if (!p->threads || !p->args || !p->shares) {
            pool_destroy(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i].p = p;
            p->args[i].idx = i + 1;
            if (pthread_create(&p->threads[i], NULL, worker, &p->args[i]) != 0) {
                p->n = i + 1;
                break;
            }
        }
    }
    return p;
}

void pare_threadpool_free(pare_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->quit, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++)
        pthread_join(p->threads[i], NULL);
    pool_destroy(p);
}

int pare_threadpool_size(const pare_threadpool *p)
{
    return p ? p->n : 1;
}

void pare_parallel_for(pare_threadpool *p, int64_t n, int64_t grain, pare_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->n <= 1 || n <= grain || in_pool_job) {
        fn(ctx, 0, n);
        return;
    }
    int64_t chunks = (n + grain - 1) / grain;
    int64_t per = (n + (int64_t)p->n * 4 - 1) / ((int64_t)p->n * 4);
    if (chunks > (int64_t)p->n * 4)
        grain = per > grain ? per : grain;
    pthread_mutex_lock(&p->mu);
    if (p->busy) { /* another thread's job holds the pool: run inline */
        pthread_mutex_unlock(&p->mu);
        fn(ctx, 0, n);
        return;
    }
    p->busy = 1;
    pthread_mutex_unlock(&p->mu);
    /* no worker is inside a job now (the last one ended with active 0), so
     * the job's fields can be written before the generation is bumped */
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->chunk = grain;
    int64_t nch = (n + grain - 1) / grain;
    for (int t = 0; t < p->n; t++) {
        __atomic_store_n(&p->shares[t].next, nch * t / p->n, __ATOMIC_RELAXED);
        p->shares[t].end = nch * (t + 1) / p->n;
    }
    __atomic_store_n(&p->active, (unsigned long)p->n - 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    in_pool_job = 1;
    run_chunks(p, 0);
    in_pool_job = 0;
    for (unsigned long a; (a = __atomic_load_n(&p->active, __ATOMIC_ACQUIRE)) > 0;)
        if (!spin_until_changed(p, &p->active, a))
            break; /* sleep below */
    if (__atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->caller_waits, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->active, __ATOMIC_SEQ_CST) > 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        __atomic_store_n(&p->caller_waits, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->busy = 0;
    pthread_mutex_unlock(&p->mu);
}
