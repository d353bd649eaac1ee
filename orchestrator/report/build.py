"""What a finished (or running) run's report holds, read from the journal and, when it is still there, its plan.

The report is the journal told for people: per host its steps over time, its state and why, what changed on
it (the stack its precheck reported against the one its last verify reported; the plan's stacks where a
step reported none), per wave its gate figures against each host's baseline and the wave's median, and
every failure with its reason. Rendering lives in ``html`` and ``markdown``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.app.view import FAILED_STATES, RunView, StepSpan, from_journal
from orchestrator.model.stack import COMPONENTS
from orchestrator.planner import Plan
from orchestrator.planner.model import HostPlan
from orchestrator.ports import JournalPort
from orchestrator.run.decide import METRIC
from orchestrator.run.records import JournalEvent, RunRecord


@dataclass(frozen=True)
class Change:
    component: str
    before: str
    after: str
    source: str  # "reported" by the host's own steps, or "planned" where no step reported a stack


@dataclass(frozen=True)
class GateRow:
    host: str
    gpu: str
    value: float
    baseline: float | None  # from an earlier run
    median: float | None  # of the wave's hosts with the same GPU model
    straggler: tuple[str, ...]
    new_baseline: bool = False  # the host had none; this run's figure became its baseline


@dataclass
class HostReport:
    name: str
    wave: str
    pool: str
    gpu: str
    state: str
    reason: str
    steps: list[StepSpan]
    changes: list[Change]
    failed_steps: list[StepSpan]


@dataclass
class WaveReport:
    name: str
    status: str
    reason: str
    hosts: list[str]
    failure_budget: int
    failed: int
    gates: list[GateRow]
    ended: datetime | None


@dataclass
class Report:
    run: RunRecord
    plan: Plan | None
    waves: list[WaveReport]
    hosts: list[HostReport]
    start: datetime | None
    end: datetime | None
    metric: str = METRIC
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[HostReport]:
        return [h for h in self.hosts if h.state in FAILED_STATES or h.failed_steps]


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k} {v}" for k, v in value.items() if v is not None) or "-"
    return str(value)


def _reported_stacks(events: list[JournalEvent]) -> dict[str, list[dict[str, Any]]]:
    """Per host, the stacks its steps reported in this run in order (precheck first, the last verify last)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        report = e.data.get("report")
        if e.kind == "step_end" and e.host and isinstance(report, dict) and isinstance(report.get("stack"), dict):
            out.setdefault(e.host, []).append(report["stack"])
    return out


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None, source: str) -> list[Change]:
    if before is None or after is None:
        return []
    return [Change(c, _text(before.get(c)), _text(after.get(c)), source)
            for c in COMPONENTS if _text(before.get(c)) != _text(after.get(c))]


def _host_changes(reported: list[dict[str, Any]], known: HostPlan | None, state: str) -> list[Change]:
    if len(reported) > 1:
        return _changes(reported[0], reported[-1], "reported")
    if known is not None and state == "done" and known.target is not None:
        return _changes(known.current.model_dump(mode="json"), known.target.model_dump(mode="json"), "planned")
    return []


def _gates(view: RunView, wave: str, baselines: dict[str, float], new: set[str]) -> list[GateRow]:
    hosts = [view.hosts[h] for h in view.waves[wave].hosts if h in view.hosts and METRIC in view.hosts[h].figures]
    rows = []
    for h in sorted(hosts, key=lambda h: h.name):
        same = [o.figures[METRIC] for o in hosts if o.gpu == h.gpu]
        rows.append(GateRow(h.name, h.gpu, h.figures[METRIC], baselines.get(h.name),
                            statistics.median(same) if len(same) > 1 else None, h.straggler, h.name in new))
    return rows


def build_report(journal: JournalPort, run_id: str, plan: Plan | None) -> Report:
    """Everything the report shows about ``run_id``; ``plan`` (None when it is gone) adds pools, GPUs, budgets."""
    record = journal.run(run_id)
    events = journal.events(run_id)
    view = from_journal(events, plan, run_id)
    earlier = journal.baselines(METRIC, exclude_run=run_id)
    new = set(journal.baselines(METRIC)) - set(earlier)
    ends = {e.wave: datetime.fromisoformat(e.at) for e in events if e.kind == "wave_end" and e.wave}
    waves = [WaveReport(w.name, w.status, w.reason, list(w.hosts), w.failure_budget, view.failures(w.name),
                        _gates(view, w.name, earlier, new), ends.get(w.name)) for w in view.waves.values()]
    stacks = _reported_stacks(events)
    known = {h: plan.host(h) for w in view.waves.values() for h in w.hosts if plan.has_host(h)} if plan else {}
    hosts = []
    for wave in view.waves.values():
        for name in wave.hosts:
            h = view.hosts[name]
            hosts.append(HostReport(h.name, h.wave, h.pool, h.gpu, h.state, h.reason, h.steps,
                                    _host_changes(stacks.get(name, []), known.get(name), h.state),
                                    [s for s in h.steps if s.ok is False]))
    notes = [] if plan is not None else [f"the plan {record.plan_path} could not be read: pools, GPU models and "
                                         "budgets are missing"]
    start = datetime.fromisoformat(events[0].at) if events else None
    end = datetime.fromisoformat(events[-1].at) if events else None
    return Report(record, plan, waves, hosts, start, end, notes=notes)
