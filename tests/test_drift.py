from __future__ import annotations

from orchestrator.model.drift import fleet_drift, pool_drift
from orchestrator.model.stack import SoftwareStack


def stack(driver: str = "535.183.01", nccl: str = "2.18.5-1+cuda12.2") -> SoftwareStack:
    return SoftwareStack.model_validate({"driver": driver, "nccl": nccl, "cuda": "12.2"})


def test_uniform_pool_has_no_drift() -> None:
    assert pool_drift("p", {"a": stack(), "b": stack()}).mixed == []


def test_off_majority_hosts_are_named_per_component() -> None:
    report = pool_drift("p", {"a": stack(), "b": stack(), "c": stack(nccl="2.21.5-1+cuda12.4")})
    [nccl] = report.mixed
    assert nccl.component == "nccl" and nccl.majority == "2.18.5-1+cuda12.2"
    assert nccl.off_majority == ["c"] and nccl.values == {"2.18.5-1+cuda12.2": 2, "2.21.5-1+cuda12.4": 1}
    assert report.drifting_hosts == {"c"}


def test_tie_has_no_majority_and_flags_everyone() -> None:
    report = pool_drift("p", {"a": stack(driver="580.95.05"), "b": stack()})
    [driver] = report.mixed
    assert driver.majority is None and driver.off_majority == ["a", "b"]


def test_missing_component_is_drift_too() -> None:
    report = pool_drift("p", {"a": stack(), "b": SoftwareStack.model_validate({"driver": "535.183.01",
                                                                                "cuda": "12.2"}), "c": stack()})
    assert [(c.component, c.off_majority) for c in report.mixed] == [("nccl", ["b"])]


def test_pools_are_independent() -> None:
    reports = fleet_drift({"x": {"a": stack()}, "y": {"b": stack(driver="580.95.05")}})
    assert [(r.pool, r.mixed) for r in reports] == [("x", []), ("y", [])]
