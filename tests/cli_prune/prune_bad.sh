#!/bin/sh
# pare-prune on bad input: one line naming program, file and problem, exit 1,
# no partial output.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
need "$cnn"
out=$tmp/o.onnx

for f in truncated.onnx random.onnx empty.onnx bad_gzip.onnx.gz cycle.onnx; do
    run "$PROG" --sparsity 0.5 -o "$out" "$TESTDATA/bad/$f"
    expect_rc 1
    expect_one_error "$TESTDATA/bad/$f"
    check
    [ ! -e "$out" ] || fail "output written for $f"
done
# calibration data that does not fit: the expected signature is named
run "$PROG" --sparsity 0.5 --criterion wanda --calibrate "$TESTDATA/transformer_data.npz" \
    -o "$out" "$cnn"
expect_rc 1
expect_one_error "$cnn"
expect_err "[N,1,8,8]"
check
[ ! -e "$out" ] || fail "output written after bad calibration data"
run "$PROG" --sparsity 0.5 --criterion sparsegpt --calibrate /nonexistent.npz -o "$out" "$cnn"
expect_rc 1
expect_one_error "$cnn"
run "$PROG" --sensitivity /nonexistent.npz -o "$out" "$cnn"
expect_rc 1
expect_one_error "$cnn"
# an output folder that does not exist: nothing half-written elsewhere
run "$PROG" --sparsity 0.5 -o /nonexistent-dir/o.onnx "$cnn"
expect_rc 1
expect_one_error /nonexistent-dir/o.onnx
# the structured part, until it is built, says so and writes nothing
run "$PROG" --structured channels --ratio 0.3 -o "$out" "$cnn"
if [ "$rc" -ne 0 ]; then
    expect_rc 1
    expect_one_error "$cnn"
    check
    [ ! -e "$out" ] || fail "output written after a failed channel pruning"
fi
finish
