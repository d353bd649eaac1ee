"""The small ports between the use cases and the outside world; adapters implement them, tests fake them.

The run decisions (``run/decide.py``) need none of them: they are a pure function. The driver and the use cases
reach hosts, inventories, facts, the journal and the clock only through these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.inventory import InventoryHost
from orchestrator.planner.model import Step


@dataclass(frozen=True)
class StepOutcome:
    """One step's result: ok or not, why, whether the host was unreachable, and the data it reported."""

    ok: bool
    message: str = ""
    unreachable: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class HostActions(Protocol):
    """Runs one planned step on one host (Ansible in production, fakes in the decision tests)."""

    def run_step(self, host: str, step: Step) -> StepOutcome: ...


class InventorySource(Protocol):
    """The managed hosts of an inventory (Ansible's own parser in production)."""

    def __call__(self, path: str | Path, limit: str | None = None) -> list[InventoryHost]: ...


class FactSource(Protocol):
    """Live facts of the given hosts (the facts playbook in production)."""

    def __call__(self, inventory_path: str | Path, hosts: list[InventoryHost], *,
                 limit: str | None = None) -> FactsSnapshot: ...


Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
