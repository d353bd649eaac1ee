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
from orchestrator.model.stack import (
    Connection,
    FailureDomains,
    PackageSource,
    SchedulerKind,
    SchedulerRef,
    StrictModel,
)

MAX_NAME = 253  # a DNS name's length; racks, pools and switches are names too
MAX_GPUS_PER_HOST = 1024

KNOWN_VARS = {
    "gpu_pool", "gpu_model", "gpu_count", "gpu_rack", "gpu_switch", "gpu_nvlink_domain", "gpu_nvswitch",
    "gpu_scheduler", "gpu_scheduler_node", "gpu_cordoned", "gpu_cordon_reason", "gpu_managed",
    "gpu_package_source",
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
    package_source: PackageSource | None = None


def host_from_vars(source: str, name: str, v: dict[str, Any], groups: list[str]) -> InventoryHost:
    """One host from its Ansible variables, every value type-checked: a list is no pool, 22.7 no port."""
    where = f"{source}: host {name}"
    unknown = sorted(k for k in v if k.startswith("gpu_") and k not in KNOWN_VARS)
    if unknown:
        raise InventoryError(where, f"unknown variable {unknown[0]} (known: {', '.join(sorted(KNOWN_VARS))})")
    pool = _name(where, v, "gpu_pool")
    if not pool:
        raise InventoryError(where, "no gpu_pool: set it as a host or group variable (or gpu_managed: false)")
    scheduler = _name(where, v, "gpu_scheduler") or "none"
    if scheduler not in {k.value for k in SchedulerKind}:
        raise InventoryError(where, f"gpu_scheduler: {scheduler!r} is not one of "
                                    f"{', '.join(k.value for k in SchedulerKind)}")
    kind = SchedulerKind(scheduler)
    pkg_source = _name(where, v, "gpu_package_source")
    if pkg_source and pkg_source not in {s.value for s in PackageSource}:
        raise InventoryError(where, f"gpu_package_source: {pkg_source!r} is not one of "
                                    f"{', '.join(s.value for s in PackageSource)}")
    node_name = _name(where, v, "gpu_scheduler_node")
    problem = check_node_name(node_name or name, kind.value)
    if problem:
        raise InventoryError(where, f"{'gpu_scheduler_node' if node_name else 'host name'}: {problem}")
    try:
        return InventoryHost(
            name=name,
            connection=Connection(
                address=_name(where, v, "ansible_host") or name,
                port=_number(where, v, "ansible_port", 22, 1, 65535),
                user=_name(where, v, "ansible_user"),
                private_key_file=(_name(where, v, "ansible_ssh_private_key_file")
                                  or _name(where, v, "ansible_private_key_file")),
            ),
            pool=pool,
            groups=tuple(sorted(groups)),
            domains=FailureDomains(
                rack=_name(where, v, "gpu_rack"),
                switch=_name(where, v, "gpu_switch"),
                nvlink_domain=_name(where, v, "gpu_nvlink_domain"),
            ),
            scheduler=SchedulerRef(kind=kind, node_name=node_name),
            gpu=_name(where, v, "gpu_model"),
            gpu_count=_number(where, v, "gpu_count", None, 0, MAX_GPUS_PER_HOST),
            nvswitch=inventory_bool(where, v, "gpu_nvswitch", False),
            cordoned_by_hand=inventory_bool(where, v, "gpu_cordoned", False),
            cordon_reason=_name(where, v, "gpu_cordon_reason"),
            package_source=PackageSource(pkg_source) if pkg_source else None,
        )
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        message = describe_validation(exc).removeprefix(f"{field}: ")
        raise InventoryError(where, f"{_VAR_OF_FIELD.get(field, field or 'value')}: {message}") from exc
    except InventoryError:
        raise
    except ValueError as exc:  # unknown GPU (InputError is a ValueError too)
        raise InventoryError(where, str(exc)) from exc


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(where: str, v: dict[str, Any], key: str) -> str | None:
    """A name (pool, rack, address...): text, or a whole number INI wrote bare; never a list, mapping or float."""
    value = v.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if len(value) > MAX_NAME or any(ord(c) < 32 for c in value):
            raise InventoryError(where, f"{key}: {_shown(value)} is not a name (too long or control characters)")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InventoryError(where, f"{key}: expected a name, got {type(value).__name__} {_shown(value)}")


def _number(where: str, v: dict[str, Any], key: str, default: int | None, low: int, high: int) -> Any:
    """A whole number within bounds: ``22`` or ``"22"``; never ``22.7``, ``true`` or ``[22]``."""
    value = v.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 10:
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise InventoryError(where, f"{key}: expected a whole number, got {type(value).__name__} {_shown(value)}")
    if not low <= value <= high:
        raise InventoryError(where, f"{key}: {value} is not between {low} and {high}")
    return value


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def inventory_bool(where: str, v: dict[str, Any], key: str, default: bool) -> bool:
    """Ansible's spellings of true and false (INI inventories give strings); anything else is an error."""
    value = v.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InventoryError(where, f"{key}: {_shown(value)} is not a boolean (true or false)")
