"""Issue 14 §3, versions and aliases: the kept versions and --keep-versions,
rollback without an upload, aliases with weights, Lambda's qualifiers
(name:3, name:prod, name:$LATEST) in /invoke (sync and async), /fn/,
routes, schedules and destinations, and each version's own warm pool.

One daemon for the module, started with --keep-versions 3; each test uses
its own function names."""

import os

from conftest import assert_error, py, wait_until

HEARTH_ARGS = ("--keep-versions", "3")
ASYNC = {"Prefer": "respond-async"}


def code(v):
    """A handler that says which code (v) and which worker served it."""
    return py("""
        import os, uuid
        WORKER = uuid.uuid4().hex

        def handler(event, context):
            return {"code": %d, "worker": WORKER, "pid": os.getpid()}
    """ % v)


def deploy_versions(h, name, n, **settings):
    for v in range(1, n + 1):
        fn = h.deploy_ok(name, code(v), **settings)
        assert fn["version"] == v


def served(r):
    assert r.status_code == 200, r.text[:500]
    return r.json()["code"], int(r.headers["X-Hearth-Function-Version"])


def versions(h, name):
    r = h.get("/v1/functions/%s/versions" % name)
    assert r.status_code == 200, r.text
    return r.json()


def invocation_done(h, iid, timeout=30):
    got = {}

    def done():
        got.update(h.get("/v1/invocations/%s" % iid).json())
        return got["status"] in ("succeeded", "dead")

    assert wait_until(done, timeout, 0.05), got
    return got


def test_versions_list_and_pruning(hearth):
    deploy_versions(hearth, "vs-list", 2, memory_mb=128)
    body = versions(hearth, "vs-list")
    assert body["function"] == "vs-list" and body["current"] == 2
    vs = body["versions"]
    assert [v["version"] for v in vs] == [2, 1]
    assert vs[0]["current"] is True and vs[1]["current"] is False
    assert vs[0]["settings"]["memory_mb"] == 128 and vs[0]["settings"]["handler"] == "main.handler"
    assert vs[0]["created"].endswith("Z") and vs[0]["created_ms"] >= vs[1]["created_ms"]
    # an alias keeps version 1 past --keep-versions 3; 2 goes
    r = hearth.request("PUT", "/v1/functions/vs-list/aliases/old", json={"version": 1})
    assert r.status_code == 201, r.text
    for v in (3, 4, 5):
        hearth.deploy_ok("vs-list", code(v))
    kept = [v["version"] for v in versions(hearth, "vs-list")["versions"]]
    assert kept == [5, 4, 3, 1], kept
    code_dir = str(hearth.data_dir / "code" / "vs-list")
    if os.path.isdir(code_dir):  # the pruned code goes too
        assert wait_until(lambda: not os.path.exists(os.path.join(code_dir, "2")), 10)
    assert_error(hearth.invoke("vs-list:2", json={}), 404, "version_not_found")
    assert served(hearth.invoke("vs-list:old", json={}))[0] == 1


def test_rollback_serves_the_old_code_at_once(hearth):
    deploy_versions(hearth, "vs-roll", 3)
    assert served(hearth.invoke("vs-roll", json={}))[0] == 3
    r = hearth.request("POST", "/v1/functions/vs-roll/rollback", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert served(hearth.invoke("vs-roll", json={})) == (1, 1)
    assert versions(hearth, "vs-roll")["current"] == 1
    # without a body: the newest kept version older than the current one
    hearth.request("POST", "/v1/functions/vs-roll/rollback", json={"version": 3})
    r = hearth.request("POST", "/v1/functions/vs-roll/rollback")
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    assert served(hearth.invoke("vs-roll:$LATEST", json={}))[0] == 2
    # a deploy after a rollback is the next number, current again
    assert hearth.deploy_ok("vs-roll", code(4))["version"] == 4
    assert_error(hearth.request("POST", "/v1/functions/vs-roll/rollback", json={"version": 99}),
                 404, "version_not_found")
    assert_error(hearth.request("POST", "/v1/functions/vs-roll/rollback", json={"version": "1"}),
                 400, "invalid_field")
    assert_error(hearth.request("POST", "/v1/functions/vs-roll/rollback", data="{",
                                headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert_error(hearth.request("POST", "/v1/functions/vs-none/rollback", json={"version": 1}),
                 404, "function_not_found")
    audit = hearth.get("/v1/audit").json()["audit"]
    assert any(a["action"] == "rollback" and a["target"] == "vs-roll:1" for a in audit), audit


def test_aliases_crud_and_invoke(hearth):
    deploy_versions(hearth, "vs-alias", 2)
    base = "/v1/functions/vs-alias/aliases"
    r = hearth.request("PUT", base + "/prod", json={"version": 1})
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["function"] == "vs-alias" and a["name"] == "prod" and a["version"] == 1
    assert a["weights"] == {} and a["created"] and a["updated"]
    r = hearth.request("PUT", base + "/prod", json={"version": 1, "weights": {"2": 0.25}})
    assert r.status_code == 200 and r.json()["weights"] == {"2": 0.25}, r.text
    assert hearth.get(base + "/prod").json()["weights"] == {"2": 0.25}
    assert [x["name"] for x in hearth.get(base).json()["aliases"]] == ["prod"]
    hearth.request("PUT", base + "/prod", json={"version": 1})
    assert served(hearth.invoke("vs-alias:prod", json={})) == (1, 1)
    assert served(hearth.invoke("vs-alias:2", json={})) == (2, 2)
    assert served(hearth.invoke("vs-alias", json={})) == (2, 2)
    assert hearth.request("DELETE", base + "/prod").status_code == 204
    assert_error(hearth.get(base + "/prod"), 404, "alias_not_found")
    assert_error(hearth.invoke("vs-alias:prod", json={}), 404, "alias_not_found")
    assert_error(hearth.request("DELETE", base + "/prod"), 404, "alias_not_found")
    actions = [a["action"] for a in hearth.get("/v1/audit").json()["audit"]
               if a["target"] == "vs-alias:prod"]
    assert {"alias_create", "alias_update", "alias_delete"} <= set(actions), actions


def test_bad_aliases_weights_and_qualifiers(hearth):
    deploy_versions(hearth, "vs-bad", 2)
    base = "/v1/functions/vs-bad/aliases/"
    for alias in ("Prod", "1abc", "a" * 64, "p%2Fq", "p.q", "%00"):
        assert_error(hearth.request("PUT", base + alias, json={"version": 1}), 400, "invalid_name")
    for body in ({}, {"version": 0}, {"version": "1"}, {"version": 1, "extra": 1},
                 {"version": 1, "weights": {"2": 1.0}}, {"version": 1, "weights": {"2": 0}},
                 {"version": 1, "weights": {"1": 0.5}}, {"version": 1, "weights": {"x": 0.5}},
                 {"version": 1, "weights": {"2": 0.6, "3": 0.5}},
                 {"version": 1, "weights": {str(v): 0.1 for v in range(2, 8)}},
                 {"version": 1, "weights": [2]}):
        assert_error(hearth.request("PUT", base + "prod", json=body), 400, "invalid_field")
    assert_error(hearth.request("PUT", base + "prod", data="nope",
                                headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert_error(hearth.request("PUT", base + "prod", json={"version": 9}), 404,
                 "version_not_found")
    assert_error(hearth.request("PUT", base + "prod", json={"version": 1, "weights": {"9": 0.1}}),
                 404, "version_not_found")
    assert_error(hearth.request("PUT", "/v1/functions/vs-nope/aliases/prod", json={"version": 1}),
                 404, "function_not_found")
    for ref in ("vs-bad:", "vs-bad:0", "vs-bad:-1", "vs-bad:Prod", "vs-bad:a:b", "vs-bad:%00",
                "vs-bad:..%2Fx", "vs-bad:" + "9" * 40, "vs-bad:" + "a" * 70, ":prod"):
        assert_error(hearth.invoke(ref, json={}), 400, "invalid_name")
    assert_error(hearth.invoke("vs-bad:7", json={}), 404, "version_not_found")
    assert_error(hearth.invoke("vs-bad:nope", json={}), 404, "alias_not_found")
    assert_error(hearth.invoke("vs-gone:prod", json={}), 404, "function_not_found")
    # a qualifier is for calls only: management routes take bare names
    assert_error(hearth.get("/v1/functions/vs-bad:1"), 400, "invalid_name")


def test_weighted_alias_splits_calls(hearth):
    deploy_versions(hearth, "vs-weight", 2)
    r = hearth.request("PUT", "/v1/functions/vs-weight/aliases/live",
                       json={"version": 1, "weights": {"2": 0.3}})
    assert r.status_code == 201, r.text
    counts = {1: 0, 2: 0}
    for _ in range(200):
        c, v = served(hearth.invoke("vs-weight:live", json={}))
        assert c == v
        counts[v] += 1
    # 60 expected on version 2; far outside chance either way fails
    assert 25 <= counts[2] <= 100, counts


def test_a_canary_keeps_the_stable_versions_warm_worker(hearth):
    deploy_versions(hearth, "vs-canary", 2)
    hearth.request("PUT", "/v1/functions/vs-canary/aliases/stable", json={"version": 1})
    first = hearth.invoke("vs-canary:stable", json={})
    assert served(first)[0] == 1
    stable_worker = first.json()["worker"]
    # the canary (current version 2) starts its own worker...
    r = hearth.invoke("vs-canary", json={})
    assert served(r)[0] == 2 and r.json()["worker"] != stable_worker
    hearth.invoke_ok("vs-canary", json={})
    # ...and the stable one is still warm: no cold start, the same worker
    again = hearth.invoke("vs-canary:stable", json={})
    assert served(again)[0] == 1
    assert "X-Hearth-Cold-Start" not in again.headers
    assert again.json()["worker"] == stable_worker
    # a deploy keeps the aliased version's worker too; a rollback to it
    # serves on that same warm worker
    hearth.deploy_ok("vs-canary", code(3))
    again = hearth.invoke("vs-canary:1", json={})
    assert again.json()["worker"] == stable_worker and "X-Hearth-Cold-Start" not in again.headers
    r = hearth.request("POST", "/v1/functions/vs-canary/rollback", json={"version": 1})
    assert r.status_code == 200, r.text
    again = hearth.invoke("vs-canary", json={})
    assert again.json()["worker"] == stable_worker and "X-Hearth-Cold-Start" not in again.headers
    # metrics stay per function: every call counted under its name
    m = hearth.get("/metrics").text
    assert 'function="vs-canary"' in m


def test_qualifier_in_fn_routes_and_async(hearth):
    deploy_versions(hearth, "vs-http", 2, routes=[
        {"method": "GET", "path": "/vs-http/cur"},
        {"method": "GET", "path": "/vs-http/old", "qualifier": "1"}])
    hearth.request("PUT", "/v1/functions/vs-http/aliases/prod", json={"version": 1})
    r = hearth.get("/fn/vs-http:prod/x")
    assert r.status_code == 200 and r.json()["code"] == 1, r.text
    assert hearth.get("/fn/vs-http/x").json()["code"] == 2
    assert hearth.get("/vs-http/old").json()["code"] == 1
    assert hearth.get("/vs-http/cur").json()["code"] == 2
    listed = {x["path"]: x for x in hearth.get("/v1/routes").json()["routes"]}
    assert listed["/vs-http/old"]["qualifier"] == "1" and "qualifier" not in listed["/vs-http/cur"]
    assert_error(hearth.deploy("vs-http-bad", files={"main.py": code(1)},
                               routes=[{"method": "GET", "path": "/x", "qualifier": "Bad"}]),
                 400, "invalid_field")
    # async: the qualifier travels with the invocation
    r = hearth.invoke("vs-http:prod", json={}, headers=ASYNC)
    assert r.status_code == 202, r.text
    inv = invocation_done(hearth, r.json()["id"])
    assert inv["status"] == "succeeded" and inv["version"] == 1, inv
    assert_error(hearth.invoke("vs-http:nope", json={}, headers=ASYNC), 404, "alias_not_found")
    assert_error(hearth.invoke("vs-http:9", json={}, headers=ASYNC), 404, "version_not_found")


def test_qualifier_in_destinations_and_schedules(hearth):
    deploy_versions(hearth, "vs-dest", 2)
    hearth.request("PUT", "/v1/functions/vs-dest/aliases/prod", json={"version": 1})
    hearth.deploy_ok("vs-src", code(0), on_success="vs-dest:prod")
    r = hearth.invoke("vs-src", json={}, headers=ASYNC)
    assert r.status_code == 202, r.text
    invocation_done(hearth, r.json()["id"])

    def dest_done():
        invs = hearth.get("/v1/functions/vs-dest/invocations").json()["invocations"]
        return [i for i in invs if i["status"] == "succeeded"]

    got = wait_until(dest_done, 20)
    assert got and got[0]["version"] == 1, got
    assert_error(hearth.deploy("vs-src", files={"main.py": code(0)}, on_success="vs-dest:Bad"),
                 400, "invalid_field")
    # a schedule at a version
    deploy_versions(hearth, "vs-sched", 2)
    hearth.deploy_ok("vs-sched", code(3), schedules=[{"cron": "@every 1s", "qualifier": "2"}])

    def fired():
        invs = hearth.get("/v1/functions/vs-sched/invocations").json()["invocations"]
        return [i for i in invs if i["status"] == "succeeded"]

    got = wait_until(fired, 20)
    assert got and all(i["version"] == 2 for i in got), got
    listed = hearth.get("/v1/functions/vs-sched/schedules").json()["schedules"]
    assert listed[0]["qualifier"] == "2", listed
    hearth.delete("vs-sched")
    assert_error(hearth.deploy("vs-sched2", files={"main.py": code(1)},
                               schedules=[{"cron": "@every 1s", "qualifier": "a:b"}]),
                 400, "invalid_field")


def test_delete_takes_the_aliases(hearth):
    deploy_versions(hearth, "vs-del", 1)
    hearth.request("PUT", "/v1/functions/vs-del/aliases/prod", json={"version": 1})
    assert hearth.delete("vs-del").status_code == 204
    hearth.deploy_ok("vs-del", code(1))
    assert_error(hearth.get("/v1/functions/vs-del/aliases/prod"), 404, "alias_not_found")
    assert hearth.get("/v1/functions/vs-del/aliases").json() == {"aliases": []}


def test_current_pointer_and_aliases_survive_a_restart(hearth):
    deploy_versions(hearth, "vs-keep", 2)
    assert hearth.request("POST", "/v1/functions/vs-keep/rollback",
                          json={"version": 1}).status_code == 200
    hearth.request("PUT", "/v1/functions/vs-keep/aliases/next",
                   json={"version": 2, "weights": {"1": 0.5}})
    hearth.restart()
    assert served(hearth.invoke("vs-keep", json={})) == (1, 1)
    assert served(hearth.invoke("vs-keep:2", json={})) == (2, 2)
    a = hearth.get("/v1/functions/vs-keep/aliases/next").json()
    assert a["version"] == 2 and a["weights"] == {"1": 0.5}, a
    assert hearth.show("vs-keep").json()["version"] == 1
