/* Fixed pool of worker threads; one parallel_for at a time per pool.
 *
 * Kernels call parallel_for many times per run, often for a few
 * microseconds of work each, so a worker that finished a job first spins
 * a little (POOL_SPIN checks of the job counter) before it sleeps on the
 * condition variable, and so does the caller waiting for the workers: the
 * next job then starts without a futex wake-up. The counters spun on are
 * written under the mutex and read atomically outside it. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "exec/threadpool.h"
#include "pare/exec.h"

struct pare_threadpool {
    int n;                 /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    /* current job */
    pare_range_fn fn;
    void *ctx;
    int64_t n_items, chunk, next;
    int active;            /* workers still inside the current job */
    unsigned long generation;
    int quit;
    int busy;              /* a job is running (nested calls run inline) */
};

static _Thread_local int in_pool_job;

/* checks of a counter before sleeping (a pause each: some 5-20 us; long
 * enough to bridge back-to-back jobs, short enough not to steal much from
 * other work on a loaded machine) */
#define POOL_SPIN 300

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

int pare_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void run_chunks(pare_threadpool *p)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int64_t b = p->next;
        if (b >= p->n_items) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        int64_t e = b + p->chunk < p->n_items ? b + p->chunk : p->n_items;
        p->next = e;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, b, e);
    }
}

static void *worker(void *arg)
{
    pare_threadpool *p = arg;
    unsigned long seen = 0;
    in_pool_job = 1;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (!p->quit && p->generation == seen) {
            pthread_mutex_unlock(&p->mu);
            for (int i = 0; i < POOL_SPIN; i++) {
                if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) != seen ||
                    __atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
                    break;
                cpu_relax();
            }
            pthread_mutex_lock(&p->mu);
        }
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p);
        pthread_mutex_lock(&p->mu);
        if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_RELEASE) == 0)
            pthread_cond_signal(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

pare_threadpool *pare_threadpool_new(int n_threads)
{
    if (n_threads <= 0)
        n_threads = pare_cpu_count();
    pare_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
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
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
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
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->chunk = grain;
    p->next = 0;
    p->active = p->n - 1;
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    in_pool_job = 1;
    run_chunks(p);
    in_pool_job = 0;
    for (int i = 0; i < POOL_SPIN && __atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0; i++)
        cpu_relax();
    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    p->busy = 0;
    pthread_mutex_unlock(&p->mu);
}
