#!/bin/sh
# pare-run: speed report, JSON, batch sweep, dynamic batching, --plan,
# random inputs with --shape, test_data_set folders and --save-outputs.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
tr=$TESTDATA/transformer_block.onnx
here=$(cd "$(dirname "$0")" && pwd)
need "$cnn" "$tr"

run "$PROG" -n 5 --warmup 1 -t 1 "$cnn"
expect_rc 0
expect_out "speed: 5 runs of batch 1"
expect_out_re "latency ms +min [0-9.]+ +mean [0-9.]+ +p50 [0-9.]+ +p90 [0-9.]+ +p95 [0-9.]+ +p99 [0-9.]+ +max [0-9.]+"
expect_out "throughput"
expect_out "peak RSS"
expect_out "arena"
expect_err_empty

run "$PROG" --json -n 3 --batch 4 "$cnn"
expect_rc 0
check
head -1 "$tmp/out" | grep -qx '{' || fail "JSON does not start with {"
grep -qF '"schema": "pare-run/1"' "$tmp/out" || fail "no schema"
grep -qF '"batch": 4' "$tmp/out" || fail "batch 4 not in JSON"
grep -qF '"p99_ms"' "$tmp/out" || fail "no p99_ms"
if command -v python3 >/dev/null 2>&1; then
    check
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["speed"]["iterations"] == 3' \
        "$tmp/out" || fail "JSON does not parse or has the wrong iterations"
fi

# --duration bounds the run
run "$PROG" --duration 0.2 --warmup 0 "$cnn"
expect_rc 0
expect_out_re "speed: [0-9]+ runs"

run "$PROG" --batch-sweep 1,2,4 -n 2 "$cnn"
expect_rc 0
expect_out "batch sweep:"
expect_out_re "^ +4 +[0-9.]+ +[0-9.]+ +[0-9.]+$"

run "$PROG" --concurrency 3 --max-batch 4 --max-delay-us 500 --duration 0.3 --warmup 0 "$cnn"
expect_rc 0
expect_out "dynamic batching: 3 clients, max batch 4, max delay 500 us"
expect_out_re "^ +unbatched +[0-9.]+"
expect_out_re "^ +batched +[0-9.]+"

run "$PROG" --plan "$cnn"
expect_rc 0
expect_out "cpu"
expect_out "Conv"

# symbolic batch and sequence dims of the transformer from --shape
run "$PROG" --shape x=2x7x64 -n 2 "$tr"
expect_rc 0
run "$PROG" --shape x=2x7x65 -n 2 "$tr"
expect_rc 1
expect_one_error "$tr"
expect_err "expects"

# a test_data_set folder reproduces a backend test; outputs saved as .npz
run "$PROG" --inputs "$here/data/set/test_data_set_0" --save-outputs "$tmp/o.npz" -n 1 "$cnn"
expect_rc 0
check
[ "$(head -c 2 "$tmp/o.npz")" = "PK" ] || fail "--save-outputs did not write a zip"
# and the saved outputs equal the test's expected outputs (through --reference
# on the same model, the comparison is exact)
run "$PROG" --reference "$cnn" --inputs "$here/data/set/test_data_set_0" --atol 0 -n 1 "$cnn"
expect_rc 0
# --profile: per op type and slowest nodes; the conv ops carry the time of
# the CNN; fused nodes (bn1, relu1) have none of their own
run "$PROG" -n 2 --warmup 0 -t 1 --profile --profile-runs 3 "$cnn"
expect_rc 0
expect_out_re "^profile \(3 runs, each node timed alone; per run [0-9.]+ ms\)$"
expect_out_re "^  Conv +4 +[0-9.]+ +[0-9.]+%$"
expect_out "slowest nodes:"
expect_out_re "^  'conv[0-9]' \(Conv\) +Conv +cpu +[0-9.]+ +[0-9.]+%$"
expect_err_empty
if command -v python3 >/dev/null 2>&1; then
    run "$PROG" -n 1 --warmup 0 -t 1 --json --profile --profile-runs 2 "$tr"
    expect_rc 0
    check
    python3 - "$tmp/out" <<'PY' || fail "--profile JSON is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["profile"]
assert p["runs"] == 2, p["runs"]
nodes = p["nodes"]
assert len(nodes) == 33, len(nodes)                       # every node, in run order
assert all(n["backend"] == "cpu" and n["ms"] >= 0 for n in nodes)
ops = {o["op"]: o for o in p["ops"]}
assert ops["MatMul"]["nodes"] == 8, ops["MatMul"]
assert abs(sum(o["ms"] for o in p["ops"]) - p["total_ms"]) < 1e-6 * max(1, p["total_ms"]) + 1e-9
assert max(ops, key=lambda k: ops[k]["ms"]) == "MatMul"   # the matrix products carry the time
PY
fi
# a bad --profile-runs is a usage error
run "$PROG" --profile --profile-runs 0 "$cnn"
expect_rc 2
expect_one_error
finish
