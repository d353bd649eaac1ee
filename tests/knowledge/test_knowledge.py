"""Shipped facts are sourced and strict; site overrides add facts and report conflicts; transitions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from orchestrator.knowledge import CheckContext, Hardware, KnowledgeError, check, check_transition, load_knowledge
from orchestrator.knowledge.facts import Sourced
from orchestrator.model.gpus import architectures, catalogue, resolve_gpu
from orchestrator.model.stack import SoftwareStack

DATA = Path(__file__).parent / "data"


def _facts(k: object) -> list[Sourced]:
    out: list[Sourced] = []
    for section in ("cuda", "drivers", "architectures", "libraries"):
        model = getattr(k, section)
        for name in type(model).model_fields:
            value = getattr(model, name)
            items = value if isinstance(value, tuple) else (value,)
            out.extend(i for i in items if isinstance(i, Sourced))
    return out


def test_every_shipped_fact_cites_a_web_page() -> None:
    facts = _facts(load_knowledge())
    assert len(facts) > 60
    for fact in facts:
        for url in (fact.source, *fact.sources.values()):
            assert url.startswith("https://"), fact
        if fact.unverified:
            assert fact.note, f"unverified fact without a note: {fact}"


def test_every_catalogued_architecture_has_facts() -> None:
    k = load_knowledge()
    for arch in architectures():
        assert k.architecture(arch) is not None, arch
    for model in catalogue():
        first = k.architecture(model.architecture)
        assert first is not None


def test_version_is_stable_and_changes_with_overrides(tmp_path: Path) -> None:
    assert load_knowledge().version == load_knowledge().version
    assert load_knowledge(DATA / "site_new_driver.yaml").version != load_knowledge().version


def test_site_override_adds_a_newer_driver_branch() -> None:
    hw = Hardware(resolve_gpu("H100"))
    stack = SoftwareStack.model_validate({"driver": "625.10.01"})
    shipped = {v.rule: v for v in check(load_knowledge(), hw, stack, CheckContext(now=date(2026, 1, 1)))}
    assert "upgrade knowledge import" in (shipped["newer-than-knowledge"].fix or "")
    k = load_knowledge(DATA / "site_new_driver.yaml")
    assert k.conflicts == ()
    site = {v.rule for v in check(k, hw, stack, CheckContext(now=date(2026, 1, 1)))}
    assert not {"unknown-driver-branch", "newer-than-knowledge"} & site


def test_conflicting_override_is_reported_and_wins() -> None:
    k = load_knowledge(DATA / "site_conflict.yaml")
    assert len(k.conflicts) == 1
    text = k.conflicts[0].describe()
    assert "driver branch 580" in text and "2028-06" in text and "2027-12" in text
    branch = k.branch(580)
    assert branch is not None and branch.end_of_life == "2027-12"


def test_golden_stacks_warn_on_other_stacks() -> None:
    k = load_knowledge(DATA / "site_new_driver.yaml")
    hw = Hardware(resolve_gpu("H100"))
    golden = SoftwareStack.model_validate({"driver": "580.95.05", "cuda": "13.0"})
    other = SoftwareStack.model_validate({"driver": "580.82.07", "cuda": "13.0"})
    ctx = CheckContext(now=date(2026, 1, 1), pool="train")
    assert "not-golden-stack" not in {v.rule for v in check(k, hw, golden, ctx)}
    assert "not-golden-stack" in {v.rule for v in check(k, hw, other, ctx)}


def test_bad_site_file_is_one_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text("drivers:\n  branches:\n    - {branch: 700, kind: bleeding-edge, source: x}\n")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(bad)
    assert str(bad) in str(err.value) and "kind" in str(err.value)
    typo = tmp_path / "typo.yaml"
    typo.write_text("driverz: {}\n")
    with pytest.raises(KnowledgeError, match="driverz"):
        load_knowledge(typo)


def test_transition_reports_only_new_findings() -> None:
    k = load_knowledge()
    hw = Hardware(resolve_gpu("H100"), 8, True)
    before = SoftwareStack.model_validate({"driver": "570.124.06", "fabric_manager": "570.124.06",
                                           "kernel_module": "proprietary"})
    after = SoftwareStack.model_validate({"driver": "580.95.05", "fabric_manager": "570.124.06",
                                          "kernel_module": "open"})
    rules = {v.rule for v in check_transition(k, hw, before, after, CheckContext(now=date(2026, 1, 1)))}
    assert rules == {"fabric-manager-mismatch", "kernel-module-flavor-change"}
    down = {v.rule for v in check_transition(k, hw, after, before, CheckContext(now=date(2026, 1, 1)))}
    assert "driver-downgrade" in down
