"""The driver around the pure decisions: perform actions through the host port, journal, feed results back.

Each event is journaled (kind ``input``) before its decision's records, so a run killed at any moment is
resumed by replaying its inputs through ``decide`` and re-issuing the steps still outstanding (a step that
started but never reported runs again; the roles are idempotent).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Protocol

from orchestrator.adapters.host_actions import HostActions, StepOutcome
from orchestrator.ports import JournalPort
from orchestrator.run.decide import (
    Action,
    Baseline,
    Begin,
    Event,
    Finished,
    HostMoved,
    HostSoak,
    HostSoaked,
    RunContext,
    RunState,
    RunStep,
    Soak,
    SoakDone,
    StepDone,
    Straggler,
    WaveEnded,
    decide,
    event_data,
    event_from_data,
    initial_state,
    outstanding_actions,
)

Notify = Callable[[str, str, str], None]  # host, state or step, detail
INPUT = "input"


class RunObserver(Protocol):
    """Follows a run as the driver performs it (progress, metrics, notifications); the journal stays the record.

    Called on the driver's thread; an observer that raises is noted in ``Driver.observer_errors``, never fatal.
    """

    def on_start(self, ctx: RunContext, run_id: str, state: RunState) -> None: ...

    def on_action(self, action: Action, at: datetime) -> None: ...

    def on_result(self, action: RunStep, outcome: StepOutcome, at: datetime) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Driver:
    """Runs one run of a plan to its end (or to a halt) from a fresh start or from its journaled inputs."""

    def __init__(self, ctx: RunContext, journal: JournalPort, run_id: str, port: HostActions, *,
                 notify: Notify | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = _now, workers: int = 64,
                 observers: Sequence[RunObserver] = ()) -> None:
        self.ctx = ctx
        self.journal = journal
        self.run_id = run_id
        self.port = port
        self.notify = notify or (lambda host, what, detail: None)
        self.sleep = sleep
        self.clock = clock
        self.workers = workers
        self.state: RunState = initial_state(ctx)
        self.observers = tuple(observers)
        self.observer_errors: list[str] = []

    def _tell(self, method: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # a display or a receiver that broke never stops a rollout
                self.observer_errors.append(f"{type(observer).__name__}.{method}: {type(exc).__name__}: {exc}")

    def replay(self) -> list[Action]:
        """Rebuild the state from the journaled inputs; the actions a resumed run must issue."""
        inputs = [e.data for e in self.journal.events(self.run_id) if e.kind == INPUT]
        for data in inputs:
            self.state, _ = decide(self.ctx, self.state, event_from_data(data))
        if inputs:  # a kill -9 between an event and its records: the journal's host states catch up
            recorded = self.journal.host_states(self.run_id)
            for host, run in self.state.hosts.items():
                if host in recorded and recorded[host].state != run.state:
                    self.journal.set_state(self.run_id, host, run.wave, run.state, run.reason, force=True)
        return outstanding_actions(self.ctx, self.state) if inputs else []

    def run(self) -> RunState:
        pending = self.replay()
        self._tell("on_start", self.ctx, self.run_id, self.state)
        if not [e for e in self.journal.events(self.run_id) if e.kind == INPUT]:
            pending = self.feed(Begin(self.clock()))
        running: dict[Future[StepOutcome], RunStep] = {}
        timers: list[tuple[datetime, str]] = []  # flowing runs: hosts' own soaks, by when they end
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while pending or running or timers:
                for action in pending:
                    if isinstance(action, HostSoak):
                        self.journal.record(self.run_id, "host_soak", host=action.host, wave=action.wave,
                                            data={"seconds": action.seconds})
                        heapq.heappush(timers, (self.clock() + timedelta(seconds=action.seconds), action.host))
                        continue
                    if isinstance(action, RunStep):
                        self.journal.record(self.run_id, "step_start", host=action.host, wave=action.wave,
                                            step=action.step.id, data={"phase": action.phase,
                                                                       "playbook": action.step.playbook})
                        self.notify(action.host, action.step.id, "started")
                        self._tell("on_action", action, self.clock())
                        running[pool.submit(self._run, action)] = action
                soaks = [a for a in pending if isinstance(a, Soak)]
                pending = []
                if soaks and not running:
                    soak = soaks[0]
                    self.journal.record(self.run_id, "soak", wave=soak.wave, data={"seconds": soak.seconds})
                    self.sleep(soak.seconds)
                    pending = self.feed(SoakDone(soak.wave, self.clock()))
                    continue
                if self.state.status != "running":
                    timers.clear()  # the run ended: a soak still counting proves nothing any more
                if timers and timers[0][0] <= self.clock():
                    _due, host = heapq.heappop(timers)
                    pending = self.feed(HostSoaked(host, self.clock()))
                    continue
                if not running:
                    if not timers:
                        break
                    self.sleep(max((timers[0][0] - self.clock()).total_seconds(), 0.0))
                    continue
                timeout = max((timers[0][0] - self.clock()).total_seconds(), 0.0) if timers else None
                finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in finished:
                    action = running.pop(future)
                    try:
                        outcome = future.result()
                    except Exception as exc:  # an adapter that broke: a failed step, not a dead run
                        outcome = StepOutcome(ok=False, message=f"{type(exc).__name__}: {exc}")
                    self.journal.record(self.run_id, "step_end", host=action.host, wave=action.wave,
                                        step=action.step.id, status="successful" if outcome.ok else "failed",
                                        data={"phase": action.phase, "message": outcome.message,
                                              "unreachable": outcome.unreachable, "report": outcome.data})
                    data = {**outcome.data, **({"unreachable": True} if outcome.unreachable else {})}
                    self._tell("on_result", action, outcome, self.clock())
                    pending += self.feed(StepDone(action.host, action.phase, action.step.id, outcome.ok,
                                                  outcome.message, data, self.clock()))
        return self.state

    def _run(self, action: RunStep) -> StepOutcome:
        if action.delay_s > 0:  # a retry after the host was unreachable: back off first
            self.sleep(action.delay_s)
        return self.port.run_step(action.host, action.step)

    def feed(self, event: Event) -> list[Action]:
        """Journal the event, decide, journal the decision's records; the actions left to perform."""
        self.journal.record(self.run_id, INPUT, data=event_data(event))
        self.state, actions = decide(self.ctx, self.state, event)
        todo: list[Action] = []
        for action in actions:
            if isinstance(action, HostMoved):
                self.journal.set_state(self.run_id, action.host, action.wave, action.state, action.reason)
                self.notify(action.host, action.state.value, action.reason)
            elif isinstance(action, WaveEnded):
                self.journal.record(self.run_id, "wave_end", wave=action.wave, status=action.status,
                                    data={"failed": list(action.failed), "stragglers": list(action.stragglers),
                                          "reason": action.reason})
            elif isinstance(action, Straggler):
                self.journal.record(self.run_id, "straggler", host=action.host, wave=action.wave,
                                    data={"reasons": list(action.reasons)})
            elif isinstance(action, Baseline):
                self.journal.put_baseline(action.host, action.metric, action.value, self.run_id)
            elif isinstance(action, Finished):
                self.journal.record(self.run_id, "run_end", status=action.status, data={"reason": action.reason})
            else:
                todo.append(action)
            if not isinstance(action, RunStep):  # a step is told when it is submitted
                self._tell("on_action", action, self.clock())
        return todo
