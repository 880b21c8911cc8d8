"""The global memory budget: the memory_mb of all live workers stays under
--memory-budget. A worker that does not fit makes idle workers of other
functions stop, in Greedy-Dual order (called often, slow to start or small
stays warm), never a busy one nor one kept for min_instances; with nothing
to evict, the call waits."""

import subprocess

import pytest

from conftest import HEARTHD, Background, assert_error, py, wait_until

HELLO = py("""
    import time, uuid
    WORKER = uuid.uuid4().hex

    def handler(event, context):
        if isinstance(event, dict) and event.get("sleep"):
            time.sleep(event["sleep"])
        return {"worker": WORKER}
""")

BUDGET = "256M"  # two workers of 128 MB


@pytest.fixture
def tight(hearth_factory):
    return hearth_factory("--memory-budget", BUDGET)


def test_the_least_valuable_idle_worker_makes_room(tight):
    """With the budget full of idle workers, a third function's call evicts
    the one called least (Greedy-Dual: fewer calls, same cost and size) and
    keeps the busy-ish favourite warm."""
    for name in ("mb-often", "mb-once", "mb-new"):
        tight.deploy_ok(name, HELLO, memory_mb=128)
    for _ in range(5):
        tight.invoke_ok("mb-often", json={})
    tight.invoke_ok("mb-once", json={})
    assert tight.live_workers("mb-often") == 1 and tight.live_workers("mb-once") == 1
    r = tight.invoke_ok("mb-new", json={})
    assert r.headers.get("X-Hearth-Cold-Start") == "1"
    assert wait_until(lambda: tight.live_workers("mb-once") == 0, 5), tight.show("mb-once").json()
    assert tight.live_workers("mb-often") == 1, "the often-called function lost its worker"
    again = tight.invoke_ok("mb-often", json={})
    assert "X-Hearth-Cold-Start" not in again.headers


def test_min_instances_are_never_evicted(tight):
    """A pre-warmed worker stays even when it is the least used one."""
    tight.deploy_ok("mb-kept", HELLO, memory_mb=128, min_instances=1)
    assert wait_until(lambda: tight.pool("mb-kept")["idle"] == 1, 10)
    tight.deploy_ok("mb-a", HELLO, memory_mb=128)
    tight.deploy_ok("mb-b", HELLO, memory_mb=128)
    for _ in range(3):
        tight.invoke_ok("mb-a", json={})
    tight.invoke_ok("mb-b", json={})  # must evict mb-a, the only one it may
    assert wait_until(lambda: tight.live_workers("mb-a") == 0, 5), tight.show("mb-a").json()
    assert tight.live_workers("mb-kept") == 1


def test_with_every_worker_busy_the_call_waits_then_runs(tight):
    """Busy workers are never evicted: the third function's call waits until
    one of them is idle, then takes its memory."""
    tight.deploy_ok("mb-busy1", HELLO, memory_mb=128)
    tight.deploy_ok("mb-busy2", HELLO, memory_mb=128)
    tight.deploy_ok("mb-late", HELLO, memory_mb=128)
    slow = [Background(tight.invoke, n, json={"sleep": 1.5}) for n in ("mb-busy1", "mb-busy2")]
    assert wait_until(lambda: tight.pool("mb-busy1")["busy"] == 1 and
                      tight.pool("mb-busy2")["busy"] == 1, 10)
    late = Background(tight.invoke, "mb-late", json={})
    assert wait_until(lambda: tight.pool("mb-late")["queued"] == 1, 5)
    assert not late.done(), "the call should wait while both workers are busy"
    assert all(s.result(timeout=30).status_code == 200 for s in slow)
    r = late.result(timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Hearth-Cold-Start") == "1"


def test_a_function_bigger_than_the_budget_is_refused(tight):
    """memory_mb above the whole budget can never run: 503 overloaded, which
    names the budget, instead of waiting forever."""
    tight.deploy_ok("mb-huge", HELLO, memory_mb=512)
    r = tight.invoke("mb-huge", json={})
    assert_error(r, 503, "overloaded")
    assert "--memory-budget" in r.json()["error"]["message"]


def test_bad_budget_is_a_usage_error():
    """A budget below one small worker is refused at start, naming the flag."""
    p = subprocess.run([HEARTHD, "--memory-budget", "1M"], capture_output=True, timeout=10)
    assert p.returncode != 0
    assert b"memory-budget" in p.stdout + p.stderr


def test_start_says_the_budget(tight):
    """The daemon says at start what budget it schedules within."""
    assert "sum to at most 256 MB" in tight.stderr_text()
