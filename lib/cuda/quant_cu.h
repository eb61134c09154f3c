/* Launchers of lib/cuda/quant.cu (quantization kernels). Plain C
 * signatures: no pare header here. Element types are ONNX's TensorProto
 * numbers (the same as pare_dtype), named PCU_DT_* below. Each launcher
 * queues its kernels on stream and returns the launch error; a dtype it
 * does not implement gives cudaErrorNotSupported (the records' types keep
 * such nodes on the CPU, so that is a bug, not a user error).
 */
#ifndef PARE_CUDA_QUANT_CU_H
#define PARE_CUDA_QUANT_CU_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PCU_DT_F32 = 1,
    PCU_DT_U8 = 2,
    PCU_DT_I8 = 3,
    PCU_DT_U16 = 4,
    PCU_DT_I16 = 5,
    PCU_DT_I32 = 6,
    PCU_DT_F16 = 10,
    PCU_DT_BF16 = 16,
    PCU_DT_F8E4M3FN = 17,
    PCU_DT_F8E5M2 = 19,
    PCU_DT_U4 = 21,
    PCU_DT_I4 = 22
};

/* Where element e of x finds its scale and zero point (ops_shared.h's
 * pcu_q_index). */
typedef struct pcu_qmap {
    int mode;
    int64_t n, inner, axis_len, bs, nblk;
} pcu_qmap;

/* DequantizeLinear: y = (x - zp) * scale, zp NULL for 0 (ignored for the
 * float8 types), scale NULL for 1 (m then follows the zero point's layout). x: u8 i8 u16 i16 i32 u4 i4 (packed, low nibble first)
 * f8e4m3fn f8e5m2; zp of x's type; scale and y: f32 f16 bf16. */
cudaError_t pcu_dequantize(int xt, const void *x, int st, const void *scale, const void *zp,
                           int yt, void *y, const pcu_qmap *m, cudaStream_t stream);

/* QuantizeLinear: y = saturate(round_half_even(x / scale) + zp) for the
 * integer types (NaN to the low end), float8: convert(x / scale) with
 * saturate (else out of range gives NaN for e4m3fn, inf for e5m2), zp
 * ignored. The division happens in precision pt (f32, f16 or bf16: the
 * result is rounded to pt as numpy would compute in it). x: f32 f16 bf16;
 * scale: f32 f16 bf16; y: u8 i8 u16 i16 u4 i4 f8e4m3fn f8e5m2. */
cudaError_t pcu_quantize(int xt, const void *x, int st, const void *scale, const void *zp,
                         int yt, void *y, int pt, int saturate, const pcu_qmap *m,
                         cudaStream_t stream);

/* DynamicQuantizeLinear of n float32 values: y (uint8), y_scale (one
 * float), y_zero_point (one uint8), all on the device. ws holds at least
 * pcu_dynq_ws_bytes(n) bytes. */
size_t pcu_dynq_ws_bytes(int64_t n);
cudaError_t pcu_dynamic_quantize(const float *x, int64_t n, uint8_t *y, float *y_scale,
                                 uint8_t *y_zp, void *ws, cudaStream_t stream);

/* Batched integer matmul C = (A - azp) * (B - bzp) over broadcast batch
 * dims, A: batch x M x K, B: batch x K x N (u8 or i8 each), zero points
 * per row of A / per column of B: kind 0 scalar, 1 per row (column), 2 per
 * batch row (column) of the un-broadcast operand, NULL for 0. */
#define PCU_MM_MAXB 6
typedef struct pcu_imm {
    int at, bt;                 /* PCU_DT_U8 or PCU_DT_I8 */
    int64_t M, N, K, batch;
    int nb;                     /* broadcast batch dims (<= PCU_MM_MAXB) */
    int64_t bdims[PCU_MM_MAXB]; /* output batch dims */
    int64_t sa[PCU_MM_MAXB], sb[PCU_MM_MAXB]; /* matrix strides of A and B per batch dim */
    const void *azp, *bzp;
    int azp_kind, bzp_kind;
    /* epilogue: 0 int32 C; 1 QLinearMatMul: y = sat(rint(acc * (as * bs / ys)) + yzp) */
    int epi;
    const float *as, *bs, *ys; /* scale layouts: as by azp-like kind, bs by bzp-like kind */
    int as_kind, bs_kind;
    const void *yzp;            /* NULL: 0 */
    int yt;                     /* output of epi 1: PCU_DT_U8 or PCU_DT_I8 */
} pcu_imm;

cudaError_t pcu_int_matmul(const pcu_imm *p, const void *A, const void *B, void *C,
                           cudaStream_t stream);

/* MatMulNBits: W[n, k] = (q(n, k) - zp(n, k / bs)) * scales[n, k / bs]
 * into an N x K matrix of type wt (f32 f16 bf16); blob is N x nblk x
 * blob_bytes, q `bits` wide (1..8) little-endian; zp: NULL (2^(bits-1)),
 * packed uint8 fields (zp_packed, rows of (nblk * bits + 7) / 8 bytes) or
 * a float array of type st (N x nblk). scales of type st. */
cudaError_t pcu_nbits_dequant(const uint8_t *blob, int st, const void *scales, const void *zp,
                              int zp_packed, int bits, int64_t N, int64_t K, int64_t bs,
                              int wt, void *W, cudaStream_t stream);

/* y[r, j] += bias[j] for rows x cols of type t (f32 f16 bf16), bias of type t. */
cudaError_t pcu_add_row_bias(int t, void *y, const void *bias, int64_t rows, int64_t cols,
                             cudaStream_t stream);

/* QLinearConv's requantization of acc (N x M x inner float32 holding the
 * integer sums of (x - x_zp) * (w - w_zp)): y = saturate(rint((acc +
 * bias[m]) * (x_scale * w_scale[m or 0] / y_scale) + y_zp)), y of type yt
 * (PCU_DT_U8 or PCU_DT_I8), y_zp of type yt or NULL, bias int32 or NULL. */
cudaError_t pcu_qconv_requant(const float *acc, const int32_t *bias, const float *x_scale,
                              const float *w_scale, int w_per_channel, const float *y_scale,
                              const void *y_zp, int yt, void *y, int64_t N, int64_t M,
                              int64_t inner, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
