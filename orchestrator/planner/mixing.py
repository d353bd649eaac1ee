"""Compatibility windows: when a pool runs more than one version of a component, for how long, and is that allowed.

The fleet is looked at between waves: after wave k, every host of wave k or earlier runs its target and the
others (later waves, no-ops, excluded hosts) run what they run today. A pool is mixed in a component when
its hosts disagree. A stretch of mixing lasts from the start of the wave that creates it to the end of the
wave that resolves it; mixing present before the plan or left by excluded hosts is reported, not blamed on
the plan. ``forbid`` allows no stretch created by the plan; a duration bounds each stretch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from orchestrator.model.policy import MIXABLE, Mixing, PoolRules
from orchestrator.model.stack import SoftwareStack
from orchestrator.planner.model import MixedInterval
from orchestrator.planner.schedule import iso


@dataclass(frozen=True)
class PoolHost:
    """Pool members as mixing sees them: today's stack, the target, the wave that moves them (None: stays).

    ``count`` hosts alike (one class in one wave) are one PoolHost.
    """

    name: str
    current: SoftwareStack
    target: SoftwareStack
    wave: int | None
    count: int = 1


@dataclass(frozen=True)
class WaveTime:
    name: str
    start: datetime
    end: datetime


def _policy_text(rule: Mixing | int) -> str:
    return rule.value if isinstance(rule, Mixing) else f"at most {rule}s"


def mixed_intervals(
    hosts: list[PoolHost], waves: list[WaveTime], rules: PoolRules
) -> tuple[list[MixedInterval], list[str]]:
    """Every mixed stretch per component, and one line per stretch that breaks the pool's policy."""
    intervals: list[MixedInterval] = []
    violations: list[str] = []
    for component in MIXABLE:
        # Count the pool's versions before the plan, then move each wave's hosts from old to new value.
        counts: Counter[str] = Counter()
        moves: dict[int, list[tuple[str, str, int]]] = {}
        for h in hosts:
            counts[str(h.current.component(component))] += h.count
            if h.wave is not None:
                moves.setdefault(h.wave, []).append(
                    (str(h.current.component(component)), str(h.target.component(component)), h.count))
        states = [len(counts) > 1]
        for k in range(1, len(waves) + 1):
            for old, new, n in moves.get(k, []):
                counts[old] -= n
                if not counts[old]:
                    del counts[old]
                counts[new] += n
            states.append(len(counts) > 1)
        k = 0
        while k < len(states):
            if not states[k]:
                k += 1
                continue
            j = k
            while j < len(states) and states[j]:
                j += 1
            pre = k == 0
            open_ended = j == len(states)
            start = None if pre else waves[k - 1].start
            end = None if open_ended else waves[j - 1].end
            duration = int((end - start).total_seconds()) if start and end else None
            rule = rules.mixing(component)
            by_plan = not pre and not open_ended
            ok = (
                rule is Mixing.ALLOW
                or not by_plan
                or (isinstance(rule, int) and duration is not None and duration <= rule)
            )
            intervals.append(
                MixedInterval(
                    component=component,
                    from_wave=None if pre else waves[k - 1].name,
                    until_wave=None if open_ended else waves[j - 1].name,
                    start=iso(start) if start else None,
                    end=iso(end) if end else None,
                    duration_s=duration,
                    policy=_policy_text(rule),
                    within_policy=ok,
                )
            )
            if not ok:
                what = "forbids mixing" if rule is Mixing.FORBID else f"allows mixing for at most {rule}s"
                violations.append(
                    f"{component}: mixed from {intervals[-1].from_wave} to {intervals[-1].until_wave} "
                    f"({duration}s) but the pool {what}"
                )
            k = j
    return intervals, violations


def pool_notes(pool: str, intervals: list[MixedInterval]) -> list[str]:
    """Warnings for mixing the plan cannot fix: already mixed before it, or still mixed after it."""
    notes = []
    for iv in intervals:
        if iv.policy == Mixing.ALLOW.value:
            continue
        if iv.from_wave is None:
            notes.append(f"pool {pool}: {iv.component} is already mixed before the plan ({iv.policy})")
        if iv.until_wave is None:
            notes.append(f"pool {pool}: {iv.component} stays mixed after the plan (excluded hosts keep their "
                         f"version; policy {iv.policy})")
    return notes
