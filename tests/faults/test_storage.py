"""Storage faults: the registry locked by another process (sqlite BUSY), and
a full disk (a small tmpfs as the data dir) during a deploy, log writing
and async enqueueing. Each gets a clear error in the documented shape,
nothing acknowledged is lost, and all works again once the fault clears."""

import sqlite3
import threading
import time

import pytest

from conftest import assert_error, py

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


import os
import shutil

from conftest import fill, mount_tmpfs, umount

ASYNC = {"Prefer": "respond-async"}

LOGGER = py("""
    def handler(event, context):
        for i in range(event.get("lines", 1)):
            print("log line", i, "x" * 200)
        return {"ok": True}
""")


@pytest.fixture
def full_disk_hearth(hearth_factory):
    """A daemon whose data dir is a 64 MiB tmpfs of its own."""
    h = hearth_factory(start=False)
    mount_tmpfs(h.data_dir, "64m")
    try:
        h.start()
        yield h
    finally:
        try:
            h.close()
        finally:
            umount(h.data_dir)
            shutil.rmtree(h.base, ignore_errors=True)


def test_full_disk(full_disk_hearth):
    h = full_disk_hearth
    h.deploy_ok("fd-fn", code(1))
    h.deploy_ok("fd-log", LOGGER)
    h.invoke_ok("fd-log", json={})
    accepted = []
    for i in range(5):
        r = h.invoke("fd-fn", json={"i": i}, headers=ASYNC)
        assert r.status_code == 202, r.text
        accepted.append(r.json()["id"])
    filler = fill(h.data_dir)
    try:
        # A deploy: a clear 507, and the version before still serves.
        r = h.deploy("fd-fn", files={"main.py": code(2)})
        assert_error(r, 507, "insufficient_storage")
        assert h.invoke_ok("fd-fn", json={}).json() == {"v": 1}
        # Logs cannot be written: the call is still answered.
        for _ in range(3):
            assert h.invoke_ok("fd-log", json={"lines": 200}).json() == {"ok": True}
        # An async enqueue is refused, never acknowledged and then lost.
        r = h.invoke("fd-fn", json={"late": True}, headers=ASYNC)
        assert r.status_code != 202, r.text
        assert_error(r, 503, "storage_error")
        assert h.healthy()
    finally:
        os.unlink(filler)
    # Space again: everything works, nothing acknowledged was lost.
    h.deploy_ok("fd-fn", code(2))
    assert h.invoke_ok("fd-fn", json={}).json() == {"v": 2}
    r = h.invoke("fd-fn", json={"after": True}, headers=ASYNC)
    assert r.status_code == 202, r.text
    for iid in accepted + [r.json()["id"]]:
        rec = h.get("/v1/invocations/" + iid)
        assert rec.status_code == 200, rec.text
    h.invoke_ok("fd-log", json={"lines": 1})
    assert h.log_records("fd-log"), "no log line stored after the disk had room again"
    text = h.stderr_text()
    # Dropped log lines are counted in a few notes, not one warning a line.
    notes = text.count("line(s) dropped so far")
    assert 1 <= notes <= 5, notes
    assert "stored again after dropping" in text
