/* Elementwise kernels: arithmetic, comparison, logic and bitwise ops, unary
 * math and activations, Clip, Where, the variadic Max/Min/Sum/Mean, Cast,
 * CastLike, Identity and the Softmax family.
 *
 * One broadcasting driver (ew_exec) walks the output in contiguous runs after
 * merging the dims that are contiguous for every input; per op and dtype an
 * inner loop does one run, specialised for the stride patterns (all inputs
 * contiguous, one of them a scalar) so that the compiler vectorises the
 * common float32 same-shape and scalar-broadcast cases. The inner loops are
 * generated from one expression per op by the type-list macros below: one
 * body per op, expanded per dtype. float16 and bfloat16 compute in float32.
 *
 * Cast/CastLike/Identity live in kernels_elementwise_cast.c and the Softmax
 * family in kernels_elementwise_softmax.c, both #included at the end.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* -O2 (debugoptimized) only vectorises loops whose trip count is known; these
 * loops are the hot path of most models, so ask for the full vectoriser.
 * Nothing here reads errno, so sqrt and friends need not set it (which lets
 * them vectorise). */
#pragma GCC optimize("O3", "no-math-errno")
#endif

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tgmath.h>
#include "exec/kernel.h"

#define EW_GRAIN 16384 /* elements per parallel chunk */
#define EW_MAXIN 3

/* ------------------------------------------------------------------ */
/* op parameters and the per-node state                               */

typedef struct ew_par {
    float alpha, beta, gamma; /* activation attributes */
    float lambd, bias;        /* Shrink */
    int mode;                 /* Mod: fmod; BitShift: 1 left */
    int det_neg, det_pos;     /* IsInf */
    unsigned char lo[8], hi[8]; /* Clip bounds in the compute type */
} ew_par;

/* Inner loop over one run of n output elements. in[k] points at input k's
 * first element of the run; st[k] is 1 if it advances with the output, 0 if
 * it is broadcast along the run. */
typedef void (*ew_fn)(void *out, const void *const *in, const int64_t *st, int64_t n,
                      const void *aux);

/* ------------------------------------------------------------------ */
/* dtype lists: M(op, E, tn, T, C, UT, LD, ST)                         */
/* tn: suffix; T: storage; C: compute type; UT: unsigned type for      */
/* wrapping integer arithmetic; LD/ST: storage <-> compute.            */

#define LD_ID(v) (v)

#define F_TYPES(M, op, E)                                                             \
    M(op, E, f32, float, float, float, LD_ID, LD_ID)                                  \
    M(op, E, f64, double, double, double, LD_ID, LD_ID)                               \
    M(op, E, f16, uint16_t, float, float, pare_f16_to_f32, pare_f32_to_f16)           \
    M(op, E, bf16, uint16_t, float, float, pare_bf16_to_f32, pare_f32_to_bf16)
/* F_TYPES without float32 (for ops whose float32 loop is multi-versioned) */
#define F_TYPES_NO32(M, op, E)                                                        \
    M(op, E, f64, double, double, double, LD_ID, LD_ID)                               \
    M(op, E, f16, uint16_t, float, float, pare_f16_to_f32, pare_f32_to_f16)           \
    M(op, E, bf16, uint16_t, float, float, pare_bf16_to_f32, pare_f32_to_bf16)
#define S_TYPES(M, op, E)                                                             \
    M(op, E, i8, int8_t, int8_t, uint32_t, LD_ID, LD_ID)                              \
    M(op, E, i16, int16_t, int16_t, uint32_t, LD_ID, LD_ID)                           \
    M(op, E, i32, int32_t, int32_t, uint32_t, LD_ID, LD_ID)                           \
    M(op, E, i64, int64_t, int64_t, uint64_t, LD_ID, LD_ID)
#define U_TYPES(M, op, E)                                                             \
    M(op, E, u8, uint8_t, uint8_t, uint32_t, LD_ID, LD_ID)                            \
    M(op, E, u16, uint16_t, uint16_t, uint32_t, LD_ID, LD_ID)                         \
    M(op, E, u32, uint32_t, uint32_t, uint32_t, LD_ID, LD_ID)                         \
    M(op, E, u64, uint64_t, uint64_t, uint64_t, LD_ID, LD_ID)
#define B_TYPES(M, op, E) M(op, E, b8, uint8_t, uint8_t, uint32_t, LD_ID, LD_ID)

#define DT_f32 PARE_DT_FLOAT
#define DT_f64 PARE_DT_DOUBLE
#define DT_f16 PARE_DT_FLOAT16
#define DT_bf16 PARE_DT_BFLOAT16
#define DT_i8 PARE_DT_INT8
#define DT_i16 PARE_DT_INT16
#define DT_i32 PARE_DT_INT32
#define DT_i64 PARE_DT_INT64
#define DT_u8 PARE_DT_UINT8
#define DT_u16 PARE_DT_UINT16
#define DT_u32 PARE_DT_UINT32
#define DT_u64 PARE_DT_UINT64
#define DT_b8 PARE_DT_BOOL

/* Type limits, used as Clip's default bounds. */
#define LO_f32 (-INFINITY)
#define HI_f32 INFINITY
#define LO_f64 (-INFINITY)
#define HI_f64 INFINITY
#define LO_f16 (-INFINITY)
#define HI_f16 INFINITY
#define LO_bf16 (-INFINITY)
#define HI_bf16 INFINITY
#define LO_i8 INT8_MIN
#define HI_i8 INT8_MAX
#define LO_i16 INT16_MIN
#define HI_i16 INT16_MAX
#define LO_i32 INT32_MIN
#define HI_i32 INT32_MAX
#define LO_i64 INT64_MIN
#define HI_i64 INT64_MAX
#define LO_u8 0
#define HI_u8 UINT8_MAX
#define LO_u16 0
#define HI_u16 UINT16_MAX
#define LO_u32 0
#define HI_u32 UINT32_MAX
#define LO_u64 0
#define HI_u64 UINT64_MAX

/* ------------------------------------------------------------------ */
/* loop templates                                                     */

/* Binary op, output of the input type. */
#define BIN_LOOP(op, E, tn, T, C, UT, LD, ST)                                          \
    static void ew_##op##_##tn(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
        BIN_BODY(E, T, C, UT, LD, ST)
#define BIN_BODY(E, T, C, UT, LD, ST)                                                  \
    {                                                                                  \
        const T *a = in[0], *b = in[1];                                                \
        T *o = o_;                                                                     \
        const ew_par pl_ = *(const ew_par *)aux, *p = &pl_; /* not aliased by o */    \
        (void)p;                                                                       \
        if (st[0] && st[1]) {                                                          \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]), y = LD(b[i]);                                          \
                o[i] = ST(E(C, UT, x, y, p));                                          \
            }                                                                          \
        } else if (st[0]) {                                                            \
            C y = LD(b[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]);                                                        \
                o[i] = ST(E(C, UT, x, y, p));                                          \
            }                                                                          \
        } else if (st[1]) {                                                            \
            C x = LD(a[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                          \
                C y = LD(b[i]);                                                        \
                o[i] = ST(E(C, UT, x, y, p));                                          \
            }                                                                          \
        } else {                                                                       \
            C x = LD(a[0]), y = LD(b[0]);                                              \
            T r = ST(E(C, UT, x, y, p));                                               \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = r;                                                              \
        }                                                                              \
    }

/* Binary op with a bool output (comparisons, logic). */
#define CMP_LOOP(op, E, tn, T, C, UT, LD, ST)                                          \
    static void ew_##op##_##tn(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        const T *a = in[0], *b = in[1];                                                \
        uint8_t *o = o_;                                                               \
        (void)aux;                                                                     \
        if (st[0] && st[1]) {                                                          \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]), y = LD(b[i]);                                          \
                o[i] = (uint8_t)(E(C, x, y));                                          \
            }                                                                          \
        } else if (st[0]) {                                                            \
            C y = LD(b[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]);                                                        \
                o[i] = (uint8_t)(E(C, x, y));                                          \
            }                                                                          \
        } else if (st[1]) {                                                            \
            C x = LD(a[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                          \
                C y = LD(b[i]);                                                        \
                o[i] = (uint8_t)(E(C, x, y));                                          \
            }                                                                          \
        } else {                                                                       \
            C x = LD(a[0]), y = LD(b[0]);                                              \
            uint8_t r = (uint8_t)(E(C, x, y));                                         \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = r;                                                              \
        }                                                                              \
    }

/* Unary op, output of the input type. */
#define UN_LOOP(op, E, tn, T, C, UT, LD, ST)                                           \
    static void ew_##op##_##tn(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
        UN_BODY(E, T, C, UT, LD, ST)

/* The math-heavy float activations (exp, tanh, erf, sigmoid, Gelu) again,
 * compiled also for AVX2+FMA and AVX-512 and picked at run time: the build
 * targets baseline x86-64 (4 float lanes). The source has no a*b+c that
 * be contracted into a fused multiply-add (gcc in ISO C mode does not, and
 * clang is told so here), so every version gives the same bits. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EW_X86 1
#include <immintrin.h>
#define EW_TGT512 __attribute__((target("avx512f")))
#define EW_TGT256 __attribute__((target("avx2,fma")))
static int ew_isa_level; /* 0 not yet known, 1 baseline, 2 AVX2+FMA, 3 AVX-512F */
static int ew_isa(void)
{
    int v = __atomic_load_n(&ew_isa_level, __ATOMIC_RELAXED);
    if (!v) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f")                                     ? 3
            : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 2
                                                                                  : 1;
        __atomic_store_n(&ew_isa_level, v, __ATOMIC_RELAXED);
    }
    return v;
}
#define UN_LOOP_V(op, E, tn, T, C, UT, LD, ST)                                         \
    static inline __attribute__((always_inline)) void ew_##op##_##tn##_k(              \
        void *o_, const void *const *in, const int64_t *st, int64_t n, const void *aux) \
        UN_BODY(E, T, C, UT, LD, ST)                                                   \
    EW_TGT512 static void ew_##op##_##tn##_512(void *o, const void *const *in,          \
                                               const int64_t *st, int64_t n,            \
                                               const void *aux)                         \
    {                                                                                  \
        ew_##op##_##tn##_k(o, in, st, n, aux);                                         \
    }                                                                                  \
    EW_TGT256 static void ew_##op##_##tn##_256(void *o, const void *const *in,          \
                                               const int64_t *st, int64_t n,            \
                                               const void *aux)                         \
    {                                                                                  \
        ew_##op##_##tn##_k(o, in, st, n, aux);                                         \
    }                                                                                  \
    static void ew_##op##_##tn(void *o, const void *const *in, const int64_t *st,       \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        int v_ = ew_isa();                                                             \
        if (v_ == 3)                                                                   \
            ew_##op##_##tn##_512(o, in, st, n, aux);                                   \
        else if (v_ == 2)                                                              \
            ew_##op##_##tn##_256(o, in, st, n, aux);                                   \
        else                                                                           \
            ew_##op##_##tn##_k(o, in, st, n, aux);                                     \
    }
/* Binary float32 arithmetic the same way (wider loads and stores; Div is
 * bound by the divider, which AVX-512 has twice of per instruction). */
#define BIN_LOOP_V(op, E, tn, T, C, UT, LD, ST)                                        \
    static inline __attribute__((always_inline)) void ew_##op##_##tn##_k(              \
        void *o_, const void *const *in, const int64_t *st, int64_t n, const void *aux) \
        BIN_BODY(E, T, C, UT, LD, ST)                                                  \
    EW_TGT512 static void ew_##op##_##tn##_512(void *o, const void *const *in,          \
                                               const int64_t *st, int64_t n,            \
                                               const void *aux)                         \
    {                                                                                  \
        ew_##op##_##tn##_k(o, in, st, n, aux);                                         \
    }                                                                                  \
    EW_TGT256 static void ew_##op##_##tn##_256(void *o, const void *const *in,          \
                                               const int64_t *st, int64_t n,            \
                                               const void *aux)                         \
    {                                                                                  \
        ew_##op##_##tn##_k(o, in, st, n, aux);                                         \
    }                                                                                  \
    static void ew_##op##_##tn(void *o, const void *const *in, const int64_t *st,       \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        int v_ = ew_isa();                                                             \
        if (v_ == 3)                                                                   \
            ew_##op##_##tn##_512(o, in, st, n, aux);                                   \
        else if (v_ == 2)                                                              \
            ew_##op##_##tn##_256(o, in, st, n, aux);                                   \
        else                                                                           \
            ew_##op##_##tn##_k(o, in, st, n, aux);                                     \
    }
#else
#define EW_X86 0
#define UN_LOOP_V UN_LOOP
#define BIN_LOOP_V BIN_LOOP
#endif

#define UN_BODY(E, T, C, UT, LD, ST)                                                   \
    {                                                                                  \
        const T *a = in[0];                                                            \
        T *o = o_;                                                                     \
        const ew_par pl_ = *(const ew_par *)aux, *p = &pl_; /* not aliased by o */    \
        (void)p;                                                                       \
        if (st[0]) {                                                                   \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]);                                                        \
                o[i] = ST(E(C, UT, x, p));                                             \
            }                                                                          \
        } else {                                                                       \
            C x = LD(a[0]);                                                            \
            T r = ST(E(C, UT, x, p));                                                  \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = r;                                                              \
        }                                                                              \
    }

/* Unary op with a bool output (IsNaN, IsInf). */
#define UNB_LOOP(op, E, tn, T, C, UT, LD, ST)                                          \
    static void ew_##op##_##tn(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        const T *a = in[0];                                                            \
        uint8_t *o = o_;                                                               \
        const ew_par pl_ = *(const ew_par *)aux, *p = &pl_; /* not aliased by o */    \
        (void)p;                                                                       \
        if (st[0]) {                                                                   \
            for (int64_t i = 0; i < n; i++) {                                          \
                C x = LD(a[i]);                                                        \
                o[i] = (uint8_t)(E(C, x, p));                                          \
            }                                                                          \
        } else {                                                                       \
            C x = LD(a[0]);                                                            \
            memset(o, (uint8_t)(E(C, x, p)), (size_t)n);                               \
        }                                                                              \
    }

/* Clip: bounds in p->lo/p->hi, already in the compute type. */
#define CLIP_LOOP(op, E, tn, T, C, UT, LD, ST)                                         \
    static void ew_##op##_##tn(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        const T *a = in[0];                                                            \
        T *o = o_;                                                                     \
        const ew_par *p = aux;                                                         \
        C lo, hi;                                                                      \
        memcpy(&lo, p->lo, sizeof lo);                                                 \
        memcpy(&hi, p->hi, sizeof hi);                                                 \
        for (int64_t i = 0; i < n; i++) {                                              \
            C x = LD(a[i]); /* unary: the run is never broadcast */                    \
            C t = x < lo ? lo : x;                                                     \
            o[i] = ST(t > hi ? hi : t);                                                \
        }                                                                              \
    }

/* Reads a scalar bound of Clip into the compute type of the tensor's dtype;
 * NULL tensor: the type's limit. */
#define CLIP_BOUND(op, E, tn, T, C, UT, LD, ST)                                        \
    case DT_##tn: {                                                                    \
        C lo_ = (C)LO_##tn, hi_ = (C)HI_##tn;                                          \
        if (lo_t) {                                                                    \
            T v_;                                                                      \
            memcpy(&v_, lo_t->data, sizeof v_);                                        \
            lo_ = LD(v_);                                                              \
        } else if (legacy) {                                                           \
            lo_ = (C)legacy_lo;                                                        \
        }                                                                              \
        if (hi_t) {                                                                    \
            T v_;                                                                      \
            memcpy(&v_, hi_t->data, sizeof v_);                                        \
            hi_ = LD(v_);                                                              \
        } else if (legacy) {                                                           \
            hi_ = (C)legacy_hi;                                                        \
        }                                                                              \
        memcpy(p->lo, &lo_, sizeof lo_);                                               \
        memcpy(p->hi, &hi_, sizeof hi_);                                               \
        return true;                                                                   \
    }

#define TAB_ENT(op, E, tn, T, C, UT, LD, ST) [DT_##tn] = ew_##op##_##tn,

/* Table builders: the function name is ew_<op>_<tn>, the table ew_tab_<op>. */
#define TAB(op, LISTS) static const ew_fn ew_tab_##op[PARE_DT_COUNT] = {LISTS(TAB_ENT, op, 0)}

/* ------------------------------------------------------------------ */
/* scalar helpers                                                     */

/* Saturating double -> int64 (NaN -> 0), so that no conversion is undefined. */
static inline int64_t ew_d2i64(double d)
{
    if (d != d)
        return 0;
    if (d >= 0x1p63)
        return INT64_MAX;
    if (d < -0x1p63)
        return INT64_MIN;
    return (int64_t)d;
}

static inline int64_t ew_mod_s(int64_t a, int64_t b, int fmod_)
{
    if (b == -1) /* INT_MIN % -1 overflows; the result is 0 anyway */
        return 0;
    int64_t r = a % b;
    if (!fmod_ && r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

static inline float ew_modf_f(float a, float b, int fmod_)
{
    float r = fmodf(a, b);
    if (!fmod_ && r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

static inline double ew_modf_d(double a, double b, int fmod_)
{
    double r = fmod(a, b);
    if (!fmod_ && r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

/* Integer power with wrap-around, numpy's semantics for non-negative
 * exponents; a negative exponent gives 1/base^-e truncated. */
static inline int64_t ew_ipow(int64_t base, int64_t e)
{
    if (e < 0) {
        if (base == 1)
            return 1;
        if (base == -1)
            return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)base;
    uint64_t ue = (uint64_t)e;
    while (ue) {
        if (ue & 1)
            r *= b;
        b *= b;
        ue >>= 1;
    }
    int64_t s;
    memcpy(&s, &r, sizeof s);
    return s;
}

/* e^x in float32 without libm: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
 * a degree-7 Taylor polynomial (truncation < 1e-8 relative) and the scale 2^n
 * applied as two halves, so that results down into the subnormals and up to
 * overflow (inf) come out of the arithmetic itself. Branch-free, so loops
 * over it vectorise. Within 1.3 ulp; NaN stays NaN. */
/* m ? a : b on bit patterns; a plain ?: lets the compiler thread jumps
 * through the constants and then the loop no longer vectorises. */
static inline float ew_selectf(uint32_t m, float a, float b)
{
    uint32_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    uint32_t rb = (m & ab) | (~m & bb);
    float r;
    memcpy(&r, &rb, sizeof r);
    return r;
}

static inline uint32_t ew_mask(int cond)
{
    return (uint32_t)0 - (uint32_t)cond;
}

static inline float ew_expf(float x)
{
    float xc = ew_selectf(ew_mask(x < -120.0f), -120.0f, x);
    xc = ew_selectf(ew_mask(xc > 89.0f), 89.0f, xc);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
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
    int32_t ni = (int32_t)(tb - 0x4B400000u); /* n, from the low mantissa bits of t */
    int32_t n1 = ni >> 1, n2 = ni - n1;       /* each in [-87, 65] */
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

/* tanh in float32: an odd polynomial below 0.625 (fitted to tanh(x)/x in x^2,
 * 1.3 ulp), 1 - 2/(e^2|x| + 1) above, where there is no cancellation. The
 * choice is a bit mask rather than a branch so that it vectorises. */
static inline float ew_tanhf(float x)
{
    float a = fabsf(x);
    float u = x * x;
    float p = -5.697522312e-03f;
    p = p * u + 2.063030750e-02f;
    p = p * u - 5.373586342e-02f;
    p = p * u + 1.333136559e-01f;
    p = p * u - 3.333327472e-01f;
    p = p * u + 1.0f;
    float small = x * p;
    float big = copysignf(1.0f - 2.0f / (ew_expf(2.0f * a) + 1.0f), x);
    return ew_selectf(ew_mask(a < 0.625f), small, big);
}

/* erf in float32: x P(x^2) below 0.875; above, 1 - e^-x^2 Q(1/(1+|x|)) with Q
 * fitted to erfc(x) e^(x^2) on [0.875, 3.92] (past 3.92 erf rounds to 1).
 * Within 2.2 ulp. */
static inline float ew_erff(float x)
{
    float a = fabsf(x);
    float u = x * x;
    float p = -6.235155743e-04f;
    p = p * u + 5.038737785e-03f;
    p = p * u - 2.679630555e-02f;
    p = p * u + 1.128260791e-01f;
    p = p * u - 3.761256933e-01f;
    p = p * u + 1.128379107e+00f;
    float small = x * p;
    float ac = ew_selectf(ew_mask(a > 3.92f), 3.92f, a);
    float t = 1.0f / (1.0f + ac);
    float q = -5.297738910e-01f;
    q = q * t + 1.129166126e+00f;
    q = q * t - 4.438444078e-01f;
    q = q * t - 7.254431248e-01f;
    q = q * t + 4.581615925e-01f;
    q = q * t + 5.290531516e-01f;
    q = q * t + 5.678225756e-01f;
    q = q * t - 1.552256581e-04f;
    float big = copysignf(1.0f - ew_expf(-(ac * ac)) * q, x);
    return ew_selectf(ew_mask(a < 0.875f), small, big);
}

/* exp, tanh and erf in the compute type: the vectorisable float32 versions
 * above for float/float16/bfloat16, libm for double. */
#define EXPC(C, x) (sizeof(C) == sizeof(float) ? (C)ew_expf((float)(x)) : (C)exp(x))
#define TANHC(C, x) (sizeof(C) == sizeof(float) ? (C)ew_tanhf((float)(x)) : (C)tanh(x))
#define ERFC_(C, x) (sizeof(C) == sizeof(float) ? (C)ew_erff((float)(x)) : (C)erf(x))

/* ------------------------------------------------------------------ */
/* op expressions                                                     */

/* Binary: E(C, UT, x, y, p). Integer arithmetic goes through UT so that
 * overflow wraps instead of being undefined. */
#define OPF_ADD(C, UT, x, y, p) ((x) + (y))
#define OPI_ADD(C, UT, x, y, p) ((C)((UT)(x) + (UT)(y)))
#define OPF_SUB(C, UT, x, y, p) ((x) - (y))
#define OPI_SUB(C, UT, x, y, p) ((C)((UT)(x) - (UT)(y)))
#define OPF_MUL(C, UT, x, y, p) ((x) * (y))
#define OPI_MUL(C, UT, x, y, p) ((C)((UT)(x) * (UT)(y)))
#define OPF_DIV(C, UT, x, y, p) ((x) / (y))
/* divisors were checked for zero; INT_MIN / -1 wraps */
#define OPS_DIV(C, UT, x, y, p) ((y) == -1 ? (C)((UT)0 - (UT)(x)) : (C)((x) / (y)))
#define OPU_DIV(C, UT, x, y, p) ((C)((x) / (y)))
#define OPF_POW(C, UT, x, y, p) (pow((x), (y)))
#define OPF_MODF(C, UT, x, y, p)                                                       \
    (sizeof(C) == sizeof(double) ? (C)ew_modf_d((x), (y), p->mode)                      \
                                 : (C)ew_modf_f((float)(x), (float)(y), p->mode))
#define OPS_MOD(C, UT, x, y, p) ((C)ew_mod_s((x), (y), p->mode))
#define OPU_MOD(C, UT, x, y, p) ((C)((x) % (y)))
/* NaN propagates, as numpy's maximum/minimum */
#define OPF_MAX(C, UT, x, y, p) (((x) > (y) || (x) != (x)) ? (x) : (y))
#define OPF_MIN(C, UT, x, y, p) (((x) < (y) || (x) != (x)) ? (x) : (y))
#define OPI_MAX(C, UT, x, y, p) ((x) > (y) ? (x) : (y))
#define OPI_MIN(C, UT, x, y, p) ((x) < (y) ? (x) : (y))
#define OPF_PRELU(C, UT, x, y, p) ((x) < 0 ? (x) * (y) : (x))
#define OPS_PRELU(C, UT, x, y, p) ((x) < 0 ? (C)((UT)(x) * (UT)(y)) : (x))
#define OPU_PRELU(C, UT, x, y, p) ((void)(y), (x))
#define OPI_SHIFT(C, UT, x, y, p)                                                      \
    ((y) >= (C)(8 * sizeof(C)) ? (C)0                                                  \
     : p->mode                 ? (C)((UT)(x) << (y))                                   \
                               : (C)((UT)(x) >> (y)))
#define OPI_BAND(C, UT, x, y, p) ((C)((UT)(x) & (UT)(y)))
#define OPI_BOR(C, UT, x, y, p) ((C)((UT)(x) | (UT)(y)))
#define OPI_BXOR(C, UT, x, y, p) ((C)((UT)(x) ^ (UT)(y)))
#define OPB_AND(C, UT, x, y, p) ((C)(((x) != 0) & ((y) != 0)))
#define OPB_OR(C, UT, x, y, p) ((C)(((x) != 0) | ((y) != 0)))
#define OPB_XOR(C, UT, x, y, p) ((C)(((x) != 0) ^ ((y) != 0)))

/* Comparisons: E(C, x, y). */
#define CMP_EQ(C, x, y) ((x) == (y))
#define CMP_GT(C, x, y) ((x) > (y))
#define CMP_GE(C, x, y) ((x) >= (y))
#define CMP_LT(C, x, y) ((x) < (y))
#define CMP_LE(C, x, y) ((x) <= (y))

/* Unary: E(C, UT, x, p). */
#define OPF_ABS(C, UT, x, p) (fabs(x))
#define OPS_ABS(C, UT, x, p) ((x) < 0 ? (C)((UT)0 - (UT)(x)) : (x))
#define OPU_ID(C, UT, x, p) (x)
#define OPF_NEG(C, UT, x, p) (-(x))
#define OPI_NEG(C, UT, x, p) ((C)((UT)0 - (UT)(x)))
#define OPF_SIGN(C, UT, x, p) ((x) > 0 ? (C)1 : (x) < 0 ? (C)-1 : (x))
#define OPS_SIGN(C, UT, x, p) ((C)(((x) > 0) - ((x) < 0)))
#define OPU_SIGN(C, UT, x, p) ((C)((x) > 0))
#define OPF_RECIP(C, UT, x, p) ((C)1 / (x))
#define OPF_FLOOR(C, UT, x, p) (floor(x))
#define OPF_CEIL(C, UT, x, p) (ceil(x))
#define OPF_ROUND(C, UT, x, p) (rint(x)) /* default rounding mode: half to even */
#define OPF_SQRT(C, UT, x, p) (sqrt(x))
#define OPF_EXP(C, UT, x, p) (EXPC(C, x))
#define OPF_LOG(C, UT, x, p) (log(x))
#define OPF_SIN(C, UT, x, p) (sin(x))
#define OPF_COS(C, UT, x, p) (cos(x))
#define OPF_TAN(C, UT, x, p) (tan(x))
#define OPF_ASIN(C, UT, x, p) (asin(x))
#define OPF_ACOS(C, UT, x, p) (acos(x))
#define OPF_ATAN(C, UT, x, p) (atan(x))
#define OPF_SINH(C, UT, x, p) (sinh(x))
#define OPF_COSH(C, UT, x, p) (cosh(x))
#define OPF_TANH(C, UT, x, p) (TANHC(C, x))
#define OPF_ASINH(C, UT, x, p) (asinh(x))
#define OPF_ACOSH(C, UT, x, p) (acosh(x))
#define OPF_ATANH(C, UT, x, p) (atanh(x))
#define OPF_ERF(C, UT, x, p) (ERFC_(C, x))
#define OPF_RELU(C, UT, x, p) ((x) < 0 ? (C)0 : (x))
#define OPS_RELU(C, UT, x, p) ((x) < 0 ? (C)0 : (x))
#define OPF_LEAKY(C, UT, x, p) ((x) < 0 ? (C)p->alpha * (x) : (x))
#define OPF_ELU(C, UT, x, p) ((x) < 0 ? (C)p->alpha * (EXPC(C, x) - (C)1) : (x))
#define OPF_SELU(C, UT, x, p)                                                          \
    ((C)p->gamma * ((x) > 0 ? (x) : (C)p->alpha * EXPC(C, x) - (C)p->alpha))
#define OPF_CELU(C, UT, x, p)                                                          \
    (((x) > 0 ? (x) : (C)0) +                                                          \
     ((x) < 0 ? (C)p->alpha * (EXPC(C, (x) / (C)p->alpha) - (C)1) : (C)0))
/* e^-x overflowing to inf for very negative x still gives the right 0 */
#define OPF_SIGMOID(C, UT, x, p) ((C)1 / ((C)1 + EXPC(C, -(x))))
#define CLAMP01(C, v) ((v) < (C)0 ? (C)0 : (v) > (C)1 ? (C)1 : (v))
#define OPF_HSIGMOID(C, UT, x, p) (CLAMP01(C, (C)p->alpha * (x) + (C)p->beta))
#define OPF_HSWISH(C, UT, x, p) ((x) * CLAMP01(C, (x) * (C)(1.0 / 6.0) + (C)0.5))
/* log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), which cannot overflow */
#define OPF_SOFTPLUS(C, UT, x, p) (((x) > 0 ? (x) : (C)0) + log1p(EXPC(C, -fabs(x))))
#define OPF_SOFTSIGN(C, UT, x, p) ((x) / ((C)1 + fabs(x)))
#define OPF_THRELU(C, UT, x, p) ((x) > (C)p->alpha ? (x) : (C)0)
#define OPF_GELU(C, UT, x, p) ((C)0.5 * (x) * ((C)1 + ERFC_(C, (x) * (C)0.7071067811865476)))
#define OPF_GELU_TANH(C, UT, x, p)                                                     \
    ((C)0.5 * (x) *                                                                    \
     ((C)1 + TANHC(C, (C)0.7978845608028654 * ((x) + (C)0.044715 * (x) * (x) * (x)))))
#define OPF_MISH(C, UT, x, p) ((x) * TANHC(C, OPF_SOFTPLUS(C, UT, x, p)))
#define OPF_SHRINK(C, UT, x, p)                                                        \
    ((x) < (C)-p->lambd ? (x) + (C)p->bias : (x) > (C)p->lambd ? (x) - (C)p->bias : (C)0)
#define OPI_SHRINK(C, UT, x, p)                                                        \
    ((double)(x) < -(double)p->lambd  ? (C)ew_d2i64((double)(x) + p->bias)             \
     : (double)(x) > (double)p->lambd ? (C)ew_d2i64((double)(x) - p->bias)             \
                                      : (C)0)
#define OPB_NOT(C, UT, x, p) ((C)((x) == 0))
#define OPI_BNOT(C, UT, x, p) ((C)(~(UT)(x)))
#define OPF_DIVN(C, UT, x, p) ((x) / (C)p->alpha) /* Mean's final division */

/* Unary to bool: E(C, x, p). */
#define OPF_ISNAN(C, x, p) ((x) != (x))
#define OPF_ISINF(C, x, p) (isinf(x) && ((x) > 0 ? p->det_pos : p->det_neg))

/* ------------------------------------------------------------------ */
/* instantiation                                                      */

#define FSU_TYPES(M, op, E) F_TYPES(M, op, E) S_TYPES(M, op, E) U_TYPES(M, op, E)
#define SU_TYPES(M, op, E) S_TYPES(M, op, E) U_TYPES(M, op, E)
#define FSUB_TYPES(M, op, E) FSU_TYPES(M, op, E) B_TYPES(M, op, E)
#define FS_TYPES(M, op, E) F_TYPES(M, op, E) S_TYPES(M, op, E)

/* Arithmetic on every numeric type: float expression EF, signed ES, unsigned EU. */
#define DEF_BIN3(op, EF, ES, EU)                                                       \
    F_TYPES(BIN_LOOP, op, EF) S_TYPES(BIN_LOOP, op, ES) U_TYPES(BIN_LOOP, op, EU)      \
    TAB(op, FSU_TYPES);
/* The same with the float32 loop multi-versioned (BIN_LOOP_V). */
#define DEF_BIN3V(op, EF, ES, EU)                                                      \
    BIN_LOOP_V(op, EF, f32, float, float, float, LD_ID, LD_ID)                         \
    F_TYPES_NO32(BIN_LOOP, op, EF) S_TYPES(BIN_LOOP, op, ES) U_TYPES(BIN_LOOP, op, EU) \
    TAB(op, FSU_TYPES);

DEF_BIN3V(Add, OPF_ADD, OPI_ADD, OPI_ADD)
DEF_BIN3V(Sub, OPF_SUB, OPI_SUB, OPI_SUB)
DEF_BIN3V(Mul, OPF_MUL, OPI_MUL, OPI_MUL)
DEF_BIN3V(Div, OPF_DIV, OPS_DIV, OPU_DIV)
DEF_BIN3(Mod, OPF_MODF, OPS_MOD, OPU_MOD)
DEF_BIN3(Max, OPF_MAX, OPI_MAX, OPI_MAX)
DEF_BIN3(Min, OPF_MIN, OPI_MIN, OPI_MIN)
DEF_BIN3(PRelu, OPF_PRELU, OPS_PRELU, OPU_PRELU)

F_TYPES(BIN_LOOP, Pow, OPF_POW)
TAB(Pow, F_TYPES);
U_TYPES(BIN_LOOP, BitShift, OPI_SHIFT)
TAB(BitShift, U_TYPES);
SU_TYPES(BIN_LOOP, BitwiseAnd, OPI_BAND)
TAB(BitwiseAnd, SU_TYPES);
SU_TYPES(BIN_LOOP, BitwiseOr, OPI_BOR)
TAB(BitwiseOr, SU_TYPES);
SU_TYPES(BIN_LOOP, BitwiseXor, OPI_BXOR)
TAB(BitwiseXor, SU_TYPES);
B_TYPES(BIN_LOOP, And, OPB_AND)
TAB(And, B_TYPES);
B_TYPES(BIN_LOOP, Or, OPB_OR)
TAB(Or, B_TYPES);
B_TYPES(BIN_LOOP, Xor, OPB_XOR)
TAB(Xor, B_TYPES);

FSUB_TYPES(CMP_LOOP, Equal, CMP_EQ)
TAB(Equal, FSUB_TYPES);
FSUB_TYPES(CMP_LOOP, Greater, CMP_GT)
TAB(Greater, FSUB_TYPES);
FSUB_TYPES(CMP_LOOP, GreaterOrEqual, CMP_GE)
TAB(GreaterOrEqual, FSUB_TYPES);
FSUB_TYPES(CMP_LOOP, Less, CMP_LT)
TAB(Less, FSUB_TYPES);
FSUB_TYPES(CMP_LOOP, LessOrEqual, CMP_LE)
TAB(LessOrEqual, FSUB_TYPES);

#define DEF_UN_F(op, E)                                                                \
    F_TYPES(UN_LOOP, op, E)                                                            \
    TAB(op, F_TYPES);
#define DEF_UN_FV(op, E)                                                               \
    UN_LOOP_V(op, E, f32, float, float, float, LD_ID, LD_ID)                           \
    F_TYPES_NO32(UN_LOOP, op, E)                                                       \
    TAB(op, F_TYPES);
DEF_UN_F(Reciprocal, OPF_RECIP)
DEF_UN_F(Floor, OPF_FLOOR)
DEF_UN_F(Ceil, OPF_CEIL)
DEF_UN_F(Round, OPF_ROUND)
DEF_UN_F(Sqrt, OPF_SQRT)
DEF_UN_FV(Exp, OPF_EXP)
DEF_UN_F(Log, OPF_LOG)
DEF_UN_F(Sin, OPF_SIN)
DEF_UN_F(Cos, OPF_COS)
DEF_UN_F(Tan, OPF_TAN)
DEF_UN_F(Asin, OPF_ASIN)
DEF_UN_F(Acos, OPF_ACOS)
DEF_UN_F(Atan, OPF_ATAN)
DEF_UN_F(Sinh, OPF_SINH)
DEF_UN_F(Cosh, OPF_COSH)
DEF_UN_FV(Tanh, OPF_TANH)
DEF_UN_F(Asinh, OPF_ASINH)
DEF_UN_F(Acosh, OPF_ACOSH)
DEF_UN_F(Atanh, OPF_ATANH)
DEF_UN_FV(Erf, OPF_ERF)
DEF_UN_F(LeakyRelu, OPF_LEAKY)
DEF_UN_F(Elu, OPF_ELU)
DEF_UN_F(Selu, OPF_SELU)
DEF_UN_F(Celu, OPF_CELU)
DEF_UN_FV(Sigmoid, OPF_SIGMOID)
DEF_UN_F(HardSigmoid, OPF_HSIGMOID)
DEF_UN_F(HardSwish, OPF_HSWISH)
DEF_UN_F(Softplus, OPF_SOFTPLUS)
DEF_UN_F(Softsign, OPF_SOFTSIGN)
DEF_UN_F(ThresholdedRelu, OPF_THRELU)
DEF_UN_FV(Gelu, OPF_GELU)
DEF_UN_FV(GeluTanh, OPF_GELU_TANH)
DEF_UN_F(Mish, OPF_MISH)
DEF_UN_F(MeanDiv, OPF_DIVN)

F_TYPES(UN_LOOP, Abs, OPF_ABS) S_TYPES(UN_LOOP, Abs, OPS_ABS) U_TYPES(UN_LOOP, Abs, OPU_ID)
TAB(Abs, FSU_TYPES);
F_TYPES(UN_LOOP, Neg, OPF_NEG) S_TYPES(UN_LOOP, Neg, OPI_NEG) U_TYPES(UN_LOOP, Neg, OPI_NEG)
TAB(Neg, FSU_TYPES);
F_TYPES(UN_LOOP, Sign, OPF_SIGN) S_TYPES(UN_LOOP, Sign, OPS_SIGN) U_TYPES(UN_LOOP, Sign, OPU_SIGN)
TAB(Sign, FSU_TYPES);
F_TYPES(UN_LOOP, Relu, OPF_RELU) S_TYPES(UN_LOOP, Relu, OPS_RELU) U_TYPES(UN_LOOP, Relu, OPU_ID)
TAB(Relu, FSU_TYPES);
F_TYPES(UN_LOOP, Shrink, OPF_SHRINK) SU_TYPES(UN_LOOP, Shrink, OPI_SHRINK)
TAB(Shrink, FSU_TYPES);
B_TYPES(UN_LOOP, Not, OPB_NOT)
TAB(Not, B_TYPES);
SU_TYPES(UN_LOOP, BitwiseNot, OPI_BNOT)
TAB(BitwiseNot, SU_TYPES);
FSU_TYPES(CLIP_LOOP, Clip, 0)
TAB(Clip, FSU_TYPES);
F_TYPES(UNB_LOOP, IsNaN, OPF_ISNAN)
TAB(IsNaN, F_TYPES);
F_TYPES(UNB_LOOP, IsInf, OPF_ISINF)
TAB(IsInf, F_TYPES);

/* Where: a copy by element size, so one loop serves every fixed-size type. */
#define WHERE_LOOP(bits)                                                               \
    static void ew_where##bits(void *o_, const void *const *in, const int64_t *st,     \
                               int64_t n, const void *aux)                             \
    {                                                                                  \
        const uint8_t *c = in[0];                                                      \
        const uint##bits##_t *x = in[1], *y = in[2];                                   \
        uint##bits##_t *o = o_;                                                        \
        (void)aux;                                                                     \
        if (st[0] && st[1] && st[2]) {                                                 \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = c[i] ? x[i] : y[i];                                             \
        } else {                                                                       \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = c[i * st[0]] ? x[i * st[1]] : y[i * st[2]];                     \
        }                                                                              \
    }
WHERE_LOOP(8)
WHERE_LOOP(16)
WHERE_LOOP(32)
WHERE_LOOP(64)

/* Strings: Equal compares bytes; Where copies (allocating, so it runs on
 * one thread and reports allocation failure through the flag). */
static void ew_Equal_str(void *o_, const void *const *in, const int64_t *st, int64_t n,
                         const void *aux)
{
    const pare_string *a = in[0], *b = in[1];
    uint8_t *o = o_;
    (void)aux;
    for (int64_t i = 0; i < n; i++) {
        const pare_string *x = &a[i * st[0]], *y = &b[i * st[1]];
        o[i] = x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
}

static bool ew_string_copy(pare_string *dst, const pare_string *src)
{
    free(dst->data);
    dst->data = malloc(src->len ? src->len : 1);
    if (!dst->data) {
        dst->len = 0;
        return false;
    }
    if (src->len)
        memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return true;
}

static void ew_where_str(void *o_, const void *const *in, const int64_t *st, int64_t n,
                         const void *aux)
{
    const uint8_t *c = in[0];
    const pare_string *x = in[1], *y = in[2];
    pare_string *o = o_;
    atomic_int *failed = (atomic_int *)aux;
    for (int64_t i = 0; i < n; i++)
        if (!ew_string_copy(&o[i], c[i * st[0]] ? &x[i * st[1]] : &y[i * st[2]]))
            atomic_store(failed, 1);
}

/* Pow with mixed dtypes (integer base or exponent): element by element in
 * int64 (both integers, wrapping) or double, stored into the base's dtype
 * (float -> int truncates, saturating). */
typedef struct pow_aux {
    int ta, tb;
} pow_aux;

static int64_t ew_geti(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case PARE_DT_INT8: return ((const int8_t *)p)[i];
    case PARE_DT_INT16: return ((const int16_t *)p)[i];
    case PARE_DT_INT32: return ((const int32_t *)p)[i];
    case PARE_DT_INT64: return ((const int64_t *)p)[i];
    case PARE_DT_UINT8: return ((const uint8_t *)p)[i];
    case PARE_DT_UINT16: return ((const uint16_t *)p)[i];
    case PARE_DT_UINT32: return ((const uint32_t *)p)[i];
    case PARE_DT_UINT64: {
        uint64_t u = ((const uint64_t *)p)[i];
        return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    default: return 0;
    }
}

static void ew_seti(int dt, void *p, int64_t i, int64_t v)
{
    uint64_t u = (uint64_t)v; /* two's complement wrap into the narrower type */
    switch (dt) {
    case PARE_DT_INT8: case PARE_DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)u; break;
    case PARE_DT_INT16: case PARE_DT_UINT16: ((uint16_t *)p)[i] = (uint16_t)u; break;
    case PARE_DT_INT32: case PARE_DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)u; break;
    case PARE_DT_INT64: case PARE_DT_UINT64: ((uint64_t *)p)[i] = u; break;
    default: break;
    }
}

static void ew_pow_mixed(void *o, const void *const *in, const int64_t *st, int64_t n,
                         const void *aux)
{
    const pow_aux *p = aux;
    bool ia = pare_dtype_is_int(p->ta), ib = pare_dtype_is_int(p->tb);
    for (int64_t i = 0; i < n; i++) {
        int64_t xa = i * st[0], xb = i * st[1];
        if (ia && ib) {
            ew_seti(p->ta, o, i, ew_ipow(ew_geti(p->ta, in[0], xa), ew_geti(p->tb, in[1], xb)));
        } else {
            double x = pare_dtype_get_f64(p->ta, in[0], (size_t)xa);
            double y = pare_dtype_get_f64(p->tb, in[1], (size_t)xb);
            pare_dtype_set_f64(p->ta, o, (size_t)i, pow(x, y));
        }
    }
}

/* ------------------------------------------------------------------ */
/* the broadcasting driver                                            */

typedef struct ew_iter {
    int rank;
    int n_in;
    int64_t dims[PARE_MAX_RANK];
    int64_t st[EW_MAXIN][PARE_MAX_RANK];
    const char *in[EW_MAXIN];
    size_t isz[EW_MAXIN];
    char *out;
    size_t osz;
    ew_fn fn;
    const void *aux;
} ew_iter;

/* Drops size-1 dims and merges neighbours that are contiguous for the output
 * and every input, so the innermost run is as long as it can be. */
static void ew_coalesce(ew_iter *it)
{
    int r = 0;
    for (int d = 0; d < it->rank; d++) {
        if (it->dims[d] == 1)
            continue;
        if (r > 0) {
            bool merge = true;
            for (int k = 0; k < it->n_in; k++)
                if (it->st[k][r - 1] != it->st[k][d] * it->dims[d])
                    merge = false;
            if (merge) {
                it->dims[r - 1] *= it->dims[d];
                for (int k = 0; k < it->n_in; k++)
                    it->st[k][r - 1] = it->st[k][d];
                continue;
            }
        }
        it->dims[r] = it->dims[d];
        for (int k = 0; k < it->n_in; k++)
            it->st[k][r] = it->st[k][d];
        r++;
    }
    if (r == 0) {
        it->dims[0] = 1;
        for (int k = 0; k < it->n_in; k++)
            it->st[k][0] = 0;
        r = 1;
    }
    it->rank = r;
}

static void ew_range(void *ctx, int64_t begin, int64_t end)
{
    const ew_iter *it = ctx;
    int r = it->rank;
    int64_t idx[PARE_MAX_RANK];
    int64_t rem = begin;
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % it->dims[d];
        rem /= it->dims[d];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t len = it->dims[r - 1] - idx[r - 1];
        if (len > end - pos)
            len = end - pos;
        const void *ip[EW_MAXIN] = {0};
        int64_t s[EW_MAXIN] = {0};
        for (int k = 0; k < it->n_in; k++) {
            int64_t off = 0;
            for (int d = 0; d < r; d++)
                off += idx[d] * it->st[k][d];
            ip[k] = it->in[k] + (size_t)off * it->isz[k];
            s[k] = it->st[k][r - 1];
        }
        it->fn(it->out + (size_t)pos * it->osz, ip, s, len, it->aux);
        pos += len;
        idx[r - 1] += len;
        for (int d = r - 1; d > 0 && idx[d] >= it->dims[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
        }
    }
}

/* An input whose data is not aligned for its element type (a raw initializer
 * inside a model file) is copied first; *tmp receives the copy to free. */
static pare_status ew_aligned(const pare_tensor *t, const void **data, void **tmp,
                              pare_error *err)
{
    size_t esz = pare_elem_size(t->dtype);
    *tmp = NULL;
    *data = t->data;
    if (esz > 1 && ((uintptr_t)t->data % esz) != 0) {
        *tmp = malloc(t->nbytes ? t->nbytes : 1);
        if (!*tmp)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        memcpy(*tmp, t->data, t->nbytes);
        *data = *tmp;
    }
    return PARE_OK;
}

/* Runs fn over out (already allocated, of rank/dims) reading n_in inputs
 * broadcast to it. serial: on the calling thread only. */
static pare_status ew_exec(pare_kctx *k, ew_fn fn, const void *aux, pare_tensor *out,
                           const pare_tensor *const *ins, const int *ranks,
                           const int64_t *const *dims, int n_in, bool serial, pare_error *err)
{
    uint64_t n = pare_tensor_numel(out);
    if (n == 0)
        return PARE_OK;
    ew_iter it;
    void *tmp[EW_MAXIN] = {0};
    it.rank = out->rank;
    it.n_in = n_in;
    for (int d = 0; d < out->rank; d++)
        it.dims[d] = out->dims[d];
    pare_status st = PARE_OK;
    for (int i = 0; i < n_in; i++) {
        pare_bcast_strides(out->rank, out->dims, ranks[i], dims[i], it.st[i]);
        const void *data;
        if (ins[i] == out) {
            data = out->data;
        } else if ((st = ew_aligned(ins[i], &data, &tmp[i], err)) != PARE_OK) {
            goto done;
        }
        it.in[i] = data;
        it.isz[i] = pare_elem_size(ins[i]->dtype);
    }
    it.out = out->data;
    it.osz = pare_elem_size(out->dtype);
    it.fn = fn;
    it.aux = aux;
    ew_coalesce(&it);
    if (serial)
        ew_range(&it, 0, (int64_t)n);
    else
        pare_parallel_for(k->pool, (int64_t)n, EW_GRAIN, ew_range, &it);
done:
    for (int i = 0; i < n_in; i++)
        free(tmp[i]);
    return st;
}

/* ------------------------------------------------------------------ */
/* op descriptors and node state                                      */

typedef enum ew_kind {
    K_UNARY,    /* one input, output of its dtype (or bool for IsNaN/IsInf) */
    K_BINARY,   /* two inputs of one dtype */
    K_CMP,      /* two inputs of one dtype, bool output */
    K_POW,      /* base and exponent of any numeric dtypes */
    K_VARIADIC, /* Max/Min/Sum/Mean */
    K_WHERE,
    K_CLIP,
    K_CAST,
    K_CASTLIKE,
    K_IDENTITY,
    K_SOFTMAX,
    K_LOGSOFTMAX,
    K_HARDMAX
} ew_kind;

enum { F_INTDIV = 1, F_BOOLOUT = 2, F_MEAN = 4 };

typedef struct ew_desc {
    const char *name;
    ew_kind kind;
    const ew_fn *tab;
    unsigned flags;
} ew_desc;

static const ew_desc ew_descs[] = {
    {"Add", K_BINARY, ew_tab_Add, 0},
    {"Sub", K_BINARY, ew_tab_Sub, 0},
    {"Mul", K_BINARY, ew_tab_Mul, 0},
    {"Div", K_BINARY, ew_tab_Div, F_INTDIV},
    {"Mod", K_BINARY, ew_tab_Mod, F_INTDIV},
    {"Pow", K_POW, ew_tab_Pow, 0},
    {"PRelu", K_BINARY, ew_tab_PRelu, 0},
    {"BitShift", K_BINARY, ew_tab_BitShift, 0},
    {"BitwiseAnd", K_BINARY, ew_tab_BitwiseAnd, 0},
    {"BitwiseOr", K_BINARY, ew_tab_BitwiseOr, 0},
    {"BitwiseXor", K_BINARY, ew_tab_BitwiseXor, 0},
    {"And", K_BINARY, ew_tab_And, 0},
    {"Or", K_BINARY, ew_tab_Or, 0},
    {"Xor", K_BINARY, ew_tab_Xor, 0},
    {"Equal", K_CMP, ew_tab_Equal, 0},
    {"Greater", K_CMP, ew_tab_Greater, 0},
    {"GreaterOrEqual", K_CMP, ew_tab_GreaterOrEqual, 0},
    {"Less", K_CMP, ew_tab_Less, 0},
    {"LessOrEqual", K_CMP, ew_tab_LessOrEqual, 0},
    {"Where", K_WHERE, NULL, 0},
    {"Max", K_VARIADIC, ew_tab_Max, 0},
    {"Min", K_VARIADIC, ew_tab_Min, 0},
    {"Sum", K_VARIADIC, ew_tab_Add, 0},
    {"Mean", K_VARIADIC, ew_tab_Add, F_MEAN},
    {"Abs", K_UNARY, ew_tab_Abs, 0},
    {"Neg", K_UNARY, ew_tab_Neg, 0},
    {"Sign", K_UNARY, ew_tab_Sign, 0},
    {"Reciprocal", K_UNARY, ew_tab_Reciprocal, 0},
    {"Floor", K_UNARY, ew_tab_Floor, 0},
    {"Ceil", K_UNARY, ew_tab_Ceil, 0},
    {"Round", K_UNARY, ew_tab_Round, 0},
    {"Sqrt", K_UNARY, ew_tab_Sqrt, 0},
    {"Exp", K_UNARY, ew_tab_Exp, 0},
    {"Log", K_UNARY, ew_tab_Log, 0},
    {"Sin", K_UNARY, ew_tab_Sin, 0},
    {"Cos", K_UNARY, ew_tab_Cos, 0},
    {"Tan", K_UNARY, ew_tab_Tan, 0},
    {"Asin", K_UNARY, ew_tab_Asin, 0},
    {"Acos", K_UNARY, ew_tab_Acos, 0},
    {"Atan", K_UNARY, ew_tab_Atan, 0},
    {"Sinh", K_UNARY, ew_tab_Sinh, 0},
    {"Cosh", K_UNARY, ew_tab_Cosh, 0},
    {"Tanh", K_UNARY, ew_tab_Tanh, 0},
    {"Asinh", K_UNARY, ew_tab_Asinh, 0},
    {"Acosh", K_UNARY, ew_tab_Acosh, 0},
    {"Atanh", K_UNARY, ew_tab_Atanh, 0},
    {"Erf", K_UNARY, ew_tab_Erf, 0},
    {"IsNaN", K_UNARY, ew_tab_IsNaN, F_BOOLOUT},
    {"IsInf", K_UNARY, ew_tab_IsInf, F_BOOLOUT},
    {"Not", K_UNARY, ew_tab_Not, 0},
    {"BitwiseNot", K_UNARY, ew_tab_BitwiseNot, 0},
    {"Relu", K_UNARY, ew_tab_Relu, 0},
    {"LeakyRelu", K_UNARY, ew_tab_LeakyRelu, 0},
    {"Elu", K_UNARY, ew_tab_Elu, 0},
    {"Selu", K_UNARY, ew_tab_Selu, 0},
    {"Celu", K_UNARY, ew_tab_Celu, 0},
    {"Sigmoid", K_UNARY, ew_tab_Sigmoid, 0},
    {"HardSigmoid", K_UNARY, ew_tab_HardSigmoid, 0},
    {"HardSwish", K_UNARY, ew_tab_HardSwish, 0},
    {"Softplus", K_UNARY, ew_tab_Softplus, 0},
    {"Softsign", K_UNARY, ew_tab_Softsign, 0},
    {"ThresholdedRelu", K_UNARY, ew_tab_ThresholdedRelu, 0},
    {"Gelu", K_UNARY, ew_tab_Gelu, 0},
    {"Mish", K_UNARY, ew_tab_Mish, 0},
    {"Shrink", K_UNARY, ew_tab_Shrink, 0},
    {"Clip", K_CLIP, ew_tab_Clip, 0},
    {"Cast", K_CAST, NULL, 0},
    {"CastLike", K_CASTLIKE, NULL, 0},
    {"Identity", K_IDENTITY, NULL, 0},
    {"Softmax", K_SOFTMAX, NULL, 0},
    {"LogSoftmax", K_LOGSOFTMAX, NULL, 0},
    {"Hardmax", K_HARDMAX, NULL, 0},
};

typedef struct ew_state {
    const ew_desc *d;
    const ew_fn *tab; /* the desc's, or a variant chosen by attributes */
    int64_t opset;
    ew_par par;
    /* legacy (opset < 7) binary broadcast: B aligned to A at this axis */
    bool has_bcast_axis;
    int64_t bcast_axis;
    /* Clip before opset 11 */
    bool clip_legacy;
    float clip_min, clip_max;
    /* Cast */
    int to;
    bool saturate;
    int round_mode; /* 0 up, 1 down, 2 nearest (float8e8m0 targets) */
    /* Softmax family */
    int64_t axis;
} ew_state;

static bool ew_streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static pare_status ew_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    const ew_desc *d = NULL;
    for (size_t i = 0; i < sizeof ew_descs / sizeof ew_descs[0]; i++)
        if (ew_streq(ew_descs[i].name, n->op_type))
            d = &ew_descs[i];
    if (!d)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no elementwise kernel for %s",
                              n->op_type);
    ew_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->d = d;
    s->tab = d->tab;
    s->opset = opset;
    const char *op = d->name;
    ew_par *p = &s->par;

    if (d->kind == K_BINARY || d->kind == K_CMP || d->kind == K_POW) {
        /* before opset 7, broadcasting was opt-in and B could be aligned at an axis */
        if (opset < 7 && pare_node_attr_int(n, "broadcast", 0) && pare_node_attr(n, "axis")) {
            s->has_bcast_axis = true;
            s->bcast_axis = pare_node_attr_int(n, "axis", 0);
        }
    }
    if (ew_streq(op, "Mod")) {
        p->mode = (int)pare_node_attr_int(n, "fmod", 0);
    } else if (ew_streq(op, "BitShift")) {
        const char *dir = pare_node_attr_string(n, "direction", "");
        if (ew_streq(dir, "LEFT"))
            p->mode = 1;
        else if (ew_streq(dir, "RIGHT"))
            p->mode = 0;
        else {
            free(s);
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "direction must be LEFT or RIGHT, not '%s'", dir);
        }
    } else if (ew_streq(op, "IsInf")) {
        p->det_neg = pare_node_attr_int(n, "detect_negative", 1) != 0;
        p->det_pos = pare_node_attr_int(n, "detect_positive", 1) != 0;
    } else if (ew_streq(op, "LeakyRelu")) {
        p->alpha = pare_node_attr_float(n, "alpha", 0.01f);
    } else if (ew_streq(op, "Elu") || ew_streq(op, "Celu") || ew_streq(op, "ThresholdedRelu")) {
        p->alpha = pare_node_attr_float(n, "alpha", 1.0f);
    } else if (ew_streq(op, "Selu")) {
        p->alpha = pare_node_attr_float(n, "alpha", 1.67326319217681884765625f);
        p->gamma = pare_node_attr_float(n, "gamma", 1.05070102214813232421875f);
    } else if (ew_streq(op, "HardSigmoid")) {
        p->alpha = pare_node_attr_float(n, "alpha", 0.2f);
        p->beta = pare_node_attr_float(n, "beta", 0.5f);
    } else if (ew_streq(op, "Shrink")) {
        p->lambd = pare_node_attr_float(n, "lambd", 0.5f);
        p->bias = pare_node_attr_float(n, "bias", 0.0f);
    } else if (ew_streq(op, "Gelu")) {
        const char *ap = pare_node_attr_string(n, "approximate", "none");
        if (ew_streq(ap, "tanh"))
            s->tab = ew_tab_GeluTanh;
        else if (!ew_streq(ap, "none")) {
            free(s);
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "approximate must be 'none' or 'tanh', not '%s'", ap);
        }
    } else if (d->kind == K_CLIP && opset < 11) {
        s->clip_legacy = true;
        s->clip_min = pare_node_attr_float(n, "min", -INFINITY);
        s->clip_max = pare_node_attr_float(n, "max", INFINITY);
    } else if (d->kind == K_CAST || d->kind == K_CASTLIKE) {
        const pare_attr *to = pare_node_attr(n, "to");
        if (d->kind == K_CAST) {
            if (!to) {
                free(s);
                return pare_error_set(err, PARE_ERR_INVALID, "missing attribute 'to'");
            }
            /* opset 1 named the type with a string ("FLOAT") */
            s->to = to->type == PARE_ATTR_STRING ? (int)pare_dtype_from_name(to->s.data)
                                                 : (int)to->i;
            if (!pare_dtype_valid(s->to)) {
                free(s);
                return pare_error_set(err, PARE_ERR_UNSUPPORTED, "unsupported target type %lld",
                                      (long long)(to->type == PARE_ATTR_STRING ? -1 : to->i));
            }
        }
        s->saturate = pare_node_attr_int(n, "saturate", 1) != 0;
        const char *rm = pare_node_attr_string(n, "round_mode", "up");
        if (ew_streq(rm, "up"))
            s->round_mode = 0;
        else if (ew_streq(rm, "down"))
            s->round_mode = 1;
        else if (ew_streq(rm, "nearest"))
            s->round_mode = 2;
        else {
            free(s);
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "round_mode must be up, down or nearest, not '%s'", rm);
        }
    } else if (d->kind == K_SOFTMAX || d->kind == K_LOGSOFTMAX || d->kind == K_HARDMAX) {
        s->axis = pare_node_attr_int(n, "axis", opset < 13 ? 1 : -1);
    }
    *state = s;
    return PARE_OK;
}

static void ew_release(void *state)
{
    free(state);
}

/* ------------------------------------------------------------------ */
/* runs                                                               */

static pare_status ew_need_inputs(pare_kctx *k, size_t n, pare_error *err)
{
    if (k->n_in < n)
        return pare_error_set(err, PARE_ERR_INVALID, "expects %zu inputs, got %zu", n, k->n_in);
    for (size_t i = 0; i < n; i++)
        if (!k->in[i])
            return pare_error_set(err, PARE_ERR_INVALID, "input %zu is missing", i);
    return PARE_OK;
}

static pare_status ew_bad_dtype(const ew_desc *d, int dtype, pare_error *err)
{
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s does not support dtype %s", d->name,
                          pare_dtype_name(dtype));
}

static ew_fn ew_lookup(const ew_state *s, int dtype)
{
    if (!s->tab || !pare_dtype_valid(dtype))
        return NULL;
    return s->tab[dtype];
}

/* Integer divisors must not be zero: checked once before the loop. */
static pare_status ew_check_divisor(const pare_tensor *b, const void *data, pare_error *err)
{
    uint64_t n = pare_tensor_numel(b);
    size_t esz = pare_elem_size(b->dtype);
    static const unsigned char zero[8];
    for (uint64_t i = 0; i < n; i++)
        if (memcmp((const char *)data + i * esz, zero, esz) == 0)
            return pare_error_set(err, PARE_ERR_RUNTIME,
                                  "integer division by zero (divisor element %llu is 0)",
                                  (unsigned long long)i);
    return PARE_OK;
}

static pare_status ew_run_unary(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    pare_status st = ew_need_inputs(k, 1, err);
    if (st)
        return st;
    const pare_tensor *x = k->in[0];
    ew_fn fn = ew_lookup(s, x->dtype);
    if (!fn)
        return ew_bad_dtype(s->d, x->dtype, err);
    pare_tensor *out;
    int odt = (s->d->flags & F_BOOLOUT) ? PARE_DT_BOOL : x->dtype;
    if ((st = k->alloc_out(k, 0, odt, x->rank, x->dims, &out, err)))
        return st;
    const int64_t *dims[1] = {x->dims};
    return ew_exec(k, fn, &s->par, out, &x, &x->rank, dims, 1, false, err);
}

/* Dims of B as the legacy (opset < 7) axis broadcast sees them: B's dims
 * followed by ones up to A's rank. */
static pare_status ew_legacy_dims(const ew_state *s, const pare_tensor *a, const pare_tensor *b,
                                  int *rank, int64_t *dims, pare_error *err)
{
    *rank = b->rank;
    for (int d = 0; d < b->rank; d++)
        dims[d] = b->dims[d];
    if (!s->has_bcast_axis)
        return PARE_OK;
    int64_t ax = s->bcast_axis;
    if (ax < 0)
        ax += a->rank;
    if (ax < 0 || ax + b->rank > a->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "axis %lld does not fit B in A",
                              (long long)ax);
    for (int64_t d = ax + b->rank; d < a->rank; d++)
        dims[(*rank)++] = 1;
    return PARE_OK;
}

static pare_status ew_run_binary(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    const ew_desc *d = s->d;
    pare_status st = ew_need_inputs(k, 2, err);
    if (st)
        return st;
    const pare_tensor *a = k->in[0], *b = k->in[1];
    ew_fn fn;
    pow_aux pa = {a->dtype, b->dtype};
    const void *aux = &s->par;
    if (d->kind == K_POW) {
        if (!pare_dtype_is_float(a->dtype) && !pare_dtype_is_int(a->dtype))
            return ew_bad_dtype(d, a->dtype, err);
        if (!pare_dtype_is_float(b->dtype) && !pare_dtype_is_int(b->dtype))
            return ew_bad_dtype(d, b->dtype, err);
        fn = a->dtype == b->dtype ? ew_lookup(s, a->dtype) : NULL;
        if (!fn) {
            if (pare_elem_size(a->dtype) * 8 != (size_t)pare_dtype_bits(a->dtype) ||
                pare_elem_size(b->dtype) * 8 != (size_t)pare_dtype_bits(b->dtype))
                return ew_bad_dtype(d, pare_dtype_bits(a->dtype) < 8 ? a->dtype : b->dtype, err);
            fn = ew_pow_mixed;
            aux = &pa;
        }
    } else {
        if (a->dtype != b->dtype)
            return pare_error_set(err, PARE_ERR_INVALID, "input dtypes differ: %s and %s",
                                  pare_dtype_name(a->dtype), pare_dtype_name(b->dtype));
        fn = ew_lookup(s, a->dtype);
        if (d->kind == K_CMP && a->dtype == PARE_DT_STRING && ew_streq(d->name, "Equal"))
            fn = ew_Equal_str;
        if (!fn)
            return ew_bad_dtype(d, a->dtype, err);
    }
    int rb;
    int64_t db[PARE_MAX_RANK];
    if ((st = ew_legacy_dims(s, a, b, &rb, db, err)))
        return st;
    int ro;
    int64_t dout[PARE_MAX_RANK];
    if ((st = pare_bcast_dims(a->rank, a->dims, rb, db, &ro, dout, err)))
        return st;
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, d->kind == K_CMP ? PARE_DT_BOOL : a->dtype, ro, dout, &out, err)))
        return st;
    if ((d->flags & F_INTDIV) && pare_dtype_is_int(b->dtype) && pare_tensor_numel(out) > 0) {
        const void *bd;
        void *tmp;
        if ((st = ew_aligned(b, &bd, &tmp, err)))
            return st;
        st = ew_check_divisor(b, bd, err);
        free(tmp);
        if (st)
            return st;
    }
    const pare_tensor *ins[2] = {a, b};
    int ranks[2] = {a->rank, rb};
    const int64_t *dims[2] = {a->dims, db};
    return ew_exec(k, fn, aux, out, ins, ranks, dims, 2, false, err);
}

static pare_status ew_run_variadic(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    const ew_desc *d = s->d;
    pare_status st;
    if (k->n_in < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "expects at least one input");
    if ((st = ew_need_inputs(k, k->n_in, err)))
        return st;
    int dt = k->in[0]->dtype;
    ew_fn fn = ew_lookup(s, dt);
    if ((d->flags & F_MEAN) && !pare_dtype_is_float(dt))
        fn = NULL;
    if (!fn)
        return ew_bad_dtype(d, dt, err);
    int ro = k->in[0]->rank;
    int64_t dout[PARE_MAX_RANK];
    for (int j = 0; j < ro; j++)
        dout[j] = k->in[0]->dims[j];
    for (size_t i = 1; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (t->dtype != dt)
            return pare_error_set(err, PARE_ERR_INVALID, "input dtypes differ: %s and %s",
                                  pare_dtype_name(dt), pare_dtype_name(t->dtype));
        int64_t prev[PARE_MAX_RANK];
        for (int j = 0; j < ro; j++)
            prev[j] = dout[j];
        if ((st = pare_bcast_dims(ro, prev, t->rank, t->dims, &ro, dout, err)))
            return st;
    }
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, dt, ro, dout, &out, err)))
        return st;
    if (k->n_in == 1) { /* a copy, broadcast to itself */
        if (out->nbytes)
            memcpy(out->data, k->in[0]->data, out->nbytes);
        return PARE_OK;
    }
    for (size_t i = 1; i < k->n_in; i++) {
        const pare_tensor *ins[2] = {i == 1 ? k->in[0] : out, k->in[i]};
        int ranks[2] = {ins[0]->rank, ins[1]->rank};
        const int64_t *dims[2] = {ins[0]->dims, ins[1]->dims};
        if ((st = ew_exec(k, fn, &s->par, out, ins, ranks, dims, 2, false, err)))
            return st;
    }
    if (d->flags & F_MEAN) {
        ew_par p = s->par;
        p.alpha = (float)k->n_in;
        const pare_tensor *ins[1] = {out};
        const int64_t *dims[1] = {out->dims};
        return ew_exec(k, ew_tab_MeanDiv[dt], &p, out, ins, &out->rank, dims, 1, false, err);
    }
    return PARE_OK;
}

static pare_status ew_run_where(pare_kctx *k, pare_error *err)
{
    pare_status st = ew_need_inputs(k, 3, err);
    if (st)
        return st;
    const pare_tensor *c = k->in[0], *x = k->in[1], *y = k->in[2];
    if (c->dtype != PARE_DT_BOOL)
        return pare_error_set(err, PARE_ERR_INVALID, "condition must be bool, not %s",
                              pare_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return pare_error_set(err, PARE_ERR_INVALID, "X and Y dtypes differ: %s and %s",
                              pare_dtype_name(x->dtype), pare_dtype_name(y->dtype));
    ew_fn fn = NULL;
    bool str = x->dtype == PARE_DT_STRING;
    if (str)
        fn = ew_where_str;
    else if (pare_dtype_bits(x->dtype) >= 8) {
        switch (pare_elem_size(x->dtype)) {
        case 1: fn = ew_where8; break;
        case 2: fn = ew_where16; break;
        case 4: fn = ew_where32; break;
        case 8: fn = ew_where64; break;
        default: break;
        }
    }
    if (!fn)
        return ew_bad_dtype(((ew_state *)k->state)->d, x->dtype, err);
    int r1, r2;
    int64_t d1[PARE_MAX_RANK], d2[PARE_MAX_RANK];
    if ((st = pare_bcast_dims(c->rank, c->dims, x->rank, x->dims, &r1, d1, err)) ||
        (st = pare_bcast_dims(r1, d1, y->rank, y->dims, &r2, d2, err)))
        return st;
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, x->dtype, r2, d2, &out, err)))
        return st;
    const pare_tensor *ins[3] = {c, x, y};
    int ranks[3] = {c->rank, x->rank, y->rank};
    const int64_t *dims[3] = {c->dims, x->dims, y->dims};
    atomic_int failed = 0;
    if ((st = ew_exec(k, fn, str ? (const void *)&failed : NULL, out, ins, ranks, dims, 3, str,
                      err)))
        return st;
    if (atomic_load(&failed))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return PARE_OK;
}

/* Clip's bounds into p for dtype dt; false for an unsupported dtype. */
static bool ew_clip_bounds(ew_par *p, int dt, const pare_tensor *lo_t, const pare_tensor *hi_t,
                           bool legacy, float legacy_lo, float legacy_hi)
{
    switch (dt) {
        FSU_TYPES(CLIP_BOUND, Clip, 0)
    default: return false;
    }
}

static pare_status ew_run_clip(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    pare_status st = ew_need_inputs(k, 1, err);
    if (st)
        return st;
    const pare_tensor *x = k->in[0];
    const pare_tensor *lo = NULL, *hi = NULL;
    if (!s->clip_legacy) {
        lo = k->n_in > 1 ? k->in[1] : NULL;
        hi = k->n_in > 2 ? k->in[2] : NULL;
        const pare_tensor *b[2] = {lo, hi};
        for (int i = 0; i < 2; i++) {
            if (!b[i])
                continue;
            if (b[i]->dtype != x->dtype)
                return pare_error_set(err, PARE_ERR_INVALID, "%s has dtype %s, input has %s",
                                      i ? "max" : "min", pare_dtype_name(b[i]->dtype),
                                      pare_dtype_name(x->dtype));
            if (pare_tensor_numel(b[i]) != 1)
                return pare_error_set(err, PARE_ERR_INVALID, "%s must be a scalar, has %llu elements",
                                      i ? "max" : "min",
                                      (unsigned long long)pare_tensor_numel(b[i]));
        }
    }
    ew_fn fn = ew_lookup(s, x->dtype);
    ew_par p = s->par;
    if (s->clip_legacy && !pare_dtype_is_float(x->dtype))
        fn = NULL; /* the float attributes only bound float inputs */
    if (!fn || !ew_clip_bounds(&p, x->dtype, lo, hi, s->clip_legacy, s->clip_min, s->clip_max))
        return ew_bad_dtype(s->d, x->dtype, err);
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &out, err)))
        return st;
    const int64_t *dims[1] = {x->dims};
    return ew_exec(k, fn, &p, out, &x, &x->rank, dims, 1, false, err);
}

#include "kernels_elementwise_cast.c"
#include "kernels_elementwise_softmax.c"

static pare_status ew_run(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    switch (s->d->kind) {
    case K_UNARY: return ew_run_unary(k, err);
    case K_BINARY:
    case K_CMP:
    case K_POW: return ew_run_binary(k, err);
    case K_VARIADIC: return ew_run_variadic(k, err);
    case K_WHERE: return ew_run_where(k, err);
    case K_CLIP: return ew_run_clip(k, err);
    case K_CAST:
    case K_CASTLIKE: return ew_run_cast(k, err);
    case K_IDENTITY: return ew_run_identity(k, err);
    case K_SOFTMAX:
    case K_LOGSOFTMAX:
    case K_HARDMAX: return ew_run_softmax(k, err);
    }
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "unknown elementwise kind");
}

/* ------------------------------------------------------------------ */
/* the table                                                          */

/* EWT: with the input dtypes run implements (the ew_tab_* tables above);
 * EW: any dtype (the kernel dispatches on it: Where, Cast, Identity). */
#define EW(op, since) {"", op, since, 0, ew_init, ew_run, ew_release, NULL}
#define EWT(op, since, types) {"", op, since, 0, ew_init, ew_run, ew_release, types}
#define EW_FI "fp,int =0"        /* Add, Sub, ... */
#define EW_F1 "fp"               /* float-only unary */
#define EW_FI1 "fp,int"          /* numeric unary */
#define EW_CMP "fp,int,bool =0"  /* comparisons */

const pare_kernel pare_kernels_elementwise[] = {
    EWT("Add", 1, EW_FI), EWT("Sub", 1, EW_FI), EWT("Mul", 1, EW_FI), EWT("Div", 1, EW_FI),
    EWT("Pow", 1, "fp,int fp,int"), EWT("Mod", 10, EW_FI), EWT("BitShift", 11, "uint =0"),
    EWT("BitwiseAnd", 18, "int =0"), EWT("BitwiseOr", 18, "int =0"),
    EWT("BitwiseXor", 18, "int =0"), EWT("BitwiseNot", 18, "int"),
    EWT("And", 1, "bool =0"), EWT("Or", 1, "bool =0"), EWT("Xor", 1, "bool =0"),
    EWT("Not", 1, "bool"),
    EWT("Equal", 1, "fp,int,bool,string =0"), EWT("Greater", 1, EW_CMP),
    EWT("GreaterOrEqual", 12, EW_CMP), EWT("Less", 1, EW_CMP),
    EWT("LessOrEqual", 12, EW_CMP), EWT("Where", 9, "bool * =1"),
    EWT("Max", 1, "fp,int =0..."), EWT("Min", 1, "fp,int =0..."),
    EWT("Sum", 1, "fp,int =0..."), EWT("Mean", 1, "fp =0..."),
    EWT("Abs", 1, EW_FI1), EWT("Neg", 1, EW_FI1), EWT("Sign", 9, EW_FI1),
    EWT("Reciprocal", 1, EW_F1), EWT("Floor", 1, EW_F1),
    EWT("Ceil", 1, EW_F1), EWT("Round", 11, EW_F1), EWT("Sqrt", 1, EW_F1),
    EWT("Exp", 1, EW_F1), EWT("Log", 1, EW_F1),
    EWT("Sin", 7, EW_F1), EWT("Cos", 7, EW_F1), EWT("Tan", 7, EW_F1), EWT("Asin", 7, EW_F1),
    EWT("Acos", 7, EW_F1), EWT("Atan", 7, EW_F1),
    EWT("Sinh", 9, EW_F1), EWT("Cosh", 9, EW_F1), EWT("Tanh", 1, EW_F1),
    EWT("Asinh", 9, EW_F1), EWT("Acosh", 9, EW_F1),
    EWT("Atanh", 9, EW_F1), EWT("Erf", 9, EW_F1), EWT("IsNaN", 9, EW_F1),
    EWT("IsInf", 10, EW_F1),
    EWT("Relu", 1, EW_FI1), EWT("LeakyRelu", 1, EW_F1), EWT("PRelu", 1, EW_FI),
    EWT("Elu", 1, EW_F1), EWT("Selu", 1, EW_F1),
    EWT("Celu", 12, EW_F1), EWT("Sigmoid", 1, EW_F1), EWT("HardSigmoid", 1, EW_F1),
    EWT("HardSwish", 14, EW_F1),
    EWT("Softplus", 1, EW_F1), EWT("Softsign", 1, EW_F1), EWT("ThresholdedRelu", 10, EW_F1),
    EWT("Gelu", 20, EW_F1),
    EWT("Mish", 18, EW_F1), EWT("Shrink", 9, EW_FI1), EWT("Clip", 1, "fp,int =0 =0"),
    EW("Cast", 1), EW("CastLike", 15), EW("Identity", 1),
    EWT("Softmax", 1, EW_F1), EWT("LogSoftmax", 1, EW_F1), EWT("Hardmax", 1, EW_F1),
    {0},
};
