#!/bin/sh
# pare-quantize: calibration memory does not grow with the number of samples
# (peak RSS with 10 and with 1,000 samples within 10%).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"

# rss N METHOD: calibrates on N samples; the peak RSS goes to $peak
rss() {
    run "$PROG" --mode static --calibrate "$train" --calib-samples "$1" --calib-method "$2" \
        --threads 1 "$cnn" -o "$tmp/rss.onnx" --json
    expect_rc 0
    expect_qjson
    check
    [ "$(jnum samples)" = "$1" ] || fail "calibration saw $(jnum samples) samples, not $1"
    peak=$(jnum peak_rss_bytes)
}
for m in percentile minmax; do
    rss 10 "$m"
    small=$peak
    rss 1000 "$m"
    large=$peak
    echo "peak RSS ($m): 10 samples $small bytes, 1000 samples $large bytes"
    expect_le "$large" "$(awk -v s="$small" 'BEGIN { printf "%.0f", s * 1.10 }')" \
        "peak RSS with 1000 samples ($m) more than 10% above 10 samples'"
    expect_le "$small" "$(awk -v s="$large" 'BEGIN { printf "%.0f", s * 1.10 }')" \
        "peak RSS with 10 samples ($m) more than 10% above 1000 samples'"
done
finish
