/* Stand-in for <cuda_fp16.h> (tests/cuda/emu): __half as 16 bits with the
 * conversions the kernels use, rounding to nearest even as the GPU does. */
#ifndef PCU_EMU_CUDA_FP16_H
#define PCU_EMU_CUDA_FP16_H

#include <stdint.h>
#include <string.h>

struct __half_raw {
    unsigned short x;
};

static inline unsigned short pcu_emu_f2h(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep it quiet */
        return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* rounds to 65536 or more: infinity */
        return (unsigned short)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below the smallest normal: subnormal or zero */
        if (a < 0x33000000u) /* below half the smallest subnormal (ties: 0) */
            return (unsigned short)sign;
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        int shift = 125 - (int)e; /* q = m * 2^(e - 150) / 2^-24: m >> (126 - e) */
        uint32_t q = m >> (shift + 1), rem = m & ((2u << shift) - 1), half = 1u << shift;
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (unsigned short)(sign | q);
    }
    uint32_t r = a - 0x38000000u; /* rebias 127 -> 15 */
    uint32_t q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1)))
        q++;
    return (unsigned short)(sign | q);
}

static inline float pcu_emu_h2f(unsigned short h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f)
        u = sign | 0x7f800000u | (m << 13);
    else if (e)
        u = sign | ((e + 112) << 23) | (m << 13);
    else if (!m)
        u = sign;
    else { /* subnormal: normalise */
        int k = 0;
        while (!(m & 0x400u)) {
            m <<= 1;
            k++;
        }
        u = sign | ((uint32_t)(113 - k) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct __half {
    unsigned short __x;
    __half() = default;
    __half(__half_raw r) : __x(r.x) {}
    explicit __half(float f) : __x(pcu_emu_f2h(f)) {}
    operator __half_raw() const { return __half_raw{__x}; }
    explicit operator float() const { return pcu_emu_h2f(__x); }
};

static inline __half __float2half_rn(float f)
{
    return __half(__half_raw{pcu_emu_f2h(f)});
}
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline float __half2float(__half h) { return pcu_emu_h2f(h.__x); }

#endif
