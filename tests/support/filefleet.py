"""A fake fleet that outlives its process: each host's installed stack in a JSON file, every step logged.

Answers the planned steps as the lab's hosts would (precheck and verify report the stack; changes move it to
the target, rollback changes back), so a run killed with -9 and resumed by another process meets the hosts as
the first one left them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from orchestrator.planner import Plan
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import StepOutcome


class FileFleet:
    def __init__(self, plan: Plan, folder: Path, step_s: float = 0.0) -> None:
        self.plan, self.folder, self.step_s = plan, folder, step_s
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, host: str) -> Path:
        return self.folder / f"{host}.json"

    def stack(self, host: str) -> dict[str, object]:
        path = self._path(host)
        if path.exists():
            data: dict[str, object] = json.loads(path.read_text())
            return data
        return self.plan.host(host).current.model_dump(mode="json")

    def ran(self) -> list[tuple[str, str]]:
        log = self.folder / "steps.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(a, b) for a, b in (line.split(" ", 1) for line in lines)]

    def run_step(self, host: str, step: Step) -> StepOutcome:
        with (self.folder / "steps.log").open("a") as log:
            log.write(f"{host} {step.id}\n")
        time.sleep(self.step_s)
        planned = self.plan.host(host)
        if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
            return StepOutcome(ok=True, data={"stack": self.stack(host), "driver_status": "ok"})
        if step.kind == StepKind.CHANGE:
            moved = planned.current if step.id.startswith("rb-") else (planned.target or planned.current)
            self._path(host).write_text(json.dumps(moved.model_dump(mode="json")))
        if step.kind == StepKind.GATE:
            return StepOutcome(ok=True, data={"figures": {"pcie_h2d_gbps": 50.0}})
        if step.kind == StepKind.DRAIN:
            return StepOutcome(ok=True, data={"action": "drained"})
        return StepOutcome(ok=True)
