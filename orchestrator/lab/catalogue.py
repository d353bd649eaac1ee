"""The simulated NVIDIA packages: real names, versions and relationships, with payloads that imitate the
real tools and files. Pure data: :mod:`orchestrator.lab.repo` turns it into .debs and an apt repository.

Two driver branches cannot coexist (``Provides``/``Conflicts``/``Replaces: nvidia-driver-binary``, as
Ubuntu's packages do); the same holds for fabric manager branches, DCGM 3 vs 4, and cuDNN 9 builds.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.lab.config import asset


class PkgFile(BaseModel):
    """One file of a package: text content, a symlink target, or C source built into a shared object."""

    model_config = ConfigDict(frozen=True)
    path: str
    content: str = ""
    link: str | None = None
    mode: int = 0o644
    # C compiler flags when ``content`` is C source to build with gcc into this shared object (the simulated
    # CUDA libraries: the gate's probe loads them with ctypes as it loads NVIDIA's on real hosts)
    compile: tuple[str, ...] | None = None


class Package(BaseModel):
    """One .deb: control fields, files and maintainer scripts (bodies after the shebang)."""

    model_config = ConfigDict(frozen=True)
    name: str
    version: str
    description: str
    section: str = "multiverse/libs"
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    files: tuple[PkgFile, ...] = ()
    scripts: dict[str, str] = Field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_amd64.deb"


# Every preinst asks the lab whether to fail (fault injection "install fails").
FAULT_PREINST = ('if [ -x /usr/lib/gpu-lab/fault-check ]; then '
                 '/usr/lib/gpu-lab/fault-check preinst "$DPKG_MAINTSCRIPT_PACKAGE"; fi\n')
LIB = "/usr/lib/x86_64-linux-gnu"

# branch, driver version, CUDA version of the driver, build date printed in /proc/driver/nvidia/version
DRIVERS: tuple[tuple[str, str, str, str], ...] = (
    ("535", "535.183.01", "12.2", "Sun May 12 19:39:15 UTC 2024"),
    ("580", "580.82.07", "13.0", "Wed Aug 27 15:03:19 UTC 2025"),
    ("580", "580.95.05", "13.0", "Thu Sep 25 17:24:38 UTC 2025"),
)
# toolkit version, nvcc version, nvcc build date, build tag, cudart version
TOOLKITS: tuple[tuple[str, str, str, str, str], ...] = (
    ("12.2.2", "12.2.140", "Tue_Aug_15_22:02:13_PDT_2023", "cuda_12.2.r12.2/compiler.33191640_0", "12.2.140"),
    ("12.8.1", "12.8.93", "Fri_Feb_21_20:23:50_PST_2025", "cuda_12.8.r12.8/compiler.35583870_0", "12.8.90"),
    ("13.0.2", "13.0.88", "Wed_Aug_20_01:58:59_PM_PDT_2025", "cuda_13.0.r13.0/compiler.36424714_0", "13.0.96"),
)
NCCL = ("2.18.5-1+cuda12.2", "2.21.5-1+cuda12.4", "2.26.2-1+cuda12.8", "2.28.9-1+cuda13.0")
CUDNN = (("libcudnn8", "8.9.7.29-1+cuda12.2"), ("libcudnn9-cuda-12", "9.5.1.17-1"),
         ("libcudnn9-cuda-13", "9.19.0.56-1"))
DCGM = (("datacenter-gpu-manager", "1:3.3.9", "3.3.9"), ("datacenter-gpu-manager-4-core", "1:4.2.3-1", "4.2.3"),
        ("datacenter-gpu-manager-4-core", "1:4.4.1-1", "4.4.1"))
CONTAINER_TOOLKIT = (("1.14.6-1", "5605d191332dcfeea802c4497360d60a65c7887e"),
                     ("1.17.8-1", "f202b80a9b9d0db00d9b1d73c0128c8962c55f4d"))


def _text(*parts: str) -> str:
    return asset(*parts).read_text(encoding="utf-8")


def _lib(name: str, version: str, soname: str, what: str, flags: tuple[str, ...] | None = None,
         folder: str = LIB) -> tuple[PkgFile, ...]:
    """A library and its soname link; with ``flags``, built from ``assets/cuda/<name>.c`` (else a text stub)."""
    real = f"{folder}/{name}.so.{version}"
    if flags is None:
        lib = PkgFile(path=real, content=f"gpu-lab simulated {what} {version}\n")
    else:
        lib = PkgFile(path=real, content=_text("cuda", f"{name}.c"), compile=flags, mode=0o755)
    return lib, PkgFile(path=f"{folder}/{name}.so.{soname}", link=f"{name}.so.{version}")


def _service(name: str, desc: str, daemon: str, extra_postinst: str = "") -> tuple[PkgFile, dict[str, str]]:
    script = (_text("tools", "initd.tmpl").replace("@SERVICE@", name).replace("@DESC@", desc)
              .replace("@DAEMON@", daemon))
    scripts = {
        # An upgrade replaces the daemon on disk and leaves the running one alone, as the field reports for
        # NVIDIA's DCGM and fabric manager packages: the old binary runs until something restarts the service.
        "postinst": (f'if [ "$1" = configure ]; then\n  update-rc.d {name} defaults >/dev/null\nfi\n'
                     f"{extra_postinst}"),
        "prerm": f'if [ "$1" = remove ]; then /etc/init.d/{name} stop || true; fi\n',
        "postrm": f'if [ "$1" = purge ] || [ "$1" = remove ]; then update-rc.d -f {name} remove >/dev/null; fi\n',
    }
    return PkgFile(path=f"/etc/init.d/{name}", content=script, mode=0o755), scripts


def running_kernel() -> str:
    """The kernel release the lab hosts report (``uname -r``: they share this machine's kernel)."""
    return os.uname().release


def _kernel_module(version: str, flavor: str) -> PkgFile:
    """``nvidia.ko`` for the running kernel, where DKMS puts the module it builds: an ELF object whose
    ``.modinfo`` section carries the version and licence, so the real ``modinfo`` reads it as it reads
    NVIDIA's (the lab's kernel part, gpu-lab-init, plays loading it)."""
    licence = "Dual MIT/GPL" if flavor == "open" else "NVIDIA"
    fields = (f"version={version}", f"license={licence}", "name=nvidia", "alias=char-major-195-*")
    source = "".join(f'static const char m{i}[] __attribute__((section(".modinfo"), used, aligned(1))) = "{f}";\n'
                     for i, f in enumerate(fields))
    return PkgFile(path=f"/lib/modules/{running_kernel()}/updates/dkms/nvidia.ko", content=source, compile=())


def kernel_update() -> Package:
    """A newer kernel, booted next once installed, for which nothing built the NVIDIA module (DKMS without
    headers, a precompiled module package not installed): the failure the pre-reboot check must catch."""
    parts = running_kernel().split(".")
    release = f"{parts[0]}.{int(parts[1]) + 1 if len(parts) > 1 and parts[1].isdigit() else 99}.0-1-gpulab"
    return Package(name=f"linux-image-{release}", version="1", section="kernel",
                   description="Linux kernel image (gpu-lab simulated: no NVIDIA module built for it)",
                   files=(PkgFile(path=f"/boot/vmlinuz-{release}", content=f"gpu-lab simulated kernel {release}\n"),
                          PkgFile(path=f"/lib/modules/{release}/modules.builtin", content="")))


def kernel_release_after(release: str) -> str:
    """The next release of the same kernel line: ``6.8.0-48-generic`` -> ``6.8.0-49-generic``, ``6.18.44-fc-v1``
    -> ``6.18.45-fc-v1``."""
    m = re.match(r"^(\d+\.\d+\.\d+)-(\d+)-(.+)$", release)
    if m:
        return f"{m.group(1)}-{int(m.group(2)) + 1}-{m.group(3)}"
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(.*)$", release)
    return f"{m.group(1)}.{m.group(2)}.{int(m.group(3)) + 1}{m.group(4)}" if m else release + ".1"


def _kernel_build(release: str) -> str:
    """The package build of a lab kernel: its version numbers, then a revision (``6.8.0-49-generic`` ->
    ``6.8.0-49.1``), as Ubuntu's ``6.8.0-49.49``."""
    m = re.match(r"^(\d+\.\d+\.\d+)(?:-(\d+))?", release)
    assert m, release
    return f"{m.group(1)}-{m.group(2) or '0'}.1"


def managed_kernels() -> list[Package]:
    """The kernel line the lab's Debian-family hosts run, as packages: the running release (its image, so that
    a rollback can go back to it) and the next one with its headers, whose postinst plays DKMS's autoinstall:
    it builds (copies) the installed driver's nvidia module for the new kernel, as ``dkms autoinstall`` does."""
    running, after = running_kernel(), kernel_release_after(running_kernel())
    out = []
    for release in (running, after):
        build = _kernel_build(release)
        out.append(Package(name=f"linux-image-{release}", version=build, section="kernel",
                           description=f"Linux kernel image {release} (gpu-lab simulated)",
                           files=(PkgFile(path=f"/boot/vmlinuz-{release}", content=f"gpu-lab kernel {release}\n"),)))
    dkms = (f'if [ "$1" = configure ]; then\n'
            f'  for ko in /lib/modules/{running}/updates/dkms/nvidia.ko; do\n'
            f'    [ -e "$ko" ] || continue\n'
            f'    echo "dkms autoinstall: building nvidia for {after}... Done."\n'
            f'    install -D -m 0644 "$ko" /lib/modules/{after}/updates/dkms/nvidia.ko\n'
            f'  done\nfi\n')
    out.append(Package(name=f"linux-headers-{after}", version=_kernel_build(after), section="kernel",
                       description=f"Linux kernel headers {after} (gpu-lab simulated; DKMS builds against them)",
                       files=(PkgFile(path=f"/usr/src/linux-headers-{after}/Makefile", content="# gpu-lab\n"),),
                       scripts={"postinst": dkms,
                                "postrm": f'if [ "$1" = remove ] || [ "$1" = purge ]; then '
                                          f'rm -rf /lib/modules/{after}/updates; fi\n'}))
    return out


def precompiled_modules() -> list[Package]:
    """Ubuntu's precompiled, signed module packages for the kernel the lab runs, one per branch and flavour
    (``linux-modules-nvidia-580-open-<kernel>``), each build depending on its exact driver build as Ubuntu's
    depend on the matching ``nvidia-kernel-common``: a host that installs one runs its module from it."""
    kernel = running_kernel()
    out = []
    for branch, version, _cuda, _date in DRIVERS:
        for flavor in ("proprietary", "open"):
            suffix = "-open" if flavor == "open" else ""
            module = _kernel_module(version, flavor)
            folder = f"/lib/modules/{kernel}/kernel/nvidia-{branch}{suffix}"
            out.append(Package(
                name=f"linux-modules-nvidia-{branch}{suffix}-{kernel}", version=f"{_kernel_build(kernel)}+{version}",
                section="kernel", depends=(f"nvidia-driver-{branch}{suffix} (= {version}-0ubuntu1)",),
                description=f"NVIDIA kernel module {version} ({flavor}) for Linux {kernel} (gpu-lab simulated)",
                files=(module.model_copy(update={"path": f"{folder}/nvidia.ko"}),)))
    return out


def driver_pinning() -> list[Package]:
    """NVIDIA's pinning packages as the CUDA repository for Ubuntu/Debian ships them from 590: an apt preferences
    file that keeps the driver's packages on one branch (``nvidia-driver-pinning-580``) or one version
    (``nvidia-driver-pinning-580.95.05``). The lab's drivers are older; the packages let the roles' handling of
    them run for real."""
    out: list[Package] = []
    for branch, version, _cuda, _date in DRIVERS:
        for name, pattern in ((f"nvidia-driver-pinning-{version}", f"{version}-*"),
                              (f"nvidia-driver-pinning-{branch}", f"{branch}.*")):
            if any(p.name == name for p in out):
                continue
            prefs = f"Package: nvidia-driver-{branch}*\nPin: version {pattern}\nPin-Priority: 1000\n"
            out.append(Package(name=name, version=f"{version}-1", section="utils",
                               description=f"Pins the NVIDIA driver to {pattern} (gpu-lab simulated)",
                               files=(PkgFile(path=f"/etc/apt/preferences.d/{name}", content=prefs),)))
    return out


def drivers() -> list[Package]:
    out = []
    smi = [PkgFile(path=f"/usr/share/nvidia/gpu-lab-smi/{n}", content=_text("tools", "smi", n))
           for n in ("nvidia-smi.txt", "nvidia-smi-q.txt", "nvidia-smi-q.xml", "q-health.txt")]
    for branch, version, cuda, date in DRIVERS:
        for flavor in ("proprietary", "open"):
            info = {"version": version, "branch": branch, "flavor": flavor, "cuda": cuda, "build_date": date}
            initd, scripts = _service("nvidia-persistenced", "NVIDIA persistence daemon",
                                      "/usr/bin/nvidia-persistenced --user nvidia-persistenced",
                                      f'echo "Building initial module for nvidia/{version}... Done."\n')
            persistenced = {"name": "nvidia-persistenced", "service": "nvidia-persistenced", "version": version,
                            "version_text": f"nvidia-persistenced:  version {version}",
                            "log": "/var/log/nvidia-persistenced.log", "match_driver": True}
            files = (
                PkgFile(path="/usr/bin/nvidia-smi", content=_text("tools", "nvidia-smi"), mode=0o755),
                PkgFile(path="/usr/share/nvidia/gpu-lab-driver.json", content=json.dumps(info) + "\n"),
                *smi,
                *_lib("libnvidia-ml", version, "1", "NVML"),
                *_lib("libcuda", version, "1", "CUDA driver", ()),
                PkgFile(path=f"/usr/src/nvidia-{version}/dkms.conf",
                        content=f'PACKAGE_NAME="nvidia"\nPACKAGE_VERSION="{version}"\n'),
                _kernel_module(version, flavor),
                # the persistence daemon, from this driver's build: it runs on the old binary after an upgrade
                # until something restarts it, and refuses to start against another loaded module
                PkgFile(path="/usr/bin/nvidia-persistenced", content=_text("tools", "daemon"), mode=0o755),
                PkgFile(path="/usr/share/gpu-lab/nvidia-persistenced.json", content=json.dumps(persistenced) + "\n"),
                initd,
            )
            suffix = "-open" if flavor == "open" else ""
            out.append(Package(
                name=f"nvidia-driver-{branch}{suffix}", version=f"{version}-0ubuntu1",
                description=f"NVIDIA driver metapackage ({flavor} kernel module), simulated for gpu-lab",
                provides=("nvidia-driver-binary",), conflicts=("nvidia-driver-binary",),
                replaces=("nvidia-driver-binary",), files=files, scripts=scripts,
            ))
    return out


def fabric_managers() -> list[Package]:
    out = []
    for branch, version, _cuda, _date in DRIVERS:
        name = f"nvidia-fabricmanager-{branch}"
        initd, scripts = _service("nvidia-fabricmanager", "NVIDIA fabric manager",
                                  "/usr/bin/nv-fabricmanager -c /usr/share/nvidia/nvswitch/fabricmanager.cfg")
        info = {"name": "nv-fabricmanager", "service": "nvidia-fabricmanager", "version": version,
                "version_text": f"Fabric Manager version is : {version}", "log": "/var/log/fabricmanager.log",
                "match_driver": True}
        out.append(Package(
            name=name, version=f"{version}-1", description="Fabric Manager for NVSwitch based systems (simulated)",
            provides=("nvidia-fabricmanager",), conflicts=("nvidia-fabricmanager",),
            replaces=("nvidia-fabricmanager",),
            files=(PkgFile(path="/usr/bin/nv-fabricmanager", content=_text("tools", "daemon"), mode=0o755),
                   PkgFile(path="/usr/share/gpu-lab/nv-fabricmanager.json", content=json.dumps(info) + "\n"),
                   PkgFile(path="/usr/share/nvidia/nvswitch/fabricmanager.cfg",
                           content="LOG_LEVEL=4\nLOG_FILE_NAME=/var/log/fabricmanager.log\nFABRIC_MODE=0\n"),
                   initd),
            scripts=scripts,
        ))
    return out


def toolkits() -> list[Package]:
    out = []
    for full, nvcc, built, tag, cudart in TOOLKITS:
        major, minor, _ = full.split(".")
        short, dash = f"{major}.{minor}", f"{major}-{minor}"
        root = f"/usr/local/cuda-{short}"
        year = built.rsplit("_", 1)[-1]
        nvcc_text = (f"#!/bin/sh\ncat <<'EOF'\nnvcc: NVIDIA (R) Cuda compiler driver\n"
                     f"Copyright (c) 2005-{year} NVIDIA Corporation\nBuilt on {built}\n"
                     f"Cuda compilation tools, release {short}, V{nvcc}\nBuild {tag}\nEOF\n")
        version_json = json.dumps({
            "cuda": {"name": "CUDA SDK", "version": full},
            "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": cudart},
            "cuda_nvcc": {"name": "CUDA NVCC", "version": nvcc},
        }, indent=3) + "\n"
        prio = int(major) * 10 + int(minor)
        out.append(Package(
            name=f"cuda-toolkit-{dash}", version=f"{full}-1", description=f"CUDA Toolkit {short} (simulated)",
            files=(PkgFile(path=f"{root}/bin/nvcc", content=nvcc_text, mode=0o755),
                   PkgFile(path=f"{root}/version.json", content=version_json),
                   *_lib("libcudart", cudart, major, "CUDA runtime",
                         (f"-DCUDART_VERSION={int(major) * 1000 + int(minor) * 10}",),
                         folder=f"{root}/targets/x86_64-linux/lib"),
                   PkgFile(path=f"{root}/lib64", link="targets/x86_64-linux/lib")),
            scripts={
                "postinst": (f"update-alternatives --quiet --install /usr/local/cuda cuda {root} {prio}\n"
                             f"update-alternatives --quiet --install /usr/local/cuda-{major} cuda-{major} "
                             f"{root} {prio}\n"),
                "prerm": (f'if [ "$1" = remove ]; then update-alternatives --quiet --remove cuda {root}; '
                          f"update-alternatives --quiet --remove cuda-{major} {root}; fi\n"),
            },
        ))
    return out


def cudnn() -> list[Package]:
    out = []
    for name, version in CUDNN:
        full = version.split("-")[0]
        major, minor, patch = full.split(".")[:3]
        header = (f"/* cudnn_version.h (gpu-lab simulated) */\n#ifndef CUDNN_VERSION_H_\n#define CUDNN_VERSION_H_\n\n"
                  f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n\n"
                  "#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n\n#endif\n")
        hdr = f"/usr/include/x86_64-linux-gnu/cudnn_version_v{major}.h"
        others = tuple(n for n, _ in CUDNN if n != name and n.startswith("libcudnn9")) if major == "9" else ()
        out.append(Package(
            name=name, version=version, description=f"cuDNN runtime libraries {full} (simulated)",
            conflicts=others, replaces=others,
            files=(*_lib("libcudnn", f"{major}.{minor}.{patch}", major, "cuDNN",
                         (f"-DCUDNN_VERSION={_cudnn_code(int(major), int(minor), int(patch))}",)),
                   PkgFile(path=hdr, content=header)),
            scripts={
                "postinst": (f"update-alternatives --quiet --install /usr/include/cudnn_version.h "
                             f"cudnn_version_h {hdr} {int(major) * 100 + int(minor)}\n"),
                "prerm": (f'if [ "$1" = remove ]; then update-alternatives --quiet --remove cudnn_version_h '
                          f"{hdr}; fi\n"),
            },
        ))
    return out


def _cudnn_code(major: int, minor: int, patch: int) -> int:
    """``cudnnGetVersion()``: MAJOR*1000+MINOR*100+PATCH before cuDNN 9, MAJOR*10000+MINOR*100+PATCH since."""
    return major * (10000 if major >= 9 else 1000) + minor * 100 + patch


def _nccl_lib(version: str) -> tuple[PkgFile, ...]:
    major, minor, patch = (int(x) for x in version.split("-")[0].split("."))
    return _lib("libnccl", version.split("-")[0], "2", "NCCL",
                (f"-DNCCL_VERSION_CODE={major * 10000 + minor * 100 + patch}",))


def nccl() -> list[Package]:
    return [Package(name="libnccl2", version=v, description="NVIDIA Collective Communication Library (simulated)",
                    files=_nccl_lib(v)) for v in NCCL]


def dcgm() -> list[Package]:
    out = []
    for name, version, short in DCGM:
        others = tuple(dict.fromkeys(n for n, _, _ in DCGM if n != name))
        initd, scripts = _service("nvidia-dcgm", "NVIDIA DCGM host engine", "/usr/bin/nv-hostengine")
        info = {"name": "nv-hostengine", "service": "nvidia-dcgm", "version": short,
                "version_text": f"Version : {short}\nBuild ID : 0\nBuild Type : Release",
                "log": "/var/log/nv-hostengine.log", "match_driver": False}
        out.append(Package(
            name=name, version=version, description="NVIDIA Data Center GPU Manager (simulated)",
            conflicts=others, replaces=others,
            files=(PkgFile(path="/usr/bin/dcgmi", content=_text("tools", "dcgmi"), mode=0o755),
                   PkgFile(path="/usr/bin/nv-hostengine", content=_text("tools", "daemon"), mode=0o755),
                   PkgFile(path="/usr/share/gpu-lab/nv-hostengine.json", content=json.dumps(info) + "\n"),
                   PkgFile(path="/usr/share/dcgm/gpu-lab-dcgm.json", content=json.dumps({"version": short}) + "\n"),
                   initd),
            scripts=scripts,
        ))
    return out


def container_toolkits() -> list[Package]:
    out = []
    for version, commit in CONTAINER_TOOLKIT:
        short = version.split("-")[0]
        ctk = (f"#!/bin/sh\ncase \"$1\" in --version|-v|version) "
               f"printf 'NVIDIA Container Toolkit CLI version {short}\\ncommit: {commit}\\n';; "
               f"*) echo 'nvidia-ctk (gpu-lab simulated): only --version' >&2; exit 1;; esac\n")
        out.append(Package(
            name="nvidia-container-toolkit", version=version, section="utils",
            description="NVIDIA Container toolkit (simulated)",
            files=(PkgFile(path="/usr/bin/nvidia-ctk", content=ctk, mode=0o755),
                   PkgFile(path="/usr/bin/nvidia-container-runtime",
                           content="#!/bin/sh\necho 'simulated runtime' >&2\nexit 1\n", mode=0o755)),
        ))
    return out


@cache
def catalogue() -> tuple[Package, ...]:
    """Every simulated package, in a stable order."""
    return tuple(drivers() + fabric_managers() + toolkits() + cudnn() + nccl() + dcgm() + container_toolkits()
                 + [kernel_update()] + managed_kernels() + precompiled_modules()
                 + driver_pinning())
