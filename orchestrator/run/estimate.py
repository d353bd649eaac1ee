"""How long a flowing rollout of a plan should take, from the plan's own estimates (shown by ``upgrade plan``).

The canary wave runs and soaks; then hosts start in the flowing order as soon as their pool, their failure
domains and the stage cap allow (run/flow.py), each out of service for its estimate (which counts the policy's
drain estimate) and then soaking in service before it counts as proven. List scheduling on a simulated clock:
an estimate, not a promise (drains are what they are), but the same rules as ``decide`` applies.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

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
    first = 1 if canary else 0  # the rows, not plan.host(): one light record per host, no full view
    views = {r.name: _Host(plan.classes[r.cls].pool, r.domains, plan.classes[r.cls].estimate_s)
             for r in plan.rows if r.wave is not None and r.wave >= first}
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
    waiting = _Waiting(order, views, caps)
    started = resolved = 0
    last = t

    def start(h: str) -> None:
        nonlocal started
        per_pool[views[h].pool] += 1
        for d in waiting.domains[h]:
            per_domain[d] += 1
        heapq.heappush(running, (t + views[h].estimate_s, h))
        started += 1

    while waiting or running:
        room = stages.cap_for(resolved) - (started - resolved)
        waiting.first_fit(room, lambda p: per_pool[p] < free[p],
                          lambda doms, p: next((d for d in doms if per_domain[d] >= caps[p][d[0]]), None), start)
        if not running and not proving:
            break  # nothing can ever start (a pool with no slot): the plan's own checks say why
        if proving and (not running or proving[0] <= running[0][0]):
            t = heapq.heappop(proving)
            resolved += 1
            continue
        t, h = heapq.heappop(running)
        last = t
        per_pool[views[h].pool] -= 1
        for d in waiting.domains[h]:
            per_domain[d] -= 1
        waiting.ended(h, views[h].pool)
        heapq.heappush(proving, t + soak)
    return int(last)


class _Host(NamedTuple):
    pool: str
    domains: dict[str, str]
    estimate_s: int


_Domain = tuple[str, str]  # (kind, name): ("rack", "r07")
_Key = tuple[str, tuple[_Domain, ...]]  # (pool, its limited failure domains)


class _Waiting:
    """The hosts not started yet, in the flowing order, as queues of hosts alike for the limits (same pool, same
    limited failure domains). First fit over the queues starts the same hosts as first fit over the whole
    order: a queue whose first host does not fit holds no host that does, so it waits (``parked``) under the
    full domain that stopped it until a host of that domain ends; a full pool is not looked into until one of
    its hosts ends. Each host is looked at about once per host ending in its domains: 100,000 hosts take
    seconds, not hours."""

    def __init__(self, order: Sequence[str], views: dict[str, _Host], caps: dict[str, dict[str, int]]) -> None:
        self.domains: dict[str, tuple[_Domain, ...]] = {}
        self.queues: dict[_Key, deque[tuple[int, str]]] = {}
        for i, h in enumerate(order):
            v = views[h]
            doms = tuple((k, n) for k, n in v.domains.items() if k in caps[v.pool])
            self.domains[h] = doms
            self.queues.setdefault((v.pool, doms), deque()).append((i, h))
        self.heads: dict[str, list[tuple[int, _Key]]] = {}  # per pool, its queues by their first host's place
        for key, q in self.queues.items():
            self.heads.setdefault(key[0], []).append((q[0][0], key))
        for heap in self.heads.values():
            heapq.heapify(heap)
        self.parked: dict[_Domain, list[tuple[int, _Key]]] = {}
        self.changed: set[str] = set(self.heads)  # pools that may start a host since they were last looked at
        self.left = len(order)

    def __bool__(self) -> bool:
        return self.left > 0

    def ended(self, host: str, pool: str) -> None:
        """A host left its slot: its pool, and the queues parked under its domains, may start hosts again."""
        self.changed.add(pool)
        for d in self.domains[host]:
            for item in self.parked.pop(d, ()):
                heapq.heappush(self.heads[item[1][0]], item)
                self.changed.add(item[1][0])

    def first_fit(self, room: int, has_slot: Callable[[str], bool],
                  full_domain: Callable[[tuple[_Domain, ...], str], _Domain | None],
                  start: Callable[[str], None]) -> None:
        """Start, in order, each host whose pool has a slot and whose domains fit, while the stage has ``room``."""
        frontier: list[tuple[int, _Key]] = []
        for pool in self.changed:
            heads = self.heads[pool]
            if heads and has_slot(pool):
                frontier.append(heapq.heappop(heads))
        heapq.heapify(frontier)
        while frontier and room > 0:
            first, key = heapq.heappop(frontier)
            pool, doms = key
            blocked = full_domain(doms, pool)
            if blocked is None:
                q = self.queues[key]
                _, h = q.popleft()
                start(h)
                room -= 1
                self.left -= 1
                if q:
                    heapq.heappush(self.heads[pool], (q[0][0], key))
            else:
                self.parked.setdefault(blocked, []).append((first, key))
            if self.heads[pool] and has_slot(pool):  # the pool's next queue in order
                heapq.heappush(frontier, heapq.heappop(self.heads[pool]))
        self.changed = {key[0] for _, key in frontier}  # cut short by the stage cap: look again next time
        for item in frontier:
            heapq.heappush(self.heads[item[1][0]], item)
