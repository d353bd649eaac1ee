"""A fault campaign on the lab (issue 20): every fault the lab can inject, in the canary and in a later wave.

One run carries several faults at once, on different hosts, so CI covers the campaign in a few lab runs:
for each host the test checks the exit code, the final state and its reason, the Slurm node state, and that
the stack really installed on the host is what the journal says (done: the target; rolled back: the start).
The long campaign (every fault alone, in the canary and in a later wave) is `benchmarks/fault_campaign.py`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.faults import Fault
from tests.executor.test_apply_lab import DRIVER_ONLY, apply, live_facts, make_plan, node_state
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab
START, TARGET = "535.183.01", "580.95.05"


def _hosts(plan: dict[str, Any], wave: int, pool: str) -> list[str]:
    pools = {row[0]: plan["classes"][row[2]]["pool"] for row in plan["rows"]}
    return [h for h in plan["waves"][wave]["hosts"] if pools[h] == pool]


def _journal(state: Path) -> dict[str, tuple[str, str]]:
    rows = sqlite3.connect(state / "journal.db").execute("SELECT host, state, reason FROM host_state").fetchall()
    return {h: (s, r) for h, s, r in rows}


def _ssh_down_when_drained(lab: LabHandle, tmp_path: Path, host: str, seconds: float) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if _journal(tmp_path / "state").get(host, ("", ""))[0] == "drained":
                lab.lab.inject(host, Fault.SSH_DOWN, seconds=seconds)
                return
        except sqlite3.Error:
            pass  # the journal does not exist yet
        time.sleep(0.3)


def _check_stacks(lab: LabHandle, states: dict[str, str]) -> None:
    facts = live_facts(lab)
    for host, state in states.items():
        want = {"done": TARGET, "rolled_back": START}.get(state)
        if want is not None:
            assert facts[host]["driver"]["version"] == want, (host, state, facts[host]["driver"])
            assert facts[host]["driver"]["status"] == "ok", host


def test_campaign_install_failure_and_ssh_blip_in_the_canary_diag_and_long_outage_later(
        fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY,
                                {"failure_budget": {"per_wave": 2, "total": 3}, "max_unavailable": 3})
    install_fails = _hosts(plan, 0, "training")[0]
    blip = _hosts(plan, 0, "inference")[0]
    later = plan["waves"][1]["hosts"]
    diag_fails, outage = later[0], later[1]
    fresh.lab.inject(install_fails, Fault.INSTALL_FAILS, packages=("nvidia-driver-580-open",))
    fresh.lab.inject(diag_fails, Fault.DIAG_FAILS)
    # SSH drops once the host is drained, shorter than the 30 s retry budget: retried, not failed
    # (before the run, the preflight would refuse a host it cannot reach, which is a different fault)
    watcher = threading.Thread(target=_ssh_down_when_drained, args=(fresh, tmp_path, blip, 8), daemon=True)
    watcher.start()
    code, canary = apply(plan_path, tmp_path, "canary")
    watcher.join(timeout=5)
    assert code == 1, canary  # one host rolled back, within the budget
    assert canary["hosts"][install_fails]["state"] == "rolled_back"
    assert "nvidia-driver-580-open" in canary["hosts"][install_fails]["reason"]
    assert "All items completed" not in canary["hosts"][install_fails]["reason"]
    assert canary["hosts"][blip]["state"] == "done"
    assert node_state(fresh, install_fails) == "idle" and node_state(fresh, blip) == "idle"

    # the later wave: SSH goes down for longer than the retry budget once the host is drained
    watcher = threading.Thread(target=_ssh_down_when_drained, args=(fresh, tmp_path, outage, 90), daemon=True)
    watcher.start()
    code, rest = apply(plan_path, tmp_path, "next")
    watcher.join(timeout=5)
    assert code == 3, rest  # quarantined hosts: a person must look
    diag = rest["hosts"][diag_fails]
    assert diag["state"] == "quarantined" and "rollback failed" in diag["reason"], diag
    gone = rest["hosts"][outage]
    assert gone["state"] in ("rolled_back", "quarantined") and "unreachable for" in gone["reason"], gone
    assert "drain" in node_state(fresh, diag_fails)  # left drained for a person
    journal = _journal(tmp_path / "state")
    _check_stacks(fresh, {h: s for h, (s, _r) in journal.items()})
    for host, (state, _reason) in journal.items():
        if state == "done":
            assert node_state(fresh, host) == "idle", host
    summary_states = {h: v["state"] for h, v in {**canary["hosts"], **rest["hosts"]}.items()}
    assert set(summary_states) == set(journal)
    print(json.dumps(summary_states))
