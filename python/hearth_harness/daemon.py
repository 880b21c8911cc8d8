"""hearth_harness.daemon — one real hearthd on a loopback port, driven over HTTP.

Owns: the `Hearth` helper (one daemon on a free 127.0.0.1 port with its own
temporary data dir and captured stderr, root or rootless), its admin token,
deploy/invoke/log helpers, the proof at stop that no worker outlives its
daemon, and the probes for features not merged yet (daemon_knows,
pool_args, prebuilt_metrics).
Must never: talk to anything but 127.0.0.1, signal a process it did not
start (directly or through the daemon it started), or leave a temp dir
behind (HEARTH_E2E_KEEP=1 keeps them on purpose).
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from . import config
from .config import (EXTRA_ARGS, KEEP, LEAK_NAME, LEAK_VALUE, LOG_LEVEL, ROOTLESS_USER,
                     SETPRIV, START_TIMEOUT, fail)
from .proc import alive, descendants, procs_with_cwd_under, remove_cgroups_of
from .util import free_port, py, wait_until


def _as_user(cmd, base, user):
    """Hands `base` to `user` and prefixes `cmd` to run as that user."""
    if not SETPRIV or os.geteuid() != 0:
        fail("a rootless daemon needs root and setpriv (util-linux) to start")
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(base):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, pw.pw_uid, pw.pw_gid)
    return [SETPRIV, "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
            "--clear-groups"] + cmd

_LIVE = []  # Hearth instances not yet closed, for failure reports

_HELP = None


def daemon_knows(option):
    """Whether $HEARTHD --help lists `option` (e.g. "--prebuilt-min"), so a
    test of a feature not merged yet skips instead of failing to start."""
    global _HELP
    if _HELP is None:
        if not os.access(config.HEARTHD, os.X_OK):
            fail("hearthd binary not found at %s (set HEARTHD)" % config.HEARTHD)
        p = subprocess.run([config.HEARTHD, "--help"], capture_output=True, timeout=10)
        _HELP = (p.stdout + p.stderr).decode(errors="replace")
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), _HELP) is not None


def pool_args(*args):
    """`args` (--prebuilt-* options) when the daemon has a pre-built pool,
    else none: for tests that must hold with the pool and without it."""
    return tuple(args) if daemon_knows("--prebuilt-min") else ()


_PREBUILT_LINE = re.compile(r'^hearth_prebuilt_([a-z_]+)\{([^}]*)\} (\S+)$', re.M)


def workers_held(pool):
    """Workers a function's pool (its `pool` object) holds, whatever their state."""
    return pool["starting"] + pool["idle"] + pool["busy"]


def prebuilt_metrics(hearth, runtime="python3", network="isolated"):
    """The pre-built pool of `runtime` (and `network`) from GET /metrics, without the
    hearth_prebuilt_ prefix: {"ready": 1.0, "claims_total": 0.0, ...}; None
    when the daemon has no pool (no hearth_prebuilt_ready line at all)."""
    r = hearth.get("/metrics", timeout=10)
    assert r.status_code == 200, r.text[:800]
    if not re.search(r"^hearth_prebuilt_ready\b", r.text, re.M):
        return None
    out = {}
    for name, labels, value in _PREBUILT_LINE.findall(r.text):
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if lab.get("runtime") == runtime and lab.get("network", "isolated") == network:
            out[name] = float(value)
    return out


class Hearth:
    """One hearthd process on 127.0.0.1:<free port> with data in <base>/data."""

    def __init__(self, base, args=(), env=None, user=None, hearthd=None, log_level=None,
                 extra_args=None):
        # hearthd, log_level, extra_args: None takes config's (the environment's).
        self.hearthd = hearthd
        self.log_level = log_level
        self.extra_args = extra_args
        self.base = Path(base)
        self.user = user or ROOTLESS_USER  # run unprivileged (rootless) as this user
        self.extra_env = dict(env or {})
        self.data_dir = self.base / "data"
        self.stderr_path = self.base / "hearthd.stderr"
        self.args = [str(a) for a in args]
        self.proc = None
        self.port = None
        self.token = None  # <data-dir>/admin-token, read at each start
        self._log = None
        self._procs = set()

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        assert self.proc is None, "already running"
        hearthd = self.hearthd or config.HEARTHD
        if not os.access(hearthd, os.X_OK):
            fail("hearthd binary not found at %s (set HEARTHD)" % hearthd)
        self.port = free_port()
        extra = EXTRA_ARGS if self.extra_args is None else list(self.extra_args)
        cmd = [hearthd, "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
               str(self.data_dir), "--log-level", self.log_level or LOG_LEVEL] + extra + self.args
        self._log = open(self.stderr_path, "ab")
        self._log.write(("\n=== %s\n" % " ".join(cmd)).encode())
        self._log.flush()
        env = dict(os.environ)
        env[LEAK_NAME] = LEAK_VALUE
        env.update(self.extra_env)
        if self.user:
            cmd = _as_user(cmd, self.base, self.user)
        if SETPRIV:
            # If pytest dies (killed by a timeout), the daemon gets SIGTERM and
            # stops its workers instead of running on. setpriv execs: same pid.
            cmd = [SETPRIV, "--pdeathsig", "TERM"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=env, start_new_session=True)
        if self not in _LIVE:
            _LIVE.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                fail("hearthd exited with %d while starting:\n%s" % (rc, self.stderr_tail()))
            try:
                if requests.get(self.url("/healthz"), timeout=1).status_code == 200:
                    self.token = self.read_admin_token()
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self._kill_everything()
                fail("hearthd did not answer /healthz within %.0f s:\n%s" % (
                    START_TIMEOUT, self.stderr_tail()))
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=30):
        """SIGTERM, wait; asserts exit status 0 and that no worker is left."""
        self.terminate()
        return self.wait_exit(timeout)

    def terminate(self):
        """Sends SIGTERM and returns at once (see wait_exit)."""
        assert self.proc is not None, "not running"
        self._procs = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout=30):
        """Waits for the exit after terminate(); asserts status 0 and no worker left."""
        procs = self._procs | descendants(self.proc.pid)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_everything()
            raise AssertionError("hearthd did not exit within %d s of SIGTERM:\n%s" % (
                timeout, self.stderr_tail()))
        self.proc = None
        self._log.close()
        left = self._leftovers(procs)
        assert rc == 0, "hearthd exited with %d after SIGTERM:\n%s" % (rc, self.stderr_tail())
        assert not left, "processes left after hearthd exited: %s\n%s" % (
            self._describe(left), self.stderr_tail())
        return rc

    def kill9(self):
        """SIGKILL, as a crash would; workers are cleaned up (not asserted)."""
        assert self.proc is not None, "not running"
        procs = descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        pid = self.proc.pid
        self.proc = None
        self._log.close()
        # Workers see EOF on fd 3 and exit by themselves; give them a moment,
        # then make sure nothing we caused stays behind.
        self._leftovers(procs, wait=3.0)
        remove_cgroups_of(pid)

    def wait_died(self, procs, timeout):
        """For a daemon that must exit by itself (a fatal error): waits up to
        `timeout` s and returns (exit status or None if still running, the
        processes of `procs` -- a descendants() snapshot taken before -- still
        alive 3 s after, which are then killed). A daemon still running is
        killed; either way it counts as stopped."""
        assert self.proc is not None, "not running"
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
            procs = procs | descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait()
        pid = self.proc.pid
        self.proc = None
        self._log.close()
        left = self._leftovers(procs, wait=3.0)
        remove_cgroups_of(pid)
        return rc, left

    def restart(self, *extra):
        self.stop()
        if extra:
            self.args = [str(a) for a in extra]
        return self.start()

    def close(self):
        """Stops (asserting a clean exit) and removes the temp dir."""
        try:
            if self.proc is not None:
                self.stop()
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
            if not KEEP:
                shutil.rmtree(self.base, ignore_errors=True)

    def _kill_everything(self):
        if self.proc is None:
            return
        procs = descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._log.close()
        self._leftovers(procs, wait=0)

    def _leftovers(self, procs, wait=2.0):
        """Waits for `procs` (and anything running in the data dir) to end;
        SIGKILLs and returns those that did not."""
        def left():
            mine = {p for p in procs if alive(*p)}
            return mine | procs_with_cwd_under(self.data_dir)
        wait_until(lambda: not left(), wait)
        remaining = left()
        for pid, start in remaining:
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return remaining

    @staticmethod
    def _describe(procs):
        out = []
        for pid, _start in sorted(procs):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
            except OSError:
                cmd = "?"
            out.append("%d: %s" % (pid, cmd))
        return "; ".join(out)

    def stderr_tail(self, lines=60):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no stderr captured)"
        return "\n".join(text.splitlines()[-lines:])

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    # -- HTTP ------------------------------------------------------------------

    def read_admin_token(self):
        """The token hearthd wrote at its first start, or None (--no-auth)."""
        try:
            return (self.data_dir / "admin-token").read_text().strip()
        except FileNotFoundError:
            return None

    def auth_header(self, token=None):
        """{"Authorization": "Bearer <admin token>"} (or `token`'s), {} without one.
        Every request made through this class's methods carries it; a test
        that opens its own socket or calls requests directly adds it."""
        token = token or self.token
        return {"Authorization": "Bearer %s" % token} if token else {}

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, token=Ellipsis, **kw):
        """An HTTP request with the admin token; token=None sends none,
        token="hth_..." sends that one instead (a header passed in wins)."""
        kw.setdefault("timeout", 30)
        headers = {} if token is None else self.auth_header(None if token is Ellipsis else token)
        headers.update(kw.pop("headers", None) or {})
        return requests.request(method, self.url(path), headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def deploy(self, name, files=None, handler="main.handler", runtime="python3", **settings):
        """PUT /v1/functions/{name} with a JSON body; returns the response."""
        body = {"runtime": runtime, "handler": handler}
        if files is not None:
            body["files"] = files
        body.update(settings)
        timeout = 120 if "archive" in settings else 30
        return self.request("PUT", "/v1/functions/%s" % name, json=body, timeout=timeout)

    def deploy_ok(self, name, code=None, files=None, **kw):
        """Deploys `code` as main.py (or `files`), asserts 200/201, returns the function."""
        if files is None:
            files = {"main.py": py(code)}
        r = self.deploy(name, files=files, **kw)
        assert r.status_code in (200, 201), "deploy %s: %d %s" % (name, r.status_code, r.text[:800])
        return r.json()

    def deploy_raw(self, name, data, content_type, **query):
        return self.request("PUT", "/v1/functions/%s" % name, params=query, data=data,
                            headers={"Content-Type": content_type}, timeout=120)

    def invoke(self, name, body=None, json=None, headers=None, timeout=30, **kw):
        """POST /v1/functions/{name}/invoke; `json` sends application/json."""
        if json is not None:
            kw["json"] = json
        elif body is not None:
            kw["data"] = body
        return self.request("POST", "/v1/functions/%s/invoke" % name, headers=headers,
                            timeout=timeout, **kw)

    def invoke_ok(self, name, *a, **kw):
        r = self.invoke(name, *a, **kw)
        assert r.status_code == 200, "invoke %s: %d %s" % (name, r.status_code, r.text[:800])
        return r

    def show(self, name):
        return self.get("/v1/functions/%s" % name)

    def pool(self, name):
        """The function's worker pool as GET /v1/functions/NAME shows it."""
        r = self.show(name)
        assert r.status_code == 200, r.text[:800]
        return r.json()["pool"]

    def live_workers(self, name):
        """The function's workers starting, idle or busy."""
        return workers_held(self.pool(name))

    def delete(self, name):
        return self.request("DELETE", "/v1/functions/%s" % name)

    def list_functions(self):
        r = self.get("/v1/functions")
        assert r.status_code == 200, r.text
        return r.json()["functions"]

    def logs(self, name, timeout=30, **params):
        return self.get("/v1/functions/%s/logs" % name, params=params, timeout=timeout)

    def log_records(self, name, **params):
        """The function's log lines as parsed NDJSON records."""
        import json as _json
        params.setdefault("tail", 10000)
        r = self.logs(name, format="ndjson", **params)
        assert r.status_code == 200, r.text[:800]
        return [_json.loads(line) for line in r.text.splitlines() if line.strip()]

    def healthy(self):
        try:
            return requests.get(self.url("/healthz"), timeout=5).status_code == 200
        except requests.RequestException:
            return False


def _new_base():
    return Path(tempfile.mkdtemp(prefix="hearth-e2e-"))

