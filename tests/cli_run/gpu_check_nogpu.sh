#!/bin/sh
# scripts/gpu-check on a machine without a usable GPU: one line "no GPU
# usable: REASON", the same in the report file, exit 77. Skipped (77) where
# a GPU is usable (there the script runs the GPU suite instead).
# usage: gpu_check_nogpu.sh SCRIPT PYTHON
script=${1:?gpu-check script}
python=${2:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pare-gpucheck.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
# OUT unset and --report given: the report goes there, nothing else is written
env -u OUT "$python" "$script" --report "$tmp/report.txt" --pack "$tmp/nopack" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 77 ]; then
    if grep -q "^GPU: " "$tmp/out"; then
        echo "a GPU is usable here: nothing to check"
        exit 77
    fi
    echo "FAIL: exit $rc, expected 77"; cat "$tmp/out" "$tmp/err"; exit 1
fi
fails=0
grep -q "^no GPU usable: ." "$tmp/out" || { echo "FAIL: stdout lacks 'no GPU usable: REASON'"; fails=1; }
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^gpu-check: no GPU usable: ." "$tmp/err" ||
    { echo "FAIL: stderr is not one line 'gpu-check: no GPU usable: REASON'"; fails=1; }
grep -q "^no GPU usable: ." "$tmp/report.txt" 2>/dev/null ||
    { echo "FAIL: the report file lacks the reason"; fails=1; }
[ ! -e "$tmp/nopack" ] || { echo "FAIL: the pack folder was made"; fails=1; }
[ $fails -eq 0 ] && echo "ok: $(cat "$tmp/err")"
exit $fails
