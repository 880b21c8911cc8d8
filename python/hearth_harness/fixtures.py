"""hearth_harness.fixtures — the pytest face of the harness.

Owns: the `hearth` (one daemon per module), `hearth_factory` and
`fresh_hearth` fixtures, the failure report with each live daemon's stderr,
SIGTERM as an interrupt (so fixtures still tear down), rootful_only; and
__all__, every name tests/e2e/conftest.py and tests/security/conftest.py
have always offered their test modules (`from conftest import Hearth, py`).
Must never: be imported outside pytest (it imports pytest); a bench uses
hearth_harness.daemon directly.
"""

import signal
import threading

import pytest

__all__ = [
    "harness_config",
    "EXTRA_ARGS",
    "HEARTHD",
    "KEEP",
    "LEAK_NAME",
    "LEAK_VALUE",
    "LOG_LEVEL",
    "REPO",
    "ROOTLESS",
    "ROOTLESS_USER",
    "SETPRIV",
    "START_TIMEOUT",
    "_LIVE",
    "Hearth",
    "_as_user",
    "_new_base",
    "daemon_knows",
    "pool_args",
    "prebuilt_metrics",
    "workers_held",
    "_environ",
    "_pids",
    "_stat",
    "alive",
    "descendants",
    "prebuilt_runtimes",
    "procs_with_cwd_under",
    "procs_with_env",
    "remove_cgroups_of",
    "spawner_pid",
    "vmrss_kib",
    "Background",
    "assert_error",
    "b64",
    "dir_bytes",
    "free_port",
    "py",
    "targz",
    "wait_until",
    "zipbytes",
    "rootful_only",
    "_terminated",
    "pytest_configure",
    "hearth",
    "hearth_factory",
    "fresh_hearth",
    "pytest_runtest_makereport",
]

# Every public (and the few private) names test modules import from here.
from hearth_harness import config as harness_config  # noqa: F401
from hearth_harness.config import (EXTRA_ARGS, HEARTHD, KEEP, LEAK_NAME, LEAK_VALUE,  # noqa: F401
                                   LOG_LEVEL, REPO, ROOTLESS, ROOTLESS_USER, SETPRIV,
                                   START_TIMEOUT)
from hearth_harness.daemon import (_LIVE, Hearth, _as_user, _new_base, daemon_knows,  # noqa: F401
                                   pool_args, prebuilt_metrics, workers_held)
from hearth_harness.proc import (_environ, _pids, _stat, alive, descendants,  # noqa: F401
                                 prebuilt_runtimes, procs_with_cwd_under, procs_with_env,
                                 remove_cgroups_of, spawner_pid, vmrss_kib)
from hearth_harness.util import (Background, assert_error, b64, dir_bytes, free_port,  # noqa: F401
                                 py, targz, wait_until, zipbytes)


def rootful_only(why):
    """Marks a test whose protection needs hearthd to run as root (`why`
    names it); rootless runs skip it with that reason."""
    return pytest.mark.skipif(ROOTLESS, reason="rootless: " + why)


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    # `timeout`/ctest send SIGTERM: turn it into an interrupt so pytest still
    # tears the fixtures down (daemons stopped, temp dirs removed).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for h in list(_LIVE):
            rep.sections.append(("hearthd stderr, %s (tail)" % h.base.name, h.stderr_tail()))
