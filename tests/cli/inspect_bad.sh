#!/bin/sh
# pare-inspect over every file in testdata/bad/ (and a folder given as the
# model), in every mode: exactly one error line "pare-inspect: FILE: ...",
# exit 1, nothing on stdout, no crash. The structurally invalid models are
# the exception under --check, which lists their problems (inspect_check.sh).
. "$(dirname "$0")/lib.sh"
bad=$TESTDATA/bad
need "$bad"
good=$TESTDATA/cnn_digits.onnx

models=""
for f in "$bad"/*; do
    if [ -d "$f" ]; then
        [ -e "$f/model.onnx" ] && models="$models $f/model.onnx"
    else
        models="$models $f"
    fi
done
models="$models $bad"
count=0
for f in $models; do
    count=$((count + 1))
    for mode in "" --json --nodes --dot --check; do
        case "$mode:$(basename "$f")" in
        --check:cycle.onnx | --check:undefined_input.onnx | --check:two_producers.onnx) continue ;;
        esac
        run "$PROG" $mode "$f"
        expect_rc 1
        expect_one_error "$f"
        expect_out_empty
    done
    if [ -e "$good" ]; then
        run "$PROG" --diff "$f" "$good"
        expect_rc 1
        expect_one_error "$f"
        expect_out_empty
    fi
done
check
[ "$count" -ge 10 ] || fail "only $count bad models found in $bad"

# the same through stdin (external data cannot be resolved there anyway)
for f in "$bad"/*.onnx "$bad"/*.gz; do
    [ -f "$f" ] || continue
    run sh -c "\"$PROG\" - < \"$f\""
    expect_rc 1
    expect_one_error "<stdin>"
    expect_out_empty
done

# a file that is not there, and an unreadable decompression limit
run "$PROG" "$bad/no-such-file.onnx"
expect_rc 1
expect_one_error "$bad/no-such-file.onnx"
expect_err "cannot open"
if [ -e "$TESTDATA/cnn_digits.onnx.gz" ]; then
    run "$PROG" --max-decompressed 1K "$TESTDATA/cnn_digits.onnx.gz"
    expect_rc 1
    expect_one_error "$TESTDATA/cnn_digits.onnx.gz"
    expect_err "limit"
fi

finish
