"""Against the running lab: isolation, holds, downgrades, reboots, every fault, and a real Slurm drain.

Each test uses its own host so that they do not depend on order; faults are cleared in ``finally``.
"""

from __future__ import annotations

import json
import time

import pytest

from orchestrator.adapters.facts import collect_live
from orchestrator.adapters.inventory import load_inventory
from orchestrator.lab.catalogue import running_kernel
from orchestrator.lab.faults import Fault
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab


def version(lab: LabHandle, host: str, pkg: str) -> str:
    return lab.ssh(host, f"dpkg-query -W -f '${{Version}}' {pkg}").stdout.strip()


def wait_for(pred, timeout: float, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def test_hosts_start_with_their_gpu_stack_held(lab: LabHandle) -> None:
    """A well-kept fleet pins its GPU stack: plain `apt-get upgrade` must not move it."""
    held = lab.ssh("gpu-h100-01", "apt-mark showhold").stdout.split()
    assert "nvidia-driver-535" in held and "libnccl2" in held


def test_facts_name_the_module_under_the_running_kernel_and_no_dkms_package(lab: LabHandle) -> None:
    """The lab's .deb drivers carry nvidia.ko themselves (under updates/dkms, where DKMS would put it) and no
    nvidia-dkms package comes with them, nor a dkms program: the facts say neither packaging, no DKMS, and the
    installed driver's module in the running kernel."""
    [facts] = collect_live(lab.inventory, load_inventory(lab.inventory), limit="gpu-h100-02").hosts
    modules = facts.kernel_modules
    assert modules is not None and modules.packaging is None and modules.dkms is None
    assert facts.driver.version and modules.kernels[running_kernel()] == facts.driver.version


def test_hosts_are_isolated(lab: LabHandle) -> None:
    r = lab.ssh("gpu-h100-02", "apt-get install -y -qq --allow-change-held-packages nvidia-container-toolkit=1.17.8-1")
    assert r.returncode == 0, r.stderr
    assert version(lab, "gpu-h100-02", "nvidia-container-toolkit") == "1.17.8-1"
    assert version(lab, "gpu-h100-01", "nvidia-container-toolkit") == "1.14.6-1"
    assert lab.ssh("gpu-h100-02", "hostname").stdout.strip() == "gpu-h100-02"
    assert len({lab.boot_id(h.name) for h in lab.state.hosts}) == len(lab.state.hosts)


def test_held_package_refuses_upgrade_and_downgrade_works(lab: LabHandle) -> None:
    host = "gpu-h100-01"
    r = lab.ansible(host, "ansible.builtin.dpkg_selections", "name=libnccl2 selection=hold")
    assert r.returncode == 0, r.stdout
    lab.ansible(host, "ansible.builtin.apt", "name=libnccl2 state=latest")
    assert version(lab, host, "libnccl2") == "2.18.5-1+cuda12.2"
    lab.ansible(host, "ansible.builtin.dpkg_selections", "name=libnccl2 selection=install")
    r = lab.ansible(host, "ansible.builtin.apt", "name=libnccl2=2.28.9-1+cuda13.0 state=present")
    assert r.returncode == 0, r.stdout
    assert version(lab, host, "libnccl2") == "2.28.9-1+cuda13.0"
    r = lab.ansible(host, "ansible.builtin.apt", "name=libnccl2=2.18.5-1+cuda12.2 state=present allow_downgrade=true")
    assert r.returncode == 0, r.stdout
    assert version(lab, host, "libnccl2") == "2.18.5-1+cuda12.2"


def test_driver_change_mismatch_until_reboot(lab: LabHandle) -> None:
    host = "gpu-h100-03"
    # the branch change removes the held 535 packages: release their holds first, as the roles do
    r = lab.ssh(host, "apt-mark unhold nvidia-driver-535 nvidia-fabricmanager-535 >/dev/null && "
                      "apt-get install -y -qq nvidia-driver-580-open=580.95.05-0ubuntu1 "
                      "nvidia-fabricmanager-580=580.95.05-1")
    assert r.returncode == 0, r.stderr
    # the branches conflict: 535 was removed (its postrm keeps it in dpkg's config-files state until purged)
    status = lab.ssh(host, "dpkg-query -W -f '${db:Status-Abbrev}' nvidia-driver-535").stdout
    assert status.strip() == "rc", status
    smi = lab.ssh(host, "nvidia-smi")
    assert smi.returncode == 18
    assert "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95" in smi.stdout
    before = lab.boot_id(host)
    r = lab.ansible(host, "ansible.builtin.reboot", "reboot_timeout=120")
    assert r.returncode == 0, r.stdout
    assert lab.boot_id(host) != before
    smi = lab.ssh(host, "nvidia-smi --query-gpu=driver_version,name --format=csv,noheader")
    assert smi.returncode == 0
    assert smi.stdout.splitlines()[0] == "580.95.05, NVIDIA H100 80GB HBM3"
    assert "Open Kernel Module" in lab.ssh(host, "cat /proc/driver/nvidia/version").stdout
    assert lab.ssh(host, "dcgmi diag -r 1").returncode == 0  # fabric manager matches the driver again


def test_fault_install_fails(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    lab.lab.inject(host, Fault.INSTALL_FAILS, packages=("libnccl2",))
    try:
        r = lab.ssh(host, "apt-get install -y -qq --allow-change-held-packages libnccl2=2.26.2-1+cuda12.8")
        assert r.returncode != 0
        assert "gpu-lab fault injection" in r.stderr
        assert version(lab, host, "libnccl2") == "2.18.5-1+cuda12.2"
    finally:
        lab.lab.clear(host, Fault.INSTALL_FAILS)
    assert lab.ssh(host, "apt-get install -y -qq --allow-change-held-packages "
                         "libnccl2=2.26.2-1+cuda12.8").returncode == 0


def test_fault_dcgm_diag_and_slow_gpu(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    ok = lab.ssh(host, "dcgmi diag -r 2 -j")
    assert ok.returncode == 0
    lab.lab.inject(host, Fault.DIAG_FAILS, gpu=1)
    lab.lab.inject(host, Fault.GPU_SLOW, factor=0.4)
    try:
        bad = lab.ssh(host, "dcgmi diag -r 2")
        assert bad.returncode == 226 and "GPU1: Fail" in bad.stdout
        slow = lab.ssh(host, "dcgmi diag -r 2 -j")

        def h2d(text: str) -> float:
            data = json.loads(text)["DCGM Diagnostic"]["test_categories"]
            pcie = next(t for c in data for t in c["tests"] if t["name"] == "pcie")
            return float(pcie["results"][0]["info"][1].split()[-2])

        assert h2d(slow.stdout) == pytest.approx(h2d(ok.stdout) * 0.4)
        clocks = lab.ssh(host, "nvidia-smi --query-gpu=clocks.sm,clocks_event_reasons.active --format=csv,noheader")
        assert clocks.stdout.splitlines()[0] == "564 MHz, 0x0000000000000008"
    finally:
        lab.lab.clear(host)
    assert lab.ssh(host, "dcgmi diag -r 2").returncode == 0


def test_fault_ssh_down(lab: LabHandle) -> None:
    host = "gpu-h100-04"
    lab.lab.inject(host, Fault.SSH_DOWN, seconds=3)
    time.sleep(0.5)
    assert lab.ssh(host, "true", timeout=10).returncode == 255
    assert wait_for(lambda: lab.ssh(host, "true", timeout=10).returncode == 0, 10)


def test_fault_reboot_hangs_and_module_not_loaded(lab: LabHandle) -> None:
    host = "gpu-v100-01"
    lab.lab.inject(host, Fault.REBOOT_HANGS)
    lab.lab.inject(host, Fault.MODULE_NOT_LOADED)
    before = lab.boot_id(host)
    lab.lab.reboot(host)
    time.sleep(5)  # well past the 2 s downtime
    assert lab.ssh(host, "true", timeout=10).returncode == 255
    lab.lab.clear(host, Fault.REBOOT_HANGS)
    assert wait_for(lambda: lab.ssh(host, "true", timeout=10).returncode == 0, 15)
    assert lab.boot_id(host) != before
    smi = lab.ssh(host, "nvidia-smi")
    assert smi.returncode == 9 and "couldn't communicate with the NVIDIA driver" in smi.stdout
    lab.lab.clear(host)


def node_state(lab: LabHandle, node: str) -> str:
    return lab.slurm("sinfo", "-h", "-n", node, "-o", "%T").split()[0]


def test_slurm_drain_waits_for_running_job(lab: LabHandle) -> None:
    node = "gpu-h100-02"
    lab.lab.inject(node, Fault.BLOCKING_JOB, seconds=6)
    try:
        assert wait_for(lambda: node_state(lab, node) in ("allocated", "mixed"), 10)
        lab.slurm("scontrol", "update", f"nodename={node}", "state=drain", "reason=upgrade")
        assert node_state(lab, node) == "draining"
        assert wait_for(lambda: node_state(lab, node) == "drained", 20)
        lab.slurm("scontrol", "update", f"nodename={node}", "state=resume")
        assert wait_for(lambda: node_state(lab, node) == "idle", 10)
    finally:
        lab.lab.clear(node, Fault.BLOCKING_JOB)


def test_slurm_reboot_asap_reboots_the_lab_host(lab: LabHandle) -> None:
    node = "gpu-h100-04"
    before = lab.boot_id(node)
    lab.slurm("scontrol", "reboot", "ASAP", "nextstate=RESUME", "reason=upgrade", node)
    assert wait_for(lambda: lab.boot_id(node) not in ("", before), 30)
    assert wait_for(lambda: node_state(lab, node) == "idle", 60, step=0.5)
