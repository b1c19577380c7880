#!/usr/bin/env bash
# Install everything husk needs on a Debian machine, as root, and build
# the built-in busybox image.  One script for the README's quick start,
# .ci/run and the Vagrant box, so the three cannot drift apart.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (husk manages namespaces, mounts and cgroups)" >&2
  exit 1
fi

PKGS=(
  gcc make libc6-dev          # husk-init and husk-checker (static)
  libcap-dev                  # python-prctl builds against it
  libseccomp-dev              # husk-init links libseccomp statically
  libjansson-dev              # the C front end reads and writes state.json (static)
  busybox-static file         # the built-in image
  runc crun hyperfine         # bench/: the runtimes husk is measured against
  podman conmon containerd    # tests run husk under the real clients
  docker.io                   # ... and dockerd 20.10 (started by its test only, in a namespace of its own)
  containernetworking-plugins # the CRI test: containerd's pod networks (bridge, host-local, portmap, loopback)
  netavark aardvark-dns docker-compose  # the compose test: podman's networks and names, docker-compose 1.29
  iptables                    # netavark 1.4 runs iptables for its rules; no package of these depends on it
  uidmap skopeo
  docker-registry umoci       # image tests: a real registry, and umoci's unpack to compare with
  debootstrap                 # image tests: a Debian minbase image with many layers' worth of files
  apache2-utils openssl       # image tests: htpasswd for basic auth, a CA for HTTPS
  golang-github-containers-common  # the default seccomp profile of image containers (seccomp.json)
  nftables                    # husk's NAT and published ports (its own table, inet husk)
  qemu-system-x86             # the cgroup v2 tests boot Debian's kernel in a VM
  systemd dbus                # ... with systemd as its PID 1 (the systemd driver's tests), and a bus to check messages
  vagrant                     # tests validate the Vagrantfile (offline)
  chromium                    # --explain=html is rendered in a real (headless) browser
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # No service these packages bring (dockerd, containerd, docker-registry)
  # is started here: each test starts its own.  invoke-rc.d asks policy-rc.d.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || { apt-get install -y -q python3 python3-pip python3-venv; PYTHON=python3; }
# A regular (not editable) install: the tests run the installed husk.
"$PYTHON" -m pip install -q --disable-pip-version-check '.[test]'
"$PYTHON" rootfs/build.py
