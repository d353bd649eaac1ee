"""Which waiting hosts may start now: max unavailable and per-domain limits hold at every moment.

A sliding window, not batch barriers: a host starts as soon as a slot frees, and a host that failed and
stays drained (failed, rolling back, quarantined) keeps holding its slot, because it is out of service.
The plan's waves already respect the limits; this keeps them true while hosts finish, fail and come back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.planner.waves import PoolLimits


@dataclass(frozen=True)
class Slot:
    """What admission needs of a host: its pool and failure domains ((kind, name) pairs)."""

    name: str
    pool: str
    domains: tuple[tuple[str, str], ...] = ()


def admit(waiting: Iterable[Slot], out_now: Iterable[Slot], limits: Mapping[str, PoolLimits],
          parallel: int | None = None, most: int | None = None) -> list[Slot]:
    """The waiting hosts (in their order) that may start now, given the hosts out of service right now.

    ``limits[pool].out_of_service`` counts hosts that were out before the run (cordoned by hand, unknown);
    ``out_now`` are this run's hosts that are out of service at this moment. ``parallel`` caps how many of
    this run's hosts are busy at once (like the GPU Operator's maxParallelUpgrades), None for no cap;
    ``most`` caps how many start now. ``waiting`` may be lazy: it is read only until every pool in ``limits``
    is full (pass only the pools that still have hosts waiting, so a long queue is not walked for nothing).
    """
    busy = list(out_now)
    per_pool: Counter[str] = Counter(s.pool for s in busy)
    # A rack or switch is shared by every pool in it: count across pools, as the planner does.
    per_domain: Counter[tuple[str, str]] = Counter(d for s in busy for d in s.domains)
    started: list[Slot] = []
    full = sum(1 for pool, lim in limits.items() if per_pool[pool] >= lim.free)
    for slot in waiting:
        if parallel is not None and len(busy) + len(started) >= parallel:
            break
        if (most is not None and len(started) >= most) or full >= len(limits):
            break
        lim = limits[slot.pool]
        if per_pool[slot.pool] + 1 > lim.free:
            continue
        if any(per_domain[d] + 1 > lim.per_domain[d[0]] for d in slot.domains if d[0] in lim.per_domain):
            continue
        started.append(slot)
        per_pool[slot.pool] += 1
        full += per_pool[slot.pool] == lim.free
        for d in slot.domains:
            per_domain[d] += 1
    return started
