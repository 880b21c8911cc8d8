#!/usr/bin/env bash
# bench/cold.sh — issue 12's cold-start figures (pre-built single-use
# sandboxes) against a real hearthd.
#
# A thin wrapper around bench/cold.py (see its header for the cases and
# every COLD_* variable): takes $HEARTHD or <repo>/build/hearthd (configured
# and built with CMake if missing), then runs cold.py with /usr/bin/python3
# as root, through sudo when not already root. cold.py starts one daemon on
# a free 127.0.0.1 port with a temp data dir and prints one plain-text
# report on stdout (progress on stderr), ending with a table
# what | figure | baseline (same run) | target | met?:
#   0. the machine (fork+exec, python3 -c pass, the HTTP floor),
#   1-3. cold - warm call of a Python, C and node hello (p50, p99),
#   4. 32 simultaneous first calls, 5. 100 warm functions vs one (wrk),
#      beside 100 vs 8 bare python3 worker processes (no daemon, driven by
#      bench/frame_driver.c, built with cc at the start),
#   6. deploy then call vs a cold call, 7. idle pre-built sandbox PSS.
# It works with and without the pre-built pool (no hearth_prebuilt_*
# metrics: fixed gaps between cold calls, PSS "n/a").
#
#   bench/cold.sh               # about 1 minute on 2 vCPUs
#   bench/cold.sh --quick       # small counts, a smoke test (~10 s)
#   COLD_N=100 bench/cold.sh > report.txt
#   COLD_ONLY=5 bench/cold.sh   # only case 5 (about 35 s)
#   COLD_DAEMON_ARGS="--prebuilt-max 0" bench/cold.sh   # without the pool: the "before"
#
# Exit status: that of cold.py: 0 when the run completed (missed targets
# are not an error), 1 when a case failed, 2 on a set-up failure or a bad
# argument, 130 when interrupted. Everything it starts is stopped and its
# temp dir removed.
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh's die
BENCH=cold
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for arg in "$@"; do
    case $arg in
    --quick) export COLD_QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $arg (usage: bench/cold.sh [--quick])" ;;
    esac
done

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench cold COLD_ bench/cold.py
