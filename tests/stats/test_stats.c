/* Metrics as defined in DESIGN.md, checked against hand-computed values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>
#include "pare/stats.h"

static pare_tensor *make(int rank, const int64_t *dims, const float *v)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    memcpy(t->data, v, t->nbytes);
    return t;
}

static void test_metrics(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    float av[4] = {1, 2, 3, 4}, bv[4] = {1, 2, 3, 5};
    pare_tensor *a = make(1, d, av), *b = make(1, d, bv);
    pare_compare c;
    pare_error err;
    pare_compare_init(&c, 0.5, 0.0);
    assert_int_equal(pare_compare_add(&c, a, b, NULL, &err), PARE_OK);
    assert_true(fabs(c.max_abs - 1.0) < 1e-12);
    assert_true(fabs(pare_compare_mean_abs(&c) - 0.25) < 1e-12);
    /* ||b||^2 = 1+4+9+25 = 39, ||a-b||^2 = 1 */
    assert_true(fabs(pare_compare_rel_l2(&c) - sqrt(1.0 / 39.0)) < 1e-12);
    assert_true(fabs(pare_compare_snr_db(&c) - 10 * log10(39.0)) < 1e-9);
    double cos = (1 + 4 + 9 + 20) / (sqrt(30.0) * sqrt(39.0));
    assert_true(fabs(pare_compare_cosine(&c) - cos) < 1e-12);
    assert_int_equal(c.out_of_tol, 1);
    /* 1-D with 4 classes: one sample, argmax 3 in both */
    assert_true(pare_compare_top1(&c) == 1.0);
    pare_tensor_free(a);
    pare_tensor_free(b);
}

static void test_topk_and_labels(void **state)
{
    (void)state;
    int64_t d[2] = {2, 6};
    /* sample 0: a's top-1 is class 5, b ranks class 5 second -> top5 yes, top1 no
     * sample 1: both pick class 0 */
    float av[12] = {0, 0, 0, 0, 0, 9, 9, 1, 1, 1, 1, 1};
    float bv[12] = {0, 0, 0, 0, 8, 7, 9, 1, 1, 1, 1, 1};
    pare_tensor *a = make(2, d, av), *b = make(2, d, bv);
    int64_t ld[1] = {2};
    pare_tensor *lab;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, PARE_DT_INT64, 1, ld, &lab, &err), PARE_OK);
    ((int64_t *)lab->data)[0] = 5;
    ((int64_t *)lab->data)[1] = 1;
    pare_compare c;
    pare_compare_init(&c, -1, -1);
    assert_int_equal(pare_compare_add(&c, a, b, lab, &err), PARE_OK);
    assert_true(pare_compare_top1(&c) == 0.5);
    assert_true(pare_compare_top5(&c) == 1.0);
    assert_true(pare_compare_accuracy_a(&c) == 0.5);
    assert_true(pare_compare_accuracy_b(&c) == 0.0);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(lab);
}

static void test_nonfinite_counted(void **state)
{
    (void)state;
    int64_t d[1] = {3};
    float av[3] = {NAN, 1, INFINITY}, bv[3] = {NAN, 1, 2};
    pare_tensor *a = make(1, d, av), *b = make(1, d, bv);
    pare_compare c;
    pare_error err;
    pare_compare_init(&c, -1, -1);
    assert_int_equal(pare_compare_add(&c, a, b, NULL, &err), PARE_OK);
    assert_int_equal(c.nonfinite_a, 2);
    assert_int_equal(c.nonfinite_b, 1);
    assert_int_equal(c.mismatched_nonfinite, 1);
    assert_int_equal(c.n, 1);
    int64_t d2[1] = {2};
    pare_tensor *e = make(1, d2, av);
    assert_int_equal(pare_compare_add(&c, a, e, NULL, &err), PARE_ERR_INVALID);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(e);
}

static void test_percentiles_nearest_rank(void **state)
{
    (void)state;
    pare_latency l = {0};
    pare_error err;
    for (int i = 100; i >= 1; i--)
        pare_latency_add(&l, (double)i, &err);
    pare_latency_summary s;
    pare_latency_summarize(&l, &s);
    assert_true(s.min == 1 && s.max == 100);
    assert_true(s.p50 == 50 && s.p90 == 90 && s.p99 == 99);
    assert_true(fabs(s.mean - 50.5) < 1e-12);
    pare_latency_release(&l);
    for (int i = 0; i < 3; i++)
        pare_latency_add(&l, 10.0 * (i + 1), &err);
    pare_latency_summarize(&l, &s);
    assert_true(s.p50 == 20 && s.p99 == 30);
    pare_latency_release(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_topk_and_labels),
        cmocka_unit_test(test_nonfinite_counted),
        cmocka_unit_test(test_percentiles_nearest_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
