#!/usr/bin/env bash
# bench/run.sh — Hearth's benchmark: a report, not a test.
#
# In one run, on 127.0.0.1 only:
#   1. runs $BUILD/bench_mhd_hello (bench/mhd_hello.c, the bare
#      libmicrohttpd baseline, built by CMake if needed) and runs wrk against it at 1, 16, 64, 128 and 256
#      connections (128 and 256 prove MHD's ready-list stall is absent);
#   2. starts hearthd with a temp data dir and measures cold starts: deploy a
#      new version, time the deploy and its first invocation with curl
#      (COLD_N times), and `python3 -I -B -c pass` for scale;
#   3. deploys a trivial Python function, sends it as many simultaneous
#      first invocations as workers it may have (a cold burst, which is also
#      the warm-up), waits for the pool to settle, and runs wrk POSTs to
#      /v1/functions/hello/invoke at 1, 16, 64 and 128 connections;
#   4. prints one table: req/s, p50, p99, and the ratio to the baseline at
#      the same connection count.
# Everything it starts is stopped and its temp dir removed on exit.
#
# Environment:
#   BUILD         the CMake build dir (default <repo>/build)
#   HEARTHD       a built hearthd (default $BUILD/hearthd, built if missing)
#   DURATION      length of each wrk run (default 5s)
#   COLD_N        cold starts measured (default 20)
#   BASE_CONNS    baseline connection counts (default "1 16 64 128 256")
#   WARM_CONNS    hearthd connection counts (default "1 16 64 128")
#   MAX_WORKERS   hearthd --max-workers (default 64: -c128 queues half the calls)
#   BENCH_OUT     if set, a directory where the raw wrk/curl output is kept
#
# Exit status: 0 when every case answered only 2xx without socket errors,
# 1 otherwise (the table is printed either way), 2 on a setup failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
DURATION=${DURATION:-5s}
COLD_N=${COLD_N:-20}
BASE_CONNS=${BASE_CONNS:-"1 16 64 128 256"}
WARM_CONNS=${WARM_CONNS:-"1 16 64 128"}
MAX_WORKERS=${MAX_WORKERS:-64}
PY=/usr/bin/python3 # the real interpreter, as the runtime uses (not a PATH shim)
unset HEARTH_TOKEN # set to the started daemon's admin token below

TMP=$(mktemp -d /tmp/hearth-bench.XXXXXX)
BASE_PID=
HEARTHD_PID=
declare -A RPS P50 P99 NOTE # keyed by case name
ROWS=()                    # case names in print order
FAILED=0
BENCH=bench
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

die() {
    echo "bench: $*" >&2
    exit 2
}

cleanup() {
    stop_pid "$HEARTHD_PID"
    stop_pid "$BASE_PID"
    if [ -n "${BENCH_OUT:-}" ]; then
        mkdir -p "$BENCH_OUT"
        cp "$TMP"/*.out "$TMP"/*.log "$BENCH_OUT"/ 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench: command failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM

# Every request to hearthd carries its admin token (HEARTH_TOKEN, set once
# it has started; post.lua sends it too): the figures include the check.
ccurl() { curl --noproxy '*' -sS ${HEARTH_TOKEN:+-H "Authorization: Bearer $HEARTH_TOKEN"} "$@"; }

# Polls URL until it answers 200, for up to 10 s.
wait_http() {
    for _ in $(seq 100); do
        [ "$(ccurl -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# Runs wrk against URL with C connections and records the row NAME.
run_wrk() {
    local name=$1 url=$2 c=$3 t=2
    [ "$c" -lt 2 ] && t=1 # wrk needs threads <= connections
    local out="$TMP/wrk-$name.out"
    wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$REPO/bench/post.lua" "$url" >"$out" 2>&1 ||
        true
    local line
    line=$(grep '^BENCH ' "$out" || true)
    if [ -z "$line" ]; then
        echo "bench: wrk failed for $name:" >&2
        cat "$out" >&2
        RPS[$name]=0 P50[$name]=0 P99[$name]=0 NOTE[$name]="wrk failed"
        FAILED=1
        ROWS+=("$name")
        return
    fi
    local -A f
    local kv
    for kv in ${line#BENCH }; do f[${kv%%=*}]=${kv#*=}; done
    RPS[$name]=$(awk -v r="${f[requests]}" -v d="${f[duration_us]}" 'BEGIN { printf "%.0f", r * 1e6 / d }')
    P50[$name]=${f[p50_us]}
    P99[$name]=${f[p99_us]}
    local sock=$((f[connect] + f[read] + f[write] + f[timeout]))
    local err=""
    [ "${f[non2xx]}" -gt 0 ] && err="${f[non2xx]} non-2xx"
    [ "$sock" -gt 0 ] && err="${err:+$err, }$sock socket errs (timeout ${f[timeout]})"
    # A stalled server completes a handful of requests in the whole run.
    [ "${f[requests]}" -lt 100 ] && err="${err:+$err, }STALL: ${f[requests]} requests"
    [ -n "$err" ] && FAILED=1
    NOTE[$name]=${err:-"0 errors"}
    ROWS+=("$name")
    printf '  %-24s %8s req/s  p50 %-9s p99 %s\n' "$name" "${RPS[$name]}" \
        "$(fmt_us "${P50[$name]}")" "$(fmt_us "${P99[$name]}")" >&2
}

# Records row NAME from a file of microsecond samples (nearest-rank
# percentiles); NOTES goes in the last column, after the minimum.
record_samples() {
    local name=$1 file=$2 notes=$3
    local n
    n=$(wc -l <"$file")
    [ "$n" -gt 0 ] || die "no samples for $name"
    local p50 p99 min
    read -r p50 p99 min < <(sort -n "$file" | awk -v n="$n" '
        { v[NR] = $1 }
        END { printf "%d %d %d\n", v[int((n * 50 + 99) / 100)], v[int((n * 99 + 99) / 100)], v[1] }')
    RPS[$name]="-" P50[$name]=$p50 P99[$name]=$p99
    NOTE[$name]="n=$n, min $(fmt_us "$min")${notes:+, $notes}"
    ROWS+=("$name")
    printf '  %-24s p50 %-9s p99 %-9s %s\n' "$name" "$(fmt_us "$p50")" "$(fmt_us "$p99")" \
        "${NOTE[$name]}" >&2
}

now_us() { echo $((${EPOCHREALTIME/./})); }

# --- build ---

command -v wrk >/dev/null || die "wrk is missing (Debian package wrk; make bench installs it)"
command -v curl >/dev/null || die "curl is missing"
[ -x "$PY" ] || die "$PY is missing"
if [ -z "${HEARTHD:-}" ]; then
    HEARTHD=$BUILD/hearthd
    if [ ! -x "$HEARTHD" ]; then
        echo "bench: building hearthd in $BUILD" >&2
        [ -f "$BUILD/CMakeCache.txt" ] ||
            cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$BUILD" --target hearthd -j "$(nproc)" >/dev/null
    fi
fi
[ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD"
MHD_HELLO=$(bench_bin mhd_hello)

echo "bench: $(nproc) CPUs, $(uname -sr), libmicrohttpd $(pkg-config --modversion libmicrohttpd)," \
    "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $DURATION per wrk run" >&2

# --- 1. baseline ---

"$MHD_HELLO" 0 >"$TMP/base.port" 2>"$TMP/base.log" &
BASE_PID=$!
for _ in $(seq 50); do
    [ -s "$TMP/base.port" ] && break
    sleep 0.1
done
BASE_PORT=$(cat "$TMP/base.port")
[ -n "$BASE_PORT" ] || die "baseline did not start: $(cat "$TMP/base.log")"
echo "bench: baseline mhd_hello (MHD_USE_EPOLL, external epoll loop) on 127.0.0.1:$BASE_PORT" >&2
for c in $BASE_CONNS; do
    run_wrk "baseline c$c" "http://127.0.0.1:$BASE_PORT/" "$c"
done
stop_pid "$BASE_PID"
BASE_PID=

# --- 2. hearthd: cold starts ---

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$HEARTHD" --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" --runtimes-dir "$REPO/runtimes" \
    --log-level warn --shutdown-grace 2 --max-workers "$MAX_WORKERS" >"$TMP/hearthd.log" 2>&1 &
HEARTHD_PID=$!
wait_http "$URL/healthz" || die "hearthd did not start: $(cat "$TMP/hearthd.log")"
HEARTH_TOKEN=$(cat "$TMP/data/admin-token")
export HEARTH_TOKEN
echo "bench: $("$HEARTHD" --version 2>&1 | head -1) on $URL (max-workers $MAX_WORKERS)" >&2

# deploy NAME TEXT: deploys a Python function answering TEXT; fails on
# non-2xx. Leaves curl's time_total (seconds) in DEPLOY_TIME.
deploy() {
    local res
    res=$(ccurl -o "$TMP/deploy.out" -w '%{http_code} %{time_total}' -X PUT \
        "$URL/v1/functions/$1" -H 'Content-Type: application/json' \
        -d "{\"runtime\":\"python3\",\"handler\":\"main.handler\",\"files\":{\"main.py\":\"def handler(event, context):\\n    return \\\"$2\\\"\\n\"}}")
    DEPLOY_TIME=${res#* }
    case $res in 2??\ *) return 0 ;; esac
    echo "bench: deploy $1 answered ${res% *}: $(cat "$TMP/deploy.out")" >&2
    return 1
}

: >"$TMP/cold.samples"
: >"$TMP/deploy.samples"
cold_errs=0
for i in $(seq "$COLD_N"); do
    deploy cold "cold $i" || die "deploy failed"
    awk -v t="$DEPLOY_TIME" 'BEGIN { printf "%d\n", t * 1e6 }' >>"$TMP/deploy.samples"
    res=$(ccurl -o /dev/null -D "$TMP/cold.hdr" -w '%{http_code} %{time_total}' -X POST \
        "$URL/v1/functions/cold/invoke" -H 'Content-Type: application/json' -d '{"n":1}')
    tt=${res#* }
    echo "${res% *} $tt" >>"$TMP/cold-curl.out"
    if [ "${res%% *}" != 200 ] || ! grep -qi '^X-Hearth-Cold-Start: 1' "$TMP/cold.hdr"; then
        cold_errs=$((cold_errs + 1))
    fi
    awk -v t="$tt" 'BEGIN { printf "%d\n", t * 1e6 }' >>"$TMP/cold.samples"
done

# The interpreter alone, for scale: what a cold start cannot go below
# without a pre-started interpreter.
: >"$TMP/py.samples"
for _ in $(seq "$COLD_N"); do
    t0=$(now_us)
    "$PY" -I -B -c pass
    echo $(($(now_us) - t0)) >>"$TMP/py.samples"
done

ccurl -o /dev/null -X DELETE "$URL/v1/functions/cold" || die "delete failed" # frees its worker

# --- 3. hearthd: a burst of simultaneous first invocations, then warm ---

# burst.py PORT PATH N: opens N connections, then sends one POST on each at
# the same instant; prints "status cold(0/1) microseconds" per request.
cat >"$TMP/burst.py" <<'PY'
import http.client, sys, threading, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(n)]
for c in conns:
    c.connect()
gate = threading.Barrier(n)
out = [(0, 0, 0)] * n
def one(i):
    gate.wait()
    t = time.perf_counter()
    try:
        conns[i].request("POST", path, body=b'{"n":1}',
                         headers={"Content-Type": "application/json"})
        r = conns[i].getresponse()
        r.read()
        out[i] = (r.status, int(r.getheader("X-Hearth-Cold-Start") == "1"),
                  int((time.perf_counter() - t) * 1e6))
    except OSError:
        out[i] = (0, 0, int((time.perf_counter() - t) * 1e6))
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for row in out:
    print(*row)
PY

# Waits (up to 60 s) until hello has no worker starting or busy; prints idle.
wait_pool_settled() {
    local pool
    for _ in $(seq 600); do
        pool=$(ccurl "$URL/v1/functions/hello" | grep -o '"pool":{[^}]*}' || true)
        if [[ $pool =~ \"starting\":0[,}] && $pool =~ \"busy\":0[,}] ]]; then
            echo "$pool" | grep -o '"idle":[0-9]*' | cut -d: -f2
            return 0
        fi
        sleep 0.1
    done
    echo "bench: hello's pool did not settle: $pool" >&2
    return 1
}

# As many workers as the largest warm run can use, so no measured run pays
# for starting one; a fresh function, so the burst starts all of them.
warm_c=1
for c in $WARM_CONNS; do [ "$c" -gt "$warm_c" ] && warm_c=$c; done
[ "$warm_c" -gt "$MAX_WORKERS" ] && warm_c=$MAX_WORKERS
deploy hello hello || die "deploy failed"
"$PY" "$TMP/burst.py" "$PORT" /v1/functions/hello/invoke "$warm_c" >"$TMP/burst.out" ||
    die "the cold burst failed"
awk '{ print $3 }' "$TMP/burst.out" >"$TMP/burst.samples"
burst_bad=$(awk '$1 != 200 { n++ } END { print n + 0 }' "$TMP/burst.out")
burst_cold=$(awk '$2 == 1 { n++ } END { print n + 0 }' "$TMP/burst.out")
[ "$burst_bad" -gt 0 ] && FAILED=1
idle=$(wait_pool_settled) || die "warm-up failed"
warm_t=2
[ "$warm_c" -lt 2 ] && warm_t=1
wrk -t"$warm_t" -c"$warm_c" -d1s -s "$REPO/bench/post.lua" "$URL/v1/functions/hello/invoke" \
    >"$TMP/wrk-warmup.out" 2>&1 || die "warm-up wrk failed: $(cat "$TMP/wrk-warmup.out")"
idle=$(wait_pool_settled) || die "warm-up failed"
echo "bench: hello warmed: $idle idle workers" >&2
for c in $WARM_CONNS; do
    run_wrk "hearthd warm c$c" "$URL/v1/functions/hello/invoke" "$c"
done

cold_note=""
if [ "$cold_errs" -gt 0 ]; then
    cold_note="$cold_errs not a 200 cold start"
    FAILED=1
fi
record_samples "hearthd cold start" "$TMP/cold.samples" "$cold_note"
burst_note="$burst_cold cold"
[ "$burst_bad" -gt 0 ] && burst_note="$burst_note, $burst_bad not 200"
record_samples "hearthd cold burst x$warm_c" "$TMP/burst.samples" "$burst_note"
record_samples "deploy (PUT new version)" "$TMP/deploy.samples" ""
record_samples "python3 -I -B -c pass" "$TMP/py.samples" "for scale"

# --- 4. the table ---

ratio() { # hearthd value / baseline value, or "-"
    if [ -z "$2" ] || [ "$2" = 0 ] || [ "$2" = - ]; then
        echo "-"
        return
    fi
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
}

printf '\n%-26s %9s %10s %10s %12s %12s  %s\n' case req/s p50 p99 "req/s/base" "p50/base" notes
printf '%-26s %9s %10s %10s %12s %12s  %s\n' "--------------------------" "--------" \
    "--------" "--------" "----------" "--------" "------"
for name in "${ROWS[@]}"; do
    rr="-" rp="-"
    if [[ $name == "hearthd warm c"* ]]; then
        b="baseline c${name#hearthd warm c}"
        rr=$(ratio "${RPS[$name]}" "${RPS[$b]:-}")
        rp=$(ratio "${P50[$name]}" "${P50[$b]:-}")
    fi
    printf '%-26s %9s %10s %10s %12s %12s  %s\n' "$name" "${RPS[$name]}" \
        "$(fmt_us "${P50[$name]}")" "$(fmt_us "${P99[$name]}")" "$rr" "$rp" "${NOTE[$name]}"
done
echo
echo "ratios: hearthd / baseline at the same connection count. cold start and deploy: curl" \
    "time_total; cold burst: simultaneous first invocations of a fresh function; python3:" \
    "wall clock from bash (includes bash's fork+exec)."
if [ "$(id -u)" = 0 ]; then echo; "$REPO/bench/sandbox_cost.sh" || echo "bench: sandbox_cost.sh failed" >&2; fi
if [ "$FAILED" != 0 ]; then
    echo "bench: some cases had errors (see the notes column)" >&2
    exit 1
fi
