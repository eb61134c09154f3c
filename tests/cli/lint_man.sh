#!/bin/sh
# lint_man.sh PAGE...: mandoc -T lint -W warning over manual pages; any
# message fails. Skipped (exit 77) where mandoc is not installed.
if ! command -v mandoc >/dev/null 2>&1; then
    echo "lint_man: mandoc not found, skipping"
    exit 77
fi
out=$(mandoc -T lint -W warning "$@" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out"
    exit 1
fi
echo "lint_man: $# page(s) clean"
