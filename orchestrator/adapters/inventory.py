"""Load an inventory through Ansible's own parser and map every managed host onto the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.adapters.ansible import list_inventory
from orchestrator.errors import InventoryError
from orchestrator.inventory_files import check_inventory_files
from orchestrator.model.inventory import InventoryHost, PoolGroups, host_from_vars, is_managed


def load_inventory(path: str | Path, limit: str | None = None, pools: PoolGroups | None = None) -> list[InventoryHost]:
    """Every managed host of the inventory (optionally an Ansible ``--limit`` pattern), sorted by name.

    With ``pools`` (from ``--pool-from-group`` or the desired state), a host without ``upgrade_pool`` takes
    its pool from its groups, and a host in none of them is not a GPU host to manage (a login node)."""
    check_inventory_files(Path(path))
    data = list_inventory(path, limit=limit)
    meta = data.get("_meta")
    hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    if not isinstance(hostvars, dict):
        hostvars = {}
    groups = _listed_by(data, "hosts")
    parents = _listed_by(data, "children")
    names = sorted(set(hostvars) | set(groups))
    hosts = []
    for name in names:
        variables = hostvars.get(name) or {}
        if not isinstance(variables, dict):
            raise InventoryError(f"{path}: host {name}", "its variables are not a mapping")
        if not is_managed(f"{path}: host {name}", variables):
            continue
        own = groups.get(name, [])
        lineage = _with_ancestors(own, parents)
        if (pools is not None and pools.active and not variables.get("upgrade_pool")
                and not variables.get("gpu_pool") and pools.pool_of(lineage) is None):
            continue
        hosts.append(host_from_vars(str(path), name, variables, own, pools, lineage))
    if not hosts:
        where = (f" for --limit {limit!r}" if limit else "") + (
            f" in the groups {pools.describe()}" if pools is not None and pools.active else "")
        raise InventoryError(str(path), "no managed GPU hosts in the inventory" + where)
    return hosts


def _listed_by(data: dict[str, Any], key: str) -> dict[str, list[str]]:
    """Member -> the groups that list it under ``key``: ``hosts`` gives a host's own groups, ``children`` a
    group's parents (``k8s_cluster`` for ``kube_node``)."""
    out: dict[str, list[str]] = {}
    for group, body in data.items():
        if group == "_meta" or not isinstance(body, dict) or not isinstance(body.get(key, []), list):
            continue
        for member in body.get(key, []):
            out.setdefault(str(member), []).append(group)
    return out


def _with_ancestors(groups: list[str], parents: dict[str, list[str]]) -> list[str]:
    """A host's groups and every group above them, except Ansible's implicit ``all`` and ``ungrouped``."""
    seen: set[str] = set()
    todo = list(groups)
    while todo:
        group = todo.pop()
        if group in seen:
            continue
        seen.add(group)
        todo.extend(parents.get(group, []))
    return sorted(seen - {"all", "ungrouped"})
