"""Attacks on `hearth`, the CLI: what it prints and what it uploads.

- Whatever answers at HEARTH_URL (a daemon, or a server pretending to be
  one) and whatever a function writes must not drive the user's terminal:
  no escape sequence from an error message, an answer or a log stream
  reaches a TTY, and error messages stay one line.
- A stack file may come from someone else's repository: its `code` must not
  reach outside the file's folder (~/.ssh, /etc), by `..`, an absolute path
  or a symlink, and a symlink inside a code folder is packed as a symlink,
  never as the file it points at.
- Garbage answers end in a clear one-line error, not a crash.

The fake daemon is a thread of this process on 127.0.0.1; the real-daemon
case runs a function that prints escape sequences.
"""

import base64
import io
import json
import os
import pty
import select
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOTLESS, py, wait_until

CLI = os.environ.get("HEARTH_CLI") or str(Path(__file__).resolve().parents[2] / "build" / "hearth")
ESC = b"\x1b"
NASTY = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x08\u009b2J\u202e"
C1_CSI = "\u009b".encode()

# The CLI alone: the daemon's user makes no difference to these.
cli_only = pytest.mark.skipif(ROOTLESS, reason="no daemon involved: the root run covers it")


class FakeDaemon(BaseHTTPRequestHandler):
    """Answers each path with what the test put in `answers`; records what came."""

    answers = {}
    seen = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        FakeDaemon.seen.append((self.command, self.path, body))
        status, ctype, payload = FakeDaemon.answers.get(
            self.path.split("?")[0], (404, "application/json", b'{"error": {"code": "not_found", '
                                                              b'"message": "no such route"}}'))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *a):
        pass


@pytest.fixture
def fake(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeDaemon)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    FakeDaemon.answers, FakeDaemon.seen = {}, []
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def env_for(url, home, token):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HOME=str(home), HEARTH_URL=url, HEARTH_TOKEN=token, HEARTH_CONFIG=os.devnull)
    return env


def run(url, home, *args, token="hth_test"):
    return subprocess.run([CLI] + list(args), cwd=home, env=env_for(url, home, token),
                          capture_output=True, timeout=60)


def run_on_tty(url, home, *args, token="hth_test", timeout=20):
    """The CLI with stdout and stderr on a pseudo-terminal; returns (exit, bytes shown)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(str(home))
            os.execve(CLI, [CLI] + list(args), env_for(url, home, token))
        finally:
            os._exit(127)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        try:
            chunk = os.read(fd, 65536) if r else None
        except OSError:
            chunk = b""
        if chunk == b"":
            break
        out += chunk or b""
    os.close(fd)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out


def error_body(message):
    return json.dumps({"error": {"code": "function_error", "type": NASTY,
                                 "message": message}}).encode()


@cli_only
def test_error_messages_from_the_daemon_cannot_drive_the_terminal(fake, tmp_path):
    FakeDaemon.answers["/v1/functions"] = (500, "application/json",
                                           error_body("boom" + NASTY + "\nsecond line"))
    p = run(fake, tmp_path, "ls")
    assert p.returncode != 0
    assert ESC not in p.stderr and b"\x07" not in p.stderr and b"\x08" not in p.stderr
    assert C1_CSI not in p.stderr and "\u202e".encode() not in p.stderr
    assert p.stderr.count(b"\n") == 1 and b"boom" in p.stderr


@cli_only
def test_an_answer_on_a_terminal_is_defanged_but_a_pipe_gets_it_whole(fake, tmp_path):
    FakeDaemon.answers["/v1/functions/f/invoke"] = (200, "text/plain", NASTY.encode())
    code, shown = run_on_tty(fake, tmp_path, "invoke", "f")
    assert code == 0 and ESC not in shown and C1_CSI not in shown and b"red" in shown
    p = run(fake, tmp_path, "invoke", "f")
    assert p.returncode == 0 and p.stdout == NASTY.encode()  # scripts get the bytes


@cli_only
def test_a_log_stream_on_a_terminal_is_defanged(fake, tmp_path):
    lines = ("2026-12-04T00:00:00.000Z stdout " + NASTY + "\n").encode() * 3
    FakeDaemon.answers["/v1/functions/f/logs"] = (200, "text/plain", lines)
    code, shown = run_on_tty(fake, tmp_path, "logs", "f")
    assert code == 0 and ESC not in shown and C1_CSI not in shown and shown.count(b"red") == 3


@cli_only
def test_table_cells_from_the_daemon_are_defanged(fake, tmp_path):
    fns = {"functions": [{"name": "x" + NASTY, "version": 1, "runtime": NASTY,
                          "handler": "h", "memory_mb": 1, "pool": {}, "updated_at": NASTY}]}
    FakeDaemon.answers["/v1/functions"] = (200, "application/json", json.dumps(fns).encode())
    code, shown = run_on_tty(fake, tmp_path, "ls")
    assert code == 0 and ESC not in shown and b"\x07" not in shown


@cli_only
@pytest.mark.parametrize("answer", [b"", b"{", b"[1, 2", b"\x00\xff" * 1000, b'{"functions": 7}',
                                    b'{"functions": [7, null, {"name": 5}]}'])
def test_garbage_answers_end_in_one_line(fake, tmp_path, answer):
    FakeDaemon.answers["/v1/functions"] = (200, "application/json", answer)
    for args in (["ls"], ["--json", "ls"]):
        p = run(fake, tmp_path, *args)
        assert p.returncode in (0, 1), p  # never a crash (a signal is negative)
        assert p.returncode == 0 or p.stderr.count(b"\n") == 1, p.stderr


def stack_file(folder, code):
    (folder / "hearth.yml").write_text(
        "stack: evil\nfunctions:\n  f:\n    code: %s\n    runtime: python3\n"
        "    handler: main.handler\n" % code)
    return folder / "hearth.yml"


@cli_only
@pytest.mark.parametrize("code", ["..", "../secrets", "/etc", "./link-out", "~/.ssh"])
def test_a_stack_file_cannot_pack_what_is_outside_its_folder(fake, tmp_path, code):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "id_rsa").write_text("PRIVATE KEY")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link-out").symlink_to(tmp_path / "secrets")
    f = stack_file(repo, code)
    p = run(fake, tmp_path, "apply", str(f))
    assert p.returncode != 0
    assert b"inside the stack file's folder" in p.stderr or b"cannot pack" in p.stderr, p.stderr
    assert not [s for s in FakeDaemon.seen if b"PRIVATE" in s[2] or "stacks" in s[1]]


@cli_only
def test_a_symlink_in_a_code_folder_is_packed_as_a_symlink(fake, tmp_path):
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("def handler(e, c):\n    return 1\n")
    (src / "passwd").symlink_to("/etc/passwd")
    FakeDaemon.answers["/v1/functions/f"] = (201, "application/json",
                                             b'{"name": "f", "version": 1}')
    p = run(fake, tmp_path, "deploy", str(src), "--name", "f", "--runtime", "python3",
            "--handler", "main.handler")
    assert p.returncode == 0, p.stderr
    (method, path, body), = [s for s in FakeDaemon.seen if s[0] == "PUT"]
    doc = json.loads(body) if body[:1] == b"{" else None
    raw = base64.b64decode(doc["archive"]) if doc else body
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        link = tar.getmember("passwd") if "passwd" in tar.getnames() else tar.getmember("./passwd")
        assert link.issym() and link.linkname == "/etc/passwd"
    assert b"root:" not in raw


def test_a_function_printing_escapes_cannot_drive_hearth_logs(hearth, tmp_path):
    hearth.deploy_ok("cli-escapes", py("""
        def handler(event, context):
            print("line" + %r)
            return "\\x1b[2Jdone"
    """ % NASTY))
    hearth.invoke_ok("cli-escapes")
    url, tok = hearth.url("").rstrip("/"), hearth.token
    assert wait_until(
        lambda: b"line" in run(url, tmp_path, "logs", "cli-escapes", token=tok).stdout, 10)
    code, shown = run_on_tty(url, tmp_path, "logs", "cli-escapes", token=tok)
    assert code == 0 and b"line" in shown and ESC not in shown
    code, shown = run_on_tty(url, tmp_path, "invoke", "cli-escapes", token=tok)
    assert code == 0 and b"done" in shown and ESC not in shown
