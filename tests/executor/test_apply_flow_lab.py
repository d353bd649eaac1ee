"""`upgrade apply --wave all --flow` on the lab: after the canary, one sliding window per pool.

A slow-draining host (a Slurm job that keeps running on it) does not hold back its pool: while it drains, its
neighbours finish and the next host starts. Once the failure budget is exceeded no new host starts. Timings come
from the run's journal (its events table, SQLite).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.lab.faults import Fault
from orchestrator.planner import load_plan
from orchestrator.run.flow import flow_order
from tests.executor.test_apply_lab import DRIVER_ONLY, ROOT, apply, make_plan
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab
REBOOT = ["-e", "upgrade_driver_reboot_timeout_s=40"]
POLICY = {"canary": 1, "waves": ["100%"], "max_unavailable": 2, "soak": 0, "drain": {"timeout": 600}}


def flowing_training_order(plan_path: Path) -> list[str]:
    """The training hosts after the canary, in the order the flowing run admits them (no drain knowledge: the
    lab's blocking job has no time limit, so Slurm gives no end)."""
    plan = load_plan(plan_path)
    rest = [h for w in plan.waves[1:] for h in w.hosts if plan.host(h).pool == "training"]
    rows = [(h, plan.host(h).domains.get("rack", ""), plan.host(h).estimate_s) for h in rest]
    return list(flow_order(rows, {}, None, wave_of={h: i for i, w in enumerate(plan.waves) for h in w.hosts}))


def events(state: Path) -> list[tuple[str, str, str, str, str]]:
    """(at, host, kind, step, status) of every host event so far."""
    path = state / "journal.db"
    if not path.exists():
        return []
    try:
        rows = sqlite3.connect(path, timeout=5).execute(
            "SELECT at, host, kind, coalesce(step, ''), coalesce(status, '') FROM events WHERE host IS NOT NULL "
            "ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []
    return [tuple(r) for r in rows]


def first(evs: list[tuple[str, str, str, str, str]], host: str, kind: str, step_or_status: str) -> str | None:
    return next((at for at, h, k, s, st in evs if h == host and k == kind and step_or_status in (s, st)), None)


def test_a_slow_drain_holds_back_no_one(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, _plan = make_plan(fresh, tmp_path, DRIVER_ONLY, policy=POLICY)
    slow, neighbour, later = flowing_training_order(plan_path)
    fresh.lab.inject(slow, Fault.BLOCKING_JOB, seconds=900)
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "all", "--flow",
                             "--yes", "--output", "json", "--ignore-window", "--state-dir", str(state), *REBOOT],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline and first(events(state), later, "state", "done") is None:
            assert proc.poll() is None, proc.communicate()
            time.sleep(1)
        evs = events(state)
        # the slow host started draining first and is still draining; its neighbours came and went meanwhile
        assert first(evs, slow, "step_start", "02-drain") is not None
        assert first(evs, slow, "state", "drained") is None
        for host in (neighbour, later):
            assert first(evs, host, "state", "done") is not None, evs
        started_later = first(evs, later, "step_start", "01-precheck")
        assert started_later is not None and started_later > str(first(evs, slow, "step_start", "02-drain"))
        fresh.lab.clear(slow, Fault.BLOCKING_JOB)
        out, _ = proc.communicate(timeout=480)
    finally:
        if proc.poll() is None:
            proc.kill()
        fresh.lab.clear(slow, Fault.BLOCKING_JOB)
    summary = json.loads(out)
    assert proc.returncode == 0, summary
    assert all(h["state"] == "done" for h in summary["hosts"].values()), summary


def test_no_new_host_starts_once_the_failure_budget_is_exceeded(fresh: LabHandle, tmp_path: Path) -> None:
    policy = {**POLICY, "failure_budget": {"per_wave": 1, "total": 1}}
    plan_path, _plan = make_plan(fresh, tmp_path, DRIVER_ONLY, policy=policy)
    failing_a, failing_b, untouched = flowing_training_order(plan_path)
    for host in (failing_a, failing_b):
        fresh.lab.inject(host, Fault.INSTALL_FAILS, packages=("nvidia-driver-580-open",))
    try:
        code, summary = apply(plan_path, tmp_path, "all", "--flow")
    finally:
        for host in (failing_a, failing_b):
            fresh.lab.clear(host, Fault.INSTALL_FAILS)
    assert code != 0, summary
    hosts = summary["hosts"]
    assert hosts[failing_a]["state"] != "done" and hosts[failing_b]["state"] != "done", hosts
    evs = events(tmp_path / "state")
    assert first(evs, untouched, "step_start", "01-precheck") is None, evs  # never started
    second_failure = max(at for at, h, k, _s, st in evs if h in (failing_a, failing_b) and k == "state"
                         and st == "failed")
    starts_after = [h for at, h, k, s, _st in evs if k == "step_start" and s == "01-precheck" and at > second_failure]
    assert starts_after == [], starts_after
