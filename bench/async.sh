#!/usr/bin/env bash
# bench/async.sh — issue 11's asynchronous invocation figures: a report, not a test.
#
# In one run, on 127.0.0.1 only, against hearthd --no-auth with temp data dirs:
#   0. the disk: write 4 KiB + fdatasync in a loop for FSYNC_SECS in the data
#      dir: the fsyncs/s a commit cannot beat;
#   1. accept rate. Two trivial Python functions (return 1), max_concurrency
#      1 and async_max_queue 100000, one per wrk thread (bench/async.lua), so
#      each queue stays below its limit and only one attempt per function
#      runs while the rest wait: what is measured is taking events, not
#      running them. wrk -t2 -cACCEPT_CONNS for DURATION:
#        a. synchronous invokes of the same functions (warm): the baseline;
#        b. Prefer: respond-async, each 202 sent once the event is on disk.
#      During (b), perf counts the daemon's fdatasync/fsync calls (one per
#      group commit; "n/a" without perf): events per commit.
#   2. execution rate. A fresh daemon, one trivial function with
#      max_concurrency EXEC_MC (async attempts may use max_concurrency - 1
#      of its workers, and all functions' at most half of --max-workers):
#        a. wrk -c(EXEC_MC-1) synchronous invokes for DURATION, warm: the
#           baseline with as many concurrent calls as async may run;
#        b. wrk (-cENQ_CONNS, bench/async.lua with COUNT) enqueues EXEC_N
#           events as fast as it can, then bench/async_exec.py polls
#           GET /v1/functions/NAME until async waiting + running is 0:
#           executions/s from the first enqueue, and the share async/sync.
#   3. prints one table: figure, same-run baseline, target, met?
# Everything it starts is stopped and its temp dir removed on exit.
#
# Environment:
#   HEARTHD       a built hearthd (default <repo>/build/hearthd, built if missing)
#   DURATION      length of each wrk run (default 10s)
#   ACCEPT_CONNS  wrk connections of the accept rate (default 32; the target's)
#   EXEC_N        events enqueued for the execution rate (default 10000)
#   ENQ_CONNS     wrk connections that enqueue them (default 16)
#   EXEC_MC       max_concurrency of the execution function (default 4)
#   FSYNC_SECS    length of the fsync loop (default 2)
#   BENCH_OUT     if set, a directory where the raw wrk output and logs are kept
#
# Takes about 45 s. Exit status: 0 when every case answered only 2xx (202
# for async) without socket errors and every event ran (missed targets are
# not an error), 1 otherwise (the table is printed either way), 2 on a
# setup failure, 130 when interrupted.
# shellcheck disable=SC2086,SC2317 # ACC_FNS splits on purpose; cleanup runs from a trap
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
ACCEPT_CONNS=${ACCEPT_CONNS:-32}
EXEC_N=${EXEC_N:-10000}
EXEC_MC=${EXEC_MC:-4}
ENQ_CONNS=${ENQ_CONNS:-16}
FSYNC_SECS=${FSYNC_SECS:-2}
TARGET_ACCEPT=2000 # issue 11: events/s at 32 connections, on 2 cores
PY=/usr/bin/python3
unset HEARTH_TOKEN ASYNC

TMP=$(mktemp -d /tmp/hearth-async.XXXXXX)
HEARTHD_PID=
PERF_PID=
DRAIN_PID=
ENQ_PID=
FAILED=0
declare -A RPS P50 P99 REQ NOTE # keyed by case
BENCH=async
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

die() {
    echo "async: $*" >&2
    exit 2
}

cleanup() {
    local pid
    for pid in "$PERF_PID" "$ENQ_PID" "$DRAIN_PID"; do
        if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
    done
    stop_pid "$HEARTHD_PID"
    if [ -n "${BENCH_OUT:-}" ]; then
        mkdir -p "$BENCH_OUT"
        cp "$TMP"/*.out "$TMP"/*.log "$BENCH_OUT"/ 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "async: command failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM

ccurl() { curl --noproxy '*' -sS "$@"; }

# start_daemon NAME: a hearthd with data in $TMP/NAME; sets URL, PORT, HEARTHD_PID.
start_daemon() {
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$HEARTHD" --listen "127.0.0.1:$PORT" --data-dir "$TMP/$1" --runtimes-dir "$REPO/runtimes" \
        --no-auth --log-level warn --shutdown-grace 2 >"$TMP/$1.log" 2>&1 &
    HEARTHD_PID=$!
    for _ in $(seq 100); do
        [ "$(ccurl -o /dev/null -w '%{http_code}' "$URL/healthz" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    die "hearthd did not start: $(cat "$TMP/$1.log")"
}

# deploy NAME MAX_CONCURRENCY: a trivial Python function (return 1).
deploy() {
    local code
    code=$(ccurl -o "$TMP/deploy.out" -w '%{http_code}' -X PUT "$URL/v1/functions/$1" \
        -H 'Content-Type: application/json' \
        -d "{\"runtime\":\"python3\",\"handler\":\"main.handler\",\"files\":{\"main.py\":\"def handler(e, c):\\n    return 1\\n\"},\"max_concurrency\":$2,\"async_max_queue\":100000}")
    case $code in 2??) return 0 ;; esac
    die "deploy $1 answered $code: $(cat "$TMP/deploy.out")"
}

# async_counts NAME -> "waiting running"
async_counts() {
    ccurl "$URL/v1/functions/$1" | "$PY" -c \
        'import json,sys; a=json.load(sys.stdin)["async"]; print(a["waiting"], a["running"])'
}

# wait_idle NAME: until the function's pool has no worker starting or busy.
wait_idle() {
    for _ in $(seq 100); do
        ccurl "$URL/v1/functions/$1" | "$PY" -c \
            'import json,sys; p=json.load(sys.stdin)["pool"]; sys.exit(p["starting"]+p["busy"]+p["queued"])' &&
            return 0
        sleep 0.1
    done
}

# run_wrk KEY C FUNCTION...: wrk -t2 -cC with bench/async.lua (ASYNC from
# the environment); sets RPS, P50, P99, REQ (2xx answers) and NOTE [KEY].
run_wrk() {
    local key=$1 c=$2 t=2
    shift 2
    [ "$c" -lt 2 ] && t=1
    local out="$TMP/wrk-$key.out"
    wrk -t"$t" -c"$c" -d"$DURATION" -s "$REPO/bench/async.lua" "$URL" -- "$@" >"$out" 2>&1 || true
    local line
    line=$(grep '^BENCH ' "$out" || true)
    if [ -z "$line" ]; then
        cat "$out" >&2
        die "wrk failed for $key"
    fi
    local -A f
    local kv
    for kv in ${line#BENCH }; do f[${kv%%=*}]=${kv#*=}; done
    local ok=$((f[requests] - f[non2xx]))
    RPS[$key]=$(awk -v r="$ok" -v d="${f[duration_us]}" 'BEGIN { printf "%.0f", r * 1e6 / d }')
    P50[$key]=${f[p50_us]} P99[$key]=${f[p99_us]} REQ[$key]=$ok
    local sock=$((f[connect] + f[read] + f[write] + f[timeout])) err=""
    [ "${f[non2xx]}" -gt 0 ] && err="${f[non2xx]} non-2xx (not counted)"
    [ "$sock" -gt 0 ] && err="${err:+$err, }$sock socket errors"
    [ -n "$err" ] && FAILED=1
    NOTE[$key]=$err
    printf '  %-28s %8s /s  p50 %-9s p99 %s %s\n' "$key" "${RPS[$key]}" "$(fmt_us "${f[p50_us]}")" \
        "$(fmt_us "${f[p99_us]}")" "$err" >&2
}

# --- setup ---

command -v wrk >/dev/null || die "wrk is missing (scripts/deps.sh --bench installs it)"
command -v curl >/dev/null || die "curl is missing"
[ -x "$PY" ] || die "$PY is missing"
if [ -z "${HEARTHD:-}" ]; then
    HEARTHD=$REPO/build/hearthd
    if [ ! -x "$HEARTHD" ]; then
        echo "async: building hearthd in $REPO/build" >&2
        cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$REPO/build" -j "$(nproc)" >/dev/null
    fi
fi
[ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD"
EXEC_WORKERS=$((EXEC_MC > 1 ? EXEC_MC - 1 : 1))
echo "async: $(nproc) CPUs, $(uname -sr), $("$HEARTHD" --version 2>&1 | head -1)," \
    "$DURATION per wrk run" >&2

# --- 0 and 1: the disk, then the accept rate ---

start_daemon accept
echo "async: 0. fsync loop in the data dir ($FSYNC_SECS s)" >&2
read -r FSYNC_RATE FSYNC_US < <("$PY" - "$TMP/accept/fsync.probe" "$FSYNC_SECS" <<'PY'
import os, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block, n = b"x" * 4096, 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < secs:
    os.pwrite(fd, block, (n % 16) * 4096)  # rewrites, as a WAL between checkpoints
    os.fdatasync(fd)
    n += 1
dt = time.perf_counter() - t0
os.close(fd)
os.unlink(path)
print("%.0f %.0f" % (n / dt, dt * 1e6 / n))
PY
)
echo "  write 4 KiB + fdatasync: $FSYNC_RATE /s ($FSYNC_US us each)" >&2

ACC_FNS="acc1 acc2" # one per wrk thread
for f in $ACC_FNS; do
    deploy "$f" 1
    ccurl -o /dev/null -X POST "$URL/v1/functions/$f/invoke" -d '{}' # warm: its one worker
done
echo "async: 1. accept rate, wrk -t2 -c$ACCEPT_CONNS, functions $ACC_FNS (max_concurrency 1)" >&2
run_wrk "sync_c$ACCEPT_CONNS" "$ACCEPT_CONNS" $ACC_FNS # one name per thread
for f in $ACC_FNS; do wait_idle "$f"; done
res=$(ccurl -o "$TMP/one.out" -w '%{http_code}' -X POST -H 'Prefer: respond-async' \
    "$URL/v1/functions/acc1/invoke" -d '{}')
[ "$res" = 202 ] || die "an async invoke answered $res: $(cat "$TMP/one.out")"

# perf counts the fdatasync/fsync calls of every thread of the daemon.
COMMITS=
if command -v perf >/dev/null &&
    perf stat -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1; then
    perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$HEARTHD_PID" \
        -o "$TMP/perf.out" &
    PERF_PID=$!
    sleep 0.2
fi
ASYNC=1 run_wrk "async_c$ACCEPT_CONNS" "$ACCEPT_CONNS" $ACC_FNS
if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
    COMMITS=$(awk -F, '/sys_enter_f(data)?sync/ { n += $1 } END { print n + 0 }' "$TMP/perf.out")
fi
waiting=0 running=0
for f in $ACC_FNS; do
    read -r w r < <(async_counts "$f")
    waiting=$((waiting + w)) running=$((running + r))
done
A=async_c$ACCEPT_CONNS S=sync_c$ACCEPT_CONNS
ACC_RPS=${RPS[$A]} ACC_REQ=${REQ[$A]} ACC_P50=${P50[$A]} ACC_P99=${P99[$A]} ACC_NOTE=${NOTE[$A]}
SYNC32_RPS=${RPS[$S]} SYNC32_P50=${P50[$S]} SYNC32_P99=${P99[$S]} SYNC32_NOTE=${NOTE[$S]}
ACC_RAN=$((ACC_REQ + 1 - waiting - running)) # + the one curl above
WRK_S=$(awk -v d="$DURATION" 'BEGIN { sub(/s$/, "", d); print d + 0 }')
if [ -n "$COMMITS" ] && [ "$COMMITS" -gt 0 ]; then
    COMMIT_RATE=$(awk -v c="$COMMITS" -v s="$WRK_S" 'BEGIN { printf "%.0f", c / (s + 0.2) }')
    PER_COMMIT=$(awk -v r="$ACC_RPS" -v c="$COMMIT_RATE" 'BEGIN { printf "%.1f", r / c }')
    echo "  $COMMITS fdatasync/fsync during the run: ~$COMMIT_RATE commits/s," \
        "~$PER_COMMIT events per commit" >&2
else
    COMMIT_RATE=n/a PER_COMMIT=n/a
fi
echo "  still waiting after the run: $waiting (+$running running); ran meanwhile: ~$ACC_RAN" >&2
stop_pid "$HEARTHD_PID"
HEARTHD_PID=

# --- 2. the execution rate ---

start_daemon exec
deploy ex "$EXEC_MC"
echo "async: 2. execution rate, function ex (max_concurrency $EXEC_MC: async may run" \
    "$EXEC_WORKERS at once)" >&2
wrk -t2 -c"$EXEC_WORKERS" -d2s -s "$REPO/bench/async.lua" "$URL" -- ex >/dev/null 2>&1 || true # warm
wait_idle ex
run_wrk sync_c$EXEC_WORKERS "$EXEC_WORKERS" ex
wait_idle ex
runs0=$(ccurl "$URL/v1/functions/ex" | "$PY" -c \
    'import json,sys; p=json.load(sys.stdin)["pool"]; print(p["cold_starts"]+p["warm_starts"])')
T0=$EPOCHREALTIME
"$PY" "$REPO/bench/async_exec.py" "$PORT" ex "$T0" "$EXEC_N" "$runs0" >"$TMP/exec.out" 2>&1 &
DRAIN_PID=$!
# wrk stops sending after COUNT answers per thread but runs out its -d:
# stopped (SIGINT: it still prints its summary) once the events have run.
COUNT=$(((EXEC_N + 1) / 2)) ASYNC=1 wrk -t2 -c"$ENQ_CONNS" -d600s -s "$REPO/bench/async.lua" \
    "$URL" -- ex >"$TMP/wrk-enqueue.out" 2>&1 &
ENQ_PID=$!
wait "$DRAIN_PID" || { cat "$TMP/exec.out" >&2; die "async_exec.py failed"; }
DRAIN_PID=
kill -INT "$ENQ_PID" 2>/dev/null || true
wait "$ENQ_PID" || true
ENQ_PID=
line=$(grep '^DRAIN ' "$TMP/exec.out")
declare -A X
for kv in ${line#DRAIN }; do X[${kv%%=*}]=${kv#*=}; done
EXEC_RUNS=${X[runs]} ENQ_S=${X[enqueued_s]}
EXEC_RATE=$(awk -v n="$EXEC_RUNS" -v t="${X[total_s]}" 'BEGIN { printf "%.0f", n / t }')
ENQ_RATE=$(awk -v n="$EXEC_RUNS" -v t="$ENQ_S" 'BEGIN { printf "%.0f", n / t }')
DRAIN_N=$((EXEC_RUNS - X[runs_enqueued]))
DRAIN_RATE=$(awk -v n="$DRAIN_N" -v a="$ENQ_S" -v b="${X[total_s]}" \
    'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }')
EX_SYNC=${RPS[sync_c$EXEC_WORKERS]} EX_SYNC_NOTE=${NOTE[sync_c$EXEC_WORKERS]}
SHARE=$(awk -v a="$EXEC_RATE" -v s="$EX_SYNC" 'BEGIN { printf "%.2f", a / s }')
DRAIN_SHARE=$(awk -v a="$DRAIN_RATE" -v s="$EX_SYNC" 'BEGIN { printf "%.2f", a / s }')
EXEC_NOTE=""
grep -q 'non2xx=0 connect=0 read=0 write=0 timeout=0' "$TMP/wrk-enqueue.out" ||
    { EXEC_NOTE="enqueue: $(grep '^BENCH' "$TMP/wrk-enqueue.out" || cat "$TMP/wrk-enqueue.out")"; FAILED=1; }
[ "${X[dead]}" = 0 ] || { EXEC_NOTE="${EXEC_NOTE:+$EXEC_NOTE, }${X[dead]} dead"; FAILED=1; }
[ "$EXEC_RUNS" -ge "$EXEC_N" ] || { EXEC_NOTE="${EXEC_NOTE:+$EXEC_NOTE, }only $EXEC_RUNS runs"; FAILED=1; }
echo "  $EXEC_RUNS events: enqueued in $ENQ_S s (wrk -c$ENQ_CONNS), all run after" \
    "${X[total_s]} s: $EXEC_RATE executions/s (${SHARE}x sync); after the enqueue," \
    "$DRAIN_N in $(awk -v a="$ENQ_S" -v b="${X[total_s]}" 'BEGIN { printf "%.3f", b - a }') s:" \
    "$DRAIN_RATE /s (${DRAIN_SHARE}x)" >&2
stop_pid "$HEARTHD_PID"
HEARTHD_PID=

# --- 3. the table ---

met=no
[ "$ACC_RPS" -ge "$TARGET_ACCEPT" ] && met=yes
echo
echo "Asynchronous invocations (issue 11): $(nproc) CPUs, wrk $DURATION per run, hearthd --no-auth"
printf '%-44s | %-28s | %-40s | %-11s | %s\n' what figure "same-run baseline" target met?
printf '%s\n' "---------------------------------------------+------------------------------+------------------------------------------+-------------+-----"
printf '%-44s | %-28s | %-40s | %-11s | %s\n' \
    "durable async accept, wrk -c$ACCEPT_CONNS (202s/s)" "$ACC_RPS /s" \
    "sync warm invoke -c$ACCEPT_CONNS: $SYNC32_RPS /s" ">= $TARGET_ACCEPT /s" "$met"
printf '%-44s | %-28s | %-40s | %-11s | %s\n' \
    "  202 latency p50 / p99" "$(fmt_us "$ACC_P50") / $(fmt_us "$ACC_P99")" \
    "sync: $(fmt_us "$SYNC32_P50") / $(fmt_us "$SYNC32_P99")" "" ""
printf '%-44s | %-28s | %-40s | %-11s | %s\n' \
    "  group commits (fdatasync) during the run" "$COMMIT_RATE /s, $PER_COMMIT ev each" \
    "disk: $FSYNC_RATE fdatasync/s ($FSYNC_US us)" "" ""
printf '%-44s | %-28s | %-40s | %-11s | %s\n' \
    "async execution, trivial fn, $EXEC_RUNS events" "$EXEC_RATE /s ($SHARE of sync)" \
    "sync warm invoke -c$EXEC_WORKERS: $EX_SYNC /s" "report" "-"
printf '%-44s | %-28s | %-40s | %-11s | %s\n' \
    "  the drain alone, after the last enqueue" "$DRAIN_RATE /s ($DRAIN_SHARE of sync)" \
    "($DRAIN_N events)" "" ""
echo
echo "Accept: functions $ACC_FNS (max_concurrency 1, async_max_queue 100000), one per wrk thread;"
echo "  one attempt of each runs while the rest wait (~$ACC_RAN ran during the run, $waiting still"
echo "  waiting). The 202 is sent after the commit of the loop turn that took the event."
echo "Execution: function ex, max_concurrency $EXEC_MC: async attempts use at most"
echo "  max_concurrency - 1 = $EXEC_WORKERS of its workers (and all functions' at most half of"
echo "  --max-workers), so the baseline is wrk -c$EXEC_WORKERS. Timed from the first enqueue"
echo "  (wrk -c$ENQ_CONNS: $ENQ_S s, $ENQ_RATE /s, executions already running) until async"
echo "  waiting + running = 0; events counted by the pool's starts (wrk sends a few past EXEC_N)."
for n in "$SYNC32_NOTE" "$ACC_NOTE" "$EX_SYNC_NOTE" "$EXEC_NOTE"; do
    [ -n "$n" ] && echo "ERRORS: $n"
done
exit "$FAILED"
