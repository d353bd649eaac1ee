"""Validated facts of a host and of a fleet: the format ``upgrade facts --output json`` writes and reads.

The collector returns plain dicts; these models check them strictly (a changed collector or a hand-edited
snapshot fails loudly) and turn them into the fleet vocabulary (:class:`SoftwareStack`).
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Self, TypeVar

from pydantic import Field, StringConstraints, model_validator

from orchestrator.errors import FactsError, InputError
from orchestrator.loading import validate
from orchestrator.model.gpus import GpuModel, find_gpu, uncatalogued_gpu
from orchestrator.model.stack import FormatVersion, KernelModuleFlavor, OsRelease, SoftwareStack, StrictModel
from orchestrator.model.versions import (
    ComponentVersion,
    CudaVersion,
    CudnnVersion,
    DriverVersion,
    KernelVersion,
    NcclVersion,
    _Version,
)

SNAPSHOT_SCHEMA_VERSION: Literal[1] = 1


class DriverStatus(StrEnum):
    OK = "ok"
    NOT_INSTALLED = "not_installed"
    NOT_LOADED = "not_loaded"
    VERSION_MISMATCH = "version_mismatch"
    NO_DEVICES = "no_devices"
    ERROR = "error"


class DriverFacts(StrictModel):
    status: DriverStatus
    version: str | None = None
    cuda_driver_api: str | None = Field(default=None, description="highest CUDA the driver supports natively")
    flavor: KernelModuleFlavor | None = None
    loaded_module: str | None = Field(default=None, description="version in /proc/driver/nvidia/version")
    package: str | None = None
    package_version: str | None = None
    message: str | None = None


class GpuFacts(StrictModel):
    index: int
    name: str
    uuid: str = ""
    pci_bus_id: str = ""
    architecture: str | None = Field(default=None, description="nvidia-smi -q -x product_architecture")
    compute_capability: str | None = Field(default=None, description="nvidia-smi --query-gpu=compute_cap")
    vbios: str | None = None
    memory_total_mib: int | None = None
    persistence_mode: str | None = None
    mig_mode: str | None = None


class ComponentFacts(StrictModel):
    """One library or tool: its version (as the package or tool says it) and where that came from."""

    version: str | None = None
    package: str | None = None
    source: str | None = None
    flavor: str | None = None
    also: list[str] = []
    missing: str | None = None


class CudaFacts(StrictModel):
    version: str | None = None
    source: str | None = None
    installed: list[str] = []
    missing: str | None = None


class PackageIndex(StrictModel):
    """What the host's package manager offers: every build of the GPU stack's package families."""

    manager: Literal["apt", "dnf", "unknown"] = "unknown"
    source: Literal["ubuntu", "cuda-apt", "cuda-dnf"] | None = None
    source_evidence: str | None = Field(default=None, description="what the source was detected from")
    available: dict[str, list[str]] = {}


# A kernel release, module version or DKMS state as a host wrote it: printable, one word, bounded (a state
# may be empty: a dkms line cut short).
HostWord = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f]{1,128}$")]
DkmsState = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f]{0,64}$")]


class KernelModuleFacts(StrictModel):
    """How the NVIDIA kernel module reaches the host's kernels (``orchestrator/hostside/kernel_modules.py``)."""

    packaging: Literal["precompiled", "dkms"] | None = Field(
        default=None, description="precompiled: a linux-modules-nvidia package; dkms: a DKMS package; None: neither")
    dkms: dict[HostWord, dict[HostWord, DkmsState]] | None = Field(
        default=None, description="dkms status of nvidia: module version -> kernel -> state; None: no dkms")
    kernels: dict[HostWord, HostWord | None] = Field(
        default={}, description="each installed kernel (/lib/modules) -> its nvidia module version, None: none")


class HostFacts(StrictModel):
    """Everything collected from one reachable host."""

    host: str = Field(min_length=1)
    collected_at: str
    schema_version: FormatVersion = SNAPSHOT_SCHEMA_VERSION
    kernel: str
    os: OsRelease | None = None
    boot_id: str | None = None
    packages: dict[str, str] = {}
    held_packages: list[str] = []
    package_index: PackageIndex = PackageIndex()
    driver: DriverFacts
    # None: a snapshot written before the collector reported it
    kernel_modules: KernelModuleFacts | None = None
    gpus: list[GpuFacts] = []
    cuda: CudaFacts
    cudnn: ComponentFacts
    nccl: ComponentFacts
    fabric_manager: ComponentFacts
    dcgm: ComponentFacts
    container_toolkit: ComponentFacts
    problems: list[str] = []

    def gpu_model(self) -> GpuModel | None:
        """The host's GPU model: the catalogue's for nvidia-smi's product name, else one described by what the
        host reports (architecture, compute capability); None when no GPU could be listed. A name the
        catalogue lacks on a host that reports neither is a FactsError naming the host and the model."""
        if not self.gpus:
            return None
        names = sorted({g.name for g in self.gpus})
        if len(names) > 1:
            raise FactsError(f"host {self.host}", f"mixed GPU models in one host: {', '.join(names)}")
        known = find_gpu(names[0])
        if known is not None:
            return known
        first = self.gpus[0]
        described = uncatalogued_gpu(names[0], first.architecture, first.compute_capability)
        if described is None:
            raise FactsError(f"host {self.host}", f"GPU model {names[0]!r} is not in the catalogue and the host "
                                                  "reports neither its architecture nor its compute capability")
        return described

    def stack(self) -> SoftwareStack:
        """The host's current stack in typed versions; an unparsable version names the host and component."""
        try:
            return _stack(self.driver.version, self.driver.flavor, self.cuda.version, self.cudnn.version,
                          self.nccl.version, self.fabric_manager.version, self.container_toolkit.version,
                          self.dcgm.version, self.kernel, self.os)
        except InputError:
            pass  # parse component by component below, so the message names the component
        texts = {"driver": self.driver.version, "cuda": self.cuda.version, "cudnn": self.cudnn.version,
                 "nccl": self.nccl.version, "fabric_manager": self.fabric_manager.version,
                 "container_toolkit": self.container_toolkit.version, "dcgm": self.dcgm.version,
                 "kernel": self.kernel}
        parsed: dict[str, object] = {}
        for name, text in texts.items():
            try:
                if not text:
                    parsed[name] = None
                elif name == "fabric_manager":
                    parsed[name] = DriverVersion.from_package(text)
                else:
                    parsed[name] = _PARSERS[name](text)
            except InputError as exc:
                raise FactsError(f"host {self.host}", f"{name}: {exc}") from exc
        return SoftwareStack.model_validate({**parsed, "kernel_module": self.driver.flavor, "os": self.os})


_PARSERS: dict[str, type[_Version]] = {
    "driver": DriverVersion, "cuda": CudaVersion, "cudnn": CudnnVersion, "nccl": NcclVersion,
    "container_toolkit": ComponentVersion, "dcgm": ComponentVersion, "kernel": KernelVersion,
}


V = TypeVar("V", DriverVersion, CudaVersion, CudnnVersion, NcclVersion, ComponentVersion, KernelVersion)


def _opt(cls: type[V], text: str | None) -> V | None:
    return cls(text) if text else None


@lru_cache(maxsize=4096)
def _stack(driver: str | None, flavor: KernelModuleFlavor | None, cuda: str | None, cudnn: str | None,
           nccl: str | None, fabric_manager: str | None, container_toolkit: str | None, dcgm: str | None,
           kernel: str, os: OsRelease | None) -> SoftwareStack:
    """Parsed once per distinct set of version strings: a fleet has few, met thousands of times."""
    return SoftwareStack(
        driver=_opt(DriverVersion, driver),
        kernel_module=flavor,
        cuda=_opt(CudaVersion, cuda),
        cudnn=_opt(CudnnVersion, cudnn),
        nccl=_opt(NcclVersion, nccl),
        fabric_manager=DriverVersion.from_package(fabric_manager) if fabric_manager else None,
        container_toolkit=_opt(ComponentVersion, container_toolkit),
        dcgm=_opt(ComponentVersion, dcgm),
        kernel=_opt(KernelVersion, kernel),
        os=os,
    )


class UnreachableHost(StrictModel):
    host: str
    reason: str


class FactsSnapshot(StrictModel):
    """A fleet's facts at one moment: what ``upgrade facts --output json`` writes, what planning reads offline."""

    schema_version: FormatVersion = SNAPSHOT_SCHEMA_VERSION
    collected_at: str
    inventory: str = ""
    hosts: list[HostFacts] = []
    unreachable: list[UnreachableHost] = []

    @model_validator(mode="after")
    def _each_host_once(self) -> Self:
        twice = sorted(n for n, c in Counter([h.host for h in self.hosts] + [u.host for u in self.unreachable]).items()
                       if c > 1)
        if twice:
            raise ValueError(f"host {twice[0]} is listed more than once")
        return self

    def by_host(self) -> dict[str, HostFacts]:
        return {h.host: h for h in self.hosts}


def parse_host_facts(host: str, collected_at: str, raw: dict[str, object]) -> HostFacts:
    """Validate one collector result; a malformed one becomes a FactsError naming the host."""
    return validate(HostFacts, {"host": host, "collected_at": collected_at, **raw}, f"host {host}", FactsError,
                    prefix="collector returned unexpected facts: ")


__all__ = [
    "ComponentFacts",
    "CudaFacts",
    "DriverFacts",
    "DriverStatus",
    "FactsSnapshot",
    "GpuFacts",
    "HostFacts",
    "KernelModuleFacts",
    "PackageIndex",
    "UnreachableHost",
    "parse_host_facts",
]
