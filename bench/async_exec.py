#!/usr/bin/python3
"""async_exec.py PORT FUNCTION T0 N RUNS0 — bench/async.sh's execution rate: the drain.

bench/async.sh starts wrk enqueueing N events to FUNCTION at T0 (epoch
seconds) and this at the same time. It polls GET /v1/functions/FUNCTION
every 5 ms until the function has run N attempts since T0 (the pool's
cold_starts + warm_starts, RUNS0 before T0) and its "async" counts show
nothing waiting or running, then prints one line:

  DRAIN total_s=T enqueued_s=E runs=R runs_enqueued=Q dead=D

total_s runs from T0 to that poll; enqueued_s to the first poll where the
attempts run, waiting and running added up to N (every event taken);
runs is the number of attempts since T0 (wrk may send a few more
than N), runs_enqueued those at enqueued_s: the drain alone is
(runs - runs_enqueued) / (total_s - enqueued_s); dead counts the invocations listed as dead (at most 1000).
Standard library only; talks to 127.0.0.1 without a token (--no-auth).
"""
import http.client
import json
import sys
import time

port, name, t0 = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
n, runs0 = int(sys.argv[4]), int(sys.argv[5])
path = "/v1/functions/%s" % name
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def get(url):
    conn.request("GET", url)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit("async_exec: GET %s answered %d: %s" % (url, r.status, body[:200]))
    return json.loads(body)




def starts(fn):
    return fn["pool"]["cold_starts"] + fn["pool"]["warm_starts"]


enqueued = None
deadline = time.time() + 600
while True:
    fn = get(path)
    runs, pending = starts(fn) - runs0, fn["async"]["waiting"] + fn["async"]["running"]
    if enqueued is None and runs + pending >= n:
        enqueued, runs_enqueued = time.time(), runs
    if runs >= n and pending == 0:
        break
    if time.time() > deadline:
        sys.exit("async_exec: still %r after 600 s" % fn["async"])
    time.sleep(0.005)
done = time.time()
dead = len(get(path + "/invocations?status=dead&limit=1000")["invocations"])
print("DRAIN total_s=%.3f enqueued_s=%.3f runs=%d runs_enqueued=%d dead=%d"
      % (done - t0, enqueued - t0, runs, runs_enqueued, dead))
