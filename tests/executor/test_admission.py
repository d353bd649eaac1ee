from __future__ import annotations

from orchestrator.planner.waves import PoolLimits
from orchestrator.run.admission import Slot, admit

LIMITS = {"p": PoolLimits(pool_size=6, max_unavailable=2, out_of_service=0, per_domain={"rack": 1}),
          "q": PoolLimits(pool_size=4, max_unavailable=2, out_of_service=1, per_domain={})}


def s(name: str, pool: str = "p", rack: str = "r1") -> Slot:
    return Slot(name, pool, (("rack", rack),))


def test_pool_limit_counts_hosts_already_out() -> None:
    waiting = [s("q1", "q"), s("q2", "q"), s("q3", "q")]
    assert [x.name for x in admit(waiting, [], LIMITS)] == ["q1"]  # 2 allowed, 1 was out before the run
    assert admit(waiting[1:], [waiting[0]], LIMITS) == []


def test_domain_limit_and_sliding_window() -> None:
    waiting = [s("a", rack="r1"), s("b", rack="r1"), s("c", rack="r2")]
    first = admit(waiting, [], LIMITS)
    assert [x.name for x in first] == ["a", "c"]  # b waits: r1 already has one down
    # a finishes and is back in service: b may start although c is still busy
    assert [x.name for x in admit([waiting[1]], [waiting[2]], LIMITS)] == ["b"]


def test_failed_hosts_keep_their_slot() -> None:
    quarantined = s("bad", rack="r9")
    assert [x.name for x in admit([s("a", rack="r1"), s("c", rack="r2")], [quarantined], LIMITS)] == ["a"]


def test_racks_are_shared_across_pools_and_parallel_caps_total() -> None:
    mixed = {"p": LIMITS["p"], "q": PoolLimits(4, 4, 0, {"rack": 1})}
    assert admit([s("q1", "q", "r1")], [s("p1", "p", "r1")], mixed) == []
    assert len(admit([s("a", rack="r1"), s("c", rack="r2")], [], LIMITS, parallel=1)) == 1
