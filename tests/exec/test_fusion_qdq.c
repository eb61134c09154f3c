/* QDQ fusion in the executor: DequantizeLinear(x_q), DequantizeLinear(w_q)
 * -> Conv / MatMul / Gemm [-> Relu] -> QuantizeLinear run as one 8-bit
 * kernel (lib/exec/kernels_qfused.c). Each case runs the same model fused
 * and with no_fusion: the quantized outputs must agree exactly except for
 * rare 1-step differences where the float graph's rounding lands on the
 * other side of a rounding boundary; the plan says what was fused. Cases
 * the integer kernel cannot reproduce (a weight zero point, a per-channel
 * x scale) must stay unfused. */
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
#include "exec/kernel.h"
#include "exec/qgemm.h"

/* an initializer of dtype dt with random integers in [lo, hi] */
static pare_value *add_ints(pare_graph *g, const char *name, int dt, int rank,
                            const int64_t *dims, int lo, int hi)
{
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dt, rank, dims, &t, &err), PARE_OK);
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++) {
        int r = lo + (int)((frand() + 1.0f) * 0.5f * (float)(hi - lo + 1));
        r = r > hi ? hi : r;
        if (dt == PARE_DT_INT8)
            ((int8_t *)t->data)[i] = (int8_t)r;
        else if (dt == PARE_DT_UINT8)
            ((uint8_t *)t->data)[i] = (uint8_t)r;
        else
            ((int32_t *)t->data)[i] = r;
    }
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

/* a scalar initializer of dtype dt */
static pare_value *add_const(pare_graph *g, const char *name, int dt, double val)
{
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dt, 0, NULL, &t, &err), PARE_OK);
    if (dt == PARE_DT_FLOAT)
        *(float *)t->data = (float)val;
    else if (dt == PARE_DT_INT8)
        *(int8_t *)t->data = (int8_t)val;
    else if (dt == PARE_DT_UINT8)
        *(uint8_t *)t->data = (uint8_t)val;
    else
        *(int32_t *)t->data = (int32_t)val;
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

static pare_value *qdq(pare_graph *g, const char *name, const char *op, pare_value *x,
                       pare_value *s, pare_value *z, int64_t axis)
{
    pare_value *ins[3] = {x, s, z};
    pare_value *y = add_node(g, name, op, ins, z ? 3 : 2, name);
    if (axis != 1) {
        pare_error err;
        assert_int_equal(pare_node_set_attr_int(last_node, "axis", axis, &err), PARE_OK);
    }
    return y;
}

typedef struct qcase {
    const char *op;       /* Conv, MatMul, Gemm */
    int xdt, ydt;         /* activation types */
    int64_t n, c, h, w;   /* x: [n, c, h, w] (w = 0: 1-D conv of length h; MatMul: [n, h, c]) */
    int64_t m, k;         /* output channels, kernel size */
    int64_t stride, dil, group, pad;
    bool per_channel, relu, bias_q, bias_f, wzp_nonzero, trans_b, shared, same_upper;
} qcase;

/* x (float) -> Q -> DQ -> op(DQ(w) [, bias]) [-> Relu] -> Q -> y (graph output,
 * 8-bit) */
static pare_model *build(const qcase *q, pare_tensor **xin)
{
    pare_model *m = new_model(19);
    pare_graph *g = pare_model_graph(m);
    bool conv = !strcmp(q->op, "Conv"), gemm = !strcmp(q->op, "Gemm");
    int64_t xd[4] = {q->n, q->c, q->h, q->w};
    int xr = conv ? (q->w ? 4 : 3) : 3;
    if (!conv) {
        xd[1] = q->h;
        xd[2] = q->c;
        xr = gemm ? 2 : 3;
        if (gemm)
            xd[1] = q->c;
    }
    pare_value *x = add_input(g, "x", xr, xd);
    *xin = rand_tensor("x", xr, xd, -1.0f, 1.0f);
    double xs = 2.0 / 255;
    pare_value *xs_v = add_const(g, "xs", PARE_DT_FLOAT, xs);
    pare_value *xz_v = add_const(g, "xz", q->xdt, q->xdt == PARE_DT_UINT8 ? 128 : 3);
    pare_value *xq = qdq(g, "x_q", "QuantizeLinear", x, xs_v, xz_v, 1);
    pare_value *xf = qdq(g, "x_dq", "DequantizeLinear", xq, xs_v, xz_v, 1);
    /* weights */
    int64_t kin = conv ? q->c / q->group : q->c;
    int64_t wd[4] = {q->m, kin, q->k, q->k};
    int wr = conv ? (q->w ? 4 : 3) : 2;
    int64_t waxis = conv ? 0 : 1;
    if (!conv) {
        wd[0] = q->trans_b ? q->m : q->c;
        wd[1] = q->trans_b ? q->c : q->m;
        waxis = q->trans_b ? 0 : 1;
    }
    pare_value *wq = add_ints(g, "w_q", PARE_DT_INT8, wr, wd, -127, 127);
    int64_t sd[1] = {q->m};
    pare_value *ws = q->per_channel ? add_init(g, "ws", 1, sd, 0.002f, 0.006f)
                                    : add_const(g, "ws", PARE_DT_FLOAT, 0.004);
    pare_value *wz = NULL;
    if (q->wzp_nonzero) {
        pare_tensor *t;
        pare_error err;
        assert_int_equal(pare_tensor_new("wz", PARE_DT_INT8, q->per_channel ? 1 : 0, sd, &t, &err),
                         PARE_OK);
        memset(t->data, 2, (size_t)pare_tensor_numel(t));
        assert_int_equal(pare_graph_add_initializer(g, t, &wz, &err), PARE_OK);
    }
    pare_value *wf = qdq(g, "w_dq", "DequantizeLinear", wq, ws, wz, waxis);
    pare_value *ins[3] = {xf, wf, NULL};
    size_t nin = 2;
    if (q->bias_q) {
        pare_value *bq = add_ints(g, "b_q", PARE_DT_INT32, 1, sd, -3000, 3000);
        pare_value *bs = q->per_channel ? add_init(g, "bs", 1, sd, 0.00001f, 0.00002f)
                                        : add_const(g, "bs", PARE_DT_FLOAT, 0.000015);
        ins[2] = qdq(g, "b_dq", "DequantizeLinear", bq, bs, NULL, 0);
        nin = 3;
    } else if (q->bias_f) {
        ins[2] = add_init(g, "b_f", 1, sd, -0.2f, 0.2f);
        nin = 3;
    }
    pare_value *y = add_node(g, "op", q->op, ins, nin, "op_out");
    pare_error err;
    if (conv) {
        int nd = q->w ? 2 : 1;
        int64_t st[2] = {q->stride, q->stride}, dl[2] = {q->dil, q->dil},
                pads[4] = {q->pad, q->pad, q->pad, q->pad};
        assert_int_equal(pare_node_set_attr_ints(last_node, "strides", st, nd, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_ints(last_node, "dilations", dl, nd, &err), PARE_OK);
        if (q->same_upper)
            assert_int_equal(pare_node_set_attr_string(last_node, "auto_pad", "SAME_UPPER", &err),
                             PARE_OK);
        else
            assert_int_equal(pare_node_set_attr_ints(last_node, "pads", pads, 2 * nd, &err),
                             PARE_OK);
        if (q->group > 1)
            assert_int_equal(pare_node_set_attr_int(last_node, "group", q->group, &err), PARE_OK);
    }
    if (gemm && q->trans_b)
        assert_int_equal(pare_node_set_attr_int(last_node, "transB", 1, &err), PARE_OK);
    pare_node *opn = last_node;
    if (q->relu)
        y = add_node(g, "relu", "Relu", &y, 1, "relu_out");
    /* output scale: x (std 0.58) times w (std 0.29) summed over K: std
     * 0.17 sqrt(K), +-3 std over 255 steps */
    double K = (double)kin * (conv ? q->k * (q->w ? q->k : 1) : 1);
    double ys = 0.004 * sqrt(K);
    pare_value *ys_v = add_const(g, "ys", PARE_DT_FLOAT, ys);
    pare_value *yz_v = add_const(g, "yz", q->ydt,
                                 q->ydt == PARE_DT_INT8 ? 5 : q->relu ? 0 : 128);
    pare_value *yq = qdq(g, "y_q", "QuantizeLinear", y, ys_v, yz_v, 1);
    output(g, yq);
    if (q->shared) {
        /* a second op reading the same DequantizeLinear(x_q) */
        pare_value *wq2 = add_ints(g, "w2_q", PARE_DT_INT8, wr, wd, -127, 127);
        pare_value *wf2 = qdq(g, "w2_dq", "DequantizeLinear", wq2, ws, NULL, waxis);
        pare_value *i2[3] = {xf, wf2, NULL};
        pare_value *y2 = add_node(g, "op2", q->op, i2, 2, "op2_out");
        for (size_t a = 0; a < opn->n_attrs; a++)
            if (opn->attrs[a].type == PARE_ATTR_INTS)
                assert_int_equal(pare_node_set_attr_ints(last_node, opn->attrs[a].name,
                                                         opn->attrs[a].ints, opn->attrs[a].n, &err),
                                 PARE_OK);
            else if (opn->attrs[a].type == PARE_ATTR_INT)
                assert_int_equal(pare_node_set_attr_int(last_node, opn->attrs[a].name,
                                                        opn->attrs[a].i, &err),
                                 PARE_OK);
        output(g, qdq(g, "y2_q", "QuantizeLinear", y2, ys_v, yz_v, 1));
    }
    return m;
}

/* fused and unfused outputs (8-bit): equal but for rare 1-step differences */
static void compare_runs(const qcase *q, int want_fused, const char *const *want)
{
    pare_tensor *x;
    pare_model *m = build(q, &x);
    size_t na, nb;
    char *plan = NULL, *plan0 = NULL;
    pare_tensor **a = run(m, false, &x, 1, &na, &plan);
    pare_tensor **b = run(m, true, &x, 1, &nb, &plan0);
    if (count_str(plan, "8-bit QDQ kernel") != want_fused)
        fail_msg("want %d fused QDQ nodes, plan:\n%s", want_fused, plan);
    assert_int_equal(count_str(plan0, "8-bit QDQ kernel"), 0);
    for (size_t i = 0; want && want[i]; i++)
        if (!strstr(plan, want[i]))
            fail_msg("'%s' not in the plan:\n%s", want[i], plan);
    assert_int_equal(na, nb);
    for (size_t o = 0; o < na; o++) {
        assert_int_equal(a[o]->dtype, q->ydt);
        assert_int_equal(a[o]->rank, b[o]->rank);
        for (int d = 0; d < a[o]->rank; d++)
            assert_int_equal(a[o]->dims[d], b[o]->dims[d]);
        uint64_t n = pare_tensor_numel(a[o]), off = 0, lo = 0, hi = 0;
        for (uint64_t i = 0; i < n; i++) {
            int va = q->ydt == PARE_DT_UINT8 ? ((uint8_t *)a[o]->data)[i]
                                             : ((int8_t *)a[o]->data)[i];
            int vb = q->ydt == PARE_DT_UINT8 ? ((uint8_t *)b[o]->data)[i]
                                             : ((int8_t *)b[o]->data)[i];
            if (abs(va - vb) > 1)
                fail_msg("output %zu element %llu: fused %d, unfused %d", o,
                         (unsigned long long)i, va, vb);
            off += va != vb;
            lo += !q->relu && vb == (q->ydt == PARE_DT_UINT8 ? 0 : -128); /* Relu: 0 is no clamp */
            hi += vb == (q->ydt == PARE_DT_UINT8 ? 255 : 127);
        }
        if (off * 100 > n)
            fail_msg("output %zu: %llu of %llu elements differ", o, (unsigned long long)off,
                     (unsigned long long)n);
        /* the case is meaningful: most outputs are inside the range */
        if ((lo + hi) * 2 > n)
            fail_msg("output %zu: %llu of %llu saturated", o, (unsigned long long)(lo + hi),
                     (unsigned long long)n);
    }
    pare_tensors_free(a, na);
    pare_tensors_free(b, nb);
    pare_tensor_free(x);
    free(plan);
    free(plan0);
    pare_model_free(m);
}

static const char *const fused_conv[] = {"8-bit QDQ kernel: reads x_q, writes y_q",
                                         "QuantizeLinear fused into op",
                                         "DequantizeLinear fused into op", NULL};

static void test_conv_3x3_relu(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_UINT8, PARE_DT_UINT8, 2, 8, 9, 9, 20, 3, 1, 1, 1, 1,
               true, true, true, false, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
    const char *const relu[] = {"Relu fused into op", NULL};
    compare_runs(&q, 1, relu);
}

/* int8 activations with a zero point, group 2, stride 2, 5x5, float bias */
static void test_conv_int8_group_stride(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_INT8, PARE_DT_INT8, 2, 6, 11, 13, 16, 5, 2, 1, 2, 2,
               false, false, false, true, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
    q.dil = 2; /* dilated 5x5 on 11x13 with pads 2 */
    q.stride = 1;
    q.pad = 4;
    compare_runs(&q, 1, NULL);
}

/* 1x1 stride 1: im2col rows read in place; K = 13 (not a multiple of 4);
 * 21 x 20 = 420 output pixels (several panels); one image (the M split) */
static void test_conv_1x1_panels(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_UINT8, PARE_DT_UINT8, 1, 13, 21, 20, 40, 1, 1, 1, 1, 0,
               true, false, true, false, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
    q.n = 3;
    q.same_upper = true;
    q.k = 3;
    q.stride = 2;
    compare_runs(&q, 1, NULL); /* im2col panels packed once up front (M split) */
    q.n = 2;
    q.h = q.w = 40;
    compare_runs(&q, 1, NULL); /* 400 outputs per image: each item packs its own panel */
}

static void test_conv_1d(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_UINT8, PARE_DT_UINT8, 2, 7, 30, 0, 9, 3, 1, 1, 1, 1,
               true, true, true, false, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
}

static void test_matmul(void **st)
{
    (void)st;
    qcase q = {"MatMul", PARE_DT_UINT8, PARE_DT_INT8, 2, 37, 5, 0, 29, 1, 1, 1, 1, 0,
               true, false, false, false, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
    q.h = 70; /* 140 rows: two panels, packed up front (M split) */
    q.xdt = PARE_DT_INT8;
    compare_runs(&q, 1, NULL);
    q.h = 600; /* 1200 rows: each item packs its own panel */
    compare_runs(&q, 1, NULL);
}

static void test_gemm(void **st)
{
    (void)st;
    qcase q = {"Gemm", PARE_DT_UINT8, PARE_DT_UINT8, 6, 50, 0, 0, 10, 1, 1, 1, 1, 0,
               true, false, true, false, false, true, false, false};
    compare_runs(&q, 1, fused_conv);
    q.trans_b = false;
    q.bias_q = false;
    q.bias_f = true;
    q.relu = true;
    compare_runs(&q, 1, NULL);
}

/* one DequantizeLinear(x_q) read by two convolutions: both fuse and the
 * DequantizeLinear has nothing left to do */
static void test_shared_input(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_UINT8, PARE_DT_UINT8, 2, 8, 9, 9, 12, 3, 1, 1, 1, 1,
               true, true, false, false, false, false, true, false};
    const char *const want[] = {"x_dq", "DequantizeLinear fused into op", NULL};
    compare_runs(&q, 2, want);
}

/* Runs m fused and unfused on in[0..1]: `want` is in the plan want_n
 * times, the single outputs (of dtype dt) are equal bit for bit. Returns
 * the fused output (pare_tensors_free(out, 1)); frees in and m. */
static pare_tensor **run_pair_exact(pare_model *m, pare_tensor **in, const char *want, int want_n,
                                    int dt)
{
    size_t na, nb;
    char *plan = NULL;
    pare_tensor **ra = run(m, false, in, 2, &na, &plan);
    pare_tensor **rb = run(m, true, in, 2, &nb, NULL);
    if (count_str(plan, want) != want_n)
        fail_msg("want '%s' %d times, plan:\n%s", want, want_n, plan);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_int_equal(ra[0]->dtype, dt);
    assert_int_equal(ra[0]->rank, rb[0]->rank);
    for (int d = 0; d < ra[0]->rank; d++)
        assert_int_equal(ra[0]->dims[d], rb[0]->dims[d]);
    assert_memory_equal(ra[0]->data, rb[0]->data, (size_t)pare_tensor_numel(ra[0]));
    pare_tensors_free(rb, nb);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    free(plan);
    pare_model_free(m);
    return ra;
}

/* DequantizeLinear(a_q) + DequantizeLinear(b_q) [-> Relu] -> QuantizeLinear:
 * the same float operations in the same order, so the same bits; a
 * broadcasting Add stays unfused */
static void add_case(const char *op, int adt, int bdt, int ydt, bool relu, bool broadcast)
{
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t ad[4] = {2, 3, 17, 19}, bd[4] = {2, 3, 17, broadcast ? 1 : 19};
    pare_value *a = add_input(g, "a", 4, ad), *b = add_input(g, "b", 4, bd);
    pare_tensor *in[2] = {rand_tensor("a", 4, ad, -1.0f, 1.0f), rand_tensor("b", 4, bd, -2.0f, 2.0f)};
    pare_value *as = add_const(g, "as", PARE_DT_FLOAT, 2.0 / 255),
               *az = add_const(g, "az", adt, adt == PARE_DT_UINT8 ? 127 : -3),
               *bs = add_const(g, "bs", PARE_DT_FLOAT, 4.0 / 253),
               *bz = add_const(g, "bz", bdt, bdt == PARE_DT_UINT8 ? 130 : 2),
               *ys = add_const(g, "ys", PARE_DT_FLOAT, 5.0 / 255),
               *yz = add_const(g, "yz", ydt, ydt == PARE_DT_UINT8 ? (relu ? 0 : 128) : 0);
    pare_value *af = qdq(g, "a_dq", "DequantizeLinear", qdq(g, "a_q", "QuantizeLinear", a, as, az, 1),
                         as, az, 1);
    pare_value *bf = qdq(g, "b_dq", "DequantizeLinear", qdq(g, "b_q", "QuantizeLinear", b, bs, bz, 1),
                         bs, bz, 1);
    pare_value *y = add_node(g, "op", op, (pare_value *[]){af, bf}, 2, "op_out");
    if (relu)
        y = add_node(g, "relu", "Relu", &y, 1, "relu_out");
    output(g, qdq(g, "y_q", "QuantizeLinear", y, ys, yz, 1));
    pare_tensor **ra = run_pair_exact(m, in, "8-bit QDQ kernel: reads a_q and b_q, writes y_q",
                                      !broadcast, ydt);
    /* not all at one end */
    uint64_t n = pare_tensor_numel(ra[0]), ends = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t v = ((uint8_t *)ra[0]->data)[i];
        ends += ydt == PARE_DT_UINT8 ? v == 255 || (!relu && v == 0) : v == 0x7f || v == 0x80;
    }
    assert_true(ends * 4 < n);
    pare_tensors_free(ra, 1);
}

static void test_add(void **st)
{
    (void)st;
    add_case("Add", PARE_DT_UINT8, PARE_DT_UINT8, PARE_DT_UINT8, true, false);
    add_case("Sum", PARE_DT_INT8, PARE_DT_UINT8, PARE_DT_INT8, false, false);
    add_case("Add", PARE_DT_UINT8, PARE_DT_INT8, PARE_DT_UINT8, false, true);
    add_case("Add", PARE_DT_UINT8, PARE_DT_INT8, PARE_DT_INT8, true, false); /* Relu below zy */
}

/* DequantizeLinear -> BatchNormalization [-> Relu] -> QuantizeLinear (a
 * DenseNet's pre-activation): the unfused nodes' float operations, so the
 * same bits; width 45 leaves a scalar tail after every vector loop */
static void bn_case(int xdt, int ydt, bool relu, bool chain)
{
    pare_model *m = new_model(15);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {2, 6, 3, 45}, cd[1] = {6};
    pare_value *x = add_input(g, "x", 4, xd);
    pare_tensor *in[1] = {rand_tensor("x", 4, xd, -1.0f, 1.0f)};
    pare_value *xs = add_const(g, "xs", PARE_DT_FLOAT, 2.0 / 255),
               *xz = add_const(g, "xz", xdt, xdt == PARE_DT_UINT8 ? 120 : -4),
               *ys = add_const(g, "ys", PARE_DT_FLOAT, 8.0 / 255),
               *yz = add_const(g, "yz", ydt, ydt == PARE_DT_UINT8 ? (relu ? 0 : 128) : 0);
    pare_value *xf = qdq(g, "x_dq", "DequantizeLinear", qdq(g, "x_q", "QuantizeLinear", x, xs, xz, 1),
                         xs, xz, 1);
    pare_value *bi[5] = {xf, add_init(g, "s", 1, cd, 0.5f, 1.5f), add_init(g, "b", 1, cd, -0.5f, 0.5f),
                         add_init(g, "mu", 1, cd, -0.2f, 0.2f), add_init(g, "var", 1, cd, 0.3f, 1.2f)};
    pare_value *y = add_node(g, "bn", "BatchNormalization", bi, 5, "bn_out");
    pare_error err;
    assert_int_equal(pare_node_set_attr_float(last_node, "epsilon", 1e-3f, &err), PARE_OK);
    if (chain) { /* DenseNet's: Mul and Add by per-channel constants after it */
        int64_t c3[3] = {6, 1, 1}, c4[4] = {1, 6, 1, 1};
        y = add_node(g, "mul", "Mul", (pare_value *[]){y, add_init(g, "ms", 4, c4, 0.5f, 1.2f)}, 2,
                     "mul_out");
        y = add_node(g, "add", "Add", (pare_value *[]){add_init(g, "as", 3, c3, -0.3f, 0.3f), y}, 2,
                     "add_out");
    }
    if (relu)
        y = add_node(g, "relu", "Relu", &y, 1, "relu_out");
    output(g, qdq(g, "y_q", "QuantizeLinear", y, ys, yz, 1));
    size_t na, nb;
    char *plan = NULL;
    pare_tensor **ra = run(m, false, in, 1, &na, &plan);
    pare_tensor **rb = run(m, true, in, 1, &nb, NULL);
    if (count_str(plan, "8-bit QDQ kernel: reads x_q, writes y_q") != 1)
        fail_msg("plan:\n%s", plan);
    assert_int_equal(ra[0]->dtype, ydt);
    uint64_t n = pare_tensor_numel(ra[0]), ends = 0, zeros = 0, off = 0;
    if (!chain) {
        assert_memory_equal(ra[0]->data, rb[0]->data, (size_t)n);
    } else { /* Mul and Add composed in double: one step at rounding boundaries */
        for (uint64_t i = 0; i < n; i++) {
            int a = ydt == PARE_DT_UINT8 ? ((uint8_t *)ra[0]->data)[i] : ((int8_t *)ra[0]->data)[i];
            int b = ydt == PARE_DT_UINT8 ? ((uint8_t *)rb[0]->data)[i] : ((int8_t *)rb[0]->data)[i];
            assert_true(abs(a - b) <= 1);
            off += a != b;
        }
        assert_true(off * 50 < n);
    }
    /* not all at one end, and the Relu cuts something when there is one */
    for (uint64_t i = 0; i < n; i++) {
        int v = ydt == PARE_DT_UINT8 ? ((uint8_t *)ra[0]->data)[i] : ((int8_t *)ra[0]->data)[i];
        int z = ydt == PARE_DT_UINT8 ? (relu ? 0 : 128) : 0;
        ends += ydt == PARE_DT_UINT8 ? v == 255 || (!relu && v == 0) : v == 127 || v == -128;
        zeros += v == z;
    }
    if (ends * 4 >= n || (relu && zeros * 5 <= n))
        fail_msg("%llu of %llu at an end, %llu zeros", (unsigned long long)ends,
                 (unsigned long long)n, (unsigned long long)zeros);
    pare_tensors_free(ra, na);
    pare_tensors_free(rb, nb);
    pare_tensor_free(in[0]);
    free(plan);
    pare_model_free(m);
}

static void test_bn(void **st)
{
    (void)st;
    bn_case(PARE_DT_UINT8, PARE_DT_UINT8, true, false);
    bn_case(PARE_DT_INT8, PARE_DT_INT8, false, false);
    bn_case(PARE_DT_UINT8, PARE_DT_INT8, true, false); /* Relu below y's zero point */
    bn_case(PARE_DT_UINT8, PARE_DT_UINT8, true, true);
    bn_case(PARE_DT_INT8, PARE_DT_INT8, false, true);
}

/* DequantizeLinear -> MaxPool / Concat / Reshape / Transpose ->
 * QuantizeLinear with one scale and zero point on every side: the op runs
 * on the 8-bit data, bit for bit what the unfused nodes give; other
 * parameters on the QuantizeLinear keep the nodes as they are */
static void move_case(const char *op, int dt, bool same_params)
{
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    int64_t xd[4] = {2, 5, 13, 45}; /* MaxPool rows wide enough for 16 outputs at a time */
    pare_value *x = add_input(g, "x", 4, xd), *x2 = add_input(g, "x2", 4, xd);
    pare_tensor *in[2] = {rand_tensor("x", 4, xd, -1.0f, 1.0f), rand_tensor("x2", 4, xd, -1.0f, 1.0f)};
    pare_value *s = add_const(g, "s", PARE_DT_FLOAT, 2.0 / 255),
               *z = add_const(g, "z", dt, dt == PARE_DT_UINT8 ? 128 : 1),
               *s2 = add_const(g, "s2", PARE_DT_FLOAT, same_params ? 2.0 / 255 : 2.5 / 255);
    pare_value *a = qdq(g, "a_dq", "DequantizeLinear", qdq(g, "a_q", "QuantizeLinear", x, s, z, 1),
                        s, z, 1);
    pare_value *b = qdq(g, "b_dq", "DequantizeLinear", qdq(g, "b_q", "QuantizeLinear", x2, s, z, 1),
                        s, z, 1);
    pare_error err;
    pare_value *y;
    if (!strcmp(op, "Concat")) {
        y = add_node(g, "op", "Concat", (pare_value *[]){a, b}, 2, "op_out");
        assert_int_equal(pare_node_set_attr_int(last_node, "axis", 1, &err), PARE_OK);
    } else if (!strcmp(op, "Reshape")) {
        pare_tensor *t;
        pare_value *sh;
        int64_t d1[1] = {2};
        assert_int_equal(pare_tensor_new("shape", PARE_DT_INT64, 1, d1, &t, &err), PARE_OK);
        ((int64_t *)t->data)[0] = 10;
        ((int64_t *)t->data)[1] = -1;
        assert_int_equal(pare_graph_add_initializer(g, t, &sh, &err), PARE_OK);
        y = add_node(g, "op", "Reshape", (pare_value *[]){a, sh}, 2, "op_out");
    } else if (!strcmp(op, "Transpose")) {
        y = add_node(g, "op", "Transpose", &a, 1, "op_out");
        int64_t perm[4] = {0, 2, 3, 1};
        assert_int_equal(pare_node_set_attr_ints(last_node, "perm", perm, 4, &err), PARE_OK);
    } else {
        y = add_node(g, "op", "MaxPool", &a, 1, "op_out");
        int64_t k[2] = {3, 3}, st[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
        assert_int_equal(pare_node_set_attr_ints(last_node, "kernel_shape", k, 2, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_ints(last_node, "strides", st, 2, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_ints(last_node, "pads", pads, 4, &err), PARE_OK);
    }
    output(g, qdq(g, "y_q", "QuantizeLinear", y, s2, z, 1));
    const char *want = !strcmp(op, "Concat") ? "8-bit QDQ kernel: reads a_q and b_q, writes y_q"
                                             : "8-bit QDQ kernel: reads a_q, writes y_q";
    pare_tensors_free(run_pair_exact(m, in, want, same_params, dt), 1);
}

static void test_move_ops(void **st)
{
    (void)st;
    const char *ops[] = {"MaxPool", "Concat", "Reshape", "Transpose"};
    for (int o = 0; o < 4; o++) {
        move_case(ops[o], PARE_DT_UINT8, true);
        move_case(ops[o], PARE_DT_INT8, true);
        move_case(ops[o], PARE_DT_UINT8, false);
    }
}

/* no QuantizeLinear after the op: the fused node writes the float result
 * (a MatMul's bias Add and a Relu absorbed), equal to the unfused float
 * graph within float rounding */
static void float_case(const char *op, bool bias_add, bool relu, int xdt)
{
    pare_model *m = new_model(13);
    pare_graph *g = pare_model_graph(m);
    bool conv = !strcmp(op, "Conv");
    int64_t xd[4] = {2, 6, 9, 40}, K = conv ? 6 * 9 : 40, N = 23;
    int xr = conv ? 4 : 3;
    if (!conv)
        xd[2] = 40;
    pare_value *x = add_input(g, "x", xr, xd);
    pare_tensor *in[2] = {rand_tensor("x", xr, xd, -1.0f, 1.0f), NULL};
    pare_value *s = add_const(g, "s", PARE_DT_FLOAT, 2.0 / 255),
               *z = add_const(g, "z", xdt, xdt == PARE_DT_UINT8 ? 120 : -4);
    pare_value *xf = qdq(g, "x_dq", "DequantizeLinear", qdq(g, "x_q", "QuantizeLinear", x, s, z, 1),
                         s, z, 1);
    int64_t wd[4] = {N, 6, 3, 3}, nd[1] = {N};
    if (!conv) {
        wd[0] = 40;
        wd[1] = N;
    }
    pare_value *wf = qdq(g, "w_dq", "DequantizeLinear",
                         add_ints(g, "w_q", PARE_DT_INT8, conv ? 4 : 2, wd, -127, 127),
                         add_init(g, "ws", 1, nd, 0.002f, 0.004f), NULL, conv ? 0 : 1);
    pare_value *ins[3] = {xf, wf, conv ? add_init(g, "b", 1, nd, -0.3f, 0.3f) : NULL};
    pare_value *y = add_node(g, "op", op, ins, conv ? 3 : 2, "op_out");
    if (bias_add)
        y = add_node(g, "bias", "Add", (pare_value *[]){y, add_init(g, "bv", 1, nd, -0.3f, 0.3f)}, 2,
                     "bias_out");
    if (relu)
        y = add_node(g, "relu", "Relu", &y, 1, "relu_out");
    output(g, y);
    size_t na, nb;
    char *plan = NULL;
    pare_tensor **ra = run(m, false, in, 1, &na, &plan);
    pare_tensor **rb = run(m, true, in, 1, &nb, NULL);
    char want[200];
    snprintf(want, sizeof want, "8-bit QDQ kernel: reads x_q, writes %s",
             relu ? "relu_out" : bias_add ? "bias_out" : "op_out");
    if (count_str(plan, want) != 1)
        fail_msg("plan:\n%s", plan);
    assert_int_equal(ra[0]->dtype, PARE_DT_FLOAT);
    assert_int_equal(pare_tensor_numel(ra[0]), pare_tensor_numel(rb[0]));
    const float *fa = ra[0]->data, *fb = rb[0]->data;
    double worst = 0, mag = 0;
    uint64_t zeros = 0;
    for (uint64_t i = 0; i < pare_tensor_numel(ra[0]); i++) {
        worst = fmax(worst, fabs((double)fa[i] - fb[i]));
        mag = fmax(mag, fabs(fb[i]));
        zeros += fa[i] == 0;
    }
    /* K terms of about 1 * 0.4 in float: the unfused sum's rounding */
    if (worst > 1e-6 * (double)K * mag || mag < 0.5)
        fail_msg("%s: fused differs by %g (max |y| %g)", op, worst, mag);
    if (relu && (!zeros || zeros == pare_tensor_numel(ra[0])))
        fail_msg("%s: Relu left %llu zeros", op, (unsigned long long)zeros);
    pare_tensors_free(ra, na);
    pare_tensors_free(rb, nb);
    pare_tensor_free(in[0]);
    free(plan);
    pare_model_free(m);
}

static void test_float_out(void **st)
{
    (void)st;
    float_case("MatMul", true, false, PARE_DT_UINT8);
    float_case("MatMul", true, true, PARE_DT_INT8);
    float_case("MatMul", false, false, PARE_DT_UINT8);
    float_case("Conv", false, true, PARE_DT_UINT8);
}

/* what the integer kernel cannot reproduce stays as it is */
static void test_refused(void **st)
{
    (void)st;
    qcase q = {"Conv", PARE_DT_UINT8, PARE_DT_UINT8, 2, 8, 9, 9, 12, 3, 1, 1, 1, 1,
               true, false, false, false, true, false, false, false};
    compare_runs(&q, 0, NULL); /* weight zero point 2 */
}

/* the packing and the microkernels against a plain triple loop, on both
 * kernels this CPU has */
static void test_qgemm_kernels(void **st)
{
    (void)st;
    const char *arch[3] = {"generic", "avx2", "avx512vnni"};
    for (int run = 0; run < 6; run++) {
        int a = run % 3;
        if (!pare_qgemm_force_arch(arch[a]))
            continue;
        /* 5 channels: K4 8; 50: K4 75, more than one AVX2 depth chunk */
        int64_t C = run < 3 ? 5 : 50, H = 7, W = 9, kh = 3, kw = 2, M = 14;
        int64_t oh = (H + 2 - (2 * (kh - 1) + 1)) / 1 + 1, ow = (W + 2 - kw) / 2 + 1;
        int64_t K = C * kh * kw, nn = oh * ow, ncols = (nn + QG_NR - 1) / QG_NR * QG_NR;
        uint8_t *x = malloc((size_t)(C * H * W));
        int8_t *w = malloc((size_t)(M * K));
        int64_t *off = malloc((size_t)((K + 3) / 4) * sizeof *off);
        assert_true(x && w && off);
        for (int64_t i = 0; i < C * H * W; i++)
            x[i] = (uint8_t)(frand() * 127 + 128);
        for (int64_t i = 0; i < M * K; i++)
            w[i] = (int8_t)(frand() * 127);
        pare_qgemm_w pw;
        assert_int_equal(pare_qgemm_pack_w(w, M, K, K, 1, &pw), PARE_OK);
        uint8_t flip = a ? 0x80 : 0, pad = 17;
        pare_qim2col gi = {x, C, H, W, kh, kw, 1, 2, 2, 1, 1, 1, oh, ow, flip, pad};
        int64_t K4 = (K + 3) / 4;
        uint8_t *panel = malloc((size_t)(K4 * ncols * 4));
        assert_non_null(panel);
        pare_qpack_im2col(&gi, 0, nn, ncols, 0, K4, panel);
        int32_t acc[QG_MR * QG_NR];
        pare_qgemm_panel_offsets(K4, ncols, off);
        for (int64_t m0 = 0; m0 < M; m0 += QG_MR)
            for (int64_t t = 0; t < ncols; t += QG_NR) {
                pare_qgemm_block(&pw, m0, panel + t * 4, off, acc);
                for (int64_t r = 0; r < QG_MR && m0 + r < M; r++)
                    for (int64_t j = 0; j < QG_NR && t + j < nn; j++) {
                        int64_t col = t + j, oy = col / ow, ox = col % ow;
                        int32_t want = 0;
                        for (int64_t k = 0; k < K; k++) {
                            int64_t c = k / (kh * kw), ky = k % (kh * kw) / kw, kx = k % kw;
                            int64_t iy = oy - 1 + ky * 2, ix = ox * 2 - 1 + kx;
                            int v = iy < 0 || iy >= H || ix < 0 || ix >= W
                                        ? pad
                                        : x[(c * H + iy) * W + ix] ^ flip;
                            want += w[(m0 + r) * K + k] * v;
                        }
                        if (acc[r * QG_NR + j] != want)
                            fail_msg("%s: row %lld col %lld: %d, want %d", arch[a],
                                     (long long)(m0 + r), (long long)col, acc[r * QG_NR + j], want);
                    }
            }
        int32_t rs = 0;
        for (int64_t k = 0; k < K; k++)
            rs += w[k];
        assert_int_equal(pw.rowsum[0], rs);
        free(panel);
        free(x);
        free(w);
        free(off);
        pare_qgemm_w_release(&pw);
    }
    pare_qgemm_force_arch("generic");
    assert_string_equal(pare_qgemm_arch(), "generic");
    pare_qgemm_force_arch("best");
}

/* a channel-grouped padded image read in place at per-group offsets
 * (what stride-1 convolutions run on) against the plain sums */
static void test_qplane(void **st)
{
    (void)st;
    const char *arch[3] = {"generic", "avx2", "avx512vnni"};
    for (int a = 0; a < 3; a++) {
        if (!pare_qgemm_force_arch(arch[a]))
            continue;
        int64_t C = 6, H = 5, W = 7, kh = 3, kw = 3, dil = 2, M = 13;
        int64_t pt = 2, pl = 1, pb = 3, pr = 2; /* asymmetric */
        int64_t Hp = H + pt + pb, Wp = W + pl + pr;
        int64_t oh = Hp - (kh - 1) * dil, ow = Wp - (kw - 1) * dil;
        int64_t C4 = (C + 3) / 4, PP = Hp * Wp + QG_NR + (kw - 1) * dil;
        uint8_t x[6 * 5 * 7], pad = 9, flip = a ? 0x80 : 0;
        int8_t w[13 * 3 * 3 * 8];
        for (size_t i = 0; i < sizeof x; i++)
            x[i] = (uint8_t)(frand() * 127 + 128);
        /* weights in the in-place order: k = (tap, channel group, lane) */
        int64_t Kd = kh * kw * C4 * 4;
        for (int64_t i = 0; i < M * Kd; i++)
            w[i] = (int8_t)(frand() * 127);
        for (int64_t m = 0; m < M; m++) /* channels past C: 0 */
            for (int64_t t = 0; t < kh * kw; t++)
                for (int64_t c = C; c < C4 * 4; c++)
                    w[m * Kd + (t * C4 + c / 4) * 4 + c % 4] = 0;
        pare_qgemm_w pw;
        assert_int_equal(pare_qgemm_pack_w(w, M, Kd, Kd, 1, &pw), PARE_OK);
        uint8_t *planes = malloc((size_t)(C4 * PP * 4));
        assert_non_null(planes);
        pare_qplane g = {x, C, H, W, pt, pl, pb, pr, PP, flip, pad};
        for (int64_t c4 = 0; c4 < C4; c4++)
            pare_qpack_plane(&g, c4, planes + c4 * PP * 4);
        int64_t off[64];
        for (int64_t t = 0; t < kh * kw; t++)
            for (int64_t c4 = 0; c4 < C4; c4++)
                off[t * C4 + c4] = (c4 * PP + (t / kw) * dil * Wp + (t % kw) * dil) * 4;
        int32_t acc[QG_MR * QG_NR];
        for (int64_t m0 = 0; m0 < M; m0 += QG_MR)
            for (int64_t v0 = 0; v0 < oh * Wp; v0 += QG_NR) {
                pare_qgemm_block(&pw, m0, planes + v0 * 4, off, acc);
                for (int64_t r = 0; r < QG_MR && m0 + r < M; r++)
                    for (int64_t j = 0; j < QG_NR && v0 + j < oh * Wp; j++) {
                        int64_t oy = (v0 + j) / Wp, ox = (v0 + j) % Wp;
                        if (ox >= ow)
                            continue;
                        int32_t want = 0;
                        for (int64_t c = 0; c < C; c++)
                            for (int64_t t = 0; t < kh * kw; t++) {
                                int64_t iy = oy + (t / kw) * dil - pt, ix = ox + (t % kw) * dil - pl;
                                int v = iy < 0 || iy >= H || ix < 0 || ix >= W
                                            ? pad
                                            : x[(c * H + iy) * W + ix] ^ flip;
                                want += w[(m0 + r) * Kd + (t * C4 + c / 4) * 4 + c % 4] * v;
                            }
                        if (acc[r * QG_NR + j] != want)
                            fail_msg("%s: row %lld pixel %lld,%lld: %d, want %d", arch[a],
                                     (long long)(m0 + r), (long long)oy, (long long)ox,
                                     acc[r * QG_NR + j], want);
                    }
            }
        free(planes);
        pare_qgemm_w_release(&pw);
    }
    pare_qgemm_force_arch("best");
}

/* the whole fused path on the plain C kernel too */
static void test_generic_kernel_model(void **st)
{
    (void)st;
    assert_true(pare_qgemm_force_arch("generic"));
    pare_kernel_qdq_force_portable(true);
    qcase q = {"Conv", PARE_DT_INT8, PARE_DT_UINT8, 2, 8, 9, 9, 20, 3, 1, 1, 1, 1,
               true, true, true, false, false, false, false, false};
    compare_runs(&q, 1, fused_conv);
    add_case("Add", PARE_DT_UINT8, PARE_DT_INT8, PARE_DT_UINT8, true, false);
    add_case("Sum", PARE_DT_INT8, PARE_DT_UINT8, PARE_DT_INT8, false, false);
    bn_case(PARE_DT_INT8, PARE_DT_UINT8, true, true);
    float_case("Conv", false, true, PARE_DT_INT8);
    pare_qgemm_force_arch("best"); /* the rest on the CPU's best */
    pare_kernel_qdq_force_portable(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qgemm_kernels),
        cmocka_unit_test(test_qplane),
        cmocka_unit_test(test_generic_kernel_model),
        cmocka_unit_test(test_bn),
        cmocka_unit_test(test_conv_3x3_relu),
        cmocka_unit_test(test_conv_int8_group_stride),
        cmocka_unit_test(test_conv_1x1_panels),
        cmocka_unit_test(test_conv_1d),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_shared_input),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_move_ops),
        cmocka_unit_test(test_float_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
