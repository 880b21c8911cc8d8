#!/usr/bin/env bash
# Installs the Debian packages Hearth needs to build, run and test, when
# any is missing. As root it runs apt-get; otherwise it prints the line to
# run and fails.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libuv1-dev libjansson-dev libseccomp-dev libsqlite3-dev libarchive-dev
  python3
)
if [ "${1:-}" = "--test" ]; then
  packages+=(libcmocka-dev python3-pytest python3-requests)
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(wrk)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hearth: missing Debian packages; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "hearth: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
