"""Collect one host's GPU software stack: pure parsers plus a collector over a small command interface.

This file is shipped to hosts as Ansible ``module_utils`` (the collection's
``plugins/module_utils/upgrade_stack_collector.py`` links to it), so it uses the standard library only and
Python 3.8 syntax. It never raises on a host problem: each one becomes a precise entry in ``problems`` and
the collector moves on.

The result is a plain dict validated on the controller by ``orchestrator.model.facts.HostFacts``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional, Tuple

# Shipped as module_utils of the gpu_fleet.upgrade collection (links to these files), this file imports its
# shipped sibling: never an ``orchestrator`` package that the host's (or the controller's) Python may also find.
if not __name__.startswith("ansible_collections."):  # in the project
    from orchestrator.hostside import kernel_modules
else:
    from ansible_collections.gpu_fleet.upgrade.plugins.module_utils import (  # type: ignore[import-not-found,no-redef]
        upgrade_kernel_modules as kernel_modules,
    )

# Module-level aliases are evaluated at import, on the host's Python (3.8+): typing forms only.
# (rc, stdout, stderr); rc 127 means the command does not exist.
CommandResult = Tuple[int, str, str]
RunCommand = Callable[[List[str]], CommandResult]
ReadFile = Callable[[str], Optional[str]]
ListDir = Callable[[str], List[str]]
ResolveLink = Callable[[str], Optional[str]]
# A JSON-shaped record; validated on the controller by orchestrator.model.facts.
Facts = Dict[str, Any]

SCHEMA_VERSION = 1

NVIDIA_SMI_NO_DRIVER = "couldn't communicate with the NVIDIA driver"
NVIDIA_SMI_MISMATCH = "Driver/library version mismatch"

# Packages that carry each component, Debian and RPM names (see docs/conventions.md). RPM names from NVIDIA's
# CUDA repository for RHEL (``nvidia-driver`` and ``nvidia-driver-cuda`` 3:580.95.05-1.el9, the ``nvidia-open``
# and ``cuda-drivers`` metapackages, ``kmod-nvidia-open-dkms``/``kmod-nvidia-latest-dkms``, ``nvidia-fabric-manager``,
# ``libnccl``; https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/version-locking.html).
_PKG_PATTERNS = {
    "driver": re.compile(r"^(?:nvidia-driver-(\d{3})(-open|-server|-server-open)?|nvidia-driver|cuda-drivers-(\d{3})"
                         r"|cuda-drivers|nvidia-open(?:-\d{3})?|nvidia-driver-cuda"
                         r"|nvidia-driver-latest-dkms(?:-cuda)?|kmod-nvidia-(?:open-dkms|latest-dkms))$"),
    "fabric_manager": re.compile(r"^(?:nvidia-fabricmanager(?:-\d{3})?|nvidia-fabric-manager)$"),
    # cuda-toolkit-12-8; RHEL's older metapackages: cuda-10-2 and cuda (10.2.89-1)
    "cuda": re.compile(r"^(?:cuda-toolkit-(\d+)-(\d+)|cuda-(\d+)-(\d+)|cuda)$"),
    "cudnn": re.compile(r"^(?:libcudnn9-cuda-\d+|libcudnn8|cudnn9-cuda-\d+|libcudnn)$"),
    "nccl": re.compile(r"^libnccl(?:2)?$"),
    "dcgm": re.compile(r"^datacenter-gpu-manager(?:-4-core|-4-cuda\d+)?$"),
    "container_toolkit": re.compile(r"^nvidia-container-toolkit$"),
}
_DPKG_QUERY = [
    "dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
    "nvidia-*", "cuda-toolkit-*", "cuda-drivers*", "libcudnn*", "cudnn*", "libnccl*", "datacenter-gpu-manager*",
    "linux-image-*", "linux-headers-*", "linux-modules-*",  # kernels; linux-modules-nvidia-*: precompiled
]
# RHEL's kernel packages (one name for every kernel build): indexed at the running build and newer.
RPM_KERNEL_PACKAGES = ("kernel", "kernel-core", "kernel-modules", "kernel-devel")
_RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\tii \\n"]
# os-release IDs (and ID_LIKE words) of the RPM family: its packages come from dnf even where dpkg exists.
RPM_FAMILY = ("rhel", "rocky", "almalinux", "centos", "ol", "fedora", "amzn")
# NVIDIA's CUDA repository, as apt sources and yum repo files name it.
CUDA_REPO_URL = "/compute/cuda/repos/"
APT_SOURCE_DIRS = ("/etc/apt/sources.list.d",)
YUM_REPO_DIR = "/etc/yum.repos.d"
# Families of packages whose builds the plan pins: the package index records every build the host's
# repositories offer for them, so that planning (not apply) picks the exact build.
INDEX_PREFIXES = ("nvidia-driver", "nvidia-open", "cuda-drivers", "kmod-nvidia-", "linux-modules-nvidia-",
                  "nvidia-fabricmanager", "nvidia-fabric-manager", "cuda-toolkit-", "libcudnn", "libnccl",
                  "datacenter-gpu-manager", "nvidia-container-toolkit")
_DNF_QUERY = ["dnf", "-q", "repoquery", "--qf", "%{name}\\t%{epoch}:%{version}-%{release}\\n"]
# dnf 4 hides the packages of module streams that are not enabled (modular filtering): on a RHEL 8/9 host on
# nvidia-driver:535-open, the other branches' builds are seen only with this option (dnf 5 has no modules and no
# such option: the query runs again without it).
_DNF_ALL_STREAMS = "--disable-modular-filtering"


# ---------------------------------------------------------------- pure parsers


def parse_nvidia_smi_xml(text: str) -> Facts:
    """``nvidia-smi -q -x`` -> driver version, driver CUDA version and one entry per GPU."""
    root = ET.fromstring(text)
    gpus = []
    for index, gpu in enumerate(root.findall("gpu")):
        minor = _xml_text(gpu, "minor_number")
        gpus.append({
            "index": int(minor) if minor and minor.isdigit() else index,
            "name": _xml_text(gpu, "product_name") or "",
            "uuid": _xml_text(gpu, "uuid") or "",
            "pci_bus_id": _xml_text(gpu, "pci/pci_bus_id") or gpu.get("id", ""),
            "architecture": _xml_text(gpu, "product_architecture"),
            "vbios": _xml_text(gpu, "vbios_version"),
            "memory_total_mib": _mib(_xml_text(gpu, "fb_memory_usage/total")),
            "persistence_mode": _xml_text(gpu, "persistence_mode"),
            "mig_mode": _xml_text(gpu, "mig_mode/current_mig"),
        })
    return {
        "driver_version": _xml_text(root, "driver_version"),
        "cuda_version": _xml_text(root, "cuda_version"),
        "gpus": gpus,
    }


def parse_query_gpu_csv(text: str) -> list[dict[str, str]]:
    """``nvidia-smi --query-gpu=... --format=csv`` -> one dict per GPU keyed by field (units dropped from keys).

    nvidia-smi answers some old field names with new ones in the header (``clocks_throttle_reasons.active``
    comes back as ``clocks_event_reasons.active``), so keys are what the header says.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in lines[0].split(",")]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(header):
            raise ValueError("query-gpu row has %d cells, header has %d" % (len(cells), len(header)))
        rows.append(dict(zip(header, cells)))
    return rows


def parse_proc_driver_version(text: str) -> Facts:
    """``/proc/driver/nvidia/version`` -> the loaded kernel module's version and flavour (open / proprietary)."""
    first = text.splitlines()[0] if text.strip() else ""
    m = re.search(r"NVRM version:\s+(.*?)\s+(\d{3}\.\d{1,3}(?:\.\d{1,3})?)\s", first + " ")
    if not m:
        raise ValueError("no 'NVRM version:' line with a driver version")
    label = m.group(1)
    flavor = "open" if "Open Kernel Module" in label else "proprietary"
    return {"version": m.group(2), "flavor": flavor}


def parse_cuda_version_json(text: str) -> str | None:
    """``/usr/local/cuda*/version.json`` -> the toolkit version (``12.8.1``)."""
    data = json.loads(text)
    cuda = data.get("cuda") or {}
    version = cuda.get("version")
    return str(version) if version else None


def parse_cuda_version_txt(text: str) -> str | None:
    """Toolkits before 11.1 wrote ``version.txt``: ``CUDA Version 11.0.228``."""
    m = re.search(r"CUDA Version\s+(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def parse_nvcc_version(text: str) -> str | None:
    """``nvcc --version`` -> ``13.0.88`` from ``release 13.0, V13.0.88``."""
    m = re.search(r"release (\d+\.\d+), V(\d+\.\d+\.\d+)", text)
    if m:
        return m.group(2)
    m = re.search(r"release (\d+\.\d+)", text)
    return m.group(1) if m else None


def parse_package_list(text: str) -> dict[str, str]:
    """``dpkg-query -W`` (or the RPM equivalent) lines -> installed package name -> version.

    Only installed packages count (status ``ii`` / ``hi``); removed-but-configured ones (``rc``) are skipped.
    RPM prints ``(none):`` for a package without epoch; that is dropped, real epochs are kept for pinning.
    """
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1]:
            continue
        status = parts[2].strip() if len(parts) > 2 else "ii"
        if status[:2] not in ("ii", "hi"):
            continue
        version = parts[1][len("(none):"):] if parts[1].startswith("(none):") else parts[1]
        out[parts[0]] = version
    return out


def held_packages(text: str) -> list[str]:
    """Packages whose dpkg selection is ``hold`` (status starts with ``h``)."""
    held = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) > 2 and parts[2].strip().startswith("h"):
            held.append(parts[0])
    return sorted(held)


def components_from_packages(packages: dict[str, str]) -> Dict[str, Facts]:
    """Map installed packages onto stack components: ``{"nccl": {"version": ..., "package": ...}}``.

    Where several packages carry one component (two CUDA toolkits side by side) the newest is reported and
    the others are listed under ``also``.
    """
    matches: dict[str, List[Facts]] = {}
    for name in sorted(packages):
        for component, pattern in _PKG_PATTERNS.items():
            if pattern.match(name):
                version = packages[name]
                entry: Facts = {"version": _upstream(version) if component == "cuda" else version,
                         "package": name, "source": "package"}
                if component == "driver":
                    entry["flavor"] = "open" if "open" in name else None
                matches.setdefault(component, []).append(entry)
    found = {}
    for component, entries in matches.items():
        entries.sort(key=lambda e: _numeric(e["version"]), reverse=True)
        best = entries[0]
        if len(entries) > 1:
            best["also"] = ["%s=%s" % (e["package"], packages[e["package"]]) for e in entries[1:]]
        found[component] = best
    return found


def parse_header_version(text: str, prefix: str) -> str | None:
    """``#define CUDNN_MAJOR 9`` ... or ``#define NCCL_MAJOR 2`` ... -> ``9.5.1``."""
    parts = []
    for key in ("MAJOR", "MINOR", "PATCHLEVEL" if prefix == "CUDNN" else "PATCH"):
        m = re.search(r"#define\s+%s_%s\s+(\d+)" % (prefix, key), text)
        if not m:
            return None
        parts.append(m.group(1))
    return ".".join(parts)


def version_from_library_name(path: str, stem: str) -> str | None:
    """``/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5`` -> ``2.21.5`` (the real file behind the soname link)."""
    m = re.search(r"%s\.so\.(\d+\.\d+\.\d+)$" % re.escape(stem), path)
    return m.group(1) if m else None


def parse_nvidia_ctk_version(text: str) -> str | None:
    """``NVIDIA Container Toolkit CLI version 1.17.8`` -> ``1.17.8``."""
    m = re.search(r"version\s+(\d+\.\d+\.\d+)", text)
    return m.group(1) if m else None


def parse_dcgmi_version(text: str) -> str | None:
    """``dcgmi --version`` prints ``Version : 4.2.3`` (older: ``dcgmi  version: 3.3.9``)."""
    m = re.search(r"[Vv]ersion\s*:\s*(\d+\.\d+\.\d+)", text)
    return m.group(1) if m else None


def parse_os_release(text: str) -> Facts:
    """``/etc/os-release`` -> id, version_id, pretty_name."""
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return {"id": values.get("ID", "unknown"), "version_id": values.get("VERSION_ID", ""),
            "pretty_name": values.get("PRETTY_NAME", ""), "id_like": values.get("ID_LIKE", "")}


def rpm_family(os_facts: Optional[Facts]) -> bool:
    """RHEL, Rocky, Alma, Fedora... by ``ID`` or ``ID_LIKE`` (``rocky`` has ``ID_LIKE="rhel centos fedora"``)."""
    if not os_facts:
        return False
    words = [os_facts.get("id", ""), *os_facts.get("id_like", "").split()]
    return any(w in RPM_FAMILY for w in words)


_UBUNTU_DRIVER = re.compile(r"^nvidia-driver-\d{3}(?:-server)?(?:-open)?$")
_CUDA_APT_DRIVER = re.compile(r"^(?:cuda-drivers(?:-\d{3})?|nvidia-open(?:-\d{3})?|cuda-keyring)$")
_CUDA_RPM = re.compile(r"^(?:nvidia-open|cuda-drivers|kmod-nvidia-(?:open|latest)-dkms|nvidia-driver)$")


def detect_source(rpm: bool, manager: str, installed: Dict[str, str], offered: Dict[str, List[str]],
                  repo_texts: Dict[str, str]) -> Tuple[Optional[str], str]:
    """The host's NVIDIA package source and what it was told by: installed driver packages first (what the
    host uses), then NVIDIA's repository in the apt sources / yum repo files, then the names offered."""
    cuda_repo = sorted(path for path, text in repo_texts.items() if CUDA_REPO_URL in text
                       or re.search(r"^\[cuda-", text, re.MULTILINE))
    if rpm:
        if manager != "dnf":
            return None, "RPM-family host without dnf"
        mine = sorted(n for n in installed if _CUDA_RPM.match(n))
        if mine:
            return "cuda-dnf", "installed " + mine[0]
        if cuda_repo:
            return "cuda-dnf", "NVIDIA CUDA repository in " + cuda_repo[0]
        return None, "no NVIDIA driver RPM installed and no CUDA repository in %s" % YUM_REPO_DIR
    if manager != "apt":
        return None, "no apt and no dnf"
    for name in sorted(installed):
        if _CUDA_APT_DRIVER.match(name):
            return "cuda-apt", "installed " + name
        if _UBUNTU_DRIVER.match(name):
            return "ubuntu", "installed %s %s" % (name, installed[name])
    if cuda_repo:
        return "cuda-apt", "NVIDIA CUDA repository in " + cuda_repo[0]
    ubuntu = sorted(n for n in offered if _UBUNTU_DRIVER.match(n))
    if ubuntu:
        return "ubuntu", "offered " + ubuntu[0]
    return None, "no NVIDIA driver package installed or offered, no CUDA repository in the apt sources"


def classify_nvidia_smi_failure(rc: int, output: str) -> tuple[str, str]:
    """Turn a failed ``nvidia-smi`` into a driver status and one precise line for the operator."""
    text = " ".join(output.split())
    if rc == 127:
        return "not_installed", "nvidia-smi not found: no NVIDIA driver installed"
    if rc == 124:
        return "error", "nvidia-smi timed out: the driver or a GPU is hung (check dmesg for Xid errors)"
    if NVIDIA_SMI_MISMATCH in output:
        lib = re.search(r"NVML library version:\s*([\d.]+)", output)
        detail = " (NVML library %s)" % lib.group(1) if lib else ""
        return "version_mismatch", ("Driver/library version mismatch%s: the loaded kernel module differs from "
                                    "the installed driver; reboot (or reload the module) to finish the change"
                                    % detail)
    if NVIDIA_SMI_NO_DRIVER in output:
        return "not_loaded", ("nvidia-smi couldn't communicate with the NVIDIA driver: the kernel module is "
                              "not loaded (installed but not built for this kernel, or not yet rebooted)")
    if "No devices were found" in output:
        return "no_devices", "nvidia-smi found no GPU (driver loaded, no device visible)"
    return "error", "nvidia-smi failed (rc %d): %s" % (rc, text[:200] or "no output")


# ---------------------------------------------------------------- collection


def collect(run: RunCommand, read: ReadFile, listdir: ListDir, resolve: ResolveLink,
            modules_root: str = "/lib/modules") -> Facts:
    """Gather everything about one host. Each probe failure is recorded in ``problems``, never raised.
    ``modules_root``: where the installed kernels' module folders are (read directly, as modinfo does)."""
    problems: list[str] = []
    facts: Facts = {"schema_version": SCHEMA_VERSION, "problems": problems}

    # the running kernel's release, as ``uname -r`` prints it (the lab's simulated boot shows it here too)
    facts["kernel"] = (read("/proc/sys/kernel/osrelease") or "").strip() or _first_line(run(["uname", "-r"])[1])
    os_text = read("/etc/os-release")
    facts["os"] = parse_os_release(os_text) if os_text else None
    facts["boot_id"] = (read("/proc/sys/kernel/random/boot_id") or "").strip() or None

    rpm = rpm_family(facts["os"])
    if facts["os"]:
        facts["os"].pop("id_like", None)
    pkg_text, packages = _installed_packages(run, problems, rpm)
    facts["packages"] = {k: v for k, v in sorted(packages.items())}
    facts["held_packages"] = held_packages(pkg_text) if not rpm else _versionlocked(read, packages)
    from_pkgs = components_from_packages(packages)

    index = _package_index(run, problems, rpm, facts["kernel"] or "")
    source, evidence = detect_source(rpm, index["manager"], packages, index["available"],
                                     _repo_texts(read, listdir, rpm))
    index["source"], index["source_evidence"] = source, evidence
    if source is None:
        problems.append("package source not detected: %s" % evidence)
    facts["package_index"] = index
    facts["driver"] = _collect_driver(run, read, from_pkgs.get("driver"), problems)
    facts["kernel_modules"] = _collect_kernel_modules(run, packages, problems, modules_root)
    facts["gpus"] = facts["driver"].pop("gpus", [])
    facts["cuda"] = _collect_cuda(run, read, listdir, from_pkgs.get("cuda"))
    facts["cudnn"] = _collect_library("cudnn", from_pkgs, read, listdir, resolve)
    facts["nccl"] = _collect_library("nccl", from_pkgs, read, listdir, resolve)
    facts["fabric_manager"] = _component_or_missing(from_pkgs.get("fabric_manager"), "no nvidia-fabricmanager package")
    facts["dcgm"] = _tool_component(run, ["dcgmi", "--version"], parse_dcgmi_version, from_pkgs.get("dcgm"),
                                    "no datacenter-gpu-manager package and no dcgmi")
    facts["container_toolkit"] = _tool_component(
        run, ["nvidia-ctk", "--version"], parse_nvidia_ctk_version, from_pkgs.get("container_toolkit"),
        "no nvidia-container-toolkit package and no nvidia-ctk")
    return facts


def parse_madison(text: str) -> Dict[str, List[str]]:
    """``apt-cache madison`` lines (``pkg | 580.95.05-0ubuntu1 | file:/srv/repo ./ Packages``) -> builds."""
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[0] and parts[1]:
            builds = out.setdefault(parts[0], [])
            if parts[1] not in builds:
                builds.append(parts[1])
    return out


def parse_repoquery(text: str) -> Dict[str, List[str]]:
    """``dnf repoquery --qf '%{name}\\t%{epoch}:%{version}-%{release}'`` lines -> builds (epoch 0 dropped)."""
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 2 and parts[0] and parts[1]:
            build = parts[1][2:] if parts[1].startswith("0:") else parts[1]
            builds = out.setdefault(parts[0], [])
            if build not in builds:
                builds.append(build)
    return out


def _repo_texts(read: ReadFile, listdir: ListDir, rpm: bool) -> Dict[str, str]:
    """The host's repository configuration: yum repo files, or apt's sources."""
    paths = []
    if rpm:
        paths = [YUM_REPO_DIR + "/" + f for f in sorted(listdir(YUM_REPO_DIR)) if f.endswith(".repo")]
    else:
        paths = ["/etc/apt/sources.list"] + [d + "/" + f for d in APT_SOURCE_DIRS for f in sorted(listdir(d))
                                             if f.endswith((".list", ".sources"))]
    out = {}
    for path in paths:
        text = read(path)
        if text:
            out[path] = text
    return out


def parse_versionlock(text: str) -> List[str]:
    """``/etc/dnf/plugins/versionlock.list`` lines (``nvidia-open-3:580.95.05-1.el9.*``) -> package names."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        m = re.match(r"^(.+?)-(?:\d+:)?[^-]+-[^-]+$", line)
        if m:
            names.add(m.group(1))
    return sorted(names)


def _versionlocked(read: ReadFile, installed: Dict[str, str]) -> List[str]:
    """Installed packages that dnf's versionlock holds: the RPM family's equivalent of apt holds."""
    text = read("/etc/dnf/plugins/versionlock.list") or ""
    return [n for n in parse_versionlock(text) if n in installed]


def _kernel_key(release: str) -> List[int]:
    return [int(n) for n in re.findall(r"\d+", release)]


def kernel_packages(names: List[str], running: str) -> List[str]:
    """apt: the kernel packages (image, modules, headers) of the running kernel's flavour at its release or
    newer: the releases a plan may move to, without the archive's hundreds of other kernels."""
    m = re.match(r"^(\d+\.\d+\.\d+(?:-\d+)?)-(.+)$", running)
    if not m:
        return []
    flavour, floor = m.group(2), _kernel_key(m.group(1))
    out = []
    for name in names:
        k = re.match(r"^linux-(?:image|headers|modules)-(\d+\.\d+\.\d+(?:-\d+)?)-(.+)$", name)
        if k and k.group(2) == flavour and _kernel_key(k.group(1)) >= floor:
            out.append(name)
    return out


def _package_index(run: RunCommand, problems: list[str], rpm: bool = False, kernel: str = "") -> Facts:
    """Every build the host's repositories offer for the GPU stack's package families (apt or dnf), and the
    kernels the host could move to."""
    rc, out, err = (127, "", "") if rpm else run(["apt-cache", "pkgnames"])
    if rc != 127:
        every = out.split()
        names = sorted(set(n for n in every if n.startswith(INDEX_PREFIXES)) | set(kernel_packages(every, kernel)))
        available: Dict[str, List[str]] = {}
        if names:
            rc, out, err = run(["apt-cache", "madison", *names])
            if rc != 0:
                problems.append("apt-cache madison failed (rc %d): %s" % (rc, _first_line(err)))
            available = parse_madison(out)
        return {"manager": "apt", "available": available}
    patterns = [p + "*" for p in INDEX_PREFIXES] + list(RPM_KERNEL_PACKAGES)
    rc, out, err = run([*_DNF_QUERY, _DNF_ALL_STREAMS, *patterns])
    if rc not in (0, 127):
        rc, out, err = run(_DNF_QUERY + patterns)
    if rc != 127:
        if rc != 0:
            problems.append("dnf repoquery failed (rc %d): %s" % (rc, _first_line(err)))
        available = parse_repoquery(out)
        floor = _kernel_key(kernel)
        for name in RPM_KERNEL_PACKAGES:  # the running kernel's build and newer ones
            if name in available:
                kept = [b for b in available[name] if _kernel_key(b.split(":")[-1]) >= floor[:len(_kernel_key(b))]]
                available[name] = kept
        return {"manager": "dnf", "available": {k: v for k, v in available.items() if v}}
    problems.append("neither apt-cache nor dnf found: the builds the repositories offer are unknown")
    return {"manager": "unknown", "available": {}}


def _installed_packages(run: RunCommand, problems: list[str], rpm: bool = False) -> tuple[str, dict[str, str]]:
    rc, out, err = (127, "", "") if rpm else run(_DPKG_QUERY)
    if rc == 127:
        rc, out, err = run(_RPM_QUERY)
        if rc == 127:
            problems.append("neither dpkg-query nor rpm found: package versions unknown")
            return "", {}
    # dpkg-query exits 1 when some pattern matched nothing; its output is still valid.
    if rc not in (0, 1):
        problems.append("package query failed (rc %d): %s" % (rc, _first_line(err)))
    return out, parse_package_list(out)


def _collect_driver(run: RunCommand, read: ReadFile, package: Optional[Facts], problems: list[str]) -> Facts:
    driver: Facts = {"status": "ok", "version": None, "cuda_driver_api": None, "flavor": None,
                    "loaded_module": None, "package": package["package"] if package else None,
                    "package_version": package["version"] if package else None, "message": None}
    proc = read("/proc/driver/nvidia/version")
    if proc:
        try:
            loaded = parse_proc_driver_version(proc)
            driver["loaded_module"] = loaded["version"]
            driver["flavor"] = loaded["flavor"]
        except ValueError as exc:
            problems.append("/proc/driver/nvidia/version: %s" % exc)
    rc, out, err = run(["nvidia-smi", "-q", "-x"])
    if rc == 0:
        try:
            parsed = parse_nvidia_smi_xml(out)
        except ET.ParseError as exc:
            driver["status"] = "error"
            driver["message"] = "nvidia-smi -q -x printed invalid XML: %s" % exc
        else:
            driver["version"] = parsed["driver_version"]
            driver["cuda_driver_api"] = parsed["cuda_version"]
            driver["gpus"] = _with_compute_capability(run, parsed["gpus"])
    else:
        status, message = classify_nvidia_smi_failure(rc, out + "\n" + err)
        driver["status"] = status
        driver["message"] = message
        if status == "version_mismatch" and driver["loaded_module"]:
            userspace = driver["package_version"] and _upstream(driver["package_version"])
            driver["message"] = ("Driver/library version mismatch: kernel module %s is loaded but the installed "
                                 "driver is %s; reboot (or reload the module) to finish the change"
                                 % (driver["loaded_module"], userspace or "different"))
        if status == "not_installed" and driver["loaded_module"]:
            driver["status"] = "error"
            driver["message"] = ("nvidia-smi missing but kernel module %s is loaded: userspace driver "
                                 "removed or broken" % driver["loaded_module"])
    if driver["version"] is None and package:
        # The installed package is the best answer when nvidia-smi cannot run.
        driver["version"] = _upstream(package["version"])
    if driver["flavor"] is None and package and package.get("flavor"):
        driver["flavor"] = package["flavor"]
    if driver["status"] != "ok":
        problems.append("driver: %s" % driver["message"])
    return driver


def _collect_kernel_modules(run: RunCommand, installed: Dict[str, str], problems: List[str],
                            modules_root: str) -> Facts:
    """How the nvidia kernel module reaches the host's kernels: its packaging (``precompiled`` or ``dkms``, told
    by the installed packages; None when neither), what DKMS built (module version -> kernel -> state; None
    where DKMS is not installed) and each installed kernel's nvidia module version (None: it has none)."""
    rc, out, err = run(list(kernel_modules.DKMS_STATUS))
    dkms = None
    if rc == 0:
        dkms = kernel_modules.dkms_builds(kernel_modules.parse_dkms_status(out))
    elif rc != 127:
        problems.append("dkms status failed (rc %d): %s" % (rc, _first_line(err) or _first_line(out)))
    return {"packaging": kernel_modules.module_packaging(installed), "dkms": dkms,
            "kernels": kernel_modules.installed_kernel_modules(run, modules_root)}


def parse_compute_capabilities(text: str) -> Dict[str, str]:
    """``nvidia-smi --query-gpu=pci.bus_id,compute_cap --format=csv`` -> PCI bus id -> ``8.6``.

    Drivers older than the field answer with an error instead; rows without a MAJOR.MINOR value are skipped.
    """
    out = {}
    for row in parse_query_gpu_csv(text):
        bus, cap = row.get("pci.bus_id", ""), row.get("compute_cap", "")
        if bus and re.match(r"^\d+\.\d+$", cap):
            out[bus.upper()] = cap
    return out


def _with_compute_capability(run: RunCommand, gpus: List[Facts]) -> List[Facts]:
    """Each GPU's compute capability as the driver reports it, matched by PCI bus id (the XML's minor
    number and the query's index differ); what the catalogue cannot name is described by it."""
    if not gpus:
        return gpus
    rc, out, _ = run(["nvidia-smi", "--query-gpu=pci.bus_id,compute_cap", "--format=csv"])
    caps: Dict[str, str] = {}
    if rc == 0:
        try:
            caps = parse_compute_capabilities(out)
        except ValueError:
            caps = {}
    for gpu in gpus:
        gpu["compute_capability"] = caps.get(str(gpu.get("pci_bus_id", "")).upper())
    return gpus


def _collect_cuda(run: RunCommand, read: ReadFile, listdir: ListDir, package: Optional[Facts]) -> Facts:
    installed = {}
    for entry in sorted(listdir("/usr/local")):
        if re.match(r"^cuda-\d+\.\d+$", entry):
            # Toolkits assembled from component packages have no version.json: the directory names the release.
            installed[entry] = _toolkit_version(read, "/usr/local/" + entry) or entry[len("cuda-"):]
    default = _toolkit_version(read, "/usr/local/cuda")
    source = "/usr/local/cuda/version.json" if default else None
    if default is None:
        rc, out, _ = run(["nvcc", "--version"])
        if rc != 0:
            rc, out, _ = run(["/usr/local/cuda/bin/nvcc", "--version"])
        if rc == 0:
            default = parse_nvcc_version(out)
            source = "nvcc --version"
    if default is None and package:
        default, source = package["version"], "package " + package["package"]
    result = {"version": default, "source": source, "installed": sorted(set(installed.values()))}
    if default is None:
        result["missing"] = "no CUDA toolkit (/usr/local/cuda, nvcc, cuda-toolkit-* package)"
    return result


def _toolkit_version(read: ReadFile, prefix: str) -> str | None:
    text = read(prefix + "/version.json")
    if text:
        try:
            return parse_cuda_version_json(text)
        except ValueError:
            return None
    text = read(prefix + "/version.txt")
    return parse_cuda_version_txt(text) if text else None


_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/local/cuda/lib64",
             "/lib/x86_64-linux-gnu")
_HEADERS = {
    "cudnn": ("CUDNN", ["/usr/include/cudnn_version.h", "/usr/include/x86_64-linux-gnu/cudnn_version.h",
                        "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h",
                        "/usr/include/x86_64-linux-gnu/cudnn_version_v8.h", "/usr/local/cuda/include/cudnn_version.h"]),
    "nccl": ("NCCL", ["/usr/include/nccl.h", "/usr/local/cuda/include/nccl.h"]),
}
_SONAMES = {"cudnn": ("libcudnn", ["libcudnn.so.9", "libcudnn.so.8"]), "nccl": ("libnccl", ["libnccl.so.2"])}


def _collect_library(name: str, from_pkgs: Dict[str, Facts], read: ReadFile, listdir: ListDir,
                     resolve: ResolveLink) -> Facts:
    """A library from its package, else its header, else the file behind its soname link."""
    if name in from_pkgs:
        return from_pkgs[name]
    prefix, headers = _HEADERS[name]
    for header in headers:
        text = read(header)
        version = parse_header_version(text, prefix) if text else None
        if version:
            return {"version": version, "source": header, "package": None}
    stem, sonames = _SONAMES[name]
    for directory in _LIB_DIRS:
        for soname in sonames:
            target = resolve(directory + "/" + soname)
            version = version_from_library_name(target, stem) if target else None
            if version:
                return {"version": version, "source": target, "package": None}
    return {"version": None, "missing": "no %s package, header or %s" % (name, " / ".join(sonames))}


def _tool_component(run: RunCommand, cmd: list[str], parse: Callable[[str], str | None],
                    package: Optional[Facts], missing: str) -> Facts:
    if package:
        return package
    rc, out, _ = run(cmd)
    version = parse(out) if rc == 0 else None
    if version:
        return {"version": version, "source": " ".join(cmd), "package": None}
    return {"version": None, "missing": missing}


def _component_or_missing(entry: Optional[Facts], missing: str) -> Facts:
    return entry if entry else {"version": None, "missing": missing}


# ---------------------------------------------------------------- small helpers


def _xml_text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    if found is None or found.text is None:
        return None
    text = found.text.strip()
    return text if text and text != "N/A" else None


def _mib(text: str | None) -> int | None:
    m = re.match(r"(\d+)\s*MiB", text or "")
    return int(m.group(1)) if m else None


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""


def _upstream(package_version: str) -> str:
    text = re.sub(r"^\d+:", "", package_version.strip())
    return text.split("-", 1)[0]


def _numeric(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", _upstream(version)))
