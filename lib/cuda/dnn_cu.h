/* Launchers of lib/cuda/dnn.cu (own kernels of the dnn family: padding,
 * bias, crop, pooling, BatchNormalization, Resize). Plain C signatures: no
 * pare header here. Each queues one kernel on stream and returns the launch
 * error (cudaSuccess when nothing was to do). Element types are PCU_T_*;
 * all arithmetic is in float. Sizes are element counts; nsp <= 3.
 */
#ifndef PARE_CUDA_DNN_CU_H
#define PARE_CUDA_DNN_CU_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PCU_T_F32 = 0, PCU_T_F16 = 1, PCU_T_BF16 = 2 };
enum { PCU_POOL_MAX = 0, PCU_POOL_AVG = 1 };

/* Geometry of a spatial op on planes (N*C of them) of nsp dims. */
typedef struct pcu_sp {
    int nsp;
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} pcu_sp;

/* dst (planes x out) = src (planes x in) placed at offset pb, zeros around
 * (out = in + pb + pe). */
cudaError_t pcu_pad_planes(int t, const void *src, void *dst, const pcu_sp *g,
                           cudaStream_t stream);

/* y[n, c, o] = (0 <= o + pb < full ? src[n, c, o + pb] : 0) + (bias ? bias[c] : 0)
 * per spatial dim, for ConvTranspose's crop of the full result (g->in is
 * the full dims, g->out the output dims; planes = N * C). bias has type t. */
cudaError_t pcu_crop_bias(int t, const void *src, const void *bias, void *y, int64_t C,
                          const pcu_sp *g, cudaStream_t stream);

/* y[n, c, i] += bias[c] for an N x C x inner tensor. */
/* Activations of the fused Conv epilogue: the values of PARE_KACT_*
 * (lib/exec/kernel.h; dnn.c checks they agree) */
enum {
    PCU_ACT_NONE = 0,
    PCU_ACT_RELU,
    PCU_ACT_CLIP,        /* a = min, b = max */
    PCU_ACT_LEAKY_RELU,  /* a = alpha */
    PCU_ACT_SIGMOID,
    PCU_ACT_TANH,
    PCU_ACT_HARDSIGMOID, /* a = alpha, b = beta */
    PCU_ACT_HARDSWISH,
};

/* The fused Conv's epilogue in place on y [N, C, inner] of type t:
 * y = act(y + bias[c] + res), bias float32 (C values), res of y's type and
 * shape or NULL. */
cudaError_t pcu_conv_epilogue(int t, void *y, const float *bias, const void *res, int64_t N,
                              int64_t C, int64_t inner, int act, float a, float b,
                              cudaStream_t stream);

cudaError_t pcu_bias_add(int t, void *y, const void *bias, int64_t N, int64_t C, int64_t inner,
                         cudaStream_t stream);

/* Max or average pooling of every plane. Max: indices (optional, int64)
 * get the flat index of the chosen element in the whole input as ONNX
 * MaxPool's second output (storage_order 1: column-major within the plane).
 * Average: count_include_pad counts the padded positions (up to the end
 * pad, not the extra positions ceil_mode adds). */
cudaError_t pcu_pool(int t, int kind, const void *x, void *y, int64_t *indices,
                     int storage_order, int count_include_pad, const pcu_sp *g,
                     cudaStream_t stream);

/* Global pooling: y[p] = max or mean of plane p of `plane` elements. */
cudaError_t pcu_global_pool(int t, int kind, const void *x, void *y, int64_t planes,
                            int64_t plane, cudaStream_t stream);

/* BatchNormalization (inference): y = (x - mean[c]) / sqrt(var[c] + eps) *
 * scale[c] + bias[c] for an N x C x inner tensor; x/y of type t, the four
 * parameter vectors of type pt. */
cudaError_t pcu_batchnorm(int t, int pt, const void *x, const void *scale, const void *bias,
                          const void *mean, const void *var, void *y, int64_t N, int64_t C,
                          int64_t inner, float eps, cudaStream_t stream);

/* Resize of planes x inH x inW to planes x outH x outW; mode 0 nearest, 1
 * linear; coord and nearest are ops_host.h's PCU_CT_* and PCU_NM_*. */
typedef struct pcu_resize_args {
    int mode, coord, nearest;
    int64_t planes, in_h, in_w, out_h, out_w;
    double scale_h, scale_w;
} pcu_resize_args;

cudaError_t pcu_resize(int t, const void *x, void *y, const pcu_resize_args *a,
                       cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
