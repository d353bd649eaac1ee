"""`upgrade plan`: build the reviewed, hashed plan from inventory + facts + desired state, write it, show it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.adapters.files import write_atomic
from orchestrator.adapters.signing import load_key, sign, signature_path
from orchestrator.app.gather import gather, plan_from
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, console, err_console
from orchestrator.errors import InputError
from orchestrator.planner import (
    Plan,
    PlanError,
    plan_json,
    render_dot,
    render_mermaid,
)


class PlanOutput(StrEnum):
    TABLE = "table"
    JSON = "json"
    DOT = "dot"
    MERMAID = "mermaid"


def _minutes(seconds: int) -> str:
    h, m = divmod(round(seconds / 60), 60)
    return f"{h}h{m:02d}m" if h else f"{m}m"


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError("--now", f"{text!r} is not an ISO 8601 time (2026-12-01T09:00:00+00:00)") from exc
    if not 2000 <= value.year <= 2999:  # every date the planner computes from it stays representable
        raise InputError("--now", f"{text!r} is not a time between the years 2000 and 2999")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("plan")
def plan_cmd(
    target: Path = typer.Argument(..., help="Desired state + rollout policy YAML (docs/desired-state.md)."),
    inventory: Path = typer.Option(..., "-i", "--inventory", help="Ansible inventory (file, dir or script)."),
    snapshot: Path | None = typer.Option(
        None, "--facts", "--snapshot", help="Facts snapshot (upgrade facts --output json) instead of asking hosts."
    ),
    out: Path | None = typer.Option(None, "-o", "--out", help="Plan file (default plans/<target>.plan.json)."),
    output: PlanOutput = typer.Option(PlanOutput.TABLE, "--output", help="table, json (CI), dot or mermaid."),
    limit: str | None = typer.Option(None, "--limit", "-l", help="Ansible host pattern to restrict to."),
    site: Path | None = typer.Option(None, "--site", help="Site facts overriding the shipped knowledge."),
    exclude_invalid: bool = typer.Option(
        False, "--exclude-invalid", help="Leave hosts with an invalid target out (reported) instead of failing."
    ),
    now: str | None = typer.Option(None, "--now", help="Plan as of this ISO time (reproducible plans in CI)."),
    sign_key: str | None = typer.Option(
        None, "--sign", help="Sign the plan file (PLAN.sig) with this key: a file or env:NAME (ed25519 PEM or HMAC)."
    ),
) -> None:
    """Plan the rollout: waves, per-host ordered steps, capacity lost, windows. Exit 0 plan made, 2 invalid."""
    when = _parse_now(now)
    key = load_key(sign_key) if sign_key else None
    inputs = gather(target, inventory, facts=snapshot, limit=limit, site=site)
    built = inputs.built
    try:
        plan = plan_from(inputs, when, exclude_invalid=exclude_invalid)
    except PlanError as exc:
        for reason in exc.reasons:
            err_console.print(Text("error: ", style="bold red") + Text(reason))
        err_console.print(f"no plan made: {len(exc.reasons)} reason(s)")
        raise typer.Exit(int(Exit.INVALID)) from None
    except OverflowError:
        raise InputError(str(target), "policy: the rollout would end after the year 9999 (soak, estimates and "
                                      "windows over this many waves)") from None
    path = out or Path("plans") / f"{target.stem}.plan.json"
    text = plan_json(plan)
    write_atomic(path, text, InputError, "plan")
    if key is not None:
        write_atomic(signature_path(path), sign(text.encode("utf-8"), key), InputError, "signature")
    for warning in built.warnings:
        err_console.print(Text(f"warning: {warning}", style="yellow"))
    if output == PlanOutput.JSON:
        console.file.write(text)
    elif output == PlanOutput.DOT:
        console.file.write(render_dot(plan))
    elif output == PlanOutput.MERMAID:
        console.file.write(render_mermaid(plan))
    else:
        _render(plan)
        signed = f", signed with {key.key_id}" if key is not None else ""
        console.print(f"plan written to {path} (hash {plan.plan_hash[:12]}{signed})")
    raise typer.Exit(int(Exit.OK))


def _render(plan: Plan) -> None:
    for wave in plan.waves:
        title = (f"{wave.name}: {len(wave.hosts)} hosts, {wave.gpus_out} GPUs out "
                 f"({', '.join(f'{p} {n}' for p, n in wave.gpus_out_by_pool.items())}), ~{_minutes(wave.estimate_s)}"
                 f" + soak {_minutes(wave.soak_s)}; {wave.earliest_start} -> {wave.end}"
                 + (f" in window {wave.window}" if wave.window else "")
                 + f"; may fail: {wave.failure_budget}")
        table = Table(title=title, title_justify="left")
        for header in ("host", "pool", "GPUs", "current -> target", "order (groups)", "steps", "est."):
            table.add_column(header, no_wrap=header != "current -> target")
        for name in wave.hosts:
            h = plan.host(name)
            changes = "\n".join(f"{s.component} {s.from_version or '-'} -> {s.to_version or '-'}"
                                + (f" ({s.package}={s.build})" if s.build else "")
                                for s in h.steps if s.component)
            order = " | ".join(",".join(g) for g in h.order)
            table.add_row(name, h.pool, f"{h.gpu_count}x {h.gpu}", Text(changes), order, str(len(h.steps)),
                          _minutes(h.estimate_s))
        console.print(table)
    pools = Table(title="pools", title_justify="left")
    for header in ("pool", "hosts", "upgrade", "no-op", "excluded", "out of service", "max unavailable",
                   "mixed versions"):
        pools.add_column(header)
    for p in plan.pools:
        spans: dict[str, list[str]] = {}
        for iv in p.mixed:
            span = f"{iv.from_wave or 'before plan'} .. {iv.until_wave or 'after plan'}"
            length = f", {_minutes(iv.duration_s)}" if iv.duration_s is not None else ""
            rule = "" if iv.policy == "allow" else f" [{iv.policy}]"
            flag = "" if iv.within_policy else " (breaks policy)"
            spans.setdefault(f"{span}{length}{rule}{flag}", []).append(iv.component)
        mixed = [f"{', '.join(components)}: {span}" for span, components in spans.items()]
        pools.add_row(p.name, str(p.hosts), str(p.upgrade), str(p.noop), str(p.excluded),
                      ", ".join(p.out_of_service) or "-", str(p.max_unavailable), Text("\n".join(mixed) or "never"))
    console.print(pools)
    for name in plan.noop:
        console.print(f"{name}: already at target (no-op)")
    for h in plan.hosts:
        for f in h.findings:
            console.print(Text(f"{h.name}: {f.severity} {f.rule}: {f.message}", style="yellow"))
    for warning in plan.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    console.print(f"{len(plan.waves)} waves, {sum(len(w.hosts) for w in plan.waves)} hosts, "
                  f"{plan.start} -> {plan.end} (~{_minutes(plan.estimate_s)} from now); "
                  f"knowledge {plan.knowledge_version}")
