"""A real OpenSSH server on a loopback address, started and stopped by PID, for tests of the SSH paths.

Its sessions get a PATH whose first entry holds a fake ``nvidia-smi`` that replays the real H100 captures
(no GPU exists on the test machine); everything else on the host is real.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real-gpu" / "h100-r580"

FAKE_NVIDIA_SMI = """#!/bin/sh
# Replays real nvidia-smi output captured on an H100 with driver 580.159.04.
case "$*" in
  "-q -x") cat {captures}/nvidia-smi-q.xml ;;
  *--query-gpu=driver_version*) echo 580.159.04 ;;
  *--query-compute-apps*) cat {state}/compute-apps 2>/dev/null ;;
  "") cat {captures}/nvidia-smi.txt ;;
  *) echo "Invalid combination of input arguments." >&2; exit 2 ;;
esac
"""


@dataclass
class Sshd:
    address: str
    port: int
    key: Path
    pid: int
    state: Path

    def set_compute_apps(self, text: str) -> None:
        (self.state / "compute-apps").write_text(text)


def sshd_available() -> str | None:
    """Why sshd tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to run sshd"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server not installed (.ci/run installs it)"
    return None


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def start_sshd(workdir: Path, address: str = "127.0.0.201", port: int | None = None,
               fake_gpu: bool = True) -> Sshd:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    key = workdir / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / "host_key")], check=True)
    shutil.copy(f"{key}.pub", workdir / "authorized_keys")
    fakebin = workdir / "fakebin"
    fakebin.mkdir(exist_ok=True)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if fake_gpu:
        smi = fakebin / "nvidia-smi"
        smi.write_text(FAKE_NVIDIA_SMI.format(captures=CAPTURES, state=workdir))
        smi.chmod(0o755)
        path = f"{fakebin}:{path}"
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {address}\nPort {port}\nHostKey {workdir / 'host_key'}\n"
        f"PidFile {workdir / 'sshd.pid'}\nAuthorizedKeysFile {workdir / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "StrictModes no\nUsePAM no\nUseDNS no\nPrintMotd no\nLogLevel ERROR\n"
        f"SetEnv PATH={path}\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {proc.returncode}") from None
            time.sleep(0.05)
    return Sshd(address=address, port=port, key=key, pid=proc.pid, state=workdir)


def stop_sshd(server: Sshd) -> None:
    try:
        os.kill(server.pid, signal.SIGTERM)
        os.waitpid(server.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
