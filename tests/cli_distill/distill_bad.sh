#!/bin/sh
# pare-distill-export on bad input (issue 6, section 6): one line naming the
# program and the file, exit 1, no output and no partial-state folder left.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
tf=$TESTDATA/transformer_tiny2.onnx
val=$TESTDATA/digits_val.npz
need "$cnn" "$tf" "$val"
out=$tmp/o.npz

nothing_left() {
    check
    [ ! -e "$out" ] || fail "output written"
    check
    [ ! -e "$out.partial" ] || fail "partial-state folder left behind"
}
# a dataset that does not match the teacher's inputs: the signature is named
run "$PROG" "$cnn" --data "$TESTDATA/transformer_data.npz" -o "$out"
expect_rc 1
expect_one_error "$TESTDATA/transformer_data.npz"
expect_err "[N,1,8,8]"
nothing_left
# an output name that does not exist
run "$PROG" "$cnn" --data "$val" -o "$out" --outputs nope
expect_rc 1
expect_one_error "$cnn"
expect_err "no output named 'nope'"
nothing_left
# an intermediate name given as output: pointed to --features
run "$PROG" "$tf" --data "$TESTDATA/transformer_data.npz" -o "$out" --outputs layer0/out
expect_rc 1
expect_one_error "$tf"
expect_err "--features"
nothing_left
run "$PROG" "$cnn" --data "$val" -o "$out" --features nope
expect_rc 1
expect_one_error "$cnn"
nothing_left
# K larger than the class axis
run "$PROG" "$cnn" --data "$val" -o "$out" --top-k 11
expect_rc 1
expect_one_error "$cnn"
expect_err "larger than the class axis"
nothing_left
# a teacher or data that does not exist or is not a model
run "$PROG" "$TESTDATA/bad/truncated.onnx" --data "$val" -o "$out"
expect_rc 1
expect_one_error "$TESTDATA/bad/truncated.onnx"
nothing_left
run "$PROG" "$cnn" --data /nonexistent.npz -o "$out"
expect_rc 1
expect_one_error
nothing_left
# a model with no repeated blocks for --drop-layers every-2nd
sout=$tmp/s.onnx
run "$PROG" --student --drop-layers every-2nd "$cnn" -o "$sout"
expect_rc 1
expect_one_error "$cnn"
expect_err "no repeated residual blocks"
check
[ ! -e "$sout" ] || fail "student written for a model without blocks"
# block indices that do not exist, or all of them
run "$PROG" --student --drop-layers 5 "$tf" -o "$sout"
expect_rc 1
expect_one_error "$tf"
run "$PROG" --student --drop-layers 0,1 "$tf" -o "$sout"
expect_rc 1
expect_one_error "$tf"
check
[ ! -e "$sout" ] || fail "student written after a failed drop"
# refit data that does not fit the model
run "$PROG" --student --drop-layers 1 --refit "$val" "$tf" -o "$sout"
expect_rc 1
expect_one_error
check
[ ! -e "$sout" ] || fail "student written after a failed refit"
# refit of a model whose output is not a linear layer
run "$PROG" --student --refit "$TESTDATA/transformer_data.npz" "$TESTDATA/transformer_block.onnx" \
    -o "$sout"
expect_rc 1
expect_one_error "$TESTDATA/transformer_data.npz"
expect_err "linear layer"
finish
