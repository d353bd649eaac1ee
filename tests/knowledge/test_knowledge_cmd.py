"""`upgrade knowledge show | import` on NVIDIA's real manifest formats (tests/knowledge/data/manifests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cli.output import run_guarded
from orchestrator.knowledge import KnowledgeError, load_knowledge
from orchestrator.knowledge.manifests import Product, additions, parse_manifest

DATA = Path(__file__).parent / "data"
MANIFESTS = DATA / "manifests"
runner = CliRunner()


def _manifest(name: str) -> dict[str, object]:
    data = json.loads((MANIFESTS / name).read_text())
    assert isinstance(data, dict)
    return data


def _future_driver(tmp_path: Path) -> Path:
    """A driver manifest shaped exactly like redistrib_620.70.06.json, for a release after the knowledge base."""
    text = (MANIFESTS / "redistrib_620.70.06.json").read_text()
    text = text.replace("620.70.06", "625.10.01").replace("13.5", "13.6").replace("2026-11-04", "2027-02-10")
    path = tmp_path / "redistrib_625.10.01.json"
    path.write_text(text)
    return path


def test_real_manifests_parse() -> None:
    cuda = parse_manifest(_manifest("redistrib_13.1.0.json"), "redistrib_13.1.0.json")
    assert (cuda.product, cuda.label, cuda.released) == (Product.CUDA, "13.1.0", "2025-12-04")
    assert cuda.source == "https://developer.download.nvidia.com/compute/cuda/redist/redistrib_13.1.0.json"
    driver = parse_manifest(_manifest("redistrib_620.70.06.json"), "redistrib_620.70.06.json")
    assert (driver.product, [str(c) for c in driver.compat_cuda]) == (Product.DRIVER, ["13.5"])
    old = parse_manifest(_manifest("redistrib_525.60.13.json"), "x/redistrib_525.60.13.json")
    assert (old.product, old.label, old.compat_cuda) == (Product.DRIVER, "525.60.13", ())


def test_what_nvidia_published_is_already_known() -> None:
    names = ["redistrib_13.1.0.json", "redistrib_620.70.06.json", "redistrib_535.154.05.json"]
    add = additions(load_knowledge(), [parse_manifest(_manifest(n), n) for n in names])
    assert add.releases == [] and add.branches == []
    assert len(add.notes) == 4
    assert add.date == "2026-11-04"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1, 2], "not a release manifest"),
        ({"release_label": "13.6.0", "release_product": "cudnn"}, "neither 'cuda' nor 'nvidia-driver'"),
        ({"release_label": "abc", "release_product": "nvidia-driver"}, "driver version"),
        ({"release_date": "Nov 4", "release_label": "620.70.06"}, "release_date"),
        ({"release_date": "2026-11-04"}, "no release_label"),
    ],
)
def test_malformed_manifests_name_the_file(data: object, problem: str) -> None:
    with pytest.raises(KnowledgeError, match=problem) as err:
        parse_manifest(data, "m.json")
    assert str(err.value).startswith("m.json")


def test_show_prints_version_newest_cuda_branch_and_date() -> None:
    result = runner.invoke(app, ["knowledge", "show"])
    assert result.exit_code == 0, result.output
    assert "CUDA 13.5" in result.stdout and "R620" in result.stdout and "2026-12-01" in result.stdout
    data = json.loads(runner.invoke(app, ["knowledge", "show", "--output", "json"]).stdout)
    assert data["knowledge_version"] == load_knowledge().version
    assert (data["newest_cuda"]["version"], data["newest_branch"]["branch"]) == ("13.5.0", 620)


def test_import_writes_a_site_file_the_commands_load(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    compat = ["compat", "--gpu", "H100", "--driver", "625.10.01", "--cuda", "13.6", "--kernel-module", "open",
              "--output", "json"]
    before = json.loads(runner.invoke(app, compat).stdout)
    newer = [f for f in before["findings"] if f["rule"] == "newer-than-knowledge"]
    assert newer and "upgrade knowledge import" in newer[0]["fix"] and "13.6" in newer[0]["message"]

    result = runner.invoke(app, ["knowledge", "import", str(_future_driver(tmp_path)),
                                 str(MANIFESTS / "redistrib_13.1.0.json"), "--site", str(site)])
    assert result.exit_code == 0, result.output
    assert "add: driver branch R625" in result.stdout and "add: CUDA 13.6 (R625)" in result.stdout
    written = yaml.safe_load(site.read_text())
    assert written["date"] == "2027-02-10"
    assert written["cuda"]["releases"][0]["driver_branch"] == 625

    shown = json.loads(runner.invoke(app, ["knowledge", "show", "--site", str(site), "--output", "json"]).stdout)
    assert (shown["newest_cuda"]["version"], shown["newest_branch"]["branch"], shown["date"]) == (
        "13.6.0", 625, "2027-02-10")
    after = json.loads(runner.invoke(app, [*compat, "--site", str(site)]).stdout)
    rules = {f["rule"] for f in after["findings"]}
    assert not {"newer-than-knowledge", "unknown-driver-branch", "unknown-cuda-release"} & rules

    again = runner.invoke(app, ["knowledge", "import", str(_future_driver(tmp_path)), "--site", str(site)])
    assert again.exit_code == 0 and "nothing new" in again.stdout


def test_import_keeps_what_the_site_file_has(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    shutil.copy(DATA / "site_new_driver.yaml", site)
    result = runner.invoke(app, ["knowledge", "import", str(_future_driver(tmp_path)), "--site", str(site)])
    assert result.exit_code == 0, result.output
    assert "R625 (625.10.01): branch already known" in result.stdout
    written = yaml.safe_load(site.read_text())
    assert [g["name"] for g in written["golden_stacks"]] == ["h100-2026q1"]
    assert load_knowledge(site).golden_stacks[0].name == "h100-2026q1"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    result = runner.invoke(app, ["knowledge", "import", str(_future_driver(tmp_path)), "--site", str(site),
                                 "--dry-run"])
    assert result.exit_code == 0 and "add: driver branch R625" in result.stdout
    assert not site.exists()


def test_bad_manifest_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "redistrib_x.json"
    bad.write_text("{not json")
    code = run_guarded(app, ["knowledge", "import", str(bad), "--site", str(tmp_path / "s.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "redistrib_x.json" in err and "not JSON" in err
