"""Fault-injection harness (issue 15, section 2): real hearthd daemons, as
root, with faults put in at run time.

Owns: offering the shared harness (python/hearth_harness/: its Hearth
daemon, fixtures and pytest hooks) to the fault tests, and the fault helpers:
`WallClock` (steps one daemon's CLOCK_REALTIME through the test-only
LD_PRELOAD library clockshim.so, never the host's clock: other tests run
at the same time), `tmpfs` (a small tmpfs as a daemon's data dir, always
unmounted), `fill`/`unfill` (a full disk on it).
Must never: change the host clock, leave a mount, a daemon or a temp dir
behind, or run unless root (ctest's `faults` entry skips with 77 first;
here every test is skipped as well).

Environment: HEARTHD, HEARTH_CLI as for tests/e2e; HEARTH_CLOCKSHIM, the
built libhearth_clockshim.so (else <repo>/build/libhearth_clockshim.so).
"""

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "python"))

# pytest finds fixtures and hooks by name in this module: the star import
# (hearth_harness.fixtures.__all__) registers them and every helper name,
# so test modules import from here (`from conftest import Hearth`).
from hearth_harness.fixtures import *  # noqa: E402,F401,F403
from hearth_harness.fixtures import harness_config  # noqa: E402

CLOCKSHIM = os.environ.get("HEARTH_CLOCKSHIM") or str(
    Path(harness_config.HEARTHD).resolve().parent / "libhearth_clockshim.so")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="fault tests need root (mounts, prlimit, the spawner)")
        for item in items:
            item.add_marker(skip)
    if harness_config.ROOTLESS:
        skip = pytest.mark.skip(reason="fault tests run rootful only")
        for item in items:
            item.add_marker(skip)


class WallClock:
    """The offset clockshim.so adds to one daemon's wall clock."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.write_bytes(struct.pack("<q", 0))
        os.chmod(self.path, 0o644)

    def env(self):
        if not os.path.exists(CLOCKSHIM):
            pytest.fail("clockshim not built at %s (set HEARTH_CLOCKSHIM)" % CLOCKSHIM)
        asan = os.environ.get("ASAN_OPTIONS", "")
        # The shim is preloaded ahead of an ASan build's runtime.
        asan = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return {"LD_PRELOAD": CLOCKSHIM, "HEARTH_CLOCK_OFFSET_FILE": str(self.path),
                "ASAN_OPTIONS": asan}

    def step(self, ms):
        """Moves the daemon's wall clock by `ms` (negative: backwards)."""
        with open(self.path, "r+b") as f:
            cur = struct.unpack("<q", f.read(8))[0]
            f.seek(0)
            f.write(struct.pack("<q", cur + int(ms)))


@pytest.fixture
def wall_clock(tmp_path):
    return WallClock(tmp_path / "clock-offset")


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "hearth-faults",
                    str(path)], check=True)


def umount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path, name="filler"):
    """Fills the file system of `path` to the last byte; returns the file."""
    f = Path(path) / name
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return f
