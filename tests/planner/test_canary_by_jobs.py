"""The canary chosen by the scheduler's job ends: after the spread over failure domains, the host free soonest.

A canary that waits an hour for its node's job holds back every host after it (the canary soaks before any
other host starts), so `upgrade plan --canary-by-jobs` gives the planner what squeue says. The fleet is the
mixed-models scenario: one pool, an A100 pair and an H100 trio on two racks, at most one host per rack out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.planner import Plan, build_plan, plan_json
from tests.planner.fixtures import load_fleet

SCENARIO = Path(__file__).parent / "scenarios" / "mixed-models"
KNOWLEDGE = load_knowledge()


def plan(job_ends: dict[str, datetime | None] | None) -> Plan:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    return build_plan(fleet, load_desired(SCENARIO / "desired.yaml"), None, KNOWLEDGE, now, unknown=unknown,
                      job_ends=job_ends)


def at(minutes: float) -> datetime:
    _fleet, _unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    return now + timedelta(minutes=minutes)


def test_without_job_ends_the_canary_is_chosen_by_name_and_the_plan_says_nothing_of_jobs() -> None:
    made = plan(None)
    assert made.waves[0].name == "canary"
    assert made.waves[0].hosts == ("a1", "h2")  # a1 by name; the H100 on the other rack, by name
    assert made.canary_by == ""


def test_the_host_free_soonest_is_the_canary_but_the_spread_over_racks_comes_first() -> None:
    # a1's job runs 2 h more, a2 is idle: the A100 canary is a2 (rack r2). h3 is idle but on r2 too; the
    # rack limit and the spread put the H100 canary on r1: h1, though its job ends only in an hour.
    made = plan({"a1": at(120), "h1": at(60), "h2": at(30)})
    assert made.waves[0].hosts == ("a2", "h1")
    assert "free soonest" in made.canary_by and "3 host(s) running jobs with an expected end" in made.canary_by
    others = [h for w in made.waves[1:] for h in w.hosts]
    assert sorted(others) == ["a1", "h2", "h3"]  # every host still planned, the rest after the canary


def test_a_job_without_an_end_counts_as_never_free_and_an_end_already_past_as_free_now() -> None:
    made = plan({"a2": None, "a1": at(3 * 24 * 60), "h2": at(60), "h3": at(-10), "h1": at(5)})
    # a1 ends in three days, a2 never: a1. On r2 (a1 holds r1): h3, whose job should have ended already.
    assert made.waves[0].hosts == ("a1", "h3")
    assert "1 without one" in made.canary_by


def test_job_ends_are_an_input_like_the_others_same_ends_same_plan_bytes() -> None:
    ends = {"a1": at(120), "h1": at(60), "h2": at(30)}
    assert plan_json(plan(ends)) == plan_json(plan(dict(ends)))
    assert plan_json(plan(ends)) != plan_json(plan(None))
