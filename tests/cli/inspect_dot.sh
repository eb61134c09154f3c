#!/bin/sh
# pare-inspect --dot: a Graphviz digraph of the model.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/cnn_digits.onnx"

run "$PROG" --dot "$TESTDATA/cnn_digits.onnx"
expect_rc 0
expect_err_empty
expect_out_re '^digraph ".*" \{$'
expect_out_re '^\}$'
expect_out 'in_'
expect_out '[shape=ellipse, label="input\nfloat32 Nx1x8x8"];'
expect_out 'label="conv1\nConv\nconv1.weight 32x1x3x3'
expect_out_re '^  n0_[0-9]+ -> n0_[0-9]+ \[label="'
expect_out_re '^  n0_[0-9]+ -> out_0 '
check
opens=$(tr -cd '{' <"$tmp/out" | wc -c)
closes=$(tr -cd '}' <"$tmp/out" | wc -c)
[ "$opens" -eq "$closes" ] || fail "unbalanced braces"
if command -v dot >/dev/null 2>&1; then
    check
    dot -Tsvg "$tmp/out" >/dev/null 2>&1 || fail "dot rejects the output"
fi

if [ -e "$TESTDATA/control_flow.onnx" ]; then
    run "$PROG" --dot "$TESTDATA/control_flow.onnx"
    expect_rc 0
    expect_out 'subgraph cluster_'
    expect_out 'label="loop body";'
    check
    opens=$(tr -cd '{' <"$tmp/out" | wc -c)
    closes=$(tr -cd '}' <"$tmp/out" | wc -c)
    [ "$opens" -eq "$closes" ] || fail "unbalanced braces (subgraphs)"
fi
run "$PROG" --dot -o "$tmp/g.dot" "$TESTDATA/cnn_digits.onnx"
expect_rc 0
expect_out_empty
check
grep -q '^digraph' "$tmp/g.dot" || fail "-o did not get the DOT text"

finish
