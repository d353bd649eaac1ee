"""Crash-safe journal of runs in SQLite: every event is one committed transaction (WAL, synchronous=FULL).

After ``kill -9`` at any moment the journal holds every event that was reported done and nothing half
written; a resumed run rebuilds each host's state from it. The clock is passed in so tests control time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.files import open_private, private_dir
from orchestrator.errors import UpgradeError
from orchestrator.run.records import HostRecord, JournalEvent, RunRecord
from orchestrator.run.states import HostState, transition

Event = JournalEvent  # the name the journal's callers know

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, plan_hash TEXT NOT NULL, plan_path TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, status TEXT NOT NULL, summary TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), at TEXT NOT NULL,
    host TEXT, wave TEXT, kind TEXT NOT NULL, step TEXT, status TEXT, rc INTEGER, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, host);
CREATE TABLE IF NOT EXISTS host_state (
    run_id TEXT NOT NULL REFERENCES runs(id), host TEXT NOT NULL, wave TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL, updated_at TEXT NOT NULL, stack_before TEXT, PRIMARY KEY (run_id, host)
);
CREATE TABLE IF NOT EXISTS baselines (
    host TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, at TEXT NOT NULL, run_id TEXT,
    PRIMARY KEY (host, metric)
);
"""


class JournalError(UpgradeError):
    """The journal file cannot be opened or holds something it should not."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Journal:
    """One SQLite file; safe to open from several processes (readers never block the writer in WAL).

    The embedded default of the journal port (``orchestrator.ports.JournalPort``); ``journal_pg`` is the other.
    """

    def __init__(self, path: str | Path, clock: Callable[[], str] = utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        private_dir(self.path.parent, JournalError)
        os.close(open_private(self.path, JournalError))  # 0600 before SQLite opens it; its -wal/-shm follow
        try:
            # hosts of a wave run in threads: one connection, serialised by a lock
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(str(self.path), f"not a usable journal ({exc})") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One event, one transaction: all of it lands on disk or none of it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise JournalError(str(self.path), f"not a usable journal ({exc})") from None

    @contextmanager
    def _rows(self, table: str) -> Iterator[None]:
        """Rows that do not read back (a hand-edited or damaged file) are one error naming the journal."""
        try:
            yield
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise JournalError(str(self.path), f"damaged {table} row ({problem})") from None

    # ---------------------------------------------------------------- runs

    def start_run(self, plan_hash: str, plan_path: str, run_id: str | None = None) -> str:
        run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        with self._tx() as db:
            db.execute("INSERT INTO runs (id, plan_hash, plan_path, started_at, status) VALUES (?, ?, ?, ?, ?)",
                       (run_id, plan_hash, plan_path, self.clock(), "running"))
            self._event(db, run_id, "run_started", data={"plan_hash": plan_hash, "plan_path": plan_path})
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                       (self.clock(), status, json.dumps(summary, sort_keys=True), run_id))
            self._event(db, run_id, "run_finished", status=status, data=summary)

    def run(self, run_id: str) -> RunRecord:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        row = rows[0] if rows else None
        if row is None:
            raise JournalError(str(self.path), f"no run {run_id!r}")
        with self._rows("runs"):
            return _run_record(row)

    def runs(self) -> list[RunRecord]:
        rows = self._query("SELECT * FROM runs ORDER BY started_at, id")
        with self._rows("runs"):
            return [_run_record(r) for r in rows]

    def latest_run(self, plan_hash: str | None = None) -> RunRecord | None:
        query = "SELECT * FROM runs"
        args: tuple[str, ...] = ()
        if plan_hash:
            query, args = query + " WHERE plan_hash = ?", (plan_hash,)
        rows = self._query(query + " ORDER BY started_at DESC, rowid DESC LIMIT 1", args)
        with self._rows("runs"):
            return _run_record(rows[0]) if rows else None

    # ---------------------------------------------------------------- events and host states

    def record(self, run_id: str, kind: str, *, host: str | None = None, wave: str | None = None,
               step: str | None = None, status: str | None = None, rc: int | None = None,
               data: dict[str, Any] | None = None) -> int:
        with self._tx() as db:
            return self._event(db, run_id, kind, host=host, wave=wave, step=step, status=status, rc=rc, data=data)

    def set_state(self, run_id: str, host: str, wave: str, new: HostState, reason: str, *,
                  stack_before: dict[str, Any] | None = None, force: bool = False) -> None:
        """Move a host to ``new`` (checked by the state machine unless ``force``) and log it, atomically."""
        with self._tx() as db:
            row = db.execute("SELECT state FROM host_state WHERE run_id = ? AND host = ?", (run_id, host)).fetchone()
            current = HostState(row[0]) if row else None
            if current is not None and not force:
                transition(host, current, new)
            now = self.clock()
            if row is None:
                db.execute("INSERT INTO host_state VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (run_id, host, wave, new.value, reason, now,
                            json.dumps(stack_before, sort_keys=True) if stack_before is not None else None))
            else:
                db.execute("UPDATE host_state SET state = ?, reason = ?, updated_at = ?, wave = ?,"
                           " stack_before = COALESCE(?, stack_before) WHERE run_id = ? AND host = ?",
                           (new.value, reason, now, wave,
                            json.dumps(stack_before, sort_keys=True) if stack_before is not None else None,
                            run_id, host))
            self._event(db, run_id, "state", host=host, wave=wave, status=new.value,
                        data={"from": current.value if current else None, "to": new.value, "reason": reason})

    def host_states(self, run_id: str) -> dict[str, HostRecord]:
        rows = self._query("SELECT host, wave, state, reason, updated_at, stack_before FROM host_state"
                           " WHERE run_id = ? ORDER BY host", (run_id,))
        with self._rows("host_state"):
            return {r[0]: HostRecord(host=r[0], wave=r[1], state=HostState(r[2]), reason=r[3], updated_at=r[4],
                                     stack_before=json.loads(r[5]) if r[5] else None) for r in rows}

    def events(self, run_id: str, host: str | None = None, after: int = 0) -> list[JournalEvent]:
        """The run's events in order (of one host; only those after sequence number ``after``: a watcher's poll)."""
        query = "SELECT * FROM events WHERE run_id = ? AND seq > ?"
        args: tuple[str | int, ...] = (run_id, after)
        if host is not None:
            query, args = query + " AND host = ?", (*args, host)
        rows = self._query(query + " ORDER BY seq", args)
        with self._rows("events"):
            return [JournalEvent(seq=r[0], run_id=r[1], at=r[2], host=r[3], wave=r[4], kind=r[5], step=r[6],
                                 status=r[7], rc=r[8], data=json.loads(r[9])) for r in rows]

    def completed_steps(self, run_id: str, host: str) -> set[str]:
        """Steps that finished successfully on a host: a resumed run does not repeat them."""
        rows = self._query("SELECT step FROM events WHERE run_id = ? AND host = ? AND kind = 'step_end'"
                           " AND status = 'successful'", (run_id, host))
        return {r[0] for r in rows}

    # ---------------------------------------------------------------- baselines (per-host health figures)

    def put_baseline(self, host: str, metric: str, value: float, run_id: str | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO baselines VALUES (?, ?, ?, ?, ?) ON CONFLICT(host, metric) DO UPDATE SET"
                       " value = excluded.value, at = excluded.at, run_id = excluded.run_id",
                       (host, metric, value, self.clock(), run_id))

    def baselines(self, metric: str, exclude_run: str | None = None) -> dict[str, float]:
        """Every host's baseline of ``metric``, leaving out those recorded by ``exclude_run`` (a resumed run)."""
        rows = self._query("SELECT host, value, run_id FROM baselines WHERE metric = ?", (metric,))
        return {r[0]: float(r[1]) for r in rows if exclude_run is None or r[2] != exclude_run}

    def baseline(self, host: str, metric: str) -> float | None:
        rows = self._query("SELECT value FROM baselines WHERE host = ? AND metric = ?", (host, metric))
        return float(rows[0][0]) if rows else None

    # ---------------------------------------------------------------- internals

    def _event(self, db: sqlite3.Connection, run_id: str, kind: str, *, host: str | None = None,
               wave: str | None = None, step: str | None = None, status: str | None = None,
               rc: int | None = None, data: dict[str, Any] | None = None) -> int:
        cur = db.execute("INSERT INTO events (run_id, at, host, wave, kind, step, status, rc, data)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, self.clock(), host, wave, kind, step, status, rc,
                          json.dumps(data or {}, sort_keys=True)))
        return int(cur.lastrowid or 0)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(id=row[0], plan_hash=row[1], plan_path=row[2], started_at=row[3], finished_at=row[4],
                     status=row[5], summary=json.loads(row[6]) if row[6] else None)
