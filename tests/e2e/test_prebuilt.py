"""Issue 12: pre-built, single-use sandboxes (the contract is
/work/notes/prebuilt-spec.md). The daemon keeps a pool of whole sandboxes
per runtime, built and started without a function; a cold start claims one
and specializes it for one function, for its whole life.

Tests that need the pool skip while the daemon has none (no
hearth_prebuilt_ready line in GET /metrics, or no --prebuilt-min option);
those that must hold with or without it (single use, what a sandbox sees)
run against any daemon, with the pool options when it knows them.
"""

import os
import signal
import time

import pytest
import requests

from conftest import (Background, daemon_knows, descendants, pool_args,
                      prebuilt_metrics, prebuilt_runtimes, py, spawner_pid, wait_until)

HELLO = py("""
    def handler(event, context):
        return "hello"
""")

# A slow import: a cold start of it takes a while, so it is surely in flight.
SLOW_INIT = py("""
    import time
    time.sleep(0.5)
    def handler(event, context):
        return "slow"
""")

# What a sandbox shows of itself: if two functions ever shared one, the
# second would see the first's marker, hostname, environment or root.
PROBE = py("""
    import os, socket
    def handler(event, context):
        if event.get("mark"):
            with open("/tmp/" + event["mark"], "w") as f:
                f.write("here")
        root, tmp = os.stat("/"), os.stat("/tmp")
        return {"pid": os.getpid(), "hostname": socket.gethostname(),
                "tmp": sorted(os.listdir("/tmp")), "env": sorted(os.environ),
                "root": [root.st_dev, root.st_ino], "tmpfs": [tmp.st_dev, tmp.st_ino]}
""")

DENIED = {"ENOENT", "EACCES", "EPERM", "EROFS"}

# What a worker sees at /var/task and /var/.hearth (where a pre-built
# sandbox may have staged things before the attach).
TASK_VIEW = py("""
    import errno, os
    def err(fn, *a):
        try:
            return ["ok", fn(*a)]
        except OSError as e:
            return [errno.errorcode.get(e.errno, str(e.errno)), str(e)]
    def create(p):
        with open(p, "w") as f:
            f.write("x")
    def handler(event, context):
        task_mounts = [line.split() for line in open("/proc/self/mountinfo")
                       if line.split()[4] == "/var/task"]
        return {"task": sorted(os.listdir("/var/task")),
                "var": sorted(os.listdir("/var")),
                "ro": bool(os.statvfs("/var/task").f_flag & os.ST_RDONLY),
                "mount_opts": [m[5] for m in task_mounts],
                "create": err(create, "/var/task/planted"),
                "append": err(lambda: open("/var/task/main.py", "a").write("#")),
                "hearth_dir": err(os.listdir, "/var/.hearth"),
                "hearth_file": err(lambda: open("/var/.hearth/x").read())}
""")


def needs_pool(hearth):
    """The pool of python3 now, or a skip when this daemon has none yet."""
    m = prebuilt_metrics(hearth)
    if m is None:
        pytest.skip("no pre-built pool in this hearthd yet (no hearth_prebuilt_ready "
                    "in GET /metrics)")
    return m


def pool_daemon(hearth_factory, *args, **kw):
    """A daemon started with --prebuilt-* `args`, or a skip when the
    options or the pool do not exist yet."""
    if not daemon_knows("--prebuilt-min"):
        pytest.skip("hearthd has no --prebuilt-min option yet (issue 12 not merged)")
    h = hearth_factory(*args, **kw)
    needs_pool(h)
    return h


def wait_pool(h, pred, timeout, what, seen=None):
    """Polls the python3 pool until pred(metrics) holds; asserts it did and
    returns the last sample (every sample is appended to `seen`)."""
    seen = [] if seen is None else seen

    def check():
        seen.append(prebuilt_metrics(h))
        return pred(seen[-1])

    assert wait_until(check, timeout, 0.05), "%s within %s s; last: %s" % (what, timeout, seen[-1])
    return seen[-1]


def claims(m):
    return m["claims_total"] + m["misses_total"]


def error_lines(h, since):
    """The daemon's error-level log lines after byte offset `since`."""
    return [line for line in h.stderr_text()[since:].splitlines() if " error " in line[:40]]


def assert_json_error(r):
    """A clear error answer: 5xx with the {"error": {"code", "message"}} shape."""
    assert r.status_code >= 500, "expected a 5xx, got %d: %s" % (r.status_code, r.text[:800])
    body = r.json()
    assert isinstance(body.get("error"), dict), body
    assert body["error"].get("code") and body["error"].get("message"), body
    return body["error"]


# ---------------------------------------------------------------------------
# the pool's size


def test_pool_fills_at_start(hearth_factory):
    """With the default options the python3 pool holds a ready sandbox soon
    after start, without any call, within its target; the processes are
    there, unclaimed."""
    h = hearth_factory()
    needs_pool(h)
    m = wait_pool(h, lambda m: m["ready"] >= 1, 20, "no ready pre-built python3 sandbox")
    assert 1 <= m["target"] <= 8, m
    assert m["ready"] <= m["target"], m
    assert m["claims_total"] == 0 and m["misses_total"] == 0, m
    assert wait_until(lambda: prebuilt_runtimes(h.pid), 5), "no HEARTH_PREBUILT=1 process"


def test_prebuilt_max_zero_keeps_no_pool(hearth_factory):
    """--prebuilt-max 0: nothing is built ahead, not even after cold
    starts, and cold starts still work (they spawn as before) without
    claiming anything."""
    h = pool_daemon(hearth_factory, "--prebuilt-max", "0")
    h.deploy_ok("pb-zero", HELLO)
    r = h.invoke_ok("pb-zero", json={})
    assert r.headers.get("X-Hearth-Cold-Start") == "1"
    deadline = time.monotonic() + 1.0  # a pool would have started filling by now
    while time.monotonic() < deadline:
        m = prebuilt_metrics(h)
        assert m["ready"] == 0 and m["starting"] == 0, m
        time.sleep(0.1)
    assert m["claims_total"] == 0, m
    assert m["misses_total"] == 1, m
    assert not prebuilt_runtimes(h.pid), "a pre-built sandbox with --prebuilt-max 0"


def test_a_burst_grows_the_pool_up_to_max(hearth_factory):
    """Six first calls to six functions at once: all answer, each counted as
    a claim or a miss; the pool then aims higher than the minimum and
    refills to its target, and never holds more than --prebuilt-max 4."""
    n, cap = 6, 4
    h = pool_daemon(hearth_factory, "--prebuilt-max", str(cap))
    names = ["pb-burst-%d" % i for i in range(n)]
    for name in names:
        h.deploy_ok(name, HELLO)
    before = wait_pool(h, lambda m: m["ready"] >= 1, 20, "the pool did not fill")
    samples = []
    calls = [Background(h.invoke, name, json={}) for name in names]
    while not all(c.done() for c in calls):
        samples.append(prebuilt_metrics(h))
    answers = [c.result(timeout=60) for c in calls]
    assert [a.status_code for a in answers] == [200] * n, [a.text[:300] for a in answers]
    assert all(a.headers.get("X-Hearth-Cold-Start") == "1" for a in answers)
    after = prebuilt_metrics(h)
    assert claims(after) - claims(before) == n, (before, after)

    grown = wait_pool(h, lambda m: m["target"] > 1, 10, "the target did not grow after a burst",
                      samples)
    assert grown["target"] <= cap, grown
    wait_pool(h, lambda m: m["ready"] >= m["target"] > 1, 30,
              "the pool did not refill to its target", samples)
    over = [s for s in samples if s["ready"] > cap or s["ready"] + s["starting"] > cap]
    assert not over, "more than --prebuilt-max %d: %s" % (cap, over[:5])
    # Every runtime has a pool of its own: the processes are those of all of them.
    pools = [prebuilt_metrics(h, rt) or {} for rt in ("python3", "exec", "lambda", "c", "node")]
    assert len(prebuilt_runtimes(h.pid)) <= sum(m.get("ready", 0) + m.get("starting", 0)
                                                 for m in pools)


def test_the_pool_gives_way_under_memory_pressure(hearth_factory):
    """--memory-budget 256M holds two pre-built sandboxes (128 MB each) or
    one 256 MB function: its call evicts them (it is not refused nor left
    waiting), and the pool stays empty while that worker holds the budget."""
    h = pool_daemon(hearth_factory, "--memory-budget", "256M", "--prebuilt-min", "2")
    before = wait_pool(h, lambda m: m["ready"] >= 1, 20, "the pool did not fill")
    h.deploy_ok("pb-big", HELLO, memory_mb=256, queue_timeout_ms=10000)
    r = h.invoke("pb-big", json={}, timeout=30)
    assert r.status_code == 200, "%d %s" % (r.status_code, r.text[:800])
    after = prebuilt_metrics(h)
    assert after["evictions_total"] > before["evictions_total"], (before, after)
    assert after["ready"] == 0, after
    assert h.invoke_ok("pb-big", json={}).text == 'hello'


# ---------------------------------------------------------------------------
# failures around the pool


@pytest.mark.skipif(os.geteuid() != 0, reason="reading a sandbox's /proc/<pid>/environ needs root")
def test_an_idle_prebuilt_sandbox_that_dies_is_replaced(hearth_factory):
    """SIGKILL an unclaimed pre-built runtime: the pool notices and builds a
    new one, the daemon logs no error, and a call afterwards succeeds."""
    h = hearth_factory()
    needs_pool(h)
    wait_pool(h, lambda m: m["ready"] >= 1, 20, "the pool did not fill")
    victims = wait_until(lambda: prebuilt_runtimes(h.pid), 5)
    assert victims, "no HEARTH_PREBUILT=1 process below the daemon"
    victim = min(victims)
    mark = len(h.stderr_text())
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in prebuilt_runtimes(h.pid), 5)

    def replaced():
        m = prebuilt_metrics(h)
        now = prebuilt_runtimes(h.pid)
        return m["ready"] >= 1 and now and victim not in now and len(now) >= m["ready"]
    assert wait_until(replaced, 20), (prebuilt_metrics(h), prebuilt_runtimes(h.pid), victim)
    h.deploy_ok("pb-after-kill", HELLO)
    assert h.invoke_ok("pb-after-kill", json={}).text == 'hello'
    assert h.healthy()
    assert not error_lines(h, mark), error_lines(h, mark)


def _stopped_spawner(h):
    pid = wait_until(lambda: spawner_pid(h), 5)
    assert pid, "no hearth-spawner child of hearthd %d" % h.pid
    return pid


def _wait_starting(h, name):
    """Waits until `name` has a start in flight; the daemon must answer
    meanwhile (a blocked loop fails here, fast)."""
    def starting():
        try:
            r = h.get("/v1/functions/%s" % name, timeout=2)
        except requests.RequestException as exc:
            raise AssertionError("the daemon stopped answering: %r" % exc)
        return r.json()["pool"]["starting"] >= 1
    return wait_until(starting, 5)


def test_a_stopped_spawner_does_not_block_the_daemon(hearth_factory):
    """With the spawner stopped (SIGSTOP) while a cold start waits on it, a
    warm function still answers at once: the daemon's loop never waits for
    the spawner. After SIGCONT the cold call completes (an answer or a JSON
    error), within its init_timeout_ms."""
    h = pool_daemon(hearth_factory, "--prebuilt-max", "0")
    h.deploy_ok("pb-warm", HELLO)
    h.invoke_ok("pb-warm", json={})
    h.deploy_ok("pb-cold", SLOW_INIT, init_timeout_ms=5000, timeout_ms=20000)
    spawner = _stopped_spawner(h)
    os.kill(spawner, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        cold = Background(h.invoke, "pb-cold", json={}, timeout=30)
        assert _wait_starting(h, "pb-cold"), h.show("pb-cold").json()
        for _ in range(3):
            t = time.monotonic()
            r = h.invoke("pb-warm", json={}, timeout=5)
            assert r.status_code == 200 and r.text == 'hello', r.text[:500]
            assert time.monotonic() - t < 1.0, "a warm call took %.2f s" % (time.monotonic() - t)
        assert h.healthy()
        assert not cold.done(), "the cold call ended while the spawner was stopped"
    finally:
        os.kill(spawner, signal.SIGCONT)
    r = cold.result(timeout=25)
    took = time.monotonic() - t0
    if r.status_code != 200:
        assert_json_error(r)
    assert took < 15, "the cold call took %.1f s" % took
    assert h.invoke_ok("pb-cold", json={}).text == 'slow'


def test_a_dead_spawner_ends_the_daemon_cleanly(hearth_factory):
    """SIGKILL the spawner while a spawn is in flight (stopped first, so the
    spawn surely waits on it): the call gets a JSON 5xx promptly, the daemon
    logs the cause and exits non-zero within a few seconds, and no process
    of it (pre-built sandbox, worker, init) outlives it."""
    h = pool_daemon(hearth_factory, "--prebuilt-min", "1")
    wait_pool(h, lambda m: m["ready"] >= 1, 20, "the pool did not fill")
    h.deploy_ok("pb-orphan", SLOW_INIT)
    spawner = _stopped_spawner(h)
    os.kill(spawner, signal.SIGSTOP)
    try:
        cold = Background(h.invoke, "pb-orphan", json={}, timeout=30)
        assert _wait_starting(h, "pb-orphan"), h.show("pb-orphan").json()
        procs = descendants(h.pid)
        mark = len(h.stderr_text())
    finally:
        os.kill(spawner, signal.SIGKILL)
    t0 = time.monotonic()
    try:
        r = cold.result(timeout=15)
    except requests.RequestException as exc:
        raise AssertionError("the call got no answer: %r\n%s" % (exc, h.stderr_tail()))
    assert time.monotonic() - t0 < 5, "answered after %.1f s" % (time.monotonic() - t0)
    assert_json_error(r)
    rc, left = h.wait_died(procs, timeout=10)
    log = h.stderr_text()
    assert rc is not None, "hearthd still ran 10 s after its spawner died:\n" + log[-3000:]
    assert rc != 0, "hearthd exited 0 after losing its spawner"
    assert "spawner" in log[mark:], "the log does not say why:\n" + log[mark:]
    assert not left, "processes outlived the daemon: %s" % h._describe(left)


# ---------------------------------------------------------------------------
# single use: a sandbox serves one function for its whole life


def test_a_sandbox_serves_one_function_only(hearth_factory):
    """A and B called in turn, each call a cold start (every round
    redeploys both) through a pool of exactly one: B never sees A's /tmp
    marker, hostname or environment, nobody sees HEARTH_PREBUILT, each cold
    start has an empty /tmp of its own, and two live sandboxes of A and B
    never share their root or /tmp filesystem."""
    h = hearth_factory(*pool_args("--prebuilt-min", "1", "--prebuilt-max", "1"))
    a, b = "pb-one-a", "pb-one-b"
    seen = []  # (function, answer) in call order; neighbours were alive together
    for rnd in range(5):
        for name in (a, b):
            env = {"ROUND": str(rnd)}
            if name == a:
                env["ONLY_A"] = "1"
            h.deploy_ok(name, PROBE, env=env)
            r = h.invoke_ok(name, json={"mark": name} if name == a else {})
            assert r.headers.get("X-Hearth-Cold-Start") == "1", "round %d %s not cold" % (rnd, name)
            seen.append((name, r.json()))
        if rnd == 1:  # a warm call in between changes nothing
            assert h.invoke_ok(a, json={}).json()["tmp"] == [a]
    for name, out in seen:
        assert out["hostname"] == name, (name, out)
        assert "HEARTH_PREBUILT" not in out["env"], (name, out["env"])
        if name == a:
            assert out["tmp"] == [a] and "ONLY_A" in out["env"], out
        else:
            assert out["tmp"] == [] and "ONLY_A" not in out["env"], out
    # A's worker stays (keep-alive) until A is redeployed, so each answer's
    # sandbox was alive when the next one (the other function's) started.
    for (n1, o1), (n2, o2) in zip(seen, seen[1:]):
        assert n1 != n2
        assert o1["root"] != o2["root"], "%s and %s share a root: %s" % (n1, n2, o1["root"])
        assert o1["tmpfs"] != o2["tmpfs"], "%s and %s share /tmp: %s" % (n1, n2, o1["tmpfs"])
    m = prebuilt_metrics(h)
    if m is not None:
        assert claims(m) == 10, m


def test_var_task_holds_only_its_own_code_read_only(hearth_factory):
    """In a (pre-built, then claimed) sandbox /var/task is the function's own
    code, mounted read-only, nothing else; /var holds nothing but it, and
    /var/.hearth, if a pre-built sandbox has it at all, is empty or closed."""
    h = hearth_factory(*pool_args("--prebuilt-min", "1"))
    h.deploy_ok("pb-other", HELLO)
    h.invoke_ok("pb-other", json={})
    h.deploy_ok("pb-task", files={"main.py": TASK_VIEW, "data.txt": "mine"})
    out = h.invoke_ok("pb-task", json={}).json()
    assert out["task"] == ["data.txt", "main.py"], out
    assert out["ro"], out
    assert out["mount_opts"] and all(o.split(",")[0] == "ro" for o in out["mount_opts"]), out
    assert out["create"][0] in DENIED and out["append"][0] in DENIED, out
    assert set(out["var"]) <= {"task", ".hearth"}, out["var"]
    assert out["hearth_dir"][0] in DENIED or out["hearth_dir"] == ["ok", []], out
    assert out["hearth_file"][0] in DENIED, out
    code = h.data_dir / "code" / "pb-task" / "1"
    assert sorted(os.listdir(code)) == ["data.txt", "main.py"]
