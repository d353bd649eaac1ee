"""apply's refusals: a stale plan names what changed, windows say when the next opens, waves go in order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.app.gather import Inputs, gather, plan_from
from orchestrator.model.facts import FactsSnapshot
from orchestrator.run.preflight import select_waves, stale_reasons, window_reason

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # 22:00 in Berlin: inside the example's 20:00-08:00 window


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return gather(ROOT / "plans" / "example.yaml", ROOT / "inventories" / "example",
                  facts=ROOT / "inventories" / "example" / "facts.json")


def test_unchanged_inputs_are_fresh_even_when_facts_are_collected_again(inputs: Inputs) -> None:
    plan = plan_from(inputs, NOW)
    again = FactsSnapshot.model_validate({
        **inputs.snapshot.model_dump(mode="json"),
        "collected_at": "2026-11-26T03:00:00+00:00",
        "hosts": [{**h.model_dump(mode="json"), "collected_at": "2026-11-26T03:00:00+00:00", "boot_id": "new"}
                  for h in inputs.snapshot.hosts],
    })
    assert stale_reasons(plan, inputs.hosts, again, inputs.desired, inputs.knowledge.version) == []


def test_a_host_changed_by_hand_makes_the_plan_stale_and_is_named(inputs: Inputs) -> None:
    plan = plan_from(inputs, NOW)
    data = inputs.snapshot.model_dump(mode="json")
    for host in data["hosts"]:
        if host["host"] == "gpu-h100-02":
            host["nccl"]["version"] = "2.21.5-1+cuda12.4"
    changed = FactsSnapshot.model_validate(data)
    reasons = stale_reasons(plan, inputs.hosts, changed, inputs.desired, inputs.knowledge.version)
    assert reasons == ["gpu-h100-02: changed since the plan was made: nccl 2.18.5-1+cuda12.2 -> 2.21.5-1+cuda12.4"]
    other_kb = stale_reasons(plan, inputs.hosts, inputs.snapshot, inputs.desired, "2099.1+x")
    assert other_kb and "knowledge base is 2099.1+x" in other_kb[0]
    fewer = stale_reasons(plan, inputs.hosts[1:], inputs.snapshot, inputs.desired, inputs.knowledge.version)
    assert fewer == ["the inventory changed since the plan was made (hosts, pools or placement)"]


def test_window_refusal_says_when_the_next_window_opens(inputs: Inputs) -> None:
    plan = plan_from(inputs, NOW)
    canary = plan.waves[0]
    assert window_reason(plan, canary, NOW) is None
    noon = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)  # 12:00 Berlin
    reason = window_reason(plan, canary, noon)
    assert reason is not None and "outside the maintenance windows" in reason
    assert "2026-11-26T19:00:00+00:00" in reason  # 20:00 Berlin


def test_waves_are_selected_in_order(inputs: Inputs) -> None:
    plan = plan_from(inputs, NOW)
    names = [w.name for w in plan.waves]
    assert [w.name for w in select_waves(plan, "canary", set())] == ["canary"]
    assert [w.name for w in select_waves(plan, "next", {"canary"})] == [names[1]]
    assert [w.name for w in select_waves(plan, "all", {"canary"})] == names[1:]
    with pytest.raises(ValueError, match="cannot start before canary"):
        select_waves(plan, names[1], set())
    with pytest.raises(ValueError, match="no wave 'wave-99'"):
        select_waves(plan, "wave-99", set())
