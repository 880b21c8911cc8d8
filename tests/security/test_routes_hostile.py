"""Hostile requests and deploys against HTTP routes (issue 11, §3): reaching
the wrong function through an encoded path, and taking Hearth's own
namespace with a route.

Each test names the mechanism that stops the attack. Requests go out
through http.client, which sends the target exactly as written (requests
and urllib3 would normalise some of it first).
"""

import http.client
import json

import pytest

from conftest import assert_error, py

WHO = py("""
    def handler(event, context):
        return {"fn": context.function_name, "params": event.get("pathParameters")}
""")


def route(method, path):
    return {"method": method, "path": path}


def raw(h, method, target, token=True):
    """Sends `target` byte for byte; returns (status, headers, parsed body or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
    try:
        headers = h.auth_header() if token else {}
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return r.status, dict(r.getheaders()), body
    finally:
        conn.close()


def calls(h, name):
    pool = h.pool(name)
    return pool["cold_starts"] + pool["warm_starts"]


@pytest.fixture(scope="module")
def site(hearth):
    hearth.deploy_ok("rh-files", WHO, routes=[route("GET", "/files/{name}"),
                                              route("GET", "/files/{dir}/{name}")])
    hearth.deploy_ok("rh-catchall", WHO, routes=[route("ANY", "/{proxy+}")])
    return hearth


@pytest.mark.parametrize("target", [
    "/files/..%2F..%2Fv1%2Ftokens",   # an encoded '/' never splits, and is refused in a segment
    "/files/%2e%2e",                  # '..' however it is spelled
    "/files/%2E%2e/v1",
    "/files/../v1/tokens",            # a raw dot segment
    "/files/./x",
    "/files/a%00b",                   # a NUL would cut the name for C code behind it
    "/files/%ff%fe",                  # not UTF-8
    "/files/%c0%af",                  # an overlong '/'
    "/files/%ed%a0%80",               # a UTF-16 surrogate
    "/files/a%2fb",
])
def test_hostile_paths_are_404_and_reach_no_function(site, target):
    """Attack: encoded slashes, dot segments, NULs and bytes that are not
    UTF-8 in a routed path, to make one template match what another (or
    Hearth) owns, or to hand a function a parameter its code trusts.
    Stopped by: api.c decodes each segment on its own and refuses (404
    not_found: no route can take it) any segment that decodes to '/', NUL, '.', '..' or
    ill-formed UTF-8, before the route table is asked."""
    before = calls(site, "rh-files"), calls(site, "rh-catchall")
    status, _, body = raw(site, "GET", target)
    assert status == 404 and body["error"]["code"] == "not_found", (target, status, body)
    assert (calls(site, "rh-files"), calls(site, "rh-catchall")) == before


def test_overlong_paths_are_414(site):
    """Attack: a path of thousands of bytes or segments, to make a lookup
    expensive or a buffer overflow. Stopped by: routed paths have at most
    ROUTES_REQ_PATH_MAX bytes and ROUTES_REQ_SEGMENTS segments, checked
    before anything is decoded or looked up."""
    before = calls(site, "rh-catchall")
    for target in ["/" + "a" * 5000, "/a" * 200]:
        status, _, body = raw(site, "GET", target)
        assert status == 414 and body["error"]["code"] == "uri_too_long", (status, body)
    assert calls(site, "rh-catchall") == before
    # just under both limits is served
    status, _, body = raw(site, "GET", "/b" * 100)
    assert status == 200 and body["fn"] == "rh-catchall"


@pytest.mark.parametrize("target", [
    "/V1/tokens", "/v1/nope", "/%761/tokens", "/%56%31/functions", "/FN/rh-files/x",
    "/Healthz", "/%6detrics", "/HEALTHZ/x",
])
def test_a_catch_all_cannot_take_hearths_namespace(site, target):
    """Attack: a function routes /{proxy+} to catch whatever Hearth does not
    answer itself, reached through case or percent-encoding tricks on
    Hearth's prefixes (/V1/, /%761/), to phish tokens sent to a mistyped
    API path. Stopped by: a request whose first segment decodes, in any
    case, to one of routes.c's reserved prefixes never reaches the route
    table (404 not_found)."""
    before = calls(site, "rh-catchall")
    status, _, body = raw(site, "GET", target)
    assert status == 404 and body["error"]["code"] == "not_found", (target, status, body)
    assert calls(site, "rh-catchall") == before


def test_empty_segments_do_not_reach_the_catch_all(site):
    """Attack: //v1/tokens, to slip past a check of the first segment.
    Stopped by: no route has an empty segment, so such a path matches none
    (404 not_found) and the greedy never sees it."""
    before = calls(site, "rh-catchall")
    status, _, body = raw(site, "GET", "//v1/tokens")
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert calls(site, "rh-catchall") == before
    # Hearth's own answer is still Hearth's, catch-all or not
    status, _, body = raw(site, "GET", "/v1/functions")
    assert status == 200 and "functions" in body


@pytest.mark.parametrize("path", [
    "/V1/x", "/v1", "/%76%31/x", "//v1/x", "/v1%2Fx", "/fn/{x+}", "/Fn/x", "/metrics/{m}",
    "/healthz", "/./v1/x", "/x/../v1/y", "/{v1}/../x",
])
def test_a_route_cannot_be_deployed_over_hearths_namespace(hearth, path):
    """Attack: a deploy claims a route under /v1/, /fn/, /healthz or
    /metrics with case, encoding or dot-segment tricks. Stopped by:
    routes_validate takes literal segments of plain characters only (no '%',
    no '.' or '..', no empty segment) and compares the first with the
    reserved list in any case (400 invalid_field)."""
    err = assert_error(hearth.deploy("rh-squat", {"main.py": WHO}, routes=[route("GET", path)]),
                       400, "invalid_field")
    assert "routes[0].path" in err["message"]
    assert_error(hearth.show("rh-squat"), 404, "function_not_found")


def test_params_reach_the_right_function_decoded(site):
    """Control: what is allowed arrives decoded and whole, in the function
    the template names."""
    status, _, body = raw(site, "GET", "/files/caf%C3%A9%20menu")
    assert status == 200 and body == {"fn": "rh-files", "params": {"name": "caf\u00e9 menu"}}
    status, _, body = raw(site, "GET", "/files/a/b")
    assert body == {"fn": "rh-files", "params": {"dir": "a", "name": "b"}}
    status, _, body = raw(site, "GET", "/files/a/b/c")
    assert body == {"fn": "rh-catchall", "params": {"proxy": "files/a/b/c"}}
