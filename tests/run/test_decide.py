"""The executor's decisions, driven through ``decide`` with fake host actions: no Ansible, no journal, no clock.

Like k8s-operator-libs' state tests: a plan from the planner, a fake that answers each step (ok, a failure, a
gate figure), and assertions on where every host ends and what the run decided. Resume is checked by cutting a
recorded run after every one of its events, replaying that prefix and finishing: the end is always the same.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.model.policy import FailureBudget, RolloutPolicy
from orchestrator.planner import Plan, build_plan
from orchestrator.planner.model import Step, StepKind
from orchestrator.run.decide import (
    Action,
    Baseline,
    Begin,
    Event,
    Finished,
    RunContext,
    RunState,
    RunStep,
    Soak,
    SoakDone,
    StepDone,
    WaveEnded,
    decide,
    event_data,
    event_from_data,
    initial_state,
    outstanding_actions,
)
from orchestrator.run.states import HostState
from tests.planner.fixtures import load_fleet

SCENARIO = Path(__file__).resolve().parents[1] / "planner" / "scenarios" / "upgrade-h100"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
Fail = Callable[[str, Step], str | None]


def make_plan(**policy: object) -> Plan:
    fleet, _unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = load_desired(SCENARIO / "desired.yaml")
    base = (desired.policy or RolloutPolicy()).model_dump()
    base.update(windows=(), soak=0, **policy)
    return build_plan(fleet, desired, RolloutPolicy.model_validate(base), load_knowledge(), now)


def answer(plan: Plan, action: RunStep, fail: Fail, figure: Callable[[str], float]) -> StepDone:
    """The fake host: every step succeeds unless ``fail`` says why; stacks and figures as a real host reports."""
    host = plan.host(action.host)
    step = action.step
    why = fail(action.host, step)
    if why:
        return StepDone(action.host, action.phase, step.id, False, why)
    data: dict[str, object] = {}
    if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
        at_target = action.phase == "upgrade" and step.kind == StepKind.VERIFY
        stack = host.target if at_target and host.target is not None else host.current
        data = {"stack": stack.model_dump(mode="json"), "driver_status": "ok"}
    if step.kind == StepKind.GATE:
        data = {"figures": {"pcie_h2d_gbps": figure(action.host)}}
    if step.kind == StepKind.DRAIN:
        data = {"action": "drained"}
    return StepDone(action.host, action.phase, step.id, True, "", data)


def drive(ctx: RunContext, fail: Fail = lambda h, s: None, figure: Callable[[str], float] = lambda h: 50.0,
          state: RunState | None = None, pending: list[Action] | None = None,
          events: list[Event] | None = None) -> tuple[RunState, list[Event], list[Action]]:
    """Run to the end: one action at a time, in order, each answered by the fake host."""
    events = [] if events is None else events
    done: list[Action] = []
    queue: deque[Action] = deque(pending or [])
    if state is None:
        state = initial_state(ctx)
        events.append(Begin(NOW))
        state, actions = decide(ctx, state, events[-1])
        done += actions
        queue += [a for a in actions if isinstance(a, RunStep | Soak)]
    while queue:
        action = queue.popleft()
        event: Event = (answer(ctx.plan, action, fail, figure) if isinstance(action, RunStep)
                        else SoakDone(action.wave, NOW))
        events.append(event)
        state, actions = decide(ctx, state, event)
        done += actions
        queue += [a for a in actions if isinstance(a, RunStep | Soak)]
    return state, events, done


def ctx_for(plan: Plan, **kw: object) -> RunContext:
    return RunContext(plan, plan.waves, **kw)  # type: ignore[arg-type]


def states(state: RunState) -> dict[str, HostState]:
    return {h: r.state for h, r in state.hosts.items()}


def fail_on(host: str, kind: StepKind) -> Fail:
    """The host's upgrade step of this kind fails; its rollback steps (``rb-``) succeed."""
    def fail(h: str, step: Step) -> str | None:
        bad = h == host and step.kind == kind and not step.id.startswith("rb-")
        return "E: boom [/var/lib/dpkg/lock]" if bad else None
    return fail


def test_a_clean_run_ends_done_with_every_host_done() -> None:
    plan = make_plan()
    state, _events, actions = drive(ctx_for(plan))
    assert state.status == "done"
    assert set(states(state).values()) == {HostState.DONE}
    assert [a.wave for a in actions if isinstance(a, WaveEnded)] == [w.name for w in plan.waves]


def test_budget_zero_allows_no_failure() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=0, total=0))
    canary = plan.waves[0].hosts[0]
    state, _e, actions = drive(ctx_for(plan), fail_on(canary, StepKind.CHANGE))
    assert plan.waves[0].failure_budget == 0
    assert state.status == "halted"
    assert states(state)[canary] == HostState.ROLLED_BACK
    ended = [a for a in actions if isinstance(a, WaveEnded)]
    assert ended[-1].status == "halted" and "budget 0" in ended[-1].reason
    # nothing of the later waves started
    later = {h for w in plan.waves[1:] for h in w.hosts}
    assert all(states(state)[h] == HostState.PENDING for h in later)


def test_a_count_budget_lets_the_run_go_on_and_ends_rolled_back() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=1, total=1))
    canary = plan.waves[0].hosts[0]
    state, _e, _a = drive(ctx_for(plan), fail_on(canary, StepKind.CHANGE))
    assert state.status == "rolled_back"
    assert states(state)[canary] == HostState.ROLLED_BACK
    assert sum(1 for s in states(state).values() if s == HostState.DONE) == len(plan.hosts) - 1


def test_percent_budget_comes_from_the_plan_not_re_resolved() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave="50%", total="50%"))
    assert [w.failure_budget for w in plan.waves] == [max(1, len(w.hosts) // 2) for w in plan.waves]
    later = plan.waves[1]
    victim = later.hosts[0]
    state, _e, _a = drive(ctx_for(plan), fail_on(victim, StepKind.GATE))
    assert states(state)[victim] == HostState.ROLLED_BACK and state.status == "rolled_back"


def test_a_failed_rollback_quarantines_the_host_and_halts_with_zero_budget() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=0, total=0))
    canary = plan.waves[0].hosts[0]

    def fail(h: str, step: Step) -> str | None:
        if h != canary:
            return None
        if step.kind == StepKind.GATE and not step.id.startswith("rb-"):
            return "gate failed"
        if step.kind == StepKind.CHANGE and step.id.startswith("rb-"):
            return "E: Version '535.183.01-0ubuntu1' for 'nvidia-driver-535' was not found"
        return None

    state, _e, _a = drive(ctx_for(plan), fail)
    run = state.hosts[canary]
    assert run.state == HostState.QUARANTINED
    assert "rollback failed" in run.reason and "not found" in run.reason and run.reason.startswith("12-gate")
    assert state.status == "halted"


def test_a_straggler_is_rolled_back_against_the_wave_median() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=1, total=2))
    wave = next(w for w in plan.waves if len(w.hosts) >= 2)
    slow = wave.hosts[0]
    state, _e, actions = drive(ctx_for(plan), figure=lambda h: 10.0 if h == slow else 50.0)
    assert states(state)[slow] == HostState.ROLLED_BACK
    assert "straggler" in state.hosts[slow].reason
    ended = next(a for a in actions if isinstance(a, WaveEnded) and a.wave == wave.name)
    assert ended.stragglers == (slow,)


def test_rollback_wave_rolls_back_the_hosts_that_passed() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=0, total=0, on_exceed="rollback-wave"))
    wave = next(w for w in plan.waves if len(w.hosts) >= 2)
    victim, other = wave.hosts[0], wave.hosts[1]
    ctx = RunContext(plan, (wave,))
    state, _e, _a = drive(ctx, fail_on(victim, StepKind.CHANGE))
    assert states(state)[victim] == HostState.ROLLED_BACK
    assert states(state)[other] == HostState.ROLLED_BACK
    assert "over its failure budget" in state.hosts[other].reason
    assert state.status == "halted"


def test_the_next_wave_waits_for_its_window() -> None:
    plan = make_plan()
    windowed = plan.model_copy(update={"policy": plan.policy.model_copy(update={"windows": (
        {"days": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "start": "08:00", "end": "12:00",
         "timezone": "UTC"},)})})
    windowed = Plan.model_validate(windowed.model_dump())
    ctx = ctx_for(windowed)
    state = initial_state(ctx)
    state, actions = decide(ctx, state, Begin(NOW))
    queue = [a for a in actions if isinstance(a, RunStep)]
    late = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    while queue:
        action = queue.pop(0)
        assert isinstance(action, RunStep)
        state, actions = decide(ctx, state, answer(windowed, action, lambda h, s: None, lambda h: 50.0))
        queue += [a for a in actions if isinstance(a, RunStep)]
        for soak in (a for a in actions if isinstance(a, Soak)):
            state, actions = decide(ctx, state, SoakDone(soak.wave, late))
            finished = [a for a in actions if isinstance(a, Finished)]
            assert finished and "stopped before wave-1" in finished[0].reason and "outside" in finished[0].reason
    assert state.status == "done"
    assert all(states(state)[h] == HostState.PENDING for h in windowed.waves[1].hosts)


def test_no_slot_when_quarantined_hosts_hold_them() -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=9, total=9))
    pool = plan.pools[0]
    canary = plan.waves[0].hosts[0]

    def fail(h: str, step: Step) -> str | None:
        return "boom" if step.kind == StepKind.CHANGE else None  # every change and every rollback change fails

    state, _e, actions = drive(RunContext(plan, plan.waves, parallel=None), fail)
    assert states(state)[canary] == HostState.QUARANTINED
    assert state.status == "halted"
    assert pool.max_unavailable >= 1
    reasons = [a.reason for a in actions if isinstance(a, WaveEnded) and a.status == "halted"]
    assert reasons and ("no slot" in reasons[-1] or "failed" in reasons[-1])


@pytest.mark.parametrize("case", ["clean", "failure", "straggler"])
def test_resuming_after_any_event_reaches_the_same_end(case: str) -> None:
    plan = make_plan(failure_budget=FailureBudget(per_wave=1, total=2))
    ctx = ctx_for(plan)
    victim = plan.waves[1].hosts[0]
    fail: Fail = fail_on(victim, StepKind.CHANGE) if case == "failure" else (lambda h, s: None)
    figure: Callable[[str], float] = (lambda h: 10.0 if h == victim else 50.0) if case == "straggler" \
        else (lambda h: 50.0)
    final, events, _a = drive(ctx, fail, figure)
    for cut in range(1, len(events)):
        state = initial_state(ctx)
        for event in events[:cut]:
            state, _ = decide(ctx, state, event_from_data(event_data(event)))  # through the journal's form
        resumed, _e, _a = drive(ctx, fail, figure, state=state, pending=outstanding_actions(ctx, state))
        assert states(resumed) == states(final), f"cut after event {cut}"
        assert resumed.status == final.status


def test_a_duplicate_result_is_ignored() -> None:
    plan = make_plan()
    ctx = ctx_for(plan)
    state, actions = decide(ctx, initial_state(ctx), Begin(NOW))
    first = next(a for a in actions if isinstance(a, RunStep))
    result = answer(plan, first, lambda h, s: None, lambda h: 50.0)
    once, _ = decide(ctx, state, result)
    twice, again = decide(ctx, once, result)
    assert twice == once and again == []


def _with_clock(ctx: RunContext, down_until: float, victim: str, kind: StepKind) -> tuple[RunState, list[Action]]:
    """The victim's step of ``kind`` finds the host unreachable until ``down_until`` seconds into the run."""
    from datetime import timedelta
    clock = 0.0
    state, actions = decide(ctx, initial_state(ctx), Begin(NOW))
    queue: deque[Action] = deque(a for a in actions if isinstance(a, RunStep | Soak))
    seen: list[Action] = list(actions)
    while queue:
        action = queue.popleft()
        if isinstance(action, Soak):
            event: Event = SoakDone(action.wave, NOW)
        else:
            clock += action.delay_s + 1
            at = NOW + timedelta(seconds=clock)
            if (action.host == victim and action.step.kind == kind and clock < down_until
                    and not action.step.id.startswith("rb-")):
                event = StepDone(action.host, action.phase, action.step.id, False, "Failed to connect to the host",
                                 {"unreachable": True}, at)
            else:
                base = answer(ctx.plan, action, lambda h, s: None, lambda h: 50.0)
                event = StepDone(base.host, base.phase, base.step, base.ok, base.message, base.data, at)
        state, actions = decide(ctx, state, event)
        seen += actions
        queue += [a for a in actions if isinstance(a, RunStep | Soak)]
    return state, seen


def test_an_unreachable_blip_is_retried_with_backoff_not_failed() -> None:
    plan = make_plan(unreachable_retry=300)
    victim = plan.waves[0].hosts[0]
    state, actions = _with_clock(RunContext(plan, plan.waves[:1]), 40, victim, StepKind.CHANGE)
    assert states(state)[victim] == HostState.DONE
    retries = [a for a in actions if isinstance(a, RunStep) and a.host == victim and a.delay_s > 0]
    assert retries and [r.delay_s for r in retries[:3]] == [5.0, 10.0, 20.0][:len(retries[:3])]


def test_a_host_unreachable_past_the_budget_fails_its_step_saying_for_how_long() -> None:
    plan = make_plan(unreachable_retry=60, failure_budget=FailureBudget(per_wave=1, total=1))
    victim = plan.waves[0].hosts[0]
    state, _a = _with_clock(RunContext(plan, plan.waves[:1]), 10_000, victim, StepKind.CHANGE)
    run = state.hosts[victim]
    assert run.state == HostState.ROLLED_BACK
    assert "unreachable for" in run.reason and " s: Failed to connect" in run.reason


def test_precheck_finding_the_target_marks_the_host_done_without_touching_it() -> None:
    plan = make_plan()
    ctx = RunContext(plan, plan.waves[:1])
    host = plan.waves[0].hosts[0]
    state, actions = decide(ctx, initial_state(ctx), Begin(NOW))
    first = next(a for a in actions if isinstance(a, RunStep) and a.host == host)
    target = plan.host(host).target
    assert target is not None and first.step.kind == StepKind.PRECHECK
    state, actions = decide(ctx, state, StepDone(host, "upgrade", first.step.id, True, "",
                                                 {"stack": target.model_dump(mode="json")}))
    assert states(state)[host] == HostState.DONE and "already at target" in state.hosts[host].reason
    assert not any(isinstance(a, RunStep) and a.host == host for a in actions)


def test_a_planned_build_gone_from_the_repository_fails_the_precheck_and_nothing_else_is_picked() -> None:
    plan = make_plan()
    ctx = RunContext(plan, plan.waves[:1])
    host = plan.waves[0].hosts[0]
    state, actions = decide(ctx, initial_state(ctx), Begin(NOW))
    first = next(a for a in actions if isinstance(a, RunStep) and a.host == host)
    change = next(s for s in plan.host(host).steps if s.kind == StepKind.CHANGE)
    assert change.package and change.build
    offered = {change.package: ["9.9.9-1"]}  # the repository moved on; the planned build is gone
    state, actions = decide(ctx, state, StepDone(host, "upgrade", first.step.id, True, "", {
        "stack": plan.host(host).current.model_dump(mode="json"), "available": offered}))
    run = state.hosts[host]
    assert run.state == HostState.SKIPPED and "no longer offered" in run.reason and change.build in run.reason
    assert not any(isinstance(a, RunStep) and a.host == host for a in actions)


def test_hosts_an_earlier_run_left_quarantined_still_hold_their_slots() -> None:
    plan = make_plan()
    wave = next(w for w in plan.waves[1:] if len(w.hosts) >= 2)
    limit = plan.pools[0].max_unavailable
    earlier = frozenset(h for h in plan.waves[0].hosts)  # quarantined by an earlier run of this plan
    ctx = RunContext(plan, (wave,), held_earlier=earlier)
    _state, actions = decide(ctx, initial_state(ctx), Begin(NOW))
    started = {a.host for a in actions if isinstance(a, RunStep)}
    assert len(started) <= max(0, limit - len(earlier))


def _probe_answer(figures: Callable[[str], dict[str, float]]) -> Callable[..., StepDone]:
    """The fake host answering its gates with the CUDA probe's figures instead of DCGM's."""
    original = answer

    def answer_with(plan: Plan, action: RunStep, fail: Fail, figure: Callable[[str], float]) -> StepDone:
        done = original(plan, action, fail, figure)
        if action.step.kind == StepKind.GATE and done.ok:
            return StepDone(done.host, done.phase, done.step, True, "", {"figures": figures(action.host)})
        return done
    return answer_with


def test_a_host_slower_than_its_own_pre_upgrade_baseline_is_a_straggler(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DCGM: the CUDA probe's figures against the baselines measured before the upgrade."""
    plan = make_plan(failure_budget=FailureBudget(per_wave=2, total=4))
    wave = next(w for w in plan.waves if len(w.hosts) >= 2)
    slow = wave.hosts[0]
    before = {h: {"h2d_gbps": 55.0, "fp32_tflops": 61.0} for w in plan.waves for h in w.hosts}
    ctx = RunContext(plan, (wave,), figure_baselines={m: {h: f[m] for h, f in before.items()}
                                                        for m in ("h2d_gbps", "fp32_tflops")})
    monkeypatch.setattr(sys.modules[__name__], "answer", _probe_answer(
        lambda h: {"h2d_gbps": 55.0, "fp32_tflops": 24.4 if h == slow else 60.5, "ptx_jit_ms": 15.0}))
    state, _e, actions = drive(ctx)
    assert states(state)[slow] == HostState.ROLLED_BACK
    assert state.hosts[slow].reason.startswith("straggler: fp32_tflops 24.4 is 40% of this host's baseline 61; ")
    assert all(states(state)[h] == HostState.DONE for h in wave.hosts if h != slow)
    ended = next(a for a in actions if isinstance(a, WaveEnded) and a.wave == wave.name)
    assert ended.stragglers == (slow,)


def test_a_passed_wave_keeps_every_probe_figure_as_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan()
    wave = plan.waves[0]
    monkeypatch.setattr(sys.modules[__name__], "answer", _probe_answer(
        lambda h: {"h2d_gbps": 54.9, "device_copy_gbps": 4252.0, "ptx_jit_ms": 15.0}))
    state, _e, actions = drive(RunContext(plan, (wave,)))
    kept = {(a.host, a.metric): a.value for a in actions if isinstance(a, Baseline)}
    assert kept == {**{(h, "h2d_gbps"): 54.9 for h in wave.hosts}, **{(h, "device_copy_gbps"): 4252.0
                                                                       for h in wave.hosts}}
    assert state.figure_baselines["h2d_gbps"] == dict.fromkeys(wave.hosts, 54.9)
