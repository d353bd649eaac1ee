"""Live progress for people: a table per wave that redraws in place (rich Live) while apply or rollback runs,
the same table for ``upgrade status --watch`` from another shell, and one line per event where there is no
terminal (CI logs).

The table shows the wave that runs now: each host's state, its current step and how long it has been out,
the slots its pools have in use against their limit, and its failures against its budget; waves before it
are one line each, waves after it one line.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.app.apply import Refused
from orchestrator.app.view import (
    FAILED_STATES,
    HostView,
    RunView,
    from_journal,
    observe_action,
    observe_event,
    observe_result,
    observe_start,
)
from orchestrator.cli.output import err_console
from orchestrator.errors import UpgradeError
from orchestrator.planner import Plan, load_plan
from orchestrator.ports import JournalPort, StepOutcome
from orchestrator.run.decide import Action, RunContext, RunState, RunStep
from orchestrator.run.records import JournalEvent

STYLE = {"done": "green", "rolled_back": "yellow", "quarantined": "bold red", "skipped": "dim", "failed": "red",
         "rolling_back": "yellow", "passed": "green", "halted": "bold red"}
ROWS = 40  # hosts listed at most; the rest are counted


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _order(host: HostView) -> tuple[int, str]:
    """Busy hosts first, then failed ones, then finished, then waiting."""
    if host.state in ("pending",):
        return 3, host.name
    if host.state in ("done", "skipped"):
        return 2, host.name
    if host.state in FAILED_STATES:
        return 1, host.name
    return 0, host.name


def render_view(view: RunView, now: datetime) -> RenderableType:
    """The live picture of a run at ``now``."""
    parts: list[RenderableType] = []
    current = view.current_wave()
    title = Text(f"run {view.run_id or '(starting)'}: {view.status}", style="bold")
    if view.reason:
        title.append(f" ({view.reason})", style=STYLE.get(view.status, ""))
    parts.append(title)
    names = list(view.waves)
    for name in names:
        wave = view.waves[name]
        failed = f"failed {view.failures(name)} of {wave.failure_budget} allowed"
        if name != current:
            line = Text(f"wave {name}: ", style="bold") + Text(wave.status, style=STYLE.get(wave.status, ""))
            line.append(f"  {len(wave.hosts)} hosts, {failed}" + (f"  {wave.reason}" if wave.reason else ""))
            parts.append(line)
            continue
        slots = f"slots in use {view.in_use(name)} of {wave.slot_limit}"
        table = Table(title=Text(f"wave {name}: {wave.status}  {len(wave.hosts)} hosts, {slots}, {failed}",
                                 style="bold"), title_justify="left", expand=False)
        for column in ("host", "pool", "state", "step", "step time", "out for", "reason"):
            table.add_column(column, no_wrap=column != "reason")
        hosts = sorted((view.hosts[h] for h in wave.hosts if h in view.hosts), key=_order)
        for host in hosts[:ROWS]:
            step = host.current
            step_time = _duration((now - step.start).total_seconds()) if step else ""
            out_for = _duration(((host.until or now) - host.since).total_seconds()) if host.since else ""
            table.add_row(Text(host.name), Text(host.pool), Text(host.state, style=STYLE.get(host.state, "")),
                          Text(f"{step.step} ({step.phase})" if step else ""), Text(step_time), Text(out_for),
                          Text(host.reason))  # host text is data: never rich markup
        if len(hosts) > ROWS:
            rest = hosts[ROWS:]
            summary = ", ".join(f"{n} {s}" for s, n in sorted(_tally(rest).items()))
            table.add_row(Text(f"... {len(rest)} more"), Text(""), Text(summary), Text(""), Text(""), Text(""),
                          Text(""))
        parts.append(table)
    return Group(*parts)


def _tally(hosts: list[HostView]) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in hosts:
        out[h.state] = out.get(h.state, 0) + 1
    return out


class LiveTable:
    """A run observer that redraws the view twice a second on the terminal (stderr) while the run goes."""

    def __init__(self, console: Console | None = None) -> None:
        self.view = RunView()
        self.lock = threading.Lock()
        self.live = Live(get_renderable=self._render, console=console or err_console, refresh_per_second=2,
                         transient=False)

    def _render(self) -> RenderableType:
        with self.lock:  # nothing before the run starts: a refused apply leaves no table behind
            return render_view(self.view, datetime.now(UTC)) if self.view.run_id else Text("")

    def __enter__(self) -> LiveTable:
        self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.live.stop()

    def on_start(self, ctx: RunContext, run_id: str, state: RunState) -> None:
        with self.lock:
            self.view = RunView.for_plan(ctx.plan, ctx.waves, ctx.parallel, run_id)
            observe_start(self.view, ctx, run_id, state)

    def on_action(self, action: Action, at: datetime) -> None:
        with self.lock:
            observe_action(self.view, action, at)

    def on_result(self, action: RunStep, outcome: StepOutcome, at: datetime) -> None:
        with self.lock:
            observe_result(self.view, action, outcome, at)


def event_line(event: JournalEvent) -> Text | None:
    """One journal event as the line a CI log shows (the same words as apply's own progress lines)."""
    if event.kind == "state" and event.host:
        what = event.status or ""
        return Text(f"{event.host:<16} ", style="bold") + Text(what, style=STYLE.get(what, "")) + \
            Text(f"  {event.data.get('reason', '')}")
    if event.kind == "step_start" and event.host:
        return Text(f"{event.host:<16} ", style="bold") + Text(f"{event.step}  started")
    if event.kind == "wave_end" and event.wave:
        what = event.status or ""
        return Text(f"wave {event.wave}: ", style="bold") + Text(what, style=STYLE.get(what, "")) + \
            Text(f"  {event.data.get('reason', '')}")
    if event.kind == "run_finished":
        return Text("run finished: ", style="bold") + Text(event.status or "", style=STYLE.get(event.status or "", ""))
    return None


def _plan_of(plan_path: str) -> Plan | None:
    try:
        return load_plan(plan_path)
    except UpgradeError:  # moved or edited since: hosts are learned from the journal as they come
        return None


def follow(journal: JournalPort, run: str | None, interval: float, *, stop_after: float | None = None) -> str:
    """``upgrade status --watch``: fold the journal's new events every ``interval`` seconds until the run ends.

    On a terminal the live table redraws in place; elsewhere each event is one line. Returns the run's status.
    """
    started = time.monotonic()
    record = journal.run(run) if run else journal.latest_run()
    if record is None:
        raise Refused(["no runs to watch"])
    status = record.status
    history = journal.events(record.id)
    view = from_journal(history, _plan_of(record.plan_path), record.id)
    seen = history[-1].seq if history else 0
    live = Live(console=err_console, refresh_per_second=4, transient=False) if err_console.is_terminal else None
    if live is not None:
        live.start()
    try:
        new = history
        while True:
            if live is None:
                for event in new:
                    if (line := event_line(event)) is not None:
                        err_console.print(line)
            else:
                live.update(render_view(view, datetime.now(UTC)), refresh=True)
            if status != "running" or (stop_after is not None and time.monotonic() - started > stop_after):
                return status
            time.sleep(interval)
            status = journal.run(record.id).status  # read before the events: an ended run's events are all in
            new = journal.events(record.id, after=seen)
            for event in new:
                observe_event(view, event)
            seen = new[-1].seq if new else seen
    finally:
        if live is not None:
            live.stop()
