"""`hearth apply` (a stack file, docs/cli.md) and `hearth versions`,
`rollback`, `alias` against a real hearthd.

They drive the daemon's stacks API (POST /v1/stacks/{stack}) and versions
API (/v1/functions/{name}/versions, /rollback, /aliases); the YAML checks
fail before any request is sent.
"""

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from cli_helpers import ok, run
from conftest import py

WEB = py("""
    import os

    def handler(event, context):
        return {"greeting": os.environ.get("GREETING"), "port": os.environ.get("PORT"),
                "who": "web-v1"}
""")

SECRET_READER = py("""
    def handler(event, context):
        with open("/run/secrets/cli-db-password") as f:   # docs/api.md "Secrets"
            return {"secret": f.read()}
""")

LEDGER = py("""
    def handler(event, context):
        return {"ledger": event}
""")

STACK = """\
# a stack of two functions (docs/cli.md)
stack: cli-shop
functions:
  cli-web:
    code: ./web                 # relative to this file
    runtime: python3
    handler: main.handler
    env: {GREETING: hi, PORT: 8080}
    routes: [{method: GET, path: /cli-shop/hello}]
    memory_mb: 256
  cli-ledger:
    code: ledger
    runtime: python3
    handler: main.handler
    subscriptions: [cli-orders]
    schedules: ["@every 1h"]
"""


@pytest.fixture(scope="module")
def work():
    d = Path(tempfile.mkdtemp(prefix="hearth-e2e-cli-stack-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_yaml_errors_fail_before_any_request(hearth, work):
    bad = work / "bad"
    bad.mkdir()
    (bad / "hearth.yml").write_text("functions:\n  a: [unclosed\n")
    p = run(hearth, bad, "apply")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "line" in p.stderr, p.stderr
    (bad / "hearth.yml").write_text("functoins:\n  a: {}\n")
    p = run(hearth, bad, "apply")
    assert p.returncode == 1 and "unknown key 'functoins'" in p.stderr, p.stderr
    (bad / "hearth.yml").write_text("functions:\n  a: {runtime: python3}\n")
    p = run(hearth, bad, "apply")
    assert p.returncode == 1 and "a: `code` is needed" in p.stderr, p.stderr
    p = run(hearth, work, "apply", "nowhere.yml")
    assert p.returncode == 1 and "nowhere.yml" in p.stderr


def _write_stack(work):
    app = work / "app"
    (app / "web").mkdir(parents=True, exist_ok=True)
    (app / "ledger").mkdir(exist_ok=True)
    (app / "web" / "main.py").write_text(WEB)
    (app / "ledger" / "main.py").write_text(LEDGER)
    (app / "hearth.yml").write_text(STACK)
    return app


def _plan(stdout):
    return {p["function"]: p for p in json.loads(stdout)["plan"]}


def test_apply_plans_creates_updates_deletes(hearth, work):
    app = _write_stack(work)
    # a dry run from another directory: code paths are the file's
    dry = _plan(ok(hearth, work, "--json", "apply", "app/hearth.yml", "--dry-run").stdout)
    assert {f: p["action"] for f, p in dry.items()} == {"cli-web": "create",
                                                         "cli-ledger": "create"}
    assert hearth.show("cli-web").status_code == 404, "a dry run deployed"

    p = ok(hearth, app, "apply")
    assert "cli-web" in p.stdout and "create" in p.stdout, p.stdout
    web = hearth.show("cli-web").json()
    assert web["memory_mb"] == 256 and web["env"] == {"GREETING": "hi", "PORT": "8080"}
    assert web["routes"] == [{"method": "GET", "path": "/cli-shop/hello"}]
    ledger = hearth.show("cli-ledger").json()
    assert ledger["subscriptions"] == ["cli-orders"]
    out = json.loads(ok(hearth, work, "invoke", "cli-web").stdout)
    assert out == {"greeting": "hi", "port": "8080", "who": "web-v1"}

    again = _plan(ok(hearth, app, "--json", "apply").stdout)
    assert {p["action"] for p in again.values()} == {"unchanged"}, again
    assert hearth.show("cli-web").json()["version"] == web["version"]

    (app / "ledger" / "main.py").write_text(LEDGER + "# changed\n")
    plan = _plan(ok(hearth, app, "--json", "apply", "--dry-run").stdout)
    assert plan["cli-ledger"]["action"] == "update" and "code" in plan["cli-ledger"]["changes"]
    assert plan["cli-web"]["action"] == "unchanged"

    (app / "hearth.yml").write_text(STACK.split("  cli-ledger:")[0])
    plan = _plan(ok(hearth, app, "--json", "apply").stdout)
    assert plan["cli-ledger"]["action"] == "delete", plan
    assert hearth.show("cli-ledger").status_code == 404


def test_apply_is_all_or_nothing(hearth, work):
    app = _write_stack(work)
    ok(hearth, app, "apply")
    before = hearth.show("cli-web").json()["version"]
    (app / "web" / "main.py").write_text(WEB.replace("web-v1", "web-v2"))
    (app / "hearth.yml").write_text(STACK + "  cli-broken:\n    code: ./web\n"
                                    "    runtime: no-such-runtime\n    handler: main.handler\n")
    p = run(hearth, app, "apply")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "cli-broken" in p.stderr, p.stderr
    assert hearth.show("cli-web").json()["version"] == before, "a failed apply changed cli-web"
    assert hearth.show("cli-broken").status_code == 404


def test_apply_with_an_existing_secret(hearth, work):
    value = "s3cr3t-" + uuid.uuid4().hex
    r = hearth.request("PUT", "/v1/secrets/cli-db-password", data=value.encode())
    assert r.status_code == 201, r.text
    app = work / "secret"
    (app / "reader").mkdir(parents=True)
    (app / "reader" / "main.py").write_text(SECRET_READER)
    (app / "hearth.yml").write_text("functions:\n  cli-reader:\n    code: ./reader\n"
                                    "    runtime: python3\n    handler: main.handler\n"
                                    "    secrets: [cli-db-password]\n")
    plan = _plan(ok(hearth, app, "--json", "apply").stdout)
    assert plan["cli-reader"]["action"] == "create", plan
    assert hearth.show("cli-reader").json()["secrets"] == ["cli-db-password"]
    assert json.loads(ok(hearth, work, "invoke", "cli-reader").stdout) == {"secret": value}
    again = _plan(ok(hearth, app, "--json", "apply").stdout)
    assert again["cli-reader"]["action"] == "unchanged", again


def test_versions_rollback_alias(hearth, work):
    src = work / "ver"
    src.mkdir()
    for n in (1, 2):
        (src / "main.py").write_text("def handler(e, c):\n    return 'v%d'\n" % n)
        ok(hearth, work, "deploy", src, "--name", "cli-ver", "--runtime", "python3",
           "--handler", "main.handler")
    listed = json.loads(ok(hearth, work, "--json", "versions", "cli-ver").stdout)
    assert [v["version"] for v in listed["versions"]] == [2, 1] and listed["current"] == 2
    rows = ok(hearth, work, "versions", "cli-ver").stdout.splitlines()
    assert rows[0].split("\t")[:2] == ["2", "*"], rows
    assert ok(hearth, work, "invoke", "cli-ver").stdout == "v2"

    assert "version 1 is current" in ok(hearth, work, "rollback", "cli-ver", "1").stdout
    assert ok(hearth, work, "invoke", "cli-ver").stdout == "v1"
    ok(hearth, work, "rollback", "cli-ver", "2")
    # without a version: the newest kept one older than the current
    assert "version 1 is current" in ok(hearth, work, "rollback", "cli-ver").stdout
    ok(hearth, work, "rollback", "cli-ver", "2")

    alias = json.loads(ok(hearth, work, "--json", "alias", "cli-ver", "prod", "1",
                          "--weight", "2=0.25").stdout)
    assert alias["version"] == 1 and alias["weights"] == {"2": 0.25}
    listed = json.loads(ok(hearth, work, "--json", "alias", "cli-ver").stdout)
    assert [a["name"] for a in listed["aliases"]] == ["prod"]
    ok(hearth, work, "alias", "cli-ver", "prod", "1")  # no weights: all calls to 1
    assert ok(hearth, work, "invoke", "cli-ver:prod").stdout == "v1"
    assert ok(hearth, work, "invoke", "cli-ver:2").stdout == "v2"
    p = run(hearth, work, "invoke", "cli-ver:nope")
    assert p.returncode == 1 and "alias_not_found" in p.stderr
    ok(hearth, work, "alias", "cli-ver", "prod", "--delete")
    p = run(hearth, work, "alias", "cli-ver", "prod", "1", "--weight", "2=1.5")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
