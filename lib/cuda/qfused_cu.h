/* Launchers of lib/cuda/qfused.cu: the fused QDQ kernels (the executor's
 * QDQ fusion, lib/exec/session.c fuse_qdq, on the CUDA backend). Plain C
 * signatures, no pare header (cuda_internal.h). Types are PCU_DT_* of
 * quant_cu.h.
 *
 * pcu_qgemm_run computes pare_qdq_geom's product (lib/exec/kernel.h) on
 * tensor cores (int8 WMMA, int32 sums): x is moved to the int8 domain
 * (uint8 x: x ^ 0x80, that is x - 128), its zero point with it, so that
 *     acc = sum_k (x' - zc) w = sum_k x' w - zc rowsum(w)
 * with padding read as zc (a real zero) and zc = zx - 128 (uint8) or zx
 * (int8). The epilogue is the CPU's to the bit:
 *     q = float(acc) * mult + bias (round to nearest, no fma), clamp to
 *     [lo - zy (0 with Relu), hi - zy], rint half to even, + zy.
 */
#ifndef PARE_CUDA_QFUSED_CU_H
#define PARE_CUDA_QFUSED_CU_H

#include <math.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "cuda/quant_cu.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { PCU_QG_CONV = 0, PCU_QG_MATMUL = 1 };

/* The tile sizes of the kernel: BM rows (output channels) by 128 columns,
 * 32 k per step. Packed weights are [group][Mpad][Kp] int8 with Mpad a
 * multiple of bm and Kp of PCU_QG_BK, zero past Mg and K. */
#define PCU_QG_BN 128
#define PCU_QG_BK 32

typedef struct pcu_qgemm {
    int kind;                 /* PCU_QG_CONV or PCU_QG_MATMUL */
    int xdt, ydt;             /* x: U8 or I8; y: U8, I8 or F32 */
    int bm;                   /* 64 or 128 */
    int64_t M, Mg, group, K, Kp, Mpad;
    int64_t P;                /* columns: images x output pixels, or rows of x */
    /* Conv: x is [N, C, H, W] (1-D: H = 1), y [N, M, oh, ow] */
    int64_t C, Cg, H, W, oh, ow, sh, sw, ph, pw;
    const int32_t *ktab;      /* Conv, device: 3 per k < K: input channel in the
                               * group, ky * dh, kx * dw; k = tap * Cg + channel
                               * (tap = ky * kw + kx), the packed weights' order */
    const int8_t *w;          /* device: the packed weights */
    const int32_t *corr;      /* device, M: zc * rowsum(w[m]) */
    const float *mult, *bias; /* device, M each; bias NULL: 0 */
    int32_t zy, lo, hi;       /* y's zero point and range (8-bit y) */
    int relu;
    int pad;                  /* zc: x's zero point in the int8 domain */
    int x_vec;                /* MatMul: x's rows can be read 16 bytes at a time */
} pcu_qgemm;

cudaError_t pcu_qgemm_run(const pcu_qgemm *a, const void *x, void *y, cudaStream_t stream);

/* What one thread of the kernel does per element, shared with the host-side
 * tests (which run the same functions around a plain triple loop). */
#ifdef __CUDACC__
#define PCU_QG_HD __host__ __device__
#else
#define PCU_QG_HD
#endif
#ifdef __CUDA_ARCH__
#define PCU_QG_MUL(a, b) __fmul_rn(a, b)
#define PCU_QG_ADD(a, b) __fadd_rn(a, b)
#else
#define PCU_QG_MUL(a, b) ((a) * (b))
#define PCU_QG_ADD(a, b) ((a) + (b))
#endif

/* column p of group grp: where its elements start in x */
typedef struct pcu_qg_col {
    int64_t xbase, iy0, ix0;
    int valid;
} pcu_qg_col;

static inline PCU_QG_HD pcu_qg_col pcu_qg_column(const pcu_qgemm *a, int64_t grp, int64_t p)
{
    pcu_qg_col c = {0, 0, 0, p < a->P};
    if (!c.valid)
        return c;
    if (a->kind == PCU_QG_CONV) {
        int64_t ohw = a->oh * a->ow, n = p / ohw, r = p - n * ohw, oy = r / a->ow,
                ox = r - oy * a->ow;
        c.xbase = (n * a->C + grp * a->Cg) * a->H * a->W;
        c.iy0 = oy * a->sh - a->ph;
        c.ix0 = ox * a->sw - a->pw;
    } else {
        c.xbase = p * a->K;
    }
    return c;
}

/* B[k, p] in the int8 domain: x's element moved (uint8: ^ 0x80), the pad
 * (zc) outside the image, 0 past K */
static inline PCU_QG_HD int8_t pcu_qg_b(const pcu_qgemm *a, const uint8_t *x,
                                        const pcu_qg_col *c, int64_t k)
{
    uint8_t flip = a->xdt == PCU_DT_U8 ? 0x80 : 0;
    if (a->kind == PCU_QG_MATMUL)
        return c->valid && k < a->K ? (int8_t)(x[c->xbase + k] ^ flip) : (int8_t)0;
    if (k >= a->K || !c->valid)
        return (int8_t)a->pad;
    const int32_t *t = a->ktab + 3 * k;
    int64_t iy = c->iy0 + t[1], ix = c->ix0 + t[2];
    if (iy < 0 || iy >= a->H || ix < 0 || ix >= a->W)
        return (int8_t)a->pad;
    return (int8_t)(x[c->xbase + ((int64_t)t[0] * a->H + iy) * a->W + ix] ^ flip);
}

/* B[kb .. kb+15, p] as four little-endian words (kb a multiple of 16):
 * Conv with Cg a multiple of 16 (k is tap-major: k = tap * Cg + channel,
 * so the 16 share one tap): one bounds check, 16 loads HW apart; MatMul
 * with x_vec: one 16-byte load; else byte by byte (pcu_qg_b). */
static inline PCU_QG_HD void pcu_qg_b16(const pcu_qgemm *a, const uint8_t *x,
                                        const pcu_qg_col *c, int64_t kb, uint32_t *w)
{
    uint32_t f4 = a->xdt == PCU_DT_U8 ? 0x80808080u : 0;
    if (a->kind == PCU_QG_MATMUL && a->x_vec && c->valid && kb + 16 <= a->K) {
        const uint32_t *src = (const uint32_t *)(const void *)(x + c->xbase + kb);
        for (int q = 0; q < 4; q++)
            w[q] = src[q] ^ f4;
        return;
    }
    if (a->kind == PCU_QG_CONV && a->Cg % 16 == 0 && c->valid && kb + 16 <= a->K) {
        const int32_t *t = a->ktab + 3 * kb;
        int64_t iy = c->iy0 + t[1], ix = c->ix0 + t[2];
        if (iy < 0 || iy >= a->H || ix < 0 || ix >= a->W) {
            uint32_t p4 = (uint32_t)(uint8_t)a->pad * 0x01010101u;
            for (int q = 0; q < 4; q++)
                w[q] = p4;
            return;
        }
        int64_t hw = a->H * a->W;
        const uint8_t *src = x + c->xbase + (int64_t)t[0] * hw + iy * a->W + ix;
        for (int q = 0; q < 4; q++)
            w[q] = ((uint32_t)src[(4 * q) * hw] | (uint32_t)src[(4 * q + 1) * hw] << 8 |
                    (uint32_t)src[(4 * q + 2) * hw] << 16 | (uint32_t)src[(4 * q + 3) * hw] << 24) ^
                   f4;
        return;
    }
    for (int q = 0; q < 4; q++) {
        uint32_t word = 0;
        for (int b = 0; b < 4; b++)
            word |= (uint32_t)(uint8_t)pcu_qg_b(a, x, c, kb + q * 4 + b) << (8 * b);
        w[q] = word;
    }
}

/* output (row m of group grp, column p) from its int32 sum acc */
static inline PCU_QG_HD void pcu_qg_out(const pcu_qgemm *a, int64_t grp, int64_t m, int64_t p,
                                        int32_t acc, void *y)
{
    int64_t gm = grp * a->Mg + m, at;
    float lo = a->ydt == PCU_DT_F32 ? -INFINITY : (float)(a->lo - a->zy),
          hi = a->ydt == PCU_DT_F32 ? INFINITY : (float)(a->hi - a->zy);
    if (a->relu && lo < 0)
        lo = 0;
    float q = PCU_QG_ADD(PCU_QG_MUL((float)(acc - a->corr[gm]), a->mult[gm]),
                         a->bias ? a->bias[gm] : 0.0f);
    q = q > lo ? q : lo;
    q = q < hi ? q : hi;
    if (a->kind == PCU_QG_CONV) {
        int64_t ohw = a->oh * a->ow, n = p / ohw;
        at = (n * a->M + gm) * ohw + (p - n * ohw);
    } else {
        at = p * a->M + gm;
    }
    if (a->ydt == PCU_DT_F32)
        ((float *)y)[at] = q;
    else
        ((uint8_t *)y)[at] = (uint8_t)((int)rintf(q) + a->zy);
}

/* y = Q(Relu(DQ(a) + DQ(b))) element by element in the unfused nodes'
 * float32 operations (the CPU's QDQ Add to the bit). */
typedef struct pcu_qadd {
    int adt, bdt, ydt;        /* U8 or I8 */
    float sa, sb, ys;
    int32_t za, zb, zy, lo, hi;
    int relu;
} pcu_qadd;

cudaError_t pcu_qadd_run(const pcu_qadd *a, const void *A, const void *B, void *y, int64_t n,
                         cudaStream_t stream);

/* y = Q(Relu(DQ(x) * a[c] + b[c])) for x of channels C (axis 1) with plane
 * elements per channel and image (exec/kernel.h pare_qdq_bn: the CPU's
 * kernel to the bit); a, b device pointers */
typedef struct pcu_qbn {
    int xdt, ydt;             /* U8 or I8 */
    int64_t C, plane;
    float sx, ys;
    int32_t zx, zy, lo, hi;
    int relu;
    const float *a, *b;
} pcu_qbn;

cudaError_t pcu_qbn_run(const pcu_qbn *p, const void *x, void *y, int64_t n, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
