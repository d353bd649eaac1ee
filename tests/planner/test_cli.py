"""`upgrade plan` as a user runs it (a subprocess) on the example inventory and its facts snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.planner import load_plan

ROOT = Path(__file__).parents[2]
BASE = ["-i", "inventories/example", "--facts", "inventories/example/facts.json", "--now", "2026-12-01T09:00:00Z"]


def _plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "plan", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=120)


def test_example_plan_is_made_and_written(tmp_path: Path) -> None:
    out = tmp_path / "example.plan.json"
    result = _plan("plans/example.yaml", *BASE, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "canary" in result.stdout and "gpu-a100-04" in result.stdout
    plan = load_plan(out)
    assert plan.waves[0].name == "canary"
    assert {e.host: e.kind for e in plan.excluded} == {"gpu-a100-04": "cordoned", "gpu-v100-02": "unknown"}
    canary = plan.waves[0]
    assert {plan.host(h).pool for h in canary.hosts} == {"train-h100", "infer-a100", "legacy-v100"}
    assert plan.host("gpu-h100-01").order[0] == ("kernel_module", "driver", "fabric_manager")
    assert plan.inputs.knowledge == plan.knowledge_version and len(plan.inputs.inventory) == 64


@pytest.mark.parametrize(("fmt", "start"), [("json", "{"), ("dot", "digraph plan {"), ("mermaid", "flowchart LR")])
def test_example_plan_outputs(tmp_path: Path, fmt: str, start: str) -> None:
    result = _plan("plans/example.yaml", *BASE, "-o", str(tmp_path / "p.json"), "--output", fmt)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(start)
    if fmt == "json":
        assert json.loads(result.stdout)["plan_hash"] == load_plan(tmp_path / "p.json").plan_hash


def test_invalid_target_exits_2_with_every_reason(tmp_path: Path) -> None:
    result = _plan("tests/knowledge/data/target_example.yaml", *BASE, "-o", str(tmp_path / "p.json"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 9  # six H100 cuDNN mismatches, three findings on the V100
    assert any("gpu-v100-01 (legacy-v100): target cuda-drops-architecture" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_exclude_invalid_plans_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = _plan("tests/knowledge/data/target_example.yaml", *BASE, "-o", str(out), "--exclude-invalid",
                   "--output", "json")
    # The shipped check example has no policy: default max_unavailable 25% of the A100 pool is taken by the
    # host cordoned by hand, so the plan is still refused, with that reason.
    assert result.returncode == 2
    assert "pool infer-a100: max_unavailable 1 is used up" in result.stderr
