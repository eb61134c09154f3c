#!/usr/bin/env python3
"""pare-quantize beside onnxruntime's quantization tool.

Quantizes the same models with the same data and settings with both and
prints, per row: quality against the float model (accuracy and top-1
agreement for the CNN, cosine and relative L2 for the transformers; every
model is evaluated by onnxruntime on the same validation data), output
size, wall time and peak RSS of the quantization, each measured in its own
child process with /usr/bin/time, --rounds times (3): the least wall time
(the run least disturbed by other load) and the largest peak RSS.

    python3 bench/quant_bench.py --build build/release
    python3 bench/quant_bench.py --build build/release --no-big     # testdata only

Rows:
  static int8   onnxruntime.quantization.quantize_static (QDQ, per-channel
                int8 weights, uint8 activations, percentile 99.999 over the
                same calibration samples, batches of 8) vs pare-quantize
                --mode static (the same defaults)
  dynamic int8  quantize_dynamic (per-channel int8 weights) vs --mode dynamic
  int4 b32      MatMulNBitsQuantizer (4 bits, block 32, asymmetric, RTN) vs
                --mode weight-only --format matmulnbits --block-size 32

onnxruntime's quantizer is a Python library: its figures include starting
Python and importing onnxruntime.quantization, which the "python import"
row measures on its own so that it can be subtracted.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---- the worker: one onnxruntime quantization in this (child) process ----

def worker(argv):
    import numpy as np
    from onnxruntime import quantization as q
    kind, model, out = argv[0], argv[1], argv[2]
    if kind == "import":
        return 0
    if kind == "dynamic":
        q.quantize_dynamic(model, out, per_channel=True, weight_type=q.QuantType.QInt8)
        return 0
    if kind == "int4":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        import onnx
        qz = MatMulNBitsQuantizer(onnx.load(model), bits=4, block_size=32, is_symmetric=False)
        qz.process()
        qz.model.save_model_to_file(out)
        return 0
    if kind == "static":
        calib, samples = argv[3], int(argv[4])
        data = np.load(calib)

        class Reader(q.CalibrationDataReader):
            def __init__(self):
                import onnx
                names = [i.name for i in onnx.load(model).graph.input]
                # whole batches only: onnxruntime's histogram calibrators
                # fail on a shorter last batch
                n = min(samples, len(data[names[0]])) // 8 * 8
                self.items = iter([{k: data[k][i:i + 8] for k in names}
                                   for i in range(0, n, 8)])

            def get_next(self):
                return next(self.items, None)

        q.quantize_static(model, out, Reader(), quant_format=q.QuantFormat.QDQ,
                          per_channel=True, activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8,
                          calibrate_method=q.CalibrationMethod.Percentile,
                          extra_options={"CalibPercentile": 99.999})
        return 0
    raise SystemExit("unknown worker " + kind)


# ---- measuring ----

def timed(cmd):
    """Runs cmd under /usr/bin/time: (seconds, peak RSS bytes)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf.name, *cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(cmd), r.stderr.strip()[-400:]))
        sec, kb = tf.read().split()[-2:]
        return float(sec), int(kb) * 1024


def evaluate(model, ref, data, labels):
    """Quality of model against ref on data, both run by onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    d = np.load(data)
    outs = []
    for path in (model, ref):
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feeds = {i.name: d[i.name] for i in s.get_inputs()}
        outs.append(s.run(None, feeds)[0].astype(np.float64))
    a, b = outs
    cos = float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    res = {"cosine": cos, "rel_l2": rel}
    if a.ndim == 2:
        res["top1"] = float(np.mean(a.argmax(1) == b.argmax(1)))
        if labels is not None:
            lab = np.load(labels)
            res["acc"] = float(np.mean(a.argmax(1) == lab))
            res["acc_float"] = float(np.mean(b.argmax(1) == lab))
    return res


def quality_text(q):
    if "acc" in q:
        return "acc %.2f%% (float %.2f%%), top-1 agr %.2f%%" % (
            100 * q["acc"], 100 * q["acc_float"], 100 * q["top1"])
    return "cosine %.5f, rel L2 %.4f" % (q["cosine"], q["rel_l2"])


# ---- a bigger transformer, generated ----

def make_big(path, data_path, layers, hidden, ffn, seq, samples):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    nodes, inits = [], []

    def w(name, shape):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name))
        return name

    def b(name, n):
        inits.append(numpy_helper.from_array(
            (0.02 * rng.standard_normal(n)).astype(np.float32), name))
        return name

    x = "x"
    heads = hidden // 64
    inits.append(numpy_helper.from_array(np.array([0, 0, heads, 64], np.int64), "hshape"))
    inits.append(numpy_helper.from_array(np.array([0, 0, hidden], np.int64), "mshape"))
    inits.append(numpy_helper.from_array(np.array(8.0, np.float32), "sqrtd"))
    inits.append(numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"))
    inits.append(numpy_helper.from_array(np.array(1.0, np.float32), "one"))
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    for l in range(layers):
        p = "l%d/" % l
        inits.append(numpy_helper.from_array(np.ones(hidden, np.float32), p + "g1"))
        inits.append(numpy_helper.from_array(np.zeros(hidden, np.float32), p + "b1"))
        inits.append(numpy_helper.from_array(np.ones(hidden, np.float32), p + "g2"))
        inits.append(numpy_helper.from_array(np.zeros(hidden, np.float32), p + "b2"))

        def mm(name, inp, k, n):
            nodes.append(helper.make_node("MatMul", [inp, w(p + name + ".w", (k, n))],
                                          [p + name + "_mm"], name=p + name))
            nodes.append(helper.make_node("Add", [p + name + "_mm", b(p + name + ".b", n)],
                                          [p + name + "_out"], name=p + name + "_bias"))
            return p + name + "_out"

        qkv = []
        for t in ("q", "k", "v"):
            o = mm(t, x, hidden, hidden)
            nodes.append(helper.make_node("Reshape", [o, "hshape"], [p + t + "_r"]))
            perm = [0, 2, 3, 1] if t == "k" else [0, 2, 1, 3]
            nodes.append(helper.make_node("Transpose", [p + t + "_r"], [p + t + "_t"], perm=perm))
            qkv.append(p + t + "_t")
        nodes.append(helper.make_node("MatMul", [qkv[0], qkv[1]], [p + "qk"], name=p + "qk"))
        nodes.append(helper.make_node("Div", [p + "qk", "sqrtd"], [p + "qks"]))
        nodes.append(helper.make_node("Softmax", [p + "qks"], [p + "att"], axis=-1))
        nodes.append(helper.make_node("MatMul", [p + "att", qkv[2]], [p + "ctx"], name=p + "pv"))
        nodes.append(helper.make_node("Transpose", [p + "ctx"], [p + "ctx_t"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [p + "ctx_t", "mshape"], [p + "ctx_m"]))
        o = mm("o", p + "ctx_m", hidden, hidden)
        nodes.append(helper.make_node("Add", [x, o], [p + "res1"]))
        nodes.append(helper.make_node("LayerNormalization", [p + "res1", p + "g1", p + "b1"],
                                      [p + "ln1"], axis=-1, epsilon=1e-5))
        h = mm("ff1", p + "ln1", hidden, ffn)
        nodes.append(helper.make_node("Div", [h, "sqrt2"], [p + "gd"]))
        nodes.append(helper.make_node("Erf", [p + "gd"], [p + "ge"]))
        nodes.append(helper.make_node("Add", [p + "ge", "one"], [p + "ga"]))
        nodes.append(helper.make_node("Mul", [h, p + "ga"], [p + "gm"]))
        nodes.append(helper.make_node("Mul", [p + "gm", "half"], [p + "gelu"]))
        o = mm("ff2", p + "gelu", ffn, hidden)
        nodes.append(helper.make_node("Add", [p + "ln1", o], [p + "res2"]))
        nodes.append(helper.make_node("LayerNormalization", [p + "res2", p + "g2", p + "b2"],
                                      [p + "ln2"], axis=-1, epsilon=1e-5))
        x = p + "ln2"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(
        nodes, "big_transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", seq, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", seq, hidden])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    np.savez(data_path, x=rng.standard_normal((samples, seq, hidden)).astype(np.float32))


# ---- main ----

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/release", help="meson build folder")
    ap.add_argument("--no-big", action="store_true", help="skip the generated transformer")
    ap.add_argument("--big", default="4x512x2048",
                    help="generated transformer: LAYERSxHIDDENxFFN (4x512x2048)")
    ap.add_argument("--threads", type=int, default=0, help="pare-quantize -t (0: all cores)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of each quantization: the least wall time and the largest "
                    "peak RSS are reported (3)")
    a = ap.parse_args()
    pq = os.path.join(a.build, "tools", "pare-quantize")
    if not os.access(pq, os.X_OK):
        sys.exit("quant_bench: %s not found (build first)" % pq)
    td = os.path.join(ROOT, "testdata")
    py = sys.executable
    me = os.path.abspath(__file__)
    tmp = tempfile.mkdtemp(prefix="quant_bench.")
    cnn = os.path.join(td, "cnn_digits.onnx")
    tb = os.path.join(td, "transformer_block.onnx")
    models = [
        # name, model, calibration data, samples, validation data, labels
        ("cnn_digits", cnn, os.path.join(td, "digits_train.npz"), 1432,
         os.path.join(td, "digits_val.npz"), os.path.join(td, "digits_val_labels.npy"),
         ["static"]),
        ("transformer_block", tb, os.path.join(td, "transformer_data.npz"), 64,
         os.path.join(td, "transformer_data.npz"), None, ["static", "dynamic", "int4"]),
    ]
    if not a.no_big:
        layers, hidden, ffn = (int(v) for v in a.big.split("x"))
        big = os.path.join(tmp, "big_transformer.onnx")
        bdata = os.path.join(tmp, "big_data.npz")
        make_big(big, bdata, layers, hidden, ffn, 128, 32)
        models.append(("transformer %dx%d (%.0f MB)" % (layers, hidden,
                                                        os.path.getsize(big) / 1e6),
                       big, bdata, 32, bdata, None, ["static", "dynamic", "int4"]))
    rows = []
    sec, rss = timed([py, me, "--worker", "import", "-", "-"])
    print("python import onnxruntime.quantization: %.2f s, %.0f MB" % (sec, rss / 2**20))
    for name, model, calib, samples, vdata, labels, kinds in models:
        fsize = os.path.getsize(model)
        for kind in kinds:
            for tool in ("onnxruntime", "pare"):
                out = os.path.join(tmp, "%s.%s.%s.onnx" % (os.path.basename(model), kind, tool))
                if tool == "onnxruntime":
                    cmd = [py, me, "--worker", kind, model, out]
                    if kind == "static":
                        cmd += [calib, str(samples)]
                else:
                    cmd = [pq, "-q", "-t", str(a.threads), model, "-o", out]
                    cmd += {"static": ["--mode", "static", "--calibrate", calib,
                                       "--calib-samples", str(samples)],
                            "dynamic": ["--mode", "dynamic"],
                            "int4": ["--mode", "weight-only", "--format", "matmulnbits",
                                     "--bits", "4", "--block-size", "32"]}[kind]
                try:
                    runs = [timed(cmd) for _ in range(max(1, a.rounds))]
                    sec = min(r[0] for r in runs)  # the least disturbed run
                    rss = max(r[1] for r in runs)
                    q = evaluate(out, model, vdata, labels)
                    rows.append((name, kind, tool, fsize, os.path.getsize(out), sec, rss, q))
                except Exception as e:  # report and go on
                    print("%s %s %s: %s" % (name, kind, tool, e))
                    rows.append((name, kind, tool, fsize, None, None, None, None))
    print()
    print("| model | mode | tool | quality vs float | size | wall s | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, kind, tool, fsize, osize, sec, rss, q in rows:
        if q is None:
            print("| %s | %s | %s | failed | | | |" % (name, kind, tool))
            continue
        print("| %s | %s | %s | %s | %.1f KB (%.2fx) | %.2f | %.0f MB |" % (
            name, kind, tool, quality_text(q), osize / 1024, osize / fsize, sec, rss / 2**20))
    print()
    print("| model | mode | wall time ort/pare | peak RSS ort/pare |")
    print("|---|---|---|---|")
    for i in range(0, len(rows) - 1, 2):
        o, p = rows[i], rows[i + 1]
        if o[5] is None or p[5] is None:
            continue
        print("| %s | %s | %.1fx | %.1fx |" % (o[0], o[1], o[5] / max(p[5], 0.01),
                                             o[6] / p[6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
