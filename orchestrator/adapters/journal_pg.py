"""The journal, the run lock and the baselines in PostgreSQL: state that outlives one machine.

A CI runner that is replaced resumes the run from the same database; controllers on several machines drive
different pools of one rollout, each holding the advisory locks of its pools. Every event is one committed
transaction (as in the SQLite journal). The lock is a session-level advisory lock per key (a pool): the
server drops it when its holder's connection dies, even by ``kill -9``; who holds it is written beside it, so
a takeover of a dead holder's lock is detected and said, as with the file lock.

Example: ``upgrade apply plan.json --state postgresql://upgrade@db.example:5432/upgrade``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from orchestrator.adapters.journal import JournalError, utc_now
from orchestrator.adapters.lock import LockHeld
from orchestrator.run.records import HostRecord, JournalEvent, RunRecord
from orchestrator.run.states import HostState, transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    ord BIGSERIAL, id TEXT PRIMARY KEY, plan_hash TEXT NOT NULL, plan_path TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, summary TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), at TEXT NOT NULL,
    host TEXT, wave TEXT, kind TEXT NOT NULL, step TEXT, status TEXT, rc INTEGER, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, host);
CREATE TABLE IF NOT EXISTS host_state (
    run_id TEXT NOT NULL REFERENCES runs(id), host TEXT NOT NULL, wave TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL, updated_at TEXT NOT NULL, stack_before TEXT, PRIMARY KEY (run_id, host)
);
CREATE TABLE IF NOT EXISTS baselines (
    host TEXT NOT NULL, metric TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, at TEXT NOT NULL, run_id TEXT,
    PRIMARY KEY (host, metric)
);
CREATE TABLE IF NOT EXISTS lock_holders (key TEXT PRIMARY KEY, holder TEXT NOT NULL);
"""
SCHEMA_LOCK = 7_461_021  # serialises CREATE TABLE IF NOT EXISTS between controllers starting at once


def is_url(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _connect(url: str, autocommit: bool) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, application_name="gpu-upgrade")
    except psycopg.Error as exc:
        raise JournalError(redact(url), f"cannot reach the state database ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PgJournal:
    """The journal port on PostgreSQL; one connection, writes serialised (hosts of a wave run in threads)."""

    def __init__(self, url: str, clock: Callable[[], str] = utc_now) -> None:
        self.url = url
        self.where = redact(url)
        self.clock = clock
        self._lock = threading.RLock()
        self._db = _connect(url, autocommit=False)
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self._db.execute(SCHEMA)  # a constant, several statements
        except psycopg.Error as exc:
            self._db.close()
            raise JournalError(self.where, f"not a usable journal ({_first_line(exc)})") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One event, one transaction: all of it is committed or none of it."""
        with self._lock:
            try:
                with self._db.transaction():
                    yield self._db
            except psycopg.OperationalError as exc:
                raise JournalError(self.where, f"lost the state database ({_first_line(exc)})") from exc

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._tx() as db:
            return db.execute(sql, args).fetchall()

    # ---------------------------------------------------------------- runs

    def start_run(self, plan_hash: str, plan_path: str, run_id: str | None = None) -> str:
        run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        with self._tx() as db:
            db.execute("INSERT INTO runs (id, plan_hash, plan_path, started_at, status) VALUES (%s, %s, %s, %s, %s)",
                       (run_id, plan_hash, plan_path, self.clock(), "running"))
            self._event(db, run_id, "run_started", data={"plan_hash": plan_hash, "plan_path": plan_path})
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at = %s, status = %s, summary = %s WHERE id = %s",
                       (self.clock(), status, json.dumps(summary, sort_keys=True), run_id))
            self._event(db, run_id, "run_finished", status=status, data=summary)

    _RUN = "SELECT id, plan_hash, plan_path, started_at, finished_at, status, summary FROM runs"

    def run(self, run_id: str) -> RunRecord:
        rows = self._query(self._RUN + " WHERE id = %s", (run_id,))
        if not rows:
            raise JournalError(self.where, f"no run {run_id!r}")
        return _run_record(rows[0])

    def runs(self) -> list[RunRecord]:
        return [_run_record(r) for r in self._query(self._RUN + " ORDER BY started_at, id")]

    def latest_run(self, plan_hash: str | None = None) -> RunRecord | None:
        query, args = self._RUN, ()  # type: tuple[str, tuple[str, ...]]
        if plan_hash:
            query, args = query + " WHERE plan_hash = %s", (plan_hash,)
        rows = self._query(query + " ORDER BY started_at DESC, ord DESC LIMIT 1", args)
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
        before = json.dumps(stack_before, sort_keys=True) if stack_before is not None else None
        with self._tx() as db:
            row = db.execute("SELECT state FROM host_state WHERE run_id = %s AND host = %s FOR UPDATE",
                             (run_id, host)).fetchone()
            current = HostState(row[0]) if row else None
            if current is not None and not force:
                transition(host, current, new)
            now = self.clock()
            if row is None:
                db.execute("INSERT INTO host_state VALUES (%s, %s, %s, %s, %s, %s, %s)",
                           (run_id, host, wave, new.value, reason, now, before))
            else:
                db.execute("UPDATE host_state SET state = %s, reason = %s, updated_at = %s, wave = %s,"
                           " stack_before = COALESCE(%s, stack_before) WHERE run_id = %s AND host = %s",
                           (new.value, reason, now, wave, before, run_id, host))
            self._event(db, run_id, "state", host=host, wave=wave, status=new.value,
                        data={"from": current.value if current else None, "to": new.value, "reason": reason})

    def host_states(self, run_id: str) -> dict[str, HostRecord]:
        rows = self._query("SELECT host, wave, state, reason, updated_at, stack_before FROM host_state"
                           " WHERE run_id = %s ORDER BY host", (run_id,))
        return {r[0]: HostRecord(host=r[0], wave=r[1], state=HostState(r[2]), reason=r[3], updated_at=r[4],
                                 stack_before=json.loads(r[5]) if r[5] else None) for r in rows}

    def events(self, run_id: str, host: str | None = None, after: int = 0) -> list[JournalEvent]:
        """The run's events in order (of one host; only those after sequence number ``after``: a watcher's poll)."""
        query = ("SELECT seq, run_id, at, host, wave, kind, step, status, rc, data FROM events"
                 " WHERE run_id = %s AND seq > %s")
        args: tuple[str | int, ...] = (run_id, after)
        if host is not None:
            query, args = query + " AND host = %s", (*args, host)
        rows = self._query(query + " ORDER BY seq", args)
        return [JournalEvent(seq=r[0], run_id=r[1], at=r[2], host=r[3], wave=r[4], kind=r[5], step=r[6],
                             status=r[7], rc=r[8], data=json.loads(r[9])) for r in rows]

    def completed_steps(self, run_id: str, host: str) -> set[str]:
        rows = self._query("SELECT step FROM events WHERE run_id = %s AND host = %s AND kind = 'step_end'"
                           " AND status = 'successful'", (run_id, host))
        return {r[0] for r in rows}

    # ---------------------------------------------------------------- baselines

    def put_baseline(self, host: str, metric: str, value: float, run_id: str | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO baselines VALUES (%s, %s, %s, %s, %s) ON CONFLICT (host, metric) DO UPDATE SET"
                       " value = excluded.value, at = excluded.at, run_id = excluded.run_id",
                       (host, metric, value, self.clock(), run_id))

    def baselines(self, metric: str, exclude_run: str | None = None) -> dict[str, float]:
        rows = self._query("SELECT host, value, run_id FROM baselines WHERE metric = %s", (metric,))
        return {r[0]: float(r[1]) for r in rows if exclude_run is None or r[2] != exclude_run}

    def baseline(self, host: str, metric: str) -> float | None:
        rows = self._query("SELECT value FROM baselines WHERE host = %s AND metric = %s", (host, metric))
        return float(rows[0][0]) if rows else None

    # ---------------------------------------------------------------- internals

    def _event(self, db: psycopg.Connection[Any], run_id: str, kind: str, *, host: str | None = None,
               wave: str | None = None, step: str | None = None, status: str | None = None,
               rc: int | None = None, data: dict[str, Any] | None = None) -> int:
        row = db.execute("INSERT INTO events (run_id, at, host, wave, kind, step, status, rc, data)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                         (run_id, self.clock(), host, wave, kind, step, status, rc,
                          json.dumps(data or {}, sort_keys=True))).fetchone()
        return int(row[0]) if row else 0


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(id=row[0], plan_hash=row[1], plan_path=row[2], started_at=row[3], finished_at=row[4],
                     status=row[5], summary=json.loads(row[6]) if row[6] else None)


def lock_id(key: str) -> int:
    """A stable signed 64-bit advisory lock id for a key (a pool name)."""
    return int.from_bytes(hashlib.sha256(f"gpu-upgrade:{key}".encode()).digest()[:8], "big", signed=True)


class PgRunLock:
    """Advisory locks on the keys (pools) a run touches: ``with PgRunLock(url, ["train-h100"], run=...)``.

    All or none: a key held by a live controller refuses the run (LockHeld names who holds it); the locks of
    a controller that died are free again and its note is reported as ``stale_holder``.
    """

    def __init__(self, url: str, keys: Sequence[str], **info: Any) -> None:
        self.url = url
        self.keys = sorted(set(keys)) or ["*"]
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), **info}
        self.stale_holder: dict[str, Any] | None = None
        self._db: psycopg.Connection[Any] | None = None

    def acquire(self) -> PgRunLock:
        db = _connect(self.url, autocommit=True)
        taken: list[str] = []
        try:
            db.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            db.execute(SCHEMA)
            db.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
            for key in self.keys:
                row = db.execute("SELECT pg_try_advisory_lock(%s)", (lock_id(key),)).fetchone()
                if not (row and row[0]):
                    holder = db.execute("SELECT holder FROM lock_holders WHERE key = %s", (key,)).fetchone()
                    raise LockHeld(f"{redact(self.url)} lock {key}", _holder(holder[0] if holder else ""))
                taken.append(key)
            notes = db.execute("SELECT holder FROM lock_holders WHERE key = ANY(%s)", (self.keys,)).fetchall()
            self.stale_holder = next((_holder(n[0]) for n in notes if n[0]), None)  # their holder died
            mine = json.dumps(self.info, sort_keys=True)
            for key in self.keys:
                db.execute("INSERT INTO lock_holders VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET holder ="
                           " excluded.holder", (key, mine))
        except BaseException:
            for key in taken:
                db.execute("SELECT pg_advisory_unlock(%s)", (lock_id(key),))
            db.close()
            raise
        self._db = db
        return self

    def release(self) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("DELETE FROM lock_holders WHERE key = ANY(%s)", (self.keys,))
            self._db.execute("SELECT pg_advisory_unlock_all()")
        finally:
            self._db.close()
            self._db = None

    def __enter__(self) -> PgRunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"content": text[:200]}
    return data if isinstance(data, dict) else {"content": text[:200]}
