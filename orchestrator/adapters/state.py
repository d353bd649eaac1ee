"""Where a run's state lives: a folder (SQLite journal + file lock, the default) or a PostgreSQL database.

``--state`` (or ``$UPGRADE_STATE``) takes either a folder or a ``postgresql://`` URL; ``--state-dir`` and
``$UPGRADE_STATE_DIR`` name a folder; the default is ``./.upgrade``. The use cases see only the journal and
lock ports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.adapters.journal import Journal
from orchestrator.adapters.journal_pg import PgJournal, PgRunLock, is_url, redact
from orchestrator.adapters.lock import RunLock
from orchestrator.ports import JournalPort, RunLockPort

STATE_ENV = "UPGRADE_STATE"
STATE_DIR_ENV = "UPGRADE_STATE_DIR"


@dataclass(frozen=True)
class StateStore:
    """A folder or a database URL, and how to open its journal and lock."""

    spec: str

    @property
    def database(self) -> bool:
        return is_url(self.spec)

    @property
    def where(self) -> str:
        return redact(self.spec) if self.database else str(Path(self.spec) / "journal.db")

    @property
    def local_dir(self) -> Path:
        """A private local folder for this controller's working files (ansible-runner's private data): the state
        folder itself, or ./.upgrade beside a database."""
        return Path(".upgrade") if self.database else Path(self.spec)

    def exists(self) -> bool:
        """Is there a journal to read (a database always may have one)?"""
        return self.database or (Path(self.spec) / "journal.db").exists()

    def journal(self) -> JournalPort:
        return PgJournal(self.spec) if self.database else Journal(Path(self.spec) / "journal.db")

    def lock(self, keys: Sequence[str], **info: Any) -> RunLockPort:
        """The run lock: per key (pool) in a database, one lock file per folder."""
        if self.database:
            return PgRunLock(self.spec, keys, **info)
        return RunLock(Path(self.spec) / "apply.lock", **info)


def state_store(override: str | Path | None = None) -> StateStore:
    """``override`` (a folder or a URL), else $UPGRADE_STATE, else $UPGRADE_STATE_DIR, else ./.upgrade."""
    if override is not None and str(override):
        return StateStore(str(override))
    return StateStore(os.environ.get(STATE_ENV) or os.environ.get(STATE_DIR_ENV) or ".upgrade")
