"""Issue point 5 (Warm reuse): same process, one import, module state kept,
concurrent requests on separate workers, updates drain the old version.

Workers are told apart by a uuid drawn at import (WORKER) as well as by pid:
pids stop being unique once workers get their own pid namespace."""

import time
import uuid

from conftest import Background, procs_with_env, py, wait_until

STATEFUL = py("""
    import builtins, os, time, uuid
    builtins._e2e_imports = getattr(builtins, "_e2e_imports", 0) + 1
    WORKER = uuid.uuid4().hex
    CALLS = 0
    print("imported", WORKER)

    def handler(event, context):
        global CALLS
        CALLS += 1
        if isinstance(event, dict) and event.get("sleep"):
            time.sleep(event["sleep"])
        return {"pid": os.getpid(), "worker": WORKER, "calls": CALLS,
                "imports": builtins._e2e_imports}
""")


def test_warm_calls_reuse_the_worker_and_its_module_state(hearth):
    hearth.deploy_ok("wm-reuse", STATEFUL)
    answers = [hearth.invoke_ok("wm-reuse", json={}) for _ in range(6)]
    bodies = [a.json() for a in answers]
    assert answers[0].headers.get("X-Hearth-Cold-Start") == "1"
    assert all("X-Hearth-Cold-Start" not in a.headers for a in answers[1:])
    assert len({b["pid"] for b in bodies}) == 1, bodies
    assert len({b["worker"] for b in bodies}) == 1, bodies
    assert [b["calls"] for b in bodies] == [1, 2, 3, 4, 5, 6], "module state lost: %s" % bodies
    assert all(b["imports"] == 1 for b in bodies), "module imported more than once: %s" % bodies
    lines = [rec for rec in hearth.log_records("wm-reuse") if rec["message"].startswith("imported ")]
    assert len(lines) == 1, lines


def test_concurrent_calls_get_separate_workers(hearth):
    hearth.deploy_ok("wm-conc", STATEFUL)
    hearth.invoke_ok("wm-conc", json={})  # one warm worker to start with
    started = time.monotonic()
    # Each call outlasts a cold start even on a loaded machine, so no worker
    # frees before the others are ready.
    calls = [Background(hearth.invoke, "wm-conc", json={"sleep": 3}) for _ in range(4)]
    answers = [c.result(timeout=30) for c in calls]
    elapsed = time.monotonic() - started
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    workers = [a.json()["worker"] for a in answers]
    assert len(set(workers)) == 4, "4 concurrent requests shared workers: %s (%.2f s)" % (
        workers, elapsed)
    # one request per worker at a time: no answer saw another request's sleep
    assert all(a.json()["calls"] in (1, 2) for a in answers), [a.json() for a in answers]
    pool = hearth.pool("wm-conc")
    assert pool["busy"] == 0 and pool["idle"] >= 1, pool


def test_update_drains_old_workers(hearth):
    mark1, mark2 = "wm-" + uuid.uuid4().hex, "wm-" + uuid.uuid4().hex
    code = py("""
        import time
        def handler(event, context):
            if event == "slow":
                time.sleep(1.5)
            return "%s"
    """)
    hearth.deploy_ok("wm-drain", code % "v1", env={"E2E_MARK": mark1})
    hearth.invoke_ok("wm-drain")  # warm
    slow = Background(hearth.invoke, "wm-drain", body="slow", headers={"Content-Type": "text/plain"})
    assert wait_until(lambda: hearth.pool("wm-drain")["busy"] == 1, 1.0)
    fn2 = hearth.deploy_ok("wm-drain", code % "v2", env={"E2E_MARK": mark2})
    assert not slow.done(), "deploy waited for the old version's requests"
    new = hearth.invoke_ok("wm-drain")
    assert new.text == "v2"
    assert new.headers["X-Hearth-Function-Version"] == str(fn2["version"])
    assert not slow.done(), "new call should not have waited for the slow one"
    old = slow.result(timeout=10)
    assert old.status_code == 200 and old.text == "v1", old.text
    assert old.headers["X-Hearth-Function-Version"] == str(fn2["version"] - 1)
    # the old version's worker goes away once its request is done
    assert wait_until(lambda: not procs_with_env(mark1), 3.0), \
        "v1 workers still running after the update drained: %s" % procs_with_env(mark1)
    assert procs_with_env(mark2), "v2 worker should stay warm"
    for _ in range(3):
        assert hearth.invoke_ok("wm-drain").text == "v2"
