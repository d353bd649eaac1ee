"""The host action port and its Ansible implementation: one planned step, one entry playbook run, as planned.

``run_step`` runs exactly the step's ``playbook`` with exactly its ``vars`` (plus the site's extra vars, which
the plan's vars override) and turns the playbook's ``set_stats`` report into data for the decisions: the
host's reported stack for precheck and verify, gate figures, what the drain did. A failed playbook is a
:class:`StepOutcome` with ``ok=False`` and the failing task's message, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.adapters.ansible import HostStatus, PlaybookResult, gate_result, run_playbook, stats
from orchestrator.adapters.facts import now_iso, snapshot_from_run
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import HostActions, StepOutcome

__all__ = ["AnsibleActions", "HostActions", "StepOutcome", "nothing_to_run"]


def nothing_to_run(step: Step) -> StepOutcome:
    """A step whose plan names no playbook: fine when the target leaves the component alone, else a failure."""
    if step.kind == StepKind.CHANGE and step.package and step.build is None:
        return StepOutcome(ok=False, message=f"no build of {step.package} {step.to_version} was offered by the "
                                             "host's repositories when the plan was made")
    return StepOutcome(ok=True, message="nothing to run")


def _outcome(result: PlaybookResult, host: str, key: str | None) -> StepOutcome:
    status = result.hosts.get(host)
    data = (stats(result, host, key) or {}) if key else {}
    if status == HostStatus.OK and result.status == "successful":
        return StepOutcome(ok=True, data=data)
    messages = result.host_messages(host)
    message = messages[-1] if messages else f"{result.playbook} ended {result.status} (rc {result.rc})"
    return StepOutcome(ok=False, message=message, unreachable=status == HostStatus.UNREACHABLE, data=data)


class AnsibleActions:
    """Runs the plan's entry playbooks (``playbooks/*.yml``) with ``--limit HOST`` against the inventory."""

    def __init__(self, inventory: Path, extravars: Mapping[str, Any] | None = None,
                 timeout_s: int | None = None, state: Path | None = None) -> None:
        self.inventory = inventory
        self.extravars = dict(extravars or {})
        self.timeout_s = timeout_s
        self.state = state  # the state folder: ansible-runner's private data lives in its runner/

    def run_step(self, host: str, step: Step) -> StepOutcome:
        if step.playbook is None:
            return nothing_to_run(step)
        result = run_playbook(step.playbook, self.inventory, limit=host, extravars={**self.extravars, **step.vars},
                              forks=1, timeout=self.timeout_s, state=self.state)
        if step.playbook == "facts.yml":
            return self._facts(host, result)
        if step.playbook == "gate.yml":
            outcome = _outcome(result, host, None)
            gate = gate_result(result, host)
            if gate is None:
                return outcome
            data = {"figures": dict(gate.figures), "problems": list(gate.problems)}
            if not gate.passed:
                return StepOutcome(ok=False, message="; ".join(gate.problems) or "gate failed", data=data)
            return StepOutcome(ok=outcome.ok, message=outcome.message, unreachable=outcome.unreachable, data=data)
        key = {"drain.yml": "gpu_drain", "uncordon.yml": "gpu_drain", "upgrade_host.yml": "gpu_upgrade",
               "reboot.yml": "gpu_reboot"}.get(step.playbook)
        return _outcome(result, host, key)

    def _facts(self, host: str, result: PlaybookResult) -> StepOutcome:
        snap = snapshot_from_run(str(self.inventory), [host], result, now_iso())
        if snap.hosts:
            facts = snap.hosts[0]
            return StepOutcome(ok=True, data={"stack": facts.stack().model_dump(mode="json"),
                                              "driver_status": facts.driver.status.value,
                                              "driver_message": facts.driver.message or "",
                                              "available": facts.package_index.available})
        reason = snap.unreachable[0].reason if snap.unreachable else "no facts"
        return StepOutcome(ok=False, message=reason, unreachable=reason.startswith("unreachable"))
