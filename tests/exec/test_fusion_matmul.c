/* Plan-time fusion of a float32 MatMul with what follows it: Add/Mul/Div
 * by constants along the last axis (a bias; one scale for every column), a
 * residual Add, an activation, and GELU written out as Div/Erf/Add/Mul/Mul
 * (BERT's exporters) or as one Gelu node; and of a BatchNormalization with
 * no Conv before it (DenseNet's pre-activations) with the per-channel
 * Mul/Add and Relu/Clip/LeakyRelu after it. Each case runs the same model
 * fused and with no_fusion on odd sizes (tile edges, the batched and the
 * tall product) and compares the outputs; the plan says what was fused;
 * what does not match the patterns is left alone. */
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

#include "fusion_build.h"

/* MatMul(x, W[k, n]) */
static pare_value *add_mm(pare_graph *g, const char *name, pare_value *x, int64_t k, int64_t n)
{
    char wn[64], on[64];
    snprintf(wn, sizeof wn, "%s_w", name);
    snprintf(on, sizeof on, "%s_out", name);
    int64_t wd[2] = {k, n};
    return add_node(g, name, "MatMul", (pare_value *[]){x, add_init(g, wn, 2, wd, -0.4f, 0.4f)}, 2,
                    on);
}

static pare_value *binop(pare_graph *g, const char *name, const char *op, pare_value *a,
                         pare_value *b)
{
    char on[64];
    snprintf(on, sizeof on, "%s_out", name);
    return add_node(g, name, op, (pare_value *[]){a, b}, 2, on);
}

/* a Constant node of a float scalar: value_float, or a value tensor */
static pare_value *const_node(pare_graph *g, const char *name, float v, bool tensor)
{
    pare_value *o = add_node(g, name, "Constant", NULL, 0, name);
    pare_error err;
    if (tensor) {
        pare_tensor *t;
        assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, 0, NULL, &t, &err), PARE_OK);
        *(float *)t->data = v;
        assert_int_equal(pare_node_set_attr_tensor(last_node, "value", t, &err), PARE_OK);
    } else {
        assert_int_equal(pare_node_set_attr_float(last_node, "value_float", v, &err), PARE_OK);
    }
    return o;
}

/* GELU as exporters write it: y * (erf(y / sqrt 2) + 1) * 0.5, with the
 * Div replaced by a Mul by 1/sqrt 2 when mul_form; the constants from
 * Constant nodes when cnodes */
static pare_value *gelu_nodes(pare_graph *g, pare_value *y, bool mul_form, float k, bool cnodes)
{
    pare_value *kv = cnodes ? const_node(g, "k_c", k, false) : add_scalar(g, "k_i", k);
    pare_value *d = mul_form ? binop(g, "g_div", "Mul", kv, y) : binop(g, "g_div", "Div", y, kv);
    pare_value *e = add_node(g, "g_erf", "Erf", &d, 1, "g_erf_out");
    pare_value *one = cnodes ? const_node(g, "one_c", 1.0f, true) : add_scalar(g, "one", 1.0f);
    pare_value *a = binop(g, "g_add", "Add", one, e);
    pare_value *m = binop(g, "g_mul", "Mul", y, a);
    pare_value *h = cnodes ? const_node(g, "half_c", 0.5f, true) : add_scalar(g, "half", 0.5f);
    return binop(g, "g_half", "Mul", m, h);
}

/* x[2, 37, 29] -> MatMul W[29, 45] -> Add b[45] -> GELU (both spellings,
 * and with Constant nodes); the tall product of 74 x 45 x 29 */
static void test_matmul_bias_gelu(void **state)
{
    (void)state;
    for (int form = 0; form < 3; form++) {
        pare_model *m = new_model(13);
        pare_graph *g = pare_model_graph(m);
        int64_t xd[3] = {2, 37, 29}, bd[1] = {45};
        pare_value *x = add_input(g, "x", 3, xd);
        pare_value *y = binop(g, "bias", "Add", add_mm(g, "mm", x, 29, 45),
                              add_init(g, "b", 1, bd, -1, 1));
        output(g, gelu_nodes(g, y, form == 1, form == 1 ? 0.70710678f : 1.41421356f, form == 2));
        pare_tensor *in = rand_tensor("x", 3, xd, -2, 2);
        const char *want[] = {"Add fused into mm", "Erf fused into mm", "Div fused into mm",
                              NULL};
        const char *want1[] = {"Add fused into mm", "Erf fused into mm", NULL};
        check_model(m, &in, 1, 6, form == 1 ? want1 : want);
        pare_tensor_free(in);
        pare_model_free(m);
    }
}

/* the one-node Gelu (opset 20) after a bias given as [1, 1, n] */
static void test_matmul_gelu_op(void **state)
{
    (void)state;
    pare_model *m = new_model(20);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[3] = {3, 17, 33}, bd[3] = {1, 1, 21};
    pare_value *x = add_input(g, "x", 3, xd);
    pare_value *y = binop(g, "bias", "Add", add_init(g, "b", 3, bd, -1, 1),
                          add_mm(g, "mm", x, 33, 21));
    output(g, add_node(g, "gelu", "Gelu", &y, 1, "gelu_out"));
    pare_tensor *in = rand_tensor("x", 3, xd, -2, 2);
    const char *want[] = {"Add fused into mm", "Gelu fused into mm", NULL};
    check_model(m, &in, 1, 2, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* a transformer's output projection: MatMul -> Add bias -> Mul by a scalar
 * -> Add(residual x) -> Relu; and attention's scores: a batched product of
 * two inputs divided by a scalar */
static void test_matmul_residual_scale(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[3] = {3, 33, 40}, bd[1] = {40}, qd[4] = {2, 3, 19, 6}, kd[4] = {2, 3, 6, 23};
    pare_value *x = add_input(g, "x", 3, xd);
    pare_value *q = add_input(g, "q", 4, qd), *kk = add_input(g, "k", 4, kd);
    pare_value *y = binop(g, "bias", "Add", add_mm(g, "mm", x, 40, 40),
                          add_init(g, "b", 1, bd, -1, 1));
    pare_value *s = binop(g, "scale", "Mul", y, add_scalar(g, "k3", 0.75f));
    pare_value *r = binop(g, "res", "Add", x, s);
    output(g, add_node(g, "relu", "Relu", &r, 1, "y"));
    pare_value *sc = binop(g, "qk", "MatMul", q, kk);
    output(g, binop(g, "div", "Div", sc, add_scalar(g, "d", 3.0f)));
    pare_tensor *in[3] = {rand_tensor("x", 3, xd, -1, 1), rand_tensor("q", 4, qd, -1, 1),
                          rand_tensor("k", 4, kd, -1, 1)};
    const char *want[] = {"Add fused into mm", "Mul fused into mm", "Relu fused into mm",
                          "Div fused into qk", NULL};
    check_model(m, in, 3, 5, want);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
    pare_model_free(m);
}

/* left alone: a Mul by a vector along the last axis (a scale per column:
 * the whole fusion is refused), a GELU whose constant is not sqrt 2 (only
 * the bias is fused), a bias read twice */
static void test_matmul_refused(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[2] = {31, 18}, vd[1] = {18};
    pare_value *x = add_input(g, "x", 2, xd);
    pare_value *a = binop(g, "mul", "Mul", add_mm(g, "mm1", x, 18, 18),
                          add_init(g, "v", 1, vd, 0.5f, 2));
    pare_value *b = binop(g, "bias", "Add", add_mm(g, "mm2", a, 18, 18),
                          add_init(g, "b", 1, vd, -1, 1));
    pare_value *c = gelu_nodes(g, b, false, 1.5f, false);
    pare_value *d = add_mm(g, "mm3", c, 18, 18);
    pare_value *e = add_node(g, "neg", "Neg", &d, 1, "e");
    pare_value *f = add_node(g, "relu", "Relu", &d, 1, "f");
    output(g, e);
    output(g, f);
    pare_tensor *in = rand_tensor("x", 2, xd, -1, 1);
    const char *want[] = {"Add fused into mm2", NULL};
    check_model(m, &in, 1, 1, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

static pare_value *add_bn(pare_graph *g, const char *name, pare_value *x, int64_t m)
{
    char n1[64], n2[64], n3[64], n4[64], on[64];
    snprintf(n1, sizeof n1, "%s_s", name);
    snprintf(n2, sizeof n2, "%s_b", name);
    snprintf(n3, sizeof n3, "%s_m", name);
    snprintf(n4, sizeof n4, "%s_v", name);
    snprintf(on, sizeof on, "%s_out", name);
    int64_t d[1] = {m};
    pare_value *ins[5] = {x, add_init(g, n1, 1, d, 0.5f, 1.5f), add_init(g, n2, 1, d, -0.5f, 0.5f),
                          add_init(g, n3, 1, d, -0.2f, 0.2f), add_init(g, n4, 1, d, 0.5f, 2.0f)};
    return add_node(g, name, "BatchNormalization", ins, 5, on);
}

/* DenseNet's pre-activation: Concat -> BN -> Mul [c,1,1] -> Add [c,1,1]
 * -> Relu; BN -> Clip and BN -> LeakyRelu; a BN followed by Sigmoid (not
 * absorbed) and one whose mean is an input (not constant) stay as they are */
static void test_bn_chain(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {2, 3, 5, 7}, cd[3] = {6, 1, 1}, md[1] = {6};
    pare_value *x = add_input(g, "x", 4, xd), *x2 = add_input(g, "x2", 4, xd);
    pare_value *mean_in = add_input(g, "mean_in", 1, md);
    pare_value *cat = add_node(g, "cat", "Concat", (pare_value *[]){x, x2}, 2, "cat_out");
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(last_node, "axis", 1, &err), PARE_OK);
    pare_value *b = add_bn(g, "bn", cat, 6);
    pare_value *mu = binop(g, "mul", "Mul", b, add_init(g, "k", 3, cd, -2, 2));
    pare_value *ad = binop(g, "add", "Add", add_init(g, "d", 3, cd, -1, 1), mu);
    output(g, add_node(g, "relu", "Relu", &ad, 1, "y1"));
    pare_value *b2 = add_bn(g, "bn2", cat, 6);
    pare_value *ci[3] = {b2, add_scalar(g, "lo", -0.3f), add_scalar(g, "hi", 0.6f)};
    output(g, add_node(g, "clip", "Clip", ci, 3, "y2"));
    pare_value *b3 = add_bn(g, "bn3", cat, 6);
    output(g, add_node(g, "leaky", "LeakyRelu", &b3, 1, "y3"));
    pare_value *b4 = add_bn(g, "bn4", cat, 6);
    output(g, add_node(g, "sig", "Sigmoid", &b4, 1, "y4"));
    pare_value *b5in[5] = {cat, add_init(g, "s5", 1, md, 0.5f, 1.5f),
                           add_init(g, "c5", 1, md, -0.5f, 0.5f), mean_in,
                           add_init(g, "v5", 1, md, 0.5f, 2.0f)};
    pare_value *b5 = add_node(g, "bn5", "BatchNormalization", b5in, 5, "bn5_out");
    output(g, add_node(g, "relu5", "Relu", &b5, 1, "y5"));
    pare_tensor *in[3] = {rand_tensor("x", 4, xd, -2, 2), rand_tensor("x2", 4, xd, -2, 2),
                          rand_tensor("mean_in", 1, md, -0.2f, 0.2f)};
    const char *want[] = {"Mul fused into bn", "Add fused into bn", "Relu fused into bn",
                          "Clip fused into bn2", "LeakyRelu fused into bn3", NULL};
    check_model(m, in, 3, 5, want);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_bias_gelu),
        cmocka_unit_test(test_matmul_gelu_op),
        cmocka_unit_test(test_matmul_residual_scale),
        cmocka_unit_test(test_matmul_refused),
        cmocka_unit_test(test_bn_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
