#!/usr/bin/env bash
# bench/cold_timeline.sh — where a cold call's time goes with pre-built
# sandboxes (issue 12): CLAIM, ATTACH, SPECIALIZE, READY, INVOKE, RESULT,
# step by step, from `perf trace` of hearthd, its spawner and the ready
# pre-built python3 sandboxes (init and runtime) during single cold calls.
#
# A thin wrapper around bench/cold_timeline.py (see its header for the
# method and every TL_* variable): takes $HEARTHD or <repo>/build/hearthd
# (configured and built with CMake if missing), then runs the script with
# /usr/bin/python3 as root, through sudo when not already root. It starts
# one hearthd --no-auth on a free 127.0.0.1 port with a temp data dir and
# prints the timeline (median and range per step over TL_N traced calls),
# the client's time of the same calls, the client's time of TL_PLAIN
# untraced calls (what tracing adds) and the slow syscalls seen.
#
#   bench/cold_timeline.sh                 # about 15 s
#   TL_N=20 TL_PLAIN=10 bench/cold_timeline.sh
#   TL_TRACER=strace bench/cold_timeline.sh   # strace instead of perf (much heavier)
#
# Exit status: that of cold_timeline.py: 0 when at least one traced call
# could be read, 1 when none could or a call failed, 2 on a set-up failure,
# 130 when interrupted. The tracer, hearthd and the temp dir are always
# stopped / removed.
set -euo pipefail

for arg in "$@"; do
    case $arg in
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "cold_timeline: unknown argument: $arg (usage: bench/cold_timeline.sh)" >&2
        exit 2
        ;;
    esac
done

# shellcheck source=bench/python_bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/python_bench.sh"
run_python_bench cold_timeline TL_ bench/cold_timeline.py
