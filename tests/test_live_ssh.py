"""Live paths over real SSH: `upgrade facts -i` through Ansible, and the paramiko probes with retries.

The sshd is real (tests/support/sshd.py, loopback only); its sessions see a fake nvidia-smi replaying the
real H100 captures because no GPU exists here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.errors import HostUnreachable
from orchestrator.models import Connection
from orchestrator.probe import RetryPolicy, SshProbe, probe_many
from tests.support.sshd import Sshd, free_port, start_sshd, stop_sshd

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(attempts=2, initial_wait_s=0.1, max_wait_s=0.2, connect_timeout_s=2)


def connection(server: Sshd) -> Connection:
    return Connection(address=server.address, port=server.port, user="root", private_key_file=str(server.key))


def write_inventory(tmp_path: Path, server: Sshd, dead_port: int) -> Path:
    common = (f"ansible_host={server.address} ansible_port={server.port} ansible_user=root "
              f"ansible_ssh_private_key_file={server.key} ansible_python_interpreter={sys.executable}")
    path = tmp_path / "hosts.ini"
    path.write_text(
        "[pool_a]\n"
        f"node-1 {common} gpu_rack=r1\n"
        f"node-2 {common} gpu_rack=r2\n"
        f"node-down ansible_host=127.0.0.202 ansible_port={dead_port} ansible_user=root\n"
        "[pool_a:vars]\ngpu_pool=a\ngpu_model=H100\n"
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3'\n"
    )
    return path


def test_upgrade_facts_over_ssh_reports_reachable_and_names_unreachable(sshd: Sshd, tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path, sshd, free_port("127.0.0.202"))
    result = subprocess.run([sys.executable, "-m", "orchestrator", "facts", "-i", str(inventory), "--output", "json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=180, check=False)
    assert result.returncode == 1, result.stderr  # one host unreachable -> warnings
    data = json.loads(result.stdout)
    hosts = {h["host"]: h for h in data["hosts"]}
    assert sorted(hosts) == ["node-1", "node-2"]
    node = hosts["node-1"]
    assert node["driver"]["version"] == "580.159.04" and node["driver"]["cuda_driver_api"] == "13.0"
    assert node["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert node["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert node["os"]["id"] == "debian"
    [down] = data["unreachable"]
    assert down["host"] == "node-down" and "unreachable" in down["reason"] and "127.0.0.202" in down["reason"]


def test_probe_reads_boot_id_driver_and_gpu_processes(sshd: Sshd) -> None:
    sshd.set_compute_apps("4242, python3, 30712 MiB\n")
    with SshProbe("node-1", connection(sshd), FAST) as probe:
        assert probe.reachable()
        assert probe.boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert probe.driver_version() == "580.159.04"
        [proc] = probe.gpu_processes()
        assert (proc.pid, proc.name, proc.used_memory_mib) == (4242, "python3", 30712)
    sshd.set_compute_apps("")
    with SshProbe("node-1", connection(sshd), FAST) as probe:
        assert probe.gpu_processes() == []


def test_probe_many_in_parallel_with_one_unreachable(sshd: Sshd) -> None:
    dead = Connection(address="127.0.0.202", port=free_port("127.0.0.202"), user="root")
    targets = [(f"n{i}", connection(sshd)) for i in range(6)] + [("dead", dead)]
    results = probe_many(targets, lambda p: p.boot_id(), policy=FAST)
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert all(results[f"n{i}"] == boot for i in range(6))
    assert isinstance(results["dead"], HostUnreachable)
    assert "connection refused (after 2 attempts)" in str(results["dead"])


def test_unreachable_host_is_retried_with_backoff() -> None:
    dead = Connection(address="127.0.0.203", port=free_port("127.0.0.203"), user="root")
    policy = RetryPolicy(attempts=3, initial_wait_s=0.2, max_wait_s=1.0, connect_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(HostUnreachable) as err:
        SshProbe("dead", dead, policy).boot_id()
    elapsed = time.monotonic() - started
    assert str(err.value) == "dead: unreachable: connection refused (after 3 attempts)"
    assert elapsed >= 0.2 + 0.4 - 0.05  # two exponential waits between three attempts


def test_host_that_comes_back_during_retries_is_reached(sshd: Sshd, tmp_path: Path) -> None:
    """A host rebooting: sshd starts 1 s after the first attempt; the retries reach it."""
    port = free_port("127.0.0.204")
    box: dict[str, Sshd] = {}
    late = threading.Timer(1.0, lambda: box.setdefault("s", start_sshd(tmp_path / "late", "127.0.0.204", port)))
    late.start()
    try:
        target = Connection(address="127.0.0.204", port=port, user="root", private_key_file=str(tmp_path / "late" /
                                                                                                "id_ed25519"))
        policy = RetryPolicy(attempts=6, initial_wait_s=0.3, max_wait_s=1.0, connect_timeout_s=2)
        # the key is created by start_sshd; wait for it before the probe needs it
        while not (tmp_path / "late" / "id_ed25519").exists() and late.is_alive():
            time.sleep(0.05)
        with SshProbe("late", target, policy) as probe:
            assert probe.reachable()
    finally:
        late.join()
        if "s" in box:
            stop_sshd(box["s"])
