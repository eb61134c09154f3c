#!/bin/sh
# pare-run --reference: metrics, labels, per-tensor, gates and exit 3.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
val=$TESTDATA/digits_val.npz
labels=$TESTDATA/digits_val_labels.npy
here=$(cd "$(dirname "$0")" && pwd)
noisy=$here/data/cnn_noisy.onnx
need "$cnn" "$val" "$labels" "$noisy"

# a model against itself: identical outputs, every accuracy gate holds
run "$PROG" --reference "$cnn" --inputs "$val" --labels "$labels" --batch 64 -n 2 \
    --atol 0 --min-cosine 1 --min-top1-agreement 1 --max-accuracy-drop 0 --max-size-ratio 1 "$cnn"
expect_rc 0
expect_out_re "^logits +0.000e\+00 +0.000e\+00 +0.000e\+00 +1.000000 +inf +1.0000 +1.0000 +0 +0.9917/0.9917$"
expect_out "speed-up"
expect_err_empty

# a perturbed model: close but not equal
run "$PROG" --reference "$cnn" --inputs "$val" --labels "$labels" --batch 64 -n 2 --json "$noisy"
expect_rc 0
if command -v python3 >/dev/null 2>&1; then
    check
    python3 - "$tmp/out" <<'PY' || fail "metrics of the perturbed model are not plausible"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["outputs"][0]
assert o["name"] == "logits", o
assert 0.9 < o["cosine"] < 1.0, o
assert o["max_abs"] > 0 and o["rel_l2"] > 0, o
assert 0.9 <= o["top1_agreement"] <= 1.0, o
assert abs(o["reference_accuracy"] - 357 / 360) < 1e-9, o
assert d["gates_failed"] == 0
PY
fi

# gates fail with exit 3 and say which
run "$PROG" --reference "$cnn" --inputs "$val" --batch 64 -n 2 --min-cosine 0.99999 "$noisy"
expect_rc 3
expect_err "gate failed: output 'logits': cosine"
expect_err "< --min-cosine 0.99999"
run "$PROG" --reference "$cnn" --inputs "$val" --batch 64 -n 2 --atol 1e-6 "$noisy"
expect_rc 3
expect_err "elements outside atol"
run "$PROG" --reference "$cnn" -n 2 --min-speedup 1000 "$cnn"
expect_rc 3
expect_err "gate failed: speed-up"
run "$PROG" --reference "$cnn" -n 2 --max-size-ratio 0.5 "$cnn"
expect_rc 3
expect_err "size ratio 1.000 > --max-size-ratio 0.5"
run "$PROG" -n 2 --max-p99-ms 0.000001 "$cnn"
expect_rc 3
expect_err "p99 latency"
run "$PROG" --reference "$cnn" --inputs "$val" --labels "$labels" --batch 64 -n 2 \
    --max-accuracy-drop 0 --min-top1-agreement 0.9999 "$noisy"
expect_rc 3
expect_err "top-1 agreement"

# per-tensor: the first diverging tensor is the first Conv's output
run "$PROG" --reference "$cnn" --inputs "$val" --batch 64 -n 1 --per-tensor \
    --tensor-min-cosine 0.999999 "$noisy"
expect_rc 0
expect_out_re "per-tensor: [0-9]+ shared tensors compared; first divergent: '[^']+' \(Conv\)"
run "$PROG" --reference "$cnn" --inputs "$val" --batch 64 -n 1 --per-tensor "$cnn"
expect_rc 0
expect_out "none below cosine"
finish
