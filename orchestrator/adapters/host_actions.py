"""The host action port and its Ansible implementation: one planned step, one entry playbook run, as planned.

``run_step`` runs exactly the step's ``playbook`` with exactly its ``vars`` (plus the site's extra vars, which
the plan's vars override) and turns the playbook's ``set_stats`` report into data for the decisions: the
host's reported stack for precheck and verify, gate figures, what the drain did. A failed playbook is a
:class:`StepOutcome` with ``ok=False`` and the failing task's message, never an exception.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.adapters.ansible import HostStatus, PlaybookResult, gate_result, run_playbook, stats
from orchestrator.adapters.facts import now_iso, snapshot_from_run
from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import HostActions, StepOutcome

__all__ = ["AnsibleActions", "HostActions", "SharedActions", "StepOutcome", "nothing_to_run"]
MAX_FORKS = 50


def nothing_to_run(step: Step) -> StepOutcome:
    """A step whose plan names no playbook: fine when the target leaves the component alone, else a failure."""
    if step.kind == StepKind.CHANGE and step.package and step.build is None:
        return StepOutcome(ok=False, message=f"no build of {step.package} {step.to_version} was offered by the "
                                             "host's repositories when the plan was made")
    return StepOutcome(ok=True, message="nothing to run")


def _outcome(result: PlaybookResult, host: str, key: str | None, shared: bool = False) -> StepOutcome:
    status = result.hosts.get(host)
    data = (stats(result, host, key) or {}) if key else {}
    # a shared run fails as a whole when one of its hosts fails: each host is judged by its own tasks
    if status == HostStatus.OK and (shared or result.status == "successful"):
        return StepOutcome(ok=True, data=data)
    if shared and status is None and result.status == "successful":
        return StepOutcome(ok=True, data=data)  # every task skipped for this host (nothing to change)
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
        return self.run_steps([host], step)[host]

    def run_steps(self, hosts: list[str], step: Step) -> dict[str, StepOutcome]:
        """One playbook run for the same step on several hosts (``--limit`` over them, a fork each); each
        host's outcome from its own tasks."""
        if step.playbook is None:
            return {h: nothing_to_run(step) for h in hosts}
        result = run_playbook(step.playbook, self.inventory, limit=",".join(hosts),
                              extravars={**self.extravars, **step.vars}, forks=min(len(hosts), MAX_FORKS),
                              timeout=self.timeout_s, state=self.state)
        return {h: self._judge(h, step, result, len(hosts) > 1) for h in hosts}

    def _judge(self, host: str, step: Step, result: PlaybookResult, shared: bool) -> StepOutcome:
        assert step.playbook is not None
        if step.playbook == "facts.yml":
            return self._facts(host, result)
        if step.playbook == "gate.yml":
            outcome = _outcome(result, host, None, shared)
            gate = gate_result(result, host)
            if gate is None:
                return outcome
            data = {"figures": dict(gate.figures), "problems": list(gate.problems)}
            if not gate.passed:
                return StepOutcome(ok=False, message="; ".join(gate.problems) or "gate failed", data=data)
            return StepOutcome(ok=outcome.ok, message=outcome.message, unreachable=outcome.unreachable, data=data)
        key = {"drain.yml": "gpu_drain", "uncordon.yml": "gpu_drain", "upgrade_host.yml": "gpu_upgrade",
               "reboot.yml": "gpu_reboot"}.get(step.playbook)
        return _outcome(result, host, key, shared)

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


class _Batch:
    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.closed = False
        self.done = threading.Event()
        self.results: dict[str, StepOutcome] = {}


class SharedActions:
    """Hosts that reach the same step close together share one playbook run.

    The first host to ask for a step (same playbook, same vars) waits ``window_s`` for others, then runs the
    step once with ``--limit`` over all of them (at most ``most``); every caller gets its own host's outcome,
    so the driver journals each host's result on its own as before. 1,000 hosts in flight then need tens of
    ``ansible-playbook`` processes, not 1,000.

    A shared run returns when its last host is done, so steps whose length is the host's workload, not the
    step's (the drain: it waits for the host's jobs), run alone: one long job would otherwise hold every host
    of its batch, and a flowing rollout's slow drain would hold back its neighbours again.
    """

    ALONE = frozenset({StepKind.DRAIN})

    def __init__(self, inner: AnsibleActions, window_s: float = 2.0, most: int = MAX_FORKS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.inner = inner
        self.window_s = window_s
        self.most = most
        self.sleep = sleep
        self.lock = threading.Lock()
        self.open: dict[str, _Batch] = {}
        self.runs = 0  # playbook runs started (for the benchmark)

    def run_step(self, host: str, step: Step) -> StepOutcome:
        if step.playbook is None:
            return nothing_to_run(step)
        if step.kind in self.ALONE:
            return self.inner.run_step(host, step)
        key = json.dumps([step.id, step.playbook, step.vars], sort_keys=True, default=str)
        with self.lock:
            batch = self.open.get(key)
            leader = batch is None or batch.closed or len(batch.hosts) >= self.most
            if leader:
                batch = _Batch()
                self.open[key] = batch
            assert batch is not None
            batch.hosts.append(host)
        if not leader:
            batch.done.wait()
            return batch.results[host]
        self.sleep(self.window_s)
        with self.lock:
            batch.closed = True
            if self.open.get(key) is batch:
                del self.open[key]
            self.runs += 1
        try:
            batch.results = self.inner.run_steps(list(batch.hosts), step)
        except Exception as exc:  # an adapter that broke fails the step on every host of the batch
            batch.results = {h: StepOutcome(ok=False, message=f"{type(exc).__name__}: {exc}") for h in batch.hosts}
        finally:
            batch.done.set()
        return batch.results[host]
