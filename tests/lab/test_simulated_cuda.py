"""The lab's simulated CUDA libraries, built from C as the lab builds them, under the gate's real CUDA probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.catalogue import Package, PkgFile, catalogue
from orchestrator.lab.fleet import default_fleet
from orchestrator.lab.hosts import gpu_json
from orchestrator.lab.repo import _compile
from orchestrator.run.stragglers import judge

ROOT = Path(__file__).resolve().parents[2]


def _package(prefix: str, version_prefix: str = "") -> Package:
    return next(p for p in catalogue() if p.name.startswith(prefix) and p.version.startswith(version_prefix))


def _build(pkg: Package, soname: str, into: Path) -> None:
    [lib] = [f for f in pkg.files if f.compile is not None and ".so" in f.path]
    _compile(lib.content, lib.compile or (), into / soname, pkg)


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cuda-libs")
    _build(_package("nvidia-driver-580-open"), "libcuda.so.1", out)
    _build(_package("cuda-toolkit-13-0"), "libcudart.so.13", out)
    _build(_package("libcudnn9-cuda-13"), "libcudnn.so.9", out)
    _build(_package("libnccl2", "2.28.9"), "libnccl.so.2", out)
    return out


def _host(tmp: Path, *, driver: str = "580.95.05", cuda: str = "13.0", module: str | None = "580.95.05",
          faults: dict[str, Any] | None = None, profile: str | None = None) -> Path:
    host = next(h for h in default_fleet(6) if profile is None or h.profile == profile)
    (tmp / "etc/gpu-lab").mkdir(parents=True)
    (tmp / "etc/gpu-lab/gpu.json").write_text(json.dumps(gpu_json(host)))
    (tmp / "etc/gpu-lab/faults.json").write_text(json.dumps(faults or {}))
    (tmp / "usr/share/nvidia").mkdir(parents=True)
    (tmp / "usr/share/nvidia/gpu-lab-driver.json").write_text(json.dumps({"version": driver, "cuda": cuda}))
    if module is not None:
        (tmp / "proc/driver/nvidia").mkdir(parents=True)
        (tmp / "proc/driver/nvidia/version").write_text(
            f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {module}  Release Build  (dvs-builder@U16)\n")
    return tmp


def _probe(libs: Path, root: Path, **kwargs: Any) -> dict[str, Any]:
    code = ("import json, sys; from orchestrator.hostside import cuda_probe as c; "
            "print(json.dumps(c.run_probe(**json.loads(sys.argv[1]))))")
    env = dict(os.environ, LD_LIBRARY_PATH=str(libs), GPU_LAB_SIM_ROOT=str(root), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps({"timeout": 30, **kwargs})], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_healthy_host_runs_every_check_with_the_hosts_figures(libs: Path, tmp_path: Path) -> None:
    root = _host(tmp_path)
    gpu = json.loads((root / "etc/gpu-lab/gpu.json").read_text())
    probe = _probe(libs, root, nccl=True)
    assert [k for k in ("driver", "runtime", "cudnn", "nccl") if not probe[k]["ok"]] == []
    assert probe["driver"]["gpu_count"] == gpu["count"] and probe["driver"]["cuda_driver_version"] == "13.0"
    assert probe["runtime"]["runtime_version"] == "13.0" and probe["cudnn"]["version"] == "9.19.0"
    assert probe["nccl"]["version"] == "2.28.9" and probe["nccl"]["gpus"] == gpu["count"]
    figures = probe["driver"]["gpus"][0]["figures"]
    assert figures["h2d_gbps"] == pytest.approx(gpu["pcie_bandwidth_gbps"], rel=0.02)
    assert probe["driver"]["gpus"][0]["name"] == gpu["name"]


def test_slow_gpu_fault_makes_a_straggler_against_its_baseline(libs: Path, tmp_path: Path) -> None:
    from orchestrator.hostside.cuda_probe import probe_figures
    before = probe_figures(_probe(libs, _host(tmp_path / "before")))
    after = probe_figures(_probe(libs, _host(tmp_path / "after", faults={"gpu_slow": {"factor": 0.4}})))
    assert after["fp32_tflops"] == pytest.approx(before["fp32_tflops"] * 0.4, rel=0.02)
    verdict = judge("gpu1", "h2d_gbps", after["h2d_gbps"], baseline=before["h2d_gbps"], wave=[after["h2d_gbps"]],
                    threshold=0.8)
    assert verdict.straggler and verdict.vs_baseline == pytest.approx(0.4, rel=0.02)


def test_driver_library_mismatch_before_the_reboot(libs: Path, tmp_path: Path) -> None:
    probe = _probe(libs, _host(tmp_path, driver="580.95.05", module="570.172.08"))
    assert probe["driver"]["error"] == ("cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803): system has "
                                        "unsupported display driver / cuda driver combination")
    assert probe["runtime"]["error"].startswith("cudaGetDeviceCount: cudaErrorSystemDriverMismatch (803)")


def test_no_kernel_module_and_failing_cuda(libs: Path, tmp_path: Path) -> None:
    assert _probe(libs, _host(tmp_path / "a", module=None))["driver"]["error_name"] == "CUDA_ERROR_NO_DEVICE"
    failing = _probe(libs, _host(tmp_path / "b", faults={"cuda_fail": {"error": 999}}))
    assert failing["driver"]["error"] == "cuInit failed: CUDA_ERROR_UNKNOWN (999): unknown error"


def test_runtime_newer_than_the_driver_names_nvidias_error(libs: Path, tmp_path: Path) -> None:
    probe = _probe(libs, _host(tmp_path, driver="535.183.01", module="535.183.01", cuda="12.2"), cuda_major=13)
    assert probe["driver"]["ok"]
    assert probe["runtime"]["error"] == ("cudaGetDeviceCount: cudaErrorInsufficientDriver (35): CUDA driver "
                                         "version is insufficient for CUDA runtime version")


def test_ptx_newer_than_the_driver_is_refused(libs: Path, tmp_path: Path) -> None:
    probe = _probe(libs, _host(tmp_path, driver="535.183.01", module="535.183.01", cuda="12.2"), ptx_isa="9.0")
    assert probe["driver"]["error_name"] == "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"


def test_every_simulated_library_is_built_from_c() -> None:
    built = {f.path.rsplit("/", 1)[-1].split(".so")[0].split(".ko")[0] for p in catalogue() for f in p.files
             if isinstance(f, PkgFile) and f.compile is not None}
    assert built == {"libcuda", "libcudart", "libcudnn", "libnccl", "nvidia"}  # nvidia.ko: the kernel module


def test_the_drivers_kernel_module_reads_as_its_version_under_modinfo(tmp_path: Path) -> None:
    """The module each driver package ships for the running kernel: the real modinfo reads its version."""
    pkg = _package("nvidia-driver-580-open", "580.95.05")
    [module] = [f for f in pkg.files if f.path.endswith("/nvidia.ko")]
    _compile(module.content, module.compile or (), tmp_path / "nvidia.ko", pkg)
    out = subprocess.run(["modinfo", "-F", "version", str(tmp_path / "nvidia.ko")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "580.95.05"


def test_runtime_unplanned_takes_the_newest_installed_and_none_is_no_failure(libs: Path, tmp_path: Path) -> None:
    root = _host(tmp_path)
    # the driver speaks CUDA 13.0; only libcudart.so.13 is there: found without being named
    assert _probe(libs, root)["runtime"]["runtime_version"] == "13.0"
    # a driver of CUDA 10.2 and no libcudart.so.10 anywhere: nothing to check, no failure
    old = _host(tmp_path / "old", driver="440.118.02", module="440.118.02", cuda="10.2")
    probe = _probe(libs, old)
    note = "no CUDA runtime (libcudart.so.10 to .10) installed"
    assert probe["driver"]["ok"] and probe["runtime"] == {"ok": True, "note": note,
                                                          "seconds": probe["runtime"]["seconds"]}
    assert not _probe(libs, old, cuda_major=10)["runtime"]["ok"]  # a planned toolkit must be there


def test_cudnn_8_host_is_found_without_a_planned_major(tmp_path: Path) -> None:
    """A host on cuDNN 8 (libcudnn.so.8, cudnnGetVersion 8907) is read as 8.9.7; a planned major 9 that is not
    installed is named in the error."""
    libs = tmp_path / "libs"
    libs.mkdir()
    _build(_package("nvidia-driver-580-open"), "libcuda.so.1", libs)
    _build(_package("libcudnn8"), "libcudnn.so.8", libs)
    root = _host(tmp_path / "host")
    assert _probe(libs, root)["cudnn"] == {"ok": True, "library": "libcudnn.so.8", "version": "8.9.7",
                                           "seconds": pytest.approx(0, abs=5)}
    missing = _probe(libs, root, cudnn_major=9)["cudnn"]
    assert not missing["ok"] and missing["error"].startswith("libcudnn.so.9: ")
