/* cuBLAS's GEMMs and cuDNN's convolutions as lib/cuda calls them, emulated
 * on the CPU (tests/cuda/emu) by direct sums in float: the results are
 * those of any correct algorithm to float rounding. Each call checks its
 * arguments the way the libraries document them (leading dimensions,
 * device pointers, the workspace it asked for, descriptor shapes) and runs
 * on the handle's stream like other device work (runtime.cpp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cublasLt.h"
#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime_api.h"
#include "cudnn.h"
#include "emu_internal.hpp"
#include "pcu_emu.hpp"

struct cublasContext {
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
};
struct cublasLtContext {
    int unused;
};
struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    cudnnDataType_t t;
    int nd;
    int dims[8], strides[8];
};
struct cudnnFilterStruct {
    cudnnDataType_t t;
    int nd;
    int dims[8];
};
struct cudnnConvolutionStruct {
    int n;
    int pads[6], strides[6], dil[6];
    int groups;
    cudnnMathType_t math;
};

namespace {

/* the workspace each convolution asks for: some, so that its passing is
 * tested */
const size_t kConvWs = 4096;

float load(int t, const void *p, size_t i)
{
    switch (t) {
    case CUDA_R_16F: return pcu_emu_h2f(((const unsigned short *)p)[i]);
    case CUDA_R_16BF: return pcu_emu_bf2f(((const unsigned short *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

void store(int t, void *p, size_t i, float v)
{
    switch (t) {
    case CUDA_R_16F: ((unsigned short *)p)[i] = pcu_emu_f2h(v); break;
    case CUDA_R_16BF: ((unsigned short *)p)[i] = pcu_emu_f2bf(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* cuDNN's data types in the terms of load / store */
int dnn_type(cudnnDataType_t t)
{
    return t == CUDNN_DATA_HALF ? CUDA_R_16F : t == CUDNN_DATA_BFLOAT16 ? CUDA_R_16BF : CUDA_R_32F;
}

size_t esize(int t)
{
    return t == CUDA_R_16F || t == CUDA_R_16BF ? 2 : 4;
}

bool type_ok(int t)
{
    return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF;
}

void complain(const char *what)
{
    fprintf(stderr, "pcu_emu: %s\n", what);
}

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const void *alpha, const void *A, cudaDataType_t at, int lda,
                    long long sa, const void *B, cudaDataType_t bt, int ldb, long long sb,
                    const void *beta, void *C, cudaDataType_t ct, int ldc, long long sc, int batch,
                    cublasComputeType_t comp)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ta == CUBLAS_OP_C || tb == CUBLAS_OP_C ||
        lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m ||
        lda < 1 || ldb < 1 || ldc < 1) {
        complain("cublasGemmEx: bad sizes or leading dimensions");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!type_ok(at) || at != bt || (ct != at && ct != CUDA_R_32F) ||
        (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32 &&
         comp != CUBLAS_COMPUTE_32F_FAST_16F && comp != CUBLAS_COMPUTE_32F_FAST_16BF)) {
        complain("cublasGemmEx: type combination not supported");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!m || !n || !batch)
        return CUBLAS_STATUS_SUCCESS;
    /* the extents each operand is read or written over, all in device memory */
    size_t ea = esize(at), ec = esize(ct);
    size_t na = (size_t)((ta == CUBLAS_OP_N ? k : m) - 1) * lda + (ta == CUBLAS_OP_N ? m : k);
    size_t nb = (size_t)((tb == CUBLAS_OP_N ? n : k) - 1) * ldb + (tb == CUBLAS_OP_N ? k : n);
    size_t nc = (size_t)(n - 1) * ldc + m;
    for (int b = 0; b < batch; b++)
        if ((k && (!pcu_emu_is_device((const char *)A + (size_t)(b * sa) * ea) ||
                   !pcu_emu_is_device((const char *)A + ((size_t)(b * sa) + na - 1) * ea) ||
                   !pcu_emu_is_device((const char *)B + (size_t)(b * sb) * ea) ||
                   !pcu_emu_is_device((const char *)B + ((size_t)(b * sb) + nb - 1) * ea))) ||
            !pcu_emu_is_device((char *)C + (size_t)(b * sc) * ec) ||
            !pcu_emu_is_device((char *)C + ((size_t)(b * sc) + nc - 1) * ec)) {
            complain("cublasGemmEx: an operand is not (wholly) in device memory");
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    float al = *(const float *)alpha, be = *(const float *)beta;
    pcu_emu::submit(h->stream, [=]() {
        pcu_emu::device_open(true);
        /* op(A) as float [m][k], op(B) as float [k][n], C's sums [m][n] */
        std::vector<float> fa((size_t)m * k), fb((size_t)k * n), fc((size_t)m * n);
        for (int b = 0; b < batch; b++) {
            const char *Ab = (const char *)A + (size_t)(b * sa) * ea;
            const char *Bb = (const char *)B + (size_t)(b * sb) * ea;
            char *Cb = (char *)C + (size_t)(b * sc) * ec;
            for (int i = 0; i < m; i++)
                for (int l = 0; l < k; l++)
                    fa[(size_t)i * k + l] = load(at, Ab, ta == CUBLAS_OP_N
                                                            ? (size_t)i + (size_t)l * lda
                                                            : (size_t)l + (size_t)i * lda);
            for (int l = 0; l < k; l++)
                for (int j = 0; j < n; j++)
                    fb[(size_t)l * n + j] = load(bt, Bb, tb == CUBLAS_OP_N
                                                            ? (size_t)l + (size_t)j * ldb
                                                            : (size_t)j + (size_t)l * ldb);
            std::fill(fc.begin(), fc.end(), 0.0f);
            for (int i = 0; i < m; i++)
                for (int l = 0; l < k; l++) {
                    float av = fa[(size_t)i * k + l];
                    const float *brow = &fb[(size_t)l * n];
                    float *crow = &fc[(size_t)i * n];
                    for (int j = 0; j < n; j++)
                        crow[j] += av * brow[j];
                }
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    size_t ic = (size_t)i + (size_t)j * ldc;
                    float v = al * fc[(size_t)i * n + j];
                    /* beta 0: C is not read (it may hold NaN) */
                    store(ct, Cb, ic, be == 0.0f ? v : v + be * load(ct, Cb, ic));
                }
        }
        pcu_emu::device_open(false);
    });
    return CUBLAS_STATUS_SUCCESS;
}

/* one convolution's geometry from its descriptors */
struct conv_geom {
    int nsp;
    int N, C, M, G;
    int in[3], out[3], k[3], pad[3], str[3], dil[3];
    int xs[5], ys[5];
    int xt, wt, yt;
};

cudnnStatus_t geom(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                   cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, conv_geom *g)
{
    if (!x || !w || !c || x->nd < 3 || x->nd > 5 || w->nd != x->nd || c->n != x->nd - 2 ||
        (y && y->nd != x->nd)) {
        complain("cudnn convolution: descriptors of different ranks or unset");
        return CUDNN_STATUS_BAD_PARAM;
    }
    g->nsp = x->nd - 2;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->G = c->groups;
    if (g->G < 1 || g->C % g->G || g->M % g->G || w->dims[1] * g->G != g->C) {
        complain("cudnn convolution: channels do not fit the groups");
        return CUDNN_STATUS_BAD_PARAM;
    }
    for (int i = 0; i < g->nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        g->pad[i] = c->pads[i];
        g->str[i] = c->strides[i];
        g->dil[i] = c->dil[i];
        int span = (g->k[i] - 1) * g->dil[i] + 1;
        g->out[i] = (g->in[i] + 2 * g->pad[i] - span) / g->str[i] + 1;
        if (g->str[i] < 1 || g->dil[i] < 1 || g->out[i] < 1) {
            complain("cudnn convolution: no output");
            return CUDNN_STATUS_BAD_PARAM;
        }
    }
    for (int i = 0; i < x->nd; i++)
        g->xs[i] = x->strides[i];
    g->xt = dnn_type(x->t);
    g->wt = dnn_type(w->t);
    g->yt = y ? dnn_type(y->t) : g->xt;
    if (y) {
        if (y->dims[0] != g->N || y->dims[1] != g->M) {
            complain("cudnn convolution: output descriptor's N or C is wrong");
            return CUDNN_STATUS_BAD_PARAM;
        }
        for (int i = 0; i < g->nsp; i++)
            if (y->dims[2 + i] != g->out[i]) {
                complain("cudnn convolution: output descriptor's spatial size is wrong");
                return CUDNN_STATUS_BAD_PARAM;
            }
        for (int i = 0; i < y->nd; i++)
            g->ys[i] = y->strides[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

/* offset of element (n, c, pos[]) by strides s */
size_t at(const int *s, int nsp, int n, int c, const int *pos)
{
    size_t o = (size_t)n * s[0] + (size_t)c * s[1];
    for (int i = 0; i < nsp; i++)
        o += (size_t)pos[i] * s[2 + i];
    return o;
}

/* The convolution's sums as float, [N][M][outputs] (forward: x by w) or
 * [N][C][inputs] (backward data: dy by w), from float copies of the
 * operands; padding contributes nothing. */
struct conv_sums {
    const conv_geom &g;
    int O, I, K;
    std::vector<float> x, w, acc; /* x: [N][C][inputs] or dy: [N][M][outputs] */

    explicit conv_sums(const conv_geom &g_) : g(g_), O(1), I(1), K(1)
    {
        for (int i = 0; i < g.nsp; i++) {
            O *= g.out[i];
            I *= g.in[i];
            K *= g.k[i];
        }
    }
    static void unravel(int idx, int nsp, const int *ext, int *pos)
    {
        for (int i = nsp - 1; i >= 0; i--) {
            pos[i] = idx % ext[i];
            idx /= ext[i];
        }
    }
    /* a dense float copy of the strided tensor p, [n][c][extent] */
    void gather(std::vector<float> &dst, int t, const void *p, const int *strides, int C,
                const int *ext, int E)
    {
        dst.resize((size_t)g.N * C * E);
        int pos[3];
        for (int n = 0; n < g.N; n++)
            for (int c = 0; c < C; c++)
                for (int e = 0; e < E; e++) {
                    unravel(e, g.nsp, ext, pos);
                    dst[((size_t)n * C + c) * E + e] = load(t, p, at(strides, g.nsp, n, c, pos));
                }
    }
    void weights(int t, const void *p)
    {
        w.resize((size_t)g.M * (g.C / g.G) * K);
        for (size_t i = 0; i < w.size(); i++)
            w[i] = load(t, p, i);
    }
    /* input offset of (output o, tap k) per spatial dim, -1 when in padding */
    int input_at(int o, int k) const
    {
        int po[3], pk[3], e = 0;
        unravel(o, g.nsp, g.out, po);
        unravel(k, g.nsp, g.k, pk);
        for (int i = 0; i < g.nsp; i++) {
            int p = po[i] * g.str[i] - g.pad[i] + pk[i] * g.dil[i];
            if (p < 0 || p >= g.in[i])
                return -1;
            e = e * g.in[i] + p;
        }
        return e;
    }
    void run(bool backward)
    {
        int Cg = g.C / g.G, Mg = g.M / g.G;
        /* the input offsets of every (output, tap), once */
        std::vector<int> tab((size_t)O * K);
        for (int o = 0; o < O; o++)
            for (int k = 0; k < K; k++)
                tab[(size_t)o * K + k] = input_at(o, k);
        acc.assign(backward ? (size_t)g.N * g.C * I : (size_t)g.N * g.M * O, 0.0f);
        for (int n = 0; n < g.N; n++)
            for (int m = 0; m < g.M; m++)
                for (int cl = 0; cl < Cg; cl++) {
                    int c = m / Mg * Cg + cl;
                    const float *wk = &w[((size_t)m * Cg + cl) * K];
                    for (int o = 0; o < O; o++) {
                        const int *t = &tab[(size_t)o * K];
                        if (!backward) {
                            const float *xc = &x[((size_t)n * g.C + c) * I];
                            float s = 0;
                            for (int k = 0; k < K; k++)
                                if (t[k] >= 0)
                                    s += xc[t[k]] * wk[k];
                            acc[((size_t)n * g.M + m) * O + o] += s;
                        } else {
                            float d = x[((size_t)n * g.M + m) * O + o];
                            float *ac = &acc[((size_t)n * g.C + c) * I];
                            for (int k = 0; k < K; k++)
                                if (t[k] >= 0)
                                    ac[t[k]] += d * wk[k];
                        }
                    }
                }
    }
    /* y = alpha acc + beta y through y's strides ([n][C][extent]) */
    void scatter(int t, void *p, const int *strides, int C, const int *ext, int E, float al,
                 float be)
    {
        int pos[3];
        for (int n = 0; n < g.N; n++)
            for (int c = 0; c < C; c++)
                for (int e = 0; e < E; e++) {
                    unravel(e, g.nsp, ext, pos);
                    size_t yi = at(strides, g.nsp, n, c, pos);
                    float v = al * acc[((size_t)n * C + c) * E + e];
                    store(t, p, yi, be == 0.0f ? v : v + be * load(t, p, yi));
                }
    }
};

cudnnStatus_t check_ws(void *ws, size_t ws_bytes)
{
    if (ws_bytes < kConvWs || !ws || !pcu_emu_is_device(ws) ||
        !pcu_emu_is_device((char *)ws + kConvWs - 1)) {
        complain("cudnn convolution: the workspace it asked for was not given");
        return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

template <class Perf> void fill_perf(Perf *perf, int requested, int *returned, int algo,
                                     cudnnMathType_t math)
{
    *returned = 0;
    if (requested < 1)
        return;
    memset(perf, 0, sizeof *perf);
    perf->algo = (decltype(perf->algo))algo;
    perf->status = CUDNN_STATUS_SUCCESS;
    perf->time = 0.5f;
    perf->memory = kConvWs;
    perf->determinism = CUDNN_DETERMINISTIC;
    perf->mathType = math;
    *returned = 1;
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    (void)h;
    return m == CUBLAS_DEFAULT_MATH || m == CUBLAS_TF32_TENSOR_OP_MATH ||
                   m == CUBLAS_PEDANTIC_MATH || m == CUBLAS_TENSOR_OP_MATH
               ? CUBLAS_STATUS_SUCCESS
               : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
    if (bytes && (!pcu_emu_is_device(ws) || !pcu_emu_is_device((char *)ws + bytes - 1)))
        return CUBLAS_STATUS_INVALID_VALUE;
    h->ws = ws;
    h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t at,
                            int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
                            void *C, cudaDataType_t ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t algo)
{
    (void)algo;
    return gemm(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
                comp);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType_t at,
                                          int lda, long long sa, const void *B, cudaDataType_t bt,
                                          int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType_t ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    (void)algo;
    return gemm(h, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc,
                batch, comp);
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = new cublasLtContext();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = new cudnnContext();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_ALLOC_FAILED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    }
    return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
    *d = new cudnnTensorStruct();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t t, int nd,
                                         const int *dims, const int *strides)
{
    /* cuDNN: 3 to 8 dims (fewer are padded with 1 by callers), positive */
    if (nd < 3 || nd > 8)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nd; i++)
        if (dims[i] < 1 || strides[i] < 1)
            return CUDNN_STATUS_BAD_PARAM;
    d->t = t;
    d->nd = nd;
    memcpy(d->dims, dims, (size_t)nd * sizeof *dims);
    memcpy(d->strides, strides, (size_t)nd * sizeof *strides);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    *d = new cudnnFilterStruct();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                         cudnnTensorFormat_t f, int nd, const int *dims)
{
    if (nd < 3 || nd > 8 || f != CUDNN_TENSOR_NCHW)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nd; i++)
        if (dims[i] < 1)
            return CUDNN_STATUS_BAD_PARAM;
    d->t = t;
    d->nd = nd;
    memcpy(d->dims, dims, (size_t)nd * sizeof *dims);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    *d = new cudnnConvolutionStruct();
    (*d)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int n,
                                              const int *pads, const int *strides,
                                              const int *dilations, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute)
{
    (void)compute;
    if (n < 1 || n > 3 || mode != CUDNN_CROSS_CORRELATION)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < n; i++)
        if (pads[i] < 0 || strides[i] < 1 || dilations[i] < 1)
            return CUDNN_STATUS_BAD_PARAM;
    d->n = n;
    memcpy(d->pads, pads, (size_t)n * sizeof *pads);
    memcpy(d->strides, strides, (size_t)n * sizeof *strides);
    memcpy(d->dil, dilations, (size_t)n * sizeof *dilations);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (groups < 1)
        return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m)
{
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(cudnnConvolutionDescriptor_t c,
                                                    cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int nd, int *out)
{
    conv_geom g;
    cudnnStatus_t st = geom(x, w, c, nullptr, &g);
    if (st)
        return st;
    if (nd != x->nd)
        return CUDNN_STATUS_BAD_PARAM;
    out[0] = g.N;
    out[1] = g.M;
    for (int i = 0; i < g.nsp; i++)
        out[2 + i] = g.out[i];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int requested,
                                                     int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf)
{
    (void)h;
    conv_geom g;
    cudnnStatus_t st = geom(x, w, c, y, &g);
    if (!st)
        fill_perf(perf, requested, returned, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                  c->math);
    return st;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                   cudnnFilterDescriptor_t w,
                                                   cudnnConvolutionDescriptor_t c,
                                                   cudnnTensorDescriptor_t y, int requested,
                                                   int *returned,
                                                   cudnnConvolutionFwdAlgoPerf_t *perf)
{
    /* cudnnFind runs the algorithms: it waits for the stream */
    cudaStreamSynchronize(h->stream);
    return cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, c, y, requested, returned, perf);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w,
                                                      cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes)
{
    (void)h;
    (void)algo;
    conv_geom g;
    cudnnStatus_t st = geom(x, w, c, y, &g);
    *bytes = kConvWs;
    return st;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
                                      cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w,
                                      cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
                                      const void *beta, cudnnTensorDescriptor_t yd, void *y)
{
    (void)algo;
    conv_geom g;
    cudnnStatus_t st = geom(xd, wd, cd, yd, &g);
    if (st || (st = check_ws(ws, ws_bytes)))
        return st;
    if (!pcu_emu_is_device(x) || !pcu_emu_is_device(w) || !pcu_emu_is_device(y)) {
        complain("cudnnConvolutionForward: an operand is not in device memory");
        return CUDNN_STATUS_BAD_PARAM;
    }
    float al = *(const float *)alpha, be = *(const float *)beta;
    pcu_emu::submit(h->stream, [=]() {
        pcu_emu::device_open(true);
        conv_sums cs(g);
        cs.gather(cs.x, g.xt, x, g.xs, g.C, g.in, cs.I);
        cs.weights(g.wt, w);
        cs.run(false);
        cs.scatter(g.yt, y, g.ys, g.M, g.out, cs.O, al, be);
        pcu_emu::device_open(false);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int requested, int *returned,
    cudnnConvolutionBwdDataAlgoPerf_t *perf)
{
    (void)h;
    conv_geom g;
    cudnnStatus_t st = geom(dx, w, c, dy, &g);
    if (!st)
        fill_perf(perf, requested, returned, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, c->math);
    return st;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h,
                                                           cudnnFilterDescriptor_t w,
                                                           cudnnTensorDescriptor_t dy,
                                                           cudnnConvolutionDescriptor_t c,
                                                           cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo,
                                                           size_t *bytes)
{
    (void)h;
    (void)algo;
    conv_geom g;
    cudnnStatus_t st = geom(dx, w, c, dy, &g);
    *bytes = kConvWs;
    return st;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
                                           cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t dyd, const void *dy,
                                           cudnnConvolutionDescriptor_t cd,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws,
                                           size_t ws_bytes, const void *beta,
                                           cudnnTensorDescriptor_t dxd, void *dx)
{
    (void)algo;
    conv_geom g;
    /* the forward convolution of dx by w gives dy: its geometry */
    cudnnStatus_t st = geom(dxd, wd, cd, dyd, &g);
    if (st || (st = check_ws(ws, ws_bytes)))
        return st;
    if (!pcu_emu_is_device(w) || !pcu_emu_is_device(dy) || !pcu_emu_is_device(dx)) {
        complain("cudnnConvolutionBackwardData: an operand is not in device memory");
        return CUDNN_STATUS_BAD_PARAM;
    }
    float al = *(const float *)alpha, be = *(const float *)beta;
    pcu_emu::submit(h->stream, [=]() {
        pcu_emu::device_open(true);
        conv_sums cs(g);
        cs.gather(cs.x, g.yt, dy, g.ys, g.M, g.out, cs.O);
        cs.weights(g.wt, w);
        cs.run(true);
        cs.scatter(g.xt, dx, g.xs, g.C, g.in, cs.I, al, be);
        pcu_emu::device_open(false);
    });
    return CUDNN_STATUS_SUCCESS;
}

} // extern "C"
