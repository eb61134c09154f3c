#!/bin/sh
# pare-quantize --validate / --max-accuracy-drop: figures, the search that
# returns sensitive layers to float, exit 3 when the target cannot be met.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"
q="--mode static --per-tensor --calibrate $train --calib-samples 64"

# --validate alone: figures, no search
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/v.onnx" --validate "$val" --labels "$labels"
expect_rc 0
expect_out "validation on $val: 360 samples, accuracy drop"
expect_out_re '^  logits +0\.99[0-9]+ '
expect_no_out_text "accuracy-aware"

# a loose target holds at once: nothing goes back to float
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/loose.onnx" --validate "$val" --labels "$labels" \
    --max-accuracy-drop 0.05
expect_rc 0
expect_out "accuracy-aware: target drop <= 0.05 met after 1 measurement; no layer returned to float"
expect_file "$tmp/loose.onnx"
gate "$tmp/loose.onnx" "$cnn" "$val" --labels "$labels" --max-accuracy-drop 0.05

# a target between "all quantized" and float: some layers go back, the
# result holds it (checked again by pare-run)
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/all.onnx" --validate "$val" --metric cosine --json
expect_rc 0
expect_qjson
d0=$(jnum drop)
target=$(awk -v d="$d0" 'BEGIN { printf "%.8f", d / 2 }')
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/mid.onnx" --validate "$val" --metric cosine \
    --max-accuracy-drop "$target" --json
expect_rc 0
expect_qjson
expect_out '"met": true'
expect_out '"why": "accuracy fallback"'
expect_no_out_text '"kept_float": []'
expect_le "$(jnum drop)" "$target" "final drop within the target"
expect_lt 1 "$(jnum measurements)" "measurements"
expect_le 1 "$(jnum nodes_quantized)" "nodes still quantized"
mincos=$(awk -v t="$target" 'BEGIN { printf "%.8f", 1 - t }')
gate "$tmp/mid.onnx" "$cnn" "$val" --min-cosine "$mincos"
# the same search, text report: which layers stayed float, -v: each measurement
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/mid2.onnx" --validate "$val" --metric cosine \
    --max-accuracy-drop "$target" -v
expect_rc 0
expect_out_re "^accuracy-aware: target drop <= .* met after [0-9]+ measurements; [0-9]+ layers? returned to float: "
expect_out "sensitivity (error added on the first batch, most sensitive first):"
expect_err "measurement 1: 0 nodes back in float"
check
cmp -s "$tmp/mid.onnx" "$tmp/mid2.onnx" || fail "the search is not deterministic"

# an impossible target: exit 3, nothing written, one error line
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/imp.onnx" --validate "$val" --metric cosine \
    --max-accuracy-drop 0
expect_rc 3
expect_one_error "$cnn"
expect_err "accuracy target not met"
expect_err "nothing written"
expect_out "NOT met"
expect_no_file "$tmp/imp.onnx"
# --write-best: still exit 3, but the best model is written and runs
# shellcheck disable=SC2086
run "$PROG" $q "$cnn" -o "$tmp/best.onnx" --validate "$val" --metric cosine \
    --max-accuracy-drop 0 --write-best --json
expect_rc 3
expect_qjson
expect_out '"met": false'
expect_out '"written": true'
expect_err "wrote it (--write-best)"
expect_file "$tmp/best.onnx"
gate "$tmp/best.onnx" "$cnn" "$val" --min-top1-agreement 0.97

# other metrics and modes: top-1 by default without labels, rel-l2; fp16
# returns nodes through --block-nodes
run "$PROG" --mode dynamic "$cnn" -o "$tmp/dt.onnx" --validate "$val" \
    --max-accuracy-drop 0.02 --json
expect_rc 0
expect_out '"metric": "top1"'
run "$PROG" --mode weight-only "$tb" -o "$tmp/wr.onnx" --validate "$tdata" --metric rel-l2 \
    --max-accuracy-drop 0.5 --json
expect_rc 0
expect_out '"metric": "rel-l2"'
run "$PROG" --mode fp16 "$tb" -o "$tmp/hf.onnx" --validate "$tdata" --metric rel-l2 \
    --max-accuracy-drop 0.0000001
check
case $rc in 0|3) ;; *) fail "fp16 search: exit status $rc" ;; esac
expect_out "accuracy-aware: target drop <= 1e-07"
finish
