"""The Slurm drain-ends reader against the lab's real Slurm: real jobs submitted with ``sbatch --time``, one real
``squeue``, the hosts read from the lab's inventory. Jobs are cancelled in ``finally``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.adapters.drain_ends import SlurmDrainEnds
from orchestrator.adapters.inventory import load_inventory
from orchestrator.lab import slurm
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab


def submit(lab: LabHandle, nodes: str, limit: str, count: int = 1) -> str:
    out = lab.slurm("sbatch", "--parsable", "-w", nodes, "-N", str(count), "-p", "all", "-J", "drain-ends-test",
                    "-o", "/dev/null", f"--time={limit}", "--wrap", "sleep 900")
    return out.strip().split(";")[0]


def wait_running(lab: LabHandle, jobs: list[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        states = lab.slurm("squeue", "-h", "-j", ",".join(jobs), "-o", "%T").split()
        if states == ["RUNNING"] * len(jobs):
            return
        time.sleep(0.2)
    raise AssertionError(f"jobs {jobs} not running after {timeout:g} s: {states}")


def test_the_reader_gives_each_busy_slurm_node_its_jobs_end_and_leaves_idle_and_unlimited_nodes_out(
        lab: LabHandle) -> None:
    hosts = load_inventory(lab.inventory)
    pair, alone, unlimited = ("gpu-h100-01", "gpu-h100-02"), "gpu-a100-01", "gpu-v100-01"
    submitted = datetime.now(UTC)
    jobs: list[str] = []
    try:
        jobs.append(submit(lab, ",".join(pair), "20", count=2))  # squeue prints the pair as gpu-h100-[01-02]
        jobs.append(submit(lab, alone, "0-00:10:00"))
        jobs.append(submit(lab, alone, "5"))  # the latest end counts: 10 min, not 5
        jobs.append(submit(lab, unlimited, "UNLIMITED"))
        wait_running(lab, jobs)
        found = SlurmDrainEnds(env=slurm.env(lab.lab.paths))(hosts)
        assert found.ignored == ()
        idle = {"gpu-h100-03", "gpu-h100-04"}
        assert idle | {*pair, alone, unlimited} <= {h.name for h in hosts if h.scheduler.kind == "slurm"}
        assert set(found.ends) == {*pair, alone}  # idle nodes and the node with an unlimited job: no end
        for host, limit in [(pair[0], 20), (pair[1], 20), (alone, 10)]:
            end = found.ends[host]
            assert end.tzinfo is not None
            expected = submitted + timedelta(minutes=limit)
            assert abs((end - expected).total_seconds()) < 30, (host, end, expected)
    finally:
        if jobs:
            lab.slurm("scancel", *jobs)

