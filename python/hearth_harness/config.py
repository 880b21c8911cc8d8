"""hearth_harness.config — where the harness finds hearthd and how it runs it.

Owns: the environment knobs every daemon started by the harness obeys
(HEARTHD, HEARTH_E2E_LOG_LEVEL, HEARTH_E2E_ARGS, HEARTH_E2E_KEEP,
HEARTH_E2E_ROOTLESS), and fail(), which stops a test (pytest.fail) or a
bench (HarnessError) the same way.
Must never: read anything but the environment; the values are read once,
at import, except HEARTHD, which Hearth.start() looks up at each start so
that a test can point it at another binary (monkeypatch this module).
"""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # python/hearth_harness/ -> repo
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


class HarnessError(RuntimeError):
    """A daemon that would not start or stop, outside pytest."""


def fail(msg):
    """pytest.fail(msg) under pytest (a clean failure, no traceback), else
    HarnessError: the same helpers serve tests and benches."""
    if "pytest" in sys.modules:
        sys.modules["pytest"].fail(msg)
    raise HarnessError(msg)
