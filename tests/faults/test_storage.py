"""Storage faults: the registry locked by another process (sqlite BUSY), and
a full disk (a small tmpfs as the data dir) during a deploy, log writing
and async enqueueing. Each gets a clear error in the documented shape,
nothing acknowledged is lost, and all works again once the fault clears."""

import sqlite3
import threading
import time

import pytest

from faults_harness import assert_error, py

HELLO = py("""
    def handler(event, context):
        return {"v": VERSION}
""")


def code(v):
    return HELLO.replace("VERSION", str(v))


class Locker:
    """Holds a write lock on an sqlite file from this (another) process."""

    def __init__(self, path):
        self.db = sqlite3.connect(str(path), timeout=1, isolation_level=None)
        self.db.execute("BEGIN EXCLUSIVE")

    def release(self):
        self.db.execute("ROLLBACK")
        self.db.close()


def test_registry_locked_by_another_process(hearth_factory):
    h = hearth_factory()
    h.deploy_ok("db-busy", code(1))
    lock = Locker(h.data_dir / "hearth.db")
    try:
        t0 = time.monotonic()
        r = h.deploy("db-busy", files={"main.py": code(2)})
        took = time.monotonic() - t0
        assert_error(r, 503, "storage_busy")
        assert took < 30, took
        # The version deployed before still answers (it is in memory).
        assert h.invoke_ok("db-busy", json={}).json() == {"v": 1}
    finally:
        lock.release()
    h.deploy_ok("db-busy", code(2))
    assert h.invoke_ok("db-busy", json={}).json() == {"v": 2}
