"""``build_plan``: fleet + desired state + policy + knowledge + now -> a reviewed, hashed, deterministic Plan.

Pure: no IO, no clock, no SSH. Hosts whose facts are missing come in as ``unknown`` (they count as out of
service); fingerprints of the inputs come in ready-made (see ``artifact.fingerprints``).

Example::

    plan = build_plan(fleet, desired, None, load_knowledge(), datetime(2026, 12, 1, tzinfo=UTC),
                      unknown=[UnknownHost("gpu-v100-02", "legacy-v100", "unreachable")])
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta

from orchestrator.knowledge import Knowledge
from orchestrator.model.desired import DesiredState
from orchestrator.model.policy import Mixing, PoolRules, RolloutPolicy, resolve
from orchestrator.model.stack import Fleet
from orchestrator.planner.artifact import seal
from orchestrator.planner.classes import Classifier, Prepared, UnknownHost, prepare
from orchestrator.planner.errors import PlanError
from orchestrator.planner.mixing import PoolHost, WaveTime, mixed_intervals, pool_notes
from orchestrator.planner.model import Fingerprints, HostRow, MixedInterval, Plan, PoolPlan, Wave
from orchestrator.planner.order import MANAGED, changed
from orchestrator.planner.schedule import aware, earliest_fit, iso
from orchestrator.planner.waves import Mover, PoolLimits, build_waves, pool_limits

UNKNOWN_FINGERPRINT = "not-given"
__all__ = ["UnknownHost", "build_plan", "wave_names", "window_need_s"]


def _schedule(
    groups: list[list[Mover]], names: list[str], estimates: list[int], policy: RolloutPolicy, start: datetime
) -> tuple[list[WaveTime], list[int], list[str | None], list[str]]:
    """Start/end per wave from ``start`` through windows and soak; reasons for waves that fit no window."""
    times: list[WaveTime] = []
    durations: list[int] = []
    labels: list[str | None] = []
    reasons: list[str] = []
    t = start
    for name, group in zip(names, groups, strict=True):
        duration = max(estimates[c] for c in {m.cls for m in group})
        fit = earliest_fit(t, window_need_s(duration, policy), policy.windows)
        if fit is None:
            reasons.append(f"wave {name}: estimated {duration}s plus {policy.soak}s soak fits no maintenance "
                           f"window in the next weeks (shorten waves or widen windows)")
            fit = (t, None)
        begin, label = fit
        end = begin + timedelta(seconds=duration)
        times.append(WaveTime(name, begin, end))
        durations.append(duration)
        labels.append(label)
        t = end + timedelta(seconds=policy.soak)
    return times, durations, labels, reasons


def wave_names(count: int, canary: bool) -> list[str]:
    """``canary, wave-1, wave-2, ...``; without a canary (``canary: 0``) the first wave is ``wave-1``."""
    return [("canary" if canary and i == 0 else f"wave-{i if canary else i + 1}") for i in range(count)]


def window_need_s(estimate_s: int, policy: RolloutPolicy) -> int:
    """How long a wave must fit in a maintenance window: its estimate plus the soak that follows it.

    The one duration model of window fitting: the planner fits waves with it and apply checks it.
    """
    return estimate_s + policy.soak


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Planning allocates a few objects per host and frees none of them in cycles: without the cyclic
    collector's repeated full passes over them, a million hosts plan in linear time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_plan(
    fleet: Fleet,
    desired: DesiredState,
    policy: RolloutPolicy | None,
    knowledge: Knowledge,
    now: datetime,
    *,
    unknown: list[UnknownHost] | None = None,
    inputs: Fingerprints | None = None,
    desired_name: str = "desired",
    exclude_invalid: bool = False,
    sources: dict[str, str] | None = None,
    job_ends: Mapping[str, datetime | None] | None = None,
) -> Plan:
    """The plan, or PlanError listing every reason it cannot be made. Same inputs, byte-identical plan.

    ``job_ends``: when the jobs running on each host are expected to end (None: a job without an expected
    end; a host not named runs none), as the scheduler said at ``now``: each canary is then, after the spread
    over failure domains, the host free soonest, and the plan says so (``canary_by``).
    """
    with _no_cycle_collection():
        return _build(fleet, desired, policy, knowledge, now, unknown, inputs, desired_name, exclude_invalid,
                      sources, job_ends)


def _build(fleet: Fleet, desired: DesiredState, policy: RolloutPolicy | None, knowledge: Knowledge, now: datetime,
           unknown: list[UnknownHost] | None, inputs: Fingerprints | None, desired_name: str, exclude_invalid: bool,
           sources: dict[str, str] | None, job_ends: Mapping[str, datetime | None] | None) -> Plan:
    now = aware(now)
    free_in = _free_in(job_ends, now)
    pol = policy or desired.policy or RolloutPolicy()
    unknown = list(unknown or [])
    size: Counter[str] = Counter(h.pool for h in fleet.hosts)
    size.update(u.pool for u in unknown)
    pools = sorted(size)
    rules = {p: desired.rules_for(p, pol) for p in pools}
    frozen = {p for p in pools if resolve(rules[p].max_unavailable, size[p], "down") == 0}
    drain_reason = f"gpu-fleet-upgrade {desired_name} {iso(now)}"
    classifier = Classifier(desired, rules, pol, knowledge, now, drain_reason, frozen)
    prep = prepare(fleet.hosts, classifier, unknown, exclude_invalid)
    prep.classes = classifier.classes
    if prep.invalid:
        raise PlanError(prep.invalid)
    limits: dict[str, PoolLimits] = {p: pool_limits(rules[p], size[p], len(prep.out_of_service.get(p, [])))
                                     for p in pools}
    atomic = {p for p in pools if _forbids_mixing(p, rules[p], prep)}
    estimates = [c.estimate_s for c in prep.classes]
    while True:
        groups, reasons, canary = build_waves(prep.movers, rules, limits, pol, atomic, free_in)
        if reasons:
            raise PlanError(reasons)
        names = wave_names(len(groups), canary)
        times, durations, labels, reasons = _schedule(groups, names, estimates, pol, now)
        if reasons:
            raise PlanError(reasons)
        wave_of = {m.name: i for i, g in enumerate(groups) for m in g}
        mixed, bad = _mixing(prep, wave_of, times, rules, pools)
        newly = {p for p, v in bad.items() if v and p not in atomic}
        if not newly:
            break
        atomic |= newly
    failures = [f"pool {p}: {line}" for p in pools for line in bad[p]]
    if failures:
        raise PlanError(failures)
    plan = _assemble(pol, knowledge, now, prep, groups, names, times, durations, labels, rules, limits,
                     atomic, mixed, pools, inputs, desired_name, frozen, drain_reason, wave_of, sources or {},
                     _canary_by(job_ends, now))
    return seal(plan)


def _free_in(job_ends: Mapping[str, datetime | None] | None, now: datetime) -> dict[str, float]:
    """Seconds from ``now`` until each host's jobs end (0: already ended; inf: no expected end)."""
    return {h: math.inf if end is None else max((aware(end) - now).total_seconds(), 0.0)
            for h, end in (job_ends or {}).items()}


def _canary_by(job_ends: Mapping[str, datetime | None] | None, now: datetime) -> str:
    if job_ends is None:
        return ""
    open_ended = sum(1 for end in job_ends.values() if end is None)
    return (f"after the spread over failure domains, the host free soonest: job ends as of {iso(now)} "
            f"({len(job_ends) - open_ended} host(s) running jobs with an expected end, {open_ended} without one; "
            f"every other host idle)")


def _mixing(prep: Prepared, wave_of: dict[str, int], times: list[WaveTime], rules: dict[str, PoolRules],
            pools: list[str]) -> tuple[dict[str, list[MixedInterval]], dict[str, list[str]]]:
    """Mixed stretches per pool, counted per (class, wave): hosts of one class in one wave move alike."""
    counts: Counter[tuple[int, int | None]] = Counter((cls, wave_of.get(name)) for name, cls, _ in prep.rows)
    per_pool: dict[str, list[PoolHost]] = {p: [] for p in pools}
    for (cls, wave), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])):
        c = prep.classes[cls]
        per_pool[c.pool].append(PoolHost(f"class-{cls}", c.current, c.target or c.current,
                                         None if wave is None else wave + 1, n))
    mixed: dict[str, list[MixedInterval]] = {}
    bad: dict[str, list[str]] = {}
    for p in pools:
        mixed[p], bad[p] = mixed_intervals(per_pool[p], times, rules[p])
    return mixed, bad


def _forbids_mixing(pool: str, rules: PoolRules, prep: Prepared) -> bool:
    """A pool moves in one wave when it forbids mixing a component that its hosts change."""
    forbidden = {c for c in MANAGED if rules.mixing(c) is Mixing.FORBID}
    moving = {c for h in prep.classes if h.pool == pool and h.action == "upgrade"
              for c in changed(h.current, h.target or h.current)}
    return bool(forbidden & moving)


def _assemble(
    pol: RolloutPolicy, knowledge: Knowledge, now: datetime,
    prep: Prepared, groups: list[list[Mover]], names: list[str], times: list[WaveTime], durations: list[int],
    labels: list[str | None], rules: dict[str, PoolRules], limits: dict[str, PoolLimits], atomic: set[str],
    mixed: dict[str, list[MixedInterval]], pools: list[str], inputs: Fingerprints | None, desired_name: str,
    frozen: set[str], drain_reason: str, wave_of: dict[str, int], sources: dict[str, str], canary_by: str,
) -> Plan:
    waves = []
    for i, group in enumerate(groups):
        per_pool: dict[str, int] = {}
        gpus_pool: dict[str, int] = {}
        for m in group:
            per_pool[m.pool] = per_pool.get(m.pool, 0) + 1
            gpus_pool[m.pool] = gpus_pool.get(m.pool, 0) + m.gpu_count
        budget = pol.failure_budget.per_wave
        waves.append(Wave(
            index=i, name=names[i], hosts=tuple(m.name for m in group), hosts_by_pool=dict(sorted(per_pool.items())),
            gpus_out=sum(gpus_pool.values()), gpus_out_by_pool=dict(sorted(gpus_pool.items())),
            estimate_s=durations[i], soak_s=pol.soak, earliest_start=iso(times[i].start), end=iso(times[i].end),
            window=labels[i], window_need_s=window_need_s(durations[i], pol),
            failure_budget=resolve(budget, len(group), "down"),
        ))
    classes = prep.classes
    rows = tuple(HostRow(name, wave_of.get(name), cls, dict(domains)) for name, cls, domains in prep.rows)
    members: Counter[int] = Counter(r.cls for r in rows)
    warnings = list(prep.warnings)
    if prep.movers and not (waves and waves[0].name == "canary") and any(p not in atomic for p in pools):
        warnings.append("no canary wave: the policy's canary is 0")
    warnings.extend(_canary_gaps(prep.movers, waves, atomic))
    excluded_by_pool = Counter(e.pool for e in prep.excluded)
    pool_plans = []
    for p in pools:
        mine = [(classes[c], n) for c, n in members.items() if classes[c].pool == p]
        warnings.extend(pool_notes(p, mixed[p]))
        upgrade = sum(n for c, n in mine if c.action == "upgrade")
        if p in frozen:
            warnings.append(f"pool {p}: frozen (max_unavailable resolves to 0); none of its hosts is touched")
        if p in atomic and upgrade:
            warnings.append(f"pool {p}: moves in one wave without a canary (its mixed_versions policy)")
        pool_plans.append(PoolPlan(
            name=p, hosts=limits[p].pool_size, gpus=sum(c.gpu_count * n for c, n in mine), upgrade=upgrade,
            noop=sum(n for c, n in mine if c.action == "noop"),
            excluded=excluded_by_pool[p], out_of_service=tuple(sorted(prep.out_of_service.get(p, []))),
            max_unavailable=limits[p].max_unavailable, max_per_domain=dict(sorted(limits[p].per_domain.items())),
            moves_in_one_wave=p in atomic, frozen=p in frozen, rules=rules[p], mixed=tuple(mixed[p]),
        ))
    excluded = sorted(prep.excluded, key=lambda e: e.host)
    warnings.extend(f"{e.host}: excluded ({e.kind}): {e.reason}" for e in excluded)
    movers = len(prep.movers)
    end = times[-1].end if times else now
    return Plan.model_construct(
        schema_version=3, plan_hash="", made_at=iso(now), desired_name=desired_name,
        knowledge_version=knowledge.version, sources=dict(sources),
        inputs=inputs or Fingerprints(inventory=UNKNOWN_FINGERPRINT, facts=UNKNOWN_FINGERPRINT,
                                      desired=UNKNOWN_FINGERPRINT, knowledge=knowledge.version),
        policy=pol, classes=tuple(classes), rows=rows, waves=tuple(waves), pools=tuple(pool_plans),
        excluded=tuple(excluded), noop=tuple(r.name for r in rows if classes[r.cls].action == "noop"),
        warnings=tuple(warnings), start=iso(times[0].start if times else now), end=iso(end),
        estimate_s=int((end - now).total_seconds()),
        failure_budget_total=resolve(pol.failure_budget.total, movers, "down"),
        drain_reason=drain_reason, canary_by=canary_by,
    )


def _canary_gaps(movers: list[Mover], waves: list[Wave], atomic: set[str]) -> list[str]:
    """(pool, GPU model) pairs the canary could not cover under the limits: said, never silently dropped."""
    canary = set(waves[0].hosts) if waves and waves[0].name == "canary" else set()
    first: dict[tuple[str, str], str] = {}
    for m in movers:
        if m.pool not in atomic and m.name not in canary:
            first.setdefault((m.pool, m.gpu), m.name)
    covered = {(m.pool, m.gpu) for m in movers if m.name in canary}
    return [f"pool {pool}: the canary cannot include a {gpu} host within max_unavailable / max_per_domain; "
            f"its first {gpu} host moves in a later wave" for (pool, gpu) in sorted(set(first) - covered)]
