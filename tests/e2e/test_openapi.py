"""The API described: docs/openapi.json is a valid OpenAPI 3.1 document,
describes every route of the daemon's route tables (read from src/, with
the scope each needs; the AWS Lambda API's operation table too), every
path and method it describes is served, real answers match its schemas,
and GET /v1/openapi.json answers the file byte for byte.

The validator is python3-jsonschema (Debian) with the OpenAPI Initiative's
own JSON Schema for 3.1 documents, vendored in tests/openapi/ (see its
README); the checks that schema cannot make ($refs resolve, path templates
match their parameters, unique operationIds) are made here."""

import json
import re
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator, RefResolver

from conftest import b64, targz

ROOT = Path(__file__).resolve().parents[2]
DOC_FILE = ROOT / "docs" / "openapi.json"
OAS_SCHEMA = ROOT / "tests" / "openapi" / "oas-3.1-schema.json"
DOC = json.loads(DOC_FILE.read_bytes())
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# What a route table entry starts with (src/api.c's header comment): its
# method, a string or NULL for any, and its path pattern.
ENTRY = re.compile(r'\{\s*(NULL|"([A-Z]+)")\s*,\s*"(/[^"]*)"\s*,([^}]*)\}')
# The AWS Lambda API's operation table (src/aws_lambda.c): its method, the
# kind of path, the scope and the operation's AWS name, described with
# that name in x-aws-operation.
AWS_ENTRY = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*OP_\w+\s*,\s*AUTH_SCOPE_([A-Z]+)\s*,\s*"([A-Za-z]+)"\s*\}')


def route_entries():
    """(method or None, pattern, scope or None, where) for every route table
    entry in the daemon's sources (src/cli/ is the client, not the daemon)."""
    found = []
    for src in sorted((ROOT / "src").rglob("*.c")):
        if "cli" in src.relative_to(ROOT / "src").parts[:-1]:
            continue
        text = src.read_text(errors="replace")
        for m in ENTRY.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            scope = re.search(r"AUTH_SCOPE_([A-Z]+)", m.group(4))
            found.append((m.group(2), m.group(3), scope.group(1).lower() if scope else None,
                          "%s:%d" % (src.relative_to(ROOT), line)))
    return found


ENTRIES = route_entries()


def aws_entries():
    """(method, scope, operation, where) for the AWS operation table."""
    found = []
    for src in sorted((ROOT / "src").glob("aws_*.c")):
        text = src.read_text(errors="replace")
        for m in AWS_ENTRY.finditer(text):
            found.append((m.group(1), m.group(2).lower(), m.group(3),
                          "%s:%d" % (src.relative_to(ROOT), text.count("\n", 0, m.start()) + 1)))
    return found


AWS_ENTRIES = aws_entries()


def test_the_parser_finds_the_aws_operations():
    assert ("POST", "invoke", "Invoke") in [e[:3] for e in AWS_ENTRIES], AWS_ENTRIES


@pytest.mark.parametrize("entry", AWS_ENTRIES, ids=[e[2] for e in AWS_ENTRIES])
def test_every_aws_operation_is_described(entry):
    method, scope, name, where = entry
    ops = [(p, m, item[m]) for p, item in DOC["paths"].items() for m in METHODS
           if m in item and item[m].get("x-aws-operation") == name]
    assert ops, "%s: the AWS operation %s is not in docs/openapi.json" % (where, name)
    assert [(m, op["x-hearth-scope"]) for _, m, op in ops] == [(method.lower(), scope)], \
        "%s: %s is %s with scope %s; the description says %s" % (
            where, name, method, scope, [(p, m, op["x-hearth-scope"]) for p, m, op in ops])


def shape(path):
    """A path as a key: each parameter segment ({x}, `*`) becomes `*`; a
    table's `/**` (the rest of the path) is described as one last
    parameter, so it becomes `*` too."""
    segs = path.split("/")
    return "/".join("*" if s in ("*", "**") or re.fullmatch(r"\{[^/{}]+\}", s) else s
                    for s in segs)


def described():
    """{shape: (path, path item)} of the description."""
    return {shape(p): (p, item) for p, item in DOC["paths"].items()}


def test_the_parser_finds_the_route_table():
    api = [e for e in ENTRIES if e[3].startswith("src/api.c:")]
    assert len(api) >= 20, "src/api.c's routes[] not found: %r" % ENTRIES
    assert ("GET", "/v1/functions", "read") in [e[:3] for e in api]
    assert (None, "/fn/*/**", "invoke") in [e[:3] for e in api]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: "%s %s" % (e[0] or "ANY", e[1]))
def test_every_route_is_described(entry):
    method, pattern, scope, where = entry
    d = described()
    key = shape(pattern)
    assert key in d, "%s: %s %s is not in docs/openapi.json" % (where, method or "ANY", pattern)
    path, item = d[key]
    wanted = [method.lower()] if method else [m for m in METHODS if m != "trace"]
    for m in wanted:
        assert m in item, "%s: %s %s is not described (as %s)" % (where, m.upper(), pattern, path)
        op = item[m]
        if scope is not None:
            assert op.get("x-hearth-scope") == scope, \
                "%s: %s %s needs scope %s, the description says %s" % (
                    where, m.upper(), path, scope, op.get("x-hearth-scope"))
    if pattern.endswith("/**"):  # the rest may be empty: /fn/{name} is served too
        base = shape(pattern[:-3])
        assert base in d or base + "/" in d, "%s: %s without a rest is not described" % (
            where, pattern)


def test_the_description_is_valid_openapi_3_1():
    schema = json.loads(OAS_SCHEMA.read_bytes())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(DOC), key=lambda e: list(e.path))
    assert not errors, "\n".join("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:300])
                                 for e in errors[:20])
    assert DOC["openapi"].startswith("3.1.")


def walk(node, where=""):
    """(json pointer, dict) for every object in the document."""
    if isinstance(node, dict):
        yield where, node
        for k, v in node.items():
            yield from walk(v, "%s/%s" % (where, str(k).replace("~", "~0").replace("/", "~1")))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, "%s/%d" % (where, i))


def resolve(ref):
    assert ref.startswith("#/"), "only local $refs: %s" % ref
    node = DOC
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, "%s does not resolve" % ref
        node = node[part]
    return node


def test_every_ref_resolves_and_every_schema_is_json_schema_2020_12():
    refs = [(w, o["$ref"]) for w, o in walk(DOC) if isinstance(o.get("$ref"), str)]
    assert refs
    for where, ref in refs:
        try:
            resolve(ref)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (where, e)) from None
    schemas = [o["schema"] for _, o in walk(DOC) if isinstance(o.get("schema"), dict)]
    schemas += list(DOC["components"]["schemas"].values())
    for s in schemas:
        Draft202012Validator.check_schema(s)


def test_path_templates_match_their_parameters_and_operation_ids_are_unique():
    ids = []
    for path, item in DOC["paths"].items():
        templated = set(re.findall(r"\{([^{}]+)\}", path))
        for m in METHODS:
            if m not in item:
                continue
            op = item[m]
            ids.append(op["operationId"])
            params = [resolve(p["$ref"]) if "$ref" in p else p
                      for p in item.get("parameters", []) + op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == templated, "%s %s: path parameters %s" % (m, path, in_path)
            assert "x-hearth-scope" in op, "%s %s has no x-hearth-scope" % (m, path)
            sec = op.get("security", DOC["security"])
            if op["x-hearth-scope"] == "public":
                assert sec == [], "%s %s is public but asks for %s" % (m, path, sec)
            elif "sigv4" not in json.dumps(sec):
                assert sec == [{"bearer": [op["x-hearth-scope"]]}], (m, path, sec)
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, "operationIds used twice: %s" % dup


def sample_url(hearth, path, item, op):
    params = {}
    for p in item.get("parameters", []) + op.get("parameters", []):
        p = resolve(p["$ref"]) if "$ref" in p else p
        if p["in"] == "path":
            params[p["name"]] = p["example"]
    return hearth.url(re.sub(r"\{([^{}]+)\}", lambda m: params[m.group(1)], path))


OPERATIONS = [(p, m) for p, item in DOC["paths"].items() for m in METHODS if m in item]


@pytest.mark.parametrize("path,method", OPERATIONS, ids=lambda v: v)
def test_every_described_operation_is_served(hearth, path, method):
    """Sent without a token and with sample values. An operation that needs
    a token or a signature refuses it (401, 403) before it looks anything
    up, so any 404 or 405 means the route is missing; a public one may
    answer 404 of its own, but never 404 `not_found` (no route)."""
    item = DOC["paths"][path]
    url = sample_url(hearth, path, item, item[method])
    r = requests.request(method.upper(), url, timeout=10)
    code = None
    if r.headers.get("Content-Type", "").startswith("application/json") and r.content:
        try:
            code = (r.json().get("error") or {}).get("code")
        except ValueError:
            pass
    assert r.status_code != 405, "%s %s: 405, not served" % (method.upper(), path)
    if item[method]["x-hearth-scope"] == "public":
        assert not (r.status_code == 404 and (code == "not_found" or method == "head")), \
            "%s %s: 404 %s, not served" % (method.upper(), path, code)
    else:
        assert r.status_code != 404, "%s %s: 404 %s %s, not served" % (
            method.upper(), path, code or r.headers.get("X-Amzn-ErrorType"), r.text[:200])


def test_the_daemon_serves_the_file_without_a_token(hearth):
    r = requests.get(hearth.url("/v1/openapi.json"), timeout=10)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == DOC_FILE.read_bytes()
    assert "X-Request-Id" in r.headers
    r = requests.post(hearth.url("/v1/openapi.json"), timeout=10)
    assert r.status_code == 405


def check_answer(r, path, method="get", want=None):
    """Validates an answer against the description's schema for its path,
    method and status (a schema that drifted from the code fails here);
    `want`: the status it must have."""
    if want is not None:
        assert r.status_code == want, "%s %s: %d %s" % (method.upper(), path, r.status_code,
                                                        r.text[:300])
    resp = DOC["paths"][path][method]["responses"][str(r.status_code)]
    resp = resolve(resp["$ref"]) if "$ref" in resp else resp
    schema = resp["content"]["application/json"]["schema"]
    resolver = RefResolver("", DOC)
    errors = list(Draft202012Validator(schema, resolver=resolver).iter_errors(r.json()))
    assert not errors, "%s %s %d: %s" % (method.upper(), path, r.status_code, "; ".join(
        "%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200]) for e in errors[:5]))


CODE = {"main.py": "def handler(e, c):\n    return e\n"}


@pytest.fixture(scope="module")
def deployed(hearth):
    """oa-fn, deployed once for the module: the deploy's answer."""
    r = hearth.deploy("oa-fn", files=CODE, env={"A": "b"}, schedules=["@every 1h"],
                      subscriptions=["oa-topic"], routes=[{"method": "GET", "path": "/oa/{id}"}],
                      on_failure="oa-fn")
    assert r.status_code == 201, r.text[:500]
    return r


def test_answers_match_their_schemas(hearth, deployed):
    check_answer(deployed, "/v1/functions/{name}", "put")
    check_answer(hearth.request("PUT", "/v1/secrets/oa-secret", data=b"x"), "/v1/secrets/{secret}",
                 "put")
    r = hearth.request("POST", "/v1/tokens", json={"name": "oa-t", "scopes": ["read"]})
    check_answer(r, "/v1/tokens", "post")
    for path, real in [("/healthz", None), ("/v1/runtimes", None), ("/v1/functions", None),
                       ("/v1/functions/{name}", "/v1/functions/oa-fn"),
                       ("/v1/functions/{name}/schedules", "/v1/functions/oa-fn/schedules"),
                       ("/v1/functions/{name}/invocations", "/v1/functions/oa-fn/invocations"),
                       ("/v1/topics", None), ("/v1/routes", None), ("/v1/secrets", None),
                       ("/v1/tokens", None), ("/v1/audit", None)]:
        r = hearth.get(real or path)
        assert r.status_code == 200, (path, r.text[:300])
        check_answer(r, path)
    r = hearth.get("/v1/functions/oa-nope")
    check_answer(r, "/v1/functions/{name}")
    r = hearth.request("GET", "/v1/functions", token=None)
    check_answer(r, "/v1/functions")


def test_versions_answers_match_their_schemas(hearth, deployed):
    """Versions, aliases and rollback (issue 14)."""
    r = hearth.deploy("oa-fn", files=CODE, memory_mb=256)
    check_answer(r, "/v1/functions/{name}", "put", 200)
    r = hearth.get("/v1/functions/oa-fn/versions")
    check_answer(r, "/v1/functions/{name}/versions", want=200)
    assert len(r.json()["versions"]) == 2
    r = hearth.request("PUT", "/v1/functions/oa-fn/aliases/prod",
                       json={"version": 1, "weights": {"2": 0.25}})
    check_answer(r, "/v1/functions/{name}/aliases/{alias}", "put", 201)
    check_answer(hearth.get("/v1/functions/oa-fn/aliases/prod"),
                 "/v1/functions/{name}/aliases/{alias}", want=200)
    r = hearth.get("/v1/functions/oa-fn/aliases/nope")
    check_answer(r, "/v1/functions/{name}/aliases/{alias}", want=404)
    assert r.json()["error"]["code"] == "alias_not_found"
    check_answer(hearth.get("/v1/functions/oa-fn/aliases"), "/v1/functions/{name}/aliases",
                 want=200)
    r = hearth.request("POST", "/v1/functions/oa-fn/rollback", json={"version": 1})
    check_answer(r, "/v1/functions/{name}/rollback", "post", 200)
    assert r.json()["version"] == 1


def test_stacks_answers_match_their_schemas(hearth):
    """Stacks (issue 14)."""
    body = {"functions": {"oa-stacked": {"code": b64(targz({"main.py": CODE["main.py"]})),
                                         "runtime": "python3", "handler": "main.handler"}}}
    r = hearth.request("POST", "/v1/stacks/oa-stack", json=body)
    check_answer(r, "/v1/stacks/{stack}", "post", 200)
    check_answer(hearth.get("/v1/stacks"), "/v1/stacks", want=200)
    check_answer(hearth.get("/v1/stacks/oa-stack"), "/v1/stacks/{stack}", want=200)
    check_answer(hearth.get("/v1/functions/oa-stacked"), "/v1/functions/{name}", want=200)
