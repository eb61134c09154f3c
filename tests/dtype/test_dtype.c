/* test_dtype.c - element types: names, sizes, narrow float formats, int4
 * packing and pare_dtype_convert. Expected float8 codes for non-trivial
 * inputs were taken from ONNX's reference Cast (numpy + ml_dtypes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "pare/dtype.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng32(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rng_state >> 32);
}

static const int fp8_types[] = {PARE_DT_FLOAT8E4M3FN, PARE_DT_FLOAT8E4M3FNUZ, PARE_DT_FLOAT8E5M2,
                                PARE_DT_FLOAT8E5M2FNUZ};

/* ------------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    for (int d = 1; d < PARE_DT_COUNT; d++) {
        assert_true(pare_dtype_valid(d));
        assert_int_equal(pare_dtype_from_name(pare_dtype_name(d)), d);
    }
    assert_false(pare_dtype_valid(0));
    assert_false(pare_dtype_valid(PARE_DT_COUNT));
    assert_false(pare_dtype_valid(-1));
    assert_string_equal(pare_dtype_name(PARE_DT_FLOAT), "float32");
    assert_string_equal(pare_dtype_name(PARE_DT_DOUBLE), "float64");
    assert_string_equal(pare_dtype_name(PARE_DT_FLOAT8E5M2FNUZ), "float8e5m2fnuz");
    assert_string_equal(pare_dtype_name(PARE_DT_FLOAT4E2M1), "float4e2m1");
    assert_string_equal(pare_dtype_name(PARE_DT_FLOAT8E8M0), "float8e8m0");
    assert_string_equal(pare_dtype_name(0), "undefined");
    assert_string_equal(pare_dtype_name(99), "undefined");
    assert_string_equal(pare_dtype_name(-5), "undefined");
    assert_int_equal(pare_dtype_from_name("float"), PARE_DT_FLOAT);
    assert_int_equal(pare_dtype_from_name("double"), PARE_DT_DOUBLE);
    assert_int_equal(pare_dtype_from_name("half"), PARE_DT_FLOAT16);
    assert_int_equal(pare_dtype_from_name("FLOAT16"), PARE_DT_FLOAT16);
    assert_int_equal(pare_dtype_from_name("Int4"), PARE_DT_INT4);
    assert_int_equal(pare_dtype_from_name("float8_e4m3fn"), PARE_DT_FLOAT8E4M3FN);
    assert_int_equal(pare_dtype_from_name("undefined"), PARE_DT_UNDEFINED);
    assert_int_equal(pare_dtype_from_name("float1"), PARE_DT_UNDEFINED);
    assert_int_equal(pare_dtype_from_name(""), PARE_DT_UNDEFINED);
    assert_int_equal(pare_dtype_from_name(NULL), PARE_DT_UNDEFINED);
}

static void test_sizes_and_kinds(void **state)
{
    (void)state;
    assert_int_equal(pare_dtype_bits(PARE_DT_FLOAT), 32);
    assert_int_equal(pare_dtype_bits(PARE_DT_BOOL), 8);
    assert_int_equal(pare_dtype_bits(PARE_DT_COMPLEX128), 128);
    assert_int_equal(pare_dtype_bits(PARE_DT_INT4), 4);
    assert_int_equal(pare_dtype_bits(PARE_DT_FLOAT4E2M1), 4);
    assert_int_equal(pare_dtype_bits(PARE_DT_FLOAT8E8M0), 8);
    assert_int_equal(pare_dtype_bits(PARE_DT_STRING), 0);
    assert_int_equal(pare_dtype_bits(0), 0);
    assert_int_equal(pare_dtype_bits(77), 0);

    assert_int_equal(pare_dtype_nbytes(PARE_DT_FLOAT, 3), 12);
    assert_int_equal(pare_dtype_nbytes(PARE_DT_INT4, 5), 3);
    assert_int_equal(pare_dtype_nbytes(PARE_DT_UINT4, 4), 2);
    assert_int_equal(pare_dtype_nbytes(PARE_DT_FLOAT4E2M1, 0), 0);
    assert_int_equal(pare_dtype_nbytes(PARE_DT_COMPLEX64, 2), 16);
    assert_true(pare_dtype_nbytes(PARE_DT_STRING, 1) == SIZE_MAX);
    assert_true(pare_dtype_nbytes(PARE_DT_UNDEFINED, 1) == SIZE_MAX);
    assert_true(pare_dtype_nbytes(PARE_DT_INT64, UINT64_MAX / 4) == SIZE_MAX);
    assert_true(pare_dtype_nbytes(PARE_DT_INT4, UINT64_MAX) ==
                (UINT64_MAX / 2 + 1 > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)(UINT64_MAX / 2 + 1)));

    assert_true(pare_dtype_is_float(PARE_DT_FLOAT16));
    assert_true(pare_dtype_is_float(PARE_DT_FLOAT8E5M2FNUZ));
    assert_true(pare_dtype_is_float(PARE_DT_FLOAT4E2M1));
    assert_false(pare_dtype_is_float(PARE_DT_INT8));
    assert_false(pare_dtype_is_float(PARE_DT_COMPLEX64));
    assert_true(pare_dtype_is_int(PARE_DT_UINT4));
    assert_true(pare_dtype_is_int(PARE_DT_UINT64));
    assert_false(pare_dtype_is_int(PARE_DT_BOOL));
    assert_false(pare_dtype_is_int(PARE_DT_FLOAT));
    assert_true(pare_dtype_is_signed(PARE_DT_INT4));
    assert_true(pare_dtype_is_signed(PARE_DT_BFLOAT16));
    assert_false(pare_dtype_is_signed(PARE_DT_UINT4));
    assert_false(pare_dtype_is_signed(PARE_DT_UINT32));
    assert_false(pare_dtype_is_signed(PARE_DT_BOOL));
    assert_false(pare_dtype_is_signed(PARE_DT_FLOAT8E8M0));
}

/* ------------------------------------------------------------------ */
/* float16                                                            */

static void test_f16_roundtrip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = pare_f16_to_f32((uint16_t)h);
        uint16_t back = pare_f32_to_f16(f);
        bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (nan) {
            assert_true(isnan(f));
            assert_true((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
            assert_int_equal(back & 0x8000, h & 0x8000);
            assert_int_equal(back, h | 0x200); /* quieted, payload kept */
        } else {
            assert_int_equal(back, h);
        }
        /* the generic (double) encoder must agree */
        double d = f;
        uint16_t g;
        assert_true(pare_dtype_convert(PARE_DT_FLOAT16, &g, PARE_DT_DOUBLE, &d, 1, true));
        if (nan)
            assert_true((g & 0x7C00) == 0x7C00 && (g & 0x3FF));
        else
            assert_int_equal(g, h);
    }
}

static void test_f16_known(void **state)
{
    (void)state;
    assert_int_equal(pare_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(pare_f32_to_f16(65519.99f), 0x7BFF);
    assert_int_equal(pare_f32_to_f16(65520.0f), 0x7C00); /* tie goes to even: inf */
    assert_int_equal(pare_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(pare_f32_to_f16(-1e10f), 0xFC00);
    assert_int_equal(pare_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(pare_f32_to_f16(-INFINITY), 0xFC00);
    assert_int_equal(pare_f32_to_f16(6.103515625e-05f), 0x0400); /* min normal */
    assert_int_equal(pare_f32_to_f16(6.1035e-05f), 0x0400);
    assert_int_equal(pare_f32_to_f16(5.9604645e-08f), 0x0001); /* min subnormal */
    assert_int_equal(pare_f32_to_f16(5.96e-08f), 0x0001);
    assert_int_equal(pare_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even */
    assert_int_equal(pare_f32_to_f16(ldexpf(1.0000001f, -25)), 0x0001);
    assert_int_equal(pare_f32_to_f16(ldexpf(3, -25)), 0x0002); /* 1.5 ulp tie: even */
    assert_int_equal(pare_f32_to_f16(ldexpf(5, -25)), 0x0002); /* 2.5 ulp tie: even */
    assert_int_equal(pare_f32_to_f16(ldexpf(1023.5f, -24)), 0x0400); /* carry to normal */
    assert_int_equal(pare_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(pare_f32_to_f16(-1e-10f), 0x8000);
    assert_int_equal(pare_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(pare_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3C00);     /* tie: even */
    assert_int_equal(pare_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3C02); /* tie: even */
    assert_int_equal(pare_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(pare_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(pare_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(pare_f32_to_f16(NAN) & 0x7E00, 0x7E00);
    assert_int_equal(pare_f32_to_f16(float_of(0x7F800001)) & 0x7E00, 0x7E00); /* sNaN quieted */
    assert_int_equal(pare_f32_to_f16(-NAN) & 0xFE00, 0xFE00);
    assert_true(pare_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(pare_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_true(pare_f16_to_f32(0x83FF) == -ldexpf(1023, -24));
    assert_true(isinf(pare_f16_to_f32(0xFC00)) && pare_f16_to_f32(0xFC00) < 0);
    assert_true(isnan(pare_f16_to_f32(0x7C01)));
    assert_true(signbit(pare_f16_to_f32(0x8000)));
}

/* Random float32 bit patterns: the bit-level f16/bf16 encoders agree with
 * the generic one used for double inputs. */
static void test_f16_bf16_random(void **state)
{
    (void)state;
    for (int k = 0; k < 400000; k++) {
        uint32_t u = rng32();
        if (k & 1) /* concentrate half of them around the half range */
            u = (u & 0x80FFFFFF) | ((uint32_t)(100 + (rng32() % 50)) << 23);
        float f = float_of(u);
        double d = f;
        uint16_t g[2];
        assert_true(pare_dtype_convert(PARE_DT_FLOAT16, &g[0], PARE_DT_DOUBLE, &d, 1, true));
        assert_true(pare_dtype_convert(PARE_DT_BFLOAT16, &g[1], PARE_DT_DOUBLE, &d, 1, true));
        if (isnan(f))
            continue;
        assert_int_equal(pare_f32_to_f16(f), g[0]);
        assert_int_equal(pare_f32_to_bf16(f), g[1]);
    }
}

/* ------------------------------------------------------------------ */
/* bfloat16                                                           */

static void test_bf16(void **state)
{
    (void)state;
    assert_int_equal(pare_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(pare_f32_to_bf16(1.00390625f), 0x3F80); /* tie: even */
    assert_int_equal(pare_f32_to_bf16(1.01171875f), 0x3F82); /* tie: even */
    assert_int_equal(pare_f32_to_bf16(float_of(0x3F808001)), 0x3F81); /* just above the tie */
    assert_int_equal(pare_f32_to_bf16(-1.00390625f), 0xBF80);
    assert_int_equal(pare_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(pare_f32_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(pare_f32_to_bf16(float_of(0x7F7FFFFF)), 0x7F80); /* FLT_MAX rounds to inf */
    assert_int_equal(pare_f32_to_bf16(float_of(0x00000001)), 0x0000);
    assert_int_equal(pare_f32_to_bf16(float_of(0x00008001)), 0x0001); /* subnormal rounding */
    assert_int_equal(pare_f32_to_bf16(-0.0f), 0x8000);
    uint16_t n = pare_f32_to_bf16(NAN);
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F));
    n = pare_f32_to_bf16(float_of(0x7F800001)); /* NaN with payload only in the low bits */
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F));
    assert_true(isnan(pare_bf16_to_f32(n)));
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = pare_bf16_to_f32((uint16_t)b);
        assert_int_equal(bits_of(f), b << 16);
        if (!isnan(f))
            assert_int_equal(pare_f32_to_bf16(f), b);
        else
            assert_true(isnan(pare_bf16_to_f32(pare_f32_to_bf16(f))));
    }
}

/* ------------------------------------------------------------------ */
/* float8                                                             */

static bool fp8_is_nan_code(int dt, unsigned v)
{
    switch (dt) {
    case PARE_DT_FLOAT8E4M3FN: return (v & 0x7F) == 0x7F;
    case PARE_DT_FLOAT8E5M2: return (v & 0x7F) > 0x7C;
    default: return v == 0x80;
    }
}

static void test_fp8_roundtrip_all(void **state)
{
    (void)state;
    for (size_t t = 0; t < 4; t++) {
        int dt = fp8_types[t];
        float prev = -1;
        for (unsigned v = 0; v < 256; v++) {
            float f = pare_f8_to_f32(dt, (uint8_t)v);
            if (fp8_is_nan_code(dt, v)) {
                assert_true(isnan(f));
                assert_true(fp8_is_nan_code(dt, pare_f32_to_f8(dt, f, true)));
                assert_true(fp8_is_nan_code(dt, pare_f32_to_f8(dt, f, false)));
                continue;
            }
            assert_false(isnan(f));
            assert_int_equal(pare_f32_to_f8(dt, f, false), v);
            if (!isinf(f))
                assert_int_equal(pare_f32_to_f8(dt, f, true), v);
            /* the positive codes are increasing */
            if (v < 0x80) {
                assert_true(f > prev || (v == 0 && f == 0));
                prev = f;
            } else if (v != 0x80) {
                assert_true(f == -pare_f8_to_f32(dt, (uint8_t)(v & 0x7F)));
            }
        }
    }
}

static void test_fp8_known(void **state)
{
    (void)state;
    /* largest finite values and the special codes */
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, 0x7E) == 448.0f);
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, 0xFE) == -448.0f);
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, 0x7F)));
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, 0xFF)));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FN, 0x01) == ldexpf(1, -9));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FNUZ, 0x7F) == 240.0f);
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FNUZ, 0x01) == ldexpf(1, -10));
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E4M3FNUZ, 0x80)));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2, 0x7B) == 57344.0f);
    assert_true(isinf(pare_f8_to_f32(PARE_DT_FLOAT8E5M2, 0x7C)));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2, 0xFC) == -INFINITY);
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E5M2, 0x7D)));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2, 0x01) == ldexpf(1, -16));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2FNUZ, 0x7F) == 57344.0f);
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2FNUZ, 0x01) == ldexpf(1, -17));
    assert_true(isnan(pare_f8_to_f32(PARE_DT_FLOAT8E5M2FNUZ, 0x80)));
    assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E5M2FNUZ, 0xFF) == -57344.0f);

    /* rounding, from ONNX's reference Cast (saturate=1) */
    static const float in[] = {1.0625f, 1.1875f, 0.001953125f, 0.0009765625f, 0.00146484375f,
                               300.0f, 0.3f, -0.3f, 17.0f, 0.1f, -1e-3f, 5e-3f, 30000.0f, 1e-5f};
    static const uint8_t want[4][14] = {
        {0x38, 0x3A, 0x01, 0x00, 0x01, 0x79, 0x2A, 0xAA, 0x58, 0x1D, 0x81, 0x03, 0x7E, 0x00},
        {0x40, 0x42, 0x02, 0x01, 0x02, 0x7F, 0x32, 0xB2, 0x60, 0x25, 0x81, 0x05, 0x7F, 0x00},
        {0x3C, 0x3D, 0x18, 0x14, 0x16, 0x5D, 0x35, 0xB5, 0x4C, 0x2E, 0x94, 0x1D, 0x77, 0x01},
        {0x40, 0x41, 0x1C, 0x18, 0x1A, 0x61, 0x39, 0xB9, 0x50, 0x32, 0x98, 0x21, 0x7B, 0x01},
    };
    for (size_t t = 0; t < 4; t++)
        for (size_t k = 0; k < sizeof in / sizeof in[0]; k++)
            assert_int_equal(pare_f32_to_f8(fp8_types[t], in[k], true), want[t][k]);

    /* RNE at the top of e4m3fn: 464 is the tie between 448 and (NaN) 480 */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, 464.0f, false), 0x7E);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, 465.0f, false), 0x7F);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, 465.0f, true), 0x7E);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, -465.0f, false), 0xFF);
    /* e5m2: 61440 is the tie between 57344 and inf */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2, 61439.0f, false), 0x7B);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2, 61440.0f, false), 0x7C);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2, 61440.0f, true), 0x7B);
    /* e4m3fnuz: 248 is the tie between 240 and 256 */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, 247.0f, false), 0x7F);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, 248.0f, false), 0x80);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, 248.0f, true), 0x7F);

    /* zeros: fnuz types have no -0, and tiny negatives do not become NaN */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, -0.0f, true), 0x80);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2, -0.0f, true), 0x80);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, -0.0f, true), 0x00);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2FNUZ, -0.0f, false), 0x00);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, -1e-7f, false), 0x00);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, -1e-7f, false), 0x80);
    /* invalid dtype */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT16, 1.0f, true), 0);
    assert_true(isnan(pare_f8_to_f32(PARE_DT_INT8, 1)));
}

static void test_fp8_saturate(void **state)
{
    (void)state;
    static const uint8_t maxc[4] = {0x7E, 0x7F, 0x7B, 0x7F};
    static const uint8_t pos_ovf[4] = {0x7F, 0x80, 0x7C, 0x80}; /* saturate=0: NaN, NaN, inf, NaN */
    static const uint8_t neg_ovf[4] = {0xFF, 0x80, 0xFC, 0x80};
    static const uint8_t nanc[4] = {0x7F, 0x80, 0x7E, 0x80};
    for (size_t t = 0; t < 4; t++) {
        int dt = fp8_types[t];
        assert_int_equal(pare_f32_to_f8(dt, 1e6f, true), maxc[t]);
        assert_int_equal(pare_f32_to_f8(dt, -1e6f, true), maxc[t] | 0x80);
        assert_int_equal(pare_f32_to_f8(dt, INFINITY, true), maxc[t]);
        assert_int_equal(pare_f32_to_f8(dt, -INFINITY, true), maxc[t] | 0x80);
        assert_int_equal(pare_f32_to_f8(dt, 1e6f, false), pos_ovf[t]);
        assert_int_equal(pare_f32_to_f8(dt, -1e6f, false), neg_ovf[t]);
        assert_int_equal(pare_f32_to_f8(dt, INFINITY, false), pos_ovf[t]);
        assert_int_equal(pare_f32_to_f8(dt, -INFINITY, false), neg_ovf[t]);
        assert_int_equal(pare_f32_to_f8(dt, NAN, true), nanc[t]);
        assert_int_equal(pare_f32_to_f8(dt, NAN, false), nanc[t]);
        assert_int_equal(pare_f32_to_f8(dt, FLT_MAX, true), maxc[t]);
        assert_int_equal(pare_f32_to_f8(dt, FLT_MAX, false), pos_ovf[t]);
        /* the max itself is in range either way */
        float mx = pare_f8_to_f32(dt, maxc[t]);
        assert_int_equal(pare_f32_to_f8(dt, mx, false), maxc[t]);
        assert_int_equal(pare_f32_to_f8(dt, -mx, false), maxc[t] | 0x80);
    }
    /* -NaN keeps its sign where the type can */
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FN, -NAN, false), 0xFF);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E5M2, -NAN, false), 0xFE);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E4M3FNUZ, -NAN, false), 0x80);
}

/* ------------------------------------------------------------------ */
/* float4e2m1, float8e8m0                                             */

static void test_fp4(void **state)
{
    (void)state;
    static const float grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (unsigned c = 0; c < 16; c++) {
        float f = pare_f4e2m1_to_f32((uint8_t)c);
        assert_true(f == (c & 8 ? -grid[c & 7] : grid[c & 7]));
        assert_int_equal(pare_f32_to_f4e2m1(f), c);
        assert_true(pare_f4e2m1_to_f32((uint8_t)(c | 0xF0)) == f); /* high bits ignored */
    }
    /* ONNX's test_cast_FLOAT_to_FLOAT4E2M1 inputs */
    static const float in[] = {0.48f, 0.25f, 1.05f, -3.5f, -8, 9, 1e6f, 1e-7f,
                               NAN, INFINITY, -INFINITY, -4, 0.01f, -0.0f};
    /* NaN -> 0x8 (-0): the expected output of onnx 1.22's node test */
    static const uint8_t want[] = {0x1, 0x0, 0x2, 0xE, 0xF, 0x7, 0x7, 0x0,
                                   0x8, 0x7, 0xF, 0xE, 0x0, 0x8};
    for (size_t k = 0; k < sizeof in / sizeof in[0]; k++)
        assert_int_equal(pare_f32_to_f4e2m1(in[k]), want[k]);
    /* ties to even */
    assert_int_equal(pare_f32_to_f4e2m1(0.75f), 0x2);
    assert_int_equal(pare_f32_to_f4e2m1(1.25f), 0x2);
    assert_int_equal(pare_f32_to_f4e2m1(1.75f), 0x4);
    assert_int_equal(pare_f32_to_f4e2m1(2.5f), 0x4);
    assert_int_equal(pare_f32_to_f4e2m1(5.0f), 0x6);
    assert_int_equal(pare_f32_to_f4e2m1(5.01f), 0x7);
    assert_int_equal(pare_f32_to_f4e2m1(0.2500001f), 0x1);
}

static void test_e8m0(void **state)
{
    (void)state;
    assert_true(pare_e8m0_to_f32(127) == 1.0f);
    assert_true(pare_e8m0_to_f32(0) == ldexpf(1, -127));
    assert_true(pare_e8m0_to_f32(254) == ldexpf(1, 127));
    assert_true(isnan(pare_e8m0_to_f32(255)));
    for (unsigned v = 0; v < 255; v++) {
        assert_int_equal(pare_f32_to_e8m0(pare_e8m0_to_f32((uint8_t)v), true), v);
        assert_int_equal(pare_f32_to_e8m0(pare_e8m0_to_f32((uint8_t)v), false), v);
        assert_true(pare_f8_to_f32(PARE_DT_FLOAT8E8M0, (uint8_t)v) == pare_e8m0_to_f32((uint8_t)v));
    }
    assert_int_equal(pare_f32_to_e8m0(1.5f, true), 128);   /* rounds up */
    assert_int_equal(pare_f32_to_e8m0(1.0000001f, true), 128);
    assert_int_equal(pare_f32_to_e8m0(0.75f, true), 127);
    assert_int_equal(pare_f32_to_e8m0(-3.0f, true), 129);  /* magnitude */
    assert_int_equal(pare_f32_to_e8m0(0.0f, true), 0);
    assert_int_equal(pare_f32_to_e8m0(ldexpf(1, -130), true), 0);
    assert_int_equal(pare_f32_to_e8m0(ldexpf(1.5f, -127), true), 1);
    assert_int_equal(pare_f32_to_e8m0(ldexpf(1, 127), false), 254);
    assert_int_equal(pare_f32_to_e8m0(3e38f, true), 254);
    assert_int_equal(pare_f32_to_e8m0(3e38f, false), 255);
    assert_int_equal(pare_f32_to_e8m0(INFINITY, true), 254);
    assert_int_equal(pare_f32_to_e8m0(INFINITY, false), 255);
    assert_int_equal(pare_f32_to_e8m0(NAN, true), 255);
    assert_int_equal(pare_f32_to_f8(PARE_DT_FLOAT8E8M0, 2.0f, true), 128);
}

/* ------------------------------------------------------------------ */
/* int4                                                               */

static void test_int4_packing(void **state)
{
    (void)state;
    uint8_t buf[8];
    memset(buf, 0xAA, sizeof buf);
    for (int i = 0; i < 16; i++)
        pare_int4_set(buf, (size_t)i, i - 8); /* -8..7 */
    static const uint8_t want[8] = {0x98, 0xBA, 0xDC, 0xFE, 0x10, 0x32, 0x54, 0x76};
    assert_memory_equal(buf, want, 8);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(pare_int4_get(buf, (size_t)i, true), i - 8);
        assert_int_equal(pare_int4_get(buf, (size_t)i, false), (i - 8) & 0xF);
    }
    /* low nibble first; a set keeps the other nibble; only the low 4 bits of v */
    uint8_t b = 0;
    pare_int4_set(&b, 0, 0x3);
    pare_int4_set(&b, 1, 0xC);
    assert_int_equal(b, 0xC3);
    pare_int4_set(&b, 0, 0x15);
    assert_int_equal(b, 0xC5);
    pare_int4_set(&b, 1, -1);
    assert_int_equal(b, 0xF5);
    assert_int_equal(pare_int4_get(&b, 1, true), -1);
    assert_int_equal(pare_int4_get(&b, 1, false), 15);
}

/* ------------------------------------------------------------------ */
/* pare_dtype_convert                                                 */

static void test_convert_float_to_int(void **state)
{
    (void)state;
    float in[] = {1.9f, -1.9f, 127.5f, 300, -300, NAN, INFINITY, -INFINITY, -0.5f, 128, -128.9f};
    enum { N = sizeof in / sizeof in[0] };
    int8_t i8[N];
    assert_true(pare_dtype_convert(PARE_DT_INT8, i8, PARE_DT_FLOAT, in, N, true));
    static const int8_t want8[N] = {1, -1, 127, 127, -128, 0, 127, -128, 0, 127, -128};
    assert_memory_equal(i8, want8, N);

    /* the generic path (from double) agrees with the float fast path */
    double dd[N];
    assert_true(pare_dtype_convert(PARE_DT_DOUBLE, dd, PARE_DT_FLOAT, in, N, true));
    int8_t g8[N];
    assert_true(pare_dtype_convert(PARE_DT_INT8, g8, PARE_DT_DOUBLE, dd, N, true));
    assert_memory_equal(g8, want8, N);

    uint8_t u8[N];
    assert_true(pare_dtype_convert(PARE_DT_UINT8, u8, PARE_DT_FLOAT, in, N, true));
    static const uint8_t wantu8[N] = {1, 0, 127, 255, 0, 0, 255, 0, 0, 128, 0};
    assert_memory_equal(u8, wantu8, N);

    int32_t i32[N];
    assert_true(pare_dtype_convert(PARE_DT_INT32, i32, PARE_DT_FLOAT, in, N, true));
    assert_int_equal(i32[3], 300);
    assert_int_equal(i32[4], -300);
    assert_int_equal(i32[5], 0);
    assert_int_equal(i32[6], INT32_MAX);
    assert_int_equal(i32[7], INT32_MIN);

    float big[] = {9.3e18f, -9.3e18f, -9.2233720e18f, 1e30f, NAN, 16777216.0f};
    int64_t i64[6];
    uint64_t u64[6];
    assert_true(pare_dtype_convert(PARE_DT_INT64, i64, PARE_DT_FLOAT, big, 6, true));
    assert_true(i64[0] == INT64_MAX);
    assert_true(i64[1] == INT64_MIN);
    assert_true(i64[2] == INT64_MIN); /* exactly -2^63 */
    assert_true(i64[3] == INT64_MAX);
    assert_true(i64[4] == 0);
    assert_true(i64[5] == 16777216);
    assert_true(pare_dtype_convert(PARE_DT_UINT64, u64, PARE_DT_FLOAT, big, 6, true));
    assert_true(u64[0] == (uint64_t)9.3e18f);
    assert_true(u64[1] == 0);
    assert_true(u64[3] == UINT64_MAX);
    assert_true(u64[4] == 0);

    uint16_t h[3] = {pare_f32_to_f16(-2.75f), pare_f32_to_f16(65504.0f), 0x7E00};
    int16_t i16[3];
    assert_true(pare_dtype_convert(PARE_DT_INT16, i16, PARE_DT_FLOAT16, h, 3, true));
    assert_int_equal(i16[0], -2);
    assert_int_equal(i16[1], INT16_MAX);
    assert_int_equal(i16[2], 0);
}

static void test_convert_int_to_int(void **state)
{
    (void)state;
    int32_t in[] = {200, 300, -129, -1, 65536 + 5, INT32_MIN};
    enum { N = sizeof in / sizeof in[0] };
    int8_t i8[N];
    assert_true(pare_dtype_convert(PARE_DT_INT8, i8, PARE_DT_INT32, in, N, true));
    static const int8_t want[N] = {-56, 44, 127, -1, 5, 0};
    assert_memory_equal(i8, want, N);
    uint16_t u16[N];
    assert_true(pare_dtype_convert(PARE_DT_UINT16, u16, PARE_DT_INT32, in, N, true));
    assert_int_equal(u16[3], 0xFFFF);
    assert_int_equal(u16[4], 5);
    int64_t i64[N];
    assert_true(pare_dtype_convert(PARE_DT_INT64, i64, PARE_DT_INT32, in, N, true));
    assert_true(i64[5] == INT32_MIN); /* sign-extended */
    uint64_t u64[N];
    assert_true(pare_dtype_convert(PARE_DT_UINT64, u64, PARE_DT_INT32, in, N, true));
    assert_true(u64[3] == UINT64_MAX);
    uint32_t u32[2] = {0xFFFFFFFFu, 0x80000000u};
    int64_t w[2];
    assert_true(pare_dtype_convert(PARE_DT_INT64, w, PARE_DT_UINT32, u32, 2, true));
    assert_true(w[0] == 0xFFFFFFFFll && w[1] == 0x80000000ll); /* zero-extended */
    int32_t s32[2];
    assert_true(pare_dtype_convert(PARE_DT_INT32, s32, PARE_DT_UINT32, u32, 2, true));
    assert_true(s32[0] == -1 && s32[1] == INT32_MIN);
}

static void test_convert_bool(void **state)
{
    (void)state;
    float f[] = {0.0f, -0.0f, 0.5f, NAN, -3};
    uint8_t b[5];
    assert_true(pare_dtype_convert(PARE_DT_BOOL, b, PARE_DT_FLOAT, f, 5, true));
    static const uint8_t want[5] = {0, 0, 1, 1, 1};
    assert_memory_equal(b, want, 5);
    int64_t i[] = {0, 256, -1};
    assert_true(pare_dtype_convert(PARE_DT_BOOL, b, PARE_DT_INT64, i, 3, true));
    assert_memory_equal(b, ((uint8_t[]){0, 1, 1}), 3);
    uint8_t bb[] = {0, 1, 7};
    float back[3];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, back, PARE_DT_BOOL, bb, 3, true));
    assert_true(back[0] == 0 && back[1] == 1 && back[2] == 1);
    int32_t ib[3];
    assert_true(pare_dtype_convert(PARE_DT_INT32, ib, PARE_DT_BOOL, bb, 3, true));
    assert_true(ib[0] == 0 && ib[1] == 1 && ib[2] == 1);
    uint8_t h[2];
    uint8_t i4 = 0x80; /* int4 {0, -8} */
    assert_true(pare_dtype_convert(PARE_DT_BOOL, h, PARE_DT_INT4, &i4, 2, true));
    assert_true(h[0] == 0 && h[1] == 1);
}

static void test_convert_int4(void **state)
{
    (void)state;
    /* ONNX's test_cast_FLOAT_to_INT4 input: -9..15, wrapping */
    float f[25];
    int32_t i[25];
    for (int k = 0; k < 25; k++) {
        f[k] = (float)(k - 9);
        i[k] = k - 9;
    }
    uint8_t a[13], b[13], u[13];
    memset(a, 0xFF, sizeof a);
    assert_true(pare_dtype_convert(PARE_DT_INT4, a, PARE_DT_FLOAT, f, 25, true));
    assert_true(pare_dtype_convert(PARE_DT_INT4, b, PARE_DT_INT32, i, 25, true));
    assert_true(pare_dtype_convert(PARE_DT_UINT4, u, PARE_DT_INT32, i, 25, true));
    assert_memory_equal(a, b, 13);
    assert_memory_equal(a, u, 13); /* same bits */
    for (int k = 0; k < 25; k++) {
        int want = ((k - 9) & 0xF) >= 8 ? ((k - 9) & 0xF) - 16 : ((k - 9) & 0xF);
        assert_int_equal(pare_int4_get(a, (size_t)k, true), want);
        assert_int_equal(pare_int4_get(u, (size_t)k, false), (k - 9) & 0xF);
    }
    assert_int_equal(a[12] >> 4, 0); /* padding nibble zeroed */

    float g[] = {9.7f, -9.7f, 15.5f, 7.9f, -0.9f, NAN, INFINITY, 1e30f};
    uint8_t c[4];
    assert_true(pare_dtype_convert(PARE_DT_INT4, c, PARE_DT_FLOAT, g, 8, true));
    static const int wg[8] = {-7, 7, -1, 7, 0, 0, 0, 0};
    for (int k = 0; k < 8; k++)
        assert_int_equal(pare_int4_get(c, (size_t)k, true), wg[k]);

    /* back out: sign-extended for int4, not for uint4 */
    uint8_t p = 0x9F; /* {-1, -7} / {15, 9} */
    int32_t o[2];
    float of[2];
    assert_true(pare_dtype_convert(PARE_DT_INT32, o, PARE_DT_INT4, &p, 2, true));
    assert_true(o[0] == -1 && o[1] == -7);
    assert_true(pare_dtype_convert(PARE_DT_INT32, o, PARE_DT_UINT4, &p, 2, true));
    assert_true(o[0] == 15 && o[1] == 9);
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, of, PARE_DT_INT4, &p, 2, true));
    assert_true(of[0] == -1 && of[1] == -7);
    /* int4 <-> uint4 keep the bits; fp4 <-> int4 go through the value */
    uint8_t q;
    assert_true(pare_dtype_convert(PARE_DT_UINT4, &q, PARE_DT_INT4, &p, 2, true));
    assert_int_equal(q, 0x9F);
    uint8_t fp4 = 0x5E; /* {-4, 3} */
    assert_true(pare_dtype_convert(PARE_DT_INT4, &q, PARE_DT_FLOAT4E2M1, &fp4, 2, true));
    assert_int_equal(pare_int4_get(&q, 0, true), -4);
    assert_int_equal(pare_int4_get(&q, 1, true), 3);
    float ff[3] = {1.5f, -6.5f, 0.5f};
    uint8_t f4[2] = {0xFF, 0xFF};
    assert_true(pare_dtype_convert(PARE_DT_FLOAT4E2M1, f4, PARE_DT_FLOAT, ff, 3, true));
    assert_int_equal(f4[0], 0xF3);
    assert_int_equal(f4[1], 0x01);
}

static void test_convert_floats(void **state)
{
    (void)state;
    /* double -> float16 rounds once: via float it would round twice */
    double d[] = {1.0 + ldexp(1, -11) + ldexp(1, -40), 65519.999, 1e300, -1e-300, 0.1};
    uint16_t h[5];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT16, h, PARE_DT_DOUBLE, d, 5, true));
    assert_int_equal(h[0], 0x3C01);
    assert_int_equal(h[1], 0x7BFF);
    assert_int_equal(h[2], 0x7C00);
    assert_int_equal(h[3], 0x8000);
    assert_int_equal(h[4], pare_f32_to_f16(0.1f));

    /* int64 -> bfloat16 rounds once as well */
    int64_t big[] = {(INT64_C(1) << 62) + (INT64_C(1) << 54) + 1, (INT64_C(1) << 62) + (INT64_C(1) << 54),
                     INT64_MIN, -3};
    uint16_t b[4];
    assert_true(pare_dtype_convert(PARE_DT_BFLOAT16, b, PARE_DT_INT64, big, 4, true));
    assert_int_equal(b[0], 0x5E81);
    assert_int_equal(b[1], 0x5E80);
    assert_int_equal(b[2], 0xDF00);
    assert_int_equal(b[3], 0xC040);

    uint64_t umax = UINT64_MAX;
    float fu;
    double du;
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, &fu, PARE_DT_UINT64, &umax, 1, true));
    assert_true(fu == 18446744073709551616.0f);
    assert_true(pare_dtype_convert(PARE_DT_DOUBLE, &du, PARE_DT_UINT64, &umax, 1, true));
    assert_true(du == 18446744073709551616.0);
    int64_t i = (INT64_C(1) << 24) + 1;
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, &fu, PARE_DT_INT64, &i, 1, true));
    assert_true(fu == 16777216.0f);

    /* f32 <-> f16 / bf16 fast paths, f16 <-> bf16, f32 -> fp8 with saturate */
    float f[] = {1.0f, -2.5f, 65504.0f, 1e6f, NAN, 3.0e-8f};
    uint16_t fh[6], fb[6], hb[6];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT16, fh, PARE_DT_FLOAT, f, 6, true));
    assert_true(pare_dtype_convert(PARE_DT_BFLOAT16, fb, PARE_DT_FLOAT, f, 6, true));
    for (int k = 0; k < 6; k++) {
        assert_int_equal(fh[k], pare_f32_to_f16(f[k]));
        assert_int_equal(fb[k], pare_f32_to_bf16(f[k]));
    }
    assert_true(pare_dtype_convert(PARE_DT_BFLOAT16, hb, PARE_DT_FLOAT16, fh, 6, true));
    assert_int_equal(hb[0], 0x3F80);
    assert_int_equal(hb[1], 0xC020);
    assert_int_equal(hb[2], 0x4780); /* 65504 -> 65536 in bf16 */
    assert_int_equal(hb[3], 0x7F80);  /* f16 inf */
    assert_true((hb[4] & 0x7F80) == 0x7F80 && (hb[4] & 0x7F));
    float back[6];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, back, PARE_DT_FLOAT16, fh, 6, true));
    assert_true(back[2] == 65504.0f && isinf(back[3]) && isnan(back[4]));
    assert_true(back[5] == ldexpf(1, -25) * 2); /* 3e-8 rounds to 2^-24 */

    uint8_t e[6];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT8E4M3FN, e, PARE_DT_FLOAT, f, 6, true));
    assert_memory_equal(e, ((uint8_t[]){0x38, 0xC2, 0x7E, 0x7E, 0x7F, 0x00}), 6);
    assert_true(pare_dtype_convert(PARE_DT_FLOAT8E4M3FN, e, PARE_DT_FLOAT, f, 6, false));
    assert_memory_equal(e, ((uint8_t[]){0x38, 0xC2, 0x7F, 0x7F, 0x7F, 0x00}), 6);
    assert_true(pare_dtype_convert(PARE_DT_FLOAT8E5M2, e, PARE_DT_FLOAT, f, 6, false));
    assert_int_equal(e[3], 0x7C);
    /* fp8 -> fp8 and fp8 -> f32 */
    uint8_t e4[2] = {0x7E, 0x01}, e5[2];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT8E5M2, e5, PARE_DT_FLOAT8E4M3FN, e4, 2, true));
    assert_int_equal(e5[0], 0x5F); /* 448 -> 448 */
    assert_int_equal(e5[1], 0x18); /* 2^-9 */
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, back, PARE_DT_FLOAT8E5M2, e5, 2, true));
    assert_true(back[0] == 448.0f && back[1] == ldexpf(1, -9));
    uint8_t m[2];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT8E8M0, m, PARE_DT_FLOAT8E4M3FN, e4, 2, true));
    assert_int_equal(m[0], 127 + 9); /* 448 rounds up to 512 */
    assert_int_equal(m[1], 127 - 9);

    /* float32 <-> double, including overflow to inf */
    double dd[3] = {1e300, -1e300, 0.1};
    float fd[3];
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, fd, PARE_DT_DOUBLE, dd, 3, true));
    assert_true(isinf(fd[0]) && fd[1] == -INFINITY && fd[2] == 0.1f);
}

static void test_convert_misc(void **state)
{
    (void)state;
    float f[3] = {1, 2, 3}, g[3] = {0};
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, g, PARE_DT_FLOAT, f, 3, true));
    assert_memory_equal(f, g, sizeof f);
    assert_true(pare_dtype_convert(PARE_DT_FLOAT, g, PARE_DT_INT8, NULL, 0, true));
    assert_false(pare_dtype_convert(PARE_DT_STRING, g, PARE_DT_FLOAT, f, 3, true));
    assert_false(pare_dtype_convert(PARE_DT_FLOAT, g, PARE_DT_STRING, f, 3, true));
    assert_false(pare_dtype_convert(PARE_DT_FLOAT, g, 0, f, 3, true));
    assert_false(pare_dtype_convert(99, g, PARE_DT_FLOAT, f, 3, true));
    assert_false(pare_dtype_convert(PARE_DT_COMPLEX64, g, PARE_DT_FLOAT, f, 3, true));
    assert_false(pare_dtype_convert(PARE_DT_FLOAT, g, PARE_DT_COMPLEX128, f, 1, true));
    float c64[4] = {1.5f, -2, 3, 4};
    double c128[4];
    assert_true(pare_dtype_convert(PARE_DT_COMPLEX128, c128, PARE_DT_COMPLEX64, c64, 2, true));
    assert_true(c128[0] == 1.5 && c128[1] == -2 && c128[2] == 3 && c128[3] == 4);
    float c2[4];
    assert_true(pare_dtype_convert(PARE_DT_COMPLEX64, c2, PARE_DT_COMPLEX128, c128, 2, true));
    assert_memory_equal(c2, c64, sizeof c2);

    /* unaligned buffers */
    unsigned char raw[1 + 4 * sizeof(float)], out[1 + 4 * sizeof(int64_t)];
    float src[4] = {1.5f, -7.25f, 1e20f, 42};
    memcpy(raw + 1, src, sizeof src);
    assert_true(pare_dtype_convert(PARE_DT_INT64, out + 1, PARE_DT_FLOAT, raw + 1, 4, true));
    int64_t r[4];
    memcpy(r, out + 1, sizeof r);
    assert_true(r[0] == 1 && r[1] == -7 && r[2] == INT64_MAX && r[3] == 42);
    assert_true(pare_dtype_get_f64(PARE_DT_FLOAT, raw + 1, 1) == -7.25);

    /* get/set as double */
    uint8_t i4[2] = {0};
    pare_dtype_set_f64(PARE_DT_INT4, i4, 3, -3.7);
    assert_true(pare_dtype_get_f64(PARE_DT_INT4, i4, 3) == -3);
    assert_true(pare_dtype_get_f64(PARE_DT_UINT4, i4, 3) == 13);
    uint64_t u = UINT64_MAX;
    assert_true(pare_dtype_get_f64(PARE_DT_UINT64, &u, 0) == 18446744073709551616.0);
    int64_t s = INT64_MIN;
    assert_true(pare_dtype_get_f64(PARE_DT_INT64, &s, 0) == -9223372036854775808.0);
    uint16_t h[2];
    pare_dtype_set_f64(PARE_DT_FLOAT16, h, 1, 1.5);
    assert_int_equal(h[1], 0x3E00);
    assert_true(pare_dtype_get_f64(PARE_DT_FLOAT16, h, 1) == 1.5);
    uint8_t f8;
    pare_dtype_set_f64(PARE_DT_FLOAT8E4M3FN, &f8, 0, 1e9); /* saturates like Cast's default */
    assert_int_equal(f8, 0x7E);
    uint8_t bl[2];
    pare_dtype_set_f64(PARE_DT_BOOL, bl, 1, -0.25);
    assert_int_equal(bl[1], 1);
    double cd[4] = {0};
    pare_dtype_set_f64(PARE_DT_COMPLEX128, cd, 1, 2.5);
    assert_true(cd[2] == 2.5 && cd[3] == 0);
    assert_true(pare_dtype_get_f64(PARE_DT_COMPLEX128, cd, 1) == 2.5);
    int8_t i8 = 0;
    pare_dtype_set_f64(PARE_DT_INT8, &i8, 0, -1e9);
    assert_int_equal(i8, -128);
    uint8_t e8;
    pare_dtype_set_f64(PARE_DT_FLOAT8E8M0, &e8, 0, 0.3);
    assert_int_equal(e8, 126);
    assert_true(pare_dtype_get_f64(PARE_DT_FLOAT8E8M0, &e8, 0) == 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_sizes_and_kinds),
        cmocka_unit_test(test_f16_roundtrip_all),
        cmocka_unit_test(test_f16_known),
        cmocka_unit_test(test_f16_bf16_random),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_fp8_roundtrip_all),
        cmocka_unit_test(test_fp8_known),
        cmocka_unit_test(test_fp8_saturate),
        cmocka_unit_test(test_fp4),
        cmocka_unit_test(test_e8m0),
        cmocka_unit_test(test_int4_packing),
        cmocka_unit_test(test_convert_float_to_int),
        cmocka_unit_test(test_convert_int_to_int),
        cmocka_unit_test(test_convert_bool),
        cmocka_unit_test(test_convert_int4),
        cmocka_unit_test(test_convert_floats),
        cmocka_unit_test(test_convert_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
