"""Hostile functions against the filesystem: reading the host's secrets, the
data dir, other functions' code and /tmp; writing outside /tmp; filling
/tmp; device nodes; setuid binaries; the kernel's files under /proc and
/sys; the daemon's memory through the sandbox's init.

Each test deploys a function that tries the attack and reports what
happened, asserts the attack failed, and ends with survived(): the daemon
answers and this module's neighbour still serves.
"""

import os

from conftest import LEAK_VALUE, ROOTLESS, attack_ok, survived

# The errno names a refused filesystem access may come back with.
DENIED = {"ENOENT", "EACCES", "EPERM", "EROFS"}


def test_read_host_shadow(hearth, neighbour):
    """Attack: read the host's /etc/shadow (directly, and through the
    sandbox init's /proc/1/root). Stopped by: the private root — /etc is a
    generated folder with passwd, group, hosts, nsswitch.conf, the loader
    cache and Debian's alternatives links only, the host root is detached by pivot_root — and /proc/1/root
    of a process of another uid is not readable."""
    out = attack_ok(hearth, "fs-shadow", '''
        import os, hostile
        def handler(event, context):
            paths = ["/etc/shadow", "/etc/gshadow", "/proc/1/root/etc/shadow",
                     "/proc/self/root/etc/shadow", "/../../etc/shadow"]
            return {"tries": {p: hostile.err(hostile.read, p) for p in paths},
                    "etc": sorted(os.listdir("/etc"))}
    ''')
    for path, (result, detail) in out["tries"].items():
        assert result in DENIED, "%s was readable: %r" % (path, detail)
    etc = ["group", "hosts", "ld.so.cache", "nsswitch.conf", "passwd"]
    if os.path.isdir("/etc/alternatives"):
        etc.insert(0, "alternatives")
    assert out["etc"] == etc, out["etc"]
    survived(hearth, neighbour)


def test_read_data_dir(hearth, neighbour):
    """Attack: read hearthd's data dir (registry database, every function's
    code, logs) at the host path the function learnt (it is told it here; a
    real attacker can read it from /proc/1/cmdline). Stopped by: pivot_root
    into a fresh tmpfs root — the host path does not exist in the sandbox."""
    data = str(hearth.data_dir)
    assert os.listdir(data), "the data dir should hold something to steal"
    out = attack_ok(hearth, "fs-datadir", '''
        import os, hostile
        def handler(event, context):
            d = event["data"]
            tries = {p: hostile.err(os.listdir, p)
                     for p in [d, d + "/code", os.path.dirname(d)]}
            for name in event["names"]:
                tries[d + "/" + name] = hostile.err(hostile.read, d + "/" + name)
            return tries
    ''', {"data": data, "names": sorted(os.listdir(data))})
    for path, (result, detail) in out.items():
        assert result in DENIED, "%s was readable: %r" % (path, detail)
    survived(hearth, neighbour)


def test_read_root_home(hearth, neighbour):
    """Attack: list and read /root (ssh keys, shell history). Stopped by:
    the private root, which binds only /usr and the library folders."""
    out = attack_ok(hearth, "fs-root", '''
        import os, hostile
        def handler(event, context):
            r = {p: hostile.err(os.listdir, p) for p in ["/root", "/home", "/var/lib", "/srv"]}
            for p in ["/root/.ssh/id_rsa", "/root/.bash_history"]:
                r[p] = hostile.err(hostile.read, p)
            return r
    ''')
    for path, (result, detail) in out.items():
        assert result in DENIED, "%s was readable: %r" % (path, detail)
    survived(hearth, neighbour)


def test_read_other_function_code(hearth, neighbour):
    """Attack: read a neighbouring function's code (which holds a secret) at
    its host path, and search the whole sandbox for the secret. Stopped by:
    only the function's own code is bound, at /var/task; the host path does
    not exist in the sandbox."""
    host_path = neighbour.code_path(hearth)
    with open(os.path.join(host_path, "main.py")) as f:
        assert neighbour.secret in f.read(), "the neighbour's code should hold its secret"
    out = attack_ok(hearth, "fs-othercode", '''
        import os, hostile
        SKIP = ("/proc", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
        def handler(event, context):
            host = event["path"]
            tries = {p: hostile.err(hostile.read, p)
                     for p in [host + "/main.py", "/var/task/../" + event["name"] + "/main.py",
                               "/var/" + event["name"] + "/main.py"]}
            found = []
            for root, dirs, files in os.walk("/"):
                dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP]
                for name in files:
                    p = os.path.join(root, name)
                    if os.path.islink(p):
                        continue  # /dev/stdin and co: our own pipes, which block
                    try:
                        if event["secret"] in hostile.read(p, 1 << 20):
                            found.append(p)
                    except OSError:
                        pass
            return {"tries": tries, "found": found, "task": sorted(os.listdir("/var/task"))}
    ''', {"path": host_path, "name": neighbour.name, "secret": neighbour.secret})
    for path, (result, detail) in out["tries"].items():
        assert result in DENIED, "%s was readable: %r" % (path, detail)
    # The secret came in the event: no file the attacker can reach holds it.
    assert out["found"] == [], out["found"]
    assert out["task"] == ["hostile.py", "main.py"], out["task"]
    survived(hearth, neighbour)


def test_read_other_function_tmp(hearth, neighbour):
    """Attack: find what a neighbouring function wrote to its /tmp. Stopped
    by: each worker gets its own tmpfs /tmp in its own mount namespace."""
    survived(hearth, neighbour)  # the neighbour has just written its /tmp file
    out = attack_ok(hearth, "fs-othertmp", '''
        import os, hostile
        def handler(event, context):
            return {"tmp": os.listdir("/tmp"),
                    "read": hostile.err(hostile.read, "/tmp/neighbour-secret")}
    ''')
    assert out["tmp"] == [], out
    assert out["read"][0] == "ENOENT", out
    survived(hearth, neighbour)


def test_write_outside_tmp(hearth, neighbour):
    """Attack: create, overwrite, rename, chmod or delete files anywhere but
    /tmp — the root, its own code (shared by every worker of the function),
    /etc, /usr, /var, /dev, /proc. Stopped by: the root tmpfs, /dev and the
    binds are mounted read-only (EROFS) and the runtime's uid owns nothing
    (EACCES). Rootless, the worker's uid owns its private /tmp, so it may
    chmod that (and only that)."""
    out = attack_ok(hearth, "fs-write", '''
        import os, hostile
        def create(p):
            with open(p, "wb") as f:
                f.write(b"pwned")
        def append(p):
            with open(p, "ab") as f:
                f.write(b"pwned")
        def handler(event, context):
            t = {}
            for p in ["/pwned", "/var/task/pwned", "/etc/pwned", "/usr/pwned", "/usr/bin/pwned",
                      "/var/pwned", "/dev/pwned", "/proc/pwned", "/usr/lib/pwned"]:
                t["create " + p] = hostile.err(create, p)
            for p in ["/var/task/main.py", "/etc/passwd", "/etc/hosts", "/usr/bin/python3"]:
                t["append " + p] = hostile.err(append, p)
            t["mkdir /var/task/d"] = hostile.err(os.mkdir, "/var/task/d")
            t["mkdir /etc/d"] = hostile.err(os.mkdir, "/etc/d")
            t["rename code"] = hostile.err(os.rename, "/var/task/main.py", "/var/task/x.py")
            t["unlink code"] = hostile.err(os.unlink, "/var/task/hostile.py")
            t["chmod code"] = hostile.err(os.chmod, "/var/task/main.py", 0o777)
            t["chmod /tmp"] = hostile.err(os.chmod, "/tmp", 0o700)
            t["utime /etc/passwd"] = hostile.err(os.utime, "/etc/passwd", (0, 0))
            t["symlink /etc/x"] = hostile.err(os.symlink, "/tmp", "/etc/x")
            # Debian's alternatives are links the host's commands go through.
            t["symlink /etc/alternatives/x"] = hostile.err(os.symlink, "/tmp",
                                                           "/etc/alternatives/x")
            t["unlink /etc/alternatives/awk"] = hostile.err(os.unlink, "/etc/alternatives/awk")
            t["rename /etc/alternatives"] = hostile.err(os.rename, "/etc/alternatives",
                                                        "/etc/alt")
            t["rmdir /var/task"] = hostile.err(os.rmdir, "/var/task")
            create("/tmp/allowed")  # the one writable place
            made = [p for p in ["/pwned", "/var/task/pwned", "/etc/pwned", "/usr/pwned",
                                "/var/pwned", "/dev/pwned", "/var/task/d", "/etc/d", "/etc/x",
                                "/etc/alternatives/x", "/etc/alt"]
                    if os.path.lexists(p)]
            return {"tries": t, "made": made, "tmp": open("/tmp/allowed").read()}
    ''')
    if ROOTLESS:
        assert out["tries"].pop("chmod /tmp")[0] == "ok"
    for what, (result, detail) in out["tries"].items():
        assert result in DENIED, "%s succeeded: %r" % (what, detail)
    assert out["made"] == [], out
    assert out["tmp"] == "pwned"
    # The code on the host is untouched.
    code = hearth.data_dir / "code" / "fs-write" / "1"
    assert sorted(os.listdir(code)) == ["hostile.py", "main.py"]
    with open(code / "main.py", "rb") as f:
        assert not f.read().endswith(b"pwned")
    survived(hearth, neighbour)


def test_fill_tmp(hearth, neighbour):
    """Attack: fill /tmp until the host's disk or memory runs out. Stopped
    by: /tmp is a tmpfs of 64 MiB (ENOSPC past it), its pages are charged
    to the worker's memory cgroup, and it is private to the worker; the
    next invocation still runs."""
    out = attack_ok(hearth, "fs-filltmp", '''
        import errno, os
        def handler(event, context):
            if event.get("check"):
                st = os.statvfs("/tmp")
                return {"free": st.f_bavail * st.f_frsize, "files": os.listdir("/tmp")}
            chunk = b"x" * (1 << 20)
            total, error = 0, None
            try:
                with open("/tmp/fill", "wb", buffering=0) as f:
                    while total < (1 << 30):
                        total += f.write(chunk)
            except OSError as e:
                error = errno.errorcode.get(e.errno)
            try:
                with open("/tmp/one-more", "wb") as f:
                    f.write(b"y" * 65536)
                    f.flush()
                more = "ok"
            except OSError as e:
                more = errno.errorcode.get(e.errno)
            return {"error": error, "total": total, "more": more}
    ''', timeout_ms=20000)
    assert out["error"] == "ENOSPC", out
    assert out["more"] == "ENOSPC", out
    assert out["total"] <= 64 << 20, out
    # The same (warm) worker, its /tmp still full, answers the next call.
    r = hearth.invoke("fs-filltmp", json={"check": True})
    assert r.status_code == 200, r.text
    assert r.json()["free"] < 1 << 20, r.json()
    survived(hearth, neighbour)  # the neighbour still writes its own /tmp


def test_device_node(hearth, neighbour):
    """Attack: create a block or character device node (the host's disk,
    /dev/mem) and read through it. Stopped by: seccomp refuses mknod of
    device nodes (EPERM), no capability allows it, and /tmp is nodev."""
    out = attack_ok(hearth, "fs-mknod", '''
        import os, stat, hostile
        def handler(event, context):
            return {
                "blk": hostile.err(os.mknod, "/tmp/vda", stat.S_IFBLK | 0o666, os.makedev(254, 0)),
                "chr": hostile.err(os.mknod, "/tmp/mem", stat.S_IFCHR | 0o666, os.makedev(1, 1)),
                "fifo": hostile.err(os.mknod, "/tmp/fifo", stat.S_IFIFO | 0o600),
                "tmp_nodev": bool(os.statvfs("/tmp").f_flag & os.ST_NODEV),
            }
    ''')
    assert out["blk"][0] == "EPERM", out
    assert out["chr"][0] == "EPERM", out
    assert out["fifo"][0] == "ok", out  # harmless nodes still work
    assert out["tmp_nodev"] is True
    survived(hearth, neighbour)


def test_setuid_binary(hearth, neighbour):
    """Attack: gain root through a setuid-root binary (/usr/bin/su,
    /usr/bin/passwd, /usr/bin/mount), or by making one in /tmp. Stopped by:
    no_new_privs, the nosuid mounts, and a user namespace in which root is
    not mapped. LD_SHOW_AUXV shows what the kernel granted at exec: glibc
    ignores it when a setuid bit took effect (AT_SECURE=1), so the dump
    appearing at all, with AT_EUID = the worker's uid, proves it did not."""
    out = attack_ok(hearth, "fs-setuid", '''
        import os, shutil, subprocess, hostile
        def auxv(argv):
            p = subprocess.run(argv, capture_output=True, timeout=10,
                               env={"LD_SHOW_AUXV": "1", "PATH": "/usr/bin:/bin"})
            vals = {}
            for line in p.stdout.decode("latin-1").splitlines():
                k, _, v = line.partition(":")
                if k in ("AT_UID", "AT_EUID", "AT_SECURE"):
                    vals[k] = v.strip()
            return vals
        def handler(event, context):
            out = {"uid": os.getuid(), "runs": {}}
            for b in ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/newgrp"]:
                if os.path.exists(b) and os.stat(b).st_mode & 0o4000:
                    out["runs"][b] = auxv([b, "--version"])
            shutil.copy("/usr/bin/id", "/tmp/myid")
            out["chmod"] = hostile.err(os.chmod, "/tmp/myid", 0o4755)
            out["tmp_nosuid"] = bool(os.statvfs("/tmp").f_flag & os.ST_NOSUID)
            out["usr_nosuid"] = bool(os.statvfs("/usr").f_flag & os.ST_NOSUID)
            out["su"] = subprocess.run(["/usr/bin/su", "-c", "id -u", "root"], capture_output=True,
                                       stdin=subprocess.DEVNULL, timeout=10).stdout.decode()
            return out
    ''')
    assert out["runs"], "no setuid-root binary found to try: %r" % out
    uid = str(out["uid"])
    for binary, aux in out["runs"].items():
        assert aux.get("AT_EUID") == uid and aux.get("AT_SECURE") == "0", \
            "%s ran with privileges: %r" % (binary, aux)
    assert out["tmp_nosuid"] and out["usr_nosuid"], out
    assert out["su"].strip() != "0", out
    survived(hearth, neighbour)


def test_read_kernel_files(hearth, neighbour):
    """Attack: read kernel memory and knobs — /proc/kcore, /proc/kallsyms,
    /proc/keys, /proc/sys (hostname, core_pattern), /sys — or reconfigure
    the host through /proc/sys. Stopped by: /proc is a fresh procfs of the
    worker's pid namespace with those files masked (bound to /dev/null or
    missing) and /proc/sys etc. covered by an empty read-only tmpfs; there
    is no /sys."""
    out = attack_ok(hearth, "fs-kernel", '''
        import os, hostile
        def handler(event, context):
            r = {p: hostile.err(hostile.read, p) for p in [
                "/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/timer_list",
                "/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
                "/sys/kernel/notes", "/sys/class/net/lo/address"]}
            r["ls /sys"] = hostile.err(os.listdir, "/sys")
            r["ls /proc/sys"] = hostile.err(os.listdir, "/proc/sys")
            def write(p):
                with open(p, "w") as f:
                    f.write("|/tmp/x")
            r["write core_pattern"] = hostile.err(write, "/proc/sys/kernel/core_pattern")
            return r
    ''')
    for path, (result, detail) in out.items():
        if path == "ls /proc/sys":
            assert result == "EACCES" or (result == "ok" and detail == []), out
            continue
        # A masked file reads as /dev/null: nothing.
        assert result in DENIED or (result == "ok" and detail == ""), \
            "%s gave %r" % (path, detail[:200])
    survived(hearth, neighbour)


# Host-wide files of /proc a function has no need for (docs/security.md,
# "What stays visible in /proc"): each reads empty or is refused.
HOST_PROC_FILES = [
    "/proc/stat", "/proc/loadavg", "/proc/uptime", "/proc/schedstat", "/proc/interrupts",
    "/proc/softirqs", "/proc/meminfo", "/proc/vmstat", "/proc/zoneinfo", "/proc/buddyinfo",
    "/proc/swaps", "/proc/diskstats", "/proc/cgroups", "/proc/key-users", "/proc/cmdline",
    "/proc/config.gz", "/proc/partitions", "/proc/latency_stats", "/proc/timer_stats"]
HOST_PROC_DIRS = ["/proc/pressure", "/proc/driver", "/proc/asound"]


def test_read_host_counters(hearth, neighbour):
    """Attack: watch other tenants through the host-wide counters of /proc —
    the fork counter and CPU times in /proc/stat, /proc/loadavg (running
    tasks, last pid), interrupts, memory, paging, disk traffic, stall
    times, cgroups made — and learn the host from /proc/cmdline,
    /proc/config.gz and /proc/partitions. Stopped by: those files are
    covered by /dev/null and those folders by an empty read-only tmpfs on
    the worker's own procfs. What a runtime needs still works: its own
    /proc/self, /proc/cpuinfo, and os.cpu_count() (CPU affinity)."""
    out = attack_ok(hearth, "fs-counters", '''
        import os, hostile
        def handler(event, context):
            r = {p: hostile.err(hostile.read, p) for p in event["files"]}
            for d in event["dirs"]:
                r[d] = hostile.err(os.listdir, d)
            r["cpuinfo"] = hostile.err(hostile.read, "/proc/cpuinfo")
            r["self"] = hostile.err(hostile.read, "/proc/self/status")
            r["cpu_count"] = ["ok", os.cpu_count()]
            return r
    ''', {"files": HOST_PROC_FILES, "dirs": HOST_PROC_DIRS})
    assert "processor" in out.pop("cpuinfo")[1], out
    assert "Uid:" in out.pop("self")[1], out
    assert out.pop("cpu_count")[1] >= 1, out
    for path, (result, detail) in out.items():
        assert result in DENIED or (result == "ok" and not detail), \
            "%s gave %r" % (path, detail[:200] if isinstance(detail, str) else detail)
    survived(hearth, neighbour)


def test_read_daemon_memory_through_init(hearth, neighbour):
    """Attack: the sandbox's pid 1 is a fork of hearthd, so its memory and
    environment are the daemon's: read them through /proc/1/environ,
    /proc/1/mem, /proc/1/fd, /proc/1/cmdline, or process_vm_readv. Stopped
    by: the init drops to another uid (nobody) once the runtime runs, and
    /proc is mounted hidepid=invisible, so /proc/1 does not exist for the
    worker (ENOENT); seccomp kills process_vm_readv (tested with ptrace)."""
    out = attack_ok(hearth, "fs-initmem", '''
        import os, hostile
        def handler(event, context):
            r = {p: hostile.err(hostile.read, p) for p in [
                "/proc/1/environ", "/proc/1/mem", "/proc/1/maps", "/proc/1/auxv",
                "/proc/1/cmdline"]}
            r["fd"] = hostile.err(os.listdir, "/proc/1/fd")
            r["cwd"] = hostile.err(os.readlink, "/proc/1/cwd")
            return r
    ''')
    for what, (result, detail) in out.items():
        assert result == "ENOENT", "%s: %r" % (what, detail)
        assert LEAK_VALUE not in str(detail)
    survived(hearth, neighbour)
