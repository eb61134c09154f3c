/* lib/prune on testdata's trained CNN: the global threshold is exact and
 * global, per-layer and per-row shares are exact, N:M and block patterns
 * hold on every pruned weight (checked with the weights' own layout, not
 * the library's index helpers), SparseGPT beats magnitude at 70%, the
 * sensitivity scan leaves the model as it was, bad options are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/model.h"
#include "pare/prune.h"
#include "pare/stats.h"

static const char *const pruned_names[] = {"conv2.weight", "conv3.weight", "proj.weight"};
static const char *const all_names[] = {"conv1.weight", "conv2.weight", "conv3.weight",
                                        "proj.weight", "fc.weight"};

static void path_of(const char *rel, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", PARE_TESTDATA, rel);
}

static pare_model *load(void)
{
    char path[512];
    path_of("cnn_digits.onnx", path, sizeof path);
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static pare_tensor *weight(pare_model *m, const char *name)
{
    pare_value *v = pare_graph_find_value(pare_model_graph(m), name);
    assert_non_null(v);
    pare_error err;
    pare_tensor *t = pare_value_tensor(v, &err);
    assert_non_null(t);
    assert_int_equal(t->dtype, PARE_DT_FLOAT);
    /* loaded data borrows the file's bytes, which need not be aligned for float */
    if (!t->owns_data)
        assert_int_equal(pare_tensor_own(t, &err), PARE_OK);
    return t;
}

static int64_t zeros(const pare_tensor *t)
{
    int64_t z = 0;
    const float *w = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        z += w[i] == 0;
    return z;
}

/* rows x cols view of a weight by its own layout: Conv [O, C, kh, kw] and
 * Gemm transB=1 [N, K] are row-major with the reduction axis contiguous */
static void view(const pare_tensor *t, int64_t *rows, int64_t *cols)
{
    *rows = t->dims[0];
    *cols = (int64_t)pare_tensor_numel(t) / t->dims[0];
}

static void test_global_threshold(void **state)
{
    (void)state;
    pare_model *orig = load(), *m = load();
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.5;
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_error err;
    assert_int_equal(pare_prune_weights(m, &o, &r, &err), PARE_OK);
    /* first and last dense by default */
    assert_int_equal(r.n_layers, 3);
    assert_int_equal(zeros(weight(m, "conv1.weight")), 0);
    assert_int_equal(zeros(weight(m, "fc.weight")), 0);
    int64_t total = 0, z = 0;
    float max_pruned = 0, min_kept = INFINITY;
    for (int i = 0; i < 3; i++) {
        pare_tensor *a = weight(orig, pruned_names[i]), *b = weight(m, pruned_names[i]);
        const float *wa = a->data, *wb = b->data;
        for (uint64_t k = 0; k < pare_tensor_numel(a); k++) {
            total++;
            if (wb[k] == 0) {
                z++;
                max_pruned = fmaxf(max_pruned, fabsf(wa[k]));
            } else {
                assert_true(wb[k] == wa[k]); /* kept weights unchanged */
                min_kept = fminf(min_kept, fabsf(wa[k]));
            }
        }
    }
    assert_int_equal(z, total / 2); /* exact count: floor(0.5 * 59392) */
    assert_true(max_pruned <= min_kept); /* one threshold across layers */
    assert_true(r.threshold == max_pruned);
    /* global: the layers' shares differ */
    assert_true(r.layers[0].zeros_after != r.layers[1].zeros_after * 18432 / 36864);
    assert_true(r.nonzero_after < r.nonzero_before);
    pare_prune_report_release(&r);
    pare_model_free(orig);
    pare_model_free(m);
}

static void test_per_layer(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.3;
    o.per_layer = true;
    o.filter.include_first_last = true;
    o.filter.min_params = 400; /* conv1 has 288, fc 640 */
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_error err;
    assert_int_equal(pare_prune_weights(m, &o, &r, &err), PARE_OK);
    assert_int_equal(zeros(weight(m, "conv1.weight")), 0);
    for (int i = 1; i < 5; i++) {
        pare_tensor *t = weight(m, all_names[i]);
        assert_int_equal(zeros(t), (int64_t)(0.3 * (double)pare_tensor_numel(t)));
    }
    assert_int_equal(r.n_layers, 4);
    assert_int_equal(r.n_skipped, 1);
    assert_string_equal(r.skipped[0].node, "conv1");
    pare_prune_report_release(&r);
    pare_model_free(m);
}

static void check_nm(pare_model *m, pare_model *orig, const char *name, int n, int mm)
{
    pare_tensor *t = weight(m, name), *o = weight(orig, name);
    int64_t rows, cols;
    view(t, &rows, &cols);
    const float *w = t->data, *wo = o->data;
    int64_t pruned = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j0 = 0; j0 < cols; j0 += mm) {
            int nz = 0;
            float min_kept = INFINITY, max_gone = 0;
            for (int64_t j = j0; j < j0 + mm && j < cols; j++) {
                float a = w[r * cols + j];
                if (a != 0) {
                    nz++;
                    min_kept = fminf(min_kept, fabsf(a));
                } else {
                    pruned++;
                    max_gone = fmaxf(max_gone, fabsf(wo[r * cols + j]));
                }
            }
            if (nz > n)
                fail_msg("%s row %lld group at %lld: %d nonzero of %d", name, (long long)r,
                         (long long)j0, nz, mm);
            assert_true(max_gone <= min_kept || nz == 0);
        }
    assert_true(pruned > 0);
}

static void test_nm_pattern(void **state)
{
    (void)state;
    pare_model *orig = load(), *m = load();
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.pattern_n = 2;
    o.pattern_m = 4;
    o.filter.include_first_last = true;
    pare_error err;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_OK);
    for (int i = 0; i < 5; i++)
        check_nm(m, orig, all_names[i], 2, 4);
    /* exactly half of every full group of 4 */
    assert_int_equal(zeros(weight(m, "conv3.weight")), 36864 / 2);
    assert_int_equal(zeros(weight(m, "fc.weight")), 640 / 2);
    pare_model_free(m);
    m = load();
    o.pattern_n = 1;
    o.pattern_m = 8;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_OK);
    for (int i = 1; i < 5; i++)
        check_nm(m, orig, all_names[i], 1, 8);
    pare_model_free(m);
    pare_model_free(orig);
}

static void test_block_pattern(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.5;
    o.block_r = 2;
    o.block_c = 4;
    o.per_layer = true;
    pare_error err;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_OK);
    for (int i = 0; i < 3; i++) {
        pare_tensor *t = weight(m, pruned_names[i]);
        int64_t rows, cols;
        view(t, &rows, &cols);
        const float *w = t->data;
        int64_t blocks = 0, empty = 0;
        for (int64_t r0 = 0; r0 < rows; r0 += 2)
            for (int64_t c0 = 0; c0 < cols; c0 += 4) {
                int z = 0, n = 0;
                for (int64_t r = r0; r < r0 + 2 && r < rows; r++)
                    for (int64_t c = c0; c < c0 + 4 && c < cols; c++, n++)
                        z += w[r * cols + c] == 0;
                assert_true(z == 0 || z == n); /* whole blocks only */
                blocks++;
                empty += z == n;
            }
        assert_int_equal(empty, blocks / 2);
    }
    pare_model_free(m);
}

static void test_bad_options(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_error err;
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 1.0;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "outside [0, 1)"));
    o.sparsity = -0.1;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    o.sparsity = NAN;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    o.sparsity = 0.5;
    o.pattern_n = 5;
    o.pattern_m = 4;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "larger than M"));
    o.pattern_n = o.pattern_m = 0;
    const char *bad[] = {"conv2", "nope"};
    o.filter.exclude_nodes = bad;
    o.filter.n_exclude_nodes = 2;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "'nope'"));
    o.filter.n_exclude_nodes = 1; /* conv2 only: exists, left dense */
    o.criterion = PARE_PRUNE_WANDA;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_ERR_ARG);
    o.criterion = PARE_PRUNE_MAGNITUDE;
    assert_int_equal(pare_prune_weights(m, &o, NULL, &err), PARE_OK);
    assert_int_equal(zeros(weight(m, "conv2.weight")), 0);
    assert_true(zeros(weight(m, "conv3.weight")) > 0);
    pare_model_free(m);
}

/* relative L2 error of m's logits against the original's on the validation data */
static double output_error(pare_model *m, pare_model *orig)
{
    char path[512];
    path_of("digits_val.npz", path, sizeof path);
    pare_session *s, *so;
    pare_session_opts opts = PARE_SESSION_OPTS_INIT;
    opts.threads = 1;
    pare_error err;
    assert_int_equal(pare_session_new(m, &opts, &s, &err), PARE_OK);
    assert_int_equal(pare_session_new(orig, &opts, &so, &err), PARE_OK);
    pare_feed *f;
    assert_int_equal(pare_feed_open(path, s, 64, 0, &f, &err), PARE_OK);
    pare_compare c;
    pare_compare_init(&c, -1, -1);
    pare_tensor **ins;
    int64_t got;
    while (pare_feed_next(f, &ins, &got, &err) == PARE_OK && ins) {
        pare_tensor **a, **b;
        size_t na, nb;
        assert_int_equal(pare_session_run(s, ins, 1, &a, &na, &err), PARE_OK);
        assert_int_equal(pare_session_run(so, ins, 1, &b, &nb, &err), PARE_OK);
        assert_int_equal(pare_compare_add(&c, a[0], b[0], NULL, &err), PARE_OK);
        pare_tensors_free(a, na);
        pare_tensors_free(b, nb);
        pare_tensors_free(ins, 1);
    }
    pare_feed_close(f);
    pare_session_free(s);
    pare_session_free(so);
    assert_true(c.samples == 360);
    return pare_compare_rel_l2(&c);
}

static void calib(pare_prune_opts *o, char *buf, size_t size)
{
    path_of("digits_train.npz", buf, size);
    o->calib.path = buf;
    o->calib.samples = 128;
    o->calib.batch = 32;
    o->calib.threads = 1;
}

static void test_sparsegpt_beats_magnitude(void **state)
{
    (void)state;
    char cpath[512];
    pare_model *orig = load(), *mag = load(), *sg = load();
    pare_error err;
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.7;
    o.per_layer = true;
    assert_int_equal(pare_prune_weights(mag, &o, NULL, &err), PARE_OK);
    o.criterion = PARE_PRUNE_SPARSEGPT;
    calib(&o, cpath, sizeof cpath);
    pare_prune_report r;
    pare_prune_report_init(&r);
    if (pare_prune_weights(sg, &o, &r, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(r.calib_samples, 128);
    for (size_t i = 0; i < r.n_layers; i++) {
        assert_null(r.layers[i].note); /* no fallback to magnitude */
        /* the same share as asked, per layer */
        assert_true(fabs((double)r.layers[i].zeros_after / (double)r.layers[i].params - 0.7) < 0.01);
    }
    double e_mag = output_error(mag, orig), e_sg = output_error(sg, orig);
    print_message("rel L2 at 70%%: magnitude %.4f, sparsegpt %.4f\n", e_mag, e_sg);
    assert_true(e_sg < e_mag);
    pare_prune_report_release(&r);
    pare_model_free(sg);
    /* SparseGPT with 2:4 keeps the pattern */
    sg = load();
    o.pattern_n = 2;
    o.pattern_m = 4;
    assert_int_equal(pare_prune_weights(sg, &o, NULL, &err), PARE_OK);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 1; k++) {
            pare_tensor *t = weight(sg, pruned_names[i]);
            int64_t rows, cols;
            view(t, &rows, &cols);
            const float *w = t->data;
            for (int64_t rr = 0; rr < rows; rr++)
                for (int64_t j0 = 0; j0 < cols; j0 += 4) {
                    int nz = 0;
                    for (int64_t j = j0; j < j0 + 4 && j < cols; j++)
                        nz += w[rr * cols + j] != 0;
                    assert_true(nz <= 2);
                }
        }
    pare_model_free(sg);
    pare_model_free(mag);
    pare_model_free(orig);
}

static void test_wanda_per_row(void **state)
{
    (void)state;
    char cpath[512];
    pare_model *m = load();
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.5;
    o.criterion = PARE_PRUNE_WANDA;
    calib(&o, cpath, sizeof cpath);
    pare_error err;
    if (pare_prune_weights(m, &o, NULL, &err))
        fail_msg("%s", err.msg);
    for (int i = 0; i < 3; i++) {
        pare_tensor *t = weight(m, pruned_names[i]);
        int64_t rows, cols;
        view(t, &rows, &cols);
        const float *w = t->data;
        for (int64_t r = 0; r < rows; r++) {
            int64_t z = 0;
            for (int64_t j = 0; j < cols; j++)
                z += w[r * cols + j] == 0;
            assert_int_equal(z, cols / 2); /* compared within each output row */
        }
    }
    /* calibration data that does not fit the model fails with the signature */
    pare_model_free(m);
    m = load();
    path_of("transformer_data.npz", cpath, sizeof cpath);
    assert_int_not_equal(pare_prune_weights(m, &o, NULL, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "input"));
    pare_model_free(m);
}

static void test_sensitivity(void **state)
{
    (void)state;
    char dpath[512], lpath[512];
    path_of("digits_val.npz", dpath, sizeof dpath);
    path_of("digits_val_labels.npy", lpath, sizeof lpath);
    pare_model *m = load(), *orig = load();
    pare_sensitivity_opts so = {0};
    double levels[] = {0.5, 0.95};
    so.data = dpath;
    so.labels = lpath;
    so.levels = levels;
    so.n_levels = 2;
    so.samples = 120;
    so.batch = 40;
    so.threads = 1;
    so.base = (pare_prune_opts)PARE_PRUNE_OPTS_INIT;
    pare_sensitivity s;
    pare_error err;
    if (pare_prune_sensitivity(m, &so, &s, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(s.n_rows, 3);
    assert_true(s.has_accuracy && s.has_top1);
    assert_int_equal(s.samples, 120);
    assert_true(s.base_accuracy > 0.9);
    for (size_t i = 0; i < s.n_rows; i++) {
        assert_true(s.rows[i].cosine[1] <= s.rows[i].cosine[0] + 1e-9);
        assert_true(s.rows[i].cosine[0] < 1.0);
    }
    /* the model is as it was */
    for (int i = 0; i < 5; i++) {
        pare_tensor *a = weight(m, all_names[i]), *b = weight(orig, all_names[i]);
        assert_memory_equal(a->data, b->data, a->nbytes);
    }
    pare_prune_layer_sparsity *ch;
    size_t nch;
    double drop;
    if (pare_prune_choose(m, &so, &s, 0.02, &ch, &nch, &drop, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(nch, 3);
    assert_true(drop <= 0.02);
    pare_json *j;
    assert_int_equal(pare_json_new(0, &j, &err), PARE_OK);
    pare_sensitivity_json(&s, j);
    const char *text;
    size_t len;
    assert_int_equal(pare_json_finish(j, &text, &len, &err), PARE_OK);
    assert_non_null(strstr(text, "\"metric\":\"accuracy\""));
    pare_json_free(j);
    free(ch);
    pare_sensitivity_release(&s);
    pare_model_free(m);
    pare_model_free(orig);
}

static void test_report_and_sizes(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_error err;
    uint64_t plain0, gz0, plain1, gz1;
    assert_int_equal(pare_prune_model_sizes(m, 6, &plain0, &gz0, &err), PARE_OK);
    assert_true(gz0 < plain0 && plain0 > 240000);
    pare_prune_opts o = PARE_PRUNE_OPTS_INIT;
    o.sparsity = 0.5;
    o.filter.include_first_last = true;
    pare_prune_report r;
    pare_prune_report_init(&r);
    assert_int_equal(pare_prune_weights(m, &o, &r, &err), PARE_OK);
    assert_int_equal(pare_prune_model_sizes(m, 6, &plain1, &gz1, &err), PARE_OK);
    /* the bar of the issue: a 50%-sparse model gzips to at most 0.6x */
    assert_true((double)gz1 <= 0.6 * (double)gz0);
    assert_true(r.macs_before > 0);
    assert_true(r.macs_effective_after < 0.6 * r.macs_after);
    pare_json *j;
    assert_int_equal(pare_json_new(0, &j, &err), PARE_OK);
    pare_prune_report_json(&r, j);
    const char *text;
    size_t len;
    assert_int_equal(pare_json_finish(j, &text, &len, &err), PARE_OK);
    assert_non_null(strstr(text, "\"schema\":\"pare-prune/1\""));
    assert_non_null(strstr(text, "\"node\":\"conv1\""));
    pare_json_free(j);
    char *t;
    assert_int_equal(pare_prune_report_text(&r, &t, &err), PARE_OK);
    assert_non_null(strstr(t, "conv3"));
    free(t);
    pare_prune_report_release(&r);
    pare_model_free(m);
}

static void test_channels_not_built(void **state)
{
    (void)state;
    pare_model *m = load();
    pare_channel_opts co = PARE_CHANNEL_OPTS_INIT;
    co.ratio = 0.3;
    pare_error err;
    pare_status st = pare_prune_channels(m, &co, NULL, &err);
    /* the structured part replaces the stub; until then it says so */
    if (st == PARE_ERR_UNSUPPORTED)
        assert_non_null(strstr(err.msg, "not built"));
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_threshold),
        cmocka_unit_test(test_per_layer),
        cmocka_unit_test(test_nm_pattern),
        cmocka_unit_test(test_block_pattern),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_sparsegpt_beats_magnitude),
        cmocka_unit_test(test_wanda_per_row),
        cmocka_unit_test(test_sensitivity),
        cmocka_unit_test(test_report_and_sizes),
        cmocka_unit_test(test_channels_not_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
