"""Attacks on POST /v1/stacks/{stack} (issue 14 §2). Each test names what
stops it. A refused apply must change nothing: no function, version, stack
membership or file appears."""

import io
import os
import tarfile
import time
import uuid

import requests

from conftest import assert_error, e2e_conftest, py

b64, targz, zipbytes = e2e_conftest.b64, e2e_conftest.targz, e2e_conftest.zipbytes

MAIN = py("""
    def handler(event, context):
        return "ok"
""")
MARK = "hearth-stack-evil-" + uuid.uuid4().hex[:12]


def fn(pack=None, **settings):
    body = {"code": b64(pack() if pack else targz({"main.py": MAIN})), "runtime": "python3",
            "handler": "main.handler"}
    body.update(settings)
    return body


def post(h, stack, body, token=Ellipsis, **kw):
    kw.setdefault("timeout", 120)
    if isinstance(body, (bytes, str)):
        kw["data"] = body
        kw.setdefault("headers", {"Content-Type": "application/json"})
    else:
        kw["json"] = body
    return h.request("POST", "/v1/stacks/" + stack, token=token, **kw)


def nothing_changed(h, before):
    assert h.get("/v1/stacks").json() == before["stacks"]
    assert sorted(f["name"] for f in h.get("/v1/functions").json()["functions"]) == before["fns"]


def snapshot(h):
    return {"stacks": h.get("/v1/stacks").json(),
            "fns": sorted(f["name"] for f in h.get("/v1/functions").json()["functions"])}


def test_hostile_stack_names(hearth):
    """Attack: a stack name that is a path, a NUL, overlong or odd. Stopped
    by: api.c's segment check (function-name rules) before any body is read."""
    before = snapshot(hearth)
    for name in ["..", "%2e%2e", "A", "a%20b", "a%00b", "x" * 64, "-a", "%2fetc", "a%2f..",
                 "\u00e9t\u00e9".encode().decode("latin-1")]:
        r = post(hearth, name, {"functions": {"sn-a": fn()}})
        assert r.status_code in (400, 404), (name, r.status_code, r.text[:300])
        if r.status_code == 400:
            assert_error(r, 400, "invalid_name")
    for name in ["a/b", "a/b/c"]:  # (requests itself folds "a/../b" into "b")
        r = post(hearth, name, {"functions": {"sn-a": fn()}})
        assert r.status_code in (400, 404, 405), (name, r.status_code)
    nothing_changed(hearth, before)


def test_hostile_function_names_and_malformed_bodies(hearth):
    """Attack: names that are paths, and bodies of the wrong shape. Stopped
    by: stacks.c's parse (JSON object, known keys, duplicates refused, at most
    64 functions) and validate_function_name before anything is unpacked."""
    before = snapshot(hearth)
    for name in ["../x", "..", "A", "", "x" * 64, "a/b", "\u00e9"]:
        err = assert_error(post(hearth, "mb", {"functions": {name: fn()}}), 400, "invalid_name")
        assert "function" not in err
    # jansson itself refuses a NUL in a key
    assert_error(post(hearth, "mb", {"functions": {"a\u0000b": fn()}}), 400, "invalid_json")
    bad = [
        b"not json", b"[]", b"{", b'{"functions": []}', b'{"functions": {"a": 1}}',
        b'{"functions": {"a": {}}, "functions": {}}', b'{"functions": {}, "dry_run": "yes"}',
        b'{"functions": {}, "extra": 1}', b'{"functions": {"mb-a": {"runtime": "python3"}}}',
        b'{"functions": ' + b'[' * 100000 + b']' * 100000 + b'}',
        b'{"functions": {"mb-a": {"code": "' + b'A' * 1000 + b'", "runtime": "python3", '
        b'"handler": "main.handler"}}}',
    ]
    for body in bad:
        r = post(hearth, "mb", body)
        assert 400 <= r.status_code < 500, (body[:60], r.status_code, r.text[:300])
        assert r.json()["error"]["code"], r.text
    many = {"functions": {"mb-%d" % i: {} for i in range(65)}}
    assert_error(post(hearth, "mb", many), 400, "invalid_field")
    r = post(hearth, "mb", b"\x1f\x8b", headers={"Content-Type": "application/gzip"})
    assert_error(r, 415, "unsupported_media_type")
    assert_error(hearth.request("POST", "/v1/stacks/mb", params={"dry_run": "maybe"},
                                json={"functions": {}}), 400, "invalid_query")
    nothing_changed(hearth, before)
    assert hearth.healthy()


def test_huge_bodies(hearth):
    """Attack: a body larger than any stack. Stopped by: api_body_limit (the
    deploy bound, 70 MiB, for a token that may deploy; 64 KiB for others)."""
    r = hearth.request("POST", "/v1/tokens", json={"name": "hb-read", "scopes": ["read"]})
    reader = r.json()["token"]
    big = b'{"functions": {"hb-a": {"code": "' + b"A" * (200 * 1024) + b'"}}}'
    r = post(hearth, "hb", big, token=reader)
    assert r.status_code in (401, 403, 413), r.status_code
    # Announced as larger than the bound: refused before a byte of it is read.
    with requests.Session() as s:
        req = requests.Request("POST", hearth.url("/v1/stacks/hb"),
                               headers=dict(hearth.auth_header(),
                                            **{"Content-Type": "application/json",
                                               "Content-Length": str(71 * 1024 * 1024)}),
                               data=b"{}").prepare()
        req.headers["Content-Length"] = str(71 * 1024 * 1024)
        try:
            r = s.send(req, timeout=30)
            assert r.status_code == 413, r.status_code
        except requests.ConnectionError:
            pass  # closed on us: refused as well
    assert hearth.healthy()
    assert_error(hearth.get("/v1/stacks/hb"), 404, "stack_not_found")


def test_token_glob_limits_every_function(hearth):
    """Attack: a token limited to functions `gl-a*` applies a stack that also
    holds `gl-b`, or one that would delete `gl-b`. Stopped by: stacks.c's
    check of every function of the body and every delete against the token."""
    r = hearth.request("POST", "/v1/tokens", json={"name": "gl-a-only", "scopes": ["deploy",
                                                                                  "read"],
                                                  "functions": "gl-a*"})
    assert r.status_code == 201, r.text
    limited = r.json()["token"]
    before = snapshot(hearth)
    err = assert_error(post(hearth, "gl", {"functions": {"gl-a1": fn(), "gl-b1": fn()}},
                            token=limited), 403, "forbidden")
    assert err["function"] == "gl-b1"
    nothing_changed(hearth, before)
    assert post(hearth, "gl", {"functions": {"gl-a1": fn(), "gl-b1": fn()}}).status_code == 200
    err = assert_error(post(hearth, "gl", {"functions": {"gl-a1": fn()}}, token=limited), 403,
                       "forbidden")
    assert err["function"] == "gl-b1"
    assert hearth.get("/v1/stacks/gl").json()["functions"] == ["gl-a1", "gl-b1"]
    # What it may reach, it may apply; and it sees only its functions.
    ok = post(hearth, "gl-mine", {"functions": {"gl-a2": fn()}}, token=limited)
    assert ok.status_code == 200, ok.text
    shown = hearth.get("/v1/stacks/gl", token=limited).json()
    assert shown["functions"] == ["gl-a1"]
    reader = hearth.request("POST", "/v1/tokens",
                            json={"name": "gl-reader", "scopes": ["read"]}).json()["token"]
    assert_error(post(hearth, "gl", {"functions": {}}, token=reader), 403, "forbidden")
    assert hearth.get("/v1/stacks/gl").json()["functions"] == ["gl-a1", "gl-b1"]


def _info(name, **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def test_hostile_archives_refused_as_for_put(hearth):
    """Attack: an archive with '..', absolute paths, links out or devices in
    one function of a stack. Stopped by: package.c, through the same
    deploy_unit step a PUT uses; the whole stack is refused."""
    cases = {
        "dotdot": lambda: targz({"main.py": MAIN, "../" + MARK: "owned"}),
        "absolute": lambda: targz({"main.py": MAIN, "/tmp/" + MARK: "owned"}),
        "symlink-out": lambda: targz({"main.py": MAIN, "d": _info(
            "d", type=tarfile.SYMTYPE, linkname="/tmp"), "d/" + MARK: "owned"}),
        "zip-dotdot": lambda: zipbytes({"main.py": MAIN, "../" + MARK: "owned"}),
        "device": lambda: targz({"main.py": MAIN, "null": _info(
            "null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)}),
    }
    before = snapshot(hearth)
    for case, make in cases.items():
        body = {"functions": {"ha-good": fn(), "ha-evil": fn(make)}}
        err = assert_error(post(hearth, "ha", body), 400, "invalid_package")
        assert err["function"] == "ha-evil", (case, err)
        nothing_changed(hearth, before)
    hits = [n for n in os.listdir("/tmp") if MARK in n]
    for root, dirs, files in os.walk(str(hearth.base)):
        hits += [os.path.join(root, n) for n in files + dirs if MARK in n]
    assert not hits, hits
    staging = hearth.data_dir / "staging"
    if staging.is_dir():  # nothing left behind by the refused units
        time.sleep(0.2)
        assert not [n for n in os.listdir(str(staging)) if n.startswith("deploy-")]
