#!/usr/bin/env bash
# Install, with apt-get, only the Debian packages this tree needs that are
# missing. Safe to run again; does nothing when everything is there.
set -euo pipefail
pkgs=(build-essential pkg-config libyaml-dev libseccomp-dev libcap-dev libkmod-dev
      libzmq3-dev libcmocka-dev python3 python3-pytest python3-zmq python3-yaml
      qemu-system-x86 cpio zstd busybox-static kmod iproute2 runc crun hyperfine
      redis-server nats-server
      e2fsprogs erofs-utils ovmf systemd-boot-efi mtools dosfstools fdisk
      clang libclang-rt-14-dev hyperfine groff-base)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install packages" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
