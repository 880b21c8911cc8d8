"""`hearth`, the command-line client, against a real hearthd (docs/cli.md).

One daemon for the module (this file runs four times in CI). Covers:
deploy of a directory with a .hearthignore, invoke -d / -d @file, --json,
errors (non-zero, one line on stderr), ls/show/rm, tokens, logs --request
and --since, async --wait, dead invocations and retry, schedules, where the
URL and token come from (flags, environment, ~/.config/hearth/config, the
local daemon's hearthd.conf and admin token), bash completion, and what a
terminal sees: tables on a TTY against plain rows on a pipe, the upload
progress line, `logs -f` ended by Ctrl-C.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cli_helpers import CLI, PtyRun, cli_env, ok, run
from conftest import REPO, py

COMPLETION = REPO / "dist" / "hearth.bash-completion"
BAD_TOKEN = "hth_" + "A" * 43  # well formed, known to no daemon
DEAD_URL = "http://127.0.0.1:1"  # nothing listens there: connection refused

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


def env_with(hearth, workdir, **changes):
    """cli_env's environment with some variables changed; None removes one."""
    env = cli_env(hearth, workdir)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_env(hearth, workdir, *args, **changes):
    """run(), in an environment changed as env_with changes it."""
    return subprocess.run([CLI] + [str(a) for a in args], cwd=workdir,
                          env=env_with(hearth, workdir, **changes),
                          capture_output=True, text=True, timeout=120)


def fresh_dir(work, prefix):
    return Path(tempfile.mkdtemp(dir=work, prefix=prefix))


def write_user_config(config_home, url=None, token=None):
    """<config_home>/hearth/config, with a comment and loose spacing."""
    (config_home / "hearth").mkdir(parents=True, exist_ok=True)
    text = "# written by test_cli.py\n\n"
    if url:
        text += "url = %s\n" % url
    if token:
        text += "  token=%s  \n" % token
    (config_home / "hearth" / "config").write_text(text)


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


def rfc3339(ms, offset=timedelta(0)):
    """Unix milliseconds as an RFC 3339 time with milliseconds, at `offset`."""
    zone = timezone(offset)
    t = datetime.fromtimestamp(ms // 1000, zone) + timedelta(milliseconds=ms % 1000)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_logs_since_leaves_out_earlier_lines(hearth, work, lister):
    def records(*args):
        nd = ok(hearth, work, "--json", "logs", lister, "--tail", "10000", *args).stdout
        return [json.loads(line) for line in nd.splitlines()]

    def invoke_logged(mark):
        rid = hearth.invoke_ok(lister, json={"mark": mark}).headers["X-Request-Id"]
        deadline = time.monotonic() + 10
        while not records("--request", rid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return records("--request", rid)

    before = invoke_logged("since-before")
    assert before, "no log line of the first call"
    # T: just after the first call's last line. Lines are stamped to the
    # millisecond, so the boundary needs a wait of a millisecond or two.
    boundary = max(r["time_ms"] for r in before) + 1
    while time.time() * 1000 < boundary + 1:
        time.sleep(0.001)
    after = invoke_logged("since-after")
    assert after and min(r["time_ms"] for r in after) >= boundary, (boundary, after)

    everything = ok(hearth, work, "logs", lister, "--tail", "10000").stdout
    assert "since-before" in everything and "since-after" in everything, everything
    # "at or after": one millisecond earlier takes the first call's line in
    assert "since-before" in ok(hearth, work, "logs", lister, "--since",
                                boundary - 1).stdout
    for since in (str(boundary), rfc3339(boundary),
                  rfc3339(boundary, timedelta(hours=5, minutes=30)),
                  rfc3339(boundary, -timedelta(hours=3))):
        out = ok(hearth, work, "logs", lister, "--since", since).stdout
        assert "since-after" in out and "since-before" not in out, (since, out)
        got = records("--since", since)
        assert got and all(r["time_ms"] >= boundary for r in got), (since, got)

    # a T that is neither: the daemon's reason, one line, exit 1
    for bad in ("5m", "yesterday", "", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                "2026-12-04 10:00"):
        p = run(hearth, work, "logs", lister, "--since", bad)
        assert p.returncode == 1 and p.stdout == "", (bad, p)
        assert p.stderr.count("\n") == 1, (bad, p.stderr)
        assert "since must be unix milliseconds or an RFC 3339 time" in p.stderr, p.stderr
    p = run(hearth, work, "logs", lister, "--since")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr


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


def no_hearth_env(home):
    """No URL or token in the environment: only files can give them."""
    return dict(HOME=home, HEARTH_URL=None, HEARTH_TOKEN=None, HEARTH_CONFIG=None,
                XDG_CONFIG_HOME=None)


def test_config_file_gives_url_and_token(hearth, work, lister):
    home = fresh_dir(work, "home-")
    write_user_config(home / ".config", hearth.url(""), hearth.token)
    p = run_env(hearth, home, "ls", **no_hearth_env(home))
    assert p.returncode == 0, p.stderr
    assert lister in [row.split("\t")[0] for row in p.stdout.splitlines()], p.stdout
    p = run_env(hearth, home, "ui", **no_hearth_env(home))
    assert p.stdout.strip() == "%s/ui/#token=%s" % (hearth.url(""), hearth.token), p
    # $XDG_CONFIG_HOME/hearth/config is read instead when set
    xdg = fresh_dir(work, "xdg-")
    write_user_config(xdg, hearth.url(""), hearth.token)
    write_user_config(home / ".config", DEAD_URL, BAD_TOKEN)
    p = run_env(hearth, home, "ls", **dict(no_hearth_env(home), XDG_CONFIG_HOME=xdg))
    assert p.returncode == 0, p.stderr
    assert run_env(hearth, home, "ls", **no_hearth_env(home)).returncode == 1


# the config file's url and token, the environment's, the command line's
# flags, and the error `hearth ls` meets (None: it works)
PRECEDENCE = {
    "env-token-over-file": (("GOOD", "BAD"), (None, "GOOD"), (), None),
    "bad-env-token-over-good-file": (("GOOD", "GOOD"), (None, "BAD"), (), "401"),
    "env-url-over-file": (("DEAD", "GOOD"), ("GOOD", None), (), None),
    "dead-env-url-over-good-file": (("GOOD", "GOOD"), ("DEAD", None), (), "127.0.0.1:1"),
    "url-from-env-token-from-file": ((None, "GOOD"), ("GOOD", None), (), None),
    "flag-token-over-env": ((None, None), ("GOOD", "GOOD"), (("--token", "BAD"),), "401"),
    "flag-url-over-env-and-file": (("DEAD", "GOOD"), ("DEAD", None), (("--url", "GOOD"),), None),
}


@pytest.mark.parametrize("case", sorted(PRECEDENCE))
def test_flags_then_environment_then_config_file(hearth, work, case):
    (file_url, file_token), (env_url, env_token), flags, error = PRECEDENCE[case]
    urls = {"GOOD": hearth.url(""), "DEAD": DEAD_URL, None: None}
    tokens = {"GOOD": hearth.token, "BAD": BAD_TOKEN, None: None}
    home = fresh_dir(work, "home-")
    write_user_config(home / ".config", urls[file_url], tokens[file_token])
    env = dict(no_hearth_env(home), HEARTH_URL=urls[env_url], HEARTH_TOKEN=tokens[env_token])
    args = []
    for flag, v in flags:
        args += [flag, urls[v] if flag == "--url" else tokens[v]]
    p = run_env(hearth, home, *args, "ls", **env)
    if error is None:
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode == 1 and p.stdout == "", p
        assert p.stderr.count("\n") == 1 and error in p.stderr, p.stderr


def test_local_daemon_discovery(hearth, work):
    """On the daemon's machine, with no URL or token given, `hearth` reads
    hearthd.conf ($HEARTH_CONFIG: a temp file here) for the URL and takes
    the admin token from the data dir, but only for a loopback URL."""
    d = fresh_dir(work, "local-")
    conf = d / "hearthd.conf"
    env = dict(no_hearth_env(d), HEARTH_CONFIG=conf)
    port = hearth.port
    fake = {k: "hth_" + k * 43 for k in "BCD"}

    def ui(conf_text, cwd=d, **changes):
        """What `hearth ui` prints (the URL and token it settled on), or
        its error."""
        conf.write_text(conf_text)
        p = run_env(hearth, cwd, "ui", **dict(env, **changes))
        assert (p.returncode, p.stderr.count("\n")) in ((0, 0), (1, 1)), p
        return p.stdout.strip() or p.stderr.strip()

    def link(url, token):
        return "%s/ui/#token=%s" % (url, token)

    # the test daemon itself, found through a wildcard listen and its data-dir
    conf.write_text("# hearthd.conf\nlisten = 0.0.0.0:%d  # every address\n"
                    "#listen = 192.0.2.1:1\ndata-dir = %s\n" % (port, hearth.data_dir))
    p = run_env(hearth, d, "--json", "ls", **env)
    assert p.returncode == 0 and "functions" in json.loads(p.stdout), p
    data = "data-dir = %s\n" % hearth.data_dir
    local = "http://127.0.0.1:%d" % port
    here = link(local, hearth.token)
    assert ui("listen = 0.0.0.0:%d\n" % port + data) == here
    # hearthd's comments start at a blank: a tab too
    assert ui("listen = 127.0.0.1:%d\t# loopback only\n" % port + data) == here
    assert ui("listen = [::]:%d\n" % port + data) == link("http://[::1]:%d" % port, hearth.token)
    assert ui("listen = 127.0.0.1:%d\ntls-cert = /x/cert.pem\n" % port + data) == link(
        local.replace("http:", "https:"), hearth.token)
    no_token = "hearth: no token: set HEARTH_TOKEN (docs/cli.md)"
    # without hearthd.conf: no data-dir known, so no token
    assert ui(data, HEARTH_CONFIG=d / "missing.conf") == no_token

    # the token's places, in order: $HEARTH_DATA_DIR, ./hearth-data, data-dir
    for name, token in (("env-data", fake["B"]), ("hearth-data", fake["C"])):
        (d / name).mkdir()
        (d / name / "admin-token").write_text(token + "\n")
    conf_text = "listen = 127.0.0.1:%d\n" % port + data
    assert ui(conf_text, HEARTH_DATA_DIR=d / "env-data") == link(local, fake["B"])
    assert ui(conf_text) == link(local, fake["C"])
    assert ui("", HEARTH_CONFIG=d / "missing.conf") == link("http://127.0.0.1:8080", fake["C"])
    # the user's config file and the environment come first, each separately
    write_user_config(d / ".config", token=fake["D"])
    assert ui(conf_text) == link(local, fake["D"])
    (d / ".config" / "hearth" / "config").unlink()
    assert ui(conf_text, HEARTH_TOKEN=fake["B"]) == link(local, fake["B"])

    # a local admin token never goes to another machine
    shutil.rmtree(d / "hearth-data")
    assert ui("listen = 192.0.2.1:%d\n" % port + data) == no_token
    for url in ("http://192.0.2.1:8080", "http://localhost.example.com:%d" % port,
                "http://127.0.0.1.example.com/", "http://127.0.0.1@example.com/"):
        assert ui(conf_text, HEARTH_URL=url) == no_token, url
        write_user_config(d / ".config", url=url)
        assert ui(conf_text) == no_token, url
        (d / ".config" / "hearth" / "config").unlink()
    assert ui(conf_text, HEARTH_URL="http://localhost:%d/" % port) == link(
        "http://localhost:%d" % port, hearth.token)


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


# bash's default COMP_WORDBREAKS, less the blanks
WORDBREAKS = "\"'@><=;|&(:"
COMPLETE = r'''
source "$0" || exit 3
[[ $(complete -p hearth) == "complete -F _hearth hearth" ]] || exit 4
COMP_CWORD=$(($# - 2)) cur=$1
shift
COMP_WORDS=("$@") COMP_LINE=$LINE COMP_POINT=${#LINE}
_hearth hearth "$cur" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def bash_words(line):
    """COMP_WORDS and $2 as interactive bash gives them to a completion
    function at the end of `line` (words one space apart, no quotes). bash
    splits at COMP_WORDBREAKS too (`--url=http://h:1` is the words --url = http
    : //h : 1, `-d @f` -d @ f); $2 is the text readline replaces, from the last
    break on, an `@` before it kept (rl_special_prefixes)."""
    brk = re.escape(WORDBREAKS)
    words = []
    for piece in line.split(" "):
        words += re.findall("[%s]+|[^%s]+" % (brk, brk), piece) or [""]
    return words, re.search(r"@?[^\s%s]*$" % brk, line).group()


def complete(hearth, work, line, cwd=None, **changes):
    """What dist/hearth.bash-completion offers for `line`, completed at its
    end, in `bash --norc`; `hearth` on its PATH is the CLI under test."""
    bindir = work / "bin"
    if not (bindir / "hearth").exists():
        bindir.mkdir(exist_ok=True)
        (bindir / "hearth").symlink_to(os.path.abspath(CLI))
    cwd = cwd or work
    words, cur = bash_words(line)
    env = env_with(hearth, cwd, LINE=line, **changes)
    env["PATH"] = "%s:%s" % (bindir, env.get("PATH", "/usr/bin:/bin"))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", COMPLETE, str(COMPLETION), cur]
                       + words, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", (line, p.returncode, p.stderr)
    return sorted(w for w in p.stdout.split("\n") if w)


def help_list(text, label):
    """The values an option's line of --help lists after `label`: "a, b or c"."""
    m = re.search(r"^ .*" + re.escape(label) + r"\s+(.*)$", text, re.M)
    return sorted(re.split(r", | or ", m.group(1).strip()))


def test_completion_of_commands_options_and_values(hearth, work):
    top = ok(hearth, work, "--help").stdout
    commands = set(re.findall(r"^  (\w+)", top, re.M))
    assert complete(hearth, work, "hearth ") == sorted(
        commands | {"--json", "--url", "--token", "--help"})
    assert complete(hearth, work, "hearth inv") == ["invocations", "invoke"]
    assert complete(hearth, work, "hearth --json lo") == ["logs"]
    # the global options' values are skipped, however bash split them
    url = hearth.url("")
    assert complete(hearth, work, "hearth --url %s inv" % url) == ["invocations", "invoke"]
    assert complete(hearth, work, "hearth --url=%s --token %s --json ro" % (
        url, BAD_TOKEN)) == ["rollback"]
    for line in ("hearth --url ", "hearth --url=", "hearth --url http://h:", "hearth --token ",
                 "hearth logs f --since ", "hearth deploy . --set "):
        assert complete(hearth, work, line) == [], line

    # each command's options are those its --help names
    for cmd in sorted(commands):
        usage = ok(hearth, work, cmd, "--help").stdout.split("\nGlobal options")[0]
        named = set(re.findall(r"--[a-z][a-z-]*", usage)) | {"--json", "--help"}
        assert complete(hearth, work, "hearth %s --" % cmd) == sorted(named), cmd
    assert complete(hearth, work, "hearth logs f --s") == ["--since"]
    assert complete(hearth, work, "hearth token ") == ["create", "ls", "rm"]

    # values: runtimes and statuses as --help lists them, scopes as docs/api.md
    runtimes = help_list(ok(hearth, work, "deploy", "--help").stdout, "--runtime R")
    assert "python3" in runtimes
    assert complete(hearth, work, "hearth deploy . --runtime ") == runtimes
    assert complete(hearth, work, "hearth deploy . -r py") == ["python3"]
    assert complete(hearth, work, "hearth deploy . --runtime=py") == ["python3"]
    statuses = help_list(ok(hearth, work, "invocations", "--help").stdout, "--status S")
    assert "dead" in statuses
    assert complete(hearth, work, "hearth invocations f --status ") == statuses
    assert complete(hearth, work, "hearth invocations f --status=de") == ["dead"]
    api = (REPO / "docs" / "api.md").read_text()
    table = api.split("| scope | allows |")[1].split("\n\n")[0]
    scopes = sorted(re.findall(r"^\| `([a-z]+)` \|", table, re.M))
    assert "admin" in scopes
    assert complete(hearth, work, "hearth token create --name x --scope ") == scopes


def test_completion_of_function_names_and_files(hearth, work, lister):
    names = sorted(f["name"] for f in hearth.list_functions())
    assert lister in names
    for cmd in ("invoke", "logs", "show", "rm", "versions", "rollback", "alias", "invocations",
                "schedules"):
        assert complete(hearth, work, "hearth %s " % cmd) == names, cmd
    assert complete(hearth, work, "hearth invoke cli-lis") == [lister]
    assert complete(hearth, work, "hearth --url %s --json logs cli-lis" % hearth.url("")) == [
        lister]
    assert complete(hearth, work, "hearth logs %s " % lister) == [], "one name only"
    # no daemon to ask: nothing, and not a word on the terminal
    assert complete(hearth, work, "hearth show cli-", HEARTH_URL=DEAD_URL) == []

    d = fresh_dir(work, "files-")
    for f in ("payload.json", "hearth.yml", "other.yaml", "notes.txt"):
        (d / f).write_text("{}")
    (d / "sub").mkdir()
    assert complete(hearth, work, "hearth invoke f -d @pay", cwd=d) == ["@payload.json"]
    assert complete(hearth, work, "hearth invoke f --data=@pay", cwd=d) == ["@payload.json"]
    assert complete(hearth, work, "hearth invoke f -d @", cwd=d) == [
        "@hearth.yml", "@notes.txt", "@other.yaml", "@payload.json", "@sub"]
    assert complete(hearth, work, "hearth invoke f -d pay", cwd=d) == [], "text, not a file"
    assert complete(hearth, work, "hearth apply ", cwd=d) == ["hearth.yml", "other.yaml", "sub"]
    assert complete(hearth, work, "hearth deploy ", cwd=d) == ["sub"]
