/* test_infer.c - shape and type inference: small graphs built with the IR
 * API, the test models in testdata/, options, conflicts, control flow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "pare/model.h"
#include "pare/ir.h"
#include "pare/infer.h"

#ifndef PARE_TESTDATA
#define PARE_TESTDATA "testdata"
#endif

/* ---- building models ---- */

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t put_opset(unsigned char *p, const char *domain, int64_t version)
{
    unsigned char body[128];
    size_t n = 0, dl = strlen(domain);
    body[n++] = 0x0a; /* domain */
    body[n++] = (unsigned char)dl;
    memcpy(body + n, domain, dl);
    n += dl;
    body[n++] = 0x10; /* version */
    n += put_varint(body + n, (uint64_t)version);
    size_t k = 0;
    p[k++] = 0x42; /* ModelProto.opset_import */
    k += put_varint(p + k, n);
    memcpy(p + k, body, n);
    return k + n;
}

/* An empty model (one graph named "g") importing ai.onnx at `opset` and,
 * when given, com.microsoft version 1. Encoded by hand: the test needs no
 * protobuf library of its own. */
static pare_model *empty_model(int64_t opset, bool ms)
{
    unsigned char buf[256];
    size_t n = 0;
    buf[n++] = 0x08; /* ir_version */
    n += put_varint(buf + n, 8);
    buf[n++] = 0x3a; /* graph */
    buf[n++] = 3;
    buf[n++] = 0x12; /* GraphProto.name */
    buf[n++] = 1;
    buf[n++] = 'g';
    n += put_opset(buf + n, "", opset);
    if (ms)
        n += put_opset(buf + n, "com.microsoft", 1);
    pare_model *m = NULL;
    pare_error err;
    assert_int_equal(pare_model_load_buffer(buf, n, NULL, NULL, &m, &err), PARE_OK);
    return m;
}

/* dims: "N,3,?,224" (a number, a symbol, or ? for unknown); "" is a scalar,
 * NULL an unknown rank. */
static void parse_shape(const char *dims, pare_shape *s)
{
    s->rank = -1;
    s->dims = NULL;
    if (!dims)
        return;
    s->rank = 0;
    if (!*dims)
        return;
    s->dims = calloc(64, sizeof *s->dims);
    const char *p = dims;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        pare_dim *d = &s->dims[s->rank++];
        d->value = -1;
        d->param = NULL;
        if (len && p[0] >= '0' && p[0] <= '9')
            d->value = strtoll(p, NULL, 10);
        else if (!(len == 1 && p[0] == '?'))
            d->param = strndup(p, len);
        p += len;
        if (*p == ',')
            p++;
    }
}

static void free_shape(pare_shape *s)
{
    for (int i = 0; i < s->rank; i++)
        free(s->dims[i].param);
    free(s->dims);
}

static pare_value *input(pare_graph *g, const char *name, int dtype, const char *dims)
{
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, name, NULL, dtype, &v, &err), PARE_OK);
    pare_shape s;
    parse_shape(dims, &s);
    assert_int_equal(pare_value_set_type(v, dtype, &s, &err), PARE_OK);
    free_shape(&s);
    assert_int_equal(pare_graph_add_input(g, v, &err), PARE_OK);
    return v;
}

static pare_value *init_i64(pare_graph *g, const char *name, int rank, const int64_t *dims,
                            const int64_t *data)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_INT64, rank, dims, &t, &err), PARE_OK);
    memcpy(t->data, data, t->nbytes);
    pare_value *v;
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

static pare_value *vec_i64(pare_graph *g, const char *name, int64_t n, const int64_t *data)
{
    return init_i64(g, name, 1, &n, data);
}

static pare_value *init_f32(pare_graph *g, const char *name, const char *dims)
{
    pare_shape s;
    parse_shape(dims, &s);
    int64_t d[64];
    for (int i = 0; i < s.rank; i++)
        d[i] = s.dims[i].value;
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, s.rank, d, &t, &err), PARE_OK);
    free_shape(&s);
    pare_value *v;
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

/* Adds a node; ins and outs are comma-separated value names (an empty name
 * is an omitted input). Outputs are created. */
static pare_node *node(pare_graph *g, const char *name, const char *domain, const char *op,
                       const char *ins, const char *outs)
{
    pare_value *iv[16], *ov[16];
    size_t ni = 0, no = 0;
    char buf[512];
    pare_error err;
    if (ins && *ins) {
        snprintf(buf, sizeof buf, "%s,", ins);
        for (char *p = buf, *e; (e = strchr(p, ',')); p = e + 1) {
            *e = 0;
            iv[ni] = *p ? pare_graph_find_value(g, p) : NULL;
            if (*p && !iv[ni])
                fail_msg("no value %s", p);
            ni++;
        }
    }
    snprintf(buf, sizeof buf, "%s,", outs);
    for (char *p = buf, *e; (e = strchr(p, ',')); p = e + 1) {
        *e = 0;
        if (!*p) {
            ov[no++] = NULL;
            continue;
        }
        assert_int_equal(pare_graph_new_value(g, p, NULL, 0, &ov[no], &err), PARE_OK);
        no++;
    }
    pare_node *n;
    assert_int_equal(pare_graph_add_node(g, name, domain, op, iv, ni, ov, no, NULL, &n, &err),
                     PARE_OK);
    return n;
}

static void attr_ints(pare_node *n, const char *name, const int64_t *v, size_t count)
{
    assert_int_equal(pare_node_set_attr_ints(n, name, v, count, NULL), PARE_OK);
}

static void attr_int(pare_node *n, const char *name, int64_t v)
{
    assert_int_equal(pare_node_set_attr_int(n, name, v, NULL), PARE_OK);
}

static void output(pare_graph *g, const char *name)
{
    assert_int_equal(pare_graph_add_output(g, pare_graph_find_value(g, name), NULL), PARE_OK);
}

/* "float32 [N,16,?,?]"; "[?]" for an unknown rank. */
static const char *type_str(const pare_value *v, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "%s [", v->dtype ? pare_dtype_name(v->dtype) : "?");
    if (v->shape.rank < 0)
        k += (size_t)snprintf(buf + k, size - k, "?");
    for (int i = 0; i < v->shape.rank && k < size; i++) {
        const pare_dim *d = &v->shape.dims[i];
        if (d->value >= 0)
            k += (size_t)snprintf(buf + k, size - k, "%s%" PRId64, i ? "," : "", d->value);
        else
            k += (size_t)snprintf(buf + k, size - k, "%s%s", i ? "," : "",
                                  d->param ? d->param : "?");
    }
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

#define EXPECT(g, name, want)                                                                \
    do {                                                                                     \
        char b_[512];                                                                        \
        const pare_value *v_ = pare_graph_find_value((g), (name));                           \
        assert_non_null(v_);                                                                 \
        assert_string_equal(type_str(v_, b_, sizeof b_), (want));                            \
    } while (0)

static void infer_ok(pare_model *m, const pare_infer_opts *o, pare_infer_report *rep)
{
    pare_error err;
    pare_status st = pare_infer_shapes(m, o, rep, &err);
    if (st)
        fail_msg("inference failed: %s", err.msg);
}

/* ---- public helpers ---- */

static void test_broadcast(void **state)
{
    (void)state;
    pare_shape a, b, o;
    pare_error err;
    parse_shape("N,1,4", &a);
    parse_shape("3,1", &b);
    assert_int_equal(pare_shape_broadcast(&a, &b, &o, &err), PARE_OK);
    assert_int_equal(o.rank, 3);
    assert_string_equal(o.dims[0].param, "N");
    assert_int_equal(o.dims[1].value, 3);
    assert_int_equal(o.dims[2].value, 4);
    pare_shape_release(&o);
    free_shape(&b);
    /* a symbol against an unknown dim: unknown; against itself: kept */
    parse_shape("?,5,N", &b);
    parse_shape("N,M,N", &o);
    pare_shape r;
    assert_int_equal(pare_shape_broadcast(&b, &o, &r, &err), PARE_OK);
    assert_int_equal(r.dims[0].value, -1);
    assert_null(r.dims[0].param);
    assert_int_equal(r.dims[1].value, 5);
    assert_string_equal(r.dims[2].param, "N");
    pare_shape_release(&r);
    free_shape(&o);
    free_shape(&b);
    /* provable mismatch */
    parse_shape("3,4", &b);
    parse_shape("5,4", &o);
    assert_int_equal(pare_shape_broadcast(&b, &o, &r, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "3x4"));
    free_shape(&o);
    free_shape(&b);
    free_shape(&a);
    pare_shape_release(NULL);
}

/* ---- convolution and friends: batch N passes, arithmetic on H does not ---- */

static void test_conv_symbolic(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,3,224,224");
    input(g, "xh", PARE_DT_FLOAT, "N,3,H,W");
    init_f32(g, "w", "16,3,3,3");
    init_f32(g, "b", "16");
    pare_node *c = node(g, "conv", "", "Conv", "x,w,b", "y");
    attr_ints(c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    c = node(g, "conv_s2", "", "Conv", "x,w", "y2");
    attr_ints(c, "strides", (int64_t[]){2, 2}, 2);
    c = node(g, "conv_h", "", "Conv", "xh,w", "yh");
    c = node(g, "conv_same", "", "Conv", "xh,w", "ysame");
    attr_ints(c, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    c = node(g, "pool", "", "MaxPool", "y", "p,pi");
    attr_ints(c, "kernel_shape", (int64_t[]){3, 3}, 2);
    attr_ints(c, "strides", (int64_t[]){2, 2}, 2);
    attr_int(c, "ceil_mode", 1);
    c = node(g, "avg", "", "AveragePool", "y", "a");
    attr_ints(c, "kernel_shape", (int64_t[]){2, 2}, 2);
    attr_ints(c, "strides", (int64_t[]){2, 2}, 2);
    pare_node_set_attr_string(c, "auto_pad", "SAME_UPPER", NULL);
    node(g, "gap", "", "GlobalAveragePool", "yh", "gap");
    node(g, "flat", "", "Flatten", "gap", "flat");
    init_f32(g, "fw", "10,16");
    c = node(g, "fc", "", "Gemm", "flat,fw", "logits");
    attr_int(c, "transB", 1);
    init_f32(g, "tw", "16,8,2,2");
    c = node(g, "convt", "", "ConvTranspose", "y,tw", "ct");
    attr_ints(c, "strides", (int64_t[]){2, 2}, 2);
    init_f32(g, "sc", "16");
    node(g, "bn", "", "BatchNormalization", "yh,sc,sc,sc,sc", "bn");
    output(g, "logits");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y", "float32 [N,16,224,224]");
    EXPECT(g, "y2", "float32 [N,16,111,111]");
    EXPECT(g, "yh", "float32 [N,16,?,?]");
    EXPECT(g, "ysame", "float32 [N,16,H,W]");
    EXPECT(g, "p", "float32 [N,16,112,112]");
    EXPECT(g, "pi", "int64 [N,16,112,112]");
    EXPECT(g, "a", "float32 [N,16,112,112]");
    EXPECT(g, "gap", "float32 [N,16,1,1]");
    EXPECT(g, "flat", "float32 [N,16]");
    EXPECT(g, "logits", "float32 [N,10]");
    EXPECT(g, "ct", "float32 [N,8,448,448]");
    EXPECT(g, "bn", "float32 [N,16,?,?]");
    pare_model_free(m);
}

static void test_conv_channel_mismatch(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,4,8,8");
    init_f32(g, "w", "16,3,3,3");
    node(g, "badconv", "", "Conv", "x,w", "y");
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'badconv'"));
    pare_model_free(m);
}

/* ---- provable contradictions fail, naming the node ---- */

static void test_matmul(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "B,S,4");
    input(g, "v", PARE_DT_FLOAT, "4");
    init_f32(g, "w", "4,6");
    init_f32(g, "bw", "2,1,4,6");
    node(g, "mm", "", "MatMul", "a,w", "y");
    node(g, "mv", "", "MatMul", "a,v", "yv");
    node(g, "vm", "", "MatMul", "v,w", "vy");
    node(g, "bmm", "", "MatMul", "a,bw", "by");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y", "float32 [B,S,6]");
    EXPECT(g, "yv", "float32 [B,S]");
    EXPECT(g, "vy", "float32 [6]");
    EXPECT(g, "by", "float32 [2,B,S,6]");
    pare_model_free(m);

    m = empty_model(17, false);
    g = pare_model_graph(m);
    init_f32(g, "a", "3,4");
    init_f32(g, "b", "5,6");
    node(g, "bad_mm", "", "MatMul", "a,b", "y");
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'bad_mm'"));
    assert_non_null(strstr(err.msg, "3x4"));
    pare_model_free(m);
}

static void test_concat(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "N,3");
    input(g, "b", PARE_DT_FLOAT, "?,5");
    input(g, "c", PARE_DT_FLOAT, "N,S");
    pare_node *n = node(g, "cat", "", "Concat", "a,b", "y");
    attr_int(n, "axis", 1);
    n = node(g, "cat_sym", "", "Concat", "c,a", "w");
    attr_int(n, "axis", -1);
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y", "float32 [N,8]");
    EXPECT(g, "w", "float32 [N,?]");
    pare_model_free(m);

    /* z would need 3 == 5: a contradiction */
    m = empty_model(17, false);
    g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "N,3");
    input(g, "b", PARE_DT_FLOAT, "?,5");
    n = node(g, "cat0", "", "Concat", "a,b", "z");
    attr_int(n, "axis", 0);
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'cat0'"));
    pare_model_free(m);

    m = empty_model(17, false);
    g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "N,3");
    input(g, "b", PARE_DT_FLOAT, "N,3,1");
    n = node(g, "ranks", "", "Concat", "a,b", "z");
    attr_int(n, "axis", 0);
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'ranks'"));
    assert_non_null(strstr(err.msg, "ranks 2 and 3"));
    pare_model_free(m);
}

/* ---- values: Shape -> Gather -> Concat -> Reshape keeps symbols ---- */

static void test_shape_chain(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,S,64");
    vec_i64(g, "i0", 1, (int64_t[]){0});
    vec_i64(g, "i1", 1, (int64_t[]){1});
    vec_i64(g, "heads", 2, (int64_t[]){4, -1});
    init_i64(g, "zero", 0, NULL, (int64_t[]){0});
    node(g, "shape", "", "Shape", "x", "sh");
    node(g, "g0", "", "Gather", "sh,i0", "n");
    node(g, "g1", "", "Gather", "sh,i1", "s");
    pare_node *c = node(g, "cat", "", "Concat", "n,s,heads", "target");
    attr_int(c, "axis", 0);
    node(g, "reshape", "", "Reshape", "x,target", "y");
    /* a scalar Gather and Unsqueeze, then Mul by one keeps the symbol */
    node(g, "gs", "", "Gather", "sh,zero", "n_scalar");
    init_i64(g, "axes0", 1, (int64_t[]){1}, (int64_t[]){0});
    node(g, "unsq", "", "Unsqueeze", "n_scalar,axes0", "n_vec");
    vec_i64(g, "one", 1, (int64_t[]){1});
    node(g, "mul1", "", "Mul", "n_vec,one", "n_vec1");
    vec_i64(g, "minus1", 1, (int64_t[]){-1});
    c = node(g, "cat2", "", "Concat", "n_vec1,minus1", "flat_shape");
    attr_int(c, "axis", 0);
    node(g, "flatten", "", "Reshape", "x,flat_shape", "flat");
    /* the shape's tail: Slice keeps the known 64 */
    vec_i64(g, "st", 1, (int64_t[]){-1});
    vec_i64(g, "en", 1, (int64_t[]){INT64_MAX});
    node(g, "slice", "", "Slice", "sh,st,en", "last");
    node(g, "cos", "", "ConstantOfShape", "last", "zeros");
    node(g, "expand", "", "Expand", "zeros,sh", "big");
    node(g, "size", "", "Size", "x", "numel");
    node(g, "cast", "", "Cast", "sh", "sh32");
    pare_node_set_attr_int(pare_graph_find_node(g, "cast"), "to", PARE_DT_INT32, NULL);
    node(g, "reshape2", "", "Reshape", "x,sh32", "x2");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "sh", "int64 [3]");
    EXPECT(g, "target", "int64 [4]");
    EXPECT(g, "y", "float32 [N,S,4,16]");
    EXPECT(g, "n_vec", "int64 [1]");
    EXPECT(g, "flat", "float32 [N,?]");
    EXPECT(g, "last", "int64 [1]");
    EXPECT(g, "zeros", "float32 [64]");
    EXPECT(g, "big", "float32 [N,S,64]");
    EXPECT(g, "numel", "int64 []");
    EXPECT(g, "sh32", "int32 [3]");
    pare_model_free(m);
}

static void test_reshape_rules(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,12,5");
    vec_i64(g, "s1", 3, (int64_t[]){0, -1, 3});
    vec_i64(g, "s2", 2, (int64_t[]){-1, 60});
    vec_i64(g, "s3", 2, (int64_t[]){0, 0});
    vec_i64(g, "bad", 1, (int64_t[]){7});
    node(g, "r1", "", "Reshape", "x,s1", "y1");
    node(g, "r2", "", "Reshape", "x,s2", "y2");
    pare_node *n = node(g, "r3", "", "Reshape", "x,s3", "y3");
    attr_int(n, "allowzero", 1);
    node(g, "t", "", "Transpose", "x", "xt");
    n = node(g, "t2", "", "Transpose", "x", "xt2");
    attr_ints(n, "perm", (int64_t[]){0, 2, 1}, 3);
    input(g, "dyn", PARE_DT_INT64, "2");
    node(g, "r4", "", "Reshape", "x,dyn", "y4");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y1", "float32 [N,20,3]");
    EXPECT(g, "y2", "float32 [N,60]");
    EXPECT(g, "y3", "float32 [0,0]");
    EXPECT(g, "xt", "float32 [5,12,N]");
    EXPECT(g, "xt2", "float32 [N,5,12]");
    EXPECT(g, "y4", "float32 [?,?]");
    pare_model_free(m);

    m = empty_model(17, false);
    g = pare_model_graph(m);
    init_f32(g, "x", "2,3");
    vec_i64(g, "bad", 1, (int64_t[]){7});
    node(g, "rbad", "", "Reshape", "x,bad", "y");
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'rbad'"));
    pare_model_free(m);
}

/* ---- elementwise ops ---- */

static void test_elementwise(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "N,1,4");
    input(g, "b", PARE_DT_FLOAT, "3,1");
    input(g, "c", PARE_DT_BOOL, "4");
    input(g, "h", PARE_DT_FLOAT16, "N,3,4");
    node(g, "add", "", "Add", "a,b", "sum");
    node(g, "less", "", "Less", "a,b", "lt");
    node(g, "and", "", "And", "lt,c", "both");
    node(g, "where", "", "Where", "c,a,b", "w");
    node(g, "max", "", "Max", "a,b,sum", "mx");
    node(g, "mean", "", "Mean", "a", "mean");
    node(g, "relu", "", "Relu", "a", "r");
    node(g, "sm", "", "Softmax", "sum", "p");
    pare_node *n = node(g, "cast", "", "Cast", "sum", "s16");
    attr_int(n, "to", PARE_DT_FLOAT16);
    node(g, "cl", "", "CastLike", "a,h", "a16");
    node(g, "drop", "", "Dropout", "sum", "d,mask");
    node(g, "clip", "", "Clip", "h", "hc");
    node(g, "isnan", "", "IsNaN", "h", "nan");
    node(g, "id", "", "Identity", "h", "hid");
    node(g, "not", "", "Not", "c", "nc");
    node(g, "pow", "", "Pow", "h,a", "hp");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "sum", "float32 [N,3,4]");
    EXPECT(g, "lt", "bool [N,3,4]");
    EXPECT(g, "both", "bool [N,3,4]");
    EXPECT(g, "w", "float32 [N,3,4]");
    EXPECT(g, "mx", "float32 [N,3,4]");
    EXPECT(g, "mean", "float32 [N,1,4]");
    EXPECT(g, "r", "float32 [N,1,4]");
    EXPECT(g, "p", "float32 [N,3,4]");
    EXPECT(g, "s16", "float16 [N,3,4]");
    EXPECT(g, "a16", "float16 [N,1,4]");
    EXPECT(g, "d", "float32 [N,3,4]");
    EXPECT(g, "mask", "bool [N,3,4]");
    EXPECT(g, "hc", "float16 [N,3,4]");
    EXPECT(g, "nan", "bool [N,3,4]");
    EXPECT(g, "hid", "float16 [N,3,4]");
    EXPECT(g, "nc", "bool [4]");
    EXPECT(g, "hp", "float16 [N,3,4]");
    pare_model_free(m);

    m = empty_model(17, false);
    g = pare_model_graph(m);
    input(g, "a", PARE_DT_FLOAT, "2,3");
    input(g, "b", PARE_DT_FLOAT, "4");
    node(g, "badadd", "", "Add", "a,b", "y");
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, NULL, NULL, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'badadd'"));
    pare_model_free(m);
}

/* ---- attributes that became inputs ---- */

static void test_opset_differences(void **state)
{
    (void)state;
    /* opset 11: axes and split are attributes */
    pare_model *m = empty_model(11, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,6,1,4");
    pare_node *n = node(g, "rs", "", "ReduceSum", "x", "rs");
    attr_ints(n, "axes", (int64_t[]){1, -1}, 2);
    n = node(g, "rm", "", "ReduceMean", "x", "rm");
    attr_ints(n, "axes", (int64_t[]){1}, 1);
    attr_int(n, "keepdims", 0);
    n = node(g, "sq", "", "Squeeze", "x", "sq");
    attr_ints(n, "axes", (int64_t[]){2}, 1);
    n = node(g, "usq", "", "Unsqueeze", "x", "usq");
    attr_ints(n, "axes", (int64_t[]){0, 5}, 2);
    n = node(g, "sp", "", "Split", "x", "s0,s1");
    attr_int(n, "axis", 1);
    attr_ints(n, "split", (int64_t[]){2, 4}, 2);
    n = node(g, "sl", "", "Slice", "x", "sl");
    /* opset 10 and later: inputs; 11 still has no attributes for Slice */
    (void)n;
    infer_ok(m, NULL, NULL);
    EXPECT(g, "rs", "float32 [N,1,1,1]");
    EXPECT(g, "rm", "float32 [N,1,4]");
    EXPECT(g, "sq", "float32 [N,6,4]");
    EXPECT(g, "usq", "float32 [1,N,6,1,4,1]");
    EXPECT(g, "s0", "float32 [N,2,1,4]");
    EXPECT(g, "s1", "float32 [N,4,1,4]");
    EXPECT(g, "sl", "float32 [?,?,?,?]");
    pare_model_free(m);

    /* opset 18: inputs, and Split's num_outputs */
    m = empty_model(18, false);
    g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,7,1,4");
    vec_i64(g, "ax1", 1, (int64_t[]){1});
    vec_i64(g, "ax2", 1, (int64_t[]){2});
    vec_i64(g, "st", 2, (int64_t[]){1, 0});
    vec_i64(g, "en", 2, (int64_t[]){-1, 3});
    vec_i64(g, "axs", 2, (int64_t[]){1, 3});
    node(g, "rs", "", "ReduceSum", "x,ax1", "rs");
    node(g, "rmax", "", "ReduceMax", "x,ax1", "rmax");
    n = node(g, "rnoop", "", "ReduceSum", "x", "rnoop");
    attr_int(n, "noop_with_empty_axes", 1);
    node(g, "rall", "", "ReduceL2", "x", "rall");
    node(g, "sq", "", "Squeeze", "x,ax2", "sq");
    node(g, "usq", "", "Unsqueeze", "x,ax2", "usq");
    n = node(g, "sp", "", "Split", "x", "s0,s1,s2");
    attr_int(n, "axis", 1);
    attr_int(n, "num_outputs", 3);
    node(g, "sl", "", "Slice", "x,st,en,axs", "sl");
    n = node(g, "am", "", "ArgMax", "x", "am");
    attr_int(n, "axis", -1);
    attr_int(n, "keepdims", 0);
    infer_ok(m, NULL, NULL);
    EXPECT(g, "rs", "float32 [N,1,1,4]");
    EXPECT(g, "rmax", "float32 [N,1,1,4]");
    EXPECT(g, "rnoop", "float32 [N,7,1,4]");
    EXPECT(g, "rall", "float32 [1,1,1,1]");
    EXPECT(g, "sq", "float32 [N,7,4]");
    EXPECT(g, "usq", "float32 [N,7,1,1,4]");
    EXPECT(g, "s0", "float32 [N,3,1,4]");
    EXPECT(g, "s2", "float32 [N,1,1,4]");
    EXPECT(g, "sl", "float32 [N,5,1,3]");
    EXPECT(g, "am", "int64 [N,7,1]");
    pare_model_free(m);
}

/* attributes of opsets long gone, still found in old model zoos */
static void test_legacy_opsets(void **state)
{
    (void)state;
    pare_model *m = empty_model(1, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,3,4,4");
    pare_node *n = node(g, "r", "", "Reshape", "x", "r");
    attr_ints(n, "shape", (int64_t[]){0, -1}, 2);
    n = node(g, "cast", "", "Cast", "x", "c");
    pare_node_set_attr_string(n, "to", "FLOAT16", NULL);
    node(g, "cat", "", "Concat", "x,x", "cat"); /* axis 1 by default */
    n = node(g, "up", "", "Upsample", "x", "up");
    pare_node_set_attr_float(n, "height_scale", 2, NULL);
    pare_node_set_attr_float(n, "width_scale", 3, NULL);
    n = node(g, "pad", "", "Pad", "x", "pad");
    attr_ints(n, "paddings", (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1}, 8);
    n = node(g, "topk", "", "TopK", "x", "tv,ti");
    attr_int(n, "k", 2);
    node(g, "drop", "", "Dropout", "x", "d,mask");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "r", "float32 [N,48]");
    EXPECT(g, "c", "float16 [N,3,4,4]");
    EXPECT(g, "cat", "float32 [N,6,4,4]");
    EXPECT(g, "up", "float32 [N,3,8,12]");
    EXPECT(g, "pad", "float32 [N,3,6,6]");
    EXPECT(g, "tv", "float32 [N,3,4,2]");
    EXPECT(g, "mask", "float32 [N,3,4,4]");
    pare_model_free(m);
}

static void test_misc_shape_ops(void **state)
{
    (void)state;
    pare_model *m = empty_model(19, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,3,8,8");
    input(g, "idx", PARE_DT_INT64, "N,5");
    vec_i64(g, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 3, 4});
    vec_i64(g, "reps", 4, (int64_t[]){1, 2, 1, 3});
    vec_i64(g, "k", 1, (int64_t[]){2});
    init_f32(g, "scales", "4");
    {
        pare_value *sv = pare_graph_find_value(g, "scales");
        float *f = sv->init->data;
        f[0] = 1;
        f[1] = 1;
        f[2] = 2;
        f[3] = 0.5f;
    }
    vec_i64(g, "sizes", 4, (int64_t[]){1, 3, 5, 7});
    init_i64(g, "depth", 0, NULL, (int64_t[]){10});
    init_f32(g, "onoff", "2");
    init_i64(g, "r0", 0, NULL, (int64_t[]){2});
    init_i64(g, "r1", 0, NULL, (int64_t[]){11});
    init_i64(g, "r2", 0, NULL, (int64_t[]){3});
    node(g, "pad", "", "Pad", "x,pads", "pad");
    node(g, "tile", "", "Tile", "x,reps", "tile");
    node(g, "topk", "", "TopK", "x,k", "tv,ti");
    node(g, "rsz", "", "Resize", "x,,scales", "rsz");
    node(g, "rsz2", "", "Resize", "x,,,sizes", "rsz2");
    node(g, "oh", "", "OneHot", "idx,depth,onoff", "oh");
    node(g, "range", "", "Range", "r0,r1,r2", "range");
    pare_node *n = node(g, "gather", "", "Gather", "x,idx", "gx");
    attr_int(n, "axis", 2);
    node(g, "ge", "", "GatherElements", "x,x", "ge");
    node(g, "d2s", "", "DepthToSpace", "x", "d2s");
    attr_int(pare_graph_find_node(g, "d2s"), "blocksize", 1);
    node(g, "einsum", "", "Einsum", "x,x", "ein");
    pare_node_set_attr_string(pare_graph_find_node(g, "einsum"), "equation", "nchw,nchv->nwv",
                              NULL);
    infer_ok(m, NULL, NULL);
    EXPECT(g, "pad", "float32 [N,3,12,14]");
    EXPECT(g, "tile", "float32 [N,6,8,24]");
    EXPECT(g, "tv", "float32 [N,3,8,2]");
    EXPECT(g, "ti", "int64 [N,3,8,2]");
    EXPECT(g, "rsz", "float32 [N,3,16,4]");
    EXPECT(g, "rsz2", "float32 [1,3,5,7]");
    EXPECT(g, "oh", "float32 [N,5,10]");
    EXPECT(g, "range", "int64 [3]");
    EXPECT(g, "gx", "float32 [N,3,N,5,8]");
    EXPECT(g, "ge", "float32 [N,3,8,8]");
    EXPECT(g, "d2s", "float32 [N,3,8,8]");
    EXPECT(g, "ein", "float32 [N,8,8]");
    pare_model_free(m);
}

/* ---- normalizations ---- */

static void test_norms(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT16, "N,S,64");
    init_f32(g, "gamma", "64");
    pare_node *n = node(g, "ln", "", "LayerNormalization", "x,gamma", "y,mean,istd");
    attr_int(n, "axis", -1);
    input(g, "img", PARE_DT_FLOAT, "N,C,H,W");
    init_f32(g, "sc", "32");
    n = node(g, "bn", "", "BatchNormalization", "img,sc,sc,sc,sc", "bn,rm,rv");
    attr_int(n, "training_mode", 1);
    node(g, "in", "", "InstanceNormalization", "img,sc,sc", "in");
    node(g, "gn", "", "GroupNormalization", "img,sc,sc", "gn");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y", "float16 [N,S,64]");
    EXPECT(g, "mean", "float32 [N,S,1]");
    EXPECT(g, "istd", "float32 [N,S,1]");
    EXPECT(g, "bn", "float32 [N,C,H,W]");
    EXPECT(g, "rm", "float32 [C]");
    EXPECT(g, "in", "float32 [N,C,H,W]");
    EXPECT(g, "gn", "float32 [N,C,H,W]");
    pare_model_free(m);
}

/* ---- quantization ---- */

static void test_quant(void **state)
{
    (void)state;
    pare_model *m = empty_model(21, true);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,64");
    init_f32(g, "s", "");
    pare_tensor *t;
    assert_int_equal(pare_tensor_new("zp", PARE_DT_INT8, 0, NULL, &t, NULL), PARE_OK);
    pare_value *zp;
    assert_int_equal(pare_graph_add_initializer(g, t, &zp, NULL), PARE_OK);
    node(g, "q", "", "QuantizeLinear", "x,s,zp", "xq");
    node(g, "q_u8", "", "QuantizeLinear", "x,s", "xq8");
    pare_node *n = node(g, "q_od", "", "QuantizeLinear", "x,s", "xq4");
    attr_int(n, "output_dtype", PARE_DT_INT4);
    node(g, "dq", "", "DequantizeLinear", "xq,s,zp", "xdq");
    node(g, "dyn", "", "DynamicQuantizeLinear", "x", "y,ys,yz");
    input(g, "a", PARE_DT_UINT8, "M,K");
    input(g, "b", PARE_DT_UINT8, "K,8");
    node(g, "mmi", "", "MatMulInteger", "a,b", "mmi");
    input(g, "a16", PARE_DT_FLOAT16, "B,S,128");
    init_f32(g, "packed", "");
    n = node(g, "nbits", "com.microsoft", "MatMulNBits", "a16,packed", "nb");
    attr_int(n, "K", 128);
    attr_int(n, "N", 256);
    node(g, "msdq", "com.microsoft", "DequantizeLinear", "xq,s,zp", "msdq");
    node(g, "msq", "com.microsoft", "QuantizeLinear", "x,s", "msq");
    infer_ok(m, NULL, NULL);
    EXPECT(g, "xq", "int8 [N,64]");
    EXPECT(g, "xq8", "uint8 [N,64]");
    EXPECT(g, "xq4", "int4 [N,64]");
    EXPECT(g, "xdq", "float32 [N,64]");
    EXPECT(g, "y", "uint8 [N,64]");
    EXPECT(g, "ys", "float32 []");
    EXPECT(g, "yz", "uint8 []");
    EXPECT(g, "mmi", "int32 [M,8]");
    EXPECT(g, "nb", "float16 [B,S,256]");
    EXPECT(g, "msdq", "float32 [N,64]");
    EXPECT(g, "msq", "uint8 [N,64]");
    pare_model_free(m);

    /* DequantizeLinear's output_dtype (opset 23) */
    m = empty_model(23, false);
    g = pare_model_graph(m);
    input(g, "x", PARE_DT_INT8, "4,64");
    init_f32(g, "s", "4,2");
    n = node(g, "dq", "", "DequantizeLinear", "x,s", "y");
    attr_int(n, "block_size", 32);
    attr_int(n, "axis", 1);
    n = node(g, "dq16", "", "DequantizeLinear", "x,s", "y16");
    attr_int(n, "output_dtype", PARE_DT_FLOAT16);
    infer_ok(m, NULL, NULL);
    EXPECT(g, "y", "float32 [4,64]");
    EXPECT(g, "y16", "float16 [4,64]");
    pare_model_free(m);
}

/* ---- unknown ops are reported, never guessed ---- */

static void test_unknown_op(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,4");
    node(g, "mystery", "my.domain", "Frobnicate", "x", "y");
    node(g, "after", "", "Relu", "y", "z");
    node(g, "", "", "Frob2", "x", "w");
    pare_infer_report rep;
    infer_ok(m, NULL, &rep);
    assert_int_equal(rep.n_unknown, 2);
    assert_string_equal(rep.unknown[0], "node 'mystery' (Frobnicate, domain my.domain)");
    assert_non_null(strstr(rep.unknown[1], "(Frob2, domain ai.onnx)"));
    assert_int_equal(rep.n_conflicts, 0);
    EXPECT(g, "y", "? [?]");
    EXPECT(g, "z", "? [?]");
    pare_infer_report_release(&rep);
    pare_infer_report_release(NULL);
    pare_model_free(m);
}

/* ---- options: symbols bound, input shapes given ---- */

static void test_options(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,3,H,W");
    init_f32(g, "w", "8,3,3,3");
    node(g, "conv", "", "Conv", "x,w", "y");
    const char *names[] = {"N", "H"};
    const int64_t vals[] = {1, 32};
    pare_infer_opts o = {names, vals, 2, NULL, NULL, NULL, 0};
    infer_ok(m, &o, NULL);
    EXPECT(g, "x", "float32 [1,3,32,W]");
    EXPECT(g, "y", "float32 [1,8,30,?]");

    /* given input shapes replace the file's */
    const char *in_names[] = {"x"};
    const int64_t dims[] = {2, 3, 10, 12};
    const int64_t *in_dims[] = {dims};
    const int ranks[] = {4};
    pare_infer_opts o2 = {NULL, NULL, 0, in_names, in_dims, ranks, 1};
    infer_ok(m, &o2, NULL);
    EXPECT(g, "y", "float32 [2,8,8,10]");

    const char *bad_names[] = {"nope"};
    pare_infer_opts o3 = {NULL, NULL, 0, bad_names, in_dims, ranks, 1};
    pare_error err;
    assert_int_equal(pare_infer_shapes(m, &o3, NULL, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(pare_infer_shapes(NULL, NULL, NULL, &err), PARE_ERR_ARG);
    pare_model_free(m);
}

/* ---- file types: kept, refined, conflicts reported ---- */

static void declare(pare_value *v, int dtype, const char *dims)
{
    pare_shape s;
    parse_shape(dims, &s);
    assert_int_equal(pare_value_set_type(v, dtype, &s, NULL), PARE_OK);
    free_shape(&s);
    v->shape_from_file = true;
    v->dirty = false;
}

static void test_file_types(void **state)
{
    (void)state;
    pare_model *m = empty_model(17, false);
    pare_graph *g = pare_model_graph(m);
    input(g, "x", PARE_DT_FLOAT, "N,4");
    node(g, "r1", "", "Relu", "x", "a");
    node(g, "r2", "", "Relu", "a", "b");
    node(g, "r3", "", "Relu", "b", "c");
    node(g, "r4", "", "Relu", "c", "d");
    declare(pare_graph_find_value(g, "a"), PARE_DT_FLOAT, "batch,?");   /* refined */
    declare(pare_graph_find_value(g, "b"), PARE_DT_FLOAT, "N,5");       /* conflict */
    declare(pare_graph_find_value(g, "c"), PARE_DT_FLOAT, NULL);        /* dtype only */
    pare_infer_report rep;
    infer_ok(m, NULL, &rep);
    EXPECT(g, "a", "float32 [batch,4]");
    EXPECT(g, "b", "float32 [N,5]");
    EXPECT(g, "c", "float32 [N,5]");
    EXPECT(g, "d", "float32 [N,5]");
    assert_int_equal(rep.n_conflicts, 1);
    assert_non_null(strstr(rep.conflicts[0], "'b'"));
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->shape_from_file)
            assert_false(g->values[i]->dirty);
    pare_infer_report_release(&rep);
    pare_model_free(m);
}

/* ---- control flow ---- */

static pare_graph *graph_attr(pare_node *n, const char *name)
{
    const pare_attr *a = pare_node_attr(n, name);
    assert_non_null(a);
    return a->g;
}

static void test_testdata_control_flow(void **state)
{
    (void)state;
    pare_model *m;
    pare_error err;
    if (pare_model_load(PARE_TESTDATA "/control_flow.onnx", NULL, &m, &err)) {
        skip();
        return;
    }
    pare_graph *g = pare_model_graph(m);
    /* forget every declared type but the inputs', then infer them back */
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v->is_input && !v->init) {
            pare_value_set_type(v, 0, NULL, NULL);
            v->shape_from_file = false;
        }
    }
    pare_infer_report rep;
    infer_ok(m, NULL, &rep);
    assert_int_equal(rep.n_unknown, 0);
    EXPECT(g, "if_out", "float32 [3]");
    EXPECT(g, "loop_final", "float32 [3]");
    EXPECT(g, "loop_scan", "float32 [?,3]");
    EXPECT(g, "scan_final", "float32 [3]");
    pare_infer_report_release(&rep);
    pare_model_free(m);
}

static void test_if_loop_scan(void **state)
{
    (void)state;
    /* Built by loading a model with bodies is simplest: the IR API has no
     * subgraph constructor, so If/Loop come from testdata's control_flow
     * (above); here, the fixed point of a growing loop state. */
    pare_model *m;
    pare_error err;
    if (pare_model_load(PARE_TESTDATA "/control_flow.onnx", NULL, &m, &err)) {
        skip();
        return;
    }
    pare_graph *g = pare_model_graph(m);
    pare_node *loop = NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (pare_node_is(g->nodes[i], "", "Loop"))
            loop = g->nodes[i];
    assert_non_null(loop);
    pare_graph *body = graph_attr(loop, "body");
    /* make the carried value grow: v_out = Concat(v_in, v_in) */
    pare_value *v_in = body->inputs[2];
    pare_value *grown;
    assert_int_equal(pare_graph_new_value(body, "grown", NULL, 0, &grown, &err), PARE_OK);
    pare_value *ins[2] = {v_in, v_in};
    pare_node *cat;
    assert_int_equal(pare_graph_add_node(body, "grow", "", "Concat", ins, 2, &grown, 1, NULL, &cat,
                                         &err), PARE_OK);
    pare_node_set_attr_int(cat, "axis", 0, NULL);
    body->outputs[1] = grown;
    /* the file declares v_in [3]; forget that, or it would be believed */
    for (size_t i = 0; i < body->n_values; i++) {
        pare_value *v = body->values[i];
        pare_value_set_type(v, 0, NULL, NULL);
        v->shape_from_file = false;
    }
    pare_value *lf = pare_graph_find_value(g, "loop_final");
    pare_value_set_type(lf, 0, NULL, NULL);
    lf->shape_from_file = false;
    pare_infer_report rep;
    infer_ok(m, NULL, &rep);
    EXPECT(g, "loop_final", "float32 [?]");
    EXPECT(body, "grown", "float32 [?]");
    EXPECT(body, "iter", "int64 []");
    EXPECT(body, "cond_in", "bool []");
    EXPECT(g, "loop_scan", "float32 [M,3]"); /* the file's symbol stays */
    pare_infer_report_release(&rep);
    pare_model_free(m);
}

/* ---- the test models: everything inferred, nothing marked changed ---- */

static void clear_types(pare_graph *g, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v->is_input && !v->init && !v->is_output)
            assert_true(v->shape.rank < 0 || !v->shape_from_file);
    }
}

static void test_testdata_models(void **state)
{
    (void)state;
    struct {
        const char *file, *value, *want;
    } cases[] = {
        {"cnn_digits.onnx", "pool_out", "float32 [N,64,4,4]"},
        {"cnn_digits.onnx", "flat_out", "float32 [N,64]"},
        {"cnn_digits.onnx", "logits", "float32 [N,10]"},
        {"transformer_block.onnx", "q_heads", "float32 [N,S,4,16]"},
        {"transformer_block.onnx", "scores", "float32 [N,4,S,S]"},
        {"transformer_block.onnx", "ctx_m", "float32 [N,S,64]"},
        {"transformer_block.onnx", "fc1_out", "float32 [N,S,256]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, cases[i].file);
        pare_model *m;
        pare_error err;
        if (pare_model_load(path, NULL, &m, &err)) {
            skip();
            return;
        }
        void *before, *after;
        size_t nb, na;
        assert_int_equal(pare_model_save_buffer(m, &before, &nb, &err), PARE_OK);
        pare_graph *g = pare_model_graph(m);
        pare_graph_walk(g, clear_types, NULL);
        pare_infer_report rep;
        infer_ok(m, NULL, &rep);
        assert_int_equal(rep.n_unknown, 0);
        assert_int_equal(rep.n_conflicts, 0);
        EXPECT(g, cases[i].value, cases[i].want);
        for (size_t k = 0; k < g->n_values; k++)
            assert_false(g->values[k]->dirty);
        /* saving after inference gives the same bytes */
        assert_int_equal(pare_model_save_buffer(m, &after, &na, &err), PARE_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(before, after, nb);
        free(before);
        free(after);
        pare_infer_report_release(&rep);
        pare_model_free(m);
    }
}

static void test_testdata_bind(void **state)
{
    (void)state;
    pare_model *m;
    pare_error err;
    if (pare_model_load(PARE_TESTDATA "/transformer_block.onnx", NULL, &m, &err)) {
        skip();
        return;
    }
    const char *names[] = {"N", "S"};
    const int64_t vals[] = {2, 7};
    pare_infer_opts o = {names, vals, 2, NULL, NULL, NULL, 0};
    infer_ok(m, &o, NULL);
    pare_graph *g = pare_model_graph(m);
    EXPECT(g, "scores", "float32 [2,4,7,7]");
    EXPECT(g, "y", "float32 [2,7,64]");
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_conv_symbolic),
        cmocka_unit_test(test_conv_channel_mismatch),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_shape_chain),
        cmocka_unit_test(test_reshape_rules),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_opset_differences),
        cmocka_unit_test(test_legacy_opsets),
        cmocka_unit_test(test_misc_shape_ops),
        cmocka_unit_test(test_norms),
        cmocka_unit_test(test_quant),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_file_types),
        cmocka_unit_test(test_testdata_control_flow),
        cmocka_unit_test(test_if_loop_scan),
        cmocka_unit_test(test_testdata_models),
        cmocka_unit_test(test_testdata_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
