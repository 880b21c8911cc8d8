"""hearth_harness.build — the CMake build a bench runs from.

Owns: where the build is ($BUILD, else <repo>/build) and bench_bin(), the
Python twin of bench/lib.sh's: a bench program (bench/<name>.c) built or
brought up to date by CMake as $BUILD/bench_<name>.
Must never: configure a build dir that already is (a test build keeps its
options: HEARTH_TESTS, cmocka), or build anything but the target asked for.
"""

import os
import subprocess
from pathlib import Path

from .config import REPO, HarnessError

BUILD = Path(os.environ.get("BUILD") or REPO / "build")


def bench_bin(name, build=None):
    """The path of bench_<name>, built first (cmake --build --target)."""
    build = Path(build or BUILD)
    steps = []
    if not (build / "CMakeCache.txt").exists():
        steps.append(["cmake", "-S", str(REPO), "-B", str(build),
                      "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    steps.append(["cmake", "--build", str(build), "--target", "bench_" + name, "-j2"])
    for cmd in steps:
        p = subprocess.run(cmd, capture_output=True, timeout=900)
        if p.returncode != 0:
            raise HarnessError("%s failed:\n%s" % (" ".join(cmd), (p.stdout + p.stderr).decode(
                errors="replace")[-4000:]))
    return build / ("bench_" + name)
