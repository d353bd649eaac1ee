"""The Slurm drain-ends reader against the lab's real Slurm: real jobs submitted with ``sbatch --time``, one real
``squeue``, the hosts read from the lab's inventory; and `upgrade plan --canary-by-jobs` choosing its canary
from them. Jobs are cancelled in ``finally``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters.drain_ends import SlurmDrainEnds
from orchestrator.adapters.inventory import load_inventory
from orchestrator.lab import slurm
from tests.executor.test_apply_lab import DRIVER_ONLY
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
        assert found.open_ended == (unlimited,)  # busy without an end, unlike the idle ones
        for host, limit in [(pair[0], 20), (pair[1], 20), (alone, 10)]:
            end = found.ends[host]
            assert end.tzinfo is not None
            expected = submitted + timedelta(minutes=limit)
            assert abs((end - expected).total_seconds()) < 30, (host, end, expected)
    finally:
        if jobs:
            lab.slurm("scancel", *jobs)



ROOT = Path(__file__).resolve().parents[2]


def plan_canary(lab: LabHandle, tmp_path: Path, *flags: str) -> tuple[dict[str, str], str]:
    """``upgrade plan`` on the lab (live facts, the driver-only target); the canary host of each pool, and what
    the command printed."""
    desired = tmp_path / "desired.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "pools": DRIVER_ONLY, "policy": {
        "canary": 1, "waves": ["100%"], "max_unavailable": 2, "max_per_domain": {"rack": 1}}}))
    out = tmp_path / f"plan{len(flags)}.json"
    done = subprocess.run([sys.executable, "-m", "orchestrator", "plan", "-i", str(lab.inventory), str(desired),
                           "-o", str(out), "--details", *flags],
                          capture_output=True, text=True, cwd=ROOT, env=slurm.env(lab.lab.paths), timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(out.read_text())
    pools = {row[0]: plan["classes"][row[2]]["pool"] for row in plan["rows"]}
    assert plan["waves"][0]["name"] == "canary"
    return {pools[h]: h for h in plan["waves"][0]["hosts"]}, done.stdout + done.stderr


def test_plan_canary_by_jobs_takes_an_idle_host_over_the_one_a_long_job_holds(lab: LabHandle,
                                                                                  tmp_path: Path) -> None:
    by_name, said = plan_canary(lab, tmp_path)
    assert "chosen by" not in said
    busy = by_name["training"]  # the training canary by name; give it a job with two hours to run
    jobs: list[str] = []
    try:
        jobs.append(submit(lab, busy, "120"))
        wait_running(lab, jobs)
        by_jobs, said = plan_canary(lab, tmp_path, "--canary-by-jobs")
        assert by_jobs["training"] != busy
        assert by_jobs["training"] not in found_busy(lab)
        assert {p: h for p, h in by_jobs.items() if p != "training"} == \
            {p: h for p, h in by_name.items() if p != "training"}  # the other pools' canaries were idle anyway
        assert "chosen by after the spread over failure domains, the host free soonest" in said
        assert "1 host(s) running jobs with an expected end, 0 without one" in said
    finally:
        if jobs:
            lab.slurm("scancel", *jobs)


def found_busy(lab: LabHandle) -> set[str]:
    found = SlurmDrainEnds(env=slurm.env(lab.lab.paths))(load_inventory(lab.inventory))
    return set(found.ends) | set(found.open_ended)
