/* Model builders shared by the executor's fusion tests (test_fusion.c,
 * test_fusion_matmul.c): a model from a minimal ModelProto, random float
 * tensors, initializers, inputs, nodes and outputs; runs fused and
 * unfused and compares (check_model). Include after cmocka.h
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

/* runs m once per input set (twice: the second run uses the arena) and
 * returns the outputs of the last run */
static FB_MAYBE_UNUSED pare_tensor **run(pare_model *m, bool no_fusion, pare_tensor **ins,
                                         size_t n_ins, size_t *n_out, char **plan)
{
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 2;
    so.no_fusion = no_fusion;
    pare_session *s;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("session: %s", err.msg);
    pare_tensor **o = NULL;
    for (int r = 0; r < 3; r++) {
        if (o)
            pare_tensors_free(o, *n_out);
        if (pare_session_run(s, ins, n_ins, &o, n_out, &err))
            fail_msg("run: %s", err.msg);
    }
    if (plan)
        *plan = pare_session_plan_text(s);
    pare_session_free(s);
    return o;
}

static FB_MAYBE_UNUSED int count_str(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* Runs fused and unfused, compares, and checks that the plan shows `fused`
 * lines "... fused into ..." (and each string of want). */
static FB_MAYBE_UNUSED void check_model(pare_model *m, pare_tensor **ins, size_t n_ins,
                                        int fused, const char *const *want)
{
    size_t na, nb;
    char *plan = NULL, *plan0 = NULL;
    pare_tensor **a = run(m, false, ins, n_ins, &na, &plan);
    pare_tensor **b = run(m, true, ins, n_ins, &nb, &plan0);
    assert_non_null(plan);
    assert_non_null(plan0);
    if (count_str(plan, " fused into ") != fused)
        fail_msg("want %d fused nodes, plan:\n%s", fused, plan);
    assert_int_equal(count_str(plan0, " fused into "), 0);
    for (size_t i = 0; want && want[i]; i++)
        if (!strstr(plan, want[i]))
            fail_msg("'%s' not in the plan:\n%s", want[i], plan);
    assert_int_equal(na, nb);
    for (size_t o = 0; o < na; o++) {
        assert_int_equal(pare_tensor_numel(a[o]), pare_tensor_numel(b[o]));
        const float *x = a[o]->data, *y = b[o]->data;
        double worst = 0, mag = 1e-3;
        for (uint64_t i = 0; i < pare_tensor_numel(a[o]); i++) {
            double d = fabs((double)x[i] - y[i]);
            worst = d > worst ? d : worst;
            mag = fabs(y[i]) > mag ? fabs(y[i]) : mag;
        }
        if (worst > 1e-5 * mag * 8)
            fail_msg("output %zu: fused differs by %g (max |y| %g)", o, worst, mag);
    }
    pare_tensors_free(a, na);
    pare_tensors_free(b, nb);
    free(plan);
    free(plan0);
}

#endif
