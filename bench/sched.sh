#!/usr/bin/env bash
# bench/sched.sh — issue 4's scheduling figures against a real hearthd.
#
# A thin wrapper around bench/sched.py (see its header for the cases and
# every SCHED_* variable): takes $HEARTHD or <repo>/build/hearthd (configured
# and built with CMake if missing), then runs sched.py with /usr/bin/python3
# as root, through sudo when not already root. sched.py starts the daemons
# on free 127.0.0.1 ports with temp data dirs and prints one plain-text
# report on stdout (progress on stderr):
#   1. cold start end to end (Python hello), 2. warm latency at c1,
#   3. bursts 0 -> 32 workers, 4. 100 warm functions vs one,
#   5. idle warm worker PSS, 6. daemon RSS with 10,000 functions,
# and a table: what | figure | target | met?
#
#   bench/sched.sh
#   SCHED_FUNCTIONS=2000 SCHED_DURATION=3 bench/sched.sh > report.txt
#
# Takes about 2 minutes on 2 vCPUs (plus the build if there is none).
#
# Exit status: that of sched.py: 0 when the run completed (missed targets
# are not an error), 1 when a case failed, 2 on a set-up failure, 130 when
# interrupted. Everything it starts is stopped and its temp dir removed.
set -euo pipefail

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench sched SCHED_ bench/sched.py
