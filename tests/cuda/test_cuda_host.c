/* Host-side tests of the CUDA backend (no GPU needed): availability and its
 * reason, the error strings of failed CUDA/cuBLAS/cuDNN calls, open's
 * errors, and placement with the real cuda `supports` (a copy of the cuda
 * record whose memory functions are host ones): which nodes go to cuda,
 * which fall back and why, where the copies are. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "pare/model.h"
#include "cuda/cuda_internal.h"

/* ---- models built in the test ---- */

static size_t varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    for (;;) {
        unsigned char b = (unsigned char)(v & 0x7f);
        v >>= 7;
        p[n++] = (unsigned char)(b | (v ? 0x80 : 0));
        if (!v)
            return n;
    }
}

/* ModelProto{ir_version 8, graph{name "g"}, opset_import{"" opset}} */
static pare_model *new_model(int64_t opset)
{
    unsigned char b[64], imp[32];
    size_t n = 0, k = 0;
    imp[k++] = 0x0a;
    imp[k++] = 0;
    imp[k++] = 0x10;
    k += varint(imp + k, (uint64_t)opset);
    b[n++] = 0x08;
    b[n++] = 8;
    b[n++] = 0x3a;
    b[n++] = 3;
    b[n++] = 0x12;
    b[n++] = 1;
    b[n++] = 'g';
    b[n++] = 0x42;
    n += varint(b + n, k);
    memcpy(b + n, imp, k);
    n += k;
    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load_buffer(b, n, NULL, NULL, &m, &err), PARE_OK);
    return m;
}

static pare_value *add_input(pare_graph *g, const char *name, int dtype, int rank,
                             const int64_t *dims)
{
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, name, NULL, dtype, &v, &err), PARE_OK);
    assert_int_equal(pare_value_set_dims(v, dtype, rank, dims, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, v, &err), PARE_OK);
    return v;
}

static pare_node *last_node;

static pare_value *add_node(pare_graph *g, const char *name, const char *op,
                            pare_value *const *ins, size_t n_ins, const char *out)
{
    pare_value *o;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, out, NULL, 0, &o, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, name, "", op, ins, n_ins, &o, 1, NULL, &last_node,
                                         &err),
                     PARE_OK);
    return o;
}

static pare_value *add_i64(pare_graph *g, const char *name, int n, const int64_t *vals)
{
    int64_t d[1] = {n};
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_INT64, 1, d, &t, &err), PARE_OK);
    memcpy(t->data, vals, (size_t)n * sizeof *vals);
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

static bool has_row(const char *text, const char *name, const char *op, const char *be,
                    const char *rest)
{
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024], n[300], o[64], b[32];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        if (sscanf(line, "%299s %63s %31s", n, o, b) == 3 && strcmp(n, name) == 0 &&
            strcmp(o, op) == 0 && strcmp(b, be) == 0 && (!rest || strstr(line, rest)))
            return true;
        l = e ? e + 1 : NULL;
    }
    return false;
}

/* has_row, or fail showing the plan */
#define EXPECT_ROW(text, ...)                                                      \
    do {                                                                           \
        if (!has_row(text, __VA_ARGS__))                                           \
            fail_msg("no row (%s) in the plan:\n%s", #__VA_ARGS__, text);          \
    } while (0)

/* ---- the cuda record with host memory ---- */

static int host_allocs, host_frees;

static pare_status host_alloc(const pare_backend *b, void *sctx, size_t bytes, void **ptr,
                              pare_error *err)
{
    (void)b;
    (void)sctx;
    *ptr = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!*ptr)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    host_allocs++;
    return PARE_OK;
}

static void host_free(const pare_backend *b, void *sctx, void *ptr)
{
    (void)b;
    (void)sctx;
    host_frees++;
    free(ptr);
}

static pare_status host_copy(const pare_backend *b, void *sctx, void *dst, const void *src,
                             size_t bytes, pare_error *err)
{
    (void)b;
    (void)sctx;
    (void)err;
    memcpy(dst, src, bytes);
    return PARE_OK;
}

static pare_status host_sync(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    (void)sctx;
    (void)err;
    return PARE_OK;
}

static pare_backend host_cuda;

static int setup_host_cuda(void **state)
{
    (void)state;
    host_cuda = *pare_backend_cuda();
    host_cuda.available = NULL;
    host_cuda.open = NULL;
    host_cuda.close = NULL;
    host_cuda.alloc = host_alloc;
    host_cuda.free = host_free;
    host_cuda.to_device = host_copy;
    host_cuda.to_host = host_copy;
    host_cuda.sync = host_sync;
    host_cuda.run_begin = NULL;
    host_cuda.run_end = NULL;
    host_cuda.stats = NULL;
    host_cuda.graph_begin = NULL;
    host_cuda.graph_end = NULL;
    assert_string_equal(host_cuda.name, "cuda");
    pare_error err;
    assert_int_equal(pare_backend_register(&host_cuda, &err), PARE_OK);
    host_allocs = host_frees = 0;
    return 0;
}

static int teardown_host_cuda(void **state)
{
    (void)state;
    pare_backend_unregister("cuda");
    assert_int_equal(host_allocs, host_frees);
    return 0;
}

static char *plan_of(pare_model *m)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = "cuda";
    pare_session *s;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("%s", err.msg);
    char *text = pare_session_plan_text(s);
    assert_non_null(text);
    pare_session_free(s);
    return text;
}

/* ---- tests ---- */

/* No GPU here: the backend says so with the runtime's reason, "cuda"
 * fails with it and "auto" takes the CPU. (On a machine with a GPU the
 * backend is available and the rest is not checked.) */
static void test_availability(void **state)
{
    (void)state;
    const pare_backend *b = pare_backend_cuda();
    assert_string_equal(b->name, "cuda");
    assert_false(b->host_memory);
    char why[256] = "";
    if (b->available(b, 0, why, sizeof why)) {
        /* a GPU: an index past the last device is refused */
        assert_false(b->available(b, 4096, why, sizeof why));
        assert_non_null(strstr(why, "CUDA device 4096 asked"));
        return;
    }
    assert_true(strstr(why, "no usable CUDA device (cudaGetDeviceCount: ") == why ||
                strcmp(why, "no CUDA device found") == 0);
    const pare_backend *got;
    pare_error err;
    assert_int_equal(pare_backend_get("cuda", 0, &got, &err), PARE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "device 'cuda' is not usable: "));
    assert_non_null(strstr(err.msg, why));
    assert_int_equal(pare_backend_get("auto", 0, &got, &err), PARE_OK);
    assert_string_equal(got->name, "cpu");
}

static pare_status failing_call(pare_error *err)
{
    PCU_RT(cudaErrorInvalidValue, err);
    return PARE_OK;
}

/* The call, the file (from lib/ on) and line, and the library's string. */
static void test_error_strings(void **state)
{
    (void)state;
    pare_error err;
    assert_int_equal(pcu_fail_rt((int)cudaErrorMemoryAllocation, "cudaMalloc(&p, bytes)",
                                 "../lib/cuda/backend.c", 88, &err),
                     PARE_ERR_NOMEM);
    char want[512];
    snprintf(want, sizeof want, "cudaMalloc(&p, bytes) failed at lib/cuda/backend.c:88: %s",
             cudaGetErrorString(cudaErrorMemoryAllocation));
    assert_string_equal(err.msg, want);
    assert_int_equal(pcu_fail_rt((int)cudaErrorLaunchFailure, "k<<<>>>", "lib/cuda/ew.cu", 7,
                                 &err),
                     PARE_ERR_RUNTIME);
    assert_int_equal(pcu_fail_blas((int)CUBLAS_STATUS_EXECUTION_FAILED, "cublasGemmEx(...)",
                                   "/src/lib/cuda/core.c", 12, &err),
                     PARE_ERR_RUNTIME);
    snprintf(want, sizeof want, "cublasGemmEx(...) failed at lib/cuda/core.c:12: %s",
             cublasGetStatusString(CUBLAS_STATUS_EXECUTION_FAILED));
    assert_string_equal(err.msg, want);
    assert_int_equal(pcu_fail_blas((int)CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate(&h)", "x.c", 1,
                                   &err),
                     PARE_ERR_NOMEM);
    assert_int_equal(pcu_fail_dnn((int)CUDNN_STATUS_BAD_PARAM, "cudnnSetTensorNdDescriptor(d)",
                                  "lib/cuda/dnn.c", 40, &err),
                     PARE_ERR_RUNTIME);
    snprintf(want, sizeof want, "cudnnSetTensorNdDescriptor(d) failed at lib/cuda/dnn.c:40: %s",
             cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM));
    assert_string_equal(err.msg, want);
    /* the macro names the call as written and this file */
    assert_int_equal(failing_call(&err), PARE_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "cudaErrorInvalidValue failed at "));
    assert_non_null(strstr(err.msg, "test_cuda_host.c:"));
    assert_non_null(strstr(err.msg, cudaGetErrorString(cudaErrorInvalidValue)));
}

/* open without a GPU: the failing call is named, no context is left; the
 * record has every hook the session uses. */
static void test_open_errors(void **state)
{
    (void)state;
    const pare_backend *b = pare_backend_cuda();
    assert_non_null(b->open);
    assert_non_null(b->close);
    assert_non_null(b->run_begin);
    assert_non_null(b->run_end);
    assert_non_null(b->stats);
    assert_non_null(b->graph_begin);
    assert_non_null(b->graph_end);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    void *ctx = (void *)1;
    pare_error err;
    char why[256];
    if (b->available(b, 0, why, sizeof why))
        return;
    assert_int_not_equal(b->open(b, &so, &ctx, &err), PARE_OK);
    assert_null(ctx);
    assert_non_null(strstr(err.msg, "cuda device 0: "));
    assert_non_null(strstr(err.msg, " failed at lib/cuda/backend.c:"));
}

/* The transformer block: every node on cuda, the input goes over once and
 * the output comes back once. */
static void test_plan_transformer(void **state)
{
    (void)state;
    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load(PARE_TESTDATA "/transformer_block.onnx", NULL, &m, &err),
                     PARE_OK);
    char *text = plan_of(m);
    pare_graph *g = pare_model_graph(m);
    size_t rows = 0, on_cuda = 0, back = 0;
    for (const char *l = strchr(text, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        char n[300], o[64], be[32], dir[64];
        if (sscanf(l + 1, "%299s %63s %31s %63s", n, o, be, dir) != 4)
            continue;
        if (strcmp(o, "(copy)") == 0) {
            /* only graph inputs and weights go over, only outputs come back */
            const pare_value *v = pare_graph_find_value(g, n + strlen("copy:"));
            assert_non_null(v);
            if (strcmp(be, "cuda") == 0) {
                assert_true(v->is_input || v->init);
            } else {
                assert_true(v->is_output);
                back++;
            }
            continue;
        }
        rows++;
        if (strcmp(be, "cuda") == 0)
            on_cuda++;
        else
            fail_msg("node off cuda: %s", l + 1);
    }
    assert_true(rows >= 10);
    assert_int_equal(on_cuda, rows);
    assert_int_equal(back, g->n_outputs);
    assert_non_null(strstr(text, "cpu->cuda"));
    assert_non_null(strstr(text, "cuda->cpu"));
    assert_non_null(strstr(text, "MatMul/1(float32,float32)"));
    assert_non_null(strstr(text, "LayerNormalization/17(float32,float32,float32)"));
    free(text);
    pare_model_free(m);
}

/* The conditions of cuda's supports, seen in the plan. */
static void test_plan_rules(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    int64_t dx[3] = {4, 8, 16}, dt[1] = {2}, dh[2] = {32, 64}, ds[1] = {100};
    pare_value *x = add_input(g, "x", PARE_DT_FLOAT, 3, dx);
    pare_value *t = add_input(g, "t", PARE_DT_FLOAT, 1, dt);
    pare_value *h = add_input(g, "h", PARE_DT_FLOAT16, 2, dh);
    pare_value *sv = add_input(g, "s", PARE_DT_STRING, 1, ds);
    pare_value *big = add_input(g, "big", PARE_DT_INT64, 1, ds);
    /* shape arithmetic: Shape -> Gather -> Concat -> Reshape(x) */
    pare_value *shape = add_node(g, "shape", "Shape", &x, 1, "shape");
    pare_value *i0 = add_i64(g, "i0", 1, (int64_t[]){0});
    pare_value *n0 = add_node(g, "gather", "Gather", (pare_value *[]){shape, i0}, 2, "n0");
    pare_value *m1 = add_i64(g, "m1", 1, (int64_t[]){-1});
    pare_value *ns = add_node(g, "concat", "Concat", (pare_value *[]){n0, m1}, 2, "ns");
    assert_int_equal(pare_node_set_attr_int(last_node, "axis", 0, &err), PARE_OK);
    pare_value *r = add_node(g, "reshape", "Reshape", (pare_value *[]){x, ns}, 2, "r");
    pare_value *e = add_node(g, "exp", "Exp", &r, 1, "e");
    /* tiny tensors, a Cast to float64, fp16 MatMul, strings, a big int64 Add */
    pare_value *tt = add_node(g, "tiny", "Add", (pare_value *[]){t, t}, 2, "tt");
    pare_value *c64 = add_node(g, "cast64", "Cast", &e, 1, "c64");
    assert_int_equal(pare_node_set_attr_int(last_node, "to", PARE_DT_DOUBLE, &err), PARE_OK);
    pare_value *hT = add_node(g, "tr", "Transpose", &h, 1, "hT");
    pare_value *hm = add_node(g, "mm16", "MatMul", (pare_value *[]){h, hT}, 2, "hm");
    pare_value *so = add_node(g, "strid", "Identity", &sv, 1, "so");
    pare_value *bi = add_node(g, "bigadd", "Add", (pare_value *[]){big, big}, 2, "bi");
    pare_value *tk = add_node(g, "topk_less", "Hardmax", &e, 1, "hx");
    pare_value *outs[] = {tt, c64, hm, so, bi, tk};
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++)
        assert_int_equal(pare_graph_add_output(g, outs[i], &err), PARE_OK);

    char *text = plan_of(m);
    EXPECT_ROW(text, "shape", "Shape", "cpu", "fallback from cuda: no kernel for the op");
    EXPECT_ROW(text, "gather", "Gather", "cpu",
                        "fallback from cuda: integer shape arithmetic stays on the cpu");
    EXPECT_ROW(text, "concat", "Concat", "cpu", "fallback from cuda: ");
    EXPECT_ROW(text, "reshape", "Reshape", "cuda", "Reshape/5(float32,int64)");
    EXPECT_ROW(text, "exp", "Exp", "cuda", NULL);
    EXPECT_ROW(text, "tiny", "Add", "cpu", "fallback from cuda: tiny tensors");
    EXPECT_ROW(text, "cast64", "Cast", "cpu",
                        "fallback from cuda: no Cast to float64 on cuda");
    EXPECT_ROW(text, "tr", "Transpose", "cuda", NULL);
    EXPECT_ROW(text, "mm16", "MatMul", "cuda", "MatMul/1(float16,float16)");
    EXPECT_ROW(text, "strid", "Identity", "cpu",
                        "fallback from cuda: strings stay on the host");
    EXPECT_ROW(text, "bigadd", "Add", "cpu",
                        "fallback from cuda: integer shape arithmetic stays on the cpu");
    EXPECT_ROW(text, "topk_less", "Hardmax", "cpu",
                        "fallback from cuda: no kernel for the op");
    /* copies at the borders only: x over once (Reshape reads it), the shape
     * vector over, e back for the Cast and Hardmax on the cpu, h over once */
    EXPECT_ROW(text, "copy:x", "(copy)", "cuda", "cpu->cuda");
    EXPECT_ROW(text, "copy:ns", "(copy)", "cuda", "cpu->cuda");
    EXPECT_ROW(text, "copy:e", "(copy)", "cpu", "cuda->cpu");
    EXPECT_ROW(text, "copy:h", "(copy)", "cuda", "cpu->cuda");
    assert_false(has_row(text, "copy:t", "(copy)", "cuda", NULL));
    assert_false(has_row(text, "copy:s", "(copy)", "cuda", NULL));
    assert_false(has_row(text, "copy:shape", "(copy)", "cuda", NULL));
    const char *first = strstr(text, "copy:e ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "copy:e ")); /* Cast and Hardmax share one copy */
    free(text);
    pare_model_free(m);
}

/* supports called directly: the registry's reasons come through, every
 * record's types spec parses (the registry builds), and the dtypes a
 * record declares are the ones it takes. */
static void test_supports_direct(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    pare_graph *g = pare_model_graph(m);
    int64_t d[2] = {64, 64};
    pare_value *a = add_input(g, "a", PARE_DT_FLOAT, 2, d);
    pare_value *y = add_node(g, "ln", "LayerNormalization", (pare_value *[]){a, a, a}, 3, "y");
    (void)y;
    char why[256] = "";
    int f32[3] = {PARE_DT_FLOAT, PARE_DT_FLOAT, PARE_DT_FLOAT};
    int bf16[3] = {PARE_DT_BFLOAT16, PARE_DT_BFLOAT16, PARE_DT_BFLOAT16};
    int f64[3] = {PARE_DT_DOUBLE, PARE_DT_DOUBLE, PARE_DT_DOUBLE};
    const pare_kernel *k = pcu_supports(last_node, 17, f32, 3, why, sizeof why);
    assert_non_null(k);
    assert_string_equal(k->op_type, "LayerNormalization");
    assert_non_null(pcu_supports(last_node, 17, bf16, 3, why, sizeof why));
    assert_null(pcu_supports(last_node, 17, f64, 3, why, sizeof why));
    assert_non_null(strstr(why, "no kernel for input dtypes (float64"));
    /* opset before the op existed */
    assert_null(pcu_supports(last_node, 16, f32, 3, why, sizeof why));
    if (!strstr(why, "kernels serve opset 17 on"))
        fail_msg("reason: %s", why);
    /* Cast: only the dtypes pcu_cast converts */
    assert_true(pcu_cast_supported(PARE_DT_BFLOAT16));
    assert_true(pcu_cast_supported(PARE_DT_UINT8));
    assert_false(pcu_cast_supported(PARE_DT_DOUBLE));
    assert_false(pcu_cast_supported(PARE_DT_FLOAT8E4M3FN));
    /* Dropout: on cuda only with training_mode a constant false */
    pare_error err;
    int64_t one = 1;
    pare_value *tm_in = add_input(g, "tm", PARE_DT_BOOL, 0, &one);
    pare_value *tmv[2];
    for (int i = 0; i < 2; i++) {
        pare_tensor *t;
        assert_int_equal(pare_tensor_new(i ? "tm_true" : "tm_false", PARE_DT_BOOL, 0, NULL, &t,
                                         &err),
                         PARE_OK);
        ((uint8_t *)t->data)[0] = (uint8_t)i;
        assert_int_equal(pare_graph_add_initializer(g, t, &tmv[i], &err), PARE_OK);
    }
    int dd[3] = {PARE_DT_FLOAT, PARE_DT_FLOAT, PARE_DT_BOOL};
    pare_value *ratio = add_input(g, "ratio", PARE_DT_FLOAT, 0, &one);
    pare_value *tms[3] = {tmv[0], tmv[1], tm_in};
    for (int i = 0; i < 3; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "drop%d", i);
        add_node(g, nm, "Dropout", (pare_value *[]){a, ratio, tms[i]}, 3, nm);
        why[0] = 0;
        const pare_kernel *kd = pcu_supports(last_node, 17, dd, 3, why, sizeof why);
        if ((kd != NULL) != (i == 0))
            fail_msg("Dropout with training_mode %s: %s (%s)", i == 0 ? "false" : "true/unknown",
                     kd ? "on cuda" : "declined", why);
        if (i)
            assert_non_null(strstr(why, "Dropout in training mode"));
    }
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_availability),
        cmocka_unit_test(test_error_strings),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_supports_direct),
        cmocka_unit_test_setup_teardown(test_plan_transformer, setup_host_cuda,
                                        teardown_host_cuda),
        cmocka_unit_test_setup_teardown(test_plan_rules, setup_host_cuda, teardown_host_cuda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
