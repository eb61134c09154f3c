/* Host-side geometry and parameter logic of the CUDA dnn and quant kernels
 * (lib/cuda/ops_host.c): what the kernels compute from node attributes and
 * input shapes before they queue device work. Pure C, no CUDA header, so
 * the unit tests (tests/cuda/test_cuda_ops.c) check it without a GPU.
 */
#ifndef PARE_CUDA_OPS_HOST_H
#define PARE_CUDA_OPS_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include "pare/ir.h"
#include "pare/status.h"
#include "cuda/ops_shared.h" /* PCU_CT_*, PCU_NM_*, pcu_rs_coord, pcu_rs_nearest */

#define PCU_MAXSP 3 /* spatial dims of Conv, ConvTranspose and pools on the device */

enum { PCU_PAD_NOTSET, PCU_PAD_SAME_UPPER, PCU_PAD_SAME_LOWER, PCU_PAD_VALID };

/* Attributes of a sliding-window op, read once at plan time. Counts are 0
 * when an attribute is absent. */
typedef struct pcu_win_attrs {
    int auto_pad;
    int nk, ns, nd, np, nop, nos;
    int64_t kernel[PCU_MAXSP], strides[PCU_MAXSP], dil[PCU_MAXSP], pads[2 * PCU_MAXSP];
    int64_t out_pad[PCU_MAXSP], out_shape[PCU_MAXSP + 2]; /* output_shape may include N, C */
    int64_t group;
    bool ceil_mode, count_include_pad;
} pcu_win_attrs;

/* Parses auto_pad, kernel_shape, strides, dilations, pads, output_padding,
 * output_shape, group, ceil_mode, count_include_pad. Fails on a value out
 * of range or more than PCU_MAXSP spatial entries. */
pare_status pcu_win_parse(const pare_node *n, pcu_win_attrs *a, pare_error *err);

/* Geometry of one sliding window op on nsp spatial dims: the effective
 * strides, dilations and kernel, begin/end pads, the output's spatial dims. */
typedef struct pcu_win_geom {
    int nsp;
    int64_t in[PCU_MAXSP], k[PCU_MAXSP], s[PCU_MAXSP], d[PCU_MAXSP];
    int64_t pb[PCU_MAXSP], pe[PCU_MAXSP], out[PCU_MAXSP];
    bool symmetric; /* pb == pe in every dim (what cuDNN takes directly) */
} pcu_win_geom;

/* Conv and pools: in (nsp dims) and kernel (nsp dims, from kernel_shape or
 * the weight) to the output dims, as the ONNX spec (auto_pad SAME_UPPER
 * puts the odd pad at the end, SAME_LOWER at the start; ceil_mode drops a
 * last window that would start in the end padding). */
pare_status pcu_win_geom_make(const pcu_win_attrs *a, int nsp, const int64_t *in,
                              const int64_t *kernel, bool ceil_mode, pcu_win_geom *g,
                              pare_error *err);

/* ConvTranspose: output dims from output_shape or SAME auto_pad (then the
 * pads split total = s*(in-1) + op + (k-1)*d + 1 - out, the odd one at the
 * end for SAME_UPPER, at the start otherwise; negative when the output is
 * larger) or from pads; g->pb/pe are the crop of the full result
 * full[i] = (in-1)*s + (k-1)*d + 1, so out = full + op - pb - pe. */
pare_status pcu_convt_geom_make(const pcu_win_attrs *a, int nsp, const int64_t *in,
                                const int64_t *kernel, pcu_win_geom *g, pare_error *err);

/* ------------------------------------------------------------------ */
/* Resize                                                              */

enum { PCU_RS_NEAREST, PCU_RS_LINEAR };
typedef struct pcu_resize_attrs {
    int mode, coord, nearest;
    bool has_scales, has_sizes; /* which of the two the node gives */
    bool dynamic;               /* computed by the graph: read at run time (pcu_resize_values) */
    int rank;                   /* entries of scales or sizes (4) */
    double scales[4];
    int64_t sizes[4];
} pcu_resize_attrs;

/* Reads Resize's attributes and its scales/sizes initializers (opset 11+:
 * inputs 2 and 3; opset 10: input 1). Returns false with a reason when the
 * device kernel does not serve the node: modes other than nearest/linear,
 * coordinate modes other than the five above, cubic, antialias, axes,
 * keep_aspect_ratio_policy other than stretch, exclude_outside, a roi
 * input used by tf_crop_and_resize, constant scales/sizes not of 4 entries
 * with N and C kept. Scales or sizes that the graph computes (upsampling
 * by a size taken from another tensor's shape) are read at run time:
 * r->dynamic. */
bool pcu_resize_parse(const pare_node *n, int64_t opset, pcu_resize_attrs *r, char *why,
                      size_t why_size);

/* Sets r's scales (has_scales) or sizes from count values, checked as
 * pcu_resize_parse checks constants: 4 of them, scales keep N and C and
 * are positive. PARE_ERR_UNSUPPORTED with the reason in err otherwise. */
pare_status pcu_resize_values(pcu_resize_attrs *r, const double *v, int count, pare_error *err);

/* Per spatial axis (H then W) of an NCHW input: output size and the scale
 * the coordinate transform divides by (ONNX: the given scale, or out/in
 * when sizes were given). */
typedef struct pcu_resize_geom {
    int64_t out[4];
    double scale[2];
} pcu_resize_geom;

pare_status pcu_resize_geom_make(const pcu_resize_attrs *r, const int64_t *in_dims,
                                 pcu_resize_geom *g, pare_error *err);


/* ------------------------------------------------------------------ */
/* quantization parameter layout                                       */

/* A quantization layout (PCU_Q_*, ops_shared.h) of x against its scale. */
typedef struct pcu_qlayout {
    int mode;
    int64_t n, axis_len, inner, bs, nblk;
} pcu_qlayout;

pare_status pcu_qlayout_make(int xrank, const int64_t *xdims, int srank, const int64_t *sdims,
                             int64_t axis, int64_t block_size, pcu_qlayout *L, pare_error *err);
int64_t pcu_qlayout_index(const pcu_qlayout *L, int64_t e);

/* ------------------------------------------------------------------ */
/* batched integer matmul shapes (numpy matmul semantics)              */

#define PCU_MM_MAXB_HOST 6 /* broadcast batch dims the device kernel takes */

typedef struct pcu_mm_geom {
    int64_t M, N, K, batch, a_batches, b_batches;
    int rank;                       /* output rank */
    int64_t dims[PARE_MAX_RANK];    /* output dims */
    int nb;                         /* broadcast batch dims */
    int64_t bdims[PCU_MM_MAXB_HOST]; /* their sizes */
    int64_t sa[PCU_MM_MAXB_HOST], sb[PCU_MM_MAXB_HOST]; /* matrix-index strides of A and B */
} pcu_mm_geom;

/* Shapes of A (ar dims) times B (br dims): 1-D operands promoted as numpy
 * does, batch dims broadcast. Fails on mismatched inner dims, batch dims
 * that do not broadcast, or more than PCU_MM_MAXB_HOST batch dims. */
pare_status pcu_mm_geom_make(int ar, const int64_t *ad, int br, const int64_t *bd,
                             pcu_mm_geom *g, pare_error *err);
/* Layout of a zero point or scale of n elements along len rows (columns)
 * of an operand with `batches` matrices: 0 scalar, 1 per row, 2 per matrix
 * row; -1 when n fits none. */
int pcu_mm_param_kind(int64_t n, int64_t len, int64_t batches);

/* ------------------------------------------------------------------ */
/* algorithm caches                                                    */

/* Key of a cuDNN descriptor/algorithm cache entry: the input and weight
 * shapes and the compute dtype. Two keys are equal when every field is. */
typedef struct pcu_conv_key {
    int dtype;
    int xrank, wrank;
    int64_t x[2 + PCU_MAXSP], w[2 + PCU_MAXSP];
    bool tf32;
} pcu_conv_key;

void pcu_conv_key_make(int dtype, int xrank, const int64_t *xd, int wrank, const int64_t *wd,
                       bool tf32, pcu_conv_key *key);
bool pcu_conv_key_eq(const pcu_conv_key *a, const pcu_conv_key *b);

#endif
