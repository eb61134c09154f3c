#!/usr/bin/env python3
"""Generate pare's test models and data (deterministic; outputs are committed).

Usage:  python3 testdata/make_testdata.py [--out DIR] [--skip-bomb]

Needs the packages in testdata/requirements-gen.txt (onnx, onnxruntime, numpy,
scikit-learn).  Everything is seeded; BLAS is held to one thread so that a
rerun on the same machine gives the same bytes (see README.md for the list of
files and what each one is for).
"""

import os

# One BLAS thread: makes float sums (and so the trained weights) repeatable.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import gzip
import io
import math
import shutil
import struct
import sys
import zipfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR = 8  # the IR version that goes with opset 17
PRODUCER = "pare-testdata"

OUT = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def path(*parts):
    return os.path.join(OUT, *parts)


def write_bytes(p, data):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def save_model(model, p):
    write_bytes(p, model.SerializeToString(deterministic=True))


def savez(p, **arrays):
    """Like np.savez (stored zip members named NAME.npy, zip64 extras as
    numpy writes them) but with a fixed timestamp, so the bytes are stable."""
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(data)
    return buf.getvalue()


def make_model(graph, opsets=None, ir=IR, **kw):
    if opsets is None:
        opsets = [helper.make_opsetid("", OPSET)]
    m = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                          producer_version="1", **kw)
    m.ir_version = ir
    return m


def init(name, arr):
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def ort_run(model_or_path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def check(model_or_path):
    onnx.checker.check_model(model_or_path, full_check=True)


def fsize(p):
    return os.path.getsize(p)


SUMMARY = []  # lines for the end of the run


# --------------------------------------------------------------------------
# 1. digits CNN, trained in numpy
# --------------------------------------------------------------------------

def im2col3(x):
    """[B,C,H,W] -> [B*H*W, C*9] for a 3x3 kernel, pad 1, stride 1."""
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((B, C, 9, H, W), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i * 3 + j] = xp[:, :, i:i + H, j:j + W]
    return cols.transpose(0, 3, 4, 1, 2).reshape(B * H * W, C * 9)


def col2im3(dcols, shape):
    B, C, H, W = shape
    d = dcols.reshape(B, H, W, C, 9).transpose(0, 3, 4, 1, 2)
    dxp = np.zeros((B, C, H + 2, W + 2), dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + H, j:j + W] += d[:, :, i * 3 + j]
    return dxp[:, :, 1:-1, 1:-1]


def conv_fwd(x, w, b):
    B, C, H, W = x.shape
    O, _, kh, _ = w.shape
    cols = im2col3(x) if kh == 3 else x.transpose(0, 2, 3, 1).reshape(-1, C)
    out = cols @ w.reshape(O, -1).T
    if b is not None:
        out = out + b
    return out.reshape(B, H, W, O).transpose(0, 3, 1, 2), cols


def conv_bwd(dout, cols, w, xshape):
    B, O, H, W = dout.shape
    C = xshape[1]
    d = dout.transpose(0, 2, 3, 1).reshape(-1, O)
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(0)
    dcols = d @ w.reshape(O, -1)
    if w.shape[2] == 3:
        dx = col2im3(dcols, xshape)
    else:
        dx = dcols.reshape(B, H, W, C).transpose(0, 3, 1, 2)
    return dx, dw, db


BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def bn_train_fwd(x, g, b, rm, rv):
    mu = x.mean((0, 2, 3))
    var = x.var((0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    # running stats as PyTorch keeps them (unbiased variance)
    rm *= 1 - BN_MOMENTUM
    rm += BN_MOMENTUM * mu
    rv *= 1 - BN_MOMENTUM
    rv += BN_MOMENTUM * var * n / (n - 1)
    inv = 1.0 / np.sqrt(var + BN_EPS)
    xh = (x - mu[None, :, None, None]) * inv[None, :, None, None]
    return xh * g[None, :, None, None] + b[None, :, None, None], (xh, inv)


def bn_bwd(dy, cache, g):
    xh, inv = cache
    n = dy.shape[0] * dy.shape[2] * dy.shape[3]
    ax = (0, 2, 3)
    dg = (dy * xh).sum(ax)
    db = dy.sum(ax)
    dxh = dy * g[None, :, None, None]
    dx = (inv[None, :, None, None] / n) * (
        n * dxh - dxh.sum(ax)[None, :, None, None] - xh * (dxh * xh).sum(ax)[None, :, None, None])
    return dx, dg, db


def bn_eval(x, g, b, rm, rv):
    s = g / np.sqrt(rv + BN_EPS)
    return x * s[None, :, None, None] + (b - rm * s)[None, :, None, None]


def maxpool_fwd(x):
    B, C, H, W = x.shape
    xr = x.reshape(B, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)
    idx = xr.argmax(-1)
    return np.take_along_axis(xr, idx[..., None], -1)[..., 0], idx


def maxpool_bwd(dout, idx, xshape):
    B, C, H, W = xshape
    dxr = np.zeros((B, C, H // 2, W // 2, 4), dout.dtype)
    np.put_along_axis(dxr, idx[..., None], dout[..., None], -1)
    return dxr.reshape(B, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


def cnn_init(rng):
    # Wide enough to be a fair target for pruning (an under-parameterised
    # net loses accuracy at any sparsity): 32/64/64 channels, ~61 K params.
    C1, C2, C3 = 32, 64, 64

    def he(shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
    p = {
        "conv1.weight": he((C1, 1, 3, 3)),                     # no bias: BN follows
        "bn1.scale": np.ones(C1, np.float32), "bn1.bias": np.zeros(C1, np.float32),
        "conv2.weight": he((C2, C1, 3, 3)),
        "conv2.bias": (rng.standard_normal(C2) * 0.05).astype(np.float32),  # redundant before BN, kept on purpose
        "bn2.scale": np.ones(C2, np.float32), "bn2.bias": np.zeros(C2, np.float32),
        "conv3.weight": he((C3, C2, 3, 3)), "conv3.bias": np.zeros(C3, np.float32),
        "proj.weight": he((C3, C2, 1, 1)), "proj.bias": np.zeros(C3, np.float32),
        "fc.weight": (rng.standard_normal((10, C3)) * math.sqrt(1.0 / C3)).astype(np.float32),
        "fc.bias": np.zeros(10, np.float32),
    }
    s = {"bn1.mean": np.zeros(C1, np.float32), "bn1.var": np.ones(C1, np.float32),
         "bn2.mean": np.zeros(C2, np.float32), "bn2.var": np.ones(C2, np.float32)}
    return p, s


def cnn_forward(p, s, x, train):
    c = {}
    h, c["cols1"] = conv_fwd(x, p["conv1.weight"], None)
    if train:
        h, c["bn1"] = bn_train_fwd(h, p["bn1.scale"], p["bn1.bias"], s["bn1.mean"], s["bn1.var"])
    else:
        h = bn_eval(h, p["bn1.scale"], p["bn1.bias"], s["bn1.mean"], s["bn1.var"])
    c["r1"] = h = np.maximum(h, 0)
    h, c["cols2"] = conv_fwd(h, p["conv2.weight"], p["conv2.bias"])
    if train:
        h, c["bn2"] = bn_train_fwd(h, p["bn2.scale"], p["bn2.bias"], s["bn2.mean"], s["bn2.var"])
    else:
        h = bn_eval(h, p["bn2.scale"], p["bn2.bias"], s["bn2.mean"], s["bn2.var"])
    c["r2"] = h = np.maximum(h, 0)
    c["pool"], c["pidx"] = pool, _ = maxpool_fwd(h)
    h3, c["cols3"] = conv_fwd(pool, p["conv3.weight"], p["conv3.bias"])
    c["r3"] = r3 = np.maximum(h3, 0)
    pr, c["colsp"] = conv_fwd(pool, p["proj.weight"], p["proj.bias"])
    a = r3 + pr
    c["gap"] = g = a.mean((2, 3))
    logits = g @ p["fc.weight"].T + p["fc.bias"]
    return logits.astype(np.float32), c


def cnn_backward(p, c, x, dlogits):
    gr = {}
    gr["fc.weight"] = dlogits.T @ c["gap"]
    gr["fc.bias"] = dlogits.sum(0)
    dg = dlogits @ p["fc.weight"]
    B, C = dg.shape
    da = np.broadcast_to((dg / 16.0)[:, :, None, None], (B, C, 4, 4)).astype(np.float32)
    pshape = c["pool"].shape
    dpool1, gr["proj.weight"], gr["proj.bias"] = conv_bwd(da, c["colsp"], p["proj.weight"], pshape)
    dh3 = da * (c["r3"] > 0)
    dpool2, gr["conv3.weight"], gr["conv3.bias"] = conv_bwd(dh3, c["cols3"], p["conv3.weight"], pshape)
    dr2 = maxpool_bwd(dpool1 + dpool2, c["pidx"], c["r2"].shape)
    dh = dr2 * (c["r2"] > 0)
    dh, gr["bn2.scale"], gr["bn2.bias"] = bn_bwd(dh, c["bn2"], p["bn2.scale"])
    dr1, gr["conv2.weight"], gr["conv2.bias"] = conv_bwd(dh, c["cols2"], p["conv2.weight"], c["r1"].shape)
    dh = dr1 * (c["r1"] > 0)
    dh, gr["bn1.scale"], gr["bn1.bias"] = bn_bwd(dh, c["bn1"], p["bn1.scale"])
    _, gr["conv1.weight"], _ = conv_bwd(dh, c["cols1"], p["conv1.weight"], x.shape)
    return gr


def softmax_xent(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    pr = e / e.sum(1, keepdims=True)
    loss = -np.log(pr[np.arange(len(labels)), labels] + 1e-12).mean()
    d = pr
    d[np.arange(len(labels)), labels] -= 1
    return loss, (d / len(labels)).astype(np.float32)


def cnn_to_onnx(p, s):
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight"], ["conv1_out"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["conv1_out", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"],
                         ["bn1_out"], name="bn1", epsilon=BN_EPS, momentum=1 - BN_MOMENTUM),
        helper.make_node("Relu", ["bn1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("Conv", ["relu1_out", "conv2.weight", "conv2.bias"], ["conv2_out"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["conv2_out", "bn2.scale", "bn2.bias", "bn2.mean", "bn2.var"],
                         ["bn2_out"], name="bn2", epsilon=BN_EPS, momentum=1 - BN_MOMENTUM),
        helper.make_node("Relu", ["bn2_out"], ["relu2_out"], name="relu2"),
        helper.make_node("MaxPool", ["relu2_out"], ["pool_out"], name="pool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool_out", "conv3.weight", "conv3.bias"], ["conv3_out"], name="conv3",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv3_out"], ["relu3_out"], name="relu3"),
        helper.make_node("Conv", ["pool_out", "proj.weight", "proj.bias"], ["proj_out"], name="proj",
                         kernel_shape=[1, 1]),
        helper.make_node("Add", ["relu3_out", "proj_out"], ["res_out"], name="residual"),
        helper.make_node("GlobalAveragePool", ["res_out"], ["gap_out"], name="gap"),
        helper.make_node("Flatten", ["gap_out"], ["flat_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["logits"], name="fc",
                         alpha=1.0, beta=1.0, transB=1),
    ]
    order = ["conv1.weight", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var", "conv2.weight", "conv2.bias",
             "bn2.scale", "bn2.bias", "bn2.mean", "bn2.var", "conv3.weight", "conv3.bias",
             "proj.weight", "proj.bias", "fc.weight", "fc.bias"]
    allp = dict(p)
    allp.update(s)
    inits = [init(k, allp[k].astype(np.float32)) for k in order]
    g = helper.make_graph(
        nodes, "cnn_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    return make_model(g, doc_string="Small CNN trained on scikit-learn digits (8x8, 10 classes).")


def make_cnn():
    from sklearn.datasets import load_digits
    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(20240601)
    perm = rng.permutation(len(y))
    nval = 360
    vi, ti = perm[:nval], perm[nval:]
    Xtr, ytr, Xva, yva = X[ti], y[ti], X[vi], y[vi]
    savez(path("digits_train.npz"), input=Xtr, label=ytr)
    savez(path("digits_val.npz"), input=Xva, label=yva)
    np.save(path("digits_val_labels.npy"), yva)

    p, s = cnn_init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    lr, b1, b2, eps, wd = 2e-3, 0.9, 0.999, 1e-8, 1e-4
    epochs, bs, step = 30, 32, 0
    for ep in range(epochs):
        lr_ep = lr * 0.5 * (1 + math.cos(math.pi * ep / epochs))
        order = rng.permutation(len(ytr))
        tot = 0.0
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            if len(idx) < 2:
                continue
            xb = Xtr[idx]
            # light augmentation: shift by up to one pixel
            sh = rng.integers(-1, 2, size=2)
            xb = np.roll(xb, shift=(int(sh[0]), int(sh[1])), axis=(2, 3))
            logits, cache = cnn_forward(p, s, xb, True)
            loss, dl = softmax_xent(logits, ytr[idx])
            tot += loss * len(idx)
            gr = cnn_backward(p, cache, xb, dl)
            step += 1
            for name in p:
                gdt = gr[name].astype(np.float32)
                if name.endswith("weight"):
                    gdt = gdt + wd * p[name]
                m[name] = b1 * m[name] + (1 - b1) * gdt
                v2[name] = b2 * v2[name] + (1 - b2) * gdt * gdt
                mh = m[name] / (1 - b1 ** step)
                vh = v2[name] / (1 - b2 ** step)
                p[name] = (p[name] - lr_ep * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        val_logits, _ = cnn_forward(p, s, Xva, False)
        acc = (val_logits.argmax(1) == yva).mean()
        print(f"  epoch {ep + 1:2d} loss {tot / len(ytr):.4f} val acc {acc:.4f}", file=sys.stderr)

    model = cnn_to_onnx(p, s)
    check(model)
    save_model(model, path("cnn_digits.onnx"))

    np_logits, _ = cnn_forward(p, s, Xva, False)
    np_acc = float((np_logits.argmax(1) == yva).mean())
    out = ort_run(path("cnn_digits.onnx"), {"input": Xva})["logits"]
    ort_acc = float((out.argmax(1) == yva).mean())
    diff = float(np.abs(out - np_logits).max())
    agree = int((out.argmax(1) == np_logits.argmax(1)).sum())
    assert ort_acc == np_acc, (ort_acc, np_acc)
    assert diff < 1e-3, diff
    tr_out = ort_run(path("cnn_digits.onnx"), {"input": Xtr})["logits"]
    tr_acc = float((tr_out.argmax(1) == ytr).mean())
    savez(path("cnn_digits_val_ref.npz"), logits=out)
    SUMMARY.append(f"cnn_digits: val accuracy numpy {np_acc:.4f} ({int(round(np_acc * nval))}/{nval}), "
                   f"onnxruntime {ort_acc:.4f}, top-1 agreement {agree}/{nval}, max |diff| {diff:.2e}; "
                   f"train accuracy {tr_acc:.4f}")
    write_bytes(path("cnn_digits.onnx.gz"), gzip_bytes(open(path("cnn_digits.onnx"), "rb").read()))
    return np_acc


# --------------------------------------------------------------------------
# 2. transformer encoder layers
# --------------------------------------------------------------------------

HID, HEADS, FFN = 64, 4, 256
HD = HID // HEADS


def tf_params(rng):
    def w(i, o):
        return (rng.standard_normal((i, o)) / math.sqrt(i)).astype(np.float32)

    def b(n):
        return (rng.standard_normal(n) * 0.02).astype(np.float32)
    return {
        "q.weight": w(HID, HID), "q.bias": b(HID),
        "k.weight": w(HID, HID), "k.bias": b(HID),
        "v.weight": w(HID, HID), "v.bias": b(HID),
        "o.weight": w(HID, HID), "o.bias": b(HID),
        "ln1.scale": (1 + rng.standard_normal(HID) * 0.1).astype(np.float32), "ln1.bias": b(HID),
        "fc1.weight": w(HID, FFN), "fc1.bias": b(FFN),
        "fc2.weight": w(FFN, HID), "fc2.bias": b(HID),
        "ln2.scale": (1 + rng.standard_normal(HID) * 0.1).astype(np.float32), "ln2.bias": b(HID),
    }


def tf_layer_nodes(pfx, x, y, p):
    """Nodes and initializers of one post-LN encoder layer x -> y. pfx like 'layer0/'."""
    n = []
    inits = [init(pfx + k, v) for k, v in p.items()]

    def W(k):
        return pfx + k

    def V(k):
        return pfx + k

    def lin(src, which, dst):
        n.append(helper.make_node("MatMul", [src, W(which + ".weight")], [V(which + "_mm")], name=pfx + which + "/MatMul"))
        n.append(helper.make_node("Add", [V(which + "_mm"), W(which + ".bias")], [dst], name=pfx + which + "/Add"))

    for h in ("q", "k", "v"):
        lin(x, h, V(h))
        n.append(helper.make_node("Reshape", [V(h), W("heads_shape")], [V(h + "_heads")], name=pfx + h + "/Reshape"))
    n.append(helper.make_node("Transpose", [V("q_heads")], [V("q_t")], name=pfx + "q/Transpose", perm=[0, 2, 1, 3]))
    n.append(helper.make_node("Transpose", [V("k_heads")], [V("k_t")], name=pfx + "k/Transpose", perm=[0, 2, 3, 1]))
    n.append(helper.make_node("Transpose", [V("v_heads")], [V("v_t")], name=pfx + "v/Transpose", perm=[0, 2, 1, 3]))
    n.append(helper.make_node("MatMul", [V("q_t"), V("k_t")], [V("scores")], name=pfx + "attn/MatMul_qk"))
    n.append(helper.make_node("Div", [V("scores"), W("attn_scale")], [V("scores_scaled")], name=pfx + "attn/Div"))
    n.append(helper.make_node("Softmax", [V("scores_scaled")], [V("probs")], name=pfx + "attn/Softmax", axis=-1))
    n.append(helper.make_node("MatMul", [V("probs"), V("v_t")], [V("ctx")], name=pfx + "attn/MatMul_pv"))
    n.append(helper.make_node("Transpose", [V("ctx")], [V("ctx_t")], name=pfx + "attn/Transpose", perm=[0, 2, 1, 3]))
    n.append(helper.make_node("Reshape", [V("ctx_t"), W("merge_shape")], [V("ctx_m")], name=pfx + "attn/Reshape"))
    lin(V("ctx_m"), "o", V("attn_out"))
    n.append(helper.make_node("Add", [x, V("attn_out")], [V("res1")], name=pfx + "res1"))
    n.append(helper.make_node("LayerNormalization", [V("res1"), W("ln1.scale"), W("ln1.bias")], [V("ln1_out")],
                              name=pfx + "ln1", axis=-1, epsilon=1e-5))
    lin(V("ln1_out"), "fc1", V("fc1_out"))
    # GELU, erf form: 0.5 * x * (1 + erf(x / sqrt(2)))
    n.append(helper.make_node("Div", [V("fc1_out"), W("sqrt2")], [V("gelu_div")], name=pfx + "gelu/Div"))
    n.append(helper.make_node("Erf", [V("gelu_div")], [V("gelu_erf")], name=pfx + "gelu/Erf"))
    n.append(helper.make_node("Add", [V("gelu_erf"), W("one")], [V("gelu_add")], name=pfx + "gelu/Add"))
    n.append(helper.make_node("Mul", [V("fc1_out"), V("gelu_add")], [V("gelu_mul")], name=pfx + "gelu/Mul"))
    n.append(helper.make_node("Mul", [V("gelu_mul"), W("half")], [V("gelu_out")], name=pfx + "gelu/Mul_half"))
    lin(V("gelu_out"), "fc2", V("ffn_out"))
    n.append(helper.make_node("Add", [V("ln1_out"), V("ffn_out")], [V("res2")], name=pfx + "res2"))
    n.append(helper.make_node("LayerNormalization", [V("res2"), W("ln2.scale"), W("ln2.bias")], [y],
                              name=pfx + "ln2", axis=-1, epsilon=1e-5))
    inits += [
        init(W("heads_shape"), np.array([0, 0, HEADS, HD], np.int64)),
        init(W("merge_shape"), np.array([0, 0, HID], np.int64)),
        init(W("attn_scale"), np.array(math.sqrt(HD), np.float32)),
        init(W("sqrt2"), np.array(math.sqrt(2.0), np.float32)),
        init(W("one"), np.array(1.0, np.float32)),
        init(W("half"), np.array(0.5, np.float32)),
    ]
    return n, inits


def np_ln(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def np_tf_layer(x, p):
    x = x.astype(np.float64)
    P = {k: v.astype(np.float64) for k, v in p.items()}
    N, S, _ = x.shape
    q = (x @ P["q.weight"] + P["q.bias"]).reshape(N, S, HEADS, HD).transpose(0, 2, 1, 3)
    k = (x @ P["k.weight"] + P["k.bias"]).reshape(N, S, HEADS, HD).transpose(0, 2, 3, 1)
    v = (x @ P["v.weight"] + P["v.bias"]).reshape(N, S, HEADS, HD).transpose(0, 2, 1, 3)
    s = q @ k / math.sqrt(HD)
    s = np.exp(s - s.max(-1, keepdims=True))
    s = s / s.sum(-1, keepdims=True)
    c = (s @ v).transpose(0, 2, 1, 3).reshape(N, S, HID)
    h = np_ln(x + c @ P["o.weight"] + P["o.bias"], P["ln1.scale"], P["ln1.bias"])
    f = h @ P["fc1.weight"] + P["fc1.bias"]
    erf = np.vectorize(math.erf)
    f = 0.5 * f * (1 + erf(f / math.sqrt(2)))
    return np_ln(h + f @ P["fc2.weight"] + P["fc2.bias"], P["ln2.scale"], P["ln2.bias"])


def make_transformers():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 16, HID)).astype(np.float32)
    savez(path("transformer_data.npz"), x=x)

    # one layer
    p = tf_params(rng)
    nodes, inits = tf_layer_nodes("", "x", "y", p)
    g = helper.make_graph(nodes, "transformer_block",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S", HID])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S", HID])],
                          initializer=inits)
    m = make_model(g, doc_string="One post-LN transformer encoder layer: hidden 64, 4 heads, FFN 256, erf GELU.")
    check(m)
    save_model(m, path("transformer_block.onnx"))
    y = ort_run(path("transformer_block.onnx"), {"x": x})["y"]
    ref = np_tf_layer(x, p)
    d1 = float(np.abs(y - ref).max())
    assert d1 < 1e-3, d1
    savez(path("transformer_block_ref.npz"), y=y)

    # two layers + head
    p0, p1 = tf_params(rng), tf_params(rng)
    head = (rng.standard_normal((HID, 32)) / math.sqrt(HID)).astype(np.float32)
    head_b = (rng.standard_normal(32) * 0.02).astype(np.float32)
    n0, i0 = tf_layer_nodes("layer0/", "x", "layer0/out", p0)
    n1, i1 = tf_layer_nodes("layer1/", "layer0/out", "layer1/out", p1)
    nh = [helper.make_node("MatMul", ["layer1/out", "head.weight"], ["head_mm"], name="head/MatMul"),
          helper.make_node("Add", ["head_mm", "head.bias"], ["logits"], name="head/Add")]
    g = helper.make_graph(n0 + n1 + nh, "transformer_tiny2",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S", HID])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "S", 32])],
                          initializer=i0 + i1 + [init("head.weight", head), init("head.bias", head_b)])
    m = make_model(g, doc_string="Two stacked encoder layers (prefixes layer0/, layer1/) and a MatMul head to 32 logits.")
    check(m)
    save_model(m, path("transformer_tiny2.onnx"))
    lg = ort_run(path("transformer_tiny2.onnx"), {"x": x})["logits"]
    ref2 = np_tf_layer(np_tf_layer(x, p0), p1) @ head.astype(np.float64) + head_b
    d2 = float(np.abs(lg - ref2).max())
    assert d2 < 1e-3, d2
    savez(path("transformer_tiny2_ref.npz"), logits=lg)
    SUMMARY.append(f"transformer_block: onnxruntime vs numpy float64 max |diff| {d1:.2e}; "
                   f"transformer_tiny2: {d2:.2e}")


# --------------------------------------------------------------------------
# 3. control flow
# --------------------------------------------------------------------------

def make_control_flow():
    F, B, I = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
    vi = helper.make_tensor_value_info

    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then_one"], name="then/one", value_float=1.0),
         helper.make_node("Add", ["t", "then_one"], ["then_a"], name="then/add"),     # t: outer scope
         helper.make_node("Relu", ["then_a"], ["then_out"], name="then/relu")],
        "then_branch", [], [vi("then_out", F, [3])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["else_c"], name="else/c",
                          value=helper.make_tensor("else_c_v", F, [3], [0.5, 1.0, 1.5])),
         helper.make_node("Sub", ["x", "else_c"], ["else_a"], name="else/sub"),       # x: outer scope
         helper.make_node("Neg", ["else_a"], ["else_out"], name="else/neg")],
        "else_branch", [], [vi("else_out", F, [3])])

    loop_body = helper.make_graph(
        [helper.make_node("Cast", ["iter"], ["iter_f"], name="body/cast", to=F),
         helper.make_node("Mul", ["x", "iter_f"], ["x_i"], name="body/mul"),           # x: outer scope
         helper.make_node("Add", ["v_in", "x_i"], ["v_out"], name="body/add"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body/cond"),
         helper.make_node("Mul", ["v_out", "v_out"], ["sq_out"], name="body/square")],
        "loop_body",
        [vi("iter", I, []), vi("cond_in", B, []), vi("v_in", F, [3])],
        [vi("cond_out", B, []), vi("v_out", F, [3]), vi("sq_out", F, [3])])

    scan_body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "row"], ["acc_out"], name="scan/add"),
         helper.make_node("Identity", ["acc_out"], ["cum"], name="scan/id")],
        "scan_body",
        [vi("acc_in", F, [3]), vi("row", F, [3])],
        [vi("acc_out", F, [3]), vi("cum", F, [3])])

    nodes = [
        helper.make_node("Mul", ["x", "two"], ["t"], name="double"),
        helper.make_node("If", ["cond"], ["if_out"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "", "if_out"], ["loop_final", "loop_scan"], name="loop", body=loop_body),
        helper.make_node("Scan", ["acc0", "loop_scan"], ["scan_final", "scan_cum"], name="scan",
                         body=scan_body, num_scan_inputs=1),
    ]
    g = helper.make_graph(
        nodes, "control_flow",
        [vi("x", F, [3]), vi("cond", B, []), vi("trip", I, [])],
        [vi("if_out", F, [3]), vi("loop_final", F, [3]), vi("loop_scan", F, ["M", 3]),
         vi("scan_final", F, [3]), vi("scan_cum", F, ["M", 3])],
        initializer=[init("two", np.array([2.0], np.float32)), init("acc0", np.zeros(3, np.float32))])
    m = make_model(g, doc_string="If (then branch reads outer 't'), Loop (carried value + scan output), Scan.")
    check(m)
    save_model(m, path("control_flow.onnx"))

    feeds = {"x": np.array([1.0, -2.0, 3.0], np.float32), "cond": np.array(True), "trip": np.array(4, np.int64)}
    out = ort_run(path("control_flow.onnx"), feeds)
    # numpy reference
    x = feeds["x"]
    v = np.maximum(2 * x + 1, 0)
    sq = []
    for i in range(4):
        v = v + x * i
        sq.append(v * v)
    sq = np.stack(sq)
    assert np.allclose(out["if_out"], np.maximum(2 * x + 1, 0))
    assert np.allclose(out["loop_final"], v) and np.allclose(out["loop_scan"], sq)
    assert np.allclose(out["scan_cum"], np.cumsum(sq, 0)) and np.allclose(out["scan_final"], sq.sum(0))
    savez(path("control_flow_data.npz"), **feeds)
    savez(path("control_flow_ref.npz"), **out)
    # else branch, one iteration (onnxruntime 1.32 fails a Scan over a 0-length axis, so trip=0 is left out)
    feeds2 = dict(feeds, cond=np.array(False), trip=np.array(1, np.int64))
    out2 = ort_run(path("control_flow.onnx"), feeds2)
    e = -(x - np.array([0.5, 1.0, 1.5], np.float32))
    assert np.allclose(out2["if_out"], e)
    assert np.allclose(out2["loop_scan"], (e * e)[None]), out2["loop_scan"]
    savez(path("control_flow_data_else.npz"), **feeds2)
    savez(path("control_flow_ref_else.npz"), **out2)


# --------------------------------------------------------------------------
# 4. lossless: every field of onnx.proto, unknown fields
# --------------------------------------------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_tag(field, wire):
    return varint((field << 3) | wire)


# Unknown fields appended by hand (protobuf allows a field to appear anywhere;
# a parser keeps fields it does not know and writes them back after the known ones).
UNK_MODEL = pb_tag(1000, 0) + varint(1234567)                            # ModelProto: field 1000, varint
UNK_NODE = pb_tag(1000, 0) + varint(42)                                   # NodeProto: field 1000, varint
UNK_GRAPH = pb_tag(1001, 2) + varint(5) + b"hello"                        # GraphProto: field 1001, bytes
UNK_TENSOR = pb_tag(1002, 5) + struct.pack("<I", 0xDEADBEEF)              # TensorProto: field 1002, fixed32
UNK_ATTR = pb_tag(1003, 1) + struct.pack("<Q", 0x0123456789ABCDEF)       # AttributeProto: field 1003, fixed64


def with_unknown(msg, extra):
    out = type(msg)()
    out.ParseFromString(msg.SerializeToString() + extra)
    return out


def kv(d):
    return [onnx.StringStringEntryProto(key=k, value=v) for k, v in d.items()]


def tensor_each_storage():
    """Tensors that use every data field and many data types."""
    T = TensorProto
    ts = []

    def t(name, dt, dims, **fields):
        x = T(name=name, data_type=dt, dims=dims, doc_string=f"{name}: {T.DataType.Name(dt)}")
        for k, v in fields.items():
            if k == "raw_data":
                x.raw_data = v
            else:
                getattr(x, k).extend(v)
        ts.append(x)
        return x

    t("f32_float_data", T.FLOAT, [2, 2], float_data=[1.0, -2.5, 3.25, 0.0])
    t("f32_raw", T.FLOAT, [3], raw_data=np.array([1, 2, 3], "<f4").tobytes())
    t("c64_float_data", T.COMPLEX64, [2], float_data=[1.0, 2.0, -3.0, 4.0])
    t("i32_int32_data", T.INT32, [3], int32_data=[-1, 0, 2147483647])
    t("i16_int32_data", T.INT16, [2], int32_data=[-32768, 32767])
    t("i8_int32_data", T.INT8, [2], int32_data=[-128, 127])
    t("u8_int32_data", T.UINT8, [2], int32_data=[0, 255])
    t("u16_int32_data", T.UINT16, [2], int32_data=[0, 65535])
    t("bool_int32_data", T.BOOL, [3], int32_data=[1, 0, 1])
    t("f16_int32_data", T.FLOAT16, [2], int32_data=[0x3C00, 0xC000])       # 1.0, -2.0
    t("bf16_int32_data", T.BFLOAT16, [2], int32_data=[0x3F80, 0x4040])     # 1.0, 3.0
    t("f8e4m3fn_int32_data", T.FLOAT8E4M3FN, [2], int32_data=[0x38, 0xC0])
    t("f8e5m2_int32_data", T.FLOAT8E5M2, [2], int32_data=[0x3C, 0xC0])
    t("i4_int32_data", T.INT4, [3], int32_data=[0x7F, 0x08])                # packed: 2 per byte
    t("u4_int32_data", T.UINT4, [2], int32_data=[0x21])
    t("i64_int64_data", T.INT64, [3], int64_data=[-(2 ** 63), 0, 2 ** 63 - 1])
    t("str_string_data", T.STRING, [3], string_data=[b"alpha", b"", b"\xff\x00binary"])
    t("f64_double_data", T.DOUBLE, [2], double_data=[math.pi, -1e300])
    t("c128_double_data", T.COMPLEX128, [1], double_data=[1.0, -1.0])
    t("u32_uint64_data", T.UINT32, [2], uint64_data=[0, 4294967295])
    t("u64_uint64_data", T.UINT64, [2], uint64_data=[0, 2 ** 64 - 1])
    t("u64_raw", T.UINT64, [1], raw_data=struct.pack("<Q", 2 ** 64 - 1))
    t("scalar_f32", T.FLOAT, [], float_data=[7.0])
    t("empty_f32", T.FLOAT, [0, 3])
    return ts


def make_lossless():
    T = TensorProto
    vi = helper.make_tensor_value_info

    # --- model-local function: ScaleAdd(X, B; alpha) = X * alpha + B -------
    fn = onnx.FunctionProto()
    fn.name = "ScaleAdd"
    fn.domain = "pare.fn"
    fn.overload = ""
    fn.input.extend(["X", "B"])
    fn.output.extend(["Y"])
    fn.attribute.extend(["unused_attr"])
    fn.attribute_proto.append(helper.make_attribute("alpha", 1.0, attr_type=onnx.AttributeProto.FLOAT,
                                                    doc_string="scale, default 1"))
    c = helper.make_node("Constant", [], ["alpha_t"], name="fn_alpha", doc_string="alpha as a tensor")
    a = onnx.AttributeProto(name="value_float", ref_attr_name="alpha", type=onnx.AttributeProto.FLOAT,
                            doc_string="bound to the caller's alpha")
    c.attribute.append(a)
    fn.node.extend([
        c,
        helper.make_node("Mul", ["X", "alpha_t"], ["XA"], name="fn_mul"),
        helper.make_node("Add", ["XA", "B"], ["Y"], name="fn_add"),
    ])
    fn.doc_string = "model-local function"
    fn.opset_import.extend([helper.make_opsetid("", OPSET)])
    fn.value_info.extend([vi("XA", T.FLOAT, ["N", 4])])
    fn.metadata_props.extend(kv({"fn_key": "fn_value"}))

    # --- the custom node with every attribute type ------------------------
    sub = helper.make_graph([helper.make_node("Identity", ["sg_in"], ["sg_out"], name="sg_id")], "attr_graph",
                            [vi("sg_in", T.FLOAT, [1])], [vi("sg_out", T.FLOAT, [1])], doc_string="graph attribute")
    sub2 = helper.make_graph([helper.make_node("Neg", ["sg2_in"], ["sg2_out"], name="sg2_neg")], "attr_graph2",
                             [vi("sg2_in", T.FLOAT, [2])], [vi("sg2_out", T.FLOAT, [2])])
    sp = helper.make_sparse_tensor(helper.make_tensor("sp_vals", T.FLOAT, [2], [1.5, -2.5]),
                                   helper.make_tensor("sp_idx", T.INT64, [2], [1, 7]), [3, 4])
    sp2 = helper.make_sparse_tensor(helper.make_tensor("sp2_vals", T.INT32, [1], [9]),
                                    helper.make_tensor("sp2_idx", T.INT64, [1, 2], [0, 1]), [2, 2])
    tps = [
        helper.make_tensor_type_proto(T.FLOAT, ["a", 3]),
        helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.INT64, [None])),
        helper.make_map_type_proto(T.STRING, helper.make_tensor_type_proto(T.FLOAT, [])),
        helper.make_optional_type_proto(helper.make_tensor_type_proto(T.UINT8, [2])),
        helper.make_sparse_tensor_type_proto(T.FLOAT, [3, 4]),
    ]
    opq = onnx.TypeProto(denotation="OPAQUE_THING")
    opq.opaque_type.domain = "pare.test"
    opq.opaque_type.name = "Blob"
    tps.append(opq)
    storage = tensor_each_storage()
    attrs = [
        helper.make_attribute("a_float", 0.25, doc_string="FLOAT"),
        helper.make_attribute("a_int", -7),
        helper.make_attribute("a_string", b"s\x00tr"),
        helper.make_attribute("a_tensor", with_unknown(storage[0], UNK_TENSOR)),
        helper.make_attribute("a_graph", sub),
        helper.make_attribute("a_sparse", sp),
        helper.make_attribute("a_type", tps[0]),
        helper.make_attribute("a_floats", [1.0, -0.5, float("inf")]),
        helper.make_attribute("a_ints", [1, -2, 2 ** 62]),
        helper.make_attribute("a_strings", [b"x", b"", b"yz"]),
        helper.make_attribute("a_tensors", storage[1:]),
        helper.make_attribute("a_graphs", [sub2]),
        helper.make_attribute("a_sparses", [sp2]),
        helper.make_attribute("a_types", tps),
        helper.make_attribute("a_empty_ints", [], attr_type=onnx.AttributeProto.INTS),
    ]
    attrs[1] = with_unknown(attrs[1], UNK_ATTR)
    custom = helper.make_node("Everything", ["x", "w_sparse"], ["custom_out"], name="custom", domain="pare.test",
                              doc_string="custom-domain node: all attribute types")
    custom.attribute.extend(attrs)
    custom.overload = "v1"
    custom.metadata_props.extend(kv({"node_key": "node_value"}))
    dc = custom.device_configurations.add()
    dc.configuration_id = "two_gpus"
    dc.pipeline_stage = 1
    ss = dc.sharding_spec.add()
    ss.tensor_name = "x"
    ss.device.extend([0, 1])
    e = ss.index_to_device_group_map.add()
    e.key = 0
    e.value.extend([0, 1])
    sd = ss.sharded_dim.add()
    sd.axis = 0
    s1 = sd.simple_sharding.add()
    s1.dim_value = 4
    s1.num_shards = 2
    s2 = sd.simple_sharding.add()
    s2.dim_param = "N"
    s2.num_shards = 2
    custom = with_unknown(custom, UNK_NODE)

    call = helper.make_node("ScaleAdd", ["x", "bias"], ["scaled"], name="call_fn", domain="pare.fn", alpha=2.0,
                            doc_string="calls the model-local function")
    relu = helper.make_node("Relu", ["scaled"], ["y"], name="relu", doc_string="plain op")

    # --- initializers in several storages ---------------------------------
    bias = helper.make_tensor("bias", T.FLOAT, [4], [0.5, -0.5, 1.0, -1.0])   # float_data
    bias.doc_string = "float_data storage"
    bias.metadata_props.extend(kv({"tensor_key": "tensor_value"}))
    bias.data_location = T.DEFAULT  # explicitly present (proto2), value 0; external data: see mlp_external/
    seg = helper.make_tensor("segmented", T.INT32, [2], [3, 4])
    seg.segment.begin = 0
    seg.segment.end = 2
    inits = [bias, seg,
             helper.make_tensor("i64", T.INT64, [2], [1, -1]),
             helper.make_tensor("names", T.STRING, [2], [b"a", b"b"]),
             helper.make_tensor("raw", T.FLOAT, [2], np.array([1.0, 2.0], "<f4").tobytes(), raw=True),
             helper.make_tensor("dbl", T.DOUBLE, [1], [2.5]),
             helper.make_tensor("u64", T.UINT64, [1], [2 ** 63])]
    sparse_init = helper.make_sparse_tensor(
        helper.make_tensor("w_sparse", T.FLOAT, [3], [1.0, 2.0, 3.0]),
        helper.make_tensor("w_sparse_idx", T.INT64, [3, 2], [0, 0, 1, 2, 3, 3]), [4, 4])

    xin = vi("x", T.FLOAT, ["N", 4])
    xin.type.denotation = "TENSOR"
    xin.type.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    xin.type.tensor_type.shape.dim[1].denotation = "DATA_FEATURE"
    xin.doc_string = "graph input"
    xin.metadata_props.extend(kv({"vi_key": "vi_value"}))
    yout = vi("y", T.FLOAT, ["N", 4])
    yout.doc_string = "graph output"
    cout = vi("custom_out", T.FLOAT, [])
    vinfo = vi("scaled", T.FLOAT, ["N", 4])
    vinfo.doc_string = "value_info entry"
    qa = onnx.TensorAnnotation(tensor_name="bias")
    qa.quant_parameter_tensor_names.extend(kv({"SCALE_TENSOR": "i64", "ZERO_POINT_TENSOR": "raw"}))

    g = helper.make_graph([call, relu, custom], "lossless", [xin], [yout, cout], initializer=inits,
                          doc_string="main graph", value_info=[vinfo], sparse_initializer=[sparse_init])
    g.quantization_annotation.append(qa)
    g.metadata_props.extend(kv({"graph_key": "graph_value"}))
    g = with_unknown(g, UNK_GRAPH)

    # --- training info: init graph sets 'bias', algorithm updates it -------
    tinit = helper.make_graph(
        [helper.make_node("Constant", [], ["bias_init"], name="ti_const",
                          value=helper.make_tensor("ti_v", T.FLOAT, [4], [0.0, 0.0, 0.0, 0.0]))],
        "training_init", [], [vi("bias_init", T.FLOAT, [4])], doc_string="initialization graph")
    talg = helper.make_graph(
        [helper.make_node("Mul", ["bias", "lr"], ["step"], name="ta_mul"),
         helper.make_node("Sub", ["bias", "step"], ["bias_new"], name="ta_sub")],
        "training_algorithm", [], [vi("bias_new", T.FLOAT, [4])],
        initializer=[helper.make_tensor("lr", T.FLOAT, [], [0.01])], doc_string="algorithm graph")
    ti = onnx.TrainingInfoProto(initialization=tinit, algorithm=talg)
    ti.initialization_binding.extend(kv({"bias": "bias_init"}))
    ti.update_binding.extend(kv({"bias": "bias_new"}))

    m = make_model(g, opsets=[helper.make_opsetid("", OPSET), helper.make_opsetid("pare.fn", 1),
                              helper.make_opsetid("pare.test", 3)],
                   ir=11, doc_string="exercises every field of onnx.proto", domain="org.pare.test",
                   model_version=42, functions=[fn])
    m.metadata_props.extend(kv({"author": "pare", "license": "MIT", "empty": ""}))
    m.training_info.append(ti)
    cfg = m.configuration.add()
    cfg.name = "two_gpus"
    cfg.num_devices = 2
    cfg.device.extend(["cuda:0", "cuda:1"])

    data = m.SerializeToString(deterministic=True) + UNK_MODEL
    write_bytes(path("lossless.onnx"), data)

    # verify: coverage of every field, unknown fields survive a parse
    back = onnx.load_model_from_string(data)
    assert back.SerializeToString(deterministic=True) == data
    missing = coverage(back)
    for u in (UNK_MODEL, UNK_NODE, UNK_GRAPH, UNK_TENSOR, UNK_ATTR):
        assert u in data, u
    SUMMARY.append("lossless: fields never set: " + (", ".join(missing) if missing else "none"))
    try:
        check(path("lossless.onnx"))
        SUMMARY.append("lossless: onnx.checker full_check passes")
    except Exception as ex:  # noqa: BLE001
        SUMMARY.append("lossless: onnx.checker refuses: " + str(ex).splitlines()[0][:200])


def coverage(model):
    """Names of fields of onnx.proto messages never set anywhere in model."""
    seen = set()
    allf = set()

    def all_fields(d, done):
        if d.full_name in done:
            return
        done.add(d.full_name)
        for f in d.fields:
            allf.add(f"{d.name}.{f.name}")
            if f.message_type:
                all_fields(f.message_type, done)

    def walk(msg):
        for f, v in msg.ListFields():
            seen.add(f"{msg.DESCRIPTOR.name}.{f.name}")
            if f.message_type:
                for x in (v if f.is_repeated else [v]):
                    walk(x)
    all_fields(model.DESCRIPTOR, set())
    walk(model)
    return sorted(allf - seen)


# --------------------------------------------------------------------------
# 5. external data MLP
# --------------------------------------------------------------------------

def make_mlp_external():
    rng = np.random.default_rng(11)
    w1 = (rng.standard_normal((32, 16)) / 4).astype(np.float32)
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((4, 32)) / math.sqrt(32)).astype(np.float32)
    b2 = (rng.standard_normal(4) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
         helper.make_node("Relu", ["h"], ["hr"], name="relu"),
         helper.make_node("Gemm", ["hr", "fc2.weight", "fc2.bias"], ["output"], name="fc2", transB=1)],
        "mlp_external",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
        initializer=[init("fc1.weight", w1), init("fc1.bias", b1), init("fc2.weight", w2), init("fc2.bias", b2)])
    m = make_model(g, doc_string="MLP 16-32-4 with all weights in weights.bin")
    check(m)
    d = path("mlp_external")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    onnx.save_model(m, os.path.join(d, "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    check(os.path.join(d, "model.onnx"))
    x = rng.standard_normal((8, 16)).astype(np.float32)
    out = ort_run(os.path.join(d, "model.onnx"), {"input": x})["output"]
    ref = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    assert np.abs(out - ref).max() < 1e-4
    savez(path("mlp_external_data.npz"), input=x)
    savez(path("mlp_external_ref.npz"), output=out)


# --------------------------------------------------------------------------
# 6. bad inputs
# --------------------------------------------------------------------------

def tiny_graph_model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits))
    return make_model(g)


def ext_model(location, offset, length):
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = w.external_data.add()
        e.key = k
        e.value = v
    vi = helper.make_tensor_value_info
    return tiny_graph_model([helper.make_node("Add", ["x", "W"], ["y"], name="add")],
                            [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.FLOAT, [4])], [w])


def make_bad(skip_bomb):
    bad = path("bad")
    # keep bomb.onnx.gz when skipping its (slow) regeneration
    keep = None
    if skip_bomb and os.path.exists(os.path.join(bad, "bomb.onnx.gz")):
        keep = open(os.path.join(bad, "bomb.onnx.gz"), "rb").read()
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(bad)
    F = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    rng = np.random.default_rng(1234)

    cnn = open(path("cnn_digits.onnx"), "rb").read()
    write_bytes(os.path.join(bad, "truncated.onnx"), cnn[:len(cnn) // 2])
    write_bytes(os.path.join(bad, "truncated.onnx.gz"), gzip_bytes(cnn)[:len(gzip_bytes(cnn)) // 2])
    # random bytes: pick the first seed whose bytes protobuf refuses (so a loader must fail)
    for seed in range(1000):
        rnd = np.random.default_rng(seed).integers(0, 256, 1000, dtype=np.uint8).tobytes()
        try:
            onnx.ModelProto.FromString(rnd)
        except Exception:  # noqa: BLE001
            break
    write_bytes(os.path.join(bad, "random.onnx"), rnd)
    SUMMARY.append(f"bad/random.onnx: numpy default_rng({seed}).integers(0,256,1000)")
    write_bytes(os.path.join(bad, "empty.onnx"), b"")
    # gzip header (magic, deflate, no flags, mtime 0, xfl 0, OS unknown), then garbage
    hdr = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    for seed in range(1000):
        junk = np.random.default_rng(10_000 + seed).integers(0, 256, 200, dtype=np.uint8).tobytes()
        try:
            gzip.decompress(hdr + junk)
        except Exception:  # noqa: BLE001
            break
    write_bytes(os.path.join(bad, "bad_gzip.onnx.gz"), hdr + junk)

    if keep is not None:
        write_bytes(os.path.join(bad, "bomb.onnx.gz"), keep)
    else:
        # 1 GiB of zeros, gzip-wrapped deflate, streamed
        co = zlib.compressobj(9, zlib.DEFLATED, 31, 9)
        chunk = bytes(1 << 20)
        with open(os.path.join(bad, "bomb.onnx.gz"), "wb") as f:
            for _ in range(1024):
                f.write(co.compress(chunk))
            f.write(co.flush())

    # graph faults
    save_model(tiny_graph_model(
        [helper.make_node("Add", ["x", "b"], ["a"], name="A"), helper.make_node("Relu", ["a"], ["b"], name="B")],
        [vi("x", F, [2])], [vi("b", F, [2])]), os.path.join(bad, "cycle.onnx"))
    save_model(tiny_graph_model(
        [helper.make_node("Add", ["x", "nowhere"], ["y"], name="A")],
        [vi("x", F, [2])], [vi("y", F, [2])]), os.path.join(bad, "undefined_input.onnx"))
    save_model(tiny_graph_model(
        [helper.make_node("Relu", ["x"], ["y"], name="A"), helper.make_node("Neg", ["x"], ["y"], name="B")],
        [vi("x", F, [2])], [vi("y", F, [2])]), os.path.join(bad, "two_producers.onnx"))
    big = TensorProto(name="W", data_type=F, dims=[2 ** 40, 2 ** 40, 2 ** 40], raw_data=b"")
    save_model(tiny_graph_model([helper.make_node("Add", ["x", "W"], ["y"], name="A")],
                                [vi("x", F, [1])], [vi("y", F, None)], [big]),
               os.path.join(bad, "dims_overflow.onnx"))
    short = TensorProto(name="W", data_type=F, dims=[4], raw_data=np.ones(3, "<f4").tobytes())
    save_model(tiny_graph_model([helper.make_node("Add", ["x", "W"], ["y"], name="A")],
                                [vi("x", F, [4])], [vi("y", F, [4])], [short]),
               os.path.join(bad, "wrong_dtype_len.onnx"))

    # external data faults; bad/secret.bin exists so a path escape would succeed if allowed
    secret = np.arange(64, dtype="<f4").tobytes()
    write_bytes(os.path.join(bad, "secret.bin"), secret)
    w16 = np.arange(4, dtype="<f4").tobytes()
    cases = {
        "ext_negative": ("weights.bin", -5, 16, True),
        "ext_out_of_file": ("weights.bin", 8, 16, True),
        "ext_traversal": ("../secret.bin", 0, 16, False),
        "ext_absolute": ("/etc/passwd", 0, 16, False),
        "ext_symlink": ("weights.bin", 0, 16, False),
        "ext_missing": ("missing.bin", 0, 16, False),
    }
    for name, (loc, off, ln, write_w) in cases.items():
        d = os.path.join(bad, name)
        os.makedirs(d)
        save_model(ext_model(loc, off, ln), os.path.join(d, "model.onnx"))
        if write_w:
            write_bytes(os.path.join(d, "weights.bin"), w16)
    os.symlink("../secret.bin", os.path.join(bad, "ext_symlink", "weights.bin"))

    # record how onnx and onnxruntime treat each
    import onnxruntime as ort
    ort.set_default_logger_severity(4)
    rows = []
    for root, dirs, files in os.walk(bad):
        dirs.sort()
        for fn_ in sorted(files):
            p = os.path.join(root, fn_)
            if fn_.endswith(".bin"):
                continue
            rel = os.path.relpath(p, OUT)
            res = []
            for label, fnc in (("onnx.load", lambda q: onnx.load(q)),
                               ("checker", lambda q: check(q)),
                               ("ort", lambda q: ort.InferenceSession(q, providers=["CPUExecutionProvider"]))):
                if p.endswith(".gz") and label != "onnx.load":
                    res.append(f"{label}: n/a")
                    continue
                if p.endswith(".gz"):
                    try:
                        with gzip.open(p, "rb") as gf:
                            data = gf.read(64 << 20)
                            if gf.read(1):
                                raise ValueError("more than 64 MiB once decompressed")
                        onnx.load_model_from_string(data)
                        res.append(f"{label}(gunzip): ok")
                    except Exception as ex:  # noqa: BLE001
                        res.append(f"{label}(gunzip): FAIL ({type(ex).__name__})")
                    continue
                try:
                    fnc(p)
                    res.append(f"{label}: ok")
                except Exception as ex:  # noqa: BLE001
                    res.append(f"{label}: FAIL ({type(ex).__name__})")
            rows.append(f"{rel}: " + "; ".join(res))
    SUMMARY.append("bad/ cases:\n    " + "\n    ".join(rows))


# --------------------------------------------------------------------------

def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT, help="output folder (default: this script's folder)")
    ap.add_argument("--skip-bomb", action="store_true", help="keep the existing bad/bomb.onnx.gz (slow to make)")
    a = ap.parse_args()
    OUT = os.path.abspath(a.out)
    os.makedirs(OUT, exist_ok=True)
    print(f"onnx {onnx.__version__}, numpy {np.__version__}", file=sys.stderr)
    print("digits CNN (training in numpy)...", file=sys.stderr)
    make_cnn()
    print("transformers...", file=sys.stderr)
    make_transformers()
    print("control flow...", file=sys.stderr)
    make_control_flow()
    print("lossless...", file=sys.stderr)
    make_lossless()
    print("external-data MLP...", file=sys.stderr)
    make_mlp_external()
    print("bad inputs...", file=sys.stderr)
    make_bad(a.skip_bomb)
    for line in SUMMARY:
        print(line)


if __name__ == "__main__":
    main()
