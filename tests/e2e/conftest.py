"""End-to-end harness: the fixtures and hooks over hearth_harness.

Owns: putting python/ on sys.path and offering the shared harness
(python/hearth_harness/, its pytest face hearth_harness.fixtures) to the
e2e modules: the fixtures, hooks and every name test modules import from
here (`from conftest import Hearth, py, ...`), so old and new tests alike
keep working.
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
A test that points the harness at another binary monkeypatches
hearth_harness.config.HEARTHD (Hearth.start reads it at each start).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

# Fixtures and hooks are found by name in this module: the star import
# (hearth_harness.fixtures.__all__) registers them and every helper name.
from hearth_harness.fixtures import *  # noqa: E402,F401,F403
from hearth_harness.fixtures import harness_config  # noqa: E402,F401  (explicit for linters)
