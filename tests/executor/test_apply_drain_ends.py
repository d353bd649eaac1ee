"""apply --flow asks the drain-ends source once for the selected hosts; a squeue that fails is one warning and
the planned order, never a stopped run. Hosts are faked (FakeHosts); the failing squeue is the real binary."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.adapters.drain_ends import SlurmDrainEnds
from orchestrator.adapters.journal import Journal
from orchestrator.app.apply import ApplyResult, apply
from orchestrator.model.inventory import InventoryHost
from orchestrator.planner import load_plan
from orchestrator.ports import DrainEnds, DrainEndsSource
from tests.support.example_plan import FACTS, NOW, write_example_plan
from tests.support.fake_hosts import FakeHosts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_plan(tmp_path_factory.mktemp("plan") / "example.plan.json")


class Recorded:
    """A drain-ends source that answers from a table and remembers which hosts it was asked about."""

    def __init__(self, found: DrainEnds) -> None:
        self.found = found
        self.asked: list[list[str]] = []

    def __call__(self, hosts: Sequence[InventoryHost]) -> DrainEnds:
        self.asked.append([h.name for h in hosts])
        return self.found


def canary(plan_path: Path, state: Path, *, flow: bool, source: DrainEndsSource) -> ApplyResult:
    plan = load_plan(plan_path)
    return apply(plan, plan_path, "canary", facts=FACTS, state=state, now=NOW, ignore_window=True,
                 actions=FakeHosts(plan), sleep=lambda s: None, flow=flow, drain_source=source)


def flow_event(state: Path, run_id: str) -> dict[str, object]:
    with Journal(state / "journal.db") as journal:
        return next(e.data for e in journal.events(run_id) if e.kind == "run_flow")


def test_a_failing_squeue_is_one_warning_and_the_run_goes_on(plan_path: Path, tmp_path: Path) -> None:
    if shutil.which("squeue") is None:
        pytest.skip("squeue not installed (apt-get install slurm-client)")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=x\nNotAKey=1\n")
    source = SlurmDrainEnds(env={"PATH": "/usr/bin:/bin", "SLURM_CONF": str(conf)})
    outcome = canary(plan_path, tmp_path / "state", flow=True, source=source)
    assert outcome.report.status == "done"
    assert outcome.warnings == ["drain-aware order off: squeue: fatal: Unable to process configuration file; "
                                "the planned order is used"]
    assert flow_event(tmp_path / "state", outcome.run_id) == {"drain_ends": 0}


def test_flow_asks_once_for_the_selected_hosts_and_unread_lines_are_one_warning(plan_path: Path,
                                                                                tmp_path: Path) -> None:
    plan = load_plan(plan_path)
    selected = sorted({h for w in plan.waves if w.name == "canary" for h in w.hosts})
    ends = {selected[0]: NOW + timedelta(hours=1)}
    source = Recorded(DrainEnds(ends, ("garbage", "more garbage")))
    outcome = canary(plan_path, tmp_path / "state", flow=True, source=source)
    assert outcome.report.status == "done"
    assert [sorted(a) for a in source.asked] == [selected]
    assert outcome.warnings == ["drain-aware order: 2 line(s) of the scheduler's answer not understood, left out "
                                "(first: 'garbage')"]
    assert flow_event(tmp_path / "state", outcome.run_id) == {"drain_ends": 1}


def test_without_flow_the_source_is_not_asked(plan_path: Path, tmp_path: Path) -> None:
    source = Recorded(DrainEnds({}))
    outcome = canary(plan_path, tmp_path / "state", flow=False, source=source)
    assert outcome.report.status == "done"
    assert source.asked == [] and outcome.warnings == []
