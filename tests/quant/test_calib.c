/* test_calib.c - the streaming calibration statistics (lib/quant/calib.c)
 * against hand-computed values: min/max and the moving average, non-finite
 * values left out, percentile on a uniform set (both the |x| and the
 * two-sided form), entropy picking a threshold well below the max of a
 * heavy-tailed set, mse, the histogram's fixed size and exact re-binning as
 * the range grows, and a calibration run through a session (graph input
 * statistics equal to the data's). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include "quant/calib.h"
#include <stdlib.h>
#include "exec/threadpool.h"
#include "qdq_help.h"

static void add(pare_qc_stats *s, unsigned flags, double c, const float *x, size_t n)
{
    pare_error err;
    if (pare_qc_stats_add(s, flags, c, x, n, 1, &err))
        fail_msg("add: %s", err.msg);
}

static void test_minmax(void **state)
{
    (void)state;
    pare_qc_stats s = {0};
    float a[] = {-3, 5, 1, NAN}, b[] = {2, -7, INFINITY};
    add(&s, PARE_QC_MOVING, 0.5, a, 4);
    add(&s, PARE_QC_MOVING, 0.5, b, 3);
    assert_int_equal(s.count, 5);
    assert_int_equal(s.nonfinite, 2);
    assert_true(s.min == -7 && s.max == 5);
    /* moving average: first batch (-3, 5), then halfway to (-7, 2) */
    assert_true(fabs(s.ma_min - -5.0) < 1e-12 && fabs(s.ma_max - 3.5) < 1e-12);
    double lo, hi;
    pare_qc_range(&s, PARE_CALIB_MINMAX, 0, false, false, 255, &lo, &hi);
    assert_true(lo == -7 && hi == 5);
    pare_qc_range(&s, PARE_CALIB_MINMAX, 0, true, false, 127, &lo, &hi);
    assert_true(lo == -7 && hi == 7);
    pare_qc_range(&s, PARE_CALIB_MINMAX, 0, false, true, 255, &lo, &hi);
    assert_true(lo == -5 && hi == 3.5);
    /* nothing finite: [0, 0] */
    pare_qc_stats e = {0};
    float nan1[] = {NAN};
    add(&e, PARE_QC_HIST, 0, nan1, 1);
    pare_qc_range(&e, PARE_CALIB_ENTROPY, 0, false, false, 255, &lo, &hi);
    assert_true(lo == 0 && hi == 0);
    pare_qc_stats_release(&s);
    pare_qc_stats_release(&e);
}

#define N 100000

static void test_percentile(void **state)
{
    (void)state;
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    pare_qc_stats s = {0}, t = {0};
    for (int i = 0; i < N; i++) /* uniform on [0, 1) */
        x[i] = (float)((i + 0.5) / N);
    add(&s, PARE_QC_HIST, 0, x, N);
    double lo, hi;
    pare_qc_range(&s, PARE_CALIB_PERCENTILE, 99.0, true, false, 127, &lo, &hi);
    assert_true(fabs(hi - 0.99) < 2.0 / PARE_QC_BINS);
    assert_true(lo == -hi);
    /* two-sided on uniform [-1, 1): 98 % keeps [-0.98, 0.98] */
    for (int i = 0; i < N; i++)
        x[i] = (float)(2.0 * (i + 0.5) / N - 1.0);
    add(&t, PARE_QC_HIST, 0, x, N);
    pare_qc_range(&t, PARE_CALIB_PERCENTILE, 98.0, false, false, 255, &lo, &hi);
    assert_true(fabs(hi - 0.98) < 2.0 / PARE_QC_BINS);
    assert_true(fabs(lo + 0.98) < 2.0 / PARE_QC_BINS);
    /* 100 %: the max */
    pare_qc_range(&t, PARE_CALIB_PERCENTILE, 100.0, false, false, 255, &lo, &hi);
    assert_true(hi == t.max && lo == t.min);
    pare_qc_stats_release(&s);
    pare_qc_stats_release(&t);
    free(x);
}

/* standard normal from a fixed LCG (Box-Muller) */
static void normals(float *x, int n, uint64_t seed)
{
    for (int i = 0; i < n; i += 2) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((seed >> 11) + 1.0) / 9007199254740993.0;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (seed >> 11) / 9007199254740992.0;
        double r = sqrt(-2 * log(u1));
        x[i] = (float)(r * cos(2 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

static void test_entropy_mse(void **state)
{
    (void)state;
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    normals(x, N, 42);
    for (int i = 0; i < 20; i++) /* a heavy tail: 20 values at 40 */
        x[i * 997] = 40.0f;
    pare_qc_stats s = {0};
    add(&s, PARE_QC_HIST, 0, x, N / 2);
    add(&s, PARE_QC_HIST, 0, x + N / 2, N / 2);
    assert_true(s.max == 40.0f);
    double lo, hi;
    pare_qc_range(&s, PARE_CALIB_ENTROPY, 0, true, false, 127, &lo, &hi);
    print_message("entropy threshold %.3f (max %.1f)\n", hi, s.max);
    assert_true(hi > 2.5 && hi < 20.0); /* covers the bulk, clips the tail */
    assert_true(lo == -hi);
    /* mse weighs the 20 outliers' clipping error against the rounding
     * error of 100000 values: it keeps almost all of the range here */
    pare_qc_range(&s, PARE_CALIB_MSE, 0, true, false, 127, &lo, &hi);
    print_message("mse threshold %.3f\n", hi);
    assert_true(hi > 30.0 && hi < 40.0);
    /* few distinct values (pixels k/16): KL is degenerate there, the
     * range stays whole */
    pare_qc_stats d = {0};
    for (int i = 0; i < N; i++)
        x[i] = (float)((i % 17) / 16.0);
    add(&d, PARE_QC_HIST, 0, x, N);
    pare_qc_range(&d, PARE_CALIB_ENTROPY, 0, true, false, 127, &lo, &hi);
    assert_true(hi == 1.0);
    pare_qc_stats_release(&d);
    /* minmax would take the outliers */
    double mlo, mhi;
    pare_qc_range(&s, PARE_CALIB_MINMAX, 0, true, false, 127, &mlo, &mhi);
    assert_true(mhi == 40.0);
    /* mse on a plain uniform set keeps (almost) the whole range */
    pare_qc_stats u = {0};
    for (int i = 0; i < N; i++)
        x[i] = (float)((i + 0.5) / N);
    add(&u, PARE_QC_HIST, 0, x, N);
    pare_qc_range(&u, PARE_CALIB_MSE, 0, false, false, 255, &lo, &hi);
    assert_true(hi > 0.97 && hi <= 1.0);
    assert_true(lo >= 0 && lo < 1e-4); /* the data's min, not below */
    /* one outlier M = 1000 beside those n = 100000 values: the error
     * n t^2 / (12 * 255^2) + (M - t)^2 is least at t = M / (1 + n / (12 * 255^2)) */
    pare_qc_stats v = {0};
    float big = 1000.0f;
    add(&v, PARE_QC_HIST, 0, &big, 1);
    add(&v, PARE_QC_HIST, 0, x, N);
    pare_qc_range(&v, PARE_CALIB_MSE, 0, false, false, 255, &lo, &hi);
    double want = 1000.0 / (1.0 + N / (12.0 * 255 * 255));
    print_message("mse threshold %.2f, expected %.2f\n", hi, want);
    assert_true(fabs(hi - want) < 2.0);
    pare_qc_stats_release(&v);
    pare_qc_stats_release(&s);
    pare_qc_stats_release(&u);
    free(x);
}

static void test_histogram_bound(void **state)
{
    (void)state;
    pare_qc_stats s = {0};
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 2 ? 1.0 : -0.5);
    add(&s, PARE_QC_HIST, 0, x, 64);
    uint64_t *h = s.hist;
    /* 1000 batches whose amplitude grows 2x per batch for 10 batches:
     * the same histogram, re-binned, every count kept */
    for (int b = 0; b < 1000; b++) {
        float y[64];
        double amp = b < 10 ? pow(2, b + 1) : 1.0;
        for (int i = 0; i < 64; i++)
            y[i] = (float)(x[i] * amp);
        add(&s, PARE_QC_HIST, 0, y, 64);
    }
    assert_ptr_equal(s.hist, h);
    assert_true(s.range >= 1024.0 && s.range < 2048.1);
    uint64_t total = 0, neg = 0;
    for (int i = 0; i < 2 * PARE_QC_BINS; i++)
        total += s.hist[i];
    for (int i = 0; i < PARE_QC_BINS; i++)
        neg += s.hist[i];
    assert_int_equal(total, s.count);
    assert_int_equal(total, 1001 * 64);
    assert_int_equal(neg, 1001 * 32);
    /* the 1024 values sit in the top bins, the 1.0 values in the lowest */
    int b1024 = (int)(1024.0 / s.range * PARE_QC_BINS);
    if (b1024 >= PARE_QC_BINS)
        b1024 = PARE_QC_BINS - 1;
    assert_int_equal(s.hist[PARE_QC_BINS + b1024], 32);
    assert_int_equal(s.hist[PARE_QC_BINS + 0] + s.hist[PARE_QC_BINS + 1] +
                         s.hist[PARE_QC_BINS + 2], 32 * 991);
    assert_int_equal(PARE_QC_HIST_BYTES, 32768);
    pare_qc_stats_release(&s);
}

static void test_calibrate_session(void **state)
{
    (void)state;
    pare_error err;
    pare_model *m = qh_load(QDQ_DATA, "qdq_cnn.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_value *vals[2] = {pare_graph_find_value(g, "x"), pare_graph_find_value(g, "r1_out")};
    pare_qc_stats st[2] = {{0}};
    pare_calib_opts c = {0};
    c.path = QDQ_DATA "/qdq_cnn_data.npz";
    c.samples = 40;
    c.batch = 16;
    c.threads = 1;
    uint64_t samples;
    if (pare_qc_calibrate(m, vals, 2, &c, PARE_QC_HIST, 0, st, &samples, &err))
        fail_msg("calibrate: %s", err.msg);
    assert_int_equal(samples, 40);
    assert_int_equal(st[0].count, 40 * 3 * 8 * 8);
    assert_int_equal(st[1].count, 40 * 8 * 8 * 8);
    /* graph input statistics equal the data's */
    pare_npz *z = NULL;
    pare_tensor *t = NULL;
    if (pare_npz_open(c.path, &z, &err) || pare_npz_read(z, 0, &t, &err))
        fail_msg("npz: %s", err.msg);
    double mn = INFINITY, mx = -INFINITY;
    const float *d = t->data;
    for (size_t i = 0; i < 40 * 3 * 8 * 8; i++) {
        mn = d[i] < mn ? d[i] : mn;
        mx = d[i] > mx ? d[i] : mx;
    }
    assert_true(st[0].min == mn && st[0].max == mx);
    assert_true(st[1].min >= 0); /* a Relu output */
    /* a dataset that does not fit: the expected signature in the message */
    c.path = QDQ_DATA "/qdq_ln_mm_data.npz";
    pare_qc_stats_release(&st[0]);
    pare_qc_stats_release(&st[1]);
    assert_int_not_equal(pare_qc_calibrate(m, vals, 2, &c, 0, 0, st, &samples, &err), PARE_OK);
    print_message("mismatch: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "qdq_ln_mm_data.npz"));
    assert_non_null(strstr(err.msg, "'x'"));
    pare_tensor_free(t);
    pare_npz_close(z);
    pare_model_free(m);
}

/* a large tensor split across a pool gives the statistics of one thread,
 * bin for bin, with and without non-finite values, across a range growth */
static void test_pool_split(void **state)
{
    (void)state;
    size_t n = ((size_t)1 << 19) + 37;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    uint32_t r = 7;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = ((float)(r >> 8) / 16777216.0f - 0.3f) * 4.0f;
    }
    pare_threadpool *pool = pare_threadpool_new(3);
    assert_non_null(pool);
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            x[12345] = NAN, x[n - 1] = INFINITY; /* the slow path of the counts */
        pare_qc_stats a = {0}, b = {0};
        pare_error err;
        unsigned fl = PARE_QC_HIST | PARE_QC_MOVING;
        for (int batch = 0; batch < 2; batch++) {
            if (batch)
                for (size_t i = 0; i < n; i += 3)
                    x[i] *= 3.0f; /* the second batch widens the range */
            assert_int_equal(pare_qc_stats_add(&a, fl, 0.1, x, n, 1, &err), PARE_OK);
            assert_int_equal(pare_qc_stats_add_pool(&b, fl, 0.1, x, n, 1, pool, &err), PARE_OK);
        }
        assert_int_equal(a.count, b.count);
        assert_int_equal(a.nonfinite, b.nonfinite);
        assert_int_equal(a.nonfinite, pass ? 4 : 0);
        assert_true(a.min == b.min && a.max == b.max && a.range == b.range);
        assert_true(a.ma_min == b.ma_min && a.ma_max == b.ma_max);
        assert_memory_equal(a.hist, b.hist, PARE_QC_HIST_BYTES);
        uint64_t total = 0;
        for (size_t i = 0; i < 2 * PARE_QC_BINS; i++)
            total += b.hist[i];
        assert_int_equal(total, b.count);
        pare_qc_stats_release(&a);
        pare_qc_stats_release(&b);
    }
    pare_threadpool_free(pool);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_entropy_mse),
        cmocka_unit_test(test_histogram_bound),
        cmocka_unit_test(test_calibrate_session),
        cmocka_unit_test(test_pool_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
