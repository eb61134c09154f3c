/* Host-side logic of the CUDA dnn and quant kernels (lib/cuda/ops_host.c,
 * ops_shared.h, the records' types specs and their extra conditions),
 * checked without a GPU: window geometry and auto_pad, ConvTranspose
 * crops, Resize parameters and coordinate formulas (the ones the device
 * compiles), quantization parameter layouts, batched matmul shapes, the
 * convolution cache key, and which nodes the kernels accept. */
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
#include "cuda/cuda_internal.h"
#include "cuda/ops_host.h"
#include "qdq_case.h"
#include "../exec/fusion_build.h"

/* ---- a scratch graph to hang nodes on ---- */

static pare_value *value(pare_graph *g, int dtype)
{
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, NULL, "v", dtype, &v, &err), PARE_OK);
    return v;
}

/* a 1-D constant of n values of dtype (float32 or int64) */
static pare_value *constant(pare_graph *g, int dtype, int64_t n, const double *vals)
{
    static int count;
    char name[32];
    snprintf(name, sizeof name, "const%d", count++);
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dtype, 1, &n, &t, &err), PARE_OK);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == PARE_DT_FLOAT)
            ((float *)t->data)[i] = (float)vals[i];
        else
            ((int64_t *)t->data)[i] = (int64_t)vals[i];
    }
    pare_value *v;
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

static pare_node *node(pare_graph *g, const char *domain, const char *op, pare_value *const *ins,
                       size_t n_ins, size_t n_outs)
{
    pare_value *outs[3];
    for (size_t i = 0; i < n_outs; i++)
        outs[i] = value(g, 0);
    pare_node *n;
    pare_error err;
    assert_int_equal(pare_graph_add_node(g, NULL, domain, op, ins, n_ins, outs, n_outs, NULL, &n,
                                         &err),
                     PARE_OK);
    return n;
}

/* ---- sliding windows ---- */

static pcu_win_attrs attrs(int auto_pad, int nsp, const int64_t *k, const int64_t *s,
                           const int64_t *d, const int64_t *pads)
{
    pcu_win_attrs a;
    memset(&a, 0, sizeof a);
    a.auto_pad = auto_pad;
    a.group = 1;
    for (int i = 0; i < nsp; i++) {
        if (k)
            a.kernel[i] = k[i], a.nk = nsp;
        if (s)
            a.strides[i] = s[i], a.ns = nsp;
        if (d)
            a.dil[i] = d[i], a.nd = nsp;
    }
    if (pads) {
        for (int i = 0; i < 2 * nsp; i++)
            a.pads[i] = pads[i];
        a.np = 2 * nsp;
    }
    return a;
}

static void test_same_padding(void **state)
{
    (void)state;
    pare_error err;
    pcu_win_geom g;
    int64_t k = 3, s = 2, in5 = 5, in6 = 6;
    pcu_win_attrs up = attrs(PCU_PAD_SAME_UPPER, 1, &k, &s, NULL, NULL);
    /* 5 in, stride 2: 3 out, total pad (3-1)*2+3-5 = 2, split evenly */
    assert_int_equal(pcu_win_geom_make(&up, 1, &in5, NULL, false, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 3);
    assert_int_equal(g.pb[0], 1);
    assert_int_equal(g.pe[0], 1);
    assert_true(g.symmetric);
    /* 6 in: total 1, at the end for SAME_UPPER, at the start for SAME_LOWER */
    assert_int_equal(pcu_win_geom_make(&up, 1, &in6, NULL, false, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 3);
    assert_int_equal(g.pb[0], 0);
    assert_int_equal(g.pe[0], 1);
    assert_false(g.symmetric);
    pcu_win_attrs lo = attrs(PCU_PAD_SAME_LOWER, 1, &k, &s, NULL, NULL);
    assert_int_equal(pcu_win_geom_make(&lo, 1, &in6, NULL, false, &g, &err), PARE_OK);
    assert_int_equal(g.pb[0], 1);
    assert_int_equal(g.pe[0], 0);
}

static void test_explicit_pads_and_dilation(void **state)
{
    (void)state;
    pare_error err;
    pcu_win_geom g;
    int64_t k[2] = {3, 3}, d[2] = {2, 1}, pads[4] = {0, 1, 0, 2}, in[2] = {7, 4};
    pcu_win_attrs a = attrs(PCU_PAD_NOTSET, 2, NULL, NULL, d, pads);
    /* kernel from the weight (no kernel_shape); H: 7 - 5 + 1 = 3; W: 4+3-3+1 = 5 */
    assert_int_equal(pcu_win_geom_make(&a, 2, in, k, false, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 3);
    assert_int_equal(g.out[1], 5);
    assert_int_equal(g.pb[1], 1);
    assert_int_equal(g.pe[1], 2);
    assert_false(g.symmetric);
    /* VALID with a window larger than the input fails */
    int64_t small[2] = {4, 4};
    pcu_win_attrs v = attrs(PCU_PAD_VALID, 2, NULL, NULL, d, NULL);
    assert_int_not_equal(pcu_win_geom_make(&v, 2, small, k, false, &g, &err), PARE_OK);
    /* pads for 2 spatial dims on a 1-D input fail */
    assert_int_not_equal(pcu_win_geom_make(&a, 1, in, k, false, &g, &err), PARE_OK);
}

static void test_ceil_mode(void **state)
{
    (void)state;
    pare_error err;
    pcu_win_geom g;
    int64_t k = 2, s = 2, in = 5;
    pcu_win_attrs a = attrs(PCU_PAD_NOTSET, 1, &k, &s, NULL, NULL);
    assert_int_equal(pcu_win_geom_make(&a, 1, &in, NULL, false, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 2);
    assert_int_equal(pcu_win_geom_make(&a, 1, &in, NULL, true, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 3);
    /* a last window starting in the end pad is dropped: in 2, k 1, s 2, pads 1/1 */
    int64_t k1 = 1, in2 = 2, pads[2] = {1, 1};
    pcu_win_attrs b = attrs(PCU_PAD_NOTSET, 1, &k1, &s, NULL, pads);
    assert_int_equal(pcu_win_geom_make(&b, 1, &in2, NULL, true, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 2);
}

static void test_convtranspose_geometry(void **state)
{
    (void)state;
    pare_error err;
    pcu_win_geom g;
    int64_t k = 3, s = 2, in = 3, pads[2] = {1, 1};
    /* full = (3-1)*2 + 3 = 7; pads 1/1 crop it to 5 */
    pcu_win_attrs a = attrs(PCU_PAD_NOTSET, 1, NULL, &s, NULL, pads);
    assert_int_equal(pcu_convt_geom_make(&a, 1, &in, &k, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 5);
    assert_int_equal(g.pb[0], 1);
    /* output_padding adds one at the end */
    a.out_pad[0] = 1;
    a.nop = 1;
    assert_int_equal(pcu_convt_geom_make(&a, 1, &in, &k, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 6);
    /* output_shape 6 (NOTSET): total 1, the odd pad at the start */
    pcu_win_attrs b = attrs(PCU_PAD_NOTSET, 1, NULL, &s, NULL, NULL);
    b.out_shape[0] = 6;
    b.nos = 1;
    assert_int_equal(pcu_convt_geom_make(&b, 1, &in, &k, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 6);
    assert_int_equal(g.pb[0], 1);
    assert_int_equal(g.pe[0], 0);
    /* output_shape with N and C; larger than full: negative pads (zeros) */
    b.out_shape[0] = 1;
    b.out_shape[1] = 4;
    b.out_shape[2] = 9;
    b.nos = 3;
    b.auto_pad = PCU_PAD_SAME_UPPER;
    assert_int_equal(pcu_convt_geom_make(&b, 1, &in, &k, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 9);
    assert_int_equal(g.pb[0], -1);
    assert_int_equal(g.pe[0], -1);
    /* SAME_UPPER without output_shape: out = in * stride = 6, total 1 at the end */
    pcu_win_attrs c = attrs(PCU_PAD_SAME_UPPER, 1, NULL, &s, NULL, NULL);
    assert_int_equal(pcu_convt_geom_make(&c, 1, &in, &k, &g, &err), PARE_OK);
    assert_int_equal(g.out[0], 6);
    assert_int_equal(g.pb[0], 0);
    assert_int_equal(g.pe[0], 1);
}

static void test_win_parse(void **state)
{
    (void)state;
    pare_model *m = new_model(21);
    pare_graph *g = pare_model_graph(m);
    pare_value *ins[2] = {value(g, PARE_DT_FLOAT), value(g, PARE_DT_FLOAT)};
    pare_node *n = node(g, "", "Conv", ins, 2, 1);
    pare_error err;
    int64_t pads[4] = {1, 0, 2, 0}, st[2] = {2, 2};
    assert_int_equal(pare_node_set_attr_ints(n, "pads", pads, 4, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_ints(n, "strides", st, 2, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_int(n, "group", 4, &err), PARE_OK);
    pcu_win_attrs a;
    assert_int_equal(pcu_win_parse(n, &a, &err), PARE_OK);
    assert_int_equal(a.np, 4);
    assert_int_equal(a.pads[2], 2);
    assert_int_equal(a.ns, 2);
    assert_int_equal(a.group, 4);
    assert_int_equal(a.auto_pad, PCU_PAD_NOTSET);
    assert_int_equal(pare_node_set_attr_string(n, "auto_pad", "SAME_LOWER", &err), PARE_OK);
    assert_int_equal(pcu_win_parse(n, &a, &err), PARE_OK);
    assert_int_equal(a.auto_pad, PCU_PAD_SAME_LOWER);
    assert_int_equal(pare_node_set_attr_string(n, "auto_pad", "SIDEWAYS", &err), PARE_OK);
    assert_int_not_equal(pcu_win_parse(n, &a, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_string(n, "auto_pad", "NOTSET", &err), PARE_OK);
    int64_t four[4] = {2, 2, 2, 2};
    assert_int_equal(pare_node_set_attr_ints(n, "strides", four, 4, &err), PARE_OK);
    assert_int_not_equal(pcu_win_parse(n, &a, &err), PARE_OK); /* 4 spatial dims */
    pare_model_free(m);
}

/* ---- geometry against the CPU kernels' output shapes ---- */

/* Output length of a one-node 1-D model (MaxPool or ConvTranspose) run by a
 * CPU session; -1 when the CPU refuses it. */
static int64_t cpu_out_len(const char *op, int64_t in, int64_t k, int64_t s, const char *auto_pad,
                           const int64_t *pads, int ceil_mode, int64_t out_pad, int64_t out_shape)
{
    pare_model *m = new_model(21);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    int64_t xd[3] = {1, 1, in}, wd[3] = {1, 1, k};
    pare_value *x;
    assert_int_equal(pare_graph_new_value(g, "x", NULL, PARE_DT_FLOAT, &x, &err), PARE_OK);
    assert_int_equal(pare_value_set_dims(x, PARE_DT_FLOAT, 3, xd, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, x, &err), PARE_OK);
    pare_value *ins[2] = {x, NULL};
    bool convt = strcmp(op, "ConvTranspose") == 0;
    if (convt) {
        pare_tensor *w;
        assert_int_equal(pare_tensor_new("w", PARE_DT_FLOAT, 3, wd, &w, &err), PARE_OK);
        assert_int_equal(pare_graph_add_initializer(g, w, &ins[1], &err), PARE_OK);
    }
    pare_node *n = node(g, "", op, ins, convt ? 2 : 1, 1);
    assert_int_equal(pare_graph_add_output(g, n->outputs[0], &err), PARE_OK);
    if (!convt)
        assert_int_equal(pare_node_set_attr_ints(n, "kernel_shape", &k, 1, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_ints(n, "strides", &s, 1, &err), PARE_OK);
    if (auto_pad)
        assert_int_equal(pare_node_set_attr_string(n, "auto_pad", auto_pad, &err), PARE_OK);
    if (pads)
        assert_int_equal(pare_node_set_attr_ints(n, "pads", pads, 2, &err), PARE_OK);
    if (ceil_mode)
        assert_int_equal(pare_node_set_attr_int(n, "ceil_mode", 1, &err), PARE_OK);
    if (out_pad)
        assert_int_equal(pare_node_set_attr_ints(n, "output_padding", &out_pad, 1, &err),
                         PARE_OK);
    if (out_shape)
        assert_int_equal(pare_node_set_attr_ints(n, "output_shape", &out_shape, 1, &err),
                         PARE_OK);
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    o.threads = 1;
    pare_session *sess;
    int64_t len = -1;
    if (pare_session_new(m, &o, &sess, &err) == PARE_OK) {
        pare_tensor *xt, **outs = NULL;
        size_t nout = 0;
        assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 3, xd, &xt, &err), PARE_OK);
        if (pare_session_run(sess, &xt, 1, &outs, &nout, &err) == PARE_OK)
            len = outs[0]->dims[2];
        pare_tensors_free(outs, nout);
        pare_tensor_free(xt);
        pare_session_free(sess);
    }
    pare_model_free(m);
    return len;
}

/* pcu_win_geom_make agrees with the CPU's MaxPool on output sizes over
 * inputs, kernels, strides, pads, auto_pad and ceil_mode */
static void test_pool_geometry_matches_cpu(void **state)
{
    (void)state;
    static const char *const aps[] = {NULL, "SAME_UPPER", "SAME_LOWER", "VALID"};
    int checked = 0;
    for (int64_t in = 3; in <= 8; in++)
        for (int64_t k = 1; k <= 3; k++)
            for (int64_t s = 1; s <= 3; s++)
                for (int ap = 0; ap < 4; ap++)
                    for (int pv = 0; pv < 2; pv++)
                        for (int cm = 0; cm < 2; cm++) {
                            if (ap && pv)
                                continue;
                            int64_t pads[2] = {pv, 2 * pv};
                            int64_t want = cpu_out_len("MaxPool", in, k, s, aps[ap],
                                                       pv ? pads : NULL, cm, 0, 0);
                            pcu_win_attrs a = attrs(ap == 0   ? PCU_PAD_NOTSET
                                                    : ap == 1 ? PCU_PAD_SAME_UPPER
                                                    : ap == 2 ? PCU_PAD_SAME_LOWER
                                                              : PCU_PAD_VALID,
                                                    1, &k, &s, NULL, pv ? pads : NULL);
                            pcu_win_geom g;
                            pare_error err;
                            pare_status st = pcu_win_geom_make(&a, 1, &in, NULL, cm, &g, &err);
                            if (want < 0) {
                                assert_int_not_equal(st, PARE_OK);
                                continue;
                            }
                            assert_int_equal(st, PARE_OK);
                            if (g.out[0] != want)
                                fail_msg("in %lld k %lld s %lld auto_pad %d pads %d ceil %d: "
                                         "%lld, cpu %lld",
                                         (long long)in, (long long)k, (long long)s, ap, pv, cm,
                                         (long long)g.out[0], (long long)want);
                            checked++;
                        }
    assert_true(checked > 300);
}

/* pcu_convt_geom_make agrees with the CPU's ConvTranspose on output sizes */
static void test_convt_geometry_matches_cpu(void **state)
{
    (void)state;
    static const char *const aps[] = {NULL, "SAME_UPPER", "SAME_LOWER"};
    int checked = 0;
    for (int64_t in = 1; in <= 4; in++)
        for (int64_t k = 1; k <= 3; k++)
            for (int64_t s = 1; s <= 3; s++)
                for (int ap = 0; ap < 3; ap++)
                    for (int64_t op = 0; op < s; op++)
                        for (int64_t os = 0; os <= 9; os += 3) {
                            int64_t pads[2] = {1, 0};
                            bool use_pads = ap == 0 && os == 0 && in > 1;
                            int64_t want = cpu_out_len("ConvTranspose", in, k, s, aps[ap],
                                                       use_pads ? pads : NULL, 0, op, os);
                            pcu_win_attrs a = attrs(ap == 0   ? PCU_PAD_NOTSET
                                                    : ap == 1 ? PCU_PAD_SAME_UPPER
                                                              : PCU_PAD_SAME_LOWER,
                                                    1, NULL, &s, NULL, use_pads ? pads : NULL);
                            if (op)
                                a.out_pad[0] = op, a.nop = 1;
                            if (os)
                                a.out_shape[0] = os, a.nos = 1;
                            pcu_win_geom g;
                            pare_error err;
                            pare_status st = pcu_convt_geom_make(&a, 1, &in, &k, &g, &err);
                            if (want < 0) {
                                assert_int_not_equal(st, PARE_OK);
                                continue;
                            }
                            assert_int_equal(st, PARE_OK);
                            if (g.out[0] != want)
                                fail_msg("in %lld k %lld s %lld auto_pad %d op %lld os %lld: "
                                         "%lld, cpu %lld",
                                         (long long)in, (long long)k, (long long)s, ap,
                                         (long long)op, (long long)os, (long long)g.out[0],
                                         (long long)want);
                            checked++;
                        }
    assert_true(checked > 100);
}

/* ---- Resize ---- */

static void test_resize_coordinates(void **state)
{
    (void)state;
    /* half_pixel, scale 2: output 0 reads -0.25 */
    assert_true(fabs(pcu_rs_coord(PCU_CT_HALF_PIXEL, 0, 2.0, 4, 8) + 0.25) < 1e-12);
    assert_true(fabs(pcu_rs_coord(PCU_CT_ASYMMETRIC, 3, 2.0, 4, 8) - 1.5) < 1e-12);
    assert_true(fabs(pcu_rs_coord(PCU_CT_ALIGN_CORNERS, 7, 2.0, 4, 8) - 3.0) < 1e-12);
    assert_true(fabs(pcu_rs_coord(PCU_CT_ALIGN_CORNERS, 0, 2.0, 4, 1)) < 1e-12);
    assert_true(fabs(pcu_rs_coord(PCU_CT_PYTORCH_HALF_PIXEL, 0, 0.25, 4, 1)) < 1e-12);
    assert_true(fabs(pcu_rs_coord(PCU_CT_PYTORCH_HALF_PIXEL, 1, 2.0, 4, 8) - 0.25) < 1e-12);
    /* half_pixel_symmetric, in 5, scale 1.5 (out 7): output 0 maps to 0 */
    assert_true(fabs(pcu_rs_coord(PCU_CT_HALF_PIXEL_SYMMETRIC, 0, 1.5, 5, 7)) < 1e-12);
    /* nearest modes and clamping */
    assert_int_equal(pcu_rs_nearest(PCU_NM_ROUND_PREFER_FLOOR, 1.5, 4), 1);
    assert_int_equal(pcu_rs_nearest(PCU_NM_ROUND_PREFER_FLOOR, 1.6, 4), 2);
    assert_int_equal(pcu_rs_nearest(PCU_NM_ROUND_PREFER_CEIL, 1.5, 4), 2);
    assert_int_equal(pcu_rs_nearest(PCU_NM_ROUND_PREFER_CEIL, 1.4, 4), 1);
    assert_int_equal(pcu_rs_nearest(PCU_NM_FLOOR, 1.7, 4), 1);
    assert_int_equal(pcu_rs_nearest(PCU_NM_CEIL, 1.2, 4), 2);
    assert_int_equal(pcu_rs_nearest(PCU_NM_FLOOR, -0.3, 4), 0);
    assert_int_equal(pcu_rs_nearest(PCU_NM_CEIL, 3.2, 4), 3);
}

static pare_node *resize_node(pare_graph *g, const double *scales, const double *sizes)
{
    pare_value *ins[4] = {value(g, PARE_DT_FLOAT), NULL, NULL, NULL};
    if (scales)
        ins[2] = constant(g, PARE_DT_FLOAT, 4, scales);
    if (sizes)
        ins[3] = constant(g, PARE_DT_INT64, 4, sizes);
    return node(g, "", "Resize", ins, 4, 1);
}

static void test_resize_parse(void **state)
{
    (void)state;
    pare_model *m = new_model(21);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    char why[200];
    pcu_resize_attrs r;
    const double sc[4] = {1, 1, 2, 1.5};
    pare_node *n = resize_node(g, sc, NULL);
    assert_true(pcu_resize_parse(n, 13, &r, why, sizeof why));
    assert_int_equal(r.mode, PCU_RS_NEAREST);
    assert_int_equal(r.coord, PCU_CT_HALF_PIXEL);
    assert_int_equal(r.nearest, PCU_NM_ROUND_PREFER_FLOOR);
    assert_true(r.has_scales);
    int64_t in[4] = {1, 3, 5, 5};
    pcu_resize_geom geo;
    assert_int_equal(pcu_resize_geom_make(&r, in, &geo, &err), PARE_OK);
    assert_int_equal(geo.out[2], 10);
    assert_int_equal(geo.out[3], 7); /* floor(7.5) */
    assert_true(fabs(geo.scale[1] - 1.5) < 1e-12);
    /* before opset 11 and in cubic mode: the cpu */
    assert_false(pcu_resize_parse(n, 10, &r, why, sizeof why));
    assert_int_equal(pare_node_set_attr_string(n, "mode", "cubic", &err), PARE_OK);
    assert_false(pcu_resize_parse(n, 13, &r, why, sizeof why));
    assert_non_null(strstr(why, "cubic"));
    assert_int_equal(pare_node_set_attr_string(n, "mode", "linear", &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_string(n, "coordinate_transformation_mode",
                                               "align_corners", &err),
                     PARE_OK);
    assert_true(pcu_resize_parse(n, 13, &r, why, sizeof why));
    assert_int_equal(r.mode, PCU_RS_LINEAR);
    assert_int_equal(r.coord, PCU_CT_ALIGN_CORNERS);
    assert_int_equal(pare_node_set_attr_string(n, "coordinate_transformation_mode",
                                               "tf_crop_and_resize", &err),
                     PARE_OK);
    assert_false(pcu_resize_parse(n, 13, &r, why, sizeof why));
    /* scaling N or C stays on the cpu */
    const double scn[4] = {2, 1, 2, 2};
    assert_false(pcu_resize_parse(resize_node(g, scn, NULL), 13, &r, why, sizeof why));
    /* sizes: the scale is out/in */
    const double sz[4] = {1, 3, 8, 3};
    pare_node *ns = resize_node(g, NULL, sz);
    assert_true(pcu_resize_parse(ns, 13, &r, why, sizeof why));
    assert_true(r.has_sizes);
    int64_t in2[4] = {1, 3, 4, 6};
    assert_int_equal(pcu_resize_geom_make(&r, in2, &geo, &err), PARE_OK);
    assert_int_equal(geo.out[2], 8);
    assert_true(fabs(geo.scale[0] - 2.0) < 1e-12);
    assert_true(fabs(geo.scale[1] - 0.5) < 1e-12);
    /* sizes that change C fail at run time */
    int64_t in3[4] = {1, 4, 4, 6};
    assert_int_not_equal(pcu_resize_geom_make(&r, in3, &geo, &err), PARE_OK);
    /* scales computed by the graph (not an initializer): read when the node
     * runs, checked as constants are */
    pare_value *dyn[3] = {value(g, PARE_DT_FLOAT), NULL, value(g, PARE_DT_FLOAT)};
    pare_node *nd = node(g, "", "Resize", dyn, 3, 1);
    assert_true(pcu_resize_parse(nd, 13, &r, why, sizeof why));
    assert_true(r.dynamic && r.has_scales && !r.has_sizes);
    const double up[4] = {1, 1, 2, 3}, upn[4] = {2, 1, 2, 3};
    assert_int_equal(pcu_resize_values(&r, up, 4, &err), PARE_OK);
    assert_int_equal(pcu_resize_geom_make(&r, in, &geo, &err), PARE_OK);
    assert_int_equal(geo.out[3], 15);
    assert_int_equal(pcu_resize_values(&r, upn, 4, &err), PARE_ERR_UNSUPPORTED);
    assert_int_equal(pcu_resize_values(&r, up, 3, &err), PARE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "4 values"));
    /* a constant of another length stays on the cpu */
    const double sc3[4] = {1, 2, 2, 0};
    pare_value *ins3[3] = {value(g, PARE_DT_FLOAT), NULL, constant(g, PARE_DT_FLOAT, 3, sc3)};
    assert_false(pcu_resize_parse(node(g, "", "Resize", ins3, 3, 1), 13, &r, why, sizeof why));
    assert_non_null(strstr(why, "4 values"));
    pare_model_free(m);
}

/* ---- quantization layouts ---- */

static void test_qlayout(void **state)
{
    (void)state;
    pare_error err;
    pcu_qlayout L;
    int64_t x[3] = {2, 3, 4}, s1 = 1, s3 = 3;
    assert_int_equal(pcu_qlayout_make(3, x, 0, NULL, 1, 0, &L, &err), PARE_OK);
    assert_int_equal(L.mode, PCU_Q_TENSOR);
    assert_int_equal(pcu_qlayout_index(&L, 23), 0);
    /* a one-element scale is per tensor whatever block_size says */
    assert_int_equal(pcu_qlayout_make(3, x, 1, &s1, 1, 4, &L, &err), PARE_OK);
    assert_int_equal(L.mode, PCU_Q_TENSOR);
    /* per axis 1 (and -2): element 13 = (1, 0, 1) -> 0, 17 = (1, 1, 1) -> 1 */
    assert_int_equal(pcu_qlayout_make(3, x, 1, &s3, -2, 0, &L, &err), PARE_OK);
    assert_int_equal(L.mode, PCU_Q_AXIS);
    assert_int_equal(pcu_qlayout_index(&L, 13), 0);
    assert_int_equal(pcu_qlayout_index(&L, 17), 1);
    assert_int_equal(pcu_qlayout_index(&L, 11), 2);
    /* per axis with the wrong count */
    assert_int_not_equal(pcu_qlayout_make(3, x, 1, &s3, 2, 0, &L, &err), PARE_OK);
    /* blocked along axis 1 of 2 x 6, blocks of 4: scale 2 x 2; (1, 5) -> [1][1] */
    int64_t x2[2] = {2, 6}, sb[2] = {2, 2};
    assert_int_equal(pcu_qlayout_make(2, x2, 2, sb, 1, 4, &L, &err), PARE_OK);
    assert_int_equal(L.mode, PCU_Q_BLOCK);
    assert_int_equal(L.nblk, 2);
    assert_int_equal(pcu_qlayout_index(&L, 11), 3);
    assert_int_equal(pcu_qlayout_index(&L, 3), 0);
    assert_int_equal(pcu_qlayout_index(&L, 4), 1);
    /* blocked along axis 0 of 4 x 3, blocks of 3: scale 2 x 3; (3, 2) -> [1][2] */
    int64_t x3[2] = {4, 3}, sc3[2] = {2, 3};
    assert_int_equal(pcu_qlayout_make(2, x3, 2, sc3, 0, 3, &L, &err), PARE_OK);
    assert_int_equal(pcu_qlayout_index(&L, 11), 5);
    assert_int_equal(pcu_qlayout_index(&L, 8), 2); /* (2, 2) -> [0][2] */
    /* a blocked scale of the wrong shape */
    int64_t bad[2] = {3, 3};
    assert_int_not_equal(pcu_qlayout_make(2, x3, 2, bad, 0, 3, &L, &err), PARE_OK);
}

/* ---- batched integer matmul shapes ---- */

static void test_mm_geometry(void **state)
{
    (void)state;
    pare_error err;
    pcu_mm_geom g;
    int64_t a[4] = {2, 1, 3, 4}, b[3] = {5, 4, 6};
    assert_int_equal(pcu_mm_geom_make(4, a, 3, b, &g, &err), PARE_OK);
    assert_int_equal(g.M, 3);
    assert_int_equal(g.K, 4);
    assert_int_equal(g.N, 6);
    assert_int_equal(g.batch, 10);
    assert_int_equal(g.nb, 2);
    assert_int_equal(g.rank, 4);
    assert_int_equal(g.dims[0], 2);
    assert_int_equal(g.dims[1], 5);
    assert_int_equal(g.dims[3], 6);
    /* A's matrices: index by batch dim 0 only; B's by batch dim 1 only */
    assert_int_equal(g.sa[0], 1);
    assert_int_equal(g.sa[1], 0);
    assert_int_equal(g.sb[0], 0);
    assert_int_equal(g.sb[1], 1);
    assert_int_equal(g.a_batches, 2);
    assert_int_equal(g.b_batches, 5);
    /* 1-D A: the row dim goes away */
    int64_t a1 = 4, b2[2] = {4, 6};
    assert_int_equal(pcu_mm_geom_make(1, &a1, 2, b2, &g, &err), PARE_OK);
    assert_int_equal(g.rank, 1);
    assert_int_equal(g.dims[0], 6);
    assert_int_equal(g.M, 1);
    /* inner dims differ */
    int64_t b3[2] = {5, 6};
    assert_int_not_equal(pcu_mm_geom_make(1, &a1, 2, b3, &g, &err), PARE_OK);
    /* zero point / scale layouts */
    assert_int_equal(pcu_mm_param_kind(1, 3, 2), 0);
    assert_int_equal(pcu_mm_param_kind(3, 3, 2), 1);
    assert_int_equal(pcu_mm_param_kind(6, 3, 2), 2);
    assert_int_equal(pcu_mm_param_kind(4, 3, 2), -1);
}

/* ---- the convolution cache key ---- */

static void test_conv_key(void **state)
{
    (void)state;
    int64_t x[4] = {1, 8, 32, 32}, w[4] = {16, 8, 3, 3}, x2[4] = {2, 8, 32, 32};
    pcu_conv_key a, b;
    pcu_conv_key_make(PARE_DT_FLOAT, 4, x, 4, w, false, &a);
    pcu_conv_key_make(PARE_DT_FLOAT, 4, x, 4, w, false, &b);
    assert_true(pcu_conv_key_eq(&a, &b));
    pcu_conv_key_make(PARE_DT_FLOAT16, 4, x, 4, w, false, &b);
    assert_false(pcu_conv_key_eq(&a, &b));
    pcu_conv_key_make(PARE_DT_FLOAT, 4, x, 4, w, true, &b);
    assert_false(pcu_conv_key_eq(&a, &b));
    pcu_conv_key_make(PARE_DT_FLOAT, 4, x2, 4, w, false, &b);
    assert_false(pcu_conv_key_eq(&a, &b));
    pcu_conv_key_make(PARE_DT_FLOAT, 3, x, 3, w, false, &b);
    assert_false(pcu_conv_key_eq(&a, &b));
}

/* ---- the records: types specs and extra conditions ---- */

static const pare_kernel *pick(const pare_kreg *r, const char *domain, const char *op,
                               int64_t opset, const int *dts, size_t n)
{
    char why[200];
    return pare_kreg_select(r, domain, op, opset, dts, n, why, sizeof why);
}

static void test_records(void **state)
{
    (void)state;
    const pare_kernel *const tables[] = {pare_cuda_kernels_dnn, pare_cuda_kernels_quant};
    pare_kreg *r;
    pare_error err;
    assert_int_equal(pare_kreg_new(tables, 2, &r, &err), PARE_OK);
    int f16[3] = {PARE_DT_FLOAT16, PARE_DT_FLOAT16, PARE_DT_FLOAT16};
    int mixed[3] = {PARE_DT_FLOAT16, PARE_DT_FLOAT, -1};
    int f64[2] = {PARE_DT_DOUBLE, PARE_DT_DOUBLE};
    assert_non_null(pick(r, "", "Conv", 17, f16, 3));
    assert_null(pick(r, "", "Conv", 17, mixed, 3));
    assert_null(pick(r, "", "Conv", 17, f64, 2));
    int i8[1] = {PARE_DT_INT8};
    assert_null(pick(r, "", "MaxPool", 12, i8, 1));
    int bn[5] = {PARE_DT_BFLOAT16, PARE_DT_FLOAT, PARE_DT_FLOAT, PARE_DT_FLOAT, PARE_DT_FLOAT};
    assert_non_null(pick(r, "", "BatchNormalization", 15, bn, 5));
    bn[3] = PARE_DT_FLOAT16; /* mean of another dtype than scale: not implemented */
    assert_null(pick(r, "", "BatchNormalization", 15, bn, 5));
    int dq4[3] = {PARE_DT_INT4, PARE_DT_FLOAT16, PARE_DT_INT4};
    assert_non_null(pick(r, "", "DequantizeLinear", 21, dq4, 3));
    int dqf8[2] = {PARE_DT_FLOAT8E4M3FN, PARE_DT_FLOAT};
    assert_non_null(pick(r, "", "DequantizeLinear", 21, dqf8, 2));
    int dqbad[3] = {PARE_DT_INT8, PARE_DT_FLOAT, PARE_DT_UINT8};
    assert_null(pick(r, "", "DequantizeLinear", 21, dqbad, 3));
    int q8[3] = {PARE_DT_FLOAT, PARE_DT_FLOAT, PARE_DT_FLOAT8E4M3FN};
    assert_non_null(pick(r, "", "QuantizeLinear", 21, q8, 3));
    int qd[3] = {PARE_DT_DOUBLE, PARE_DT_FLOAT, PARE_DT_INT8};
    assert_null(pick(r, "", "QuantizeLinear", 21, qd, 3));
    int mmi[4] = {PARE_DT_UINT8, PARE_DT_INT8, PARE_DT_UINT8, PARE_DT_INT8};
    assert_non_null(pick(r, "", "MatMulInteger", 10, mmi, 4));
    int mmbad[2] = {PARE_DT_INT16, PARE_DT_INT8};
    assert_null(pick(r, "", "MatMulInteger", 10, mmbad, 2));
    int nb[4] = {PARE_DT_FLOAT16, PARE_DT_UINT8, PARE_DT_FLOAT16, PARE_DT_UINT8};
    assert_non_null(pick(r, "com.microsoft", "MatMulNBits", 1, nb, 4));
    int dyn[1] = {PARE_DT_FLOAT16};
    assert_null(pick(r, "", "DynamicQuantizeLinear", 11, dyn, 1));
    pare_kreg_free(r);
}

static void test_accepts(void **state)
{
    (void)state;
    pare_model *m = new_model(21);
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    char why[200];
    const pare_kernel *k;
    /* BatchNormalization in training mode */
    pare_value *bi[5];
    for (int i = 0; i < 5; i++)
        bi[i] = value(g, PARE_DT_FLOAT);
    pare_node *bn = node(g, "", "BatchNormalization", bi, 5, 1);
    for (k = pare_cuda_kernels_dnn; strcmp(k->op_type, "BatchNormalization"); k++)
        ;
    assert_true(pcu_ops_accepts(k, bn, 15, why, sizeof why));
    assert_int_equal(pare_node_set_attr_int(bn, "training_mode", 1, &err), PARE_OK);
    assert_false(pcu_ops_accepts(k, bn, 15, why, sizeof why));
    assert_non_null(strstr(why, "training"));
    /* Resize with cubic */
    const double sc[4] = {1, 1, 2, 2};
    pare_node *rs = resize_node(g, sc, NULL);
    for (k = pare_cuda_kernels_dnn; strcmp(k->op_type, "Resize"); k++)
        ;
    assert_true(pcu_ops_accepts(k, rs, 19, why, sizeof why));
    assert_int_equal(pare_node_set_attr_string(rs, "mode", "cubic", &err), PARE_OK);
    assert_false(pcu_ops_accepts(k, rs, 19, why, sizeof why));
    /* MatMulNBits with g_idx */
    pare_value *ni[5] = {value(g, PARE_DT_FLOAT16), value(g, PARE_DT_UINT8),
                         value(g, PARE_DT_FLOAT16), NULL, NULL};
    pare_node *nbn = node(g, "com.microsoft", "MatMulNBits", ni, 5, 1);
    for (k = pare_cuda_kernels_quant; strcmp(k->op_type, "MatMulNBits"); k++)
        ;
    assert_true(pcu_ops_accepts(k, nbn, 1, why, sizeof why));
    assert_int_equal(pare_node_set_input(nbn, 4, value(g, PARE_DT_INT32), &err), PARE_OK);
    assert_false(pcu_ops_accepts(k, nbn, 1, why, sizeof why));
    assert_non_null(strstr(why, "g_idx"));
    /* QuantizeLinear in float64 precision, or to uint2 */
    pare_value *qi[2] = {value(g, PARE_DT_FLOAT), value(g, PARE_DT_FLOAT)};
    pare_node *qn = node(g, "", "QuantizeLinear", qi, 2, 1);
    for (k = pare_cuda_kernels_quant; strcmp(k->op_type, "QuantizeLinear"); k++)
        ;
    assert_true(pcu_ops_accepts(k, qn, 21, why, sizeof why));
    assert_int_equal(pare_node_set_attr_int(qn, "output_dtype", PARE_DT_UINT2, &err), PARE_OK);
    assert_false(pcu_ops_accepts(k, qn, 21, why, sizeof why));
    assert_int_equal(pare_node_set_attr_int(qn, "output_dtype", PARE_DT_INT4, &err), PARE_OK);
    assert_true(pcu_ops_accepts(k, qn, 21, why, sizeof why));
    assert_int_equal(pare_node_set_attr_int(qn, "precision", PARE_DT_DOUBLE, &err), PARE_OK);
    assert_false(pcu_ops_accepts(k, qn, 21, why, sizeof why));
    /* a kernel of another table: no extra condition */
    static const pare_kernel other = {"", "Relu", 1, 0, NULL, NULL, NULL, NULL};
    assert_true(pcu_ops_accepts(&other, qn, 21, why, sizeof why));
    pare_model_free(m);
}

/* ---- fused QDQ: the int8 kernel's layout and per-element functions ---- */

static pare_tensor *qt(const char *name, int dtype, int rank, const int64_t *dims)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, dtype, rank, dims, &t, &err), PARE_OK);
    return t;
}

/* One fused Conv (matmul: a MatMul of x [R, K] by w [K, M]) described as the
 * executor would (qdq_case.c), run through pcu_qdq_pack / pcu_qdq_ktab /
 * pcu_qdq_args and the kernel's own pcu_qg_column / pcu_qg_b / pcu_qg_out
 * around a plain loop over the packed operands, against the direct sum
 * over (x - zx) w with the same epilogue. Equal to the bit. */
static void layout_case(bool matmul, int xdt, bool fout, bool relu, int64_t group, int64_t cg)
{
    /* Conv: cg channels per group (a multiple of 16 takes the kernel's
     * one-tap 16-byte gather); MatMul: K = cg (a multiple of 16 reads
     * 16 bytes at a time) */
    qdq_shape s = {matmul, xdt, fout, relu, group, cg, matmul ? 40 : 18, 2, 5, 7, 37};
    qdq_case c;
    qdq_case_make(&c, &s);
    const pare_qdq_geom *G = &c.G;
    int bm = pcu_qdq_bm(G->Mg);
    assert_int_equal(bm, 64);
    assert_int_equal(pcu_qdq_bm(65), 128);
    pcu_qgemm a;
    qdq_case_args(&c, bm, &a);
    const int8_t *pk = a.w;
    assert_int_equal(a.Kp % PCU_QG_BK, 0);
    assert_true(a.Kp >= G->K && a.Kp < G->K + PCU_QG_BK);
    assert_int_equal(a.Mpad % bm, 0);
    for (int64_t gi = 0; gi < G->group; gi++) /* zero past Mg and K */
        for (int64_t r = 0; r < a.Mpad; r++)
            for (int64_t k = r < G->Mg ? G->K : 0; k < a.Kp; k++)
                assert_int_equal(pk[(gi * a.Mpad + r) * a.Kp + k], 0);
    pcu_qgemm b;
    int64_t yd[4];
    pare_error err;
    assert_int_equal(pcu_qdq_args(G, xdt == PARE_DT_UINT8 ? PARE_DT_INT8 : PARE_DT_UINT8,
                                  c.xrank, c.xdims, &b, yd, &err),
                     PARE_ERR_INVALID);
    if (!matmul) {
        /* strides 2, 1; dilations 2, 2; pads 1, 0, 2, 1 */
        assert_int_equal(c.ydims[2], (5 + 1 + 2 - 5) / 2 + 1);
        assert_int_equal(c.ydims[3], (7 + 0 + 1 - 3) / 1 + 1);
        assert_int_equal(a.P, 2 * c.ydims[2] * c.ydims[3]);
    } else {
        assert_int_equal(a.P, 37);
        assert_int_equal(c.ydims[1], 40);
    }
    char *got = calloc((size_t)c.ny, c.esz);
    assert_non_null(got);
    /* the kernel's functions over the packed operands, 16 k at a time as
     * its threads gather them (and byte by byte: the same) */
    for (int64_t gi = 0; gi < a.group; gi++)
        for (int64_t r = 0; r < a.Mg; r++)
            for (int64_t p = 0; p < a.P; p++) {
                pcu_qg_col col = pcu_qg_column(&a, gi, p);
                int32_t acc = 0;
                for (int64_t kb = 0; kb < a.Kp; kb += 16) {
                    uint32_t w4[4];
                    pcu_qg_b16(&a, c.x, &col, kb, w4);
                    for (int j = 0; j < 16; j++) {
                        int8_t bv = (int8_t)(uint8_t)(w4[j / 4] >> (8 * (j % 4)));
                        assert_int_equal(bv, pcu_qg_b(&a, c.x, &col, kb + j));
                        acc += pk[(gi * a.Mpad + r) * a.Kp + kb + j] * bv;
                    }
                }
                pcu_qg_out(&a, gi, r, p, acc, got);
            }
    assert_memory_equal(got, c.want, (size_t)c.ny * c.esz);
    /* not every output saturated or zero: the case tests something */
    assert_true(fout || qdq_case_distinct(&c) > c.ny / 4);
    free(got);
    qdq_case_args_free(&a);
    qdq_case_free(&c);
}

static void test_qdq_conv_layout(void **state)
{
    (void)state;
    layout_case(false, PARE_DT_UINT8, false, false, 1, 3);
    layout_case(false, PARE_DT_INT8, false, true, 2, 3);
    layout_case(false, PARE_DT_UINT8, true, true, 2, 3);
    layout_case(false, PARE_DT_UINT8, false, true, 1, 32); /* one-tap gathers */
    layout_case(false, PARE_DT_INT8, true, false, 2, 16);
}

static void test_qdq_matmul_layout(void **state)
{
    (void)state;
    layout_case(true, PARE_DT_UINT8, false, false, 1, 45);
    layout_case(true, PARE_DT_INT8, true, false, 1, 45);
    layout_case(true, PARE_DT_UINT8, false, true, 1, 64); /* 16-byte loads */
    layout_case(true, PARE_DT_INT8, false, false, 1, 48);
}

static void test_qdq_add_params(void **state)
{
    (void)state;
    pare_model *m = new_model(21);
    pare_graph *g = pare_model_graph(m);
    pare_value *ins[2] = {value(g, PARE_DT_FLOAT), value(g, PARE_DT_FLOAT)};
    pare_node *n = node(g, "", "Add", ins, 2, 1);
    int64_t one = 1;
    pare_tensor *as = qt("as", PARE_DT_FLOAT, 1, &one), *az = qt("az", PARE_DT_UINT8, 1, &one),
                *bs = qt("bs", PARE_DT_FLOAT, 1, &one), *bz = qt("bz", PARE_DT_INT8, 1, &one),
                *ys = qt("ys", PARE_DT_FLOAT, 1, &one);
    *(float *)as->data = 0.5f;
    *(uint8_t *)az->data = 200;
    *(float *)bs->data = 0.25f;
    *(int8_t *)bz->data = -3;
    *(float *)ys->data = 0.125f;
    pare_kqdq d;
    memset(&d, 0, sizeof d);
    d.op = n;
    d.x_dtype = PARE_DT_UINT8;
    d.x_scale = as;
    d.x_zp = az;
    d.b_dtype = PARE_DT_INT8;
    d.b_scale = bs;
    d.b_zp = bz;
    d.y_scale = ys;
    d.y_dtype = PARE_DT_INT8;
    d.relu = true;
    pcu_qadd A;
    assert_int_equal(pcu_qdq_add_params(&d, &A), PARE_OK);
    /* no CUDA session (a host-side record without open): refused, not a crash */
    const pare_kernel *k;
    void *kst;
    pare_error err;
    assert_int_equal(pcu_fuse_qdq(NULL, &d, &k, &kst, &err), PARE_ERR_UNSUPPORTED);
    /* the BatchNormalization kernel's scalars come from the CPU's derivation */
    float av[2] = {1.5f, -2.0f}, bv[2] = {0.25f, 3.0f};
    pare_qdq_bn B = {2, av, bv, 0.02f, 0.5f, 200, -3, -128, 127, PARE_DT_UINT8, PARE_DT_INT8, true};
    pcu_qbn qb;
    pcu_qdq_bn_params(&B, &qb);
    assert_int_equal(qb.xdt, PCU_DT_U8);
    assert_int_equal(qb.ydt, PCU_DT_I8);
    assert_int_equal(qb.C, 2);
    assert_true(qb.sx == 0.02f && qb.ys == 0.5f && qb.relu);
    assert_int_equal(qb.zx, 200);
    assert_int_equal(qb.zy, -3);
    assert_int_equal(qb.lo, -128);
    assert_int_equal(qb.hi, 127);
    assert_int_equal(A.adt, PCU_DT_U8);
    assert_int_equal(A.bdt, PCU_DT_I8);
    assert_int_equal(A.ydt, PCU_DT_I8);
    assert_int_equal(A.za, 200);
    assert_int_equal(A.zb, -3);
    assert_int_equal(A.zy, 0);
    assert_int_equal(A.lo, -128);
    assert_int_equal(A.hi, 127);
    assert_true(A.relu);
    assert_true(A.sa == 0.5f && A.sb == 0.25f && A.ys == 0.125f);
    /* refused: a zero point of another type, a zero scale, a 16-bit output */
    d.b_zp = az;
    assert_int_equal(pcu_qdq_add_params(&d, &A), PARE_ERR_UNSUPPORTED);
    d.b_zp = bz;
    *(float *)ys->data = 0;
    assert_int_equal(pcu_qdq_add_params(&d, &A), PARE_ERR_UNSUPPORTED);
    *(float *)ys->data = 1;
    d.y_dtype = PARE_DT_UINT16;
    assert_int_equal(pcu_qdq_add_params(&d, &A), PARE_ERR_UNSUPPORTED);
    pare_tensor *ts[] = {as, az, bs, bz, ys};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        pare_tensor_free(ts[i]);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_padding),
        cmocka_unit_test(test_explicit_pads_and_dilation),
        cmocka_unit_test(test_ceil_mode),
        cmocka_unit_test(test_convtranspose_geometry),
        cmocka_unit_test(test_win_parse),
        cmocka_unit_test(test_pool_geometry_matches_cpu),
        cmocka_unit_test(test_convt_geometry_matches_cpu),
        cmocka_unit_test(test_resize_coordinates),
        cmocka_unit_test(test_resize_parse),
        cmocka_unit_test(test_qlayout),
        cmocka_unit_test(test_mm_geometry),
        cmocka_unit_test(test_conv_key),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_qdq_conv_layout),
        cmocka_unit_test(test_qdq_matmul_layout),
        cmocka_unit_test(test_qdq_add_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
