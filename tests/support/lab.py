"""The one session-scoped lab fixture (registered in tests/conftest.py for every test folder): brings
the lab up once (building the rootfs on first use, cached on disk), hands tests a :class:`LabHandle`, and
tears it down at the end, stopping only what it started. ``fresh`` (also registered there) gives one test the
starting fleet again; ``restarted`` does the same for any fleet shape and scope."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.lab import slurm
from orchestrator.lab.lab import Lab, LabState


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux"
    if os.geteuid() != 0:
        return "the lab needs root (namespaces, mounts, sshd on loopback)"
    missing = [b for b in ("unshare", "nsenter", "debootstrap", "dpkg-deb", "ssh", "ansible") if not shutil.which(b)]
    if missing:
        return f"missing tools: {', '.join(missing)} (run .ci/run, which installs them)"
    return None


def lab_in_the_way() -> str | None:
    """Why the lab tests cannot start here although this machine could run them: a lab is already up."""
    if _why_not() is None and Lab().is_up():
        return ("a lab is already up (left by `upgrade lab demo --keep` or `upgrade lab up`): the lab tests bring "
                "up their own; run `upgrade lab down`, then the tests again")
    return None


class LabHandle:
    """What a test needs: the lab, its state, SSH and Ansible against its hosts."""

    def __init__(self, lab: Lab, state: LabState, inventory: Path) -> None:
        self.lab = lab
        self.state = state
        self.inventory = inventory

    def ssh(self, host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.lab.ssh_command(host), command], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ansible(self, host: str, module: str, args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_STDOUT_CALLBACK": "default"}
        return subprocess.run(["ansible", "-i", str(self.inventory), host, "-m", module, "-a", args],
                              capture_output=True, text=True, timeout=timeout, check=False, env=env)

    def slurm(self, *args: str) -> str:
        return slurm.run(self.lab.paths, *args)

    def restart(self, inventory_dir: Path, rpm: int = 0) -> None:
        """Take the lab down and bring up the starting fleet (six hosts, and ``rpm`` RPM-family hosts)."""
        self.lab.down()
        self.state = self.lab.up(6, inventory_dir, rpm=rpm)
        self.inventory = Path(self.state.inventory)

    def boot_id(self, host: str) -> str:
        return (self.lab.read_file(host, "/proc/sys/kernel/random/boot_id") or "").strip()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    reason = _why_not() or lab_in_the_way()
    if reason:
        pytest.skip(reason)
    the_lab = Lab()
    inventory_dir = tmp_path_factory.mktemp("lab-inventory")
    state = the_lab.up(6, inventory_dir)
    try:
        yield LabHandle(the_lab, state, Path(state.inventory))
    finally:
        the_lab.down()


@contextmanager
def restarted(handle: LabHandle, where: Path, rpm: int = 0) -> Iterator[LabHandle]:
    """The lab on its starting fleet (plus ``rpm`` RPM hosts) inside, the usual six hosts again afterwards."""
    handle.restart(where / "inventory", rpm)
    try:
        yield handle
    finally:
        handle.restart(where / "inventory-after")


@pytest.fixture()
def fresh(lab: LabHandle, tmp_path: Path) -> Iterator[LabHandle]:
    """The lab brought back to its starting fleet for this test, and again afterwards for the next ones."""
    with restarted(lab, tmp_path) as handle:
        yield handle
