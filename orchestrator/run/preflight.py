"""What apply checks before it touches a host: the plan is current, the window is open, the wave exists.

Pure functions over the plan, today's inputs and ``now``; each refusal is a list of one-line reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from orchestrator.model.desired import DesiredState
from orchestrator.model.drift import value_of
from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.inventory import InventoryHost
from orchestrator.model.stack import COMPONENTS
from orchestrator.planner import Plan, Wave
from orchestrator.planner.artifact import fingerprint_desired, fingerprint_inventory
from orchestrator.planner.schedule import earliest_fit, iso
from orchestrator.run.stacks import kernel_moves, mismatches

__all__ = ["select_waves", "stale_reasons", "window_reason"]


def stale_reasons(plan: Plan, inventory: Sequence[InventoryHost], snapshot: FactsSnapshot, desired: DesiredState,
                  knowledge_version: str, hosts: set[str] | None = None) -> list[str]:
    """Why the plan no longer matches today's inputs; empty when it does. Facts differences name hosts.

    The facts are compared host by host rather than by fingerprint: after a first wave the fleet differs from
    the plan's snapshot by exactly what the plan did, which is not staleness. ``hosts`` limits the unreachable
    check to the hosts about to be touched.
    """
    reasons: list[str] = []
    if fingerprint_inventory(inventory) != plan.inputs.inventory:
        reasons.append("the inventory changed since the plan was made (hosts, pools or placement)")
    if fingerprint_desired(desired) != plan.inputs.desired:
        reasons.append("the desired-state document changed since the plan was made")
    if knowledge_version != plan.knowledge_version:
        reasons.append(f"the knowledge base is {knowledge_version}, the plan was made with {plan.knowledge_version}")
    reasons.extend(facts_differences(plan, snapshot, hosts))
    return reasons


def facts_differences(plan: Plan, snapshot: FactsSnapshot, hosts: set[str] | None = None) -> list[str]:
    """Hosts whose installed stack is neither what the plan assumed nor the plan's target for them."""
    live = snapshot.by_host()
    unreachable = {u.host: u.reason for u in snapshot.unreachable}
    out = []
    for row in plan.rows:  # rows and classes, not per-host views: a plan may name a million hosts
        host = plan.classes[row.cls]
        name = row.name
        if host.action != "upgrade":
            continue
        if name in unreachable:
            if hosts is None or name in hosts:
                out.append(f"{name}: now unreachable ({unreachable[name]})")
            continue
        facts = live.get(name)
        if facts is None:
            out.append(f"{name}: no facts today")
            continue
        now_stack = facts.stack()
        if host.target is not None and not mismatches(now_stack, host.target, kernel_moves(host.current, host.target)):
            continue  # already upgraded by an earlier run of this plan
        changes = [f"{c} {value_of(host.current, c)} -> {value_of(now_stack, c)}" for c in COMPONENTS
                   if value_of(host.current, c) != value_of(now_stack, c)]
        if changes:
            out.append(f"{name}: changed since the plan was made: {', '.join(changes)}")
    return out


def window_reason(plan: Plan, wave: Wave, now: datetime) -> str | None:
    """None when ``wave`` fits a maintenance window starting now; else when the next one that fits opens."""
    fit = earliest_fit(now, wave.window_need_s, plan.policy.windows)
    if fit is not None and fit[0] <= now:
        return None
    when = f"the next window that fits opens {iso(fit[0])} ({fit[1]})" if fit else "no window in the next 15 days fits"
    return (f"{wave.name} needs ~{wave.estimate_s // 60} min; now ({iso(now)}) is outside the maintenance "
            f"windows; {when}")


def select_waves(plan: Plan, spec: str, finished: set[str]) -> list[Wave]:
    """``canary``, ``next`` (the first wave not finished), a wave name, or ``all`` (every unfinished wave)."""
    names = [w.name for w in plan.waves]
    pending = [w for w in plan.waves if w.name not in finished]
    if spec == "all":
        return pending
    if spec == "next":
        return pending[:1]
    if spec not in names:
        raise ValueError(f"no wave {spec!r} in the plan (waves: {', '.join(names) or 'none'})")
    index = names.index(spec)
    missing = [w.name for w in plan.waves[:index] if w.name not in finished]
    if missing:
        raise ValueError(f"wave {spec} cannot start before {', '.join(missing)} finished and passed its gates")
    return [plan.waves[index]]
