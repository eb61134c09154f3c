/* Shape, data-movement and reduction kernels.
 *
 * Data-movement ops (Transpose, Slice, Concat, Gather, Pad, ...) work on any
 * dtype by element size: a STRING element is a pare_string that is first
 * copied shallowly and then given its own bytes (sh_dup_strings), since each
 * output owns its strings. The packed 4-bit types go through a wrapper that
 * unpacks inputs to one byte an element and packs the outputs afterwards.
 * Numeric ops expand one body per op over the dtype list SH_NUM_TYPES.
 *
 * The family is split over several files included below:
 *   kernels_shape_move.c    Constant, Shape, Reshape, Transpose, Concat, Split, Slice,
 *                           Expand, Tile, Pad, DepthToSpace, ...
 *   kernels_shape_index.c   Gather*, Scatter*, OneHot, NonZero, Compress, Unique, ...
 *   kernels_shape_reduce.c  Reduce*, ArgMax/ArgMin, TopK, CumSum
 *   kernels_shape_resize.c  Resize, Upsample, GridSample, Col2Im, CenterCropPad
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"
#include "internal.h" /* the AttributeProto behind a sparse_value */
#include "pare/dtype.h"

#define SH_GRAIN 16384

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static const pare_tensor *sh_in(const pare_kctx *k, size_t i)
{
    return i < k->n_in ? k->in[i] : NULL;
}

static int64_t sh_numel(const pare_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

static int64_t sh_prod(const int64_t *d, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= d[i];
    return n;
}

static bool sh_is4(int dtype)
{
    return dtype == PARE_DT_INT4 || dtype == PARE_DT_UINT4 || dtype == PARE_DT_FLOAT4E2M1;
}

/* Bytes an element occupies for data movement (4-bit types are unpacked first). */
static size_t sh_esize(int dtype)
{
    if (dtype == PARE_DT_STRING)
        return sizeof(pare_string);
    int bits = pare_dtype_bits(dtype);
    return bits >= 8 ? (size_t)bits / 8 : 1;
}

static void sh_memcpy(void *d, const void *s, size_t n)
{
    if (n)
        memcpy(d, s, n);
}

static const char *sh_dims(int rank, const int64_t *dims, char *buf, size_t size)
{
    if (rank == 0) {
        snprintf(buf, size, "[]");
        return buf;
    }
    return pare_dims_str(rank, dims, buf, size);
}

static bool sh_is_index_type(int dtype)
{
    return dtype == PARE_DT_INT32 || dtype == PARE_DT_INT64;
}

/* Element i of an int32/int64 buffer (memcpy: initializers may be unaligned). */
static inline int64_t sh_idx(const void *p, bool is64, int64_t i)
{
    if (is64) {
        int64_t v;
        memcpy(&v, (const char *)p + i * 8, 8);
        return v;
    }
    int32_t v;
    memcpy(&v, (const char *)p + i * 4, 4);
    return v;
}

/* Reads a 1-D (or scalar) int32/int64 tensor into vals (at most max). */
static pare_status sh_ints(const pare_tensor *t, int64_t *vals, int64_t max, int64_t *n,
                           const char *what, pare_error *err)
{
    if (!sh_is_index_type(t->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "%s must be int32 or int64, not %s", what,
                              pare_dtype_name(t->dtype));
    if (t->rank > 1)
        return pare_error_set(err, PARE_ERR_INVALID, "%s must be 1-D, got rank %d", what,
                              t->rank);
    int64_t cnt = sh_numel(t);
    if (cnt > max)
        return pare_error_set(err, PARE_ERR_INVALID, "%s has %lld values, at most %lld allowed",
                              what, (long long)cnt, (long long)max);
    for (int64_t i = 0; i < cnt; i++)
        vals[i] = sh_idx(t->data, t->dtype == PARE_DT_INT64, i);
    *n = cnt;
    return PARE_OK;
}

/* A scalar (or one-element) tensor of any numeric dtype as double. */
static pare_status sh_scalar_f64(const pare_tensor *t, double *v, const char *what,
                                 pare_error *err)
{
    *v = 0;
    if (sh_numel(t) != 1 || t->dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_INVALID, "%s must be a numeric scalar", what);
    *v = pare_dtype_get_f64(t->dtype, t->data, 0);
    return PARE_OK;
}

static pare_status sh_scalar_i64(const pare_tensor *t, int64_t *v, const char *what,
                                 pare_error *err)
{
    *v = 0;
    if (sh_numel(t) != 1)
        return pare_error_set(err, PARE_ERR_INVALID, "%s must be a scalar", what);
    if (sh_is_index_type(t->dtype)) {
        *v = sh_idx(t->data, t->dtype == PARE_DT_INT64, 0);
        return PARE_OK;
    }
    if (t->dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_INVALID, "%s must be numeric", what);
    double d = pare_dtype_get_f64(t->dtype, t->data, 0);
    if (!(d >= -9.2e18 && d <= 9.2e18))
        return pare_error_set(err, PARE_ERR_INVALID, "%s %g is out of range", what, d);
    *v = (int64_t)d;
    return PARE_OK;
}

static pare_status sh_axis(int64_t axis, int rank, int *out, const char *what, pare_error *err)
{
    *out = 0;
    if (axis < -(int64_t)rank || axis >= rank)
        return pare_error_set(err, PARE_ERR_INVALID, "%s %lld out of range [%d, %d)", what,
                              (long long)axis, -rank, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PARE_OK;
}

static pare_status sh_missing(pare_error *err)
{
    return pare_error_set(err, PARE_ERR_INVALID, "missing required input 0");
}

static pare_status sh_index_error(int64_t v, int64_t dim, pare_error *err)
{
    return pare_error_set(err, PARE_ERR_INVALID, "index %lld out of range [%lld, %lld)",
                          (long long)v, (long long)-dim, (long long)dim);
}

/* Allocates output i after checking that its element count does not overflow. */
static pare_status sh_alloc(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                            pare_tensor **out, pare_error *err)
{
    uint64_t n;
    int64_t one = 1;
    if (rank < 0 || rank > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "output rank %d exceeds %d", rank,
                              PARE_MAX_RANK);
    if (pare_shape_numel(rank, dims, &n, err) != PARE_OK)
        return err ? err->status : PARE_ERR_LIMIT;
    if (n > (uint64_t)INT64_MAX / 16)
        return pare_error_set(err, PARE_ERR_LIMIT, "output of %llu elements is too large",
                              (unsigned long long)n);
    return k->alloc_out(k, i, dtype, rank, rank ? dims : &one, out, err);
}

/* Gives each of the n strings its own copy of the bytes it points to now. On
 * failure the entries not yet copied are cleared so the tensor frees cleanly. */
static pare_status sh_dup_strings(pare_string *s, int64_t n, pare_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        size_t len = s[i].len;
        char *p = malloc(len + 1);
        if (!p) {
            for (int64_t j = i; j < n; j++)
                s[j].data = NULL, s[j].len = 0;
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory copying strings");
        }
        if (len)
            memcpy(p, s[i].data, len);
        p[len] = 0;
        s[i].data = p;
    }
    return PARE_OK;
}

/* After a shallow move into out: deep-copies its strings if it is a STRING tensor. */
static pare_status sh_finish(pare_tensor *out, pare_error *err)
{
    if (out->dtype != PARE_DT_STRING)
        return PARE_OK;
    return sh_dup_strings(out->data, (int64_t)(out->nbytes / sizeof(pare_string)), err);
}

/* Copies t whole into output i with the given dims (Reshape and friends). */
static pare_status sh_copy_as(pare_kctx *k, size_t i, const pare_tensor *t, int rank,
                              const int64_t *dims, pare_error *err)
{
    pare_tensor *o;
    pare_status st = sh_alloc(k, i, t->dtype, rank, dims, &o, err);
    if (st)
        return st;
    if (o->nbytes != t->nbytes)
        return pare_error_set(err, PARE_ERR_INVALID, "internal: size mismatch copying %s",
                              pare_dtype_name(t->dtype));
    sh_memcpy(o->data, t->data, t->nbytes);
    return sh_finish(o, err);
}

/* Data of t at its natural alignment: t->data, or an aligned copy in *tmp (freed by the
 * caller) when a model file left it unaligned. */
static const void *sh_aligned(const pare_tensor *t, void **tmp, pare_error *err)
{
    size_t a = sh_esize(t->dtype);
    if (a > 8)
        a = 8;
    *tmp = NULL;
    if (a <= 1 || ((uintptr_t)t->data % a) == 0)
        return t->data;
    *tmp = malloc(t->nbytes ? t->nbytes : 1);
    if (!*tmp) {
        pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    sh_memcpy(*tmp, t->data, t->nbytes);
    return *tmp;
}

/* ------------------------------------------------------------------ */
/* 4-bit wrapper: runs a data-movement kernel on unpacked bytes           */

typedef pare_status (*sh_run_fn)(pare_kctx *k, pare_error *err);

#define SH_MAX_OUT 64

typedef struct sh_unpack {
    pare_kctx *real;
    int dtype4; /* the packed dtype the views stand for */
    int view;   /* INT8 for int4 (sign-extended, so comparisons order right), else UINT8 */
    pare_tensor *tmp[SH_MAX_OUT];
} sh_unpack;

static pare_status sh_unpack_alloc(pare_kctx *k, size_t i, int dtype, int rank,
                                   const int64_t *dims, pare_tensor **out, pare_error *err)
{
    sh_unpack *u = k->exec;
    if (dtype != u->view)
        return u->real->alloc_out(u->real, i, dtype, rank, dims, out, err);
    if (i >= SH_MAX_OUT)
        return pare_error_set(err, PARE_ERR_LIMIT, "too many outputs");
    pare_tensor_free(u->tmp[i]);
    u->tmp[i] = NULL;
    pare_status st = pare_tensor_new(NULL, u->view, rank, dims, &u->tmp[i], err);
    if (st == PARE_OK)
        *out = u->tmp[i];
    return st;
}

static pare_status sh_run_unpacked(pare_kctx *k, pare_error *err, sh_run_fn fn)
{
    sh_unpack u;
    memset(&u, 0, sizeof u);
    u.real = k;
    pare_tensor *views[SH_MAX_OUT] = {0};
    const pare_tensor *ins[SH_MAX_OUT] = {0};
    pare_status st = PARE_OK;
    if (k->n_in > SH_MAX_OUT || k->n_out > SH_MAX_OUT)
        return pare_error_set(err, PARE_ERR_LIMIT, "too many inputs or outputs");
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        ins[i] = t;
        if (!t || !sh_is4(t->dtype))
            continue;
        if (u.dtype4 && u.dtype4 != t->dtype) {
            st = pare_error_set(err, PARE_ERR_INVALID, "inputs mix %s and %s",
                                pare_dtype_name(u.dtype4), pare_dtype_name(t->dtype));
            goto done;
        }
        u.dtype4 = t->dtype;
        u.view = t->dtype == PARE_DT_INT4 ? PARE_DT_INT8 : PARE_DT_UINT8;
        st = pare_tensor_new(NULL, u.view, t->rank, t->dims, &views[i], err);
        if (st)
            goto done;
        int8_t *d = views[i]->data;
        int64_t n = sh_numel(t);
        for (int64_t j = 0; j < n; j++)
            d[j] = (int8_t)pare_int4_get(t->data, (size_t)j, u.view == PARE_DT_INT8);
        ins[i] = views[i];
    }
    pare_kctx k2 = *k;
    k2.in = ins;
    k2.alloc_out = sh_unpack_alloc;
    k2.exec = &u;
    st = fn(&k2, err);
    for (size_t i = 0; st == PARE_OK && i < k->n_out; i++) {
        pare_tensor *t = u.tmp[i], *o;
        if (!t)
            continue;
        st = k->alloc_out(k, i, u.dtype4, t->rank, t->dims, &o, err);
        if (st)
            break;
        const int8_t *s = t->data;
        int64_t n = sh_numel(t);
        if (o->nbytes)
            memset(o->data, 0, o->nbytes);
        for (int64_t j = 0; j < n; j++)
            pare_int4_set(o->data, (size_t)j, s[j] & 15);
    }
done:
    for (size_t i = 0; i < SH_MAX_OUT; i++) {
        pare_tensor_free(views[i]);
        pare_tensor_free(u.tmp[i]);
    }
    return st;
}

/* Runs fn directly, or through the unpacking wrapper when an input is 4-bit. */
static pare_status sh_run_any(pare_kctx *k, pare_error *err, sh_run_fn fn)
{
    if (k->alloc_out != sh_unpack_alloc)
        for (size_t i = 0; i < k->n_in; i++)
            if (k->in[i] && sh_is4(k->in[i]->dtype))
                return sh_run_unpacked(k, err, fn);
    return fn(k, err);
}

/* Declares run_NAME as the wrapped form of NAME_impl. */
#define SH_ANY_DTYPE(name)                                         \
    static pare_status name##_impl(pare_kctx *k, pare_error *err); \
    static pare_status run_##name(pare_kctx *k, pare_error *err)   \
    {                                                              \
        return sh_run_any(k, err, name##_impl);                    \
    }

/* ------------------------------------------------------------------ */
/* strided copy engine                                                  */

/* Copies a rank-`rank` box: element at multi-index i goes from
 * src + sum(i*ss) to dst + sum(i*ds) (strides in elements, may be negative or 0). */
typedef struct sh_xfer {
    int rank;
    int64_t dims[PARE_MAX_RANK];
    int64_t ss[PARE_MAX_RANK];
    int64_t ds[PARE_MAX_RANK];
    int64_t es;
    const char *src;
    char *dst;
    int64_t tile, tiles_i; /* blocked 2-D transpose mode when tile > 0 */
} sh_xfer;

static void sh_xfer_coalesce(sh_xfer *x)
{
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1)
            continue;
        if (r > 0 && x->ss[r - 1] == x->ss[i] * x->dims[i] &&
            x->ds[r - 1] == x->ds[i] * x->dims[i]) {
            x->dims[r - 1] *= x->dims[i];
            x->ss[r - 1] = x->ss[i];
            x->ds[r - 1] = x->ds[i];
            continue;
        }
        x->dims[r] = x->dims[i];
        x->ss[r] = x->ss[i];
        x->ds[r] = x->ds[i];
        r++;
    }
    if (r == 0) {
        x->dims[0] = 1;
        x->ss[0] = x->ds[0] = 1;
        r = 1;
    }
    x->rank = r;
}

#define SH_LINE(ES)                                                    \
    for (int64_t i = 0; i < n; i++)                                    \
        memcpy(d + i * di * (ES), s + i * si * (ES), (ES))

static inline void sh_copy_line(char *d, const char *s, int64_t n, int64_t di, int64_t si,
                                int64_t es)
{
    if (di == 1 && si == 1) {
        memcpy(d, s, (size_t)(n * es));
        return;
    }
    switch (es) {
    case 1: SH_LINE(1); break;
    case 2: SH_LINE(2); break;
    case 4: SH_LINE(4); break;
    case 8: SH_LINE(8); break;
    case 16: SH_LINE(16); break;
    default: SH_LINE(es); break;
    }
}

static void sh_xfer_rows(void *ctx, int64_t b, int64_t e)
{
    const sh_xfer *x = ctx;
    int r = x->rank;
    int64_t idx[PARE_MAX_RANK];
    int64_t so = 0, dof = 0, rem = b;
    for (int j = r - 2; j >= 0; j--) {
        idx[j] = rem % x->dims[j];
        rem /= x->dims[j];
        so += idx[j] * x->ss[j];
        dof += idx[j] * x->ds[j];
    }
    int64_t n = x->dims[r - 1], si = x->ss[r - 1], di = x->ds[r - 1], es = x->es;
    for (int64_t row = b; row < e; row++) {
        sh_copy_line(x->dst + dof * es, x->src + so * es, n, di, si, es);
        for (int j = r - 2; j >= 0; j--) {
            so += x->ss[j];
            dof += x->ds[j];
            if (++idx[j] < x->dims[j])
                break;
            so -= x->ss[j] * x->dims[j];
            dof -= x->ds[j] * x->dims[j];
            idx[j] = 0;
        }
    }
}

#define SH_TILE(ES)                                                               \
    for (int64_t i = i0; i < i1; i++)                                             \
        for (int64_t j = j0; j < j1; j++)                                         \
            memcpy(db + (i * dsi + j) * (ES), sb + (i + j * ssj) * (ES), (ES))

/* Units: (outer row, block of `tile` rows of the last-but-one dim). */
static void sh_xfer_tiles(void *ctx, int64_t b, int64_t e)
{
    const sh_xfer *x = ctx;
    int r = x->rank;
    int64_t ni = x->dims[r - 2], nj = x->dims[r - 1], T = x->tile, es = x->es;
    int64_t dsi = x->ds[r - 2], ssj = x->ss[r - 1];
    for (int64_t u = b; u < e; u++) {
        int64_t outer = u / x->tiles_i, bi = u % x->tiles_i;
        int64_t so = 0, dof = 0, rem = outer;
        for (int j = r - 3; j >= 0; j--) {
            int64_t id = rem % x->dims[j];
            rem /= x->dims[j];
            so += id * x->ss[j];
            dof += id * x->ds[j];
        }
        const char *sb = x->src + so * es;
        char *db = x->dst + dof * es;
        int64_t i0 = bi * T, i1 = i0 + T < ni ? i0 + T : ni;
        for (int64_t j0 = 0; j0 < nj; j0 += T) {
            int64_t j1 = j0 + T < nj ? j0 + T : nj;
            switch (es) {
            case 1: SH_TILE(1); break;
            case 2: SH_TILE(2); break;
            case 4: SH_TILE(4); break;
            case 8: SH_TILE(8); break;
            default: SH_TILE(es); break;
            }
        }
    }
}

static void sh_xfer_run(pare_threadpool *pool, sh_xfer *x)
{
    for (int i = 0; i < x->rank; i++)
        if (x->dims[i] == 0)
            return;
    sh_xfer_coalesce(x);
    int r = x->rank;
    int64_t total = sh_prod(x->dims, 0, r);
    /* a transpose of the last two dims: tile it so both sides stay in cache */
    if (r >= 2 && x->ds[r - 1] == 1 && x->ss[r - 1] != 1 && x->ss[r - 2] == 1 &&
        x->dims[r - 1] >= 8 && x->dims[r - 2] >= 8) {
        x->tile = x->es <= 8 ? 32 : 16;
        x->tiles_i = (x->dims[r - 2] + x->tile - 1) / x->tile;
        int64_t units = sh_prod(x->dims, 0, r - 2) * x->tiles_i;
        int64_t per = x->tile * x->dims[r - 1];
        pare_parallel_for(pool, units, per >= SH_GRAIN ? 1 : SH_GRAIN / per, sh_xfer_tiles, x);
        return;
    }
    /* a few long contiguous rows (a Concat of one image along channels is a
     * single row per input): cut each into equal pieces so that the
     * threads share the copy */
    if (x->ss[r - 1] == 1 && x->ds[r - 1] == 1 && r < PARE_MAX_RANK &&
        total / x->dims[r - 1] < 4 * (int64_t)pare_threadpool_size(pool) &&
        x->dims[r - 1] >= 4 * SH_GRAIN) {
        int64_t n = x->dims[r - 1];
        for (int64_t parts = 16; parts >= 2; parts /= 2)
            if (n % parts == 0) {
                x->dims[r - 1] = parts;
                x->ss[r - 1] = x->ds[r - 1] = n / parts;
                x->dims[r] = n / parts;
                x->ss[r] = x->ds[r] = 1;
                x->rank = ++r;
                break;
            }
    }
    int64_t rows = total / x->dims[r - 1];
    int64_t n = x->dims[r - 1];
    pare_parallel_for(pool, rows, n >= SH_GRAIN ? 1 : SH_GRAIN / n, sh_xfer_rows, x);
}

/* Row-major strides in elements. */
static void sh_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* Copies src viewed through (dims, src strides) into the contiguous dst. */
static void sh_gather_view(pare_threadpool *pool, char *dst, const char *src, int rank,
                           const int64_t *dims, const int64_t *ss, size_t es)
{
    sh_xfer x;
    x.rank = rank;
    x.es = (int64_t)es;
    x.src = src;
    x.dst = dst;
    x.tile = 0;
    memcpy(x.dims, dims, (size_t)rank * sizeof *dims);
    memcpy(x.ss, ss, (size_t)rank * sizeof *ss);
    sh_strides(rank, dims, x.ds);
    if (rank == 0) {
        x.rank = 1;
        x.dims[0] = 1;
        x.ss[0] = x.ds[0] = 1;
    }
    sh_xfer_run(pool, &x);
}

/* ------------------------------------------------------------------ */
/* numeric dtype lists                                                  */

static inline double sh_ld_id(double v) { return v; }
static inline float sh_st_f32(double v) { return (float)v; }
static inline double sh_st_f64(double v) { return v; }
static inline uint16_t sh_st_f16(double v) { return pare_f32_to_f16((float)v); }
static inline uint16_t sh_st_bf16(double v) { return pare_f32_to_bf16((float)v); }
static inline int sh_isnan(double v) { return v != v; }

/* For each integer type: wrap from the 64-bit accumulator, saturate from double. */
#define SH_DEF_INT(name, ctype, lo, hi)                                   \
    static inline ctype sh_wrap_##name(int64_t v) { return (ctype)v; }   \
    static inline ctype sh_sat_##name(double v)                          \
    {                                                                    \
        if (v != v)                                                      \
            return 0;                                                    \
        if (v <= (double)(lo))                                           \
            return (lo);                                                 \
        if (v >= (double)(hi))                                           \
            return (hi);                                                 \
        return (ctype)v;                                                 \
    }
SH_DEF_INT(i8, int8_t, INT8_MIN, INT8_MAX)
SH_DEF_INT(u8, uint8_t, 0, UINT8_MAX)
SH_DEF_INT(i16, int16_t, INT16_MIN, INT16_MAX)
SH_DEF_INT(u16, uint16_t, 0, UINT16_MAX)
SH_DEF_INT(i32, int32_t, INT32_MIN, INT32_MAX)
SH_DEF_INT(u32, uint32_t, 0, UINT32_MAX)
SH_DEF_INT(i64, int64_t, INT64_MIN, INT64_MAX)
SH_DEF_INT(u64, uint64_t, 0, UINT64_MAX)
static inline uint8_t sh_wrap_b(int64_t v) { return v != 0; }
static inline uint8_t sh_sat_b(double v) { return v != 0; }

/* X(dtype, ctype, acc type, LD: ctype -> acc, STA: acc -> ctype, STD: double -> ctype, is_float) */
#define SH_FLOAT_TYPES(X)                                                           \
    X(PARE_DT_FLOAT, float, double, sh_ld_id, sh_st_f32, sh_st_f32, 1)              \
    X(PARE_DT_DOUBLE, double, double, sh_ld_id, sh_st_f64, sh_st_f64, 1)            \
    X(PARE_DT_FLOAT16, uint16_t, double, pare_f16_to_f32, sh_st_f16, sh_st_f16, 1)  \
    X(PARE_DT_BFLOAT16, uint16_t, double, pare_bf16_to_f32, sh_st_bf16, sh_st_bf16, 1)
#define SH_INT_TYPES(X)                                                    \
    X(PARE_DT_INT8, int8_t, int64_t, , sh_wrap_i8, sh_sat_i8, 0)            \
    X(PARE_DT_UINT8, uint8_t, int64_t, , sh_wrap_u8, sh_sat_u8, 0)          \
    X(PARE_DT_INT16, int16_t, int64_t, , sh_wrap_i16, sh_sat_i16, 0)        \
    X(PARE_DT_UINT16, uint16_t, int64_t, , sh_wrap_u16, sh_sat_u16, 0)      \
    X(PARE_DT_INT32, int32_t, int64_t, , sh_wrap_i32, sh_sat_i32, 0)        \
    X(PARE_DT_UINT32, uint32_t, int64_t, , sh_wrap_u32, sh_sat_u32, 0)      \
    X(PARE_DT_INT64, int64_t, int64_t, , sh_wrap_i64, sh_sat_i64, 0)        \
    X(PARE_DT_UINT64, uint64_t, uint64_t, , sh_wrap_u64, sh_sat_u64, 0)
#define SH_NUM_TYPES(X) SH_FLOAT_TYPES(X) SH_INT_TYPES(X)
#define SH_NUMB_TYPES(X) SH_NUM_TYPES(X) X(PARE_DT_BOOL, uint8_t, int64_t, , sh_wrap_b, sh_sat_b, 0)

/* Wrapping integer arithmetic (no signed overflow) and plain float arithmetic. */
#define SH_ADD(a, b)                                                        \
    _Generic((a), int64_t: (int64_t)((uint64_t)(a) + (uint64_t)(b)),       \
             uint64_t: (uint64_t)(a) + (uint64_t)(b), default: (a) + (b))
#define SH_MUL(a, b)                                                        \
    _Generic((a), int64_t: (int64_t)((uint64_t)(a) * (uint64_t)(b)),       \
             uint64_t: (uint64_t)(a) * (uint64_t)(b), default: (a) * (b))
static inline int64_t sh_abs_i(int64_t a) { return a < 0 ? (int64_t)(0 - (uint64_t)a) : a; }
static inline uint64_t sh_abs_u(uint64_t a) { return a; }
static inline double sh_abs_d(double a) { return fabs(a); }
#define SH_ABS(a) _Generic((a), int64_t: sh_abs_i, uint64_t: sh_abs_u, default: sh_abs_d)(a)

static bool sh_is_num(int dtype)
{
    switch (dtype) {
#define SH_CASE(DT, ...) case DT:
        SH_NUM_TYPES(SH_CASE)
#undef SH_CASE
        return true;
    default:
        return false;
    }
}

static pare_status sh_bad_dtype(int dtype, const char *op, pare_error *err)
{
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s does not support dtype %s", op,
                          pare_dtype_name(dtype));
}

/* ------------------------------------------------------------------ */
/* attribute-state helpers                                              */

static pare_status sh_nomem(pare_error *err)
{
    return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
}

static void sh_free_state(void *s)
{
    free(s);
}

#include "kernels_shape_move.c"
#include "kernels_shape_index.c"
#include "kernels_shape_reduce.c"
#include "kernels_shape_resize.c"

/* ------------------------------------------------------------------ */

#define K(op, from, to, init, run, rel) {"", op, from, to, init, run, rel, NULL}
#define KT(op, from, to, init, run, rel, types) {"", op, from, to, init, run, rel, types}

const pare_kernel pare_kernels_shape[] = {
    SH_MOVE_KERNELS
    SH_INDEX_KERNELS
    SH_REDUCE_KERNELS
    SH_RESIZE_KERNELS
    {0},
};
