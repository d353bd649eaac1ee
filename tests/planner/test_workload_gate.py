"""A pool's workload gate: from the desired state into every gate step's variables, checked like the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import DesiredStateError, parse_desired
from orchestrator.model.grammar import check_var
from orchestrator.planner import build_plan, parse_plan, plan_json
from orchestrator.planner.model import StepKind
from tests.planner.fixtures import load_fleet

SCENARIO = Path(__file__).parent / "scenarios" / "upgrade-h100"
TARGET = ('{driver: "580.95.05", kernel_module: open, cuda: "13.0", cudnn: "9.17.0", nccl: "2.28.9-1+cuda13.0", '
          'fabric_manager: "580.95.05", dcgm: "4.2.3", container_toolkit: "1.17.8"}')
WORKLOAD = ('{command: ["/opt/venv/bin/python", "-c", "import torch; torch.ones(8, device=\'cuda\').sum()"], '
            'timeout_s: 300}')


def _desired(workload: str) -> str:
    return (f"version: 1\npolicy: {{canary: 1, waves: [1, '100%'], max_unavailable: 2, soak: 0}}\n"
            f"pools:\n  train:\n    target: {TARGET}\n    policy: {{workload_gate: {workload}}}\n")


def test_pool_workload_reaches_every_gate_step_and_survives_the_artifact() -> None:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    plan = build_plan(fleet, parse_desired(_desired(WORKLOAD)), None, load_knowledge(), now, unknown=unknown)
    loaded = parse_plan(plan_json(plan), "p.plan.json")
    gates = [s for c in loaded.classes for s in (*c.steps, *c.rollback) if s.kind == StepKind.GATE]
    assert gates
    for step in gates:
        assert step.vars["gate_workload"] == {
            "command": ["/opt/venv/bin/python", "-c", "import torch; torch.ones(8, device='cuda').sum()"],
            "image": None, "runtime": "docker", "timeout_s": 300, "expect_rc": 0}


@pytest.mark.parametrize("workload", [
    '{command: ["python", "-c", "{{ lookup(\'pipe\', \'id\') }}"]}',  # Jinja
    '{command: ["sh", "-c", "echo $HOME"]}',                          # a shell word
    "{timeout_s: 10}",                                                 # nothing to run
    '{image: "nvcr.io/nvidia/pytorch:25.01-py3; rm -rf /"}',          # not an image reference
])
def test_bad_workload_is_refused_in_one_line(workload: str) -> None:
    with pytest.raises(DesiredStateError) as info:
        parse_desired(_desired(workload), "d.yaml")
    assert str(info.value).startswith("d.yaml") and "\n" not in str(info.value)


def test_plan_loading_checks_the_workload_again() -> None:
    assert check_var("gate_workload", {"image": "nvcr.io/nvidia/pytorch:25.01-py3", "command": ["python", "x.py"],
                                       "runtime": "podman", "timeout_s": 60, "expect_rc": 0}) is None
    assert "does not follow its grammar" in str(check_var("gate_workload", {"command": ["{{ x }}"]}))
    assert "needs a command or an image" in str(check_var("gate_workload", {"command": []}))
    assert "runtime" in str(check_var("gate_workload", {"image": "a", "runtime": "lxc"}))


def test_nccl_tests_gate_asks_for_the_probes_all_reduce() -> None:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = (f"version: 1\npolicy: {{canary: 1, max_unavailable: 2, soak: 0, gates: [dcgm-r1, nccl-tests]}}\n"
               f"pools:\n  train:\n    target: {TARGET}\n")
    plan = build_plan(fleet, parse_desired(desired), None, load_knowledge(), now, unknown=unknown)
    steps = [s for c in plan.classes for s in c.steps if s.kind == StepKind.GATE]
    assert {s.gate: s.vars.get("gate_nccl") for s in steps} == {"dcgm-r1": None, "nccl-tests": True}
