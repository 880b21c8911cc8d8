# bench/python_bench.sh — sourced by the wrappers of the Python benchmarks
# (sched.sh, runtimes.sh): finds or builds hearthd, then runs the Python
# script with /usr/bin/python3 as root, through sudo when not root already.
#
# Usage, from a wrapper: . bench/python_bench.sh; run_python_bench NAME PREFIX SCRIPT
#   NAME    how errors are signed ("sched: ...")
#   PREFIX  the environment variables to hand over through sudo (SCHED_, RT_)
#   SCRIPT  the Python benchmark, relative to the repository
# Exits 2 on a set-up failure; otherwise execs the script (its status).

run_python_bench() {
    local name=$1 prefix=$2 script=$3
    local repo py=/usr/bin/python3 # the real interpreter, as the runtime uses
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    die() {
        echo "$name: $*" >&2
        exit 2
    }
    [ -x "$py" ] || die "$py is missing"
    if [ -z "${HEARTHD:-}" ]; then
        HEARTHD=$repo/build/hearthd
        if [ ! -x "$HEARTHD" ]; then
            echo "$name: building hearthd in $repo/build" >&2
            cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
                die "cmake configure failed"
            cmake --build "$repo/build" -j "$(nproc)" >/dev/null || die "build failed"
        fi
    fi
    [ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD"
    export HEARTHD
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "needs root (the worker sandbox does), and sudo is missing"
        # sudo drops the environment: hand the settings over explicitly.
        local vars=(HEARTHD="$HEARTHD") var
        while IFS= read -r var; do
            vars+=("$var=${!var}")
        done < <(compgen -e | grep "^$prefix" || true)
        exec sudo -- env "${vars[@]}" "$py" "$repo/$script"
    fi
    exec "$py" "$repo/$script"
}
