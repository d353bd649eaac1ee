"""Plan a synthetic fleet of 10,000 hosts and print the time and peak memory (targets: < 10 s, < 1 GB).

Run: python benchmarks/plan_scale.py [HOSTS]. The fleet: 21 pools (7 each of H100, A100, V100) on racks of 16,
two stacks per pool (drift), 1% cordoned by hand, 1% without facts; the example's rollout policy.
"""

from __future__ import annotations

import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.knowledge import load_knowledge  # noqa: E402
from orchestrator.model.desired import DesiredState, PoolTarget, TargetStack, load_desired  # noqa: E402
from orchestrator.model.stack import Connection, FailureDomains, Fleet, Host, SoftwareStack  # noqa: E402
from orchestrator.planner import UnknownHost, build_plan, plan_json  # noqa: E402

BASE = {"driver": "535.183.01", "kernel_module": "proprietary", "cuda": "12.2.2", "cudnn": "8.9.7.29-1+cuda12.2",
        "nccl": "2.18.5-1+cuda12.2", "fabric_manager": "535.183.01", "dcgm": "1:3.3.9",
        "container_toolkit": "1.14.6-1"}
KINDS = [("train-h100", "H100", True), ("infer-a100", "A100", True), ("legacy-v100", "V100", False)]


def fleet(n: int) -> tuple[Fleet, list[UnknownHost], DesiredState]:
    example = load_desired(ROOT / "plans" / "example.yaml")
    stacks = {}
    for kind, _, nvswitch in KINDS:
        old = dict(BASE) if nvswitch else {k: v for k, v in BASE.items() if k != "fabric_manager"}
        drifted = {**old, "nccl": "2.21.5-1+cuda12.4"}
        stacks[kind] = (SoftwareStack.model_validate(old), SoftwareStack.model_validate(drifted))
    hosts, unknown, pools = [], [], {}
    for i in range(n):
        kind, gpu, nvswitch = KINDS[i % 3]
        pool = f"{kind}-{(i // 3) % 7}"
        pools[pool] = kind
        name = f"gpu-{i:05d}"
        if i % 100 == 99:
            unknown.append(UnknownHost(name, pool, "unreachable", gpu, 8))
            continue
        hosts.append(Host(
            name=name, connection=Connection(address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"), pool=pool,
            gpu=gpu, gpu_count=8, nvswitch=nvswitch, stack=stacks[kind][i % 5 == 0],
            domains=FailureDomains(rack=f"r{i // 16:04d}", switch=f"leaf-{i // 64:03d}"),
            cordoned_by_hand=i % 100 == 42,
        ))
    desired = DesiredState(
        pools={p: PoolTarget(target=TargetStack.model_validate(example.pools[k].target.model_dump()),
                             workloads=example.pools[k].workloads) for p, k in sorted(pools.items())},
        policy=example.policy.model_copy(update={"max_unavailable": "10%"}) if example.policy else None,
    )
    return Fleet(hosts=tuple(hosts)), unknown, desired


def _rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB); tracemalloc would slow planning 4x."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    knowledge = load_knowledge()
    fl, unknown, desired = fleet(n)
    base_rss = _rss_mb()
    t0 = time.perf_counter()
    plan = build_plan(fl, desired, None, knowledge, datetime(2026, 12, 1, 9, tzinfo=UTC), unknown=unknown)
    t1 = time.perf_counter()
    text = plan_json(plan)
    t2 = time.perf_counter()
    rss = _rss_mb()
    print(f"hosts: {n} ({len(fl.hosts)} with facts, {len(unknown)} unknown), pools: {len(plan.pools)}, "
          f"waves: {len(plan.waves)}, steps: {sum(len(h.steps) for h in plan.hosts)}")
    print(f"build_plan: {t1 - t0:.2f} s, plan_json: {t2 - t1:.2f} s ({len(text) / 1e6:.1f} MB), "
          f"total {t2 - t0:.2f} s")
    print(f"peak memory (process max RSS): {rss:.0f} MB, of which before planning: {base_rss:.0f} MB")


if __name__ == "__main__":
    main()
