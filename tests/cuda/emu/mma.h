/* Stand-in for <mma.h> (tests/cuda/emu): nvcuda::wmma on 16 x 16 x 16
 * tiles. A fragment holds its whole matrix in logical order; the warp's
 * collective operations are carried out by lane 0 (the other lanes' copies
 * stay unused), so element access to a fragment (x[], num_elements), whose
 * layout is the hardware's, is not provided. The rules the hardware relies
 * on are checked: 256-bit aligned pointers and a leading dimension that is
 * a multiple of 16 bytes. */
#ifndef PCU_EMU_MMA_H
#define PCU_EMU_MMA_H

#include <stdint.h>

#include <type_traits>

#include "pcu_emu.hpp"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "only 16 x 16 x 16 tiles are emulated");
    T v[256]; /* matrix_a: [m][k]; matrix_b: [k][n]; accumulator: [m][n] */
};

namespace detail {
template <class T> inline void check(const T *p, unsigned ldm)
{
    if ((uintptr_t)p % 32)
        pcu_emu::fail("wmma: pointer not 256-bit aligned");
    if ((ldm * sizeof(T)) % 16)
        pcu_emu::fail("wmma: leading dimension not a multiple of 16 bytes");
}
} // namespace detail

template <class Use, class T, class L> inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, T v)
{
    if (pcu_emu::lane())
        return;
    for (int i = 0; i < 256; i++)
        f.v[i] = v;
}

/* matrix_a [m][k] and matrix_b [k][n] alike: element (r, c) of the tile at
 * p[r * ldm + c] (row_major) or p[c * ldm + r] (col_major) */
template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm)
{
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load names its layout");
    detail::check(p, ldm);
    if (pcu_emu::lane())
        return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.v[r * 16 + c] = std::is_same<L, row_major>::value ? p[r * ldm + c] : p[c * ldm + r];
}

template <class T>
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, T> &f, const T *p, unsigned ldm,
                             layout_t l)
{
    detail::check(p, ldm);
    if (pcu_emu::lane())
        return;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++)
            f.v[m * 16 + n] = l == mem_row_major ? p[m * ldm + n] : p[n * ldm + m];
}

template <class T>
inline void store_matrix_sync(T *p, const fragment<accumulator, 16, 16, 16, T> &f, unsigned ldm,
                              layout_t l)
{
    detail::check(p, ldm);
    if (pcu_emu::lane())
        return;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++)
            (l == mem_row_major ? p[m * ldm + n] : p[n * ldm + m]) = f.v[m * 16 + n];
}

/* d = a b + c with products and sums in the accumulator's type (int8
 * inputs: exact int32 sums, as the tensor cores) */
template <class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, 16, 16, 16, TC> &d,
                     const fragment<matrix_a, 16, 16, 16, TA, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, TB, LB> &b,
                     const fragment<accumulator, 16, 16, 16, TC> &c)
{
    if (pcu_emu::lane())
        return;
    TC r[256];
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            TC s = c.v[m * 16 + n];
            for (int k = 0; k < 16; k++)
                s += (TC)a.v[m * 16 + k] * (TC)b.v[k * 16 + n];
            r[m * 16 + n] = s;
        }
    for (int i = 0; i < 256; i++)
        d.v[i] = r[i];
}

} // namespace wmma
} // namespace nvcuda

#endif
