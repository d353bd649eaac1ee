"""From a plan's version (``580.95.05``, CUDA ``13.0``) to the exact package and build a role pins.

Plans speak upstream versions; the roles pin exact builds (``580.95.05-0ubuntu1``) so that every host gets
the same one. Planning resolves the build from the builds the host's repositories offer (recorded by fact
collection as data, see ``HostPackages``); apply never picks one. Builds are ordered by dpkg's rules
(epoch, upstream, revision; ``~`` sorts before anything), which also order RPM's epoch:version-release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from orchestrator.model.stack import KernelModuleFlavor, SoftwareStack

_EPOCH = re.compile(r"^(\d+):")


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
    """``1:580.95.05-0ubuntu1`` -> ``580.95.05``: the build without epoch and revision."""
    text = _EPOCH.sub("", build)
    return text.rsplit("-", 1)[0] if "-" in text else text


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of one upstream or revision string: non-digit runs, then digit runs, alternating."""
    while a or b:
        na = re.match(r"^[^0-9]*", a).group(0)  # type: ignore[union-attr]
        nb = re.match(r"^[^0-9]*", b).group(0)  # type: ignore[union-attr]
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na):], b[len(nb):]
        da = re.match(r"^[0-9]*", a).group(0)  # type: ignore[union-attr]
        db = re.match(r"^[0-9]*", b).group(0)  # type: ignore[union-attr]
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[len(da):], b[len(db):]
    return 0


def compare_builds(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders two package versions (``dpkg --compare-versions``)."""
    def split(v: str) -> tuple[int, str, str]:
        m = _EPOCH.match(v)
        epoch = int(m.group(1)) if m else 0
        rest = v[m.end():] if m else v
        up, _, rev = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return epoch, up, rev

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def newest(builds: Iterable[str]) -> str | None:
    best: str | None = None
    for b in builds:
        if best is None or compare_builds(b, best) > 0:
            best = b
    return best


def matches(component: str, planned: str, build: str) -> bool:
    """Does ``build`` carry the planned version? A shorter version matches its updates (CUDA ``13.0`` any
    ``13.0.x``, cuDNN ``9.17.0`` the build ``9.17.0.29``); NCCL's ``+cudaX.Y`` must match too."""
    planned_up = upstream(planned).split("+")[0]
    up = upstream(build).split("+")[0]
    if component == "nccl" and "+cuda" in planned and build.split("+")[-1] != planned.split("+")[-1]:
        return False
    return up == planned_up or up.startswith(planned_up + ".") or build == planned


def pick_build(component: str, planned: str, available: Iterable[str]) -> str | None:
    """The newest offered build of the planned version, by dpkg's order; None when none is offered."""
    return newest(b for b in available if matches(component, planned, b))
