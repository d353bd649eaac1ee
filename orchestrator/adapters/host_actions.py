"""What the executor does to one host, each action one entry playbook run through the ansible-runner adapter.

The contract of the playbooks (extra vars in, ``set_stats`` out) is docs/playbooks.md. A failed playbook is
an :class:`Outcome` with ``ok=False`` and the failing task's message, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.adapters.ansible import HostStatus, PlaybookResult, gate_result, run_playbook, stats
from orchestrator.adapters.facts import now_iso, snapshot_from_run
from orchestrator.model.facts import HostFacts
from orchestrator.model.gates import GateResult
from orchestrator.model.stack import Connection


@dataclass(frozen=True)
class Outcome:
    """One action's result: ok or not, why, and the structured data the playbook reported."""

    ok: bool
    message: str = ""
    status: str = "successful"
    rc: int = 0
    unreachable: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    facts: HostFacts | None = None
    gate: GateResult | None = None


class HostActions(Protocol):
    def facts(self, host: str) -> Outcome: ...
    def drain(self, host: str, reason: str, timeout_s: int) -> Outcome: ...
    def change(self, host: str, component: str, version: str, extra: dict[str, Any]) -> Outcome: ...
    def validate(self, host: str, level: int, expected: dict[str, Any]) -> Outcome: ...
    def uncordon(self, host: str, reason: str) -> Outcome: ...


def _outcome(result: PlaybookResult, host: str, key: str | None) -> Outcome:
    status = result.hosts.get(host)
    data = (stats(result, host, key) or {}) if key else {}
    if status == HostStatus.OK and result.status == "successful":
        return Outcome(ok=True, status=result.status, rc=result.rc, data=data)
    messages = result.host_messages(host)
    message = messages[-1] if messages else f"{result.playbook} ended {result.status} (rc {result.rc})"
    return Outcome(ok=False, message=message, status=result.status, rc=result.rc,
                   unreachable=status == HostStatus.UNREACHABLE, data=data)


class AnsibleActions:
    """Runs the entry playbooks (``playbooks/*.yml``) with ``--limit HOST`` against the inventory."""

    def __init__(self, inventory: Path, connections: dict[str, Connection], extravars: dict[str, Any] | None = None,
                 timeout_s: int | None = None) -> None:
        self.inventory = inventory
        self.connections = connections
        self.extravars = dict(extravars or {})
        self.timeout_s = timeout_s

    def _run(self, playbook: str, host: str, extravars: dict[str, Any]) -> PlaybookResult:
        return run_playbook(playbook, self.inventory, limit=host, extravars={**self.extravars, **extravars},
                            forks=1, timeout=self.timeout_s)

    def facts(self, host: str) -> Outcome:
        result = self._run("facts.yml", host, {})
        snap = snapshot_from_run(str(self.inventory), [host], result, now_iso())
        if snap.hosts:
            return Outcome(ok=True, facts=snap.hosts[0])
        reason = snap.unreachable[0].reason if snap.unreachable else "no facts"
        return Outcome(ok=False, message=reason, status=result.status, rc=result.rc,
                       unreachable=reason.startswith("unreachable"))

    def drain(self, host: str, reason: str, timeout_s: int) -> Outcome:
        return _outcome(self._run("drain.yml", host, {"drain_reason": reason, "drain_timeout_s": timeout_s}),
                        host, "gpu_drain")

    def change(self, host: str, component: str, version: str, extra: dict[str, Any]) -> Outcome:
        result = self._run("upgrade_host.yml", host,
                           {"upgrade_component": component, "upgrade_version": version, **extra})
        return _outcome(result, host, "gpu_upgrade")

    def validate(self, host: str, level: int, expected: dict[str, Any]) -> Outcome:
        result = self._run("validate.yml", host, {"gate_level": level, **expected})
        outcome = _outcome(result, host, None)
        gate = gate_result(result, host)
        if gate is not None and not gate.passed:
            return Outcome(ok=False, message="; ".join(gate.problems) or "gate failed", status=result.status,
                           rc=result.rc, gate=gate)
        return Outcome(ok=outcome.ok, message=outcome.message, status=outcome.status, rc=outcome.rc,
                       unreachable=outcome.unreachable, gate=gate)

    def uncordon(self, host: str, reason: str) -> Outcome:
        """Resume a node we drained: the reason must be ours, or the role leaves it alone as a hand drain."""
        return _outcome(self._run("uncordon.yml", host, {"drain_reason": reason}), host, "gpu_drain")
