"""`upgrade apply`, `upgrade status`, `upgrade rollback`: run a plan wave by wave, see and undo what ran.

Exit codes: 0 done; 1 hosts failed and were rolled back (within the failure budget); 2 refused or invalid
(tampered or stale plan, closed window, another apply running, no --yes without a terminal); 3 halted and
needs a person (failure budget exceeded, a host quarantined).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.adapters.drain_ends import SlurmDrainEnds
from orchestrator.adapters.extravars import extra_vars
from orchestrator.adapters.metrics import RunMetrics
from orchestrator.adapters.notify import Notifier
from orchestrator.adapters.signing import SignatureError, load_key, signature_path, verify
from orchestrator.adapters.state import state_store
from orchestrator.app.apply import ApplyResult, Refused, apply, finished_waves, rollback
from orchestrator.app.execute import Notify, RunObserver
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, err_console, print_json
from orchestrator.cli.plan_cmd import _parse_now
from orchestrator.cli.progress import LiveTable, follow
from orchestrator.loading import MAX_JSON_BYTES, read_text
from orchestrator.planner import Plan, parse_plan
from orchestrator.planner.errors import PlanFileError
from orchestrator.run.preflight import select_waves

STATE_HELP = ("Where the journal and the lock live: a folder or a postgresql:// URL (default $UPGRADE_STATE, "
              "$UPGRADE_STATE_DIR or ./.upgrade).")
EXTRA_HELP = ("KEY=VALUE or @FILE (YAML/JSON) for the playbooks (repeat); secrets go in a file or in "
              "UPGRADE_VAR_<name> environment variables, never on the command line.")
STYLE = {"done": "green", "rolled_back": "yellow", "quarantined": "bold red", "skipped": "dim", "failed": "red"}


def _progress(host: str, what: str, detail: str) -> None:
    """Live progress for people: one line per state change or step, on stderr so JSON stays clean."""
    style = STYLE.get(what, "")
    err_console.print(Text(f"{host:<16} ", style="bold") + Text(what, style=style) + Text(f"  {detail}"))


class Watching:
    """What follows a run besides the journal: the live table or progress lines, metrics, webhooks."""

    def __init__(self) -> None:
        self.observers: list[RunObserver] = []
        self.notify: Notify | None = None
        self.warnings: list[str] = []


@contextmanager
def watching(plan: Plan, output: OutputFormat, notify: list[str], metrics_port: int | None, metrics_addr: str,
             metrics_file: Path | None) -> Iterator[Watching]:
    """Set up the observers the options ask for; on the way out flush webhooks, write and stop metrics."""
    watch = Watching()
    with ExitStack() as stack:
        targets = [*notify, *plan.policy.notify]
        notifier = Notifier(targets) if targets else None
        metrics = RunMetrics(textfile=metrics_file) if metrics_port is not None or metrics_file else None
        if metrics is not None:
            if metrics_port is not None:
                port = metrics.serve(metrics_port, metrics_addr)
                err_console.print(Text(f"metrics on http://{metrics_addr}:{port}/metrics"))
            stack.callback(metrics.close)
            stack.callback(lambda: metrics.write() if metrics.view.run_id else None)  # not for a refused run
            watch.observers.append(metrics)
        if notifier is not None:
            watch.observers.append(notifier)
        if output == OutputFormat.TABLE and err_console.is_terminal:
            watch.observers.append(stack.enter_context(LiveTable()))
        elif output == OutputFormat.TABLE:
            watch.notify = _progress  # CI logs: one line per event
        try:
            yield watch
        finally:
            if notifier is not None:
                notifier.close()
                watch.warnings += [f"notification not delivered: {f}" for f in notifier.failures]


def _warn(watch: Watching, outcome: ApplyResult | None) -> None:
    for line in [*watch.warnings, *(outcome.observer_errors + outcome.warnings if outcome else [])]:
        err_console.print(Text("warning: ", style="yellow") + Text(line))


def _exit_code(outcome: ApplyResult) -> Exit:
    states = {s for _, s, _ in outcome.hosts.values()}
    if outcome.report.status == "halted" or "quarantined" in states:
        return Exit.HALTED
    if outcome.report.status == "rolled_back":
        return Exit.WARNINGS
    return Exit.OK


def _summary(outcome: ApplyResult) -> dict[str, Any]:
    return {
        "run": outcome.run_id, "status": outcome.report.status, "resumed": outcome.resumed,
        "reason": outcome.report.reason, "stale_lock_taken_over": outcome.stale_lock,
        "already_done": outcome.already_done,
        "waves": [{"name": w.name, "status": w.status, "failed": w.failed, "stragglers": w.stragglers,
                   "reason": w.reason} for w in outcome.report.waves],
        "hosts": {h: {"wave": w, "state": s, "reason": r} for h, (w, s, r) in sorted(outcome.hosts.items())},
        "exit_code": int(_exit_code(outcome)),
    }


def _render(outcome: ApplyResult) -> None:
    table = Table(title=f"run {outcome.run_id}: {outcome.report.status}", title_justify="left")
    for column in ("wave", "host", "state", "reason"):
        table.add_column(column)
    for host, (wave_name, state, reason) in sorted(outcome.hosts.items(), key=lambda kv: (kv[1][0], kv[0])):
        table.add_row(wave_name, host, Text(state, style=STYLE.get(state, "")), reason)
    console.print(table)
    for report in outcome.report.waves:
        line = f"{report.name}: {report.status}" + (f" ({report.reason})" if report.reason else "")
        console.print(Text(line, style="red" if report.status == "halted" else ""))
    if outcome.stale_lock:
        console.print(f"took over a stale lock left by {outcome.stale_lock}")


def _extra_vars(args: list[str]) -> dict[str, Any]:
    return extra_vars(args)


VERIFY_ENV = "UPGRADE_VERIFY_KEY"
NOTIFY_HELP = "POST JSON to this webhook (Slack or generic) on wave passed, rollback, quarantine, halt, done; repeat."
PORT_HELP = "Serve Prometheus metrics on this port while the run goes (0: any free port, printed)."
FILE_HELP = "Write Prometheus metrics here (node-exporter textfile format) after each wave and at the end (CI)."


def load_verified(plan_path: Path, verify_key: str | None) -> Plan:
    """Read the plan; with a key (``--verify`` or $UPGRADE_VERIFY_KEY) its signature must verify first."""
    text = read_text(plan_path, PlanFileError, "plan", limit=MAX_JSON_BYTES)
    spec = verify_key or (f"env:{VERIFY_ENV}" if os.environ.get(VERIFY_ENV) else None)
    if spec is not None:
        sig = signature_path(plan_path)
        if not sig.is_file():
            raise SignatureError(str(sig), "no signature file next to the plan (upgrade plan --sign KEY -o PLAN)")
        verify(text.encode("utf-8"), read_text(sig, SignatureError, "signature"), load_key(spec), str(sig))
    return parse_plan(text, str(plan_path))


def _dry_run(plan: Plan, wave: str, output: OutputFormat, state: str | None) -> None:
    """Every step apply would run for the selected waves, as the plan pins it; nothing is touched."""
    store = state_store(state)
    finished: set[str] = set()
    if store.exists():
        with store.journal() as journal:
            finished = finished_waves(journal, plan)
    try:
        waves = select_waves(plan, wave, finished)
    except ValueError as exc:
        raise Refused([str(exc)]) from None
    doc = {"plan": plan.plan_hash, "waves": [
        {"name": w.name, "failure_budget": w.failure_budget, "window": w.window, "hosts": [
            {"host": h, "steps": [{"id": s.id, "kind": s.kind.value, "playbook": s.playbook, "vars": s.vars,
                                   "package": s.package, "build": s.build} for s in plan.host(h).steps],
             "rollback": [{"id": s.id, "playbook": s.playbook, "vars": s.vars, "package": s.package,
                           "build": s.build} for s in plan.host(h).rollback]}
            for h in w.hosts]} for w in waves]}
    if output == OutputFormat.JSON:
        print_json(doc)
        return
    for w in waves:
        console.print(Text(f"{w.name}: {len(w.hosts)} hosts, may fail {w.failure_budget}", style="bold"))
        for h in w.hosts:
            console.print(Text(f"  {h}"))
            for s in plan.host(h).steps:
                what = s.playbook or "nothing to run"
                pin = f" {s.package}={s.build}" if s.build else ""
                variables = " ".join(f"{k}={v}" for k, v in sorted(s.vars.items()))
                console.print(Text(f"    {s.id:<22} {what}{pin}  {variables}"))
    console.print(Text("dry run: nothing was touched"))


def _confirm(yes: bool, what: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused([f"{what}: pass --yes to run without a terminal (CI)"])
    if not typer.confirm(f"{what}?", default=False):
        raise typer.Exit(int(Exit.INVALID))


@app.command("apply")
def apply_cmd(
    plan_path: Path = typer.Argument(..., help="Plan file written by `upgrade plan`."),
    wave: str = typer.Option("next", "--wave", help="canary, next, a wave name, or all."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (CI)."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output", help="table for people, json for CI."),
    inventory: Path | None = typer.Option(None, "-i", "--inventory", help="Override the plan's inventory."),
    ignore_window: bool = typer.Option(False, "--ignore-window", help="Run outside the maintenance windows."),
    resume: bool = typer.Option(False, "--resume", help="Say so explicitly; an interrupted run resumes anyway."),
    parallel: int | None = typer.Option(None, "--parallel", min=1, help="At most this many hosts at once."),
    flow: bool = typer.Option(False, "--flow", help="After the canary, one sliding window in the policy's stages "
                                                   "instead of wave barriers (README: flowing rollouts); Slurm hosts "
                                                   "whose jobs end soonest first (one squeue)."),
    share_window: float = typer.Option(0.0, "--share-window", min=0.0, max=60.0,
                                       help="Hosts reaching the same step within this many seconds share one "
                                            "ansible-playbook run (0: one run per host and step)."),
    state: str | None = typer.Option(None, "--state", "--state-dir", help=STATE_HELP),
    facts: Path | None = typer.Option(None, "--facts", help="Compare with this snapshot instead of asking hosts."),
    now: str | None = typer.Option(None, "--now", help="Judge the maintenance window as of this ISO time."),
    extra_var: list[str] = typer.Option([], "-e", "--extra-var", help=EXTRA_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every step, playbook and build; touch nothing."),
    verify_key: str | None = typer.Option(
        None, "--verify", help="Refuse unless PLAN.sig verifies with this key (a file or env:NAME)."
    ),
    notify: list[str] = typer.Option([], "--notify", help=NOTIFY_HELP),
    metrics_port: int | None = typer.Option(None, "--metrics-port", min=0, max=65535, help=PORT_HELP),
    metrics_addr: str = typer.Option("0.0.0.0", "--metrics-addr", help="Address the metrics endpoint listens on."),
    metrics_file: Path | None = typer.Option(None, "--metrics-file", help=FILE_HELP),
    measure_baselines: bool = typer.Option(
        False, "--measure-baselines",
        help="Before changing a host without a baseline, run the level-1 gate on it as it is (its baseline)."),
) -> None:
    """Run waves of a plan with gates, automatic rollback and a crash-safe journal."""
    when = _parse_now(now) if now else None
    plan = load_verified(plan_path, verify_key)
    extravars = _extra_vars(extra_var)
    if dry_run:
        _dry_run(plan, wave, output, state)
        raise typer.Exit(int(Exit.OK))
    outcome: ApplyResult | None = None
    try:
        _confirm(yes, f"apply wave {wave} of {plan_path}")
        with watching(plan, output, notify, metrics_port, metrics_addr, metrics_file) as watch:
            outcome = apply(plan, plan_path, wave, inventory=inventory, facts=facts, state=state,
                            ignore_window=ignore_window, now=when, extravars=extravars, notify=watch.notify,
                            parallel=parallel, observers=watch.observers, measure_before=measure_baselines,
                            flow=flow, drain_source=SlurmDrainEnds() if flow else None,
                            share_window_s=share_window)
        _warn(watch, outcome)
    except Refused as exc:
        for reason in exc.reasons:
            err_console.print(Text("refused: ", style="bold red") + Text(reason))
        raise typer.Exit(int(Exit.INVALID)) from None
    if outcome.already_done:
        err_console.print(Text(f"already done: {', '.join(outcome.already_done)} passed in an earlier run "
                               f"({outcome.run_id}); nothing to do"))
    elif resume and not outcome.resumed:
        err_console.print("nothing to resume: started a new run")
    if output == OutputFormat.JSON:
        print_json(_summary(outcome))
    else:
        _render(outcome)
    raise typer.Exit(int(_exit_code(outcome)))


@app.command("rollback")
def rollback_cmd(
    plan_path: Path = typer.Argument(..., help="The plan whose starting stack the hosts go back to."),
    host: list[str] = typer.Option([], "--host", help="A host (repeat for several)."),
    wave: str | None = typer.Option(None, "--wave", help="Every host of this wave."),
    all_hosts: bool = typer.Option(False, "--all", help="Every host the plan upgrades."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (CI)."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output"),
    inventory: Path | None = typer.Option(None, "-i", "--inventory", help="Override the plan's inventory."),
    state: str | None = typer.Option(None, "--state", "--state-dir", help=STATE_HELP),
    extra_var: list[str] = typer.Option([], "-e", "--extra-var", help=EXTRA_HELP),
    verify_key: str | None = typer.Option(None, "--verify", help="Refuse unless PLAN.sig verifies with this key."),
    notify: list[str] = typer.Option([], "--notify", help=NOTIFY_HELP),
    metrics_port: int | None = typer.Option(None, "--metrics-port", min=0, max=65535, help=PORT_HELP),
    metrics_addr: str = typer.Option("0.0.0.0", "--metrics-addr", help="Address the metrics endpoint listens on."),
    metrics_file: Path | None = typer.Option(None, "--metrics-file", help=FILE_HELP),
) -> None:
    """Roll hosts back by hand to the stack the plan started from (drain, downgrade, verify, uncordon)."""
    plan = load_verified(plan_path, verify_key)
    chosen = list(host)
    if wave:
        match = [w for w in plan.waves if w.name == wave]
        if not match:
            raise Refused([f"no wave {wave!r} in {plan_path}"])
        chosen += list(match[0].hosts)
    if all_hosts:
        chosen += [h.name for h in plan.hosts if h.action == "upgrade"]
    unknown = [h for h in chosen if h not in {p.name for p in plan.hosts}]
    if unknown or not chosen:
        raise Refused([f"{', '.join(unknown)}: not in {plan_path}" if unknown else "say --host, --wave or --all"])
    try:
        _confirm(yes, f"roll back {', '.join(sorted(set(chosen)))}")
        with watching(plan, output, notify, metrics_port, metrics_addr, metrics_file) as watch:
            outcome = rollback(plan, sorted(set(chosen)), inventory=inventory, state=state,
                               extravars=_extra_vars(extra_var), notify=watch.notify, observers=watch.observers)
        _warn(watch, outcome)
    except Refused as exc:
        for reason in exc.reasons:
            err_console.print(Text("refused: ", style="bold red") + Text(reason))
        raise typer.Exit(int(Exit.INVALID)) from None
    # a rollback asked for by hand that ends healthy is a success; a quarantined host needs a person
    code = Exit.HALTED if outcome.report.status == "halted" else Exit.OK
    summary = {**_summary(outcome), "exit_code": int(code)}
    if output == OutputFormat.JSON:
        print_json(summary)
    else:
        _render(outcome)
    raise typer.Exit(int(code))


@app.command("status")
def status_cmd(
    run: str | None = typer.Argument(None, help="Run id (default: the latest)."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output"),
    state: str | None = typer.Option(None, "--state", "--state-dir", help=STATE_HELP),
    watch: bool = typer.Option(False, "--watch", "-w", help="Follow the run live from the journal until it ends."),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="Seconds between looks at the journal (--watch)."),
) -> None:
    """Show a run per wave and host from the journal: state, reason, last step."""
    store = state_store(state)
    if not store.exists():
        raise Refused([f"{store.where}: no journal yet (nothing applied here)"])
    if watch:
        with store.journal() as watched:
            follow(watched, run, interval)
    with store.journal() as journal:
        record = journal.run(run) if run else journal.latest_run()
        if record is None:
            raise Refused([f"{store.where}: no runs"])
        hosts = journal.host_states(record.id)
        last: dict[str, str] = {}
        for event in journal.events(record.id):
            if event.host and event.kind in ("step_start", "step_end", "rollback_step"):
                last[event.host] = f"{event.step} {event.status or 'started'}"
    if output == OutputFormat.JSON:
        print_json({"run": record.model_dump(mode="json"),
                    "hosts": {h: {**r.model_dump(mode="json", exclude={"stack_before"}), "last_step": last.get(h)}
                              for h, r in hosts.items()}})
        return
    table = Table(title=f"run {record.id} ({record.status}, started {record.started_at})", title_justify="left")
    for column in ("wave", "host", "state", "last step", "reason"):
        table.add_column(column)
    for name, r in sorted(hosts.items(), key=lambda kv: (kv[1].wave, kv[0])):
        table.add_row(r.wave, name, Text(r.state.value, style=STYLE.get(r.state.value, "")), last.get(name, ""),
                      r.reason)
    console.print(table)
