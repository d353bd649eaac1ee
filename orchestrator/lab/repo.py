"""Build the air-gapped apt repository of simulated NVIDIA packages (dpkg-deb + a flat Packages index).

The repository is cached under the state folder and rebuilt only when the catalogue or its payload
changes (a digest of both is stored next to it). Hosts see it read-only at ``/srv/gpu-lab-repo``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.lab.catalogue import FAULT_PREINST, Package, catalogue
from orchestrator.lab.errors import LabError
from orchestrator.lab.rpmrepo import build_rpm_repo, rpm_catalogue

STAMP = ".gpu-lab-digest"
# How packages are built from the catalogue; a change here rebuilds the repositories too (2: RPMs carry the
# simulated CUDA libraries compiled, as the .deb packages do; 3: the RPM repository carries the nvidia-driver
# module's streams).
BUILD_RULES = 3


def digest() -> str:
    """Identifies the catalogue and payloads: a new digest means a new repository (and new stack layers)."""
    data = json.dumps([p.model_dump(mode="json") for p in catalogue()] + [list(r[:3]) for r in rpm_catalogue()]
                      + [BUILD_RULES], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _control(pkg: Package, installed_kb: int) -> str:
    lines = [
        f"Package: {pkg.name}", f"Version: {pkg.version}", "Architecture: amd64",
        "Maintainer: gpu-lab <gpu-lab@localhost>", f"Installed-Size: {installed_kb}",
        f"Section: {pkg.section}", "Priority: optional",
    ]
    for field, values in (("Depends", pkg.depends), ("Provides", pkg.provides),
                          ("Conflicts", pkg.conflicts), ("Replaces", pkg.replaces)):
        if values:
            lines.append(f"{field}: {', '.join(values)}")
    lines.append(f"Description: {pkg.description}")
    return "\n".join(lines) + "\n"


def _compile(source: str, flags: tuple[str, ...], target: Path, pkg: Package) -> int:
    """Build C source into the shared object ``target`` (the simulated CUDA libraries); returns its size."""
    src = target.with_name(target.name + ".c")
    src.write_text(source, encoding="utf-8")
    proc = subprocess.run(["gcc", "-std=gnu99", "-shared", "-fPIC", "-O1", *flags, "-o", str(target), str(src)],
                          capture_output=True, text=True, check=False)
    src.unlink()
    if proc.returncode != 0:
        raise LabError(f"package {pkg.name} {pkg.version}", (proc.stderr.strip() or "gcc failed").splitlines()[0])
    return target.stat().st_size


def build_deb(pkg: Package, out_dir: Path) -> tuple[Path, str]:
    """Build one .deb; returns its path and its control paragraph."""
    with tempfile.TemporaryDirectory(prefix="gpu-lab-deb-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        size = 0
        for f in pkg.files:
            target = root / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.link is not None:
                target.symlink_to(f.link)
            elif f.compile is not None:
                size += _compile(f.content, f.compile, target, pkg)
                target.chmod(f.mode)
            else:
                target.write_text(f.content, encoding="utf-8")
                target.chmod(f.mode)
                size += len(f.content.encode())
        debian = root / "DEBIAN"
        debian.mkdir()
        control = _control(pkg, max(1, size // 1024))
        (debian / "control").write_text(control, encoding="utf-8")
        scripts = dict(pkg.scripts)
        scripts["preinst"] = FAULT_PREINST + scripts.get("preinst", "")
        for name, body in scripts.items():
            path = debian / name
            path.write_text("#!/bin/sh\nset -e\n" + body, encoding="utf-8")
            path.chmod(0o755)
        deb = out_dir / pkg.filename
        proc = subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(deb)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"package {pkg.name} {pkg.version}", proc.stderr.strip() or "dpkg-deb failed")
    return deb, control


def build_repo(repo: Path) -> bool:
    """Make sure ``repo`` holds the current packages; returns True when it had to (re)build them."""
    wanted = digest()
    stamp = repo / STAMP
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return False
    if shutil.which("dpkg-deb") is None:
        raise LabError("package repository", "dpkg-deb not found", "install dpkg")
    tmp = repo.with_name(repo.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    paragraphs = []
    for pkg in catalogue():
        deb, control = build_deb(pkg, tmp)
        data = deb.read_bytes()
        paragraphs.append(
            control.rstrip("\n").replace("\nDescription:", "\n" + "\n".join([
                f"Filename: ./{deb.name}", f"Size: {len(data)}",
                f"MD5sum: {hashlib.md5(data).hexdigest()}",
                f"SHA256: {hashlib.sha256(data).hexdigest()}",
            ]) + "\nDescription:", 1)
        )
    index = ("\n\n".join(paragraphs) + "\n").encode()
    (tmp / "Packages").write_bytes(index)
    (tmp / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    release = ["Origin: gpu-lab", "Label: gpu-lab simulated NVIDIA packages", "Suite: stable", "Codename: gpu-lab",
               "Architectures: amd64", "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        blob = (tmp / name).read_bytes()
        release.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} {name}")
    (tmp / "Release").write_text("\n".join(release) + "\n")
    build_rpm_repo(tmp / "rpm")  # the RPM hosts' repository: /srv/gpu-lab-repo/rpm inside hosts
    (tmp / STAMP).write_text(wanted + "\n")
    shutil.rmtree(repo, ignore_errors=True)
    tmp.rename(repo)
    return True
