"""A finished run in a real journal, made by the real driver with fake hosts on a simulated clock.

Steps take the time they take on real hosts (a driver install a minute, a reboot a few, a DCGM gate two), so a
report's timeline has something to show; h2's driver install fails (rolled back) and h4 is a straggler.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.adapters.journal import Journal
from orchestrator.app.execute import Driver
from orchestrator.planner import Plan
from orchestrator.planner.artifact import plan_json
from orchestrator.planner.model import Step, StepKind
from orchestrator.run.decide import METRIC, RunContext
from tests.run.test_decide import make_plan
from tests.support.fake_hosts import FakeHosts, fail_step

SECONDS = {StepKind.PRECHECK: 8, StepKind.DRAIN: 45, StepKind.CHANGE: 70, StepKind.REBOOT: 240,
           StepKind.VERIFY: 12, StepKind.GATE: 130, StepKind.UNCORDON: 4}
FAILURE = "E: Sub-process /usr/bin/dpkg returned an error code (1) <script>alert('x')</script> | *bold*"


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start
        self.lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)

    def iso(self) -> str:
        with self.lock:
            return self.now.isoformat(timespec="milliseconds")

    def at(self) -> datetime:
        with self.lock:
            return self.now


def simulated_run(folder: Path) -> tuple[Path, str, Plan]:
    """A run of the h100 scenario's plan in ``folder``: (state dir, run id, plan); the plan is saved beside it."""
    plan = make_plan(failure_budget={"per_wave": 2, "total": 2}, straggler_threshold=0.8)
    plan_path = folder / "h100.plan.json"
    plan_path.write_text(plan_json(plan))
    clock = SimClock(datetime(2026, 12, 1, 22, 0, tzinfo=UTC))

    def during(host: str, step: Step) -> None:
        clock.advance(SECONDS[step.kind])

    state = folder / "state"
    with Journal(state / "journal.db", clock=clock.iso) as journal:
        journal.put_baseline("h1", METRIC, 52.0, "run-earlier")
        journal.put_baseline("h4", METRIC, 50.0, "run-earlier")
        run_id = journal.start_run(plan.plan_hash, str(plan_path))
        journal.record(run_id, "run_waves", data={"waves": [w.name for w in plan.waves]})
        fake = FakeHosts(plan, fail=fail_step("h2", StepKind.CHANGE, FAILURE), during=during,
                         figure=lambda h: {"h1": 51.0, "h3": 49.5, "h4": 21.0}.get(h, 50.0))
        ctx = RunContext(plan, plan.waves, journal.baselines(METRIC, exclude_run=run_id))
        final = Driver(ctx, journal, run_id, fake, sleep=clock.advance, clock=clock.at).run()
        journal.finish_run(run_id, final.status, {"waves": [w.name for w in plan.waves], "reason": final.reason})
    return state, run_id, plan
