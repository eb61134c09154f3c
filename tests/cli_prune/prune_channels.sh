#!/bin/sh
# pare-prune --structured channels: --ratio, --layer-ratio, --norm,
# --bn-recalibrate; the result is smaller, valid, and runs in pare-run.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
need "$cnn"
RUN=${PARE_RUN:?PARE_RUN}
INSPECT=${PARE_INSPECT:?PARE_INSPECT}

# parameters of a model as pare-inspect counts them (not pare-prune's report)
params_of() {
    "$INSPECT" "$1" | sed -n 's/^parameters: \([0-9,]*\) in .*/\1/p' | tr -d ,
}
# the quality bar of structured pruning: --ratio 0.3 removes at least 25% of
# the parameters, counted in the written model
params_bar() {
    check
    b=$(params_of "$cnn")
    a=$(params_of "$1")
    [ -n "$b" ] && [ -n "$a" ] || fail "no parameter count for $1"
    [ $((a * 100)) -le $((b * 75)) ] || fail "$2: params $b -> $a, less than 25% fewer"
}

# 30%: conv1 32 -> 16, conv2 64 -> 48 (kept counts of 32+ channels are
# multiples of 16 by default: 22 -> 16, 45 -> 48), the residual pair
# conv3/proj pruned together, fc's outputs kept (graph output)
run "$PROG" --structured channels --ratio 0.3 -o "$tmp/c.onnx" "$cnn"
expect_rc 0
expect_out "method: structured channels l1"
expect_out "params: 60906 -> 30986"
expect_out_re '^conv1 +Conv .* 32 -> 16 '
expect_out_re '^conv2 +Conv .* 64 -> 48 '
expect_out_re '^conv3 +Conv .* 64 -> 48 '
expect_out_re '^proj +Conv .* 64 -> 48 '
expect_out "'logits' is a graph output"
params_bar "$tmp/c.onnx" "default"
[ "$(params_of "$tmp/c.onnx")" = 30986 ] || fail "pare-inspect and the report disagree"
run "$INSPECT" --check "$tmp/c.onnx"
expect_rc 0
run "$RUN" -n 1 --inputs "$TESTDATA/digits_val.npz" "$tmp/c.onnx"
expect_rc 0

# --channel-multiple: 16 is the default (the same file); 8 rounds 22 -> 24
# and 45 -> 48; 1 keeps the exact counts. The params bar holds for each.
run "$PROG" --structured channels --ratio 0.3 --channel-multiple 16 -o "$tmp/m16.onnx" "$cnn"
expect_rc 0
expect_out_re '^conv1 +Conv .* 32 -> 16 '
expect_out_re '^conv2 +Conv .* 64 -> 48 '
cmp -s "$tmp/c.onnx" "$tmp/m16.onnx" || fail "--channel-multiple 16 is not the default"
check
run "$PROG" --structured channels --ratio 0.3 --channel-multiple 8 -o "$tmp/m8.onnx" "$cnn"
expect_rc 0
expect_out "params: 60906 -> 34546"
expect_out_re '^conv1 +Conv .* 32 -> 24 '
expect_out_re '^conv2 +Conv .* 64 -> 48 '
params_bar "$tmp/m8.onnx" "--channel-multiple 8"
run "$PROG" --structured channels --ratio 0.3 --channel-multiple 1 -o "$tmp/m1.onnx" "$cnn"
expect_rc 0
expect_out_re '^conv1 +Conv .* 32 -> 22 '
expect_out_re '^conv2 +Conv .* 64 -> 45 '
params_bar "$tmp/m1.onnx" "--channel-multiple 1"
run "$INSPECT" --check "$tmp/m1.onnx"
expect_rc 0
# layers under max(32, 2M) channels keep the exact count: 64 < 2 x 48
run "$PROG" --structured channels --ratio 0.3 --channel-multiple 48 -o "$tmp/m48.onnx" "$cnn"
expect_rc 0
expect_out_re '^conv1 +Conv .* 32 -> 22 '
expect_out_re '^conv2 +Conv .* 64 -> 45 '
run "$PROG" --channel-multiple 16 --sparsity 0.5 -o "$tmp/x.onnx" "$cnn"
expect_rc 2

# --layer-ratio overrides one layer; --norm l2 ranks by the L2 norm (the
# same counts, other channels may go); JSON report gives channels per layer
run "$PROG" --structured channels --ratio 0.3 --layer-ratio conv2=0.5 --norm l2 --json \
    -o "$tmp/l2.onnx" "$cnn"
expect_rc 0
expect_out '"method": "structured channels l2"'
expect_out '"channels_before": 64, "channels_after": 32'
expect_out '"channels_before": 32, "channels_after": 16'
cmp -s "$tmp/c.onnx" "$tmp/l2.onnx" && fail "--layer-ratio/--norm changed nothing"
check

# --bn-recalibrate: same shapes, other BatchNorm statistics
run "$PROG" --structured channels --ratio 0.3 --bn-recalibrate "$TESTDATA/digits_train.npz" \
    --calib-samples 256 -o "$tmp/bn.onnx" "$cnn"
expect_rc 0
expect_out "params: 60906 -> 30986"
cmp -s "$tmp/c.onnx" "$tmp/bn.onnx" && fail "--bn-recalibrate changed nothing"
check
run "$PROG" --structured channels --ratio 0.3 --bn-recalibrate "$tmp/none.npz" -o "$tmp/x.onnx" "$cnn"
expect_rc 1
expect_one_error "$cnn"
expect_err "$tmp/none.npz"
[ ! -e "$tmp/x.onnx" ] || fail "output written after a failed recalibration"
check

# a layer ratio naming no node is a usage error
run "$PROG" --structured channels --layer-ratio nosuch=0.3 -o "$tmp/x.onnx" "$cnn"
expect_rc 2
expect_err "nosuch"
finish
