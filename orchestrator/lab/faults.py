"""Fault injection per lab host, for the CLI and for tests.

Most faults are entries in the host's ``/etc/gpu-lab/faults.json`` (the simulated tools, the package
hook and the host's init read it); ``ssh-down`` is a one-shot request to the host's init; ``blocking-job``
is a real Slurm job pinned to the node so that a drain waits for it.
"""

from __future__ import annotations

import json
import signal
from enum import StrEnum
from typing import Any

from orchestrator.lab import slurm
from orchestrator.lab.config import LabPaths
from orchestrator.lab.errors import LabError
from orchestrator.lab.hosts import Proc, signal_host, write_json


class Fault(StrEnum):
    INSTALL_FAILS = "install-fails"        # preinst of matching packages fails (apt/dpkg error)
    REBOOT_HANGS = "reboot-hangs"          # the host does not come back from its next reboot
    DIAG_FAILS = "dcgm-diag-fails"         # `dcgmi diag` reports a failed test, exit 226
    GPU_SLOW = "gpu-slow"                  # bandwidth and clocks drop by `factor`, HW slowdown active
    SSH_DOWN = "ssh-down"                  # sshd (and its sessions) gone for `seconds`
    BLOCKING_JOB = "blocking-job"          # a running Slurm job keeps the node from draining
    MODULE_NOT_LOADED = "module-not-loaded"  # after the next boot, no NVIDIA kernel module
    CUDA_FAILS = "cuda-fails"              # the simulated libcuda's cuInit fails (CUDA_ERROR_UNKNOWN, 999)


def read_faults(paths: LabPaths, host: str) -> dict[str, Any]:
    try:
        data = json.loads((paths.host_dir(host) / "ctl/faults.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(paths: LabPaths, host: str, faults: dict[str, Any]) -> None:
    write_json(paths.host_dir(host) / "ctl/faults.json", faults)


def _request(paths: LabPaths, host: str, pid1: Proc, request: dict[str, Any]) -> None:
    write_json(paths.host_dir(host) / "ctl/request.json", request)
    signal_host(pid1, signal.SIGUSR2)


def inject(paths: LabPaths, host: str, pid1: Proc, fault: Fault, *, seconds: float = 10.0,
           packages: tuple[str, ...] = ("*",), factor: float = 0.4, gpu: int = 0) -> dict[str, Any]:
    """Turn one fault on; returns what was recorded (the job id for ``blocking-job``)."""
    faults = read_faults(paths, host)
    if fault is Fault.INSTALL_FAILS:
        faults["install_fail"] = list(packages)
    elif fault is Fault.REBOOT_HANGS:
        faults["reboot_hang"] = True
    elif fault is Fault.DIAG_FAILS:
        faults["dcgm_diag_fail"] = {"gpu": gpu, "test": "memory"}
    elif fault is Fault.GPU_SLOW:
        if not 0 < factor < 1:
            raise LabError(f"fault {fault}", f"factor must be between 0 and 1, not {factor}")
        faults["gpu_slow"] = {"factor": factor}
    elif fault is Fault.MODULE_NOT_LOADED:
        faults["module_not_loaded"] = True
    elif fault is Fault.CUDA_FAILS:
        faults["cuda_fail"] = {"error": 999}
    elif fault is Fault.SSH_DOWN:
        _request(paths, host, pid1, {"action": "ssh_down", "seconds": seconds})
        return {"ssh_down": seconds}
    elif fault is Fault.BLOCKING_JOB:
        out = slurm.run(paths, "sbatch", "--parsable", "-w", host, "-p", "all", "-J", "gpu-lab-blocker",
                        "-o", "/dev/null", "--gres=gpu:1", "--wrap", f"sleep {int(seconds)}")
        job = out.strip().split(";")[0]
        faults.setdefault("blocking_jobs", []).append(job)
    _write(paths, host, faults)
    return faults


def clear(paths: LabPaths, host: str, pid1: Proc, fault: Fault | None = None) -> None:
    """Turn one fault (or all) off; a host hung in reboot is power-cycled, blocking jobs are cancelled."""
    faults = read_faults(paths, host)
    keys = {
        Fault.INSTALL_FAILS: "install_fail", Fault.REBOOT_HANGS: "reboot_hang", Fault.DIAG_FAILS: "dcgm_diag_fail",
        Fault.GPU_SLOW: "gpu_slow", Fault.MODULE_NOT_LOADED: "module_not_loaded", Fault.BLOCKING_JOB: "blocking_jobs",
        Fault.CUDA_FAILS: "cuda_fail",
    }
    wanted = list(keys) if fault is None else [fault]
    for f in wanted:
        if f is Fault.SSH_DOWN:
            continue
        value = faults.pop(keys[f], None)
        if f is Fault.BLOCKING_JOB and value:
            slurm.run(paths, "scancel", *[str(j) for j in value], check=False)
        if f is Fault.REBOOT_HANGS and value:
            _write(paths, host, faults)
            _request(paths, host, pid1, {"action": "release"})  # acts only on a hung host
    _write(paths, host, faults)
