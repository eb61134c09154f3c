#!/bin/sh
# pare-prune usage errors: exit 2 with one line saying what is wrong, and
# nothing written.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
need "$cnn"
out=$tmp/o.onnx

run "$PROG" --help
expect_rc 0
for o in --sparsity --per-layer --pattern --criterion --calibrate --exclude-nodes \
    --exclude-op-types --min-params --include-first-last --sensitivity --max-accuracy-drop \
    --sparse-format --external-data --cleanup-only --outputs --inputs --structured --ratio; do
    expect_out "$o"
done

usage() { # usage TEXT ARGS...: exit 2, one line containing TEXT, no output file
    want=$1
    shift
    run "$PROG" "$@"
    expect_rc 2
    expect_one_error
    expect_err "$want"
    check
    [ ! -e "$out" ] || fail "an output file was left"
}
usage "outside [0, 1)" --sparsity 1 -o "$out" "$cnn"
usage "outside [0, 1)" --sparsity 1.5 -o "$out" "$cnn"
usage "outside [0, 1)" --sparsity -0.1 -o "$out" "$cnn"
usage "N (5) is larger than M (4)" --pattern 5:4 -o "$out" "$cnn"
usage "expected N:M" --pattern 2-4 -o "$out" "$cnn"
usage "expected block:RxC" --pattern block:2 --sparsity 0.5 -o "$out" "$cnn"
usage "needs --sparsity" --pattern block:2x2 -o "$out" "$cnn"
usage "fixes the sparsity" --pattern 2:4 --sparsity 0.5 -o "$out" "$cnn"
usage "no node named 'nope'" --sparsity 0.5 --exclude-nodes conv2,nope -o "$out" "$cnn"
usage "needs --calibrate" --sparsity 0.5 --criterion wanda -o "$out" "$cnn"
usage "needs --calibrate" --sparsity 0.5 --criterion sparsegpt -o "$out" "$cnn"
usage "not one of" --sparsity 0.5 --criterion optimal -o "$out" "$cnn"
usage "would remove every channel" --structured channels --ratio 1 -o "$out" "$cnn"
usage "would remove every channel" --structured channels --layer-ratio conv2=1 -o "$out" "$cnn"
usage "go with --structured channels" --sparsity 0.5 --norm l2 -o "$out" "$cnn"
usage "go with --structured channels" --sparsity 0.5 --bn-recalibrate x.npz -o "$out" "$cnn"
usage "needs --sensitivity" --max-accuracy-drop 0.01 -o "$out" "$cnn"
usage "nothing to do" -o "$out" "$cnn"
usage "needs -o FILE" --sparsity 0.5 --external-data 1K "$cnn"
usage "needs --report" --sparsity 0.5 --json -o - "$cnn"
usage "sensitivity-levels" --sensitivity "$TESTDATA/digits_val.npz" --sensitivity-levels 0.5,2 \
    -o "$out" "$cnn"
usage "unknown option" --sparsity 0.5 --bogus -o "$out" "$cnn"

# a bare --pattern means 2:4 (also before the model name)
run "$PROG" --json --pattern -o "$out" "$cnn"
expect_rc 0
expect_out '"method": "2:4 magnitude"'
rm -f "$out"
run "$PROG" --pattern "$cnn" --json -o "$out"
expect_rc 0
expect_out '"method": "2:4 magnitude"'
finish
