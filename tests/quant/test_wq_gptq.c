/* test_wq_gptq.c - GPTQ against round to nearest on testdata's transformer
 * block, calibrated and measured on testdata/transformer_data.npz: int4
 * block 32 with GPTQ has a lower output error (relative L2 against the float
 * model) than RTN, with and without act_order, in both formats; GPTQ is
 * deterministic; a dataset that does not fit the model fails cleanly. */
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
#include "pare/feed.h"
#include "pare/quant.h"
#include "pare/stats.h"

#define MODEL PARE_TESTDATA "/transformer_block.onnx"
#define DATA PARE_TESTDATA "/transformer_data.npz"

static pare_model *load(void)
{
    pare_model *m;
    pare_error err;
    if (pare_model_load(MODEL, NULL, &m, &err))
        fail_msg("%s: %s", MODEL, err.msg);
    return m;
}

/* Relative L2 of m's outputs against ref's over the data (all outputs pooled). */
static double rel_l2(pare_model *m, pare_model *ref)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 2;
    pare_session *s = NULL, *sr = NULL;
    pare_feed *f = NULL;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err) || pare_session_new(ref, &so, &sr, &err) ||
        pare_feed_open(DATA, s, 16, 0, &f, &err))
        fail_msg("%s", err.msg);
    pare_compare c;
    pare_compare_init(&c, -1, -1);
    pare_tensor **in;
    int64_t got;
    size_t nin = pare_session_input_count(s);
    while (!pare_feed_next(f, &in, &got, &err) && in) {
        pare_tensor **a = NULL, **b = NULL;
        size_t na = 0, nb = 0;
        if (pare_session_run(s, in, nin, &a, &na, &err) ||
            pare_session_run(sr, in, nin, &b, &nb, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++)
            assert_int_equal(pare_compare_add(&c, a[i], b[i], NULL, &err), PARE_OK);
        pare_tensors_free(a, na);
        pare_tensors_free(b, nb);
        pare_tensors_free(in, nin);
    }
    pare_feed_close(f);
    pare_session_free(s);
    pare_session_free(sr);
    return pare_compare_rel_l2(&c);
}

static double quantized_error(pare_wq_algo algo, pare_wq_format fmt, bool act_order,
                              uint64_t budget, pare_model *ref, void **bytes, size_t *len)
{
    pare_model *m = load();
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.bits = 4;
    o.block_size = 32;
    o.algo = algo;
    o.format = fmt;
    o.act_order = act_order;
    o.hessian_budget = budget;
    o.calib.path = DATA;
    o.calib.threads = 2;
    pare_quant_report r;
    pare_quant_report_init(&r);
    pare_error err;
    if (pare_quantize_weight_only(m, &o, &r, &err))
        fail_msg("quantize: %s", err.msg);
    size_t nq = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.items[i].kind == PARE_QE_QUANTIZED) {
            nq++;
            assert_non_null(strstr(r.items[i].how, algo == PARE_WQ_GPTQ ? "gptq" : "rtn"));
        }
    assert_int_equal(nq, 6);
    if (algo == PARE_WQ_GPTQ)
        assert_int_equal(r.calib_samples, 64);
    double e = rel_l2(m, ref);
    if (bytes)
        assert_int_equal(pare_model_save_buffer(m, bytes, len, &err), PARE_OK);
    pare_quant_report_release(&r);
    pare_model_free(m);
    return e;
}

static void test_gptq_beats_rtn(void **state)
{
    (void)state;
    pare_model *ref = load();
    void *b1, *b2;
    size_t l1, l2;
    double rtn = quantized_error(PARE_WQ_RTN, PARE_WQ_QDQ, false, 0, ref, NULL, NULL);
    double gptq = quantized_error(PARE_WQ_GPTQ, PARE_WQ_QDQ, false, 0, ref, &b1, &l1);
    double gptq_ao = quantized_error(PARE_WQ_GPTQ, PARE_WQ_QDQ, true, 0, ref, NULL, NULL);
    double gptq_nb = quantized_error(PARE_WQ_GPTQ, PARE_WQ_MATMULNBITS, false, 0, ref, NULL, NULL);
    double again = quantized_error(PARE_WQ_GPTQ, PARE_WQ_QDQ, false, 0, ref, &b2, &l2);
    /* a budget of one Hessian at a time: a pass per layer group, later layers
     * calibrated on the model with the earlier ones quantized */
    double seq = quantized_error(PARE_WQ_GPTQ, PARE_WQ_QDQ, false, 1, ref, NULL, NULL);
    double seq_nb = quantized_error(PARE_WQ_GPTQ, PARE_WQ_MATMULNBITS, false, 1, ref, NULL, NULL);
    print_message("transformer_block int4 b32 rel L2: rtn %.5f  gptq %.5f  gptq act-order %.5f"
                  "  gptq matmulnbits %.5f  sequential %.5f  sequential matmulnbits %.5f\n",
                  rtn, gptq, gptq_ao, gptq_nb, seq, seq_nb);
    assert_true(rtn > 0 && gptq > 0);
    assert_true(gptq < rtn);
    assert_true(gptq_ao < rtn);
    assert_true(seq < rtn);
    assert_true(seq != gptq); /* later layers saw quantized inputs */
    assert_true(fabs(seq_nb - seq) <= 1e-3 * seq);
    /* the two formats hold the same codes: the same error up to float rounding */
    assert_true(fabs(gptq_nb - gptq) <= 1e-3 * gptq);
    /* deterministic */
    assert_true(again == gptq);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    pare_model_free(ref);
}

static void test_gptq_bad_data(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_wq_opts o = PARE_WQ_OPTS_INIT;
    o.algo = PARE_WQ_GPTQ;
    o.calib.path = PARE_TESTDATA "/digits_val.npz"; /* the CNN's inputs */
    pare_error err;
    pare_status st = pare_quantize_weight_only(m, &o, NULL, &err);
    assert_int_not_equal(st, PARE_OK);
    print_message("expected failure: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "x"));
    o.calib.path = PARE_TESTDATA "/no_such_file.npz";
    assert_int_not_equal(pare_quantize_weight_only(m, &o, NULL, &err), PARE_OK);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_gptq_bad_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
