"""Start and stop one lab host: its own mount, UTS and PID namespaces, overlay root, sshd and boot id.

A host's PID 1 (seen from outside) is recorded with its start time, so stopping never signals a PID that
was reused by someone else's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from orchestrator.lab.config import LabPaths, asset
from orchestrator.lab.errors import LabError
from orchestrator.lab.fleet import LabHost


class Proc(BaseModel):
    """A process we started: pid plus its start time (field 22 of /proc/PID/stat)."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> Proc:
        return cls(pid=pid, start=start_time(pid) or 0)

    def alive(self) -> bool:
        """Running (a zombie counts as gone) and not a reused PID."""
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X") and start_time(self.pid) == self.start

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def keypair() -> tuple[bytes, bytes]:
    """A fresh ed25519 key pair in OpenSSH format (private, public)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public


def port_free(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def gpu_json(host: LabHost) -> dict[str, object]:
    """The per-host hardware description the simulated tools read (/etc/gpu-lab/gpu.json)."""
    p = host.gpu
    ns = uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.name}.gpu-lab")
    bus = [f"00000000:{b:02X}:00.0" for b in (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)]
    return {
        "host": host.name, "name": p.name, "architecture": p.architecture, "compute_cap": p.compute_cap,
        "count": p.count, "memory_mib": p.memory_mib, "reserved_mib": p.reserved_mib,
        "power_cap_w": p.power_cap_w, "max_sm_mhz": p.max_sm_mhz, "vbios": p.vbios,
        "pci_device_id": p.pci_device_id, "pcie_bandwidth_gbps": p.pcie_bandwidth_gbps,
        "nvswitch": p.nvswitch, "mig_capable": p.mig_capable,
        "serial_base": 1654023000000 + (ns.int % 100000) * 10,
        "bus_ids": bus[: p.count], "uuids": [f"GPU-{uuid.uuid5(ns, str(i))}" for i in range(p.count)],
        "reboot_downtime_s": host.reboot_downtime_s,
    }


def write_json(path: Path, data: object) -> None:
    """Atomically (temp file + rename): the simulated tools may read it at any moment."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def prepare(paths: LabPaths, host: LabHost, fleet: list[LabHost], authorized_key: bytes) -> bytes:
    """Lay out the host's run folder and the files that make it itself; returns its public host key."""
    run = paths.host_dir(host.name)
    for sub in ("upper", "work", "root", "ctl"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    up = run / "upper"
    (up / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (up / "root/.ssh").mkdir(parents=True, exist_ok=True, mode=0o700)
    (up / "var/lib/gpu-lab").mkdir(parents=True, exist_ok=True)
    (up / "etc/hostname").write_text(host.name + "\n")
    hosts = ["127.0.0.1\tlocalhost", f"{host.address}\t{host.name}"]
    hosts += [f"{h.address}\t{h.name}" for h in fleet if h.name != host.name]
    (up / "etc/hosts").write_text("\n".join(hosts) + "\n")
    (up / "etc/ssh/sshd_config.d/10-listen.conf").write_text(
        f"ListenAddress {host.address}:{host.port}\n")
    private, public = keypair()
    key = up / "etc/ssh/ssh_host_ed25519_key"
    key.write_bytes(private)
    key.chmod(0o600)
    (up / "etc/ssh/ssh_host_ed25519_key.pub").write_bytes(public + b"\n")
    auth = up / "root/.ssh/authorized_keys"
    auth.write_bytes(authorized_key + b"\n")
    auth.chmod(0o600)
    write_json(run / "ctl/gpu.json", gpu_json(host))
    write_json(run / "ctl/faults.json", {})
    return public


def start(paths: LabPaths, host: LabHost, lower: str) -> Proc:
    """Spawn the host's namespaces; returns its PID 1 as seen from outside."""
    run = paths.host_dir(host.name)
    log = open(run / "console.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        ["unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private", "--",
         "/bin/sh", str(asset("host", "hostboot.sh")), str(run), lower, str(paths.repo), host.name],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            kids = children.read_text().split()
        except OSError:
            kids = []
        if kids:
            return Proc.of(int(kids[0]))
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    raise LabError(f"host {host.name}", "namespace did not start", f"see {run / 'console.log'}")


def wait_ssh(host: LabHost, pid1: Proc, timeout: float, paths: LabPaths) -> None:
    """Wait until the host's sshd accepts connections (or its PID 1 died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid1.alive():
            tail = (paths.host_dir(host.name) / "console.log").read_text(errors="replace").strip()
            raise LabError(f"host {host.name}", "stopped while booting", tail.splitlines()[-1] if tail else "")
        try:
            with socket.create_connection((host.address, host.port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise LabError(f"host {host.name}", f"sshd not reachable on {host.address}:{host.port} after {timeout:g} s")


def stop(pid1: Proc, timeout: float = 5.0) -> None:
    """Kill the host's PID 1: the kernel then kills every process of its PID namespace."""
    pid1.kill(signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pid1.alive() and time.monotonic() < deadline:
        time.sleep(0.02)


def signal_host(pid1: Proc, sig: int) -> None:
    if not pid1.alive():
        raise LabError(f"pid {pid1.pid}", "host is not running")
    os.kill(pid1.pid, sig)
