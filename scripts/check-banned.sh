#!/bin/sh
# check-banned.sh — fails on a call to a function C code here must not use
# (as curl's checksrc does): unbounded copies and formats (sprintf,
# vsprintf, strcpy, strcat, gets), parsers that cannot report an error
# (atoi, atol, atoll: use decimal.h), hidden state (strtok), racy temporary
# names (tmpnam, tempnam, mktemp) and unbounded stack (alloca).
#
# Scans src/ and tests/unit/. A justified exception is one line of
# scripts/banned-exceptions.txt: "path:function  why". Prints file:line of
# each offence; exit 0 clean, 1 offences, 2 could not run.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
banned='sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|atoll|strtok|tmpnam|tempnam|mktemp|alloca'
exceptions=scripts/banned-exceptions.txt
[ -d src ] || { echo "check-banned: no src/ in $root" >&2; exit 2; }
# A call: the name as a word, not a member or part of a longer name
# (snprintf, strtok_r, mkstemp are fine), then "(".
hits=$(grep -rnE "(^|[^A-Za-z0-9_.>])($banned)[[:space:]]*\(" src tests/unit \
           --include='*.c' --include='*.h' || true)
bad=0
printf '%s\n' "$hits" | while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    text=${rest#*:}
    # Comments and strings that merely name a function are not calls.
    code=$(printf '%s' "$text" | sed -e 's|//.*||' -e 's|/\*.*\*/||g' -e 's|^[[:space:]]*\*.*||' \
                                     -e 's|"[^"]*"||g')
    fn=$(printf '%s' "$code" | grep -oE "(^|[^A-Za-z0-9_.>])($banned)[[:space:]]*\(" | head -n1 |
         sed -E "s/^[^A-Za-z]*//; s/[[:space:]]*\($//")
    [ -n "$fn" ] || continue
    if [ -f "$exceptions" ] && grep -qE "^$file:$fn[[:space:]]" "$exceptions"; then
        continue
    fi
    printf "%s:%s: %s() is banned: %s\n" "$file" "$line" "$fn" "$text"
    echo x
done > /tmp/check-banned.$$ 
if grep -q '^x$' /tmp/check-banned.$$; then
    grep -v '^x$' /tmp/check-banned.$$
    rm -f /tmp/check-banned.$$
    exit 1
fi
rm -f /tmp/check-banned.$$
echo "check-banned: clean"
