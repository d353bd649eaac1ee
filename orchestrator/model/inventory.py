"""Inventory source: Ansible parses the inventory, this module maps its host and group vars onto the model.

Variable names are documented in ``docs/conventions.md``. Unknown ``gpu_*`` variables are errors, so a typo
(``gpu_rak``) cannot silently drop a host out of its failure domain.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from orchestrator.errors import InventoryError
from orchestrator.loading import describe_validation
from orchestrator.model.gpus import GpuModel
from orchestrator.model.grammar import check_node_name
from orchestrator.model.stack import Connection, FailureDomains, SchedulerKind, SchedulerRef, StrictModel

KNOWN_VARS = {
    "gpu_pool", "gpu_model", "gpu_count", "gpu_rack", "gpu_switch", "gpu_nvlink_domain", "gpu_nvswitch",
    "gpu_scheduler", "gpu_scheduler_node", "gpu_cordoned", "gpu_cordon_reason", "gpu_managed",
}


# Model field -> the inventory variable that feeds it, so errors name what the user wrote.
_VAR_OF_FIELD = {"gpu": "gpu_model", "nvswitch": "gpu_nvswitch", "connection.port": "ansible_port",
                 "connection.address": "ansible_host", "pool": "gpu_pool"}


class InventoryHost(StrictModel):
    """A host as the inventory declares it; hardware fields may be left to the facts."""

    name: str
    connection: Connection
    pool: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    domains: FailureDomains = FailureDomains()
    scheduler: SchedulerRef = SchedulerRef()
    gpu: GpuModel | None = None
    gpu_count: int | None = Field(default=None, ge=0)
    nvswitch: bool = False
    cordoned_by_hand: bool = False
    cordon_reason: str | None = None


def host_from_vars(source: str, name: str, v: dict[str, Any], groups: list[str]) -> InventoryHost:
    where = f"{source}: host {name}"
    unknown = sorted(k for k in v if k.startswith("gpu_") and k not in KNOWN_VARS)
    if unknown:
        raise InventoryError(where, f"unknown variable {unknown[0]} (known: {', '.join(sorted(KNOWN_VARS))})")
    if not v.get("gpu_pool"):
        raise InventoryError(where, "no gpu_pool: set it as a host or group variable (or gpu_managed: false)")
    try:
        kind = SchedulerKind(v.get("gpu_scheduler", "none"))
        node = _opt_str(v.get("gpu_scheduler_node")) or name
        problem = check_node_name(node, kind.value)
        if problem:
            var = "gpu_scheduler_node" if v.get("gpu_scheduler_node") else "host name"
            raise InventoryError(where, f"{var}: {problem}")
        return InventoryHost(
            name=name,
            connection=Connection(
                address=str(v.get("ansible_host", name)),
                port=int(v.get("ansible_port", 22)),
                user=v.get("ansible_user"),
                private_key_file=v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file"),
            ),
            pool=str(v["gpu_pool"]),
            groups=tuple(sorted(groups)),
            domains=FailureDomains(
                rack=_opt_str(v.get("gpu_rack")),
                switch=_opt_str(v.get("gpu_switch")),
                nvlink_domain=_opt_str(v.get("gpu_nvlink_domain")),
            ),
            scheduler=SchedulerRef(
                kind=SchedulerKind(v.get("gpu_scheduler", "none")),
                node_name=_opt_str(v.get("gpu_scheduler_node")),
            ),
            gpu=v.get("gpu_model"),
            gpu_count=v.get("gpu_count"),
            nvswitch=inventory_bool(v.get("gpu_nvswitch", False)),
            cordoned_by_hand=inventory_bool(v.get("gpu_cordoned", False)),
            cordon_reason=_opt_str(v.get("gpu_cordon_reason")),
        )
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        message = describe_validation(exc).removeprefix(f"{field}: ")
        raise InventoryError(where, f"{_VAR_OF_FIELD.get(field, field or 'value')}: {message}") from exc
    except ValueError as exc:  # SchedulerKind, int(), unknown GPU (InputError is a ValueError too)
        raise InventoryError(where, str(exc)) from exc


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def inventory_bool(value: Any) -> bool:
    """INI inventories give strings: accept Ansible's spellings of true and false."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0", ""}:
        return False
    raise ValueError(f"{value!r} is not a boolean")
