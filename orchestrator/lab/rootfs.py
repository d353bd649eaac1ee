"""The layers of a lab host's overlay root, bottom to top: a cached minimal Debian rootfs (debootstrap,
built once), a cached "stack" layer per initial GPU stack (the old NVIDIA packages installed with real apt
from the lab repository), and the lab layer (init, shims, sshd and apt settings; rebuilt on each ``up``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from orchestrator.lab.config import ROOTFS_PACKAGES, SUITE, LabPaths, asset, mirror
from orchestrator.lab.errors import LabError

ROOTFS_STAMP = ".gpu-lab-rootfs"


def _run(cmd: list[str], what: str, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(what, f"{cmd[0]} exited {proc.returncode}: {' | '.join(tail)}")


def ensure_rootfs(paths: LabPaths) -> bool:
    """Build the minimal Debian rootfs once (about 40 s); returns True when it had to."""
    wanted = ",".join(ROOTFS_PACKAGES)
    stamp = paths.rootfs / ROOTFS_STAMP
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return False
    if shutil.which("debootstrap") is None:
        raise LabError("rootfs", "debootstrap not found", "apt-get install debootstrap")
    partial = paths.rootfs.with_name(paths.rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    _run(["debootstrap", "--variant=minbase", f"--include={wanted}", SUITE, str(partial), mirror()],
         "rootfs (debootstrap)")
    # Hosts only see the air-gapped repository, and each gets its own host key.
    (partial / "etc/apt/sources.list").write_text("")
    for key in (partial / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    (partial / ROOTFS_STAMP).write_text(wanted + "\n")
    shutil.rmtree(paths.rootfs, ignore_errors=True)
    partial.rename(paths.rootfs)
    return True


def build_lab_layer(target: Path) -> None:
    """Init, shutdown/systemctl shims, fault hook, sshd and apt settings: small, rebuilt on each ``up``."""
    shutil.rmtree(target, ignore_errors=True)
    files = {
        "usr/sbin/gpu-lab-init": (asset("host", "gpu-lab-init"), 0o755),
        "usr/sbin/shutdown": (asset("host", "shutdown"), 0o755),
        "usr/bin/systemctl": (asset("host", "systemctl"), 0o755),
        "usr/lib/gpu-lab/fault-check": (asset("host", "fault-check"), 0o755),
        "etc/ssh/sshd_config.d/00-gpu-lab.conf": (asset("host", "sshd_config"), 0o644),
    }
    for rel, (src, mode) in files.items():
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        dst.chmod(mode)
    for alias in ("reboot", "poweroff", "halt"):
        (target / "usr/sbin" / alias).symlink_to("shutdown")
    apt = target / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d/gpu-lab.list").write_text("deb [trusted=yes] file:/srv/gpu-lab-repo ./\n")
    (apt / "apt.conf.d").mkdir()
    (apt / "apt.conf.d/99gpu-lab").write_text(
        'APT::Install-Recommends "false";\nAcquire::Languages "none";\nDpkg::Use-Pty "false";\n')
    (target / "etc/gpu-lab").mkdir(parents=True)
    (target / "srv/gpu-lab-repo").mkdir(parents=True)


def stack_key(packages: tuple[str, ...], repo_digest: str) -> str:
    return hashlib.sha256((repo_digest + "|held|" + " ".join(packages)).encode()).hexdigest()[:12]


def ensure_stack_layer(paths: LabPaths, lab_layer: Path, packages: tuple[str, ...], repo_digest: str) -> Path:
    """A cached layer with ``packages`` (``name=version``) installed by real apt from the lab repository and held,
    as a well-kept fleet pins its GPU stack."""
    layer = paths.layers / f"stack-{stack_key(packages, repo_digest)}"
    if (layer / ".gpu-lab-done").exists():
        return layer
    tmp = layer.with_name(layer.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    upper, work, merged = tmp / "upper", tmp / "work", tmp / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    install = " ".join(packages)
    script = f"""set -eu
mount -t overlay overlay -o lowerdir={lab_layer}:{paths.rootfs},upperdir={upper},workdir={work} {merged}
mount --bind {paths.repo} {merged}/srv/gpu-lab-repo
mount -t proc proc {merged}/proc
mount --rbind /dev {merged}/dev
chroot {merged} sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {install}'
chroot {merged} apt-mark hold {" ".join(p.split("=")[0] for p in packages)} >/dev/null
chroot {merged} apt-get clean
"""
    _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], "stack layer", timeout=600)
    shutil.rmtree(work, ignore_errors=True)
    upper.rename(tmp / "layer")
    shutil.rmtree(merged, ignore_errors=True)
    shutil.rmtree(layer, ignore_errors=True)
    (tmp / "layer" / ".gpu-lab-done").write_text(install + "\n")
    (tmp / "layer").rename(layer)
    shutil.rmtree(tmp, ignore_errors=True)
    return layer
