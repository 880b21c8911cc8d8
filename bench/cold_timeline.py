#!/usr/bin/python3
"""bench/cold_timeline.py — where the time of a cold call goes, with
pre-built sandboxes (issue 12), step by step, from syscall traces.

As root, on 127.0.0.1 only: starts ONE hearthd (--no-auth, a free port, a
temp data dir), deploys TL_N + TL_PLAIN python3 hello functions (cold.py's
PY_MARKED hello), and calls each once, cold, after waiting until the
python3 pool is full again (hearth_prebuilt_ready >= hearth_prebuilt_target
in GET /metrics). TL_N of those calls are traced, TL_PLAIN are not; the two
kinds alternate.

A traced call: the processes involved are found first — hearthd, its
spawner (the child with comm hearth-spawner), every ready (unclaimed)
pre-built python3 runtime (HEARTH_PREBUILT=1 in /proc/PID/environ,
HEARTH_RUNTIME = "python3" in its cmdline, empty /var/task) and the
parent of each (the sandbox's init). Only one sandbox is claimed (the
oldest ready one), so all of them are traced and the one that shows the
ATTACH is used. `perf trace -T --no-inherit -p PIDS` (plus the
syscalls:sys_exit_readv tracepoint: a readv that was blocked when the
trace started has no timestamp of its own in perf trace's output) runs
from just before the request until just after its answer; without a usable
perf, `strace -f -ttt -T -p PIDS` instead (TL_TRACER=strace forces it).
From the trace come the times of the steps below, in ms from the request's
arrival (the end of hearthd's recvfrom that returns the request), each
with the time since the step before: median and range over the calls.
Beside them the same calls' time as the client saw it (request written ->
whole answer read, one keep-alive connection opened before the trace), and
the client time of the untraced calls: what tracing itself adds. Then the
slow syscalls (over TL_SLOW_MS, not counting the ones that wait) of the
traced processes during the calls.

Run:      bench/cold_timeline.sh          (builds build/hearthd if missing; root)
Takes:    about 15 s with the defaults.
Exit:     0 when at least one traced call could be read, 1 when none could
          (or a call failed), 2 on a set-up failure, 130 when interrupted.
          perf/strace, hearthd and the temp dir are stopped / removed in
          every case.

Environment (defaults in brackets):
  HEARTHD       the daemon [<repo>/build/hearthd]
  TL_N          traced cold calls [8]
  TL_PLAIN      untraced cold calls, for the tracing overhead [4]
  TL_TRACER     perf or strace [perf, strace if perf trace cannot attach]
  TL_ATTACH_S   seconds given the tracer to attach before the request [0.5]
  TL_SLOW_MS    a syscall slower than this is listed [0.5]
  TL_KEEP       1: keep the temp dir (traces, daemon log) [0]
  TL_VERBOSE    1: print each call's own timeline too [0]
"""

import os
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
import cold as C  # noqa: E402  (bench/cold.py: its daemon, pool and calls)
from hearth_harness.proc import comm  # noqa: E402
S = C.S
BenchError, SetupError = S.BenchError, S.SetupError

RUNTIME = "python3"
ATTACH_SIZE = 336  # sizeof(struct attach_msg), src/sandbox.c
WAITS = {"poll", "ppoll", "epoll_wait", "epoll_pwait", "wait4", "waitid", "readv", "select",
         "pselect6", "clock_nanosleep", "nanosleep", "futex", "restart_syscall"}


def log(msg):
    print("cold_timeline: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# the processes of a cold call


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def tids(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return [pid]


def involved(d):
    """{pid: role}: hearthd, its spawner, the ready pre-built python3
    runtimes and their inits."""
    desc = S.descendants(d.pid)
    roles = {d.pid: "hearthd"}
    for p, (pp, _start) in desc.items():
        if pp == d.pid and comm(p) == "hearth-spawner":
            roles[p] = "spawner"
    if "spawner" not in roles.values():
        raise BenchError("no hearth-spawner child of hearthd %d" % d.pid)
    marker = ('HEARTH_RUNTIME = "%s"' % RUNTIME).encode()
    for p, (pp, _start) in desc.items():
        if (S.environ_entry(p, "HEARTH_PREBUILT=1") == "HEARTH_PREBUILT=1"
                and marker in cmdline(p) and C.var_task(p) == []):
            roles[p] = "runtime"
            roles[pp] = "init"
    if "runtime" not in roles.values():
        raise BenchError("no ready pre-built %s runtime" % RUNTIME)
    return roles


# ---------------------------------------------------------------------------
# tracers: both give events {tid, name, start, end (ms), fd, ret}

PERF_LINE = re.compile(r"^\s*(\?|[\d.]+) \(\s*([\d.]+)? ?(?:ms)?\s*\): (\S+?)/(\d+) (.*)$")
FD_ARG = re.compile(r"\bfd: (\d+)")
RET = re.compile(r"\) += (-?\d+)")
SCRIPT_EXIT = re.compile(r"^\s*(\d+)\s+([\d.]+):\s+syscalls:sys_exit_(\w+):\s+(0x[0-9a-f]+)")
EXIT_TP = re.compile(r"^syscalls:sys_exit_(\w+)\(.*\bret: (-?\d+)\)")


def signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_perf(text):
    out, pending = [], {}  # pending: tid -> the fd of its unfinished syscall
    for line in text.splitlines():
        m = PERF_LINE.match(line)
        if not m:
            continue
        ts, dur, _comm, tid, rest = m.groups()
        tp = EXIT_TP.match(rest)
        if tp:  # a tracepoint: the syscall's exit, always timestamped
            if ts != "?":
                out.append(dict(tid=int(tid), name=tp.group(1), start=None, end=float(ts),
                                fd=None, ret=int(tp.group(2)), dur=None))
            continue
        rest = rest.lstrip()
        cont = rest.startswith("... [continued]: ")
        body = rest[len("... [continued]: "):] if cont else rest
        name = body.split("(", 1)[0].strip()
        fd = FD_ARG.search(body)
        fd = int(fd.group(1)) if fd else None
        if rest.rstrip().endswith("..."):  # unfinished: its continuation follows
            pending[int(tid)] = (name, fd)
            continue
        if cont:  # the continuation does not repeat the arguments
            was = pending.pop(int(tid), (None, None))
            fd = was[1] if was[0] == name else None
        if ts == "?" or dur is None or name == "readv":
            continue  # no time known; readv comes from its exit tracepoint
        r = RET.search(body)
        start, dur = float(ts), float(dur)
        out.append(dict(tid=int(tid), name=name, start=start, end=start + dur, dur=dur,
                        fd=fd, ret=int(r.group(1)) if r else None))
    return out


ST_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+([\d.]+) (.*)$")
ST_DUR = re.compile(r"<([\d.]+)>\s*$")
ST_RET = re.compile(r"\) += (-?\d+)")


def parse_strace(text):
    out, pending = [], {}
    for line in text.splitlines():
        m = ST_LINE.match(line)
        if not m:
            continue
        tid, ts, rest = int(m.group(1)), float(m.group(2)) * 1e3, m.group(3)
        if rest.endswith("<unfinished ...>"):
            pending[tid] = (rest.split("(", 1)[0], ts, rest)
            continue
        dm, rm = ST_DUR.search(rest), ST_RET.search(rest)
        if rest.startswith("<... "):
            name = rest[5:].split(" ", 1)[0]
            first = pending.pop(tid, (name, None, ""))
            start = first[1]
            args = first[2]
            end = ts
        else:
            name, args = rest.split("(", 1)[0], rest
            dur = float(dm.group(1)) * 1e3 if dm else 0.0
            start, end = ts, ts + dur
        fd = re.match(r"\w+\((\d+)", args)
        out.append(dict(tid=tid, name=name, start=start, end=end,
                        dur=(end - start) if start is not None else None,
                        fd=int(fd.group(1)) if fd else None,
                        ret=int(rm.group(1)) if rm else None))
    return out


class Tracer:
    def __init__(self, kind, base):
        self.kind, self.base, self.proc, self.path = kind, base, None, None

    def start(self, pids, n):
        self.path = self.base / ("trace-%d.%s" % (n, self.kind))
        plist = ",".join(str(p) for p in sorted(pids))
        if self.kind == "perf":
            # Recorded, decoded after the call: far less work during it
            # than perf trace's live formatting.
            cmd = ["perf", "trace", "record", "-q", "-o", str(self.path), "--no-inherit", "-p",
                   plist, "-e", "syscalls:sys_exit_readv"]
        else:
            cmd = ["strace", "-f", "-ttt", "-T", "-qq", "-o", str(self.path)]
            for p in sorted(pids):
                cmd += ["-p", str(p)]
        self.err = open(str(self.path) + ".err", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=self.err, start_new_session=True)

    def stop(self):
        """Stops the tracer (SIGINT, then KILL); returns its events."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.err.close()
        if self.kind == "perf":
            return self.decode_perf()
        try:
            text = self.path.read_text(errors="replace")
        except OSError:
            text = ""
        return parse_strace(text)

    def decode_perf(self):
        """perf trace -i for the syscalls; perf script for the readv exit
        tracepoint, which perf trace -i does not print."""
        if not self.path.exists():
            return []
        text = Path(str(self.path) + ".txt")
        subprocess.run(["perf", "trace", "-T", "-i", str(self.path), "-o", str(text)],
                       capture_output=True)
        try:
            syscalls = text.read_text(errors="replace")
        except OSError:
            syscalls = ""
        script = subprocess.run(["perf", "script", "-i", str(self.path), "-F", "tid,time,event,trace"],
                                capture_output=True, text=True, errors="replace").stdout
        events = parse_perf(syscalls)
        for line in script.splitlines():
            m = SCRIPT_EXIT.match(line)
            if m:
                events.append(dict(tid=int(m.group(1)), name=m.group(3), start=None,
                                   end=float(m.group(2)) * 1e3, fd=None, ret=signed64(int(m.group(4), 16)),
                                   dur=None))
        return events

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def errors(self):
        try:
            return Path(str(self.path) + ".err").read_text(errors="replace")[-400:]
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# one call's timeline from its events

STEPS = [
    # key, who, what
    ("req", "hearthd", "request read (recvfrom) = 0"),
    ("claim_tx", "hearthd", "CLAIM sent to the spawner (sendmsg)"),
    ("claim_rx", "spawner", "CLAIM received (recvmsg)"),
    ("attach_tx", "spawner", "ATTACH sent to the init (sendmsg 336)"),
    ("cg", "spawner", "cgroup limits written (its last write)"),
    ("attach_rx", "init", "ATTACH received (recvmsg 336)"),
    ("mounted", "init", "code on /var/task (move_mount done)"),
    ("hostname", "init", "/etc/hosts, ro again, sethostname done"),
    ("dropped", "init", "privileges dropped (setresuid done)"),
    ("answer", "init", "answer written (write 4)"),
    ("ans_rx", "spawner", "answer read (recvfrom 4)"),
    ("reply_tx", "spawner", "reply sent to hearthd (sendmsg)"),
    ("reply_rx", "hearthd", "reply received (recvmsg)"),
    ("spec_tx", "hearthd", "SPECIALIZE written (writev)"),
    ("spec_rx", "runtime", "SPECIALIZE read (readv)"),
    ("ready_tx", "runtime", "READY written (writev): env, chdir, import"),
    ("ready_rx", "hearthd", "READY read (read)"),
    ("invoke_tx", "hearthd", "INVOKE written (writev)"),
    ("invoke_rx", "runtime", "INVOKE read (readv)"),
    ("result_tx", "runtime", "RESULT written (writev)"),
    ("result_rx", "hearthd", "RESULT read (read)"),
    ("http_tx", "hearthd", "HTTP answer written"),
]
OPTIONAL = {"cg"}


def first(events, after, **want):
    """The first event ending after `after` that matches every
    key=value (a value may be a callable test)."""
    for e in events:
        if e["end"] is None or e["end"] < after:
            continue
        if all((v(e[k]) if callable(v) else e[k] == v) for k, v in want.items()):
            return e
    return None


def timeline(events, tid_role, req_len):
    """{step key: end time in ms}, the claimed sandbox's init and runtime
    tids, and the window; raises BenchError when a step is missing."""
    for e in events:
        e["role"] = tid_role.get(e["tid"], "other")
    events = sorted((e for e in events if e["end"] is not None), key=lambda e: e["end"])
    t = {}

    def need(key, e):
        if e is None:
            raise BenchError("trace: no '%s' (%s)" % (
                dict((k, w) for k, _who, w in STEPS)[key], key))
        t[key] = e["end"]
        return e

    hd = lambda **kw: dict(role="hearthd", **kw)  # noqa: E731
    sp = lambda **kw: dict(role="spawner", **kw)  # noqa: E731
    req = need("req", first(events, 0, **hd(name=lambda n: n in ("recvfrom", "read", "recvmsg"),
                                           ret=req_len)))
    conn_fd = req["fd"]
    claim = need("claim_tx", first(events, t["req"], **hd(name="sendmsg",
                                                          fd=lambda f: f != conn_fd)))
    spawner_fd = claim["fd"]
    crx = need("claim_rx", first(events, t["claim_tx"], **sp(name="recvmsg", ret=claim["ret"])))
    att = need("attach_tx", first(events, t["claim_rx"], **sp(name="sendmsg", ret=ATTACH_SIZE)))
    arx = need("attach_rx", first(events, t["attach_tx"], role="init", name="recvmsg",
                                  ret=ATTACH_SIZE))
    init_tid = arx["tid"]
    need("mounted", first(events, t["attach_rx"], tid=init_tid, name="move_mount"))
    need("hostname", first(events, t["mounted"], tid=init_tid, name="sethostname"))
    need("dropped", first(events, t["hostname"], tid=init_tid, name="setresuid"))
    need("answer", first(events, t["dropped"], tid=init_tid, name="write", ret=4))
    need("ans_rx", first(events, t["answer"], **sp(name="recvfrom", fd=att["fd"], ret=4)))
    cg = [e for e in events if e["role"] == "spawner" and e["name"] == "write"
          and t["attach_tx"] <= e["end"] <= t["ans_rx"]]
    if cg:
        t["cg"] = cg[-1]["end"]
    need("reply_tx", first(events, t["ans_rx"], **sp(name="sendmsg", fd=crx["fd"])))
    need("reply_rx", first(events, t["reply_tx"], **hd(name="recvmsg", fd=spawner_fd,
                                                       ret=lambda r: r is not None and r > 0)))
    spec = need("spec_tx", first(events, t["reply_rx"], **hd(name="writev")))
    rt_fd = spec["fd"]
    # The runtime of the claimed sandbox: a runtime tid whose readv ends
    # after SPECIALIZE was written; the frame may take two readv.
    got, rx = 0, None
    for e in events:
        if e["end"] >= t["spec_tx"] and e["role"] == "runtime" and e["name"] == "readv" and (
                rx is None or e["tid"] == rx["tid"]) and (e["ret"] or 0) > 0:
            rx, got = e, got + e["ret"]
            if got >= spec["ret"]:
                break
    need("spec_rx", rx if got >= (spec["ret"] or 1) else None)
    rt_tid = rx["tid"]
    need("ready_tx", first(events, t["spec_rx"], tid=rt_tid, name="writev"))
    need("ready_rx", first(events, t["ready_tx"], **hd(name="read", fd=rt_fd)))
    inv = need("invoke_tx", first(events, t["ready_rx"], **hd(name="writev", fd=rt_fd)))
    got, rx = 0, None
    for e in events:
        if e["end"] >= t["invoke_tx"] and e["tid"] == rt_tid and e["name"] == "readv" and (
                e["ret"] or 0) > 0:
            rx, got = e, got + e["ret"]
            if got >= inv["ret"]:
                break
    need("invoke_rx", rx if got >= (inv["ret"] or 1) else None)
    need("result_tx", first(events, t["invoke_rx"], tid=rt_tid, name="writev"))
    need("result_rx", first(events, t["result_tx"], **hd(name="read", fd=rt_fd)))
    need("http_tx", first(events, t["result_rx"], **hd(
        name=lambda n: n in ("sendmsg", "sendto", "write", "writev"), fd=conn_fd,
        ret=lambda r: r is not None and r > 0)))
    # The call's window: hearthd's wake-up for the request (its last
    # epoll_wait return before the read) is reported too.
    wake = [e for e in events if e["role"] == "hearthd" and e["name"].startswith("epoll")
            and e["end"] <= t["req"]]
    t0 = t["req"]
    rel = {k: v - t0 for k, v in t.items()}
    rel["wake"] = (wake[-1]["end"] - t0) if wake else None
    window = (t0, t["http_tx"])
    slow = [(e["role"], e["name"], e["dur"]) for e in events
            if e["dur"] is not None and e["name"] not in WAITS and e["role"] != "other"
            and e["start"] is not None and e["start"] >= t0 and e["end"] <= window[1]
            and e["tid"] in {init_tid, rt_tid} | {p for p, r in tid_role.items()
                                                  if r in ("hearthd", "spawner")}]
    return rel, slow, (init_tid, rt_tid)


# ---------------------------------------------------------------------------
# statistics and the report


def med(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def span(v):
    if not v:
        return "-"
    return "%7.2f  (%.2f .. %.2f)" % (med(v), min(v), max(v))


def report(tls, client_traced, client_plain, slows, tracer, n_fail, slow_ms, head):
    lines = list(head)
    lines.append("")
    lines.append("Cold call timeline, %d traced calls (%s), ms from the request's arrival "
                 "(hearthd's recvfrom of it); median (min-max)" % (len(tls), tracer))
    if n_fail:
        lines.append("(%d traced calls could not be read and are left out)" % n_fail)
    lines.append("")
    w = max(len(w) for _k, _who, w in STEPS) + 2
    lines.append("%-3s %-8s %-*s %-24s %s" % ("#", "who", w, "step", "at", "since the step before"))
    prev = None
    wake = [tl["wake"] for tl in tls if tl.get("wake") is not None]
    if wake:
        lines.append("%-3s %-8s %-*s %-24s" % ("", "hearthd", w, "(epoll wake-up for the request)",
                                               span(wake)))
    for i, (key, who, what) in enumerate(STEPS):
        at = [tl[key] for tl in tls if key in tl]
        if not at:
            continue
        if key in OPTIONAL:
            since = [tl[key] - tl["attach_tx"] for tl in tls if key in tl]
            note = span(since) + "  (after ATTACH sent; beside the init)"
        elif prev is None:
            note = ""
        else:
            note = span([tl[key] - tl[prev] for tl in tls if key in tl and prev in tl])
        lines.append("%-3d %-8s %-*s %-24s %s" % (i, who, w, what, span(at), note))
        if key not in OPTIONAL:
            prev = key
    lines.append("")
    phases = [("HTTP -> claim reply (CLAIM + ATTACH)", "req", "reply_rx"),
              ("  of which the init's ATTACH", "attach_rx", "answer"),
              ("claim reply -> READY read (specialise + import)", "reply_rx", "ready_rx"),
              ("READY -> RESULT read (first call)", "ready_rx", "result_rx"),
              ("RESULT -> HTTP answer written", "result_rx", "http_tx"),
              ("total in hearthd (request read -> answer written)", "req", "http_tx")]
    lines.append("phases                                             median (min-max)")
    for what, a, b in phases:
        lines.append("  %-49s %s" % (what, span([tl[b] - tl[a] for tl in tls])))
    lines.append("")
    lines.append("client (request written -> answer read), same calls, traced:   %s" % span(
        client_traced))
    lines.append("client, untraced cold calls in the same run (%d):               %s" % (
        len(client_plain), span(client_plain)))
    if client_traced and client_plain:
        lines.append("tracing adds about %.2f ms per cold call (median traced - median untraced, "
                     "%.2fx)" % (med(client_traced) - med(client_plain),
                                 med(client_traced) / med(client_plain)))
    lines.append("client - hearthd's total, traced calls: %s (loopback, client, "
                 "hearthd before its read)" % span([c - tl["http_tx"] for c, tl in
                                                    zip(client_traced, tls)]))
    lines.append("")
    lines.append("syscalls over %.2g ms inside the calls (waits left out): who syscall  "
                 "calls-with-it  median (min-max)" % slow_ms)
    groups = {}
    for per_call in slows:
        seen = {}
        for role, name, dur in per_call:
            if dur >= slow_ms:
                seen.setdefault((role, name), []).append(dur)
        for k, durs in seen.items():
            groups.setdefault(k, []).extend(durs)
            groups.setdefault(("#", k), []).append(1)
    rows = sorted(((k, v) for k, v in groups.items() if k[0] != "#"), key=lambda kv: -med(kv[1]))
    for (role, name), durs in rows:
        lines.append("  %-8s %-16s %2d/%-3d %s" % (role, name, len(groups[("#", (role, name))]),
                                                   len(tls), span(durs)))
    if not rows:
        lines.append("  none")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------


def perf_usable():
    if not shutil.which("perf"):
        return False
    try:
        r = subprocess.run(["perf", "trace", "-T", "--", "/bin/true"], capture_output=True,
                           timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def run(base, daemons, tracers):
    n = S.env_int("TL_N", 8)
    plain_n = S.env_int("TL_PLAIN", 4, 0)
    attach_s = float(os.environ.get("TL_ATTACH_S", "0.5"))
    slow_ms = float(os.environ.get("TL_SLOW_MS", "0.5"))
    verbose = os.environ.get("TL_VERBOSE") == "1"
    kind = os.environ.get("TL_TRACER", "")
    if kind not in ("", "perf", "strace"):
        raise SetupError("TL_TRACER=%s: perf or strace" % kind)
    if not kind:
        kind = "perf" if perf_usable() else "strace"
        if kind == "strace":
            log("perf trace is not usable here: strace instead")
    if not shutil.which(kind):
        raise SetupError("no %s" % kind)
    hearthd = os.environ.get("HEARTHD") or str(REPO / "build" / "hearthd")
    if not os.access(hearthd, os.X_OK):
        raise SetupError("no hearthd at %s" % hearthd)
    d = C.Daemon(hearthd, base, "tl", 64, ["--memory-budget", "8192M"])
    daemons.append(d)
    d.start()
    api = S.Api(d.port)
    pool = C.Pool(d.port, 10)
    names = ["tl-%d" % i for i in range(n + plain_n)]
    for name in names:
        api.call("PUT", "/v1/functions/" + name, {
            "runtime": RUNTIME, "handler": "main.handler",
            "files": {"main.py": C.PY_MARKED % name}}, ok=(200, 201))
    if pool.counters(RUNTIME) is None:
        raise SetupError("this hearthd has no pre-built pool (no hearth_prebuilt_* metrics)")
    # Traced and untraced calls alternate (the untraced ones spread evenly).
    kinds, ti, pi = [], 0, 0
    for i in range(n + plain_n):
        if pi < plain_n and (ti >= n or pi * (n + plain_n) <= i * plain_n):
            kinds.append("p")
            pi += 1
        else:
            kinds.append("t")
            ti += 1
    log("%d traced (%s) and %d untraced cold calls of %s hellos" % (n, kind, plain_n, RUNTIME))
    before = pool.counters(RUNTIME)
    tls, slows, client_t, client_p, fails = [], [], [], [], 0
    rows_verbose = []
    for i, (name, k) in enumerate(zip(names, kinds)):
        pool.wait_refilled(RUNTIME)
        time.sleep(0.1)  # let the refilled sandbox's last steps settle
        pool.wait_refilled(RUNTIME)
        raw = S.build_request("POST", S.invoke_path(name), b'{"n":1}')
        conn = S.Conn(d.port)
        tracer = None
        try:
            if k == "t":
                roles = involved(d)
                tid_role = {t: r for p, r in roles.items() for t in tids(p)}
                tracer = Tracer(kind, base)
                tracers.append(tracer)
                tracer.start(list(roles), i)
                time.sleep(attach_s)
                if not tracer.alive():
                    raise SetupError("%s exited at once: %s" % (kind, tracer.errors()))
            t0 = time.perf_counter_ns()
            status, head, body = conn.roundtrip(raw)
            ms = (time.perf_counter_ns() - t0) / 1e6
            if status != 200 or body != b"hello":
                raise BenchError("%s answered %d %r" % (name, status, body[:100]))
            if not S.is_cold(head):
                raise BenchError("%s: the call was not cold" % name)
            if tracer is None:
                client_p.append(ms)
                continue
            time.sleep(0.05)
            events = tracer.stop()
            tracers.remove(tracer)
            try:
                tl, slow, _who = timeline(events, tid_role, len(raw))
            except BenchError as exc:
                fails += 1
                log("call %d (%s): %s; left out (trace in %s)" % (i, name, exc, tracer.path))
                continue
            tls.append(tl)
            slows.append(slow)
            client_t.append(ms)
            if verbose:
                rows_verbose.append("%s: client %.2f ms; " % (name, ms) + ", ".join(
                    "%s %.2f" % (key, tl[key]) for key, _w, _x in STEPS if key in tl))
        finally:
            conn.close()
            if tracer is not None and tracer in tracers:
                tracer.stop()
                tracers.remove(tracer)
    after = pool.counters(RUNTIME)
    head = ["Hearth cold call timeline (pre-built sandboxes), %s" % time.strftime(
        "%Y-%m-%d %H:%M:%S %Z"),
            "machine: %d CPUs, load average %s; hearthd %s (--no-auth); tracer: %s" % (
                os.cpu_count(), C.loadavg(), os.path.realpath(hearthd), kind),
            "pool (%s): %s; %d claims, %d misses during the calls" % (
                RUNTIME, pool.state(RUNTIME), after[0] - before[0], after[1] - before[1])]
    pool.close()
    api.close()
    if not tls:
        log("no traced call could be read")
        return 1
    sys.stdout.write(report(tls, client_t, client_p, slows, kind, fails, slow_ms, head))
    if verbose:
        sys.stdout.write("\n" + "\n".join(rows_verbose) + "\n")
    return 0


def _terminated(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    base, daemons, tracers, status = None, [], [], 1
    try:
        if os.geteuid() != 0:
            raise SetupError("needs root (the sandbox and the tracer do); try bench/cold_timeline.sh")
        base = Path(tempfile.mkdtemp(prefix="hearth-tl."))
        status = run(base, daemons, tracers)
    except SetupError as exc:
        log("set-up failed: %s" % exc)
        status = 2
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Exception as exc:  # noqa: BLE001 — still clean up
        log("failed: %r" % exc)
        status = 1
    finally:
        for t in list(tracers):
            try:
                t.stop()
            except Exception as exc:  # noqa: BLE001
                log("stopping the tracer: %r" % exc)
        for d in daemons:
            try:
                d.stop()
            except Exception as exc:  # noqa: BLE001
                log("stopping hearthd: %r" % exc)
        if base is not None:
            if os.environ.get("TL_KEEP") == "1":
                log("kept %s" % base)
            else:
                shutil.rmtree(base, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
