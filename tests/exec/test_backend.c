/* The kernel registry keyed by dtypes, plan-time errors, device selection,
 * and the backend interface with a fake second backend: placement, per-node
 * CPU fallback with its reason, border copies (and only those), uploads of
 * initializers, arenas per backend, observers, and outputs equal to a
 * CPU-only run. */
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
#include "pare/model.h"
#include "exec/backend.h"
#include "pare_config.h"

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
    imp[k++] = 0x0a; /* OperatorSetIdProto.domain = "" */
    imp[k++] = 0;
    imp[k++] = 0x10; /* version */
    k += varint(imp + k, (uint64_t)opset);
    b[n++] = 0x08; /* ir_version */
    b[n++] = 8;
    b[n++] = 0x3a; /* graph */
    b[n++] = 3;
    b[n++] = 0x12; /* name */
    b[n++] = 1;
    b[n++] = 'g';
    b[n++] = 0x42; /* opset_import */
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

/* a node with one output named out (no type: inference gives it) */
static pare_value *add_node(pare_graph *g, const char *name, const char *op,
                            pare_value *const *ins, size_t n_ins, const char *out)
{
    pare_value *o;
    pare_node *n;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, out, NULL, 0, &o, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, name, "", op, ins, n_ins, &o, 1, NULL, &n, &err),
                     PARE_OK);
    return o;
}

static pare_tensor *tensor_f32(const char *name, int64_t r, int64_t c, float base)
{
    int64_t dims[2] = {r, c};
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, 2, dims, &t, &err), PARE_OK);
    float *x = t->data;
    for (int64_t i = 0; i < r * c; i++)
        x[i] = base + 0.37f * (float)i - 1.1f * (float)(i % 3);
    return t;
}

/* ---- the registry ---- */

static pare_status run_a(pare_kctx *k, pare_error *err)
{
    (void)k;
    (void)err;
    return PARE_OK;
}
static pare_status run_b(pare_kctx *k, pare_error *err)
{
    return run_a(k, err);
}
static pare_status run_c(pare_kctx *k, pare_error *err)
{
    return run_a(k, err) + run_a(k, err);
}

static const pare_kernel table[] = {
    {"", "Foo", 1, 0, NULL, run_a, NULL, "float32,float16 =0"},
    {"", "Foo", 1, 0, NULL, run_b, NULL, "int"},
    {"", "Foo", 7, 0, NULL, run_c, NULL, "float32 =0"},
    {"", "Bar", 2, 5, NULL, run_a, NULL, "fp * bool"},
    {"", "Cat", 1, 0, NULL, run_a, NULL, "bool =0..."},
    {"com.x", "Foo", 1, 0, NULL, run_b, NULL, NULL},
    {0},
};

static const pare_kernel *sel(const pare_kreg *r, const char *dom, const char *op, int64_t opset,
                              int a, int b, int c, char *why)
{
    int d[3] = {a, b, c};
    size_t n = c ? 3 : b ? 2 : 1;
    return pare_kreg_select(r, dom, op, opset, d, n, why, 256);
}

static void test_registry_select(void **state)
{
    (void)state;
    const pare_kernel *const tabs[] = {table};
    pare_kreg *r;
    pare_error err;
    char why[256];
    assert_int_equal(pare_kreg_new(tabs, 1, &r, &err), PARE_OK);
    const int F = PARE_DT_FLOAT, H = PARE_DT_FLOAT16, I8 = PARE_DT_INT8, B = PARE_DT_BOOL;
    /* dtype sets, same-dtype links, and the record per dtype at one opset */
    assert_ptr_equal(sel(r, "", "Foo", 3, F, F, 0, why)->run, run_a);
    assert_ptr_equal(sel(r, "", "Foo", 3, H, H, 0, why)->run, run_a);
    assert_ptr_equal(sel(r, "", "Foo", 3, I8, I8, 0, why)->run, run_b);
    assert_null(sel(r, "", "Foo", 3, F, H, 0, why));
    assert_string_equal(why, "no kernel for input dtypes (float32, float16)");
    assert_null(sel(r, "", "Foo", 3, PARE_DT_DOUBLE, 0, 0, why));
    assert_string_equal(why, "no kernel for input dtypes (float64)");
    /* the newest record that accepts the dtypes wins */
    assert_ptr_equal(sel(r, "", "Foo", 9, F, F, 0, why)->run, run_c);
    assert_ptr_equal(sel(r, "", "Foo", 9, H, H, 0, why)->run, run_a);
    /* unknown (0) and omitted (-1) dtypes match anything */
    assert_ptr_equal(sel(r, "", "Foo", 9, 0, F, 0, why)->run, run_c);
    assert_ptr_equal(sel(r, "", "Foo", 9, H, -1, 0, why)->run, run_a);
    /* "ai.onnx" is the default domain; other domains are apart */
    assert_ptr_equal(sel(r, "ai.onnx", "Foo", 3, I8, I8, 0, why)->run, run_b);
    assert_ptr_equal(sel(r, "com.x", "Foo", 1, PARE_DT_STRING, 0, 0, why)->run, run_b);
    /* opset ranges and unknown ops say why */
    assert_non_null(sel(r, "", "Bar", 5, F, I8, B, why));
    assert_null(sel(r, "", "Bar", 5, F, I8, F, why));
    assert_string_equal(why, "no kernel for input dtypes (float32, int8, float32)");
    assert_null(sel(r, "", "Bar", 6, F, I8, B, why));
    assert_string_equal(why, "no kernel for opset 6 (kernels serve opsets 2 to 5)");
    assert_null(sel(r, "", "Foo", 0, F, F, 0, why));
    assert_string_equal(why, "no kernel for opset 0 (kernels serve opset 1 on)");
    assert_null(sel(r, "", "Baz", 1, F, 0, 0, why));
    assert_string_equal(why, "no kernel for the op");
    /* a variadic token covers every further input */
    assert_non_null(sel(r, "", "Cat", 1, B, B, B, why));
    assert_null(sel(r, "", "Cat", 1, B, B, I8, why));
    assert_null(sel(r, "", "Cat", 1, I8, I8, I8, why));
    assert_true(pare_kernel_accepts(&table[4], (const int[]){B, B, B, B}, 4));
    assert_false(pare_kernel_accepts(&table[4], (const int[]){B, B, B, F}, 4));
    pare_kreg_free(r);
}

static void test_registry_bad_specs(void **state)
{
    (void)state;
    static const char *const bad[] = {"floot", "=1", "=0", "float32... int8", "float32,",
                                      "float32,,int8", "=x", "* * * * * * * * * * * * * * * * *"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pare_kernel t[2] = {{"", "Qux", 3, 0, NULL, run_a, NULL, bad[i]}, {0}};
        const pare_kernel *const tabs[] = {t};
        pare_kreg *r = (pare_kreg *)&t; /* must be reset to NULL */
        pare_error err;
        assert_int_equal(pare_kreg_new(tabs, 1, &r, &err), PARE_ERR_INVALID);
        assert_null(r);
        assert_non_null(strstr(err.msg, "Qux"));
        assert_non_null(strstr(err.msg, bad[i]));
        assert_false(pare_kernel_accepts(&t[0], (const int[]){PARE_DT_FLOAT}, 1));
    }
    /* every spec of the CPU tables parses */
    pare_error err;
    if (pare_kreg_check(&err))
        fail_msg("%s", err.msg);
    assert_non_null(pare_kreg_cpu());
}

static void test_cpu_declared_dtypes(void **state)
{
    (void)state;
    const pare_kreg *r = pare_kreg_cpu();
    char why[256];
    const int F = PARE_DT_FLOAT, I8 = PARE_DT_INT8;
    const pare_kernel *gemm = pare_kernel_find("", "Gemm", 13);
    assert_ptr_equal(sel(r, "", "Gemm", 13, F, F, F, why), gemm);
    assert_ptr_equal(sel(r, "", "Gemm", 13, F, F, -1, why), gemm);
    assert_ptr_equal(sel(r, "", "Gemm", 13, PARE_DT_INT64, PARE_DT_INT64, 0, why), gemm);
    assert_null(sel(r, "", "Gemm", 13, I8, I8, I8, why));
    assert_null(sel(r, "", "MatMul", 13, F, PARE_DT_DOUBLE, 0, why));
    assert_non_null(sel(r, "", "MaxPool", 12, I8, 0, 0, why));
    assert_null(sel(r, "", "AveragePool", 12, I8, 0, 0, why));
    assert_non_null(sel(r, "", "Where", 16, PARE_DT_BOOL, PARE_DT_STRING, PARE_DT_STRING, why));
    assert_null(sel(r, "", "Where", 16, PARE_DT_INT8, F, F, why));
    assert_non_null(sel(r, "", "Sum", 13, F, F, F, why));
    assert_null(sel(r, "", "Sum", 13, F, F, PARE_DT_DOUBLE, why));
    assert_null(sel(r, "", "Sqrt", 13, PARE_DT_INT32, 0, 0, why));
    assert_non_null(sel(r, "", "Equal", 19, PARE_DT_STRING, PARE_DT_STRING, 0, why));
    assert_null(sel(r, "", "Greater", 13, PARE_DT_STRING, PARE_DT_STRING, 0, why));
    /* generic kernels take anything */
    assert_non_null(sel(r, "", "Identity", 16, PARE_DT_FLOAT8E4M3FN, 0, 0, why));
    assert_non_null(sel(r, "", "Transpose", 13, PARE_DT_INT4, 0, 0, why));
}

/* ---- plan-time errors ---- */

static void test_int8_gemm_fails_at_plan(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    pare_graph *g = pare_model_graph(m);
    int64_t d[2] = {2, 2};
    pare_value *in[2] = {add_input(g, "a", PARE_DT_INT8, 2, d),
                         add_input(g, "b", PARE_DT_INT8, 2, d)};
    pare_value *y = add_node(g, "g", "Gemm", in, 2, "y");
    pare_error err;
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    pare_session *s = (pare_session *)m;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_null(s);
    assert_string_equal(err.msg, "node 'g' (Gemm, domain 'ai.onnx', opset 17): no kernel for "
                                 "input dtypes (int8, int8) on cpu");
    pare_model_free(m);
}

/* The dtype of an intermediate the file does not type comes from inference. */
static void test_inferred_dtype_fails_at_plan(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t d[1] = {4};
    pare_value *x = add_input(g, "x", PARE_DT_INT32, 1, d);
    pare_value *t = add_node(g, "id", "Identity", &x, 1, "t");
    pare_value *y = add_node(g, "", "Sqrt", &t, 1, "y");
    pare_error err;
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    assert_int_equal(t->dtype, PARE_DT_UNDEFINED);
    pare_session *s;
    assert_int_equal(pare_session_new(m, NULL, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "(Sqrt, domain 'ai.onnx', opset 13): no kernel for input "
                                    "dtypes (int32) on cpu"));
    assert_non_null(strstr(err.msg, "node #"));
    pare_model_free(m);
}

static void test_devices(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(g, "x", PARE_DT_FLOAT, 2, d);
    pare_value *y = add_node(g, "r", "Relu", &x, 1, "y");
    pare_error err;
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    pare_session *s;
    so.device = "cuda";
    bool gpu = false; /* a CUDA build on a machine with a usable GPU */
#if PARE_HAVE_CUDA
    const pare_backend *cb;
    gpu = pare_backend_get("cuda", 0, &cb, &err) == PARE_OK;
    if (!gpu) {
        assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, "device 'cuda' is not usable: "));
    }
#else
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "pare was built without CUDA"));
#endif
    so.device = "tpu";
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "unknown device 'tpu'"));
    so.device = "auto"; /* no usable device backend: the CPU */
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    char *text = pare_session_plan_text(s);
    assert_non_null(strstr(text, "Relu/1(float32)"));
    if (!gpu) {
        assert_non_null(strstr(text, " cpu "));
        assert_null(strstr(text, "copy"));
    }
    free(text);
    pare_tensor *in = tensor_f32("x", 2, 3, -1.0f), **o;
    size_t no;
    assert_int_equal(pare_session_run(s, &in, 1, &o, &no, &err), PARE_OK);
    for (int i = 0; i < 6; i++)
        assert_true(((float *)o[0]->data)[i] == fmaxf(((float *)in->data)[i], 0.0f));
    pare_tensors_free(o, no);
    pare_tensor_free(in);
    pare_session_free(s);
    pare_model_free(m);
}

/* ---- a fake second backend ---- */

#define FAKE_MAX 256
static struct {
    void *p[FAKE_MAX];
    size_t n[FAKE_MAX];
    int allocs, frees, to_dev, to_host, syncs;
    int opens, closes;
    bool tf32;           /* the session options open received */
    int cuda_graph;
    int begins, ends, stats; /* run_begin, run_end and stats hooks called */
    int graph_begins, graph_ends, graph_discards;
    bool in_run;         /* between run_begin and run_end */
    bool capturing;      /* between graph_begin and graph_end */
    bool fail_capture;   /* fake kernels fail while capturing */
    int foreign;   /* inputs of fake kernels not in fake memory */
    int stray;     /* copies whose source or destination is on the wrong side */
    bool usable;
    bool convs;          /* the fake takes Conv and BatchNormalization too */
    bool decline_bn;     /* ... but not BatchNormalization */
    int fuses;           /* fuse hook calls */
    bool qdq;            /* the fake takes Q/DQ nodes and fuses QDQ patterns */
    int qdq_fuses;       /* fuse_qdq hook calls that fused */
} fk;

static bool in_fake(const void *q)
{
    for (int i = 0; i < FAKE_MAX; i++)
        if (fk.p[i] && (const char *)q >= (const char *)fk.p[i] &&
            (const char *)q < (const char *)fk.p[i] + fk.n[i])
            return true;
    return false;
}

static pare_status fake_alloc(const pare_backend *b, void *sctx, size_t bytes, void **ptr,
                             pare_error *err)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    for (int i = 0; i < FAKE_MAX; i++)
        if (!fk.p[i]) {
            fk.p[i] = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
            if (!fk.p[i])
                return pare_error_set(err, PARE_ERR_NOMEM, "fake out of memory");
            fk.n[i] = bytes;
            fk.allocs++;
            *ptr = fk.p[i];
            return PARE_OK;
        }
    return pare_error_set(err, PARE_ERR_LIMIT, "fake: too many buffers");
}

static void fake_free(const pare_backend *b, void *sctx, void *ptr)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    for (int i = 0; i < FAKE_MAX; i++)
        if (fk.p[i] == ptr) {
            free(ptr);
            fk.p[i] = NULL;
            fk.frees++;
            return;
        }
    fail_msg("fake_free of a pointer it did not hand out");
}

static pare_status fake_to_device(const pare_backend *b, void *sctx, void *dst, const void *src,
                                  size_t bytes, pare_error *err)
{
    (void)b;
    (void)err;
    if (!in_fake(dst) || in_fake(src) || sctx != &fk)
        fk.stray++;
    memcpy(dst, src, bytes);
    fk.to_dev++;
    return PARE_OK;
}

static pare_status fake_to_host(const pare_backend *b, void *sctx, void *dst, const void *src,
                                size_t bytes, pare_error *err)
{
    (void)b;
    (void)err;
    if (in_fake(dst) || !in_fake(src) || sctx != &fk)
        fk.stray++;
    memcpy(dst, src, bytes);
    fk.to_host++;
    return PARE_OK;
}

static pare_status fake_sync(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    (void)err;
    if (sctx != &fk)
        fk.stray++;
    fk.syncs++;
    return PARE_OK;
}

static bool fake_available(const pare_backend *b, int gpu, char *why, size_t why_size)
{
    (void)b;
    (void)gpu;
    if (!fk.usable)
        snprintf(why, why_size, "no fake device");
    return fk.usable;
}

/* One session context per session: the state itself, counted. */
static pare_status fake_open(const pare_backend *b, const pare_session_opts *opts, void **sctx,
                             pare_error *err)
{
    (void)b;
    (void)err;
    if (opts->gpu != 0)
        return pare_error_set(err, PARE_ERR_ARG, "fake has one device");
    fk.tf32 = opts->tf32;
    fk.cuda_graph = opts->cuda_graph;
    fk.opens++;
    *sctx = &fk;
    return PARE_OK;
}

static void fake_close(const pare_backend *b, void *sctx)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    fk.closes++;
}

/* Fake kernels: the CPU's, run on fake memory after checking that every
 * input is there and that they got the session's context. */
static pare_kernel fake_relu, fake_add, fake_conv, fake_bn, fake_q, fake_dq;

static pare_status fake_run(pare_kctx *k, pare_error *err)
{
    for (size_t i = 0; i < k->n_in; i++)
        if (k->in[i] && !in_fake(k->in[i]->data))
            fk.foreign++;
    if (k->dev != &fk)
        fk.stray++;
    if (fk.capturing && fk.fail_capture)
        return pare_error_set(err, PARE_ERR_RUNTIME, "not allowed while capturing");
    return pare_kernel_find("", k->node->op_type, k->opset)->run(k, err);
}

static const pare_kernel *fake_supports(const pare_backend *b, const pare_node *n, int64_t opset,
                                        const int *dtypes, size_t n_in, char *why,
                                        size_t why_size)
{
    (void)b;
    (void)opset;
    if (fk.qdq && (!strcmp(n->op_type, "QuantizeLinear") || !strcmp(n->op_type, "DequantizeLinear")))
        return n->op_type[0] == 'Q' ? &fake_q : &fake_dq;
    const pare_kernel *k = strcmp(n->op_type, "Relu") == 0  ? &fake_relu
                           : strcmp(n->op_type, "Add") == 0 ? &fake_add
                           : fk.convs && strcmp(n->op_type, "Conv") == 0 ? &fake_conv
                           : fk.convs && !fk.decline_bn && strcmp(n->op_type, "BatchNormalization") == 0
                               ? &fake_bn
                               : NULL;
    if (!k) {
        snprintf(why, why_size, "no kernel for %s", n->op_type);
        return NULL;
    }
    for (size_t i = 0; i < n_in; i++)
        if (dtypes[i] != PARE_DT_FLOAT) {
            snprintf(why, why_size, "float32 only");
            return NULL;
        }
    return k;
}

static void fake_run_begin(const pare_backend *b, void *sctx)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    fk.in_run = true; /* a failed run has no run_end: a new begin just starts over */
    fk.begins++;
}

static pare_status fake_run_end(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    (void)err;
    if (sctx != &fk || !fk.in_run || fk.capturing)
        fk.stray++; /* a capture ends before run_end */
    fk.in_run = false;
    fk.ends++;
    return PARE_OK;
}

/* device figures of the last run: distinctive values the session passes on */
static void fake_stats(const pare_backend *b, void *sctx, pare_run_stats *out)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    fk.stats++;
    out->h2d_ms = 1.5;
    out->d2h_ms = 2.5;
    out->compute_ms = 3.5;
    out->device_mem_peak = 4096;
}

static pare_status fake_graph_begin(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    (void)err;
    if (sctx != &fk || fk.capturing || !fk.in_run)
        fk.stray++; /* after run_begin, never nested */
    fk.capturing = true;
    fk.graph_begins++;
    return PARE_OK;
}

static pare_status fake_graph_end(const pare_backend *b, void *sctx, bool ok, pare_error *err)
{
    (void)b;
    (void)err;
    if (sctx != &fk || !fk.capturing)
        fk.stray++;
    fk.capturing = false;
    if (ok)
        fk.graph_ends++;
    else
        fk.graph_discards++;
    return PARE_OK;
}

/* fusion on the fake: the CPU's Conv kernel prepares its fused form in the
 * state the fake's record (the CPU's init) made */
static pare_status fake_fuse(const pare_backend *b, void *sctx, const pare_kernel *k,
                             const pare_node *n, void *state, const pare_kfuse *f, pare_error *err)
{
    (void)b;
    if (sctx != &fk || k != &fake_conv)
        fk.stray++;
    fk.fuses++;
    return pare_kernel_fuse(pare_kernel_find("", "Conv", 14), n, state, f, err);
}

/* QDQ fusion on the fake: the CPU's fused kernel, run on fake memory */
static pare_kernel fake_qdq;
static const pare_kernel *fake_qdq_inner;

static pare_status fake_run_qdq(pare_kctx *k, pare_error *err)
{
    for (size_t i = 0; i < k->n_in; i++)
        if (k->in[i] && !in_fake(k->in[i]->data))
            fk.foreign++;
    if (k->dev != &fk)
        fk.stray++;
    return fake_qdq_inner->run(k, err);
}

static pare_status fake_fuse_qdq(const pare_backend *b, void *sctx, const pare_kqdq *d,
                                 const pare_kernel **k, void **state, pare_error *err)
{
    (void)b;
    if (sctx != &fk)
        fk.stray++;
    if (!fk.qdq)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "no");
    pare_status st = pare_kernel_qdq(d, &fake_qdq_inner, state, err);
    if (st)
        return st;
    fake_qdq = *fake_qdq_inner;
    fake_qdq.run = fake_run_qdq;
    *k = &fake_qdq;
    fk.qdq_fuses++;
    return PARE_OK;
}

static const pare_backend fake = {
    .name = "fake",
    .host_memory = false,
    .available = fake_available,
    .open = fake_open,
    .close = fake_close,
    .supports = fake_supports,
    .alloc = fake_alloc,
    .free = fake_free,
    .to_device = fake_to_device,
    .to_host = fake_to_host,
    .sync = fake_sync,
    .run_begin = fake_run_begin,
    .run_end = fake_run_end,
    .stats = fake_stats,
    .graph_begin = fake_graph_begin,
    .graph_end = fake_graph_end,
    .fuse = fake_fuse,
    .fuse_qdq = fake_fuse_qdq,
};

static int setup_fake(void **state)
{
    (void)state;
    /* a CUDA build registers "cuda" on the first lookup: take it out so
     * that the fake is the only device backend ("auto" finds it even on a
     * machine with a GPU) */
    const pare_backend *cpu;
    pare_error gerr;
    assert_int_equal(pare_backend_get(NULL, 0, &cpu, &gerr), PARE_OK);
    pare_backend_unregister("cuda");
    memset(&fk, 0, sizeof fk);
    fk.usable = true;
    fake_relu = *pare_kernel_find("", "Relu", 14);
    fake_relu.run = fake_run;
    fake_add = *pare_kernel_find("", "Add", 14);
    fake_add.run = fake_run;
    fake_conv = *pare_kernel_find("", "Conv", 14);
    fake_conv.run = fake_run;
    fake_bn = *pare_kernel_find("", "BatchNormalization", 14);
    fake_bn.run = fake_run;
    fake_q = *pare_kernel_find("", "QuantizeLinear", 13);
    fake_q.run = fake_run;
    fake_dq = *pare_kernel_find("", "DequantizeLinear", 13);
    fake_dq.run = fake_run;
    pare_error err;
    assert_int_equal(pare_backend_register(&fake, &err), PARE_OK);
    return 0;
}

static int teardown_fake(void **state)
{
    (void)state;
    pare_backend_unregister("fake");
    return 0;
}

/* x -> relu -> r1 -> add1(+W) -> a1 -> sigmoid -> s1 -> add2(s1 + r1) -> a2 -> neg -> y
 * outputs y, a1, r1; plus an int64 Add (c + c) the fake declines by dtype */
static pare_model *mixed_model(void)
{
    pare_model *m = new_model(14);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(g, "x", PARE_DT_FLOAT, 2, d);
    pare_value *c = add_input(g, "c", PARE_DT_INT64, 2, d);
    pare_value *w;
    assert_int_equal(pare_graph_add_initializer(g, tensor_f32("W", 2, 3, 0.25f), &w, &err),
                     PARE_OK);
    pare_value *r1 = add_node(g, "relu", "Relu", &x, 1, "r1");
    pare_value *a1 = add_node(g, "add1", "Add", (pare_value *[]){r1, w}, 2, "a1");
    pare_value *s1 = add_node(g, "sigmoid", "Sigmoid", &a1, 1, "s1");
    pare_value *a2 = add_node(g, "add2", "Add", (pare_value *[]){s1, r1}, 2, "a2");
    pare_value *y = add_node(g, "neg", "Neg", &a2, 1, "y");
    pare_value *ci = add_node(g, "addi", "Add", (pare_value *[]){c, c}, 2, "ci");
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    assert_int_equal(pare_graph_add_output(g, a1, &err), PARE_OK);
    assert_int_equal(pare_graph_add_output(g, r1, &err), PARE_OK);
    assert_int_equal(pare_graph_add_output(g, ci, &err), PARE_OK);
    return m;
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

struct seen {
    int calls;
    float r1[6];
};

static int observe_r1(void *ctx, const pare_node *n, size_t o, const pare_tensor *t)
{
    struct seen *s = ctx;
    (void)o;
    s->calls++;
    if (strcmp(n->name, "relu") == 0)
        memcpy(s->r1, t->data, sizeof s->r1);
    return 0;
}

static void test_fake_backend_plan_and_run(void **state)
{
    (void)state;
    pare_model *m = mixed_model();
    pare_error err;
    pare_session *ref, *s;
    assert_int_equal(pare_session_new(m, NULL, &ref, &err), PARE_OK);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = "fake";
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("%s", err.msg);
    /* W was uploaded once, when the session was made */
    assert_int_equal(fk.to_dev, 1);
    assert_int_equal(fk.allocs, 1);
    char *text = pare_session_plan_text(s);
    assert_non_null(text);
    assert_true(has_row(text, "copy:W", "(copy)", "fake", "cpu->fake"));
    assert_true(has_row(text, "copy:x", "(copy)", "fake", "cpu->fake"));
    assert_true(has_row(text, "relu", "Relu", "fake", "Relu/1(float32)"));
    assert_true(has_row(text, "add1", "Add", "fake", "Add/1(float32,float32)"));
    assert_true(has_row(text, "copy:a1", "(copy)", "cpu", "fake->cpu"));
    assert_true(has_row(text, "sigmoid", "Sigmoid", "cpu",
                        "fallback from fake: no kernel for Sigmoid"));
    assert_true(has_row(text, "copy:s1", "(copy)", "fake", "cpu->fake"));
    assert_true(has_row(text, "add2", "Add", "fake", NULL));
    assert_true(has_row(text, "copy:a2", "(copy)", "cpu", "fake->cpu"));
    assert_true(has_row(text, "neg", "Neg", "cpu", "fallback from fake"));
    assert_true(has_row(text, "addi", "Add", "cpu", "fallback from fake: float32 only"));
    assert_true(has_row(text, "copy:r1", "(copy)", "cpu", "graph output to the host"));
    /* r1 is read on the fake only, a1 and y come home once: exactly these copies */
    assert_false(has_row(text, "copy:r1", "(copy)", "fake", NULL));
    assert_false(has_row(text, "copy:y", "(copy)", "cpu", NULL));
    assert_false(has_row(text, "copy:c", "(copy)", "fake", NULL));
    /* copies come right before their first reader */
    assert_true(strstr(text, "copy:s1") > strstr(text, "\nsigmoid"));
    assert_true(strstr(text, "copy:s1") < strstr(text, "\nadd2"));
    assert_true(strstr(text, "copy:r1") > strstr(text, "\naddi"));
    free(text);

    pare_tensor *in[2];
    in[0] = tensor_f32("x", 2, 3, -1.0f);
    int64_t d[2] = {2, 3};
    assert_int_equal(pare_tensor_new("c", PARE_DT_INT64, 2, d, &in[1], &err), PARE_OK);
    for (int i = 0; i < 6; i++)
        ((int64_t *)in[1]->data)[i] = 1000000000000LL * i;
    pare_tensor **o_ref, **o;
    size_t n_ref, n;
    assert_int_equal(pare_session_run(ref, in, 2, &o_ref, &n_ref, &err), PARE_OK);
    struct seen seen = {0};
    pare_session_set_observer(s, observe_r1, &seen);
    for (int round = 0; round < 3; round++) {
        int allocs = fk.allocs, to_dev = fk.to_dev, to_host = fk.to_host;
        if (pare_session_run(s, in, 2, &o, &n, &err))
            fail_msg("%s", err.msg);
        /* per run: x and s1 go over, a1, a2 and r1 come back, and the observer
         * sees the outputs of relu, add1 and add2 through host copies */
        assert_int_equal(fk.to_dev - to_dev, 2);
        assert_int_equal(fk.to_host - to_host, 3 + 3);
        if (round == 0)
            assert_true(fk.allocs > allocs); /* recording run: one buffer each */
        else
            assert_int_equal(fk.allocs, allocs); /* from the arenas */
        assert_int_equal(n, n_ref);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(o[i]->name, o_ref[i]->name);
            assert_int_equal(o[i]->dtype, o_ref[i]->dtype);
            assert_int_equal(o[i]->nbytes, o_ref[i]->nbytes);
            assert_memory_equal(o[i]->data, o_ref[i]->data, o[i]->nbytes);
            assert_false(in_fake(o[i]->data));
        }
        pare_tensors_free(o, n);
    }
    assert_int_equal(fk.foreign, 0);
    assert_int_equal(fk.stray, 0);
    assert_true(fk.syncs >= 3);
    assert_true(pare_session_arena_bytes(s) > 0);
    /* the observer saw the fake's tensors on the host */
    assert_int_equal(seen.calls, 3 * 6);
    for (int i = 0; i < 6; i++)
        assert_true(seen.r1[i] == fmaxf(((float *)in[0]->data)[i], 0.0f));
    pare_tensors_free(o_ref, n_ref);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_session_free(s);
    pare_session_free(ref);
    /* everything the fake handed out came back; one context, closed */
    assert_int_equal(fk.allocs, fk.frees);
    assert_int_equal(fk.opens, 1);
    assert_int_equal(fk.closes, 1);
    pare_model_free(m);
}

static void test_fake_backend_selection(void **state)
{
    (void)state;
    pare_model *m = mixed_model();
    pare_error err;
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    /* auto picks a usable device backend ... */
    so.device = "auto";
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    char *text = pare_session_plan_text(s);
    assert_true(has_row(text, "relu", "Relu", "fake", NULL));
    free(text);
    pare_session_free(s);
    /* ... and falls back to the CPU when none is */
    fk.usable = false;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    text = pare_session_plan_text(s);
    assert_true(has_row(text, "relu", "Relu", "cpu", NULL));
    assert_null(strstr(text, "fake"));
    free(text);
    pare_session_free(s);
    so.device = "fake";
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "device 'fake' is not usable: no fake device");
    fk.usable = true;
    /* a context that cannot be opened fails the session */
    so.gpu = 1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_ARG);
    assert_string_equal(err.msg, "fake has one device");
    so.gpu = 0;
    assert_int_equal(fk.opens, fk.closes);
    pare_model_free(m);

    /* neither backend: the error names both reasons */
    m = new_model(17);
    pare_graph *g = pare_model_graph(m);
    int64_t d[2] = {2, 2};
    pare_value *in[2] = {add_input(g, "a", PARE_DT_INT8, 2, d),
                         add_input(g, "b", PARE_DT_INT8, 2, d)};
    pare_value *y = add_node(g, "g", "Gemm", in, 2, "y");
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    so.device = "fake";
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "node 'g' (Gemm, domain 'ai.onnx', opset 17): no kernel for "
                                 "input dtypes (int8, int8) on cpu (fake: no kernel for Gemm)");
    pare_model_free(m);
    assert_int_equal(fk.allocs, fk.frees);
}

/* The session options reach the backend's open, and the figures hooks are
 * called once per run and passed on by pare_session_run_stats. */
static void test_fake_backend_options_and_stats(void **state)
{
    (void)state;
    pare_model *m = mixed_model();
    pare_error err;
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = "fake";
    so.tf32 = true;
    so.cuda_graph = 0;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_true(fk.tf32);
    assert_int_equal(fk.cuda_graph, 0);
    pare_run_stats rs;
    pare_session_run_stats(s, &rs);
    assert_string_equal(rs.device, "fake");
    assert_int_equal(fk.begins, 0);
    pare_tensor *in[2];
    in[0] = tensor_f32("x", 2, 3, -1.0f);
    int64_t d[2] = {2, 3};
    assert_int_equal(pare_tensor_new("c", PARE_DT_INT64, 2, d, &in[1], &err), PARE_OK);
    pare_tensor **o;
    size_t n;
    for (int round = 0; round < 2; round++) {
        if (pare_session_run(s, in, 2, &o, &n, &err))
            fail_msg("%s", err.msg);
        pare_tensors_free(o, n);
        assert_int_equal(fk.begins, round + 1);
        assert_int_equal(fk.ends, round + 1);
    }
    int before = fk.stats;
    pare_session_run_stats(s, &rs);
    assert_int_equal(fk.stats, before + 1);
    assert_true(rs.h2d_ms == 1.5 && rs.d2h_ms == 2.5 && rs.compute_ms == 3.5);
    assert_int_equal(rs.device_mem_peak, 4096);
    assert_int_equal(rs.nodes_device, 3);
    assert_int_equal(rs.nodes_cpu, 3);
    assert_int_equal(fk.stray, 0);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_session_free(s);
    /* the defaults: no TF32, graphs where they apply */
    so.tf32 = false;
    so.cuda_graph = -1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_false(fk.tf32);
    assert_int_equal(fk.cuda_graph, -1);
    pare_session_free(s);
    pare_model_free(m);
}

/* x -> relu -> r -> add(r + W) -> y: every node on the fake */
static pare_model *device_model(void)
{
    pare_model *m = new_model(14);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(g, "x", PARE_DT_FLOAT, 2, d);
    pare_value *w;
    assert_int_equal(pare_graph_add_initializer(g, tensor_f32("W", 2, 3, 0.25f), &w, &err),
                     PARE_OK);
    pare_value *r = add_node(g, "relu", "Relu", &x, 1, "r");
    pare_value *y = add_node(g, "add", "Add", (pare_value *[]){r, w}, 2, "y");
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    return m;
}

/* runs s `runs` times on x, checking y = relu(x) + W each time */
static pare_status run_device_model(pare_session *s, int runs, pare_error *err)
{
    pare_tensor *x = tensor_f32("x", 2, 3, -1.0f), *w = tensor_f32("W", 2, 3, 0.25f), **o;
    size_t n;
    pare_status st = PARE_OK;
    for (int r = 0; r < runs && !st; r++) {
        if ((st = pare_session_run(s, &x, 1, &o, &n, err)))
            break;
        for (int i = 0; i < 6; i++)
            assert_true(((float *)o[0]->data)[i] ==
                        fmaxf(((float *)x->data)[i], 0.0f) + ((float *)w->data)[i]);
        pare_tensors_free(o, n);
    }
    pare_tensor_free(x);
    pare_tensor_free(w);
    return st;
}

/* CUDA graphs as the session decides them: captured from the second run
 * with the same shapes when every node is on the device; a failed capture
 * runs again without one (cuda_graph -1) or fails (1); never with CPU
 * nodes, an observer, or cuda_graph 0. */
static void test_fake_backend_graphs(void **state)
{
    (void)state;
    pare_error err;
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.device = "fake";
    pare_model *m = device_model();
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_int_equal(run_device_model(s, 1, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, 0); /* the recording run */
    assert_int_equal(run_device_model(s, 2, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, 2);
    assert_int_equal(fk.graph_ends, 2);
    assert_int_equal(fk.graph_discards, 0);
    /* an observer: every node is seen, no graph */
    struct seen seen = {0};
    pare_session_set_observer(s, observe_r1, &seen);
    assert_int_equal(run_device_model(s, 1, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, 2);
    assert_int_equal(seen.calls, 2);
    pare_session_set_observer(s, NULL, NULL);
    /* a capture that fails: discarded, the run done again without one, and
     * no graph tried after that */
    fk.fail_capture = true;
    assert_int_equal(run_device_model(s, 1, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, 3);
    assert_int_equal(fk.graph_discards, 1);
    assert_int_equal(run_device_model(s, 1, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, 3);
    pare_session_free(s);
    /* cuda_graph 1: the same failure fails the run, with the reason */
    so.cuda_graph = 1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_int_equal(run_device_model(s, 1, &err), PARE_OK);
    assert_int_equal(run_device_model(s, 1, &err), PARE_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "cuda_graph=1: the captured run failed"));
    assert_non_null(strstr(err.msg, "not allowed while capturing"));
    assert_int_equal(fk.graph_discards, 2);
    pare_session_free(s);
    fk.fail_capture = false;
    /* cuda_graph 0: never */
    so.cuda_graph = 0;
    int before = fk.graph_begins;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    assert_int_equal(run_device_model(s, 3, &err), PARE_OK);
    assert_int_equal(fk.graph_begins, before);
    pare_session_free(s);
    pare_model_free(m);
    /* CPU nodes in the plan: no graph; cuda_graph 1 says why */
    m = mixed_model();
    so.cuda_graph = 1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    pare_tensor *in[2];
    in[0] = tensor_f32("x", 2, 3, -1.0f);
    int64_t d[2] = {2, 3};
    assert_int_equal(pare_tensor_new("c", PARE_DT_INT64, 2, d, &in[1], &err), PARE_OK);
    pare_tensor **o;
    size_t n;
    assert_int_equal(pare_session_run(s, in, 2, &o, &n, &err), PARE_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "cuda_graph=1: 3 nodes run on the cpu");
    pare_session_free(s);
    so.cuda_graph = -1;
    before = fk.graph_begins;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(pare_session_run(s, in, 2, &o, &n, &err), PARE_OK);
        pare_tensors_free(o, n);
    }
    assert_int_equal(fk.graph_begins, before);
    pare_session_free(s);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_model_free(m);
    assert_int_equal(fk.stray, 0);
    assert_false(fk.capturing);
    assert_int_equal(fk.allocs, fk.frees);
}

/* ---- fusion in device plans ---- */

static pare_value *init_nd(pare_graph *g, const char *name, int rank, const int64_t *dims,
                           float base)
{
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    float *x = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        x[i] = base + 0.05f * (float)(i % 7) - 0.11f * (float)(i % 3);
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

/* x -> relu -> conv(W, B, pads 1) -> bn -> add(+ res) -> relu2 -> y -> Neg -> z,
 * res = Relu(x1) (res_on_cpu: Neg(x1), which the fake declines) */
static pare_model *conv_model(bool res_on_cpu)
{
    pare_model *m = new_model(14);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_node *n;
    int64_t xd[4] = {1, 4, 5, 5}, x1d[4] = {1, 6, 5, 5}, wd[4] = {6, 4, 3, 3}, cd[1] = {6};
    pare_value *x = add_input(g, "x", PARE_DT_FLOAT, 4, xd);
    pare_value *x1 = add_input(g, "x1", PARE_DT_FLOAT, 4, x1d);
    pare_value *r0 = add_node(g, "relu0", "Relu", &x, 1, "r0");
    pare_value *res = add_node(g, "resid", res_on_cpu ? "Neg" : "Relu", &x1, 1, "res");
    pare_value *ci[3] = {r0, init_nd(g, "W", 4, wd, -0.2f), init_nd(g, "B", 1, cd, 0.1f)};
    pare_value *c;
    assert_int_equal(pare_graph_new_value(g, "c", NULL, 0, &c, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "conv", "", "Conv", ci, 3, &c, 1, NULL, &n, &err),
                     PARE_OK);
    int64_t pads[4] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(n, "pads", pads, 4, &err), PARE_OK);
    pare_value *bi[5] = {c, init_nd(g, "s", 1, cd, 0.9f), init_nd(g, "b", 1, cd, -0.1f),
                         init_nd(g, "mu", 1, cd, 0.05f), init_nd(g, "var", 1, cd, 0.8f)};
    pare_value *bo = add_node(g, "bn", "BatchNormalization", bi, 5, "bo");
    pare_value *a = add_node(g, "add", "Add", (pare_value *[]){bo, res}, 2, "a");
    pare_value *y = add_node(g, "relu2", "Relu", &a, 1, "y");
    pare_value *z = add_node(g, "neg", "Neg", &y, 1, "z");
    assert_int_equal(pare_graph_add_output(g, z, &err), PARE_OK);
    return m;
}

/* runs m on device "fake" (fusion on) and on the CPU with no fusion;
 * returns the number of "fused into conv" lines of the fake's plan */
static int fused_on_fake(pare_model *m)
{
    int64_t xd[4] = {1, 4, 5, 5}, x1d[4] = {1, 6, 5, 5};
    pare_tensor *in[2];
    pare_error err;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 4, xd, &in[0], &err), PARE_OK);
    assert_int_equal(pare_tensor_new("x1", PARE_DT_FLOAT, 4, x1d, &in[1], &err), PARE_OK);
    for (int t = 0; t < 2; t++)
        for (uint64_t i = 0; i < pare_tensor_numel(in[t]); i++)
            ((float *)in[t]->data)[i] = (float)((i * 37 + (uint64_t)t * 11) % 23) / 11.0f - 1.0f;
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    o.threads = 1;
    o.no_fusion = true;
    pare_session *s;
    pare_tensor **want, **got;
    size_t nw, ng;
    assert_int_equal(pare_session_new(m, &o, &s, &err), PARE_OK);
    assert_int_equal(pare_session_run(s, in, 2, &want, &nw, &err), PARE_OK);
    pare_session_free(s);
    o.no_fusion = false;
    o.device = "fake";
    assert_int_equal(pare_session_new(m, &o, &s, &err), PARE_OK);
    char *plan = pare_session_plan_text(s);
    assert_non_null(plan);
    for (int r = 0; r < 2; r++) { /* recording run, then from the arena */
        if (pare_session_run(s, in, 2, &got, &ng, &err))
            fail_msg("fake run: %s\nplan:\n%s", err.msg, plan);
        assert_int_equal(ng, nw);
        const float *a = got[0]->data, *b = want[0]->data;
        for (uint64_t i = 0; i < pare_tensor_numel(want[0]); i++)
            if (fabsf(a[i] - b[i]) > 1e-5f * (1.0f + fabsf(b[i])))
                fail_msg("z[%llu] = %g, unfused CPU %g\nplan:\n%s", (unsigned long long)i,
                         (double)a[i], (double)b[i], plan);
        pare_tensors_free(got, ng);
    }
    int fused = 0;
    for (const char *q = plan; (q = strstr(q, " fused into conv")); q++)
        fused++;
    free(plan);
    pare_session_free(s);
    pare_tensors_free(want, nw);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    assert_int_equal(fk.foreign, 0);
    assert_int_equal(fk.stray, 0);
    return fused;
}

/* a device backend with a fuse hook fuses Conv -> BN -> Add -> Relu when all
 * of it runs there, stops where a node falls back to the CPU or the
 * residual lives on the CPU, and computes what the unfused CPU run does */
static void test_fake_backend_fusion(void **state)
{
    (void)state;
    fk.convs = true;
    pare_model *m = conv_model(false);
    assert_int_equal(fused_on_fake(m), 3); /* bn, add, relu2 */
    assert_true(fk.fuses >= 1);
    fk.decline_bn = true;                  /* bn on the CPU: nothing after conv */
    fk.fuses = 0;
    assert_int_equal(fused_on_fake(m), 0);
    assert_int_equal(fk.fuses, 0);
    fk.decline_bn = false;
    pare_model_free(m);
    m = conv_model(true);                  /* residual made on the CPU: bn only */
    assert_int_equal(fused_on_fake(m), 1);
    pare_model_free(m);
    fk.convs = false;
}

/* a tensor of dtype dt (int8, uint8 or float) holding n values (n 1: a scalar) */
static pare_value *qinit(pare_graph *g, const char *name, int dt, int rank, const int64_t *dims,
                         const double *vals, int64_t nv)
{
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dt, rank, dims, &t, &err), PARE_OK);
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++) {
        double x = vals[i % (uint64_t)nv];
        if (dt == PARE_DT_FLOAT)
            ((float *)t->data)[i] = (float)x;
        else if (dt == PARE_DT_INT8)
            ((int8_t *)t->data)[i] = (int8_t)x;
        else
            ((uint8_t *)t->data)[i] = (uint8_t)x;
    }
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

/* x -> Q -> xq -> DQ -> conv(DQ(Wq) per channel, B, pads 1) -> relu -> Q -> yq -> DQ -> y
 * (input_q: the graph input is xq, uint8) */
static pare_model *qdq_model(bool input_q)
{
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_node *n;
    int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {6, 4, 3, 3}, cd[1] = {6};
    pare_value *x = add_input(g, input_q ? "xq" : "x", input_q ? PARE_DT_UINT8 : PARE_DT_FLOAT,
                              4, xd);
    pare_value *sx = qinit(g, "sx", PARE_DT_FLOAT, 0, NULL, (double[]){0.02}, 1);
    pare_value *zx = qinit(g, "zx", PARE_DT_UINT8, 0, NULL, (double[]){50}, 1);
    pare_value *xq =
        input_q ? x : add_node(g, "qx", "QuantizeLinear", (pare_value *[]){x, sx, zx}, 3, "xq");
    pare_value *xf = add_node(g, "dqx", "DequantizeLinear", (pare_value *[]){xq, sx, zx}, 3, "xf");
    pare_value *wq = qinit(g, "Wq", PARE_DT_INT8, 4, wd, (double[]){-90, 17, 64, -3, 120, -128, 45}, 7);
    pare_value *ws = qinit(g, "ws", PARE_DT_FLOAT, 1, cd, (double[]){0.004, 0.007, 0.002}, 3);
    pare_value *wz = qinit(g, "wz", PARE_DT_INT8, 1, cd, (double[]){0}, 1);
    pare_value *wf;
    assert_int_equal(pare_graph_new_value(g, "wf", NULL, 0, &wf, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "dqw", "", "DequantizeLinear",
                                         (pare_value *[]){wq, ws, wz}, 3, &wf, 1, NULL, &n, &err),
                     PARE_OK);
    assert_int_equal(pare_node_set_attr_int(n, "axis", 0, &err), PARE_OK);
    pare_value *ci[3] = {xf, wf, qinit(g, "B", PARE_DT_FLOAT, 1, cd, (double[]){0.1, -0.2}, 2)};
    pare_value *c;
    assert_int_equal(pare_graph_new_value(g, "c", NULL, 0, &c, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, "conv", "", "Conv", ci, 3, &c, 1, NULL, &n, &err),
                     PARE_OK);
    int64_t pads[4] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(n, "pads", pads, 4, &err), PARE_OK);
    pare_value *r = add_node(g, "relu", "Relu", &c, 1, "r");
    pare_value *sy = qinit(g, "sy", PARE_DT_FLOAT, 0, NULL, (double[]){0.01}, 1);
    pare_value *zy = qinit(g, "zy", PARE_DT_UINT8, 0, NULL, (double[]){3}, 1);
    pare_value *yq = add_node(g, "qy", "QuantizeLinear", (pare_value *[]){r, sy, zy}, 3, "yq");
    pare_value *y = add_node(g, "dqy", "DequantizeLinear", (pare_value *[]){yq, sy, zy}, 3, "y");
    assert_int_equal(pare_graph_add_output(g, y, &err), PARE_OK);
    return m;
}

static int count_obs(void *ctx, const pare_node *n, size_t o, const pare_tensor *t)
{
    (void)n;
    (void)o;
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

/* runs the QDQ model with opts o; *plan (when not NULL) gets the plan text;
 * with observed, the second run has an observer (every node runs) and
 * *observed counts its calls */
static pare_tensor *qdq_run_obs(pare_model *m, const pare_session_opts *o, char **plan,
                                int *observed)
{
    int64_t xd[4] = {1, 4, 5, 5};
    pare_tensor *in, **out;
    size_t no;
    pare_error err;
    bool q = pare_model_graph(m)->inputs[0]->dtype == PARE_DT_UINT8;
    assert_int_equal(pare_tensor_new(q ? "xq" : "x", q ? PARE_DT_UINT8 : PARE_DT_FLOAT, 4, xd,
                                     &in, &err), PARE_OK);
    for (uint64_t i = 0; i < pare_tensor_numel(in); i++)
        if (q)
            ((uint8_t *)in->data)[i] = (uint8_t)((i * 37) % 101);
        else
            ((float *)in->data)[i] = (float)((i * 37) % 23) / 9.0f - 1.0f;
    pare_session *s;
    assert_int_equal(pare_session_new(m, o, &s, &err), PARE_OK);
    if (plan)
        assert_non_null(*plan = pare_session_plan_text(s));
    for (int r = 0; r < 2; r++) { /* recording run, then from the arena */
        if (r == 1 && observed)
            pare_session_set_observer(s, count_obs, observed);
        if (pare_session_run(s, &in, 1, &out, &no, &err))
            fail_msg("run: %s", err.msg);
        if (r == 0)
            pare_tensors_free(out, no);
    }
    assert_int_equal(no, 1);
    pare_tensor *y = out[0];
    free(out);
    pare_session_free(s);
    pare_tensor_free(in);
    return y;
}

static void qdq_on_fake(bool input_q);

static pare_tensor *qdq_run(pare_model *m, const pare_session_opts *o, char **plan)
{
    return qdq_run_obs(m, o, plan, NULL);
}

/* A device backend with a fuse_qdq hook runs DQ -> Conv -> Relu -> Q as its
 * own 8-bit kernel reading the quantized tensor where it lives (fake
 * memory): the plan says so on the fake's row, the DQs, Relu and Q are
 * absorbed, and the outputs are the CPU's fused ones to the bit; when the
 * hook refuses, the nodes run as they are. */
static void test_fake_backend_qdq_fusion(void **state)
{
    (void)state;
    for (int input_q = 0; input_q < 2; input_q++)
        qdq_on_fake(input_q);
}

/* test_fake_backend_qdq_fusion on the model with the graph input x (input_q
 * 0) or xq (1: the fused node reads its copy on the device, made before the
 * absorbed DequantizeLinear's position) */
static void qdq_on_fake(bool input_q)
{
    fk.convs = true;
    fk.qdq = true;
    fk.qdq_fuses = 0;
    pare_model *m = qdq_model(input_q);
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    o.threads = 1;
    pare_tensor *cpu = qdq_run(m, &o, NULL);
    o.no_fusion = true;
    pare_tensor *plain = qdq_run(m, &o, NULL);
    o.no_fusion = false;
    o.device = "fake";
    char *plan;
    pare_tensor *dev = qdq_run(m, &o, &plan);
    if (!has_row(plan, "conv", "Conv", "fake", "8-bit QDQ kernel: reads xq, writes yq"))
        fail_msg("no fused row on the fake:\n%s", plan);
    assert_true(has_row(plan, "dqx", "DequantizeLinear", "fake", "fused into conv"));
    assert_true(has_row(plan, "dqw", "DequantizeLinear", "fake", "fused into conv"));
    assert_true(has_row(plan, "relu", "Relu", "fake", "fused into conv"));
    assert_true(has_row(plan, "qy", "QuantizeLinear", "fake", "fused into conv"));
    assert_true(input_q || has_row(plan, "qx", "QuantizeLinear", "fake", NULL));
    /* the weights only the absorbed DequantizeLinear read left the device */
    assert_null(strstr(plan, "copy:Wq"));
    free(plan);
    assert_int_equal(fk.qdq_fuses, 1);
    assert_int_equal(fk.foreign, 0);
    assert_int_equal(fk.stray, 0);
    assert_memory_equal(dev->data, cpu->data, dev->nbytes);
    /* an observed run runs every node: the weights go back up first */
    int seen = 0;
    pare_tensor *obs = qdq_run_obs(m, &o, NULL, &seen);
    assert_true(seen >= 6);
    assert_int_equal(fk.foreign, 0);
    assert_int_equal(fk.stray, 0);
    assert_memory_equal(obs->data, plain->data, obs->nbytes);
    pare_tensor_free(obs);
    /* within a step of y's scale of the unfused graph, and not all zero */
    int nonzero = 0;
    for (uint64_t i = 0; i < pare_tensor_numel(dev); i++) {
        float a = ((float *)dev->data)[i], b = ((float *)plain->data)[i];
        assert_true(fabsf(a - b) <= 0.0101f);
        nonzero += a != 0;
    }
    assert_true(nonzero > 10);
    pare_tensor_free(dev);
    /* the hook refuses: nothing of the QDQ pattern fuses */
    fk.qdq = false; /* Q/DQ fall back to the CPU now */
    fk.qdq_fuses = 0;
    dev = qdq_run(m, &o, &plan);
    assert_null(strstr(plan, "8-bit QDQ"));
    free(plan);
    assert_int_equal(fk.qdq_fuses, 0);
    assert_memory_equal(dev->data, plain->data, dev->nbytes);
    pare_tensor_free(dev);
    pare_tensor_free(cpu);
    pare_tensor_free(plain);
    pare_model_free(m);
    fk.convs = false;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_select),
        cmocka_unit_test(test_registry_bad_specs),
        cmocka_unit_test(test_cpu_declared_dtypes),
        cmocka_unit_test(test_int8_gemm_fails_at_plan),
        cmocka_unit_test(test_inferred_dtype_fails_at_plan),
        cmocka_unit_test(test_devices),
        cmocka_unit_test_setup_teardown(test_fake_backend_options_and_stats, setup_fake,
                                        teardown_fake),
        cmocka_unit_test_setup_teardown(test_fake_backend_graphs, setup_fake, teardown_fake),
        cmocka_unit_test_setup_teardown(test_fake_backend_plan_and_run, setup_fake,
                                        teardown_fake),
        cmocka_unit_test_setup_teardown(test_fake_backend_selection, setup_fake, teardown_fake),
        cmocka_unit_test_setup_teardown(test_fake_backend_fusion, setup_fake, teardown_fake),
        cmocka_unit_test_setup_teardown(test_fake_backend_qdq_fusion, setup_fake, teardown_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
