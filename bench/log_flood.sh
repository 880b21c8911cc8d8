#!/usr/bin/env bash
# bench/log_flood.sh — what functions flooding their logs with short lines
# cost everyone else (issue 9, point 2).
#
# A thin wrapper around bench/log_flood.py (see its header for the cases and
# the FLOOD_* variables): takes $HEARTHD or <repo>/build/hearthd (built if
# missing) and runs it with /usr/bin/python3 as root. It prints /healthz and
# a warm bystander's latency with 0, 1 and 10 flooders, the no-flood row
# being the baseline of the same run.
#
#   bench/log_flood.sh
#   HEARTHD=/other/build/hearthd bench/log_flood.sh   # compare two builds
#
# Takes about 40 s.
set -euo pipefail

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench log_flood FLOOD_ bench/log_flood.py
