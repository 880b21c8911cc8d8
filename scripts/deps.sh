#!/usr/bin/env bash
# Installs the Debian packages Hearth needs to build, run and test, when
# any is missing. As root it runs apt-get; otherwise it prints the line to
# run and fails.
#
# --test also fetches a Debian kernel image for tests/vm (cgroup v2 in a
# VM) into /var/cache/hearth/vmlinuz: only the vmlinuz is taken out of the
# package, nothing is installed into /boot.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libuv1-dev libjansson-dev libseccomp-dev libsqlite3-dev libarchive-dev
  libsodium-dev
  libmnl-dev libnftables-dev # egress: veth pairs over rtnetlink, Hearth's nftables table
  slirp4netns # egress without root: user-mode networking for a worker's namespace
  libgnutls28-dev
  libcurl4-gnutls-dev # outbound HTTP (result callbacks, the hearth CLI); the GnuTLS flavour, like the rest
  libyaml-dev # the hearth CLI reads stack files (hearth.yml)
  python3
  tzdata # schedules' time zones: src/events/cron.c reads /usr/share/zoneinfo
)
if [ "${1:-}" = "--test" ]; then
  packages+=(libcmocka-dev iproute2 python3-pytest python3-requests qemu-system-x86 busybox-static nodejs
    python3-jsonschema # validates docs/openapi.json against the OpenAPI 3.1 schema (tests/e2e/test_openapi.py)
    prometheus # promtool lints /metrics (tests/e2e/test_metrics.py)
    openssl curl systemd
    git # runtimes/c/README.md's build block finds the checkout with git (tests/e2e/test_readme_blocks.py)
    python3-croniter python3-tz # the reference for schedule fire times (tests/unit/test_cron_reference.py)
    awscli python3-boto3 # the AWS Lambda API against the real clients (tests/e2e/test_aws.py)
    chromium chromium-driver python3-selenium # the dashboard in a headless browser (tests/e2e/test_ui.py)
    clang libclang-rt-14-dev # tests/fuzz: clang -fsanitize=fuzzer and libFuzzer's runtime
    clang-format # scripts/check-format.sh (ctest check_format): the tree is as .clang-format writes it
  )
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(wrk python3-botocore) # botocore: bench/qualifiers.sh signs its AWS request
fi

VM_KERNEL=/var/cache/hearth/vmlinuz

install_missing() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "hearth: missing Debian packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "hearth: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests want promtool only: the Prometheus server the package
  # enables (on :9090) is stopped and disabled, unless it was already here.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
}

# The kernel that linux-image-amd64 points at, its vmlinuz extracted from
# the downloaded package (installing it would pull in systemd and an initrd).
fetch_vm_kernel() {
  [ -r "$VM_KERNEL" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "hearth: no $VM_KERNEL: tests/vm will skip (run scripts/deps.sh --test as root)" >&2
    return 0
  fi
  local pkg tmp
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "hearth: cannot tell which kernel linux-image-amd64 means" >&2; exit 1; }
  echo "hearth: fetching the vmlinuz of $pkg for tests/vm" >&2
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true # apt downloads as _apt where it can
  (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null &&
    dpkg-deb --fsys-tarfile ./*.deb | tar -x --wildcards './boot/vmlinuz-*')
  mkdir -p "$(dirname "$VM_KERNEL")"
  install -m 0644 "$tmp"/boot/vmlinuz-* "$VM_KERNEL"
  rm -rf "$tmp"
}

install_missing
if [ "${1:-}" = "--test" ]; then
  fetch_vm_kernel
fi
