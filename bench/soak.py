#!/usr/bin/python3
"""bench/soak.py — SOAK_SECONDS of mixed load against one hearthd, watching
for leaks and for 5xx the functions did not cause.

Owns: the soak of issue 15 §4 (bench/soak.sh runs it; ctest's soak_short
runs a short one): one daemon (root, or rootless with HEARTH_E2E_ROOTLESS=
<user>) started by the shared harness (python/hearth_harness), and these
loads at once, each in its own thread at a modest pace (the box is shared):
  sync     POST .../soak-echo/invoke                       expect 200
  async    the same with Prefer: respond-async             expect 202
  deploy   PUT soak-ver with new code (a new version), then invoke it and
           check the new code answers                      expect 200/201, 200
  follow   GET .../soak-echo/logs?follow=1, read 0.5-2 s, hang up  expect 200
  bad      malformed JSON, unknown function, bad token, bad name, bad
           Content-Length body                             expect 4xx
  crash    soak-crash exits (os._exit), kills itself (SIGKILL) or raises;
           every third time a sleeping worker is SIGKILLed from outside
                                                           expect 502 / 500
           then a normal call of the same function         expect 200
Every SOAK_SAMPLE seconds (10) it samples the daemon's and the spawner's
RSS and open fds, the worker count (the daemon's descendants but the
spawner), the folders under the daemon's cgroups, and the mounts the daemon
sees (its /proc/<pid>/mountinfo) and the host has.

Verdict, FAIL when any of:
  - a 5xx the functions did not cause (anything but 500 function_error and
    502 function_crashed on the crash calls), a transport error (refused,
    reset, timeout) or an answer of a status or code not expected;
  - a sampled figure grows without bound. The rule: with n >= 6 samples,
    the median of the last third must not exceed the maximum of the first
    third by more than its slack (RSS: 25% + 8 MiB; fds: 25% + 16;
    workers and cgroup leaves: 50% + 6; mounts: + 4). A leak grows with
    time, so its last third sits above everything seen in the first; warm
    caches and the load's own ups and downs are inside the first third's
    maximum or the slack. Fewer than 6 samples: not judged (says so).
  - the async queue not drained 60 s after the load stops, the daemon
    dead or not answering /healthz, an unclean stop (status, processes
    left), or cgroup folders left after it.
Prints the samples, the requests by kind and outcome, the growth checks
and a last line `soak: PASS` or `soak: FAIL (...)`. Exit 0 PASS, 1 FAIL,
2 set-up failure. SOAK_JSON=<file> also writes the figures as JSON.

Environment: HEARTHD [<repo>/build/hearthd], SOAK_SECONDS [600],
  SOAK_SAMPLE [10], SOAK_ARGS [extra hearthd options], SOAK_JSON [none],
  HEARTH_E2E_ROOTLESS [none: root], SOAK_KEEP=1 keeps the temp dir,
  SOAK_LOADS [all: sync,async,deploy,follow,bad,crash, or some of them].
Must never: talk to anything but 127.0.0.1, signal a process but the
daemon it started and that daemon's soak-slow workers, or leave a daemon,
cgroup or temp dir behind.
"""

import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from hearth_harness import proc  # noqa: E402
from hearth_harness.config import HarnessError  # noqa: E402
from hearth_harness.daemon import Hearth  # noqa: E402
from hearth_harness.util import py, wait_until  # noqa: E402

ECHO = py("""
    def handler(event, context):
        print("soak", event.get("i"), flush=True)
        return {"i": event.get("i")}
""")
CRASH = py("""
    import os, signal
    def handler(event, context):
        mode = event.get("mode")
        if mode == "exit":
            os._exit(3)
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "raise":
            raise RuntimeError("soak asked for it")
        return {"ok": True}
""")
SLOW = py("""
    import time
    def handler(event, context):
        time.sleep(10)
        return {"slept": True}
""")
VERSIONED = 'def handler(event, context):\n    return {"v": %d}\n'

# Slack per sampled figure: (relative, absolute) above the first third's max.
SLACK = {"rss_kib": (0.25, 8192), "fds": (0.25, 16), "spawner_rss_kib": (0.25, 8192),
         "spawner_fds": (0.25, 16), "workers": (0.5, 6), "cgroup_leaves": (0.5, 6),
         "daemon_mounts": (0.0, 4), "host_mounts": (0.0, 4)}
COLUMNS = ["rss_kib", "fds", "spawner_rss_kib", "spawner_fds", "workers", "cgroup_leaves",
           "daemon_mounts", "host_mounts"]


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        v = int(raw, 10)
    except ValueError:
        raise SystemExit("soak: %s=%r is not an integer" % (name, raw))
    if not lo <= v <= hi:
        raise SystemExit("soak: %s=%d is outside %d..%d" % (name, v, lo, hi))
    return v


class Tally:
    """Requests by (kind, outcome), with a few examples of each failure."""

    OUTCOMES = ("ok", "fn_5xx", "daemon_5xx", "unexpected", "transport")

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.examples = {}

    def add(self, kind, outcome, detail=None):
        with self.lock:
            self.counts[(kind, outcome)] = self.counts.get((kind, outcome), 0) + 1
            if detail and outcome != "ok" and outcome != "fn_5xx":
                ex = self.examples.setdefault((kind, outcome), [])
                if len(ex) < 5:
                    ex.append(detail[:300])

    def total(self, outcome):
        return sum(v for (_k, o), v in self.counts.items() if o == outcome)

    def kinds(self):
        return sorted({k for k, _o in self.counts})


def error_code(r):
    try:
        body = r.json()
        return body["error"]["code"] if isinstance(body, dict) and isinstance(
            body.get("error"), dict) else None
    except (ValueError, KeyError, TypeError):
        return None


class Soak:
    def __init__(self, hearth, seconds, tally):
        self.h = hearth
        self.deadline = time.monotonic() + seconds
        self.tally = tally
        self.stop = threading.Event()
        self.version = 0
        self.sync_writes = True  # the sync load writes the lines follow reads

    def running(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def session(self):
        s = requests.Session()
        s.headers.update(self.h.auth_header())
        return s

    def call(self, kind, s, method, path, expect, fn_codes=(), **kw):
        """One request; classifies it. expect: statuses that are fine;
        fn_codes: (status, error code) pairs the function causes."""
        kw.setdefault("timeout", 30)
        try:
            r = s.request(method, self.h.url(path), **kw)
        except requests.RequestException as e:
            self.tally.add(kind, "transport", "%s %s: %s" % (method, path, e))
            return None
        code = error_code(r) if r.status_code >= 400 else None
        if r.status_code in expect:
            self.tally.add(kind, "ok")
        elif (r.status_code, code) in fn_codes:
            self.tally.add(kind, "fn_5xx")
        elif r.status_code >= 500:
            self.tally.add(kind, "daemon_5xx", "%s %s: %d %s" % (method, path, r.status_code,
                                                              r.text[:200]))
        else:
            self.tally.add(kind, "unexpected", "%s %s: %d %s" % (method, path, r.status_code,
                                                              r.text[:200]))
        return r

    def pace(self, seconds):
        self.stop.wait(seconds)

    # -- the loads ---------------------------------------------------------

    def sync_load(self):
        s, i = self.session(), 0
        while self.running():
            i += 1
            r = self.call("sync", s, "POST", "/v1/functions/soak-echo/invoke", (200,),
                          json={"i": i})
            if r is not None and r.status_code == 200 and r.json() != {"i": i}:
                self.tally.add("sync", "unexpected", "wrong answer %r" % r.text[:100])
            self.pace(0.02)

    def async_load(self):
        s, i = self.session(), 0
        while self.running():
            i += 1
            self.call("async", s, "POST", "/v1/functions/soak-echo/invoke", (202,),
                      json={"i": -i}, headers={"Prefer": "respond-async"})
            self.pace(0.1)

    def deploy_load(self):
        s = self.session()
        while self.running():
            self.version += 1
            v = self.version
            r = self.call("deploy", s, "PUT", "/v1/functions/soak-ver", (200, 201), timeout=60,
                          json={"runtime": "python3", "handler": "main.handler",
                                "files": {"main.py": VERSIONED % v}})
            if r is not None and r.status_code in (200, 201):
                r = self.call("deploy-call", s, "POST", "/v1/functions/soak-ver/invoke", (200,),
                              json={})
                if r is not None and r.status_code == 200 and r.json() != {"v": v}:
                    self.tally.add("deploy-call", "unexpected",
                                   "v%d answered %r" % (v, r.text[:100]))
            self.pace(2.0)

    def follow_load(self):
        s = self.session()
        while self.running():
            try:
                r = s.get(self.h.url("/v1/functions/soak-echo/logs"), stream=True,
                          params={"follow": "1", "tail": "5"}, timeout=(10, 10))
            except requests.RequestException as e:
                self.tally.add("follow", "transport", str(e))
                self.pace(0.5)
                continue
            if r.status_code != 200:
                self.tally.add("follow", "daemon_5xx" if r.status_code >= 500 else "unexpected",
                               "%d %s" % (r.status_code, r.text[:200]))
                r.close()
                self.pace(0.5)
                continue
            until = time.monotonic() + random.uniform(0.5, 2.0)
            got = 0
            try:
                for chunk in r.iter_content(4096):
                    got += len(chunk)
                    if time.monotonic() > until or not self.running():
                        break
            except requests.RequestException as e:
                # Once the load has stopped no line comes: a read timeout
                # then is the end of the soak, not a stalled stream; nor is
                # it one when no sync load writes lines (SOAK_LOADS).
                if self.running() and self.sync_writes:
                    self.tally.add("follow", "transport", str(e))
                else:
                    self.tally.add("follow", "ok")
                r.close()
                continue
            r.close()  # hang up mid-stream: the daemon must drop its follower
            self.tally.add("follow", "ok" if got or not self.sync_writes else "unexpected",
                           "no log bytes")
            self.pace(0.2)

    def bad_load(self):
        s = self.session()
        bad = requests.Session()
        bad.headers["Authorization"] = "Bearer hth_" + "A" * 43
        cases = [
            (s, "POST", "/v1/functions/soak-echo/invoke", {"data": b"{not json",
             "headers": {"Content-Type": "application/json"}}),
            (s, "PUT", "/v1/functions/soak-bad", {"data": b"{\"runtime\": ",
             "headers": {"Content-Type": "application/json"}}),
            (s, "POST", "/v1/functions/soak-nobody-%s/invoke", {"json": {}}),
            (bad, "POST", "/v1/functions/soak-echo/invoke", {"json": {}}),
            (bad, "GET", "/v1/functions", {}),
            (s, "PUT", "/v1/functions/Bad_Name!", {"json": {"runtime": "python3"}}),
            (s, "GET", "/v1/functions/soak-echo/logs", {"params": {"tail": "-3"}}),
            (s, "POST", "/v1/functions/soak-echo/invoke", {"data": b"{}",
             "headers": {"Prefer": "respond-async", "Idempotency-Key": "has space"}}),
        ]
        n = 0
        while self.running():
            sess, method, path, kw = cases[n % len(cases)]
            if "%s" in path:
                path = path % uuid.uuid4().hex[:8]
            self.call("bad", sess, method, path, range(400, 500), **kw)
            n += 1
            self.pace(0.1)

    def crash_load(self):
        s, n = self.session(), 0
        fn_codes = {(502, "function_crashed"), (500, "function_error")}
        while self.running():
            n += 1
            if n % 3 == 0:
                self.kill_from_outside(s)
            else:
                mode = ("exit", "kill", "raise")[(n // 3 + n) % 3]
                self.call("crash", s, "POST", "/v1/functions/soak-crash/invoke", (),
                          fn_codes, json={"mode": mode})
            self.call("after-crash", s, "POST", "/v1/functions/soak-crash/invoke", (200,),
                      json={})
            self.pace(1.0)

    def kill_from_outside(self, s):
        """A worker killed while it runs a call: SIGKILL the soak-slow
        worker(s) (found by the marker in their environment), expect 502."""
        box = {}
        t = threading.Thread(target=lambda: box.update(r=self.call(
            "killed", s, "POST", "/v1/functions/soak-slow/invoke", (),
            {(502, "function_crashed")}, json={})), daemon=True)
        t.start()
        pids = wait_until(lambda: proc.procs_with_env(self.slow_mark), 10, 0.05)
        for pid in pids or ():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        t.join(40)
        if not pids:
            self.tally.add("killed", "unexpected", "no soak-slow worker seen within 10 s")


# -- sampling and the growth rule ----------------------------------------


def sample(h, t0):
    pid = h.pid
    sp = proc.spawner_pid(h)
    workers = [p for p, _s in proc.descendants(pid) if p != sp]
    return {"t": round(time.monotonic() - t0, 1),
            "rss_kib": proc.status_kib(pid), "fds": proc.fd_count(pid),
            "spawner_rss_kib": proc.status_kib(sp) if sp else None,
            "spawner_fds": proc.fd_count(sp) if sp else None,
            "workers": len(workers), "cgroup_leaves": proc.cgroup_leaves(pid),
            "daemon_mounts": proc.mount_count(pid), "host_mounts": proc.mount_count(1)}


def growth(samples):
    """[(figure, first-third max, last-third median, bound, verdict, slope)]:
    slope, for information, is the least-squares trend in units per hour."""
    out = []
    for col in COLUMNS:
        vals = [s[col] for s in samples if s[col] is not None]
        if len(vals) < 6:
            out.append((col, None, None, None, "not judged (%d samples)" % len(vals), None))
            continue
        third = len(vals) // 3
        first_max = max(vals[:third])
        last_med = statistics.median(vals[-third:])
        rel, ab = SLACK[col]
        bound = first_max * (1 + rel) + ab
        ts = [s["t"] for s in samples if s[col] is not None]
        slope = statistics.linear_regression(ts, vals).slope * 3600 if len(set(ts)) > 1 else 0.0
        out.append((col, first_max, last_med, bound, "ok" if last_med <= bound else "GROWS",
                    slope))
    return out


def print_report(samples, tally, checks, problems, seconds, rootless):
    print("soak: %d s of mixed load against one hearthd (%s)" % (
        seconds, "rootless as " + rootless if rootless else "root"))
    print()
    hdr = ["t s", "RSS MiB", "fds", "spawner MiB", "sp fds", "workers", "cg leaves",
           "d mounts", "h mounts"]
    print("%7s %8s %5s %11s %6s %7s %9s %8s %8s" % tuple(hdr))
    for s in samples:
        def mib(v):
            return "-" if v is None else "%.1f" % (v / 1024)

        def num(v):
            return "-" if v is None else str(v)
        print("%7.1f %8s %5s %11s %6s %7s %9s %8s %8s" % (
            s["t"], mib(s["rss_kib"]), num(s["fds"]), mib(s["spawner_rss_kib"]),
            num(s["spawner_fds"]), num(s["workers"]), num(s["cgroup_leaves"]),
            num(s["daemon_mounts"]), num(s["host_mounts"])))
    print()
    print("%-12s" % "requests" + "".join("%12s" % o for o in Tally.OUTCOMES))
    for kind in tally.kinds():
        print("%-12s" % kind + "".join("%12d" % tally.counts.get((kind, o), 0)
                                        for o in Tally.OUTCOMES))
    print("%-12s" % "all" + "".join("%12d" % tally.total(o) for o in Tally.OUTCOMES))
    print("(fn_5xx: 500 function_error / 502 function_crashed the crash calls asked for;"
          " daemon_5xx must be 0)")
    for (kind, outcome), ex in sorted(tally.examples.items()):
        for e in ex:
            print("  %s/%s: %s" % (kind, outcome, e))
    print()
    print("growth (last third's median vs the first third's max + slack):")
    for col, fmax, lmed, bound, verdict, slope in checks:
        if fmax is None:
            print("  %-16s %s" % (col, verdict))
        else:
            print("  %-16s first max %9.0f  last median %9.0f  bound %9.0f  trend %+8.1f/h  %s"
                  % (col, fmax, lmed, bound, slope, verdict))
    print()
    print("soak: PASS" if not problems else "soak: FAIL (%s)" % "; ".join(problems))


def deploy_functions(h, slow_mark):
    h.deploy_ok("soak-echo", ECHO)
    h.deploy_ok("soak-crash", CRASH)
    h.deploy_ok("soak-slow", SLOW, timeout_ms=30000, env={"SOAK_MARK": slow_mark})
    h.invoke_ok("soak-echo", json={"i": 0})
    h.invoke_ok("soak-crash", json={})


def async_drained(h):
    r = h.show("soak-echo")
    if r.status_code != 200:
        return False
    a = r.json().get("async") or {}
    return a.get("waiting", 0) == 0 and a.get("running", 0) == 0


def main():
    seconds = env_int("SOAK_SECONDS", 600, 5, 7 * 86400)
    every = env_int("SOAK_SAMPLE", 10, 1, 3600)
    extra = os.environ.get("SOAK_ARGS", "").split()
    base = Path(tempfile.mkdtemp(prefix="hearth-soak-"))
    rootless = os.environ.get("HEARTH_E2E_ROOTLESS") or None
    h = Hearth(base, args=extra, log_level="warn", extra_args=[])
    tally, samples, problems = Tally(), [], []
    stopped_pid = None
    try:
        try:
            h.start()
            slow_mark = "soak-slow-" + uuid.uuid4().hex
            deploy_functions(h, slow_mark)
        except (HarnessError, AssertionError, requests.RequestException) as e:
            print("soak: set-up failed: %s" % e, file=sys.stderr)
            return 2
        soak = Soak(h, seconds, tally)
        soak.slow_mark = slow_mark
        loads = [soak.sync_load, soak.sync_load, soak.async_load, soak.deploy_load,
                 soak.follow_load, soak.follow_load, soak.bad_load, soak.crash_load]
        only = os.environ.get("SOAK_LOADS", "").replace(",", " ").split()
        if only:  # to find which load a growth comes with
            loads = [f for f in loads if f.__name__[:-len("_load")] in only]
            soak.sync_writes = soak.sync_load in loads
        threads = [threading.Thread(target=f, daemon=True) for f in loads]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        samples.append(sample(h, t0))
        while soak.running():
            soak.stop.wait(min(every, max(0.0, soak.deadline - time.monotonic())))
            if h.proc.poll() is not None:
                problems.append("hearthd died (exit %s)" % h.proc.returncode)
                break
            samples.append(sample(h, t0))
        soak.stop.set()
        for t in threads:
            t.join(60)
        if any(t.is_alive() for t in threads):
            problems.append("a load thread hung")
        if h.proc.poll() is None:
            if not h.healthy():
                problems.append("hearthd stopped answering /healthz")
            if not wait_until(lambda: async_drained(h), 60, 0.5):
                problems.append("async queue not drained 60 s after the load")
        checks = growth(samples)
        for col, _f, _l, _b, verdict, _s in checks:
            if verdict == "GROWS":
                problems.append("%s grows" % col)
        for outcome in ("daemon_5xx", "transport", "unexpected"):
            if tally.total(outcome):
                problems.append("%d %s" % (tally.total(outcome), outcome))
        if h.proc.poll() is None:
            stopped_pid = h.pid
            try:
                h.stop()
            except (AssertionError, HarnessError) as e:
                problems.append("unclean stop: %s" % str(e).splitlines()[0])
            left = proc.daemon_cgroups(stopped_pid)
            if left:
                problems.append("cgroups left: %s" % ", ".join(left))
        print_report(samples, tally, checks, problems, seconds, rootless)
        if os.environ.get("SOAK_JSON"):
            with open(os.environ["SOAK_JSON"], "w") as f:
                json.dump({"seconds": seconds, "rootless": rootless, "samples": samples,
                           "requests": {"%s/%s" % k: v for k, v in tally.counts.items()},
                           "growth": checks, "problems": problems}, f, indent=1)
        return 1 if problems else 0
    finally:
        if h.proc is not None:
            pid = h.pid
            h._kill_everything()
            proc.remove_cgroups_of(pid)
        if os.environ.get("SOAK_KEEP") == "1":
            print("soak: kept %s" % base, file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)  # ctest's timeout: still clean up
    sys.exit(main())
