#!/usr/bin/env bash
# bench/auth_cost.sh — what checking tokens costs on the warm path.
#
# 1. $BUILD/bench_auth_check (bench/auth_check.c, built by CMake in $BUILD if
#    needed, never configured again): one auth_check(), timed alone (live token, glob,
#    unknown token, no header).
# 2. Two hearthd on 127.0.0.1, the same build: one with tokens (every wrk
#    request sends the admin token), one with --no-auth. The same trivial
#    Python function is deployed and warmed on both; then wrk POSTs to its
#    /invoke at 1 and 16 connections, alternating between the two daemons
#    ROUNDS times (the idle one costs nothing), and the medians are compared
#    as a ratio: tokens / no-auth. The issue's target: a warm call within 5%.
#
# 3. With BASELINE=<an older hearthd> (say a build of the commit before
#    tokens and metrics), a third daemon of that build, called without a
#    token, joins the rounds: the ratio tokens / before is what checking
#    tokens and recording metrics cost together against that build.
#
# Environment: BUILD [<repo>/build], HEARTHD [$BUILD/hearthd], DURATION [5s],
#   ROUNDS [3], CONNS ["1 16"], BASELINE [none].
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
HEARTHD=${HEARTHD:-$BUILD/hearthd}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"1 16"}
PY=/usr/bin/python3
unset HEARTH_TOKEN

command -v wrk >/dev/null || { echo "auth_cost: wrk is missing (apt-get install wrk)" >&2; exit 2; }
[ -x "$HEARTHD" ] || { echo "auth_cost: no hearthd at $HEARTHD" >&2; exit 2; }
TMP=$(mktemp -d /tmp/hearth-auth-cost.XXXXXX)
PIDS=()
BENCH=auth_cost
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
trap stop_named_and_clean EXIT

# --- 1. one check alone ---
AUTH_CHECK=$(bench_bin auth_check)
"$AUTH_CHECK"
echo

# --- 2. the warm path, with and without ---


# token NAME: the admin token of daemon NAME ("" under --no-auth).
token() { cat "$TMP/$1/admin-token" 2>/dev/null || true; }

deploy_and_warm() {
    local port=$1 tok=$2
    curl -sf -X PUT "http://127.0.0.1:$port/v1/functions/hello" ${tok:+-H "Authorization: Bearer $tok"} \
        -d '{"runtime":"python3","handler":"main.handler","files":{"main.py":"def handler(event, context):\n    return \"hello\"\n"}}' \
        >/dev/null
    HEARTH_TOKEN=$tok wrk -t2 -c16 -d1s -s "$REPO/bench/post.lua" \
        "http://127.0.0.1:$port/v1/functions/hello/invoke" >/dev/null
}

NAMES="tokens noauth"
start_named tokens "$HEARTHD" --runtimes-dir "$REPO/runtimes"
start_named noauth "$HEARTHD" --runtimes-dir "$REPO/runtimes" --no-auth
deploy_and_warm "$PORT_tokens" "$(token tokens)"
deploy_and_warm "$PORT_noauth" ""
if [ -n "${BASELINE:-}" ]; then
    [ -x "$BASELINE" ] || { echo "auth_cost: no hearthd at BASELINE=$BASELINE" >&2; exit 2; }
    NAMES="$NAMES before"
    start_named before "$BASELINE" # its own runtimes, as built
    deploy_and_warm "$PORT_before" ""
fi

# one_run NAME C: prints "req/s p50_us" of one wrk run.
one_run() {
    local port=PORT_$1
    HEARTH_TOKEN=$(token "$1") wrk_post "http://127.0.0.1:${!port}/v1/functions/hello/invoke" "$2" |
        cut -d' ' -f1,2
}


echo "warm POST /v1/functions/hello/invoke, $ROUNDS alternating rounds of $DURATION per case"
printf '%-6s %14s %14s %8s %12s %12s %8s\n' conns "tokens req/s" "no-auth req/s" ratio \
    "tokens p50" "no-auth p50" ratio
for c in $CONNS; do
    for name in $NAMES; do : >"$TMP/$name.rps"; : >"$TMP/$name.p50"; done
    for _ in $(seq "$ROUNDS"); do
        for name in $NAMES; do
            out=$(one_run "$name" "$c") # not < <(…): set -e must see a failed run
            read -r rps p50 <<<"$out"
            echo "$rps" >>"$TMP/$name.rps"
            echo "$p50" >>"$TMP/$name.p50"
        done
    done
    tr=$(median <"$TMP/tokens.rps") nr=$(median <"$TMP/noauth.rps")
    tp=$(median <"$TMP/tokens.p50") np=$(median <"$TMP/noauth.p50")
    awk -v c="$c" -v tr="$tr" -v nr="$nr" -v tp="$tp" -v np="$np" 'BEGIN {
        printf "%-6s %14d %14d %8.3f %9d us %9d us %8.3f\n", c, tr, nr, tr / nr, tp, np, tp / np }'
    if [ -n "${BASELINE:-}" ]; then
        br=$(median <"$TMP/before.rps") bp=$(median <"$TMP/before.p50")
        awk -v c="$c" -v tr="$tr" -v br="$br" -v tp="$tp" -v bp="$bp" 'BEGIN {
            printf "%-6s %14s %14d %8.3f %12s %9d us %8.3f   (vs BASELINE)\n", c, "", br,
                tr / br, "", bp, tp / bp }'
    fi
done
echo "ratio: with tokens / --no-auth, or / BASELINE (req/s: below 1 is slower; p50: above 1 is slower)"
