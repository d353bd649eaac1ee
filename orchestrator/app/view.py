"""A run as people follow it: each host's state, current step and timing, each wave's slots and failures.

One fold, two feeds: the driver's actions and results while a run goes (``observe_*``: the live table, the
metrics) and the journal's events afterwards or from another shell (``from_journal``: ``status --watch``,
the report). Both feeds give the same view of the same run.

Example::

    view = RunView.for_plan(plan, [w.name for w in plan.waves])
    view.step_started("gpu-01", "drain", "upgrade", now)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.planner import Plan, Wave
from orchestrator.ports import StepOutcome
from orchestrator.run.decide import Action, Finished, HostMoved, RunContext, RunState, RunStep, Straggler, WaveEnded
from orchestrator.run.records import JournalEvent
from orchestrator.run.states import OUT_OF_SERVICE, HostState

FAILED_STATES = frozenset({HostState.ROLLED_BACK.value, HostState.QUARANTINED.value})


@dataclass
class StepSpan:
    """One step on one host: when it ran, how it ended (``ok`` None while it runs)."""

    step: str
    phase: str
    start: datetime
    end: datetime | None = None
    ok: bool | None = None
    message: str = ""


@dataclass
class HostView:
    name: str
    wave: str
    pool: str = ""
    gpu: str = ""
    state: str = HostState.PENDING.value
    reason: str = ""
    since: datetime | None = None  # when it left pending
    until: datetime | None = None  # when it reached a final state
    steps: list[StepSpan] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    straggler: tuple[str, ...] = ()

    @property
    def current(self) -> StepSpan | None:
        return self.steps[-1] if self.steps and self.steps[-1].ok is None else None


@dataclass
class WaveView:
    name: str
    hosts: list[str]
    failure_budget: int = 0
    slot_limit: int = 0
    status: str = "pending"
    reason: str = ""


@dataclass
class RunView:
    """Everything the live table, the metrics and the report show; mutated only through its fold methods."""

    run_id: str = ""
    hosts: dict[str, HostView] = field(default_factory=dict)
    waves: dict[str, WaveView] = field(default_factory=dict)
    status: str = "running"
    reason: str = ""
    started: datetime | None = None
    last: datetime | None = None

    @classmethod
    def for_plan(cls, plan: Plan, waves: Iterable[Wave], parallel: int | None = None, run_id: str = "") -> RunView:
        """The run's waves (the plan's, or a rollback's own) with their hosts pending."""
        view = cls(run_id=run_id)
        pools = {p.name: p for p in plan.pools}
        index = {r.name: plan.classes[r.cls] for r in plan.rows}  # pool and GPU, without a view per host
        for wave in waves:
            by_pool = wave.hosts_by_pool or {index[h].pool: 1 for h in wave.hosts if h in index}
            free = sum(max(0, pools[p].max_unavailable - len(pools[p].out_of_service)) for p in by_pool if p in pools)
            limit = min(free or len(wave.hosts), parallel) if parallel else (free or len(wave.hosts))
            view.waves[wave.name] = WaveView(wave.name, list(wave.hosts), wave.failure_budget, limit)
            for name in wave.hosts:
                known = index.get(name)
                view.hosts[name] = HostView(name, wave.name, known.pool if known else "", known.gpu if known else "")
        return view

    # ---------------------------------------------------------------- the fold

    def _host(self, host: str, wave: str | None = None) -> HostView:
        if host not in self.hosts:  # a rollback run or a journal without its plan: learn hosts as they come
            self.hosts[host] = HostView(host, wave or "")
            if wave is not None:
                self.waves.setdefault(wave, WaveView(wave, [])).hosts.append(host)
        return self.hosts[host]

    def _tick(self, at: datetime) -> None:
        self.started = self.started or at
        self.last = at

    def moved(self, host: str, wave: str, state: str, reason: str, at: datetime) -> None:
        view = self._host(host, wave)
        self._tick(at)
        view.state, view.reason = state, reason
        if state != HostState.PENDING.value and view.since is None:
            view.since = at
        final = state in {HostState.DONE.value, HostState.SKIPPED.value} | FAILED_STATES
        view.until = at if final else None
        if self.waves.get(view.wave) and self.waves[view.wave].status == "pending":
            self.waves[view.wave].status = "running"

    def step_started(self, host: str, step: str, phase: str, at: datetime, wave: str | None = None) -> None:
        self._tick(at)
        self._host(host, wave).steps.append(StepSpan(step, phase, at))

    def step_ended(self, host: str, step: str, ok: bool, message: str, at: datetime,
                   figures: dict[str, float] | None = None) -> None:
        self._tick(at)
        view = self._host(host)
        span = next((s for s in reversed(view.steps) if s.step == step and s.ok is None), None)
        if span is None:
            span = StepSpan(step, "upgrade", at)
            view.steps.append(span)
        span.end, span.ok, span.message = at, ok, message
        view.figures.update(figures or {})

    def wave_ended(self, wave: str, status: str, reason: str) -> None:
        if wave in self.waves:
            self.waves[wave].status, self.waves[wave].reason = status, reason

    def straggled(self, host: str, reasons: tuple[str, ...]) -> None:
        self._host(host).straggler = reasons

    def finished(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason

    # ---------------------------------------------------------------- what people read

    def in_use(self, wave: str) -> int:
        """Slots held now in the wave's pools: this run's hosts out of service (a failed host keeps its slot)."""
        pools = {self.hosts[h].pool for h in self.waves[wave].hosts if h in self.hosts}
        out = {s.value for s in OUT_OF_SERVICE}
        return sum(1 for h in self.hosts.values() if h.state in out and (h.pool in pools or h.wave == wave))

    def failures(self, wave: str) -> int:
        return sum(1 for h in self.waves[wave].hosts if self.hosts[h].state in FAILED_STATES)

    def current_wave(self) -> str | None:
        """The wave that runs now (the last one that left pending), None before the first."""
        started = [w.name for w in self.waves.values() if w.status != "pending"]
        return started[-1] if started else None


# ---------------------------------------------------------------- feeds


def observe_start(view: RunView, ctx: RunContext, run_id: str, state: RunState) -> None:
    """A (possibly resumed) run starts: the replayed host states are where the view begins."""
    if not view.waves:
        fresh = RunView.for_plan(ctx.plan, ctx.waves, ctx.parallel, run_id)
        view.hosts, view.waves = fresh.hosts, fresh.waves
    view.run_id = run_id
    for name, run in state.hosts.items():
        host = view._host(name, run.wave)
        host.state, host.reason = run.state.value, run.reason
    for wave in state.waves:
        if wave.name in view.waves and wave.status in ("passed", "halted"):
            view.waves[wave.name].status = wave.status


def observe_action(view: RunView, action: Action, at: datetime) -> None:
    if isinstance(action, RunStep):
        view.step_started(action.host, action.step.id, action.phase, at, action.wave)
    elif isinstance(action, HostMoved):
        view.moved(action.host, action.wave, action.state.value, action.reason, at)
    elif isinstance(action, WaveEnded):
        view.wave_ended(action.wave, action.status, action.reason)
    elif isinstance(action, Straggler):
        view.straggled(action.host, action.reasons)
    elif isinstance(action, Finished):
        view.finished(action.status, action.reason)


def observe_result(view: RunView, action: RunStep, outcome: StepOutcome, at: datetime) -> None:
    view.step_ended(action.host, action.step.id, outcome.ok, outcome.message, at, _figures(outcome.data))


def _figures(data: dict[str, Any]) -> dict[str, float]:
    raw = data.get("figures") or {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def observe_event(view: RunView, event: JournalEvent) -> None:
    """Fold one journal event (kinds step_start, step_end, state, straggler, wave_end, run_end/run_finished)."""
    at = _at(event.at)
    data = event.data
    if event.kind == "step_start" and event.host and event.step:
        view.step_started(event.host, event.step, str(data.get("phase", "upgrade")), at, event.wave)
    elif event.kind == "step_end" and event.host and event.step:
        report = data.get("report") if isinstance(data.get("report"), dict) else {}
        view.step_ended(event.host, event.step, event.status == "successful", str(data.get("message", "")), at,
                        _figures(report or {}))
    elif event.kind == "state" and event.host:
        view.moved(event.host, event.wave or "", event.status or "", str(data.get("reason", "")), at)
    elif event.kind == "straggler" and event.host:
        view.straggled(event.host, tuple(str(r) for r in data.get("reasons", [])))
    elif event.kind == "wave_end" and event.wave:
        view.wave_ended(event.wave, event.status or "", str(data.get("reason", "")))
    elif event.kind == "run_finished":
        view.finished(event.status or "", str(data.get("reason", "")))
    else:
        view._tick(at)


def from_journal(events: Iterable[JournalEvent], plan: Plan | None = None, run_id: str = "") -> RunView:
    """The view of a run from its journaled events (with its plan, hosts know their pool, GPU and budget)."""
    events = list(events)
    waves: list[str] = []
    for event in events:
        if event.kind in ("run_waves", "run_resumed"):
            waves = [str(w) for w in event.data.get("waves", [])]
    chosen = [w for w in plan.waves if w.name in waves] if plan is not None else []
    view = RunView.for_plan(plan, chosen, run_id=run_id) if plan is not None else RunView(run_id=run_id)
    for event in events:
        observe_event(view, event)
    return view
