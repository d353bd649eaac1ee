"""Shared playbook runs (``apply --share-window``): which callers share one run, and what each gets back.

The inner port here stands in for Ansible and records each run it is asked for (hosts, step); the real runs
are in tests/executor/test_shared_actions_lab.py. Callers are threads, as in the driver.
"""

from __future__ import annotations

import threading
import time
from typing import cast

from orchestrator.adapters.host_actions import AnsibleActions, SharedActions
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import StepOutcome


class Recorder:
    """Each run: the hosts it got; a host named in ``failing`` fails with its own message; a run of a host in
    ``slow`` takes that many seconds; ``broken`` makes every run raise."""

    def __init__(self, failing: tuple[str, ...] = (), slow: dict[str, float] | None = None,
                 broken: bool = False) -> None:
        self.runs: list[tuple[str, ...]] = []
        self.failing, self.slow, self.broken = failing, slow or {}, broken
        self.lock = threading.Lock()

    def run_steps(self, hosts: list[str], step: Step) -> dict[str, StepOutcome]:
        with self.lock:
            self.runs.append(tuple(sorted(hosts)))
        if self.broken:
            raise RuntimeError("ansible-runner vanished")
        time.sleep(max((self.slow.get(h, 0.0) for h in hosts), default=0.0))
        return {h: StepOutcome(ok=h not in self.failing, message=f"{h}: failed" if h in self.failing else "",
                               data={"host": h}) for h in hosts}

    def run_step(self, host: str, step: Step) -> StepOutcome:
        return self.run_steps([host], step)[host]


def step(kind: StepKind = StepKind.CHANGE, playbook: str = "upgrade_host.yml", **vars: str) -> Step:
    return Step(id=f"03-{kind.value}", kind=kind, estimate_s=60, playbook=playbook, vars=dict(vars))


def call_together(shared: SharedActions, calls: list[tuple[str, Step]],
                  gap_s: float = 0.0) -> dict[str, tuple[StepOutcome, float]]:
    """Each (host, step) from its own thread, ``gap_s`` apart: each host's outcome and when it came back."""
    out: dict[str, tuple[StepOutcome, float]] = {}
    t0 = time.monotonic()

    def one(host: str, s: Step) -> None:
        outcome = shared.run_step(host, s)
        out[host] = (outcome, time.monotonic() - t0)

    threads = []
    for host, s in calls:
        threads.append(threading.Thread(target=one, args=(host, s)))
        threads[-1].start()
        time.sleep(gap_s)
    for t in threads:
        t.join(10)
    return out


def shared(inner: Recorder, window_s: float = 0.3, most: int = 50) -> SharedActions:
    return SharedActions(cast(AnsibleActions, inner), window_s, most)


def test_hosts_at_the_same_step_within_the_window_share_one_run_and_each_gets_its_own_outcome() -> None:
    inner = Recorder(failing=("b",))
    got = call_together(shared(inner), [(h, step()) for h in ("a", "b", "c")], gap_s=0.05)
    assert inner.runs == [("a", "b", "c")]
    assert {h: (o.ok, o.data["host"]) for h, (o, _t) in got.items()} == {"a": (True, "a"), "b": (False, "b"),
                                                                          "c": (True, "c")}
    assert got["b"][0].message == "b: failed"


def test_other_vars_another_step_or_a_late_arrival_make_a_run_of_their_own() -> None:
    inner = Recorder()
    calls = [("a", step(upgrade_host_version="580.95.05")), ("b", step(upgrade_host_version="575.57.08")),
             ("c", step(StepKind.REBOOT, "reboot.yml"))]
    call_together(shared(inner), calls)
    assert sorted(inner.runs) == [("a",), ("b",), ("c",)]
    inner = Recorder()
    call_together(shared(inner, window_s=0.1), [("a", step()), ("b", step())], gap_s=0.4)
    assert inner.runs == [("a",), ("b",)]  # b came after a's run had started: its own run


def test_a_run_takes_at_most_most_hosts() -> None:
    inner = Recorder()
    call_together(shared(inner, most=2), [(h, step()) for h in ("a", "b", "c", "d", "e")], gap_s=0.02)
    assert sorted(len(r) for r in inner.runs) == [1, 2, 2]
    assert sorted(h for r in inner.runs for h in r) == ["a", "b", "c", "d", "e"]


def test_a_drain_runs_alone_so_one_long_job_holds_back_no_other_host() -> None:
    inner = Recorder(slow={"busy": 1.5})
    drain = step(StepKind.DRAIN, "drain.yml")
    got = call_together(shared(inner), [("busy", drain), ("idle", drain)], gap_s=0.05)
    assert sorted(inner.runs) == [("busy",), ("idle",)]
    assert got["idle"][1] < 0.5 < 1.5 <= got["busy"][1]  # idle is back at once, not when busy's job ends
    # the same two hosts at a step that is shared wait for each other
    inner = Recorder(slow={"busy": 1.0})
    got = call_together(shared(inner), [("busy", step()), ("idle", step())], gap_s=0.05)
    assert inner.runs == [("busy", "idle")] and got["idle"][1] >= 1.0


def test_a_broken_adapter_fails_the_step_on_every_host_of_the_run_with_its_reason() -> None:
    got = call_together(shared(Recorder(broken=True)), [("a", step()), ("b", step())], gap_s=0.02)
    assert {h: (o.ok, o.message) for h, (o, _t) in got.items()} == {
        "a": (False, "RuntimeError: ansible-runner vanished"), "b": (False, "RuntimeError: ansible-runner vanished")}
