/* Plan-time fusion in the executor: a float Conv absorbing the
 * BatchNormalization, residual Add/Sum and activation after it. Each case
 * runs the same model fused and with no_fusion and compares the outputs;
 * the plan text says what was fused; fusion is refused where an
 * intermediate has a second reader, is a graph output, or an observer or
 * keep_all needs every intermediate. */
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


/* Conv(x, W[m, c, k, k], B) with pads k/2 (and group) */
static pare_value *add_conv(pare_graph *g, const char *name, pare_value *x, int64_t c, int64_t m,
                            int64_t k, int64_t group, bool bias)
{
    char wn[64], bn[64], on[64];
    snprintf(wn, sizeof wn, "%s_w", name);
    snprintf(bn, sizeof bn, "%s_b", name);
    snprintf(on, sizeof on, "%s_out", name);
    int64_t wd[4] = {m, c / group, k, k}, bd[1] = {m};
    pare_value *ins[3] = {x, add_init(g, wn, 4, wd, -0.3f, 0.3f), NULL};
    if (bias)
        ins[2] = add_init(g, bn, 1, bd, -0.5f, 0.5f);
    pare_value *y = add_node(g, name, "Conv", ins, bias ? 3 : 2, on);
    pare_error err;
    int64_t pads[4] = {k / 2, k / 2, k / 2, k / 2};
    assert_int_equal(pare_node_set_attr_ints(last_node, "pads", pads, 4, &err), PARE_OK);
    if (group > 1)
        assert_int_equal(pare_node_set_attr_int(last_node, "group", group, &err), PARE_OK);
    return y;
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
    pare_value *y = add_node(g, name, "BatchNormalization", ins, 5, on);
    pare_error err;
    assert_int_equal(pare_node_set_attr_float(last_node, "epsilon", 1e-3f, &err), PARE_OK);
    return y;
}

/* x -> Conv -> BN -> Add(r) -> act -> y */
static void act_case(const char *act, int64_t opset)
{
    pare_model *m = new_model(opset);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {2, 8, 9, 9}, rd[4] = {2, 16, 9, 9};
    pare_value *x = add_input(g, "x", 4, xd), *r = add_input(g, "r", 4, rd);
    pare_value *c = add_conv(g, "conv", x, 8, 16, 3, 1, true);
    pare_value *bn = add_bn(g, "bn", c, 16);
    pare_value *s = add_node(g, "add", "Add", (pare_value *[]){r, bn}, 2, "s");
    pare_value *y;
    if (!strcmp(act, "Clip")) {
        pare_value *ci[3] = {s, add_scalar(g, "lo", -0.25f), add_scalar(g, "hi", 0.5f)};
        y = add_node(g, "act", "Clip", ci, 3, "y");
    } else {
        y = add_node(g, "act", act, &s, 1, "y");
        pare_error err;
        if (!strcmp(act, "LeakyRelu"))
            assert_int_equal(pare_node_set_attr_float(last_node, "alpha", 0.3f, &err), PARE_OK);
    }
    output(g, y);
    pare_tensor *in[2] = {rand_tensor("x", 4, xd, -1, 1), rand_tensor("r", 4, rd, -1, 1)};
    char line[64];
    snprintf(line, sizeof line, "%s fused into conv", act);
    const char *want[] = {"BatchNormalization fused into conv", "Add fused into conv", line, NULL};
    check_model(m, in, 2, 3, want);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_model_free(m);
}

static void test_conv_bn_add_act(void **state)
{
    (void)state;
    static const char *const acts[] = {"Relu",    "Clip", "LeakyRelu",  "Sigmoid",
                                       "Tanh",    "HardSigmoid", "HardSwish"};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        act_case(acts[i], 14);
}

/* Clip before opset 11 takes its bounds from attributes */
static void test_clip_attrs(void **state)
{
    (void)state;
    pare_model *m = new_model(9);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {1, 4, 7, 7};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *c = add_conv(g, "conv", x, 4, 6, 1, 1, false);
    pare_value *y = add_node(g, "clip", "Clip", &c, 1, "y");
    pare_error err;
    assert_int_equal(pare_node_set_attr_float(last_node, "min", 0.0f, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_float(last_node, "max", 0.1f, &err), PARE_OK);
    output(g, y);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    const char *want[] = {"Clip fused into conv", NULL};
    check_model(m, &in, 1, 1, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* resnet's shortcut: Sum(bn_a, bn_b) where conv_b runs after bn_a, with an
 * unrelated node between, at a size that takes the Winograd path; the sum
 * is fused into conv_b (its other operand is ready by then), conv_a keeps
 * its BN only */
static void test_resnet_shortcut(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {1, 32, 16, 16};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *a = add_bn(g, "bn_a", add_conv(g, "conv_a", x, 32, 32, 3, 1, false), 32);
    pare_value *b = add_bn(g, "bn_b", add_conv(g, "conv_b", x, 32, 32, 3, 1, false), 32);
    pare_value *side = add_node(g, "side", "Neg", &x, 1, "side");
    pare_value *s = add_node(g, "sum", "Sum", (pare_value *[]){a, b}, 2, "s");
    pare_value *y = add_node(g, "relu", "Relu", &s, 1, "y");
    output(g, y);
    output(g, side);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    const char *want[] = {"BatchNormalization fused into conv_a", "Sum fused into conv_b",
                          "Relu fused into conv_b", NULL};
    check_model(m, &in, 1, 4, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* depthwise and grouped convs take other paths of the kernel */
static void test_grouped(void **state)
{
    (void)state;
    pare_model *m = new_model(14);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {3, 8, 10, 10};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *d = add_conv(g, "dw", x, 8, 8, 3, 8, true);
    pare_value *r = add_node(g, "r1", "Relu", &d, 1, "r");
    pare_value *c = add_conv(g, "grp", r, 8, 12, 3, 2, true);
    pare_value *bn = add_bn(g, "bn", c, 12);
    pare_value *y = add_node(g, "hs", "HardSwish", &bn, 1, "y");
    output(g, y);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    const char *want[] = {"Relu fused into dw", "HardSwish fused into grp", NULL};
    check_model(m, &in, 1, 3, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* densenet's pattern: BN, then Mul and Add by per-channel constants (one
 * through Unsqueeze), then Relu; a Mul by a vector along the last axis is
 * not per channel and stops the chain */
static void test_channel_affine(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {2, 6, 5, 5}, cd[3] = {10, 1, 1}, vd[1] = {10}, ld[1] = {5};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *bn = add_bn(g, "bn", add_conv(g, "conv", x, 6, 10, 3, 1, true), 10);
    pare_value *mul = add_node(g, "mul", "Mul", (pare_value *[]){bn, add_init(g, "k", 3, cd, 0.5f, 2)},
                               2, "mul_out");
    pare_tensor *ax;
    pare_value *axv;
    pare_error err;
    int64_t one = 2;
    assert_int_equal(pare_tensor_new("axes", PARE_DT_INT64, 1, &one, &ax, &err), PARE_OK);
    ((int64_t *)ax->data)[0] = 1;
    ((int64_t *)ax->data)[1] = 2;
    assert_int_equal(pare_graph_add_initializer(g, ax, &axv, &err), PARE_OK);
    pare_value *u = add_node(g, "unsq", "Unsqueeze",
                             (pare_value *[]){add_init(g, "d", 1, vd, -1, 1), axv}, 2, "u");
    pare_value *add = add_node(g, "add", "Add", (pare_value *[]){u, mul}, 2, "add_out");
    pare_value *y = add_node(g, "relu", "Relu", &add, 1, "y");
    /* a second conv: Mul by [5] along the width is not per channel */
    pare_value *c2 = add_conv(g, "conv2", y, 10, 10, 1, 1, false);
    pare_value *m2 = add_node(g, "mul2", "Mul", (pare_value *[]){c2, add_init(g, "l", 1, ld, 0, 1)},
                              2, "m2");
    pare_value *y2 = add_node(g, "relu2", "Relu", &m2, 1, "y2");
    output(g, y2);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    const char *want[] = {"BatchNormalization fused into conv", "Mul fused into conv",
                          "Add fused into conv", "Relu fused into conv", NULL};
    check_model(m, &in, 1, 4, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* an intermediate with a second reader, or that is a graph output, stays */
static void test_refused(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {1, 4, 6, 6};
    pare_value *x = add_input(g, "x", 4, xd);
    /* conv1's output read twice: nothing fused into conv1 */
    pare_value *c1 = add_conv(g, "conv1", x, 4, 4, 3, 1, true);
    pare_value *r1 = add_node(g, "relu1", "Relu", &c1, 1, "r1");
    pare_value *n1 = add_node(g, "neg1", "Neg", &c1, 1, "n1");
    /* conv2's BN output is a graph output: BN fused, Relu not */
    pare_value *c2 = add_conv(g, "conv2", r1, 4, 4, 3, 1, true);
    pare_value *b2 = add_bn(g, "bn2", c2, 4);
    pare_value *r2 = add_node(g, "relu2", "Relu", &b2, 1, "r2");
    /* Add of a row along the width (broadcast): neither a residual nor per
     * channel; Relu is not reached through it either */
    int64_t bd[4] = {1, 1, 1, 6};
    pare_value *c3 = add_conv(g, "conv3", r2, 4, 4, 3, 1, true);
    pare_value *a3 = add_node(g, "add3", "Add", (pare_value *[]){c3, add_init(g, "k", 4, bd, 0, 1)},
                              2, "a3");
    pare_value *y = add_node(g, "relu3", "Relu", &a3, 1, "y");
    output(g, n1);
    output(g, b2);
    output(g, y);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    const char *want[] = {"BatchNormalization fused into conv2", NULL};
    check_model(m, &in, 1, 1, want);
    pare_tensor_free(in);
    pare_model_free(m);
}

static int n_seen;
static int seen_relu;
static int observe(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    (void)ctx;
    (void)output;
    (void)t;
    n_seen++;
    if (!strcmp(node->op_type, "Relu") || !strcmp(node->op_type, "BatchNormalization"))
        seen_relu++;
    return 0;
}

/* an observer sees every node (the session runs unfused while one is set);
 * keep_all and PARE_NO_FUSION turn fusion off */
static void test_observer_and_switches(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {1, 4, 6, 6};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *y = add_node(g, "relu", "Relu", (pare_value *[]){add_bn(g, "bn",
                                                 add_conv(g, "conv", x, 4, 4, 3, 1, true), 4)},
                             1, "y");
    output(g, y);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_session *s;
    pare_error err;
    pare_tensor **o1, **o2;
    size_t n1, n2;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    char *plan = pare_session_plan_text(s);
    assert_int_equal(count_str(plan, " fused into conv"), 2);
    free(plan);
    assert_int_equal(pare_session_run(s, &in, 1, &o1, &n1, &err), PARE_OK);
    pare_session_set_observer(s, observe, NULL);
    n_seen = seen_relu = 0;
    assert_int_equal(pare_session_run(s, &in, 1, &o2, &n2, &err), PARE_OK);
    assert_int_equal(n_seen, 3);
    assert_int_equal(seen_relu, 2);
    for (uint64_t i = 0; i < pare_tensor_numel(o1[0]); i++)
        assert_float_equal(((float *)o1[0]->data)[i], ((float *)o2[0]->data)[i], 1e-5);
    pare_tensors_free(o2, n2);
    /* observer removed: fused again, same result */
    pare_session_set_observer(s, NULL, NULL);
    n_seen = 0;
    assert_int_equal(pare_session_run(s, &in, 1, &o2, &n2, &err), PARE_OK);
    assert_int_equal(n_seen, 0);
    for (uint64_t i = 0; i < pare_tensor_numel(o1[0]); i++)
        assert_float_equal(((float *)o1[0]->data)[i], ((float *)o2[0]->data)[i], 1e-5);
    pare_tensors_free(o1, n1);
    pare_tensors_free(o2, n2);
    pare_session_free(s);

    so.keep_all = true;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    plan = pare_session_plan_text(s);
    assert_int_equal(count_str(plan, " fused into "), 0);
    free(plan);
    pare_session_free(s);

    so.keep_all = false;
    setenv("PARE_NO_FUSION", "1", 1);
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    unsetenv("PARE_NO_FUSION");
    plan = pare_session_plan_text(s);
    assert_int_equal(count_str(plan, " fused into "), 0);
    free(plan);
    pare_session_free(s);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* opts.profile: one entry per node in run order plus the copies row; the
 * absorbed nodes name the Conv that computes them and have no time; the
 * times add up over runs and reset to zero; a session without profile has
 * none */
static void test_profile(void **state)
{
    (void)state;
    pare_model *m = new_model(14);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {1, 8, 9, 9};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_value *c = add_conv(g, "conv", x, 8, 16, 3, 1, true);
    pare_value *bn = add_bn(g, "bn", c, 16);
    pare_value *y = add_node(g, "relu", "Relu", &bn, 1, "y");
    output(g, y);
    pare_tensor *in = rand_tensor("x", 4, xd, -1, 1);
    pare_error err;
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    o.threads = 1;
    pare_session *s;
    const pare_node_profile *pf;
    assert_int_equal(pare_session_new(m, &o, &s, &err), PARE_OK);
    pare_tensor **outs;
    size_t n_outs;
    assert_int_equal(pare_session_run(s, &in, 1, &outs, &n_outs, &err), PARE_OK);
    pare_tensors_free(outs, n_outs);
    assert_int_equal(pare_session_profile(s, &pf), 0); /* not asked for */
    pare_session_free(s);

    o.profile = true;
    assert_int_equal(pare_session_new(m, &o, &s, &err), PARE_OK);
    assert_int_equal(pare_session_profile(s, &pf), 0); /* before a run */
    for (int r = 0; r < 3; r++) {
        assert_int_equal(pare_session_run(s, &in, 1, &outs, &n_outs, &err), PARE_OK);
        pare_tensors_free(outs, n_outs);
    }
    size_t n = pare_session_profile(s, &pf);
    assert_int_equal(n, 4);
    assert_string_equal(pf[0].node->name, "conv");
    assert_string_equal(pf[0].backend, "cpu");
    assert_null(pf[0].fused_into);
    assert_int_equal(pf[0].runs, 3);
    assert_true(pf[0].ms > 0);
    for (int i = 1; i <= 2; i++) { /* bn, relu: fused into conv */
        assert_non_null(pf[i].node);
        assert_ptr_equal(pf[i].fused_into, pf[0].node);
        assert_int_equal(pf[i].runs, 0);
        assert_true(pf[i].ms == 0);
    }
    assert_null(pf[3].node); /* copies: none on the CPU */
    assert_int_equal(pf[3].runs, 3);
    pare_session_profile_reset(s);
    assert_int_equal(pare_session_profile(s, &pf), 4);
    assert_true(pf[0].ms == 0 && pf[0].runs == 0);
    assert_int_equal(pare_session_run(s, &in, 1, &outs, &n_outs, &err), PARE_OK);
    pare_tensors_free(outs, n_outs);
    assert_int_equal(pf[0].runs, 1);
    pare_session_free(s);
    pare_tensor_free(in);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_add_act),
        cmocka_unit_test(test_clip_attrs),
        cmocka_unit_test(test_resnet_shortcut),
        cmocka_unit_test(test_grouped),
        cmocka_unit_test(test_channel_affine),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_observer_and_switches),
        cmocka_unit_test(test_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
