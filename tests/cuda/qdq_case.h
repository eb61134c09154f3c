/* One fused QDQ Conv or MatMul for the CUDA tests, described as the
 * executor hands it to a backend (pare_kqdq, pare_qdq_geom), with random
 * 8-bit input and the expected output from the direct sum over
 * (x - zx) w and the CPU's epilogue. Shared by test_cuda_ops (the kernel's
 * per-element functions around a plain loop) and test_cuda_emu (the kernel
 * itself, thread by thread on the CPU). */
#ifndef PARE_TESTS_CUDA_QDQ_CASE_H
#define PARE_TESTS_CUDA_QDQ_CASE_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/model.h"
#include "cuda/qfused_plan.h"

typedef struct qdq_shape {
    bool matmul;     /* MatMul of x [rows, cg] by w [cg, mg]; else a Conv */
    int xdt;         /* PARE_DT_UINT8 or PARE_DT_INT8 */
    bool fout, relu; /* float output (no QuantizeLinear); a Relu before it */
    int64_t group;   /* Conv groups */
    int64_t cg;      /* Conv: input channels per group; MatMul: K */
    int64_t mg;      /* Conv: output channels per group; MatMul: M */
    int64_t n, h, w; /* Conv input: images and size (3 x 2 kernel, strides 2, 1,
                      * dilations 2, 2, pads 1, 0, 2, 1) */
    int64_t rows;    /* MatMul: rows of x */
} qdq_shape;

typedef struct qdq_case {
    qdq_shape s;
    pare_model *m;
    pare_tensor *ts[7];
    pare_kqdq d;
    pare_qdq_geom G;
    int xrank;
    int64_t xdims[4], ydims[4], nx, ny;
    size_t esz;   /* bytes per output element */
    uint8_t *x;   /* the input, nx bytes */
    void *want;   /* the expected output, ny elements */
    int32_t zx;
} qdq_case;

void qdq_case_make(qdq_case *c, const qdq_shape *s);
/* the kernel's arguments for row tile bm: weights packed (a->w), the
 * corrections (a->corr), the Conv k table (a->ktab), all malloc'd */
void qdq_case_args(const qdq_case *c, int bm, pcu_qgemm *a);
void qdq_case_args_free(pcu_qgemm *a);
void qdq_case_free(qdq_case *c);
/* how many adjacent expected outputs differ: a case where every output
 * saturates tests little */
int64_t qdq_case_distinct(const qdq_case *c);

#endif
