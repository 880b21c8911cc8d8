"""hearth_harness.proc — /proc and cgroup bookkeeping (no psutil: Debian's
python3 stdlib only).

Owns: finding a daemon's descendants, workers and spawner; whether a
process is still the one we saw; the resources a daemon holds (RSS, open
fds, cgroup leaves, mounts) for the soak and the leak tests; removing the
cgroup folders of a daemon killed with -9.
Must never: signal anything; write anywhere but the cgroup folders named
after a daemon pid it is given.
"""

import glob
import os


def _stat(pid):
    """Returns (ppid, starttime, state) of `pid`, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[19]), rest[0]


def _pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendant_tree(root, zombies=True):
    """The descendants of `root` as {pid: (ppid, starttime)}; without
    zombies when `zombies` is False."""
    children = {}
    for pid in _pids():
        st = _stat(pid)
        if st and (zombies or st[2] != "Z"):
            children.setdefault(st[0], []).append((pid, st[1]))
    out, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, start in children.get(parent, []):
            if pid not in out:
                out[pid] = (parent, start)
                todo.append(pid)
    return out


def descendants(root):
    """The descendants of `root` as a set of (pid, starttime)."""
    return {(pid, start) for pid, (_, start) in descendant_tree(root).items()}


def alive(pid, start):
    st = _stat(pid)
    return st is not None and st[1] == start and st[2] != "Z"


def procs_with_cwd_under(path):
    """(pid, starttime) of processes whose cwd is at or below `path`."""
    path = os.path.realpath(str(path))
    found = set()
    for pid in _pids():
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            continue
        if cwd == path or cwd.startswith(path + "/"):
            st = _stat(pid)
            if st and st[2] != "Z":
                found.add((pid, st[1]))
    return found


def procs_with_env(marker):
    """Host pids of live processes whose environment contains `marker`
    (works whatever pid namespace the worker sees itself in)."""
    needle = marker.encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        st = _stat(pid)
        if needle in env and st and st[2] != "Z":
            found.append(pid)
    return found


def remove_cgroups_of(pid):
    """A daemon killed with -9 cannot remove its cgroup folders (the next
    daemon sweeps them at start); the harness leaves none behind either:
    every folder under each hearth-<pid>, deepest first, then itself."""
    for top in daemon_cgroups(pid):
        for leaf in sorted(glob.glob(top + "/**/", recursive=True), reverse=True):
            try:
                os.rmdir(leaf)
            except OSError:
                pass


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def prebuilt_runtimes(root):
    """Host pids of the unclaimed pre-built runtimes below pid `root` (a
    daemon): HEARTH_PREBUILT=1 and no HEARTH_HANDLER= in /proc/<pid>/environ.
    A sandbox init in front of a runtime may carry the same environment: the
    runtime is the one whose parent matches too."""
    def unclaimed(pid):
        env = _environ(pid)
        return env is not None and b"HEARTH_PREBUILT=1" in env and \
            not any(e.startswith(b"HEARTH_HANDLER=") for e in env)
    pids = {pid for pid, _start in descendants(root) if unclaimed(pid)}
    inner = {pid for pid in pids if (_stat(pid) or (None,))[0] in pids}
    return inner or pids


def spawner_pid(hearth):
    """The pid of the daemon's "hearth-spawner" child, or None."""
    for pid in _pids():
        st = _stat(pid)
        if st and st[0] == hearth.pid and st[2] != "Z":
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == "hearth-spawner":
                        return pid
            except OSError:
                pass
    return None



def status_kib(pid, field="VmRSS"):
    """One "kB" field of /proc/<pid>/status (VmRSS, RssAnon...), 0 if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid):
    """Open file descriptors of `pid` (None when it is gone or not ours to read)."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def child_pid(parent, name):
    """A live child of `parent` whose comm is `name`, or None."""
    for pid in _pids():
        st = _stat(pid)
        if st and st[0] == parent and st[2] != "Z" and comm(pid) == name:
            return pid
    return None


def daemon_cgroups(pid):
    """The cgroup folders a daemon made for its workers: every
    /sys/fs/cgroup/.../hearth-<pid> (one per v1 controller, or one on v2)."""
    return sorted(glob.glob("/sys/fs/cgroup/*/**/hearth-%d" % pid, recursive=True) +
                  glob.glob("/sys/fs/cgroup/**/hearth-%d" % pid, recursive=True))


def cgroup_leaves(pid):
    """How many folders sit below the daemon's cgroups (workers' leaves,
    summed over controllers); a leak shows as a count that only grows."""
    seen, n = set(), 0
    for base in daemon_cgroups(pid):
        if base in seen:
            continue
        seen.add(base)
        for _root, dirs, _files in os.walk(base):
            n += len(dirs)
    return n


def mount_count(pid=None):
    """Lines of /proc/<pid>/mountinfo (the host's when pid is None): a
    sandbox that leaks a mount into the daemon's namespace shows here."""
    path = "/proc/%s/mountinfo" % (pid if pid else "self")
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return None
