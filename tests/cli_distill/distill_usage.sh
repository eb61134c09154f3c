#!/bin/sh
# pare-distill-export: --help, --version, usage errors (exit 2, one line).
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
tf=$TESTDATA/transformer_tiny2.onnx
need "$cnn" "$tf"
out=$tmp/o.npz

run "$PROG" --help
expect_rc 0
for opt in --data --outputs --temperature --top-k --dtype --features --batch --samples \
    --compress --resume --student --drop-layers --low-rank --width --refit --ridge --threads \
    --output --json; do
    expect_out "$opt"
done
run "$PROG" --version
expect_rc 0

# usage errors: one line, exit 2, nothing written
usage() {
    run "$PROG" "$@"
    expect_rc 2
    expect_one_error
    check
    [ ! -e "$out" ] || fail "output written on a usage error"
}
usage "$cnn" --data "$TESTDATA/digits_val.npz"                          # no -o
usage "$cnn" -o "$out"                                                   # no --data
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --temperature 0
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --temperature -1.5
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --top-k 0
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --dtype int8
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --batch 0
usage "$cnn" --data "$TESTDATA/digits_val.npz" -o "$out" --drop-layers every-2nd
usage "$cnn" --student -o "$out"                                         # nothing to do
usage "$tf" --student --drop-layers every-2nd --top-k 3 -o "$out"
usage "$tf" --student --low-rank 0 -o "$out"
usage "$tf" --student --low-rank energy=1.5 -o "$out"
usage "$tf" --student --low-rank abc -o "$out"
usage "$tf" --student --width 0 -o "$out"
usage "$tf" --student --width 1.5 -o "$out"
usage "$tf" --student --drop-layers 1,x -o "$out"
usage "$tf" --student --refit all -o "$out"
usage "$tf" --student --ridge -1 --refit "$TESTDATA/transformer_data.npz" -o "$out"
usage "$tf" --no-such-option
finish
