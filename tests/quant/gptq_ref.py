#!/usr/bin/env python3
"""pare's GPTQ against an independent float64 numpy implementation.

usage: gptq_ref.py --writer WQ_WRITE

One MatMul (K 256, N 48) with correlated calibration inputs and one dead
input column; pare (wq-write, MatMulNBits 4-bit, block 32) quantizes it with
GPTQ, asymmetric, symmetric and with act_order (static groups); the codes,
scales and zero points are unpacked from MatMulNBits' layout and compared
with the reference written here from the paper's algorithm (H = X^T X,
dead inputs, damp 0.01 * mean diag, upper Cholesky factor of H^-1, column
by column error compensation). pare computes W and H^-1 in float32, so a
few codes may land on the other side of a rounding boundary: at least 99%
must agree, scales within 1e-4 relative, and the output error of pare's
codes must be within 1% of the reference's and below round to nearest's.
Exit 0 pass, 1 fail.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K, N, BS = 256, 48, 32


def write_inputs(tmp):
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.1, (K, N)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", N])],
        [numpy_helper.from_array(w, "W")])
    model = os.path.join(tmp, "one.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              model)
    a = rng.normal(0, 1, (K, K)) / np.sqrt(K)
    x = (rng.normal(0, 1, (512, K)) @ a).astype(np.float32)
    x[:, 5] = 0  # a dead input
    data = os.path.join(tmp, "data.npz")
    np.savez(data, x=x)
    return w, x, model, data


def unpack(path, sym):
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    b, s = init["W_q"], init["W_scale"]
    nb = K // BS
    nib = lambda a, j: (a >> (4 * (j & 1))) & 15  # noqa: E731 - low nibble first
    codes = np.zeros((N, K), np.int64)
    for j in range(BS):
        codes[:, j::BS] = nib(b[:, :, j // 2].astype(np.int64), j)
    if sym:
        zp = np.full((N, nb), 8, np.int64)
    else:
        zrow = (nb * 4 + 7) // 8
        z = init["W_zp"].reshape(N, zrow).astype(np.int64)
        zp = np.stack([nib(z[:, b_ // 2], b_) for b_ in range(nb)], axis=1)
    return codes, s.reshape(N, nb).astype(np.float64), zp


def params(w, sym):
    if sym:
        s = np.max(np.abs(w)) / 7
        return (s if s > 0 else 1.0), 8
    lo, hi = min(w.min(), 0.0), max(w.max(), 0.0)
    s = (hi - lo) / 15
    if s <= 0:
        return 1.0, 0
    return s, np.clip(np.rint(-lo / s), 0, 15)


def reference(w, x, sym, act_order):
    """GPTQ in float64; returns codes, scales, zero points ([N, K], [N, K/BS] x2)."""
    W = w.T.astype(np.float64).copy()
    H = x.astype(np.float64).T @ x.astype(np.float64)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    nb = K // BS
    S, Z = np.zeros((N, nb)), np.zeros((N, nb))
    perm = np.arange(K)
    if act_order:  # static groups on the original order
        for n in range(N):
            for b in range(nb):
                S[n, b], Z[n, b] = params(W[n, b * BS:(b + 1) * BS], sym)
        perm = np.argsort(-np.diag(H), kind="stable")
    W, H = W[:, perm], H[perm][:, perm]
    H = H + 0.01 * np.mean(np.diag(H)) * np.eye(K)
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    Q = np.zeros((N, K), np.int64)
    for i in range(K):
        if not act_order and i % BS == 0:
            for n in range(N):
                S[n, i // BS], Z[n, i // BS] = params(W[n, i:i + BS], sym)
        blk = perm[i] // BS
        s, z = S[:, blk], Z[:, blk]
        q = np.clip(np.rint(W[:, i] / s) + z, 0, 15)
        Q[:, perm[i]] = q
        err = (W[:, i] - (q - z) * s) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return Q, S, Z


def out_err(codes, s, z, w, x):
    deq = (codes - np.repeat(z, BS, 1)) * np.repeat(s, BS, 1)
    ref = x.astype(np.float64) @ w
    return np.linalg.norm(x @ deq.T - ref) / np.linalg.norm(ref)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        w, x, model, data = write_inputs(tmp)
        rtn = {}
        for mode, sym, ao in [("gptq-nbits4", False, False), ("gptq-nbits4s", True, False),
                              ("gptq-ao-nbits4", False, True)]:
            out = os.path.join(tmp, mode + ".onnx")
            subprocess.run([args.writer, mode, model, out, data], check=True)
            codes, s, z = unpack(out, sym)
            Q, S, Z = reference(w, x, sym, ao)
            if sym not in rtn:
                rc = np.zeros((N, K))
                rs, rz = np.zeros((N, K // BS)), np.zeros((N, K // BS))
                wt = w.T.astype(np.float64)
                for n in range(N):
                    for b in range(K // BS):
                        blk = wt[n, b * BS:(b + 1) * BS]
                        rs[n, b], rz[n, b] = params(blk, sym)
                        rc[n, b * BS:(b + 1) * BS] = np.clip(np.rint(blk / rs[n, b]) + rz[n, b],
                                                             0, 15)
                rtn[sym] = out_err(rc, rs, rz, w, x)
            agree = float((Q == codes).mean())
            sdiff = float(np.max(np.abs(S - s) / S))
            e_ref, e_pare = out_err(Q, S, Z, w, x), out_err(codes, s, z, w, x)
            good = (agree >= 0.99 and sdiff <= 1e-4 and (Z == z).mean() >= 0.99
                    and e_pare <= e_ref * 1.01 and e_pare < rtn[sym])
            failed += not good
            print(f"{'ok  ' if good else 'FAIL'} {mode}: codes agree {agree:.4f}, scales "
                  f"{sdiff:.1e}, output rel err pare {e_pare:.5f} reference {e_ref:.5f} "
                  f"rtn {rtn[sym]:.5f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
