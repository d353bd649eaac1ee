"""`upgrade facts`: every host's GPU stack side by side per pool, drift highlighted, unreachable hosts named."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from orchestrator.adapters.facts import collect_live, collect_local
from orchestrator.adapters.inventory import load_inventory
from orchestrator.app.gather import hosts_and_snapshot
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, err_console, print_json
from orchestrator.cli.summary import DETAILS_HELP, per_host, sample
from orchestrator.errors import FactsError, InputError
from orchestrator.model.drift import PoolDrift, fleet_drift, value_of
from orchestrator.model.facts import FactsSnapshot, HostFacts, UnreachableHost
from orchestrator.model.inventory import InventoryHost, PoolGroups, deprecation_notice
from orchestrator.model.stack import SoftwareStack

COLUMNS = [("driver", "driver"), ("kernel_module", "module"), ("cuda", "CUDA"), ("cudnn", "cuDNN"),
           ("nccl", "NCCL"), ("fabric_manager", "fabric mgr"), ("dcgm", "DCGM"),
           ("container_toolkit", "ctk"), ("kernel", "kernel")]
PACKAGING = "module pkg"  # how the nvidia module reaches the kernels: precompiled, dkms, - (neither), ? (not reported)


@app.command("facts")
def facts(
    inventory: Path | None = typer.Option(None, "-i", "--inventory", help="Ansible inventory (file, dir or script)."),
    limit: str | None = typer.Option(None, "--limit", "-l", help="Ansible host pattern to restrict to."),
    pool_from_group: str | None = typer.Option(
        None, "--pool-from-group", help="Pools from inventory groups for hosts without upgrade_pool: group names "
        "or prefix* patterns, comma-separated (kube-node,slurm-node); hosts in none of them are not managed."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output", help="table for people, json for CI."),
    local: bool = typer.Option(False, "--local", help="Collect this machine's stack (run it on a GPU node)."),
    snapshot: Path | None = typer.Option(None, "--snapshot", help="Show a stored snapshot instead of asking hosts."),
    forks: int = typer.Option(20, "--forks", min=1, help="Hosts Ansible asks in parallel."),
    details: bool = typer.Option(False, "--details", help=DETAILS_HELP),
) -> None:
    """Show driver, CUDA, cuDNN, NCCL, fabric manager versions per host, grouped by pool, drift highlighted.

    Exit 0: every host answered and no pool is mixed; 1: drift, host problems or unreachable hosts; 2: bad input.
    """
    if local:
        host = collect_local()
        if output == OutputFormat.JSON:
            print_json(host.model_dump(mode="json"))
        else:
            _render_local(host)
        raise typer.Exit(int(Exit.WARNINGS if host.problems else Exit.OK))
    if inventory is None:
        raise InputError("upgrade facts", "give an inventory with -i (or --local for this machine)")
    pools = PoolGroups.parse(pool_from_group)
    stored: FactsSnapshot | None = None
    if snapshot is not None:
        hosts, stored = hosts_and_snapshot(inventory, snapshot, limit, pools)
    else:
        hosts = load_inventory(inventory, limit=limit, pools=pools)
    notice = deprecation_notice(str(inventory), hosts)
    if notice:
        err_console.print(Text(f"warning: {notice}", style="yellow"))
    snap = _restrict(stored, hosts) if stored is not None else _collect_with_progress(inventory, hosts, limit, forks)
    drift = fleet_drift(_stacks_by_pool(hosts, snap))
    if output == OutputFormat.JSON:
        data = snap.model_dump(mode="json")
        data["drift"] = [d.model_dump(mode="json") for d in drift if d.mixed]
        print_json(data)
    else:
        _render_fleet(hosts, snap, drift, per_host(details, len(hosts)))
    problems = snap.unreachable or any(h.problems for h in snap.hosts) or any(d.mixed for d in drift)
    raise typer.Exit(int(Exit.WARNINGS if problems else Exit.OK))


def _collect_with_progress(inventory: Path, hosts: list[InventoryHost], limit: str | None,
                           forks: int) -> FactsSnapshot:
    """Ask the hosts; on a terminal with more than one host, a progress bar on stderr counts them in."""
    if len(hosts) < 2 or not err_console.is_terminal:
        return collect_live(inventory, hosts, limit=limit, forks=forks)
    columns = (TextColumn("facts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[problems]}", markup=False))
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("facts", total=len(hosts), problems="")
        problems: list[str] = []

        def tell(host: str, outcome: str) -> None:
            if outcome != "ok":
                problems.append(f"{host} {outcome}")
            bar.update(task, advance=1, problems=", ".join(problems[-3:]))

        return collect_live(inventory, hosts, limit=limit, forks=forks, on_host=tell)


def _restrict(snap: FactsSnapshot, hosts: list[InventoryHost]) -> FactsSnapshot:
    """Keep the snapshot's records of the inventory's hosts; a host the snapshot lacks is reported, not hidden."""
    names = {h.name for h in hosts}
    known = {h.host for h in snap.hosts} | {u.host for u in snap.unreachable}
    missing = [UnreachableHost(host=n, reason="not in the facts snapshot") for n in sorted(names - known)]
    return snap.model_copy(update={  # the records are validated already: keep them, do not copy them
        "hosts": [h for h in snap.hosts if h.host in names],
        "unreachable": [u for u in snap.unreachable if u.host in names] + missing,
    })


def _stacks_by_pool(hosts: list[InventoryHost], snap: FactsSnapshot) -> dict[str, dict[str, SoftwareStack]]:
    facts = snap.by_host()
    pools: dict[str, dict[str, SoftwareStack]] = {}
    for host in hosts:
        if host.name in facts:
            pools.setdefault(host.pool, {})[host.name] = facts[host.name].stack()
    return pools


def _gpu_cell(inv: InventoryHost, host: HostFacts) -> str:
    try:
        model: object = host.gpu_model() or inv.gpu or inv.gpu_declared
    except FactsError:  # a model neither catalogued nor described by the host: show what nvidia-smi says
        model = host.gpus[0].name if host.gpus else inv.gpu_declared
    count = len(host.gpus) if host.gpus else inv.gpu_count
    if model is None:
        return "?"
    return f"{count}x {model}" if count else str(model)


def _render_fleet(hosts: list[InventoryHost], snap: FactsSnapshot, drift: list[PoolDrift], details: bool) -> None:
    if not details:
        _render_summary(hosts, snap, drift)
        return
    facts = snap.by_host()
    by_pool: dict[str, list[InventoryHost]] = {}
    for host in hosts:
        by_pool.setdefault(host.pool, []).append(host)
    drift_by_pool = {d.pool: d for d in drift}
    for pool in sorted(by_pool):
        pd = drift_by_pool.get(pool)
        off = {(c.component, h) for c in pd.mixed for h in c.off_majority} if pd else set()
        table = Table(title=f"pool {pool}", title_justify="left", show_lines=False)
        for header in ["host", "GPUs", *[label for _, label in COLUMNS], PACKAGING, "status"]:
            table.add_column(header, no_wrap=True)
        for inv in by_pool[pool]:
            record = facts.get(inv.name)
            if record is None:
                table.add_row(inv.name, str(inv.gpu or "?"), *["" for _ in COLUMNS], "",
                              Text("no facts", style="red"))
                continue
            stack = record.stack()
            cells = []
            for component, _ in COLUMNS:
                value = value_of(stack, component)
                drifting = (component, inv.name) in off
                cells.append(Text(value + ("*" if drifting else ""), style="bold yellow" if drifting else ""))
            status = Text(record.driver.status.value, style="green" if not record.problems else "red")
            if inv.cordoned_by_hand:
                status.append(f", cordoned by hand: {inv.cordon_reason or 'no reason given'}", style="magenta")
            table.add_row(inv.name, _gpu_cell(inv, record), *cells, Text(_packaging(record)), status)
        console.print(table)
        for inv in by_pool[pool]:  # snapshots of older collectors have none: their column says "?"
            if inv.name in facts and facts[inv.name].kernel_modules is not None:
                console.print(module_line(facts[inv.name]))
        if pd and pd.mixed:
            for c in pd.mixed:
                values = ", ".join(f"{v} on {n}" for v, n in c.values.items())
                console.print(Text(f"  drift: {c.component} is mixed ({values}); off majority: "
                                   f"{', '.join(c.off_majority)}", style="yellow"))
    for record in snap.hosts:
        for problem in record.problems:
            console.print(Text(f"{record.host}: {problem}", style="red"))
    for unreachable in snap.unreachable:
        console.print(Text(f"{unreachable.host}: {unreachable.reason}", style="red"))
    mixed_pools = [d.pool for d in drift if d.mixed]
    summary = (f"{len(hosts)} hosts in {len(by_pool)} pools: {len(snap.hosts)} reported, "
               f"{len(snap.unreachable)} unreachable; "
               + (f"drift in {', '.join(mixed_pools)}" if mixed_pools else "no drift")
               + (" (* = off the pool's majority)" if mixed_pools else ""))
    console.print(summary)


def _status(inv: InventoryHost, record: HostFacts | None) -> str:
    if record is None:
        return "no facts"
    return record.driver.status.value + (" (problems)" if record.problems else "") + (
        ", cordoned by hand" if inv.cordoned_by_hand else "")


def _render_summary(hosts: list[InventoryHost], snap: FactsSnapshot, drift: list[PoolDrift]) -> None:
    """Per pool one row per class of hosts alike (GPUs, versions, status), with a count and a few names."""
    facts = snap.by_host()
    drift_by_pool = {d.pool: d for d in drift}
    by_pool: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for inv in hosts:
        record = facts.get(inv.name)
        if record is None:
            key: tuple[str, ...] = ("?", *("" for _ in COLUMNS), "", _status(inv, None))
        else:
            stack = record.stack()
            key = (_gpu_cell(inv, record), *(value_of(stack, c) for c, _ in COLUMNS), _packaging(record),
                   _status(inv, record))
        by_pool.setdefault(inv.pool, {}).setdefault(key, []).append(inv.name)
    for pool in sorted(by_pool):
        pd = drift_by_pool.get(pool)
        majority = {c.component: c.majority for c in pd.mixed} if pd else {}
        classes = by_pool[pool]
        table = Table(title=f"pool {pool}: {sum(len(v) for v in classes.values())} hosts in {len(classes)} "
                      f"classes", title_justify="left")
        for header in ["hosts", "GPUs", *[label for _, label in COLUMNS], PACKAGING, "status", "e.g."]:
            table.add_column(header, no_wrap=header != "e.g.")
        for key, names in sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[1][0])):
            cells = []
            for (component, _), value in zip(COLUMNS, key[1:-2], strict=True):
                off = bool(value) and component in majority and value != majority[component]
                cells.append(Text(value + ("*" if off else ""), style="bold yellow" if off else ""))
            status = key[-1]
            style = "green" if status == "ok" else "magenta" if status.startswith("ok,") else "red"
            table.add_row(str(len(names)), Text(key[0]), *cells, Text(key[-2]), Text(status, style=style),
                          Text(sample(names)))
        console.print(table)
        for c in pd.mixed if pd else []:
            values = ", ".join(f"{v} on {n}" for v, n in c.values.items())
            console.print(Text(f"  drift: {c.component} is mixed ({values}); off majority: "
                               f"{sample(c.off_majority)}", style="yellow"))
    problems: dict[str, list[str]] = {}
    for record in snap.hosts:
        for problem in record.problems:
            problems.setdefault(problem, []).append(record.host)
    for problem, names in sorted(problems.items()):
        console.print(Text(f"{len(names)} host(s): {problem} ({sample(names)})", style="red"))
    if snap.unreachable:
        console.print(Text(f"{len(snap.unreachable)} host(s) unreachable or without facts: "
                           f"{sample([u.host for u in snap.unreachable])} (--details for the reasons)", style="red"))
    mixed_pools = [d.pool for d in drift if d.mixed]
    console.print(f"{len(hosts)} hosts in {len(by_pool)} pools: {len(snap.hosts)} reported, "
                  f"{len(snap.unreachable)} unreachable; "
                  + (f"drift in {', '.join(mixed_pools)} (* = off the pool's majority)" if mixed_pools
                     else "no drift") + "; --details for every host")


def _packaging(record: HostFacts) -> str:
    modules = record.kernel_modules
    return "?" if modules is None else modules.packaging or "-"


def _builds(kernels: dict[str, str]) -> str:
    return ", ".join(f"{kernel} {state or '?'}" for kernel, state in kernels.items())


def module_line(record: HostFacts) -> Text:
    """One line of a host's nvidia kernel module: packaging, each installed kernel's module, what DKMS built
    (plain text: the values are the host's, never markup)."""
    modules = record.kernel_modules
    if modules is None:
        return Text(f"  {record.host}: nvidia module not reported (facts from an older collector)")
    kernels = ", ".join(f"{k} {v or 'none'}" for k, v in modules.kernels.items()) or "none in /lib/modules"
    line = f"  {record.host}: nvidia module {modules.packaging or 'neither precompiled nor DKMS'}; kernels: {kernels}"
    if modules.dkms is not None:
        built = "; ".join(f"nvidia/{v} {_builds(k)}" for v, k in modules.dkms.items())
        line += f"; dkms: {built or 'nothing built'}"
    return Text(line)


def _render_local(host: HostFacts) -> None:
    stack = host.stack()
    table = Table(title=f"{host.host} ({host.os or 'unknown OS'})", title_justify="left", show_header=False)
    table.add_column("component")
    table.add_column("version")
    table.add_column("source")
    table.add_row("GPUs", ", ".join(f"{g.index}: {g.name}" for g in host.gpus) or "none visible", "nvidia-smi")
    table.add_row("driver", value_of(stack, "driver"), f"{host.driver.status} ({host.driver.flavor or '?'})")
    table.add_row("CUDA (driver API)", host.driver.cuda_driver_api or "-", "nvidia-smi")
    for name, label in COLUMNS[2:]:
        record = getattr(host, name, None)
        source = getattr(record, "source", None) or getattr(record, "missing", None) or ""
        table.add_row(label, value_of(stack, name), str(source))
    modules = host.kernel_modules
    if modules is not None:
        table.add_row("module packaging", modules.packaging or "neither precompiled nor DKMS", "installed packages")
        for kernel, version in modules.kernels.items():
            table.add_row(Text(f"nvidia.ko {kernel}"), Text(version or "none"), "/lib/modules")
        for version, kernels in (modules.dkms or {}).items():
            table.add_row(Text(f"DKMS nvidia/{version}"), Text(_builds(kernels)), "dkms status")
    console.print(table)
    for problem in host.problems:
        console.print(Text(problem, style="red"))
