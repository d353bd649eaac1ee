"""The CUDA probe and the host-side gate: real H200 captures, the child-process timeout, the pure parts."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.hostside import cuda_probe
from orchestrator.hostside.gate import run_command, run_gate, workload_argv, workload_check
from orchestrator.model.gates import GateResult

H200 = Path(__file__).parent.parent / "fixtures" / "device-h200"


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((H200 / name).read_text())
    return data


def test_real_h200_level1_gate_passes_with_its_figures() -> None:
    gate = GateResult.model_validate(_fixture("gate-level1.json"))
    assert gate.passed and gate.problems == [] and gate.level == 1
    assert gate.probe is not None and gate.probe.nccl is None  # level 1 runs no NCCL
    [gpu] = gate.probe.driver.gpus
    assert (gpu.name, gpu.compute_capability, gpu.sm_count) == ("NVIDIA H200", "9.0", 132)
    assert gate.probe.driver.cuda_driver_version == "13.0"
    assert gate.probe.runtime is not None and gate.probe.runtime.runtime_version == "13.0"
    assert gate.probe.cudnn is not None and gate.probe.cudnn.version == "9.14.0"
    assert gate.versions is not None and gate.versions.driver_found == ["580.159.04"]
    # the host's figures are its slowest GPU's; with one GPU, that GPU's
    assert gate.figures == gpu.figures
    # PCIe Gen5 x16 pinned copies, HBM3e copy (read + write), FP32 FMA: the H200's own ballpark
    assert 40 < gate.figures["h2d_gbps"] < 64 and 40 < gate.figures["d2h_gbps"] < 64
    assert 3000 < gate.figures["device_copy_gbps"] < 4800
    assert 40 < gate.figures["fp32_tflops"] < 67
    assert gate.seconds is not None and gate.seconds < 30  # the level-1 budget


def test_real_h200_level2_runs_a_one_gpu_nccl_all_reduce() -> None:
    gate = GateResult.model_validate(_fixture("gate-level2.json"))
    assert gate.passed and gate.probe is not None and gate.probe.nccl is not None
    nccl = gate.probe.nccl
    assert nccl.ok and nccl.version == "2.28.3" and nccl.gpus == 1
    assert nccl.busbw_gbps == 0.0  # nccl-tests' bus factor 2(n-1)/n: no bus with one GPU
    assert "nccl_busbw_gbps" not in gate.figures  # so no straggler figure from it either
    assert gate.diag is None  # no DCGM on that machine: no gate, not a failure


def test_real_h200_without_visible_gpu_names_nvidia_errors() -> None:
    gate = GateResult.model_validate(_fixture("gate-no-device.json"))
    assert not gate.passed
    assert "CUDA probe driver: cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected" \
        in gate.problems
    assert any("cudaErrorNoDevice (100): no CUDA-capable device is detected" in p for p in gate.problems)


def test_real_h200_rejects_ptx_newer_than_the_driver() -> None:
    probe = _fixture("probe-bad-ptx.json")
    assert probe["error_name"] == "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
    [line] = cuda_probe.probe_problems({"driver": probe})
    assert line.startswith("CUDA probe driver: cuModuleLoadData failed: CUDA_ERROR_UNSUPPORTED_PTX_VERSION (222)")


def test_real_h200_gate_through_ansible_local_connection() -> None:
    text = (H200 / "ansible-gate.txt").read_text()
    m = re.search(r'^ok: \[localhost\] => (\{.*\})$', text, re.M)
    assert m, "the module's result line"
    gate = GateResult.model_validate(json.loads(m.group(1))["gate"])
    assert gate.passed and gate.probe is not None and gate.probe.driver.gpus[0].name == "NVIDIA H200"
    assert "failed=0" in text


def test_ptx_asks_for_the_isa_given_and_its_answer_is_checkable() -> None:
    ptx = cuda_probe.fma_ptx("9.9").decode()
    assert ptx.startswith(".version 9.9\n.target sm_75") and ptx.endswith("}\n\0")
    assert ptx.count("fma.rn.f32") == cuda_probe.ACCUMULATORS * cuda_probe.UNROLL
    # thread 3, 10 iterations: accumulators 3+k+4*10 for k in 0..7
    assert cuda_probe.expected_fma_sum(3, 10) == sum(3 + k + 40 for k in range(8))


def _hang() -> dict[str, Any]:
    time.sleep(60)
    return {"ok": True}


def _crash() -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {"ok": True}


def test_a_hung_check_is_killed_at_its_timeout() -> None:
    t0 = time.monotonic()
    result = cuda_probe.in_child(_hang, 0.5)
    assert time.monotonic() - t0 < 10
    assert not result["ok"] and result["error"] == "_hang did not finish within 0.5 s (killed)"


def test_a_crashing_library_is_a_failed_check() -> None:
    result = cuda_probe.in_child(_crash, 10)
    assert not result["ok"] and result["error"] == "_crash crashed (killed by signal 9) before answering"


def test_missing_driver_is_named() -> None:
    result = cuda_probe.in_child(cuda_probe.driver_check, 10, lib="/nonexistent/libcuda.so.1")
    assert not result["ok"] and result["error"].startswith("cannot load /nonexistent/libcuda.so.1")


def test_workload_runs_its_argv_and_checks_the_exit_status() -> None:
    ok = workload_check(run_command, {"command": [sys.executable, "-c", "import sys; sys.exit(3)"],
                                      "expect_rc": 3, "timeout_s": 30})
    assert ok["ok"] and ok["rc"] == 3 and ok["seconds"] < 30
    slow = workload_check(run_command, {"command": [sys.executable, "-c", "import time; time.sleep(30)"],
                                        "timeout_s": 0.5})
    assert not slow["ok"] and slow["rc"] == 124 and "timed out after 0.5 s" in slow["error"]
    assert workload_argv({"image": "nvcr.io/nvidia/pytorch:25.01-py3", "command": ["python", "-c", "1"]}) == [
        "docker", "run", "--rm", "--gpus", "all", "nvcr.io/nvidia/pytorch:25.01-py3", "python", "-c", "1"]
    assert workload_argv({"image": "img", "runtime": "podman"})[3:5] == ["--device", "nvidia.com/gpu=all"]


def _runner(outputs: dict[str, tuple[int, str, str]]) -> Any:
    def run(argv: list[str], timeout: float) -> tuple[int, str, str]:
        return outputs.get(argv[0], (127, "", f"{argv[0]}: command not found"))
    return run


def test_gate_names_xid_codes_wrong_driver_and_skips_missing_dcgm() -> None:
    csv = (H200.parent / "real-gpu" / "h100-r580" / "query-gpu.csv").read_text()
    kernel_log = ("2026-12-01T08:00:01+0000 gpu1 kernel: NVRM: Xid (PCI:0000:00:06): 79, pid=0, name=, "
                  "GPU has fallen off the bus.\n")
    probe = {"driver": _fixture("gate-level1.json")["probe"]["driver"]}
    result = run_gate(2, expect_driver="580.95.05", since=1764576000,
                      run=_runner({"nvidia-smi": (0, csv, ""), "journalctl": (0, kernel_log, "")}),
                      probe=lambda **kw: probe)
    gate = GateResult.model_validate(result)
    assert not gate.passed and gate.diag is None
    assert "driver: planned 580.95.05, nvidia-smi reports 580.159.04" in gate.problems
    assert "GPU 0000:00:06: Xid 79 in the kernel log" in gate.problems
    assert gate.xid is not None and gate.xid.codes == [79] and gate.xid.source == "journalctl"


def _collection_gate(level: int) -> tuple[GateResult, str]:
    text = (H200 / "collection" / f"ansible-collection-gate-l{level}.txt").read_text()
    m = re.search(r'^ok: \[localhost\] => (\{"changed": false, "gate": .*\})$', text, re.M)
    assert m, "the upgrade_gate module's result line"
    return GateResult.model_validate(json.loads(m.group(1))["gate"]), text


def test_real_h200_collection_gate_playbook_with_nccl_workload_and_health() -> None:
    """The gpu_fleet.upgrade collection's gate.yml (role upgrade_gates) over a local connection on the H200."""
    for level in (0, 1):
        gate, text = _collection_gate(level)
        assert gate.passed and "failed=0" in text
        assert gate.diag is None  # no DCGM installed there: not a gate, at DCGM level 1 either
        assert gate.versions is not None and gate.versions.passed and gate.versions.driver_expected == "580.159.04"
        assert gate.probe is not None and gate.probe.nccl is not None and gate.probe.nccl.version == "2.28.3"
        assert gate.probe.runtime is not None and gate.probe.runtime.runtime_version == "13.0"
        assert gate.workload is not None and gate.workload.ok and gate.workload.output_tail == "68719476736.0\n"
        assert gate.figures["workload_s"] == gate.workload.seconds
        [health] = gate.health
        assert health.remapped_rows_pending == "No" and health.ecc_aggregate_uncorrectable == 0  # from -q -d
        assert gate.xid is not None and gate.xid.codes == []


def test_real_h200_benchmark_meets_the_speed_target() -> None:
    log = (H200 / "collection" / "log2.txt").read_text()
    walls = [float(x) for x in re.findall(r"^run \d: exit 0, ([\d.]+) s wall", log, re.M)]
    gates = [float(x) for x in re.findall(r"s wall, gate ([\d.]+) s", log)]
    assert len(walls) == 3 and max(walls) < 30 and max(gates) < 1.5
