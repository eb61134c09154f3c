/* test_quant_report.c - the report as JSON (pare_quant_report_json) and the
 * already-quantized test (pare_model_is_quantized) of lib/quant/common.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/quant.h"

static pare_model *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, name);
    pare_model *m = NULL;
    pare_error err;
    assert_int_equal(pare_model_load(path, NULL, &m, &err), PARE_OK);
    return m;
}

static pare_node *node(pare_model *m, const char *name)
{
    pare_node *n = pare_graph_find_node(pare_model_graph(m), name);
    assert_non_null(n);
    return n;
}

/* position of needle in hay, failing when absent */
static size_t at(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    if (!p)
        fail_msg("'%s' not in the JSON:\n%s", needle, hay);
    return (size_t)(p - hay);
}

static void test_report_json(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_quant_report r;
    pare_error err;
    pare_quant_report_init(&r);
    assert_int_equal(pare_quant_report_node(&r, PARE_QE_QUANTIZED, node(m, "fc"), "int8 QDQ", &err),
                     PARE_OK);
    assert_int_equal(
        pare_quant_report_node(&r, PARE_QE_QUANTIZED, node(m, "conv1"), "int8 QDQ", &err), PARE_OK);
    assert_int_equal(
        pare_quant_report_node(&r, PARE_QE_QUANTIZED, node(m, "conv2"), "int8 QDQ", &err), PARE_OK);
    assert_int_equal(
        pare_quant_report_node(&r, PARE_QE_QUANTIZED, node(m, "conv3"), "uint8 QDQ", &err), PARE_OK);
    assert_int_equal(
        pare_quant_report_node(&r, PARE_QE_FLOAT, node(m, "pool"), "op not quantizable", &err),
        PARE_OK);
    /* ranges out of name order; "a" is the outlier (amax 100, median 2) */
    assert_int_equal(pare_quant_report_range(&r, "b", -1, 2, 0.01, 3, &err), PARE_OK);
    assert_int_equal(pare_quant_report_range(&r, "a", -100, 3, 0.5, 0, &err), PARE_OK);
    assert_int_equal(pare_quant_report_range(&r, "c", 0, 1, 0.004, 0, &err), PARE_OK);
    assert_int_equal(pare_quant_report_clamped(&r, "w1", 3, &err), PARE_OK);
    assert_int_equal(pare_quant_report_clamped(&r, "w0", 4, &err), PARE_OK);
    r.weight_bytes_before = 1000;
    r.weight_bytes_after = 250;
    r.calib_samples = 77;

    pare_json *j;
    assert_int_equal(pare_json_new(0, &j, &err), PARE_OK);
    pare_quant_report_json(&r, j);
    const char *t;
    size_t len;
    assert_int_equal(pare_json_finish(j, &t, &len, &err), PARE_OK);
    at(t, "\"nodes_quantized\":4");
    at(t, "\"nodes_float\":1");
    /* groups by op then how: Conv int8 (2), Conv uint8 (1), Gemm int8 (1) */
    size_t g1 = at(t, "{\"op\":\"Conv\",\"how\":\"int8 QDQ\",\"nodes\":2}");
    size_t g2 = at(t, "{\"op\":\"Conv\",\"how\":\"uint8 QDQ\",\"nodes\":1}");
    size_t g3 = at(t, "{\"op\":\"Gemm\",\"how\":\"int8 QDQ\",\"nodes\":1}");
    assert_true(g1 < g2 && g2 < g3);
    /* the node list keeps the report's order */
    assert_true(at(t, "{\"name\":\"fc\",\"op\":\"Gemm\",\"how\":\"int8 QDQ\"}") <
                at(t, "{\"name\":\"conv1\""));
    at(t, "{\"name\":\"pool\",\"op\":\"MaxPool\",\"why\":\"op not quantizable\"}");
    at(t, "\"weight_ratio\":0.25");
    at(t, "\"samples\":77,\"tensors\":3");
    /* ranges sorted by name */
    size_t ra = at(t, "{\"tensor\":\"a\",\"lo\":-100,\"hi\":3,\"scale\":0.5,\"zero_point\":0}");
    size_t rb = at(t, "{\"tensor\":\"b\",\"lo\":-1");
    size_t rc = at(t, "{\"tensor\":\"c\",\"lo\":0");
    assert_true(ra < rb && rb < rc);
    /* outliers: widest first, against the median (2) */
    at(t, "\"median_abs_max\":2");
    size_t oa = at(t, "{\"tensor\":\"a\",\"abs_max\":100,\"times_median\":50,\"scale\":0.5}");
    size_t ob = at(t, "{\"tensor\":\"b\",\"abs_max\":2,\"times_median\":1");
    size_t oc = at(t, "{\"tensor\":\"c\",\"abs_max\":1,\"times_median\":0.5");
    assert_true(oa > rc && oa < ob && ob < oc);
    /* clamped: total, by name */
    at(t, "\"clamped_total\":7");
    assert_true(at(t, "{\"tensor\":\"w0\",\"count\":4}") < at(t, "{\"tensor\":\"w1\",\"count\":3}"));
    pare_json_free(j);

    /* an empty report is a valid object too */
    pare_quant_report e;
    pare_quant_report_init(&e);
    assert_int_equal(pare_json_new(0, &j, &err), PARE_OK);
    pare_quant_report_json(&e, j);
    assert_int_equal(pare_json_finish(j, &t, &len, &err), PARE_OK);
    at(t, "\"nodes_quantized\":0");
    at(t, "\"weight_ratio\":null");
    at(t, "\"median_abs_max\":null,\"top_outliers\":[]");
    pare_json_free(j);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

/* a new initializer of dtype with n elements read by a new node op */
static void add_weight(pare_model *m, int dtype, int64_t n, const char *op)
{
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_tensor *t;
    int64_t dims[1] = {n};
    assert_int_equal(pare_tensor_new("w_q", dtype, 1, dims, &t, &err), PARE_OK);
    pare_value *w, *out;
    assert_int_equal(pare_graph_add_initializer(g, t, &w, &err), PARE_OK);
    assert_int_equal(pare_graph_new_value(g, NULL, "y_q", PARE_DT_FLOAT, &out, &err), PARE_OK);
    pare_value *ins[2] = {pare_graph_find_value(g, "input"), w};
    assert_int_equal(pare_graph_add_node(g, "user_q", "", op, ins, 2, &out, 1, NULL, NULL, &err),
                     PARE_OK);
}

static void test_is_quantized(void **state)
{
    (void)state;
    char what[256];
    pare_model *m = load("cnn_digits.onnx");
    assert_false(pare_model_is_quantized(m, what, sizeof what));
    assert_string_equal(what, "");
    assert_false(pare_model_is_quantized(m, NULL, 0));
    pare_model_free(m);

    /* a Q/DQ node */
    m = load("cnn_digits.onnx");
    add_weight(m, PARE_DT_FLOAT, 4, "DequantizeLinear");
    assert_true(pare_model_is_quantized(m, what, sizeof what));
    assert_non_null(strstr(what, "'user_q' (DequantizeLinear)"));
    pare_model_free(m);

    /* an int8 weight read by MatMul */
    m = load("cnn_digits.onnx");
    add_weight(m, PARE_DT_INT8, 64, "MatMul");
    assert_true(pare_model_is_quantized(m, what, sizeof what));
    assert_non_null(strstr(what, "initializer 'w_q' (int8) feeds"));
    pare_model_free(m);

    /* a small uint8 constant (a mask, a lookup table) does not count */
    m = load("cnn_digits.onnx");
    add_weight(m, PARE_DT_UINT8, 8, "MatMul");
    assert_false(pare_model_is_quantized(m, what, sizeof what));
    pare_model_free(m);

    /* an int4 initializer in use counts whatever reads it */
    m = load("cnn_digits.onnx");
    add_weight(m, PARE_DT_INT4, 32, "Mul");
    assert_true(pare_model_is_quantized(m, what, sizeof what));
    assert_non_null(strstr(what, "is int4"));
    /* a short buffer is truncated, not overrun */
    char tiny[8];
    assert_true(pare_model_is_quantized(m, tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_is_quantized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
