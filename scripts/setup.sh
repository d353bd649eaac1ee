#!/usr/bin/env bash
# Install everything the tool, the lab fleet and the tests need on a fresh Debian/Ubuntu machine (root).
# Used by the README and by .ci/run; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    # sshd: lab hosts and SSH tests; debootstrap + dpkg-dev: lab rootfs and its apt repository;
    # slurm + munge: the lab's real Slurm cluster; postgresql: the state backend's tests start a real server;
    # chromium: the report test opens `upgrade report` pages headless; rpm (rpmbuild, vercmp) + createrepo-c: the
    # lab's RPM repository and our package order's check; dnf + python3-dnf + dnf-plugins-core: the same dnf
    # (versionlock) as the lab's RPM hosts; gcc + libc6-dev: the lab builds its simulated CUDA libraries from C;
    # kmod: modinfo reads the lab drivers' kernel modules (the pre-reboot kernel check's test).
    apt-get install -y -qq --no-install-recommends \
        openssh-server openssh-client debootstrap dpkg-dev fakeroot gcc libc6-dev \
        rpm createrepo-c dnf python3-dnf dnf-plugins-core kmod \
        slurmctld slurmd slurm-client munge postgresql chromium >/dev/null
fi
python3 -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python3 -m pip install -q -e '.[dev]'
