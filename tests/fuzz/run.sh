#!/usr/bin/env bash
# tests/fuzz/run.sh — builds the libFuzzer targets with clang and runs them.
#
#   run.sh smoke BUILD_DIR [SECONDS]   (ctest fuzz_smoke; SECONDS defaults to 5)
#     every regression input and every seed once, then each target for
#     SECONDS; new inputs go to a scratch folder, the repo's corpus is
#     never written.
#   run.sh long BUILD_DIR [SECONDS]    (make fuzz; SECONDS defaults to 300)
#     each target for SECONDS, one after another, keeping what it finds in
#     BUILD_DIR/corpus/<target>/ across runs.
#   FUZZ_TARGETS="cron routes" limits either to some targets.
#
# A crash stops the run (exit 1) and leaves its input in
# BUILD_DIR/artifacts/: add it to regressions/<target>/ with the fix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:?usage: run.sh smoke|long BUILD_DIR [SECONDS]}
build=${2:?usage: run.sh smoke|long BUILD_DIR [SECONDS]}
case "$mode" in
  smoke) seconds=${3:-5} ;;
  long) seconds=${3:-300} ;;
  *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
[ -n "$cc" ] || { echo "run.sh: clang not found (scripts/deps.sh --test installs it)" >&2; exit 1; }

# A plain configure: the targets set their own sanitizer flags.
env -u CFLAGS -u LDFLAGS cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=None >/dev/null
cmake --build "$build" -j "${JOBS:-2}" >/dev/null

targets=${FUZZ_TARGETS:-$(sed -n 's/^set(HEARTH_FUZZ_TARGETS \(.*\))$/\1/p' "$here/CMakeLists.txt")}
mkdir -p "$build/artifacts" "$build/tmp"
# Scratch folders (package's) go to the build folder; spawn_msg's code root
# has a fixed name its seeds can point at, removed at the end.
export TMPDIR="$build/tmp"
trap 'rm -rf /tmp/hearth-fuzz-code "$build/tmp"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total_runs=0
for t in $targets; do
  bin="$build/fuzz_$t"
  seeds="$here/corpus/$t"
  regress="$here/regressions/$t"
  opts=(-artifact_prefix="$build/artifacts/$t-" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
    "$bin" "${opts[@]}" "$regress"/* >"$build/$t.regressions.log" 2>&1 ||
      { cat "$build/$t.regressions.log" >&2; echo "fuzz $t: a regression input fails" >&2; exit 1; }
  fi
  if [ "$mode" = smoke ]; then
    work=$(mktemp -d "$build/corpus-$t.XXXXXX")
  else
    work="$build/corpus/$t"
    mkdir -p "$work"
  fi
  log="$build/$t.log"
  rc=0
  "$bin" "${opts[@]}" -max_total_time="$seconds" "$work" "$seeds" >"$log" 2>&1 || rc=$?
  [ "$mode" = smoke ] && rm -rf "$work"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz $t: ${seconds}s, ${runs:-?} runs, exit $rc"
  total_runs=$((total_runs + ${runs:-0}))
  if [ "$rc" -ne 0 ]; then
    tail -60 "$log" >&2
    echo "fuzz $t: FAILED; the input is in $build/artifacts/" >&2
    exit 1
  fi
done
echo "fuzz: every target clean ($total_runs runs)"
