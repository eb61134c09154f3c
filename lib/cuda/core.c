/* The CUDA core kernels: MatMul and Gemm through cuBLAS, elementwise ops
 * with broadcasting, activations, Softmax, LayerNormalization, data
 * movement, Gather, Cast, Where, Expand, reductions, and the view ops
 * (copied on the device). Host side: shapes, attributes (read once at plan
 * time into a cst), launches of the device code in ew.cu, move.cu and
 * reduce.cu. Semantics are the ONNX spec's, as the CPU kernels implement
 * them (lib/exec/kernels_*.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "cuda/cuda_internal.h"
#include "cuda/ops_shared.h"
#include "cuda/core_kernels.h"

/* dtype sets of the records' types specs: the math ops compute in float on
 * these; data movement moves any fixed-size element */
#define FP "float32,float16,bfloat16"
#define MOVE "fp,int,bool"

/* A failed launch (the launchers return a cudaError_t as int). */
#define LAUNCH(call, err)                                                        \
    do {                                                                         \
        int pcu_l_ = (call);                                                     \
        if (pcu_l_)                                                              \
            return pcu_fail_rt(pcu_l_, #call, __FILE__, __LINE__, (err));        \
    } while (0)

/* attributes of a node, read once at plan time */
typedef struct cst {
    int op;                  /* PCU_* code of the family */
    float p0, p1;            /* float attributes (alpha, beta, epsilon, min, max) */
    int64_t axis;
    int64_t f0, f1;          /* int attributes (keepdims, transA, allowzero, to, ...) */
    const int64_t *ints;     /* an ints attribute (perm, axes, split); the node outlives us */
    size_t n_ints;
    bool has_ints;
} cst;

static pare_status new_state(cst **out, pare_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? PARE_OK : PARE_NOMEM(err);
}

static void release_state(void *state)
{
    free(state);
}

static cudaStream_t stream_of(pare_kctx *k)
{
    return ((pcu_session *)k->dev)->stream;
}

static int64_t numel_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

static void contig_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* ---- reading parameter inputs on the host ---- */

pare_status pcu_read_input(pare_kctx *k, size_t i, void *dst, size_t max, size_t *nbytes,
                           pare_error *err)
{
    *nbytes = 0;
    const pare_tensor *t = i < k->n_in ? k->in[i] : NULL;
    if (!t)
        return PARE_OK;
    if (t->nbytes > max)
        return pare_error_set(err, PARE_ERR_LIMIT, "input %zu has %zu bytes, at most %zu read "
                              "on the host", i, t->nbytes, max);
    const pare_value *v = k->node->inputs[i];
    if (v && v->init && v->init->data && v->init->nbytes == t->nbytes) {
        /* a constant: its host copy, no wait for the device */
        memcpy(dst, v->init->data, t->nbytes);
    } else if (t->nbytes) {
        pcu_session *s = k->dev;
        PCU_RT(cudaMemcpyAsync(dst, t->data, t->nbytes, cudaMemcpyDeviceToHost, s->stream), err);
        PCU_RT(cudaStreamSynchronize(s->stream), err);
    }
    *nbytes = t->nbytes;
    return PARE_OK;
}

#define MAX_PARAM 64 /* elements of a parameter input (shape, axes, starts) */

pare_status pcu_read_ints(pare_kctx *k, size_t i, int64_t *vals, size_t max, size_t *count,
                          pare_error *err)
{
    *count = 0;
    const pare_tensor *t = i < k->n_in ? k->in[i] : NULL;
    if (!t)
        return PARE_OK;
    if (t->dtype != PARE_DT_INT64 && t->dtype != PARE_DT_INT32)
        return pare_error_set(err, PARE_ERR_INVALID, "input %zu must be int32 or int64", i);
    int64_t buf[MAX_PARAM];
    size_t nb;
    pare_status st = pcu_read_input(k, i, buf, sizeof buf, &nb, err);
    if (st)
        return st;
    size_t n = nb / (t->dtype == PARE_DT_INT64 ? 8 : 4);
    if (n > max)
        return pare_error_set(err, PARE_ERR_LIMIT, "input %zu has %zu values, at most %zu", i, n,
                              max);
    for (size_t j = 0; j < n; j++) {
        if (t->dtype == PARE_DT_INT64) {
            vals[j] = buf[j];
        } else {
            int32_t v;
            memcpy(&v, (const char *)buf + 4 * j, 4);
            vals[j] = v;
        }
    }
    *count = n;
    return PARE_OK;
}

/* a scalar float input (Clip's min and max) read on the host; *present false if omitted */
static pare_status read_scalar(pare_kctx *k, size_t i, float *v, bool *present, pare_error *err)
{
    *present = false;
    const pare_tensor *t = i < k->n_in ? k->in[i] : NULL;
    if (!t || t->nbytes == 0)
        return PARE_OK;
    uint8_t buf[8];
    size_t nb;
    pare_status st = pcu_read_input(k, i, buf, sizeof buf, &nb, err);
    if (st)
        return st;
    uint16_t h;
    memcpy(&h, buf, 2);
    if (t->dtype == PARE_DT_FLOAT)
        memcpy(v, buf, 4);
    else if (t->dtype == PARE_DT_FLOAT16)
        *v = pare_f16_to_f32(h);
    else if (t->dtype == PARE_DT_BFLOAT16)
        *v = pare_bf16_to_f32(h);
    else
        return pare_error_set(err, PARE_ERR_INVALID, "input %zu: unexpected dtype %s", i,
                              pare_dtype_name(t->dtype));
    *present = true;
    return PARE_OK;
}

/* ---- shapes for the device ---- */

/* Folds an iteration space of rank dims with nops operands' strides into a
 * pcu_shape: drops dims of 1 and merges neighbours that are contiguous in
 * every operand, so that most shapes fit PCU_MAX_RANK (and index math is
 * cheaper). */
static pare_status fold(int rank, const int64_t *dims, int nops, int64_t (*st)[PARE_MAX_RANK],
                        pcu_shape *sh, pcu_strides *out, pare_error *err)
{
    int r = 0;
    int64_t d[PARE_MAX_RANK], s[4][PARE_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 1)
            continue;
        bool merge = r > 0;
        for (int o = 0; merge && o < nops; o++)
            merge = s[o][r - 1] == st[o][i] * dims[i];
        if (merge) {
            d[r - 1] *= dims[i];
            for (int o = 0; o < nops; o++)
                s[o][r - 1] = st[o][i];
        } else {
            d[r] = dims[i];
            for (int o = 0; o < nops; o++)
                s[o][r] = st[o][i];
            r++;
        }
    }
    if (r == 0) {
        d[0] = 1;
        for (int o = 0; o < nops; o++)
            s[o][0] = 0;
        r = 1;
    }
    if (r > PCU_MAX_RANK)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "shape of rank %d (%d after folding) "
                              "is beyond the %d dims of the cuda kernels", rank, r, PCU_MAX_RANK);
    memset(sh, 0, sizeof *sh);
    sh->rank = r;
    for (int i = 0; i < r; i++)
        sh->dims[i] = d[i];
    for (int o = 0; o < nops; o++) {
        memset(&out[o], 0, sizeof out[o]);
        for (int i = 0; i < r; i++)
            out[o].s[i] = s[o][i];
    }
    return PARE_OK;
}

static pare_status copy_dev(pare_kctx *k, void *dst, const void *src, size_t bytes,
                            pare_error *err)
{
    if (bytes && dst != src)
        PCU_RT(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_of(k)), err);
    return PARE_OK;
}

/* ---- elementwise ---- */

static pare_status bin_init_op(const pare_node *n, int op, void **state, pare_error *err)
{
    (void)n;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->op = op;
    *state = c;
    return PARE_OK;
}

#define BIN_INIT(name, OP)                                                                   \
    static pare_status name(const pare_node *n, int64_t opset, void **state, pare_error *err) \
    {                                                                                        \
        (void)opset;                                                                         \
        return bin_init_op(n, OP, state, err);                                               \
    }
BIN_INIT(add_init, PCU_ADD)
BIN_INIT(sub_init, PCU_SUB)
BIN_INIT(mul_init, PCU_MUL)
BIN_INIT(div_init, PCU_DIV)
BIN_INIT(pow_init, PCU_POW)
BIN_INIT(max_init, PCU_MAX)
BIN_INIT(min_init, PCU_MIN)
BIN_INIT(prelu_init, PCU_PRELU)
BIN_INIT(and_init, PCU_AND)
BIN_INIT(or_init, PCU_OR)
BIN_INIT(xor_init, PCU_XOR)
BIN_INIT(eq_init, PCU_EQ)
BIN_INIT(lt_init, PCU_LT)
BIN_INIT(gt_init, PCU_GT)
BIN_INIT(le_init, PCU_LE)
BIN_INIT(ge_init, PCU_GE)
BIN_INIT(sum_init, PCU_ADD)
BIN_INIT(mean_init, PCU_ADD)

/* y (dims of rank) = a op b, each broadcast to y */
static pare_status launch_binary(pare_kctx *k, int op, int dtype, int rank, const int64_t *dims,
                                 const pare_tensor *a, const pare_tensor *b, void *a_data,
                                 int ra, const int64_t *da, void *y, pare_error *err)
{
    int64_t st[2][PARE_MAX_RANK];
    pare_bcast_strides(rank, dims, ra, da, st[0]);
    pare_bcast_strides(rank, dims, b->rank, b->dims, st[1]);
    pcu_shape sh;
    pcu_strides ss[2];
    pare_status s = fold(rank, dims, 2, st, &sh, ss, err);
    if (s)
        return s;
    (void)a;
    LAUNCH(pcu_binary(op, dtype, &sh, &ss[0], &ss[1], a_data, b->data, y, numel_of(rank, dims),
                      stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status bin_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *a = k->in[0], *b = k->in[1];
    if (!a || !b)
        return pare_error_set(err, PARE_ERR_INVALID, "two inputs expected");
    int rank;
    int64_t dims[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(a->rank, a->dims, b->rank, b->dims, &rank, dims, err);
    if (st)
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, c->op >= PCU_EQ ? PARE_DT_BOOL : a->dtype, rank, dims, &y, err)))
        return st;
    return launch_binary(k, c->op, a->dtype, rank, dims, a, b, a->data, a->rank, a->dims, y->data,
                         err);
}

static pare_status not_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, PARE_DT_BOOL, x->rank, x->dims, &y, err);
    if (st)
        return st;
    LAUNCH(pcu_not(x->data, y->data, (int64_t)pare_tensor_numel(x), stream_of(k)), err);
    return PARE_OK;
}

/* Sum, Mean, Max, Min: folded pairwise into the output */
static pare_status variadic_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    int rank = 0;
    int64_t dims[PARE_MAX_RANK];
    const pare_tensor *first = NULL;
    size_t n = 0;
    pare_status st;
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t)
            continue;
        if (!first) {
            first = t;
            rank = t->rank;
            if (rank) /* a scalar's dims may be NULL */
                memcpy(dims, t->dims, (size_t)rank * sizeof *dims);
        } else if ((st = pare_bcast_dims(rank, dims, t->rank, t->dims, &rank, dims, err))) {
            return st;
        }
        n++;
    }
    if (!first)
        return pare_error_set(err, PARE_ERR_INVALID, "no inputs");
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, first->dtype, rank, dims, &y, err)))
        return st;
    if (n == 1) {
        int64_t s0[1][PARE_MAX_RANK];
        int64_t sy[PARE_MAX_RANK];
        pare_bcast_strides(rank, dims, first->rank, first->dims, s0[0]);
        contig_strides(rank, dims, sy);
        int64_t both[2][PARE_MAX_RANK];
        memcpy(both[0], s0[0], sizeof both[0]);
        memcpy(both[1], sy, sizeof both[1]);
        pcu_shape sh;
        pcu_strides ss[2];
        if ((st = fold(rank, dims, 2, both, &sh, ss, err)))
            return st;
        LAUNCH(pcu_copy_nd((int)pare_elem_size(first->dtype), &sh, first->data, &ss[0], 0,
                           y->data, &ss[1], 0, numel_of(rank, dims), stream_of(k)),
               err);
        return PARE_OK;
    }
    bool started = false;
    const pare_tensor *prev = NULL;
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t)
            continue;
        if (!prev) {
            prev = t;
            continue;
        }
        if (!started) {
            st = launch_binary(k, c->op, first->dtype, rank, dims, prev, t, prev->data,
                               prev->rank, prev->dims, y->data, err);
            started = true;
        } else {
            /* y op t in place: each element is read and written by one thread */
            st = launch_binary(k, c->op, first->dtype, rank, dims, y, t, y->data, rank, dims,
                               y->data, err);
        }
        if (st)
            return st;
    }
    if (strcmp(k->node->op_type, "Mean") == 0)
        LAUNCH(pcu_unary(PCU_SCALE, y->dtype, y->data, y->data, numel_of(rank, dims),
                         1.0f / (float)n, 0, stream_of(k)),
               err);
    return PARE_OK;
}

static pare_status un_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    static const struct {
        const char *op;
        int code;
    } ops[] = {{"Neg", PCU_NEG},         {"Abs", PCU_ABS},       {"Sqrt", PCU_SQRT},
               {"Exp", PCU_EXP},         {"Log", PCU_LOG},       {"Reciprocal", PCU_RECIP},
               {"Floor", PCU_FLOOR},     {"Ceil", PCU_CEIL},     {"Erf", PCU_ERF},
               {"Tanh", PCU_TANH},       {"Sigmoid", PCU_SIGMOID}, {"Relu", PCU_RELU},
               {"LeakyRelu", PCU_LEAKYRELU}, {"Elu", PCU_ELU},   {"Selu", PCU_SELU},
               {"Gelu", PCU_GELU},       {"HardSigmoid", PCU_HARDSIGMOID},
               {"HardSwish", PCU_HARDSWISH}, {"Clip", PCU_CLIP}, {"Softplus", PCU_SOFTPLUS},
               {"Sin", PCU_SIN},         {"Cos", PCU_COS},       {"Tan", PCU_TAN},
               {"Asin", PCU_ASIN},       {"Acos", PCU_ACOS},     {"Atan", PCU_ATAN},
               {"Sinh", PCU_SINH},       {"Cosh", PCU_COSH},     {"Asinh", PCU_ASINH},
               {"Acosh", PCU_ACOSH},     {"Atanh", PCU_ATANH},   {"Round", PCU_ROUND},
               {"Sign", PCU_SIGN},       {"Softsign", PCU_SOFTSIGN}, {"Mish", PCU_MISH},
               {"Celu", PCU_CELU},       {"ThresholdedRelu", PCU_THRESHOLDED_RELU}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(n->op_type, ops[i].op) == 0)
            c->op = ops[i].code;
    switch (c->op) {
    case PCU_LEAKYRELU:
        c->p0 = pare_node_attr_float(n, "alpha", 0.01f);
        break;
    case PCU_ELU:
        c->p0 = pare_node_attr_float(n, "alpha", 1.0f);
        break;
    case PCU_SELU:
        c->p0 = pare_node_attr_float(n, "alpha", 1.67326319217681884765625f);
        c->p1 = pare_node_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case PCU_HARDSIGMOID:
        c->p0 = pare_node_attr_float(n, "alpha", 0.2f);
        c->p1 = pare_node_attr_float(n, "beta", 0.5f);
        break;
    case PCU_CELU:
    case PCU_THRESHOLDED_RELU:
        c->p0 = pare_node_attr_float(n, "alpha", 1.0f);
        break;
    case PCU_GELU:
        if (strcmp(pare_node_attr_string(n, "approximate", "none"), "tanh") == 0)
            c->op = PCU_GELU_TANH;
        break;
    case PCU_CLIP: /* opset < 11: attributes; later: inputs read at run time */
        c->p0 = opset < 11 ? pare_node_attr_float(n, "min", -INFINITY) : -INFINITY;
        c->p1 = opset < 11 ? pare_node_attr_float(n, "max", INFINITY) : INFINITY;
        break;
    default:
        break;
    }
    *state = c;
    return PARE_OK;
}

static pare_status un_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    float p0 = c->p0, p1 = c->p1;
    pare_status st;
    if (c->op == PCU_CLIP && k->opset >= 11) {
        bool have;
        float v;
        if ((st = read_scalar(k, 1, &v, &have, err)))
            return st;
        if (have)
            p0 = v;
        if ((st = read_scalar(k, 2, &v, &have, err)))
            return st;
        if (have)
            p1 = v;
    }
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err)))
        return st;
    LAUNCH(pcu_unary(c->op, x->dtype, x->data, y->data, (int64_t)pare_tensor_numel(x), p0, p1,
                     stream_of(k)),
           err);
    return PARE_OK;
}

/* ---- Cast ---- */

static pare_status cast_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->f0 = pare_node_attr_int(n, "to", 0);
    *state = c;
    return PARE_OK;
}

/* the dtypes pcu_cast converts (backend.c declines a Cast to another) */
bool pcu_cast_supported(int dtype)
{
    switch (dtype) {
    case PARE_DT_FLOAT:
    case PARE_DT_FLOAT16:
    case PARE_DT_BFLOAT16:
    case PARE_DT_INT32:
    case PARE_DT_INT64:
    case PARE_DT_BOOL:
    case PARE_DT_INT8:
    case PARE_DT_UINT8:
        return true;
    default:
        return false;
    }
}

static pare_status cast_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int to = (int)c->f0;
    if (!pcu_cast_supported(to))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Cast to %s on cuda",
                              pare_dtype_name(to));
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, to, x->rank, x->dims, &y, err);
    if (st)
        return st;
    if (to == x->dtype)
        return copy_dev(k, y->data, x->data, x->nbytes, err);
    LAUNCH(pcu_cast(x->dtype, to, x->data, y->data, (int64_t)pare_tensor_numel(x), stream_of(k)),
           err);
    return PARE_OK;
}

/* ---- Where ---- */

static pare_status where_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *c = k->in[0], *x = k->in[1], *z = k->in[2];
    int rank;
    int64_t dims[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(c->rank, c->dims, x->rank, x->dims, &rank, dims, err);
    if (st || (st = pare_bcast_dims(rank, dims, z->rank, z->dims, &rank, dims, err)))
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, rank, dims, &y, err)))
        return st;
    int64_t s[3][PARE_MAX_RANK];
    pare_bcast_strides(rank, dims, c->rank, c->dims, s[0]);
    pare_bcast_strides(rank, dims, x->rank, x->dims, s[1]);
    pare_bcast_strides(rank, dims, z->rank, z->dims, s[2]);
    pcu_shape sh;
    pcu_strides ss[3];
    if ((st = fold(rank, dims, 3, s, &sh, ss, err)))
        return st;
    LAUNCH(pcu_where((int)pare_elem_size(x->dtype), &sh, &ss[0], &ss[1], &ss[2], c->data, x->data,
                     z->data, y->data, numel_of(rank, dims), stream_of(k)),
           err);
    return PARE_OK;
}

/* ---- MatMul, Gemm (cuBLAS) ---- */

static pare_status blas_types(pcu_session *s, int dtype, cudaDataType_t *dt,
                              cublasComputeType_t *ct, pare_error *err)
{
    switch (dtype) {
    case PARE_DT_FLOAT:
        *dt = CUDA_R_32F;
        *ct = s->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        return PARE_OK;
    case PARE_DT_FLOAT16: /* float accumulation */
        *dt = CUDA_R_16F;
        *ct = CUBLAS_COMPUTE_32F;
        return PARE_OK;
    case PARE_DT_BFLOAT16:
        *dt = CUDA_R_16BF;
        *ct = CUBLAS_COMPUTE_32F;
        return PARE_OK;
    default:
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no cuBLAS GEMM for %s",
                              pare_dtype_name(dtype));
    }
}

/* Row-major C[M,N] = alpha op(A) op(B) + beta C, batched with element
 * strides sa, sb, sc between matrices: cuBLAS is column-major, so it
 * computes C^T = op(B)^T op(A)^T, reading the row-major buffers as their
 * transposes. */
pare_status pcu_gemm_rm(pcu_session *s, int dtype, bool ta, bool tb, int64_t M, int64_t N,
                        int64_t K, float alpha, const void *A, int64_t sa, const void *B,
                        int64_t sb, float beta, void *C, int64_t sc, int64_t batch,
                        pare_error *err)
{
    cudaDataType_t dt = CUDA_R_32F;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    pare_status st = blas_types(s, dtype, &dt, &ct, err);
    if (st)
        return st;
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || batch > INT32_MAX)
        return pare_error_set(err, PARE_ERR_LIMIT, "GEMM dims beyond cuBLAS's int range");
    int lda = (int)(ta ? M : K), ldb = (int)(tb ? K : N);
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        PCU_BLAS(cublasGemmEx(s->cublas, opb, opa, (int)N, (int)M, (int)K, &alpha, B, dt, ldb, A,
                              dt, lda, &beta, C, dt, (int)N, ct, CUBLAS_GEMM_DEFAULT),
                 err);
    else
        PCU_BLAS(cublasGemmStridedBatchedEx(s->cublas, opb, opa, (int)N, (int)M, (int)K, &alpha, B,
                                            dt, ldb, sb, A, dt, lda, sa, &beta, C, dt, (int)N, sc,
                                            (int)batch, ct, CUBLAS_GEMM_DEFAULT),
                 err);
    return PARE_OK;
}

static pare_status matmul_run(pare_kctx *k, pare_error *err)
{
    pcu_session *s = k->dev;
    const pare_tensor *a = k->in[0], *b = k->in[1];
    if (a->rank < 1 || b->rank < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "MatMul of a scalar");
    int64_t M = a->rank == 1 ? 1 : a->dims[a->rank - 2], K = a->dims[a->rank - 1];
    int64_t Kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    int64_t N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (K != Kb)
        return pare_error_set(err, PARE_ERR_INVALID, "MatMul: inner dims %lld and %lld differ",
                              (long long)K, (long long)Kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int rbat;
    int64_t bd[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(ra, a->dims, rb, b->dims, &rbat, bd, err);
    if (st)
        return st;
    int64_t od[PARE_MAX_RANK];
    int ro = 0;
    for (int i = 0; i < rbat; i++)
        od[ro++] = bd[i];
    if (a->rank > 1)
        od[ro++] = M;
    if (b->rank > 1)
        od[ro++] = N;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, a->dtype, ro, od, &y, err)))
        return st;
    int64_t nb = numel_of(rbat, bd);
    if (M * N * nb == 0)
        return PARE_OK;
    if (K == 0) {
        PCU_RT(cudaMemsetAsync(y->data, 0, y->nbytes, s->stream), err);
        return PARE_OK;
    }
    /* batch strides in matrices, then folded: one strided-batched call when
     * the batch is affine in both operands, else one call per matrix */
    int64_t bs[3][PARE_MAX_RANK];
    pare_bcast_strides(rbat, bd, ra, a->dims, bs[0]);
    pare_bcast_strides(rbat, bd, rb, b->dims, bs[1]);
    contig_strides(rbat, bd, bs[2]);
    pcu_shape sh;
    pcu_strides ss[3];
    if (fold(rbat, bd, 3, bs, &sh, ss, err) == PARE_OK && sh.rank == 1)
        return pcu_gemm_rm(s, a->dtype, false, false, M, N, K, 1.0f, a->data, ss[0].s[0] * M * K,
                       b->data, ss[1].s[0] * K * N, 0.0f, y->data, ss[2].s[0] * M * N, sh.dims[0],
                       err);
    size_t es = pare_elem_size(a->dtype);
    for (int64_t i = 0; i < nb; i++) {
        int64_t oa = 0, ob = 0, rem = i;
        for (int d = rbat - 1; d >= 0; d--) {
            int64_t q = rem / bd[d], r = rem - q * bd[d];
            oa += r * bs[0][d];
            ob += r * bs[1][d];
            rem = q;
        }
        if ((st = pcu_gemm_rm(s, a->dtype, false, false, M, N, K, 1.0f,
                          (const char *)a->data + (size_t)(oa * M * K) * es, 0,
                          (const char *)b->data + (size_t)(ob * K * N) * es, 0, 0.0f,
                          (char *)y->data + (size_t)(i * M * N) * es, 0, 1, err)))
            return st;
    }
    return PARE_OK;
}

static pare_status gemm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->p0 = pare_node_attr_float(n, "alpha", 1.0f);
    c->p1 = pare_node_attr_float(n, "beta", 1.0f);
    c->f0 = pare_node_attr_int(n, "transA", 0);
    c->f1 = pare_node_attr_int(n, "transB", 0);
    *state = c;
    return PARE_OK;
}

static pare_status gemm_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    pcu_session *s = k->dev;
    const pare_tensor *a = k->in[0], *b = k->in[1], *cc = k->n_in > 2 ? k->in[2] : NULL;
    if (a->rank != 2 || b->rank != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "Gemm needs 2-D A and B");
    bool ta = c->f0 != 0, tb = c->f1 != 0;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return pare_error_set(err, PARE_ERR_INVALID, "Gemm: inner dims %lld and %lld differ",
                              (long long)K, (long long)Kb);
    int64_t od[2] = {M, N};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, a->dtype, 2, od, &y, err);
    if (st)
        return st;
    if (M * N == 0)
        return PARE_OK;
    float beta = 0.0f;
    if (cc && c->p1 != 0.0f) {
        /* C broadcast into Y, then Y = alpha AB + beta Y */
        int64_t ss2[2][PARE_MAX_RANK];
        int rr;
        int64_t bdims[PARE_MAX_RANK];
        if ((st = pare_bcast_dims(2, od, cc->rank, cc->dims, &rr, bdims, err)))
            return st;
        if (rr != 2 || bdims[0] != M || bdims[1] != N)
            return pare_error_set(err, PARE_ERR_INVALID, "Gemm: C does not broadcast to [M,N]");
        pare_bcast_strides(2, od, cc->rank, cc->dims, ss2[0]);
        contig_strides(2, od, ss2[1]);
        pcu_shape sh;
        pcu_strides ss[2];
        if ((st = fold(2, od, 2, ss2, &sh, ss, err)))
            return st;
        LAUNCH(pcu_copy_nd((int)pare_elem_size(cc->dtype), &sh, cc->data, &ss[0], 0, y->data,
                           &ss[1], 0, M * N, s->stream),
               err);
        beta = c->p1;
    }
    if (K == 0) {
        if (beta == 0.0f)
            PCU_RT(cudaMemsetAsync(y->data, 0, y->nbytes, s->stream), err);
        else if (beta != 1.0f)
            LAUNCH(pcu_unary(PCU_SCALE, y->dtype, y->data, y->data, M * N, beta, 0, s->stream),
                   err);
        return PARE_OK;
    }
    return pcu_gemm_rm(s, a->dtype, ta, tb, M, N, K, c->p0, a->data, 0, b->data, 0, beta, y->data, 0,
                   1, err);
}

/* ---- Softmax, LogSoftmax, LayerNormalization ---- */

static pare_status softmax_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->axis = pare_node_attr_int(n, "axis", opset < 13 ? 1 : -1);
    c->f0 = strcmp(n->op_type, "LogSoftmax") == 0;
    *state = c;
    return PARE_OK;
}

static pare_status softmax_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int ax;
    pare_status st = pare_axis(c->axis, x->rank ? x->rank : 1, &ax, err);
    if (st)
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err)))
        return st;
    int64_t outer = numel_of(ax < x->rank ? ax : x->rank, x->dims), len, inner;
    if (k->opset < 13) { /* the input flattened to 2-D at axis */
        len = x->rank ? numel_of(x->rank - ax, x->dims + ax) : 1;
        inner = 1;
    } else {
        len = x->rank ? x->dims[ax] : 1;
        inner = x->rank ? numel_of(x->rank - ax - 1, x->dims + ax + 1) : 1;
    }
    LAUNCH(pcu_softmax(x->dtype, (int)c->f0, outer, len, inner, x->data, y->data, stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status lnorm_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->axis = pare_node_attr_int(n, "axis", -1);
    c->p0 = pare_node_attr_float(n, "epsilon", 1e-5f);
    c->op = strcmp(n->op_type, "RMSNormalization") == 0; /* no mean, bias or statistics */
    *state = c;
    return PARE_OK;
}

static pare_status lnorm_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    pcu_session *s = k->dev;
    const pare_tensor *x = k->in[0], *sc = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    int ax;
    pare_status st = pare_axis(c->axis, x->rank, &ax, err);
    if (st)
        return st;
    int64_t rows = numel_of(ax, x->dims), len = numel_of(x->rank - ax, x->dims + ax);
    int64_t sn = (int64_t)pare_tensor_numel(sc), bn = b ? (int64_t)pare_tensor_numel(b) : 0;
    const char *op = k->node->op_type;
    if ((sn != len && sn != 1) || (b && bn != len && bn != 1))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s on cuda: Scale and B must have the "
                              "normalized size (%lld) or one element", op, (long long)len);
    if (sc->dtype != x->dtype || (b && b->dtype != x->dtype))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s on cuda: Scale and B must have X's "
                              "dtype", op);
    pare_tensor *y, *mo = NULL, *io = NULL;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err)))
        return st;
    if (c->op) {
        LAUNCH(pcu_rmsnorm(x->dtype, rows, len, x->data, sc->data, sn, c->p0, y->data, s->stream),
               err);
        return PARE_OK;
    }
    /* Mean and InvStdDev: shape of X with the normalized dims 1, dtype as
     * the model says (float32 by default), computed in float */
    int64_t sd[PARE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sd[i] = i < ax ? x->dims[i] : 1;
    bool want[3] = {true, false, false};
    int odt[3] = {x->dtype, 0, 0};
    for (size_t i = 1; i < 3 && i < k->n_out; i++) {
        const pare_value *v = k->node->outputs[i];
        want[i] = v != NULL;
        odt[i] = v && v->dtype ? v->dtype : x->dtype;
    }
    float *stash = NULL;
    if (want[1] || want[2]) {
        void *ws;
        if ((st = pcu_workspace(s, (size_t)(rows ? rows : 1) * 2 * sizeof(float), &ws, err)))
            return st;
        stash = ws;
    }
    if ((want[1] && (st = k->alloc_out(k, 1, odt[1], x->rank, sd, &mo, err))) ||
        (want[2] && (st = k->alloc_out(k, 2, odt[2], x->rank, sd, &io, err))))
        return st;
    LAUNCH(pcu_layernorm(x->dtype, rows, len, x->data, sc->data, sn, b ? b->data : NULL, bn,
                         c->p0, y->data, stash, stash ? stash + rows : NULL, s->stream),
           err);
    pare_tensor *outs[2] = {mo, io};
    for (int i = 0; i < 2; i++) {
        if (!outs[i])
            continue;
        const float *src = stash + (size_t)i * (size_t)rows;
        if (outs[i]->dtype == PARE_DT_FLOAT)
            st = copy_dev(k, outs[i]->data, src, (size_t)rows * sizeof(float), err);
        else if (pcu_cast_supported(outs[i]->dtype))
            LAUNCH(pcu_cast(PCU_F32, outs[i]->dtype, src, outs[i]->data, rows, s->stream), err);
        else
            st = pare_error_set(err, PARE_ERR_UNSUPPORTED, "LayerNormalization statistics as %s",
                                pare_dtype_name(outs[i]->dtype));
        if (st)
            return st;
    }
    return PARE_OK;
}

/* ---- data movement ---- */

static pare_status ints_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    const char *an = strcmp(n->op_type, "Transpose") == 0 ? "perm"
                     : strcmp(n->op_type, "Split") == 0 ? "split"
                                                         : "axes";
    const pare_attr *a = pare_node_attr(n, an);
    if (a && a->type == PARE_ATTR_INTS) {
        c->ints = a->ints;
        c->n_ints = a->n;
        c->has_ints = true;
    }
    c->axis = pare_node_attr_int(n, "axis", strcmp(n->op_type, "Flatten") == 0 ? 1 : 0);
    c->f0 = pare_node_attr_int(n, "keepdims", 1);
    c->f1 = pare_node_attr_int(n, "noop_with_empty_axes", 0);
    c->p0 = (float)pare_node_attr_int(n, "allowzero", 0);
    c->op = (int)pare_node_attr_int(n, "num_outputs", 0);
    *state = c;
    return PARE_OK;
}

/* copy x into y: both shapes are iteration space dims, strides per side */
static pare_status copy_strided(pare_kctx *k, int esize, int rank, const int64_t *dims,
                                const void *x, const int64_t *xs, int64_t xoff, void *y,
                                const int64_t *ys, int64_t yoff, pare_error *err)
{
    int64_t s[2][PARE_MAX_RANK];
    memcpy(s[0], xs, (size_t)rank * sizeof *xs);
    memcpy(s[1], ys, (size_t)rank * sizeof *ys);
    pcu_shape sh;
    pcu_strides ss[2];
    pare_status st = fold(rank, dims, 2, s, &sh, ss, err);
    if (st)
        return st;
    LAUNCH(pcu_copy_nd(esize, &sh, x, &ss[0], xoff, y, &ss[1], yoff, numel_of(rank, dims),
                       stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status transpose_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t perm[PARE_MAX_RANK], od[PARE_MAX_RANK], xs[PARE_MAX_RANK], ps[PARE_MAX_RANK],
        ys[PARE_MAX_RANK];
    if (c->has_ints && (int)c->n_ints != r)
        return pare_error_set(err, PARE_ERR_INVALID, "perm has %zu entries for rank %d",
                              c->n_ints, r);
    bool seen[PARE_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        perm[i] = c->has_ints ? c->ints[i] : r - 1 - i;
        if (perm[i] < 0)
            perm[i] += r;
        if (perm[i] < 0 || perm[i] >= r || seen[perm[i]])
            return pare_error_set(err, PARE_ERR_INVALID, "perm is not a permutation");
        seen[perm[i]] = true;
    }
    contig_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) {
        od[i] = x->dims[perm[i]];
        ps[i] = xs[perm[i]];
    }
    contig_strides(r, od, ys);
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, r, od, &y, err);
    if (st)
        return st;
    return copy_strided(k, (int)pare_elem_size(x->dtype), r, od, x->data, ps, 0, y->data, ys, 0,
                        err);
}

static pare_status concat_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *first = NULL;
    for (size_t i = 0; i < k->n_in && !first; i++)
        first = k->in[i];
    if (!first)
        return pare_error_set(err, PARE_ERR_INVALID, "no inputs");
    int r = first->rank, ax;
    pare_status st = pare_axis(c->axis, r, &ax, err);
    if (st)
        return st;
    int64_t od[PARE_MAX_RANK];
    memcpy(od, first->dims, (size_t)r * sizeof *od);
    od[ax] = 0;
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t)
            continue;
        if (t->rank != r || t->dtype != first->dtype)
            return pare_error_set(err, PARE_ERR_INVALID, "Concat inputs differ in rank or dtype");
        for (int d = 0; d < r; d++)
            if (d != ax && t->dims[d] != first->dims[d])
                return pare_error_set(err, PARE_ERR_INVALID, "Concat inputs differ in dim %d", d);
        od[ax] += t->dims[ax];
    }
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, first->dtype, r, od, &y, err)))
        return st;
    int64_t ys[PARE_MAX_RANK], xs[PARE_MAX_RANK];
    contig_strides(r, od, ys);
    int64_t at = 0;
    int es = (int)pare_elem_size(first->dtype);
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t || pare_tensor_numel(t) == 0)
            continue;
        contig_strides(r, t->dims, xs);
        if ((st = copy_strided(k, es, r, t->dims, t->data, xs, 0, y->data, ys, at * ys[ax], err)))
            return st;
        at += t->dims[ax];
    }
    return PARE_OK;
}

static pare_status split_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank, ax;
    pare_status st = pare_axis(c->axis, r, &ax, err);
    if (st)
        return st;
    size_t no = k->n_out;
    int64_t sizes[MAX_PARAM];
    size_t ns = 0;
    if (k->opset >= 13 && k->n_in > 1 && k->in[1]) {
        if ((st = pcu_read_ints(k, 1, sizes, MAX_PARAM, &ns, err)))
            return st;
    } else if (c->has_ints) {
        if (c->n_ints > MAX_PARAM)
            return pare_error_set(err, PARE_ERR_LIMIT, "too many splits");
        memcpy(sizes, c->ints, c->n_ints * sizeof *sizes);
        ns = c->n_ints;
    }
    int64_t dim = x->dims[ax];
    if (ns == 0) {
        if (no > MAX_PARAM || no == 0)
            return pare_error_set(err, PARE_ERR_LIMIT, "Split into %zu outputs", no);
        /* equal parts; with num_outputs (opset 18) the last may be smaller */
        int64_t part = c->op > 0 ? (dim + (int64_t)no - 1) / (int64_t)no : dim / (int64_t)no;
        if (c->op <= 0 && part * (int64_t)no != dim)
            return pare_error_set(err, PARE_ERR_INVALID, "dim %lld does not split in %zu",
                                  (long long)dim, no);
        for (size_t i = 0; i < no; i++) {
            int64_t left = dim - part * (int64_t)i;
            sizes[i] = left < part ? (left > 0 ? left : 0) : part;
        }
        ns = no;
    }
    if (ns != no)
        return pare_error_set(err, PARE_ERR_INVALID, "%zu split sizes for %zu outputs", ns, no);
    int64_t total = 0;
    for (size_t i = 0; i < ns; i++)
        total += sizes[i];
    if (total != dim)
        return pare_error_set(err, PARE_ERR_INVALID, "split sizes sum to %lld, dim is %lld",
                              (long long)total, (long long)dim);
    int64_t xs[PARE_MAX_RANK], ys[PARE_MAX_RANK], od[PARE_MAX_RANK];
    contig_strides(r, x->dims, xs);
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    int64_t at = 0;
    for (size_t i = 0; i < no; i++) {
        od[ax] = sizes[i];
        pare_tensor *y;
        if ((st = k->alloc_out(k, i, x->dtype, r, od, &y, err)))
            return st;
        contig_strides(r, od, ys);
        if (sizes[i] > 0 && pare_tensor_numel(y) > 0 &&
            (st = copy_strided(k, (int)pare_elem_size(x->dtype), r, od, x->data, xs,
                               at * xs[ax], y->data, ys, 0, err)))
            return st;
        at += sizes[i];
    }
    return PARE_OK;
}

static pare_status slice_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t starts[MAX_PARAM], ends[MAX_PARAM], axes[MAX_PARAM], steps[MAX_PARAM];
    size_t ns, ne, na = 0, nst = 0;
    pare_status st;
    if ((st = pcu_read_ints(k, 1, starts, MAX_PARAM, &ns, err)) ||
        (st = pcu_read_ints(k, 2, ends, MAX_PARAM, &ne, err)) ||
        (k->n_in > 3 && (st = pcu_read_ints(k, 3, axes, MAX_PARAM, &na, err))) ||
        (k->n_in > 4 && (st = pcu_read_ints(k, 4, steps, MAX_PARAM, &nst, err))))
        return st;
    if (ne != ns || (na && na != ns) || (nst && nst != ns))
        return pare_error_set(err, PARE_ERR_INVALID, "starts, ends, axes and steps differ in "
                              "length");
    int64_t od[PARE_MAX_RANK], xs[PARE_MAX_RANK], ps[PARE_MAX_RANK], ys[PARE_MAX_RANK];
    contig_strides(r, x->dims, xs);
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    memcpy(ps, xs, (size_t)r * sizeof *ps);
    int64_t off = 0;
    bool done[PARE_MAX_RANK] = {false};
    for (size_t i = 0; i < ns; i++) {
        int a;
        if ((st = pare_axis(na ? axes[i] : (int64_t)i, r, &a, err)))
            return st;
        if (done[a])
            return pare_error_set(err, PARE_ERR_INVALID, "axis %d sliced twice", a);
        done[a] = true;
        int64_t step = nst ? steps[i] : 1, dim = x->dims[a], s0 = starts[i], e0 = ends[i];
        if (step == 0)
            return pare_error_set(err, PARE_ERR_INVALID, "slice step 0");
        if (s0 < 0)
            s0 += dim;
        if (e0 < 0)
            e0 += dim;
        int64_t cnt;
        if (step > 0) {
            s0 = s0 < 0 ? 0 : s0 > dim ? dim : s0;
            e0 = e0 < 0 ? 0 : e0 > dim ? dim : e0;
            cnt = e0 > s0 ? (e0 - s0 + step - 1) / step : 0;
        } else {
            s0 = s0 < 0 ? 0 : s0 > dim - 1 ? dim - 1 : s0;
            e0 = e0 < -1 ? -1 : e0 > dim - 1 ? dim - 1 : e0;
            cnt = s0 > e0 ? (s0 - e0 + (-step) - 1) / (-step) : 0;
        }
        od[a] = cnt;
        if (cnt > 0)
            off += s0 * xs[a];
        ps[a] = xs[a] * step;
    }
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, r, od, &y, err)))
        return st;
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    contig_strides(r, od, ys);
    return copy_strided(k, (int)pare_elem_size(x->dtype), r, od, x->data, ps, off, y->data, ys, 0,
                        err);
}

static pare_status gather_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0], *ix = k->in[1];
    int ax;
    pare_status st = pare_axis(c->axis, x->rank, &ax, err);
    if (st)
        return st;
    int ro = x->rank - 1 + ix->rank;
    if (ro > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "Gather output of rank %d", ro);
    int64_t od[PARE_MAX_RANK];
    int n = 0;
    for (int i = 0; i < ax; i++)
        od[n++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++)
        od[n++] = ix->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        od[n++] = x->dims[i];
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, ro, od, &y, err)))
        return st;
    LAUNCH(pcu_gather((int)pare_elem_size(x->dtype), numel_of(ax, x->dims), x->dims[ax],
                      numel_of(x->rank - ax - 1, x->dims + ax + 1), x->data, ix->data,
                      ix->dtype == PARE_DT_INT64, (int64_t)pare_tensor_numel(ix), y->data,
                      stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status gather_el_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0], *ix = k->in[1];
    int ax;
    pare_status st = pare_axis(c->axis, x->rank, &ax, err);
    if (st)
        return st;
    if (ix->rank != x->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "indices of rank %d for data of rank %d",
                              ix->rank, x->rank);
    for (int d = 0; d < x->rank; d++) /* else the kernel would read past x */
        if (d != ax && ix->dims[d] > x->dims[d])
            return pare_error_set(err, PARE_ERR_INVALID, "indices dim %d is %lld, data's %lld",
                                  d, (long long)ix->dims[d], (long long)x->dims[d]);
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, ix->rank, ix->dims, &y, err)))
        return st;
    pcu_shape sh = {ix->rank, {0}};
    pcu_strides xs;
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        sh.dims[d] = ix->dims[d];
        xs.s[d] = s;
        s *= x->dims[d];
    }
    LAUNCH(pcu_gather_elements((int)pare_elem_size(x->dtype), &sh, &xs, ax, x->dims[ax], x->data,
                               ix->data, ix->dtype == PARE_DT_INT64, y->data,
                               (int64_t)pare_tensor_numel(ix), stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status trilu_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->f0 = pare_node_attr_int(n, "upper", 1);
    *state = c;
    return PARE_OK;
}

static pare_status trilu_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int64_t kv[MAX_PARAM] = {0};
    size_t nk = 0;
    pare_status st;
    if (x->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "Trilu of rank %d (at least 2)", x->rank);
    if (k->n_in > 1 && (st = pcu_read_ints(k, 1, kv, MAX_PARAM, &nk, err)))
        return st;
    if (nk > 1)
        return pare_error_set(err, PARE_ERR_INVALID, "Trilu's k has %zu values", nk);
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err)))
        return st;
    LAUNCH(pcu_trilu((int)pare_elem_size(x->dtype), c->f0 != 0, kv[0], x->dims[x->rank - 2],
                     x->dims[x->rank - 1], x->data, y->data, (int64_t)pare_tensor_numel(x),
                     stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status expand_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    int64_t shape[MAX_PARAM];
    size_t ns;
    pare_status st = pcu_read_ints(k, 1, shape, MAX_PARAM, &ns, err);
    if (st)
        return st;
    int r;
    int64_t od[PARE_MAX_RANK];
    if ((st = pare_bcast_dims(x->rank, x->dims, (int)ns, shape, &r, od, err)))
        return st;
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, r, od, &y, err)))
        return st;
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    int64_t xs[PARE_MAX_RANK], ys[PARE_MAX_RANK];
    pare_bcast_strides(r, od, x->rank, x->dims, xs);
    contig_strides(r, od, ys);
    return copy_strided(k, (int)pare_elem_size(x->dtype), r, od, x->data, xs, 0, y->data, ys, 0,
                        err);
}

/* ---- ArgMax, ArgMin ---- */

static pare_status arg_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    c->op = strcmp(n->op_type, "ArgMax") == 0;
    c->axis = pare_node_attr_int(n, "axis", 0);
    c->f0 = pare_node_attr_int(n, "keepdims", 1);
    c->f1 = pare_node_attr_int(n, "select_last_index", 0);
    *state = c;
    return PARE_OK;
}

static pare_status arg_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank, ax;
    if (r == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "input must have rank >= 1");
    pare_status st = pare_axis(c->axis, r, &ax, err);
    if (st)
        return st;
    int64_t dim = x->dims[ax];
    if (dim == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot take arg%s over an empty axis %d",
                              c->op ? "max" : "min", ax);
    int64_t od[PARE_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < r; i++)
        if (i != ax || c->f0)
            od[orank++] = i == ax ? 1 : x->dims[i];
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, PARE_DT_INT64, orank, od, &y, err)))
        return st;
    LAUNCH(pcu_argreduce(x->dtype, (int)c->op, c->f1 != 0, numel_of(ax, x->dims), dim,
                         numel_of(r - ax - 1, x->dims + ax + 1), x->data, y->data,
                         stream_of(k)),
           err);
    return PARE_OK;
}

/* ---- Pad (all modes; pads, constant_value and axes read on the host) ---- */

static pare_status pad_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    cst *c;
    pare_status st = new_state(&c, err);
    if (st)
        return st;
    *state = c;
    const char *m = pare_node_attr_string(n, "mode", "constant");
    if (!strcmp(m, "constant"))
        c->op = PCU_PAD_CONSTANT;
    else if (!strcmp(m, "reflect"))
        c->op = PCU_PAD_REFLECT;
    else if (!strcmp(m, "edge"))
        c->op = PCU_PAD_EDGE;
    else if (!strcmp(m, "wrap") && opset >= 19)
        c->op = PCU_PAD_WRAP;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "unknown pad mode '%s'", m);
    c->p0 = pare_node_attr_float(n, "value", 0.0f); /* opset < 11 */
    c->n_ints = pare_node_attr_ints(n, "pads", &c->ints);
    c->has_ints = opset < 11;
    return PARE_OK;
}

static pare_status pad_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t pads[MAX_PARAM], axes[MAX_PARAM];
    size_t np, na = 0;
    pare_status st;
    if (c->has_ints) {
        np = c->n_ints < MAX_PARAM ? c->n_ints : MAX_PARAM;
        memcpy(pads, c->ints, np * sizeof *pads);
    } else if ((st = pcu_read_ints(k, 1, pads, MAX_PARAM, &np, err)) ||
               (k->n_in > 3 && (st = pcu_read_ints(k, 3, axes, MAX_PARAM, &na, err)))) {
        return st;
    }
    if (!na)
        for (int i = 0; i < r; i++)
            axes[na++] = i;
    if (np != 2 * na)
        return pare_error_set(err, PARE_ERR_INVALID, "pads has %zu values, expected %zu", np,
                              2 * na);
    pcu_pad_args a;
    memset(&a, 0, sizeof a);
    a.rank = r;
    a.mode = c->op;
    for (size_t i = 0; i < na; i++) {
        int ax;
        if ((st = pare_axis(axes[i], r, &ax, err)))
            return st;
        a.pb[ax] = pads[i];
        int64_t pe = pads[na + i], lim = (int64_t)1 << 40;
        if (pads[i] < -lim || pads[i] > lim || pe < -lim || pe > lim)
            return pare_error_set(err, PARE_ERR_LIMIT, "pads %lld, %lld out of range",
                                  (long long)pads[i], (long long)pe);
        a.out[ax] = pads[i] + pe; /* the dim is added below */
    }
    for (int i = 0; i < r; i++) {
        a.in[i] = x->dims[i];
        a.out[i] += x->dims[i];
        if (a.out[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "pads on axis %d give a negative size",
                                  i);
        if (c->op != PCU_PAD_CONSTANT && x->dims[i] == 0 && a.out[i] > 0)
            return pare_error_set(err, PARE_ERR_INVALID, "cannot pad an empty axis %d in this "
                                  "mode", i);
    }
    /* the constant, in x's type */
    unsigned char fill[8] = {0};
    size_t es = pare_elem_size(x->dtype), nb;
    if (c->op == PCU_PAD_CONSTANT) {
        if (c->has_ints)
            pare_dtype_set_f64(x->dtype, fill, 0, c->p0);
        else if (k->n_in > 2 && k->in[2]) {
            if (k->in[2]->dtype != x->dtype)
                return pare_error_set(err, PARE_ERR_INVALID, "constant_value is %s, data is %s",
                                      pare_dtype_name(k->in[2]->dtype),
                                      pare_dtype_name(x->dtype));
            unsigned char buf[64];
            if ((st = pcu_read_input(k, 2, buf, sizeof buf, &nb, err)))
                return st;
            if (nb >= es)
                memcpy(fill, buf, es);
        }
    }
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, r, a.out, &y, err)))
        return st;
    int64_t n = (int64_t)pare_tensor_numel(y);
    if (n == 0)
        return PARE_OK;
    if (r == 0)
        return copy_dev(k, y->data, x->data, es, err);
    if (pare_tensor_numel(x) == 0) /* constant mode (the others refused above): all fill */
        a.mode = PCU_PAD_CONSTANT;
    LAUNCH(pcu_pad((int)es, &a, fill, x->data, y->data, n, stream_of(k)), err);
    return PARE_OK;
}

/* ---- views: a device copy into the executor's buffer ---- */

static pare_status view_out(pare_kctx *k, int rank, const int64_t *dims, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    if (numel_of(rank, dims) != (int64_t)pare_tensor_numel(x))
        return pare_error_set(err, PARE_ERR_INVALID, "cannot view %llu elements as %lld",
                              (unsigned long long)pare_tensor_numel(x),
                              (long long)numel_of(rank, dims));
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, rank, dims, &y, err);
    if (st)
        return st;
    return copy_dev(k, y->data, x->data, x->nbytes, err);
}

static pare_status identity_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    return view_out(k, x->rank, x->dims, err);
}

static pare_status dropout_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    if (k->opset >= 12 && k->n_in > 2 && k->in[2]) {
        uint8_t tm[8] = {0};
        size_t nb;
        pare_status st = pcu_read_input(k, 2, tm, sizeof tm, &nb, err);
        if (st)
            return st;
        if (nb && tm[0])
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Dropout in training mode on cuda");
    }
    pare_status st = view_out(k, x->rank, x->dims, err);
    if (st || k->n_out < 2 || !k->node->outputs[1])
        return st;
    pare_tensor *mask;
    if ((st = k->alloc_out(k, 1, PARE_DT_BOOL, x->rank, x->dims, &mask, err)))
        return st;
    PCU_RT(cudaMemsetAsync(mask->data, 1, mask->nbytes, stream_of(k)), err);
    return PARE_OK;
}

static pare_status flatten_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int64_t ax = c->axis < 0 ? c->axis + x->rank : c->axis;
    if (ax < 0 || ax > x->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "axis %lld out of range",
                              (long long)c->axis);
    int64_t od[2] = {numel_of((int)ax, x->dims), numel_of(x->rank - (int)ax, x->dims + ax)};
    return view_out(k, 2, od, err);
}

static pare_status reshape_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int64_t sh[MAX_PARAM];
    size_t n;
    pare_status st = pcu_read_ints(k, 1, sh, PARE_MAX_RANK, &n, err);
    if (st)
        return st;
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < n; i++) {
        if (sh[i] == 0 && c->p0 == 0.0f) {
            if ((int)i >= x->rank)
                return pare_error_set(err, PARE_ERR_INVALID, "0 in shape beyond input rank");
            sh[i] = x->dims[i];
        }
        if (sh[i] == -1) {
            if (infer >= 0)
                return pare_error_set(err, PARE_ERR_INVALID, "two -1 in shape");
            infer = (int)i;
        } else if (sh[i] < 0) {
            return pare_error_set(err, PARE_ERR_INVALID, "negative dim in shape");
        } else {
            known *= sh[i];
        }
    }
    int64_t total = (int64_t)pare_tensor_numel(x);
    if (infer >= 0) {
        if (known == 0 || total % known)
            return pare_error_set(err, PARE_ERR_INVALID, "cannot infer -1 in shape");
        sh[infer] = total / known;
    }
    return view_out(k, (int)n, sh, err);
}

/* the axes of Squeeze/Unsqueeze/Reduce: the attribute, or input 1 from the given opset */
static pare_status axes_of(pare_kctx *k, int64_t input_from, int64_t *axes, size_t *n,
                           bool *given, pare_error *err)
{
    const cst *c = k->state;
    *n = 0;
    *given = false;
    if (k->opset >= input_from) {
        if (k->n_in > 1 && k->in[1]) {
            *given = true;
            return pcu_read_ints(k, 1, axes, MAX_PARAM, n, err);
        }
        return PARE_OK;
    }
    if (c->has_ints) {
        if (c->n_ints > MAX_PARAM)
            return pare_error_set(err, PARE_ERR_LIMIT, "too many axes");
        memcpy(axes, c->ints, c->n_ints * sizeof *axes);
        *n = c->n_ints;
        *given = true;
    }
    return PARE_OK;
}

static pare_status squeeze_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    int64_t axes[MAX_PARAM];
    size_t na;
    bool given;
    pare_status st = axes_of(k, 13, axes, &na, &given, err);
    if (st)
        return st;
    bool drop[PARE_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        int a;
        if ((st = pare_axis(axes[i], x->rank, &a, err)))
            return st;
        if (x->dims[a] != 1)
            return pare_error_set(err, PARE_ERR_INVALID, "cannot squeeze dim %d of size %lld", a,
                                  (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t od[PARE_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(na ? drop[i] : x->dims[i] == 1))
            od[r++] = x->dims[i];
    return view_out(k, r, od, err);
}

static pare_status unsqueeze_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0];
    int64_t axes[MAX_PARAM];
    size_t na;
    bool given;
    pare_status st = axes_of(k, 13, axes, &na, &given, err);
    if (st)
        return st;
    int ro = x->rank + (int)na;
    if (ro > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "Unsqueeze to rank %d", ro);
    bool ins[PARE_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        int a;
        if ((st = pare_axis(axes[i], ro, &a, err)))
            return st;
        if (ins[a])
            return pare_error_set(err, PARE_ERR_INVALID, "axis %d repeated", a);
        ins[a] = true;
    }
    int64_t od[PARE_MAX_RANK];
    for (int i = 0, j = 0; i < ro; i++)
        od[i] = ins[i] ? 1 : x->dims[j++];
    return view_out(k, ro, od, err);
}

/* ---- reductions ---- */

static pare_status reduce_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    pare_status st = ints_init(n, opset, state, err);
    if (st)
        return st;
    cst *c = *state;
    static const char *const names[PCU_R_COUNT] = {
        "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1",
        "ReduceL2",  "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};
    c->op = PCU_RSUM;
    for (int i = 0; i < PCU_R_COUNT; i++)
        if (strcmp(n->op_type, names[i]) == 0)
            c->op = i;
    return PARE_OK;
}

static pare_status reduce_run(pare_kctx *k, pare_error *err)
{
    const cst *c = k->state;
    const pare_tensor *x = k->in[0];
    int64_t axes[MAX_PARAM];
    size_t na;
    bool given;
    int64_t from = c->op == PCU_RSUM ? 13 : 18;
    pare_status st = axes_of(k, from, axes, &na, &given, err);
    if (st)
        return st;
    if (na == 0 && c->f1)
        return identity_run(k, err); /* noop_with_empty_axes */
    int r = x->rank;
    bool red[PARE_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        int a;
        if ((st = pare_axis(axes[i], r, &a, err)))
            return st;
        red[a] = true;
    }
    if (na == 0)
        for (int i = 0; i < r; i++)
            red[i] = true;
    int64_t xs[PARE_MAX_RANK], od[PARE_MAX_RANK];
    contig_strides(r, x->dims, xs);
    int64_t kd[PARE_MAX_RANK], rd[PARE_MAX_RANK];
    int64_t ks[1][PARE_MAX_RANK], rs[1][PARE_MAX_RANK];
    int nk = 0, nr = 0, ro = 0;
    for (int i = 0; i < r; i++) {
        if (red[i]) {
            rd[nr] = x->dims[i];
            rs[0][nr++] = xs[i];
            if (c->f0)
                od[ro++] = 1;
        } else {
            kd[nk] = x->dims[i];
            ks[0][nk++] = xs[i];
            od[ro++] = x->dims[i];
        }
    }
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, x->dtype, ro, od, &y, err)))
        return st;
    int64_t n_out = numel_of(nk, kd), n_red = numel_of(nr, rd);
    if (n_out == 0)
        return PARE_OK;
    /* an empty reduced set gives 0 (Sum), -inf (Max), +inf (Min), NaN (Mean) */
    pcu_shape ksh, rsh;
    pcu_strides kst, rst;
    if ((st = fold(nk, kd, 1, ks, &ksh, &kst, err)) || (st = fold(nr, rd, 1, rs, &rsh, &rst, err)))
        return st;
    LAUNCH(pcu_reduce(c->op, x->dtype, &ksh, &kst, &rsh, &rst, x->data, y->data, n_out, n_red,
                      stream_of(k)),
           err);
    return PARE_OK;
}

static pare_status plain_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    return ints_init(n, opset, state, err);
}

/* The table: (domain, op, since, until, init, run, release, types). The
 * math ops take float32, float16 and bfloat16; data movement any element
 * of 1, 2, 4 or 8 bytes (fp, int, bool). */
const pare_kernel pare_cuda_kernels_core[] = {
    {"", "Add", 7, 0, add_init, bin_run, release_state, FP " =0"},
    {"", "Sub", 7, 0, sub_init, bin_run, release_state, FP " =0"},
    {"", "Mul", 7, 0, mul_init, bin_run, release_state, FP " =0"},
    {"", "Div", 7, 0, div_init, bin_run, release_state, FP " =0"},
    {"", "Pow", 7, 0, pow_init, bin_run, release_state, FP " =0"},
    {"", "PRelu", 7, 0, prelu_init, bin_run, release_state, FP " =0"},
    {"", "And", 7, 0, and_init, bin_run, release_state, "bool bool"},
    {"", "Or", 7, 0, or_init, bin_run, release_state, "bool bool"},
    {"", "Xor", 7, 0, xor_init, bin_run, release_state, "bool bool"},
    {"", "Not", 1, 0, NULL, not_run, NULL, "bool"},
    {"", "Equal", 7, 0, eq_init, bin_run, release_state, FP " =0"},
    {"", "Less", 7, 0, lt_init, bin_run, release_state, FP " =0"},
    {"", "Greater", 7, 0, gt_init, bin_run, release_state, FP " =0"},
    {"", "LessOrEqual", 12, 0, le_init, bin_run, release_state, FP " =0"},
    {"", "GreaterOrEqual", 12, 0, ge_init, bin_run, release_state, FP " =0"},
    {"", "Max", 8, 0, max_init, variadic_run, release_state, FP " =0..."},
    {"", "Min", 8, 0, min_init, variadic_run, release_state, FP " =0..."},
    {"", "Sum", 8, 0, sum_init, variadic_run, release_state, FP " =0..."},
    {"", "Mean", 8, 0, mean_init, variadic_run, release_state, FP " =0..."},
    {"", "Neg", 6, 0, un_init, un_run, release_state, FP},
    {"", "Abs", 6, 0, un_init, un_run, release_state, FP},
    {"", "Sqrt", 6, 0, un_init, un_run, release_state, FP},
    {"", "Exp", 6, 0, un_init, un_run, release_state, FP},
    {"", "Log", 6, 0, un_init, un_run, release_state, FP},
    {"", "Reciprocal", 6, 0, un_init, un_run, release_state, FP},
    {"", "Floor", 6, 0, un_init, un_run, release_state, FP},
    {"", "Ceil", 6, 0, un_init, un_run, release_state, FP},
    {"", "Erf", 9, 0, un_init, un_run, release_state, FP},
    {"", "Tanh", 6, 0, un_init, un_run, release_state, FP},
    {"", "Sigmoid", 6, 0, un_init, un_run, release_state, FP},
    {"", "Relu", 6, 0, un_init, un_run, release_state, FP},
    {"", "LeakyRelu", 6, 0, un_init, un_run, release_state, FP},
    {"", "Elu", 6, 0, un_init, un_run, release_state, FP},
    {"", "Selu", 6, 0, un_init, un_run, release_state, FP},
    {"", "Gelu", 20, 0, un_init, un_run, release_state, FP},
    {"", "HardSigmoid", 6, 0, un_init, un_run, release_state, FP},
    {"", "HardSwish", 14, 0, un_init, un_run, release_state, FP},
    {"", "Clip", 6, 0, un_init, un_run, release_state, FP " =0 =0"},
    {"", "Softplus", 1, 0, un_init, un_run, release_state, FP},
    {"", "Sin", 7, 0, un_init, un_run, release_state, FP},
    {"", "Cos", 7, 0, un_init, un_run, release_state, FP},
    {"", "Tan", 7, 0, un_init, un_run, release_state, FP},
    {"", "Asin", 7, 0, un_init, un_run, release_state, FP},
    {"", "Acos", 7, 0, un_init, un_run, release_state, FP},
    {"", "Atan", 7, 0, un_init, un_run, release_state, FP},
    {"", "Sinh", 9, 0, un_init, un_run, release_state, FP},
    {"", "Cosh", 9, 0, un_init, un_run, release_state, FP},
    {"", "Asinh", 9, 0, un_init, un_run, release_state, FP},
    {"", "Acosh", 9, 0, un_init, un_run, release_state, FP},
    {"", "Atanh", 9, 0, un_init, un_run, release_state, FP},
    {"", "Round", 11, 0, un_init, un_run, release_state, FP},
    {"", "Sign", 9, 0, un_init, un_run, release_state, FP},
    {"", "Softsign", 1, 0, un_init, un_run, release_state, FP},
    {"", "Mish", 18, 0, un_init, un_run, release_state, FP},
    {"", "Celu", 12, 0, un_init, un_run, release_state, FP},
    {"", "ThresholdedRelu", 10, 0, un_init, un_run, release_state, FP},
    {"", "Where", 9, 0, plain_init, where_run, release_state, "bool " MOVE " =1"},
    {"", "Cast", 6, 0, cast_init, cast_run, release_state,
     "float32,float16,bfloat16,int32,int64,bool,int8,uint8"},
    {"", "MatMul", 1, 0, NULL, matmul_run, NULL, FP " =0"},
    {"", "Gemm", 7, 0, gemm_init, gemm_run, release_state, FP " =0 =0"},
    {"", "Softmax", 1, 0, softmax_init, softmax_run, release_state, FP},
    {"", "LogSoftmax", 1, 0, softmax_init, softmax_run, release_state, FP},
    {"", "LayerNormalization", 17, 0, lnorm_init, lnorm_run, release_state, FP " =0 =0"},
    {"", "RMSNormalization", 23, 0, lnorm_init, lnorm_run, release_state, FP " =0"},
    {"", "Transpose", 1, 0, plain_init, transpose_run, release_state, MOVE},
    {"", "Concat", 4, 0, plain_init, concat_run, release_state, MOVE " =0..."},
    {"", "Split", 2, 0, plain_init, split_run, release_state, MOVE " int64"},
    {"", "Slice", 10, 0, NULL, slice_run, NULL, MOVE " int32,int64 =1 =1 =1"},
    {"", "Gather", 1, 0, plain_init, gather_run, release_state, MOVE " int32,int64"},
    {"", "GatherElements", 11, 0, plain_init, gather_el_run, release_state, MOVE " int32,int64"},
    {"", "Trilu", 14, 0, trilu_init, trilu_run, release_state, MOVE " int64"},
    {"", "Expand", 8, 0, NULL, expand_run, NULL, MOVE " int64"},
    {"", "Pad", 2, 0, pad_init, pad_run, release_state, MOVE " int64 =0 int32,int64"},
    {"", "ReduceSum", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceMean", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceMax", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceMin", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceL1", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceL2", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceSumSquare", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceLogSum", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ReduceLogSumExp", 1, 0, reduce_init, reduce_run, release_state, FP " int64"},
    {"", "ArgMax", 1, 0, arg_init, arg_run, release_state, FP},
    {"", "ArgMin", 1, 0, arg_init, arg_run, release_state, FP},
    {"", "Identity", 1, 0, NULL, identity_run, NULL, MOVE},
    {"", "Dropout", 7, 0, NULL, dropout_run, NULL, FP " " FP " bool"},
    {"", "Flatten", 1, 0, plain_init, flatten_run, release_state, MOVE},
    {"", "Reshape", 5, 0, plain_init, reshape_run, release_state, MOVE " int64"},
    {"", "Squeeze", 1, 0, plain_init, squeeze_run, release_state, MOVE " int64"},
    {"", "Unsqueeze", 1, 0, plain_init, unsqueeze_run, release_state, MOVE " int64"},
    {0},
};
