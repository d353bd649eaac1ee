"""`upgrade apply` refuses before touching any host: edited plan, stale facts, closed window, no --yes, lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
NIGHT = "2026-11-25T21:00:00+00:00"  # inside the example's 20:00-08:00 Europe/Berlin window
NOON = "2026-11-26T11:00:00+00:00"


def upgrade(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    out = tmp_path / "example.plan.json"
    made = upgrade("plan", "-i", str(EXAMPLE), str(ROOT / "plans" / "example.yaml"), "--facts",
                   str(EXAMPLE / "facts.json"), "-o", str(out), "--now", NIGHT, "--output", "json")
    assert made.returncode == 0, made.stderr
    return out


def apply(plan: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return upgrade("apply", str(plan), "--wave", "canary", "--state-dir", str(tmp_path / "state"), *extra)


def test_edited_plan_is_refused(plan: Path, tmp_path: Path) -> None:
    data = json.loads(plan.read_text())
    data["waves"][0]["hosts"] = ["gpu-h100-02"]
    plan.write_text(json.dumps(data))
    result = apply(plan, tmp_path, "--yes", "--facts", str(EXAMPLE / "facts.json"), "--now", NIGHT)
    assert result.returncode == 2 and "plan hash mismatch" in result.stderr and "Traceback" not in result.stderr


def test_stale_facts_are_refused_naming_the_host(plan: Path, tmp_path: Path) -> None:
    data = json.loads((EXAMPLE / "facts.json").read_text())
    for host in data["hosts"]:
        if host["host"] == "gpu-h100-01":
            host["nccl"]["version"] = "2.21.5-1+cuda12.4"
    changed = tmp_path / "facts.json"
    changed.write_text(json.dumps(data))
    result = apply(plan, tmp_path, "--yes", "--facts", str(changed), "--now", NIGHT)
    assert result.returncode == 2
    assert "refused: gpu-h100-01: changed since the plan was made: nccl 2.18.5-1+cuda12.2 -> 2.21.5-1+cuda12.4" \
        in result.stderr


def test_closed_window_is_refused_with_the_next_opening(plan: Path, tmp_path: Path) -> None:
    result = apply(plan, tmp_path, "--yes", "--facts", str(EXAMPLE / "facts.json"), "--now", NOON)
    assert result.returncode == 2
    assert "outside the maintenance windows" in result.stderr and "2026-11-26T19:00:00+00:00" in result.stderr


def test_no_terminal_and_no_yes_is_refused(plan: Path, tmp_path: Path) -> None:
    result = apply(plan, tmp_path, "--facts", str(EXAMPLE / "facts.json"), "--now", NIGHT)
    assert result.returncode == 2 and "pass --yes" in result.stderr


def test_a_second_apply_is_refused_while_one_runs(plan: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from orchestrator.adapters.lock import RunLock
        with RunLock({str(tmp_path / 'state' / 'apply.lock')!r}, run_id="run-first"):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = apply(plan, tmp_path, "--yes", "--facts", str(EXAMPLE / "facts.json"), "--now", NIGHT)
        assert result.returncode == 2
        assert "another apply is running" in result.stderr and f"pid {holder.pid}" in result.stderr
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_wave_order_is_enforced(plan: Path, tmp_path: Path) -> None:
    result = upgrade("apply", str(plan), "--wave", "wave-1", "--yes", "--state-dir", str(tmp_path / "state"),
                     "--facts", str(EXAMPLE / "facts.json"), "--now", NIGHT)
    assert result.returncode == 2 and "cannot start before canary" in result.stderr


def test_status_without_a_journal_is_one_line(tmp_path: Path) -> None:
    result = upgrade("status", "--state-dir", str(tmp_path / "none"))
    assert result.returncode == 2 and "no journal yet" in result.stderr
