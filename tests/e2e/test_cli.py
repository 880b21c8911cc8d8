"""`hearth`, the command-line client, against a real hearthd (docs/cli.md).

One daemon for the module (this file runs four times in CI). Covers:
deploy of a directory with a .hearthignore, invoke -d / -d @file, --json,
errors (non-zero, one line on stderr), ls/show/rm, tokens, logs --request,
async --wait, dead invocations and retry, schedules, and what a terminal sees: tables on a TTY against plain rows
on a pipe, the upload progress line, `logs -f` ended by Ctrl-C.
"""

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from cli_helpers import PtyRun, ok, run
from conftest import py

LISTER = py("""
    import os

    def handler(event, context):
        print("event", event)
        here = os.path.dirname(os.path.abspath(__file__))
        files = []
        for root, dirs, names in os.walk(here):
            files += [os.path.relpath(os.path.join(root, n), here) for n in names]
        return {"files": sorted(files), "event": event}
""")


@pytest.fixture(scope="module")
def work():
    d = Path(tempfile.mkdtemp(prefix="hearth-e2e-cli-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def lister(hearth, work):
    """A function deployed by `hearth deploy` from a directory whose
    .hearthignore leaves some files out."""
    src = work / "lister"
    (src / "build").mkdir(parents=True)
    (src / "lib").mkdir()
    (src / "main.py").write_text(LISTER)
    (src / "secret.env").write_text("TOKEN=nope\n")
    (src / "build" / "out.o").write_text("junk")
    (src / "lib" / "debug.log").write_text("noise")
    (src / "lib" / "keep.log").write_text("kept")
    (src / "lib" / "util.py").write_text("X = 1\n")
    (src / ".hearthignore").write_text(
        "# comments and blank lines are skipped\n\nsecret.env\nbuild/\n*.log\n!keep.log\n")
    p = ok(hearth, work, "deploy", src, "--name", "cli-lister", "--runtime", "python3",
           "--handler", "main.handler", "--set", "memory_mb=256", "--set", "env={\"A\": \"1\"}")
    assert "cli-lister" in p.stdout and "version 1" in p.stdout, p.stdout
    return "cli-lister"


def test_deploy_honours_hearthignore_and_settings(hearth, work, lister):
    p = ok(hearth, work, "invoke", lister, "-d", '{"n": 1}')
    out = json.loads(p.stdout)
    assert out["event"] == {"n": 1}
    assert "main.py" in out["files"] and "lib/util.py" in out["files"]
    assert "lib/keep.log" in out["files"], "a !negation did not re-include"
    for gone in ("secret.env", "build/out.o", "lib/debug.log"):
        assert gone not in out["files"], "%s should have been ignored: %s" % (gone, out["files"])
    fn = hearth.show(lister).json()
    assert fn["memory_mb"] == 256 and fn["env"] == {"A": "1"}, "--set values parsed as JSON"


def test_invoke_data_from_file_and_text(hearth, work, lister):
    (work / "event.json").write_text('{"from": "file"}')
    out = json.loads(ok(hearth, work, "invoke", lister, "-d", "@event.json").stdout)
    assert out["event"] == {"from": "file"}
    out = json.loads(ok(hearth, work, "invoke", lister, "-d", "plain words").stdout)
    assert out["event"] == "plain words"
    out = json.loads(ok(hearth, work, "invoke", lister, "-d", "@-", input="[1, 2]").stdout)
    assert out["event"] == [1, 2]


def test_json_output_and_pipe_rows(hearth, work, lister):
    listed = json.loads(ok(hearth, work, "--json", "ls").stdout)
    assert lister in [f["name"] for f in listed["functions"]]
    shown = json.loads(ok(hearth, work, "show", lister, "--json").stdout)
    assert shown["name"] == lister and shown["version"] == 1
    # on a pipe: tab-separated rows, no header
    rows = [line.split("\t") for line in ok(hearth, work, "ls").stdout.splitlines()]
    assert [lister, "1", "python3", "main.handler"] in [r[:4] for r in rows], rows
    assert not any(r[0] == "NAME" for r in rows)


def test_errors_exit_non_zero_with_one_line(hearth, work):
    p = run(hearth, work, "invoke", "no-such-fn", "-d", "{}")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "no function named 'no-such-fn'" in p.stderr, p.stderr
    p = run(hearth, work, "show", "no-such-fn")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "function_not_found" in p.stderr
    p = run(hearth, work, "ls", token="hth_" + "A" * 43)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "401" in p.stderr, p.stderr
    p = run(hearth, work, "frobnicate")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    p = run(hearth, work, "deploy", work / "missing-dir", "--runtime", "python3", "--handler", "m.h")
    assert p.returncode != 0 and p.stderr.count("\n") == 1
    # a function that raises: its error, one line, exit 1
    hearth.deploy_ok("cli-boom", """
        def handler(event, context):
            raise ValueError("boom")
    """)
    p = run(hearth, work, "invoke", "cli-boom")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "boom" in p.stderr, p.stderr


def test_help_for_every_command(hearth, work):
    top = ok(hearth, work, "--help").stdout
    commands = re.findall(r"^  (\w+)", top, re.M)
    assert {"deploy", "invoke", "logs", "ls", "show", "rm", "versions", "rollback", "alias",
            "invocations", "retry", "schedules", "token", "apply", "ui"} <= set(commands), top
    for cmd in commands:
        p = ok(hearth, work, cmd, "--help")
        assert p.stdout.startswith("usage: hearth " + cmd), p.stdout


def test_ls_show_rm(hearth, work):
    hearth.deploy_ok("cli-doomed", "def handler(e, c):\n    return 1\n")
    assert "cli-doomed" in ok(hearth, work, "ls").stdout
    shown = ok(hearth, work, "show", "cli-doomed").stdout
    assert re.search(r"^runtime\tpython3$", shown, re.M), shown
    assert "deleted cli-doomed" in ok(hearth, work, "rm", "cli-doomed").stdout
    assert hearth.show("cli-doomed").status_code == 404
    assert run(hearth, work, "rm", "cli-doomed").returncode == 1


def test_tokens_create_ls_rm(hearth, work, lister):
    token = ok(hearth, work, "token", "create", "--name", "cli-ci", "--scope", "invoke,read",
               "--functions", "cli-*").stdout.strip()
    assert re.fullmatch(r"hth_[A-Za-z0-9_-]{43}", token), token
    # the new token works, and only as far as its scopes go
    assert ok(hearth, work, "invoke", lister, "-d", "{}", token=token).returncode == 0
    p = run(hearth, work, "token", "ls", token=token)
    assert p.returncode == 1 and "403" in p.stderr
    tokens = json.loads(ok(hearth, work, "--json", "token", "ls").stdout)["tokens"]
    mine = [t for t in tokens if t["name"] == "cli-ci"]
    assert len(mine) == 1 and mine[0]["scopes"] == ["invoke", "read"]
    assert "revoked" in ok(hearth, work, "token", "rm", mine[0]["id"]).stdout
    p = run(hearth, work, "ls", token=token)
    assert p.returncode == 1 and "401" in p.stderr


def test_logs_of_one_request(hearth, work, lister):
    rid = hearth.invoke_ok(lister, json={"mark": "cli-logs"}).headers["X-Request-Id"]
    hearth.invoke_ok(lister, json={"mark": "other"})
    p = ok(hearth, work, "logs", lister, "--request", rid)
    assert "cli-logs" in p.stdout and "other" not in p.stdout, p.stdout
    assert all(rid in line for line in p.stdout.splitlines())
    nd = ok(hearth, work, "--json", "logs", lister, "--request", rid).stdout
    assert json.loads(nd.splitlines()[0])["request_id"] == rid


def test_async_wait_prints_the_result(hearth, work, lister):
    out = json.loads(ok(hearth, work, "invoke", lister, "--async", "--wait", "-d",
                        '{"async": true}').stdout)
    assert out["event"] == {"async": True}
    inv_id = ok(hearth, work, "invoke", lister, "--async", "-d", "{}").stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", inv_id), inv_id
    listed = json.loads(ok(hearth, work, "--json", "invocations", lister).stdout)
    assert inv_id in [i["id"] for i in listed["invocations"]]


def test_ui_link(hearth, work):
    assert ok(hearth, work, "ui").stdout.strip() == "%s/ui/#token=%s" % (
        hearth.url(""), hearth.token)


def test_table_on_a_terminal(hearth, work, lister):
    t = PtyRun(hearth, work, "ls")
    assert t.wait(30) == 0
    text = t.out.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert re.match(r"NAME\s+VERSION\s+RUNTIME", lines[0]), text
    row = [line for line in lines if line.startswith(lister)]
    assert row and "\t" not in row[0] and re.search(r"\s{2,}1\s{2,}python3", row[0]), text


def test_progress_line_for_a_big_upload_on_a_terminal(hearth, work):
    src = work / "big"
    src.mkdir()
    (src / "main.py").write_text("def handler(e, c):\n    return 'big'\n")
    (src / "blob.bin").write_bytes(os.urandom(1536 * 1024))  # incompressible: > 1 MB sent
    t = PtyRun(hearth, work, "deploy", src, "--name", "cli-big", "--runtime", "python3",
               "--handler", "main.handler")
    assert t.wait(120) == 0, t.out
    text = t.out.decode(errors="replace")
    assert re.search(r"uploading [0-9.]+ MB / [0-9.]+ MB \(100%\)", text), text
    # the same on a pipe: no progress line
    p = ok(hearth, work, "deploy", src, "--name", "cli-big", "--runtime", "python3",
           "--handler", "main.handler")
    assert "uploading" not in p.stderr and "version 2" in p.stdout


def test_logs_follow_ends_with_ctrl_c(hearth, work, lister):
    t = PtyRun(hearth, work, "logs", lister, "-f", "--tail", "1")
    try:
        deadline = time.monotonic() + 10
        rid = None
        while time.monotonic() < deadline:
            rid = hearth.invoke_ok(lister, json={"mark": "followed"}).headers["X-Request-Id"]
            if t.read_until(rid.encode(), 1.0):
                break
        assert rid and rid.encode() in t.out, t.out
        t.type(b"\x03")  # Ctrl-C on the terminal: SIGINT to its foreground group
        start = time.monotonic()
        assert t.wait(5) == 0, t.out
        assert time.monotonic() - start < 3, "logs -f took too long to stop"
    finally:
        if t.status is None:
            t.wait(1)


def test_dead_invocations_retry_and_schedules(hearth, work):
    hearth.deploy_ok("cli-dies", """
        def handler(event, context):
            raise RuntimeError("always")
    """, async_retries=0, schedules=["@every 1h"])
    p = run(hearth, work, "invoke", "cli-dies", "--async", "--wait", "--timeout", "60")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "dead" in p.stderr and "RuntimeError: always" in p.stderr, p.stderr
    rows = ok(hearth, work, "invocations", "cli-dies", "--status", "dead").stdout.splitlines()
    assert len(rows) == 1 and rows[0].split("\t")[1] == "dead", rows
    inv_id = rows[0].split("\t")[0]
    assert ok(hearth, work, "retry", inv_id).stdout.strip() == inv_id + " queued"
    p = run(hearth, work, "retry", "0" * 8 + "-0000-4000-8000-" + "0" * 12)
    assert p.returncode == 1 and "invocation_not_found" in p.stderr
    sched = json.loads(ok(hearth, work, "--json", "schedules", "cli-dies").stdout)
    assert sched["schedules"][0]["cron"] == "@every 1h" and len(sched["schedules"][0]["next"]) == 5
    rows = ok(hearth, work, "schedules", "cli-dies").stdout.splitlines()
    assert rows[0].startswith("0\t@every 1h\tUTC\t") and len(rows) == 5, rows
