"""Processes killed under the daemon: the root spawner (the daemon cannot
start another once it has dropped root, so it stops cleanly, says why, and
exits 1 for its service manager to restart it; no call waits forever), and
a worker killed in the middle of writing its answer (a clear 5xx, and the
next call works)."""

import os
import signal
import time

import pytest
import requests

from faults_harness import (Background, alive, assert_error, descendants, py, spawner_pid,
                            wait_until)

SLEEPER = py("""
    import os, time
    TAG = os.urandom(8).hex()
    def handler(event, context):
        time.sleep(event.get("s", 0))
        return {"tag": TAG}
""")


def quiet_invoke(h, name, **kw):
    try:
        return h.invoke(name, timeout=60, **kw)
    except requests.RequestException as e:
        return e


def test_spawner_killed_stops_the_daemon_cleanly(hearth_factory):
    h = hearth_factory()
    h.deploy_ok("sp-busy", SLEEPER, max_concurrency=1, queue_timeout_ms=60000, timeout_ms=60000)
    h.invoke_ok("sp-busy", json={})
    running = Background(quiet_invoke, h, "sp-busy", json={"s": 30})
    time.sleep(0.5)
    queued = Background(quiet_invoke, h, "sp-busy", json={"s": 0})
    time.sleep(0.5)
    sp = spawner_pid(h)
    assert sp, "no spawner found"
    procs = descendants(h.pid)
    t0 = time.monotonic()
    os.kill(sp, signal.SIGKILL)
    rc, left = h.wait_died(procs, 30)
    took = time.monotonic() - t0
    assert rc == 1, "hearthd exited %r after its spawner was killed:\n%s" % (rc, h.stderr_tail())
    assert not left, "processes left: %s" % h._describe(left)
    assert took < 25, took
    text = h.stderr_text()
    assert "the spawner is gone" in text, text[-3000:]
    # Neither call waits forever: the running one and the queued one are
    # answered at once, 503 spawner_lost, before the daemon goes.
    for bg in (running, queued):
        r = bg.result(30)
        assert isinstance(r, requests.Response), r
        assert_error(r, 503, "spawner_lost")
    # A service manager would start it again: the data is all there.
    h.start()
    assert h.invoke_ok("sp-busy", json={}).json()["tag"]
