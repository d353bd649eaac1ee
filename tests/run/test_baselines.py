"""Baselines measured before the upgrade: the level-1 gate on each host as it is, its figures kept."""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator.adapters.journal import Journal
from orchestrator.app.baselines import BASELINE_STEP, measure_baselines
from orchestrator.planner.model import Step
from orchestrator.ports import StepOutcome


class Port:
    """Hosts answering the baseline gate: one gives probe figures, one fails its gate, one gives none."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Step]] = []
        self.lock = threading.Lock()

    def run_step(self, host: str, step: Step) -> StepOutcome:
        with self.lock:
            self.calls.append((host, step))
        if host == "gpu-1":
            return StepOutcome(ok=True, data={"figures": {"h2d_gbps": 55.3, "fp32_tflops": 61.0, "ptx_jit_ms": 15.0}})
        if host == "gpu-2":  # its old stack already fails a gate: its figures still count
            return StepOutcome(ok=False, message="Xid 79", data={"figures": {"h2d_gbps": 20.1}})
        return StepOutcome(ok=False, message="unreachable", unreachable=True)


def test_baselines_are_measured_once_per_host_and_kept(tmp_path: Path) -> None:
    port = Port()
    with Journal(tmp_path / "journal.db") as journal:
        measured = measure_baselines(port, journal, ["gpu-2", "gpu-1", "gpu-3", "gpu-1"], parallel=4)
        assert measured == {"gpu-1": {"h2d_gbps": 55.3, "fp32_tflops": 61.0}, "gpu-2": {"h2d_gbps": 20.1}}
        assert journal.baselines("h2d_gbps") == {"gpu-1": 55.3, "gpu-2": 20.1}
        assert journal.baselines("ptx_jit_ms") == {}  # a time, not a straggler figure
    assert sorted(h for h, _ in port.calls) == ["gpu-1", "gpu-2", "gpu-3"]
    step = port.calls[0][1]
    assert step is BASELINE_STEP and step.playbook == "gate.yml"
    assert step.vars == {"gate_level": 0, "gate_expect_driver": "", "gate_fail": False}
