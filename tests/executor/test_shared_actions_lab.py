"""Shared playbook runs with real Ansible on the lab: one `ansible-playbook` for several hosts at one step, each
host judged by its own tasks; a drain runs alone, so a host whose Slurm job keeps running holds back no other.

The steps are the plan's own (driver-only target on a fresh lab), run through the ports `apply --share-window`
builds (AnsibleActions inside SharedActions), each host from its own thread as the driver calls them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from orchestrator.adapters.host_actions import AnsibleActions, SharedActions
from orchestrator.lab.faults import Fault
from orchestrator.planner import Plan, load_plan
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import StepOutcome
from tests.executor.test_apply_lab import DRIVER_ONLY, make_plan
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab


def training(plan: Plan) -> list[str]:
    return sorted(r.name for r in plan.rows if r.wave is not None and plan.host(r.name).pool == "training")


def step_of(plan: Plan, host: str, kind: StepKind) -> Step:
    return next(s for s in plan.host(host).steps if s.kind == kind)


def together(port: SharedActions, calls: list[tuple[str, Step]]) -> dict[str, tuple[StepOutcome, float]]:
    """Each (host, step) from its own thread, started together: each host's outcome and seconds until it."""
    out: dict[str, tuple[StepOutcome, float]] = {}
    t0 = time.monotonic()

    def one(host: str, step: Step) -> None:
        out[host] = (port.run_step(host, step), time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return out


def test_a_driver_install_shared_by_three_hosts_is_one_run_and_fails_only_the_host_whose_install_fails(
        fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, _ = make_plan(fresh, tmp_path, DRIVER_ONLY)
    plan = load_plan(plan_path)
    hosts = training(plan)[:3]
    installs = {h: step_of(plan, h, StepKind.CHANGE) for h in hosts}
    assert len({(s.id, s.playbook, tuple(sorted(s.vars.items()))) for s in installs.values()}) == 1  # alike
    bad = hosts[1]
    fresh.lab.inject(bad, Fault.INSTALL_FAILS)
    port = SharedActions(AnsibleActions(fresh.inventory, state=tmp_path / "st"), window_s=2.0)
    got = together(port, list(installs.items()))
    assert port.runs == 1  # one ansible-playbook for the three
    assert {h: o.ok for h, (o, _t) in got.items()} == {h: h != bad for h in hosts}, got
    assert got[bad][0].message and not got[bad][0].unreachable
    step = installs[hosts[0]]
    assert step.package and step.build
    installed = {h: fresh.lab.exec(h, "dpkg-query", "-W", "-f=${Version}", step.package).stdout for h in hosts}
    assert {h: v == step.build for h, v in installed.items()} == {h: h != bad for h in hosts}, installed


def test_a_drain_runs_alone_so_a_host_whose_job_keeps_running_holds_back_no_other(fresh: LabHandle,
                                                                                  tmp_path: Path) -> None:
    plan_path, _ = make_plan(fresh, tmp_path, DRIVER_ONLY, policy={"drain": {"timeout": 30}})
    plan = load_plan(plan_path)
    busy, idle = training(plan)[:2]
    fresh.lab.inject(busy, Fault.BLOCKING_JOB, seconds=600)
    deadline = time.monotonic() + 30  # the job must hold the node before the drain starts, or it never will
    while fresh.slurm("squeue", "-h", "-w", busy, "-o", "%T").split() != ["RUNNING"]:
        assert time.monotonic() < deadline, "the blocking job did not start"
        time.sleep(0.2)
    drain = {h: step_of(plan, h, StepKind.DRAIN) for h in (busy, idle)}
    port = SharedActions(AnsibleActions(fresh.inventory, state=tmp_path / "st"), window_s=2.0)
    got = together(port, list(drain.items()))
    assert port.runs == 0  # neither went into a shared run
    assert got[idle][0].ok and got[idle][0].data.get("action") == "drained", got[idle]
    assert not got[busy][0].ok  # its job outlasted the 30 s timeout (give-up)
    assert got[idle][1] < 25 <= 30 <= got[busy][1], got  # idle came back long before busy's timeout
