/* test_quant_quality.c - the quality bars of issue 4 on testdata, through the
 * library:
 *   - cnn_digits.onnx, static int8 per-channel (uint8 activations, percentile
 *     calibration on 256 training samples): validation accuracy within 1
 *     point of float32, top-1 agreement >= 99 %, weights <= 0.3x the float
 *     bytes; also int8 symmetric activations with entropy calibration;
 *   - transformer_block.onnx, dynamic int8: cosine >= 0.99 on every output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "qdq_help.h"

typedef struct progress {
    int64_t calls, last_done, total;
} progress;

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress *p = ctx;
    assert_true(done > p->last_done); /* grows */
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void cnn_static(int act, pare_calib_method method)
{
    progress pr = {0};
    pare_error err;
    pare_model *f = qh_load(PARE_TESTDATA, "cnn_digits.onnx");
    pare_model *q = qh_load(PARE_TESTDATA, "cnn_digits.onnx");
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_static_opts o = PARE_STATIC_OPTS_INIT;
    o.calib.path = PARE_TESTDATA "/digits_train.npz";
    o.calib.samples = 256;
    o.calib.batch = 64;
    o.activation_type = act;
    o.method = method;
    o.calib.progress = on_progress;
    o.calib.progress_ctx = &pr;
    if (pare_quantize_static(q, &o, &r, &err))
        fail_msg("static: %s", err.msg);
    qh_valid(q);
    assert_int_equal(r.calib_samples, 256);
    assert_int_equal(pr.calls, 4); /* batches of 64 */
    assert_int_equal(pr.last_done, 256);
    assert_int_equal(pr.total, 256);
    pare_tensor *labels;
    if (pare_npy_read(PARE_TESTDATA "/digits_val_labels.npy", &labels, &err))
        fail_msg("labels: %s", err.msg);
    pare_compare c;
    qh_compare(q, f, PARE_TESTDATA "/digits_val.npz", 0, labels, &c, 1);
    double acc_q = pare_compare_accuracy_a(&c), acc_f = pare_compare_accuracy_b(&c);
    double top1 = pare_compare_top1(&c);
    double ratio = (double)r.weight_bytes_after / (double)r.weight_bytes_before;
    print_message("cnn_digits static %s method %d: accuracy %.4f (float %.4f), top-1 agreement "
                  "%.4f, weights %llu -> %llu bytes (%.3fx), cosine %.5f\n",
                  pare_dtype_name(act), (int)method, acc_q, acc_f, top1,
                  (unsigned long long)r.weight_bytes_before,
                  (unsigned long long)r.weight_bytes_after, ratio, pare_compare_cosine(&c));
    assert_int_equal(c.labelled, 360);
    assert_true(acc_q >= acc_f - 0.01);
    assert_true(top1 >= 0.99);
    assert_true(ratio <= 0.3);
    /* it is quantized: every Conv and the Gemm read a DequantizeLinear weight */
    size_t convs = 0;
    pare_graph *g = pare_model_graph(q);
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm")) {
            assert_non_null(n->inputs[1]->producer);
            assert_string_equal(n->inputs[1]->producer->op_type, "DequantizeLinear");
            assert_non_null(n->inputs[0]->producer);
            assert_string_equal(n->inputs[0]->producer->op_type, "DequantizeLinear");
            convs++;
        }
    }
    assert_int_equal(convs, 5);
    assert_int_equal(qh_count(q, "BatchNormalization"), 0); /* folded */
    pare_tensor_free(labels);
    pare_quant_report_release(&r);
    pare_model_free(f);
    pare_model_free(q);
}

static void test_cnn_static_uint8_percentile(void **state)
{
    (void)state;
    cnn_static(PARE_DT_UINT8, PARE_CALIB_PERCENTILE);
}

static void test_cnn_static_int8_entropy(void **state)
{
    (void)state;
    cnn_static(PARE_DT_INT8, PARE_CALIB_ENTROPY);
}

static void test_transformer_dynamic(void **state)
{
    (void)state;
    pare_error err;
    pare_model *f = qh_load(PARE_TESTDATA, "transformer_block.onnx");
    pare_model *q = qh_load(PARE_TESTDATA, "transformer_block.onnx");
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_dynamic_opts o = PARE_DYNAMIC_OPTS_INIT;
    if (pare_quantize_dynamic(q, &o, &r, &err))
        fail_msg("dynamic: %s", err.msg);
    qh_valid(q);
    assert_int_equal(qh_count(q, "MatMulInteger"), 6);
    pare_compare c;
    qh_compare(q, f, PARE_TESTDATA "/transformer_data.npz", 0, NULL, &c, 1);
    print_message("transformer_block dynamic: cosine %.5f, rel L2 %.5f, weights %llu -> %llu\n",
                  pare_compare_cosine(&c), pare_compare_rel_l2(&c),
                  (unsigned long long)r.weight_bytes_before,
                  (unsigned long long)r.weight_bytes_after);
    assert_true(pare_compare_cosine(&c) >= 0.99);
    assert_true(r.weight_bytes_after < r.weight_bytes_before / 2);
    pare_quant_report_release(&r);
    pare_model_free(f);
    pare_model_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_static_uint8_percentile),
        cmocka_unit_test(test_cnn_static_int8_entropy),
        cmocka_unit_test(test_transformer_dynamic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
