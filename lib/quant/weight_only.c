/* weight_only.c - weight-only int4/int8 quantization of MatMul, Gemm and
 * embedding Gather weights (pare/quant.h), round to nearest or GPTQ
 * (gptq.c), written as a blocked DequantizeLinear (opset 21) or as
 * com.microsoft MatMulNBits.
 *
 * Scales per block (wq.h's canonical W[N][K], blocks along K):
 *   asymmetric: lo = min(min w, 0), hi = max(max w, 0), scale = (hi - lo) / qmax,
 *               zp = round(-lo / scale) in [0, qmax] (qmax = 2^bits - 1), so
 *               that 0 is exact;
 *   symmetric:  scale = max|w| / (2^(bits-1) - 1), zp = 2^(bits-1) (stored as
 *               signed int4/int8 without zero points in QDQ, as MatMulNBits'
 *               default zero point without the input).
 * A last block shorter than block_size (K not a multiple) holds the remaining
 * rows; DequantizeLinear's scale then has ceil(K / block_size) entries along
 * the axis, and MatMulNBits' blob is padded with the zero point code.
 *
 * Layouts written:
 *   QDQ MatMul     B [K, N] int4/uint4/int8/uint8, scale/zp [ceil(K/bs), N], axis 0
 *   QDQ Gemm       B as stored ([N, K] with transB: axis 1; [K, N]: axis 0)
 *   QDQ Gather     table [V, D], blocks along D: scale/zp [V, ceil(D/bs)], axis 1
 *   MatMulNBits    B uint8 [N, n_blocks, blob] (blob = bs * bits / 8, codes as a
 *                  little-endian bit stream: int4 low nibble first), scales
 *                  float [N * n_blocks], zero_points uint8 [N * ceil(n_blocks *
 *                  bits / 8)] packed the same way per row (asymmetric only)
 * Gemm with MatMulNBits: alpha folded into the weights, C (times beta) given
 * as MatMulNBits' bias when it is a constant [N], else added by an Add node;
 * transA keeps it float. Embeddings are always written as DequantizeLinear +
 * Gather (opset 21), whatever the format.
 *
 * Opset 21: blocked DequantizeLinear needs it, so the model's default-domain
 * opset is raised. Nodes whose meaning changed on the way are rewritten
 * (Reduce* axes attribute -> input below opset 18, Split without split input
 * gets num_outputs, GridSample's mode names below 20); GroupNormalization and
 * DFT older than their opset-20/21 forms, ops the executor knows no opset-21
 * kernel for, and models below opset 13 are refused with the node named.
 * The IR version is raised to 10 with it (opset 21 and int4 belong there).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/quant.h"
#include "pare/stats.h"
#include "internal.h"
#include "exec/kernel.h"
#include "quant/qcommon.h"
#include "quant/wq.h"

#define WQ_OPSET 21

/* ------------------------------------------------------------------ */
/* round to nearest                                                    */

void pare__wq_block_params(const float *w, int64_t cnt, int bits, bool sym, float *scale,
                           uint8_t *zp)
{
    if (sym) {
        float amax = 0.0f;
        for (int64_t i = 0; i < cnt; i++) {
            float a = fabsf(w[i]);
            if (a > amax) /* NaN never wins */
                amax = a;
        }
        float s = amax / (float)((1 << (bits - 1)) - 1);
        *scale = s > 0.0f && isfinite(s) ? s : 1.0f;
        *zp = (uint8_t)(1 << (bits - 1));
        return;
    }
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < cnt; i++) {
        if (w[i] < lo)
            lo = w[i];
        if (w[i] > hi)
            hi = w[i];
    }
    int qmax = (1 << bits) - 1;
    float s = (hi - lo) / (float)qmax;
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zp = 0;
        return;
    }
    float z = rintf(-lo / s);
    *scale = s;
    *zp = (uint8_t)(z < 0.0f ? 0.0f : z > (float)qmax ? (float)qmax : z);
}

typedef struct rtn_job {
    wq_target *t;
    int bits, bs;
    bool sym;
} rtn_job;

static void rtn_rows(void *ctx, int64_t n0, int64_t n1)
{
    const rtn_job *J = ctx;
    wq_target *t = J->t;
    int bs = J->bs, qmax = (1 << J->bits) - 1;
    for (int64_t n = n0; n < n1; n++) {
        const float *w = t->w + n * t->K;
        uint8_t *c = t->codes + n * t->K;
        for (int64_t b = 0; b < t->nblk; b++) {
            int64_t k0 = b * bs, cnt = t->K - k0 < bs ? t->K - k0 : bs;
            float s;
            uint8_t z;
            pare__wq_block_params(w + k0, cnt, J->bits, J->sym, &s, &z);
            t->scales[n * t->nblk + b] = s;
            t->zps[n * t->nblk + b] = z;
            for (int64_t k = k0; k < k0 + cnt; k++)
                c[k] = pare__wq_code(w[k], s, z, qmax);
        }
    }
}

void pare__wq_rtn(pare_threadpool *pool, wq_target *t, int bits, int bs, bool sym)
{
    rtn_job J = {t, bits, bs, sym};
    pare_parallel_for(pool, t->N, 1 + 65536 / (t->K + 1), rtn_rows, &J);
}

/* ------------------------------------------------------------------ */
/* options and filter                                                  */

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && strcmp(list[i], s) == 0)
            return true;
    return false;
}

static pare_status check_opts(pare_model *m, const pare_wq_opts *o, pare_error *err)
{
    if (o->bits != 4 && o->bits != 8)
        return pare_error_set(err, PARE_ERR_ARG, "weight-only bits must be 4 or 8, not %d",
                              o->bits);
    if (o->block_size < 16 || o->block_size > 256 || (o->block_size & (o->block_size - 1)))
        return pare_error_set(err, PARE_ERR_ARG,
                              "block size must be a power of two from 16 to 256, not %d",
                              o->block_size);
    if (o->format != PARE_WQ_QDQ && o->format != PARE_WQ_MATMULNBITS)
        return pare_error_set(err, PARE_ERR_ARG, "unknown weight-only format %d", (int)o->format);
    if (o->algo != PARE_WQ_RTN && o->algo != PARE_WQ_GPTQ)
        return pare_error_set(err, PARE_ERR_ARG, "unknown weight-only algorithm %d", (int)o->algo);
    if (o->algo == PARE_WQ_GPTQ) {
        if (!o->calib.path)
            return pare_error_set(err, PARE_ERR_ARG, "GPTQ needs calibration data");
        if (!(o->damp >= 0.0) || !isfinite(o->damp))
            return pare_error_set(err, PARE_ERR_ARG, "GPTQ damping must be >= 0");
    }
    const pare_quant_filter *f = &o->filter;
    for (size_t i = 0; i < f->n_op_types; i++) {
        const char *op = f->op_types[i];
        if (!op || (strcmp(op, "MatMul") && strcmp(op, "Gemm") && strcmp(op, "Gather")))
            return pare_error_set(err, PARE_ERR_ARG,
                                  "weight-only quantizes MatMul, Gemm and Gather, not '%s'",
                                  op ? op : "(null)");
    }
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < f->n_exclude_nodes; i++)
        if (!f->exclude_nodes[i] || !pare_graph_find_node(g, f->exclude_nodes[i]))
            return pare_error_set(err, PARE_ERR_ARG, "no node named '%s' to exclude",
                                  f->exclude_nodes[i] ? f->exclude_nodes[i] : "(null)");
    return PARE_OK;
}

/* Whether the op of n is one weight-only targets under o (before exclusions). */
static bool op_selected(const pare_wq_opts *o, const pare_node *n)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return false;
    const char *op = n->op_type;
    bool gather = strcmp(op, "Gather") == 0;
    if (strcmp(op, "MatMul") && strcmp(op, "Gemm") && !gather)
        return false;
    if (o->filter.n_op_types)
        return in_list(o->filter.op_types, o->filter.n_op_types, op) && (!gather || o->embeddings);
    return !gather || o->embeddings;
}

/* ------------------------------------------------------------------ */
/* targets                                                             */

static void target_release(wq_target *t)
{
    free(t->w);
    free(t->codes);
    free(t->scales);
    free(t->zps);
    t->w = NULL;
    t->codes = NULL;
    t->scales = NULL;
    t->zps = NULL;
}

/* Why the weight input of n cannot be quantized (NULL: it can). */
static const char *weight_problem(const pare_value *v, int64_t bs)
{
    (void)bs;
    if (!v || !v->init)
        return "weight is not a constant initializer";
    if (v->is_input)
        return "weight is also a graph input (it can be overridden)";
    if (v->graph != NULL && v->graph->parent != NULL)
        return "weight is in an enclosing scope";
    if (v->init->dtype != PARE_DT_FLOAT)
        return "weight is not float32";
    if (v->init->rank != 2)
        return "weight is not 2-D";
    if (v->init->dims[0] < 1 || v->init->dims[1] < 1)
        return "weight is empty";
    return NULL;
}

static pare_status target_alloc(wq_target *t, int64_t N, int64_t K, int bs, pare_error *err)
{
    (void)bs;
    size_t nk = (size_t)N * (size_t)K, nb = (size_t)N * (size_t)t->nblk;
    t->w = malloc(nk * sizeof *t->w);
    t->codes = malloc(nk);
    t->scales = malloc(nb * sizeof *t->scales);
    t->zps = malloc(nb);
    if (!t->w || !t->codes || !t->scales || !t->zps)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory for weight '%s'",
                              t->weight->name);
    return PARE_OK;
}

/* Fills t for node n, or returns a reason (static) to keep it float. */
static const char *make_target(pare_node *n, const pare_wq_opts *o, wq_target *t,
                               pare_status *st, pare_error *err)
{
    (void)err;
    memset(t, 0, sizeof *t);
    t->node = n;
    t->alpha = 1.0f;
    *st = PARE_OK;
    if (pare_node_is(n, "", "Gather")) {
        if (n->n_inputs < 2 || n->n_outputs < 1 || !n->outputs[0])
            return "malformed Gather";
        pare_value *v = n->inputs[0];
        const char *why = weight_problem(v, o->block_size);
        if (why)
            return why;
        if (pare_node_attr_int(n, "axis", 0) != 0)
            return "Gather is not along axis 0 (not an embedding lookup)";
        t->kind = WQ_GATHER;
        t->weight = v;
        t->N = v->init->dims[0];
        t->K = v->init->dims[1];
        t->nblk = (t->K + o->block_size - 1) / o->block_size;
        return NULL;
    }
    bool gemm = pare_node_is(n, "", "Gemm");
    if (n->n_inputs < 2 || n->n_outputs < 1 || !n->inputs[0] || !n->outputs[0])
        return gemm ? "malformed Gemm" : "malformed MatMul";
    pare_value *v = n->inputs[1];
    const char *why = weight_problem(v, o->block_size);
    if (why)
        return why;
    if (n->inputs[0]->dtype && n->inputs[0]->dtype != PARE_DT_FLOAT)
        return "input A is not float32";
    float alpha = 1.0f;
    bool transB = false;
    if (gemm) {
        if (pare_node_attr_int(n, "transA", 0))
            return "Gemm with transA";
        /* QDQ keeps the Gemm (and its alpha); MatMulNBits folds alpha in */
        if (o->format == PARE_WQ_MATMULNBITS)
            alpha = pare_node_attr_float(n, "alpha", 1.0f);
        transB = pare_node_attr_int(n, "transB", 0) != 0;
        float beta = pare_node_attr_float(n, "beta", 1.0f);
        pare_value *c = n->n_inputs > 2 ? n->inputs[2] : NULL;
        if (o->format == PARE_WQ_MATMULNBITS && c && beta != 1.0f &&
            (!c->init || c->is_input || c->init->dtype != PARE_DT_FLOAT))
            return "Gemm with beta != 1 and a computed C";
        if (o->format == PARE_WQ_MATMULNBITS && c && c->dtype && c->dtype != PARE_DT_FLOAT)
            return "Gemm's C is not float32";
        if (!isfinite(alpha))
            return "Gemm's alpha is not finite";
    } else if (n->inputs[0]->shape.rank == 1) {
        return "MatMul of a 1-D input";
    }
    t->kind = gemm ? WQ_GEMM : WQ_MATMUL;
    t->weight = v;
    t->x = n->inputs[0];
    t->alpha = alpha;
    t->transB = transB;
    int64_t d0 = v->init->dims[0], d1 = v->init->dims[1];
    t->K = transB ? d1 : d0;
    t->N = transB ? d0 : d1;
    t->nblk = (t->K + o->block_size - 1) / o->block_size;
    return NULL;
}

/* Allocates t's buffers and fills W[N][K] from the initializer (transposed
 * in tiles for MatMul's [K, N]). */
static pare_status target_load(wq_target *t, int bs, pare_error *err)
{
    pare_status st = target_alloc(t, t->N, t->K, bs, err);
    if (st)
        return st;
    const float *src = t->weight->init->data;
    int64_t N = t->N, K = t->K;
    if (t->kind == WQ_GATHER || t->transB) {
        for (size_t i = 0; i < (size_t)N * (size_t)K; i++)
            t->w[i] = src[i] * t->alpha;
        return PARE_OK;
    }
    enum { TILE = 64 };
    for (int64_t k0 = 0; k0 < K; k0 += TILE)
        for (int64_t j0 = 0; j0 < N; j0 += TILE) {
            int64_t k1 = k0 + TILE < K ? k0 + TILE : K, j1 = j0 + TILE < N ? j0 + TILE : N;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t k = k0; k < k1; k++)
                    t->w[j * K + k] = src[k * N + j] * t->alpha;
        }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* opset 21                                                            */

typedef struct opset_ctx {
    int64_t from;
    bool convert; /* false: check only */
    pare_status st;
    pare_error *err;
} opset_ctx;

static bool is_reduce_axes18(const char *op)
{
    static const char *const ops[] = {"ReduceMax",    "ReduceMin",       "ReduceMean",
                                      "ReduceProd",   "ReduceL1",        "ReduceL2",
                                      "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

static pare_status node_to_opset21(pare_graph *g, pare_node *n, opset_ctx *c)
{
    char lab[160];
    const char *op = n->op_type;
    if (!c->convert) {
        if (!pare_kernel_find("", op, WQ_OPSET))
            return pare_error_set(c->err, PARE_ERR_UNSUPPORTED,
                                  "node %s: blocked DequantizeLinear needs opset 21 and pare "
                                  "knows no opset-21 form of %s (use --format matmulnbits)",
                                  pare_node_label(n, lab, sizeof lab), op);
        if ((strcmp(op, "GroupNormalization") == 0 && c->from < 21) ||
            (strcmp(op, "DFT") == 0 && c->from < 20))
            return pare_error_set(c->err, PARE_ERR_UNSUPPORTED,
                                  "node %s: %s changed meaning before opset 21 and is not "
                                  "converted; blocked DequantizeLinear needs opset 21 (use "
                                  "--format matmulnbits)",
                                  pare_node_label(n, lab, sizeof lab), op);
        return PARE_OK;
    }
    pare_status st = PARE_OK;
    if (c->from < 18 && is_reduce_axes18(op)) {
        const pare_attr *a = pare_node_attr(n, "axes");
        if (a && a->type == PARE_ATTR_INTS) {
            int64_t dims[1] = {(int64_t)a->n};
            pare_tensor *t;
            if ((st = pare_tensor_new("axes", PARE_DT_INT64, 1, dims, &t, c->err)))
                return st;
            if (a->n)
                memcpy(t->data, a->ints, a->n * sizeof(int64_t));
            pare_value *v;
            if ((st = pare_graph_add_initializer(g, t, &v, c->err)))
                return st;
            if (n->n_inputs < 2) {
                if ((st = pare_node_add_input(n, v, c->err)))
                    return st;
            } else if ((st = pare_node_set_input(n, 1, v, c->err))) {
                return st;
            }
            st = pare_node_remove_attr(n, "axes", c->err);
        }
    } else if (c->from < 18 && strcmp(op, "Split") == 0) {
        if ((n->n_inputs < 2 || !n->inputs[1]) && !pare_node_attr(n, "num_outputs"))
            st = pare_node_set_attr_int(n, "num_outputs", (int64_t)n->n_outputs, c->err);
    } else if (c->from < 20 && strcmp(op, "GridSample") == 0) {
        const char *mode = pare_node_attr_string(n, "mode", "bilinear");
        if (strcmp(mode, "bilinear") == 0)
            st = pare_node_set_attr_string(n, "mode", "linear", c->err);
        else if (strcmp(mode, "bicubic") == 0)
            st = pare_node_set_attr_string(n, "mode", "cubic", c->err);
    }
    return st;
}

static void graph_to_opset21(pare_graph *g, void *ctx)
{
    opset_ctx *c = ctx;
    for (size_t i = 0; i < g->n_nodes && c->st == PARE_OK; i++) {
        pare_node *n = g->nodes[i];
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
            continue;
        c->st = node_to_opset21(g, n, c);
    }
}

/* Checks (convert false) or rewrites (true) the whole model for opset 21. */
static pare_status model_to_opset21(pare_model *m, bool convert, pare_error *err)
{
    int64_t from = pare_model_opset_version(m, "");
    if (from >= WQ_OPSET)
        return PARE_OK;
    if (from < 13)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "blocked DequantizeLinear needs opset 21 and the model's opset %lld "
                              "is below 13: convert it first (onnx.version_converter) or use "
                              "--format matmulnbits",
                              (long long)from);
    opset_ctx c = {from, convert, PARE_OK, err};
    pare_graph_walk(pare_model_graph(m), graph_to_opset21, &c);
    if (c.st == PARE_OK && convert) {
        c.st = pare_model_set_opset(m, "", WQ_OPSET, err);
        /* opset 21 and the int4/uint4 types belong to IR version 10 */
        if (c.st == PARE_OK && m->proto && (!m->proto->has_ir_version || m->proto->ir_version < 10)) {
            m->proto->has_ir_version = true;
            m->proto->ir_version = 10;
        }
    }
    return c.st;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

static pare_status new_init(pare_graph *g, const char *base, const char *suffix, int dtype,
                            int rank, const int64_t *dims, pare_tensor **t, pare_value **v,
                            pare_error *err)
{
    char hint[512];
    snprintf(hint, sizeof hint, "%s%s", base, suffix);
    pare_status st = pare_tensor_new(hint, dtype, rank, dims, t, err);
    if (st)
        return st;
    if ((st = pare_graph_add_initializer(g, *t, v, err))) {
        pare_tensor_free(*t);
        *t = NULL;
    }
    return st;
}

/* Stores code c (value c - off for signed types) as element i of t. */
static void put_code(pare_tensor *t, size_t i, int c, int off)
{
    switch (t->dtype) {
    case PARE_DT_INT4:
    case PARE_DT_UINT4:
        pare_int4_set(t->data, i, c - off);
        break;
    case PARE_DT_INT8:
        ((int8_t *)t->data)[i] = (int8_t)(c - off);
        break;
    default:
        ((uint8_t *)t->data)[i] = (uint8_t)c;
    }
}

/* The QDQ form: quantized initializer in the weight's stored layout, scale
 * and zero point, DequantizeLinear, and the node reading its output. */
static pare_status write_qdq(pare_graph *g, wq_target *t, const pare_wq_opts *o, pare_error *err)
{
    pare_node *n = t->node;
    pare_value *wv = t->weight;
    /* stored layout: rows along K (axis 0, [K, N]) or columns (axis 1, [N, K]) */
    bool nk = t->kind == WQ_GATHER ||
              (t->kind == WQ_GEMM && pare_node_attr_int(n, "transB", 0) != 0);
    int64_t N = t->N, K = t->K, nb = t->nblk;
    int64_t wdims[2] = {nk ? N : K, nk ? K : N}, sdims[2] = {nk ? N : nb, nk ? nb : N};
    int off = o->symmetric ? 1 << (o->bits - 1) : 0;
    int qdt = o->bits == 4 ? (o->symmetric ? PARE_DT_INT4 : PARE_DT_UINT4)
                           : (o->symmetric ? PARE_DT_INT8 : PARE_DT_UINT8);
    pare_tensor *qt, *st_, *zt = NULL;
    pare_value *qv, *sv, *zv = NULL, *out;
    pare_status st;
    if ((st = new_init(g, wv->name, "_q", qdt, 2, wdims, &qt, &qv, err)) ||
        (st = new_init(g, wv->name, "_scale", PARE_DT_FLOAT, 2, sdims, &st_, &sv, err)))
        return st;
    if (!o->symmetric && (st = new_init(g, wv->name, "_zp", qdt, 2, sdims, &zt, &zv, err)))
        return st;
    float *sd = st_->data;
    for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++)
            put_code(qt, (size_t)(nk ? j * K + k : k * N + j), t->codes[j * K + k], off);
    for (int64_t j = 0; j < N; j++)
        for (int64_t b = 0; b < nb; b++) {
            size_t i = (size_t)(nk ? j * nb + b : b * N + j);
            sd[i] = t->scales[j * nb + b];
            if (zt)
                put_code(zt, i, t->zps[j * nb + b], 0);
        }
    char hint[512];
    snprintf(hint, sizeof hint, "%s_dq", wv->name);
    if ((st = pare_graph_new_value(g, NULL, hint, PARE_DT_FLOAT, &out, err)) ||
        (st = pare_value_set_dims(out, PARE_DT_FLOAT, 2, wdims, err)))
        return st;
    pare_value *ins[3] = {qv, sv, zv};
    pare_node *dq;
    char name[512];
    snprintf(hint, sizeof hint, "%s_DequantizeLinear", wv->name);
    pare_graph_unique_name(g, hint, name, sizeof name);
    if ((st = pare_graph_add_node(g, name, "", "DequantizeLinear", ins, zv ? 3 : 2, &out, 1, n,
                                  &dq, err)) ||
        (st = pare_node_set_attr_int(dq, "axis", nk ? 1 : 0, err)) ||
        (st = pare_node_set_attr_int(dq, "block_size", o->block_size, err)))
        return st;
    t->shared[0] = out;
    return pare_node_set_input(n, t->kind == WQ_GATHER ? 0 : 1, out, err);
}

/* Stores the bits-wide field idx of a little-endian bit stream (bits 4 or 8). */
static void put_field(uint8_t *p, int64_t idx, int bits, unsigned v)
{
    if (bits == 8) {
        p[idx] = (uint8_t)v;
    } else {
        uint8_t *q = p + idx / 2;
        *q = (idx & 1) ? (uint8_t)((*q & 0x0f) | (v << 4)) : (uint8_t)((*q & 0xf0) | (v & 15));
    }
}

/* reuse: B, scales and zero points of an earlier target with the same
 * weight and layout (NULL: made from t's codes). */
static pare_status write_nbits(pare_graph *g, wq_target *t, const pare_wq_opts *o,
                               pare_value *const *reuse, pare_error *err)
{
    pare_node *n = t->node;
    pare_value *wv = t->weight;
    int bits = o->bits, bs = o->block_size;
    int64_t N = t->N, K = t->K, nb = t->nblk, blob = (int64_t)bs * bits / 8;
    int64_t zrow = (nb * bits + 7) / 8;
    int64_t bdims[3] = {N, nb, blob}, sdims[1] = {N * nb}, zdims[1] = {N * zrow};
    pare_tensor *bt, *st_, *zt = NULL;
    pare_value *bv, *sv, *zv = NULL, *bias = NULL;
    pare_status st;
    if (reuse) {
        bv = reuse[0];
        sv = reuse[1];
        zv = reuse[2];
        goto node;
    }
    if ((st = new_init(g, wv->name, "_q", PARE_DT_UINT8, 3, bdims, &bt, &bv, err)) ||
        (st = new_init(g, wv->name, "_scale", PARE_DT_FLOAT, 1, sdims, &st_, &sv, err)))
        return st;
    if (!o->symmetric &&
        (st = new_init(g, wv->name, "_zp", PARE_DT_UINT8, 1, zdims, &zt, &zv, err)))
        return st;
    uint8_t *bd = bt->data;
    for (int64_t j = 0; j < N; j++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = bd + (j * nb + b) * blob;
            unsigned zp = t->zps[j * nb + b];
            for (int64_t i = 0; i < bs; i++) {
                int64_t k = b * bs + i;
                put_field(blk, i, bits, k < K ? t->codes[j * K + k] : zp);
            }
            ((float *)st_->data)[j * nb + b] = t->scales[j * nb + b];
            if (zt)
                put_field((uint8_t *)zt->data + j * zrow, b, bits, zp);
        }
node:
    t->shared[0] = bv;
    t->shared[1] = sv;
    t->shared[2] = zv;
    /* Gemm's C: MatMulNBits' bias when a constant [N], else an Add after it */
    pare_value *c = NULL;
    float beta = 1.0f;
    if (t->kind == WQ_GEMM && n->n_inputs > 2 && n->inputs[2]) {
        c = n->inputs[2];
        beta = pare_node_attr_float(n, "beta", 1.0f);
        if (beta != 1.0f) { /* make_target checked C is a float32 constant */
            pare_tensor *ct;
            pare_value *cv;
            if ((st = new_init(g, c->name, "_beta", PARE_DT_FLOAT, c->init->rank, c->init->dims,
                               &ct, &cv, err)))
                return st;
            if ((st = pare__init_align(g->model, c->init, err)))
                return st;
            const float *src = c->init->data;
            for (uint64_t i = 0; i < pare_tensor_numel(ct); i++)
                ((float *)ct->data)[i] = src[i] * beta;
            c = cv;
        }
        if (c->init && !c->is_input && c->init->rank == 1 && c->init->dims[0] == N) {
            bias = c;
            c = NULL;
        }
    }
    pare_value *y = n->outputs[0], *mm_out = y;
    pare_node *before = NULL;
    for (size_t i = 0; i + 1 < g->n_nodes; i++)
        if (g->nodes[i] == n)
            before = g->nodes[i + 1];
    char name[512], hint[512], uniq[512];
    snprintf(name, sizeof name, "%s", n->name ? n->name : "");
    pare_value *a = n->inputs[0];
    if ((st = pare_graph_remove_node(g, n, err)))
        return st;
    t->node = NULL;
    if (c) {
        snprintf(hint, sizeof hint, "%s_nbits", y->name);
        if ((st = pare_graph_new_value(g, NULL, hint, PARE_DT_FLOAT, &mm_out, err)))
            return st;
    }
    if (!name[0])
        snprintf(name, sizeof name, "%s_MatMulNBits", wv->name);
    pare_graph_unique_name(g, name, uniq, sizeof uniq);
    snprintf(name, sizeof name, "%s", uniq);
    pare_value *ins[6] = {a, bv, sv, zv, NULL, bias};
    size_t nin = bias ? 6 : zv ? 4 : 3;
    pare_node *mm;
    if ((st = pare_graph_add_node(g, name, "com.microsoft", "MatMulNBits", ins, nin, &mm_out, 1,
                                  before, &mm, err)) ||
        (st = pare_node_set_attr_int(mm, "K", K, err)) ||
        (st = pare_node_set_attr_int(mm, "N", N, err)) ||
        (st = pare_node_set_attr_int(mm, "bits", bits, err)) ||
        (st = pare_node_set_attr_int(mm, "block_size", bs, err)))
        return st;
    t->node = mm;
    if (c) {
        pare_value *ains[2] = {mm_out, c};
        snprintf(hint, sizeof hint, "%s_bias", name);
        pare_graph_unique_name(g, hint, uniq, sizeof uniq);
        if ((st = pare_graph_add_node(g, uniq, "", "Add", ains, 2, &y, 1, before, NULL, err)))
            return st;
    }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* entry point                                                         */

static pare_status report_float(pare_quant_report *r, pare_node *n, const char *why,
                                pare_error *err)
{
    return r ? pare_quant_report_node(r, PARE_QE_FLOAT, n, why, err) : PARE_OK;
}

pare_status pare_quantize_weight_only(pare_model *m, const pare_wq_opts *o, pare_quant_report *r,
                                      pare_error *err)
{
    double t0 = pare_now();
    if (!m || !o)
        return pare_error_set(err, PARE_ERR_ARG, "no model or options");
    /* Weights misaligned in the file are still borrowed from it: GPTQ's
     * calibration aligns them all (pare_session_new); rounding to nearest
     * copies each one only when it is quantized (target_load) and frees it
     * right after, so that they are never all copied at once. */
    pare_status st = check_opts(m, o, err);
    if (st)
        return st;
    pare_graph *g = pare_model_graph(m);
    if ((st = pare_graph_toposort(g, err)))
        return st;
    if (r)
        r->weight_bytes_before = pare_model_weight_bytes(m);
    wq_target *ts = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *ts);
    if (!ts)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    size_t nt = 0;
    bool need21 = false;
    /* the node list changes below, so targets are collected first */
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        pare_node *n = g->nodes[i];
        if (!op_selected(o, n))
            continue;
        const pare_quant_filter *f = &o->filter;
        if (n->name && in_list(f->exclude_nodes, f->n_exclude_nodes, n->name)) {
            st = report_float(r, n, "excluded by --exclude-nodes", err);
            continue;
        }
        if (in_list(f->exclude_op_types, f->n_exclude_op_types, n->op_type)) {
            st = report_float(r, n, "excluded by --exclude-op-types", err);
            continue;
        }
        const char *why = make_target(n, o, &ts[nt], &st, err);
        if (st)
            break;
        if (why) {
            st = report_float(r, n, why, err);
            continue;
        }
        if (ts[nt].kind == WQ_GATHER || o->format == PARE_WQ_QDQ)
            need21 = true;
        nt++;
    }
    if (!st && need21)
        st = model_to_opset21(m, false, err);
    int threads = o->calib.threads > 0 ? o->calib.threads : pare_cpu_count();
    pare_threadpool *pool = threads > 1 ? pare_threadpool_new(threads) : NULL;
    wq_gptq *G = NULL;
    if (!st && o->algo == PARE_WQ_GPTQ) /* before the graph changes */
        st = pare__wq_gptq_prepare(m, o, pool, ts, nt, r, &G, err);
    if (!st && need21)
        st = model_to_opset21(m, true, err);
    if (!st && o->format == PARE_WQ_MATMULNBITS) {
        for (size_t i = 0; i < nt && !st; i++)
            if (ts[i].kind != WQ_GATHER)
                st = pare_model_set_opset(m, "com.microsoft", 1, err);
    }
    /* one weight at a time: its float copy, codes and scales live only while
     * it is quantized and written */
    char how[800];
    /* Rounding to nearest treats each weight on its own, so the weights the
     * loader copied to the heap (unaligned in the file) go first: their
     * memory is freed as they go (pare_qx_drop_if_unused) before the pages
     * of the mapped ones are read, which keeps the peak near the loaded
     * model's size. GPTQ keeps the graph's order. */
    size_t *order = malloc((nt ? nt : 1) * sizeof *order), no = 0;
    if (!order && !st)
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (int pass = 0; pass < 2 && order; pass++)
        for (size_t i = 0; i < nt; i++) {
            const pare_tensor *w = ts[i].weight->init;
            bool heap = G == NULL && w &&
                        (w->owns_data || !pare__aligned_for(w->dtype, w->data));
            if (heap == (pass == 0))
                order[no++] = i;
        }
    for (size_t oi = 0; oi < nt && !st; oi++) {
        size_t i = order[oi];
        wq_target *t = &ts[i];
        bool nbits = o->format == PARE_WQ_MATMULNBITS && t->kind != WQ_GATHER;
        /* a weight read by several nodes is stored once when they read it in
         * the same layout and it is rounded to nearest (GPTQ's codes depend
         * on each reader's inputs) */
        wq_target *same = NULL;
        for (size_t j = 0; j < nt && !same; j++) {
            wq_target *u = &ts[j]; /* written already when u->shared[0] is set */
            if (j == i)
                continue;
            bool unbits = o->format == PARE_WQ_MATMULNBITS && u->kind != WQ_GATHER;
            if (u->weight == t->weight && u->shared[0] && unbits == nbits &&
                !(G && (t->x || u->x)) &&
                (u->kind == WQ_GATHER || u->transB) == (t->kind == WQ_GATHER || t->transB) &&
                (!nbits || u->alpha == t->alpha))
                same = u;
        }
        if (same) {
            snprintf(how, sizeof how, "%s %d-bit b%d %s rtn, stored once with %s",
                     nbits ? "MatMulNBits" : "blocked DequantizeLinear", o->bits, o->block_size,
                     o->symmetric ? "symmetric" : "asymmetric",
                     same->node && same->node->name ? same->node->name : "another node");
            if (r && (st = pare_quant_report_node(r, PARE_QE_QUANTIZED, t->node, how, err)))
                break;
            if (nbits)
                st = write_nbits(g, t, o, same->shared, err);
            else {
                t->shared[0] = same->shared[0];
                st = pare_node_set_input(t->node, t->kind == WQ_GATHER ? 0 : 1, same->shared[0],
                                         err);
            }
            if (!st)
                st = pare_qx_drop_if_unused(t->weight, err);
            continue;
        }
        if ((st = pare__init_align(m, t->weight->init, err)) ||
            (st = target_load(t, o->block_size, err)))
            break;
        /* the float weight now lives in t's buffer: the pages of the mapped
         * file it was read from need not stay resident */
        if (!t->weight->init->owns_data)
            pare__source_forget(m, t->weight->init->data, t->weight->init->nbytes);
        if (G && t->x)
            st = pare__wq_gptq_run(G, t, err);
        else
            pare__wq_rtn(pool, t, o->bits, o->block_size, o->symmetric);
        if (st)
            break;
        snprintf(how, sizeof how, "%s %d-bit b%d %s %s%s%s",
                 nbits ? "MatMulNBits" : "blocked DequantizeLinear", o->bits, o->block_size,
                 o->symmetric ? "symmetric" : "asymmetric", t->gptq ? "gptq" : "rtn",
                 t->note ? ": " : "", t->note ? t->note : "");
        if (r && (st = pare_quant_report_node(r, PARE_QE_QUANTIZED, t->node, how, err)))
            break;
        st = nbits ? write_nbits(g, t, o, NULL, err) : write_qdq(g, t, o, err);
        target_release(t);
        if (!st)
            st = pare_qx_drop_if_unused(t->weight, err);
    }
    free(order);
    pare__wq_gptq_free(G);
    pare_threadpool_free(pool);
    if (!st && nt)
        st = pare_graph_remove_dead(g, NULL, err);
    if (!st)
        st = pare_graph_toposort(g, err);
    for (size_t i = 0; i < nt; i++)
        target_release(&ts[i]);
    free(ts);
    if (r && !st) {
        r->weight_bytes_after = pare_model_weight_bytes(m);
        r->seconds += pare_now() - t0;
    }
    return st;
}
