#!/usr/bin/python3
"""bench/runtimes.py — cold start, warm latency and throughput of every runtime, in one run.

A report, not a test. On 127.0.0.1 only, as root (the sandbox needs it),
it starts hearthd on a free port with a temporary data dir, asks
GET /v1/runtimes which runtimes are usable, and for each usable one of
python3, node, exec and lambda deploys a hello function and measures:

  cold   RT_COLD_N distinct functions, each invoked once, in turn, over one
         keep-alive connection, after one unmeasured cold start (the
         runtime's first, which may build its template); every measured
         answer must carry X-Hearth-Cold-Start: 1. p50 and p99;
  warm   one function: 200 unmeasured calls, then RT_WARM_N sequential
         calls on one keep-alive connection, none of them cold. p50, p99;
  req/s  the same function, `wrk -t1 -c1` then `wrk -t2 -c8` (bench/post.lua)
         for RT_DURATION seconds each, after a 1 s unmeasured run at 8
         connections that starts its workers; without wrk (or RT_WRK=0),
         this client's closed loop with 1 and 8 connections instead.

Then it prints one plain-text report on stdout (progress goes to stderr):
the machine, the daemon command, the setup, and one table
runtime | cold p50 | cold p99 | warm p50 | warm p99 | req/s c1 | req/s c8 | notes,
with the notes' longer text below it. A runtime that is not usable here
gets a row saying why; that is not a failure.

The HTTP client, the daemon handling and the statistics are bench/sched.py's,
loaded as a module (nothing is copied): raw HTTP/1.1 on sockets with
TCP_NODELAY, a latency is from the request written to the whole answer read.

Run:      bench/runtimes.sh             (builds build/hearthd if missing; root)
          HEARTHD=/path/hearthd /usr/bin/python3 bench/runtimes.py
Takes:    about 2.5 minutes on 2 vCPUs (exec and lambda fork per call, so
          their warm loops take the longest: lambda alone is over a minute).
Exit:     0 when the run completed, 1 when a case failed (its cells say
          FAILED and a note says why; the report is printed anyway), 2 on a
          set-up failure, 130 on Ctrl-C / SIGTERM. Everything it started is
          stopped and its temp dir removed in every case.

Environment (defaults in brackets):
  HEARTHD          the daemon [<repo>/build/hearthd]
  RT_COLD_N        cold starts measured per runtime [20]
  RT_WARM_N        sequential warm calls per runtime [1000]
  RT_DURATION      seconds per req/s run [3]
  RT_RUNTIMES      the runtimes to measure, comma-separated [python3,node,exec,lambda]
  RT_WRK           0: do not use wrk even when installed [1]
  RT_MAX_WORKERS   --max-workers of the daemon [max(64, RT_COLD_N + 16)]
  RT_KEEP          1: keep the temp dir (daemon log, data) [0]
"""

import json
import os
import platform
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

from hearth_harness import benchlib as S  # noqa: E402  (client, daemon, statistics)

BenchError, SetupError = S.BenchError, S.SetupError
fmt_ns, build_request, invoke_path = S.fmt_ns, S.build_request, S.invoke_path

WARMUP_CALLS = 200
C8 = 8

LAMBDA_BOOTSTRAP = """#!/bin/sh
# hello over the AWS Lambda Runtime API: one curl for the event, one for the answer.
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
H=/tmp/next.headers
while true; do
  curl -sS -o /dev/null -D "$H" "$API/next"
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | tr -d '\\r' | cut -d' ' -f2)
  curl -sS -o /dev/null -X POST "$API/$ID/response" --data-binary hello
done
"""

# name -> (handler, files, what the function is, in the setup lines)
HELLO = {
    "python3": ("main.handler", {"main.py": "def handler(event, context):\n    return 'hello'\n"},
                "main.py: def handler(event, context): return 'hello'"),
    "node": ("index.handler", {"index.js": "exports.handler = async () => 'hello';\n"},
             "index.js: exports.handler = async () => 'hello';"),
    "exec": ("run.sh", {"run.sh": "#!/bin/sh\nprintf hello\n"},
             "run.sh: #!/bin/sh printf hello (a process per call)"),
    "lambda": ("function.handler", {"bootstrap": LAMBDA_BOOTSTRAP},
               "bootstrap: a sh loop, curl GET .../invocation/next -D headers, curl POST "
               ".../invocation/$ID/response 'hello' (two curls per call)"),
    "c": ("libhello.so", None,
          "libhello.so: hearth_handler sets the body to 'hello' (built with cc at the start)"),
}


C_HELLO = r"""
#include "hearth/function.h"
int hearth_handler(const hearth_request *req, hearth_response *resp)
{
    (void)req;
    resp->body = "hello";
    resp->body_len = 5;
    resp->content_type = "text/plain; charset=utf-8";
    return 0;
}
"""
_c_archive = []


def c_archive():
    """base64 of a .tar.gz holding libhello.so, built once with the system's cc."""
    if not _c_archive:
        import base64, io, shutil, subprocess, tarfile, tempfile
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise BenchError("no C compiler to build the c hello function")
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with tempfile.TemporaryDirectory() as tmp:
            src, so = os.path.join(tmp, "hello.c"), os.path.join(tmp, "libhello.so")
            with open(src, "w") as f:
                f.write(C_HELLO)
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-I", os.path.join(repo, "include"),
                            "-o", so, src], check=True)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(so, arcname="libhello.so")
        _c_archive.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return _c_archive[0]


def log(msg):
    print("runtimes: " + msg, file=sys.stderr, flush=True)


def deploy(api, runtime, name):
    handler, files, _what = HELLO[runtime]
    body = {"runtime": runtime, "handler": handler}
    if files is None:
        body["archive"] = c_archive()
    else:
        body["files"] = files
    return api.call("PUT", "/v1/functions/" + name, body, ok=(200, 201))


def check_answer(name, status, body):
    if status != 200:
        raise BenchError("%s answered %d: %s" % (name, status,
                                                 body[:200].decode(errors="replace")))
    if b"hello" not in body:
        raise BenchError("%s answered 200 without hello: %r" % (name, body[:200]))


def cleanup(d, api, row):
    """Deletes every function on d and waits for its workers to end, so
    the next case starts on an empty daemon, also after a failed one."""
    try:
        for f in api.call("GET", "/v1/functions")["functions"]:
            api.delete(f["name"])
        d.wait_no_workers()
    except (BenchError, OSError) as exc:
        row.fail((), "clean-up", exc)


class Row:
    """One runtime's cells and notes."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.cells = {k: "-" for k in ("cold50", "cold99", "warm50", "warm99", "c1", "c8")}
        self.notes = []  # short, in the table
        self.details = []  # longer, below it
        self.failed = False

    def fail(self, keys, what, exc):
        self.failed = True
        for k in keys:
            self.cells[k] = "FAILED"
        self.notes.append(what + " failed")
        self.details.append("%s: %s" % (what, exc))
        log("%s: %s FAILED: %s" % (self.runtime, what, exc))

    def flag(self, what, text):
        """A figure stands, but with error answers (or cold starts) in it."""
        self.failed = True
        self.notes.append("%s: %s" % (what, text))
        log("%s: %s: %s" % (self.runtime, what, text))


def case_cold(d, api, row, n):
    rt = row.runtime
    names = ["cold-%s-%d" % (rt, i) for i in range(n + 1)]
    try:
        for name in names:
            deploy(api, rt, name)
        conn = S.Conn(d.port)
        raws = [build_request("POST", invoke_path(name), S.EVENT) for name in names]
        lat, not_cold = [], 0
        for i, raw in enumerate(raws):
            t0 = time.perf_counter_ns()
            status, head, body = conn.roundtrip(raw)
            t = time.perf_counter_ns() - t0
            check_answer(names[i], status, body)
            if i == 0:
                row.notes.append("1st cold %s" % fmt_ns(t))
                row.details.append("answer: %r (%s)" % (
                    body[:60], (S.header(head, b"content-type") or b"?").decode()))
                continue
            not_cold += not S.is_cold(head)
            lat.append(t)
        conn.close()
        st = S.Stats(lat)
        row.cells["cold50"], row.cells["cold99"] = fmt_ns(st.p50), fmt_ns(st.p99)
        row.details.append("cold: " + st.line())
        if not_cold:
            raise BenchError("%d of %d calls were not cold starts" % (not_cold, n))
    except (BenchError, OSError) as exc:
        row.fail(("cold50", "cold99"), "cold", exc)
    finally:
        cleanup(d, api, row)


def error_counts(counts, n):
    """'4/1000 502 function_crashed', or '' when counts is empty."""
    if not counts:
        return ""
    return "%d/%d %s" % (sum(counts.values()), n, ", ".join(
        "%s%s" % (code, "" if len(counts) == 1 else " x%d" % k) for code, k in sorted(
            counts.items())))


def measure_warm(d, row, name, m):
    """Error answers and cold starts (a crashed worker is replaced by a cold
    one) do not stop the loop: they are counted (their time is in the
    figures), flagged, and fail the row; a 200 without hello fails the case."""
    conn = S.Conn(d.port)
    raw = build_request("POST", invoke_path(name), S.EVENT)
    lat, cold, errors, warmup_errors = [], 0, {}, {}
    try:
        for i in range(WARMUP_CALLS + m):
            t0 = time.perf_counter_ns()
            status, head, body = conn.roundtrip(raw)
            t = time.perf_counter_ns() - t0
            if status != 200:
                code = S.error_code(status, body)
                where = warmup_errors if i < WARMUP_CALLS else errors
                where[code] = where.get(code, 0) + 1
            else:
                check_answer(name, status, body)
            if i >= WARMUP_CALLS:
                lat.append(t)
                cold += S.is_cold(head) and status == 200
    finally:
        conn.close()
    st = S.Stats(lat)
    mark = " !" if errors or cold else ""
    row.cells["warm50"], row.cells["warm99"] = fmt_ns(st.p50) + mark, fmt_ns(st.p99) + mark
    row.details.append("warm: " + st.line())
    if warmup_errors:
        row.flag("warm-up", error_counts(warmup_errors, WARMUP_CALLS))
    if errors:
        row.flag("warm", error_counts(errors, m))
    if cold:
        row.flag("warm", "%d/%d cold" % (cold, m))


def rps_wrk(d, name, conns, seconds):
    """(req/s, what, error text) of one wrk run with bench/post.lua. Unlike
    sched.py's run_wrk, a run with error answers still gives its figures."""
    cmd = ["wrk", "-t%d" % min(conns, 2), "-c%d" % conns, "-d%ds" % seconds, "--latency", "-s",
           str(REPO / "bench" / "post.lua"), "http://127.0.0.1:%d%s" % (d.port, invoke_path(name))]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in res.stdout.splitlines():
        if line.startswith("BENCH "):
            f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
            if not f["requests"]:
                raise BenchError("wrk got no answer: " + line)
            kinds = [k for k in ("non2xx", "connect", "read", "write", "timeout") if f[k]]
            errs = "" if not kinds else ", ".join(
                "%d/%d %s" % (f[k], f["requests"], "non-2xx" if k == "non2xx" else k + " errors")
                for k in kinds) + " (wrk)"
            return (f["requests"] * 1e6 / f["duration_us"],
                    "p50 %s p99 %s, %d calls" % (fmt_ns(f["p50_us"] * 1000),
                                                 fmt_ns(f["p99_us"] * 1000), f["requests"]), errs)
    raise BenchError("wrk failed: %s %s" % (res.stdout[-500:], res.stderr[-500:]))


def rps_python(d, name, conns, seconds):
    loop = S.closed_loop(d, [name], conns, seconds)
    counts = {}
    for x in loop.samples:
        if x.error:
            counts[x.error] = counts.get(x.error, 0) + 1
    return loop.rps, "p50 %s p99 %s, %d calls" % (fmt_ns(loop.stats.p50), fmt_ns(loop.stats.p99),
                                                  loop.calls), error_counts(counts, loop.calls)


def measure_rps(d, api, row, name, seconds, use_wrk):
    run = rps_wrk if use_wrk else rps_python
    tool = "wrk" if use_wrk else "python"
    for conns in (1, C8):
        key = "c%d" % conns
        try:
            if conns > 1:
                S.closed_loop(d, [name], conns, 1)  # starts its workers; unmeasured
            pool = api.wait_settled(name)
            rps, what, errs = run(d, name, conns, seconds)
            # wrk cannot see X-Hearth-Cold-Start: the pool's counter tells
            cold = api.pool(name)["cold_starts"] - pool["cold_starts"]
            row.cells[key] = "%.0f%s" % (rps, " !" if errs or cold else "")
            row.details.append("req/s %s (%s): %.0f; %s; %d idle workers before" % (
                key, tool, rps, what, pool["idle"]))
            if conns > 1:
                row.notes.append("%d workers at %s" % (pool["idle"], key))
            if errs:
                row.flag(key, errs)
            if cold:
                row.flag(key, "%d cold" % cold)
        except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
            row.fail((key,), key, exc)


def case_warm(d, api, row, m, seconds, use_wrk):
    name = "warm-" + row.runtime
    try:
        deploy(api, row.runtime, name)
        try:
            measure_warm(d, row, name, m)
        except (BenchError, OSError) as exc:
            row.fail(("warm50", "warm99"), "warm", exc)
        measure_rps(d, api, row, name, seconds, use_wrk)
    except (BenchError, OSError) as exc:
        row.fail(("warm50", "warm99", "c1", "c8"), "warm deploy", exc)
    finally:
        cleanup(d, api, row)


def table(rows):
    head = ("runtime", "cold p50", "cold p99", "warm p50", "warm p99", "req/s c1", "req/s c8",
            "notes")
    body = [(r.runtime, r.cells["cold50"], r.cells["cold99"], r.cells["warm50"],
             r.cells["warm99"], r.cells["c1"], r.cells["c8"], "; ".join(r.notes)) for r in rows]
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head) - 1)]
    fmt = " | ".join("%%-%ds" % n for n in w) + " | %s"
    out = [fmt % head, "-+-".join("-" * n for n in w) + "-+-" + "-" * 5]
    out.extend(fmt % b for b in body)
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def _terminated(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run(out, hearthd, base):
    """Measures every runtime on one daemon; returns 0 or 1. Raises SetupError."""
    cold_n = S.env_int("RT_COLD_N", 20)
    warm_n = S.env_int("RT_WARM_N", 1000)
    seconds = S.env_int("RT_DURATION", 3, 1, 3600)
    max_workers = S.env_int("RT_MAX_WORKERS", max(64, cold_n + 16))
    use_wrk = S.env_int("RT_WRK", 1, 0, 1) == 1 and shutil.which("wrk") is not None
    wanted = [x.strip() for x in os.environ.get("RT_RUNTIMES", ",".join(HELLO)).split(",")
              if x.strip()]
    unknown = [x for x in wanted if x not in HELLO]
    if unknown or not wanted:
        raise SetupError("RT_RUNTIMES names no hello function for %s (known: %s)" % (
            unknown or "anything", ", ".join(HELLO)))

    version = subprocess.run([hearthd, "--version"], capture_output=True, text=True).stdout
    d = S.Daemon(hearthd, base, "rt", max_workers)
    out.daemon = d
    d.start()
    api = S.Api(d.port)
    out.load_line = len(out.head) + 2
    listed = {r["name"]: r for r in api.call("GET", "/v1/runtimes")["runtimes"]}

    out.head += [
        "Hearth runtimes benchmark, %s" % time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine: %d CPUs, %s %s, %s; client: %s %s (raw sockets)" % (
            os.cpu_count(), platform.system(), platform.release(), S._meminfo(), S.PY,
            platform.python_version()),
        "load average (1 min) at the start %s" % loadavg(),
        "daemon: %s (%s), as root: hearthd %s" % (version.strip() or "?",
                                                  os.path.realpath(hearthd),
                                                  " ".join(d.cmd[1:])),
        "runtimes: " + ", ".join(
            "%s %s%s" % (n, r.get("version", "?"), "" if r.get("usable") else
                         " (not usable: %s)" % r.get("reason", "?")) for n, r in listed.items()),
        "",
        "setup, per runtime, one after the other on that daemon, nothing else on it "
        "(functions at default settings:",
        "  memory_mb 128, max_concurrency 10; every call a POST with the %d-byte JSON "
        "event %s):" % (len(S.EVENT), S.EVENT.decode()),
        "  cold:  %d functions deployed, then each invoked once, in turn, on one keep-alive "
        "connection;" % (cold_n + 1),
        "         the first unmeasured (its time is the '1st cold' note), the other %d must "
        "answer X-Hearth-Cold-Start: 1;" % cold_n,
        "         all deleted after, and their workers gone, before the next case",
        "  warm:  one function, %d unmeasured calls, then %d sequential calls on one keep-alive "
        "connection, none cold" % (WARMUP_CALLS, warm_n),
    ]
    if use_wrk:
        out.head.append("  req/s: that function, wrk -t1 -c1 -d%ds, then 1 s unmeasured at 8 "
                        "connections (starts the workers), then wrk -t2 -c8 -d%ds "
                        "(bench/post.lua); no cold start allowed in the measured runs "
                        "(the pool's cold_starts)" % (seconds, seconds))
    else:
        out.head.append("  req/s: that function, this client's closed loop (one call in flight "
                        "per connection, one selector thread) for %d s with 1, then 8 "
                        "connections after 1 s unmeasured at 8; no cold start allowed "
                        "(wrk %s)" % (seconds, "not installed" if not shutil.which("wrk")
                                      else "off: RT_WRK=0"))
    for rt in wanted:
        out.head.append("  %-7s handler %s; %s" % (rt, HELLO[rt][0], HELLO[rt][2]))

    for rt in wanted:
        row = Row(rt)
        out.rows.append(row)
        info = listed.get(rt)
        if info is None or not info.get("usable"):
            row.notes.append("not usable: %s" % (info.get("reason", "?") if info else
                                                 "not in GET /v1/runtimes"))
            log("%s: skipped (%s)" % (rt, row.notes[-1]))
            continue
        log("%s: %d cold starts" % (rt, cold_n + 1))
        case_cold(d, api, row, cold_n)
        log("%s: %d warm calls, then req/s at c1 and c%d (%d s each%s)" % (
            rt, warm_n, C8, seconds, ", wrk" if use_wrk else ""))
        case_warm(d, api, row, warm_n, seconds, use_wrk)
    for rt in listed:
        if rt not in HELLO:
            out.rows.append(Row(rt))
            out.rows[-1].notes.append("listed%s, but this bench has no hello function for it" % (
                "" if listed[rt].get("usable") else " (not usable)"))
    out.head[out.load_line] += "; at the end %s" % loadavg()
    api.close()
    rc = d.stop()
    out.daemon = None
    if rc not in (0, None):
        out.tail.append("hearthd exited with %s after SIGTERM:\n%s" % (rc, d.log_tail()))
        return 1
    return 1 if any(r.failed for r in out.rows) else 0


class Output:
    def __init__(self):
        self.head, self.rows, self.tail = [], [], []
        self.daemon = None
        self.load_line = 0

    def text(self, took, status):
        lines = list(self.head)
        lines.append("")
        lines.extend(table(self.rows))
        lines.append("(! = error answers or cold starts within that measurement, counted in the "
                     "notes; FAILED = the case could not be measured)")
        lines.append("")
        for r in self.rows:
            for x in r.details:
                lines.append("%s: %s" % (r.runtime, x))
        lines.extend(self.tail)
        lines.append("run took %.0f s; exit %d" % (took, status))
        return "\n".join(lines) + "\n"


def main():
    # SIGINT too: a shell that starts us in the background ignores it.
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    t_begin = time.monotonic()
    out = Output()
    base = None
    keep = False
    try:
        if os.geteuid() != 0:
            raise SetupError("needs root (the worker sandbox does); try bench/runtimes.sh")
        hearthd = os.environ.get("HEARTHD") or str(REPO / "build" / "hearthd")
        if not os.access(hearthd, os.X_OK):
            raise SetupError("no hearthd at %s (set HEARTHD or run bench/runtimes.sh)" % hearthd)
        keep = S.env_int("RT_KEEP", 0, 0, 1) == 1
        base = Path(tempfile.mkdtemp(prefix="hearth-runtimes."))
        status = run(out, hearthd, base)
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
        if out.daemon is not None:
            try:
                rc = out.daemon.stop()
                if rc not in (None, 0):
                    log("hearthd exited with %s:\n%s" % (rc, out.daemon.log_tail()))
            except Exception as exc:
                log("stopping hearthd: %r" % exc)
        if base is not None:
            if keep:
                log("kept %s" % base)
            else:
                shutil.rmtree(base, ignore_errors=True)
    if out.rows:
        sys.stdout.write(out.text(time.monotonic() - t_begin, status))
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
