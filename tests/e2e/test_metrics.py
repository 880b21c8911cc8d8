"""Issue 10 point 5 (Metrics): GET /metrics in the Prometheus text format.

Each test drives one function of its own through known outcomes (200s, a
function error, a timeout, 429 and 503 from its queue, an OOM kill, a
seccomp kill, a cold start), scrapes, and asserts the exact counters, the
gauges of its pool, and that every histogram is consistent (buckets never
fall, +Inf == _count). promtool, when installed, lints the whole text. A
deleted function's series disappear.
"""

import math
import re
import shutil
import subprocess
import time

import pytest

from conftest import Background, HEARTHD, assert_error, py, rootful_only, wait_until

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROMTOOL = shutil.which("promtool")

CODE = py('''
    import time

    def handler(event, context):
        do = event.get("do", "ok") if isinstance(event, dict) else "ok"
        if do == "fail":
            raise ValueError("metrics test")
        if do == "sleep":
            time.sleep(event.get("seconds", 5))
        return {"ok": True}
''')

# ---------------------------------------------------------------------------
# the text format


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


class Scrape:
    """One /metrics answer, parsed: samples[(name, labels)] = value."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        self.helps = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                assert name not in self.types, "TYPE twice: " + line
                self.types[name] = kind
                continue
            if line.startswith("# HELP "):
                self.helps.add(line.split(" ", 3)[2])
                continue
            assert line and not line.startswith("#"), "unexpected line %r" % line
            m = SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            labels = {}
            if m.group(2):
                consumed = "".join(x.group(0) for x in LABEL.finditer(m.group(2)))
                assert consumed == m.group(2), "bad labels in %r" % line
                labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2))}
            key = (m.group(1), frozenset(labels.items()))
            assert key not in self.samples, "duplicate series: " + line
            self.samples[key] = float(m.group(3))

    def get(self, name, **labels):
        """The value of the series, or None when there is none."""
        return self.samples.get((name, frozenset(labels.items())))

    def of_function(self, fn):
        return {k: v for k, v in self.samples.items() if ("function", fn) in k[1]}

    def histogram(self, name, **labels):
        """([(le, cumulative count)] in le order, _sum, _count) of one series."""
        buckets = []
        for (n, ls), v in self.samples.items():
            d = dict(ls)
            le = d.pop("le", None)
            if n == name + "_bucket" and d == labels:
                buckets.append((math.inf if le == "+Inf" else float(le), v))
        buckets.sort()
        return buckets, self.get(name + "_sum", **labels), self.get(name + "_count", **labels)


def scrape(hearth):
    r = hearth.get("/metrics")
    assert r.status_code == 200, r.text[:800]
    assert r.headers["Content-Type"] == CONTENT_TYPE
    return Scrape(r.text)


def check_histograms(s):
    """Every series of every histogram: buckets ascend and never fall,
    +Inf is there and equals _count, _sum is there."""
    for name, kind in s.types.items():
        if kind != "histogram":
            continue
        series = {frozenset((k, v) for k, v in ls if k != "le")
                  for (n, ls) in s.samples if n == name + "_bucket"}
        for ls in series:
            buckets, total, count = s.histogram(name, **dict(ls))
            values = [v for _, v in buckets]
            assert values == sorted(values), (name, ls, buckets)
            assert buckets[-1][0] == math.inf and buckets[-1][1] == count, (name, ls, buckets)
            assert total is not None and total >= 0, (name, ls)


@pytest.fixture(scope="module", autouse=True)
def warm_runtime(hearth):
    """The first python3 worker of a daemon waits for the runtime's
    template to be built: done once here, so that the tests' short
    timeout_ms and queue_timeout_ms measure what they mean to."""
    hearth.deploy_ok("mt-warmup", CODE)
    hearth.invoke_ok("mt-warmup", json={})


# ---------------------------------------------------------------------------
# the tests


def test_metrics_is_prometheus_text_with_the_daemon_series(hearth):
    """Content-Type 0.0.4, HELP and TYPE for every family, counters end in
    _total, and the daemon's own series: build info, start time, uptime,
    open connections, spawns, memory."""
    s = scrape(hearth)
    assert s.types and set(s.types) == s.helps
    for name, kind in s.types.items():
        assert name.startswith("hearth_"), name
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
    version = subprocess.run([HEARTHD, "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
    assert s.get("hearth_build_info", version=version) == 1
    assert abs(s.get("hearth_start_time_seconds") - time.time()) < 3600
    assert s.get("hearth_uptime_seconds") > 0
    assert s.get("hearth_open_connections") >= 1  # this scrape's own
    assert s.get("hearth_spawn_failures_total") == 0
    assert s.get("hearth_spawns_total") >= 0
    assert s.get("hearth_resident_memory_bytes") > 1 << 20
    later = scrape(hearth)
    assert later.get("hearth_uptime_seconds") > s.get("hearth_uptime_seconds")


def test_calls_errors_and_timeouts_are_counted_exactly(hearth):
    """Three 200s (the first a cold start), one through /fn/, a function
    error (500) and a timeout (504): each counted by code and trigger, one
    worker start in the init histogram, all in the duration histogram."""
    # 1500 ms: the first call is a cold start, which counts against it
    hearth.deploy_ok("mt-calls", CODE, timeout_ms=1500)
    before = scrape(hearth)
    assert not before.of_function("mt-calls"), "a function never called has no series"
    first = hearth.invoke_ok("mt-calls", json={})
    assert first.headers.get("X-Hearth-Cold-Start") == "1"
    hearth.invoke_ok("mt-calls", json={})
    hearth.invoke_ok("mt-calls", json={})
    r = hearth.request("GET", "/fn/mt-calls/x")
    assert r.status_code == 200, r.text
    assert_error(hearth.invoke("mt-calls", json={"do": "fail"}), 500, "function_error")
    s = scrape(hearth)
    assert s.get("hearth_workers", function="mt-calls", state="idle") == 1
    assert s.get("hearth_workers", function="mt-calls", state="busy") == 0
    assert_error(hearth.invoke("mt-calls", json={"do": "sleep", "seconds": 5}), 504, "timeout")

    s = scrape(hearth)
    inv = "hearth_invocations_total"
    assert s.get(inv, function="mt-calls", code="200", trigger="invoke") == 3
    assert s.get(inv, function="mt-calls", code="200", trigger="http") == 1
    assert s.get(inv, function="mt-calls", code="500", trigger="invoke") == 1
    assert s.get(inv, function="mt-calls", code="504", trigger="invoke") == 1
    assert sum(v for (n, ls), v in s.of_function("mt-calls").items() if n == inv) == 6
    assert s.get("hearth_timeouts_total", function="mt-calls") == 1
    assert s.get("hearth_cold_starts_total", function="mt-calls") == 1
    for code in ("429", "503"):
        assert s.get("hearth_throttled_total", function="mt-calls", code=code) == 0
    assert s.get("hearth_oom_kills_total", function="mt-calls") == 0
    assert s.get("hearth_sandbox_violations_total", function="mt-calls") == 0
    buckets, total, count = s.histogram("hearth_invocation_duration_seconds", function="mt-calls")
    assert count == 6 and total >= 1.5, (count, total)  # the timeout alone took 1.5 s
    assert dict(buckets)[1.0] <= 5  # the 504 waited its 1500 ms
    assert max(le for le, _ in buckets if le != math.inf) >= 600, "buckets must reach minutes"
    _, init_total, init_count = s.histogram("hearth_init_duration_seconds", function="mt-calls")
    assert init_count == 1 and init_total > 0
    assert s.get("hearth_spawns_total") >= init_count
    check_histograms(s)


def test_queue_full_and_queue_timeout_are_throttled(hearth):
    """max_concurrency=1, max_queue=1: with one call busy and one waiting,
    a third is 429; the waiting one is 503 after queue_timeout_ms. While
    they wait the gauges show one busy worker and a queue of one."""
    hearth.deploy_ok("mt-queue", CODE, max_concurrency=1, max_queue=1, queue_timeout_ms=1500,
                     timeout_ms=10000)
    busy = Background(hearth.invoke, "mt-queue", json={"do": "sleep", "seconds": 3})
    assert wait_until(lambda: hearth.pool("mt-queue")["busy"] == 1, 10.0)
    waiting = Background(hearth.invoke, "mt-queue", json={})
    assert wait_until(lambda: hearth.pool("mt-queue")["queued"] == 1, 1.0)
    assert_error(hearth.invoke("mt-queue", json={}), 429, "queue_full")
    s = scrape(hearth)
    assert s.get("hearth_queue_depth", function="mt-queue") == 1
    assert s.get("hearth_workers", function="mt-queue", state="busy") == 1
    assert s.get("hearth_workers", function="mt-queue", state="idle") == 0
    assert s.get("hearth_workers", function="mt-queue", state="starting") == 0
    assert_error(waiting.result(timeout=30), 503, "queue_timeout")
    assert busy.result(timeout=30).status_code == 200

    s = scrape(hearth)
    inv = "hearth_invocations_total"
    assert s.get(inv, function="mt-queue", code="200", trigger="invoke") == 1
    assert s.get(inv, function="mt-queue", code="429", trigger="invoke") == 1
    assert s.get(inv, function="mt-queue", code="503", trigger="invoke") == 1
    assert s.get("hearth_throttled_total", function="mt-queue", code="429") == 1
    assert s.get("hearth_throttled_total", function="mt-queue", code="503") == 1
    assert s.get("hearth_timeouts_total", function="mt-queue") == 0
    assert s.get("hearth_queue_depth", function="mt-queue") == 0
    assert s.get("hearth_workers", function="mt-queue", state="idle") == 1
    assert s.get("hearth_cold_starts_total", function="mt-queue") == 1
    assert s.histogram("hearth_invocation_duration_seconds", function="mt-queue")[2] == 3
    check_histograms(s)


@rootful_only("the memory cgroup that OOM-kills a worker (rootless: MemoryError instead)")
def test_out_of_memory_kill_is_counted(hearth):
    hearth.deploy_ok("mt-oom", py('''
        def handler(event, context):
            hog = []
            while True:
                hog.append(bytearray(16 << 20))
    '''), memory_mb=64, timeout_ms=20000)
    assert_error(hearth.invoke("mt-oom", json={}), 502, "out_of_memory")
    s = scrape(hearth)
    assert s.get("hearth_oom_kills_total", function="mt-oom") == 1
    assert s.get("hearth_invocations_total", function="mt-oom", code="502", trigger="invoke") == 1
    assert s.get("hearth_sandbox_violations_total", function="mt-oom") == 0


def test_sandbox_violation_is_counted(hearth):
    """ptrace is killed by seccomp (SIGSYS, 502 sandbox_violation), as in
    tests/security/test_syscalls.py."""
    hearth.deploy_ok("mt-sys", py('''
        import ctypes
        def handler(event, context):
            libc = ctypes.CDLL(None, use_errno=True)
            return libc.syscall(ctypes.c_long(101), ctypes.c_ulong(16), ctypes.c_ulong(1),
                                ctypes.c_ulong(0), ctypes.c_ulong(0))
    '''))
    assert_error(hearth.invoke("mt-sys", json={}), 502, "sandbox_violation")
    s = scrape(hearth)
    assert s.get("hearth_sandbox_violations_total", function="mt-sys") == 1
    assert s.get("hearth_invocations_total", function="mt-sys", code="502", trigger="invoke") == 1
    assert s.get("hearth_oom_kills_total", function="mt-sys") == 0


def test_a_deleted_function_has_no_series(hearth):
    hearth.deploy_ok("mt-gone", CODE)
    hearth.invoke_ok("mt-gone", json={})
    assert scrape(hearth).of_function("mt-gone")
    assert hearth.delete("mt-gone").status_code == 204
    s = scrape(hearth)
    assert not s.of_function("mt-gone"), sorted(s.of_function("mt-gone"))
    assert 'function="mt-gone"' not in s.text
    # Deployed again under the same name, it starts from zero.
    hearth.deploy_ok("mt-gone", CODE)
    hearth.invoke_ok("mt-gone", json={})
    s = scrape(hearth)
    assert s.get("hearth_invocations_total", function="mt-gone", code="200", trigger="invoke") == 1


def test_metrics_route_answers_errors_as_json(hearth):
    assert_error(hearth.request("POST", "/metrics"), 405, "method_not_allowed")
    assert_error(hearth.get("/metrics/x"), 404, "not_found")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus; "
                    "scripts/deps.sh --test installs it)")
def test_promtool_check_metrics_passes(hearth):
    hearth.deploy_ok("mt-lint", CODE)
    hearth.invoke_ok("mt-lint", json={})
    assert_error(hearth.invoke("mt-lint", json={"do": "fail"}), 500, "function_error")
    text = hearth.get("/metrics").text
    assert 'function="mt-lint"' in text
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


@rootful_only("worker uids come from --uid-range only as root")
def test_spawn_failures_are_counted(hearth_factory):
    """With a uid range of one, a second worker cannot start while the
    first lives: that start fails (one call answers 500) and counts. No
    pre-built sandboxes: they would take that uid, and count as spawns."""
    h = hearth_factory("--uid-range", "500000:1", "--prebuilt-max", "0")
    h.deploy_ok("mt-spawn", CODE, max_concurrency=2)
    calls = [Background(h.invoke, "mt-spawn", json={"do": "sleep", "seconds": 1})
             for _ in range(2)]
    codes = sorted(c.result(timeout=30).status_code for c in calls)
    assert codes == [200, 500], codes
    s = scrape(h)
    assert s.get("hearth_spawn_failures_total") == 1
    assert s.get("hearth_spawns_total") == 1
    assert s.get("hearth_invocations_total", function="mt-spawn", code="500",
                 trigger="invoke") == 1
