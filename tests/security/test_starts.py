"""Hostile functions against the start slots: code that never finishes
loading must not stop every other function's cold starts.

Attack (issue 9, point 1): a module that blocks forever at import never
sends READY. Before init_timeout_ms its workers held their --max-starting
slots for good, and every function that then needed a worker got 503.
Stopped by: a deadline on every start (init_timeout_ms) after which the
worker is killed, its slot freed and the calls that waited for it answered
504 init_timeout; and a fair share of the slots per function, so one that
holds them all gives one back as soon as another function needs a start.
"""

import time

from conftest import Background, assert_error, py, wait_until

HANG = py('''
    import threading
    threading.Event().wait()  # never returns: the worker never becomes ready

    def handler(event, context):
        return "unreachable"
''')
HELLO = "def handler(event, context):\n    return 'hello'\n"


def test_init_timeout_has_a_default(hearth):
    """A function that says nothing gets Lambda's 10 s init limit."""
    hearth.deploy_ok("st-default", HELLO)
    assert hearth.show("st-default").json()["init_timeout_ms"] == 10000


def test_a_hung_import_is_stopped_and_its_calls_answer_504(hearth_factory):
    """Four calls to code that never loads: each answers 504 init_timeout
    after init_timeout_ms (not 503 after queue_timeout_ms), the log says
    why, the starts are gone, and a function deployed afterwards starts."""
    h = hearth_factory("--max-starting", "4")
    h.deploy_ok("st-hang", HANG, init_timeout_ms=1500, queue_timeout_ms=20000,
                timeout_ms=30000)
    t0 = time.monotonic()
    calls = [Background(h.invoke, "st-hang", json={}, timeout=40) for _ in range(4)]
    for c in calls:
        assert_error(c.result(timeout=45), 504, "init_timeout")
    took = time.monotonic() - t0
    assert took < 15, "the calls waited %.1f s, not init_timeout_ms (1.5 s)" % took
    assert wait_until(lambda: h.pool("st-hang")["starting"] == 0, 10.0), h.pool("st-hang")
    notes = h.logs("st-hang").text
    assert "init_timeout_ms (1500 ms)" in notes, notes[-2000:]
    h.deploy_ok("st-later", HELLO)
    r = h.invoke("st-later", json={}, timeout=30)
    assert r.status_code == 200 and r.text == "hello", r.text[:500]


def test_default_init_timeout_beats_the_equal_queue_timeout(hearth):
    """With both limits equal, the call learns the real reason: the start
    timed out (504 init_timeout), not the queue (503)."""
    hearth.deploy_ok("st-tie", HANG, init_timeout_ms=1000, queue_timeout_ms=1000)
    assert_error(hearth.invoke("st-tie", json={}, timeout=30), 504, "init_timeout")


def test_a_hung_function_cannot_hold_every_start_slot(hearth_factory):
    """While a hanging function holds all four start slots (its starts last
    a minute), another function's call still gets a start at once: the
    hanging one gives back what is over its fair share."""
    h = hearth_factory("--max-starting", "4")
    h.deploy_ok("st-hog", HANG, max_concurrency=8, init_timeout_ms=60000,
                queue_timeout_ms=60000, timeout_ms=60000)
    hog = [Background(h.invoke, "st-hog", json={}, timeout=90) for _ in range(8)]
    try:
        assert wait_until(lambda: h.pool("st-hog")["starting"] == 4, 20.0), h.pool("st-hog")
        h.deploy_ok("st-victim", HELLO, queue_timeout_ms=8000)
        r = h.invoke("st-victim", json={}, timeout=30)
        assert r.status_code == 200 and r.text == "hello", r.text[:500]
        assert h.pool("st-hog")["starting"] <= 4
    finally:
        h.delete("st-hog")  # ends its waiting calls
        for c in hog:
            c.result(timeout=30)
