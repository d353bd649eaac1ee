"""The executor's decisions as one pure function: ``decide(ctx, state, event) -> (state, actions)``.

Everything apply decides lives here and nowhere else: which host starts (admission under max unavailable
and the per-domain limits), what a step's result means (precheck and verify compare the host's reported
stack with the plan), when a host rolls back or is quarantined, stragglers, the failure budget (the plan's
numbers, never re-resolved), rollback of a whole wave, soak, the next wave's window, the end of the run.
The driver (``app.execute``) performs the actions through ports and feeds the results back as events; a
resumed run replays its journaled events through this function and re-issues the steps still outstanding.

Example::

    state, actions = decide(ctx, initial_state(ctx), Begin(now))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from orchestrator.model.stack import SoftwareStack
from orchestrator.planner.model import HostPlan, Plan, Step, StepKind, Wave
from orchestrator.planner.waves import PoolLimits, stage_sizes
from orchestrator.run.admission import Slot, admit
from orchestrator.run.flow import FlowRun, flow_order, outlasts_window, stage_budget
from orchestrator.run.hostmap import HostMap, Outstanding
from orchestrator.run.preflight import window_reason
from orchestrator.run.stacks import kernel_moves, mismatches
from orchestrator.run.states import OUT_OF_SERVICE, TERMINAL, HostState
from orchestrator.run.stragglers import STRAGGLER_METRICS, judge_wave

S = HostState
Phase = Literal["upgrade", "rollback", "check"]
RunStatus = Literal["running", "done", "rolled_back", "halted"]
METRIC = "pcie_h2d_gbps"
FAILED_END = frozenset({S.ROLLED_BACK, S.QUARANTINED})


# ---------------------------------------------------------------- events (inputs)


@dataclass(frozen=True)
class Begin:
    now: datetime


@dataclass(frozen=True)
class StepDone:
    """A step's result as the host action port reported it; ``data`` carries ``stack``, ``figures``, ``action``."""

    host: str
    phase: Phase
    step: str
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True)
class SoakDone:
    wave: str
    now: datetime


@dataclass(frozen=True)
class HostSoaked:
    """A host's own soak ended (flowing runs): it is proven unless it failed meanwhile."""

    host: str
    now: datetime


Event = Begin | StepDone | SoakDone | HostSoaked


# ---------------------------------------------------------------- actions (outputs)


@dataclass(frozen=True)
class RunStep:
    host: str
    wave: str
    phase: Phase
    step: Step
    delay_s: float = 0.0


@dataclass(frozen=True)
class Soak:
    wave: str
    seconds: int


@dataclass(frozen=True)
class HostSoak:
    """Wait ``seconds`` after the host passed its gates and came back, then report :class:`HostSoaked`."""

    host: str
    wave: str
    seconds: int


@dataclass(frozen=True)
class HostMoved:
    host: str
    wave: str
    state: HostState
    reason: str


@dataclass(frozen=True)
class WaveEnded:
    wave: str
    status: Literal["passed", "halted"]
    failed: tuple[str, ...]
    stragglers: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Straggler:
    host: str
    wave: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Baseline:
    host: str
    metric: str
    value: float


@dataclass(frozen=True)
class Finished:
    status: RunStatus
    reason: str


Action = RunStep | Soak | HostSoak | HostMoved | WaveEnded | Straggler | Baseline | Finished


# ---------------------------------------------------------------- context and state


@dataclass(frozen=True)
class RunContext:
    """What a run decides from besides its events: the plan, the waves chosen, limits, baselines, options."""

    plan: Plan
    waves: tuple[Wave, ...]
    baselines: dict[str, float] = field(default_factory=dict)
    parallel: int | None = None
    ignore_window: bool = False
    mode: Literal["apply", "rollback"] = "apply"
    # hosts an earlier run of the plan left out of service (quarantined): they still hold slots
    held_earlier: frozenset[str] = frozenset()
    # the other straggler figures' baselines (metric -> host -> value): measured before the upgrade, or kept from
    # the host's first passed wave; ``baselines`` holds METRIC's
    figure_baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    # flowing rollout (run/flow.py): after the canary, one sliding window in stages instead of wave barriers
    flow: bool = False
    drain_ends: Mapping[str, datetime] = field(default_factory=dict)  # when each host's jobs are expected to end
    window_end: datetime | None = None  # no host starts whose drain and upgrade would outlast it

    @cached_property
    def limits(self) -> dict[str, PoolLimits]:
        """Each pool's limits as the plan resolved them; computed once per run, not at every admission."""
        return {p.name: PoolLimits(p.hosts, p.max_unavailable, len(p.out_of_service), dict(p.max_per_domain))
                for p in self.plan.pools}

    @cached_property
    def slots(self) -> dict[str, tuple[Slot, int]]:
        """Each host's admission slot and estimate, built once per run (a flowing run asks at every start)."""
        out = {}
        for w in self.waves:
            for h in w.hosts:
                view = self.plan.host(h)
                out[h] = (_slot(view), view.estimate_s)
        return out


@dataclass(frozen=True)
class HostRun:
    name: str
    wave: str
    state: HostState = S.PENDING
    phase: Phase = "upgrade"
    index: int = 0
    started: bool = False
    drained: bool = False
    reason: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    unreachable_since: datetime | None = None
    retries: int = 0
    stage: int = -1  # flowing runs: the stage the host started in (-1: canary, or not started)
    settled: bool = False  # flowing runs: proven (gates passed, soaked) or failed and counted
    failed: bool = False  # flowing runs: counted against the failure budget
    soaking: bool = False


@dataclass(frozen=True)
class WaveRun:
    name: str
    status: Literal["pending", "running", "judged", "rolling", "passed", "halted"] = "pending"
    stragglers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunState:
    hosts: Mapping[str, HostRun]
    waves: tuple[WaveRun, ...]
    current: int = 0
    status: RunStatus = "running"
    reason: str = ""
    outstanding: AbstractSet[tuple[str, str, str]] = field(default_factory=Outstanding)
    soaking: str | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    figure_baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    flow: FlowRun | None = None
    now: datetime | None = None


def initial_state(ctx: RunContext) -> RunState:
    hosts = HostMap({h: HostRun(h, w.name) for w in ctx.waves for h in w.hosts})
    return RunState(hosts=hosts, waves=tuple(WaveRun(w.name) for w in ctx.waves), baselines=dict(ctx.baselines),
                    figure_baselines={m: dict(v) for m, v in ctx.figure_baselines.items()})


def outstanding_actions(ctx: RunContext, state: RunState) -> list[Action]:
    """What a resumed run must (re)issue: the steps started but not finished, an unfinished soak."""
    actions: list[Action] = []
    for host, phase, step_id in sorted(state.outstanding):
        run = state.hosts[host]
        steps = _steps(ctx.plan.host(host), run.phase)
        if phase == run.phase:
            actions.append(RunStep(host, run.wave, run.phase, next(s for s in steps if s.id == step_id)))
    if state.soaking is not None:
        wave = next(w for w in ctx.waves if w.name == state.soaking)
        actions.append(Soak(wave.name, wave.soak_s))
    if state.flow is not None:  # a host's own soak starts over: it was not seen to end
        for run in state.hosts.values():
            if run.soaking:
                actions.append(HostSoak(run.name, run.wave, _soak_s(ctx, run.wave)))
    return actions


class _Hosts(MutableMapping[str, HostRun]):
    """The state's hosts as one decision sees them: reads fall through, writes are kept apart (``changed``)."""

    def __init__(self, base: Mapping[str, HostRun]) -> None:
        self.base = base
        self.changed: dict[str, HostRun] = {}

    def __getitem__(self, key: str) -> HostRun:
        run = self.changed.get(key)
        return run if run is not None else self.base[key]

    def __setitem__(self, key: str, value: HostRun) -> None:
        self.changed[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("a run never forgets a host")

    def __contains__(self, key: object) -> bool:
        return key in self.changed or key in self.base

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def frozen(self) -> Mapping[str, HostRun]:
        base = self.base if isinstance(self.base, HostMap) else HostMap(dict(self.base))
        return base.updated(self.changed)


# ---------------------------------------------------------------- the decision


class _Step:
    """Mutable scratch for one decision: a copy of the state plus the actions it produced."""

    def __init__(self, ctx: RunContext, state: RunState) -> None:
        self.ctx = ctx
        self.hosts = _Hosts(state.hosts)
        self.seen: dict[str, HostRun] = {}  # flowing runs: each changed host as the counters last saw it
        self.freed = False  # flowing runs: a slot freed or a host resolved in this decision (admission may start one)
        self.flow = state.flow
        self.now = state.now
        self.waves = list(state.waves)
        self.state = state
        self._steps: dict[str, set[tuple[str, str]]] = {}  # hosts whose outstanding steps changed
        self._baselines: dict[str, float] | None = None
        self._figures: dict[str, dict[str, float]] | None = None  # copied on the first write, like _baselines
        self.actions: list[Action] = []
        self.status: RunStatus = state.status
        self.reason = state.reason
        self.current = state.current
        self.soaking = state.soaking

    def result(self) -> tuple[RunState, list[Action]]:
        new = RunState(hosts=self.hosts.frozen(), waves=tuple(self.waves), current=self.current,
                       status=self.status, reason=self.reason, outstanding=self.outstanding_now(),
                       soaking=self.soaking, baselines=self.baselines, figure_baselines=self.figure_baselines,
                       flow=self.flow, now=self.now)
        return new, self.actions

    @property
    def baselines(self) -> dict[str, float]:
        return self._baselines if self._baselines is not None else self.state.baselines

    def keep_baseline(self, host: str, value: float) -> None:
        if self._baselines is None:
            self._baselines = dict(self.state.baselines)
        self._baselines[host] = value

    @property
    def figure_baselines(self) -> dict[str, dict[str, float]]:
        return self._figures if self._figures is not None else self.state.figure_baselines

    def keep_figure(self, metric: str, host: str, value: float) -> None:
        if metric == METRIC:
            self.keep_baseline(host, value)
            return
        if self._figures is None:
            self._figures = {m: dict(v) for m, v in self.state.figure_baselines.items()}
        self._figures.setdefault(metric, {})[host] = value

    def steps_of(self, host: str) -> set[tuple[str, str]]:
        if host not in self._steps:
            old = self.state.outstanding
            self._steps[host] = set(old.steps_of(host) if isinstance(old, Outstanding)
                                    else {(p, s) for h, p, s in old if h == host})
        return self._steps[host]

    def outstanding_now(self) -> AbstractSet[tuple[str, str, str]]:
        old = self.state.outstanding
        if not isinstance(old, Outstanding):
            old = Outstanding(HostMap({h: frozenset((p, s) for hh, p, s in old if hh == h) for h, _p, _s in old}))
        return old.updated({h: frozenset(v) for h, v in self._steps.items()})

    # -- hosts

    def move(self, host: str, new: HostState, reason: str) -> None:
        run = self.hosts[host]
        if run.state == new:
            return
        self.hosts[host] = replace(run, state=new, reason=reason)
        self.actions.append(HostMoved(host, run.wave, new, reason))

    def issue(self, host: str, delay_s: float = 0.0) -> None:
        run = self.hosts[host]
        steps = _steps(self.ctx.plan.host(host), run.phase)
        if run.index >= len(steps):
            return
        self.steps_of(host).add((run.phase, steps[run.index].id))
        self.actions.append(RunStep(host, run.wave, run.phase, steps[run.index], delay_s))

    def start(self, host: str) -> None:
        if self.ctx.mode == "rollback":
            if _steps(self.ctx.plan.host(host), "check"):  # a host already back at its start is left alone
                self.hosts[host] = replace(self.hosts[host], phase="check", index=0, started=True)
                self.issue(host)
            else:
                self.roll_back(host, "rollback by hand")
            return
        self.hosts[host] = replace(self.hosts[host], started=True)
        self.issue(host)

    def roll_back(self, host: str, reason: str) -> None:
        """Failed -> rolling back through the plan's rollback steps (drain first only if in service)."""
        run = self.hosts[host]
        if run.state not in (S.FAILED, S.ROLLING_BACK, S.QUARANTINED):
            self.move(host, S.FAILED, reason)
        self.move(host, S.ROLLING_BACK, reason)
        steps = _steps(self.ctx.plan.host(host), "rollback")
        skip = 1 if run.drained and steps and steps[0].kind == StepKind.DRAIN else 0
        self.hosts[host] = replace(self.hosts[host], phase="rollback", index=skip, started=True)
        if not steps:
            self.move(host, S.QUARANTINED, f"{reason}; the plan has no rollback steps for it; left drained")
            return
        self.issue(host)

    # -- waves

    def wave(self) -> Wave | None:
        return self.ctx.waves[self.current] if self.current < len(self.ctx.waves) else None

    def set_wave(self, **changes: Any) -> None:
        self.waves[self.current] = replace(self.waves[self.current], **changes)

    def admit_more(self) -> None:
        wave = self.wave()
        if wave is None or self.waves[self.current].status not in ("running",):
            return
        runs = [self.hosts[h] for h in wave.hosts]
        waiting = [r for r in runs if not r.started and r.state == S.PENDING]
        plan = self.ctx.plan
        busy = [r for r in self.hosts.values()
                if r.state in OUT_OF_SERVICE or (r.started and r.state not in TERMINAL)]
        out_now = [_slot(plan.host(r.name)) for r in busy]
        out_now += [_slot(plan.host(h)) for h in sorted(self.ctx.held_earlier) if h not in self.hosts]
        for slot in admit([_slot(plan.host(r.name)) for r in waiting], out_now, self.ctx.limits, self.ctx.parallel):
            self.start(slot.name)
        active = any(r.started and r.state not in TERMINAL for r in (self.hosts[h] for h in wave.hosts))
        left = [r.name for r in (self.hosts[h] for h in wave.hosts) if not r.started and r.state == S.PENDING]
        if left and not active:
            reason = (f"{', '.join(left)}: no slot under max_unavailable / max_per_domain (hosts quarantined "
                      "earlier still hold theirs); a person must look")
            for host in left:
                self.move(host, S.SKIPPED, "no slot")
            self.halt_wave(wave, (), reason)

    def halt_wave(self, wave: Wave, failed: tuple[str, ...], reason: str) -> None:
        self.set_wave(status="halted")
        stragglers = self.waves[self.current].stragglers
        self.actions.append(WaveEnded(wave.name, "halted", failed, stragglers, reason))
        self.finish("halted", reason)

    def finish(self, status: RunStatus, reason: str) -> None:
        if status == "done" and any(r.state in FAILED_END for r in self.hosts.values()):
            status = "rolled_back"
        self.status, self.reason = status, reason
        self.actions.append(Finished(status, reason))

    def begin_wave(self, now: datetime) -> None:
        wave = self.wave()
        if wave is None:
            self.finish("done", "")
            return
        if self.current > 0 and not self.ctx.ignore_window:
            closed = window_reason(self.ctx.plan, wave, now)
            if closed:
                self.finish("done", f"stopped before {wave.name}: {closed}; run `upgrade apply --wave next` then")
                return
        if self.ctx.flow and wave.name != "canary":
            self.begin_flow()
            return
        self.set_wave(status="running")
        for host in wave.hosts:
            if self.hosts[host].state == S.PENDING and not self.hosts[host].started:
                self.actions.append(HostMoved(host, wave.name, S.PENDING, "planned"))
        self.admit_more()
        self.settle()

    def settle(self) -> None:
        """When every host of the wave is at rest: stragglers, then the budget, then pass or halt."""
        wave = self.wave()
        if wave is None or self.status != "running":
            return
        progress = self.waves[self.current]
        runs = [self.hosts[h] for h in wave.hosts]
        if progress.status not in ("running", "judged", "rolling") or any(r.state not in TERMINAL for r in runs):
            return
        if self.ctx.mode == "rollback":
            stuck = any(r.state == S.QUARANTINED for r in runs)
            self.set_wave(status="halted" if stuck else "passed")
            self.actions.append(WaveEnded(wave.name, "halted" if stuck else "passed", (), (), ""))
            self.current += 1
            self.finish("halted" if stuck else "rolled_back", "a host is quarantined" if stuck else "")
            return
        if progress.status == "running":
            slow = self.stragglers(wave)
            self.set_wave(status="judged", stragglers=slow)
            if slow:
                return
        runs = [self.hosts[h] for h in wave.hosts]
        failed = tuple(sorted(r.name for r in runs if r.state in FAILED_END
                              or (r.state == S.SKIPPED and r.reason.startswith("precheck failed"))))
        total = sum(1 for r in self.hosts.values() if r.state in FAILED_END)
        over = []
        if len(failed) > wave.failure_budget:
            over.append(f"{len(failed)} of {len(wave.hosts)} hosts failed in {wave.name} "
                        f"(budget {wave.failure_budget}): {', '.join(failed)}")
        if total > self.ctx.plan.failure_budget_total:
            over.append(f"{total} hosts failed in this rollout (budget {self.ctx.plan.failure_budget_total})")
        if over:
            done = [r.name for r in runs if r.state == S.DONE]
            if (self.ctx.plan.policy.failure_budget.on_exceed == "rollback-wave" and done
                    and self.waves[self.current].status != "rolling"):
                self.set_wave(status="rolling")
                for host in done:
                    self.roll_back(host, f"wave {wave.name} over its failure budget")
                return
            self.halt_wave(wave, failed, "; ".join(over) + "; run halted")
            return
        for r in runs:
            if r.state != S.DONE:
                continue
            for metric in STRAGGLER_METRICS:
                value = r.figures.get(metric)
                if value is not None and r.name not in self.baselines_of(metric):
                    self.keep_figure(metric, r.name, value)
                    self.actions.append(Baseline(r.name, metric, value))
        self.set_wave(status="passed")
        self.actions.append(WaveEnded(wave.name, "passed", failed, self.waves[self.current].stragglers, ""))
        if self.current + 1 >= len(self.ctx.waves):
            self.current += 1
            self.finish("done", "")
        else:  # a soak of 0 still goes through the driver, whose SoakDone brings the time for the window check
            self.soaking = wave.name
            self.actions.append(Soak(wave.name, wave.soak_s))

    def baselines_of(self, metric: str) -> dict[str, float]:
        return self.baselines if metric == METRIC else self.figure_baselines.get(metric, {})

    def stragglers(self, wave: Wave) -> tuple[str, ...]:
        """Every straggler figure of the wave's finished hosts, per GPU model, against baselines and the median."""
        done = [h for h in wave.hosts if self.hosts[h].state == S.DONE]
        reasons: dict[str, list[str]] = {}
        threshold = self.ctx.plan.policy.straggler_threshold
        for metric in STRAGGLER_METRICS:
            by_model: dict[str, dict[str, float | None]] = {}
            for host in done:
                value = self.hosts[host].figures.get(metric)
                if value is not None:
                    by_model.setdefault(self.ctx.plan.host(host).gpu, {})[host] = value
            for group in by_model.values():
                base = self.baselines_of(metric)
                verdicts = judge_wave(metric, group, {h: base.get(h) for h in group}, threshold)
                for host, verdict in verdicts.items():
                    if verdict.straggler:
                        reasons.setdefault(host, []).extend(verdict.reasons)
        for host in sorted(reasons):
            self.actions.append(Straggler(host, wave.name, tuple(reasons[host])))
            self.roll_back(host, "straggler: " + "; ".join(reasons[host]))
        return tuple(sorted(reasons))

    # -- flowing runs (run/flow.py): after the canary, one sliding window in stages

    def begin_flow(self) -> None:
        plan, ctx = self.ctx.plan, self.ctx
        waves = ctx.waves[self.current:]
        names = [h for w in waves for h in w.hosts if self.hosts[h].state == S.PENDING and not self.hosts[h].started]
        for i in range(self.current, len(self.waves)):
            self.waves[i] = replace(self.waves[i], status="running")
        for w in waves:
            for host in w.hosts:
                if self.hosts[host].state == S.PENDING and not self.hosts[host].started:
                    self.actions.append(HostMoved(host, w.name, S.PENDING, "planned"))
        views = [plan.host(h) for h in names]
        rows = [(v.name, v.domains.get("rack") or v.domains.get("switch") or "", v.estimate_s) for v in views]
        canary = len(plan.waves[0].hosts) if plan.waves and plan.waves[0].name == "canary" else 0
        stages = tuple(stage_sizes(plan.policy, len(names), canary)) or (1,)
        failed = sum(1 for r in self.hosts.values() if r.state in FAILED_END)
        drain = plan.policy.drain
        evict = drain.timeout if drain.on_timeout == "evict" else None
        moving = {v.pool for v in views}
        slots = sum(max(lim.free, 1) for pool, lim in ctx.limits.items() if pool in moving)
        # the flowing part's length without drains (known jobs: their ends order the hosts instead)
        horizon = sum(v.estimate_s - sum(st.estimate_s for st in v.steps if st.kind == StepKind.DRAIN)
                      for v in views) / max(slots, 1)
        wave_of = {h: i for i, w in enumerate(waves) for h in w.hosts}
        self.flow = FlowRun(order=flow_order(rows, ctx.drain_ends, self.now, evict, horizon, wave_of), stages=stages,
                            failed_by_stage=(0,) * len(stages), failed_total=failed,
                            left_by_wave=tuple((w.name, len(w.hosts)) for w in waves),
                            waiting_by_pool=tuple(sorted(Counter(v.pool for v in views).items())))
        self.freed = True
        self.flow_step()

    def flow_step(self) -> None:
        """After an event: bring the counters up to date with the hosts it changed, admit, maybe finish."""
        self.flow_track()
        self.flow_admit()
        self.flow_track()
        self.flow_settle()

    def host_soaked(self, host: str) -> None:
        run = self.hosts.get(host)
        if run is None or not run.soaking or self.flow is None:
            return
        self.hosts[host] = replace(run, soaking=False)
        self.flow = replace(self.flow, soaking=self.flow.soaking - 1)
        if run.state == S.DONE and not run.settled:
            self.settle_host(host)
        self.flow_step()

    def flow_track(self) -> None:
        assert self.flow is not None
        while True:
            todo = [(h, r) for h, r in self.hosts.changed.items() if self.seen.get(h) is not r]
            if not todo:
                return
            for host, new in todo:
                old = self.seen.get(host, self.state.hosts[host])
                self.seen[host] = new
                if new.stage < 0:
                    continue
                f = self.flow
                busy = f.busy
                if _out(old) != _out(new):
                    busy = busy | {host} if _out(new) else busy - {host}
                    self.freed = self.freed or not _out(new)
                was = old.started and old.state not in TERMINAL
                now = new.started and new.state not in TERMINAL
                self.flow = replace(f, busy=busy, active=f.active + (now - was))
                if _failed(new) and not new.failed:
                    self.count_failure(host)
                elif new.state == S.DONE and old.state != S.DONE and new.phase == "upgrade":
                    self.host_done(host)
                elif new.state in TERMINAL and new.state != S.DONE and not new.settled:
                    self.settle_host(host)

    def host_done(self, host: str) -> None:
        run = self.hosts[host]
        value = run.figures.get(METRIC)
        if value is not None:  # judged against its own baseline at once: a flowing run has no wave median
            verdict = judge_wave(METRIC, {host: value}, {host: self.baselines.get(host)},
                                 self.ctx.plan.policy.straggler_threshold)[host]
            if verdict.straggler:
                self.actions.append(Straggler(host, run.wave, tuple(verdict.reasons)))
                self.roll_back(host, "straggler: " + "; ".join(verdict.reasons))
                return
        seconds = _soak_s(self.ctx, run.wave)
        if seconds > 0:
            assert self.flow is not None
            self.hosts[host] = replace(run, soaking=True)
            self.flow = replace(self.flow, soaking=self.flow.soaking + 1)
            self.actions.append(HostSoak(host, run.wave, seconds))
        else:
            self.settle_host(host)

    def settle_host(self, host: str) -> None:
        """The host is resolved: proven, or at rest after failing; its wave's checkpoint may be reached."""
        assert self.flow is not None
        run = self.hosts[host]
        self.hosts[host] = replace(run, settled=True)
        f = self.flow
        self.freed = self.freed or f.started - f.resolved >= f.cap()  # the stage cap held a host back
        left = tuple((w, n - 1 if w == run.wave else n) for w, n in self.flow.left_by_wave)
        self.flow = replace(self.flow, resolved=self.flow.resolved + 1, left_by_wave=left)
        if dict(left).get(run.wave) == 0:
            self.checkpoint(run.wave)

    def checkpoint(self, name: str) -> None:
        """Every host of a planned wave is resolved: the wave passed (baselines kept), unless the run stopped."""
        assert self.flow is not None
        index = next(i for i, w in enumerate(self.ctx.waves) if w.name == name)
        wave = self.ctx.waves[index]
        failed = tuple(sorted(h for h in wave.hosts if self.hosts[h].failed))
        if self.flow.stopped:
            return  # flow_settle ends it as halted
        for h in wave.hosts:
            r = self.hosts[h]
            value = r.figures.get(METRIC)
            if value is not None and r.state == S.DONE and h not in self.baselines:
                self.keep_baseline(h, value)
                self.actions.append(Baseline(h, METRIC, value))
        self.waves[index] = replace(self.waves[index], status="passed")
        self.actions.append(WaveEnded(name, "passed", failed, (), ""))

    def count_failure(self, host: str) -> None:
        assert self.flow is not None
        f = self.flow
        run = self.hosts[host]
        self.hosts[host] = replace(run, failed=True)
        by_stage = list(f.failed_by_stage)
        by_stage[run.stage] += 1
        total = f.failed_total + 1
        budget = self.ctx.plan.policy.failure_budget
        over = []
        allowed = stage_budget(budget.per_wave, f.stages[run.stage])
        if by_stage[run.stage] > allowed:
            over.append(f"{by_stage[run.stage]} hosts failed in stage {run.stage + 1} of {f.stages[run.stage]} "
                        f"(budget {allowed})")
        if total > self.ctx.plan.failure_budget_total:
            over.append(f"{total} hosts failed in this rollout (budget {self.ctx.plan.failure_budget_total})")
        stopped = f.stopped or ("; ".join(over) + "; no new host starts" if over else "")
        self.flow = replace(f, failed_by_stage=tuple(by_stage), failed_total=total, stopped=stopped)
        if run.state in TERMINAL and not self.hosts[host].settled:
            self.settle_host(host)
        if over and not f.stopped and budget.on_exceed == "rollback-wave":
            for h, r in list(self.hosts.items()):
                if r.stage == run.stage and r.state == S.DONE:
                    self.roll_back(h, f"stage {run.stage + 1} over its failure budget")

    def flow_admit(self) -> None:
        f = self.flow
        assert f is not None
        room = f.cap() - (f.started - f.resolved)
        if not self.freed or f.stopped or room <= 0 or self.status != "running":
            return
        self.freed = False
        order, head, slots = f.order, f.head, self.ctx.slots
        while head < len(order) and (self.hosts[order[head]].started or self.hosts[order[head]].state != S.PENDING):
            head += 1
        waiting_pools = {p for p, n in f.waiting_by_pool if n > 0}
        limits = {p: lim for p, lim in self.ctx.limits.items() if p in waiting_pools}
        out_now = [slots[h][0] for h in f.busy]
        out_now += [_slot(self.ctx.plan.host(h)) for h in sorted(self.ctx.held_earlier) if h not in self.hosts]

        def waiting() -> Iterator[Slot]:
            for h in order[head:]:
                r = self.hosts[h]
                if r.started or r.state != S.PENDING:
                    continue
                slot, estimate = slots[h]
                if outlasts_window(self.ctx.drain_ends.get(h), estimate, self.now, self.ctx.window_end):
                    continue
                yield slot

        chosen = admit(waiting(), out_now, limits, self.ctx.parallel, room)
        pools = dict(f.waiting_by_pool)
        for n, slot in enumerate(chosen):
            pools[slot.pool] -= 1
            self.hosts[slot.name] = replace(self.hosts[slot.name], stage=f.stage_of(f.started + n))
        self.flow = replace(f, head=head, started=f.started + len(chosen),
                            waiting_by_pool=tuple(sorted(pools.items())))
        for slot in chosen:
            self.start(slot.name)

    def flow_settle(self) -> None:
        """Nothing in flight and nothing soaking: the run ends (done, halted on the budget, or out of slots)."""
        f = self.flow
        assert f is not None
        if f.active > 0 or f.soaking > 0 or self.status != "running":
            return
        waiting = [h for h in f.order[f.head:] if not self.hosts[h].started and self.hosts[h].state == S.PENDING]
        self.current = len(self.ctx.waves)
        if f.stopped:
            for i, w in enumerate(self.ctx.waves):
                if self.waves[i].status == "running":
                    self.waves[i] = replace(self.waves[i], status="halted")
                    failed = tuple(sorted(h for h in w.hosts if self.hosts[h].failed))
                    self.actions.append(WaveEnded(w.name, "halted", failed, (), f.stopped))
            self.finish("halted", f.stopped + "; run halted")
            return
        if not waiting:
            self.finish("done", "")
            return
        plan = self.ctx.plan
        late = [h for h in waiting if outlasts_window(self.ctx.drain_ends.get(h), plan.host(h).estimate_s,
                                                      self.now, self.ctx.window_end)]
        if late:
            self.finish("done", f"{len(late)} host(s) not started, their jobs would outlast the window "
                                f"(first: {', '.join(late[:5])}); run `upgrade apply --wave next` in the next one")
            return
        reason = (f"{', '.join(waiting[:10])}: no slot under max_unavailable / max_per_domain (hosts quarantined "
                  "earlier still hold theirs); a person must look")
        for host in waiting:
            self.move(host, S.SKIPPED, "no slot")
        self.finish("halted", reason)

    # -- step results

    def step_done(self, event: StepDone) -> None:
        run = self.hosts.get(event.host)
        if run is None:
            return
        steps = _steps(self.ctx.plan.host(event.host), run.phase)
        if run.phase != event.phase or run.index >= len(steps) or steps[run.index].id != event.step:
            return  # a result for a step that is not the host's current one (a duplicate): ignored
        self.steps_of(event.host).discard((event.phase, event.step))
        step = steps[run.index]
        if not event.ok and event.data.get("unreachable") and event.at is not None:
            since = run.unreachable_since or event.at
            waited = (event.at - since).total_seconds()
            if waited < self.ctx.plan.policy.unreachable_retry:
                # a blip: the roles are idempotent, so the same step runs again after a backoff
                self.hosts[event.host] = replace(run, unreachable_since=since, retries=run.retries + 1)
                self.issue(event.host, delay_s=min(5.0 * 2 ** run.retries, 60.0))
                return
            event = replace(event, message=f"unreachable for {int(waited)} s: {event.message}")
        self.hosts[event.host] = replace(self.hosts[event.host], unreachable_since=None, retries=0)
        run = self.hosts[event.host]
        ok, message, at_target = _judge(self.ctx.plan.host(event.host), run.phase, step, event)
        if run.phase == "check":
            if ok:
                self.move(event.host, S.SKIPPED, "already at the plan's starting stack: nothing to roll back")
            else:
                self.roll_back(event.host, "rollback by hand")
        elif run.phase == "upgrade":
            self.upgrade_result(run, step, ok, message, event, at_target)
        else:
            self.rollback_result(run, step, ok, message, event)
        if self.flow is not None:
            self.flow_step()
            return
        self.admit_more()
        self.settle()

    def upgrade_result(self, run: HostRun, step: Step, ok: bool, message: str, event: StepDone,
                       at_target: bool) -> None:
        host = run.name
        if step.kind == StepKind.PRECHECK and ok and at_target:
            self.move(host, S.DONE, "already at target (verified by precheck): nothing to do")
            return
        if not ok:
            if run.state == S.PENDING and step.kind == StepKind.PRECHECK:
                self.move(host, S.SKIPPED, f"precheck failed, nothing changed: {message}")
            else:
                self.roll_back(host, f"{step.id} failed: {message}")
            return
        if step.kind == StepKind.DRAIN and event.data.get("action") == "left_alone":
            detail = str(event.data.get("reason", "")).strip()
            self.move(host, S.SKIPPED, f"cordoned by hand, left alone: {detail}".strip())
            return
        if step.kind == StepKind.DRAIN:
            self.move(host, S.CORDONED, "cordoned")
            self.move(host, S.DRAINED, "drained")
            self.hosts[host] = replace(self.hosts[host], drained=True)
        elif step.kind == StepKind.CHANGE:
            self.move(host, S.UPGRADING, step.id)
        elif step.kind == StepKind.REBOOT:
            self.move(host, S.REBOOTING, step.id)
        elif step.kind == StepKind.VERIFY:
            self.move(host, S.VERIFYING, step.id)
        elif step.kind == StepKind.GATE:
            figures = {**self.hosts[host].figures, **_figures(event.data)}
            self.hosts[host] = replace(self.hosts[host], figures=figures)
            gates = [s for s in self.ctx.plan.host(host).steps if s.kind == StepKind.GATE]
            if gates and gates[-1].id == step.id:
                self.move(host, S.VALIDATED, "gates passed")
        elif step.kind == StepKind.UNCORDON:
            self.hosts[host] = replace(self.hosts[host], drained=False)
            self.move(host, S.DONE, step.id)
        self.advance(host)

    def rollback_result(self, run: HostRun, step: Step, ok: bool, message: str, event: StepDone) -> None:
        host = run.name
        first = run.reason.split("; rollback failed")[0]
        if not ok:
            self.move(host, S.QUARANTINED, f"{first}; rollback failed: {step.id}: {message}; left drained")
            return
        if step.kind == StepKind.DRAIN:
            self.hosts[host] = replace(self.hosts[host], drained=True)
        if step.kind == StepKind.UNCORDON:
            self.hosts[host] = replace(self.hosts[host], drained=False)
            current = self.ctx.plan.host(host).current
            self.move(host, S.ROLLED_BACK, f"{first}; rolled back to {current.describe()}")
            return
        self.advance(host)

    def advance(self, host: str) -> None:
        run = self.hosts[host]
        if run.state in TERMINAL:
            return
        self.hosts[host] = replace(run, index=run.index + 1)
        self.issue(host)


def decide(ctx: RunContext, state: RunState, event: Event) -> tuple[RunState, list[Action]]:
    """The next state and the actions to perform, from the current state and one event. Pure."""
    work = _Step(ctx, state)
    if work.status != "running":
        return state, []
    when = event.at if isinstance(event, StepDone) else event.now
    if when is not None:
        work.now = when
    if isinstance(event, Begin):
        work.begin_wave(event.now)
    elif isinstance(event, StepDone):
        work.step_done(event)
    elif isinstance(event, SoakDone) and state.soaking == event.wave:
        work.soaking = None
        work.current += 1
        work.begin_wave(event.now)
    elif isinstance(event, HostSoaked) and work.flow is not None:
        work.host_soaked(event.host)
    return work.result()


# ---------------------------------------------------------------- helpers


def _steps(host: HostPlan, phase: Phase) -> tuple[Step, ...]:
    if phase == "check":
        return host.steps[:1] if host.steps and host.steps[0].kind == StepKind.PRECHECK else ()
    return host.steps if phase == "upgrade" else host.rollback


def _slot(host: HostPlan) -> Slot:
    return Slot(host.name, host.pool, tuple(sorted(host.domains.items())))


def _soak_s(ctx: RunContext, wave: str) -> int:
    return next((w.soak_s for w in ctx.waves if w.name == wave), ctx.plan.policy.soak)


def _out(run: HostRun) -> bool:
    return run.state in OUT_OF_SERVICE or (run.started and run.state not in TERMINAL)


def _failed(run: HostRun) -> bool:
    """Counted against a flowing run's budget from the moment it fails, not when its rollback ends."""
    return (run.state in FAILED_END or run.state in (S.FAILED, S.ROLLING_BACK)
            or (run.state == S.SKIPPED and run.reason.startswith("precheck failed")))


def _figures(data: dict[str, Any]) -> dict[str, float]:
    raw = data.get("figures") or {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _builds_gone(host: HostPlan, available: object) -> list[str]:
    """Planned builds the host's repositories stopped offering (apply never picks another)."""
    if not isinstance(available, dict):
        return []  # the host's index was not reported: the install step will say what is missing
    gone = []
    for step in host.steps:
        if step.kind == StepKind.CHANGE and step.package and step.build:
            offered = available.get(step.package) or []
            if step.build not in offered:
                gone.append(f"{step.package}={step.build} (offered: {', '.join(map(str, offered[:4])) or 'none'})")
    return gone


def _judge(host: HostPlan, phase: Phase, step: Step, event: StepDone) -> tuple[bool, str, bool]:
    """A step's verdict (ok, why not, found at target): the port's ok, and for precheck and verify the
    reported stack against the plan."""
    if not event.ok:
        return False, event.message or "failed", False
    if step.kind not in (StepKind.PRECHECK, StepKind.VERIFY):
        if step.kind == StepKind.UNCORDON and event.data.get("action") == "left_alone":
            return False, f"not resumed: {event.data.get('detail', 'left alone')}", False
        return True, "", False
    raw = event.data.get("stack")
    if not isinstance(raw, dict):
        return False, "the host reported no stack", False
    live = SoftwareStack.model_validate(raw)
    kernel = kernel_moves(host.current, host.target)
    if step.kind == StepKind.PRECHECK:
        diff = mismatches(live, host.current, kernel)
        if phase == "upgrade" and diff and host.target is not None and not mismatches(live, host.target, kernel):
            return True, "", True  # done already (an earlier run, or by hand): verified, not failed
        if diff:
            return False, "host changed since the plan was made: " + "; ".join(diff), False
        missing = _builds_gone(host, event.data.get("available")) if phase == "upgrade" else []
        if missing:
            return False, "planned builds no longer offered by its repositories: " + "; ".join(missing), False
        return True, "", False
    want = host.target if phase == "upgrade" and host.target is not None else host.current
    driver_status = str(event.data.get("driver_status", "ok"))
    if driver_status != "ok" and want.driver is not None:
        return False, f"driver {driver_status}: {event.data.get('driver_message', '')}".strip(), False
    diff = mismatches(live, want, kernel)
    return not diff, "; ".join(diff), False


# ---------------------------------------------------------------- events as journal data


def event_data(event: Event) -> dict[str, Any]:
    """An event as plain JSON data, for the journal (a resumed run replays these)."""
    if isinstance(event, Begin):
        return {"event": "begin", "now": event.now.isoformat()}
    if isinstance(event, SoakDone):
        return {"event": "soak_done", "wave": event.wave, "now": event.now.isoformat()}
    if isinstance(event, HostSoaked):
        return {"event": "host_soaked", "host": event.host, "now": event.now.isoformat()}
    return {"event": "step_done", "host": event.host, "phase": event.phase, "step": event.step, "ok": event.ok,
            "message": event.message, "data": event.data, "at": event.at.isoformat() if event.at else None}


def event_from_data(data: dict[str, Any]) -> Event:
    kind = data.get("event")
    if kind == "begin":
        return Begin(datetime.fromisoformat(str(data["now"])))
    if kind == "soak_done":
        return SoakDone(str(data["wave"]), datetime.fromisoformat(str(data["now"])))
    if kind == "host_soaked":
        return HostSoaked(str(data["host"]), datetime.fromisoformat(str(data["now"])))
    if kind == "step_done":
        raw_phase = data.get("phase")
        phase: Phase = "rollback" if raw_phase == "rollback" else "check" if raw_phase == "check" else "upgrade"
        at = datetime.fromisoformat(str(data["at"])) if data.get("at") else None
        return StepDone(str(data["host"]), phase, str(data["step"]), bool(data["ok"]), str(data.get("message", "")),
                        dict(data.get("data") or {}), at)
    raise ValueError(f"not a run event: {kind!r}")
