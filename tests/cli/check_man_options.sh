#!/bin/sh
# check_man_options.sh PROGRAM MANPAGE
#
# Keeps a program's --help and its manual page in step, for any pare program:
#  - every option that `PROGRAM --help` lists (-x and --long) must appear in
#    the rendered page;
#  - every option the page defines in a list entry (.It Fl ...) must be one
#    that --help lists.
# The page is rendered with mandoc when it is installed; otherwise its mdoc
# source is read directly (".Fl -json" is "--json", "\-" is "-"); set
# CHECK_MAN_NO_MANDOC=1 to read the source even where mandoc is installed.
# Exit 0 when they agree, 1 listing what is missing, 2 on bad usage.
set -u
if [ $# -ne 2 ]; then
    echo "usage: check_man_options.sh PROGRAM MANPAGE" >&2
    exit 2
fi
prog=$1
page=$2
[ -f "$page" ] || { echo "check_man_options: $page: no such file" >&2; exit 1; }

help=$("$prog" --help) || { echo "check_man_options: $prog --help failed" >&2; exit 1; }

# Options from --help: the option column of lines that start with blanks and
# a dash, e.g. "  -o, --output FILE   write ..." or "      --json   print ...".
help_opts=$(printf '%s\n' "$help" |
    sed -n 's/^ \{1,8\}\(-[A-Za-z0-9?], \)\{0,1\}\(--[A-Za-z0-9][A-Za-z0-9-]*\).*/\1\2/p' |
    tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -E '^--?[A-Za-z0-9]' | sort -u)
if [ -z "$help_opts" ]; then
    echo "check_man_options: no options found in '$prog --help'" >&2
    exit 1
fi

# The page as text. mandoc's ascii output marks bold with backspaces.
if [ -z "${CHECK_MAN_NO_MANDOC:-}" ] && command -v mandoc >/dev/null 2>&1; then
    text=$(mandoc -T ascii "$page" | sed 's/.\x08//g')
else
    text=$(sed -e 's/\\-/-/g' -e 's/\\&//g' "$page" |
        sed -e 's/\([ (]\)Fl \([A-Za-z0-9-]\)/\1-\2/g' -e 's/^\.Fl \([A-Za-z0-9-]\)/.-\1/' \
            -e 's/\([ (]\)Fl \([A-Za-z0-9-]\)/\1-\2/g')
fi

status=0
for opt in $help_opts; do
    if ! printf '%s\n' "$text" | grep -Eq -- "(^|[^A-Za-z0-9-])$opt([^A-Za-z0-9-]|\$)"; then
        echo "check_man_options: $page does not mention $opt (listed by $prog --help)"
        status=1
    fi
done

# Options the page defines: ".It Fl q , Fl -quiet" and ".It Fl -shape Ar x".
page_opts=$(sed -n 's/\\-/-/g; s/^\.It Fl //p' "$page" |
    sed 's/ Fl / /g; s/ Ar .*//; s/ , / /g; s/ ,$//' | tr ' ' '\n' |
    grep -E '^-?[A-Za-z0-9][A-Za-z0-9-]*$' | sed 's/^/-/' | sort -u)
for opt in $page_opts; do
    if ! printf '%s\n' "$help_opts" | grep -qx -- "$opt"; then
        echo "check_man_options: $page defines $opt, which $prog --help does not list"
        status=1
    fi
done
[ $status -eq 0 ] && echo "check_man_options: $(printf '%s\n' "$help_opts" | wc -l | tr -d ' ') options of $(basename "$prog") documented in $(basename "$page")"
exit $status
