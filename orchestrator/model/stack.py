"""The fleet vocabulary: software stack, host, fleet. Input models are strict (``extra="forbid"``).

Every later part (planner, executor, gates) speaks in these types.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from orchestrator.model.gpus import GpuModel
from orchestrator.model.versions import (
    ComponentVersion,
    CudaVersion,
    CudnnVersion,
    DriverVersion,
    KernelVersion,
    NcclVersion,
)


def _format_one(value: object) -> object:
    if value != 1 or isinstance(value, bool):
        raise ValueError(f"{str(value)[:20]!r} is not a format version this tool reads (it reads 1)")
    return 1


# A file format's version (``version: 1``, ``schema_version: 1``); ``true`` is not 1, nor is ``1.0``.
FormatVersion = Annotated[Literal[1], BeforeValidator(_format_one)]


class StrictModel(BaseModel):
    """Base of every input model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KernelModuleFlavor(StrEnum):
    """NVIDIA ships the kernel module as open source (required from Blackwell) or proprietary (needed before Turing)."""

    OPEN = "open"
    PROPRIETARY = "proprietary"


class PackageSource(StrEnum):
    """Where a host's NVIDIA packages come from; each source names and pins the packages its own way.

    ``ubuntu``: the Ubuntu archive (``nvidia-driver-<branch>-server[-open]`` and the precompiled, signed
    ``linux-modules-nvidia-<branch>-server[-open]-<flavour>``; https://packages.ubuntu.com/noble-updates/nvidia-driver-580,
    https://packages.ubuntu.com/resolute-updates/linux-modules-nvidia-580-open-generic).
    ``cuda-apt``: NVIDIA's CUDA repository on Ubuntu/Debian (``cuda-drivers-<branch>``, ``nvidia-open-<branch>``;
    from 590 one name per package plus ``nvidia-driver-pinning-<branch>``).
    ``cuda-dnf``: NVIDIA's CUDA repository on RHEL/Rocky/Alma (``dnf module enable nvidia-driver:<branch>-open``,
    ``nvidia-open``, ``kmod-nvidia-open-dkms``, locked with ``dnf versionlock``).
    Sources: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html and
    https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/version-locking.html
    """

    UBUNTU = "ubuntu"
    CUDA_APT = "cuda-apt"
    CUDA_DNF = "cuda-dnf"

    @property
    def manager(self) -> str:
        return "dnf" if self is PackageSource.CUDA_DNF else "apt"


class SchedulerKind(StrEnum):
    SLURM = "slurm"
    KUBERNETES = "kubernetes"
    NONE = "none"


class OsRelease(StrictModel):
    """From ``/etc/os-release``: ``ID`` and ``VERSION_ID`` (``ubuntu`` / ``24.04``)."""

    id: str
    version_id: str = ""
    pretty_name: str = ""

    def __str__(self) -> str:
        return f"{self.id} {self.version_id}".strip()


# The components that a stack holds and that an upgrade can move, in display order.
COMPONENTS: tuple[str, ...] = (
    "driver",
    "kernel_module",
    "cuda",
    "cudnn",
    "nccl",
    "fabric_manager",
    "container_toolkit",
    "dcgm",
    "kernel",
)


class SoftwareStack(StrictModel):
    """The GPU software on one host; ``None`` means not installed (or not wanted, in a target)."""

    driver: DriverVersion | None = None
    kernel_module: KernelModuleFlavor | None = None
    cuda: CudaVersion | None = Field(default=None, description="CUDA toolkit (not the driver's CUDA API)")
    cudnn: CudnnVersion | None = None
    nccl: NcclVersion | None = None
    fabric_manager: DriverVersion | None = None
    container_toolkit: ComponentVersion | None = None
    dcgm: ComponentVersion | None = None
    kernel: KernelVersion | None = None
    os: OsRelease | None = None

    @property
    def driver_branch(self) -> str | None:
        return self.driver.branch if self.driver else None

    def component(self, name: str) -> object | None:
        """The value of one component by name (``"nccl"``), for tables and drift reports."""
        if name not in COMPONENTS:
            raise KeyError(name)
        value: object | None = getattr(self, name)
        return value

    def describe(self) -> str:
        """One line, e.g. ``driver 580.159.04 (open), CUDA 13.0, cuDNN 9.19.0, NCCL 2.28.9``."""
        parts = []
        if self.driver:
            flavor = f" ({self.kernel_module})" if self.kernel_module else ""
            parts.append(f"driver {self.driver}{flavor}")
        labels = {"cuda": "CUDA", "cudnn": "cuDNN", "nccl": "NCCL", "fabric_manager": "fabric manager",
                  "container_toolkit": "container toolkit", "dcgm": "DCGM", "kernel": "kernel"}
        for name, label in labels.items():
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{label} {value}")
        return ", ".join(parts) or "no GPU software"


class FailureDomains(StrictModel):
    """Where a host shares fate with others: losing a rack, a leaf switch or an NVLink domain takes all of them."""

    rack: str | None = None
    switch: str | None = None
    nvlink_domain: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in (("rack", self.rack), ("switch", self.switch),
                                    ("nvlink_domain", self.nvlink_domain)) if v]


class SchedulerRef(StrictModel):
    """Which workload scheduler owns the node, and the node's name there (often not the inventory name)."""

    kind: SchedulerKind = SchedulerKind.NONE
    node_name: str | None = None


class Connection(StrictModel):
    """How to reach a host over SSH, as the inventory says (``ansible_host``, ``ansible_port``, ...)."""

    address: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = None
    private_key_file: str | None = None


class HostPackages(StrictModel):
    """The host's package manager, its installed builds and the builds its repositories offer (from facts)."""

    manager: str = "unknown"
    source: PackageSource | None = Field(default=None, description="None: not detected (the host is not planned)")
    installed: dict[str, str] = {}
    available: dict[str, tuple[str, ...]] = {}
    held: tuple[str, ...] = Field(default=(), description="packages held (apt) or version-locked (dnf) today")


class Host(StrictModel):
    """One GPU node: identity, placement, hardware and current stack."""

    name: str = Field(min_length=1)
    connection: Connection
    pool: str = Field(min_length=1)
    domains: FailureDomains = FailureDomains()
    scheduler: SchedulerRef = SchedulerRef()
    gpu: GpuModel
    gpu_count: int = Field(ge=0)
    nvswitch: bool = Field(default=False, description="NVSwitch system: fabric manager must match the driver")
    stack: SoftwareStack = SoftwareStack()
    packages: HostPackages = HostPackages()
    cordoned_by_hand: bool = False
    cordon_reason: str | None = None

    @property
    def address(self) -> str:
        return self.connection.address

    @property
    def scheduler_node(self) -> str:
        return self.scheduler.node_name or self.name


class Fleet(StrictModel):
    """All hosts under management; names are unique."""

    hosts: tuple[Host, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        dupes = [n for n, c in Counter(h.name for h in self.hosts).items() if c > 1]
        if dupes:
            raise ValueError(f"duplicate host names: {', '.join(sorted(dupes))}")
        return self

    @property
    def pools(self) -> dict[str, list[Host]]:
        out: dict[str, list[Host]] = {}
        for host in sorted(self.hosts, key=lambda h: (h.pool, h.name)):
            out.setdefault(host.pool, []).append(host)
        return out

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)
