#!/usr/bin/env bash
# bench/keepalive_sim.sh — the adaptive keep-alive policy against a fixed one.
#
# Builds bench/keepalive_sim.c with src/keepalive.c (gcc, no daemon, no
# CMake) and runs it: a synthetic week of calls shaped like the Azure
# Functions trace (timers, Poisson and bursty on/off functions, rates from
# several a minute to one a day), replayed against a fixed 10-minute
# keep-alive and against the hybrid histogram policy of "Serverless in the
# Wild" (ATC '20) with the paper's parameters. Measures, per policy: the
# cold-start ratio (all calls, and the 75th percentile per function), idle
# worker-hours, wasted memory time (GB-hours) and worker starts; per kind
# of function and per call rate; the fixed keep-alive that idles as much as
# the adaptive policy; and a few variants of the policy. Prints one
# plain-text report on stdout. Takes ~2 s to build and ~1 s to run;
# deterministic for a given seed.
#
# Environment:
#   KA_SEED   trace seed (default 1)
#   KA_FUNCS  functions (default 200)
#   KA_DAYS   simulated days (default 7)
#
# Exit status: that of keepalive_sim (0 the adaptive policy has both a lower
# cold-start ratio and fewer idle worker-seconds than the fixed 10 minutes,
# 1 it has not, 2 set-up failure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEED=${KA_SEED:-1}
FUNCS=${KA_FUNCS:-200}
DAYS=${KA_DAYS:-7}

TMP=$(mktemp -d /tmp/hearth-keepalive-sim.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if ! gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -iquote "$REPO/src" \
    "$REPO/bench/keepalive_sim.c" "$REPO/src/keepalive.c" -lm -o "$TMP/keepalive_sim"; then
    echo "keepalive_sim: build failed" >&2
    exit 2
fi

status=0
"$TMP/keepalive_sim" "$SEED" "$FUNCS" "$DAYS" || status=$?
exit "$status"
