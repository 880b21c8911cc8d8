#!/usr/bin/env bash
# bench/keepalive_sim.sh — the adaptive keep-alive policy against a fixed one.
#
# Runs $BUILD/bench_keepalive_sim (bench/keepalive_sim.c with the daemon's
# src/keepalive.c, built by CMake if needed; no daemon): a synthetic week of calls shaped like the Azure
# Functions trace (timers, Poisson and bursty on/off functions, rates from
# several a minute to one a day), replayed against a fixed 10-minute
# keep-alive and against the hybrid histogram policy of "Serverless in the
# Wild" (ATC '20) with the paper's parameters. Measures, per policy: the
# cold-start ratio (all calls, and the 75th percentile per function), idle
# worker-hours, wasted memory time (GB-hours) and worker starts; per kind
# of function and per call rate; the fixed keep-alive that idles as much as
# the adaptive policy; and a few variants of the policy. Prints one
# plain-text report on stdout. Takes ~1 s to run;
# deterministic for a given seed.
#
# Environment:
#   BUILD     the CMake build dir (default <repo>/build)
#   KA_SEED   trace seed (default 1)
#   KA_FUNCS  functions (default 200)
#   KA_DAYS   simulated days (default 7)
#
# Exit status: that of keepalive_sim (0 the adaptive policy has both a lower
# cold-start ratio and fewer idle worker-seconds than the fixed 10 minutes,
# 1 it has not, 2 set-up failure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
BENCH=keepalive_sim
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
SEED=${KA_SEED:-1}
FUNCS=${KA_FUNCS:-200}
DAYS=${KA_DAYS:-7}

SIM=$(bench_bin keepalive_sim)

status=0
"$SIM" "$SEED" "$FUNCS" "$DAYS" || status=$?
exit "$status"
