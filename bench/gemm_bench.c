/* GEMM microbenchmark of the CPU executor's portable kernels.
 *
 * For each shape M x N x K (M = output channels, N = pixels, K = Cin*kh*kw
 * for a convolution) it times C = A * B with A pre-packed (the way Conv runs
 * with constant weights) and plain pare_sgemm (A packed or read per call),
 * single-threaded on per-thread CPU time (CLOCK_THREAD_CPUTIME_ID: robust on
 * a shared machine) and on a pool of --threads threads on wall time (the
 * fastest of ~2 ms batches either way), and
 * prints GFLOP/s next to the machine's measured per-core FMA peak. Every
 * result is checked against a double-precision reference first; the exit
 * status is 1 when one is off.
 *
 * Not installed; built by meson as bench/gemm_bench in the build tree.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "exec/gemm.h"
#include "exec/threadpool.h"

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* Per-core float32 FMA peak in GFLOP/s, measured: 16 independent chains of
 * vector FMAs (enough to cover latency x ports). */
__attribute__((target("avx512f"))) static double peak_avx512(double secs)
{
    __m512 acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_set1_ps((float)i);
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    double best = 1e30, t0 = now(CLOCK_THREAD_CPUTIME_ID);
    do {
        double b0 = now(CLOCK_THREAD_CPUTIME_ID);
        for (int r = 0; r < 20000; r++) {
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                acc[i] = _mm512_fmadd_ps(acc[i], m, a);
        }
        double dt = now(CLOCK_THREAD_CPUTIME_ID) - b0;
        if (dt < best)
            best = dt;
    } while (now(CLOCK_THREAD_CPUTIME_ID) - t0 < secs);
    float sink = 0;
    for (int i = 0; i < 16; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    if (sink == 12345.0f)
        puts("");
    return 20000.0 * 16 * 16 * 2 / best * 1e-9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(double secs)
{
    __m256 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    double best = 1e30, t0 = now(CLOCK_THREAD_CPUTIME_ID);
    do {
        double b0 = now(CLOCK_THREAD_CPUTIME_ID);
        for (int r = 0; r < 20000; r++) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; i++)
                acc[i] = _mm256_fmadd_ps(acc[i], m, a);
        }
        double dt = now(CLOCK_THREAD_CPUTIME_ID) - b0;
        if (dt < best)
            best = dt;
    } while (now(CLOCK_THREAD_CPUTIME_ID) - t0 < secs);
    float s[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(s, acc[i]);
        sink += s[0];
    }
    if (sink == 12345.0f)
        puts("");
    return 20000.0 * 12 * 8 * 2 / best * 1e-9;
}
#endif

static double peak_core(const char *arch, double secs)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!strncmp(arch, "avx512", 6))
        return peak_avx512(secs);
    if (!strcmp(arch, "avx2"))
        return peak_avx2(secs);
#endif
    (void)arch;
    (void)secs;
    return 0.0;
}

typedef struct shape {
    long M, N, K;
    const char *what;
} shape;

static const shape default_shapes[] = {
    {64, 3136, 576, "resnet50 3x3 conv2_x"},
    {256, 3136, 64, "resnet50 1x1 expand conv2_x"},
    {64, 3136, 256, "resnet50 1x1 reduce conv2_x"},
    {128, 784, 1152, "resnet50 3x3 conv3_x"},
    {256, 784, 128, "resnet50 1x1 conv3_x"},
    {256, 196, 2304, "resnet50 3x3 conv4_x"},
    {1024, 196, 256, "resnet50 1x1 conv4_x"},
    {512, 49, 4608, "resnet50 3x3 conv5_x"},
    {2048, 49, 512, "resnet50 1x1 conv5_x"},
    {32, 784, 1152, "densenet121 3x3 growth"},
    {128, 784, 512, "densenet121 1x1 bottleneck"},
    {64, 2916, 144, "squeezenet 3x3 expand"},
    {16, 2916, 128, "squeezenet 1x1 squeeze"},
    {64, 64, 64, "transformer 64x64x64"},
    {128, 256, 64, "transformer 128x256x64"},
    {64, 256, 256, "transformer 64x256x256"},
};

/* C = A * B in double, checked against C32; returns the max error relative
 * to the largest |reference| value. */
static double check(long M, long N, long K, const float *A, const float *B, const float *C)
{
    double err = 0, big = 1e-30;
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            double s = 0;
            for (long k = 0; k < K; k++)
                s += (double)A[i * K + k] * (double)B[k * N + j];
            double e = fabs(s - (double)C[i * N + j]);
            if (e > err)
                err = e;
            if (fabs(s) > big)
                big = fabs(s);
        }
    return err / big;
}

static int usage(FILE *f, int rc)
{
    fputs("usage: gemm_bench [--ms MS] [--threads N] [--arch NAME] [--shape MxNxK]...\n"
          "Times the portable float32 GEMM on convolution and transformer shapes.\n"
          "  --ms MS       time per measurement in milliseconds (default 300)\n"
          "  --threads N   threads of the parallel measurement (default 2; 1: skip it)\n"
          "  --arch NAME   kernel to force (avx512, avx512x8, avx2, generic)\n"
          "  --shape MxNxK a shape to time instead of the built-in list (repeatable)\n"
          "Single-thread GFLOP/s are measured on thread CPU time, parallel ones on\n"
          "wall time. Exits 1 when a result differs from a double reference.\n",
          f);
    return rc;
}

/* Runs fn for about `secs` of clock `clk`, in batches of ~2 ms, and returns
 * the seconds per call of the fastest batch: on a machine shared with other
 * work the fastest batch is the one least disturbed. */
typedef int (*run_fn)(void *ctx);
static double timeit(run_fn fn, void *ctx, clockid_t clk, double secs)
{
    if (fn(ctx)) /* warm up (scratch buffers, caches) */
        return -1;
    double t1 = now(clk);
    if (fn(ctx))
        return -1;
    double one = now(clk) - t1;
    long per = one > 0 ? (long)(2e-3 / one) : 1000;
    if (per < 1)
        per = 1;
    double best = 1e30, t0 = now(clk);
    do {
        double b0 = now(clk);
        for (long i = 0; i < per; i++)
            if (fn(ctx))
                return -1;
        double dt = (now(clk) - b0) / (double)per;
        if (dt < best)
            best = dt;
    } while (now(clk) - t0 < secs);
    return best;
}

typedef struct run_ctx {
    pare_threadpool *pool;
    const pare_sgemm_packed_a *pa;
    long M, N, K;
    const float *A, *B;
    float *C;
} run_ctx;

static int run_packed(void *v)
{
    run_ctx *r = v;
    return pare_sgemm_packed(r->pool, r->pa, false, r->N, r->B, r->N, 0.0f, NULL, r->C, r->N) !=
           PARE_OK;
}

static int run_plain(void *v)
{
    run_ctx *r = v;
    return pare_sgemm(r->pool, false, false, r->M, r->N, r->K, 1.0f, r->A, r->K, r->B, r->N, 0.0f,
                      r->C, r->N) != PARE_OK;
}

int main(int argc, char **argv)
{
    double ms = 300;
    int threads = 2;
    shape *shapes = NULL;
    size_t n_shapes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout, 0);
        if (i + 1 >= argc)
            return usage(stderr, 2);
        if (!strcmp(argv[i], "--ms")) {
            ms = atof(argv[++i]);
            if (!(ms > 0))
                return usage(stderr, 2);
        } else if (!strcmp(argv[i], "--threads")) {
            threads = atoi(argv[++i]);
            if (threads < 1)
                return usage(stderr, 2);
        } else if (!strcmp(argv[i], "--arch")) {
            if (!pare_sgemm_force_arch(argv[++i])) {
                fprintf(stderr, "gemm_bench: kernel %s cannot run here\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--shape")) {
            shape s = {0, 0, 0, "custom"};
            if (sscanf(argv[++i], "%ldx%ldx%ld", &s.M, &s.N, &s.K) != 3 || s.M < 1 || s.N < 1 ||
                s.K < 1)
                return usage(stderr, 2);
            shape *p = realloc(shapes, (n_shapes + 1) * sizeof *p);
            if (!p)
                return 2;
            shapes = p;
            shapes[n_shapes++] = s;
        } else {
            return usage(stderr, 2);
        }
    }
    const shape *list = shapes ? shapes : default_shapes;
    size_t count = shapes ? n_shapes : sizeof default_shapes / sizeof *default_shapes;
    double secs = ms * 1e-3;
    const char *arch = pare_sgemm_arch();
    double peak = peak_core(arch, secs);
    printf("kernel %s%s, per-core FMA peak %.1f GFLOP/s (measured), %d-thread peak %.1f\n", arch,
           pare_sgemm_uses_blas() ? " (pare_sgemm goes to CBLAS)" : "", peak, threads,
           peak * threads);
    printf("%-32s %16s %9s %9s %6s %9s %9s\n", "shape", "MxNxK", "packed1", "plain1", "%peak",
           "packedT", "plainT");
    pare_threadpool *pool = threads > 1 ? pare_threadpool_new(threads) : NULL;
    int bad = 0;
    for (size_t si = 0; si < count; si++) {
        const shape *s = &list[si];
        float *A = malloc(sizeof(float) * (size_t)(s->M * s->K));
        float *B = malloc(sizeof(float) * (size_t)(s->K * s->N));
        float *C = malloc(sizeof(float) * (size_t)(s->M * s->N));
        if (!A || !B || !C)
            return 2;
        srand(7);
        for (long i = 0; i < s->M * s->K; i++)
            A[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        for (long i = 0; i < s->K * s->N; i++)
            B[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        pare_sgemm_packed_a *pa = NULL;
        if (pare_sgemm_pack_a(false, s->M, s->K, 1.0f, A, s->K, &pa) != PARE_OK)
            return 2;
        run_ctx r = {NULL, pa, s->M, s->N, s->K, A, B, C};
        double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;
        /* correctness of both paths, single and multi-threaded */
        double e1, e2, e3 = 0;
        run_packed(&r);
        e1 = check(s->M, s->N, s->K, A, B, C);
        run_plain(&r);
        e2 = check(s->M, s->N, s->K, A, B, C);
        if (pool) {
            r.pool = pool;
            run_packed(&r);
            e3 = check(s->M, s->N, s->K, A, B, C);
            r.pool = NULL;
        }
        double tol = 1e-5 * sqrt((double)s->K);
        if (e1 > tol || e2 > tol || e3 > tol) {
            fprintf(stderr, "gemm_bench: %ldx%ldx%ld wrong: relative error %g %g %g\n", s->M,
                    s->N, s->K, e1, e2, e3);
            bad = 1;
        }
        double tp1 = timeit(run_packed, &r, CLOCK_THREAD_CPUTIME_ID, secs);
        double tq1 = timeit(run_plain, &r, CLOCK_THREAD_CPUTIME_ID, secs);
        double tpt = 0, tqt = 0;
        if (pool) {
            r.pool = pool;
            tpt = timeit(run_packed, &r, CLOCK_MONOTONIC, secs);
            tqt = timeit(run_plain, &r, CLOCK_MONOTONIC, secs);
        }
        char dims[48];
        snprintf(dims, sizeof dims, "%ldx%ldx%ld", s->M, s->N, s->K);
        double gp1 = flop / tp1 * 1e-9;
        printf("%-32s %16s %9.1f %9.1f %5.0f%% %9.1f %9.1f\n", s->what, dims, gp1,
               flop / tq1 * 1e-9, peak > 0 ? 100 * gp1 / peak : 0.0,
               pool ? flop / tpt * 1e-9 : 0.0, pool ? flop / tqt * 1e-9 : 0.0);
        fflush(stdout);
        pare_sgemm_packed_a_free(pa);
        free(A);
        free(B);
        free(C);
    }
    printf("GFLOP/s; packed1/plain1: 1 thread (CPU time); packedT/plainT: %d threads (wall); "
           "%%peak: packed1 / per-core peak\n",
           threads);
    pare_threadpool_free(pool);
    free(shapes);
    return bad;
}
