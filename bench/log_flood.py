#!/usr/bin/python3
"""bench/log_flood.py — what functions flooding their logs with short lines
cost everyone else (issue 9, point 2).

A report, not a test. On 127.0.0.1 only, as root (the sandbox needs it), it
starts hearthd on a free port with a temporary data dir, deploys a warm
bystander (a Python hello) and FLOOD_MAX flooders whose handler loops on
os.write(1, b"x\\n" * 32768) for FLOOD_SECONDS, then, with 0, 1 and
FLOOD_MAX flooders running, measures over one keep-alive connection each:
GET /healthz and a warm call of the bystander (p50, p99, in ms). The no-flood row is the
baseline of the same run; the issue's target is that the bystander's warm
calls stay within a few milliseconds of it while FLOOD_MAX workers flood.

Run:   bench/log_flood.sh               (root; builds build/hearthd if missing)
       HEARTHD=/path/hearthd /usr/bin/python3 bench/log_flood.py
Env:   HEARTHD [<repo>/build/hearthd], FLOOD_MAX [10], FLOOD_SECONDS [10],
       FLOOD_SAMPLES [200 for the baseline]
Takes: about 40 s. Exit 0 when the run completed, 2 on a set-up failure.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEARTHD = os.environ.get("HEARTHD") or os.path.join(REPO, "build", "hearthd")
FLOOD_MAX = int(os.environ.get("FLOOD_MAX", "10"))
SECONDS = float(os.environ.get("FLOOD_SECONDS", "10"))
SAMPLES = int(os.environ.get("FLOOD_SAMPLES", "200"))

FLOODER = """
import os, time
LINES = b"x\\n" * 32768
def handler(event, context):
    end = time.monotonic() + event["seconds"]
    while time.monotonic() < end:
        os.write(1, LINES)
    return "flooded"
"""
HELLO = "def handler(event, context):\n    return 'hello'\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hearth-flood-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "hearthd.log"), "wb")
        self.proc = subprocess.Popen(
            [HEARTHD, "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
             os.path.join(self.dir, "data"), "--log-level", "warn",
             "--max-workers", str(FLOOD_MAX + 8),
             "--no-auth"],  # loopback only; bench/auth_cost.sh measures the token check
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("hearthd did not start")

    def request(self, method, path, body=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def deploy(self, name, code, **settings):
        body = dict(runtime="python3", handler="main.handler", files={"main.py": code},
                    **settings)
        status, text = self.request("PUT", "/v1/functions/" + name, json.dumps(body))
        if status not in (200, 201):
            raise RuntimeError("deploy %s: %d %s" % (name, status, text[:300]))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def latencies(d, method, path, body=None, until=None):
    """Sequential requests on one keep-alive connection, in ms: SAMPLES of
    them, or as many as fit before the monotonic time `until`."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    out = []
    try:
        while len(out) < SAMPLES if until is None else time.monotonic() < until:
            t0 = time.perf_counter()
            c.request(method, path, body=body)
            r = c.getresponse()
            r.read()
            out.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                raise RuntimeError("%s %s: %d" % (method, path, r.status))
            time.sleep(0.005)
    finally:
        c.close()
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def measure(d, nflood):
    names = ["flood-%d" % i for i in range(nflood)]
    calls = [threading.Thread(target=d.request, daemon=True,
                              args=("POST", "/v1/functions/%s/invoke" % n,
                                    json.dumps({"seconds": SECONDS}), SECONDS + 60))
             for n in names]
    for t in calls:
        t.start()
    if nflood:
        # Both measurements fall inside the flood: 1 s to get going, then
        # half of what is left each, 1 s spare at the end.
        t0 = time.monotonic()
        half = (SECONDS - 2) / 2
        time.sleep(1.0)
        health = latencies(d, "GET", "/healthz", until=t0 + 1 + half)
        warm = latencies(d, "POST", "/v1/functions/bystander/invoke", b"{}",
                         until=t0 + 1 + 2 * half)
    else:
        health = latencies(d, "GET", "/healthz")
        warm = latencies(d, "POST", "/v1/functions/bystander/invoke", b"{}")
    for t in calls:
        t.join()
    return health, warm


def main():
    if not os.access(HEARTHD, os.X_OK):
        print("log_flood: no hearthd at %s" % HEARTHD, file=sys.stderr)
        return 2
    d = Daemon()
    try:
        d.deploy("bystander", HELLO)
        d.request("POST", "/v1/functions/bystander/invoke", b"{}")
        for i in range(FLOOD_MAX):
            d.deploy("flood-%d" % i, FLOODER, timeout_ms=int(SECONDS * 1000) + 30000)
            # warm each flooder with a near-empty call
            d.request("POST", "/v1/functions/flood-%d/invoke" % i, json.dumps({"seconds": 0}))
        rows = []
        for n in (0, 1, FLOOD_MAX):
            print("log_flood: %d flooding..." % n, file=sys.stderr)
            rows.append((n,) + measure(d, n))
        base = rows[0][2][0]
        print("hearthd: %s" % HEARTHD)
        print("%-10s %-22s %-22s %s" % ("flooding", "/healthz p50/p99 ms",
                                          "warm call p50/p99 ms", "warm p50 - baseline"))
        for n, (hp50, hp99), (wp50, wp99) in rows:
            print("%-10d %-22s %-22s %+.2f ms" % (n, "%.2f / %.2f" % (hp50, hp99),
                                                "%.2f / %.2f" % (wp50, wp99), wp50 - base))
        return 0
    finally:
        d.close()


if __name__ == "__main__":
    sys.exit(main())
