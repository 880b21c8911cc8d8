#!/usr/bin/env bash
# bench/qualifiers.sh — what addressing a version, an alias or the AWS
# Lambda API costs on the warm path, against the plain /invoke of the same
# function in the same run.
#
# One hearthd on 127.0.0.1. A trivial Python function gets two versions
# (both warm), an alias `prod` -> 1 and an alias `canary` -> 1 with 10% to
# 2. wrk POSTs the same small body, alternating between the cases ROUNDS
# times at 1 and 16 connections:
#   plain    /v1/functions/hello/invoke            (bearer token; current = 2)
#   version  /v1/functions/hello:1/invoke          (version 1's own pool)
#   alias    /v1/functions/hello:prod/invoke       (registry lookup per call)
#   canary   /v1/functions/hello:canary/invoke     (lookup + weighted pick)
#   aws      /2015-03-31/functions/hello/invocations, SigV4-signed once by
#            botocore and replayed (hearthd verifies every request: the
#            canonical request, four HMACs, the sealed secret opened)
# The medians of each case are printed with their ratio to `plain`.
#
# Environment: HEARTHD [<repo>/build/hearthd], DURATION [5s], ROUNDS [3],
#   CONNS ["1 16"].
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HEARTHD=${HEARTHD:-$REPO/build/hearthd}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"1 16"}
PY=/usr/bin/python3
unset HEARTH_TOKEN BENCH_HEADERS

BENCH=qualifiers
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
[ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD"
"$PY" -c 'import botocore' 2>/dev/null || die "python3-botocore is missing (scripts/deps.sh --bench)"
TMP=$(mktemp -d /tmp/hearth-qualifiers.XXXXXX)
PIDS=()
trap stop_named_and_clean EXIT

start_named q "$HEARTHD" --runtimes-dir "$REPO/runtimes"
PORT=$PORT_q
URL=http://127.0.0.1:$PORT
ADMIN=$(cat "$TMP/q/admin-token")
api() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' "$@"; }

for v in 1 2; do
    api -X PUT "$URL/v1/functions/hello" -d '{"runtime":"python3","handler":"main.handler",
        "files":{"main.py":"def handler(event, context):\n    return \"v'$v'\"\n"}}' >/dev/null
done
api -X PUT "$URL/v1/functions/hello/aliases/prod" -d '{"version": 1}' >/dev/null
api -X PUT "$URL/v1/functions/hello/aliases/canary" -d '{"version": 1, "weights": {"2": 0.1}}' >/dev/null
# A token made now has its secret sealed for SigV4; its id is the key id.
api -X POST "$URL/v1/tokens" -d '{"name": "bench-aws", "scopes": ["invoke"]}' >"$TMP/aws-token.json"

# The AWS request, signed once for the body post.lua sends.
"$PY" - "$URL" "$TMP/aws-token.json" >"$TMP/aws-headers" <<'EOF'
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, tok = sys.argv[1], json.load(open(sys.argv[2]))
req = AWSRequest(method="POST", url=url + "/2015-03-31/functions/hello/invocations",
                 data=b'{"name":"bench","n":1}', headers={"Content-Type": "application/json"})
SigV4Auth(Credentials(tok["id"], tok["token"]), "lambda", "us-east-1").add_auth(req)
for k in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
    if k in req.headers:
        print("%s: %s" % (k, req.headers[k]))
EOF

# path_of CASE, headers_of CASE
path_of() {
    case $1 in
    plain) echo /v1/functions/hello/invoke ;;
    version) echo /v1/functions/hello:1/invoke ;;
    alias) echo /v1/functions/hello:prod/invoke ;;
    canary) echo /v1/functions/hello:canary/invoke ;;
    aws) echo /2015-03-31/functions/hello/invocations ;;
    esac
}

# one_run CASE C: prints "req/s p50_us" of one wrk run.
one_run() {
    local hdrs=""
    [ "$1" = aws ] && hdrs=$(cat "$TMP/aws-headers")
    HEARTH_TOKEN=$ADMIN BENCH_HEADERS=$hdrs wrk_post "$URL$(path_of "$1")" "$2" | cut -d' ' -f1,2
}

CASES="plain version alias canary aws"
for case in $CASES; do # warm every pool (and check each answers 2xx)
    DURATION=1s one_run "$case" 16 >/dev/null
done

echo "warm POST, $ROUNDS alternating rounds of $DURATION per case; ratio = case / plain"
printf '%-6s %-8s %10s %8s %10s %8s\n' conns case req/s ratio p50 ratio
for c in $CONNS; do
    for case in $CASES; do : >"$TMP/$case.rps"; : >"$TMP/$case.p50"; done
    for _ in $(seq "$ROUNDS"); do
        for case in $CASES; do
            out=$(one_run "$case" "$c") # not < <(…): set -e must see a failed run
            read -r rps p50 <<<"$out"
            echo "$rps" >>"$TMP/$case.rps"
            echo "$p50" >>"$TMP/$case.p50"
        done
    done
    pr=$(median <"$TMP/plain.rps") pp=$(median <"$TMP/plain.p50")
    for case in $CASES; do
        r=$(median <"$TMP/$case.rps") p=$(median <"$TMP/$case.p50")
        awk -v c="$c" -v n="$case" -v r="$r" -v p="$p" -v pr="$pr" -v pp="$pp" 'BEGIN {
            printf "%-6s %-8s %10d %8.3f %7d us %8.3f\n", c, n, r, r / pr, p, p / pp }'
    done
done
