"""Load an inventory through Ansible's own parser and map every managed host onto the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.adapters.ansible import list_inventory
from orchestrator.errors import InventoryError
from orchestrator.inventory_files import check_inventory_files
from orchestrator.model.inventory import InventoryHost, host_from_vars, inventory_bool


def load_inventory(path: str | Path, limit: str | None = None) -> list[InventoryHost]:
    """Every managed host of the inventory (optionally an Ansible ``--limit`` pattern), sorted by name."""
    check_inventory_files(Path(path))
    data = list_inventory(path, limit=limit)
    meta = data.get("_meta")
    hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    if not isinstance(hostvars, dict):
        hostvars = {}
    groups = _groups_by_host(data)
    names = sorted(set(hostvars) | set(groups))
    hosts = []
    for name in names:
        variables = hostvars.get(name) or {}
        if not isinstance(variables, dict):
            raise InventoryError(f"{path}: host {name}", "its variables are not a mapping")
        if not inventory_bool(f"{path}: host {name}", variables, "gpu_managed", True):
            continue
        hosts.append(host_from_vars(str(path), name, variables, groups.get(name, [])))
    if not hosts:
        raise InventoryError(str(path), "no managed GPU hosts in the inventory" + (f" for --limit {limit!r}"
                                                                                   if limit else ""))
    return hosts


def _groups_by_host(data: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group, body in data.items():
        if group == "_meta" or not isinstance(body, dict) or not isinstance(body.get("hosts", []), list):
            continue
        for host in body.get("hosts", []):
            out.setdefault(str(host), []).append(group)
    return out
