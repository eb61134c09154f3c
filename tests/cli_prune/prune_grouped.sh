#!/bin/sh
# pare-prune --structured channels through grouped Convs and channel
# shuffles: light_shufflenet (PARE_LIGHT_MODELS). Its weights are
# ConstantOfShape placeholders (all zero: --cleanup would fold them into a
# few shared constants), so PARE_PYTHON first materializes them as seeded
# random initializers (tests/interop/channels_check.py). Every shuffle unit's
# bottleneck (grouped 1x1 -> shuffle -> depthwise -> grouped 1x1) shrinks
# with the group attributes kept; the trunk, a Concat read by grouped convs,
# stays dense with its reason; the result is valid and runs in pare-run.
. "$(dirname "$0")/../cli/lib.sh"
src=${PARE_LIGHT_MODELS:-/nonexistent}/light_shufflenet.onnx
need "$src"
RUN=${PARE_RUN:?PARE_RUN}
INSPECT=${PARE_INSPECT:?PARE_INSPECT}
py=${PARE_PYTHON:-}
if [ -z "$py" ] || ! "$py" -c 'import onnx, numpy' 2>/dev/null; then
    echo "SKIP: PARE_PYTHON with onnx and numpy not available"
    exit 77
fi
sn=$tmp/shufflenet.onnx
PYTHONPATH="$(dirname "$0")/../interop" "$py" -c \
    'import sys, channels_check as c; c.materialize(sys.argv[1], sys.argv[2])' "$src" "$sn" ||
    fail "materializing $src"

# 30%: each group of 4 keeps 20 of 28, 24 of 34, 48 of 68, 96 of 136 (per
# group a multiple of 4, so totals are multiples of 16)
run "$PROG" --structured channels --ratio 0.3 --cleanup -o "$tmp/s.onnx" "$sn"
expect_rc 0
expect_out "method: structured channels l1"
expect_out_re '^n4 +Conv .* 112 -> 80 '
expect_out_re '^n10 +Conv .* 112 -> 80 '
expect_out_re '^n17 +Conv .* 136 -> 96 '
expect_out_re '^n66 +Conv .* 272 -> 192 '
expect_out_re '^n187 +Conv .* 544 -> 384 '
expect_out "consumer 'n17' (Conv) is grouped (group 4) across the channels of several layers"
[ "$(grep -c ' -> ' "$tmp/out" | tr -d ' ')" -ge 33 ] || fail "fewer than 16 shuffle units pruned"
check
run "$INSPECT" --check "$tmp/s.onnx"
expect_rc 0
run "$RUN" -n 1 "$tmp/s.onnx"
expect_rc 0

# --layer-ratio on one grouped source: 112 -> 64, 16 per group (14 rounded
# so the total is a multiple of 16, the default --channel-multiple); with
# --channel-multiple 8 112 -> 56, 14 per group
run "$PROG" --structured channels --ratio 0.3 --layer-ratio n4=0.5 --cleanup -o "$tmp/l.onnx" "$sn"
expect_rc 0
expect_out_re '^n4 +Conv .* 112 -> 64 '
expect_out_re '^n17 +Conv .* 136 -> 96 '
run "$RUN" -n 1 "$tmp/l.onnx"
expect_rc 0
run "$PROG" --structured channels --ratio 0.3 --layer-ratio n4=0.5 --channel-multiple 8 --cleanup \
    -o "$tmp/l8.onnx" "$sn"
expect_rc 0
expect_out_re '^n4 +Conv .* 112 -> 56 '
run "$RUN" -n 1 "$tmp/l8.onnx"
expect_rc 0
finish
