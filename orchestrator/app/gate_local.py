"""Run the gates on this machine with the same host-side code the gate role ships to hosts."""

from __future__ import annotations

import socket

from orchestrator.errors import InputError
from orchestrator.hostside.gate import run_gate
from orchestrator.model.gates import GateResult


def gate_local(level: int = 1, *, expect_driver: str | None = None, cuda_version: str | None = None,
               need_cudnn: bool = False, since: float | None = None, timeout: float = 120.0,
               library_dirs: list[str] | None = None) -> GateResult:
    """Every gate of ``level`` on this machine (1: probe without NCCL, health, versions, Xid; 2: + NCCL, DCGM)."""
    if level not in (1, 2, 3):
        raise InputError("upgrade gate", f"--level {level}: give 1, 2 or 3")
    if timeout <= 0:
        raise InputError("upgrade gate", f"--timeout {timeout:g}: give a number of seconds above 0")
    raw = run_gate(level, expect_driver=expect_driver, cuda_version=cuda_version, need_cudnn=need_cudnn,
                   since=since, timeout=timeout, extra_dirs=library_dirs)
    return GateResult.model_validate({**raw, "host": socket.gethostname()})
