"""Properties over random fleets and policies: waves keep every limit, every intermediate stack is valid."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.knowledge import CheckContext, Hardware, Severity, check, load_knowledge
from orchestrator.model.desired import DesiredState, PoolTarget, TargetStack
from orchestrator.model.policy import RolloutPolicy
from orchestrator.model.stack import Connection, FailureDomains, Fleet, Host, SoftwareStack
from orchestrator.planner import Plan, PlanError, build_plan, plan_json

KNOWLEDGE = load_knowledge()
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
OLD = SoftwareStack.model_validate({
    "driver": "535.183.01", "kernel_module": "proprietary", "cuda": "12.2.2", "cudnn": "8.9.7.29-1+cuda12.2",
    "nccl": "2.18.5-1+cuda12.2", "fabric_manager": "535.183.01", "dcgm": "1:3.3.9", "container_toolkit": "1.14.6-1"})
TARGETS = {
    "train": ("H100", True, {"driver": "580.95.05", "kernel_module": "open", "cuda": "13.0", "cudnn": "9.17.0",
                             "nccl": "2.28.9-1+cuda13.0", "fabric_manager": "580.95.05", "dcgm": "4.2.3"}),
    "infer": ("A100", True, {"driver": "580.95.05", "cuda": "12.8", "cudnn": "9.17.0",
                             "nccl": "2.28.9-1+cuda12.9", "fabric_manager": "580.95.05"}),
    "legacy": ("V100", False, {"driver": "580.95.05", "cuda": "12.8", "cudnn": "9.10.2",
                               "nccl": "2.28.9-1+cuda12.9", "container_toolkit": "1.17.8"}),
}
size = st.one_of(st.integers(1, 4), st.sampled_from(["10%", "25%", "50%", "100%"]))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Fleet, DesiredState, RolloutPolicy]:
    n = draw(st.integers(1, 24))
    hosts = []
    for i in range(n):
        pool = draw(st.sampled_from(sorted(TARGETS)))
        gpu, nvswitch, target = TARGETS[pool]
        at_target = draw(st.booleans()) and draw(st.booleans())
        stack = OLD.model_validate({**OLD.model_dump(), **target}) if at_target else OLD
        if not nvswitch:
            stack = stack.model_copy(update={"fabric_manager": None})
        hosts.append(Host(
            name=f"n{i:02d}", connection=Connection(address=f"10.0.0.{i}"), pool=pool, gpu=gpu, gpu_count=8,
            nvswitch=nvswitch, stack=stack,
            domains=FailureDomains(rack=f"r{draw(st.integers(1, 4))}", switch=f"s{draw(st.integers(1, 2))}"),
            cordoned_by_hand=draw(st.integers(0, 9)) == 0,
        ))
    desired = DesiredState(pools={p: PoolTarget(target=TargetStack.model_validate(t)) for p, (_, _, t) in
                                  TARGETS.items()})
    growth = draw(st.booleans())
    policy = RolloutPolicy(
        canary=draw(size),
        waves=None if growth else tuple(draw(st.lists(size, min_size=1, max_size=4))),
        growth=draw(st.sampled_from([1.5, 2.0, 3.0])) if growth else None,
        max_unavailable=draw(size),
        max_per_domain=draw(st.sampled_from([None, 1, 2, {"rack": 1}, {"switch": 3}])),
        mixed_versions=draw(st.sampled_from([{}, {"nccl": "forbid"}, {"driver": 20000}])),
        soak=draw(st.sampled_from([0, 1800])),
    )
    return Fleet(hosts=tuple(hosts)), desired, policy


def _check_limits(plan: Plan, fleet: Fleet) -> None:
    pools = {p.name: p for p in plan.pools}
    domains = {h.name: h.domains.items() for h in fleet.hosts}
    moved = [h for w in plan.waves for h in w.hosts]
    assert sorted(moved) == sorted(h.name for h in plan.hosts if h.action == "upgrade")
    assert len(moved) == len(set(moved))
    for wave in plan.waves:
        per_pool = Counter(plan.host(h).pool for h in wave.hosts)
        for pool, count in per_pool.items():
            assert count + len(pools[pool].out_of_service) <= pools[pool].max_unavailable, (wave.name, pool)
        per_domain = Counter(d for h in wave.hosts for d in domains[h])
        for (kind, value), count in per_domain.items():
            caps = [pools[plan.host(h).pool].max_per_domain.get(kind) for h in wave.hosts
                    if (kind, value) in domains[h]]
            limits = [c for c in caps if c is not None]
            assert not limits or count <= min(limits), (wave.name, kind, value)
        assert wave.gpus_out == sum(plan.host(h).gpu_count for h in wave.hosts)


def _check_intermediate_stacks(plan: Plan, fleet: Fleet) -> None:
    for hp in plan.hosts:
        if hp.action != "upgrade":
            continue
        assert hp.target is not None
        hw = Hardware.of(fleet.host(hp.name))
        ctx = CheckContext(now=NOW.date(), pool=hp.pool, production=True)

        def errors(stack: SoftwareStack) -> set[tuple[str, str]]:
            return {(v.rule, v.subject or "") for v in check(KNOWLEDGE, hw, stack, ctx)  # noqa: B023
                    if v.severity is Severity.ERROR}

        allowed = errors(hp.current) | errors(hp.target)
        stack = hp.current
        for group in hp.order:
            stack = stack.model_copy(update={c: hp.target.component(c) for c in group})
            assert errors(stack) <= allowed, (hp.name, group)
        assert stack == hp.target


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_waves_respect_limits_and_every_intermediate_stack_is_valid(
    case: tuple[Fleet, DesiredState, RolloutPolicy],
) -> None:
    fleet, desired, policy = case
    try:
        plan = build_plan(fleet, desired, policy, KNOWLEDGE, NOW)
    except PlanError as exc:
        assert exc.reasons and all(exc.reasons)
        return
    _check_limits(plan, fleet)
    _check_intermediate_stacks(plan, fleet)
    assert plan_json(plan) == plan_json(build_plan(fleet, desired, policy, KNOWLEDGE, NOW))
    if plan.waves and plan.waves[0].name == "canary":
        canary_pools = {plan.host(h).pool for h in plan.waves[0].hosts}
        for p in plan.pools:
            if p.upgrade and not p.moves_in_one_wave and not p.max_per_domain:
                assert p.name in canary_pools
