"""Gate parsers on real nvidia-smi captures (H100, driver 580), DCGM 3 layouts and the lab's simulated tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.hostside import gate_parsers as p
from orchestrator.lab.config import asset
from orchestrator.lab.fleet import default_fleet
from orchestrator.lab.hosts import gpu_json

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "real-gpu" / "h100-r580"
DCGM = ROOT / "tests" / "fixtures" / "dcgm"


# ---------------------------------------------------------------- real captures

def test_real_health_text_is_healthy() -> None:
    parsed = p.parse_smi_query_text((REAL / "q-health.txt").read_text())
    assert parsed["driver_version"] == "580.159.04" and parsed["cuda_version"] == "13.0"
    [gpu] = parsed["gpus"]
    health = p.health_from_query_text(gpu)
    assert health == {
        "bus_id": "00000000:00:06.0", "performance_state": "P0", "clock_event_reasons": ["gpu_idle"],
        "ecc_mode": "Enabled", "ecc_volatile_correctable": 0, "ecc_volatile_uncorrectable": 0,
        "ecc_aggregate_uncorrectable": 0, "retired_pages_double_bit": None, "retired_pages_pending": "N/A",
        "remapped_rows_uncorrectable": 0, "remapped_rows_pending": "No", "remapping_failed": "No",
        "temperature_c": None, "sm_clock_mhz": 345.0, "max_sm_clock_mhz": 1980.0,
    }
    assert p.gpu_health_problems(health) == []


def test_real_health_text_with_faults_reports_each() -> None:
    text = (REAL / "q-health.txt").read_text()
    text = text.replace("        HW Slowdown                                    : Not Active",
                        "        HW Slowdown                                    : Active", 1)
    text = text.replace("            HW Thermal Slowdown                        : Not Active",
                        "            HW Thermal Slowdown                        : Active", 1)
    text = text.replace("            DRAM Uncorrectable                         : 0",
                        "            DRAM Uncorrectable                         : 2", 1)
    text = text.replace("        Pending                                        : No",
                        "        Pending                                        : Yes", 1)
    health = p.health_from_query_text(p.parse_smi_query_text(text)["gpus"][0])
    assert health["clock_event_reasons"] == ["gpu_idle", "hw_slowdown", "hw_thermal_slowdown"]
    assert health["ecc_volatile_uncorrectable"] == 2
    assert p.gpu_health_problems(health) == [
        "00000000:00:06.0: 2 volatile uncorrectable ECC errors",
        "00000000:00:06.0: row remapping pending (reset the GPU)",
        "00000000:00:06.0: clocks slowed by hw_slowdown, hw_thermal_slowdown",
    ]


def test_real_query_csv_uses_the_new_field_name_and_strips_units() -> None:
    [row] = p.parse_query_csv((REAL / "query-gpu.csv").read_text())
    assert row["driver_version"] == "580.159.04"
    assert row["memory.total"] == "81559"
    assert row["retired_pages.pending"] is None
    assert row["clocks_event_reasons.active"] == "0x0000000000000001"
    health = p.health_from_query(row)
    assert health["clock_event_reasons"] == ["gpu_idle"]
    assert health["temperature_c"] == 51.0 and health["sm_clock_mhz"] == 1980.0
    assert p.gpu_health_problems(health) == []
    assert p.gpu_health_problems(health, max_temperature_c=50) == [
        "00000000:00:06.0: temperature 51 C above 50 C"]


def test_old_throttle_header_is_renamed() -> None:
    rows = p.parse_query_csv("index, clocks_throttle_reasons.active\n0, 0x0000000000000048\n")
    assert p.health_from_query(rows[0])["clock_event_reasons"] == ["hw_slowdown", "hw_thermal_slowdown"]


@pytest.mark.parametrize(("mask", "names"), [
    ("0x0000000000000000", []), ("0x0000000000000001", ["gpu_idle"]), (0x4, ["sw_power_cap"]),
    ("0x00000000000000A0", ["sw_thermal_slowdown", "hw_power_brake_slowdown"]), ("garbage", []),
    ("0x0000000000000100", ["display_clock_setting"]),
])
def test_clock_event_reason_bits(mask: str | int, names: list[str]) -> None:
    assert p.decode_clock_event_reasons(mask) == names


# ---------------------------------------------------------------- DCGM 3 layouts

def test_dcgm3_json_failed_memory_and_bandwidth() -> None:
    diag = p.parse_dcgmi_diag_json((DCGM / "dcgm3-diag-r2.json").read_text())
    assert diag["dcgm_version"] == "3.3.9" and diag["driver_version"] == "535.183.01"
    assert not diag["passed"] and diag["failed_tests"] == ["GPU Memory"]
    assert diag["bandwidth"] == {"0": {"d2h_gbps": 24.31, "h2d_gbps": 24.92},
                                 "1": {"d2h_gbps": 24.10, "h2d_gbps": 12.40}}
    assert p.min_bandwidth(diag) == 12.40
    assert p.diag_problems(diag) == [
        "dcgmi diag Hardware/GPU Memory failed on GPU 1: Error: Found 2 uncorrectable DBE errors"]


def test_dcgm3_text_fail_with_warning_rows() -> None:
    diag = p.parse_dcgmi_diag_text((DCGM / "dcgm3-diag-r1.txt").read_text())
    assert diag["dcgm_version"] == "3.3.9"
    names = [t["name"] for t in diag["tests"]]
    assert names[0] == "Denylist" and "Inforom" in names and len(names) == 9
    persistence = next(t for t in diag["tests"] if t["name"] == "Persistence Mode")
    assert persistence["status"] == "Fail" and persistence["gpus"] == {"1": "Fail"}
    assert persistence["messages"][0].startswith("Warning: GPU 1 Persistence mode for GPU 1 is disabled.")
    assert "as root." in persistence["messages"][0]
    assert p.diag_problems(diag)[0].startswith("dcgmi diag Deployment/Persistence Mode failed on GPU 1: Warning")


def test_unparseable_diag_is_a_result_not_an_exception() -> None:
    diag = p.parse_dcgmi_diag_json("Error: Unable to connect to host engine. Host engine connection invalid.\n")
    assert not diag["passed"] and diag["error"].startswith("Error: Unable to connect")
    assert p.diag_problems(diag) == [f"dcgmi diag: {diag['error']}"]
    empty = p.parse_dcgmi_diag_text("")
    assert not empty["passed"] and p.diag_problems(empty) == ["dcgmi diag: no test results"]


# ---------------------------------------------------------------- the lab's simulated tools

def _sim_root(tmp: Path, profile: str, faults: dict[str, object], dcgm: str = "4.2.3") -> Path:
    host = next(h for h in default_fleet(6) if h.profile == profile)
    (tmp / "etc/gpu-lab").mkdir(parents=True)
    (tmp / "etc/gpu-lab/gpu.json").write_text(json.dumps(gpu_json(host)))
    (tmp / "etc/gpu-lab/faults.json").write_text(json.dumps(faults))
    smi = tmp / "usr/share/nvidia/gpu-lab-smi"
    smi.mkdir(parents=True)
    for name in ("nvidia-smi.txt", "nvidia-smi-q.txt", "nvidia-smi-q.xml", "q-health.txt"):
        (smi / name).write_text(asset("tools", "smi", name).read_text())
    (tmp / "usr/share/nvidia/gpu-lab-driver.json").write_text(
        json.dumps({"version": "580.95.05", "flavor": "open", "cuda": "13.0"}))
    (tmp / "usr/share/dcgm").mkdir(parents=True)
    (tmp / "usr/share/dcgm/gpu-lab-dcgm.json").write_text(json.dumps({"version": dcgm}))
    (tmp / "proc/driver/nvidia").mkdir(parents=True)
    (tmp / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs)  \n")
    return tmp


def _run(root: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(asset("tools", tool)), *args], capture_output=True, text=True,
                          env={**os.environ, "GPU_LAB_SIM_ROOT": str(root)}, check=False)


@pytest.mark.parametrize("dcgm", ["4.2.3", "3.3.9"])
def test_sim_diag_healthy_a100(tmp_path: Path, dcgm: str) -> None:
    root = _sim_root(tmp_path, "a100", {}, dcgm)
    out = _run(root, "dcgmi", "diag", "-r", "2", "-j")
    assert out.returncode == 0
    diag = p.parse_dcgmi_diag_json(out.stdout)
    assert diag["passed"] and diag["dcgm_version"] == dcgm and diag["driver_version"] == "580.95.05"
    assert [t["name"] for t in diag["tests"]] == ["software", "pcie", "memory"]
    assert sorted(diag["bandwidth"]) == ["0", "1", "2", "3"]
    assert p.min_bandwidth(diag) == 25.0
    text = p.parse_dcgmi_diag_text(_run(root, "dcgmi", "diag", "-r", "2").stdout)
    assert text["passed"] and len(text["tests"]) == 3 and text["tests"][1]["gpus"] == {str(i): "Pass" for i in range(4)}


def test_sim_diag_failure_and_slow_gpu(tmp_path: Path) -> None:
    root = _sim_root(tmp_path, "a100", {"dcgm_diag_fail": {"gpu": 1, "test": "memory"}, "gpu_slow": {"factor": 0.4}})
    out = _run(root, "dcgmi", "diag", "-r", "2", "-j")
    assert out.returncode == 226
    diag = p.parse_dcgmi_diag_json(out.stdout)
    assert diag["failed_tests"] == ["memory"] and p.min_bandwidth(diag) == pytest.approx(10.0)
    assert p.diag_problems(diag) == [
        "dcgmi diag Hardware/memory failed on GPU 1: Error: GPU 1 failed memory: memory error detected (lab fault)"]
    text = p.parse_dcgmi_diag_text(_run(root, "dcgmi", "diag", "-r", "2").stdout)
    assert text["failed_tests"] == ["memory"]
    assert p.diag_problems(text) == [
        "dcgmi diag Hardware/memory failed on GPU 1: Error: GPU 1: memory error detected (lab fault)"]
    health_text = _run(root, "nvidia-smi", "-q", "-d", "PERFORMANCE,CLOCK,ECC,PAGE_RETIREMENT,ROW_REMAPPER").stdout
    gpus = [p.health_from_query_text(g) for g in p.parse_smi_query_text(health_text)["gpus"]]
    assert len(gpus) == 4 and all("hw_slowdown" in g["clock_event_reasons"] for g in gpus)
    assert gpus[0]["sm_clock_mhz"] == 564.0
    csv = _run(root, "nvidia-smi", "--query-gpu=index,pci.bus_id,temperature.gpu,clocks_event_reasons.active,"
               "ecc.errors.uncorrected.volatile.total,clocks.sm,clocks.max.sm", "--format=csv").stdout
    rows = [p.health_from_query(r) for r in p.parse_query_csv(csv)]
    assert [r["clock_event_reasons"] for r in rows] == [["hw_slowdown"]] * 4
    assert p.gpu_health_problems(rows[0]) == ["00000000:18:00.0: clocks slowed by hw_slowdown"]


def test_sim_diag_fabric_manager_down_fails_deployment(tmp_path: Path) -> None:
    root = _sim_root(tmp_path, "h100", {})
    diag = p.parse_dcgmi_diag_json(_run(root, "dcgmi", "diag", "-r", "1", "-j").stdout)
    assert diag["failed_tests"] == ["software"]
    assert "Fabric Manager is not running" in p.diag_problems(diag)[0]


# ---------------------------------------------------------------- public captures: failures that must not pass

def test_dcgm3_text_second_gpu_failing_targeted_power_fails_the_gate() -> None:
    diag = p.parse_dcgmi_diag_text((DCGM / "dcgm3-diag-r3-targeted-power-gpu1.txt").read_text())
    power = next(t for t in diag["tests"] if t["name"] == "Targeted Power")
    assert power["status"] == "Fail" and power["gpus"] == {"0": "Pass", "1": "Fail"}
    assert not diag["passed"] and diag["failed_tests"] == ["Targeted Power"]
    [problem] = p.diag_problems(diag)
    assert problem.startswith("dcgmi diag Stress/Targeted Power failed on GPU 1: Warning: GPU 1 Max power of 62.1")


def test_dcgm3_text_real_two_gpu_run_names_the_failing_gpu() -> None:
    diag = p.parse_dcgmi_diag_text((DCGM / "dcgm3-diag-r2-two-gpus-gpu0-failed.txt").read_text())
    memory = next(t for t in diag["tests"] if t["name"] == "GPU Memory")
    assert memory["gpus"] == {"1": "Pass", "0": "Fail"} and memory["status"] == "Fail"
    assert diag["failed_tests"] == ["GPU Memory", "Diagnostic", "Targeted Stress"]
    assert p.diag_problems(diag)[0].startswith("dcgmi diag Hardware/GPU Memory failed on GPU 0: Warning: GPU 0")


def test_every_hardware_test_skipped_is_not_a_pass() -> None:
    for diag in (p.parse_dcgmi_diag_text((DCGM / "dcgm3-diag-r3-all-skipped.txt").read_text()),
                 p.parse_dcgmi_diag_json((DCGM / "dcgm3-diag-r3-all-skipped.json").read_text())):
        assert diag["failed_tests"] == [] and not diag["passed"]
        assert diag["error"].startswith("every hardware test was skipped (PCIe, GPU Memory, Diagnostic")
        assert p.diag_problems(diag) == [f"dcgmi diag: {diag['error']}"]


def test_json_summary_pass_does_not_hide_a_failing_gpu() -> None:
    data = {"DCGM GPU Diagnostic": {"test_categories": [{"category": "Stress", "tests": [
        {"name": "Targeted Power", "test_summary": {"status": "Pass"},
         "results": [{"gpu_id": "0", "status": "Pass"}, {"gpu_id": "1", "status": "Fail"}]}]}]}}
    diag = p.parse_dcgmi_diag_json(json.dumps(data))
    assert not diag["passed"] and diag["tests"][0]["gpus"] == {"0": "Pass", "1": "Fail"}


def test_older_single_double_bit_ecc_layout_is_read() -> None:
    text = (ROOT / "tests" / "fixtures" / "nvidia-smi" / "q-ecc-single-double-bit.txt").read_text()
    [gpu] = p.parse_smi_query_text(text)["gpus"]
    health = p.health_from_query_text(gpu)
    assert health["ecc_volatile_correctable"] == 12 and health["ecc_volatile_uncorrectable"] == 2
    assert health["ecc_aggregate_uncorrectable"] == 3 and health["retired_pages_double_bit"] == 2
    assert p.gpu_health_problems(health)[:2] == ["00000000:3B:00.0: 2 volatile uncorrectable ECC errors",
                                                  "00000000:3B:00.0: 3 aggregate uncorrectable ECC errors"]


def test_xid_lines_name_gpu_and_code() -> None:
    log = ("[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=0, name=, GPU has fallen off the bus.\n"
           "[ 1300.000001] NVRM: Xid (PCI:0000:3b:00): 48, pid=2211, name=python, An uncorrectable double bit "
           "error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.\n"
           "[ 1400.1] NVRM: Xid (0000:86:00): 13, Graphics Exception: ESR 0x50da30=0x3e000e 0x50da34=0x0\n"
           "[ 1500.2] nvidia-nvlink: IBMNPU: unrelated line\n")
    events = p.parse_xid(log)
    assert [(e["bus_id"], e["code"]) for e in events] == [("0000:3b:00", 79), ("0000:3b:00", 48), ("0000:86:00", 13)]
    assert events[0]["text"].endswith("GPU has fallen off the bus.")
    assert p.xid_problems(events) == ["GPU 0000:3b:00: Xid 79, 48 in the kernel log",
                                      "GPU 0000:86:00: Xid 13 in the kernel log"]
    assert p.parse_xid("") == [] and p.xid_problems([]) == []
