"""Issue point 4 (Invoke): events, answers, context, the /fn/ HTTP endpoint, headers."""

import base64
import http.client

import pytest

from conftest import assert_error, py

ECHO = py("""
    import base64
    def handler(event, context):
        want = event.get("want") if isinstance(event, dict) else None
        if want == "dict":
            return {"a": 1, "nested": [1, 2], "text": "h\\u00e9"}
        if want == "list":
            return [1, "two", None]
        if want == "number":
            return 42
        if want == "none":
            return None
        if want == "str":
            return "h\\u00e9llo"
        if want == "bytes":
            return b"\\x00\\x01\\xff"
        if want == "status":
            return {"statusCode": 201, "body": "x"}
        if isinstance(event, bytes):
            return {"type": "bytes", "b64": base64.b64encode(event).decode()}
        return {"type": type(event).__name__, "event": event}
""")

CONTEXT = py("""
    def handler(event, context):
        return {"request_id": context.request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "remaining": context.get_remaining_time_in_millis()}
""")

HTTP = py("""
    import base64
    def handler(event, context):
        q = event.get("query") or {}
        if q.get("answer") == "custom":
            return {"statusCode": 201, "headers": {"X-Foo": "bar", "Content-Type": "text/html"},
                    "body": "<b>made</b>"}
        if q.get("answer") == "binary":
            return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                    "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode(),
                    "isBase64Encoded": True}
        if q.get("answer") == "teapot":
            return {"statusCode": 418, "body": {"short": "stout"}}
        if q.get("answer") == "plain":
            return {"no": "statusCode"}
        return event
""")


@pytest.fixture(scope="module")
def fns(hearth):
    hearth.deploy_ok("iv-echo", ECHO)
    fn = hearth.deploy_ok("iv-ctx", CONTEXT, timeout_ms=7000)
    hearth.deploy_ok("iv-http", HTTP)
    return {"iv-ctx": fn}


def test_json_event_is_parsed(hearth, fns):
    r = hearth.invoke_ok("iv-echo", json={"k": [1, 2, {"x": None}]})
    assert r.json() == {"type": "dict", "event": {"k": [1, 2, {"x": None}]}}


def test_json_body_without_content_type_is_parsed(hearth, fns):
    r = hearth.invoke_ok("iv-echo", body=b'{"k": 1}')
    assert r.json() == {"type": "dict", "event": {"k": 1}}


def test_text_event_is_a_str(hearth, fns):
    r = hearth.invoke_ok("iv-echo", body="hello world", headers={"Content-Type": "text/plain"})
    assert r.json() == {"type": "str", "event": "hello world"}


def test_non_utf8_event_is_bytes(hearth, fns):
    raw = b"\xff\xfe\x00binary"
    r = hearth.invoke_ok("iv-echo", body=raw, headers={"Content-Type": "application/octet-stream"})
    assert r.json()["type"] == "bytes"
    assert base64.b64decode(r.json()["b64"]) == raw


@pytest.mark.parametrize("want,ctype,expect", [
    ("dict", "application/json", {"a": 1, "nested": [1, 2], "text": "h\u00e9"}),
    ("list", "application/json", [1, "two", None]),
    ("number", "application/json", 42),
    ("none", "application/json", None),
])
def test_json_answers(hearth, fns, want, ctype, expect):
    r = hearth.invoke_ok("iv-echo", json={"want": want})
    assert r.headers["Content-Type"].startswith(ctype), r.headers
    assert r.json() == expect


def test_str_answer_is_text_plain(hearth, fns):
    r = hearth.invoke_ok("iv-echo", json={"want": "str"})
    assert r.headers["Content-Type"].replace(" ", "").lower() == "text/plain;charset=utf-8"
    assert r.content == "h\u00e9llo".encode()


def test_bytes_answer_is_octet_stream(hearth, fns):
    r = hearth.invoke_ok("iv-echo", json={"want": "bytes"})
    assert r.headers["Content-Type"].startswith("application/octet-stream")
    assert r.content == b"\x00\x01\xff"


def test_invoke_does_not_interpret_status_code(hearth, fns):
    r = hearth.invoke_ok("iv-echo", json={"want": "status"})
    assert r.json() == {"statusCode": 201, "body": "x"}


def test_context(hearth, fns):
    r = hearth.invoke_ok("iv-ctx")
    ctx = r.json()
    assert ctx["request_id"] == r.headers["X-Request-Id"]
    assert ctx["function_name"] == "iv-ctx"
    version = fns["iv-ctx"]["version"]
    assert str(ctx["function_version"]) == str(version)
    assert r.headers["X-Hearth-Function-Version"] == str(version)
    assert 5000 < ctx["remaining"] <= 7000, ctx


def test_request_ids_are_unique_and_on_every_answer(hearth, fns):
    ids = set()
    for _ in range(5):
        r = hearth.invoke_ok("iv-echo", json={})
        ids.add(r.headers["X-Request-Id"])
    assert len(ids) == 5
    assert hearth.invoke("iv-nope").headers.get("X-Request-Id")
    assert hearth.get("/v1/functions").headers.get("X-Request-Id")


def test_cold_start_header_only_on_first_call(hearth):
    hearth.deploy_ok("iv-cold", "def handler(e, c):\n    return 1\n")
    first = hearth.invoke_ok("iv-cold")
    assert first.headers.get("X-Hearth-Cold-Start") == "1", first.headers
    second = hearth.invoke_ok("iv-cold")
    assert "X-Hearth-Cold-Start" not in second.headers, second.headers
    assert second.headers.get("X-Request-Id")


def test_fn_event_shape(hearth, fns):
    r = hearth.request("POST", "/fn/iv-http/some/path?a=1&b=two&q=a%20b", data="text body",
                       headers={"Content-Type": "text/plain", "X-Custom": "Value"})
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Request-Id")
    ev = r.json()
    assert set(ev) >= {"method", "path", "query", "headers", "body", "isBase64Encoded"}, ev
    assert ev["method"] == "POST"
    assert ev["path"] == "/some/path"
    assert ev["query"] == {"a": "1", "b": "two", "q": "a b"}
    assert ev["headers"]["content-type"] == "text/plain"
    assert ev["headers"]["x-custom"] == "Value"
    assert all(k == k.lower() for k in ev["headers"]), ev["headers"]
    assert ev["body"] == "text body"
    assert ev["isBase64Encoded"] is False


def test_fn_empty_rest_is_slash(hearth, fns):
    r = hearth.request("GET", "/fn/iv-http")
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["method"] == "GET" and ev["path"] == "/" and ev["body"] == "" and ev["query"] == {}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_fn_any_method(hearth, fns, method):
    r = hearth.request(method, "/fn/iv-http/m")
    assert r.status_code == 200, r.text
    assert r.json()["method"] == method and r.json()["path"] == "/m"


def test_fn_binary_body_is_base64(hearth, fns):
    raw = bytes(range(256))
    r = hearth.request("POST", "/fn/iv-http/bin", data=raw,
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == raw


def test_fn_repeated_headers_and_query_are_joined(hearth, fns):
    conn = http.client.HTTPConnection("127.0.0.1", hearth.port, timeout=30)
    try:
        conn.putrequest("GET", "/fn/iv-http/r?a=1&a=3")
        for k, v in hearth.auth_header().items():
            conn.putheader(k, v)
        conn.putheader("X-Multi", "one")
        conn.putheader("X-Multi", "two")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, body
    import json
    ev = json.loads(body)
    assert [v.strip() for v in ev["query"]["a"].split(",")] == ["1", "3"], ev["query"]
    assert [v.strip() for v in ev["headers"]["x-multi"].split(",")] == ["one", "two"], ev["headers"]


def test_fn_status_code_headers_body_honoured(hearth, fns):
    r = hearth.request("GET", "/fn/iv-http/x?answer=custom")
    assert r.status_code == 201, r.text
    assert r.headers["X-Foo"] == "bar"
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text == "<b>made</b>"
    assert r.headers.get("X-Request-Id")


def test_fn_base64_answer_is_decoded(hearth, fns):
    r = hearth.request("GET", "/fn/iv-http/x?answer=binary")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("image/png")
    assert r.content == b"\x89PNG\x00\xff"


def test_fn_status_with_object_body(hearth, fns):
    r = hearth.request("GET", "/fn/iv-http/x?answer=teapot")
    assert r.status_code == 418, r.text
    assert r.json() == {"short": "stout"}


def test_fn_other_return_answers_as_invoke(hearth, fns):
    r = hearth.request("GET", "/fn/iv-http/x?answer=plain")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"no": "statusCode"}


def test_fn_unknown_function_is_404(hearth):
    assert_error(hearth.request("GET", "/fn/iv-missing/x"), 404, "function_not_found")


def test_informational_status_is_not_a_final_answer(hearth):
    """A 1xx (say 101 Switching Protocols) would leave the client's connection
    in a state no function can honour: the runtime refuses it."""
    hearth.deploy_ok("iv-status", py("""
        def handler(event, context):
            return {"statusCode": int(event["query"]["s"]), "body": "x"}
    """))
    r = hearth.get("/fn/iv-status?s=101")
    err = assert_error(r, 500, "function_error")
    assert err.get("type") == "MarshalError", err
    r = hearth.get("/fn/iv-status?s=204")
    assert r.status_code == 204
