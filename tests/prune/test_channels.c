/* test_channels - structured channel pruning (lib/prune/channels.c): models
 * built here whose removed channels are known (zero filters), so the pruned
 * model must give the same outputs; consumers rewritten (BatchNorm,
 * depthwise, Flatten->Gemm, MatMul, Concat offsets), residual groups pruned
 * together or left dense, bad ratios, the trained CNN of testdata, grouped
 * Convs (consumer and source), ConvTranspose and the channel shuffle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/model.h"
#include "pare/prune.h"

/* ---- building models ---- */

static pare_model *new_model(void)
{
    uint8_t b[] = {0x08, 0x08, 0x3a, 0x03, 0x12, 0x01, 'g', 0x42, 0x02, 0x10, 17};
    pare_model *m;
    pare_error err;
    if (pare_model_load_buffer(b, sizeof b, NULL, NULL, &m, &err))
        fail_msg("seed model: %s", err.msg);
    return m;
}

static pare_value *add_input(pare_model *m, const char *name, int rank, const int64_t *dims)
{
    pare_graph *g = pare_model_graph(m);
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, name, NULL, PARE_DT_FLOAT, &v, &err), PARE_OK);
    assert_int_equal(pare_value_set_dims(v, PARE_DT_FLOAT, rank, dims, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, v, &err), PARE_OK);
    return v;
}

/* float initializer: value(i) = ((i * 7 + off) % 13 - 6) / 8, then every
 * slice `axis` index listed in zero[] (-1 ends) set to 0 */
static pare_value *add_init(pare_model *m, const char *name, int rank, const int64_t *dims,
                            int off, int axis, const int *zero)
{
    pare_tensor *t;
    pare_error err;
    pare_value *v;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    float *x = t->data;
    int64_t inner = 1;
    for (int d = axis + 1; d < rank; d++)
        inner *= dims[d];
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++) {
        x[i] = (float)((int)((i * 7 + (uint64_t)off) % 13) - 6) / 8.0f;
        if (x[i] == 0)
            x[i] = 0.25f; /* no accidental zeros */
        int64_t c = (int64_t)i / inner % dims[axis];
        for (int k = 0; zero && zero[k] >= 0; k++)
            if (zero[k] == c)
                x[i] = 0;
    }
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &v, &err), PARE_OK);
    return v;
}

static pare_value *add_const(pare_model *m, const char *name, int64_t n, float val)
{
    pare_tensor *t;
    pare_error err;
    pare_value *v;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, 1, &n, &t, &err), PARE_OK);
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = val;
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &v, &err), PARE_OK);
    return v;
}

static pare_node *node(pare_model *m, const char *op, const char *out, pare_value *const *ins,
                       size_t n_ins)
{
    pare_graph *g = pare_model_graph(m);
    pare_value *o;
    pare_node *n;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, out, NULL, 0, &o, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, out, "", op, ins, n_ins, &o, 1, NULL, &n, &err),
                     PARE_OK);
    return n;
}

static void output(pare_model *m, pare_value *v)
{
    pare_error err;
    v->dtype = PARE_DT_FLOAT;
    assert_int_equal(pare_graph_add_output(pare_model_graph(m), v, &err), PARE_OK);
}

/* saves and reloads (as a file would come in), validating */
static pare_model *reload(pare_model *m)
{
    void *buf;
    size_t len;
    pare_error err;
    pare_model *r;
    if (pare_model_save_buffer(m, &buf, &len, &err))
        fail_msg("save: %s", err.msg);
    if (pare_model_load_buffer(buf, len, NULL, NULL, &r, &err))
        fail_msg("reload: %s", err.msg);
    free(buf);
    pare_model_free(m);
    pare_problems p = {0};
    assert_int_equal(pare_model_validate(r, &p, &err), PARE_OK);
    if (p.n)
        fail_msg("model: %s: %s", p.items[0].where, p.items[0].what);
    pare_problems_release(&p);
    return r;
}

static pare_tensor *run1(pare_model *m, const pare_tensor *x)
{
    pare_session *s;
    pare_error err;
    pare_tensor **outs;
    size_t n;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("session: %s", err.msg);
    pare_tensor *in = (pare_tensor *)x;
    if (pare_session_run(s, &in, 1, &outs, &n, &err))
        fail_msg("run: %s", err.msg);
    pare_session_free(s);
    pare_tensor *y = outs[0];
    for (size_t i = 1; i < n; i++)
        pare_tensor_free(outs[i]);
    free(outs);
    return y;
}

static void expect_close(const pare_tensor *a, const pare_tensor *b)
{
    assert_int_equal(a->rank, b->rank);
    for (int d = 0; d < a->rank; d++)
        assert_int_equal(a->dims[d], b->dims[d]);
    const float *x = a->data, *y = b->data;
    for (uint64_t k = 0; k < pare_tensor_numel(a); k++)
        if (!(fabs(x[k] - y[k]) <= 1e-5 + 1e-4 * fabs(y[k])))
            fail_msg("element %llu: %.9g, expected %.9g", (unsigned long long)k, x[k], y[k]);
}

static const pare_tensor *tensor(pare_model *m, pare_node *n, size_t in)
{
    (void)m;
    pare_error err;
    pare_tensor *t = pare_value_tensor(n->inputs[in], &err);
    assert_non_null(t);
    return t;
}

static pare_node *find_node(pare_model *m, const char *name)
{
    pare_node *n = pare_graph_find_node(pare_model_graph(m), name);
    assert_non_null(n);
    return n;
}

static void expect_dims(pare_model *m, const char *nname, size_t in, int rank, ...)
{
    const pare_tensor *t = tensor(m, find_node(m, nname), in);
    assert_int_equal(t->rank, rank);
    va_list ap;
    va_start(ap, rank);
    for (int d = 0; d < rank; d++) {
        int64_t want = va_arg(ap, int);
        if (t->dims[d] != want)
            fail_msg("%s input %zu dim %d: %lld, expected %lld", nname, in, d,
                     (long long)t->dims[d], (long long)want);
    }
    va_end(ap);
}

static pare_tensor *input(const char *name, int rank, const int64_t *dims)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_random(name, PARE_DT_FLOAT, rank, dims, 7, &t, &err), PARE_OK);
    return t;
}

/* prunes m (reloaded before and after) at ratio and checks outputs equal */
static pare_model *prune_equal(pare_model *m, double ratio, const pare_tensor *x,
                               pare_prune_report *r)
{
    m = reload(m);
    pare_tensor *before = run1(m, x);
    pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
    o.ratio = ratio;
    pare_error err;
    if (pare_prune_channels(m, &o, r, &err))
        fail_msg("prune: %s", err.msg);
    m = reload(m);
    pare_tensor *after = run1(m, x);
    expect_close(after, before);
    pare_tensor_free(before);
    pare_tensor_free(after);
    return m;
}

static const pare_prune_layer_stat *layer(const pare_prune_report *r, const char *name)
{
    for (size_t i = 0; i < r->n_layers; i++)
        if (strcmp(r->layers[i].node, name) == 0)
            return &r->layers[i];
    fail_msg("layer %s not in the report", name);
    return NULL;
}

static const pare_prune_skip *skipped(const pare_prune_report *r, const char *name)
{
    for (size_t i = 0; i < r->n_skipped; i++)
        if (strcmp(r->skipped[i].node, name) == 0)
            return &r->skipped[i];
    return NULL;
}

/* ---- tests ---- */

static void test_conv_bn_conv(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 5, 5}, w1[] = {8, 2, 3, 3}, b1 = 8, w2[] = {4, 8, 1, 1};
    const int z[] = {1, 3, 5, 7, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *c1 = node(m, "Conv", "conv1",
                         (pare_value *[]){x, add_init(m, "w1", 4, w1, 0, 0, z),
                                          add_init(m, "b1", 1, &b1, 3, 0, z)}, 3);
    pare_error err;
    int64_t pads[] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(c1, "pads", pads, 4, &err), PARE_OK);
    /* BN: B and mean zero on the dead channels, so they stay zero */
    pare_node *bn = node(m, "BatchNormalization", "bn",
                         (pare_value *[]){c1->outputs[0], add_init(m, "s", 1, &b1, 1, 0, NULL),
                                          add_init(m, "B", 1, &b1, 2, 0, z),
                                          add_init(m, "mean", 1, &b1, 4, 0, z),
                                          add_const(m, "var", 8, 2.0f)}, 5);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){bn->outputs[0]}, 1);
    pare_node *c2 = node(m, "Conv", "conv2",
                         (pare_value *[]){re->outputs[0], add_init(m, "w2", 4, w2, 5, 0, NULL)},
                         2);
    output(m, c2->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "conv1", 1, 4, 4, 2, 3, 3);
    expect_dims(m, "conv1", 2, 1, 4);
    for (size_t i = 1; i <= 4; i++)
        expect_dims(m, "bn", i, 1, 4);
    expect_dims(m, "conv2", 1, 4, 4, 4, 1, 1);
    /* kept channels are 0, 2, 4, 6: mean(i) = ((i*7+4)%13-6)/8 */
    const float *mean = tensor(m, find_node(m, "bn"), 3)->data;
    for (int k = 0; k < 4; k++) {
        int i = 2 * k;
        float want = (float)((i * 7 + 4) % 13 - 6) / 8.0f;
        assert_float_equal(mean[k], want == 0 ? 0.25f : want, 1e-7);
    }
    /* conv2's input channels 0, 2, 4, 6: new column 3 is old column 6 */
    const float *w = tensor(m, find_node(m, "conv2"), 1)->data;
    assert_float_equal(w[3], (float)((6 * 7 + 5) % 13 - 6) / 8.0f, 1e-7);
    const pare_prune_layer_stat *s = layer(&r, "conv1");
    assert_int_equal(s->channels_before, 8);
    assert_int_equal(s->channels_after, 4);
    assert_int_equal(s->params, 4 * 2 * 9);
    assert_true(s->macs_after > 0 && s->macs_after * 2 == s->macs_before);
    assert_int_equal(layer(&r, "conv2")->channels_after, 4); /* its input shrank, not its output */
    assert_non_null(skipped(&r, "conv2"));
    assert_non_null(strstr(skipped(&r, "conv2")->why, "graph output"));
    assert_true(r.params_after < r.params_before);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

static void test_depthwise(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 4, 4}, w1[] = {8, 2, 1, 1}, dw[] = {8, 1, 3, 3}, c8 = 8,
            sc[] = {8, 1, 1}, w3[] = {3, 8, 1, 1};
    const int z[] = {0, 2, 5, 6, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *c1 = node(m, "Conv", "conv1",
                         (pare_value *[]){x, add_init(m, "w1", 4, w1, 0, 0, z)}, 2);
    pare_node *d = node(m, "Conv", "dw",
                        (pare_value *[]){c1->outputs[0], add_init(m, "wd", 4, dw, 1, 0, NULL),
                                         add_init(m, "bd", 1, &c8, 2, 0, z)}, 3);
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(d, "group", 8, &err), PARE_OK);
    pare_node *mu = node(m, "Mul", "mul",
                         (pare_value *[]){d->outputs[0], add_init(m, "k", 3, sc, 3, 0, NULL)}, 2);
    pare_node *pr = node(m, "PRelu", "prelu",
                         (pare_value *[]){mu->outputs[0], add_init(m, "slope", 3, sc, 4, 0, NULL)},
                         2);
    pare_node *c3 = node(m, "Conv", "conv3",
                         (pare_value *[]){pr->outputs[0], add_init(m, "w3", 4, w3, 5, 0, NULL)},
                         2);
    output(m, c3->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "conv1", 1, 4, 4, 2, 1, 1);
    expect_dims(m, "dw", 1, 4, 4, 1, 3, 3);
    expect_dims(m, "dw", 2, 1, 4);
    assert_int_equal(pare_node_attr_int(find_node(m, "dw"), "group", 0), 4);
    expect_dims(m, "mul", 1, 3, 4, 1, 1);
    expect_dims(m, "prelu", 1, 3, 4, 1, 1);
    expect_dims(m, "conv3", 1, 4, 3, 4, 1, 1);
    /* kept 1, 3, 4, 7: the Mul constant's second entry is k[3] */
    assert_float_equal(((const float *)tensor(m, find_node(m, "mul"), 1)->data)[1],
                       (float)((3 * 7 + 3) % 13 - 6) / 8.0f, 1e-7);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

static void flatten_gemm(int trans_b, bool reshape)
{
    pare_model *m = new_model();
    int64_t xd[] = {1, 1, 4, 4}, w1[] = {4, 1, 3, 3}, wg[2], nb = 3;
    wg[0] = trans_b ? 3 : 64;
    wg[1] = trans_b ? 64 : 3;
    const int z[] = {1, 3, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *c1 = node(m, "Conv", "conv1",
                         (pare_value *[]){x, add_init(m, "w1", 4, w1, 0, 0, z)}, 2);
    pare_error err;
    int64_t pads[] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(c1, "pads", pads, 4, &err), PARE_OK);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){c1->outputs[0]}, 1);
    pare_node *fl;
    if (reshape) {
        pare_tensor *t;
        int64_t two = 2;
        pare_value *sv;
        assert_int_equal(pare_tensor_new("shape", PARE_DT_INT64, 1, &two, &t, &err), PARE_OK);
        ((int64_t *)t->data)[0] = 1;
        ((int64_t *)t->data)[1] = 64;
        assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &sv, &err), PARE_OK);
        fl = node(m, "Reshape", "flat", (pare_value *[]){re->outputs[0], sv}, 2);
    } else {
        fl = node(m, "Flatten", "flat", (pare_value *[]){re->outputs[0]}, 1);
    }
    pare_node *gm = node(m, "Gemm", "fc",
                         (pare_value *[]){fl->outputs[0], add_init(m, "wg", 2, wg, 5, 0, NULL),
                                          add_init(m, "bg", 1, &nb, 1, 0, NULL)}, 3);
    assert_int_equal(pare_node_set_attr_int(gm, "transB", trans_b, &err), PARE_OK);
    output(m, gm->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "conv1", 1, 4, 2, 1, 3, 3);
    if (trans_b)
        expect_dims(m, "fc", 1, 2, 3, 32);
    else
        expect_dims(m, "fc", 1, 2, 32, 3);
    /* channels 0 and 2 kept: feature 16 of the new weight is old feature 32 */
    const float *w = tensor(m, find_node(m, "fc"), 1)->data;
    int64_t old = trans_b ? 32 : 32 * 3, now = trans_b ? 16 : 16 * 3;
    assert_float_equal(w[now], (float)((old * 7 + 5) % 13 - 6) / 8.0f == 0 ? 0.25f
                                   : (float)((old * 7 + 5) % 13 - 6) / 8.0f, 1e-7);
    if (reshape)
        assert_int_equal(((const int64_t *)tensor(m, find_node(m, "flat"), 1)->data)[1], 32);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

static void test_flatten_gemm(void **state)
{
    (void)state;
    flatten_gemm(0, false);
    flatten_gemm(1, false);
    flatten_gemm(1, true);
}

static void test_matmul_chain(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {2, 3, 6}, w1[] = {6, 8}, b1 = 8, w2[] = {8, 5};
    const int z[] = {0, 4, 5, 7, -1};
    pare_value *x = add_input(m, "x", 3, xd);
    pare_node *mm = node(m, "MatMul", "mm1",
                         (pare_value *[]){x, add_init(m, "w1", 2, w1, 0, 1, z)}, 2);
    pare_node *ad = node(m, "Add", "add",
                         (pare_value *[]){mm->outputs[0], add_init(m, "b1", 1, &b1, 2, 0, z)}, 2);
    pare_node *ge = node(m, "Relu", "act", (pare_value *[]){ad->outputs[0]}, 1);
    pare_node *m2 = node(m, "MatMul", "mm2",
                         (pare_value *[]){ge->outputs[0], add_init(m, "w2", 2, w2, 3, 0, NULL)}, 2);
    output(m, m2->outputs[0]);
    pare_tensor *xt = input("x", 3, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "mm1", 1, 2, 6, 4);
    expect_dims(m, "add", 1, 1, 4);
    expect_dims(m, "mm2", 1, 2, 4, 5);
    assert_int_equal(layer(&r, "mm1")->channels_after, 4);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

static void test_concat_offsets(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 3, 3}, wa[] = {4, 2, 1, 1}, wb[] = {6, 2, 1, 1}, wc[] = {2, 10, 1, 1};
    const int za[] = {0, 2, -1}, zb[] = {1, 3, 5, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *a = node(m, "Conv", "convA",
                        (pare_value *[]){x, add_init(m, "wa", 4, wa, 0, 0, za)}, 2);
    pare_node *b = node(m, "Conv", "convB",
                        (pare_value *[]){x, add_init(m, "wb", 4, wb, 1, 0, zb)}, 2);
    pare_node *cc = node(m, "Concat", "cat", (pare_value *[]){a->outputs[0], b->outputs[0]}, 2);
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(cc, "axis", 1, &err), PARE_OK);
    pare_node *c = node(m, "Conv", "convC",
                        (pare_value *[]){cc->outputs[0], add_init(m, "wc", 4, wc, 2, 0, NULL)}, 2);
    output(m, c->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "convA", 1, 4, 2, 2, 1, 1);
    expect_dims(m, "convB", 1, 4, 3, 2, 1, 1);
    expect_dims(m, "convC", 1, 4, 2, 5, 1, 1);
    /* kept input channels of convC: 1, 3 (A) and 4+0, 4+2, 4+4 (B) */
    const float *w = tensor(m, find_node(m, "convC"), 1)->data;
    const int kept[] = {1, 3, 4, 6, 8};
    for (int k = 0; k < 5; k++) {
        float want = (float)((kept[k] * 7 + 2) % 13 - 6) / 8.0f;
        assert_float_equal(w[k], want == 0 ? 0.25f : want, 1e-7);
    }
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

/* conv1 -> relu -> (conv2, conv3) -> Add -> conv4; with `extra`, the sum is
 * also read by a Transpose (a graph output) */
static pare_model *residual(bool extra)
{
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 3, 3}, w1[] = {4, 2, 1, 1}, w2[] = {4, 4, 1, 1}, w4[] = {2, 4, 1, 1};
    const int z1[] = {1, 3, -1}, z2[] = {0, 2, -1}, z3[] = {0, 2, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *c1 = node(m, "Conv", "conv1",
                         (pare_value *[]){x, add_init(m, "w1", 4, w1, 0, 0, z1)}, 2);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){c1->outputs[0]}, 1);
    pare_node *c2 = node(m, "Conv", "conv2",
                         (pare_value *[]){re->outputs[0], add_init(m, "w2", 4, w2, 1, 0, z2)}, 2);
    pare_node *c3 = node(m, "Conv", "conv3",
                         (pare_value *[]){re->outputs[0], add_init(m, "w3", 4, w2, 2, 0, z3)}, 2);
    pare_node *ad = node(m, "Add", "res", (pare_value *[]){c2->outputs[0], c3->outputs[0]}, 2);
    pare_node *c4 = node(m, "Conv", "conv4",
                         (pare_value *[]){ad->outputs[0], add_init(m, "w4", 4, w4, 3, 0, NULL)}, 2);
    output(m, c4->outputs[0]);
    if (extra) {
        pare_node *t = node(m, "Transpose", "tr", (pare_value *[]){ad->outputs[0]}, 1);
        output(m, t->outputs[0]);
    }
    return m;
}

static void test_residual_group(void **state)
{
    (void)state;
    int64_t xd[] = {1, 2, 3, 3};
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_model *m = prune_equal(residual(false), 0.5, xt, &r);
    expect_dims(m, "conv1", 1, 4, 2, 2, 1, 1);
    /* both sides of the Add lose the same channels, 0 and 2 */
    expect_dims(m, "conv2", 1, 4, 2, 2, 1, 1);
    expect_dims(m, "conv3", 1, 4, 2, 2, 1, 1);
    expect_dims(m, "conv4", 1, 4, 2, 2, 1, 1);
    assert_null(skipped(&r, "conv2"));
    pare_prune_report_release(&r);
    pare_model_free(m);

    /* the same with a Transpose reading the sum: that group stays dense */
    pare_prune_report_init(&r);
    m = prune_equal(residual(true), 0.5, xt, &r);
    expect_dims(m, "conv1", 1, 4, 2, 2, 1, 1);
    expect_dims(m, "conv2", 1, 4, 4, 2, 1, 1);
    expect_dims(m, "conv3", 1, 4, 4, 2, 1, 1);
    expect_dims(m, "conv4", 1, 4, 2, 4, 1, 1);
    const pare_prune_skip *s = skipped(&r, "conv2");
    assert_non_null(s);
    assert_non_null(strstr(s->why, "consumer 'tr' (Transpose) reads the channels"));
    assert_non_null(skipped(&r, "conv3"));
    pare_prune_report_release(&r);
    pare_model_free(m);
    pare_tensor_free(xt);
}

/* the two sides of an Add rank differently alone; together (summed
 * normalized norms) channels 0 and 1 win on both sides */
static void test_residual_ranking(void **state)
{
    (void)state;
    pare_model *m = reload(residual(false));
    pare_error err;
    const float rows2[4] = {0, 10, 1, 1}, rows3[4] = {10, 0, 1, 1};
    pare_tensor *t2 = pare_value_tensor(find_node(m, "conv2")->inputs[1], &err);
    pare_tensor *t3 = pare_value_tensor(find_node(m, "conv3")->inputs[1], &err);
    assert_int_equal(pare_tensor_own(t2, &err), PARE_OK);
    assert_int_equal(pare_tensor_own(t3, &err), PARE_OK);
    float *w2 = t2->data, *w3 = t3->data;
    for (int i = 0; i < 16; i++) {
        w2[i] = rows2[i / 4];
        w3[i] = rows3[i / 4];
    }
    pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
    o.ratio = 0.5;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_OK);
    m = reload(m);
    expect_dims(m, "conv2", 1, 4, 2, 2, 1, 1);
    const float *a = tensor(m, find_node(m, "conv2"), 1)->data;
    const float *b = tensor(m, find_node(m, "conv3"), 1)->data;
    assert_float_equal(a[0], 0, 0);
    assert_float_equal(a[2], 10, 0);
    assert_float_equal(b[0], 10, 0);
    assert_float_equal(b[2], 0, 0);
    pare_model_free(m);
}

static void test_bad_ratios(void **state)
{
    (void)state;
    pare_model *m = reload(residual(false));
    pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
    pare_error err;
    o.ratio = 1.0;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    o.ratio = -0.1;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    o.ratio = NAN;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    o.ratio = 0.3;
    const char *bad1[] = {"nosuch=0.3"}, *bad2[] = {"conv1=abc"}, *bad3[] = {"conv1=1.5"},
               *all[] = {"conv2=0.9"};
    o.layer_ratios = bad1;
    o.n_layer_ratios = 1;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "nosuch"));
    o.layer_ratios = bad2;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    o.layer_ratios = bad3;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    /* 0.9 of 4 channels rounds to 4: every channel */
    o.layer_ratios = all;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "conv2"));
    assert_non_null(strstr(err.msg, "every channel"));
    /* nothing changed by the refusals */
    expect_dims(m, "conv2", 1, 4, 4, 4, 1, 1);
    pare_model_free(m);
}

/* ---- the trained CNN of testdata ---- */

static pare_model *load_cnn(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/cnn_digits.onnx", PARE_TESTDATA);
    pare_model *m;
    pare_error err;
    if (pare_model_load(path, NULL, &m, &err))
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static double accuracy(pare_model *m)
{
    char path[512], lpath[512];
    snprintf(path, sizeof path, "%s/digits_val.npz", PARE_TESTDATA);
    snprintf(lpath, sizeof lpath, "%s/digits_val_labels.npy", PARE_TESTDATA);
    pare_error err;
    pare_tensor *lab;
    assert_int_equal(pare_npy_read(lpath, &lab, &err), PARE_OK);
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    pare_feed *f;
    assert_int_equal(pare_feed_open(path, s, 120, 0, &f, &err), PARE_OK);
    pare_tensor **ins;
    int64_t got, seen = 0, right = 0;
    while (pare_feed_next(f, &ins, &got, &err) == PARE_OK && ins) {
        pare_tensor **o;
        size_t no;
        assert_int_equal(pare_session_run(s, ins, 1, &o, &no, &err), PARE_OK);
        int64_t k = o[0]->dims[1];
        const float *y = o[0]->data;
        for (int64_t i = 0; i < got; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < k; j++)
                if (y[i * k + j] > y[i * k + best])
                    best = j;
            right += best == (int64_t)pare_dtype_get_f64(lab->dtype, lab->data, (size_t)(seen + i));
        }
        seen += got;
        pare_tensors_free(o, no);
        pare_tensors_free(ins, 1);
    }
    pare_feed_close(f);
    pare_session_free(s);
    pare_tensor_free(lab);
    assert_int_equal(seen, 360);
    return (double)right / (double)seen;
}

static void test_cnn_digits(void **state)
{
    (void)state;
    pare_model *m = load_cnn();
    pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
    o.ratio = 0.3;
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_error err;
    if (pare_prune_channels(m, &o, &r, &err))
        fail_msg("%s", err.msg);
    /* quality bar: parameters down at least 25%, the model valid */
    assert_true((double)r.params_after <= 0.75 * (double)r.params_before);
    assert_true(r.macs_after < 0.75 * r.macs_before);
    m = reload(m);
    double plain = accuracy(m);
    pare_prune_report_release(&r);
    pare_model_free(m);

    /* with BatchNorm statistics re-estimated on the training data */
    m = load_cnn();
    char data[512];
    snprintf(data, sizeof data, "%s/digits_train.npz", PARE_TESTDATA);
    o.bn_recalibrate = data;
    o.calib.samples = 512;
    o.calib.batch = 64;
    o.calib.threads = 1;
    if (pare_prune_channels(m, &o, NULL, &err))
        fail_msg("%s", err.msg);
    m = reload(m);
    double recal = accuracy(m);
    /* the pruned net's BN statistics are stale; re-estimated they fit it */
    assert_true(recal > plain + 0.1);
    pare_model_free(m);

    /* a bad dataset path fails with the path named */
    m = load_cnn();
    o.bn_recalibrate = "/nonexistent/data.npz";
    assert_int_not_equal(pare_prune_channels(m, &o, NULL, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "/nonexistent/data.npz"));
    pare_model_free(m);
}

/* parameters of a model counted from its initializers (not the report) */
static uint64_t count_params(pare_model *m)
{
    pare_graph *g = pare_model_graph(m);
    uint64_t n = 0;
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i] && g->values[i]->init)
            n += pare_tensor_numel(g->values[i]->init);
    return n;
}

/* The params bar at --ratio 0.3 holds whatever the rounding of kept counts:
 * the default (16), 8 and exact counts; the default rounds conv1 32 -> 16
 * (22.4 kept, nearest multiple of 16) and the 64-channel layers to 48 */
static void test_cnn_digits_multiples(void **state)
{
    (void)state;
    static const struct {
        int64_t multiple, conv1, conv2, params;
    } cases[] = {{0, 16, 48, 30986}, {16, 16, 48, 30986}, {8, 24, 48, 34546},
                 {1, 22, 45, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pare_model *m = load_cnn();
        uint64_t before = count_params(m);
        assert_int_equal(before, 60906);
        pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
        o.ratio = 0.3;
        o.channel_multiple = cases[i].multiple;
        pare_prune_report r;
        pare_prune_report_init(&r);
        pare_error err;
        if (pare_prune_channels(m, &o, &r, &err))
            fail_msg("multiple %" PRId64 ": %s", cases[i].multiple, err.msg);
        assert_int_equal(layer(&r, "conv1")->channels_after, cases[i].conv1);
        assert_int_equal(layer(&r, "conv2")->channels_after, cases[i].conv2);
        assert_int_equal(layer(&r, "conv3")->channels_after, cases[i].conv2);
        assert_int_equal(layer(&r, "proj")->channels_after, cases[i].conv2);
        m = reload(m);
        uint64_t after = count_params(m);
        assert_int_equal(after, (uint64_t)r.params_after);
        if (cases[i].params)
            assert_int_equal(after, cases[i].params);
        /* quality bar: at least 25% fewer parameters */
        if ((double)after > 0.75 * (double)before)
            fail_msg("multiple %" PRId64 ": params %" PRIu64 " -> %" PRIu64 ", under 25%% fewer",
                     cases[i].multiple, before, after);
        pare_prune_report_release(&r);
        pare_model_free(m);
    }
}

/* L1 and L2 rank differently: {1,1,1,1} has L1 4, L2 2; {3,0,0,0} L1 3, L2 3 */
static void norm_case(pare_norm norm, float kept0)
{
    pare_model *m = new_model();
    int64_t xd[] = {1, 4, 2, 2}, w1[] = {2, 4, 1, 1}, w2[] = {1, 2, 1, 1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_value *wv = add_init(m, "w1", 4, w1, 0, 0, NULL);
    pare_error err;
    const float vals[] = {1, 1, 1, 1, 3, 0, 0, 0};
    memcpy(pare_value_tensor(wv, &err)->data, vals, sizeof vals);
    pare_node *c1 = node(m, "Conv", "conv1", (pare_value *[]){x, wv}, 2);
    pare_node *c2 = node(m, "Conv", "conv2",
                         (pare_value *[]){c1->outputs[0], add_init(m, "w2", 4, w2, 1, 0, NULL)},
                         2);
    output(m, c2->outputs[0]);
    m = reload(m);
    pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
    o.ratio = 0.5;
    o.norm = norm;
    assert_int_equal(pare_prune_channels(m, &o, NULL, &err), PARE_OK);
    expect_dims(m, "conv1", 1, 4, 1, 4, 1, 1);
    assert_float_equal(((const float *)tensor(m, find_node(m, "conv1"), 1)->data)[0], kept0, 0);
    pare_model_free(m);
}

static void test_norms(void **state)
{
    (void)state;
    norm_case(PARE_NORM_L1, 1);
    norm_case(PARE_NORM_L2, 3);
}


/* ---- grouped convolutions, ConvTranspose, channel shuffle ---- */

/* value i of an add_init tensor made with offset off (no zeroed slice) */
static float init_val(int64_t i, int off)
{
    float x = (float)((int)((i * 7 + off) % 13) - 6) / 8.0f;
    return x == 0 ? 0.25f : x;
}

static pare_value *add_shape(pare_model *m, const char *name, int64_t n, const int64_t *vals)
{
    pare_tensor *t;
    pare_error err;
    pare_value *v;
    assert_int_equal(pare_tensor_new(name, PARE_DT_INT64, 1, &n, &t, &err), PARE_OK);
    memcpy(t->data, vals, (size_t)n * sizeof *vals);
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &v, &err), PARE_OK);
    return v;
}

static void expect_shape(pare_model *m, const char *nname, size_t in, int64_t n,
                         const int64_t *want)
{
    const pare_tensor *t = tensor(m, find_node(m, nname), in);
    assert_int_equal(t->rank, 1);
    assert_int_equal(t->dims[0], n);
    int64_t v[8];
    memcpy(v, t->data, (size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        if (v[i] != want[i])
            fail_msg("%s shape entry %lld: %lld, expected %lld", nname, (long long)i,
                     (long long)v[i], (long long)want[i]);
}

static pare_node *grouped(pare_model *m, const char *op, const char *out, pare_value *const *ins,
                          size_t n_ins, int64_t group)
{
    pare_node *n = node(m, op, out, ins, n_ins);
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(n, "group", group, &err), PARE_OK);
    return n;
}

/* conv0 (8) -> gconv (group 2, 8 -> 8) -> relu -> conv2: conv0 keeps two
 * channels per gconv group (1, 2 | 4, 7), gconv is a source of its own
 * (rows 1, 2, 4, 7 dead: two per group) and its group stays 2 */
static void test_grouped_conv(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 4, 4}, w0[] = {8, 2, 1, 1}, wg[] = {8, 4, 3, 3}, c8 = 8,
            w2[] = {3, 8, 1, 1};
    const int z0[] = {0, 3, 5, 6, -1}, zg[] = {1, 2, 4, 7, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *c0 = node(m, "Conv", "conv0",
                         (pare_value *[]){x, add_init(m, "w0", 4, w0, 0, 0, z0)}, 2);
    pare_node *gc = grouped(m, "Conv", "gconv",
                            (pare_value *[]){c0->outputs[0], add_init(m, "wg", 4, wg, 1, 0, zg),
                                             add_init(m, "bg", 1, &c8, 2, 0, zg)}, 3, 2);
    pare_error err;
    int64_t pads[] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(gc, "pads", pads, 4, &err), PARE_OK);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){gc->outputs[0]}, 1);
    pare_node *c2 = node(m, "Conv", "conv2",
                         (pare_value *[]){re->outputs[0], add_init(m, "w2", 4, w2, 3, 0, NULL)},
                         2);
    output(m, c2->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "conv0", 1, 4, 4, 2, 1, 1);
    expect_dims(m, "gconv", 1, 4, 4, 2, 3, 3);
    expect_dims(m, "gconv", 2, 1, 4);
    assert_int_equal(pare_node_attr_int(find_node(m, "gconv"), "group", 0), 2);
    expect_dims(m, "conv2", 1, 4, 3, 4, 1, 1);
    /* gconv keeps rows 0, 3, 5, 6; its inputs 1, 2 (group 0) and 4, 7
     * (group 1: columns 0, 3). New row 2 is old row 5, its column 1 old
     * column 3 */
    const float *w = tensor(m, find_node(m, "gconv"), 1)->data;
    assert_float_equal(w[(2 * 2 + 1) * 9], init_val((5 * 4 + 3) * 9, 1), 1e-7);
    assert_float_equal(w[(0 * 2 + 0) * 9 + 4], init_val((0 * 4 + 1) * 9 + 4, 1), 1e-7);
    assert_int_equal(layer(&r, "gconv")->channels_before, 8);
    assert_int_equal(layer(&r, "gconv")->channels_after, 4);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

/* ConvTranspose group 2 (4 -> 6, output channels 1 and 4 dead: column 1
 * of both row groups) -> relu -> ConvTranspose group 1 (6 -> 4, channel 3
 * dead) -> conv3 */
static void test_conv_transpose(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 4, 3, 3}, w1[] = {4, 3, 2, 2}, c6 = 6, w2[] = {6, 4, 3, 3},
            w3[] = {2, 4, 1, 1};
    const int z1[] = {1, -1}, zb[] = {1, 4, -1}, z2[] = {3, -1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *t1 = grouped(m, "ConvTranspose", "convt1",
                            (pare_value *[]){x, add_init(m, "w1", 4, w1, 0, 1, z1),
                                             add_init(m, "b1", 1, &c6, 1, 0, zb)}, 3, 2);
    pare_error err;
    int64_t st[] = {2, 2};
    assert_int_equal(pare_node_set_attr_ints(t1, "strides", st, 2, &err), PARE_OK);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){t1->outputs[0]}, 1);
    pare_node *t2 = node(m, "ConvTranspose", "convt2",
                         (pare_value *[]){re->outputs[0], add_init(m, "w2", 4, w2, 2, 1, z2)}, 2);
    pare_node *c3 = node(m, "Conv", "conv3",
                         (pare_value *[]){t2->outputs[0], add_init(m, "w3", 4, w3, 3, 0, NULL)},
                         2);
    output(m, c3->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 1.0 / 3, xt, &r);
    expect_dims(m, "convt1", 1, 4, 4, 2, 2, 2);
    expect_dims(m, "convt1", 2, 1, 4);
    assert_int_equal(pare_node_attr_int(find_node(m, "convt1"), "group", 0), 2);
    expect_dims(m, "convt2", 1, 4, 4, 3, 3, 3);
    expect_dims(m, "conv3", 1, 4, 2, 3, 1, 1);
    /* convt1 keeps columns 0, 2 of each row group: new [3][1] is old [3][2] */
    const float *w = tensor(m, find_node(m, "convt1"), 1)->data;
    assert_float_equal(w[(3 * 2 + 1) * 4], init_val((3 * 3 + 2) * 4, 0), 1e-7);
    /* convt2 keeps rows 0, 2, 3, 5: new row 2 is old row 3 */
    w = tensor(m, find_node(m, "convt2"), 1)->data;
    assert_float_equal(w[(2 * 3 + 0) * 9], init_val((3 * 4 + 0) * 9, 2), 1e-7);
    assert_int_equal(layer(&r, "convt1")->channels_before, 6);
    assert_int_equal(layer(&r, "convt1")->channels_after, 4);
    assert_int_equal(layer(&r, "convt2")->channels_after, 3);
    pare_prune_report_release(&r);
    pare_tensor_free(xt);
    pare_model_free(m);
}

/* ShuffleNet's unit: gconv_a (group 2, 4 -> 8) -> relu -> shuffle by 2 ->
 * depthwise -> gconv_b (group 2, 8 -> 4). Shuffled, channel (gi, j) lands at
 * j * 2 + gi; gconv_b's group 0 reads j 0-1 of both halves. Half of each
 * (half, gconv_b group) cell is dead: 1, 2 | 4, 7. */
static pare_model *shuffle_unit(const int *dead, const int64_t *split, int64_t C)
{
    pare_model *m = new_model();
    int64_t xd[] = {1, 4, 3, 3}, wa[] = {C, 2, 1, 1}, wd[] = {C, 1, 3, 3}, wb[] = {4, C / 2, 1, 1},
            back[] = {1, C, 3, 3};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *a = grouped(m, "Conv", "gconv_a",
                           (pare_value *[]){x, add_init(m, "wa", 4, wa, 0, 0, dead)}, 2, 2);
    pare_node *re = node(m, "Relu", "relu", (pare_value *[]){a->outputs[0]}, 1);
    pare_node *r1 = node(m, "Reshape", "split",
                         (pare_value *[]){re->outputs[0], add_shape(m, "s1", 5, split)}, 2);
    pare_node *tr = node(m, "Transpose", "swap", (pare_value *[]){r1->outputs[0]}, 1);
    pare_error err;
    int64_t perm[] = {0, 2, 1, 3, 4}, pads[] = {1, 1, 1, 1};
    assert_int_equal(pare_node_set_attr_ints(tr, "perm", perm, 5, &err), PARE_OK);
    pare_node *r2 = node(m, "Reshape", "join",
                         (pare_value *[]){tr->outputs[0], add_shape(m, "s2", 4, back)}, 2);
    pare_node *dw = grouped(m, "Conv", "dw",
                            (pare_value *[]){r2->outputs[0], add_init(m, "wd", 4, wd, 1, 0, NULL)},
                            2, C);
    assert_int_equal(pare_node_set_attr_ints(dw, "pads", pads, 4, &err), PARE_OK);
    pare_node *b = grouped(m, "Conv", "gconv_b",
                           (pare_value *[]){dw->outputs[0], add_init(m, "wb", 4, wb, 2, 0, NULL)},
                           2, 2);
    output(m, b->outputs[0]);
    return m;
}

static void test_channel_shuffle(void **state)
{
    (void)state;
    int64_t xd[] = {1, 4, 3, 3}, split[] = {1, 2, 4, 3, 3};
    const int dead[] = {1, 2, 4, 7, -1};
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    pare_model *m = prune_equal(shuffle_unit(dead, split, 8), 0.5, xt, &r);
    expect_dims(m, "gconv_a", 1, 4, 4, 2, 1, 1);
    assert_int_equal(pare_node_attr_int(find_node(m, "gconv_a"), "group", 0), 2);
    expect_shape(m, "split", 1, 5, (const int64_t[]){1, 2, 2, 3, 3});
    expect_shape(m, "join", 1, 4, (const int64_t[]){1, 4, 3, 3});
    expect_dims(m, "dw", 1, 4, 4, 1, 3, 3);
    assert_int_equal(pare_node_attr_int(find_node(m, "dw"), "group", 0), 4);
    expect_dims(m, "gconv_b", 1, 4, 4, 2, 1, 1);
    assert_int_equal(pare_node_attr_int(find_node(m, "gconv_b"), "group", 0), 2);
    /* kept 0, 3 | 5, 6 shuffle to old positions 0, 3, 6, 5 (not in order):
     * gconv_b's group 1 reads old columns 2 then 1, dw's row 2 is old row 6 */
    const float *w = tensor(m, find_node(m, "gconv_b"), 1)->data;
    assert_float_equal(w[3 * 2 + 0], init_val(3 * 4 + 2, 2), 1e-7);
    assert_float_equal(w[3 * 2 + 1], init_val(3 * 4 + 1, 2), 1e-7);
    w = tensor(m, find_node(m, "dw"), 1)->data;
    assert_float_equal(w[2 * 9], init_val(6 * 9, 1), 1e-7);
    assert_null(skipped(&r, "gconv_a"));
    pare_prune_report_release(&r);
    pare_model_free(m);

    /* the split written with -1 for the per-group count is kept as -1 */
    int64_t split2[] = {0, 2, -1, 3, 3};
    pare_prune_report_init(&r);
    m = prune_equal(shuffle_unit(dead, split2, 8), 0.5, xt, &r);
    expect_shape(m, "split", 1, 5, (const int64_t[]){0, 2, -1, 3, 3});
    expect_dims(m, "gconv_b", 1, 4, 4, 2, 1, 1);
    pare_prune_report_release(&r);
    pare_model_free(m);

    /* 6 channels, halves of 3: shuffled, gconv_b's group 0 reads j = 0, 1
     * of half 0 but only j = 0 of half 1 (ShuffleNet's 34 per group of 4
     * splits so too). Keeping 2 per half, each half keeps one channel in
     * each reader group: dead 1 (of 0, 1) and 4 (of 4, 5) */
    int64_t split3[] = {1, 2, 3, 3, 3};
    const int dead3[] = {1, 4, -1};
    pare_prune_report_init(&r);
    m = prune_equal(shuffle_unit(dead3, split3, 6), 1.0 / 3, xt, &r);
    expect_dims(m, "gconv_a", 1, 4, 4, 2, 1, 1);
    expect_shape(m, "split", 1, 5, (const int64_t[]){1, 2, 2, 3, 3});
    expect_shape(m, "join", 1, 4, (const int64_t[]){1, 4, 3, 3});
    expect_dims(m, "gconv_b", 1, 4, 4, 2, 1, 1);
    assert_null(skipped(&r, "gconv_a"));
    pare_prune_report_release(&r);
    pare_model_free(m);
    pare_tensor_free(xt);
}

/* a grouped Conv (group 2: channels 0-3, 4-7) reading a Concat of 6 + 2
 * channels straddles two layers: both stay dense, with the reason */
static void test_grouped_dense(void **state)
{
    (void)state;
    pare_model *m = new_model();
    int64_t xd[] = {1, 2, 3, 3}, wa[] = {6, 2, 1, 1}, wb[] = {2, 2, 1, 1}, wg[] = {4, 4, 1, 1};
    pare_value *x = add_input(m, "x", 4, xd);
    pare_node *a = node(m, "Conv", "convA", (pare_value *[]){x, add_init(m, "wa", 4, wa, 0, 0,
                                                                          NULL)}, 2);
    pare_node *b = node(m, "Conv", "convB", (pare_value *[]){x, add_init(m, "wb", 4, wb, 1, 0,
                                                                          NULL)}, 2);
    pare_node *cc = node(m, "Concat", "cat", (pare_value *[]){a->outputs[0], b->outputs[0]}, 2);
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(cc, "axis", 1, &err), PARE_OK);
    pare_node *g = grouped(m, "Conv", "gconv",
                           (pare_value *[]){cc->outputs[0], add_init(m, "wg", 4, wg, 2, 0, NULL)},
                           2, 2);
    output(m, g->outputs[0]);
    pare_tensor *xt = input("x", 4, xd);
    pare_prune_report r;
    pare_prune_report_init(&r);
    m = prune_equal(m, 0.5, xt, &r);
    expect_dims(m, "convA", 1, 4, 6, 2, 1, 1);
    expect_dims(m, "gconv", 1, 4, 4, 4, 1, 1);
    const pare_prune_skip *s = skipped(&r, "convA");
    assert_non_null(s);
    assert_non_null(strstr(s->why, "consumer 'gconv' (Conv) is grouped (group 2) across the "
                                   "channels of several layers"));
    assert_non_null(skipped(&r, "convB"));
    assert_int_equal(r.params_after, r.params_before);
    pare_prune_report_release(&r);
    pare_model_free(m);
    pare_tensor_free(xt);

    /* aligned (8 + 8, one group each) but convA at 0.5 and convB at 0.25
     * would give the groups 4 and 6 channels: both left dense, the grouped
     * Conv named; without the override both keep 6 and shrink */
    for (int over = 1; over >= 0; over--) {
        m = new_model();
        int64_t w8[] = {8, 2, 1, 1}, wg2[] = {4, 8, 1, 1};
        x = add_input(m, "x", 4, xd);
        a = node(m, "Conv", "convA", (pare_value *[]){x, add_init(m, "wa", 4, w8, 0, 0, NULL)}, 2);
        b = node(m, "Conv", "convB", (pare_value *[]){x, add_init(m, "wb", 4, w8, 1, 0, NULL)}, 2);
        cc = node(m, "Concat", "cat", (pare_value *[]){a->outputs[0], b->outputs[0]}, 2);
        assert_int_equal(pare_node_set_attr_int(cc, "axis", 1, &err), PARE_OK);
        g = grouped(m, "Conv", "gconv",
                    (pare_value *[]){cc->outputs[0], add_init(m, "wg", 4, wg2, 2, 0, NULL)}, 2, 2);
        output(m, g->outputs[0]);
        m = reload(m);
        pare_channel_opts o = PARE_CHANNEL_OPTS_INIT;
        const char *lr[] = {"convA=0.5"};
        o.ratio = 0.25;
        o.layer_ratios = lr;
        o.n_layer_ratios = (size_t)over;
        pare_prune_report_init(&r);
        assert_int_equal(pare_prune_channels(m, &o, &r, &err), PARE_OK);
        m = reload(m);
        expect_dims(m, "convA", 1, 4, over ? 8 : 6, 2, 1, 1);
        expect_dims(m, "convB", 1, 4, over ? 8 : 6, 2, 1, 1);
        expect_dims(m, "gconv", 1, 4, 4, over ? 8 : 6, 1, 1);
        s = skipped(&r, "convA");
        if (over) {
            assert_non_null(s);
            assert_non_null(strstr(s->why, "consumer 'gconv' (Conv) is grouped (2 groups) and its "
                                           "input's layers would keep unequal counts per group"));
            assert_non_null(skipped(&r, "convB"));
        } else {
            assert_null(s);
        }
        pare_prune_report_release(&r);
        pare_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_conv),   cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_flatten_gemm),   cmocka_unit_test(test_matmul_chain),
        cmocka_unit_test(test_concat_offsets), cmocka_unit_test(test_residual_group),
        cmocka_unit_test(test_bad_ratios),     cmocka_unit_test(test_cnn_digits),
        cmocka_unit_test(test_cnn_digits_multiples),
        cmocka_unit_test(test_norms),          cmocka_unit_test(test_residual_ranking),
        cmocka_unit_test(test_grouped_conv),   cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_channel_shuffle), cmocka_unit_test(test_grouped_dense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
