/* The cleanup passes (pare/opt.h), one group per pass, on small models built
 * here through the IR's rewrite API: each test checks that the rewrite
 * happened (or, for the cases a pass must leave alone, that it did not) and
 * that the outputs through a session are the same before and after. */
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
#include "pare/opt.h"

/* ---- building models ---- */

/* ModelProto{ir_version 8, graph{name "g"}, opset_import{version V}} */
static pare_model *new_model(int opset)
{
    uint8_t b[] = {0x08, 0x08, 0x3a, 0x03, 0x12, 0x01, 'g', 0x42, 0x02, 0x10, (uint8_t)opset};
    pare_model *m;
    pare_error err;
    if (pare_model_load_buffer(b, sizeof b, NULL, NULL, &m, &err))
        fail_msg("seed model: %s", err.msg);
    return m;
}

static pare_value *add_input(pare_model *m, const char *name, int dtype, int rank,
                             const int64_t *dims)
{
    pare_graph *g = pare_model_graph(m);
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, name, NULL, dtype, &v, &err), PARE_OK);
    assert_int_equal(pare_value_set_dims(v, dtype, rank, dims, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, v, &err), PARE_OK);
    return v;
}

/* float initializer filled with f(i) = scale * ((i * 7 + off) % 13 - 6) */
static pare_value *add_init(pare_model *m, const char *name, int rank, const int64_t *dims,
                            float scale, int off)
{
    pare_tensor *t;
    pare_error err;
    pare_value *v;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    float *x = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        x[i] = scale * (float)((int)((i * 7 + (uint64_t)off) % 13) - 6);
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &v, &err), PARE_OK);
    return v;
}

static pare_value *add_ints(pare_model *m, const char *name, size_t n, const int64_t *vals)
{
    pare_tensor *t;
    pare_error err;
    pare_value *v;
    int64_t d[1] = {(int64_t)n};
    assert_int_equal(pare_tensor_new(name, PARE_DT_INT64, 1, d, &t, &err), PARE_OK);
    if (n)
        memcpy(t->data, vals, n * sizeof *vals);
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &v, &err), PARE_OK);
    return v;
}

/* A node with one output named out (a new value). */
static pare_node *add_node(pare_model *m, const char *op, const char *out,
                           pare_value *const *ins, size_t n_ins)
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

static pare_value *out0(pare_node *n)
{
    return n->outputs[0];
}

static void add_output(pare_model *m, pare_value *v, int dtype)
{
    pare_error err;
    v->dtype = dtype;
    assert_int_equal(pare_graph_add_output(pare_model_graph(m), v, &err), PARE_OK);
}

/* Saves and reloads, as a file would come in. */
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
        fail_msg("built model: %s: %s", p.items[0].where, p.items[0].what);
    pare_problems_release(&p);
    return r;
}

static pare_model *copy_model(pare_model *m)
{
    void *buf;
    size_t len;
    pare_error err;
    pare_model *r;
    assert_int_equal(pare_model_save_buffer(m, &buf, &len, &err), PARE_OK);
    assert_int_equal(pare_model_load_buffer(buf, len, NULL, NULL, &r, &err), PARE_OK);
    free(buf);
    return r;
}

static pare_tensor **run(pare_model *m, pare_tensor **ins, size_t n_ins, size_t *n_outs)
{
    pare_session *s;
    pare_error err;
    pare_tensor **outs;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("session: %s", err.msg);
    if (pare_session_run(s, ins, n_ins, &outs, n_outs, &err))
        fail_msg("run: %s", err.msg);
    pare_session_free(s);
    return outs;
}

static pare_tensor *rand_input(const char *name, int rank, const int64_t *dims, uint64_t seed)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_random(name, PARE_DT_FLOAT, rank, dims, seed, &t, &err),
                     PARE_OK);
    return t;
}

static void expect_close(pare_tensor **a, size_t na, pare_tensor **b, size_t nb, double rtol,
                         double atol)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i]->name, b[i]->name);
        assert_int_equal(a[i]->dtype, b[i]->dtype);
        assert_int_equal(a[i]->rank, b[i]->rank);
        for (int d = 0; d < a[i]->rank; d++)
            assert_int_equal(a[i]->dims[d], b[i]->dims[d]);
        uint64_t n = pare_tensor_numel(a[i]);
        for (uint64_t k = 0; k < n; k++) {
            double x = pare_dtype_get_f64(a[i]->dtype, a[i]->data, (size_t)k);
            double y = pare_dtype_get_f64(b[i]->dtype, b[i]->data, (size_t)k);
            if (!(fabs(x - y) <= atol + rtol * fabs(y)))
                fail_msg("output '%s' element %llu: %.9g, expected %.9g", a[i]->name,
                         (unsigned long long)k, x, y);
        }
    }
}

/* Runs m on ins, optimizes a copy with o, runs again and compares. Returns the
 * optimized model (caller frees) and fills r. */
static pare_model *optimize_and_compare(pare_model *m, const pare_opt_opts *o, pare_opt_report *r,
                                        pare_tensor **ins, size_t n_ins, double rtol, double atol)
{
    size_t nw, ng;
    pare_tensor **want = run(m, ins, n_ins, &nw);
    pare_model *opt = copy_model(m);
    pare_error err;
    if (pare_optimize(opt, o, r, &err))
        fail_msg("pare_optimize: %s", err.msg);
    assert_true(r->nodes_after <= r->nodes_before);
    pare_tensor **got = run(opt, ins, n_ins, &ng);
    expect_close(got, ng, want, nw, rtol, atol);
    pare_tensors_free(got, ng);
    /* and the same once saved and loaded again */
    pare_model *back = copy_model(opt);
    got = run(back, ins, n_ins, &ng);
    expect_close(got, ng, want, nw, rtol, atol);
    pare_tensors_free(got, ng);
    pare_model_free(back);
    pare_tensors_free(want, nw);
    return opt;
}

static size_t count_op(pare_model *m, const char *op)
{
    pare_graph *g = pare_model_graph(m);
    size_t c = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        c += pare_node_is(g->nodes[i], "", op);
    return c;
}

static pare_opt_opts only(const char *pass)
{
    pare_opt_opts o = PARE_OPT_OPTS_NONE;
    o.dead = true; /* every pass leaves dead bits for this one */
    if (!strcmp(pass, "identity"))
        o.identity = true;
    else if (!strcmp(pass, "fold"))
        o.fold = true;
    else if (!strcmp(pass, "bn"))
        o.fold_bn = true;
    else if (!strcmp(pass, "dedupe"))
        o.dedupe = true;
    else if (!strcmp(pass, "noop"))
        o.noop = true;
    return o;
}

/* ---- Identity and Dropout ---- */

static void test_identity_dropout(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 2, d);
    pare_value *a = out0(add_node(m, "Identity", "a", &x, 1));
    pare_value *b = out0(add_node(m, "Relu", "b", &a, 1));
    pare_value *c = out0(add_node(m, "Dropout", "c", &b, 1));
    pare_value *y = out0(add_node(m, "Identity", "y", &c, 1));
    add_output(m, y, PARE_DT_FLOAT);
    /* training Dropout (seeded, so the run is repeatable) stays */
    pare_value *ratio, *train;
    {
        pare_tensor *t;
        pare_error err;
        assert_int_equal(pare_tensor_new("ratio", PARE_DT_FLOAT, 0, NULL, &t, &err), PARE_OK);
        *(float *)t->data = 0.5f;
        assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &ratio, &err),
                         PARE_OK);
        assert_int_equal(pare_tensor_new("train", PARE_DT_BOOL, 0, NULL, &t, &err), PARE_OK);
        *(uint8_t *)t->data = 1;
        assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), t, &train, &err),
                         PARE_OK);
    }
    pare_value *tin[3] = {b, ratio, train};
    pare_node *td = add_node(m, "Dropout", "z", tin, 3);
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(td, "seed", 7, &err), PARE_OK);
    add_output(m, out0(td), PARE_DT_FLOAT);
    /* input -> Identity -> output must stay (both names are part of the interface) */
    pare_value *w = out0(add_node(m, "Identity", "w", &x, 1));
    add_output(m, w, PARE_DT_FLOAT);
    m = reload(m);

    pare_tensor *in = rand_input("x", 2, d, 1);
    pare_opt_opts o = only("identity");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.removed_identity, 3);
    assert_int_equal(r.nodes_before, 6);
    assert_int_equal(r.nodes_after, 3);
    assert_int_equal(count_op(opt, "Dropout"), 1);
    assert_int_equal(count_op(opt, "Identity"), 1);
    pare_graph *g = pare_model_graph(opt);
    assert_string_equal(g->outputs[0]->name, "y");
    assert_string_equal(g->outputs[0]->producer->op_type, "Relu");
    assert_string_equal(g->outputs[2]->name, "w");
    pare_opt_report_release(&r);
    /* a second run changes nothing */
    assert_int_equal(pare_optimize(opt, &o, &r, &err), PARE_OK);
    assert_int_equal(r.removed_identity, 0);
    assert_int_equal(r.nodes_after, r.nodes_before);
    pare_opt_report_release(&r);
    pare_opt_report_release(NULL);
    pare_tensor_free(in);
    pare_model_free(opt);
    pare_model_free(m);
}

/* ---- constant folding ---- */

static void test_fold_chain(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    pare_error err;
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 2, d);
    pare_value *c1 = add_init(m, "c1", 2, d, 0.5f, 1);
    /* Constant node, then Add, Mul, Shape-free chain ending in one result */
    pare_node *k = add_node(m, "Constant", "k", NULL, 0);
    pare_tensor *kt;
    int64_t d3[1] = {3};
    assert_int_equal(pare_tensor_new("k", PARE_DT_FLOAT, 1, d3, &kt, &err), PARE_OK);
    ((float *)kt->data)[0] = 1.5f;
    ((float *)kt->data)[2] = -2.0f;
    assert_int_equal(pare_node_set_attr_tensor(k, "value", kt, &err), PARE_OK);
    pare_value *ai[2] = {c1, out0(k)};
    pare_value *t = out0(add_node(m, "Add", "t", ai, 2));
    pare_value *mi[2] = {t, t};
    pare_value *u = out0(add_node(m, "Mul", "u", mi, 2));
    pare_value *yi[2] = {x, u};
    pare_value *y = out0(add_node(m, "Add", "y", yi, 2));
    add_output(m, y, PARE_DT_FLOAT);
    /* a constant that is itself a graph output */
    pare_value *si[2] = {c1, c1};
    pare_value *s = out0(add_node(m, "Sub", "s", si, 2));
    add_output(m, s, PARE_DT_FLOAT);
    m = reload(m);

    pare_tensor *in = rand_input("x", 2, d, 2);
    pare_opt_opts o = only("fold");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.folded, 4);
    pare_graph *g = pare_model_graph(opt);
    /* y's Add stays; s is now a Constant (a graph output keeps a producer) */
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(count_op(opt, "Add"), 1);
    assert_int_equal(count_op(opt, "Constant"), 1);
    assert_string_equal(g->outputs[1]->name, "s");
    assert_string_equal(g->outputs[1]->producer->op_type, "Constant");
    /* only the result the kept node reads became an initializer */
    pare_value *uv = pare_graph_find_value(g, "u");
    assert_non_null(uv);
    assert_non_null(uv->init);
    assert_null(pare_graph_find_value(g, "t"));
    assert_null(pare_graph_find_value(g, "k"));
    assert_null(pare_graph_find_value(g, "c1"));
    float c10 = 0.5f * (float)((int)((0 * 7 + 1) % 13) - 6);
    assert_true(((float *)uv->init->data)[0] == (c10 + 1.5f) * (c10 + 1.5f));
    pare_opt_report_release(&r);
    pare_tensor_free(in);
    pare_model_free(opt);
    pare_model_free(m);
}

/* Tile of a small constant: above the cap it stays a node (and is noted),
 * with the cap lifted it folds. Random and DequantizeLinear never fold. */
static void test_fold_cap_and_exclusions(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    pare_error err;
    int64_t d[2] = {1, 4};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 2, d);
    pare_value *small = add_init(m, "small", 2, d, 1.0f, 3);
    int64_t reps[2] = {70000, 1}; /* 70000 x 4 floats = 1.12 MB */
    pare_value *ti[2] = {small, add_ints(m, "reps", 2, reps)};
    pare_value *big = out0(add_node(m, "Tile", "big", ti, 2));
    pare_value *ri[2] = {big, x};
    pare_value *y = out0(add_node(m, "Add", "y", ri, 2));
    add_output(m, y, PARE_DT_FLOAT);
    /* weight-only quantization: DequantizeLinear of an int8 constant stays */
    pare_tensor *q;
    pare_value *qv, *sv;
    assert_int_equal(pare_tensor_new("q", PARE_DT_INT8, 2, d, &q, &err), PARE_OK);
    ((int8_t *)q->data)[1] = -3;
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), q, &qv, &err), PARE_OK);
    pare_tensor *sc;
    assert_int_equal(pare_tensor_new("qs", PARE_DT_FLOAT, 0, NULL, &sc, &err), PARE_OK);
    *(float *)sc->data = 0.25f;
    assert_int_equal(pare_graph_add_initializer(pare_model_graph(m), sc, &sv, &err), PARE_OK);
    pare_value *dqi[2] = {qv, sv};
    pare_value *dq = out0(add_node(m, "DequantizeLinear", "dq", dqi, 2));
    pare_value *wi[2] = {x, dq};
    add_output(m, out0(add_node(m, "Mul", "wq", wi, 2)), PARE_DT_FLOAT);
    m = reload(m);

    pare_tensor *in = rand_input("x", 2, d, 3);
    pare_opt_opts o = only("fold");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.folded, 0);
    assert_int_equal(count_op(opt, "Tile"), 1);
    assert_int_equal(count_op(opt, "DequantizeLinear"), 1);
    assert_non_null(r.notes);
    assert_non_null(strstr(r.notes, "'big' (Tile)"));
    assert_non_null(strstr(r.notes, "cap"));
    assert_true(r.bytes_after == r.bytes_before);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    /* a cap above the result (or none) folds the Tile */
    o.fold_max_bytes = -1;
    opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.folded, 1);
    assert_int_equal(count_op(opt, "Tile"), 0);
    assert_true(r.bytes_after > r.bytes_before + 70000 * 4 - 100);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    /* the single pass gives the same count */
    opt = copy_model(m);
    size_t changed = 99;
    assert_int_equal(pare_opt_fold_constants(opt, 0, &changed, &err), PARE_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(pare_opt_fold_constants(opt, 2 << 20, &changed, &err), PARE_OK);
    assert_int_equal(changed, 1);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);

    /* random ops never fold (the executor has no kernel for them, so this is
     * checked on the graph only) */
    m = new_model(17);
    x = add_input(m, "x", PARE_DT_FLOAT, 2, d);
    const char *rnd_ops[3] = {"RandomUniform", "RandomNormal", "Bernoulli"};
    pare_node *rn = add_node(m, rnd_ops[0], "rnd", NULL, 0);
    assert_int_equal(pare_node_set_attr_ints(rn, "shape", d, 2, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_float(rn, "seed", 3.0f, &err), PARE_OK);
    pare_node *rn2 = add_node(m, rnd_ops[1], "rnd2", NULL, 0);
    assert_int_equal(pare_node_set_attr_ints(rn2, "shape", d, 2, &err), PARE_OK);
    pare_value *bi = out0(rn);
    pare_value *bern = out0(add_node(m, rnd_ops[2], "bern", &bi, 1));
    pare_value *zi[3] = {bern, out0(rn2), x};
    pare_value *mz = out0(add_node(m, "Sum", "mz", zi, 3));
    add_output(m, mz, PARE_DT_FLOAT);
    m = reload(m);
    assert_int_equal(pare_opt_fold_constants(m, -1, &changed, &err), PARE_OK);
    assert_int_equal(changed, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(count_op(m, rnd_ops[i]), 1);
    pare_model_free(m);
}

/* ---- BatchNormalization folding ---- */

typedef enum { K_CONV, K_CONV_BIAS, K_CONV_GROUP, K_CONVT, K_CONVT_GROUP, K_GEMM, K_GEMM_T,
               K_GEMM_C, K_GEMM_C_T_BETA } bn_kind;

static void bn_case(bn_kind kind)
{
    pare_model *m = new_model(15);
    pare_error err;
    bool gemm = kind >= K_GEMM;
    int64_t c = kind == K_CONVT_GROUP || kind == K_CONV_GROUP ? 4 : 3;
    int64_t xd4[4] = {2, kind == K_CONVT_GROUP || kind == K_CONV_GROUP ? 2 : 2, 5, 5};
    int64_t xd2[2] = {3, 6};
    if (kind == K_CONVT_GROUP)
        xd4[1] = 4;
    pare_value *x = gemm ? add_input(m, "x", PARE_DT_FLOAT, 2, xd2)
                         : add_input(m, "x", PARE_DT_FLOAT, 4, xd4);
    pare_value *ins[3] = {x, NULL, NULL};
    size_t nin = 2;
    const char *op = "Conv";
    int64_t wd[4];
    switch (kind) {
    case K_CONV:
    case K_CONV_BIAS:
        wd[0] = c, wd[1] = 2, wd[2] = 3, wd[3] = 3;
        break;
    case K_CONV_GROUP: /* group 2: [4, 1, 3, 3] */
        wd[0] = 4, wd[1] = 1, wd[2] = 3, wd[3] = 3;
        break;
    case K_CONVT: /* [C_in 2, C_out 3, 2, 2] */
        op = "ConvTranspose";
        wd[0] = 2, wd[1] = 3, wd[2] = 2, wd[3] = 2;
        break;
    case K_CONVT_GROUP: /* group 2: [C_in 4, C_out/g 2, 2, 2] -> 4 channels */
        op = "ConvTranspose";
        wd[0] = 4, wd[1] = 2, wd[2] = 2, wd[3] = 2;
        break;
    default:
        op = "Gemm";
        break;
    }
    if (gemm) {
        bool tb = kind == K_GEMM_T || kind == K_GEMM_C_T_BETA;
        int64_t bd[2] = {tb ? c : 6, tb ? 6 : c};
        ins[1] = add_init(m, "W", 2, bd, 0.25f, 2);
        if (kind == K_GEMM_C) {
            int64_t cd[1] = {c};
            ins[2] = add_init(m, "C", 1, cd, 0.5f, 5), nin = 3;
        } else if (kind == K_GEMM_C_T_BETA) {
            int64_t cd[2] = {3, 1}; /* [M, 1]: broadcast along the columns */
            ins[2] = add_init(m, "C", 2, cd, 0.5f, 4), nin = 3;
        }
    } else {
        ins[1] = add_init(m, "W", 4, wd, 0.125f, 2);
        if (kind == K_CONV_BIAS) {
            int64_t cd[1] = {c};
            ins[2] = add_init(m, "B0", 1, cd, 0.5f, 6), nin = 3;
        }
    }
    pare_node *p = add_node(m, op, "p", ins, nin);
    if (kind == K_CONV_GROUP || kind == K_CONVT_GROUP)
        assert_int_equal(pare_node_set_attr_int(p, "group", 2, &err), PARE_OK);
    if (kind == K_GEMM_T || kind == K_GEMM_C_T_BETA)
        assert_int_equal(pare_node_set_attr_int(p, "transB", 1, &err), PARE_OK);
    if (kind == K_GEMM_C_T_BETA) {
        assert_int_equal(pare_node_set_attr_float(p, "beta", 0.5f, &err), PARE_OK);
        assert_int_equal(pare_node_set_attr_float(p, "alpha", 1.5f, &err), PARE_OK);
    }
    int64_t cd[1] = {c};
    pare_value *bn_in[5] = {out0(p), add_init(m, "scale", 1, cd, 0.3f, 1),
                            add_init(m, "bias", 1, cd, 0.2f, 2),
                            add_init(m, "mean", 1, cd, 0.1f, 3), NULL};
    pare_value *var = add_init(m, "var", 1, cd, 0.1f, 4);
    for (int64_t i = 0; i < c; i++)
        ((float *)var->init->data)[i] = 0.5f + 0.25f * (float)i;
    bn_in[4] = var;
    pare_node *bn = add_node(m, "BatchNormalization", "y", bn_in, 5);
    assert_int_equal(pare_node_set_attr_float(bn, "epsilon", 1e-3f, &err), PARE_OK);
    add_output(m, out0(bn), PARE_DT_FLOAT);
    m = reload(m);

    pare_tensor *in = gemm ? rand_input("x", 2, xd2, 5) : rand_input("x", 4, xd4, 5);
    pare_opt_opts o = only("bn");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 1e-4, 1e-5);
    if (r.bn_folded != 1)
        fail_msg("case %d: BN was not folded", (int)kind);
    assert_int_equal(count_op(opt, "BatchNormalization"), 0);
    pare_graph *g = pare_model_graph(opt);
    assert_int_equal(g->n_nodes, 1);
    assert_string_equal(g->outputs[0]->name, "y");
    /* the bias input exists now, and the BN parameters are gone */
    assert_true(g->nodes[0]->n_inputs == 3 && g->nodes[0]->inputs[2]);
    assert_null(pare_graph_find_value(g, "mean"));
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);
}

static void test_fold_bn_conv(void **state)
{
    (void)state;
    bn_case(K_CONV);
    bn_case(K_CONV_BIAS);
    bn_case(K_CONV_GROUP);
}

static void test_fold_bn_convtranspose(void **state)
{
    (void)state;
    bn_case(K_CONVT);
    bn_case(K_CONVT_GROUP);
}

static void test_fold_bn_gemm(void **state)
{
    (void)state;
    bn_case(K_GEMM);
    bn_case(K_GEMM_T);
    bn_case(K_GEMM_C);
    bn_case(K_GEMM_C_T_BETA);
}

/* The Conv's output read by another node too: BN stays. Also testdata's CNN. */
static void test_fold_bn_shared_and_cnn(void **state)
{
    (void)state;
    pare_model *m = new_model(15);
    int64_t xd[4] = {1, 2, 4, 4}, wd[4] = {3, 2, 1, 1}, cd[1] = {3};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 4, xd);
    pare_value *ci[2] = {x, add_init(m, "W", 4, wd, 0.5f, 1)};
    pare_value *cv = out0(add_node(m, "Conv", "cv", ci, 2));
    pare_value *bi[5] = {cv, add_init(m, "s", 1, cd, 1, 1), add_init(m, "b", 1, cd, 1, 2),
                         add_init(m, "mu", 1, cd, 1, 3), add_init(m, "var", 1, cd, 0, 0)};
    for (int i = 0; i < 3; i++)
        ((float *)bi[4]->init->data)[i] = 1.0f;
    add_output(m, out0(add_node(m, "BatchNormalization", "y", bi, 5)), PARE_DT_FLOAT);
    add_output(m, out0(add_node(m, "Relu", "r", &cv, 1)), PARE_DT_FLOAT);
    m = reload(m);
    pare_tensor *in = rand_input("x", 4, xd, 9);
    pare_opt_opts o = only("bn");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.bn_folded, 0);
    assert_int_equal(count_op(opt, "BatchNormalization"), 1);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);

    /* the trained CNN of testdata: its BN folds, labels unchanged */
    char path[512];
    pare_error err;
    snprintf(path, sizeof path, "%s/cnn_digits.onnx", PARE_TESTDATA);
    assert_int_equal(pare_model_load(path, NULL, &m, &err), PARE_OK);
    pare_tensor *data;
    pare_npz *z;
    snprintf(path, sizeof path, "%s/digits_val.npz", PARE_TESTDATA);
    assert_int_equal(pare_npz_open(path, &z, &err), PARE_OK);
    assert_int_equal(pare_npz_read_rows(z, (size_t)pare_npz_find(z, "input"), 0, 32, &data, &err),
                     PARE_OK);
    pare_npz_close(z);
    pare_tensor_set_name(data, "input", &err);
    size_t bn_before = count_op(m, "BatchNormalization");
    assert_true(bn_before >= 1);
    pare_opt_opts all = PARE_OPT_OPTS_ALL;
    opt = optimize_and_compare(m, &all, &r, &data, 1, 1e-4, 1e-5);
    assert_int_equal(r.bn_folded, bn_before);
    assert_int_equal(count_op(opt, "BatchNormalization"), 0);
    assert_true(r.nodes_after == r.nodes_before - bn_before);
    assert_true(r.inits_after < r.inits_before);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(data);
    pare_model_free(m);
}

/* ---- duplicate initializers ---- */

static void test_dedupe(void **state)
{
    (void)state;
    pare_model *m = new_model(17);
    int64_t d[1] = {4}, d22[2] = {2, 2};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 1, d);
    pare_value *w1 = add_init(m, "w1", 1, d, 0.5f, 1);
    pare_value *w2 = add_init(m, "w2", 1, d, 0.5f, 1); /* same as w1 */
    pare_value *w3 = add_init(m, "w3", 1, d, 0.5f, 2); /* other bytes */
    pare_value *w4 = add_init(m, "w4", 2, d22, 0.5f, 1); /* same bytes, other dims */
    pare_value *a1[2] = {x, w1}, *a2[2], *a3[2];
    pare_value *s1 = out0(add_node(m, "Add", "s1", a1, 2));
    a2[0] = s1, a2[1] = w2;
    pare_value *s2 = out0(add_node(m, "Mul", "s2", a2, 2));
    a3[0] = s2, a3[1] = w3;
    pare_value *s3 = out0(add_node(m, "Sub", "s3", a3, 2));
    pare_value *r4[2] = {s3, NULL};
    int64_t shp[1] = {4};
    pare_value *rs[2] = {w4, add_ints(m, "shp", 1, shp)};
    r4[1] = out0(add_node(m, "Reshape", "w4r", rs, 2));
    add_output(m, out0(add_node(m, "Add", "y", r4, 2)), PARE_DT_FLOAT);
    m = reload(m);
    pare_tensor *in = rand_input("x", 1, d, 4);
    pare_opt_opts o = only("dedupe");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.deduped, 1);
    pare_graph *g = pare_model_graph(opt);
    assert_non_null(pare_graph_find_value(g, "w1"));
    assert_null(pare_graph_find_value(g, "w2"));
    assert_non_null(pare_graph_find_value(g, "w3"));
    assert_non_null(pare_graph_find_value(g, "w4"));
    assert_int_equal(r.inits_after, r.inits_before - 1);
    assert_true(r.bytes_after == r.bytes_before - 16);
    assert_ptr_equal(pare_graph_find_node(g, "s2")->inputs[1], pare_graph_find_value(g, "w1"));
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* ---- no-op shape and type ops ---- */

static void test_noop(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_error err;
    int64_t d[2] = {2, 3};
    pare_value *x = add_input(m, "x", PARE_DT_FLOAT, 2, d);
    int64_t same[2] = {2, 3}, neg[2] = {0, -1}, zeros[4] = {0, 0, 0, 0};
    int64_t st0[1] = {0}, big[1] = {INT64_MAX}, ax0[1] = {0}, e13[2] = {1, 3}, sw[2] = {3, 2};
    pare_value *ri[2] = {x, add_ints(m, "shape_same", 2, same)};
    pare_value *v = out0(add_node(m, "Reshape", "r1", ri, 2));
    ri[0] = v, ri[1] = add_ints(m, "shape_neg", 2, neg);
    v = out0(add_node(m, "Reshape", "r2", ri, 2));
    pare_node *tr = add_node(m, "Transpose", "t1", &v, 1);
    int64_t perm[2] = {0, 1};
    assert_int_equal(pare_node_set_attr_ints(tr, "perm", perm, 2, &err), PARE_OK);
    v = out0(tr);
    pare_node *ca = add_node(m, "Cast", "c1", &v, 1);
    assert_int_equal(pare_node_set_attr_int(ca, "to", PARE_DT_FLOAT, &err), PARE_OK);
    v = out0(ca);
    pare_value *pi[2] = {v, add_ints(m, "pads0", 4, zeros)};
    v = out0(add_node(m, "Pad", "p1", pi, 2));
    pare_value *si[4] = {v, add_ints(m, "st0", 1, st0), add_ints(m, "big", 1, big),
                         add_ints(m, "ax0", 1, ax0)};
    v = out0(add_node(m, "Slice", "sl1", si, 4));
    pare_value *ei[2] = {v, add_ints(m, "e13", 2, e13)};
    v = out0(add_node(m, "Expand", "e1", ei, 2));
    v = out0(add_node(m, "Concat", "cc1", &v, 1));
    pare_node_set_attr_int(v->producer, "axis", 0, &err);
    pare_value *ui[2] = {v, pare_graph_find_value(pare_model_graph(m), "ax0")};
    v = out0(add_node(m, "Unsqueeze", "u1", ui, 2));
    pare_value *qi[2] = {v, ui[1]};
    v = out0(add_node(m, "Squeeze", "q1", qi, 2));
    pare_value *y = out0(add_node(m, "Relu", "y", &v, 1));
    add_output(m, y, PARE_DT_FLOAT);
    /* ones that change something stay */
    pare_value *ki[2] = {x, add_ints(m, "shape_sw", 2, sw)};
    pare_value *k = out0(add_node(m, "Reshape", "keep_r", ki, 2));
    pare_node *kt = add_node(m, "Transpose", "keep_t", &x, 1);
    int64_t perm10[2] = {1, 0};
    assert_int_equal(pare_node_set_attr_ints(kt, "perm", perm10, 2, &err), PARE_OK);
    pare_value *kk[2] = {k, out0(kt)};
    pare_value *z = out0(add_node(m, "Add", "z", kk, 2));
    int64_t one[1] = {1};
    pare_value *ksl[4] = {z, add_ints(m, "one", 1, one), add_ints(m, "big2", 1, big),
                          add_ints(m, "ax1", 1, ax0)};
    add_output(m, out0(add_node(m, "Slice", "keep_sl", ksl, 4)), PARE_DT_FLOAT);
    /* starts 0, ends 1 on axis 0 (of size 2): a real slice */
    pare_value *ksl2[4] = {z, pare_graph_find_value(pare_model_graph(m), "st0"), ksl[1], ksl[3]};
    add_output(m, out0(add_node(m, "Slice", "keep_sl2", ksl2, 4)), PARE_DT_FLOAT);
    m = reload(m);
    pare_tensor *in = rand_input("x", 2, d, 6);
    pare_opt_opts o = only("noop");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.removed_noop, 10);
    pare_graph *g = pare_model_graph(opt);
    assert_string_equal(g->outputs[0]->name, "y");
    assert_ptr_equal(g->outputs[0]->producer->inputs[0], g->inputs[0]);
    assert_int_equal(count_op(opt, "Reshape"), 1);
    assert_int_equal(count_op(opt, "Transpose"), 1);
    assert_int_equal(count_op(opt, "Slice"), 2);
    assert_int_equal(count_op(opt, "Squeeze") + count_op(opt, "Unsqueeze"), 0);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* Reshape [0, -1] over a symbolic batch: still a no-op. */
static void test_noop_symbolic(void **state)
{
    (void)state;
    pare_model *m = new_model(13);
    pare_error err;
    pare_graph *g = pare_model_graph(m);
    pare_value *x;
    assert_int_equal(pare_graph_new_value(g, "x", NULL, PARE_DT_FLOAT, &x, &err), PARE_OK);
    pare_dim dims[2] = {{-1, (char *)"N"}, {5, NULL}};
    pare_shape sh = {2, dims};
    assert_int_equal(pare_value_set_type(x, PARE_DT_FLOAT, &sh, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, x, &err), PARE_OK);
    int64_t neg[2] = {0, -1};
    pare_value *ri[2] = {x, add_ints(m, "s", 2, neg)};
    pare_value *r1 = out0(add_node(m, "Reshape", "r1", ri, 2));
    add_output(m, out0(add_node(m, "Neg", "y", &r1, 1)), PARE_DT_FLOAT);
    m = reload(m);
    int64_t d[2] = {3, 5};
    pare_tensor *in = rand_input("x", 2, d, 7);
    pare_opt_opts o = only("noop");
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, &in, 1, 0, 0);
    assert_int_equal(r.removed_noop, 1);
    assert_int_equal(count_op(opt, "Reshape"), 0);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* ---- dead code, subgraph reads ---- */

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

static pare_tensor **control_flow_inputs(size_t *n)
{
    char path[512];
    pare_npz *z;
    pare_error err;
    snprintf(path, sizeof path, "%s/control_flow_data.npz", PARE_TESTDATA);
    assert_int_equal(pare_npz_open(path, &z, &err), PARE_OK);
    pare_tensor **ins = calloc(3, sizeof *ins);
    const char *names[3] = {"x", "cond", "trip"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pare_npz_read(z, (size_t)pare_npz_find(z, names[i]), &ins[i], &err),
                         PARE_OK);
        pare_tensor_set_name(ins[i], names[i], &err);
    }
    pare_npz_close(z);
    *n = 3;
    return ins;
}

static void test_dead_and_subgraph_reads(void **state)
{
    (void)state;
    pare_model *m = load("control_flow.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    /* dead: Neg(x) -> Relu nobody reads, and an unused initializer */
    pare_value *x = pare_graph_find_value(g, "x");
    pare_value *dn = out0(add_node(m, "Neg", "dead_neg", &x, 1));
    add_node(m, "Relu", "dead_relu", &dn, 1);
    int64_t d[1] = {5};
    add_init(m, "unused_w", 1, d, 1, 0);
    size_t n_in;
    pare_tensor **ins = control_flow_inputs(&n_in);
    pare_opt_opts o = PARE_OPT_OPTS_ALL;
    pare_opt_report r;
    pare_model *opt = optimize_and_compare(m, &o, &r, ins, n_in, 0, 0);
    assert_true(r.removed_dead >= 3);
    pare_graph *h = pare_model_graph(opt);
    assert_null(pare_graph_find_node(h, "dead_neg"));
    assert_null(pare_graph_find_value(h, "unused_w"));
    /* 't' is read only inside the If's then-branch: it stays */
    pare_value *t = pare_graph_find_value(h, "t");
    assert_non_null(t);
    assert_non_null(t->producer);
    /* the bodies' Identity nodes that keep an input or an output name stay */
    assert_int_equal(h->n_inputs, 3);
    pare_opt_report_release(&r);
    pare_model_free(opt);
    pare_model_free(m);

    /* a branch output that names an outer value (no node in the branch) */
    m = load("control_flow.onnx");
    g = pare_model_graph(m);
    pare_node *ifn = NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (pare_node_is(g->nodes[i], "", "If"))
            ifn = g->nodes[i];
    assert_non_null(ifn);
    const pare_attr *tb = pare_node_attr(ifn, "then_branch");
    assert_non_null(tb);
    pare_graph *then = tb->g;
    pare_value *stand;
    assert_int_equal(pare_graph_new_value(then, "t", NULL, PARE_DT_FLOAT, &stand, &err), PARE_OK);
    assert_int_equal(pare_graph_remove_output(then, 0, &err), PARE_OK);
    assert_int_equal(pare_graph_add_output(then, stand, &err), PARE_OK);
    m = reload(m);
    /* (checked on the graph: the executor does not run such a branch yet) */
    assert_int_equal(pare_optimize(m, &o, &r, &err), PARE_OK);
    assert_true(r.removed_dead >= 3); /* the branch's own nodes, now unread */
    h = pare_model_graph(m);
    t = pare_graph_find_value(h, "t");
    assert_non_null(t);
    assert_non_null(t->producer);
    assert_string_equal(t->producer->op_type, "Mul");
    pare_problems p = {0};
    assert_int_equal(pare_model_validate(m, &p, &err), PARE_OK);
    assert_int_equal(p.n, 0);
    pare_opt_report_release(&r);
    pare_model_free(m);
    pare_tensors_free(ins, n_in);
}

/* ---- cutting to outputs / from inputs ---- */

typedef struct grab {
    const char *name;
    pare_tensor *t;
} grab;

static int grab_fn(void *ctx, const pare_node *node, size_t output, const pare_tensor *t)
{
    grab *gr = ctx;
    pare_error err;
    if (node->outputs[output] && strcmp(node->outputs[output]->name, gr->name) == 0 && !gr->t)
        pare_tensor_clone(t, &gr->t, &err);
    return 0;
}

static void test_cut(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    /* the output of the first Relu */
    const char *mid = NULL;
    for (size_t i = 0; i < g->n_nodes && !mid; i++)
        if (pare_node_is(g->nodes[i], "", "Relu"))
            mid = g->nodes[i]->outputs[0]->name;
    assert_non_null(mid);
    char midname[256];
    snprintf(midname, sizeof midname, "%s", mid);
    int64_t d[4] = {2, 1, 8, 8};
    pare_tensor *in = rand_input("input", 4, d, 11);
    /* reference: the intermediate and the logits of the whole model */
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    assert_int_equal(pare_session_new(m, &so, &s, &err), PARE_OK);
    grab gr = {midname, NULL};
    pare_session_set_observer(s, grab_fn, &gr);
    pare_tensor **full;
    size_t nf;
    assert_int_equal(pare_session_run(s, &in, 1, &full, &nf, &err), PARE_OK);
    pare_session_free(s);
    assert_non_null(gr.t);

    /* cut to the intermediate */
    pare_model *a = copy_model(m);
    const char *outs[1] = {midname};
    pare_opt_opts o = PARE_OPT_OPTS_NONE;
    o.outputs = outs;
    o.n_outputs = 1;
    pare_opt_report r;
    assert_int_equal(pare_optimize(a, &o, &r, &err), PARE_OK);
    assert_true(r.nodes_after < r.nodes_before);
    assert_int_equal(pare_model_graph(a)->n_outputs, 1);
    assert_string_equal(pare_model_graph(a)->outputs[0]->name, midname);
    pare_opt_report_release(&r);
    pare_model *a2 = copy_model(a);
    size_t n1;
    pare_tensor **o1 = run(a2, &in, 1, &n1);
    pare_tensor *want1 = gr.t;
    pare_tensor_set_name(want1, midname, &err);
    /* the observed run is unfused; the cut model's run folds bn1 into
     * conv1's weights (pare/exec.h: fusion), so float rounding differs */
    expect_close(o1, n1, &want1, 1, 1e-5, 1e-6);
    pare_tensors_free(o1, n1);
    pare_model_free(a2);
    pare_model_free(a);

    /* start from the intermediate: it becomes the only input */
    pare_model *b = copy_model(m);
    const char *ins_[1] = {midname};
    o.outputs = NULL;
    o.n_outputs = 0;
    o.inputs = ins_;
    o.n_inputs = 1;
    assert_int_equal(pare_optimize(b, &o, &r, &err), PARE_OK);
    pare_opt_report_release(&r);
    pare_graph *bg = pare_model_graph(b);
    assert_int_equal(bg->n_inputs, 1);
    assert_string_equal(bg->inputs[0]->name, midname);
    assert_int_equal(bg->inputs[0]->dtype, PARE_DT_FLOAT);
    assert_null(pare_graph_find_value(bg, "input"));
    pare_model *b2 = copy_model(b);
    size_t n2;
    pare_tensor **o2 = run(b2, &gr.t, 1, &n2);
    expect_close(o2, n2, full, nf, 1e-5, 1e-6);
    pare_tensors_free(o2, n2);
    pare_model_free(b2);
    pare_model_free(b);

    /* unknown names: PARE_ERR_ARG naming them, the model untouched */
    pare_model *c = copy_model(m);
    size_t nodes = pare_model_graph(c)->n_nodes;
    const char *bad[1] = {"no_such_tensor"};
    o.inputs = NULL;
    o.n_inputs = 0;
    o.outputs = bad;
    o.n_outputs = 1;
    assert_int_equal(pare_optimize(c, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "'no_such_tensor'"));
    o.outputs = NULL;
    o.n_outputs = 0;
    o.inputs = bad;
    o.n_inputs = 1;
    assert_int_equal(pare_optimize(c, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "'no_such_tensor'"));
    /* an initializer is no input */
    const char *w[1] = {NULL};
    for (size_t i = 0; i < pare_model_graph(c)->n_values && !w[0]; i++)
        if (pare_model_graph(c)->values[i]->init)
            w[0] = pare_model_graph(c)->values[i]->name;
    o.inputs = w;
    assert_int_equal(pare_optimize(c, &o, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "initializer"));
    assert_int_equal(pare_model_graph(c)->n_nodes, nodes);
    pare_model_free(c);

    pare_tensors_free(full, nf);
    pare_tensor_free(gr.t);
    pare_tensor_free(in);
    pare_model_free(m);
}

/* ---- bad models: an error or a valid result, never a crash ---- */

static void test_bad_models(void **state)
{
    (void)state;
    const char *files[] = {
        "bad/cycle.onnx", "bad/two_producers.onnx", "bad/undefined_input.onnx",
        "bad/wrong_dtype_len.onnx", "bad/dims_overflow.onnx",
        "../tests/exec/data/div_zero.onnx", "../tests/exec/data/gather_oob.onnx",
        "../tests/exec/data/reshape_bad.onnx", "../tests/exec/data/scatternd_oob.onnx",
        "../tests/exec/data/log_nan.onnx",
    };
    size_t optimized = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512];
        pare_model *m;
        pare_error err;
        snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, files[i]);
        if (pare_model_load(path, NULL, &m, &err) != PARE_OK)
            continue;
        pare_problems before = {0}, after = {0};
        assert_int_equal(pare_model_validate(m, &before, &err), PARE_OK);
        pare_opt_report r;
        pare_status st = pare_optimize(m, NULL, &r, &err);
        if (st != PARE_OK) {
            assert_true(err.msg[0] != 0);
        } else {
            optimized++;
            assert_true(r.nodes_after <= r.nodes_before);
            assert_int_equal(pare_model_validate(m, &after, &err), PARE_OK);
            assert_true(after.n <= before.n);
        }
        pare_opt_report_release(&r);
        pare_problems_release(&before);
        pare_problems_release(&after);
        pare_model_free(m);
    }
    assert_true(optimized >= 5);
}

/* ---- determinism ---- */

static void test_deterministic(void **state)
{
    (void)state;
    void *b1, *b2;
    size_t l1, l2;
    pare_error err;
    pare_model *m1 = load("transformer_block.onnx"), *m2 = load("transformer_block.onnx");
    assert_int_equal(pare_optimize(m1, NULL, NULL, &err), PARE_OK);
    assert_int_equal(pare_optimize(m2, NULL, NULL, &err), PARE_OK);
    assert_int_equal(pare_model_save_buffer(m1, &b1, &l1, &err), PARE_OK);
    assert_int_equal(pare_model_save_buffer(m2, &b2, &l2, &err), PARE_OK);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    pare_model_free(m1);
    pare_model_free(m2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_dropout),
        cmocka_unit_test(test_fold_chain),
        cmocka_unit_test(test_fold_cap_and_exclusions),
        cmocka_unit_test(test_fold_bn_conv),
        cmocka_unit_test(test_fold_bn_convtranspose),
        cmocka_unit_test(test_fold_bn_gemm),
        cmocka_unit_test(test_fold_bn_shared_and_cnn),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_noop_symbolic),
        cmocka_unit_test(test_dead_and_subgraph_reads),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
