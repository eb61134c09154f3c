/* Model I/O: load (plain, gzip, external data), save (atomic, deterministic,
 * gzip, external threshold), lossless round trip, and bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pare/ir.h"
#include "pare/model.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-test-io.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static pare_model *load_ok(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, rel);
    pare_model *m = NULL;
    pare_error err;
    pare_status st = pare_model_load(path, NULL, &m, &err);
    if (st)
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static void test_load_plain_and_gzip_same(void **state)
{
    (void)state;
    pare_model *a = load_ok("cnn_digits.onnx");
    pare_model *b = load_ok("cnn_digits.onnx.gz");
    void *ba, *bb;
    size_t la, lb;
    pare_error err;
    assert_int_equal(pare_model_save_buffer(a, &ba, &la, &err), PARE_OK);
    assert_int_equal(pare_model_save_buffer(b, &bb, &lb, &err), PARE_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_true(pare_model_graph(a)->n_nodes > 5);
    free(ba);
    free(bb);
    pare_model_free(a);
    pare_model_free(b);
}

/* untouched load + save gives the file's own bytes (the generator writes
 * protobuf's canonical field order) */
static void test_untouched_save_is_byte_identical(void **state)
{
    (void)state;
    const char *models[] = {"cnn_digits.onnx", "transformer_block.onnx", "control_flow.onnx"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, models[i]);
        size_t n;
        unsigned char *orig = slurp(path, &n);
        assert_non_null(orig);
        pare_model *m = load_ok(models[i]);
        void *b;
        size_t l;
        pare_error err;
        assert_int_equal(pare_model_save_buffer(m, &b, &l, &err), PARE_OK);
        assert_int_equal(l, n);
        assert_memory_equal(b, orig, n);
        free(b);
        free(orig);
        pare_model_free(m);
    }
}

static void test_external_data_mapped(void **state)
{
    (void)state;
    pare_model *m = load_ok("mlp_external/model.onnx");
    assert_true(pare_model_external_bytes(m) > 0);
    pare_graph *g = pare_model_graph(m);
    size_t inits = 0;
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->init) {
            inits++;
            /* borrowed from the mapping, not copied */
            assert_false(g->values[i]->init->owns_data);
        }
    assert_true(inits > 0);
    /* saving keeps them external, beside the output */
    char out[512], data[512];
    snprintf(out, sizeof out, "%s/ext_out.onnx", tmpdir);
    snprintf(data, sizeof data, "%s/ext_out.onnx.data", tmpdir);
    pare_error err;
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    struct stat sb;
    assert_int_equal(stat(data, &sb), 0);
    assert_true((uint64_t)sb.st_size >= pare_model_external_bytes(m));
    pare_model *r;
    assert_int_equal(pare_model_load(out, NULL, &r, &err), PARE_OK);
    assert_int_equal(pare_model_external_bytes(r), pare_model_external_bytes(m));
    pare_model_free(r);
    /* and embedded on request */
    so.external_threshold = INT64_MAX;
    snprintf(out, sizeof out, "%s/emb_out.onnx", tmpdir);
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    assert_int_equal(pare_model_load(out, NULL, &r, &err), PARE_OK);
    assert_int_equal(pare_model_external_bytes(r), 0);
    pare_model_free(r);
    pare_model_free(m);
}

static void test_external_threshold(void **state)
{
    (void)state;
    pare_model *m = load_ok("cnn_digits.onnx");
    char out[512], data[512];
    snprintf(out, sizeof out, "%s/thr.onnx", tmpdir);
    snprintf(data, sizeof data, "%s/weights.bin", tmpdir);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.external_threshold = 1024;
    so.external_name = "weights.bin";
    pare_error err;
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    pare_model *r;
    assert_int_equal(pare_model_load(out, NULL, &r, &err), PARE_OK);
    assert_true(pare_model_external_bytes(r) > 0);
    /* same weights */
    void *a, *b;
    size_t la, lb;
    assert_int_equal(pare_model_save_buffer(m, &a, &la, &err), PARE_OK);
    assert_int_equal(pare_model_save_buffer(r, &b, &lb, &err), PARE_OK);
    pare_graph *g1 = pare_model_graph(m), *g2 = pare_model_graph(r);
    for (size_t i = 0; i < g1->n_values; i++) {
        pare_value *v = g1->values[i];
        if (!v->init)
            continue;
        pare_value *w = pare_graph_find_value(g2, v->name);
        assert_non_null(w);
        assert_non_null(w->init);
        assert_int_equal(v->init->nbytes, w->init->nbytes);
        assert_memory_equal(v->init->data, w->init->data, v->init->nbytes);
    }
    free(a);
    free(b);
    pare_model_free(r);
    /* a bad external name is refused */
    so.external_name = "../x.bin";
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_ERR_ARG);
    pare_model_free(m);
}

static void test_save_deterministic_and_gzip(void **state)
{
    (void)state;
    pare_model *m = load_ok("transformer_block.onnx");
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a.onnx.gz", tmpdir);
    snprintf(b, sizeof b, "%s/b.onnx.gz", tmpdir);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.gzip = true;
    pare_error err;
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK);
    sleep(1); /* a timestamp in the gzip header would now differ */
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    assert_int_equal(x[0], 0x1f);
    assert_int_equal(x[1], 0x8b);
    free(x);
    free(y);
    pare_model *r;
    assert_int_equal(pare_model_load(a, NULL, &r, &err), PARE_OK);
    assert_int_equal(pare_model_graph(r)->n_nodes, pare_model_graph(m)->n_nodes);
    pare_model_free(r);
    pare_model_free(m);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_atomic_save_failure_leaves_nothing(void **state)
{
    (void)state;
    pare_model *m = load_ok("cnn_digits.onnx");
    char sub[512], out[600];
    snprintf(sub, sizeof sub, "%s/atomic", tmpdir);
    mkdir(sub, 0755);
    snprintf(out, sizeof out, "%s/model.onnx", sub);
    FILE *f = fopen(out, "w");
    fputs("old", f);
    fclose(f);
    /* a save that must fail (external data to stdout is refused only for "-";
     * here: a bad external name) keeps the old file and leaves no temp file */
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.external_threshold = 0;
    so.external_name = "a/b";
    pare_error err;
    assert_int_not_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    size_t n;
    unsigned char *b = slurp(out, &n);
    assert_int_equal(n, 3);
    free(b);
    assert_int_equal(count_entries(sub), 1);
    /* a successful save replaces it */
    so = (pare_save_opts)PARE_SAVE_OPTS_INIT;
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_OK);
    b = slurp(out, &n);
    assert_true(n > 1000);
    free(b);
    assert_int_equal(count_entries(sub), 1);
    /* a directory that does not exist */
    snprintf(out, sizeof out, "%s/nope/model.onnx", tmpdir);
    assert_int_equal(pare_model_save(m, out, &so, &err), PARE_ERR_IO);
    pare_model_free(m);
}

static void expect_load_error(const char *rel, pare_status want, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, rel);
    pare_model *m = (pare_model *)1;
    pare_error err;
    pare_status st = pare_model_load(path, NULL, &m, &err);
    if (st == PARE_OK)
        fail_msg("%s loaded but should fail", rel);
    assert_null(m);
    if (want)
        assert_int_equal(st, want);
    if (needle && !strstr(err.msg, needle))
        fail_msg("%s: message '%s' lacks '%s'", rel, err.msg, needle);
    assert_null(strchr(err.msg, '\n'));
}

static void test_bad_inputs(void **state)
{
    (void)state;
    expect_load_error("bad/empty.onnx", PARE_ERR_FORMAT, "empty");
    expect_load_error("bad/truncated.onnx", PARE_ERR_FORMAT, "byte");
    expect_load_error("bad/random.onnx", 0, NULL);
    expect_load_error("bad/bad_gzip.onnx.gz", PARE_ERR_FORMAT, "gzip");
    expect_load_error("bad/truncated.onnx.gz", 0, "gzip");
    expect_load_error("bad/bomb.onnx.gz", PARE_ERR_LIMIT, "bomb");
    expect_load_error("bad/dims_overflow.onnx", 0, "overflow");
    expect_load_error("bad/wrong_dtype_len.onnx", PARE_ERR_INVALID, "raw_data");
    expect_load_error("bad/ext_negative/model.onnx", PARE_ERR_INVALID, "offset");
    expect_load_error("bad/ext_out_of_file/model.onnx", PARE_ERR_INVALID, "past the end");
    expect_load_error("bad/ext_traversal/model.onnx", PARE_ERR_INVALID, "..");
    expect_load_error("bad/ext_absolute/model.onnx", PARE_ERR_INVALID, "absolute");
    expect_load_error("bad/ext_symlink/model.onnx", PARE_ERR_INVALID, "outside");
    expect_load_error("bad", PARE_ERR_IO, "directory");
    expect_load_error("does-not-exist.onnx", PARE_ERR_IO, "cannot open");
}

static void test_decompression_limit(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/cnn_digits.onnx.gz", PARE_TESTDATA);
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = 1000;
    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load(path, &lo, &m, &err), PARE_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "limit"));
}

static void test_structural_problems_load_but_fail_validate(void **state)
{
    (void)state;
    const char *files[] = {"bad/cycle.onnx", "bad/undefined_input.onnx", "bad/two_producers.onnx"};
    const char *needles[] = {"cycle", "not defined", "producer"};
    for (size_t i = 0; i < 3; i++) {
        pare_model *m = load_ok(files[i]);
        pare_problems p = {0};
        pare_error err;
        assert_int_equal(pare_model_validate(m, &p, &err), PARE_OK);
        assert_true(p.n > 0);
        bool found = false;
        for (size_t k = 0; k < p.n; k++)
            if (strstr(p.items[k].what, needles[i]))
                found = true;
        if (!found)
            fail_msg("%s: no problem mentions '%s' (first: %s)", files[i], needles[i],
                     p.items[0].what);
        pare_problems_release(&p);
        pare_model_free(m);
    }
    /* good models validate clean */
    const char *good[] = {"cnn_digits.onnx", "transformer_block.onnx", "control_flow.onnx",
                          "lossless.onnx", "mlp_external/model.onnx"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        pare_model *m = load_ok(good[i]);
        pare_problems p = {0};
        pare_error err;
        assert_int_equal(pare_model_validate(m, &p, &err), PARE_OK);
        if (p.n)
            fail_msg("%s: %s: %s", good[i], p.items[0].where, p.items[0].what);
        pare_problems_release(&p);
        pare_model_free(m);
    }
}

static void test_tensor_pb_roundtrip(void **state)
{
    (void)state;
    int64_t dims[2] = {2, 3};
    pare_tensor *t, *u;
    pare_error err;
    assert_int_equal(pare_tensor_new("x", PARE_DT_FLOAT, 2, dims, &t, &err), PARE_OK);
    for (int i = 0; i < 6; i++)
        ((float *)t->data)[i] = (float)i * 1.5f;
    void *buf;
    size_t len;
    assert_int_equal(pare_tensor_pb_encode(t, &buf, &len, &err), PARE_OK);
    assert_int_equal(pare_tensor_pb_decode(buf, len, &u, &err), PARE_OK);
    assert_string_equal(u->name, "x");
    assert_int_equal(u->rank, 2);
    assert_memory_equal(u->data, t->data, t->nbytes);
    free(buf);
    pare_tensor_free(t);
    pare_tensor_free(u);
    unsigned char junk[] = {0xff, 0xff, 0xff};
    assert_int_not_equal(pare_tensor_pb_decode(junk, sizeof junk, &u, &err), PARE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_plain_and_gzip_same),
        cmocka_unit_test(test_untouched_save_is_byte_identical),
        cmocka_unit_test(test_external_data_mapped),
        cmocka_unit_test(test_external_threshold),
        cmocka_unit_test(test_save_deterministic_and_gzip),
        cmocka_unit_test(test_atomic_save_failure_leaves_nothing),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_decompression_limit),
        cmocka_unit_test(test_structural_problems_load_but_fail_validate),
        cmocka_unit_test(test_tensor_pb_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
