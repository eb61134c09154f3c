#!/bin/sh
# Quality bars of pare-prune on testdata's trained CNN, measured with
# pare-run on the validation set (360 samples).
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
val=$TESTDATA/digits_val.npz
labels=$TESTDATA/digits_val_labels.npy
train=$TESTDATA/digits_train.npz
need "$cnn" "$val" "$labels" "$train"
RUN=${PARE_RUN:?PARE_RUN}
INSPECT=${PARE_INSPECT:?PARE_INSPECT}
cal="--calibrate $train --calib-samples 256"

gate() { # gate MODEL DROP: accuracy within DROP of the original
    run "$RUN" -n 1 --reference "$cnn" --inputs "$val" --labels "$labels" \
        --max-accuracy-drop "$2" "$1"
    expect_rc 0
}
rel_l2() { # rel_l2 MODEL: relative L2 error of the logits against the original
    "$RUN" -n 1 --json --reference "$cnn" --inputs "$val" "$1" |
        sed -n 's/.*"rel_l2": \([0-9.e+-]*\).*/\1/p' | head -1
}

# 50% unstructured, global threshold: magnitude (BatchNorm folded first, the
# default) and SparseGPT keep accuracy within 1 point
run "$PROG" --sparsity 0.5 --criterion sparsegpt $cal -o "$tmp/sg50.onnx" "$cnn"
expect_rc 0
gate "$tmp/sg50.onnx" 0.01
run "$PROG" --sparsity 0.5 -o "$tmp/m50.onnx" "$cnn"
expect_rc 0
gate "$tmp/m50.onnx" 0.01
# the default folded both BatchNormalization nodes; --keep-batchnorm keeps them
n=$("$INSPECT" --json "$tmp/m50.onnx" | grep -c '"BatchNormalization"')
[ "$n" -eq 0 ] || fail "BatchNormalization left after the default fold"
run "$PROG" --sparsity 0.5 --keep-batchnorm -o "$tmp/k50.onnx" "$cnn"
expect_rc 0
n=$("$INSPECT" --json "$tmp/k50.onnx" | grep -c '"BatchNormalization"')
[ "$n" -ge 1 ] || fail "--keep-batchnorm dropped the BatchNormalization nodes"

# 70%: SparseGPT's output error is lower than magnitude's
run "$PROG" --sparsity 0.7 --per-layer -o "$tmp/m70.onnx" "$cnn"
expect_rc 0
run "$PROG" --sparsity 0.7 --criterion sparsegpt $cal -o "$tmp/sg70.onnx" "$cnn"
expect_rc 0
m70=$(rel_l2 "$tmp/m70.onnx")
s70=$(rel_l2 "$tmp/sg70.onnx")
check
awk -v a="$s70" -v b="$m70" 'BEGIN { exit !(a > 0 && b > 0 && a < b) }' ||
    fail "sparsegpt rel L2 $s70 not below magnitude's $m70"
echo "rel L2 at 70%: magnitude $m70, sparsegpt $s70"

# 2:4 by Wanda: every pruned layer exactly half zero
run "$PROG" --pattern 2:4 --criterion wanda $cal --json -o "$tmp/w24.onnx" "$cnn"
expect_rc 0
check
n=$(grep -c '"sparsity": 0.5,' "$tmp/out")
[ "$n" -eq 3 ] || fail "2:4: $n layers at 0.5, expected 3"

# a 50%-sparse model's .onnx.gz is at most 0.6x the dense model's (the
# original, gzipped at the same level as pare writes)
"$INSPECT" --check "$cnn" >/dev/null || fail "original invalid"
gzip -6 -n -c "$cnn" >"$tmp/dense.onnx.gz"
run "$PROG" --sparsity 0.5 -o "$tmp/half.onnx.gz" "$cnn"
expect_rc 0
check
d=$(wc -c <"$tmp/dense.onnx.gz" | tr -d ' ')
h=$(wc -c <"$tmp/half.onnx.gz" | tr -d ' ')
awk -v h="$h" -v d="$d" 'BEGIN { exit !(h <= 0.6 * d) }' || fail "gzip $h > 0.6 x $d"

# sensitivity scan and the choice under a 1-point budget, confirmed by pare-run
run "$PROG" --sensitivity "$val" --labels "$labels" --max-accuracy-drop 0.01 --json \
    --report "$tmp/sens.json" -o "$tmp/auto.onnx" "$cnn"
expect_rc 0
check
grep -q '"metric": "accuracy"' "$tmp/sens.json" || fail "scan did not use accuracy"
grep -q '"chosen"' "$tmp/sens.json" || fail "no choice in the report"
gate "$tmp/auto.onnx" 0.01
finish
