"""The simulated nvidia-smi and the package catalogue, checked without a lab (no root needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.lab.catalogue import catalogue
from orchestrator.lab.config import LabPaths, asset
from orchestrator.lab.fleet import default_fleet
from orchestrator.lab.hosts import gpu_json
from orchestrator.lab.inventory import render
from orchestrator.model.inventory import KNOWN_VARS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real-gpu" / "h100-r580"  # copied from ../shared


@pytest.fixture()
def sim_root(tmp_path: Path) -> Path:
    smi = tmp_path / "usr/share/nvidia/gpu-lab-smi"
    smi.mkdir(parents=True)
    for name in ("nvidia-smi.txt", "nvidia-smi-q.txt", "nvidia-smi-q.xml", "q-health.txt"):
        (smi / name).write_text(asset("tools", "smi", name).read_text())
    (tmp_path / "usr/share/nvidia/gpu-lab-driver.json").write_text(
        json.dumps({"version": "580.159.04", "flavor": "open", "cuda": "13.0"}))
    (tmp_path / "etc/gpu-lab").mkdir(parents=True)
    h100 = next(h for h in default_fleet(6) if h.profile == "h100")
    data = gpu_json(h100) | {"count": 1, "bus_ids": ["00000000:00:06.0"],
                             "uuids": ["GPU-fff3ce4f-2c9e-27a1-a554-b3d9b01a8b44"], "serial_base": 1654023037665}
    (tmp_path / "etc/gpu-lab/gpu.json").write_text(json.dumps(data))
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \n")
    return tmp_path


def smi(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(asset("tools", "nvidia-smi")), *args], capture_output=True, text=True,
                          env={**os.environ, "GPU_LAB_SIM_ROOT": str(root)}, check=False)


def _no_timestamp(text: str) -> list[str]:
    return [line for line in text.splitlines() if "2026" not in line]


@pytest.mark.skipif(not FIXTURES.exists(), reason="real-gpu fixtures not found")
@pytest.mark.parametrize(("args", "capture"), [((), "nvidia-smi.txt"), (("-q",), "nvidia-smi-q.txt"),
                                               (("-q", "-x"), "nvidia-smi-q.xml")])
def test_smi_reproduces_the_real_capture(sim_root: Path, args: tuple[str, ...], capture: str) -> None:
    out = smi(sim_root, *args)
    assert out.returncode == 0
    assert _no_timestamp(out.stdout) == _no_timestamp((FIXTURES / capture).read_text())


@pytest.mark.skipif(not FIXTURES.exists(), reason="real-gpu fixtures not found")
def test_smi_query_gpu_matches_capture_header(sim_root: Path) -> None:
    expected = (FIXTURES / "query-gpu.csv").read_text().splitlines()
    fields = ("index,uuid,name,pci.bus_id,driver_version,vbios_version,compute_cap,memory.total,ecc.mode.current,"
              "ecc.errors.uncorrected.volatile.total,retired_pages.pending,clocks_throttle_reasons.active,"
              "temperature.gpu,power.draw,clocks.sm,clocks.max.sm,persistence_mode,mig.mode.current")
    out = smi(sim_root, f"--query-gpu={fields}", "--format=csv").stdout.splitlines()
    assert out[0] == expected[0]
    assert out[1].split(", ")[:12] == expected[1].split(", ")[:12]


def test_smi_failure_modes(sim_root: Path) -> None:
    (sim_root / "usr/share/nvidia/gpu-lab-driver.json").write_text(json.dumps({"version": "580.95.05"}))
    out = smi(sim_root)
    assert out.returncode == 18
    assert out.stdout == "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
    (sim_root / "proc/driver/nvidia/version").unlink()
    out = smi(sim_root, "-q")
    assert out.returncode == 9
    assert out.stdout.startswith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")


def test_catalogue_names_and_versions() -> None:
    have = {(p.name, p.version) for p in catalogue()}
    for wanted in [("nvidia-driver-535", "535.183.01-0ubuntu1"), ("nvidia-driver-580-open", "580.95.05-0ubuntu1"),
                   ("nvidia-fabricmanager-580", "580.95.05-1"), ("cuda-toolkit-12-8", "12.8.1-1"),
                   ("cuda-toolkit-13-0", "13.0.2-1"), ("libcudnn9-cuda-13", "9.19.0.56-1"),
                   ("libnccl2", "2.26.2-1+cuda12.8"), ("datacenter-gpu-manager-4-core", "1:4.2.3-1"),
                   ("nvidia-container-toolkit", "1.17.8-1")]:
        assert wanted in have
    drivers = [p for p in catalogue() if p.name.startswith("nvidia-driver-")
               and not p.name.startswith("nvidia-driver-pinning-")]  # pinning packages are apt preferences
    assert all("nvidia-driver-binary" in p.conflicts for p in drivers)


def test_inventory_uses_only_convention_variables() -> None:
    allowed = set(KNOWN_VARS)
    inv = render(LabPaths(state=Path("/tmp/x")), default_fleet(6))
    pools = inv["all"]["children"]
    assert set(pools) == {"training", "inference"}
    for pool in pools.values():
        for hv in pool["hosts"].values():
            assert {k for k in hv if k.startswith("upgrade_")} <= allowed
            assert not {k for k in hv if k.startswith("gpu_")}  # the roles read the upgrade_ names
            assert hv["ansible_host"].startswith("127.0.0.")
