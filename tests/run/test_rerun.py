"""Re-running is safe (issue 20): every (state, command) pair through the real apply and rollback use cases.

The host side is a fake fleet that keeps each host's installed stack and answers the planned steps like the
lab's hosts would (precheck and verify report the stack; changes move it); journal, lock, plan and inputs are
real (SQLite in a temporary folder, the example inventory parsed by Ansible).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.journal import Journal
from orchestrator.app.apply import apply, rollback
from orchestrator.model.stack import SoftwareStack
from orchestrator.planner import Plan, load_plan
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import StepOutcome
from tests.support.example_plan import FACTS, NOW, write_example_plan

ROOT = Path(__file__).resolve().parents[2]


class FakeFleet:
    """Each host's installed stack; upgrade changes move it to the target, rollback changes back."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stack: dict[str, SoftwareStack] = {h.name: h.current for h in plan.hosts}
        self.ran: list[tuple[str, str]] = []

    def run_step(self, host: str, step: Step) -> StepOutcome:
        self.ran.append((host, step.id))
        planned = self.plan.host(host)
        if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
            return StepOutcome(ok=True, data={"stack": self.stack[host].model_dump(mode="json"),
                                              "driver_status": "ok"})
        if step.kind == StepKind.CHANGE:
            rolling = step.id.startswith("rb-")
            self.stack[host] = planned.current if rolling else (planned.target or planned.current)
        if step.kind == StepKind.GATE:
            return StepOutcome(ok=True, data={"figures": {"pcie_h2d_gbps": 50.0}})
        if step.kind == StepKind.DRAIN:
            return StepOutcome(ok=True, data={"action": "drained"})
        return StepOutcome(ok=True)


@pytest.fixture()
def plan_path(tmp_path: Path) -> Path:
    return write_example_plan(tmp_path / "example.plan.json")


def _apply(plan_path: Path, state: Path, fleet: FakeFleet, wave: str):  # type: ignore[no-untyped-def]
    return apply(load_plan(plan_path), plan_path, wave, facts=FACTS, state=state, now=NOW, ignore_window=True,
                 actions=fleet, sleep=lambda s: None)


def _runs(state: Path) -> int:
    with Journal(state / "journal.db") as journal:
        return len(journal.runs())


def test_every_state_and_command_pair(plan_path: Path, tmp_path: Path) -> None:
    plan = load_plan(plan_path)
    fleet = FakeFleet(plan)
    state = tmp_path / "state"
    canary = plan.waves[0]

    # apply canary on a fresh fleet: a run, every canary host done
    first = _apply(plan_path, state, fleet, "canary")
    assert first.report.status == "done" and not first.already_done
    assert {first.hosts[h][1] for h in canary.hosts} == {"done"}
    assert _runs(state) == 1

    # the same command again (a CI job retried): reported done, no new run, nothing touched
    ran = len(fleet.ran)
    again = _apply(plan_path, state, fleet, "canary")
    assert again.already_done == ["canary"] and again.report.status == "done"
    assert _runs(state) == 1 and len(fleet.ran) == ran

    # a host of the next wave was upgraded by hand meanwhile: found at target, verified, done (not failed)
    nxt = plan.waves[1]
    by_hand = nxt.hosts[0]
    fleet.stack[by_hand] = plan.host(by_hand).target or plan.host(by_hand).current
    second = _apply(plan_path, state, fleet, "next")
    assert second.report.status == "done"
    assert second.hosts[by_hand][1] == "done" and "already at target" in second.hosts[by_hand][2]
    assert not any(h == by_hand and s.split("-", 1)[1].startswith("driver") for h, s in fleet.ran)

    # every wave done, then `--wave all` and `--wave next`: reported done, exit 0 in the CLI, no new run
    rest = _apply(plan_path, state, fleet, "all")
    assert rest.report.status == "done"
    runs = _runs(state)
    for spec in ("all", "next", plan.waves[-1].name):
        done = _apply(plan_path, state, fleet, spec)
        assert done.already_done and done.report.status == "done"
    assert _runs(state) == runs

    # rollback by hand of an upgraded host: rolled back; the same command again: nothing to roll back
    host = canary.hosts[0]
    back = rollback(load_plan(plan_path), [host], state=state, actions=fleet)
    assert back.hosts[host][1] == "rolled_back" and fleet.stack[host] == plan.host(host).current
    ran = len(fleet.ran)
    twice = rollback(load_plan(plan_path), [host], state=state, actions=fleet)
    assert twice.hosts[host][1] == "skipped" and "nothing to roll back" in twice.hosts[host][2]
    assert twice.report.status == "rolled_back"
    assert [s for h, s in fleet.ran[ran:]] == [plan.host(host).steps[0].id]  # only the precheck ran


def test_the_cli_exits_0_on_a_wave_already_done(plan_path: Path, tmp_path: Path) -> None:
    plan = load_plan(plan_path)
    state = tmp_path / "state"
    _apply(plan_path, state, FakeFleet(plan), "canary")
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "canary", "--yes",
                           "--state-dir", str(state), "--facts", str(FACTS), "--ignore-window", "--output", "json"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "already done: canary" in proc.stderr
