"""A fake host action port for driving ``app.execute.Driver`` without Ansible: answers like a real host.

It reports what the entry playbooks report (precheck and verify: the host's stack; gate: a health figure;
drain: what it did) and fails the steps a test names. ``during`` runs inside a step, on the driver's worker
thread, so a test can look at the run from outside while a host is busy (scrape metrics, read the journal).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from orchestrator.planner import Plan
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import StepOutcome


class FakeHosts:
    def __init__(self, plan: Plan, fail: Callable[[str, Step], str | None] = lambda h, s: None,
                 figure: Callable[[str], float] = lambda h: 50.0,
                 during: Callable[[str, Step], None] | None = None) -> None:
        self.plan, self.fail, self.figure, self.during = plan, fail, figure, during
        self.ran: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def run_step(self, host: str, step: Step) -> StepOutcome:
        with self._lock:
            self.ran.append((host, step.id))
        if self.during is not None:
            self.during(host, step)
        why = self.fail(host, step)
        if why:
            return StepOutcome(ok=False, message=why)
        hp = self.plan.host(host)
        rollback = step.id.startswith("rb-")
        data: dict[str, object] = {}
        if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
            at_target = not rollback and step.kind == StepKind.VERIFY
            stack = hp.target if at_target and hp.target is not None else hp.current
            data = {"stack": stack.model_dump(mode="json"), "driver_status": "ok"}
        if step.kind == StepKind.GATE:
            data = {"figures": {"pcie_h2d_gbps": self.figure(host)}}
        if step.kind == StepKind.DRAIN:
            data = {"action": "drained"}
        return StepOutcome(ok=True, data=data)


Fail = Callable[[str, Step], str | None]


def fail_step(host: str, kind: StepKind, message: str = "E: boom [/var/lib/dpkg/lock]") -> Fail:
    """The host's upgrade step of this kind fails; its rollback steps succeed."""
    def fail(h: str, step: Step) -> str | None:
        return message if h == host and step.kind == kind and not step.id.startswith("rb-") else None
    return fail
