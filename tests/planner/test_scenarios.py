"""Scenario folders (fleet.yaml + desired.yaml -> expected.yaml): waves, step order, exclusions, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.planner import PlanError, build_plan
from tests.planner.fixtures import Expected, load_fleet

SCENARIOS = sorted(p for p in (Path(__file__).parent / "scenarios").iterdir() if p.is_dir())
KNOWLEDGE = load_knowledge()


@pytest.mark.parametrize("folder", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenario(folder: Path) -> None:
    fleet, unknown, now = load_fleet(folder / "fleet.yaml")
    desired = load_desired(folder / "desired.yaml")
    expected = Expected.model_validate(yaml.safe_load((folder / "expected.yaml").read_text()))
    if expected.errors:
        with pytest.raises(PlanError) as info:
            build_plan(fleet, desired, None, KNOWLEDGE, now, unknown=unknown)
        for needle in expected.errors:
            assert any(needle in r for r in info.value.reasons), (needle, info.value.reasons)
        return
    plan = build_plan(fleet, desired, None, KNOWLEDGE, now, unknown=unknown)
    if expected.waves is not None:
        assert [list(w.hosts) for w in plan.waves] == expected.waves
    for host, groups in expected.order.items():
        assert [list(g) for g in plan.host(host).order] == groups, host
    for host, steps in expected.steps.items():
        assert [s.id for s in plan.host(host).steps] == steps, host
    assert {e.host: e.kind for e in plan.excluded} == expected.excluded
    assert list(plan.noop) == expected.noop
    assert sorted(p.name for p in plan.pools if p.moves_in_one_wave) == expected.one_wave_pools
    for needle in expected.warnings:
        assert any(needle in w for w in plan.warnings), (needle, plan.warnings)
