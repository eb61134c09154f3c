#!/usr/bin/env python3
"""Structured channel pruning through grouped Convs, ConvTranspose and channel shuffles.

usage: grouped_check.py --pare-prune PATH --pare-run PATH [--light] [--ratio R]

Models built here with onnx.helper (random weights, nothing zeroed):
  resnext   1x1 conv -> BN -> Relu -> 3x3 Conv group 4 -> BN -> Relu -> 1x1
            conv, plus a residual Add (the grouped Conv reads and writes
            pruned channels, every group keeping the same count)
  convt     ConvTranspose group 2 -> Relu -> ConvTranspose -> Relu -> Conv
  shuffle   two ShuffleNet units: grouped 1x1 -> BN -> Relu -> channel
            shuffle (Reshape/Transpose/Reshape) -> depthwise 3x3 -> BN ->
            grouped 1x1 -> BN, residual Sum
and, with --light, light_shufflenet (its ConstantOfShape weights first
materialized as seeded random initializers, as channels_check.py does,
BatchNorm variances made positive; pruned with --cleanup).

Each is pruned with --structured channels --ratio R (0.5; 0.3 for
light_shufflenet). The result must pass onnx.checker full_check, run in
onnxruntime with the original output shape, give the same outputs in
pare-run as in onnxruntime (within 1e-4 relative, scripts/compare_npz.py),
keep every grouped Conv's group attribute (a depthwise one's follows its
channels), and have fewer parameters (light_shufflenet:
at least 15% fewer, every shuffle unit's grouped 1x1 convs narrower). Prints
the parameter share removed and how the pruned outputs agree with the
original's (cosine; light_shufflenet: of the logits, and top-1 agreement
over 8 random inputs; the weights are random, so this is no accuracy).
The last line is `N passed, N failed`; exit status 1 if any case failed.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from channels_check import materialize, params  # noqa: E402

SCRIPTS = os.path.join(HERE, "..", "..", "scripts")


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.k = [], [], 0

    def name(self, p):
        self.k += 1
        return "%s%d" % (p, self.k)

    def const(self, a, p="c"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(a), n))
        return n

    def w(self, *shape):
        return self.const((self.rng.standard_normal(shape) * 0.3).astype(np.float32), "w")

    def op(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=1, group=1, bias=True):
        ins = [x, self.w(cout, cin // group, k, k)]
        if bias:
            ins.append(self.const((self.rng.standard_normal(cout) * 0.1).astype(np.float32)))
        return self.op("Conv", ins, kernel_shape=[k, k], pads=[k // 2] * 4, group=group)

    def bn(self, x, c):
        r = self.rng
        return self.op("BatchNormalization", [
            x, self.const((1 + 0.2 * r.standard_normal(c)).astype(np.float32)),
            self.const((0.1 * r.standard_normal(c)).astype(np.float32)),
            self.const((0.1 * r.standard_normal(c)).astype(np.float32)),
            self.const((0.5 + r.random(c)).astype(np.float32))])

    def shuffle(self, x, c, g, hw):
        a = self.op("Reshape", [x, self.const(np.array([1, g, c // g, hw, hw], np.int64))])
        b = self.op("Transpose", [a], perm=[0, 2, 1, 3, 4])
        return self.op("Reshape", [b, self.const(np.array([1, c, hw, hw], np.int64))])

    def model(self, x, xshape, y):
        g = helper.make_graph(self.nodes, "g",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, xshape)],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)],
                              self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        m.graph.output[0].type.CopyFrom(onnx.shape_inference.infer_shapes(m).graph.output[0].type)
        return m


def resnext():
    b = Builder(1)
    x = "x"
    s = b.op("Relu", [b.conv(x, 8, 32, 3)])
    h = b.op("Relu", [b.bn(b.conv(s, 32, 32, bias=False), 32)])
    h = b.op("Relu", [b.bn(b.conv(h, 32, 32, 3, group=4, bias=False), 32)])
    h = b.bn(b.conv(h, 32, 32, bias=False), 32)
    y = b.op("Relu", [b.op("Add", [h, s])])
    y = b.conv(y, 32, 4)
    return b.model(x, [1, 8, 6, 6], y)


def convt():
    b = Builder(2)
    h = b.op("ConvTranspose", ["x", b.w(8, 12, 2, 2), b.const(np.zeros(24, np.float32) + 0.1)],
             group=2, strides=[2, 2])
    h = b.op("Relu", [h])
    h = b.op("Relu", [b.op("ConvTranspose", [h, b.w(24, 16, 3, 3)], pads=[1, 1, 1, 1])])
    return b.model("x", [1, 8, 4, 4], b.conv(h, 16, 3))


def shuffle():
    b = Builder(3)
    t = b.op("Relu", [b.conv("x", 4, 24, 3)])
    for _ in range(2):
        h = b.op("Relu", [b.bn(b.conv(t, 24, 48, group=4, bias=False), 48)])
        h = b.shuffle(h, 48, 4, 6)
        h = b.bn(b.conv(h, 48, 48, 3, group=48, bias=False), 48)
        h = b.bn(b.conv(h, 48, 24, group=4, bias=False), 24)
        t = b.op("Relu", [b.op("Sum", [h, t])])
    return b.model("x", [1, 4, 6, 6], b.conv(t, 24, 5))


def positive_variances(path):
    """materialize() draws every weight from N(0, 0.1), BatchNorm variances
    too: negative ones make every output NaN. They become |v| + 0.5."""
    m = onnx.load(path)
    var = {n.input[4] for n in m.graph.node if n.op_type == "BatchNormalization"}
    for i, t in enumerate(m.graph.initializer):
        if t.name in var:
            a = np.abs(numpy_helper.to_array(t)) + 0.5
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a.astype(np.float32), t.name))
    onnx.save(m, path)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:],
                                                   p.stderr.strip()))
    return p.stdout


def groups(m):
    return {n.name: next((a.i for a in n.attribute if a.name == "group"), 1)
            for n in m.graph.node if n.op_type in ("Conv", "ConvTranspose")}


def conv_widths(m):
    inits = {i.name: i for i in m.graph.initializer}
    return {n.name: tuple(inits[n.input[1]].dims) for n in m.graph.node
            if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in inits}


def check(a, tmp, name, src, ratio, extra=(), min_cut=0.0, feeds_n=1):
    out = os.path.join(tmp, name + ".pruned.onnx")
    run([a.pare_prune, "--structured", "channels", "--ratio", str(ratio)] + list(extra) +
        [src, "-o", out, "-q"])
    m0, m1 = onnx.load(src), onnx.load(out)
    onnx.checker.check_model(m1, full_check=True)
    s0 = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    s1 = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    inp = s1.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(feeds_n)]
    y0 = np.concatenate([s0.run(None, {inp.name: x})[0] for x in xs])
    y1 = np.concatenate([s1.run(None, {inp.name: x})[0] for x in xs])
    if y0.shape != y1.shape:
        raise RuntimeError("output shape %s, was %s" % (y1.shape, y0.shape))
    # pare-run on the pruned model against onnxruntime's outputs
    data, ref, got = (os.path.join(tmp, name + s) for s in (".in.npz", ".ort.npz", ".pare.npz"))
    np.savez(data, **{inp.name: xs[0]})
    np.savez(ref, **{s1.get_outputs()[0].name: s1.run(None, {inp.name: xs[0]})[0]})
    run([a.pare_run, out, "--inputs", data, "--save-outputs", got, "-n", "1", "--batch", "1",
         "-t", "1", "-q"])
    run([sys.executable, os.path.join(SCRIPTS, "compare_npz.py"), got, ref, "-q"])
    # grouped convs keep their group; depthwise ones follow their channels
    g0, g1, w0, w1 = groups(m0), groups(m1), conv_widths(m0), conv_widths(m1)
    for n in g0:
        want = w1[n][0] if g0[n] == w0[n][0] and g0[n] > 1 else g0[n]
        if g1.get(n) != want:
            raise RuntimeError("node %s: group %s -> %s, expected %s" % (n, g0[n], g1.get(n), want))
    p0, p1 = params(m0), params(m1)
    if not p1 < p0 * (1 - min_cut) or p1 >= p0:
        raise RuntimeError("params %d -> %d: too few removed" % (p0, p1))
    if not np.isfinite(y0).all() or not np.isfinite(y1).all():
        raise RuntimeError("outputs not finite")
    what = "output"
    if any(n.op_type == "Softmax" for n in m1.graph.node):
        # a classifier: compare the logits (the Softmax input) instead
        what = "logits"
        y0, y1 = (np.concatenate([logits(p, inp.name, x) for x in xs]) for p in (src, out))
    a0, a1 = y0.reshape(len(xs), -1), y1.reshape(len(xs), -1)
    cos = float(np.mean(np.sum(a0 * a1, 1) / (np.linalg.norm(a0, axis=1) *
                                               np.linalg.norm(a1, axis=1) + 1e-30)))
    msg = "ok %s: params %d -> %d (%.1f%% fewer), %s cosine %.4f" % (
        name, p0, p1, 100.0 * (p0 - p1) / p0, what, cos)
    if what == "logits":
        msg += ", top-1 agreement %.2f over %d random inputs" % (
            float(np.mean(a0.argmax(1) == a1.argmax(1))), len(xs))
    print(msg)
    return m0, m1


def logits(path, name, x):
    m = onnx.load(path)
    sm = next(n for n in m.graph.node if n.op_type == "Softmax")
    m.graph.output.append(helper.make_empty_tensor_value_info(sm.input[0]))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run([sm.input[0]], {name: x})[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pare-prune", required=True)
    ap.add_argument("--pare-run", required=True)
    ap.add_argument("--light", action="store_true")
    ap.add_argument("--ratio", type=float, default=0.5)
    a = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("resnext", resnext), ("convt", convt), ("shuffle", shuffle)):
            try:
                src = os.path.join(tmp, name + ".onnx")
                onnx.save(make(), src)
                m0, m1 = check(a, tmp, name, src, a.ratio)
                w0, w1 = conv_widths(m0), conv_widths(m1)
                narrower = [n for n in w0 if w1.get(n) != w0[n]]
                if name == "shuffle" and not any(w0[n][0] == 48 and w1[n][0] < 48 for n in w0):
                    raise RuntimeError("no grouped 1x1 conv of a shuffle unit narrower: %s" % w1)
                if name == "convt" and not all(n in narrower for n in w0 if "convtranspose" in n):
                    raise RuntimeError("ConvTranspose weights unchanged: %s" % w1)
                passed += 1
            except Exception as e:  # noqa: BLE001 - report and go on
                print("FAIL %s: %s" % (name, e))
                failed += 1
        if a.light:
            light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")
            src0 = os.path.join(light, "light_shufflenet.onnx")
            if not os.path.exists(src0):
                print("skip light_shufflenet: not installed")
            else:
                try:
                    src = os.path.join(tmp, "light_shufflenet.onnx")
                    materialize(src0, src)
                    positive_variances(src)
                    m0, m1 = check(a, tmp, "light_shufflenet", src, 0.3, ["--cleanup"], 0.15, 8)
                    w1 = conv_widths(m1)
                    gconv = [n for n in m1.graph.node if n.op_type == "Conv"
                             and 1 < groups(m1)[n.name] < w1[n.name][0]]
                    if sum(1 for n in gconv if w1[n.name][0] not in (112, 136, 272, 544)) < 16:
                        raise RuntimeError("fewer than 16 shuffle units narrowed: %s" % w1)
                    passed += 1
                except Exception as e:  # noqa: BLE001
                    print("FAIL light_shufflenet: %s" % e)
                    failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
