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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_and_limit),
        cmocka_unit_test(test_mismatch_lists_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
