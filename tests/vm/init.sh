#!/bin/sh
# init.sh — /init of the throwaway VM that tests/vm/cgroup2.sh boots: sets up
# a cgroup-v2-only system the way systemd would leave a daemon (alone in a
# non-root "hearth.service" cgroup with memory, pids and cpu delegated to
# it), runs the test binary there, prints "HEARTH-VM-RESULT <status>" and
# powers off. Runs under busybox sh as PID 1; it must never return (the
# kernel would panic), so every path ends in poweroff.

export PATH=/bin
TEST=/hearth/test
CG=/sys/fs/cgroup

# Status 125 means the VM's own setup failed, before the test ran.
finish() {
    echo "HEARTH-VM-RESULT $1"
    sync
    poweroff -f
    sleep 60 # poweroff -f does not return; this only keeps PID 1 alive meanwhile
}

mount -t proc proc /proc || finish 125
mount -t sysfs sysfs /sys || finish 125
mount -t devtmpfs devtmpfs /dev || finish 125
mount -t tmpfs tmpfs /tmp || finish 125
mount -t cgroup2 cgroup2 "$CG" || finish 125

# Debian's LD path is compiled in, but the libraries sit at ldd's paths.
if [ -f /hearth/ld_library_path ]; then
    LD_LIBRARY_PATH="$(cat /hearth/ld_library_path)"
    export LD_LIBRARY_PATH
fi

echo "hearth-vm: kernel $(uname -r), $(nproc) cpus"
echo "hearth-vm: root controllers: $(cat "$CG/cgroup.controllers")"
if awk '$3 == "cgroup" { found = 1 } END { exit !found }' /proc/mounts; then
    echo "hearth-vm: a cgroup v1 hierarchy is mounted, not a v2-only system"
    finish 125
fi

echo "+memory +pids +cpu" >"$CG/cgroup.subtree_control" || finish 125
mkdir "$CG/hearth.service" || finish 125
echo "hearth-vm: hearth.service controllers: $(cat "$CG/hearth.service/cgroup.controllers")"

# The test is the only process in hearth.service, as a service's main
# process is: it is moved in by its own pid, then exec'd. PID 1 stays at
# the root (which v2 exempts from the no-internal-process rule), so it does
# not make the service cgroup busy the way a real daemon's would not be.
sh -c 'echo $$ >'"$CG"'/hearth.service/cgroup.procs && exec "$0"' "$TEST"
status=$?

echo "hearth-vm: cgroups left under hearth.service after the test:"
find "$CG/hearth.service" -mindepth 1 -type d
echo "hearth-vm: hearth.service subtree_control after the test: $(cat "$CG/hearth.service/cgroup.subtree_control")"
finish "$status"
