"""``build_plan``: fleet + desired state + policy + knowledge + now -> a reviewed, hashed, deterministic Plan.

Pure: no IO, no clock, no SSH. Hosts whose facts are missing come in as ``unknown`` (they count as out of
service); fingerprints of the inputs come in ready-made (see ``artifact.fingerprints``).

Example::

    plan = build_plan(fleet, desired, None, load_knowledge(), datetime(2026, 12, 1, tzinfo=UTC),
                      unknown=[UnknownHost("gpu-v100-02", "legacy-v100", "unreachable")])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from orchestrator.knowledge import CheckContext, Hardware, Knowledge, Severity, Violation, check, check_transition
from orchestrator.model.desired import DesiredState
from orchestrator.model.policy import Gate, Mixing, PoolRules, RolloutPolicy, resolve
from orchestrator.model.stack import Fleet, Host, SoftwareStack
from orchestrator.planner.artifact import seal
from orchestrator.planner.errors import PlanError
from orchestrator.planner.mixing import PoolHost, WaveTime, mixed_intervals, pool_notes
from orchestrator.planner.model import (
    Excluded,
    Finding,
    Fingerprints,
    HostPlan,
    MixedInterval,
    Plan,
    PoolPlan,
    Step,
    Wave,
)
from orchestrator.planner.order import MANAGED, OrderFinder, changed
from orchestrator.planner.schedule import aware, earliest_fit, iso
from orchestrator.planner.steps import Pinning, critical_path_s, ordered_steps, pin_steps, step_graph
from orchestrator.planner.waves import Mover, PoolLimits, build_waves, pool_limits

UNKNOWN_FINGERPRINT = "not-given"


@dataclass(frozen=True)
class UnknownHost:
    """An inventory host without facts (unreachable, not in the snapshot): left alone, counted as down."""

    name: str
    pool: str
    reason: str
    gpu: str = "unknown"
    gpu_count: int = 0


@dataclass
class _Prepared:
    """Per-host results before waves: host plans by name, movers, exclusions, invalid targets."""

    hosts: dict[str, HostPlan]
    movers: list[Mover]
    excluded: list[Excluded]
    invalid: list[str]
    out_of_service: dict[str, list[str]]
    warnings: list[str]


def _context(desired: DesiredState, pool: str, now: datetime) -> CheckContext:
    entry = desired.pools[pool]
    return CheckContext(now=now.date(), pool=pool, production=entry.production, workloads=entry.workloads,
                        cuda_compat=entry.cuda_compat)


def _finding(v: Violation) -> Finding:
    subject = f" [{v.subject}]" if v.subject else ""
    return Finding(rule=v.rule, severity=v.severity.value, message=v.message + subject)


def _prepare(
    fleet: Fleet, desired: DesiredState, rules: dict[str, PoolRules], policy: RolloutPolicy,
    knowledge: Knowledge, now: datetime, unknown: list[UnknownHost], exclude_invalid: bool, drain_reason: str,
    frozen: set[str],
) -> _Prepared:
    p = _Prepared({}, [], [], [], {}, [])
    finders: dict[str, OrderFinder] = {}
    step_cache: dict[tuple[object, ...], tuple[tuple[tuple[str, ...], ...], tuple[Step, ...], int,
                                              tuple[Step, ...]]] = {}
    verdicts: dict[tuple[object, ...], tuple[list[Violation], list[Violation]]] = {}
    for host in sorted(fleet.hosts, key=lambda h: h.name):
        base = {"name": host.name, "pool": host.pool, "gpu": host.gpu.name, "gpu_count": host.gpu_count,
                "domains": dict(host.domains.items()), "current": host.stack}
        if host.pool not in desired.pools:
            p.excluded.append(Excluded(host=host.name, pool=host.pool, kind="no-target",
                                       reason=f"pool {host.pool} has no target in the desired state"))
            p.hosts[host.name] = HostPlan(**base, action="excluded")
            continue
        r = rules[host.pool]
        if host.pool in frozen:
            p.excluded.append(Excluded(host=host.name, pool=host.pool, kind="frozen",
                                       reason="its pool is frozen (max_unavailable resolves to 0)"))
            p.hosts[host.name] = HostPlan(**base, action="excluded")
            continue
        if host.cordoned_by_hand and not r.include_cordoned:
            p.excluded.append(Excluded(host=host.name, pool=host.pool, kind="cordoned",
                                       reason=f"cordoned by hand: {host.cordon_reason or 'no reason given'}"))
            p.out_of_service.setdefault(host.pool, []).append(host.name)
            p.hosts[host.name] = HostPlan(**base, action="excluded")
            continue
        target = desired.pools[host.pool].target.applied_to(host.stack)
        if not changed(host.stack, target):
            p.hosts[host.name] = HostPlan(**base, action="noop", target=target)
            continue
        ctx = _context(desired, host.pool, now)
        hw = Hardware.of(host)
        judged = (hw, host.stack, target, host.pool)
        if judged not in verdicts:
            verdicts[judged] = (check(knowledge, hw, target, ctx),
                                [v for v in check_transition(knowledge, hw, host.stack, target, ctx)
                                 if v.rule in ("driver-downgrade", "kernel-module-flavor-change")])
        found, transition = verdicts[judged]
        errors = [v for v in found if v.severity is Severity.ERROR]
        if errors:
            lines = [f"{host.name} ({host.pool}): target {v.rule}: {v.message}" for v in errors]
            if not exclude_invalid:
                p.invalid.extend(lines)
                continue
            p.excluded.append(Excluded(host=host.name, pool=host.pool, kind="invalid-target",
                                       reason="; ".join(f"{v.rule}: {v.message}" for v in errors)))
            p.hosts[host.name] = HostPlan(**base, action="excluded", target=target,
                                          findings=tuple(_finding(v) for v in errors))
            continue
        finder = finders.setdefault(host.pool, OrderFinder(knowledge, replace(ctx, workloads=())))
        key = (hw, host.stack, target, r.gates)
        if key not in step_cache:
            order = finder.order(hw, host.stack, target)
            steps = ordered_steps(step_graph(host.stack, target, order, r.gates, policy.estimates))
            step_cache[key] = (order, steps, critical_path_s(steps), _rollback_steps(finder, hw, host.stack, target,
                                                                                   r.gates, policy))
        order, steps, estimate, back = step_cache[key]
        pinned, missing = pin_steps(steps, Pinning(host, target, drain_reason, r.drain.timeout))
        if missing:
            reason = "; ".join(missing)
            p.excluded.append(Excluded(host=host.name, pool=host.pool, kind="no-build", reason=reason))
            p.hosts[host.name] = HostPlan(**base, action="excluded", target=target)
            continue
        rollback, lost = pin_steps(back, Pinning(host, host.stack, drain_reason, r.drain.timeout,
                                                 prefer_installed=True))
        p.warnings.extend(f"{host.name}: rollback impossible: {line}" for line in lost)
        warnings = [v for v in found if v.severity is Severity.WARNING]
        findings = tuple(sorted({_finding(v) for v in [*warnings, *transition]},
                                key=lambda f: (f.severity, f.rule, f.message)))
        p.hosts[host.name] = HostPlan(**base, action="upgrade", target=target, order=order, steps=pinned,
                                      rollback=rollback, estimate_s=estimate, findings=findings)
        p.movers.append(Mover(host.name, host.pool, host.gpu.name, host.gpu_count, tuple(host.domains.items())))
    for u in sorted(unknown, key=lambda u: u.name):
        p.excluded.append(Excluded(host=u.name, pool=u.pool, kind="unknown", reason=u.reason))
        p.out_of_service.setdefault(u.pool, []).append(u.name)
    return p


def _schedule(
    groups: list[list[Mover]], names: list[str], hosts: dict[str, HostPlan], policy: RolloutPolicy, start: datetime
) -> tuple[list[WaveTime], list[int], list[str | None], list[str]]:
    """Start/end per wave from ``start`` through windows and soak; reasons for waves that fit no window."""
    times: list[WaveTime] = []
    durations: list[int] = []
    labels: list[str | None] = []
    reasons: list[str] = []
    t = start
    for name, group in zip(names, groups, strict=True):
        duration = max(hosts[m.name].estimate_s for m in group)
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


def _rollback_steps(finder: OrderFinder, hw: Hardware, current: SoftwareStack, target: SoftwareStack,
                    gates: tuple[Gate, ...], policy: RolloutPolicy) -> tuple[Step, ...]:
    """The steps back from ``target`` to ``current``, ordered by the same search (libraries first)."""
    back = finder.order(hw, target, current)
    return ordered_steps(step_graph(target, current, back, gates, policy.estimates, prefix="rb-", precheck=False))


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
) -> Plan:
    """The plan, or PlanError listing every reason it cannot be made. Same inputs, byte-identical plan."""
    now = aware(now)
    pol = policy or desired.policy or RolloutPolicy()
    unknown = list(unknown or [])
    pools = sorted({h.pool for h in fleet.hosts} | {u.pool for u in unknown})
    rules = {p: desired.rules_for(p, pol) for p in pools}
    members: dict[str, list[Host]] = fleet.pools
    size = {p: len(members.get(p, [])) + sum(1 for u in unknown if u.pool == p) for p in pools}
    frozen = {p for p in pools if resolve(rules[p].max_unavailable, size[p], "down") == 0}
    drain_reason = f"gpu-fleet-upgrade {desired_name} {iso(now)}"
    prep = _prepare(fleet, desired, rules, pol, knowledge, now, unknown, exclude_invalid, drain_reason, frozen)
    if prep.invalid:
        raise PlanError(prep.invalid)
    limits: dict[str, PoolLimits] = {p: pool_limits(rules[p], size[p], len(prep.out_of_service.get(p, [])))
                                     for p in pools}
    atomic = {p for p in pools if _forbids_mixing(p, rules[p], prep)}
    while True:
        groups, reasons, canary = build_waves(prep.movers, rules, limits, pol, atomic)
        if reasons:
            raise PlanError(reasons)
        names = wave_names(len(groups), canary)
        times, durations, labels, reasons = _schedule(groups, names, prep.hosts, pol, now)
        if reasons:
            raise PlanError(reasons)
        wave_of = {m.name: i + 1 for i, g in enumerate(groups) for m in g}
        mixed: dict[str, list[MixedInterval]] = {}
        bad: dict[str, list[str]] = {}
        for p in pools:
            pool_hosts = [PoolHost(h.name, h.current, h.target or h.current,
                                   wave_of.get(h.name)) for h in prep.hosts.values() if h.pool == p]
            mixed[p], bad[p] = mixed_intervals(pool_hosts, times, rules[p])
        newly = {p for p, v in bad.items() if v and p not in atomic}
        if not newly:
            break
        atomic |= newly
    failures = [f"pool {p}: {line}" for p in pools for line in bad[p]]
    if failures:
        raise PlanError(failures)
    return _assemble(pol, knowledge, now, prep, groups, names, times, durations, labels, rules, limits,
                     atomic, mixed, pools, inputs, desired_name, frozen, drain_reason)


def _forbids_mixing(pool: str, rules: PoolRules, prep: _Prepared) -> bool:
    """A pool moves in one wave when it forbids mixing a component that its hosts change."""
    forbidden = {c for c in MANAGED if rules.mixing(c) is Mixing.FORBID}
    moving = {c for h in prep.hosts.values() if h.pool == pool and h.action == "upgrade"
              for c in changed(h.current, h.target or h.current)}
    return bool(forbidden & moving)


def _assemble(
    pol: RolloutPolicy, knowledge: Knowledge, now: datetime,
    prep: _Prepared, groups: list[list[Mover]], names: list[str], times: list[WaveTime], durations: list[int],
    labels: list[str | None], rules: dict[str, PoolRules], limits: dict[str, PoolLimits], atomic: set[str],
    mixed: dict[str, list[MixedInterval]], pools: list[str], inputs: Fingerprints | None, desired_name: str,
    frozen: set[str], drain_reason: str,
) -> Plan:
    hosts = dict(prep.hosts)
    waves = []
    for i, group in enumerate(groups):
        name = names[i]
        for m in group:
            hosts[m.name] = hosts[m.name].model_copy(update={"wave": name})
        per_pool: dict[str, int] = {}
        gpus_pool: dict[str, int] = {}
        for m in group:
            per_pool[m.pool] = per_pool.get(m.pool, 0) + 1
            gpus_pool[m.pool] = gpus_pool.get(m.pool, 0) + m.gpu_count
        budget = pol.failure_budget.per_wave
        waves.append(Wave(
            index=i, name=name, hosts=tuple(m.name for m in group), hosts_by_pool=dict(sorted(per_pool.items())),
            gpus_out=sum(gpus_pool.values()), gpus_out_by_pool=dict(sorted(gpus_pool.items())),
            estimate_s=durations[i], soak_s=pol.soak, earliest_start=iso(times[i].start), end=iso(times[i].end),
            window=labels[i], window_need_s=window_need_s(durations[i], pol),
            failure_budget=resolve(budget, len(group), "down"),
        ))
    warnings = list(prep.warnings)
    if prep.movers and not (waves and waves[0].name == "canary") and any(p not in atomic for p in pools):
        warnings.append("no canary wave: the policy's canary is 0")
    warnings.extend(_canary_gaps(prep.movers, waves, atomic))
    pool_plans = []
    for p in pools:
        members = [h for h in hosts.values() if h.pool == p]
        excluded = [e for e in prep.excluded if e.pool == p]
        warnings.extend(pool_notes(p, mixed[p]))
        if p in frozen:
            warnings.append(f"pool {p}: frozen (max_unavailable resolves to 0); none of its hosts is touched")
        if p in atomic and any(h.action == "upgrade" for h in members):
            warnings.append(f"pool {p}: moves in one wave without a canary (its mixed_versions policy)")
        pool_plans.append(PoolPlan(
            name=p, hosts=limits[p].pool_size, gpus=sum(h.gpu_count for h in members),
            upgrade=sum(1 for h in members if h.action == "upgrade"),
            noop=sum(1 for h in members if h.action == "noop"),
            excluded=len(excluded), out_of_service=tuple(sorted(prep.out_of_service.get(p, []))),
            max_unavailable=limits[p].max_unavailable, max_per_domain=dict(sorted(limits[p].per_domain.items())),
            moves_in_one_wave=p in atomic, frozen=p in frozen, rules=rules[p], mixed=tuple(mixed[p]),
        ))
    for e in sorted(prep.excluded, key=lambda e: e.host):
        warnings.append(f"{e.host}: excluded ({e.kind}): {e.reason}")
    movers = len(prep.movers)
    end = times[-1].end if times else now
    plan = Plan(
        made_at=iso(now), desired_name=desired_name, knowledge_version=knowledge.version,
        inputs=inputs or Fingerprints(inventory=UNKNOWN_FINGERPRINT, facts=UNKNOWN_FINGERPRINT,
                                      desired=UNKNOWN_FINGERPRINT, knowledge=knowledge.version),
        policy=pol, hosts=tuple(hosts[n] for n in sorted(hosts)), waves=tuple(waves), pools=tuple(pool_plans),
        excluded=tuple(sorted(prep.excluded, key=lambda e: e.host)),
        noop=tuple(sorted(h.name for h in hosts.values() if h.action == "noop")),
        warnings=tuple(warnings), start=iso(times[0].start if times else now), end=iso(end),
        estimate_s=int((end - now).total_seconds()),
        failure_budget_total=resolve(pol.failure_budget.total, movers, "down"),
        drain_reason=drain_reason,
    )
    return seal(plan)


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
