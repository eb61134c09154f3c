#!/bin/sh
# pare-inspect: --help, --version, usage errors (exit 2), option syntax.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/cnn_digits.onnx"
cnn=$TESTDATA/cnn_digits.onnx

run "$PROG" --help
expect_rc 0
expect_out "usage: pare-inspect [OPTIONS] MODEL"
for opt in --json --nodes --check "--diff OTHER" --dot "-o, --output FILE" "--shape NAME=DIMS" \
    "--dim SYM=N" --scan-weights "--max-decompressed BYTES" "-q, --quiet" "-v, --verbose" \
    "-h, --help" --version; do
    expect_out "$opt"
done
expect_err_empty
cp "$tmp/out" "$tmp/help"
run "$PROG" -h
expect_rc 0
check
cmp -s "$tmp/out" "$tmp/help" || fail "-h differs from --help"
# --help wins even after other options and arguments
run "$PROG" --json model.onnx --help
expect_rc 0
expect_out "usage: pare-inspect"

run "$PROG" --version
expect_rc 0
expect_out_re '^pare-inspect \(pare\) [0-9]+\.[0-9]+\.[0-9]+$'

# usage errors: one line, exit 2, "(see --help)"
usage_error() {
    expect_rc 2
    expect_one_error
    expect_err "$1"
    expect_err "(see --help)"
    expect_out_empty
}
run "$PROG" --foo "$cnn"
usage_error "unknown option '--foo'"
run "$PROG" --foo=1 "$cnn"
usage_error "unknown option '--foo'"
run "$PROG" -x "$cnn"
usage_error "unknown option '-x'"
run "$PROG" --jso "$cnn"
usage_error "unknown option '--jso'"
run "$PROG"
usage_error "missing MODEL"
run "$PROG" "$cnn" "$cnn"
usage_error "unexpected argument"
run "$PROG" "$cnn" --shape
usage_error "option '--shape' needs a value"
run "$PROG" --json=yes "$cnn"
usage_error "option '--json' takes no value"
run "$PROG" --max-decompressed 12Q "$cnn"
usage_error "'12Q' is not a byte count"
run "$PROG" --shape input "$cnn"
usage_error "is not NAME=VALUE"
run "$PROG" --shape input=1xAx8 "$cnn"
usage_error "is not a list of sizes"
run "$PROG" --shape input=1x1x8x8 --shape input=2x1x8x8 "$cnn"
usage_error "given twice"
run "$PROG" --dim N=abc "$cnn"
usage_error "is not an integer"
run "$PROG" --dim N=-3 "$cnn"
usage_error "is negative"
run "$PROG" --check --dot "$cnn"
usage_error "separate modes"
run "$PROG" --dot --json "$cnn"
usage_error "cannot be combined"
run "$PROG" --nodes --check "$cnn"
usage_error "--nodes goes with the summary"
run "$PROG" --diff - -
usage_error "only one model can be read from stdin"
# a --shape for an input the model lacks, or of the wrong rank: bad usage
run "$PROG" --shape nope=1x2 "$cnn"
expect_rc 2
expect_one_error "$cnn"
expect_err "has no input 'nope' (inputs: 'input')"
run "$PROG" --shape input=1x8x8 "$cnn"
expect_rc 2
expect_err "3 dims given, the input has 4"
run "$PROG" --shape input=1x2x8x8 "$cnn"
expect_rc 2
expect_err "dim 1 is 1 in the model, 2 given"

# option syntax: --opt=value, values after the model, bundles, "--"
run "$PROG" --json --shape=input=2x1x8x8 "$cnn"
expect_rc 0
expect_out '"macs": 3708160,'
run "$PROG" "$cnn" --shape input=2x1x8x8 --json
expect_rc 0
expect_out '"macs": 3708160,'
run "$PROG" --json --shape input=2,1,8,8 "$cnn"
expect_rc 0
expect_out '"macs": 3708160,'
run "$PROG" -qv "$cnn"
expect_rc 0
run "$PROG" --max-decompressed=1G "$cnn"
expect_rc 0
cp "$cnn" "$tmp/-odd.onnx"
(cd "$tmp" && "$PROG" -- -odd.onnx >out2 2>err2)
rc=$?
expect_rc 0
check
grep -qF -- "-odd.onnx: " "$tmp/out2" || fail "-- did not end the options"
run "$PROG" -o"$tmp/r1.txt" "$cnn"
expect_rc 0
expect_out_empty
check
grep -qF "ops: 14 nodes" "$tmp/r1.txt" || fail "-oFILE did not write the report"

finish
