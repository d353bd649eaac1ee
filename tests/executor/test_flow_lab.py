"""Flowing rollouts (`upgrade apply --flow`) end to end on the lab: real Ansible, apt, reboots and Slurm.

The lab's training pool has four H100 hosts on two racks; with max_unavailable 2 the plan has the canary (one
host per pool and GPU model), then wave-1 (two training hosts) and wave-2 (the last one). With barrier waves
wave-2 waits for every host of wave-1; flowing, it starts as soon as a slot frees.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.faults import Fault
from tests.executor.test_apply_lab import DRIVER_ONLY, _journal_states, apply, fresh, make_plan, node_state
from tests.support.lab import LabHandle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab
__all__ = ["fresh"]  # the fixture, imported for these tests
SLOW = ["-e", "driver_reboot_timeout_s=40", "-e", "drain_timeout_s=900"]


def _waves(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {w["name"]: list(w["hosts"]) for w in plan["waves"]}


def test_after_the_canary_a_slow_draining_host_does_not_hold_back_the_others(fresh: LabHandle,
                                                                              tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY, {"drain": {"timeout": 900}})
    waves = _waves(plan)
    assert list(waves) == ["canary", "wave-1", "wave-2"], waves
    code, canary = apply(plan_path, tmp_path, "canary")
    assert code == 0, canary
    slow, neighbour = waves["wave-1"]
    last = waves["wave-2"][0]
    fresh.lab.inject(slow, Fault.BLOCKING_JOB, seconds=900)  # its job runs on: its drain waits
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "all",
                             "--flow", "--yes", "--output", "json", "--ignore-window", "--state-dir", str(state),
                             *SLOW], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 600
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = _journal_states(state)
            if states.get(neighbour) == "done" and states.get(last) == "done":
                break
            assert proc.poll() is None, "apply ended while a host still drained"
            time.sleep(1)
        # its neighbour finished and the next host started and finished while the slow one still drains
        assert states.get(neighbour) == "done" and states.get(last) == "done", states
        assert node_state(fresh, slow) == "draining"
        assert states.get(slow) in ("pending", "cordoned"), states
        fresh.lab.clear(slow, Fault.BLOCKING_JOB)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(out)
    assert proc.returncode == 0, summary
    assert {h: s["state"] for h, s in summary["hosts"].items() if h in (slow, neighbour, last)} == {
        slow: "done", neighbour: "done", last: "done"}
    assert [w["name"] for w in summary["waves"]] == ["wave-1", "wave-2"] or \
        sorted(w["name"] for w in summary["waves"]) == ["wave-1", "wave-2"]  # checkpoints, as they complete


def test_after_the_canary_the_budget_stops_new_starts_when_exceeded(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY, {"failure_budget": {"per_wave": 0, "total": 0}})
    waves = _waves(plan)
    code, canary = apply(plan_path, tmp_path, "canary")
    assert code == 0, canary
    victim = waves["wave-1"][0]
    last = waves["wave-2"][0]
    fresh.lab.inject(victim, Fault.INSTALL_FAILS, packages=("nvidia-driver-580-open",))
    code, summary = apply(plan_path, tmp_path, "all", "--flow")
    assert code == 3, summary  # halted: a person decides
    assert summary["status"] == "halted"
    assert "no new host starts" in summary["reason"], summary["reason"]
    hosts = summary["hosts"]
    assert hosts[victim]["state"] == "rolled_back", hosts[victim]
    assert hosts[last]["state"] == "pending", hosts[last]  # never started: the budget was spent
    assert node_state(fresh, last) == "idle"  # untouched, still in service
