"""hearth_harness.util — small helpers with no daemon: code snippets, ports,
the error-shape assert, archives in memory, polling, a background call.

Owns: py, free_port, assert_error, targz, zipbytes, b64, wait_until,
dir_bytes, Background.
Must never: touch anything but its arguments (and a loopback port).
"""

import base64
import io
import os
import socket
import tarfile
import textwrap
import threading
import time
import zipfile


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


def wait_until(pred, timeout, interval=0.05):
    """Polls `pred` until it is truthy or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


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

