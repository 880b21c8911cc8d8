#!/usr/bin/env bash
# bench/runtimes.sh — cold start, warm latency and req/s of each Hearth runtime.
#
# A thin wrapper around bench/runtimes.py (see its header for the cases and
# every RT_* variable): takes $HEARTHD or <repo>/build/hearthd (configured
# and built with CMake if missing), then runs runtimes.py with
# /usr/bin/python3 as root, through sudo when not already root. runtimes.py
# starts one daemon on a free 127.0.0.1 port with a temp data dir, measures
# a hello function of every usable runtime (python3, node, exec, lambda):
# cold start p50/p99, warm p50/p99 at one connection, req/s at 1 and 8
# connections (wrk with bench/post.lua when installed), and prints one
# plain-text table on stdout (progress on stderr).
#
#   bench/runtimes.sh
#   RT_COLD_N=50 RT_DURATION=5 RT_RUNTIMES=python3,node bench/runtimes.sh > report.txt
#
# Takes about 2.5 minutes on 2 vCPUs (plus the build if there is none).
#
# Exit status: that of runtimes.py: 0 when the run completed, 1 when a case
# failed, 2 on a set-up failure, 130 when interrupted. Everything it starts
# is stopped and its temp dir removed.
set -euo pipefail

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench runtimes RT_ bench/runtimes.py
