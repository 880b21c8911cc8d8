"""Issue point 3 (Manage): list, show with live pool state, delete."""

import os
import uuid

from conftest import Background, assert_error, procs_with_env, py, wait_until

SLOW = py("""
    import time
    def handler(event, context):
        if isinstance(event, dict) and event.get("sleep"):
            time.sleep(event["sleep"])
        return "done"
""")


def test_list_is_ordered_by_name(hearth):
    for name in ("mg-list-b", "mg-list-c", "mg-list-a"):
        hearth.deploy_ok(name, "def handler(e, c):\n    return 1\n")
    fns = hearth.list_functions()
    names = [f["name"] for f in fns]
    assert names == sorted(names), names
    ours = [n for n in names if n.startswith("mg-list-")]
    assert ours == ["mg-list-a", "mg-list-b", "mg-list-c"]
    entry = next(f for f in fns if f["name"] == "mg-list-b")
    assert entry["version"] == 1 and entry["runtime"] == "python3" and "pool" in entry


def test_show_has_settings_timestamps_and_pool(hearth):
    hearth.deploy_ok("mg-show", SLOW, env={"X": "1"}, timeout_ms=9000)
    fn = hearth.show("mg-show").json()
    assert fn["name"] == "mg-show" and fn["version"] == 1
    assert fn["env"] == {"X": "1"} and fn["timeout_ms"] == 9000 and fn["memory_mb"] == 128
    assert fn["created_at"] and fn["updated_at"]
    assert fn["pool"]["busy"] == 0 and fn["pool"]["queued"] == 0, fn["pool"]


def test_pool_state_idle_then_busy(hearth):
    hearth.deploy_ok("mg-pool", SLOW)
    hearth.invoke_ok("mg-pool", json={})
    pool = hearth.pool("mg-pool")
    assert pool["idle"] == 1 and pool["busy"] == 0, pool

    slow = Background(hearth.invoke, "mg-pool", json={"sleep": 1.5})
    busy = wait_until(lambda: hearth.pool("mg-pool")["busy"] == 1, 1.2)
    pool = hearth.pool("mg-pool")
    assert busy, "pool never showed the request in flight: %s" % pool
    assert pool["idle"] == 0, pool
    assert slow.result().status_code == 200
    pool = hearth.pool("mg-pool")
    assert pool["busy"] == 0 and pool["idle"] == 1, pool


def test_delete_stops_workers_removes_code_and_logs(hearth):
    mark = "mg-" + uuid.uuid4().hex
    code = py("""
        # %s
        def handler(event, context):
            print("log-%s")
            return "ok"
    """ % (mark, mark))
    hearth.deploy_ok("mg-del", code, env={"E2E_MARK": mark})
    hearth.invoke_ok("mg-del")
    assert procs_with_env(mark), "no worker running before delete"
    assert any("log-" + mark in rec["message"] for rec in hearth.log_records("mg-del"))

    r = hearth.delete("mg-del")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers.get("X-Request-Id")

    assert_error(hearth.show("mg-del"), 404, "function_not_found")
    assert_error(hearth.invoke("mg-del"), 404, "function_not_found")
    assert_error(hearth.request("GET", "/fn/mg-del/x"), 404, "function_not_found")
    assert_error(hearth.logs("mg-del"), 404, "function_not_found")
    assert_error(hearth.delete("mg-del"), 404, "function_not_found")
    assert "mg-del" not in [f["name"] for f in hearth.list_functions()]

    left = wait_until(lambda: not procs_with_env(mark), 3.0)
    assert left, "workers still running after delete: %s" % procs_with_env(mark)

    # Neither its code nor its log lines stay on disk (sqlite files may keep
    # freed pages, so only plain files are searched).
    needle = mark.encode()
    for root, _dirs, files in os.walk(hearth.data_dir):
        for name in files:
            if "sqlite" in name or name.endswith((".db", "-wal", "-shm", "-journal")):
                continue
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    assert needle not in f.read(), "%s still holds the deleted function" % path
            except (FileNotFoundError, IsADirectoryError):
                pass

    # The name can be used again: a new function.
    r = hearth.deploy("mg-del", files={"main.py": "def handler(e, c):\n    return 'again'\n"})
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("mg-del").text == "again"
    assert not any("log-" + mark in rec["message"] for rec in hearth.log_records("mg-del"))


def test_delete_with_request_in_flight_answers_502(hearth):
    hearth.deploy_ok("mg-del-busy", SLOW)
    hearth.invoke_ok("mg-del-busy", json={})
    slow = Background(hearth.invoke, "mg-del-busy", json={"sleep": 5})
    assert wait_until(lambda: hearth.pool("mg-del-busy")["busy"] == 1, 2.0)
    r = hearth.delete("mg-del-busy")
    assert r.status_code == 204, r.text
    answer = slow.result(timeout=4)
    assert_error(answer, 502, "function_crashed")
    assert hearth.healthy()
