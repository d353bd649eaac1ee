"""Where the lab keeps its state, and the few knobs it has; all paths derive from one state folder.

``GPU_LAB_STATE`` (default ``/var/lib/gpu-lab``) holds the cache (rootfs, package repository, stack
layers: they survive ``lab down``) and ``run/`` (a tmpfs with host upper dirs, keys, Slurm state: gone
after ``lab down``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

STATE_ENV = "GPU_LAB_STATE"
MIRROR_ENV = "GPU_LAB_MIRROR"
DEFAULT_STATE = "/var/lib/gpu-lab"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# Packages every lab host needs: sshd for Ansible, python3-apt for the apt module (the repo is air-gapped);
# rpm, dnf (with its Python bindings for ansible.builtin.dnf) and dnf-plugins-core (versionlock) for the
# lab's RPM-family hosts: Debian bookworm packages all of them (checked with apt-cache policy).
ROOTFS_PACKAGES = ("openssh-server", "python3", "python3-apt", "iproute2", "procps", "sudo", "kmod",
                   "rpm", "dnf", "python3-dnf", "dnf-plugins-core")


class LabPaths(BaseModel):
    """Every path the lab uses, derived from the state folder."""

    model_config = ConfigDict(frozen=True)
    state: Path

    @classmethod
    def from_env(cls) -> LabPaths:
        return cls(state=Path(os.environ.get(STATE_ENV, DEFAULT_STATE)))

    @property
    def cache(self) -> Path:
        return self.state / "cache"

    @property
    def rootfs(self) -> Path:
        return self.cache / f"rootfs-{SUITE}"

    @property
    def repo(self) -> Path:
        return self.cache / "repo"

    @property
    def layers(self) -> Path:
        return self.cache / "layers"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def lab_file(self) -> Path:
        return self.run / "lab.json"

    @property
    def key(self) -> Path:
        return self.run / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.run / "known_hosts"

    def host_dir(self, name: str) -> Path:
        return self.run / "hosts" / name


def mirror() -> str:
    return os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)


def asset(*parts: str) -> Path:
    """A file shipped under ``orchestrator/lab/assets`` (a real path: the package is installed unzipped)."""
    return Path(str(resources.files("orchestrator.lab").joinpath("assets", *parts)))
