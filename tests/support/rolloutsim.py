"""Simulated hosts and a simulated clock for the executor's own decisions (``run.decide``, ``run.admission``).

Used by the flowing-rollout decision tests and by benchmarks/rollout_makespan.py. Nothing of the executor is
re-implemented: every start, stop and verdict comes from ``decide``; this module only answers each step after
the time it takes and checks, after every decision, that the limits and the failure budget hold.

The host model: each host has a job running when the rollout starts (a Slurm maintenance reservation keeps new
jobs off, so nothing new starts on it); the job ends ``job_end_s`` after the start, and the scheduler was told
``reported_end_s`` (the job's time limit, at or after its real end). Draining a host started at ``t`` waits
``min(max(job_end_s - t, 0), drain timeout)`` (on timeout the policy evicts) plus the drain step's own
overhead; or, without a reservation (new jobs keep landing until the host is cordoned), a fixed ``drain_s``
whenever it starts. Every other step takes its plan estimate times a per-host factor (seeded). A host may fail one
step kind; its rollback steps then run.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.planner.model import Plan, Step, StepKind
from orchestrator.planner.waves import stage_sizes
from orchestrator.run.decide import (
    Action,
    Begin,
    Event,
    Finished,
    HostMoved,
    HostSoak,
    HostSoaked,
    RunContext,
    RunState,
    RunStep,
    Soak,
    SoakDone,
    StepDone,
    decide,
    initial_state,
)
from orchestrator.run.flow import stage_budget
from orchestrator.run.states import HostState

S = HostState
DRAIN_OVERHEAD_S = 30
BACK = frozenset({S.DONE, S.ROLLED_BACK, S.SKIPPED})  # back in service (or never taken out)


@dataclass(frozen=True)
class SimHost:
    job_end_s: float = 0.0
    reported_end_s: float | None = None
    speed: float = 1.0
    fail: StepKind | None = None  # this upgrade step kind fails on the host
    figure: float = 50.0
    drain_s: float | None = None  # a fixed drain, whenever the host starts (jobs keep coming until cordoned)


@dataclass
class SimResult:
    status: str
    reason: str
    finished_s: float  # when the run ended (after the last host's own soak, if any)
    last_back_s: float  # when the last host came back into service (or ended rolled back)
    flow_start_s: float | None  # when the canary's soak ended and the flowing part began
    started: dict[str, float] = field(default_factory=dict)
    back: dict[str, float] = field(default_factory=dict)
    states: dict[str, HostState] = field(default_factory=dict)
    events: int = 0
    max_out: dict[str, int] = field(default_factory=dict)
    budget_exceeded_s: float | None = None
    final: RunState | None = None
    trace: list[Event] = field(default_factory=list)


class LimitBroken(AssertionError):
    pass


def step_seconds(host: SimHost, step: Step, now_s: float, drain_timeout_s: int) -> float:
    if step.kind == StepKind.DRAIN:
        wait = host.drain_s if host.drain_s is not None else max(host.job_end_s - now_s, 0.0)
        return DRAIN_OVERHEAD_S + min(wait, drain_timeout_s)
    return step.estimate_s * host.speed


def answer(plan: Plan, action: RunStep, host: SimHost, at: datetime) -> StepDone:
    """What the host action port reports for a step: ok, or the failure the host was given."""
    view = plan.host(action.host)
    step = action.step
    if host.fail is not None and step.kind == host.fail and action.phase == "upgrade":
        return StepDone(action.host, action.phase, step.id, False, f"simulated {step.kind} failure", {}, at)
    data: dict[str, Any] = {}
    if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
        at_target = action.phase == "upgrade" and step.kind == StepKind.VERIFY
        stack = view.target if at_target and view.target is not None else view.current
        data = {"stack": stack.model_dump(mode="json"), "driver_status": "ok"}
    elif step.kind == StepKind.GATE:
        data = {"figures": {"pcie_h2d_gbps": host.figure}}
    elif step.kind == StepKind.DRAIN:
        data = {"action": "drained"}
    return StepDone(action.host, action.phase, step.id, True, "", data, at)


def simulate(ctx: RunContext, hosts: dict[str, SimHost], t0: datetime, *, drain_timeout_s: int = 3600,
             check: bool = True, keep_trace: bool = False) -> SimResult:
    """Run ``ctx`` to its end on simulated hosts; with ``check`` assert every limit and the budget throughout."""
    plan = ctx.plan
    limits = ctx.limits
    pool_of = {h: plan.host(h).pool for w in ctx.waves for h in w.hosts}
    domains = {h: tuple(sorted(plan.host(h).domains.items())) for h in pool_of}
    canary = set(ctx.waves[0].hosts) if ctx.waves and ctx.waves[0].name == "canary" else set()
    flowing = [h for h in pool_of if h not in canary]
    soak_of = {h: w.soak_s for w in ctx.waves for h in w.hosts}
    stages = stage_sizes(plan.policy, len(flowing), len(canary)) if ctx.flow else []
    per_wave_budget = plan.policy.failure_budget.per_wave
    out: set[str] = set()
    per_pool: Counter[str] = Counter()
    per_domain: Counter[tuple[str, str]] = Counter()
    max_out: Counter[str] = Counter()
    started: dict[str, float] = {}
    back: dict[str, float] = {}
    failed: set[str] = set()
    resolved: set[str] = set()  # flowing hosts proven (soaked) or failed at rest: the sim's own count
    stage_of: dict[str, int] = {}
    failed_by_stage: Counter[int] = Counter()
    over_at: float | None = None
    flow_start: float | None = None
    result = SimResult("running", "", 0.0, 0.0, None)
    seq = itertools.count()
    queue: list[tuple[float, int, Event | RunStep]] = []
    state = initial_state(ctx)

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    def take_out(h: str) -> None:
        if h in out:
            return
        out.add(h)
        per_pool[pool_of[h]] += 1
        for d in domains[h]:
            per_domain[d] += 1
        if check:
            lim = limits[pool_of[h]]
            if per_pool[pool_of[h]] > lim.free:
                raise LimitBroken(f"{h}: pool {pool_of[h]} has {per_pool[pool_of[h]]} out (max {lim.free})")
            for d in domains[h]:
                cap = lim.per_domain.get(d[0])
                if cap is not None and per_domain[d] > cap:
                    raise LimitBroken(f"{h}: {d[0]} {d[1]} has {per_domain[d]} out (max {cap})")
        max_out[pool_of[h]] = max(max_out[pool_of[h]], per_pool[pool_of[h]])

    def bring_back(h: str) -> None:
        if h in out:
            out.discard(h)
            per_pool[pool_of[h]] -= 1
            for d in domains[h]:
                per_domain[d] -= 1

    def perform(actions: list[Action], now: float) -> None:
        nonlocal over_at, flow_start
        for a in actions:
            if isinstance(a, RunStep):
                if a.host not in started:
                    if check and over_at is not None:
                        raise LimitBroken(f"{a.host} started at {now:.0f} s, after the budget was exceeded "
                                          f"at {over_at:.0f} s")
                    started[a.host] = now
                    if ctx.flow and a.host not in canary:
                        if flow_start is None:
                            flow_start = now
                        stage_of[a.host] = _stage(stages, len(stage_of))
                        unproven = len(stage_of) - len(resolved)
                        if check and unproven > _cap(stages, len(resolved)):
                            raise LimitBroken(f"{a.host}: {unproven} hosts started and unproven "
                                              f"(stage cap {_cap(stages, len(resolved))})")
                take_out(a.host)
                secs = a.delay_s + step_seconds(hosts[a.host], a.step, now, drain_timeout_s)
                heapq.heappush(queue, (now + secs, next(seq), a))
            elif isinstance(a, Soak):
                heapq.heappush(queue, (now + a.seconds, next(seq), SoakDone(a.wave, at(now + a.seconds))))
            elif isinstance(a, HostSoak):
                heapq.heappush(queue, (now + a.seconds, next(seq), HostSoaked(a.host, at(now + a.seconds))))
            elif isinstance(a, HostMoved):
                if a.state in BACK:
                    bring_back(a.host)
                    if a.host in started:
                        back[a.host] = now
                    if a.host in stage_of and (a.state != S.DONE or soak_of[a.host] == 0):
                        resolved.add(a.host)
                elif a.state == S.QUARANTINED and a.host in stage_of:
                    resolved.add(a.host)
                elif a.state in (S.FAILED, S.ROLLING_BACK) and a.host in started:
                    take_out(a.host)  # a host rolled back after it was done is out again
                if (a.state == S.FAILED or (a.state == S.SKIPPED and a.reason.startswith("precheck failed"))) \
                        and a.host not in failed:
                    failed.add(a.host)
                    if a.host in stage_of:
                        failed_by_stage[stage_of[a.host]] += 1
                    total_over = len(failed) > plan.failure_budget_total
                    stage_over = False
                    if a.host in stage_of:
                        j = stage_of[a.host]
                        stage_over = failed_by_stage[j] > stage_budget(per_wave_budget, stages[j])
                    if (total_over or stage_over) and ctx.flow and over_at is None:
                        over_at = now
            elif isinstance(a, Finished):
                result.status, result.reason = a.status, a.reason

    def record_soaked(h: str) -> None:
        run = state.hosts.get(h)
        if run is not None and run.state == S.DONE and h in stage_of:
            resolved.add(h)

    begin = Begin(t0)
    state, actions = decide(ctx, state, begin)
    if keep_trace:
        result.trace.append(begin)
    perform(actions, 0.0)
    now = 0.0
    while queue and state.status == "running":
        now, _, item = heapq.heappop(queue)
        event: Event = answer(plan, item, hosts[item.host], at(now)) if isinstance(item, RunStep) else item
        state, actions = decide(ctx, state, event)
        result.events += 1
        if keep_trace:
            result.trace.append(event)
        if isinstance(event, HostSoaked):
            record_soaked(event.host)
        perform(actions, now)
    result.finished_s = now
    result.last_back_s = max(back.values(), default=0.0)
    result.flow_start_s = flow_start
    result.started, result.back = started, back
    result.states = {h: r.state for h, r in state.hosts.items()}
    result.max_out = dict(max_out)
    result.budget_exceeded_s = over_at
    result.final = state
    return result


def _stage(stages: list[int], nth: int) -> int:
    total = 0
    for j, size in enumerate(stages):
        total += size
        if nth < total:
            return j
    return max(len(stages) - 1, 0)


def _cap(stages: list[int], resolved: int) -> int:
    total = 0
    for size in stages:
        total += size
        if resolved < total:
            return size
    return 1 << 30
