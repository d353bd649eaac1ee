"""State machine, SQLite journal and run lock, including what survives a kill -9."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.adapters.journal import Journal, JournalError
from orchestrator.adapters.lock import LockHeld, RunLock
from orchestrator.run.states import OUT_OF_SERVICE, HostState, IllegalTransition, transition

ROOT = Path(__file__).resolve().parents[2]
S = HostState


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


def test_journal_records_states_events_and_survives_reopen(tmp_path: Path) -> None:
    ticks = iter(f"2026-11-25T00:00:{i:02d}Z" for i in range(60))
    path = tmp_path / "journal.db"
    with Journal(path, clock=lambda: next(ticks)) as journal:
        run = journal.start_run("sha256:abc", "plans/lab.plan.json", run_id="run-1")
        journal.set_state(run, "gpu-1", "canary", S.PENDING, "planned", stack_before={"driver": "535.183.01"})
        journal.set_state(run, "gpu-1", "canary", S.CORDONED, "cordon ok")
        journal.record(run, "step_end", host="gpu-1", wave="canary", step="driver", status="successful", rc=0)
        journal.record(run, "step_end", host="gpu-1", wave="canary", step="cuda", status="failed", rc=2)
        with pytest.raises(IllegalTransition):
            journal.set_state(run, "gpu-1", "canary", S.DONE, "skipping ahead")
    with Journal(path) as journal:
        [record] = journal.host_states("run-1").values()
        assert (record.state, record.reason, record.stack_before) == (S.CORDONED, "cordon ok", {"driver": "535.183.01"})
        assert journal.completed_steps("run-1", "gpu-1") == {"driver"}
        kinds = [e.kind for e in journal.events("run-1")]
        assert kinds == ["run_started", "state", "state", "step_end", "step_end"]  # the refused move left nothing
        assert journal.latest_run("sha256:abc").id == "run-1"  # type: ignore[union-attr]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_baselines_are_kept_per_host_and_metric(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        assert journal.baseline("gpu-1", "pcie_h2d_gbps") is None
        journal.put_baseline("gpu-1", "pcie_h2d_gbps", 25.1)
        journal.put_baseline("gpu-1", "pcie_h2d_gbps", 24.9)
        assert journal.baseline("gpu-1", "pcie_h2d_gbps") == 24.9


def test_not_a_journal_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "journal.db"
    bogus.write_text("this is not sqlite" * 100)
    with pytest.raises(JournalError) as err:
        Journal(bogus)
    assert str(bogus) in str(err.value) and "not a usable journal" in str(err.value)


WRITER = textwrap.dedent("""
    import sys
    from orchestrator.adapters.journal import Journal
    j = Journal(sys.argv[1])
    run = j.start_run("h", "p", run_id="run-k")
    print("ready", flush=True)
    i = 0
    while True:
        j.record(run, "tick", host="h", data={"i": i, "pad": "x" * 2000})
        i += 1
""")


def test_kill_9_mid_write_leaves_a_consistent_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Journal(path) as journal:
        ticks = [e.data["i"] for e in journal.events("run-k") if e.kind == "tick"]
        assert ticks and ticks == list(range(len(ticks)))  # every committed event, no gap, none torn
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


HOLDER = textwrap.dedent("""
    import sys, time
    from orchestrator.adapters.lock import RunLock
    with RunLock(sys.argv[1], run_id="run-a"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_apply_is_refused_and_a_dead_holder_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as err:
            RunLock(path, run_id="run-b").acquire()
        assert f"pid {holder.pid}" in str(err.value) and "run_id run-a" in str(err.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with RunLock(path, run_id="run-b") as lock:
        assert lock.stale_holder is not None and lock.stale_holder["pid"] == holder.pid
    with RunLock(path, run_id="run-c") as lock:  # a clean release leaves nothing stale
        assert lock.stale_holder is None
