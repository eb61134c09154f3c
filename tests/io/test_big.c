/* Weights over 2 GiB work through external data: a model whose one
 * initializer is 2 GiB + 64 bytes (a sparse file, so it costs no disk until
 * written) loads, maps, saves with external data, and reloads; embedding it
 * fails cleanly with the protobuf limit named. Suite 'slow' (writes 2 GiB). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pare/ir.h"
#include "pare/model.h"
#include "proto/onnx.pb-c.h"

#define N_ELEMS ((int64_t)(1u << 29) + 16)

static char dir[256];

static void write_model(const char *path)
{
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT;
    Onnx__TensorProto *inits[1] = {&w};
    Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__StringStringEntryProto *ext[1] = {&loc};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    Onnx__NodeProto *nodes[1] = {&node};
    Onnx__ValueInfoProto out = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__ValueInfoProto *outs[1] = {&out};
    Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    int64_t dims[1] = {N_ELEMS};
    char *in_names[1] = {"W"}, *out_names[1] = {"y"};
    m.has_ir_version = 1;
    m.ir_version = 8;
    op.has_version = 1;
    op.version = 17;
    m.n_opset_import = 1;
    m.opset_import = ops;
    w.name = "W";
    w.has_data_type = 1;
    w.data_type = 1;
    w.n_dims = 1;
    w.dims = dims;
    w.has_data_location = 1;
    w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    loc.key = "location";
    loc.value = "big.bin";
    w.n_external_data = 1;
    w.external_data = ext;
    node.op_type = "Identity";
    node.n_input = 1;
    node.input = in_names;
    node.n_output = 1;
    node.output = out_names;
    tt.has_elem_type = 1;
    tt.elem_type = 1;
    tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp.tensor_type = &tt;
    out.name = "y";
    out.type = &tp;
    g.name = "big";
    g.n_node = 1;
    g.node = nodes;
    g.n_initializer = 1;
    g.initializer = inits;
    g.n_output = 1;
    g.output = outs;
    m.graph = &g;
    size_t n = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    onnx__model_proto__pack(&m, buf);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
}

static void test_over_2gib_external(void **state)
{
    (void)state;
    char model[300], data[300], out[300], out_data[300], emb[300];
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    snprintf(data, sizeof data, "%s/big.bin", dir);
    snprintf(out, sizeof out, "%s/out/model.onnx", dir);
    snprintf(out_data, sizeof out_data, "%s/out/model.onnx.data", dir);
    snprintf(emb, sizeof emb, "%s/out/embedded.onnx", dir);
    write_model(model);
    int fd = open(data, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(N_ELEMS * 4)), 0);
    /* a marker at the end, so the copy can be checked */
    float marker = 42.5f;
    assert_int_equal(pwrite(fd, &marker, 4, (off_t)((N_ELEMS - 1) * 4)), 4);
    close(fd);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/out", dir);
    mkdir(sub, 0755);

    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load(model, NULL, &m, &err), PARE_OK);
    assert_int_equal(pare_model_external_bytes(m), (uint64_t)N_ELEMS * 4);
    pare_value *w = pare_graph_find_value(pare_model_graph(m), "W");
    assert_non_null(w);
    assert_non_null(w->init);
    assert_false(w->init->owns_data);
    assert_true(((float *)w->init->data)[N_ELEMS - 1] == 42.5f);

    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.external_threshold = INT64_MAX; /* embed: must fail, cleanly */
    assert_int_equal(pare_model_save(m, emb, &so, &err), PARE_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "2 GiB"));
    struct stat sb;
    assert_int_not_equal(stat(emb, &sb), 0);

    so = (pare_save_opts)PARE_SAVE_OPTS_INIT; /* keep external */
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    assert_int_equal(stat(out_data, &sb), 0);
    assert_true((uint64_t)sb.st_size >= (uint64_t)N_ELEMS * 4);
    pare_model_free(m);

    assert_int_equal(pare_model_load(out, NULL, &m, &err), PARE_OK);
    w = pare_graph_find_value(pare_model_graph(m), "W");
    assert_true(((float *)w->init->data)[N_ELEMS - 1] == 42.5f);
    pare_model_free(m);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pare-test-big.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_over_2gib_external)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
