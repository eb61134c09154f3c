/* test_fq_convert.c - float16/bfloat16 conversion: cosine >= 0.999 on
 * testdata's CNN and transformer block, Casts only at the borders of blocked
 * regions (never a Cast feeding a Cast, graph inputs and outputs float32),
 * clamping counted, --block-nodes and the default block list, shape
 * computations kept float32, keep_io_types off, bfloat16 in the executor,
 * control flow kept float32 with its borders, and storage_only (bfloat16
 * weights with a Cast to float32, float32 compute). */
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

static pare_model *load(const char *path)
{
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static void convert(pare_model *m, const pare_fq_opts *o, pare_quant_report *r)
{
    pare_error err;
    if (pare_quantize_float(m, o, r, &err))
        fail_msg("convert: %s", err.msg);
    pare_problems pr = {0};
    assert_int_equal(pare_model_validate(m, &pr, &err), PARE_OK);
    for (size_t i = 0; i < pr.n; i++)
        print_message("problem: %s: %s\n", pr.items[i].where, pr.items[i].what);
    assert_int_equal(pr.n, 0);
    pare_problems_release(&pr);
}

static pare_node *find(pare_model *m, const char *name)
{
    pare_node *n = pare_graph_find_node(pare_model_graph(m), name);
    assert_non_null(n);
    return n;
}

/* Every Cast converts between float32 and the narrow type, none reads
 * another Cast's output, and the graph's float inputs/outputs are float32. */
static size_t check_borders(pare_model *m, int nt, bool io32)
{
    pare_graph *g = pare_model_graph(m);
    size_t casts = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        if (strcmp(n->op_type, "Cast") || !n->inputs[0])
            continue;
        int in = n->inputs[0]->dtype, to = (int)pare_node_attr_int(n, "to", 0);
        if (n->inputs[0]->producer && strcmp(n->inputs[0]->producer->op_type, "Cast") == 0)
            fail_msg("Cast '%s' reads Cast '%s'", n->name, n->inputs[0]->producer->name);
        if ((in == PARE_DT_FLOAT && to == nt) || (in == nt && to == PARE_DT_FLOAT))
            casts++;
    }
    for (size_t i = 0; io32 && i < g->n_inputs; i++)
        if (pare_dtype_is_float(g->inputs[i]->dtype))
            assert_int_equal(g->inputs[i]->dtype, PARE_DT_FLOAT);
    for (size_t i = 0; io32 && i < g->n_outputs; i++)
        if (pare_dtype_is_float(g->outputs[i]->dtype))
            assert_int_equal(g->outputs[i]->dtype, PARE_DT_FLOAT);
    return casts;
}

/* Cosine of m's outputs against ref's over a dataset (pooled). */
static double cosine(pare_model *m, pare_model *ref, const char *data)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 2;
    pare_session *s = NULL, *sr = NULL;
    pare_feed *f = NULL;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err) || pare_session_new(ref, &so, &sr, &err) ||
        pare_feed_open(data, s, 64, 256, &f, &err))
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
        for (size_t i = 0; i < na; i++)
            assert_int_equal(pare_compare_add(&c, a[i], b[i], NULL, &err), PARE_OK);
        pare_tensors_free(a, na);
        pare_tensors_free(b, nb);
        pare_tensors_free(in, nin);
    }
    pare_feed_close(f);
    pare_session_free(s);
    pare_session_free(sr);
    return pare_compare_cosine(&c);
}

static void check_testdata(const char *model, const char *data, int dt, double min_cos)
{
    pare_model *ref = load(model), *m = load(model);
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    o.dtype = dt;
    pare_quant_report r;
    pare_quant_report_init(&r);
    convert(m, &o, &r);
    size_t casts = check_borders(m, dt, true);
    /* float initializers are all narrow now */
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v && v->init && pare_dtype_is_float(v->init->dtype) && dt == PARE_DT_FLOAT16)
            assert_int_equal(v->init->dtype, dt);
    }
    assert_true(r.weight_bytes_after < r.weight_bytes_before * 0.6);
    double cs = cosine(m, ref, data);
    print_message("%s %s: cosine %.6f, %zu Casts, weights %llu -> %llu bytes\n", model,
                  pare_dtype_name(dt), cs, casts, (unsigned long long)r.weight_bytes_before,
                  (unsigned long long)r.weight_bytes_after);
    assert_true(cs >= min_cos);
    /* one Cast in per float input, one out per float output */
    if (dt == PARE_DT_FLOAT16)
        assert_int_equal(casts, g->n_inputs + g->n_outputs);
    pare_quant_report_release(&r);
    pare_model_free(m);
    pare_model_free(ref);
}

static void test_cnn_fp16(void **state)
{
    (void)state;
    check_testdata(PARE_TESTDATA "/cnn_digits.onnx", PARE_TESTDATA "/digits_val.npz",
                   PARE_DT_FLOAT16, 0.999);
}

static void test_transformer_fp16(void **state)
{
    (void)state;
    check_testdata(PARE_TESTDATA "/transformer_block.onnx", PARE_TESTDATA "/transformer_data.npz",
                   PARE_DT_FLOAT16, 0.999);
}

static void test_transformer_bf16(void **state)
{
    (void)state;
    check_testdata(PARE_TESTDATA "/transformer_block.onnx", PARE_TESTDATA "/transformer_data.npz",
                   PARE_DT_BFLOAT16, 0.99);
}

/* storage_only (pare-quantize --mode bf16's default): weights of more than
 * 16 values stored bfloat16, each read through one Cast to float32 named as
 * the weight was; everything else float32, as onnxruntime's CPU provider
 * needs (it has no bfloat16 MatMul, Conv, Gemm, Add, ...). */
static void check_storage(const char *model, const char *data, double min_cos)
{
    pare_model *ref = load(model), *m = load(model);
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    o.dtype = PARE_DT_BFLOAT16;
    o.storage_only = true;
    pare_quant_report r;
    pare_quant_report_init(&r);
    convert(m, &o, &r);
    pare_error aerr;
    assert_int_equal(pare_model_align_weights(ref, &aerr), PARE_OK); /* typed reads below */
    pare_graph *g = pare_model_graph(m), *rg = pare_model_graph(ref);
    size_t narrow = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v)
            continue;
        if (v->dtype != PARE_DT_BFLOAT16) {
            /* no float32 weight that could have been narrow is left */
            if (v->init && v->dtype == PARE_DT_FLOAT && pare_tensor_numel(v->init) > 16)
                fail_msg("float32 weight '%s' (%llu values) left", v->name,
                         (unsigned long long)pare_tensor_numel(v->init));
            continue;
        }
        /* a bfloat16 value is an initializer read only by a Cast to float32
         * whose output has the original weight's name and its rounded values */
        assert_non_null(v->init);
        assert_int_equal(v->n_uses, 1);
        pare_node *c = v->uses[0].node;
        assert_string_equal(c->op_type, "Cast");
        assert_int_equal(pare_node_attr_int(c, "to", 0), PARE_DT_FLOAT);
        pare_value *orig = pare_graph_find_value(rg, c->outputs[0]->name);
        assert_non_null(orig);
        assert_non_null(orig->init);
        uint64_t cnt = pare_tensor_numel(orig->init);
        assert_true(cnt > 16);
        assert_int_equal(cnt, pare_tensor_numel(v->init));
        const float *w = orig->init->data;
        const uint16_t *b = v->init->data;
        for (uint64_t k = 0; k < cnt; k++)
            assert_int_equal(b[k], pare_f32_to_bf16(w[k]));
        narrow++;
    }
    assert_true(narrow > 0);
    /* compute stays float32: the same nodes, by name, plus the Casts */
    for (size_t i = 0; i < rg->n_nodes; i++)
        if (rg->nodes[i]->name && rg->nodes[i]->name[0])
            assert_non_null(pare_graph_find_node(g, rg->nodes[i]->name));
    assert_int_equal(g->n_nodes, rg->n_nodes + narrow);
    check_borders(m, PARE_DT_BFLOAT16, true);
    assert_true(r.weight_bytes_after < r.weight_bytes_before * 0.55);
    size_t said = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.items[i].kind == PARE_QE_QUANTIZED)
            said += strcmp(r.items[i].how, "bfloat16 weights, float32 compute") == 0;
    assert_true(said > 0);
    double cs = cosine(m, ref, data);
    print_message("%s bf16 weights: cosine %.6f, %zu weights, %llu -> %llu bytes\n", model, cs,
                  narrow, (unsigned long long)r.weight_bytes_before,
                  (unsigned long long)r.weight_bytes_after);
    assert_true(cs >= min_cos);
    pare_quant_report_release(&r);
    pare_model_free(m);
    pare_model_free(ref);
}

static void test_bf16_storage(void **state)
{
    (void)state;
    check_storage(PARE_TESTDATA "/cnn_digits.onnx", PARE_TESTDATA "/digits_val.npz", 0.999);
    check_storage(PARE_TESTDATA "/transformer_block.onnx", PARE_TESTDATA "/transformer_data.npz",
                  0.999);
}

static void test_small(void **state)
{
    (void)state;
    pare_model *m = load(WQ_DATA "/fq_small.onnx");
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    o.block_nodes = (const char *const[]){"keep"};
    o.n_block_nodes = 1;
    pare_quant_report r;
    pare_quant_report_init(&r);
    convert(m, &o, &r);
    check_borders(m, PARE_DT_FLOAT16, true);
    /* 1e6 clamped to 65504 and counted */
    bool clamped = false;
    for (size_t i = 0; i < r.n; i++)
        if (r.items[i].kind == PARE_QE_CLAMPED && strcmp(r.items[i].name, "big") == 0)
            clamped = r.items[i].count == 1;
    assert_true(clamped);
    pare_node *scale = find(m, "scale");
    assert_int_equal(scale->inputs[1]->init->dtype, PARE_DT_FLOAT16);
    assert_int_equal(scale->inputs[1]->init->nbytes, 8);
    assert_true(pare_f16_to_f32(((uint16_t *)scale->inputs[1]->init->data)[0]) == 65504.0f);
    /* 'keep' (Sigmoid) float32 between two Casts; Tanh narrow again */
    pare_node *keep = find(m, "keep"), *tanh_ = find(m, "tanh");
    assert_int_equal(keep->inputs[0]->dtype, PARE_DT_FLOAT);
    assert_string_equal(keep->inputs[0]->producer->op_type, "Cast");
    assert_int_equal(keep->outputs[0]->dtype, PARE_DT_FLOAT);
    assert_int_equal(tanh_->inputs[0]->dtype, PARE_DT_FLOAT16);
    assert_string_equal(tanh_->inputs[0]->producer->op_type, "Cast");
    /* TopK (default block list) reads float32 through one Cast */
    pare_node *topk = find(m, "topk");
    assert_int_equal(topk->inputs[0]->dtype, PARE_DT_FLOAT);
    /* the shape computation stays float32, without Casts */
    pare_node *div = find(m, "shape_div"), *sf = find(m, "shape_f");
    assert_int_equal(pare_node_attr_int(sf, "to", 0), PARE_DT_FLOAT);
    assert_int_equal(div->inputs[0]->init->dtype, PARE_DT_FLOAT);
    assert_ptr_equal(div->inputs[1]->producer, sf);
    /* ConstantOfShape gets a float16 zero */
    pare_node *z = find(m, "zeros");
    const pare_attr *a = pare_node_attr(z, "value");
    assert_non_null(a);
    assert_int_equal(a->t->dtype, PARE_DT_FLOAT16);
    /* reasons in the report */
    size_t seen = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.items[i].kind != PARE_QE_FLOAT)
            continue;
        if (strcmp(r.items[i].name, "keep") == 0)
            seen += strcmp(r.items[i].how, "--block-nodes") == 0;
        if (strcmp(r.items[i].name, "topk") == 0)
            seen += strcmp(r.items[i].how, "default block list") == 0;
        if (strcmp(r.items[i].name, "shape_div") == 0)
            seen += strcmp(r.items[i].how, "shape computation") == 0;
    }
    assert_int_equal(seen, 3);
    /* it runs, and matches the float model where no clamping happened */
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("%s", err.msg);
    int64_t d[2] = {2, 4};
    pare_tensor *x, **out;
    size_t nout;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 2, d, &x, &err), PARE_OK);
    for (int i = 0; i < 8; i++)
        ((float *)x->data)[i] = 0.1f * (float)(i - 4);
    if (pare_session_run(s, &x, 1, &out, &nout, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(nout, 4);
    assert_int_equal(out[0]->dtype, PARE_DT_FLOAT);
    assert_int_equal(out[1]->dtype, PARE_DT_FLOAT);
    assert_int_equal(out[3]->dtype, PARE_DT_FLOAT);
    assert_true(((float *)out[3]->data)[0] == 0.5f); /* 2 / 4 * 0.5, in float32 */
    pare_tensors_free(out, nout);
    pare_tensor_free(x);
    pare_session_free(s);
    pare_quant_report_release(&r);
    pare_model_free(m);
}

static void test_no_keep_io(void **state)
{
    (void)state;
    pare_model *m = load(PARE_TESTDATA "/transformer_block.onnx");
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    o.keep_io_types = false;
    convert(m, &o, NULL);
    pare_graph *g = pare_model_graph(m);
    assert_int_equal(g->inputs[0]->dtype, PARE_DT_FLOAT16);
    assert_int_equal(g->outputs[0]->dtype, PARE_DT_FLOAT16);
    assert_int_equal(check_borders(m, PARE_DT_FLOAT16, false), 0);
    pare_model_free(m);
}

static void test_control_flow(void **state)
{
    (void)state;
    pare_model *m = load(PARE_TESTDATA "/control_flow.onnx");
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    convert(m, &o, NULL);
    check_borders(m, PARE_DT_FLOAT16, true);
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "If") || !strcmp(g->nodes[i]->op_type, "Loop") ||
            !strcmp(g->nodes[i]->op_type, "Scan"))
            for (size_t k = 0; k < g->nodes[i]->n_inputs; k++)
                if (g->nodes[i]->inputs[k])
                    assert_int_not_equal(g->nodes[i]->inputs[k]->dtype, PARE_DT_FLOAT16);
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("%s", err.msg);
    pare_session_free(s);
    pare_model_free(m);
}

static void test_bad(void **state)
{
    (void)state;
    pare_model *m = load(WQ_DATA "/fq_small.onnx");
    pare_fq_opts o = PARE_FQ_OPTS_INIT;
    pare_error err;
    o.dtype = PARE_DT_INT8;
    assert_int_equal(pare_quantize_float(m, &o, NULL, &err), PARE_ERR_ARG);
    o = (pare_fq_opts)PARE_FQ_OPTS_INIT;
    o.block_nodes = (const char *const[]){"nope"};
    o.n_block_nodes = 1;
    assert_int_equal(pare_quantize_float(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "nope"));
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_fp16),        cmocka_unit_test(test_transformer_fp16),
        cmocka_unit_test(test_transformer_bf16), cmocka_unit_test(test_small),
        cmocka_unit_test(test_no_keep_io),      cmocka_unit_test(test_control_flow),
        cmocka_unit_test(test_bad),             cmocka_unit_test(test_bf16_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
