"""From a plan's version (``580.95.05``, CUDA ``13.0``) to the exact package and build a role pins.

Plans speak upstream versions; the roles pin exact builds (``580.95.05-0ubuntu1``) so that every host gets
the same one. Planning resolves the build from the builds the host's repositories offer (recorded by fact
collection as data, see ``HostPackages``); apply never picks one. Builds are ordered by the host's own
package manager's rules (``model/pkgorder.py``: dpkg's for apt hosts, rpm's vercmp for dnf hosts).
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.model import pkgorder
from orchestrator.model.stack import KernelModuleFlavor, SoftwareStack
from orchestrator.model.versions import upstream_of


def package_name(component: str, target: SoftwareStack) -> str | None:
    """The package that carries ``component`` at the stack's version; None when the stack lacks it."""
    if component in ("driver", "kernel_module"):
        if target.driver is None:
            return None
        suffix = "-open" if target.kernel_module == KernelModuleFlavor.OPEN else ""
        return f"nvidia-driver-{target.driver.major}{suffix}"
    if component == "fabric_manager":
        return None if target.fabric_manager is None else f"nvidia-fabricmanager-{target.fabric_manager.major}"
    if component == "cuda":
        return None if target.cuda is None else f"cuda-toolkit-{target.cuda.major}-{target.cuda.minor}"
    if component == "cudnn":
        if target.cudnn is None:
            return None
        if target.cudnn.major < 9:
            return f"libcudnn{target.cudnn.major}"
        return f"libcudnn{target.cudnn.major}-cuda-{cudnn_cuda_major(target)}"
    if component == "nccl":
        return None if target.nccl is None else "libnccl2"
    if component == "dcgm":
        if target.dcgm is None:
            return None
        return "datacenter-gpu-manager-4-core" if target.dcgm.major >= 4 else "datacenter-gpu-manager"
    if component == "container_toolkit":
        return None if target.container_toolkit is None else "nvidia-container-toolkit"
    return None


def cudnn_cuda_major(target: SoftwareStack) -> int:
    """cuDNN 9 ships one package per CUDA major: the target toolkit's, else the one NCCL was built for."""
    if target.cuda is not None:
        return target.cuda.major
    if target.nccl is not None and target.nccl.cuda is not None:
        return target.nccl.cuda.major
    return 12


def upstream(build: str) -> str:
    """``1:580.95.05-0ubuntu1`` -> ``580.95.05``, ``2.18.5-1-2`` -> ``2.18.5``, ``3:440.64.00-1.el7`` ->
    ``440.64.00``: the release the build packages, without epoch, revision, build or distribution tags."""
    return upstream_of(build)


def compare_builds(a: str, b: str, manager: str = "apt") -> int:
    """-1, 0 or 1 as the host's package manager orders two builds (dpkg's rules for apt, rpm's for dnf)."""
    return pkgorder.compare(manager, a, b)


def newest(builds: Iterable[str], manager: str = "apt") -> str | None:
    return pkgorder.newest(manager, builds)


def matches(component: str, planned: str, build: str) -> bool:
    """Does ``build`` carry the planned version? A shorter version matches its updates (CUDA ``13.0`` any
    ``13.0.x``, cuDNN ``9.17.0`` the build ``9.17.0.29``); NCCL's ``+cudaX.Y`` must match too."""
    planned_up = upstream(planned).split("+")[0]
    up = upstream(build).split("+")[0]
    if component == "nccl" and "+cuda" in planned and build.split("+")[-1] != planned.split("+")[-1]:
        return False
    return up == planned_up or up.startswith(planned_up + ".") or build == planned


def pick_build(component: str, planned: str, available: Iterable[str], manager: str = "apt") -> str | None:
    """The newest offered build of the planned version, by the host's package manager's order; None when
    none is offered."""
    return newest((b for b in available if matches(component, planned, b)), manager)
