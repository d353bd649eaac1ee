"""Scenario cases (data/cases.yaml): real combinations -> the rules that must and must not fire, and the
fact (its source page) each verdict rests on."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.knowledge import CheckContext, Hardware, Severity, Workload, check, load_knowledge, rule_ids
from orchestrator.model.gpus import resolve_gpu
from orchestrator.model.stack import SoftwareStack

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "data" / "cases.yaml").read_text())
KNOWLEDGE = load_knowledge()


def _context(raw: dict[str, Any]) -> CheckContext:
    now = date.fromisoformat(raw["now"]) if "now" in raw else date(2026, 1, 15)
    return CheckContext(now=now, pool=raw.get("pool"), production=raw.get("production", False),
                        cuda_compat=raw.get("cuda_compat", False),
                        workloads=tuple(Workload.model_validate(w) for w in raw.get("workloads", [])))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    hw = Hardware(resolve_gpu(case["gpu"]), 8, case.get("nvswitch", False))
    found = check(KNOWLEDGE, hw, SoftwareStack.model_validate(case["stack"]), _context(case.get("context", {})))
    by_rule = {v.rule: v for v in found}
    for want in case.get("expect", []):
        assert want["rule"] in by_rule, f"{want['rule']} missing; got {sorted(by_rule)}"
        v = by_rule[want["rule"]]
        assert v.severity == Severity(want["severity"])
        assert v.source
        if "rests_on" in want:
            assert want["rests_on"] in v.source, f"{want['rule']} rests on {v.source}, not {want['rests_on']}"
        for text in want.get("says", []):
            assert text in v.message + (v.fix or ""), f"{text!r} not in {v.message!r}"
    for rule in case.get("absent", []):
        assert rule not in by_rule, by_rule[rule].message
    if case.get("clean"):
        assert found == []


def test_every_case_rule_is_registered() -> None:
    known = set(rule_ids())
    named = {w["rule"] for c in CASES for w in c.get("expect", [])} | {r for c in CASES for r in c.get("absent", [])}
    assert named <= known


def test_findings_are_deterministic() -> None:
    hw = Hardware(resolve_gpu("V100"))
    stack = SoftwareStack.model_validate({"driver": "470.239.06", "cuda": "13.0", "kernel_module": "open"})
    first = check(KNOWLEDGE, hw, stack, CheckContext(now=date(2026, 1, 1)))
    assert first == check(KNOWLEDGE, hw, stack, CheckContext(now=date(2026, 1, 1)))
    assert [v.severity for v in first] == sorted(v.severity for v in first)  # errors first
