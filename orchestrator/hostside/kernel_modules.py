"""Kernel coupling: does the kernel the host will boot have an NVIDIA module of the planned driver?

Probe + pure parsers (stdlib only, Python 3.8 syntax: shipped to hosts like the collector). The module of a
driver comes either precompiled (Ubuntu's signed ``linux-modules-nvidia-<branch>[-server][-open]-<kernel>``
packages, installed under ``/lib/modules/<kernel>``) or built by DKMS for each kernel (``nvidia-dkms-<branch>``,
``kmod-nvidia-open-dkms``); ``modinfo -k KERNEL nvidia`` answers for both, ``dkms status`` tells why not.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

# Package names that carry the module, by packaging (Ubuntu archive, NVIDIA's CUDA repositories).
_DKMS = re.compile(r"^(?:nvidia-dkms-\d{3}(?:-server)?(?:-open)?|nvidia-dkms(?:-open)?|kmod-nvidia-(?:open|latest)-dkms"
                   r"|nvidia-kernel-open-dkms|nvidia-kernel-dkms)$")
_PRECOMPILED = re.compile(r"^linux-modules-nvidia-\d{3}(?:-server)?(?:-open)?-.+$")


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
