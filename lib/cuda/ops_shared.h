/* Formulas shared by the host logic (ops_host.c, tested without a GPU) and
 * the device kernels (dnn.cu, quant.cu, move.cu), so that what the unit tests check is what
 * the GPU computes. Plain C that nvcc also compiles as host+device code.
 */
#ifndef PARE_CUDA_OPS_SHARED_H
#define PARE_CUDA_OPS_SHARED_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PCU_HD __host__ __device__
#else
#define PCU_HD
#endif

/* Pad's modes, and the input index output index c of an axis of dim
 * elements padded by pb at its start reads: -1 for the constant; edge,
 * reflect (pads larger than the axis reflect again) and wrap as the CPU's
 * Pad (lib/exec/kernels_shape_move.c) maps them. |pb| < 2^62 (the host
 * checks), so c - pb does not overflow. */
enum { PCU_PAD_CONSTANT, PCU_PAD_REFLECT, PCU_PAD_EDGE, PCU_PAD_WRAP };

static inline PCU_HD int64_t pcu_pad_src(int mode, int64_t c, int64_t pb, int64_t dim)
{
    int64_t i = c - pb;
    if (i >= 0 && i < dim)
        return i;
    switch (mode) {
    case PCU_PAD_CONSTANT: return -1;
    case PCU_PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case PCU_PAD_WRAP: i = c % dim - pb % dim; return ((i % dim) + dim) % dim;
    default: {
        if (dim == 1)
            return 0;
        int64_t p = 2 * (dim - 1);
        i = c % p - pb % p;
        i = ((i % p) + p) % p;
        return i >= dim ? p - i : i;
    }
    }
}

/* coordinate_transformation_mode and nearest_mode codes (Resize) */
enum {
    PCU_CT_HALF_PIXEL,
    PCU_CT_ASYMMETRIC,
    PCU_CT_ALIGN_CORNERS,
    PCU_CT_PYTORCH_HALF_PIXEL,
    PCU_CT_HALF_PIXEL_SYMMETRIC
};
enum { PCU_NM_ROUND_PREFER_FLOOR, PCU_NM_ROUND_PREFER_CEIL, PCU_NM_FLOOR, PCU_NM_CEIL };

/* The source coordinate of output coordinate o on one axis. */
static inline PCU_HD double pcu_rs_coord(int coord, double o, double scale, int64_t in,
                                         int64_t out)
{
    switch (coord) {
    case PCU_CT_ASYMMETRIC: return o / scale;
    case PCU_CT_ALIGN_CORNERS: {
        /* the resized length as the ONNX reference and the CPU take it,
         * scale * in, not the floored output size: they differ for scales
         * like 0.6 on 4 (onnx's resize_downsample_scales_linear_align_corners) */
        double len = scale * (double)in;
        return len == 1 ? 0.0 : o * (double)(in - 1) / (len - 1);
    }
    case PCU_CT_PYTORCH_HALF_PIXEL: return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case PCU_CT_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)out / (scale * (double)in);
        return (double)in / 2 * (1 - adj) + (o + 0.5) / scale - 0.5;
    }
    default: return (o + 0.5) / scale - 0.5;
    }
}

/* The nearest source index of coordinate x, clamped to [0, in). */
static inline PCU_HD int64_t pcu_rs_nearest(int nearest, double x, int64_t in)
{
    double f;
    switch (nearest) {
    case PCU_NM_ROUND_PREFER_CEIL: f = floor(x + 0.5); break;
    case PCU_NM_FLOOR: f = floor(x); break;
    case PCU_NM_CEIL: f = ceil(x); break;
    default: f = ceil(x - 0.5); break; /* halves go down */
    }
    if (f < 0)
        return 0;
    if (f > (double)(in - 1))
        return in - 1;
    return (int64_t)f;
}

/* quantization parameter layouts (QuantizeLinear/DequantizeLinear) */
enum { PCU_Q_TENSOR, PCU_Q_AXIS, PCU_Q_BLOCK };

/* Index of the scale/zero point of element e of x (row-major): per tensor
 * 0; per axis (e / inner) % axis_len; blocked: the same position with the
 * axis coordinate divided by bs, in a scale whose axis has nblk entries. */
static inline PCU_HD int64_t pcu_q_index(int mode, int64_t inner, int64_t axis_len, int64_t bs,
                                         int64_t nblk, int64_t e)
{
    if (mode == PCU_Q_TENSOR)
        return 0;
    int64_t row = e / inner, a = row % axis_len;
    if (mode == PCU_Q_AXIS)
        return a;
    return ((row / axis_len) * nblk + a / bs) * inner + e % inner;
}

#endif
