/* 8-bit integer GEMM core of the CPU executor, for quantized convolutions
 * and matrix products that run on int8 data instead of dequantizing it.
 *
 *     acc[m, n] = sum_k W[m, k] * (X[k, n] - zx)          (exact, int32)
 *
 * W is int8 (weights, packed once at plan time), X is uint8 (activations;
 * int8 activations are moved to uint8 by adding 128 to the values and to
 * the zero point, which leaves every difference X - zx unchanged). The sum
 * runs as sum_k W X - zx * sum_k W with the row sums of W precomputed: the
 * uint8 x int8 products of AVX-512 VNNI (vpdpbusd, four products per 32-bit
 * lane, 64 per instruction) where the CPU has it, AVX2's 16-bit
 * multiply-adds (vpmaddwd) on CPUs with AVX2 only, plain C loops otherwise.
 * Every partial sum is exact: |W X| <= 128 * 255 and K is far below 2^16.
 *
 * Layouts (both zero-padded to whole blocks, so kernels never test edges):
 *   W packed  [ceil(M / QG_MR)][K4][QG_MR][4] int8, K4 = ceil(K / 4)
 *   X panel   [K4][QG_NR * tiles][4] uint8: 4 consecutive k of one column
 *             are one 32-bit lane, columns of a panel side by side.
 * One microkernel call computes a QG_MR x QG_NR block of int32 sums; it
 * finds each group of four k at its own offset, so that stride-1
 * convolutions read a channel-grouped image in place (pare_qplane)
 * instead of an im2col copy.
 */
#ifndef PARE_EXEC_QGEMM_H
#define PARE_EXEC_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pare/status.h"
#include "exec/threadpool.h"

#define QG_MR 12
#define QG_NR 32
#define QG_PANEL_MAX 256 /* most columns pare_qpack_im2col packs at once */

typedef struct pare_qgemm_w {
    int64_t M, K, K4;
    int8_t *data;     /* packed as above */
    int32_t *rowsum;  /* sum_k W[m, k], M entries */
} pare_qgemm_w;

/* Packs M x K int8 weights; element (m, k) is W[m * sm + k * sk] (a Conv's
 * [M, K] weights: sm = K, sk = 1; a MatMul's [K, N] with rows n: sm = 1,
 * sk = N). PARE_ERR_NOMEM (no message) when memory runs out. */
pare_status pare_qgemm_pack_w(const int8_t *W, int64_t M, int64_t K, int64_t sm, int64_t sk,
                              pare_qgemm_w *out);
void pare_qgemm_w_release(pare_qgemm_w *w);

/* Panel of columns whose values are rows of X: column j is
 * X[(n0 + j) * ldx + k] (XOR flip: 0x80 turns int8 into the uint8 domain,
 * 0 keeps uint8), for j < nn; columns nn .. ncols-1 and k >= K are 0. */
void pare_qpack_rows(const uint8_t *X, int64_t ldx, int64_t n0, int64_t nn, int64_t ncols,
                     int64_t K, uint8_t flip, uint8_t *dst);

/* A 2-D image of one convolution group as the implicit im2col matrix
 * [C * kh * kw, oh * ow]; points outside the image read as `pad` (the
 * activation zero point in the uint8 domain). */
typedef struct pare_qim2col {
    const uint8_t *x; /* c x h x w, in the domain flip gives */
    int64_t c, h, w, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow;
    uint8_t flip, pad;
} pare_qim2col;

/* Panel of columns n0 .. n0+nn-1 of g's im2col matrix in the X panel
 * layout (ncols >= nn columns, the rest 0; nn <= QG_PANEL_MAX): the groups
 * of four rows q0 .. q1-1 of it (0 .. K4 for the whole panel at dst). */
void pare_qpack_im2col(const pare_qim2col *g, int64_t n0, int64_t nn, int64_t ncols, int64_t q0,
                       int64_t q1, uint8_t *dst);

/* The padded image of one convolution group with its channels in groups
 * of four: plane c4 holds, for every pixel of the padded (h + pt + pb) x
 * (w + pl + pr) image, the bytes of channels 4 c4 .. 4 c4 + 3 as one
 * 32-bit lane (padding: `pad`, channels past c: 0), then zero lanes up to
 * `pp` pixels. A stride-1 convolution then reads the im2col row group of
 * tap (ky, kx) and channel group c4 in place: the lanes at pixel
 * v + ky dh Wp + kx dw of plane c4, for "virtual" output columns
 * v = oy Wp + ox (those with ox >= the output width are computed and
 * dropped). */
typedef struct pare_qplane {
    const uint8_t *x; /* c x h x w */
    int64_t c, h, w, pt, pl, pb, pr, pp;
    uint8_t flip, pad;
} pare_qplane;

void pare_qpack_plane(const pare_qplane *g, int64_t c4, uint8_t *dst);

/* acc[r * QG_NR + j] (r < QG_MR, j < QG_NR) = sum over the K4 groups q of
 * the packed weight rows m0 .. m0+QG_MR-1 (m0 a multiple of QG_MR) times
 * the QG_NR lanes at b + off[q] (bytes). Sums without the zero-point
 * term. */
void pare_qgemm_block(const pare_qgemm_w *w, int64_t m0, const uint8_t *b, const int64_t *off,
                      int32_t *acc);
/* off for a packed panel ncols columns wide: off[q] = 4 q ncols */
void pare_qgemm_panel_offsets(int64_t K4, int64_t ncols, int64_t *off);

/* The kernel pare_qgemm_block runs: "avx512vnni", "avx2" or "generic"
 * (all give the same sums). */
const char *pare_qgemm_arch(void);
/* Forces "generic" or (where the CPU has it) "avx2" or "avx512vnni", or
 * "best" (what the CPU has, the default); false when not available. For
 * tests and benchmarks. */
bool pare_qgemm_force_arch(const char *name);

#endif
