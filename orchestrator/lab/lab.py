"""The lab as a whole: ``up`` (cached rootfs, repo and stack layers, then hosts, Slurm and the inventory),
``down`` (kill what ``up`` started, by recorded PID, and unmount), ``status``, reboots and faults.

State lives in ``run/lab.json`` under the state folder; ``run/`` is a tmpfs that ``down`` unmounts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.lab import faults as faults_mod
from orchestrator.lab import hosts as hosts_mod
from orchestrator.lab import inventory, repo, rootfs, slurm
from orchestrator.lab.config import LabPaths
from orchestrator.lab.errors import LabError
from orchestrator.lab.fleet import LabHost, default_fleet
from orchestrator.lab.hosts import Proc

DEFAULT_INVENTORY = Path("inventories/lab")


class LabState(BaseModel):
    """What ``up`` started: enough for ``down`` to stop exactly that, from another process."""

    hosts: list[LabHost]
    pids: dict[str, Proc]
    slurm: dict[str, Proc] = {}
    inventory: str = ""
    started_at: float = 0.0
    timings: dict[str, float] = {}

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"host {name}", "not in the lab", f"hosts: {', '.join(h.name for h in self.hosts)}")


class HostStatus(BaseModel):
    name: str
    address: str
    port: int
    gpu: str
    running: bool
    ssh: bool
    boot_id: str | None
    slurm_state: str | None
    faults: dict[str, Any]


def _check_platform() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError("platform", "the lab needs Linux (namespaces, overlayfs)")
    if os.geteuid() != 0:
        raise LabError("permissions", "the lab needs root (mounts, namespaces, sshd on loopback)")


def _mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as fh:
        return any(line.split()[1] == str(path) for line in fh)


class Lab:
    """Facade over the lab's parts; every method is safe to call from a fresh process."""

    def __init__(self, paths: LabPaths | None = None) -> None:
        self.paths = paths or LabPaths.from_env()

    def state(self) -> LabState | None:
        try:
            return LabState.model_validate_json(self.paths.lab_file.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, state: LabState) -> None:
        hosts_mod.write_json(self.paths.lab_file, state.model_dump(mode="json"))

    def is_up(self) -> bool:
        st = self.state()
        return st is not None and any(p.alive() for p in st.pids.values())

    def prepare_cache(self) -> dict[str, float]:
        """Rootfs, repository (cached on disk); returns seconds spent on each."""
        _check_platform()
        t = {}
        t0 = time.monotonic()
        rootfs.ensure_rootfs(self.paths)
        t["rootfs"] = time.monotonic() - t0
        t0 = time.monotonic()
        repo.build_repo(self.paths.repo)
        t["repo"] = time.monotonic() - t0
        return t

    def up(self, count: int = 6, inventory_dir: Path = DEFAULT_INVENTORY, with_slurm: bool = True,
           boot_timeout: float = 30.0, rpm: int = 0) -> LabState:
        """Bring the lab up (``count`` hosts); raises if it is already up."""
        _check_platform()
        if self.is_up():
            raise LabError("up", "the lab is already up", "run `upgrade lab down` first")
        self.down()  # leftovers of a crashed run
        fleet = default_fleet(count, rpm)
        timings = self.prepare_cache()
        t0 = time.monotonic()
        p = self.paths
        p.run.mkdir(parents=True, exist_ok=True)
        if not _mounted(p.run):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=2g", "gpu-lab-run", str(p.run)], check=True)
        lab_layer = p.run / "layer"
        rootfs.build_lab_layer(lab_layer)
        digest = repo.digest()
        layers = {h.packages: rootfs.ensure_stack_layer(p, lab_layer, h.packages, digest, h.family) for h in fleet}
        timings["stack_layers"] = time.monotonic() - t0
        t0 = time.monotonic()
        if not p.key.exists():
            private, public = hosts_mod.keypair()
            p.key.write_bytes(private)
            p.key.chmod(0o600)
            p.key.with_suffix(".pub").write_bytes(public + b"\n")
        authorized = p.key.with_suffix(".pub").read_bytes().strip()
        used = set()
        placed = []
        for i, h in enumerate(fleet):
            port = 22 if hosts_mod.port_free(h.address, 22) else 2200 + i
            used.add(port)
            placed.append(h.model_copy(update={"port": port}))
        known = []
        for h in placed:
            public = hosts_mod.prepare(p, h, placed, authorized)
            where = h.address if h.port == 22 else f"[{h.address}]:{h.port}"
            known.append(f"{where} {public.decode()}")
        p.known_hosts.write_text("\n".join(known) + "\n")
        state = LabState(hosts=placed, pids={}, started_at=time.time(), timings=timings)
        try:
            for h in placed:
                lower = f"{lab_layer}:{layers[h.packages]}:{p.rootfs}"
                state.pids[h.name] = hosts_mod.start(p, h, lower)
                self._save(state)
            for h in placed:
                hosts_mod.wait_ssh(h, state.pids[h.name], boot_timeout, p)
            timings["hosts"] = time.monotonic() - t0
            if with_slurm:
                t0 = time.monotonic()
                state.slurm = slurm.start(p, placed)
                self._save(state)
                slurm.wait_ready(p, [h.name for h in placed])
                timings["slurm"] = time.monotonic() - t0
            state.inventory = str(inventory.write(p, placed, inventory_dir))
            state.timings = timings
            self._save(state)
        except BaseException:
            self.down()
            raise
        return state

    def down(self) -> dict[str, float]:
        """Stop everything ``up`` started and unmount the run tmpfs; the caches stay."""
        t0 = time.monotonic()
        st = self.state()
        if st is not None:
            slurm.stop(self.paths, st.slurm)
            for pid1 in st.pids.values():
                pid1.kill()
            for pid1 in st.pids.values():
                hosts_mod.stop(pid1)
        if _mounted(self.paths.run):
            proc = subprocess.run(["umount", str(self.paths.run)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                time.sleep(0.5)
                subprocess.run(["umount", "-l", str(self.paths.run)], check=False)
        return {"down": time.monotonic() - t0}

    def _running(self, name: str) -> tuple[LabState, Proc]:
        st = self.state()
        if st is None:
            raise LabError("lab", "not up", "run `upgrade lab up`")
        st.host(name)
        return st, st.pids[name]

    def status(self) -> list[HostStatus]:
        st = self.state()
        if st is None:
            return []
        nodes: dict[str, str] = {}
        if st.slurm:
            out = slurm.run(self.paths, "sinfo", "-h", "-N", "-o", "%N %T", check=False)
            nodes = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
        result = []
        for h in st.hosts:
            pid1 = st.pids.get(h.name)
            running = bool(pid1 and pid1.alive())
            boot_id = self.read_file(h.name, "/proc/sys/kernel/random/boot_id") if running else None
            result.append(HostStatus(
                name=h.name, address=h.address, port=h.port, gpu=f"{h.gpu.count}x {h.gpu.name}",
                running=running, ssh=running and _ssh_open(h), boot_id=boot_id.strip() if boot_id else None,
                slurm_state=nodes.get(h.name), faults=faults_mod.read_faults(self.paths, h.name),
            ))
        return result

    def read_file(self, name: str, path: str) -> str | None:
        """Read a file inside a host through its PID 1's root (no SSH), e.g. its boot id."""
        _st, pid1 = self._running(name)
        try:
            return Path(f"/proc/{pid1.pid}/root{path}").read_text()
        except OSError:
            return None

    def exec(self, name: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside a host's namespaces (nsenter), bypassing SSH."""
        _st, pid1 = self._running(name)
        return subprocess.run(["nsenter", "-t", str(pid1.pid), "-m", "-u", "-p", "-r", "-w", "--", *cmd],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def ssh_command(self, name: str) -> list[str]:
        """The ssh command line that reaches a host as Ansible does (key, pinned host key)."""
        st, _pid1 = self._running(name)
        h = st.host(name)
        return ["ssh", "-i", str(self.paths.key), "-o", f"UserKnownHostsFile={self.paths.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                "-p", str(h.port), f"root@{h.address}"]

    def reboot(self, name: str) -> None:
        _st, pid1 = self._running(name)
        hosts_mod.signal_host(pid1, signal.SIGUSR1)

    def inject(self, name: str, fault: faults_mod.Fault, **kwargs: Any) -> dict[str, Any]:
        _st, pid1 = self._running(name)
        return faults_mod.inject(self.paths, name, pid1, fault, **kwargs)

    def clear(self, name: str, fault: faults_mod.Fault | None = None) -> None:
        _st, pid1 = self._running(name)
        faults_mod.clear(self.paths, name, pid1, fault)


def _ssh_open(host: LabHost) -> bool:
    import socket

    try:
        with socket.create_connection((host.address, host.port), timeout=0.3):
            return True
    except OSError:
        return False
