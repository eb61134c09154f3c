#!/bin/sh
# pare-distill-export soft targets: the .npz layout, determinism, --compress,
# and --resume after an interruption giving the same bytes.
. "$(dirname "$0")/../cli/lib.sh"
tf=$TESTDATA/transformer_tiny2.onnx
data=$TESTDATA/transformer_data.npz
cnn=$TESTDATA/cnn_digits.onnx
val=$TESTDATA/digits_val.npz
need "$tf" "$data" "$cnn" "$val"

opts="--top-k 5 --temperature 2 --features layer0/out --batch 7"
run "$PROG" "$tf" --data "$data" -o "$tmp/full.npz" $opts
expect_rc 0
check
[ -s "$tmp/full.npz" ] || fail "no output"
check
[ ! -e "$tmp/full.npz.partial" ] || fail "partial folder left after success"
# the same again: the same bytes
run "$PROG" "$tf" --data "$data" -o "$tmp/again.npz" $opts
expect_rc 0
check
cmp -s "$tmp/full.npz" "$tmp/again.npz" || fail "two runs differ"
# member names in the zip directory (stored members: names are plain text)
for m in sample_id.npy logits.values.npy logits.indices.npy logits.tail.npy layer0/out.npy \
    __meta__.npy; do
    check
    grep -qaF "$m" "$tmp/full.npz" || fail "member $m missing"
done
# metadata names the teacher's hash
if command -v sha256sum >/dev/null 2>&1; then
    h=$(sha256sum "$tf" | cut -d' ' -f1)
    check
    grep -qaF "$h" "$tmp/full.npz" || fail "teacher hash $h not in the metadata"
fi

# interrupted after 3 batches, then resumed: byte-identical
run env PARE_DISTILL_STOP_AFTER=3 "$PROG" "$tf" --data "$data" -o "$tmp/res.npz" $opts
expect_rc 1
expect_err "stopped after 3 batches"
check
[ ! -e "$tmp/res.npz" ] || fail "output written by an interrupted run"
check
[ -f "$tmp/res.npz.partial/state" ] || fail "no state kept"
grep -q "^samples 21$" "$tmp/res.npz.partial/state" 2>/dev/null || { check; fail "state does not say 21 samples"; }
run "$PROG" "$tf" --data "$data" -o "$tmp/res.npz" $opts --resume
expect_rc 0
expect_err "resuming after 21 samples"
check
cmp -s "$tmp/full.npz" "$tmp/res.npz" || fail "resumed output differs from an uninterrupted run"
check
[ ! -e "$tmp/res.npz.partial" ] || fail "partial folder left after resume"
# --resume with other options than the saved state: starts over, same result
run env PARE_DISTILL_STOP_AFTER=2 "$PROG" "$tf" --data "$data" -o "$tmp/res2.npz" $opts
run "$PROG" "$tf" --data "$data" -o "$tmp/res2.npz" $opts --batch 5 --resume
expect_rc 0
expect_err "starting over"
# --compress: smaller or equal and still complete
run "$PROG" "$cnn" --data "$val" -o "$tmp/plain.npz"
expect_rc 0
run "$PROG" "$cnn" --data "$val" -o "$tmp/z.npz" --compress
expect_rc 0
check
[ "$(wc -c <"$tmp/z.npz")" -lt "$(wc -c <"$tmp/plain.npz")" ] || fail "--compress did not shrink"
# --samples
run "$PROG" "$cnn" --data "$val" -o "$tmp/s.npz" --samples 10 --json
expect_rc 0
expect_out '"samples": 10'
finish
