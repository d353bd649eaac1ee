"""The planner that works per class makes the plans the per-host planner made: same waves, same host plans.

``data/plans_before.json`` was written by the per-host planner (before equivalence classes) for every scenario
folder and for a generated fleet of 900 hosts (tests/support/bigfleet.py): each wave's hosts, and per host its
wave, action and a sha256 of its whole HostPlan (stacks, order, pinned steps and rollback steps, findings),
plus a sha256 of the rest of the plan (pools, mixing, exclusions, warnings, times).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.planner import Plan, PlanError, build_plan
from tests.planner.fixtures import NOW, load_fleet
from tests.support.bigfleet import fleet

HERE = Path(__file__).parent
BEFORE = json.loads((HERE / "data" / "plans_before.json").read_text())
SCENARIOS = sorted(p for p in (HERE / "scenarios").iterdir() if p.is_dir())
KNOWLEDGE = load_knowledge()


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def digest(plan: Plan) -> dict[str, Any]:
    hosts = {}
    for h in plan.hosts:
        d = h.model_dump(mode="json")
        hosts[h.name] = [d["wave"], d["action"], _sha(d)]
    # canary_by came later: empty (no job ends given) it changes nothing the earlier planner decided
    rest = {k: v for k, v in plan.model_dump(mode="json").items()
            if k not in ("rows", "classes", "plan_hash", "schema_version") and (k, v) != ("canary_by", "")}
    return json.loads(json.dumps({"waves": [list(w.hosts) for w in plan.waves], "hosts": hosts, "rest": _sha(rest)}))


def _compare(got: dict[str, Any], before: dict[str, Any]) -> None:
    assert got["waves"] == before["waves"]
    changed = {h: (got["hosts"].get(h), v) for h, v in before["hosts"].items() if got["hosts"].get(h) != v}
    assert not changed and set(got["hosts"]) == set(before["hosts"])
    assert got["rest"] == before["rest"]


@pytest.mark.parametrize("folder", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenarios_plan_as_before(folder: Path) -> None:
    fl, unknown, now = load_fleet(folder / "fleet.yaml")
    desired = load_desired(folder / "desired.yaml")
    before = BEFORE[folder.name]
    if "errors" in before:
        with pytest.raises(PlanError) as info:
            build_plan(fl, desired, None, KNOWLEDGE, now, unknown=unknown)
        assert info.value.reasons == before["errors"]
        return
    _compare(digest(build_plan(fl, desired, None, KNOWLEDGE, now, unknown=unknown)), before)


def test_a_generated_fleet_plans_as_before() -> None:
    fl, unknown, desired = fleet(900)
    plan = build_plan(fl, desired, None, KNOWLEDGE, NOW, unknown=unknown)
    _compare(digest(plan), BEFORE["generated"])
    # the fleet is varied enough to mean something: several classes per pool, hosts excluded for want of a build
    assert len(plan.classes) > 2 * len(plan.pools)
    assert {e.kind for e in plan.excluded} >= {"no-build", "cordoned", "unknown"}
    assert len(plan.waves) > 10
