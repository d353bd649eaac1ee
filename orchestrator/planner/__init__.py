"""The planner: turn "move this fleet to that stack" into an ordered, explained, hashed plan. Pure: no IO.

Public API::

    plan = build_plan(fleet, desired, policy_or_None, knowledge, now, unknown=[...], inputs=fingerprints(...))
    text = plan_json(plan); plan = load_plan(path)        # load_plan refuses a tampered file
    render_dot(plan), render_mermaid(plan)
"""

from orchestrator.planner.artifact import fingerprints, load_plan, parse_plan, plan_json
from orchestrator.planner.build import UnknownHost, build_plan
from orchestrator.planner.errors import PlanError, PlanFileError
from orchestrator.planner.model import (
    Excluded,
    HostClass,
    HostPlan,
    HostRow,
    MixedInterval,
    Plan,
    PoolPlan,
    Step,
    StepKind,
    Wave,
)
from orchestrator.planner.render import render_dot, render_host_dot, render_mermaid

__all__ = [
    "Excluded",
    "HostClass",
    "HostPlan",
    "HostRow",
    "MixedInterval",
    "Plan",
    "PlanError",
    "PlanFileError",
    "PoolPlan",
    "Step",
    "StepKind",
    "UnknownHost",
    "Wave",
    "build_plan",
    "fingerprints",
    "load_plan",
    "parse_plan",
    "plan_json",
    "render_dot",
    "render_host_dot",
    "render_mermaid",
]
