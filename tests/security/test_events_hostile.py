"""Attacks on the event core (issue 11): the async invoke's headers,
invocation ids, tokens limited to some functions, topics, and destination
loops. Each test names what stops it."""

import json
import time

from conftest import assert_error, py

ECHO = py("""
    def handler(event, context):
        return {"event": event}
""")

ASYNC = {"Prefer": "respond-async"}


def new_token(h, name, scopes, **extra):
    r = h.request("POST", "/v1/tokens", json=dict(name=name, scopes=scopes, **extra))
    assert r.status_code == 201, r.text
    return r.json()["token"]


def submit(h, name, headers=None, token=Ellipsis, **kw):
    hdrs = dict(ASYNC)
    hdrs.update(headers or {})
    return h.request("POST", "/v1/functions/%s/invoke" % name, headers=hdrs, token=token,
                     json={}, **kw)


def wait_done(h, iid, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = h.get("/v1/invocations/%s" % iid).json().get("status")
        if st in ("succeeded", "dead"):
            return st
        time.sleep(0.05)
    raise AssertionError("invocation %s did not finish" % iid)


def test_callback_urls_that_reach_past_http(hearth):
    """Attack: make the daemon fetch a file, speak another protocol, carry
    credentials or inject headers. Stopped by: callback_url_check (http and
    https only, printable ASCII, no userinfo), before anything is stored."""
    hearth.deploy_ok("evh-echo", ECHO)
    for bad in ("file:///etc/shadow", "gopher://127.0.0.1:25/", "dict://127.0.0.1:11211/",
                "http://user:pw@127.0.0.1/", "http:///nohost", "http://127.0.0.1/\x7f",
                "javascript:alert(1)", "http://" + "a" * 5000 + "/", ""):
        r = submit(hearth, "evh-echo", headers={"X-Callback-Url": bad})
        assert r.status_code == 400, (bad, r.status_code, r.text)
    listed = hearth.get("/v1/functions/evh-echo/invocations").json()["invocations"]
    assert listed == [], "a refused call must leave nothing behind"


def test_idempotency_keys_cannot_reach_another_function(hearth):
    """Attack: reuse a key seen on another function to learn its invocation
    id (and so its result). Stopped by: keys are per function."""
    hearth.deploy_ok("evh-a", ECHO)
    hearth.deploy_ok("evh-b", ECHO)
    a = submit(hearth, "evh-a", headers={"Idempotency-Key": "same"}).json()["id"]
    b = submit(hearth, "evh-b", headers={"Idempotency-Key": "same"}).json()["id"]
    assert a != b
    for bad in ("x" * 256, "tab\there", "nul\x01", "ünï"):
        try:
            r = submit(hearth, "evh-a", headers={"Idempotency-Key": bad})
        except ValueError:
            continue  # the client library itself refuses the header
        assert_error(r, 400, "invalid_header")


def test_a_limited_token_sees_only_its_functions_invocations(hearth):
    """Attack: read, redrive or cancel another team's invocations by id, or
    publish into its functions through a topic. Stopped by: the token's
    function glob is checked against the invocation's function, and a
    publish needs a token that may invoke every subscriber."""
    hearth.deploy_ok("team-x-fn", ECHO, subscriptions=["shared"])
    hearth.deploy_ok("other-fn", ECHO, subscriptions=["shared"])
    theirs = submit(hearth, "other-fn").json()["id"]
    wait_done(hearth, theirs)
    tok = new_token(hearth, "team-x", ["invoke", "read"], functions="team-x-*")
    assert_error(hearth.get("/v1/invocations/%s" % theirs, token=tok), 404,
                 "invocation_not_found")
    assert_error(hearth.request("POST", "/v1/invocations/%s/retry" % theirs, token=tok), 404,
                 "invocation_not_found")
    assert_error(hearth.request("DELETE", "/v1/invocations/%s" % theirs, token=tok), 404,
                 "invocation_not_found")
    assert_error(hearth.get("/v1/functions/other-fn/invocations", token=tok), 403, "forbidden")
    assert_error(submit(hearth, "other-fn", token=tok), 403, "forbidden")
    r = hearth.request("POST", "/v1/topics/shared", token=tok, json={"x": 1})
    assert_error(r, 403, "forbidden")
    mine = submit(hearth, "team-x-fn", token=tok)
    assert mine.status_code == 202
    assert hearth.get("/v1/invocations/%s" % mine.json()["id"], token=tok).status_code == 200


def test_ids_and_topic_names_that_are_not_ids(hearth):
    """Attack: path tricks in the id and topic segments. Stopped by: the
    segment must decode to the alphabet of ids (and topic names), NUL and
    '/' included; lookups are by exact id."""
    for path in ("/v1/invocations/..%2f..%2fetc", "/v1/invocations/%00",
                 "/v1/invocations/" + "a" * 200, "/v1/invocations/%2e%2e",
                 "/v1/invocations/'%20OR%201=1"):
        r = hearth.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert r.json()["error"]["code"] in ("invalid_id", "invocation_not_found", "not_found")
    for topic in ("A", "a%2Fb", "%00", "-lead", "x" * 65, "caf%C3%A9"):
        r = hearth.request("POST", "/v1/topics/" + topic, json={})
        assert r.status_code in (400, 404), (topic, r.status_code, r.text)


def test_a_destination_loop_stops(hearth):
    """Attack: two functions naming each other as destinations, so every
    record makes another forever. Stopped by: a record carries its depth,
    and none is sent at EVENTS_MAX_DEPTH (16)."""
    hearth.deploy_ok("loop-a", ECHO, on_success="loop-b")
    hearth.deploy_ok("loop-b", ECHO, on_success="loop-a")
    submit(hearth, "loop-a")
    time.sleep(6)
    total = sum(len(hearth.get("/v1/functions/%s/invocations" % f,
                               params={"limit": 1000}).json()["invocations"])
                for f in ("loop-a", "loop-b"))
    assert total <= 16, "the loop made %d invocations" % total
    time.sleep(1)
    again = sum(len(hearth.get("/v1/functions/%s/invocations" % f,
                               params={"limit": 1000}).json()["invocations"])
                for f in ("loop-a", "loop-b"))
    assert again == total, "still growing"


def test_a_huge_prefer_header_and_many_preferences(hearth):
    """Attack: a Prefer header built to make parsing slow. Stopped by: one
    linear pass over the header (and the gateway's header size limit)."""
    hearth.deploy_ok("evh-prefer", ECHO)
    pref = ", ".join(["x%d=%d" % (i, i) for i in range(1000)]) + ", respond-async"
    t0 = time.monotonic()
    r = hearth.invoke("evh-prefer", json={}, headers={"Prefer": pref})
    assert r.status_code in (202, 431, 400), r.status_code
    assert time.monotonic() - t0 < 5
    assert hearth.get("/healthz").status_code == 200


def test_a_function_cannot_forge_its_record_for_the_callback(hearth):
    """Attack: a function answers text shaped like an invocation record, to
    fake another status in what the callback and GET show. Stopped by: the
    answer is only ever the value of "result", never merged into the record."""
    forger = py("""
        def handler(event, context):
            return {"status": "dead", "id": "someone-else", "error": {"code": "x"}}
    """)
    hearth.deploy_ok("evh-forger", forger)
    iid = submit(hearth, "evh-forger").json()["id"]
    assert wait_done(hearth, iid) == "succeeded"
    inv = hearth.get("/v1/invocations/%s" % iid).json()
    assert inv["id"] == iid and inv["status"] == "succeeded" and "error" not in inv
    assert inv["result"]["status"] == "dead"
    json.dumps(inv)


def test_a_public_function_does_not_lend_out_callbacks(hearth):
    """Attack: without any token, invoke a function deployed with "auth":
    "none" asynchronously with an X-Callback-Url, to make the daemon POST
    to an internal address. Stopped by: a callback needs a real token."""
    hearth.deploy_ok("evh-public", ECHO, auth="none")
    r = submit(hearth, "evh-public", token=None,
               headers={"X-Callback-Url": "http://127.0.0.1:9/internal"})
    assert_error(r, 403, "forbidden")
    assert submit(hearth, "evh-public", token=None).status_code == 202


def test_topic_listing_shows_only_reachable_subscribers(hearth):
    """Attack: a limited token lists topics to learn other teams' function
    names. Stopped by: subscribers are filtered by the token's glob."""
    hearth.deploy_ok("team-y-fn", ECHO, subscriptions=["ylist"])
    hearth.deploy_ok("secret-fn", ECHO, subscriptions=["ylist", "hidden"])
    tok = new_token(hearth, "team-y", ["read"], functions="team-y-*")
    got = hearth.get("/v1/topics", token=tok).json()["topics"]
    names = {s["function"] for t in got for s in t["subscribers"]}
    assert names == {"team-y-fn"}, got
    assert "hidden" not in {t["topic"] for t in got}


def test_publish_checks_json_and_body_size(hearth_factory):
    """Attack: publish bodies a subscriber would choke on, or bigger than
    any invoke may be. Stopped by: the invoke's own checks."""
    h = hearth_factory("--max-body", "1K")
    h.deploy_ok("evh-sub", ECHO, subscriptions=["sized"])
    r = h.request("POST", "/v1/topics/sized", data=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")
    r = h.request("POST", "/v1/topics/sized", data=b"x" * 4096)
    assert_error(r, 413, "payload_too_large")
