"""hearth_harness.benchlib — what the Python benches share: a lean raw-socket
HTTP client, a bench daemon, statistics, CPU accounting and the report.

Owns: (from bench/sched.py, where it grew) the figures' formatting and
statistics (fmt_ns, Stats, median...), the raw HTTP/1.1 client the
latency figures are measured with (Conn, Api, drive: no requests library
in the timed path), the bench Daemon (--no-auth, --log-level warn, one
per label), the /proc accounting a bench reports (descendants as a dict,
environ_entry, pid_ns, CpuMeter, smaps), wrk and closed-loop runs, and
the Report table. bench/sched.py, runtimes.py, cold.py, cold_timeline.py
and egress.py import it; tests use hearth_harness.daemon instead.
Must never: talk to anything but 127.0.0.1, or signal a process but the
daemons it started and what they started.
"""

import json
import math
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

from .config import REPO  # noqa: F401  (benches find their files from it)
from .proc import _stat, alive, descendant_tree, remove_cgroups_of  # noqa: F401  (_stat: bench/sched.py)
from .util import free_port

PY = "/usr/bin/python3"
EVENT = b'{"name":"bench","n":1}'  # the body bench/post.lua sends
HELLO = 'def handler(event, context):\n    return {"ok": True}\n'
SLEEPY = ('import time\n\n\ndef handler(event, context):\n    time.sleep(0.2)\n'
          '    return {"ok": True}\n')
STALL_S = 60.0  # no byte from hearthd for this long fails the case


class SetupError(Exception):
    """The benchmark cannot run at all (exit 2)."""


class BenchError(Exception):
    """One case failed (exit 1)."""


def env_int(name, default, lo=1, hi=10**7):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SetupError("%s=%r is not an integer" % (name, raw))
    if not lo <= value <= hi:
        raise SetupError("%s=%d is outside %d..%d" % (name, value, lo, hi))
    return value


def log(msg):
    """A progress line on stderr, named after the running bench script."""
    name = os.path.basename(sys.argv[0]).rsplit(".", 1)[0] or "bench"
    print("%s: %s" % (name, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# numbers


def fmt_ns(ns):
    us = ns / 1000.0
    if us < 1000:
        return "%.0f us" % us
    if us < 1000000:
        return "%.2f ms" % (us / 1000)
    return "%.2f s" % (us / 1000000)


def fmt_kib(kib):
    return "%d KiB (%.1f MiB)" % (kib, kib / 1024.0)


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    return sorted_vals[max(0, math.ceil(len(sorted_vals) * p / 100.0) - 1)]


class Stats:
    def __init__(self, samples_ns):
        if not samples_ns:
            raise BenchError("no samples")
        v = sorted(samples_ns)
        self.n, self.min, self.max = len(v), v[0], v[-1]
        self.p50, self.p99 = pct(v, 50), pct(v, 99)
        self.mean = sum(v) / len(v)

    def line(self):
        return "n=%d  p50 %s  p99 %s  mean %s  min %s  max %s" % (
            self.n, fmt_ns(self.p50), fmt_ns(self.p99), fmt_ns(self.mean), fmt_ns(self.min),
            fmt_ns(self.max))


def median(values):
    v = sorted(values)
    return v[(len(v) - 1) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


# ---------------------------------------------------------------------------
# HTTP/1.1 on raw sockets


def build_request(method, path, body=b"", ctype="application/json"):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
    if body or method in ("POST", "PUT"):
        head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))
    return head.encode() + b"\r\n" + body


def header(head, name):
    """The value (bytes) of header `name` (lower-case bytes) in a lower-cased
    response head, or None. A byte search: building a dict of every header
    per answer costs more than the warm call being measured."""
    i = head.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    i += len(name) + 3
    j = head.find(b"\r\n", i)
    return head[i:].strip() if j < 0 else head[i:j].strip()


def _chunked_end(buf, pos):
    """(body, end offset) of a chunked body starting at pos, or None if incomplete."""
    parts = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            while True:  # trailers, then an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                empty = eol == pos
                pos = eol + 2
                if empty:
                    return b"".join(parts), pos
        if len(buf) < pos + size + 2:
            return None
        parts.append(buf[pos:pos + size])
        pos += size + 2


def parse_response(buf):
    """(status, lower-cased head, body, bytes used) of the first whole
    response in buf (bytes), or None when it is not all there yet."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 1 << 20:
            raise BenchError("response head over 1 MiB")
        return None
    head = buf[:end + 2].lower()
    if not head.startswith(b"http/1."):
        raise BenchError("not an HTTP/1.x answer: %r" % buf[:80])
    status = int(head[9:12])
    start = end + 4
    length = header(head, b"content-length")
    if length is not None:
        n = start + int(length)
        if len(buf) < n:
            return None
        return status, head, buf[start:n], n
    if header(head, b"transfer-encoding") == b"chunked":
        got = _chunked_end(buf, start)
        if got is None:
            return None
        return status, head, got[0], got[1]
    if status in (204, 304) or 100 <= status < 200:
        return status, head, b"", start
    raise BenchError("answer %d without a length (not supported)" % status)


def is_cold(head):
    return header(head, b"x-hearth-cold-start") == b"1"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(STALL_S)
    return s


class Conn:
    """One blocking keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.sock = connect(port)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def roundtrip(self, raw):
        """Sends a prebuilt request; returns (status, lower-cased head, body)."""
        self.sock.sendall(raw)
        while True:
            got = parse_response(self.buf) if self.buf else None
            if got is not None:
                self.buf = self.buf[got[3]:]
                if header(got[1], b"connection") == b"close":
                    self.close()
                    self.sock = connect(self.port)
                    self.buf = b""
                return got[0], got[1], got[2]
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("hearthd closed the connection")
            self.buf = self.buf + chunk if self.buf else chunk

    def timed(self, raw, n):
        """n round trips of one prebuilt request: each one's nanoseconds."""
        lat = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.roundtrip(raw)
            lat.append(time.perf_counter_ns() - t0)
        return lat


class Api:
    """JSON control calls (deploy, show, delete) on a connection of their own."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def call(self, method, path, obj=None, ok=(200,)):
        raw = build_request(method, path, json.dumps(obj).encode() if obj is not None else b"")
        for attempt in (1, 2):  # an idle keep-alive connection may have been closed
            try:
                if self.conn is None:
                    self.conn = Conn(self.port)
                status, _headers, body = self.conn.roundtrip(raw)
                break
            except (OSError, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if status not in ok:
            raise BenchError("%s %s answered %d: %s" % (method, path, status,
                                                        body[:300].decode(errors="replace")))
        return json.loads(body) if body else None

    def deploy(self, name, code=HELLO, **settings):
        return self.call("PUT", "/v1/functions/" + name, deploy_body(code, **settings),
                         ok=(200, 201))

    def pool(self, name):
        return self.call("GET", "/v1/functions/" + name)["pool"]

    def delete(self, name):
        self.call("DELETE", "/v1/functions/" + name, ok=(204,))

    def wait_settled(self, name, timeout=60):
        """Waits until no worker of `name` is starting or busy; returns its pool."""
        deadline = time.monotonic() + timeout
        while True:
            pool = self.pool(name)
            if pool["starting"] == 0 and pool["busy"] == 0 and pool["queued"] == 0:
                return pool
            if time.monotonic() > deadline:
                raise BenchError("pool of %s did not settle: %s" % (name, pool))
            time.sleep(0.05)


def deploy_body(code=HELLO, **settings):
    body = {"runtime": "python3", "handler": "main.handler", "files": {"main.py": code}}
    body.update(settings)
    return body


def invoke_path(name):
    return "/v1/functions/%s/invoke" % name


class Sample:
    __slots__ = ("conn", "status", "cold", "sent", "done", "error")

    def __init__(self, conn, status, cold, sent, done, body):
        self.conn, self.status, self.cold, self.sent, self.done = conn, status, cold, sent, done
        self.error = None if status == 200 else error_code(status, body)


def error_code(status, body):
    """'503 queue_timeout' from an error answer of the documented shape."""
    try:
        return "%d %s" % (status, json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return str(status)


def drive(port, plans, duration_s=None):
    """One closed-loop client per entry of `plans` (a list of prebuilt
    requests), each on its own connection, all from this thread: every
    connection has one request in flight. The first requests of all
    connections are written back to back (a burst). With duration_s each
    connection cycles through its list until that many seconds have passed
    since the start, else it sends its list once. Returns (start_ns,
    [Sample]); raises BenchError on a stall or a closed connection."""
    socks = [connect(port) for _ in plans]
    sel = selectors.DefaultSelector()
    state = []  # per connection: [next index, buffer, sent_ns]
    samples = []
    try:
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
            state.append([0, b"", 0])
        start = time.perf_counter_ns()
        end = start + int(duration_s * 1e9) if duration_s else None

        def send_next(i):
            st = state[i]
            plan = plans[i]
            st[2] = time.perf_counter_ns()
            socks[i].sendall(plan[st[0] % len(plan)])
            st[0] += 1

        for i in range(len(socks)):
            send_next(i)
        open_conns = len(socks)
        while open_conns:
            events = sel.select(STALL_S)
            if not events:
                raise BenchError("no answer from hearthd for %.0f s" % STALL_S)
            for key, _mask in events:
                i = key.data
                st = state[i]
                chunk = socks[i].recv(262144)
                now = time.perf_counter_ns()
                if not chunk:
                    raise BenchError("hearthd closed client connection %d" % i)
                st[1] = st[1] + chunk if st[1] else chunk
                got = parse_response(st[1])
                if got is None:
                    continue
                st[1] = st[1][got[3]:]
                samples.append(Sample(i, got[0], is_cold(got[1]), st[2], now, got[2]))
                more = now < end if end else st[0] < len(plans[i])
                if more:
                    send_next(i)
                else:
                    sel.unregister(socks[i])
                    open_conns -= 1
        return start, samples
    finally:
        sel.close()
        for s in socks:
            s.close()


def errors_text(samples):
    """'' when every answer was 200, else e.g. '6 of 6094 answers 503 queue_timeout'."""
    counts = {}
    for s in samples:
        if s.error:
            counts[s.error] = counts.get(s.error, 0) + 1
    if not counts:
        return ""
    return "%d of %d answers %s" % (sum(counts.values()), len(samples), ", ".join(
        "%s x%d" % kv for kv in sorted(counts.items())))


def check_ok(samples, what):
    bad = errors_text(samples)
    if bad:
        raise BenchError("%s: %s" % (what, bad))


# ---------------------------------------------------------------------------
# processes

def _exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def descendants(root):
    """The live descendants of root: {pid: (ppid, starttime)}."""
    return descendant_tree(root, zombies=False)


def status_kib(pid, fields=("VmRSS", "RssAnon", "RssFile", "RssShmem")):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in fields:
                out[name] = int(value.split()[0])
    return out


def smaps_rollup_kib(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def environ_entry(pid, prefix):
    """The first environment entry of pid starting with prefix, or None."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    prefix = prefix.encode()
    for entry in env:
        if entry.startswith(prefix):
            return entry.decode(errors="replace")
    return None


def pid_ns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """User + system CPU seconds of pid so far (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(rest[11]) + int(rest[12])) / TICK


def machine_cpu():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class CpuMeter:
    """Where the CPU went during one run: this client (and its waited-for
    children, e.g. wrk), hearthd with its helpers (spawner, template), and
    the workers alive at both ends of the run (sandbox inits and runtimes)."""

    def __init__(self, d):
        self.d = d
        self.start = self._snap()

    def _snap(self):
        side = {}
        own = pid_ns(self.d.pid)
        for p, (_parent, start) in descendants(self.d.pid).items():
            side[(p, start)] = (pid_ns(p) == own, proc_cpu_s(p))
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"daemon": proc_cpu_s(self.d.pid), "procs": side,
                "client": time.process_time() + ru.ru_utime + ru.ru_stime,
                "machine": machine_cpu()}

    def line(self, calls):
        """'CPU per call: client .., hearthd .., workers ..; machine busy ..'."""
        end, a = self._snap(), self.start
        daemon = end["daemon"] - a["daemon"]
        workers = 0.0
        for key, (daemon_side, cpu) in end["procs"].items():
            if key in a["procs"]:
                if daemon_side:
                    daemon += cpu - a["procs"][key][1]
                else:
                    workers += cpu - a["procs"][key][1]
        client = end["client"] - a["client"]
        busy = end["machine"][0] - a["machine"][0]
        total = end["machine"][1] - a["machine"][1]
        per = 1e9 / max(calls, 1)
        return ("CPU per call: client %s, hearthd+helpers %s, workers %s; all CPUs %.0f%% busy "
                "(of %d)" % (fmt_ns(client * per), fmt_ns(daemon * per), fmt_ns(workers * per),
                             100.0 * busy / max(total, 1), os.cpu_count()))
class Daemon:
    """One hearthd on 127.0.0.1:<free port> with its data in <base>/data-<label>,
    given `extra` options after the common ones."""

    def __init__(self, hearthd, base, label, max_workers, extra=()):
        self.hearthd = hearthd
        self.base = base
        self.label = label
        self.extra = list(extra)  # options after the common ones
        self.data_dir = base / ("data-" + label)
        self.log_path = base / ("hearthd-%s.log" % label)
        self.max_workers = max_workers
        self.proc = None
        self.port = None
        self.cmd = None
        self._log = None

    def start(self):
        """Starts the daemon and waits for /healthz; returns the seconds that took."""
        self.port = free_port()
        self.cmd = [self.hearthd, "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                    str(self.data_dir), "--log-level", "warn", "--max-workers",
                    str(self.max_workers), "--shutdown-grace", "2",
                    # loopback only: scheduling figures, without token checks
                    # (bench/auth_cost.sh measures what those cost)
                    "--no-auth"] + self.extra
        cmd = list(self.cmd)
        setpriv = shutil.which("setpriv")
        if setpriv:  # if this process is killed outright, the daemon still gets SIGTERM
            cmd = [setpriv, "--pdeathsig", "TERM"] + cmd
        self._log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise SetupError("hearthd exited with %d while starting:\n%s" % (
                    rc, self.log_tail()))
            try:
                c = Conn(self.port)
                try:
                    if c.roundtrip(build_request("GET", "/healthz"))[0] == 200:
                        return time.monotonic() - t0
                finally:
                    c.close()
            except (OSError, ConnectionError):
                pass
            if time.monotonic() - t0 > 20:
                self.stop()
                raise SetupError("hearthd did not answer /healthz within 20 s:\n" + self.log_tail())
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        """SIGTERM, wait; SIGKILL for the daemon and anything it left if it
        hangs. Returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        pid = self.proc.pid
        procs = descendants(pid)
        self.proc.send_signal(signal.SIGTERM)
        rc = None
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            log("hearthd (%s) did not stop within 30 s of SIGTERM: killing it" % self.label)
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._log.close()
        deadline = time.monotonic() + 3
        while True:  # its workers end when it does; make sure
            left = [p for p, (_pp, start) in procs.items() if alive(p, start)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if rc is None:
            remove_cgroups_of(pid)
        return rc

    def workers(self):
        """Pids of the worker sandboxes (inits and runtimes): the processes
        below the daemon in a pid namespace other than its own. The
        spawner and a runtime template (zygote) share the daemon's."""
        own = pid_ns(self.pid)
        out = []
        for p in descendants(self.pid):
            ns = pid_ns(p)
            if ns is not None and ns != own:
                out.append(p)
        return out

    def helpers(self):
        """Pids below the daemon in its own pid namespace: the spawner, a
        runtime template (zygote)."""
        own = pid_ns(self.pid)
        return sorted(p for p in descendants(self.pid) if pid_ns(p) == own)

    def wait_no_workers(self, timeout=20):
        deadline = time.monotonic() + timeout
        while self.workers():
            if time.monotonic() > deadline:
                raise BenchError("workers still alive %d s after their functions were deleted: %s"
                                 % (timeout, self.workers()))
            time.sleep(0.05)

    def runtimes(self, function=None):
        """Host pids of the Python runtimes below the daemon (of `function`
        if given): python3 processes whose environment names a function."""
        py = os.path.realpath(PY)
        out = []
        for p in descendants(self.pid):
            if os.path.realpath(_exe(p) or "/") != py:
                continue
            entry = environ_entry(p, "HEARTH_FUNCTION_NAME=")
            if entry and (function is None or entry == "HEARTH_FUNCTION_NAME=" + function):
                out.append(p)
        return out

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# the report


class Report:
    def __init__(self):
        self.head = []
        self.sections = []  # (title, [lines])
        self.rows = []  # (what, figure, target, met)
        self.failed = False

    def section(self, title):
        lines = []
        self.sections.append((title, lines))
        return lines

    def row(self, what, figure, target="-", met="-"):
        self.rows.append((what, figure, target, met))

    def fail(self, title, lines, exc):
        self.failed = True
        lines.append("FAILED: %s" % exc)
        self.row(title, "FAILED", "-", "-")
        log("%s FAILED: %s" % (title, exc))

    @staticmethod
    def _order(title):
        m = re.match(r"(\d+)(\w*)", title)
        return (int(m.group(1)), m.group(2)) if m else (99, title)

    def text(self):
        """The report, cases in their numbered order (they do not run in it)."""
        out = list(self.head)
        for title, lines in sorted(self.sections, key=lambda s: self._order(s[0])):
            out.append("")
            out.append(title)
            out.extend("   " + line if line else "" for line in lines)
        out.append("")
        w = [max(len(r[i]) for r in self.rows + [("what", "figure", "target", "met?")])
             for i in range(3)]
        fmt = "%-{}s  %-{}s  %-{}s  %s".format(*w)
        out.append(fmt % ("what", "figure", "target", "met?"))
        out.append(fmt % ("-" * w[0], "-" * w[1], "-" * w[2], "----"))
        for r in sorted(self.rows, key=lambda r: self._order(r[0])):
            out.append(fmt % r)
        return "\n".join(out) + "\n"


def met(ok):
    return "yes" if ok else "no"


# ---------------------------------------------------------------------------
# the cases


def run_wrk(d, url, script, conns, threads, seconds, args=()):
    """Runs wrk against d; returns its BENCH line as a dict of ints plus
    "rps" and "cpu" (a CpuMeter line), or raises BenchError."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "-s",
           str(script), url]
    if args:
        cmd += ["--"] + [str(a) for a in args]
    meter = CpuMeter(d)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in res.stdout.splitlines():
        if line.startswith("BENCH "):
            f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
            errs = f["non2xx"] + f["connect"] + f["read"] + f["write"] + f["timeout"]
            if errs:
                raise BenchError("wrk saw %d errors: %s" % (errs, line))
            f["rps"] = f["requests"] * 1e6 / f["duration_us"]
            f["cpu"] = meter.line(f["requests"])
            return f
    raise BenchError("wrk failed: %s %s" % (res.stdout[-500:], res.stderr[-500:]))


FIXED_SERVER = r"""
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
          b"X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n\r\n{\"ok\":true}")
while c.recv(65536):
    c.sendall(answer)
"""


def client_floor(m):
    """This client's own floor: `m` calls to a Python process on loopback
    that answers every read with a fixed response, parsing nothing."""
    srv = subprocess.Popen([PY, "-I", "-c", FIXED_SERVER], stdout=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    try:
        conn = Conn(int(srv.stdout.readline()))
        lat = conn.timed(build_request("POST", "/", EVENT), m)
        conn.close()
        return Stats(lat)
    finally:
        srv.kill()
        srv.wait()

class Loop:
    """The result of one closed-loop run."""

    def __init__(self, start, samples, cpu):
        self.samples = samples
        self.calls = len(samples)
        self.rps = self.calls * 1e9 / (max(s.done for s in samples) - start)
        self.stats = Stats([s.done - s.sent for s in samples])
        self.cold = sum(s.cold for s in samples)
        self.errors = errors_text(samples)
        self.cpu = cpu


def closed_loop(d, names, clients, seconds):
    """`clients` connections, connection k cycling over names[k::clients]
    (each function used by one connection only) for `seconds`; a Loop."""
    plans = []
    for k in range(clients):
        mine = names[k::clients] or names[k % len(names):][:1]
        plans.append([build_request("POST", invoke_path(n), EVENT) for n in mine])
    meter = CpuMeter(d)
    start, samples = drive(d.port, plans, seconds)
    return Loop(start, samples, meter.line(len(samples)))


WRK_RR = """-- written by bench/sched.py: thread k of N calls functions k, k+N, ... in turn
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local nfn, nthreads, prefix = tonumber(args[1]), tonumber(args[2]), args[3]
  paths = {}
  if nfn == 1 then
    paths[1] = "/v1/functions/" .. prefix .. "/invoke"
  else
    for i = id, nfn - 1, nthreads do
      table.insert(paths, "/v1/functions/" .. prefix .. i .. "/invoke")
    end
  end
  idx = 0
end
function request()
  idx = idx % #paths + 1
  return wrk.format("POST", paths[idx], {["Content-Type"] = "application/json"},
                    '{"name":"bench","n":1}')
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d " ..
    "connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""

def _meminfo():
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return "%.1f GiB RAM" % (kib / 1048576.0)
    except (OSError, ValueError, IndexError):
        return "? RAM"
