"""hearth_harness — the Python harness tests/ and bench/ share.

Owns nothing itself: it names the modules and re-exports what most users
need, so `from hearth_harness import Hearth, py, assert_error` works.
  config  where hearthd is and how it runs (the HEARTH_E2E_* environment)
  util    snippets, ports, the error-shape assert, archives, polling
  proc    /proc and cgroup bookkeeping: descendants, fds, RSS, leaves, mounts
  daemon  Hearth: one hearthd on a loopback port, its token, deploy/invoke/logs
  fixtures  the pytest face: fixtures, hooks, every name the conftests offer
  benchlib  the benches' raw-socket client, bench daemon, statistics, report
  build   $BUILD and bench_bin(): a bench program built by CMake

Importers put <repo>/python on sys.path first (tests/e2e/conftest.py and
bench/*.py do); nothing loads another file by path.
"""

from .config import HarnessError, fail  # noqa: F401
from .daemon import Hearth, daemon_knows, pool_args, prebuilt_metrics  # noqa: F401
from .proc import (alive, cgroup_leaves, child_pid, descendants, fd_count,  # noqa: F401
                   mount_count, procs_with_env, spawner_pid, status_kib)
from .util import (Background, assert_error, b64, free_port, py, targz,  # noqa: F401
                   wait_until, zipbytes)
