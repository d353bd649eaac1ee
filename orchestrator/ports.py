"""The small ports between the use cases and the outside world; adapters implement them, tests fake them.

The run decisions (``run/decide.py``) need none of them: they are a pure function. The driver and the use cases
reach hosts, inventories, facts, the journal and the clock only through these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.inventory import InventoryHost, PoolGroups
from orchestrator.planner.model import Step
from orchestrator.run.records import HostRecord, JournalEvent, RunRecord
from orchestrator.run.states import HostState


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

    def __call__(self, path: str | Path, limit: str | None = None,
                 pools: PoolGroups | None = None) -> list[InventoryHost]: ...


class FactSource(Protocol):
    """Live facts of the given hosts (the facts playbook in production)."""

    def __call__(self, inventory_path: str | Path, hosts: list[InventoryHost], *,
                 limit: str | None = None) -> FactsSnapshot: ...


@dataclass(frozen=True)
class DrainEnds:
    """When each host's jobs are expected to end (inventory name -> aware time); hosts without one are absent.

    ``open_ended``: hosts running a job without an expected end (no time limit, suspended): busy, not free.
    ``ignored``: lines of the scheduler's answer that could not be read (left out, reported as one warning).
    """

    ends: dict[str, datetime]
    ignored: tuple[str, ...] = ()
    open_ended: tuple[str, ...] = ()


class DrainEndsSource(Protocol):
    """The expected job ends of the given hosts (one ``squeue`` in production); raises SchedulerError."""

    def __call__(self, hosts: Sequence[InventoryHost]) -> DrainEnds: ...


Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


class JournalPort(Protocol):
    """The run journal: runs, their events and host states, and per-host baselines (SQLite or PostgreSQL).

    Every write is one transaction: after a kill -9 the journal holds every event reported done and nothing
    half written. ``events`` come back in the order they were recorded.
    """

    def start_run(self, plan_hash: str, plan_path: str, run_id: str | None = None) -> str: ...
    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None: ...
    def run(self, run_id: str) -> RunRecord: ...
    def runs(self) -> list[RunRecord]: ...
    def latest_run(self, plan_hash: str | None = None) -> RunRecord | None: ...
    def record(self, run_id: str, kind: str, *, host: str | None = None, wave: str | None = None,
               step: str | None = None, status: str | None = None, rc: int | None = None,
               data: dict[str, Any] | None = None) -> int: ...
    def set_state(self, run_id: str, host: str, wave: str, new: HostState, reason: str, *,
                  stack_before: dict[str, Any] | None = None, force: bool = False) -> None: ...
    def host_states(self, run_id: str) -> dict[str, HostRecord]: ...
    def events(self, run_id: str, host: str | None = None, after: int = 0) -> list[JournalEvent]: ...
    def completed_steps(self, run_id: str, host: str) -> set[str]: ...
    def put_baseline(self, host: str, metric: str, value: float, run_id: str | None = None) -> None: ...
    def baselines(self, metric: str, exclude_run: str | None = None) -> dict[str, float]: ...
    def baseline(self, host: str, metric: str) -> float | None: ...
    def close(self) -> None: ...
    def __enter__(self) -> JournalPort: ...
    def __exit__(self, *exc: object) -> None: ...


class RunLockPort(Protocol):
    """Who may drive a run now: one holder per key; a holder that died is taken over (``stale_holder``)."""

    stale_holder: dict[str, Any] | None

    def acquire(self) -> RunLockPort: ...
    def release(self) -> None: ...
    def __enter__(self) -> RunLockPort: ...
    def __exit__(self, *exc: object) -> None: ...
