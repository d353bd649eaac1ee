"""A simulated host for the collector: answers its commands and file reads from the real H100 captures.

Only the versions, GPU name and count are substituted, so the collector parses exactly the formats a real
nvidia-smi prints. Failure modes use the messages real hosts print.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real-gpu" / "h100-r580"

NO_DRIVER = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
             "Make sure that the latest NVIDIA driver is installed and running.\n")
# Driver branch -> the CUDA version its nvidia-smi reports (driver API), from NVIDIA's release notes.
DRIVER_CUDA = {"470": "11.4", "535": "12.2", "550": "12.4", "560": "12.6", "570": "12.8", "575": "12.9", "580": "13.0"}
# What a simulated host's repositories offer (apt-cache madison), named and versioned like NVIDIA's packages.
REPOSITORY: dict[str, list[str]] = {
    "nvidia-driver-535": ["535.183.01-0ubuntu1"],
    "nvidia-driver-580": ["580.82.07-0ubuntu1", "580.95.05-0ubuntu1"],
    "nvidia-driver-580-open": ["580.82.07-0ubuntu1", "580.95.05-0ubuntu1"],
    "nvidia-fabricmanager-535": ["535.183.01-1"],
    "nvidia-fabricmanager-580": ["580.82.07-1", "580.95.05-1"],
    "cuda-toolkit-12-2": ["12.2.2-1"],
    "cuda-toolkit-12-8": ["12.8.0-1", "12.8.1-1"],
    "cuda-toolkit-13-0": ["13.0.1-1", "13.0.2-1"],
    "libcudnn8": ["8.9.7.29-1+cuda12.2"],
    "libcudnn9-cuda-12": ["9.10.2.21-1", "9.17.0.29-1"],
    "libcudnn9-cuda-13": ["9.17.0.29-1"],
    "libnccl2": ["2.18.5-1+cuda12.2", "2.21.5-1+cuda12.4", "2.28.9-1+cuda12.9", "2.28.9-1+cuda13.0"],
    "datacenter-gpu-manager": ["1:3.3.9"],
    "datacenter-gpu-manager-4-core": ["1:4.2.3-1"],
    "nvidia-container-toolkit": ["1.14.6-1", "1.17.8-1"],
}
ARCH = {"H100": "Hopper", "A100": "Ampere", "V100": "Volta", "H200": "Hopper", "L40S": "Ada Lovelace"}
CAPABILITY = {"H100": "9.0", "A100": "8.0", "V100": "7.0", "H200": "9.0", "L40S": "8.9"}


@dataclass
class SimHost:
    """State of one simulated host; ``driver_state`` is ok, absent, not_loaded or mismatch."""

    gpu_name: str = "NVIDIA H100 80GB HBM3"
    gpu_count: int = 8
    driver: str | None = "580.159.04"
    loaded_module: str | None = None  # defaults to `driver`; differs after an upgrade before reboot
    flavor: str = "open"
    driver_state: str = "ok"
    cuda: str | None = "12.8.1"
    packages: dict[str, str] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    kernel: str = "6.8.0-48-generic"
    os_release: str = 'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.5 LTS"\n'
    boot_id: str = "5b0e1f7c-7d0f-4c5e-9b7a-2f1f5a0c9e11"
    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    available: dict[str, list[str]] = field(default_factory=lambda: copy.deepcopy(REPOSITORY))
    # What nvidia-smi reports beyond the name; None: as the catalogued model would (a name the table lacks
    # gets H100's), "N/A": the field says nothing; compute_cap "": a driver too old for the query field.
    architecture: str | None = None
    compute_cap: str | None = None
    # `dkms status nvidia` as the host prints it; None: DKMS not installed
    dkms_status: str | None = None
    # kernel -> the nvidia module version `modinfo -k KERNEL` finds through modules.dep; None: no kmod installed
    modinfo: dict[str, str] | None = None
    # the kernels' module folders (/lib/modules): a real folder the tests build, read as the host's files
    modules_root: str = "/nonexistent/lib/modules"

    # -- the collector's interface
    def run(self, cmd: list[str]) -> tuple[int, str, str]:
        if cmd[0] == "uname":
            return 0, self.kernel + "\n", ""
        if cmd[0] == "nvidia-smi":
            if any(a.startswith("--query-gpu=") for a in cmd) and self._nvidia_smi()[0] == 0:
                return self._query_gpu(cmd)
            return self._nvidia_smi()
        if cmd[0] == "dpkg-query":
            lines = [f"{name}\t{ver}\t{'hi' if name in self.held else 'ii'} "
                     for name, ver in sorted(self.packages.items())
                     if any(fnmatch.fnmatchcase(name, pattern) for pattern in cmd[4:])]
            return (0 if lines else 1), "\n".join(lines) + "\n", ""
        if cmd[:2] == ["apt-cache", "pkgnames"]:
            return 0, "".join(f"{n}\n" for n in sorted(self.available)), ""
        if cmd[:2] == ["apt-cache", "madison"]:
            lines = [f"{n:>20} | {v} | file:/srv/repo ./ Packages" for n in cmd[2:] for v in self.available.get(n, [])]
            return 0, "".join(line + "\n" for line in lines), ""
        if cmd[0] == "dkms" and self.dkms_status is not None:
            return 0, self.dkms_status, ""
        if cmd[0] == "modinfo" and self.modinfo is not None:
            kernel = cmd[cmd.index("-k") + 1] if "-k" in cmd else None
            if kernel in self.modinfo:
                return 0, self.modinfo[kernel] + "\n", ""
            return 1, "", f"modinfo: ERROR: Module {cmd[-1]} not found.\n"
        if cmd[0] in ("nvcc", "/usr/local/cuda/bin/nvcc") and self.cuda:
            major_minor = ".".join(self.cuda.split(".")[:2])
            return 0, (f"nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release {major_minor}, "
                       f"V{self.cuda}\n"), ""
        return 127, "", f"{cmd[0]}: command not found"

    def read(self, path: str) -> str | None:
        if path in self.files:
            return self.files[path]
        if path == "/etc/os-release":
            return self.os_release
        if path == "/proc/sys/kernel/random/boot_id":
            return self.boot_id + "\n"
        if path == "/proc/driver/nvidia/version" and self.driver and self.driver_state in ("ok", "mismatch"):
            version = self.loaded_module or self.driver
            if self.flavor == "open":
                return (f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {version}  Release Build  "
                        "(dvs-builder@U16-I3-B03-4-3)  Thu Oct 16 21:14:31 UTC 2025\n"
                        "GCC version:  gcc version 12.3.0\n")
            return (f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Sun May 12 19:39:15 UTC 2024\n"
                    "GCC version:  gcc version 12.3.0\n")
        if path in ("/usr/local/cuda/version.json", f"/usr/local/cuda-{self._cuda_mm()}/version.json") and self.cuda:
            return json.dumps({"cuda": {"name": "CUDA SDK", "version": self.cuda}})
        return None

    def listdir(self, path: str) -> list[str]:
        if path == "/usr/local" and self.cuda:
            return ["bin", "cuda", f"cuda-{self._cuda_mm()}", "lib"]
        return []

    def resolve(self, path: str) -> str | None:
        return self.links.get(path)

    # -- helpers
    def _cuda_mm(self) -> str:
        return ".".join((self.cuda or "0.0").split(".")[:2])

    def _nvidia_smi(self) -> tuple[int, str, str]:
        if self.driver is None or self.driver_state == "absent":
            return 127, "", "nvidia-smi: command not found"
        if self.driver_state == "not_loaded":
            return 9, NO_DRIVER, ""
        if self.driver_state == "mismatch":
            message = ("Failed to initialize NVML: Driver/library version mismatch\n"
                       f"NVML library version: {self.driver}\n")
            return 18, message, ""
        return 0, self.nvidia_smi_xml(), ""

    def _model(self) -> str:
        return next((k for k in ARCH if k in self.gpu_name), "H100")

    def _buses(self) -> list[str]:
        return [f"00000000:{0x18 + i * 0x10:02X}:00.0" for i in range(self.gpu_count)]

    def _query_gpu(self, cmd: list[str]) -> tuple[int, str, str]:
        """``--query-gpu=pci.bus_id,compute_cap --format=csv`` as a real driver answers it."""
        fields = next(a for a in cmd if a.startswith("--query-gpu=")).split("=", 1)[1].split(",")
        cap = CAPABILITY[self._model()] if self.compute_cap is None else self.compute_cap
        if "compute_cap" in fields and cap == "":
            return 2, 'Field "compute_cap" is not a valid field to query.\n', ""
        values = {"pci.bus_id": self._buses(), "compute_cap": [cap] * self.gpu_count,
                  "name": [self.gpu_name] * self.gpu_count}
        rows = [", ".join(fields)] + [", ".join(values[f][i] for f in fields) for i in range(self.gpu_count)]
        return 0, "\n".join(rows) + "\n", ""

    def nvidia_smi_xml(self) -> str:
        root = ET.fromstring((CAPTURES / "nvidia-smi-q.xml").read_text().split("\n", 2)[2])
        assert self.driver
        root.find("driver_version").text = self.driver  # type: ignore[union-attr]
        root.find("cuda_version").text = DRIVER_CUDA.get(self.driver.split(".")[0], "12.2")  # type: ignore[union-attr]
        root.find("attached_gpus").text = str(self.gpu_count)  # type: ignore[union-attr]
        template = root.find("gpu")
        assert template is not None
        root.remove(template)
        model = self._model()
        for i, bus in enumerate(self._buses()):
            gpu = copy.deepcopy(template)
            gpu.set("id", bus)
            gpu.find("product_name").text = self.gpu_name  # type: ignore[union-attr]
            gpu.find("product_architecture").text = self.architecture or ARCH[model]  # type: ignore[union-attr]
            gpu.find("minor_number").text = str(i)  # type: ignore[union-attr]
            gpu.find("uuid").text = f"GPU-{i:08x}-2c9e-27a1-a554-b3d9b01a8b44"  # type: ignore[union-attr]
            gpu.find("pci/pci_bus_id").text = bus  # type: ignore[union-attr]
            root.append(gpu)
        return '<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v13.dtd">\n' + ET.tostring(
            root, encoding="unicode")
