"""The edge around the pure planner: gather today's inputs (files, live facts), then plan from them.

``upgrade plan`` and ``upgrade apply`` (which re-gathers to refuse a stale plan) share this.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from orchestrator.adapters.facts import collect_live, load_snapshot
from orchestrator.adapters.inventory import load_inventory
from orchestrator.errors import SchedulerError
from orchestrator.knowledge import Knowledge, load_knowledge
from orchestrator.model.desired import DesiredState, load_desired
from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.fleet import FleetBuild, build_fleet
from orchestrator.model.inventory import InventoryHost, PoolGroups, deprecation_notice
from orchestrator.planner import Plan, UnknownHost, build_plan, fingerprints
from orchestrator.ports import DrainEndsSource, FactSource, InventorySource


def hosts_and_snapshot(inventory: Path, facts: Path, limit: str | None, pools: PoolGroups,
                       inventory_source: InventorySource = load_inventory
                       ) -> tuple[list[InventoryHost], FactsSnapshot]:
    """The inventory (Ansible parses it in a child process) and a stored snapshot, read at the same time: for
    10,000 hosts the snapshot takes about 3 s that would otherwise wait for Ansible's 6 s."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        snapshot = pool.submit(load_snapshot, facts)
        hosts = inventory_source(inventory, limit=limit, pools=pools)
        return hosts, snapshot.result()


@dataclass(frozen=True)
class Inputs:
    """Everything a plan is made from, as read today."""

    knowledge: Knowledge
    desired: DesiredState
    desired_name: str
    hosts: list[InventoryHost]
    snapshot: FactsSnapshot
    built: FleetBuild
    sources: dict[str, str]


def gather(target: Path, inventory: Path, *, facts: Path | None = None, limit: str | None = None,
           site: Path | None = None, pool_from_group: str | None = None,
           inventory_source: InventorySource = load_inventory, fact_source: FactSource = collect_live) -> Inputs:
    """Read the knowledge, desired state and inventory; facts from a snapshot, or live from the hosts.

    Pools come from each host's ``upgrade_pool``, else from its groups (``pool_from_group``, then the desired
    state's ``pool_groups``)."""
    knowledge = load_knowledge(site)
    desired = load_desired(target)
    pools = PoolGroups.parse(pool_from_group, desired.pool_groups)
    if facts is not None:
        hosts, snapshot = hosts_and_snapshot(inventory, facts, limit, pools, inventory_source)
    else:
        hosts = inventory_source(inventory, limit=limit, pools=pools)
        snapshot = fact_source(inventory, hosts, limit=limit)
    sources = {"desired": str(target), "inventory": str(inventory), **({"facts": str(facts)} if facts else {}),
               **({"site": str(site)} if site else {}),
               **({"pool_from_group": pool_from_group} if pool_from_group else {}),
               **({"limit": limit} if limit else {})}
    built = build_fleet(hosts, snapshot)
    notice = deprecation_notice(str(inventory), hosts)
    if notice:
        built = replace(built, warnings=[notice, *built.warnings])
    return Inputs(knowledge, desired, target.name, hosts, snapshot, built, sources)


def job_ends(source: DrainEndsSource,
             hosts: list[InventoryHost]) -> tuple[dict[str, datetime | None] | None, list[str]]:
    """When the jobs on each host are expected to end (None: a job without an end; idle hosts absent), asked
    once; the scheduler's failure is a warning and None (the canary chosen by name, as without it)."""
    try:
        found = source(hosts)
    except SchedulerError as exc:
        return None, [f"canary by job ends off: {exc}; the canary is chosen by name"]
    ends: dict[str, datetime | None] = {**found.ends, **{h: None for h in found.open_ended}}
    if not found.ignored:
        return ends, []
    return ends, [f"job ends: {len(found.ignored)} line(s) of the scheduler's answer not understood, left out "
                  f"(first: {found.ignored[0][:120]!r})"]


def plan_from(inputs: Inputs, now: datetime, *, exclude_invalid: bool = False,
              job_ends: dict[str, datetime | None] | None = None) -> Plan:
    """Run the pure planner on gathered inputs; raises PlanError with every reason when no plan exists.
    ``job_ends``: the scheduler's job ends, for the canary's choice (see ``build_plan``)."""
    pools = {h.name: h.pool for h in inputs.hosts}
    gpus = {h.name: (str(h.gpu or h.gpu_declared or "unknown"), h.gpu_count or 0) for h in inputs.hosts}
    unknown = [UnknownHost(n, pools[n], why, *gpus[n]) for n, why in sorted(inputs.built.unknown.items())]
    return build_plan(
        inputs.built.fleet, inputs.desired, None, inputs.knowledge, now, unknown=unknown,
        inputs=fingerprints(inputs.hosts, inputs.snapshot, inputs.desired, inputs.knowledge.version),
        desired_name=inputs.desired_name, exclude_invalid=exclude_invalid, sources=inputs.sources,
        job_ends=job_ends,
    )
