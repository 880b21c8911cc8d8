#!/usr/bin/env bash
# cgroup2.sh — runs a built test_cgroup binary inside a small qemu VM booted
# with cgroup v2 only, so sandbox_cgroup.c's v2 path is exercised even on a
# host that only has v1 controllers. Builds a throwaway initramfs (busybox,
# the binary, its shared libraries, tests/vm/init.sh as /init), boots it,
# echoes the console and exits with the test's status.
#
# Usage: tests/vm/cgroup2.sh path/to/test_cgroup
# Exit: the test's status; 77 (skip) when qemu, a kernel or a static busybox
# is missing; 1 when the VM did not finish or v2 was not actually used.
# Environment: HEARTH_VM_KERNEL (a vmlinuz; default /var/cache/hearth/vmlinuz,
#   else the newest /boot/vmlinuz-*),
# HEARTH_VM_TIMEOUT (seconds, default 300).
#
# Never installs anything, never touches the host's cgroups; everything it
# creates lives in one mktemp directory that is removed on exit.
set -euo pipefail

SKIP=77
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

skip() {
    echo "cgroup2.sh: SKIP: $*" >&2
    exit "$SKIP"
}

[[ $# -eq 1 ]] || {
    echo "usage: $0 path/to/test_cgroup" >&2
    exit 2
}
test_bin="$1"
[[ -x "$test_bin" ]] || {
    echo "cgroup2.sh: $test_bin is not an executable" >&2
    exit 2
}

qemu="$(command -v qemu-system-x86_64 || true)"
[[ -n "$qemu" ]] || skip "qemu-system-x86_64 not found (Debian package qemu-system-x86)"

kernel="${HEARTH_VM_KERNEL:-}"
if [[ -z "$kernel" && -r /var/cache/hearth/vmlinuz ]]; then
    kernel=/var/cache/hearth/vmlinuz # scripts/deps.sh --test puts it there
fi
if [[ -z "$kernel" ]]; then
    kernel="$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n 1 || true)"
fi
[[ -n "$kernel" ]] || skip "no kernel: run scripts/deps.sh --test as root, or set HEARTH_VM_KERNEL"
[[ -r "$kernel" ]] || skip "$kernel is not readable"

busybox="$(command -v busybox || true)"
[[ -n "$busybox" ]] || skip "busybox not found (Debian package busybox-static)"
# A dynamic busybox would need its own libraries in the VM; insist on static.
if ldd "$busybox" >/dev/null 2>&1; then
    skip "$busybox is dynamically linked (install Debian package busybox-static)"
fi
command -v ldd >/dev/null || skip "ldd not found"

work="$(mktemp -d /tmp/hearth-vm.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,hearth}

# busybox and every applet as a link: cheap, and the test runs /bin/sh -c.
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -s busybox "$root/bin/$applet"
done

cp "$test_bin" "$root/hearth/test"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init" "$root/hearth/test"

# Each library at the path ldd resolved, the loader at its exact path.
libdirs=()
while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
    libdirs+=("$(dirname "$lib")")
done < <(ldd "$test_bin" | awk '/=> \// { print $3; next } /^[[:space:]]*\// { print $1 }')
(IFS=:; echo "${libdirs[*]}") >"$root/hearth/ld_library_path"

img="$work/initrd.gz"
(cd "$root" && find . -mindepth 1 | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
    "$busybox" gzip -1 >"$img"

accel=tcg
[[ -w /dev/kvm ]] && accel=kvm
timeout_s="${HEARTH_VM_TIMEOUT:-300}"
log="$work/console.log"

echo "cgroup2.sh: booting $(basename "$kernel") ($accel) with $(basename "$test_bin")," \
    "initramfs $(du -k "$img" | cut -f1) KiB"
start=$(date +%s)
set +e
timeout "$timeout_s" "$qemu" -accel "$accel" -m 768 -smp 2 -nographic -no-reboot \
    -nodefaults -serial stdio -monitor none \
    -kernel "$kernel" -initrd "$img" \
    -append "console=ttyS0 panic=-1 cgroup_no_v1=all quiet" </dev/null 2>&1 |
    tr -d '\r' | tee "$log"
qemu_rc=${PIPESTATUS[0]}
set -e
echo "cgroup2.sh: VM ran $(($(date +%s) - start)) s (qemu exit $qemu_rc)"

marker="$(grep -a -o 'HEARTH-VM-RESULT [0-9]*' "$log" | tail -n 1 || true)"
if [[ -z "$marker" ]]; then
    [[ $qemu_rc -eq 124 ]] && echo "cgroup2.sh: timed out after ${timeout_s} s" >&2
    echo "cgroup2.sh: FAIL: the VM did not finish (no HEARTH-VM-RESULT line)" >&2
    exit 1
fi
status="${marker##* }"
if [[ "$status" -eq 125 ]]; then
    echo "cgroup2.sh: FAIL: the VM's setup failed before the test ran (see hearth-vm lines)" >&2
    exit 1
fi
if [[ "$status" -ne 0 ]]; then
    echo "cgroup2.sh: FAIL: test exited $status inside the VM" >&2
    exit "$status"
fi
# A pass with skipped tests would prove nothing about v2: every controller
# must have been taken on the unified hierarchy.
for ctrl in memory pids cpu; do
    if ! grep -aq "^$ctrl: cgroup v2 at " "$log"; then
        echo "cgroup2.sh: FAIL: $ctrl was not used through cgroup v2 (see report above)" >&2
        exit 1
    fi
done
if grep -aq '^\[  SKIPPED \]' "$log"; then
    echo "cgroup2.sh: FAIL: tests were skipped inside the VM" >&2
    exit 1
fi
echo "cgroup2.sh: PASS: unit_cgroup passed on cgroup v2"
