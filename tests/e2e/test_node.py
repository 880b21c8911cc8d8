"""The node runtime: Lambda's handler styles (async, sync, callback), in
CommonJS and ES modules, with the same event and answer rules as python3."""

import pytest

from conftest import assert_error


@pytest.fixture(autouse=True)
def node_usable(hearth):
    rts = {r["name"]: r for r in hearth.get("/v1/runtimes").json()["runtimes"]}
    if not rts.get("node", {}).get("usable"):
        pytest.skip("node is not usable here: %s" % rts.get("node"))


def deploy_node(h, name, files, handler="index.handler", **settings):
    return h.deploy_ok(name, files=files, handler=handler, runtime="node", **settings)


def test_async_commonjs_handler_gets_event_and_context(hearth):
    deploy_node(hearth, "nd-async", {"index.js": (
        "exports.handler = async (event, context) => ({got: event, fn: context.functionName,"
        " left: context.getRemainingTimeInMillis() > 0, id: context.awsRequestId});\n")})
    r = hearth.invoke_ok("nd-async", json={"a": [1, 2]})
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["got"] == {"a": [1, 2]} and body["fn"] == "nd-async" and body["left"] is True
    assert body["id"] == r.headers["X-Request-Id"]


def test_sync_and_callback_handlers(hearth):
    deploy_node(hearth, "nd-sync", {"index.js": "exports.handler = (e) => 'sync ' + e.n;\n"})
    assert hearth.invoke_ok("nd-sync", json={"n": 1}).text == "sync 1"
    deploy_node(hearth, "nd-cb", {"index.js": (
        "exports.handler = (e, c, callback) => {\n"
        "  if (e.fail) return callback(new TypeError('bad ' + e.n));\n"
        "  setTimeout(() => callback(null, {n: e.n}), 5);\n"
        "};\n")})
    assert hearth.invoke_ok("nd-cb", json={"n": 2}).json() == {"n": 2}
    err = assert_error(hearth.invoke("nd-cb", json={"fail": True, "n": 3}), 500, "function_error")
    assert err["type"] == "TypeError" and "bad 3" in err["message"], err


def test_es_module_handler(hearth):
    deploy_node(hearth, "nd-esm", {"app.mjs": (
        "import { createHash } from 'node:crypto';\n"
        "export const handler = async (event) => createHash('sha256').update(event).digest('hex');\n")},
        handler="app.handler")
    r = hearth.invoke_ok("nd-esm", data=b"abc")
    assert r.text == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_strings_buffers_and_http_answers(hearth):
    deploy_node(hearth, "nd-types", {"index.js": (
        "exports.handler = async (e) => {\n"
        "  if (e === 'buf') return Buffer.from([0, 1, 255]);\n"
        "  if (e.method) return {statusCode: 201, headers: {'X-Made': 'yes'}, body: {path: e.path}};\n"
        "  return 'text';\n"
        "};\n")})
    r = hearth.invoke_ok("nd-types", data=b"buf")
    assert r.headers["Content-Type"] == "application/octet-stream" and r.content == b"\x00\x01\xff"
    assert hearth.invoke_ok("nd-types", json={}).headers["Content-Type"].startswith("text/plain")
    r = hearth.request("POST", "/fn/nd-types/a/b", data=b"x")
    assert r.status_code == 201 and r.headers["X-Made"] == "yes", r.text
    assert r.json() == {"path": "/a/b"}


def test_module_state_is_kept_between_warm_calls(hearth):
    deploy_node(hearth, "nd-state", {"index.js": (
        "let calls = 0; const loadedAt = Date.now();\n"
        "exports.handler = async () => ({calls: ++calls, loadedAt});\n")})
    a, b = hearth.invoke_ok("nd-state", json={}).json(), hearth.invoke_ok("nd-state", json={}).json()
    assert (a["calls"], b["calls"]) == (1, 2) and a["loadedAt"] == b["loadedAt"]


def test_load_failures_are_init_errors(hearth):
    deploy_node(hearth, "nd-syntax", {"index.js": "exports.handler = async ( => 1;\n"},
                timeout_ms=5000)
    err = assert_error(hearth.invoke("nd-syntax", json={}), 500, "init_error")
    assert "SyntaxError" in err["message"], err
    deploy_node(hearth, "nd-nofn", {"index.js": "exports.other = () => 1;\n"}, timeout_ms=5000)
    err = assert_error(hearth.invoke("nd-nofn", json={}), 500, "init_error")
    assert "handler" in err["message"], err
    r = hearth.deploy("nd-badh", files={"index.js": "x"}, handler="index", runtime="node")
    assert_error(r, 400, "invalid_field")
