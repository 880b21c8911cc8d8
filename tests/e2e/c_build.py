"""Builds a C function for the c runtime in the tests: source in, .tar.gz
of the shared object out (against include/hearth/function.h)."""

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO, targz

CC = shutil.which("cc") or shutil.which("gcc")


def c_package(source, name="libfn.so"):
    """The .tar.gz holding `name`, built from `source`; skips without a compiler."""
    if not CC:
        pytest.skip("no C compiler to build the function")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "fn.c")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(tmp, name)
        subprocess.run([CC, "-O2", "-shared", "-fPIC", "-I", str(REPO / "include"), "-o", out, src],
                       check=True)
        with open(out, "rb") as f:
            return targz({name: f.read()})


def deploy_c(h, name, source, **query):
    r = h.deploy_raw(name, c_package(source), "application/gzip", runtime="c",
                     handler="libfn.so", **query)
    assert r.status_code in (200, 201), r.text
    return r
