"""Bearer tokens (issue 10.3): every endpoint but /healthz needs one, each
route a scope, a token's functions glob limits what it reaches, revocation
and expiry take effect at the next request, "auth": "none" opens a function
to anyone, --no-auth only on loopback, `hearthd token` offline, the audit.
"""

import os
import pwd
import stat
import subprocess
import time

import pytest
import requests

from conftest import HEARTHD, ROOTLESS_USER, assert_error, free_port, py

ECHO = py("""
    def handler(event, context):
        return {"event": event}
""")

SCOPES = ("admin", "deploy", "invoke", "logs", "read", "metrics")


def make_token(h, name, scopes, **extra):
    """POST /v1/tokens with the admin token; returns the 201 body."""
    body = dict(name=name, scopes=list(scopes), **extra)
    r = h.request("POST", "/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["token"].startswith("hth_") and len(out["token"]) == 47, out
    return out


def as_token(h, token, method, path, **kw):
    return h.request(method, path, token=token, **kw)


@pytest.fixture(scope="module")
def fns(hearth):
    hearth.deploy_ok("tk-main", ECHO)
    hearth.deploy_ok("team-a-one", ECHO)
    hearth.deploy_ok("team-b-one", ECHO)
    return hearth


# --- 401 and 403 ----------------------------------------------------------------


def test_healthz_needs_no_token(hearth):
    r = hearth.get("/healthz", token=None)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/functions"), ("GET", "/v1/functions/tk-main"), ("PUT", "/v1/functions/tk-x"),
    ("DELETE", "/v1/functions/tk-main"), ("POST", "/v1/functions/tk-main/invoke"),
    ("GET", "/fn/tk-main/x"), ("GET", "/v1/functions/tk-main/logs"), ("GET", "/v1/runtimes"),
    ("POST", "/v1/tokens"), ("GET", "/v1/tokens"), ("DELETE", "/v1/tokens/0123456789abcdef"),
    ("GET", "/v1/audit")])
def test_every_route_without_a_token_is_401(fns, method, path):
    r = fns.request(method, path, token=None, json={})
    err = assert_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer"), r.headers
    assert "Authorization: Bearer" in err["message"]


@pytest.mark.parametrize("header", [
    "Bearer hth_" + "A" * 43,          # well-formed, unknown
    "Bearer nothing-like-a-token",
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "bearer hth_short",
])
def test_a_token_that_is_not_live_is_401_invalid_token(fns, header):
    r = fns.request("GET", "/v1/functions", token=None, headers={"Authorization": header})
    err = assert_error(r, 401, "unauthorized")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"] or header == "Basic dXNlcjpwYXNz" \
        or "invalid" in r.headers["WWW-Authenticate"]
    assert "hth_" not in err["message"]


def test_scheme_is_case_insensitive(hearth):
    r = hearth.request("GET", "/v1/functions", token=None,
                       headers={"Authorization": "bEaReR " + hearth.token})
    assert r.status_code == 200, r.text


# --- scopes ---------------------------------------------------------------------

# (scope, method, path, json): one request each scope allows
ALLOWED = {
    "read": [("GET", "/v1/functions"), ("GET", "/v1/functions/tk-main"), ("GET", "/v1/runtimes")],
    "deploy": [("PUT", "/v1/functions/tk-deployed"), ("DELETE", "/v1/functions/tk-deployed")],
    "invoke": [("POST", "/v1/functions/tk-main/invoke"), ("GET", "/fn/tk-main/x")],
    "logs": [("GET", "/v1/functions/tk-main/logs")],
    "admin": [("GET", "/v1/tokens"), ("GET", "/v1/audit")],
}
# the scope each request needs
NEEDS = {req: scope for scope, reqs in ALLOWED.items() for req in reqs}


def _send(h, token, method, path):
    body = {"runtime": "python3", "handler": "main.handler", "files": {"main.py": ECHO}} \
        if method == "PUT" else {}
    return as_token(h, token, method, path, json=body)


@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_allows_its_routes_and_403s_the_rest(fns, scope):
    tok = make_token(fns, "scope-" + scope, [scope])["token"]
    for (method, path), need in NEEDS.items():
        r = _send(fns, tok, method, path)
        if scope == "admin" or need == scope:
            assert r.status_code in (200, 201, 204), (scope, method, path, r.text)
        else:
            err = assert_error(r, 403, "forbidden")
            assert "'%s'" % need in err["message"], err  # names the missing scope
            assert "scope-" + scope in err["message"]
    if scope == "metrics":  # /metrics itself comes with the metrics work
        r = as_token(fns, tok, "GET", "/metrics")
        assert r.status_code in (200, 404), r.text


def test_only_admin_manages_tokens(fns):
    tok = make_token(fns, "all-but-admin", ["deploy", "invoke", "logs", "read", "metrics"])["token"]
    r = as_token(fns, tok, "POST", "/v1/tokens", json={"name": "x", "scopes": ["read"]})
    assert "'admin'" in assert_error(r, 403, "forbidden")["message"]
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


# --- functions globs ------------------------------------------------------------


def test_glob_limits_every_function_route(fns):
    tok = make_token(fns, "team-a", ["deploy", "invoke", "logs", "read"],
                     functions="team-a-*")["token"]
    assert as_token(fns, tok, "POST", "/v1/functions/team-a-one/invoke", json={}).status_code == 200
    assert as_token(fns, tok, "GET", "/fn/team-a-one/p").status_code == 200
    assert as_token(fns, tok, "GET", "/v1/functions/team-a-one/logs").status_code == 200
    assert as_token(fns, tok, "GET", "/v1/functions/team-a-one").status_code == 200
    for method, path in [("POST", "/v1/functions/team-b-one/invoke"), ("GET", "/fn/team-b-one/p"),
                         ("GET", "/v1/functions/team-b-one/logs"),
                         ("GET", "/v1/functions/team-b-one"),
                         ("DELETE", "/v1/functions/team-b-one"),
                         ("PUT", "/v1/functions/team-b-new")]:
        err = assert_error(_send(fns, tok, method, path), 403, "forbidden")
        assert "team-a-*" in err["message"] and "team-b-" in err["message"], err
    r = _send(fns, tok, "PUT", "/v1/functions/team-a-new")
    assert r.status_code == 201, r.text
    assert fns.show("team-b-one").status_code == 200  # untouched


def test_list_shows_only_the_functions_a_glob_reaches(fns):
    tok = make_token(fns, "list-a", ["read"], functions="team-a-*")["token"]
    names = [f["name"] for f in as_token(fns, tok, "GET", "/v1/functions").json()["functions"]]
    assert names and all(n.startswith("team-a-") for n in names), names
    everything = [f["name"] for f in fns.list_functions()]
    assert "team-b-one" in everything and "tk-main" in everything


def test_glob_is_fnmatch_without_path_semantics(fns):
    tok = make_token(fns, "glob-q", ["read"], functions="team-?-on[ae]")["token"]
    assert as_token(fns, tok, "GET", "/v1/functions/team-a-one").status_code == 200
    assert as_token(fns, tok, "GET", "/v1/functions/team-b-one").status_code == 200
    assert as_token(fns, tok, "GET", "/v1/functions/tk-main").status_code == 403


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize("body,needle", [
    ({"name": "v1", "scopes": ["root"]}, "unknown scope"),
    ({"name": "v1", "scopes": []}, "scopes"),
    ({"name": "v1", "scopes": "read"}, "scopes"),
    ({"name": "v1", "scopes": ["read", "read"]}, "twice"),
    ({"name": "v1", "scopes": [7]}, "scope"),
    ({"name": "", "scopes": ["read"]}, "name"),
    ({"name": "a b", "scopes": ["read"]}, "name"),
    ({"name": "x" * 65, "scopes": ["read"]}, "name"),
    ({"name": "n\u00e9", "scopes": ["read"]}, "name"),
    ({"scopes": ["read"]}, "name"),
    ({"name": "v1"}, "scopes"),
    ({"name": "v1", "scopes": ["read"], "functions": "Team-*"}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": "a/b"}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": "team-[a"}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": "[]"}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": ""}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": "*" * 129}, "glob"),
    ({"name": "v1", "scopes": ["read"], "functions": 5}, "functions"),
    ({"name": "v1", "scopes": ["admin"], "functions": "team-*"}, "admin"),
    ({"name": "v1", "scopes": ["read"], "expires_in_s": 0}, "expires_in_s"),
    ({"name": "v1", "scopes": ["read"], "expires_in_s": -5}, "expires_in_s"),
    ({"name": "v1", "scopes": ["read"], "expires_in_s": 10 ** 12}, "expires_in_s"),
    ({"name": "v1", "scopes": ["read"], "expires_in_s": "60"}, "expires_in_s"),
])
def test_bad_token_requests_are_400_naming_the_field(hearth, body, needle):
    err = assert_error(hearth.request("POST", "/v1/tokens", json=body), 400, "invalid_field")
    assert needle.lower() in err["message"].lower(), err


def test_unknown_field_and_bad_json_are_400(hearth):
    r = hearth.request("POST", "/v1/tokens", json={"name": "u", "scopes": ["read"], "root": True})
    assert_error(r, 400, "unknown_field")
    assert_error(hearth.request("POST", "/v1/tokens", data=b"{not json"), 400, "invalid_json")
    assert_error(hearth.request("POST", "/v1/tokens", json=["read"]), 400, "invalid_json")
    # a NUL inside a name never reaches the name check (jansson refuses it)
    r = hearth.request("POST", "/v1/tokens", data=b'{"name":"a\\u0000b","scopes":["read"]}')
    assert r.status_code == 400, r.text


def test_a_live_name_is_unique(hearth):
    t = make_token(hearth, "dup", ["read"])
    assert_error(hearth.request("POST", "/v1/tokens", json={"name": "dup", "scopes": ["read"]}),
                 409, "token_exists")
    assert hearth.request("DELETE", "/v1/tokens/" + t["id"]).status_code == 204
    make_token(hearth, "dup", ["read"])  # free again once revoked


# --- list, revoke, expiry -------------------------------------------------------


def test_list_never_shows_a_secret(hearth):
    t = make_token(hearth, "listed", ["invoke"], functions="tk-*", expires_in_s=3600)
    r = hearth.get("/v1/tokens")
    assert r.status_code == 200
    assert t["token"] not in r.text and hearth.token not in r.text
    mine = [x for x in r.json()["tokens"] if x["id"] == t["id"]]
    assert len(mine) == 1 and "token" not in mine[0] and "hash" not in mine[0], mine
    assert mine[0]["name"] == "listed" and mine[0]["scopes"] == ["invoke"]
    assert mine[0]["functions"] == "tk-*" and mine[0]["state"] == "live"
    assert mine[0]["expires_at"] and mine[0]["revoked_at"] is None


def test_revoke_takes_effect_at_the_very_next_request(fns):
    t = make_token(fns, "short-lived", ["invoke"])
    assert as_token(fns, t["token"], "POST", "/v1/functions/tk-main/invoke", json={}).status_code == 200
    assert fns.request("DELETE", "/v1/tokens/" + t["id"]).status_code == 204
    r = as_token(fns, t["token"], "POST", "/v1/functions/tk-main/invoke", json={})
    assert_error(r, 401, "unauthorized")
    assert_error(fns.request("DELETE", "/v1/tokens/" + t["id"]), 404, "token_not_found")
    assert_error(fns.request("DELETE", "/v1/tokens/0123456789abcdef"), 404, "token_not_found")
    states = {x["id"]: x["state"] for x in fns.get("/v1/tokens").json()["tokens"]}
    assert states[t["id"]] == "revoked"


def test_an_expired_token_is_401(fns):
    t = make_token(fns, "expiring", ["read"], expires_in_s=1)
    assert as_token(fns, t["token"], "GET", "/v1/functions").status_code == 200
    time.sleep(1.3)
    assert_error(as_token(fns, t["token"], "GET", "/v1/functions"), 401, "unauthorized")
    states = {x["id"]: x["state"] for x in fns.get("/v1/tokens").json()["tokens"]}
    assert states[t["id"]] == "expired"


# --- "auth": "none" -------------------------------------------------------------

HEADERS = py("""
    def handler(event, context):
        return {"auth": event.get("headers", {}).get("authorization")}
""")


def test_auth_none_opens_invoke_and_fn_to_anyone(hearth):
    f = hearth.deploy_ok("tk-public", HEADERS, auth="none")
    assert f["auth"] == "none"
    assert hearth.deploy_ok("tk-private", HEADERS)["auth"] == "token"
    r = hearth.request("POST", "/v1/functions/tk-public/invoke", token=None, json={})
    assert r.status_code == 200, r.text
    r = hearth.request("GET", "/fn/tk-public/hook", token=None)
    assert r.status_code == 200 and r.json() == {"auth": None}, r.text
    # a webhook's own Authorization reaches the function; a bad one is no 401
    r = hearth.request("GET", "/fn/tk-public/hook", token=None,
                       headers={"Authorization": "Bearer github-signed-thing"})
    assert r.status_code == 200 and r.json() == {"auth": "Bearer github-signed-thing"}
    # but only invoking is open: the rest still needs a token
    for method, path in [("GET", "/v1/functions/tk-public"), ("GET", "/v1/functions/tk-public/logs"),
                         ("DELETE", "/v1/functions/tk-public"), ("PUT", "/v1/functions/tk-public")]:
        assert_error(hearth.request(method, path, token=None, json={}), 401, "unauthorized")
    assert_error(hearth.request("GET", "/fn/tk-private/hook", token=None), 401, "unauthorized")


def test_a_hearth_token_never_reaches_a_function(hearth):
    hearth.deploy_ok("tk-peek", HEADERS)
    hearth.deploy_ok("tk-peek-pub", HEADERS, auth="none")
    for name in ("tk-peek", "tk-peek-pub"):
        r = hearth.get("/fn/%s/x" % name)
        assert r.status_code == 200 and r.json() == {"auth": None}, r.text


def test_auth_setting_is_validated_and_kept(hearth):
    r = hearth.deploy("tk-badauth", {"main.py": ECHO}, auth="public")
    assert_error(r, 400, "invalid_field")
    f = hearth.deploy_ok("tk-flip", ECHO, auth="none")
    assert f["auth"] == "none"
    f = hearth.deploy_ok("tk-flip", ECHO)  # a deploy without it is back to the default
    assert f["auth"] == "token"
    assert_error(hearth.request("POST", "/v1/functions/tk-flip/invoke", token=None), 401,
                 "unauthorized")


# --- the audit ------------------------------------------------------------------


def test_audit_records_management_actions_newest_first(hearth):
    ci = make_token(hearth, "audit-ci", ["deploy"])
    assert _send(hearth, ci["token"], "PUT", "/v1/functions/tk-audited").status_code == 201
    assert _send(hearth, ci["token"], "DELETE", "/v1/functions/tk-audited").status_code == 204
    assert hearth.request("DELETE", "/v1/tokens/" + ci["id"]).status_code == 204
    recs = hearth.get("/v1/audit", params={"limit": 4}).json()["audit"]
    assert len(recs) == 4
    got = [(r["action"], r["actor"], r["target"]) for r in recs]
    assert got[0] == ("token_revoke", "admin", ci["id"]), got
    assert got[1] == ("delete", "audit-ci", "tk-audited"), got
    assert got[2] == ("deploy", "audit-ci", "tk-audited"), got
    assert got[3][0] == "token_create" and got[3][1] == "admin" and ci["id"] in got[3][2], got
    assert recs[1]["token_id"] == ci["id"]
    assert [r["seq"] for r in recs] == sorted((r["seq"] for r in recs), reverse=True)
    assert recs[0]["at"] >= recs[3]["at"]
    assert ci["token"] not in hearth.get("/v1/audit").text
    for bad in ("0", "-1", "1001", "x", "5%00"):
        assert_error(hearth.get("/v1/audit?limit=" + bad), 400, "invalid_query")


# --- the admin token file, restart, the offline command -------------------------


def test_admin_token_file_mode_owner_and_log(hearth):
    st = os.stat(hearth.data_dir / "admin-token")
    assert stat.S_IMODE(st.st_mode) == 0o600
    want = pwd.getpwnam(ROOTLESS_USER).pw_uid if ROOTLESS_USER else os.geteuid()
    assert st.st_uid == want, (st.st_uid, want)
    assert hearth.token.startswith("hth_")
    assert "admin-token" in hearth.stderr_text()
    assert hearth.token not in hearth.stderr_text()


def test_restart_keeps_tokens_and_writes_no_new_admin_token(fresh_hearth):
    h = fresh_hearth
    first = h.token
    t = make_token(h, "kept", ["read"])
    h.restart()
    assert h.token == first
    assert h.get("/v1/functions").status_code == 200
    assert as_token(h, t["token"], "GET", "/v1/functions").status_code == 200
    assert h.stderr_text().count("wrote an admin token") == 1


def _token_cli(h, *args):
    cmd = [HEARTHD, "token"] + list(args)
    if ROOTLESS_USER:  # the data dir belongs to that user
        pw = pwd.getpwnam(ROOTLESS_USER)
        cmd = ["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
               "--clear-groups"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def test_token_create_offline_while_the_daemon_runs(fns):
    p = _token_cli(fns, "create", "--data-dir", str(fns.data_dir), "--name", "offline",
                   "--scope", "read,invoke", "--functions", "team-a-*")
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    assert tok.startswith("hth_") and len(tok) == 47 and tok not in p.stderr
    assert as_token(fns, tok, "GET", "/v1/functions/team-a-one").status_code == 200
    assert as_token(fns, tok, "GET", "/v1/functions/team-b-one").status_code == 403
    assert as_token(fns, tok, "PUT", "/v1/functions/team-a-x", json={}).status_code == 403
    recs = fns.get("/v1/audit", params={"limit": 1}).json()["audit"]
    assert recs[0]["action"] == "token_create" and recs[0]["actor"].startswith("local:")
    # revoked offline: the daemon notices within a second
    tid = [t["id"] for t in fns.get("/v1/tokens").json()["tokens"] if t["name"] == "offline"][0]
    p = _token_cli(fns, "revoke", "--data-dir", str(fns.data_dir), "--id", tid)
    assert p.returncode == 0, p.stderr
    time.sleep(1.5)
    assert as_token(fns, tok, "GET", "/v1/functions/team-a-one").status_code == 401
    p = _token_cli(fns, "list", "--data-dir", str(fns.data_dir))
    assert p.returncode == 0 and "offline" in p.stdout and tok not in p.stdout


@pytest.mark.parametrize("args", [
    ["create", "--name", "x", "--scope", "root"],
    ["create", "--name", "x"],
    ["create", "--scope", "read"],
    ["create", "--name", "x", "--scope", "read", "--functions", "A*"],
    ["create", "--name", "x", "--scope", "read", "--expires-in", "0"],
    ["frobnicate"],
])
def test_token_cli_refuses_bad_arguments(hearth, args):
    argv = args[:1] + ["--data-dir", str(hearth.data_dir)] + args[1:]
    p = _token_cli(hearth, *argv)
    assert p.returncode == 2 and "usage" in p.stderr and not p.stdout, (p.stdout, p.stderr)


def test_token_cli_needs_an_existing_data_dir(tmp_path):
    p = subprocess.run([HEARTHD, "token", "create", "--data-dir", str(tmp_path / "nope"),
                        "--name", "x", "--scope", "read"], capture_output=True, text=True)
    assert p.returncode == 1 and "not a directory" in p.stderr
    assert not (tmp_path / "nope").exists()


# --- --no-auth ------------------------------------------------------------------


@pytest.mark.parametrize("listen", ["0.0.0.0:%d", "[::]:%d"])
def test_no_auth_is_refused_off_loopback(tmp_path, listen):
    p = subprocess.run([HEARTHD, "--no-auth", "--listen", listen % free_port(), "--data-dir",
                        str(tmp_path / "d")], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "--no-auth" in p.stderr and "loopback" in p.stderr, p.stderr
    assert not (tmp_path / "d").exists()


def test_no_auth_on_loopback_opens_everything_and_warns(hearth_factory):
    h = hearth_factory("--no-auth")
    assert h.token is None and not (h.data_dir / "admin-token").exists()
    r = h.deploy("tk-open", {"main.py": ECHO})
    assert r.status_code == 201, r.text
    assert h.invoke("tk-open", json={}).status_code == 200
    assert h.get("/v1/audit").json()["audit"][0]["actor"] == "no-auth"
    assert "--no-auth" in h.stderr_text() and " warn " in h.stderr_text()


# --- bodies before a token ------------------------------------------------------


def test_an_unauthenticated_deploy_body_is_not_buffered(hearth):
    """Without a deploy token a PUT may send at most 64 KiB: 401 either way."""
    r = hearth.request("PUT", "/v1/functions/tk-big", token=None, data=b"x" * (1 << 20),
                       headers={"Content-Type": "application/json"})
    assert_error(r, 401, "unauthorized")
    assert hearth.healthy()
