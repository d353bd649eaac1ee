"""`upgrade facts` as a user runs it: a subprocess, its exit code, stdout and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.model.facts import FactsSnapshot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventories" / "example"
SNAPSHOT = EXAMPLE / "facts.json"


def upgrade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


def test_example_table_shows_versions_side_by_side_with_drift() -> None:
    result = upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(SNAPSHOT))
    assert result.returncode == 1, result.stderr  # drift and an unreachable host are warnings
    out = result.stdout
    assert "pool train-h100" in out and "pool infer-a100" in out and "pool legacy-v100" in out
    assert "2.21.5-1+cuda12.4*" in out  # the hand-upgraded NCCL on gpu-h100-05 is marked
    assert "drift: nccl is mixed" in out and "off majority: gpu-h100-05" in out
    assert "drift: driver is mixed" in out and "gpu-a100-03" in out
    assert "kernel module 535.183.01 is loaded but the installed driver is 550.127.05" in out
    assert "gpu-v100-02: unreachable" in out
    assert "cordoned by hand: RMA" in out
    assert "12 hosts in 3 pools: 11 reported, 1 unreachable; drift in infer-a100, train-h100" in out


def test_json_output_is_a_loadable_snapshot_with_drift() -> None:
    result = upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(SNAPSHOT), "--output", "json")
    data = json.loads(result.stdout)
    drift = {d["pool"]: [c["component"] for c in d["mixed"]] for d in data.pop("drift")}
    assert drift == {"infer-a100": ["driver"], "train-h100": ["nccl"]}
    snapshot = FactsSnapshot.model_validate(data)
    assert len(snapshot.hosts) == 11 and [u.host for u in snapshot.unreachable] == ["gpu-v100-02"]


def test_limit_restricts_the_snapshot_and_clean_pool_exits_zero() -> None:
    result = upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(SNAPSHOT), "--limit", "gpu-h100-01:gpu-h100-02")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 hosts in 1 pools: 2 reported, 0 unreachable; no drift" in result.stdout


def test_local_reports_this_machine_without_a_gpu() -> None:
    result = upgrade("facts", "--local", "--output", "json")
    data = json.loads(result.stdout)
    assert data["driver"]["status"] == "not_installed" and data["gpus"] == []
    assert result.returncode == 1  # a host problem (no driver) is a warning


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "facts.json"
    broken.write_text('{"collected_at": "x", "hosts": [{"host": 1}]}')
    cases = [
        (["facts", "-i", str(tmp_path / "missing.ini")], "missing.ini: inventory not found"),
        (["facts", "-i", str(EXAMPLE), "--snapshot", str(broken)], "facts.json: not a facts snapshot: hosts.0"),
        (["facts", "-i", str(EXAMPLE), "--snapshot", str(tmp_path / "none.json")], "cannot read facts snapshot"),
        (["facts"], "give an inventory with -i"),
    ]
    for args, expected in cases:
        result = upgrade(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
