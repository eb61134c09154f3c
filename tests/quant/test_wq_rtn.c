/* test_wq_rtn.c - weight-only quantization, round to nearest: exact codes,
 * scales and zero points on known weights (int4 low nibble first), the
 * blocked DequantizeLinear and MatMulNBits layouts, K not a multiple of the
 * block, Gemm (transB, alpha, beta, C) and embedding Gather, the opset-21
 * rewrite, outputs in the executor against a dequantize-then-multiply
 * reference, weights read by several nodes stored once, and bad options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/exec.h"
#include "pare/quant.h"

static pare_model *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", WQ_DATA, name);
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static pare_node *node_of(pare_model *m, const char *op)
{
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->op_type, op) == 0)
            return g->nodes[i];
    return NULL;
}

static size_t count_op(pare_model *m, const char *op)
{
    pare_graph *g = pare_model_graph(m);
    size_t c = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        c += strcmp(g->nodes[i]->op_type, op) == 0;
    return c;
}

static void quantize(pare_model *m, pare_wq_opts *o, pare_quant_report *r)
{
    pare_error err;
    if (pare_quantize_weight_only(m, o, r, &err))
        fail_msg("quantize: %s", err.msg);
    pare_problems pr = {0};
    assert_int_equal(pare_model_validate(m, &pr, &err), PARE_OK);
    for (size_t i = 0; i < pr.n; i++)
        print_message("problem: %s: %s\n", pr.items[i].where, pr.items[i].what);
    assert_int_equal(pr.n, 0);
    pare_problems_release(&pr);
}

/* Runs m on inputs; returns the outputs (caller frees). */
static pare_tensor **run(pare_model *m, pare_tensor **in, size_t nin, size_t *nout)
{
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("session: %s", err.msg);
    pare_tensor **out;
    if (pare_session_run(s, in, nin, &out, nout, &err))
        fail_msg("run: %s", err.msg);
    pare_session_free(s);
    return out;
}

/* ---- exact codes on known weights ---- */

static void test_known_qdq_asym(void **state)
{
    (void)state;
    pare_model *m = load("wq_known.onnx");
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    quantize(m, &o, NULL);
    assert_int_equal(pare_model_opset_version(m, ""), 21);
    assert_true(pare_model_ir_version(m) >= 10); /* int4 and opset 21 */
    pare_node *dq = node_of(m, "DequantizeLinear");
    assert_non_null(dq);
    assert_int_equal(pare_node_attr_int(dq, "axis", -1), 0);
    assert_int_equal(pare_node_attr_int(dq, "block_size", -1), 32);
    pare_tensor *q = dq->inputs[0]->init, *s = dq->inputs[1]->init, *z = dq->inputs[2]->init;
    assert_int_equal(q->dtype, PARE_DT_UINT4);
    assert_int_equal(q->rank, 2);
    assert_int_equal(q->dims[0], 32);
    assert_int_equal(q->dims[1], 2);
    /* element (k, n) is index 2k + n: byte k holds column 0 low, column 1 high */
    const uint8_t *qb = q->data;
    for (int k = 0; k < 32; k++)
        assert_int_equal(qb[k], (k % 16) | ((k % 16) << 4));
    assert_int_equal(s->dims[0], 1);
    assert_int_equal(s->dims[1], 2);
    assert_true(((float *)s->data)[0] == 1.0f);
    assert_true(((float *)s->data)[1] == 0.5f);
    assert_int_equal(z->dtype, PARE_DT_UINT4);
    assert_int_equal(((uint8_t *)z->data)[0], 0x08); /* zp 8 (low), 0 (high) */
    /* the float weight is gone */
    assert_null(pare_graph_find_value(pare_model_graph(m), "W"));
    pare_model_free(m);
}

static void test_known_qdq_sym(void **state)
{
    (void)state;
    pare_model *m = load("wq_known.onnx");
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.symmetric = true;
    quantize(m, &o, NULL);
    pare_node *dq = node_of(m, "DequantizeLinear");
    assert_int_equal(dq->n_inputs, 2); /* no zero point */
    pare_tensor *q = dq->inputs[0]->init, *s = dq->inputs[1]->init;
    assert_int_equal(q->dtype, PARE_DT_INT4);
    /* column 1 = 0.5 j: scale 7.5 / 7, q = round(j * 7 / 15) */
    static const int expect1[16] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7};
    for (int k = 0; k < 32; k++) {
        assert_int_equal(pare_int4_get(q->data, (size_t)(2 * k + 1), true), expect1[k % 16]);
        /* column 0 = j - 8: scale 8 / 7, q = round((j - 8) / scale) in [-7, 7] */
        int j = k % 16;
        int e0 = (int)rintf((float)(j - 8) / (8.0f / 7.0f));
        assert_int_equal(pare_int4_get(q->data, (size_t)(2 * k), true), e0);
    }
    assert_true(((float *)s->data)[0] == 8.0f / 7.0f);
    assert_true(((float *)s->data)[1] == 7.5f / 7.0f);
    pare_model_free(m);
}

static void test_known_nbits(void **state)
{
    (void)state;
    for (int bits = 4; bits <= 8; bits += 4) {
        pare_model *m = load("wq_known.onnx");
        pare_wq_opts o = PARE_WQ_OPTS_INIT;
        o.format = PARE_WQ_MATMULNBITS;
        o.bits = bits;
        pare_quant_report r;
        pare_quant_report_init(&r);
        quantize(m, &o, &r);
        assert_int_equal(pare_model_opset_version(m, ""), 17); /* not raised */
        assert_int_equal(pare_model_opset_version(m, "com.microsoft"), 1);
        pare_node *n = node_of(m, "MatMulNBits");
        assert_non_null(n);
        assert_string_equal(n->domain, "com.microsoft");
        assert_string_equal(n->name, "mm");
        assert_string_equal(n->outputs[0]->name, "y");
        assert_int_equal(pare_node_attr_int(n, "K", 0), 32);
        assert_int_equal(pare_node_attr_int(n, "N", 0), 2);
        assert_int_equal(pare_node_attr_int(n, "bits", 0), bits);
        assert_int_equal(pare_node_attr_int(n, "block_size", 0), 32);
        pare_tensor *b = n->inputs[1]->init, *s = n->inputs[2]->init, *z = n->inputs[3]->init;
        assert_int_equal(b->dtype, PARE_DT_UINT8);
        assert_int_equal(b->rank, 3);
        assert_int_equal(b->dims[0], 2);
        assert_int_equal(b->dims[1], 1);
        assert_int_equal(b->dims[2], 32 * bits / 8);
        assert_int_equal(s->rank, 1);
        assert_int_equal(s->dims[0], 2);
        const uint8_t *bd = b->data, *zd = z->data;
        if (bits == 4) {
            for (int n_ = 0; n_ < 2; n_++)
                for (int i = 0; i < 16; i++) /* codes k % 16, low nibble first */
                    assert_int_equal(bd[n_ * 16 + i], ((2 * i) % 16) | (((2 * i + 1) % 16) << 4));
            assert_true(((float *)s->data)[0] == 1.0f);
            assert_true(((float *)s->data)[1] == 0.5f);
            assert_int_equal(z->dims[0], 2); /* one byte per row: ceil(1 block * 4 / 8) */
            assert_int_equal(zd[0], 8);
            assert_int_equal(zd[1], 0);
        } else {
            float s0 = 15.0f / 255.0f;
            assert_true(((float *)s->data)[0] == s0);
            assert_int_equal(zd[0], 136);
            for (int k = 0; k < 32; k++)
                assert_int_equal(bd[k], (int)rintf((float)(k % 16 - 8) / s0) + 136);
        }
        assert_int_equal(r.n, 1);
        assert_int_equal(r.items[0].kind, PARE_QE_QUANTIZED);
        assert_string_equal(r.items[0].op, "MatMul");
        assert_true(r.weight_bytes_after < r.weight_bytes_before);
        pare_quant_report_release(&r);
        pare_model_free(m);
    }
}

/* ---- the mixed model: layouts and numerics ---- */

static void make_inputs(pare_tensor **in)
{
    int64_t xd[2] = {3, 40}, id[1] = {3};
    pare_error err;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 2, xd, &in[0], &err), PARE_OK);
    assert_int_equal(pare_tensor_new("ids", PARE_DT_INT64, 1, id, &in[1], &err), PARE_OK);
    float *x = in[0]->data;
    uint32_t s = 12345;
    for (int i = 0; i < 120; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    int64_t *ids = in[1]->data;
    ids[0] = 0, ids[1] = 7, ids[2] = 3;
}

static const float *out_named(pare_tensor **o, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(o[i]->name, name) == 0)
            return o[i]->data;
    fail_msg("no output %s", name);
    return NULL;
}

/* Dequantized weight of a DequantizeLinear node's blocked input, computed here. */
static float deq_elem(const pare_node *dq, int64_t r, int64_t c)
{
    const pare_tensor *q = dq->inputs[0]->init, *s = dq->inputs[1]->init;
    const pare_tensor *z = dq->n_inputs > 2 ? dq->inputs[2]->init : NULL;
    int64_t axis = pare_node_attr_int(dq, "axis", 1), bs = pare_node_attr_int(dq, "block_size", 0);
    int64_t cols = q->dims[1];
    size_t i = (size_t)(r * cols + c);
    size_t si = axis == 0 ? (size_t)((r / bs) * s->dims[1] + c) : (size_t)(r * s->dims[1] + c / bs);
    bool sg = q->dtype == PARE_DT_INT4 || q->dtype == PARE_DT_INT8;
    double qv = pare_dtype_get_f64(q->dtype, q->data, i);
    double zv = z ? pare_dtype_get_f64(z->dtype, z->data, si) : 0.0;
    (void)sg;
    return (float)((qv - zv) * ((const float *)s->data)[si]);
}

static void check_mixed(pare_wq_format fmt, bool sym, int bits)
{
    pare_model *ref = load("wq_mixed.onnx"), *m = load("wq_mixed.onnx");
    pare_tensor *in[2];
    make_inputs(in);
    size_t nr, nq;
    pare_tensor **yr = run(ref, in, 2, &nr);

    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.format = fmt;
    o.symmetric = sym;
    o.bits = bits;
    o.block_size = 16;
    o.embeddings = true;
    pare_quant_report r;
    pare_quant_report_init(&r);
    quantize(m, &o, &r);
    /* embedding always QDQ, so opset 21 and the ReduceMean rewritten */
    assert_int_equal(pare_model_opset_version(m, ""), 21);
    pare_node *mean = node_of(m, "ReduceMean");
    assert_null(pare_node_attr(mean, "axes"));
    assert_int_equal(mean->n_inputs, 2);
    assert_int_equal(((int64_t *)mean->inputs[1]->init->data)[0], 1);
    /* the report: 3 quantized, gemm_ta float with its reason */
    size_t nq_ = 0;
    bool ta = false;
    for (size_t i = 0; i < r.n; i++) {
        nq_ += r.items[i].kind == PARE_QE_QUANTIZED;
        if (r.items[i].kind == PARE_QE_FLOAT && strcmp(r.items[i].name, "gemm_ta") == 0)
            ta = strstr(r.items[i].how, "transA") != NULL;
    }
    assert_int_equal(nq_, 3);
    assert_true(ta);
    assert_int_equal(count_op(m, "Gemm"), fmt == PARE_WQ_QDQ ? 2 : 1);
    assert_int_equal(count_op(m, "MatMulNBits"), fmt == PARE_WQ_QDQ ? 0 : 2);
    assert_int_equal(count_op(m, "DequantizeLinear"), fmt == PARE_WQ_QDQ ? 3 : 1);

    /* the embedding table: [10, 40] blocks along axis 1, 3 blocks (16, 16, 8) */
    pare_graph *g = pare_model_graph(m);
    pare_node *gather = node_of(m, "Gather"), *dqe = gather->inputs[0]->producer;
    assert_non_null(dqe);
    assert_int_equal(pare_node_attr_int(dqe, "axis", -1), 1);
    assert_int_equal(dqe->inputs[1]->init->dims[0], 10);
    assert_int_equal(dqe->inputs[1]->init->dims[1], 3);
    /* every dequantized table entry within half a step of the float one */
    const float *tab = NULL;
    {
        pare_value *tv = pare_graph_find_value(pare_model_graph(ref), "table");
        tab = tv->init->data;
    }
    for (int64_t v = 0; v < 10; v++)
        for (int64_t d = 0; d < 40; d++) {
            size_t si = (size_t)(v * 3 + d / 16);
            float s = ((float *)dqe->inputs[1]->init->data)[si];
            assert_true(fabsf(deq_elem(dqe, v, d) - tab[v * 40 + d]) <= 0.5f * s * 1.0001f);
        }
    if (fmt == PARE_WQ_QDQ) {
        pare_node *mm = node_of(m, "MatMul"), *dq = mm->inputs[1]->producer;
        assert_int_equal(pare_node_attr_int(dq, "axis", -1), 0);
        assert_int_equal(dq->inputs[1]->init->dims[0], 3); /* ceil(40 / 16) */
        assert_int_equal(dq->inputs[1]->init->dims[1], 24);
        pare_node *gm = pare_graph_find_node(g, "gemm2"), *dq2 = gm->inputs[1]->producer;
        assert_int_equal(pare_node_attr_int(dq2, "axis", -1), 1); /* transB: [N, K] */
        assert_int_equal(dq2->inputs[1]->init->dims[0], 16);
        assert_int_equal(dq2->inputs[1]->init->dims[1], 2); /* ceil(24 / 16) */
    } else {
        pare_node *mm = pare_graph_find_node(g, "mm1");
        assert_string_equal(mm->op_type, "MatMulNBits");
        assert_int_equal(mm->inputs[1]->init->dims[0], 24);
        assert_int_equal(mm->inputs[1]->init->dims[1], 3);
        assert_int_equal(mm->inputs[1]->init->dims[2], 16 * bits / 8);
        pare_node *gm = pare_graph_find_node(g, "gemm2");
        assert_string_equal(gm->op_type, "MatMulNBits");
        assert_int_equal(gm->n_inputs, 6); /* beta * C as the bias */
        const float *c2 = pare_graph_find_value(pare_model_graph(ref), "C2")->init->data;
        assert_true(((float *)gm->inputs[5]->init->data)[0] == 2.0f * c2[0]);
        assert_null(gm->inputs[4]);
        if (sym)
            assert_null(gm->inputs[3]);
        else
            assert_int_equal(gm->inputs[3]->init->dims[0], 16 * ((2 * bits + 7) / 8)); /* K 24: 2 blocks */
    }
    pare_tensor **yq = run(m, in, 2, &nq);
    assert_int_equal(nq, 3);
    /* relative L2 against the float model: small, and smaller with 8 bits */
    /* r (ReduceMean over g2, rewritten for opset 21) is the mean of the new g2 */
    const float *g2q = out_named(yq, nq, "g2"), *rq = out_named(yq, nq, "r");
    for (int i = 0; i < 3; i++) {
        double avg = 0;
        for (int j = 0; j < 16; j++)
            avg += g2q[i * 16 + j] / 16.0;
        assert_true(fabs(avg - rq[i]) < 1e-5);
    }
    const char *names[3] = {"g2", "g3"};
    for (int i = 0; i < 2; i++) {
        const float *a = out_named(yq, nq, names[i]), *b = out_named(yr, nr, names[i]);
        size_t cnt = i == 0 ? 48 : 12;
        double d = 0, n2 = 0;
        for (size_t j = 0; j < cnt; j++)
            d += (a[j] - b[j]) * (double)(a[j] - b[j]), n2 += (double)b[j] * b[j];
        double rel = sqrt(d / n2);
        print_message("%s %s %d-bit %s: rel L2 %.5f\n", fmt == PARE_WQ_QDQ ? "qdq" : "nbits",
                      sym ? "sym" : "asym", bits, names[i], rel);
        assert_true(rel < (bits == 4 ? 0.2 : 0.02));
        assert_true(rel > 0 || i == 1); /* g3 stays float, but reads g2 */
    }
    pare_tensors_free(yq, nq);
    pare_tensors_free(yr, nr);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_quant_report_release(&r);
    pare_model_free(ref);
    pare_model_free(m);
}

static void test_mixed_qdq(void **state)
{
    (void)state;
    check_mixed(PARE_WQ_QDQ, false, 4);
    check_mixed(PARE_WQ_QDQ, true, 4);
    check_mixed(PARE_WQ_QDQ, false, 8);
}

static void test_mixed_nbits(void **state)
{
    (void)state;
    check_mixed(PARE_WQ_MATMULNBITS, false, 4);
    check_mixed(PARE_WQ_MATMULNBITS, true, 4);
    check_mixed(PARE_WQ_MATMULNBITS, true, 8);
}

/* The MatMulNBits output equals x @ (dequantized W) computed from the stored
 * bytes by this test's own unpacking. */
static void test_nbits_matches_dequantized(void **state)
{
    (void)state;
    pare_model *m = load("wq_mixed.onnx");
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.format = PARE_WQ_MATMULNBITS;
    o.block_size = 16;
    o.filter.op_types = (const char *const[]){"MatMul"};
    o.filter.n_op_types = 1;
    quantize(m, &o, NULL);
    pare_node *n = pare_graph_find_node(pare_model_graph(m), "mm1");
    const uint8_t *b = n->inputs[1]->init->data, *z = n->inputs[3]->init->data;
    const float *s = n->inputs[2]->init->data;
    /* the output of mm1 ("m1") is not a graph output: compare g2 via a float Gemm
     * recomputed here instead is longer; check the dequantized weight against the
     * float one element by element, then the executor's run against it */
    pare_model *ref = load("wq_mixed.onnx");
    const float *w = pare_graph_find_value(pare_model_graph(ref), "W1")->init->data;
    for (int64_t col = 0; col < 24; col++)
        for (int64_t k = 0; k < 40; k++) {
            int64_t blk = k / 16, j = k % 16;
            uint8_t byte = b[(col * 3 + blk) * 8 + j / 2];
            int code = (j & 1) ? byte >> 4 : byte & 15;
            uint8_t zb = z[col * 2 + blk / 2];
            int zp = (blk & 1) ? zb >> 4 : zb & 15;
            float sc = s[col * 3 + blk];
            float deq = (float)(code - zp) * sc;
            assert_true(fabsf(deq - w[k * 24 + col]) <= 0.5f * sc * 1.0001f);
        }
    /* padding of the last block (8 of 16 used) holds the zero point code */
    for (int64_t col = 0; col < 24; col++) {
        uint8_t zb = z[col * 2 + 1];
        int zp = zb & 15; /* block 2 is the low nibble of byte 1 */
        for (int j = 8; j < 16; j++) {
            uint8_t byte = b[(col * 3 + 2) * 8 + j / 2];
            assert_int_equal((j & 1) ? byte >> 4 : byte & 15, zp);
        }
    }
    pare_model_free(ref);
    pare_model_free(m);
}

/* ---- weights read by several nodes are stored once ---- */

static size_t count_inits(pare_model *m)
{
    pare_graph *g = pare_model_graph(m);
    size_t c = 0;
    for (size_t i = 0; i < g->n_values; i++)
        c += g->values[i] && g->values[i]->init && !g->values[i]->is_input;
    return c;
}

static void check_shared(pare_wq_format fmt, bool sym)
{
    pare_model *ref = load("wq_shared.onnx"), *m = load("wq_shared.onnx");
    pare_tensor *in[2];
    int64_t xd[2] = {3, 32}, id[1] = {3};
    pare_error err;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 2, xd, &in[0], &err), PARE_OK);
    assert_int_equal(pare_tensor_new("ids", PARE_DT_INT64, 1, id, &in[1], &err), PARE_OK);
    for (int i = 0; i < 96; i++)
        ((float *)in[0]->data)[i] = (float)((i * 37) % 19) / 9.0f - 1.0f;
    int64_t *ids = in[1]->data;
    ids[0] = 4, ids[1] = 9, ids[2] = 0;
    size_t nr, nq;
    pare_tensor **yr = run(ref, in, 2, &nr);
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.format = fmt;
    o.symmetric = sym;
    o.bits = sym ? 8 : 4;
    o.block_size = 32;
    o.embeddings = true;
    pare_quant_report r;
    pare_quant_report_init(&r);
    quantize(m, &o, &r);
    pare_graph *g = pare_model_graph(m);
    pare_node *mm1 = pare_graph_find_node(g, "mm1"), *mm2 = pare_graph_find_node(g, "mm2");
    pare_node *emb = pare_graph_find_node(g, "embed"), *lm = pare_graph_find_node(g, "lm_head");
    assert_non_null(mm1);
    assert_non_null(mm2);
    assert_non_null(emb);
    assert_non_null(lm);
    /* W: one quantized copy read by both MatMuls */
    assert_ptr_equal(mm1->inputs[1], mm2->inputs[1]);
    size_t per = sym ? 2 : 3; /* codes, scales (, zero points) */
    if (fmt == PARE_WQ_QDQ) {
        /* the tied table: Gather and Gemm (transB) read it as [V, D], one copy */
        assert_ptr_equal(emb->inputs[0], lm->inputs[1]);
        assert_int_equal(count_op(m, "DequantizeLinear"), 3); /* W, P, table */
        assert_int_equal(count_inits(m), 3 * per);
    } else {
        assert_string_equal(mm1->op_type, "MatMulNBits");
        assert_ptr_equal(mm1->inputs[2], mm2->inputs[2]);
        if (!sym)
            assert_ptr_equal(mm1->inputs[3], mm2->inputs[3]);
        /* the table: the Gather's blocked DequantizeLinear and lm_head's
         * MatMulNBits are different forms, so two copies */
        assert_string_equal(lm->op_type, "MatMulNBits");
        assert_int_equal(count_op(m, "DequantizeLinear"), 1);
        assert_int_equal(count_inits(m), 4 * per);
    }
    /* the report says which node shares */
    bool said = false;
    for (size_t i = 0; i < r.n; i++)
        if (r.items[i].kind == PARE_QE_QUANTIZED && strcmp(r.items[i].name, "mm2") == 0)
            said = strstr(r.items[i].how, "stored once with mm1") != NULL;
    assert_true(said);
    /* and the model still computes the same thing, roughly */
    pare_tensor **yq = run(m, in, 2, &nq);
    const float *a = out_named(yq, nq, "logits"), *b = out_named(yr, nr, "logits");
    double d = 0, n2 = 0;
    for (size_t j = 0; j < 30; j++)
        d += (a[j] - b[j]) * (double)(a[j] - b[j]), n2 += (double)b[j] * b[j];
    print_message("shared %s %s: logits rel L2 %.5f\n", fmt == PARE_WQ_QDQ ? "qdq" : "nbits",
                  sym ? "sym" : "asym", sqrt(d / n2));
    assert_true(sqrt(d / n2) < (sym ? 0.02 : 0.2));
    pare_tensors_free(yq, nq);
    pare_tensors_free(yr, nr);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_quant_report_release(&r);
    pare_model_free(ref);
    pare_model_free(m);
}

static void test_shared_weights(void **state)
{
    (void)state;
    check_shared(PARE_WQ_QDQ, false);
    check_shared(PARE_WQ_QDQ, true);
    check_shared(PARE_WQ_MATMULNBITS, false);
    check_shared(PARE_WQ_MATMULNBITS, true);
}

static void test_bad_options(void **state)
{
    (void)state;
    pare_model *m = load("wq_mixed.onnx");
    pare_error err;
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.bits = 3;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "bits"));
    o = (pare_wq_opts)PARE_WQ_OPTS_INIT;
    o.block_size = 48;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_ARG);
    o = (pare_wq_opts)PARE_WQ_OPTS_INIT;
    o.algo = PARE_WQ_GPTQ;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "calibration"));
    o = (pare_wq_opts)PARE_WQ_OPTS_INIT;
    o.filter.exclude_nodes = (const char *const[]){"nope"};
    o.filter.n_exclude_nodes = 1;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "nope"));
    o = (pare_wq_opts)PARE_WQ_OPTS_INIT;
    o.filter.op_types = (const char *const[]){"Conv"};
    o.filter.n_op_types = 1;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_ARG);
    /* nothing changed by the refusals */
    assert_int_equal(pare_model_opset_version(m, ""), 17);
    assert_int_equal(count_op(m, "DequantizeLinear"), 0);
    /* exclusions are reported */
    o = (pare_wq_opts)PARE_WQ_OPTS_INIT;
    o.filter.exclude_nodes = (const char *const[]){"mm1"};
    o.filter.n_exclude_nodes = 1;
    pare_quant_report r;
    pare_quant_report_init(&r);
    quantize(m, &o, &r);
    bool seen = false;
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.items[i].name, "mm1") == 0)
            seen = r.items[i].kind == PARE_QE_FLOAT && strstr(r.items[i].how, "exclude");
    assert_true(seen);
    assert_string_equal(pare_graph_find_node(pare_model_graph(m), "mm1")->inputs[1]->name, "W1");
    pare_quant_report_release(&r);
    pare_model_free(m);
}

/* Blocked DequantizeLinear needs opset 21: a DFT-17 (whose axis became an
 * input in 20) is refused with the node named and
 * the model left as it was; MatMulNBits needs no opset change. */
static void test_opset_refusal(void **state)
{
    (void)state;
    pare_model *m = load("wq_dft17.onnx");
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    pare_error err;
    assert_int_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_ERR_UNSUPPORTED);
    print_message("expected: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "'dft'"));
    assert_non_null(strstr(err.msg, "matmulnbits"));
    assert_int_equal(pare_model_opset_version(m, ""), 17);
    assert_string_equal(node_of(m, "MatMul")->inputs[1]->name, "W");
    o.format = PARE_WQ_MATMULNBITS;
    quantize(m, &o, NULL);
    assert_int_equal(pare_model_opset_version(m, ""), 17);
    assert_int_equal(count_op(m, "MatMulNBits"), 1);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_qdq_asym),
        cmocka_unit_test(test_known_qdq_sym),
        cmocka_unit_test(test_known_nbits),
        cmocka_unit_test(test_mixed_qdq),
        cmocka_unit_test(test_mixed_nbits),
        cmocka_unit_test(test_nbits_matches_dequantized),
        cmocka_unit_test(test_shared_weights),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_opset_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
