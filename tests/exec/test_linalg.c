/* test_linalg.c - the GEMM core and the linear-algebra kernel family.
 *
 * GEMM: every portable microkernel this CPU can run (generic, AVX2, AVX-512)
 * against a double-precision reference over awkward sizes, transposes,
 * leading dimensions, alpha/beta (beta 0 must not read C) and thread counts;
 * pare_sgemm's dispatch (CBLAS or not) against the portable path; packed A,
 * bias, and the implicit-im2col convolution GEMM.
 * Kernels (run through their records, no session): Conv in all its paths
 * (packed initializer weights, groups, depthwise, 1-D/3-D, float16, double)
 * against a naive convolution, ConvTranspose, MatMul broadcasting and
 * integer wrap-around, Gemm's C broadcast, MaxPool indices and storage
 * order, AveragePool padding counts, LayerNormalization's extra outputs,
 * BatchNormalization training outputs, Einsum (diagonals, ellipsis,
 * implicit output, integers, three operands), Det, and error paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/kernel.h"
#include "exec/gemm.h"
#include "pare/ir.h"

/* ---- helpers ---- */

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static float *frand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static void ref_gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(tA ? A[k * lda + i] : A[i * lda + k]) *
                     (double)(tB ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)(beta == 0.0f ? alpha * s : alpha * s + beta * C[i * ldc + j]);
        }
}

static void expect_close(const float *got, const float *want, size_t n, double tol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol * (1.0 + fabs((double)want[i]))))
            fail_msg("%s: element %zu is %g, expected %g", what, i, got[i], want[i]);
    }
}

/* ---- GEMM core ---- */

typedef struct gcase {
    int64_t M, N, K;
} gcase;

static const gcase gcases[] = {
    {1, 1, 1},      {3, 5, 7},      {17, 33, 65},  {8, 32, 256}, {9, 31, 257},
    {64, 200, 96},  {1, 300, 70},   {300, 1, 70},  {70, 90, 1},  {2, 2, 3000},
    {130, 70, 600}, {40, 1000, 40}, {520, 7, 300}, {100, 16, 200}, {33, 9, 70},
};

typedef pare_status (*sgemm_fn)(pare_threadpool *, bool, bool, int64_t, int64_t, int64_t, float,
                                const float *, int64_t, const float *, int64_t, float, float *,
                                int64_t);

/* Every case, transpose combination and alpha/beta pair through fn. */
static void check_gemm_fn(sgemm_fn fn, pare_threadpool *pool, const char *label)
{
    for (size_t c = 0; c < sizeof gcases / sizeof *gcases; c++)
        for (int t = 0; t < 4; t++)
            for (int ab = 0; ab < 3; ab++) {
                int64_t M = gcases[c].M, N = gcases[c].N, K = gcases[c].K;
                bool tA = t & 1, tB = t & 2;
                int64_t lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 5;
                float alpha = ab == 1 ? -0.75f : 1.0f, beta = ab == 0   ? 0.0f
                                                              : ab == 1 ? 0.5f
                                                                        : 1.0f;
                float *A = frand_buf((size_t)((tA ? K : M) * lda));
                float *B = frand_buf((size_t)((tB ? N : K) * ldb));
                float *C = frand_buf((size_t)(M * ldc));
                float *R = malloc((size_t)(M * ldc) * sizeof *R);
                assert_non_null(R);
                memcpy(R, C, (size_t)(M * ldc) * sizeof *R);
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++)
                            C[i * ldc + j] = NAN; /* must not be read */
                assert_int_equal(fn(pool, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc),
                                 PARE_OK);
                ref_gemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
                char what[128];
                snprintf(what, sizeof what, "%s %lldx%lldx%lld tA%d tB%d ab%d", label, (long long)M,
                         (long long)N, (long long)K, tA, tB, ab);
                for (int64_t i = 0; i < M; i++) {
                    expect_close(C + i * ldc, R + i * ldc, (size_t)N, 1e-4 * sqrt((double)K) + 1e-5,
                                 what);
                    /* the padding between rows is untouched */
                    for (int64_t j = N; j < ldc && i + 1 < M; j++)
                        if (memcmp(&C[i * ldc + j], &R[i * ldc + j], sizeof(float)))
                            fail_msg("%s: wrote outside C at row %lld", what, (long long)i);
                }
                free(A);
                free(B);
                free(C);
                free(R);
            }
}

static void test_sgemm_portable_all_arches(void **state)
{
    (void)state;
    const char *orig = pare_sgemm_arch();
    static const char *const arches[] = {"generic", "avx2", "avx512", "avx512x8"};
    int threads[] = {1, 3};
    for (size_t a = 0; a < 4; a++) {
        if (!pare_sgemm_force_arch(arches[a]))
            continue;
        for (int t = 0; t < 2; t++) {
            pare_threadpool *pool = pare_threadpool_new(threads[t]);
            assert_non_null(pool);
            check_gemm_fn(pare_sgemm_portable, pool, arches[a]);
            pare_threadpool_free(pool);
        }
    }
    assert_true(pare_sgemm_force_arch(orig));
}

static void test_sgemm_dispatch(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(2);
    check_gemm_fn(pare_sgemm, pool, pare_sgemm_uses_blas() ? "cblas" : "portable");
    /* K = 0 scales C by beta; alpha = 0 too */
    float C[4] = {1, 2, 3, 4};
    assert_int_equal(pare_sgemm(pool, false, false, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 2.0f, C, 2),
                     PARE_OK);
    assert_true(C[0] == 2 && C[3] == 8);
    pare_threadpool_free(pool);
}

static void test_sgemm_packed_bias(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(3);
    int64_t M = 37, K = 300, N = 150;
    for (int tA = 0; tA < 2; tA++) {
        float *A = frand_buf((size_t)(M * K)), *B = frand_buf((size_t)(K * N));
        float *bias = frand_buf((size_t)M), *C = frand_buf((size_t)(M * N));
        float *R = malloc((size_t)(M * N) * sizeof *R);
        memcpy(R, C, (size_t)(M * N) * sizeof *R);
        pare_sgemm_packed_a *pa;
        assert_int_equal(pare_sgemm_pack_a(tA, M, K, 2.0f, A, tA ? M : K, &pa), PARE_OK);
        pare_gemm_epi epi = {bias, -INFINITY, INFINITY};
        assert_int_equal(pare_sgemm_packed(pool, pa, false, N, B, N, 0.5f, &epi, C, N), PARE_OK);
        ref_gemm(tA, false, M, N, K, 2.0f, A, tA ? M : K, B, N, 0.5f, R, N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                R[i * N + j] += bias[i];
        expect_close(C, R, (size_t)(M * N), 2e-4 * sqrt((double)K), "packed");
        pare_sgemm_packed_a_free(pa);
        free(A);
        free(B);
        free(bias);
        free(C);
        free(R);
    }
    pare_threadpool_free(pool);
}

/* The fused epilogue in double: act(v + bias + residual) */
static double ref_act(int act, double x, double a, double b)
{
    switch (act) {
    case PARE_GEMM_ACT_RELU:
        return x < 0 ? 0 : x;
    case PARE_GEMM_ACT_CLIP:
        return x < a ? a : x > b ? b : x;
    case PARE_GEMM_ACT_LEAKY_RELU:
        return x < 0 ? a * x : x;
    case PARE_GEMM_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case PARE_GEMM_ACT_HARDSIGMOID: {
        double t = a * x + b;
        return t < 0 ? 0 : t > 1 ? 1 : t;
    }
    case PARE_GEMM_ACT_HARDSWISH: {
        double t = a * x + b;
        return x * (t < 0 ? 0 : t > 1 ? 1 : t);
    }
    case PARE_GEMM_ACT_TANH:
        return tanh(x);
    case PARE_GEMM_ACT_GELU:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    default:
        return x;
    }
}

static void ref_epilogue(int64_t M, int64_t N, const pare_gemm_epilogue *ep, float *R, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double v = R[i * ldc + j];
            if (ep->bias)
                v += ep->bias[ep->bias_axis ? j : i];
            if (ep->residual)
                v += ep->residual[i * ep->ldr + j];
            R[i * ldc + j] = (float)ref_act(ep->act, v, ep->act_alpha, ep->act_beta);
        }
}

/* pare_sgemm_ex / pare_sgemm_packed_ex over odd sizes, transposes,
 * alpha/beta, every activation, both bias axes and a residual, on every
 * kernel this CPU runs, against a double reference. */
static void test_sgemm_epilogue(void **state)
{
    (void)state;
    static const gcase cases[] = {{1, 1, 1},    {1, 33, 7},   {7, 1, 33},   {7, 33, 1000},
                                  {33, 1000, 7}, {13, 37, 300}, {64, 200, 96}, {25, 50, 513},
                                  {130, 70, 33}, {29, 13, 150}, {40, 16, 64}};
    const char *orig = pare_sgemm_arch();
    static const char *const arches[] = {"generic", "avx2", "avx512", "avx512x8"};
    pare_threadpool *pool = pare_threadpool_new(2);
    for (size_t a = 0; a < 4; a++) {
        if (!pare_sgemm_force_arch(arches[a]))
            continue;
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
            for (int v = 0; v < 18; v++) {
                int64_t M = cases[c].M, N = cases[c].N, K = cases[c].K;
                bool tA = v & 1, tB = (v >> 1) & 1;
                /* every activation, each with two transpose pairs; GELU twice */
                int act = v < 16 ? v % 8 : PARE_GEMM_ACT_GELU;
                float alpha = v & 4 ? -0.5f : 1.0f, beta = v & 8 ? 0.75f : 0.0f;
                int64_t lda = (tA ? M : K) + 1, ldb = (tB ? K : N) + 2, ldc = N + 3, ldr = N + 4;
                float *A = frand_buf((size_t)((tA ? K : M) * lda));
                float *B = frand_buf((size_t)((tB ? N : K) * ldb));
                float *C = frand_buf((size_t)(M * ldc));
                float *R = malloc((size_t)(M * ldc) * sizeof *R);
                float *bias = frand_buf((size_t)(M > N ? M : N));
                float *res = frand_buf((size_t)(M * ldr));
                assert_non_null(R);
                memcpy(R, C, (size_t)(M * ldc) * sizeof *R);
                pare_gemm_epilogue ep = {v & 2 ? NULL : bias, (v >> 2) & 1, act, 0.0f, 0.0f,
                                         v & 1 ? res : NULL, ldr};
                if (act == PARE_GEMM_ACT_CLIP) {
                    ep.act_alpha = -0.3f;
                    ep.act_beta = 0.4f;
                } else if (act == PARE_GEMM_ACT_LEAKY_RELU) {
                    ep.act_alpha = 0.1f;
                } else if (act == PARE_GEMM_ACT_HARDSIGMOID) {
                    ep.act_alpha = 0.2f;
                    ep.act_beta = 0.5f;
                } else if (act == PARE_GEMM_ACT_HARDSWISH) {
                    ep.act_alpha = 1.0f / 6.0f;
                    ep.act_beta = 0.5f;
                }
                ref_gemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
                ref_epilogue(M, N, &ep, R, ldc);
                char what[160];
                snprintf(what, sizeof what, "%s ex %lldx%lldx%lld v%d", arches[a], (long long)M,
                         (long long)N, (long long)K, v);
                float *C2 = malloc((size_t)(M * ldc) * sizeof *C2);
                float *C3 = malloc((size_t)(M * ldc) * sizeof *C3);
                assert_non_null(C2);
                assert_non_null(C3);
                memcpy(C2, C, (size_t)(M * ldc) * sizeof *C2);
                memcpy(C3, C, (size_t)(M * ldc) * sizeof *C3);
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M * ldc; i++)
                        C[i] = NAN; /* must not be read */
                assert_int_equal(pare_sgemm_ex(pool, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta,
                                               C, ldc, &ep),
                                 PARE_OK);
                double tol = 1e-4 * sqrt((double)K) + 1e-5;
                for (int64_t i = 0; i < M; i++)
                    expect_close(C + i * ldc, R + i * ldc, (size_t)N, tol, what);
                /* the same on the portable kernels whatever the build's BLAS */
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M * ldc; i++)
                        C3[i] = NAN;
                assert_int_equal(pare_sgemm_portable_ex(pool, tA, tB, M, N, K, alpha, A, lda, B,
                                                        ldb, beta, C3, ldc, &ep),
                                 PARE_OK);
                snprintf(what, sizeof what, "%s portable_ex %lldx%lldx%lld v%d", arches[a],
                         (long long)M, (long long)N, (long long)K, v);
                for (int64_t i = 0; i < M; i++)
                    expect_close(C3 + i * ldc, R + i * ldc, (size_t)N, tol, what);
                free(C3);
                /* the same through a pre-packed A (alpha folded in) */
                pare_sgemm_packed_a *pa;
                assert_int_equal(pare_sgemm_pack_a(tA, M, K, alpha, A, lda, &pa), PARE_OK);
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M * ldc; i++)
                        C2[i] = NAN;
                assert_int_equal(
                    pare_sgemm_packed_ex(pool, pa, tB, N, B, ldb, beta, &ep, C2, ldc), PARE_OK);
                snprintf(what, sizeof what, "%s packed_ex %lldx%lldx%lld v%d", arches[a],
                         (long long)M, (long long)N, (long long)K, v);
                for (int64_t i = 0; i < M; i++)
                    expect_close(C2 + i * ldc, R + i * ldc, (size_t)N, tol, what);
                pare_sgemm_packed_a_free(pa);
                free(A);
                free(B);
                free(C);
                free(C2);
                free(R);
                free(bias);
                free(res);
            }
    }
    assert_true(pare_sgemm_force_arch(orig));
    /* a bad act or bias axis is refused */
    float one = 1.0f, out = 0.0f;
    pare_gemm_epilogue bad = {NULL, 0, 99, 0.0f, 0.0f, NULL, 0};
    assert_int_equal(
        pare_sgemm_ex(pool, false, false, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &out, 1, &bad),
        PARE_ERR_ARG);
    bad.act = PARE_GEMM_ACT_NONE;
    bad.bias_axis = 2;
    assert_int_equal(
        pare_sgemm_ex(pool, false, false, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &out, 1, &bad),
        PARE_ERR_ARG);
    /* NULL epilogue: the plain product; NaN passes through Relu and Clip */
    float nan_in[2] = {NAN, -1.0f}, w1 = 1.0f, o2[2];
    pare_gemm_epilogue relu = {NULL, 0, PARE_GEMM_ACT_RELU, 0.0f, 0.0f, NULL, 0};
    assert_int_equal(
        pare_sgemm_ex(pool, false, false, 1, 2, 1, 1.0f, &w1, 1, nan_in, 2, 0.0f, o2, 2, &relu),
        PARE_OK);
    assert_true(isnan(o2[0]) && o2[1] == 0.0f);
    pare_threadpool_free(pool);
}

/* pare_sgemm_conv_ex: implicit im2col and 1x1 convolutions with per-channel
 * bias, a residual and an activation fused, packed and unpacked weights. */
static void test_sgemm_conv_epilogue(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(2);
    /* (c, h, w, kh, kw, sh, sw, ph, pw) */
    static const int64_t geo[][9] = {{3, 17, 19, 3, 3, 1, 1, 1, 1},
                                     {33, 7, 9, 1, 1, 1, 1, 0, 0},
                                     {5, 20, 13, 3, 5, 2, 3, 2, 0}};
    int64_t Ms[] = {1, 7, 33};
    for (size_t gi = 0; gi < 3; gi++)
        for (size_t mi = 0; mi < 3; mi++)
            for (int act = 0; act <= PARE_GEMM_ACT_GELU; act++) {
                const int64_t *q = geo[gi];
                int64_t M = Ms[mi];
                int64_t oh = (q[1] + 2 * q[7] - q[3]) / q[5] + 1;
                int64_t ow = (q[2] + 2 * q[8] - q[4]) / q[6] + 1, N = oh * ow;
                int64_t K = q[0] * q[3] * q[4];
                float *x = frand_buf((size_t)(q[0] * q[1] * q[2])), *w = frand_buf((size_t)(M * K));
                float *b = frand_buf((size_t)M), *res = frand_buf((size_t)(M * N));
                float *y = malloc((size_t)(M * N) * sizeof *y);
                float *col = malloc((size_t)(K * N) * sizeof *col);
                float *r = calloc((size_t)(M * N), sizeof *r);
                assert_true(y && col && r);
                pare_im2col img = {x, q[0], q[1], q[2], q[3], q[4], q[5], q[6], 1, 1, q[7], q[8],
                                   oh, ow};
                pare_im2col_fill(NULL, &img, col);
                ref_gemm(false, false, M, N, K, 1.0f, w, K, col, N, 0.0f, r, N);
                pare_gemm_epilogue ep = {b, 0, act, 0.1f, 0.6f, act & 1 ? res : NULL, N};
                ref_epilogue(M, N, &ep, r, N);
                for (int packed = 0; packed < 2; packed++) {
                    pare_sgemm_packed_a *pa = NULL;
                    if (packed)
                        assert_int_equal(pare_sgemm_pack_a(false, M, K, 1.0f, w, K, &pa), PARE_OK);
                    memset(y, 0xff, (size_t)(M * N) * sizeof *y);
                    assert_int_equal(pare_sgemm_conv_ex(pool, M, pa, w, K, &img, 0.0f, &ep, y, N),
                                     PARE_OK);
                    char what[96];
                    snprintf(what, sizeof what, "conv_ex geo%zu M%lld act%d packed%d", gi,
                             (long long)M, act, packed);
                    expect_close(y, r, (size_t)(M * N), 1e-4 * sqrt((double)K), what);
                    pare_sgemm_packed_a_free(pa);
                }
                free(x);
                free(w);
                free(b);
                free(res);
                free(y);
                free(col);
                free(r);
            }
    pare_threadpool_free(pool);
}

static void test_dgemm(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(2);
    int64_t M = 23, N = 41, K = 37;
    for (int t = 0; t < 4; t++) {
        bool tA = t & 1, tB = t & 2;
        double *A = malloc((size_t)(M * K) * sizeof *A), *B = malloc((size_t)(K * N) * sizeof *B);
        double *C = malloc((size_t)(M * N) * sizeof *C);
        for (int64_t i = 0; i < M * K; i++)
            A[i] = frand();
        for (int64_t i = 0; i < K * N; i++)
            B[i] = frand();
        for (int64_t i = 0; i < M * N; i++)
            C[i] = 1.0;
        assert_int_equal(
            pare_dgemm(pool, tA, tB, M, N, K, 2.0, A, tA ? M : K, B, tB ? K : N, 3.0, C, N),
            PARE_OK);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
                assert_true(fabs(C[i * N + j] - (2.0 * s + 3.0)) < 1e-12);
            }
        free(A);
        free(B);
        free(C);
    }
    pare_threadpool_free(pool);
}

/* naive conv over up to 3 spatial dims (missing leading dims are 1) */
typedef struct cgeo {
    int nsp;
    int64_t N, C, M, g;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
} cgeo;

static int64_t cg_out(const cgeo *c, int i)
{
    return (c->in[i] + c->pb[i] + c->pe[i] - ((c->k[i] - 1) * c->d[i] + 1)) / c->s[i] + 1;
}

static void ref_conv(const cgeo *c, const float *x, const float *w, const float *b, float *y)
{
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
    int off = 3 - c->nsp;
    for (int i = 0; i < 3; i++) {
        bool real = i >= off;
        in[i] = real ? c->in[i - off] : 1;
        k[i] = real ? c->k[i - off] : 1;
        s[i] = real ? c->s[i - off] : 1;
        d[i] = real ? c->d[i - off] : 1;
        pb[i] = real ? c->pb[i - off] : 0;
        out[i] = real ? cg_out(c, i - off) : 1;
    }
    int64_t Cg = c->C / c->g, Mg = c->M / c->g;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++) {
            int64_t g = m / Mg;
            for (int64_t o0 = 0; o0 < out[0]; o0++)
                for (int64_t o1 = 0; o1 < out[1]; o1++)
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t ci = 0; ci < Cg; ci++)
                            for (int64_t k0 = 0; k0 < k[0]; k0++)
                                for (int64_t k1 = 0; k1 < k[1]; k1++)
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                                        int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                                        int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                                        if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] ||
                                            i2 < 0 || i2 >= in[2])
                                            continue;
                                        int64_t c_in = g * Cg + ci;
                                        double xv =
                                            x[(((n * c->C + c_in) * in[0] + i0) * in[1] + i1) *
                                                  in[2] +
                                              i2];
                                        double wv =
                                            w[(((m * Cg + ci) * k[0] + k0) * k[1] + k1) * k[2] +
                                              k2];
                                        acc += xv * wv;
                                    }
                        y[(((n * c->M + m) * out[0] + o0) * out[1] + o1) * out[2] + o2] =
                            (float)acc;
                    }
        }
}

/* Convolutions over phase-split planes (conv_phase in gemm.c): wide images
 * so that the few extra virtual columns are within its budget; strides,
 * dilations, asymmetric kernels, 1x1 and patchify convs (no extra columns),
 * a small image whose rows are shorter than a tile,
 * two depth blocks (K = 360), the shared-B mode (M = 200 on 4 threads), a
 * residual with an in-register and a per-row activation, and beta = 1 (C
 * holds a sum input). Each against the naive convolution. */
static void test_conv_phase(void **state)
{
    (void)state;
    /* (c, h, w, kh, kw, sh, sw, dh, dw, ph, pw) */
    static const int64_t geo[][11] = {
        {16, 30, 55, 3, 3, 1, 1, 1, 1, 1, 1}, {3, 45, 60, 3, 3, 2, 2, 1, 1, 0, 0},
        {3, 40, 70, 7, 7, 2, 2, 1, 1, 3, 3},  {8, 20, 64, 1, 1, 2, 2, 1, 1, 0, 0},
        {40, 3, 60, 3, 3, 1, 1, 1, 1, 1, 1},  {6, 12, 48, 3, 3, 1, 1, 2, 2, 2, 2},
        {4, 16, 64, 4, 4, 4, 4, 1, 1, 0, 0},  {5, 21, 50, 3, 5, 2, 3, 2, 1, 2, 0},
        /* a small image: several output rows in one 32-wide tile (taken
         * while M is small: extra columns cost M each) */
        {8, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1},
    };
    int64_t Ms[] = {1, 8, 12, 30, 200};
    int threads[] = {1, 4};
    for (size_t gi = 0; gi < sizeof geo / sizeof *geo; gi++)
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++) {
            const int64_t *q = geo[gi];
            if (Ms[mi] == 200 && gi != 4)
                continue; /* the shared-B geometry only: the reference is slow */
            cgeo c = {2,        1,        q[0],       Ms[mi],     1,
                      {q[1], q[2]}, {q[3], q[4]}, {q[5], q[6]}, {q[7], q[8]},
                      {q[9], q[10]}, {q[9], q[10]}};
            int64_t oh = cg_out(&c, 0), ow = cg_out(&c, 1), N = oh * ow;
            int64_t K = q[0] * q[3] * q[4], M = c.M;
            float *x = frand_buf((size_t)(q[0] * q[1] * q[2]));
            float *w = frand_buf((size_t)(M * K)), *b = frand_buf((size_t)M);
            float *res = frand_buf((size_t)(M * N)), *old = frand_buf((size_t)(M * N));
            float *y = malloc((size_t)(M * N) * sizeof *y);
            float *r0 = malloc((size_t)(M * N) * sizeof *r0);
            float *r = malloc((size_t)(M * N) * sizeof *r);
            assert_true(y && r0 && r);
            ref_conv(&c, x, w, NULL, r0);
            pare_im2col img = {x,    q[0], q[1], q[2], q[3],  q[4], q[5],
                               q[6], q[7], q[8], q[9], q[10], oh,   ow};
            /* v 0: bias only; 1: residual + Relu (in registers); 2: beta 1,
             * residual + Sigmoid (per row); 3: Relu, 4: Clip (no residual:
             * applied while remapping tiles) */
            static const int acts[] = {PARE_GEMM_ACT_NONE, PARE_GEMM_ACT_RELU,
                                       PARE_GEMM_ACT_SIGMOID, PARE_GEMM_ACT_RELU,
                                       PARE_GEMM_ACT_CLIP};
            for (int v = 0; v < 5; v++) {
                float beta = v == 2 ? 1.0f : 0.0f;
                pare_gemm_epilogue ep = {b,     0,     acts[v], -0.5f, 0.7f,
                                         v == 1 || v == 2 ? res : NULL, N};
                for (int64_t i = 0; i < M * N; i++)
                    r[i] = r0[i] + beta * old[i];
                ref_epilogue(M, N, &ep, r, N);
                for (size_t ti = 0; ti < 2; ti++) {
                    pare_threadpool *pool = pare_threadpool_new(threads[ti]);
                    for (int packed = 0; packed < 2; packed++) {
                        pare_sgemm_packed_a *pa = NULL;
                        if (packed)
                            assert_int_equal(pare_sgemm_pack_a(false, M, K, 1.0f, w, K, &pa),
                                             PARE_OK);
                        memcpy(y, old, (size_t)(M * N) * sizeof *y);
                        assert_int_equal(
                            pare_sgemm_conv_ex(pool, M, pa, w, K, &img, beta, &ep, y, N), PARE_OK);
                        char what[128];
                        snprintf(what, sizeof what, "phase conv geo%zu M%lld v%d packed%d t%d", gi,
                                 (long long)M, v, packed, threads[ti]);
                        expect_close(y, r, (size_t)(M * N), 1e-4 * sqrt((double)K), what);
                        pare_sgemm_packed_a_free(pa);
                    }
                    pare_threadpool_free(pool);
                }
            }
            free(x);
            free(w);
            free(b);
            free(res);
            free(old);
            free(y);
            free(r0);
            free(r);
        }
}

static void test_sgemm_conv(void **state)
{
    (void)state;
    pare_threadpool *pool = pare_threadpool_new(3);
    /* (c, h, w, kh, kw, sh, sw, dh, dw, ph, pw) */
    static const int64_t geo[][11] = {
        {3, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1}, {16, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0},
        {8, 15, 15, 1, 1, 2, 2, 1, 1, 0, 0}, {5, 20, 13, 3, 5, 2, 3, 2, 1, 2, 0},
        {4, 9, 40, 7, 7, 2, 2, 1, 1, 3, 3},  {2, 1, 50, 1, 4, 1, 3, 1, 2, 0, 5},
    };
    int64_t Ms[] = {1, 13, 64};
    for (size_t gi = 0; gi < sizeof geo / sizeof *geo; gi++)
        for (size_t mi = 0; mi < 3; mi++) {
            const int64_t *q = geo[gi];
            cgeo c = {2,
                      1,
                      q[0],
                      Ms[mi],
                      1,
                      {q[1], q[2]},
                      {q[3], q[4]},
                      {q[5], q[6]},
                      {q[7], q[8]},
                      {q[9], q[10]},
                      {q[9], q[10]}};
            int64_t oh = cg_out(&c, 0), ow = cg_out(&c, 1), K = q[0] * q[3] * q[4];
            float *x = frand_buf((size_t)(q[0] * q[1] * q[2])), *w = frand_buf((size_t)(c.M * K));
            float *b = frand_buf((size_t)c.M), *y = frand_buf((size_t)(c.M * oh * ow));
            float *r = malloc((size_t)(c.M * oh * ow) * sizeof *r);
            ref_conv(&c, x, w, b, r);
            pare_im2col img = {x,    q[0], q[1], q[2], q[3],  q[4], q[5],
                               q[6], q[7], q[8], q[9], q[10], oh,   ow};
            pare_gemm_epi epi = {b, -INFINITY, INFINITY};
            assert_int_equal(pare_sgemm_conv(pool, c.M, NULL, w, K, &img, 0.0f, &epi, y, oh * ow),
                             PARE_OK);
            expect_close(y, r, (size_t)(c.M * oh * ow), 1e-4 * sqrt((double)K), "conv gemm");
            pare_sgemm_packed_a *pa;
            assert_int_equal(pare_sgemm_pack_a(false, c.M, K, 1.0f, w, K, &pa), PARE_OK);
            memset(y, 0xff, (size_t)(c.M * oh * ow) * sizeof *y); /* NaNs: beta 0 ignores them */
            assert_int_equal(pare_sgemm_conv(pool, c.M, pa, NULL, 0, &img, 0.0f, &epi, y, oh * ow),
                             PARE_OK);
            expect_close(y, r, (size_t)(c.M * oh * ow), 1e-4 * sqrt((double)K), "conv packed");
            /* the materialised im2col agrees with the implicit one */
            float *col = malloc((size_t)(K * oh * ow) * sizeof *col);
            pare_im2col_fill(pool, &img, col);
            assert_int_equal(pare_sgemm_portable(pool, false, false, c.M, oh * ow, K, 1.0f, w, K,
                                                 col, oh * ow, 0.0f, y, oh * ow),
                             PARE_OK);
            for (int64_t m = 0; m < c.M; m++)
                for (int64_t j = 0; j < oh * ow; j++)
                    y[m * oh * ow + j] += b[m];
            expect_close(y, r, (size_t)(c.M * oh * ow), 1e-4 * sqrt((double)K), "im2col fill");
            pare_sgemm_packed_a_free(pa);
            free(col);
            free(x);
            free(w);
            free(b);
            free(y);
            free(r);
        }
    pare_threadpool_free(pool);
}

/* ---- kernel harness ---- */

#define H_MAXOUT 6

typedef struct harness {
    pare_tensor *out[H_MAXOUT];
} harness;

static pare_status h_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                           pare_tensor **out, pare_error *err)
{
    harness *h = k->exec;
    if (i >= H_MAXOUT || h->out[i])
        return pare_error_set(err, PARE_ERR_INVALID, "bad output %zu", i);
    pare_status st = pare_tensor_new(NULL, dtype, rank, dims, out, err);
    if (st == PARE_OK)
        h->out[i] = *out;
    return st;
}

static pare_attr a_int(const char *name, int64_t v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INT;
    a.i = v;
    return a;
}

static pare_attr a_float(const char *name, float v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_FLOAT;
    a.f = v;
    return a;
}

static pare_attr a_str(const char *name, const char *v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_STRING;
    a.s.data = (char *)v;
    a.s.len = strlen(v);
    return a;
}

static pare_attr a_ints(const char *name, int64_t *v, size_t n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INTS;
    a.ints = v;
    a.n = n;
    return a;
}

typedef struct opcall {
    const char *op;
    const char *domain; /* NULL: ai.onnx */
    int64_t opset;
    pare_attr *attrs;
    size_t n_attrs;
    const pare_tensor *in[8];
    size_t n_in;
    size_t n_out;     /* outputs the node declares (default 1) */
    bool const_in[8]; /* inputs that are initializers */
    int threads;
} opcall;

/* Runs the op; outs[0..n_out) receive the outputs (caller frees). */
static pare_status call_op(const opcall *c, pare_tensor **outs, pare_error *err)
{
    const char *dom = c->domain ? c->domain : "";
    const pare_kernel *kr = pare_kernel_find(dom, c->op, c->opset);
    if (!kr)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no kernel for %s-%lld", c->op,
                              (long long)c->opset);
    size_t n_out = c->n_out ? c->n_out : 1;
    pare_value vin[8], vout[H_MAXOUT];
    pare_value *pin[8], *pout[H_MAXOUT];
    memset(vin, 0, sizeof vin);
    memset(vout, 0, sizeof vout);
    for (size_t i = 0; i < c->n_in; i++) {
        pin[i] = c->in[i] ? &vin[i] : NULL;
        vin[i].dtype = c->in[i] ? c->in[i]->dtype : 0;
        vin[i].init = c->const_in[i] ? (pare_tensor *)c->in[i] : NULL;
    }
    for (size_t i = 0; i < n_out; i++)
        pout[i] = &vout[i];
    pare_node node = {0};
    node.op_type = (char *)c->op;
    node.domain = (char *)dom;
    node.attrs = c->attrs;
    node.n_attrs = c->n_attrs;
    node.inputs = pin;
    node.n_inputs = c->n_in;
    node.outputs = pout;
    node.n_outputs = n_out;
    void *state = NULL;
    pare_status st = kr->init ? kr->init(&node, c->opset, &state, err) : PARE_OK;
    if (st)
        return st;
    pare_threadpool *pool = pare_threadpool_new(c->threads ? c->threads : 2);
    assert_non_null(pool);
    harness h;
    memset(&h, 0, sizeof h);
    pare_kctx k = {0};
    k.node = &node;
    k.opset = c->opset;
    k.in = c->in;
    k.n_in = c->n_in;
    k.n_out = n_out;
    k.state = state;
    k.pool = pool;
    k.alloc_out = h_alloc;
    k.exec = &h;
    st = kr->run(&k, err);
    if (kr->release)
        kr->release(state);
    pare_threadpool_free(pool);
    for (size_t i = 0; i < H_MAXOUT; i++) {
        if (i < n_out && !st)
            outs[i] = h.out[i];
        else
            pare_tensor_free(h.out[i]);
    }
    return st;
}

static pare_tensor *one(const opcall *c)
{
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    if (call_op(c, o, &err))
        fail_msg("%s failed: %s", c->op, err.msg);
    for (size_t i = 1; i < H_MAXOUT; i++)
        pare_tensor_free(o[i]);
    return o[0];
}

static pare_tensor *mk(int dtype, int rank, const int64_t *dims, const void *data)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, dtype, rank, dims, &t, &err), PARE_OK);
    if (data && t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return t;
}

static pare_tensor *mk_rand(int rank, const int64_t *dims)
{
    pare_tensor *t = mk(PARE_DT_FLOAT, rank, dims, NULL);
    float *p = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        p[i] = frand();
    return t;
}

static pare_tensor *cast_to(const pare_tensor *t, int dtype)
{
    pare_tensor *o = mk(dtype, t->rank, t->dims, NULL);
    assert_true(pare_dtype_convert(dtype, o->data, t->dtype, t->data, pare_tensor_numel(t), false));
    return o;
}

static void expect_tensor(const pare_tensor *got, const float *want, size_t n, double tol,
                          const char *what)
{
    assert_int_equal(pare_tensor_numel(got), n);
    pare_tensor *f = cast_to(got, PARE_DT_FLOAT);
    expect_close(f->data, want, n, tol, what);
    pare_tensor_free(f);
}

/* ---- Conv ---- */

static void conv_case(const cgeo *c, int dtype, bool with_bias, bool const_w, int threads)
{
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->g}, yn = c->N * c->M;
    int64_t pads[6], strides[3], dil[3];
    for (int i = 0; i < c->nsp; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
        yn *= cg_out(c, i);
        pads[i] = c->pb[i];
        pads[c->nsp + i] = c->pe[i];
        strides[i] = c->s[i];
        dil[i] = c->d[i];
    }
    pare_tensor *x = mk_rand(2 + c->nsp, xd), *w = mk_rand(2 + c->nsp, wd), *b = mk_rand(1, &c->M);
    float *r = malloc((size_t)yn * sizeof *r);
    ref_conv(c, x->data, w->data, with_bias ? b->data : NULL, r);
    pare_tensor *xc = cast_to(x, dtype), *wc = cast_to(w, dtype), *bc = cast_to(b, dtype);
    if (dtype == PARE_DT_FLOAT16 || dtype == PARE_DT_BFLOAT16) {
        /* the reference sees the rounded inputs */
        pare_tensor *x2 = cast_to(xc, PARE_DT_FLOAT), *w2 = cast_to(wc, PARE_DT_FLOAT),
                    *b2 = cast_to(bc, PARE_DT_FLOAT);
        ref_conv(c, x2->data, w2->data, with_bias ? b2->data : NULL, r);
        pare_tensor_free(x2);
        pare_tensor_free(w2);
        pare_tensor_free(b2);
    }
    pare_attr at[4] = {a_ints("pads", pads, 2 * (size_t)c->nsp),
                       a_ints("strides", strides, (size_t)c->nsp),
                       a_ints("dilations", dil, (size_t)c->nsp), a_int("group", c->g)};
    opcall oc = {.op = "Conv",
                 .opset = 11,
                 .attrs = at,
                 .n_attrs = 4,
                 .in = {xc, wc, with_bias ? bc : NULL},
                 .n_in = 3,
                 .n_out = 1,
                 .const_in = {false, const_w},
                 .threads = threads};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->dtype, dtype);
    int64_t K = c->C / c->g;
    for (int i = 0; i < c->nsp; i++)
        K *= c->k[i];
    double tol = dtype == PARE_DT_FLOAT16 ? 2e-3 : dtype == PARE_DT_BFLOAT16 ? 1e-2 : 1e-4;
    char what[96];
    snprintf(what, sizeof what, "conv nsp %d g %lld dtype %d const %d", c->nsp, (long long)c->g,
             dtype, const_w);
    expect_tensor(y, r, (size_t)yn, tol * sqrt((double)K), what);
    pare_tensor_free(y);
    pare_tensor_free(x);
    pare_tensor_free(w);
    pare_tensor_free(b);
    pare_tensor_free(xc);
    pare_tensor_free(wc);
    pare_tensor_free(bc);
    free(r);
}

static void test_conv_paths(void **state)
{
    (void)state;
    static const cgeo cases[] = {
        /* 2-D plain, strided, dilated, asymmetric pads */
        {2, 2, 3, 16, 1, {13, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 1, 8, 40, 1, {20, 18}, {3, 5}, {2, 1}, {1, 2}, {0, 2}, {1, 0}},
        /* 1x1, 1x1 strided */
        {2, 2, 32, 24, 1, {7, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},
        {2, 1, 16, 8, 1, {9, 9}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}},
        /* groups, depthwise, depthwise with multiplier */
        {2, 2, 8, 12, 4, {10, 10}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 2, 6, 6, 6, {12, 11}, {3, 3}, {2, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 1, 4, 8, 4, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}},
        /* Winograd-eligible 3x3 stride-1 (odd sizes, asymmetric pads, groups) */
        {2, 2, 32, 40, 1, {13, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 1, 36, 33, 1, {15, 16}, {3, 3}, {1, 1}, {1, 1}, {0, 2}, {2, 1}},
        {2, 1, 64, 64, 2, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        /* rows of more than 16 tiles (the vector input transform's groups of
         * 16 and a partial one), odd width, right pad only */
        {2, 1, 32, 33, 1, {7, 71}, {3, 3}, {1, 1}, {1, 1}, {1, 0}, {1, 2}},
        /* batches of (image, group) items split over the threads: the GEMM
         * path and the Winograd path, each item alone on a thread */
        {2, 6, 8, 40, 1, {20, 18}, {3, 5}, {2, 1}, {1, 2}, {0, 2}, {1, 0}},
        {2, 4, 64, 64, 2, {13, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        /* batches of small images: one GEMM over the im2col matrices of
         * all of them (7x7; strided 4x3), Winograd over several at a time
         * (8x8; odd sizes; below, 10x10 in pieces of 40 and 5 images) */
        {2, 6, 8, 40, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 5, 8, 16, 1, {8, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 0}, {0, 1}},
        {2, 6, 32, 40, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 12, 32, 33, 1, {4, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 2}, {2, 1}},
        /* 1-D and 3-D */
        {1, 2, 3, 5, 1, {31}, {4}, {2}, {2}, {3}, {1}},
        {3, 1, 2, 3, 1, {5, 6, 7}, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1}, {0, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conv_case(&cases[i], PARE_DT_FLOAT, true, false, 3);
        conv_case(&cases[i], PARE_DT_FLOAT, false, true, 1);
        conv_case(&cases[i], PARE_DT_FLOAT, true, true, 4);
        conv_case(&cases[i], PARE_DT_DOUBLE, true, false, 2);
        conv_case(&cases[i], PARE_DT_FLOAT16, true, true, 2);
    }
    conv_case(&cases[0], PARE_DT_BFLOAT16, true, false, 2);
    /* more small images than one Winograd pass takes: float32 only (the
     * naive reference of 45 images is slow under the sanitizers) */
    static const cgeo many = {2,      45,     32,     32,     1,     {10, 10},
                              {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
    conv_case(&many, PARE_DT_FLOAT, true, true, 2);
}

static void test_conv_auto_pad_and_errors(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 1, 5, 5}, wd[4] = {1, 1, 3, 3};
    pare_tensor *x = mk_rand(4, xd), *w = mk(PARE_DT_FLOAT, 4, wd, NULL);
    for (int i = 0; i < 9; i++)
        ((float *)w->data)[i] = 1.0f;
    int64_t strides[2] = {2, 2};
    pare_attr at[2] = {a_str("auto_pad", "SAME_LOWER"), a_ints("strides", strides, 2)};
    opcall oc = {.op = "Conv", .opset = 11, .attrs = at, .n_attrs = 2, .in = {x, w}, .n_in = 2};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->rank, 4);
    assert_int_equal(y->dims[2], 3);
    assert_int_equal(y->dims[3], 3);
    /* SAME_LOWER with total pad 2 puts 1 before: y[0][0] sums x[0..1][0..1] */
    const float *xp = x->data;
    float want = xp[0] + xp[1] + xp[5] + xp[6];
    assert_true(fabsf(((float *)y->data)[0] - want) < 1e-5f);
    pare_tensor_free(y);
    /* channel mismatch */
    int64_t wd2[4] = {1, 2, 3, 3};
    pare_tensor *w2 = mk_rand(4, wd2);
    opcall bad = {.op = "Conv", .opset = 11, .attrs = NULL, .n_attrs = 0, .in = {x, w2}, .n_in = 2};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_not_equal(call_op(&bad, o, &err), PARE_OK);
    /* window larger than the input */
    int64_t wd3[4] = {1, 1, 7, 3};
    pare_tensor *w3 = mk_rand(4, wd3);
    opcall bad2 = {
        .op = "Conv", .opset = 11, .attrs = NULL, .n_attrs = 0, .in = {x, w3}, .n_in = 2};
    assert_int_not_equal(call_op(&bad2, o, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "larger"));
    pare_tensor_free(x);
    pare_tensor_free(w);
    pare_tensor_free(w2);
    pare_tensor_free(w3);
}

static pare_attr a_floats(const char *name, float *v, size_t n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_FLOATS;
    a.floats = v;
    a.n = n;
    return a;
}

/* com.microsoft FusedConv: conv + bias + Z, then the activation, on the
 * GEMM epilogue path (Relu, Clip), the post pass (LeakyRelu, Sigmoid) and
 * the depthwise and double paths. */
static void test_fused_conv(void **state)
{
    (void)state;
    static const cgeo cases[] = {
        {2, 2, 8, 24, 1, {9, 10}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 1, 6, 6, 6, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 1, 32, 40, 1, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}}, /* Winograd */
        /* batches of small images: one GEMM over all (the sum input and
         * activation applied when scattering), and Winograd over several */
        {2, 4, 8, 24, 1, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
        {2, 3, 32, 40, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    };
    static const char *const acts[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid", ""};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (size_t ai = 0; ai < 5; ai++)
            for (int dt = 0; dt < 2; dt++) {
                const cgeo *c = &cases[ci];
                int64_t oh = cg_out(c, 0), ow = cg_out(c, 1);
                int64_t xd[4] = {c->N, c->C, c->in[0], c->in[1]};
                int64_t wd[4] = {c->M, c->C / c->g, c->k[0], c->k[1]};
                int64_t yd[4] = {c->N, c->M, oh, ow}, yn = c->N * c->M * oh * ow;
                pare_tensor *x = mk_rand(4, xd), *w = mk_rand(4, wd), *b = mk_rand(1, &c->M);
                pare_tensor *z = mk_rand(4, yd);
                float *r = malloc((size_t)yn * sizeof *r);
                ref_conv(c, x->data, w->data, b->data, r);
                float params[2] = {-0.3f, 0.4f};
                for (int64_t i = 0; i < yn; i++) {
                    float v = r[i] + ((float *)z->data)[i];
                    switch (ai) {
                    case 0:
                        v = v < 0 ? 0 : v;
                        break;
                    case 1:
                        v = v < params[0] ? params[0] : v > params[1] ? params[1] : v;
                        break;
                    case 2:
                        v = v < 0 ? params[0] * v : v;
                        break;
                    case 3:
                        v = 1.0f / (1.0f + expf(-v));
                        break;
                    }
                    r[i] = v;
                }
                int t = dt ? PARE_DT_DOUBLE : PARE_DT_FLOAT;
                pare_tensor *xc = cast_to(x, t), *wc = cast_to(w, t), *bc = cast_to(b, t),
                            *zc = cast_to(z, t);
                int64_t pads[4] = {1, 1, 1, 1};
                pare_attr at[4] = {a_ints("pads", pads, 4), a_int("group", c->g),
                                   a_str("activation", acts[ai]),
                                   a_floats("activation_params", params, 2)};
                opcall oc = {.op = "FusedConv",
                             .domain = "com.microsoft",
                             .opset = 1,
                             .attrs = at,
                             .n_attrs = acts[ai][0] ? 4 : 2,
                             .in = {xc, wc, bc, zc},
                             .n_in = 4,
                             .const_in = {false, true},
                             .threads = 3};
                pare_tensor *y = one(&oc);
                char what[64];
                snprintf(what, sizeof what, "fused %s case %zu dtype %d", acts[ai], ci, t);
                expect_tensor(y, r, (size_t)yn, 1e-4, what);
                pare_tensor_free(y);
                pare_tensor_free(x);
                pare_tensor_free(w);
                pare_tensor_free(b);
                pare_tensor_free(z);
                pare_tensor_free(xc);
                pare_tensor_free(wc);
                pare_tensor_free(bc);
                pare_tensor_free(zc);
                free(r);
            }
}

/* ---- ConvTranspose ---- */

static void test_convtranspose(void **state)
{
    (void)state;
    /* N=1, C=4, g=2, Mg=3, 2-D, stride (2,3), dilation (1,2), pads, output_padding */
    int64_t C = 4, g = 2, Mg = 3, H = 5, W = 4, kh = 3, kw = 2, sh = 2, sw = 3, dh = 1, dw = 2;
    int64_t pads[4] = {1, 0, 0, 1}, op[2] = {1, 2};
    int64_t oh = sh * (H - 1) + op[0] + (kh - 1) * dh + 1 - pads[0] - pads[2];
    int64_t ow = sw * (W - 1) + op[1] + (kw - 1) * dw + 1 - pads[1] - pads[3];
    int64_t xd[4] = {1, C, H, W}, wd[4] = {C, Mg, kh, kw}, bd = g * Mg;
    pare_tensor *x = mk_rand(4, xd), *w = mk_rand(4, wd), *b = mk_rand(1, &bd);
    const float *xp = x->data, *wp = w->data, *bp = b->data;
    float *r = calloc((size_t)(g * Mg * oh * ow), sizeof *r);
    for (int64_t m = 0; m < g * Mg; m++)
        for (int64_t i = 0; i < oh * ow; i++)
            r[m * oh * ow + i] = bp[m];
    for (int64_t c = 0; c < C; c++) {
        int64_t gi = c / (C / g);
        for (int64_t m = 0; m < Mg; m++)
            for (int64_t iy = 0; iy < H; iy++)
                for (int64_t ix = 0; ix < W; ix++)
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t oy = iy * sh - pads[0] + ky * dh,
                                    ox = ix * sw - pads[1] + kx * dw;
                            if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                continue;
                            r[((gi * Mg + m) * oh + oy) * ow + ox] +=
                                xp[(c * H + iy) * W + ix] * wp[((c * Mg + m) * kh + ky) * kw + kx];
                        }
    }
    int64_t strides[2] = {sh, sw}, dil[2] = {dh, dw};
    pare_attr at[5] = {a_ints("pads", pads, 4), a_ints("strides", strides, 2),
                       a_ints("dilations", dil, 2), a_ints("output_padding", op, 2),
                       a_int("group", g)};
    opcall oc = {
        .op = "ConvTranspose", .opset = 11, .attrs = at, .n_attrs = 5, .in = {x, w, b}, .n_in = 3};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->dims[2], oh);
    assert_int_equal(y->dims[3], ow);
    expect_tensor(y, r, (size_t)(g * Mg * oh * ow), 1e-4, "convtranspose");
    pare_tensor_free(y);
    /* output_shape: same result when it matches the computed size */
    int64_t os[2] = {oh, ow};
    pare_attr at2[5] = {a_ints("output_shape", os, 2), a_ints("strides", strides, 2),
                        a_ints("dilations", dil, 2), a_ints("output_padding", op, 2),
                        a_int("group", g)};
    opcall oc2 = {
        .op = "ConvTranspose", .opset = 11, .attrs = at2, .n_attrs = 5, .in = {x, w, b}, .n_in = 3};
    y = one(&oc2);
    assert_int_equal(y->dims[2], oh);
    assert_int_equal(y->dims[3], ow);
    pare_tensor_free(y);
    pare_tensor_free(x);
    pare_tensor_free(w);
    pare_tensor_free(b);
    free(r);
}

/* ---- MatMul and Gemm ---- */

static void test_matmul_broadcast(void **state)
{
    (void)state;
    /* [2,1,3,4] x [5,4,6] -> [2,5,3,6] */
    int64_t ad[4] = {2, 1, 3, 4}, bd[3] = {5, 4, 6};
    pare_tensor *a = mk_rand(4, ad), *b = mk_rand(3, bd);
    opcall oc = {.op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {a, b}, .n_in = 2};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->rank, 4);
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 5);
    float r[2 * 5 * 3 * 6];
    const float *ap = a->data, *bp = b->data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++)
            ref_gemm(false, false, 3, 6, 4, 1.0f, ap + i * 12, 4, bp + j * 24, 6, 0.0f,
                     r + (i * 5 + j) * 18, 6);
    expect_tensor(y, r, 180, 1e-5, "matmul bcast");
    pare_tensor_free(y);
    /* 1-D operands: [4] x [5,4,6] -> [5,6]; [2,1,3,4] x [4] -> [2,1,3] */
    int64_t vd = 4;
    pare_tensor *v = mk_rand(1, &vd);
    opcall o1 = {.op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {v, b}, .n_in = 2};
    y = one(&o1);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], 5);
    assert_int_equal(y->dims[1], 6);
    pare_tensor_free(y);
    opcall o2 = {.op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {a, v}, .n_in = 2};
    y = one(&o2);
    assert_int_equal(y->rank, 3);
    assert_int_equal(y->dims[2], 3);
    pare_tensor_free(y);
    opcall o3 = {.op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {v, v}, .n_in = 2};
    y = one(&o3);
    assert_int_equal(y->rank, 0);
    float dot = 0;
    for (int i = 0; i < 4; i++)
        dot += ((float *)v->data)[i] * ((float *)v->data)[i];
    assert_true(fabsf(((float *)y->data)[0] - dot) < 1e-5f);
    pare_tensor_free(y);
    /* mismatched inner dims */
    opcall bad = {
        .op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {b, b}, .n_in = 2};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_not_equal(call_op(&bad, o, &err), PARE_OK);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(v);
}

static void test_matmul_batched_parallel_and_f16(void **state)
{
    (void)state;
    /* many small products (the parallel-over-batch path) and a tall one */
    int64_t ad[3] = {64, 9, 17}, bd[3] = {64, 17, 11};
    pare_tensor *a = mk_rand(3, ad), *b = mk_rand(3, bd);
    float *r = malloc(64 * 9 * 11 * sizeof *r);
    for (int q = 0; q < 64; q++)
        ref_gemm(false, false, 9, 11, 17, 1.0f, (float *)a->data + q * 153, 17,
                 (float *)b->data + q * 187, 11, 0.0f, r + q * 99, 11);
    opcall oc = {.op = "MatMul",
                 .opset = 13,
                 .attrs = NULL,
                 .n_attrs = 0,
                 .in = {a, b},
                 .n_in = 2,
                 .n_out = 1,
                 .const_in = {false},
                 .threads = 4};
    pare_tensor *y = one(&oc);
    expect_tensor(y, r, 64 * 99, 1e-5, "batched");
    pare_tensor_free(y);
    pare_tensor *ah = cast_to(a, PARE_DT_FLOAT16), *bh = cast_to(b, PARE_DT_FLOAT16);
    opcall oh = {
        .op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {ah, bh}, .n_in = 2};
    y = one(&oh);
    assert_int_equal(y->dtype, PARE_DT_FLOAT16);
    expect_tensor(y, r, 64 * 99, 2e-2, "batched f16");
    pare_tensor_free(y);
    pare_tensor_free(ah);
    pare_tensor_free(bh);
    pare_tensor_free(a);
    pare_tensor_free(b);
    free(r);
}

static void test_matmul_int_wraps(void **state)
{
    (void)state;
    int64_t d[2] = {1, 2}, e[2] = {2, 1};
    int32_t av[2] = {INT32_MAX, 2}, bv[2] = {2, 1};
    pare_tensor *a = mk(PARE_DT_INT32, 2, d, av), *b = mk(PARE_DT_INT32, 2, e, bv);
    opcall oc = {.op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {a, b}, .n_in = 2};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->dtype, PARE_DT_INT32);
    /* 2*INT32_MAX + 2 wraps to 0 in 32 bits */
    assert_int_equal(((int32_t *)y->data)[0], 0);
    pare_tensor_free(y);
    int64_t u[2] = {UINT64_MAX / 2 + 1, 0};
    pare_tensor *ua = mk(PARE_DT_UINT64, 2, d, u),
                *ub = mk(PARE_DT_UINT64, 2, e, (uint64_t[]){2, 5});
    opcall ou = {
        .op = "MatMul", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {ua, ub}, .n_in = 2};
    y = one(&ou);
    assert_true(((uint64_t *)y->data)[0] == 0);
    pare_tensor_free(y);
    pare_tensor_free(ua);
    pare_tensor_free(ub);
    pare_tensor_free(a);
    pare_tensor_free(b);
}

static void test_gemm_bias_broadcast(void **state)
{
    (void)state;
    int64_t ad[2] = {7, 5}, bd[2] = {6, 7}; /* transA: M = 5, K = 7; transB: N = 6 */
    pare_tensor *a = mk_rand(2, ad), *b = mk_rand(2, bd);
    int64_t cds[3][2] = {{6, 0}, {5, 1}, {1, 1}};
    int cranks[3] = {1, 2, 0};
    for (int ci = 0; ci < 3; ci++) {
        pare_tensor *c = mk_rand(cranks[ci], cds[ci]);
        pare_attr at[4] = {a_int("transA", 1), a_int("transB", 1), a_float("alpha", 0.5f),
                           a_float("beta", 2.0f)};
        opcall oc = {
            .op = "Gemm", .opset = 13, .attrs = at, .n_attrs = 4, .in = {a, b, c}, .n_in = 3};
        pare_tensor *y = one(&oc);
        float r[30];
        const float *cp = c->data;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 6; j++)
                r[i * 6 + j] = ci == 0 ? cp[j] : ci == 1 ? cp[i] : cp[0];
        ref_gemm(true, true, 5, 6, 7, 0.5f, a->data, 5, b->data, 7, 2.0f, r, 6);
        expect_tensor(y, r, 30, 1e-5, "gemm C bcast");
        pare_tensor_free(y);
        pare_tensor_free(c);
    }
    /* C that does not broadcast */
    int64_t cd[2] = {2, 6};
    pare_tensor *c = mk_rand(2, cd);
    pare_attr at[2] = {a_int("transA", 1), a_int("transB", 1)};
    opcall bad = {.op = "Gemm", .opset = 13, .attrs = at, .n_attrs = 2, .in = {a, b, c}, .n_in = 3};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_not_equal(call_op(&bad, o, &err), PARE_OK);
    pare_tensor_free(c);
    /* int64 Gemm without C */
    int64_t ia[4] = {1, 2, 3, 4}, d2[2] = {2, 2};
    pare_tensor *ta = mk(PARE_DT_INT64, 2, d2, ia);
    opcall oi = {.op = "Gemm", .opset = 13, .attrs = NULL, .n_attrs = 0, .in = {ta, ta}, .n_in = 2};
    pare_tensor *y = one(&oi);
    int64_t *yp = y->data;
    assert_true(yp[0] == 7 && yp[1] == 10 && yp[2] == 15 && yp[3] == 22);
    pare_tensor_free(y);
    pare_tensor_free(ta);
    pare_tensor_free(a);
    pare_tensor_free(b);
}

/* ---- pooling ---- */

static void test_maxpool_indices(void **state)
{
    (void)state;
    /* 1x2x3x4, kernel 2x2, stride 1: indices over the whole tensor */
    int64_t xd[4] = {1, 2, 3, 4};
    float xv[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)((i * 7) % 24);
    pare_tensor *x = mk(PARE_DT_FLOAT, 4, xd, xv);
    int64_t ks[2] = {2, 2};
    for (int so = 0; so < 2; so++) {
        pare_attr at[2] = {a_ints("kernel_shape", ks, 2), a_int("storage_order", so)};
        opcall oc = {.op = "MaxPool",
                     .opset = 12,
                     .attrs = at,
                     .n_attrs = 2,
                     .in = {x},
                     .n_in = 1,
                     .n_out = 2};
        pare_tensor *o[H_MAXOUT] = {0};
        pare_error err;
        assert_int_equal(call_op(&oc, o, &err), PARE_OK);
        assert_int_equal(o[1]->dtype, PARE_DT_INT64);
        const float *y = o[0]->data;
        const int64_t *ind = o[1]->data;
        for (int c = 0; c < 2; c++)
            for (int oy = 0; oy < 2; oy++)
                for (int ox = 0; ox < 3; ox++) {
                    float best = -1;
                    int by = 0, bx = 0;
                    for (int ky = 0; ky < 2; ky++)
                        for (int kx = 0; kx < 2; kx++) {
                            float v = xv[c * 12 + (oy + ky) * 4 + ox + kx];
                            if (v > best) {
                                best = v;
                                by = oy + ky;
                                bx = ox + kx;
                            }
                        }
                    int q = c * 6 + oy * 3 + ox;
                    assert_true(y[q] == best);
                    int64_t want = so ? c * 12 + by + bx * 3 : c * 12 + by * 4 + bx;
                    assert_int_equal(ind[q], want);
                }
        pare_tensor_free(o[0]);
        pare_tensor_free(o[1]);
    }
    /* int8 and ceil_mode: 5 wide, kernel 2, stride 2 -> 3 outputs */
    int64_t d8[3] = {1, 1, 5};
    int8_t v8[5] = {-5, 3, -128, -100, 7};
    pare_tensor *x8 = mk(PARE_DT_INT8, 3, d8, v8);
    int64_t k1 = 2, s1 = 2;
    pare_attr at[3] = {a_ints("kernel_shape", &k1, 1), a_ints("strides", &s1, 1),
                       a_int("ceil_mode", 1)};
    opcall o8 = {.op = "MaxPool", .opset = 12, .attrs = at, .n_attrs = 3, .in = {x8}, .n_in = 1};
    pare_tensor *y = one(&o8);
    assert_int_equal(y->dtype, PARE_DT_INT8);
    assert_int_equal(y->dims[2], 3);
    int8_t *yp = y->data;
    assert_true(yp[0] == 3 && yp[1] == -100 && yp[2] == 7);
    pare_tensor_free(y);
    pare_tensor_free(x8);
    pare_tensor_free(x);
}

/* MaxPool without the indices output reduces the window separably (rows,
 * then columns); with it, element by element. Both must give the same Y
 * over pads, strides, dilations, ceil_mode and 1-D. */
static void test_maxpool_separable(void **state)
{
    (void)state;
    /* kh, kw, sh, sw, dh, dw, pad top, left, bottom, right, ceil_mode */
    static const int64_t geo[][11] = {
        {3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1}, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0}, {3, 2, 2, 3, 2, 2, 2, 1, 0, 2, 1},
        {5, 5, 3, 1, 1, 3, 2, 0, 2, 4, 0}, {1, 4, 1, 2, 1, 1, 0, 3, 0, 3, 1},
    };
    int64_t xd[4] = {2, 3, 13, 17};
    pare_tensor *x = mk_rand(4, xd);
    for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
        const int64_t *q = geo[g];
        int64_t ks[2] = {q[0], q[1]}, st[2] = {q[2], q[3]}, dl[2] = {q[4], q[5]};
        int64_t pads[4] = {q[6], q[7], q[8], q[9]};
        pare_attr at[5] = {a_ints("kernel_shape", ks, 2), a_ints("strides", st, 2),
                           a_ints("dilations", dl, 2), a_ints("pads", pads, 4),
                           a_int("ceil_mode", q[10])};
        pare_tensor *y1[H_MAXOUT] = {0}, *y2[H_MAXOUT] = {0};
        pare_error err;
        for (int nout = 1; nout <= 2; nout++) {
            opcall oc = {.op = "MaxPool",
                         .opset = 12,
                         .attrs = at,
                         .n_attrs = 5,
                         .in = {x},
                         .n_in = 1,
                         .n_out = (size_t)nout,
                         .threads = 2};
            assert_int_equal(call_op(&oc, nout == 1 ? y1 : y2, &err), PARE_OK);
        }
        assert_int_equal(y1[0]->nbytes, y2[0]->nbytes);
        if (memcmp(y1[0]->data, y2[0]->data, y1[0]->nbytes))
            fail_msg("geometry %zu: separable MaxPool differs from the direct one", g);
        pare_tensor_free(y1[0]);
        pare_tensor_free(y2[0]);
        pare_tensor_free(y2[1]);
    }
    /* 1-D, kernel 3, stride 2, pads 1 */
    int64_t xd1[3] = {2, 2, 11}, k1 = 3, s1 = 2, p1[2] = {1, 1};
    pare_tensor *x1 = mk_rand(3, xd1);
    pare_attr at1[3] = {a_ints("kernel_shape", &k1, 1), a_ints("strides", &s1, 1),
                        a_ints("pads", p1, 2)};
    opcall o1 = {.op = "MaxPool", .opset = 12, .attrs = at1, .n_attrs = 3, .in = {x1}, .n_in = 1};
    pare_tensor *y = one(&o1);
    const float *xv = x1->data, *yv = y->data;
    assert_int_equal(y->dims[2], 6);
    for (int p = 0; p < 4; p++)
        for (int o = 0; o < 6; o++) {
            float best = -INFINITY;
            for (int t = 0; t < 3; t++) {
                int i = o * 2 - 1 + t;
                if (i >= 0 && i < 11 && xv[p * 11 + i] > best)
                    best = xv[p * 11 + i];
            }
            assert_true(yv[p * 6 + o] == best);
        }
    pare_tensor_free(y);
    pare_tensor_free(x1);
    pare_tensor_free(x);
}

/* LRN against the formula in double: beta 0.75 (sqrt path), 1, and 0.6 (pow). */
static void test_lrn(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 7, 5, 3};
    pare_tensor *x = mk_rand(4, xd);
    const float *xv = x->data;
    const float betas[] = {0.75f, 1.0f, 0.6f};
    for (int bi = 0; bi < 3; bi++) {
        pare_attr at[4] = {a_int("size", 3), a_float("alpha", 0.5f), a_float("beta", betas[bi]),
                           a_float("bias", 1.5f)};
        opcall oc = {.op = "LRN", .opset = 13, .attrs = at, .n_attrs = 4, .in = {x}, .n_in = 1};
        pare_tensor *y = one(&oc);
        const float *yv = y->data;
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 7; c++)
                for (int i = 0; i < 15; i++) {
                    double s = 0;
                    for (int cc = c - 1; cc <= c + 1; cc++)
                        if (cc >= 0 && cc < 7) {
                            double v = xv[(n * 7 + cc) * 15 + i];
                            s += v * v;
                        }
                    double want = xv[(n * 7 + c) * 15 + i] /
                                  pow(1.5 + 0.5 / 3.0 * s, (double)betas[bi]);
                    assert_true(fabs(yv[(n * 7 + c) * 15 + i] - want) <= 1e-6 * (1 + fabs(want)));
                }
        pare_tensor_free(y);
    }
    pare_tensor_free(x);
}

static void test_avgpool_pad_counts(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 1, 2, 2};
    float xv[4] = {1, 2, 3, 4};
    pare_tensor *x = mk(PARE_DT_FLOAT, 4, xd, xv);
    int64_t ks[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    for (int cip = 0; cip < 2; cip++) {
        pare_attr at[3] = {a_ints("kernel_shape", ks, 2), a_ints("pads", pads, 4),
                           a_int("count_include_pad", cip)};
        opcall oc = {
            .op = "AveragePool", .opset = 19, .attrs = at, .n_attrs = 3, .in = {x}, .n_in = 1};
        pare_tensor *y = one(&oc);
        assert_int_equal(y->dims[2], 3);
        const float *yp = y->data;
        /* corner window sees x[0] only; centre sees all four */
        assert_true(fabsf(yp[0] - (cip ? 0.25f : 1.0f)) < 1e-6f);
        assert_true(fabsf(yp[4] - 2.5f) < 1e-6f);
        assert_true(fabsf(yp[1] - (cip ? 0.75f : 1.5f)) < 1e-6f);
        pare_tensor_free(y);
    }
    /* missing kernel_shape is an error at init */
    opcall bad = {
        .op = "AveragePool", .opset = 19, .attrs = NULL, .n_attrs = 0, .in = {x}, .n_in = 1};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_not_equal(call_op(&bad, o, &err), PARE_OK);
    pare_tensor_free(x);
}

static void test_maxunpool_bad_index(void **state)
{
    (void)state;
    int64_t d[4] = {1, 1, 1, 2};
    float xv[2] = {1, 2};
    int64_t iv[2] = {0, 9};
    pare_tensor *x = mk(PARE_DT_FLOAT, 4, d, xv), *ind = mk(PARE_DT_INT64, 4, d, iv);
    int64_t ks[2] = {2, 2}, st[2] = {2, 2};
    pare_attr at[2] = {a_ints("kernel_shape", ks, 2), a_ints("strides", st, 2)};
    opcall oc = {
        .op = "MaxUnpool", .opset = 11, .attrs = at, .n_attrs = 2, .in = {x, ind}, .n_in = 2};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_equal(call_op(&oc, o, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "index 9 out of range [0, 8)"));
    pare_tensor_free(x);
    pare_tensor_free(ind);
}

/* ---- normalisations ---- */

static void test_layernorm_outputs(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 4}, sd[1] = {4};
    pare_tensor *x = mk_rand(3, xd), *s = mk_rand(1, sd), *b = mk_rand(1, sd);
    pare_attr at[2] = {a_int("axis", -1), a_float("epsilon", 1e-3f)};
    opcall oc = {.op = "LayerNormalization",
                 .opset = 17,
                 .attrs = at,
                 .n_attrs = 2,
                 .in = {x, s, b},
                 .n_in = 3,
                 .n_out = 3};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_equal(call_op(&oc, o, &err), PARE_OK);
    assert_int_equal(o[1]->rank, 3);
    assert_int_equal(o[1]->dims[2], 1);
    const float *xp = x->data, *sp = s->data, *bp = b->data;
    float r[24], mean[6], inv[6];
    for (int row = 0; row < 6; row++) {
        double m = 0, v = 0;
        for (int i = 0; i < 4; i++)
            m += xp[row * 4 + i];
        m /= 4;
        for (int i = 0; i < 4; i++)
            v += (xp[row * 4 + i] - m) * (xp[row * 4 + i] - m);
        v /= 4;
        mean[row] = (float)m;
        inv[row] = (float)(1.0 / sqrt(v + 1e-3));
        for (int i = 0; i < 4; i++)
            r[row * 4 + i] = (float)((xp[row * 4 + i] - m) * inv[row] * sp[i] + bp[i]);
    }
    expect_tensor(o[0], r, 24, 1e-5, "ln y");
    expect_tensor(o[1], mean, 6, 1e-6, "ln mean");
    expect_tensor(o[2], inv, 6, 1e-5, "ln invstd");
    for (int i = 0; i < 3; i++)
        pare_tensor_free(o[i]);
    /* bfloat16 input, axis 1 */
    pare_tensor *xb = cast_to(x, PARE_DT_BFLOAT16);
    int64_t s2d[2] = {3, 4};
    pare_tensor *s2 = mk_rand(2, s2d), *s2b = cast_to(s2, PARE_DT_BFLOAT16);
    pare_attr at2[1] = {a_int("axis", 1)};
    opcall ob = {.op = "LayerNormalization",
                 .opset = 17,
                 .attrs = at2,
                 .n_attrs = 1,
                 .in = {xb, s2b},
                 .n_in = 2};
    pare_tensor *y = one(&ob);
    assert_int_equal(y->dtype, PARE_DT_BFLOAT16);
    pare_tensor_free(y);
    pare_tensor_free(xb);
    pare_tensor_free(s2);
    pare_tensor_free(s2b);
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(b);
}

/* float32 LayerNormalization and RMSNormalization over row lengths around
 * the 16-lane blocks of the AVX-512 path (and the plain one elsewhere), with
 * and without bias, on rows offset by 50 (the variance must not cancel),
 * against a double reference */
static void test_layernorm_rows(void **state)
{
    (void)state;
    static const int64_t Ds[] = {1, 3, 15, 16, 17, 64, 67, 300};
    for (size_t di = 0; di < sizeof Ds / sizeof *Ds; di++)
        for (int v = 0; v < 3; v++) { /* 0: LN with bias, 1: LN without, 2: RMS */
            int64_t D = Ds[di], xd[2] = {5, D}, sd[1] = {D};
            pare_tensor *x = mk_rand(2, xd), *sc = mk_rand(1, sd), *b = mk_rand(1, sd);
            float *xp = x->data;
            for (int64_t i = 0; i < 5 * D; i++)
                xp[i] += v == 2 ? 0.0f : 50.0f;
            pare_attr at[2] = {a_int("axis", -1), a_float("epsilon", 1e-5f)};
            opcall oc = {.op = v == 2 ? "RMSNormalization" : "LayerNormalization",
                         .opset = v == 2 ? 23 : 17,
                         .attrs = at,
                         .n_attrs = 2,
                         .in = {x, sc, v == 0 ? b : NULL},
                         .n_in = v == 0 ? 3 : 2};
            pare_tensor *y = one(&oc);
            float *r = malloc((size_t)(5 * D) * sizeof *r);
            assert_non_null(r);
            const float *sp = sc->data, *bp = b->data;
            for (int64_t row = 0; row < 5; row++) {
                const float *xr = xp + row * D;
                double m = 0, var = 0;
                for (int64_t i = 0; v != 2 && i < D; i++)
                    m += xr[i];
                m /= (double)D;
                for (int64_t i = 0; i < D; i++)
                    var += (xr[i] - m) * (xr[i] - m);
                double inv = 1.0 / sqrt(var / (double)D + 1e-5);
                for (int64_t i = 0; i < D; i++)
                    r[row * D + i] = (float)((xr[i] - m) * inv * sp[i] + (v == 0 ? bp[i] : 0.0));
            }
            char what[64];
            snprintf(what, sizeof what, "norm D=%lld v%d", (long long)D, v);
            expect_tensor(y, r, (size_t)(5 * D), 2e-5, what);
            free(r);
            pare_tensor_free(y);
            pare_tensor_free(x);
            pare_tensor_free(sc);
            pare_tensor_free(b);
        }
}

static void test_batchnorm_training(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 2, 3}, c = 2;
    float xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float ones[2] = {1, 1}, zeros[2] = {0, 0};
    pare_tensor *x = mk(PARE_DT_FLOAT, 3, xd, xv), *s = mk(PARE_DT_FLOAT, 1, &c, ones);
    pare_tensor *b = mk(PARE_DT_FLOAT, 1, &c, zeros), *m = mk(PARE_DT_FLOAT, 1, &c, zeros);
    pare_tensor *v = mk(PARE_DT_FLOAT, 1, &c, ones);
    pare_attr at[3] = {a_int("training_mode", 1), a_float("momentum", 0.5f),
                       a_float("epsilon", 0.0f)};
    opcall oc = {.op = "BatchNormalization",
                 .opset = 15,
                 .attrs = at,
                 .n_attrs = 3,
                 .in = {x, s, b, m, v},
                 .n_in = 5,
                 .n_out = 3};
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    assert_int_equal(call_op(&oc, o, &err), PARE_OK);
    /* channel 0: {1,2,3,7,8,9}: mean 5, variance 29/3 */
    const float *rm = o[1]->data, *rv = o[2]->data;
    assert_true(fabsf(rm[0] - 2.5f) < 1e-5f);
    assert_true(fabsf(rv[0] - (0.5f + 29.0f / 6.0f)) < 1e-4f);
    assert_true(fabsf(((float *)o[0]->data)[0] - (float)(-4.0 / sqrt(29.0 / 3.0))) < 1e-5f);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(o[i]);
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(b);
    pare_tensor_free(m);
    pare_tensor_free(v);
}

/* ---- Einsum and Det ---- */

static pare_tensor *einsum(const char *eq, const pare_tensor *a, const pare_tensor *b,
                           const pare_tensor *c)
{
    pare_attr at[1] = {a_str("equation", eq)};
    opcall oc = {.op = "Einsum",
                 .opset = 12,
                 .attrs = at,
                 .n_attrs = 1,
                 .in = {a, b, c},
                 .n_in = c   ? 3
                         : b ? 2
                             : 1};
    return one(&oc);
}

static void test_einsum(void **state)
{
    (void)state;
    int64_t ad[3] = {2, 3, 4}, bd[3] = {2, 4, 5};
    pare_tensor *a = mk_rand(3, ad), *b = mk_rand(3, bd);
    /* batched matmul, explicit and with ellipsis */
    float r[2 * 3 * 5];
    for (int q = 0; q < 2; q++)
        ref_gemm(false, false, 3, 5, 4, 1.0f, (float *)a->data + q * 12, 4,
                 (float *)b->data + q * 20, 5, 0.0f, r + q * 15, 5);
    pare_tensor *y = einsum("bij,bjk->bik", a, b, NULL);
    expect_tensor(y, r, 30, 1e-5, "bij,bjk");
    pare_tensor_free(y);
    y = einsum("...ij,...jk", a, b, NULL); /* implicit output: ...ik */
    expect_tensor(y, r, 30, 1e-5, "...ij,...jk");
    pare_tensor_free(y);
    /* transposed output: bik -> kib */
    y = einsum("bij,bjk->kib", a, b, NULL);
    assert_int_equal(y->dims[0], 5);
    assert_int_equal(y->dims[2], 2);
    float rt[30];
    for (int q = 0; q < 2; q++)
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++)
                rt[(k * 3 + i) * 2 + q] = r[q * 15 + i * 5 + k];
    expect_tensor(y, rt, 30, 1e-5, "kib");
    pare_tensor_free(y);
    /* diagonal and trace */
    int64_t sq[2] = {3, 3};
    pare_tensor *m = mk_rand(2, sq);
    const float *mp = m->data;
    y = einsum("ii->i", m, NULL, NULL);
    float dg[3] = {mp[0], mp[4], mp[8]};
    expect_tensor(y, dg, 3, 1e-6, "diag");
    pare_tensor_free(y);
    y = einsum("ii", m, NULL, NULL);
    float tr = mp[0] + mp[4] + mp[8];
    expect_tensor(y, &tr, 1, 1e-6, "trace");
    pare_tensor_free(y);
    /* three operands, ints */
    int64_t v3 = 3;
    int32_t iv[3] = {1, 2, 3};
    pare_tensor *vi = mk(PARE_DT_INT32, 1, &v3, iv);
    y = einsum("i,i,i->", vi, vi, vi);
    assert_int_equal(y->dtype, PARE_DT_INT32);
    assert_int_equal(((int32_t *)y->data)[0], 1 + 8 + 27);
    pare_tensor_free(y);
    /* outer product with broadcasting ellipsis: [2,1,3] and [4,3] */
    int64_t e1[3] = {2, 1, 3}, e2[2] = {4, 3};
    pare_tensor *p = mk_rand(3, e1), *q = mk_rand(2, e2);
    y = einsum("...j,...j->...", p, q, NULL);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 4);
    float rb[8];
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            rb[i * 4 + k] = 0;
            for (int j = 0; j < 3; j++)
                rb[i * 4 + k] += ((float *)p->data)[i * 3 + j] * ((float *)q->data)[k * 3 + j];
        }
    expect_tensor(y, rb, 8, 1e-5, "ellipsis bcast");
    pare_tensor_free(y);
    /* errors: bad character, wrong operand count, mismatched sizes */
    pare_tensor *o[H_MAXOUT] = {0};
    pare_error err;
    pare_attr at1[1] = {a_str("equation", "i#,j->ij")};
    opcall b1 = {.op = "Einsum", .opset = 12, .attrs = at1, .n_attrs = 1, .in = {m, m}, .n_in = 2};
    assert_int_not_equal(call_op(&b1, o, &err), PARE_OK);
    pare_attr at2[1] = {a_str("equation", "ij->i")};
    opcall b2 = {.op = "Einsum", .opset = 12, .attrs = at2, .n_attrs = 1, .in = {m, m}, .n_in = 2};
    assert_int_not_equal(call_op(&b2, o, &err), PARE_OK);
    pare_attr at3[1] = {a_str("equation", "ij,ij->i")};
    opcall b3 = {.op = "Einsum", .opset = 12, .attrs = at3, .n_attrs = 1, .in = {a, m}, .n_in = 2};
    assert_int_not_equal(call_op(&b3, o, &err), PARE_OK);
    pare_tensor_free(p);
    pare_tensor_free(q);
    pare_tensor_free(vi);
    pare_tensor_free(m);
    pare_tensor_free(a);
    pare_tensor_free(b);
}

static void test_det(void **state)
{
    (void)state;
    int64_t d[3] = {3, 2, 2};
    double v[12] = {1, 2, 3, 4, 2, 4, 1, 2, 0, 1, 1, 0};
    pare_tensor *x = mk(PARE_DT_DOUBLE, 3, d, v);
    opcall oc = {.op = "Det", .opset = 11, .attrs = NULL, .n_attrs = 0, .in = {x}, .n_in = 1};
    pare_tensor *y = one(&oc);
    assert_int_equal(y->rank, 1);
    const double *yp = y->data;
    assert_true(fabs(yp[0] + 2.0) < 1e-12 && yp[1] == 0.0 && fabs(yp[2] + 1.0) < 1e-12);
    pare_tensor_free(y);
    pare_tensor_free(x);
    int64_t d3[2] = {3, 3};
    float f3[9] = {2, 0, 1, 1, 3, 2, 1, 1, 1};
    pare_tensor *x3 = mk(PARE_DT_FLOAT16, 2, d3, NULL);
    assert_true(pare_dtype_convert(PARE_DT_FLOAT16, x3->data, PARE_DT_FLOAT, f3, 9, false));
    opcall o3 = {.op = "Det", .opset = 22, .attrs = NULL, .n_attrs = 0, .in = {x3}, .n_in = 1};
    y = one(&o3);
    assert_int_equal(y->rank, 0);
    float want = 2 * (3 - 2) - 0 + 1 * (1 - 3);
    expect_tensor(y, &want, 1, 1e-3, "det f16");
    pare_tensor_free(y);
    pare_tensor_free(x3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_portable_all_arches),
        cmocka_unit_test(test_sgemm_dispatch),
        cmocka_unit_test(test_sgemm_packed_bias),
        cmocka_unit_test(test_sgemm_epilogue),
        cmocka_unit_test(test_sgemm_conv_epilogue),
        cmocka_unit_test(test_conv_phase),
        cmocka_unit_test(test_dgemm),
        cmocka_unit_test(test_sgemm_conv),
        cmocka_unit_test(test_conv_paths),
        cmocka_unit_test(test_conv_auto_pad_and_errors),
        cmocka_unit_test(test_fused_conv),
        cmocka_unit_test(test_convtranspose),
        cmocka_unit_test(test_matmul_broadcast),
        cmocka_unit_test(test_matmul_batched_parallel_and_f16),
        cmocka_unit_test(test_matmul_int_wraps),
        cmocka_unit_test(test_gemm_bias_broadcast),
        cmocka_unit_test(test_maxpool_indices),
        cmocka_unit_test(test_maxpool_separable),
        cmocka_unit_test(test_lrn),
        cmocka_unit_test(test_avgpool_pad_counts),
        cmocka_unit_test(test_maxunpool_bad_index),
        cmocka_unit_test(test_layernorm_outputs),
        cmocka_unit_test(test_layernorm_rows),
        cmocka_unit_test(test_batchnorm_training),
        cmocka_unit_test(test_einsum),
        cmocka_unit_test(test_det),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
