/* Linear-algebra kernels: Gemm, MatMul, Conv (and com.microsoft FusedConv),
 * ConvTranspose, the pooling family (Max/Average/Lp, their Global forms,
 * MaxUnpool), the normalisations (Batch/Instance/Layer/Group/RMS/Lp
 * normalisation, LRN, MeanVarianceNormalization), Einsum and Det.
 *
 * Floating-point bodies are written once over a compute type T and
 * instantiated for float and double by including kernels_linalg_typed.c once
 * per type; the ops themselves are in kernels_linalg_ops.c. Einsum and the
 * integer MatMul/Gemm also get an int64 instance that computes modulo 2^64.
 * float16 and bfloat16 inputs are converted to float32 and results back
 * (fview and ostage below); any mix of input dtypes (BatchNormalization's
 * T1/T2) goes through the same conversion.
 *
 * Conv (1-D/2-D, float32) runs as a GEMM whose B operand is the implicit
 * im2col matrix packed straight from the image (gemm.c), with the weights
 * packed once at plan time when they are an initializer, the bias added and
 * Relu/Clip (FusedConv) applied in the GEMM's epilogue; depthwise convs have
 * a direct loop; 3-D and wider convs and float64 materialise im2col into
 * scratch.
 */
/* The GEMM core is its own unit; it is compiled here so that the build needs
 * no extra source line (drop this include if gemm.c gets its own). */
#include "gemm.c"

#if defined(__GNUC__) && !defined(__clang__)
/* -O2 (debugoptimized) vectorises only trivially counted loops; the norm and
 * pool loops here are hot enough to want the full vectoriser. Nothing here
 * reads errno, so sqrt need not set it (which lets it vectorise). */
#pragma GCC optimize("O3", "no-math-errno")
#endif

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"
#include "exec/gemm.h"

#define LIN_MAXSP 8 /* spatial dims supported by conv and pooling */
#define LIN_GRAIN 16384

#define LCAT_(a, b) a##b
#define LCAT(a, b) LCAT_(a, b)

static inline int64_t lmin(int64_t a, int64_t b)
{
    return a < b ? a : b;
}
static inline int64_t lmax(int64_t a, int64_t b)
{
    return a > b ? a : b;
}
/* ceil(a / b), b > 0, any sign of a */
static inline int64_t lceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
/* floor(a / b), b > 0 */
static inline int64_t lfloor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* a * b into *out, false on overflow (both >= 0). */
static bool mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return false;
    if (a != 0 && b > INT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static int64_t prod64(int n, const int64_t *d)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

static bool is_fp(int dt)
{
    return dt == PARE_DT_FLOAT || dt == PARE_DT_DOUBLE || dt == PARE_DT_FLOAT16 ||
           dt == PARE_DT_BFLOAT16;
}

static bool is_intmm(int dt)
{
    return dt == PARE_DT_INT32 || dt == PARE_DT_INT64 || dt == PARE_DT_UINT32 ||
           dt == PARE_DT_UINT64;
}

/* float32 for float/float16/bfloat16, float64 for double */
static int ctype_of(int dt)
{
    return dt == PARE_DT_DOUBLE ? PARE_DT_DOUBLE : PARE_DT_FLOAT;
}

static bool want_out(const pare_kctx *k, size_t i)
{
    return i < k->n_out && k->node->outputs[i] != NULL;
}

static pare_status need_in(const pare_kctx *k, size_t i, const char *what, pare_error *err)
{
    if (i >= k->n_in || !k->in[i])
        return pare_error_set(err, PARE_ERR_INVALID, "missing input %zu (%s)", i, what);
    return PARE_OK;
}

static pare_status bad_dtype(int dt, pare_error *err)
{
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "dtype %s not supported", pare_dtype_name(dt));
}

/* ---- dtype staging ------------------------------------------------------- */

/* A tensor's data seen as compute type ct: borrowed when it already is,
 * else a converted copy. */
typedef struct fview {
    const void *p;
    void *own;
} fview;

static pare_status fv_get(const pare_tensor *t, int ct, fview *v, pare_error *err)
{
    v->own = NULL;
    v->p = NULL;
    if (!t)
        return PARE_OK;
    if (t->dtype == ct) {
        v->p = t->data;
        return PARE_OK;
    }
    if (t->dtype == PARE_DT_STRING || !pare_dtype_valid(t->dtype))
        return bad_dtype(t->dtype, err);
    uint64_t n = pare_tensor_numel(t);
    size_t es = pare_elem_size(ct);
    if (n > SIZE_MAX / es)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    v->own = malloc(n ? (size_t)n * es : 1);
    if (!v->own)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (!pare_dtype_convert(ct, v->own, t->dtype, t->data, (size_t)n, false)) {
        free(v->own);
        v->own = NULL;
        return bad_dtype(t->dtype, err);
    }
    v->p = v->own;
    return PARE_OK;
}

static void fv_free(fview *v)
{
    free(v->own);
    v->own = NULL;
}

/* An output computed in type ct and stored as its own dtype. */
typedef struct ostage {
    pare_tensor *t;
    void *p;
    void *own;
    int ct;
} ostage;

static pare_status os_alloc(pare_kctx *k, size_t i, int dtype, int ct, int rank,
                            const int64_t *dims, ostage *o, pare_error *err)
{
    memset(o, 0, sizeof *o);
    o->ct = ct;
    pare_status st = k->alloc_out(k, i, dtype, rank, dims, &o->t, err);
    if (st)
        return st;
    if (dtype == ct) {
        o->p = o->t->data;
        return PARE_OK;
    }
    uint64_t n = pare_tensor_numel(o->t);
    size_t es = pare_elem_size(ct);
    if (n > SIZE_MAX / es)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    o->own = calloc(n ? (size_t)n : 1, es);
    if (!o->own)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    o->p = o->own;
    return PARE_OK;
}

static void os_finish(ostage *o)
{
    if (o->own && o->t)
        pare_dtype_convert(o->t->dtype, o->t->data, o->ct, o->own, (size_t)pare_tensor_numel(o->t),
                           false);
    free(o->own);
    o->own = NULL;
}

static void os_drop(ostage *o)
{
    free(o->own);
    o->own = NULL;
}

static pare_status nomem(pare_error *err)
{
    return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
}

/* ---- job descriptions shared with the typed bodies --------------------- */

enum { POOL_MAX, POOL_AVG, POOL_LP };

typedef struct pool_job {
    int kind, nsp;
    int64_t in[LIN_MAXSP], out[LIN_MAXSP], k[LIN_MAXSP], s[LIN_MAXSP], d[LIN_MAXSP];
    int64_t pb[LIN_MAXSP], pe[LIN_MAXSP];
    int64_t in_plane, out_plane;
    bool count_include_pad;
    int storage_order;
    double p;
    const void *x;
    void *y;
    int64_t *ind; /* MaxPool indices or NULL */
    /* 1-D/2-D fast path: per output column, the valid kernel columns
     * [kxlo, kxhi) and the padded window's column count */
    const int64_t *kxlo, *kxhi, *kxpad;
} pool_job;

typedef struct gpool_job {
    int kind;
    int64_t plane;
    double p;
    const void *x;
    void *y;
} gpool_job;

/* im2col over nsp spatial dims for one image and group */
typedef struct im2col_job {
    int nsp;
    int64_t in[LIN_MAXSP], out[LIN_MAXSP], k[LIN_MAXSP], s[LIN_MAXSP], d[LIN_MAXSP];
    int64_t pb[LIN_MAXSP];
    int64_t kprod, in_plane, out_plane;
    const void *x; /* Cg planes */
    void *col;     /* [Cg*kprod][out_plane] */
} im2col_job;

/* ConvTranspose: col [Mg*kprod][in_plane] scattered into out [Mg][out_plane] */
typedef struct col2im_job {
    int nsp;
    int64_t in[LIN_MAXSP], out[LIN_MAXSP], k[LIN_MAXSP], s[LIN_MAXSP], d[LIN_MAXSP];
    int64_t pb[LIN_MAXSP];
    int64_t kprod, in_plane, out_plane;
    const void *col;
    void *y;
    const void *bias; /* per output channel of this group, or NULL */
} col2im_job;

/* Per-channel affine y = x*a[c] + b[c] over planes (BatchNormalization) */
typedef struct affine_job {
    int64_t C, plane;
    const void *a, *b; /* compute type, C entries (or C*plane when per_elem) */
    bool per_elem;
    const void *x;
    void *y;
} affine_job;

/* Rows of length D normalised (Layer/RMS normalisation) */
typedef struct rows_job {
    int64_t D;
    double eps;
    bool rms;
    const void *x, *scale, *bias; /* scale/bias expanded to D entries */
    void *y;
    float *mean, *inv; /* optional stash outputs (float) */
    const void *dummy;
} rows_job;

/* Instance / group normalisation: groups of `glen` elements, channel-wise affine */
typedef struct group_job {
    int64_t C, G, plane; /* channels, groups per image, spatial size */
    double eps;
    const void *x, *scale, *bias; /* scale/bias per channel (C entries) */
    void *y;
} group_job;

typedef struct lrn_job {
    int64_t C, plane, size;
    double alpha, beta, bias;
    const void *x;
    void *y;
} lrn_job;

typedef struct lpn_job {
    int64_t len, inner;
    int p;
    const void *x;
    void *y;
} lpn_job;

typedef struct bn_train_job {
    int64_t N, C, plane;
    const void *x;
    double *mean, *var; /* per channel */
} bn_train_job;

#define EIN_MAXL 64 /* labels after ellipsis expansion */
#define EIN_MAXIN 8

typedef struct einsum_job {
    int n_in;
    int n_out_l, n_sum_l; /* output labels, summed labels */
    int64_t out_size[EIN_MAXL], sum_size[EIN_MAXL];
    int64_t ostr[EIN_MAXIN][EIN_MAXL]; /* per input stride for each output label */
    int64_t sstr[EIN_MAXIN][EIN_MAXL]; /* per input stride for each summed label */
    const void *x[EIN_MAXIN];
    void *y;
} einsum_job;

typedef struct intgemm_job {
    bool tA, tB;
    int64_t M, N, K, lda, ldb, ldc;
    const int64_t *A, *B;
    int64_t *C;
} intgemm_job;

/* ---- typed bodies ---------------------------------------------------------- */

/* MaxPool of an 8-bit row, kernel width 3, stride 2, dilation 1:
 * y[q] = max(r[2q], r[2q+1], r[2q+2]), 16 outputs at a time (even and odd
 * bytes split by a 16-bit pack); flip 0x80 orders int8 as uint8. Returns
 * how many outputs it wrote (the caller does the rest). */
static int64_t max8_w3s2(const uint8_t *r, uint8_t *y, int64_t nq, uint8_t flip)
{
    int64_t q = 0;
#if GEMM_X86
    const __m128i f = _mm_set1_epi8((char)flip), lo = _mm_set1_epi16(0xff);
    for (; q + 17 <= nq; q += 16) { /* reads r[2q .. 2q+33] <= r[2nq] */
        const uint8_t *p = r + 2 * q;
        __m128i a0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)p), f);
        __m128i a1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 16)), f);
        __m128i b0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 2)), f);
        __m128i b1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 18)), f);
        __m128i ev = _mm_packus_epi16(_mm_and_si128(a0, lo), _mm_and_si128(a1, lo));
        __m128i od = _mm_packus_epi16(_mm_srli_epi16(a0, 8), _mm_srli_epi16(a1, 8));
        __m128i e2 = _mm_packus_epi16(_mm_and_si128(b0, lo), _mm_and_si128(b1, lo));
        __m128i m = _mm_max_epu8(_mm_max_epu8(ev, od), e2);
        _mm_storeu_si128((__m128i *)(void *)(y + q), _mm_xor_si128(m, f));
    }
#else
    (void)r;
    (void)y;
    (void)nq;
    (void)flip;
#endif
    return q;
}

#define S f
#define T float
#define IS_INT 0
#include "kernels_linalg_typed.c"
#define S d
#define T double
#define IS_INT 0
#include "kernels_linalg_typed.c"
#define S i
#define T int64_t
#define IS_INT 1
#include "kernels_linalg_typed.c"
/* MaxPool on 8-bit data (quantized models): the 2-D pooling body only */
#define S u8
#define T uint8_t
#define IS_INT 1
#define POOL8 1
#include "kernels_linalg_typed.c"
#define S s8
#define T int8_t
#define IS_INT 1
#define POOL8 1
#include "kernels_linalg_typed.c"

/* Picks the float or double instance of a typed body by compute type. */
#define BY_CT(ct, name) ((ct) == PARE_DT_DOUBLE ? LCAT(name, _d) : LCAT(name, _f))

#include "kernels_linalg_ops.c"
