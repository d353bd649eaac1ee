"""A flowing rollout's rules, pure: after the canary, one sliding window over the hosts left, in stages.

Waves are checkpoints, not barriers. The canary wave runs, passes its gates and soaks as before; then every
host left may start as soon as admission allows (max unavailable and the per-domain limits, as
``run.admission`` keeps them) and two more rules:

- stages: the policy's growing sizes (``waves`` or ``growth``) bound how many hosts may be started and not
  yet *resolved* (proven: gates passed and soaked on their own, or failed and counted). While fewer hosts
  than the first stage's size are resolved, at most that many are unproven; past it, the next size; so a
  bad version reaches at most one stage's worth of hosts before enough evidence says it is good, as with
  barrier waves, but one slow host no longer holds the others back.
- the failure budget is counted on every result: per stage (the ``j``-th stage is the ``j``-th group of
  hosts to start) and for the rollout; once over, no new host starts.

Order: hosts whose jobs end soonest first (``drain_ends``: Slurm job end times or time limits, pod ages),
hosts already free taken longest first; a host whose drain plus its upgrade would outlast the maintenance
window (``window_end``) is not started. Without drain knowledge: the planned waves' order, spread over racks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.model.policy import resolve


@dataclass(frozen=True)
class FlowRun:
    """The flowing part of a run's state (hosts after the canary); counters kept up to date per event."""

    order: tuple[str, ...]
    stages: tuple[int, ...]
    head: int = 0  # order[:head] are started or out of the run
    started: int = 0
    resolved: int = 0
    active: int = 0  # started and not at rest
    soaking: int = 0
    failed_by_stage: tuple[int, ...] = ()
    failed_total: int = 0
    busy: frozenset[str] = frozenset()  # this run's hosts out of service now
    left_by_wave: tuple[tuple[str, int], ...] = ()  # checkpoint: hosts not yet resolved per wave
    stopped: str = ""  # why no new host starts (the failure budget), "" while they may
    waiting_by_pool: tuple[tuple[str, int], ...] = ()  # hosts not started yet, per pool

    def cap(self) -> int:
        """How many hosts may be started and unresolved now (the current stage's size)."""
        return self.cap_for(self.resolved)

    def cap_for(self, resolved: int) -> int:
        total = 0
        for size in self.stages:
            total += size
            if resolved < total:
                return size
        return len(self.order)

    def stage_of(self, nth: int) -> int:
        """The stage of the ``nth`` host to start (0-based)."""
        total = 0
        for j, size in enumerate(self.stages):
            total += size
            if nth < total:
                return j
        return max(len(self.stages) - 1, 0)


def flow_order(hosts: Sequence[tuple[str, str, int]], drain_ends: Mapping[str, datetime],
               now: datetime | None, evict_after_s: int | None = None, horizon_s: float = 0.0,
               wave_of: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """Hosts ``(name, rack, estimate_s)`` in planned order -> the order a flowing run admits them in.

    Without drain knowledge: the planned order (wave by wave, ``wave_of``), racks taken in turn. With it: each
    host has a turn, its place in that order with the longest estimates first, paced over ``horizon_s`` (about
    how long the flowing part takes without drains); a host goes at its turn, or when its jobs are expected to
    end if that is later. Hosts free by their turn so keep the racks in turn (deferring every busy host to the
    end would leave the last slots to a few racks, two at a time); without ``horizon_s`` every turn is now: by
    when each host is free, longest first among equals.
    With ``evict_after_s`` (the drain policy evicts at its timeout), a host whose jobs would outlast even a start
    at the horizon by the timeout goes first, the latest first: its drain costs the whole timeout whenever it
    starts, and at the end it would stretch the rollout by that much. A host whose jobs would end too late for
    it to be back by the horizon goes a timeout before it would have to start, when the timeout then ends
    before its jobs do: waiting for them would stretch the rollout, so the policy evicts them at the timeout,
    as it does for any drain that long.
    """
    groups: dict[int, dict[str, list[str]]] = {}
    for name, rack, _est in hosts:
        group = wave_of.get(name, 0) if wave_of is not None else 0
        groups.setdefault(group, {}).setdefault(rack, []).append(name)
    spread: list[str] = []
    for group in sorted(groups):
        lists = list(groups[group].values())
        for i in range(max((len(x) for x in lists), default=0)):
            spread.extend(x[i] for x in lists if i < len(x))
    if not drain_ends:
        return tuple(spread)
    pos = {h: i for i, h in enumerate(spread)}
    est = {name: e for name, _rack, e in hosts}
    turns = sorted(spread, key=lambda h: (-est[h], pos[h]))
    place = {h: i for i, h in enumerate(turns)}
    pace = horizon_s / len(turns) if horizon_s > 0 else 0.0
    base = now.timestamp() if now is not None else 0.0

    def key(h: str) -> tuple[float, int]:
        end = drain_ends.get(h)
        turn = base + place[h] * pace
        free_at = max(end.timestamp(), turn) if end is not None else turn
        if evict_after_s is None:
            return (free_at, place[h])
        if free_at > base + horizon_s + evict_after_s:
            return (base - (free_at - base), place[h])  # evicted whenever it starts: before every host free now
        last_start = base + horizon_s - est[h]  # about when it must start to be back as the others end
        early = max(base, last_start - evict_after_s)
        if horizon_s > 0 and free_at > last_start and early + evict_after_s < free_at:
            return (early, place[h])  # waiting for its jobs would stretch the rollout: evicted at the timeout
        return (free_at, place[h])

    return tuple(sorted(spread, key=key))


def outlasts_window(drain_end: datetime | None, estimate_s: int, now: datetime | None,
                    window_end: datetime | None) -> bool:
    """Would the host, started now, still be drained or upgrading when the window closes?"""
    if window_end is None:
        return False
    start = now if now is not None else drain_end
    if start is None:
        return False
    free = max(drain_end, start) if drain_end is not None else start
    return (free - window_end).total_seconds() + estimate_s > 0


def stage_budget(per_wave: int | str, size: int) -> int:
    """Failures a stage of ``size`` hosts may have (the policy's per-wave budget, rounded down)."""
    return resolve(per_wave, size, "down")
