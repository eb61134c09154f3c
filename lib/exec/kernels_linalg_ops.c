/* The ops of kernels_linalg.c (included from it; not compiled on its own). */

static void free_state(void *s)
{
    free(s);
}

/* y[M][N] (element size es) = C broadcast unidirectionally to [M, N]. */
static void bcast_fill2(void *y, const pare_tensor *c, size_t es, int64_t M, int64_t N)
{
    int64_t rs = 0, cs = 0;
    if (c->rank == 2) {
        rs = c->dims[0] == 1 ? 0 : c->dims[1];
        cs = c->dims[1] == 1 ? 0 : 1;
    } else if (c->rank == 1) {
        cs = c->dims[0] == 1 ? 0 : 1;
    }
    const char *src = c->data;
    char *dst = y;
    for (int64_t i = 0; i < M; i++) {
        if (cs == 1) {
            memcpy(dst + (size_t)(i * N) * es, src + (size_t)(i * rs) * es, (size_t)N * es);
            continue;
        }
        for (int64_t j = 0; j < N; j++)
            memcpy(dst + (size_t)(i * N + j) * es, src + (size_t)(i * rs) * es, es);
    }
}

/* ===================================================================== */
/* Gemm                                                                  */

typedef struct gemm_st {
    float alpha, beta;
    bool tA, tB;
} gemm_st;

static pare_status gemm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    gemm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->alpha = pare_node_attr_float(n, "alpha", 1.0f);
    st->beta = pare_node_attr_float(n, "beta", 1.0f);
    st->tA = pare_node_attr_int(n, "transA", 0) != 0;
    st->tB = pare_node_attr_int(n, "transB", 0) != 0;
    *state = st;
    return PARE_OK;
}

/* C = op(A) op(B) for int64 data, rows in parallel. */
static void intgemm(pare_threadpool *pool, bool tA, bool tB, int64_t M, int64_t N, int64_t K,
                    const int64_t *A, int64_t lda, const int64_t *B, int64_t ldb, int64_t *C,
                    int64_t ldc)
{
    intgemm_job j = {tA, tB, M, N, K, lda, ldb, ldc, A, B, C};
    pare_parallel_for(pool, M, lmax(1, LIN_GRAIN / lmax(1, N * lmax(K, 1))), intgemm_range_i, &j);
}

static pare_status gemm_run(pare_kctx *k, pare_error *err)
{
    const gemm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "A", err)) || (s = need_in(k, 1, "B", err)))
        return s;
    const pare_tensor *A = k->in[0], *B = k->in[1], *C = k->n_in > 2 ? k->in[2] : NULL;
    if (A->rank != 2 || B->rank != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "A and B must be 2-D (got ranks %d and %d)",
                              A->rank, B->rank);
    int dt = A->dtype;
    if (B->dtype != dt || (C && C->dtype != dt))
        return pare_error_set(err, PARE_ERR_INVALID, "inputs have different dtypes (%s, %s)",
                              pare_dtype_name(dt), pare_dtype_name(B->dtype));
    if (!is_fp(dt) && !is_intmm(dt))
        return bad_dtype(dt, err);
    int64_t M = st->tA ? A->dims[1] : A->dims[0], K = st->tA ? A->dims[0] : A->dims[1];
    int64_t Kb = st->tB ? B->dims[1] : B->dims[0], N = st->tB ? B->dims[0] : B->dims[1];
    if (K != Kb)
        return pare_error_set(err, PARE_ERR_INVALID, "inner dims differ: %lld vs %lld",
                              (long long)K, (long long)Kb);
    if (C) {
        bool ok = C->rank <= 2;
        if (ok && C->rank == 2)
            ok = (C->dims[0] == M || C->dims[0] == 1) && (C->dims[1] == N || C->dims[1] == 1);
        if (ok && C->rank == 1)
            ok = C->dims[0] == N || C->dims[0] == 1;
        if (!ok) {
            char b1[64];
            return pare_error_set(
                err, PARE_ERR_INVALID, "C of shape %s does not broadcast to %lldx%lld",
                pare_dims_str(C->rank, C->dims, b1, sizeof b1), (long long)M, (long long)N);
        }
    }
    bool use_c = C && st->beta != 0.0f;
    int64_t ydims[2] = {M, N};
    int ct = is_fp(dt) ? ctype_of(dt) : PARE_DT_INT64;
    ostage y;
    fview a, b, c;
    if ((s = os_alloc(k, 0, dt, ct, 2, ydims, &y, err)))
        return s;
    if ((s = fv_get(A, ct, &a, err)))
        goto out0;
    if ((s = fv_get(B, ct, &b, err)))
        goto out1;
    if ((s = fv_get(use_c ? C : NULL, ct, &c, err)))
        goto out2;
    if (use_c) {
        pare_tensor cv = *C; /* the converted view of C */
        cv.data = (void *)c.p;
        cv.dtype = ct;
        bcast_fill2(y.p, &cv, pare_elem_size(ct), M, N);
    }
    int64_t lda = A->dims[1], ldb = B->dims[1];
    if (ct == PARE_DT_FLOAT) {
        s = pare_sgemm(k->pool, st->tA, st->tB, M, N, K, st->alpha, a.p, lda, b.p, ldb,
                       use_c ? st->beta : 0.0f, y.p, N);
    } else if (ct == PARE_DT_DOUBLE) {
        s = pare_dgemm(k->pool, st->tA, st->tB, M, N, K, st->alpha, a.p, lda, b.p, ldb,
                       use_c ? st->beta : 0.0, y.p, N);
    } else {
        int64_t *yy = y.p, MN;
        int64_t *ab = mul_ok(M, N, &MN) ? malloc((size_t)(MN ? MN : 1) * sizeof *ab) : NULL;
        if (!ab) {
            s = nomem(err);
            goto out3;
        }
        intgemm(k->pool, st->tA, st->tB, M, N, K, a.p, lda, b.p, ldb, ab, N);
        bool exact = st->alpha == 1.0f && (!use_c || st->beta == 1.0f);
        for (int64_t i = 0; i < MN; i++) {
            if (exact)
                yy[i] = (int64_t)((uint64_t)ab[i] + (uint64_t)(use_c ? yy[i] : 0));
            else
                yy[i] = (int64_t)((double)st->alpha * (double)ab[i] +
                                  (use_c ? (double)st->beta * (double)yy[i] : 0.0));
        }
        free(ab);
    }
    if (s)
        s = nomem(err);
out3:
    fv_free(&c);
out2:
    fv_free(&b);
out1:
    fv_free(&a);
out0:
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* MatMul                                                                */

/* A MatMul's state: the fused form accepted at plan time (pare_kernel_fuse)
 * of a float32 MatMul and what followed it, run when k->fused:
 *     y = act(alpha * A*B + bias[j] + residual)
 * with j the last axis (N columns); the residual is in[3], of y's shape. */
typedef struct mm_st {
    bool fz;
    float alpha;
    float *bias; /* N floats, or NULL */
    int64_t n;
    bool residual;
    int act; /* PARE_GEMM_ACT_* */
    float act_a, act_b;
} mm_st;

static pare_status matmul_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)n;
    (void)opset;
    mm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    *state = st;
    return PARE_OK;
}

static void matmul_release(void *p)
{
    mm_st *st = p;
    if (st)
        free(st->bias);
    free(st);
}

/* The GEMM activation for a PARE_KACT_*, or -1. */
static int kact_gemm(int act)
{
    switch (act) {
    case PARE_KACT_NONE:
        return PARE_GEMM_ACT_NONE;
    case PARE_KACT_RELU:
        return PARE_GEMM_ACT_RELU;
    case PARE_KACT_CLIP:
        return PARE_GEMM_ACT_CLIP;
    case PARE_KACT_LEAKY_RELU:
        return PARE_GEMM_ACT_LEAKY_RELU;
    case PARE_KACT_SIGMOID:
        return PARE_GEMM_ACT_SIGMOID;
    case PARE_KACT_TANH:
        return PARE_GEMM_ACT_TANH;
    case PARE_KACT_HARDSIGMOID:
        return PARE_GEMM_ACT_HARDSIGMOID;
    case PARE_KACT_HARDSWISH:
        return PARE_GEMM_ACT_HARDSWISH;
    case PARE_KACT_GELU:
        return PARE_GEMM_ACT_GELU;
    default:
        return -1;
    }
}

/* MatMul's fused form: the per-column affine must have one scale for every
 * column (it becomes alpha); the shift becomes a column bias. */
static pare_status matmul_fuse(const pare_node *n, mm_st *st, const pare_kfuse *f,
                               pare_error *err)
{
    int act = kact_gemm(f->act);
    if (st->fz || act < 0 || n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1] ||
        n->inputs[0]->dtype != PARE_DT_FLOAT || n->inputs[1]->dtype != PARE_DT_FLOAT ||
        ((f->scale || f->shift) && f->n_ch <= 0))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not a plain float32 MatMul");
    double a = f->scale ? f->scale[0] : 1.0;
    for (int64_t j = 1; f->scale && j < f->n_ch; j++)
        if (f->scale[j] != a)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "scale differs by column");
    bool shift = false;
    for (int64_t j = 0; f->shift && j < f->n_ch; j++)
        if (f->shift[j] != 0.0)
            shift = true;
    if (shift) {
        st->bias = malloc((size_t)f->n_ch * sizeof *st->bias);
        if (!st->bias)
            return nomem(err);
        for (int64_t j = 0; j < f->n_ch; j++)
            st->bias[j] = (float)f->shift[j];
        st->n = f->n_ch;
    }
    st->alpha = (float)a;
    st->residual = f->residual;
    st->act = act;
    st->act_a = f->act_a;
    st->act_b = f->act_b;
    st->fz = true;
    return PARE_OK;
}

typedef struct mm_batch_job {
    int ct;
    int64_t M, N, K;
    const void *A, *B;
    void *C;
    const int64_t *offA, *offB; /* element offsets per batch */
    pare_threadpool *pool;
    int fail;
    float alpha;                  /* float32 only */
    const pare_gemm_epilogue *ep; /* float32 only; residual of batch 0, M*N per batch */
} mm_batch_job;

/* the epilogue of batch q (its slice of the residual) */
static const pare_gemm_epilogue *mm_epi(const mm_batch_job *j, int64_t q, pare_gemm_epilogue *buf)
{
    if (!j->ep || !j->ep->residual)
        return j->ep;
    *buf = *j->ep;
    buf->residual += q * j->M * j->N;
    return buf;
}

static void mm_batch_range(void *ctx, int64_t b, int64_t e)
{
    mm_batch_job *j = ctx;
    int64_t MN = j->M * j->N;
    for (int64_t q = b; q < e; q++) {
        pare_status s = PARE_OK;
        pare_gemm_epilogue eb;
        if (j->ct == PARE_DT_FLOAT)
            s = pare_sgemm_portable_ex(j->pool, false, false, j->M, j->N, j->K, j->alpha,
                                       (const float *)j->A + j->offA[q], j->K,
                                       (const float *)j->B + j->offB[q], j->N, 0.0f,
                                       (float *)j->C + q * MN, j->N, mm_epi(j, q, &eb));
        else if (j->ct == PARE_DT_DOUBLE)
            s = pare_dgemm(
                j->pool, false, false, j->M, j->N, j->K, 1.0, (const double *)j->A + j->offA[q],
                j->K, (const double *)j->B + j->offB[q], j->N, 0.0, (double *)j->C + q * MN, j->N);
        else
            intgemm(j->pool, false, false, j->M, j->N, j->K, (const int64_t *)j->A + j->offA[q],
                    j->K, (const int64_t *)j->B + j->offB[q], j->N, (int64_t *)j->C + q * MN, j->N);
        if (s)
            __atomic_store_n(&j->fail, 1, __ATOMIC_RELAXED);
    }
}

/* Batched matrix product of data already in compute type ct:
 * C[q] = A[offA[q]] (MxK) * B[offB[q]] (KxN), C batches contiguous; float32
 * also C[q] = ep(alpha * A*B) (ep's residual M*N per batch; NULL: none). */
static pare_status batched_mm(pare_threadpool *pool, int ct, int64_t nb, int64_t M, int64_t N,
                              int64_t K, const void *A, const int64_t *offA, const void *B,
                              const int64_t *offB, void *C, float alpha,
                              const pare_gemm_epilogue *ep, pare_error *err)
{
    mm_batch_job j = {ct, M, N, K, A, B, C, offA, offB, pool, 0, alpha, ep};
    /* small matrices in numbers: one thread per product */
    double flops = (double)M * (double)N * (double)K;
    /* (not for under 2M multiply-adds in all, e.g. attention at batch 1: the
     * pool pass costs more than it saves, as in the GEMM's own threshold) */
    if (nb > 1 && flops < 4e6 && (double)nb * flops >= 2097152.0 &&
        pare_threadpool_size(pool) > 1) {
        int64_t grain = lmax(1, (int64_t)(2e5 / (flops + 1.0)));
        pare_parallel_for(pool, nb, grain, mm_batch_range, &j);
    } else {
        for (int64_t q = 0; q < nb; q++) {
            pare_status s = PARE_OK;
            int64_t MN = M * N;
            pare_gemm_epilogue eb;
            if (ct == PARE_DT_FLOAT && !ep)
                s = pare_sgemm(pool, false, false, M, N, K, alpha, (const float *)A + offA[q], K,
                               (const float *)B + offB[q], N, 0.0f, (float *)C + q * MN, N);
            else if (ct == PARE_DT_FLOAT)
                s = pare_sgemm_ex(pool, false, false, M, N, K, alpha, (const float *)A + offA[q],
                                  K, (const float *)B + offB[q], N, 0.0f, (float *)C + q * MN, N,
                                  mm_epi(&j, q, &eb));
            else
                mm_batch_range(&j, q, q + 1);
            if (s)
                j.fail = 1;
        }
    }
    return j.fail ? nomem(err) : PARE_OK;
}

static pare_status matmul_run(pare_kctx *k, pare_error *err)
{
    pare_status s;
    if ((s = need_in(k, 0, "A", err)) || (s = need_in(k, 1, "B", err)))
        return s;
    const pare_tensor *A = k->in[0], *B = k->in[1];
    int dt = A->dtype;
    if (B->dtype != dt)
        return pare_error_set(err, PARE_ERR_INVALID, "A is %s but B is %s", pare_dtype_name(dt),
                              pare_dtype_name(B->dtype));
    if (!is_fp(dt) && !is_intmm(dt))
        return bad_dtype(dt, err);
    if (A->rank < 1 || B->rank < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "MatMul needs operands of rank >= 1");
    /* promote 1-D operands */
    int64_t M = A->rank == 1 ? 1 : A->dims[A->rank - 2], K = A->dims[A->rank - 1];
    int64_t Kb = B->rank == 1 ? B->dims[0] : B->dims[B->rank - 2];
    int64_t N = B->rank == 1 ? 1 : B->dims[B->rank - 1];
    if (K != Kb)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "inner dims differ: A has %lld columns, B has %lld rows",
                              (long long)K, (long long)Kb);
    int rab = A->rank > 2 ? A->rank - 2 : 0, rbb = B->rank > 2 ? B->rank - 2 : 0;
    int rob;
    int64_t odims[PARE_MAX_RANK + 2];
    if ((s = pare_bcast_dims(rab, A->dims, rbb, B->dims, &rob, odims, err)))
        return s;
    int orank = rob;
    if (A->rank > 1)
        odims[orank++] = M;
    if (B->rank > 1)
        odims[orank++] = N;
    if (orank > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "rank too large");
    int64_t nb = prod64(rob, odims);
    int ct = is_fp(dt) ? ctype_of(dt) : PARE_DT_INT64;
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, orank, odims, &y, err)))
        return s;
    if (pare_tensor_numel(y.t) == 0) {
        os_drop(&y);
        return PARE_OK;
    }
    /* the fused form (float32 only: the fuse refused every other dtype) */
    const mm_st *st = k->state;
    pare_gemm_epilogue epb, *ep = NULL;
    float alpha = 1.0f, *rcopy = NULL;
    if (k->fused && st && st->fz) {
        const pare_tensor *R = k->n_in > 3 ? k->in[3] : NULL;
        if (ct != PARE_DT_FLOAT || (st->bias && st->n != N) || (st->residual && !R) ||
            (R && (R->dtype != PARE_DT_FLOAT || pare_tensor_numel(R) != pare_tensor_numel(y.t)))) {
            os_drop(&y);
            return pare_error_set(err, PARE_ERR_INVALID, "fused MatMul: unexpected operands");
        }
        alpha = st->alpha;
        const float *rp = R ? (const float *)R->data : NULL;
        if (rp && (const void *)rp == y.p) { /* the residual in y's own storage */
            size_t rbytes = (size_t)pare_tensor_numel(R) * sizeof(float);
            if (!(rcopy = malloc(rbytes))) {
                os_drop(&y);
                return nomem(err);
            }
            memcpy(rcopy, rp, rbytes);
            rp = rcopy;
        }
        epb = (pare_gemm_epilogue){st->bias, 1, st->act, st->act_a, st->act_b, rp, N};
        ep = &epb;
    }
    if (K == 0) {
        memset(y.p, 0, (size_t)pare_tensor_numel(y.t) * pare_elem_size(ct));
        if (ep) {
            int64_t rows = (int64_t)(pare_tensor_numel(y.t) / (uint64_t)N);
            pare_status es =
                pare_sgemm_ex(k->pool, false, false, rows, N, 0, alpha, NULL, 1, NULL, N, 0.0f,
                              y.p, N, ep);
            free(rcopy);
            if (es) {
                os_drop(&y);
                return nomem(err);
            }
        }
        os_finish(&y);
        return PARE_OK;
    }
    fview a, b;
    if ((s = fv_get(A, ct, &a, err))) {
        free(rcopy);
        os_drop(&y);
        return s;
    }
    if ((s = fv_get(B, ct, &b, err))) {
        free(rcopy);
        fv_free(&a);
        os_drop(&y);
        return s;
    }
    int64_t sa[PARE_MAX_RANK], sb[PARE_MAX_RANK];
    pare_bcast_strides(rob, odims, rab, A->dims, sa);
    pare_bcast_strides(rob, odims, rbb, B->dims, sb);
    bool b_shared = true, a_plain = rab == rob;
    for (int i = 0; i < rob; i++) {
        if (sb[i] != 0)
            b_shared = false;
        if (A->dims[i] != odims[i])
            a_plain = false;
    }
    if (b_shared && a_plain) {
        /* every batch of A times the same B: one tall product */
        int64_t zero = 0;
        s = batched_mm(k->pool, ct, 1, nb * M, N, K, a.p, &zero, b.p, &zero, y.p, alpha, ep,
                       err);
    } else {
        int64_t *off = malloc((size_t)nb * 2 * sizeof *off);
        if (!off) {
            s = nomem(err);
        } else {
            int64_t c[PARE_MAX_RANK] = {0}, oa = 0, ob = 0;
            for (int64_t q = 0; q < nb; q++) {
                off[q] = oa * M * K;
                off[nb + q] = ob * K * N;
                for (int i = rob - 1; i >= 0; i--) {
                    oa += sa[i];
                    ob += sb[i];
                    if (++c[i] < odims[i])
                        break;
                    oa -= sa[i] * odims[i];
                    ob -= sb[i] * odims[i];
                    c[i] = 0;
                }
            }
            s = batched_mm(k->pool, ct, nb, M, N, K, a.p, off, b.p, off + nb, y.p, alpha, ep,
                           err);
            free(off);
        }
    }
    free(rcopy);
    fv_free(&a);
    fv_free(&b);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* spatial attributes shared by Conv, ConvTranspose and pooling          */

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

typedef struct sp_attrs {
    int auto_pad;
    int nk, ns, nd, np, nop, nos;
    int64_t kernel[LIN_MAXSP], strides[LIN_MAXSP], dil[LIN_MAXSP], pads[2 * LIN_MAXSP];
    int64_t out_pad[LIN_MAXSP], out_shape[LIN_MAXSP];
    int64_t group;
    bool ceil_mode, count_include_pad;
    int storage_order;
    double p;
} sp_attrs;

/* Largest accepted kernel/stride/dilation/pad value: far above any real
 * model, low enough that the size arithmetic cannot overflow. */
#define SP_ATTR_MAX ((int64_t)1 << 30)

static pare_status read_ints(const pare_node *n, const char *name, int64_t *dst, int max,
                             int *count, int64_t minv, pare_error *err)
{
    const int64_t *v;
    size_t c = pare_node_attr_ints(n, name, &v);
    if (c > (size_t)max)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "attribute %s has %zu values (at most %d)",
                              name, c, max);
    for (size_t i = 0; i < c; i++) {
        if (v[i] < minv)
            return pare_error_set(err, PARE_ERR_INVALID, "attribute %s: value %lld below %lld",
                                  name, (long long)v[i], (long long)minv);
        if (v[i] > SP_ATTR_MAX)
            return pare_error_set(err, PARE_ERR_LIMIT, "attribute %s: value %lld too large", name,
                                  (long long)v[i]);
        dst[i] = v[i];
    }
    *count = (int)c;
    return PARE_OK;
}

static pare_status sp_parse(const pare_node *n, sp_attrs *a, pare_error *err)
{
    memset(a, 0, sizeof *a);
    const char *ap = pare_node_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !ap[0])
        a->auto_pad = PAD_NOTSET;
    else if (!strcmp(ap, "SAME_UPPER"))
        a->auto_pad = PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER"))
        a->auto_pad = PAD_SAME_LOWER;
    else if (!strcmp(ap, "VALID"))
        a->auto_pad = PAD_VALID;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "unknown auto_pad '%s'", ap);
    pare_status s;
    if ((s = read_ints(n, "kernel_shape", a->kernel, LIN_MAXSP, &a->nk, 1, err)) ||
        (s = read_ints(n, "strides", a->strides, LIN_MAXSP, &a->ns, 1, err)) ||
        (s = read_ints(n, "dilations", a->dil, LIN_MAXSP, &a->nd, 1, err)) ||
        (s = read_ints(n, "pads", a->pads, 2 * LIN_MAXSP, &a->np, 0, err)) ||
        (s = read_ints(n, "output_padding", a->out_pad, LIN_MAXSP, &a->nop, 0, err)) ||
        (s = read_ints(n, "output_shape", a->out_shape, LIN_MAXSP, &a->nos, 1, err)))
        return s;
    a->group = pare_node_attr_int(n, "group", 1);
    if (a->group < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "group %lld must be >= 1",
                              (long long)a->group);
    a->ceil_mode = pare_node_attr_int(n, "ceil_mode", 0) != 0;
    a->count_include_pad = pare_node_attr_int(n, "count_include_pad", 0) != 0;
    a->storage_order = (int)pare_node_attr_int(n, "storage_order", 0) != 0;
    const pare_attr *pa = pare_node_attr(n, "p");
    a->p = 2.0;
    if (pa && pa->type == PARE_ATTR_INT)
        a->p = (double)pa->i;
    else if (pa && pa->type == PARE_ATTR_FLOAT)
        a->p = pa->f;
    if (!(a->p > 0))
        return pare_error_set(err, PARE_ERR_INVALID, "p must be positive");
    return PARE_OK;
}

/* Strides, dilations and the attribute counts checked against nsp spatial dims. */
static pare_status sp_common(const sp_attrs *a, int nsp, int64_t *s, int64_t *d, pare_error *err)
{
    if (nsp < 1 || nsp > LIN_MAXSP)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%d spatial dims (1 to %d supported)", nsp,
                              LIN_MAXSP);
    if ((a->ns && a->ns != nsp) || (a->nd && a->nd != nsp) || (a->np && a->np != 2 * nsp) ||
        (a->nk && a->nk != nsp))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "kernel_shape/strides/dilations/pads do not match %d spatial dims",
                              nsp);
    for (int i = 0; i < nsp; i++) {
        s[i] = a->ns ? a->strides[i] : 1;
        d[i] = a->nd ? a->dil[i] : 1;
    }
    return PARE_OK;
}

/* Output size and begin/end pads of a sliding window (Conv, pools). */
static pare_status sp_geom(const sp_attrs *a, int nsp, const int64_t *in, const int64_t *kern,
                           const int64_t *s, const int64_t *d, bool ceil_mode, int64_t *pb,
                           int64_t *pe, int64_t *out, pare_error *err)
{
    for (int i = 0; i < nsp; i++) {
        int64_t dk;
        if (!mul_ok(kern[i] - 1, d[i], &dk) || dk > INT64_MAX / 4)
            return pare_error_set(err, PARE_ERR_LIMIT, "kernel too large");
        dk += 1;
        switch (a->auto_pad) {
        case PAD_SAME_UPPER:
        case PAD_SAME_LOWER: {
            out[i] = lceil_div(in[i], s[i]);
            int64_t total = lmax(0, (out[i] - 1) * s[i] + dk - in[i]);
            if (a->auto_pad == PAD_SAME_UPPER) {
                pb[i] = total / 2;
                pe[i] = total - pb[i];
            } else {
                pe[i] = total / 2;
                pb[i] = total - pe[i];
            }
            break;
        }
        case PAD_VALID:
            pb[i] = pe[i] = 0;
            if (in[i] < dk)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "window %lld larger than input %lld in spatial dim %d",
                                      (long long)dk, (long long)in[i], i);
            out[i] = (in[i] - dk) / s[i] + 1;
            break;
        default: {
            pb[i] = a->np ? a->pads[i] : 0;
            pe[i] = a->np ? a->pads[i + nsp] : 0;
            int64_t num = in[i] + pb[i] + pe[i] - dk;
            if (num < 0)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "window %lld larger than padded input %lld in spatial dim %d",
                                      (long long)dk, (long long)(in[i] + pb[i] + pe[i]), i);
            if (ceil_mode) {
                out[i] = lceil_div(num, s[i]) + 1;
                if ((out[i] - 1) * s[i] >= in[i] + pb[i])
                    out[i]--;
            } else {
                out[i] = num / s[i] + 1;
            }
        }
        }
    }
    return PARE_OK;
}

/* ===================================================================== */
/* Conv                                                                  */

enum { ACT_NONE, ACT_RELU, ACT_CLIP, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_HARDSIGMOID,
       ACT_HARDSWISH };

typedef struct conv_st {
    sp_attrs a;
    bool fused; /* com.microsoft FusedConv: activation, optional sum input Z */
    int act;
    float act_a, act_b;
    /* weights packed at plan time (float32 initializer, portable GEMM) */
    const void *w_data;
    int64_t w_dims[2 + LIN_MAXSP];
    pare_sgemm_packed_a **packed; /* one per group */
    int64_t n_packed;
    /* Winograd-transformed weights, 16 per group, made at the first run that
     * takes the Winograd path (under mu) */
    pthread_mutex_t mu;
    bool mu_ok, wino_tried;
    pare_sgemm_packed_a **wino;
    /* the form fused at plan time (pare_kernel_fuse), run when k->fused:
     * its own attrs, activation and packs; fold_w/fold_b replace W and B
     * when a BatchNormalization was folded in */
    struct conv_st *fz;
    pare_tensor *fold_w, *fold_b;
    /* plain form of a fused conv: its packs were dropped to save memory and
     * are made again (under mu) the first time it runs, with an observer */
    const pare_tensor *repack;
} conv_st;

static void conv_release(void *p)
{
    conv_st *st = p;
    if (!st)
        return;
    for (int64_t g = 0; g < st->n_packed; g++)
        pare_sgemm_packed_a_free(st->packed[g]);
    free(st->packed);
    for (int64_t i = 0; st->wino && i < 16 * st->a.group; i++)
        pare_sgemm_packed_a_free(st->wino[i]);
    free(st->wino);
    if (st->mu_ok)
        pthread_mutex_destroy(&st->mu);
    conv_release(st->fz);
    pare_tensor_free(st->fold_w);
    pare_tensor_free(st->fold_b);
    free(st);
}

/* Packs constant float32 weights w once into st (portable GEMM); leaves st
 * unpacked (run packs per call) when that does not apply or fails. */
static void conv_pack(conv_st *st, const pare_tensor *w)
{
    if (!w || w->dtype != PARE_DT_FLOAT || w->rank < 3 || w->rank > 4 || pare_sgemm_uses_blas())
        return;
    int64_t M = w->dims[0], g = st->a.group;
    if (M <= 0 || M % g != 0 || (g > 1 && M == g && w->dims[1] == 1))
        return; /* depthwise convs run direct */
    int64_t Kg = prod64(w->rank - 1, w->dims + 1), Mg = M / g;
    if (Kg <= 0 || (uint64_t)M * (uint64_t)Kg * sizeof(float) != w->nbytes)
        return;
    st->packed = calloc((size_t)g, sizeof *st->packed);
    if (!st->packed)
        return;
    for (int64_t i = 0; i < g; i++) {
        if (pare_sgemm_pack_a(false, Mg, Kg, 1.0f, (const float *)w->data + i * Mg * Kg, Kg,
                              &st->packed[i])) {
            for (int64_t j = 0; j < i; j++)
                pare_sgemm_packed_a_free(st->packed[j]);
            free(st->packed);
            st->packed = NULL;
            return;
        }
    }
    st->n_packed = g;
    st->w_data = w->data;
    memcpy(st->w_dims, w->dims, (size_t)w->rank * sizeof *w->dims);
}

static pare_status conv_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    conv_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    pare_status s = sp_parse(n, &st->a, err);
    if (!s && pare_node_is(n, "com.microsoft", "FusedConv")) {
        st->fused = true;
        const char *act = pare_node_attr_string(n, "activation", "");
        const float *ap;
        size_t np = pare_node_attr_floats(n, "activation_params", &ap);
        if (!act[0])
            st->act = ACT_NONE;
        else if (!strcmp(act, "Relu"))
            st->act = ACT_RELU;
        else if (!strcmp(act, "Clip"))
            st->act = ACT_CLIP;
        else if (!strcmp(act, "LeakyRelu"))
            st->act = ACT_LEAKY;
        else if (!strcmp(act, "Sigmoid"))
            st->act = ACT_SIGMOID;
        else if (!strcmp(act, "Tanh"))
            st->act = ACT_TANH;
        else if (!strcmp(act, "HardSigmoid"))
            st->act = ACT_HARDSIGMOID;
        else
            s = pare_error_set(err, PARE_ERR_UNSUPPORTED, "activation '%s' not supported", act);
        /* defaults of the ops the activation stands for */
        st->act_a = st->act == ACT_CLIP ? -INFINITY : st->act == ACT_LEAKY ? 0.01f : 0.2f;
        st->act_b = st->act == ACT_CLIP ? INFINITY : 0.5f;
        if (np > 0)
            st->act_a = ap[0];
        if (np > 1)
            st->act_b = ap[1];
    }
    if (s) {
        free(st);
        return s;
    }
    st->mu_ok = pthread_mutex_init(&st->mu, NULL) == 0;
    *state = st;
    /* Pack constant float32 weights once. */
    const pare_value *wv = n->n_inputs > 1 ? n->inputs[1] : NULL;
    conv_pack(st, wv ? wv->init : NULL);
    return PARE_OK;
}

/* a float32 vector of exactly m elements, or NULL */
static const float *fuse_vec(const pare_tensor *t, int64_t m)
{
    return t && t->dtype == PARE_DT_FLOAT && pare_tensor_numel(t) == (uint64_t)m
               ? (const float *)t->data
               : NULL;
}

/* The fused form of a plain float Conv: the per-channel affine folded into
 * copies of its constant weights and bias, then the residual and the
 * activation of FusedConv. */
static pare_status conv_fuse(const pare_node *n, conv_st *st, const pare_kfuse *f,
                             pare_error *err)
{
    static const int acts[] = {
        [PARE_KACT_NONE] = ACT_NONE,       [PARE_KACT_RELU] = ACT_RELU,
        [PARE_KACT_CLIP] = ACT_CLIP,       [PARE_KACT_LEAKY_RELU] = ACT_LEAKY,
        [PARE_KACT_SIGMOID] = ACT_SIGMOID, [PARE_KACT_TANH] = ACT_TANH,
        [PARE_KACT_HARDSIGMOID] = ACT_HARDSIGMOID, [PARE_KACT_HARDSWISH] = ACT_HARDSWISH,
    };
    if (st->fused || st->fz || f->act < 0 || f->act >= (int)(sizeof acts / sizeof *acts) ||
        n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1] ||
        n->inputs[0]->dtype != PARE_DT_FLOAT)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not a plain float32 Conv");
    conv_st *fz = calloc(1, sizeof *fz);
    if (!fz)
        return nomem(err);
    fz->a = st->a;
    fz->fused = true;
    fz->act = acts[f->act];
    fz->act_a = f->act_a;
    fz->act_b = f->act_b;
    const pare_tensor *w = n->inputs[1]->init;
    if (f->scale || f->shift) {
        const pare_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
        const pare_tensor *b = bv ? bv->init : NULL;
        int64_t M = w && w->rank >= 1 ? w->dims[0] : 0;
        const float *b0 = b ? fuse_vec(b, M) : NULL;
        if (!w || w->dtype != PARE_DT_FLOAT || w->rank < 3 || M <= 0 || M != f->n_ch ||
            (bv && !b0) || n->inputs[1]->producer || (bv && bv->producer)) {
            free(fz);
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "weights not constant");
        }
        pare_status s = pare_tensor_new(NULL, PARE_DT_FLOAT, w->rank, w->dims, &fz->fold_w, err);
        if (!s)
            s = pare_tensor_new(NULL, PARE_DT_FLOAT, 1, &M, &fz->fold_b, err);
        if (s) {
            conv_release(fz);
            return s;
        }
        int64_t per = (int64_t)(pare_tensor_numel(w) / (uint64_t)M);
        float *fw = fz->fold_w->data, *fb = fz->fold_b->data;
        const float *w0 = w->data;
        for (int64_t m = 0; m < M; m++) {
            double a = f->scale ? f->scale[m] : 1.0, sh = f->shift ? f->shift[m] : 0.0;
            for (int64_t i = 0; i < per; i++)
                fw[m * per + i] = (float)(w0[m * per + i] * a);
            fb[m] = (float)((b0 ? (double)b0[m] : 0.0) * a + sh);
        }
        w = fz->fold_w;
    }
    fz->mu_ok = pthread_mutex_init(&fz->mu, NULL) == 0;
    conv_pack(fz, w);
    st->fz = fz;
    /* the plain form only runs for observers: pack it again if it does */
    if (st->packed && st->mu_ok) {
        for (int64_t g = 0; g < st->n_packed; g++)
            pare_sgemm_packed_a_free(st->packed[g]);
        free(st->packed);
        st->packed = NULL;
        st->n_packed = 0;
        st->repack = n->inputs[1]->init;
    }
    return PARE_OK;
}

static pare_status conv_run(pare_kctx *k, pare_error *err);
static pare_status bn_run(pare_kctx *k, pare_error *err);
static pare_status bn_fuse(const pare_node *n, void *state, const pare_kfuse *f, pare_error *err);

pare_status pare_kernel_fuse(const pare_kernel *k, const pare_node *n, void *state,
                             const pare_kfuse *f, pare_error *err)
{
    if (k && k->run == conv_run && state)
        return conv_fuse(n, state, f, err);
    if (k && k->run == matmul_run && state)
        return matmul_fuse(n, state, f, err);
    if (k && k->run == bn_run && state)
        return bn_fuse(n, state, f, err);
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "the kernel does not fuse");
}

/* Depthwise 2-D conv (one input and one output channel per group), direct. */
typedef struct dw_job {
    int64_t C, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
    const float *x, *w, *b;
    float *y;
} dw_job;

static void dw_range(void *ctx, int64_t b, int64_t e)
{
    const dw_job *j = ctx;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % j->C;
        const float *x = j->x + pl * j->ih * j->iw;
        const float *w = j->w + c * j->kh * j->kw;
        float *y = j->y + pl * j->oh * j->ow;
        float bv = j->b ? j->b[c] : 0.0f;
        /* valid output column range per kernel column */
        int64_t lo[64], hi[64];
        bool small = j->kw <= 64;
        for (int64_t kx = 0; small && kx < j->kw; kx++) {
            int64_t off = kx * j->dw - j->pw;
            lo[kx] = lmax(0, lceil_div(-off, j->sw));
            hi[kx] = lmin(j->ow, lmax(lo[kx], lceil_div(j->iw - off, j->sw)));
        }
        for (int64_t oy = 0; oy < j->oh; oy++) {
            float *yr = y + oy * j->ow;
            for (int64_t ox = 0; ox < j->ow; ox++)
                yr[ox] = bv;
            for (int64_t ky = 0; ky < j->kh; ky++) {
                int64_t iy = oy * j->sh - j->ph + ky * j->dh;
                if (iy < 0 || iy >= j->ih)
                    continue;
                const float *xr = x + iy * j->iw;
                for (int64_t kx = 0; kx < j->kw; kx++) {
                    float wv = w[ky * j->kw + kx];
                    int64_t off = kx * j->dw - j->pw;
                    int64_t l, h;
                    if (small) {
                        l = lo[kx];
                        h = hi[kx];
                    } else {
                        l = lmax(0, lceil_div(-off, j->sw));
                        h = lmin(j->ow, lmax(l, lceil_div(j->iw - off, j->sw)));
                    }
                    const float *xs = xr + off;
                    if (j->sw == 1)
                        for (int64_t ox = l; ox < h; ox++)
                            yr[ox] += wv * xs[ox];
                    else
                        for (int64_t ox = l; ox < h; ox++)
                            yr[ox] += wv * xs[ox * j->sw];
                }
            }
        }
    }
}

/* One (image, group) GEMM of a 1-D/2-D float conv, for parallel groups. */
typedef struct cgroup_job {
    int64_t C, M, g, Cg, Mg, inP, outP;
    const pare_im2col *tmpl; /* geometry; x replaced per item */
    const float *x, *w, *b;
    float *y;
    float beta;     /* 1: y already holds the sum input */
    const float *z; /* residual (FusedConv's Z), N x M x outP, or NULL */
    int act;        /* PARE_GEMM_ACT_* */
    float act_a, act_b;
    pare_sgemm_packed_a *const *packed;
    pare_threadpool *pool;
    int fail;
} cgroup_job;

/* The GEMM epilogue's activation for a conv's ACT_*, or -1 when it has none. */
static int conv_gemm_act(int act)
{
    switch (act) {
    case ACT_NONE:
        return PARE_GEMM_ACT_NONE;
    case ACT_RELU:
        return PARE_GEMM_ACT_RELU;
    case ACT_CLIP:
        return PARE_GEMM_ACT_CLIP;
    case ACT_LEAKY:
        return PARE_GEMM_ACT_LEAKY_RELU;
    case ACT_SIGMOID:
        return PARE_GEMM_ACT_SIGMOID;
    case ACT_TANH:
        return PARE_GEMM_ACT_TANH;
    case ACT_HARDSIGMOID:
        return PARE_GEMM_ACT_HARDSIGMOID;
    case ACT_HARDSWISH:
        return PARE_GEMM_ACT_HARDSWISH;
    default:
        return -1;
    }
}

static void cgroup_range(void *ctx, int64_t b, int64_t e)
{
    cgroup_job *j = ctx;
    for (int64_t it = b; it < e; it++) {
        int64_t n = it / j->g, g = it - n * j->g;
        pare_im2col img = *j->tmpl;
        img.x = j->x + (n * j->C + g * j->Cg) * j->inP;
        int64_t Kg = j->Cg * img.kh * img.kw, yo = (n * j->M + g * j->Mg) * j->outP;
        pare_gemm_epilogue ep = {j->b ? j->b + g * j->Mg : NULL,
                                 0,
                                 j->act,
                                 j->act_a,
                                 j->act_b,
                                 j->z ? j->z + yo : NULL,
                                 j->outP};
        pare_status s = pare_sgemm_conv_ex(j->pool, j->Mg, j->packed ? j->packed[g] : NULL,
                                           j->w + g * j->Mg * Kg, Kg, &img, j->beta, &ep, j->y + yo,
                                           j->outP);
        if (s)
            __atomic_store_n(&j->fail, 1, __ATOMIC_RELAXED);
    }
}

/* FusedConv's tail when the GEMM did not do it: y += z, then the activation. */
typedef struct post_job {
    int ct, act;
    double a, b;
    void *y;
    const void *z;
} post_job;

static double act_apply(int act, double v, double a, double b)
{
    switch (act) {
    case ACT_RELU:
        return v < 0 ? 0 : v;
    case ACT_CLIP:
        return v < a ? a : v > b ? b : v;
    case ACT_LEAKY:
        return v < 0 ? a * v : v;
    case ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-v));
    case ACT_TANH:
        return tanh(v);
    case ACT_HARDSIGMOID: {
        double t = a * v + b;
        return t < 0 ? 0 : t > 1 ? 1 : t;
    }
    case ACT_HARDSWISH: {
        double t = v / 6.0 + 0.5;
        return v * (t < 0 ? 0 : t > 1 ? 1 : t);
    }
    default:
        return v;
    }
}

static void post_range(void *ctx, int64_t b, int64_t e)
{
    const post_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        double v = j->ct == PARE_DT_FLOAT ? ((float *)j->y)[i] : ((double *)j->y)[i];
        if (j->z)
            v += j->ct == PARE_DT_FLOAT ? ((const float *)j->z)[i] : ((const double *)j->z)[i];
        v = act_apply(j->act, v, j->a, j->b);
        if (j->ct == PARE_DT_FLOAT)
            ((float *)j->y)[i] = (float)v;
        else
            ((double *)j->y)[i] = v;
    }
}

/* ---- Winograd F(2x2, 3x3) ------------------------------------------------
 * For 3x3, stride-1, undilated float32 convs with constant weights and
 * enough channels and output tiles: each 2x2 output tile is computed from a
 * 4x4 input tile with 16 products per (input, output) channel pair instead
 * of 36. Three parallel passes: input transform into V[16][C][tiles], 16
 * GEMMs Mx[e] = U[e] V[e] (U = G g G^T packed once), output transform.
 * F(2x2, 3x3)'s transforms only use +-1 and 1/2, so it is as accurate as
 * the direct product to a few ulps. */

#define WINO_MIN_TILES 40
#define WINO_MIN_CH 32
/* images too small for Winograd alone (fewer than WINO_MIN_TILES tiles) go
 * through the passes several at a time, up to about WINO_BATCH_TILES_MAX
 * tiles together; larger ones run whole on each thread (wino_item_range),
 * which measured faster for squeezenet's 13x13 and 27x27 layers at batch 8 */
#define WINO_BATCH_TILES WINO_MIN_TILES
#define WINO_BATCH_TILES_MAX 1024

/* Plane stride for n floats: the 16 planes are walked together, and strides
 * that are multiples of 4 KiB would put them all in one cache set. */
static int64_t wino_pad(int64_t n)
{
    return (n + 15) / 16 * 16 + 48;
}

/* U = G g G^T for one 3x3 filter g (row-major), into u[16] */
static void wino_filter(const float *g, float *u)
{
    float t[4][3];
    for (int j = 0; j < 3; j++) {
        float a = g[j], b = g[3 + j], c = g[6 + j];
        t[0][j] = a;
        t[1][j] = 0.5f * (a + b + c);
        t[2][j] = 0.5f * (a - b + c);
        t[3][j] = c;
    }
    for (int i = 0; i < 4; i++) {
        float a = t[i][0], b = t[i][1], c = t[i][2];
        u[i * 4 + 0] = a;
        u[i * 4 + 1] = 0.5f * (a + b + c);
        u[i * 4 + 2] = 0.5f * (a - b + c);
        u[i * 4 + 3] = c;
    }
}

/* Transforms and packs the weights of every group (16 packs per group). */
static bool wino_prepare(conv_st *st, const float *w, int64_t M, int64_t Cg, int64_t g)
{
    int64_t Mg = M / g;
    float *u = malloc((size_t)(16 * Mg * Cg) * sizeof *u);
    pare_sgemm_packed_a **pk = calloc((size_t)(16 * g), sizeof *pk);
    bool ok = u && pk;
    for (int64_t gi = 0; ok && gi < g; gi++) {
        for (int64_t m = 0; m < Mg; m++)
            for (int64_t c = 0; c < Cg; c++) {
                float t[16];
                wino_filter(w + ((gi * Mg + m) * Cg + c) * 9, t);
                for (int e = 0; e < 16; e++)
                    u[(e * Mg + m) * Cg + c] = t[e];
            }
        for (int e = 0; ok && e < 16; e++)
            ok = pare_sgemm_pack_a(false, Mg, Cg, 1.0f, u + e * Mg * Cg, Cg, &pk[gi * 16 + e]) ==
                 PARE_OK;
    }
    free(u);
    if (!ok) {
        for (int64_t i = 0; pk && i < 16 * g; i++)
            pare_sgemm_packed_a_free(pk[i]);
        free(pk);
        return false;
    }
    st->wino = pk;
    return true;
}

typedef struct wino_job {
    const float *x; /* this image's group: C planes of H x W */
    int64_t C, H, W, ph, pw, th, tw, T;
    /* nimg images side by side (tiles of image i at columns i*Ti of V and
     * Mx rows of T = nimg*Ti), x, y and z xs / ys floats apart */
    int64_t nimg, Ti, xs, ys;
    int64_t vs, ms; /* element plane strides of V and Mx (padded, see wino_pad) */
    float *V;       /* [16][C][T] */
    /* GEMMs */
    pare_sgemm_packed_a *const *U; /* 16 */
    int64_t M, tb;                 /* output channels; tiles per GEMM task */
    float *Mx;                     /* [16][M][T] */
    int fail;
    /* output */
    int64_t oh, ow;
    const float *bias, *z; /* z: this image's group of the sum input, or NULL */
    float lo, hi;
    float *y;
} wino_job;

#if GEMM_X86
/* Lanes l of a 16-float load at row offset off that fall inside [0, w). */
static inline __mmask16 wino_lanes(int64_t off, int64_t w)
{
    int64_t lo = off < 0 ? -off : 0, hi = w - off < 16 ? w - off : 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* wino_in_range's work for one row of tiles (channel plane xc, tile row ty,
 * output v = V + c*T + ty*tw), 16 tiles at a time: the 4 x 4 input patches
 * of 16 neighbouring tiles are deinterleaved from stride-2 loads, out-of-image
 * points are masked to 0, and B^T d B is done on whole vectors. */
__attribute__((target("avx512f"))) static void wino_in_row_avx512(const wino_job *j,
                                                                   const float *xc, int64_t ty,
                                                                   float *v)
{
    int64_t CT = j->vs, y0 = 2 * ty - j->ph;
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t tx0 = 0; tx0 < j->tw; tx0 += 16) {
        int64_t nt = j->tw - tx0 < 16 ? j->tw - tx0 : 16;
        __mmask16 tm = (__mmask16)((1u << nt) - 1);
        int64_t xb = 2 * tx0 - j->pw; /* input column of lane 0's q = 0 */
        __m512 d[4][4];
        for (int r = 0; r < 4; r++) {
            int64_t yy = y0 + r;
            if (yy < 0 || yy >= j->H) {
                for (int q = 0; q < 4; q++)
                    d[r][q] = _mm512_setzero_ps();
                continue;
            }
            const float *row = xc + yy * j->W;
            __m512 a0 = _mm512_maskz_loadu_ps(wino_lanes(xb, j->W), row + xb);
            __m512 a1 = _mm512_maskz_loadu_ps(wino_lanes(xb + 16, j->W), row + xb + 16);
            __m512 b0 = _mm512_maskz_loadu_ps(wino_lanes(xb + 2, j->W), row + xb + 2);
            __m512 b1 = _mm512_maskz_loadu_ps(wino_lanes(xb + 18, j->W), row + xb + 18);
            d[r][0] = _mm512_permutex2var_ps(a0, ev, a1);
            d[r][1] = _mm512_permutex2var_ps(a0, od, a1);
            d[r][2] = _mm512_permutex2var_ps(b0, ev, b1);
            d[r][3] = _mm512_permutex2var_ps(b0, od, b1);
        }
        __m512 t[4][4];
        for (int q = 0; q < 4; q++) { /* B^T d */
            t[0][q] = _mm512_sub_ps(d[0][q], d[2][q]);
            t[1][q] = _mm512_add_ps(d[1][q], d[2][q]);
            t[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
            t[3][q] = _mm512_sub_ps(d[1][q], d[3][q]);
        }
        float *vt = v + tx0;
        for (int r = 0; r < 4; r++) { /* (B^T d) B */
            _mm512_mask_storeu_ps(vt + (r * 4 + 0) * CT, tm, _mm512_sub_ps(t[r][0], t[r][2]));
            _mm512_mask_storeu_ps(vt + (r * 4 + 1) * CT, tm, _mm512_add_ps(t[r][1], t[r][2]));
            _mm512_mask_storeu_ps(vt + (r * 4 + 2) * CT, tm, _mm512_sub_ps(t[r][2], t[r][1]));
            _mm512_mask_storeu_ps(vt + (r * 4 + 3) * CT, tm, _mm512_sub_ps(t[r][1], t[r][3]));
        }
    }
}
#endif

static void wino_in_range(void *ctx, int64_t b, int64_t e)
{
    const wino_job *j = ctx;
    int64_t CT = j->vs;
#if GEMM_X86
    pthread_once(&put_once, put_pick);
#endif
    for (int64_t it = b; it < e; it++) {
        int64_t ic = it / j->th, ty = it - ic * j->th, img = ic / j->C, c = ic - img * j->C;
        const float *xc = j->x + img * j->xs + c * j->H * j->W;
        int64_t y0 = 2 * ty - j->ph;
        float *v = j->V + c * j->T + img * j->Ti + ty * j->tw;
#if GEMM_X86
        if (put_avx512) {
            wino_in_row_avx512(j, xc, ty, v);
            continue;
        }
#endif
        for (int64_t tx = 0; tx < j->tw; tx++) {
            int64_t x0 = 2 * tx - j->pw;
            float d[4][4];
            if (y0 >= 0 && y0 + 3 < j->H && x0 >= 0 && x0 + 3 < j->W) {
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++)
                        d[r][q] = xc[(y0 + r) * j->W + x0 + q];
            } else {
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++) {
                        int64_t yy = y0 + r, xx = x0 + q;
                        d[r][q] = yy >= 0 && yy < j->H && xx >= 0 && xx < j->W ? xc[yy * j->W + xx]
                                                                               : 0.0f;
                    }
            }
            float t[4][4];
            for (int q = 0; q < 4; q++) { /* B^T d */
                t[0][q] = d[0][q] - d[2][q];
                t[1][q] = d[1][q] + d[2][q];
                t[2][q] = d[2][q] - d[1][q];
                t[3][q] = d[1][q] - d[3][q];
            }
            for (int r = 0; r < 4; r++) { /* (B^T d) B */
                v[(r * 4 + 0) * CT + tx] = t[r][0] - t[r][2];
                v[(r * 4 + 1) * CT + tx] = t[r][1] + t[r][2];
                v[(r * 4 + 2) * CT + tx] = t[r][2] - t[r][1];
                v[(r * 4 + 3) * CT + tx] = t[r][1] - t[r][3];
            }
        }
    }
}

/* (element e, block of tiles) GEMMs, each on one thread */
static void wino_gemm_range(void *ctx, int64_t b, int64_t e)
{
    wino_job *j = ctx;
    int64_t nblk = (j->T + j->tb - 1) / j->tb;
    for (int64_t it = b; it < e; it++) {
        int64_t el = it / nblk, t0 = (it - el * nblk) * j->tb, n = lmin(j->tb, j->T - t0);
        pare_status s = pare_sgemm_packed(NULL, j->U[el], false, n, j->V + el * j->vs + t0, j->T,
                                          0.0f, NULL, j->Mx + el * j->ms + t0, j->T);
        if (s)
            __atomic_store_n(&j->fail, 1, __ATOMIC_RELAXED);
    }
}

#if GEMM_X86
/* wino_out_range's work for one row of tiles, 16 tiles at a time: A^T M A on
 * vectors, then the two outputs of each tile interleaved into 32 contiguous
 * columns of each of the two output rows (bias, sum input, clamp there). */
__attribute__((target("avx512f"))) static void wino_out_row_avx512(const wino_job *j,
                                                                    const float *mx, int64_t ty,
                                                                    float bv, float *ym,
                                                                    const float *zm)
{
    int64_t MT = j->ms;
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    __m512 vb = _mm512_set1_ps(bv), vlo = _mm512_set1_ps(j->lo), vhi = _mm512_set1_ps(j->hi);
    for (int64_t tx0 = 0; tx0 < j->tw; tx0 += 16) {
        __m512 r[2][4];
        for (int q = 0; q < 4; q++) { /* A^T M */
            __m512 m0 = _mm512_loadu_ps(mx + (0 * 4 + q) * MT + tx0);
            __m512 m1 = _mm512_loadu_ps(mx + (1 * 4 + q) * MT + tx0);
            __m512 m2 = _mm512_loadu_ps(mx + (2 * 4 + q) * MT + tx0);
            __m512 m3 = _mm512_loadu_ps(mx + (3 * 4 + q) * MT + tx0);
            r[0][q] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            r[1][q] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        int64_t ox0 = 2 * tx0, cols = j->ow - ox0 < 32 ? j->ow - ox0 : 32;
        __mmask16 k0 = (__mmask16)(cols >= 16 ? 0xffffu : (1u << cols) - 1);
        __mmask16 k1 = (__mmask16)(cols <= 16 ? 0u : cols >= 32 ? 0xffffu : (1u << (cols - 16)) - 1);
        for (int i = 0; i < 2; i++) {
            int64_t oy = 2 * ty + i;
            if (oy >= j->oh)
                break;
            __m512 o0 = _mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]);
            __m512 o1 = _mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]);
            __m512 a = _mm512_add_ps(_mm512_permutex2var_ps(o0, lo, o1), vb);
            __m512 c = _mm512_add_ps(_mm512_permutex2var_ps(o0, hi, o1), vb);
            float *yr = ym + oy * j->ow + ox0;
            if (zm) {
                const float *zr = zm + oy * j->ow + ox0;
                a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(k0, zr));
                c = _mm512_add_ps(c, _mm512_maskz_loadu_ps(k1, zr + 16));
            }
            /* min/max return the second operand for NaN: NaN stays */
            a = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a));
            c = _mm512_min_ps(vhi, _mm512_max_ps(vlo, c));
            _mm512_mask_storeu_ps(yr, k0, a);
            _mm512_mask_storeu_ps(yr + 16, k1, c);
        }
    }
}
#endif

static void wino_out_range(void *ctx, int64_t b, int64_t e)
{
    const wino_job *j = ctx;
    int64_t MT = j->ms;
#if GEMM_X86
    pthread_once(&put_once, put_pick);
#endif
    for (int64_t it = b; it < e; it++) {
        int64_t im = it / j->th, ty = it - im * j->th, img = im / j->M, m = im - img * j->M;
        const float *mx = j->Mx + m * j->T + img * j->Ti + ty * j->tw;
        float bv = j->bias ? j->bias[m] : 0.0f;
        float *ym = j->y + img * j->ys + m * j->oh * j->ow;
        const float *zm = j->z ? j->z + img * j->ys + m * j->oh * j->ow : NULL;
#if GEMM_X86
        if (put_avx512) {
            wino_out_row_avx512(j, mx, ty, bv, ym, zm);
            continue;
        }
#endif
        for (int64_t tx = 0; tx < j->tw; tx++) {
            float r[2][4];
            for (int q = 0; q < 4; q++) { /* A^T M */
                float m0 = mx[(0 * 4 + q) * MT + tx], m1 = mx[(1 * 4 + q) * MT + tx];
                float m2 = mx[(2 * 4 + q) * MT + tx], m3 = mx[(3 * 4 + q) * MT + tx];
                r[0][q] = m0 + m1 + m2;
                r[1][q] = m1 - m2 - m3;
            }
            for (int i = 0; i < 2; i++) {
                int64_t oy = 2 * ty + i;
                if (oy >= j->oh)
                    break;
                float o[2] = {r[i][0] + r[i][1] + r[i][2], r[i][1] - r[i][2] - r[i][3]};
                for (int q = 0; q < 2; q++) {
                    int64_t ox = 2 * tx + q;
                    if (ox >= j->ow)
                        break;
                    float v = o[q] + bv + (zm ? zm[oy * j->ow + ox] : 0.0f);
                    ym[oy * j->ow + ox] = v < j->lo ? j->lo : v > j->hi ? j->hi : v;
                }
            }
        }
    }
}

/* One group of nimg images through the three passes. */
static pare_status wino_run(pare_threadpool *pool, wino_job *j, pare_error *err)
{
    int threads = pare_threadpool_size(pool);
    pare_parallel_for(pool, j->nimg * j->C * j->th, lmax(1, LIN_GRAIN / lmax(1, 16 * j->tw)),
                      wino_in_range, j);
    int64_t blocks = lmax(1, (3 * (int64_t)threads + 15) / 16);
    j->tb = lmax(32, (j->T + blocks - 1) / blocks + 31) / 32 * 32;
    int64_t items = 16 * ((j->T + j->tb - 1) / j->tb);
    j->fail = 0;
    pare_parallel_for(pool, items, 1, wino_gemm_range, j);
    if (j->fail)
        return nomem(err);
    pare_parallel_for(pool, j->nimg * j->M * j->th, lmax(1, LIN_GRAIN / lmax(1, 4 * j->tw)),
                      wino_out_range, j);
    return PARE_OK;
}

/* The geometry and clamp of a Winograd job (per image fields left zero). */
static void wino_setup(wino_job *j, const conv_st *st, int64_t Cg, int64_t Mg, int64_t ih,
                       int64_t iw, int64_t ph, int64_t pw, int64_t oh, int64_t ow)
{
    memset(j, 0, sizeof *j);
    j->C = Cg;
    j->H = ih;
    j->W = iw;
    j->ph = ph;
    j->pw = pw;
    j->th = (oh + 1) / 2;
    j->tw = (ow + 1) / 2;
    j->M = Mg;
    j->oh = oh;
    j->ow = ow;
    j->lo = st->act == ACT_RELU ? 0.0f : st->act == ACT_CLIP ? st->act_a : -INFINITY;
    j->hi = st->act == ACT_CLIP ? st->act_b : INFINITY;
}

/* Winograd convolutions of (image, group) items [b, e): each with its own
 * transform buffers (the running thread's scratch 3 and 4); the passes of
 * one item go to pool (NULL: run here). */
typedef struct wino_items {
    wino_job t; /* geometry, activation; per item fields filled in */
    const float *x, *z, *b;
    float *y;
    pare_sgemm_packed_a *const *wino;
    int64_t C, M, g, inP, outP, vsz, msz;
    pare_threadpool *pool;
    int fail;
} wino_items;

static void wino_item_range(void *ctx, int64_t b, int64_t e)
{
    wino_items *w = ctx;
    float *V = pare_scratch(3, (size_t)w->vsz * sizeof *V);
    float *Mx = pare_scratch(4, (size_t)w->msz * sizeof *Mx);
    if (!V || !Mx) {
        __atomic_store_n(&w->fail, 1, __ATOMIC_RELAXED);
        return;
    }
    int64_t Cg = w->t.C, Mg = w->t.M;
    for (int64_t it = b; it < e; it++) {
        int64_t n = it / w->g, gi = it - n * w->g;
        wino_job j = w->t;
        j.x = w->x + (n * w->C + gi * Cg) * w->inP;
        j.V = V;
        j.Mx = Mx;
        j.U = w->wino + gi * 16;
        j.bias = w->b ? w->b + gi * Mg : NULL;
        j.z = w->z ? w->z + (n * w->M + gi * Mg) * w->outP : NULL;
        j.y = w->y + (n * w->M + gi * Mg) * w->outP;
        pare_error e2;
        if (wino_run(w->pool, &j, &e2)) {
            __atomic_store_n(&w->fail, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

/* ---- batches of small images ----------------------------------------------
 * A convolution whose output has at most this many pixels per image (7x7,
 * 8x8) gives GEMMs of a strip or two per image; a batch of them runs as one
 * GEMM over the im2col matrices of many images side by side, then the
 * product's column blocks are scattered to the images (with the residual
 * and activation when there is a sum input). */
#define CONV_BATCH_MAX_PIXELS 64
/* floats of im2col matrix per GEMM (larger batches go in pieces) */
#define CONV_BATCH_COL_MAX ((int64_t)1 << 20)

typedef struct scatter_job {
    const float *c; /* M x (nb*outP) */
    int64_t M, outP, nb;
    float *y;       /* the first image of the piece */
    const float *z; /* sum input of that image, or NULL */
    int act;
    float a, b;
} scatter_job;

static void scatter_range(void *ctx, int64_t b, int64_t e)
{
    const scatter_job *j = ctx;
    for (int64_t it = b; it < e; it++) {
        int64_t i = it / j->M, m = it - i * j->M;
        float *d = j->y + (i * j->M + m) * j->outP;
        const float *src = j->c + m * j->nb * j->outP + i * j->outP;
        if (!j->z) {
            memcpy(d, src, (size_t)j->outP * sizeof *d);
            continue;
        }
        /* y = act(y + z): the GEMM's own epilogue over this one row */
        pare_gemm_epilogue ep = {NULL, 0, j->act, j->a, j->b,
                                 j->z + (i * j->M + m) * j->outP, j->outP};
        memcpy(d, src, (size_t)j->outP * sizeof *d);
        pare_gemm_epilogue_apply(NULL, 1, j->outP, &ep, d, j->outP);
    }
}

static pare_status conv_batched(pare_threadpool *pool, const pare_im2col *tmpl, int64_t N,
                                int64_t xstride, int64_t M, int64_t K, const float *w,
                                const pare_sgemm_packed_a *pa, const float *bias,
                                const float *z, int act, float act_a, float act_b, float *y,
                                pare_error *err)
{
    int64_t outP = tmpl->oh * tmpl->ow;
    int64_t nb = lmax(1, lmin(N, CONV_BATCH_COL_MAX / lmax(1, K * outP)));
    float *col = pare_scratch(2, (size_t)(K * nb * outP) * sizeof *col);
    float *c = pare_scratch(5, (size_t)(M * nb * outP) * sizeof *c);
    if (!col || !c)
        return nomem(err);
    /* the activation in the GEMM unless a sum input comes first */
    pare_gemm_epilogue ep = {bias, 0, z ? PARE_GEMM_ACT_NONE : act, act_a, act_b, NULL, 0};
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = lmin(nb, N - n0), cols = cnt * outP;
        pare_im2col g = *tmpl;
        g.x = tmpl->x + n0 * xstride;
        pare_im2col_fill_batch(pool, &g, cnt, xstride, col, cols);
        pare_status st =
            pa ? pare_sgemm_packed_ex(pool, pa, false, cols, col, cols, 0.0f, &ep, c, cols)
               : pare_sgemm_portable_ex(pool, false, false, M, cols, K, 1.0f, w, K, col, cols,
                                        0.0f, c, cols, &ep);
        if (st)
            return st == PARE_ERR_NOMEM ? nomem(err)
                                        : pare_error_set(err, PARE_ERR_INVALID, "GEMM failed");
        scatter_job sj = {c,   M,   outP, cnt, y + n0 * M * outP, z ? z + n0 * M * outP : NULL,
                          act, act_a, act_b};
        pare_parallel_for(pool, cnt * M, lmax(1, 4096 / lmax(1, outP)), scatter_range, &sj);
    }
    return PARE_OK;
}

static void add_bias(pare_threadpool *pool, int ct, void *y, const void *b, int64_t N, int64_t M,
                     int64_t plane);

static pare_status conv_run(pare_kctx *k, pare_error *err)
{
    const conv_st *st = k->state;
    if (k->fused && st->fz)
        st = st->fz;
    const sp_attrs *a = &st->a;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)) || (s = need_in(k, 1, "W", err)))
        return s;
    const pare_tensor *X = k->in[0], *W = k->in[1], *B = k->n_in > 2 ? k->in[2] : NULL;
    if (st->fold_w) {
        W = st->fold_w;
        B = st->fold_b;
    }
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    if (X->rank < 3 || W->rank != X->rank)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "X has rank %d and W rank %d (need equal, >= 3)", X->rank, W->rank);
    int nsp = X->rank - 2;
    int64_t sv[LIN_MAXSP], dv[LIN_MAXSP], pb[LIN_MAXSP], pe[LIN_MAXSP], od[2 + LIN_MAXSP];
    if ((s = sp_common(a, nsp, sv, dv, err)))
        return s;
    int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0], g = a->group;
    if (C % g != 0 || M % g != 0 || W->dims[1] != C / g)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "channels do not fit: X has %lld, W is %lldx%lld, group %lld",
                              (long long)C, (long long)M, (long long)W->dims[1], (long long)g);
    const int64_t *kern = W->dims + 2;
    for (int i = 0; a->nk && i < nsp; i++)
        if (a->kernel[i] != kern[i])
            return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape does not match W");
    for (int i = 0; i < nsp; i++)
        if (kern[i] < 1)
            return pare_error_set(err, PARE_ERR_INVALID, "empty kernel");
    if (B && (B->rank != 1 || B->dims[0] != M))
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have %lld elements", (long long)M);
    if ((s = sp_geom(a, nsp, X->dims + 2, kern, sv, dv, false, pb, pe, od + 2, err)))
        return s;
    od[0] = N;
    od[1] = M;
    const pare_tensor *Z = st->fused && k->n_in > 3 ? k->in[3] : NULL;
    if (Z && (!is_fp(Z->dtype) || Z->rank != X->rank ||
              memcmp(Z->dims, od, (size_t)X->rank * sizeof *od)))
        return pare_error_set(err, PARE_ERR_INVALID, "Z must have the output's shape");
    bool z_done = Z == NULL, act_done = st->act == ACT_NONE;
    int ct = ctype_of(dt);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, od, &y, err)))
        return s;
    if (pare_tensor_numel(y.t) == 0) {
        os_drop(&y);
        return PARE_OK;
    }
    fview xv, wv, bv, zv;
    memset(&wv, 0, sizeof wv);
    memset(&bv, 0, sizeof bv);
    memset(&zv, 0, sizeof zv);
    if ((s = fv_get(X, ct, &xv, err)) || (s = fv_get(W, ct, &wv, err)) ||
        (s = fv_get(B, ct, &bv, err)) || (s = fv_get(Z, ct, &zv, err)))
        goto out;
    int64_t Cg = C / g, Mg = M / g, kprod = prod64(nsp, kern), Kg;
    int64_t inP = prod64(nsp, X->dims + 2), outP = prod64(nsp, od + 2);
    if (!mul_ok(Cg, kprod, &Kg)) {
        s = pare_error_set(err, PARE_ERR_LIMIT, "kernel too large");
        goto out;
    }
    if (ct == PARE_DT_FLOAT && nsp <= 2) {
        const float *x = xv.p, *w = wv.p, *b = bv.p;
        float *yp = y.p;
        int64_t ih = nsp == 2 ? X->dims[2] : 1, iw = X->dims[1 + nsp];
        int64_t oh = nsp == 2 ? od[2] : 1, ow = od[1 + nsp];
        int64_t kh = nsp == 2 ? kern[0] : 1, kw = kern[nsp - 1];
        int64_t sh = nsp == 2 ? sv[0] : 1, sw = sv[nsp - 1], dh = nsp == 2 ? dv[0] : 1;
        int64_t dw = dv[nsp - 1], ph = nsp == 2 ? pb[0] : 0, pw = pb[nsp - 1];
        if (Cg == 1 && Mg == 1 && g > 1) {
            dw_job j = {C, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, x, w, b, yp};
            pare_parallel_for(k->pool, N * C, lmax(1, LIN_GRAIN / lmax(1, outP * kprod)), dw_range,
                              &j);
            goto post;
        }
        pare_im2col img = {x, Cg, ih, iw, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow};
        if (__atomic_load_n(&st->repack, __ATOMIC_ACQUIRE)) {
            conv_st *mst = (conv_st *)st;
            pthread_mutex_lock(&mst->mu);
            if (mst->repack && !mst->packed)
                conv_pack(mst, mst->repack);
            __atomic_store_n(&mst->repack, NULL, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&mst->mu);
        }
        pare_sgemm_packed_a *const *packed =
            st->packed && W->data == st->w_data && W->dtype == PARE_DT_FLOAT ? st->packed : NULL;
        if (pare_sgemm_uses_blas()) {
            /* CBLAS: materialise im2col unless the conv is a plain 1x1 */
            bool plain = kprod == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && pe[0] == 0 &&
                         pe[nsp - 1] == 0;
            float *col = NULL;
            int64_t colsz;
            if (!plain) {
                if (!mul_ok(Kg, outP, &colsz) || !(col = pare_scratch(2, (size_t)colsz * 4))) {
                    s = nomem(err);
                    goto out;
                }
            }
            for (int64_t n = 0; n < N && !s; n++)
                for (int64_t gi = 0; gi < g && !s; gi++) {
                    img.x = x + (n * C + gi * Cg) * inP;
                    const float *bm = img.x;
                    if (!plain) {
                        pare_im2col_fill(k->pool, &img, col);
                        bm = col;
                    }
                    if (pare_sgemm(k->pool, false, false, Mg, outP, Kg, 1.0f, w + gi * Mg * Kg, Kg,
                                   bm, outP, 0.0f, yp + (n * M + gi * Mg) * outP, outP))
                        s = nomem(err);
                }
            if (!s && b)
                add_bias(k->pool, ct, yp, b, N, M, outP);
            goto post;
        }
        int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2;
        if (nsp == 2 && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 &&
            Cg >= WINO_MIN_CH && Mg >= WINO_MIN_CH &&
            (th * tw >= WINO_MIN_TILES || (g == 1 && th * tw * N >= WINO_MIN_TILES)) && packed &&
            (st->act == ACT_NONE || st->act == ACT_RELU || st->act == ACT_CLIP)) {
            conv_st *mst = (conv_st *)st;
            if (mst->mu_ok && !__atomic_load_n(&mst->wino_tried, __ATOMIC_ACQUIRE)) {
                pthread_mutex_lock(&mst->mu);
                if (!mst->wino_tried) {
                    wino_prepare(mst, w, M, Cg, g);
                    __atomic_store_n(&mst->wino_tried, true, __ATOMIC_RELEASE);
                }
                pthread_mutex_unlock(&mst->mu);
            }
            if (mst->mu_ok && st->wino && g == 1 && N > 1 && th * tw < WINO_BATCH_TILES) {
                /* small images: several side by side in each pass, so that
                 * the 16 GEMMs get enough tiles */
                int64_t T = th * tw, nb = lmax(1, lmin(N, WINO_BATCH_TILES_MAX / T));
                int64_t vsz = 16 * wino_pad(Cg * nb * T), msz = 16 * wino_pad(Mg * nb * T);
                float *V = pare_scratch(3, (size_t)vsz * sizeof *V);
                float *Mx = pare_scratch(4, (size_t)msz * sizeof *Mx);
                if (!V || !Mx) {
                    s = nomem(err);
                    goto out;
                }
                for (int64_t n0 = 0; n0 < N && !s; n0 += nb) {
                    int64_t cnt = lmin(nb, N - n0);
                    wino_job wj;
                    wino_setup(&wj, st, Cg, Mg, ih, iw, ph, pw, oh, ow);
                    wj.x = x + n0 * C * inP;
                    wj.nimg = cnt;
                    wj.Ti = T;
                    wj.T = cnt * T;
                    wj.xs = C * inP;
                    wj.ys = M * outP;
                    wj.vs = wino_pad(Cg * cnt * T);
                    wj.ms = wino_pad(Mg * cnt * T);
                    wj.V = V;
                    wj.U = st->wino;
                    wj.Mx = Mx;
                    wj.bias = b;
                    wj.z = Z ? (const float *)zv.p + n0 * M * outP : NULL;
                    wj.y = yp + n0 * M * outP;
                    s = wino_run(k->pool, &wj, err);
                }
                z_done = act_done = true;
                goto post;
            }
            if (mst->mu_ok && st->wino) {
                int64_t T = th * tw, vsz, msz, vs, ms;
                if (!mul_ok(Cg, T, &vs) || !mul_ok(Mg, T, &ms) || !mul_ok(16, wino_pad(vs), &vsz) ||
                    !mul_ok(16, wino_pad(ms), &msz)) {
                    s = nomem(err);
                    goto out;
                }
                wino_items wi;
                memset(&wi, 0, sizeof wi);
                wino_job *wj = &wi.t;
                wino_setup(wj, st, Cg, Mg, ih, iw, ph, pw, oh, ow);
                wj->T = T;
                wj->nimg = 1;
                wj->Ti = T;
                wj->vs = wino_pad(vs);
                wj->ms = wino_pad(ms);
                wi.x = x;
                wi.z = Z ? (const float *)zv.p : NULL;
                wi.y = yp;
                wi.b = b;
                wi.wino = st->wino;
                wi.C = C;
                wi.M = M;
                wi.g = g;
                wi.inP = inP;
                wi.outP = outP;
                wi.vsz = vsz;
                wi.msz = msz;
                /* whole images per thread when there are enough to go round
                 * (each runs its three passes alone); else one at a time,
                 * each pass on the pool */
                int64_t nthr = pare_threadpool_size(k->pool), items = N * g;
                if (items > 1 && (items >= 2 * nthr || items % nthr == 0)) {
                    pare_parallel_for(k->pool, items, 1, wino_item_range, &wi);
                } else {
                    wi.pool = k->pool;
                    wino_item_range(&wi, 0, items);
                }
                if (wi.fail)
                    s = nomem(err);
                z_done = act_done = true;
                goto post;
            }
        }
        /* the sum input and the activation are the GEMM's epilogue, applied
         * per output tile while it is in cache */
        int gact = conv_gemm_act(st->act);
        float beta = 0.0f, ga = st->act_a, gb = st->act_b;
        const float *zp = NULL;
        if (Z) {
            if (zv.p == yp) /* Z is y's own storage: accumulate onto it */
                beta = 1.0f;
            else
                zp = zv.p;
            z_done = true;
        }
        if (gact == PARE_GEMM_ACT_HARDSWISH) { /* as act_apply: alpha 1/6, beta 0.5 */
            ga = 1.0f / 6.0f;
            gb = 0.5f;
        }
        if (gact >= 0)
            act_done = true;
        else
            gact = PARE_GEMM_ACT_NONE;
        if (g == 1 && N > 1 && outP <= CONV_BATCH_MAX_PIXELS && beta == 0.0f) {
            s = conv_batched(k->pool, &img, N, C * inP, M, Kg, w, packed ? packed[0] : NULL, b,
                             zp, gact, ga, gb, yp, err);
            goto post;
        }
        cgroup_job j = {C,  M,    g,  Cg,   Mg, inP, outP,   &img,    x, w, b,
                        yp, beta, zp, gact, ga, gb,  packed, k->pool, 0};
        double flops = (double)Mg * (double)Kg * (double)outP;
        /* whole (image, group) products per thread when there are enough of
         * them to go round: no barrier inside each product, and each thread
         * packs only its own B */
        int64_t nthr = pare_threadpool_size(k->pool), items = N * g;
        if (items > 1 && (flops < 2e6 || items >= 2 * nthr || items % nthr == 0))
            pare_parallel_for(k->pool, N * g, lmax(1, (int64_t)(1e6 / (flops + 1))), cgroup_range,
                              &j);
        else
            for (int64_t it = 0; it < N * g; it++)
                cgroup_range(&j, it, it + 1);
        if (j.fail)
            s = nomem(err);
        goto post;
    }
    /* generic: im2col into scratch, then GEMM per (image, group) */
    {
        size_t es = pare_elem_size(ct);
        int64_t colsz;
        void *col;
        if (!mul_ok(Kg, outP, &colsz) || (uint64_t)colsz > SIZE_MAX / es ||
            !(col = pare_scratch(2, (size_t)colsz * es))) {
            s = nomem(err);
            goto out;
        }
        im2col_job j;
        memset(&j, 0, sizeof j);
        j.nsp = nsp;
        for (int i = 0; i < nsp; i++) {
            j.in[i] = X->dims[2 + i];
            j.out[i] = od[2 + i];
            j.k[i] = kern[i];
            j.s[i] = sv[i];
            j.d[i] = dv[i];
            j.pb[i] = pb[i];
        }
        j.kprod = kprod;
        j.in_plane = inP;
        j.out_plane = outP;
        j.col = col;
        for (int64_t n = 0; n < N && !s; n++)
            for (int64_t gi = 0; gi < g && !s; gi++) {
                size_t xo = (size_t)((n * C + gi * Cg) * inP) * es;
                size_t yo = (size_t)((n * M + gi * Mg) * outP) * es;
                size_t wo = (size_t)(gi * Mg * Kg) * es;
                j.x = (const char *)xv.p + xo;
                pare_parallel_for(k->pool, Kg, lmax(1, LIN_GRAIN / lmax(1, outP)),
                                  BY_CT(ct, im2col_range), &j);
                if (ct == PARE_DT_FLOAT)
                    s = pare_sgemm(k->pool, false, false, Mg, outP, Kg, 1.0f,
                                   (const float *)((const char *)wv.p + wo), Kg, col, outP, 0.0f,
                                   (float *)((char *)y.p + yo), outP);
                else
                    s = pare_dgemm(k->pool, false, false, Mg, outP, Kg, 1.0,
                                   (const double *)((const char *)wv.p + wo), Kg, col, outP, 0.0,
                                   (double *)((char *)y.p + yo), outP);
                if (s)
                    s = nomem(err);
            }
        if (!s && bv.p)
            add_bias(k->pool, ct, y.p, bv.p, N, M, outP);
    }
post:
    if (!s && (!z_done || !act_done)) {
        post_job pj = {ct,  act_done ? ACT_NONE : st->act, st->act_a, st->act_b,
                       y.p, z_done ? NULL : zv.p};
        pare_parallel_for(k->pool, (int64_t)pare_tensor_numel(y.t), LIN_GRAIN, post_range, &pj);
    }
out:
    fv_free(&xv);
    fv_free(&wv);
    fv_free(&bv);
    fv_free(&zv);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

typedef struct bias_job {
    int ct;
    void *y;
    const void *b;
    int64_t M, plane;
} bias_job;

static void bias_range(void *ctx, int64_t b, int64_t e)
{
    const bias_job *j = ctx;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t m = pl % j->M;
        if (j->ct == PARE_DT_FLOAT) {
            float *y = (float *)j->y + pl * j->plane, bv = ((const float *)j->b)[m];
            for (int64_t i = 0; i < j->plane; i++)
                y[i] += bv;
        } else {
            double *y = (double *)j->y + pl * j->plane, bv = ((const double *)j->b)[m];
            for (int64_t i = 0; i < j->plane; i++)
                y[i] += bv;
        }
    }
}

/* y[n][m][:] += b[m] */
static void add_bias(pare_threadpool *pool, int ct, void *y, const void *b, int64_t N, int64_t M,
                     int64_t plane)
{
    bias_job j = {ct, y, b, M, plane};
    pare_parallel_for(pool, N * M, lmax(1, LIN_GRAIN / lmax(1, plane)), bias_range, &j);
}

/* ===================================================================== */
/* ConvTranspose                                                         */

static pare_status convt_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    conv_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    pare_status s = sp_parse(n, &st->a, err);
    if (s) {
        free(st);
        return s;
    }
    *state = st;
    return PARE_OK;
}

static pare_status convt_run(pare_kctx *k, pare_error *err)
{
    const conv_st *st = k->state;
    const sp_attrs *a = &st->a;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)) || (s = need_in(k, 1, "W", err)))
        return s;
    const pare_tensor *X = k->in[0], *W = k->in[1], *B = k->n_in > 2 ? k->in[2] : NULL;
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    if (X->rank < 3 || W->rank != X->rank)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "X has rank %d and W rank %d (need equal, >= 3)", X->rank, W->rank);
    int nsp = X->rank - 2;
    int64_t sv[LIN_MAXSP], dv[LIN_MAXSP], pb[LIN_MAXSP], pe[LIN_MAXSP], od[2 + LIN_MAXSP];
    if ((s = sp_common(a, nsp, sv, dv, err)))
        return s;
    if ((a->nop && a->nop != nsp) || (a->nos && a->nos != nsp && a->nos != nsp + 2))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "output_padding/output_shape do not match %d spatial dims", nsp);
    int64_t N = X->dims[0], C = X->dims[1], g = a->group;
    if (C % g != 0 || W->dims[0] != C)
        return pare_error_set(err, PARE_ERR_INVALID, "W has %lld input channels, X has %lld",
                              (long long)W->dims[0], (long long)C);
    int64_t Cg = C / g, Mg = W->dims[1], M;
    if (!mul_ok(Mg, g, &M))
        return pare_error_set(err, PARE_ERR_LIMIT, "too many channels");
    const int64_t *kern = W->dims + 2;
    for (int i = 0; i < nsp; i++)
        if (kern[i] < 1 || (a->nk && a->kernel[i] != kern[i]))
            return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape does not match W");
    if (B && (B->rank != 1 || B->dims[0] != M))
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have %lld elements", (long long)M);
    const int64_t *os = a->nos == nsp + 2 ? a->out_shape + 2 : a->out_shape;
    for (int i = 0; i < nsp; i++) {
        int64_t in = X->dims[2 + i], op = a->nop ? a->out_pad[i] : 0;
        int64_t dk, full; /* window extent; output size without pads */
        if (in < 1 || !mul_ok(kern[i] - 1, dv[i], &dk) || !mul_ok(sv[i], in - 1, &full) ||
            full > INT64_MAX / 4 || dk > INT64_MAX / 4)
            return pare_error_set(err, PARE_ERR_INVALID, "bad input size %lld in spatial dim %d",
                                  (long long)in, i);
        dk += 1;
        full += op + dk;
        if (a->nos || a->auto_pad == PAD_SAME_UPPER || a->auto_pad == PAD_SAME_LOWER) {
            int64_t o = a->nos ? os[i] : in * sv[i];
            int64_t total = full - o;
            if (a->auto_pad == PAD_SAME_UPPER) {
                pb[i] = lfloor_div(total, 2);
                pe[i] = total - pb[i];
            } else {
                pe[i] = lfloor_div(total, 2);
                pb[i] = total - pe[i];
            }
            od[2 + i] = o;
        } else {
            pb[i] = a->np ? a->pads[i] : 0;
            pe[i] = a->np ? a->pads[nsp + i] : 0;
            od[2 + i] = full - pb[i] - pe[i];
        }
        if (od[2 + i] < 1)
            return pare_error_set(err, PARE_ERR_INVALID, "output size %lld in spatial dim %d",
                                  (long long)od[2 + i], i);
    }
    od[0] = N;
    od[1] = M;
    int ct = ctype_of(dt);
    size_t es = pare_elem_size(ct);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, od, &y, err)))
        return s;
    if (pare_tensor_numel(y.t) == 0) {
        os_drop(&y);
        return PARE_OK;
    }
    fview xv, wv, bv;
    memset(&wv, 0, sizeof wv);
    memset(&bv, 0, sizeof bv);
    if ((s = fv_get(X, ct, &xv, err)) || (s = fv_get(W, ct, &wv, err)) ||
        (s = fv_get(B, ct, &bv, err)))
        goto out;
    int64_t kprod = prod64(nsp, kern), inP = prod64(nsp, X->dims + 2), outP = prod64(nsp, od + 2);
    int64_t rows, colsz;
    void *col;
    if (!mul_ok(Mg, kprod, &rows) || !mul_ok(rows, inP, &colsz) ||
        (uint64_t)colsz > SIZE_MAX / es || !(col = pare_scratch(2, (size_t)colsz * es))) {
        s = nomem(err);
        goto out;
    }
    col2im_job j;
    memset(&j, 0, sizeof j);
    j.nsp = nsp;
    for (int i = 0; i < nsp; i++) {
        j.in[i] = X->dims[2 + i];
        j.out[i] = od[2 + i];
        j.k[i] = kern[i];
        j.s[i] = sv[i];
        j.d[i] = dv[i];
        j.pb[i] = pb[i];
    }
    j.kprod = kprod;
    j.in_plane = inP;
    j.out_plane = outP;
    j.col = col;
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t gi = 0; gi < g && !s; gi++) {
            const char *xg = (const char *)xv.p + (size_t)((n * C + gi * Cg) * inP) * es;
            const char *wg = (const char *)wv.p + (size_t)(gi * Cg * rows) * es;
            /* col[Mg*kprod][inP] = W_g^T (W_g is Cg x Mg*kprod) * X_g */
            if (ct == PARE_DT_FLOAT)
                s = pare_sgemm(k->pool, true, false, rows, inP, Cg, 1.0f, (const float *)wg, rows,
                               (const float *)xg, inP, 0.0f, col, inP);
            else
                s = pare_dgemm(k->pool, true, false, rows, inP, Cg, 1.0, (const double *)wg, rows,
                               (const double *)xg, inP, 0.0, col, inP);
            if (s) {
                s = nomem(err);
                break;
            }
            j.y = (char *)y.p + (size_t)((n * M + gi * Mg) * outP) * es;
            j.bias = bv.p ? (const char *)bv.p + (size_t)(gi * Mg) * es : NULL;
            pare_parallel_for(k->pool, Mg, lmax(1, LIN_GRAIN / lmax(1, rows / lmax(Mg, 1) * inP)),
                              BY_CT(ct, col2im_range), &j);
        }
out:
    fv_free(&xv);
    fv_free(&wv);
    fv_free(&bv);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* MaxPool, AveragePool, LpPool                                          */

typedef struct pool_st {
    sp_attrs a;
    int kind;
} pool_st;

static pare_status pool_init_kind(const pare_node *n, int kind, void **state, pare_error *err)
{
    pool_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    pare_status s = sp_parse(n, &st->a, err);
    if (s) {
        free(st);
        return s;
    }
    if (!st->a.nk) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "kernel_shape is required");
    }
    st->kind = kind;
    *state = st;
    return PARE_OK;
}

static pare_status maxpool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return pool_init_kind(n, POOL_MAX, state, err);
}
static pare_status avgpool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return pool_init_kind(n, POOL_AVG, state, err);
}
static pare_status lppool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return pool_init_kind(n, POOL_LP, state, err);
}

static bool pool_dtype_ok(int kind, int dt)
{
    return is_fp(dt) || (kind == POOL_MAX && (dt == PARE_DT_INT8 || dt == PARE_DT_UINT8));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LIN_X86 1
/* the float pooling body again, compiled for AVX-512 (the build targets
 * baseline x86-64): its row loops then take 16 lanes */
__attribute__((target("avx512f"))) static void pool2d_range_f512(void *ctx, int64_t b, int64_t e)
{
    pool2d_range_f(ctx, b, e);
}
#else
#define LIN_X86 0
#endif

static pare_status pool_run(pare_kctx *k, pare_error *err)
{
    const pool_st *st = k->state;
    const sp_attrs *a = &st->a;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!pool_dtype_ok(st->kind, dt))
        return bad_dtype(dt, err);
    if (X->rank < 3)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 3 (got %d)", X->rank);
    int nsp = X->rank - 2;
    pool_job j;
    memset(&j, 0, sizeof j);
    int64_t od[2 + LIN_MAXSP];
    if ((s = sp_common(a, nsp, j.s, j.d, err)))
        return s;
    if (a->nk != nsp)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "kernel_shape has %d values for %d spatial dims", a->nk, nsp);
    if ((s = sp_geom(a, nsp, X->dims + 2, a->kernel, j.s, j.d, a->ceil_mode, j.pb, j.pe, od + 2,
                     err)))
        return s;
    od[0] = X->dims[0];
    od[1] = X->dims[1];
    j.kind = st->kind;
    j.nsp = nsp;
    for (int i = 0; i < nsp; i++) {
        j.in[i] = X->dims[2 + i];
        j.out[i] = od[2 + i];
        j.k[i] = a->kernel[i];
    }
    j.in_plane = prod64(nsp, j.in);
    j.out_plane = prod64(nsp, j.out);
    j.count_include_pad = a->count_include_pad;
    j.storage_order = a->storage_order;
    j.p = a->p;
    int ct = ctype_of(dt);
    /* MaxPool of 8-bit data compares the bytes themselves */
    bool max8 = st->kind == POOL_MAX && nsp <= 2 && (dt == PARE_DT_UINT8 || dt == PARE_DT_INT8);
    if (max8)
        ct = dt;
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, od, &y, err)))
        return s;
    pare_tensor *Iout = NULL;
    if (st->kind == POOL_MAX && want_out(k, 1) &&
        (s = k->alloc_out(k, 1, PARE_DT_INT64, X->rank, od, &Iout, err))) {
        os_drop(&y);
        return s;
    }
    fview xv;
    if ((s = fv_get(X, ct, &xv, err))) {
        os_drop(&y);
        return s;
    }
    j.x = xv.p;
    j.y = y.p;
    j.ind = Iout ? Iout->data : NULL;
    int64_t planes = od[0] * od[1];
    int64_t work = lmax(1, j.out_plane * prod64(nsp, j.k));
    int64_t *cols = NULL;
    if (nsp <= 2) {
        int64_t ow = j.out[nsp - 1], iw = j.in[nsp - 1], kw = j.k[nsp - 1];
        int64_t sw = j.s[nsp - 1], dw = j.d[nsp - 1], pw = j.pb[nsp - 1], pe = j.pe[nsp - 1];
        cols = malloc((size_t)(ow ? ow : 1) * 3 * sizeof *cols);
        if (cols) {
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t xs = ox * sw - pw;
                cols[ox] = lmax(0, lceil_div(-xs, dw));
                cols[ow + ox] = lmax(cols[ox], lmin(kw, lceil_div(iw - xs, dw)));
                cols[2 * ow + ox] = lmax(0, lmin(kw, lceil_div(iw + pe - xs, dw)));
            }
            j.kxlo = cols;
            j.kxhi = cols + ow;
            j.kxpad = cols + 2 * ow;
        }
    }
    if (max8 && !cols) {
        fv_free(&xv);
        os_drop(&y);
        return nomem(err);
    }
    pare_range_fn fn = max8 ? (dt == PARE_DT_UINT8 ? pool2d_range_u8 : pool2d_range_s8)
                       : cols ? BY_CT(ct, pool2d_range)
                              : BY_CT(ct, pool_range);
#if LIN_X86
    if (cols && ct == PARE_DT_FLOAT && __builtin_cpu_supports("avx512f"))
        fn = pool2d_range_f512;
#endif
    pare_parallel_for(k->pool, planes, lmax(1, LIN_GRAIN / work), fn, &j);
    free(cols);
    fv_free(&xv);
    os_finish(&y);
    return PARE_OK;
}

/* GlobalAveragePool, GlobalMaxPool, GlobalLpPool */
typedef struct gpool_st {
    int kind;
    double p;
} gpool_st;

static pare_status gpool_init_kind(const pare_node *n, int kind, void **state, pare_error *err)
{
    gpool_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->kind = kind;
    st->p = 2.0;
    const pare_attr *pa = pare_node_attr(n, "p");
    if (pa && pa->type == PARE_ATTR_INT)
        st->p = (double)pa->i;
    else if (pa && pa->type == PARE_ATTR_FLOAT)
        st->p = pa->f;
    if (!(st->p > 0)) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "p must be positive");
    }
    *state = st;
    return PARE_OK;
}

static pare_status gmaxpool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return gpool_init_kind(n, POOL_MAX, state, err);
}
static pare_status gavgpool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return gpool_init_kind(n, POOL_AVG, state, err);
}
static pare_status glppool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return gpool_init_kind(n, POOL_LP, state, err);
}

static pare_status gpool_run(pare_kctx *k, pare_error *err)
{
    const gpool_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!pool_dtype_ok(st->kind, dt))
        return bad_dtype(dt, err);
    if (X->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 2 (got %d)", X->rank);
    int64_t od[PARE_MAX_RANK];
    od[0] = X->dims[0];
    od[1] = X->dims[1];
    for (int i = 2; i < X->rank; i++)
        od[i] = 1;
    int ct = ctype_of(dt);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, od, &y, err)))
        return s;
    fview xv;
    if ((s = fv_get(X, ct, &xv, err))) {
        os_drop(&y);
        return s;
    }
    gpool_job j = {st->kind, prod64(X->rank - 2, X->dims + 2), st->p, xv.p, y.p};
    pare_parallel_for(k->pool, od[0] * od[1], lmax(1, LIN_GRAIN / lmax(1, j.plane)),
                      BY_CT(ct, gpool_range), &j);
    fv_free(&xv);
    os_finish(&y);
    return PARE_OK;
}

/* ===================================================================== */
/* MaxUnpool                                                             */

static pare_status unpool_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return pool_init_kind(n, POOL_MAX, state, err);
}

static pare_status unpool_run(pare_kctx *k, pare_error *err)
{
    const pool_st *st = k->state;
    const sp_attrs *a = &st->a;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)) || (s = need_in(k, 1, "I", err)))
        return s;
    const pare_tensor *X = k->in[0], *Ix = k->in[1];
    const pare_tensor *OS = k->n_in > 2 ? k->in[2] : NULL;
    if (X->rank < 3)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 3 (got %d)", X->rank);
    if (Ix->dtype != PARE_DT_INT64 || Ix->rank != X->rank ||
        memcmp(Ix->dims, X->dims, (size_t)X->rank * sizeof *X->dims))
        return pare_error_set(err, PARE_ERR_INVALID, "I must be int64 with the shape of X");
    if (X->dtype == PARE_DT_STRING || pare_dtype_bits(X->dtype) < 8)
        return bad_dtype(X->dtype, err);
    int nsp = X->rank - 2;
    int64_t sv[LIN_MAXSP], dv[LIN_MAXSP], od[2 + LIN_MAXSP];
    if ((s = sp_common(a, nsp, sv, dv, err)))
        return s;
    if (a->nk != nsp)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "kernel_shape has %d values for %d spatial dims", a->nk, nsp);
    /* indices address the inferred shape; output_shape, when given, holds
     * that block in its leading corner (as the reference implementation) */
    int64_t inf[2 + LIN_MAXSP];
    inf[0] = od[0] = X->dims[0];
    inf[1] = od[1] = X->dims[1];
    for (int i = 0; i < nsp; i++) {
        int64_t pb = a->np ? a->pads[i] : 0, pe = a->np ? a->pads[nsp + i] : 0;
        inf[2 + i] = od[2 + i] = (X->dims[2 + i] - 1) * sv[i] + a->kernel[i] - pb - pe;
        if (inf[2 + i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative output size");
    }
    if (OS) {
        int64_t v[PARE_MAX_RANK];
        int64_t c = pare_tensor_ints(OS, v, PARE_MAX_RANK);
        if (c != X->rank)
            return pare_error_set(err, PARE_ERR_INVALID, "output_shape must have %d values",
                                  X->rank);
        for (int i = 0; i < X->rank; i++)
            od[i] = v[i];
    }
    for (int i = 0; i < X->rank; i++)
        if (od[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative output size");
    pare_tensor *Y;
    if ((s = k->alloc_out(k, 0, X->dtype, X->rank, od, &Y, err)))
        return s;
    memset(Y->data, 0, Y->nbytes);
    size_t es = pare_elem_size(X->dtype);
    int64_t total = prod64(X->rank, inf), n = (int64_t)pare_tensor_numel(X);
    bool same = !memcmp(inf, od, (size_t)X->rank * sizeof *od);
    const int64_t *ix = Ix->data;
    for (int64_t q = 0; q < n; q++) {
        int64_t at = ix[q];
        if (at < 0 || at >= total)
            return pare_error_set(err, PARE_ERR_INVALID, "index %lld out of range [0, %lld)",
                                  (long long)at, (long long)total);
        if (!same) {
            int64_t rem = at, dst = 0, mul = 1;
            bool inside = true;
            for (int i = X->rank - 1; i >= 0; i--) {
                int64_t c = rem % inf[i];
                rem /= inf[i];
                if (c >= od[i])
                    inside = false;
                dst += c * mul;
                mul *= od[i];
            }
            if (!inside)
                continue;
            at = dst;
        }
        memcpy((char *)Y->data + (size_t)at * es, (const char *)X->data + (size_t)q * es, es);
    }
    return PARE_OK;
}

/* ===================================================================== */
/* BatchNormalization                                                    */

typedef struct norm_st {
    double eps, momentum;
    bool training; /* training_mode (14+) or is_test == 0 (< 7) */
    int64_t axis;
    int64_t groups; /* GroupNormalization */
    int64_t size;   /* LRN */
    double alpha, beta, bias;
    int p; /* LpNormalization */
    int64_t axes[PARE_MAX_RANK];
    int n_axes;         /* MeanVarianceNormalization; -1: default */
    int stash_dtype[3]; /* declared dtypes of extra outputs (0 unknown) */
    /* BatchNormalization's fused form (pare_kernel_fuse), run when k->fused:
     * y = act(fa[c] * x + fb[c]) with the per-channel affine after it folded
     * in (float32, inference, constant parameters) */
    float *fa, *fb;
    int64_t fc;
    int fact; /* PARE_KACT_NONE, _RELU, _CLIP or _LEAKY_RELU */
    float fact_a, fact_b;
} norm_st;

static void bn_release(void *p)
{
    norm_st *st = p;
    if (st)
        free(st->fa);
    free(st);
}

/* float32 data of constant v with exactly n elements, or NULL */
static const float *bn_const(const pare_value *v, int64_t n)
{
    const pare_tensor *t = v && !v->producer && !v->is_input ? v->init : NULL;
    return t && t->dtype == PARE_DT_FLOAT && pare_tensor_numel(t) == (uint64_t)n
               ? (const float *)t->data
               : NULL;
}

static pare_status bn_fuse(const pare_node *n, void *state, const pare_kfuse *f, pare_error *err)
{
    norm_st *st = state;
    int64_t C = f->n_ch;
    const float *v[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4 && n->n_inputs == 5 && C > 0; i++)
        v[i] = bn_const(n->inputs[i + 1], C);
    if (st->training || st->fa || f->residual || !v[0] || !v[1] || !v[2] || !v[3] ||
        !n->inputs[0] || n->inputs[0]->dtype != PARE_DT_FLOAT ||
        (f->act != PARE_KACT_NONE && f->act != PARE_KACT_RELU && f->act != PARE_KACT_CLIP &&
         f->act != PARE_KACT_LEAKY_RELU))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "not an inference float32 BN");
    float *ab = malloc((size_t)C * 2 * sizeof *ab);
    if (!ab)
        return nomem(err);
    for (int64_t c = 0; c < C; c++) {
        double a = (double)v[0][c] / sqrt((double)v[3][c] + st->eps);
        double b = (double)v[1][c] - (double)v[2][c] * a;
        double k = f->scale ? f->scale[c] : 1.0, d = f->shift ? f->shift[c] : 0.0;
        ab[c] = (float)(a * k);
        ab[C + c] = (float)(b * k + d);
    }
    st->fa = ab;
    st->fb = ab + C;
    st->fc = C;
    st->fact = f->act;
    st->fact_a = f->act_a;
    st->fact_b = f->act_b;
    return PARE_OK;
}

typedef struct bnf_job {
    const norm_st *st;
    int64_t C, plane;
    const float *x;
    float *y;
} bnf_job;

/* planes [b, e) of the fused BatchNormalization */
static void bnf_range(void *ctx, int64_t b, int64_t e)
{
    const bnf_job *j = ctx;
    const norm_st *st = j->st;
    int64_t np = j->plane;
    float lo = st->fact == PARE_KACT_RELU ? 0.0f : st->fact_a, hi = st->fact_b, al = st->fact_a;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % j->C;
        const float *x = j->x + pl * np;
        float *y = j->y + pl * np;
        float a = st->fa[c], bb = st->fb[c];
        switch (st->fact) {
        case PARE_KACT_RELU:
            for (int64_t i = 0; i < np; i++) {
                float t = x[i] * a + bb;
                y[i] = t < lo ? lo : t; /* NaN stays NaN */
            }
            break;
        case PARE_KACT_CLIP:
            for (int64_t i = 0; i < np; i++) {
                float t = x[i] * a + bb;
                t = t < lo ? lo : t;
                y[i] = t > hi ? hi : t;
            }
            break;
        case PARE_KACT_LEAKY_RELU:
            for (int64_t i = 0; i < np; i++) {
                float t = x[i] * a + bb;
                y[i] = t < 0.0f ? t * al : t;
            }
            break;
        default:
            for (int64_t i = 0; i < np; i++)
                y[i] = x[i] * a + bb;
            break;
        }
    }
}

static void norm_out_dtypes(const pare_node *n, norm_st *st)
{
    for (size_t i = 1; i < 3 && i < n->n_outputs; i++)
        st->stash_dtype[i] = n->outputs[i] ? n->outputs[i]->dtype : 0;
}

static pare_status bn_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    st->momentum = pare_node_attr_float(n, "momentum", 0.9f);
    if (opset >= 14)
        st->training = pare_node_attr_int(n, "training_mode", 0) != 0;
    else if (opset < 7)
        st->training = pare_node_attr_int(n, "is_test", 0) == 0 && n->n_outputs > 1;
    else
        st->training = n->n_outputs > 1;
    *state = st;
    return PARE_OK;
}

static pare_status bn_run(pare_kctx *k, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (size_t i = 0; i < 5; i++)
        if ((s = need_in(k, i, names[i], err)))
            return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    if (X->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 2 (got %d)", X->rank);
    int64_t N = X->dims[0], C = X->dims[1], plane = prod64(X->rank - 2, X->dims + 2);
    if (k->fused && st->fa) {
        if (dt != PARE_DT_FLOAT || C != st->fc)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "fused form: X is %s with %lld channels, planned float32 "
                                  "with %lld",
                                  pare_dtype_name(dt), (long long)C, (long long)st->fc);
        pare_tensor *Y;
        if ((s = k->alloc_out(k, 0, dt, X->rank, X->dims, &Y, err)))
            return s;
        bnf_job fj = {st, C, plane, X->data, Y->data};
        pare_parallel_for(k->pool, N * C, lmax(1, LIN_GRAIN / lmax(1, plane)), bnf_range, &fj);
        return PARE_OK;
    }
    bool per_elem = false;
    for (int i = 1; i < 5; i++) {
        uint64_t n = pare_tensor_numel(k->in[i]);
        if (!is_fp(k->in[i]->dtype))
            return bad_dtype(k->in[i]->dtype, err);
        if (n == (uint64_t)C)
            continue;
        if (k->opset < 9 && !st->training && n == (uint64_t)(C * plane)) {
            per_elem = true; /* spatial = 0 */
            continue;
        }
        return pare_error_set(err, PARE_ERR_INVALID, "%s has %llu elements, X has %lld channels",
                              names[i], (unsigned long long)n, (long long)C);
    }
    if (per_elem)
        for (int i = 1; i < 5; i++)
            if (pare_tensor_numel(k->in[i]) != (uint64_t)(C * plane))
                return pare_error_set(err, PARE_ERR_INVALID, "per-activation %s has the wrong size",
                                      names[i]);
    int ct = ctype_of(dt);
    size_t es = pare_elem_size(ct);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview v[5];
    memset(v, 0, sizeof v);
    for (int i = 0; i < 5 && !s; i++)
        s = fv_get(k->in[i], ct, &v[i], err);
    int64_t nab = per_elem ? C * plane : C;
    double *stats = NULL;
    void *ab = NULL;
    if (!s && (!(ab = malloc((size_t)(nab ? nab : 1) * 2 * es)) ||
               !(stats = malloc((size_t)(C ? C : 1) * 2 * sizeof *stats))))
        s = nomem(err);
    if (s)
        goto out;
    double *mean = stats, *var = stats + C;
    if (st->training) {
        bn_train_job tj = {N, C, plane, v[0].p, mean, var};
        pare_parallel_for(k->pool, C, lmax(1, LIN_GRAIN / lmax(1, N * plane)),
                          BY_CT(ct, bn_stats_range), &tj);
    }
    for (int64_t c = 0; c < nab; c++) {
        double sc = pare_dtype_get_f64(ct, v[1].p, (size_t)c);
        double bb = pare_dtype_get_f64(ct, v[2].p, (size_t)c);
        double m = st->training ? mean[c] : pare_dtype_get_f64(ct, v[3].p, (size_t)c);
        double vv = st->training ? var[c] : pare_dtype_get_f64(ct, v[4].p, (size_t)c);
        double aa = sc / sqrt(vv + st->eps);
        pare_dtype_set_f64(ct, ab, (size_t)c, aa);
        pare_dtype_set_f64(ct, ab, (size_t)(nab + c), bb - m * aa);
    }
    affine_job j = {C, plane, ab, (char *)ab + (size_t)nab * es, per_elem, v[0].p, y.p};
    pare_parallel_for(k->pool, N * C, lmax(1, LIN_GRAIN / lmax(1, plane)), BY_CT(ct, affine_range),
                      &j);
    if (st->training) {
        /* 14+: running mean, running var; 7-13: also saved mean and var */
        for (size_t o = 1; o < 5 && !s; o++) {
            if (!want_out(k, o) || (k->opset >= 14 && o > 2))
                continue;
            int odt = k->in[o == 1 || o == 3 ? 3 : 4]->dtype;
            int64_t cd = C;
            pare_tensor *t;
            if ((s = k->alloc_out(k, o, odt, 1, &cd, &t, err)))
                break;
            for (int64_t c = 0; c < C; c++) {
                double val;
                if (o <= 2) {
                    double run = pare_dtype_get_f64(ct, v[o == 1 ? 3 : 4].p, (size_t)c);
                    val = run * st->momentum + (o == 1 ? mean[c] : var[c]) * (1.0 - st->momentum);
                } else {
                    val = o == 3 ? mean[c] : var[c];
                }
                pare_dtype_set_f64(odt, t->data, (size_t)c, val);
            }
        }
    }
out:
    free(ab);
    free(stats);
    for (int i = 0; i < 5; i++)
        fv_free(&v[i]);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* InstanceNormalization, GroupNormalization                             */

static pare_status inorm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    st->groups = pare_node_attr_int(n, "num_groups", 0);
    if (pare_node_is(n, "", "GroupNormalization") && st->groups < 1) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "num_groups must be >= 1");
    }
    *state = st;
    return PARE_OK;
}

static pare_status groupnorm_common(pare_kctx *k, int64_t G, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)) || (s = need_in(k, 1, "scale", err)) ||
        (s = need_in(k, 2, "B", err)))
        return s;
    const pare_tensor *X = k->in[0], *S = k->in[1], *Bt = k->in[2];
    int dt = X->dtype;
    if (!is_fp(dt) || !is_fp(S->dtype) || !is_fp(Bt->dtype))
        return bad_dtype(dt, err);
    if (X->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 2 (got %d)", X->rank);
    int64_t N = X->dims[0], C = X->dims[1], plane = prod64(X->rank - 2, X->dims + 2);
    if (G <= 0)
        G = C;
    if (C % G != 0)
        return pare_error_set(err, PARE_ERR_INVALID, "%lld channels do not split into %lld groups",
                              (long long)C, (long long)G);
    uint64_t ns = pare_tensor_numel(S), nbias = pare_tensor_numel(Bt);
    if ((ns != (uint64_t)C && ns != (uint64_t)G) || nbias != ns)
        return pare_error_set(
            err, PARE_ERR_INVALID, "scale and bias need %lld (or %lld) elements, got %llu and %llu",
            (long long)C, (long long)G, (unsigned long long)ns, (unsigned long long)nbias);
    int ct = ctype_of(dt);
    size_t es = pare_elem_size(ct);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview xv, sv, bv;
    memset(&sv, 0, sizeof sv);
    memset(&bv, 0, sizeof bv);
    void *sb = NULL;
    if ((s = fv_get(X, ct, &xv, err)) || (s = fv_get(S, ct, &sv, err)) ||
        (s = fv_get(Bt, ct, &bv, err)))
        goto out;
    /* per-channel scale and bias (opset 18 GroupNormalization has them per group) */
    if (!(sb = malloc((size_t)(C ? C : 1) * 2 * es))) {
        s = nomem(err);
        goto out;
    }
    for (int64_t c = 0; c < C; c++) {
        int64_t src = ns == (uint64_t)C ? c : c / (C / G);
        memcpy((char *)sb + (size_t)c * es, (const char *)sv.p + (size_t)src * es, es);
        memcpy((char *)sb + (size_t)(C + c) * es, (const char *)bv.p + (size_t)src * es, es);
    }
    group_job j = {C, G, plane, st->eps, xv.p, sb, (char *)sb + (size_t)C * es, y.p};
    pare_parallel_for(k->pool, N * G, lmax(1, LIN_GRAIN / lmax(1, plane * (C / G))),
                      BY_CT(ct, group_range), &j);
out:
    free(sb);
    fv_free(&xv);
    fv_free(&sv);
    fv_free(&bv);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

static pare_status inorm_run(pare_kctx *k, pare_error *err)
{
    return groupnorm_common(k, 0, err);
}

static pare_status gnorm_run(pare_kctx *k, pare_error *err)
{
    const norm_st *st = k->state;
    /* opset 18 took scale/bias per group; 21 per channel: both accepted by size */
    return groupnorm_common(k, st->groups, err);
}

/* ===================================================================== */
/* LayerNormalization, RMSNormalization                                  */

static pare_status lnorm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    st->axis = pare_node_attr_int(n, "axis", -1);
    norm_out_dtypes(n, st);
    *state = st;
    return PARE_OK;
}

/* Expands t (compute type ct) broadcast to dims[0..r) into dst (prod(dims) entries). */
static pare_status expand_to(const pare_tensor *t, const void *data, int ct, int r,
                             const int64_t *dims, void *dst, pare_error *err)
{
    int tr = t->rank;
    const int64_t *td = t->dims;
    while (tr > r && td[0] == 1) { /* leading 1s beyond the target rank */
        td++;
        tr--;
    }
    if (tr > r)
        goto bad;
    for (int i = 0; i < tr; i++)
        if (td[i] != 1 && td[i] != dims[r - tr + i])
            goto bad;
    int64_t str[PARE_MAX_RANK], c[PARE_MAX_RANK] = {0}, off = 0;
    pare_bcast_strides(r, dims, tr, td, str);
    size_t es = pare_elem_size(ct);
    int64_t total = prod64(r, dims);
    for (int64_t q = 0; q < total; q++) {
        memcpy((char *)dst + (size_t)q * es, (const char *)data + (size_t)off * es, es);
        for (int i = r - 1; i >= 0; i--) {
            off += str[i];
            if (++c[i] < dims[i])
                break;
            off -= str[i] * dims[i];
            c[i] = 0;
        }
    }
    return PARE_OK;
bad:;
    char b1[64];
    return pare_error_set(err, PARE_ERR_INVALID,
                          "shape %s does not broadcast to the normalised dims",
                          pare_dims_str(t->rank, t->dims, b1, sizeof b1));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LN_X86 1
static int ln_avx512; /* 0 unknown, 1 no, 2 yes */
static bool ln_has_avx512(void)
{
    int v = __atomic_load_n(&ln_avx512, __ATOMIC_RELAXED);
    if (!v) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 2 : 1;
        __atomic_store_n(&ln_avx512, v, __ATOMIC_RELAXED);
    }
    return v == 2;
}

/* the 16 floats of v as two vectors of 8 doubles */
__attribute__((target("avx512f"))) static inline void ln_cvt(__m512 v, __m512d *lo, __m512d *hi)
{
    *lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    *hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* rows_range for float32 on AVX-512: the mean and the variance summed in
 * double on 16 lanes (the plain loop sums them in one chain), then
 * y = (x - mean) * inv * scale + bias in float as the plain loop does it */
__attribute__((target("avx512f"))) static void ln_rows512(void *ctx, int64_t b, int64_t e)
{
    const rows_job *j = ctx;
    const float *sc = j->scale, *bi = j->bias;
    int64_t D = j->D;
    for (int64_t r = b; r < e; r++) {
        const float *x = (const float *)j->x + r * D;
        float *y = (float *)j->y + r * D;
        double mean = 0.0, var = 0.0;
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), lo, hi;
        int64_t i;
        if (!j->rms) {
            for (i = 0; i + 16 <= D; i += 16) {
                ln_cvt(_mm512_loadu_ps(x + i), &lo, &hi);
                s0 = _mm512_add_pd(s0, lo);
                s1 = _mm512_add_pd(s1, hi);
            }
            mean = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
            for (; i < D; i++)
                mean += (double)x[i];
            mean = D > 0 ? mean / (double)D : 0.0;
        }
        __m512d mv = _mm512_set1_pd(mean);
        s0 = s1 = _mm512_setzero_pd();
        for (i = 0; i + 16 <= D; i += 16) {
            ln_cvt(_mm512_loadu_ps(x + i), &lo, &hi);
            lo = _mm512_sub_pd(lo, mv);
            hi = _mm512_sub_pd(hi, mv);
            s0 = _mm512_add_pd(s0, _mm512_mul_pd(lo, lo));
            s1 = _mm512_add_pd(s1, _mm512_mul_pd(hi, hi));
        }
        var = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
        for (; i < D; i++) {
            double dd = (double)x[i] - mean;
            var += dd * dd;
        }
        var = D > 0 ? var / (double)D : 0.0;
        double inv = 1.0 / sqrt(var + j->eps);
        if (j->mean)
            j->mean[r] = (float)mean;
        if (j->inv)
            j->inv[r] = (float)inv;
        float mt = (float)mean, it = (float)inv;
        __m512 mtv = _mm512_set1_ps(mt), itv = _mm512_set1_ps(it);
        for (i = 0; i + 16 <= D; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), mtv), itv);
            if (sc)
                v = _mm512_mul_ps(v, _mm512_loadu_ps(sc + i));
            if (bi)
                v = _mm512_add_ps(v, _mm512_loadu_ps(bi + i));
            _mm512_storeu_ps(y + i, v);
        }
        for (; i < D; i++) {
            float v = (x[i] - mt) * it;
            if (sc)
                v = v * sc[i];
            if (bi)
                v = v + bi[i];
            y[i] = v;
        }
    }
}
#endif

static pare_status rows_common(pare_kctx *k, bool rms, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)) || (s = need_in(k, 1, "scale", err)))
        return s;
    const pare_tensor *X = k->in[0], *S = k->in[1];
    const pare_tensor *Bt = !rms && k->n_in > 2 ? k->in[2] : NULL;
    int dt = X->dtype;
    if (!is_fp(dt) || !is_fp(S->dtype) || (Bt && !is_fp(Bt->dtype)))
        return bad_dtype(dt, err);
    int axis = 0;
    if (X->rank < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 1");
    if ((s = pare_axis(st->axis, X->rank, &axis, err)))
        return s;
    int64_t rows = prod64(axis, X->dims), D = prod64(X->rank - axis, X->dims + axis);
    int ct = ctype_of(dt);
    size_t es = pare_elem_size(ct);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview xv, sv, bv;
    memset(&sv, 0, sizeof sv);
    memset(&bv, 0, sizeof bv);
    void *sb = NULL;
    float *stash = NULL;
    pare_tensor *mo = NULL, *io = NULL;
    if ((s = fv_get(X, ct, &xv, err)) || (s = fv_get(S, ct, &sv, err)) ||
        (s = fv_get(Bt, ct, &bv, err)))
        goto out;
    if (!(sb = malloc((size_t)(D ? D : 1) * 2 * es))) {
        s = nomem(err);
        goto out;
    }
    if ((s = expand_to(S, sv.p, ct, X->rank - axis, X->dims + axis, sb, err)) ||
        (Bt && (s = expand_to(Bt, bv.p, ct, X->rank - axis, X->dims + axis,
                              (char *)sb + (size_t)D * es, err))))
        goto out;
    bool want_m = !rms && want_out(k, 1), want_i = !rms && want_out(k, 2);
    if (want_m || want_i) {
        int64_t sd[PARE_MAX_RANK];
        for (int i = 0; i < X->rank; i++)
            sd[i] = i < axis ? X->dims[i] : 1;
        int mdt = st->stash_dtype[1] ? st->stash_dtype[1] : dt;
        int idt = st->stash_dtype[2] ? st->stash_dtype[2] : dt;
        if ((want_m && (s = k->alloc_out(k, 1, mdt, X->rank, sd, &mo, err))) ||
            (want_i && (s = k->alloc_out(k, 2, idt, X->rank, sd, &io, err))))
            goto out;
        if (!(stash = malloc((size_t)(rows ? rows : 1) * 2 * sizeof *stash))) {
            s = nomem(err);
            goto out;
        }
    }
    rows_job j = {D,    st->eps, rms,
                  xv.p, sb,      Bt ? (char *)sb + (size_t)D * es : NULL,
                  y.p,  stash,   stash ? stash + rows : NULL,
                  NULL};
    pare_range_fn rfn = BY_CT(ct, rows_range);
#ifdef LN_X86
    if (ct == PARE_DT_FLOAT && ln_has_avx512())
        rfn = ln_rows512;
#endif
    pare_parallel_for(k->pool, rows, lmax(1, LIN_GRAIN / lmax(1, D)), rfn, &j);
    if (mo)
        pare_dtype_convert(mo->dtype, mo->data, PARE_DT_FLOAT, stash, (size_t)rows, false);
    if (io)
        pare_dtype_convert(io->dtype, io->data, PARE_DT_FLOAT, stash + rows, (size_t)rows, false);
out:
    free(stash);
    free(sb);
    fv_free(&xv);
    fv_free(&sv);
    fv_free(&bv);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

static pare_status lnorm_run(pare_kctx *k, pare_error *err)
{
    return rows_common(k, false, err);
}

static pare_status rmsnorm_run(pare_kctx *k, pare_error *err)
{
    return rows_common(k, true, err);
}

/* ===================================================================== */
/* LpNormalization                                                       */

static pare_status lpnorm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->axis = pare_node_attr_int(n, "axis", -1);
    int64_t p = pare_node_attr_int(n, "p", 2);
    if (p != 1 && p != 2) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "p must be 1 or 2 (got %lld)", (long long)p);
    }
    st->p = (int)p;
    *state = st;
    return PARE_OK;
}

static pare_status lpnorm_run(pare_kctx *k, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "input", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    int axis = 0;
    if (X->rank < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "input must have rank >= 1");
    if ((s = pare_axis(st->axis, X->rank, &axis, err)))
        return s;
    int ct = ctype_of(dt);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview xv;
    if ((s = fv_get(X, ct, &xv, err))) {
        os_drop(&y);
        return s;
    }
    lpn_job j = {X->dims[axis], prod64(X->rank - axis - 1, X->dims + axis + 1), st->p, xv.p, y.p};
    int64_t lines = prod64(axis, X->dims) * j.inner;
    pare_parallel_for(k->pool, lines, lmax(1, LIN_GRAIN / lmax(1, j.len)), BY_CT(ct, lpn_range),
                      &j);
    fv_free(&xv);
    os_finish(&y);
    return PARE_OK;
}

/* ===================================================================== */
/* LRN                                                                   */

static pare_status lrn_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    st->alpha = pare_node_attr_float(n, "alpha", 1e-4f);
    st->beta = pare_node_attr_float(n, "beta", 0.75f);
    st->bias = pare_node_attr_float(n, "bias", 1.0f);
    st->size = pare_node_attr_int(n, "size", 0);
    if (st->size < 1) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "size must be >= 1");
    }
    *state = st;
    return PARE_OK;
}

static pare_status lrn_run(pare_kctx *k, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    if (X->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "X must have rank >= 2 (got %d)", X->rank);
    int ct = ctype_of(dt);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview xv;
    if ((s = fv_get(X, ct, &xv, err))) {
        os_drop(&y);
        return s;
    }
    lrn_job j = {
        X->dims[1], prod64(X->rank - 2, X->dims + 2), st->size, st->alpha, st->beta, st->bias, xv.p,
        y.p};
    pare_parallel_for(k->pool, X->dims[0] * X->dims[1],
                      lmax(1, LIN_GRAIN / lmax(1, j.plane * st->size)), BY_CT(ct, lrn_range), &j);
    fv_free(&xv);
    os_finish(&y);
    return PARE_OK;
}

/* ===================================================================== */
/* MeanVarianceNormalization                                             */

static pare_status mvn_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    norm_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    const int64_t *ax;
    size_t c = pare_node_attr_ints(n, "axes", &ax);
    if (!pare_node_attr(n, "axes")) {
        st->n_axes = -1;
    } else if (c > PARE_MAX_RANK) {
        free(st);
        return pare_error_set(err, PARE_ERR_INVALID, "too many axes");
    } else {
        st->n_axes = (int)c;
        memcpy(st->axes, ax, c * sizeof *ax);
    }
    *state = st;
    return PARE_OK;
}

static pare_status mvn_run(pare_kctx *k, pare_error *err)
{
    const norm_st *st = k->state;
    pare_status s;
    if ((s = need_in(k, 0, "X", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    bool red[PARE_MAX_RANK] = {false};
    static const int64_t dflt[] = {0, 2, 3};
    const int64_t *ax = st->n_axes < 0 ? dflt : st->axes;
    int na = st->n_axes < 0 ? 3 : st->n_axes;
    for (int i = 0; i < na; i++) {
        int a = 0;
        if ((s = pare_axis(ax[i], X->rank, &a, err)))
            return s;
        red[a] = true;
    }
    int ct = ctype_of(dt);
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, X->rank, X->dims, &y, err)))
        return s;
    fview xv;
    if ((s = fv_get(X, ct, &xv, err))) {
        os_drop(&y);
        return s;
    }
    s = ct == PARE_DT_DOUBLE ? mvn_d(xv.p, y.p, X->rank, X->dims, red, err)
                             : mvn_f(xv.p, y.p, X->rank, X->dims, red, err);
    fv_free(&xv);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* Einsum                                                                */

#define EIN_ELL 52 /* label ids 0-51 are letters; ellipsis dims get 52+ */

typedef struct ein_term {
    int n; /* letters */
    int lab[EIN_MAXL];
    int ell; /* position of "..." among the letters, -1 if none */
} ein_term;

typedef struct einsum_st {
    int n_in;
    ein_term in[EIN_MAXIN];
    ein_term out;
    bool explicit_out;
} einsum_st;

static int ein_label(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26; /* numpy orders implicit output by character code: A-Z first */
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    return -1;
}

static pare_status ein_parse_term(const char *s, size_t len, ein_term *t, pare_error *err)
{
    t->n = 0;
    t->ell = -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if (s[i] == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || t->ell >= 0)
                return pare_error_set(err, PARE_ERR_INVALID, "bad ellipsis in equation");
            t->ell = t->n;
            i += 2;
            continue;
        }
        int l = ein_label(s[i]);
        if (l < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "bad character '%c' in equation", s[i]);
        if (t->n >= EIN_MAXL - 1)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "equation term too long");
        t->lab[t->n++] = l;
    }
    return PARE_OK;
}

static pare_status einsum_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    const char *eq = pare_node_attr_string(n, "equation", NULL);
    if (!eq)
        return pare_error_set(err, PARE_ERR_INVALID, "attribute equation is required");
    einsum_st *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(err);
    pare_status s = PARE_OK;
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    const char *p = eq, *end = eq + lhs_len;
    while (!s) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *te = comma ? comma : end;
        if (st->n_in >= EIN_MAXIN) {
            s = pare_error_set(err, PARE_ERR_UNSUPPORTED, "more than %d operands", EIN_MAXIN);
            break;
        }
        s = ein_parse_term(p, (size_t)(te - p), &st->in[st->n_in++], err);
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!s && arrow) {
        st->explicit_out = true;
        s = ein_parse_term(arrow + 2, strlen(arrow + 2), &st->out, err);
    }
    if (s) {
        free(st);
        return s;
    }
    *state = st;
    return PARE_OK;
}

/* Per-label sizes and per-input strides of the expanded equation. */
typedef struct ein_plan {
    int nlab; /* label ids < nlab */
    int64_t size[EIN_MAXL];
    int64_t str[EIN_MAXIN][EIN_MAXL];
    int cnt[EIN_MAXIN][EIN_MAXL]; /* occurrences of the label in input i */
    bool bcast1;                  /* some input sees a label of size 1 broadcast */
    int out_n;
    int out_lab[EIN_MAXL];
} ein_plan;

static pare_status ein_plan_make(const einsum_st *st, const pare_tensor *const *in, ein_plan *p,
                                 pare_error *err)
{
    memset(p, 0, sizeof *p);
    int E = 0;
    int er[EIN_MAXIN];
    for (int i = 0; i < st->n_in; i++) {
        const ein_term *t = &st->in[i];
        er[i] = in[i]->rank - t->n;
        if ((t->ell < 0 && er[i] != 0) || er[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "operand %d has rank %d but its term has %d labels", i,
                                  in[i]->rank, t->n);
        if (er[i] > E)
            E = er[i];
    }
    if (EIN_ELL + E > EIN_MAXL)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "ellipsis covers too many dims");
    p->nlab = EIN_ELL + E;
    for (int l = 0; l < p->nlab; l++)
        p->size[l] = -1;
    bool used[EIN_MAXL] = {false};
    int once[EIN_MAXL] = {0};
    /* a label's size is that of its occurrences other than 1; size-1
     * occurrences broadcast (stride 0) */
    for (int i = 0; i < st->n_in; i++) {
        const ein_term *t = &st->in[i];
        const pare_tensor *x = in[i];
        int64_t xs = 1;
        for (int a = x->rank - 1; a >= 0; a--) {
            int l;
            if (t->ell >= 0 && a >= t->ell && a < t->ell + er[i])
                l = EIN_ELL + (E - er[i]) + (a - t->ell);
            else
                l = t->lab[t->ell < 0 || a < t->ell ? a : a - er[i]];
            int64_t d = x->dims[a];
            if (d != 1) {
                if (p->size[l] > 1 && p->size[l] != d)
                    return pare_error_set(err, PARE_ERR_INVALID, "label sizes differ: %lld vs %lld",
                                          (long long)d, (long long)p->size[l]);
                p->size[l] = d;
                p->str[i][l] += xs;
            } else if (p->size[l] < 0) {
                p->size[l] = 1;
            }
            p->cnt[i][l]++;
            once[l]++;
            used[l] = true;
            xs *= d;
        }
    }
    for (int i = 0; i < st->n_in; i++) {
        const ein_term *t = &st->in[i];
        for (int a = 0; a < in[i]->rank; a++) {
            int l;
            if (t->ell >= 0 && a >= t->ell && a < t->ell + er[i])
                l = EIN_ELL + (E - er[i]) + (a - t->ell);
            else
                l = t->lab[t->ell < 0 || a < t->ell ? a : a - er[i]];
            if (in[i]->dims[a] == 1 && p->size[l] != 1)
                p->bcast1 = true;
        }
    }
    if (st->explicit_out) {
        const ein_term *t = &st->out;
        if (t->ell < 0 && E > 0) {
            /* numpy allows dropping the ellipsis only when it covers no dims */
            for (int l = EIN_ELL; l < EIN_ELL + E; l++)
                if (p->size[l] != 1)
                    return pare_error_set(err, PARE_ERR_INVALID, "output drops the ellipsis dims");
        }
        for (int a = 0; a < t->n || (t->ell == t->n && a == t->n); a++) {
            if (t->ell == a)
                for (int e = 0; e < E; e++)
                    p->out_lab[p->out_n++] = EIN_ELL + e;
            if (a == t->n)
                break;
            int l = t->lab[a];
            if (!used[l])
                return pare_error_set(err, PARE_ERR_INVALID, "output label '%c' not in any input",
                                      l < 26 ? 'A' + l : 'a' + l - 26);
            for (int b = 0; b < p->out_n; b++)
                if (p->out_lab[b] == l)
                    return pare_error_set(err, PARE_ERR_INVALID, "output label repeated");
            p->out_lab[p->out_n++] = l;
        }
    } else {
        for (int e = 0; e < E; e++)
            p->out_lab[p->out_n++] = EIN_ELL + e;
        for (int l = 0; l < EIN_ELL; l++)
            if (once[l] == 1)
                p->out_lab[p->out_n++] = l;
    }
    return PARE_OK;
}

/* Fills j's output-label and summed-label tables for inputs of plan p. */
static void ein_job_fill(const ein_plan *p, int n_in, einsum_job *j)
{
    memset(j, 0, sizeof *j);
    j->n_in = n_in;
    bool in_out[EIN_MAXL] = {false};
    for (int a = 0; a < p->out_n; a++) {
        int l = p->out_lab[a];
        in_out[l] = true;
        j->out_size[j->n_out_l] = p->size[l];
        for (int i = 0; i < n_in; i++)
            j->ostr[i][j->n_out_l] = p->str[i][l];
        j->n_out_l++;
    }
    for (int l = 0; l < p->nlab; l++) {
        if (in_out[l] || p->size[l] < 0)
            continue;
        j->sum_size[j->n_sum_l] = p->size[l];
        for (int i = 0; i < n_in; i++)
            j->sstr[i][j->n_sum_l] = p->str[i][l];
        j->n_sum_l++;
    }
}

static void ein_exec(pare_threadpool *pool, int ct, einsum_job *j)
{
    int64_t n = prod64(j->n_out_l, j->out_size), work = prod64(j->n_sum_l, j->sum_size);
    if (work == 0) { /* an empty sum */
        memset(j->y, 0, (size_t)n * pare_elem_size(ct));
        return;
    }
    pare_range_fn fn = ct == PARE_DT_DOUBLE  ? einsum_range_d
                       : ct == PARE_DT_FLOAT ? einsum_range_f
                                             : einsum_range_i;
    pare_parallel_for(pool, n, lmax(1, LIN_GRAIN / lmax(1, work * j->n_in)), fn, j);
}

/* Copies src (strides str per label) into dst laid out in label order lab[0..n). */
static void ein_permute(pare_threadpool *pool, int ct, const void *src, const ein_plan *p,
                        const int64_t *str, const int *lab, int n, void *dst)
{
    einsum_job j;
    memset(&j, 0, sizeof j);
    j.n_in = 1;
    j.n_out_l = n;
    for (int a = 0; a < n; a++) {
        j.out_size[a] = p->size[lab[a]];
        j.ostr[0][a] = str[lab[a]];
    }
    j.x[0] = src;
    j.y = dst;
    ein_exec(pool, ct, &j);
}

/* Two operands without diagonals or one-sided summed labels: permute to
 * [batch, M, K] x [batch, K, N], batched GEMM, permute into place. */
static pare_status ein_matmul(pare_kctx *k, const ein_plan *p, int ct, const void *a, const void *b,
                              void *y, bool *done, pare_error *err)
{
    *done = false;
    bool in_out[EIN_MAXL] = {false};
    for (int q = 0; q < p->out_n; q++)
        in_out[p->out_lab[q]] = true;
    int bl[EIN_MAXL], ml[EIN_MAXL], nl[EIN_MAXL], kl[EIN_MAXL];
    int nb = 0, nm = 0, nn = 0, nk = 0;
    for (int l = 0; l < p->nlab; l++) {
        if (p->size[l] < 0)
            continue;
        int ca = p->cnt[0][l], cb = p->cnt[1][l];
        if (ca > 1 || cb > 1)
            return PARE_OK;
        if (ca && cb)
            if (in_out[l])
                bl[nb++] = l;
            else
                kl[nk++] = l;
        else if (ca && in_out[l])
            ml[nm++] = l;
        else if (cb && in_out[l])
            nl[nn++] = l;
        else
            return PARE_OK; /* summed in one operand only */
    }
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < nb; i++)
        B *= p->size[bl[i]];
    for (int i = 0; i < nm; i++)
        M *= p->size[ml[i]];
    for (int i = 0; i < nn; i++)
        N *= p->size[nl[i]];
    for (int i = 0; i < nk; i++)
        K *= p->size[kl[i]];
    size_t es = pare_elem_size(ct);
    int64_t szA, szB, szC;
    if (!mul_ok(B * M, K, &szA) || !mul_ok(B * K, N, &szB) || !mul_ok(B * M, N, &szC))
        return pare_error_set(err, PARE_ERR_LIMIT, "operands too large");
    char *buf = malloc((size_t)(szA + szB + szC + 1) * es);
    int64_t *off = malloc((size_t)(B * 2 + 1) * sizeof *off);
    if (!buf || !off) {
        free(buf);
        free(off);
        return nomem(err);
    }
    char *pa = buf, *pb = buf + (size_t)szA * es, *pc = pb + (size_t)szB * es;
    int la[EIN_MAXL], lb[EIN_MAXL], lc[EIN_MAXL], n = 0;
    for (int i = 0; i < nb; i++)
        la[n++] = bl[i];
    for (int i = 0; i < nm; i++)
        la[n++] = ml[i];
    for (int i = 0; i < nk; i++)
        la[n++] = kl[i];
    ein_permute(k->pool, ct, a, p, p->str[0], la, n, pa);
    n = 0;
    for (int i = 0; i < nb; i++)
        lb[n++] = bl[i];
    for (int i = 0; i < nk; i++)
        lb[n++] = kl[i];
    for (int i = 0; i < nn; i++)
        lb[n++] = nl[i];
    ein_permute(k->pool, ct, b, p, p->str[1], lb, n, pb);
    for (int64_t q = 0; q < B; q++) {
        off[q] = q * M * K;
        off[B + q] = q * K * N;
    }
    pare_status s =
        batched_mm(k->pool, ct, B, M, N, K, pa, off, pb, off + B, pc, 1.0f, NULL, err);
    if (!s) {
        /* strides of C's labels, C laid out as [batch, m, n] */
        int64_t cstr[EIN_MAXL] = {0}, acc = 1;
        n = 0;
        for (int i = 0; i < nb; i++)
            lc[n++] = bl[i];
        for (int i = 0; i < nm; i++)
            lc[n++] = ml[i];
        for (int i = 0; i < nn; i++)
            lc[n++] = nl[i];
        for (int i = n - 1; i >= 0; i--) {
            cstr[lc[i]] = acc;
            acc *= p->size[lc[i]];
        }
        ein_permute(k->pool, ct, pc, p, cstr, p->out_lab, p->out_n, y);
        *done = true;
    }
    free(buf);
    free(off);
    return s;
}

static pare_status einsum_run(pare_kctx *k, pare_error *err)
{
    const einsum_st *st = k->state;
    if ((int)k->n_in != st->n_in)
        return pare_error_set(err, PARE_ERR_INVALID, "equation has %d operands but the node %zu",
                              st->n_in, k->n_in);
    pare_status s;
    for (int i = 0; i < st->n_in; i++)
        if ((s = need_in(k, (size_t)i, "operand", err)))
            return s;
    int dt = k->in[0]->dtype;
    for (int i = 1; i < st->n_in; i++)
        if (k->in[i]->dtype != dt)
            return pare_error_set(err, PARE_ERR_INVALID, "operands have different dtypes");
    if (!is_fp(dt) && !pare_dtype_is_int(dt))
        return bad_dtype(dt, err);
    if (pare_dtype_bits(dt) < 8)
        return bad_dtype(dt, err);
    ein_plan p;
    if ((s = ein_plan_make(st, k->in, &p, err)))
        return s;
    int64_t od[EIN_MAXL];
    for (int a = 0; a < p.out_n; a++)
        od[a] = p.size[p.out_lab[a]];
    if (p.out_n > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "output rank too large");
    int ct = is_fp(dt) ? ctype_of(dt) : PARE_DT_INT64;
    ostage y;
    if ((s = os_alloc(k, 0, dt, ct, p.out_n, od, &y, err)))
        return s;
    fview v[EIN_MAXIN];
    memset(v, 0, sizeof v);
    for (int i = 0; i < st->n_in && !s; i++)
        s = fv_get(k->in[i], ct, &v[i], err);
    bool done = false;
    if (!s && pare_tensor_numel(y.t) > 0 && st->n_in == 2 && !p.bcast1)
        s = ein_matmul(k, &p, ct, v[0].p, v[1].p, y.p, &done, err);
    if (!s && !done && pare_tensor_numel(y.t) > 0) {
        einsum_job j;
        ein_job_fill(&p, st->n_in, &j);
        for (int i = 0; i < st->n_in; i++)
            j.x[i] = v[i].p;
        j.y = y.p;
        ein_exec(k->pool, ct, &j);
    }
    for (int i = 0; i < st->n_in; i++)
        fv_free(&v[i]);
    if (s)
        os_drop(&y);
    else
        os_finish(&y);
    return s;
}

/* ===================================================================== */
/* Det                                                                   */

static pare_status det_run(pare_kctx *k, pare_error *err)
{
    pare_status s;
    if ((s = need_in(k, 0, "X", err)))
        return s;
    const pare_tensor *X = k->in[0];
    int dt = X->dtype;
    if (!is_fp(dt))
        return bad_dtype(dt, err);
    if (X->rank < 2 || X->dims[X->rank - 1] != X->dims[X->rank - 2])
        return pare_error_set(err, PARE_ERR_INVALID, "X must be [..., M, M]");
    int64_t n = X->dims[X->rank - 1], nm = prod64(X->rank - 2, X->dims), nn;
    if (!mul_ok(n, n, &nn))
        return pare_error_set(err, PARE_ERR_LIMIT, "matrix too large");
    ostage y;
    if ((s = os_alloc(k, 0, dt, PARE_DT_DOUBLE, X->rank - 2, X->dims, &y, err)))
        return s;
    fview xv;
    if ((s = fv_get(X, PARE_DT_DOUBLE, &xv, err))) {
        os_drop(&y);
        return s;
    }
    double *a = malloc((size_t)(nn ? nn : 1) * sizeof *a);
    if (!a) {
        fv_free(&xv);
        os_drop(&y);
        return nomem(err);
    }
    double *out = y.p;
    for (int64_t m = 0; m < nm; m++) {
        memcpy(a, (const double *)xv.p + m * nn, (size_t)nn * sizeof *a);
        double det = 1.0;
        for (int64_t c = 0; c < n; c++) {
            int64_t piv = c;
            for (int64_t r = c + 1; r < n; r++)
                if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
                    piv = r;
            if (a[piv * n + c] == 0.0) {
                det = 0.0;
                break;
            }
            if (piv != c) {
                for (int64_t q = 0; q < n; q++) {
                    double t = a[c * n + q];
                    a[c * n + q] = a[piv * n + q];
                    a[piv * n + q] = t;
                }
                det = -det;
            }
            double d = a[c * n + c];
            det *= d;
            for (int64_t r = c + 1; r < n; r++) {
                double f = a[r * n + c] / d;
                if (f != 0.0)
                    for (int64_t q = c + 1; q < n; q++)
                        a[r * n + q] -= f * a[c * n + q];
            }
        }
        out[m] = det;
    }
    free(a);
    fv_free(&xv);
    os_finish(&y);
    return PARE_OK;
}

/* ===================================================================== */

const pare_kernel pare_kernels_linalg[] = {
    {"", "Gemm", 1, 0, gemm_init, gemm_run, free_state, "fp,int32,int64,uint32,uint64 =0 =0"},
    {"", "MatMul", 1, 0, matmul_init, matmul_run, matmul_release,
     "fp,int32,int64,uint32,uint64 =0"},
    {"", "Conv", 1, 0, conv_init, conv_run, conv_release, "fp"},
    {"com.microsoft", "FusedConv", 1, 0, conv_init, conv_run, conv_release, "fp"},
    {"", "ConvTranspose", 1, 0, convt_init, convt_run, conv_release, "fp"},
    {"", "MaxPool", 1, 0, maxpool_init, pool_run, free_state, "fp,int8,uint8"},
    {"", "AveragePool", 1, 0, avgpool_init, pool_run, free_state, "fp"},
    {"", "LpPool", 1, 0, lppool_init, pool_run, free_state, "fp"},
    {"", "GlobalAveragePool", 1, 0, gavgpool_init, gpool_run, free_state, "fp"},
    {"", "GlobalMaxPool", 1, 0, gmaxpool_init, gpool_run, free_state, "fp,int8,uint8"},
    {"", "GlobalLpPool", 1, 0, glppool_init, gpool_run, free_state, "fp"},
    {"", "MaxUnpool", 9, 0, unpool_init, unpool_run, free_state, NULL},
    {"", "BatchNormalization", 1, 0, bn_init, bn_run, bn_release, "fp fp fp fp fp"},
    {"", "InstanceNormalization", 1, 0, inorm_init, inorm_run, free_state, "fp fp fp"},
    {"", "LayerNormalization", 17, 0, lnorm_init, lnorm_run, free_state, "fp fp fp"},
    {"", "GroupNormalization", 18, 0, inorm_init, gnorm_run, free_state, "fp fp fp"},
    {"", "RMSNormalization", 23, 0, lnorm_init, rmsnorm_run, free_state, "fp fp"},
    {"", "LpNormalization", 1, 0, lpnorm_init, lpnorm_run, free_state, "fp"},
    {"", "LRN", 1, 0, lrn_init, lrn_run, free_state, "fp"},
    {"", "MeanVarianceNormalization", 9, 0, mvn_init, mvn_run, free_state, "fp"},
    {"", "Einsum", 12, 0, einsum_init, einsum_run, free_state, "fp,int =0..."},
    {"", "Det", 11, 0, NULL, det_run, NULL, "fp"},
    {0},
};
