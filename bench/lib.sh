# bench/lib.sh — what the shell benches share: sourced, never run. Each
# script sets BENCH (its name, for messages), PY and, for daemons, TMP
# (its temp dir), REPO, BUILD (the CMake build dir) and HEARTHD before
# using these.

die() {
    echo "${BENCH:-bench}: $*" >&2
    exit 2
}

# Sends TERM to one process we started, waits up to 5 s, then KILL.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fmt_us MICROSECONDS -> "123 us", "1.23 ms" or "1.23 s"
fmt_us() {
    awk -v u="$1" 'BEGIN {
        if (u < 1000) printf "%d us", u
        else if (u < 1000000) printf "%.2f ms", u / 1000
        else printf "%.2f s", u / 1000000 }'
}

# wrk_post URL C: one wrk run of $DURATION POSTing post.lua's body to URL
# over C connections (HEARTH_TOKEN, BENCH_HEADERS as the caller set them);
# prints "req/s p50_us p99_us", or stops the script when wrk printed no
# figures or any answer was not 2xx.
wrk_post() {
    local url=$1 c=$2 t=2
    [ "$c" -lt 2 ] && t=1
    wrk -t"$t" -c"$c" -d"$DURATION" -s "$REPO/bench/post.lua" "$url" >"$TMP/wrk.out" 2>&1 || true
    local line kv
    line=$(grep '^BENCH ' "$TMP/wrk.out") || { cat "$TMP/wrk.out" >&2; exit 1; }
    local -A f
    for kv in ${line#BENCH }; do f[${kv%%=*}]=${kv#*=}; done
    [ "${f[non2xx]}" = 0 ] || die "$url answered ${f[non2xx]} non-2xx"
    awk -v r="${f[requests]}" -v d="${f[duration_us]}" -v p="${f[p50_us]}" -v q="${f[p99_us]}" \
        'BEGIN { printf "%.0f %d %d\n", r * 1e6 / d, p, q }'
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# start_named NAME BINARY [ARGS...]: a daemon on a free loopback port with
# data in $TMP/NAME, its log in $TMP/NAME.log; its pid joins PIDS and
# PORT_<NAME> is set once /healthz answers (10 s at most).
start_named() {
    local name=$1 bin=$2 port
    shift 2
    port=$(free_port)
    "$bin" --listen "127.0.0.1:$port" --data-dir "$TMP/$name" --log-level warn \
        "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    printf -v "PORT_$name" %s "$port"
}

# Stops every daemon in PIDS and removes TMP: the EXIT trap of scripts
# that start them with start_named.
stop_named_and_clean() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}

# bench_bin NAME: prints $BUILD/bench_NAME (bench/NAME.c, CMakeLists.txt),
# built or brought up to date in $BUILD first. $BUILD is configured only if
# it never was, so a build made for the tests keeps its options
# (HEARTH_TESTS, cmocka): a bench never configures it again.
bench_bin() {
    local name=$1 log
    log=$(mktemp /tmp/hearth-bench-cmake.XXXXXX)
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$log" 2>&1 ||
            { cat "$log" >&2; rm -f "$log"; die "cannot configure $BUILD"; }
    fi
    cmake --build "$BUILD" --target "bench_$name" -j2 >>"$log" 2>&1 ||
        { cat "$log" >&2; rm -f "$log"; die "cannot build bench_$name in $BUILD"; }
    rm -f "$log"
    echo "$BUILD/bench_$name"
}
