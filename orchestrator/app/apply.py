"""Apply and roll back a plan: refuse what must be refused, take the lock, open or resume a run, drive it.

Kept out of the CLI so tests and pipelines can drive it; the CLI only prints what it returns. Apply reads the
plan and acts; it re-gathers today's inputs only to refuse a stale plan, never to decide anything anew.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from orchestrator.adapters.host_actions import AnsibleActions, HostActions, SharedActions
from orchestrator.adapters.state import STATE_DIR_ENV, state_store
from orchestrator.app.baselines import measure_baselines
from orchestrator.app.execute import Driver, Notify, RunObserver
from orchestrator.app.gather import Inputs, gather
from orchestrator.errors import SchedulerError, UpgradeError
from orchestrator.model.inventory import InventoryHost
from orchestrator.planner import Plan, Wave
from orchestrator.planner.schedule import window_end
from orchestrator.ports import DrainEndsSource, JournalPort
from orchestrator.run.decide import METRIC, RunContext
from orchestrator.run.preflight import select_waves, stale_reasons, window_reason
from orchestrator.run.stragglers import STRAGGLER_METRICS

STATE_ENV = STATE_DIR_ENV
RunStatus = Literal["running", "done", "rolled_back", "halted"]


class Refused(UpgradeError):
    """apply will not start: every reason listed (stale plan, window, wave order, prompt needed)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(reasons)
        self.reasons = reasons

    def __str__(self) -> str:
        return "; ".join(self.reasons)


def state_dir(override: Path | None = None) -> Path:
    return override or Path(os.environ.get(STATE_ENV, ".upgrade"))


@dataclass
class WaveReport:
    name: str
    status: str
    failed: list[str] = field(default_factory=list)
    stragglers: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class RunReport:
    run_id: str
    status: RunStatus
    waves: list[WaveReport]
    reason: str = ""


@dataclass
class ApplyResult:
    run_id: str
    report: RunReport
    resumed: bool
    stale_lock: dict[str, Any] | None
    hosts: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # host -> (wave, state, reason)
    already_done: list[str] = field(default_factory=list)  # waves asked for that had passed before: no new run
    observer_errors: list[str] = field(default_factory=list)  # a display or receiver that broke (never fatal)
    warnings: list[str] = field(default_factory=list)  # something the run did without (never fatal)


def _inputs(plan: Plan, inventory: Path | None, facts: Path | None) -> Inputs:
    sources = plan.sources
    if "desired" not in sources or ("inventory" not in sources and inventory is None):
        raise Refused(["the plan does not say where its inputs are; plan again with this version of upgrade"])
    site = Path(sources["site"]) if "site" in sources else None
    # a plan made with --limit covers those hosts only: apply reads the inventory through the same limit
    return gather(Path(sources["desired"]), inventory or Path(sources["inventory"]), facts=facts, site=site,
                  pool_from_group=sources.get("pool_from_group"), limit=sources.get("limit"))


def _report(journal: JournalPort, run_id: str, status: RunStatus, reason: str) -> RunReport:
    waves = [WaveReport(e.wave or "", e.status or "", list(e.data.get("failed", [])),
                        list(e.data.get("stragglers", [])), str(e.data.get("reason", "")))
             for e in journal.events(run_id) if e.kind == "wave_end"]
    return RunReport(run_id, status, waves, reason)


def _drive(ctx: RunContext, journal: JournalPort, run_id: str, port: HostActions, notify: Notify | None,
           sleep: Callable[[float], None] | None, observers: Sequence[RunObserver]) -> tuple[RunReport, list[str]]:
    driver = Driver(ctx, journal, run_id, port, notify=notify, sleep=sleep or time.sleep, observers=observers)
    state = driver.run()
    status: RunStatus = "halted" if state.status == "running" else state.status
    journal.finish_run(run_id, status, {"waves": [w.name for w in ctx.waves], "reason": state.reason})
    return _report(journal, run_id, status, state.reason), driver.observer_errors


def apply(plan: Plan, plan_path: Path, wave_spec: str, *, inventory: Path | None = None, facts: Path | None = None,
          state: str | Path | None = None, ignore_window: bool = False, now: datetime | None = None,
          actions: HostActions | None = None, notify: Notify | None = None, parallel: int | None = None,
          extravars: dict[str, Any] | None = None, sleep: Callable[[float], None] | None = None,
          observers: Sequence[RunObserver] = (), measure_before: bool = False, flow: bool = False,
          drain_ends: dict[str, datetime] | None = None, drain_source: DrainEndsSource | None = None,
          share_window_s: float = 0.0) -> ApplyResult:
    """Run the selected waves of ``plan`` (resuming an interrupted run of the same plan).

    ``measure_before``: the hosts of the waves without a baseline run the level-1 gate first (app/baselines.py);
    ``flow``: after the canary, one sliding window in the policy's stages instead of wave barriers (run/flow.py);
    ``drain_ends``: when each host's jobs are expected to end, for the drain-aware order; or ``drain_source``,
    asked once for the selected hosts of a flowing run (adapters/drain_ends.py reads Slurm only); a source that
    fails turns the drain-aware order off with a warning, the planned order is used;
    ``share_window_s`` > 0: hosts reaching the same step within it share one playbook run.
    """
    store = state_store(state)
    with store.lock(_pools(plan), plan=plan.plan_hash[:12],
                    wave=wave_spec) as lock, store.journal() as journal:
        previous = journal.latest_run(plan.plan_hash)
        resumed = previous is not None and previous.status == "running"
        if resumed and previous is not None:
            chosen = _run_waves(journal, previous.id)
            waves = [w for w in plan.waves if w.name in chosen]
        else:
            finished = finished_waves(journal, plan)
            done = _already_done(plan, wave_spec, finished)
            if done:  # a repeated command (a retried CI job): reported, exit 0, no new run
                last = journal.latest_run(plan.plan_hash)
                report = RunReport(last.id if last else "", "done", [WaveReport(w, "passed") for w in done],
                                   "already done: " + ", ".join(done))
                hosts = {h: (w, "done", "already done") for w in done for h in _wave(plan, w).hosts}
                return ApplyResult(report.run_id, report, False, lock.stale_holder, hosts, already_done=done)
            try:
                waves = select_waves(plan, wave_spec, finished)
            except ValueError as exc:
                raise Refused([str(exc)]) from None
        inputs = _inputs(plan, inventory, facts)
        touched = {h for w in waves for h in w.hosts}
        reasons = stale_reasons(plan, inputs.hosts, inputs.snapshot, inputs.desired, inputs.knowledge.version,
                                touched)
        if resumed and previous is not None:  # hosts this run already changed differ from the plan by design
            mine = journal.host_states(previous.id)
            reasons = [r for r in reasons if r.split(":", 1)[0] not in mine]
        when = now or datetime.now(UTC)
        if not ignore_window:
            closed = window_reason(plan, waves[0], when)
            if closed:
                reasons.append(closed + " (--ignore-window to run anyway)")
        if reasons:
            raise Refused(reasons)
        if resumed and previous is not None:
            run_id = previous.id
            journal.record(run_id, "run_resumed", data={"waves": [w.name for w in waves]})
        else:
            run_id = journal.start_run(plan.plan_hash, str(plan_path))
            journal.record(run_id, "run_waves", data={"waves": [w.name for w in waves]})
        # the gates look for Xid errors in the kernel log since the run started (not since an older boot)
        gate_since = {"gate_since": int(when.timestamp())}
        port = actions or AnsibleActions(inventory or Path(plan.sources.get("inventory", "")),
                                         {**gate_since, **(extravars or {})}, state=store.local_dir)
        if share_window_s > 0 and isinstance(port, AnsibleActions):
            port = SharedActions(port, share_window_s)
        baselines = journal.baselines(METRIC, exclude_run=run_id)
        figure_baselines = {m: journal.baselines(m, exclude_run=run_id) for m in STRAGGLER_METRICS if m != METRIC}
        if measure_before:  # hosts not yet touched by this run and without any baseline: measured as they are
            started = set(journal.host_states(run_id))
            known = set(baselines).union(*figure_baselines.values())
            for host, figures in measure_baselines(port, journal, touched - started - known, parallel).items():
                for metric, value in figures.items():
                    (baselines if metric == METRIC else figure_baselines.setdefault(metric, {}))[host] = value
        if resumed and previous is not None:  # a resumed run keeps the model it started with
            flow = any(e.kind == "run_flow" for e in journal.events(run_id))
        warnings: list[str] = []
        if flow and drain_ends is None and drain_source is not None:
            drain_ends, warnings = read_drain_ends(drain_source, [h for h in inputs.hosts if h.name in touched])
        if flow and not resumed:
            journal.record(run_id, "run_flow", data={"drain_ends": len(drain_ends or {})})
        closes = None if ignore_window else window_end(when, plan.policy.windows)
        ctx = RunContext(plan, tuple(waves), baselines, parallel, ignore_window,
                         held_earlier=frozenset(quarantined_earlier(journal, plan, run_id)),
                         figure_baselines=figure_baselines, flow=flow, drain_ends=dict(drain_ends or {}),
                         window_end=closes)
        report, broken = _drive(ctx, journal, run_id, port, notify, sleep, observers)
        hosts = {h: (r.wave, r.state.value, r.reason) for h, r in journal.host_states(run_id).items()}
        return ApplyResult(run_id, report, resumed, lock.stale_holder, hosts, observer_errors=broken,
                           warnings=warnings)


def rollback(plan: Plan, hosts: list[str], *, inventory: Path | None = None, state: str | Path | None = None,
             actions: HostActions | None = None, notify: Notify | None = None,
             extravars: dict[str, Any] | None = None, parallel: int | None = 1,
             observers: Sequence[RunObserver] = ()) -> ApplyResult:
    """Roll the named hosts back to the plan's starting stack with the plan's rollback steps, in a run of their own."""
    store = state_store(state)
    missing = [h for h in hosts if not (plan.has_host(h) and plan.host(h).rollback)]
    if missing:
        raise Refused([f"{', '.join(missing)}: the plan has no rollback steps for it (not a host it upgrades)"])
    with store.lock(_pools(plan, hosts), plan=plan.plan_hash[:12], rollback=",".join(hosts)) as lock, \
            store.journal() as journal:
        run_id = journal.start_run(plan.plan_hash, "rollback")
        wave = Wave(index=0, name="rollback", hosts=tuple(hosts), hosts_by_pool={}, gpus_out=0, gpus_out_by_pool={},
                    estimate_s=0, soak_s=0, earliest_start="", end="", window_need_s=0, failure_budget=len(hosts))
        journal.record(run_id, "run_waves", data={"waves": ["rollback"]})
        port = actions or AnsibleActions(inventory or Path(plan.sources["inventory"]), extravars, state=store.local_dir)
        ctx = RunContext(plan, (wave,), {}, parallel, True, mode="rollback")
        report, broken = _drive(ctx, journal, run_id, port, notify, None, observers)
        states = journal.host_states(run_id)
        return ApplyResult(run_id, report, False, lock.stale_holder,
                           {h: (r.wave, r.state.value, r.reason) for h, r in states.items()},
                           observer_errors=broken)


def read_drain_ends(source: DrainEndsSource, hosts: list[InventoryHost]) -> tuple[dict[str, datetime], list[str]]:
    """Ask ``source`` once; its failure is a warning and no drain knowledge (the planned order), never a stop."""
    try:
        found = source(hosts)
    except SchedulerError as exc:
        return {}, [f"drain-aware order off: {exc}; the planned order is used"]
    if not found.ignored:
        return dict(found.ends), []
    first = found.ignored[0][:120]
    return dict(found.ends), [f"drain-aware order: {len(found.ignored)} line(s) of the scheduler's answer not "
                              f"understood, left out (first: {first!r})"]


def _pools(plan: Plan, hosts: list[str] | None = None) -> list[str]:
    """The lock keys of a run: the pools it may touch (the plan's moving hosts, or the hosts named);
    controllers of other pools run beside it."""
    if hosts is None:
        return sorted({plan.classes[r.cls].pool for r in plan.rows if r.wave is not None})
    return sorted({plan.host(h).pool for h in hosts if plan.has_host(h)})


def _wave(plan: Plan, name: str) -> Wave:
    return next(w for w in plan.waves if w.name == name)


def _already_done(plan: Plan, spec: str, finished: set[str]) -> list[str]:
    """The waves a command asks for when every one of them has passed already; empty when there is work."""
    names = [w.name for w in plan.waves]
    if spec in names:
        return [spec] if spec in finished else []
    if spec in ("next", "all") and names and all(n in finished for n in names):
        return names
    return []


def _run_waves(journal: JournalPort, run_id: str) -> list[str]:
    for event in journal.events(run_id):
        if event.kind == "run_waves":
            return [str(w) for w in event.data.get("waves", [])]
    return []


def quarantined_earlier(journal: JournalPort, plan: Plan, run_id: str) -> set[str]:
    """Hosts that earlier runs of this plan left quarantined (drained): they still count as out of service."""
    latest: dict[str, str] = {}
    for run in sorted(journal.runs(), key=lambda r: r.started_at):
        if run.plan_hash != plan.plan_hash or run.id == run_id:
            continue
        for host, record in journal.host_states(run.id).items():
            latest[host] = record.state.value
    return {h for h, s in latest.items() if s == "quarantined"}


def finished_waves(journal: JournalPort, plan: Plan) -> set[str]:
    """Waves that passed their gates in a run of this plan."""
    done: set[str] = set()
    for run in journal.runs():
        if run.plan_hash != plan.plan_hash:
            continue
        for event in journal.events(run.id):
            if event.kind == "wave_end" and event.status == "passed" and event.wave:
                done.add(event.wave)
    return done


__all__ = ["ApplyResult", "Refused", "apply", "finished_waves", "rollback", "state_dir"]
