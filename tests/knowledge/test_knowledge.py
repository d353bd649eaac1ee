"""Shipped facts are sourced and strict; site overrides add facts and report conflicts; transitions."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from orchestrator.knowledge import (
    CheckContext,
    Hardware,
    Knowledge,
    KnowledgeError,
    check,
    check_transition,
    load_knowledge,
)
from orchestrator.knowledge.facts import Sourced
from orchestrator.model.gpus import architectures, catalogue, resolve_gpu
from orchestrator.model.stack import SoftwareStack
from orchestrator.model.versions import CudaVersion

DATA = Path(__file__).parent / "data"


def _walk(value: object, out: list[Sourced]) -> None:
    if isinstance(value, Sourced):
        out.append(value)
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(getattr(value, name), out)
    elif isinstance(value, tuple):
        for item in value:
            _walk(item, out)


def _facts(k: Knowledge) -> list[Sourced]:
    out: list[Sourced] = []
    for section in (k.cuda, k.drivers, k.architectures, k.libraries, k.os):
        _walk(section, out)
    return out


# Pages NVIDIA (or the framework) rewrites in place for each release: a fact citing one of them is not
# checkable later. Their versioned editions (a branch number, /archive/<release>/, a tag or commit) are not.
UNVERSIONED = [
    re.compile(p)
    for p in (
        r"/latest/",
        r"docs\.nvidia\.com/cuda/cuda-toolkit-release-notes",
        r"docs\.nvidia\.com/datacenter/tesla/drivers/(?!\d{3}/)",
        r"docs\.nvidia\.com/deploy/cuda-compatibility/(?!\d{3}/)",
        r"docs\.nvidia\.com/datacenter/tesla/driver-installation-guide/(?!\d{3}/)",
        r"docs\.nvidia\.com/datacenter/tesla/fabric-manager-user-guide/",
        r"docs\.nvidia\.com/deeplearning/sdk/",
        r"docs\.nvidia\.com/deeplearning/cudnn/(?!backend/v\d|v\d|archives/)",
        r"pytorch\.org/get-started/",
        r"tensorflow\.org/install",
        r"github\.com/[^/]+/[^/]+/blob/(main|master)/",
        r"forums\.developer\.nvidia\.com/t/[^/]+/\d+/?$",
    )
]
# Published in one edition only (no versioned copy exists): allowed with a note saying when it was read.
SINGLE_EDITION = ("https://developer.nvidia.com/cuda-gpus", "https://developer.nvidia.com/cuda-legacy-gpus")


def source_problems(fact: Sourced) -> list[str]:
    problems = []
    for url in (fact.source, *fact.sources.values()):
        if not url.startswith("https://"):
            problems.append(f"{url!r} is not a web page")
        elif url in SINGLE_EDITION:
            if "2026-12" not in fact.note:
                problems.append(f"{url} is a single-edition page: say in the note when it was read")
        elif any(p.search(url) for p in UNVERSIONED):
            problems.append(f"{url} is an unversioned page that now shows other releases")
    if fact.unverified and not fact.note:
        problems.append("unverified fact without a note")
    return problems


def test_every_shipped_fact_cites_a_versioned_page() -> None:
    facts = _facts(load_knowledge())
    assert len(facts) > 80
    bad = {repr(f)[:80]: p for f in facts if (p := source_problems(f))}
    assert bad == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html",
        "https://docs.nvidia.com/datacenter/tesla/drivers/supported-drivers-and-cuda-toolkit-versions.html",
        "https://docs.nvidia.com/deploy/cuda-compatibility/forward-compatibility.html",
        "https://docs.nvidia.com/deeplearning/cudnn/latest/support-matrix/index.html",
        "https://docs.nvidia.com/deeplearning/sdk/cudnn-support-matrix/index.html",
        "https://pytorch.org/get-started/previous-versions/",
        "https://github.com/pytorch/pytorch/blob/main/RELEASE.md",
        "https://forums.developer.nvidia.com/t/current-graphics-driver-releases/28500",
    ],
)
def test_unversioned_pages_are_refused(url: str) -> None:
    assert source_problems(Sourced(source=url)) != []


def test_versioned_pages_pass() -> None:
    for url in (
        "https://docs.nvidia.com/cuda/archive/13.2.2/cuda-toolkit-release-notes/index.html",
        "https://docs.nvidia.com/datacenter/tesla/drivers/620/supported-drivers-and-cuda-toolkit-versions.html",
        "https://docs.nvidia.com/deeplearning/cudnn/backend/v9.5.1/reference/support-matrix.html",
        "https://github.com/tensorflow/docs/blob/7c3650212740204359d4ceae481abc79345541be/site/en/install/source.md",
    ):
        assert source_problems(Sourced(source=url)) == [], url


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


def test_site_example_in_the_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "knowledge.md").read_text()
    example = doc.split("## Site overrides", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    site = tmp_path / "site.yaml"
    site.write_text(example)
    k = load_knowledge(site)
    fc = k.architectures.forward_compatibility
    assert fc is not None and fc.row(CudaVersion("13.0")) is not None and "T4" in fc.datacenter_models
    assert k.date == "2027-02-10" and k.newest_branch() is not None and k.newest_branch().branch == 625
    hw = Hardware(resolve_gpu("H100"))
    stack = SoftwareStack.model_validate({"driver": "570.124.06", "cuda": "13.0"})
    found = {v.rule for v in check(k, hw, stack, CheckContext(now=date(2026, 1, 1), cuda_compat=True))}
    assert "cuda-forward-compat" in found and "cuda-forward-compat-unsupported" not in found
    unlisted = SoftwareStack.model_validate({"driver": "560.35.03", "cuda": "13.0"})
    found = {v.rule for v in check(k, hw, unlisted, CheckContext(now=date(2026, 1, 1), cuda_compat=True))}
    assert "cuda-forward-compat-unsupported" in found


def test_new_feature_branches_are_not_forward_compat_targets(tmp_path: Path) -> None:
    """The shipped exclusion judges a branch the site marks new-feature, before the table's rows and columns."""
    site = tmp_path / "site.yaml"
    site.write_text(
        "version: 1\ndrivers:\n  branches:\n    - {branch: 570, kind: new-feature, source: site}\n"
    )
    k = load_knowledge(site)
    hw = Hardware(resolve_gpu("H100"))
    stack = SoftwareStack.model_validate({"driver": "570.124.06", "cuda": "13.0"})
    found = {v.rule: v for v in check(k, hw, stack, CheckContext(now=date(2026, 1, 1), cuda_compat=True))}
    assert "cuda-forward-compat-unsupported" in found
    assert "new-feature" in found["cuda-forward-compat-unsupported"].message
    shipped = {v.rule for v in check(load_knowledge(), hw, stack, CheckContext(now=date(2026, 1, 1), cuda_compat=True))}
    assert "cuda-forward-compat" in shipped and "cuda-forward-compat-unsupported" not in shipped


def test_site_table_branches_replace_shipped_ones(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "version: 1\narchitectures:\n  forward_compatibility:\n    datacenter_models: []\n    source: site\n"
        "    table_branches: {branches: [470, 535], source: site}\n"
    )
    k = load_knowledge(site)
    hw = Hardware(resolve_gpu("A100"))
    stack = SoftwareStack.model_validate({"driver": "470.239.06", "cuda": "12.1"})
    ctx = CheckContext(now=date(2026, 1, 1), cuda_compat=True)
    assert "cuda-forward-compat" in {v.rule for v in check(k, hw, stack, ctx)}
    assert "cuda-forward-compat-unsupported" in {v.rule for v in check(load_knowledge(), hw, stack, ctx)}


def test_sources_may_name_one_key_of_a_mapping_field() -> None:
    from orchestrator.knowledge.facts import Architecture

    arch = Architecture.model_validate(
        {"name": "X", "first_cuda": {"10.0": "12.8", "10.3": "12.9"}, "source": "https://a.example/matrix",
         "sources": {"first_cuda:10.3": "https://a.example/features"}}
    )
    assert arch.source_of("first_cuda", "10.3") == "https://a.example/features"
    assert arch.source_of("first_cuda", "10.0") == "https://a.example/matrix"
    with pytest.raises(ValueError, match="unknown fields: bogus:1"):
        Architecture.model_validate({"name": "X", "source": "s", "sources": {"bogus:1": "u"}})
