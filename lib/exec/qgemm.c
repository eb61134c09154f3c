/* 8-bit integer GEMM core: packing and microkernels (see qgemm.h). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <stdlib.h>
#include <string.h>
#include "exec/qgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QG_X86 1
#include <immintrin.h>
#else
#define QG_X86 0
#endif

/* ---- packing ---------------------------------------------------------- */

pare_status pare_qgemm_pack_w(const int8_t *W, int64_t M, int64_t K, int64_t sm, int64_t sk,
                              pare_qgemm_w *out)
{
    memset(out, 0, sizeof *out);
    if (M < 1 || K < 1)
        return PARE_ERR_INVALID;
    int64_t K4 = (K + 3) / 4, MB = (M + QG_MR - 1) / QG_MR;
    size_t bytes = (size_t)MB * (size_t)K4 * QG_MR * 4;
    int8_t *d = aligned_alloc(64, (bytes + 63) / 64 * 64);
    int32_t *rs = malloc((size_t)M * sizeof *rs);
    if (!d || !rs) {
        free(d);
        free(rs);
        return PARE_ERR_NOMEM;
    }
    memset(d, 0, bytes);
    for (int64_t m = 0; m < M; m++) {
        int8_t *blk = d + (m / QG_MR) * K4 * QG_MR * 4 + (m % QG_MR) * 4;
        int32_t s = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t v = W[m * sm + k * sk];
            blk[(k / 4) * QG_MR * 4 + (k % 4)] = v;
            s += v;
        }
        rs[m] = s;
    }
    out->M = M;
    out->K = K;
    out->K4 = K4;
    out->data = d;
    out->rowsum = rs;
    return PARE_OK;
}

void pare_qgemm_w_release(pare_qgemm_w *w)
{
    if (!w)
        return;
    free(w->data);
    free(w->rowsum);
    memset(w, 0, sizeof *w);
}

void pare_qpack_rows(const uint8_t *X, int64_t ldx, int64_t n0, int64_t nn, int64_t ncols,
                     int64_t K, uint8_t flip, uint8_t *dst)
{
    int64_t K4 = (K + 3) / 4, Kf = K / 4;
    for (int64_t j = 0; j < ncols; j++) {
        uint8_t *d = dst + j * 4;
        if (j >= nn) {
            for (int64_t g = 0; g < K4; g++)
                memset(d + g * ncols * 4, 0, 4);
            continue;
        }
        const uint8_t *x = X + (n0 + j) * ldx;
        uint32_t fl = flip * 0x01010101u;
        for (int64_t g = 0; g < Kf; g++) {
            uint32_t v;
            memcpy(&v, x + 4 * g, 4);
            v ^= fl;
            memcpy(d + g * ncols * 4, &v, 4);
        }
        if (Kf < K4) {
            uint8_t t[4] = {0, 0, 0, 0};
            for (int64_t k = 4 * Kf; k < K; k++)
                t[k - 4 * Kf] = x[k] ^ flip;
            memcpy(d + Kf * ncols * 4, t, 4);
        }
    }
}

/* Row k = (c, ky, kx) of the im2col matrix over columns n0 .. n0+nn-1,
 * contiguous and in x's own domain (padding reads pad ^ flip): x itself
 * when the row is a slice of it (1x1, stride 1, no padding), else built in
 * tmp. */
static const uint8_t *im2col_row(const pare_qim2col *g, int64_t k, int64_t n0, int64_t nn,
                                 uint8_t *tmp)
{
    int64_t c = k / (g->kh * g->kw), r = k % (g->kh * g->kw);
    int64_t ky = r / g->kw, kx = r % g->kw;
    const uint8_t *xc = g->x + c * g->h * g->w;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
        g->oh == g->h && g->ow == g->w)
        return xc + n0;
    uint8_t pad = g->pad ^ g->flip;
    int64_t oy = n0 / g->ow, ox = n0 % g->ow;
    int64_t j = 0;
    while (j < nn) {
        int64_t run = g->ow - ox < nn - j ? g->ow - ox : nn - j; /* to the row's end */
        int64_t iy = oy * g->sh - g->ph + ky * g->dh;
        uint8_t *d = tmp + j;
        if (iy < 0 || iy >= g->h) {
            memset(d, pad, (size_t)run);
        } else {
            const uint8_t *xr = xc + iy * g->w;
            int64_t ix = ox * g->sw - g->pw + kx * g->dw;
            /* valid t: 0 <= ix + t sw < w */
            int64_t t = 0, lead = ix < 0 ? (-ix + g->sw - 1) / g->sw : 0,
                    end = ix < g->w ? (g->w - 1 - ix) / g->sw + 1 : 0;
            if (lead > run)
                lead = run;
            if (end > run)
                end = run;
            for (; t < lead; t++)
                d[t] = pad;
            if (g->sw == 1 && end - t >= 32) {
                memcpy(d + t, xr + ix + t, (size_t)(end - t));
                t = end;
            }
            for (; t < end; t++)
                d[t] = xr[ix + t * g->sw];
            for (; t < run; t++)
                d[t] = pad;
        }
        j += run;
        ox = 0;
        oy++;
    }
    return tmp;
}

/* dst[4 j + i] = rows[i][j] ^ flip for j < nn (a NULL row: 0): four rows
 * into 32-bit lanes */
static void interleave4(const uint8_t *const rows[4], int64_t nn, uint8_t flip, uint8_t *dst)
{
    int64_t j = 0;
#if QG_X86
    __m128i f = _mm_set1_epi8((char)flip), v[4];
    for (; j + 16 <= nn; j += 16) {
        for (int i = 0; i < 4; i++)
            v[i] = rows[i] ? _mm_xor_si128(
                                 _mm_loadu_si128((const __m128i *)(const void *)(rows[i] + j)), f)
                           : _mm_setzero_si128();
        __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
        __m128i cd0 = _mm_unpacklo_epi8(v[2], v[3]), cd1 = _mm_unpackhi_epi8(v[2], v[3]);
        uint8_t *o = dst + 4 * j;
        _mm_storeu_si128((__m128i *)(void *)o, _mm_unpacklo_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(void *)(o + 16), _mm_unpackhi_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(void *)(o + 32), _mm_unpacklo_epi16(ab1, cd1));
        _mm_storeu_si128((__m128i *)(void *)(o + 48), _mm_unpackhi_epi16(ab1, cd1));
    }
#endif
    for (; j < nn; j++)
        for (int i = 0; i < 4; i++)
            dst[4 * j + i] = rows[i] ? rows[i][j] ^ flip : 0;
}

void pare_qpack_im2col(const pare_qim2col *g, int64_t n0, int64_t nn, int64_t ncols, int64_t q0,
                       int64_t q1, uint8_t *dst)
{
    int64_t K = g->c * g->kh * g->kw;
    uint8_t tmp[4][QG_PANEL_MAX];
    for (int64_t q = q0; q < q1; q++) {
        uint8_t *row = dst + q * ncols * 4;
        const uint8_t *rows[4];
        for (int i = 0; i < 4; i++) {
            int64_t k = 4 * q + i;
            rows[i] = k < K ? im2col_row(g, k, n0, nn, tmp[i]) : NULL;
        }
        interleave4(rows, nn, g->flip, row);
        if (nn < ncols)
            memset(row + nn * 4, 0, (size_t)(ncols - nn) * 4);
    }
}

void pare_qpack_plane(const pare_qplane *g, int64_t c4, uint8_t *dst)
{
    int64_t Hp = g->h + g->pt + g->pb, Wp = g->w + g->pl + g->pr;
    const uint8_t *rows[4];
    uint32_t padv = g->pad * 0x01010101u;
    uint8_t *d = dst;
    for (int64_t py = 0; py < Hp; py++) {
        int64_t iy = py - g->pt;
        if (iy < 0 || iy >= g->h) {
            for (int64_t px = 0; px < Wp; px++, d += 4)
                memcpy(d, &padv, 4);
            continue;
        }
        for (int64_t px = 0; px < g->pl; px++, d += 4)
            memcpy(d, &padv, 4);
        for (int i = 0; i < 4; i++) {
            int64_t c = 4 * c4 + i;
            rows[i] = c < g->c ? g->x + (c * g->h + iy) * g->w : NULL;
        }
        interleave4(rows, g->w, g->flip, d);
        d += 4 * g->w;
        for (int64_t px = 0; px < g->pr; px++, d += 4)
            memcpy(d, &padv, 4);
    }
    memset(d, 0, (size_t)(g->pp - Hp * Wp) * 4);
}

/* ---- microkernels ------------------------------------------------------ */

/* B group q (QG_NR lanes of 4 bytes) at b + off[q] */
typedef void (*qg_ukr)(const int8_t *a, const uint8_t *b, const int64_t *off, int64_t K4,
                       int32_t *acc);

static void ukr_generic(const int8_t *a, const uint8_t *b, const int64_t *off, int64_t K4,
                        int32_t *acc)
{
    int32_t c[QG_MR][QG_NR];
    memset(c, 0, sizeof c);
    for (int64_t q = 0; q < K4; q++) {
        const int8_t *aq = a + q * QG_MR * 4;
        const uint8_t *bq = b + off[q];
        for (int r = 0; r < QG_MR; r++) {
            int32_t a0 = aq[4 * r], a1 = aq[4 * r + 1], a2 = aq[4 * r + 2], a3 = aq[4 * r + 3];
            for (int j = 0; j < QG_NR; j++)
                c[r][j] += a0 * bq[4 * j] + a1 * bq[4 * j + 1] + a2 * bq[4 * j + 2] +
                           a3 * bq[4 * j + 3];
        }
    }
    memcpy(acc, c, sizeof c);
}

#if QG_X86
__attribute__((target("avx512f,avx512vnni"))) static void
ukr_vnni(const int8_t *a, const uint8_t *b, const int64_t *off, int64_t K4, int32_t *acc)
{
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
            c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00,
            ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (int64_t q = 0; q < K4; q++) {
        const uint8_t *bq = b + off[q];
        __m512i b0 = _mm512_loadu_si512((const void *)bq),
                b1 = _mm512_loadu_si512((const void *)(bq + 64));
        const int32_t *aw = (const int32_t *)(const void *)a;
        __m512i w;
#define QG_ROW(r, x0, x1)                                                                      \
    w = _mm512_set1_epi32(aw[r]);                                                               \
    x0 = _mm512_dpbusd_epi32(x0, b0, w);                                                        \
    x1 = _mm512_dpbusd_epi32(x1, b1, w);
        QG_ROW(0, c00, c01)
        QG_ROW(1, c10, c11)
        QG_ROW(2, c20, c21)
        QG_ROW(3, c30, c31)
        QG_ROW(4, c40, c41)
        QG_ROW(5, c50, c51)
        QG_ROW(6, c60, c61)
        QG_ROW(7, c70, c71)
        QG_ROW(8, c80, c81)
        QG_ROW(9, c90, c91)
        QG_ROW(10, ca0, ca1)
        QG_ROW(11, cb0, cb1)
#undef QG_ROW
        a += QG_MR * 4;
    }
#define QG_ST(r, x0, x1)                                                                       \
    _mm512_storeu_si512((void *)(acc + (r) * QG_NR), x0);                                       \
    _mm512_storeu_si512((void *)(acc + (r) * QG_NR + 16), x1);
    QG_ST(0, c00, c01)
    QG_ST(1, c10, c11)
    QG_ST(2, c20, c21)
    QG_ST(3, c30, c31)
    QG_ST(4, c40, c41)
    QG_ST(5, c50, c51)
    QG_ST(6, c60, c61)
    QG_ST(7, c70, c71)
    QG_ST(8, c80, c81)
    QG_ST(9, c90, c91)
    QG_ST(10, ca0, ca1)
    QG_ST(11, cb0, cb1)
#undef QG_ST
}
#endif

#if QG_X86
/* AVX2 (no 8-bit dot product): the same exact sums through 16 bits.
 * Four k of one column widen to four int16 (vpmovzxbw), the row's four
 * weights, widened once per call, are broadcast as one 64-bit lane, and
 * vpmaddwd adds the products in pairs into int32: each column keeps two
 * partial sums, added at the end (vphaddd). 4 rows x 8 columns of such
 * pairs a pass (6 rows spilled accumulators with gcc 12 and ran 14 %
 * slower: 45 against 52 GMAC/s on one Zen core), so the 12 x 32 block runs
 * as 12 passes over its depth, K in chunks of QG_AVX2_CH groups (the
 * widened weights of a chunk stay in L1). */
#define QG_AVX2_CH 64

__attribute__((target("avx2"))) static void
ukr_avx2(const int8_t *a, const uint8_t *b, const int64_t *off, int64_t K4, int32_t *acc)
{
    int16_t w16[QG_AVX2_CH * QG_MR * 4] __attribute__((aligned(32)));
    memset(acc, 0, QG_MR * QG_NR * sizeof *acc);
    for (int64_t q0 = 0; q0 < K4; q0 += QG_AVX2_CH) {
        int64_t nq = K4 - q0 < QG_AVX2_CH ? K4 - q0 : QG_AVX2_CH;
        const int8_t *aq = a + q0 * QG_MR * 4;
        for (int64_t i = 0; i < nq * QG_MR * 4; i += 16) /* 48 bytes a group */
            _mm256_store_si256((__m256i *)(void *)(w16 + i),
                               _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(aq + i))));
        for (int r0 = 0; r0 < QG_MR; r0 += 4)
            for (int c0 = 0; c0 < QG_NR; c0 += 8) {
                __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00,
                        s20 = s00, s21 = s00, s30 = s00, s31 = s00;
                for (int64_t q = 0; q < nq; q++) {
                    const uint8_t *bq = b + off[q0 + q] + c0 * 4;
                    __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)bq)),
                            b1 = _mm256_cvtepu8_epi16(
                                _mm_loadu_si128((const __m128i *)(bq + 16)));
                    const int16_t *wq = w16 + (q * QG_MR + r0) * 4;
                    __m256i w;
#define QG_ROW2(r, x0, x1)                                                                     \
    w = _mm256_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(wq + 4 * (r)))); \
    x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(b0, w));                                        \
    x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(b1, w));
                    QG_ROW2(0, s00, s01)
                    QG_ROW2(1, s10, s11)
                    QG_ROW2(2, s20, s21)
                    QG_ROW2(3, s30, s31)
#undef QG_ROW2
                }
                /* pairs to column sums: hadd gives columns 0 1 4 5 | 2 3 6 7 */
#define QG_ST2(r, x0, x1)                                                                      \
    {                                                                                           \
        int32_t *d = acc + (r0 + (r)) * QG_NR + c0;                                             \
        __m256i h = _mm256_permute4x64_epi64(_mm256_hadd_epi32(x0, x1), 0xD8);                  \
        _mm256_storeu_si256((__m256i *)(void *)d,                                               \
                            _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(void *)d), h)); \
    }
                QG_ST2(0, s00, s01)
                QG_ST2(1, s10, s11)
                QG_ST2(2, s20, s21)
                QG_ST2(3, s30, s31)
#undef QG_ST2
            }
    }
}
#endif

static qg_ukr ukr_cur;
static const char *ukr_name;

static void arch_pick(void)
{
    if (ukr_cur)
        return;
#if QG_X86
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) {
        ukr_name = "avx512vnni";
        ukr_cur = ukr_vnni;
        return;
    }
    if (__builtin_cpu_supports("avx2")) {
        ukr_name = "avx2";
        ukr_cur = ukr_avx2;
        return;
    }
#endif
    ukr_name = "generic";
    ukr_cur = ukr_generic;
}

const char *pare_qgemm_arch(void)
{
    arch_pick();
    return ukr_name;
}

bool pare_qgemm_force_arch(const char *name)
{
    arch_pick();
    if (!strcmp(name, "best")) {
        ukr_cur = NULL;
        arch_pick();
        return true;
    }
    if (!strcmp(name, "generic")) {
        ukr_cur = ukr_generic;
        ukr_name = "generic";
        return true;
    }
#if QG_X86
    if (!strcmp(name, "avx512vnni") && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vnni")) {
        ukr_cur = ukr_vnni;
        ukr_name = "avx512vnni";
        return true;
    }
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2")) {
        ukr_cur = ukr_avx2;
        ukr_name = "avx2";
        return true;
    }
#endif
    return false;
}

void pare_qgemm_block(const pare_qgemm_w *w, int64_t m0, const uint8_t *b, const int64_t *off,
                      int32_t *acc)
{
    arch_pick();
    const int8_t *a = w->data + (m0 / QG_MR) * w->K4 * QG_MR * 4;
    ukr_cur(a, b, off, w->K4, acc);
}

void pare_qgemm_panel_offsets(int64_t K4, int64_t ncols, int64_t *off)
{
    for (int64_t q = 0; q < K4; q++)
        off[q] = q * ncols * 4;
}
