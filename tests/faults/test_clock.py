"""The wall clock stepped an hour back and forward, for the daemon alone
(clockshim.so; the host's clock is never touched): call deadlines,
keep-alive and async retries run on monotonic time (DESIGN.md section 8),
so none of them fires at once or waits an hour. Timings are compared with
a baseline measured in the same test, with generous factors (ASan)."""

import time

import pytest

from conftest import WallClock
from conftest import Background, Hearth, _new_base, assert_error, py, wait_until

HOUR_MS = 3600 * 1000
ASYNC = {"Prefer": "respond-async"}

SLEEPER = py("""
    import os, time
    TAG = os.urandom(8).hex()
    def handler(event, context):
        time.sleep(event.get("s", 0))
        return {"tag": TAG}
""")

FAILS = py("""
    import time
    def handler(event, context):
        print("attempt-at", time.time())
        raise RuntimeError("always fails")
""")


@pytest.fixture(scope="module")
def clocked():
    """One daemon whose wall clock the tests step; its offset is back at 0
    after each test."""
    base = _new_base()
    clock = WallClock(base / "clock-offset")
    h = Hearth(base, env=clock.env())
    h.clock = clock
    h.start()
    yield h
    h.close()


def timed_invoke(h, name, **kw):
    t0 = time.monotonic()
    r = h.invoke(name, timeout=120, **kw)
    return r, time.monotonic() - t0


def reset(h):
    with open(h.clock.path, "r+b") as f:
        f.write(b"\0" * 8)


@pytest.mark.parametrize("step", [HOUR_MS, -HOUR_MS], ids=["forward", "back"])
def test_deadline_of_a_queued_call_survives_a_step(clocked, step):
    """A call that waits in the queue while the wall clock is stepped still
    times out `timeout_ms` after it arrived: not at once when it reaches a
    worker (step forward), not an hour later (step back)."""
    h, name = clocked, "ck-deadline-%s" % ("fwd" if step > 0 else "back")
    h.deploy_ok(name, SLEEPER, timeout_ms=3000, queue_timeout_ms=3000, max_concurrency=1)
    h.invoke_ok(name, json={})  # cold start out of the way
    r, base = timed_invoke(h, name, json={"s": 60})
    assert_error(r, 504, "timeout")
    try:
        holder = Background(timed_invoke, h, name, json={"s": 1.5})
        time.sleep(0.3)
        waiter = Background(timed_invoke, h, name, json={"s": 60})
        time.sleep(0.3)
        h.clock.step(step)
        r, took = waiter.result(120)
        assert_error(r, 504, "timeout")
        # Forward: the old wall-clock deadline had passed when the worker
        # came free (about 1.5 s in): the call failed then, not at 3 s.
        assert took >= 2.5, "timed out after %.2f s, before its 3 s deadline" % took
        assert took <= base * 3 + 5, "timed out after %.2f s (baseline %.2f s)" % (took, base)
        assert holder.result(60)[0].status_code == 200
    finally:
        reset(h)
    h.invoke_ok(name, json={})  # and it serves on


def test_keep_alive_survives_steps(clocked):
    """A step either way neither stops idle workers at once nor keeps them
    past their keep-alive."""
    h, name = clocked, "ck-idle"
    h.deploy_ok(name, SLEEPER, keep_alive_s=4)
    tag = h.invoke_ok(name, json={}).json()["tag"]
    t_idle = time.monotonic()
    try:
        h.clock.step(HOUR_MS)
        time.sleep(1.5)  # the idle sweep runs every second
        assert h.pool(name)["idle"] == 1, "a step forward stopped the idle worker at once"
        h.clock.step(-2 * HOUR_MS)
        time.sleep(1.5)
        assert h.pool(name)["idle"] == 1, "a step back stopped the idle worker at once"
        assert h.invoke_ok(name, json={}).json()["tag"] == tag, "not the same worker"
        t_idle = time.monotonic()
        h.clock.step(-HOUR_MS)
        assert wait_until(lambda: h.pool(name)["idle"] == 0, 4 * 3 + 10), \
            "the idle worker outlived its 4 s keep-alive after a step back"
        gone = time.monotonic() - t_idle
        assert gone >= 3.0, "stopped %.1f s after its last call, keep-alive 4 s" % gone
    finally:
        reset(h)
    assert h.invoke_ok(name, json={}).json()["tag"] != tag


@pytest.mark.parametrize("step", [HOUR_MS, -HOUR_MS], ids=["forward", "back"])
def test_async_retries_keep_their_spacing(clocked, step):
    """An async invocation whose attempts fail is retried on its backoff
    (up to base x 2^(n-1)) whatever the wall clock does meanwhile; a step
    forward does not make it older than async_max_age_s."""
    h, name = clocked, "ck-retry-%s" % ("fwd" if step > 0 else "back")
    h.deploy_ok(name, FAILS, async_retries=2, async_retry_base_ms=1000, async_max_age_s=600)
    h.invoke(name, json={})  # the worker started, so attempts are not cold starts
    try:
        r = h.invoke(name, json={}, headers=ASYNC)
        assert r.status_code == 202, r.text
        iid = r.json()["id"]
        t0 = time.monotonic()
        assert wait_until(lambda: h.get("/v1/invocations/" + iid).json()["attempts"] >= 1, 30)
        h.clock.step(step)
        assert wait_until(
            lambda: h.get("/v1/invocations/" + iid).json()["status"] == "dead", 60)
        took = time.monotonic() - t0
        rec = h.get("/v1/invocations/" + iid).json()
        assert rec["attempts"] == 3, rec  # not given up as too old
        assert rec["error"]["code"] == "function_error", rec
        # backoffs of at most 1 s and 2 s, plus three attempts' run time
        assert took < 3 + 20, "three attempts took %.1f s" % took
    finally:
        reset(h)
    lines = [l for l in h.log_records(name) if "attempt-at" in str(l)]
    assert lines, "no attempt logged"
