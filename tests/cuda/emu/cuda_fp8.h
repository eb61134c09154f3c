/* Stand-in for <cuda_fp8.h> (tests/cuda/emu): the fp8 conversions the
 * quantize kernels use. E4M3 (the FN kind: no infinity, S.1111.111 is NaN,
 * largest 448) and E5M2 (IEEE-like: bias 15, infinities). Float to fp8
 * rounds to nearest even; with __NV_SATFINITE values past the largest
 * finite become it, with __NV_NOSAT they become NaN (E4M3) or infinity
 * (E5M2). */
#ifndef PCU_EMU_CUDA_FP8_H
#define PCU_EMU_CUDA_FP8_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda_fp16.h"

typedef unsigned char __nv_fp8_storage_t;
typedef enum __nv_saturation_t { __NV_NOSAT, __NV_SATFINITE } __nv_saturation_t;
typedef enum __nv_fp8_interpretation_t { __NV_E4M3, __NV_E5M2 } __nv_fp8_interpretation_t;

static inline __nv_fp8_storage_t __nv_cvt_float_to_fp8(float x, __nv_saturation_t sat,
                                                      __nv_fp8_interpretation_t fmt)
{
    const int mbits = fmt == __NV_E4M3 ? 3 : 2, bias = fmt == __NV_E4M3 ? 7 : 15;
    const float maxf = fmt == __NV_E4M3 ? 448.0f : 57344.0f;
    unsigned char sign = signbit(x) ? 0x80 : 0;
    if (isnan(x)) /* CUDA's canonical NaN in both formats, whatever the sign */
        return 0x7f;
    float a = fabsf(x);
    /* the value's exponent, not below the smallest normal's */
    int e;
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    e -= 1;        /* a = 1.m * 2^e */
    if (a == 0.0f || e < 1 - bias)
        e = 1 - bias;
    float step = ldexpf(1.0f, e - mbits); /* spacing of representable values there */
    float q = rintf(a / step) * step;     /* a / step is exact: a power-of-two divisor */
    if (q > maxf || isinf(a)) {
        if (sat == __NV_SATFINITE)
            q = maxf;
        else
            return fmt == __NV_E4M3 ? (unsigned char)(0x7f | sign) : (unsigned char)(0x7c | sign);
    }
    if (q == 0.0f)
        return sign;
    frexpf(q, &e);
    e -= 1;
    unsigned char bits;
    if (e < 1 - bias) /* subnormal */
        bits = (unsigned char)(q / ldexpf(1.0f, 1 - bias - mbits));
    else
        bits = (unsigned char)(((e + bias) << mbits) |
                               ((int)(q / ldexpf(1.0f, e - mbits)) & ((1 << mbits) - 1)));
    return bits | sign;
}

static inline __half_raw __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t v,
                                                 __nv_fp8_interpretation_t fmt)
{
    const int mbits = fmt == __NV_E4M3 ? 3 : 2, bias = fmt == __NV_E4M3 ? 7 : 15;
    int sign = v & 0x80, e = (v & 0x7f) >> mbits, m = v & ((1 << mbits) - 1);
    float f;
    if (fmt == __NV_E4M3 && (v & 0x7f) == 0x7f)
        f = NAN;
    else if (fmt == __NV_E5M2 && e == 31)
        f = m ? NAN : INFINITY;
    else if (e == 0)
        f = ldexpf((float)m, 1 - bias - mbits);
    else
        f = ldexpf((float)(m | (1 << mbits)), e - bias - mbits);
    return __half_raw{pcu_emu_f2h(sign ? -f : f)};
}

#endif
