#!/bin/sh
# pare-run on bad input: one line naming program, file and problem; exit 1.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
here=$(cd "$(dirname "$0")" && pwd)
need "$cnn"

for f in truncated.onnx random.onnx empty.onnx bad_gzip.onnx.gz bomb.onnx.gz \
    wrong_dtype_len.onnx cycle.onnx; do
    run "$PROG" -n 1 "$TESTDATA/bad/$f"
    expect_rc 1
    expect_one_error "$TESTDATA/bad/$f"
done
run "$PROG" -n 1 "$TESTDATA"
expect_rc 1
expect_one_error "$TESTDATA"

# data that does not fit the model: the expected signature is listed
run "$PROG" -n 1 --inputs "$here/data/wrong_name.npz" "$cnn"
expect_rc 1
expect_one_error "$here/data/wrong_name.npz"
expect_err "'input' float32 [N,1,8,8]"
run "$PROG" -n 1 --inputs "$here/data/truncated.npz" "$cnn"
expect_rc 1
expect_one_error "$here/data/truncated.npz"
run "$PROG" -n 1 --inputs "$TESTDATA/transformer_data.npz" "$cnn"
expect_rc 1
expect_one_error
run "$PROG" -n 1 --inputs /nonexistent.npz "$cnn"
expect_rc 1
expect_one_error "/nonexistent.npz"
run "$PROG" -n 1 --reference "$TESTDATA/bad/empty.onnx" "$cnn"
expect_rc 1
expect_one_error "$TESTDATA/bad/empty.onnx"
# a failed --save-outputs leaves no file behind
run "$PROG" -n 1 --save-outputs /nonexistent-dir/o.npz "$cnn"
expect_rc 1
expect_one_error
finish
