"""Out of file descriptors: hearthd with a low RLIMIT_NOFILE (prlimit on
the running daemon) and many idle connections. It must not spin on
EMFILE, calls that cannot get an fd are refused or wait, never hang the
daemon, and all works again when the connections go."""

import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import assert_error, harness_config, py, wait_until

HELLO = py("""
    def handler(event, context):
        return {"ok": True}
""")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# Workers get RLIMIT_NOFILE 1024 (main.c's policy): a lower hard limit would
# need CAP_SYS_RESOURCE to give them, which containers often lack.
LIMIT = 1024


@pytest.fixture
def low_fd_hearth(hearth_factory, tmp_path, monkeypatch):
    """A daemon started under prlimit --nofile=LIMIT (soft and hard: hearthd
    raises its soft limit to the hard one at start)."""
    wrapper = tmp_path / "hearthd-lowfd"
    wrapper.write_text('#!/bin/sh\nexec prlimit --nofile=%d:%d -- "%s" "$@"\n' % (
        LIMIT, LIMIT, harness_config.HEARTHD))
    wrapper.chmod(0o755)
    monkeypatch.setattr(harness_config, "HEARTHD", str(wrapper))  # Hearth.start reads it
    return hearth_factory()


def test_fd_exhaustion(low_fd_hearth):
    h = low_fd_hearth
    h.deploy_ok("fd-warm", HELLO)
    h.deploy_ok("fd-cold", HELLO)
    h.invoke_ok("fd-warm", json={})
    limit = LIMIT
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < LIMIT + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, LIMIT + 400), hard))
    session = requests.Session()
    r = session.post(h.url("/v1/functions/fd-warm/invoke"), json={}, timeout=30,
                     headers=h.auth_header())
    assert r.status_code == 200, r.text
    socks = []
    try:
        for _ in range(limit + 40):
            s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            socks.append(s)
        time.sleep(1.0)
        assert nfds(h.pid) >= limit - 2, (nfds(h.pid), limit)
        # No busy loop on EMFILE: the listening socket stays readable.
        c0, t0 = cpu_seconds(h.pid), time.monotonic()
        time.sleep(3.0)
        used = (cpu_seconds(h.pid) - c0) / (time.monotonic() - t0)
        print("cpu while out of fds: %.1f%%" % (used * 100))
        assert used < 0.5, "hearthd used %.0f%% CPU while out of fds" % (used * 100)
        # A cold start over the connection opened before: the sandbox's fds
        # cannot be received. The call gets 503 overloaded, never a dead
        # daemon (the dropped fds once read as a broken spawner: exit 1).
        r = session.post(h.url("/v1/functions/fd-cold/invoke"), json={}, timeout=30,
                         headers=h.auth_header())
        if r.status_code != 200:
            assert_error(r, 503, "overloaded")
        # A new connection waits in the backlog or is refused: never a crash.
        try:
            r = h.invoke("fd-warm", json={}, timeout=3)
            assert r.status_code in (200, 503), r.text
        except requests.RequestException:
            pass
        assert h.proc.poll() is None, "hearthd died out of fds:\n" + h.stderr_tail()
        assert "the spawner is gone" not in h.stderr_text(), h.stderr_tail()
    finally:
        for s in socks:
            s.close()
        session.close()
    # Load gone: it serves again, warm and cold.
    assert wait_until(h.healthy, 30), h.stderr_tail()
    h.invoke_ok("fd-warm", json={})
    h.invoke_ok("fd-cold", json={})
