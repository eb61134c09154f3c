/* Stand-in for <cuda_bf16.h> (tests/cuda/emu): bfloat16 as 16 bits, float
 * to bfloat16 rounding to nearest even. */
#ifndef PCU_EMU_CUDA_BF16_H
#define PCU_EMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16_raw {
    unsigned short x;
};

static inline unsigned short pcu_emu_f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (unsigned short)((u >> 16) | 0x40u); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

static inline float pcu_emu_bf2f(unsigned short b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
    explicit __nv_bfloat16(float f) : __x(pcu_emu_f2bf(f)) {}
    explicit operator float() const { return pcu_emu_bf2f(__x); }
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f)
{
    return __nv_bfloat16(__nv_bfloat16_raw{pcu_emu_f2bf(f)});
}
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 b) { return pcu_emu_bf2f(b.__x); }

#endif
