#!/bin/sh
# pare-distill-export --student: blocks found by structure, half of them
# dropped, params and MACs at most 0.6x, refit raises top-1 agreement.
. "$(dirname "$0")/../cli/lib.sh"
tf=$TESTDATA/transformer_tiny2.onnx
data=$TESTDATA/transformer_data.npz
cnn=$TESTDATA/cnn_digits.onnx
need "$tf" "$data" "$cnn"

run "$PROG" --student --drop-layers every-2nd --refit "$data" --data "$data" --json "$tf" \
    -o "$tmp/s.onnx"
expect_rc 0
check
[ -s "$tmp/s.onnx" ] || fail "no student"
if command -v python3 >/dev/null 2>&1; then
    check
    why=$(python3 - "$tmp/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["blocks"]
assert len(b) == 2, "blocks %r" % b
assert [x["dropped"] for x in b] == [False, True], b
assert b[0]["first"] == "'layer0/q/MatMul' (MatMul)", b[0]
t, s = r["teacher"], r["student"]
assert s["params"] <= 0.6 * t["params"], (s, t)
assert s["macs"] <= 0.6 * t["macs"] and s["macs"] > 0, (s, t)
before, after = r["refit_before"]["top1"], r["refit_after"]["top1"]
assert after > before, (before, after)
assert r["refit_after"]["cosine"] > r["refit_before"]["cosine"]
assert r["agreement"]["top1"] == after
PY
) || fail "report: $why"
fi
# the text report lists the blocks
run "$PROG" --student --drop-layers 0 "$tf" -o "$tmp/s0.onnx"
expect_rc 0
expect_out "repeated blocks: 2"
expect_out_re "block 0: .*\(dropped\)"
# low rank: fewer params; a rank too big to shrink anything is skipped
run "$PROG" --student --low-rank 8 "$tf" -o "$tmp/lr.onnx" --json
expect_rc 0
expect_out '"low_rank_layers": 13'
run "$PROG" --student --low-rank 64 "$tf" -o "$tmp/lr64.onnx" --json
expect_rc 0
expect_out '"low_rank_layers": 0'
run "$PROG" --student --low-rank energy=0.5 "$tf" -o "$tmp/lre.onnx"
expect_rc 0
expect_out_re "low-rank: [0-9]+ layers? factored"
# --refit all: layer by layer, more than one layer, agreement still rises
run "$PROG" --student --low-rank 8 --refit "$data" --refit all --json "$tf" -o "$tmp/ra.onnx"
expect_rc 0
if command -v python3 >/dev/null 2>&1; then
    check
    why=$(python3 - "$tmp/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["refit_layers"] == 13, r["refit_layers"]
assert r["refit_after"]["top1"] > r["refit_before"]["top1"], r
PY
) || fail "refit all: $why"
fi
# width through channel pruning, refit of a Gemm head
run "$PROG" --student --width 0.5 --refit "$TESTDATA/digits_train.npz" "$cnn" -o "$tmp/w.onnx"
expect_rc 0
expect_out "refit 1 layer (final 'fc' (Gemm))"
finish
