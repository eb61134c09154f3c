#!/usr/bin/env python3
"""Compare the arrays of two .npz files: a model's outputs against a reference.

usage: compare_npz.py ACTUAL.npz REFERENCE.npz [--tol X] [--tol-half X] [-q]

Every array of REFERENCE must be in ACTUAL under the same name, with the same
shape and dtype (ACTUAL may hold more arrays; they are ignored). Then:

- floating point (float32, float64): the relative error

      rel = max_i |a_i - b_i| / max(max_j |b_j|, 1e-6)

  where a is ACTUAL's array and b the reference's, computed in float64 over
  the finite elements, must be <= --tol (default 1e-4). The error is relative
  to the largest magnitude of the reference array (its infinity norm), not to
  each element: two correct float32 programs that sum in a different order
  differ by a few ulps of the partial sums, and an element that cancels to
  nearly 0 then has a large error relative to itself (elementwise relative
  errors of 1e-3 to 1e-2 are normal on a logit or a LayerNorm output near 0).
  The 1e-6 floor keeps an all-zero reference from dividing by zero: its
  error is then absolute. NaN and Inf must sit at the same positions with the
  same values on both sides.
- float16 and bfloat16-like half floats: the same with --tol-half (1e-2).
- integers, bool, strings and anything else: exactly equal.

One line per array (PASS or FAIL, the name, shape, dtype, max |a-b| and rel);
the last line is `N passed, N failed`. Exit status 0 when every array passed,
1 when one failed or a file cannot be read, 2 on bad usage.
"""

import argparse
import sys

import numpy as np

FLOOR = 1e-6


def rel_error(a, b):
    """(max |a-b|, rel) over the finite elements, in float64; see the module doc."""
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    fin = np.isfinite(b) & np.isfinite(a)
    if not fin.any():
        return 0.0, 0.0
    d = np.abs(a[fin] - b[fin])
    max_abs = float(d.max())
    scale = max(float(np.abs(b[fin]).max()), FLOOR)
    return max_abs, max_abs / scale


def nonfinite_match(a, b):
    """True when NaN and +-Inf sit at the same positions with the same values."""
    na, nb = ~np.isfinite(a), ~np.isfinite(b)
    if not np.array_equal(na, nb):
        return False
    if not na.any():
        return True
    va, vb = a[na], b[nb]
    return bool(np.array_equal(np.isnan(va), np.isnan(vb)) and
                np.array_equal(va[~np.isnan(va)], vb[~np.isnan(vb)]))


def compare_array(name, a, b, tol, tol_half):
    """(ok, line) for one array pair."""
    head = f"{name} {list(b.shape)} {b.dtype}"
    if a.shape != b.shape:
        return False, f"{head}: shape {list(a.shape)} in actual"
    if a.dtype != b.dtype:
        return False, f"{head}: dtype {a.dtype} in actual"
    if b.dtype.kind == "f":
        t = tol_half if b.dtype.itemsize <= 2 else tol
        if not nonfinite_match(a, b):
            return False, f"{head}: NaN/Inf at different positions"
        max_abs, rel = rel_error(a, b)
        return rel <= t, f"{head}: max|a-b| {max_abs:.3g}, rel {rel:.3g} (tol {t:g})"
    if b.dtype.kind == "c":
        t = tol_half if b.dtype.itemsize <= 4 else tol
        max_abs, rel = 0.0, 0.0
        for part in (np.real, np.imag):
            m, r = rel_error(part(a), part(b))
            max_abs, rel = max(max_abs, m), max(rel, r)
        return rel <= t, f"{head}: max|a-b| {max_abs:.3g}, rel {rel:.3g} (tol {t:g})"
    if np.array_equal(a, b):
        return True, f"{head}: equal"
    if b.size and b.dtype.kind in "iub":
        diff = int(np.count_nonzero(a != b))
        return False, f"{head}: {diff} of {b.size} elements differ"
    return False, f"{head}: not equal"


def main(argv=None):
    ap = argparse.ArgumentParser(description="compare the arrays of two .npz files (actual, reference)")
    ap.add_argument("actual")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="largest relative error of float32/float64 arrays (1e-4)")
    ap.add_argument("--tol-half", type=float, default=1e-2,
                    help="largest relative error of float16 arrays (1e-2)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only failures and the count")
    a = ap.parse_args(argv)
    if not (a.tol >= 0 and a.tol_half >= 0):
        ap.error("tolerances must be >= 0")
    try:
        act = np.load(a.actual, allow_pickle=False)
        ref = np.load(a.reference, allow_pickle=False)
    except Exception as ex:  # noqa: BLE001
        print(f"compare_npz: {ex}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    if not ref.files:
        print(f"compare_npz: {a.reference}: no arrays", file=sys.stderr)
        failed += 1
    for name in ref.files:
        if name not in act.files:
            print(f"FAIL {name}: not in {a.actual} (arrays: {', '.join(act.files) or 'none'})")
            failed += 1
            continue
        ok, line = compare_array(name, act[name], ref[name], a.tol, a.tol_half)
        if ok:
            passed += 1
            if not a.quiet:
                print(f"PASS {line}")
        else:
            failed += 1
            print(f"FAIL {line}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
