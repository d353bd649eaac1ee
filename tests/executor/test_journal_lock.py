"""State machine, journal and run lock on both state backends (SQLite folder, real PostgreSQL), and kill -9."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.adapters.journal import Journal, JournalError
from orchestrator.adapters.journal_pg import PgJournal
from orchestrator.adapters.lock import LockHeld, RunLock
from orchestrator.adapters.state import StateStore, state_store
from orchestrator.run.states import OUT_OF_SERVICE, HostState, IllegalTransition, transition
from tests.support.postgres import Postgres, fresh_database

ROOT = Path(__file__).resolve().parents[2]
S = HostState


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """A state store of each kind: a folder (SQLite + lock file), or a database of its own on a real server."""
    if request.param == "sqlite":
        return state_store(tmp_path / "state")
    server: Postgres = request.getfixturevalue("postgres")
    return state_store(fresh_database(server))


def test_happy_path_and_rollback_paths_are_allowed() -> None:
    path = [S.PENDING, S.CORDONED, S.DRAINED, S.UPGRADING, S.REBOOTING, S.VERIFYING, S.VALIDATED, S.DONE]
    for a, b in itertools.pairwise(path):
        assert transition("h", a, b) == b
    assert transition("h", S.UPGRADING, S.FAILED) == S.FAILED
    assert transition("h", S.FAILED, S.ROLLING_BACK) == S.ROLLING_BACK
    assert transition("h", S.ROLLING_BACK, S.QUARANTINED) == S.QUARANTINED


def test_impossible_moves_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(IllegalTransition) as err:
        transition("gpu-1", S.PENDING, S.UPGRADING)
    assert str(err.value) == "gpu-1: cannot go from pending to upgrading (allowed: cordoned, done, failed, skipped)"
    assert transition("gpu-1", S.PENDING, S.DONE) == S.DONE  # found at its target by the precheck: verified
    with pytest.raises(IllegalTransition):
        transition("gpu-1", S.ROLLED_BACK, S.UPGRADING)
    assert S.DRAINED in OUT_OF_SERVICE and S.DONE not in OUT_OF_SERVICE and S.QUARANTINED in OUT_OF_SERVICE


def _journal(store: StateStore, **kw: object):  # type: ignore[no-untyped-def]
    if store.database:
        return PgJournal(store.spec, **kw)  # type: ignore[arg-type]
    return Journal(Path(store.spec) / "journal.db", **kw)  # type: ignore[arg-type]


def test_journal_records_states_events_and_survives_reopen(store: StateStore) -> None:
    ticks = iter(f"2026-11-25T00:00:{i:02d}Z" for i in range(60))
    with _journal(store, clock=lambda: next(ticks)) as journal:
        run = journal.start_run("sha256:abc", "plans/lab.plan.json", run_id="run-1")
        journal.set_state(run, "gpu-1", "canary", S.PENDING, "planned", stack_before={"driver": "535.183.01"})
        journal.set_state(run, "gpu-1", "canary", S.CORDONED, "cordon ok")
        journal.record(run, "step_end", host="gpu-1", wave="canary", step="driver", status="successful", rc=0)
        journal.record(run, "step_end", host="gpu-1", wave="canary", step="cuda", status="failed", rc=2)
        with pytest.raises(IllegalTransition):
            journal.set_state(run, "gpu-1", "canary", S.DONE, "skipping ahead")
    with store.journal() as journal:
        [record] = journal.host_states("run-1").values()
        assert (record.state, record.reason, record.stack_before) == (S.CORDONED, "cordon ok", {"driver": "535.183.01"})
        assert journal.completed_steps("run-1", "gpu-1") == {"driver"}
        kinds = [e.kind for e in journal.events("run-1")]
        assert kinds == ["run_started", "state", "state", "step_end", "step_end"]  # the refused move left nothing
        assert journal.latest_run("sha256:abc").id == "run-1"  # type: ignore[union-attr]
        second = journal.start_run("sha256:abc", "again.plan.json", run_id="run-2")
        assert journal.latest_run("sha256:abc").id == second  # type: ignore[union-attr]
        assert [r.id for r in journal.runs()] == ["run-1", "run-2"]
    if not store.database:
        mode = sqlite3.connect(Path(store.spec) / "journal.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_baselines_are_kept_per_host_and_metric(store: StateStore) -> None:
    with store.journal() as journal:
        assert journal.baseline("gpu-1", "pcie_h2d_gbps") is None
        journal.put_baseline("gpu-1", "pcie_h2d_gbps", 25.1)
        journal.put_baseline("gpu-1", "pcie_h2d_gbps", 24.9)
        assert journal.baseline("gpu-1", "pcie_h2d_gbps") == 24.9
        journal.put_baseline("gpu-2", "pcie_h2d_gbps", 30.0, run_id="run-x")
        assert journal.baselines("pcie_h2d_gbps", exclude_run="run-x") == {"gpu-1": 24.9}


def test_not_a_journal_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "journal.db"
    bogus.write_text("this is not sqlite" * 100)
    with pytest.raises(JournalError) as err:
        Journal(bogus)
    assert str(bogus) in str(err.value) and "not a usable journal" in str(err.value)


def test_an_unreachable_database_is_one_clear_error(postgres: Postgres) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    url = f"postgresql://upgrade:secret@127.0.0.1:{port}/nowhere"
    with pytest.raises(JournalError) as err:
        state_store(url).journal()
    text = str(err.value)
    assert "cannot reach the state database" in text and "\n" not in text and "secret" not in text


WRITER = textwrap.dedent("""
    import sys
    from orchestrator.adapters.state import state_store
    j = state_store(sys.argv[1]).journal()
    run = j.start_run("h", "p", run_id="run-k")
    print("ready", flush=True)
    i = 0
    while True:
        j.record(run, "tick", host="h", data={"i": i, "pad": "x" * 2000})
        i += 1
""")


def test_kill_9_mid_write_leaves_a_consistent_journal(store: StateStore) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, store.spec], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with store.journal() as journal:
        ticks = [e.data["i"] for e in journal.events("run-k") if e.kind == "tick"]
        assert ticks and ticks == list(range(len(ticks)))  # every committed event, no gap, none torn
    if not store.database:
        path = Path(store.spec) / "journal.db"
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


HOLDER = textwrap.dedent("""
    import sys, time
    from orchestrator.adapters.state import state_store
    with state_store(sys.argv[1]).lock(["train-h100"], run_id="run-a"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_apply_is_refused_and_a_dead_holder_is_taken_over(store: StateStore) -> None:
    Path(store.spec).mkdir(parents=True, exist_ok=True) if not store.database else None
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store.spec], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as err:
            store.lock(["train-h100"], run_id="run-b").acquire()
        assert f"pid {holder.pid}" in str(err.value) and "run_id run-a" in str(err.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10  # the server ends a dead client's session when it sees the socket close
    while True:
        try:
            lock = store.lock(["train-h100"], run_id="run-b").acquire()
            break
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert lock.stale_holder is not None and lock.stale_holder["pid"] == holder.pid
    lock.release()
    with store.lock(["train-h100"], run_id="run-c") as again:  # a clean release leaves nothing stale
        assert again.stale_holder is None


def test_controllers_of_different_pools_run_side_by_side(postgres: Postgres) -> None:
    store = state_store(fresh_database(postgres))
    with store.lock(["train-h100"], run_id="run-a"):
        with store.lock(["infer-a100", "legacy-v100"], run_id="run-b") as other:
            assert other.stale_holder is None  # another pool of the same rollout: no overlap, no wait
        with pytest.raises(LockHeld, match="lock train-h100: another apply is running"):
            store.lock(["legacy-v100", "train-h100"], run_id="run-c").acquire()
        with store.lock(["legacy-v100"], run_id="run-d"):  # all or none: run-c left legacy-v100 free
            pass


def test_the_file_lock_stays_one_per_folder(tmp_path: Path) -> None:
    with RunLock(tmp_path / "apply.lock", run_id="run-a"), pytest.raises(LockHeld):
        state_store(tmp_path).lock(["another-pool"], run_id="run-b").acquire()
