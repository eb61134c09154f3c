/* Cast, CastLike and Identity; #included from kernels_elementwise.c.
 *
 * Numeric casts go through pare_dtype_convert in blocks across the pool;
 * strings are parsed and formatted here (on one thread: they allocate). */

#define CAST_BLOCK 16384 /* even, so that a block of a 4-bit type starts on a byte */

typedef struct cast_job {
    int dst_dt, src_dt;
    void *dst;
    const void *src;
    uint64_t n;
    bool saturate;
    atomic_int failed;
} cast_job;

static void cast_range(void *ctx, int64_t b0, int64_t b1)
{
    cast_job *j = ctx;
    for (int64_t b = b0; b < b1; b++) {
        uint64_t off = (uint64_t)b * CAST_BLOCK;
        uint64_t cnt = j->n - off < CAST_BLOCK ? j->n - off : CAST_BLOCK;
        if (!pare_dtype_convert(j->dst_dt, (char *)j->dst + pare_dtype_nbytes(j->dst_dt, off),
                                j->src_dt,
                                (const char *)j->src + pare_dtype_nbytes(j->src_dt, off),
                                (size_t)cnt, j->saturate))
            atomic_store(&j->failed, 1);
    }
}

static pare_status cast_numeric(pare_kctx *k, int dst_dt, void *dst, int src_dt, const void *src,
                                uint64_t n, bool saturate, pare_error *err)
{
    cast_job j = {dst_dt, src_dt, dst, src, n, saturate, 0};
    int64_t nblk = (int64_t)((n + CAST_BLOCK - 1) / CAST_BLOCK);
    pare_parallel_for(k->pool, nblk, 1, cast_range, &j);
    if (atomic_load(&j.failed))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "cannot cast %s to %s",
                              pare_dtype_name(src_dt), pare_dtype_name(dst_dt));
    return PARE_OK;
}

static pare_status copy_strings(pare_string *dst, const pare_string *src, uint64_t n,
                                pare_error *err)
{
    for (uint64_t i = 0; i < n; i++)
        if (!ew_string_copy(&dst[i], &src[i]))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return PARE_OK;
}

/* The shortest %g text that reads back as the same value at the source's
 * precision (float32 for the narrow float types), like numpy's str(). */
static void fmt_float(char *buf, size_t size, double v, bool is_double)
{
    if (v != v) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
        return;
    }
    int maxp = is_double ? 17 : 9;
    for (int prec = 1; prec <= maxp; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (is_double ? strtod(buf, NULL) == v : strtof(buf, NULL) == (float)v)
            break;
    }
    if (!strpbrk(buf, ".en")) /* "1" -> "1.0", as numpy writes floats */
        snprintf(buf + strlen(buf), size - strlen(buf), ".0");
}

static pare_status cast_to_string(const pare_tensor *x, const void *src, pare_string *dst,
                                  uint64_t n, pare_error *err)
{
    char buf[64];
    int dt = x->dtype;
    for (uint64_t i = 0; i < n; i++) {
        if (dt == PARE_DT_BOOL)
            snprintf(buf, sizeof buf, "%s", ((const uint8_t *)src)[i] ? "True" : "False");
        else if (dt == PARE_DT_UINT64)
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)src)[i]);
        else if (pare_dtype_is_int(dt) && pare_dtype_bits(dt) >= 8)
            snprintf(buf, sizeof buf, "%lld", (long long)ew_geti(dt, src, (int64_t)i));
        else if (pare_dtype_is_int(dt)) /* int4, uint4 */
            snprintf(buf, sizeof buf, "%lld", (long long)pare_dtype_get_f64(dt, src, (size_t)i));
        else if (pare_dtype_is_float(dt))
            fmt_float(buf, sizeof buf, pare_dtype_get_f64(dt, src, (size_t)i),
                      dt == PARE_DT_DOUBLE);
        else
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "cannot cast %s to string",
                                  pare_dtype_name(dt));
        pare_string s = {buf, strlen(buf)};
        if (!ew_string_copy(&dst[i], &s))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    return PARE_OK;
}

/* Parses strings into int64 (integer and bool targets) or double, then
 * converts that array with Cast's rules. Text that is not a number gives NaN
 * (0 for integers), as there is no error channel per element. */
static pare_status cast_from_string(pare_kctx *k, const pare_string *src, int dst_dt, void *dst,
                                    uint64_t n, bool saturate, pare_error *err)
{
    bool to_int = pare_dtype_is_int(dst_dt) || dst_dt == PARE_DT_BOOL;
    if (n > SIZE_MAX / 8)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    void *tmp = malloc((size_t)n * 8);
    if (!tmp)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        char buf[128];
        size_t len = src[i].len < sizeof buf - 1 ? src[i].len : sizeof buf - 1;
        if (len)
            memcpy(buf, src[i].data, len);
        buf[len] = 0;
        char *end;
        if (to_int) {
            int64_t v;
            if (strcasecmp(buf, "true") == 0) {
                v = 1;
            } else if (strcasecmp(buf, "false") == 0) {
                v = 0;
            } else {
                long long ll = strtoll(buf, &end, 10);
                if (end == buf || *end) /* not an integer: "1.5", "1e3" */
                    ll = ew_d2i64(strtod(buf, NULL));
                v = ll;
            }
            ((int64_t *)tmp)[i] = v;
        } else {
            double v = strtod(buf, &end);
            ((double *)tmp)[i] = end == buf ? NAN : v;
        }
    }
    pare_status st = cast_numeric(k, dst_dt, dst, to_int ? PARE_DT_INT64 : PARE_DT_DOUBLE, tmp,
                                  n, saturate, err);
    free(tmp);
    return st;
}

/* float8e8m0 with round_mode down or nearest (up is pare_dtype_convert's),
 * on the bits of the value as float32, as the ONNX reference does. */
static pare_status cast_e8m0(pare_kctx *k, const pare_tensor *x, uint8_t *dst, uint64_t n,
                             int mode, bool saturate, pare_error *err)
{
    if (n > SIZE_MAX / 4)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    float *f = malloc((size_t)n * 4);
    if (!f)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = cast_numeric(k, PARE_DT_FLOAT, f, x->dtype, x->data, n, true, err);
    for (uint64_t i = 0; st == PARE_OK && i < n; i++) {
        uint32_t b;
        memcpy(&b, &f[i], 4);
        uint32_t e = (b >> 23) & 0xFF;
        if (e == 0xFF) {
            dst[i] = 0xFF;
            continue;
        }
        if (mode == 2) { /* nearest: guard bit, with ties going up except at e = 0 */
            bool g = b & 0x400000, r = b & 0x200000, s = b & 0x1FFFFF;
            bool up = g && (r || s || e > 0);
            if (up && !(saturate && e == 0xFE))
                e++;
        }
        dst[i] = (uint8_t)e;
    }
    free(f);
    return st;
}

static pare_status ew_run_cast(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    bool like = s->d->kind == K_CASTLIKE;
    pare_status st = ew_need_inputs(k, like ? 2 : 1, err);
    if (st)
        return st;
    const pare_tensor *x = k->in[0];
    int to = like ? k->in[1]->dtype : s->to;
    if (!pare_dtype_valid(to))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "unsupported target dtype %d", to);
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, to, x->rank, x->dims, &out, err)))
        return st;
    uint64_t n = pare_tensor_numel(x);
    if (n == 0)
        return PARE_OK;
    if (x->dtype == PARE_DT_STRING && to == PARE_DT_STRING)
        return copy_strings(out->data, x->data, n, err);
    if (to == PARE_DT_STRING) {
        const void *src;
        void *tmp;
        if ((st = ew_aligned(x, &src, &tmp, err)))
            return st;
        st = cast_to_string(x, src, out->data, n, err);
        free(tmp);
        return st;
    }
    if (x->dtype == PARE_DT_STRING)
        return cast_from_string(k, x->data, to, out->data, n, s->saturate, err);
    if (to == PARE_DT_FLOAT8E8M0 && s->round_mode != 0)
        return cast_e8m0(k, x, out->data, n, s->round_mode, s->saturate, err);
    return cast_numeric(k, to, out->data, x->dtype, x->data, n, s->saturate, err);
}

static pare_status ew_run_identity(pare_kctx *k, pare_error *err)
{
    pare_status st = ew_need_inputs(k, 1, err);
    if (st)
        return st;
    const pare_tensor *x = k->in[0];
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &out, err)))
        return st;
    if (x->dtype == PARE_DT_STRING)
        return copy_strings(out->data, x->data, pare_tensor_numel(x), err);
    if (x->nbytes)
        memcpy(out->data, x->data, x->nbytes);
    return PARE_OK;
}
