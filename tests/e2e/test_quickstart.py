"""docs/quickstart.md works as pasted: every ```bash block runs, in order, in
bash against a test daemon (127.0.0.1:8080 replaced by its port).

Blocks that start the daemon (`make run`, `./build/hearthd`) are skipped: the
test started one. A block that follows logs (`follow=1`) runs in the
background; the test invokes the function and checks the follower shows the
print. `curl` is wrapped with --fail-with-body so an HTTP error fails the block.

The README's quick start runs the same way with `hearth`, the CLI ($HEARTH_CLI),
on the PATH: its `hearth logs hello -f` block runs in the background and must
show an invocation and exit 0 on SIGINT; its `hearth apply` block is skipped
(marked MERGE) while the daemon has no stacks API or examples/stack-app.
"""

import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO

DOC = REPO / "docs" / "quickstart.md"
DOC_ADDR = "127.0.0.1:8080"
STARTS_DAEMON = re.compile(r"(^|\s)(make run|\./build/hearthd --listen)")


def bash_blocks():
    text = DOC.read_text()
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


@pytest.fixture
def shell_env():
    work = Path(tempfile.mkdtemp(prefix="hearth-e2e-quickstart-"))
    shim = work / "bin"
    shim.mkdir()
    curl = shim / "curl"
    real = shutil.which("curl")
    assert real, "curl is needed for the quickstart"
    curl.write_text("#!/bin/sh\nexec %s --fail-with-body \"$@\"\n" % real)
    curl.chmod(curl.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH="%s:%s" % (shim, os.environ.get("PATH", "/usr/bin:/bin")))
    yield work, env
    shutil.rmtree(work, ignore_errors=True)


def test_quickstart_blocks_work_as_pasted(hearth, shell_env):
    work, env = shell_env
    # The quickstart's daemon keeps its data in ./hearth-data; this one's
    # admin token goes where the `export HEARTH_TOKEN=$(cat ...)` block reads
    # it, and into the environment of every block (each runs in its own bash).
    (work / "hearth-data").mkdir(mode=0o700)
    (work / "hearth-data" / "admin-token").write_text(hearth.token + "\n")
    env["HEARTH_TOKEN"] = hearth.token
    blocks = bash_blocks()
    assert len(blocks) >= 8, "quickstart lost its commands?"
    assert any("export HEARTH_TOKEN=$(cat hearth-data/admin-token)" in b for b in blocks)
    addr = "127.0.0.1:%d" % hearth.port
    outputs, follower, ran = [], None, 0
    try:
        for block in blocks:
            if STARTS_DAEMON.search(block):
                continue
            assert "localhost" not in block, "use 127.0.0.1 in the quickstart"
            script = block.replace(DOC_ADDR, addr)
            if "follow=1" in script:
                follower = subprocess.Popen(
                    ["bash", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True)
                _check_follower(hearth, follower)
                continue
            p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                               capture_output=True, timeout=60)
            out = p.stdout.decode(errors="replace")
            assert p.returncode == 0, "block failed (exit %d):\n%s\nstdout:\n%s\nstderr:\n%s" % (
                p.returncode, block, out, p.stderr.decode(errors="replace"))
            outputs.append((block, out))
            ran += 1
    finally:
        if follower is not None and follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
            follower.wait()

    def output_of(pattern):
        hits = [out for block, out in outputs if re.search(pattern, block)]
        assert hits, "no block matching %r" % pattern
        return hits

    assert any('"version"' in out for out in output_of(r'"files"')), outputs
    assert any("Hello, Ada!" in out for out in output_of(r'"Ada"')), outputs
    assert any("GET /some/path" in out and "'x': '1'" in out for out in output_of(r"/fn/hello"))
    assert any("hello from request" in out for out in output_of(r"logs\?tail"))
    assert any('"version"' in out for out in output_of(r"tar czf")), outputs
    assert any("Hello from a package, Grace!" in out for out in output_of(r'"Grace"')), outputs
    assert follower is not None, "the quickstart no longer shows `curl -N ...follow=1`"
    # the last block deleted the function
    assert hearth.show("hello").status_code == 404
    assert ran >= 8


def _check_follower(hearth, follower):
    """The follow block shows the print of an invocation made elsewhere."""
    assert follower.poll() is None, "the follow command exited: %s" % follower.stdout.read()
    r = hearth.invoke_ok("hello", json={"name": "follower"})
    rid = r.headers["X-Request-Id"]
    os.set_blocking(follower.stdout.fileno(), False)
    seen, deadline = b"", time.monotonic() + 5
    while ("hello from request " + rid).encode() not in seen:
        assert time.monotonic() < deadline, "curl -N follow did not show the line:\n%s" % seen
        chunk = follower.stdout.read()
        if chunk:
            seen += chunk
        else:
            time.sleep(0.05)


# ---------------------------------------------------------------------------
# The README's quick start, with `hearth` (the CLI) as a new user runs it
# from the repository: the CLI finds the daemon's admin token in
# ./hearth-data by itself (no HEARTH_TOKEN), examples/ is the repository's.

README = REPO / "README.md"
CLI = os.environ.get("HEARTH_CLI") or str(REPO / "build" / "hearth")


def _stacks_missing(hearth):
    """MERGE: the stacks helper's API and examples/stack-app (issue 14);
    until both are here the README's `hearth apply` block is skipped."""
    if not (REPO / "examples" / "stack-app" / "hearth.yml").is_file():
        return True
    r = hearth.request("POST", "/v1/stacks/readme-probe?dry_run=true", json={"functions": {}})
    return r.status_code == 404 and r.json().get("error", {}).get("code") == "not_found"


def test_readme_quick_start_with_the_cli(hearth, shell_env):
    work, env = shell_env
    assert os.access(CLI, os.X_OK), "hearth (the CLI) not found at %s (set HEARTH_CLI)" % CLI
    (work / "bin" / "hearth").symlink_to(CLI)
    (work / "examples").symlink_to(REPO / "examples")
    (work / "hearth-data").mkdir(mode=0o700)
    (work / "hearth-data" / "admin-token").write_text(hearth.token + "\n")
    env = {k: v for k, v in env.items() if k not in ("HEARTH_TOKEN", "HEARTH_DATA_DIR")}
    env.update(HEARTH_URL=hearth.url(""), HEARTH_CONFIG=str(work / "no-hearthd.conf"),
               HOME=str(work))
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), re.S | re.M)
    outputs, followed, applied = [], False, False
    for block in blocks:
        if STARTS_DAEMON.search(block):
            continue
        script = block.replace(DOC_ADDR, "127.0.0.1:%d" % hearth.port)
        if re.search(r"hearth logs \S+ -f", script):
            _check_cli_follower(hearth, script, work, env)
            followed = True
            continue
        if "hearth apply" in script and _stacks_missing(hearth):
            continue  # MERGE: remove this skip with the stacks helper's work
        p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                           capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0, "README block failed (exit %d):\n%s\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, block, out, p.stderr.decode(errors="replace"))
        outputs.append((block, out))
        applied = applied or "hearth apply" in script
    deployed = [out for block, out in outputs if "hearth deploy hello" in block]
    assert deployed and re.search(r"hello: version \d+", deployed[0]), outputs
    # on a pipe the answer comes byte for byte (no newline added after it)
    assert re.search(r'\{"hello":\s*\{"name":\s*"you"\}\}', deployed[0]), deployed[0]
    assert "hi {'name': 'you'}" in deployed[0], "hearth logs did not show the print"
    assert followed, "the README no longer shows `hearth logs hello -f`"
    if applied:
        assert any("stack-app-web" in out for block, out in outputs if "hearth ls" in block)


def _check_cli_follower(hearth, script, work, env):
    """`hearth logs hello -f` shows an invocation made elsewhere, and Ctrl-C
    (SIGINT) ends it with exit status 0."""
    follower = subprocess.Popen(["bash", "-c", script], cwd=work, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        time.sleep(0.3)
        assert follower.poll() is None, "hearth logs -f exited: %s" % follower.stdout.read()
        rid = hearth.invoke_ok("hello", json={"name": "follower"}).headers["X-Request-Id"]
        os.set_blocking(follower.stdout.fileno(), False)
        seen, deadline = b"", time.monotonic() + 5
        while rid.encode() not in seen:
            assert time.monotonic() < deadline, "hearth logs -f did not show the line:\n%s" % seen
            chunk = follower.stdout.read()
            if chunk:
                seen += chunk
            else:
                time.sleep(0.05)
        os.killpg(follower.pid, signal.SIGINT)
        assert follower.wait(5) == 0, "hearth logs -f did not exit 0 on Ctrl-C"
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
            follower.wait()
