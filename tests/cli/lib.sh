# lib.sh - helpers for the CLI test scripts (sourced, POSIX sh).
#
# Each script is run by meson as:  SCRIPT PROGRAM TESTDATA FIXTURES
#   PROGRAM   the built program (pare-inspect)
#   TESTDATA  the repository's testdata/ folder
#   FIXTURES  tests/cli/data (small models made by make_fixtures.py)
# Exit status: 0 pass, 1 fail, 77 skip.

PROG=${1:?program}
case $PROG in /*) ;; *) PROG=$(pwd)/$PROG ;; esac
TESTDATA=${2:?testdata folder}
FIXTURES=${3:?fixtures folder}
NAME=$(basename "$PROG")
fails=0
checks=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pare-cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

# run CMD...: stdout to $tmp/out, stderr to $tmp/err, status in $rc
run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    last="$*"
}

fail() {
    fails=$((fails + 1))
    echo "FAIL: $*"
    echo "  command: $last"
    echo "  stderr: $(head -c 400 "$tmp/err")"
}

check() { checks=$((checks + 1)); }

# expect_rc N: the last command exited with N (and did not crash)
expect_rc() {
    check
    [ "$rc" -eq "$1" ] || fail "exit status $rc, expected $1"
}

# expect_out TEXT / expect_err TEXT: fixed text somewhere in stdout / stderr
expect_out() {
    check
    grep -qF -e "$1" "$tmp/out" || fail "stdout lacks '$1'"
}
expect_err() {
    check
    grep -qF -e "$1" "$tmp/err" || fail "stderr lacks '$1'"
}
expect_no_out_text() {
    check
    if grep -qF -e "$1" "$tmp/out"; then fail "stdout has '$1'"; fi
}
# expect_out_re REGEX: an extended regular expression matches a stdout line
expect_out_re() {
    check
    grep -qE -e "$1" "$tmp/out" || fail "no stdout line matches /$1/"
}
expect_out_empty() {
    check
    [ ! -s "$tmp/out" ] || fail "stdout is not empty: $(head -c 200 "$tmp/out")"
}
expect_err_empty() {
    check
    [ ! -s "$tmp/err" ] || fail "stderr is not empty"
}

# expect_one_error [FILE]: exactly one line on stderr, "PROGRAM: " (and
# "PROGRAM: FILE: ") at its start
expect_one_error() {
    check
    n=$(wc -l <"$tmp/err" | tr -d ' ')
    [ "$n" -eq 1 ] || { fail "expected one line on stderr, got $n"; return; }
    prefix="$NAME: "
    [ $# -gt 0 ] && prefix="$NAME: $1: "
    case $(cat "$tmp/err") in
    "$prefix"*) ;;
    *) fail "stderr does not start with '$prefix'" ;;
    esac
}

# expect_json: stdout is a JSON object with the pare-inspect/1 schema. Where
# python3 is installed, finish parses every such output with json.load (in
# one run, python being slow to start).
mkdir "$tmp/json"
json_n=0
expect_json() {
    check
    head -1 "$tmp/out" | grep -qx '{' || fail "stdout does not start a JSON object"
    tail -1 "$tmp/out" | grep -qx '}' || fail "stdout does not end a JSON object"
    grep -qF '"schema": "pare-inspect/1"' "$tmp/out" || fail "no schema pare-inspect/1"
    json_n=$((json_n + 1))
    cp "$tmp/out" "$tmp/json/$json_n.json"
    printf '%s\n' "$last" >"$tmp/json/$json_n.cmd"
}

check_json_files() {
    [ "$json_n" -gt 0 ] || return 0
    command -v python3 >/dev/null 2>&1 || return 0
    checks=$((checks + json_n))
    bad=$(python3 - "$tmp/json" <<'PY'
import json, os, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if f.endswith(".json"):
        try:
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                json.load(fh)
        except Exception as e:
            with open(os.path.join(d, f[:-5] + ".cmd")) as c:
                print("invalid JSON from: %s: %s" % (c.read().strip(), e))
PY
)
    if [ -n "$bad" ]; then
        fails=$((fails + 1))
        echo "FAIL: $bad"
    fi
}

# need FILE...: skip the script (77) unless every file exists
need() {
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            echo "SKIP: $f is missing"
            exit 77
        fi
    done
}

finish() {
    check_json_files
    if [ "$fails" -gt 0 ]; then
        echo "$fails of $checks checks failed"
        exit 1
    fi
    echo "ok: $checks checks"
    exit 0
}
