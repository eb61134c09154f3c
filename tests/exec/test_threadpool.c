/* The kernels' thread pool: every item of every job is run exactly once,
 * whatever the pool size, grain and spin setting (PARE_POOL_SPIN_US=0 makes
 * idle threads sleep at once, so each job goes through the sleep/wake-up
 * handshake); the writes of a job are visible to the caller when
 * parallel_for returns; nested calls and calls from a second thread while
 * the pool is busy run inline and still cover their range. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "exec/threadpool.h"

typedef struct count_job {
    int *hits;    /* per item, atomic */
    int64_t *sum; /* plain writes, one per item: checked after the call */
    int64_t nested; /* > 0: each range also runs a nested job of this size */
    pare_threadpool *pool;
} count_job;

static void count_range(void *ctx, int64_t b, int64_t e)
{
    count_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        __atomic_add_fetch(&j->hits[i], 1, __ATOMIC_RELAXED);
        j->sum[i] = i * 3 + 1;
    }
    if (j->nested > 0) {
        int *h = calloc((size_t)j->nested, sizeof *h);
        int64_t *s = calloc((size_t)j->nested, sizeof *s);
        assert_non_null(h);
        assert_non_null(s);
        count_job in = {h, s, 0, j->pool};
        pare_parallel_for(j->pool, j->nested, 1, count_range, &in);
        for (int64_t i = 0; i < j->nested; i++)
            assert_int_equal(h[i], 1);
        free(h);
        free(s);
    }
}

static void run_jobs(pare_threadpool *pool, int jobs, int64_t nested)
{
    for (int r = 0; r < jobs; r++) {
        int64_t n = 1 + (r * 37) % 500, grain = 1 + r % 7;
        int *hits = calloc((size_t)n, sizeof *hits);
        int64_t *sum = calloc((size_t)n, sizeof *sum);
        assert_non_null(hits);
        assert_non_null(sum);
        count_job j = {hits, sum, nested, pool};
        pare_parallel_for(pool, n, grain, count_range, &j);
        for (int64_t i = 0; i < n; i++) {
            assert_int_equal(hits[i], 1);
            assert_true(sum[i] == i * 3 + 1);
        }
        free(hits);
        free(sum);
    }
}

static void test_every_item_once(void **state)
{
    (void)state;
    const char *spins[] = {"0", "50", NULL};
    for (int si = 0; si < 3; si++) {
        if (spins[si])
            setenv("PARE_POOL_SPIN_US", spins[si], 1);
        else
            unsetenv("PARE_POOL_SPIN_US");
        for (int t = 1; t <= 4; t++) {
            pare_threadpool *pool = pare_threadpool_new(t);
            assert_non_null(pool);
            assert_int_equal(pare_threadpool_size(pool), t);
            run_jobs(pool, 300, 0);
            /* a gap longer than the spin: the workers fall asleep, and the
             * next job must wake them */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            run_jobs(pool, 20, 0);
            pare_threadpool_free(pool);
        }
    }
    unsetenv("PARE_POOL_SPIN_US");
}

static void test_nested_inline(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(3);
    assert_non_null(pool);
    run_jobs(pool, 40, 17);
    pare_threadpool_free(pool);
}

static void *second_caller(void *arg)
{
    run_jobs(arg, 200, 0);
    return NULL;
}

static void test_two_callers(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(2);
    assert_non_null(pool);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, second_caller, pool), 0);
    run_jobs(pool, 200, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pare_threadpool_free(pool);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    int hits[5] = {0};
    int64_t sum[5] = {0};
    count_job j = {hits, sum, 0, NULL};
    pare_parallel_for(NULL, 5, 1, count_range, &j); /* no pool: inline */
    pare_parallel_for(NULL, 0, 1, count_range, &j); /* nothing */
    for (int i = 0; i < 5; i++)
        assert_int_equal(hits[i], 1);
    assert_int_equal(pare_threadpool_size(NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once),
        cmocka_unit_test(test_nested_inline),
        cmocka_unit_test(test_two_callers),
        cmocka_unit_test(test_empty_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
