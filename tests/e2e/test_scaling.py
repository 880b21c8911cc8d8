"""Per-function scheduling settings: max_concurrency, min_instances,
max_queue, queue_timeout_ms and keep_alive_s, and the pool counters that
show them at work (GET /v1/functions/{name} -> "pool").

Workers are told apart by a uuid drawn at import (WORKER), not by pid:
inside their own pid namespace every worker may see the same pid."""

import os
import signal
import threading
import time
import uuid

from conftest import (Background, assert_error, procs_with_env, py, targz, wait_until,
                      workers_held)

SETTINGS = ("max_concurrency", "min_instances", "max_queue", "queue_timeout_ms", "keep_alive_s")
DEFAULTS = {"max_concurrency": 10, "min_instances": 0, "max_queue": 100,
            "queue_timeout_ms": 10000, "keep_alive_s": 600}
POOL_KEYS = {"starting", "idle", "busy", "queued", "cold_starts", "warm_starts"}

# Sleeps event["sleep"] seconds (when given) and reports which worker served
# the call; `init` seconds of sleep at import make a slow cold start.
WORKER_CODE = """
    import os, time, uuid
    time.sleep(%(init)s)
    WORKER = uuid.uuid4().hex

    def handler(event, context):
        if isinstance(event, dict) and event.get("sleep"):
            time.sleep(event["sleep"])
        return {"worker": WORKER, "pid": os.getpid(),
                "id": event.get("id") if isinstance(event, dict) else None}
"""


def worker_code(init=0):
    return WORKER_CODE % {"init": init}


def settings_of(fn):
    return {k: fn.get(k) for k in SETTINGS}


def watch_pool(h, name, calls):
    """Polls the pool while any of `calls` (Background) runs; returns the samples."""
    samples = []
    while not all(c.done() for c in calls):
        samples.append(h.pool(name))
    return samples


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2:].split()[1])


def runtimes(mark):
    """Host pids of the runtime processes of the workers marked `mark`: with
    a sandbox init in front of each runtime both carry the marker, and the
    runtime is the one whose parent is marked too."""
    pids = procs_with_env(mark)
    marked = set(pids)
    children = [p for p in pids if _ppid(p) in marked]
    return set(children or pids)


# ---------------------------------------------------------------------------
# 1. settings: defaults, round trip, validation, query-parameter form


def test_defaults_are_shown_with_the_pool(hearth):
    """A function deployed without scheduling settings shows the documented
    defaults (max_queue and keep_alive_s as the daemon's --max-queue 100 and
    --keep-alive 600) and a pool with all six counters."""
    fn = hearth.deploy_ok("sc-defaults", worker_code())
    assert settings_of(fn) == DEFAULTS, fn
    shown = hearth.show("sc-defaults").json()
    assert settings_of(shown) == DEFAULTS, shown
    assert set(shown["pool"]) >= POOL_KEYS, shown["pool"]
    assert all(isinstance(shown["pool"][k], int) for k in POOL_KEYS), shown["pool"]
    assert shown["pool"]["cold_starts"] == 0 and shown["pool"]["warm_starts"] == 0, shown


def test_settings_round_trip_and_bounds(hearth):
    """What a deploy sets is what GET shows, at both ends of every range; a
    redeploy that leaves a setting out gets its default back."""
    upper = {"max_concurrency": 1000, "min_instances": 0, "max_queue": 10000,
             "queue_timeout_ms": 900000, "keep_alive_s": 86400}
    lower = {"max_concurrency": 1, "min_instances": 0, "max_queue": 0,
             "queue_timeout_ms": 1, "keep_alive_s": 0}
    chosen = {"max_concurrency": 7, "min_instances": 1, "max_queue": 5,
              "queue_timeout_ms": 2500, "keep_alive_s": 30}
    for want in (upper, lower, chosen):
        fn = hearth.deploy_ok("sc-roundtrip", worker_code(), **want)
        assert settings_of(fn) == want, fn
        assert settings_of(hearth.show("sc-roundtrip").json()) == want
    fn = hearth.deploy_ok("sc-roundtrip", worker_code())
    assert settings_of(fn) == DEFAULTS, fn
    assert fn["version"] == 4


def test_invalid_settings_are_refused_and_keep_the_old_version(hearth):
    """An out-of-range, non-integer or contradictory setting is 400
    invalid_field and changes nothing: the last good version stays current
    with its settings."""
    good = {"max_concurrency": 3, "min_instances": 0, "max_queue": 4,
            "queue_timeout_ms": 1500, "keep_alive_s": 20}
    fn = hearth.deploy_ok("sc-invalid", worker_code(), **good)
    bad = [
        {"max_concurrency": 0}, {"max_concurrency": 1001}, {"max_concurrency": -1},
        {"min_instances": -1}, {"min_instances": 101, "max_concurrency": 1000},
        {"max_queue": -1}, {"max_queue": 10001},
        {"queue_timeout_ms": 0}, {"queue_timeout_ms": 900001},
        {"keep_alive_s": -1}, {"keep_alive_s": 86401},
        {"max_concurrency": 2, "min_instances": 3},
        {"min_instances": 11},  # above the default max_concurrency of 10
        {"max_concurrency": "5"}, {"max_queue": "10"}, {"keep_alive_s": 1.5},
        {"queue_timeout_ms": True}, {"min_instances": [1]},
    ]
    for settings in bad:
        r = hearth.deploy("sc-invalid", files={"main.py": py(worker_code())}, **settings)
        assert_error(r, 400, "invalid_field")
    shown = hearth.show("sc-invalid").json()
    assert shown["version"] == fn["version"], shown
    assert settings_of(shown) == good, shown


def test_settings_as_query_parameters_with_a_raw_archive(hearth):
    """A raw .tar.gz deploy takes the same settings as query parameters,
    checked the same way."""
    data = targz({"main.py": py(worker_code())})
    want = {"max_concurrency": 4, "min_instances": 1, "max_queue": 9,
            "queue_timeout_ms": 7777, "keep_alive_s": 45}
    r = hearth.deploy_raw("sc-query", data, "application/gzip", runtime="python3",
                          handler="main.handler", **{k: str(v) for k, v in want.items()})
    assert r.status_code == 201, r.text[:800]
    assert settings_of(r.json()) == want, r.text
    version = r.json()["version"]
    for settings in ({"max_concurrency": "abc"}, {"max_concurrency": "0"},
                     {"max_queue": "10001"}, {"queue_timeout_ms": "1.5"},
                     {"keep_alive_s": "-1"}, {"max_concurrency": "2", "min_instances": "3"},
                     {"min_instances": "101"}, {"max_concurrency": ""}):
        r = hearth.deploy_raw("sc-query", data, "application/gzip", runtime="python3",
                              handler="main.handler", **settings)
        assert_error(r, 400, "invalid_query")
    shown = hearth.show("sc-query").json()
    assert shown["version"] == version and settings_of(shown) == want, shown
    assert hearth.invoke_ok("sc-query", json={}).json()["worker"]


def test_max_queue_and_keep_alive_default_to_the_daemon_flags(hearth_factory):
    """Without a per-function value, max_queue and keep_alive_s are the
    daemon's --max-queue and --keep-alive; a function's own value wins."""
    h = hearth_factory("--max-queue", "7", "--keep-alive", "42")
    fn = h.deploy_ok("sc-inherit", worker_code())
    assert fn["max_queue"] == 7 and fn["keep_alive_s"] == 42, fn
    fn = h.deploy_ok("sc-inherit", worker_code(), max_queue=3, keep_alive_s=5)
    assert fn["max_queue"] == 3 and fn["keep_alive_s"] == 5, fn
    shown = h.show("sc-inherit").json()
    assert shown["max_queue"] == 3 and shown["keep_alive_s"] == 5, shown


# ---------------------------------------------------------------------------
# 2-4. scaling out, parallel cold starts, no loss under load


def test_scale_out_is_capped_by_max_concurrency(hearth):
    """Six concurrent calls on max_concurrency=3 all succeed on at most three
    workers; the pool never holds more than three while they run."""
    hearth.deploy_ok("sc-out", worker_code(), max_concurrency=3)
    calls = [Background(hearth.invoke, "sc-out", json={"sleep": 0.6}) for _ in range(6)]
    samples = watch_pool(hearth, "sc-out", calls)
    answers = [c.result(timeout=30) for c in calls]
    assert all(a.status_code == 200 for a in answers), [a.text[:300] for a in answers]
    workers = {a.json()["worker"] for a in answers}
    assert 1 <= len(workers) <= 3, workers
    over = [s for s in samples if workers_held(s) > 3]
    assert not over, "more than max_concurrency workers: %s" % over[:5]
    # while three run, the other three wait for them
    assert any(s["busy"] == 3 and s["queued"] == 3 for s in samples), samples[-40:]


def test_a_burst_starts_workers_in_parallel(hearth):
    """Four calls arriving together on a function with a slow init get four
    workers started at the same time, and each answer says it was cold."""
    hearth.deploy_ok("sc-burst", worker_code(init=0.8), max_concurrency=4)
    # The calls take a while so that the first worker ready cannot serve
    # them all before the others finish their init.
    calls = [Background(hearth.invoke, "sc-burst", json={"sleep": 1.0}) for _ in range(4)]
    samples = watch_pool(hearth, "sc-burst", calls)
    answers = [c.result(timeout=30) for c in calls]
    assert all(a.status_code == 200 for a in answers), [a.text[:300] for a in answers]
    assert len({a.json()["worker"] for a in answers}) == 4, [a.json() for a in answers]
    assert all(a.headers.get("X-Hearth-Cold-Start") == "1" for a in answers), \
        [dict(a.headers) for a in answers]
    assert max(s["starting"] for s in samples) == 4, \
        "the workers did not start in parallel: %s" % samples[:40]
    p = hearth.pool("sc-burst")
    assert p["cold_starts"] == 4 and p["warm_starts"] == 0, p


def test_500_concurrent_calls_are_each_answered_once(hearth):
    """500 requests in flight at once on max_concurrency=8 all succeed, and
    each gets its own answer: none lost, none answered twice or swapped."""
    n = 500
    hearth.deploy_ok("sc-load", worker_code(), max_concurrency=8, max_queue=1000,
                     queue_timeout_ms=120000, timeout_ms=120000)
    ids = [uuid.uuid4().hex for _ in range(n)]
    results = [None] * n
    gate = threading.Barrier(n + 1, timeout=60)

    def one(i):
        try:
            gate.wait()
            # 200 ms each: 8 workers need 12.5 s for all, so the requests pile
            # up even when the client takes seconds to send them (it did in CI)
            results[i] = hearth.invoke("sc-load", json={"id": ids[i], "sleep": 0.2},
                                       timeout=120)
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    gate.wait()
    samples = []
    while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 150:
        samples.append(hearth.pool("sc-load"))
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    errors = [r for r in results if not hasattr(r, "status_code")]
    assert not errors, "%d calls raised or never ended, e.g. %r" % (len(errors), errors[:3])
    statuses = [r.status_code for r in results]
    assert statuses == [200] * n, "not all 200 (%.1f s): %s" % (
        elapsed, sorted(set((r.status_code, r.text[:200]) for r in results if r.status_code != 200)))
    got = [r.json()["id"] for r in results]
    assert got == ids, "answers swapped between requests"
    over = [s for s in samples if workers_held(s) > 8]
    assert not over, over[:5]
    p = hearth.pool("sc-load")
    assert p["cold_starts"] + p["warm_starts"] == n, p
    # The premise: the requests really were in flight together (280-480
    # waited at once when this was written; far fewer means the client
    # serialised them, not that the daemon is wrong).
    peak = max([s["queued"] for s in samples] or [0])
    assert peak >= 50, "at most %d requests waited at once (%.1f s)" % (peak, elapsed)


# ---------------------------------------------------------------------------
# 5-6. queue limits: 429 queue_full, 503 queue_timeout, 504 timeout first


def test_full_queue_is_429_with_retry_after(hearth):
    """With max_concurrency=1 and max_queue=2, a call arriving while one runs
    and two wait is refused at once with 429 queue_full and Retry-After; the
    three accepted calls are all answered."""
    hearth.deploy_ok("sc-full", worker_code(), max_concurrency=1, max_queue=2)
    first = Background(hearth.invoke, "sc-full", json={"sleep": 1.5})
    assert wait_until(lambda: hearth.pool("sc-full")["busy"] == 1, 10.0), hearth.pool("sc-full")
    waiting = [Background(hearth.invoke, "sc-full", json={"sleep": 0.1}) for _ in range(2)]
    assert wait_until(lambda: hearth.pool("sc-full")["queued"] == 2, 1.2), hearth.pool("sc-full")
    r = hearth.invoke("sc-full", json={})
    assert_error(r, 429, "queue_full")
    retry = r.headers.get("Retry-After", "")
    assert retry.isdigit() and int(retry) >= 1, "Retry-After: %r" % retry
    assert not first.done(), "the first call ended before the 4th was refused"
    answers = [c.result(timeout=30) for c in [first] + waiting]
    assert [a.status_code for a in answers] == [200] * 3, [a.text[:300] for a in answers]
    assert hearth.pool("sc-full")["queued"] == 0


def test_max_queue_zero_still_serves_a_cold_call(hearth):
    """max_queue=0 means no call may wait beyond capacity: a cold call still
    gets its worker, a second call while the only worker is busy is 429."""
    hearth.deploy_ok("sc-noqueue", worker_code(), max_concurrency=1, max_queue=0)
    first = Background(hearth.invoke, "sc-noqueue", json={"sleep": 1.0})
    assert wait_until(lambda: hearth.pool("sc-noqueue")["busy"] == 1, 10.0)
    assert_error(hearth.invoke("sc-noqueue", json={}), 429, "queue_full")
    assert first.result(timeout=30).status_code == 200
    hearth.invoke_ok("sc-noqueue", json={})


def test_queue_timeout_is_503(hearth):
    """A call that cannot get a worker within queue_timeout_ms is answered
    503 queue_timeout then, not when the busy worker frees."""
    hearth.deploy_ok("sc-qto", worker_code(), max_concurrency=1, queue_timeout_ms=300,
                     timeout_ms=10000)
    first = Background(hearth.invoke, "sc-qto", json={"sleep": 2})
    assert wait_until(lambda: hearth.pool("sc-qto")["busy"] == 1, 10.0)
    t0 = time.monotonic()
    r = hearth.invoke("sc-qto", json={})
    waited = time.monotonic() - t0
    assert_error(r, 503, "queue_timeout")
    assert not first.done(), "503 came only after the busy call finished"
    assert waited >= 0.25, "refused after %.3f s, before queue_timeout_ms=300" % waited
    assert first.result(timeout=30).status_code == 200
    assert hearth.pool("sc-qto")["queued"] == 0


def test_queue_timeout_includes_the_cold_start(hearth):
    """The wait for a worker that is still starting counts against
    queue_timeout_ms: a 1.5 s init with queue_timeout_ms=300 is 503."""
    hearth.deploy_ok("sc-qto-cold", worker_code(init=1.5), queue_timeout_ms=300,
                     timeout_ms=10000)
    assert_error(hearth.invoke("sc-qto-cold", json={}), 503, "queue_timeout")


def test_a_shorter_timeout_ms_answers_504_first(hearth):
    """timeout_ms counts from arrival: shorter than queue_timeout_ms, it ends
    a call still waiting for its (slow) worker with 504 timeout."""
    hearth.deploy_ok("sc-to-first", worker_code(init=1.5), queue_timeout_ms=5000,
                     timeout_ms=300)
    assert_error(hearth.invoke("sc-to-first", json={}), 504, "timeout")


# ---------------------------------------------------------------------------
# 7-9. scale to zero, pre-warming, counters


def test_idle_workers_stop_after_keep_alive(hearth):
    """keep_alive_s=1: the worker stops about a second after its call (its
    processes gone) and the next call is a cold start; a function with a
    longer keep_alive_s keeps its worker meanwhile."""
    mark = "sc-" + uuid.uuid4().hex
    hearth.deploy_ok("sc-ka-short", worker_code(), keep_alive_s=1, env={"E2E_MARK": mark})
    hearth.deploy_ok("sc-ka-long", worker_code(), keep_alive_s=60)
    hearth.invoke_ok("sc-ka-long", json={})
    hearth.invoke_ok("sc-ka-short", json={})
    assert hearth.pool("sc-ka-short")["idle"] == 1, "stopped before keep_alive_s"
    assert wait_until(lambda: hearth.live_workers("sc-ka-short") == 0, 5.0), \
        hearth.pool("sc-ka-short")
    assert wait_until(lambda: not procs_with_env(mark), 3.0), procs_with_env(mark)
    assert hearth.pool("sc-ka-long")["idle"] == 1, hearth.pool("sc-ka-long")
    r = hearth.invoke_ok("sc-ka-short", json={})
    assert r.headers.get("X-Hearth-Cold-Start") == "1", dict(r.headers)


def test_workers_beyond_min_instances_stop_when_idle(hearth):
    """With min_instances=1 and keep_alive_s=1, the extra workers a burst
    started stop once idle; the min_instances one stays."""
    mark = "sc-" + uuid.uuid4().hex
    hearth.deploy_ok("sc-min-extra", worker_code(), min_instances=1, max_concurrency=3,
                     keep_alive_s=1, env={"E2E_MARK": mark})
    assert wait_until(lambda: hearth.pool("sc-min-extra")["idle"] == 1, 10.0)
    calls = [Background(hearth.invoke, "sc-min-extra", json={"sleep": 0.5}) for _ in range(3)]
    answers = [c.result(timeout=30) for c in calls]
    assert all(a.status_code == 200 for a in answers)
    assert len({a.json()["worker"] for a in answers}) == 3
    assert wait_until(lambda: hearth.live_workers("sc-min-extra") == 1
                      and len(runtimes(mark)) == 1, 6.0), \
        (hearth.pool("sc-min-extra"), runtimes(mark))
    kept = runtimes(mark)
    time.sleep(2.5)  # past keep_alive_s and a sweep: the last one must not go
    assert hearth.pool("sc-min-extra")["idle"] == 1, hearth.pool("sc-min-extra")
    assert runtimes(mark) == kept, "the kept worker was stopped and replaced"


def test_min_instances_are_kept_warm_through_idle_crash_and_restart(fresh_hearth):
    """min_instances=2 starts two workers at deploy without any call, serves
    the first call warm, keeps them past keep_alive_s, replaces one that
    crashes and starts them again after a daemon restart."""
    h = fresh_hearth
    mark = "sc-" + uuid.uuid4().hex
    h.deploy_ok("sc-prewarm", worker_code(), min_instances=2, keep_alive_s=1,
                env={"E2E_MARK": mark})
    assert wait_until(lambda: h.pool("sc-prewarm")["idle"] == 2, 10.0), h.pool("sc-prewarm")
    assert wait_until(lambda: len(runtimes(mark)) == 2, 3.0), runtimes(mark)
    r = h.invoke_ok("sc-prewarm", json={})
    assert "X-Hearth-Cold-Start" not in r.headers, dict(r.headers)
    p = h.pool("sc-prewarm")
    assert p["cold_starts"] == 0 and p["warm_starts"] == 1, p

    before = runtimes(mark)
    time.sleep(3)  # three times keep_alive_s
    p = h.pool("sc-prewarm")
    assert p["idle"] == 2 and workers_held(p) == 2, p
    assert runtimes(mark) == before, "the kept workers were replaced: %s -> %s" % (
        before, runtimes(mark))

    victim = max(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in runtimes(mark) and len(runtimes(mark)) == 2
                      and h.pool("sc-prewarm")["idle"] == 2, 10.0), \
        (victim, runtimes(mark), h.pool("sc-prewarm"))

    h.restart()
    assert wait_until(lambda: h.pool("sc-prewarm")["idle"] == 2, 10.0), h.pool("sc-prewarm")
    assert wait_until(lambda: len(runtimes(mark)) == 2, 3.0), runtimes(mark)
    r = h.invoke_ok("sc-prewarm", json={})
    assert "X-Hearth-Cold-Start" not in r.headers, dict(r.headers)


def test_cold_and_warm_starts_are_counted(hearth):
    """One cold call and two warm ones show as cold_starts 1, warm_starts 2,
    matching the X-Hearth-Cold-Start headers."""
    hearth.deploy_ok("sc-count", worker_code())
    answers = [hearth.invoke_ok("sc-count", json={}) for _ in range(3)]
    assert answers[0].headers.get("X-Hearth-Cold-Start") == "1"
    assert all("X-Hearth-Cold-Start" not in a.headers for a in answers[1:])
    p = hearth.pool("sc-count")
    assert p["cold_starts"] == 1 and p["warm_starts"] == 2, p


def test_no_function_starves_at_the_max_workers_cap(hearth_factory):
    """With every worker slot taken by idle workers of other functions, each
    waiting function gets one evicted for it in turn: with --max-workers 1,
    two functions called at once behind a third's idle worker both answer,
    neither waits out its queue_timeout_ms."""
    h = hearth_factory("--max-workers", "1")
    hello = py("""
        def handler(event, context):
            return "ok"
    """)
    for name in ("cap-a", "cap-b", "cap-c"):
        h.deploy_ok(name, hello, queue_timeout_ms=5000)
    h.invoke_ok("cap-a", json={})  # its idle worker holds the only slot
    calls = [Background(h.invoke, name, json={}) for name in ("cap-b", "cap-c")]
    answers = [c.result(timeout=30) for c in calls]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]


def test_starts_are_capped_by_max_starting(hearth_factory):
    """--max-starting 2: a burst of 6 calls to a function that may have 6
    workers never has more than 2 starting at once (starts share the CPUs;
    the first ones ready answer sooner), and all 6 calls are answered, by
    workers started as earlier ones became ready."""
    h = hearth_factory("--max-starting", "2")
    assert "(2 starting at once)" in h.stderr_text()
    h.deploy_ok("cap-start", py("""
        import time, uuid
        time.sleep(0.4)  # a slow import
        WORKER = uuid.uuid4().hex
        def handler(event, context):
            time.sleep(1.0)
            return WORKER
    """), max_concurrency=6)
    calls = [Background(h.invoke, "cap-start", json={}) for _ in range(6)]
    samples = watch_pool(h, "cap-start", calls)
    answers = [c.result(timeout=60) for c in calls]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert max(s["starting"] for s in samples) == 2, samples
    assert len({a.text for a in answers}) >= 3, "later calls should get workers of their own"
