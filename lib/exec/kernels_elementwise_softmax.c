/* Softmax, LogSoftmax and Hardmax; #included from kernels_elementwise.c.
 *
 * The input is seen as [outer, n, inner] with the reduced axis of length n
 * (opset < 13: the input coerced to 2-D at axis, so inner is 1 and n the
 * product of the trailing dims). Rows (inner == 1) are reduced contiguously;
 * otherwise blocks of up to SM_COLS columns are reduced together, so that the
 * loops over a column block are contiguous and vectorise. float16/bfloat16
 * go through float32 copies. */

#define SM_COLS 256

typedef struct sm_job {
    ew_kind kind;
    const void *x;
    void *y;
    int64_t n, inner, nblk;
} sm_job;

#define SM_RANGE(T)                                                                    \
    static void sm_range_##T(void *ctx, int64_t t0, int64_t t1)                        \
    {                                                                                  \
        const sm_job *j = ctx;                                                         \
        int64_t n = j->n, inner = j->inner;                                            \
        for (int64_t t = t0; t < t1; t++) {                                            \
            int64_t o = t / j->nblk, c0 = (t % j->nblk) * SM_COLS;                      \
            int64_t w = inner - c0 < SM_COLS ? inner - c0 : SM_COLS;                    \
            const T *x = (const T *)j->x + (o * n * inner + c0);                       \
            T *y = (T *)j->y + (o * n * inner + c0);                                   \
            T mx[SM_COLS], sum[SM_COLS];                                               \
            int64_t arg[SM_COLS];                                                      \
            for (int64_t c = 0; c < w; c++) {                                          \
                mx[c] = x[c];                                                          \
                sum[c] = 0;                                                            \
                arg[c] = 0;                                                            \
            }                                                                          \
            for (int64_t i = 1; i < n; i++) {                                          \
                const T *row = x + i * inner;                                          \
                if (j->kind == K_HARDMAX) {                                            \
                    for (int64_t c = 0; c < w; c++)                                    \
                        if (row[c] > mx[c]) {                                          \
                            mx[c] = row[c];                                            \
                            arg[c] = i;                                                \
                        }                                                              \
                } else {                                                               \
                    for (int64_t c = 0; c < w; c++)                                    \
                        mx[c] = row[c] > mx[c] ? row[c] : mx[c];                        \
                }                                                                      \
            }                                                                          \
            if (j->kind == K_HARDMAX) {                                                \
                for (int64_t i = 0; i < n; i++)                                        \
                    for (int64_t c = 0; c < w; c++)                                    \
                        y[i * inner + c] = i == arg[c] ? (T)1 : (T)0;                  \
                continue;                                                              \
            }                                                                          \
            for (int64_t i = 0; i < n; i++) {                                          \
                const T *row = x + i * inner;                                          \
                T *yrow = y + i * inner;                                               \
                for (int64_t c = 0; c < w; c++) {                                      \
                    T e = EXPC(T, row[c] - mx[c]);                                         \
                    if (j->kind == K_SOFTMAX)                                          \
                        yrow[c] = e;                                                   \
                    sum[c] += e;                                                       \
                }                                                                      \
            }                                                                          \
            if (j->kind == K_SOFTMAX) {                                                \
                for (int64_t i = 0; i < n; i++)                                        \
                    for (int64_t c = 0; c < w; c++)                                    \
                        y[i * inner + c] /= sum[c];                                    \
            } else {                                                                   \
                for (int64_t c = 0; c < w; c++)                                        \
                    sum[c] = mx[c] + log(sum[c]);                                      \
                for (int64_t i = 0; i < n; i++)                                        \
                    for (int64_t c = 0; c < w; c++)                                    \
                        y[i * inner + c] = x[i * inner + c] - sum[c];                  \
            }                                                                          \
        }                                                                              \
    }

SM_RANGE(float)
SM_RANGE(double)

/* Row case (inner == 1): one row of length n per task. The max and the sum
 * run in 8 independent lanes, a reordering the compiler may not do by itself
 * for floats, so that they vectorise; the exponentials are a plain loop of
 * their own. The float body is also compiled for AVX2 and AVX-512 (see
 * UN_LOOP_V: the same bits either way); Softmax itself on AVX-512 takes
 * sm_softmax_row512 below. */
#define SM_ROWS_BODY(T)                                                                \
    {                                                                                  \
        const sm_job *j = ctx;                                                         \
        int64_t n = j->n;                                                              \
        for (int64_t r = r0; r < r1; r++) {                                            \
            const T *x = (const T *)j->x + r * n;                                      \
            T *y = (T *)j->y + r * n;                                                  \
            if (j->kind == K_HARDMAX) {                                                \
                T mx = x[0];                                                           \
                int64_t arg = 0;                                                       \
                for (int64_t i = 1; i < n; i++)                                        \
                    if (x[i] > mx) {                                                   \
                        mx = x[i];                                                     \
                        arg = i;                                                       \
                    }                                                                  \
                for (int64_t i = 0; i < n; i++)                                        \
                    y[i] = i == arg ? (T)1 : (T)0;                                     \
                continue;                                                              \
            }                                                                          \
            T lane[8];                                                                 \
            for (int c = 0; c < 8; c++)                                                \
                lane[c] = x[0];                                                        \
            int64_t i = 0;                                                             \
            for (; i + 8 <= n; i += 8)                                                 \
                for (int c = 0; c < 8; c++)                                            \
                    lane[c] = x[i + c] > lane[c] ? x[i + c] : lane[c];                 \
            T mx = lane[0];                                                            \
            for (int c = 1; c < 8; c++)                                                \
                mx = lane[c] > mx ? lane[c] : mx;                                      \
            for (; i < n; i++)                                                         \
                mx = x[i] > mx ? x[i] : mx;                                            \
            for (int c = 0; c < 8; c++)                                                \
                lane[c] = 0;                                                           \
            if (j->kind == K_SOFTMAX) {                                                \
                for (i = 0; i < n; i++)                                                \
                    y[i] = EXPC(T, x[i] - mx);                                         \
                for (i = 0; i + 8 <= n; i += 8)                                        \
                    for (int c = 0; c < 8; c++)                                        \
                        lane[c] += y[i + c];                                           \
                for (; i < n; i++)                                                     \
                    lane[0] += y[i];                                                   \
            } else {                                                                   \
                for (i = 0; i + 8 <= n; i += 8)                                        \
                    for (int c = 0; c < 8; c++)                                        \
                        lane[c] += EXPC(T, x[i + c] - mx);                             \
                for (; i < n; i++)                                                     \
                    lane[0] += EXPC(T, x[i] - mx);                                     \
            }                                                                          \
            T sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) +                      \
                    ((lane[4] + lane[5]) + (lane[6] + lane[7]));                       \
            if (j->kind == K_SOFTMAX) {                                                \
                for (i = 0; i < n; i++)                                                \
                    y[i] /= sum;                                                       \
            } else {                                                                   \
                T lse = mx + log(sum);                                                 \
                for (i = 0; i < n; i++)                                                \
                    y[i] = x[i] - lse;                                                 \
            }                                                                          \
        }                                                                              \
    }

static void sm_rows_double(void *ctx, int64_t r0, int64_t r1) SM_ROWS_BODY(double)

#if EW_X86
static inline __attribute__((always_inline)) void sm_rows_float_k(void *ctx, int64_t r0,
                                                                  int64_t r1)
    SM_ROWS_BODY(float)
EW_TGT512 static void sm_rows_float_512(void *ctx, int64_t r0, int64_t r1)
{
    sm_rows_float_k(ctx, r0, r1);
}
EW_TGT256 static void sm_rows_float_256(void *ctx, int64_t r0, int64_t r1)
{
    sm_rows_float_k(ctx, r0, r1);
}
/* ew_expf on 16 lanes: the same reduction and polynomial with each
 * multiply-add fused (AVX-512 has FMA): half the operations, and within
 * ew_expf's error (the fused steps round less), though not its exact bits. */
EW_TGT512 static inline __m512 sm_exp512(__m512 x)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-120.0f), x));
    __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512i b1 = _mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23);
    __m512i b2 = _mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(_mm512_mul_ps(p, _mm512_castsi512_ps(b1)), _mm512_castsi512_ps(b2));
}

/* Softmax of one float row on 16 lanes; the lanes' maxima and sums are
 * combined in a fixed order, so the result is deterministic. A NaN in the
 * row makes the row NaN. */
EW_TGT512 static void sm_softmax_row512(const float *x, float *y, int64_t n)
{
    __m512 mv = _mm512_set1_ps(x[0]);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    if (tail)
        mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail, x + i));
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    __m512 sv = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = sm_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), mx));
        _mm512_storeu_ps(y + i, e);
        sv = _mm512_add_ps(sv, e);
    }
    if (tail) {
        __m512 e = sm_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), mx));
        e = _mm512_maskz_mov_ps(tail, e);
        _mm512_mask_storeu_ps(y + i, tail, e);
        sv = _mm512_add_ps(sv, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sv));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
    if (tail)
        _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + i), inv));
}

static void sm_rows_float(void *ctx, int64_t r0, int64_t r1)
{
    int v = ew_isa();
    const sm_job *j = ctx;
    if (v == 3 && j->kind == K_SOFTMAX) {
        for (int64_t r = r0; r < r1; r++)
            sm_softmax_row512((const float *)j->x + r * j->n, (float *)j->y + r * j->n, j->n);
        return;
    }
    if (v == 3)
        sm_rows_float_512(ctx, r0, r1);
    else if (v == 2)
        sm_rows_float_256(ctx, r0, r1);
    else
        sm_rows_float_k(ctx, r0, r1);
}
#else
static void sm_rows_float(void *ctx, int64_t r0, int64_t r1) SM_ROWS_BODY(float)
#endif

static pare_status ew_run_softmax(pare_kctx *k, pare_error *err)
{
    ew_state *s = k->state;
    pare_status st = ew_need_inputs(k, 1, err);
    if (st)
        return st;
    const pare_tensor *x = k->in[0];
    int dt = x->dtype;
    if (dt != PARE_DT_FLOAT && dt != PARE_DT_DOUBLE && dt != PARE_DT_FLOAT16 &&
        dt != PARE_DT_BFLOAT16)
        return ew_bad_dtype(s->d, dt, err);
    int64_t outer = 1, n = 1, inner = 1;
    if (x->rank > 0) {
        int ax;
        /* before 13 the default axis 1 met 1-D inputs: coerced to [N, 1] */
        if (s->opset < 13 && s->axis == x->rank)
            ax = x->rank;
        else if ((st = pare_axis(s->axis, x->rank, &ax, err)))
            return st;
        for (int d = 0; d < ax; d++)
            outer *= x->dims[d];
        if (s->opset < 13) {
            for (int d = ax; d < x->rank; d++)
                n *= x->dims[d];
        } else {
            n = x->dims[ax];
            for (int d = ax + 1; d < x->rank; d++)
                inner *= x->dims[d];
        }
    }
    pare_tensor *out;
    if ((st = k->alloc_out(k, 0, dt, x->rank, x->dims, &out, err)))
        return st;
    uint64_t total = pare_tensor_numel(out);
    if (total == 0)
        return PARE_OK;

    /* float32 or float64 views of input and output */
    void *xtmp = NULL, *ytmp = NULL;
    const void *xd;
    void *yd = out->data;
    bool narrow = dt == PARE_DT_FLOAT16 || dt == PARE_DT_BFLOAT16;
    if (narrow) {
        if (total > SIZE_MAX / 8)
            return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
        xtmp = malloc((size_t)total * 4);
        ytmp = malloc((size_t)total * 4);
        if (!xtmp || !ytmp) {
            free(xtmp);
            free(ytmp);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        pare_dtype_convert(PARE_DT_FLOAT, xtmp, dt, x->data, (size_t)total, true);
        xd = xtmp;
        yd = ytmp;
    } else if ((st = ew_aligned(x, &xd, &xtmp, err))) {
        return st;
    }
    bool dbl = dt == PARE_DT_DOUBLE;
    sm_job j = {s->d->kind, xd, yd, n, inner, (inner + SM_COLS - 1) / SM_COLS};
    if (inner == 1) {
        int64_t grain = EW_GRAIN / n > 0 ? EW_GRAIN / n : 1;
        pare_parallel_for(k->pool, outer, grain, dbl ? sm_rows_double : sm_rows_float, &j);
    } else {
        int64_t w = inner < SM_COLS ? inner : SM_COLS;
        int64_t grain = EW_GRAIN / (n * w) > 0 ? EW_GRAIN / (n * w) : 1;
        pare_parallel_for(k->pool, outer * j.nblk, grain,
                          dbl ? sm_range_double : sm_range_float, &j);
    }
    if (narrow)
        pare_dtype_convert(dt, out->data, PARE_DT_FLOAT, ytmp, (size_t)total, true);
    free(xtmp);
    free(ytmp);
    return PARE_OK;
}
