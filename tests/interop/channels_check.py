#!/usr/bin/env python3
"""Structured channel pruning gives smaller models that onnx and onnxruntime accept.

usage: channels_check.py --pare-prune PATH [--testdata DIR] [--light] [--report FILE]

cnn_digits.onnx pruned with --structured channels --ratio 0.3: onnx.checker
full_check passes, onnxruntime runs it on digits_val.npz, the output shape is
unchanged and parameters are down at least 25%.

--light: the ONNX light zoo models compute their weights with
ConstantOfShape (all weights equal). Each is first materialized: every
ConstantOfShape of a constant shape becomes an initializer of seeded random
values (so channels rank differently), then pruned at 30% with --cleanup
(BatchNorm folded, constant Reshapes of per-channel parameters folded). The
result must pass the full check and run in onnxruntime with the original
output shape, with at least 20% fewer parameters (light_shufflenet 15%:
its trunk, a Concat read by grouped convs and residual Sums of
concatenated channels, stays dense; its shuffle units' bottlenecks
shrink); light_resnet50's residual Adds must add equal channel counts. --report writes one line per
model (params before and after, layers whose channels shrank, groups left
dense with the first reason).
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
from onnx import helper, numpy_helper

# alexnet, vgg19 and zfnet512 hold 60M-140M weights once materialized: --all-light
LIGHT = ["light_densenet121", "light_inception_v1", "light_inception_v2", "light_resnet50",
         "light_shufflenet", "light_squeezenet"]
BIG = ["light_bvlc_alexnet", "light_vgg19", "light_zfnet512"]
# least share of parameters removed (default 20%)
MIN_CUT = {"light_shufflenet": 0.15}


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def params(m):
    return sum(int(np.prod(i.dims)) for i in m.graph.initializer if i.data_type == 1)


def materialize(src, dst):
    m = onnx.load(src)
    inits = {i.name: i for i in m.graph.initializer}
    rng = np.random.default_rng(1)
    keep = []
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = numpy_helper.to_array(inits[n.input[0]]).astype(np.int64)
            a = (rng.standard_normal(tuple(shape)) * 0.1).astype(np.float32)
            m.graph.initializer.append(numpy_helper.from_array(a, n.output[0]))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    used = {x for n in m.graph.node for x in n.input} | {o.name for o in m.graph.output}
    live = [i for i in m.graph.initializer if i.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(live)
    ins = [i for i in m.graph.input if i.name in used]
    del m.graph.input[:]
    m.graph.input.extend(ins)
    if m.ir_version < 4:  # IR 3: every initializer is also a graph input
        have = {i.name for i in m.graph.input}
        for t in live:
            if t.name not in have:
                m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    onnx.save(m, dst)


def ort_run(path, feeds):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def random_feeds(path):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    consts = {t.name for t in onnx.load(path).graph.initializer}
    for i in s.get_inputs():
        if i.name in consts:
            continue
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def summary(text):
    shrank, dense = 0, []
    for line in text.splitlines():
        if " -> " in line and ("Conv" in line or "Gemm" in line or "MatMul" in line):
            shrank += 1
        if "output channels kept:" in line:
            dense.append(line.split("output channels kept:", 1)[1].strip())
    return shrank, dense


def check_case(tool, src, feeds, tmp, name, report, extra=()):
    out = os.path.join(tmp, name + ".pruned.onnx")
    text = run([tool, "--structured", "channels", "--ratio", "0.3"] + list(extra) + [src, "-o", out])
    m0, m1 = onnx.load(src), onnx.load(out)
    onnx.checker.check_model(m1, full_check=True)
    y0, y1 = ort_run(src, feeds), ort_run(out, feeds)
    for a, b in zip(y0, y1):
        if a.shape != b.shape:
            raise RuntimeError("output shape %s, was %s" % (b.shape, a.shape))
    p0, p1 = params(m0), params(m1)
    shrank, dense = summary(text)
    if report:
        reasons = sorted(set(dense))
        report.write("%s: params %d -> %d (%.1f%% fewer), %d layers shrank, %d layers left dense%s\n"
                     % (name, p0, p1, 100.0 * (p0 - p1) / max(p0, 1), shrank, len(dense),
                        (": " + "; ".join(reasons[:3])) if reasons else ""))
    return m1, p0, p1


def resnet_coupling(m):
    """Both inputs of every Add between Conv/BN outputs have equal channels."""
    shapes = {}
    inits = {i.name: i for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Conv":
            shapes[n.output[0]] = inits[n.input[1]].dims[0]
        elif n.op_type in ("BatchNormalization", "SpatialBN", "Relu", "Sum") and n.input[0] in shapes:
            shapes[n.output[0]] = shapes[n.input[0]]
        if n.op_type in ("Add", "Sum"):
            cs = [shapes.get(x) for x in n.input]
            if None not in cs:
                if len(set(cs)) != 1:
                    raise RuntimeError("node %s adds %s channels" % (n.name, cs))
                shapes[n.output[0]] = cs[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pare-prune", required=True)
    ap.add_argument("--testdata", default=os.path.join(os.path.dirname(__file__), "../../testdata"))
    ap.add_argument("--light", action="store_true")
    ap.add_argument("--all-light", action="store_true", help="also the three big ones")
    ap.add_argument("--report")
    a = ap.parse_args()
    passed = failed = 0
    report = open(a.report, "w") if a.report else None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            src = os.path.join(a.testdata, "cnn_digits.onnx")
            d = np.load(os.path.join(a.testdata, "digits_val.npz"))
            names = [i.name for i in ort.InferenceSession(src).get_inputs()]
            feeds = {k: d[k][:64] for k in names}
            m1, p0, p1 = check_case(a.pare_prune, src, feeds, tmp, "cnn_digits", report)
            if p1 > 0.75 * p0:
                raise RuntimeError("params %d -> %d: less than 25%% fewer" % (p0, p1))
            print("ok cnn_digits: params %d -> %d" % (p0, p1))
            passed += 1
        except Exception as e:  # noqa: BLE001 - report and go on
            print("FAIL cnn_digits: %s" % e)
            failed += 1
        if a.light:
            light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")
            for name in LIGHT + (BIG if a.all_light else []):
                src0 = os.path.join(light, name + ".onnx")
                if not os.path.exists(src0):
                    print("skip %s: not installed" % name)
                    continue
                try:
                    src = os.path.join(tmp, name + ".onnx")
                    materialize(src0, src)
                    m1, p0, p1 = check_case(a.pare_prune, src, random_feeds(src), tmp, name,
                                            report, ["--cleanup"])
                    if name == "light_resnet50":
                        resnet_coupling(m1)
                    if p1 > (1 - MIN_CUT.get(name, 0.2)) * p0:
                        raise RuntimeError("params %d -> %d: too few removed" % (p0, p1))
                    print("ok %s: params %d -> %d" % (name, p0, p1))
                    passed += 1
                except Exception as e:  # noqa: BLE001
                    print("FAIL %s: %s" % (name, e))
                    failed += 1
    if report:
        report.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
