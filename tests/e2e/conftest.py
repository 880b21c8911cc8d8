"""End-to-end harness: starts real hearthd processes and drives them over HTTP.

Owns: the `Hearth` helper (one daemon on a free 127.0.0.1 port with its own
temporary data dir and captured stderr), the fixtures built on it, the
process bookkeeping that proves no worker outlives its daemon, and the
probes tests of an unmerged feature skip by (daemon_knows, prebuilt_metrics).
Must never: talk to anything but 127.0.0.1 (and, for the egress tests, the
host's own addresses and netlab.py's namespaces), signal a process it did not start
(directly or through the daemon it started), or leave a temp dir behind.

The binary is $HEARTHD, else <repo>/build/hearthd.
Set HEARTH_E2E_KEEP=1 to keep the temp dirs (data dir, daemon stderr) for
inspection, HEARTH_E2E_LOG_LEVEL to change the daemon's --log-level,
HEARTH_E2E_ARGS to give every daemon more options (e.g. "--prebuilt-min 8",
so that nearly every worker is a claimed pre-built sandbox), and
HEARTH_E2E_ROOTLESS=<user> to start every daemon as that unprivileged user
(rootless mode; needs root and setpriv to switch).
"""

import base64
import io
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
HEARTHD = os.environ.get("HEARTHD") or str(REPO / "build" / "hearthd")
LOG_LEVEL = os.environ.get("HEARTH_E2E_LOG_LEVEL", "debug")
EXTRA_ARGS = os.environ.get("HEARTH_E2E_ARGS", "").split()
KEEP = os.environ.get("HEARTH_E2E_KEEP") == "1"
START_TIMEOUT = 10.0
# Put in the daemon's environment: a worker must never see it (the sandbox
# gives workers exactly the environment of their spec).
LEAK_NAME, LEAK_VALUE = "HEARTH_E2E_LEAK", "daemon-env-must-not-leak"

SETPRIV = shutil.which("setpriv")  # util-linux; optional
ROOTLESS_USER = os.environ.get("HEARTH_E2E_ROOTLESS") or None
ROOTLESS = ROOTLESS_USER is not None


def rootful_only(why):
    """Marks a test whose protection needs hearthd to run as root (`why`
    names it); rootless runs skip it with that reason."""
    return pytest.mark.skipif(ROOTLESS, reason="rootless: " + why)


def _as_user(cmd, base, user):
    """Hands `base` to `user` and prefixes `cmd` to run as that user."""
    if not SETPRIV or os.geteuid() != 0:
        pytest.fail("a rootless daemon needs root and setpriv (util-linux) to start")
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(base):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, pw.pw_uid, pw.pw_gid)
    return [SETPRIV, "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
            "--clear-groups"] + cmd

_LIVE = []  # Hearth instances not yet closed, for failure reports


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    # `timeout`/ctest send SIGTERM: turn it into an interrupt so pytest still
    # tears the fixtures down (daemons stopped, temp dirs removed).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


# ---------------------------------------------------------------------------
# small helpers shared by the test modules


def py(src):
    """Dedents a Python source snippet so tests can indent it naturally."""
    return textwrap.dedent(src).lstrip("\n")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_error(r, status, code):
    """Asserts the documented error shape {"error": {"code", "message"}}."""
    assert r.status_code == status, "expected %d %s, got %d: %s" % (
        status, code, r.status_code, r.text[:800])
    try:
        body = r.json()
    except ValueError:
        raise AssertionError("error body is not JSON: %r" % r.text[:800])
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert body["error"].get("code") == code, body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    assert r.headers.get("X-Request-Id"), "error answer without X-Request-Id"
    return body["error"]


def targz(entries):
    """Builds a .tar.gz in memory. entries: name -> bytes/str, or a tarfile.TarInfo
    (used as is, for hostile entries), or (TarInfo, bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, value in entries.items():
            if isinstance(value, tarfile.TarInfo):
                tar.addfile(value)
                continue
            if isinstance(value, tuple):
                info, data = value
            else:
                data = value.encode() if isinstance(value, str) else value
                info = tarfile.TarInfo(name)
                info.mode = 0o644
                info.mtime = int(time.time())
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipbytes(entries):
    """Builds a .zip in memory. entries: name -> bytes/str, or name -> (ZipInfo, bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in entries.items():
            if isinstance(value, tuple):
                z.writestr(value[0], value[1])
            else:
                z.writestr(name, value)
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------
# /proc bookkeeping (no psutil: Debian's python3 stdlib only)


def _stat(pid):
    """Returns (ppid, starttime, state) of `pid`, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[19]), rest[0]


def _pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    """The live descendants of `root` as a set of (pid, starttime)."""
    children = {}
    for pid in _pids():
        st = _stat(pid)
        if st:
            children.setdefault(st[0], []).append((pid, st[1]))
    out, todo = set(), [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if (pid, start) not in out:
                out.add((pid, start))
                todo.append(pid)
    return out


def alive(pid, start):
    st = _stat(pid)
    return st is not None and st[1] == start and st[2] != "Z"


def procs_with_cwd_under(path):
    """(pid, starttime) of processes whose cwd is at or below `path`."""
    path = os.path.realpath(str(path))
    found = set()
    for pid in _pids():
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            continue
        if cwd == path or cwd.startswith(path + "/"):
            st = _stat(pid)
            if st and st[2] != "Z":
                found.add((pid, st[1]))
    return found


def procs_with_env(marker):
    """Host pids of live processes whose environment contains `marker`
    (works whatever pid namespace the worker sees itself in)."""
    needle = marker.encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        st = _stat(pid)
        if needle in env and st and st[2] != "Z":
            found.append(pid)
    return found


def remove_cgroups_of(pid):
    """A daemon killed with -9 cannot remove its cgroup folders (the next
    daemon sweeps them at start); the suite leaves none behind either."""
    for base in glob.glob("/sys/fs/cgroup/*/**/hearth-%d" % pid, recursive=True):
        for leaf in sorted(glob.glob(base + "/*/"), reverse=True):
            try:
                os.rmdir(leaf)
            except OSError:
                pass
        try:
            os.rmdir(base)
        except OSError:
            pass


def wait_until(pred, timeout, interval=0.05):
    """Polls `pred` until it is truthy or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------------------
# features still being built: tests of them skip until the daemon has them

_HELP = None


def daemon_knows(option):
    """Whether $HEARTHD --help lists `option` (e.g. "--prebuilt-min"), so a
    test of a feature not merged yet skips instead of failing to start."""
    global _HELP
    if _HELP is None:
        if not os.access(HEARTHD, os.X_OK):
            pytest.fail("hearthd binary not found at %s (set HEARTHD)" % HEARTHD)
        p = subprocess.run([HEARTHD, "--help"], capture_output=True, timeout=10)
        _HELP = (p.stdout + p.stderr).decode(errors="replace")
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), _HELP) is not None


def pool_args(*args):
    """`args` (--prebuilt-* options) when the daemon has a pre-built pool,
    else none: for tests that must hold with the pool and without it."""
    return tuple(args) if daemon_knows("--prebuilt-min") else ()


_PREBUILT_LINE = re.compile(r'^hearth_prebuilt_([a-z_]+)\{([^}]*)\} (\S+)$', re.M)


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


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def prebuilt_runtimes(root):
    """Host pids of the unclaimed pre-built runtimes below pid `root` (a
    daemon): HEARTH_PREBUILT=1 and no HEARTH_HANDLER= in /proc/<pid>/environ.
    A sandbox init in front of a runtime may carry the same environment: the
    runtime is the one whose parent matches too."""
    def unclaimed(pid):
        env = _environ(pid)
        return env is not None and b"HEARTH_PREBUILT=1" in env and \
            not any(e.startswith(b"HEARTH_HANDLER=") for e in env)
    pids = {pid for pid, _start in descendants(root) if unclaimed(pid)}
    inner = {pid for pid in pids if (_stat(pid) or (None,))[0] in pids}
    return inner or pids


def spawner_pid(hearth):
    """The pid of the daemon's "hearth-spawner" child, or None."""
    for pid in _pids():
        st = _stat(pid)
        if st and st[0] == hearth.pid and st[2] != "Z":
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == "hearth-spawner":
                        return pid
            except OSError:
                pass
    return None


# ---------------------------------------------------------------------------
# the daemon


class Hearth:
    """One hearthd process on 127.0.0.1:<free port> with data in <base>/data."""

    def __init__(self, base, args=(), env=None, user=None):
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
        if not os.access(HEARTHD, os.X_OK):
            pytest.fail("hearthd binary not found at %s (set HEARTHD)" % HEARTHD)
        self.port = free_port()
        cmd = [HEARTHD, "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
               str(self.data_dir), "--log-level", LOG_LEVEL] + EXTRA_ARGS + self.args
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
                pytest.fail("hearthd exited with %d while starting:\n%s" % (rc, self.stderr_tail()))
            try:
                if requests.get(self.url("/healthz"), timeout=1).status_code == 200:
                    self.token = self.read_admin_token()
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self._kill_everything()
                pytest.fail("hearthd did not answer /healthz within %.0f s:\n%s" % (
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


@pytest.fixture(scope="module")
def hearth(request):
    """A daemon shared by every test of a module (tests use distinct function
    names), started with the module's HEARTH_ARGS (a tuple) if it has one."""
    h = Hearth(_new_base(), getattr(request.module, "HEARTH_ARGS", ()))
    h.start()
    yield h
    h.close()


@pytest.fixture
def hearth_factory():
    """make(*args, start=True, env=None, user=None) -> a started daemon with extra
    command-line args (and environment; run as `user` for rootless mode); all
    closed after the test."""
    made = []

    def make(*args, start=True, env=None, user=None):
        h = Hearth(_new_base(), args, env, user)
        made.append(h)
        if start:
            h.start()
        return h

    yield make
    errors = []
    for h in made:
        try:
            h.close()
        except BaseException as exc:  # close every daemon, then report
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def fresh_hearth(hearth_factory):
    """A daemon of its own for this test (restart tests, special flags)."""
    return hearth_factory()


class Background:
    """Runs a callable in a thread; .result(timeout) returns its value or re-raises."""

    def __init__(self, fn, *args, **kwargs):
        self._value = self._exc = None
        self._done = threading.Event()

        def run():
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as exc:
                self._exc = exc
            finally:
                self._done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def done(self):
        return self._done.is_set()

    def result(self, timeout=60):
        if not self._done.wait(timeout):
            raise AssertionError("background call did not finish within %s s" % timeout)
        if self._exc is not None:
            raise self._exc
        return self._value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for h in list(_LIVE):
            rep.sections.append(("hearthd stderr, %s (tail)" % h.base.name, h.stderr_tail()))
