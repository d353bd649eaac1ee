"""The plan artifact: deterministic bytes, a hash that load_plan verifies, tampering refused in one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.planner import (
    PlanFileError,
    build_plan,
    load_plan,
    parse_plan,
    plan_json,
    render_dot,
    render_mermaid,
)
from orchestrator.planner.artifact import plan_text
from tests.planner.fixtures import load_fleet

SCENARIO = Path(__file__).parent / "scenarios" / "upgrade-h100"
KNOWLEDGE = load_knowledge()


def _plan_text() -> str:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    return plan_json(build_plan(fleet, load_desired(SCENARIO / "desired.yaml"), None, KNOWLEDGE, now,
                                unknown=unknown))


def test_same_inputs_give_byte_identical_plans() -> None:
    assert _plan_text() == _plan_text()


def test_load_plan_verifies_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "p.plan.json"
    path.write_text(_plan_text())
    plan = load_plan(path)
    first, _, body = path.read_text().partition("\n")
    assert first == f'{{"plan_hash": "{plan.plan_hash}",'
    assert plan.plan_hash == hashlib.sha256(body.encode()).hexdigest()  # the bytes written, as written
    assert plan_json(plan) == path.read_text()
    assert plan_text(json.loads(path.read_text())) == path.read_text()  # one writer for built and loaded plans


def test_load_plan_refuses_an_edited_plan(tmp_path: Path) -> None:
    path = tmp_path / "p.plan.json"
    data = json.loads(_plan_text())
    data["waves"][0]["hosts"] = ["h2"]
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError, match=r"p\.plan\.json: plan hash mismatch") as info:
        load_plan(path)
    assert "\n" not in str(info.value)


def test_shared_step_lists_and_domain_sets_are_written_once_and_read_back(tmp_path: Path) -> None:
    text = _plan_text()
    data = json.loads(text)
    plan = parse_plan(text, "<test>")
    # every class's steps and rollback name a shared list; equal lists are one entry
    named = [c[k] for c in data["classes"] for k in ("steps", "rollback") if k in c]
    assert named and all(isinstance(i, int) for i in named)
    assert len(data["step_lists"]) == len({json.dumps(s) for s in data["step_lists"]})
    assert len(data["domain_sets"]) < len(data["rows"])  # hosts of one rack share their domains
    for row in plan.rows:  # read back: the loaded plan has every host's own domains and its class's steps
        assert row.domains == data["domain_sets"][next(r for r in data["rows"] if r[0] == row.name)[3]]
    for cls, dumped in zip(plan.classes, data["classes"], strict=True):
        if "steps" in dumped:
            assert [s.id for s in cls.steps] == [s["id"] for s in data["step_lists"][dumped["steps"]]]


def test_a_shared_index_out_of_range_is_refused_in_one_line(tmp_path: Path) -> None:
    data = json.loads(_plan_text())
    data["rows"][0][3] = len(data["domain_sets"]) + 5
    path = tmp_path / "p.plan.json"
    path.write_text(plan_text(data))  # re-hashed: the hash is fine, the content is not
    with pytest.raises(PlanFileError, match="names a shared list the plan does not have") as info:
        load_plan(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "problem"), [("{", "not JSON"), ("[]", "not a plan"), (None, "cannot read")])
def test_load_plan_refuses_other_files(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "x.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(PlanFileError, match=problem):
        load_plan(path)


def test_renderings_name_every_wave_and_host() -> None:
    plan = parse_plan(_plan_text(), "<test>")
    dot, mermaid = render_dot(plan), render_mermaid(plan)
    assert dot.startswith("digraph plan {") and mermaid.startswith("flowchart LR")
    for wave in plan.waves:
        assert wave.name in dot and wave.name in mermaid
        for host in wave.hosts:
            assert f'"{host}"' in dot and host in mermaid



def test_planner_does_no_io_and_prints_nothing() -> None:
    source = Path(__file__).parents[2] / "orchestrator" / "planner"
    for module in sorted(source.glob("*.py")):
        text = module.read_text()
        for banned in ("import typer", "from rich", "print(", "datetime.now", "subprocess", "open("):
            if module.name == "artifact.py" and banned == "open(":
                continue
            assert banned not in text, (module.name, banned)
