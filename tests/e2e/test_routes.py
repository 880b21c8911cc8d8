"""Issue 11 §3 (HTTP routes): a function's "routes" served from the root of the
listen address, the most specific route first, conflicts refused with nothing
changed, GET /v1/routes, auth as the function says, and routes that outlive a
restart and die with their function."""

import pytest
import requests

from conftest import assert_error, py

WHO = py("""
    def handler(event, context):
        return {"fn": context.function_name, "event": event}
""")


def route(method, path):
    return {"method": method, "path": path}


def call(h, method, path, token=Ellipsis, **kw):
    """A request to a routed path (the admin token unless told otherwise)."""
    return h.request(method, path, token=token, **kw)


def answered_by(h, method, path, **kw):
    r = call(h, method, path, **kw)
    assert r.status_code == 200, "%s %s: %d %s" % (method, path, r.status_code, r.text[:800])
    return r.json()["fn"]


def make_token(h, name, scopes, **extra):
    r = h.request("POST", "/v1/tokens", json=dict(name=name, scopes=list(scopes), **extra))
    assert r.status_code == 201, r.text
    return r.json()["token"]


def table(h):
    r = h.get("/v1/routes")
    assert r.status_code == 200, r.text
    return r.json()["routes"]


# --- precedence and the event ---------------------------------------------------


@pytest.fixture(scope="module")
def shop(hearth):
    hearth.deploy_ok("rt-lit", WHO, routes=[route("GET", "/shop/items/new"),
                                            route("GET", "/shop/items/{id}/reviews")])
    hearth.deploy_ok("rt-param", WHO, routes=[route("GET", "/shop/items/{id}"),
                                              route("ANY", "/shop/items/{id}/{action}")])
    hearth.deploy_ok("rt-greedy", WHO, routes=[route("GET", "/shop/items/{rest+}"),
                                               route("GET", "/shop")])
    return hearth


def test_literal_beats_parameter_beats_greedy(shop):
    assert answered_by(shop, "GET", "/shop/items/new") == "rt-lit"
    assert answered_by(shop, "GET", "/shop/items/42") == "rt-param"
    assert answered_by(shop, "GET", "/shop/items/42/reviews") == "rt-lit"
    assert answered_by(shop, "GET", "/shop/items/42/buy") == "rt-param"
    assert answered_by(shop, "GET", "/shop/items/42/buy/now") == "rt-greedy"
    # the literal "new" has nothing below it: back up to {id}
    assert answered_by(shop, "POST", "/shop/items/new/buy") == "rt-param"
    assert answered_by(shop, "GET", "/shop") == "rt-greedy"


def test_event_has_resource_path_parameters_and_the_real_path(shop):
    ev = call(shop, "POST", "/shop/items/caf%C3%A9%20au%20lait/buy?qty=2", data=b"{\"a\":1}",
              headers={"Content-Type": "application/json"}).json()["event"]
    assert ev["resource"] == "/shop/items/{id}/{action}"
    assert ev["pathParameters"] == {"id": "caf\u00e9 au lait", "action": "buy"}
    assert ev["path"] == "/shop/items/caf\u00e9 au lait/buy"
    assert ev["method"] == "POST"
    assert ev["query"] == {"qty": "2"}
    assert ev["body"] == "{\"a\":1}"
    assert ev["headers"]["content-type"] == "application/json"
    assert "authorization" not in ev["headers"]  # a Hearth token never reaches a function
    ev = call(shop, "GET", "/shop/items/a/b/c").json()["event"]
    assert ev["resource"] == "/shop/items/{rest+}"
    assert ev["pathParameters"] == {"rest": "a/b/c"}
    ev = call(shop, "GET", "/shop").json()["event"]
    assert ev["resource"] == "/shop" and ev["pathParameters"] is None


def test_fn_endpoint_event_is_unchanged(shop):
    ev = call(shop, "GET", "/fn/rt-param/x").json()["event"]
    assert "resource" not in ev and "pathParameters" not in ev
    assert ev["path"] == "/x"


def test_function_answer_shapes_the_http_response(hearth):
    hearth.deploy_ok("rt-status", py("""
        def handler(event, context):
            return {"statusCode": 201, "headers": {"X-Made": event["pathParameters"]["id"]},
                    "body": "made"}
    """), routes=[route("PUT", "/things/{id}")])
    r = call(hearth, "PUT", "/things/t1")
    assert r.status_code == 201 and r.text == "made" and r.headers["X-Made"] == "t1"
    assert r.headers.get("X-Request-Id")


def test_unrouted_paths_and_methods(shop):
    err = assert_error(call(shop, "GET", "/nowhere"), 404, "not_found")
    assert "/nowhere" in err["message"]
    assert_error(call(shop, "GET", "/shop/"), 404, "not_found")  # no empty segments
    assert_error(call(shop, "GET", "/shop//items/1"), 404, "not_found")
    r = call(shop, "DELETE", "/shop/items/42")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"
    # Hearth's own namespace keeps its own 404
    assert_error(call(shop, "GET", "/v1/nothing"), 404, "not_found")


def test_routes_are_shown_with_the_function(shop):
    f = shop.show("rt-param").json()
    assert f["routes"] == [route("GET", "/shop/items/{id}"),
                           route("ANY", "/shop/items/{id}/{action}")]
    assert shop.deploy_ok("rt-none", WHO)["routes"] == []


def test_body_limit_is_the_invoke_limit(hearth):
    hearth.deploy_ok("rt-big", py("""
        def handler(event, context):
            return {"len": len(event["body"])}
    """), routes=[route("POST", "/upload")])
    body = b"x" * (200 * 1024)  # over the 64 KiB of management routes
    r = call(hearth, "POST", "/upload", data=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == {"len": len(body)}, r.text[:300]


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/x", "/v1", "/fn/x", "/healthz", "/metrics", "/metrics/x",
                                  "/V1/x", "/Healthz/{p+}", "/FN/{x}", "/ui", "/Ui/{x}"])
def test_reserved_prefixes_are_refused(hearth, path):
    r = hearth.deploy("rt-reserved", {"main.py": WHO}, routes=[route("GET", path)])
    err = assert_error(r, 400, "invalid_field")
    assert "routes[0].path" in err["message"] and "reserved prefix" in err["message"]
    assert_error(hearth.show("rt-reserved"), 404, "function_not_found")


@pytest.mark.parametrize("routes,needle", [
    ("/x", "routes must be an array"),
    ([route("GET", "/a")] * 2, "collides"),
    ([{"method": "GET", "path": "/a", "function": "x"}], "unknown field 'function'"),
    ([route("FETCH", "/a")], "routes[0].method"),
    ([route("GET", "a")], "must start with '/'"),
    ([route("GET", "/a/{x+}/b")], "must be the last segment"),
    ([route("GET", "/a/{x}/{x}")], "twice"),
    ([route("GET", "/a/{9}")], "parameter names"),
    ([route("GET", "/a/../b")], "'.' and '..'"),
    ([route("GET", "/r%d" % i) for i in range(65)], "at most 64"),
])
def test_bad_routes_are_400_naming_the_problem(hearth, routes, needle):
    err = assert_error(hearth.deploy("rt-bad", {"main.py": WHO}, routes=routes), 400,
                       "invalid_field")
    assert needle in err["message"], err


# --- conflicts ------------------------------------------------------------------


def test_conflict_is_409_and_changes_nothing(hearth):
    hearth.deploy_ok("rt-owner", WHO, routes=[route("GET", "/c/users/{id}"),
                                              route("ANY", "/c/hooks/{p+}")])
    # a new function: not created at all
    r = hearth.deploy("rt-thief", {"main.py": WHO}, routes=[route("GET", "/c/free"),
                                                            route("GET", "/c/users/{uid}")])
    err = assert_error(r, 409, "route_conflict")
    assert "/c/users/{uid}" in err["message"] and "'rt-owner'" in err["message"], err
    assert_error(hearth.show("rt-thief"), 404, "function_not_found")
    assert_error(call(hearth, "GET", "/c/free"), 404, "not_found")
    # an existing function: no new version, its routes as they were
    hearth.deploy_ok("rt-thief", WHO, routes=[route("GET", "/c/mine")])
    for routes in ([route("POST", "/c/hooks/{q+}")], [route("ANY", "/c/users/{x}")]):
        assert_error(hearth.deploy("rt-thief", {"main.py": WHO}, routes=routes), 409,
                     "route_conflict")
    f = hearth.show("rt-thief").json()
    assert f["version"] == 1 and f["routes"] == [route("GET", "/c/mine")]
    assert answered_by(hearth, "GET", "/c/users/7") == "rt-owner"
    assert answered_by(hearth, "POST", "/c/hooks/a/b") == "rt-owner"
    assert answered_by(hearth, "GET", "/c/mine") == "rt-thief"
    # another method or shape is not a conflict
    hearth.deploy_ok("rt-thief", WHO, routes=[route("POST", "/c/users/{uid}"),
                                              route("GET", "/c/users/{uid}/x")])
    assert answered_by(hearth, "POST", "/c/users/7") == "rt-thief"
    assert answered_by(hearth, "GET", "/c/users/7") == "rt-owner"


def test_concurrent_deploys_cannot_both_win(hearth):
    from concurrent.futures import ThreadPoolExecutor

    def deploy(i):
        return hearth.deploy("rt-race-%d" % i, {"main.py": WHO},
                             routes=[route("GET", "/race/{id}")]).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(deploy, range(6)))
    assert sorted(codes) == [201] + [409] * 5, codes
    owners = [x["function"] for x in table(hearth) if x["path"] == "/race/{id}"]
    assert len(owners) == 1
    assert answered_by(hearth, "GET", "/race/1") == owners[0]


# --- redeploy, delete, list -----------------------------------------------------


def test_redeploy_replaces_routes_and_delete_removes_them(hearth):
    hearth.deploy_ok("rt-move", WHO, routes=[route("GET", "/mv/a"), route("GET", "/mv/b")])
    assert answered_by(hearth, "GET", "/mv/a") == "rt-move"
    hearth.deploy_ok("rt-move", WHO, routes=[route("GET", "/mv/b"), route("POST", "/mv/c")])
    assert_error(call(hearth, "GET", "/mv/a"), 404, "not_found")
    assert answered_by(hearth, "GET", "/mv/b") == "rt-move"
    assert answered_by(hearth, "POST", "/mv/c") == "rt-move"
    # what it gave up, another may take
    hearth.deploy_ok("rt-taker", WHO, routes=[route("GET", "/mv/a")])
    assert answered_by(hearth, "GET", "/mv/a") == "rt-taker"
    # a deploy without routes has none
    hearth.deploy_ok("rt-move", WHO)
    assert_error(call(hearth, "GET", "/mv/b"), 404, "not_found")
    hearth.deploy_ok("rt-move", WHO, routes=[route("GET", "/mv/b")])
    assert hearth.delete("rt-move").status_code == 204
    assert_error(call(hearth, "GET", "/mv/b"), 404, "not_found")
    assert not [x for x in table(hearth) if x["function"] == "rt-move"]
    hearth.deploy_ok("rt-taker2", WHO, routes=[route("GET", "/mv/b")])
    assert answered_by(hearth, "GET", "/mv/b") == "rt-taker2"


def test_list_is_the_whole_table_sorted(hearth):
    hearth.deploy_ok("rt-list-b", WHO, routes=[route("POST", "/ls/x"), route("GET", "/ls/y")])
    hearth.deploy_ok("rt-list-a", WHO, routes=[route("GET", "/ls/x"), route("ANY", "/ls/a/{p+}")])
    mine = [x for x in table(hearth) if x["path"].startswith("/ls/")]
    assert mine == [
        {"method": "ANY", "path": "/ls/a/{p+}", "function": "rt-list-a"},
        {"method": "GET", "path": "/ls/x", "function": "rt-list-a"},
        {"method": "POST", "path": "/ls/x", "function": "rt-list-b"},
        {"method": "GET", "path": "/ls/y", "function": "rt-list-b"},
    ]
    whole = table(hearth)
    assert whole == sorted(whole, key=lambda x: (x["path"], x["method"]))
    # read scope; a glob-limited token sees its functions' routes only
    tok = make_token(hearth, "rt-reader", ["read"], functions="rt-list-a")
    r = hearth.get("/v1/routes", token=tok)
    assert r.status_code == 200
    assert {x["function"] for x in r.json()["routes"]} == {"rt-list-a"}
    tok = make_token(hearth, "rt-invoker", ["invoke"])
    assert_error(hearth.get("/v1/routes", token=tok), 403, "forbidden")
    assert_error(hearth.get("/v1/routes", token=None), 401, "unauthorized")


# --- auth -----------------------------------------------------------------------


def test_auth_follows_the_function(hearth):
    hearth.deploy_ok("rt-private", WHO, routes=[route("GET", "/au/private")])
    hearth.deploy_ok("rt-public", WHO, auth="none", routes=[route("GET", "/au/public/{x}")])
    assert_error(call(hearth, "GET", "/au/private", token=None), 401, "unauthorized")
    assert_error(call(hearth, "GET", "/au/private", token="hth_" + "0" * 43), 401, "unauthorized")
    other = make_token(hearth, "rt-other", ["invoke"], functions="rt-public")
    assert_error(call(hearth, "GET", "/au/private", token=other), 403, "forbidden")
    reader = make_token(hearth, "rt-noinvoke", ["read"])
    assert_error(call(hearth, "GET", "/au/private", token=reader), 403, "forbidden")
    mine = make_token(hearth, "rt-mine", ["invoke"], functions="rt-priv*")
    assert answered_by(hearth, "GET", "/au/private", token=mine) == "rt-private"
    # "auth": "none": anyone, and a webhook's own Authorization passes through
    assert answered_by(hearth, "GET", "/au/public/1", token=None) == "rt-public"
    ev = call(hearth, "GET", "/au/public/1", token=None,
              headers={"Authorization": "Bearer signed-by-github"}).json()["event"]
    assert ev["headers"]["authorization"] == "Bearer signed-by-github"


# --- restart --------------------------------------------------------------------


def test_routes_survive_a_restart(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("rt-keep", WHO, routes=[route("GET", "/keep/{id}")])
    h.deploy_ok("rt-gone", WHO, routes=[route("GET", "/gone")])
    h.deploy_ok("rt-moved", WHO, routes=[route("GET", "/moved/old")])
    h.deploy_ok("rt-moved", WHO, routes=[route("GET", "/moved/new")])
    assert h.delete("rt-gone").status_code == 204
    before = table(h)
    h.restart()
    assert table(h) == before
    assert call(h, "GET", "/keep/5").json()["event"]["pathParameters"] == {"id": "5"}
    assert answered_by(h, "GET", "/moved/new") == "rt-moved"
    assert_error(call(h, "GET", "/moved/old"), 404, "not_found")
    assert_error(call(h, "GET", "/gone"), 404, "not_found")
    # and the restarted table still refuses conflicts
    assert_error(h.deploy("rt-late", {"main.py": WHO}, routes=[route("GET", "/keep/{k}")]),
                 409, "route_conflict")
