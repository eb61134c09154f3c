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
#include "pare/exec.h"
#include "pare/ir.h"
#include "pare/model.h"
#include "internal.h"

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

/* fsync is counted here: the executable's definition takes the place of
 * libc's for the library's calls too. */
static int n_fsync;
int fsync(int fd)
{
    (void)fd;
    n_fsync++;
    return 0;
}

static void test_durable_save(void **state)
{
    (void)state;
    pare_model *m = load_ok("transformer_block.onnx");
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/plain.onnx", tmpdir);
    snprintf(b, sizeof b, "%s/durable.onnx", tmpdir);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    pare_error err;
    unsetenv("PARE_FSYNC");
    assert_false(pare_io_durable());
    n_fsync = 0;
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK);
    assert_int_equal(n_fsync, 0); /* like cp: no fsync unless asked */
    so.durable = true;
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    assert_int_equal(n_fsync, 2); /* the file, then its folder after the rename */
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
    /* PARE_FSYNC: "" and "0" off, anything else on */
    so.durable = false;
    setenv("PARE_FSYNC", "0", 1);
    assert_false(pare_io_durable());
    setenv("PARE_FSYNC", "", 1);
    assert_false(pare_io_durable());
    setenv("PARE_FSYNC", "1", 1);
    assert_true(pare_io_durable());
    n_fsync = 0;
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    assert_int_equal(n_fsync, 2);
    /* with external data both files are synced, then the folder twice */
    so.external_threshold = 0;
    n_fsync = 0;
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    assert_int_equal(n_fsync, 4);
    unsetenv("PARE_FSYNC");
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

/* Output of the model's first graph output on a fixed input (symbolic dims 1). */
static pare_tensor *run_once(pare_model *m)
{
    pare_session *s;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = 1;
    pare_error err;
    if (pare_session_new(m, &so, &s, &err))
        fail_msg("session: %s", err.msg);
    const pare_value *in = pare_session_input(s, 0);
    int64_t dims[PARE_MAX_RANK];
    for (int i = 0; i < in->shape.rank; i++)
        dims[i] = in->shape.dims[i].value > 0 ? in->shape.dims[i].value : 1;
    pare_tensor *x;
    assert_int_equal(pare_tensor_new(in->name, in->dtype, in->shape.rank, dims, &x, &err), PARE_OK);
    float *xf = x->data;
    for (size_t i = 0; i < x->nbytes / sizeof(float); i++)
        xf[i] = (float)((i * 7) % 13) / 13.0f - 0.4f;
    pare_tensor **outs;
    size_t n_outs;
    if (pare_session_run(s, &x, 1, &outs, &n_outs, &err))
        fail_msg("run: %s", err.msg);
    pare_tensor *y = outs[0];
    outs[0] = NULL;
    pare_tensors_free(outs, n_outs);
    pare_tensor_free(x);
    pare_session_free(s);
    return y;
}

static size_t count_sparse(const pare_graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_values; i++)
        n += g->values[i]->is_sparse_init;
    return n;
}

/* pare_value_store_sparse: a 90%-zero initializer saved as a
 * sparse_initializer is smaller, loads back bit for bit (-0.0 included),
 * runs the same, saves deterministically and untouched byte for byte, and
 * goes back to dense on request. */
static void test_store_sparse(void **state)
{
    (void)state;
    pare_model *m = load_ok("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_value *w = pare_graph_find_value(g, "conv3.weight");
    assert_non_null(w);
    assert_non_null(w->init);
    pare_error err;
    pare_tensor *t;
    assert_int_equal(pare_tensor_clone(w->init, &t, &err), PARE_OK);
    float *d = t->data;
    size_t n = t->nbytes / sizeof *d;
    for (size_t i = 0; i < n; i++)
        if (i % 10)
            d[i] = 0.0f;
    d[1] = -0.0f; /* not all bits zero: must stay an explicit entry */
    assert_int_equal(pare_value_set_tensor(w, t, &err), PARE_OK);
    pare_tensor *y_dense = run_once(m);
    void *dense_buf, *sparse_buf;
    size_t dense_len, sparse_len;
    assert_int_equal(pare_model_save_buffer(m, &dense_buf, &dense_len, &err), PARE_OK);
    assert_int_equal(pare_value_store_sparse(w, true, &err), PARE_OK);
    assert_true(w->is_sparse_init);
    assert_ptr_equal(w->init, t); /* the IR keeps the dense form */
    assert_int_equal(pare_value_store_sparse(w, true, &err), PARE_OK); /* no-op */
    assert_int_equal(pare_model_save_buffer(m, &sparse_buf, &sparse_len, &err), PARE_OK);
    /* 9216 floats (36 KiB) became 923 values + 923 int64 indices (11 KiB) */
    assert_true(sparse_len + 20000 < dense_len);
    free(dense_buf);

    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/sparse_a.onnx", tmpdir);
    snprintf(b, sizeof b, "%s/sparse_b.onnx", tmpdir);
    snprintf(c, sizeof c, "%s/sparse_c.onnx", tmpdir);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK);
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *yb = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_int_equal(la, sparse_len);
    assert_memory_equal(x, yb, la);
    assert_memory_equal(x, sparse_buf, la);
    free(yb);
    free(sparse_buf);

    /* loads back as a sparse initializer with the same dense data */
    pare_model *r;
    assert_int_equal(pare_model_load(a, NULL, &r, &err), PARE_OK);
    pare_graph *rg = pare_model_graph(r);
    assert_int_equal(count_sparse(rg), 1);
    pare_value *rw = pare_graph_find_value(rg, "conv3.weight");
    assert_non_null(rw);
    assert_true(rw->is_sparse_init);
    pare_tensor *rt = pare_value_tensor(rw, &err);
    assert_non_null(rt);
    assert_int_equal(rt->nbytes, t->nbytes);
    assert_memory_equal(rt->data, t->data, t->nbytes);
    assert_int_equal(rw->shape.rank, 4);
    pare_problems p = {0};
    assert_int_equal(pare_model_validate(r, &p, &err), PARE_OK);
    assert_int_equal(p.n, 0);
    pare_problems_release(&p);
    pare_tensor *y_sparse = run_once(r);
    assert_int_equal(y_sparse->nbytes, y_dense->nbytes);
    assert_memory_equal(y_sparse->data, y_dense->data, y_dense->nbytes);
    pare_tensor_free(y_sparse);
    /* untouched, it saves as the same bytes */
    void *rb;
    size_t rl;
    assert_int_equal(pare_model_save_buffer(r, &rb, &rl, &err), PARE_OK);
    assert_int_equal(rl, la);
    assert_memory_equal(rb, x, la);
    free(rb);
    /* renamed, it is written again under the new name */
    assert_int_equal(pare_value_rename(rw, "w3", &err), PARE_OK);
    assert_int_equal(pare_model_save(r, c, &so, &err), PARE_OK);
    pare_model *r2;
    assert_int_equal(pare_model_load(c, NULL, &r2, &err), PARE_OK);
    pare_value *w3 = pare_graph_find_value(pare_model_graph(r2), "w3");
    assert_non_null(w3);
    assert_true(w3->is_sparse_init);
    assert_null(pare_graph_find_value(pare_model_graph(r2), "conv3.weight"));
    rt = pare_value_tensor(w3, &err);
    assert_non_null(rt);
    assert_memory_equal(rt->data, t->data, t->nbytes);
    pare_model_free(r2);
    /* back to dense: a plain initializer again, same bytes as the dense save */
    assert_int_equal(pare_value_store_sparse(rw, false, &err), PARE_OK);
    assert_false(rw->is_sparse_init);
    assert_int_equal(pare_model_save(r, c, &so, &err), PARE_OK);
    assert_int_equal(pare_model_load(c, NULL, &r2, &err), PARE_OK);
    assert_int_equal(count_sparse(pare_model_graph(r2)), 0);
    w3 = pare_graph_find_value(pare_model_graph(r2), "w3");
    assert_non_null(w3);
    assert_non_null(w3->init);
    assert_memory_equal(w3->init->data, t->data, t->nbytes);
    pare_model_free(r2);
    free(x);
    pare_model_free(r);

    /* what cannot be stored sparse */
    pare_value *in = g->inputs[0];
    assert_int_equal(pare_value_store_sparse(in, true, &err), PARE_ERR_ARG);
    assert_non_null(strstr(err.msg, in->name));
    int64_t one = 1;
    pare_tensor *st;
    pare_value *sv;
    assert_int_equal(pare_tensor_new("names", PARE_DT_STRING, 1, &one, &st, &err), PARE_OK);
    assert_int_equal(pare_graph_add_initializer(g, st, &sv, &err), PARE_OK);
    assert_int_equal(pare_value_store_sparse(sv, true, &err), PARE_ERR_UNSUPPORTED);
    assert_false(sv->is_sparse_init);
    pare_tensor *i4;
    int64_t four = 4;
    assert_int_equal(pare_tensor_new("nib", PARE_DT_INT4, 1, &four, &i4, &err), PARE_OK);
    assert_int_equal(pare_graph_add_initializer(g, i4, &sv, &err), PARE_OK);
    assert_int_equal(pare_value_store_sparse(sv, true, &err), PARE_ERR_UNSUPPORTED);
    pare_tensor_free(y_dense);
    pare_model_free(m);
}

/* ---- embedded weights borrowed from the loaded file, copied in-kernel on save ---- */

static void fill_pattern(pare_tensor *t, unsigned seed, bool half_zero)
{
    float *d = t->data;
    for (size_t i = 0; i < t->nbytes / sizeof *d; i++)
        d[i] = half_zero && (i % 2) ? 0.0f : (float)((i * 2654435761u + seed) % 1000) / 7.0f;
}

/* cnn_digits plus a 300 KiB initializer (copied in-kernel on save), a
 * 4.4 KB one (borrowed, written from memory) and a sparse one whose values
 * and indices are big enough to borrow; saved to path. */
static void write_big_model(const char *path, const char *big_name)
{
    pare_model *m = load_ok("cnn_digits.onnx");
    pare_graph *g = pare_model_graph(m);
    pare_error err;
    int64_t d_big[2] = {300, 256}, d_mid[1] = {1100}, d_sp[2] = {64, 64};
    pare_tensor *t;
    pare_value *v;
    if (big_name) {
        assert_int_equal(pare_tensor_new(big_name, PARE_DT_FLOAT, 2, d_big, &t, &err), PARE_OK);
        fill_pattern(t, 1, false);
        assert_int_equal(pare_graph_add_initializer(g, t, NULL, &err), PARE_OK);
    }
    assert_int_equal(pare_tensor_new("mid", PARE_DT_FLOAT, 1, d_mid, &t, &err), PARE_OK);
    fill_pattern(t, 2, false);
    assert_int_equal(pare_graph_add_initializer(g, t, NULL, &err), PARE_OK);
    assert_int_equal(pare_tensor_new("sp", PARE_DT_FLOAT, 2, d_sp, &t, &err), PARE_OK);
    fill_pattern(t, 3, true);
    assert_int_equal(pare_graph_add_initializer(g, t, &v, &err), PARE_OK);
    assert_int_equal(pare_value_store_sparse(v, true, &err), PARE_OK);
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    assert_int_equal(pare_model_save(m, path, &so, &err), PARE_OK);
    pare_model_free(m);
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

static void assert_same_weights(pare_model *a, pare_model *b)
{
    pare_graph *ga = pare_model_graph(a), *gb = pare_model_graph(b);
    size_t n = 0;
    pare_error err;
    for (size_t i = 0; i < ga->n_values; i++) {
        pare_value *v = ga->values[i];
        if (!v->init && !v->is_sparse_init)
            continue;
        pare_value *w = pare_graph_find_value(gb, v->name);
        assert_non_null(w);
        pare_tensor *tv = pare_value_tensor(v, &err), *tw = pare_value_tensor(w, &err);
        assert_non_null(tv);
        assert_non_null(tw);
        assert_int_equal(tv->nbytes, tw->nbytes);
        assert_memory_equal(tv->data, tw->data, tv->nbytes);
        n++;
    }
    assert_true(n >= 17);
}

static void test_borrowed_weights_roundtrip(void **state)
{
    (void)state;
    char a[512], b[512], c[512], gz[512], sub[512], x[600], xd[600];
    snprintf(a, sizeof a, "%s/big_a.onnx", tmpdir);
    snprintf(b, sizeof b, "%s/big_b.onnx", tmpdir);
    snprintf(c, sizeof c, "%s/big_c.onnx", tmpdir);
    snprintf(gz, sizeof gz, "%s/big.onnx.gz", tmpdir);
    pare_error err;
    pare_model *m = NULL, *r;
    pare_value *big = NULL;
    /* a large initializer is borrowed from the file wherever its bytes sit;
     * one at an offset misaligned for its type (the name's length moves it)
     * is copied to aligned memory only by pare_model_align_weights, which
     * everything that computes on weights calls first */
    const char *names[] = {"big0", "big01", "big012", "big0123"};
    const char *bigname = NULL;
    size_t misaligned_seen = 0;
    for (size_t k = 0; k < 4; k++) {
        char ak[512]; /* a file per candidate: a loaded model maps its file */
        snprintf(ak, sizeof ak, "%s/big_%zu.onnx", tmpdir, k);
        write_big_model(ak, names[k]);
        pare_model *mk;
        assert_int_equal(pare_model_load(ak, NULL, &mk, &err), PARE_OK);
        pare_graph *g = pare_model_graph(mk);
        pare_value *bv = pare_graph_find_value(g, names[k]);
        assert_non_null(bv);
        assert_false(bv->init->owns_data);
        const uint8_t *p = bv->init->data;
        assert_true(p >= mk->src->addr && p + bv->init->nbytes <= mk->src->addr + mk->src->len);
        if ((uintptr_t)p % 4 == 0) {
            if (!bigname) {
                bigname = names[k];
                snprintf(a, sizeof a, "%s", ak);
                m = mk;
                big = bv;
            } else {
                pare_model_free(mk);
            }
            continue;
        }
        misaligned_seen++;
        assert_true(mk->n_unaligned > 0);
        /* saving needs no aligned copy: the bytes go through the kernel */
        assert_int_equal(pare_model_save(mk, b, NULL, &err), PARE_OK);
        assert_same_file(ak, b);
        assert_int_equal(pare_model_align_weights(mk, &err), PARE_OK);
        assert_int_equal(mk->n_unaligned, 0);
        for (size_t i = 0; i < g->n_values; i++)
            if (g->values[i]->init)
                assert_int_equal((uintptr_t)g->values[i]->init->data % 4, 0);
        assert_true(bv->init->owns_data);
        assert_memory_equal(bv->init->data, p, bv->init->nbytes);
        assert_int_equal(pare_model_align_weights(mk, &err), PARE_OK); /* once */
        assert_int_equal(pare_model_save(mk, b, NULL, &err), PARE_OK);
        assert_same_file(ak, b);
        pare_model_free(mk);
    }
    assert_true(misaligned_seen > 0);
    assert_non_null(bigname);
    /* borrowed from the mapped file itself, not from protobuf-c's copy */
    assert_non_null(m->src);
    assert_true(m->src->mapped && m->src->fd >= 0);
    const uint8_t *bd = big->init->data;
    assert_true(bd >= m->src->addr && bd + big->init->nbytes <= m->src->addr + m->src->len);
    assert_true(pare_graph_find_value(pare_model_graph(m), "sp")->is_sparse_init);
    /* untouched: the same bytes, through the in-kernel copy */
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    assert_int_equal(pare_model_save(m, b, &so, &err), PARE_OK);
    assert_same_file(a, b);
    void *buf;
    size_t len, la;
    assert_int_equal(pare_model_save_buffer(m, &buf, &len, &err), PARE_OK);
    unsigned char *orig = slurp(a, &la);
    assert_int_equal(len, la);
    assert_memory_equal(buf, orig, la);
    free(buf);
    /* the same model from a buffer (payloads copied) and from gzip */
    assert_int_equal(pare_model_load_buffer(orig, la, NULL, NULL, &r, &err), PARE_OK);
    assert_int_equal(pare_model_save(r, c, &so, &err), PARE_OK);
    assert_same_file(a, c);
    pare_model_free(r);
    so.gzip = true;
    assert_int_equal(pare_model_save(m, gz, &so, &err), PARE_OK);
    so.gzip = false;
    assert_int_equal(pare_model_load(gz, NULL, &r, &err), PARE_OK);
    assert_int_equal(pare_model_save(r, c, &so, &err), PARE_OK);
    assert_same_file(a, c);
    pare_model_free(r);

    /* a changed tensor is written from memory, the rest still copied */
    pare_tensor *t;
    assert_int_equal(pare_tensor_clone(big->init, &t, &err), PARE_OK);
    ((float *)t->data)[12345] = -1.0f;
    assert_int_equal(pare_value_set_tensor(big, t, &err), PARE_OK);
    assert_int_equal(pare_model_save(m, c, &so, &err), PARE_OK);
    assert_int_equal(pare_model_load(c, NULL, &r, &err), PARE_OK);
    assert_same_weights(m, r);
    assert_true(((float *)pare_graph_find_value(pare_model_graph(r), bigname)->init->data)[12345] ==
                -1.0f);
    pare_model_free(r);

    /* saved over the file it was loaded from (still mapped), twice: the
     * second time the path is another file than the one the model maps */
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK);
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK);
    assert_same_file(a, c);
    pare_model_free(m);
    assert_int_equal(pare_model_load(a, NULL, &m, &err), PARE_OK);
    assert_int_equal(pare_model_save(m, a, &so, &err), PARE_OK); /* untouched, in place */
    assert_same_file(a, c);
    pare_model_free(m);
    free(orig);

    /* external data: copied in-kernel from the mapped data file, in place too */
    snprintf(sub, sizeof sub, "%s/bigext", tmpdir);
    mkdir(sub, 0755);
    snprintf(x, sizeof x, "%s/model.onnx", sub);
    snprintf(xd, sizeof xd, "%s/model.onnx.data", sub);
    assert_int_equal(pare_model_load(c, NULL, &m, &err), PARE_OK);
    so.external_threshold = 1024;
    assert_int_equal(pare_model_save(m, x, &so, &err), PARE_OK);
    size_t ld;
    unsigned char *data1 = slurp(xd, &ld);
    assert_non_null(data1);
    assert_true(ld > 300 * 256 * 4);
    pare_model *e;
    assert_int_equal(pare_model_load(x, NULL, &e, &err), PARE_OK);
    assert_true(pare_model_external_bytes(e) > 300 * 256 * 4);
    so.external_threshold = -1; /* keep: same data file, rewritten in place */
    assert_int_equal(pare_model_save(e, x, &so, &err), PARE_OK);
    assert_int_equal(pare_model_save(e, x, &so, &err), PARE_OK);
    unsigned char *data2 = slurp(xd, &la);
    assert_int_equal(la, ld);
    assert_memory_equal(data1, data2, ld);
    free(data1);
    free(data2);
    assert_int_equal(pare_model_load(x, NULL, &r, &err), PARE_OK);
    assert_same_weights(m, r);
    pare_model_free(r);
    so.external_threshold = INT64_MAX; /* and embedded again: the file of before */
    assert_int_equal(pare_model_save(e, b, &so, &err), PARE_OK);
    assert_same_file(b, c);
    pare_model_free(e);
    pare_model_free(m);
}

/* The loader's wire scan against protobuf-c on mutated bytes: whenever
 * protobuf-c alone rejects the bytes the loader fails too, and whenever it
 * accepts them the loader (from a file, borrowing; and from a buffer,
 * copying) gives the same message and the same verdict on the model. */
static void test_wire_scan_matches_protobuf_c(void **state)
{
    (void)state;
    char src[512], path[512];
    snprintf(src, sizeof src, "%s/scan_src.onnx", tmpdir);
    snprintf(path, sizeof path, "%s/scan_mut.onnx", tmpdir);
    write_big_model(src, NULL);
    size_t n;
    unsigned char *orig = slurp(src, &n);
    assert_non_null(orig);
    unsigned char *b = malloc(n + 64);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    size_t accepted = 0, rejected = 0;
    for (int iter = 0; iter < 600; iter++) {
        memcpy(b, orig, n);
        size_t len = n;
        int muts = 1 + iter % 3;
        for (int k = 0; k < muts; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % len;
            unsigned kind = (unsigned)(rng >> 20) % 8;
            if (kind < 5)
                b[pos] = (unsigned char)(rng >> 8);
            else if (kind == 5)
                b[pos] ^= 0x80; /* a varint continuation bit */
            else if (kind == 6)
                len = pos + 1; /* truncated */
            else if (len + 16 <= n + 64) {
                memcpy(b + len, b, 16); /* a repeated prefix: graph twice, etc. */
                len += 16;
            }
        }
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b, 1, len, f), len);
        fclose(f);

        Onnx__ModelProto *ref = onnx__model_proto__unpack(NULL, len, b);
        pare_model *m = NULL, *mb = NULL;
        pare_error err, errb, eref;
        pare_status st = pare_model_load(path, NULL, &m, &err);
        pare_status stb = pare_model_load_buffer(b, len, NULL, NULL, &mb, &errb);
        if (!ref) {
            assert_int_equal(st, PARE_ERR_FORMAT);
            rejected++;
            continue;
        }
        size_t rl = onnx__model_proto__get_packed_size(ref);
        uint8_t *rp = malloc(rl + 1);
        onnx__model_proto__pack(ref, rp);
        pare_model *mr = NULL;
        pare_status str = pare__model_from_proto(ref, tmpdir, false, &mr, &eref);
        /* buffer loads refuse external data; compare the file load's verdict */
        assert_int_equal(st, str);
        if (!st) {
            accepted++;
            size_t ml = onnx__model_proto__get_packed_size(m->proto);
            assert_int_equal(ml, rl);
            uint8_t *mp = malloc(ml + 1);
            onnx__model_proto__pack(m->proto, mp);
            assert_memory_equal(mp, rp, rl);
            free(mp);
        }
        if (!stb) {
            size_t ml = onnx__model_proto__get_packed_size(mb->proto);
            assert_int_equal(ml, rl);
            uint8_t *mp = malloc(ml + 1);
            onnx__model_proto__pack(mb->proto, mp);
            assert_memory_equal(mp, rp, rl);
            free(mp);
        }
        free(rp);
        pare_model_free(mr);
        pare_model_free(m);
        pare_model_free(mb);
    }
    /* both outcomes were exercised */
    assert_true(accepted > 50);
    assert_true(rejected > 50);
    free(b);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_plain_and_gzip_same),
        cmocka_unit_test(test_untouched_save_is_byte_identical),
        cmocka_unit_test(test_durable_save),
        cmocka_unit_test(test_external_data_mapped),
        cmocka_unit_test(test_external_threshold),
        cmocka_unit_test(test_save_deterministic_and_gzip),
        cmocka_unit_test(test_atomic_save_failure_leaves_nothing),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_decompression_limit),
        cmocka_unit_test(test_structural_problems_load_but_fail_validate),
        cmocka_unit_test(test_tensor_pb_roundtrip),
        cmocka_unit_test(test_store_sparse),
        cmocka_unit_test(test_borrowed_weights_roundtrip),
        cmocka_unit_test(test_wire_scan_matches_protobuf_c),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
