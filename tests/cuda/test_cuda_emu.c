/* lib/cuda's fused QDQ kernels (qfused.cu) run on the CPU through the CUDA
 * emulation of tests/cuda/emu: the int8 WMMA implicit GEMM with its tiles,
 * gathers, barriers and epilogue, the 8-bit Add and the 8-bit
 * BatchNormalization, launched as the backend launches them, against the
 * direct formulas; every launch in three thread orders (a missing barrier
 * would give a different result in one of them). Equal to the bit.
 * Then the emulated runtime's own rules, which the GPU suites rely on when
 * they run on it (suite gpu-emu): device memory the host cannot touch,
 * copies checked against their kinds, streams that run only when waited
 * for, graph capture. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda/qfused_cu.h"
#include "qdq_case.h"

static uint32_t rng = 777;
static int32_t rnd(int32_t lo, int32_t hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (int32_t)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

/* the case's kernel with row tile bm in every thread order */
static void run_qgemm(const qdq_shape *s, int bm)
{
    qdq_case c;
    qdq_case_make(&c, s);
    pcu_qgemm a;
    qdq_case_args(&c, bm, &a);
    void *got = malloc((size_t)c.ny * c.esz);
    assert_non_null(got);
    for (int order = 0; order < 3; order++) {
        memset(got, 0xa5, (size_t)c.ny * c.esz);
        pcu_emu_order(order);
        long before = pcu_emu_launches();
        assert_int_equal(pcu_qgemm_run(&a, c.x, got, NULL), cudaSuccess);
        assert_int_equal(pcu_emu_launches(), before + 1);
        if (memcmp(got, c.want, (size_t)c.ny * c.esz)) {
            for (int64_t i = 0; i < c.ny; i++)
                if (c.esz == 1 ? ((uint8_t *)got)[i] != ((uint8_t *)c.want)[i]
                               : ((float *)got)[i] != ((float *)c.want)[i]) {
                    print_error("%s bm %d order %d: element %lld differs\n",
                                s->matmul ? "MatMul" : "Conv", bm, order, (long long)i);
                    break;
                }
            fail();
        }
    }
    pcu_emu_order(0);
    assert_true(s->fout || qdq_case_distinct(&c) > c.ny / 4);
    free(got);
    qdq_case_args_free(&a);
    qdq_case_free(&c);
}

static void test_qgemm_conv(void **state)
{
    (void)state;
    /* matmul, xdt, fout, relu, group, cg, mg, n, h, w, rows */
    const qdq_shape cases[] = {
        /* byte-by-byte gathers (3 channels per group), several column tiles */
        {false, PARE_DT_UINT8, false, false, 1, 3, 18, 2, 20, 40, 0},
        {false, PARE_DT_INT8, false, true, 2, 3, 20, 1, 9, 30, 0},
        /* one-tap 16-byte gathers, padding on every side */
        {false, PARE_DT_UINT8, false, true, 1, 32, 24, 2, 11, 17, 0},
        {false, PARE_DT_INT8, true, false, 2, 16, 17, 1, 7, 9, 0},
        /* more rows than one tile of 128; float output */
        {false, PARE_DT_UINT8, true, true, 1, 16, 150, 1, 6, 20, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_qgemm(&cases[i], 64);
        run_qgemm(&cases[i], 128);
    }
}

static void test_qgemm_matmul(void **state)
{
    (void)state;
    const qdq_shape cases[] = {
        {true, PARE_DT_UINT8, false, false, 1, 45, 40, 0, 0, 0, 300}, /* K not a multiple of 16 */
        {true, PARE_DT_INT8, true, false, 1, 45, 70, 0, 0, 0, 129},
        {true, PARE_DT_UINT8, false, true, 1, 64, 40, 0, 0, 0, 200},  /* 16-byte loads */
        {true, PARE_DT_INT8, false, false, 1, 96, 130, 0, 0, 0, 37},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_qgemm(&cases[i], 64);
        run_qgemm(&cases[i], 128);
    }
}

/* a launch the kernel cannot take is refused, not run */
static void test_qgemm_refusals(void **state)
{
    (void)state;
    qdq_shape s = {true, PARE_DT_UINT8, false, false, 1, 64, 40, 0, 0, 0, 20};
    qdq_case c;
    qdq_case_make(&c, &s);
    pcu_qgemm a;
    qdq_case_args(&c, 64, &a);
    uint8_t *y = malloc((size_t)c.ny);
    long before = pcu_emu_launches();
    pcu_qgemm b = a;
    b.bm = 32;
    assert_int_equal(pcu_qgemm_run(&b, c.x, y, NULL), cudaErrorInvalidValue);
    b = a;
    b.Kp = a.Kp + 8;
    assert_int_equal(pcu_qgemm_run(&b, c.x, y, NULL), cudaErrorInvalidValue);
    b = a;
    b.P = 0;
    assert_int_equal(pcu_qgemm_run(&b, c.x, y, NULL), cudaSuccess);
    assert_int_equal(pcu_emu_launches(), before);
    free(y);
    qdq_case_args_free(&a);
    qdq_case_free(&c);
}

static int32_t ld8(int dt, const uint8_t *p, int64_t i)
{
    return dt == PCU_DT_U8 ? (int32_t)p[i] : (int32_t)(int8_t)p[i];
}

/* QuantizeLinear as ONNX states it: saturate(round(v / scale) + zero point) */
static uint8_t quantize(float v, float scale, int32_t zp, int32_t lo, int32_t hi)
{
    float r = rintf(v / scale) + (float)zp;
    r = r < (float)lo ? (float)lo : r > (float)hi ? (float)hi : r;
    return (uint8_t)(int32_t)r;
}

static void test_qadd(void **state)
{
    (void)state;
    const int64_t n = 5000; /* more than one block, a partial last one */
    uint8_t *A = malloc(n), *B = malloc(n), *y = malloc(n);
    for (int64_t i = 0; i < n; i++) {
        A[i] = (uint8_t)rnd(0, 255);
        B[i] = (uint8_t)rnd(0, 255);
    }
    for (int form = 0; form < 4; form++) {
        pcu_qadd p = {form & 1 ? PCU_DT_I8 : PCU_DT_U8, PCU_DT_I8, form & 2 ? PCU_DT_U8 : PCU_DT_I8,
                      0.05f, 0.03f, 0.07f, form & 1 ? -7 : 130, 3, form & 2 ? 120 : -4,
                      form & 2 ? 0 : -128, form & 2 ? 255 : 127, form == 3};
        for (int order = 0; order < 3; order++) {
            pcu_emu_order(order);
            memset(y, 0, n);
            assert_int_equal(pcu_qadd_run(&p, A, B, y, n, NULL), cudaSuccess);
            for (int64_t i = 0; i < n; i++) {
                float v = (float)(ld8(p.adt, A, i) - p.za) * p.sa +
                          (float)(ld8(p.bdt, B, i) - p.zb) * p.sb;
                if (p.relu && v < 0)
                    v = 0;
                assert_int_equal(y[i], quantize(v, p.ys, p.zy, p.lo, p.hi));
            }
        }
    }
    pcu_emu_order(0);
    free(A);
    free(B);
    free(y);
}

static void test_qbn(void **state)
{
    (void)state;
    const int64_t N = 3, C = 5, plane = 347, n = N * C * plane;
    uint8_t *x = malloc((size_t)n), *y = malloc((size_t)n);
    float a[5], b[5];
    for (int64_t i = 0; i < n; i++)
        x[i] = (uint8_t)rnd(0, 255);
    for (int c = 0; c < C; c++) {
        a[c] = 0.25f * (float)rnd(-8, 8);
        b[c] = 0.1f * (float)rnd(-30, 30);
    }
    for (int form = 0; form < 2; form++) {
        pcu_qbn p = {form ? PCU_DT_I8 : PCU_DT_U8, form ? PCU_DT_U8 : PCU_DT_I8, C, plane,
                     0.03f, 0.05f, form ? 4 : 128, form ? 90 : 2, form ? 0 : -128,
                     form ? 255 : 127, form, a, b};
        for (int order = 0; order < 3; order++) {
            pcu_emu_order(order);
            memset(y, 0, (size_t)n);
            assert_int_equal(pcu_qbn_run(&p, x, y, n, NULL), cudaSuccess);
            for (int64_t i = 0; i < n; i++) {
                int64_t c = i / plane % C;
                float v = (float)(ld8(p.xdt, x, i) - p.zx) * p.sx * a[c] + b[c];
                if (p.relu && v < 0)
                    v = 0;
                assert_int_equal(y[i], quantize(v, p.ys, p.zy, p.lo, p.hi));
            }
        }
    }
    pcu_emu_order(0);
    pcu_qbn bad = {PCU_DT_U8, PCU_DT_U8, 0, plane, 1, 1, 0, 0, 0, 255, 0, a, b};
    assert_int_equal(pcu_qbn_run(&bad, x, y, n, NULL), cudaErrorInvalidValue);
    free(x);
    free(y);
}

/* ---- the emulated runtime ---- */

static void test_device_memory_guarded(void **state)
{
    (void)state;
    char *d;
    assert_int_equal(cudaMalloc((void **)&d, 1000), cudaSuccess);
    assert_true(pcu_emu_is_device(d) && pcu_emu_is_device(d + 999));
    assert_false(pcu_emu_is_device(state));
    /* the host touching device memory faults, as on a GPU */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: die of it */
        volatile char c = d[10];
        (void)c;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* fresh memory reads as 0xff bytes (NaN as float), through a copy */
    unsigned char h[1500];
    assert_int_equal(cudaMemcpy(h, d, 1000, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(h[0], 0xff);
    assert_int_equal(h[999], 0xff);
    /* copies whose pointers are not of the kinds named are refused */
    assert_int_equal(cudaMemcpy(d, h, 10, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(h, d, 1500, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(h), cudaErrorInvalidValue);
    cudaGetLastError();
    assert_int_equal(cudaFree(d), cudaSuccess);
}

static void test_stream_waits(void **state)
{
    (void)state;
    cudaStream_t s;
    char *d, *src, *dst;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d, 64), cudaSuccess);
    assert_int_equal(cudaHostAlloc((void **)&src, 64, cudaHostAllocDefault), cudaSuccess);
    assert_int_equal(cudaHostAlloc((void **)&dst, 64, cudaHostAllocDefault), cudaSuccess);
    memset(src, 7, 64);
    memset(dst, 0, 64);
    assert_int_equal(cudaMemcpyAsync(d, src, 64, cudaMemcpyHostToDevice, s), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d + 32, 9, 32, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(dst, d, 64, cudaMemcpyDeviceToHost, s), cudaSuccess);
    /* pinned memory: nothing has happened until the stream is waited for */
    assert_int_equal(dst[0], 0);
    cudaEvent_t e;
    assert_int_equal(cudaEventCreate(&e), cudaSuccess);
    assert_int_equal(cudaEventRecord(e, s), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(e), cudaSuccess);
    assert_int_equal(dst[0], 7);
    assert_int_equal(dst[63], 9);
    /* a pageable destination: the copy is done when the call returns */
    char pageable[64] = {0};
    assert_int_equal(cudaMemsetAsync(d, 5, 64, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(pageable, d, 64, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_int_equal(pageable[0], 5);
    assert_int_equal(cudaEventDestroy(e), cudaSuccess);
    assert_int_equal(cudaFreeHost(src), cudaSuccess);
    assert_int_equal(cudaFreeHost(dst), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
}

static void test_graph_capture(void **state)
{
    (void)state;
    cudaStream_t s;
    char *d, h[16];
    assert_int_equal(cudaStreamCreate(&s), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d, 16), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d, 3, 16, s), cudaSuccess);
    /* waiting for a stream being captured is an error, as in CUDA */
    assert_int_equal(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    cudaGetLastError();
    cudaGraph_t g, g2;
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
    /* captured, not run */
    assert_int_equal(cudaMemcpy(h, d, 16, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal((unsigned char)h[0], 0xff);
    cudaGraphExec_t x;
    assert_int_equal(cudaGraphInstantiate(&x, g, 0), cudaSuccess);
    assert_int_equal(cudaGraphLaunch(x, s), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_int_equal(cudaMemcpy(h, d, 16, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(h[15], 3);
    /* a graph of another shape does not update the instantiation */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d, 4, 8, s), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d + 8, 4, 8, s), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &g2), cudaSuccess);
    cudaGraphExecUpdateResultInfo info;
    assert_int_equal(cudaGraphExecUpdate(x, g2, &info), cudaErrorGraphExecUpdateFailure);
    assert_int_equal(cudaGraphExecDestroy(x), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(g), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(g2), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qgemm_conv),
        cmocka_unit_test(test_qgemm_matmul),
        cmocka_unit_test(test_qgemm_refusals),
        cmocka_unit_test(test_qadd),
        cmocka_unit_test(test_qbn),
        cmocka_unit_test(test_device_memory_guarded),
        cmocka_unit_test(test_stream_waits),
        cmocka_unit_test(test_graph_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
