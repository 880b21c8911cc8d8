"""Secrets: PUT/GET/DELETE /v1/secrets, a function's "secrets" list, the
files at /run/secrets in its sandbox, and the plaintext kept out of the data
dir and the daemon's log. Runs root and rootless (HEARTH_E2E_ROOTLESS)."""

import base64
import json
import os
import uuid

import pytest

from conftest import assert_error, py, targz

READER = py('''
    import base64, os, stat

    def handler(event, context):
        names = event.get("names", [])
        out = {"pid": os.getpid(), "uid": os.getuid(), "files": {}}
        try:
            out["listing"] = sorted(os.listdir("/run/secrets"))
        except OSError as e:
            out["listing"] = "error: %s" % e.strerror
        for n in names:
            p = "/run/secrets/" + n
            with open(p, "rb") as f:
                data = f.read()
            st = os.stat(p)
            out["files"][n] = {"b64": base64.b64encode(data).decode(),
                               "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid}
        return out
''')


def put_secret(hearth, name, value):
    return hearth.request("PUT", "/v1/secrets/%s" % name, data=value,
                          headers={"Content-Type": "application/octet-stream"})


def put_ok(hearth, name, value):
    r = put_secret(hearth, name, value)
    assert r.status_code in (200, 201), r.text
    return r


def list_secrets(hearth):
    r = hearth.get("/v1/secrets")
    assert r.status_code == 200, r.text
    return r.json()["secrets"]


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def read_secrets(hearth, fn, names):
    r = hearth.invoke_ok(fn, json={"names": names})
    return r, r.json()


def test_put_list_delete_shapes(hearth):
    name = unique("shape")
    value = b"shape-value-" + uuid.uuid4().hex.encode()
    r = put_secret(hearth, name, value)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == name and body["updated_at"].endswith("Z")
    assert set(body) == {"name", "updated_at"}
    r = put_secret(hearth, name, value + b"2")
    assert r.status_code == 200, r.text
    listed = list_secrets(hearth)
    mine = [s for s in listed if s["name"] == name]
    assert len(mine) == 1 and set(mine[0]) == {"name", "updated_at"}
    r = hearth.get("/v1/secrets")
    assert value.decode() not in r.text
    r = hearth.request("DELETE", "/v1/secrets/%s" % name)
    assert r.status_code == 204, r.text
    assert name not in [s["name"] for s in list_secrets(hearth)]
    assert_error(hearth.request("DELETE", "/v1/secrets/%s" % name), 404, "secret_not_found")
    assert_error(hearth.get("/v1/secrets/%s" % name), 405, "method_not_allowed")


def test_value_limits(hearth):
    name = unique("limit")
    assert put_secret(hearth, name, b"x" * 65536).status_code == 201
    assert_error(put_secret(hearth, name, b"y" * 65537), 413, "payload_too_large")
    assert put_secret(hearth, name + "-e", b"").status_code == 201  # empty is a value too
    for bad in ("UPPER", "-lead", "a_b", "x" * 64):
        assert_error(put_secret(hearth, bad, b"v"), 400, "invalid_name")
    for n in (name, name + "-e"):
        hearth.request("DELETE", "/v1/secrets/%s" % n)


def test_binary_round_trip_and_file_shape(hearth):
    secret = unique("bin")
    value = bytes(range(256)) * 16 + b"\x00end\x00" + os.urandom(1000)
    put_ok(hearth, secret, value)
    fn = unique("reader")
    f = hearth.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    assert f["secrets"] == [secret]
    assert hearth.show(fn).json()["secrets"] == [secret]
    _, out = read_secrets(hearth, fn, [secret])
    got = out["files"][secret]
    assert base64.b64decode(got["b64"]) == value  # byte for byte
    assert got["mode"] == 0o400 and got["uid"] == out["uid"]
    assert out["listing"] == [secret]  # only what it lists
    hearth.delete(fn)
    hearth.request("DELETE", "/v1/secrets/%s" % secret)


def test_functions_without_secrets_have_no_run_secrets(hearth):
    fn = unique("plain")
    hearth.deploy_ok(fn, files={"main.py": READER})
    assert hearth.show(fn).json()["secrets"] == []
    _, out = read_secrets(hearth, fn, [])
    assert out["listing"].startswith("error")
    hearth.delete(fn)


def test_deploy_refuses_unknown_or_bad_secrets(hearth):
    fn = unique("unknown")
    missing = unique("missing")
    r = hearth.deploy(fn, files={"main.py": READER}, secrets=[missing])
    assert_error(r, 400, "unknown_secret")
    assert missing in r.json()["error"]["message"]
    assert hearth.show(fn).status_code == 404  # nothing stored
    for bad in (["a/b"], ["x", "x"], "notalist", [1], ["s%d" % i for i in range(17)]):
        assert_error(hearth.deploy(fn, files={"main.py": READER}, secrets=bad), 400,
                     "invalid_field")


def test_raw_archive_query_form(hearth):
    a, b = unique("qa"), unique("qb")
    put_ok(hearth, a, b"A-value")
    put_ok(hearth, b, b"B-value")
    fn = unique("rawsec")
    data = targz({"main.py": READER})
    r = hearth.deploy_raw(fn, data, "application/gzip", runtime="python3",
                          handler="main.handler", secrets="%s,%s" % (a, b))
    assert r.status_code == 201, r.text
    assert r.json()["secrets"] == [a, b]
    _, out = read_secrets(hearth, fn, [a, b])
    assert base64.b64decode(out["files"][a]["b64"]) == b"A-value"
    assert base64.b64decode(out["files"][b]["b64"]) == b"B-value"
    r = hearth.deploy_raw(fn, data, "application/gzip", runtime="python3",
                          handler="main.handler", secrets="nope-" + a)
    assert_error(r, 400, "unknown_secret")
    hearth.delete(fn)
    for n in (a, b):
        hearth.request("DELETE", "/v1/secrets/%s" % n)


def test_update_reaches_next_call_and_replaces_idle_workers(hearth):
    secret = unique("rot")
    put_ok(hearth, secret, b"old")
    fn = unique("rotating")
    hearth.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    _, first = read_secrets(hearth, fn, [secret])
    r, again = read_secrets(hearth, fn, [secret])
    assert again["pid"] == first["pid"] and r.headers.get("X-Hearth-Cold-Start") != "1"
    put_ok(hearth, secret, b"new")
    r, after = read_secrets(hearth, fn, [secret])
    assert base64.b64decode(after["files"][secret]["b64"]) == b"new"
    assert r.headers.get("X-Hearth-Cold-Start") == "1"  # the idle worker was replaced
    hearth.delete(fn)
    hearth.request("DELETE", "/v1/secrets/%s" % secret)


def test_delete_refused_while_listed(hearth):
    secret = unique("used")
    put_ok(hearth, secret, b"in-use")
    fn = unique("user")
    hearth.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    r = hearth.request("DELETE", "/v1/secrets/%s" % secret)
    assert_error(r, 409, "secret_in_use")
    assert fn in r.json()["error"]["message"]
    hearth.deploy_ok(fn, files={"main.py": READER})  # a version without it
    assert hearth.request("DELETE", "/v1/secrets/%s" % secret).status_code == 204
    hearth.delete(fn)


def walk_files(root):
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                yield p


def test_plaintext_nowhere_on_disk_or_in_logs(fresh_hearth):
    h = fresh_hearth
    marker = "plaintext-marker-" + uuid.uuid4().hex
    secret = unique("hidden")
    put_ok(h, secret, marker.encode())
    fn = unique("holder")
    h.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    _, out = read_secrets(h, fn, [secret])
    assert base64.b64decode(out["files"][secret]["b64"]).decode() == marker
    put_ok(h, secret, (marker + "-v2").encode())
    read_secrets(h, fn, [secret])
    h.get("/v1/secrets")
    needles = [marker.encode(), base64.b64encode(marker.encode()),
               marker.encode().hex().encode()]
    seen = []
    for p in walk_files(h.data_dir):
        with open(p, "rb") as f:
            data = f.read()
        if any(n in data for n in needles):
            seen.append(p)
    names = {os.path.basename(p) for p in walk_files(h.data_dir)}
    assert "hearth.db" in names  # the registry was searched too (and its -wal when present)
    assert seen == [], "plaintext found in %s" % seen
    log = h.stderr_text()
    assert marker not in log
    assert secret in log  # names are logged, values never
    h.delete(fn)


def test_secrets_survive_a_restart(fresh_hearth):
    h = fresh_hearth
    secret = unique("durable")
    put_ok(h, secret, b"kept")
    fn = unique("after-restart")
    h.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    h.restart()
    _, out = read_secrets(h, fn, [secret])
    assert base64.b64decode(out["files"][secret]["b64"]) == b"kept"
    assert secret in [s["name"] for s in list_secrets(h)]


def test_round_trip_without_templates(hearth_factory):
    """The exec path (no zygote): the bundle reaches the sandbox the same way."""
    h = hearth_factory("--no-templates")
    secret = unique("exec")
    value = os.urandom(3000) + b"\x00"
    put_ok(h, secret, value)
    fn = unique("exec-reader")
    h.deploy_ok(fn, files={"main.py": READER}, secrets=[secret])
    _, out = read_secrets(h, fn, [secret])
    assert base64.b64decode(out["files"][secret]["b64"]) == value
    assert "template python3: ready" not in h.stderr_text()
