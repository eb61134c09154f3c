/* wq.h - what weight_only.c and gptq.c share (internal to lib/quant).
 *
 * Every weight is handled in one canonical layout: W[N][K] in float32, a row
 * per output column (MatMul's B transposed, Gemm's B as stored with transB,
 * an embedding table's rows), blocks of block_size running along K. The
 * result is one unsigned code per weight in [0, 2^bits - 1] with a scale and
 * a code zero point per (row, block): w ~= (code - zp) * scale. Symmetric
 * quantization uses the fixed zero point 2^(bits-1) (signed value code - zp),
 * which is also MatMulNBits's default when it has no zero points input.
 */
#ifndef PARE_QUANT_WQ_H
#define PARE_QUANT_WQ_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "pare/quant.h"
#include "exec/threadpool.h"

typedef enum wq_kind { WQ_MATMUL = 1, WQ_GEMM, WQ_GATHER } wq_kind;

typedef struct wq_target {
    pare_node *node;
    wq_kind kind;
    pare_value *weight;  /* the float initializer */
    pare_value *x;       /* activation (MatMul/Gemm input A); NULL for Gather */
    int64_t N, K, nblk;
    float *w;            /* N*K canonical weights (alpha folded in); owned */
    uint8_t *codes;      /* N*K codes; owned */
    float *scales;       /* N*nblk; owned */
    uint8_t *zps;        /* N*nblk code zero points; owned */
    float alpha;         /* Gemm's alpha, folded into w (MatMulNBits); else 1 */
    bool transB;         /* Gemm's B is stored [N, K] */
    bool gptq;           /* quantized by GPTQ (else RTN) */
    const char *note;    /* why GPTQ fell back to RTN; static string or NULL */
    pare_value *shared[3]; /* once written: QDQ's DequantizeLinear output, or
                              MatMulNBits' B, scales, zero points (NULL when
                              symmetric), for other readers of the same weight */
} wq_target;

/* Scale and code zero point of one block of cnt weights (min/max, zero kept
 * exactly representable). An all-zero block gets scale 1. */
void pare__wq_block_params(const float *w, int64_t cnt, int bits, bool sym, float *scale,
                           uint8_t *zp);

/* Code of w: round half to even of w / scale, plus zp, clamped to [0, 2^bits - 1]. */
static inline uint8_t pare__wq_code(float w, float scale, int zp, int qmax)
{
    float q = rintf(w / scale) + (float)zp;
    if (!(q >= 0.0f)) /* NaN too */
        q = 0.0f;
    if (q > (float)qmax)
        q = (float)qmax;
    return (uint8_t)q;
}

/* Round to nearest of t's W (codes, scales, zps), rows spread over pool (may be NULL). */
void pare__wq_rtn(pare_threadpool *pool, wq_target *t, int bits, int block_size, bool sym);

/* GPTQ state: the Hessians of every target's input from one calibration
 * pass over the float model (run by _prepare before the graph changes);
 * _run quantizes one target (W loaded) with its group's factorization,
 * made at the group's first target and freed with its Hessian after its
 * last. A Hessian that cannot be factored leaves the target to round to
 * nearest, with t->note saying so. */
typedef struct wq_gptq wq_gptq;
pare_status pare__wq_gptq_prepare(pare_model *m, const pare_wq_opts *o, pare_threadpool *pool,
                                  const wq_target *t, size_t n, pare_quant_report *r,
                                  wq_gptq **out, pare_error *err);
pare_status pare__wq_gptq_run(wq_gptq *G, wq_target *t, pare_error *err);
void pare__wq_gptq_free(wq_gptq *G);

#endif
