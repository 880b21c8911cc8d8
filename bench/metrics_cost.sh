#!/usr/bin/env bash
# bench/metrics_cost.sh — what recording and rendering /metrics cost.
#
# Runs $BUILD/bench_metrics_cost (bench/metrics_cost.c against the
# daemon's src/metrics.c, built by CMake if needed; no daemon): it prints
# two lines: the
# nanoseconds a call spends on metrics (clock reads included), and the
# time and size of one scrape of 10,000 functions. The warm-path ratio
# with metrics on is measured end to end by bench/run.sh.
#
# Environment:
#   BUILD     the CMake build dir (default <repo>/build)
#   MC_CALLS  recorded calls (default 10000000)
#   MC_FNS    functions in the scrape (default 10000)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
BENCH=metrics_cost
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
MC=$(bench_bin metrics_cost)
"$MC" "${MC_CALLS:-10000000}" "${MC_FNS:-10000}"
