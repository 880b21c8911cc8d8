"""Issue 9 point 8: requests whose bytes the daemon must check as bytes.

A percent-decoded name is checked on its decoded length, not up to its
first NUL, and a name that decodes to anything outside [a-z0-9-] is 400
invalid_name on every route. Query values are checked the same way. Every
error answer is the JSON error shape and valid JSON, whatever bytes the
request carried (hostile bytes are never echoed raw).

Requests go over a raw socket so that bytes reach the daemon exactly as
written here (no client re-quoting).
"""

import json
import socket

import pytest

from conftest import py, targz

ECHO = py("""
    def handler(event, context):
        return event
""")


def raw_request(hearth, method, target, body=b"", headers=()):
    """Sends one HTTP/1.1 request with `target` as raw bytes; returns
    (status, headers dict lower-cased, body bytes)."""
    if isinstance(method, str):
        method = method.encode()
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close", b"Content-Length: %d" % len(body)]
    lines += [("%s: %s" % kv).encode() for kv in hearth.auth_header().items()]
    lines += [h.encode() for h in headers]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", hearth.port), timeout=30) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (413) before the whole body was read: read the answer
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    reply = b"".join(chunks)
    head, _, rest = reply.partition(b"\r\n\r\n")
    status_line, *hlines = head.split(b"\r\n")
    status = int(status_line.split()[1])
    hdrs = {}
    for h in hlines:
        k, _, v = h.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
    return status, hdrs, rest


def assert_json_error(reply, status, code=None):
    """The reply is `status` with the documented error shape, as valid
    UTF-8 JSON; returns the error object."""
    got, hdrs, body = reply
    assert got == status, "expected %d, got %d: %r" % (status, got, body[:400])
    assert hdrs.get("content-type", "").startswith("application/json"), (hdrs, body[:400])
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AssertionError("error body is not valid JSON (%s): %r" % (exc, body[:400]))
    err = doc.get("error") if isinstance(doc, dict) else None
    assert isinstance(err, dict), doc
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), doc
    assert err["message"], doc
    if code:
        assert err["code"] == code, doc
    assert hdrs.get("x-request-id"), hdrs
    return err


@pytest.fixture(scope="module")
def fns(hearth):
    hearth.deploy_ok("hx-zz", ECHO, env={"SECRET": "s3cret"})
    hearth.deploy_ok("hx-echo", ECHO)
    return hearth


# Segments that decode to something outside [a-z0-9-] (or were never
# well-formed). The first keeps a valid prefix: the cut-at-NUL bug used it.
HOSTILE_NAMES = [
    "hx-zz%00junk",      # NUL: the name used to be cut to hx-zz
    "hx-zz%00",
    "%ff%fe",            # not UTF-8 at all
    "hx-zz%2fjunk",      # an encoded '/'
    "%2e%2e",            # '..'
    "hx-%c0%af",         # overlong '/'
    "hx-%ed%a0%80",      # a UTF-16 surrogate
    "hx%0d%0aX-Evil:1",  # CR LF
    "hx-%01%7f",         # control bytes
    "hx-zz\xff\xfe",     # raw bytes, not percent-encoded
    "HX-ZZ",
    "hx-" + "a" * 70,
]

NAME_ROUTES = [
    ("GET", "/v1/functions/%s"),
    ("PUT", "/v1/functions/%s"),
    ("DELETE", "/v1/functions/%s"),
    ("POST", "/v1/functions/%s/invoke"),
    ("GET", "/v1/functions/%s/logs"),
    ("GET", "/v1/functions/%s/logs?follow=1"),
    ("GET", "/fn/%s"),
    ("POST", "/fn/%s/some/rest"),
]


def test_delete_of_a_name_with_nul_does_not_delete_the_cut_name(fns):
    assert_json_error(raw_request(fns, "DELETE", "/v1/functions/hx-zz%00junk"), 400,
                      "invalid_name")
    r = fns.show("hx-zz")
    assert r.status_code == 200, "hx-zz was deleted by DELETE hx-zz%%00junk: %s" % r.text


@pytest.mark.parametrize("method,route", NAME_ROUTES)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_400_invalid_name_on_every_route(fns, method, route, name):
    body = json.dumps({"runtime": "python3", "handler": "main.handler",
                       "files": {"main.py": ECHO}}).encode() if method == "PUT" else b""
    headers = ["Content-Type: application/json"] if method == "PUT" else []
    reply = raw_request(fns, method, route % name, body, headers)
    err = assert_json_error(reply, 400, "invalid_name")
    # hostile bytes are shown escaped, never raw
    assert "\r" not in err["message"] and "\n" not in err["message"], err
    assert fns.show("hx-zz").status_code == 200
    assert fns.show("hx-echo").status_code == 200


@pytest.mark.parametrize("target", ["/v1/functions/hx-zz\x00junk", "/v1/functions/hx-zz\x00",
                                    "/v1/functions/hx-zz?x=1\x00junk"])
def test_a_raw_nul_in_the_request_line_is_400_and_touches_nothing(fns, target):
    assert_json_error(raw_request(fns, "DELETE", target), 400, "bad_request")
    assert fns.show("hx-zz").status_code == 200


def test_ff_fe_is_not_a_500_with_an_empty_body(fns):
    assert_json_error(raw_request(fns, "GET", "/v1/functions/%ff%fe"), 400, "invalid_name")


@pytest.mark.parametrize("query", [
    "tail=5%00junk", "tail=%00", "since=1%00x", "request_id=abc%00zz",
    "request_id=%ff%fe", "format=text%00x", "follow=0%00x", "format=%ff",
])
def test_log_query_values_are_checked_on_their_decoded_length(fns, query):
    assert_json_error(raw_request(fns, "GET", "/v1/functions/hx-zz/logs?" + query), 400,
                      "invalid_query")


@pytest.mark.parametrize("query", ["runtime=python3%00junk&handler=main.handler",
                                   "runtime=python3&handler=main.handler%00x",
                                   "runtime=python3&handler=main.handler&timeout_ms=100%00"])
def test_deploy_query_values_are_checked_on_their_decoded_length(fns, query):
    package = targz({"main.py": ECHO})
    reply = raw_request(fns, "PUT", "/v1/functions/hx-q?" + query, package,
                        ["Content-Type: application/gzip"])
    assert_json_error(reply, 400, "invalid_query")
    assert fns.show("hx-q").status_code == 404


@pytest.mark.parametrize("target", [
    "/nope/%ff%fe", "/nope/\xff\xfe", "/nope%00/x", "/v1/functions/hx-zz/%ff",
    "/" + "\xe9" * 300, "/nope/%c3",
])
def test_unknown_routes_with_hostile_bytes_are_json_404(fns, target):
    assert_json_error(raw_request(fns, "GET", target), 404, "not_found")


@pytest.mark.parametrize("target", ["/healthz", "/v1/functions/%ff%fe", "/v1/functions/\xff"])
def test_wrong_methods_are_json_405(fns, target):
    assert_json_error(raw_request(fns, "PATCH", target), 405, "method_not_allowed")


def test_oversized_invoke_body_is_json_413(fns):
    reply = raw_request(fns, "POST", "/v1/functions/hx-echo/invoke", b"x" * (7 << 20))
    assert_json_error(reply, 413, "payload_too_large")


def test_fn_path_with_nul_reaches_the_function_whole(fns):
    status, _, body = raw_request(fns, "GET", "/fn/hx-echo/a%00b?k=v%00w")
    assert status == 200, body[:400]
    event = json.loads(body)
    assert event["path"] == "/a\x00b", event
    assert event["query"] == {"k": "v\x00w"}, event


@pytest.mark.parametrize("target,code", [
    ("/fn/hx-echo/%ff%fe", "invalid_path"),
    ("/fn/hx-echo/x?k=%ff", "invalid_query"),
    ("/fn/hx-echo/x?%ff=1", "invalid_query"),
])
def test_fn_path_and_query_must_decode_to_utf8(fns, target, code):
    assert_json_error(raw_request(fns, "GET", target), 400, code)


def test_daemon_is_still_healthy(fns):
    assert fns.healthy()
    assert fns.show("hx-zz").json()["env"] == {"SECRET": "s3cret"}
