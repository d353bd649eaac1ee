"""`upgrade apply` end to end on the lab: real Ansible over SSH, real apt inside the hosts, real Slurm.

Each test starts from a fresh lab (R535 + CUDA 12.2 everywhere, ~2 s from the cache) and runs the CLI as
CI would: `--yes --output json`, a journal in a temporary state folder.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.lab.faults import Fault
from tests.support.lab import LabHandle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab

# Driver-only targets keep the failure scenarios short: one package change and a reboot per host.
DRIVER_ONLY = {
    "training": {"target": {"driver": "580.95.05", "kernel_module": "open", "fabric_manager": "580.95.05"}},
    "inference": {"target": {"driver": "580.95.05", "kernel_module": "proprietary"},
                  "policy": {"max_unavailable": 1}},
}
FAST = ["-e", "upgrade_driver_reboot_timeout_s=40", "-e", "drain_timeout_s=120"]


def upgrade(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def make_plan(lab: LabHandle, tmp_path: Path, pools: dict[str, Any] | None = None,
              policy: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    if pools is None:
        desired = ROOT / "plans" / "lab.yaml"
    else:
        desired = tmp_path / "desired.yaml"
        base = {"canary": 1, "waves": ["100%"], "max_unavailable": 2, "soak": 0, "gates": ["dcgm-r1"],
                "failure_budget": {"per_wave": 1, "total": 2}, "drain": {"timeout": 120}, "unreachable_retry": 30}
        desired.write_text(yaml.safe_dump({"version": 1, "policy": {**base, **(policy or {})}, "pools": pools}))
    out = tmp_path / "lab.plan.json"
    made = upgrade("plan", "-i", str(lab.inventory), str(desired), "-o", str(out), "--output", "json")
    assert made.returncode == 0, made.stdout + made.stderr
    return out, json.loads(out.read_text())


def apply(plan: Path, tmp_path: Path, wave: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = upgrade("apply", str(plan), "--wave", wave, "--yes", "--output", "json", "--ignore-window",
                     "--state-dir", str(tmp_path / "state"), *FAST, *extra)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def live_facts(lab: LabHandle) -> dict[str, dict[str, Any]]:
    result = upgrade("facts", "-i", str(lab.inventory), "--output", "json")
    return {h["host"]: h for h in json.loads(result.stdout)["hosts"]}


def node_state(lab: LabHandle, node: str) -> str:
    return lab.slurm("sinfo", "-h", "-n", node, "-o", "%T").strip()


def canary_host(plan: dict[str, Any], pool: str) -> str:
    pools = {row[0]: plan["classes"][row[2]]["pool"] for row in plan["rows"]}
    return next(h for h in plan["waves"][0]["hosts"] if pools[h] == pool)


def test_full_rollout_canary_then_all_reaches_the_target(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path)
    code, canary = apply(plan_path, tmp_path, "canary")
    assert code == 0, canary
    assert canary["waves"] == [{"name": "canary", "status": "passed", "failed": [], "stragglers": [], "reason": ""}]
    assert {h: s["state"] for h, s in canary["hosts"].items()} == {h: "done" for h in plan["waves"][0]["hosts"]}
    code, rest = apply(plan_path, tmp_path, "all")
    assert code == 0, rest
    assert [w["name"] for w in rest["waves"]] == [w["name"] for w in plan["waves"][1:]]
    facts = live_facts(fresh)
    targets = {row[0]: plan["classes"][row[2]].get("target") for row in plan["rows"]}
    for host, data in facts.items():
        assert data["driver"]["status"] == "ok" and data["driver"]["version"] == targets[host]["driver"], host
        assert data["driver"]["flavor"] == targets[host]["kernel_module"], host
        assert data["cuda"]["version"].startswith(targets[host]["cuda"]), host
        assert data["nccl"]["version"] == targets[host]["nccl"], host
        assert node_state(fresh, host) == "idle", host  # resumed in Slurm
    status = upgrade("status", "--state-dir", str(tmp_path / "state"), "--output", "json")
    assert {h["state"] for h in json.loads(status.stdout)["hosts"].values()} == {"done"}


def test_install_failure_is_rolled_back_while_the_others_go_on(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    victim = canary_host(plan, "training")
    fresh.lab.inject(victim, Fault.INSTALL_FAILS, packages=("nvidia-driver-580-open",))
    code, summary = apply(plan_path, tmp_path, "canary")
    assert code == 1, summary  # rolled back within the budget
    assert summary["hosts"][victim]["state"] == "rolled_back"
    assert "driver" in summary["hosts"][victim]["reason"]
    others = [h for h in plan["waves"][0]["hosts"] if h != victim]
    assert all(summary["hosts"][h]["state"] == "done" for h in others)
    facts = live_facts(fresh)
    assert facts[victim]["driver"]["version"] == "535.183.01" and facts[victim]["driver"]["status"] == "ok"
    assert node_state(fresh, victim) == "idle"  # healthy after rollback: back in service
    # the failed install released the holds; the rollback put them back as they were before the upgrade
    assert {"nvidia-driver-535", "nvidia-fabricmanager-535"} <= set(facts[victim]["held_packages"])


def test_gate_failures_over_the_budget_halt_and_roll_back_the_wave(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY,
                                {"failure_budget": {"per_wave": 0, "total": 0, "on_exceed": "rollback-wave"}})
    victim = canary_host(plan, "training")
    fresh.lab.inject(victim, Fault.DIAG_FAILS)
    code, summary = apply(plan_path, tmp_path, "all")
    assert code == 3, summary  # halted: needs a person
    assert summary["status"] == "halted" and summary["waves"][0]["status"] == "halted"
    assert [w["name"] for w in summary["waves"]] == ["canary"]  # nothing after the canary ran
    # diag still fails after the rollback: the host stays drained, quarantined with the reason
    assert summary["hosts"][victim]["state"] == "quarantined"
    assert "rollback failed" in summary["hosts"][victim]["reason"]
    for host in plan["waves"][0]["hosts"]:
        if host != victim:  # the healthy canary host went back with its wave
            assert summary["hosts"][host]["state"] == "rolled_back", summary["hosts"][host]
    assert "drain" in node_state(fresh, victim)


def test_host_that_never_returns_from_reboot_ends_quarantined(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    victim = canary_host(plan, "training")
    fresh.lab.inject(victim, Fault.REBOOT_HANGS)
    code, summary = apply(plan_path, tmp_path, "canary")
    assert code == 3, summary
    record = summary["hosts"][victim]
    assert record["state"] == "quarantined" and "unreachable" in record["reason"], record


def _journal_states(state_dir: Path) -> dict[str, str]:
    path = state_dir / "journal.db"
    if not path.exists():
        return {}
    try:
        rows = sqlite3.connect(path, timeout=5).execute("SELECT host, state FROM host_state").fetchall()
    except sqlite3.OperationalError:
        return {}
    return dict(rows)


def test_kill_9_mid_wave_then_resume_completes(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "canary",
                             "--yes", "--output", "json", "--ignore-window", "--state-dir", str(state), *FAST],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "upgrading" not in _journal_states(state).values():
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _journal_states(state)
    assert "upgrading" in before.values(), before
    assert all(before.values())  # every touched host has a state (and a reason, NOT NULL in the journal)
    code, summary = apply(plan_path, tmp_path, "canary", "--resume")
    assert code == 0, summary
    assert summary["resumed"] is True
    assert all(s["state"] == "done" for s in summary["hosts"].values())
    facts = live_facts(fresh)
    assert all(facts[h]["driver"]["version"] == "580.95.05" for h in plan["waves"][0]["hosts"])


def test_slurm_drain_waits_for_the_running_job(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    victim = canary_host(plan, "training")
    fresh.lab.inject(victim, Fault.BLOCKING_JOB, seconds=600)
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "canary",
                             "--yes", "--output", "json", "--ignore-window", "--state-dir", str(state), *FAST],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "drain" not in node_state(fresh, victim):
            time.sleep(0.5)
        time.sleep(5)
        assert node_state(fresh, victim) == "draining"  # the job still runs: the node is not drained
        assert _journal_states(state).get(victim) in ("pending", None)  # nothing installed meanwhile
        fresh.lab.clear(victim, Fault.BLOCKING_JOB)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = json.loads(out)
    assert proc.returncode == 0, summary
    assert summary["hosts"][victim]["state"] == "done"


def test_rollback_by_hand_returns_an_upgraded_host_to_service_on_its_old_stack(fresh: LabHandle,
                                                                               tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    code, _ = apply(plan_path, tmp_path, "canary")
    assert code == 0
    host = canary_host(plan, "inference")
    assert live_facts(fresh)[host]["driver"]["version"] == "580.95.05"
    result = upgrade("rollback", str(plan_path), "--host", host, "--yes", "--output", "json",
                     "--state-dir", str(tmp_path / "state"), *FAST)
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary
    assert summary["hosts"][host]["state"] == "rolled_back"
    facts = live_facts(fresh)[host]
    assert facts["driver"]["version"] == "535.183.01" and facts["driver"]["status"] == "ok"
    assert node_state(fresh, host) == "idle"
