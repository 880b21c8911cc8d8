#!/usr/bin/env bash
# bench/soak.sh — issue 15's soak: SOAK_SECONDS (600) of mixed load against
# one hearthd (sync and async calls, deploys, follow streams, bad requests,
# crashing and killed workers), with the daemon's RSS, fds, workers, cgroup
# leaves and mounts sampled every SOAK_SAMPLE (10) s. bench/soak.py holds
# the load, the growth rule and the verdict; this wrapper finds hearthd and
# runs it with Debian's python3 as root (through sudo when not root): it
# reads other users' /proc entries and kills the workers it crashes.
#
# Environment: HEARTHD [$BUILD/hearthd], BUILD [<repo>/build], SOAK_SECONDS
#   [600], SOAK_SAMPLE [10], SOAK_ARGS [more hearthd options], SOAK_JSON
#   [none: a file for the figures as JSON], HEARTH_E2E_ROOTLESS [none: a
#   user to run the daemon as, rootless mode], SOAK_LOADS [all: a list of
#   sync,async,deploy,follow,bad,crash].
# Exit status: soak.py's: 0 PASS, 1 FAIL, 2 set-up failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
export HEARTHD=${HEARTHD:-$BUILD/hearthd}
[ -x "$HEARTHD" ] || { echo "soak: no hearthd at $HEARTHD (make build, or set HEARTHD)" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=HEARTHD,SOAK_SECONDS,SOAK_SAMPLE,SOAK_ARGS,SOAK_JSON,SOAK_LOADS,HEARTH_E2E_ROOTLESS \
        /usr/bin/python3 "$REPO/bench/soak.py"
fi
exec /usr/bin/python3 "$REPO/bench/soak.py"
