#!/bin/sh
# The set-up promise of the README, kept by a test: `make run` builds on a
# machine with only the run dependencies (scripts/deps.sh without --test).
# The test packages cannot be uninstalled here (the suite needs them), so
# pkg-config is shown only the .pc files of the modules CMakeLists.txt
# asks for (and what they require): cmocka disappears, as on a machine
# without libcmocka-dev. Then, in a temporary build folder:
#   1. a configure that fails (no module visible at all) leaves its
#      half-written cache behind;
#   2. `make build` with the run dependencies visible must still succeed
#      (the Makefile keys its configure step on build/Makefile), without
#      unit tests, and give a working hearthd.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/pc" "$tmp/empty"

# The modules of pkg_check_modules(DEPS ...) and of the CLI's (CLIDEPS ...):
# one home for those lists.
mods=$(sed -n '/pkg_check_modules(\(CLI\)\{0,1\}DEPS/,/)/p' "$src/CMakeLists.txt" |
    sed -e 's/.*IMPORTED_TARGET//' -e 's/[()]//g' | tr -s ' \n' ' ')
[ -n "$mods" ] || { echo "no module list found in CMakeLists.txt" >&2; exit 1; }

# Each module's .pc and those of everything it requires, recursively.
link_closure() {
    for m in "$@"; do
        [ -e "$tmp/pc/$m.pc" ] && continue
        pc=$(pkg-config --path "$m") || { echo "run dependency $m not installed" >&2; exit 1; }
        ln -s "$pc" "$tmp/pc/$m.pc"
        req=$(pkg-config --print-requires --print-requires-private "$m" | awk '{print $1}')
        [ -z "$req" ] || link_closure $req
    done
}
link_closure $mods
if PKG_CONFIG_LIBDIR="$tmp/pc" pkg-config --exists cmocka; then
    echo "cmocka is still visible: the test would prove nothing" >&2
    exit 1
fi

# 1. A configure that fails half-way.
if PKG_CONFIG_LIBDIR="$tmp/empty" cmake -S "$src" -B "$tmp/build" >"$tmp/fail.log" 2>&1; then
    echo "configure succeeded with no module visible" >&2
    exit 1
fi
[ -e "$tmp/build/CMakeCache.txt" ] || { echo "(no cache left behind: nothing to prove)" >&2; }

# 2. What `make run` does, with only the run dependencies.
if ! PKG_CONFIG_LIBDIR="$tmp/pc" make -C "$src" --no-print-directory BUILD="$tmp/build" \
    JOBS=2 build >"$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log" >&2
    echo "make build failed with only the run dependencies visible" >&2
    exit 1
fi
if grep -q '^CMOCKA_FOUND:INTERNAL=1' "$tmp/build/CMakeCache.txt"; then
    echo "cmocka was found although hidden" >&2
    exit 1
fi
"$tmp/build/hearthd" --version
"$tmp/build/hearth" --help >/dev/null # the CLI is part of `make run`'s build
echo "ok: configured and built with only: $mods"
