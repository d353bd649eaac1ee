"""`upgrade facts` as a user runs it: a subprocess, its exit code, stdout and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.model.facts import FactsSnapshot
from tests.support.bigfleet import write_inventory_and_snapshot

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


DKMS = {"packaging": "dkms", "kernels": {"6.8.0-45-generic": "580.95.05", "6.8.0-49-generic": None},
        "dkms": {"580.95.05": {"6.8.0-45-generic": "installed", "6.8.0-49-generic": "built"}}}
PRECOMPILED = {"packaging": "precompiled", "kernels": {"6.8.0-48-generic": "580.95.05"}, "dkms": None}


def with_modules(source: Path, target: Path, modules: dict[str, dict[str, object]]) -> Path:
    """The snapshot at ``source`` with the kernel module facts of some hosts (the others as older collectors
    wrote them: without)."""
    data = json.loads(source.read_text())
    for record in data["hosts"]:
        if record["host"] in modules:
            record["kernel_modules"] = modules[record["host"]]
    target.write_text(json.dumps(data))
    return target


def test_details_show_each_hosts_module_packaging_kernels_and_dkms_builds(tmp_path: Path) -> None:
    marked = {**PRECOMPILED, "kernels": {"[bold]6.8.0-48-generic": "580.95.05"}}  # a host's value, not markup
    snap = with_modules(SNAPSHOT, tmp_path / "facts.json", {"gpu-h100-01": DKMS, "gpu-h100-02": marked})
    result = upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(snap))
    out = result.stdout
    assert "module pkg" in out
    assert ("gpu-h100-01: nvidia module dkms; kernels: 6.8.0-45-generic 580.95.05, 6.8.0-49-generic none; "
            "dkms: nvidia/580.95.05 6.8.0-45-generic installed, 6.8.0-49-generic built") in out
    assert "gpu-h100-02: nvidia module precompiled; kernels: [bold]6.8.0-48-generic 580.95.05" in out
    assert "gpu-h100-03: nvidia module" not in out  # an older snapshot's host: "?" in its column, no line
    assert "12 hosts in 3 pools: 11 reported, 1 unreachable" in out
    data = json.loads(upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(snap), "--output", "json").stdout)
    assert {h["host"]: h["kernel_modules"] for h in data["hosts"]}["gpu-h100-01"] == DKMS


def test_summary_of_a_big_fleet_counts_module_packagings_as_classes(tmp_path: Path) -> None:
    inventory, facts = write_inventory_and_snapshot(60, tmp_path)
    hosts = [h["host"] for h in json.loads(facts.read_text())["hosts"]]
    snap = with_modules(facts, tmp_path / "modules.json",
                        {h: PRECOMPILED if i % 2 else DKMS for i, h in enumerate(hosts)})
    result = upgrade("facts", "-i", str(inventory), "--snapshot", str(snap))
    out = result.stdout
    assert result.returncode == 1, result.stderr  # the fleet's NCCL drift
    assert "module pkg" in out and "precompiled" in out and "dkms" in out
    # NCCL drifted or not, dkms or precompiled, and the host cordoned by hand
    assert "pool train-h100: 20 hosts in 5 classes" in out
    assert "nvidia module" not in out  # no line per host: --details has them
    assert "60 hosts in 3 pools: 60 reported, 0 unreachable" in out


def test_a_snapshot_with_a_bad_module_value_is_refused_naming_it(tmp_path: Path) -> None:
    bad = {**DKMS, "kernels": {"6.8.0-45-generic\nx": "580.95.05"}}
    snap = with_modules(SNAPSHOT, tmp_path / "facts.json", {"gpu-h100-01": bad})
    result = upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(snap))
    assert result.returncode == 2
    assert "facts.json: not a facts snapshot: hosts.4.kernel_modules.kernels" in result.stderr, result.stderr
