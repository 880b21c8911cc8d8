#!/usr/bin/env bash
# bench/sandbox_cost.sh — what each piece of the worker sandbox costs.
#
# Builds bench/sandbox_cost.c against the hearthcore library and runs it as
# root, then again rootless as nobody: N spawns of /bin/true from
# sandbox_spawn() to reaped and released, for the full sandbox, each piece
# off in turn, no sandbox, and posix_spawn / fork+exec floors; then PY_N
# Python cold starts with and without the sandbox. Prints one plain-text
# report on stdout. Takes ~15 s to build and ~30 s to run.
#
# Environment:
#   HEARTHCORE    a built libhearthcore.a (default: configure and build one
#                 from this checkout in a temp dir, ~15 s)
#   SANDBOX_N     spawns per case (default 200)
#   SANDBOX_PY_N  Python cold starts per case (default 30)
#
# Exit status: that of sandbox_cost (0 ok, 1 a case failed, 2 set-up failure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${SANDBOX_N:-200}
PY_N=${SANDBOX_PY_N:-30}

if [ "$(id -u)" != 0 ]; then
    echo "sandbox_cost: needs root (it runs as root, then rootless as nobody)" >&2
    exit 2
fi

TMP=$(mktemp -d /tmp/hearth-sandbox-cost.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

lib=${HEARTHCORE:-}
if [ -z "$lib" ]; then
    echo "sandbox_cost: building hearthcore in $TMP/build..." >&2
    if ! cmake -S "$REPO" -B "$TMP/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$TMP/cmake.log" 2>&1 ||
        ! cmake --build "$TMP/build" --target hearthcore -j "$(nproc)" >>"$TMP/cmake.log" 2>&1; then
        cat "$TMP/cmake.log" >&2
        exit 2
    fi
    lib=$TMP/build/libhearthcore.a
fi
[ -f "$lib" ] || {
    echo "sandbox_cost: no library at $lib" >&2
    exit 2
}

# shellcheck disable=SC2046 # pkg-config prints several flags on purpose
gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -iquote "$REPO/src" -I"$REPO/include" \
    "$REPO/bench/sandbox_cost.c" "$lib" \
    $(pkg-config --libs libmicrohttpd libuv jansson libseccomp sqlite3 libarchive) -lpthread \
    -o "$TMP/sandbox_cost"

status=0
"$TMP/sandbox_cost" "$N" "$PY_N" || status=$?
# Rootless: the same cases as nobody (cgroups not delegated here, so the
# cgroup rows equal their neighbours).
if command -v setpriv >/dev/null; then
    echo
    echo "=== rootless (as nobody) ==="
    chmod 755 "$TMP"
    (cd /tmp && setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$TMP/sandbox_cost" "$N" "$PY_N") || status=$?
fi
exit "$status"
