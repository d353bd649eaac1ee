"""`upgrade compat` (will this stack work on this GPU?) and `upgrade check` (every host, now and target)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, err_console, print_json, styled
from orchestrator.cli.summary import DETAILS_HELP, per_host, sample
from orchestrator.knowledge import (
    CheckContext,
    Hardware,
    Knowledge,
    Severity,
    Violation,
    check,
    check_transition,
    load_knowledge,
    worst,
)
from orchestrator.model.desired import DesiredState
from orchestrator.model.gpus import resolve_gpu
from orchestrator.model.stack import Fleet, Host, KernelModuleFlavor, SoftwareStack

_SITE_FACTS_HELP = "Site facts file: adds or overrides shipped facts (docs/knowledge.md)."


def _exit_code(found: list[Violation]) -> int:
    w = worst(found)
    return int(Exit.INVALID if w is Severity.ERROR else Exit.WARNINGS if w else Exit.OK)


def _load(facts: Path | None) -> Knowledge:
    return _with_conflicts_shown(load_knowledge(facts))


def _with_conflicts_shown(k: Knowledge) -> Knowledge:
    for c in k.conflicts:
        err_console.print(styled("conflict: ", "yellow", c.describe()))
    return k


def _violation_json(v: Violation) -> dict[str, Any]:
    return v.model_dump(mode="json", exclude_none=True)


def _summary(result: dict[str, dict[str, Any]], missing: list[str], unknown: dict[str, str], target: Path) -> None:
    """One block of findings per class of hosts alike (pool, GPUs, stack), with how many and a few names."""
    classes: dict[int, list[str]] = {}
    entries: dict[int, dict[str, Any]] = {}
    for name, e in result.items():
        classes.setdefault(id(e), []).append(name)
        entries[id(e)] = e
    rows = []
    for ident, names in sorted(classes.items(), key=lambda kv: (entries[kv[0]]["pool"], kv[1][0])):
        e = entries[ident]
        label = f"{e['pool']}: {len(names)} host(s), e.g. {sample(names, 3)}"
        rows += [(f"{label} ({phase})", v) for phase in ("current", "target") for v in (e[phase] or [])]
    console.print(_table(rows, "hosts") if rows else Text("no findings", style="green"))
    for pool in missing:
        console.print(Text(f"pool {pool} has no target in {target}", style="yellow"))
    if unknown:
        console.print(Text(f"{len(unknown)} host(s) not checked (no facts): {sample(sorted(unknown))} "
                           f"(--details for the reasons)", style="yellow"))
    console.print(f"{len(result)} hosts checked in {len(classes)} classes of hosts alike; --details for every host")


def _table(rows: list[tuple[str, Violation]], first: str | None) -> Table:
    t = Table(show_lines=False)
    if first:
        t.add_column(first)
    for name in ("severity", "rule", "finding", "fix", "source"):
        t.add_column(name, overflow="fold")
    for label, v in rows:
        colour = "red" if v.severity is Severity.ERROR else "yellow"
        cells = [  # findings quote host and user text: data, never markup
            Text(str(v.severity), style=colour),
            Text(v.rule),
            Text(v.message + (" (unverified)" if v.unverified else "")),
            Text(v.fix or ""),
            Text(v.source),
        ]
        t.add_row(*([Text(label)] if first else []), *cells)
    return t


@app.command("compat")
def compat(
    gpu: str = typer.Option(
        ..., "--gpu", help="GPU model as people or nvidia-smi write it (H100, 'NVIDIA A100-SXM4-80GB')."
    ),
    driver: str = typer.Option(..., "--driver", help="Driver version, e.g. 580.95.05."),
    cuda: str | None = typer.Option(None, "--cuda", help="CUDA toolkit, e.g. 12.8 or 12.8.1."),
    cudnn: str | None = typer.Option(None, "--cudnn", help="cuDNN, e.g. 9.17.0."),
    nccl: str | None = typer.Option(None, "--nccl", help="NCCL, e.g. 2.21.5-1+cuda12.4."),
    fabric_manager: str | None = typer.Option(
        None, "--fabric-manager", help="Fabric manager version (NVSwitch)."
    ),
    nvswitch: bool | None = typer.Option(
        None,
        "--nvswitch/--no-nvswitch",
        help="NVSwitch system (default: yes when --fabric-manager is given).",
    ),
    kernel_module: KernelModuleFlavor | None = typer.Option(
        None, "--kernel-module", help="open or proprietary."
    ),
    cuda_compat: bool = typer.Option(
        False, "--cuda-compat", help="A cuda-compat forward-compatibility package is used."
    ),
    os_release: str | None = typer.Option(
        None, "--os", help="Host OS as /etc/os-release ID:VERSION_ID, e.g. ubuntu:22.04 or rhel:9.4."
    ),
    production: bool = typer.Option(False, "--production", help="Judge as a production pool."),
    site: Path | None = typer.Option(None, "--site", help=_SITE_FACTS_HELP),
    output: OutputFormat = typer.Option(
        OutputFormat.TABLE, "--output", help="table for people, json for CI."
    ),
) -> None:
    """Will this stack work on this GPU? Exit 0 clean, 1 warnings only, 2 any error.

    Every version may be given as its Debian/RPM package version (580.95.05-1, 3:580.95.05-1.el9).
    """
    k = _load(site)
    model = resolve_gpu(gpu)
    os_fields = None
    if os_release is not None:
        os_id, sep, os_version = os_release.partition(":")
        if not sep or not os_id or not os_version:
            raise typer.BadParameter(f"{os_release!r}: give ID:VERSION_ID, e.g. ubuntu:22.04", param_hint="--os")
        os_fields = {"id": os_id, "version_id": os_version}
    stack = SoftwareStack.model_validate(
        {
            "driver": driver,
            "cuda": cuda,
            "cudnn": cudnn,
            "nccl": nccl,
            "fabric_manager": fabric_manager,
            "kernel_module": kernel_module,
            "os": os_fields,
        }
    )
    hw = Hardware(model, nvswitch=nvswitch if nvswitch is not None else fabric_manager is not None)
    found = check(
        k, hw, stack, CheckContext(now=date.today(), production=production, cuda_compat=cuda_compat)
    )
    if output == OutputFormat.JSON:
        print_json(
            {
                "gpu": model.name,
                "architecture": model.architecture,
                "compute_capability": str(model.compute_capability),
                "stack": stack.model_dump(mode="json", exclude_none=True),
                "knowledge_version": k.version,
                "findings": [_violation_json(v) for v in found],
            }
        )
    else:
        console.print(
            f"{model.name} ({model.architecture}, cc {model.compute_capability}): {stack.describe()}"
        )
        if found:
            console.print(_table([("", v) for v in found], None))
        else:
            console.print(Text("no findings", style="green"))
    raise typer.Exit(_exit_code(found))


def check_fleet(k: Knowledge, fleet: Fleet, desired: DesiredState, today: date) -> dict[str, dict[str, Any]]:
    """Per host: findings on its current stack and on its target; workloads are judged on the target. Pure.

    Hosts alike (pool, hardware, stack) are judged once and share their entry.
    """
    out: dict[str, dict[str, Any]] = {}
    judged: dict[tuple[object, ...], dict[str, Any]] = {}
    for host in sorted(fleet.hosts, key=lambda h: h.name):
        key = (host.pool, host.gpu, host.gpu_count, host.nvswitch, host.stack)
        if key not in judged:
            judged[key] = _check_host(k, host, desired, today)
        out[host.name] = judged[key]
    return out


def _check_host(k: Knowledge, host: Host, desired: DesiredState, today: date) -> dict[str, Any]:
    """Findings of one host (and of every host alike): current stack, target stack, the move between."""
    pool = desired.pools.get(host.pool)
    ctx = CheckContext(
        now=today,
        pool=host.pool,
        production=pool.production if pool else False,
        workloads=pool.workloads if pool else (),
        cuda_compat=pool.cuda_compat if pool else False,
    )
    current = check(k, host, host.stack, replace(ctx, workloads=()))
    entry: dict[str, Any] = {"pool": host.pool, "current": current, "target": None, "target_stack": None}
    if pool is not None:
        after = pool.target.applied_to(host.stack)
        entry["target_stack"] = after
        entry["target"] = check(k, host, after, ctx)
        entry["transition"] = check_transition(k, host, host.stack, after, ctx)
    return entry


@app.command("check")
def check_cmd(
    target: Path = typer.Argument(..., help="Desired-state YAML (docs/desired-state.md)."),
    inventory: Path = typer.Option(..., "-i", "--inventory", help="Ansible inventory (file, dir or script)."),
    snapshot: Path | None = typer.Option(
        None, "--facts", "--snapshot", help="Facts snapshot (upgrade facts --output json) instead of asking hosts."
    ),
    limit: str | None = typer.Option(None, "--limit", "-l", help="Ansible host pattern to restrict to."),
    pool_from_group: str | None = typer.Option(
        None, "--pool-from-group", help="Pools from inventory groups for hosts without upgrade_pool: group names "
        "or prefix* patterns, comma-separated (kube-node,slurm-node); hosts in none of them are not managed."),
    site: Path | None = typer.Option(None, "--site", help=_SITE_FACTS_HELP),
    output: OutputFormat = typer.Option(
        OutputFormat.TABLE, "--output", help="table for people, json for CI."
    ),
    details: bool = typer.Option(False, "--details", help=DETAILS_HELP),
) -> None:
    """Check every host's current stack and its target stack. Exit 0 clean, 1 warnings only, 2 any error."""
    from orchestrator.app.gather import gather

    inputs = gather(target, inventory, facts=snapshot, limit=limit, site=site, pool_from_group=pool_from_group)
    k, desired, built = _with_conflicts_shown(inputs.knowledge), inputs.desired, inputs.built
    for warning in built.warnings:
        err_console.print(Text(f"warning: {warning}", style="yellow"))
    result = check_fleet(k, built.fleet, desired, date.today())
    missing = sorted({h.pool for h in built.fleet.hosts} - set(desired.pools))
    entries = {id(e): e for e in result.values()}.values()  # hosts alike share one entry
    everything = [v for e in entries for key in ("current", "target") for v in (e[key] or [])]
    if output == OutputFormat.JSON:
        print_json(
            {
                "knowledge_version": k.version,
                "pools_without_target": missing,
                "unknown_hosts": built.unknown,
                "hosts": {
                    name: {
                        "pool": e["pool"],
                        "target_stack": e["target_stack"].model_dump(mode="json", exclude_none=True)
                        if e["target_stack"]
                        else None,
                        "current": [_violation_json(v) for v in e["current"]],
                        "target": [_violation_json(v) for v in e["target"]]
                        if e["target"] is not None
                        else None,
                    }
                    for name, e in result.items()
                },
            }
        )
    elif per_host(details, len(result) + len(built.unknown)):
        rows = [
            (f"{name} ({phase})", v)
            for name, e in result.items()
            for phase in ("current", "target")
            for v in (e[phase] or [])
        ]
        console.print(_table(rows, "host") if rows else Text("no findings", style="green"))
        for pool in missing:
            console.print(Text(f"pool {pool} has no target in {target}", style="yellow"))
        for name, why in sorted(built.unknown.items()):
            console.print(Text(f"{name}: not checked ({why})", style="yellow"))
    else:
        _summary(result, missing, built.unknown, target)
    code = _exit_code(everything)
    if code == int(Exit.OK) and (missing or built.unknown):
        code = int(Exit.WARNINGS)
    raise typer.Exit(code)
