/* test_feed.c - a dataset bound to a session's inputs (pare/feed.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pare/feed.h"

static pare_model *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, name);
    pare_model *m = NULL;
    pare_error err;
    assert_int_equal(pare_model_load(path, NULL, &m, &err), PARE_OK);
    return m;
}

static pare_session *session(pare_model *m)
{
    pare_session *s = NULL;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_error err;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    return s;
}

static void test_batches_and_limit(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s = session(m);
    pare_feed *f = NULL;
    pare_error err;
    assert_int_equal(pare_feed_open(PARE_TESTDATA "/digits_val.npz", s, 100, 250, &f, &err),
                     PARE_OK);
    assert_int_equal(pare_feed_count(f), 250);
    int64_t sizes[8], n = 0, got;
    pare_tensor **ins;
    while (pare_feed_next(f, &ins, &got, &err) == PARE_OK && ins) {
        assert_true(n < 8);
        sizes[n++] = got;
        /* named after the input, samples on axis 0, the label array left out */
        assert_string_equal(ins[0]->name, pare_session_input(s, 0)->name);
        assert_int_equal(ins[0]->dims[0], got);
        assert_int_equal(ins[0]->rank, 4);
        pare_tensor **outs;
        size_t n_outs;
        assert_int_equal(pare_session_run(s, ins, 1, &outs, &n_outs, &err), PARE_OK);
        assert_int_equal(outs[0]->dims[0], got);
        pare_tensors_free(outs, n_outs);
        pare_tensors_free(ins, pare_session_input_count(s));
    }
    assert_int_equal(n, 3);
    assert_int_equal(sizes[0], 100);
    assert_int_equal(sizes[1], 100);
    assert_int_equal(sizes[2], 50);
    assert_int_equal(pare_feed_position(f), 250);
    /* rewind gives the first sample again */
    pare_feed_rewind(f);
    assert_int_equal(pare_feed_position(f), 0);
    assert_int_equal(pare_feed_next(f, &ins, &got, &err), PARE_OK);
    assert_non_null(ins);
    assert_int_equal(got, 100);
    pare_tensors_free(ins, 1);
    pare_feed_close(f);
    pare_session_free(s);
    pare_model_free(m);
}

static void test_mismatch_lists_signature(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s = session(m);
    pare_feed *f = NULL;
    pare_error err;
    /* data made for another model: no array for the input */
    assert_int_equal(pare_feed_open(PARE_TESTDATA "/transformer_data.npz", s, 8, 0, &f, &err),
                     PARE_ERR_ARG);
    assert_null(f);
    assert_non_null(strstr(err.msg, "expects"));
    assert_non_null(strstr(err.msg, pare_session_input(s, 0)->name));

    /* right name, wrong sample shape */
    char path[] = "/tmp/pare-test-feed-XXXXXX.npz";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    close(fd);
    pare_npz_writer *w;
    assert_int_equal(pare_npz_writer_open(path, false, &w, &err), PARE_OK);
    int64_t dims[4] = {5, 1, 7, 7};
    pare_tensor *t;
    assert_int_equal(pare_tensor_new(pare_session_input(s, 0)->name, PARE_DT_FLOAT, 4, dims, &t,
                                     &err), PARE_OK);
    assert_int_equal(pare_npz_writer_add(w, pare_session_input(s, 0)->name, t, &err), PARE_OK);
    assert_int_equal(pare_npz_writer_close(w, &err), PARE_OK);
    pare_tensor_free(t);
    assert_int_equal(pare_feed_open(path, s, 8, 0, &f, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "axis 2"));
    unlink(path);

    /* bad batch */
    assert_int_equal(pare_feed_open(PARE_TESTDATA "/digits_val.npz", s, 0, 0, &f, &err),
                     PARE_ERR_ARG);
    pare_session_free(s);
    pare_model_free(m);
}

/* the first input value of each sample of a feed, in order */
static size_t firsts(pare_feed *f, float *out, size_t max)
{
    pare_tensor **ins;
    int64_t got;
    pare_error err;
    size_t n = 0;
    while (pare_feed_next(f, &ins, &got, &err) == PARE_OK && ins) {
        size_t per = (size_t)(pare_tensor_numel(ins[0]) / (uint64_t)got);
        for (int64_t i = 0; i < got && n < max; i++) {
            /* a sample's fingerprint: the sum of its pixels */
            const float *x = (const float *)ins[0]->data + (size_t)i * per;
            float sum = 0;
            for (size_t k = 0; k < per; k++)
                sum += x[k] * (float)(k + 1);
            out[n++] = sum;
        }
        pare_tensors_free(ins, 1);
    }
    return n;
}

static void test_seeded_sampling(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s = session(m);
    pare_error err;
    float all[400], a[40], b[40], c[40], first[40];
    pare_feed *f;
    /* the whole set, to find drawn samples in it */
    assert_int_equal(pare_feed_open(PARE_TESTDATA "/digits_val.npz", s, 64, 0, &f, &err), PARE_OK);
    assert_int_equal(pare_feed_set_sampling(f, 5, &err), PARE_OK); /* no limit: no sampling */
    size_t n_all = firsts(f, all, 400);
    assert_int_equal(n_all, 360);
    pare_feed_close(f);
    float *sets[4] = {a, b, c, first};
    uint64_t seeds[4] = {7, 7, 8, 0};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pare_feed_open(PARE_TESTDATA "/digits_val.npz", s, 16, 40, &f, &err),
                         PARE_OK);
        assert_int_equal(pare_feed_set_sampling(f, seeds[k], &err), PARE_OK);
        assert_int_equal(pare_feed_count(f), 40);
        assert_int_equal(firsts(f, sets[k], 40), 40);
        assert_int_equal(pare_feed_position(f), 40);
        pare_feed_close(f);
    }
    assert_memory_equal(a, b, sizeof a);            /* same seed, same samples */
    assert_memory_not_equal(a, c, sizeof a);        /* another seed, others */
    assert_memory_equal(first, all, sizeof first);  /* seed 0: the first 40 */
    assert_memory_not_equal(a, first, sizeof a);
    /* drawn samples are distinct samples of the set, in file order */
    size_t last = 0;
    for (int i = 0; i < 40; i++) {
        size_t j = i ? last + 1 : 0;
        while (j < n_all && all[j] != a[i])
            j++;
        assert_true(j < n_all);
        last = j;
    }
    pare_session_free(s);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_and_limit),
        cmocka_unit_test(test_mismatch_lists_signature),
        cmocka_unit_test(test_seeded_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
