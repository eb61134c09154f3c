/* test_qdq.c - static QDQ and dynamic int8 graphs on small built models
 * (tests/quant/data/make_qdq_fixtures.py): where the Q/DQ pairs go (none
 * between a Conv and its Relu/Clip), shared scales (Concat, MaxPool,
 * GlobalAveragePool/Flatten), int32 bias values and scales, per-channel
 * weight layout, int8 symmetric and float8 variants, filters, opset checks,
 * SmoothQuant folding, and outputs close to the float model through a
 * session; the dynamic form (DynamicQuantizeLinear + MatMulInteger /
 * ConvInteger + Cast + Mul [+ Add]). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include "pare/dtype.h"
#include "qdq_help.h"

#define CNN_DATA QDQ_DATA "/qdq_cnn_data.npz"
#define LN_DATA QDQ_DATA "/qdq_ln_mm_data.npz"

/* the QuantizeLinear reading value `name`; NULL if none */
static pare_node *q_of(pare_model *m, const char *name)
{
    pare_value *v = pare_graph_find_value(pare_model_graph(m), name);
    assert_non_null(v);
    for (size_t i = 0; i < v->n_uses; i++)
        if (!strcmp(v->uses[i].node->op_type, "QuantizeLinear"))
            return v->uses[i].node;
    return NULL;
}

static float scale_of(pare_model *m, const char *name)
{
    pare_node *q = q_of(m, name);
    if (!q)
        fail_msg("no QuantizeLinear on '%s'", name);
    assert_non_null(q->inputs[1]->init);
    return *(const float *)q->inputs[1]->init->data;
}

static double zp_of(pare_model *m, const char *name)
{
    pare_node *q = q_of(m, name);
    assert_non_null(q);
    const pare_tensor *t = q->inputs[2]->init;
    return pare_dtype_get_f64(t->dtype, t->data, 0);
}

static pare_model *quant_static(const char *file, pare_static_opts *o, pare_quant_report *r)
{
    pare_error err;
    pare_model *m = qh_load(QDQ_DATA, file);
    pare_quant_report_init(r);
    if (pare_quantize_static(m, o, r, &err))
        fail_msg("static: %s", err.msg);
    qh_valid(m);
    return m;
}

static double cosine(pare_model *q, const char *file, const char *data, size_t out)
{
    pare_model *f = qh_load(QDQ_DATA, file);
    pare_compare c[2];
    qh_compare(q, f, data, 0, NULL, c, out + 1);
    pare_model_free(f);
    return pare_compare_cosine(&c[out]);
}

static void test_cnn_structure(void **state)
{
    (void)state;
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    o.method = PARE_CALIB_MINMAX;
    pare_quant_report r;
    pare_model *m = quant_static("qdq_cnn.onnx", &o, &r);
    pare_graph *g = pare_model_graph(m);
    assert_int_equal(pare_model_opset_version(m, ""), 17); /* already >= 13: kept */
    /* no pair between c1 and its Relu, nor c3 and its Clip */
    pare_value *c1 = pare_graph_find_value(g, "c1_out");
    assert_int_equal(c1->n_uses, 1);
    assert_string_equal(c1->uses[0].node->op_type, "Relu");
    assert_null(q_of(m, "c3_out"));
    assert_non_null(q_of(m, "r1_out"));
    assert_non_null(q_of(m, "r3_out"));
    assert_non_null(q_of(m, "x"));
    /* Concat: inputs and output share one scale and zero point */
    float sc = scale_of(m, "cat_out");
    assert_true(scale_of(m, "c2_out") == sc && scale_of(m, "r3_out") == sc);
    assert_true(zp_of(m, "c2_out") == zp_of(m, "cat_out"));
    /* pooling and pass-through keep their input's scale */
    assert_true(scale_of(m, "mp_out") == sc);
    assert_true(scale_of(m, "gap_out") == scale_of(m, "res_out"));
    assert_true(scale_of(m, "flat_out") == scale_of(m, "res_out"));
    /* uint8 activations: a Relu output has zero point 0 */
    assert_true(zp_of(m, "r1_out") == 0);
    assert_int_equal(q_of(m, "r1_out")->inputs[2]->init->dtype, PARE_DT_UINT8);
    /* c1: per-channel int8 weight, int32 bias with scale s_x * s_w */
    pare_node *n = qh_node(m, "c1");
    pare_node *wdq = n->inputs[1]->producer, *bdq = n->inputs[2]->producer;
    assert_string_equal(wdq->op_type, "DequantizeLinear");
    assert_string_equal(bdq->op_type, "DequantizeLinear");
    assert_int_equal(pare_node_attr_int(wdq, "axis", 1), 0);
    const pare_tensor *wq = wdq->inputs[0]->init, *ws = wdq->inputs[1]->init;
    assert_int_equal(wq->dtype, PARE_DT_INT8);
    assert_int_equal(ws->rank, 1);
    assert_int_equal(ws->dims[0], 8);
    const pare_tensor *bq = bdq->inputs[0]->init, *bs = bdq->inputs[1]->init,
                      *bz = bdq->inputs[2]->init;
    assert_int_equal(bq->dtype, PARE_DT_INT32);
    assert_int_equal(bz->dtype, PARE_DT_INT32);
    assert_int_equal(*(const int32_t *)bz->data, 0);
    pare_model *orig = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    const float *b1 = pare_graph_find_value(pare_model_graph(orig), "B1")->init->data;
    const float *w1 = pare_graph_find_value(pare_model_graph(orig), "W1")->init->data;
    float sx = scale_of(m, "x");
    for (int c = 0; c < 8; c++) {
        float s = ((const float *)bs->data)[c];
        float swc = ((const float *)ws->data)[c];
        assert_true(fabsf(s - sx * swc) <= 1e-6f * s);
        int32_t q = ((const int32_t *)bq->data)[c];
        assert_true(fabs(q * (double)s - b1[c]) <= s / 2 + 1e-9);
        /* the weight scale is max |W[c]| / 127 */
        double amax = 0;
        for (int k = 0; k < 27; k++)
            amax = fmax(amax, fabs(w1[c * 27 + k]));
        assert_true(fabs(swc - amax / 127) < 1e-6 * amax);
    }
    /* the max |W| of a channel maps to +-127 */
    int8_t mx = 0;
    for (int k = 0; k < 27; k++)
        mx = (int8_t)(abs(((const int8_t *)wq->data)[k]) > mx ? abs(((const int8_t *)wq->data)[k]) : mx);
    assert_int_equal(mx, 127);
    /* Gemm transB=1: per-channel on axis 0, int32 bias */
    pare_node *fc = qh_node(m, "fc");
    assert_int_equal(pare_node_attr_int(fc->inputs[1]->producer, "axis", 1), 0);
    assert_int_equal(fc->inputs[2]->producer->inputs[0]->init->dtype, PARE_DT_INT32);
    /* the graph output stays float, made by the Gemm itself */
    assert_ptr_equal(g->outputs[0]->producer, fc);
    /* report: quantized, fused and ranges */
    const pare_quant_entry *e = qh_entry(&r, PARE_QE_QUANTIZED, "r1");
    assert_non_null(e);
    assert_non_null(strstr(e->how, "fused"));
    assert_non_null(qh_entry(&r, PARE_QE_QUANTIZED, "c1"));
    assert_non_null(qh_entry(&r, PARE_QE_QUANTIZED, "cat"));
    assert_non_null(qh_entry(&r, PARE_QE_QUANTIZED, "mp"));
    e = qh_entry(&r, PARE_QE_RANGE, "r1_out");
    assert_non_null(e);
    assert_true(e->lo == 0 && e->hi > 0 && e->scale == scale_of(m, "r1_out"));
    assert_true(r.weight_bytes_after < r.weight_bytes_before / 2);
    assert_int_equal(r.calib_samples, 64);
    double cs = cosine(m, "qdq_cnn.onnx", CNN_DATA, 0);
    print_message("qdq_cnn uint8 minmax cosine %.5f\n", cs);
    assert_true(cs > 0.99);
    pare_model_free(orig);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

/* a per-channel scale computed from constants (Constant -> Unsqueeze, as
 * version-converted models write a BatchNormalization) is folded into an
 * initializer first: the Mul by it has one activation, not two */
/* qdq_cnn's Conv c1 reads x * k (a Mul named x_mul) instead of x; then
 * static quantization with the CNN's data, the report in *r */
static void scale_c1_input(pare_model *m, pare_value *k, pare_quant_report *r)
{
    pare_error err;
    pare_graph *g = pare_model_graph(m);
    pare_value *x = pare_graph_find_value(g, "x"), *mv;
    pare_node *n;
    assert_int_equal(pare_graph_new_value(g, "x_scaled", NULL, 0, &mv, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "x_mul", "", "Mul", (pare_value *[]){x, k}, 2, &mv, 1,
                                         NULL, &n, &err), PARE_OK);
    assert_int_equal(pare_node_set_input(qh_node(m, "c1"), 0, mv, &err), PARE_OK);
    assert_int_equal(pare_graph_toposort(g, &err), PARE_OK);
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    pare_quant_report_init(r);
    if (pare_quantize_static(m, &o, r, &err))
        fail_msg("static: %s", err.msg);
    qh_valid(m);
}

static void test_constant_operand(void **state)
{
    (void)state;
    pare_error err;
    pare_model *m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_value *cv, *uv;
    pare_node *n;
    pare_tensor *t;
    int64_t three[1] = {3}, two[1] = {2};
    assert_int_equal(pare_tensor_new("k", PARE_DT_FLOAT, 1, three, &t, &err), PARE_OK);
    for (int i = 0; i < 3; i++)
        ((float *)t->data)[i] = 0.5f + 0.25f * (float)i;
    assert_int_equal(pare_graph_new_value(g, "k_c", NULL, 0, &cv, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "k_const", "", "Constant", NULL, 0, &cv, 1, NULL, &n,
                                         &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_tensor(n, "value", t, &err), PARE_OK);
    pare_tensor *ax;
    assert_int_equal(pare_tensor_new("ax", PARE_DT_INT64, 1, two, &ax, &err), PARE_OK);
    ((int64_t *)ax->data)[0] = 1;
    ((int64_t *)ax->data)[1] = 2;
    pare_value *axv;
    assert_int_equal(pare_graph_add_initializer(g, ax, &axv, &err), PARE_OK);
    assert_int_equal(pare_graph_new_value(g, "k_u", NULL, 0, &uv, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "k_unsq", "", "Unsqueeze", (pare_value *[]){cv, axv}, 2,
                                         &uv, 1, NULL, &n, &err), PARE_OK);
    pare_quant_report r;
    scale_c1_input(m, uv, &r);
    assert_int_equal(qh_count(m, "Constant"), 0);
    assert_int_equal(qh_count(m, "Unsqueeze"), 0);
    n = qh_node(m, "x_mul");
    assert_non_null(n->inputs[1]->init); /* an initializer, no DequantizeLinear */
    assert_null(n->inputs[1]->producer);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

/* a Conv whose input calibration never sees a finite value (x * inf) keeps
 * a float input, and the report says so instead of "uint8 activations" */
static void test_uncalibrated_input(void **state)
{
    (void)state;
    pare_error err;
    pare_model *m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_value *kv;
    pare_tensor *t;
    assert_int_equal(pare_tensor_new("inf_k", PARE_DT_FLOAT, 0, NULL, &t, &err), PARE_OK);
    *(float *)t->data = INFINITY;
    assert_int_equal(pare_graph_add_initializer(g, t, &kv, &err), PARE_OK);
    pare_quant_report r;
    scale_c1_input(m, kv, &r);
    /* no pair on the Conv's input, its weights still quantized */
    const pare_node *c1 = qh_node(m, "c1");
    assert_true(!c1->inputs[0]->producer ||
                strcmp(c1->inputs[0]->producer->op_type, "DequantizeLinear") != 0);
    assert_string_equal(c1->inputs[1]->producer->op_type, "DequantizeLinear");
    /* every Conv's line says what its input got */
    int seen = 0;
    for (size_t i = 0; i < r.n; i++) {
        const pare_quant_entry *e = &r.items[i];
        if (e->kind != PARE_QE_QUANTIZED || !e->op || strcmp(e->op, "Conv"))
            continue;
        const pare_node *cn = qh_node(m, e->name);
        bool dq = cn->inputs[0]->producer &&
                  !strcmp(cn->inputs[0]->producer->op_type, "DequantizeLinear");
        if (dq != (strstr(e->how, "uint8 activations") != NULL) ||
            dq == (strstr(e->how, "float (no finite range seen in calibration)") != NULL))
            fail_msg("%s (input %sdequantized): %s", e->name, dq ? "" : "not ", e->how);
        seen += !strcmp(e->name, "c1");
    }
    assert_int_equal(seen, 1);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

static void test_cnn_int8_per_tensor(void **state)
{
    (void)state;
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    o.activation_type = PARE_DT_INT8;
    o.per_channel = false;
    o.method = PARE_CALIB_MSE;
    pare_quant_report r;
    pare_model *m = quant_static("qdq_cnn.onnx", &o, &r);
    assert_true(zp_of(m, "r1_out") == 0 && zp_of(m, "x") == 0);
    assert_int_equal(q_of(m, "x")->inputs[2]->init->dtype, PARE_DT_INT8);
    pare_node *wdq = qh_node(m, "c1")->inputs[1]->producer;
    assert_int_equal(wdq->inputs[1]->init->rank, 0);
    assert_null(pare_node_attr(wdq, "axis"));
    double cs = cosine(m, "qdq_cnn.onnx", CNN_DATA, 0);
    print_message("qdq_cnn int8 per-tensor mse cosine %.5f\n", cs);
    assert_true(cs > 0.98);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

static void test_fp8(void **state)
{
    (void)state;
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    o.activation_type = PARE_DT_FLOAT8E4M3FN;
    o.weight_type = PARE_DT_FLOAT8E4M3FN;
    o.method = PARE_CALIB_MINMAX;
    pare_quant_report r;
    pare_model *m = quant_static("qdq_cnn.onnx", &o, &r);
    /* opset 21: QuantizeLinear names float8 with output_dtype and carries no
     * zero point (onnxruntime's optimizers mishandle float8 zero points) */
    assert_int_equal(pare_model_opset_version(m, ""), 21);
    pare_node *qx = q_of(m, "x");
    assert_int_equal(qx->n_inputs, 2);
    assert_int_equal(pare_node_attr_int(qx, "output_dtype", 0), PARE_DT_FLOAT8E4M3FN);
    assert_int_equal(qx->outputs[0]->dtype, PARE_DT_FLOAT8E4M3FN);
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (pare_node_is(g->nodes[i], "", "QuantizeLinear") ||
            pare_node_is(g->nodes[i], "", "DequantizeLinear"))
            assert_int_equal(g->nodes[i]->n_inputs, 2);
    /* scale = amax / 448 */
    const pare_quant_entry *e = qh_entry(&r, PARE_QE_RANGE, "x");
    assert_non_null(e);
    double amax = fmax(fabs(e->lo), fabs(e->hi));
    assert_true(fabs(scale_of(m, "x") - amax / 448) < 1e-6 * amax);
    pare_node *c1 = qh_node(m, "c1");
    assert_int_equal(c1->inputs[1]->producer->inputs[0]->init->dtype, PARE_DT_FLOAT8E4M3FN);
    /* bias stays float in fp8 mode */
    assert_non_null(c1->inputs[2]->init);
    double cs = cosine(m, "qdq_cnn.onnx", CNN_DATA, 0);
    print_message("qdq_cnn fp8 cosine %.5f\n", cs);
    assert_true(cs > 0.99);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

static void test_filters(void **state)
{
    (void)state;
    pare_error err;
    pare_quant_report r;
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    /* unknown node names: an error naming them */
    const char *bad[] = {"c3", "nope", "nada"};
    o.filter.exclude_nodes = bad;
    o.filter.n_exclude_nodes = 3;
    pare_model *m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    pare_quant_report_init(&r);
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "'nope'"));
    assert_non_null(strstr(err.msg, "'nada'"));
    assert_null(strstr(err.msg, "'c3'"));
    pare_quant_report_release(&r);
    pare_model_free(m);
    /* an op type that cannot be quantized */
    const char *ops[] = {"Conv", "Softmax"};
    o.filter.n_exclude_nodes = 0;
    o.filter.op_types = ops;
    o.filter.n_op_types = 2;
    m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    pare_quant_report_init(&r);
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "Softmax"));
    pare_quant_report_release(&r);
    pare_model_free(m);
    /* c3 excluded: its weight stays float, its Clip is not fused */
    o.filter.op_types = NULL;
    o.filter.n_op_types = 0;
    o.filter.exclude_nodes = bad;
    o.filter.n_exclude_nodes = 1;
    m = quant_static("qdq_cnn.onnx", &o, &r);
    pare_node *c3 = qh_node(m, "c3");
    assert_non_null(c3->inputs[1]->init);
    assert_int_equal(c3->inputs[1]->init->dtype, PARE_DT_FLOAT);
    const pare_quant_entry *e = qh_entry(&r, PARE_QE_FLOAT, "c3");
    assert_non_null(e);
    assert_string_equal(e->how, "excluded by --exclude-nodes");
    assert_non_null(qh_entry(&r, PARE_QE_FLOAT, "r3"));
    assert_non_null(qh_entry(&r, PARE_QE_QUANTIZED, "c2"));
    pare_quant_report_release(&r);
    pare_model_free(m);
    /* only Conv: the Gemm stays float, reported so */
    const char *conv_only[] = {"Conv"};
    o.filter.exclude_nodes = NULL;
    o.filter.n_exclude_nodes = 0;
    o.filter.op_types = conv_only;
    o.filter.n_op_types = 1;
    m = quant_static("qdq_cnn.onnx", &o, &r);
    e = qh_entry(&r, PARE_QE_FLOAT, "fc");
    assert_non_null(e);
    assert_string_equal(e->how, "not in --op-types");
    assert_non_null(qh_node(m, "fc")->inputs[1]->init);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    pare_error err;
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = CNN_DATA;
    /* raising opset 11 to 13 would change the Squeeze: refused */
    pare_model *m = qh_load(QDQ_DATA, "opset11_squeeze.onnx");
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_UNSUPPORTED);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "'sq'"));
    assert_int_equal(pare_model_opset_version(m, ""), 11);
    pare_model_free(m);
    /* bad options */
    m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    o.activation_type = PARE_DT_FLOAT16;
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    o.activation_type = PARE_DT_FLOAT8E4M3FN; /* fp8 activations need fp8 weights */
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    o.activation_type = PARE_DT_UINT8;
    o.percentile = 120;
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    o.percentile = 99.9;
    o.calib.path = NULL;
    assert_int_equal(pare_quantize_static(m, &o, &r, &err), PARE_ERR_ARG);
    /* calibration data for another model: the expected signature */
    o.calib.path = LN_DATA;
    assert_int_not_equal(pare_quantize_static(m, &o, &r, &err), PARE_OK);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "input 'x'"));
    pare_model_free(m);
    pare_dynamic_opts d = PARE_DYNAMIC_OPTS_INIT;
    d.weight_type = PARE_DT_INT16;
    m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    assert_int_equal(pare_quantize_dynamic(m, &d, &r, &err), PARE_ERR_ARG);
    pare_model_free(m);
    pare_quant_report_release(&r);
}

/* IR 3 / opset 9: raised to IR 7 / opset 13; initializers stop being
 * inputs; Dropout loses its ratio attribute; Softmax over [N,4,1,1] kept */
static void test_old_ir(void **state)
{
    (void)state;
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = QDQ_DATA "/qdq_ir3_data.npz";
    pare_quant_report r;
    pare_model *m = quant_static("ir3_opset9.onnx", &o, &r);
    assert_int_equal(pare_model_opset_version(m, ""), 13);
    assert_int_equal(pare_model_ir_version(m), 7);
    pare_graph *g = pare_model_graph(m);
    assert_int_equal(g->n_inputs, 1);
    assert_null(pare_node_attr(qh_node(m, "drop"), "ratio"));
    pare_node *conv = qh_node(m, "conv");
    assert_string_equal(conv->inputs[1]->producer->op_type, "DequantizeLinear");
    double cs = cosine(m, "ir3_opset9.onnx", QDQ_DATA "/qdq_ir3_data.npz", 0);
    print_message("ir3 cosine %.6f\n", cs);
    assert_true(cs > 0.999);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

/* output error of mm path (output 0) with and without SmoothQuant */
static void test_smooth_quant(void **state)
{
    (void)state;
    double rel[2];
    for (int k = 0; k < 2; k++) {
        pare_static_opts o = PARE_STATIC_OPTS_INIT;
        o.calib.path = LN_DATA;
        o.activation_type = PARE_DT_INT8;
        o.method = PARE_CALIB_MINMAX;
        o.smooth_quant_alpha = k ? 0.5 : 0.0;
        pare_quant_report r;
        pare_model *m = quant_static("qdq_ln_mm.onnx", &o, &r);
        pare_node *ln = qh_node(m, "ln");
        if (k) {
            /* x / s folded into the LayerNormalization's scale: the outlier
             * channel's gamma shrinks */
            assert_string_not_equal(ln->inputs[1]->name, "gamma");
            assert_true(fabsf(((const float *)ln->inputs[1]->init->data)[3]) < 20.0f);
            /* mm2 reads a Relu: a Mul by 1/s inserted there (gm has alpha 0.5: skipped) */
            assert_int_equal(qh_count(m, "Mul"), 1);
            const pare_quant_entry *e = qh_entry(&r, PARE_QE_QUANTIZED, "mm1");
            assert_non_null(e);
            assert_non_null(strstr(e->how, "SmoothQuant"));
        } else
            assert_string_equal(ln->inputs[1]->name, "gamma");
        pare_model *f = qh_load(QDQ_DATA, "qdq_ln_mm.onnx");
        pare_compare c[2];
        qh_compare(m, f, LN_DATA, 0, NULL, c, 2);
        rel[k] = pare_compare_rel_l2(&c[0]);
        print_message("ln_mm %s: rel L2 y %.5f, w cosine %.5f\n", k ? "SmoothQuant" : "plain",
                      rel[k], pare_compare_cosine(&c[1]));
        assert_true(pare_compare_cosine(&c[1]) > 0.99);
        pare_model_free(f);
        pare_quant_report_release(&r);
        pare_model_free(m);
    }
    assert_true(rel[1] < rel[0]);
}

/* x / s folded into the weight columns of the MatMul that makes x */
static void test_smooth_quant_matmul(void **state)
{
    (void)state;
    double rel[2];
    for (int k = 0; k < 2; k++) {
        pare_static_opts o = PARE_STATIC_OPTS_INIT;
        o.calib.path = QDQ_DATA "/qdq_mm_mm_data.npz";
        o.activation_type = PARE_DT_INT8;
        o.method = PARE_CALIB_MINMAX;
        o.smooth_quant_alpha = k ? 0.5 : 0.0;
        const char *only_b[] = {"mmA"}; /* mmA float: its weight shows the fold */
        o.filter.exclude_nodes = only_b;
        o.filter.n_exclude_nodes = 1;
        pare_quant_report r;
        pare_model *m = quant_static("qdq_mm_mm.onnx", &o, &r);
        pare_node *a = qh_node(m, "mmA");
        assert_non_null(a->inputs[1]->init);
        if (k) {
            assert_string_not_equal(a->inputs[1]->name, "W0");
            assert_int_equal(qh_count(m, "Mul"), 0);
        }
        pare_model *f = qh_load(QDQ_DATA, "qdq_mm_mm.onnx");
        pare_compare c;
        qh_compare(m, f, QDQ_DATA "/qdq_mm_mm_data.npz", 0, NULL, &c, 1);
        rel[k] = pare_compare_rel_l2(&c);
        print_message("mm_mm %s: rel L2 %.5f\n", k ? "SmoothQuant" : "plain", rel[k]);
        pare_model_free(f);
        pare_quant_report_release(&r);
        pare_model_free(m);
    }
    assert_true(rel[1] < rel[0]);
}

static void test_dynamic(void **state)
{
    (void)state;
    pare_error err;
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_dynamic_opts o = PARE_DYNAMIC_OPTS_INIT;
    pare_model *m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    if (pare_quantize_dynamic(m, &o, &r, &err))
        fail_msg("dynamic: %s", err.msg);
    qh_valid(m);
    assert_int_equal(qh_count(m, "ConvInteger"), 4);
    assert_int_equal(qh_count(m, "MatMulInteger"), 1);
    assert_int_equal(qh_count(m, "Conv"), 0);
    /* r1_out feeds c2 and c3: one DynamicQuantizeLinear for both */
    assert_int_equal(qh_count(m, "DynamicQuantizeLinear"), 4);
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        if (!strcmp(n->op_type, "ConvInteger")) {
            /* uint8 weight with the scalar zero point 128 */
            assert_int_equal(n->inputs[1]->init->dtype, PARE_DT_UINT8);
            assert_int_equal(n->inputs[3]->init->rank, 0);
            assert_int_equal(*(const uint8_t *)n->inputs[3]->init->data, 128);
            assert_string_equal(n->inputs[0]->producer->op_type, "DynamicQuantizeLinear");
        }
        if (!strcmp(n->op_type, "MatMulInteger")) {
            /* Gemm transB=1 -> [K, N] = [16, 5] int8 */
            assert_int_equal(n->inputs[1]->init->dtype, PARE_DT_INT8);
            assert_int_equal(n->inputs[1]->init->dims[0], 16);
            assert_int_equal(n->inputs[1]->init->dims[1], 5);
        }
    }
    const pare_quant_entry *e = qh_entry(&r, PARE_QE_QUANTIZED, "c1");
    assert_non_null(e);
    assert_non_null(strstr(e->how, "ConvInteger"));
    e = qh_entry(&r, PARE_QE_FLOAT, "res");
    assert_non_null(e);
    double cs = cosine(m, "qdq_cnn.onnx", CNN_DATA, 0);
    print_message("qdq_cnn dynamic cosine %.5f\n", cs);
    assert_true(cs > 0.99);
    pare_quant_report_release(&r);
    pare_model_free(m);
    /* Gemm with alpha 0.5, beta 2 and a 3-D MatMul; per-tensor weights */
    pare_quant_report_init(&r);
    o.per_channel = false;
    m = qh_load(QDQ_DATA, "qdq_ln_mm.onnx");
    if (pare_quantize_dynamic(m, &o, &r, &err))
        fail_msg("dynamic: %s", err.msg);
    qh_valid(m);
    assert_int_equal(qh_count(m, "MatMulInteger"), 3);
    assert_int_equal(qh_count(m, "Gemm"), 0);
    pare_model *f = qh_load(QDQ_DATA, "qdq_ln_mm.onnx");
    pare_compare c[2];
    qh_compare(m, f, LN_DATA, 0, NULL, c, 2);
    print_message("ln_mm dynamic per-tensor: cosine y %.5f w %.5f\n", pare_compare_cosine(&c[0]),
                  pare_compare_cosine(&c[1]));
    assert_true(pare_compare_cosine(&c[0]) > 0.99);
    assert_true(pare_compare_cosine(&c[1]) > 0.99);
    pare_model_free(f);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_structure),
        cmocka_unit_test(test_constant_operand),
        cmocka_unit_test(test_uncalibrated_input),
        cmocka_unit_test(test_cnn_int8_per_tensor),
        cmocka_unit_test(test_fp8),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_old_ir),
        cmocka_unit_test(test_smooth_quant),
        cmocka_unit_test(test_smooth_quant_matmul),
        cmocka_unit_test(test_dynamic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
