"""Inventory source: Ansible parses the inventory, this module maps its host and group vars onto the model.

Variable names are documented in ``docs/conventions.md``. The project's variables live in the ``upgrade_``
namespace, which no other GPU tooling uses; the older ``gpu_*`` names are still read (with one deprecation
line per inventory), and every other ``gpu_*`` variable belongs to someone else (DeepOps sets
``gpu_clock_lock``) and is ignored. An ``upgrade_*`` name close to one of ours (``upgrade_rak``) is an error,
so a typo cannot silently drop a host out of its failure domain. Pools may also come from the inventory's
own groups (``PoolGroups``), so a DeepOps, Omnia or kubespray inventory plans without edits.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError

from orchestrator.errors import InventoryError
from orchestrator.loading import describe_validation
from orchestrator.model.gpus import GpuModel, find_gpu
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

PREFIX = "upgrade_"
# The project's inventory variables (new name) and the name each had before the ``upgrade_`` namespace.
LEGACY_NAMES = {
    "gpu_pool": "upgrade_pool", "gpu_model": "upgrade_model", "gpu_count": "upgrade_gpu_count",
    "gpu_rack": "upgrade_rack", "gpu_switch": "upgrade_switch", "gpu_nvlink_domain": "upgrade_nvlink_domain",
    "gpu_nvswitch": "upgrade_nvswitch", "gpu_scheduler": "upgrade_scheduler",
    "gpu_scheduler_node": "upgrade_scheduler_node", "gpu_cordoned": "upgrade_cordoned",
    "gpu_cordon_reason": "upgrade_cordon_reason", "gpu_managed": "upgrade_managed",
    "gpu_package_source": "upgrade_package_source",
}
KNOWN_VARS = frozenset(LEGACY_NAMES.values())


# Model field -> the inventory variable that feeds it, so errors name what the user wrote.
_VAR_OF_FIELD = {"gpu": "upgrade_model", "nvswitch": "upgrade_nvswitch", "connection.port": "ansible_port",
                 "connection.address": "ansible_host", "pool": "upgrade_pool"}


class PoolGroups(StrictModel):
    """Pools from inventory groups: ``--pool-from-group`` (names or ``prefix*`` patterns; the group's name is
    the pool's) and the desired state's ``pool_groups`` mapping (group -> pool). A host's own
    ``upgrade_pool`` wins; a host in none of the groups is not managed (a login or control-plane node)."""

    patterns: tuple[str, ...] = ()
    mapping: dict[str, str] = {}

    @classmethod
    def parse(cls, text: str | None, mapping: Mapping[str, str] | None = None) -> PoolGroups:
        """``"slurm-node,kube-node"`` or ``"pool_*"``; an empty item or a bad character is an InventoryError."""
        patterns: list[str] = []
        for item in (text or "").split(",") if text else []:
            item = item.strip()
            if not item or any(c.isspace() or ord(c) < 32 for c in item) or len(item) > MAX_NAME:
                raise InventoryError("--pool-from-group", f"{text!r}: expected group names or prefixes "
                                                          "(kube-node,slurm-node or pool_*), comma-separated")
            patterns.append(item)
        return cls(patterns=tuple(patterns), mapping=dict(mapping or {}))

    @property
    def active(self) -> bool:
        return bool(self.patterns or self.mapping)

    def pool_of(self, groups: Sequence[str]) -> str | None:
        """The first pattern (in the order given) that one of the host's groups matches; then the mapping."""
        for pattern in self.patterns:
            for group in sorted(groups):
                if group == pattern or ("*" in pattern and fnmatch.fnmatchcase(group, pattern)):
                    return group
        for group, pool in self.mapping.items():  # in the order written: the first group that fits wins
            if group in groups:
                return pool
        return None

    def describe(self) -> str:
        """The setting as one string, recorded in a plan's sources so apply re-reads the same pools."""
        return ",".join([*self.patterns, *(f"{g}={p}" for g, p in sorted(self.mapping.items()))])


class InventoryHost(StrictModel):
    """A host as the inventory declares it; hardware fields may be left to the facts."""

    name: str
    connection: Connection
    pool: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    domains: FailureDomains = FailureDomains()
    scheduler: SchedulerRef = SchedulerRef()
    gpu: GpuModel | None = None
    gpu_declared: str | None = Field(default=None, description="upgrade_model as written, catalogued or not")
    gpu_count: int | None = Field(default=None, ge=0)
    nvswitch: bool = False
    cordoned_by_hand: bool = False
    cordon_reason: str | None = None
    legacy_vars: tuple[str, ...] = Field(default=(), description="old gpu_* names this host's variables used")
    package_source: PackageSource | None = None


def project_vars(where: str, v: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The host's variables with every project variable under its ``upgrade_`` name, and the old ``gpu_*``
    names it used alone. Foreign ``gpu_*`` variables pass through untouched (nothing here reads them); an
    ``upgrade_*`` name one typo away from ours is an error; when both names are set the new one wins."""
    out = dict(v)
    legacy = []
    for old, new in LEGACY_NAMES.items():
        if old in v and new not in v:  # both set: a transition inventory feeding roles that read the old name
            legacy.append(old)
            out[new] = v[old]
    for key in v:
        if key.startswith(PREFIX) and key not in KNOWN_VARS:
            near = difflib.get_close_matches(key, KNOWN_VARS, n=1, cutoff=0.85)
            if near:
                raise InventoryError(where, f"unknown variable {key} (did you mean {near[0]}?)")
    return out, tuple(sorted(legacy))


def is_managed(where: str, v: Mapping[str, Any]) -> bool:
    """``upgrade_managed`` (or the old ``gpu_managed``); true unless said otherwise."""
    key = "upgrade_managed" if "upgrade_managed" in v else "gpu_managed"
    return inventory_bool(where, dict(v), key, True)


def host_from_vars(source: str, name: str, raw: dict[str, Any], groups: list[str],
                   pools: PoolGroups | None = None, lineage: Sequence[str] | None = None) -> InventoryHost:
    """One host from its Ansible variables, every value type-checked: a list is no pool, 22.7 no port.
    ``lineage`` (the host's groups and those above them) is where ``pools`` looks for the pool. An error
    names the variable as the inventory wrote it (``gpu_rack`` in an inventory not yet renamed)."""
    where = f"{source}: host {name}"
    try:
        return _host(where, name, raw, groups, pools, lineage)
    except InventoryError as exc:
        problem = exc.problem
        for old, new in LEGACY_NAMES.items():
            if old in raw and new not in raw and problem.startswith(f"{new}:"):
                problem = old + problem.removeprefix(new)
        if problem == exc.problem:
            raise
        raise InventoryError(exc.where, problem) from exc


def _host(where: str, name: str, raw: dict[str, Any], groups: list[str], pools: PoolGroups | None,
          lineage: Sequence[str] | None) -> InventoryHost:
    v, legacy = project_vars(where, raw)
    pool = _name(where, v, "upgrade_pool") or (pools.pool_of(lineage or groups) if pools else None)
    if not pool:
        hint = " (or --pool-from-group GROUP)" if not (pools and pools.active) else ""
        raise InventoryError(where, f"no upgrade_pool: set it as a host or group variable{hint} "
                                    "(or upgrade_managed: false)")
    scheduler = _name(where, v, "upgrade_scheduler") or "none"
    if scheduler not in {k.value for k in SchedulerKind}:
        raise InventoryError(where, f"upgrade_scheduler: {scheduler!r} is not one of "
                                    f"{', '.join(k.value for k in SchedulerKind)}")
    kind = SchedulerKind(scheduler)
    pkg_source = _name(where, v, "upgrade_package_source")
    if pkg_source and pkg_source not in {s.value for s in PackageSource}:
        raise InventoryError(where, f"upgrade_package_source: {pkg_source!r} is not one of "
                                    f"{', '.join(s.value for s in PackageSource)}")
    node_name = _name(where, v, "upgrade_scheduler_node")
    problem = check_node_name(node_name or name, kind.value)
    if problem:
        raise InventoryError(where, f"{'upgrade_scheduler_node' if node_name else 'host name'}: {problem}")
    declared = _name(where, v, "upgrade_model")
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
                rack=_name(where, v, "upgrade_rack"),
                switch=_name(where, v, "upgrade_switch"),
                nvlink_domain=_name(where, v, "upgrade_nvlink_domain"),
            ),
            scheduler=SchedulerRef(kind=kind, node_name=node_name),
            # A model the catalogue lacks is kept as written: the host's own facts describe it later.
            gpu=find_gpu(declared) if declared else None,
            gpu_declared=declared,
            gpu_count=_number(where, v, "upgrade_gpu_count", None, 0, MAX_GPUS_PER_HOST),
            nvswitch=inventory_bool(where, v, "upgrade_nvswitch", False),
            cordoned_by_hand=inventory_bool(where, v, "upgrade_cordoned", False),
            cordon_reason=_name(where, v, "upgrade_cordon_reason"),
            legacy_vars=legacy,
            package_source=PackageSource(pkg_source) if pkg_source else None,
        )
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        message = describe_validation(exc).removeprefix(f"{field}: ")
        raise InventoryError(where, f"{_VAR_OF_FIELD.get(field, field or 'value')}: {message}") from exc
    except InventoryError:
        raise
    except ValueError as exc:  # InputError is a ValueError too
        raise InventoryError(where, str(exc)) from exc


def deprecation_notice(source: str, hosts: Sequence[InventoryHost]) -> str | None:
    """One line for the whole inventory naming every old ``gpu_*`` name it still uses; None when none."""
    used = sorted({name for h in hosts for name in h.legacy_vars})
    if not used:
        return None
    renames = ", ".join(f"{old} -> {LEGACY_NAMES[old]}" for old in used)
    return f"{source}: deprecated variable names (still read, rename them): {renames}"


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
