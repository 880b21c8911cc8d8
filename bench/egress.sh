#!/usr/bin/env bash
# bench/egress.sh — what the egress network mode costs a worker's start
# (issue 13): a thin wrapper around bench/egress.py (see its header), which
# starts hearthd twice (without, then with pre-built pools) on a free
# 127.0.0.1 port and prints isolated vs egress cold - warm, p50.
#
#   bench/egress.sh             # about a minute on 2 vCPUs
#   bench/egress.sh --quick     # small counts (~15 s)
#
# Exit status: egress.py's (0 completed, 1 a case failed, 2 set-up).
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh's die
BENCH=egress
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for arg in "$@"; do
    case $arg in
    --quick) export EGRESS_QUICK=1 ;;
    *) die "unknown argument: $arg (usage: bench/egress.sh [--quick])" ;;
    esac
done

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench egress EGRESS_ bench/egress.py
