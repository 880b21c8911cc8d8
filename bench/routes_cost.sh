#!/usr/bin/env bash
# bench/routes_cost.sh — what HTTP routes cost: a lookup alone, and a routed
# call against the same call through /fn/, with 1 and with 10,000 routes.
#
# 1. $BUILD/bench_routes_cost (bench/routes_cost.c, built by CMake if
#    needed): routes_lookup() timed alone in tables of 1, 100
#    and 10,000 routes (same run): ns per lookup for a hit with a parameter,
#    a greedy hit after backing up, and a miss.
# 2. Two hearthd on 127.0.0.1, the same build. On both, a trivial Python
#    function "hello" is deployed with the route POST /hello/{id}; on the
#    second, 159 more functions with 63 routes each (POST /svcN/rM/{id},
#    /svcN/rM, ...: 10,018 routes in all; 64 is the most one function may
#    have). wrk POSTs to /hello/bench (routed) and to /fn/hello/bench (the
#    same http event, no route lookup) on each daemon, the four cases
#    alternating, ROUNDS times at each of CONNS (an idle daemon costs
#    nothing), so that a change in the machine's load falls on all four
#    alike. The medians come with two ratios: routed / fn on the same
#    daemon (what a lookup adds to a call), and routed with 10,000 routes /
#    routed with 1 (what the table's size adds).
#
# Environment: BUILD [<repo>/build: where bench_routes_cost is built],
#   HEARTHD [$BUILD/hearthd], DURATION [3s], ROUNDS [5], CONNS ["1 16"],
#   LOOKUPS [2000000].
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
HEARTHD=${HEARTHD:-$BUILD/hearthd}
DURATION=${DURATION:-3s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-"1 16"}
LOOKUPS=${LOOKUPS:-2000000}
PY=/usr/bin/python3
unset HEARTH_TOKEN

command -v wrk >/dev/null || { echo "routes_cost: wrk is missing (apt-get install wrk)" >&2; exit 2; }
[ -x "$HEARTHD" ] || { echo "routes_cost: no hearthd at $HEARTHD" >&2; exit 2; }
TMP=$(mktemp -d /tmp/hearth-routes-cost.XXXXXX)
PIDS=()
BENCH=routes_cost
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
trap stop_named_and_clean EXIT

# --- 1. one lookup alone ---
ROUTES_COST=$(bench_bin routes_cost)
"$ROUTES_COST" "$LOOKUPS"
echo

# --- 2. a routed call against /fn/, with 1 and with 10,000 routes ---

# start NAME: a daemon with data in $TMP/NAME; sets PORT_NAME and TOKEN_NAME.
start() {
    start_named "$1" "$HEARTHD" --runtimes-dir "$REPO/runtimes"
    printf -v "TOKEN_$1" %s "$(cat "$TMP/$1/admin-token")"
}

# deploy NAME FIRST COUNT: on daemon NAME, "hello" with its one route
# (COUNT 0), or functions svcFIRST... with 63 routes each; one Python process.
deploy() {
    local port=PORT_$1 token=TOKEN_$1
    "$PY" - "http://127.0.0.1:${!port}" "${!token}" "$2" "$3" <<'PYEOF'
import json, sys, urllib.request
url, token, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
code = "def handler(event, context):\n    return \"hello\"\n"
def put(name, routes):
    body = json.dumps({"runtime": "python3", "handler": "main.handler",
                       "files": {"main.py": code}, "routes": routes}).encode()
    req = urllib.request.Request("%s/v1/functions/%s" % (url, name), data=body, method="PUT",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
if count == 0:
    put("hello", [{"method": "POST", "path": "/hello/{id}"}])
    sys.exit(0)
shapes = ["/svc%d/r%d/{id}", "/svc%d/r%d", "/svc%d/r%d/{id}/items/{item}", "/svc%d/r%d/{path+}"]
for f in range(first, first + count):
    put("svc%d" % f, [{"method": "POST", "path": shapes[r % 4] % (f, r)} for r in range(63)])
PYEOF
}

route_count() {
    local port=PORT_$1 token=TOKEN_$1
    curl -sf "http://127.0.0.1:${!port}/v1/routes" -H "Authorization: Bearer ${!token}" |
        "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["routes"]))'
}

# one_run NAME PATH C: prints "req/s p50_us p99_us" of one wrk run.
one_run() {
    local port=PORT_$1 token=TOKEN_$1
    HEARTH_TOKEN=${!token} wrk_post "http://127.0.0.1:${!port}$2" "$3"
}

med() { median <"$TMP/$1"; }

for name in small big; do
    start "$name"
    deploy "$name" 0 0
done
echo "routes_cost: deploying 159 functions with 63 routes each..." >&2
t0=$(date +%s.%N)
deploy big 0 159
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN {
    printf "deployed 159 functions with 63 routes each in %.1f s (%.0f ms a deploy)\n", b - a,
           (b - a) * 1000 / 159 }'
N_small=$(route_count small)
N_big=$(route_count big)
for name in small big; do
    port=PORT_$name token=TOKEN_$name
    HEARTH_TOKEN=${!token} wrk -t2 -c16 -d1s -s "$REPO/bench/post.lua" \
        "http://127.0.0.1:${!port}/hello/warm" >/dev/null
done

for c in $CONNS; do
    for _ in $(seq "$ROUNDS"); do
        for name in small big; do
            for kind in routed fn; do
                path=/hello/bench
                [ "$kind" = fn ] && path=/fn/hello/bench
                out=$(one_run "$name" "$path" "$c") # set -e must see a failed run
                read -r rps p50 p99 <<<"$out"
                echo "$rps" >>"$TMP/$name.$kind.$c.rps"
                echo "$p50" >>"$TMP/$name.$kind.$c.p50"
                echo "$p99" >>"$TMP/$name.$kind.$c.p99"
            done
        done
    done
done

echo "warm POST, $ROUNDS rounds of $DURATION per case, the four cases alternating (medians)"
echo "routed: POST /hello/bench through the route POST /hello/{id}; fn: POST /fn/hello/bench"
printf '%-7s %-6s %12s %12s %7s %11s %11s %11s %11s\n' routes conns "routed req/s" "fn req/s" \
    "r/fn" "routed p50" "fn p50" "routed p99" "fn p99"
for c in $CONNS; do
    for name in small big; do
        n=N_$name
        awk -v n="${!n}" -v c="$c" -v rr="$(med "$name.routed.$c.rps")" \
            -v fr="$(med "$name.fn.$c.rps")" -v rp="$(med "$name.routed.$c.p50")" \
            -v fp="$(med "$name.fn.$c.p50")" -v rq="$(med "$name.routed.$c.p99")" \
            -v fq="$(med "$name.fn.$c.p99")" \
            'BEGIN { printf "%-7d %-6s %12d %12d %7.3f %8d us %8d us %8d us %8d us\n",
                     n, c, rr, fr, rr / fr, rp, fp, rq, fq }'
    done
    awk -v c="$c" -v n="$N_big" -v s="$(med "small.routed.$c.rps")" \
        -v b="$(med "big.routed.$c.rps")" -v sp="$(med "small.routed.$c.p50")" \
        -v bp="$(med "big.routed.$c.p50")" \
        'BEGIN { printf "        routed, %d routes / 1 route, %s conns: req/s %.3f, p50 %.3f\n",
                 n, c, b / s, bp / sp }'
done
echo "r/fn: routed req/s / /fn/ req/s on the same daemon (below 1: the route costs something)"
