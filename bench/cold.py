#!/usr/bin/python3
"""bench/cold.py — issue 12's figures (pre-built single-use sandboxes) against a real hearthd.

A report, not a test. In one run, on 127.0.0.1 only, as root (the sandbox
needs it), it starts ONE hearthd on a free port with a temporary data dir
and measures, each figure beside its issue-12 target and a baseline taken
in the same run:

  0. the machine: fork+exec of /bin/true and `python3 -I -B -c pass` from
     this process, GET /healthz on one keep-alive connection (the HTTP
     floor) and this client against a fixed-answer server (its own floor);
  7. idle sandbox PSS: once the pre-built pool is full, the Pss
     (/proc/PID/smaps_rollup) summed over every process of each unclaimed
     pre-built sandbox (its init and the runtime found by HEARTH_PREBUILT=1
     in /proc/PID/environ), per sandbox; beside it the same sum for the
     sandbox of an idle warm Python hello worker. "n/a" without a pool;
  1. Python hello, cold call - warm call, p50 and p99: COLD_N distinct
     functions (same code) each called once (after one unmeasured cold
     start), every call preceded by a wait until the pool is back to its
     target (hearth_prebuilt_ready >= hearth_prebuilt_target in /metrics,
     COLD_POOL_WAIT s at most; without those metrics a fixed 0.1 s); warm
     = COLD_WARM_N calls to one warm function (after 200 unmeasured ones),
     in batches between the cold calls, same connection, same client code,
     so both see the same machine. Each answer's X-Hearth-Cold-Start says
     whether it was cold: mismatches are counted;
  2. native C hello (runtime c), the same, COLD_OTHER_N cold samples;
  3. node hello, the same, if /usr/bin/node exists and node is usable;
  4. 32 simultaneous first calls to one Python function with
     max_concurrency 32: 32 connections opened first, then one POST written
     on each back to back from one selector thread; first request written
     -> last answer read, and the p50 / max of the 32 latencies,
     COLD_BURST_ROUNDS rounds (a fresh function each). Baseline: the same
     burst against a function with 32 idle workers (min_instances 32);
  5. COLD_MANY_FNS distinct warm Python functions called round-robin vs one
     function, wrk -tC -cC (C = COLD_CLIENTS) for COLD_DURATION s each
     (bench/sched.py's round-robin Lua script, written to the temp dir), or
     this client's closed loop without wrk; req/s and the ratio. Every
     function is warmed first; no cold start may happen in the runs.
     Baseline, same run, after the functions are deleted: "bare processes",
     C (= COLD_CLIENTS) then COLD_MANY_FNS python3 workers started as
     hearthd starts them (-I -B -c runtimes/python3/bootstrap.py, the same
     hello, fd 3 a socketpair) but as plain children of this process (no
     sandbox, no daemon, no HTTP), driven by bench/frame_driver.c (built
     by CMake as $BUILD/bench_frame_driver): C INVOKE frames in flight, round-robin
     as above, 1 s (quick 0.3 s) unmeasured then COLD_DURATION s; req/s,
     workers' CPU per call (/proc/PID/stat), the bare ratio, and the
     daemon's own loss = daemon ratio / bare ratio (plus the growth of
     1/req/s per call of both);
  6. a new deploy followed at once by a call: on one connection, PUT the
     function, then POST its first call; (deploy -> first answer) minus
     the deploy request's own time, p50, COLD_DEPLOY_N times, each in turn
     with a cold call of an already deployed function (the baseline).

Then a plain-text report on stdout (progress on stderr), ending with one
table: what | figure | baseline (same run) | target | met?. Each case says
how the pool's counters (claims, misses) moved, or that there is no pool.

The HTTP client, the daemon handling, the statistics and the wrk script
are bench/sched.py's; the hello functions (and the C build) are
bench/runtimes.py's; both loaded as modules, nothing copied, except the
daemon start (one more set of options) and the machine baseline (sched.py
has it inline in its cold case). Clients are raw HTTP/1.1 on sockets,
TCP_NODELAY, keep-alive; a latency is from the request written to the
whole answer read.

Run:      bench/cold.sh [--quick]     (builds build/hearthd if missing; root)
          HEARTHD=/path/hearthd /usr/bin/python3 bench/cold.py
Takes:    about 1 minute on 2 vCPUs; with COLD_QUICK=1 (--quick) about 10 s.
Exit:     0 when the run completed (missed targets are not an error), 1 when
          a case failed (its row says FAILED; the report is printed anyway),
          2 on a set-up failure, 130 on Ctrl-C / SIGTERM. Everything it
          started is stopped and its temp dir removed in every case.

Environment (defaults in brackets; quick mode's after the slash):
  HEARTHD            the daemon [<repo>/build/hearthd]
  COLD_QUICK         1: small counts, for a smoke test [0]
  COLD_N             Python cold samples [100 / 4]
  COLD_OTHER_N       c and node cold samples [30 / 3]
  COLD_WARM_N        sequential warm calls per runtime [1000 / 100]
  COLD_BURST_ROUNDS  rounds of case 4 [3 / 1]
  COLD_MANY_FNS      functions of case 5 [100 / 20]
  COLD_CLIENTS       connections (and wrk threads) of case 5 [8]
  COLD_DURATION      seconds per measured run of case 5 [5 / 1]
  COLD_DEPLOY_N      deploy-then-call samples of case 6 [30 / 3]
  COLD_POOL_WAIT     seconds to wait for the pool to refill [5]
  COLD_WRK           0: do not use wrk even when installed [1]
  COLD_KEEP          1: keep the temp dir (daemon log, data) [0]
  COLD_ONLY          only these cases, e.g. 5 or 1,5 [all]
  COLD_DAEMON_ARGS   more hearthd options, e.g. "--prebuilt-max 0" (no pool) []
"""

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # a benchmark run leaves nothing in the repo
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(1, str(REPO / "bench"))

import runtimes as R  # noqa: E402  (bench/runtimes.py: its functions and checks)
from hearth_harness import benchlib as S  # noqa: E402  (the same module R.S is)
from hearth_harness.build import bench_bin  # noqa: E402
from hearth_harness.config import HarnessError  # noqa: E402
BenchError, SetupError = S.BenchError, S.SetupError
fmt_ns, build_request, invoke_path = S.fmt_ns, S.build_request, S.invoke_path

WARMUP_CALLS = 200
NO_POOL_GAP_S = 0.1  # between cold calls when the daemon shows no pool
BURST = 32  # the figure
TARGETS = {"python3": (3e6, 10e6), "c": (2e6, None), "node": (5e6, None)}
PY_MARKED = "# function %s\ndef handler(event, context):\n    return 'hello'\n"


def log(msg):
    print("cold: " + msg, file=sys.stderr, flush=True)


def met(ok):
    return "yes" if ok else "no"


def signed_ns(ns):
    return ("-" if ns < 0 else "") + fmt_ns(abs(ns))


# ---------------------------------------------------------------------------
# the daemon


Daemon = S.Daemon  # with its `extra` options


# ---------------------------------------------------------------------------
# the pre-built pool, as GET /metrics shows it

METRIC = re.compile(r'^(hearth_prebuilt_\w+)\{([^}]*)\}\s+(\S+)')


class Pool:
    """Reads the hearth_prebuilt_* metrics. On a daemon without a pool
    they are absent: every wait is then a fixed NO_POOL_GAP_S."""

    def __init__(self, port, wait_s, network="isolated"):
        self.port = port
        self.wait_s = wait_s
        self.network = network  # a runtime has a pool per network mode: this one's
        self.conn = None
        self.timeouts = 0

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def scrape(self):
        """{(metric, runtime): value} of the hearth_prebuilt_* series."""
        raw = build_request("GET", "/metrics")
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = S.Conn(self.port)
                status, _head, body = self.conn.roundtrip(raw)
                break
            except (OSError, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if status != 200:
            raise BenchError("GET /metrics answered %d" % status)
        out = {}
        for line in body.decode(errors="replace").splitlines():
            m = METRIC.match(line)
            net = re.search(r'network="([^"]*)"', m.group(2)) if m else None
            if m and (net.group(1) if net else "isolated") == self.network:
                rt = re.search(r'runtime="([^"]*)"', m.group(2))
                out[(m.group(1), rt.group(1) if rt else "")] = float(m.group(3))
        return out

    def counters(self, runtime):
        """(claims, misses) so far, or None without a pool."""
        m = self.scrape()
        if ("hearth_prebuilt_claims_total", runtime) not in m:
            return None
        return (m[("hearth_prebuilt_claims_total", runtime)],
                m.get(("hearth_prebuilt_misses_total", runtime), 0.0))

    def wait_refilled(self, runtime):
        """Waits until the pool of `runtime` is back to its target (or
        NO_POOL_GAP_S without a pool); returns the seconds waited."""
        t0 = time.monotonic()
        while True:
            m = self.scrape()
            ready = m.get(("hearth_prebuilt_ready", runtime))
            if ready is None:
                time.sleep(NO_POOL_GAP_S)
                return time.monotonic() - t0
            if ready >= m.get(("hearth_prebuilt_target", runtime), 0.0):
                return time.monotonic() - t0
            if time.monotonic() - t0 > self.wait_s:
                self.timeouts += 1
                return time.monotonic() - t0
            time.sleep(0.005)

    def expected(self):
        """Sandboxes the pools hold (ready + starting, all runtimes), or
        None without a pool."""
        m = self.scrape()
        if not any(k[0] == "hearth_prebuilt_ready" for k in m):
            return None
        return int(sum(v for k, v in m.items()
                       if k[0] in ("hearth_prebuilt_ready", "hearth_prebuilt_starting")))

    def state(self, runtime):
        """'ready 1, starting 0, target 1' or 'no pool'."""
        m = self.scrape()
        if ("hearth_prebuilt_ready", runtime) not in m:
            return "no pool"
        return "ready %d, starting %d, target %d" % tuple(
            m.get((k, runtime), 0) for k in ("hearth_prebuilt_ready", "hearth_prebuilt_starting",
                                             "hearth_prebuilt_target"))


def moved(before, after):
    """'pool: 30 claims, 0 misses' from two counters() results."""
    if before is None or after is None:
        return "pool: none (no hearth_prebuilt_* metrics)"
    return "pool: %d claims, %d misses" % (after[0] - before[0], after[1] - before[1])


# ---------------------------------------------------------------------------
# sandboxes: processes below the daemon, grouped by sandbox


def sandboxes(d):
    """{root pid: [pids]}: each sandbox is a process below the daemon in a
    pid namespace other than the daemon's (its init) with its
    descendants. The spawner and a runtime template are not sandboxes."""
    own = S.pid_ns(d.pid)
    desc = S.descendants(d.pid)
    ns = {p: S.pid_ns(p) for p in desc}
    ns[d.pid] = own
    children = {}
    for p, (pp, _start) in desc.items():
        children.setdefault(pp, []).append(p)
    out = {}
    for p, (pp, _start) in desc.items():
        if ns[p] not in (None, own) and ns.get(pp) == own:
            members, todo = [], [p]
            while todo:
                x = todo.pop()
                members.append(x)
                todo.extend(children.get(x, []))
            out[p] = members
    return out


def var_task(pid):
    """The names in the sandbox's /var/task seen from pid, or None."""
    try:
        return os.listdir("/proc/%d/root/var/task" % pid)
    except OSError:
        return None


def unclaimed_runtime(members):
    """The pre-built runtime of a sandbox not claimed yet, or None. The
    runtime's /proc environ keeps HEARTH_PREBUILT=1 after SPECIALIZE (it
    is the exec-time copy), so claimed = code attached at /var/task."""
    for p in members:
        if S.environ_entry(p, "HEARTH_PREBUILT=1") == "HEARTH_PREBUILT=1":
            files = var_task(p)
            if files == [] or (files is None and S.environ_entry(p, "HEARTH_HANDLER=") is None):
                return p
    return None


def pool_sandboxes(d):
    """{root: (runtime pid, members)} of the unclaimed pre-built sandboxes."""
    out = {}
    for root, members in sandboxes(d).items():
        rt = unclaimed_runtime(members)
        if rt is not None:
            out[root] = (rt, members)
    return out


def worker_sandboxes(d):
    return {r: m for r, m in sandboxes(d).items() if unclaimed_runtime(m) is None}


def function_sandbox(d, name):
    """(root, members) of the one sandbox serving `name`: a member's
    environ names it (an exec'd or cloned worker), or its /var/task/main.py
    carries the marker line of PY_MARKED (a claimed pre-built one)."""
    found = []
    for root, members in worker_sandboxes(d).items():
        for p in members:
            if S.environ_entry(p, "HEARTH_FUNCTION_NAME=") == "HEARTH_FUNCTION_NAME=" + name:
                found.append((root, members))
                break
            try:
                with open("/proc/%d/root/var/task/main.py" % p) as f:
                    if f.readline() == "# function %s\n" % name:
                        found.append((root, members))
                        break
            except OSError:
                pass
    if len(found) != 1:
        raise BenchError("expected one sandbox of %s, found %d" % (name, len(found)))
    return found[0]


def pss_kib(members):
    """Pss summed over members (those that ended meanwhile count 0)."""
    total = 0
    for p in members:
        try:
            total += S.smaps_rollup_kib(p)["Pss"]
        except (OSError, KeyError):
            pass
    return total


def label(pid):
    return os.path.basename(S._exe(pid)) or "?"


# ---------------------------------------------------------------------------
# functions


def deploy(api, rt, name, **settings):
    """runtimes.py's hello of runtime rt, with settings."""
    return api.call("PUT", "/v1/functions/" + name, deploy_body(rt, **settings), ok=(200, 201))


def deploy_body(rt, **settings):
    handler, files, _what = R.HELLO[rt]
    body = {"runtime": rt, "handler": handler}
    if files is None:
        body["archive"] = R.c_archive()
    else:
        body["files"] = files
    body.update(settings)
    return body


def reset(d, api, pool, timeout=20):
    """Deletes every function and waits until no sandbox but the pool's is
    left, so a case starts on an empty daemon, also after a failed one.
    Should telling pre-built sandboxes apart fail, no more sandboxes than
    the pools' ready + starting will do."""
    for f in api.call("GET", "/v1/functions")["functions"]:
        api.delete(f["name"])
    deadline = time.monotonic() + timeout
    while worker_sandboxes(d):
        if pool.expected() is not None and len(sandboxes(d)) <= pool.expected():
            break
        if time.monotonic() > deadline:
            raise BenchError("workers alive %d s after their functions were deleted: %s" % (
                timeout, sorted(worker_sandboxes(d))))
        time.sleep(0.05)


def call(conn, raw, name):
    """(ns, cold?) of one call; a non-200 or a body without hello fails."""
    t0 = time.perf_counter_ns()
    status, head, body = conn.roundtrip(raw)
    t = time.perf_counter_ns() - t0
    R.check_answer(name, status, body)
    return t, S.is_cold(head)


# ---------------------------------------------------------------------------
# the report


class Report:
    def __init__(self):
        self.head = []
        self.sections = []  # (title, [lines])
        self.rows = []  # (what, figure, baseline, target, met)
        self.failed = False

    def section(self, title):
        lines = []
        self.sections.append((title, lines))
        return lines

    def row(self, what, figure, baseline="-", target="-", ok="-"):
        self.rows.append((what, figure, baseline, target, ok))

    def fail(self, title, lines, exc):
        self.failed = True
        lines.append("FAILED: %s" % exc)
        self.row(title, "FAILED")
        log("%s FAILED: %s" % (title, exc))

    @staticmethod
    def _order(title):
        m = re.match(r"(\d+)", title)
        return int(m.group(1)) if m else -1

    def text(self):
        out = list(self.head)
        for title, lines in sorted(self.sections, key=lambda s: self._order(s[0])):
            out.append("")
            out.append(title)
            out.extend("   " + x if x else "" for x in lines)
        out.append("")
        head = ("what", "figure", "baseline (same run)", "target", "met?")
        w = [max(len(r[i]) for r in self.rows + [head]) for i in range(4)]
        fmt = "%-{}s  %-{}s  %-{}s  %-{}s  %s".format(*w)
        out.append(fmt % head)
        out.append(fmt % tuple("-" * n for n in w + [4]))
        for r in sorted(self.rows, key=lambda r: self._order(r[0])):
            out.append(fmt % r)
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# the cases


def spawn_stats(argv, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        lat.append(time.perf_counter_ns() - t0)
    return S.Stats(lat)


def case_machine(d, rep, m, quick):
    """The machine's floor, for scale. Like sched.py's cold case (inline
    there): spawned from this process, no sandbox."""
    title = "0. The machine (for scale)"
    lines = rep.section(title)
    try:
        true = spawn_stats(["/bin/true"], 10 if quick else 30)
        py = spawn_stats([S.PY, "-I", "-B", "-c", "pass"], 3 if quick else 10)
        conn = S.Conn(d.port)
        hz = S.Stats(conn.timed(build_request("GET", "/healthz"), m))
        conn.close()
        floor = S.client_floor(m)
        lines.append("fork+exec /bin/true from this process: " + true.line())
        lines.append("%s -I -B -c pass from this process, no sandbox: %s" % (S.PY, py.line()))
        lines.append("GET /healthz, %d sequential on one keep-alive connection (gateway + this "
                     "client, no worker): %s" % (m, hz.line()))
        lines.append("this client against a Python process answering a fixed response: " +
                     floor.line())
        rep.row("0. fork+exec /bin/true, p50", fmt_ns(true.p50))
        rep.row("0. python3 -I -B -c pass, p50", fmt_ns(py.p50))
        rep.row("0. GET /healthz c1, p50 (HTTP floor)", fmt_ns(hz.p50))
    except (BenchError, OSError, subprocess.CalledProcessError) as exc:
        rep.fail(title, lines, exc)


def wait_pools_full(pool, runtimes, timeout):
    """Waits until every runtime's pool is at its target; returns the
    seconds that took, or None when there is no pool."""
    t0 = time.monotonic()
    while True:
        m = pool.scrape()
        have = [rt for rt in runtimes if ("hearth_prebuilt_ready", rt) in m]
        if not have:
            return None
        full = all(m[("hearth_prebuilt_ready", rt)] >= m.get(("hearth_prebuilt_target", rt), 0)
                   and m.get(("hearth_prebuilt_starting", rt), 0) == 0 for rt in have)
        if full or time.monotonic() - t0 > timeout:
            return time.monotonic() - t0
        time.sleep(0.05)


def pool_pss(d):
    """{runtime label: [(root, runtime pid, Pss KiB, members)]} of the
    unclaimed pre-built sandboxes now."""
    out = {}
    for root, (rt, members) in sorted(pool_sandboxes(d).items()):
        out.setdefault(label(rt), []).append((root, rt, pss_kib(members), members))
    return out


def pss_lines(by_label):
    lines = []
    for lab, boxes in sorted(by_label.items()):
        for root, rt, pss, members in boxes:
            lines.append("  %s sandbox: init pid %d, runtime pid %d, %d processes (%s): Pss %s" % (
                lab, root, rt, len(members), ", ".join(label(p) for p in members),
                S.fmt_kib(pss)))
        lines.append("  %s: mean %s over %d sandboxes" % (
            lab, S.fmt_kib(sum(b[2] for b in boxes) // len(boxes)), len(boxes)))
    return lines


def case_pss(d, api, pool, rep, usable, quick):
    title = "7. Idle sandbox PSS: pre-built (unclaimed) vs a warm idle worker"
    lines = rep.section(title)
    try:
        took = wait_pools_full(pool, usable, 15)
        at_start = pool_pss(d)
        if took is None:
            lines.append("no hearth_prebuilt_* metrics: the daemon has no pool.")
        else:
            lines.append("pools full (or 15 s passed) %.2f s after the first look: %s" % (
                took, "; ".join("%s %s" % (rt, pool.state(rt)) for rt in usable)))
        lines.append("unclaimed pre-built sandboxes right after the start: %s" % (
            sum(len(b) for b in at_start.values()) or "none"))
        lines.extend(pss_lines(at_start))
        name = "pss-warm"
        api.call("PUT", "/v1/functions/" + name, {
            "runtime": "python3", "handler": "main.handler",
            "files": {"main.py": PY_MARKED % name}}, ok=(200, 201))
        conn = S.Conn(d.port)
        raw = build_request("POST", invoke_path(name), S.EVENT)
        for _ in range(20 if quick else 100):
            call(conn, raw, name)
        conn.close()
        time.sleep(0.3 if quick else 1.0)
        wait_pools_full(pool, usable, 5)
        root, members = function_sandbox(d, name)
        warm = pss_kib(members)
        now = pool_pss(d)
        lines.append("function %s (python3 hello), %d calls, then idle; its sandbox: init pid "
                     "%d, %d processes (%s): Pss %s" % (
                         name, 20 if quick else 100, root, len(members),
                         ", ".join(label(p) for p in members), S.fmt_kib(warm)))
        lines.append("at the same moment, unclaimed pre-built sandboxes: %s" % (
            sum(len(b) for b in now.values()) or "none"))
        lines.extend(pss_lines(now))
        lines.append("Pss splits shared pages between the processes mapping them: compare "
                     "figures taken at the same moment (these).")
        base = "warm idle worker %s" % S.fmt_kib(warm)
        if not now:
            rep.row("7. idle pre-built sandbox PSS", "n/a (no pre-built sandboxes)", base)
        for lab, boxes in sorted(now.items()):
            mean = sum(b[2] for b in boxes) // len(boxes)
            rep.row("7. idle pre-built %s sandbox PSS (mean of %d)" % (lab, len(boxes)),
                    S.fmt_kib(mean), base if lab.startswith("python") else "-")
        reset(d, api, pool)
    except (BenchError, OSError) as exc:
        rep.fail(title, lines, exc)


def case_cold_warm(d, api, pool, rep, rt, num, n, m):
    """Cold call - warm call of runtime rt's hello; returns the cold Stats."""
    p50_target, p99_target = TARGETS[rt]
    title = "%d. %s hello: cold call - warm call" % (num, rt)
    lines = rep.section(title)
    try:
        reset(d, api, pool)
        names = ["cold-%s-%d" % (rt, i) for i in range(n + 1)]
        for name in names:
            deploy(api, rt, name)
        warm = "warm-" + rt
        deploy(api, rt, warm)
        conn = S.Conn(d.port)
        raw = build_request("POST", invoke_path(warm), S.EVENT)
        for _ in range(WARMUP_CALLS):  # its cold start, then warm caches
            call(conn, raw, warm)
        # The warm samples are taken in batches between the cold ones, so
        # both see the same machine (others' load comes and goes).
        batch = -(-m // n)
        lat, wlat, not_cold, warm_cold, waited, first = [], [], 0, 0, [], None
        before = pool.counters(rt)
        for i, name in enumerate(names):
            waited.append(pool.wait_refilled(rt))
            for _ in range(min(batch, m - len(wlat)) if i else 0):
                t, cold = call(conn, raw, warm)
                wlat.append(t)
                warm_cold += cold
            t, cold = call(conn, build_request("POST", invoke_path(name), S.EVENT), name)
            if i == 0:
                first = (t, cold)
                continue
            lat.append(t)
            not_cold += not cold
        after = pool.counters(rt)
        conn.close()
        reset(d, api, pool)
        cs, ws = S.Stats(lat), S.Stats(wlat)
        lines.append("%d functions deployed (hello: %s); one, %s, called %d times (its cold "
                     "start, warm-up), then each other called" % (
                         n + 2, R.HELLO[rt][2], warm, WARMUP_CALLS))
        lines.append("once, in turn, on one keep-alive connection, and before each cold call %d "
                     "warm calls of %s (%d in all)," % (batch, warm, m))
        lines.append("each batch after a wait until the pool is back to its target (waited p50 "
                     "%s, max %s; %d waits gave up after %.0f s)." % (
                         fmt_ns(sorted(waited)[len(waited) // 2] * 1e9),
                         fmt_ns(max(waited) * 1e9), pool.timeouts, pool.wait_s))
        pool.timeouts = 0
        lines.append("The first call unmeasured: %s%s. %s." % (
            fmt_ns(first[0]), "" if first[1] else " (not cold!)", moved(before, after)))
        lines.append("cold: " + cs.line())
        lines.append("warm: " + ws.line())
        lines.append("X-Hearth-Cold-Start: %d of %d cold samples lacked it; %d of %d warm samples "
                     "had it." % (not_cold, n, warm_cold, m))
        d50, d99 = cs.p50 - ws.p50, cs.p99 - ws.p99
        lines.append("cold - warm: p50 %s, p99 %s (nearest-rank p99 of %d samples%s)" % (
            signed_ns(d50), signed_ns(d99), n, ": the max" if n < 100 else ""))
        rep.row("%d. %s cold - warm, p50" % (num, rt), signed_ns(d50),
                "cold %s, warm %s" % (fmt_ns(cs.p50), fmt_ns(ws.p50)),
                "<= %s" % fmt_ns(p50_target), met(d50 <= p50_target))
        if p99_target:
            rep.row("%d. %s cold - warm, p99" % (num, rt), signed_ns(d99),
                    "cold %s, warm %s" % (fmt_ns(cs.p99), fmt_ns(ws.p99)),
                    "<= %s" % fmt_ns(p99_target), met(d99 <= p99_target))
        rep.row("%d. %s cold header mismatches" % (num, rt),
                "%d/%d, %d/%d" % (not_cold, n, warm_cold, m), "-", "0, 0",
                met(not_cold == 0 and warm_cold == 0))
        if before is not None:
            rep.row("%d. %s pool claims / misses" % (num, rt), "%d / %d" % (
                after[0] - before[0], after[1] - before[1]))
    except (BenchError, OSError) as exc:
        rep.fail(title, lines, exc)


def burst_once(d, name):
    """One burst of BURST calls of `name`: (first written -> last answer,
    [latencies], cold answers)."""
    start, samples = S.drive(d.port, [[build_request("POST", invoke_path(name), S.EVENT)]] * BURST)
    S.check_ok(samples, name)
    first = min(s.sent for s in samples)
    return (max(s.done for s in samples) - first, [s.done - s.sent for s in samples],
            sum(s.cold for s in samples))


def case_burst(d, api, pool, rep, rounds):
    title = "4. %d simultaneous first calls, Python hello, max_concurrency %d" % (BURST, BURST)
    lines = rep.section(title)
    try:
        reset(d, api, pool)
        lines.append("per round a fresh function, the pool refilled first; %d connections opened, "
                     "then one POST written on each, back to back," % BURST)
        lines.append("from one selector thread (sched.py's drive). all = first request written -> "
                     "last answer read.")
        alls, lats = [], []
        for r in range(rounds):
            name = "burst-%d" % r
            deploy(api, "python3", name, max_concurrency=BURST)
            pool.wait_refilled("python3")
            before = pool.counters("python3")
            took, lat, cold = burst_once(d, name)
            after = pool.counters("python3")
            workers = api.wait_settled(name)["idle"]
            alls.append(took)
            lats += lat
            lat = sorted(lat)
            lines.append("round %d: all answered after %s; per call p50 %s, max %s; %d cold, %d "
                         "workers started; %s" % (
                             r + 1, fmt_ns(took), fmt_ns(S.pct(lat, 50)), fmt_ns(lat[-1]), cold,
                             workers, moved(before, after)))
            reset(d, api, pool)
        # The baseline: the same burst with all 32 workers warm and idle
        # (min_instances), so no call waits for a start or a busy worker.
        deploy(api, "python3", "burst-warm", max_concurrency=BURST, min_instances=BURST)
        idle = api.wait_settled("burst-warm")["idle"]
        warm_alls, warm_lats, warm_cold = [], [], 0
        for r in range(rounds):
            api.wait_settled("burst-warm")
            took, lat, cold = burst_once(d, "burst-warm")
            warm_alls.append(took)
            warm_lats += lat
            warm_cold += cold
        reset(d, api, pool)
        lines.append("warm baseline: a function with min_instances %d (%d idle workers), the same "
                     "burst %d times: all answered after %s (median); %d cold" % (
                         BURST, idle, rounds, fmt_ns(S.median(warm_alls)), warm_cold))
        st, ws = S.Stats(lats), S.Stats(warm_lats)
        lines.append("per call, all rounds: " + st.line())
        lines.append("warm bursts, per call: " + ws.line())
        mid = S.median(alls)
        rep.row("4. %d first calls, all answered (median of %d)" % (BURST, rounds),
                "%s (max %s)" % (fmt_ns(mid), fmt_ns(max(alls))),
                "warm burst %s" % fmt_ns(S.median(warm_alls)), "<= 100 ms", met(mid <= 100e6))
        rep.row("4. ... per call p50 / max", "%s / %s" % (fmt_ns(st.p50), fmt_ns(st.max)),
                "warm %s / %s" % (fmt_ns(ws.p50), fmt_ns(ws.max)))
    except (BenchError, OSError) as exc:
        rep.fail(title, lines, exc)


def cold_starts(api, names):
    return sum(api.pool(n)["cold_starts"] for n in names)


# ---------------------------------------------------------------------------
# case 5's baseline: bare worker processes, no daemon, no sandbox

BOOTSTRAP = REPO / "runtimes" / "python3" / "bootstrap.py"
FRAME_HDR = 12  # bootstrap.py's HEADER: magic, type, flags, meta_len, body_len


def build_frame_driver(base):
    """$BUILD/bench_frame_driver (bench/frame_driver.c), built by CMake if
    needed (hearth_harness.build); its path."""
    try:
        return bench_bin("frame_driver")
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        raise BenchError("cannot build bench/frame_driver.c: %s" % e)


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise BenchError("a bare worker closed its socket before READY")
        buf += chunk
    return buf


def bare_processes(base, driver, nprocs, clients, warm_s, seconds):
    """nprocs python3 workers as hearthd runs them (-I -B -c bootstrap.py,
    fd 3 a SOCK_STREAM socketpair end, cwd = the hello's code, HEARTH_HANDLER)
    but as plain children of this process: no sandbox, no daemon. After
    their READY, frame_driver keeps `clients` INVOKEs in flight, round-robin,
    warm_s unmeasured then `seconds` measured. Returns its BARE line as a
    dict (plus rps and per-call CPU in ns); every worker is stopped."""
    import socket  # pylint: disable=import-outside-toplevel
    task = base / "bare-task"
    handler, files, _what = R.HELLO["python3"]
    task.mkdir(exist_ok=True)
    for name, text in files.items():
        (task / name).write_text(text)
    src = BOOTSTRAP.read_text()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HEARTH_HANDLER": handler}
    procs, ends = [], []
    errlog = open(base / "bare-workers.log", "ab")
    try:
        for _ in range(nprocs):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            child_fd = theirs.fileno()

            def to_fd3(fd=child_fd):
                os.dup2(fd, 3)  # inheritable; close_fds keeps 3 (in pass_fds)
                if fd != 3:
                    os.close(fd)

            ends.append(ours)
            try:
                procs.append(subprocess.Popen(
                    [S.PY, "-I", "-B", "-c", src], cwd=str(task), env=env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog,
                    pass_fds=(3, child_fd) if child_fd != 3 else (3,), preexec_fn=to_fd3))
            finally:
                theirs.close()
        for sock in ends:  # READY from each, as the daemon waits for it
            sock.settimeout(30)
            head = _read_exact(sock, FRAME_HDR)
            if head[0] != 0x48 or head[1] != 1:
                raise BenchError("a bare worker's first frame is not READY: %s" % head.hex())
            _read_exact(sock, int.from_bytes(head[4:8], "big") + int.from_bytes(head[8:12], "big"))
            sock.setblocking(True)
        argv = [str(driver), str(int(warm_s * 1000)), str(int(seconds * 1000)), str(clients)]
        argv += ["%d:%d" % (sock.fileno(), p.pid) for sock, p in zip(ends, procs)]
        res = subprocess.run(argv, pass_fds=[sock.fileno() for sock in ends],
                             capture_output=True, text=True, timeout=warm_s + seconds + 60)
        for line in res.stdout.splitlines():
            if line.startswith("BARE "):
                f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
                calls = max(f["requests"], 1)
                f["rps"] = f["requests"] * 1e6 / f["duration_us"]
                f["worker_ns"] = f["workers_cpu_ticks"] * 1e9 / f["ticks_per_s"] / calls
                f["driver_ns"] = f["driver_cpu_us"] * 1e3 / calls
                return f
        raise BenchError("frame_driver failed (exit %d): %s" % (res.returncode,
                                                                (res.stderr or res.stdout)[-500:]))
    finally:
        for sock in ends:  # EOF on fd 3: each worker exits 0
            sock.close()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        errlog.close()


def case_many_bare(base, nfns, clients, seconds, quick):
    """The bare baseline at `clients` and at `nfns` processes: (few, many,
    lines)."""
    driver = build_frame_driver(base)
    warm_s = 0.3 if quick else 1.0
    few = bare_processes(base, driver, clients, clients, warm_s, seconds)
    many = bare_processes(base, driver, nfns, clients, warm_s, seconds)
    lines = ["bare processes (no daemon, no sandbox, no HTTP): %d, then %d python3 -I -B -c "
             "runtimes/python3/bootstrap.py with the same hello, children of this process, fd 3 "
             "a socketpair;" % (clients, nfns),
             "bench/frame_driver.c (CMake, -O2) keeps %d INVOKE frames (the daemon's metadata) in "
             "flight, slot k on processes k, k+%d, ... in turn, %.1f s unmeasured then %d s:" % (
                 clients, clients, warm_s, seconds)]
    for n, f in ((clients, few), (nfns, many)):
        lines.append("  %d processes: %.0f req/s; CPU per call: workers %s, driver %s" % (
            n, f["rps"], fmt_ns(f["worker_ns"]), fmt_ns(f["driver_ns"])))
    return few, many, lines


def case_many(d, api, pool, rep, base, nfns, clients, seconds, use_wrk, quick):
    title = "5. %d warm Python functions round-robin vs one" % nfns
    lines = rep.section(title)
    try:
        reset(d, api, pool)
        names = ["many-%d" % i for i in range(nfns)]
        for n in names:
            deploy(api, "python3", n, max_concurrency=1, memory_mb=64)
        # min_instances: exactly `clients` workers, started ahead, as sched.py
        deploy(api, "python3", "one", max_concurrency=clients, min_instances=clients,
               memory_mb=64)
        conn = S.Conn(d.port)
        for n in names:  # one worker each
            call(conn, build_request("POST", invoke_path(n), S.EVENT), n)
        conn.close()
        idle = api.wait_settled("one")["idle"]
        if idle != clients:
            raise BenchError("one has %d idle workers after the warm-up, not %d" % (idle, clients))
        if not quick:
            S.closed_loop(d, ["one"], clients, 1)  # unmeasured
            S.closed_loop(d, names, clients, 1)
        cold0 = cold_starts(api, names + ["one"])
        if use_wrk:
            script = base / "roundrobin.lua"
            script.write_text(S.WRK_RR)
            url = "http://127.0.0.1:%d/" % d.port
            one = S.run_wrk(d, url, script, clients, clients, seconds, (1, clients, "one"))
            many = S.run_wrk(d, url, script, clients, clients, seconds, (nfns, clients, "many-"))
            rps1, rpsn = one["rps"], many["rps"]
            tool = "wrk -t%d -c%d -d%ds, sched.py's round-robin Lua script" % (
                clients, clients, seconds)
            for lab, f in (("1 function", one), ("%d functions" % nfns, many)):
                lines.append("%s: %.0f req/s, p50 %s, p99 %s; %s" % (
                    lab, f["rps"], fmt_ns(f["p50_us"] * 1000), fmt_ns(f["p99_us"] * 1000),
                    f["cpu"]))
        else:
            one = S.closed_loop(d, ["one"], clients, seconds)
            many = S.closed_loop(d, names, clients, seconds)
            rps1, rpsn = one.rps, many.rps
            tool = "this client's closed loop, %d connections, %d s (wrk %s)" % (
                clients, seconds, "off" if shutil.which("wrk") else "not installed")
            for lab, r in (("1 function", one), ("%d functions" % nfns, many)):
                lines.append("%s: %.0f req/s; %s%s" % (lab, r.rps, r.stats.line(),
                                                        ", " + r.errors if r.errors else ""))
            if one.errors or many.errors:
                raise BenchError("errors: %s / %s" % (one.errors, many.errors))
        cold = cold_starts(api, names + ["one"]) - cold0
        lines.insert(0, "setup: --max-workers %d; %d functions many-0.. (hello, max_concurrency 1, "
                     "memory_mb 64), each warmed by one call; one (max_concurrency %d, "
                     "min_instances %d) with %d idle workers;" % (
                         d.max_workers, nfns, clients, clients, idle))
        lines.insert(1, "%s; connection k calls many-k, many-k+%d, ... in turn. %d cold starts "
                     "during the measured runs." % (tool, clients, cold))
        ratio = rpsn / rps1
        lines.append("ratio %d functions / 1 function: %.2f" % (nfns, ratio))
        if cold:
            raise BenchError("%d cold starts during the measured runs" % cold)
        reset(d, api, pool)  # the daemon's workers gone before the bare baseline
        # The same-run baseline: what serving from nfns processes instead of
        # `clients` costs the machine itself (caches, TLB, scheduling),
        # without hearthd: bare workers driven over their fd 3.
        try:
            few, many_bare, bare_lines = case_many_bare(base, nfns, clients, seconds, quick)
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            lines.append("bare processes baseline FAILED: %s" % exc)
            few = many_bare = None
        if few:
            lines.extend(bare_lines)
            bare = many_bare["rps"] / few["rps"]
            own = ratio / bare
            lines.append("ratio bare %d / %d processes: %.2f; the daemon's ratio %.2f; the "
                         "daemon's own loss (daemon ratio / bare ratio): %.2f" % (
                             nfns, clients, bare, ratio, own))
            # The same in time: 1/throughput per call, at 1 and at nfns.
            grow_d = 1e9 / rpsn - 1e9 / rps1
            grow_b = 1e9 / many_bare["rps"] - 1e9 / few["rps"]
            lines.append("machine time per call (1 / req/s): daemon %s -> %s (%s), bare %s -> %s "
                         "(%s): the daemon adds %s per call beyond the bare processes' growth" % (
                             fmt_ns(1e9 / rps1), fmt_ns(1e9 / rpsn), signed_ns(grow_d),
                             fmt_ns(1e9 / few["rps"]), fmt_ns(1e9 / many_bare["rps"]),
                             signed_ns(grow_b), signed_ns(grow_d - grow_b)))
        rep.row("5. req/s, %d fns round-robin (%s)" % (nfns, "wrk" if use_wrk else "python"),
                "%.0f (ratio %.2f)" % (rpsn, ratio),
                "1 fn %.0f; bare procs ratio %s" % (rps1, "%.2f" % bare if few else "n/a"),
                "ratio >= 0.80", met(ratio >= 0.8))
        if few:
            rep.row("5. ... bare %d / %d procs, req/s" % (nfns, clients),
                    "%.0f / %.0f (ratio %.2f)" % (many_bare["rps"], few["rps"], bare),
                    "worker CPU/call %s / %s" % (fmt_ns(many_bare["worker_ns"]),
                                                 fmt_ns(few["worker_ns"])))
            rep.row("5. ... daemon's own loss (%.2f / %.2f)" % (ratio, bare), "%.2f" % own,
                    "daemon ratio / bare ratio; per call %s vs bare %s" % (
                        signed_ns(grow_d), signed_ns(grow_b)))
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        rep.fail(title, lines, exc)


def case_deploy_call(d, api, pool, rep, n):
    title = "6. A new deploy followed at once by its first call (Python hello)"
    lines = rep.section(title)
    try:
        reset(d, api, pool)
        plain = ["plain-%d" % i for i in range(n)]
        for name in plain:
            deploy(api, "python3", name)
        conn = S.Conn(d.port)
        after_deploy, deploys, colds, not_cold = [], [], [], 0
        before = pool.counters("python3")
        # A deploy-then-call sample and a plain cold call in turn, so both
        # see the same machine.
        for i in range(n):
            name = "fresh-%d" % i
            put = build_request("PUT", "/v1/functions/" + name,
                                json.dumps(deploy_body("python3")).encode())
            pool.wait_refilled("python3")
            t, was_cold = call(conn, build_request("POST", invoke_path(plain[i]), S.EVENT),
                               plain[i])
            colds.append(t)
            not_cold += not was_cold
            pool.wait_refilled("python3")
            t0 = time.perf_counter_ns()
            status, _head, body = conn.roundtrip(put)
            t1 = time.perf_counter_ns()
            if status not in (200, 201):
                raise BenchError("deploy of %s answered %d: %s" % (name, status, body[:200]))
            t, was_cold = call(conn, build_request("POST", invoke_path(name), S.EVENT), name)
            deploys.append(t1 - t0)
            after_deploy.append(t)
            not_cold += not was_cold
        after = pool.counters("python3")
        conn.close()
        reset(d, api, pool)
        st, ds, cs = S.Stats(after_deploy), S.Stats(deploys), S.Stats(colds)
        lines.append("%d times, on one keep-alive connection, each step after the pool refilled: "
                     "a cold call of an already deployed" % n)
        lines.append("function (the baseline), then PUT a new function and at once POST its "
                     "first call.")
        lines.append("deploy request: " + ds.line())
        lines.append("deploy -> first answer, minus the deploy: " + st.line())
        lines.append("cold call of a deployed function:         " + cs.line())
        lines.append("%d of %d first calls lacked X-Hearth-Cold-Start. %s." % (
            not_cold, 2 * n, moved(before, after)))
        ratio = st.p50 / cs.p50
        lines.append("p50 ratio %.2f; met when <= 1.10 (noise between two sets of samples)." % (
            ratio))
        rep.row("6. deploy -> 1st answer - deploy, p50", "%s (%.2f x)" % (fmt_ns(st.p50), ratio),
                "cold call %s" % fmt_ns(cs.p50), "<= cold p50 (+10%)", met(ratio <= 1.10))
    except (BenchError, OSError) as exc:
        rep.fail(title, lines, exc)


# ---------------------------------------------------------------------------


def loadavg():
    return R.loadavg()


def run(rep, hearthd, base, daemons):
    quick = S.env_int("COLD_QUICK", 0, 0, 1) == 1
    cold_n = S.env_int("COLD_N", 4 if quick else 100)
    other_n = S.env_int("COLD_OTHER_N", 3 if quick else 30)
    warm_n = S.env_int("COLD_WARM_N", 100 if quick else 1000)
    rounds = S.env_int("COLD_BURST_ROUNDS", 1 if quick else 3)
    nfns = S.env_int("COLD_MANY_FNS", 20 if quick else 100, 2)
    clients = S.env_int("COLD_CLIENTS", 8, 1, 1000)
    seconds = S.env_int("COLD_DURATION", 1 if quick else 5, 1, 3600)
    deploy_n = S.env_int("COLD_DEPLOY_N", 3 if quick else 30)
    wait_s = S.env_int("COLD_POOL_WAIT", 5, 1, 600)
    use_wrk = S.env_int("COLD_WRK", 1, 0, 1) == 1 and shutil.which("wrk") is not None
    only = os.environ.get("COLD_ONLY", "").replace(",", " ").split()
    if any(x not in "01234567" or len(x) != 1 for x in only):
        raise SetupError("COLD_ONLY=%s: case numbers 0-7, comma-separated" % ",".join(only))

    def want(case):
        return not only or str(case) in only

    # Room for case 5 (nfns + clients workers), the pools (--prebuilt-max 8
    # by default, three runtimes) and a margin; the memory budget never the
    # limit before --max-workers (it is accounting, not what they use).
    max_workers = max(64, nfns + clients, cold_n + 2, other_n + 2) + 3 * 8 + 16
    extra = ["--memory-budget", "%dM" % (max_workers * 128)]
    extra += os.environ.get("COLD_DAEMON_ARGS", "").split()  # e.g. --prebuilt-max 0: no pool
    version = subprocess.run([hearthd, "--version"], capture_output=True, text=True).stdout
    d = Daemon(hearthd, base, "cold", max_workers, extra)
    daemons.append(d)
    started = d.start()
    api = S.Api(d.port)
    pool = Pool(d.port, wait_s)
    listed = {r["name"]: r for r in api.call("GET", "/v1/runtimes")["runtimes"]}
    usable = [rt for rt in ("python3", "c", "node") if listed.get(rt, {}).get("usable")]
    rep.head += [
        "Hearth cold-start benchmark (issue 12, pre-built sandboxes), %s%s" % (
            time.strftime("%Y-%m-%d %H:%M:%S %Z"), " (quick mode)" if quick else ""),
        "machine: %d CPUs, %s %s, %s; client: %s %s (raw sockets); load average %s at the "
        "start" % (os.cpu_count(), platform.system(), platform.release(), S._meminfo(), S.PY,
                   platform.python_version(), loadavg()),
        "daemon: %s (%s), as root, /healthz after %.2f s: hearthd %s" % (
            version.strip() or "?", os.path.realpath(hearthd), started, " ".join(d.cmd[1:])),
        "pre-built pool: %s" % ("; ".join("%s %s" % (rt, pool.state(rt)) for rt in usable)),
        "runtimes: " + ", ".join("%s %s%s" % (k, v.get("version", "?"), "" if v.get("usable")
                                              else " (not usable)") for k, v in listed.items()),
        "wrk: %s" % ("yes" if use_wrk else "not used"),
    ]
    if only:
        rep.head.append("only cases %s (COLD_ONLY)" % ", ".join(only))
    if want(0):
        log("0/7 machine baseline")
        case_machine(d, rep, warm_n, quick)
    if want(7):
        log("7/7 idle sandbox PSS")
        case_pss(d, api, pool, rep, usable, quick)
    if want(1):
        log("1/7 python3 cold (%d) and warm (%d)" % (cold_n, warm_n))
        case_cold_warm(d, api, pool, rep, "python3", 1, cold_n, warm_n)
    if not want(2):
        pass
    elif "c" in usable:
        log("2/7 c cold (%d) and warm (%d)" % (other_n, warm_n))
        case_cold_warm(d, api, pool, rep, "c", 2, other_n, warm_n)
    else:
        rep.row("2. c cold - warm, p50", "skipped: c not usable")
    if not want(3):
        pass
    elif os.path.exists("/usr/bin/node") and "node" in usable:
        log("3/7 node cold (%d) and warm (%d)" % (other_n, warm_n))
        case_cold_warm(d, api, pool, rep, "node", 3, other_n, warm_n)
    else:
        rep.row("3. node cold - warm, p50", "skipped: no node" if not os.path.exists(
            "/usr/bin/node") else "skipped: node not usable")
    if want(4):
        log("4/7 bursts of %d (%d rounds)" % (BURST, rounds))
        case_burst(d, api, pool, rep, rounds)
    if want(6):
        log("6/7 deploy then call (%d)" % deploy_n)
        case_deploy_call(d, api, pool, rep, deploy_n)
    if want(5):
        log("5/7 %d functions vs 1 (%d s runs%s), then bare processes %d and %d" % (
            nfns, seconds, ", wrk" if use_wrk else "", clients, nfns))
        case_many(d, api, pool, rep, base, nfns, clients, seconds, use_wrk, quick)
    rep.head.append("load average at the end %s" % loadavg())
    pool.close()
    api.close()
    rc = d.stop()
    if rc not in (0, None):
        log("hearthd exited with %s after SIGTERM:\n%s" % (rc, d.log_tail()))
        return 1
    return 1 if rep.failed else 0


def _terminated(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    # SIGINT too: a shell that starts us in the background ignores it.
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    t_begin = time.monotonic()
    rep = Report()
    base = None
    daemons = []
    keep = False
    try:
        if os.geteuid() != 0:
            raise SetupError("needs root (the worker sandbox does); try bench/cold.sh")
        hearthd = os.environ.get("HEARTHD") or str(REPO / "build" / "hearthd")
        if not os.access(hearthd, os.X_OK):
            raise SetupError("no hearthd at %s (set HEARTHD or run bench/cold.sh)" % hearthd)
        keep = S.env_int("COLD_KEEP", 0, 0, 1) == 1
        base = Path(tempfile.mkdtemp(prefix="hearth-cold."))
        status = run(rep, hearthd, base, daemons)
    except SetupError as exc:
        log("set-up failed: %s" % exc)
        status = 2
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Exception as exc:  # a bug here or an unexpected daemon answer: still clean up
        log("failed: %r" % exc)
        status = 1
    finally:
        for d in daemons:
            try:
                rc = d.stop()
                if rc not in (None, 0):
                    log("hearthd exited with %s:\n%s" % (rc, d.log_tail()))
            except Exception as exc:
                log("stopping hearthd: %r" % exc)
        if base is not None:
            if keep:
                log("kept %s" % base)
            else:
                shutil.rmtree(base, ignore_errors=True)
    if rep.rows:
        rep.head.append("run took %.0f s; exit %d" % (time.monotonic() - t_begin, status))
        sys.stdout.write(rep.text())
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
