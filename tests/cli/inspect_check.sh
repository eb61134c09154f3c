#!/bin/sh
# pare-inspect --check: one line and exit 0 for valid models; every problem
# on its own error line and exit 1 for invalid ones.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/cnn_digits.onnx"

for m in "$TESTDATA/cnn_digits.onnx" "$TESTDATA/cnn_digits.onnx.gz" \
    "$TESTDATA/transformer_block.onnx" "$TESTDATA/transformer_tiny2.onnx" \
    "$TESTDATA/control_flow.onnx" "$TESTDATA/mlp_external/model.onnx" \
    "$FIXTURES/qdq.onnx" "$FIXTURES/qop.onnx" "$FIXTURES/fp16.onnx"; do
    [ -e "$m" ] || continue
    run "$PROG" --check "$m"
    expect_rc 0
    expect_err_empty
    check
    [ "$(wc -l <"$tmp/out" | tr -d ' ')" -eq 1 ] || fail "$m: more than one line"
    expect_out_re "^$m: valid \(ir version [0-9]+, [0-9]+ nodes? in the main graph\)$"
    run "$PROG" --check --json "$m"
    expect_rc 0
    expect_json
    expect_out '"mode": "check",'
    expect_out '"valid": true,'
    expect_out '"problems": []'
done
run sh -c "\"$PROG\" --check - < \"$TESTDATA/cnn_digits.onnx\""
expect_rc 0
expect_out "<stdin>: valid"

# structurally broken models: each problem is a line naming file, node and op
bad=$TESTDATA/bad
for case in "cycle.onnx:topological order" "undefined_input.onnx:is not defined" \
    "two_producers.onnx:already has a producer"; do
    f=$bad/${case%%:*}
    what=${case#*:}
    [ -e "$f" ] || continue
    run "$PROG" --check "$f"
    expect_rc 1
    expect_out_empty
    expect_err "$what"
    check
    n=$(wc -l <"$tmp/err" | tr -d ' ')
    [ "$n" -ge 1 ] || fail "no problem listed"
    check
    if grep -vqE "^$NAME: $f: node '[^']*' \([A-Za-z]+\): " "$tmp/err"; then
        fail "a problem line is not 'pare-inspect: FILE: node 'x' (Op): problem'"
    fi
    run "$PROG" --check --json "$f"
    expect_rc 1
    expect_json
    expect_out '"valid": false,'
    expect_out "$what"
done

# files that do not load: one line, exit 1, as without --check
run "$PROG" --check "$TESTDATA/does-not-exist.onnx"
expect_rc 1
expect_one_error "$TESTDATA/does-not-exist.onnx"
expect_out_empty

finish
