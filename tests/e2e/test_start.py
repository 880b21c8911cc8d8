"""Issue point 1 (Start): --help, the 'listening' line, /healthz, service routes."""

import re
import subprocess

from conftest import HEARTHD, assert_error


def test_healthz_answers_ok_once_serving(hearth):
    r = hearth.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers.get("X-Request-Id")


def test_help_documents_the_flags():
    p = subprocess.run([HEARTHD, "--help"], capture_output=True, timeout=10)
    text = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, text
    for flag in ("--listen", "--data-dir", "--log-level"):
        assert flag in text, "--help does not mention %s:\n%s" % (flag, text)
    assert "HOST:PORT" in text.upper(), "--help does not say --listen takes HOST:PORT:\n" + text


def test_bad_flag_fails_with_usage():
    p = subprocess.run([HEARTHD, "--no-such-flag"], capture_output=True, timeout=10)
    assert p.returncode != 0
    assert (p.stdout + p.stderr).strip(), "a bad flag must say why"


def test_logs_one_line_saying_where_it_listens(hearth):
    text = hearth.stderr_text()
    addr = "127.0.0.1:%d" % hearth.port
    lines = [l for l in text.splitlines() if re.search("listen", l, re.I) and addr in l]
    assert lines, "no line saying hearthd listens on %s in:\n%s" % (addr, hearth.stderr_tail())


def test_unknown_route_is_404_not_found(hearth):
    assert_error(hearth.get("/nope"), 404, "not_found")
    assert_error(hearth.get("/v1/nope"), 404, "not_found")


def test_wrong_method_is_405_with_allow(hearth):
    """Every 405 says which methods the path takes (RFC 9110)."""
    for method, path, allow in [("POST", "/healthz", "GET"),
                                ("PATCH", "/v1/functions/some-fn", "GET, PUT, DELETE"),
                                ("GET", "/v1/functions/some-fn/invoke", "POST"),
                                ("DELETE", "/v1/functions", "GET"),
                                ("GET", "/v1/secrets/some-secret", "PUT, DELETE")]:
        r = hearth.request(method, path)
        assert_error(r, 405, "method_not_allowed")
        assert r.headers.get("Allow") == allow, (method, path, r.headers)


def test_runtimes_lists_usable_python3(hearth):
    r = hearth.get("/v1/runtimes")
    assert r.status_code == 200, r.text
    runtimes = {rt["name"]: rt for rt in r.json()["runtimes"]}
    assert "python3" in runtimes, r.text
    assert runtimes["python3"]["usable"] is True, r.text
    assert re.match(r"^3\.\d+\.\d+$", runtimes["python3"]["version"]), r.text


def test_unusable_runtime_is_listed_and_refused_with_the_reason(hearth_factory):
    """A runtime hearthd cannot run here (its program is missing) is listed
    with usable false and why, and a deploy to it is 400
    unsupported_runtime saying why."""
    import shutil as _shutil
    from conftest import REPO
    h = hearth_factory(start=False)
    rt_dir = h.base / "runtimes"  # inside the daemon's own dir: readable rootless too
    _shutil.copytree(REPO / "runtimes", rt_dir)
    _shutil.rmtree(rt_dir / "exec")
    h.args += ["--runtimes-dir", str(rt_dir)]
    h.start()
    ex = {r["name"]: r for r in h.get("/v1/runtimes").json()["runtimes"]}["exec"]
    assert ex["usable"] is False and "exec/runner.py" in ex["reason"], ex
    r = h.deploy("rt-exec", files={"run.sh": "#!/bin/sh\necho hi\n"}, handler="run.sh",
                 runtime="exec")
    err = assert_error(r, 400, "unsupported_runtime")
    assert "exec/runner.py" in err["message"], err


def test_no_host_network_refuses_a_host_network_deploy(hearth_factory):
    """--no-host-network: the spawner would refuse every worker of a
    "network": "host" function, so the deploy says so (400), and nothing
    is stored; an isolated function still deploys and runs."""
    h = hearth_factory("--no-host-network")
    code = "def handler(e, c):\n    return 'ok'\n"
    r = h.deploy("nh-host", files={"main.py": code}, network="host")
    assert_error(r, 400, "invalid_field")
    assert "--no-host-network" in r.json()["error"]["message"]
    assert h.show("nh-host").status_code == 404
    h.deploy_ok("nh-isolated", code)
    assert h.invoke_ok("nh-isolated", json={}).text == "ok"
