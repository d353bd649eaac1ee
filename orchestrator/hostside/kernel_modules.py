"""Kernel coupling: does the kernel the host will boot have an NVIDIA module of the planned driver?

Probe + pure parsers (stdlib only, Python 3.8 syntax: shipped to hosts like the collector). The module of a
driver comes either precompiled (Ubuntu's signed ``linux-modules-nvidia-<branch>[-server][-open]-<kernel>``
packages, installed under ``/lib/modules/<kernel>``) or built by DKMS for each kernel (``nvidia-dkms-<branch>``,
``kmod-nvidia-open-dkms``); ``modinfo -k KERNEL nvidia`` answers for both, ``dkms status`` tells why not.
"""

from __future__ import annotations

import lzma
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

Runner = Callable[[List[str]], Tuple[int, str, str]]

# Package names that carry the module, by packaging (Ubuntu archive, NVIDIA's CUDA repositories).
_DKMS = re.compile(r"^(?:nvidia-dkms-\d{3}(?:-server)?(?:-open)?|nvidia-dkms(?:-open)?|kmod-nvidia-(?:open|latest)-dkms"
                   r"|nvidia-kernel-open-dkms|nvidia-kernel-dkms)$")
_PRECOMPILED = re.compile(r"^linux-modules-nvidia-\d{3}(?:-server)?(?:-open)?-.+$")
# What DKMS has built of the nvidia module (DKMS 2 takes the module name too).
DKMS_STATUS = ("dkms", "status", "nvidia")


def module_packaging(installed: Dict[str, str]) -> Optional[str]:
    """``precompiled`` when a linux-modules-nvidia package is installed, else ``dkms`` when a DKMS package is."""
    names = sorted(installed)
    if any(_PRECOMPILED.match(n) for n in names):
        return "precompiled"
    if any(_DKMS.match(n) for n in names):
        return "dkms"
    return None


def parse_modinfo_version(text: str) -> Optional[str]:
    """``modinfo -k KERNEL nvidia`` -> the module's ``version:`` field (``580.95.05``)."""
    m = re.search(r"^version:\s+(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None


def parse_dkms_status(text: str) -> List[Dict[str, str]]:
    """``dkms status`` lines -> module, version, kernel, state. DKMS 3 writes ``nvidia/580.95.05, 6.8.0-45-generic,
    x86_64: installed``; DKMS 2 ``nvidia, 535.183.01, 5.15.0-91-generic, x86_64: installed``."""
    out = []
    for line in text.splitlines():
        head, sep, state = line.rpartition(":")
        if not sep:
            continue
        parts = [p.strip() for p in head.split(",")]
        if parts and "/" in parts[0]:
            parts = parts[0].split("/", 1) + parts[1:]
        if len(parts) < 3:
            continue
        out.append({"module": parts[0], "version": parts[1], "kernel": parts[2],
                    "state": state.strip().split()[0] if state.strip() else ""})
    return out


def boot_kernel_problem(host: str, kernel: str, driver: str, modinfo_version: Optional[str],
                        dkms: List[Dict[str, str]], packaging: Optional[str]) -> Optional[str]:
    """One line naming the host and what is missing when ``kernel`` has no module of ``driver``; else None."""
    if modinfo_version == driver:
        return None
    built = [d for d in dkms if d["module"] == "nvidia" and d["version"] == driver and d["kernel"] == kernel]
    if built and built[0]["state"] == "installed":
        return None
    found = "no nvidia module" if modinfo_version is None else "nvidia module %s" % modinfo_version
    if packaging == "precompiled":
        why = "install the linux-modules-nvidia package of driver %s for kernel %s" % (driver, kernel)
    elif built:
        why = "DKMS build of nvidia/%s for %s is %s" % (driver, kernel, built[0]["state"] or "unfinished")
    elif packaging == "dkms":
        why = "DKMS has not built nvidia/%s for %s (kernel headers missing?)" % (driver, kernel)
    else:
        why = "neither a precompiled module package nor DKMS provides it"
    return "%s: kernel %s (booted next) has %s, not driver %s: %s" % (host, kernel, found, driver, why)


def dkms_builds(entries: List[Dict[str, str]]) -> Dict[str, Dict[str, str]]:
    """``parse_dkms_status`` entries of the nvidia module -> module version -> kernel -> state."""
    out: Dict[str, Dict[str, str]] = {}
    for entry in entries:
        if entry["module"] == "nvidia":
            out.setdefault(entry["version"], {})[entry["kernel"]] = entry["state"]
    return out


def _kernel_order(release: str) -> List[Tuple[int, object]]:
    """Natural order of kernel releases: ``6.8.0-45-generic`` < ``6.8.0-101-generic``."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", release) if p]


def next_boot_kernel(run: Runner, boot_dir: str = "/boot") -> Tuple[str, str]:
    """(kernel release, how it was found) of the kernel the host boots next: the boot loader's default where
    ``grubby`` tells it (RHEL family), else the newest ``/boot/vmlinuz-*`` (GRUB's default order on Debian and
    Ubuntu), else the running kernel."""
    rc, out, _ = run(["grubby", "--default-kernel"])
    lines = out.strip().splitlines() if rc == 0 else []
    if lines and os.path.basename(lines[-1]).startswith("vmlinuz-"):
        return os.path.basename(lines[-1])[len("vmlinuz-"):], "grubby --default-kernel"
    try:
        images = [n[len("vmlinuz-"):] for n in os.listdir(boot_dir)
                  if n.startswith("vmlinuz-") and "rescue" not in n]
    except OSError:
        images = []
    if images:
        return max(images, key=_kernel_order), "the newest %s/vmlinuz-*" % boot_dir
    return running_kernel(), "the running kernel (no kernel image in %s)" % boot_dir


def running_kernel() -> str:
    """``uname -r``, read where the lab's simulated boot shows it too."""
    try:
        with open("/proc/sys/kernel/osrelease") as fh:
            return fh.read().strip() or os.uname().release
    except OSError:
        return os.uname().release


def _modinfo_field(data: bytes) -> Optional[str]:
    m = re.search(rb"(?:^|\x00)version=([^\x00]+)\x00", data)
    return m.group(1).decode(errors="replace") if m else None


def module_version(run: Runner, kernel: str, modules_root: str = "/lib/modules") -> Optional[str]:
    """The version of the ``nvidia`` module installed for ``kernel``: ``modinfo -k`` (modules.dep), else the
    ``nvidia.ko*`` file found under the kernel's module folder (DKMS or a package wrote it, depmod not run
    yet), read by modinfo or, without kmod, from the file's own .modinfo section (plain or .xz)."""
    rc, out, _ = run(["modinfo", "-k", kernel, "-F", "version", "nvidia"])
    if rc == 0 and out.strip():
        return out.strip().splitlines()[0]
    for folder, dirs, names in os.walk(os.path.join(modules_root, kernel)):
        dirs.sort()
        for name in sorted(names):
            if not re.match(r"^nvidia\.ko(\.(xz|zst|gz))?$", name):
                continue
            path = os.path.join(folder, name)
            rc, out, _ = run(["modinfo", "-F", "version", path])
            if rc == 0 and out.strip():
                return out.strip().splitlines()[0]
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                return _modinfo_field(lzma.decompress(data) if name.endswith(".xz") else data)
            except (OSError, lzma.LZMAError):
                return None
    return None


def installed_kernel_modules(run: Runner, modules_root: str = "/lib/modules") -> Dict[str, Optional[str]]:
    """Each installed kernel (a folder under ``modules_root``) -> the version of its ``nvidia`` module, None
    where it has none; kernels in natural order."""
    try:
        kernels = [n for n in os.listdir(modules_root) if os.path.isdir(os.path.join(modules_root, n))]
    except OSError:
        return {}
    return {k: module_version(run, k, modules_root) for k in sorted(kernels, key=_kernel_order)}


def installed_names(run: Runner) -> Dict[str, str]:
    """Installed package names from dpkg and rpm (a host may have both databases), for ``module_packaging``."""
    names: Dict[str, str] = {}
    for argv in (["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"],
                 ["rpm", "-qa", "--qf", "ii %{NAME}\n"]):
        rc, out, _ = run(argv)
        if rc == 0:
            names.update((p[1], "") for p in (line.split() for line in out.splitlines()) if len(p) > 1
                         and p[0] == "ii")
    return names


def check_boot_kernel(host: str, driver: str, run: Runner, boot_dir: str = "/boot",
                      modules_root: str = "/lib/modules", expect_kernel: str = "") -> Dict[str, object]:
    """Everything the pre-reboot check found, and ``problem``: one line when the kernel booted next is not
    ``expect_kernel`` (when given) or has no module of ``driver`` (None when all is well). ``run`` runs one
    program (the gate's ``run_command`` on hosts)."""
    kernel, found_by = next_boot_kernel(run, boot_dir)
    if expect_kernel and kernel != expect_kernel:
        return {"kernel": kernel, "found_by": found_by, "module_version": None, "packaging": None, "dkms": [],
                "problem": "%s: boots kernel %s next (%s), not the planned %s" % (host, kernel, found_by,
                                                                                 expect_kernel)}
    version = module_version(run, kernel, modules_root)
    rc, out, _ = run(list(DKMS_STATUS))
    dkms = parse_dkms_status(out) if rc == 0 else []
    packaging = module_packaging(installed_names(run))
    return {"kernel": kernel, "found_by": found_by, "module_version": version, "packaging": packaging,
            "dkms": dkms, "problem": boot_kernel_problem(host, kernel, driver, version, dkms, packaging)}
