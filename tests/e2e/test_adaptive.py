"""Adaptive keep-alive ("keep_alive": "adaptive"): the function's idle times
are learnt (the hybrid histogram of "Serverless in the Wild"), and once they
are regular the worker is released right after each call and started again
just before the next one is due. Bins are shortened with --adaptive-bin-ms
so that a test takes seconds, not hours."""

import time

from conftest import assert_error, py

HELLO = py("""
    def handler(event, context):
        return "ok"
""")

BIN_MS = 50
PERIOD = 1.5  # seconds between calls: bin 30
LEARN = 12  # calls; the policy needs 10 idle times before it trusts them


def call_every(h, name, period, n):
    """n calls, one every `period` s; returns the answers."""
    answers = []
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i * period - time.monotonic()))
        answers.append(h.invoke_ok(name, json={}))
    return answers


def test_regular_calls_release_early_and_prewarm_before_the_next(hearth_factory):
    """After a dozen calls 1.5 s apart, the worker goes soon after each call
    (not after keep_alive_s = 60 s, as a fixed keep-alive would keep it),
    comes back before the next call is due, and that call is warm."""
    h = hearth_factory("--adaptive-bin-ms", str(BIN_MS))
    h.deploy_ok("ka-regular", HELLO, keep_alive="adaptive", keep_alive_s=60)
    h.deploy_ok("ka-fixed", HELLO, keep_alive_s=60)
    assert h.show("ka-regular").json()["keep_alive"] == "adaptive"
    assert h.show("ka-fixed").json()["keep_alive"] == "fixed"

    call_every(h, "ka-regular", PERIOD, LEARN)
    decision = h.pool("ka-regular")["adaptive"]
    assert decision["decided_by"] == "histogram", decision
    # head: about bin 30 (1500 ms) less 10%; tail: about the end of bin 30
    # plus 10% (a late call moves either by a bin)
    assert 1200 <= decision["prewarm_after_ms"] <= 1350, decision
    assert 1550 <= decision["prewarm_after_ms"] + decision["window_ms"] <= 1800, decision

    warm = 0
    for _ in range(3):
        last = time.monotonic()
        time.sleep(0.7)
        assert h.live_workers("ka-regular") == 0, \
            "not released between calls: %s" % h.pool("ka-regular")
        time.sleep(max(0.0, last + 1.47 - time.monotonic()))
        assert h.live_workers("ka-regular") >= 1, "not pre-warmed before the call: %s" % h.pool(
            "ka-regular")
        time.sleep(max(0.0, last + PERIOD - time.monotonic()))
        r = h.invoke_ok("ka-regular", json={})
        warm += "X-Hearth-Cold-Start" not in r.headers
    assert warm >= 2, "predicted calls should find their worker started (%d of 3 warm)" % warm

    # The fixed policy, meanwhile, keeps its worker long after its call.
    h.invoke_ok("ka-fixed", json={})
    time.sleep(0.7)
    assert h.live_workers("ka-fixed") == 1


def test_irregular_calls_fall_back_to_the_fixed_keep_alive(hearth_factory):
    """Too few idle times to trust: the policy says so, and the worker stays
    for keep_alive_s like a fixed one."""
    h = hearth_factory("--adaptive-bin-ms", str(BIN_MS))
    h.deploy_ok("ka-few", HELLO, keep_alive="adaptive", keep_alive_s=60)
    call_every(h, "ka-few", 0.3, 3)
    decision = h.pool("ka-few")["adaptive"]
    assert decision["decided_by"] == "few_samples", decision
    assert decision["prewarm_after_ms"] == 0 and decision["window_ms"] == 60000, decision
    time.sleep(0.5)
    assert h.live_workers("ka-few") == 1


def test_keep_alive_takes_fixed_or_adaptive(hearth):
    """Anything else is a clear 400, and the stored version stays."""
    hearth.deploy_ok("ka-bad", HELLO)
    for value in ("sometimes", 1, None, ""):
        r = hearth.deploy("ka-bad", files={"main.py": "x = 1\n"}, keep_alive=value)
        assert_error(r, 400, "invalid_field")
    assert hearth.show("ka-bad").json()["version"] == 1
