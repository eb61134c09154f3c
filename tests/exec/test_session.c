/* The session: plan-time errors, input checking with the signature, arena
 * reuse and re-planning on new shapes, observers, outputs owned by the
 * caller, and subgraphs (If/Loop/Scan) against onnxruntime's outputs. */
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
#include "pare/model.h"

static pare_model *load(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, rel);
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static pare_tensor *input(int64_t n, float fill)
{
    int64_t dims[4] = {n, 1, 8, 8};
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new("input", PARE_DT_FLOAT, 4, dims, &t, &err), PARE_OK);
    float *x = t->data;
    for (int64_t i = 0; i < n * 64; i++)
        x[i] = fill * (float)(i % 17);
    return t;
}

static void test_run_and_arena(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s;
    pare_error err;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 2;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_int_equal(pare_session_input_count(s), 1);
    assert_string_equal(pare_session_input(s, 0)->name, "input");
    assert_int_equal(pare_session_arena_bytes(s), 0);
    pare_tensor *in = input(4, 0.1f);
    pare_tensor **o1, **o2;
    size_t n1, n2;
    assert_int_equal(pare_session_run(s, &in, 1, &o1, &n1, &err), PARE_OK);
    assert_int_equal(n1, 1);
    assert_string_equal(o1[0]->name, "logits");
    assert_int_equal(o1[0]->dims[0], 4);
    assert_int_equal(o1[0]->dims[1], 10);
    size_t arena = pare_session_arena_bytes(s);
    assert_true(arena > 0);
    /* same shapes: the arena plan is reused and results are identical */
    assert_int_equal(pare_session_run(s, &in, 1, &o2, &n2, &err), PARE_OK);
    assert_int_equal(pare_session_arena_bytes(s), arena);
    assert_memory_equal(o1[0]->data, o2[0]->data, o1[0]->nbytes);
    pare_tensors_free(o2, n2);
    /* new batch: planned again, bigger arena, per-sample results unchanged */
    pare_tensor *in8 = input(8, 0.1f);
    memcpy(in8->data, in->data, in->nbytes);
    assert_int_equal(pare_session_run(s, &in8, 1, &o2, &n2, &err), PARE_OK);
    pare_tensors_free(o2, n2);
    assert_int_equal(pare_session_run(s, &in8, 1, &o2, &n2, &err), PARE_OK);
    assert_true(pare_session_arena_bytes(s) > arena);
    for (int i = 0; i < 40; i++)
        assert_true(fabsf(((float *)o2[0]->data)[i] - ((float *)o1[0]->data)[i]) < 1e-5f);
    pare_tensors_free(o1, n1);
    pare_tensors_free(o2, n2);
    pare_tensor_free(in);
    pare_tensor_free(in8);
    pare_session_free(s);
    pare_model_free(m);
}

static void test_input_errors_list_signature(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s;
    pare_error err;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_OK);
    pare_tensor **o;
    size_t n;
    /* wrong name */
    pare_tensor *in = input(1, 1);
    pare_tensor_set_name(in, "image", &err);
    assert_int_equal(pare_session_run(s, &in, 1, &o, &n, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "'input' float32 [N,1,8,8]"));
    /* wrong dims */
    pare_tensor_free(in);
    int64_t bad[4] = {1, 1, 9, 8};
    assert_int_equal(pare_tensor_new("input", PARE_DT_FLOAT, 4, bad, &in, &err), PARE_OK);
    assert_int_equal(pare_session_run(s, &in, 1, &o, &n, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "dim 2 is 9"));
    pare_tensor_free(in);
    /* wrong dtype */
    int64_t good[4] = {1, 1, 8, 8};
    assert_int_equal(pare_tensor_new("input", PARE_DT_DOUBLE, 4, good, &in, &err), PARE_OK);
    assert_int_equal(pare_session_run(s, &in, 1, &o, &n, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "float64"));
    pare_tensor_free(in);
    /* missing */
    assert_int_equal(pare_session_run(s, NULL, 0, &o, &n, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "missing"));
    pare_session_free(s);
    pare_model_free(m);
}

typedef struct seen {
    size_t calls;
    char last[128];
} seen;

static int observe(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    seen *s = ctx;
    (void)output;
    assert_non_null(t->data);
    s->calls++;
    snprintf(s->last, sizeof s->last, "%s", node->op_type);
    return 0;
}

static int stop_at_first(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    (void)ctx;
    (void)node;
    (void)output;
    (void)t;
    return 1;
}

static void test_observer(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_session *s;
    pare_error err;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_OK);
    seen sn = {0, ""};
    pare_session_set_observer(s, observe, &sn);
    pare_tensor *in = input(2, 0.5f);
    pare_tensor **o;
    size_t n;
    assert_int_equal(pare_session_run(s, &in, 1, &o, &n, &err), PARE_OK);
    assert_int_equal(sn.calls, pare_model_graph(m)->n_nodes);
    assert_string_equal(sn.last, "Gemm");
    pare_tensors_free(o, n);
    pare_session_set_observer(s, stop_at_first, NULL);
    assert_int_equal(pare_session_run(s, &in, 1, &o, &n, &err), PARE_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "observer"));
    pare_tensor_free(in);
    pare_session_free(s);
    pare_model_free(m);
}

static void test_unsupported_op_fails_at_plan(void **state)
{
    (void)state;
    /* lossless.onnx calls a model-local function (domain pare.fn) and a custom op */
    pare_model *m = load("lossless.onnx");
    pare_session *s;
    pare_error err;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "no kernel for"));
    assert_non_null(strstr(err.msg, "domain 'pare."));
    assert_non_null(strstr(err.msg, "opset"));
    pare_model_free(m);
}

/* reference outputs made by onnxruntime when testdata was generated */
static void check_against(const char *model, const char *data, const char *ref, double tol)
{
    pare_model *m = load(model);
    pare_session *s;
    pare_error err;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_OK);
    char path[512];
    pare_npz *zi, *zr;
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, data);
    assert_int_equal(pare_npz_open(path, &zi, &err), PARE_OK);
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, ref);
    assert_int_equal(pare_npz_open(path, &zr, &err), PARE_OK);
    size_t ni = pare_session_input_count(s);
    pare_tensor **ins = calloc(ni, sizeof *ins);
    for (size_t i = 0; i < ni; i++) {
        const char *name = pare_session_input(s, i)->name;
        int64_t k = pare_npz_find(zi, name);
        if (k < 0)
            fail_msg("%s has no array '%s'", data, name);
        assert_int_equal(pare_npz_read(zi, (size_t)k, &ins[i], &err), PARE_OK);
        pare_tensor_set_name(ins[i], name, &err);
    }
    pare_tensor **o;
    size_t n;
    if (pare_session_run(s, ins, ni, &o, &n, &err))
        fail_msg("%s: %s", model, err.msg);
    for (size_t i = 0; i < n; i++) {
        int64_t k = pare_npz_find(zr, o[i]->name);
        if (k < 0)
            continue;
        pare_tensor *r;
        assert_int_equal(pare_npz_read(zr, (size_t)k, &r, &err), PARE_OK);
        assert_int_equal(r->nbytes, o[i]->nbytes);
        uint64_t cnt = pare_tensor_numel(r);
        for (uint64_t e = 0; e < cnt; e++) {
            double a = pare_dtype_get_f64(o[i]->dtype, o[i]->data, e);
            double b = pare_dtype_get_f64(r->dtype, r->data, e);
            if (fabs(a - b) > tol * (1 + fabs(b)))
                fail_msg("%s: output '%s' element %llu: %g vs onnxruntime %g", model, o[i]->name,
                         (unsigned long long)e, a, b);
        }
        pare_tensor_free(r);
    }
    pare_tensors_free(o, n);
    pare_tensors_free(ins, ni);
    pare_npz_close(zi);
    pare_npz_close(zr);
    pare_session_free(s);
    pare_model_free(m);
}

static void test_matches_onnxruntime(void **state)
{
    (void)state;
    check_against("control_flow.onnx", "control_flow_data.npz", "control_flow_ref.npz", 1e-5);
    check_against("control_flow.onnx", "control_flow_data_else.npz", "control_flow_ref_else.npz",
                  1e-5);
    check_against("transformer_block.onnx", "transformer_data.npz", "transformer_block_ref.npz",
                  1e-4);
    check_against("transformer_tiny2.onnx", "transformer_data.npz", "transformer_tiny2_ref.npz",
                  1e-4);
    check_against("mlp_external/model.onnx", "mlp_external_data.npz", "mlp_external_ref.npz",
                  1e-5);
    check_against("cnn_digits.onnx", "digits_val.npz", "cnn_digits_val_ref.npz", 1e-4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_and_arena),
        cmocka_unit_test(test_input_errors_list_signature),
        cmocka_unit_test(test_observer),
        cmocka_unit_test(test_unsupported_op_fails_at_plan),
        cmocka_unit_test(test_matches_onnxruntime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
