"""From a plan's version (``580.95.05``, CUDA ``13.0``) to the exact package version a role pins.

Plans speak upstream versions; the roles pin exact package versions (``580.95.05-0ubuntu1``) so that
every host gets the same build. The host's own repository answers which builds exist (``apt-cache
madison``); the newest build whose upstream version matches the plan's is taken. Package names follow
docs/conventions.md.
"""

from __future__ import annotations

import re

from orchestrator.errors import UpgradeError
from orchestrator.model.stack import KernelModuleFlavor, SoftwareStack

_EPOCH = re.compile(r"^\d+:")


class PackageNotFound(UpgradeError):
    """The host's repositories carry no build of the planned version."""

    def __init__(self, host: str, package: str, version: str, available: list[str]) -> None:
        super().__init__(host, package, version, available)
        self.host, self.package, self.version, self.available = host, package, version, available

    def __str__(self) -> str:
        have = ", ".join(self.available[:6]) or "none"
        return f"{self.host}: no build of {self.package} {self.version} in its repositories (available: {have})"


def package_name(component: str, target: SoftwareStack) -> str:
    """The package that carries ``component`` at the target stack's version."""
    if component == "driver":
        assert target.driver is not None
        suffix = "-open" if target.kernel_module == KernelModuleFlavor.OPEN else ""
        return f"nvidia-driver-{target.driver.major}{suffix}"
    if component == "fabric_manager":
        assert target.fabric_manager is not None
        return f"nvidia-fabricmanager-{target.fabric_manager.major}"
    if component == "cuda":
        assert target.cuda is not None
        return f"cuda-toolkit-{target.cuda.major}-{target.cuda.minor}"
    if component == "cudnn":
        assert target.cudnn is not None
        if target.cudnn.major < 9:
            return f"libcudnn{target.cudnn.major}"
        return f"libcudnn{target.cudnn.major}-cuda-{cudnn_cuda_major(target)}"
    if component == "nccl":
        return "libnccl2"
    if component == "dcgm":
        assert target.dcgm is not None
        return "datacenter-gpu-manager-4-core" if target.dcgm.major >= 4 else "datacenter-gpu-manager"
    if component == "container_toolkit":
        return "nvidia-container-toolkit"
    raise ValueError(f"no package for component {component!r}")


def cudnn_cuda_major(target: SoftwareStack) -> int:
    """cuDNN 9 ships one package per CUDA major: the target toolkit's, else the one NCCL was built for."""
    if target.cuda is not None:
        return target.cuda.major
    if target.nccl is not None and target.nccl.cuda is not None:
        return target.nccl.cuda.major
    return 12


def parse_madison(text: str) -> list[str]:
    """``apt-cache madison PKG`` lines (``pkg | 580.95.05-0ubuntu1 | file:/srv/repo ./ Packages``) -> versions."""
    versions = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and parts[1] and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def upstream(package_version: str) -> str:
    text = _EPOCH.sub("", package_version)
    return text.rsplit("-", 1)[0] if "-" in text else text


def pick_version(component: str, planned: str, available: list[str]) -> str | None:
    """The newest available build matching ``planned``; CUDA ``13.0`` matches any ``13.0.x`` update."""
    planned_up = upstream(planned).split("+")[0]

    def matches(candidate: str) -> bool:
        up = upstream(candidate).split("+")[0]
        if component == "cuda" and planned_up.count(".") == 1:
            return up == planned_up or up.startswith(planned_up + ".")
        if component == "nccl" and "+cuda" in planned:
            return candidate.split("+")[-1] == planned.split("+")[-1] and up == planned_up
        return up == planned_up or candidate == planned

    def key(candidate: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", _EPOCH.sub("", candidate)))

    found = sorted((c for c in available if matches(c)), key=key)
    return found[-1] if found else None
