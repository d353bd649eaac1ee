"""Rollout makespan on the project's own engine: flowing rollout vs lower bound vs Ansible-style serial batches.

Drives ``run.decide`` and ``run.admission`` (the code ``upgrade apply`` runs) through tests/support/rolloutsim.py:
simulated hosts, a simulated clock, every limit, the stage cap and the failure budget asserted after every
decision (the simulator raises on the first breach). Fleets come from tests/support/bigfleet.py (21 pools,
racks of 16, drift, cordoned and unknown hosts) with the example policy (canary 1 per pool and GPU model,
stages 25% / 50% / 100%, max_unavailable 10%, 2 per rack, soak 30 min) and a drain timeout of 1 h that evicts.

The host model (same in every schedule, drawn from the seed): when the rollout starts, each host runs a job
(a Slurm maintenance reservation keeps new ones off) that ends after a log-normal time (``--drain-median``,
``--drain-sigma``: heavy-tailed); the scheduler is told the job's time limit, 0-30 % later than its real end.
A host started at ``t`` drains for ``min(max(end - t, 0), 1 h) + 30 s``; every other step takes its plan
estimate times a per-host factor (log-normal, sigma 0.1). A share ``--fail-rate`` of hosts fails its verify
step and rolls back (never a canary: its failure halts the rollout).

The plan is made at the start with what squeue says then (``upgrade plan --canary-by-jobs``): each host's job
end by its time limit, so the canary is a host free soonest. That much is known in both drain models: the
canary starts at once, so the job running then is the one it waits for. ``--canary-by name`` plans as without
squeue (the canary by name, whatever its job).

What is compared (makespan = the start until the last host is back in service):
- flow, drain-aware: the flowing rollout with Slurm's job ends as ``drain_ends`` (the issue's model);
- flow, planned order: the same without drain knowledge;
- barrier waves: this engine before (``flow=False``): each wave waits for its slowest host and soaks 30 min;
- serial batches: Ansible ``serial`` with the same limits: the same canary and its soak, then the plan's waves
  (each filled to max_unavailable and the rack limit) as batches, each starting when the last ended, no soak
  between batches (Ansible has none); computed here from the same step durations, not by the engine;
- lower bound: the flowing part cannot start before the canary has soaked (taken from the flowing run, the same
  prefix for every schedule), then max(per pool: its hosts' work / its free slots; per rack: its hosts' work / 2;
  per host: its earliest drain end + its work), where a host's work is its steps without the drain wait; no
  soak after the canary in the bound (hosts soak in service, holding no slot).

Run: python benchmarks/rollout_makespan.py [--hosts 1000 10000] [--seeds 1 2 3] [--drain-median 240]
[--drain-sigma 1.2] [--fail-rate 0.005]. Targets: flow <= 1.25x the bound and >= 2.5x faster than serial
batches at the heavy-tailed setting; moonshot: drain-aware within 1.1x of the bound.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.knowledge import load_knowledge  # noqa: E402
from orchestrator.model.desired import DesiredState  # noqa: E402
from orchestrator.model.policy import RolloutPolicy  # noqa: E402
from orchestrator.model.stack import FailureDomains, Fleet  # noqa: E402
from orchestrator.planner import (  # noqa: E402
    Plan,
    UnknownHost,
    build_plan,
)
from orchestrator.planner.model import StepKind  # noqa: E402
from orchestrator.run.decide import RunContext  # noqa: E402
from tests.support.bigfleet import fleet  # noqa: E402
from tests.support.rolloutsim import DRAIN_OVERHEAD_S, SimHost, simulate, step_seconds  # noqa: E402

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DRAIN_TIMEOUT_S = 3600
POOL = "train-h100"
# A site's measured step times (policy ``estimates``): package steps of a warm mirror, a 3 min reboot, short
# gates; upgrade plus reboot about 10 min, 14 min with the gates, as in the setting.
ESTIMATES = {"precheck": 20, "cordon": 10, "driver": 120, "kernel_module": 30, "fabric_manager": 30, "cuda": 90,
             "cudnn": 30, "nccl": 20, "container_toolkit": 20, "dcgm": 20, "reboot": 180, "verify": 20,
             "uncordon": 10, "gates": {"dcgm-r1": 60, "dcgm-r2": 120, "nccl-tests": 120}}


def one_pool(n: int) -> tuple[Fleet, list[UnknownHost], DesiredState]:
    """The issue's setting: ``n`` H100 hosts in one pool on racks of 16 (bigfleet's H100 hosts, re-pooled)."""
    fl, _unknown, desired = fleet(3 * n + 3)
    kept = [h for h in fl.hosts if h.gpu.name.startswith("H100") or "h100" in h.pool][:n]
    hosts = tuple(h.model_copy(update={"pool": POOL, "domains": FailureDomains(rack=f"r{k // 16:05d}",
                                                                                switch=f"leaf-{k // 64:04d}")})
                  for k, h in enumerate(kept))
    pools = {POOL: desired.pools["train-h100-0"]}
    return Fleet.model_construct(hosts=hosts), [], desired.model_copy(update={"pools": pools})


def make_plan(n: int, kind: str, job_ends: dict[str, datetime | None] | None = None) -> Plan:
    fl, unknown, desired = one_pool(n) if kind == "one-pool" else fleet(n)
    base = (desired.policy or RolloutPolicy()).model_dump()
    base.update(windows=(), failure_budget={"per_wave": "10%", "total": "3%"},
                drain={"timeout": DRAIN_TIMEOUT_S, "on_timeout": "evict"}, estimates=ESTIMATES)
    return build_plan(fl, desired, RolloutPolicy.model_validate(base), load_knowledge(), T0, unknown=unknown,
                      job_ends=job_ends)


def squeue_at_start(hosts: dict[str, SimHost]) -> dict[str, datetime | None]:
    """What squeue says at the start: each host's job end by its time limit."""
    return {h: T0 + timedelta(seconds=s.reported_end_s or 0.0) for h, s in hosts.items()}


def make_hosts(plan: Plan, seed: int, median: float, sigma: float, fail_rate: float,
               model: str) -> dict[str, SimHost]:
    rnd = random.Random(seed)
    hosts = {}
    for w in plan.waves:
        for h in w.hosts:
            end = rnd.lognormvariate(0.0, sigma) * median
            fail = StepKind.VERIFY if w.name != "canary" and rnd.random() < fail_rate else None
            hosts[h] = SimHost(job_end_s=end, reported_end_s=end * rnd.uniform(1.0, 1.3),
                               speed=rnd.lognormvariate(0.0, 0.1), fail=fail,
                               drain_s=end if model == "fixed" else None)
    return hosts


def drain_wait(host: SimHost, start: float) -> float:
    wait = host.drain_s if host.drain_s is not None else max(host.job_end_s - start, 0.0)
    return min(wait, DRAIN_TIMEOUT_S)


def work_s(plan: Plan, name: str, host: SimHost) -> float:
    """A host's time out of service without its drain wait: its steps, up to a failure and its rollback."""
    view = plan.host(name)
    total = 0.0
    for step in view.steps:
        total += DRAIN_OVERHEAD_S if step.kind == StepKind.DRAIN else step_seconds(host, step, 0, 0)
        if host.fail is not None and step.kind == host.fail:
            rollback = view.rollback[1:] if view.rollback and view.rollback[0].kind == StepKind.DRAIN else view.rollback
            total += sum(step_seconds(host, s, 0, 0) for s in rollback)
            break
    return total


def lower_bound(plan: Plan, hosts: dict[str, SimHost], flow_start: float) -> float:
    canary = set(plan.waves[0].hosts) if plan.waves[0].name == "canary" else set()
    limits = {p.name: p for p in plan.pools}
    pool_work: dict[str, float] = defaultdict(float)
    dom_work: dict[tuple[str, str], float] = defaultdict(float)
    per_host = 0.0
    cap = plan.policy.max_per_domain if isinstance(plan.policy.max_per_domain, dict) else {}
    for w in plan.waves:
        for h in w.hosts:
            if h in canary:
                continue
            view = plan.host(h)
            work = work_s(plan, h, hosts[h])
            if hosts[h].drain_s is not None:  # a fixed drain holds the slot whenever the host starts
                work += min(hosts[h].drain_s, DRAIN_TIMEOUT_S)
                per_host = max(per_host, work)
            else:  # reservation: the job ends by itself; the earliest the host is free, then its work
                free_at = min(max(hosts[h].job_end_s, flow_start), flow_start + DRAIN_TIMEOUT_S)
                per_host = max(per_host, free_at - flow_start + work)
            pool_work[view.pool] += work
            for kind, name in view.domains.items():
                if kind in cap:
                    dom_work[(kind, name)] += work
    slots = max(pool_work[p] / (limits[p].max_unavailable - len(limits[p].out_of_service)) for p in pool_work)
    racks = max((v / cap[k] for (k, _n), v in dom_work.items()), default=0.0)
    return flow_start + max(slots, racks, per_host)


def serial_batches(plan: Plan, hosts: dict[str, SimHost], soak_between: bool) -> float:
    """Ansible ``serial``: each batch starts together and ends with its slowest host."""
    t = 0.0
    for i, w in enumerate(plan.waves):
        longest = 0.0
        for h in w.hosts:
            drain = drain_wait(hosts[h], t)
            longest = max(longest, drain + work_s(plan, h, hosts[h]))
        t += longest
        if i + 1 < len(plan.waves) and (w.name == "canary" or soak_between):
            t += w.soak_s
    return t


def one(n: int, kind: str, plan: Plan, seed: int, median: float, sigma: float, fail_rate: float, model: str,
        canary_by: str) -> tuple[Plan, dict[str, float]]:
    hosts = make_hosts(plan, seed, median, sigma, fail_rate, model)
    if canary_by == "jobs":  # planned again with squeue's answer; the same hosts, another canary
        plan = make_plan(n, kind, squeue_at_start(hosts))
        canary = set(plan.waves[0].hosts) if plan.waves[0].name == "canary" else set()
        hosts = {h: replace(s, fail=None) if h in canary else s for h, s in hosts.items()}
    # what squeue says: each job's end by its time limit; with no reservation a new job follows, so nothing
    ends = {h: T0 + timedelta(seconds=s.reported_end_s or 0.0) for h, s in hosts.items()} if model != "fixed" else {}
    out: dict[str, float] = {}
    c0 = time.process_time()
    blind = simulate(RunContext(plan, plan.waves, flow=True), hosts, T0, drain_timeout_s=DRAIN_TIMEOUT_S)
    out["cpu_s"] = time.process_time() - c0
    out["events"] = blind.events
    aware = blind if not ends else simulate(RunContext(plan, plan.waves, flow=True, drain_ends=ends), hosts, T0,
                                            drain_timeout_s=DRAIN_TIMEOUT_S)
    for label, res in (("aware", aware), ("blind", blind)):
        if res.status not in ("done", "rolled_back"):
            raise SystemExit(f"{label} run ended {res.status}: {res.reason}")
    assert aware.flow_start_s is not None
    out["aware"] = aware.last_back_s
    out["aware_end"] = blind.finished_s
    out["blind"] = blind.last_back_s
    out["bound"] = lower_bound(plan, hosts, aware.flow_start_s)
    out["serial"] = serial_batches(plan, hosts, soak_between=False)
    out["serial_soak"] = serial_batches(plan, hosts, soak_between=True)
    if len(hosts) <= 2000:  # the engine before, on barrier waves (slow to simulate at 10k: each wave is rescanned)
        barrier = simulate(RunContext(plan, plan.waves), hosts, T0, drain_timeout_s=DRAIN_TIMEOUT_S, check=True)
        out["barrier"] = barrier.last_back_s
    out["hosts"] = sum(len(w.hosts) for w in plan.waves)
    out["failed"] = sum(1 for s in hosts.values() if s.fail is not None)
    out["waves"] = len(plan.waves)
    out["canary_drain"] = min(drain_wait(hosts[h], 0.0) for h in plan.waves[0].hosts)
    return plan, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seeds-10k", type=int, nargs="+", default=[1], help="seeds for fleets above 2,000 hosts")
    ap.add_argument("--drain-median", type=float, default=240.0, help="median job end after the start, seconds")
    ap.add_argument("--drain-sigma", type=float, default=1.2, help="log-normal sigma of job ends (tail)")
    ap.add_argument("--fail-rate", type=float, default=0.005)
    ap.add_argument("--canary-by", choices=["jobs", "name"], default="jobs",
                    help="jobs: planned with squeue's job ends at the start (upgrade plan --canary-by-jobs); "
                         "name: the canary by name, whatever its job")
    ap.add_argument("--fleets", nargs="+", default=["one-pool"], choices=["one-pool", "bigfleet"],
                    help="one-pool: the issue's setting (one pool, racks of 16); bigfleet: 21 pools of ~n/21 hosts, "
                         "1%% cordoned and 1%% unknown (each pool's few slots make every schedule slower)")
    ap.add_argument("--models", nargs="+", default=["fixed", "reservation"], choices=["fixed", "reservation"],
                    help="fixed: each host's drain is its own log-normal draw whenever it starts (jobs keep landing "
                         "until it is cordoned: the issue's model); reservation: jobs end at their own time")
    args = ap.parse_args()
    print(f"drains log-normal: median {args.drain_median:.0f} s, sigma {args.drain_sigma}; drain timeout "
          f"{DRAIN_TIMEOUT_S} s (evict); fail rate {args.fail_rate}; makespan = until the last host is back")
    h = lambda s: f"{s / 3600:5.2f} h"  # noqa: E731
    for n, kind in [(n, k) for k in args.fleets for n in args.hosts]:
        t0 = time.process_time()
        plan = make_plan(n, kind)
        print(f"{n} hosts ({kind}) planned in {time.process_time() - t0:.1f} CPU s")
        for model, seed in [(m, s) for m in args.models for s in (args.seeds if n <= 2000 else args.seeds_10k)]:
            used, r = one(n, kind, plan, seed, args.drain_median, args.drain_sigma, args.fail_rate, model,
                          args.canary_by)
            print(f"{n:>6} hosts, {model} drains, seed {seed}: {int(r['hosts'])} to upgrade in "
                  f"{int(r['waves'])} planned waves, "
                  f"{int(r['failed'])} failing; {int(r['events'])} decisions in {r['cpu_s']:.1f} CPU s; "
                  f"canary {', '.join(used.waves[0].hosts[:3])} (by {args.canary_by}) drains "
                  f"{r['canary_drain'] / 60:.1f} min")
            aware = "" if model == "fixed" else (
                f" | flow drain-aware {h(r['aware'])} ({r['aware'] / r['bound']:.2f}x bound, "
                f"{r['serial'] / r['aware']:.2f}x faster than serial)")
            print(f"    lower bound {h(r['bound'])} | flow planned order {h(r['blind'])} "
                  f"({r['blind'] / r['bound']:.2f}x bound, {r['serial'] / r['blind']:.2f}x faster than serial; "
                  f"ends after the last host's soak {h(r['aware_end'])}){aware}")
            barrier = f" | barrier waves (before) {h(r['barrier'])}" if "barrier" in r else ""
            print(f"    serial batches {h(r['serial'])} (with 30 min soak between {h(r['serial_soak'])}){barrier}")
            print("    every limit, stage cap and the failure budget held at every simulated moment")


if __name__ == "__main__":
    main()
