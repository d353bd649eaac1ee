"""`upgrade plan`: build the reviewed, hashed plan from inventory + facts + desired state, write it, show it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.adapters.drain_ends import SlurmDrainEnds
from orchestrator.adapters.files import write_atomic
from orchestrator.adapters.signing import load_key, sign, signature_path
from orchestrator.app.gather import gather, job_ends, plan_from
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, console, err_console
from orchestrator.cli.summary import DETAILS_HELP, per_host, sample
from orchestrator.errors import InputError
from orchestrator.planner import (
    HostClass,
    Plan,
    PlanError,
    plan_json,
    render_dot,
    render_mermaid,
)
from orchestrator.planner.model import Wave
from orchestrator.planner.waves import stage_sizes
from orchestrator.run.estimate import flow_makespan


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
    pool_from_group: str | None = typer.Option(
        None, "--pool-from-group", help="Pools from inventory groups for hosts without upgrade_pool: group names "
        "or prefix* patterns, comma-separated (kube-node,slurm-node); hosts in none of them are not managed."),
    site: Path | None = typer.Option(None, "--site", help="Site facts overriding the shipped knowledge."),
    exclude_invalid: bool = typer.Option(
        False, "--exclude-invalid", help="Leave hosts with an invalid target out (reported) instead of failing."
    ),
    now: str | None = typer.Option(None, "--now", help="Plan as of this ISO time (reproducible plans in CI)."),
    sign_key: str | None = typer.Option(
        None, "--sign", help="Sign the plan file (PLAN.sig) with this key: a file or env:NAME (ed25519 PEM or HMAC)."
    ),
    details: bool = typer.Option(False, "--details", help=DETAILS_HELP),
    canary_by_jobs: bool = typer.Option(
        False, "--canary-by-jobs", help="Choose each canary, after the spread over failure domains, among the Slurm "
        "hosts free soonest (one squeue now; idle first, jobs without a time limit last)."),
) -> None:
    """Plan the rollout: waves, per-host ordered steps, capacity lost, windows. Exit 0 plan made, 2 invalid."""
    when = _parse_now(now)
    key = load_key(sign_key) if sign_key else None
    inputs = gather(target, inventory, facts=snapshot, limit=limit, site=site, pool_from_group=pool_from_group)
    built = inputs.built
    ends, notes = job_ends(SlurmDrainEnds(), inputs.hosts) if canary_by_jobs else (None, [])
    for note in notes:
        err_console.print(Text(f"warning: {note}", style="yellow"))
    try:
        plan = plan_from(inputs, when, exclude_invalid=exclude_invalid, job_ends=ends)
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
        if per_host(details, len(plan.rows) + len(plan.excluded)):
            _render(plan)
        else:
            _render_summary(plan)
        signed = f", signed with {key.key_id}" if key is not None else ""
        console.print(f"plan written to {path} (hash {plan.plan_hash[:12]}{signed})")
    raise typer.Exit(int(Exit.OK))


def _wave_title(wave: Wave) -> str:
    return (f"{wave.name}: {len(wave.hosts)} hosts, {wave.gpus_out} GPUs out "
            f"({', '.join(f'{p} {n}' for p, n in wave.gpus_out_by_pool.items())}), ~{_minutes(wave.estimate_s)}"
            f" + soak {_minutes(wave.soak_s)}; {wave.earliest_start} -> {wave.end}"
            + (f" in window {wave.window}" if wave.window else "")
            + f"; may fail: {wave.failure_budget}")


def _changes(cls: HostClass) -> Text:
    return Text("\n".join(f"{s.component} {s.from_version or '-'} -> {s.to_version or '-'}"
                          + (f" ({s.package}={s.build})" if s.build else "") for s in cls.steps if s.component))


def _render_summary(plan: Plan) -> None:
    """The classes of hosts alike once (their changes, order, steps), then one row per wave saying which
    classes it moves and how many hosts of each; pools; warnings grouped by what they say."""
    members: dict[tuple[int, int], list[str]] = {}
    for row in plan.rows:
        if row.wave is not None:
            members.setdefault((row.wave, row.cls), []).append(row.name)
    moving = sorted({c for _, c in members})
    classes = Table(title=f"{len(moving)} classes of hosts alike move", title_justify="left")
    for header in ("class", "pool", "GPUs", "hosts", "current -> target", "order (groups)", "steps", "est."):
        classes.add_column(header, no_wrap=header != "current -> target")
    for c in moving:
        cls = plan.classes[c]
        count = sum(len(v) for (_, k), v in members.items() if k == c)
        classes.add_row(f"c{c}", Text(cls.pool), f"{cls.gpu_count}x {cls.gpu}", str(count), _changes(cls),
                        " | ".join(",".join(g) for g in cls.order), str(len(cls.steps)), _minutes(cls.estimate_s))
    console.print(classes)
    waves = Table(title="waves", title_justify="left")
    for header in ("wave", "hosts", "GPUs out", "start -> end", "window", "may fail", "classes (hosts)", "e.g."):
        waves.add_column(header, no_wrap=header not in ("classes (hosts)", "e.g."))
    for wave in plan.waves:
        mine = sorted((c, names) for (w, c), names in members.items() if w == wave.index)
        waves.add_row(wave.name, str(len(wave.hosts)), str(wave.gpus_out),
                      f"{wave.earliest_start} -> {wave.end} (~{_minutes(wave.estimate_s)} + soak "
                      f"{_minutes(wave.soak_s)})", wave.window or "-", str(wave.failure_budget),
                      ", ".join(f"c{c} x{len(names)}" for c, names in mine), Text(sample(list(wave.hosts), 2)))
    console.print(waves)
    _render_pools(plan, summary=True)
    if plan.noop:
        console.print(f"{len(plan.noop)} host(s) already at target (no-op): {sample(list(plan.noop))}")
    per_class: dict[int, int] = {}
    for row in plan.rows:
        per_class[row.cls] = per_class.get(row.cls, 0) + 1
    for c, cls in enumerate(plan.classes):
        for f in cls.findings:
            console.print(Text(f"{cls.pool}, {per_class.get(c, 0)} {cls.gpu} host(s) of one class: {f.severity} "
                               f"{f.rule}: {f.message}", style="yellow"))
    known = {r.name for r in plan.rows} | {e.host for e in plan.excluded}
    grouped: dict[str, list[str]] = {}
    for warning in plan.warnings:
        host, _, rest = warning.partition(": ")
        if host in known and rest:
            grouped.setdefault(rest, []).append(host)
        else:
            console.print(Text(f"warning: {warning}", style="yellow"))
    if len(grouped) > 20:  # reasons that name each host (addresses): group by kind of warning instead
        coarse: dict[str, list[str]] = {}
        for what, hosts in grouped.items():
            coarse.setdefault(what.split(": ", 1)[0] + ": ...", []).extend(hosts)
        grouped = coarse
    for what, hosts in sorted(grouped.items()):
        console.print(Text(f"warning: {len(hosts)} host(s): {what} ({sample(hosts)})", style="yellow"))
    console.print(f"{len(plan.waves)} waves, {sum(len(w.hosts) for w in plan.waves)} hosts in "
                  f"{len(plan.classes)} classes, {plan.start} -> {plan.end} (~{_minutes(plan.estimate_s)} from now); "
                  f"knowledge {plan.knowledge_version}; --details for every host")
    _flow_line(plan)


def _render(plan: Plan) -> None:
    for wave in plan.waves:
        table = Table(title=_wave_title(wave), title_justify="left")
        for header in ("host", "pool", "GPUs", "current -> target", "order (groups)", "steps", "est."):
            table.add_column(header, no_wrap=header != "current -> target")
        for name in wave.hosts:
            h = plan.host(name)
            changes = "\n".join(f"{s.component} {s.from_version or '-'} -> {s.to_version or '-'}"
                                + (f" ({s.package}={s.build})" if s.build else "")
                                for s in h.steps if s.component)
            order = " | ".join(",".join(g) for g in h.order)
            table.add_row(Text(name), Text(h.pool), f"{h.gpu_count}x {h.gpu}", Text(changes), order, str(len(h.steps)),
                          _minutes(h.estimate_s))
        console.print(table)
    _render_pools(plan, summary=False)
    for name in plan.noop:
        console.print(Text(f"{name}: already at target (no-op)"))
    for h in plan.hosts:
        for f in h.findings:
            console.print(Text(f"{h.name}: {f.severity} {f.rule}: {f.message}", style="yellow"))
    for warning in plan.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    console.print(f"{len(plan.waves)} waves, {sum(len(w.hosts) for w in plan.waves)} hosts, "
                  f"{plan.start} -> {plan.end} (~{_minutes(plan.estimate_s)} from now); "
                  f"knowledge {plan.knowledge_version}")
    _flow_line(plan)


FLOW_ESTIMATE_MAX_HOSTS = 200_000  # list scheduling takes about a second per 10,000 hosts


def _flow_line(plan: Plan) -> None:
    """How the canary was chosen, when job ends chose it; the schedule ``apply --flow`` follows and its
    estimated makespan, beside the waves' own."""
    if plan.canary_by and plan.waves and plan.waves[0].name == "canary":
        console.print(Text(f"canary ({', '.join(plan.waves[0].hosts[:5])}"
                           f"{', ...' if len(plan.waves[0].hosts) > 5 else ''}) chosen by {plan.canary_by}"))
    hosts = sum(len(w.hosts) for w in plan.waves)
    if not hosts or hosts > FLOW_ESTIMATE_MAX_HOSTS:
        return
    first = plan.waves[0]
    stages = _stages(plan)
    if not stages:  # the canary is the whole rollout: nothing flows after it
        return
    barriers = sum(w.estimate_s + w.soak_s for w in plan.waves) - plan.waves[-1].soak_s
    head = f"{first.name} ({len(first.hosts)} hosts) + soak {_minutes(first.soak_s)}, then " \
        if first.name == "canary" else ""
    console.print(f"flowing (apply --flow): {head}one sliding window per pool in stages of "
                  f"{', '.join(map(str, stages))} unproven hosts: ~{_minutes(flow_makespan(plan))} from "
                  f"its start (the waves above as barriers: ~{_minutes(barriers)})")


def _stages(plan: Plan) -> list[int]:
    canary = len(plan.waves[0].hosts) if plan.waves[0].name == "canary" else 0
    rest = sum(len(w.hosts) for w in plan.waves) - canary
    return stage_sizes(plan.policy, rest, canary)[:4]


def _render_pools(plan: Plan, summary: bool) -> None:
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
        out = list(p.out_of_service)
        gone = (f"{len(out)}: {sample(out, 3)}" if summary and len(out) > 3 else ", ".join(out)) or "-"
        pools.add_row(Text(p.name), str(p.hosts), str(p.upgrade), str(p.noop), str(p.excluded), Text(gone),
                      str(p.max_unavailable), Text("\n".join(mixed) or "never"))
    console.print(pools)
