"""From a plan's version (``580.95.05``, CUDA ``13.0``) to the exact package and build a role pins.

Plans speak upstream versions; the roles pin exact builds (``580.95.05-0ubuntu1``) so that every host gets
the same one. Planning resolves the build from the builds the host's repositories offer (recorded by fact
collection as data, see ``HostPackages``); apply never picks one. Builds are ordered by the host's own
package manager's rules (``model/pkgorder.py``: dpkg's for apt hosts, rpm's vercmp for dnf hosts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.model import pkgorder
from orchestrator.model.stack import HostPackages, KernelModuleFlavor, PackageSource, SoftwareStack
from orchestrator.model.versions import upstream_of


@dataclass(frozen=True)
class Naming:
    """How a host's source names its packages: the source, and on the Ubuntu archive which series (the
    ``-server`` one that data-centre hosts use, or the desktop one) the host follows."""

    source: PackageSource = PackageSource.UBUNTU
    server: bool = False

    @classmethod
    def of(cls, packages: HostPackages) -> Naming:
        """The host's naming; a host built without facts (source None) is named as on the Ubuntu archive.
        Hosts whose facts could not tell their source never reach the planner (see ``build_fleet``)."""
        source = packages.source or PackageSource.UBUNTU
        if source is not PackageSource.UBUNTU:
            return cls(source)
        # The series the installed driver follows; a host without one takes the -server series when offered.
        installed = [n for n in packages.installed if _UBUNTU_DRIVER.match(n)]
        names = installed or list(packages.available)
        return cls(source, any(_UBUNTU_DRIVER.match(n) and "-server" in n for n in names))


_UBUNTU_DRIVER = re.compile(r"^nvidia-driver-\d{3}(?:-server)?(?:-open)?$")
# The CUDA repository for Ubuntu/Debian drops the branch from its package names from 590 on and tracks a branch
# with a pinning package instead (NVIDIA driver installation guide, "Recent updates: Ubuntu 590 and later").
_APT_UNVERSIONED_FROM = 590


def package_name(component: str, target: SoftwareStack, naming: Naming = Naming()) -> str | None:
    """The package that carries ``component`` at the stack's version from the host's source; None when the
    stack lacks it."""
    src = naming.source
    if component in ("driver", "kernel_module"):
        if target.driver is None:
            return None
        b, is_open = target.driver.major, target.kernel_module == KernelModuleFlavor.OPEN
        if src is PackageSource.CUDA_DNF:  # the branch is chosen by the module stream / versionlock
            return "nvidia-open" if is_open else "cuda-drivers"
        if src is PackageSource.CUDA_APT:
            name = "nvidia-open" if is_open else "cuda-drivers"
            return name if b >= _APT_UNVERSIONED_FROM else f"{name}-{b}"
        return f"nvidia-driver-{b}{'-server' if naming.server else ''}{'-open' if is_open else ''}"
    if component == "fabric_manager":
        if target.fabric_manager is None:
            return None
        if src is PackageSource.CUDA_DNF:
            return "nvidia-fabric-manager"
        return f"nvidia-fabricmanager-{target.fabric_manager.major}"
    if component == "cuda":
        return None if target.cuda is None else f"cuda-toolkit-{target.cuda.major}-{target.cuda.minor}"
    if component == "cudnn":
        if target.cudnn is None:
            return None
        if target.cudnn.major < 9:
            return f"libcudnn{target.cudnn.major}"
        return f"libcudnn{target.cudnn.major}-cuda-{cudnn_cuda_major(target)}"
    if component == "nccl":
        if target.nccl is None:
            return None
        return "libnccl" if src is PackageSource.CUDA_DNF else "libnccl2"
    if component == "dcgm":
        if target.dcgm is None:
            return None
        return "datacenter-gpu-manager-4-core" if target.dcgm.major >= 4 else "datacenter-gpu-manager"
    if component == "container_toolkit":
        return None if target.container_toolkit is None else "nvidia-container-toolkit"
    if component == "kernel":
        if target.kernel is None:
            return None
        # RHEL: the ``kernel`` package at ``version-release`` (the release without its arch); Debian and Ubuntu:
        # one image package per release, ``linux-image-6.8.0-90-generic``.
        return "kernel" if src is PackageSource.CUDA_DNF else f"linux-image-{target.kernel}"
    return None


_RPM_ARCH = re.compile(r"\.(?:x86_64|aarch64|ppc64le|s390x)$")


def kernel_build(release: str) -> str:
    """``5.14.0-570.el9.x86_64`` -> ``5.14.0-570.el9``: the RPM version-release of a kernel release."""
    return _RPM_ARCH.sub("", release)


def kernel_companions(target: SoftwareStack, naming: Naming, build: str,
                      offered: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], str | None]:
    """The packages installed and held with the kernel image at its exact ``build``, each only where offered at
    that build, and why the kernel would boot without an NVIDIA module (None when it has one).

    RHEL (CUDA repository): ``kernel-core``, ``kernel-modules`` and ``kernel-devel``, which DKMS
    (``kmod-nvidia-*-dkms``) builds the module against. Debian/Ubuntu: ``linux-modules-<K>``, then either the
    archive's precompiled ``linux-modules-nvidia-<branch>[-server][-open]-<K>`` (Ubuntu archive, same build as the
    kernel: https://packages.ubuntu.com/noble-updates/linux-modules-nvidia-580-server-open-6.8.0-90-generic) or
    ``linux-headers-<K>`` for DKMS.
    """
    assert target.kernel is not None
    release = str(target.kernel)

    def at_build(name: str) -> bool:
        return build in offered.get(name, ())

    if naming.source is PackageSource.CUDA_DNF:
        rpms = tuple(n for n in ("kernel-core", "kernel-modules", "kernel-devel") if at_build(n))
        if "kernel-devel" not in rpms:
            return rpms, f"kernel-devel {build} is not offered: DKMS cannot build the NVIDIA module for {release}"
        return rpms, None
    names = [n for n in (f"linux-modules-{release}",) if at_build(n)]
    precompiled = precompiled_module(target, naming, release) if naming.source is PackageSource.UBUNTU else None
    headers = f"linux-headers-{release}"
    if precompiled is not None and at_build(precompiled):
        names.append(precompiled)
    elif at_build(headers):
        names.append(headers)
    else:
        wanted = f"{precompiled} or {headers}" if precompiled else headers
        return tuple(names), f"{wanted} {build} is not offered: kernel {release} would boot without an NVIDIA module"
    return tuple(names), None


def driver_extras(target: SoftwareStack, naming: Naming, kernel: str | None,
                  offered: Iterable[str] = (), installed: Iterable[str] = ()) -> dict[str, str]:
    """The packages that go with the driver package on the host's source, by role variable: the kernel module
    package (precompiled on the Ubuntu archive, DKMS on the CUDA repository for RHEL), the dnf module stream
    and the apt branch pinning package. Exact names, so that no role derives one.

    Ubuntu archive: a host that runs a precompiled module (a ``linux-modules-nvidia-*`` package installed) gets
    the new branch's module package for the kernel it runs (``linux-modules-nvidia-580-server-open-6.8.0-90-
    generic``, one name per kernel release: a flavour metapackage would pull the newest kernel with it), where
    the archive offers it; a host on DKMS keeps DKMS (the driver package builds its module)."""
    if target.driver is None:
        return {}
    b, is_open = target.driver.major, target.kernel_module == KernelModuleFlavor.OPEN
    if naming.source is PackageSource.CUDA_DNF:
        return {"upgrade_host_module_package": "kmod-nvidia-open-dkms" if is_open else "kmod-nvidia-latest-dkms",
                "upgrade_host_module_stream": f"nvidia-driver:{b}-{'open' if is_open else 'dkms'}"}
    if naming.source is PackageSource.CUDA_APT:
        if b < _APT_UNVERSIONED_FROM:
            return {}
        # NVIDIA's pinning packages lock a driver version or a branch; installed before the driver (driver
        # installation guide, "Recent updates: Version locking packages for Ubuntu / Debian").
        exact = f"nvidia-driver-pinning-{upstream(str(target.driver))}"
        return {"upgrade_host_pinning_package": exact if exact in set(offered) else f"nvidia-driver-pinning-{b}"}
    module = precompiled_module(target, naming, kernel)
    if module is None or not any(PRECOMPILED.match(n) for n in installed):
        return {}
    # Only where the archive offers it: otherwise the step is left out with one line (see steps.py).
    return {"upgrade_host_module_package": module} if module in set(offered) else {}


# Ubuntu's precompiled, signed module packages: per branch, flavour and kernel release.
PRECOMPILED = re.compile(r"^linux-modules-nvidia-\d{3}(?:-server)?(?:-open)?-.+$")


def precompiled_module(target: SoftwareStack, naming: Naming, kernel: str | None) -> str | None:
    """``linux-modules-nvidia-<branch>[-server][-open]-<kernel release>`` for the target's driver."""
    if target.driver is None or not kernel:
        return None
    is_open = target.kernel_module == KernelModuleFlavor.OPEN
    series = f"{target.driver.major}{'-server' if naming.server else ''}{'-open' if is_open else ''}"
    return f"linux-modules-nvidia-{series}-{kernel}"


# NVIDIA's CUDA repository for RHEL splits the driver into packages that share its build (epoch 3); dnf moves and
# locks them together with the metapackage, or a downgrade leaves the metapackage's exact requirements unmet.
_DNF_DRIVER_PARTS = ("nvidia-driver", "nvidia-driver-libs", "nvidia-driver-cuda", "nvidia-driver-cuda-libs",
                     "nvidia-kmod-common", "nvidia-modprobe", "nvidia-persistenced", "nvidia-settings")


def companions(component: str, package: str, build: str, naming: Naming, extras: dict[str, str],
               offered: dict[str, tuple[str, ...]] | dict[str, list[str]]) -> tuple[str, ...]:
    """dnf hosts: the packages moved and locked at ``build`` beside the driver's ``package``, each only where
    the host's repositories offer it at that exact build."""
    if naming.source is not PackageSource.CUDA_DNF or component not in ("driver", "kernel_module"):
        return ()
    names = [*_DNF_DRIVER_PARTS, extras.get("upgrade_host_module_package", "")]
    return tuple(n for n in dict.fromkeys(names) if n and n != package and build in offered.get(n, ()))


def kernel_flavour(kernel: str | None) -> str | None:
    """``6.8.0-45-generic`` -> ``generic``; ``5.15.0-1063-nvidia-64k`` -> ``nvidia-64k``; None for non-Ubuntu."""
    m = re.match(r"^\d+\.\d+\.\d+-\d+-([a-z][a-z0-9-]*)$", kernel or "")
    return m.group(1) if m else None


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
    if component == "kernel":  # RPM: the release's version-release; dpkg: the image package names the release
        return build.split(":")[-1] == kernel_build(planned) or planned.startswith(upstream(build) + "-")
    planned_up = upstream(planned).split("+")[0]
    up = upstream(build).split("+")[0]
    if component == "nccl" and "+cuda" in planned and build.split("+")[-1] != planned.split("+")[-1]:
        return False
    return up == planned_up or up.startswith(planned_up + ".") or build == planned


def pick_build(component: str, planned: str, available: Iterable[str], manager: str = "apt") -> str | None:
    """The newest offered build of the planned version, by the host's package manager's order; None when
    none is offered."""
    return newest((b for b in available if matches(component, planned, b)), manager)
