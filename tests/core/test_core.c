/* Core: status and error context, tensors (overflow checks, ownership). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "pare/status.h"
#include "pare/tensor.h"

static void test_error_context(void **state)
{
    (void)state;
    pare_error err;
    assert_int_equal(pare_error_set(&err, PARE_ERR_IO, "cannot open %s", "x.onnx"), PARE_ERR_IO);
    assert_string_equal(err.msg, "cannot open x.onnx");
    assert_int_equal(pare_error_prefix(&err, "node '%s'", "conv1"), PARE_ERR_IO);
    assert_string_equal(err.msg, "node 'conv1': cannot open x.onnx");
    pare_error_clear(&err);
    assert_int_equal(err.status, PARE_OK);
    assert_string_equal(err.msg, "");
    /* NULL context is allowed */
    assert_int_equal(pare_error_set(NULL, PARE_ERR_NOMEM, "x"), PARE_ERR_NOMEM);
    /* a long prefix never overflows */
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pare_error_set(&err, PARE_ERR_IO, "tail");
    pare_error_prefix(&err, "%s", big);
    assert_true(strlen(err.msg) < sizeof err.msg);
    for (int s = PARE_OK; s <= PARE_ERR_RUNTIME; s++)
        assert_non_null(pare_strerror((pare_status)s));
}

static void test_numel_overflow(void **state)
{
    (void)state;
    pare_error err;
    uint64_t n;
    int64_t ok[3] = {2, 3, 4};
    assert_int_equal(pare_shape_numel(3, ok, &n, &err), PARE_OK);
    assert_int_equal(n, 24);
    int64_t big[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    assert_int_equal(pare_shape_numel(3, big, &n, &err), PARE_ERR_LIMIT);
    int64_t neg[2] = {2, -1};
    assert_int_equal(pare_shape_numel(2, neg, &n, &err), PARE_ERR_INVALID);
    int64_t zero[2] = {0, 1LL << 62};
    assert_int_equal(pare_shape_numel(2, zero, &n, &err), PARE_OK);
    assert_int_equal(n, 0);
    pare_tensor *t;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 3, big, &t, &err), PARE_ERR_LIMIT);
    int64_t huge[1] = {1LL << 62};
    assert_int_equal(pare_tensor_new("x", PARE_DT_DOUBLE, 1, huge, &t, &err), PARE_ERR_LIMIT);
}

static void test_tensor_ownership(void **state)
{
    (void)state;
    pare_error err;
    float buf[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    pare_tensor *w, *c;
    assert_int_equal(pare_tensor_wrap("w", PARE_DT_FLOAT, 2, dims, buf, sizeof buf, &w, &err),
                     PARE_OK);
    assert_false(w->owns_data);
    assert_int_equal(pare_tensor_wrap("w", PARE_DT_FLOAT, 2, dims, buf, 8, &c, &err),
                     PARE_ERR_INVALID);
    assert_int_equal(pare_tensor_clone(w, &c, &err), PARE_OK);
    assert_true(c->owns_data);
    assert_ptr_not_equal(c->data, buf);
    assert_memory_equal(c->data, buf, sizeof buf);
    assert_int_equal(pare_tensor_own(w, &err), PARE_OK);
    assert_true(w->owns_data);
    buf[0] = 100;
    assert_true(((float *)w->data)[0] == 1.0f);
    assert_int_equal(pare_tensor_numel(w), 6);
    char s[64];
    assert_string_equal(pare_dims_str(2, dims, s, sizeof s), "2x3");
    assert_string_equal(pare_dims_str(0, NULL, s, sizeof s), "scalar");
    pare_tensor_free(w);
    pare_tensor_free(c);
    pare_tensor_free(NULL);
    /* int4: two per byte, rounded up */
    int64_t d5[1] = {5};
    pare_tensor *q;
    assert_int_equal(pare_tensor_new(NULL, PARE_DT_INT4, 1, d5, &q, &err), PARE_OK);
    assert_int_equal(q->nbytes, 3);
    pare_tensor_free(q);
}

static void test_string_tensors(void **state)
{
    (void)state;
    pare_error err;
    int64_t dims[1] = {2};
    pare_tensor *t, *c;
    assert_int_equal(pare_tensor_new("s", PARE_DT_STRING, 1, dims, &t, &err), PARE_OK);
    pare_string *s = t->data;
    s[0].data = strdup("hello");
    s[0].len = 5;
    assert_int_equal(pare_tensor_clone(t, &c, &err), PARE_OK);
    pare_string *cs = c->data;
    assert_int_equal(cs[0].len, 5);
    assert_memory_equal(cs[0].data, "hello", 5);
    assert_ptr_not_equal(cs[0].data, s[0].data);
    pare_tensor_free(t);
    pare_tensor_free(c);
    pare_tensor **arr = calloc(2, sizeof *arr);
    pare_tensor_new(NULL, PARE_DT_FLOAT, 1, dims, &arr[0], &err);
    pare_tensors_free(arr, 2); /* one entry NULL */
    pare_tensors_free(NULL, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_context),
        cmocka_unit_test(test_numel_overflow),
        cmocka_unit_test(test_tensor_ownership),
        cmocka_unit_test(test_string_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
