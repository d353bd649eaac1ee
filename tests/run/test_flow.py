"""Flowing rollouts (run/flow.py) through the real ``decide`` on simulated hosts and a simulated clock.

After the canary there are no barriers: one sliding window per pool under max unavailable and the rack
limits, the policy's stages bounding hosts started and not yet proven, the failure budget counted on every
result, drain-aware order. tests/support/rolloutsim.py raises if a limit, the stage cap or the budget is
broken at any simulated moment; these tests add what each rule must show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.policy import RolloutPolicy
from orchestrator.planner import Plan, build_plan
from orchestrator.planner.model import StepKind
from orchestrator.run.decide import RunContext, decide, initial_state, outstanding_actions
from orchestrator.run.estimate import flow_makespan
from orchestrator.run.flow import flow_order
from orchestrator.run.states import HostState
from tests.support.bigfleet import fleet
from tests.support.rolloutsim import SimHost, simulate

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY: dict[str, Any] = {"windows": (), "soak": 600, "canary": 1, "waves": ["10%", "25%", "100%"],
                          "max_unavailable": "20%", "max_per_domain": {"rack": 2},
                          "failure_budget": {"per_wave": "10%", "total": 3},
                          "drain": {"timeout": 3600, "on_timeout": "evict"}}


@cache
def _plan(n: int, extra: str) -> Plan:
    fl, unknown, desired = fleet(n)
    base = (desired.policy or RolloutPolicy()).model_dump()
    base.update(POLICY)
    base.update(json.loads(extra))
    return build_plan(fl, desired, RolloutPolicy.model_validate(base), load_knowledge(), T0, unknown=unknown)


def plan(n: int = 240, **policy: Any) -> Plan:
    return _plan(n, json.dumps(policy, sort_keys=True))


def ctx(p: Plan, **kw: Any) -> RunContext:
    return RunContext(p, p.waves, flow=True, **kw)


def movers(p: Plan) -> list[str]:
    return [h for w in p.waves for h in w.hosts]


def test_a_clean_flowing_run_upgrades_every_host_and_passes_every_checkpoint_in_the_limits() -> None:
    p = plan()
    res = simulate(ctx(p), {h: SimHost(speed=1 + i % 5 / 10) for i, h in enumerate(movers(p))}, T0)
    assert res.status == "done", res.reason
    assert set(res.states.values()) == {HostState.DONE}
    final = res.final
    assert final is not None and all(w.status == "passed" for w in final.waves)
    # no barrier: some host of a later wave started before every host of wave-1 was back
    wave1, later = p.waves[1], p.waves[2:]
    assert later, "the plan needs more than one wave after the canary"
    end1 = max(res.back[h] for h in wave1.hosts)
    assert any(res.started[h] < end1 for w in later for h in w.hosts)


def test_canary_soaks_before_any_other_host_starts() -> None:
    p = plan()
    res = simulate(ctx(p), {h: SimHost() for h in movers(p)}, T0)
    canary_back = max(res.back[h] for h in p.waves[0].hosts)
    assert res.flow_start_s is not None
    assert res.flow_start_s >= canary_back + p.policy.soak
    assert min(res.started[h] for w in p.waves[1:] for h in w.hosts) == res.flow_start_s


def test_a_slow_draining_host_does_not_hold_back_the_others() -> None:
    p = plan()
    slow = p.waves[1].hosts[0]
    hosts = {h: SimHost() for h in movers(p)}
    hosts[slow] = SimHost(job_end_s=10 * 3600)  # its job runs for hours: drained at the timeout, evicted
    res = simulate(ctx(p), hosts, T0, drain_timeout_s=3 * 3600)
    assert res.status == "done", res.reason
    slow_back = res.back[slow]
    others = [h for h in movers(p) if h != slow and h not in p.waves[0].hosts]
    assert sum(1 for h in others if res.back[h] < slow_back) > len(others) // 2
    # hosts started while it drained, after neighbours finished
    assert any(res.started[slow] < res.started[h] < slow_back for h in others)


def test_stages_bound_hosts_started_and_not_yet_proven() -> None:
    # first stage 2 hosts; the soak keeps them unproven long after they are back: the third host waits
    p = plan(waves=[2, "100%"], soak=3600)
    res = simulate(ctx(p), {h: SimHost() for h in movers(p)}, T0)  # the sim raises past the stage cap
    assert res.status == "done", res.reason
    flow = sorted((t, h) for h, t in res.started.items() if h not in p.waves[0].hosts)
    first_two = [h for _t, h in flow[:2]]
    third_start = flow[2][0]
    proven = min(res.back[h] for h in first_two) + 3600
    assert third_start >= proven


@pytest.mark.parametrize(("per_stage", "says"), [("50%", "4 hosts failed in this rollout (budget 3)"),
                                                 ("10%", "3 hosts failed in stage 1 of 22 (budget 2)")])
def test_the_budget_stops_new_starts_when_exceeded_and_the_run_halts(per_stage: str, says: str) -> None:
    p = plan(failure_budget={"per_wave": per_stage, "total": 3})
    order = movers(p)
    rest = [h for h in order if h not in p.waves[0].hosts]
    bad = rest[:4]  # the 4th failure is over the total; the 3rd over a first stage of 22 at 10%
    hosts = {h: SimHost(fail=StepKind.VERIFY if h in bad else None) for h in order}
    res = simulate(ctx(p), hosts, T0)  # the sim raises on any start after the budget was exceeded
    assert res.status == "halted"
    assert says in res.reason
    assert res.budget_exceeded_s is not None
    assert any(s == HostState.PENDING for s in res.states.values())  # hosts left for a person to decide
    assert all(res.states[h] in (HostState.ROLLED_BACK, HostState.DONE, HostState.PENDING) for h in bad)
    assert sum(res.states[h] == HostState.ROLLED_BACK for h in bad) >= 3


def test_drain_aware_order_starts_the_hosts_whose_jobs_end_first() -> None:
    p = plan(drain={"timeout": 12 * 3600, "on_timeout": "evict"})  # jobs are waited for, as the sim does
    rest = [h for h in movers(p) if h not in p.waves[0].hosts]
    ends = {h: T0 + timedelta(hours=2 + i % 7) for i, h in enumerate(rest)}
    soon = rest[-1]
    ends[soon] = T0 + timedelta(minutes=1)
    hosts = {h: SimHost(job_end_s=(ends[h] - T0).total_seconds() if h in ends else 0.0) for h in movers(p)}
    res = simulate(ctx(p, drain_ends=ends), hosts, T0, drain_timeout_s=12 * 3600)
    assert res.started[soon] == res.flow_start_s  # free first: among the first to start
    blind = simulate(ctx(p), hosts, T0, drain_timeout_s=12 * 3600)
    assert blind.started[soon] > blind.flow_start_s  # planned order put it last of its pool
    assert res.last_back_s < blind.last_back_s


def test_a_host_whose_drain_outlasts_the_window_is_not_started() -> None:
    p = plan()
    rest = [h for h in movers(p) if h not in p.waves[0].hosts]
    late = rest[3]
    window_end = T0 + timedelta(hours=12)
    ends = {late: window_end + timedelta(minutes=5)}
    hosts = {h: SimHost(job_end_s=(ends[h] - T0).total_seconds() if h in ends else 0.0) for h in movers(p)}
    res = simulate(ctx(p, drain_ends=ends, window_end=window_end), hosts, T0, drain_timeout_s=24 * 3600)
    assert late not in res.started
    assert res.states[late] == HostState.PENDING
    assert res.status == "done" and "outlast the window" in res.reason and late in res.reason


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8])
def test_resuming_a_flowing_run_replays_to_the_same_state(cut: float) -> None:
    p = plan(n=160, max_unavailable="40%")
    c = ctx(p)
    hosts = {h: SimHost(fail=StepKind.VERIFY if i == 40 else None) for i, h in enumerate(movers(p))}
    res = simulate(c, hosts, T0, keep_trace=True)
    k = int(len(res.trace) * cut)
    state = initial_state(c)
    for event in res.trace[:k]:
        state, _ = decide(c, state, event)
    again = initial_state(c)
    for event in res.trace[:k]:
        again, _ = decide(c, again, event)
    assert again == state
    assert state.flow is not None
    # what a resumed run re-issues: every step in flight, every host soak still counting
    pending = outstanding_actions(c, state)
    soaking = {h for h, r in state.hosts.items() if r.soaking}
    assert {a.host for a in pending if type(a).__name__ == "HostSoak"} == soaking
    assert {a.host for a in pending if type(a).__name__ == "RunStep"} == {h for h, _ph, _s in state.outstanding}
    final = initial_state(c)
    for event in res.trace:
        final, _ = decide(c, final, event)
    assert final.status == res.status


def test_the_plans_flowing_estimate_lies_between_the_slot_bound_and_the_barrier_waves() -> None:
    p = plan()
    flowing = flow_makespan(p)
    barriers = sum(w.estimate_s + w.soak_s for w in p.waves) - p.waves[-1].soak_s
    canary = p.waves[0]
    rest = [h for w in p.waves[1:] for h in w.hosts]
    by_pool: dict[str, int] = {}
    for h in rest:
        view = p.host(h)
        by_pool[view.pool] = by_pool.get(view.pool, 0) + view.estimate_s
    free = {q.name: q.max_unavailable - len(q.out_of_service) for q in p.pools}
    bound = canary.estimate_s + canary.soak_s + max(s / free[q] for q, s in by_pool.items())
    assert bound <= flowing < barriers


def test_a_host_whose_jobs_outlast_the_drain_timeout_is_not_left_to_the_end_when_the_policy_evicts() -> None:
    hosts = [("a", "r1", 600), ("b", "r2", 600), ("c", "r3", 600)]
    ends = {"a": T0 + timedelta(hours=10), "b": T0 + timedelta(minutes=30), "c": T0 + timedelta(hours=2)}
    assert flow_order(hosts, ends, T0) == ("b", "c", "a")  # give-up: waiting for its jobs is all one can do
    # the flowing part takes about 3 h: a's jobs outlast it and the timeout, so it goes first (evicted whenever)
    assert flow_order(hosts, ends, T0, evict_after_s=3600, horizon_s=3 * 3600) == ("a", "b", "c")
    # about 12 h: every job ends on its own before the rollout gets there: by job end
    assert flow_order(hosts, ends, T0, evict_after_s=3600, horizon_s=12 * 3600) == ("b", "c", "a")
    assert flow_order(hosts, {}, T0) == ("a", "b", "c")  # no drain knowledge: planned order, racks in turn
    same_rack = [("a", "r1", 600), ("b", "r1", 600), ("c", "r2", 600)]
    assert flow_order(same_rack, {}, T0) == ("a", "c", "b")
    assert flow_order(same_rack, {}, T0, wave_of={"a": 1, "b": 1, "c": 2}) == ("a", "b", "c")  # wave by wave


def test_hosts_free_by_their_turn_keep_the_racks_in_turn_and_a_busy_host_goes_when_its_jobs_end() -> None:
    # six hosts on three racks, planned racks in turn; about 6 h of flowing work: a turn every hour
    hosts = [("a1", "r1", 600), ("a2", "r1", 600), ("b1", "r2", 600), ("b2", "r2", 600), ("c1", "r3", 600),
             ("c2", "r3", 600)]
    planned = flow_order(hosts, {}, T0)
    assert planned == ("a1", "b1", "c1", "a2", "b2", "c2")
    # every job ends before its host's turn (a2's in 1 min, its turn is at 3 h): the planned order stands,
    # rather than a2 first and the racks bunched at the end
    ends = {"a1": T0 + timedelta(minutes=30), "a2": T0 + timedelta(minutes=1), "c2": T0 + timedelta(hours=4)}
    assert flow_order(hosts, ends, T0, evict_after_s=3600, horizon_s=6 * 3600) == planned
    # b1's job runs 2.5 h: it goes after the turns that come before then (c1 at 2 h), not after every host
    ends["b1"] = T0 + timedelta(hours=2, minutes=30)
    assert flow_order(hosts, ends, T0, evict_after_s=3600, horizon_s=6 * 3600) == ("a1", "c1", "b1", "a2", "b2",
                                                                                     "c2")


def test_a_job_that_would_stretch_the_rollout_is_evicted_a_timeout_before_its_host_must_start() -> None:
    hosts = [("a", "r1", 600), ("b", "r2", 600), ("c", "r3", 600)]  # turns at 0, 1 h and 2 h of a 3 h horizon
    ends = {"a": T0 + timedelta(hours=3, minutes=30)}  # a must start by 2 h 50 min to be back by 3 h
    # give-up: waiting for its jobs is all one can do, so a goes when they end, last
    assert flow_order(hosts, ends, T0, horizon_s=3 * 3600) == ("b", "c", "a")
    # evicting at 1 h: a starts at 1 h 50 min (after b's turn), its jobs evicted at 2 h 50 min
    assert flow_order(hosts, ends, T0, evict_after_s=3600, horizon_s=3 * 3600) == ("b", "a", "c")
    # evicting at 2 h: a starts at 50 min, before b
    assert flow_order(hosts, ends, T0, evict_after_s=2 * 3600, horizon_s=3 * 3600) == ("a", "b", "c")
    # evicting only at 12 h: no start evicts before its jobs end anyway; a waits for them, last
    assert flow_order(hosts, ends, T0, evict_after_s=12 * 3600, horizon_s=3 * 3600) == ("b", "c", "a")


def _first_fit_by_scanning(p: Plan) -> int:
    """The estimate as first written: every decision scans every waiting host in order (quadratic; kept here
    as the reference the queue-based estimate must agree with)."""
    import heapq
    from collections import Counter

    from orchestrator.planner.waves import stage_sizes
    from orchestrator.run.flow import FlowRun

    canary = p.waves[0]
    t = float(canary.estimate_s + canary.soak_s)
    names = [h for w in p.waves[1:] for h in w.hosts]
    views = {h: p.host(h) for h in names}
    order = flow_order([(h, v.domains.get("rack") or v.domains.get("switch") or "", v.estimate_s)
                        for h, v in views.items()], {}, None,
                       wave_of={h: i for i, w in enumerate(p.waves) for h in w.hosts})
    free = {q.name: q.max_unavailable - len(q.out_of_service) for q in p.pools}
    caps = {q.name: dict(q.max_per_domain) for q in p.pools}
    stages = FlowRun(order=order, stages=tuple(stage_sizes(p.policy, len(names), len(canary.hosts))) or (1,))
    per_pool: Counter[str] = Counter()
    per_domain: Counter[tuple[str, str]] = Counter()
    running: list[tuple[float, str]] = []
    proving: list[float] = []
    waiting, started, resolved, last = list(order), 0, 0, t
    while waiting or running:
        room = stages.cap_for(resolved) - (started - resolved)
        kept = []
        for h in waiting:
            v = views[h]
            doms = [(k, n) for k, n in v.domains.items() if k in caps[v.pool]]
            if room > 0 and per_pool[v.pool] < free[v.pool] and all(per_domain[d] < caps[v.pool][d[0]]
                                                                   for d in doms):
                per_pool[v.pool] += 1
                for d in doms:
                    per_domain[d] += 1
                heapq.heappush(running, (t + v.estimate_s, h))
                started += 1
                room -= 1
            else:
                kept.append(h)
        waiting = kept
        if not running and not proving:
            break
        if proving and (not running or proving[0] <= running[0][0]):
            t = heapq.heappop(proving)
            resolved += 1
            continue
        t, h = heapq.heappop(running)
        last = t
        v = views[h]
        per_pool[v.pool] -= 1
        for d in ((k, n) for k, n in v.domains.items() if k in caps[v.pool]):
            per_domain[d] -= 1
        heapq.heappush(proving, t + p.waves[-1].soak_s)
    return int(last)


@pytest.mark.parametrize("n, policy", [
    (1500, {}),  # racks shared by many pools: most queues wait on a rack another pool fills
    (600, {"max_per_domain": {"rack": 1, "switch": 3}, "waves": ["5%", "100%"]}),  # two limited domains
    (400, {"max_unavailable": "50%", "max_per_domain": {}}),  # no domain limit: one queue per pool
])
def test_the_queue_based_estimate_starts_the_same_hosts_as_scanning_every_host(n: int, policy: dict[str, Any]
                                                                               ) -> None:
    p = plan(n, **policy)
    assert flow_makespan(p) == _first_fit_by_scanning(p)
