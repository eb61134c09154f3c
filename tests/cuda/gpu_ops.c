/* GPU suite: targeted cases of the dnn and quant CUDA kernels (lib/cuda/dnn.c,
 * quant.c) against the CPU kernels as float references: fp16/bf16
 * convolutions with asymmetric pads, groups and dilations, ConvTranspose,
 * pools with ceil_mode and indices, BatchNormalization, Resize, int8/int4/
 * fp8 Quantize/DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
 * QLinearMatMul, QLinearConv and MatMulNBits. Each case is a one-node model
 * run by a CPU session and a cuda session; the node must be placed on cuda
 * and the outputs must agree within the case's tolerance (stated per case:
 * relative to the largest reference magnitude for float outputs, in units
 * for integer ones). Exits 77 (skipped) where no GPU is usable.
 * Prints "N passed, N failed" and each failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/exec.h"
#include "pare/model.h"
#include "exec/backend.h"
#include "gpu_common.h"

static int passed, failed;

/* The device under test. Building with -DGPU_OPS_DEVICE='"cpu"' runs the
 * harness CPU against CPU (a check of the cases themselves where no GPU
 * is). */
#ifndef GPU_OPS_DEVICE
#define GPU_OPS_DEVICE "cuda"
#endif

/* ---- model building ---- */

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

static size_t opset_import(unsigned char *b, const char *domain, int64_t version)
{
    unsigned char imp[64];
    size_t k = 0, n = 0, dl = strlen(domain);
    imp[k++] = 0x0a;
    imp[k++] = (unsigned char)dl;
    memcpy(imp + k, domain, dl);
    k += dl;
    imp[k++] = 0x10;
    k += varint(imp + k, (uint64_t)version);
    b[n++] = 0x42;
    n += varint(b + n, k);
    memcpy(b + n, imp, k);
    return n + k;
}

/* ModelProto{ir_version 8, graph "g", opsets "" and com.microsoft 1} */
static pare_model *new_model(int64_t opset)
{
    unsigned char b[160];
    size_t n = 0;
    b[n++] = 0x08;
    b[n++] = 8;
    b[n++] = 0x3a;
    b[n++] = 3;
    b[n++] = 0x12;
    b[n++] = 1;
    b[n++] = 'g';
    n += opset_import(b + n, "", opset);
    n += opset_import(b + n, "com.microsoft", 1);
    pare_model *m = NULL;
    pare_error err;
    if (pare_model_load_buffer(b, n, NULL, NULL, &m, &err)) {
        fprintf(stderr, "model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static void must(pare_status st, const pare_error *err, const char *what)
{
    if (st) {
        fprintf(stderr, "%s: %s\n", what, err->msg);
        exit(1);
    }
}

static uint32_t rng = 12345u;

static double urand(void) /* [0, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (double)(rng >> 8) / 16777216.0;
}

/* a tensor of dims filled with lo + (hi - lo) * u, rounded when integer */
static pare_tensor *rand_tensor(const char *name, int dtype, int rank, const int64_t *dims,
                                double lo, double hi)
{
    pare_tensor *t;
    pare_error err;
    must(pare_tensor_new(name, dtype, rank, dims, &t, &err), &err, "tensor");
    uint64_t n = pare_tensor_numel(t);
    bool integer = !pare_dtype_is_float(dtype);
    for (uint64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * urand();
        pare_dtype_set_f64(dtype, t->data, i, integer ? floor(v + 0.5) : v);
    }
    return t;
}

typedef struct tcase {
    const char *name;
    pare_model *m;
    pare_graph *g;
    pare_node *node;
    pare_tensor *in[8];
    size_t n_in;
    double tol;     /* float outputs: max |d| / max |ref|; integer: max |d| */
} tcase;

static void tc_begin(tcase *c, const char *name, int64_t opset, double tol)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->m = new_model(opset);
    c->g = pare_model_graph(c->m);
    c->tol = tol;
}

/* a graph input fed with t (owned by the case) */
static pare_value *tc_input(tcase *c, pare_tensor *t)
{
    pare_value *v;
    pare_error err;
    must(pare_graph_new_value(c->g, t->name, NULL, t->dtype, &v, &err), &err, "value");
    must(pare_value_set_dims(v, t->dtype, t->rank, t->dims, &err), &err, "dims");
    must(pare_graph_add_input(c->g, v, &err), &err, "input");
    c->in[c->n_in++] = t;
    return v;
}

/* an initializer holding t (ownership taken) */
static pare_value *tc_const(tcase *c, pare_tensor *t)
{
    pare_value *v;
    pare_error err;
    must(pare_graph_add_initializer(c->g, t, &v, &err), &err, "initializer");
    return v;
}

static pare_node *tc_node(tcase *c, const char *domain, const char *op, pare_value *const *ins,
                          size_t n_ins, size_t n_outs)
{
    pare_value *outs[3] = {NULL, NULL, NULL};
    pare_error err;
    for (size_t i = 0; i < n_outs && i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "y%zu", i);
        must(pare_graph_new_value(c->g, nm, NULL, 0, &outs[i], &err), &err, "output");
    }
    must(pare_graph_add_node(c->g, "n", domain, op, ins, n_ins, outs, n_outs, NULL, &c->node,
                             &err),
         &err, "node");
    for (size_t i = 0; i < n_outs; i++)
        must(pare_graph_add_output(c->g, outs[i], &err), &err, "graph output");
    return c->node;
}

static int conv_algo; /* pare_session_opts.cuda_conv_algo of the device runs */
/* when set: the device run's plan must have a row on cuda whose note
 * contains it (QDQ cases: "8-bit QDQ kernel"), or must not (want_absent) */
static const char *want_note;
static bool want_absent;


static pare_status run_on(tcase *c, const char *device, pare_tensor ***outs, size_t *n,
                          size_t *on_device, pare_error *err)
{
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    o.device = device;
    o.cuda_conv_algo = conv_algo;
    pare_session *s;
    pare_status st = pare_session_new(c->m, &o, &s, err);
    if (st)
        return st;
    st = pare_session_run(s, c->in, c->n_in, outs, n, err);
    if (!st && want_note && strcmp(device, "cpu")) {
        char *plan = pare_session_plan_text(s);
        if (!plan || gpu_plan_has(plan, "cuda", want_note) == want_absent) {
            fprintf(stderr, "%s", plan ? plan : "");
            st = pare_error_set(err, PARE_ERR_RUNTIME, "the plan has %sa cuda row with '%s'",
                                want_absent ? "" : "no ", want_note);
        }
        free(plan);
    }
    if (!st && on_device) {
        pare_run_stats rs;
        pare_session_run_stats(s, &rs);
        *on_device = rs.nodes_device;
        if (!rs.nodes_device && strcmp(device, "cpu")) {
            char *plan = pare_session_plan_text(s);
            fprintf(stderr, "%s", plan ? plan : "");
            free(plan);
        }
    }
    pare_session_free(s);
    return st;
}

static void tc_end(tcase *c)
{
    pare_tensor **ref = NULL, **got = NULL;
    size_t nr = 0, ng = 0, on_dev = 0;
    pare_error err;
    char why[1200] = "";
    if (run_on(c, "cpu", &ref, &nr, NULL, &err))
        snprintf(why, sizeof why, "cpu: %s", err.msg);
    else if (run_on(c, GPU_OPS_DEVICE, &got, &ng, &on_dev, &err))
        snprintf(why, sizeof why, "%s: %s", GPU_OPS_DEVICE, err.msg);
    else if (!on_dev && strcmp(GPU_OPS_DEVICE, "cpu"))
        snprintf(why, sizeof why, "the node did not run on cuda");
    for (size_t o = 0; !why[0] && o < nr && o < ng; o++) {
        const pare_tensor *r = ref[o], *t = got[o];
        if (r->dtype != t->dtype || r->rank != t->rank ||
            pare_tensor_numel(r) != pare_tensor_numel(t)) {
            snprintf(why, sizeof why, "output %zu: dtype or shape differs", o);
            break;
        }
        uint64_t n = pare_tensor_numel(r);
        double maxref = 0, maxd = 0;
        uint64_t at = 0;
        for (uint64_t i = 0; i < n; i++) {
            double a = pare_dtype_get_f64(r->dtype, r->data, i);
            double b = pare_dtype_get_f64(t->dtype, t->data, i);
            double d = (isnan(a) && isnan(b)) ? 0 : fabs(a - b);
            if (isnan(d))
                d = INFINITY;
            if (fabs(a) > maxref && isfinite(a))
                maxref = fabs(a);
            if (d > maxd) {
                maxd = d;
                at = i;
            }
        }
        bool fl = pare_dtype_is_float(r->dtype);
        double score = fl ? maxd / (maxref > 0 ? maxref : 1) : maxd;
        if (!(score <= c->tol))
            snprintf(why, sizeof why,
                     "output %zu (%s): max diff %g at %llu (cpu %g, cuda %g), tolerance %g%s", o,
                     pare_dtype_name(r->dtype), maxd, (unsigned long long)at,
                     pare_dtype_get_f64(r->dtype, r->data, at),
                     pare_dtype_get_f64(t->dtype, t->data, at), c->tol,
                     fl ? " of the largest |ref|" : "");
    }
    if (!why[0] && nr != ng)
        snprintf(why, sizeof why, "%zu outputs on cpu, %zu on cuda", nr, ng);
    if (why[0]) {
        failed++;
        printf("FAIL %s: %s\n", c->name, why);
    } else {
        passed++;
        printf("ok   %s\n", c->name);
    }
    pare_tensors_free(ref, nr);
    pare_tensors_free(got, ng);
    for (size_t i = 0; i < c->n_in; i++)
        pare_tensor_free(c->in[i]);
    pare_model_free(c->m);
}

static void set_ints(pare_node *n, const char *name, const int64_t *v, size_t k)
{
    pare_error err;
    must(pare_node_set_attr_ints(n, name, v, k, &err), &err, name);
}

static void set_int(pare_node *n, const char *name, int64_t v)
{
    pare_error err;
    must(pare_node_set_attr_int(n, name, v, &err), &err, name);
}

static void set_str(pare_node *n, const char *name, const char *v)
{
    pare_error err;
    must(pare_node_set_attr_string(n, name, v, &err), &err, name);
}

/* ---- cases ---- */

static void conv_case(const char *name, int dt, double tol, int64_t group, const int64_t *pads,
                      const char *auto_pad, int64_t stride, int64_t dil, bool bias)
{
    tcase c;
    tc_begin(&c, name, 17, tol);
    int64_t xd[4] = {2, 8, 11, 10}, wd[4] = {16, 8 / group, 3, 3}, bd[1] = {16};
    pare_value *ins[3];
    ins[0] = tc_input(&c, rand_tensor("x", dt, 4, xd, -1, 1));
    ins[1] = tc_const(&c, rand_tensor("w", dt, 4, wd, -0.5, 0.5));
    ins[2] = bias ? tc_const(&c, rand_tensor("b", dt, 1, bd, -1, 1)) : NULL;
    pare_node *n = tc_node(&c, "", "Conv", ins, bias ? 3 : 2, 1);
    set_int(n, "group", group);
    int64_t s[2] = {stride, stride}, d[2] = {dil, dil};
    set_ints(n, "strides", s, 2);
    set_ints(n, "dilations", d, 2);
    if (pads)
        set_ints(n, "pads", pads, 4);
    if (auto_pad)
        set_str(n, "auto_pad", auto_pad);
    tc_end(&c);
}

/* a 1x1 convolution: with heuristics (conv_algo 1) always the batched
 * GEMM form, with the search whichever timed faster */
static void conv1x1_case(const char *name, int dt, double tol, int algo)
{
    tcase c;
    tc_begin(&c, name, 17, tol);
    int64_t xd[4] = {3, 24, 7, 9}, wd[4] = {40, 24, 1, 1}, bd[1] = {40};
    pare_value *ins[3];
    ins[0] = tc_input(&c, rand_tensor("x", dt, 4, xd, -1, 1));
    ins[1] = tc_const(&c, rand_tensor("w", dt, 4, wd, -0.5, 0.5));
    ins[2] = tc_const(&c, rand_tensor("b", dt, 1, bd, -1, 1));
    tc_node(&c, "", "Conv", ins, 3, 1);
    conv_algo = algo;
    tc_end(&c);
    conv_algo = 0;
}

static void convt_case(void)
{
    tcase c;
    tc_begin(&c, "ConvTranspose f32 stride 2 pads 1 output_padding 1 bias", 17, 1e-4);
    int64_t xd[4] = {1, 6, 5, 7}, wd[4] = {6, 4, 3, 3}, bd[1] = {4};
    pare_value *ins[3] = {tc_input(&c, rand_tensor("x", PARE_DT_FLOAT, 4, xd, -1, 1)),
                          tc_const(&c, rand_tensor("w", PARE_DT_FLOAT, 4, wd, -1, 1)),
                          tc_const(&c, rand_tensor("b", PARE_DT_FLOAT, 1, bd, -1, 1))};
    pare_node *n = tc_node(&c, "", "ConvTranspose", ins, 3, 1);
    int64_t s[2] = {2, 2}, p[4] = {1, 1, 1, 1}, op[2] = {1, 1};
    set_ints(n, "strides", s, 2);
    set_ints(n, "pads", p, 4);
    set_ints(n, "output_padding", op, 2);
    tc_end(&c);
}

static void pool_cases(void)
{
    tcase c;
    tc_begin(&c, "MaxPool f16 ceil_mode pads with Indices", 12, 0);
    int64_t xd[4] = {2, 3, 9, 8};
    pare_value *x = tc_input(&c, rand_tensor("x", PARE_DT_FLOAT16, 4, xd, -4, 4));
    pare_node *n = tc_node(&c, "", "MaxPool", &x, 1, 2);
    int64_t k[2] = {3, 2}, s[2] = {2, 2}, p[4] = {1, 0, 1, 0};
    set_ints(n, "kernel_shape", k, 2);
    set_ints(n, "strides", s, 2);
    set_ints(n, "pads", p, 4);
    set_int(n, "ceil_mode", 1);
    tc_end(&c);

    tc_begin(&c, "AveragePool f32 count_include_pad SAME_UPPER", 19, 1e-6);
    x = tc_input(&c, rand_tensor("x", PARE_DT_FLOAT, 4, xd, -4, 4));
    n = tc_node(&c, "", "AveragePool", &x, 1, 1);
    int64_t k3[2] = {3, 3};
    set_ints(n, "kernel_shape", k3, 2);
    set_ints(n, "strides", s, 2);
    set_str(n, "auto_pad", "SAME_UPPER");
    set_int(n, "count_include_pad", 1);
    tc_end(&c);

    tc_begin(&c, "GlobalAveragePool bf16", 17, 1e-2);
    x = tc_input(&c, rand_tensor("x", PARE_DT_BFLOAT16, 4, xd, -4, 4));
    tc_node(&c, "", "GlobalAveragePool", &x, 1, 1);
    tc_end(&c);
}

/* Pad with constant pads (read on the host), as exported CNNs have it */
static void pad_case(const char *name, int dtype, const char *mode, const int64_t *pads,
                     bool value)
{
    tcase c;
    tc_begin(&c, name, 19, 0);
    int64_t xd[4] = {2, 3, 9, 8}, np = 8;
    pare_value *ins[3] = {tc_input(&c, rand_tensor("x", dtype, 4, xd, -4, 4)), NULL, NULL};
    pare_tensor *pt;
    pare_error err;
    must(pare_tensor_new("pads", PARE_DT_INT64, 1, &np, &pt, &err), &err, "pads");
    memcpy(pt->data, pads, 8 * sizeof *pads);
    ins[1] = tc_const(&c, pt);
    if (value) {
        pare_tensor *cv;
        must(pare_tensor_new("value", dtype, 0, NULL, &cv, &err), &err, "value");
        pare_dtype_set_f64(dtype, cv->data, 0, 2.5);
        ins[2] = tc_const(&c, cv);
    }
    pare_node *n = tc_node(&c, "", "Pad", ins, value ? 3 : 2, 1);
    set_str(n, "mode", mode);
    tc_end(&c);
}

/* RMSNormalization over the last two dims (a transformer's, with the
 * float16 activations of a converted model) */
static void rmsnorm_case(void)
{
    tcase c;
    tc_begin(&c, "RMSNormalization f16 axis -2, scale of the normalized shape", 23, 5e-3);
    int64_t xd[3] = {4, 6, 96}, sd[2] = {6, 96};
    pare_value *ins[2] = {tc_input(&c, rand_tensor("x", PARE_DT_FLOAT16, 3, xd, -3, 3)),
                          tc_const(&c, rand_tensor("s", PARE_DT_FLOAT16, 2, sd, 0.5, 1.5))};
    pare_node *n = tc_node(&c, "", "RMSNormalization", ins, 2, 1);
    set_int(n, "axis", -2);
    tc_end(&c);
}

/* ArgMax over the classes of a segmentation head: int64 out, on cuda */
static void argmax_case(void)
{
    tcase c;
    tc_begin(&c, "ArgMax f16 over 21 classes, keepdims", 13, 0);
    int64_t xd[4] = {1, 21, 24, 32};
    pare_value *x = tc_input(&c, rand_tensor("x", PARE_DT_FLOAT16, 4, xd, -6, 6));
    pare_node *n = tc_node(&c, "", "ArgMax", &x, 1, 1);
    set_int(n, "axis", 1);
    tc_end(&c);
}

static void bn_case(void)
{
    tcase c;
    tc_begin(&c, "BatchNormalization bf16 x, f32 parameters", 15, 1e-2);
    int64_t xd[4] = {2, 5, 4, 3}, cd[1] = {5};
    pare_value *ins[5] = {tc_input(&c, rand_tensor("x", PARE_DT_BFLOAT16, 4, xd, -2, 2)),
                          tc_const(&c, rand_tensor("s", PARE_DT_FLOAT, 1, cd, 0.5, 1.5)),
                          tc_const(&c, rand_tensor("b", PARE_DT_FLOAT, 1, cd, -1, 1)),
                          tc_const(&c, rand_tensor("m", PARE_DT_FLOAT, 1, cd, -0.5, 0.5)),
                          tc_const(&c, rand_tensor("v", PARE_DT_FLOAT, 1, cd, 0.5, 2))};
    tc_node(&c, "", "BatchNormalization", ins, 5, 1);
    tc_end(&c);
}

/* computed: scales or sizes fed as a graph input (the cuda kernel reads
 * them when it runs) rather than an initializer */
static void resize_case(const char *name, int dt, const char *mode, const char *coord,
                        const char *nearest, bool sizes, bool computed, double tol)
{
    tcase c;
    tc_begin(&c, name, 19, tol);
    int64_t xd[4] = {1, 3, 5, 7}, four = 4;
    pare_value *ins[4] = {tc_input(&c, rand_tensor("x", dt, 4, xd, -3, 3)), NULL, NULL, NULL};
    pare_tensor *p;
    pare_error err;
    if (sizes) {
        must(pare_tensor_new("sizes", PARE_DT_INT64, 1, &four, &p, &err), &err, "sizes");
        int64_t v[4] = {1, 3, 12, 4};
        memcpy(p->data, v, sizeof v);
        ins[3] = computed ? tc_input(&c, p) : tc_const(&c, p);
    } else {
        must(pare_tensor_new("scales", PARE_DT_FLOAT, 1, &four, &p, &err), &err, "scales");
        float v[4] = {1, 1, 2.0f, 1.5f};
        memcpy(p->data, v, sizeof v);
        ins[2] = computed ? tc_input(&c, p) : tc_const(&c, p);
    }
    pare_node *n = tc_node(&c, "", "Resize", ins, 4, 1);
    set_str(n, "mode", mode);
    set_str(n, "coordinate_transformation_mode", coord);
    if (nearest)
        set_str(n, "nearest_mode", nearest);
    tc_end(&c);
}

static void dq_case(const char *name, int xt, int st, int64_t axis, int64_t block, bool zp,
                    double tol)
{
    tcase c;
    tc_begin(&c, name, 21, tol);
    /* per tensor: 6 x 67, not a multiple of 4 (the vectorized path's tail) */
    int64_t xd[2] = {6, axis < 0 && !block ? 67 : 64}, sd[2] = {6, block ? 64 / block : 1},
            s1[1] = {6};
    bool f8 = xt == PARE_DT_FLOAT8E4M3FN || xt == PARE_DT_FLOAT8E5M2;
    double lo = xt == PARE_DT_UINT8 ? 0 : xt == PARE_DT_INT4 ? -8 : f8 ? -400 : -128;
    double hi = xt == PARE_DT_UINT8 ? 255 : xt == PARE_DT_INT4 ? 7 : f8 ? 400 : 127;
    if (xt == PARE_DT_INT16)
        lo = -30000, hi = 30000;
    pare_value *ins[3];
    ins[0] = tc_input(&c, rand_tensor("x", xt, 2, xd, lo, hi));
    int srank = block ? 2 : axis >= 0 ? 1 : 0;
    const int64_t *sdims = block ? sd : s1;
    ins[1] = tc_const(&c, rand_tensor("s", st, srank, sdims, 0.01, 0.1));
    ins[2] = zp ? tc_const(&c, rand_tensor("z", xt, srank, sdims, lo / 4, hi / 4)) : NULL;
    pare_node *n = tc_node(&c, "", "DequantizeLinear", ins, zp ? 3 : 2, 1);
    set_int(n, "axis", axis >= 0 ? axis : 1);
    if (block)
        set_int(n, "block_size", block);
    tc_end(&c);
}

static void q_case(const char *name, int yt, int64_t block, bool saturate, double range)
{
    tcase c;
    tc_begin(&c, name, 21, 0);
    int64_t xd[2] = {4, 64}, sd[2] = {4, block ? 64 / block : 1};
    pare_value *ins[3];
    ins[0] = tc_input(&c, rand_tensor("x", PARE_DT_FLOAT, 2, xd, -range, range));
    ins[1] = tc_const(&c, rand_tensor("s", PARE_DT_FLOAT, block ? 2 : 0, sd, 0.02, 0.05));
    bool f8 = yt == PARE_DT_FLOAT8E4M3FN;
    ins[2] = f8 ? NULL
                : tc_const(&c, rand_tensor("z", yt, block ? 2 : 0, sd,
                                           yt == PARE_DT_UINT4 ? 4 : yt == PARE_DT_UINT8 ? 118 : -10,
                                           yt == PARE_DT_UINT4 ? 9 : yt == PARE_DT_UINT8 ? 138 : 10));
    pare_node *n = tc_node(&c, "", "QuantizeLinear", ins, f8 ? 2 : 3, 1);
    if (block) {
        set_int(n, "axis", 1);
        set_int(n, "block_size", block);
    }
    if (f8) {
        set_int(n, "output_dtype", PARE_DT_FLOAT8E4M3FN);
        set_int(n, "saturate", saturate);
    }
    tc_end(&c);
}

static void int_cases(void)
{
    tcase c;
    tc_begin(&c, "DynamicQuantizeLinear f32", 21, 0);
    int64_t xd[2] = {37, 129};
    pare_value *x = tc_input(&c, rand_tensor("x", PARE_DT_FLOAT, 2, xd, -3, 5));
    tc_node(&c, "", "DynamicQuantizeLinear", &x, 1, 3);
    tc_end(&c);

    tc_begin(&c, "MatMulInteger u8 x i8 broadcast batch, zero points per row/col", 21, 0);
    int64_t ad[4] = {2, 1, 17, 40}, bd[3] = {3, 40, 23}, azd[1] = {17}, bzd[1] = {23};
    pare_value *mi[4] = {tc_input(&c, rand_tensor("a", PARE_DT_UINT8, 4, ad, 0, 255)),
                         tc_const(&c, rand_tensor("b", PARE_DT_INT8, 3, bd, -128, 127)),
                         tc_const(&c, rand_tensor("az", PARE_DT_UINT8, 1, azd, 100, 150)),
                         tc_const(&c, rand_tensor("bz", PARE_DT_INT8, 1, bzd, -5, 5))};
    tc_node(&c, "", "MatMulInteger", mi, 4, 1);
    tc_end(&c);

    tc_begin(&c, "QLinearMatMul i8 per-column b_scale", 21, 1);
    int64_t a2[3] = {2, 19, 33}, b2[2] = {33, 21}, one = 1, n21 = 21;
    pare_tensor *as, *ys;
    pare_error err;
    must(pare_tensor_new("as", PARE_DT_FLOAT, 0, NULL, &as, &err), &err, "as");
    must(pare_tensor_new("ys", PARE_DT_FLOAT, 0, NULL, &ys, &err), &err, "ys");
    *(float *)as->data = 0.02f;
    *(float *)ys->data = 0.9f;
    pare_value *qi[8] = {tc_input(&c, rand_tensor("a", PARE_DT_INT8, 3, a2, -128, 127)),
                         tc_const(&c, as),
                         tc_const(&c, rand_tensor("az", PARE_DT_INT8, 0, &one, -3, 3)),
                         tc_const(&c, rand_tensor("b", PARE_DT_INT8, 2, b2, -128, 127)),
                         tc_const(&c, rand_tensor("bs", PARE_DT_FLOAT, 1, &n21, 0.005, 0.02)),
                         tc_const(&c, rand_tensor("bz", PARE_DT_INT8, 1, &n21, 0, 0)),
                         tc_const(&c, ys),
                         tc_const(&c, rand_tensor("yz", PARE_DT_INT8, 0, &one, -10, 10))};
    tc_node(&c, "", "QLinearMatMul", qi, 8, 1);
    tc_end(&c);

    tc_begin(&c, "QLinearConv u8 x i8 per-channel w, int32 bias, pads", 21, 1);
    int64_t xd4[4] = {1, 4, 9, 9}, wd4[4] = {6, 4, 3, 3}, m6 = 6;
    pare_tensor *xs, *ysc;
    must(pare_tensor_new("xs", PARE_DT_FLOAT, 0, NULL, &xs, &err), &err, "xs");
    must(pare_tensor_new("ys", PARE_DT_FLOAT, 0, NULL, &ysc, &err), &err, "ys");
    *(float *)xs->data = 0.03f;
    *(float *)ysc->data = 0.5f;
    pare_value *ci[9] = {tc_input(&c, rand_tensor("x", PARE_DT_UINT8, 4, xd4, 0, 255)),
                         tc_const(&c, xs),
                         tc_const(&c, rand_tensor("xz", PARE_DT_UINT8, 0, &one, 120, 130)),
                         tc_const(&c, rand_tensor("w", PARE_DT_INT8, 4, wd4, -127, 127)),
                         tc_const(&c, rand_tensor("ws", PARE_DT_FLOAT, 1, &m6, 0.002, 0.01)),
                         tc_const(&c, rand_tensor("wz", PARE_DT_INT8, 1, &m6, 0, 0)),
                         tc_const(&c, ysc),
                         tc_const(&c, rand_tensor("yz", PARE_DT_UINT8, 0, &one, 120, 130)),
                         tc_const(&c, rand_tensor("b", PARE_DT_INT32, 1, &m6, -500, 500))};
    pare_node *n = tc_node(&c, "", "QLinearConv", ci, 9, 1);
    int64_t p[4] = {1, 1, 1, 1};
    set_ints(n, "pads", p, 4);
    tc_end(&c);
}

/* ---- fused QDQ (lib/cuda/qfused.c): DQ -> op -> Q chains on int8 tensor
 * cores against the CPU's fused kernels, to the bit ---- */

static pare_value *scalar_const(tcase *c, const char *name, int dt, double v)
{
    pare_tensor *t;
    pare_error err;
    must(pare_tensor_new(name, dt, 0, NULL, &t, &err), &err, name);
    pare_dtype_set_f64(dt, t->data, 0, v);
    return tc_const(c, t);
}

/* a node of the chain: output named out, or a graph output when out is NULL */
static pare_value *chain(tcase *c, const char *op, pare_value *const *ins, size_t n,
                         const char *out, pare_node **node)
{
    pare_value *o;
    pare_node *nd;
    pare_error err;
    must(pare_graph_new_value(c->g, out ? out : "y0", NULL, 0, &o, &err), &err, "value");
    must(pare_graph_add_node(c->g, out ? out : "last", "", op, ins, n, &o, 1, NULL, &nd, &err),
         &err, op);
    if (!out)
        must(pare_graph_add_output(c->g, o, &err), &err, "graph output");
    if (node)
        *node = nd;
    return o;
}

/* x_q (graph input, xdt) -> DQ -> op(DQ(w_q) per output channel [, bias]) [-> Add bias]
 * [-> Relu] -> Q (uint8 y) or float y. op Conv: x [N, C, (H,) W], w [M, C/group, (kh,) kw];
 * MatMul: x [N, H, C] times w [C, M]; Gemm (transB): x [N, C] times w [M, C]. */
typedef struct qspec {
    const char *name, *op;
    int xdt;
    int64_t N, C, H, W, M, kh, kw, group, stride, dil, pad;
    int nd;          /* Conv: 1 or 2 spatial dims */
    bool relu, fout, bias;
} qspec;

static void qdq_case(const qspec *q)
{
    tcase c;
    tc_begin(&c, q->name, 19, 0);
    bool conv = !strcmp(q->op, "Conv"), gemm = !strcmp(q->op, "Gemm");
    int64_t xd[4], wd[4], xr, wr, K;
    if (conv) {
        xr = q->nd + 2;
        xd[0] = q->N;
        xd[1] = q->C;
        xd[2] = q->H;
        xd[xr - 1] = q->W;
        wr = xr;
        wd[0] = q->M;
        wd[1] = q->C / q->group;
        wd[2] = q->kh;
        wd[wr - 1] = q->kw;
        K = wd[1] * q->kh * q->kw;
    } else {
        xr = gemm ? 2 : 3;
        xd[0] = q->N;
        xd[1] = gemm ? q->C : q->H;
        xd[2] = q->C;
        wr = 2;
        wd[0] = gemm ? q->M : q->C;
        wd[1] = gemm ? q->C : q->M;
        K = q->C;
    }
    bool u8 = q->xdt == PARE_DT_UINT8;
    pare_value *x = tc_input(&c, rand_tensor("xq", q->xdt, (int)xr, xd, u8 ? 0 : -128,
                                             u8 ? 255 : 127));
    pare_value *sx = scalar_const(&c, "sx", PARE_DT_FLOAT, 0.03);
    pare_value *zx = scalar_const(&c, "zx", q->xdt, u8 ? 131 : -7);
    pare_value *xf = chain(&c, "DequantizeLinear", (pare_value *[]){x, sx, zx}, 3, "xf", NULL);
    int64_t M = q->M;
    pare_value *wq = tc_const(&c, rand_tensor("wq", PARE_DT_INT8, (int)wr, wd, -127, 127));
    pare_value *ws = tc_const(&c, rand_tensor("ws", PARE_DT_FLOAT, 1, &M, 0.002, 0.01));
    pare_node *n;
    pare_value *wf = chain(&c, "DequantizeLinear", (pare_value *[]){wq, ws}, 2, "wf", &n);
    set_int(n, "axis", conv || gemm ? 0 : 1);
    pare_value *ins[3] = {xf, wf, NULL};
    size_t nin = 2;
    if (q->bias && !strcmp(q->op, "MatMul")) {
        /* the bias comes as an Add after the MatMul */
    } else if (q->bias) {
        ins[2] = tc_const(&c, rand_tensor("b", PARE_DT_FLOAT, 1, &M, -1, 1));
        nin = 3;
    }
    bool last_op = !q->relu && q->fout && !(q->bias && !strcmp(q->op, "MatMul"));
    pare_value *v = chain(&c, q->op, ins, nin, last_op ? NULL : "acc", &n);
    if (conv) {
        int64_t st[2] = {q->stride, q->stride}, dl[2] = {q->dil, q->dil},
                pd[4] = {q->pad, q->pad, q->pad, q->pad};
        set_ints(n, "strides", st, (size_t)q->nd);
        set_ints(n, "dilations", dl, (size_t)q->nd);
        set_ints(n, "pads", pd, 2 * (size_t)q->nd);
        set_int(n, "group", q->group);
    } else if (gemm) {
        set_int(n, "transB", 1);
    }
    if (q->bias && !strcmp(q->op, "MatMul")) {
        pare_value *b = tc_const(&c, rand_tensor("b", PARE_DT_FLOAT, 1, &M, -1, 1));
        v = chain(&c, "Add", (pare_value *[]){v, b}, 2, !q->relu && q->fout ? NULL : "biased",
                  NULL);
    }
    if (q->relu)
        v = chain(&c, "Relu", &v, 1, q->fout ? NULL : "r", NULL);
    if (!q->fout) {
        /* y's scale: about a tenth of the sums' spread in units */
        double ys = 0.1 * sqrt((double)K / 144.0);
        pare_value *sy = scalar_const(&c, "sy", PARE_DT_FLOAT, ys);
        pare_value *zy = scalar_const(&c, "zy", PARE_DT_UINT8, q->relu ? 3 : 128);
        chain(&c, "QuantizeLinear", (pare_value *[]){v, sy, zy}, 3, NULL, NULL);
    }
    c.tol = q->fout ? 1e-7 : want_absent ? 1 : 0;
    want_note = "8-bit QDQ kernel";
    tc_end(&c);
    want_note = NULL;
}

static void qdq_add_case(void)
{
    tcase c;
    tc_begin(&c, "QDQ Add u8 + i8 -> u8 with Relu", 19, 0);
    int64_t d[3] = {3, 70, 33};
    pare_value *a = tc_input(&c, rand_tensor("a", PARE_DT_UINT8, 3, d, 0, 255));
    pare_value *b = tc_input(&c, rand_tensor("b", PARE_DT_INT8, 3, d, -128, 127));
    pare_value *af = chain(&c, "DequantizeLinear",
                           (pare_value *[]){a, scalar_const(&c, "sa", PARE_DT_FLOAT, 0.05),
                                            scalar_const(&c, "za", PARE_DT_UINT8, 120)},
                           3, "af", NULL);
    pare_value *bf = chain(&c, "DequantizeLinear",
                           (pare_value *[]){b, scalar_const(&c, "sb", PARE_DT_FLOAT, 0.03),
                                            scalar_const(&c, "zb", PARE_DT_INT8, 4)},
                           3, "bf", NULL);
    pare_value *s = chain(&c, "Add", (pare_value *[]){af, bf}, 2, "s", NULL);
    pare_value *r = chain(&c, "Relu", &s, 1, "r", NULL);
    chain(&c, "QuantizeLinear",
          (pare_value *[]){r, scalar_const(&c, "sy", PARE_DT_FLOAT, 0.04),
                           scalar_const(&c, "zy", PARE_DT_UINT8, 10)},
          3, NULL, NULL);
    want_note = "8-bit QDQ kernel";
    tc_end(&c);
    want_note = NULL;
}

static void qdq_bn_case(void)
{
    tcase c;
    tc_begin(&c, "QDQ BatchNormalization -> Mul -> Add -> Relu u8 (DenseNet's pre-activation)",
             19, 0);
    int64_t xd[4] = {2, 24, 9, 13}, cd[1] = {24}, c4[4] = {1, 24, 1, 1};
    pare_value *x = tc_input(&c, rand_tensor("xq", PARE_DT_UINT8, 4, xd, 0, 255));
    pare_value *xf = chain(&c, "DequantizeLinear",
                           (pare_value *[]){x, scalar_const(&c, "sx", PARE_DT_FLOAT, 0.02),
                                            scalar_const(&c, "zx", PARE_DT_UINT8, 125)},
                           3, "xf", NULL);
    pare_value *bi[5] = {xf, tc_const(&c, rand_tensor("s", PARE_DT_FLOAT, 1, cd, 0.5, 1.5)),
                         tc_const(&c, rand_tensor("b", PARE_DT_FLOAT, 1, cd, -0.5, 0.5)),
                         tc_const(&c, rand_tensor("mu", PARE_DT_FLOAT, 1, cd, -0.2, 0.2)),
                         tc_const(&c, rand_tensor("var", PARE_DT_FLOAT, 1, cd, 0.3, 1.2))};
    pare_value *v = chain(&c, "BatchNormalization", bi, 5, "bn", NULL);
    v = chain(&c, "Mul", (pare_value *[]){v, tc_const(&c, rand_tensor("m", PARE_DT_FLOAT, 4, c4, 0.5, 1.2))},
              2, "mul", NULL);
    v = chain(&c, "Add", (pare_value *[]){tc_const(&c, rand_tensor("a", PARE_DT_FLOAT, 4, c4, -0.3, 0.3)), v},
              2, "add", NULL);
    v = chain(&c, "Relu", &v, 1, "r", NULL);
    chain(&c, "QuantizeLinear",
          (pare_value *[]){v, scalar_const(&c, "sy", PARE_DT_FLOAT, 0.03),
                           scalar_const(&c, "zy", PARE_DT_UINT8, 0)},
          3, NULL, NULL);
    want_note = "8-bit QDQ kernel";
    tc_end(&c);
    want_note = NULL;
}

static void qdq_cases(void)
{
    static const qspec cases[] = {
        {"QDQ Conv u8 3x3 pads 1 Relu -> u8 (int8 WMMA, 64-row tile)", "Conv", PARE_DT_UINT8,
         2, 16, 13, 13, 32, 3, 3, 1, 1, 1, 1, 2, true, false, true},
        {"QDQ Conv i8 group 2 stride 2 dilation 2, 80 rows per group (128-row tile)", "Conv",
         PARE_DT_INT8, 2, 32, 15, 14, 160, 3, 3, 2, 2, 2, 2, 2, false, false, true},
        {"QDQ Conv u8 1x1, K 600 (19 k steps, K % 32 != 0), float out", "Conv", PARE_DT_UINT8,
         3, 600, 9, 9, 24, 1, 1, 1, 1, 1, 0, 2, false, true, true},
        {"QDQ Conv u8 1-D k 5 pads 2 Relu, no bias", "Conv", PARE_DT_UINT8, 2, 16, 1, 50, 16,
         1, 5, 1, 1, 1, 2, 1, true, false, false},
        {"QDQ MatMul u8 [2, 37, 64] x [64, 48] + bias Add (16-byte loads)", "MatMul",
         PARE_DT_UINT8, 2, 64, 37, 0, 48, 0, 0, 1, 1, 1, 0, 0, false, false, true},
        {"QDQ MatMul i8 K 45 (byte loads) Relu, float out", "MatMul", PARE_DT_INT8, 3, 45, 29, 0,
         130, 0, 0, 1, 1, 1, 0, 0, true, true, false},
        {"QDQ Gemm transB u8 [33, 70] x [50, 70]^T + bias", "Gemm", PARE_DT_UINT8, 33, 70, 0, 0,
         50, 0, 0, 1, 1, 1, 0, 0, false, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        qdq_case(&cases[i]);
    qdq_add_case();
    qdq_bn_case();
    /* depthwise: refused by the int8 kernel, runs dequantized on cuda (its
     * float sums round differently from the CPU's fused int32 ones: 1 step) */
    qspec dw = {"QDQ Conv depthwise (unfused on cuda)", "Conv", PARE_DT_UINT8, 2, 16, 12, 12,
                16, 3, 3, 16, 1, 1, 1, 2, true, false, true};
    want_absent = true;
    qdq_case(&dw);
    want_absent = false;
}

static void nbits_case(int dt, double tol, const char *name)
{
    tcase c;
    tc_begin(&c, name, 21, tol);
    int64_t K = 96, N = 40, bs = 32, nblk = 3;
    int64_t ad[3] = {2, 5, K}, bd[3] = {N, nblk, bs / 2}, sd[1] = {N * nblk},
            zd[1] = {N * ((nblk * 4 + 7) / 8)}, biasd[1] = {N};
    pare_value *ins[6] = {tc_input(&c, rand_tensor("a", dt, 3, ad, -1, 1)),
                          tc_const(&c, rand_tensor("b", PARE_DT_UINT8, 3, bd, 0, 255)),
                          tc_const(&c, rand_tensor("s", dt, 1, sd, 0.01, 0.05)),
                          tc_const(&c, rand_tensor("z", PARE_DT_UINT8, 1, zd, 0, 255)), NULL,
                          tc_const(&c, rand_tensor("bias", dt, 1, biasd, -1, 1))};
    pare_node *n = tc_node(&c, "com.microsoft", "MatMulNBits", ins, 6, 1);
    set_int(n, "K", K);
    set_int(n, "N", N);
    set_int(n, "bits", 4);
    set_int(n, "block_size", bs);
    tc_end(&c);
}

/* Conv of nsp spatial dims (1 or 3) in float32 with asymmetric pads */
static void conv_nd_case(const char *name, int nsp)
{
    tcase c;
    tc_begin(&c, name, 17, 1e-4);
    int64_t xd[5] = {1, 3, 7, 6, 5}, wd[5] = {4, 3, 3, 2, 3};
    pare_value *ins[2] = {tc_input(&c, rand_tensor("x", PARE_DT_FLOAT, 2 + nsp, xd, -1, 1)),
                          tc_const(&c, rand_tensor("w", PARE_DT_FLOAT, 2 + nsp, wd, -1, 1))};
    pare_node *n = tc_node(&c, "", "Conv", ins, 2, 1);
    int64_t pads[6] = {1, 0, 2, 0, 1, 1};
    int64_t p[6];
    for (int i = 0; i < nsp; i++) {
        p[i] = pads[i];
        p[nsp + i] = pads[3 + i];
    }
    set_ints(n, "pads", p, (size_t)(2 * nsp));
    tc_end(&c);
}

/* QuantizeLinear of float16 x with a float16 scale: the division in float16 */
static void q_f16_case(void)
{
    tcase c;
    tc_begin(&c, "QuantizeLinear f16 x, f16 per-axis scale -> u8", 21, 0);
    int64_t xd[2] = {8, 33}, sd[1] = {33};
    pare_value *ins[3] = {tc_input(&c, rand_tensor("x", PARE_DT_FLOAT16, 2, xd, -3, 3)),
                          tc_const(&c, rand_tensor("s", PARE_DT_FLOAT16, 1, sd, 0.01, 0.03)),
                          tc_const(&c, rand_tensor("z", PARE_DT_UINT8, 1, sd, 100, 150))};
    tc_node(&c, "", "QuantizeLinear", ins, 3, 1);
    tc_end(&c);
}

int main(void)
{
    const pare_backend *b;
    pare_error err;
    if (pare_backend_get(GPU_OPS_DEVICE, 0, &b, &err)) {
        printf("skipped: %s\n", err.msg);
        return 77;
    }
    int64_t asym[4] = {0, 1, 2, 0};
    conv_case("Conv f32 asymmetric pads (no TF32)", PARE_DT_FLOAT, 1e-4, 1, asym, NULL, 1, 1,
              true);
    conv_case("Conv f16 SAME_UPPER stride 2 (odd pad)", PARE_DT_FLOAT16, 5e-3, 1, NULL,
              "SAME_UPPER", 2, 1, true);
    conv_case("Conv bf16 group 2 dilation 2", PARE_DT_BFLOAT16, 2e-2, 2, NULL, NULL, 1, 2, true);
    conv_case("Conv f16 depthwise-like group 8", PARE_DT_FLOAT16, 5e-3, 8, NULL, "SAME_LOWER", 1,
              1, false);
    conv1x1_case("Conv f32 1x1 as a GEMM (heuristic)", PARE_DT_FLOAT, 1e-4, 1);
    conv1x1_case("Conv f16 1x1 as a GEMM (heuristic)", PARE_DT_FLOAT16, 5e-3, 1);
    conv1x1_case("Conv bf16 1x1 (search)", PARE_DT_BFLOAT16, 3e-2, 0);
    conv_nd_case("Conv f32 1-D asymmetric pads", 1);
    conv_nd_case("Conv f32 3-D asymmetric pads", 3);
    convt_case();
    pool_cases();
    int64_t pads_grow[8] = {0, 0, 1, 2, 0, 1, 3, 2}, pads_crop[8] = {0, 1, -2, 1, 1, 0, 2, -3};
    pad_case("Pad f32 constant 2.5, pads and crops", PARE_DT_FLOAT, "constant", pads_crop, true);
    pad_case("Pad f16 reflect", PARE_DT_FLOAT16, "reflect", pads_grow, false);
    pad_case("Pad bf16 edge", PARE_DT_BFLOAT16, "edge", pads_grow, false);
    pad_case("Pad f32 wrap", PARE_DT_FLOAT, "wrap", pads_crop, false);
    rmsnorm_case();
    argmax_case();
    bn_case();
    resize_case("Resize f16 linear half_pixel scales", PARE_DT_FLOAT16, "linear", "half_pixel",
                NULL, false, false, 5e-3);
    resize_case("Resize f32 nearest asymmetric floor sizes", PARE_DT_FLOAT, "nearest",
                "asymmetric", "floor", true, false, 0);
    resize_case("Resize f32 linear align_corners sizes", PARE_DT_FLOAT, "linear",
                "align_corners", NULL, true, false, 1e-6);
    resize_case("Resize f32 nearest, scales computed by the graph", PARE_DT_FLOAT, "nearest",
                "asymmetric", "floor", false, true, 0);
    resize_case("Resize bf16 linear, sizes computed by the graph", PARE_DT_BFLOAT16, "linear",
                "pytorch_half_pixel", NULL, true, true, 2e-2);
    dq_case("DequantizeLinear i8 per axis -> f32", PARE_DT_INT8, PARE_DT_FLOAT, 0, 0, true, 0);
    dq_case("DequantizeLinear u8 per tensor -> f16", PARE_DT_UINT8, PARE_DT_FLOAT16, -1, 0, true,
            0);
    dq_case("DequantizeLinear u8 per tensor -> f32", PARE_DT_UINT8, PARE_DT_FLOAT, -1, 0, true, 0);
    dq_case("DequantizeLinear i8 per tensor -> f32 no zero point", PARE_DT_INT8, PARE_DT_FLOAT, -1,
            0, false, 0);
    dq_case("DequantizeLinear i4 blocked 16 -> f32", PARE_DT_INT4, PARE_DT_FLOAT, 1, 16, true,
            0);
    dq_case("DequantizeLinear i16 per axis -> bf16", PARE_DT_INT16, PARE_DT_BFLOAT16, 0, 0, true,
            0);
    dq_case("DequantizeLinear f8e5m2 per tensor -> f16", PARE_DT_FLOAT8E5M2, PARE_DT_FLOAT16, -1,
            0, false, 0);
    dq_case("DequantizeLinear f8e4m3fn per tensor -> f32", PARE_DT_FLOAT8E4M3FN, PARE_DT_FLOAT,
            -1, 0, false, 0);
    q_case("QuantizeLinear f32 -> i8 per tensor", PARE_DT_INT8, 0, true, 6);
    q_case("QuantizeLinear f32 -> u8 per tensor (clamped)", PARE_DT_UINT8, 0, true, 9);
    q_case("QuantizeLinear f32 -> u4 blocked 32", PARE_DT_UINT4, 32, true, 1);
    q_case("QuantizeLinear f32 -> f8e4m3fn saturate", PARE_DT_FLOAT8E4M3FN, 0, true, 40);
    q_case("QuantizeLinear f32 -> f8e4m3fn no saturate (NaN)", PARE_DT_FLOAT8E4M3FN, 0, false,
           40);
    q_f16_case();
    int_cases();
    nbits_case(PARE_DT_FLOAT16, 1e-2, "MatMulNBits f16 4-bit packed zp bias");
    nbits_case(PARE_DT_FLOAT, 1e-5, "MatMulNBits f32 4-bit packed zp bias");
    nbits_case(PARE_DT_BFLOAT16, 2e-2, "MatMulNBits bf16 4-bit packed zp bias");
    qdq_cases();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
