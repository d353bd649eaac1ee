"""How long a flowing rollout of a plan should take, from the plan's own estimates (shown by ``upgrade plan``).

The canary wave runs and soaks; then hosts start in the flowing order as soon as their pool, their failure
domains and the stage cap allow (run/flow.py), each out of service for its estimate (which counts the policy's
drain estimate) and then soaking in service before it counts as proven. List scheduling on a simulated clock:
an estimate, not a promise (drains are what they are), but the same rules as ``decide`` applies.
"""

from __future__ import annotations

import heapq
from collections import Counter

from orchestrator.planner.model import Plan
from orchestrator.planner.waves import stage_sizes
from orchestrator.run.flow import FlowRun, flow_order


def flow_makespan(plan: Plan) -> int:
    """Seconds from the start to the last host back in service, for ``upgrade apply --wave all --flow``."""
    waves = plan.waves
    if not waves:
        return 0
    canary = waves[0] if waves[0].name == "canary" else None
    t = float(canary.estimate_s + canary.soak_s) if canary is not None else 0.0
    names = [h for w in waves[1 if canary else 0:] for h in w.hosts]
    if not names:
        return canary.estimate_s if canary is not None else 0
    views = {h: plan.host(h) for h in names}
    rows = [(h, v.domains.get("rack") or v.domains.get("switch") or "", v.estimate_s) for h, v in views.items()]
    order = flow_order(rows, {}, None, wave_of={h: i for i, w in enumerate(waves) for h in w.hosts})
    pools = {p.name: p for p in plan.pools}
    free = {p: pools[p].max_unavailable - len(pools[p].out_of_service) for p in pools}
    caps = {p: dict(pools[p].max_per_domain) for p in pools}
    stages = FlowRun(order=order, stages=tuple(stage_sizes(plan.policy, len(names), len(canary.hosts) if canary
                                                                   else 0)) or (1,))
    soak = waves[-1].soak_s
    per_pool: Counter[str] = Counter()
    per_domain: Counter[tuple[str, str]] = Counter()
    running: list[tuple[float, str]] = []
    proving: list[float] = []
    waiting = list(order)
    started = resolved = 0
    busy_pools = {v.pool for v in views.values()}
    last = t
    while waiting or running:
        room = stages.cap_for(resolved) - (started - resolved)
        kept: list[str] = []
        for i, h in enumerate(waiting):
            if room <= 0 or all(per_pool[p] >= free[p] for p in busy_pools):
                kept.extend(waiting[i:])
                break
            v = views[h]
            doms = [(k, n) for k, n in v.domains.items() if k in caps[v.pool]]
            if (per_pool[v.pool] < free[v.pool]
                    and all(per_domain[d] < caps[v.pool][d[0]] for d in doms)):
                per_pool[v.pool] += 1
                for d in doms:
                    per_domain[d] += 1
                heapq.heappush(running, (t + v.estimate_s, h))
                started += 1
                room -= 1
            else:
                kept.append(h)
        waiting = kept
        if not running and not proving:
            break  # nothing can ever start (a pool with no slot): the plan's own checks say why
        if proving and (not running or proving[0] <= running[0][0]):
            t = heapq.heappop(proving)
            resolved += 1
            continue
        t, h = heapq.heappop(running)
        last = t
        v = views[h]
        per_pool[v.pool] -= 1
        for d in ((k, n) for k, n in v.domains.items() if k in caps[v.pool]):
            per_domain[d] -= 1
        heapq.heappush(proving, t + soak)
    return int(last)
