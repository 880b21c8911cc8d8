"""Hostile functions against pre-built sandboxes (issue 12): a sandbox is
built and started before it knows its function, then attached to one. What
that could leak: other functions' code (staged for an attach, or mounted
where the sandbox was built), the still-privileged init's environment and
root, a mount that can be lifted to see what lies below /var/task, and a
uid handed to two functions.

The module's daemon runs with a pool of two (when it has a pool at all:
before issue 12 these attacks run against today's sandboxes, and must be
stopped all the same). Each test ends with survived().
"""

import os

from conftest import (LEAK_VALUE, ROOTLESS, Background, attack, attack_ok, descendants,
                      pool_args, prebuilt_runtimes, py, rootful_only, survived)

HEARTH_ARGS = pool_args("--prebuilt-min", "2")

DENIED = {"ENOENT", "EACCES", "EPERM", "EROFS"}


def test_other_functions_code_is_nowhere_to_be_seen(hearth, neighbour):
    """Attack: find another function's code in a sandbox built before its
    function was known — walk / (and /var, where the code is attached),
    read the mount table for the folders the daemon bound, read the
    environment the runtime was started with. Stopped by: only the
    function's own code folder is bound, at /var/task; nothing names the
    neighbour, and no mount exposes a folder above the attacker's own code
    (the data dir's code/ holding every function)."""
    out = attack_ok(hearth, "pi-seek-code", '''
        import os, hostile
        SKIP = ("/proc", "/sys", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
        def handler(event, context):
            paths = []
            for top in ("/", "/var"):
                for root, dirs, files in os.walk(top):
                    dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP]
                    paths += [os.path.join(root, n) for n in dirs + files]
            return {"paths": sorted(set(paths)),
                    "mountinfo": hostile.read("/proc/self/mountinfo", 1 << 20),
                    "environ": hostile.read("/proc/self/environ", 1 << 20),
                    "var_hearth": hostile.err(os.listdir, "/var/.hearth")}
    ''')
    name = neighbour.name
    assert not [p for p in out["paths"] if name in p], [p for p in out["paths"] if name in p]
    assert name not in out["mountinfo"], out["mountinfo"]
    for leaked in (name, neighbour.secret, LEAK_VALUE):
        assert leaked not in out["environ"], out["environ"]
    assert out["var_hearth"][0] in DENIED or out["var_hearth"] == ["ok", []], out["var_hearth"]

    mounts = [line.split() for line in out["mountinfo"].splitlines()]
    task = [m for m in mounts if m[4] == "/var/task"]
    assert len(task) == 1, task
    dev, own = task[0][2], task[0][3]  # the code's filesystem, its folder in it
    assert own.endswith("/pi-seek-code/1"), own
    above = [m for m in mounts if m[2] == dev and m[3] != "/" and own.startswith(m[3] + "/")]
    assert not above, "a folder above the function's own code is mounted: %s" % above
    survived(hearth, neighbour)


def test_the_init_keeps_its_environment_and_root(hearth, neighbour):
    """Attack: the sandbox's init (pid 1) built the sandbox with privileges
    before the attach; read its environment, its root and cwd (the host's
    view, from before pivot_root) and its mount table. Stopped by: /proc is
    mounted hidepid=invisible and the init runs as another uid, so pid 1
    does not exist for the function (rootless, the init shares its uid: it
    may be visible, but holds nothing of the daemon's or another function's
    and its root is the sandbox's own)."""
    out = attack_ok(hearth, "pi-init", '''
        import os, hostile
        def handler(event, context):
            r = {}
            for p in ("/proc/1/environ", "/proc/1/cmdline", "/proc/1/mountinfo"):
                r["read " + p] = hostile.err(hostile.read, p, 1 << 20)
            for p in ("/proc/1/root", "/proc/1/root/var", "/proc/1/cwd", "/proc/1/fd"):
                r["list " + p] = hostile.err(os.listdir, p)
            r["readlink /proc/1/exe"] = hostile.err(os.readlink, "/proc/1/exe")
            return r
    ''')
    for what, (result, detail) in out.items():
        if ROOTLESS and result == "ok":
            text = repr(detail)
            for leaked in (LEAK_VALUE, neighbour.name, neighbour.secret, str(hearth.data_dir)):
                assert leaked not in text, (what, detail)
            continue
        assert result in DENIED, "%s worked: %r" % (what, detail)
    survived(hearth, neighbour)


def test_mounts_cannot_be_changed_to_look_below_var_task(hearth, neighbour):
    """Attack: lift the code's mount to see what the sandbox was built on
    (umount /var/task, lazily too), remount it read-write, move it, bind
    the root over it, mount a tmpfs on /var. Stopped by: no CAP_SYS_ADMIN
    in any user namespace that owns the mounts, and seccomp (EPERM); the
    code stays read-only and is still only the function's own."""
    out = attack_ok(hearth, "pi-mount", '''
        import os
        from ctypes import c_char_p as s
        import hostile
        MS_RDONLY, MS_REMOUNT, MS_BIND, MS_MOVE, MNT_DETACH = 1, 0x20, 0x1000, 0x2000, 2
        def handler(event, context):
            c = hostile.sys_call
            tries = {
                "umount /var/task": c(166, s(b"/var/task"), 0),
                "umount -l /var/task": c(166, s(b"/var/task"), MNT_DETACH),
                "umount -l /var": c(166, s(b"/var"), MNT_DETACH),
                "umount -l /": c(166, s(b"/"), MNT_DETACH),
                "remount /var/task rw": c(165, 0, s(b"/var/task"), 0, MS_REMOUNT | MS_BIND, 0),
                "move /var/task": c(165, s(b"/var/task"), s(b"/tmp"), 0, MS_MOVE, 0),
                "bind / on /var/task": c(165, s(b"/"), s(b"/var/task"), 0, MS_BIND, 0),
                "mount tmpfs on /var": c(165, s(b"none"), s(b"/var"), s(b"tmpfs"), 0, 0),
            }
            return {"tries": tries, "task": sorted(os.listdir("/var/task")),
                    "ro": bool(os.statvfs("/var/task").f_flag & os.ST_RDONLY)}
    ''')
    for what, (ret, error) in out["tries"].items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    assert out["task"] == ["hostile.py", "main.py"] and out["ro"], out
    survived(hearth, neighbour)


UID_CODE = '''
    import os, time
    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return os.getuid()
'''


@rootful_only("one uid per worker needs root; every rootless worker runs as the daemon's uid")
def test_a_claimed_sandbox_has_a_uid_of_its_own(hearth, neighbour):
    """Attack (for when a namespace breaks): share a uid with another
    function running at the same time, or with the idle pre-built sandbox
    the next function will get, and signal or ptrace it. Stopped by: each
    sandbox gets its own host uid when it is built (--uid-range, 400000 up);
    a claim keeps it, and the pool's other sandboxes have others."""
    marks = ("pi-uid-a", "pi-uid-b")
    for name in marks:
        hearth.deploy_ok(name, files={"main.py": py(UID_CODE)})
    calls = {name: Background(hearth.invoke, name, json={"sleep": 1.0}) for name in marks}
    inside = {}
    for name, call in calls.items():
        r = call.result(timeout=30)
        assert r.status_code == 200, r.text[:800]
        inside[name] = r.json()
    a, b = inside["pi-uid-a"], inside["pi-uid-b"]
    assert a != b and a >= 400000 and b >= 400000, inside
    # The uid seen inside is the host's (no mapping hides a shared one), and
    # no unclaimed sandbox of the pool has it: the two workers stay warm.
    host = {}
    for pid, _start in descendants(hearth.pid):
        try:
            host.setdefault(os.stat("/proc/%d" % pid).st_uid, []).append(pid)
        except OSError:
            pass
    assert a in host and b in host, (inside, sorted(host))
    pool_uids = {os.stat("/proc/%d" % p).st_uid for p in prebuilt_runtimes(hearth.pid)}
    assert not pool_uids & {a, b}, "an idle pre-built sandbox shares a uid: %s" % pool_uids
    survived(hearth, neighbour)


def test_a_function_cannot_reach_an_idle_prebuilt_sandbox(hearth, neighbour):
    """Attack: signal every process it can, hoping to hit the idle
    pre-built sandboxes (the next functions' homes) or to plant a process
    that outlives the call and waits in one. Stopped by: a pid namespace of
    its own — kill(-1) reaches only its own processes — so the pool is
    untouched, and a new function still gets a clean sandbox."""
    before = prebuilt_runtimes(hearth.pid)
    r = attack(hearth, "pi-killall", '''
        import os, signal
        def handler(event, context):
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError as e:
                return e.errno
            return 0
    ''')
    # kill(-1) may take the attacker's own runtime with it: a crash is fine.
    assert r.status_code in (200, 502), r.text[:800]
    assert not [p for p in before if not os.path.exists("/proc/%d" % p)], \
        "pre-built sandboxes died: %s" % before
    hearth.deploy_ok("pi-after", files={"main.py": py('''
        import os
        def handler(event, context):
            return sorted(os.listdir("/tmp"))
    ''')})
    assert hearth.invoke_ok("pi-after", json={}).json() == []
    survived(hearth, neighbour)
