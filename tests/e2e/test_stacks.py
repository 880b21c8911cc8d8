"""Issue 14 §2 (the daemon side of a stack file): POST /v1/stacks/{stack}
plans and applies a whole application all or nothing, compares content
digests so unchanged functions are not redeployed, deletes only what the
same stack created, and survives kill -9 with a consistent registry.
One daemon for the module; each test uses its own stack and names."""

import threading
import time

import pytest

from conftest import assert_error, b64, py, targz, zipbytes


def code(marker, extra=None):
    """A python3 package whose handler answers `marker`."""
    files = {"main.py": py("""
        def handler(event, context):
            return {"marker": %r, "fn": context.function_name}
    """ % marker)}
    files.update(extra or {})
    return files


def fn(marker, pack=targz, **settings):
    body = {"code": b64(pack(code(marker))), "runtime": "python3", "handler": "main.handler"}
    body.update(settings)
    return body


def apply(h, stack, functions, dry_run=None, query=None, **kw):
    body = {"functions": functions}
    if dry_run is not None:
        body["dry_run"] = dry_run
    kw.setdefault("timeout", 120)
    return h.request("POST", "/v1/stacks/%s" % stack, json=body, params=query or {}, **kw)


def apply_ok(h, stack, functions, **kw):
    r = apply(h, stack, functions, **kw)
    assert r.status_code == 200, r.text[:800]
    return {p["function"]: p for p in r.json()["plan"]}


def version(h, name):
    r = h.get("/v1/functions/%s" % name)
    return r.json()["version"] if r.status_code == 200 else None


def marker(h, name):
    r = h.invoke_ok(name, json={})
    return r.json()["marker"]


def test_plan_apply_unchanged_update_delete(hearth):
    three = {"st-web": fn("web-1", routes=[{"method": "GET", "path": "/st-hello"}]),
             "st-tick": fn("tick-1", schedules=["@every 1h"]),
             "st-sub": fn("sub-1", subscriptions=["st-orders"])}

    r = apply(hearth, "app", three, query={"dry_run": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is True
    plan = {p["function"]: p for p in r.json()["plan"]}
    assert {n: p["action"] for n, p in plan.items()} == dict.fromkeys(three, "create")
    assert all(p["version"] == 1 for p in plan.values())
    for name in three:
        assert version(hearth, name) is None, "a dry run created %s" % name
    assert_error(hearth.get("/v1/stacks/app"), 404, "stack_not_found")
    assert hearth.get("/v1/routes").json()["routes"] == [] or all(
        r["function"] not in three for r in hearth.get("/v1/routes").json()["routes"])

    plan = apply_ok(hearth, "app", three)
    assert {n: p["action"] for n, p in plan.items()} == dict.fromkeys(three, "create")
    for name in three:
        f = hearth.get("/v1/functions/%s" % name).json()
        assert f["version"] == 1 and f["stack"] == "app"
        assert f["digest"].startswith("sha256:") and len(f["digest"]) == 71
    assert marker(hearth, "st-web") == "web-1"
    r = hearth.request("GET", "/st-hello")
    assert r.status_code == 200 and r.json()["marker"] == "web-1", r.text
    assert hearth.get("/v1/stacks/app").json() == {"name": "app", "functions": sorted(three)}
    assert {"name": "app", "functions": sorted(three)} in hearth.get("/v1/stacks").json()["stacks"]

    # The same files as a .zip: the same digest, so nothing is redeployed.
    again = dict(three, **{"st-tick": fn("tick-1", pack=zipbytes, schedules=["@every 1h"])})
    plan = apply_ok(hearth, "app", again)
    assert {n: p["action"] for n, p in plan.items()} == dict.fromkeys(three, "unchanged")
    assert all(p["version"] == 1 and p["changes"] == [] for p in plan.values())
    assert [version(hearth, n) for n in three] == [1, 1, 1]

    # One function's code, another's setting: only those two get versions.
    changed = dict(three, **{"st-web": fn("web-2", routes=[{"method": "GET", "path": "/st-hello"}]),
                             "st-sub": fn("sub-1", subscriptions=["st-orders"], memory_mb=192)})
    r = apply(hearth, "app", changed, dry_run=True)
    plan = {p["function"]: p for p in r.json()["plan"]}
    assert plan["st-web"]["action"] == "update" and plan["st-web"]["changes"] == ["code"]
    assert plan["st-sub"]["changes"] == ["memory_mb"] and plan["st-sub"]["version"] == 2
    assert marker(hearth, "st-web") == "web-1", "a dry run changed the code"
    plan = apply_ok(hearth, "app", changed)
    assert {n: p["action"] for n, p in plan.items()} == {
        "st-web": "update", "st-tick": "unchanged", "st-sub": "update"}
    assert [version(hearth, n) for n in ("st-web", "st-tick", "st-sub")] == [2, 1, 2]
    assert marker(hearth, "st-web") == "web-2"
    assert hearth.request("GET", "/st-hello").json()["marker"] == "web-2"

    # Left out of the body: deleted, routes and all.
    del changed["st-web"]
    plan = apply_ok(hearth, "app", changed)
    assert plan["st-web"]["action"] == "delete"
    assert version(hearth, "st-web") is None
    assert hearth.request("GET", "/st-hello").status_code == 404
    assert hearth.get("/v1/stacks/app").json()["functions"] == ["st-sub", "st-tick"]
    actions = [(a["action"], a["target"]) for a in hearth.get("/v1/audit").json()["audit"]]
    assert ("delete", "st-web") in actions and ("stack_apply", "app") in actions


def test_one_bad_function_changes_nothing(hearth):
    good = {"nb-a": fn("a-1", routes=[{"method": "GET", "path": "/nb-a"}]),
            "nb-b": fn("b-1"), "nb-c": fn("c-1")}
    apply_ok(hearth, "nb", good)
    hearth.deploy_ok("nb-outside", "def handler(e, c):\n    return 1\n",
                     routes=[{"method": "GET", "path": "/nb-taken"}])
    digests = {n: hearth.get("/v1/functions/%s" % n).json()["digest"] for n in good}

    def refused(bad_name, bad, status, code):
        body = {"nb-a": fn("a-2", routes=[{"method": "GET", "path": "/nb-a"}]),
                "nb-b": fn("b-2"), "nb-c": fn("c-2"), "nb-new": fn("new-1")}
        body[bad_name] = bad
        err = assert_error(apply(hearth, "nb", body), status, code)
        assert err["function"] == bad_name and err["message"].startswith(bad_name + ": "), err
        for n in good:
            f = hearth.get("/v1/functions/%s" % n).json()
            assert f["version"] == 1 and f["digest"] == digests[n], (code, f)
            assert marker(hearth, n) == n[-1] + "-1"
        assert version(hearth, "nb-new") is None
        assert hearth.request("GET", "/nb-a").json()["marker"] == "a-1"

    refused("nb-c", fn("c-2", runtime="cobol"), 400, "unsupported_runtime")
    refused("nb-b", fn("b-2", memory_mb=-5), 400, "invalid_field")
    refused("nb-c", fn("c-2", routes=[{"method": "GET", "path": "/nb-taken"}]), 409,
            "route_conflict")
    refused("nb-new", fn("new-1", routes=[{"method": "ANY", "path": "/nb-a"}]), 409,
            "route_conflict")
    refused("nb-b", fn("b-2", secrets=["nb-no-such-secret"]), 400, "unknown_secret")
    refused("nb-c", dict(fn("c-2"), code="not base64!"), 400, "invalid_package")
    refused("nb-c", dict(fn("c-2"), archive="x"), 400, "unknown_field")


def test_ownership(hearth):
    apply_ok(hearth, "own-one", {"own-f": fn("f-1")})
    err = assert_error(apply(hearth, "own-two", {"own-f": fn("f-1"), "own-g": fn("g-1")}), 409,
                       "stack_conflict")
    assert err["function"] == "own-f" and "own-one" in err["message"]
    assert version(hearth, "own-g") is None
    assert hearth.get("/v1/functions/own-f").json()["stack"] == "own-one"

    # A stack-less function is adopted: "update", no new version for the same code.
    hearth.deploy_raw("own-loner", targz(code("l-1")), "application/gzip", runtime="python3",
                      handler="main.handler")
    plan = apply_ok(hearth, "own-two", {"own-loner": fn("l-1")})
    assert plan["own-loner"]["action"] == "update"
    assert plan["own-loner"]["changes"] == ["stack"] and plan["own-loner"]["version"] == 1
    f = hearth.get("/v1/functions/own-loner").json()
    assert f["version"] == 1 and f["stack"] == "own-two"
    # A PUT keeps it in its stack; a DELETE takes it out for good.
    hearth.deploy_raw("own-loner", targz(code("l-2")), "application/gzip", runtime="python3",
                      handler="main.handler")
    assert hearth.get("/v1/functions/own-loner").json()["stack"] == "own-two"
    assert hearth.request("DELETE", "/v1/functions/own-loner").status_code == 204
    assert_error(hearth.get("/v1/stacks/own-two"), 404, "stack_not_found")
    hearth.deploy_raw("own-loner", targz(code("l-3")), "application/gzip", runtime="python3",
                      handler="main.handler")
    assert hearth.get("/v1/functions/own-loner").json()["stack"] is None
    # An empty stack deletes only its own functions.
    plan = apply_ok(hearth, "own-one", {})
    assert plan == {"own-f": plan["own-f"]} and plan["own-f"]["action"] == "delete"
    assert version(hearth, "own-loner") == 1  # deleted and deployed anew: version 1 again


def test_kill9_during_and_after_apply(hearth):
    names = ["k9-a", "k9-b", "k9-c"]
    apply_ok(hearth, "k9", {n: fn(n + "-1") for n in names})
    # Big enough that the apply takes a moment: kill -9 lands before, during
    # or after its commit; whichever, all three move together.
    pad = {"pad.bin": bytes(range(256)) * 40000}
    body = {n: {"code": b64(targz(code(n + "-2", pad))), "runtime": "python3",
                "handler": "main.handler"} for n in names}
    # A dry run does all an apply does but the commit: its time says when
    # to kill so that the apply is still unpacking or just committing.
    started = time.monotonic()
    assert apply(hearth, "k9", body, dry_run=True).status_code == 200
    took = time.monotonic() - started
    t = threading.Thread(target=lambda: _quiet(apply, hearth, "k9", body))
    t.start()
    time.sleep(took * 0.8)
    hearth.kill9()
    t.join()
    hearth.start()
    versions = {n: version(hearth, n) for n in names}
    assert len(set(versions.values())) == 1, versions
    want = "-2" if versions["k9-a"] == 2 else "-1"
    for n in names:
        assert marker(hearth, n) == n + want
    # And after a finished apply, a restart serves every function.
    apply_ok(hearth, "k9", {n: fn(n + "-3") for n in names})
    hearth.kill9()
    hearth.start()
    for n in names:
        assert marker(hearth, n) == n + "-3"
    assert hearth.get("/v1/stacks/k9").json()["functions"] == names


def _quiet(f, *a):
    try:
        f(*a)
    except Exception:  # the daemon died under the request: expected
        pass
