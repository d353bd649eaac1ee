"""Big fleets in few lines: facts, check and plan summarise per pool and class above 50 hosts; --details lists all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bigfleet import write_desired, write_inventory_and_snapshot

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 300


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("fleet")
    inventory, facts = write_inventory_and_snapshot(HOSTS, folder)
    return inventory, facts, write_desired(folder)


def upgrade(*args: str) -> subprocess.CompletedProcess[str]:
    inventory = Path(args[args.index("-i") + 1])
    env = {**os.environ, "XDG_CACHE_HOME": str(inventory.parent / "cache")}  # the fleet's own inventory cache
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300, check=False)


def names_in(text: str) -> set[str]:
    return {f"gpu-{i:05d}" for i in range(HOSTS) if f"gpu-{i:05d}" in text}


def test_facts_summarise_per_pool_and_class(fleet: tuple[Path, Path, Path]) -> None:
    inventory, facts, _ = fleet
    short = upgrade("facts", "-i", str(inventory), "--snapshot", str(facts))
    assert short.returncode == 1, short.stderr  # drift and unreachable hosts are warnings
    assert "pool train-h100: 100 hosts in 4 classes" in short.stdout  # ok, drifted NCCL, cordoned, no facts
    assert "2.21.5-1+cuda12.4*" in short.stdout
    assert "drift: nccl is mixed (2.18.5-1+cuda12.2 on 79, 2.21.5-1+cuda12.4 on 20)" in short.stdout
    assert "300 hosts in 3 pools: 297 reported, 3 unreachable" in short.stdout
    assert len(names_in(short.stdout)) < 70
    full = upgrade("facts", "-i", str(inventory), "--snapshot", str(facts), "--details")
    assert names_in(full.stdout) == names_in("".join(f"gpu-{i:05d}" for i in range(HOSTS)))
    assert "gpu-00099: unreachable: ssh: connect to host: No route to host" in full.stdout
    assert "No route to host" not in short.stdout
    assert "3 host(s) unreachable or without facts: gpu-00099" in short.stdout


def test_check_judges_each_class_once_and_says_how_many(fleet: tuple[Path, Path, Path]) -> None:
    inventory, facts, desired = fleet
    short = upgrade("check", str(desired), "-i", str(inventory), "--facts", str(facts))
    assert short.returncode == 1, short.stderr
    assert "297 hosts checked in 4 classes of hosts alike" in short.stdout
    assert "legacy-v100: 99 host(s), e.g." in short.stdout and "branch-end-of-life" in short.stdout
    assert "3 host(s) not checked (no facts): gpu-00099" in short.stdout
    full = upgrade("check", str(desired), "-i", str(inventory), "--facts", str(facts), "--details")
    assert len(names_in(full.stdout)) == HOSTS and len(names_in(short.stdout)) < 30


def test_plan_summarises_waves_per_class(fleet: tuple[Path, Path, Path], tmp_path: Path) -> None:
    inventory, facts, desired = fleet
    out = tmp_path / "p.plan.json"
    args = ("plan", str(desired), "-i", str(inventory), "--facts", str(facts), "--now", "2026-12-01T21:00:00+00:00",
            "-o", str(out))
    short = upgrade(*args)
    assert short.returncode == 0, short.stderr
    assert "4 classes of hosts alike move" in short.stdout and "in 7 classes" in short.stdout
    canary = next(line for line in short.stdout.splitlines() if line.startswith("│ canary "))
    assert "│ 3 " in canary and "c1 x1, c2 x1, c3 x1" in canary  # one host of each pool
    assert "warning: 3 host(s): excluded (cordoned): cordoned by hand: RMA: GPU 3 Xid 79" in short.stdout
    full = upgrade(*args, "--details")
    moving = names_in(full.stdout.split("pools")[0])
    assert len(moving) > 280 and len(names_in(short.stdout)) < len(moving) // 2
