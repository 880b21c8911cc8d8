"""Hostile-function suite harness: the e2e daemon helpers, plus what every
attack test shares.

Owns: offering the shared harness (python/hearth_harness/, its pytest face
hearth_harness.fixtures, also as `e2e_conftest`) to the security modules:
its `hearth` and `hearth_factory` fixtures, hooks and helpers; the `neighbour`
fixture (one innocent function per module that must keep answering); the
`attack` helper that deploys a hostile function and runs it; `survived`,
which every test ends with; and HOSTILE, the small library of raw-syscall
helpers shipped to each attacker as hostile.py.
Must never: talk to anything but 127.0.0.1, make a function send traffic to
any address but 127.0.0.1, the unroutable 10.255.255.1, the host's own and
the test namespaces of tests/e2e/netlab.py (10.214.0.0/16), or leave a
daemon or temp dir behind (the e2e Hearth class cleans up).

Run: HEARTHD=build/hearthd /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/security
"""

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

# The shared harness's pytest face, under its old name here: test modules
# use `e2e_conftest.X` for any harness name (it used to be tests/e2e's
# conftest loaded by path; both conftests now import the package).
import hearth_harness.fixtures as e2e_conftest  # noqa: E402

sys.modules.setdefault("e2e_conftest", e2e_conftest)

# Fixtures and hooks are found by name in this module, so binding them here
# is what registers them for tests/security.
hearth = e2e_conftest.hearth
hearth_factory = e2e_conftest.hearth_factory
pytest_configure = e2e_conftest.pytest_configure
pytest_runtest_makereport = e2e_conftest.pytest_runtest_makereport

Hearth = e2e_conftest.Hearth
Background = e2e_conftest.Background
py = e2e_conftest.py
assert_error = e2e_conftest.assert_error
procs_with_env = e2e_conftest.procs_with_env
wait_until = e2e_conftest.wait_until
LEAK_NAME = e2e_conftest.LEAK_NAME
LEAK_VALUE = e2e_conftest.LEAK_VALUE
ROOTLESS = e2e_conftest.ROOTLESS
rootful_only = e2e_conftest.rootful_only
pool_args = e2e_conftest.pool_args
prebuilt_runtimes = e2e_conftest.prebuilt_runtimes
descendants = e2e_conftest.descendants

# Shipped next to every attacker's main.py. x86_64 numbers; errno values
# come back as names so the tests read like the checklist.
HOSTILE = py(r'''
    import ctypes, errno, os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def sys_call(nr, *args):
        """Raw syscall; returns (result, errno name or None)."""
        ctypes.set_errno(0)
        argv = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]
        r = libc.syscall(ctypes.c_long(nr), *argv)
        if r == -1:
            return r, errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
        return r, None

    def err(fn, *a, **kw):
        """Runs fn; returns ("ok", value) or the errno name of the OSError."""
        try:
            return ["ok", fn(*a, **kw)]
        except OSError as e:
            return [errno.errorcode.get(e.errno, str(e.errno)), str(e)]

    def read(path, n=4096):
        with open(path, "rb") as f:
            return f.read(n).decode("latin-1")

    def status():
        """The lines of /proc/self/status that say what this process holds."""
        keep = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
                "CapAmb", "NoNewPrivs", "Seccomp")
        out = {}
        for line in read("/proc/self/status", 1 << 16).splitlines():
            k, _, v = line.partition(":")
            if k in keep:
                out[k] = v.strip()
        return out
''')


def attack(hearth, name, code, event=None, **settings):
    """Deploys `code` (main.py, with hostile.py beside it) as function `name`
    and invokes it once with `event` as JSON; returns the response."""
    hearth.deploy_ok(name, files={"main.py": py(code), "hostile.py": HOSTILE}, **settings)
    return hearth.invoke(name, json=event if event is not None else {})


def attack_ok(hearth, name, code, event=None, **settings):
    """attack() for attacks the function survives: asserts 200, returns the JSON."""
    r = attack(hearth, name, code, event, **settings)
    assert r.status_code == 200, "%s: %d %s" % (name, r.status_code, r.text[:2000])
    return r.json()


NEIGHBOUR_CODE = '''
    SECRET = "%s"
    def handler(event, context):
        # Its own /tmp holds the secret too: an attacker must not find it in its.
        with open("/tmp/neighbour-secret", "w") as f:
            f.write(SECRET)
        return {"neighbour": "ok", "secret": SECRET}
'''


class Neighbour:
    """An innocent function deployed once per module. Its code and its /tmp
    hold `secret`; every attack test ends by checking it still answers."""

    def __init__(self, hearth, name):
        self.name = name
        self.secret = "neighbour-secret-" + uuid.uuid4().hex
        hearth.deploy_ok(name, files={"main.py": py(NEIGHBOUR_CODE % self.secret)})
        r = hearth.invoke_ok(name, json={})
        assert r.json() == {"neighbour": "ok", "secret": self.secret}

    def code_path(self, hearth):
        """Where its code lives on the host (version 1)."""
        return str(hearth.data_dir / "code" / self.name / "1")


@pytest.fixture(scope="module")
def neighbour(hearth, request):
    if os.geteuid() != 0:
        pytest.skip("needs root: hearthd sandboxes workers only when it runs as root")
    return Neighbour(hearth, "neighbour-" + request.module.__name__.replace("_", "-")[:40])


def survived(hearth, neighbour):
    """After an attack: the daemon answers /healthz and the neighbour still
    serves, with its own secret."""
    assert hearth.proc is not None and hearth.proc.poll() is None, \
        "hearthd died:\n" + hearth.stderr_tail()
    assert hearth.healthy(), "hearthd stopped answering /healthz"
    r = hearth.invoke(neighbour.name, json={})
    assert r.status_code == 200, "neighbour: %d %s" % (r.status_code, r.text[:800])
    assert r.json() == {"neighbour": "ok", "secret": neighbour.secret}
