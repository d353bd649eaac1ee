"""The lab's simulated NVIDIA RPM repository (rpmbuild + createrepo_c), for the lab's RPM-family hosts.

Names and versions follow NVIDIA's CUDA repository for RHEL 9 (``nvidia-open`` and ``nvidia-driver`` at
``3:580.95.05-1.el9``, ``kmod-nvidia-open-dkms``, ``cuda-drivers`` for the proprietary module; see
https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/version-locking.html). The payloads are the
same simulated tools as the .deb packages'. Packages carry no scriptlets: the RPM database of a lab host
(a Debian rootfs) is empty, so a scriptlet's automatic ``Requires: /bin/sh`` could never be met.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.lab.catalogue import Package, drivers
from orchestrator.lab.errors import LabError

RELEASE = "1.el9"
EPOCH = 3


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


def _spec(name: str, version: str, requires: tuple[str, ...], files: list[str], staging: Path) -> str:
    lines = [f"Name: {name}", f"Epoch: {EPOCH}", f"Version: {version}", f"Release: {RELEASE}",
             "Summary: simulated NVIDIA package for gpu-lab", "License: NVIDIA", "BuildArch: x86_64",
             "AutoReqProv: no", *(f"Requires: {r}" for r in requires),
             "%description", f"{name} {version}, simulated for gpu-lab.",
             "%install", "mkdir -p %{buildroot}", f"cp -a {staging}/. %{{buildroot}}/",
             "%files", *files, ""]
    return "\n".join(lines)


def build_rpm_repo(out: Path) -> None:
    """Build every RPM into ``out`` and index it with createrepo_c (a dnf ``baseurl=file://`` repository)."""
    for tool in ("rpmbuild", "createrepo_c"):
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
