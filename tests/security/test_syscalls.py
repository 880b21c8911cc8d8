"""Hostile functions against the kernel's system-call surface: ptrace and
process_vm_readv, mount, new namespaces, keyrings, bpf, perf events,
userfaultfd, io_uring, TIOCSTI, the x32 and i386 entry points, kernel
modules, reboot, personality and file handles.

Each test deploys a function that makes the calls through ctypes (raw
x86_64 numbers, see HOSTILE in conftest.py), asserts the attack failed —
EPERM from the seccomp allowlist, or the worker killed by SIGSYS, which the
API answers 502 sandbox_violation (assert_killed) — and ends with
survived(): the daemon answers and this module's neighbour still serves.
"""

import os
import random
import signal
import subprocess
import time

import pytest

from conftest import (assert_error, attack, attack_ok, py, rootful_only, survived,
                      wait_until)


def assert_killed(hearth, neighbour, name, r, syscall):
    """The worker died by SIGSYS: 502 sandbox_violation, and the function's
    log says so; the daemon and the neighbour are fine. The note names the
    call when the kernel's audit record (read from /dev/kmsg, a moment
    later, and rate-limited by the kernel) reached the daemon in time: it
    must then name `syscall`, and nothing else."""
    assert r.status_code == 502, "the forbidden call returned: %d %s" % (r.status_code, r.text)
    survived(hearth, neighbour)
    assert_error(r, 502, "sandbox_violation")

    def notes():
        return [rec["message"] for rec in hearth.log_records(name)
                if "sandbox violation" in rec["message"]]
    found = wait_until(notes, 3.0)
    assert found, "no sandbox violation note in the function's log"
    named = [m for m in found if "a forbidden system call" not in m]
    assert all(" %s " % syscall in m for m in named), (syscall, found)


def has_i386_entry():
    """Whether this kernel runs i386 system calls (int $0x80) from a 64-bit
    process: tried here, outside any sandbox, with the harmless getpid."""
    probe = "import ctypes, mmap\n" + I386_GETPID + "print(i386_getpid())\n"
    p = subprocess.run(["/usr/bin/python3", "-I", "-c", probe], capture_output=True, timeout=10)
    return p.returncode == 0


# mov eax, 20 (i386 getpid) ; int $0x80 ; ret — run from an executable page.
I386_GETPID = '''
def i386_getpid():
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")
    return ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
'''


def test_ptrace(hearth, neighbour):
    """Attack: PTRACE_ATTACH to the sandbox's init (a fork of the daemon, with
    the daemon's memory) to read or patch it. Stopped by: seccomp kills any
    ptrace call (SIGSYS → 502 sandbox_violation); even without the filter the
    init is another uid and the worker has no CAP_SYS_PTRACE."""
    r = attack(hearth, "sc-ptrace", '''
        import hostile
        def handler(event, context):
            return hostile.sys_call(101, 16, 1, 0, 0)  # ptrace(PTRACE_ATTACH, 1)
    ''')
    assert_killed(hearth, neighbour, "sc-ptrace", r, "ptrace")


def test_process_vm_readv(hearth, neighbour):
    """Attack: read the init's (the daemon's) memory with process_vm_readv,
    which needs no ptrace attach. Stopped by: seccomp kills the call."""
    r = attack(hearth, "sc-vmread", '''
        import ctypes, hostile
        def handler(event, context):
            buf = ctypes.create_string_buffer(4096)
            local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 4096)
            remote = (ctypes.c_void_p * 2)(0x400000, 4096)
            return hostile.sys_call(310, 1, ctypes.addressof(local), 1,
                                    ctypes.addressof(remote), 1, 0)
    ''')
    assert_killed(hearth, neighbour, "sc-vmread", r, "process_vm_readv")


def test_mount(hearth, neighbour):
    """Attack: change the mount table — mount a fresh tmpfs, sysfs or proc,
    remount / read-write, unmount a mask over /proc, pivot_root, chroot, or
    the new mount API (fsopen, open_tree). Stopped by: seccomp (EPERM for
    the whole mount API); the worker also holds no CAP_SYS_ADMIN over its
    mount namespace, which belongs to the daemon's user namespace."""
    out = attack_ok(hearth, "sc-mount", '''
        from ctypes import c_char_p as s
        import hostile
        def handler(event, context):
            c = hostile.sys_call
            return {
                "mount tmpfs": c(165, s(b"none"), s(b"/tmp"), s(b"tmpfs"), 0, 0),
                "mount sysfs": c(165, s(b"sysfs"), s(b"/tmp"), s(b"sysfs"), 0, 0),
                "remount / rw": c(165, 0, s(b"/"), 0, 0x20, 0),  # MS_REMOUNT
                "umount /proc/sys": c(166, s(b"/proc/sys"), 2),  # MNT_DETACH
                "pivot_root": c(155, s(b"/tmp"), s(b"/tmp")),
                "chroot": c(161, s(b"/tmp")),
                "fsopen": c(430, s(b"tmpfs"), 0),
                "open_tree": c(428, -100, s(b"/usr"), 1),  # OPEN_TREE_CLONE
                "mounts": open("/proc/self/mountinfo").read().count("\\n"),
            }
    ''')
    mounts = out.pop("mounts")
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    r = hearth.invoke("sc-mount", json={})
    assert r.json()["mounts"] == mounts, "the mount table changed"
    survived(hearth, neighbour)


def test_new_namespaces(hearth, neighbour):
    """Attack: create a new user namespace (where the function would be
    root, with the capabilities of that namespace — the usual first step of
    kernel exploits), or any other namespace, with unshare, clone or
    clone3, or join one with setns. Stopped by: seccomp refuses unshare and
    setns, clone with any CLONE_NEW* flag (EPERM), and clone3 (ENOSYS, so
    libc falls back to clone); /proc/1/ns/* belongs to another uid."""
    out = attack_ok(hearth, "sc-unshare", '''
        import ctypes, os, hostile
        NEWUSER, NEWNS, NEWNET = 0x10000000, 0x00020000, 0x40000000
        def clone(flags):
            r = hostile.sys_call(56, flags | 17, 0, 0, 0, 0)  # | SIGCHLD, no stack: like fork
            if r[0] == 0:
                os._exit(0)  # the namespace was made: leave at once
            if r[0] > 0:
                os.waitpid(r[0], 0)
            return r
        def handler(event, context):
            args = (ctypes.c_uint64 * 11)(NEWUSER | 17)  # struct clone_args, flags first
            r = {
                "unshare user": hostile.sys_call(272, NEWUSER),
                "unshare mount": hostile.sys_call(272, NEWNS),
                "unshare net": hostile.sys_call(272, NEWNET),
                "clone user": clone(NEWUSER),
                "clone net": clone(NEWNET),
                "setns": hostile.sys_call(308, 0, NEWUSER),
                "clone3": hostile.sys_call(435, ctypes.addressof(args), ctypes.sizeof(args)),
                "open init ns": hostile.err(os.open, "/proc/1/ns/user", os.O_RDONLY),
                "user ns": os.readlink("/proc/self/ns/user"),
            }
            return r
    ''')
    ns_before = out.pop("user ns")
    assert out.pop("clone3") == [-1, "ENOSYS"]
    assert out.pop("open init ns")[0] == "ENOENT"  # pid 1 is hidden (hidepid)
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    assert hearth.invoke("sc-unshare", json={}).json()["user ns"] == ns_before
    survived(hearth, neighbour)


def test_keyctl(hearth, neighbour):
    """Attack: use the kernel keyrings (shared per uid, a frequent source of
    kernel bugs and of other processes' secrets). Stopped by: seccomp
    refuses keyctl, add_key and request_key (EPERM)."""
    out = attack_ok(hearth, "sc-keyctl", '''
        from ctypes import c_char_p as s
        import hostile
        def handler(event, context):
            return {
                "keyctl": hostile.sys_call(250, 0, -3, 1),  # GET_KEYRING_ID session, create
                "add_key": hostile.sys_call(248, s(b"user"), s(b"x"), s(b"secret"), 6, -2),
                "request_key": hostile.sys_call(249, s(b"user"), s(b"x"), 0, -2),
            }
    ''')
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    survived(hearth, neighbour)


def test_bpf(hearth, neighbour):
    """Attack: load a BPF program (verifier bugs are a classic kernel
    escalation). Stopped by: seccomp kills bpf (SIGSYS → 502
    sandbox_violation)."""
    r = attack(hearth, "sc-bpf", '''
        import ctypes, hostile
        def handler(event, context):
            attr = ctypes.create_string_buffer(128)
            return hostile.sys_call(321, 5, ctypes.addressof(attr), 128)  # BPF_PROG_LOAD
    ''')
    assert_killed(hearth, neighbour, "sc-bpf", r, "bpf")


def test_perf_event_open(hearth, neighbour):
    """Attack: open a perf event (kernel profiling data, side channels, a
    long list of CVEs). Stopped by: seccomp (EPERM)."""
    out = attack_ok(hearth, "sc-perf", '''
        import ctypes, hostile
        def handler(event, context):
            attr = (ctypes.c_uint32 * 32)()
            attr[0], attr[1] = 1, 128  # PERF_TYPE_SOFTWARE, size
            return hostile.sys_call(298, ctypes.addressof(attr), 0, -1, -1, 0)
    ''')
    assert out == [-1, "EPERM"], out
    survived(hearth, neighbour)


def test_userfaultfd(hearth, neighbour):
    """Attack: create a userfaultfd, which lets an exploit pause the kernel
    mid-copy to win a race. Stopped by: seccomp (EPERM)."""
    out = attack_ok(hearth, "sc-uffd", '''
        import hostile
        def handler(event, context):
            return hostile.sys_call(323, 0)
    ''')
    assert out == [-1, "EPERM"], out
    survived(hearth, neighbour)


def test_io_uring(hearth, neighbour):
    """Attack: set up an io_uring (a large, young kernel interface that
    also performs I/O outside the reach of seccomp). Stopped by: seccomp
    refuses io_uring_setup, io_uring_enter and io_uring_register (EPERM)."""
    out = attack_ok(hearth, "sc-iouring", '''
        import ctypes, hostile
        def handler(event, context):
            params = ctypes.create_string_buffer(120)
            return {
                "setup": hostile.sys_call(425, 8, ctypes.addressof(params)),
                "enter": hostile.sys_call(426, 0, 1, 0, 0, 0, 0),
                "register": hostile.sys_call(427, 0, 0, 0, 0),
            }
    ''')
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    survived(hearth, neighbour)


def test_tiocsti(hearth, neighbour):
    """Attack: push characters into a terminal's input queue with TIOCSTI
    (typing commands into whatever shell shares the tty), also with high
    bits set in the request — the kernel reads it as 32 bits, so a filter
    comparing 64 bits would let TIOCSTI|1<<32 through — and TIOCLINUX.
    Stopped by: the worker has no controlling tty (own session, fd 0 is
    /dev/null), and seccomp compares the low 32 bits of the request (EPERM).
    A harmless ioctl still reaches the kernel (ENOTTY), so EPERM is the
    filter's."""
    out = attack_ok(hearth, "sc-tiocsti", '''
        import ctypes, hostile
        def handler(event, context):
            ch = ctypes.c_char(b"x")
            p = ctypes.addressof(ch)
            return {
                "TIOCSTI": hostile.sys_call(16, 0, 0x5412, p),
                "TIOCSTI|1<<32": hostile.sys_call(16, 0, 0x5412 | (1 << 32), p),
                "TIOCSTI|0xffffffff<<32": hostile.sys_call(16, 0, 0xffffffff00005412, p),
                "TIOCLINUX": hostile.sys_call(16, 0, 0x541C, p),
                "TIOCLINUX|1<<32": hostile.sys_call(16, 0, 0x541C | (1 << 32), p),
                "TCGETS": hostile.sys_call(16, 0, 0x5401, p),
            }
    ''')
    assert out.pop("TCGETS") == [-1, "ENOTTY"]
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    survived(hearth, neighbour)


def test_x32_syscall(hearth, neighbour):
    """Attack: call through the x32 ABI (syscall number | 0x40000000), which
    a filter written for x86_64 numbers alone would not match. Stopped by:
    the filter pins the architecture: an x32 number kills the worker (502
    sandbox_violation)."""
    r = attack(hearth, "sc-x32", '''
        import hostile
        def handler(event, context):
            return hostile.sys_call(0x40000000 | 39)  # x32 getpid
    ''')
    assert_killed(hearth, neighbour, "sc-x32", r, "x32 syscall 39")


def test_i386_syscall(hearth, neighbour):
    """Attack: call through the i386 entry point (int $0x80), where the
    numbers mean other calls (i386 20 is getpid, x86_64 20 is writev), to
    slip past an x86_64 filter. Stopped by: the filter checks the
    architecture of every call: an i386 call kills the worker (502
    sandbox_violation). On a kernel without i386 emulation (this test asks
    the host's kernel first) int $0x80 itself faults: 502 function_crashed,
    SIGSEGV."""
    r = attack(hearth, "sc-i386", "import ctypes, mmap\n" + I386_GETPID + py('''
        def handler(event, context):
            return i386_getpid()
    '''))
    if has_i386_entry():
        assert_killed(hearth, neighbour, "sc-i386", r, "syscall 20")
    else:
        assert_error(r, 502, "function_crashed")
        assert "signal 11" in r.json()["error"]["message"], r.text
        survived(hearth, neighbour)


def test_kernel_module(hearth, neighbour):
    """Attack: load code into the kernel with finit_module (a kexec or
    init_module would do the same). Stopped by: seccomp kills module and
    kexec calls (502 sandbox_violation); no CAP_SYS_MODULE either."""
    r = attack(hearth, "sc-module", '''
        from ctypes import c_char_p as s
        import hostile
        def handler(event, context):
            return hostile.sys_call(313, -1, s(b""), 0)  # finit_module(bad fd)
    ''')
    assert_killed(hearth, neighbour, "sc-module", r, "finit_module")


def test_reboot(hearth, neighbour):
    """Attack: reboot the host (sent with a wrong magic number, so that it
    would be harmless even if it got through). Stopped by: seccomp kills
    reboot (502 sandbox_violation); no CAP_SYS_BOOT either."""
    r = attack(hearth, "sc-reboot", '''
        import hostile
        def handler(event, context):
            return hostile.sys_call(169, 0, 0, 0, 0)
    ''')
    assert_killed(hearth, neighbour, "sc-reboot", r, "reboot")


def test_personality(hearth, neighbour):
    """Attack: switch off address-space randomisation or make every mapping
    executable with personality (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) to
    ease an exploit of the runtime. Stopped by: seccomp allows only the
    harmless personality values (EPERM); the query still works."""
    out = attack_ok(hearth, "sc-persona", '''
        import hostile
        def handler(event, context):
            return {
                "ADDR_NO_RANDOMIZE": hostile.sys_call(135, 0x0040000),
                "READ_IMPLIES_EXEC": hostile.sys_call(135, 0x0400000),
                "query": hostile.sys_call(135, 0xffffffff),
            }
    ''')
    assert out.pop("query")[1] is None, out
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    survived(hearth, neighbour)


def test_open_by_handle_at(hearth, neighbour):
    """Attack: open a file of the host by its handle ("shocker": a guessed
    inode handle bypasses the mount namespace). Stopped by: seccomp refuses
    open_by_handle_at and name_to_handle_at (EPERM); no CAP_DAC_READ_SEARCH
    either."""
    out = attack_ok(hearth, "sc-handle", '''
        import ctypes, os, hostile
        def handler(event, context):
            fh = (ctypes.c_uint32 * 34)(128, 1, 2, 0)  # handle_bytes, type, inode 2 (a root)
            fd = os.open("/usr", os.O_RDONLY)
            mount_id = ctypes.c_int()
            return {
                "open_by_handle_at": hostile.sys_call(304, fd, ctypes.addressof(fh), 0),
                "name_to_handle_at": hostile.sys_call(
                    303, fd, ctypes.c_char_p(b"bin"), ctypes.addressof(fh),
                    ctypes.addressof(mount_id), 0),
            }
    ''')
    for what, (ret, error) in out.items():
        assert ret == -1 and error == "EPERM", (what, ret, error)
    survived(hearth, neighbour)


def _uid_procs(uid):
    """Pids of the host's processes whose real uid is `uid`."""
    out = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/status" % d) as f:
                uids = [l for l in f if l.startswith("Uid:")]
        except (OSError, ValueError):
            continue
        if uids and int(uids[0].split()[1]) == uid:
            out.append(int(d))
    return out


def _kmsg_kill_seen(fd, uid, nr, timeout=3.0):
    """Whether the kernel logged a seccomp kill of `nr` by `uid` on `fd`
    (/dev/kmsg opened at its end): it drops records past its rate limit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = os.read(fd, 8192).decode("latin-1")
        except BlockingIOError:
            time.sleep(0.05)
            continue
        except BrokenPipeError:
            continue
        if "type=1326" in rec and " uid=%d " % uid in rec and " syscall=%d " % nr in rec:
            return True
    return False


@rootful_only("the audit records (/dev/kmsg) and the uid range need root")
def test_planted_violation_note(hearth_factory):
    """Attack: make another function's violation note name a call it never
    made. The planter forks a child that the filter kills for ptrace: its
    runtime lives on, so no report claims the kernel's audit record of that
    kill. The planter is deleted; its uid (lowest free slot) goes to the
    next function's worker, which the filter kills for bpf. Stopped by: a
    report claims only the record of its own worker's runtime (the host pid
    its sandbox init reported) read since that worker started; the
    planter's record is left alone."""
    # A uid range of its own: no other daemon's worker may hold the uid. No
    # pre-built sandboxes: the victim must get the planter's uid next, and a
    # pool would hand out uids in the order its sandboxes were built.
    h = hearth_factory("--uid-range", "%d:8" % random.randrange(3000000, 4000000, 8),
                       "--prebuilt-max", "0")
    kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(kmsg, 0, os.SEEK_END)
        out = attack_ok(h, "sc-planter", '''
            import os, hostile
            def handler(event, context):
                child = os.fork()
                if child == 0:
                    hostile.sys_call(101, 16, 1, 0, 0)  # ptrace: the filter kills this child
                    os._exit(0)
                _, st = os.waitpid(child, 0)
                return {"uid": os.getuid(), "signal": os.WTERMSIG(st) if os.WIFSIGNALED(st) else 0}
        ''')
        assert out["signal"] == signal.SIGSYS, out
        uid = out["uid"]
        if not _kmsg_kill_seen(kmsg, uid, 101):
            pytest.skip("the kernel logged no audit record of the planted kill (rate limit)")
    finally:
        os.close(kmsg)
    assert h.delete("sc-planter").status_code in (200, 204)
    assert wait_until(lambda: not _uid_procs(uid), 10.0), "the planter's worker lives on"
    r = attack(h, "sc-victim", '''
        import ctypes, os, hostile
        def handler(event, context):
            print("victim uid", os.getuid(), flush=True)
            attr = ctypes.create_string_buffer(128)
            return hostile.sys_call(321, 5, ctypes.addressof(attr), 128)  # BPF_PROG_LOAD
    ''')
    assert_error(r, 502, "sandbox_violation")
    records = wait_until(lambda: [rec["message"] for rec in h.log_records("sc-victim")
                                  if "sandbox violation" in rec["message"]], 3.0)
    assert records, "no sandbox violation note in the victim's log"
    uids = [rec["message"] for rec in h.log_records("sc-victim") if "victim uid" in rec["message"]]
    assert uids and uids[0].split()[-1] == str(uid), ("the victim got another uid", uids, uid)
    assert not any(" ptrace " in m for m in records), records
    assert all(" bpf " in m or "a forbidden system call" in m for m in records), records
