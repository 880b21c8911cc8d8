"""Attacks through qualifiers and aliases (issue 14 §3). Each test names
what stops it."""

from conftest import assert_error, py

WHO = py("""
    def handler(event, context):
        return "ok"
""")


def new_token(h, name, scopes, **extra):
    r = h.request("POST", "/v1/tokens", json=dict(name=name, scopes=scopes, **extra))
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_a_glob_token_cannot_reach_another_function_through_a_qualifier(hearth):
    """Attack: a token limited to `a*` calls or re-points `b:prod`, or hides
    the name behind an encoded ':' or a qualifier that looks like a glob.
    Stopped by: the glob is matched against the function name split off the
    decoded reference, never the qualifier; alias routes take bare names."""
    for v in (1, 2):
        hearth.deploy_ok("bvictim", WHO)
    r = hearth.request("PUT", "/v1/functions/bvictim/aliases/prod", json={"version": 1})
    assert r.status_code == 201, r.text
    tok = new_token(hearth, "team-a-only", ["deploy", "invoke", "read"], functions="a*")
    for method, path in [("POST", "/v1/functions/bvictim:prod/invoke"),
                         ("POST", "/v1/functions/bvictim%3Aprod/invoke"),
                         ("POST", "/v1/functions/bvictim:1/invoke"),
                         ("POST", "/v1/functions/bvictim:$LATEST/invoke"),
                         ("GET", "/fn/bvictim:prod/"),
                         ("GET", "/fn/bvictim%3a1/x"),
                         ("PUT", "/v1/functions/bvictim/aliases/prod"),
                         ("DELETE", "/v1/functions/bvictim/aliases/prod"),
                         ("GET", "/v1/functions/bvictim/aliases"),
                         ("GET", "/v1/functions/bvictim/versions"),
                         ("POST", "/v1/functions/bvictim/rollback")]:
        r = hearth.request(method, path, token=tok, json={"version": 2})
        assert_error(r, 403, "forbidden")
    # a name that matches the glob only with the qualifier attached
    for path in ("/v1/functions/a:bvictim/invoke", "/v1/functions/bvictim:a/invoke"):
        r = hearth.request("POST", path, token=tok, json={})
        assert r.status_code in (400, 403, 404), (path, r.status_code, r.text)
        assert r.status_code != 200
    assert hearth.get("/v1/functions/bvictim/aliases/prod").json()["version"] == 1


def test_hostile_qualifiers_and_alias_names(hearth):
    """Attack: qualifiers and alias names that climb paths, carry NULs or
    control bytes, overflow buffers or smuggle a second ':'. Stopped by:
    qualifier_split accepts only digits, the alias alphabet or $LATEST,
    on the decoded bytes, within fixed lengths."""
    hearth.deploy_ok("fq", WHO)
    refs = ["fq:..%2Fx", "fq:../x", "fq:%00", "fq:1%00", "fq:prod%0d%0aX-Evil:1", "fq:%2e%2e",
            "fq:" + "a" * 64, "fq:" + "9" * 17, "fq:" + "a" * 5000, "fq:1:2", "fq::",
            "fq:%24latest", "fq:+1", "fq:0x1", "fq:1e3", "fq:%C3%A9"]
    for ref in refs:
        r = hearth.request("POST", "/v1/functions/%s/invoke" % ref, json={})
        assert r.status_code in (400, 404, 414), (ref, r.status_code, r.text[:200])
        if r.status_code == 400:
            assert_error(r, 400, "invalid_name")
        r = hearth.get("/fn/%s/x" % ref)
        assert r.status_code in (400, 404, 414), (ref, r.status_code, r.text[:200])
    for alias in ("..", "%2e%2e", "a%2Fb", "a%00", "A", "a" * 64, "%0a", "a b", "$LATEST", "1"):
        r = hearth.request("PUT", "/v1/functions/fq/aliases/" + alias, json={"version": 1})
        assert r.status_code in (400, 404), (alias, r.status_code, r.text[:200])
        assert r.status_code != 201
    # a second path segment under an alias is no alias
    r = hearth.request("PUT", "/v1/functions/fq/aliases/a/b", json={"version": 1})
    assert r.status_code in (400, 404), r.text
    assert hearth.get("/v1/functions/fq/aliases").json() == {"aliases": []}
    # huge or odd weights
    for weights in ({"1" * 400: 0.1}, {"2": 1e-400}, {"2": "0.1"}, {"2": None},
                    {"2": 0.5, "3": 0.5}):
        r = hearth.request("PUT", "/v1/functions/fq/aliases/prod",
                           json={"version": 1, "weights": weights})
        assert r.status_code in (400, 404), (weights, r.status_code, r.text[:200])
    assert hearth.invoke_ok("fq", json={}).status_code == 200
