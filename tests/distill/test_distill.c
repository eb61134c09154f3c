/* lib/distill: soft-target rows, SHA-256, eigen-decomposition, Cholesky,
 * residual block discovery and dropping, low-rank factoring. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/distill.h"
#include "pare/model.h"

static void test_row_logits_topk(void **state)
{
    (void)state;
    /* ties: 3.0 at 1 and 4, 2.0 at 0 and 2; argsort(-v, stable): 1, 4, 0, 2, 3 */
    float x[5] = {2, 3, 2, -1, 3};
    double vals[5], tail;
    int64_t idx[5];
    unsigned char scratch[5 * 16];
    pare_distill_row(x, 5, 0, 3, vals, idx, &tail, scratch);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 4);
    assert_int_equal(idx[2], 0);
    assert_true(vals[0] == 3 && vals[1] == 3 && vals[2] == 2);
    /* logsumexp of the tail {2 (index 2), -1} */
    assert_true(fabs(tail - log(exp(2.0) + exp(-1.0))) < 1e-12);
    pare_distill_row(x, 5, 0, 5, vals, idx, &tail, scratch);
    assert_true(isinf(tail) && tail < 0);
    assert_int_equal(idx[4], 3);
}

static void test_row_probs(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4};
    double vals[4], tail, full[4];
    int64_t idx[4];
    unsigned char scratch[4 * 16];
    double T = 2, s = 0, p[4];
    for (int i = 0; i < 4; i++)
        s += exp(x[i] / T);
    for (int i = 0; i < 4; i++)
        p[i] = exp(x[i] / T) / s;
    pare_distill_row(x, 4, T, 0, full, idx, &tail, scratch);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(full[i] - p[i]) < 1e-15);
    pare_distill_row(x, 4, T, 2, vals, idx, &tail, scratch);
    assert_int_equal(idx[0], 3);
    assert_int_equal(idx[1], 2);
    assert_true(fabs(vals[0] - p[3]) < 1e-15);
    assert_true(fabs(tail - (p[0] + p[1])) < 1e-15);
    assert_true(fabs(vals[0] + vals[1] + tail - 1) < 1e-14);
}

static void test_sha256(void **state)
{
    (void)state;
    char path[] = "/tmp/pare-distill-sha-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    fputs("abc", fp);
    fclose(fp);
    char hex[65];
    pare_error err;
    assert_int_equal(pare_sha256_file(path, hex, &err), PARE_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* 1,000 bytes: several blocks and a padding block of its own */
    fp = fopen(path, "wb");
    for (int i = 0; i < 1000; i++)
        fputc('a', fp);
    fclose(fp);
    assert_int_equal(pare_sha256_file(path, hex, &err), PARE_OK);
    assert_string_equal(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    remove(path);
    assert_int_equal(pare_sha256_file(path, hex, &err), PARE_ERR_IO);
}

static void test_eig_cholesky(void **state)
{
    (void)state;
    /* A = Q diag(5, 2, 0.5) Q^T with a rotation Q */
    double c = cos(0.3), s = sin(0.3);
    double q[9] = {c, -s, 0, s, c, 0, 0, 0, 1}, d[3] = {2, 5, 0.5}, a[9], a0[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            a[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                a[i * 3 + j] += q[i * 3 + k] * d[k] * q[j * 3 + k];
        }
    memcpy(a0, a, sizeof a);
    double ev[3], vec[9];
    pare_error err;
    assert_int_equal(pare_sym_eig(a, 3, ev, vec, &err), PARE_OK);
    assert_true(fabs(ev[0] - 5) < 1e-12 && fabs(ev[1] - 2) < 1e-12 && fabs(ev[2] - 0.5) < 1e-12);
    /* A v = lambda v */
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            double av = 0;
            for (int k = 0; k < 3; k++)
                av += a0[i * 3 + k] * vec[k * 3 + j];
            assert_true(fabs(av - ev[j] * vec[i * 3 + j]) < 1e-12);
        }
    /* solve A x = b for two right-hand sides */
    double x[6] = {1, 2, -1, 0, 3, 1}, b[6] = {0};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            for (int m = 0; m < 2; m++)
                b[i * 2 + m] += a0[i * 3 + k] * x[k * 2 + m];
    memcpy(a, a0, sizeof a);
    assert_int_equal(pare_cholesky_solve(a, 3, b, 2, &err), PARE_OK);
    for (int i = 0; i < 6; i++)
        assert_true(fabs(b[i] - x[i]) < 1e-12);
    /* singular: refused with a message */
    double sing[4] = {1, 1, 1, 1}, rhs[2] = {1, 1};
    assert_int_equal(pare_cholesky_solve(sing, 2, rhs, 1, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "ridge"));
}

static pare_model *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PARE_TESTDATA, name);
    pare_model *m;
    pare_error err;
    assert_int_equal(pare_model_load(path, NULL, &m, &err), PARE_OK);
    return m;
}

static void test_blocks(void **state)
{
    (void)state;
    pare_model *m = load("transformer_tiny2.onnx");
    pare_block_list bl;
    pare_error err;
    assert_int_equal(pare_distill_find_blocks(m, &bl, &err), PARE_OK);
    assert_int_equal(bl.n, 2);
    assert_int_equal(bl.segments_per_block, 2);
    assert_string_equal(bl.items[0].in->name, "x");
    assert_string_equal(bl.items[0].out->name, "layer0/out");
    assert_string_equal(bl.items[1].in->name, "layer0/out");
    assert_string_equal(bl.items[1].out->name, "layer1/out");
    assert_string_equal(bl.items[0].signature, bl.items[1].signature);
    assert_int_equal(bl.items[0].n_nodes, 33);
    /* q, k, v, o: 4 x (64x64 + 64); ln1, ln2: 4 x 64; fc1 64x256+256; fc2 256x64+64;
     * heads_shape 4, merge_shape 3, 4 scalars */
    assert_int_equal(bl.items[0].params, 4 * (4096 + 64) + 4 * 64 + 16384 + 256 + 16384 + 64 +
                                             4 + 3 + 4);
    pare_graph *g = pare_model_graph(m);
    size_t before = g->n_nodes;
    bool drop[2] = {false, true};
    assert_int_equal(pare_distill_drop_blocks(m, &bl, drop, &err), PARE_OK);
    assert_int_equal(g->n_nodes, before - 33);
    assert_null(pare_graph_find_node(g, "layer1/ln2"));
    assert_non_null(pare_graph_find_node(g, "layer0/ln2"));
    pare_block_list_release(&bl);
    pare_problems pb = {0};
    assert_int_equal(pare_model_validate(m, &pb, &err), PARE_OK);
    assert_int_equal(pb.n, 0);
    pare_problems_release(&pb);
    /* one block left: not repeated any more */
    assert_int_equal(pare_distill_find_blocks(m, &bl, &err), PARE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "no repeated residual blocks"));
    pare_model_free(m);
    /* the CNN's Add joins two branches, not a tensor and a function of it */
    m = load("cnn_digits.onnx");
    assert_int_equal(pare_distill_find_blocks(m, &bl, &err), PARE_ERR_INVALID);
    pare_model_free(m);
}

static void test_low_rank(void **state)
{
    (void)state;
    pare_model *m = load("transformer_tiny2.onnx");
    pare_model_cost c0, c1;
    pare_error err;
    assert_int_equal(pare_distill_cost(m, NULL, 0, &c0, &err), PARE_OK);
    size_t f = 0, s = 0;
    assert_int_equal(pare_distill_low_rank(m, 8, 0, &f, &s, &err), PARE_OK);
    assert_int_equal(f, 13);
    assert_int_equal(s, 0);
    assert_int_equal(pare_distill_cost(m, NULL, 0, &c1, &err), PARE_OK);
    /* 64x64 -> 8x128 each (8 of them), 64x256 and 256x64 -> 8x320 each (4), head 64x32 -> 8x96 */
    uint64_t saved = 8 * (4096 - 1024) + 4 * (16384 - 2560) + (2048 - 768);
    assert_int_equal(c0.params - c1.params, saved);
    pare_problems pb = {0};
    assert_int_equal(pare_model_validate(m, &pb, &err), PARE_OK);
    assert_int_equal(pb.n, 0);
    pare_problems_release(&pb);
    pare_model_free(m);
    /* full energy keeps every rank: nothing shrinks, nothing changes */
    m = load("transformer_tiny2.onnx");
    assert_int_equal(pare_distill_low_rank(m, 0, 1.0, &f, &s, &err), PARE_OK);
    assert_int_equal(f, 0);
    assert_int_equal(s, 13);
    pare_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_logits_topk), cmocka_unit_test(test_row_probs),
        cmocka_unit_test(test_sha256),          cmocka_unit_test(test_eig_cholesky),
        cmocka_unit_test(test_blocks),          cmocka_unit_test(test_low_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
