"""The layers of a lab host's overlay root, bottom to top: a cached minimal Debian rootfs (debootstrap,
built once), a cached "stack" layer per initial GPU stack (the old NVIDIA packages installed with real apt
from the lab repository), and the lab layer (init, shims, sshd and apt settings; rebuilt on each ``up``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from orchestrator.lab.config import ROOTFS_PACKAGES, SUITE, LabPaths, asset, mirror
from orchestrator.lab.errors import LabError
from orchestrator.lab.fleet import ROCKY_OS_RELEASE
from orchestrator.lab.rpmrepo import MODULE

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
    _dnf_settings(target)
    (target / "etc/gpu-lab").mkdir(parents=True)
    (target / "srv/gpu-lab-repo").mkdir(parents=True)


# The lab's RPM repository, named like NVIDIA's CUDA repository for RHEL 9 (cuda-rhel9.repo, [cuda-rhel9-x86_64]).
YUM_REPO = """[cuda-rhel9-x86_64]
name=cuda-rhel9-x86_64 (gpu-lab simulated)
baseurl=file:///srv/gpu-lab-repo/rpm
enabled=1
gpgcheck=0
"""


def _dnf_settings(target: Path) -> None:
    """dnf as the lab's RPM hosts need it on a Debian rootfs. Found by hand (dnf -v, 2026-12): Debian's
    dnf-plugins-core enables the ``local`` plugin, whose ``_dnf_local`` repository inherits ``gpgcheck=True``
    from Debian's dnf.conf and has no key, so every install stopped with "You have enabled checking of
    packages via GPG keys ... Problem repository: [_dnf_local]"; and dnf cannot detect a release version
    without a ``system-release`` RPM ("Unable to detect release version"). So: the plugin off, the release
    set as a dnf variable, and the air-gapped repository without GPG checks (like the apt one, trusted=yes)."""
    plugins = target / "etc/dnf/plugins"
    plugins.mkdir(parents=True)
    (plugins / "local.conf").write_text("[main]\nenabled = false\n")
    (target / "etc/dnf/vars").mkdir(parents=True)
    (target / "etc/dnf/vars/releasever").write_text("9\n")
    # Debian builds rpm with its database under the user's home (~/.rpmdb: rpm is not Debian's package
    # manager); an RPM-family host keeps it where RHEL does.
    (target / "etc/rpm").mkdir(parents=True)
    (target / "etc/rpm/macros").write_text("%_dbpath /var/lib/rpm\n")
    (target / "etc/yum.repos.d").mkdir(parents=True)
    (target / "etc/yum.repos.d/cuda-rhel9.repo").write_text(YUM_REPO)


def stack_key(packages: tuple[str, ...], repo_digest: str) -> str:
    return hashlib.sha256((repo_digest + "|held|" + " ".join(packages)).encode()).hexdigest()[:12]


def _rpm_install(packages: tuple[str, ...]) -> str:
    """An RPM host's stack: real dnf from the lab's RPM repository, on the driver branch's module stream (as
    NVIDIA's guide installs it: ``dnf module enable nvidia-driver:<branch>-open``), version-locked, and Rocky's
    os-release."""
    names = " ".join(p.rsplit("-", 2)[0] if ":" in p else p for p in packages)
    locked = "nvidia-open nvidia-driver kmod-nvidia-open-dkms" if "nvidia-open" in names else names
    branches = sorted({m.group(1) for p in packages if (m := re.match(r"^nvidia-open-(?:[0-9]+:)?([0-9]+)\.", p))})
    enable = "".join(f"dnf -y -q module enable {MODULE}:{b}-open && " for b in branches)
    os_release = ROCKY_OS_RELEASE.replace("'", "")
    return (f"chroot $M sh -c '{enable}dnf -y -q install {' '.join(packages)} && dnf -q versionlock add {locked}'\n"
            f"rm -f $M/etc/os-release\nprintf '%s' '{os_release}' > $M/etc/os-release\n"
            "chroot $M dnf -q clean all\n")


def ensure_stack_layer(paths: LabPaths, lab_layer: Path, packages: tuple[str, ...], repo_digest: str,
                       family: str = "deb") -> Path:
    """A cached layer with ``packages`` (``name=version``) installed by real apt from the lab repository and held,
    as a well-kept fleet pins its GPU stack; on an RPM host (``family`` rpm) by real dnf and version-locked."""
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
M={merged}
mkdir -p {upper}/var/lib/rpm
mount -t overlay overlay -o lowerdir={lab_layer}:{paths.rootfs},upperdir={upper},workdir={work} {merged}
mount --bind {paths.repo} {merged}/srv/gpu-lab-repo
mount -t proc proc {merged}/proc
mount --rbind /dev {merged}/dev
"""
    if family == "rpm":
        script += _rpm_install(packages)
    else:
        apt = f"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {install}"
        script += f"""chroot {merged} sh -c '{apt}'
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
