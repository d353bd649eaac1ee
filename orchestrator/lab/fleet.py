"""What the lab fleet looks like: hosts, pools, racks, GPU models and the old stack they start on.

Six hosts by default: four H100 NVSwitch hosts with fabric manager (pool ``training``, two racks), one
A100 and one V100 (pool ``inference``) to exercise architecture limits (Volta: no open kernel module,
no CUDA 13). All start on R535 + CUDA 12.2.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.lab.errors import LabError

FIRST_ADDRESS = 11
MAX_HOSTS = 48


class GpuProfile(BaseModel):
    """What the simulated tools print for one GPU model (as real nvidia-smi names it)."""

    model_config = ConfigDict(frozen=True)
    key: str
    name: str
    architecture: str
    compute_cap: str
    memory_mib: int
    reserved_mib: int
    power_cap_w: int
    max_sm_mhz: int
    vbios: str
    pci_device_id: str
    pcie_bandwidth_gbps: float
    count: int
    nvswitch: bool
    mig_capable: bool = True
    slurm_type: str


PROFILES: dict[str, GpuProfile] = {
    p.key: p for p in (
        GpuProfile(key="h100", name="NVIDIA H100 80GB HBM3", architecture="Hopper", compute_cap="9.0",
                   memory_mib=81559, reserved_mib=480, power_cap_w=700, max_sm_mhz=1980, vbios="96.00.CF.00.01",
                   pci_device_id="233010DE", pcie_bandwidth_gbps=55.0, count=8, nvswitch=True, slurm_type="h100"),
        GpuProfile(key="a100", name="NVIDIA A100-SXM4-80GB", architecture="Ampere", compute_cap="8.0",
                   memory_mib=81920, reserved_mib=597, power_cap_w=400, max_sm_mhz=1410, vbios="92.00.45.00.03",
                   pci_device_id="20B210DE", pcie_bandwidth_gbps=25.0, count=4, nvswitch=False, slurm_type="a100"),
        GpuProfile(key="v100", name="Tesla V100-SXM2-32GB", architecture="Volta", compute_cap="7.0",
                   memory_mib=32768, reserved_mib=268, power_cap_w=300, max_sm_mhz=1530, vbios="88.00.80.00.01",
                   pci_device_id="1DB510DE", pcie_bandwidth_gbps=12.0, count=8, nvswitch=False,
                   mig_capable=False, slurm_type="v100"),
    )
}

# The old stack every lab host starts on (exact repository versions).
BASE_STACK: tuple[str, ...] = (
    "nvidia-driver-535=535.183.01-0ubuntu1",
    "cuda-toolkit-12-2=12.2.2-1",
    "libcudnn8=8.9.7.29-1+cuda12.2",
    "libnccl2=2.18.5-1+cuda12.2",
    "datacenter-gpu-manager=1:3.3.9",
    "nvidia-container-toolkit=1.14.6-1",
)
FABRIC_MANAGER = "nvidia-fabricmanager-535=535.183.01-1"
# An RPM-family host (Rocky Linux 9 as os-release says; real rpm and dnf on the lab's Debian rootfs): the driver
# from the lab's copy of NVIDIA's CUDA repository for RHEL 9, as ``dnf install nvidia-open`` lays it out.
RPM_STACK: tuple[str, ...] = ("nvidia-open-3:535.183.01-1.el9",)
ROCKY_OS_RELEASE = ('NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
                    'VERSION_ID="9.4"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n')


class LabHost(BaseModel):
    """One lab host: identity, placement, GPU profile and how to reach it."""

    model_config = ConfigDict(frozen=True)
    name: str
    address: str
    port: int = 22
    pool: str
    rack: str
    profile: str
    reboot_downtime_s: float = Field(default=2.0, ge=0)
    family: Literal["deb", "rpm"] = "deb"

    @property
    def gpu(self) -> GpuProfile:
        return PROFILES[self.profile]

    @property
    def packages(self) -> tuple[str, ...]:
        if self.family == "rpm":
            return RPM_STACK
        return BASE_STACK + ((FABRIC_MANAGER,) if self.gpu.nvswitch else ())


def default_fleet(count: int = 6, rpm: int = 0) -> list[LabHost]:
    """``count`` hosts: the last two are the A100 and the V100 (from 3 hosts up), the rest H100s; then ``rpm``
    RPM-family A100 hosts (pool ``training-rpm``; no NVSwitch, so no fabric manager)."""
    if not 1 <= count <= MAX_HOSTS:
        raise LabError("fleet", f"--hosts must be between 1 and {MAX_HOSTS}, not {count}")
    kinds = ["h100"] * count
    if count >= 3:
        kinds[-2:] = ["a100", "v100"]
    elif count == 2:
        kinds[-1] = "a100"
    hosts = []
    seen: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        seen[kind] = seen.get(kind, 0) + 1
        n = seen[kind]
        if kind == "h100":
            pool, rack = "training", f"rack-{chr(ord('a') + (n - 1) // 2)}"
        else:
            pool, rack = "inference", "rack-z"
        hosts.append(LabHost(name=f"gpu-{kind}-{n:02d}", address=f"127.0.0.{FIRST_ADDRESS + i}", pool=pool,
                             rack=rack, profile=kind))
    if count + rpm > MAX_HOSTS:
        raise LabError("fleet", f"at most {MAX_HOSTS} hosts in all, not {count + rpm}")
    for n in range(1, rpm + 1):
        hosts.append(LabHost(name=f"gpu-rpm-{n:02d}", address=f"127.0.0.{FIRST_ADDRESS + count + n - 1}",
                             pool="training-rpm", rack="rack-r", profile="a100", family="rpm"))
    return hosts
