#!/bin/sh
# check-format.sh — every C file under src/, tests/ and bench/ is as
# clang-format (with the repo's .clang-format) would write it. Prints
# clang-format's warnings; exit 0 clean, 1 not formatted, 2 no clang-format.
# Fix with: clang-format -i FILE (on the files you change).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cf=${CLANG_FORMAT:-clang-format}
command -v "$cf" >/dev/null 2>&1 || { echo "check-format: $cf not found" >&2; exit 2; }
files=$(find src tests/unit tests/fuzz tests/faults bench -type f \( -name '*.c' -o -name '*.h' \) | sort)
# shellcheck disable=SC2086 # one word a path: none has a space
if "$cf" --dry-run -Werror $files; then
    echo "check-format: clean"
else
    echo "check-format: the files above differ from clang-format's output" >&2
    exit 1
fi
