/* dtype.c - ONNX element types: names, sizes and value conversions.
 *
 * Narrow floating-point formats (float16, bfloat16, the float8 family and
 * float4e2m1) share one exact encoder that works on a double: scaling by a
 * power of two is exact, so rounding the scaled magnitude to an integer with
 * ties-to-even gives the correctly rounded code for any float or double
 * input, subnormals included. float32 <-> float16/bfloat16, the hot pairs,
 * also have bit-level versions that give the same results faster.
 *
 * Conversion rules (pare_dtype_convert, pare_dtype_set_f64), following ONNX
 * Cast where it defines them and the C/numpy behaviour where it does not:
 *   - float -> float: round to nearest even, once (a double source is not
 *     rounded to float32 first); NaN stays NaN; out of range goes to +-inf
 *     for float16, bfloat16 and float32. For the float8 types the Cast
 *     'saturate' flag decides: true clamps out-of-range values *and +-inf*
 *     to +-max finite (all four types, e5m2 included, as the Cast spec's
 *     table and reference implementation do); false gives inf (e5m2) or
 *     NaN (e4m3fn, e4m3fnuz, e5m2fnuz).
 *   - float4e2m1 always saturates (+-inf -> +-6); NaN, which it lacks,
 *     gives +6 (0x7) as ONNX's float32_to_float4e2m1 helper does.
 *   - float8e8m0 rounds the magnitude up to a power of two (Cast's default
 *     round_mode "up"; negative inputs are unspecified by Cast). Per the Cast
 *     spec's table, saturate=true maps +-inf and values above 2^127 to 2^127
 *     (0xFE), saturate=false maps them to NaN (0xFF). Zero and magnitudes
 *     below 2^-127 round up to 2^-127 (0x00).
 *   - float -> integer: truncates toward zero like a C cast. Where C would
 *     have undefined behaviour we define it: NaN -> 0, and values outside the
 *     target range saturate to its min/max (8..64-bit targets). For int4 and
 *     uint4 the truncated value is wrapped to its low 4 bits, as ONNX's
 *     reference Cast (numpy + ml_dtypes astype) does: 9.7 -> int4 -7; NaN,
 *     +-inf and values beyond the int64 range give 0 there.
 *   - integer -> integer (int4/uint4 included): two's-complement wrap, i.e.
 *     the low bits are kept, as the Cast spec says ("discard higher bits").
 *   - integer -> float: correctly rounded (64-bit integers too).
 *   - x -> bool: x != 0 (NaN is true); bool -> x: 0 or 1.
 *   - complex64 <-> complex128 converts both parts; a complex <-> real pair
 *     is not supported (Cast has no such pair). get_f64/set_f64 use the real
 *     part of a complex element.
 *   - A sub-byte destination with an odd count gets its padding nibble zeroed.
 * All loads and stores go through memcpy, so buffers need no alignment.
 */
#include "pare/dtype.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* names and sizes                                                    */

static const char *const dtype_names[PARE_DT_COUNT] = {
    "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string",
    "bool", "float16", "float64", "uint32", "uint64", "complex64", "complex128", "bfloat16",
    "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4",
    "float4e2m1", "float8e8m0", "uint2", "int2",
};

static const unsigned char dtype_bits[PARE_DT_COUNT] = {
    0, 32, 8, 8, 16, 16, 32, 64, 0, 8, 16, 64, 32, 64, 64, 128, 16, 8, 8, 8, 8, 4, 4, 4, 8, 2, 2,
};

/* Other spellings accepted by pare_dtype_from_name (ml_dtypes and C names). */
static const struct {
    const char *name;
    pare_dtype dtype;
} dtype_aliases[] = {
    {"float", PARE_DT_FLOAT},
    {"double", PARE_DT_DOUBLE},
    {"half", PARE_DT_FLOAT16},
    {"float8_e4m3fn", PARE_DT_FLOAT8E4M3FN},
    {"float8_e4m3fnuz", PARE_DT_FLOAT8E4M3FNUZ},
    {"float8_e5m2", PARE_DT_FLOAT8E5M2},
    {"float8_e5m2fnuz", PARE_DT_FLOAT8E5M2FNUZ},
    {"float4_e2m1fn", PARE_DT_FLOAT4E2M1},
    {"float8_e8m0fnu", PARE_DT_FLOAT8E8M0},
};

bool pare_dtype_valid(int dtype)
{
    return dtype > PARE_DT_UNDEFINED && dtype < PARE_DT_COUNT;
}

const char *pare_dtype_name(int dtype)
{
    return pare_dtype_valid(dtype) ? dtype_names[dtype] : "undefined";
}

/* ASCII case-insensitive equality, so "FLOAT16" (ONNX's spelling) works too. */
static bool name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (unsigned char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (unsigned char)(cb - 'A' + 'a');
        if (ca != cb)
            return false;
        if (ca == 0)
            return true;
    }
}

pare_dtype pare_dtype_from_name(const char *name)
{
    if (!name)
        return PARE_DT_UNDEFINED;
    for (int d = 1; d < PARE_DT_COUNT; d++)
        if (name_eq(name, dtype_names[d]))
            return (pare_dtype)d;
    for (size_t k = 0; k < sizeof dtype_aliases / sizeof dtype_aliases[0]; k++)
        if (name_eq(name, dtype_aliases[k].name))
            return dtype_aliases[k].dtype;
    return PARE_DT_UNDEFINED;
}

int pare_dtype_bits(int dtype)
{
    return pare_dtype_valid(dtype) ? dtype_bits[dtype] : 0;
}

size_t pare_dtype_nbytes(int dtype, uint64_t n)
{
    int bits = pare_dtype_bits(dtype);
    if (bits == 0)
        return SIZE_MAX;
    if (bits == 4) {
        uint64_t b = n / 2 + (n & 1);
        return b > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)b;
    }
    if (bits == 2) {
        uint64_t b = n / 4 + ((n & 3) != 0);
        return b > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)b;
    }
    uint64_t esz = (uint64_t)bits / 8;
    if (n > (uint64_t)SIZE_MAX / esz)
        return SIZE_MAX;
    return (size_t)(n * esz);
}

bool pare_dtype_is_float(int dtype)
{
    switch (dtype) {
    case PARE_DT_FLOAT: case PARE_DT_DOUBLE: case PARE_DT_FLOAT16: case PARE_DT_BFLOAT16:
    case PARE_DT_FLOAT8E4M3FN: case PARE_DT_FLOAT8E4M3FNUZ: case PARE_DT_FLOAT8E5M2:
    case PARE_DT_FLOAT8E5M2FNUZ: case PARE_DT_FLOAT4E2M1: case PARE_DT_FLOAT8E8M0:
        return true;
    default:
        return false;
    }
}

bool pare_dtype_is_int(int dtype)
{
    switch (dtype) {
    case PARE_DT_UINT8: case PARE_DT_INT8: case PARE_DT_UINT16: case PARE_DT_INT16:
    case PARE_DT_INT32: case PARE_DT_INT64: case PARE_DT_UINT32: case PARE_DT_UINT64:
    case PARE_DT_UINT4: case PARE_DT_INT4: case PARE_DT_UINT2: case PARE_DT_INT2:
        return true;
    default:
        return false;
    }
}

/* Signed integers, and every type that can hold a negative value: the
 * floats (not float8e8m0, which has no sign bit) and the complex types. */
bool pare_dtype_is_signed(int dtype)
{
    switch (dtype) {
    case PARE_DT_INT8: case PARE_DT_INT16: case PARE_DT_INT32: case PARE_DT_INT64:
    case PARE_DT_INT4: case PARE_DT_INT2: case PARE_DT_COMPLEX64: case PARE_DT_COMPLEX128:
        return true;
    case PARE_DT_FLOAT8E8M0:
        return false;
    default:
        return pare_dtype_is_float(dtype);
    }
}

/* ------------------------------------------------------------------ */
/* bit access                                                         */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ */
/* generic narrow float formats                                       */

enum { K_IEEE, K_FN, K_FNUZ, K_NONE };

typedef struct minifmt {
    unsigned char mbits; /* stored mantissa bits */
    unsigned char kind;  /* K_IEEE: inf and NaNs in the all-ones exponent;
                            K_FN: no inf, NaN is S.1111111;
                            K_FNUZ: no inf, no -0, NaN is 0x80;
                            K_NONE: no inf, no NaN */
    short bias;
    uint16_t sign;   /* sign bit */
    uint16_t maxmag; /* magnitude code of the largest finite value */
    uint16_t inf;    /* K_IEEE: magnitude code of inf */
    uint16_t nan;    /* magnitude code of the NaN we produce (K_IEEE, K_FN) */
} minifmt;

static const minifmt fmt_f16 = {10, K_IEEE, 15, 0x8000, 0x7BFF, 0x7C00, 0x7E00};
static const minifmt fmt_bf16 = {7, K_IEEE, 127, 0x8000, 0x7F7F, 0x7F80, 0x7FC0};
static const minifmt fmt_e4m3fn = {3, K_FN, 7, 0x80, 0x7E, 0, 0x7F};
static const minifmt fmt_e4m3fnuz = {3, K_FNUZ, 8, 0x80, 0x7F, 0, 0};
static const minifmt fmt_e5m2 = {2, K_IEEE, 15, 0x80, 0x7B, 0x7C, 0x7E};
static const minifmt fmt_e5m2fnuz = {2, K_FNUZ, 16, 0x80, 0x7F, 0, 0};
static const minifmt fmt_e2m1 = {1, K_NONE, 1, 0x8, 0x7, 0, 0};

static const minifmt *fmt_of(int dtype)
{
    switch (dtype) {
    case PARE_DT_FLOAT16: return &fmt_f16;
    case PARE_DT_BFLOAT16: return &fmt_bf16;
    case PARE_DT_FLOAT8E4M3FN: return &fmt_e4m3fn;
    case PARE_DT_FLOAT8E4M3FNUZ: return &fmt_e4m3fnuz;
    case PARE_DT_FLOAT8E5M2: return &fmt_e5m2;
    case PARE_DT_FLOAT8E5M2FNUZ: return &fmt_e5m2fnuz;
    case PARE_DT_FLOAT4E2M1: return &fmt_e2m1;
    default: return NULL;
    }
}

/* Code for a value too large for the format (inf included). */
static uint32_t mini_overflow(const minifmt *f, uint32_t s, bool saturate)
{
    if (saturate || f->kind == K_NONE)
        return s | f->maxmag;
    switch (f->kind) {
    case K_IEEE: return s | f->inf;
    case K_FN: return s | f->nan;
    default: return 0x80; /* K_FNUZ */
    }
}

/* x rounded to nearest even in format f. For the IEEE formats float16 and
 * bfloat16 pass saturate=false: they overflow to inf. */
static uint32_t mini_encode(const minifmt *f, double x, bool saturate)
{
    uint32_t s = signbit(x) ? f->sign : 0;
    if (isnan(x)) {
        switch (f->kind) {
        case K_IEEE: case K_FN: return s | f->nan;
        case K_FNUZ: return 0x80;
        default: return f->sign; /* float4e2m1 has no NaN: -0, as ONNX's Cast tests expect */
        }
    }
    double a = fabs(x);
    if (isinf(a))
        return mini_overflow(f, s, saturate);
    if (a == 0)
        return f->kind == K_FNUZ ? 0 : s;
    int e2;
    (void)frexp(a, &e2);
    int e = e2 - 1;               /* a is in [2^e, 2^(e+1)) */
    int emin = 1 - f->bias;       /* exponent of the smallest normal */
    if (e < emin)
        e = emin;                 /* subnormal: fixed quantum */
    if (e > f->bias + 2)
        return mini_overflow(f, s, saturate); /* far beyond any finite code */
    double r = ldexp(a, f->mbits - e); /* exact: a / quantum */
    double fl = floor(r), frac = r - fl;
    uint64_t q = (uint64_t)fl;
    if (frac > 0.5 || (frac == 0.5 && (q & 1)))
        q++;
    /* Normal: (e + bias) << mbits | (q - 2^mbits); subnormal: q. One formula
     * covers both, and a carry out of the mantissa bumps the exponent. */
    uint64_t code = ((uint64_t)(e + f->bias - 1) << f->mbits) + q;
    if (code > f->maxmag)
        return mini_overflow(f, s, saturate);
    if (code == 0 && f->kind == K_FNUZ)
        return 0;
    return s | (uint32_t)code;
}

static double mini_decode(const minifmt *f, uint32_t v)
{
    uint32_t mag = v & (uint32_t)(f->sign - 1);
    bool neg = (v & f->sign) != 0;
    uint32_t ebits_all = (uint32_t)(f->sign - 1) >> f->mbits; /* all-ones exponent */
    uint32_t e = mag >> f->mbits, m = mag & ((1u << f->mbits) - 1);
    switch (f->kind) {
    case K_IEEE:
        if (e == ebits_all)
            return m ? (neg ? -NAN : NAN) : (neg ? -INFINITY : INFINITY);
        break;
    case K_FN:
        if (mag == (uint32_t)(f->sign - 1))
            return neg ? -NAN : NAN;
        break;
    case K_FNUZ:
        if (v == 0x80)
            return NAN;
        break;
    default:
        break;
    }
    double r = e ? ldexp((double)(m | (1u << f->mbits)), (int)e - f->bias - f->mbits)
                 : ldexp((double)m, 1 - f->bias - f->mbits);
    return neg ? -r : r;
}

/* ------------------------------------------------------------------ */
/* float16 / bfloat16                                                 */

uint16_t pare_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax >= 0x7F800000) {
        if (ax == 0x7F800000)
            return sign | 0x7C00;
        return (uint16_t)(sign | 0x7E00 | ((ax >> 13) & 0x3FF)); /* quiet, keeps payload top */
    }
    if (ax >= 0x477FF000) /* >= 65520: rounds to inf */
        return sign | 0x7C00;
    if (ax >= 0x38800000) { /* >= 2^-14: normal half */
        uint32_t r = ax + 0x0FFF + ((ax >> 13) & 1) - 0x38000000; /* RNE, rebias 127 -> 15 */
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax < 0x33000000) /* < 2^-25: rounds to zero (2^-25 itself ties to 0) */
        return sign;
    /* subnormal half: the value in units of 2^-24 is m * 2^(e - 126) */
    uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000;
    unsigned shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return (uint16_t)(sign | q);
}

float pare_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 0x1F)
        return f32_from_bits(s | 0x7F800000 | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* exact */
        return s ? -v : v;
    }
    return f32_from_bits(s | ((e + 112) << 23) | (m << 13));
}

uint16_t pare_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000)
        return (uint16_t)((x >> 16) | 0x40); /* quiet NaN, sign and payload top kept */
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

float pare_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

/* ------------------------------------------------------------------ */
/* float8, float4, e8m0                                               */

uint8_t pare_f32_to_f8(int dtype, float f, bool saturate)
{
    if (dtype == PARE_DT_FLOAT8E8M0)
        return pare_f32_to_e8m0(f, saturate);
    const minifmt *fm = fmt_of(dtype);
    if (!fm || fm->sign != 0x80)
        return 0;
    return (uint8_t)mini_encode(fm, f, saturate);
}

float pare_f8_to_f32(int dtype, uint8_t v)
{
    if (dtype == PARE_DT_FLOAT8E8M0)
        return pare_e8m0_to_f32(v);
    const minifmt *fm = fmt_of(dtype);
    if (!fm || fm->sign != 0x80)
        return NAN;
    return (float)mini_decode(fm, v);
}

uint8_t pare_f32_to_f4e2m1(float f)
{
    return (uint8_t)mini_encode(&fmt_e2m1, f, true);
}

float pare_f4e2m1_to_f32(uint8_t code)
{
    return (float)mini_decode(&fmt_e2m1, code & 0xF);
}

/* e8m0 is 2^(v-127) for v in 0..254 and NaN for 0xFF. Rounds the magnitude
 * up to a power of two; see the top of the file for saturate. (ONNX's
 * numpy reference gives 0xFF for inf even when saturating, and 0x01 for every
 * float32 subnormal; we follow the spec's table and exact rounding up.) */
static uint8_t e8m0_encode(double x, bool saturate)
{
    if (isnan(x))
        return 0xFF;
    double a = fabs(x);
    if (isinf(a))
        return saturate ? 0xFE : 0xFF;
    if (a == 0)
        return 0;
    int e2;
    double m = frexp(a, &e2); /* a = m * 2^e2, m in [0.5, 1) */
    int p = m == 0.5 ? e2 - 1 : e2; /* smallest p with 2^p >= a */
    if (p < -127)
        return 0; /* rounding up reaches 2^-127 */
    if (p > 127)
        return saturate ? 0xFE : 0xFF;
    return (uint8_t)(p + 127);
}

uint8_t pare_f32_to_e8m0(float f, bool saturate)
{
    return e8m0_encode(f, saturate);
}

float pare_e8m0_to_f32(uint8_t v)
{
    return v == 0xFF ? NAN : ldexpf(1.0f, (int)v - 127);
}

/* ------------------------------------------------------------------ */
/* int4                                                               */

int pare_int4_get(const uint8_t *buf, size_t i, bool is_signed)
{
    int v = (buf[i / 2] >> ((i & 1) * 4)) & 0xF;
    return is_signed ? (v ^ 8) - 8 : v;
}

void pare_int4_set(uint8_t *buf, size_t i, int v)
{
    unsigned sh = (unsigned)(i & 1) * 4;
    unsigned nib = (unsigned)v & 0xFu;
    buf[i / 2] = (uint8_t)((buf[i / 2] & ~(0xFu << sh)) | (nib << sh));
}

int pare_int2_get(const uint8_t *buf, size_t i, bool is_signed)
{
    int v = (buf[i / 4] >> (2 * (i % 4))) & 0x3;
    return is_signed && v >= 2 ? v - 4 : v;
}

void pare_int2_set(uint8_t *buf, size_t i, int v)
{
    unsigned sh = 2 * (unsigned)(i % 4);
    buf[i / 4] = (uint8_t)((buf[i / 4] & ~(0x3u << sh)) | (((unsigned)v & 0x3u) << sh));
}

/* ------------------------------------------------------------------ */
/* scalar value lanes                                                 */

/* One element in a lane that holds it exactly: floats as double, integers
 * and bools as 64-bit two's complement (sign-extended when signed). */
typedef struct pval {
    enum { L_FLOAT, L_SINT, L_UINT } lane;
    double f;
    uint64_t u;
} pval;

/* Unaligned element loads: ld_T(buf, i) is element i of a T array. */
#define DEF_LD(name, T)                                                    \
    static inline T name(const void *p, size_t i)                          \
    {                                                                      \
        T v;                                                               \
        memcpy(&v, (const unsigned char *)p + i * sizeof(T), sizeof(T));   \
        return v;                                                          \
    }
DEF_LD(ld_f32, float)
DEF_LD(ld_f64, double)
DEF_LD(ld_u8, uint8_t)
DEF_LD(ld_i8, int8_t)
DEF_LD(ld_u16, uint16_t)
DEF_LD(ld_i16, int16_t)
DEF_LD(ld_u32, uint32_t)
DEF_LD(ld_i32, int32_t)
DEF_LD(ld_u64, uint64_t)
DEF_LD(ld_i64, int64_t)

static inline int64_t u2s(uint64_t u)
{
    int64_t s;
    memcpy(&s, &u, sizeof s);
    return s;
}

static inline pval pv_f(double f) { pval v = {L_FLOAT, f, 0}; return v; }
static inline pval pv_s(int64_t s) { pval v = {L_SINT, 0, (uint64_t)s}; return v; }
static inline pval pv_u(uint64_t u) { pval v = {L_UINT, 0, u}; return v; }

static pval load(int dt, const void *buf, size_t i)
{
    const unsigned char *p = buf;
    switch (dt) {
    case PARE_DT_FLOAT: return pv_f(ld_f32(p, i));
    case PARE_DT_DOUBLE: return pv_f(ld_f64(p, i));
    case PARE_DT_FLOAT16: return pv_f(pare_f16_to_f32(ld_u16(p, i)));
    case PARE_DT_BFLOAT16: return pv_f(pare_bf16_to_f32(ld_u16(p, i)));
    case PARE_DT_FLOAT8E4M3FN: case PARE_DT_FLOAT8E4M3FNUZ:
    case PARE_DT_FLOAT8E5M2: case PARE_DT_FLOAT8E5M2FNUZ:
        return pv_f(mini_decode(fmt_of(dt), p[i]));
    case PARE_DT_FLOAT8E8M0: return pv_f(pare_e8m0_to_f32(p[i]));
    case PARE_DT_FLOAT4E2M1: return pv_f(mini_decode(&fmt_e2m1, (uint32_t)pare_int4_get(p, i, false)));
    case PARE_DT_BOOL: return pv_u(p[i] != 0);
    case PARE_DT_UINT8: return pv_u(p[i]);
    case PARE_DT_INT8: return pv_s(ld_i8(p, i));
    case PARE_DT_UINT16: return pv_u(ld_u16(p, i));
    case PARE_DT_INT16: return pv_s(ld_i16(p, i));
    case PARE_DT_UINT32: return pv_u(ld_u32(p, i));
    case PARE_DT_INT32: return pv_s(ld_i32(p, i));
    case PARE_DT_UINT64: return pv_u(ld_u64(p, i));
    case PARE_DT_INT64: return pv_s(ld_i64(p, i));
    case PARE_DT_UINT4: return pv_u((uint64_t)pare_int4_get(p, i, false));
    case PARE_DT_INT4: return pv_s(pare_int4_get(p, i, true));
    case PARE_DT_UINT2: return pv_u((uint64_t)pare_int2_get(p, i, false));
    case PARE_DT_INT2: return pv_s(pare_int2_get(p, i, true));
    case PARE_DT_COMPLEX64: return pv_f(ld_f32(p, 2 * i));
    case PARE_DT_COMPLEX128: return pv_f(ld_f64(p, 2 * i));
    default: return pv_f(NAN);
    }
}

/* Integer lane to double with round-to-odd, so that a second rounding to a
 * narrower format (at most 51 bits) is still correctly rounded. */
static double int_to_double_odd(pval v)
{
    bool neg = v.lane == L_SINT && u2s(v.u) < 0;
    uint64_t m = neg ? 0 - v.u : v.u;
    if (m >> 53) {
        unsigned sh = 0;
        while ((m >> sh) >> 53)
            sh++;
        uint64_t kept = m >> sh;
        if (m & ((UINT64_C(1) << sh) - 1))
            kept |= 1;
        double d = ldexp((double)kept, (int)sh);
        return neg ? -d : d;
    }
    return neg ? -(double)m : (double)m;
}

static double as_double(pval v)
{
    if (v.lane == L_FLOAT)
        return v.f;
    return v.lane == L_SINT ? (double)u2s(v.u) : (double)v.u;
}

static float as_float(pval v)
{
    if (v.lane == L_FLOAT)
        return (float)v.f; /* Annex F: out of range gives +-inf */
    return v.lane == L_SINT ? (float)u2s(v.u) : (float)v.u;
}

/* Truncation toward zero, saturated to [lo, hi], NaN -> 0. lo and hi are
 * powers of two or zero, so they are exact doubles; hi is the exclusive
 * upper bound 2^bits (unsigned) or 2^(bits-1) (signed). */
static int64_t trunc_sat_s(double d, int bits)
{
    if (isnan(d))
        return 0;
    double lim = ldexp(1.0, bits - 1);
    double t = trunc(d);
    if (t >= lim)
        return bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
    if (t <= -lim)
        return bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
    return (int64_t)t;
}

static uint64_t trunc_sat_u(double d, int bits)
{
    if (isnan(d))
        return 0;
    double t = trunc(d);
    if (t <= 0)
        return 0;
    if (t >= ldexp(1.0, bits))
        return bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    return (uint64_t)t;
}

/* The low bits for an integer target: from an integer lane, its two's
 * complement; from a float, the saturated truncation. */
static uint64_t int_bits(pval v, int bits, bool is_signed)
{
    if (v.lane != L_FLOAT)
        return v.u;
    return is_signed ? (uint64_t)trunc_sat_s(v.f, bits) : trunc_sat_u(v.f, bits);
}

/* The bits for an int4/uint4 target, before keeping the low 4: an integer
 * as is; a float truncated toward zero, with NaN, +-inf and values beyond
 * the int64 range giving 0 (what numpy + ml_dtypes give on x86). */
static uint64_t int4_bits(pval v)
{
    if (v.lane != L_FLOAT)
        return v.u;
    double t = trunc(v.f);
    if (!(fabs(t) < 0x1p63))
        return 0;
    return (uint64_t)(int64_t)t;
}

#define STORET(T, p, i, val) \
    do { T v_ = (val); memcpy((unsigned char *)(p) + (i) * sizeof(T), &v_, sizeof(T)); } while (0)

static void store(int dt, void *buf, size_t i, pval v, bool saturate)
{
    unsigned char *p = buf;
    switch (dt) {
    case PARE_DT_FLOAT: STORET(float, p, i, as_float(v)); break;
    case PARE_DT_DOUBLE: STORET(double, p, i, as_double(v)); break;
    case PARE_DT_FLOAT16: case PARE_DT_BFLOAT16: {
        double d = v.lane == L_FLOAT ? v.f : int_to_double_odd(v);
        STORET(uint16_t, p, i, (uint16_t)mini_encode(fmt_of(dt), d, false));
        break;
    }
    case PARE_DT_FLOAT8E4M3FN: case PARE_DT_FLOAT8E4M3FNUZ:
    case PARE_DT_FLOAT8E5M2: case PARE_DT_FLOAT8E5M2FNUZ: {
        double d = v.lane == L_FLOAT ? v.f : int_to_double_odd(v);
        p[i] = (uint8_t)mini_encode(fmt_of(dt), d, saturate);
        break;
    }
    case PARE_DT_FLOAT4E2M1: {
        double d = v.lane == L_FLOAT ? v.f : int_to_double_odd(v);
        pare_int4_set(p, i, (int)mini_encode(&fmt_e2m1, d, true));
        break;
    }
    case PARE_DT_FLOAT8E8M0:
        p[i] = e8m0_encode(v.lane == L_FLOAT ? v.f : int_to_double_odd(v), saturate);
        break;
    case PARE_DT_BOOL: p[i] = v.lane == L_FLOAT ? v.f != 0 : v.u != 0; break;
    case PARE_DT_UINT8: p[i] = (uint8_t)int_bits(v, 8, false); break;
    case PARE_DT_INT8: p[i] = (uint8_t)int_bits(v, 8, true); break;
    case PARE_DT_UINT16: STORET(uint16_t, p, i, (uint16_t)int_bits(v, 16, false)); break;
    case PARE_DT_INT16: STORET(uint16_t, p, i, (uint16_t)int_bits(v, 16, true)); break;
    case PARE_DT_UINT32: STORET(uint32_t, p, i, (uint32_t)int_bits(v, 32, false)); break;
    case PARE_DT_INT32: STORET(uint32_t, p, i, (uint32_t)int_bits(v, 32, true)); break;
    case PARE_DT_UINT64: STORET(uint64_t, p, i, int_bits(v, 64, false)); break;
    case PARE_DT_INT64: STORET(uint64_t, p, i, int_bits(v, 64, true)); break;
    case PARE_DT_UINT4: case PARE_DT_INT4:
        pare_int4_set(p, i, (int)(int4_bits(v) & 0xF));
        break;
    case PARE_DT_UINT2: case PARE_DT_INT2:
        pare_int2_set(p, i, (int)(int4_bits(v) & 0x3));
        break;
    case PARE_DT_COMPLEX64: STORET(float, p, 2 * i, as_float(v)); STORET(float, p, 2 * i + 1, 0.0f); break;
    case PARE_DT_COMPLEX128: STORET(double, p, 2 * i, as_double(v)); STORET(double, p, 2 * i + 1, 0.0); break;
    default: break;
    }
}

double pare_dtype_get_f64(int dtype, const void *buf, size_t i)
{
    return as_double(load(dtype, buf, i));
}

void pare_dtype_set_f64(int dtype, void *buf, size_t i, double v)
{
    store(dtype, buf, i, pv_f(v), true);
}

/* ------------------------------------------------------------------ */
/* bulk conversion                                                    */

/* Loops over the n elements: s (type TS, read with LD) gives EXPR, stored as
 * TD; then returns true from the calling function. */
#define FAST(TS, LD, TD, EXPR)                    \
    do {                                          \
        for (size_t k = 0; k < n; k++) {          \
            TS s = LD(src, k);                    \
            STORET(TD, dst, k, (EXPR));           \
        }                                         \
        return true;                              \
    } while (0)

static bool is_complex(int dt)
{
    return dt == PARE_DT_COMPLEX64 || dt == PARE_DT_COMPLEX128;
}

bool pare_dtype_convert(int dst_dtype, void *dst, int src_dtype, const void *src, size_t n,
                        bool saturate)
{
    if (!pare_dtype_valid(dst_dtype) || !pare_dtype_valid(src_dtype) ||
        dst_dtype == PARE_DT_STRING || src_dtype == PARE_DT_STRING)
        return false;
    if (is_complex(dst_dtype) != is_complex(src_dtype))
        return false;
    if (n == 0)
        return true;
    if (dst_dtype == src_dtype) {
        memmove(dst, src, pare_dtype_nbytes(src_dtype, n));
        return true;
    }
    if (is_complex(dst_dtype)) { /* complex64 <-> complex128: real and imaginary parts */
        if (n > SIZE_MAX / 2)
            return false;
        n *= 2;
        if (dst_dtype == PARE_DT_COMPLEX128)
            FAST(float, ld_f32, double, (double)s);
        FAST(double, ld_f64, float, (float)s);
    }
    if (src_dtype == PARE_DT_FLOAT) {
        switch (dst_dtype) {
        case PARE_DT_FLOAT16: FAST(float, ld_f32, uint16_t, pare_f32_to_f16(s));
        case PARE_DT_BFLOAT16: FAST(float, ld_f32, uint16_t, pare_f32_to_bf16(s));
        case PARE_DT_INT8: FAST(float, ld_f32, uint8_t, (uint8_t)trunc_sat_s(s, 8));
        case PARE_DT_UINT8: FAST(float, ld_f32, uint8_t, (uint8_t)trunc_sat_u(s, 8));
        case PARE_DT_INT32: FAST(float, ld_f32, uint32_t, (uint32_t)trunc_sat_s(s, 32));
        case PARE_DT_INT64: FAST(float, ld_f32, uint64_t, (uint64_t)trunc_sat_s(s, 64));
        case PARE_DT_DOUBLE: FAST(float, ld_f32, double, (double)s);
        default: break;
        }
    } else if (dst_dtype == PARE_DT_FLOAT) {
        switch (src_dtype) {
        case PARE_DT_FLOAT16: FAST(uint16_t, ld_u16, float, pare_f16_to_f32(s));
        case PARE_DT_BFLOAT16: FAST(uint16_t, ld_u16, float, pare_bf16_to_f32(s));
        case PARE_DT_INT8: FAST(int8_t, ld_i8, float, (float)s);
        case PARE_DT_UINT8: FAST(uint8_t, ld_u8, float, (float)s);
        case PARE_DT_INT32: FAST(int32_t, ld_i32, float, (float)s);
        case PARE_DT_INT64: FAST(int64_t, ld_i64, float, (float)s);
        case PARE_DT_DOUBLE: FAST(double, ld_f64, float, (float)s); /* Annex F: inf if OOR */
        default: break;
        }
    }
    for (size_t k = 0; k < n; k++)
        store(dst_dtype, dst, k, load(src_dtype, src, k), saturate);
    if (pare_dtype_bits(dst_dtype) == 4 && (n & 1)) /* zero the padding nibble */
        ((uint8_t *)dst)[n / 2] &= 0x0F;
    if (pare_dtype_bits(dst_dtype) == 2 && (n & 3)) /* and the padding 2-bit slots */
        ((uint8_t *)dst)[n / 4] &= (uint8_t)((1u << (2 * (n & 3))) - 1);
    return true;
}
