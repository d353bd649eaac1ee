"""Waves of a plan run one after another; hosts inside a wave start as slots free up.

After a wave: stragglers (a health figure below the policy's share of the host's own baseline or of the
median of the wave's hosts with the same GPU model) are rolled back like any failed host; then the failure
budget decides. Past the budget the run halts (and, by policy, rolls the whole wave back); within it, the
soak time passes before the next wave.
The failure budget is enforced here and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.adapters.journal import Journal
from orchestrator.knowledge import Hardware
from orchestrator.model.policy import resolve_size
from orchestrator.planner import Plan, Wave
from orchestrator.planner.waves import PoolLimits
from orchestrator.run.admission import Slot, admit
from orchestrator.run.hostrun import HostJob, HostRunner
from orchestrator.run.states import OUT_OF_SERVICE, TERMINAL, HostState
from orchestrator.run.stragglers import judge_wave

S = HostState
RunStatus = Literal["done", "rolled_back", "halted"]
FAILED_END = frozenset({S.ROLLED_BACK, S.QUARANTINED})
METRIC = "pcie_h2d_gbps"


@dataclass
class WaveReport:
    name: str
    status: Literal["passed", "halted", "skipped"]
    failed: list[str] = field(default_factory=list)
    stragglers: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class RunReport:
    run_id: str
    status: RunStatus
    waves: list[WaveReport]
    reason: str = ""


class Executor:
    """Drives the selected waves of one plan through a :class:`HostRunner`."""

    def __init__(self, plan: Plan, runner: HostRunner, hardware: dict[str, Hardware], *,
                 parallel: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.plan = plan
        self.runner = runner
        self.hardware = hardware
        self.parallel = parallel
        self.sleep = sleep
        self.limits = {p.name: PoolLimits(p.hosts, p.max_unavailable, len(p.out_of_service), dict(p.max_per_domain))
                       for p in plan.pools}

    @property
    def journal(self) -> Journal:
        return self.runner.journal

    def run(self, waves: list[Wave]) -> RunReport:
        run_id = self.runner.run_id
        reports: list[WaveReport] = []
        for index, wave in enumerate(waves):
            self.journal.record(run_id, "wave_start", wave=wave.name, data={"hosts": list(wave.hosts)})
            report = self._wave(wave)
            reports.append(report)
            self.journal.record(run_id, "wave_end", wave=wave.name, status=report.status,
                                data={"failed": report.failed, "stragglers": report.stragglers,
                                      "reason": report.reason})
            if report.status == "halted":
                return RunReport(run_id, "halted", reports, report.reason)
            if index + 1 < len(waves) and self.plan.policy.soak > 0:
                self.journal.record(run_id, "soak", wave=wave.name, data={"seconds": self.plan.policy.soak})
                self.sleep(self.plan.policy.soak)
        states = self.journal.host_states(run_id)
        rolled = any(r.state in FAILED_END for r in states.values())
        return RunReport(run_id, "rolled_back" if rolled else "done", reports)

    def _jobs(self, wave: Wave) -> list[HostJob]:
        return [HostJob(self.plan.host(h), wave.name, self.hardware[h]) for h in wave.hosts]

    def _wave(self, wave: Wave) -> WaveReport:
        jobs = self._jobs(wave)
        unplaced = self._slide(jobs)
        if unplaced:
            reason = (f"{', '.join(unplaced)}: no slot under max_unavailable / max_per_domain (hosts quarantined "
                      "earlier still hold theirs); a person must look")
            for job in jobs:
                if job.plan.name in unplaced and self.runner.state(job.plan.name) in (None, S.PENDING):
                    self.runner.journal.set_state(self.runner.run_id, job.plan.name, wave.name, S.SKIPPED,
                                                  "no slot", force=True)
            return WaveReport(wave.name, "halted", reason=reason)
        stragglers = self._stragglers(wave, jobs)
        states = self.journal.host_states(self.runner.run_id)
        failed = sorted(h for h in wave.hosts if states[h].state in FAILED_END
                        or (states[h].state == S.SKIPPED and states[h].reason.startswith("precheck failed")))
        wave_budget = resolve_size(self.plan.policy.failure_budget.per_wave, len(wave.hosts))
        total_failed = sum(1 for r in states.values() if r.state in FAILED_END)
        over = []
        if len(failed) > wave_budget:
            over.append(f"{len(failed)} of {len(wave.hosts)} hosts failed in {wave.name} "
                        f"(budget {wave_budget}): {', '.join(failed)}")
        if total_failed > self.plan.failure_budget_total:
            over.append(f"{total_failed} hosts failed in this rollout (budget {self.plan.failure_budget_total})")
        if over:
            if self.plan.policy.failure_budget.on_exceed == "rollback-wave":
                for job in jobs:
                    if self.runner.state(job.plan.name) == S.DONE:
                        self.runner.rollback(job, f"wave {wave.name} over its failure budget")
            return WaveReport(wave.name, "halted", failed, stragglers, "; ".join(over) + "; run halted")
        self._record_baselines(wave)
        return WaveReport(wave.name, "passed", failed, stragglers)

    def _slide(self, jobs: list[HostJob]) -> list[str]:
        """Run the wave's hosts, each as soon as the limits allow; returns hosts that could never start."""
        waiting = [j for j in jobs if self.runner.state(j.plan.name) not in TERMINAL]
        slot = {j.plan.name: Slot(j.plan.name, j.plan.pool, tuple(sorted(j.plan.domains.items()))) for j in jobs}
        running: dict[Future[HostState], HostJob] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), self.parallel or len(jobs)))) as pool:
            while waiting or running:
                busy = {j.plan.name for j in running.values()}
                states = self.journal.host_states(self.runner.run_id)
                # a failed host waiting to finish its rollback already holds its slot: it starts first, free
                holding = [j for j in waiting if j.plan.name in states and states[j.plan.name].state in OUT_OF_SERVICE]
                for job in holding:
                    waiting.remove(job)
                    running[pool.submit(self.runner.upgrade, job)] = job
                    busy.add(job.plan.name)
                out_now = [Slot(h, self._pool(h), tuple(sorted(self._domains(h))))
                           for h, r in states.items() if h not in busy and r.state in OUT_OF_SERVICE]
                out_now += [slot[h] for h in busy]
                started = admit([slot[j.plan.name] for j in waiting], out_now, self.limits, self.parallel)
                for s in started:
                    job = next(j for j in waiting if j.plan.name == s.name)
                    waiting.remove(job)
                    running[pool.submit(self.runner.upgrade, job)] = job
                if not running:
                    return [j.plan.name for j in waiting]
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    fut.result()
        return []

    def _pool(self, host: str) -> str:
        return self.plan.host(host).pool

    def _domains(self, host: str) -> list[tuple[str, str]]:
        return list(self.plan.host(host).domains.items())

    def _stragglers(self, wave: Wave, jobs: list[HostJob]) -> list[str]:
        figures: dict[str, float | None] = {}
        for event in self.journal.events(self.runner.run_id):
            if event.kind == "gate" and event.wave == wave.name and event.host and event.status == "passed":
                value = event.data.get("figures", {}).get(METRIC)
                if isinstance(value, int | float):
                    figures[event.host] = float(value)
        if not figures:
            return []
        baselines = {h: self.journal.baseline(h, METRIC) for h in figures}
        # Peers are hosts with the same GPU model: an A100 on PCIe Gen4 is not slow next to an H100 on Gen5.
        by_model: dict[str, dict[str, float | None]] = {}
        for host, value in figures.items():
            by_model.setdefault(self.plan.host(host).gpu, {})[host] = value
        verdicts = {}
        for group in by_model.values():
            verdicts.update(judge_wave(METRIC, group, baselines, self.plan.policy.straggler_threshold))
        slow = sorted(h for h, v in verdicts.items() if v.straggler and self.runner.state(h) == S.DONE)
        for job in jobs:
            if job.plan.name in slow:
                verdict = verdicts[job.plan.name]
                self.journal.record(self.runner.run_id, "straggler", host=job.plan.name, wave=wave.name,
                                    data=verdict.model_dump(mode="json"))
                self.runner.rollback(job, "straggler: " + "; ".join(verdict.reasons))
        return slow

    def _record_baselines(self, wave: Wave) -> None:
        """A host's first measured figure becomes its baseline; later runs compare against it."""
        for event in self.journal.events(self.runner.run_id):
            if event.kind == "gate" and event.wave == wave.name and event.host and event.status == "passed":
                value = event.data.get("figures", {}).get(METRIC)
                if isinstance(value, int | float) and self.journal.baseline(event.host, METRIC) is None:
                    self.journal.put_baseline(event.host, METRIC, float(value), self.runner.run_id)
