#!/usr/bin/env bash
# bench/metrics_cost.sh — what recording and rendering /metrics cost.
#
# Builds bench/metrics_cost.c with src/metrics.c, src/buf.c and
# src/timefmt.c (gcc -O2, no daemon, no CMake) and prints two lines: the
# nanoseconds a call spends on metrics (clock reads included), and the
# time and size of one scrape of 10,000 functions. The warm-path ratio
# with metrics on is measured end to end by bench/run.sh.
#
# Environment:
#   MC_CALLS  recorded calls (default 10000000)
#   MC_FNS    functions in the scrape (default 10000)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d /tmp/hearth-metrics-cost.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if ! gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -iquote "$REPO/src" \
    "$REPO/bench/metrics_cost.c" "$REPO/src/metrics.c" "$REPO/src/buf.c" "$REPO/src/timefmt.c" \
    $(pkg-config --cflags --libs libuv) -o "$TMP/metrics_cost"; then
    echo "metrics_cost: build failed" >&2
    exit 2
fi
"$TMP/metrics_cost" "${MC_CALLS:-10000000}" "${MC_FNS:-10000}"
