#!/usr/bin/env bash
# bench/sandbox_cost.sh — what each piece of the worker sandbox costs.
#
# Runs $BUILD/bench_sandbox_cost (bench/sandbox_cost.c against the
# hearthcore library, built by CMake if needed) as root, then again rootless as nobody: N spawns of /bin/true from
# sandbox_spawn() to reaped and released, for the full sandbox, each piece
# off in turn, no sandbox, and posix_spawn / fork+exec floors; then PY_N
# Python cold starts with and without the sandbox. Prints one plain-text
# report on stdout. Takes ~30 s to run (and a build of hearthcore if $BUILD
# has none).
#
# Environment:
#   BUILD         the CMake build dir (default <repo>/build)
#   SANDBOX_N     spawns per case (default 200)
#   SANDBOX_PY_N  Python cold starts per case (default 30)
#
# Exit status: that of sandbox_cost (0 ok, 1 a case failed, 2 set-up failure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
BENCH=sandbox_cost
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
N=${SANDBOX_N:-200}
PY_N=${SANDBOX_PY_N:-30}

if [ "$(id -u)" != 0 ]; then
    echo "sandbox_cost: needs root (it runs as root, then rootless as nobody)" >&2
    exit 2
fi

SC=$(bench_bin sandbox_cost)
TMP=$(mktemp -d /tmp/hearth-sandbox-cost.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# A copy the rootless run (as nobody) can reach: $BUILD may sit under a
# folder nobody cannot enter.
cp "$SC" "$TMP/sandbox_cost"

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
