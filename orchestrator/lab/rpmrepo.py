"""The lab's simulated NVIDIA RPM repository (rpmbuild + createrepo_c + modifyrepo_c), for the lab's RPM-family hosts.

Names and versions follow NVIDIA's CUDA repository for RHEL 9 (``nvidia-open`` and ``nvidia-driver`` at
``3:580.95.05-1.el9``, ``kmod-nvidia-open-dkms``, ``cuda-drivers`` for the proprietary module; see
https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/version-locking.html). The payloads are the
same simulated tools as the .deb packages'. Packages carry no scriptlets: the RPM database of a lab host
(a Debian rootfs) is empty, so a scriptlet's automatic ``Requires: /bin/sh`` could never be met.

Like NVIDIA's repository for RHEL 8/9, the repository carries module metadata (modulemd v2, ``modules.yaml``):
the ``nvidia-driver`` module with a stream per branch and kernel module flavour (``580-open``, ``580-dkms``...),
which hosts enable before installing (``dnf module enable nvidia-driver:580-open``; see
https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html). dnf's modular
filtering then hides the driver packages of every stream that is not enabled.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from orchestrator.lab.catalogue import Package, drivers
from orchestrator.lab.errors import LabError

RELEASE = "1.el9"
EPOCH = 3
ARCH = "x86_64"
MODULE = "nvidia-driver"


def rpm_catalogue() -> list[tuple[str, str, tuple[str, ...], Package | None]]:
    """(name, version, requires, payload package) per RPM: per driver version the userspace driver, the DKMS
    kernel module and the flavour's metapackage, as NVIDIA's repository splits them."""
    out: list[tuple[str, str, tuple[str, ...], Package | None]] = []
    debs = {(p.name, p.version.split("-")[0]): p for p in drivers()}
    for (name, version), deb in sorted(debs.items()):
        if not name.endswith("-open"):
            continue
        evr = f"{EPOCH}:{version}-{RELEASE}"
        out.append(("nvidia-driver", version, (), deb))
        out.append(("kmod-nvidia-open-dkms", version, (), None))
        out.append(("nvidia-open", version, (f"nvidia-driver = {evr}", f"kmod-nvidia-open-dkms = {evr}"), None))
    return sorted(out, key=lambda r: (r[0], r[1]))


def nevra(name: str, version: str) -> str:
    return f"{name}-{EPOCH}:{version}-{RELEASE}.{ARCH}"


def module_streams() -> dict[str, tuple[str, ...]]:
    """Stream of the ``nvidia-driver`` module -> the NEVRAs it lists, per branch the catalogue offers:
    ``<branch>-open`` (nvidia-open, the userspace driver and the open DKMS module) and ``<branch>-dkms`` (the
    proprietary flavour's stream; the lab builds only its userspace driver, nvidia-driver)."""
    streams: dict[str, list[str]] = {}
    for name, version, _, _ in rpm_catalogue():
        branch = version.split(".")[0]
        streams.setdefault(f"{branch}-open", []).append(nevra(name, version))
        if name == "nvidia-driver":
            streams.setdefault(f"{branch}-dkms", []).append(nevra(name, version))
    return {stream: tuple(sorted(rpms)) for stream, rpms in sorted(streams.items())}


def modules_yaml() -> str:
    """The repository's ``modules.yaml``: one modulemd v2 document per stream."""
    docs = [{"document": "modulemd", "version": 2, "data": {
        "name": MODULE, "stream": stream, "version": 1, "context": "00000000", "arch": ARCH,
        "summary": "simulated NVIDIA driver for gpu-lab",
        "description": (f"NVIDIA driver branch {stream.split('-')[0]} ({stream.split('-', 1)[1]}), "
                        "simulated for gpu-lab."),
        "license": {"module": ["NVIDIA"]},
        "profiles": {"default": {"rpms": ["nvidia-open" if stream.endswith("-open") else "nvidia-driver"]}},
        "artifacts": {"rpms": list(rpms)}}} for stream, rpms in module_streams().items()]
    return yaml.safe_dump_all(docs, explicit_start=True, explicit_end=True, sort_keys=False)


def _spec(name: str, version: str, requires: tuple[str, ...], files: list[str], staging: Path) -> str:
    lines = [f"Name: {name}", f"Epoch: {EPOCH}", f"Version: {version}", f"Release: {RELEASE}",
             "Summary: simulated NVIDIA package for gpu-lab", "License: NVIDIA", "BuildArch: x86_64",
             "AutoReqProv: no", *(f"Requires: {r}" for r in requires),
             "%description", f"{name} {version}, simulated for gpu-lab.",
             "%install", "mkdir -p %{buildroot}", f"cp -a {staging}/. %{{buildroot}}/",
             "%files", *files, ""]
    return "\n".join(lines)


def build_rpm_repo(out: Path) -> None:
    """Build every RPM into ``out``, index it with createrepo_c (a dnf ``baseurl=file://`` repository) and add
    the module metadata with modifyrepo_c."""
    for tool in ("rpmbuild", "createrepo_c", "modifyrepo_c"):
        if shutil.which(tool) is None:
            raise LabError("RPM repository", f"{tool} not found", "run scripts/setup.sh (rpm, createrepo-c)")
    from orchestrator.lab.repo import _compile  # repo.py imports this module

    out.mkdir(parents=True, exist_ok=True)
    for name, version, requires, deb in rpm_catalogue():
        with tempfile.TemporaryDirectory(prefix="gpu-lab-rpm-") as tmp:
            top, staging = Path(tmp) / "top", Path(tmp) / "staging"
            staging.mkdir(parents=True)
            files: list[str] = []
            payload = deb.files if deb is not None else ()
            if name == "kmod-nvidia-open-dkms":
                target = staging / f"usr/src/nvidia-{version}/dkms.conf"
                target.parent.mkdir(parents=True)
                target.write_text(f'PACKAGE_NAME="nvidia"\nPACKAGE_VERSION="{version}"\n')
                files.append(f"/usr/src/nvidia-{version}/dkms.conf")
            for f in payload:
                if f.path.startswith("/usr/src/"):
                    continue  # the kmod package's
                target = staging / f.path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                if f.link is not None:
                    target.symlink_to(f.link)
                elif f.compile is not None and deb is not None:  # the simulated libcuda, built as for the .deb
                    _compile(f.content, f.compile, target, deb)
                    target.chmod(f.mode)
                else:
                    target.write_text(f.content, encoding="utf-8")
                    target.chmod(f.mode)
                files.append(f.path)
            spec = Path(tmp) / f"{name}.spec"
            spec.write_text(_spec(name, version, requires, files, staging))
            proc = subprocess.run(["rpmbuild", "--quiet", "--define", f"_topdir {top}", "-bb", str(spec)],
                                  capture_output=True, text=True, check=False, timeout=120)
            if proc.returncode != 0:
                raise LabError(f"RPM {name} {version}", (proc.stderr or proc.stdout).strip()[-300:])
            for rpm in (top / "RPMS").rglob("*.rpm"):
                shutil.move(str(rpm), out / rpm.name)
    proc = subprocess.run(["createrepo_c", "-q", str(out)], capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise LabError("RPM repository", proc.stderr.strip() or "createrepo_c failed")
    with tempfile.TemporaryDirectory(prefix="gpu-lab-modules-") as tmp:
        modules = Path(tmp) / "modules.yaml"
        modules.write_text(modules_yaml(), encoding="utf-8")
        proc = subprocess.run(["modifyrepo_c", "--mdtype=modules", str(modules), str(out / "repodata")],
                              capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise LabError("RPM repository", proc.stderr.strip() or "modifyrepo_c failed")
