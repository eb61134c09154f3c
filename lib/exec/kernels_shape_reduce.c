/* Included from kernels_shape.c: Reduce*, ArgMax/ArgMin, TopK, CumSum. */

enum {
    RD_SUM, RD_MEAN, RD_MAX, RD_MIN, RD_PROD, RD_L1, RD_L2, RD_LOGSUM, RD_LOGSUMEXP, RD_SUMSQ
};

typedef struct reduce_state {
    int op;
    int axes_input_from; /* opset where axes moved from attribute to input */
    int64_t keepdims, noop;
    const int64_t *axes;
    size_t n_axes;
    bool has_axes;
} reduce_state;

static pare_status reduce_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    static const struct {
        const char *name;
        int op;
    } ops[] = {{"ReduceSum", RD_SUM},         {"ReduceMean", RD_MEAN},
               {"ReduceMax", RD_MAX},         {"ReduceMin", RD_MIN},
               {"ReduceProd", RD_PROD},       {"ReduceL1", RD_L1},
               {"ReduceL2", RD_L2},           {"ReduceLogSum", RD_LOGSUM},
               {"ReduceLogSumExp", RD_LOGSUMEXP}, {"ReduceSumSquare", RD_SUMSQ}};
    reduce_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->op = -1;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(n->op_type, ops[i].name) == 0)
            s->op = ops[i].op;
    if (s->op < 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "unknown reduction %s", n->op_type);
    s->axes_input_from = s->op == RD_SUM ? 13 : 18;
    s->keepdims = pare_node_attr_int(n, "keepdims", 1);
    s->noop = pare_node_attr_int(n, "noop_with_empty_axes", 0);
    s->has_axes = pare_node_attr(n, "axes") != NULL;
    s->n_axes = pare_node_attr_ints(n, "axes", &s->axes);
    return PARE_OK;
}

typedef struct red_job {
    int op;
    int dtype;
    const void *src;
    void *dst;
    int nk, nr;
    int64_t kd[PARE_MAX_RANK], ks[PARE_MAX_RANK]; /* kept groups before the inner run */
    int64_t rd[PARE_MAX_RANK], rs[PARE_MAX_RANK]; /* reduced groups */
    int64_t inner;                                /* trailing kept run (stride 1) */
    int64_t count;                                /* reduced elements per output */
    int64_t iblk, nblk;                           /* the inner run split in blocks */
    bool failed;
} red_job;

/* Visits every reduced position of the current unit: s points at the first of
 * its `inner` contiguous elements. */
#define RED_SCAN(T, ACC, LD, STMT)                                          \
    do {                                                                    \
        for (int64_t q = 0; q < nouter; q++) {                              \
            int64_t rq = q, base = rowbase;                                 \
            for (int d = j->nr - 2; d >= 0; d--) {                          \
                base += (rq % j->rd[d]) * j->rs[d];                         \
                rq /= j->rd[d];                                             \
            }                                                               \
            for (int64_t jj = 0; jj < rlast; jj++) {                        \
                const T *s = src + base + jj * rsl;                         \
                for (int64_t i = 0; i < inner; i++) {                       \
                    ACC v = LD(s[i]);                                       \
                    STMT;                                                   \
                }                                                           \
            }                                                               \
        }                                                                   \
    } while (0)

/* One output (inner == 1): a sum of EXPR(v) with four accumulators so that
 * contiguous runs pipeline. */
#define RED_LINE_SUM(T, ACC, LD, EXPR, RESULT)                                 \
    do {                                                                       \
        ACC s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                    \
        for (int64_t q = 0; q < nouter; q++) {                                 \
            int64_t rq = q, base = rowbase;                                    \
            for (int d = j->nr - 2; d >= 0; d--) {                             \
                base += (rq % j->rd[d]) * j->rs[d];                            \
                rq /= j->rd[d];                                                \
            }                                                                  \
            const T *p = src + base;                                           \
            int64_t jj = 0;                                                    \
            if (rsl == 1)                                                      \
                for (; jj + 4 <= rlast; jj += 4) {                             \
                    ACC v0 = LD(p[jj]), v1 = LD(p[jj + 1]);                    \
                    ACC v2 = LD(p[jj + 2]), v3 = LD(p[jj + 3]);                \
                    s0 = SH_ADD(s0, EXPR(v0));                                 \
                    s1 = SH_ADD(s1, EXPR(v1));                                 \
                    s2 = SH_ADD(s2, EXPR(v2));                                 \
                    s3 = SH_ADD(s3, EXPR(v3));                                 \
                }                                                              \
            for (; jj < rlast; jj++) {                                         \
                ACC v = LD(p[jj * rsl]);                                       \
                s0 = SH_ADD(s0, EXPR(v));                                      \
            }                                                                  \
        }                                                                      \
        RESULT = SH_ADD(SH_ADD(s0, s1), SH_ADD(s2, s3));                       \
    } while (0)

#define RX_ID(v) (v)
#define RX_SQ(v) SH_MUL(v, v)
#define RX_ABS(v) SH_ABS(v)

#define RED_ROWS(DT, T, ACC, LD, STA, STD, ISF)                                              \
    static void red_rows_##DT(red_job *j, int64_t b, int64_t e)                              \
    {                                                                                        \
        const T *src = j->src;                                                               \
        T *dst = j->dst;                                                                     \
        int64_t rlast = j->nr ? j->rd[j->nr - 1] : 1;                                        \
        int64_t rsl = j->nr ? j->rs[j->nr - 1] : 0;                                          \
        int64_t nouter = j->count == 0 ? 0 : j->nr ? j->count / rlast : 1;                   \
        ACC *acc = malloc((size_t)j->iblk * sizeof *acc);                                    \
        double *mx = malloc((size_t)j->iblk * 2 * sizeof *mx);                               \
        if (!acc || !mx) {                                                                   \
            j->failed = true;                                                                \
            free(acc);                                                                       \
            free(mx);                                                                        \
            return;                                                                          \
        }                                                                                    \
        double *tot = mx + j->iblk;                                                          \
        for (int64_t u = b; u < e; u++) {                                                    \
            int64_t row = u / j->nblk, i0 = (u % j->nblk) * j->iblk;                         \
            int64_t inner = j->inner - i0 < j->iblk ? j->inner - i0 : j->iblk;               \
            int64_t rem = row, rowbase = i0;                                                 \
            for (int d = j->nk - 1; d >= 0; d--) {                                           \
                rowbase += (rem % j->kd[d]) * j->ks[d];                                      \
                rem /= j->kd[d];                                                             \
            }                                                                                \
            T *out = dst + row * j->inner + i0;                                              \
            if (j->inner == 1 && j->op != RD_LOGSUMEXP && j->op != RD_MAX &&                 \
                j->op != RD_MIN && j->op != RD_PROD) {                                       \
                ACC a;                                                                       \
                if (j->op == RD_SUMSQ || j->op == RD_L2)                                     \
                    RED_LINE_SUM(T, ACC, LD, RX_SQ, a);                                      \
                else if (j->op == RD_L1)                                                     \
                    RED_LINE_SUM(T, ACC, LD, RX_ABS, a);                                     \
                else                                                                         \
                    RED_LINE_SUM(T, ACC, LD, RX_ID, a);                                      \
                acc[0] = a;                                                                  \
            } else switch (j->op) {                                                          \
            case RD_SUM:                                                                     \
            case RD_MEAN:                                                                    \
            case RD_LOGSUM:                                                                  \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = 0;                                                              \
                RED_SCAN(T, ACC, LD, acc[i] = SH_ADD(acc[i], v));                            \
                break;                                                                       \
            case RD_SUMSQ:                                                                   \
            case RD_L2:                                                                      \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = 0;                                                              \
                RED_SCAN(T, ACC, LD, acc[i] = SH_ADD(acc[i], SH_MUL(v, v)));                 \
                break;                                                                       \
            case RD_L1:                                                                      \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = 0;                                                              \
                RED_SCAN(T, ACC, LD, acc[i] = SH_ADD(acc[i], (ACC)SH_ABS(v)));               \
                break;                                                                       \
            case RD_PROD:                                                                    \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = 1;                                                              \
                RED_SCAN(T, ACC, LD, acc[i] = SH_MUL(acc[i], v));                            \
                break;                                                                       \
            case RD_MAX:                                                                     \
                if (j->count == 0)                                                           \
                    break;                                                                   \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = LD(src[rowbase + i]);                                           \
                RED_SCAN(T, ACC, LD, if (v > acc[i] || sh_isnan((double)v)) acc[i] = v);     \
                break;                                                                       \
            case RD_MIN:                                                                     \
                if (j->count == 0)                                                           \
                    break;                                                                   \
                for (int64_t i = 0; i < inner; i++)                                          \
                    acc[i] = LD(src[rowbase + i]);                                           \
                RED_SCAN(T, ACC, LD, if (v < acc[i] || sh_isnan((double)v)) acc[i] = v);     \
                break;                                                                       \
            case RD_LOGSUMEXP:                                                               \
                /* log(sum(exp(x - max))) + max, so that large inputs do not overflow */     \
                for (int64_t i = 0; i < inner; i++) {                                        \
                    mx[i] = -INFINITY;                                                       \
                    tot[i] = 0;                                                              \
                }                                                                            \
                RED_SCAN(T, ACC, LD,                                                         \
                         if ((double)v > mx[i] || sh_isnan((double)v)) mx[i] = (double)v);   \
                RED_SCAN(T, ACC, LD, tot[i] += exp((double)v - mx[i]));                      \
                for (int64_t i = 0; i < inner; i++)                                          \
                    out[i] = STD(isinf(mx[i]) || sh_isnan(mx[i]) ? mx[i]                     \
                                                                 : mx[i] + log(tot[i]));     \
                break;                                                                       \
            }                                                                                \
            for (int64_t i = 0; i < inner; i++) {                                            \
                switch (j->op) {                                                             \
                case RD_SUM:                                                                 \
                case RD_SUMSQ:                                                               \
                case RD_L1:                                                                  \
                case RD_PROD: out[i] = STA(acc[i]); break;                                   \
                case RD_MAX:                                                                 \
                    out[i] = j->count ? STA(acc[i]) : STD(-INFINITY);                        \
                    break;                                                                   \
                case RD_MIN:                                                                 \
                    out[i] = j->count ? STA(acc[i]) : STD(INFINITY);                         \
                    break;                                                                   \
                case RD_MEAN: out[i] = STD((double)acc[i] / (double)j->count); break;        \
                case RD_L2: out[i] = STD(sqrt((double)acc[i])); break;                       \
                case RD_LOGSUM: out[i] = STD(log((double)acc[i])); break;                    \
                default: break;                                                              \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        free(acc);                                                                           \
        free(mx);                                                                            \
    }
SH_NUMB_TYPES(RED_ROWS)
#undef RED_ROWS

static void red_rows(void *ctx, int64_t b, int64_t e)
{
    red_job *j = ctx;
    switch (j->dtype) {
#define RED_CALL(DT, ...) case DT: red_rows_##DT(j, b, e); break;
        SH_NUMB_TYPES(RED_CALL)
#undef RED_CALL
    default: break;
    }
}

static pare_status run_reduce(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const reduce_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t axes[PARE_MAX_RANK], na = 0;
    pare_status st;
    bool from_input = k->opset >= s->axes_input_from;
    if (from_input) {
        if (sh_in(k, 1) && (st = sh_ints(k->in[1], axes, PARE_MAX_RANK, &na, "axes", err)))
            return st;
    } else {
        if (s->n_axes > PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_INVALID, "too many axes");
        na = (int64_t)s->n_axes;
        sh_memcpy(axes, s->axes, (size_t)na * sizeof *axes);
    }
    bool red[PARE_MAX_RANK] = {0};
    if (na == 0) {
        if (from_input && s->noop)
            return sh_copy_as(k, 0, x, r, x->dims, err);
        for (int i = 0; i < r; i++)
            red[i] = true;
    }
    for (int64_t i = 0; i < na; i++) {
        int a;
        if ((st = sh_axis(axes[i], r, &a, "axis", err)))
            return st;
        red[a] = true;
    }
    bool bool_ok = s->op == RD_MAX || s->op == RD_MIN;
    if (!sh_is_num(x->dtype) && !(bool_ok && x->dtype == PARE_DT_BOOL))
        return sh_bad_dtype(x->dtype, "reduction", err);
    int64_t odims[PARE_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < r; i++) {
        if (!red[i])
            odims[orank++] = x->dims[i];
        else if (s->keepdims)
            odims[orank++] = 1;
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, orank, odims, &o, err)))
        return st;
    int64_t on = sh_numel(o);
    if (on == 0)
        return PARE_OK;
    void *tmp;
    red_job j = {.op = s->op, .dtype = x->dtype, .dst = o->data, .inner = 1, .count = 1};
    if (!(j.src = sh_aligned(x, &tmp, err)))
        return err ? err->status : PARE_ERR_NOMEM;
    /* groups of adjacent dims with the same flag (size-1 dims dropped) */
    int64_t gd[PARE_MAX_RANK], gs[PARE_MAX_RANK], xs[PARE_MAX_RANK];
    bool gr[PARE_MAX_RANK];
    int ng = 0;
    sh_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) {
        if (x->dims[i] == 1)
            continue;
        if (ng > 0 && gr[ng - 1] == red[i]) {
            gd[ng - 1] *= x->dims[i];
            gs[ng - 1] = xs[i];
            continue;
        }
        gd[ng] = x->dims[i];
        gs[ng] = xs[i];
        gr[ng++] = red[i];
    }
    if (ng > 0 && !gr[ng - 1])
        j.inner = gd[--ng];
    for (int i = 0; i < ng; i++) {
        if (gr[i]) {
            j.rd[j.nr] = gd[i];
            j.rs[j.nr++] = gs[i];
            j.count *= gd[i];
        } else {
            j.kd[j.nk] = gd[i];
            j.ks[j.nk++] = gs[i];
        }
    }
    /* units: (output row, block of the inner run), so that a reduction over the
     * outer axes still spreads over the threads */
    int64_t rows = on / j.inner;
    j.iblk = j.inner;
    if (rows < 4 * pare_threadpool_size(k->pool) && j.inner > 4096)
        j.iblk = 4096;
    j.nblk = (j.inner + j.iblk - 1) / j.iblk;
    int64_t work = j.count * j.iblk;
    pare_parallel_for(k->pool, rows * j.nblk, work >= SH_GRAIN ? 1 : SH_GRAIN / (work ? work : 1),
                      red_rows, &j);
    free(tmp);
    if (j.failed)
        return sh_nomem(err);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* ArgMax, ArgMin                                                       */

typedef struct arg_state {
    int64_t axis, keepdims, last;
    bool is_max;
    /* TopK */
    int64_t largest, sorted, k;
    /* CumSum, CumProd */
    int64_t exclusive, reverse;
    bool prod;
} arg_state;

static pare_status arg_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    arg_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    bool topk = strcmp(n->op_type, "TopK") == 0;
    s->axis = pare_node_attr_int(n, "axis", topk ? -1 : 0);
    s->keepdims = pare_node_attr_int(n, "keepdims", 1);
    s->last = pare_node_attr_int(n, "select_last_index", 0);
    s->is_max = strcmp(n->op_type, "ArgMax") == 0;
    s->largest = pare_node_attr_int(n, "largest", 1);
    s->sorted = pare_node_attr_int(n, "sorted", 1);
    s->k = pare_node_attr_int(n, "k", -1);
    s->exclusive = pare_node_attr_int(n, "exclusive", 0);
    s->reverse = pare_node_attr_int(n, "reverse", 0);
    s->prod = strcmp(n->op_type, "CumProd") == 0;
    return PARE_OK;
}

static pare_status run_arg(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const arg_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank, ax;
    if (r == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "input must have rank >= 1");
    pare_status st = sh_axis(s->axis, r, &ax, "axis", err);
    if (st)
        return st;
    if (!sh_is_num(x->dtype) && x->dtype != PARE_DT_BOOL)
        return sh_bad_dtype(x->dtype, s->is_max ? "ArgMax" : "ArgMin", err);
    int64_t dim = x->dims[ax];
    if (dim == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot take arg%s over an empty axis %d",
                              s->is_max ? "max" : "min", ax);
    int64_t odims[PARE_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < r; i++) {
        if (i != ax)
            odims[orank++] = x->dims[i];
        else if (s->keepdims)
            odims[orank++] = 1;
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, PARE_DT_INT64, orank, odims, &o, err)))
        return st;
    void *tmp;
    const void *src = sh_aligned(x, &tmp, err);
    if (!src)
        return err ? err->status : PARE_ERR_NOMEM;
    int64_t outer = sh_prod(x->dims, 0, ax), inner = sh_prod(x->dims, ax + 1, r);
    int64_t *out = o->data;
    bool mx = s->is_max, last = s->last != 0;
    switch (x->dtype) {
#define ARG_CASE(DT, T, ACC, LD, STA, STD, ISF)                                           \
    case DT: {                                                                            \
        const T *p = src;                                                                 \
        for (int64_t a = 0; a < outer; a++)                                               \
            for (int64_t b = 0; b < inner; b++) {                                         \
                const T *q = p + a * dim * inner + b;                                     \
                ACC best = LD(q[0]);                                                      \
                int64_t bi = 0;                                                           \
                for (int64_t i = 1; i < dim; i++) {                                       \
                    ACC v = LD(q[i * inner]);                                             \
                    bool better;                                                          \
                    if (sh_isnan((double)best))                                           \
                        better = last && sh_isnan((double)v);                             \
                    else if (sh_isnan((double)v))                                         \
                        better = true;                                                    \
                    else                                                                  \
                        better = (mx ? v > best : v < best) || (last && v == best);       \
                    if (better) {                                                         \
                        best = v;                                                         \
                        bi = i;                                                           \
                    }                                                                     \
                }                                                                         \
                out[a * inner + b] = bi;                                                  \
            }                                                                             \
        break;                                                                            \
    }
        SH_NUMB_TYPES(ARG_CASE)
#undef ARG_CASE
    default: break;
    }
    free(tmp);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* TopK                                                                 */

typedef struct topk_job {
    int dtype;
    const void *src;
    void *vals;
    int64_t *idx;
    int64_t dim, inner, k;
    bool largest;
    bool failed;
} topk_job;

#define TOPK_LINES(DT, T, ACC, LD, STA, STD, ISF)                                           \
    static void topk_lines_##DT(topk_job *j, int64_t b, int64_t e)                          \
    {                                                                                       \
        int64_t n = j->dim;                                                                 \
        ACC *v = malloc((size_t)n * sizeof *v);                                             \
        int64_t *id = malloc((size_t)n * 2 * sizeof *id);                                   \
        if (!v || !id) {                                                                    \
            j->failed = true;                                                               \
            free(v);                                                                        \
            free(id);                                                                       \
            return;                                                                         \
        }                                                                                   \
        int64_t *tmp = id + n;                                                              \
        const T *src = j->src;                                                              \
        T *ov = j->vals;                                                                    \
        for (int64_t line = b; line < e; line++) {                                          \
            int64_t a = line / j->inner, c = line % j->inner;                               \
            const T *q = src + a * n * j->inner + c;                                        \
            if (j->k * 8 <= n) {                                                            \
                /* few wanted: keep the best k in order while scanning; an equal value     \
                 * arriving later never passes an earlier one, so ties stay by index */      \
                int64_t cnt = 0;                                                            \
                for (int64_t i = 0; i < n; i++) {                                           \
                    ACC x = LD(q[i * j->inner]);                                            \
                    int c3 = cnt ? SH_CMP3(x, v[cnt - 1]) : 0;                              \
                    if (cnt == j->k && !(j->largest ? c3 > 0 : c3 < 0))                     \
                        continue;                                                           \
                    int64_t pos = cnt < j->k ? cnt++ : cnt - 1;                             \
                    while (pos > 0) {                                                       \
                        int cc = SH_CMP3(x, v[pos - 1]);                                    \
                        if (!(j->largest ? cc > 0 : cc < 0))                                \
                            break;                                                          \
                        v[pos] = v[pos - 1];                                                \
                        id[pos] = id[pos - 1];                                              \
                        pos--;                                                              \
                    }                                                                       \
                    v[pos] = x;                                                             \
                    id[pos] = i;                                                            \
                }                                                                           \
                for (int64_t i = 0; i < j->k; i++) {                                        \
                    int64_t at = (a * j->k + i) * j->inner + c;                             \
                    ov[at] = q[id[i] * j->inner];                                           \
                    j->idx[at] = id[i];                                                     \
                }                                                                           \
                continue;                                                                   \
            }                                                                               \
            for (int64_t i = 0; i < n; i++) {                                               \
                v[i] = LD(q[i * j->inner]);                                                 \
                id[i] = i;                                                                  \
            }                                                                               \
            /* stable merge sort: ties keep the lower index first */                        \
            for (int64_t w = 1; w < n; w *= 2) {                                            \
                for (int64_t lo = 0; lo < n; lo += 2 * w) {                                 \
                    int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n; \
                    int64_t x = lo, y = mid, o = lo;                                        \
                    while (x < mid && y < hi) {                                             \
                        int c3 = SH_CMP3(v[id[y]], v[id[x]]);                               \
                        bool take_y = j->largest ? c3 > 0 : c3 < 0;                         \
                        tmp[o++] = take_y ? id[y++] : id[x++];                              \
                    }                                                                       \
                    while (x < mid)                                                         \
                        tmp[o++] = id[x++];                                                 \
                    while (y < hi)                                                          \
                        tmp[o++] = id[y++];                                                 \
                }                                                                           \
                memcpy(id, tmp, (size_t)n * sizeof *id);                                    \
            }                                                                               \
            for (int64_t i = 0; i < j->k; i++) {                                            \
                int64_t at = (a * j->k + i) * j->inner + c;                                 \
                ov[at] = q[id[i] * j->inner];                                               \
                j->idx[at] = id[i];                                                         \
            }                                                                               \
        }                                                                                   \
        free(v);                                                                            \
        free(id);                                                                           \
    }
SH_NUMB_TYPES(TOPK_LINES)
#undef TOPK_LINES

static void topk_lines(void *ctx, int64_t b, int64_t e)
{
    topk_job *j = ctx;
    switch (j->dtype) {
#define TOPK_CALL(DT, ...) case DT: topk_lines_##DT(j, b, e); break;
        SH_NUMB_TYPES(TOPK_CALL)
#undef TOPK_CALL
    default: break;
    }
}

static pare_status run_topk(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const arg_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank, ax;
    if (r == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "input must have rank >= 1");
    pare_status st = sh_axis(s->axis, r, &ax, "axis", err);
    if (st)
        return st;
    if (!sh_is_num(x->dtype))
        return sh_bad_dtype(x->dtype, "TopK", err);
    int64_t kk = s->k;
    if (k->opset >= 10) {
        const pare_tensor *kt = sh_in(k, 1);
        if (!kt)
            return pare_error_set(err, PARE_ERR_INVALID, "TopK needs K");
        if ((st = sh_scalar_i64(kt, &kk, "K", err)))
            return st;
    }
    int64_t dim = x->dims[ax];
    if (kk < 0 || kk > dim)
        return pare_error_set(err, PARE_ERR_INVALID, "k %lld out of range [0, %lld]",
                              (long long)kk, (long long)dim);
    int64_t odims[PARE_MAX_RANK];
    memcpy(odims, x->dims, (size_t)r * sizeof *odims);
    odims[ax] = kk;
    pare_tensor *ov, *oi;
    if ((st = sh_alloc(k, 0, x->dtype, r, odims, &ov, err)) ||
        (st = sh_alloc(k, 1, PARE_DT_INT64, r, odims, &oi, err)))
        return st;
    if (sh_numel(ov) == 0)
        return PARE_OK;
    void *tmp;
    topk_job j = {.dtype = x->dtype, .vals = ov->data, .idx = oi->data, .dim = dim,
                  .inner = sh_prod(x->dims, ax + 1, r), .k = kk, .largest = s->largest != 0};
    if (!(j.src = sh_aligned(x, &tmp, err)))
        return err ? err->status : PARE_ERR_NOMEM;
    int64_t lines = sh_prod(x->dims, 0, ax) * j.inner;
    pare_parallel_for(k->pool, lines, dim >= SH_GRAIN / 8 ? 1 : (SH_GRAIN / 8) / dim, topk_lines,
                      &j);
    free(tmp);
    return j.failed ? sh_nomem(err) : PARE_OK;
}

/* ------------------------------------------------------------------ */
/* CumSum, CumProd                                                      */

static pare_status run_cumsum(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const arg_state *s = k->state;
    const pare_tensor *x = k->in[0], *at = sh_in(k, 1);
    if (!at)
        return pare_error_set(err, PARE_ERR_INVALID, "%s needs an axis",
                              s->prod ? "CumProd" : "CumSum");
    int64_t axis;
    int ax;
    pare_status st;
    if (!sh_is_index_type(at->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "axis must be int32 or int64");
    if ((st = sh_scalar_i64(at, &axis, "axis", err)) ||
        (st = sh_axis(axis, x->rank, &ax, "axis", err)))
        return st;
    if (!sh_is_num(x->dtype))
        return sh_bad_dtype(x->dtype, s->prod ? "CumProd" : "CumSum", err);
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err)))
        return st;
    void *tmp;
    const void *src = sh_aligned(x, &tmp, err);
    if (!src)
        return err ? err->status : PARE_ERR_NOMEM;
    int64_t outer = sh_prod(x->dims, 0, ax), dim = x->dims[ax];
    int64_t inner = sh_prod(x->dims, ax + 1, x->rank);
    bool excl = s->exclusive != 0, rev = s->reverse != 0, prod = s->prod;
    switch (x->dtype) {
#define CUM_CASE(DT, T, ACC, LD, STA, STD, ISF)                           \
    case DT: {                                                            \
        const T *p = src;                                                 \
        T *q = o->data;                                                   \
        for (int64_t a = 0; a < outer; a++)                               \
            for (int64_t b = 0; b < inner; b++) {                         \
                ACC acc = prod ? 1 : 0;                                   \
                for (int64_t t = 0; t < dim; t++) {                       \
                    int64_t i = rev ? dim - 1 - t : t;                    \
                    int64_t at_ = (a * dim + i) * inner + b;              \
                    ACC v = LD(p[at_]);                                   \
                    if (excl)                                             \
                        q[at_] = STA(acc);                                \
                    acc = prod ? SH_MUL(acc, v) : SH_ADD(acc, v);         \
                    if (!excl)                                            \
                        q[at_] = STA(acc);                                \
                }                                                         \
            }                                                             \
        break;                                                            \
    }
        SH_NUM_TYPES(CUM_CASE)
#undef CUM_CASE
    default: break;
    }
    free(tmp);
    return PARE_OK;
}

#define SH_REDUCE_KERNELS                                                          \
    KT("ReduceSum", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),       \
    KT("ReduceMean", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),      \
    KT("ReduceMax", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int,bool"),  \
    KT("ReduceMin", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int,bool"),  \
    KT("ReduceProd", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),      \
    KT("ReduceL1", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),        \
    KT("ReduceL2", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),        \
    KT("ReduceLogSum", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"),    \
    KT("ReduceLogSumExp", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"), \
    KT("ReduceSumSquare", 1, 0, reduce_init, run_reduce, sh_free_state, "fp,int"), \
    KT("ArgMax", 1, 0, arg_init, run_arg, sh_free_state, "fp,int,bool"),           \
    KT("ArgMin", 1, 0, arg_init, run_arg, sh_free_state, "fp,int,bool"),           \
    KT("TopK", 1, 0, arg_init, run_topk, sh_free_state, "fp,int"),                 \
    KT("CumSum", 11, 0, arg_init, run_cumsum, sh_free_state, "fp,int"),            \
    KT("CumProd", 26, 0, arg_init, run_cumsum, sh_free_state, "fp,int"),
