/* What lib/cuda/dnn.c lends to other kernels of the backend (quant.c's
 * QLinearConv and fused int8 convolutions): a cuDNN convolution with its
 * descriptor/algorithm cache, driven by shapes rather than node inputs. */
#ifndef PARE_CUDA_DNN_H
#define PARE_CUDA_DNN_H

#include "cuda/cuda_internal.h"

typedef struct pcu_conv pcu_conv;

/* A convolution with node n's Conv attributes (auto_pad, pads, strides,
 * dilations, group, kernel_shape). Free with pcu_conv_free (NULL-safe). */
pare_status pcu_conv_new(const pare_node *n, pcu_conv **out, pare_error *err);
void pcu_conv_free(pcu_conv *c);

/* Readies the convolution of an input of dims xd by a weight of dims wd
 * (both of rank `rank`, 3 to 5) in dtype (float32, float16, bfloat16):
 * descriptors and algorithm, cached. Gives the output dims (rank entries)
 * and the workspace bytes pcu_conv_forward needs. */
pare_status pcu_conv_prepare(pcu_session *ps, pcu_conv *c, int dtype, int rank, const int64_t *xd,
                             const int64_t *wd, int64_t *ydims, size_t *ws_bytes,
                             pare_error *err);
/* Queues y = conv(x, w) (no bias) as readied by the last pcu_conv_prepare,
 * with ws of the bytes it gave (NULL when 0). */
pare_status pcu_conv_forward(pcu_session *ps, pcu_conv *c, const void *x, const void *w, void *y,
                             void *ws, pare_error *err);

/* The backend's plan-time fusion of a Conv node (pare_backend.fuse): see
 * dnn.c. */
pare_status pcu_conv_fuse(pcu_session *ps, const pare_kernel *k, const pare_node *n, void *state,
                          const pare_kfuse *f, pare_error *err);

#endif
