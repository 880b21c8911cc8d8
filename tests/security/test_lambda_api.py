"""Attacks on the lambda runtime's Runtime API from outside the sandbox.

A function deployed with `"network": "host"` shares the host's loopback, so
the Runtime API its runner serves on 127.0.0.1 is a port every local user
can see in /proc/net/tcp and connect to. The attacker here is such a user:
an unprivileged process on the host, not a function.

Owns: the race between that process and the real bootstrap for
`invocation/next`, `invocation/{id}/response` and `init/error`.
Must never: touch a port other than this test's own runner (other daemons,
other engineers' runners, may listen on the same VM), or talk to anything
but 127.0.0.1.
"""

import json
import os
import subprocess
import uuid

import pytest

from conftest import e2e_conftest, procs_with_env, py, survived, wait_until

SETPRIV = e2e_conftest.SETPRIV
pytestmark = pytest.mark.skipif(not SETPRIV, reason="needs setpriv (util-linux) to attack "
                                                    "as another user")
ATTACKER_UID = 61423  # no passwd entry; not the daemon's, a worker's (--uid-range) or nobody
GATE = "/tmp/attacker-done"  # in the worker's /tmp: the bootstrap polls only once it exists

# A bootstrap that holds back its first `next` until the test opens the gate,
# so the attacker always asks first: the race is won by construction, not by
# timing on a loaded VM. Past 20 s it goes on alone.
BOOTSTRAP = """#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
i=0
while [ ! -e %s ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/next")
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | tr -d '\\r' | cut -d' ' -f2)
  curl -sS -X POST "$API/$ID/response" -d "{\\"from\\": \\"bootstrap\\", \\"event\\": $EVENT}" >/dev/null
  rm -f "$H"
done
""" % GATE

# Runs on the host as ATTACKER_UID with the runner's port: what a process
# that watched /proc/net/tcp for new listeners would do with it.
ATTACKER = py("""
    import http.client, json, sys
    port, base = int(sys.argv[1]), "/2018-06-01/runtime"
    def call(method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request(method, base + path, body=body)
            r = c.getresponse()
            return {"status": r.status, "id": r.getheader("Lambda-Runtime-Aws-Request-Id"),
                    "body": r.read().decode("latin-1")[:2000]}
        except (OSError, http.client.HTTPException) as e:
            return {"status": None, "error": repr(e)}
        finally:
            c.close()
    out = {"next": call("GET", "/invocation/next")}
    rid = out["next"].get("id") or "00000000-0000-0000-0000-000000000000"
    out["response"] = call("POST", "/invocation/%s/response" % rid, json.dumps({"forged": True}))
    out["init_error"] = call("POST", "/init/error", json.dumps({"errorMessage": "forged",
                                                                "errorType": "Forged"}))
    print(json.dumps(out))
""")


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def runner_port(mark):
    """(host pid, port) of the runner whose bootstrap has `mark` in its
    environment: the listening 127.0.0.1 socket among the fds of the
    bootstrap's processes and their parents. Root reads that straight from
    /proc; the attacker would diff /proc/net/tcp, which would race other
    runners on this machine."""
    pids = set(procs_with_env(mark))
    pids |= {p for p in map(_ppid, list(pids)) if p}
    for pid in sorted(pids):
        inodes = _socket_inodes(pid)
        try:
            with open("/proc/%d/net/tcp" % pid) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes and local.startswith("0100007F:"):
                return pid, int(local.split(":")[1], 16)
    return None


def attack_from_host(port):
    """Runs ATTACKER as an unprivileged local user; returns its report."""
    cmd = ["/usr/bin/python3", "-I", "-c", ATTACKER, str(port)]
    if os.geteuid() == 0 and SETPRIV:
        cmd = [SETPRIV, "--reuid", str(ATTACKER_UID), "--regid", str(ATTACKER_UID),
               "--clear-groups"] + cmd
    out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return json.loads(out.stdout)


def open_gate(runner):
    """Creates GATE in the worker's /tmp, as the worker's uid: rootless,
    root is not mapped in the worker's user namespace and could not own a
    file there (EOVERFLOW). Quiet when the worker is gone (the forged
    init/error ended it): the asserts say so."""
    try:
        with open("/proc/%d/status" % runner) as f:
            ids = {k: v.split()[0] for k, v in (l.split(":", 1) for l in f) if k in ("Uid", "Gid")}
    except OSError:
        return
    subprocess.run([SETPRIV, "--reuid", ids["Uid"], "--regid", ids["Gid"], "--clear-groups",
                    "/usr/bin/touch", "/proc/%d/root%s" % (runner, GATE)],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


def test_host_process_races_the_bootstrap(hearth, neighbour):
    """Attack: a local process finds the Runtime API's port of a function
    with `"network": "host"` and asks `invocation/next` before the real
    bootstrap, then posts a forged response and an init error.
    Stopped by: the runner answers only connections made by a process of
    its own sandbox (the client socket's inode is looked up among the fds
    of the processes its pid namespace holds); the attacker is refused and
    the call goes to the real bootstrap."""
    mark, secret = uuid.uuid4().hex, "event-secret-" + uuid.uuid4().hex
    hearth.deploy_ok("lm-race", files={"bootstrap": BOOTSTRAP}, handler="function.handler",
                     runtime="lambda", network="host", env={"RACE_MARK": mark},
                     timeout_ms=30000)
    call = e2e_conftest.Background(hearth.invoke, "lm-race", json={"secret": secret}, timeout=60)
    found = wait_until(lambda: runner_port(mark), 15)
    assert found, "no runner listening for lm-race:\n" + hearth.stderr_tail()
    runner, port = found

    stolen = attack_from_host(port)
    open_gate(runner)
    r = call.result(60)

    # Refused: a 403 before the request is read, or a reset that ate it.
    assert secret not in json.dumps(stolen), stolen
    for step in ("next", "response", "init_error"):
        assert stolen[step]["status"] in (403, None), stolen
    assert r.status_code == 200, "%d %s" % (r.status_code, r.text[:800])
    assert r.json() == {"from": "bootstrap", "event": {"secret": secret}}, r.text
    warm = hearth.invoke_ok("lm-race", json={"again": 1}).json()
    assert warm == {"from": "bootstrap", "event": {"again": 1}}, warm
    survived(hearth, neighbour)
