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

from conftest import (Background, alive, assert_error, descendants, py, spawner_pid,
                      wait_until)

SLEEPER = py("""
    import os, time
    TAG = os.urandom(8).hex()
    def handler(event, context):
        time.sleep(event.get("s", 0))
        return {"tag": TAG}
""")

SLOW_START = py("""
    import time
    time.sleep(30)
    def handler(event, context):
        return {}
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
    # and one waiting for a worker that is still starting
    h.deploy_ok("sp-cold", SLOW_START, init_timeout_ms=60000, timeout_ms=60000)
    starting = Background(quiet_invoke, h, "sp-cold", json={})
    assert wait_until(lambda: h.pool("sp-cold")["starting"] >= 1, 10), \
        h.show("sp-cold").json()
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
    # No call waits forever: the running one, the queued one and the one
    # waiting for a start are answered at once, 503 spawner_lost, before
    # the daemon goes.
    for bg in (running, queued, starting):
        r = bg.result(30)
        assert isinstance(r, requests.Response), r
        assert_error(r, 503, "spawner_lost")
    # A service manager would start it again: the data is all there.
    h.start()
    assert h.invoke_ok("sp-busy", json={}).json()["tag"]


# Writes a RESULT frame header for a 4 MiB body straight to the control
# socket, 1 MiB of that body, then is killed: a truncated frame.
TRUNCATED = py("""
    import json, os, signal, struct
    def handler(event, context):
        if event.get("ok"):
            return {"ok": True}
        meta = json.dumps({"content_type": "application/octet-stream"}).encode()
        os.write(3, struct.pack(">BBHII", 0x48, 3, 0, len(meta), 4 << 20) + meta)
        chunk = b"x" * (1 << 20)
        sent = 0
        while sent < len(chunk):
            sent += os.write(3, chunk[sent:])
        os.kill(os.getpid(), signal.SIGKILL)
""")

# A big answer (4 MiB: under --max-response's 6 MiB, so that one written
# whole is a 200), and a thread that SIGKILLs the worker while the runtime is
# writing it (when it lands depends on the scheduler: before, during or
# after the write).
BIG_THEN_KILLED = py("""
    import os, signal, threading, time
    def handler(event, context):
        if event.get("ok"):
            return "ok"
        delay = event["delay"]
        threading.Thread(target=lambda: (time.sleep(delay), os.kill(os.getpid(), signal.SIGKILL)),
                         daemon=True).start()
        return "y" * (4 << 20)
""")


def test_worker_killed_inside_its_answer_frame(hearth_factory):
    h = hearth_factory()
    h.deploy_ok("wk-trunc", TRUNCATED)
    for _ in range(3):
        r = h.invoke("wk-trunc", json={}, timeout=60)
        assert_error(r, 502, "function_crashed")
        assert h.invoke_ok("wk-trunc", json={"ok": True}).json() == {"ok": True}
    assert h.healthy()


def test_worker_killed_while_writing_a_big_answer(hearth_factory):
    """Whatever the moment of the kill, the call gets the whole answer or a
    502 function_crashed, never a cut one; the next call works."""
    h = hearth_factory()
    h.deploy_ok("wk-big", BIG_THEN_KILLED, memory_mb=256)
    seen = set()
    for delay in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1):
        r = h.invoke("wk-big", json={"delay": delay}, timeout=60)
        if r.status_code == 200:
            assert r.content.strip(b'"') == b"y" * (4 << 20), len(r.content)
            # The kill is still to come; the next call must not race it.
            assert wait_until(lambda: h.live_workers("wk-big") == 0, 10)
        else:
            assert_error(r, 502, "function_crashed")
        seen.add(r.status_code)
        assert h.invoke_ok("wk-big", json={"ok": True}).text.strip('"') == "ok"
    assert 502 in seen, seen
    assert h.healthy()
