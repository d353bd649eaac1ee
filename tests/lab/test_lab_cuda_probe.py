"""The gate's CUDA probe on lab hosts: the simulated libcuda/libcudart/libcudnn installed by dpkg, faults and all."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.faults import Fault
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab
PROBE = Path(__file__).resolve().parents[2] / "orchestrator" / "hostside" / "cuda_probe.py"


def probe(lab: LabHandle, host: str, **kwargs: Any) -> dict[str, Any]:
    """Ship the probe as the gate role does (one stdlib file) and run it on the host with its own python3."""
    code = base64.b64encode(PROBE.read_bytes()).decode()
    args = base64.b64encode(json.dumps({"timeout": 30, **kwargs}).encode()).decode()
    r = lab.ssh(host, f"echo {code} | base64 -d > /tmp/cuda_probe.py && cd /tmp && python3 -c "
                      f"'import base64, json, cuda_probe; print(json.dumps(cuda_probe.run_probe("
                      f"**json.loads(base64.b64decode(\"{args}\")))))'", timeout=120)
    assert r.returncode == 0, r.stderr
    result: dict[str, Any] = json.loads(r.stdout)
    return result


def test_probe_follows_the_hosts_stack_and_faults(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    gpu = json.loads(lab.ssh(host, "cat /etc/gpu-lab/gpu.json").stdout)
    ok = probe(lab, host, nccl=True)
    assert ok["driver"]["ok"] and ok["runtime"]["ok"] and ok["cudnn"]["ok"] and ok["nccl"]["ok"], ok
    assert ok["driver"]["gpu_count"] == gpu["count"] and ok["nccl"]["gpus"] == gpu["count"]
    cudnn = lab.ssh(host, "dpkg-query -W -f '${Version}' 'libcudnn*'").stdout
    assert cudnn.startswith(ok["cudnn"]["version"])  # read from the installed library itself
    h2d = ok["driver"]["gpus"][0]["figures"]["h2d_gbps"]
    assert h2d == pytest.approx(gpu["pcie_bandwidth_gbps"], rel=0.02)
    lab.lab.inject(host, Fault.GPU_SLOW, factor=0.4)
    try:
        slow = probe(lab, host)
        assert slow["driver"]["gpus"][0]["figures"]["h2d_gbps"] == pytest.approx(h2d * 0.4, rel=0.02)
    finally:
        lab.lab.clear(host, Fault.GPU_SLOW)
    lab.lab.inject(host, Fault.CUDA_FAILS)
    try:
        failing = probe(lab, host)
        assert failing["driver"]["error"] == "cuInit failed: CUDA_ERROR_UNKNOWN (999): unknown error"
        assert failing["runtime"]["error"] == "cudaGetDeviceCount: cudaErrorUnknown (999): unknown error"
    finally:
        lab.lab.clear(host, Fault.CUDA_FAILS)
