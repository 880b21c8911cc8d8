"""Running `hearth`, the CLI, against a test daemon: through pipes (run) or
under a real pseudo-terminal (PtyRun), as a person at a terminal would.

The binary is $HEARTH_CLI, else <repo>/build/hearth. Every run gets
HEARTH_URL/HEARTH_TOKEN for the daemon, a HOME of its own (no user config)
and a working directory of its own (no ./hearth-data to find).
"""

import errno
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import REPO

CLI = os.environ.get("HEARTH_CLI") or str(REPO / "build" / "hearth")


def cli_env(hearth, workdir, token=Ellipsis):
    if not os.access(CLI, os.X_OK):
        pytest.fail("hearth (the CLI) not found at %s (set HEARTH_CLI)" % CLI)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HOME=str(workdir), HEARTH_URL=hearth.url(""),
               HEARTH_CONFIG=str(workdir / "no-hearthd.conf"))
    token = hearth.token if token is Ellipsis else token
    if token:
        env["HEARTH_TOKEN"] = token
    return env


def run(hearth, workdir, *args, token=Ellipsis, input=None, timeout=120):
    """Runs the CLI with pipes; returns the CompletedProcess (text)."""
    return subprocess.run([CLI] + [str(a) for a in args], cwd=workdir,
                          env=cli_env(hearth, workdir, token), input=input,
                          capture_output=True, text=True, timeout=timeout)


def ok(hearth, workdir, *args, **kw):
    p = run(hearth, workdir, *args, **kw)
    assert p.returncode == 0, "hearth %s: exit %d\nstdout: %s\nstderr: %s" % (
        " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
    return p


class PtyRun:
    """The CLI with stdin, stdout and stderr on a new pseudo-terminal that is
    its controlling terminal (pty.fork), so that ^C typed on it is SIGINT."""

    def __init__(self, hearth, workdir, *args):
        env = cli_env(hearth, workdir)
        argv = [CLI] + [str(a) for a in args]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once, nothing else
            try:
                os.chdir(str(workdir))
                os.execve(CLI, argv, env)
            finally:
                os._exit(127)
        self.out = b""
        self.status = None

    def read_until(self, needle, timeout):
        """Reads the terminal until `needle` (bytes) shows; returns whether it did."""
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                return needle in self.out
        return True

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as e:  # EIO: the child closed its side
            if e.errno == errno.EIO:
                return False
            raise
        if not chunk:
            return False
        self.out += chunk
        return True

    def type(self, data):
        os.write(self.fd, data)

    def wait(self, timeout):
        """Reads to the end and returns the exit status (killed after `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                self.close()
                raise AssertionError("hearth did not exit within %s s; its terminal:\n%s" % (
                    timeout, self.out.decode(errors="replace")))
            self._read(0.05)
        while self._read(0.05) and time.monotonic() < deadline:
            pass
        self.close()
        return self.status

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
