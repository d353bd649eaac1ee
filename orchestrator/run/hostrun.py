"""One host through its planned steps, every step journaled, and back to its recorded stack if anything fails.

Steps already finished in the journal are not repeated (a resumed run continues where the killed one
stopped; a step that started but never ended runs again, which the idempotent roles make harmless).
A host that fails a step or a gate is rolled back with steps built by the same planner code, verified, and
uncordoned only if healthy; otherwise it stays drained, quarantined with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.adapters.host_actions import HostActions, Outcome
from orchestrator.adapters.journal import Journal
from orchestrator.knowledge import CheckContext, Hardware, Knowledge
from orchestrator.model.drift import value_of
from orchestrator.model.facts import DriverStatus
from orchestrator.model.policy import RolloutPolicy
from orchestrator.model.stack import COMPONENTS, SoftwareStack
from orchestrator.planner import HostPlan, Step, StepKind
from orchestrator.planner.order import OrderFinder, changed
from orchestrator.planner.packages import PackageNotFound, cudnn_cuda_major, package_name, pick_version
from orchestrator.planner.steps import ordered_steps, step_graph
from orchestrator.run.states import HostState

S = HostState
Notify = Callable[[str, str, str], None]  # host, state or step, detail


@dataclass(frozen=True)
class HostJob:
    plan: HostPlan
    wave: str
    hardware: Hardware


class StepFailed(Exception):
    """Internal: a step did not succeed; carries the outcome for the journal and the reason."""

    def __init__(self, step: Step | None, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.step, self.outcome = step, outcome


def gate_level(gate: str | None) -> int:
    """``dcgm-r2`` -> 2; other gates run the level-1 checks plus their own."""
    if gate and gate.startswith("dcgm-r") and gate[6:].isdigit():
        return int(gate[6:])
    return 1


def mismatches(live: SoftwareStack, target: SoftwareStack) -> list[str]:
    """Components whose installed version is not the target's; a two-part CUDA target accepts any update."""
    out = []
    for c in COMPONENTS:
        want = target.component(c)
        if want is None or c == "kernel":
            continue
        have = live.component(c)
        if c == "cuda" and have is not None and target.cuda is not None and target.cuda.text.count(".") == 1:
            same = live.cuda is not None and live.cuda.major_minor == target.cuda
        else:
            same = have == want
        if not same:
            out.append(f"{c} is {value_of(live, c)}, planned {value_of(target, c)}")
    return out


class HostRunner:
    """Runs hosts of one run; thread-safe as long as each host is run by one thread at a time."""

    def __init__(self, actions: HostActions, journal: Journal, run_id: str, policy: RolloutPolicy,
                 knowledge: Knowledge, notify: Notify | None = None) -> None:
        self.actions = actions
        self.journal = journal
        self.run_id = run_id
        self.policy = policy
        self.knowledge = knowledge
        self.notify = notify or (lambda host, what, detail: None)
        # one drain reason per run: uncordon resumes only nodes drained with it (others are hand drains)
        self.reason = f"gpu-fleet-upgrade {run_id}"

    # ---------------------------------------------------------------- state

    def state(self, host: str) -> HostState | None:
        record = self.journal.host_states(self.run_id).get(host)
        return record.state if record else None

    def _move(self, job: HostJob, new: HostState, reason: str, stack_before: dict[str, Any] | None = None) -> None:
        if self.state(job.plan.name) == new:
            return
        self.journal.set_state(self.run_id, job.plan.name, job.wave, new, reason, stack_before=stack_before)
        self.notify(job.plan.name, new.value, reason)

    # ---------------------------------------------------------------- upgrade

    def upgrade(self, job: HostJob) -> HostState:
        """Run the host's remaining steps; returns its terminal state."""
        host = job.plan.name
        if self.state(host) is None:
            self._move(job, S.PENDING, "planned", stack_before=job.plan.current.model_dump(mode="json"))
        current = self.state(host)
        if current in (S.FAILED, S.ROLLING_BACK):
            return self.rollback(job, self.journal.host_states(self.run_id)[host].reason)
        if current in (S.DONE, S.ROLLED_BACK, S.QUARANTINED, S.SKIPPED):
            return current
        for step in job.plan.steps:
            if step.id in self.journal.completed_steps(self.run_id, host):  # one step may finish another's
                continue
            try:
                skipped = self._step(job, step)
            except StepFailed as exc:
                self._record_end(job, step, exc.outcome)
                if self.state(host) == S.PENDING and step.kind == StepKind.PRECHECK:
                    self._move(job, S.SKIPPED, f"precheck failed, nothing changed: {exc.outcome.message}")
                    return S.SKIPPED
                return self.rollback(job, f"{step.id} failed: {exc.outcome.message}")
            if skipped is not None:
                return skipped
        return self.state(host) or S.DONE

    def _record_end(self, job: HostJob, step: Step, outcome: Outcome) -> None:
        self.journal.record(self.run_id, "step_end", host=job.plan.name, wave=job.wave, step=step.id,
                            status="successful" if outcome.ok else "failed", rc=outcome.rc,
                            data={"message": outcome.message, **({"report": outcome.data} if outcome.data else {})})

    def _step(self, job: HostJob, step: Step) -> HostState | None:
        host = job.plan.name
        self.journal.record(self.run_id, "step_start", host=host, wave=job.wave, step=step.id,
                            data={"kind": step.kind.value, "component": step.component, "to": step.to_version})
        self.notify(host, step.id, "started")
        outcome = self._do(job, step)
        if not outcome.ok:
            raise StepFailed(step, outcome)
        self._record_end(job, step, outcome)
        if step.kind == StepKind.CORDON and outcome.data.get("action") == "left_alone":
            self._move(job, S.SKIPPED, f"cordoned by hand, left alone: {outcome.data.get('reason', '')}".strip())
            return S.SKIPPED
        after = {StepKind.CORDON: S.CORDONED, StepKind.DRAIN: S.DRAINED, StepKind.CHANGE: S.UPGRADING,
                 StepKind.REBOOT: S.REBOOTING, StepKind.VERIFY: S.VERIFYING, StepKind.UNCORDON: S.DONE}
        if step.kind == StepKind.CORDON:
            # drain.yml cordons and drains in one run
            self._move(job, S.CORDONED, "cordoned")
            self._move(job, S.DRAINED, "drained")
            drain = next((s for s in job.plan.steps if s.kind == StepKind.DRAIN), None)
            if drain is not None:
                self._record_end(job, drain, outcome)
        elif step.kind == StepKind.VALIDATE:
            last = [s for s in job.plan.steps if s.kind == StepKind.VALIDATE][-1]
            if step.id == last.id:
                self._move(job, S.VALIDATED, "gates passed")
        elif step.kind in after:
            self._move(job, after[step.kind], step.id)
        return None

    def _do(self, job: HostJob, step: Step) -> Outcome:
        host, target = job.plan.name, job.plan.target or job.plan.current
        if step.kind == StepKind.PRECHECK:
            return self._precheck(job)
        if step.kind in (StepKind.CORDON, StepKind.DRAIN):
            return self.actions.drain(host, self.reason, self.policy.drain.timeout)
        if step.kind == StepKind.CHANGE:
            assert step.component is not None
            if step.component == "kernel_module":  # moves with the driver package (…-open or not)
                return Outcome(ok=True, message="with the driver")
            reboot_later = any(s.kind == StepKind.REBOOT for s in job.plan.steps)
            return self._change(host, step.component, target, reboot=False, start=not reboot_later)
        if step.kind == StepKind.REBOOT:
            return self._change(host, "driver", target, reboot=True)
        if step.kind == StepKind.VERIFY:
            return self._verify(host, target)
        if step.kind == StepKind.VALIDATE:
            expect = {"gate_expect_driver": str(target.driver or "")}
            outcome = self.actions.validate(host, gate_level(step.gate), expect)
            if outcome.gate is not None:
                self.journal.record(self.run_id, "gate", host=host, wave=job.wave, step=step.id,
                                    status="passed" if outcome.ok else "failed",
                                    data={"figures": outcome.gate.figures, "problems": outcome.gate.problems})
            return outcome
        if step.kind == StepKind.UNCORDON:
            resumed = self.actions.uncordon(host, self.reason)
            if resumed.ok and resumed.data.get("action") == "left_alone":
                return Outcome(ok=False, message=f"not resumed: {resumed.data.get('detail', 'left alone')}")
            return resumed
        raise AssertionError(f"unknown step kind {step.kind}")

    def _precheck(self, job: HostJob) -> Outcome:
        found = self.actions.facts(job.plan.name)
        if not found.ok or found.facts is None:
            return Outcome(ok=False, message=found.message, unreachable=found.unreachable)
        diff = mismatches(found.facts.stack(), job.plan.current)
        if diff:
            return Outcome(ok=False, message="host changed since the plan was made: " + "; ".join(diff))
        return Outcome(ok=True)

    def _change(self, host: str, component: str, target: SoftwareStack, *, reboot: bool,
                start: bool = True) -> Outcome:
        planned = target.component(component)
        if planned is None:
            return Outcome(ok=True, message=f"{component} not managed")
        package = package_name(component, target)
        try:
            version = pick_version(component, str(planned), self.actions.available(host, package))
            if version is None:
                raise PackageNotFound(host, package, str(planned), self.actions.available(host, package))
        except Exception as exc:  # unreachable host or missing build: a failed step, not a crash
            return Outcome(ok=False, message=str(exc))
        extra: dict[str, Any] = {"upgrade_package": package, "upgrade_reboot": reboot}
        if component == "driver":
            extra["upgrade_kernel_module"] = str(target.kernel_module or "auto")
        if component == "cudnn":
            extra["upgrade_cudnn_cuda_major"] = str(cudnn_cuda_major(target))
        if component == "fabric_manager" and not start:
            # fabric manager refuses to run against the old kernel module; the reboot starts it
            extra["fabric_manager_start"] = False
        return self.actions.change(host, component, version, extra)

    def _verify(self, host: str, target: SoftwareStack) -> Outcome:
        found = self.actions.facts(host)
        if not found.ok or found.facts is None:
            return Outcome(ok=False, message=found.message, unreachable=found.unreachable)
        if found.facts.driver.status != DriverStatus.OK and target.driver is not None:
            return Outcome(ok=False, message=f"driver {found.facts.driver.status}: {found.facts.driver.message}")
        diff = mismatches(found.facts.stack(), target)
        return Outcome(ok=not diff, message="; ".join(diff))

    # ---------------------------------------------------------------- rollback

    def rollback(self, job: HostJob, reason: str) -> HostState:
        """Back to the recorded stack with planner-ordered steps; healthy -> uncordoned, else quarantined."""
        host = job.plan.name
        previous = self.state(host)
        if previous is None:
            self._move(job, S.PENDING, "rollback requested",
                       stack_before=job.plan.current.model_dump(mode="json"))
        # a host back in service (done) or never drained must be drained before packages move under it
        in_service = previous in (None, S.PENDING, S.DONE)
        if self.state(host) not in (S.FAILED, S.ROLLING_BACK, S.QUARANTINED):
            self._move(job, S.FAILED, reason)
        if self.state(host) != S.ROLLING_BACK:
            self._move(job, S.ROLLING_BACK, reason)
        record = self.journal.host_states(self.run_id)[host]
        before = SoftwareStack.model_validate(record.stack_before or job.plan.current.model_dump(mode="json"))
        try:
            if in_service:
                drained = self.actions.drain(host, self.reason, self.policy.drain.timeout)
                if not drained.ok:
                    raise StepFailed(None, Outcome(ok=False, message=f"drain: {drained.message}"))
            self._roll_back_to(job, before)
        except StepFailed as exc:
            self.journal.record(self.run_id, "rollback_failed", host=host, wave=job.wave,
                                data={"message": exc.outcome.message})
            self._move(job, S.QUARANTINED, f"{reason}; rollback failed: {exc.outcome.message}; left drained")
            return S.QUARANTINED
        self._move(job, S.ROLLED_BACK, f"{reason}; rolled back to {before.describe()}")
        return S.ROLLED_BACK

    def _roll_back_to(self, job: HostJob, before: SoftwareStack) -> None:
        host = job.plan.name

        def check(outcome: Outcome, what: str) -> Outcome:
            self.journal.record(self.run_id, "rollback_step", host=host, wave=job.wave, step=what,
                                status="successful" if outcome.ok else "failed", rc=outcome.rc,
                                data={"message": outcome.message})
            if not outcome.ok:
                raise StepFailed(None, Outcome(ok=False, message=f"{what}: {outcome.message}"))
            return outcome

        found = check(self.actions.facts(host), "facts")
        assert found.facts is not None
        now = found.facts.stack()
        if changed(now, before):
            ctx = CheckContext(pool=job.plan.pool)
            order = OrderFinder(self.knowledge, ctx).order(job.hardware, now, before)
            steps = ordered_steps(step_graph(now, before, order, (), self.policy.estimates))
            reboot_later = any(s.kind == StepKind.REBOOT for s in steps)
            for step in steps:
                if step.kind == StepKind.CHANGE and step.component and step.component != "kernel_module":
                    check(self._change(host, step.component, before, reboot=False, start=not reboot_later),
                          f"rollback {step.component}")
                elif step.kind == StepKind.REBOOT:
                    check(self._change(host, "driver", before, reboot=True), "rollback reboot")
        elif found.facts.driver.status == DriverStatus.VERSION_MISMATCH and before.driver is not None:
            check(self._change(host, "driver", before, reboot=True), "rollback reboot")
        check(self._verify(host, before), "rollback verify")
        for gate in self.policy.gates:
            check(self.actions.validate(host, gate_level(gate.value), {"gate_expect_driver": str(before.driver or "")}),
                  f"rollback validate-{gate.value}")
        check(self.actions.uncordon(host, self.reason), "rollback uncordon")
