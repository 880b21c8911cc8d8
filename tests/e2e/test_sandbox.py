"""Issue point 10 (Sandbox seam), as seen from inside a worker: own session and
process group, only fds 0-3, exactly the environment of the spec, an
unprivileged identity when hearthd runs as root, rlimits; and a worker's
children die with it."""

import os
import shutil
import uuid

import pytest

from conftest import (LEAK_NAME, Background, assert_error, procs_with_env, py, rootful_only,
                      wait_until)

INSPECT = py("""
    import os, resource, subprocess, sys
    def handler(event, context):
        if event == "spawn":
            subprocess.Popen(["/bin/sleep", "1000"])
            return "spawned"
        if event == "spawn-and-hang":
            subprocess.Popen(["/bin/sleep", "1000"])
            import time
            time.sleep(30)
        open_fds = []
        for fd in range(0, 1024):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
        return {
            "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
            "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
            "groups": os.getgroups(), "fds": open_fds, "env": dict(os.environ),
            "core": resource.getrlimit(resource.RLIMIT_CORE),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
            "cwd_listing": sorted(os.listdir(".")),
        }
""")


@pytest.fixture(scope="module")
def inside(hearth):
    mark = "sb-" + uuid.uuid4().hex
    hearth.deploy_ok("sb-inspect", INSPECT, env={"E2E_MARK": mark, "MY_SETTING": "x"},
                     timeout_ms=1000)
    # A fresh daemon's first call may wait for the runtime's template, which
    # a loaded machine can make outlast timeout_ms: the next start is a clone.
    for _ in range(3):
        r = hearth.invoke("sb-inspect", json={})
        if r.status_code != 504:
            break
    assert r.status_code == 200, r.text[:500]
    return mark, r.json()


def test_own_session_and_process_group(inside):
    """The session and group are the worker's own: led by the runtime itself,
    or (isolated, as root) by the sandbox's init, pid 1 of its namespace."""
    info = inside[1]
    assert info["sid"] == info["pgid"], info
    assert info["sid"] in (info["pid"], 1), info


def test_only_fds_0_to_3(inside):
    assert inside[1]["fds"] == [0, 1, 2, 3], inside[1]["fds"]


def test_environment_is_only_what_the_spec_gives(inside):
    env = inside[1]["env"]
    assert env.get("MY_SETTING") == "x"
    assert LEAK_NAME not in env, "daemon environment leaked into the worker: %s" % sorted(env)
    for name in ("PYTEST_CURRENT_TEST", "SSH_AUTH_SOCK", "HEARTHD"):
        assert name not in env, "%s leaked into the worker: %s" % (name, sorted(env))


def test_unprivileged_identity(inside):
    info = inside[1]
    assert os.geteuid() == 0, "the suite runs as root"
    assert info["uid"] != 0 and info["euid"] != 0 and info["gid"] != 0, info
    assert 0 not in info["groups"], info


def test_rlimits(inside):
    assert tuple(inside[1]["core"]) == (0, 0), inside[1]["core"]
    assert inside[1]["nofile"][1] > 0 and inside[1]["nofile"][1] < 1 << 20, inside[1]["nofile"]


def test_cwd_is_the_code(inside):
    assert "main.py" in inside[1]["cwd_listing"]


def test_worker_children_die_with_it(hearth, inside):
    mark = inside[0]
    assert hearth.invoke_ok("sb-inspect", body="spawn",
                            headers={"Content-Type": "text/plain"}).text == "spawned"
    # the worker and its sleep (whose /proc/PID/environ reads empty for an
    # instant while it execs)
    assert wait_until(lambda: len(procs_with_env(mark)) >= 2, 5)
    r = hearth.invoke("sb-inspect", body="spawn-and-hang", headers={"Content-Type": "text/plain"})
    assert r.status_code == 504, r.text
    assert hearth.delete("sb-inspect").status_code == 204
    assert wait_until(lambda: not procs_with_env(mark), 3.0), \
        "processes started by the function outlived it: %s" % procs_with_env(mark)


@rootful_only("one uid per worker needs root")
def test_concurrent_workers_have_distinct_uids(hearth):
    """Each worker runs as a uid of its own (--uid-range), so even a broken
    namespace would leave workers unable to signal or ptrace each other."""
    if os.geteuid() != 0:
        pytest.skip("per-worker uids need root")
    hearth.deploy_ok("sb-uids", py("""
        import os, time
        def handler(event, context):
            time.sleep(0.5)
            return os.getuid()
    """))
    calls = [Background(hearth.invoke, "sb-uids", json={}) for _ in range(3)]
    uids = [c.result(timeout=30).json() for c in calls]
    assert len(set(uids)) == 3, uids
    assert all(u >= 400000 for u in uids), uids


NET_PROBE = py("""
    import socket
    def handler(event, context):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", event["port"]))
            s.sendall(b"GET /healthz HTTP/1.0\\r\\n\\r\\n")
            return s.recv(12).decode()
        except OSError as e:
            return type(e).__name__
        finally:
            s.close()
""")


def test_network_is_isolated_unless_the_function_opts_into_host(hearth):
    """A worker has its own network namespace with only loopback: the daemon's
    port on the host's 127.0.0.1 is not reachable. "network": "host" opts out."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    hearth.deploy_ok("sb-net", NET_PROBE)
    assert hearth.invoke_ok("sb-net", json={"port": hearth.port}).text == \
        "ConnectionRefusedError"
    r = hearth.deploy("sb-net", {"main.py": NET_PROBE}, network="host")
    assert r.status_code == 200 and r.json()["network"] == "host", r.text
    assert hearth.invoke_ok("sb-net", json={"port": hearth.port}).text == "HTTP/1.1 200"
    r = hearth.deploy("sb-net", {"main.py": NET_PROBE}, network="bridge")
    assert_error(r, 400, "invalid_field")


def _status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@rootful_only("the daemon is unprivileged already: no spawner")
def test_http_side_runs_unprivileged_beside_a_root_spawner(hearth):
    """Privilege separation: the process that parses HTTP and JSON dropped to
    --user with no capabilities, no_new_privs and a seccomp filter of its
    own; only its spawner child keeps root to build sandboxes."""
    if os.geteuid() != 0:
        pytest.skip("privilege separation happens when started as root")
    daemon = _status(hearth.proc.pid)
    assert daemon["Uid"].split()[0] != "0", daemon["Uid"]
    assert int(daemon["CapEff"], 16) == 0 and int(daemon["CapPrm"], 16) == 0, daemon
    assert daemon["NoNewPrivs"] == "1" and daemon["Seccomp"] == "2", daemon
    with open("/proc/%d/task/%d/children" % (hearth.proc.pid, hearth.proc.pid)) as f:
        children = [int(p) for p in f.read().split()]
    spawners = [p for p in children if _status(p)["Name"] == "hearth-spawner"]
    assert len(spawners) == 1, children
    assert _status(spawners[0])["Uid"].split()[0] == "0"
