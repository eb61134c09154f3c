/* The host-side half of the fused QDQ kernels (qfused_plan.c): what the
 * CUDA backend's fuse_qdq (qfused.c) derives from the CPU's pare_qdq_geom /
 * pare_qdq_bn before it uploads anything. No CUDA call: these are also
 * built with the stand-in CUDA headers of tests/cuda/emu, where the
 * kernels of qfused.cu run on the CPU against the CPU's own kernels. */
#ifndef PARE_CUDA_QFUSED_PLAN_H
#define PARE_CUDA_QFUSED_PLAN_H

#include "exec/kernel.h"
#include "cuda/qfused_cu.h"

/* The row tile for Mg rows per group;
 * the weights packed [group][Mpad][Kp] (zeros past Mg and K) and per output
 * channel zc * rowsum (a Conv's k tap-major: tap * Cg + channel); the Conv
 * k table (channel, ky * dh, kx * dw); the
 * Add's parameters. */
int pcu_qdq_bm(int64_t Mg);
pare_status pcu_qdq_pack(const pare_qdq_geom *G, const int8_t *w, int bm, int8_t **packed,
                         int32_t **corr, int64_t *Kp, int64_t *Mpad);
pare_status pcu_qdq_ktab(const pare_qdq_geom *G, int32_t **tab);
/* the kernel's arguments for an input of xdt, xrank, xdims (all but the
 * tile, the packed sizes and the device pointers) and the output's dims */
pare_status pcu_qdq_args(const pare_qdq_geom *G, int xdt, int xrank, const int64_t *xdims,
                         pcu_qgemm *a, int64_t *ydims, pare_error *err);
pare_status pcu_qdq_add_params(const pare_kqdq *d, pcu_qadd *A);
/* the BatchNormalization kernel's scalars from the CPU's derivation (a and
 * b are the caller's to upload) */
void pcu_qdq_bn_params(const pare_qdq_bn *B, pcu_qbn *p);

#endif
