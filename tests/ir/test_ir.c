/* Graph IR: lookups, rewrite API (links kept right), toposort, dead code
 * removal, validation, and saving a rewritten model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/ir.h"
#include "pare/model.h"

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

static bool has_use(const pare_value *v, const pare_node *n, size_t i)
{
    for (size_t k = 0; k < v->n_uses; k++)
        if (v->uses[k].node == n && v->uses[k].input == i)
            return true;
    return false;
}

/* every link agrees with every other */
static void check_links(const pare_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const pare_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k])
                assert_true(has_use(n->inputs[k], n, k));
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k])
                assert_ptr_equal(n->outputs[k]->producer, n);
    }
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        assert_int_equal(v->id, i);
        assert_ptr_equal(pare_graph_find_value(g, v->name), v);
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *c = v->uses[u].node;
            assert_ptr_equal(c->inputs[v->uses[u].input], v);
        }
    }
}

static void test_load_links(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    check_links(g);
    assert_true(g->n_inputs >= 1);
    assert_string_equal(g->inputs[0]->name, "input");
    assert_int_equal(g->inputs[0]->dtype, PARE_DT_FLOAT);
    assert_int_equal(g->inputs[0]->shape.rank, 4);
    assert_string_equal(g->inputs[0]->shape.dims[0].param, "N");
    assert_int_equal(g->inputs[0]->shape.dims[2].value, 8);
    assert_int_equal(pare_model_opset_version(m, ""), 17);
    assert_int_equal(pare_model_opset_version(m, "ai.onnx"), 17);
    /* typed attributes */
    pare_node *conv = NULL;
    for (size_t i = 0; i < g->n_nodes && !conv; i++)
        if (pare_node_is(g->nodes[i], "", "Conv"))
            conv = g->nodes[i];
    assert_non_null(conv);
    const int64_t *pads;
    assert_int_equal(pare_node_attr_ints(conv, "pads", &pads), 4);
    assert_int_equal(pare_node_attr_int(conv, "group", 1), 1);
    assert_int_equal(pare_node_attr_int(conv, "no_such", 42), 42);
    pare_model_free(m);
}

static void test_subgraph_outer_refs(void **state)
{
    (void)state;
    pare_model *m = load("control_flow.onnx");
    pare_graph *g = pare_model_graph(m);
    size_t subgraphs = 0, outer_refs = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            pare_graph *sg = n->attrs[a].g;
            if (!sg)
                continue;
            subgraphs++;
            assert_ptr_equal(sg->parent, g);
            assert_ptr_equal(sg->owner, n);
            for (size_t k = 0; k < sg->n_nodes; k++)
                for (size_t j = 0; j < sg->nodes[k]->n_inputs; j++) {
                    pare_value *v = sg->nodes[k]->inputs[j];
                    if (v && v->graph == g) {
                        outer_refs++;
                        assert_true(has_use(v, sg->nodes[k], j));
                    }
                }
        }
    }
    assert_true(subgraphs >= 3);
    assert_true(outer_refs >= 1);
    pare_model_free(m);
}

/* Insert Identity between input and first consumer, then bypass it again. */
static void test_insert_bypass_remove(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_value *in = g->inputs[0];
    size_t uses_before = in->n_uses;
    pare_node *first = in->uses[0].node;
    size_t slot = in->uses[0].input;
    pare_value *mid;
    assert_int_equal(pare_graph_new_value(g, NULL, "input_copy", PARE_DT_FLOAT, &mid, &err),
                     PARE_OK);
    assert_string_equal(mid->name, "input_copy");
    pare_node *id;
    assert_int_equal(pare_graph_add_node(g, "ident", "", "Identity", &in, 1, &mid, 1, first, &id,
                                         &err),
                     PARE_OK);
    assert_int_equal(pare_node_set_input(first, slot, mid, &err), PARE_OK);
    check_links(g);
    assert_int_equal(in->n_uses, uses_before);
    assert_int_equal(mid->n_uses, 1);
    /* a name already used is refused */
    pare_value *dup;
    assert_int_equal(pare_graph_new_value(g, "input_copy", NULL, 0, &dup, &err), PARE_ERR_ARG);
    size_t nodes = g->n_nodes;
    assert_int_equal(pare_graph_bypass_node(g, id, 0, &err), PARE_OK);
    assert_int_equal(g->n_nodes, nodes - 1);
    assert_ptr_equal(first->inputs[slot], in);
    size_t removed;
    assert_int_equal(pare_graph_remove_dead(g, &removed, &err), PARE_OK);
    assert_int_equal(removed, 0);
    assert_null(pare_graph_find_value(g, "input_copy"));
    check_links(g);
    pare_model_free(m);
}

/* Removing a node that holds subgraphs drops the subgraphs' reads of outer
 * values: no use may point into the freed bodies. */
static bool inside(const pare_node *n, const pare_node *holder)
{
    for (const pare_graph *sg = n->graph; sg && sg->owner; sg = sg->owner->graph)
        if (sg->owner == holder)
            return true;
    return false;
}

static size_t outer_reads(const pare_graph *g, const pare_node *holder)
{
    size_t c = 0;
    for (size_t i = 0; i < g->n_values; i++)
        for (size_t u = 0; u < g->values[i]->n_uses; u++)
            if (g->values[i]->uses[u].node->graph != g &&
                (!holder || inside(g->values[i]->uses[u].node, holder)))
                c++;
    return c;
}

static void test_remove_node_with_subgraphs(void **state)
{
    (void)state;
    pare_model *m = load("control_flow.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    size_t total = outer_reads(g, NULL);
    assert_true(total > 0); /* the bodies read values of the main graph */
    for (size_t i = g->n_nodes; i-- > 0;) {
        pare_node *cf = g->nodes[i];
        bool holds = false;
        for (size_t a = 0; a < cf->n_attrs; a++)
            holds |= cf->attrs[a].g != NULL;
        if (!holds)
            continue;
        size_t mine = outer_reads(g, cf);
        assert_int_equal(pare_graph_remove_node(g, cf, &err), PARE_OK);
        total -= mine;
        assert_int_equal(outer_reads(g, NULL), total);
        check_links(g);
    }
    assert_int_equal(total, 0);
    pare_model_free(m);
}

static void test_toposort_restores_order_and_finds_cycles(void **state)
{
    (void)state;
    pare_model *m = load("transformer_block.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    size_t n = g->n_nodes;
    char **names = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = strdup(g->nodes[i]->name);
    /* sorting a sorted graph changes nothing (stable) */
    assert_int_equal(pare_graph_toposort(g, &err), PARE_OK);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(g->nodes[i]->name, names[i]);
    /* reverse the node list: every dependency now points forward */
    for (size_t i = 0; i < n / 2; i++) {
        pare_node *t = g->nodes[i];
        g->nodes[i] = g->nodes[n - 1 - i];
        g->nodes[n - 1 - i] = t;
    }
    pare_problems p = {0};
    assert_int_equal(pare_model_validate(m, &p, &err), PARE_OK);
    assert_true(p.n > 0);
    pare_problems_release(&p);
    assert_int_equal(pare_graph_toposort(g, &err), PARE_OK);
    assert_int_equal(g->n_nodes, n);
    assert_int_equal(pare_model_validate(m, &p, &err), PARE_OK);
    assert_int_equal(p.n, 0);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    pare_model_free(m);

    m = load("bad/cycle.onnx");
    assert_int_equal(pare_graph_toposort(pare_model_graph(m), &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "cycle"));
    pare_model_free(m);
}

static void test_replace_output_keeps_name(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_value *out = g->outputs[0];
    const char *name = "logits";
    assert_string_equal(out->name, name);
    pare_node *last = out->producer;
    assert_non_null(last);
    /* route the output through a new Relu: producer's result is renamed, the
     * graph output keeps its name */
    pare_value *relu_out;
    assert_int_equal(pare_graph_new_value(g, NULL, "relu_out", PARE_DT_FLOAT, &relu_out, &err),
                     PARE_OK);
    pare_node *relu;
    assert_int_equal(pare_graph_add_node(g, "final_relu", "", "Relu", &out, 1, &relu_out, 1, NULL,
                                         &relu, &err),
                     PARE_OK);
    /* uses of `out` other than relu go to relu_out: here there are none, so
     * only the graph output moves */
    pare_node_set_input(relu, 0, NULL, &err);
    assert_int_equal(pare_value_replace_uses(out, relu_out, &err), PARE_OK);
    pare_node_set_input(relu, 0, out, &err);
    assert_string_equal(g->outputs[0]->name, name);
    assert_ptr_equal(g->outputs[0], relu_out);
    assert_ptr_equal(g->outputs[0]->producer, relu);
    check_links(g);
    /* save and reload: valid and still named */
    void *buf;
    size_t len;
    assert_int_equal(pare_model_save_buffer(m, &buf, &len, &err), PARE_OK);
    pare_model *r;
    assert_int_equal(pare_model_load_buffer(buf, len, NULL, NULL, &r, &err), PARE_OK);
    pare_problems p = {0};
    assert_int_equal(pare_model_validate(r, &p, &err), PARE_OK);
    if (p.n)
        fail_msg("%s: %s", p.items[0].where, p.items[0].what);
    assert_string_equal(pare_model_graph(r)->outputs[0]->name, name);
    assert_string_equal(pare_model_graph(r)->outputs[0]->producer->op_type, "Relu");
    free(buf);
    pare_model_free(r);
    pare_model_free(m);
}

static void test_attrs_and_initializers(void **state)
{
    (void)state;
    pare_model *m = load("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    pare_node *n = g->nodes[0];
    int64_t v[3] = {1, 2, 3};
    assert_int_equal(pare_node_set_attr_ints(n, "pare_test", v, 3, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_float(n, "pare_f", 0.5f, &err), PARE_OK);
    assert_int_equal(pare_node_set_attr_string(n, "pare_s", "hello", &err), PARE_OK);
    int64_t dims[1] = {4};
    pare_tensor *t;
    assert_int_equal(pare_tensor_new("extra_w", PARE_DT_FLOAT, 1, dims, &t, &err), PARE_OK);
    ((float *)t->data)[3] = 7.0f;
    pare_value *iv;
    assert_int_equal(pare_graph_add_initializer(g, t, &iv, &err), PARE_OK);
    assert_int_equal(pare_node_add_input(n, iv, &err), PARE_OK);
    void *buf;
    size_t len;
    assert_int_equal(pare_model_save_buffer(m, &buf, &len, &err), PARE_OK);
    pare_model *r;
    assert_int_equal(pare_model_load_buffer(buf, len, NULL, NULL, &r, &err), PARE_OK);
    pare_graph *h = pare_model_graph(r);
    pare_node *rn = pare_graph_find_node(h, n->name);
    assert_non_null(rn);
    const int64_t *got;
    assert_int_equal(pare_node_attr_ints(rn, "pare_test", &got), 3);
    assert_int_equal(got[2], 3);
    assert_true(pare_node_attr_float(rn, "pare_f", 0) == 0.5f);
    assert_string_equal(pare_node_attr_string(rn, "pare_s", ""), "hello");
    pare_value *w = pare_graph_find_value(h, "extra_w");
    assert_non_null(w);
    assert_non_null(w->init);
    assert_true(((float *)w->init->data)[3] == 7.0f);
    assert_int_equal(pare_node_remove_attr(rn, "pare_test", &err), PARE_OK);
    assert_null(pare_node_attr(rn, "pare_test"));
    free(buf);
    pare_model_free(r);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_links),
        cmocka_unit_test(test_subgraph_outer_refs),
        cmocka_unit_test(test_insert_bypass_remove),
        cmocka_unit_test(test_remove_node_with_subgraphs),
        cmocka_unit_test(test_toposort_restores_order_and_finds_cycles),
        cmocka_unit_test(test_replace_output_keeps_name),
        cmocka_unit_test(test_attrs_and_initializers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
