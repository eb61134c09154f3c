/* Data movement device code: strided n-d copies (Transpose, Expand, Slice,
 * Concat, Split), Pad, Gather, GatherElements and Trilu. Elements are
 * moved as opaque words of their size, so one instantiation serves every
 * dtype of that size. */
#include <string.h>

#include "ops_shared.h"
#include "pcu_dev.cuh"

template <typename W>
__global__ void k_copy_nd(pcu_shape sh, const W *x, pcu_strides xs, int64_t xoff, W *y,
                          pcu_strides ys, int64_t yoff, int64_t n)
{
    PCU_GRID_LOOP(i, n) y[yoff + pcu_offset(i, sh, ys)] = x[xoff + pcu_offset(i, sh, xs)];
}

template <typename W>
static int copy_t(const pcu_shape *sh, const void *x, const pcu_strides *xs, int64_t xoff, void *y,
                  const pcu_strides *ys, int64_t yoff, int64_t n, cudaStream_t st)
{
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_copy_nd<W>)(
        *sh, (const W *)x, *xs, xoff, (W *)y, *ys, yoff, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_copy_nd(int esize, const pcu_shape *shape, const void *x, const pcu_strides *xs,
                           int64_t xoff, void *y, const pcu_strides *ys, int64_t yoff, int64_t n,
                           cudaStream_t stream)
{
    if (n == 0)
        return 0;
    switch (esize) {
    case 1: return copy_t<uint8_t>(shape, x, xs, xoff, y, ys, yoff, n, stream);
    case 2: return copy_t<uint16_t>(shape, x, xs, xoff, y, ys, yoff, n, stream);
    case 4: return copy_t<uint32_t>(shape, x, xs, xoff, y, ys, yoff, n, stream);
    case 8: return copy_t<uint64_t>(shape, x, xs, xoff, y, ys, yoff, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

template <typename W>
__global__ void k_pad(pcu_pad_args a, W fill, const W *x, W *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    {
        int64_t rem = i, off = 0, stride = 1;
        bool pad = false;
        for (int d = a.rank - 1; d >= 0; d--) {
            int64_t q = rem / a.out[d], c = rem - q * a.out[d];
            rem = q;
            int64_t s = pcu_pad_src(a.mode, c, a.pb[d], a.in[d]);
            pad |= s < 0;
            off += s * stride;
            stride *= a.in[d];
        }
        y[i] = pad ? fill : x[off];
    }
}

template <typename W>
static int pad_t(const pcu_pad_args *a, const void *fill, const void *x, void *y, int64_t n,
                 cudaStream_t st)
{
    W f;
    memcpy(&f, fill, sizeof f);
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_pad<W>)(*a, f, (const W *)x, (W *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_pad(int esize, const pcu_pad_args *a, const void *fill, const void *x, void *y,
                       int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    if (a->rank < 1 || a->rank > PCU_MAX_RANK)
        return (int)cudaErrorInvalidValue;
    switch (esize) {
    case 1: return pad_t<uint8_t>(a, fill, x, y, n, stream);
    case 2: return pad_t<uint16_t>(a, fill, x, y, n, stream);
    case 4: return pad_t<uint32_t>(a, fill, x, y, n, stream);
    case 8: return pad_t<uint64_t>(a, fill, x, y, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

template <typename W, typename I>
__global__ void k_gather(int64_t axis_len, int64_t inner, const W *x, const I *idx, int64_t n_idx,
                         W *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    {
        int64_t in = i % inner, r = i / inner;
        int64_t j = r % n_idx, o = r / n_idx;
        int64_t ix = (int64_t)idx[j];
        if (ix < 0)
            ix += axis_len;
        y[i] = (ix >= 0 && ix < axis_len) ? x[(o * axis_len + ix) * inner + in] : W(0);
    }
}

template <typename W>
static int gather_t(int64_t outer, int64_t axis_len, int64_t inner, const void *x, const void *idx,
                    int idx64, int64_t n_idx, void *y, cudaStream_t st)
{
    int64_t n = outer * n_idx * inner;
    if (idx64)
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_gather<W, int64_t>)(
            axis_len, inner, (const W *)x, (const int64_t *)idx, n_idx, (W *)y, n);
    else
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_gather<W, int32_t>)(
            axis_len, inner, (const W *)x, (const int32_t *)idx, n_idx, (W *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_gather(int esize, int64_t outer, int64_t axis_len, int64_t inner, const void *x,
                          const void *idx, int idx64, int64_t n_idx, void *y, cudaStream_t stream)
{
    if (outer * n_idx * inner == 0)
        return 0;
    switch (esize) {
    case 1: return gather_t<uint8_t>(outer, axis_len, inner, x, idx, idx64, n_idx, y, stream);
    case 2: return gather_t<uint16_t>(outer, axis_len, inner, x, idx, idx64, n_idx, y, stream);
    case 4: return gather_t<uint32_t>(outer, axis_len, inner, x, idx, idx64, n_idx, y, stream);
    case 8: return gather_t<uint64_t>(outer, axis_len, inner, x, idx, idx64, n_idx, y, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

/* GatherElements: y[i] = x at i's coordinates with the axis one replaced
 * by idx[i] (negative: from the end; out of range: zeros, as Gather) */
template <typename W, typename I>
__global__ void k_gather_el(pcu_shape sh, pcu_strides xs, int axis, int64_t axis_len, const W *x,
                            const I *idx, W *y, int64_t n)
{
    PCU_GRID_LOOP(i, n)
    {
        int64_t rem = i, off = 0;
        bool ok = true;
        for (int d = sh.rank - 1; d >= 0; d--) {
            int64_t q = rem / sh.dims[d], c = rem - q * sh.dims[d];
            rem = q;
            if (d == axis) {
                c = (int64_t)idx[i];
                if (c < 0)
                    c += axis_len;
                ok = c >= 0 && c < axis_len;
            }
            off += c * xs.s[d];
        }
        y[i] = ok ? x[off] : W(0);
    }
}

template <typename W>
static int gather_el_t(const pcu_shape *sh, const pcu_strides *xs, int axis, int64_t axis_len,
                       const void *x, const void *idx, int idx64, void *y, int64_t n,
                       cudaStream_t st)
{
    if (idx64)
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_gather_el<W, int64_t>)(
            *sh, *xs, axis, axis_len, (const W *)x, (const int64_t *)idx, (W *)y, n);
    else
        PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_gather_el<W, int32_t>)(
            *sh, *xs, axis, axis_len, (const W *)x, (const int32_t *)idx, (W *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_gather_elements(int esize, const pcu_shape *sh, const pcu_strides *xs, int axis,
                                   int64_t axis_len, const void *x, const void *idx, int idx64,
                                   void *y, int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    if (axis < 0 || axis >= sh->rank)
        return (int)cudaErrorInvalidValue;
    switch (esize) {
    case 1: return gather_el_t<uint8_t>(sh, xs, axis, axis_len, x, idx, idx64, y, n, stream);
    case 2: return gather_el_t<uint16_t>(sh, xs, axis, axis_len, x, idx, idx64, y, n, stream);
    case 4: return gather_el_t<uint32_t>(sh, xs, axis, axis_len, x, idx, idx64, y, n, stream);
    case 8: return gather_el_t<uint64_t>(sh, xs, axis, axis_len, x, idx, idx64, y, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

/* Trilu over the last two dims [rows, cols]: element (i, j) kept where
 * j - i >= k (upper) or j - i <= k (lower), else zero */
template <typename W>
__global__ void k_trilu(int upper, int64_t k, int64_t rows, int64_t cols, const W *x, W *y,
                        int64_t n)
{
    PCU_GRID_LOOP(e, n)
    {
        int64_t j = e % cols, i = e / cols % rows, d = j - i;
        y[e] = (upper ? d >= k : d <= k) ? x[e] : W(0);
    }
}

template <typename W>
static int trilu_t(int upper, int64_t k, int64_t rows, int64_t cols, const void *x, void *y,
                   int64_t n, cudaStream_t st)
{
    PCU_LAUNCH(pcu_blocks(n, 256), 256, 0, st, k_trilu<W>)(upper, k, rows, cols, (const W *)x,
                                                            (W *)y, n);
    return (int)cudaGetLastError();
}

extern "C" int pcu_trilu(int esize, int upper, int64_t k, int64_t rows, int64_t cols,
                         const void *x, void *y, int64_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    if (rows < 1 || cols < 1)
        return (int)cudaErrorInvalidValue;
    switch (esize) {
    case 1: return trilu_t<uint8_t>(upper, k, rows, cols, x, y, n, stream);
    case 2: return trilu_t<uint16_t>(upper, k, rows, cols, x, y, n, stream);
    case 4: return trilu_t<uint32_t>(upper, k, rows, cols, x, y, n, stream);
    case 8: return trilu_t<uint64_t>(upper, k, rows, cols, x, y, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
