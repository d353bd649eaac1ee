"""One apply or rollback invocation: refuse what must be refused, take the lock, open or resume a run.

Kept out of the CLI so tests and pipelines can drive it; the CLI only prints what it returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.host_actions import AnsibleActions, HostActions
from orchestrator.adapters.journal import Journal
from orchestrator.adapters.lock import RunLock
from orchestrator.app.gather import Inputs, gather
from orchestrator.errors import UpgradeError
from orchestrator.knowledge import Hardware
from orchestrator.planner import Plan
from orchestrator.run.engine import Executor, RunReport, RunStatus, WaveReport
from orchestrator.run.hostrun import HostJob, HostRunner, Notify
from orchestrator.run.preflight import select_waves, stale_reasons, window_reason
from orchestrator.run.states import HostState

STATE_ENV = "UPGRADE_STATE_DIR"


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
class Outcome:
    run_id: str
    report: RunReport
    resumed: bool
    stale_lock: dict[str, Any] | None
    hosts: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # host -> (wave, state, reason)


def _inputs(plan: Plan, inventory: Path | None, facts: Path | None) -> Inputs:
    sources = plan.sources
    if "desired" not in sources or ("inventory" not in sources and inventory is None):
        raise Refused(["the plan does not say where its inputs are; plan again with this version of upgrade"])
    site = Path(sources["site"]) if "site" in sources else None
    return gather(Path(sources["desired"]), inventory or Path(sources["inventory"]), facts=facts, site=site)


def apply(plan: Plan, plan_path: Path, wave_spec: str, *, inventory: Path | None = None, facts: Path | None = None,
          state: Path | None = None, ignore_window: bool = False, now: datetime | None = None,
          actions: HostActions | None = None, notify: Notify | None = None, parallel: int | None = None,
          extravars: dict[str, str] | None = None) -> Outcome:
    """Run the selected waves of ``plan`` (resuming an interrupted run of the same plan)."""
    directory = state_dir(state)
    with RunLock(directory / "apply.lock", plan=plan.plan_hash[:12], wave=wave_spec) as lock, \
            Journal(directory / "journal.db") as journal:
        previous = journal.latest_run(plan.plan_hash)
        resumed = previous is not None and previous.status == "running"
        finished = _finished_waves(journal, plan)
        try:
            waves = select_waves(plan, wave_spec, finished)
        except ValueError as exc:
            raise Refused([str(exc)]) from None
        if not waves:
            raise Refused([f"every wave of the plan is finished ({', '.join(sorted(finished))})"])
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
        run_id = previous.id if resumed and previous is not None else journal.start_run(plan.plan_hash,
                                                                                         str(plan_path))
        if resumed:
            journal.record(run_id, "run_resumed", data={"waves": [w.name for w in waves]})
        fleet = {h.name: h for h in inputs.built.fleet.hosts}
        hardware = {h: Hardware.of(fleet[h]) for h in touched if h in fleet}
        if actions is None:
            connections = {h.name: h.connection for h in inputs.hosts}
            actions = AnsibleActions(Path(plan.sources.get("inventory", "")) if inventory is None else inventory,
                                     connections, extravars)
        runner = HostRunner(actions, journal, run_id, plan.policy, inputs.knowledge, notify)
        report = Executor(plan, runner, hardware, parallel=parallel).run(waves)
        journal.finish_run(run_id, report.status, {"waves": [w.name for w in report.waves], "reason": report.reason})
        hosts = {h: (r.wave, r.state.value, r.reason) for h, r in journal.host_states(run_id).items()}
        return Outcome(run_id, report, resumed, lock.stale_holder, hosts)


def rollback(plan: Plan, hosts: list[str], *, inventory: Path | None = None, state: Path | None = None,
             actions: HostActions | None = None, notify: Notify | None = None,
             extravars: dict[str, str] | None = None) -> Outcome:
    """Roll the named hosts back to the plan's starting stack, one at a time, in a run of their own."""
    directory = state_dir(state)
    with RunLock(directory / "apply.lock", plan=plan.plan_hash[:12], rollback=",".join(hosts)) as lock, \
            Journal(directory / "journal.db") as journal:
        inputs = _inputs(plan, inventory, None)
        run_id = journal.start_run(plan.plan_hash, "rollback")
        fleet = {h.name: h for h in inputs.built.fleet.hosts}
        if actions is None:
            actions = AnsibleActions(inventory or Path(plan.sources["inventory"]),
                                     {h.name: h.connection for h in inputs.hosts}, extravars)
        runner = HostRunner(actions, journal, run_id, plan.policy, inputs.knowledge, notify)
        for name in hosts:
            host = plan.host(name)
            runner.rollback(HostJob(host, host.wave or "rollback", Hardware.of(fleet[name])), "rollback by hand")
        states = journal.host_states(run_id)
        status: RunStatus = ("halted" if any(r.state == HostState.QUARANTINED for r in states.values())
                             else "rolled_back")
        report = RunReport(run_id, status, [WaveReport("rollback", "passed" if status != "halted" else "halted")])
        journal.finish_run(run_id, status, {"hosts": hosts})
        return Outcome(run_id, report, False, lock.stale_holder,
                       {h: (r.wave, r.state.value, r.reason) for h, r in states.items()})


def _finished_waves(journal: Journal, plan: Plan) -> set[str]:
    """Waves that passed their gates in a finished run of this plan."""
    done: set[str] = set()
    for run in journal.runs():
        if run.plan_hash != plan.plan_hash:
            continue
        for event in journal.events(run.id):
            if event.kind == "wave_end" and event.status == "passed" and event.wave:
                done.add(event.wave)
    return done


__all__ = ["Outcome", "Refused", "apply", "rollback", "state_dir"]
