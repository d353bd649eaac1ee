"""What the journal gives back: runs, events and host states, as the SQLite and PostgreSQL journals both return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.run.states import HostState


class JournalEvent(BaseModel):
    """One journaled event of a run, in the order recorded (``seq``)."""

    model_config = ConfigDict(frozen=True)
    seq: int
    run_id: str
    at: str
    host: str | None
    wave: str | None
    kind: str
    step: str | None
    status: str | None
    rc: int | None
    data: dict[str, Any]


class HostRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    host: str
    wave: str
    state: HostState
    reason: str
    updated_at: str
    stack_before: dict[str, Any] | None


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    plan_hash: str
    plan_path: str
    started_at: str
    finished_at: str | None
    status: str
    summary: dict[str, Any] | None
