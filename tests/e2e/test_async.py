"""Issue 11, asynchronous invocations: Prefer: respond-async answers 202
once the event is durable; the invocation runs on the function's pool,
is retried, goes dead, can be redriven or cancelled; results can be
fetched for --result-retention; Idempotency-Key, destinations and result
callbacks; kill -9 loses nothing acknowledged; async floods do not starve
synchronous calls."""

import http.server
import json
import threading
import time

import pytest

from conftest import Background, assert_error, free_port, py, wait_until

ASYNC = {"Prefer": "respond-async"}

ECHO = py("""
    def handler(event, context):
        return {"event": event, "invocation_id": context.invocation_id,
                "attempt": context.attempt}
""")

# Fails until attempt FAIL_UNTIL, so retries can be counted.
FLAKY = py("""
    def handler(event, context):
        if context.attempt < event.get("succeed_at", 99):
            raise ValueError("attempt %d fails" % context.attempt)
        return {"ok": context.attempt}
""")

SLOW = py("""
    import time
    def handler(event, context):
        time.sleep(event.get("sleep", 0.2) if isinstance(event, dict) else 0.2)
        return {"slept": True}
""")


def submit(h, name, payload=None, headers=None, **kw):
    hdrs = dict(ASYNC)
    hdrs.update(headers or {})
    return h.invoke(name, json=payload if payload is not None else {}, headers=hdrs, **kw)


def submit_ok(h, name, payload=None, **kw):
    r = submit(h, name, payload, **kw)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def invocation(h, iid):
    r = h.get("/v1/invocations/%s" % iid)
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(h, iid, statuses, timeout=30):
    last = {}

    def done():
        nonlocal last
        last = invocation(h, iid)
        return last["status"] in statuses

    assert wait_until(done, timeout, 0.05), "invocation %s stayed %s" % (iid, last)
    return last


def test_accepted_202_with_location_and_result(hearth):
    hearth.deploy_ok("as-echo", ECHO)
    r = submit(hearth, "as-echo", {"n": 1})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    assert r.headers["Location"] == "/v1/invocations/%s" % body["id"]
    assert r.headers.get("Preference-Applied") == "respond-async"
    inv = wait_status(hearth, body["id"], {"succeeded"})
    assert inv["function"] == "as-echo" and inv["version"] == 1 and inv["attempts"] == 1
    assert inv["result"]["event"] == {"n": 1}
    assert inv["result"]["invocation_id"] == body["id"]
    assert inv["result"]["attempt"] == 1
    for k in ("created_at", "started_at", "finished_at"):
        assert inv[k] and inv[k].endswith("Z"), inv
    assert "error" not in inv


def test_prefer_with_other_preferences(hearth):
    hearth.deploy_ok("as-prefer", ECHO)
    r = hearth.invoke("as-prefer", json={}, headers={"Prefer": "wait=10, Respond-Async"})
    assert r.status_code == 202, r.text
    r = hearth.invoke("as-prefer", json={}, headers={"Prefer": "respond-asynchronously"})
    assert r.status_code == 200, "not the respond-async token: a synchronous call"


def test_unknown_function_bad_json_and_body_limit(hearth_factory):
    h = hearth_factory("--max-body", "1K")
    assert_error(submit(h, "as-nothing"), 404, "function_not_found")
    h.deploy_ok("as-limits", ECHO)
    r = h.invoke("as-limits", body=b"{nope", headers=dict(ASYNC, **{"Content-Type":
                                                                   "application/json"}))
    assert_error(r, 400, "invalid_json")
    r = h.invoke("as-limits", body=b"x" * 2048, headers=ASYNC)
    assert_error(r, 413, "payload_too_large")
    assert h.get("/v1/functions/as-limits/invocations").json()["invocations"] == []


def test_queue_bound_gives_429(hearth):
    hearth.deploy_ok("as-bound", SLOW, async_max_queue=3, max_concurrency=1)
    ids = [submit_ok(hearth, "as-bound", {"sleep": 1}) for _ in range(3)]
    assert_error(submit(hearth, "as-bound", {"sleep": 1}), 429, "queue_full")
    for iid in ids:
        wait_status(hearth, iid, {"succeeded"})
    submit_ok(hearth, "as-bound", {"sleep": 0})  # room again


def test_retries_then_success(hearth):
    hearth.deploy_ok("as-flaky", FLAKY, async_retries=2, async_retry_base_ms=50)
    iid = submit_ok(hearth, "as-flaky", {"succeed_at": 3})
    inv = wait_status(hearth, iid, {"succeeded"})
    assert inv["attempts"] == 3 and inv["result"] == {"ok": 3}


def test_dead_after_retries_listed_and_redriven(hearth):
    hearth.deploy_ok("as-dead", FLAKY, async_retries=1, async_retry_base_ms=20)
    iid = submit_ok(hearth, "as-dead", {"succeed_at": 99})
    inv = wait_status(hearth, iid, {"dead"})
    assert inv["attempts"] == 2
    assert inv["error"]["code"] == "function_error"
    assert inv["error"]["type"] == "ValueError" and "attempt 2 fails" in inv["error"]["message"]
    dead = hearth.get("/v1/functions/as-dead/invocations", params={"status": "dead"}).json()
    assert [i["id"] for i in dead["invocations"]] == [iid]
    assert hearth.get("/v1/functions/as-dead/invocations",
                      params={"status": "succeeded"}).json()["invocations"] == []
    # A fixed version, then the redrive: it runs again from attempt 1.
    hearth.deploy_ok("as-dead", FLAKY.replace('event.get("succeed_at", 99)', "1"),
                     async_retries=1)
    r = hearth.request("POST", "/v1/invocations/%s/retry" % iid)
    assert r.status_code == 202, r.text
    inv = wait_status(hearth, iid, {"succeeded"})
    assert inv["version"] == 2 and inv["attempts"] == 1
    assert_error(hearth.request("POST", "/v1/invocations/%s/retry" % iid), 409, "not_dead")


def test_list_newest_first_with_limit(hearth):
    hearth.deploy_ok("as-list", ECHO)
    ids = [submit_ok(hearth, "as-list", {"i": i}) for i in range(5)]
    for iid in ids:
        wait_status(hearth, iid, {"succeeded"})
    got = hearth.get("/v1/functions/as-list/invocations", params={"limit": 3}).json()
    assert [i["id"] for i in got["invocations"]] == ids[::-1][:3]
    assert_error(hearth.get("/v1/functions/as-list/invocations", params={"status": "x"}), 400,
                 "invalid_query")
    assert_error(hearth.get("/v1/functions/as-list/invocations", params={"limit": 0}), 400,
                 "invalid_query")
    assert_error(hearth.get("/v1/functions/as-none/invocations"), 404, "function_not_found")


def test_cancel_a_queued_invocation(hearth):
    hearth.deploy_ok("as-cancel", SLOW, max_concurrency=1)
    first = submit_ok(hearth, "as-cancel", {"sleep": 1.5})
    second = submit_ok(hearth, "as-cancel", {"sleep": 0})
    wait_status(hearth, first, {"running"})
    r = hearth.request("DELETE", "/v1/invocations/%s" % second)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    wait_status(hearth, first, {"succeeded"})
    time.sleep(0.3)
    assert invocation(hearth, second)["status"] == "cancelled"
    assert invocation(hearth, second)["attempts"] == 0
    assert_error(hearth.request("DELETE", "/v1/invocations/%s" % first), 409, "not_cancellable")
    assert_error(hearth.request("DELETE", "/v1/invocations/%s" % ("0" * 36)), 404,
                 "invocation_not_found")


def test_idempotency_key_returns_the_first_id(hearth):
    hearth.deploy_ok("as-idem", ECHO)
    a = submit(hearth, "as-idem", {"x": 1}, headers={"Idempotency-Key": "order-77"})
    b = submit(hearth, "as-idem", {"x": 2}, headers={"Idempotency-Key": "order-77"})
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] == b.json()["id"] and b.json().get("duplicate") is True
    assert a.headers["Location"] == b.headers["Location"]
    wait_status(hearth, a.json()["id"], {"succeeded"})
    listed = hearth.get("/v1/functions/as-idem/invocations").json()["invocations"]
    assert len(listed) == 1
    # Another function, or another key, is another invocation.
    c = submit(hearth, "as-idem", {"x": 3}, headers={"Idempotency-Key": "order-78"})
    assert c.json()["id"] != a.json()["id"]
    assert_error(submit(hearth, "as-idem", headers={"Idempotency-Key": "has space"}), 400,
                 "invalid_header")


def test_a_duplicate_is_answered_when_nothing_else_is_written(hearth):
    """A duplicate writes nothing: its answer must not wait for some other
    write to end the loop turn's batch (it did, once the first call had
    finished and the daemon was idle)."""
    hearth.deploy_ok("as-idem-idle", ECHO)
    a = submit(hearth, "as-idem-idle", {"x": 1}, headers={"Idempotency-Key": "idle-1"})
    wait_status(hearth, a.json()["id"], {"succeeded"})
    time.sleep(0.2)  # nothing left to write
    b = submit(hearth, "as-idem-idle", {"x": 2}, headers={"Idempotency-Key": "idle-1"},
               timeout=5)
    assert b.status_code == 202 and b.json()["id"] == a.json()["id"], b.text
    assert b.json().get("duplicate") is True


def test_results_expire_after_retention(hearth_factory):
    h = hearth_factory("--result-retention", "1")
    h.deploy_ok("as-expire", ECHO)
    iid = submit_ok(h, "as-expire")
    wait_status(h, iid, {"succeeded"})
    assert wait_until(lambda: h.get("/v1/invocations/%s" % iid).status_code == 404, 10)
    assert_error(h.get("/v1/invocations/%s" % iid), 404, "invocation_not_found")


def test_destinations_get_lambda_records(hearth):
    hearth.deploy_ok("as-dest-ok", ECHO)
    hearth.deploy_ok("as-dest-bad", ECHO)
    hearth.deploy_ok("as-src", FLAKY, async_retries=0, on_success="as-dest-ok",
                     on_failure="as-dest-bad")
    assert hearth.show("as-src").json()["on_success"] == "as-dest-ok"
    good = submit_ok(hearth, "as-src", {"succeed_at": 1})
    bad = submit_ok(hearth, "as-src", {"succeed_at": 99})
    wait_status(hearth, good, {"succeeded"})
    wait_status(hearth, bad, {"dead"})

    def record_of(dest):
        got = hearth.get("/v1/functions/%s/invocations" % dest).json()["invocations"]
        if not got:
            return None
        inv = wait_status(hearth, got[0]["id"], {"succeeded"})
        assert inv["source"] == "destination"
        return inv["result"]["event"]

    assert wait_until(lambda: record_of("as-dest-ok"), 20)
    rec = record_of("as-dest-ok")
    assert rec["requestContext"]["requestId"] == good
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"succeed_at": 1}
    assert rec["responsePayload"] == {"ok": 1}
    assert wait_until(lambda: record_of("as-dest-bad"), 20)
    rec = record_of("as-dest-bad")
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["responsePayload"]["errorType"] == "ValueError"
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert_error(hearth.deploy("as-src2", files={"main.py": ECHO}, on_success="Not A Name"), 400,
                 "invalid_field")


class _Listener:
    """A local HTTP server that records POSTs and answers from a script."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.posts = []
        listener = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                listener.posts.append((dict(self.headers), body))
                code = listener.answers.pop(0) if listener.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_result_callback_is_posted_and_retried(hearth):
    hearth.deploy_ok("as-cb", ECHO)
    srv = _Listener([503, 200])
    try:
        url = "http://127.0.0.1:%d/hook?x=1" % srv.port
        iid = submit_ok(hearth, "as-cb", {"k": "v"}, headers={"X-Callback-Url": url})
        assert wait_until(lambda: len(srv.posts) >= 2, 30), srv.posts
        headers, body = srv.posts[-1]
        assert headers["X-Hearth-Invocation-Id"] == iid
        assert headers["X-Hearth-Status"] == "succeeded"
        doc = json.loads(body)
        assert doc["id"] == iid and doc["result"]["event"] == {"k": "v"}
        assert wait_until(lambda: invocation(hearth, iid).get("callback") == "delivered", 10)
    finally:
        srv.close()
    for bad in ("file:///etc/passwd", "ftp://127.0.0.1/", "http://u:p@h/", "http:///x"):
        r = submit(hearth, "as-cb", headers={"X-Callback-Url": bad})
        assert r.status_code == 400, (bad, r.text)


def test_kill9_loses_no_acknowledged_event(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("as-durable", SLOW, max_concurrency=3, timeout_ms=10000)
    ids = []
    lock = threading.Lock()

    def burst(n):
        for i in range(n):
            r = submit(h, "as-durable", {"sleep": 0.02})
            if r.status_code == 202:
                with lock:
                    ids.append(r.json()["id"])

    workers = [Background(burst, 60) for _ in range(5)]
    for w in workers:
        w.result(timeout=120)
    assert len(ids) == 300
    # Some ran, hundreds still wait, a few are running: now the crash.
    h.kill9()
    h.start()
    for iid in ids:
        wait_status(h, iid, {"succeeded"}, timeout=120)


def test_running_attempt_runs_again_after_kill9(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("as-cut", SLOW, timeout_ms=20000, async_retries=0)
    iid = submit_ok(h, "as-cut", {"sleep": 3})
    wait_status(h, iid, {"running"})
    h.kill9()
    h.start()
    inv = wait_status(h, iid, {"succeeded", "dead"}, timeout=60)
    assert inv["status"] == "succeeded", "the cut-off attempt must not use up the retries"


def test_async_flood_does_not_starve_sync_calls(hearth):
    hearth.deploy_ok("as-flood", SLOW, max_concurrency=4, async_max_queue=1000)
    hearth.deploy_ok("as-other", ECHO)
    hearth.invoke_ok("as-other", json={})
    for _ in range(200):
        submit_ok(hearth, "as-flood", {"sleep": 0.2})
    # Draining 200 x 0.2 s on 3 workers takes ~13 s; a synchronous call
    # waits at most for one of them.
    t0 = time.monotonic()
    hearth.invoke_ok("as-flood", json={"sleep": 0})
    same = time.monotonic() - t0
    t0 = time.monotonic()
    hearth.invoke_ok("as-other", json={})
    other = time.monotonic() - t0
    assert same < 3.0, "a sync call waited %.1f s behind async events" % same
    assert other < 3.0, "another function's sync call waited %.1f s" % other
    state = hearth.show("as-flood").json()["async"]
    assert state["waiting"] > 50, state


def test_redrive_of_an_old_dead_invocation_runs(hearth):
    hearth.deploy_ok("as-old", FLAKY, async_retries=0, async_max_age_s=1)
    iid = submit_ok(hearth, "as-old", {"succeed_at": 99})
    wait_status(hearth, iid, {"dead"})
    time.sleep(1.5)  # older than async_max_age_s now
    hearth.deploy_ok("as-old", FLAKY.replace('event.get("succeed_at", 99)', "1"),
                     async_retries=0, async_max_age_s=1)
    assert hearth.request("POST", "/v1/invocations/%s/retry" % iid).status_code == 202
    inv = wait_status(hearth, iid, {"succeeded", "dead"})
    assert inv["status"] == "succeeded", "a redrive starts the event's age again: %s" % inv


def test_cancelled_callback_is_not_sent(hearth):
    hearth.deploy_ok("as-cancel-cb", SLOW, max_concurrency=1)
    first = submit_ok(hearth, "as-cancel-cb", {"sleep": 1})
    second = submit_ok(hearth, "as-cancel-cb", {"sleep": 0},
                       headers={"X-Callback-Url": "http://127.0.0.1:9/never"})
    assert invocation(hearth, second)["callback"] == "pending"
    assert hearth.request("DELETE", "/v1/invocations/%s" % second).status_code == 200
    assert "callback" not in invocation(hearth, second)
    wait_status(hearth, first, {"succeeded"})


def test_a_forgotten_invocations_key_starts_a_new_one(hearth_factory):
    h = hearth_factory("--result-retention", "1")
    h.deploy_ok("as-idem-old", ECHO)
    a = submit(h, "as-idem-old", {}, headers={"Idempotency-Key": "k"}).json()["id"]
    wait_status(h, a, {"succeeded"})
    assert wait_until(lambda: h.get("/v1/invocations/%s" % a).status_code == 404, 10)
    b = submit(h, "as-idem-old", {}, headers={"Idempotency-Key": "k"}).json()
    assert b["id"] != a and not b.get("duplicate")
    wait_status(h, b["id"], {"succeeded"})


def test_async_attempts_are_counted_in_metrics(hearth):
    hearth.deploy_ok("as-metrics", ECHO)
    wait_status(hearth, submit_ok(hearth, "as-metrics"), {"succeeded"})
    text = hearth.get("/metrics").text
    assert 'function="as-metrics"' in text
    line = [l for l in text.splitlines()
            if l.startswith("hearth_invocations_total") and 'function="as-metrics"' in l]
    assert any('trigger="async"' in l for l in line), line
