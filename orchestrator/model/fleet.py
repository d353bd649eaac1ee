"""Join the inventory (what we manage, where it sits) with facts (what is installed) into a Fleet."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.errors import FactsError
from orchestrator.model.facts import FactsSnapshot, HostFacts, PackageIndex
from orchestrator.model.gpus import GpuModel
from orchestrator.model.inventory import InventoryHost
from orchestrator.model.stack import Fleet, Host, HostPackages, PackageSource, SoftwareStack


@dataclass(frozen=True)
class FleetBuild:
    """The fleet of hosts whose facts are known, plus the hosts left out and why, plus disagreements."""

    fleet: Fleet
    unknown: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build_fleet(inventory: list[InventoryHost], snapshot: FactsSnapshot) -> FleetBuild:
    """Hosts with facts become :class:`Host`; unreachable or absent ones are listed in ``unknown``."""
    facts = snapshot.by_host()
    unreachable = {u.host: u.reason for u in snapshot.unreachable}
    hosts: list[Host] = []
    unknown: dict[str, str] = {}
    warnings: list[str] = []
    uncatalogued: dict[tuple[str, str, str], list[str]] = {}
    for inv in inventory:
        host_facts = facts.get(inv.name)
        if host_facts is None:
            unknown[inv.name] = unreachable.get(inv.name, "no facts for this host in the snapshot")
            continue
        gpu, count, why = _hardware(inv, host_facts, warnings)
        if gpu is None:
            unknown[inv.name] = why
            continue
        if not gpu.catalogued:
            uncatalogued.setdefault((gpu.name, gpu.architecture, str(gpu.compute_capability)), []).append(inv.name)
        index = host_facts.package_index
        source = _source(inv, index)
        if source is None:
            seen = index.source_evidence or f"package manager: {index.manager}"
            unknown[inv.name] = (f"package source not detected ({seen}); set upgrade_package_source to one of "
                                 f"{', '.join(s.value for s in PackageSource)}")
            continue
        packages = HostPackages(manager=index.manager, source=source, installed=host_facts.packages,
                                available={k: tuple(v) for k, v in host_facts.package_index.available.items()},
                                held=tuple(sorted(host_facts.held_packages)))
        hosts.append(_host(inv, gpu, count, host_facts.stack(), packages))
    for (name, arch, cc), names in sorted(uncatalogued.items()):  # one line per unknown model, not per host
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        warnings.append(f"GPU model {name!r} is not in the catalogue: planned as {arch} (compute capability {cc}, "
                        f"as the host reports) on {len(names)} host{'s' if len(names) != 1 else ''}: {shown}")
    return FleetBuild(fleet=Fleet(hosts=tuple(hosts)), unknown=unknown, warnings=warnings)


def _source(inv: InventoryHost, index: PackageIndex) -> PackageSource | None:
    """The inventory's ``upgrade_package_source`` wins over detection; snapshots written before the collector
    detected sources (no ``source`` key at all) were apt hosts on the Ubuntu archive or dnf hosts on NVIDIA's
    repository, the only sources it knew."""
    if inv.package_source is not None:
        return inv.package_source
    if index.source is not None:
        return PackageSource(index.source)
    if "source" not in index.model_fields_set:
        return {"apt": PackageSource.UBUNTU, "dnf": PackageSource.CUDA_DNF}.get(index.manager)
    return None


def inventory_only_fleet(inventory: list[InventoryHost]) -> Fleet:
    """A fleet from the inventory alone (stacks empty), for commands that need placement but not versions."""
    return Fleet(hosts=tuple(_host(i, i.gpu, i.gpu_count or 0, SoftwareStack()) for i in inventory if i.gpu))


def _hardware(inv: InventoryHost, facts: HostFacts, warnings: list[str]) -> tuple[GpuModel | None, int, str]:
    """(model, count, why not): nvidia-smi's catalogued model, else the inventory's, else the model the host
    describes (architecture, compute capability); a host with none of them is left out, with the reason."""
    try:
        observed = facts.gpu_model()
        problem = ""
    except FactsError as exc:
        observed, problem = None, str(exc).removeprefix(f"host {inv.name}: ")
    count = len(facts.gpus) if facts.gpus else (inv.gpu_count or 0)
    if facts.gpus and inv.gpu_count is not None and inv.gpu_count != len(facts.gpus):
        warnings.append(f"{inv.name}: inventory declares {inv.gpu_count} GPUs, nvidia-smi lists {len(facts.gpus)}")
    if inv.gpu is not None and (observed is None or not observed.catalogued):
        if facts.gpus:
            reported = facts.gpus[0].name
            warnings.append(f"{inv.name}: nvidia-smi reports {reported!r} (not in the catalogue); "
                            f"using the inventory's upgrade_model {inv.gpu}")
        return inv.gpu, count, ""
    if observed is not None:
        if inv.gpu and observed != inv.gpu:
            warnings.append(f"{inv.name}: inventory says upgrade_model {inv.gpu}, nvidia-smi reports {observed}; "
                            f"using {observed}")
        return observed, count, ""
    if problem:
        return None, count, problem
    if inv.gpu_declared:
        return None, count, (f"GPU model {inv.gpu_declared!r} (upgrade_model) is not in the catalogue and "
                             "nvidia-smi listed no GPU to describe it")
    return None, count, "GPU model unknown: no upgrade_model in the inventory and nvidia-smi listed no GPU"


def _host(inv: InventoryHost, gpu: GpuModel | None, count: int, stack: SoftwareStack,
          packages: HostPackages | None = None) -> Host:
    return Host(
        name=inv.name, connection=inv.connection, pool=inv.pool, domains=inv.domains, scheduler=inv.scheduler,
        gpu=gpu, gpu_count=count, nvswitch=inv.nvswitch, stack=stack, packages=packages or HostPackages(),
        cordoned_by_hand=inv.cordoned_by_hand, cordon_reason=inv.cordon_reason,
    )
