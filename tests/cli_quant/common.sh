# common.sh - helpers of the pare-quantize CLI tests (sourced after
# ../cli/lib.sh). The fourth argument of every script is pare-run.
PARE_RUN=${4:?pare-run}
case $PARE_RUN in /*) ;; *) PARE_RUN=$(pwd)/$PARE_RUN ;; esac
cnn=$TESTDATA/cnn_digits.onnx
train=$TESTDATA/digits_train.npz
val=$TESTDATA/digits_val.npz
labels=$TESTDATA/digits_val_labels.npy
tb=$TESTDATA/transformer_block.onnx
tdata=$TESTDATA/transformer_data.npz
need "$cnn" "$train" "$val" "$labels" "$tb" "$tdata"

# expect_qjson [FILE]: stdout (or FILE) is a pare-quantize/1 JSON object; the
# text is parsed with python at the end where python3 is installed
expect_qjson() {
    f=${1:-$tmp/out}
    check
    head -1 "$f" | grep -qx '{' || fail "$f does not start a JSON object"
    tail -1 "$f" | grep -qx '}' || fail "$f does not end a JSON object"
    grep -qF '"schema": "pare-quantize/1"' "$f" || fail "no schema pare-quantize/1 in $f"
    json_n=$((json_n + 1))
    cp "$f" "$tmp/json/$json_n.json"
    printf '%s\n' "$last" >"$tmp/json/$json_n.cmd"
}

# jnum KEY [FILE]: the first number after "KEY": in the JSON text
jnum() {
    sed -n "s/.*\"$1\": \(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" "${2:-$tmp/out}" | head -1
}

# expect_le A B WHAT / expect_lt A B WHAT: numeric comparisons
expect_le() {
    check
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 <= b + 0) }' ||
        fail "$3: $1 > $2"
}
expect_lt() {
    check
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }' ||
        fail "$3: $1 >= $2"
}

# gate MODEL REFERENCE DATA GATES...: pare-run's gate passes (exit 0)
gate() {
    m=$1
    r=$2
    d=$3
    shift 3
    run "$PARE_RUN" -q --reference "$r" --inputs "$d" -n 1 --warmup 0 "$@" "$m"
    expect_rc 0
}

expect_file() {
    check
    [ -s "$1" ] || fail "$1 was not written"
}
expect_no_file() {
    check
    [ ! -e "$1" ] || fail "$1 exists"
}
