"""Maintenance windows (waves fit inside one occurrence) and bounded mixing (pools pulled into one wave)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.model.policy import MaintenanceWindow, RolloutPolicy
from orchestrator.planner import PlanError, build_plan
from orchestrator.planner.schedule import earliest_fit
from tests.planner.fixtures import load_fleet

SCENARIOS = Path(__file__).parent / "scenarios"
KNOWLEDGE = load_knowledge()
NIGHT = MaintenanceWindow(days=("sat",), start=time(22), end=time(6), timezone="Europe/Berlin")


def test_wave_waits_for_the_window_and_fits_inside_it() -> None:
    # Tuesday 2026-12-01 10:00 UTC -> Saturday 2026-12-05 22:00 Berlin = 21:00 UTC.
    start, label = earliest_fit(datetime(2026, 12, 1, 10, tzinfo=UTC), 3600, (NIGHT,)) or (None, None)
    assert start == datetime(2026, 12, 5, 21, tzinfo=UTC)
    assert label == "sat 22:00-06:00 Europe/Berlin"
    # Inside the window already (Sunday 04:30 Berlin): 1 h still fits before 06:00, 2 h waits a week.
    inside = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    assert earliest_fit(inside, 3600, (NIGHT,)) == (inside, NIGHT.label())
    later = earliest_fit(inside, 7200, (NIGHT,))
    assert later is not None and later[0] == datetime(2026, 12, 12, 21, tzinfo=UTC)
    assert earliest_fit(inside, 9 * 3600, (NIGHT,)) is None


def test_plan_places_waves_in_windows_and_refuses_a_wave_too_long() -> None:
    fleet, unknown, now = load_fleet(SCENARIOS / "upgrade-h100" / "fleet.yaml")
    desired = load_desired(SCENARIOS / "upgrade-h100" / "desired.yaml")
    policy = (desired.policy or RolloutPolicy()).model_copy(update={"windows": (NIGHT,)})
    plan = build_plan(fleet, desired, policy, KNOWLEDGE, now, unknown=unknown)
    for wave in plan.waves:
        assert wave.window == NIGHT.label()
        start = datetime.fromisoformat(wave.earliest_start)
        assert start >= datetime(2026, 12, 5, 21, tzinfo=UTC)
    short = MaintenanceWindow(days=("sat",), start=time(22), end=time(22, 30), timezone="UTC")
    with pytest.raises(PlanError, match="fits no maintenance window"):
        build_plan(fleet, desired, policy.model_copy(update={"windows": (short,)}), KNOWLEDGE, now)


def test_bounded_mixing_pulls_the_pool_into_one_wave() -> None:
    fleet, _unknown, now = load_fleet(SCENARIOS / "upgrade-h100" / "fleet.yaml")
    desired = load_desired(SCENARIOS / "upgrade-h100" / "desired.yaml")
    policy = desired.policy or RolloutPolicy()
    loose = build_plan(fleet, desired, policy, KNOWLEDGE, now)
    nccl = [m for m in loose.pools[0].mixed if m.component == "nccl"]
    assert nccl and nccl[0].duration_s is not None and nccl[0].within_policy
    bounded = policy.model_copy(update={"mixed_versions": {"nccl": nccl[0].duration_s - 1}})
    with pytest.raises(PlanError, match=r"pool train: must move in one wave .* exceed max_unavailable 2"):
        build_plan(fleet, desired, bounded, KNOWLEDGE, now)
    tight = build_plan(fleet, desired, bounded.model_copy(update={"max_unavailable": 4}), KNOWLEDGE, now)
    assert [list(w.hosts) for w in tight.waves] == [["h1", "h2", "h3", "h4"]]
    assert tight.pools[0].moves_in_one_wave
