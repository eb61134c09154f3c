/* Model builders shared by the executor's fusion tests (test_fusion.c,
 * test_fusion_matmul.c): a model from a minimal ModelProto, random float
 * tensors, initializers, inputs, nodes and outputs. Include after cmocka.h
 * and pare/model.h; every function is static, each test uses some. */
#ifndef PARE_TESTS_EXEC_FUSION_BUILD_H
#define PARE_TESTS_EXEC_FUSION_BUILD_H

#if defined(__GNUC__)
#define FB_MAYBE_UNUSED __attribute__((unused))
#else
#define FB_MAYBE_UNUSED
#endif

static FB_MAYBE_UNUSED size_t varint(unsigned char *p, uint64_t v)
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
static FB_MAYBE_UNUSED pare_model *new_model(int64_t opset)
{
    unsigned char b[64], imp[32];
    size_t n = 0, k = 0;
    imp[k++] = 0x0a;
    imp[k++] = 0;
    imp[k++] = 0x10;
    k += varint(imp + k, (uint64_t)opset);
    b[n++] = 0x08;
    b[n++] = 8;
    b[n++] = 0x3a;
    b[n++] = 3;
    b[n++] = 0x12;
    b[n++] = 1;
    b[n++] = 'g';
    b[n++] = 0x42;
    n += varint(b + n, k);
    memcpy(b + n, imp, k);
    n += k;
    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load_buffer(b, n, NULL, NULL, &m, &err), PARE_OK);
    return m;
}

static FB_MAYBE_UNUSED uint32_t rng_state = 12345;
static FB_MAYBE_UNUSED float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f; /* [-1, 1) */
}

static FB_MAYBE_UNUSED pare_tensor *rand_tensor(const char *name, int rank,
                                                const int64_t *dims, float lo, float hi)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, rank, dims, &t, &err), PARE_OK);
    float *x = t->data;
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++)
        x[i] = lo + (hi - lo) * 0.5f * (frand() + 1.0f);
    return t;
}

static FB_MAYBE_UNUSED pare_value *add_init(pare_graph *g, const char *name, int rank,
                                            const int64_t *dims, float lo, float hi)
{
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_add_initializer(g, rand_tensor(name, rank, dims, lo, hi), &v, &err),
                     PARE_OK);
    return v;
}

static FB_MAYBE_UNUSED pare_value *add_scalar(pare_graph *g, const char *name, float val)
{
    pare_tensor *t;
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_tensor_new(name, PARE_DT_FLOAT, 0, NULL, &t, &err), PARE_OK);
    *(float *)t->data = val;
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    return v;
}

static FB_MAYBE_UNUSED pare_value *add_input(pare_graph *g, const char *name, int rank,
                                             const int64_t *dims)
{
    pare_value *v;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, name, NULL, PARE_DT_FLOAT, &v, &err), PARE_OK);
    assert_int_equal(pare_value_set_dims(v, PARE_DT_FLOAT, rank, dims, &err), PARE_OK);
    assert_int_equal(pare_graph_add_input(g, v, &err), PARE_OK);
    return v;
}

static FB_MAYBE_UNUSED pare_node *last_node;

static FB_MAYBE_UNUSED pare_value *add_node(pare_graph *g, const char *name, const char *op,
                                            pare_value *const *ins, size_t n_ins,
                                            const char *out)
{
    pare_value *o;
    pare_error err;
    assert_int_equal(pare_graph_new_value(g, out, NULL, 0, &o, &err), PARE_OK);
    assert_int_equal(pare_graph_add_node(g, name, "", op, ins, n_ins, &o, 1, NULL, &last_node,
                                         &err),
                     PARE_OK);
    return o;
}

static FB_MAYBE_UNUSED void output(pare_graph *g, pare_value *v)
{
    pare_error err;
    assert_int_equal(pare_graph_add_output(g, v, &err), PARE_OK);
}

#endif
