/* GEMM core: CBLAS when available, else blocked/packed register-tiled kernels.
 *
 * Portable path (BLIS-like): op(A) is packed into MR-row strips and op(B)
 * into NR-column strips, each per KC-deep block; a microkernel keeps an
 * MR x NR tile of C in vector registers. A plain (not transposed, alpha 1)
 * A that was not packed ahead of time is read in place by a second
 * microkernel (ukrd; its rows are broadcast from memory either way), so a
 * MatMul of activations by weights packs only B; a 1x1 convolution with unit
 * strides and no padding reads its image as a plain B. The build has no -march flag and
 * compiles as ISO C (no FMA contraction), so the microkernels are written
 * once below (the PARE_GEMM_TEMPLATE part, included repeatedly from this very
 * file) over a handful of vector macros, instantiated for AVX-512, AVX2+FMA
 * and plain GCC vectors, and the best one is picked at run time.
 *
 * Threading, two modes:
 *  - private: when N alone splits into a few tasks per thread, a task is a
 *    block of columns over all of M; it packs its own B one depth block at a
 *    time (the pack stays in L2) and A comes packed (ahead of time, or by one
 *    parallel pass before). One or two pool barriers.
 *  - shared: one parallel pass packs A and B (in depth-block x column-group
 *    pieces), a second computes (m-block x n-block) tasks over the packs.
 * B may be a plain matrix or the implicit im2col matrix of a convolution,
 * packed straight from the image (no im2col buffer). In private mode a plain
 * B is read in place, without packing, when M is small and the depth blocks
 * shallow or the rows short (bdirect_pays): packing costs K*N whatever M is.
 *
 * Epilogue (pare_gemm_epilogue): a per-row bias is added by the microkernel
 * in the first depth block; after the last one, column bias, residual and
 * activation run on the accumulators before the store (kepi), or for partial
 * tiles and sigmoid/tanh/GELU as a pass over the tile (epirow) while it is in
 * L1 (GELU on AVX-512: gelu_row512).
 */
#ifndef PARE_GEMM_TEMPLATE

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <math.h>
#include "pare_config.h"
#include "exec/gemm.h"

#if PARE_HAVE_CBLAS
#include <cblas.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GEMM_X86 1
#include <immintrin.h>
#else
#define GEMM_X86 0
#endif

#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)

/* The epilogue of one full tile, applied by the microkernel on its registers
 * (kernels with VMAX only): cb and r point at the tile's first column / first
 * element; act is never SIGMOID or TANH (those run as a pass over the tile). */
typedef struct kepi {
    const float *cb, *r;
    int64_t ldr;
    int act;
    float a, b;
} kepi;

/* MR x NR tile: a packed A strip ([kc][MR]) times kc rows of NR floats of B,
 * ldb apart (NR for a packed strip; a plain B's row stride when it is read
 * in place). */
typedef void (*ukr_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, float *c,
                       int64_t ldc, float beta, const float *bias, const kepi *e);
/* The same with A read in place: MR rows lda apart (no packing). */
typedef void (*ukrd_fn)(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float *c, int64_t ldc, float beta, const float *bias, const kepi *e);
/* The same with B's row p at b + off[p]. */
typedef void (*ukro_fn)(int64_t kc, const float *a, const float *b, const int64_t *off, float *c,
                        int64_t ldc, float beta, const float *bias, const kepi *e);
typedef float (*dot_fn)(int64_t n, const float *x, const float *y);
typedef void (*axpy_fn)(int64_t n, float a, const float *x, float *y);
typedef void (*packb_fn)(int64_t kc, const float *src, int64_t ld, float *dst);
/* One row of the epilogue: c[j] = act(c[j] + rb + cb[j] + r[j]) for j < n
 * (cb, r may be NULL). */
typedef void (*epirow_fn)(int64_t n, float *c, float rb, const float *cb, const float *r, int act,
                          float a, float b);

/* m ? a : b on bit patterns (branch-free, so loops over it vectorise) */
static inline float gsel(uint32_t m, float a, float b)
{
    uint32_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    uint32_t rb = (m & ab) | (~m & bb);
    float r;
    memcpy(&r, &rb, sizeof r);
    return r;
}

/* e^x in float32 for x <= 0 (the erf below): degree-7 polynomial on the
 * reduced argument, 2^n from the exponent bits; under -87 it is 0. */
static inline float gexpf_neg(float x)
{
    float xc = gsel((uint32_t)0 - (uint32_t)(x < -87.0f), -87.0f, x);
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float t = xc * 1.44269504f + magic;
    float n = t - magic;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t ni = (int32_t)(tb - 0x4B400000u);
    uint32_t sb = (uint32_t)(ni + 127) << 23;
    float sc;
    memcpy(&sc, &sb, sizeof sc);
    return gsel((uint32_t)0 - (uint32_t)(x < -87.0f), 0.0f, p * sc);
}

/* GELU, x/2 (1 + erf(x/sqrt 2)), with the executor's erf (x P(x^2) below
 * 0.875, 1 - e^-x^2 Q(1/(1+|x|)) above; within 2.2 ulp), branch-free. */
static inline float gelu1(float x)
{
    float z = x * 0.70710678118654752f;
    float a = fabsf(z);
    float u = z * z;
    float p = -6.235155743e-04f;
    p = p * u + 5.038737785e-03f;
    p = p * u - 2.679630555e-02f;
    p = p * u + 1.128260791e-01f;
    p = p * u - 3.761256933e-01f;
    p = p * u + 1.128379107e+00f;
    float small = z * p;
    float ac = gsel((uint32_t)0 - (uint32_t)(a > 3.92f), 3.92f, a);
    float t = 1.0f / (1.0f + ac);
    float q = -5.297738910e-01f;
    q = q * t + 1.129166126e+00f;
    q = q * t - 4.438444078e-01f;
    q = q * t - 7.254431248e-01f;
    q = q * t + 4.581615925e-01f;
    q = q * t + 5.290531516e-01f;
    q = q * t + 5.678225756e-01f;
    q = q * t - 1.552256581e-04f;
    float big = copysignf(1.0f - gexpf_neg(-(ac * ac)) * q, z);
    float e = gsel((uint32_t)0 - (uint32_t)(a < 0.875f), small, big);
    return 0.5f * x * (1.0f + e);
}

/* Scalar activation of the epilogue (PARE_GEMM_ACT_*). */
static inline float act1(int act, float x, float a, float b)
{
    switch (act) {
    case PARE_GEMM_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case PARE_GEMM_ACT_CLIP:
        return x < a ? a : x > b ? b : x;
    case PARE_GEMM_ACT_LEAKY_RELU:
        return x < 0.0f ? a * x : x;
    case PARE_GEMM_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case PARE_GEMM_ACT_HARDSIGMOID: {
        float t = a * x + b;
        return t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    }
    case PARE_GEMM_ACT_HARDSWISH: {
        float t = a * x + b;
        return x * (t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t);
    }
    case PARE_GEMM_ACT_TANH:
        return tanhf(x);
    case PARE_GEMM_ACT_GELU:
        return gelu1(x);
    default:
        return x;
    }
}

typedef struct gemm_arch {
    const char *name;
    int mr, nr;
    ukr_fn ukr;
    ukrd_fn ukrd;
    ukro_fn ukro;
    dot_fn dot;
    axpy_fn axpy;
    packb_fn packb; /* kc rows of NR floats (row stride ld) into [kc][NR] */
    epirow_fn epirow;
    bool regepi; /* the microkernels apply a kepi */
} gemm_arch;

#define GEMM_MAX_TILE (16 * 64)

/* ---- generic: GCC vector extensions, 4 lanes ---------------------------- */
typedef float gen_v4 __attribute__((vector_size(16)));
static inline gen_v4 gen_load(const float *p)
{
    gen_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void gen_store(float *p, gen_v4 v)
{
    memcpy(p, &v, sizeof v);
}
static inline gen_v4 gen_set1(float x)
{
    return (gen_v4){x, x, x, x};
}
static inline float gen_hsum(gen_v4 v)
{
    return (v[0] + v[1]) + (v[2] + v[3]);
}

#define PARE_GEMM_TEMPLATE
#define ARCH generic
#define ATTR
#define V gen_v4
#define VW 4
#define MR 4
#define NV 2
#define VLOAD(p) gen_load(p)
#define VSTORE(p, v) gen_store((p), (v))
#define VSET1(x) gen_set1(x)
#define VZERO() gen_set1(0.0f)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#define VHSUM(v) gen_hsum(v)
#include "gemm.c"

#if GEMM_X86
/* gelu1 over a row on 16 lanes with fused multiply-adds (the epilogue's
 * GELU on AVX-512; within gelu1's error, not its exact bits) */
__attribute__((target("avx512f"))) static void gelu_row512(float *c, int64_t n)
{
    static const float pc[5] = {5.038737785e-03f, -2.679630555e-02f, 1.128260791e-01f,
                                -3.761256933e-01f, 1.128379107e+00f};
    static const float qc[7] = {1.129166126e+00f, -4.438444078e-01f, -7.254431248e-01f,
                                4.581615925e-01f,  5.290531516e-01f,  5.678225756e-01f,
                                -1.552256581e-04f};
    static const float ec[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f,
                                0.5f,          1.0f,          1.0f};
    const __m512 magic = _mm512_set1_ps(12582912.0f), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 x = _mm512_maskz_loadu_ps(m, c + i);
        __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
        __m512 a = _mm512_abs_ps(z), u = _mm512_mul_ps(z, z);
        __m512 p = _mm512_set1_ps(-6.235155743e-04f);
        for (int k = 0; k < 5; k++)
            p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(pc[k]));
        __m512 small = _mm512_mul_ps(z, p);
        __m512 ac = _mm512_min_ps(a, _mm512_set1_ps(3.92f));
        __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, ac));
        __m512 q = _mm512_set1_ps(-5.297738910e-01f);
        for (int k = 0; k < 7; k++)
            q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(qc[k]));
        /* e^-(ac^2), ac^2 <= 15.4: no clamping needed */
        __m512 xe = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ac, ac));
        __m512 te = _mm512_fmadd_ps(xe, _mm512_set1_ps(1.44269504f), magic);
        __m512 ne = _mm512_sub_ps(te, magic);
        __m512 r = _mm512_fnmadd_ps(ne, _mm512_set1_ps(0.693359375f), xe);
        r = _mm512_fmadd_ps(ne, _mm512_set1_ps(2.12194440e-4f), r);
        __m512 pe = _mm512_set1_ps(1.0f / 5040.0f);
        for (int k = 0; k < 7; k++)
            pe = _mm512_fmadd_ps(pe, r, _mm512_set1_ps(ec[k]));
        __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(te), _mm512_set1_epi32(0x4B400000));
        __m512 sc = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23));
        __m512 big = _mm512_fnmadd_ps(_mm512_mul_ps(pe, sc), q, one); /* in [0, 1] */
        big = _mm512_castsi512_ps(
            _mm512_or_epi32(_mm512_castps_si512(big),
                            _mm512_and_epi32(_mm512_castps_si512(z),
                                             _mm512_set1_epi32((int)0x80000000u))));
        __mmask16 lt = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.875f), _CMP_LT_OQ);
        __m512 e = _mm512_mask_blend_ps(lt, big, small);
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(c + i, m, y);
    }
}

/* ---- AVX2 + FMA: 6 x 16 tile -------------------------------------------- */
__attribute__((target("avx2,fma"))) static inline float avx2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#define ARCH avx2
#define ATTR __attribute__((target("avx2,fma")))
#define V __m256
#define VW 8
#define MR 6
#define NV 2
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#define VHSUM(v) avx2_hsum(v)
#include "gemm.c"

/* ---- AVX-512: 12 x 32 tile ----------------------------------------------- */
#define ARCH avx512
#define ATTR __attribute__((target("avx512f")))
#define GEMM_GELU_ROW gelu_row512
#define V __m512
#define VW 16
#define MR 12
#define NV 2
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#include "gemm.c"

/* the same with an 8 x 32 tile (less padding when M is a multiple of 8) */
#define ARCH avx512x8
#define ATTR __attribute__((target("avx512f")))
#define V __m512
#define VW 16
#define MR 8
#define NV 2
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define GEMM_UKR_ONLY
#include "gemm.c"
#undef GEMM_UKR_ONLY

/* a 12 x 16 tile for products with at most 16 columns (e.g. attention's
 * probs x V with a head size of 16), which a 32-wide tile would half waste */
#define ARCH avx512n16
#define ATTR __attribute__((target("avx512f")))
#define GEMM_GELU_ROW gelu_row512
#define V __m512
#define VW 16
#define MR 12
#define NV 1
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#include "gemm.c"
#endif
#undef PARE_GEMM_TEMPLATE

static const gemm_arch arch_generic = {"generic",     4,           8,
                                       ukr_generic,   ukrd_generic, ukro_generic, dot_generic,
                                       axpy_generic,  packb_generic, epirow_generic, false};
#if GEMM_X86
static const gemm_arch arch_avx2 = {"avx2",    6,          16,        ukr_avx2,      ukrd_avx2,
                                    ukro_avx2, dot_avx2,  axpy_avx2,  packb_avx2, epirow_avx2, true};
static const gemm_arch arch_avx512 = {"avx512",    12,          32,          ukr_avx512,
                                      ukrd_avx512, ukro_avx512, dot_avx512,  axpy_avx512, packb_avx512,
                                      epirow_avx512, true};
static const gemm_arch arch_avx512x8 = {"avx512x8",    8,           32,          ukr_avx512x8,
                                        ukrd_avx512x8, ukro_avx512x8, dot_avx512,  axpy_avx512, packb_avx512,
                                        epirow_avx512, true};
static const gemm_arch arch_avx512n16 = {"avx512n16",   12,          16,
                                         ukr_avx512n16, ukrd_avx512n16, ukro_avx512n16, dot_avx512n16,
                                         axpy_avx512n16, packb_avx512n16, epirow_avx512n16,
                                         true};
#endif

static const gemm_arch *arch_cur;
static pthread_once_t arch_once = PTHREAD_ONCE_INIT;

static void arch_pick(void)
{
    arch_cur = &arch_generic;
#if GEMM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        arch_cur = &arch_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        arch_cur = &arch_avx2;
#endif
}

static const gemm_arch *arch_get(void)
{
    pthread_once(&arch_once, arch_pick);
    return arch_cur;
}

/* The kernel for a product with M rows. On AVX-512 both the 12 x 32 and the
 * 8 x 32 tile are bound by the FMA ports (the broadcasts and B loads fit the
 * load ports either way), so the one that pads M less wins: 8 rows for the
 * multiples of 8 that are not multiples of 12 (64, 128, ... 2048), 12 for
 * the rest. */
static const gemm_arch *arch_for(int64_t M)
{
    const gemm_arch *ar = arch_get();
#if GEMM_X86
    if (ar == &arch_avx512 && (M + 7) / 8 * 8 < (M + 11) / 12 * 12)
        return &arch_avx512x8;
#endif
    return ar;
}

/* The kernel for an M x N product whose A is not packed ahead of time: the
 * 16-wide AVX-512 tile when N fits it. */
static const gemm_arch *arch_for_mn(int64_t M, int64_t N)
{
    const gemm_arch *ar = arch_for(M);
#if GEMM_X86
    if ((ar == &arch_avx512 || ar == &arch_avx512x8) && N <= 16)
        return &arch_avx512n16;
#endif
    (void)N;
    return ar;
}

const char *pare_sgemm_arch(void)
{
    return arch_get()->name;
}

bool pare_sgemm_force_arch(const char *name)
{
    arch_get();
    if (!strcmp(name, "generic")) {
        arch_cur = &arch_generic;
        return true;
    }
#if GEMM_X86
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        arch_cur = &arch_avx2;
        return true;
    }
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f")) {
        arch_cur = &arch_avx512;
        return true;
    }
    if (!strcmp(name, "avx512x8") && __builtin_cpu_supports("avx512f")) {
        arch_cur = &arch_avx512x8;
        return true;
    }
#endif
    return false;
}

/* CBLAS is used only when the kernels here have nothing better than
 * baseline vectors. With AVX2 or AVX-512 they are as fast as OpenBLAS on
 * large products and several times faster on the small ones of a CNN at
 * batch 1 (OpenBLAS 0.3.21 on Zen: light_squeezenet 17 ms against 6.3 ms,
 * light_resnet50 even, 2 threads), and they compute every row of C in the
 * same order: OpenBLAS's edge kernels round differently from its main one,
 * so identical rows of A (light_squeezenet's constant weights) gave outputs
 * an ulp apart, which its final Softmax over logits of 1e10 turns into a
 * wrong answer. (An OpenBLAS that does not know the CPU is slower still:
 * 0.3.21 on Sapphire Rapids says "Prescott".) */
static bool blas_ok;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_pick(void)
{
#if PARE_HAVE_CBLAS
    blas_ok = arch_get() == &arch_generic;
#endif
}

bool pare_sgemm_uses_blas(void)
{
    pthread_once(&blas_once, blas_pick);
    return blas_ok;
}

/* ---- per-thread scratch --------------------------------------------------- */

typedef struct scratch_set {
    void *p[PARE_SCRATCH_SLOTS];
    size_t n[PARE_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t scratch_key;
static int scratch_key_ok;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *v)
{
    scratch_set *s = v;
    for (int i = 0; i < PARE_SCRATCH_SLOTS; i++)
        free(s->p[i]);
    free(s);
}

static void scratch_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

void *pare_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= PARE_SCRATCH_SLOTS)
        return NULL;
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok)
        return NULL;
    scratch_set *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (bytes == 0)
        bytes = 64;
    if (s->n[slot] < bytes) {
        if (bytes > SIZE_MAX - 63)
            return NULL;
        /* grow by 1.5x so a slowly rising size does not reallocate each call */
        size_t want = bytes;
        if (s->n[slot] > 0 && s->n[slot] < SIZE_MAX / 2 && s->n[slot] + s->n[slot] / 2 > want)
            want = s->n[slot] + s->n[slot] / 2;
        want = (want + 63) & ~(size_t)63;
        void *p = NULL;
        if (posix_memalign(&p, 64, want) != 0)
            return NULL;
        free(s->p[slot]);
        s->p[slot] = p;
        s->n[slot] = want;
    }
    return s->p[slot];
}

/* Frees the GEMM's own scratch slots (0 and 1) of the calling thread when
 * larger than keep bytes: the packs of a rare huge product are not kept for
 * the thread's lifetime. Kernels' slots are left alone (they may be in use). */
static void scratch_trim(size_t keep)
{
    if (!scratch_key_ok)
        return;
    scratch_set *s = pthread_getspecific(scratch_key);
    for (int i = 0; s && i < 2; i++)
        if (s->n[i] > keep) {
            free(s->p[i]);
            s->p[i] = NULL;
            s->n[i] = 0;
        }
}

#define GEMM_SCRATCH_KEEP ((size_t)64 << 20)

/* ---- packing -------------------------------------------------------------- */

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}
static inline int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}
/* ceil(a / b) for b > 0 and any sign of a */
static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* KC: depth of a packed block. 256 keeps an AVX-512 B micro-panel (256 x 32
 * floats) in a 48 KiB L1. */
#define GEMM_KC 256

/* Depth of the blocks K is cut into: at most GEMM_KC, all about equal (576
 * becomes 3 x 192, not 256 + 256 + 64). A function of K alone, so A packed
 * ahead of time and the driver agree. */
static int64_t kc_block(int64_t K)
{
    int64_t nb = (K + GEMM_KC - 1) / GEMM_KC;
    return nb > 1 ? (K + nb - 1) / nb : K;
}

/* Packs rows [m0, m0+mr) x cols [k0, k0+kc) of op(A)*alpha as [kc][MR]. */
static void pack_a_strip(bool trans, const float *A, int64_t lda, float alpha, int64_t m0,
                         int64_t mr, int64_t k0, int64_t kc, int MR_, float *dst)
{
    if (trans) { /* op(A)[i][k] = A[k][i]: rows of A are contiguous in i */
        for (int64_t k = 0; k < kc; k++) {
            const float *s = A + (k0 + k) * lda + m0;
            float *d = dst + k * MR_;
            int64_t i = 0;
            if (alpha == 1.0f)
                for (; i < mr; i++)
                    d[i] = s[i];
            else
                for (; i < mr; i++)
                    d[i] = alpha * s[i];
            for (; i < MR_; i++)
                d[i] = 0.0f;
        }
    } else {
        for (int64_t i = 0; i < mr; i++) {
            const float *s = A + (m0 + i) * lda + k0;
            if (alpha == 1.0f)
                for (int64_t k = 0; k < kc; k++)
                    dst[k * MR_ + i] = s[k];
            else
                for (int64_t k = 0; k < kc; k++)
                    dst[k * MR_ + i] = alpha * s[k];
        }
        for (int64_t i = mr; i < MR_; i++)
            for (int64_t k = 0; k < kc; k++)
                dst[k * MR_ + i] = 0.0f;
    }
}

/* One im2col row k, columns [n0, n0+nn), written contiguously to d. */
static void im2col_row(const pare_im2col *g, int64_t k, int64_t n0, int64_t nn, float *d)
{
    int64_t khw = g->kh * g->kw;
    int64_t c = k / khw, r = k - c * khw;
    int64_t ky = r / g->kw, kx = r - ky * g->kw;
    int64_t offy = ky * g->dh - g->ph, offx = kx * g->dw - g->pw;
    const float *xc = g->x + c * g->h * g->w;
    int64_t oy = n0 / g->ow, ox = n0 - oy * g->ow;
    int64_t j = 0;
    while (j < nn) {
        int64_t seg = min64(nn - j, g->ow - ox);
        int64_t iy = oy * g->sh + offy;
        float *dd = d + j;
        if (iy < 0 || iy >= g->h) {
            memset(dd, 0, (size_t)seg * sizeof *dd);
        } else {
            const float *xr = xc + iy * g->w;
            int64_t base = ox * g->sw + offx; /* ix of t = 0 */
            int64_t lo = max64(0, min64(seg, ceil_div(-base, g->sw)));
            int64_t hi = max64(lo, min64(seg, ceil_div(g->w - base, g->sw)));
            for (int64_t t = 0; t < lo; t++)
                dd[t] = 0.0f;
            if (g->sw == 1) {
                memcpy(dd + lo, xr + base + lo, (size_t)(hi - lo) * sizeof *dd);
            } else {
                const float *xs = xr + base;
                for (int64_t t = lo; t < hi; t++)
                    dd[t] = xs[t * g->sw];
            }
            for (int64_t t = hi; t < seg; t++)
                dd[t] = 0.0f;
        }
        j += seg;
        ox = 0;
        oy++;
    }
}

typedef struct bsrc {
    bool trans;
    const float *B;
    int64_t ldb;
    const pare_im2col *img; /* non-NULL: B is the implicit im2col matrix */
    const int64_t *off;     /* non-NULL: row k of B is B + off[k] (contiguous) */
    /* vw > 0: columns are virtual, vw a row of which the first vow are real
     * (conv_phase); C, the residual and ldc/ldr are in real columns */
    int64_t vw, vow;
} bsrc;

#if GEMM_X86
/* Short contiguous copies and zero fills (at most one NR-wide piece) with
 * masked AVX-512 moves: no scalar tail loop, no libc call. Masked-out lanes
 * are neither read nor written. */
__attribute__((target("avx512f"))) static void put_piece_avx512(float *d, const float *src,
                                                                 int64_t n)
{
    for (; n >= 16; n -= 16, d += 16) {
        _mm512_storeu_ps(d, src ? _mm512_loadu_ps(src) : _mm512_setzero_ps());
        if (src)
            src += 16;
    }
    if (n > 0) {
        __mmask16 m = (__mmask16)((1u << n) - 1);
        _mm512_mask_storeu_ps(d, m, src ? _mm512_maskz_loadu_ps(m, src) : _mm512_setzero_ps());
    }
}
#endif

static bool put_avx512;
static pthread_once_t put_once = PTHREAD_ONCE_INIT;
static void put_pick(void)
{
#if GEMM_X86
    __builtin_cpu_init();
    put_avx512 = __builtin_cpu_supports("avx512f");
#endif
}

/* Writes `count` values of packed row kk starting at block column j (strips
 * of kc*NR floats): from src with stride `inc`, or zeros when src is NULL. */
static void put_run(float *dst, int64_t kk, int64_t kc, int nr, int64_t j, int64_t count,
                    const float *src, int64_t inc)
{
    while (count > 0) {
        int64_t strip = j / nr, lane = j - strip * nr;
        int64_t piece = min64(count, nr - lane);
        float *d = dst + strip * kc * nr + kk * nr + lane;
        /* pieces are at most NR floats: plain loops beat a libc call */
#if GEMM_X86
        if (put_avx512 && (!src || inc == 1))
            put_piece_avx512(d, src, piece);
        else
#endif
        if (!src)
            for (int64_t t = 0; t < piece; t++)
                d[t] = 0.0f;
        else if (inc == 1)
            for (int64_t t = 0; t < piece; t++)
                d[t] = src[t];
        else
            for (int64_t t = 0; t < piece; t++)
                d[t] = src[t * inc];
        if (src)
            src += piece * inc;
        j += piece;
        count -= piece;
    }
}

/* im2col rows [k0, k0+kc), columns [n0, n0+nn) into strips at dst. Work is
 * done per packed row and per output row, so the index arithmetic (and its
 * divisions) is paid once per run of columns, not once per element. */
static void pack_b_im2col(const pare_im2col *g, int64_t k0, int64_t kc, int64_t n0, int64_t nn,
                          int nr, float *dst)
{
    pthread_once(&put_once, put_pick);
    int64_t khw = g->kh * g->kw;
    int64_t oy0 = n0 / g->ow, ox0 = n0 - oy0 * g->ow;
    int64_t c = k0 / khw, r = k0 - c * khw;
    int64_t ky = r / g->kw, kx = r - ky * g->kw;
    for (int64_t kk = 0; kk < kc; kk++) {
        int64_t offy = ky * g->dh - g->ph, offx = kx * g->dw - g->pw;
        const float *xc = g->x + c * g->h * g->w;
        int64_t oy = oy0, ox = ox0, j = 0;
        while (j < nn) {
            int64_t seg = min64(nn - j, g->ow - ox);
            int64_t iy = oy * g->sh + offy;
            if (iy < 0 || iy >= g->h) {
                put_run(dst, kk, kc, nr, j, seg, NULL, 0);
            } else {
                const float *xr = xc + iy * g->w;
                int64_t base = ox * g->sw + offx; /* input column of the run's first output */
                int64_t lo, hi;
                if (g->sw == 1) {
                    lo = max64(0, min64(seg, -base));
                    hi = max64(lo, min64(seg, g->w - base));
                } else {
                    lo = max64(0, min64(seg, ceil_div(-base, g->sw)));
                    hi = max64(lo, min64(seg, ceil_div(g->w - base, g->sw)));
                }
                if (lo > 0)
                    put_run(dst, kk, kc, nr, j, lo, NULL, 0);
                if (hi > lo)
                    put_run(dst, kk, kc, nr, j + lo, hi - lo, xr + base + lo * g->sw, g->sw);
                if (seg > hi)
                    put_run(dst, kk, kc, nr, j + hi, seg - hi, NULL, 0);
            }
            j += seg;
            ox = 0;
            oy++;
        }
        int64_t pad = (nn + nr - 1) / nr * nr - nn;
        if (pad)
            put_run(dst, kk, kc, nr, nn, pad, NULL, 0);
        if (++kx == g->kw) {
            kx = 0;
            if (++ky == g->kh) {
                ky = 0;
                c++;
            }
        }
    }
}

/* Packs rows [k0, k0+kc) x cols [n0, n0+nn) of op(B) as ceil(nn/NR) strips
 * of [kc][NR], kc*NR floats apart, zero padded. */
static void pack_b_block(const gemm_arch *ar, const bsrc *s, int64_t k0, int64_t kc, int64_t n0,
                         int64_t nn, float *dst)
{
    int nr = ar->nr;
    if (s->img) {
        pack_b_im2col(s->img, k0, kc, n0, nn, nr, dst);
        return;
    }
    if (s->off) {
        for (int64_t j0 = 0; j0 < nn; j0 += nr) {
            int64_t w = min64(nr, nn - j0);
            float *d = dst + (j0 / nr) * kc * nr;
            for (int64_t k = 0; k < kc; k++) {
                const float *src = s->B + s->off[k0 + k] + n0 + j0;
                float *dk = d + k * nr;
                for (int64_t j = 0; j < w; j++)
                    dk[j] = src[j];
                for (int64_t j = w; j < nr; j++)
                    dk[j] = 0.0f;
            }
        }
        return;
    }
    for (int64_t j0 = 0; j0 < nn; j0 += nr) {
        int64_t w = min64(nr, nn - j0);
        float *d = dst + (j0 / nr) * kc * nr;
        if (!s->trans && w == nr) {
            ar->packb(kc, s->B + k0 * s->ldb + n0 + j0, s->ldb, d);
        } else if (!s->trans) {
            for (int64_t k = 0; k < kc; k++) {
                memcpy(d + k * nr, s->B + (k0 + k) * s->ldb + n0 + j0, (size_t)w * sizeof *d);
                for (int64_t j = w; j < nr; j++)
                    d[k * nr + j] = 0.0f;
            }
        } else { /* op(B)[k][n] = B[n][k] */
            for (int64_t j = 0; j < w; j++) {
                const float *src = s->B + (n0 + j0 + j) * s->ldb + k0;
                for (int64_t k = 0; k < kc; k++)
                    d[k * nr + j] = src[k];
            }
            for (int64_t j = w; j < nr; j++)
                for (int64_t k = 0; k < kc; k++)
                    d[k * nr + j] = 0.0f;
        }
    }
}

/* Packed layout (A and B alike): the block of depth rows [k0, k0+kc) starts
 * at k0 * pad (pad = strips * MR or NR), strip s of it at + s * kc * MR. */

struct pare_sgemm_packed_a {
    const gemm_arch *arch;
    int64_t M, K, mpad;
    float *data; /* mpad * K floats */
    bool owned;
};

void pare_sgemm_packed_a_free(pare_sgemm_packed_a *p)
{
    if (!p)
        return;
    if (p->owned)
        free(p->data);
    free(p);
}

typedef struct pack_a_job {
    bool trans;
    const float *A;
    int64_t lda;
    float alpha;
    int64_t M, K, mpad;
    int mr;
    float *dst;
} pack_a_job;

static void pack_a_one(const pack_a_job *j, int64_t s)
{
    int64_t m0 = s * j->mr, mr = min64(j->mr, j->M - m0);
    int64_t kb = kc_block(j->K);
    for (int64_t k0 = 0; k0 < j->K; k0 += kb) {
        int64_t kc = min64(kb, j->K - k0);
        pack_a_strip(j->trans, j->A, j->lda, j->alpha, m0, mr, k0, kc, j->mr,
                     j->dst + k0 * j->mpad + s * kc * j->mr);
    }
}

static void pack_a_range(void *ctx, int64_t b, int64_t e)
{
    for (int64_t s = b; s < e; s++)
        pack_a_one(ctx, s);
}

pare_status pare_sgemm_pack_a(bool transA, int64_t M, int64_t K, float alpha, const float *A,
                              int64_t lda, pare_sgemm_packed_a **out)
{
    *out = NULL;
    const gemm_arch *ar = arch_for(M);
    pare_sgemm_packed_a *p = calloc(1, sizeof *p);
    if (!p)
        return PARE_ERR_NOMEM;
    p->arch = ar;
    p->M = M;
    p->K = K;
    p->mpad = (M + ar->mr - 1) / ar->mr * ar->mr;
    size_t n = (size_t)p->mpad * (size_t)(K > 0 ? K : 1);
    if (posix_memalign((void **)&p->data, 64, n * sizeof(float)) != 0) {
        free(p);
        return PARE_ERR_NOMEM;
    }
    p->owned = true;
    pack_a_job j = {transA, A, lda, alpha, M, K, p->mpad, ar->mr, p->data};
    pack_a_range(&j, 0, p->mpad / ar->mr);
    *out = p;
    return PARE_OK;
}

/* ---- the blocked driver --------------------------------------------------- */

typedef struct drive {
    const gemm_arch *ar;
    int64_t M, K, mpad, kb;
    const float *pa;  /* packed A */
    pack_a_job apack; /* when A is packed in this call (apack.dst != NULL) */
    const float *ad;  /* A read in place (row-major, alpha 1) or NULL; then pa
                         holds only the last, partial strip (if any) packed */
    int64_t lda;
    int64_t a_strips; /* A strips the pack pass does */
    bsrc b;
    bool bdirect; /* plain B read in place (private mode only) */
    float *pb; /* shared packed B for the current N chunk (shared mode) */
    int64_t n0, nc, npad;
    float beta;
    const float *bias; /* per row, added by the microkernels in the first depth block */
    bool post;         /* an epilogue pass over each tile after its last depth block */
    const float *cbias; /* per column */
    const float *res;
    int64_t ldr;
    int act;
    float act_a, act_b;
    float *C;
    int64_t ldc;
    int64_t mb, nb, tn; /* strips per task along m and n, tasks along n */
    int64_t bgroup;     /* B strips per pack item (shared mode) */
    int64_t bgroups;    /* groups per depth block */
    int nomem;
} drive;

/* Pack pass: items [0, a_strips) are A strips (all of K); then (depth block,
 * group of bgroup B strips) pairs, depth block major. */
static void pack_range(void *ctx, int64_t b, int64_t e)
{
    drive *d = ctx;
    int nr = d->ar->nr;
    for (int64_t it = b; it < e; it++) {
        if (it < d->a_strips) {
            pack_a_one(&d->apack, it);
            continue;
        }
        int64_t q = it - d->a_strips, kbi = q / d->bgroups, gi = q - kbi * d->bgroups;
        int64_t k0 = kbi * d->kb, kc = min64(d->kb, d->K - k0);
        int64_t s0 = gi * d->bgroup;
        int64_t n0 = s0 * nr, nn = min64(d->bgroup * nr, d->nc - n0);
        pack_b_block(d->ar, &d->b, k0, kc, d->n0 + n0, nn, d->pb + k0 * d->npad + s0 * kc * nr);
    }
}

/* compute_block for virtual columns (d->b.vw): each tile is computed into
 * a buffer and its real columns are added (or, in the first depth block,
 * stored with the row bias and beta*C) to C, row segment by row segment; the
 * epilogue runs on them after the last depth block. */
static inline __attribute__((always_inline)) void
compute_block_virtual_body(const drive *d, int64_t k0, int64_t kc, int64_t s0, int64_t s1,
                           int64_t u0, int64_t u1, const float *pb)
{
    const gemm_arch *ar = d->ar;
    int mr = ar->mr, nr = ar->nr;
    float tmp[GEMM_MAX_TILE] __attribute__((aligned(64)));
    bool first = k0 == 0, last = k0 + kc == d->K;
    int64_t vw = d->b.vw, vow = d->b.vow;
    for (int64_t u = u0; u < u1; u++) {
        int64_t j0 = u * nr, nn = min64(nr, d->nc - j0);
        const float *bp = pb + (u - u0) * kc * nr;
        const int64_t *boff = NULL;
        if (d->bdirect) {
            if (nn == nr) {
                bp = d->b.B + d->n0 + j0;
                boff = d->b.off + k0;
            } else {
                bp = pb;
            }
        }
        /* the tile's real runs: (offset in the tile, real column, length) */
        int64_t runs[GEMM_MAX_TILE / 4][3], nrun = 0;
        for (int64_t t = 0; t < nn;) {
            int64_t p = d->n0 + j0 + t, oy = p / vw, ox = p - oy * vw;
            int64_t len = min64(nn - t, vw - ox);
            if (ox < vow) {
                runs[nrun][0] = t;
                runs[nrun][1] = oy * vow + ox;
                runs[nrun][2] = min64(len, vow - ox);
                nrun++;
            }
            t += len;
        }
        if (!nrun)
            continue;
        /* one run over the whole tile: straight into C, as compute_block */
        bool whole = nrun == 1 && nn == nr && runs[0][2] == nr;
        bool inreg = whole && last && d->post && ar->regepi && d->act != PARE_GEMM_ACT_SIGMOID &&
                     d->act != PARE_GEMM_ACT_TANH && d->act != PARE_GEMM_ACT_GELU;
        for (int64_t s = s0; s < s1; s++) {
            int64_t i0 = s * mr, mm = min64(mr, d->M - i0);
            const float *ap = d->pa + k0 * d->mpad + s * kc * mr;
            if (whole && mm == mr) {
                int64_t col = runs[0][1];
                float *c = d->C + i0 * d->ldc + col;
                const float *bias = first && d->bias ? d->bias + i0 : NULL;
                float beta = first ? d->beta : 1.0f;
                kepi ke = {NULL, d->res ? d->res + i0 * d->ldr + col : NULL, d->ldr, d->act,
                           d->act_a, d->act_b};
                const kepi *e = inreg ? &ke : NULL;
                if (boff)
                    ar->ukro(kc, ap, bp, boff, c, d->ldc, beta, bias, e);
                else
                    ar->ukr(kc, ap, bp, nr, c, d->ldc, beta, bias, e);
                if (last && d->post && !inreg)
                    for (int64_t i = 0; i < mm; i++)
                        ar->epirow(nr, c + i * d->ldc, 0.0f, NULL,
                                   d->res ? d->res + (i0 + i) * d->ldr + col : NULL, d->act,
                                   d->act_a, d->act_b);
                continue;
            }
            if (boff)
                ar->ukro(kc, ap, bp, boff, tmp, nr, 0.0f, NULL, NULL);
            else
                ar->ukr(kc, ap, bp, nr, tmp, nr, 0.0f, NULL, NULL);
            for (int64_t i = 0; i < mm; i++) {
                float *cr = d->C + (i0 + i) * d->ldc;
                const float *tr = tmp + i * nr;
                float bi = first && d->bias ? d->bias[i0 + i] : 0.0f;
                for (int64_t r = 0; r < nrun; r++) {
                    float *c = cr + runs[r][1];
                    const float *tt = tr + runs[r][0];
                    int64_t len = runs[r][2];
                    const float *res =
                        d->res ? d->res + (i0 + i) * d->ldr + runs[r][1] : NULL;
                    bool epi = last && d->post;
                    /* epirow: c = act(c + rb + cb + r), vectorised */
                    if (first && d->beta == 0.0f) {
                        /* the common single-block case in one pass; NaN
                         * passes Relu and Clip as in epirow */
                        int act = epi ? d->act : PARE_GEMM_ACT_NONE;
                        if (!res && act == PARE_GEMM_ACT_RELU) {
                            for (int64_t j = 0; j < len; j++) {
                                float x = tt[j] + bi;
                                c[j] = x < 0.0f ? 0.0f : x;
                            }
                        } else if (!res && act == PARE_GEMM_ACT_CLIP) {
                            float lo = d->act_a, hi = d->act_b;
                            for (int64_t j = 0; j < len; j++) {
                                float x = tt[j] + bi;
                                c[j] = x < lo ? lo : x > hi ? hi : x;
                            }
                        } else {
                            for (int64_t j = 0; j < len; j++)
                                c[j] = tt[j] + bi;
                            if (epi)
                                ar->epirow(len, c, 0.0f, NULL, res, d->act, d->act_a, d->act_b);
                        }
                        continue;
                    }
                    if (first && d->beta != 1.0f)
                        for (int64_t j = 0; j < len; j++)
                            c[j] *= d->beta;
                    ar->epirow(len, c, bi, tt, NULL, PARE_GEMM_ACT_NONE, 0.0f, 0.0f);
                    if (epi)
                        ar->epirow(len, c, 0.0f, NULL, res, d->act, d->act_a, d->act_b);
                }
            }
        }
    }
}

/* the body above for baseline x86-64, and compiled for AVX-512 (its row
 * copies then take 16 lanes) */
static void compute_block_virtual(const drive *d, int64_t k0, int64_t kc, int64_t s0, int64_t s1,
                                  int64_t u0, int64_t u1, const float *pb)
{
    compute_block_virtual_body(d, k0, kc, s0, s1, u0, u1, pb);
}

#if GEMM_X86
__attribute__((target("avx512f"))) static void
compute_block_virtual_avx512(const drive *d, int64_t k0, int64_t kc, int64_t s0, int64_t s1,
                             int64_t u0, int64_t u1, const float *pb)
{
    compute_block_virtual_body(d, k0, kc, s0, s1, u0, u1, pb);
}
#endif

/* Strips s0..s1 of A times strips u0..u1 of B over one depth block; pb
 * points at strip u0 of the block, strips kc*nr apart. When B is read in
 * place (d->bdirect) its full strips come from B itself and pb holds only
 * the packed partial last strip. */
static void compute_block(const drive *d, int64_t k0, int64_t kc, int64_t s0, int64_t s1,
                          int64_t u0, int64_t u1, const float *pb)
{
    if (d->b.vw) {
#if GEMM_X86
        if (__builtin_cpu_supports("avx512f"))
            compute_block_virtual_avx512(d, k0, kc, s0, s1, u0, u1, pb);
        else
#endif
            compute_block_virtual(d, k0, kc, s0, s1, u0, u1, pb);
        return;
    }
    const gemm_arch *ar = d->ar;
    int mr = ar->mr, nr = ar->nr;
    float tmp[GEMM_MAX_TILE] __attribute__((aligned(64)));
    float beta = k0 == 0 ? d->beta : 1.0f;
    const float *bias = k0 == 0 ? d->bias : NULL;
    bool last = d->post && k0 + kc == d->K;
    /* full tiles of the last block: the epilogue runs in the microkernel */
    bool inreg = last && ar->regepi && d->act != PARE_GEMM_ACT_SIGMOID &&
                 d->act != PARE_GEMM_ACT_TANH && d->act != PARE_GEMM_ACT_GELU;
    kepi ke = {NULL, NULL, d->ldr, d->act, d->act_a, d->act_b};
    const float *pa = d->ad ? d->pa + k0 * mr : d->pa + k0 * d->mpad;
    for (int64_t u = u0; u < u1; u++) {
        int64_t j0 = u * nr, nn = min64(nr, d->nc - j0);
        const float *bp = pb + (u - u0) * kc * nr;
        int64_t ldb = nr;
        const int64_t *boff = NULL; /* B rows at offsets (never with A in place) */
        if (d->bdirect) {
            if (nn == nr && d->b.off) {
                bp = d->b.B + d->n0 + j0;
                boff = d->b.off + k0;
            } else if (nn == nr) {
                bp = d->b.B + k0 * d->b.ldb + d->n0 + j0;
                ldb = d->b.ldb;
            } else {
                bp = pb;
            }
        }
        for (int64_t s = s0; s < s1; s++) {
            int64_t i0 = s * mr, mm = min64(mr, d->M - i0);
            bool direct = d->ad && mm == mr;
            const float *ap = direct ? d->ad + i0 * d->lda + k0 : d->ad ? pa : pa + s * kc * mr;
            float *c = d->C + i0 * d->ldc + d->n0 + j0;
            bool done = false;
            if (mm == mr && nn == nr) {
                const kepi *e = NULL;
                if (inreg) {
                    int64_t jc = d->n0 + j0;
                    ke.cb = d->cbias ? d->cbias + jc : NULL;
                    ke.r = d->res ? d->res + i0 * d->ldr + jc : NULL;
                    e = &ke;
                    done = true;
                }
                if (direct)
                    ar->ukrd(kc, ap, d->lda, bp, ldb, c, d->ldc, beta, bias ? bias + i0 : NULL, e);
                else if (boff)
                    ar->ukro(kc, ap, bp, boff, c, d->ldc, beta, bias ? bias + i0 : NULL, e);
                else
                    ar->ukr(kc, ap, bp, ldb, c, d->ldc, beta, bias ? bias + i0 : NULL, e);
            } else {
                if (direct)
                    ar->ukrd(kc, ap, d->lda, bp, ldb, tmp, nr, 0.0f, NULL, NULL);
                else if (boff)
                    ar->ukro(kc, ap, bp, boff, tmp, nr, 0.0f, NULL, NULL);
                else
                    ar->ukr(kc, ap, bp, ldb, tmp, nr, 0.0f, NULL, NULL);
                for (int64_t i = 0; i < mm; i++) {
                    float bi = bias ? bias[i0 + i] : 0.0f;
                    float *cr = c + i * d->ldc;
                    const float *tr = tmp + i * nr;
                    if (beta == 0.0f)
                        for (int64_t j = 0; j < nn; j++)
                            cr[j] = tr[j] + bi;
                    else
                        for (int64_t j = 0; j < nn; j++)
                            cr[j] = tr[j] + beta * cr[j] + bi;
                }
            }
            if (last && !done) {
                int64_t jc = d->n0 + j0;
                const float *cb = d->cbias ? d->cbias + jc : NULL;
                for (int64_t i = 0; i < mm; i++)
                    ar->epirow(nn, c + i * d->ldc, 0.0f, cb,
                               d->res ? d->res + (i0 + i) * d->ldr + jc : NULL, d->act, d->act_a,
                               d->act_b);
            }
        }
    }
}

/* Shared mode: tasks are (m-block, n-block) over the shared packed B. */
static void compute_shared(void *ctx, int64_t b, int64_t e)
{
    drive *d = ctx;
    int mr = d->ar->mr, nr = d->ar->nr;
    for (int64_t t = b; t < e; t++) {
        int64_t tm = t / d->tn, tn = t - tm * d->tn;
        int64_t s0 = tm * d->mb, s1 = min64(s0 + d->mb, d->mpad / mr);
        int64_t u0 = tn * d->nb, u1 = min64(u0 + d->nb, d->npad / nr);
        for (int64_t k0 = 0; k0 < d->K; k0 += d->kb) {
            int64_t kc = min64(d->kb, d->K - k0);
            compute_block(d, k0, kc, s0, s1, u0, u1, d->pb + k0 * d->npad + u0 * kc * nr);
        }
    }
}

/* Private mode: a task is an n-block over all of M; it packs its own B one
 * depth block at a time into the running thread's scratch (it stays in L2). */
static void compute_private(void *ctx, int64_t b, int64_t e)
{
    drive *d = ctx;
    int mr = d->ar->mr, nr = d->ar->nr;
    int64_t ms = d->mpad / mr, ns = d->npad / nr;
    float *pb = pare_scratch(1, (size_t)d->kb * (size_t)(d->nb * nr) * sizeof(float));
    if (!pb) {
        __atomic_store_n(&d->nomem, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t t = b; t < e; t++) {
        int64_t u0 = t * d->nb, u1 = min64(u0 + d->nb, ns);
        for (int64_t k0 = 0; k0 < d->K; k0 += d->kb) {
            int64_t kc = min64(d->kb, d->K - k0);
            if (!d->bdirect)
                pack_b_block(d->ar, &d->b, k0, kc, d->n0 + u0 * nr,
                             min64((u1 - u0) * nr, d->nc - u0 * nr), pb);
            else if (d->nc % nr && u1 == ns) /* only the partial last strip */
                pack_b_block(d->ar, &d->b, k0, kc, d->n0 + (ns - 1) * nr, d->nc % nr, pb);
            for (int64_t s0 = 0; s0 < ms; s0 += d->mb)
                compute_block(d, k0, kc, s0, min64(s0 + d->mb, ms), u0, u1, pb);
        }
    }
}

/* Whether a plain B is better read in place than packed: packing costs
 * K*N whatever M is, so it does not pay off when few A strips reuse each
 * B panel (small M); but B's rows are ldb apart, and a deep panel of long
 * rows maps its rows onto few L1 sets (conflict misses) and many pages, so
 * only shallow depth blocks or short rows qualify (measured on AVX-512 with
 * bench/gemm_bench: 24x3136x64, 16x2916x128, 48x729x384 gain 10-30 %,
 * 32x2916x256 and 64x3136x256 lose as much). */
static bool bdirect_pays(const bsrc *b, int64_t M, int64_t kb)
{
    if (b->off)
        return true; /* rows are short runs of a small plane set: no packing at all */
    return !b->img && !b->trans && M <= 64 && (kb <= 128 || b->ldb <= 1024);
}

/* Budget for one chunk of shared packed B (floats). */
#define GEMM_PB_MAX ((int64_t)4 << 20)

static pare_status drive_run(pare_threadpool *pool, const gemm_arch *ar, int64_t M, int64_t N,
                             int64_t K, const pare_sgemm_packed_a *pka, const pack_a_job *apj,
                             const bsrc *b, float beta, const pare_gemm_epilogue *ep, float *C,
                             int64_t ldc)
{
    int mr = ar->mr, nr = ar->nr;
    drive d;
    memset(&d, 0, sizeof d);
    d.ar = ar;
    d.M = M;
    d.K = K;
    d.kb = kc_block(K);
    d.mpad = (M + mr - 1) / mr * mr;
    d.b = *b;
    d.beta = beta;
    if (ep) {
        d.bias = ep->bias_axis == 0 ? ep->bias : NULL;
        d.cbias = ep->bias_axis == 1 ? ep->bias : NULL;
        d.res = ep->residual;
        d.ldr = ep->ldr;
        d.act = ep->act;
        d.act_a = ep->act_alpha;
        d.act_b = ep->act_beta;
        d.post = d.cbias || d.res || d.act != PARE_GEMM_ACT_NONE;
    }
    d.C = C;
    d.ldc = ldc;
    if (pka) {
        d.pa = pka->data;
    } else if (!apj->trans && apj->alpha == 1.0f && !b->off) {
        /* A in place; only a partial last strip is packed (zero rows added) */
        d.ad = apj->A;
        d.lda = apj->lda;
        int64_t tail = M % mr;
        float *pa = pare_scratch(0, (size_t)mr * (size_t)K * sizeof(float));
        if (!pa)
            return PARE_ERR_NOMEM;
        if (tail)
            for (int64_t k0 = 0; k0 < K; k0 += d.kb)
                pack_a_strip(false, apj->A, apj->lda, 1.0f, M - tail, tail, k0,
                             min64(d.kb, K - k0), mr, pa + k0 * mr);
        d.pa = pa;
    } else {
        float *pa = pare_scratch(0, (size_t)d.mpad * (size_t)K * sizeof(float));
        if (!pa)
            return PARE_ERR_NOMEM;
        d.apack = *apj;
        d.apack.mpad = d.mpad;
        d.apack.mr = mr;
        d.apack.dst = pa;
        d.pa = pa;
    }
    int threads = pare_threadpool_size(pool);
    int64_t ms = d.mpad / mr, ns_all = (N + nr - 1) / nr;
    /* below 1M multiply-adds (some 10 us on one core) a pool pass costs more
     * than it saves when the machine is busy: a transformer block at batch 1
     * (its 128x64x64 projections) on 2 threads ran 0.47 ms with 2^18 here,
     * 0.37 ms with 2^20 (2^21 was no better and would make the 1-2M ones of
     * Inception's 7x7 and 14x14 stages serial) */
    int64_t want = threads > 1 && M * N * K >= ((int64_t)1 << 20) ? 3 * (int64_t)threads : 1;
    /* A blocks of ~256 rows stay in L2 while B micro-panels stream through L1 */
    int64_t mb_max = max64(1, 256 / mr), nb_max = max64(1, 384 / nr);

    /* Private mode when n-blocks alone give every thread a few tasks: B is
     * then packed once, in cache-sized pieces, and never written whole. */
    int64_t nb = min64(ns_all, nb_max);
    while (nb > 1 && (ns_all + nb - 1) / nb < want)
        nb = (nb + 1) / 2;
    /* Small products take one n-block per thread even if that balances less
     * well: a second pool pass (the shared pack) costs more than the
     * imbalance. */
    int64_t tn_priv = (ns_all + nb - 1) / nb;
    bool small = M * N * K < ((int64_t)1 << 22);
    if (tn_priv >= (threads > 1 ? 2 * (int64_t)threads : 1) || ms <= 1 ||
        (small && tn_priv >= threads && (pka || d.ad))) {
        if (!pka && !d.ad) {
            d.a_strips = ms;
            d.nc = 0;
            pare_parallel_for(pool, ms, max64(1, 16384 / max64(1, K * mr)), pack_range, &d);
        }
        d.n0 = 0;
        d.nc = N;
        d.npad = ns_all * nr;
        d.bdirect = bdirect_pays(b, M, d.kb);
        d.mb = mb_max;
        d.nb = nb;
        d.tn = (ns_all + nb - 1) / nb;
        pare_parallel_for(pool, d.tn, 1, compute_private, &d);
        scratch_trim(GEMM_SCRATCH_KEEP);
        return d.nomem ? PARE_ERR_NOMEM : PARE_OK;
    }

    int64_t nc_max = max64(nr, GEMM_PB_MAX / K / nr * nr);
    int64_t npad_max = (min64(N, nc_max) + nr - 1) / nr * nr;
    d.pb = pare_scratch(1, (size_t)npad_max * (size_t)K * sizeof(float));
    if (!d.pb)
        return PARE_ERR_NOMEM;
    for (int64_t n0 = 0; n0 < N; n0 += nc_max) {
        d.n0 = n0;
        d.nc = min64(nc_max, N - n0);
        d.npad = (d.nc + nr - 1) / nr * nr;
        int64_t ns = d.npad / nr;
        d.a_strips = (!pka && !d.ad && n0 == 0) ? ms : 0;
        /* B is packed in groups of up to 8 strips per depth block (the per-row
         * setup is paid per group), small enough to feed every thread */
        int64_t kblocks = (K + d.kb - 1) / d.kb;
        d.bgroup = max64(1, min64(8, ns * kblocks / max64(1, 4 * (int64_t)threads)));
        d.bgroups = (ns + d.bgroup - 1) / d.bgroup;
        int64_t items = d.a_strips + kblocks * d.bgroups;
        /* aim for ~16K floats a chunk */
        int64_t per_item = d.a_strips ? K * mr : d.kb * d.bgroup * nr;
        /* a small B alone is packed here: a pool pass would cost more */
        bool serial = !d.a_strips && d.npad * K <= 16384;
        pare_parallel_for(serial ? NULL : pool, items, max64(1, 16384 / max64(1, per_item)),
                          pack_range, &d);
        d.a_strips = 0;

        int64_t mb = min64(ms, mb_max);
        nb = min64(ns, nb_max);
        for (;;) {
            int64_t tasks = ((ms + mb - 1) / mb) * ((ns + nb - 1) / nb);
            if (tasks >= want)
                break;
            if (nb > 1 && (nb * nr >= mb * mr || mb == 1))
                nb = (nb + 1) / 2;
            else if (mb > 1)
                mb = (mb + 1) / 2;
            else
                break;
        }
        d.mb = mb;
        d.nb = nb;
        d.tn = (ns + nb - 1) / nb;
        pare_parallel_for(pool, ((ms + mb - 1) / mb) * d.tn, 1, compute_shared, &d);
    }
    scratch_trim(GEMM_SCRATCH_KEEP);
    return PARE_OK;
}

/* ---- small and vector-shaped problems ------------------------------------ */

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            memset(c, 0, (size_t)N * sizeof *c);
        else if (beta != 1.0f)
            for (int64_t j = 0; j < N; j++)
                c[j] *= beta;
    }
}

static void naive_sgemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++)
                s +=
                    (tA ? A[k * lda + i] : A[i * lda + k]) * (tB ? B[j * ldb + k] : B[k * ldb + j]);
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
}

typedef struct gemv_job {
    const gemm_arch *ar;
    const float *x;   /* contiguous vector of length K */
    const float *mat; /* the matrix operand */
    int64_t ld;
    int64_t K;
    float alpha, beta;
    float *y;
    int64_t incy;
} gemv_job;

/* y[j] = alpha * dot(x, mat row j) + beta*y[j] */
static void gemv_dot_range(void *ctx, int64_t b, int64_t e)
{
    gemv_job *g = ctx;
    for (int64_t j = b; j < e; j++) {
        float s = g->alpha * g->ar->dot(g->K, g->x, g->mat + j * g->ld);
        float *y = g->y + j * g->incy;
        *y = g->beta == 0.0f ? s : s + g->beta * *y;
    }
}

/* y[b:e] = alpha * sum_k x[k] * mat[k][b:e] + beta*y[b:e] (y contiguous) */
static void gemv_axpy_range(void *ctx, int64_t b, int64_t e)
{
    gemv_job *g = ctx;
    float *y = g->y + b;
    int64_t n = e - b;
    scale_c(1, n, g->beta, y, n);
    for (int64_t k = 0; k < g->K; k++) {
        float a = g->alpha * g->x[k];
        if (a != 0.0f)
            g->ar->axpy(n, a, g->mat + k * g->ld + b, y);
    }
}

/* M == 1 or N == 1 with enough work: matrix-vector products. */
static pare_status gemv_path(pare_threadpool *pool, const gemm_arch *ar, bool tA, bool tB,
                             int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                             int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                             int64_t ldc)
{
    gemv_job g = {ar, NULL, NULL, 0, K, alpha, beta, NULL, 1};
    if (M == 1) {
        /* x = op(A) row 0: A[0][k] (contiguous) or A[k][0] (stride lda) */
        if (tA && lda != 1 && K > 1) {
            float *x = pare_scratch(0, (size_t)K * sizeof(float));
            if (!x)
                return PARE_ERR_NOMEM;
            for (int64_t k = 0; k < K; k++)
                x[k] = A[k * lda];
            g.x = x;
        } else {
            g.x = A;
        }
        g.mat = B;
        g.ld = ldb;
        g.y = C;
        if (tB) /* C[j] = dot(x, B[j]) */
            pare_parallel_for(pool, N, max64(1, 16384 / max64(K, 1)), gemv_dot_range, &g);
        else
            pare_parallel_for(pool, N, max64(64, 262144 / max64(K, 1)), gemv_axpy_range, &g);
        return PARE_OK;
    }
    /* N == 1: x = op(B) column 0: B[k][0] (stride ldb) or B[0][k] */
    if (!tB && ldb != 1 && K > 1) {
        float *x = pare_scratch(0, (size_t)K * sizeof(float));
        if (!x)
            return PARE_ERR_NOMEM;
        for (int64_t k = 0; k < K; k++)
            x[k] = B[k * ldb];
        g.x = x;
    } else {
        g.x = B;
    }
    g.mat = A;
    g.ld = lda;
    if (!tA) { /* C[i] = dot(A[i], x) */
        g.y = C;
        g.incy = ldc;
        pare_parallel_for(pool, M, max64(1, 16384 / max64(K, 1)), gemv_dot_range, &g);
        return PARE_OK;
    }
    /* op(A)[i][k] = A[k][i]: C[:] += x[k] * A[k][:] */
    float *y = C;
    if (ldc != 1) {
        y = pare_scratch(1, (size_t)M * sizeof(float));
        if (!y)
            return PARE_ERR_NOMEM;
        for (int64_t i = 0; i < M && beta != 0.0f; i++)
            y[i] = C[i * ldc];
    }
    g.y = y;
    pare_parallel_for(pool, M, max64(64, 262144 / max64(K, 1)), gemv_axpy_range, &g);
    if (y != C)
        for (int64_t i = 0; i < M; i++)
            C[i * ldc] = y[i];
    return PARE_OK;
}

pare_status pare_sgemm_portable(pare_threadpool *pool, bool transA, bool transB, int64_t M,
                                int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                                const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return PARE_OK;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return PARE_OK;
    }
    const gemm_arch *ar = arch_for_mn(M, N);
    if (M * N * K <= 4096 || (M < 4 && N < 4)) {
        naive_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return PARE_OK;
    }
    if (M == 1 || N == 1)
        return gemv_path(pool, ar, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    pack_a_job apj = {transA, A, lda, alpha, M, K, 0, 0, NULL};
    bsrc b = {transB, B, ldb, NULL, NULL, 0, 0};
    return drive_run(pool, ar, M, N, K, NULL, &apj, &b, beta, NULL, C, ldc);
}

#if PARE_HAVE_CBLAS
static bool fits_blas(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}
#endif

pare_status pare_sgemm(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                       int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float beta, float *C, int64_t ldc)
{
#if PARE_HAVE_CBLAS
    if (pare_sgemm_uses_blas() && M > 0 && N > 0 && K > 0 && fits_blas(M) && fits_blas(N) &&
        fits_blas(K) && fits_blas(lda) && fits_blas(ldb) && fits_blas(ldc) && M * N * K > 4096) {
#ifdef OPENBLAS_VERSION
        static int blas_threads; /* last count given to OpenBLAS */
        int t = pare_threadpool_size(pool);
        if (__atomic_load_n(&blas_threads, __ATOMIC_RELAXED) != t) {
            __atomic_store_n(&blas_threads, t, __ATOMIC_RELAXED);
            openblas_set_num_threads(t);
        }
#endif
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda,
                    B, (int)ldb, beta, C, (int)ldc);
        return PARE_OK;
    }
#endif
    return pare_sgemm_portable(pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The old bias + clamp epilogue as a full one. */
static const pare_gemm_epilogue *epi_from_old(const pare_gemm_epi *epi, pare_gemm_epilogue *buf)
{
    if (!epi)
        return NULL;
    memset(buf, 0, sizeof *buf);
    buf->bias = epi->bias;
    if (epi->lo > -INFINITY || epi->hi < INFINITY) {
        buf->act = PARE_GEMM_ACT_CLIP;
        buf->act_alpha = epi->lo;
        buf->act_beta = epi->hi;
    }
    return buf;
}

static bool epi_valid(const pare_gemm_epilogue *ep)
{
    return !ep || ((ep->bias_axis == 0 || ep->bias_axis == 1) && ep->act >= PARE_GEMM_ACT_NONE &&
                   ep->act <= PARE_GEMM_ACT_GELU);
}

static bool epi_empty(const pare_gemm_epilogue *ep)
{
    return !ep || (!ep->bias && !ep->residual && ep->act == PARE_GEMM_ACT_NONE);
}

typedef struct epi_pass {
    const gemm_arch *ar;
    const pare_gemm_epilogue *ep;
    int64_t N;
    float *C;
    int64_t ldc;
} epi_pass;

static void epi_pass_range(void *ctx, int64_t b, int64_t e)
{
    const epi_pass *p = ctx;
    const pare_gemm_epilogue *ep = p->ep;
    for (int64_t i = b; i < e; i++)
        p->ar->epirow(p->N, p->C + i * p->ldc, ep->bias && ep->bias_axis == 0 ? ep->bias[i] : 0.0f,
                      ep->bias && ep->bias_axis == 1 ? ep->bias : NULL,
                      ep->residual ? ep->residual + i * ep->ldr : NULL, ep->act, ep->act_alpha,
                      ep->act_beta);
}

/* C = ep(C) as a separate pass over C (paths that do not tile). */
static void epi_apply(pare_threadpool *pool, int64_t M, int64_t N, const pare_gemm_epilogue *ep,
                      float *C, int64_t ldc)
{
    if (epi_empty(ep) || M <= 0 || N <= 0)
        return;
    epi_pass p = {arch_get(), ep, N, C, ldc};
    pare_parallel_for(pool, M, max64(1, 16384 / N), epi_pass_range, &p);
}

void pare_gemm_epilogue_apply(pare_threadpool *pool, int64_t M, int64_t N,
                              const pare_gemm_epilogue *ep, float *C, int64_t ldc)
{
    if (epi_valid(ep))
        epi_apply(pool, M, N, ep, C, ldc);
}

pare_status pare_sgemm_ex(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                          int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                          int64_t ldb, float beta, float *C, int64_t ldc,
                          const pare_gemm_epilogue *ep)
{
    if (!epi_valid(ep))
        return PARE_ERR_ARG;
    if (M <= 0 || N <= 0)
        return PARE_OK;
    bool tiled = !pare_sgemm_uses_blas() && K > 0 && alpha != 0.0f && M * N * K > 4096 &&
                 !(M < 4 && N < 4) && M != 1 && N != 1;
    if (!tiled || epi_empty(ep)) {
        pare_status st =
            pare_sgemm(pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (st == PARE_OK)
            epi_apply(pool, M, N, ep, C, ldc);
        return st;
    }
    pack_a_job apj = {transA, A, lda, alpha, M, K, 0, 0, NULL};
    bsrc b = {transB, B, ldb, NULL, NULL, 0, 0};
    return drive_run(pool, arch_for_mn(M, N), M, N, K, NULL, &apj, &b, beta, ep, C, ldc);
}

pare_status pare_sgemm_portable_ex(pare_threadpool *pool, bool transA, bool transB, int64_t M,
                                   int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                                   const float *B, int64_t ldb, float beta, float *C,
                                   int64_t ldc, const pare_gemm_epilogue *ep)
{
    if (!epi_valid(ep))
        return PARE_ERR_ARG;
    if (M <= 0 || N <= 0)
        return PARE_OK;
    bool tiled = K > 0 && alpha != 0.0f && M * N * K > 4096 && !(M < 4 && N < 4) && M != 1 &&
                 N != 1;
    if (!tiled || epi_empty(ep)) {
        pare_status st = pare_sgemm_portable(pool, transA, transB, M, N, K, alpha, A, lda, B, ldb,
                                             beta, C, ldc);
        if (st == PARE_OK)
            epi_apply(pool, M, N, ep, C, ldc);
        return st;
    }
    pack_a_job apj = {transA, A, lda, alpha, M, K, 0, 0, NULL};
    bsrc b = {transB, B, ldb, NULL, NULL, 0, 0};
    return drive_run(pool, arch_for_mn(M, N), M, N, K, NULL, &apj, &b, beta, ep, C, ldc);
}

pare_status pare_sgemm_packed_ex(pare_threadpool *pool, const pare_sgemm_packed_a *pa,
                                 bool transB, int64_t N, const float *B, int64_t ldb, float beta,
                                 const pare_gemm_epilogue *ep, float *C, int64_t ldc)
{
    if (!epi_valid(ep))
        return PARE_ERR_ARG;
    if (pa->M <= 0 || N <= 0)
        return PARE_OK;
    if (pa->K <= 0) {
        scale_c(pa->M, N, beta, C, ldc);
        epi_apply(pool, pa->M, N, ep, C, ldc);
        return PARE_OK;
    }
    bsrc b = {transB, B, ldb, NULL, NULL, 0, 0};
    return drive_run(pool, pa->arch, pa->M, N, pa->K, pa, NULL, &b, beta, ep, C, ldc);
}

pare_status pare_sgemm_packed(pare_threadpool *pool, const pare_sgemm_packed_a *pa, bool transB,
                              int64_t N, const float *B, int64_t ldb, float beta,
                              const pare_gemm_epi *epi, float *C, int64_t ldc)
{
    pare_gemm_epilogue buf;
    return pare_sgemm_packed_ex(pool, pa, transB, N, B, ldb, beta, epi_from_old(epi, &buf), C,
                                ldc);
}

/* ---- convolutions over phase-split planes ----------------------------------
 * Packing the implicit im2col matrix costs K*N copies per call, as much as a
 * third of a convolution with few output channels. Instead the (padded)
 * image is rearranged once into stride-phase planes: plane (a, b) of channel
 * c holds xpad[i*sh + a][j*sw + b], Wq columns a row. Output pixel (oy, ox)
 * is computed at virtual column p = oy*Wq + ox, and im2col row (c, ky, kx)
 * is then one contiguous run: plane ((ky*dh) % sh, (kx*dw) % sw) of c from
 * ((ky*dh) / sh) * Wq + (kx*dw) / sw on. The GEMM reads those runs in place
 * (ukro). Wq = ow + the largest column shift, so the Wq - ow extra columns
 * of each output row are computed and dropped: each tile's real columns are
 * stored through a small buffer (compute_block_virtual), or a small output
 * is computed whole into scratch and its rows copied out; nothing is needed
 * when Wq == ow (1x1 strided and patchify convs). The planes take about the
 * padded image's size. */

typedef struct phase_geo {
    int64_t hq, wq, plane; /* plane rows, row length, floats per plane (with tail) */
    int64_t nph;           /* planes per channel (phases some tap uses) */
    int64_t *pidx;         /* sh*sw: plane index of phase (a, b), -1 unused */
} phase_geo;

/* Extra columns cost M multiply-adds each per im2col row, packing costs
 * about one copy per row and column whatever M is: the phase planes are
 * used while the extra share of columns is at most PHASE_WASTE_M / M (and
 * at most half). */
#define PHASE_WASTE_M 16
/* outputs of at most this many floats (virtual columns) are computed whole
 * into scratch and compacted */
#define PHASE_SMALL_OUT 32768

/* PARE_CONV_PHASE=0 packs im2col as before (for comparisons) */
static bool phase_off(void)
{
    static int off = -1;
    int v = __atomic_load_n(&off, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("PARE_CONV_PHASE");
        v = e && !strcmp(e, "0");
        __atomic_store_n(&off, v, __ATOMIC_RELAXED);
    }
    return v;
}

static bool phase_geometry(const pare_im2col *g, int64_t M, phase_geo *pg)
{
    int64_t sy_max = (g->kh - 1) * g->dh / g->sh, sx_max = (g->kw - 1) * g->dw / g->sw;
    pg->wq = g->ow + sx_max;
    pg->hq = g->oh + sy_max;
    int64_t extra = sx_max, cells, total;
    /* rows and columns of planes beyond the output's stay within a factor of
     * two of it (a large dilation would make them mostly zeros), and the
     * sizes fit (the caller packs im2col otherwise) */
    if ((extra && (extra * M > PHASE_WASTE_M * g->ow || 2 * extra > g->ow)) ||
        sy_max > g->oh || g->sh * g->sw > 4096 ||
        __builtin_mul_overflow(pg->hq, pg->wq, &cells) || cells > INT64_MAX / 64 ||
        __builtin_mul_overflow(g->c * g->sh * g->sw, cells + sx_max + 16, &total) ||
        total > INT64_MAX / 64 || __builtin_mul_overflow(M, g->oh * pg->wq, &total))
        return false;
    pg->plane = (cells + sx_max + 15) / 16 * 16;
    return true;
}

typedef struct phase_job {
    const pare_im2col *g;
    const phase_geo *pg;
    float *planes;
} phase_job;

/* items: (channel, plane) pairs */
static inline __attribute__((always_inline)) void phase_fill_body(void *ctx, int64_t b,
                                                                  int64_t e)
{
    const phase_job *j = ctx;
    const pare_im2col *g = j->g;
    const phase_geo *pg = j->pg;
    for (int64_t it = b; it < e; it++) {
        int64_t c = it / pg->nph, q = it - c * pg->nph, ph = 0;
        while (pg->pidx[ph] != q)
            ph++;
        int64_t a = ph / g->sw, bb = ph - a * g->sw;
        float *dst = j->planes + it * pg->plane;
        const float *xc = g->x + c * g->h * g->w;
        /* input columns of plane columns [0, wq): ix = jj*sw + bb - pw */
        int64_t base = bb - g->pw;
        int64_t lo = max64(0, min64(pg->wq, ceil_div(-base, g->sw)));
        int64_t hi = max64(lo, min64(pg->wq, ceil_div(g->w - base, g->sw)));
        for (int64_t i = 0; i < pg->hq; i++) {
            float *dr = dst + i * pg->wq;
            int64_t iy = i * g->sh + a - g->ph;
            if (iy < 0 || iy >= g->h) {
                memset(dr, 0, (size_t)pg->wq * sizeof *dr);
                continue;
            }
            const float *xr = xc + iy * g->w + base;
            for (int64_t t = 0; t < lo; t++)
                dr[t] = 0.0f;
            if (g->sw == 1)
                memcpy(dr + lo, xr + lo, (size_t)(hi - lo) * sizeof *dr);
            else if (g->sw == 2) /* spelled out: vectorises with permutes */
                for (int64_t t = lo; t < hi; t++)
                    dr[t] = xr[2 * t];
            else
                for (int64_t t = lo; t < hi; t++)
                    dr[t] = xr[t * g->sw];
            for (int64_t t = hi; t < pg->wq; t++)
                dr[t] = 0.0f;
        }
        memset(dst + pg->hq * pg->wq, 0, (size_t)(pg->plane - pg->hq * pg->wq) * sizeof *dst);
    }
}

static void phase_fill(void *ctx, int64_t b, int64_t e)
{
    phase_fill_body(ctx, b, e);
}

#if GEMM_X86
__attribute__((target("avx512f"))) static void phase_fill_avx512(void *ctx, int64_t b, int64_t e)
{
    phase_fill_body(ctx, b, e);
}
#endif

/* The convolution over phase-split planes; PARE_ERR_UNSUPPORTED when its
 * geometry does not pay (the caller packs im2col instead). */
static pare_status conv_phase(pare_threadpool *pool, int64_t M, const pare_sgemm_packed_a *pa,
                              const float *A, int64_t lda, const pare_im2col *g, float beta,
                              const pare_gemm_epilogue *ep, float *C, int64_t ldc)
{
    phase_geo pg;
    if (!phase_geometry(g, M, &pg) || (ep && ep->bias_axis != 0 && ep->bias))
        return PARE_ERR_UNSUPPORTED;
    int64_t K = g->c * g->kh * g->kw, nphases = g->sh * g->sw;
    int64_t *off = malloc((size_t)(K + nphases) * sizeof *off);
    if (!off)
        return PARE_ERR_NOMEM;
    pg.pidx = off + K;
    for (int64_t i = 0; i < nphases; i++)
        pg.pidx[i] = -1;
    pg.nph = 0;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ph = (ky * g->dh) % g->sh * g->sw + (kx * g->dw) % g->sw;
            if (pg.pidx[ph] < 0)
                pg.pidx[ph] = pg.nph++;
        }
    size_t need = (size_t)(g->c * pg.nph * pg.plane);
    float *planes = pare_scratch(6, need * sizeof *planes);
    if (!planes) {
        free(off);
        return PARE_ERR_NOMEM;
    }
    for (int64_t c = 0, k = 0; c < g->c; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++, k++) {
                int64_t ry = ky * g->dh, rx = kx * g->dw;
                int64_t q = pg.pidx[ry % g->sh * g->sw + rx % g->sw];
                off[k] = (c * pg.nph + q) * pg.plane + ry / g->sh * pg.wq + rx / g->sw;
            }
    phase_job pj = {g, &pg, planes};
    pare_range_fn fill = phase_fill;
#if GEMM_X86
    if (__builtin_cpu_supports("avx512f"))
        fill = phase_fill_avx512;
#endif
    pare_parallel_for(pool, g->c * pg.nph, max64(1, 16384 / max64(1, pg.plane)), fill, &pj);
    int64_t N = g->oh * pg.wq;
    const gemm_arch *ar = pa ? pa->arch : arch_for_mn(M, N);
    /* Real columns: no remapping when there are no extra ones; a small
     * output (cache-resident) is computed whole into scratch and its rows
     * copied out, which beats remapping tiles whose rows are only a few
     * columns long; otherwise each tile is remapped into C (vw). */
    bool whole = pg.wq != g->ow && beta == 0.0f && M * N <= PHASE_SMALL_OUT;
    float *v = whole ? pare_scratch(7, (size_t)(M * N) * sizeof *v) : C;
    pare_gemm_epilogue vep;
    const pare_gemm_epilogue *vp = ep;
    if (whole) {
        if (!v) {
            free(off);
            return PARE_ERR_NOMEM;
        }
        /* the residual (real columns) and the activation after it while copying */
        memset(&vep, 0, sizeof vep);
        if (ep) {
            vep.bias = ep->bias;
            if (!ep->residual) {
                vep.act = ep->act;
                vep.act_alpha = ep->act_alpha;
                vep.act_beta = ep->act_beta;
            }
        }
        vp = &vep;
    }
    bsrc b = {false, planes, 0, NULL, off, pg.wq == g->ow || whole ? 0 : pg.wq, g->ow};
    pare_status st;
    int64_t ldv = whole ? N : ldc;
    if (pa) {
        st = drive_run(pool, ar, M, N, K, pa, NULL, &b, beta, vp, v, ldv);
    } else {
        pack_a_job apj = {false, A, lda, 1.0f, M, K, 0, 0, NULL};
        st = drive_run(pool, ar, M, N, K, NULL, &apj, &b, beta, vp, v, ldv);
    }
    free(off);
    if (st || !whole)
        return st;
    const pare_gemm_epilogue *rest = ep && ep->residual ? ep : NULL;
    for (int64_t m = 0; m < M; m++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            float *d = C + m * ldc + oy * g->ow;
            memcpy(d, v + m * N + oy * pg.wq, (size_t)g->ow * sizeof *d);
            if (rest)
                ar->epirow(g->ow, d, 0.0f, NULL, rest->residual + m * rest->ldr + oy * g->ow,
                           rest->act, rest->act_alpha, rest->act_beta);
        }
    return PARE_OK;
}

pare_status pare_sgemm_conv_ex(pare_threadpool *pool, int64_t M, const pare_sgemm_packed_a *pa,
                               const float *A, int64_t lda, const pare_im2col *img, float beta,
                               const pare_gemm_epilogue *ep, float *C, int64_t ldc)
{
    if (!epi_valid(ep))
        return PARE_ERR_ARG;
    int64_t K = img->c * img->kh * img->kw, N = img->oh * img->ow;
    if (M <= 0 || N <= 0)
        return PARE_OK;
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        epi_apply(pool, M, N, ep, C, ldc);
        return PARE_OK;
    }
    bsrc b = {false, NULL, 0, img, NULL, 0, 0};
    /* a 1x1 kernel with unit strides and no padding reads the image as it
     * is: a plain K x N matrix */
    if (img->kh == 1 && img->kw == 1 && img->sh == 1 && img->sw == 1 && img->ph == 0 &&
        img->pw == 0 && img->oh == img->h && img->ow == img->w) {
        b.B = img->x;
        b.ldb = img->h * img->w;
        b.img = NULL;
    }
    if (b.img && !phase_off()) {
        pare_status st = conv_phase(pool, M, pa, A, lda, img, beta, ep, C, ldc);
        if (st != PARE_ERR_UNSUPPORTED)
            return st;
    }
    if (pa)
        return drive_run(pool, pa->arch, M, N, K, pa, NULL, &b, beta, ep, C, ldc);
    pack_a_job apj = {false, A, lda, 1.0f, M, K, 0, 0, NULL};
    return drive_run(pool, arch_for_mn(M, N), M, N, K, NULL, &apj, &b, beta, ep, C, ldc);
}

pare_status pare_sgemm_conv(pare_threadpool *pool, int64_t M, const pare_sgemm_packed_a *pa,
                            const float *A, int64_t lda, const pare_im2col *img, float beta,
                            const pare_gemm_epi *epi, float *C, int64_t ldc)
{
    pare_gemm_epilogue buf;
    return pare_sgemm_conv_ex(pool, M, pa, A, lda, img, beta, epi_from_old(epi, &buf), C, ldc);
}

typedef struct fill_batch_job {
    const pare_im2col *img;
    int64_t nimg, xstride, ldd;
    float *dst;
} fill_batch_job;

/* One item, an (im2col row, image) pair: the image's channel, where its
 * rows go, the tap's offsets and the output columns [lo, hi) that read
 * inside the image (the same for every output row). */
typedef struct fill_item {
    const float *xc;
    float *d;
    int64_t offy, offx, lo, hi;
} fill_item;

static inline fill_item fill_batch_item(const fill_batch_job *f, int64_t it)
{
    const pare_im2col *g = f->img;
    int64_t khw = g->kh * g->kw, ow = g->ow;
    int64_t k = it / f->nimg, i = it - k * f->nimg;
    int64_t c = k / khw, r = k - c * khw, ky = r / g->kw, kx = r - ky * g->kw;
    fill_item t;
    t.offy = ky * g->dh - g->ph;
    t.offx = kx * g->dw - g->pw;
    t.xc = g->x + i * f->xstride + c * g->h * g->w;
    t.d = f->dst + k * f->ldd + i * g->oh * ow;
    t.lo = max64(0, min64(ow, ceil_div(-t.offx, g->sw)));
    t.hi = max64(t.lo, min64(ow, ceil_div(g->w - t.offx, g->sw)));
    return t;
}

/* items: (im2col row, image) pairs. Rows of small images are a few floats
 * long, so the copies are plain loops (no library call per output row). */
static void fill_batch_range(void *ctx, int64_t b, int64_t e)
{
    const fill_batch_job *f = ctx;
    const pare_im2col *g = f->img;
    int64_t oh = g->oh, ow = g->ow;
    for (int64_t it = b; it < e; it++) {
        fill_item fi = fill_batch_item(f, it);
        float *d = fi.d;
        int64_t offy = fi.offy, offx = fi.offx, lo = fi.lo, hi = fi.hi;
        const float *xc = fi.xc;
        for (int64_t oy = 0; oy < oh; oy++, d += ow) {
            int64_t iy = oy * g->sh + offy;
            if (iy < 0 || iy >= g->h) {
                for (int64_t t = 0; t < ow; t++)
                    d[t] = 0.0f;
                continue;
            }
            const float *xr = xc + iy * g->w + offx;
            for (int64_t t = 0; t < lo; t++)
                d[t] = 0.0f;
            if (g->sw == 1)
                for (int64_t t = lo; t < hi; t++)
                    d[t] = xr[t];
            else
                for (int64_t t = lo; t < hi; t++)
                    d[t] = xr[t * g->sw];
            for (int64_t t = hi; t < ow; t++)
                d[t] = 0.0f;
        }
    }
}

#if GEMM_X86
/* fill_batch_range for unit column stride and rows of at most 16 outputs:
 * one masked load (lanes inside the image) and one masked store per row */
__attribute__((target("avx512f"))) static void fill_batch_range_avx512(void *ctx, int64_t b,
                                                                        int64_t e)
{
    const fill_batch_job *f = ctx;
    const pare_im2col *g = f->img;
    int64_t oh = g->oh, ow = g->ow;
    __mmask16 all = (__mmask16)((1u << ow) - 1);
    for (int64_t it = b; it < e; it++) {
        fill_item fi = fill_batch_item(f, it);
        float *d = fi.d;
        __mmask16 in = (__mmask16)(all & ~((1u << fi.lo) - 1) & ((1u << fi.hi) - 1));
        for (int64_t oy = 0; oy < oh; oy++, d += ow) {
            int64_t iy = oy * g->sh + fi.offy;
            __m512 v = iy < 0 || iy >= g->h
                           ? _mm512_setzero_ps()
                           : _mm512_maskz_loadu_ps(in, fi.xc + iy * g->w + fi.offx);
            _mm512_mask_storeu_ps(d, all, v);
        }
    }
}
#endif

void pare_im2col_fill_batch(pare_threadpool *pool, const pare_im2col *img, int64_t nimg,
                            int64_t xstride, float *dst, int64_t ldd)
{
    fill_batch_job f = {img, nimg, xstride, ldd, dst};
    int64_t rows = img->c * img->kh * img->kw, np = img->oh * img->ow;
    pare_range_fn fn = fill_batch_range;
#if GEMM_X86
    if (img->sw == 1 && img->ow <= 16 && __builtin_cpu_supports("avx512f"))
        fn = fill_batch_range_avx512;
#endif
    pare_parallel_for(pool, rows * nimg, max64(1, 16384 / max64(1, np)), fn, &f);
}

typedef struct fill_job {
    const pare_im2col *img;
    float *dst;
    int64_t n;
} fill_job;

static void fill_range(void *ctx, int64_t b, int64_t e)
{
    fill_job *f = ctx;
    for (int64_t k = b; k < e; k++)
        im2col_row(f->img, k, 0, f->n, f->dst + k * f->n);
}

void pare_im2col_fill(pare_threadpool *pool, const pare_im2col *img, float *dst)
{
    fill_job f = {img, dst, img->oh * img->ow};
    int64_t rows = img->c * img->kh * img->kw;
    pare_parallel_for(pool, rows, max64(1, 16384 / max64(1, f.n)), fill_range, &f);
}

/* ---- double ------------------------------------------------------------ */

typedef struct dgemm_job {
    bool tA, tB;
    int64_t N, K;
    double alpha, beta;
    const double *A, *B;
    int64_t lda, ldb, ldc;
    double *C;
} dgemm_job;

static void dgemm_rows(void *ctx, int64_t b, int64_t e)
{
    dgemm_job *g = ctx;
    for (int64_t i = b; i < e; i++) {
        double *c = g->C + i * g->ldc;
        if (g->tB) {
            for (int64_t j = 0; j < g->N; j++) {
                const double *br = g->B + j * g->ldb;
                double s = 0.0;
                for (int64_t k = 0; k < g->K; k++)
                    s += (g->tA ? g->A[k * g->lda + i] : g->A[i * g->lda + k]) * br[k];
                c[j] = g->beta == 0.0 ? g->alpha * s : g->alpha * s + g->beta * c[j];
            }
            continue;
        }
        for (int64_t j = 0; j < g->N; j++)
            c[j] = g->beta == 0.0 ? 0.0 : g->beta * c[j];
        for (int64_t k = 0; k < g->K; k++) {
            double a = g->alpha * (g->tA ? g->A[k * g->lda + i] : g->A[i * g->lda + k]);
            const double *br = g->B + k * g->ldb;
            for (int64_t j = 0; j < g->N; j++)
                c[j] += a * br[j];
        }
    }
}

pare_status pare_dgemm(pare_threadpool *pool, bool transA, bool transB, int64_t M, int64_t N,
                       int64_t K, double alpha, const double *A, int64_t lda, const double *B,
                       int64_t ldb, double beta, double *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return PARE_OK;
#if PARE_HAVE_CBLAS
    if (K > 0 && fits_blas(M) && fits_blas(N) && fits_blas(K) && fits_blas(lda) && fits_blas(ldb) &&
        fits_blas(ldc) && M * N * K > 4096) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda,
                    B, (int)ldb, beta, C, (int)ldc);
        return PARE_OK;
    }
#endif
    dgemm_job g = {transA, transB, N, K, alpha, beta, A, B, lda, ldb, ldc, C};
    if (K <= 0)
        g.alpha = 0.0;
    pare_parallel_for(pool, M, max64(1, 65536 / max64(1, N * max64(K, 1))), dgemm_rows, &g);
    return PARE_OK;
}

#else /* PARE_GEMM_TEMPLATE: one instantiation of the kernels */

#define NR (VW * NV)
#define FN(name) GEMM_CAT(name, GEMM_CAT(_, ARCH))

/* The end of a microkernel: acc + bias[i] + beta*C (C unread if beta == 0),
 * then, when e is given, the epilogue (column bias, residual, activation) on
 * the registers, and the store. */
#ifdef VMAX
#define GEMM_TILE_EPI()                                                                           \
    if (e) {                                                                                      \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                    \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++)                                 \
        {                                                                                         \
            if (e->cb)                                                                            \
                acc[i][j] = VADD(acc[i][j], VLOAD(e->cb + j * VW));                               \
            if (e->r)                                                                             \
                acc[i][j] = VADD(acc[i][j], VLOAD(e->r + i * e->ldr + j * VW));                   \
        }                                                                                         \
        V va = VSET1(e->a), vb = VSET1(e->b), z = VZERO(), one = VSET1(1.0f);                     \
        switch (e->act) {                                                                         \
        case PARE_GEMM_ACT_RELU:                                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VMAX(z, acc[i][j]);                                                           \
            break;                                                                                \
        case PARE_GEMM_ACT_CLIP:                                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VMIN(vb, VMAX(va, acc[i][j]));                                                \
            break;                                                                                \
        case PARE_GEMM_ACT_LEAKY_RELU:                                                            \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VADD(VMAX(z, acc[i][j]), VMUL(va, VMIN(z, acc[i][j])));                       \
            break;                                                                                \
        case PARE_GEMM_ACT_HARDSIGMOID:                                                           \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VMAX(z, VMIN(one, VFMA(va, acc[i][j], vb)));                                  \
            break;                                                                                \
        case PARE_GEMM_ACT_HARDSWISH:                                                             \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VMUL(acc[i][j], VMAX(z, VMIN(one, VFMA(va, acc[i][j], vb))));                 \
            break;                                                                                \
        default:                                                                                  \
            break;                                                                                \
        }                                                                                         \
    }
#else
#define GEMM_TILE_EPI() (void)e
#endif
#define GEMM_TILE_OUT()                                                                           \
    do {                                                                                          \
        if (bias) {                                                                               \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
            {                                                                                     \
                V bi = VSET1(bias[i]);                                                            \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VADD(acc[i][j], bi);                                                          \
            }                                                                                     \
        }                                                                                         \
        if (beta != 0.0f) {                                                                       \
            V bt = VSET1(beta);                                                                   \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                 \
                    VFMA(bt, VLOAD(c + i * ldc + j * VW), acc[i][j]);                             \
        }                                                                                         \
        GEMM_TILE_EPI();                                                                          \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                    \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++)                                 \
                VSTORE(c + i * ldc + j * VW, acc[i][j]);                                          \
    } while (0)

/* The microkernels' common body: B row p at BROW, element i of A's column p
 * is AVAL (both expressions in p and i). */
#define GEMM_UKR_BODY(BROW, AVAL)                                                                 \
    V acc[MR][NV];                                                                                \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                        \
        _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] = VZERO();                \
    /* unrolled so that the loop's own increments and branch (which compete                     \
     * with the FMAs for ports) are paid once per four steps */                                  \
    _Pragma("GCC unroll 4") for (int64_t p = 0; p < kc; p++)                                     \
    {                                                                                             \
        V bv[NV];                                                                                 \
        const float *br = (BROW);                                                                 \
        _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) bv[j] = VLOAD(br + j * VW);         \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                    \
        {                                                                                         \
            V av = VSET1(AVAL);                                                                   \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] =                     \
                VFMA(av, bv[j], acc[i][j]);                                                       \
        }                                                                                         \
    }                                                                                             \
    GEMM_TILE_OUT()

/* C[MR x NR] (row stride ldc) = acc + beta*C (C unread if beta == 0) + bias[i] */
ATTR static void FN(ukr)(int64_t kc, const float *restrict a, const float *restrict b,
                         int64_t ldb, float *restrict c, int64_t ldc, float beta,
                         const float *restrict bias, const kepi *e)
{
    GEMM_UKR_BODY(b + p * ldb, a[p * MR + i]);
}

/* ukr with A unpacked: row i of the strip at a + i*lda */
ATTR static void FN(ukrd)(int64_t kc, const float *restrict a, int64_t lda,
                          const float *restrict b, int64_t ldb, float *restrict c, int64_t ldc,
                          float beta, const float *restrict bias, const kepi *e)
{
    GEMM_UKR_BODY(b + p * ldb, a[i * lda + p]);
}

/* ukr with B's rows at b + off[p]: a convolution's implicit im2col matrix
 * over phase-split planes, where every row is one contiguous run */
ATTR static void FN(ukro)(int64_t kc, const float *restrict a, const float *restrict b,
                          const int64_t *restrict off, float *restrict c, int64_t ldc, float beta,
                          const float *restrict bias, const kepi *e)
{
    GEMM_UKR_BODY(b + off[p], a[p * MR + i]);
}

#ifndef GEMM_UKR_ONLY
ATTR static void FN(packb)(int64_t kc, const float *restrict src, int64_t ld, float *restrict dst)
{
    for (int64_t p = 0; p < kc; p++) {
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++)
            VSTORE(dst + p * NR + j * VW, VLOAD(src + p * ld + j * VW));
    }
}

ATTR static float FN(dot)(int64_t n, const float *x, const float *y)
{
    V s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
    int64_t i = 0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        s0 = VFMA(VLOAD(x + i), VLOAD(y + i), s0);
        s1 = VFMA(VLOAD(x + i + VW), VLOAD(y + i + VW), s1);
        s2 = VFMA(VLOAD(x + i + 2 * VW), VLOAD(y + i + 2 * VW), s2);
        s3 = VFMA(VLOAD(x + i + 3 * VW), VLOAD(y + i + 3 * VW), s3);
    }
    for (; i + VW <= n; i += VW)
        s0 = VFMA(VLOAD(x + i), VLOAD(y + i), s0);
    float s = VHSUM(VADD(VADD(s0, s1), VADD(s2, s3)));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* y += a * x */
ATTR static void FN(axpy)(int64_t n, float a, const float *x, float *y)
{
    V av = VSET1(a);
    int64_t i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        VSTORE(y + i, VFMA(av, VLOAD(x + i), VLOAD(y + i)));
        VSTORE(y + i + VW, VFMA(av, VLOAD(x + i + VW), VLOAD(y + i + VW)));
    }
    for (; i + VW <= n; i += VW)
        VSTORE(y + i, VFMA(av, VLOAD(x + i), VLOAD(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

ATTR static void FN(epirow)(int64_t n, float *restrict c, float rb, const float *restrict cb,
                            const float *restrict r, int act, float a, float b)
{
    int64_t j = 0;
#ifdef VMAX
    if (act == PARE_GEMM_ACT_GELU) {
        /* sums first, then GELU over the row in one branch-free loop */
        for (int64_t i = 0; i < n; i++)
            c[i] = c[i] + rb + (cb ? cb[i] : 0.0f) + (r ? r[i] : 0.0f);
#ifdef GEMM_GELU_ROW
        GEMM_GELU_ROW(c, n);
#else
        for (int64_t i = 0; i < n; i++)
            c[i] = gelu1(c[i]);
#endif
        return;
    }
    if (act != PARE_GEMM_ACT_SIGMOID && act != PARE_GEMM_ACT_TANH) {
        V vrb = VSET1(rb), va = VSET1(a), vb = VSET1(b), z = VZERO(), one = VSET1(1.0f);
        for (; j + VW <= n; j += VW) {
            V x = VADD(VLOAD(c + j), vrb);
            if (cb)
                x = VADD(x, VLOAD(cb + j));
            if (r)
                x = VADD(x, VLOAD(r + j));
            /* max/min return their second operand when one is NaN: NaN stays */
            switch (act) {
            case PARE_GEMM_ACT_RELU:
                x = VMAX(z, x);
                break;
            case PARE_GEMM_ACT_CLIP:
                x = VMIN(vb, VMAX(va, x));
                break;
            case PARE_GEMM_ACT_LEAKY_RELU:
                x = VADD(VMAX(z, x), VMUL(va, VMIN(z, x)));
                break;
            case PARE_GEMM_ACT_HARDSIGMOID:
                x = VMAX(z, VMIN(one, VFMA(va, x, vb)));
                break;
            case PARE_GEMM_ACT_HARDSWISH:
                x = VMUL(x, VMAX(z, VMIN(one, VFMA(va, x, vb))));
                break;
            default:
                break;
            }
            VSTORE(c + j, x);
        }
    }
#endif
    for (; j < n; j++) {
        float x = c[j] + rb;
        if (cb)
            x += cb[j];
        if (r)
            x += r[j];
        c[j] = act1(act, x, a, b);
    }
}
#endif /* GEMM_UKR_ONLY */

#undef GEMM_TILE_EPI
#undef GEMM_TILE_OUT
#undef GEMM_UKR_BODY
#undef GEMM_GELU_ROW
#undef FN
#undef NR
#undef ARCH
#undef ATTR
#undef V
#undef VW
#undef MR
#undef NV
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VZERO
#undef VFMA
#undef VADD
#undef VHSUM
#undef VMUL
#undef VMAX
#undef VMIN

#endif /* PARE_GEMM_TEMPLATE */
